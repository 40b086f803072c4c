//! The calling thread's CPU time: what a request's own work took, however
//! many other requests shared the thread meanwhile and however busy the
//! machine was. The sandbox's timeout ([`OwnTime`]) and `wasmgate
//! calibrate` both read it; a wall clock from the request's start would
//! count the time spent waiting for other requests' fuel slices and for
//! other processes.

use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

/// CPU time (user and system) the calling thread has used since it started.
/// Linux's `CLOCK_THREAD_CPUTIME_ID`: nanosecond resolution, one system call
/// (~0.1–0.5 µs).
pub fn thread_cpu_time() -> Duration {
    let now = clock_gettime(ClockId::ThreadCPUTime);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    Duration::from_secs(secs).saturating_add(Duration::from_nanos(nanos))
}

/// The time of one request's own work — its instantiation and its fuel
/// slices, the host calls in them and the host work between them — counted
/// against its `timeout` without reading the CPU clock on most requests.
///
/// Reading `CLOCK_THREAD_CPUTIME_ID` is a system call (no vDSO: ~1.7 µs on
/// the development VM, ~4 per request before, ~12% of `hello`'s CPU), while
/// the monotonic clock is read in the vDSO (~20 ns). A run of this
/// request's guest code never interleaves with another request's on the
/// thread, so the wall time of its runs is its own time plus whatever the
/// OS took for other processes meanwhile: never less than its CPU time.
/// The count therefore starts on the wall clock, and while that sum is
/// under [`OwnTime::EXACT_AFTER`] of the timeout the CPU time is too and
/// nothing can have expired. Past it, the count switches to the thread's
/// CPU time, which alone decides: the backstop fires when the CPU time
/// counted since the switch exceeds the whole timeout. It never fires
/// early, however busy the machine (a wall-clock sum would, under
/// preemption, and the fuel budget would no longer decide), and fires at
/// most the wall time counted before the switch late: 1/16 of the timeout
/// plus the run that crossed it.
#[derive(Debug)]
pub struct OwnTime {
    timeout: Duration,
    /// Wall time of the runs counted before the switch, then CPU time of
    /// those counted after it.
    ran: Duration,
    cpu: bool,
}

/// A reading of [`OwnTime`]'s clock, where a run of the request started.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    Wall(Instant),
    Cpu(Duration),
}

impl OwnTime {
    /// The share of the timeout counted on the wall clock before the count
    /// switches to CPU time: the most the backstop can fire late by (plus
    /// the run that crossed it), and the least a request runs before it
    /// pays for CPU-clock readings (two per fuel slice).
    pub const EXACT_AFTER: u32 = 16;

    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            ran: Duration::ZERO,
            cpu: false,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A reading of the clock the count is on: where a run starts.
    pub fn mark(&self) -> Mark {
        match self.cpu {
            true => Mark::Cpu(thread_cpu_time()),
            false => Mark::Wall(Instant::now()),
        }
    }

    /// Counts the run that started at `start` and ends now; returns the
    /// reading that ends it, on the same clock, which may start the next
    /// run when nothing else runs on the thread in between.
    pub fn count(&mut self, start: Mark) -> Mark {
        let (end, ran) = match start {
            Mark::Wall(start) => {
                let end = Instant::now();
                (Mark::Wall(end), end.saturating_duration_since(start))
            }
            Mark::Cpu(start) => {
                let end = thread_cpu_time();
                (Mark::Cpu(end), end.saturating_sub(start))
            }
        };
        self.ran = self.ran.saturating_add(ran);
        end
    }

    /// Between two runs (before the request yields): whether its own CPU
    /// time has exceeded the timeout. A mark taken before this call is
    /// stale: the count may have switched clocks.
    pub fn expired(&mut self) -> bool {
        if !self.cpu {
            if self.ran <= self.timeout / Self::EXACT_AFTER {
                return false;
            }
            self.cpu = true;
            self.ran = Duration::ZERO;
        }
        self.ran > self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spins until the thread has used `cpu` of CPU time.
    fn spin(cpu: Duration) {
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time().saturating_sub(before) < cpu {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    /// Sleeping inflates the wall clock as preemption does: the count
    /// switches to CPU time and does not expire on it; CPU work does.
    #[test]
    fn own_time_expires_on_cpu_time_only() {
        let mut time = OwnTime::new(Duration::from_millis(20));
        let start = time.mark();
        assert!(matches!(start, Mark::Wall(_)));
        std::thread::sleep(Duration::from_millis(50));
        time.count(start);
        assert!(!time.expired(), "{time:?}");
        let start = time.mark();
        assert!(matches!(start, Mark::Cpu(_)));
        std::thread::sleep(Duration::from_millis(50));
        time.count(start);
        assert!(!time.expired(), "{time:?}");
        let start = time.mark();
        spin(Duration::from_millis(25));
        time.count(start);
        assert!(time.expired(), "{time:?}");
    }

    /// Under a 16th of the timeout, the count stays on the wall clock.
    #[test]
    fn own_time_stays_on_the_wall_clock_while_short() {
        let mut time = OwnTime::new(Duration::from_secs(3600));
        for _ in 0..3 {
            let start = time.mark();
            assert!(matches!(start, Mark::Wall(_)));
            spin(Duration::from_millis(1));
            let end = time.count(start);
            assert!(matches!(end, Mark::Wall(_)));
            assert!(!time.expired());
        }
    }

    #[test]
    fn counts_work_not_sleep() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().saturating_sub(before);
        assert!(slept < Duration::from_millis(40), "{slept:?}");
        let before = thread_cpu_time();
        spin(Duration::from_millis(5));
        assert!(thread_cpu_time().saturating_sub(before) >= Duration::from_millis(5));
    }
}
