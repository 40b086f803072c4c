//! The HTTP server: one thread, one `smol::LocalExecutor`, one task per
//! connection. [`crate::app`] holds the request pipeline of DESIGN.md:
//! route → module cache → admission → sandbox → response.

mod connection;
pub(crate) mod connections;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::net::TcpListener;

pub use crate::http::{DecodeError, Decoder, Gate, Request, Response, encode};
pub use connection::{read_request, write};

use crate::app::App;
use crate::config::Config;
use connection::connection;

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
