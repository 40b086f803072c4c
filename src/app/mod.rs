//! The application pipeline (ARCHITECTURE.md, "A request's path"), as a [`server::Handler`]:
//! route → module cache → admission → sandbox → guest-response checks →
//! response. Every request ends here in one access line, and every error in
//! one JSON error body (`error_response`).

pub mod admin;
pub mod admission;
pub mod dumps;
pub mod metrics;
pub mod middleware;
pub mod proxy;
pub mod router;
mod state;
mod trace;

pub use state::State;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::abi;
use crate::cache::{self, ModuleCache};
use crate::config::{Config, FunctionSpec};
use crate::error::{CallError, DecodeError, Error, Kind};
use crate::http::{FRAMING_HEADERS, HOST_HEADERS, Request, Response, valid_name, valid_value};
use crate::limits::{MAX_RESPONSE_HEADERS, ServerLimits};
use crate::runtime::tape::Tape;
use crate::server::{self, Refused};
use crate::store::Txn;
use admission::{Admission, RequestGate, Reservation};
use middleware::{Chain, Flow};
use proxy::{Proxy, ProxyRequest};
use router::{Match, Router};
use trace::trace_id;

/// Everything the request pipeline shares: config, routes, module cache
/// and admission counters. `Send + Sync` (asserted below), so that one
/// `App` can serve executors on several threads; what belongs to one
/// request (its gate, permit, `Store` and host state) lives on the thread
/// that serves it and borrows from here.
pub struct App {
    config: Config,
    router: Router,
    cache: ModuleCache,
    admission: Admission,
    state: state::State,
    /// Kept across reloads.
    metrics: Arc<metrics::Metrics>,
    /// The crash dump writer, with `[dumps]`.
    dumps: Option<Arc<dumps::Dumps>>,
}

// Fails to compile if a thread-bound type (`Rc`, `Cell`, ...) gets into
// the shared state (wasmi's and hyper's way of keeping a type `Send + Sync`).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<App>();
    assert_send_sync::<Config>();
    assert_send_sync::<Router>();
    assert_send_sync::<Admission>();
};

/// What the access log says about one request, filled in as the pipeline
/// learns it.
#[derive(Default)]
struct Access {
    function: Option<Arc<FunctionSpec>>,
    /// The proxy serving the request, and the upstream it tried.
    proxy: Option<(Arc<Proxy>, Option<usize>)>,
    fuel: u64,
}

impl App {
    /// Builds routes, cache and runtime from a validated config.
    pub fn new(config: Config) -> Self {
        Self {
            router: Router::new(&config),
            cache: ModuleCache::new(&config.server),
            admission: Admission::new(&config.server),
            state: state::State::new(&config.state),
            metrics: Arc::default(),
            dumps: config.dumps.clone().map(|d| Arc::new(dumps::Dumps::new(d))),
            config,
        }
    }

    /// The application with `state` (opened at start: [`State::at_start`]).
    #[must_use]
    pub fn with_state(mut self, state: State) -> Self {
        self.state = state;
        self
    }

    /// The application for a reloaded `config`, which serves the next
    /// requests while this one finishes those in flight. The KV store, if
    /// this one has opened it and the new config keeps its directory, is
    /// carried over (it is locked against a second opening), and so are
    /// the metrics and an unchanged `[dumps]` writer; the module cache and
    /// the admission counters start afresh.
    pub fn reloaded(&self, config: Config) -> Self {
        let mut app = App::new(config);
        app.state.carry(&self.state);
        app.metrics = Arc::clone(&self.metrics);
        // The same `[dumps]`: the same writer, so that its bound on dumps
        // being written and its numbering hold across reloads.
        if let (Some(old), Some(new)) = (&self.dumps, &app.dumps)
            && old.config() == new.config()
        {
            app.dumps = Some(Arc::clone(old));
        }
        app
    }

    /// Builds the application for a server bound to `addr`, saying what it
    /// serves in the log.
    pub fn start(config: Config, addr: SocketAddr) -> Self {
        if let Some(board) = &config.board {
            log::info!(
                "board profile {}: {} ({}, {} cores, {} MiB RAM, {}), fuel_per_ms {}",
                board.key,
                board.name,
                board.cpu,
                board.cores,
                board.ram >> 20,
                board.target,
                config
                    .fuel_per_ms
                    .map_or("unknown".into(), |f| f.to_string()),
            );
        }
        for p in &config.proxies {
            let urls: Vec<&str> = p.upstreams.iter().map(|u| u.url.as_str()).collect();
            let star = match (p.prefix, p.route.as_str()) {
                (true, "/") => "*",
                (true, _) => "/*",
                (false, _) => "",
            };
            log::info!("proxy {}: {}{star} -> {}", p.name, p.route, urls.join(", "));
        }
        let app = App::new(config);
        log::info!(
            "serving {} configured function(s){} on http://{addr}",
            app.config.functions.len(),
            app.config
                .functions_dir
                .as_ref()
                .map(|d| format!(" and {}/NAME.wasm at /NAME", d.display()))
                .unwrap_or_default(),
        );
        app
    }

    /// Routes, admits and calls: the guest's response, or the error that
    /// replaces it. `access` learns the function and the fuel on the way.
    async fn pipeline(
        &self,
        req: &Request,
        trace_id: &str,
        access: &mut Access,
    ) -> Result<Response, Error> {
        let spec = match self.route(req, access)? {
            Routed::Function(spec) => spec,
            Routed::Proxy(proxy) => return self.forward(req, proxy, trace_id, access).await,
        };
        let loaded = self.load(&spec, trace_id, access).await?;
        access.function = Some(Arc::clone(&spec));
        let permit = self.admit(&spec).await?;
        let (result, mut writes) = if spec.middleware.is_empty() {
            let result = self
                .call(req, &spec, &loaded, &permit, trace_id, access)
                .await;
            (result, Vec::new())
        } else {
            let mut chain = self.chain(trace_id, &spec.route);
            let result = self
                .chained(&mut chain, req, (&spec, &loaded, &permit), trace_id, access)
                .await;
            access.fuel = access.fuel.saturating_add(chain.fuel());
            (result, chain.take_writes())
        };
        // The guest and its middleware are gone: its slot and memory go
        // back before the request waits for its writes to be durable
        // (`sync = "always"`).
        drop(permit);
        // The function's writes only with a good response; the middleware's
        // ones whenever they all completed (`middleware`'s doc).
        let result = result.map(|(response, txn)| {
            writes.extend(txn);
            response
        });
        let saved = state::commit(writes, &spec.name, trace_id).await;
        result.and_then(|response| saved.map(|()| response))
    }

    /// An empty middleware chain for one request.
    fn chain<'a>(&'a self, trace_id: &'a str, route: &'a str) -> Chain<'a> {
        Chain::new(middleware::Env {
            cache: &self.cache,
            admission: &self.admission,
            server: &self.config.server,
            trace_id,
            state: &self.state,
            metrics: &self.metrics,
            dumps: self.dumps.as_ref(),
            route,
        })
    }

    /// The function behind its middleware: request phase, the function,
    /// response phase ([`middleware::Chain`]).
    async fn chained(
        &self,
        chain: &mut Chain<'_>,
        req: &Request,
        (spec, loaded, permit): (&FunctionSpec, &cache::Loaded, &admission::Permit<'_>),
        trace_id: &str,
        access: &mut Access,
    ) -> Result<(Response, Option<Txn>), Error> {
        // The middleware change a copy; its body is counted in the budget.
        let copy = Reservation::new(&self.admission);
        copy.force(req.body.len() as u64);
        let mut req = req.clone();
        if let Flow::Respond(response) = chain.handle_request(&spec.middleware, &mut req).await? {
            return Ok((response, None));
        }
        let (next, writes) = match self
            .call(&req, spec, loaded, permit, trace_id, access)
            .await
        {
            Ok((response, writes)) => (Ok(response), writes),
            Err(error) => (Err(error), None),
        };
        // A response middleware that fails drops the writes (discarded).
        let response = chain.handle_response(&mut req, next).await?;
        Ok((response, writes))
    }

    /// Forwards the request to the proxy's upstream behind its middleware
    /// (request phase, upstream, response phase). The upstream's response
    /// is streamed unless a middleware enabled `buffer_response`; then it
    /// is read whole, its `max_response` reserved in the memory budget.
    async fn forward(
        &self,
        req: &Request,
        proxy: Arc<Proxy>,
        trace_id: &str,
        access: &mut Access,
    ) -> Result<Response, Error> {
        let mut used = None;
        let result = if proxy.spec.middleware.is_empty() {
            proxy
                .forward(&proxy_request(req, trace_id), false, &mut used)
                .await
        } else {
            let mut chain = self.chain(trace_id, &proxy.spec.route);
            let result = self
                .forward_chained(&mut chain, req, &proxy, trace_id, &mut used)
                .await;
            access.fuel = access.fuel.saturating_add(chain.fuel());
            let saved = state::commit(chain.take_writes(), &proxy.spec.name, trace_id).await;
            result.and_then(|response| saved.map(|()| response))
        };
        access.proxy = Some((proxy, used));
        result
    }

    /// The upstream behind the proxy's middleware.
    async fn forward_chained(
        &self,
        chain: &mut Chain<'_>,
        req: &Request,
        proxy: &Proxy,
        trace_id: &str,
        used: &mut Option<usize>,
    ) -> Result<Response, Error> {
        // The middleware change a copy; its body is counted in the budget.
        let copy = Reservation::new(&self.admission);
        copy.force(req.body.len() as u64);
        let mut req = req.clone();
        if let Flow::Respond(response) = chain
            .handle_request(&proxy.spec.middleware, &mut req)
            .await?
        {
            return Ok(response);
        }
        let buffer = chain.buffers_response();
        // A buffered response is held whole until the middleware are done.
        let _held = match buffer.then(|| self.admission.reserve(proxy.spec.limits.max_response)) {
            Some(Err(message)) => {
                self.metrics.refused(message);
                let retry = self.config.server.retry_after_secs.to_string();
                let error = Error::new(Kind::Overloaded, message).with_header("retry-after", retry);
                return chain.handle_response(&mut req, Err(error)).await;
            }
            held => held,
        };
        let next = proxy
            .forward(&proxy_request(&req, trace_id), buffer, used)
            .await;
        chain.handle_response(&mut req, next).await
    }

    /// The function or proxy serving the request's path and method.
    fn route(&self, req: &Request, access: &mut Access) -> Result<Routed, Error> {
        match self.router.route(&req.method, req.path()) {
            Match::Found(spec) => Ok(Routed::Function(spec)),
            Match::Proxy(proxy) => Ok(Routed::Proxy(proxy)),
            Match::NotFound => Err(Error::new(Kind::NotFound, "no function serves this path")),
            Match::MethodNotAllowed(spec, allow) => {
                access.function = Some(spec);
                Err(Error::new(
                    Kind::MethodNotAllowed,
                    "method not allowed for this function",
                )
                .with_header("allow", allow))
            }
        }
    }

    /// The function's compiled module, from the cache.
    async fn load(
        &self,
        spec: &Arc<FunctionSpec>,
        trace_id: &str,
        access: &mut Access,
    ) -> Result<Arc<cache::Loaded>, Error> {
        match self.cache.get(&spec.module, spec.abi).await {
            Ok(loaded) => Ok(loaded),
            // `/NAME` with no `NAME.wasm`: there is no such function.
            Err(e) if spec.from_functions_dir && cache::is_missing(&e) => {
                Err(Error::new(Kind::NotFound, "no function serves this path"))
            }
            Err(e) => {
                // The cache logs other failures once per change of the file;
                // a missing file is not cached, so it is logged here.
                if cache::is_missing(&e) {
                    log::warn!(
                        "function {} [{trace_id}]: module unavailable: {e}",
                        spec.name
                    );
                }
                access.function = Some(Arc::clone(spec));
                let message = "the function's module cannot be loaded; the server log says why";
                Err(Error::new(Kind::ModuleUnavailable, message))
            }
        }
    }

    /// An in-flight slot and the function's memory, or 503 `overloaded`.
    async fn admit(&self, spec: &FunctionSpec) -> Result<admission::Permit<'_>, Error> {
        let mut refused = self.admission.admit(&spec.limits);
        // Refused: wait in the admission queue, if it has room, for up to
        // `admission_timeout`, trying again each time a slot or memory is
        // given back.
        if let (Err(_), Some(_place)) = (&refused, self.admission.queue()) {
            let deadline = Instant::now() + self.config.server.admission_timeout;
            let expired = async {
                smol::Timer::at(deadline).await;
            };
            let mut expired = std::pin::pin!(expired);
            // The deadline is checked on every turn too: a wake-up that
            // admits nothing can never keep a waiter past it.
            while refused.is_err() && Instant::now() < deadline {
                let freed = self.admission.listen();
                refused = self.admission.admit(&spec.limits);
                if refused.is_ok() {
                    break;
                }
                let woken = smol::future::or(
                    async {
                        freed.await;
                        true
                    },
                    async {
                        expired.as_mut().await;
                        false
                    },
                );
                if !woken.await {
                    break;
                }
                refused = self.admission.admit(&spec.limits);
            }
        }
        refused.map_err(|message| {
            self.metrics.refused(message);
            let retry = self.config.server.retry_after_secs.to_string();
            Error::new(Kind::Overloaded, message).with_header("retry-after", retry)
        })
    }

    /// Runs the guest and checks its response ([`into_http`]); with the
    /// request's KV writes, to commit.
    async fn call(
        &self,
        req: &Request,
        spec: &FunctionSpec,
        loaded: &cache::Loaded,
        permit: &admission::Permit<'_>,
        trace_id: &str,
        access: &mut Access,
    ) -> Result<(Response, Option<Txn>), Error> {
        let headers = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let request = abi::GuestRequest {
            method: &req.method,
            uri: &req.uri,
            headers,
            body: &req.body,
            trace_id,
        };
        self.hold_stdin(loaded, permit, &request)?;
        let txn = self.state.txn(loaded.compiled.kv, spec.namespace());
        // With `[dumps]`, the guest's inputs are recorded for a dump.
        let tape = self.dumps.as_ref().map(|_| Tape::recording());
        let mut phase = None;
        let outcome = match loaded.compiled.abi {
            abi::Abi::HttpWasm => {
                let server = &self.config.server;
                let (outcome, ended) =
                    middleware::terminal(server, loaded, spec, req, trace_id, (txn, tape.clone()))
                        .await;
                phase = Some(ended);
                outcome
            }
            _ => {
                let (runtime, compiled) = (&loaded.runtime, &loaded.compiled);
                abi::call_taped(runtime, compiled, spec, &request, txn, tape.clone()).await
            }
        };
        access.fuel = outcome.fuel;
        let response = outcome.result.and_then(into_http).map_err(|e| {
            log::warn!("function {} [{trace_id}]: {e}", spec.name);
            if let (Some(dumps), Some(tape)) = (&self.dumps, tape)
                && !matches!(e, CallError::InitialMemory { .. })
            {
                // An http-wasm function: its exchange (no config, no
                // snapshot; its response is its own).
                let http = phase.map(|phase| {
                    let peer = crate::runtime::exchange::Message {
                        peer: req.peer,
                        ..Default::default()
                    };
                    dumps::http_wasm(
                        ("function", phase),
                        b"",
                        &crate::runtime::exchange::ExchangeLimits::new(
                            &self.config.server,
                            &spec.limits,
                        ),
                        (&peer, false),
                        None,
                    )
                });
                dumps.write(dumps::Failure {
                    function: spec,
                    abi: loaded.compiled.abi,
                    request: &request,
                    error: &e,
                    fuel: outcome.fuel,
                    inputs: tape.borrow_mut().take(),
                    http,
                });
            }
            Error::from(e)
        })?;
        // Only a good response commits the request's writes; on any error
        // above, `outcome.kv` is dropped here and they are discarded.
        Ok((response, outcome.kv))
    }

    /// Counts a wasi-json request's stdin in `memory_budget` before the
    /// call writes it: JSON escaping can make it ~6 times the body, held in
    /// host memory for the whole call. A stdin that could never fit beside
    /// the function's reservation is 413; one that does not fit now, 503.
    fn hold_stdin(
        &self,
        loaded: &cache::Loaded,
        permit: &admission::Permit<'_>,
        request: &abi::GuestRequest<'_>,
    ) -> Result<(), Error> {
        if loaded.compiled.abi != abi::Abi::WasiJson {
            return Ok(());
        }
        let bytes = abi::wasi_json::stdin_len(request);
        let body = u64::try_from(request.body.len()).unwrap_or(u64::MAX);
        permit.hold(bytes, body).map_err(|could_fit| {
            if could_fit {
                let retry = self.config.server.retry_after_secs.to_string();
                let message = "the memory budget (memory_budget) is taken by requests in progress; retry later";
                self.metrics.refused(message);
                Error::new(Kind::Overloaded, message).with_header("retry-after", retry)
            } else {
                Error::new(
                    Kind::BodyTooLarge,
                    format!(
                        "the request as the function's JSON stdin is {bytes} bytes: with the function's memory and max_response it does not fit memory_budget ({} bytes)",
                        self.config.server.memory_budget
                    ),
                )
            }
        })
    }

    /// The one way out of a request, answered or not: the error body if it
    /// failed, `x-trace-id`, and the access line.
    fn finish(
        &self,
        (method, uri, trace_id): (&str, &str, &str),
        result: Result<Response, Error>,
        access: &Access,
        started: Instant,
    ) -> Response {
        let proxy = access.proxy.as_ref();
        let function = access
            .function
            .as_deref()
            .map(|f| f.name.as_str())
            .or(proxy.map(|(p, _)| p.spec.name.as_str()));
        let (response, kind) = match result {
            Ok(response) => (response, None),
            Err(e) => (error_response(&e, function, trace_id), Some(e.kind)),
        };
        let series = match (&access.function, proxy) {
            (Some(f), _) if f.from_functions_dir && response.status != 404 => {
                metrics::Series::Dir(&f.name)
            }
            (Some(f), _) if !f.from_functions_dir => metrics::Series::Configured(&f.name),
            (None, Some((p, _))) => metrics::Series::Configured(&p.spec.name),
            _ => metrics::Series::None,
        };
        let took = started.elapsed();
        self.metrics.request(
            series,
            response.status,
            kind.map(Kind::as_str),
            access.fuel,
            took,
        );
        let served = Served { proxy, function };
        log::info!(
            target: "access",
            "{} {} {served} status={} error={} fuel={} us={} trace={trace_id}",
            // Method and target are client text: escaped like guest text, so
            // that no line break or bidi control reaches the log raw.
            crate::runtime::escape(method),
            crate::runtime::escape(uri),
            response.status,
            kind.map_or("-", Kind::as_str),
            access.fuel,
            took.as_micros(),
        );
        response.with_header("x-trace-id", trace_id)
    }
}

impl server::Handler for App {
    type Gate<'a> = RequestGate<'a>;
    type Held<'a> = Reservation<'a>;

    fn limits(&self) -> &ServerLimits {
        &self.config.server
    }

    fn gate(&self) -> RequestGate<'_> {
        RequestGate::new(&self.admission)
    }

    async fn respond(&self, req: &Request, gate: &Self::Gate<'_>) -> Response {
        let started = Instant::now();
        // The gate keeps it too: a cancelled request's line names it.
        let trace = match &*gate.head.borrow() {
            Some((_, _, trace)) => trace.clone(),
            None => trace_id(&req.headers),
        };
        let mut access = Access::default();
        let result = self.pipeline(req, &trace, &mut access).await;
        self.finish((&req.method, &req.uri, &trace), result, &access, started)
    }

    /// 400, 408, 413, 431, 505 or 503 `overloaded`.
    fn unreadable(&self, e: DecodeError, gate: &RequestGate<'_>, started: Instant) -> Response {
        let limits = &self.config.server;
        let mut error = Error::new(e.kind(), e.message(limits));
        if error.kind == Kind::Overloaded {
            error = error.with_header("retry-after", limits.retry_after_secs.to_string());
        }
        let head = gate.head.borrow();
        let fresh;
        let (method, uri, trace) = match &*head {
            Some((method, uri, trace)) => (method.as_str(), uri.as_str(), trace.as_str()),
            None => {
                fresh = trace_id(&[]);
                ("-", "-", fresh.as_str())
            }
        };
        log::debug!("[{trace}] request refused: {}", error.message);
        self.finish(
            (method, uri, trace),
            Err(error),
            &Access::default(),
            started,
        )
    }

    fn refused(&self, refused: &Refused, started: Instant) -> Response {
        let trace = trace_id(&[]);
        let retry = self.config.server.retry_after_secs.to_string();
        let error = Error::new(Kind::TooManyConnections, refused.to_string())
            .with_header("retry-after", retry);
        self.finish(("-", "-", &trace), Err(error), &Access::default(), started)
    }

    fn cancelled(&self, req: &Request, gate: &RequestGate<'_>) {
        let head = gate.head.borrow();
        let fresh;
        let trace = match &*head {
            Some((_, _, trace)) => trace.as_str(),
            None => {
                fresh = trace_id(&req.headers);
                fresh.as_str()
            }
        };
        log::info!(target: "access", "{} {} cancelled: the client closed the connection trace={trace}", req.method, req.uri);
    }

    fn hold(&self, bytes: u64) -> Reservation<'_> {
        let held = Reservation::new(&self.admission);
        held.force(bytes);
        held
    }
}

/// The access line's `fn=NAME`, or for a proxied request
/// `proxy=NAME upstream=URL`.
struct Served<'a> {
    proxy: Option<&'a (Arc<Proxy>, Option<usize>)>,
    function: Option<&'a str>,
}

impl std::fmt::Display for Served<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.proxy {
            Some((p, used)) => write!(
                f,
                "proxy={} upstream={}",
                p.spec.name,
                used.and_then(|i| p.upstream(i))
                    .map_or("-", |u| u.url.as_str())
            ),
            None => write!(f, "fn={}", self.function.unwrap_or("-")),
        }
    }
}

/// What routing led to.
enum Routed {
    Function(Arc<FunctionSpec>),
    Proxy(Arc<Proxy>),
}

/// What the proxy sends upstream: the request as the middleware left it.
fn proxy_request<'a>(req: &'a Request, trace_id: &'a str) -> ProxyRequest<'a> {
    ProxyRequest {
        method: &req.method,
        uri: &req.uri,
        headers: &req.headers,
        body: &req.body,
        peer: req.peer,
        trace_id,
    }
}

/// The error response (README "Limits and errors"): the JSON body
/// `{"error","message","function","trace_id"}`, `x-wasmgate-error` and the
/// error's own fields.
fn error_response(e: &Error, function: Option<&str>, trace_id: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
        function: Option<&'a str>,
        trace_id: &'a str,
    }
    let body = serde_json::to_vec(&Body {
        error: e.kind.as_str(),
        message: &e.message,
        function,
        trace_id,
    })
    .unwrap_or_default();
    let mut headers: Vec<(Cow<'static, str>, Vec<u8>)> = vec![
        ("content-type".into(), b"application/json".to_vec()),
        (
            "x-wasmgate-error".into(),
            e.kind.as_str().as_bytes().to_vec(),
        ),
    ];
    for (name, value) in &e.headers {
        headers.push(((*name).into(), value.as_bytes().to_vec()));
    }
    Response {
        status: e.kind.status(),
        headers,
        body,
        stream: None,
    }
}

/// Checks a guest's response and turns it into HTTP: header count, names,
/// values, no host-owned fields (framing fields are dropped). `wasmgate run`
/// uses it too, so that it accepts exactly what the server sends.
pub(crate) fn into_http(guest: abi::GuestResponse) -> Result<Response, CallError> {
    if guest.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(CallError::BadResponse(format!(
            "{} header fields, more than the {MAX_RESPONSE_HEADERS} allowed",
            guest.headers.len()
        )));
    }
    let mut headers = Vec::with_capacity(guest.headers.len());
    for (name, value) in guest.headers {
        let lower = name.to_ascii_lowercase();
        if !valid_name(&lower) || !valid_value(&value) {
            return Err(CallError::BadResponse(format!(
                "invalid header field `{}`: the name must be a token, the value visible characters, spaces and tabs",
                crate::error::clip(&lower, 64).escape_debug()
            )));
        }
        if HOST_HEADERS.contains(&lower.as_str()) {
            return Err(CallError::BadResponse(format!(
                "header field `{lower}` is set by the host, not by functions"
            )));
        }
        if !FRAMING_HEADERS.contains(&lower.as_str()) {
            headers.push((lower.into(), value));
        }
    }
    Ok(Response {
        status: guest.status,
        headers,
        body: guest.body,
        stream: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_json() {
        let r = error_response(
            &Error::new(Kind::Deadline, "too \"slow\""),
            Some("loop"),
            "t1",
        );
        assert_eq!(r.status, 504);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "deadline");
        assert_eq!(v["message"], "too \"slow\"");
        assert_eq!(v["function"], "loop");
        assert_eq!(v["trace_id"], "t1");
    }
}
