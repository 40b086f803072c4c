//! The two ways a function talks to the host. [`inspect`] decides, once per
//! module, which ABI a module speaks and refuses imports the host does not
//! provide; [`call`] runs one request through the right adapter.

pub mod http_wasm;
pub mod native;
pub mod pool;
pub mod wasi_json;

use std::fmt;
use std::path::Path;
use std::rc::Rc;

/// What a guest is given and what it answers (the guest crate's wire
/// types), named apart from the host's HTTP `http::{Request, Response}`.
pub use wasmgate_guest::abi::{Request as GuestRequest, Response as GuestResponse};
use wasmi::{ExternType, Module, ValType};

use crate::config::{AbiChoice, FunctionSpec};
use crate::error::{CallError, LoadError};
use crate::limits::{InstanceCost, ServerLimits};
use crate::runtime::imports::{self, signature_is};
use crate::runtime::state::KvSlot;
use crate::runtime::structure::Shape;
use crate::runtime::tape::Shared;
use crate::runtime::{HostState, Runtime, Sandbox};
use crate::store::Txn;

/// A compiled, inspected module.
#[derive(Debug)]
pub struct Compiled {
    /// The compiled module.
    pub module: Module,
    /// The ABI it speaks.
    pub abi: Abi,
    /// The counts in its sections.
    pub shape: Shape,
    /// What one instantiation costs, charged to every request.
    pub cost: InstanceCost,
    /// Estimated bytes it holds in the cache: the file (wasmi keeps the
    /// function bodies and data segments) plus the code it compiles to.
    pub cache_bytes: u64,
    /// The runtime with the stubs its `gojinn` imports link to
    /// ([`Runtime::with_stubs`]), when it has any.
    pub stubbed: Option<Runtime>,
    /// The file's bytes, kept for http-wasm modules that export `_start`:
    /// what a [`Snapshot`](http_wasm::Snapshot) is written from.
    pub source: Option<Box<[u8]>>,
    /// What its signature check found (`[signatures]`).
    pub signature: crate::signature::Status,
    /// Whether it imports a KV host function
    /// ([`uses_kv`](crate::runtime::imports::uses_kv)):
    /// found once here, not on every request.
    pub kv: bool,
}

impl Compiled {
    /// The runtime to instantiate it with: its own with its stubs, else
    /// `shared`, the one it was compiled with.
    pub fn runtime<'a>(&'a self, shared: &'a Runtime) -> &'a Runtime {
        self.stubbed.as_ref().unwrap_or(shared)
    }
}

/// The ABI a loaded module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// `wasmgate_alloc` + `wasmgate_handle`, postcard messages.
    Native,
    /// WASI command with JSON on stdin/stdout (the Gojinn contract).
    WasiJson,
    /// The http-wasm handler ABI: imports `http_handler`, exports
    /// `handle_request` and `handle_response` (middleware, or a function).
    HttpWasm,
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Abi::Native => "native",
            Abi::WasiJson => "wasi-json",
            Abi::HttpWasm => "http-wasm",
        })
    }
}

/// Checks a compiled module's imports and decides its ABI.
pub fn inspect(module: &Module, path: &Path, choice: AbiChoice) -> Result<Abi, LoadError> {
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let import_error = |why| LoadError::Import {
            path: path.to_owned(),
            module: m.to_owned(),
            name: name.to_owned(),
            why,
        };
        let ExternType::Func(ty) = import.ty() else {
            return Err(import_error(
                "wasmgate provides functions only, no imported memories, tables or globals",
            ));
        };
        imports::check(m, name, ty).map_err(import_error)?;
    }

    let abi_error = |message: String| LoadError::Abi {
        path: path.to_owned(),
        message,
    };
    let version_prefix = wasmgate_guest::abi::VERSION_EXPORT_PREFIX;
    if let Some(marker) = module
        .exports()
        .map(|e| e.name())
        .find(|n| n.starts_with(version_prefix) && *n != wasmgate_guest::abi::VERSION_EXPORT)
    {
        return Err(abi_error(format!(
            "built for native ABI `{}`; this wasmgate speaks version {}",
            marker.escape_debug(),
            wasmgate_guest::abi::ABI_VERSION
        )));
    }
    let has = |name: &str| module.get_export(name).is_some();
    let http_handler = module
        .imports()
        .any(|i| i.module() == imports::http_handler::NAME);
    let abi = match choice {
        AbiChoice::Native => Abi::Native,
        AbiChoice::WasiJson => Abi::WasiJson,
        AbiChoice::Auto if http_handler => Abi::HttpWasm,
        AbiChoice::Auto if has(native::HANDLE) => Abi::Native,
        AbiChoice::Auto if has(wasi_json::START) => Abi::WasiJson,
        AbiChoice::Auto => {
            return Err(abi_error(format!(
                "exports neither `{}` (native ABI) nor `{}` (wasi-json ABI)",
                native::HANDLE,
                wasi_json::START
            )));
        }
    };
    let required: &[(&str, &[ValType], &[ValType])] = match abi {
        Abi::Native => native::EXPORTS,
        Abi::WasiJson => wasi_json::EXPORTS,
        Abi::HttpWasm => http_wasm::EXPORTS,
    };
    for (name, params, results) in required {
        match module.get_export(name) {
            Some(ExternType::Func(ty)) if signature_is(&ty, params, results) => {}
            Some(ExternType::Func(ty)) => {
                return Err(abi_error(format!(
                    "{abi} ABI: export `{name}` has type {ty:?}, expected params {params:?} results {results:?}"
                )));
            }
            _ => {
                return Err(abi_error(format!(
                    "{abi} ABI: missing function export `{name}`"
                )));
            }
        }
    }
    if matches!(abi, Abi::Native | Abi::HttpWasm)
        && !matches!(module.get_export("memory"), Some(ExternType::Memory(_)))
    {
        return Err(abi_error(format!(
            "{abi} ABI: missing memory export `memory`"
        )));
    }
    Ok(abi)
}

/// A guest's response status, if it is one a final HTTP response may have:
/// 1xx are interim responses and cannot end a request.
pub fn check_status(status: u64) -> Result<u16, String> {
    match status {
        200..=999 => Ok(status as u16),
        _ => Err(format!("status {status} is not between 200 and 999")),
    }
}

/// What one call produced, and the fuel it took.
pub struct Outcome {
    /// The guest's response, or why there is none.
    pub result: Result<GuestResponse, CallError>,
    /// Fuel consumed, instantiation included.
    pub fuel: u64,
    /// The request's KV writes, for the caller to commit if the response
    /// is good (dropping them discards them).
    pub kv: Option<Txn>,
}

/// Runs `request` through `function` in a fresh sandbox of `compiled`,
/// without a KV store (`wasmgate run`, the benchmarks): a KV call answers
/// "unavailable".
pub async fn call(
    runtime: &Runtime,
    compiled: &Compiled,
    function: &FunctionSpec,
    request: &GuestRequest<'_>,
) -> Outcome {
    let no_store = Err("no KV store here (only `wasmgate serve` opens one)".to_owned());
    call_with_state(runtime, compiled, function, request, no_store).await
}

/// [`call`] with `kv` as the request's KV transaction (`Err`: why there is
/// none); the writes come back in [`Outcome::kv`] for the caller to
/// commit.
pub async fn call_with_state(
    runtime: &Runtime,
    compiled: &Compiled,
    function: &FunctionSpec,
    request: &GuestRequest<'_>,
    kv: Result<Txn, String>,
) -> Outcome {
    call_taped(runtime, compiled, function, request, kv, None).await
}

/// [`call_with_state`] with `tape` recording the guest's nondeterministic
/// inputs (a crash dump) or feeding them back (`wasmgate replay`).
pub async fn call_taped(
    runtime: &Runtime,
    compiled: &Compiled,
    function: &FunctionSpec,
    request: &GuestRequest<'_>,
    kv: Result<Txn, String>,
    tape: Option<Shared>,
) -> Outcome {
    let (module, abi, cost) = (&compiled.module, compiled.abi, compiled.cost);
    if let Err(error) = compiled.shape.fits(function.limits.memory) {
        return Outcome {
            result: Err(error),
            fuel: 0,
            kv: None,
        };
    }
    let runtime = compiled.runtime(runtime);
    let mut state = HostState::new(
        Rc::from(function.name.as_str()),
        Rc::from(request.trace_id),
        function.limits.memory,
        function.limits.max_log,
    );
    if abi == Abi::HttpWasm {
        // An http-wasm module run as a function gets a state of its own
        // (`http_wasm::call`), with the request's KV transaction.
        let message = http_wasm::message_of(request);
        let server = ServerLimits::default();
        let (outcome, _) = http_wasm::call(
            runtime,
            compiled,
            (function, &server),
            request.trace_id,
            message,
            (kv, tape),
        )
        .await;
        return outcome;
    }
    let slot = KvSlot::shared(kv);
    state.kv = Rc::clone(&slot);
    if let Some(level) = tape.as_ref().and_then(|t| t.borrow().guest_log) {
        state.log.set_level(level);
    }
    state.tape = tape;
    let (result, fuel) = if abi == Abi::WasiJson {
        wasi_json::run(runtime, module, cost, function, request, state).await
    } else {
        match Sandbox::new(runtime, module, cost, &function.limits, state) {
            Ok(mut sandbox) => {
                let result =
                    native::call(&mut sandbox, request, function.limits.max_response).await;
                (result, sandbox.fuel_used())
            }
            Err((error, fuel)) => (Err(error), fuel),
        }
    };
    let kv = slot.borrow_mut().txn.take();
    Outcome { result, fuel, kv }
}
