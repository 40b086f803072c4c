//! Micro benchmarks of the request path, through the library API.
//!
//! ```sh
//! cargo bench --bench micro                  # everything (~2 minutes)
//! cargo bench --bench micro -- abi           # one group
//! ```
//!
//! Groups (divan prints them as a tree):
//!
//! - `sandbox::instantiate_call`: fresh `Store` + instance of `hello.wasm`
//!   and one call of its trivial export `wasmgate_alloc` (the native ABI's
//!   first step). `sandbox::instantiate` is the same without the call.
//! - `sandbox::instantiate_16mib`: a module declaring 256 pages (16 MiB, a
//!   default Zig build's) that touches one: what declared, unused memory
//!   costs per request.
//! - `abi::wasi_json_module`: the whole wasi-json request of the module
//!   named by `MICRO_MODULE=path.wasm` (a Go or Zig build); skipped without.
//! - `abi::native`: `abi::call` on `hello.wasm`, encoding and decoding included;
//!   `abi::native_floor` the same on a one-page module that does nothing.
//! - `abi::wasi_json`: `abi::call` on `tax.wasm` with a JSON order, and the
//!   pieces of it (`wasi_json_*`) for the breakdown in PERFORMANCE.md.
//! - `sandbox::runtime_new`: `Runtime::new` (engine + linker).
//! - `cache::cold_compile`: `cache::load` of a never-seen ~300 KiB module
//!   generated at start-up (every iteration compiles it again: wasmi keeps
//!   no per-file cache); `cache::cold_first_request` adds the first request.
//! - `fuel::overhead`: `sieve.wasm` on two engines with identical settings
//!   except `consume_fuel`. The library has no switch for metering, so the
//!   engines and the native-ABI call are built here by hand.
//!
//! No logger is installed: `log::info!` calls in host code cost only the
//! level check. The load benchmark (`benches/load/run.sh`) measures logging.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use divan::Bencher;
use wasmgate::internals::abi::{self as wabi, Abi, GuestRequest, GuestResponse, wasi_json};
use wasmgate::internals::cache as wcache;
use wasmgate::internals::config::{AbiChoice, FunctionSpec};
use wasmgate::internals::limits::{FunctionLimits, ServerLimits};
use wasmgate::internals::runtime::{HostState, Runtime, Sandbox};
use wasmi::Val;

fn main() {
    // Context for the numbers, printed before divan's table.
    eprintln!(
        "cache: the generated module is {} KiB ({} functions)",
        cache::generate().len() / 1024,
        cache::FUNCS
    );
    eprintln!("fuel: {} uses {} fuel", fuel::URI, fuel::sieve_fuel());
    divan::main();
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn functions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("functions")
}

fn load(rt: &Runtime, name: &str) -> (wcache::Compiled, FunctionSpec) {
    let spec = FunctionSpec::from_dir(&functions(), name, &FunctionLimits::default());
    let loaded = wcache::load(rt, &spec.module, AbiChoice::Auto, &ServerLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (loaded, spec)
}

fn state(spec: &FunctionSpec) -> HostState {
    HostState::new(
        Rc::from(spec.name.as_str()),
        Rc::from(TRACE),
        spec.limits.memory,
        spec.limits.max_log,
    )
}

/// What wrk sends: `GET /hello?name=Pi` with three headers.
fn hello_request() -> GuestRequest<'static> {
    GuestRequest {
        method: "GET",
        uri: "/hello?name=Pi",
        headers: vec![
            ("host", b"127.0.0.1:8080"),
            ("user-agent", b"wrk"),
            ("accept", b"*/*"),
        ],
        body: b"",
        trace_id: TRACE,
    }
}

const ORDER: &[u8] = br#"{"id":"A1","value":100}"#;

fn tax_request() -> GuestRequest<'static> {
    GuestRequest {
        method: "POST",
        uri: "/tax",
        headers: vec![
            ("host", b"127.0.0.1:8080"),
            ("content-type", b"application/json"),
            ("content-length", b"23"),
        ],
        body: ORDER,
        trace_id: TRACE,
    }
}

fn call(
    rt: &Runtime,
    loaded: &wcache::Compiled,
    spec: &FunctionSpec,
    req: &GuestRequest<'_>,
) -> GuestResponse {
    let outcome = smol::future::block_on(wabi::call(rt, loaded, spec, req));
    match outcome.result {
        Ok(r) => r,
        Err(e) => panic!("{}: {e}", spec.name),
    }
}

mod sandbox {
    use super::*;

    /// `Sandbox::new` only: store, limiter, linking, memory and data segments.
    #[divan::bench]
    fn instantiate(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "hello");
        bencher.bench_local(|| {
            Sandbox::new(&rt, &loaded.module, loaded.cost, &spec.limits, state(&spec))
                .unwrap_or_else(|(e, _)| panic!("{e}"))
        });
    }

    /// The shared engine and linker (48 host functions), built once at
    /// start-up today; the price of one engine per cached module.
    #[divan::bench]
    fn runtime_new() -> Runtime {
        Runtime::new()
    }

    /// Fresh store + instance of `hello` and a call of `wasmgate_alloc(64)`,
    /// dropped at the end, as every request does.
    #[divan::bench]
    fn instantiate_call(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "hello");
        bencher.bench_local(|| {
            let mut sandbox =
                Sandbox::new(&rt, &loaded.module, loaded.cost, &spec.limits, state(&spec))
                    .unwrap_or_else(|(e, _)| panic!("{e}"));
            let mut out = [Val::I32(0)];
            smol::future::block_on(sandbox.call("wasmgate_alloc", &[Val::I32(64)], &mut out))
                .unwrap();
            sandbox
        });
    }

    /// A module that declares 256 pages (16 MiB) of initial memory, as a
    /// default Zig build does (its 16 MiB stack), and touches one page.
    /// `instantiate_16mib` minus `instantiate` is what setting up memory
    /// the guest never uses costs per request (see PERFORMANCE.md, "Declared
    /// memory").
    pub const WAT_16MIB: &str = r#"(module
        (memory (export "memory") 256)
        (func (export "wasmgate_alloc") (param i32) (result i32)
          (i32.store (i32.const 65536) (local.get 0))
          (i32.const 4096)))"#;

    /// A limit that lets the 16 MiB module in (the default is 8 MiB).
    pub fn limits_32mib() -> FunctionLimits {
        FunctionLimits {
            memory: 32 << 20,
            ..FunctionLimits::default()
        }
    }

    /// `Sandbox::new` of [`WAT_16MIB`] and one call that touches a page.
    #[divan::bench]
    fn instantiate_16mib(bencher: Bencher) {
        let rt = Runtime::new();
        let bytes = wat::parse_str(WAT_16MIB).unwrap();
        let module = wasmi::Module::new(rt.engine(), &bytes).unwrap();
        let shape = wasmgate::internals::runtime::Shape::of(&bytes).unwrap();
        let spec = FunctionSpec::from_dir(&functions(), "big", &limits_32mib());
        bencher.bench_local(|| {
            let mut sandbox = Sandbox::new(&rt, &module, shape.cost(), &spec.limits, state(&spec))
                .unwrap_or_else(|(e, _)| panic!("{e}"));
            let mut out = [Val::I32(0)];
            smol::future::block_on(sandbox.call("wasmgate_alloc", &[Val::I32(64)], &mut out))
                .unwrap();
            sandbox
        });
    }
}

mod abi {
    use super::*;

    /// The whole native-ABI request of `GET /hello?name=Pi`.
    #[divan::bench(name = "native")]
    fn native(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "hello");
        assert_eq!(loaded.abi, Abi::Native);
        let req = hello_request();
        let r = call(&rt, &loaded, &spec, &req);
        assert_eq!(r.body, b"Hello, Pi!\n");
        bencher.bench_local(|| call(&rt, &loaded, &spec, &req));
    }

    /// The floor of the native ABI: `abi::call` on a hand-written module
    /// with one page of memory whose handler returns a fixed response
    /// (about 10 fuel). Everything above this in `native` is the guest's
    /// own work and its memory.
    #[divan::bench]
    fn native_floor(bencher: Bencher) {
        let rt = Runtime::new();
        let response = postcard::to_allocvec(&GuestResponse {
            status: 200,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: b"Hello, Pi!\n".to_vec(),
        })
        .unwrap();
        let escaped: String = response.iter().map(|b| format!("\\{b:02x}")).collect();
        let wat = format!(
            r#"(module
                (memory (export "memory") 1)
                (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 4096))
                (func (export "wasmgate_handle") (param i32 i32) (result i64)
                  (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {len})))
                (data (i32.const 1024) "{escaped}"))"#,
            len = response.len()
        );
        let bytes = wat::parse_str(&wat).unwrap();
        let shape = wasmgate::internals::runtime::Shape::of(&bytes).unwrap();
        let module = wcache::Compiled {
            module: wasmi::Module::new(rt.engine(), &bytes).unwrap(),
            abi: Abi::Native,
            shape,
            cost: shape.cost(),
            cache_bytes: 0,
            stubbed: None,
            source: None,
            signature: wcache::Status::Unchecked { gojinn: false },
            kv: false,
        };
        let spec = FunctionSpec::from_dir(&functions(), "floor", &FunctionLimits::default());
        let req = hello_request();
        let run = || {
            smol::future::block_on(wabi::call(&rt, &module, &spec, &req))
                .result
                .unwrap()
        };
        assert_eq!(run().body, b"Hello, Pi!\n");
        bencher.bench_local(run);
    }

    /// The whole wasi-json request of any module: `MICRO_MODULE=path.wasm`
    /// (e.g. a Go or Zig build, see PERFORMANCE.md, "Heavy runtimes"), with
    /// the tax request and a 32 MiB `memory` limit. Skipped without it.
    #[divan::bench]
    fn wasi_json_module(bencher: Bencher) {
        let Some(path) = std::env::var_os("MICRO_MODULE") else {
            return;
        };
        let path = PathBuf::from(path);
        let rt = Runtime::new();
        let limits = super::sandbox::limits_32mib();
        let dir = path.parent().unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        let spec = FunctionSpec::from_dir(dir, name, &limits);
        let loaded = wcache::load(&rt, &spec.module, AbiChoice::Auto, &ServerLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let req = tax_request();
        let run = || smol::future::block_on(wabi::call(&rt, &loaded, &spec, &req));
        let first = run();
        eprintln!(
            "{name}: fuel {} status {:?}",
            first.fuel,
            first.result.as_ref().map(|r| r.status)
        );
        bencher.bench_local(run);
    }

    /// The whole wasi-json request of `POST /tax` with a JSON order.
    #[divan::bench(name = "wasi_json")]
    fn wasi_json_full(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "tax");
        assert_eq!(loaded.abi, Abi::WasiJson);
        let req = tax_request();
        let r = call(&rt, &loaded, &spec, &req);
        assert_eq!(r.body, br#"{"order_id":"A1","total_final":115.0}"#);
        bencher.bench_local(|| call(&rt, &loaded, &spec, &req));
    }

    /// Breakdown: the host's request JSON (stdin).
    #[divan::bench]
    fn wasi_json_encode_request(bencher: Bencher) {
        let req = tax_request();
        bencher.bench_local(|| wasi_json::encode_request(&req));
    }

    /// Breakdown: the host's parse of the guest's stdout.
    #[divan::bench]
    fn wasi_json_decode_response(bencher: Bencher) {
        let stdout = br#"{"body":"{\"order_id\":\"A1\",\"total_final\":115.0}","headers":{"content-type":"application/json"},"status":200}"#;
        wasi_json::decode_response(stdout).unwrap();
        bencher.bench_local(|| wasi_json::decode_response(stdout).unwrap());
    }

    /// Breakdown: the wasi-json sandbox (stdin JSON + store + instance of
    /// `tax`), dropped without running `_start`.
    #[divan::bench]
    fn wasi_json_instantiate(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "tax");
        let req = tax_request();
        bencher.bench_local(|| {
            wasi_json::sandbox(&rt, &loaded.module, loaded.cost, &spec, &req, state(&spec))
                .unwrap_or_else(|(e, _)| panic!("{e}"))
        });
    }

    /// Breakdown: the fixed cost of the wasi-json ABI with a trivial
    /// guest: `hostile/wasi-exit0.wasm` (Rust, `println!` of a response
    /// and `exit(0)`, ~3,900 fuel) through `abi::call`, with the tax
    /// request. `wasi_json` minus this is the guest's own work.
    #[divan::bench]
    fn wasi_json_trivial(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "hostile/wasi-exit0");
        let req = tax_request();
        assert_eq!(call(&rt, &loaded, &spec, &req).status, 201);
        bencher.bench_local(|| call(&rt, &loaded, &spec, &req));
    }
}

mod cache {
    use super::*;

    /// Function count of the generated module: ~300 KiB of code.
    pub const FUNCS: usize = 1800;

    /// A native-ABI module of `FUNCS` loop-and-arithmetic functions that
    /// call each other; `wasmgate_handle` calls every 10th one.
    pub fn generate() -> Vec<u8> {
        let response = postcard::to_allocvec(&GuestResponse {
            status: 200,
            headers: Vec::new(),
            body: b"ok".to_vec(),
        })
        .unwrap();
        let mut wat = String::from("(module\n (memory (export \"memory\") 2)\n");
        for i in 0..FUNCS {
            let callee = i.saturating_sub(1 + i % 7);
            wat.push_str(&format!(
                r#" (func $f{i} (param $a i32) (param $b i32) (result i32) (local $x i32) (local $y i64) (local $k i32)
  (local.set $x (i32.add (local.get $a) (i32.const {c0})))
  (block $done (loop $top
    (br_if $done (i32.ge_u (local.get $k) (local.get $b)))
    (local.set $x (i32.xor (i32.mul (local.get $x) (i32.const {c1})) (local.get $k)))
    (local.set $y (i64.add (local.get $y) (i64.extend_i32_u (local.get $x))))
    (i32.store (i32.add (i32.shl (local.get $k) (i32.const 4)) (i32.const 4096)) (local.get $x))
    (local.set $x (i32.add (local.get $x) (i32.load offset=4 (i32.shl (local.get $k) (i32.const 4)))))
    (if (i32.eq (i32.and (local.get $x) (i32.const 7)) (i32.const {c2}))
      (then (local.set $y (i64.rotl (local.get $y) (i64.const {c3})))))
    (local.set $k (i32.add (local.get $k) (i32.const 1)))
    (br $top)))
  (if (result i32) (i32.gt_u (local.get $b) (i32.const 1))
    (then (call $f{callee} (local.get $x) (i32.shr_u (local.get $b) (i32.const 1))))
    (else (i32.wrap_i64 (local.get $y)))))
"#,
                c0 = i * 7 + 1,
                c1 = 0x9e37_79b1_u32.wrapping_add(i as u32) as i32,
                c2 = i % 8,
                c3 = i % 63 + 1,
            ));
        }
        wat.push_str(
            " (func (export \"wasmgate_alloc\") (param i32) (result i32) (i32.const 8192))\n",
        );
        wat.push_str(
            " (func (export \"wasmgate_handle\") (param i32 i32) (result i64) (local $s i32)\n",
        );
        for i in (0..FUNCS).step_by(10) {
            wat.push_str(&format!(
                "  (local.set $s (i32.add (local.get $s) (call $f{i} (local.get $s) (i32.const 8))))\n"
            ));
        }
        let escaped: String = response.iter().map(|b| format!("\\{b:02x}")).collect();
        wat.push_str(&format!(
            "  (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const {})))\n (data (i32.const 1024) \"{escaped}\"))\n",
            response.len()
        ));
        wat::parse_str(&wat).unwrap()
    }

    fn generated() -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new("cold");
        let path = dir.0.join("big.wasm");
        std::fs::write(&path, generate()).unwrap();
        (dir, path)
    }

    /// Read, validate, parse and inspect a ~300 KiB module (wasmi translates
    /// each function lazily on its first call, so this is the whole load).
    #[divan::bench(sample_count = 30, sample_size = 1)]
    fn cold_compile(bencher: Bencher) {
        let rt = Runtime::new();
        let (_dir, path) = generated();
        bencher.bench_local(|| {
            wcache::load(&rt, &path, AbiChoice::Auto, &ServerLimits::default()).unwrap()
        });
    }

    /// `cold_compile` + the first request (instantiate, lazily translate
    /// the ~10% of functions the handler reaches, run, decode).
    #[divan::bench(sample_count = 30, sample_size = 1)]
    fn cold_first_request(bencher: Bencher) {
        let rt = Runtime::new();
        let (dir, path) = generated();
        let spec = FunctionSpec::from_dir(&dir.0, "big", &FunctionLimits::default());
        let req = hello_request();
        bencher.bench_local(|| {
            let loaded =
                wcache::load(&rt, &path, AbiChoice::Auto, &ServerLimits::default()).unwrap();
            let r = call(&rt, &loaded, &spec, &req);
            assert_eq!(r.body, b"ok");
            (loaded, r)
        });
    }

    /// A real module for scale: `tax.wasm` (99 KiB, Rust + serde_json).
    #[divan::bench(sample_count = 30, sample_size = 1)]
    fn cold_compile_tax(bencher: Bencher) {
        let rt = Runtime::new();
        let path = functions().join("tax.wasm");
        bencher.bench_local(|| {
            wcache::load(&rt, &path, AbiChoice::Auto, &ServerLimits::default()).unwrap()
        });
    }

    mod tempdir {
        use std::path::PathBuf;
        pub struct Dir(pub PathBuf);
        impl Dir {
            pub fn new(tag: &str) -> Self {
                let p = std::env::temp_dir()
                    .join(format!("wasmgate-bench-{}-{tag}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}

mod fuel {
    use super::*;
    use wasmi::{Module, Store};

    /// `GET /sieve?n=N`: about 20 ms of guest work.
    pub const URI: &str = "/sieve?n=1000000";
    const EXPECTED: &[u8] = b"primes below 1000000: 78498\n";

    struct Setup {
        runtime: Runtime,
        module: Module,
        metered: bool,
        spec: FunctionSpec,
    }

    impl Setup {
        /// The server's engine settings with metering on or off.
        fn new(metered: bool) -> Self {
            let runtime = Runtime::with_fuel_metering(metered);
            let spec = FunctionSpec::from_dir(&functions(), "sieve", &FunctionLimits::default());
            let module =
                Module::new(runtime.engine(), std::fs::read(&spec.module).unwrap()).unwrap();
            Self {
                runtime,
                module,
                metered,
                spec,
            }
        }

        /// The native ABI by hand, in one unsliced call per export.
        fn run(&self) -> Vec<u8> {
            let mut store = Store::new(self.runtime.engine(), state(&self.spec));
            store.limiter(|s| &mut s.limiter);
            if self.metered {
                store.set_fuel(u64::MAX / 2).unwrap();
            }
            let instance = self
                .runtime
                .linker()
                .instantiate_and_start(&mut store, &self.module)
                .unwrap();
            let req = GuestRequest {
                method: "GET",
                uri: URI,
                headers: Vec::new(),
                body: b"",
                trace_id: TRACE,
            };
            let bytes = postcard::to_allocvec(&req).unwrap();
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
            let resp: GuestResponse = postcard::from_bytes(&memory.data(&store)[p..p + l]).unwrap();
            resp.body
        }
    }

    /// Fuel metering off (the baseline of the overhead).
    #[divan::bench(sample_count = 30)]
    fn off(bencher: Bencher) {
        let s = Setup::new(false);
        assert_eq!(s.run(), EXPECTED);
        bencher.bench_local(|| s.run());
    }

    /// Fuel metering on, one unsliced call.
    #[divan::bench(sample_count = 30)]
    fn on(bencher: Bencher) {
        let s = Setup::new(true);
        assert_eq!(s.run(), EXPECTED);
        bencher.bench_local(|| s.run());
    }

    /// What the server does: `abi::call` with the default limits (fuel on,
    /// 100,000-instruction slices, yielding between them).
    #[divan::bench(sample_count = 30)]
    fn on_sliced(bencher: Bencher) {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "sieve");
        let req = GuestRequest {
            method: "GET",
            uri: URI,
            headers: Vec::new(),
            body: b"",
            trace_id: TRACE,
        };
        assert_eq!(call(&rt, &loaded, &spec, &req).body, EXPECTED);
        bencher.bench_local(|| call(&rt, &loaded, &spec, &req));
    }

    /// The fuel one sieve request uses.
    pub fn sieve_fuel() -> u64 {
        let rt = Runtime::new();
        let (loaded, spec) = load(&rt, "sieve");
        let req = GuestRequest {
            method: "GET",
            uri: URI,
            headers: Vec::new(),
            body: b"",
            trace_id: TRACE,
        };
        smol::future::block_on(wabi::call(&rt, &loaded, &spec, &req)).fuel
    }
}
