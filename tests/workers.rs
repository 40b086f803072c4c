//! `workers = N`: N threads, each its own executor accepting on the one
//! listening socket, sharing the compiled modules, the KV store and the
//! metrics; the in-flight cap and the connection caps hold for all of them
//! together; SIGTERM drains every worker and SIGHUP reloads every worker.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Conn, HELLO, PROCESS_TIMEOUT, Server, TempDir, counting, function};

/// The names of the server's threads (`/proc/PID/task/*/comm`).
fn thread_names(s: &Server) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", s.pid())).expect("/proc/PID/task");
    let mut names: Vec<String> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// The value of an unlabelled sample in the admin listener's `/metrics`.
fn metric(s: &Server, name: &str) -> f64 {
    let admin = s.admin.expect("the server announced its admin address");
    let r = Conn::open(admin).request("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{name}` in\n{text}"))
        .parse()
        .expect("a number")
}

/// `clients` threads, each sending `each` requests for `target` on new
/// connections; every answer must be 200. The bodies, in no order.
fn concurrently(
    addr: SocketAddr,
    clients: usize,
    each: usize,
    target: &'static str,
) -> Vec<String> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                (0..each)
                    .map(|_| {
                        let r = Conn::open(addr).request("GET", target, &[], b"");
                        assert_eq!(r.status, 200, "{r:?}");
                        r.text()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect()
}

/// Waits (bounded) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn files() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("counter.wasm", function("counter.wasm")),
        ("hello.wasm", function("hello.wasm")),
    ]
}

#[test]
fn two_workers_share_the_store_the_module_cache_and_the_metrics() {
    let state = TempDir::new("workers-shared");
    let s = Server::with_config(
        &format!(
            "[server]\nworkers = 2\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [limits]\nfuel_slice = 1000\n\n[state]\ndir = \"{}\"\n\n\
             [[function]]\nroute = \"/counter\"\nmodule = \"counter.wasm\"\n\n\
             [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
            state.path().display()
        ),
        &files(),
    );
    // The main thread is worker 0; one more runs beside it (named by
    // itself once it runs). With two `block_on` threads, async-io's
    // fallback driver starts too, from worker-1: a new thread carries its
    // creator's name until it names itself, so wait for "async-io" as well.
    wait_until("worker-1 and async-io to be named", || {
        let names = thread_names(&s);
        names.iter().any(|n| n == "worker-1") && names.iter().any(|n| n == "async-io")
    });
    let names = thread_names(&s);
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("worker-"))
            .collect::<Vec<_>>(),
        ["worker-1"],
        "{names:?}"
    );
    s.wait_for_log("2 worker(s) serving on");
    // 160 increments on new connections (the kernel hands them to either
    // worker), each yielding ~50 times: all answered, all counted in the
    // one store.
    let answers = concurrently(s.addr, 16, 10, "/counter?key=c");
    assert_eq!(answers.len(), 160);
    let r = s.get("/counter?key=c");
    assert_eq!((r.status, r.text().as_str()), (200, "c: 161\n"), "{r:?}");
    // Both workers found the module compiled once, and both counted in the
    // one set of metrics.
    assert_eq!(metric(&s, "wasmgate_module_compiles_total"), 1.0);
    assert_eq!(metric(&s, "wasmgate_module_cache_entries"), 1.0);
    // (Requests that came while it compiled count as misses.)
    assert_eq!(
        metric(&s, "wasmgate_module_cache_misses_total")
            + metric(&s, "wasmgate_module_cache_hits_total"),
        161.0
    );
    s.assert_healthy();
    assert_eq!(metric(&s, "wasmgate_module_compiles_total"), 2.0);
}

#[test]
fn the_in_flight_cap_is_global_across_workers() {
    let wasm = TempDir::new("workers-in-flight");
    let spin = wasm.write("spin.wasm", counting(u64::MAX));
    let s = Server::with_config(
        "[server]\nworkers = 2\nmax_in_flight = 1\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"spin.wasm\"\n\
         limits = { fuel = 1_000_000_000_000, timeout = \"2s\" }\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("spin.wasm", spin), ("hello.wasm", function("hello.wasm"))],
    );
    assert_eq!(s.get("/hello").text(), HELLO);
    // The one slot, held by a guest spinning on one of the workers.
    let mut spinning = s.connect().read_timeout(PROCESS_TIMEOUT * 3);
    spinning.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\n");
    wait_until("the spinner to be in flight", || {
        metric(&s, "wasmgate_requests_in_flight") == 1.0
    });
    // Every other request, whichever worker accepts it, finds no slot.
    for _ in 0..6 {
        s.get("/hello").assert_error(503, "overloaded");
    }
    assert_eq!(spinning.read_response(false).status, 504);
    s.assert_healthy();
}

#[test]
fn the_connection_cap_is_global_across_workers() {
    let s = Server::with_config(
        "[server]\nworkers = 2\nmax_connections = 2\n\n\
         [[function]]\nroute = \"/echo\"\nmodule = \"echo.wasm\"\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[
            ("echo.wasm", function("echo.wasm")),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    // Two busy connections (bodies announced, not sent), on either worker.
    let mut a = s.request_in_flight("/echo");
    let mut b = s.request_in_flight("/echo");
    // Every new one is refused, whichever worker accepts it.
    for _ in 0..6 {
        let r = s.get("/hello");
        r.assert_error(503, "too-many-connections");
        assert!(
            r.message().contains("max_connections = 2"),
            "{}",
            r.message()
        );
    }
    for conn in [&mut a, &mut b] {
        conn.send(b"body");
        let r = conn.read_response(false);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.text().contains(r#""body":"body""#), "{r:?}");
    }
    drop((a, b));
    s.assert_healthy();
}

#[test]
fn sigterm_drains_every_worker_and_exits_0() {
    let wasm = TempDir::new("workers-drain");
    let module = wasm.write("count.wasm", counting(1_000_000));
    let mut s = Server::with_config(
        "[server]\nworkers = 2\ndrain_timeout = \"60s\"\n\n\
         [[function]]\nroute = \"/count\"\nmodule = \"count.wasm\"\n",
        &[("count.wasm", module)],
    );
    let mut idle = s.connect();
    let r = idle.request("GET", "/count", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "done"));
    // Requests in flight on new connections, so on either worker.
    let mut busy: Vec<Conn> = (0..4).map(|_| s.request_in_flight("/count")).collect();

    s.signal("TERM");
    s.wait_for_log("stopped accepting");
    idle.assert_clean_close();
    // Every worker closed its handle of the socket: new connections are
    // refused.
    for _ in 0..4 {
        assert!(
            TcpStream::connect_timeout(&s.addr, Duration::from_secs(5)).is_err(),
            "a new connection was accepted while draining"
        );
    }
    for conn in &mut busy {
        conn.send(b"body");
        let r = conn.read_response(false);
        assert_eq!((r.status, r.text().as_str()), (200, "done"), "{r:?}");
        assert_eq!(r.header("connection"), Some("close"), "{r:?}");
        conn.assert_clean_close();
    }
    let status = s.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log());
    let log = s.log();
    assert_eq!(
        log.matches("POST /count fn=count status=200").count(),
        4,
        "{log}"
    );
    assert!(log.contains("drained in"), "{log}");
}

#[test]
fn sighup_reloads_every_worker_and_keeps_the_running_worker_count() {
    let config =
        "[server]\nworkers = 2\n\n[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n";
    let s = Server::with_config(config, &[("hello.wasm", function("hello.wasm"))]);
    assert_eq!(s.get("/again").status, 404);
    std::fs::write(
        s.dir().join("wasmgate.toml"),
        format!(
            "{}\n[[function]]\nroute = \"/again\"\nmodule = \"hello.wasm\"\n",
            config.replace("workers = 2", "workers = 3")
        ),
    )
    .unwrap();
    s.signal("HUP");
    s.wait_for_log("reloaded ");
    // Logged after the reload line: waited for, not just looked for.
    s.wait_for_log("`workers` changed to 3: that needs a restart; still running 2");
    // New connections, on either worker, all see the new route.
    let answers = concurrently(s.addr, 4, 5, "/again");
    assert!(answers.iter().all(|a| a == HELLO), "{answers:?}");
    let names = thread_names(&s);
    assert_eq!(
        names.iter().filter(|n| n.starts_with("worker-")).count(),
        1,
        "{names:?}"
    );
    s.assert_healthy();
}

#[test]
fn one_worker_keeps_no_helper_thread_once_its_work_is_done() {
    // Under qemu-user the emulator runs threads of its own in the process.
    if std::env::var("WASMGATE_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        return;
    }
    // An upstream named by host name (resolved on a thread too), answering
    // every request on one kept-alive connection.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = upstream.local_addr().expect("address").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in upstream.incoming().flatten() {
            let mut buf = [0u8; 4096];
            while conn.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nup");
            }
        }
    });
    let s = Server::with_config(
        &format!(
            "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\n\
             [[middleware]]\nname = \"cors\"\nmodule = \"cors.wasm\"\n\
             config = {{ allowed_origins = [\"https://example.com\"] }}\n\n\
             [[function]]\nroute = \"/guarded\"\nmodule = \"hello.wasm\"\nmiddleware = [\"cors\"]\n\n\
             [[proxy]]\nroute = \"/up/*\"\nupstream = \"http://localhost:{port}\"\n"
        ),
        &[
            ("hello.wasm", function("hello.wasm")),
            ("cors.wasm", function("cors.wasm")),
        ],
    );
    // A compile (on a thread of its own), a middleware snapshot and a host
    // name's resolution (on others) have run; every one of those threads
    // is gone once it is done. A
    // thread kept for ever (a blocking pool, async-io's fallback driver)
    // would make every system call on a socket take the kernel's
    // multi-threaded path.
    assert_eq!(s.get("/hello").text(), HELLO);
    let r = s.get_with("/guarded", &[("origin", "https://example.com")]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.get("/up/x");
    assert_eq!((r.status, r.text().as_str()), (200, "up"), "{r:?}");
    s.wait_for_log("instances start from a snapshot");
    wait_until("the helper threads to end", || thread_names(&s).len() == 1);
    assert_eq!(thread_names(&s), ["wasmgate"]);
    // It still answers, and still has no second thread.
    assert_eq!(s.get("/guarded").status, 200);
    s.assert_healthy();
    assert_eq!(thread_names(&s), ["wasmgate"]);
}
