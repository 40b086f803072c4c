//! `wasmgate calibrate`: measures how many instructions (wasmi fuel units)
//! this machine runs per millisecond, with the engine settings the server
//! uses, so that a board profile's `fuel_per_ms` can turn a `timeout` into a
//! deterministic instruction budget.

use std::time::{Duration, Instant};

use wasmi::{Module, Store};

use crate::runtime::Runtime;

/// The fixed workload (`functions/bench/calibrate.wat`): arithmetic, memory
/// loads and stores, calls and branches in a loop of `run(n)` iterations.
const WORKLOAD: &[u8] = include_bytes!("../functions/bench/calibrate.wasm");

/// How long each measured run should take: long enough to swamp timer
/// resolution and call overhead, short enough that calibrating takes ~1 s.
const RUN_TIME: Duration = Duration::from_millis(200);
/// Measured runs; the median is reported.
const RUNS: usize = 5;

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Fuel the run consumed.
    pub fuel: u64,
    /// Wall-clock time it took.
    pub elapsed: Duration,
}

impl Sample {
    /// Fuel units per millisecond.
    pub fn fuel_per_ms(&self) -> u64 {
        let micros = self.elapsed.as_micros().max(1);
        u64::try_from(u128::from(self.fuel) * 1000 / micros).unwrap_or(u64::MAX)
    }
}

/// Runs the workload: a warm-up, then `RUNS` runs of about `RUN_TIME`.
/// Returns the samples, sorted by `fuel_per_ms`.
pub fn measure(runtime: &Runtime) -> Result<Vec<Sample>, wasmi::Error> {
    let module = Module::new(runtime.engine(), WORKLOAD)?;
    let mut store = Store::new(runtime.engine(), ());
    store.set_fuel(u64::MAX)?;
    let instance =
        wasmi::Linker::new(runtime.engine()).instantiate_and_start(&mut store, &module)?;
    let run = instance.get_typed_func::<i32, i32>(&store, "run")?;
    let mut sample = |n: i32| -> Result<Sample, wasmi::Error> {
        let before = store.get_fuel()?;
        let started = Instant::now();
        std::hint::black_box(run.call(&mut store, n)?);
        let elapsed = started.elapsed();
        Ok(Sample {
            fuel: before - store.get_fuel()?,
            elapsed,
        })
    };
    // Warm up (and translate the functions), then size the runs.
    let warm = sample(100_000)?;
    let per_iteration = (warm.fuel / 100_000).max(1);
    let iterations = (warm.fuel_per_ms() * RUN_TIME.as_millis() as u64 / per_iteration)
        .clamp(1, i32::MAX as u64) as i32;
    let mut samples = (0..RUNS)
        .map(|_| sample(iterations))
        .collect::<Result<Vec<_>, _>>()?;
    samples.sort_by_key(Sample::fuel_per_ms);
    Ok(samples)
}
