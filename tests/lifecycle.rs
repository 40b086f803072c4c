//! The process's lifecycle, as an operator drives it: SIGTERM drains
//! (requests in flight finish, idle connections close, new ones are
//! refused, exit 0), SIGHUP reloads the config without closing the
//! listening socket, and systemd hears of both through `NOTIFY_SOCKET`.

mod common;

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{HELLO, PROCESS_TIMEOUT, Server, TempDir, counting, function};

#[test]
fn sigterm_finishes_the_request_in_flight_closes_idle_connections_and_exits_0() {
    let wasm = TempDir::new("drain");
    let module = wasm.write("count.wasm", counting(1_000_000));
    let mut s = Server::with_config(
        "[server]\ndrain_timeout = \"60s\"\n\n\
         [[function]]\nroute = \"/count\"\nmodule = \"count.wasm\"\n",
        &[("count.wasm", module)],
    );
    // An idle keep-alive connection.
    let mut idle = s.connect();
    let r = idle.request("GET", "/count", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "done"));
    // A request in flight: its head is in (the server agreed to take its
    // body), its body is not.
    let mut busy = s.request_in_flight("/count");

    s.signal("TERM");
    s.wait_for_log("stopped accepting");
    idle.assert_clean_close();
    let refused = TcpStream::connect_timeout(&s.addr, Duration::from_secs(5));
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    // The request in flight finishes, the guest runs, and the response
    // says the connection closes.
    busy.send(b"body");
    let r = busy.read_response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "done"), "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    busy.assert_clean_close();

    let status = s.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log());
    let log = s.log();
    assert!(log.contains("POST /count fn=count status=200"), "{log}");
    assert!(log.contains("drained in"), "{log}");
}

#[test]
fn sigint_with_nothing_in_flight_exits_0() {
    let mut s = Server::with_config(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
    );
    assert_eq!(s.get("/hello").text(), HELLO);
    s.signal("INT");
    let status = s.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log());
}

#[test]
fn drain_timeout_cuts_what_is_still_running_and_exits_0() {
    let mut s = Server::with_config(
        "[server]\ndrain_timeout = \"0s\"\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
    );
    // A request whose body never comes.
    let _busy = s.request_in_flight("/hello");
    s.signal("TERM");
    let status = s.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log());
    assert!(
        s.log()
            .contains("drain_timeout reached: cutting 1 connection(s)"),
        "{}",
        s.log()
    );
}

/// Requests on new connections, one after the other, until `stop`: how
/// many were answered 200, and every failure (refused connection, error,
/// other status).
fn client_loop(
    addr: std::net::SocketAddr,
    target: &'static str,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut failures = Vec::new();
        while !stop.load(Ordering::SeqCst) && failures.len() < 10 {
            let mut answer = Vec::new();
            let result = TcpStream::connect_timeout(&addr, PROCESS_TIMEOUT).and_then(|mut c| {
                c.set_read_timeout(Some(PROCESS_TIMEOUT))?;
                let request =
                    format!("GET {target} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
                c.write_all(request.as_bytes())?;
                c.read_to_end(&mut answer)
            });
            match result {
                Ok(_) if answer.starts_with(b"HTTP/1.1 200 ") => {
                    done.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => failures.push(String::from_utf8_lossy(&answer).into_owned()),
                Err(e) => failures.push(e.to_string()),
            }
        }
        failures
    })
}

#[test]
fn sighup_reloads_a_valid_config_without_refusing_a_connection_and_keeps_it_when_invalid() {
    let config = "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n";
    let files = [("hello.wasm", function("hello.wasm"))];
    let s = Server::with_config(config, &files);
    let path = s.dir().join("wasmgate.toml");
    assert_eq!(s.get("/again").status, 404);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let clients = client_loop(s.addr, "/hello", Arc::clone(&stop), Arc::clone(&done));
    let wait_for_more = |n: usize| {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let start = done.load(Ordering::SeqCst);
        while done.load(Ordering::SeqCst) < start + n {
            assert!(Instant::now() < deadline, "the client loop stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for_more(3);
    // A new route, added while the client loop runs.
    std::fs::write(
        &path,
        format!("{config}\n[[function]]\nroute = \"/again\"\nmodule = \"hello.wasm\"\n"),
    )
    .unwrap();
    s.signal("HUP");
    s.wait_for_log("reloaded ");
    wait_for_more(3);
    let r = s.get("/again");
    assert_eq!((r.status, r.text().as_str()), (200, HELLO));

    // An invalid file: the error names file, line and key; the running
    // config stays.
    std::fs::write(&path, format!("[server]\nmax_connections = 0\n\n{config}")).unwrap();
    s.signal("HUP");
    let log = s.wait_for_log("reload failed");
    let line = log.lines().find(|l| l.contains("reload failed")).unwrap();
    assert!(
        line.contains("wasmgate.toml") && line.contains("max_connections") && line.contains(":2"),
        "{line}"
    );
    wait_for_more(3);
    assert_eq!(s.get("/again").text(), HELLO);

    stop.store(true, Ordering::SeqCst);
    let failures = clients.join().unwrap();
    assert!(
        failures.is_empty(),
        "failures during the reloads: {failures:?}"
    );
    s.assert_healthy();
}

#[test]
fn a_reload_reads_its_config_off_the_serving_thread_and_a_stuck_read_stalls_nothing() {
    // The config file becomes a FIFO no one writes yet: reading it blocks.
    // Requests, the admin listener and further signals go on meanwhile;
    // once the FIFO is written, the reload completes with what it read.
    let config = "[admin]\nlisten = \"127.0.0.1:0\"\n\n\
                  [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n";
    let s = Server::with_config(config, &[("hello.wasm", function("hello.wasm"))]);
    let admin = s.admin.expect("the admin listener is announced");
    let path = s.dir().join("wasmgate.toml");
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    s.signal("HUP");
    // The reload thread is blocked in the FIFO's open: serving goes on.
    std::thread::sleep(Duration::from_millis(200));
    s.assert_healthy();
    let r = common::Conn::open(admin).request("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200, "{r:?}");
    s.signal("HUP");
    s.wait_for_log("a reload is already reading the config");
    assert!(!s.log().contains("reloaded "), "{}", s.log());
    // The writer: a new route, and no `[admin]` (which needs a restart).
    let writer = std::thread::spawn(move || {
        std::fs::write(
            &path,
            "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\n\
             [[function]]\nroute = \"/again\"\nmodule = \"hello.wasm\"\n",
        )
    });
    writer.join().unwrap().unwrap();
    let log = s.wait_for_log("reloaded ");
    assert!(
        log.contains("`[admin] listen` changed to none: that needs a restart"),
        "{log}"
    );
    let r = s.get("/again");
    assert_eq!((r.status, r.text().as_str()), (200, HELLO));
    // The admin listener stays as it started.
    let r = common::Conn::open(admin).request("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200, "{r:?}");
    s.assert_healthy();
}

#[test]
fn a_sighup_while_the_server_starts_is_not_fatal() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::OpenOptionsExt;
    // Starting blocks in reading the config, a FIFO: SIGHUP's default
    // action would end the process there.
    let dir = TempDir::new("hup-start");
    std::fs::copy(function("hello.wasm"), dir.path().join("hello.wasm")).unwrap();
    let fifo = dir.path().join("wasmgate.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = common::wasmgate_command()
        .args(["serve", "--config"])
        .arg(&fifo)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A writer's non-blocking open succeeds once the server has the FIFO
    // open for reading, i.e. is reading its config (O_NONBLOCK: 0o4000).
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let mut writer = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000)
            .open(&fifo)
        {
            Ok(w) => break w,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("the server never opened its config: {e}"),
        }
    };
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP while starting ended the server"
    );
    writer
        .write_all(b"[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n")
        .unwrap();
    drop(writer);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .find_map(|l| {
            l.ok()?
                .strip_prefix("wasmgate listening on http://")?
                .parse::<std::net::SocketAddr>()
                .ok()
        })
        .expect("the server started");
    let r = common::Conn::open(addr).request("GET", "/hello", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, HELLO));
    let _ = child.kill();
    let _ = child.wait();
}

/// Every datagram received on `socket` until one equals `last`.
fn messages_until(socket: &UnixDatagram, last: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no `{last}` after {messages:?}: {e}"));
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        let end = message == last;
        messages.push(message);
        if end {
            return messages;
        }
    }
}

#[test]
fn systemd_hears_ready_reloading_stopping_and_the_watchdog() {
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(PROCESS_TIMEOUT)).unwrap();
    let mut s = Server::with_config_env(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let seen = messages_until(&socket, "READY=1");
    assert_eq!(seen, ["READY=1"]);
    assert_eq!(
        messages_until(&socket, "WATCHDOG=1").last().unwrap(),
        "WATCHDOG=1"
    );

    s.signal("HUP");
    let seen = messages_until(&socket, "READY=1");
    let seen: Vec<&String> = seen.iter().filter(|m| *m != "WATCHDOG=1").collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let usec = seen[0]
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(usec.parse::<u64>().unwrap() > 0, "{seen:?}");

    s.signal("TERM");
    messages_until(&socket, "STOPPING=1");
    assert!(s.wait_exit().success(), "{}", s.log());
}

#[test]
fn sd_notify_reaches_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("wasmgate-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    socket.set_read_timeout(Some(PROCESS_TIMEOUT)).unwrap();
    let _s = Server::with_config_env(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
        &[("NOTIFY_SOCKET", &format!("@{name}"))],
    );
    assert_eq!(messages_until(&socket, "READY=1"), ["READY=1"]);
}

#[test]
fn log_format_json_writes_one_object_per_line_with_the_access_fields() {
    let s = Server::with_config(
        "[server]\nlog_format = \"json\"\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
    );
    assert_eq!(s.get("/hello?x=1").text(), HELLO);
    let log = s.wait_for_log("\"target\":\"access\"");
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(
            v["ts"].as_f64().is_some() && v["level"].is_string(),
            "{line}"
        );
        if v["target"] == "access" {
            assert_eq!(v["method"], "GET", "{line}");
            assert_eq!(v["uri"], "/hello?x=1", "{line}");
            assert_eq!(v["fn"], "hello", "{line}");
            assert_eq!(v["status"], 200, "{line}");
            assert!(v["fuel"].as_u64().unwrap() > 0, "{line}");
        }
    }
}

#[test]
fn log_lines_carry_syslog_priorities_when_stderr_is_the_journal() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("journal");
    let path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&path).unwrap();
    let meta = stderr.metadata().unwrap();
    dir.copy(&function("hello.wasm"), "hello.wasm");
    // stderr stands for the journal's socket: JOURNAL_STREAM names it.
    let mut child = common::wasmgate_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.write(
            "wasmgate.toml",
            "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        ))
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("wasmgate listening on"), "{line:?}");
    let addr: std::net::SocketAddr = line.trim().rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(
        common::Conn::open(addr)
            .request("GET", "/hello", &[], b"")
            .status,
        200
    );
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        log.contains("<6>[INFO  access] GET /hello fn=hello status=200"),
        "{log}"
    );
    for line in log.lines() {
        assert!(
            line.starts_with("<6>[INFO ") || line.starts_with("<4>[WARN "),
            "{line}"
        );
    }
}

#[test]
fn a_second_sigterm_exits_without_waiting_for_the_drain() {
    let mut s = Server::with_config(
        "[server]\ndrain_timeout = \"1h\"\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
    );
    // A request whose body never comes holds the drain for an hour.
    let _busy = s.request_in_flight("/hello");
    s.signal("TERM");
    s.wait_for_log("stopped accepting");
    s.signal("TERM");
    let status = s.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log());
    assert!(s.log().contains("exiting without waiting"), "{}", s.log());
}

/// A server with one in-flight slot and an admission queue (`queue`: its
/// `[server]` keys), whose slot is held by a request spinning for
/// `spin_timeout` of CPU time (then 504), sent on the connection returned.
fn slot_held(tag: &str, queue: &str, spin_timeout: &str) -> (Server, common::Conn) {
    let wasm = TempDir::new(tag);
    let spin = wasm.write("spin.wasm", counting(u64::MAX));
    let s = Server::with_config(
        &format!(
            "[server]\nmax_in_flight = 1\n{queue}\n\n\
             [[function]]\nroute = \"/spin\"\nmodule = \"spin.wasm\"\n\
             limits = {{ fuel = 1_000_000_000_000, timeout = \"{spin_timeout}\" }}\n\n\
             [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n"
        ),
        &[("spin.wasm", spin), ("hello.wasm", function("hello.wasm"))],
    );
    // Loaded first, so that its compile does not hold the thread later.
    assert_eq!(s.get("/hello").text(), HELLO);
    let mut spinning = s.connect().read_timeout(PROCESS_TIMEOUT * 3);
    spinning.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\n");
    s.wait_for_log("spin.wasm (native ABI)");
    (s, spinning)
}

#[test]
fn a_request_over_max_in_flight_waits_in_the_bounded_admission_queue() {
    // The one slot, held for its 2 s of CPU time.
    let (s, mut spinning) = slot_held(
        "queue",
        "admission_queue = 1\nadmission_timeout = \"60s\"",
        "2s",
    );
    // Two more while it spins: one waits in the queue and is served once
    // the slot is free, the other finds the queue full and gets 503 at once.
    let mut first = s.connect().read_timeout(PROCESS_TIMEOUT * 3);
    let mut second = s.connect().read_timeout(PROCESS_TIMEOUT * 3);
    first.send(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n");
    second.send(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n");
    let mut statuses = [first.read_response(false), second.read_response(false)];
    statuses.sort_by_key(|r| r.status);
    assert_eq!(statuses[0].status, 200, "{statuses:?}");
    assert_eq!(statuses[0].text(), HELLO);
    statuses[1].assert_error(503, "overloaded");
    assert_eq!(spinning.read_response(false).status, 504);
    s.assert_healthy();
}

#[test]
fn a_queued_request_gets_503_when_admission_timeout_passes() {
    let (s, mut spinning) = slot_held(
        "queue-timeout",
        "admission_queue = 4\nadmission_timeout = \"300ms\"",
        "3s",
    );
    // Queued (there is room), nothing is given back within 300 ms of its
    // wall-clock wait: 503, while the spinner still runs.
    let r = s.get("/hello");
    r.assert_error(503, "overloaded");
    assert_eq!(spinning.read_response(false).status, 504);
    s.assert_healthy();
}

#[test]
fn a_request_queued_for_memory_waits_without_spinning_and_times_out() {
    // Slots are free but the memory budget is not: the spinner holds
    // 40 MiB + its 1 MiB response of 64 MiB, /hello asks for 30 MiB more.
    // Its wait must be a real wait (the spinner keeps running, the timeout
    // fires), not a loop that wakes itself.
    let wasm = TempDir::new("queue-memory");
    let spin = wasm.write("spin.wasm", counting(u64::MAX));
    let s = Server::with_config(
        "[server]\nmax_in_flight = 4\nmemory_budget = \"64MiB\"\n\
         admission_queue = 2\nadmission_timeout = \"300ms\"\n\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"spin.wasm\"\n\
         limits = { fuel = 1_000_000_000_000, timeout = \"3s\", memory = \"40MiB\" }\n\n\
         [[function]]\nroute = \"/big\"\nmodule = \"hello.wasm\"\n\
         limits = { memory = \"30MiB\" }\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("spin.wasm", spin), ("hello.wasm", function("hello.wasm"))],
    );
    assert_eq!(s.get("/big").text(), HELLO);
    let mut spinning = s.connect().read_timeout(PROCESS_TIMEOUT * 3);
    spinning.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\n");
    s.wait_for_log("spin.wasm (native ABI)");
    let r = s.get("/big");
    let body = r.assert_error(503, "overloaded");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory_budget")),
        "{body}"
    );
    assert_eq!(spinning.read_response(false).status, 504);
    assert_eq!(s.get("/big").text(), HELLO);
    s.assert_healthy();
}
