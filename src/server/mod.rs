//! The HTTP server: one thread, one `smol::LocalExecutor`, one task per
//! connection. [`App::respond`] is the request pipeline of DESIGN.md:
//! route → module cache → admission → sandbox → response.

mod decode;
mod encode;
mod syntax;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::io::AsyncWriteExt;
use smol::net::{TcpListener, TcpStream};

pub use decode::{DecodeError, Decoder, Request};
pub use encode::{Response, encode};

use crate::abi;
use crate::cache::{self, ModuleCache};
use crate::config::{Config, FunctionSpec};
use crate::error::Kind;
use crate::limits::MAX_RESPONSE_HEADERS;
use crate::router::{Match, Router};

/// Everything the request pipeline shares. Lives on the executor's thread.
pub struct App {
    config: Config,
    router: Router,
    cache: ModuleCache,
    in_flight: Cell<usize>,
    reserved_memory: Cell<u64>,
    connections: Cell<usize>,
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
            connections: Cell::new(0),
            config,
        }
    }

    /// Serves one request, from routing to the response.
    async fn respond(&self, req: &Request) -> Response {
        let started = Instant::now();
        let trace_id = trace_id(req);
        let (mut response, access) = self.pipeline(req, &trace_id).await;
        response
            .headers
            .push(("x-trace-id".into(), trace_id.as_bytes().to_vec()));
        log::info!(
            target: "access",
            "{} {} fn={} status={} error={} fuel={} us={} trace={}",
            req.method,
            req.uri,
            access.function.as_deref().map_or("-", |f| f.name.as_str()),
            response.status,
            access.kind.map_or("-", Kind::as_str),
            access.fuel,
            started.elapsed().as_micros(),
            trace_id,
        );
        response
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
        let Some(_permit) = self.admit(spec.limits.memory) else {
            let message = "too many requests in flight; retry later";
            let (response, access) = fail(Kind::Overloaded, message, Some(spec), 0, trace_id);
            let retry = self.config.server.retry_after_secs.to_string();
            return (response.with_header("retry-after", retry), access);
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

    /// Reserves a slot and the function's memory limit, or refuses.
    fn admit(&self, memory: u64) -> Option<Permit<'_>> {
        let limits = &self.config.server;
        if self.in_flight.get() >= limits.max_in_flight
            || self.reserved_memory.get() + memory > limits.memory_budget
        {
            return None;
        }
        self.in_flight.set(self.in_flight.get() + 1);
        self.reserved_memory
            .set(self.reserved_memory.get() + memory);
        Some(Permit { app: self, memory })
    }
}

/// An admitted request; releases its reservation when dropped.
struct Permit<'a> {
    app: &'a App,
    memory: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let app = self.app;
        app.in_flight.set(app.in_flight.get() - 1);
        app.reserved_memory
            .set(app.reserved_memory.get() - self.memory);
    }
}

/// Checks a guest's response and turns it into HTTP.
fn into_http(guest: abi::Response) -> Result<Response, crate::error::CallError> {
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
                "invalid header field `{}`",
                lower.escape_debug()
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

/// The request's trace id: from `traceparent`, else `x-request-id`, else new.
fn trace_id(req: &Request) -> heapless::String<64> {
    let mut id = heapless::String::new();
    let from_traceparent = req
        .header("traceparent")
        .and_then(|v| v.split(|&b| b == b'-').nth(1))
        .filter(|t| t.len() == 32 && t.iter().all(u8::is_ascii_hexdigit));
    let from_request_id = req
        .header("x-request-id")
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
                if let Err(e) = connection(&app, stream).await {
                    log::debug!("connection from {peer}: {e}");
                }
            })
            .detach();
    }
}

/// Serves requests on one connection until it closes or fails.
async fn connection(app: &App, mut stream: TcpStream) -> std::io::Result<()> {
    // Head and body go out in one write, but without NODELAY a pipelined
    // client could still wait on Nagle + delayed ACK.
    stream.set_nodelay(true)?;
    let limits = &app.config.server;
    if app.connections.get() >= limits.max_connections {
        let r = Response::error(
            Kind::TooManyConnections,
            "too many open connections",
            None,
            "-",
        )
        .with_header("retry-after", limits.retry_after_secs.to_string());
        return write(&mut stream, &r, false, false, limits.write_timeout).await;
    }
    app.connections.set(app.connections.get() + 1);
    let _guard = ConnectionGuard(app);
    let mut decoder = Decoder::new();
    loop {
        let req = match decoder.read(&mut stream, limits).await {
            Ok(req) => req,
            Err(DecodeError::Closed) => return Ok(()),
            Err(DecodeError::Io(e)) => return Err(e),
            Err(e) => {
                let (kind, message) = match e {
                    DecodeError::HeadTimeout => (
                        Kind::RequestTimeout,
                        "request head not received in time".to_owned(),
                    ),
                    DecodeError::BodyTimeout => (
                        Kind::RequestTimeout,
                        "request body not received in time".to_owned(),
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
                    DecodeError::UnsupportedVersion => (
                        Kind::VersionNotSupported,
                        "only HTTP/1.0 and HTTP/1.1 are served".to_owned(),
                    ),
                    DecodeError::Malformed(why) => (Kind::BadRequest, why.to_owned()),
                    DecodeError::Closed | DecodeError::Io(_) => unreachable!("handled above"),
                };
                log::info!(target: "access", "- - status={} error={kind}: {message}", kind.status());
                let r = Response::error(kind, &message, None, "-");
                return write(&mut stream, &r, false, false, limits.write_timeout).await;
            }
        };
        // A client that goes away stops its request: the guest is dropped at
        // its next fuel slice instead of burning CPU and an in-flight slot.
        let answered = smol::future::or(async { Some(app.respond(&req).await) }, async {
            peer_closed(&stream).await;
            None
        });
        let Some(response) = answered.await else {
            log::info!(target: "access", "{} {} cancelled: the client closed the connection", req.method, req.uri);
            return Ok(());
        };
        write(
            &mut stream,
            &response,
            req.keep_alive,
            req.method == "HEAD",
            limits.write_timeout,
        )
        .await?;
        if !req.keep_alive {
            return Ok(());
        }
    }
}

/// Resolves when the peer has closed the connection (or it failed). Bytes of
/// a pipelined next request are left unread.
async fn peer_closed(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => smol::future::pending().await,
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
    smol::future::or(
        async {
            stream.write_all(&out).await?;
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

struct ConnectionGuard<'a>(&'a App);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get() - 1);
    }
}
