//! `wasmgate calibrate`: measures how many instructions (wasmi fuel units)
//! this machine runs per millisecond, with the engine settings the server
//! uses, so that a board profile's `fuel_per_ms` can turn a `timeout` into a
//! deterministic instruction budget.
//!
//! Each run is timed on the thread's CPU time, not the wall clock: time the
//! machine gives to other processes does not count. What the CPU time still
//! sees (another process sharing the core's caches, a clock speed that
//! changes) only ever makes a run slower, so the fastest of several runs is
//! the measure, and the spread between the fastest and the slowest says
//! whether to trust it: on a busy desktop the wall clock gave anywhere from
//! 193 k to 1.06 M fuel/ms across five runs.

use std::time::{Duration, Instant};

use wasmi::{Module, Store};

use crate::runtime::Runtime;
use crate::runtime::clock::thread_cpu_time;

/// The fixed workload (`functions/bench/calibrate.wat`): arithmetic, memory
/// loads and stores, calls and branches in a loop of `run(n)` iterations.
const WORKLOAD: &[u8] = include_bytes!("../functions/bench/calibrate.wasm");

/// How long each measured run should take: long enough to swamp timer
/// resolution and call overhead, short enough that calibrating takes ~1 s.
const RUN_TIME: Duration = Duration::from_millis(150);
/// Measured runs; the fastest is reported.
pub const RUNS: usize = 7;
/// Spread (the slowest run's shortfall from the fastest, in percent) above
/// which the result is not to be trusted. Runs on an idle machine differ
/// by a few percent; 10 leaves room for that and catches a busy one.
pub const MAX_SPREAD_PERCENT: u64 = 10;

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Fuel the run consumed.
    pub fuel: u64,
    /// CPU time the thread spent on it.
    pub cpu: Duration,
    /// Wall-clock time it took.
    pub wall: Duration,
}

impl Sample {
    /// Fuel units per millisecond of CPU time.
    pub fn fuel_per_ms(&self) -> u64 {
        let micros = self.cpu.as_micros().max(1);
        u64::try_from(u128::from(self.fuel) * 1000 / micros).unwrap_or(u64::MAX)
    }
}

/// What the runs together say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The fastest run's fuel per ms: the result.
    pub best: u64,
    /// The slowest run's.
    pub worst: u64,
    /// `(best - worst) / best`, in percent.
    pub spread_percent: u64,
    /// The share of the wall-clock time the thread was on a CPU, in
    /// percent: well under 100 on a busy machine.
    pub cpu_share_percent: u64,
}

impl Summary {
    /// Summarises `samples` (at least one).
    pub fn of(samples: &[Sample]) -> Option<Self> {
        let best = samples.iter().map(Sample::fuel_per_ms).max()?;
        let worst = samples.iter().map(Sample::fuel_per_ms).min()?;
        let spread_percent = best.saturating_sub(worst).saturating_mul(100) / best.max(1);
        let cpu: Duration = samples.iter().map(|s| s.cpu).sum();
        let wall: Duration = samples.iter().map(|s| s.wall).sum();
        let share = cpu.as_micros().saturating_mul(100) / wall.as_micros().max(1);
        Some(Self {
            best,
            worst,
            spread_percent,
            cpu_share_percent: u64::try_from(share).unwrap_or(u64::MAX),
        })
    }

    /// Whether the runs agree closely enough to trust `best`.
    pub fn trusted(&self) -> bool {
        self.spread_percent <= MAX_SPREAD_PERCENT
    }
}

/// Runs the workload: a warm-up, then `RUNS` runs of about `RUN_TIME`
/// of CPU time. Returns the samples, sorted by `fuel_per_ms`.
pub fn measure(runtime: &Runtime) -> Result<Vec<Sample>, wasmi::Error> {
    let module = Module::new(runtime.engine(), WORKLOAD)?;
    let mut store = Store::new(runtime.engine(), ());
    store.set_fuel(u64::MAX)?;
    let instance =
        wasmi::Linker::new(runtime.engine()).instantiate_and_start(&mut store, &module)?;
    let run = instance.get_typed_func::<i32, i32>(&store, "run")?;
    let mut sample = |n: i32| -> Result<Sample, wasmi::Error> {
        let before = store.get_fuel()?;
        let (wall, cpu) = (Instant::now(), thread_cpu_time());
        std::hint::black_box(run.call(&mut store, n)?);
        let cpu = thread_cpu_time().saturating_sub(cpu);
        let wall = wall.elapsed();
        Ok(Sample {
            fuel: before.saturating_sub(store.get_fuel()?),
            cpu,
            wall,
        })
    };
    // Warm up (and translate the functions), then size the runs.
    let warm = sample(100_000)?;
    let per_iteration = (warm.fuel / 100_000).max(1);
    let run_ms = u64::try_from(RUN_TIME.as_millis()).unwrap_or(u64::MAX);
    let iterations = warm.fuel_per_ms().saturating_mul(run_ms) / per_iteration;
    let iterations = i32::try_from(iterations.max(1)).unwrap_or(i32::MAX);
    let mut samples = (0..RUNS)
        .map(|_| sample(iterations))
        .collect::<Result<Vec<_>, _>>()?;
    samples.sort_by_key(Sample::fuel_per_ms);
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(fuel_per_ms: u64, wall_ms: u64) -> Sample {
        Sample {
            fuel: fuel_per_ms * 100,
            cpu: Duration::from_millis(100),
            wall: Duration::from_millis(wall_ms),
        }
    }

    #[test]
    fn the_fastest_run_decides_and_a_wide_spread_is_not_trusted() {
        let calm = [sample(1_000_000, 100), sample(980_000, 100)];
        let calm = Summary::of(&calm).unwrap();
        assert_eq!(
            (calm.best, calm.worst, calm.spread_percent),
            (1_000_000, 980_000, 2)
        );
        assert_eq!(calm.cpu_share_percent, 100);
        assert!(calm.trusted());
        // The busy desktop of the issue: 193 k to 1.06 M.
        let busy = [sample(193_000, 400), sample(1_060_000, 100)];
        let busy = Summary::of(&busy).unwrap();
        assert_eq!((busy.best, busy.spread_percent), (1_060_000, 81));
        assert_eq!(busy.cpu_share_percent, 40);
        assert!(!busy.trusted());
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn runs_are_timed_on_cpu_time() {
        let samples = measure(&Runtime::new()).unwrap();
        assert_eq!(samples.len(), RUNS);
        for s in &samples {
            assert!(s.fuel > 0 && s.cpu > Duration::ZERO, "{s:?}");
            // CPU time never exceeds wall time by more than clock noise.
            assert!(s.cpu <= s.wall + Duration::from_millis(5), "{s:?}");
        }
    }
}
