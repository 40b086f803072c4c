//! `host::*`: what one unit of fuel buys in each host function, against what
//! it buys in the guest's own instructions.
//!
//! ```sh
//! cargo bench --bench host          # 1-3 minutes; prints one table
//! ```
//!
//! Each case is a wasi-json module whose `_start` calls one host function
//! `N` times in a loop, run through the server's own sandbox (fuel slices
//! of the default size, yielding between them). The same loop without the
//! call is the baseline: per call, `ns` and `fuel` are the differences
//! between the two. The guest reference is the baseline loop itself and
//! `calibrate` (the `wasmgate calibrate` workload: arithmetic, memory,
//! calls, branches); the smaller of their ns/fuel is used, so the ratio is
//! conservative:
//!
//! `ratio = (host ns per call / host fuel per call) / guest ns per fuel`
//!
//! A ratio of 2 means one fuel spent in that host function holds the thread
//! twice as long as one fuel of guest code; the costs in `runtime::state::cost` keep
//! every ratio at or below ~2. Each case runs 5 times; the fastest run
//! counts (the machine is shared: slower runs are other people's work).
//!
//! Guest log lines go through `env_logger` (as in the server) into
//! `/dev/null`, one write per line.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use wasmgate::internals::abi::{GuestRequest, wasi_json};
use wasmgate::internals::config::FunctionSpec;
use wasmgate::internals::limits::{FunctionLimits, InstanceCost};
use wasmgate::internals::runtime::exchange::{Exchange, ExchangeLimits, Message};
use wasmgate::internals::runtime::{HostState, KvSlot, Runtime};
use wasmgate::internals::store::{Durability, Quota, Store, Txn};

/// Runs per case; the fastest counts.
const RUNS: usize = 5;

/// One host function call (with its arguments and a `drop` of its
/// result), repeated `calls` times per run.
struct Case {
    name: &'static str,
    call: &'static str,
    calls: u32,
}

const CASES: &[Case] = &[
    Case {
        name: "http_handler.get_config, 64 KiB",
        call: "(drop (call $get_config (i32.const 65536) (i32.const 65536)))",
        calls: 20_000,
    },
    Case {
        name: "http_handler.get_config, buffer too small",
        call: "(drop (call $get_config (i32.const 65536) (i32.const 0)))",
        calls: 200_000,
    },
    Case {
        name: "http_handler.get_header_names, 20 fields",
        call: "(drop (call $get_header_names (i32.const 0) (i32.const 65536) (i32.const 4096)))",
        calls: 100_000,
    },
    Case {
        name: "http_handler.get_header_values, 1 of 20 fields",
        call: "(drop (call $get_header_values (i32.const 0) (i32.const 2048) (i32.const 4) (i32.const 65536) (i32.const 4096)))",
        calls: 100_000,
    },
    Case {
        name: "http_handler.set_header_value, 15 B, 20 fields",
        call: "(call $set_header_value (i32.const 0) (i32.const 2048) (i32.const 4) (i32.const 2048) (i32.const 15))",
        calls: 100_000,
    },
    Case {
        name: "http_handler.write_body, 16 B",
        call: "(call $write_body (i32.const 1) (i32.const 2048) (i32.const 16))",
        calls: 200_000,
    },
    Case {
        name: "http_handler.get_status_code",
        call: "(drop (call $get_status_code))",
        calls: 200_000,
    },
    Case {
        name: "log, level off, 0 B",
        call: "(call $log (i32.const 5) (i32.const 1024) (i32.const 0))",
        calls: 200_000,
    },
    Case {
        name: "log, level off, 1 MiB",
        call: "(call $log (i32.const 5) (i32.const 0) (i32.const 1048576))",
        calls: 200_000,
    },
    Case {
        name: "log, written, 0 B",
        call: "(call $log (i32.const 3) (i32.const 1024) (i32.const 0))",
        calls: 20_000,
    },
    Case {
        name: "log, written, 1 KiB of \\x01",
        call: "(call $log (i32.const 3) (i32.const 4096) (i32.const 1024))",
        calls: 20_000,
    },
    Case {
        name: "log, written, 1 KiB of text",
        call: "(call $log (i32.const 3) (i32.const 5120) (i32.const 1024))",
        calls: 20_000,
    },
    Case {
        name: "random_get 0 B",
        call: "(drop (call $random_get (i32.const 4096) (i32.const 0)))",
        calls: 200_000,
    },
    Case {
        name: "random_get 16 B",
        call: "(drop (call $random_get (i32.const 4096) (i32.const 16)))",
        calls: 100_000,
    },
    Case {
        name: "random_get 4 KiB",
        call: "(drop (call $random_get (i32.const 4096) (i32.const 4096)))",
        calls: 5_000,
    },
    Case {
        name: "random_get 1 MiB",
        call: "(drop (call $random_get (i32.const 65536) (i32.const 1048576)))",
        calls: 30,
    },
    Case {
        name: "random_get 2 MiB (EINVAL)",
        call: "(drop (call $random_get (i32.const 0) (i32.const 2097152)))",
        calls: 200_000,
    },
    Case {
        name: "fd_write stdout, 1 iovec of 16 B",
        call: "(drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 60)))",
        calls: 100_000,
    },
    Case {
        name: "fd_write stdout, 1 iovec of 64 KiB",
        call: "(drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 60)))",
        calls: 200,
    },
    Case {
        name: "fd_write stdout, 1024 iovecs of 0 B",
        call: "(drop (call $fd_write (i32.const 1) (i32.const 8192) (i32.const 1024) (i32.const 60)))",
        calls: 20_000,
    },
    Case {
        name: "fd_write stderr, one 16 B line",
        call: "(drop (call $fd_write (i32.const 2) (i32.const 24) (i32.const 1) (i32.const 60)))",
        calls: 20_000,
    },
    Case {
        name: "fd_write stderr, 1 KiB of newlines",
        call: "(drop (call $fd_write (i32.const 2) (i32.const 32) (i32.const 1) (i32.const 60)))",
        calls: 2_000,
    },
    Case {
        name: "fd_read 16 B",
        call: "(drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 60)))",
        calls: 100_000,
    },
    Case {
        name: "fd_read, 1024 iovecs of 0 B",
        call: "(drop (call $fd_read (i32.const 0) (i32.const 8192) (i32.const 1024) (i32.const 60)))",
        calls: 20_000,
    },
    Case {
        name: "fd_read 64 KiB",
        call: "(drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 60)))",
        calls: 160,
    },
    Case {
        name: "clock_time_get realtime",
        call: "(drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "clock_time_get monotonic",
        call: "(drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "clock_res_get",
        call: "(drop (call $clock_res_get (i32.const 1) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "sched_yield",
        call: "(drop (call $sched_yield))",
        calls: 200_000,
    },
    Case {
        name: "fd_fdstat_get",
        call: "(drop (call $fd_fdstat_get (i32.const 1) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "fd_prestat_get",
        call: "(drop (call $fd_prestat_get (i32.const 3) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "fd_prestat_dir_name",
        call: "(drop (call $fd_prestat_dir_name (i32.const 3) (i32.const 64) (i32.const 8)))",
        calls: 200_000,
    },
    Case {
        name: "fd_close",
        call: "(drop (call $fd_close (i32.const 9)))",
        calls: 200_000,
    },
    Case {
        name: "fd_seek",
        call: "(drop (call $fd_seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "args_sizes_get",
        call: "(drop (call $args_sizes_get (i32.const 64) (i32.const 68)))",
        calls: 200_000,
    },
    Case {
        name: "args_get (4 args)",
        call: "(drop (call $args_get (i32.const 64) (i32.const 128)))",
        calls: 200_000,
    },
    Case {
        name: "environ_get (4 vars)",
        call: "(drop (call $environ_get (i32.const 64) (i32.const 128)))",
        calls: 200_000,
    },
    Case {
        name: "environ_sizes_get",
        call: "(drop (call $environ_sizes_get (i32.const 64) (i32.const 68)))",
        calls: 200_000,
    },
    Case {
        name: "poll_oneoff, 0 subscriptions (EINVAL)",
        call: "(drop (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64)))",
        calls: 200_000,
    },
    Case {
        name: "kv_get, 16 B value (hit)",
        call: "(drop (call $kv_get (i32.const 2048) (i32.const 3) (i32.const 4096) (i32.const 64)))",
        calls: 100_000,
    },
    Case {
        name: "kv_get, missing key",
        call: "(drop (call $kv_get (i32.const 2049) (i32.const 3) (i32.const 4096) (i32.const 64)))",
        calls: 100_000,
    },
    Case {
        name: "kv_set, 3 B key, 16 B value",
        call: "(drop (call $kv_set (i32.const 2052) (i32.const 3) (i32.const 2048) (i32.const 16) (i64.const 0)))",
        calls: 100_000,
    },
    Case {
        name: "kv_incr",
        call: "(drop (call $kv_incr (i32.const 2056) (i32.const 3) (i64.const 1) (i64.const 0) (i32.const 64)))",
        calls: 100_000,
    },
    Case {
        name: "kv_list, 10 keys",
        call: "(drop (call $kv_list (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 4096) (i32.const 1024)))",
        calls: 20_000,
    },
    Case {
        name: "sha256, 16 B",
        call: "(call $sha256 (i32.const 2048) (i32.const 16) (i32.const 64))",
        calls: 100_000,
    },
    Case {
        name: "hmac_sha256, 16 B key, 1 KiB data",
        call: "(call $hmac_sha256 (i32.const 2048) (i32.const 16) (i32.const 3072) (i32.const 1024) (i32.const 64))",
        calls: 20_000,
    },
    Case {
        name: "path_open on descriptor 3 (EBADF)",
        call: "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 64)))",
        calls: 200_000,
    },
];

/// Every import a case may use, and memory laid out for them: iovecs at 0
/// (16 B at 1024), 16 (64 KiB at 65536), 24 ("0123456789abcde\n" at 2048),
/// 32 (1 KiB of newlines at 3072); 1024 empty iovecs at 8192.
const IMPORTS: &str = r#"
  (import "wasmgate" "log" (func $log (param i32 i32 i32)))
  (import "wasmgate" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_set" (func $kv_set (param i32 i32 i32 i32 i64) (result i32)))
  (import "wasmgate" "kv_incr" (func $kv_incr (param i32 i32 i64 i64 i32) (result i32)))
  (import "wasmgate" "sha256" (func $sha256 (param i32 i32 i32)))
  (import "wasmgate" "hmac_sha256" (func $hmac_sha256 (param i32 i32 i32 i32 i32)))
  (import "wasmgate" "kv_list" (func $kv_list (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "get_header_names" (func $get_header_names (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "get_status_code" (func $get_status_code (result i32)))
  (memory (export "memory") 33)
  (data (i32.const 0) "\00\04\00\00\10\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\01\00\00\00\01\00" "\00\08\00\00\10\00\00\00" "\00\0c\00\00\00\04\00\00")
  (data (i32.const 2048) "0123456789abcde\0a")
"#;

fn module(call: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {IMPORTS}
  (func (export "_start") (local $i i32)
    ;; 1 KiB of newlines at 3072, 1 KiB of \01 (escaped in the log) at 4096
    (memory.fill (i32.const 3072) (i32.const 10) (i32.const 1024))
    (memory.fill (i32.const 4096) (i32.const 1) (i32.const 1024))
    (memory.fill (i32.const 5120) (i32.const 0x61) (i32.const 1024))
    (local.set $i (global.get $n))
    (loop $again
      {call}
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $again (local.get $i))))
  (global $n (mut i32) (i32.const 0))
  (func (export "set_n") (param i32) (global.set $n (local.get 0))))"#
    ))
    .unwrap_or_else(|e| panic!("{call}: {e}"))
}

struct Bench {
    runtime: Runtime,
    spec: FunctionSpec,
    body: Vec<u8>,
    /// The KV store the `kv_*` cases use: keys `012` (the 16 B value at
    /// 2048) and `k0`..`k9` committed in namespace `bench`.
    store: std::sync::Arc<Store>,
}

/// A request's KV slot on `bench`'s store.
fn kv_slot(bench: &Bench) -> Rc<RefCell<KvSlot>> {
    let quota = Quota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
        max_value: u64::MAX,
    };
    let txn = Txn::new(
        std::sync::Arc::clone(&bench.store),
        std::sync::Arc::from(&b"bench"[..]),
        quota,
    );
    Rc::new(RefCell::new(KvSlot {
        txn: Some(txn),
        ..KvSlot::default()
    }))
}

/// One measured run: wall time and fuel of `_start` alone.
fn run(bench: &Bench, module: &wasmi::Module, calls: u32) -> (Duration, u64) {
    let request = GuestRequest {
        method: "POST",
        uri: "/bench",
        headers: Vec::new(),
        body: &bench.body,
        trace_id: "bench",
    };
    let mut state = HostState::new(
        Rc::from("bench"),
        Rc::from("bench"),
        bench.spec.limits.memory,
        bench.spec.limits.max_log,
    );
    state.kv = kv_slot(bench);
    // Instantiation is not measured: no instance cost.
    let cost = InstanceCost { bytes: 0, fuel: 0 };
    let mut sandbox =
        wasi_json::sandbox(&bench.runtime, module, cost, &bench.spec, &request, state)
            .unwrap_or_else(|(e, _)| panic!("{e}"));
    sandbox.store_mut().data_mut().http = Some(Box::new(exchange()));
    smol::future::block_on(sandbox.call("set_n", &[wasmi::Val::I32(calls as i32)], &mut []))
        .unwrap();
    let before = sandbox.fuel_used();
    let started = Instant::now();
    smol::future::block_on(sandbox.call("_start", &[], &mut [])).unwrap();
    (started.elapsed(), sandbox.fuel_used() - before)
}

/// The exchange of the `http_handler` cases: 20 request header fields
/// (the 10th named `0123`, as the string at 2048 starts), a 64 KiB
/// config, and no limits that the cases reach.
fn exchange() -> Exchange {
    let mut message = Message::default();
    for i in 0..20 {
        let name = if i == 10 {
            "0123".to_owned()
        } else {
            format!("x-header-{i}")
        };
        message
            .request_headers
            .push((name, b"a value of some length".to_vec()));
    }
    let limits = ExchangeLimits {
        max_body: u64::MAX,
        max_request_headers: 1000,
        max_request_header_bytes: u64::MAX,
        max_response_headers: 1000,
        max_response: u64::MAX,
    };
    let mut exchange = Exchange::new(vec![b'c'; 64 << 10].into(), limits);
    exchange.message = message;
    exchange
}

/// Mean ns and fuel of one call of `_start` (looping once), over many
/// fresh sandboxes; only the call is timed.
fn whole_calls(bench: &Bench, module: &wasmi::Module) -> (f64, f64) {
    const N: u32 = 2_000;
    let (mut ns, mut fuel) = (0.0, 0.0);
    let request = GuestRequest {
        method: "GET",
        uri: "/bench",
        headers: Vec::new(),
        body: b"",
        trace_id: "bench",
    };
    for _ in 0..N {
        let state = HostState::new(Rc::from("bench"), Rc::from("bench"), 1 << 26, 0);
        let cost = InstanceCost { bytes: 0, fuel: 0 };
        let mut sandbox =
            wasi_json::sandbox(&bench.runtime, module, cost, &bench.spec, &request, state)
                .unwrap_or_else(|(e, _)| panic!("{e}"));
        smol::future::block_on(sandbox.call("set_n", &[wasmi::Val::I32(1)], &mut [])).unwrap();
        let before = sandbox.fuel_used();
        let started = Instant::now();
        let _ = smol::future::block_on(sandbox.call("_start", &[], &mut []));
        ns += started.elapsed().as_nanos() as f64;
        fuel += (sandbox.fuel_used() - before) as f64;
    }
    (ns / f64::from(N), fuel / f64::from(N))
}

/// The fastest of [`RUNS`] runs of `module` and of `baseline` (the same
/// loop without the call), taken in turns so that both see the same load.
fn best(
    bench: &Bench,
    module: &wasmi::Module,
    baseline: &wasmi::Module,
    calls: u32,
) -> ((Duration, u64), (Duration, u64)) {
    let mut case = (Duration::MAX, 0);
    let mut base = (Duration::MAX, 0);
    for _ in 0..RUNS {
        let c = run(bench, module, calls);
        if c.0 < case.0 {
            case = c;
        }
        let b = run(bench, baseline, calls.max(BASE_CALLS));
        if b.0 < base.0 {
            base = b;
        }
    }
    (case, base)
}

/// Fewest iterations of a baseline run, so that it is long enough to time.
const BASE_CALLS: u32 = 200_000;

/// A fresh store in a temp dir with the keys the `kv_*` cases read.
fn kv_store() -> std::sync::Arc<Store> {
    let dir = std::env::temp_dir().join(format!("wasmgate-bench-kv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = Store::open(&dir, Durability::Always).unwrap();
    let quota = Quota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
        max_value: u64::MAX,
    };
    let mut txn = Txn::new(
        std::sync::Arc::clone(&store),
        std::sync::Arc::from(&b"bench"[..]),
        quota,
    );
    txn.set(b"012", b"0123456789abcde\n", 0).unwrap();
    for i in 0..10 {
        txn.set(format!("k{i}").as_bytes(), b"v", 0).unwrap();
    }
    smol::future::block_on(txn.commit().unwrap().durable()).unwrap();
    store
}

fn main() {
    let sink = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .target(env_logger::Target::Pipe(Box::new(sink)))
        .init();

    let limits = FunctionLimits {
        fuel: u64::MAX / 4,
        timeout: Duration::from_secs(3600),
        memory: 64 << 20,
        max_response: u64::MAX,
        max_log: u64::MAX,
        ..FunctionLimits::default()
    };
    let mut spec = FunctionSpec::from_dir(Path::new("."), "bench", &limits);
    spec.args = ["--one", "--two", "three", "four"]
        .map(String::from)
        .to_vec();
    spec.env = [
        ("A", "1"),
        ("PATH_LIKE", "/x/y/z"),
        ("B", "two"),
        ("C", "3"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let bench = Bench {
        runtime: Runtime::new(),
        spec,
        // stdin for "fd_read 64 KiB": ~10 MiB of JSON.
        body: vec![b'x'; 10 << 20],
        store: kv_store(),
    };

    let samples = wasmgate::internals::calibrate::measure(&bench.runtime).unwrap();
    let calibrate_ns = 1e6 / samples[samples.len() / 2].fuel_per_ms() as f64;

    let baseline = wasmi::Module::new(bench.runtime.engine(), module("(nop)")).unwrap();
    println!(
        "guest reference: `calibrate` {calibrate_ns:.3} ns/fuel; the baseline loop (per case, below) is used when faster"
    );
    println!();
    println!(
        "| host function | ns/call | fuel/call | ns/fuel | guest ns/fuel | ratio |\n|---|---:|---:|---:|---:|---:|"
    );
    let mut worst: f64 = 0.0;
    let mut fastest_guest_ns = calibrate_ns;
    for case in CASES {
        let module = wasmi::Module::new(bench.runtime.engine(), module(case.call)).unwrap();
        let ((t, f), (bt, bf)) = best(&bench, &module, &baseline, case.calls);
        let base_calls = f64::from(case.calls.max(BASE_CALLS));
        let (base_ns, base_fuel) = (bt.as_nanos() as f64 / base_calls, bf as f64 / base_calls);
        let guest_ns = (bt.as_nanos() as f64 / bf as f64).min(calibrate_ns);
        let calls = f64::from(case.calls);
        let ns = (t.as_nanos() as f64 / calls - base_ns).max(0.0);
        let fuel = f as f64 / calls - base_fuel;
        let ratio = ns / fuel / guest_ns;
        worst = worst.max(ratio);
        fastest_guest_ns = fastest_guest_ns.min(guest_ns);
        println!(
            "| {} | {ns:.0} | {fuel:.0} | {:.3} | {guest_ns:.3} | {ratio:.2} |",
            case.name,
            ns / fuel
        );
    }
    // proc_exit ends the call, so it cannot loop: whole calls of `_start`
    // that exit at once, against whole calls that return at once.
    let exits = wasmi::Module::new(
        bench.runtime.engine(),
        module("(call $proc_exit (i32.const 0))"),
    )
    .unwrap();
    let returns = wasmi::Module::new(bench.runtime.engine(), module("(return)")).unwrap();
    let (mut exit_ns, mut return_ns, mut exit_fuel) = (f64::MAX, f64::MAX, 0.0);
    for _ in 0..RUNS {
        let (t, f) = whole_calls(&bench, &exits);
        if t < exit_ns {
            (exit_ns, exit_fuel) = (t, f);
        }
        return_ns = return_ns.min(whole_calls(&bench, &returns).0);
    }
    let (ns, fuel) = (exit_ns - return_ns, exit_fuel);
    let guest_ns = fastest_guest_ns;
    let ratio = ns / fuel / guest_ns;
    worst = worst.max(ratio);
    println!(
        "| proc_exit (whole calls; the fastest guest reference above) | {ns:.0} | {fuel:.0} | {:.3} | {guest_ns:.3} | {ratio:.2} |",
        ns / fuel
    );
    println!();
    println!("worst ratio: {worst:.2}");
}
