//! The HTTP server: `workers` threads, each one `smol::LocalExecutor`
//! accepting on the shared listening socket, one task per connection,
//! connection caps (global), clean closes. It serves any [`Handler`]
//! and knows nothing of functions: the application (`app`) is the handler
//! that runs them, and a test can serve its own in-process.

mod connection;
mod connections;
mod notify;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_signal::{Signal, Signals};
use smol::Async;
use smol::stream::StreamExt;

use crate::http::{DecodeError, Decoder, Gate, Request, Response, encode};
use crate::limits::ServerLimits;
use connection::connection;
pub use connection::{read_request, write};
pub use connections::Refused;

/// What the server asks of the application it serves. The server reads
/// requests, keeps connections within their caps, writes responses within
/// `write_timeout` and closes connections cleanly; a handler decides what
/// each request gets, and owns the memory a request holds.
///
/// A handler is the state every connection shares (config, routes,
/// caches, counters), so it is `Send + Sync`: each worker's executor,
/// one per thread, serves with the same handler, and requiring it keeps
/// thread-bound types (`Rc`, `Cell`) out of it as it grows. What
/// belongs to one request stays on the thread that serves it and need not
/// be `Send`: its gate, what it holds, and the future of
/// [`respond`](Handler::respond) (a guest's `Store` holds `Rc`s).
pub trait Handler: Send + Sync {
    /// Lives while one request is read: hears of its head and grants (or
    /// refuses) memory for its body; dropped when the request is answered.
    type Gate<'a>: Gate
    where
        Self: 'a;
    /// Memory held by an encoded response while it is written; given back
    /// when dropped.
    type Held<'a>
    where
        Self: 'a;

    /// The limits the server applies: framing, timeouts, connection caps.
    fn limits(&self) -> &ServerLimits;
    /// A gate for the next request on a connection.
    fn gate(&self) -> Self::Gate<'_>;
    /// The answer to a request read through `gate`.
    fn respond(
        &self,
        request: &Request,
        gate: &Self::Gate<'_>,
    ) -> impl std::future::Future<Output = Response>;
    /// The answer to a request that could not be read (`started` is when
    /// reading began).
    fn unreadable(&self, error: DecodeError, gate: &Self::Gate<'_>, started: Instant) -> Response;
    /// The answer to a connection the table refused (`started` is when it
    /// was accepted).
    fn refused(&self, refused: &Refused, started: Instant) -> Response;
    /// Notes a request whose client reset the connection before its answer.
    fn cancelled(&self, request: &Request, gate: &Self::Gate<'_>);
    /// Counts `bytes` of an encoded response against the handler's memory
    /// until the returned value is dropped.
    fn hold(&self, bytes: u64) -> Self::Held<'_>;
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

/// A worker holding more than its share of the open connections (more
/// than one over) waits this long before it accepts, so that a worker with
/// fewer takes the connection if it can. The workers share one listening
/// socket, and whichever polls first accepts everything queued: under a
/// burst of keep-alive connections (a load balancer's pool, wrk) one
/// worker took all 32 and the other idled. A worker that cannot take it
/// (busy, or at its share too) only delays the connection by this long.
const FAIR_SHARE_WAIT: Duration = Duration::from_millis(1);

/// Stack of each worker thread besides the main one: 8 MiB, the main
/// thread's usual stack (`ulimit -s`), so that a request gets the same
/// stack depth whichever worker serves it (Rust's default for a spawned
/// thread is 2 MiB). Only the pages a worker touches cost memory.
const WORKER_STACK: usize = 8 << 20;

/// A std listener registered with the reactor.
type Listener = Async<std::net::TcpListener>;

/// Binds `listen` and serves until SIGTERM or SIGINT, then drains (see
/// [`drain`]) and returns. `start` builds the handler once the address is
/// bound (it is given the bound address, useful with port 0). On SIGHUP,
/// `load` reads the new config on a thread of its own (a config file may
/// block or take long to check: serving goes on meanwhile, and SIGTERM or
/// SIGINT still drain), then `reload` is given the current handler and
/// that config and may return the handler that serves from the next
/// request on. `None` from either keeps the current one; each says why in
/// the log.
///
/// The handler's `workers` limit (read once, at start) is how many
/// threads serve: each runs its own executor, exactly the single-threaded
/// server, and accepts on its own handle of the one listening socket (the
/// kernel hands each connection to one waiting worker). They share the
/// handler (modules, store, metrics, admission) and the connection table,
/// so every cap but the per-request ones is global. This thread is worker
/// 0, and also takes the signals, reloads, drains and runs the admin
/// listener.
///
/// With `admin`, a second listener on this thread serves the handler
/// `admin`'s function builds from the main server's [`Status`] (its
/// handler of the moment, whether it drains, its connections), with the
/// same framing, timeouts and caps; it stops when the drain ends.
pub fn run<H, F, C, L, R, A, FA>(
    listen: SocketAddr,
    start: F,
    (load, reload): (L, R),
    admin: Option<(SocketAddr, FA)>,
) -> std::io::Result<()>
where
    H: Handler + 'static,
    F: FnOnce(SocketAddr) -> H + 'static,
    C: Send + 'static,
    L: Fn() -> Option<C> + Send + Sync + 'static,
    R: FnMut(&H, C) -> Option<H> + 'static,
    A: Handler + 'static,
    FA: FnOnce(Status<H>) -> A + 'static,
{
    let signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])?;
    let listener = std::net::TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let server = Arc::new(Server::new(start(addr)));
    let workers = server.handler().limits().workers.max(1);
    let admin = match admin {
        Some((admin_listen, build)) => {
            let admin_listener = Async::new(std::net::TcpListener::bind(admin_listen)?)?;
            let admin_addr = admin_listener.get_ref().local_addr()?;
            let admin = Arc::new(Server::new(build(Status(Arc::clone(&server)))));
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "wasmgate admin listening on http://{admin_addr}");
                let _ = out.flush();
            }
            Some((admin_listener, admin))
        }
        None => None,
    };
    // Every worker's handle of the listening socket, made before any
    // worker starts: a failure here is a failure to start.
    let mut listeners = Vec::new();
    for _ in 1..workers {
        listeners.push(Async::new(listener.try_clone()?)?);
    }
    let first = Async::new(listener)?;
    server.listening.store(workers, SeqCst);
    let mut threads = Vec::new();
    let mut started = Ok(());
    for (i, listener) in (1..).zip(listeners) {
        let server = Arc::clone(&server);
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .stack_size(WORKER_STACK)
            .spawn(move || worker(listener, server, workers));
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    let result = started.and_then(|()| {
        let server = Arc::clone(&server);
        let reload: Reload<H, C> = (Arc::new(load), Box::new(reload));
        run_local(move |executor| async move {
            if let Some((admin_listener, admin)) = admin {
                executor
                    .spawn(accept(Rc::clone(&executor), admin_listener, admin, 1))
                    .detach();
            }
            executor
                .spawn(accept(
                    Rc::clone(&executor),
                    first,
                    Arc::clone(&server),
                    workers,
                ))
                .detach();
            announce(&executor, addr, workers);
            control(signals, reload, &server, workers).await
        })
    });
    // The drain is over (or starting failed): the other workers end,
    // dropping the connections they still hold.
    server.finish();
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("a worker ended with an error: {e}"),
            Err(_) => log::error!("a worker panicked"),
        }
    }
    result
}

/// One worker thread besides the first: accepts on its `listener` until
/// accepting stops, then keeps serving its connections until the drain is
/// over.
fn worker<H: Handler + 'static>(
    listener: Listener,
    server: Arc<Server<H>>,
    workers: usize,
) -> std::io::Result<()> {
    run_local(move |executor| async move {
        accept(executor, listener, Arc::clone(&server), workers).await;
        server.until(Server::finished).await;
        Ok(())
    })
}

/// Says the server is up: its address on stdout (tests and scripts read
/// it there, useful with port 0), READY=1 to systemd, and the watchdog.
/// The listening socket accepts (into its backlog) from the moment it is
/// bound, so no connection is refused while the workers start.
fn announce(executor: &smol::LocalExecutor<'_>, addr: SocketAddr, workers: usize) {
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "wasmgate listening on http://{addr}");
        let _ = out.flush();
    }
    log::info!("{workers} worker(s) serving on {addr}");
    notify::notify("READY=1");
    if let Some(every) = notify::watchdog_interval() {
        executor
            .spawn(async move {
                loop {
                    notify::notify("WATCHDOG=1");
                    smol::Timer::after(every).await;
                }
            })
            .detach();
    }
}

/// Waits for signals: SIGHUP reloads, SIGTERM or SIGINT stops accepting
/// on every worker and drains; a second one ends the drain at once.
async fn control<H: Handler, C: Send + 'static>(
    mut signals: Signals,
    (load, mut reload): Reload<H, C>,
    server: &Server<H>,
    workers: usize,
) -> std::io::Result<()> {
    'signals: loop {
        match signals.next().await {
            Some(Ok(Signal::Hup)) => {
                notify::reloading();
                let load = Arc::clone(&load);
                let loading = crate::threads::off_thread("wasmgate-reload", move || load());
                let mut loading = std::pin::pin!(loading);
                // Serving goes on while the config is read; the signals
                // that come meanwhile are still taken.
                let loaded = loop {
                    let step = smol::future::or(async { Ok((&mut loading).await) }, async {
                        Err(signals.next().await)
                    })
                    .await;
                    match step {
                        Ok(loaded) => break loaded,
                        Err(Some(Ok(Signal::Hup))) => {
                            log::info!("SIGHUP: a reload is already reading the config");
                        }
                        Err(Some(Ok(signal))) => {
                            log::info!(
                                "{signal:?} received while a reload read the config: draining (again to exit at once)"
                            );
                            break 'signals;
                        }
                        Err(Some(Err(e))) => log::warn!("reading signals failed: {e}"),
                        Err(None) => break (&mut loading).await,
                    }
                };
                match loaded {
                    Some(Some(config)) => reload_handler(server, &mut reload, config, workers),
                    Some(None) => {}
                    None => log::error!(
                        "reload: no thread to read the config on; keeping the running config"
                    ),
                }
                notify::notify("READY=1");
            }
            Some(Ok(signal)) => {
                log::info!("{signal:?} received: draining (again to exit at once)");
                break;
            }
            Some(Err(e)) => log::warn!("reading signals failed: {e}"),
            None => smol::future::pending().await,
        }
    }
    let again = async {
        loop {
            match signals.next().await {
                Some(Ok(Signal::Term | Signal::Int)) => {
                    log::warn!("second SIGTERM or SIGINT: exiting without waiting");
                    return Ok(());
                }
                Some(_) => {}
                None => smol::future::pending().await,
            }
        }
    };
    let drain = async {
        server.stop_accepting().await;
        drain(server).await
    };
    smol::future::or(drain, again).await
}

/// Runs `main` (given the executor, to spawn tasks on) and every task it
/// spawns on this thread until `main` ends. Re-exported in
/// [`crate::internals`] for the load benchmark's native baseline, which
/// must schedule exactly as the server does.
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

/// What every connection task shares, on every worker: the handler
/// (replaced by a reload) and the connection table, with what the workers
/// hear of a drain. Held through an `Arc` and `Send + Sync` (asserted
/// below).
struct Server<H> {
    handler: RwLock<Arc<H>>,
    connections: connections::Table,
    /// Set when a drain starts: connections close after their current
    /// response.
    draining: AtomicBool,
    /// Connection tasks running on all workers (a drain waits for none).
    tasks: AtomicUsize,
    /// Set when accepting stops (SIGTERM or SIGINT): each worker drops its
    /// handle of the listening socket.
    stopping: AtomicBool,
    /// Workers still holding a handle of the listening socket: the socket
    /// closes (new connections are refused) when none is left.
    listening: AtomicUsize,
    /// Set when the drain is over: the workers end.
    finished: AtomicBool,
    /// Notified (every listener) when `stopping`, `listening` or
    /// `finished` changes.
    changed: event_listener::Event,
}

impl<H> Server<H> {
    fn new(handler: H) -> Self {
        Self {
            handler: RwLock::new(Arc::new(handler)),
            connections: connections::Table::default(),
            draining: AtomicBool::new(false),
            tasks: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            listening: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            changed: event_listener::Event::new(),
        }
    }

    /// The handler of the moment.
    fn handler(&self) -> Arc<H> {
        Arc::clone(&self.handler.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn draining(&self) -> bool {
        self.draining.load(SeqCst)
    }

    fn stopping(&self) -> bool {
        self.stopping.load(SeqCst)
    }

    fn finished(&self) -> bool {
        self.finished.load(SeqCst)
    }

    /// Waits until `done` says so (looked at again on every change).
    async fn until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let changed = self.changed.listen();
            if done(self) {
                return;
            }
            changed.await;
        }
    }

    /// Tells every worker to stop accepting, and waits until all of them
    /// have closed their handle of the listening socket.
    async fn stop_accepting(&self) {
        self.stopping.store(true, SeqCst);
        self.changed.notify(usize::MAX);
        self.until(|s| s.listening.load(SeqCst) == 0).await;
    }

    /// Tells every worker that the drain is over.
    fn finish(&self) {
        self.stopping.store(true, SeqCst);
        self.finished.store(true, SeqCst);
        self.changed.notify(usize::MAX);
    }
}

/// A worker's handle of the listening socket, counted in
/// [`Server::listening`] until it is dropped.
struct Listening<'a, H>(&'a Server<H>);

impl<H> Drop for Listening<'_, H> {
    fn drop(&mut self) {
        let _ = self
            .0
            .listening
            .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
        self.0.changed.notify(usize::MAX);
    }
}

/// A connection task's place in [`Server::tasks`], given back when the task
/// ends (or is dropped).
struct Task<'a>(&'a AtomicUsize);

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

// Fails to compile if the shared state stops being `Send + Sync` for a
// handler that is (wasmi's and hyper's way of keeping a type so). A generic
// function's body is type-checked for every `H` though it is never called.
#[allow(dead_code)]
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    const fn shared<H: Handler>() {
        assert_send_sync::<Server<H>>();
    }
};

/// How a SIGHUP reloads: the config's loading (run off the serving
/// threads) and the handler built from it.
type Reload<H, C> = (
    Arc<dyn Fn() -> Option<C> + Send + Sync>,
    Box<dyn FnMut(&H, C) -> Option<H>>,
);

/// What the admin listener's handler sees of the main server.
pub struct Status<H>(Arc<Server<H>>);

impl<H> Status<H> {
    /// The handler serving requests now (a reload replaces it).
    pub fn handler(&self) -> Arc<H> {
        self.0.handler()
    }
    /// Whether a drain has started (SIGTERM or SIGINT).
    pub fn draining(&self) -> bool {
        self.0.draining()
    }
    /// Connections open now (lingering closes included).
    pub fn connections(&self) -> usize {
        self.0.tasks.load(SeqCst)
    }
}

/// Accepts connections on one of `workers` workers (one task each) until
/// the server stops accepting, then closes its handle of the listening
/// socket. A worker over its share of the open connections lets the
/// others accept first ([`FAIR_SHARE_WAIT`]).
async fn accept<H: Handler + 'static>(
    executor: Rc<smol::LocalExecutor<'_>>,
    listener: Listener,
    server: Arc<Server<H>>,
    workers: usize,
) {
    let listening = Listening(&server);
    // Connections open on this worker.
    let mine = Rc::new(Cell::new(0usize));
    loop {
        let ready = smol::future::or(async { Some(listener.readable().await) }, async {
            server.until(Server::stopping).await;
            None
        })
        .await;
        let accepted = match ready {
            None => break,
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                let open = server.tasks.load(SeqCst);
                if workers > 1 && mine.get().saturating_mul(workers) > open.saturating_add(workers)
                {
                    smol::Timer::after(FAIR_SHARE_WAIT).await;
                }
                // Non-blocking: another worker may have taken it.
                match listener.get_ref().accept() {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => Err(e),
                    Ok((stream, peer)) => Async::new_edge_triggered(stream)
                        .map(|s| (smol::net::TcpStream::from(s), peer)),
                }
            }
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and similar: back off, keep serving.
                log::warn!("accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = Arc::clone(&server);
        server.tasks.fetch_add(1, SeqCst);
        let mine = Rc::clone(&mine);
        mine.set(mine.get().saturating_add(1));
        executor
            .spawn(async move {
                let _task = Task(&server.tasks);
                let _mine = Mine(&mine);
                if let Err(e) = connection(&server, stream, peer).await {
                    log::debug!("connection from {peer}: {e}");
                }
            })
            .detach();
    }
    drop(listener);
    drop(listening);
}

/// A connection's place in its worker's count, given back when it ends.
struct Mine<'a>(&'a Cell<usize>);

impl Drop for Mine<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// SIGHUP, once `config` is loaded: asks `reload` for a new handler and,
/// given one, serves the next requests with it, on every worker. The
/// listening socket stays open throughout. `workers` (the count running)
/// is not changed by a reload.
fn reload_handler<H: Handler, C>(
    server: &Server<H>,
    reload: &mut dyn FnMut(&H, C) -> Option<H>,
    config: C,
    workers: usize,
) {
    let current = server.handler();
    if let Some(new) = reload(&current, config) {
        let asked = new.limits().workers;
        if asked != workers {
            log::warn!(
                "reload: `workers` changed to {asked}: that needs a restart; still running {workers}"
            );
        }
        *server
            .handler
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
    }
}

/// How often a drain looks whether the connections are done.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

/// Stops serving after SIGTERM or SIGINT, the listener closed already on
/// every worker (new
/// connections are refused): idle connections are closed at once, the
/// others after the response they are working on (which says
/// `connection: close`), and the drain returns once none is left, or
/// after `drain_timeout`, cutting those still open.
async fn drain<H: Handler>(server: &Server<H>) -> std::io::Result<()> {
    notify::notify("STOPPING=1");
    let timeout = server.handler().limits().drain_timeout;
    server.draining.store(true, SeqCst);
    let idle = server.connections.evict_waiting();
    log::info!(
        "stopped accepting; closed {idle} idle connection(s); waiting up to {} ms (drain_timeout) for {} other(s)",
        timeout.as_millis(),
        server.tasks.load(SeqCst).saturating_sub(idle),
    );
    let started = Instant::now();
    loop {
        let left = server.tasks.load(SeqCst);
        if left == 0 {
            log::info!("drained in {} ms", started.elapsed().as_millis());
            return Ok(());
        }
        if started.elapsed() >= timeout {
            log::warn!("drain_timeout reached: cutting {left} connection(s)");
            return Ok(());
        }
        smol::Timer::after(DRAIN_CHECK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::{AsyncReadExt, AsyncWriteExt};

    /// A handler with no functions: answers every request with its path.
    struct Echo(ServerLimits);

    impl Handler for Echo {
        type Gate<'a> = ();
        type Held<'a> = ();

        fn limits(&self) -> &ServerLimits {
            &self.0
        }
        fn gate(&self) {}
        async fn respond(&self, request: &Request, _: &Self::Gate<'_>) -> Response {
            Response {
                status: 200,
                headers: Vec::new(),
                body: request.path().as_bytes().to_vec(),
                stream: None,
            }
        }
        fn unreadable(&self, _: DecodeError, _: &(), _: Instant) -> Response {
            Response {
                status: 400,
                headers: Vec::new(),
                body: Vec::new(),
                stream: None,
            }
        }
        fn refused(&self, _: &Refused, _: Instant) -> Response {
            self.unreadable(DecodeError::Closed, &(), Instant::now())
        }
        fn cancelled(&self, _: &Request, _: &()) {}
        fn hold(&self, _: u64) {}
    }

    /// The server serves any handler, in-process: no function, no config.
    #[test]
    fn serves_a_handler_in_process() {
        let result = run_local(|executor| async move {
            let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0))?;
            let addr = listener.get_ref().local_addr()?;
            let server = Arc::new(Server::new(Echo(ServerLimits::default())));
            executor
                .spawn(accept(Rc::clone(&executor), listener, server, 1))
                .detach();
            let mut client = smol::net::TcpStream::connect(addr).await?;
            client
                .write_all(b"GET /a?b HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await?;
            client.write_all(b"BAD\r\n\r\n").await?;
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await?;
            assert_eq!(
                String::from_utf8_lossy(&answer),
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n/a\
                 HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n/\
                 HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            Ok(())
        });
        assert!(result.is_ok(), "{result:?}");
    }
}
