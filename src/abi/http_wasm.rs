//! The http-wasm handler ABI (<https://http-wasm.io/http-handler-abi/>):
//! a guest imports `http_handler` (the host functions of
//! [`imports::http_handler`](crate::runtime::imports::http_handler)) and
//! exports `handle_request() -> i64` and `handle_response(req_ctx: i32,
//! is_error: i32)`. One [`Layer`] is one guest instance for one request,
//! kept from `handle_request` to `handle_response`; the request and the
//! response ([`Message`]) move from one layer's store to the next.
//! [`terminal`] runs a guest with no next handler (an http-wasm module as
//! a function).

use std::rc::Rc;
use std::sync::Arc;

use std::sync::Mutex;

use wasmi::{Extern, Global, Memory, Module, Store, Val, ValType};

use super::{Compiled, Outcome, pool};
use crate::config::FunctionSpec;
use crate::error::CallError;
use crate::limits::{FunctionLimits, ServerLimits};
use crate::runtime::exchange::{BUFFER_RESPONSE, Exchange, ExchangeLimits, Message};
use crate::runtime::sandbox::Fresh;
use crate::runtime::snapshot::{self, Image, Value};
use crate::runtime::state::KvSlot;
use crate::runtime::tape::Shared;
use crate::runtime::{HostState, Runtime, Sandbox};
use crate::store::Txn;

/// The request handler export.
pub const HANDLE_REQUEST: &str = "handle_request";
/// The response handler export.
pub const HANDLE_RESPONSE: &str = "handle_response";
/// The WASI command entry point: when exported, it runs once per instance
/// before `handle_request` (guests built with `http-wasm-guest` register
/// their handler and enable features there).
pub const START: &str = "_start";
/// Function exports an http-wasm module must have, with their signatures.
pub const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[
    (HANDLE_REQUEST, &[], &[ValType::I64]),
    (HANDLE_RESPONSE, &[ValType::I32, ValType::I32], &[]),
];

/// Who a layer is, for its log lines and limits.
pub struct Guest<'a> {
    /// The middleware's (or function's) name.
    pub name: &'a str,
    /// The request's trace id.
    pub trace_id: &'a str,
    /// Its limits.
    pub limits: &'a FunctionLimits,
    /// Its `config`, as JSON (`get_config`).
    pub config: Arc<[u8]>,
    /// What the exchange may hold.
    pub exchange: ExchangeLimits,
    /// Its KV transaction for this request (`Err`: why there is none).
    pub kv: Result<Txn, String>,
    /// The tape its nondeterministic inputs are recorded on (`[dumps]`)
    /// or fed back from (`wasmgate replay`), for the instance's whole life.
    pub tape: Option<Shared>,
}

/// The guest call an http-wasm instance is in (or failed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Instantiation and `_start`.
    Start,
    HandleRequest,
    HandleResponse,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => START,
            Phase::HandleRequest => HANDLE_REQUEST,
            Phase::HandleResponse => HANDLE_RESPONSE,
        }
    }

    /// The phase named `name` ([`Phase::as_str`]).
    pub fn named(name: &str) -> Option<Self> {
        [Phase::Start, Phase::HandleRequest, Phase::HandleResponse]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// One guest instance, alive from `handle_request` to `handle_response`.
pub struct Layer {
    sandbox: Sandbox,
    /// The context value `handle_request` returned.
    ctx: i32,
    /// For an instance of a snapshot: how to put it back into the
    /// snapshot's state for the instance pool ([`Layer::recycle`]).
    pooled: Option<Pooled>,
}

/// What [`Layer::recycle`] needs of an instance of a snapshot.
struct Pooled {
    snapshot: Arc<Snapshot>,
    memory: Memory,
    /// Each mutable global, with its initial value.
    globals: Vec<(Global, Val)>,
    fresh: Fresh,
}

impl Layer {
    /// Instantiates `compiled` in a fresh sandbox and runs its `_start`,
    /// if it exports one; from `snapshot` instead, when given, which holds
    /// the state `_start` leaves (and is charged the fuel it used). On
    /// failure, also returns the fuel used.
    pub async fn start(
        runtime: &Runtime,
        compiled: &Compiled,
        snapshot: Option<&Arc<Snapshot>>,
        guest: Guest<'_>,
    ) -> Result<Self, (CallError, u64)> {
        compiled
            .shape
            .fits(guest.limits.memory)
            .map_err(|e| (e, 0))?;
        let runtime = compiled.runtime(runtime);
        if let Some(snapshot) = snapshot {
            let mut layer = Self::from_snapshot(runtime, snapshot, compiled, guest)?;
            let start = snapshot.fuel.saturating_sub(layer.fuel_used());
            layer
                .sandbox
                .charge(start)
                .map_err(|e| (e, layer.fuel_used()))?;
            if let Some(ex) = layer.sandbox.store_mut().data_mut().http.as_deref_mut() {
                ex.features = snapshot.features;
            }
            return Ok(layer);
        }
        let mut layer = Self::instantiate(runtime, &compiled.module, compiled, guest)?;
        if compiled.module.get_export(START).is_some() {
            match layer.sandbox.call(START, &[], &mut []).await {
                // A command that exits 0 (`proc_exit(0)`) has started.
                Ok(()) | Err(CallError::ExitCode(0)) => {}
                Err(e) => return Err((e, layer.fuel_used())),
            }
        }
        Ok(layer)
    }

    /// An instance of `snapshot`: an idle one from this thread's pool if
    /// there is one (in the snapshot's state, charged as a new one), else
    /// a new one.
    fn from_snapshot(
        runtime: &Runtime,
        snapshot: &Arc<Snapshot>,
        compiled: &Compiled,
        guest: Guest<'_>,
    ) -> Result<Self, (CallError, u64)> {
        let limits = guest.limits;
        let mut state = Self::host_state(guest);
        if let Some(idle) = pool::take(&snapshot.life) {
            let (memory, globals) = idle.state;
            match Sandbox::resume(idle.store, idle.instance, idle.fresh, limits, state) {
                Ok(sandbox) => {
                    pool::count(true);
                    let pooled = Pooled {
                        snapshot: Arc::clone(snapshot),
                        memory,
                        globals,
                        fresh: idle.fresh,
                    };
                    return Ok(Self {
                        sandbox,
                        ctx: 0,
                        pooled: Some(pooled),
                    });
                }
                Err(back) => state = *back,
            }
        }
        let sandbox = Sandbox::new(runtime, &snapshot.module, compiled.cost, limits, state)?;
        pool::count(false);
        let pooled =
            snapshot
                .handles(sandbox.store(), sandbox.instance())
                .map(|(memory, globals)| Pooled {
                    snapshot: Arc::clone(snapshot),
                    memory,
                    globals,
                    fresh: sandbox.fresh(),
                });
        Ok(Self {
            sandbox,
            ctx: 0,
            pooled,
        })
    }

    /// Gives this instance of a snapshot, whose request completed (no
    /// error in any call), back to this thread's pool of at most `bound`
    /// bytes, in the snapshot's state; any other instance is dropped.
    pub fn recycle(self, bound: u64) {
        let Some(pooled) = self.pooled else {
            return;
        };
        let bytes = pooled.fresh.bytes();
        if !pool::keeps(bytes, bound) {
            // Also what a reload to a smaller (or no) pool leaves.
            pool::trim(bound);
            return;
        }
        let (mut store, instance) = self.sandbox.into_parts();
        // The request's host state (its exchange, KV and log) goes now.
        *store.data_mut() = HostState::idle();
        if !pooled
            .snapshot
            .reset(&mut store, pooled.memory, &pooled.globals)
        {
            return;
        }
        pool::put(
            pool::Idle {
                snapshot: pooled.snapshot.life.watch(),
                store,
                instance,
                fresh: pooled.fresh,
                bytes,
                state: (pooled.memory, pooled.globals),
            },
            bound,
        );
    }

    /// `module` (`compiled`'s, or a version of it) in a fresh sandbox, with
    /// `compiled`'s instantiation cost.
    fn instantiate(
        runtime: &Runtime,
        module: &Module,
        compiled: &Compiled,
        guest: Guest<'_>,
    ) -> Result<Self, (CallError, u64)> {
        let limits = guest.limits;
        let state = Self::host_state(guest);
        let sandbox = Sandbox::new(runtime, module, compiled.cost, limits, state)?;
        Ok(Self {
            sandbox,
            ctx: 0,
            pooled: None,
        })
    }

    /// The host state of `guest`'s instance for this request.
    fn host_state(guest: Guest<'_>) -> HostState {
        let mut state = HostState::new(
            Rc::from(guest.name),
            Rc::from(guest.trace_id),
            guest.limits.memory,
            guest.limits.max_log,
        );
        state.http = Some(Box::new(Exchange::new(guest.config, guest.exchange)));
        state.kv = KvSlot::shared(guest.kv);
        // A replay writes (and charges) log lines as the recording did.
        if let Some(level) = guest.tape.as_ref().and_then(|t| t.borrow().guest_log) {
            state.log.set_level(level);
        }
        state.tape = guest.tape;
        state.stdio = Some(crate::runtime::state::Stdio::new(
            Vec::new(),
            0,
            Vec::new(),
            Vec::new(),
        ));
        state
    }

    /// Fuel used so far, instantiation included.
    pub fn fuel_used(&self) -> u64 {
        self.sandbox.fuel_used()
    }

    /// The instance's KV writes, taken out of it to commit once the
    /// request has succeeded (dropping them discards them).
    pub fn take_kv(&mut self) -> Option<Txn> {
        self.sandbox.store().data().kv.borrow_mut().txn.take()
    }

    /// Whether the guest enabled `buffer_response`: the next handler's
    /// response must then be held whole for `handle_response`.
    pub fn buffers_response(&self) -> bool {
        self.exchange()
            .is_some_and(|ex| ex.features & BUFFER_RESPONSE != 0)
    }

    fn exchange(&self) -> Option<&Exchange> {
        self.sandbox.store().data().http.as_deref()
    }

    /// Moves `message` into the guest's exchange, calls the export `name`, and moves it
    /// back out, whatever the call returned.
    async fn with_message(
        &mut self,
        message: &mut Message,
        name: &str,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), CallError> {
        let state = self.sandbox.store_mut().data_mut();
        let Some(ex) = state.http.as_deref_mut() else {
            return Err(CallError::Trap("the instance has no exchange".into()));
        };
        ex.message = std::mem::take(message);
        let result = self.sandbox.call(name, params, results).await;
        if let Some(ex) = self.sandbox.store_mut().data_mut().http.as_deref_mut() {
            *message = std::mem::take(&mut ex.message);
        }
        result
    }

    /// Runs `handle_request` on `message`: whether to continue to the next
    /// handler (otherwise the response in `message` is the answer).
    pub async fn handle_request(&mut self, message: &mut Message) -> Result<bool, CallError> {
        let mut out = [Val::I64(0)];
        self.with_message(message, HANDLE_REQUEST, &[], &mut out)
            .await?;
        let Val::I64(packed) = out[0] else {
            return Err(CallError::BadResponse(format!(
                "{HANDLE_REQUEST} returned no i64"
            )));
        };
        let packed = packed.cast_unsigned();
        // High 32 bits: the context; low 32 bits: next (non-zero continues).
        self.ctx = ((packed >> 32) as u32).cast_signed();
        Ok(packed & 0xffff_ffff != 0)
    }

    /// Runs `handle_response` on the next handler's response in `message`;
    /// `is_error` says the next handler failed.
    pub async fn handle_response(
        &mut self,
        message: &mut Message,
        is_error: bool,
    ) -> Result<(), CallError> {
        if let Some(ex) = self.sandbox.store_mut().data_mut().http.as_deref_mut() {
            ex.after_next = true;
            ex.response_read = 0;
            ex.response_written = false;
        }
        let params = [Val::I32(self.ctx), Val::I32(i32::from(is_error))];
        self.with_message(message, HANDLE_RESPONSE, &params, &mut [])
            .await
    }
}

/// The exchange's message for `request` run as an http-wasm function (or
/// replayed from a dump): its method, target, headers (names lowercased, as
/// the server's parser gives them) and body; no peer, no response yet.
pub fn message_of(request: &super::GuestRequest<'_>) -> Message {
    Message {
        method: request.method.to_owned(),
        uri: request.uri.to_owned(),
        request_headers: request
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect(),
        request_body: request.body.to_vec(),
        ..Message::default()
    }
}

/// Runs an http-wasm guest as a function: `handle_request`, and when it
/// continues, the reference host's behaviour with a next handler that
/// writes nothing (its tests' `noopHandler`): the response is what the
/// guest wrote so far (200 and an empty body unless it set them), and
/// `handle_response` runs on it. Returns the message with the response,
/// the fuel used, if it succeeded its KV writes, and the phase it ended
/// in. Deterministic given the request and the guest's tape: a replay
/// runs it again on the recorded request.
pub async fn terminal(
    runtime: &Runtime,
    compiled: &Compiled,
    guest: Guest<'_>,
    mut message: Message,
) -> Terminal {
    let mut layer = match Layer::start(runtime, compiled, None, guest).await {
        Ok(layer) => layer,
        Err((e, fuel)) => {
            return Terminal {
                result: Err(e),
                fuel,
                kv: None,
                phase: Phase::Start,
            };
        }
    };
    let mut phase = Phase::HandleRequest;
    let result = async {
        if layer.handle_request(&mut message).await? {
            phase = Phase::HandleResponse;
            layer.handle_response(&mut message, false).await?;
        }
        Ok(message)
    }
    .await;
    let kv = if result.is_ok() {
        layer.take_kv()
    } else {
        None
    };
    Terminal {
        result,
        fuel: layer.fuel_used(),
        kv,
        phase,
    }
}

/// How [`terminal`] ended.
pub struct Terminal {
    /// The message with the response.
    pub result: Result<Message, CallError>,
    pub fuel: u64,
    /// Its KV writes, when it succeeded.
    pub kv: Option<Txn>,
    /// The phase it ended (or failed) in.
    pub phase: Phase,
}

/// Runs `function`, an http-wasm module, as a request's handler on
/// `message` (the request), with `server`'s request limits, no config,
/// `kv` as its KV transaction and `tape` for its inputs: [`terminal`],
/// as an [`Outcome`], and the phase it ended in.
pub async fn call(
    runtime: &Runtime,
    compiled: &Compiled,
    (function, server): (&FunctionSpec, &ServerLimits),
    trace_id: &str,
    message: Message,
    (kv, tape): (Result<Txn, String>, Option<Shared>),
) -> (Outcome, Phase) {
    let guest = Guest {
        name: &function.name,
        trace_id,
        limits: &function.limits,
        config: Arc::from(&b""[..]),
        exchange: ExchangeLimits::new(server, &function.limits),
        kv,
        tape,
    };
    let Terminal {
        result,
        fuel,
        kv,
        phase,
    } = terminal(runtime, compiled, guest, message).await;
    let outcome = Outcome {
        result: result.map(response),
        fuel,
        kv,
    };
    (outcome, phase)
}

/// Runs a middleware again as a crash dump recorded it (`wasmgate
/// replay`): a fresh instance and its `_start` (fuel is the same as from
/// a snapshot), then, up to `phase`, `handle_request` on `request` and
/// `handle_response` on `response` (the message the guest got then, and
/// `is_error`). `Ok`: the status it left (`None`: it continued past
/// `phase`, with no response to show). Also returns the fuel used.
pub async fn rerun(
    runtime: &Runtime,
    compiled: &Compiled,
    guest: Guest<'_>,
    (phase, mut request, response): (Phase, Message, Option<(Message, bool)>),
) -> (Result<Option<u16>, CallError>, u64) {
    let mut layer = match Layer::start(runtime, compiled, None, guest).await {
        Ok(layer) => layer,
        Err((e, fuel)) => return (Err(e), fuel),
    };
    let result = async {
        if phase == Phase::Start {
            return Ok(None);
        }
        if !layer.handle_request(&mut request).await? {
            // It answered: its response is the request's.
            return Ok(Some(request.status));
        }
        let Some((mut message, is_error)) = response.filter(|_| phase == Phase::HandleResponse)
        else {
            return Ok(None);
        };
        layer.handle_response(&mut message, is_error).await?;
        Ok(Some(message.status))
    }
    .await;
    (result, layer.fuel_used())
}

/// The response in `message`, as a guest response.
pub fn response(message: Message) -> super::GuestResponse {
    super::GuestResponse {
        status: message.status,
        headers: message.response_headers,
        body: message.response_body,
    }
}

/// An http-wasm module pre-initialised for one `config`: the module with
/// the state its `_start` leaves as its initial state
/// ([`snapshot`](crate::runtime::snapshot)), the features `_start`
/// enabled, and the fuel instantiation and `_start` used, charged to each
/// instance made from it as if it had run. Made once per module and
/// config, off the serving thread; until it is ready, and for modules it
/// refuses, instances run `_start` as before.
pub struct Snapshot {
    module: Module,
    features: u32,
    fuel: u64,
    /// Bytes of data the image holds (its memory's non-zero blocks).
    pub image_bytes: u64,
    /// Its estimated bytes, counted in the module cache
    /// ([`Shape::cache_bytes`](crate::runtime::structure::Shape::cache_bytes)
    /// of the rewritten file, whose data segments hold the image, and the
    /// copy of the image [`Snapshot::reset`] writes).
    pub cache_bytes: u64,
    /// What the instance pool knows it by; its idle instances there go
    /// with it.
    life: pool::Life,
    /// The initial state, to put an instance back into
    /// ([`Snapshot::reset`]): the memory's size in pages, its non-zero
    /// runs (offset, bytes), the export names of the memory and of each
    /// mutable global with its initial value.
    pages: u64,
    runs: Vec<(usize, Vec<u8>)>,
    memory_export: String,
    globals: Vec<(String, Val)>,
}

impl Snapshot {
    /// The memory and mutable globals of `instance` (one of this
    /// snapshot's) by their export names, each global with its initial
    /// value; `None` if one is missing (the instance is then not pooled).
    fn handles(
        &self,
        store: &Store<HostState>,
        instance: &wasmi::Instance,
    ) -> Option<(Memory, Vec<(Global, Val)>)> {
        let memory = instance.get_memory(store, &self.memory_export)?;
        let globals = self
            .globals
            .iter()
            .map(|(name, value)| Some((instance.get_global(store, name)?, value.clone())))
            .collect::<Option<Vec<_>>>()?;
        Some((memory, globals))
    }

    /// Puts `memory` and `globals` of an instance of this snapshot back
    /// into their initial state: the memory the snapshot's size, zeros
    /// with the image's runs over them, each global its initial value.
    /// False (the instance must not be used again) if the memory grew or a
    /// value cannot be written.
    fn reset(
        &self,
        store: &mut Store<HostState>,
        memory: Memory,
        globals: &[(Global, Val)],
    ) -> bool {
        if memory.size(&*store) != self.pages {
            return false;
        }
        let data = memory.data_mut(&mut *store);
        data.fill(0);
        for (offset, bytes) in &self.runs {
            let Some(to) = data.get_mut(*offset..offset.saturating_add(bytes.len())) else {
                return false;
            };
            to.copy_from_slice(bytes);
        }
        globals
            .iter()
            .all(|(global, value)| global.set(&mut *store, value.clone()).is_ok())
    }
}

/// Host functions a `_start` may call before it is pre-initialised: those
/// whose answer depends only on the module's config (no clock, randomness,
/// KV, request, log or output).
fn allowed_before_snapshot(module: &str, name: &str) -> bool {
    match module {
        crate::runtime::imports::http_handler::NAME => {
            matches!(name, "get_config" | "enable_features" | "log_enabled")
        }
        crate::runtime::imports::wasi_snapshot_preview1::NAME => matches!(
            name,
            "args_get"
                | "args_sizes_get"
                | "environ_get"
                | "environ_sizes_get"
                | "fd_fdstat_get"
                | "proc_exit"
                | "sched_yield"
        ),
        crate::runtime::imports::wasmgate::NAME => matches!(name, "sha256" | "hmac_sha256"),
        _ => false,
    }
}

/// Makes the [`Snapshot`] of `compiled` (whose file held `source`) for
/// `guest`'s config: runs an instrumented copy's `_start` with `guest`'s
/// limits, then compiles the original rewritten with the state it left.
/// Blocking (run it off the serving thread). Err: why there is none.
pub fn prepare(
    runtime: &Runtime,
    compiled: &Compiled,
    source: &[u8],
    guest: Guest<'_>,
) -> Result<Snapshot, String> {
    if compiled.stubbed.is_some() || compiled.module.get_export(START).is_none() {
        return Err("it has stubbed imports or no `_start`".into());
    }
    // One at a time in the process: making one holds a few copies of the
    // instance's memory for a moment, outside `memory_budget`.
    static MAKING: Mutex<()> = Mutex::new(());
    let _one = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (bytes, plan) = snapshot::instrument(source, allowed_before_snapshot)?;
    let module = Module::new(runtime.engine(), &bytes[..]).map_err(|e| e.to_string())?;
    let refusing = runtime.with_refused(&module).map_err(|e| e.to_string())?;
    let limits = guest.limits.clone();
    let mut layer = Layer::instantiate(&refusing, &module, compiled, guest)
        .map_err(|(e, _)| format!("instantiating: {e}"))?;
    // Polled here, on the snapshot thread, without the I/O reactor: a
    // guest call only yields between fuel slices (`smol::block_on` would
    // count this thread as a second reactor driver, see
    // `vendor/async-io/PATCH.md`).
    match smol::future::block_on(layer.sandbox.call(START, &[], &mut [])) {
        Ok(()) | Err(CallError::ExitCode(0)) => {}
        Err(e) => return Err(format!("`_start`: {e}")),
    }
    let store = layer.sandbox.store();
    let Some(Extern::Memory(memory)) = layer.sandbox.export(&plan.memory) else {
        return Err("its memory is not exported".into());
    };
    let mut globals = Vec::new();
    // Each mutable global's value by its export name, which the rewritten
    // module exports too: what the instance pool sets back.
    let mut initial = Vec::new();
    for (index, name) in &plan.globals {
        let Some(Extern::Global(global)) = layer.sandbox.export(name) else {
            return Err("a global is not exported".into());
        };
        let read = global.get(store);
        initial.push((name.clone(), read.clone()));
        let value = match read {
            Val::I32(v) => Value::I32(v),
            Val::I64(v) => Value::I64(v),
            Val::F32(v) => Value::F32(v.to_bits()),
            Val::F64(v) => Value::F64(v.to_bits()),
            _ => return Err("a global of a non-numeric type".into()),
        };
        globals.push((*index, value));
    }
    let image = Image {
        pages: memory.size(store),
        memory: memory.data(store).to_vec(),
        globals,
    };
    let features = layer.exchange().map_or(0, |ex| ex.features);
    let fuel = layer.fuel_used();
    // What the snapshot holds besides the module: the data `_start` left.
    let image_bytes = u64::try_from(snapshot::data_bytes(&image.memory)).unwrap_or(u64::MAX);
    if image_bytes > MAX_IMAGE_BYTES {
        return Err(format!(
            "the memory `_start` left holds {} KiB of data, more than the {} KiB a snapshot keeps",
            image_bytes / 1024,
            MAX_IMAGE_BYTES / 1024
        ));
    }
    let rewritten = snapshot::rewrite(source, &image)?;
    let runs = snapshot::image_runs(&image.memory);
    let pages = image.pages;
    drop(image);
    // Its code is the original's, so is its shape's; the image is held
    // twice (the module's data segments, `runs`).
    let cache_bytes = compiled
        .shape
        .cache_bytes(rewritten.len())
        .saturating_add(image_bytes);
    let module = Module::new(runtime.engine(), &rewritten[..]).map_err(|e| e.to_string())?;
    // It must instantiate within the limits it was made with.
    let state = HostState::new(Rc::from("snapshot"), Rc::from("-"), limits.memory, 0);
    Sandbox::new(runtime, &module, compiled.cost, &limits, state)
        .map_err(|(e, _)| format!("the snapshot does not instantiate: {e}"))?;
    Ok(Snapshot {
        module,
        features,
        fuel,
        image_bytes,
        cache_bytes,
        life: pool::Life::new(),
        pages,
        runs,
        memory_export: plan.memory.clone(),
        globals: initial,
    })
}

/// At most this many snapshots of one module: one per `config` (and
/// limits) it runs with, and those come from the config file, not from
/// requests.
const MAX_SNAPSHOTS: usize = 16;

/// Most bytes of data one snapshot keeps (the non-zero part of the memory
/// `_start` left; `hmac-verify`'s is 64 KiB, `waf`'s 128 KiB). A snapshot
/// lives as long as its module in the cache, outside `memory_budget`: a
/// `_start` that fills its memory is not worth keeping.
const MAX_IMAGE_BYTES: u64 = 1 << 20;

/// Most bytes of data the snapshots of one module keep together.
pub const MAX_MODULE_IMAGE_BYTES: u64 = 4 << 20;

/// The snapshots of one loaded module, by config (they go with it when the
/// module file changes or is evicted: [`Snapshots::close`]). They are
/// counted in the module cache's bytes ([`crate::cache::Ledger`]).
pub struct Snapshots {
    /// `None` once closed.
    slots: Mutex<Option<Vec<Slot>>>,
}

impl Default for Snapshots {
    fn default() -> Self {
        Self {
            slots: Mutex::new(Some(Vec::new())),
        }
    }
}

/// A config with the limits it runs with, and its snapshot (`None` while
/// it is made, or if refused).
type Slot = (Arc<[u8]>, FunctionLimits, Option<Arc<Snapshot>>);

/// What [`Snapshots::claim`] found.
pub enum Claim {
    /// The snapshot is ready.
    Ready(Arc<Snapshot>),
    /// The caller is to make it, then [`Snapshots::settle`] it.
    Make,
    /// Being made, refused, or no room: run `_start`.
    None,
}

impl Snapshots {
    fn slots(&self) -> std::sync::MutexGuard<'_, Option<Vec<Slot>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The snapshot for `config` run with `limits`; the first caller for
    /// them is told to make it.
    pub fn claim(&self, config: &Arc<[u8]>, limits: &FunctionLimits) -> Claim {
        let mut slots = self.slots();
        let Some(slots) = slots.as_mut() else {
            return Claim::None;
        };
        if let Some((_, _, slot)) = slots
            .iter()
            .find(|(c, l, _)| **c == **config && l == limits)
        {
            return slot.clone().map_or(Claim::None, Claim::Ready);
        }
        if slots.len() >= MAX_SNAPSHOTS {
            return Claim::None;
        }
        slots.push((Arc::clone(config), limits.clone(), None));
        Claim::Make
    }

    /// Gives up the claim [`Self::claim`] just answered `Make` to, with
    /// nothing made: a later caller is told to make it.
    pub fn abandon(&self, config: &Arc<[u8]>, limits: &FunctionLimits) {
        if let Some(slots) = self.slots().as_mut() {
            slots.retain(|(c, l, slot)| slot.is_some() || **c != **config || l != limits);
        }
    }

    /// Records the snapshot made for `config` and `limits` (`None`: there
    /// is none). Refused (kept as none) past [`MAX_MODULE_IMAGE_BYTES`]
    /// for the module, or once closed; returns whether it was kept. The
    /// module cache counts what it keeps: see [`crate::cache::Ledger`].
    pub fn settle(
        &self,
        config: &Arc<[u8]>,
        limits: &FunctionLimits,
        snapshot: Option<Arc<Snapshot>>,
    ) -> bool {
        let mut slots = self.slots();
        let Some(slots) = slots.as_mut() else {
            return false;
        };
        let held: u64 = slots
            .iter()
            .filter_map(|(_, _, s)| s.as_ref().map(|s| s.image_bytes))
            .fold(0, u64::saturating_add);
        let snapshot =
            snapshot.filter(|s| held.saturating_add(s.image_bytes) <= MAX_MODULE_IMAGE_BYTES);
        let kept = snapshot.is_some();
        if let Some((_, _, slot)) = slots
            .iter_mut()
            .find(|(c, l, _)| **c == **config && l == limits)
        {
            *slot = snapshot;
        }
        kept
    }

    /// Drops the snapshots (the module left the cache) and makes no more:
    /// [`Self::claim`] answers [`Claim::None`] from now on.
    pub fn close(&self) {
        self.slots().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_claim_is_offered_again() {
        let snapshots = Snapshots::default();
        let (config, limits) = (Arc::<[u8]>::from(&b"{}"[..]), FunctionLimits::default());
        assert!(matches!(snapshots.claim(&config, &limits), Claim::Make));
        // Claimed and pending: nobody else makes it.
        assert!(matches!(snapshots.claim(&config, &limits), Claim::None));
        snapshots.abandon(&config, &limits);
        assert!(matches!(snapshots.claim(&config, &limits), Claim::Make));
        // Settled as none: abandoning another config leaves it alone.
        snapshots.settle(&config, &limits, None);
        let other = Arc::<[u8]>::from(&b"{\"a\":1}"[..]);
        snapshots.abandon(&other, &limits);
        assert!(matches!(snapshots.claim(&other, &limits), Claim::Make));
        assert!(matches!(snapshots.claim(&config, &limits), Claim::None));
    }
}
