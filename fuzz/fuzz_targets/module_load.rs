//! Module loading: random valid modules (wasm-smith, which may import the
//! host's functions) are loaded as the cache loads them (`cache::load`),
//! instantiated and called the way the server does, with a small fuel
//! budget and memory limit. Nothing may panic, and nothing may run away:
//! every call ends within its fuel.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasmgate::internals::abi::{self, GuestRequest};
use wasmgate::internals::cache;
use wasmgate::internals::config::{AbiChoice, FunctionSpec};
use wasmgate::internals::limits::{FunctionLimits, ServerLimits};
use wasmgate::internals::runtime::Shape;
use wasmgate::internals::runtime::{HostState, Runtime};
use wasmi::{ExternType, Module, Val};

/// Host functions a generated module may import (the signatures the server
/// links). wasm-smith picks any subset.
const HOST_IMPORTS: &str = r#"(module
  (import "wasmgate" "log" (func (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "args_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
)"#;

/// Small limits: a call is at most a few slices, memory at most 1 MiB.
fn limits() -> FunctionLimits {
    FunctionLimits {
        fuel: 20_000,
        fuel_slice: 5_000,
        timeout: Duration::from_secs(10),
        memory: 1 << 20,
        max_response: 64 << 10,
        max_log: 1 << 10,
        ..FunctionLimits::default()
    }
}

fn smith_config(u: &mut Unstructured<'_>) -> arbitrary::Result<wasm_smith::Config> {
    static IMPORTS: OnceLock<Vec<u8>> = OnceLock::new();
    let imports = IMPORTS.get_or_init(|| wat::parse_str(HOST_IMPORTS).expect("valid import list"));
    let mut config = wasm_smith::Config::arbitrary(u)?;
    // What wasmi (as the server builds it) supports; anything else is only
    // refused by validation, which the other inputs cover.
    config.simd_enabled = false;
    config.relaxed_simd_enabled = false;
    config.exceptions_enabled = false;
    config.threads_enabled = false;
    config.gc_enabled = false;
    config.memory64_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.wide_arithmetic_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.compact_imports_enabled = false;
    // Bounded sizes: the fuzzer looks for crashes, not for slow inputs
    // (what instantiation costs is the server's business to limit).
    config.max_funcs = config.max_funcs.min(50);
    config.max_globals = config.max_globals.min(50);
    config.max_tables = config.max_tables.min(4);
    config.max_table_elements = config.max_table_elements.min(1000);
    config.max_memories = config.max_memories.min(2);
    config.max_memory32_bytes = config.max_memory32_bytes.min(4 << 20);
    config.max_data_segments = config.max_data_segments.min(20);
    config.max_element_segments = config.max_element_segments.min(20);
    config.max_elements = config.max_elements.min(1000);
    config.max_instructions = config.max_instructions.min(500);
    config.max_imports = config.max_imports.min(20);
    config.available_imports = if u.arbitrary()? {
        Some(imports.clone())
    } else {
        None
    };
    Ok(config)
}

fn request() -> GuestRequest<'static> {
    GuestRequest {
        method: "POST",
        uri: "/fuzz?x=1",
        headers: vec![("content-type", b"application/json")],
        body: b"{\"a\":1}",
        trace_id: "fuzz",
    }
}

async fn run(runtime: &Runtime, bytes: &[u8]) {
    let mut function = FunctionSpec::from_dir(Path::new("/nonexistent"), "fuzz", &limits());
    function.env = vec![("K".into(), "v".into())];
    function.args = vec!["a".into()];
    let request = request();
    let server = ServerLimits::default();
    // The server's path: load as the cache does (structural limits, compile,
    // ABI, trial instantiation), then a request in a fresh sandbox.
    let file = std::env::temp_dir().join(format!("wasmgate-fuzz-{}.wasm", std::process::id()));
    if std::fs::write(&file, bytes).is_ok() {
        if let Ok(compiled) = cache::load(runtime, &file, AbiChoice::Auto, &server) {
            let outcome = abi::call(runtime, &compiled, &function, &request).await;
            assert!(outcome.fuel <= function.limits.fuel + function.limits.fuel_slice);
            return;
        }
    }
    // A module the loader refuses for its ABI (most random ones): still
    // instantiate it within the structural limits, with WASI state, and
    // call every exported function with zero arguments, so that random
    // code reaches the host functions.
    let Ok(shape) = Shape::of(bytes) else { return };
    if shape.check(&server.module).is_err() {
        return;
    }
    let Ok(module) = Module::new(runtime.engine(), bytes) else {
        return;
    };
    let state = HostState::new(
        "fuzz".into(),
        "fuzz".into(),
        function.limits.memory,
        function.limits.max_log,
    );
    let Ok(mut sandbox) =
        abi::wasi_json::sandbox(runtime, &module, shape.cost(), &function, &request, state)
    else {
        return;
    };
    let funcs: Vec<_> = module
        .exports()
        .filter_map(|e| match e.ty() {
            ExternType::Func(ty) => Some((e.name().to_owned(), ty.clone())),
            _ => None,
        })
        .take(8)
        .collect();
    for (name, ty) in funcs {
        let params: Vec<Val> = ty
            .params()
            .iter()
            .map(|t| Val::default_for_ty(*t))
            .collect();
        let mut results: Vec<Val> = ty
            .results()
            .iter()
            .map(|t| Val::default_for_ty(*t))
            .collect();
        if sandbox.call(&name, &params, &mut results).await.is_err() {
            // Out of fuel, a trap or an exit: the instance is done.
            break;
        }
    }
    assert!(sandbox.fuel_used() <= function.limits.fuel + function.limits.fuel_slice);
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(config) = smith_config(&mut u) else {
        return;
    };
    let Ok(module) = wasm_smith::Module::new(config, &mut u) else {
        return;
    };
    // A runtime (engine and linker) per module, as the cache keeps one per
    // loaded module.
    let runtime = Runtime::new();
    smol::block_on(run(&runtime, &module.to_bytes()));
});
