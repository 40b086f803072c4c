//! The server's metrics, and their Prometheus text exposition (format
//! 0.0.4), written by hand (a crate for it costs more than this file).
//! Shared by every executor thread: counters are atomics, the per-label
//! request counts a map behind a `Mutex` held for one increment. Kept
//! across reloads (the application holds an `Arc`).
//!
//! Label cardinality is bounded: a request's `function` label is the name
//! of a configured `[[function]]` or `[[proxy]]`; of a `functions_dir`
//! function up to [`DIR_FUNCTIONS_CAP`] distinct names, later ones under
//! `_other`; a request no function answered (a made-up path, an
//! unreadable request) under `_none`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How many `functions_dir` functions get series of their own.
pub const DIR_FUNCTIONS_CAP: usize = 100;

/// Request duration buckets, in seconds.
const DURATION_BUCKETS: [f64; 8] = [0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0];
/// Fuel buckets, in units of fuel.
const FUEL_BUCKETS: [f64; 6] = [1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// A histogram over fixed buckets.
struct Histogram<const N: usize> {
    bounds: [f64; N],
    /// Observations at or below each bound (not cumulative), and above all.
    counts: [AtomicU64; N],
    over: AtomicU64,
    sum: Mutex<f64>,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [f64; N]) -> Self {
        Self {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            over: AtomicU64::new(0),
            sum: Mutex::new(0.0),
        }
    }

    fn observe(&self, value: f64) {
        match self.bounds.iter().position(|b| value <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Relaxed),
            None => self.over.fetch_add(1, Relaxed),
        };
        *self.sum.lock().unwrap_or_else(PoisonError::into_inner) += value;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, "histogram", help);
        let mut total = 0u64;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            total = total.saturating_add(count.load(Relaxed));
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {total}");
        }
        total = total.saturating_add(self.over.load(Relaxed));
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = *self.sum.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// `# HELP` and `# TYPE` of one metric.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One metric with one unlabelled sample.
pub fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Which series a request's function name falls in.
pub enum Series<'a> {
    /// A configured `[[function]]` or `[[proxy]]`.
    Configured(&'a str),
    /// A `functions_dir` function that was found.
    Dir(&'a str),
    /// No function answered.
    None,
}

/// Request counts by function, then by (status class, error kind): a
/// request looks its function up by `&str`, with no copy of the name.
type Requests = BTreeMap<String, BTreeMap<(&'static str, &'static str), u64>>;

/// The metrics the application records.
pub struct Metrics {
    requests: Mutex<Requests>,
    dir_functions: Mutex<BTreeSet<String>>,
    duration: Histogram<8>,
    fuel: Histogram<6>,
    /// Requests refused by admission: no in-flight slot, no memory.
    refused: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            dir_functions: Mutex::new(BTreeSet::new()),
            duration: Histogram::new(DURATION_BUCKETS),
            fuel: Histogram::new(FUEL_BUCKETS),
            refused: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(
        &self,
        series: Series<'_>,
        status: u16,
        kind: Option<&'static str>,
        fuel: u64,
        took: Duration,
    ) {
        let function = match series {
            Series::Configured(name) => name,
            Series::Dir(name) => {
                let mut dir = self
                    .dir_functions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if dir.contains(name) {
                    name
                } else if dir.len() < DIR_FUNCTIONS_CAP {
                    dir.insert(name.to_owned());
                    name
                } else {
                    "_other"
                }
            }
            Series::None => "_none",
        };
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        // The name is copied once, into the function's first series.
        if !requests.contains_key(function) {
            requests.insert(function.to_owned(), BTreeMap::new());
        }
        if let Some(series) = requests.get_mut(function) {
            let count = series.entry((class, kind.unwrap_or(""))).or_insert(0);
            *count = count.saturating_add(1);
        }
        drop(requests);
        self.duration.observe(took.as_secs_f64());
        // Exact below 2^53 fuel, far beyond any limit.
        #[allow(clippy::cast_precision_loss)]
        self.fuel.observe(fuel as f64);
    }

    /// Counts a request refused by admission (503 `overloaded`), after
    /// its wait in the admission queue: `message` is the refusal's.
    pub fn refused(&self, message: &str) {
        let memory = message != super::admission::IN_FLIGHT;
        self.refused[usize::from(memory)].fetch_add(1, Relaxed);
    }

    /// The request metrics in the exposition format.
    pub fn write(&self, out: &mut String) {
        header(
            out,
            "wasmgate_requests_total",
            "counter",
            "Requests answered, by function, status class and error kind.",
        );
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = requests.iter().flat_map(|(function, series)| {
            series
                .iter()
                .map(move |(key, count)| (function, key, count))
        });
        for (function, (class, kind), count) in samples {
            let _ = writeln!(
                out,
                "wasmgate_requests_total{{function=\"{}\",status=\"{class}\",error=\"{kind}\"}} {count}",
                escape(function)
            );
        }
        drop(requests);
        self.duration.write(
            out,
            "wasmgate_request_duration_seconds",
            "Time from reading a request's head to its response.",
        );
        self.fuel.write(
            out,
            "wasmgate_request_fuel",
            "Fuel a request's guests consumed.",
        );
        header(
            out,
            "wasmgate_admission_refusals_total",
            "counter",
            "Requests answered 503 overloaded by admission, after any wait in the admission queue: no in-flight slot (max_in_flight), or not enough memory_budget.",
        );
        for (reason, count) in ["in_flight", "memory"].iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "wasmgate_admission_refusals_total{{reason=\"{reason}\"}} {}",
                count.load(Relaxed)
            );
        }
        write_kv(out);
        write_pool(out);
    }
}

/// The instance pool's counters ([`crate::abi::pool`]).
fn write_pool(out: &mut String) {
    let (reused, made, idle) = crate::abi::pool::counts();
    header(
        out,
        "wasmgate_snapshot_instances_total",
        "counter",
        "Instances of http-wasm middleware snapshots handed to requests: from an idle one in the instance pool, or instantiated.",
    );
    let _ = writeln!(
        out,
        "wasmgate_snapshot_instances_total{{from=\"pool\"}} {reused}"
    );
    let _ = writeln!(
        out,
        "wasmgate_snapshot_instances_total{{from=\"new\"}} {made}"
    );
    sample(
        out,
        "wasmgate_instance_pool_bytes",
        "gauge",
        "Bytes of idle instances kept in the instance pools of all workers (instance_pool bounds each worker's).",
        idle,
    );
}

/// The KV operation counters ([`crate::store::counters`]), by operation.
fn write_kv(out: &mut String) {
    use crate::store::counters::{KvOp, counts};
    for (name, help, errors) in [
        (
            "wasmgate_kv_operations_total",
            "KV host function calls (and commits) by operation, refused ones included.",
            false,
        ),
        (
            "wasmgate_kv_errors_total",
            "KV host function calls answered an error value (and commits that failed), by operation.",
            true,
        ),
    ] {
        header(out, name, "counter", help);
        for op in KvOp::ALL {
            let (all, refused) = counts(op);
            let value = if errors { refused } else { all };
            let _ = writeln!(out, "{name}{{op=\"{}\"}} {value}", op.name());
        }
    }
}

/// A label value escaped for the exposition format.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
