//! The middleware phases around the next handler (a function, or the
//! upstream of a proxy route): [`Chain::handle_request`] runs each
//! http-wasm middleware's `handle_request` in order on the request, and
//! [`Chain::handle_response`] runs their `handle_response` in reverse
//! order on the next handler's response. A request gets one instance per
//! middleware, kept from one phase to the other and counted in
//! `memory_budget` while it lives. A middleware that fails (a trap, fuel,
//! memory, time, a module that does not load) fails the request closed:
//! the next handler is never reached, and its error is the answer.
//!
//! A middleware that imports a KV function gets a transaction on its
//! namespace (`kv`, else its name) for the request. Its writes are kept
//! once it has completed (its `handle_response` ran, or its
//! `handle_request` answered) and committed by the caller with the
//! request's; a middleware that fails discards every middleware's writes.
//! A next handler that fails does not: the middleware saw it (`is_error`),
//! and a rate limit must count requests that fail.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::admission::{Admission, Reservation};
use super::dumps::{self, Dumps};
use super::state::State;
use crate::abi::http_wasm::{self, Claim, Guest, Layer, Phase, Snapshot};
use crate::abi::{Abi, Outcome};
use crate::cache::{self, Loaded, ModuleCache};
use crate::config::{AbiChoice, FunctionSpec, MiddlewareSpec};
use crate::error::{CallError, Error, Kind};
use crate::http::{Request, Response};
use crate::limits::ServerLimits;
use crate::runtime::exchange::{ExchangeLimits, Message};
use crate::runtime::tape::{Shared, Tape};
use crate::store::Txn;

/// The stack of the thread that makes a snapshot: a worker's (the guest's
/// `_start` runs there).
const SNAPSHOT_STACK: usize = 8 << 20;

/// Most snapshot threads alive at once in the process: 4. They make one
/// snapshot at a time anyway (`http_wasm::prepare`'s lock), and each holds
/// its module and an 8 MiB stack; a middleware asking while 4 wait runs
/// `_start` per instance until a later request finds room.
const MAX_SNAPSHOT_THREADS: usize = 4;

/// Snapshot threads alive now (see [`MAX_SNAPSHOT_THREADS`]).
static SNAPSHOT_THREADS: AtomicUsize = AtomicUsize::new(0);

/// A place among [`SNAPSHOT_THREADS`], given back when dropped.
struct SnapshotTurn;

impl SnapshotTurn {
    fn take() -> Option<Self> {
        SNAPSHOT_THREADS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SNAPSHOT_THREADS).then_some(n + 1)
            })
            .ok()
            .map(|_| Self)
    }
}

impl Drop for SnapshotTurn {
    fn drop(&mut self) {
        SNAPSHOT_THREADS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the chain needs from the application.
pub struct Env<'a> {
    /// Where middleware modules are loaded from.
    pub cache: &'a ModuleCache,
    /// The memory budget each instance is counted in.
    pub admission: &'a Admission,
    /// The server's limits (request size, `retry_after`).
    pub server: &'a ServerLimits,
    /// The request's trace id.
    pub trace_id: &'a str,
    /// The KV store middleware write to.
    pub state: &'a State,
    /// Where admission refusals are counted.
    pub metrics: &'a super::metrics::Metrics,
    /// The crash dump writer, with `[dumps]`: a middleware that fails is
    /// dumped (`dumps`), its inputs recorded meanwhile.
    pub dumps: Option<&'a Arc<Dumps>>,
    /// The route the chain guards (for a dump).
    pub route: &'a str,
}

/// What the request phase decided.
pub enum Flow {
    /// Every middleware continued: call the next handler, then
    /// [`Chain::handle_response`].
    Next,
    /// A middleware answered (`handle_request` did not continue): this
    /// response, already through the `handle_response` of the middleware
    /// before it. The next handler is not called.
    Respond(Response),
}

/// One live middleware instance of the request.
struct Held<'a> {
    spec: Arc<MiddlewareSpec>,
    layer: Layer,
    /// Its memory, and with `[dumps]` the copy in `seen`.
    memory: Reservation<'a>,
    /// With `[dumps]`: its recorded inputs, ...
    tape: Option<Shared>,
    /// ... the request as it got it in `handle_request`, ...
    seen: Option<Message>,
    /// ... whether it started from a snapshot, and its exchange limits.
    snapshot: bool,
    exchange: ExchangeLimits,
}

/// The middleware of one request.
pub struct Chain<'a> {
    env: Env<'a>,
    held: Vec<Held<'a>>,
    /// The exchange between phases: the response fields a middleware
    /// wrote before the next handler are kept here.
    message: Message,
    /// Fuel of the instances already dropped.
    fuel: u64,
    /// The KV writes of the middleware that completed.
    writes: Vec<Txn>,
}

impl<'a> Chain<'a> {
    /// A chain with no middleware run yet.
    pub fn new(env: Env<'a>) -> Self {
        Self {
            env,
            held: Vec::new(),
            message: Message::default(),
            fuel: 0,
            writes: Vec::new(),
        }
    }

    /// The KV writes of the middleware that completed, for the caller to
    /// commit (none if a middleware failed).
    pub fn take_writes(&mut self) -> Vec<Txn> {
        std::mem::take(&mut self.writes)
    }

    /// Keeps the KV writes of `held`, which completed, and counts its fuel.
    fn completed(&mut self, held: &mut Held<'_>) {
        self.fuel = self.fuel.saturating_add(held.layer.fuel_used());
        self.writes.extend(held.layer.take_kv());
    }

    /// Fuel every middleware call of this request used, so far.
    pub fn fuel(&self) -> u64 {
        self.held
            .iter()
            .map(|h| h.layer.fuel_used())
            .fold(self.fuel, u64::saturating_add)
    }

    /// Whether a middleware enabled `buffer_response`: the caller then
    /// holds the next handler's whole response (within `max_response`)
    /// for [`Chain::handle_response`], which may rewrite it. Otherwise
    /// `handle_response` may only read status and headers, so the body
    /// can be streamed. (Functions' responses are whole anyway: the proxy
    /// asks.)
    #[allow(dead_code)]
    pub fn buffers_response(&self) -> bool {
        self.held.iter().any(|h| h.layer.buffers_response())
    }

    /// Runs `handle_request` of each of `middleware`, in order, on `req`
    /// (method, URI, headers, body; `peer` is read), which carries their
    /// changes afterwards. Each instance is kept for
    /// [`Chain::handle_response`].
    pub async fn handle_request(
        &mut self,
        middleware: &[Arc<MiddlewareSpec>],
        req: &mut Request,
    ) -> Result<Flow, Error> {
        self.lend(req);
        let result = self.run_requests(middleware).await;
        self.give_back(req);
        let stopped = result?;
        if !stopped {
            return Ok(Flow::Next);
        }
        // The middleware that answered is the next handler of those
        // before it: they see its response.
        let written = self.written();
        self.handle_response(req, Ok(written))
            .await
            .map(Flow::Respond)
    }

    /// Moves the request into the message the guests work on.
    fn lend(&mut self, req: &mut Request) {
        self.message.method = std::mem::take(&mut req.method);
        self.message.uri = std::mem::take(&mut req.uri);
        self.message.request_headers = std::mem::take(&mut req.headers);
        self.message.request_body = std::mem::take(&mut req.body);
        self.message.peer = req.peer;
    }

    /// Moves the request, with the guests' changes, back out of the message.
    fn give_back(&mut self, req: &mut Request) {
        req.method = std::mem::take(&mut self.message.method);
        req.uri = std::mem::take(&mut self.message.uri);
        req.headers = std::mem::take(&mut self.message.request_headers);
        req.body = std::mem::take(&mut self.message.request_body);
    }

    /// `handle_request` of each middleware; whether one answered (its
    /// instance is then dropped: it has no `handle_response` to run).
    async fn run_requests(&mut self, middleware: &[Arc<MiddlewareSpec>]) -> Result<bool, Error> {
        for spec in middleware {
            let mut held = self.start(spec).await?;
            if held.tape.is_some() {
                // What it gets, for a dump, counted in the budget: only if
                // it fits there and in a dump (else this request is not
                // dumped).
                let bytes = request_bytes(&self.message);
                if self.fits_a_dump(bytes) && held.memory.grow(bytes) {
                    held.seen = Some(request_of(&self.message));
                }
            }
            match held.layer.handle_request(&mut self.message).await {
                Ok(true) => self.held.push(held),
                Ok(false) => {
                    self.completed(&mut held);
                    held.layer.recycle(self.env.server.instance_pool);
                    return Ok(true);
                }
                Err(e) => {
                    self.fuel = self.fuel.saturating_add(held.layer.fuel_used());
                    self.dump(&held, Phase::HandleRequest, None, &e);
                    return Err(self.failed(spec, e));
                }
            }
        }
        Ok(false)
    }

    /// Loads `spec`'s module, reserves its memory and starts an instance.
    async fn start(&mut self, spec: &Arc<MiddlewareSpec>) -> Result<Held<'a>, Error> {
        let trace_id = self.env.trace_id;
        let unavailable = |why: String| {
            log::warn!("middleware {} [{trace_id}]: {why}", spec.name);
            Error::new(
                Kind::ModuleUnavailable,
                format!(
                    "middleware `{}`: its module cannot be loaded; the server log says why",
                    spec.name
                ),
            )
        };
        let loaded = match self.env.cache.get(&spec.module, AbiChoice::Auto).await {
            Ok(loaded) => loaded,
            // The cache logs other failures once per change of the file.
            Err(e) if cache::is_missing(&e) => return Err(unavailable(e.to_string())),
            Err(_) => return Err(unavailable("module unavailable".into())),
        };
        if loaded.compiled.abi != Abi::HttpWasm {
            return Err(unavailable(format!(
                "{} speaks the {} ABI, not http-wasm (it imports no `http_handler` function)",
                spec.module.display(),
                loaded.compiled.abi
            )));
        }
        // Its `memory` and the response it may write (`max_response`), as
        // a function's: a middleware that answers, or rewrites a buffered
        // response, holds that much more.
        let memory = self
            .env
            .admission
            .reserve(spec.limits.memory.saturating_add(spec.limits.max_response))
            .map_err(|m| {
                self.env.metrics.refused(m);
                Error::new(Kind::Overloaded, m)
                    .with_header("retry-after", self.env.server.retry_after_secs.to_string())
            })?;
        let tape = self.env.dumps.map(|_| Tape::recording());
        let exchange = ExchangeLimits::new(self.env.server, &spec.limits);
        let guest = Guest {
            name: &spec.name,
            trace_id,
            limits: &spec.limits,
            config: Arc::clone(&spec.config),
            exchange,
            kv: self.env.state.txn(loaded.compiled.kv, spec.namespace()),
            tape: tape.clone(),
        };
        let snapshot = self.snapshot(&loaded, spec);
        match Layer::start(&loaded.runtime, &loaded.compiled, snapshot.as_ref(), guest).await {
            Ok(layer) => Ok(Held {
                spec: Arc::clone(spec),
                layer,
                memory,
                tape,
                seen: None,
                snapshot: snapshot.is_some(),
                exchange,
            }),
            Err((e, fuel)) => {
                self.fuel = self.fuel.saturating_add(fuel);
                if let (Some(dumps), Some(tape)) = (self.env.dumps, tape) {
                    let seen = request_of(&self.message);
                    let http = dumps::http_wasm(
                        ("middleware", Phase::Start),
                        &spec.dump_config,
                        &exchange,
                        (&seen, snapshot.is_some()),
                        None,
                    );
                    self.write_dump(dumps, (spec, &seen), &e, fuel, (tape, http));
                }
                Err(self.failed(spec, e))
            }
        }
    }

    /// The snapshot of `loaded` for `spec`'s config, if ready. The first
    /// request to ask starts making it on a helper thread and, like every
    /// request until it is ready, runs `_start` itself.
    fn snapshot(&self, loaded: &Arc<Loaded>, spec: &Arc<MiddlewareSpec>) -> Option<Arc<Snapshot>> {
        loaded.compiled.source.as_ref()?;
        let turn = SnapshotTurn::take();
        match loaded.snapshots.claim(&spec.config, &spec.limits) {
            Claim::Ready(snapshot) => return Some(snapshot),
            Claim::None => return None,
            Claim::Make => {}
        }
        let Some(turn) = turn else {
            loaded.snapshots.abandon(&spec.config, &spec.limits);
            return None;
        };
        let (loaded, spec) = (Arc::clone(loaded), Arc::clone(spec));
        let exchange = ExchangeLimits::new(self.env.server, &spec.limits);
        let (config, limits) = (Arc::clone(&spec.config), spec.limits.clone());
        let weak = Arc::downgrade(&loaded);
        let ledger = self.env.cache.ledger();
        // A thread of its own with a worker's stack (the guest runs there,
        // as on a worker), not the blocking pool's 2 MiB threads.
        let spawned = std::thread::Builder::new()
            .name("wasmgate-snapshot".into())
            .stack_size(SNAPSHOT_STACK)
            .spawn(move || {
            let _turn = turn;
            let Some(source) = loaded.compiled.source.as_deref() else {
                return;
            };
            let guest = Guest {
                name: &spec.name,
                trace_id: "snapshot",
                limits: &spec.limits,
                config: Arc::clone(&spec.config),
                exchange,
                kv: Err("no KV before a snapshot".into()),
                tape: None,
            };
            let made = http_wasm::prepare(&loaded.runtime, &loaded.compiled, source, guest)
                .map(Arc::new);
            let image = made.as_ref().map_or(0, |s| s.image_bytes);
            // Counted in the module cache, in its free room.
            let kept = ledger.settle(
                &loaded,
                &spec.config,
                &spec.limits,
                made.as_ref().ok().cloned(),
            );
            match (&made, kept) {
                (Ok(_), Ok(())) => log::info!(
                    "middleware {}: instances start from a snapshot taken after `_start` ({} KiB of data)",
                    spec.name,
                    image / 1024
                ),
                (Ok(_), Err(why)) => log::info!(
                    "middleware {}: each instance runs `_start` (no snapshot: {why})",
                    spec.name
                ),
                (Err(why), _) => log::info!(
                    "middleware {}: each instance runs `_start` (no snapshot: {why})",
                    spec.name
                ),
            }
        });
        if let Err(e) = spawned {
            log::warn!("middleware: no thread to make a snapshot: {e}");
            if let Some(loaded) = weak.upgrade() {
                loaded.snapshots.settle(&config, &limits, None);
            }
        }
        None
    }

    /// Whether a copy of `bytes` for a dump could be written: within
    /// `[dumps] max_bytes` (a larger dump is dropped when written).
    fn fits_a_dump(&self, bytes: u64) -> bool {
        self.env.dumps.is_some_and(|d| bytes <= d.max_bytes())
    }

    /// With `[dumps]`, writes the dump of `held`, which failed in `phase`
    /// (in `handle_response`: on `response`, with `is_error`).
    fn dump(
        &self,
        held: &Held<'_>,
        phase: Phase,
        response: Option<(&Message, bool)>,
        e: &CallError,
    ) {
        let (Some(dumps), Some(tape), Some(seen)) = (self.env.dumps, &held.tape, &held.seen) else {
            return;
        };
        let http = dumps::http_wasm(
            ("middleware", phase),
            &held.spec.dump_config,
            &held.exchange,
            (seen, held.snapshot),
            response,
        );
        let fuel = held.layer.fuel_used();
        self.write_dump(dumps, (&held.spec, seen), e, fuel, (tape.clone(), http));
    }

    fn write_dump(
        &self,
        dumps: &Arc<Dumps>,
        (spec, request): (&MiddlewareSpec, &Message),
        error: &CallError,
        fuel: u64,
        (tape, http): (Shared, dumps::HttpWasm),
    ) {
        if matches!(error, CallError::InitialMemory { .. }) {
            return;
        }
        let inputs = tape.borrow_mut().take();
        dumps.write_middleware(dumps::MiddlewareFailure {
            middleware: spec,
            route: self.env.route,
            request,
            trace_id: self.env.trace_id,
            error,
            fuel,
            inputs,
            http,
        });
    }

    /// The error that answers a request whose middleware failed; every
    /// middleware's KV writes are discarded.
    fn failed(&mut self, spec: &MiddlewareSpec, e: CallError) -> Error {
        self.writes.clear();
        log::warn!("middleware {} [{}]: {e}", spec.name, self.env.trace_id);
        Error::new(e.kind(), format!("middleware `{}`: {e}", spec.name))
    }

    /// The response the middleware wrote so far, taken out of the chain.
    fn written(&mut self) -> Response {
        let message = &mut self.message;
        Response {
            status: std::mem::replace(&mut message.status, 200),
            headers: std::mem::take(&mut message.response_headers)
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n), v))
                .collect(),
            body: std::mem::take(&mut message.response_body),
            stream: None,
        }
    }

    /// Runs `handle_response` of each middleware still held, in reverse
    /// order, on `next` (the next handler's response, or its error:
    /// `is_error` is then 1, and the error stays the answer). Header
    /// fields a middleware set on the response before the next handler
    /// come first, the next handler's after them. A streamed body
    /// (`Response::stream`) is passed through untouched. A middleware that
    /// fails here fails the request.
    ///
    /// `req` is the request as the middleware left it (what the next
    /// handler got): the guests read it here too, as with the reference
    /// host (the host functions refuse to change it now).
    pub async fn handle_response(
        &mut self,
        req: &mut Request,
        next: Result<Response, Error>,
    ) -> Result<Response, Error> {
        if self.held.is_empty() {
            return next;
        }
        self.lend(req);
        let result = self.run_responses(next).await;
        self.give_back(req);
        result
    }

    /// [`Chain::handle_response`] with the request lent to the message.
    async fn run_responses(&mut self, next: Result<Response, Error>) -> Result<Response, Error> {
        let mut stream = None;
        let (is_error, failure) = match next {
            Ok(mut response) => {
                // A streamed body (the proxy's, when no middleware enabled
                // `buffer_response`) passes through: without that feature
                // no guest can read or replace it.
                stream = response.stream.take();
                let message = &mut self.message;
                message.status = response.status;
                message.response_headers.extend(
                    response
                        .headers
                        .into_iter()
                        .map(|(n, v)| (n.into_owned(), v)),
                );
                message.response_body = response.body;
                (false, None)
            }
            Err(e) => {
                self.message.status = e.kind.status();
                (true, Some(e))
            }
        };
        while let Some(mut held) = self.held.pop() {
            // With `[dumps]`, what it gets, for a dump: counted in the
            // budget while it runs.
            let copy = Reservation::new(self.env.admission);
            let bytes = message_bytes(&self.message);
            let entry = (held.seen.is_some() && self.fits_a_dump(bytes) && copy.grow(bytes))
                .then(|| self.message.clone());
            let result = held
                .layer
                .handle_response(&mut self.message, is_error)
                .await;
            if let Err(e) = result {
                self.fuel = self.fuel.saturating_add(held.layer.fuel_used());
                let entry = entry.as_ref().map(|m| (m, is_error));
                self.dump(&held, Phase::HandleResponse, entry, &e);
                return Err(self.failed(&held.spec, e));
            }
            self.completed(&mut held);
            held.layer.recycle(self.env.server.instance_pool);
        }
        match failure {
            Some(e) => Err(e),
            None => {
                let mut response = self.written();
                response.stream = stream;
                Ok(response)
            }
        }
    }
}

/// The request part of `message` (its response part empty).
fn request_of(message: &Message) -> Message {
    Message {
        method: message.method.clone(),
        uri: message.uri.clone(),
        request_headers: message.request_headers.clone(),
        request_body: message.request_body.clone(),
        peer: message.peer,
        ..Message::default()
    }
}

/// Bytes `message` holds: its bodies and header fields.
fn message_bytes(message: &Message) -> u64 {
    let response = message
        .response_body
        .len()
        .saturating_add(fields_bytes(&message.response_headers));
    request_bytes(message).saturating_add(u64::try_from(response).unwrap_or(u64::MAX))
}

/// Bytes the request part of `message` holds: its body, header fields
/// and target (what [`request_of`] copies).
fn request_bytes(message: &Message) -> u64 {
    let bytes = message
        .request_body
        .len()
        .saturating_add(fields_bytes(&message.request_headers))
        .saturating_add(message.uri.len());
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// Bytes header fields hold, 64 more per field for its two allocations.
fn fields_bytes(fields: &[(String, Vec<u8>)]) -> usize {
    fields
        .iter()
        .map(|(n, v)| n.len().saturating_add(v.len()).saturating_add(64))
        .fold(0usize, usize::saturating_add)
}

/// Runs `function`, an http-wasm module, as the request's handler
/// ([`crate::abi::http_wasm::terminal`]), with the request as the server
/// read it (its client address for `get_source_addr`), the server's
/// limits, `kv` as its KV transaction and `tape` for its inputs. Its
/// config is empty. Also returns the phase it ended in.
pub async fn terminal(
    server: &ServerLimits,
    loaded: &cache::Loaded,
    function: &FunctionSpec,
    req: &Request,
    trace_id: &str,
    (kv, tape): (Result<Txn, String>, Option<Shared>),
) -> (Outcome, Phase) {
    let message = Message {
        method: req.method.clone(),
        uri: req.uri.clone(),
        request_headers: req.headers.clone(),
        request_body: req.body.clone(),
        peer: req.peer,
        ..Message::default()
    };
    crate::abi::http_wasm::call(
        &loaded.runtime,
        &loaded.compiled,
        (function, server),
        trace_id,
        message,
        (kv, tape),
    )
    .await
}
