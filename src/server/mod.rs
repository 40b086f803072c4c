//! The HTTP server: one thread, one `smol::LocalExecutor`, one task per
//! connection. [`App::respond`] is the request pipeline of DESIGN.md:
//! route → module cache → admission → sandbox → response.

mod connections;
mod decode;
mod encode;
mod syntax;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

pub use decode::{DecodeError, Decoder, Gate, Request};
pub use encode::{Response, encode};

use crate::abi;
use crate::cache::{self, ModuleCache};
use crate::config::{Config, FunctionSpec};
use crate::error::Kind;
use crate::limits::{BODY_SHARE_DIVISOR, MAX_RESPONSE_HEADERS};
use crate::router::{Match, Router};

/// Everything the request pipeline shares. Lives on the executor's thread.
pub struct App {
    config: Config,
    router: Router,
    cache: ModuleCache,
    in_flight: Cell<usize>,
    /// Bytes of `memory_budget` held by guests, bodies and responses.
    reserved_memory: Cell<u64>,
    /// The part of `reserved_memory` held by request bodies being read.
    body_memory: Cell<u64>,
    connections: connections::Table,
}

/// What the access log says about one request.
struct Access {
    function: Option<Rc<FunctionSpec>>,
    kind: Option<Kind>,
    fuel: u64,
}

/// An error response and its access-log record.
fn fail(
    kind: Kind,
    message: &str,
    function: Option<Rc<FunctionSpec>>,
    fuel: u64,
    trace_id: &str,
) -> (Response, Access) {
    let name = function.as_deref().map(|f| f.name.as_str());
    let response = Response::error(kind, message, name, trace_id);
    (
        response,
        Access {
            function,
            kind: Some(kind),
            fuel,
        },
    )
}

impl App {
    /// Builds routes, cache and runtime from a validated config.
    pub fn new(config: Config) -> Self {
        Self {
            router: Router::new(&config),
            cache: ModuleCache::new(&config.server),
            in_flight: Cell::new(0),
            reserved_memory: Cell::new(0),
            body_memory: Cell::new(0),
            connections: connections::Table::default(),
            config,
        }
    }

    /// Serves one request, from routing to the response.
    async fn respond(&self, req: &Request, trace_id: &str, started: Instant) -> Response {
        let (response, access) = self.pipeline(req, trace_id).await;
        log_access(
            &req.method,
            &req.uri,
            &access,
            response.status,
            started,
            trace_id,
        );
        response.with_header("x-trace-id", trace_id)
    }

    async fn pipeline(&self, req: &Request, trace_id: &str) -> (Response, Access) {
        let spec = match self.router.route(&req.method, req.path()) {
            Match::Found(spec) => spec,
            Match::NotFound => {
                return fail(
                    Kind::NotFound,
                    "no function serves this path",
                    None,
                    0,
                    trace_id,
                );
            }
            Match::MethodNotAllowed(spec, allow) => {
                let (response, access) = fail(
                    Kind::MethodNotAllowed,
                    "method not allowed for this function",
                    Some(spec),
                    0,
                    trace_id,
                );
                return (response.with_header("allow", allow), access);
            }
        };
        let loaded = match self.cache.get(&spec.module, spec.abi).await {
            Ok(loaded) => loaded,
            // `/NAME` with no `NAME.wasm`: there is no such function.
            Err(e) if spec.from_functions_dir && cache::is_missing(&e) => {
                let message = "no function serves this path";
                return fail(Kind::NotFound, message, None, 0, trace_id);
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
                let message = "the function's module cannot be loaded; the server log says why";
                return fail(Kind::ModuleUnavailable, message, Some(spec), 0, trace_id);
            }
        };
        let _permit = match self.admit(&spec.limits) {
            Ok(permit) => permit,
            Err(message) => {
                let (response, access) = fail(Kind::Overloaded, message, Some(spec), 0, trace_id);
                let retry = self.config.server.retry_after_secs.to_string();
                return (response.with_header("retry-after", retry), access);
            }
        };
        let headers = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let request = abi::Request {
            method: &req.method,
            uri: &req.uri,
            headers,
            body: &req.body,
            trace_id,
        };
        let outcome = abi::call(&loaded.runtime, &loaded.compiled, &spec, &request).await;
        match outcome.result.and_then(into_http) {
            Ok(response) => {
                let access = Access {
                    function: Some(spec),
                    kind: None,
                    fuel: outcome.fuel,
                };
                (response, access)
            }
            Err(e) => {
                log::warn!("function {} [{trace_id}]: {e}", spec.name);
                fail(e.kind(), &e.to_string(), Some(spec), outcome.fuel, trace_id)
            }
        }
    }

    /// Reserves an in-flight slot and, from the memory budget, the
    /// function's `memory` and `max_response` (its output, buffered in the
    /// host), or says why not.
    fn admit(&self, limits: &crate::limits::FunctionLimits) -> Result<Permit<'_>, &'static str> {
        if self.in_flight.get() >= self.config.server.max_in_flight {
            return Err("too many requests in flight (max_in_flight); retry later");
        }
        let memory = Reservation::new(self);
        if !memory.grow(limits.memory.saturating_add(limits.max_response)) {
            return Err(
                "the memory budget (memory_budget) is taken by requests in progress; retry later",
            );
        }
        self.in_flight.set(self.in_flight.get().saturating_add(1));
        Ok(Permit {
            app: self,
            _memory: memory,
        })
    }
}

/// An admitted request; releases its slot and memory when dropped.
struct Permit<'a> {
    app: &'a App,
    _memory: Reservation<'a>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let app = self.app;
        app.in_flight.set(app.in_flight.get().saturating_sub(1));
    }
}

/// Bytes of the memory budget held for one request (its body, a guest, a
/// response); given back when dropped.
struct Reservation<'a> {
    app: &'a App,
    bytes: Cell<u64>,
}

impl<'a> Reservation<'a> {
    fn new(app: &'a App) -> Self {
        Self {
            app,
            bytes: Cell::new(0),
        }
    }

    /// Takes `more` bytes if they fit in `memory_budget`.
    fn grow(&self, more: u64) -> bool {
        let reserved = self.app.reserved_memory.get();
        match reserved.checked_add(more) {
            Some(total) if total <= self.app.config.server.memory_budget => {
                self.app.reserved_memory.set(total);
                self.bytes.set(self.bytes.get().saturating_add(more));
                true
            }
            _ => false,
        }
    }

    /// Counts `more` bytes whether or not they fit: memory already in use
    /// (a response being written) is counted, so that later requests wait.
    fn force(&self, more: u64) {
        let app = self.app;
        app.reserved_memory
            .set(app.reserved_memory.get().saturating_add(more));
        self.bytes.set(self.bytes.get().saturating_add(more));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let app = self.app;
        app.reserved_memory
            .set(app.reserved_memory.get().saturating_sub(self.bytes.get()));
    }
}

/// What a connection learns while one request is read: its head (for the
/// connection table, the access log and the trace id), and memory for its
/// body from the budget.
struct RequestGate<'a> {
    entry: &'a connections::Entry<'a>,
    body: Reservation<'a>,
    /// Method, target and trace id, once the head is in.
    head: RefCell<Option<(String, String, TraceId)>>,
}

impl Gate for RequestGate<'_> {
    fn head(&self, method: &str, uri: &str, headers: &[(String, Vec<u8>)]) {
        self.entry.busy();
        let trace = trace_id(headers);
        *self.head.borrow_mut() = Some((method.to_owned(), uri.to_owned(), trace));
    }

    fn reserve_body(&self, bytes: u64) -> bool {
        let app = self.body.app;
        let share = app.config.server.memory_budget / BODY_SHARE_DIVISOR;
        let fits = app
            .body_memory
            .get()
            .checked_add(bytes)
            .is_some_and(|total| total <= share);
        if !fits || !self.body.grow(bytes) {
            return false;
        }
        app.body_memory
            .set(app.body_memory.get().saturating_add(bytes));
        true
    }
}

impl Drop for RequestGate<'_> {
    fn drop(&mut self) {
        let app = self.body.app;
        app.body_memory
            .set(app.body_memory.get().saturating_sub(self.body.bytes.get()));
    }
}

/// Writes the access line of one response (every response has one).
fn log_access(
    method: &str,
    uri: &str,
    access: &Access,
    status: u16,
    started: Instant,
    trace_id: &str,
) {
    log::info!(
        target: "access",
        "{} {} fn={} status={status} error={} fuel={} us={} trace={trace_id}",
        // Method and target are client text: escaped like guest text, so
        // that no line break or bidi control reaches the log raw.
        crate::runtime::escape(method),
        crate::runtime::escape(uri),
        access.function.as_deref().map_or("-", |f| f.name.as_str()),
        access.kind.map_or("-", Kind::as_str),
        access.fuel,
        started.elapsed().as_micros(),
    );
}

/// A response the host makes without running a guest (a request it could
/// not read, a connection it cannot take), with its trace id, and its
/// access line; `method` and `uri` are `-` when unknown.
fn host_error(
    kind: Kind,
    message: &str,
    (method, uri, trace_id): (&str, &str, &str),
    started: Instant,
) -> Response {
    let (response, access) = fail(kind, message, None, 0, trace_id);
    log_access(method, uri, &access, response.status, started, trace_id);
    response.with_header("x-trace-id", trace_id)
}

/// Checks a guest's response and turns it into HTTP: header count, names,
/// values, no host-owned fields (framing fields are dropped). `wasmgate run`
/// uses it too, so that it accepts exactly what the server sends.
pub(crate) fn into_http(guest: abi::Response) -> Result<Response, crate::error::CallError> {
    if guest.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(crate::error::CallError::BadResponse(format!(
            "{} header fields, more than the {MAX_RESPONSE_HEADERS} allowed",
            guest.headers.len()
        )));
    }
    let mut headers = Vec::with_capacity(guest.headers.len());
    for (name, value) in guest.headers {
        let lower = name.to_ascii_lowercase();
        if !encode::valid_name(&lower) || !encode::valid_value(&value) {
            return Err(crate::error::CallError::BadResponse(format!(
                "invalid header field `{}`: the name must be a token, the value visible characters, spaces and tabs",
                lower.escape_debug()
            )));
        }
        if encode::HOST_HEADERS.contains(&lower.as_str()) {
            return Err(crate::error::CallError::BadResponse(format!(
                "header field `{lower}` is set by the host, not by functions"
            )));
        }
        if !encode::FRAMING_HEADERS.contains(&lower.as_str()) {
            headers.push((lower.into(), value));
        }
    }
    Ok(Response {
        status: guest.status,
        headers,
        body: guest.body,
    })
}

/// A trace id: at most 64 ASCII characters.
type TraceId = heapless::String<64>;

/// The request's trace id: from `traceparent`, else `x-request-id`, else new.
fn trace_id(headers: &[(String, Vec<u8>)]) -> TraceId {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let mut id = TraceId::new();
    let from_traceparent = header("traceparent")
        .and_then(|v| v.split(|&b| b == b'-').nth(1))
        .filter(|t| t.len() == 32 && t.iter().all(u8::is_ascii_hexdigit));
    let from_request_id = header("x-request-id")
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .filter(|v| {
            v.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        });
    match from_traceparent.or(from_request_id) {
        Some(given) => {
            for &b in given {
                let _ = id.push(b as char);
            }
        }
        None => {
            for _ in 0..32 {
                let _ = id.push(char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'));
            }
        }
    }
    id
}

/// At most this many tasks run between two looks at the reactor (new
/// connections, readable sockets, timers). `LocalExecutor::run` looks every
/// 200 tasks: with guests running 100,000-fuel slices (~55 µs each here),
/// a new request waited up to ~10 ms behind CPU-heavy ones.
const TASKS_PER_REACTOR_TURN: usize = 16;

/// ... and at most this long. smol's fallback `async-io` thread checks
/// every 50 µs (backing off to 10 ms) whether this thread still polls the
/// reactor; when it sees no progress, it takes the reactor over and blocks
/// in `epoll_wait`, and events then wait until the OS schedules that thread.
/// On one core (a single-core board, or the benchmark's pinned server) that
/// took 2–5 ms behind a busy executor: the fairness benchmark's hello p99
/// was 4–5 ms. Polling at least every 50 µs keeps the reactor here; it
/// costs one non-blocking `epoll_wait` per ~50 µs of busy executor.
const REACTOR_TURN: Duration = Duration::from_micros(50);

/// Binds `config.listen` and serves until the process is stopped.
pub fn run(config: Config) -> std::io::Result<()> {
    run_local(|executor| async move {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        serve(executor, listener, addr, config).await
    })
}

/// Runs `main` (given the executor, to spawn tasks on) and every task it
/// spawns on this thread until `main` ends. Public for the load benchmark's
/// native baseline, which must schedule exactly as the server does.
pub fn run_local<F, Fut>(main: F) -> std::io::Result<()>
where
    F: FnOnce(Rc<smol::LocalExecutor<'static>>) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + 'static,
{
    let executor = Rc::new(smol::LocalExecutor::new());
    let main = executor.spawn(main(Rc::clone(&executor)));
    smol::block_on(smol::future::or(main, drive(&executor)))
}

/// Runs the executor's tasks for ever, handing control back to `block_on`
/// (which then polls the reactor) after [`TASKS_PER_REACTOR_TURN`] tasks or
/// [`REACTOR_TURN`], whichever comes first.
async fn drive(executor: &smol::LocalExecutor<'_>) -> std::io::Result<()> {
    loop {
        // The first task may have to wait for work; the turn starts with it.
        executor.tick().await;
        let turn = Instant::now();
        for _ in 1..TASKS_PER_REACTOR_TURN {
            if turn.elapsed() >= REACTOR_TURN {
                break;
            }
            executor.tick().await;
        }
        smol::future::yield_now().await;
    }
}

async fn serve(
    executor: Rc<smol::LocalExecutor<'_>>,
    listener: TcpListener,
    addr: SocketAddr,
    config: Config,
) -> std::io::Result<()> {
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
    let app = Rc::new(App::new(config));
    log::info!(
        "serving {} configured function(s){} on http://{addr}",
        app.config.functions.len(),
        app.config
            .functions_dir
            .as_ref()
            .map(|d| format!(" and {}/NAME.wasm at /NAME", d.display()))
            .unwrap_or_default(),
    );
    // Tests and scripts read the bound address (useful with port 0) here.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "wasmgate listening on http://{addr}");
        let _ = out.flush();
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and similar: back off, keep serving.
                log::warn!("accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Rc::clone(&app);
        executor
            .spawn(async move {
                if let Err(e) = connection(&app, stream, peer).await {
                    log::debug!("connection from {peer}: {e}");
                }
            })
            .detach();
    }
}

/// How often a connection whose client has half-closed it (shut down its
/// writing side) is checked for a reset while its request runs. Defaults
/// to 100 ms: an end of stream stays readable, so it cannot be waited for;
/// a reset found within 100 ms frees the request's slot soon enough, at
/// ten `peek` calls a second.
const HALF_CLOSED_CHECK: Duration = Duration::from_millis(100);

/// Serves requests on one connection until it closes, fails or is evicted
/// from the connection table.
async fn connection(app: &App, mut stream: TcpStream, peer: SocketAddr) -> std::io::Result<()> {
    let accepted = Instant::now();
    // Head and body go out in one write, but without NODELAY a pipelined
    // client could still wait on Nagle + delayed ACK.
    stream.set_nodelay(true)?;
    let limits = &app.config.server;
    let entry = match app.connections.open(peer.ip(), limits) {
        Ok(entry) => entry,
        Err(refused) => {
            let trace = trace_id(&[]);
            let r = host_error(
                Kind::TooManyConnections,
                &refused.to_string(),
                ("-", "-", &trace),
                accepted,
            )
            .with_header("retry-after", limits.retry_after_secs.to_string());
            write(&mut stream, &r, false, false, limits.write_timeout).await?;
            linger(app, stream).await;
            return Ok(());
        }
    };
    let mut decoder = Decoder::new();
    loop {
        entry.waiting();
        let gate = RequestGate {
            entry: &entry,
            body: Reservation::new(app),
            head: RefCell::new(None),
        };
        let read = smol::future::or(
            async { Some(decoder.read(&mut stream, limits, &gate).await) },
            async {
                entry.evicted().await;
                None
            },
        );
        // Error responses count from when reading began, others (as
        // before) from when the request was in.
        let reading = Instant::now();
        let req = match read.await {
            Some(Ok(req)) => req,
            Some(Err(DecodeError::Closed)) => return Ok(()),
            Some(Err(DecodeError::Io(e))) => return Err(e),
            Some(Err(e)) => {
                let r = unreadable(app, e, &gate, reading);
                // The body's reservation and the table slot are given
                // back before the response is written and the rest of the
                // request is discarded.
                drop(gate);
                drop(entry);
                write(&mut stream, &r, false, false, limits.write_timeout).await?;
                linger(app, stream).await;
                return Ok(());
            }
            None => {
                log::debug!("connection from {peer} closed to make room for a new one");
                close_cleanly(&mut stream).await;
                return Ok(());
            }
        };
        let started = Instant::now();
        let trace = match gate.head.borrow_mut().take() {
            Some((_, _, trace)) => trace,
            None => trace_id(&req.headers),
        };
        // A client that resets the connection stops its request: the guest
        // is dropped at its next fuel slice instead of burning CPU and an
        // in-flight slot. One that only half-closes still gets its answer.
        let answered = smol::future::or(
            async { Some(app.respond(&req, &trace, started).await) },
            async {
                peer_reset(&stream).await;
                None
            },
        );
        let Some(response) = answered.await else {
            log::info!(target: "access", "{} {} cancelled: the client closed the connection trace={trace}", req.method, req.uri);
            return Ok(());
        };
        let (keep_alive, head_only) = (req.keep_alive, req.method == "HEAD");
        // The body leaves the memory budget with the request; the encoded
        // response enters it until it is written.
        drop(req);
        drop(gate);
        let mut out = Vec::new();
        encode(&response, keep_alive, head_only, &mut out);
        drop(response);
        let held = Reservation::new(app);
        held.force(u64::try_from(out.len()).unwrap_or(u64::MAX));
        write_bytes(&mut stream, &out, limits.write_timeout).await?;
        drop(held);
        if !keep_alive {
            // Requests pipelined after a `connection: close` one are
            // discarded, not left to reset the connection.
            drop(entry);
            linger(app, stream).await;
            return Ok(());
        }
    }
}

/// The answer to a request that could not be read: 400, 408, 413, 431, 505 or
/// 503 `overloaded`, with a trace id and an access line.
fn unreadable(app: &App, e: DecodeError, gate: &RequestGate<'_>, started: Instant) -> Response {
    let limits = &app.config.server;
    let (kind, message) = match e {
        DecodeError::HeadTimeout => (
            Kind::RequestTimeout,
            format!(
                "request head not received within header_timeout ({} ms)",
                limits.header_timeout.as_millis()
            ),
        ),
        DecodeError::BodyTimeout => (
            Kind::RequestTimeout,
            format!(
                "request body not received within body_timeout ({} ms)",
                limits.body_timeout.as_millis()
            ),
        ),
        DecodeError::HeadTooLarge => (
            Kind::HeadersTooLarge,
            format!(
                "request head is larger than {} bytes",
                limits.max_header_bytes
            ),
        ),
        DecodeError::TooManyHeaders => (
            Kind::HeadersTooLarge,
            format!("request has more than {} header fields", limits.max_headers),
        ),
        DecodeError::BodyTooLarge(n) => (
            Kind::BodyTooLarge,
            format!(
                "request body of {n} bytes is larger than {} bytes",
                limits.max_body
            ),
        ),
        DecodeError::Overloaded => (
            Kind::Overloaded,
            format!(
                "the request body does not fit in what is left of the memory budget (memory_budget = {} bytes); retry later",
                limits.memory_budget
            ),
        ),
        DecodeError::UnsupportedVersion => (
            Kind::VersionNotSupported,
            "only HTTP/1.0 and HTTP/1.1 are served".to_owned(),
        ),
        DecodeError::Malformed(why) => (Kind::BadRequest, why.to_owned()),
        DecodeError::Closed | DecodeError::Io(_) => (
            Kind::BadRequest,
            "the connection failed while the request was read".to_owned(),
        ),
    };
    let head = gate.head.borrow();
    let fresh;
    let (method, uri, trace) = match &*head {
        Some((method, uri, trace)) => (method.as_str(), uri.as_str(), trace.as_str()),
        None => {
            fresh = trace_id(&[]);
            ("-", "-", fresh.as_str())
        }
    };
    log::debug!("[{trace}] request refused: {message}");
    let r = host_error(kind, &message, (method, uri, trace), started);
    match kind {
        Kind::Overloaded => r.with_header("retry-after", limits.retry_after_secs.to_string()),
        _ => r,
    }
}

/// How long a connection closed after its last response (an error that
/// refused the request before it was read, or `connection: close`) keeps
/// reading and discarding what the client still sends: 2 s. Closing a
/// socket with unread input makes the kernel reset the connection, and a
/// reset can destroy the response before the client reads it (RFC 9112
/// §9.6, lingering close). 2 s covers a client that sends its whole body
/// before it reads and then closes; the time is short because lingering
/// connections, though out of the connection table, hold sockets
/// (bounded by [`connections::Table::linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);

/// How many bytes a lingering close discards beyond `max_body`: 4 MiB, what
/// the client's and the server's socket buffers can hold (a few MiB on
/// Linux) of a body that was on its way when the refusal went out. A body
/// refused by the memory budget is at most `max_body`, so it is discarded
/// whole; a client that sends more is reset.
const LINGER_BYTES: u64 = 4 << 20;

/// Closes a connection after its last response: shuts down the writing
/// side (the client reads an end of stream after the response), then reads
/// and discards input until the client closes too, for up to
/// [`LINGER_TIME`] and `max_body` + [`LINGER_BYTES`] bytes, so that the
/// close is a FIN and not a reset. The caller has given back the
/// connection's table slot.
async fn linger(app: &App, mut stream: TcpStream) {
    let Some(_turn) = app.connections.linger(&app.config.server) else {
        close_cleanly(&mut stream).await;
        return;
    };
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    let mut left = app.config.server.max_body.saturating_add(LINGER_BYTES);
    smol::future::or(
        async {
            while let Ok(n @ 1..) = stream.read(&mut sink).await {
                left = left.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                if left == 0 {
                    break;
                }
            }
        },
        async {
            smol::Timer::after(LINGER_TIME).await;
        },
    )
    .await;
}

/// Closes a connection with a FIN, not a reset: bytes the client sent that
/// were not read yet (which would make the kernel reset it) are discarded
/// first.
async fn close_cleanly(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    while let Some(Ok(n)) = smol::future::poll_once(stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

/// Resolves when the peer resets the connection (or it fails). An end of
/// stream is a half-close, not an end: the client may still read its
/// answer. Once the end of stream has arrived, reads report it even after
/// a reset, so the connection is looked at every [`HALF_CLOSED_CHECK`]:
/// a reset one has no peer address any more. Bytes of a pipelined next
/// request are left unread.
async fn peer_reset(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    loop {
        match stream.peek(&mut byte).await {
            Err(_) => return,
            Ok(0) if stream.peer_addr().is_err() => return,
            Ok(0) => {
                smol::Timer::after(HALF_CLOSED_CHECK).await;
            }
            Ok(_) => smol::future::pending().await,
        }
    }
}

/// Writes one response; a client that does not take it within
/// `write_timeout` loses its connection. Public for the load benchmark's
/// native baseline, which must write exactly as the server does.
pub async fn write(
    stream: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
    head_only: bool,
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    let mut out = Vec::new();
    encode(response, keep_alive, head_only, &mut out);
    write_bytes(stream, &out, timeout).await
}

/// Writes an encoded response within `timeout`.
async fn write_bytes(
    stream: &mut TcpStream,
    out: &[u8],
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    smol::future::or(
        async {
            stream.write_all(out).await?;
            stream.flush().await
        },
        async {
            smol::Timer::after(timeout).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client did not read the response within write_timeout",
            ))
        },
    )
    .await
}
