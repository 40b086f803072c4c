//! Shared helpers for the integration tests: start the real `wasmgate`
//! binary on a free loopback port, talk HTTP/1.1 to it over plain blocking
//! sockets, and run CLI commands. Every socket operation and every wait is
//! bounded, so a broken server fails a test instead of hanging it.

#![allow(dead_code)] // each test binary uses a different subset

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Bound on every socket read, write and connect.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on server start-up and on any CLI command.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);
/// What `GET /hello` answers.
pub const HELLO: &str = "Hello from wasmgate!\n";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wasmgate")
}

/// A command that runs the binary under test. `WASMGATE_TEST_RUNNER` (a
/// space-separated command prefix, e.g. `qemu-aarch64`) runs it under an
/// emulator when the tests are cross-compiled for another architecture.
pub fn wasmgate_command() -> Command {
    let runner = std::env::var("WASMGATE_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(bin());
            command
        }
        None => Command::new(bin()),
    }
}

/// How many times to start a process that hangs before it does anything.
/// Under an emulator (`WASMGATE_TEST_RUNNER` set) a start is retried once:
/// qemu-user can deadlock in the child of a fork of a multi-threaded process
/// (the test harness), before the binary under test runs at all. Natively a
/// hang is a failure at once.
fn start_attempts() -> usize {
    match std::env::var("WASMGATE_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => 2,
        _ => 1,
    }
}

/// How long a server may take to report its address: [`PROCESS_TIMEOUT`],
/// three times that under an emulator, where a debug build's start on a
/// busy machine is tens of times slower than natively.
fn start_timeout() -> Duration {
    match start_attempts() {
        1 => PROCESS_TIMEOUT,
        _ => PROCESS_TIMEOUT * 3,
    }
}

/// Notes a retried start on the test's stderr.
fn note_retry(what: &str) {
    eprintln!(
        "{what} hung under the emulator without any output (qemu-user can deadlock forking a multi-threaded process); starting it once more"
    );
}

/// A server that did not start: why, whether it hung without a word while
/// still running, and its directory for another try.
struct FailedStart {
    why: String,
    silent: bool,
    dir: TempDir,
}

/// A file under the repository's `functions/`, e.g. `hostile/loop.wasm`.
pub fn function(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("functions")
        .join(rel)
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `wasmgate-test-PID-TAG-N`, unique within and across runs.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("wasmgate-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` in the directory; returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create temp subdir");
        }
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    /// Copies `src` into the directory as `name`; returns its path.
    pub fn copy(&self, src: &Path, name: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create temp subdir");
        }
        std::fs::copy(src, &path).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running `wasmgate serve`, killed on drop.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin listener's address, if `[admin]` is configured.
    pub admin: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
    /// The thread that copies stderr into `log`; it ends at EOF, once the
    /// server (and everything holding its stderr) has exited.
    log_reader: std::thread::JoinHandle<()>,
    dir: TempDir,
}

impl Server {
    /// `wasmgate serve DIR` (zero-config mode).
    pub fn serve_dir(dir: &Path) -> Self {
        let tmp = TempDir::new("serve");
        Self::spawn(&[OsStr::new("serve"), dir.as_os_str()], tmp)
    }

    /// `wasmgate serve --config DIR/wasmgate.toml`, where DIR is a fresh
    /// temp dir holding `files` (name in DIR, source file) and the config.
    /// Relative paths in the config are relative to DIR.
    pub fn with_config(toml: &str, files: &[(&str, PathBuf)]) -> Self {
        let tmp = TempDir::new("config");
        for (name, src) in files {
            tmp.copy(src, name);
        }
        let config = tmp.write("wasmgate.toml", toml);
        Self::spawn(
            &[
                OsStr::new("serve"),
                OsStr::new("--config"),
                config.as_os_str(),
            ],
            tmp,
        )
    }

    /// [`Server::with_config`] with extra environment variables.
    #[allow(dead_code)]
    pub fn with_config_env(toml: &str, files: &[(&str, PathBuf)], env: &[(&str, &str)]) -> Self {
        let tmp = TempDir::new("config");
        for (name, src) in files {
            tmp.copy(src, name);
        }
        let config = tmp.write("wasmgate.toml", toml);
        let args = [
            OsStr::new("serve"),
            OsStr::new("--config"),
            config.as_os_str(),
        ];
        Self::spawn_env(&args, tmp, env)
    }

    fn spawn(args: &[&OsStr], dir: TempDir) -> Self {
        Self::spawn_env(args, dir, &[])
    }

    fn spawn_env(args: &[&OsStr], dir: TempDir, env: &[(&str, &str)]) -> Self {
        let mut dir = dir;
        let mut attempt = 1;
        loop {
            match Self::try_spawn(args, dir, env) {
                Ok(server) => return server,
                Err(failed) if failed.silent && attempt < start_attempts() => {
                    note_retry("wasmgate serve");
                    dir = failed.dir;
                    attempt += 1;
                }
                Err(failed) => panic!("{}", failed.why),
            }
        }
    }

    /// Starts the server and waits for its address.
    fn try_spawn(args: &[&OsStr], dir: TempDir, env: &[(&str, &str)]) -> Result<Self, FailedStart> {
        let mut child = wasmgate_command()
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmgate");

        // Drain both pipes for the server's whole life: a full pipe would
        // block its logging and so the whole (single-threaded) server.
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&log);
        let log_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The admin listener, if any, is announced first.
            let mut admin = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("wasmgate admin listening on http://") {
                    admin = addr.trim().parse::<SocketAddr>().ok();
                }
                if let Some(addr) = line.strip_prefix("wasmgate listening on http://") {
                    let _ = tx.send((addr.trim().to_owned(), admin));
                }
            }
        });

        match rx.recv_timeout(start_timeout()) {
            Ok((addr, admin)) => Ok(Self {
                child,
                admin,
                addr: addr
                    .parse()
                    .unwrap_or_else(|e| panic!("bad listen address `{addr}`: {e}")),
                log,
                log_reader,
                dir,
            }),
            Err(_) => {
                // Give the stderr reader a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                let log = log.lock().unwrap().clone();
                Err(FailedStart {
                    silent: status.is_none() && log.is_empty(),
                    why: format!(
                        "wasmgate did not report its address (exit status {status:?}); log:\n{log}"
                    ),
                    dir,
                })
            }
        }
    }

    /// The temp dir the server runs in (holds its config and copied files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `name` (`TERM`, `HUP`, ...) to the server.
    #[allow(dead_code)]
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed: {status}");
    }

    /// Waits (bounded by [`PROCESS_TIMEOUT`]) for the server to exit.
    #[allow(dead_code)]
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Its last lines may still be in the pipe: give the reader
                // (bounded) time to reach EOF, so `log()` has them all.
                let drained = Instant::now() + Duration::from_secs(5);
                while !self.log_reader.is_finished() && Instant::now() < drained {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The fuel of the first access line of a request for `/{name}` (any
    /// method) served by the function `name` (waits for it).
    pub fn logged_fuel(&self, name: &str) -> u64 {
        let needle = format!(" /{name} fn={name} ");
        let log = self.wait_for_log(&needle);
        let line = log.lines().find(|l| l.contains(&needle)).unwrap();
        let fuel = line.split(" fuel=").nth(1).unwrap();
        fuel.split(' ').next().unwrap().parse().unwrap()
    }

    /// Waits (bounded) until stderr contains `needle`; panics with the log
    /// otherwise. Log lines reach us through a pipe and a reader thread, so
    /// a line written before a response may still be in transit.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "server log never contained `{needle}`; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) until stderr has `count` lines containing `needle`
    /// (access lines of requests already answered may still be in
    /// transit); panics with the log otherwise.
    pub fn wait_for_log_lines(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let log = self.log();
            if log.lines().filter(|l| l.contains(needle)).count() >= count {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "server log never had {count} lines with `{needle}`; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a request whose head is in (the server agreed to take its
    /// body, so the connection is busy) and whose body is not: 4 bytes are
    /// due.
    pub fn request_in_flight(&self, target: &str) -> Conn {
        let mut busy = self.connect();
        busy.send(
            format!(
                "POST {target} HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(busy.read_one(false).status, 100);
        busy
    }

    /// A new connection to the server.
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on its own connection.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.connect().request(method, target, headers, body)
    }

    /// `GET target` on its own connection.
    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[], b"")
    }

    /// `GET target` with extra header fields, on its own connection.
    pub fn get_with(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", target, headers, b"")
    }

    /// Sends `bytes` on a new connection and reads one response.
    pub fn raw(&self, bytes: &[u8]) -> Response {
        let mut conn = self.connect();
        conn.send(bytes);
        conn.read_response(false)
    }

    /// Asserts the server still serves `GET /hello` normally.
    pub fn assert_healthy(&self) {
        let r = self.get("/hello");
        assert_eq!(
            r.status,
            200,
            "server unhealthy: {r:?}\nlog:\n{}",
            self.log()
        );
        assert_eq!(r.text(), HELLO);
        assert!(r.header("x-wasmgate-error").is_none());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test shows how the server ended and what it logged.
        if std::thread::panicking() {
            eprintln!(
                "server {}: {:?}; its log:\n{}",
                self.addr,
                self.child.try_wait(),
                self.log()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as read from the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// Asserts this is a wasmgate error response of `kind` with `status`:
    /// header, content type and JSON body agree. Returns the JSON body.
    pub fn assert_error(&self, status: u16, kind: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_eq!(
            self.header("x-wasmgate-error"),
            Some(kind),
            "x-wasmgate-error of {self:?}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let json = self.json();
        assert_eq!(json["error"], kind, "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message missing: {json}"
        );
        assert!(json["trace_id"].is_string(), "trace_id missing: {json}");
        assert!(json.get("function").is_some(), "function missing: {json}");
        json
    }

    /// The JSON body's `message`.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A blocking HTTP/1.1 client connection with bounded reads and writes.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Self::from_stream(stream)
    }

    /// A connection from source address `from` (e.g. `127.0.0.2`, to be
    /// another client of a per-address limit).
    pub fn open_from(from: std::net::IpAddr, addr: SocketAddr) -> Self {
        use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
        let family = match from {
            std::net::IpAddr::V4(_) => AddressFamily::INET,
            std::net::IpAddr::V6(_) => AddressFamily::INET6,
        };
        let fd = socket(family, SocketType::STREAM, None).expect("socket");
        bind(&fd, &SocketAddr::new(from, 0)).unwrap_or_else(|e| panic!("bind {from}: {e}"));
        connect(&fd, &addr).unwrap_or_else(|e| panic!("connect {from} to {addr}: {e}"));
        Self::from_stream(TcpStream::from(fd))
    }

    fn from_stream(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Waits up to `timeout` for each read instead of [`IO_TIMEOUT`], for a
    /// response that is slow by design (a guest spinning until its CPU-time
    /// backstop, which a busy machine or an emulator stretches).
    pub fn read_timeout(self, timeout: Duration) -> Self {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        self
    }

    /// Shuts down the writing side: the server reads an end of stream.
    pub fn half_close(&self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    }

    /// Closes the connection with a reset (SO_LINGER 0), not a FIN.
    pub fn reset(self) {
        rustix::net::sockopt::set_socket_linger(&self.stream, Some(Duration::ZERO))
            .expect("SO_LINGER");
    }

    /// Reads until the server closes the connection, and asserts it closed
    /// it cleanly: an end of stream (FIN), no reset and no bytes.
    pub fn assert_clean_close(&mut self) {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!(
                "expected a clean close, got bytes: {:?}",
                self.read_all_lossy(byte[0])
            ),
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }

    fn read_all_lossy(&mut self, first: u8) -> String {
        let mut rest = vec![first];
        let _ = self.stream.read_to_end(&mut rest);
        String::from_utf8_lossy(&rest).into_owned()
    }

    /// Whether response bytes are waiting to be read, without blocking or
    /// consuming them.
    pub fn has_data(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).unwrap();
        let ready = matches!(self.stream.peek(&mut [0u8; 1]), Ok(n) if n > 0);
        self.stream.set_nonblocking(false).unwrap();
        ready
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Sends `byte` as TCP urgent data (`MSG_OOB`): out of band, it is not
    /// part of the stream the server reads, but the server's read of what
    /// came before it stops at the urgent mark.
    pub fn send_urgent(&mut self, byte: u8) {
        rustix::net::send(&self.stream, &[byte], rustix::net::SendFlags::OOB)
            .unwrap_or_else(|e| panic!("send MSG_OOB: {e}"));
    }

    /// Shuts down the client's sending side (a half-close): the server
    /// reads end of stream after what was sent.
    pub fn close_write(&mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .unwrap_or_else(|e| panic!("shutdown: {e}"));
    }

    /// Sends a request (with `host`, and `content-length` when there is a
    /// body or the method is POST/PUT) and reads its final response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.send(&encode_request(method, target, headers, body));
        self.read_response(method == "HEAD")
    }

    /// Reads one response, skipping interim (1xx) ones. `head` says the
    /// request was HEAD, whose response has no body.
    pub fn read_response(&mut self, head: bool) -> Response {
        loop {
            let r = self.read_one(head);
            if r.status >= 200 {
                return r;
            }
        }
    }

    /// Reads exactly one response, interim ones included.
    pub fn read_one(&mut self, head: bool) -> Response {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed before a complete response head; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head_text = String::from_utf8(self.buf[..end - 4].to_vec()).expect("UTF-8 head");
        self.buf.drain(..end);
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad field {l:?}"));
                (n.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status < 200 || status == 204 || status == 304 {
            return response;
        }
        assert!(
            response.header("transfer-encoding").is_none(),
            "unexpected transfer-encoding in {response:?}"
        );
        match response.header("content-length") {
            Some(len) => {
                let len: usize = len.parse().expect("numeric content-length");
                while self.buf.len() < len {
                    if self.fill() == 0 {
                        panic!(
                            "connection closed after {} of {len} body bytes",
                            self.buf.len()
                        );
                    }
                }
                response.body = self.buf.drain(..len).collect();
            }
            None => {
                while self.fill() > 0 {}
                response.body = std::mem::take(&mut self.buf);
            }
        }
        response
    }

    /// Whether the server has closed the connection: reads until end of
    /// stream (or a reset) and returns any bytes that were still pending.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Reads more bytes into the buffer; 0 at end of stream or on reset.
    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return 0,
                Err(e) => panic!(
                    "read from server: {e} (after {:?})",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }
}

/// Encodes a request.
pub fn encode_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: wasmgate.test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The result of one CLI invocation.
#[derive(Debug)]
pub struct Cli {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `wasmgate ARGS` in `cwd`, killed after [`PROCESS_TIMEOUT`].
pub fn wasmgate_in<I, S>(cwd: &Path, args: I) -> Cli
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().collect();
    for attempt in 1.. {
        let mut child = wasmgate_command()
            .args(&args)
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmgate");
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        });
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for wasmgate") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
        match status {
            Some(status) => {
                return Cli {
                    code: status.code(),
                    stdout: String::from_utf8_lossy(&stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&stderr).into_owned(),
                };
            }
            None if stdout.is_empty() && stderr.is_empty() && attempt < start_attempts() => {
                note_retry("wasmgate");
            }
            None => panic!("wasmgate did not exit within {PROCESS_TIMEOUT:?}"),
        }
    }
    unreachable!("the loop returns or panics")
}

/// Runs `wasmgate ARGS` in the repository root.
pub fn wasmgate<I, S>(args: I) -> Cli
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    wasmgate_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Appends `v` as an unsigned LEB128 (Wasm binary counts and sizes, and
/// postcard's varints).
pub fn leb128(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A native-ABI module whose handler counts `iterations` down, then answers
/// 200 `done`. With `u64::MAX` iterations it spins until its budget ends.
#[allow(dead_code)]
pub fn counting(iterations: u64) -> Vec<u8> {
    // postcard Response: status 200 (varint c8 01), no header, body "done".
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 4096) "\c8\01\00\04done")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (local $i i64)
    (local.set $i (i64.const {iterations}))
    (loop $l
      (local.set $i (i64.sub (local.get $i) (i64.const 1)))
      (br_if $l (i64.ne (local.get $i) (i64.const 0))))
    (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.const 8))))"#,
        iterations = iterations as i64
    ))
    .unwrap()
}

/// A native-ABI module of `pages` memory pages whose handler answers the
/// postcard-encoded response `msg`, whatever the request.
pub fn native_answering(msg: &[u8], pages: u32) -> Vec<u8> {
    let data: String = msg.iter().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") {pages})
  (data (i32.const 4096) "{data}")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.const {len}))))"#,
        len = msg.len()
    ))
    .unwrap()
}
