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

use super::admission::{Admission, Reservation};
use super::state::State;
use crate::abi::http_wasm::{Guest, Layer};
use crate::abi::{Abi, Outcome};
use crate::cache::{self, ModuleCache};
use crate::config::{AbiChoice, FunctionSpec, MiddlewareSpec};
use crate::error::{CallError, Error, Kind};
use crate::http::{Request, Response};
use crate::limits::ServerLimits;
use crate::runtime::exchange::{ExchangeLimits, Message};
use crate::store::Txn;

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
    _memory: Reservation<'a>,
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
            match held.layer.handle_request(&mut self.message).await {
                Ok(true) => self.held.push(held),
                Ok(false) => {
                    self.completed(&mut held);
                    return Ok(true);
                }
                Err(e) => {
                    self.fuel = self.fuel.saturating_add(held.layer.fuel_used());
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
        let memory = self
            .env
            .admission
            .reserve(spec.limits.memory)
            .map_err(|m| {
                Error::new(Kind::Overloaded, m)
                    .with_header("retry-after", self.env.server.retry_after_secs.to_string())
            })?;
        let guest = Guest {
            name: &spec.name,
            trace_id,
            limits: &spec.limits,
            config: Arc::clone(&spec.config),
            exchange: ExchangeLimits::new(self.env.server, &spec.limits),
            kv: self
                .env
                .state
                .txn(&loaded.compiled.module, spec.namespace()),
        };
        match Layer::start(&loaded.runtime, &loaded.compiled, guest).await {
            Ok(layer) => Ok(Held {
                spec: Arc::clone(spec),
                layer,
                _memory: memory,
            }),
            Err((e, fuel)) => {
                self.fuel = self.fuel.saturating_add(fuel);
                Err(self.failed(spec, e))
            }
        }
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
            let result = held
                .layer
                .handle_response(&mut self.message, is_error)
                .await;
            if let Err(e) = result {
                self.fuel = self.fuel.saturating_add(held.layer.fuel_used());
                return Err(self.failed(&held.spec, e));
            }
            self.completed(&mut held);
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

/// Runs `function`, an http-wasm module, as the request's handler
/// ([`crate::abi::http_wasm::terminal`]), with the request as the server
/// read it (its client address for `get_source_addr`), the server's
/// limits and `kv` as its KV transaction. Its config is empty.
pub async fn terminal(
    server: &ServerLimits,
    loaded: &cache::Loaded,
    function: &FunctionSpec,
    req: &Request,
    trace_id: &str,
    kv: Result<Txn, String>,
) -> Outcome {
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
        function,
        server,
        trace_id,
        message,
        kv,
    )
    .await
}
