//! The calling thread's CPU time: what a request's own work took, however
//! many other requests shared the thread meanwhile and however busy the
//! machine was. The sandbox's timeout and `wasmgate calibrate` both read it;
//! a wall clock would count the time spent waiting for other requests' fuel
//! slices and for other processes.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_not_sleep() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().saturating_sub(before);
        assert!(slept < Duration::from_millis(40), "{slept:?}");
        let before = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time().saturating_sub(before) < Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(x > 0);
    }
}
