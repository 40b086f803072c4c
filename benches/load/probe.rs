//! Runs one request path N times through the library API, for profiling
//! with callgrind (instruction counts are reproducible on a noisy machine,
//! wall-clock times are not). `benches/load/profile.sh` builds it with
//! symbols and runs it under valgrind.
//!
//! ```sh
//! cargo run --release --example probe -- hello 10000
//! ```
//!
//! Paths: `instantiate` (`Sandbox::new` of hello), `instantiate_call`
//! (+ `wasmgate_alloc`), `hello` (`abi::call`, native), `tax` (`abi::call`,
//! wasi-json), `sieve` (`abi::call`, `n=1000000`), `compile` (`cache::load`
//! of tax.wasm), `reload` (`cache::load` + one request, module dropped: RSS
//! growth per load with one shared engine, as the server's LRU does) and
//! `reload_engine` (the same with a new `Runtime` per load). `PROBE_MODULE=FILE` replaces the module (e.g. a build of
//! `hello` with a smaller stack). With `RUST_LOG` set, a logger writing to stderr is
//! installed, as in the server.

use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use wasmgate::internals::abi::{self, GuestRequest};
use wasmgate::internals::cache;
use wasmgate::internals::config::{AbiChoice, FunctionSpec};
use wasmgate::internals::limits::{FunctionLimits, ServerLimits};
use wasmgate::internals::runtime::{HostState, Runtime, Sandbox};
use wasmi::Val;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        env_logger::Builder::from_env(env_logger::Env::default()).init();
    }
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "hello".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions");
    let name = match what.as_str() {
        "instantiate" | "instantiate_call" | "hello" | "reload" | "reload_engine"
        | "keep_modules" | "keep_engines" => "hello",
        "sieve_fuel_on" | "sieve_fuel_off" => "sieve",
        "compile" => "tax",
        other => other,
    };
    let rt = Runtime::new();
    let mut spec = FunctionSpec::from_dir(&dir, name, &FunctionLimits::default());
    if let Some(path) = std::env::var_os("PROBE_MODULE").filter(|p| !p.is_empty()) {
        spec.module = path.into();
    }
    let loaded = cache::load(&rt, &spec.module, AbiChoice::Auto, &ServerLimits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (uri, body, method): (&str, &[u8], &str) = match name {
        "tax" => ("/tax", br#"{"id":"A1","value":100}"#, "POST"),
        "sieve" => ("/sieve?n=1000000", b"", "GET"),
        _ => ("/hello?name=Pi", b"", "GET"),
    };
    let request = GuestRequest {
        method,
        uri,
        headers: vec![
            ("host", b"127.0.0.1:8080"),
            ("user-agent", b"wrk"),
            ("accept", b"*/*"),
        ],
        body,
        trace_id: TRACE,
    };
    let state = || {
        HostState::new(
            Rc::from(spec.name.as_str()),
            Rc::from(TRACE),
            spec.limits.memory,
            spec.limits.max_log,
        )
    };

    let unsliced = what
        .strip_prefix("sieve_fuel_")
        .map(|on| Unsliced::new(on == "on", &spec.module));

    let mut fuel = 0;
    let mut kept = Vec::new();
    let started = Instant::now();
    for _ in 0..n {
        match what.as_str() {
            "instantiate" => {
                let sandbox = Sandbox::new(&rt, &loaded.module, loaded.cost, &spec.limits, state())
                    .unwrap_or_else(|(e, _)| panic!("{e}"));
                fuel = sandbox.fuel_used();
                drop(sandbox);
            }
            "instantiate_call" => {
                let mut sandbox =
                    Sandbox::new(&rt, &loaded.module, loaded.cost, &spec.limits, state())
                        .unwrap_or_else(|(e, _)| panic!("{e}"));
                let mut out = [Val::I32(0)];
                smol::future::block_on(sandbox.call("wasmgate_alloc", &[Val::I32(64)], &mut out))
                    .unwrap();
                fuel = sandbox.fuel_used();
            }
            "reload" | "reload_engine" => {
                let fresh;
                let rt = if what == "reload" {
                    &rt
                } else {
                    fresh = Runtime::new();
                    &fresh
                };
                let l = cache::load(rt, &spec.module, AbiChoice::Auto, &ServerLimits::default())
                    .unwrap();
                let outcome = smol::future::block_on(abi::call(rt, &l, &spec, &request));
                fuel = outcome.fuel;
            }
            "keep_modules" | "keep_engines" => {
                let own = (what == "keep_engines").then(Runtime::new);
                let l = cache::load(
                    own.as_ref().unwrap_or(&rt),
                    &spec.module,
                    AbiChoice::Auto,
                    &ServerLimits::default(),
                )
                .unwrap();
                let outcome = smol::future::block_on(abi::call(
                    own.as_ref().unwrap_or(&rt),
                    &l,
                    &spec,
                    &request,
                ));
                fuel = outcome.fuel;
                kept.push((own, l));
            }
            "sieve_fuel_on" | "sieve_fuel_off" => {
                let body = unsliced.as_ref().unwrap().run(&request, state());
                assert!(body.starts_with(b"primes below"));
            }
            "compile" => {
                cache::load(&rt, &spec.module, AbiChoice::Auto, &ServerLimits::default()).unwrap();
            }
            _ => {
                let outcome = smol::future::block_on(abi::call(&rt, &loaded, &spec, &request));
                fuel = outcome.fuel;
                if let Err(e) = outcome.result {
                    panic!("{e}");
                }
            }
        }
    }
    let per = started.elapsed() / n.max(1) as u32;
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    eprintln!(
        "probe {what}: {n} iterations, {per:?} each, fuel {fuel}, {rss} ({} kept)",
        kept.len()
    );
}

/// The sieve without `Sandbox`: one unsliced call per export on the
/// server's engine settings, fuel metering on or off.
struct Unsliced {
    runtime: Runtime,
    module: wasmi::Module,
    metered: bool,
}

impl Unsliced {
    fn new(metered: bool, path: &Path) -> Self {
        let runtime = Runtime::with_fuel_metering(metered);
        let module = wasmi::Module::new(runtime.engine(), std::fs::read(path).unwrap()).unwrap();
        Self {
            runtime,
            module,
            metered,
        }
    }

    fn run(&self, request: &GuestRequest<'_>, state: HostState) -> Vec<u8> {
        let mut store = wasmi::Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limiter);
        if self.metered {
            store.set_fuel(u64::MAX / 2).unwrap();
        }
        let instance = self
            .runtime
            .linker()
            .instantiate_and_start(&mut store, &self.module)
            .unwrap();
        let bytes = postcard::to_allocvec(request).unwrap();
        let alloc = instance
            .get_typed_func::<i32, i32>(&store, "wasmgate_alloc")
            .unwrap();
        let ptr = alloc.call(&mut store, bytes.len() as i32).unwrap();
        let memory = instance.get_memory(&store, "memory").unwrap();
        memory.write(&mut store, ptr as usize, &bytes).unwrap();
        let handle = instance
            .get_typed_func::<(i32, i32), i64>(&store, "wasmgate_handle")
            .unwrap();
        let packed = handle.call(&mut store, (ptr, bytes.len() as i32)).unwrap() as u64;
        let (p, l) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        let response: abi::GuestResponse =
            postcard::from_bytes(&memory.data(&store)[p..p + l]).unwrap();
        response.body
    }
}
