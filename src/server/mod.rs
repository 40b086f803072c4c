//! The HTTP server: one thread, one `smol::LocalExecutor`, one task per
//! connection, connection caps, clean closes. It serves any [`Handler`]
//! and knows nothing of functions: the application (`app`) is the handler
//! that runs them, and a test can serve its own in-process.

mod connection;
mod connections;
mod notify;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_signal::{Signal, Signals};
use smol::net::TcpListener;
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
/// caches, counters), so it is `Send + Sync`: one executor per core will
/// hand the same handler to each executor's thread, and requiring it now
/// keeps thread-bound types (`Rc`, `Cell`) out of it as it grows. What
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

/// Binds `listen` and serves until SIGTERM or SIGINT, then drains (see
/// [`drain`]) and returns. `start` builds the handler once the address is
/// bound (it is given the bound address, useful with port 0); on SIGHUP,
/// `reload` is given the current handler and may return the one that
/// serves from the next request on (`None` keeps the current one; it says
/// why in the log).
///
/// With `admin`, a second listener on the same executor serves the
/// handler `admin`'s function builds from the main server's [`Status`]
/// (its handler of the moment, whether it drains, its connections), with
/// the same framing, timeouts and caps; it stops when the drain ends.
pub fn run<H, F, R, A, FA>(
    listen: SocketAddr,
    start: F,
    reload: R,
    admin: Option<(SocketAddr, FA)>,
) -> std::io::Result<()>
where
    H: Handler + 'static,
    F: FnOnce(SocketAddr) -> H + 'static,
    R: FnMut(&H) -> Option<H> + 'static,
    A: Handler + 'static,
    FA: FnOnce(Status<H>) -> A + 'static,
{
    run_local(move |executor| async move {
        let signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let server = Arc::new(Server::new(start(addr)));
        if let Some((admin_listen, build)) = admin {
            let admin_listener = TcpListener::bind(admin_listen).await?;
            let admin_addr = admin_listener.local_addr()?;
            let admin = Arc::new(Server::new(build(Status(Arc::clone(&server)))));
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "wasmgate admin listening on http://{admin_addr}");
                let _ = out.flush();
            }
            executor
                .spawn(accept(Rc::clone(&executor), admin_listener, admin, None))
                .detach();
        }
        let control = Control {
            signals,
            reload: Box::new(reload),
        };
        serve(executor, listener, addr, server, Some(control)).await
    })
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

/// What every connection task shares: the handler (replaced by a reload)
/// and the connection table. Held through an `Arc` and `Send + Sync`
/// (asserted below), so that executors on other threads could share it;
/// today one thread runs them all.
struct Server<H> {
    handler: RwLock<Arc<H>>,
    connections: connections::Table,
    /// Set when a drain starts: connections close after their current
    /// response.
    draining: AtomicBool,
    /// Connection tasks running (a drain waits for none).
    tasks: AtomicUsize,
}

impl<H> Server<H> {
    fn new(handler: H) -> Self {
        Self {
            handler: RwLock::new(Arc::new(handler)),
            connections: connections::Table::default(),
            draining: AtomicBool::new(false),
            tasks: AtomicUsize::new(0),
        }
    }

    /// The handler of the moment.
    fn handler(&self) -> Arc<H> {
        Arc::clone(&self.handler.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn draining(&self) -> bool {
        self.draining.load(SeqCst)
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

/// What SIGHUP does: the new handler, or `None` to keep the current one.
type Reload<H> = Box<dyn FnMut(&H) -> Option<H>>;

/// The process's signals, and what SIGHUP does.
struct Control<H> {
    signals: Signals,
    reload: Reload<H>,
}

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

/// What the accept loop waits for.
enum Event {
    Accepted(std::io::Result<(smol::net::TcpStream, SocketAddr)>),
    Signal(Signal),
}

async fn serve<H: Handler + 'static>(
    executor: Rc<smol::LocalExecutor<'_>>,
    listener: TcpListener,
    addr: SocketAddr,
    server: Arc<Server<H>>,
    control: Option<Control<H>>,
) -> std::io::Result<()> {
    // Tests and scripts read the bound address (useful with port 0) here.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "wasmgate listening on http://{addr}");
        let _ = out.flush();
    }
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
    accept(executor, listener, server, control).await
}

/// Accepts connections (one task each) until a signal in `control` ends
/// the loop with a drain.
async fn accept<H: Handler + 'static>(
    executor: Rc<smol::LocalExecutor<'_>>,
    listener: TcpListener,
    server: Arc<Server<H>>,
    mut control: Option<Control<H>>,
) -> std::io::Result<()> {
    loop {
        let event = smol::future::or(async { Event::Accepted(listener.accept().await) }, async {
            match control.as_mut().map(|c| &mut c.signals) {
                Some(signals) => match signals.next().await {
                    Some(Ok(signal)) => Event::Signal(signal),
                    _ => smol::future::pending().await,
                },
                None => smol::future::pending().await,
            }
        })
        .await;
        let (stream, peer) = match event {
            Event::Accepted(Ok(accepted)) => accepted,
            Event::Accepted(Err(e)) => {
                // Out of file descriptors and similar: back off, keep serving.
                log::warn!("accept failed: {e}");
                smol::Timer::after(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Event::Signal(Signal::Hup) => {
                if let Some(control) = &mut control {
                    reload(&server, &mut control.reload);
                }
                continue;
            }
            Event::Signal(signal) => {
                log::info!("{signal:?} received: draining (again to exit at once)");
                drop(listener);
                let again = async {
                    while let Some(control) = &mut control {
                        if let Some(Ok(Signal::Term | Signal::Int)) = control.signals.next().await {
                            log::warn!("second SIGTERM or SIGINT: exiting without waiting");
                            return Ok(());
                        }
                    }
                    smol::future::pending().await
                };
                return smol::future::or(drain(&server), again).await;
            }
        };
        let server = Arc::clone(&server);
        server.tasks.fetch_add(1, SeqCst);
        executor
            .spawn(async move {
                let _task = Task(&server.tasks);
                if let Err(e) = connection(&server, stream, peer).await {
                    log::debug!("connection from {peer}: {e}");
                }
            })
            .detach();
    }
}

/// SIGHUP: asks `reload` for a new handler and, given one, serves the
/// next requests with it. The listening socket stays open throughout.
fn reload<H>(server: &Server<H>, reload: &mut dyn FnMut(&H) -> Option<H>) {
    notify::reloading();
    let current = server.handler();
    if let Some(new) = reload(&current) {
        *server
            .handler
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
    }
    notify::notify("READY=1");
}

/// How often a drain looks whether the connections are done.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

/// Stops serving after SIGTERM or SIGINT, the listener closed already (new
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
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = Arc::new(Server::new(Echo(ServerLimits::default())));
            executor
                .spawn(serve(Rc::clone(&executor), listener, addr, server, None))
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
