//! The reverse proxy (`[[proxy]]`) against real upstreams started here:
//! small HTTP servers on std threads whose behaviour each test picks
//! (well-behaved, slow, closing mid-response, chunked, lying about
//! lengths, huge heads, down). After each, the server still answers.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, function};

/// A request as an upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

impl Seen {
    /// The values of field `name` (lower case), in order.
    fn header(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// What an upstream does with one request: writes to the connection and
/// says whether to keep it open for the next request.
type Behaviour = dyn Fn(&Seen, &mut TcpStream) -> bool + Send + Sync;

/// An upstream on 127.0.0.1, one thread per connection.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn start(behaviour: impl Fn(&Seen, &mut TcpStream) -> bool + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let (count, log) = (Arc::clone(&connections), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (behaviour, log) = (Arc::clone(&behaviour), Arc::clone(&log));
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut buf = Vec::new();
                    while let Some(req) = read_request(&mut stream, &mut buf) {
                        log.lock().unwrap().push(req.clone());
                        if !behaviour(&req, &mut stream) {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            seen,
        }
    }

    /// Answers every request with `response`, keeping the connection.
    fn answering(response: &'static [u8]) -> Self {
        Self::start(move |_, s| s.write_all(response).is_ok())
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads one request (head, and a `content-length` body).
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let mut seen = Seen {
        head,
        body: Vec::new(),
    };
    let len: usize = seen
        .header("content-length")
        .first()
        .map_or(0, |v| v.parse().unwrap());
    while buf.len() < len {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    seen.body = buf.drain(..len).collect();
    Some(seen)
}

/// A server with `/hello` and a `[[proxy]]` at `/api/*` to `upstreams`,
/// with `extra` keys in the proxy table.
fn gateway(upstreams: &[String], extra: &str) -> Server {
    let list: Vec<String> = upstreams.iter().map(|u| format!("{u:?}")).collect();
    let toml = format!(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\n[[proxy]]\nname = \"api\"\nroute = \"/api/*\"\nupstream = [{}]\n{extra}\n",
        list.join(", ")
    );
    Server::with_config(&toml, &[("hello.wasm", function("hello.wasm"))])
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// Sends `request` on a raw connection and reads until the server closes
/// it or `limit` passes; returns the bytes and whether it closed.
fn raw_exchange(server: &Server, request: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

const GET_CLOSE: &[u8] = b"GET /api/x HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n";

#[test]
fn get_and_post_pass_through_with_forwarded_fields_and_no_hop_by_hop() {
    let up = Upstream::answering(
        b"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nconnection: x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nx-trace-id: forged\r\ncontent-length: 5\r\n\r\nhello",
    );
    let server = gateway(&[up.url()], "");
    let r = server.get_with(
        "/api/items?q=1",
        &[
            ("connection", "x-secret"),
            ("x-secret", "s"),
            ("te", "trailers"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-custom", "kept"),
        ],
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.text(), "hello");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(
        r.header("x-hop").is_none() && r.header("keep-alive").is_none(),
        "{r:?}"
    );
    let trace = r.header("x-trace-id").unwrap().to_owned();
    assert_ne!(trace, "forged");
    let post = server.request("POST", "/api/post", &[], b"{\"a\":1}");
    assert_eq!(post.status, 201);

    let seen = up.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let get = &seen[0];
    assert!(
        get.head.starts_with("GET /api/items?q=1 HTTP/1.1\r\n"),
        "{}",
        get.head
    );
    assert_eq!(get.header("host"), [up.addr.to_string()]);
    assert_eq!(get.header("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
    assert_eq!(get.header("x-forwarded-proto"), ["http"]);
    assert_eq!(get.header("x-forwarded-host"), ["wasmgate.test"]);
    assert_eq!(get.header("x-custom"), ["kept"]);
    for gone in ["connection", "x-secret", "te"] {
        assert!(get.header(gone).is_empty(), "{gone}: {}", get.head);
    }
    let traceparent = get.header("traceparent");
    assert_eq!(traceparent.len(), 1);
    assert_eq!(
        traceparent[0].split('-').nth(1),
        Some(trace.as_str()),
        "{traceparent:?}"
    );
    assert_eq!(seen[1].body, b"{\"a\":1}");
    assert_eq!(seen[1].header("content-length"), ["7"]);
    // A client's traceparent goes on as it is, its trace id in the log.
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = server.get_with("/api/t", &[("traceparent", given)]);
    assert_eq!(
        r.header("x-trace-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(up.seen()[2].header("traceparent"), [given]);
    server.wait_for_log("GET /api/t proxy=api upstream=http://");
    server.assert_healthy();
}

#[test]
fn upstream_connections_are_kept_alive_and_reused() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = gateway(&[up.url()], "");
    for i in 0..4 {
        let r = server.get(&format!("/api/{i}"));
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    }
    assert_eq!(up.seen().len(), 4);
    assert_eq!(up.connections(), 1);
    server.assert_healthy();
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_replaced() {
    // Answers, then closes without saying so: the pooled connection is
    // dead when the next request comes.
    let up = Upstream::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        false
    });
    let server = gateway(&[up.url()], "");
    for _ in 0..3 {
        let r = server.get("/api/x");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "{}",
            server.log()
        );
    }
    assert_eq!(up.connections(), 3);
    server.assert_healthy();
}

#[test]
fn requests_go_round_robin_across_upstreams() {
    let a = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na");
    let b = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb");
    let server = gateway(&[a.url(), b.url()], "");
    let answers: String = (0..6).map(|_| server.get("/api/x").text()).collect();
    assert!(answers == "ababab" || answers == "bababa", "{answers}");
    server.assert_healthy();
}

#[test]
fn a_down_upstream_is_retried_on_another_and_skipped_after_fail_threshold_failures() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = gateway(
        &[closed_port(), up.url()],
        "fail_threshold = 2\nfail_skip = \"1h\"",
    );
    let retries = |server: &Server| server.log().matches("trying another upstream").count();
    // A connection refused sent nothing: the request goes to the next
    // upstream, whatever its method. Until the down one has failed twice
    // in a row, it gets its turns (and each costs a retry).
    for method in ["GET", "POST", "GET", "POST"] {
        let r = server.request(method, "/api/x", &[], b"x");
        assert_eq!(r.status, 200, "{method}: {r:?}");
        assert_eq!(r.text(), "ok");
    }
    server.wait_for_log("failed 2 times in a row; skipped for 3600000 ms");
    assert_eq!(retries(&server), 2, "{}", server.log());
    // Then it is skipped: no more attempts on it.
    for _ in 0..6 {
        let r = server.get("/api/x");
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(retries(&server), 2, "{}", server.log());
    server.assert_healthy();
}

#[test]
fn all_upstreams_down_is_502_upstream_unavailable() {
    let server = gateway(&[closed_port(), closed_port()], "fail_threshold = 1");
    for _ in 0..4 {
        // Skipped or not, each is tried once: still refused.
        let r = server.get("/api/x");
        let body = r.assert_error(502, "upstream-unavailable");
        assert_eq!(body["function"], "api");
    }
    server.wait_for_log("proxy=api upstream=http://127.0.0.1:");
    server.assert_healthy();
}

#[test]
fn a_slow_response_head_is_504_upstream_timeout() {
    let up = Upstream::start(|_, _| {
        std::thread::sleep(Duration::from_secs(10));
        false
    });
    let server = gateway(&[up.url()], "response_timeout = \"300ms\"");
    let r = server.get("/api/slow");
    r.assert_error(504, "upstream-timeout");
    assert!(r.message().contains("response_timeout"), "{r:?}");
    server.assert_healthy();
}

#[test]
fn an_upstream_closing_mid_body_aborts_the_response() {
    for response in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nonly part\r\n",
    ] {
        let up = Upstream::start(move |_, s| {
            let _ = s.write_all(response);
            false
        });
        let server = gateway(&[up.url()], "");
        let (bytes, closed) = raw_exchange(&server, GET_CLOSE);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(closed, "{text}");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        // Never complete: short of its length, or no last chunk.
        if text.contains("content-length: 100") {
            let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
            assert!(body.len() < 100, "{text}");
        } else {
            assert!(text.contains("transfer-encoding: chunked"), "{text}");
            assert!(!text.ends_with("0\r\n\r\n"), "{text}");
        }
        server.assert_healthy();
    }
}

/// Decodes a chunked body; `None` if it does not end properly.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).ok()?, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return (body == b"\r\n").then_some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[test]
fn a_chunked_upstream_response_is_streamed_chunked() {
    let up = Upstream::start(|_, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\n\r\n5\r\nhello\r\n",
        );
        let _ = s.flush();
        std::thread::sleep(Duration::from_millis(50));
        let _ = s.write_all(b"6;ext=1\r\n world\r\n0\r\nx-t: 1\r\n\r\n");
        true
    });
    let server = gateway(&[up.url()], "");
    let (bytes, closed) = raw_exchange(&server, GET_CLOSE);
    assert!(closed);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("trailer"), "{head}");
    assert_eq!(
        dechunk(body.as_bytes()).as_deref(),
        Some(&b"hello world"[..]),
        "{text}"
    );
    // HTTP/1.0 clients get the body until the close.
    let (bytes, _) = raw_exchange(&server, b"GET /api/x HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.ends_with("\r\n\r\nhello world"), "{text}");
    assert!(!text.contains("transfer-encoding"), "{text}");
    server.assert_healthy();
}

#[test]
fn malformed_upstream_responses_are_502_upstream_bad_response() {
    let huge = format!(
        "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 0\r\n\r\n",
        "a".repeat(20_000)
    );
    let huge: &'static [u8] = Box::leak(huge.into_bytes().into_boxed_slice());
    for response in [
        huge,
        b"HTTP/1.1 200 OK\r\ncontent-length: 60000000000\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\ncontent-length: 0\n\n",
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        // Three digits or nothing: passed on, `042` became `HTTP/1.1 42`.
        b"HTTP/1.1 042 X\r\ncontent-length: 2\r\n\r\nhi",
        // Codings other than chunked are not decoded, and the field is
        // hop-by-hop: the client would take the coded bytes as the body.
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nhi",
    ] {
        let up = Upstream::start(move |_, s| {
            let _ = s.write_all(response);
            true
        });
        let server = gateway(&[up.url()], "");
        let r = server.get("/api/x");
        let shown = String::from_utf8_lossy(&response[..response.len().min(80)]).into_owned();
        assert_eq!(r.status, 502, "{shown}: {r:?}");
        assert_eq!(
            r.header("x-wasmgate-error"),
            Some("upstream-bad-response"),
            "{shown}: {r:?}"
        );
        assert!(
            r.text().contains(r#""error":"upstream-bad-response""#),
            "{shown}: {r:?}"
        );
        server.assert_healthy();
    }
}

#[test]
fn interim_100_continue_is_skipped() {
    let up = Upstream::answering(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    );
    let server = gateway(&[up.url()], "");
    let r = server.request("POST", "/api/x", &[], b"data");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    server.assert_healthy();
}

#[test]
fn a_large_response_to_a_slow_reader_is_streamed_in_bounded_memory() {
    const SIZE: usize = 50 << 20;
    let up = Upstream::start(|_, s| {
        let _ =
            s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n").as_bytes());
        let block = vec![b'x'; 64 << 10];
        let mut left = SIZE;
        while left > 0 {
            let n = left.min(block.len());
            if s.write_all(&block[..n]).is_err() {
                return false;
            }
            left -= n;
        }
        true
    });
    let server = gateway(&[up.url()], "");
    server.assert_healthy();
    let before = resident(&server);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    slow.write_all(b"GET /api/big HTTP/1.1\r\nhost: gw\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 640];
    let n = slow.read(&mut head).unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    // While the slow client reads nothing (the upstream has long filled
    // the socket buffers), the server serves others, and its memory has
    // not grown by anything near the body's size.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        server.assert_healthy();
    }
    if let (Some(before), Some(during)) = (before, resident(&server)) {
        assert!(
            during < before + (16 << 20),
            "resident memory grew from {before} to {during} bytes"
        );
    }
    // Then it reads it all.
    let mut total = n;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(120);
    while total < SIZE + 30 && Instant::now() < deadline {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => total += k,
            Err(e) => panic!("{e}"),
        }
        if total >= SIZE + 38 {
            break;
        }
    }
    assert!(total >= SIZE, "read {total}");
    server.assert_healthy();
}

/// The server's resident memory, where /proc tells it.
fn resident(server: &Server) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

#[test]
fn a_stalled_upstream_body_is_cut_after_upstream_body_timeout() {
    let up = Upstream::start(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
        std::thread::sleep(Duration::from_secs(10));
        false
    });
    let server = gateway(&[up.url()], "upstream_body_timeout = \"300ms\"");
    let (bytes, closed) = raw_exchange(&server, GET_CLOSE);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(closed, "{text}");
    assert!(text.ends_with("\r\n\r\nabc"), "{text}");
    server.wait_for_log("upstream_body_timeout (300 ms)");
    server.assert_healthy();
}

#[test]
fn head_and_no_content_responses_have_no_body_and_keep_the_connection() {
    let up = Upstream::start(|req, s| {
        let response: &[u8] = match req.head.starts_with("HEAD") {
            true => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            false => b"HTTP/1.1 204 No Content\r\n\r\n",
        };
        s.write_all(response).is_ok()
    });
    let server = gateway(&[up.url()], "");
    let mut conn = server.connect();
    let r = conn.request("HEAD", "/api/x", &[], b"");
    assert_eq!((r.status, r.header("content-length")), (200, Some("5")));
    assert!(r.body.is_empty());
    let r = conn.request("DELETE", "/api/x", &[], b"");
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.header("content-length").is_none());
    let r = conn.request("GET", "/hello", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(up.connections(), 1);
    server.assert_healthy();
}

#[test]
fn a_head_through_a_middleware_that_buffers_the_response_claims_no_false_length() {
    // hwg-example enables buffer_response. The upstream declares 5 bytes
    // for a GET; a middleware could change them, and the empty buffer's 0
    // would be false (RFC 9110 §9.3.2): the head says neither.
    let up = Upstream::start(|req, s| {
        let response: &[u8] = match req.head.starts_with("HEAD") {
            true => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            false => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        };
        s.write_all(response).is_ok()
    });
    let server = gateway_with_middleware(
        &up,
        "\"hwg\"",
        "[[middleware]]\nname = \"hwg\"\nmodule = \"hwg.wasm\"\n",
    );
    let mut conn = server.connect();
    let r = conn.request("HEAD", "/api/x", &[("x-hwg-token", "t")], b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-length").is_none(), "{r:?}");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
    // handle_response ran on it: the guest's field is there.
    assert_eq!(r.header("x-hwg-status"), Some("200"), "{r:?}");
    assert!(r.body.is_empty());
    // The connection goes on; a GET gets the length.
    let r = conn.request("GET", "/api/x", &[("x-hwg-token", "t")], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{r:?}");
    assert_eq!(r.header("content-length"), Some("5"), "{r:?}");
    server.assert_healthy();
}

/// A gateway with `/admin/*` guarded by hwg-example (403 without its
/// token) and `/*` not, both to `up`, `/hello`, and `server_keys` as its
/// `[server]` keys.
fn guarded_admin(up: &Upstream, server_keys: &str) -> Server {
    let toml = format!(
        "[server]\n{server_keys}\n\
         [[proxy]]\nname = \"admin\"\nroute = \"/admin/*\"\nupstream = {url:?}\nmiddleware = [\"hwg\"]\n\n\
         [[proxy]]\nname = \"rest\"\nroute = \"/*\"\nupstream = {url:?}\n\n\
         [[middleware]]\nname = \"hwg\"\nmodule = \"hwg.wasm\"\n\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        url = up.url()
    );
    Server::with_config(
        &toml,
        &[
            ("hwg.wasm", function("hwg-example.wasm")),
            ("hello.wasm", function("hello.wasm")),
        ],
    )
}

#[test]
fn a_path_cannot_dodge_a_routes_middleware_by_its_spelling() {
    // `/admin/*` is guarded (hwg-example refuses a request without its
    // token: 403), `/*` is not; an upstream that decodes and normalises
    // (as static servers and frameworks do) would serve `/admin/secret`
    // for each spelling below.
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret");
    let server = guarded_admin(&up, "");
    // Encoded unreserved characters route as their plain form: guarded.
    for path in [
        "/admin/secret",
        "/%61dmin/secret",
        "/%61%64%6D%69%6E/s%65cret",
    ] {
        let r = server.get(path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (403, "missing x-hwg-token\n"),
            "{path}: {r:?}"
        );
    }
    // An encoded slash or backslash, a backslash, an empty segment: 400
    // before any routing.
    for path in [
        "/x/..%2fadmin/secret",
        "/x/..%5cadmin/secret",
        "//admin/secret",
        "/admin%2fsecret",
        "/admin;x/secret",
        "/x/..;/admin/secret",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(
            r.header("x-wasmgate-error"),
            Some("bad-request"),
            "{path}: {r:?}"
        );
        assert!(r.text().contains("path"), "{path}: {r:?}");
    }
    assert!(up.seen().is_empty(), "{:?}", up.seen());
    // The unguarded route still serves.
    let r = server.get("/public/file");
    assert_eq!((r.status, r.text().as_str()), (200, "secret"), "{r:?}");
    server.assert_healthy();
}

#[test]
fn allow_encoded_slash_forwards_a_percent_encoded_slash_as_sent_and_routes_it_in_its_segment() {
    // GitLab-style ids (`group%2Fproject`) reach the upstream byte for
    // byte; the encoded slash is part of its segment for routing, so
    // `/admin%2Fsecret` is not `/admin/*` (guarded) but `/*`: only an
    // upstream that does not decode it before routing may sit behind this.
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = guarded_admin(&up, "allow_encoded_slash = true\n");
    for path in [
        "/api/v4/projects/group%2Fproject/issues",
        "/api/v4/projects/a%2fb%2Fc?ref=x%2Fy",
    ] {
        let r = server.get(path);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{path}: {r:?}");
        let seen = up.seen();
        let head = &seen.last().expect("the upstream saw it").head;
        assert!(
            head.starts_with(&format!("GET {path} HTTP/1.1\r\n")),
            "{path}: {head}"
        );
    }
    // The guarded route is still guarded for its own spelling.
    let r = server.get("/admin/secret");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "missing x-hwg-token\n")
    );
    // An encoded slash that would make a dot or empty segment once
    // decoded, and an encoded backslash, are still 400 before routing.
    let before = up.seen().len();
    for path in [
        "/x/..%2Fadmin/secret",
        "/x/.%2fadmin",
        "/x/a%2F%2Fb",
        "/x/a%2F",
        "/x/..%5cadmin/secret",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(r.header("x-wasmgate-error"), Some("bad-request"), "{path}");
        assert!(r.text().contains("encoded"), "{path}: {r:?}");
    }
    assert_eq!(up.seen().len(), before);
    server.assert_healthy();
}

#[test]
fn a_chunked_request_body_is_sent_with_content_length() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    let server = gateway(&[up.url()], "");
    let r = server.raw(
        b"POST /api/x HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = &up.seen()[0];
    assert_eq!(seen.body, b"abcde");
    assert_eq!(seen.header("content-length"), ["5"]);
    assert!(seen.header("transfer-encoding").is_empty(), "{}", seen.head);
    server.assert_healthy();
}

#[test]
fn a_large_body_reaches_a_slow_reading_upstream_whole_and_in_order() {
    // 32 MiB to an upstream that starts reading only after a while: the
    // sockets fill, and the head and body go out in several partial writes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let seen = read_request(&mut stream, &mut Vec::new());
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        seen
    });
    let toml = format!(
        "[server]\nmax_body = \"32MiB\"\n\n[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\n\
         [[proxy]]\nroute = \"/api/*\"\nupstream = {url:?}\n"
    );
    let server = Server::with_config(&toml, &[("hello.wasm", function("hello.wasm"))]);
    let body: Vec<u8> = (0..32u32 << 20)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[(i % 37 % 36) as usize])
        .collect();
    let r = server.request("POST", "/api/big", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"ok");
    let seen = upstream
        .join()
        .unwrap()
        .expect("the upstream read a request");
    assert!(
        seen.head.starts_with("POST /api/big HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert_eq!(seen.header("content-length"), ["33554432"]);
    assert!(seen.body == body, "the body arrived changed");
    server.assert_healthy();
}

#[test]
fn an_upstream_named_by_host_name_is_resolved_and_reached() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let url = format!("http://localhost:{}", up.addr.port());
    let server = gateway(&[url], "");
    for _ in 0..2 {
        let r = server.get("/api/named");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("host"),
        [format!("localhost:{}", up.addr.port())]
    );
    server.assert_healthy();
}

#[test]
fn a_client_leaving_mid_stream_closes_the_upstream_connection() {
    let finished = Arc::new(AtomicUsize::new(0));
    let seen_end = Arc::clone(&finished);
    let up = Upstream::start(move |_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        let block = format!("{:x}\r\n{}\r\n", 60_000, "y".repeat(60_000));
        // Writes until the proxy closes the connection.
        for _ in 0..10_000 {
            if s.write_all(block.as_bytes()).is_err() {
                seen_end.fetch_add(1, Ordering::SeqCst);
                return false;
            }
        }
        false
    });
    let server = gateway(&[up.url()], "");
    {
        let mut c = TcpStream::connect(server.addr).unwrap();
        c.write_all(b"GET /api/stream HTTP/1.1\r\nhost: gw\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        let _ = c.read(&mut buf).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while finished.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.assert_healthy();
}

#[test]
fn a_bad_chunk_or_a_body_over_max_upstream_body_aborts_the_response() {
    for (response, keys) in [
        (
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nxx\r\n0\r\n\r\n"[..],
            "",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndefXX\r\n0\r\n\r\n",
            "",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
            "max_upstream_body = 10",
        ),
    ] {
        let up = Upstream::start(move |_, s| {
            let _ = s.write_all(response);
            true
        });
        let server = gateway(&[up.url()], keys);
        let (bytes, closed) = raw_exchange(&server, GET_CLOSE);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(closed, "{text}");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        let body = &bytes[text.find("\r\n\r\n").unwrap() + 4..];
        assert_eq!(dechunk(body), None, "{text}");
        server.assert_healthy();
    }
}

#[test]
fn an_upstream_not_accepting_connections_is_504_after_connect_timeout() {
    use rustix::net::{AddressFamily, SocketType, bind, listen, socket};
    // A listener that never accepts, with a backlog of 0: once its queue
    // holds a connection, the kernel drops further SYNs and a connect hangs.
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &"127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
    listen(&fd, 0).unwrap();
    let listener = TcpListener::from(fd);
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        // Fill the queue; these connects may themselves hang: bounded.
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            queued.push(s);
        }
    }
    let server = gateway(&[format!("http://{addr}")], "connect_timeout = \"300ms\"");
    let r = server.get("/api/x");
    r.assert_error(504, "upstream-timeout");
    assert!(r.message().contains("connect_timeout (300 ms)"), "{r:?}");
    drop(queued);
    server.assert_healthy();
}

#[test]
fn a_config_with_only_proxies_is_served() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = Server::with_config(
        &format!("[[proxy]]\nroute = \"/*\"\nupstream = \"{}\"\n", up.url()),
        &[],
    );
    let r = server.get("/anything");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    server.wait_for_log("proxy /*: /* -> http://127.0.0.1:");
}

/// A gateway whose `[[proxy]]` at `/api/*` runs `middleware` (names of the
/// `[[middleware]]` tables in `tables`) in front of `upstream`.
fn gateway_with_middleware(upstream: &Upstream, middleware: &str, tables: &str) -> Server {
    let toml = format!(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\n\
         [[proxy]]\nname = \"api\"\nroute = \"/api/*\"\nupstream = {:?}\nmiddleware = [{middleware}]\n\n{tables}",
        upstream.url()
    );
    Server::with_config(
        &toml,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("hwg.wasm", function("hwg-example.wasm")),
            ("hmac-verify.wasm", function("hmac-verify.wasm")),
            ("xml-to-json.wasm", function("xml-to-json.wasm")),
            ("rate-limit.wasm", function("rate-limit.wasm")),
        ],
    )
}

#[test]
fn the_http_wasm_guest_crate_runs_in_front_of_a_real_upstream() {
    let up = Upstream::answering(
        b"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nmade!",
    );
    let server = gateway_with_middleware(
        &up,
        "\"hwg\"",
        "[[middleware]]\nname = \"hwg\"\nmodule = \"hwg.wasm\"\n",
    );
    // Headers added by the guest reach the upstream; in handle_response it
    // sees the upstream's status (it enabled buffer_response).
    let r = server.get_with("/api/orders", &[("x-hwg-token", "t0k")]);
    assert_eq!((r.status, r.text().as_str()), (201, "made!"), "{r:?}");
    assert_eq!(r.header("x-hwg-status"), Some("201"), "{r:?}");
    assert_eq!(r.header("x-hwg-ctx"), Some("42"), "{r:?}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("x-hwg-seen"), ["t0k"]);
    assert_eq!(seen[0].header("x-hwg-method"), ["GET"]);

    // Refused before the upstream: it sees no second request.
    let r = server.get("/api/orders");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "missing x-hwg-token\n")
    );
    assert!(r.header("x-wasmgate-error").is_none(), "{r:?}");
    assert_eq!(up.seen().len(), 1);
    server.assert_healthy();
}

#[test]
fn example_middleware_guard_and_transform_a_real_upstream() {
    let up = Upstream::answering(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: 39\r\n\r\n<order id=\"A1\"><total>9</total></order>",
    );
    let server = gateway_with_middleware(
        &up,
        "\"verify\", \"xml\"",
        "[[middleware]]\nname = \"verify\"\nmodule = \"hmac-verify.wasm\"\nconfig = { secret = \"webhook-secret\" }\n\n\
         [[middleware]]\nname = \"xml\"\nmodule = \"xml-to-json.wasm\"\n",
    );
    let body = br#"{"event":"push","ref":"main"}"#;
    let signature = "sha256=519dba301674e3c276c84529c876e8555a9ca5c9d4eb8f21e3690b1730a9a1e9";
    let r = server.request("POST", "/api/hook", &[("x-signature", signature)], body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"order":{"@id":"A1","total":"9"}}"#);
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body, body);

    // A wrong signature never reaches the upstream.
    let r = server.request("POST", "/api/hook", &[("x-signature", signature)], b"{}");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.text().contains("signature mismatch"), "{r:?}");
    assert_eq!(up.seen().len(), 1);
    server.assert_healthy();
}

#[test]
fn middleware_see_an_upstream_failure_and_it_stays_the_answer() {
    let toml = format!(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\n\
         [[proxy]]\nname = \"api\"\nroute = \"/api/*\"\nupstream = {:?}\nmiddleware = [\"hwg\"]\n\n\
         [[middleware]]\nname = \"hwg\"\nmodule = \"hwg.wasm\"\n",
        closed_port()
    );
    let server = Server::with_config(
        &toml,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("hwg.wasm", function("hwg-example.wasm")),
        ],
    );
    let r = server.get_with("/api/x", &[("x-hwg-token", "t")]);
    r.assert_error(502, "upstream-unavailable");
    server.assert_healthy();
}

/// A gateway whose `/api/*` proxy to `upstream` runs the rate-limit
/// example with `config`; its state in the server's directory.
fn rate_limited(upstream: &Upstream, config: &str) -> Server {
    gateway_with_middleware(
        upstream,
        "\"limit\"",
        &format!(
            "[[middleware]]\nname = \"limit\"\nmodule = \"rate-limit.wasm\"\nconfig = {config}\n"
        ),
    )
}

/// Asserts the rate-limit example's 429: `Retry-After` within two windows
/// (`window` seconds each: the sliding window's previous part fades over
/// the next one), the JSON body saying the same, from the guest (no
/// wasmgate error kind).
fn assert_rate_limited(r: &common::Response, window: u64) {
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.header("x-wasmgate-error").is_none(), "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no retry-after: {r:?}"));
    assert!((1..=2 * window).contains(&retry), "{retry}");
    let body = r.json();
    assert_eq!(body["error"], "rate-limited", "{body}");
    assert_eq!(body["retry_after"], retry, "{body}");
}

#[test]
fn rate_limit_counts_each_client_address_and_answers_429_over_the_limit() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = rate_limited(&up, "{ limit = 3, window = \"1h\" }");
    let from = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        common::Conn::open_from(ip, server.addr).request("GET", "/api/x", &[], b"")
    };
    for i in 1..=3 {
        let r = from("127.0.0.1");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{i}: {r:?}");
    }
    assert_eq!(up.seen().len(), 3);
    // The fourth and fifth in the window: refused before the upstream.
    assert_rate_limited(&from("127.0.0.1"), 3600);
    assert_rate_limited(&from("127.0.0.1"), 3600);
    assert_eq!(up.seen().len(), 3);
    // Another address has a count of its own.
    let r = from("127.0.0.2");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    assert_eq!(up.seen().len(), 4);
    server.assert_healthy();
}

#[test]
fn rate_limit_counts_each_api_key_apart_and_never_stores_it_in_clear() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = rate_limited(
        &up,
        "{ limit = 2, window = \"1h\", key = \"header:x-api-key\" }",
    );
    let key = |k: &str| server.get_with("/api/x", &[("x-api-key", k)]);
    for _ in 0..2 {
        let r = key("alice-secret");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    }
    assert_rate_limited(&key("alice-secret"), 3600);
    assert_eq!(up.seen().len(), 2);
    // bob, and a request without the header (counted by its address),
    // have counts of their own.
    let r = key("bob");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    let r = server.get("/api/x");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    assert_eq!(up.seen().len(), 4);
    server.assert_healthy();
    // Written before each response (`sync = "always"`), digests only.
    let log = std::fs::read(server.dir().join("wasmgate-state/kv.log")).expect("the store's log");
    assert!(log.windows(4).any(|w| w == b"n/ke"), "no key counted");
    assert!(
        !log.windows(5).any(|w| w == b"alice"),
        "an API key in clear"
    );
}

#[test]
fn rate_limit_windows_end() {
    let up = Upstream::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let server = rate_limited(&up, "{ limit = 1, window = 1 }");
    let r = server.get("/api/x");
    assert_eq!(r.status, 200, "{r:?}");
    // Refused until the sliding one-second window has passed the first
    // request (however slow the machine), then served again.
    let deadline = Instant::now() + common::PROCESS_TIMEOUT;
    loop {
        let r = server.get("/api/x");
        if r.status == 200 {
            break;
        }
        assert_rate_limited(&r, 1);
        assert!(Instant::now() < deadline, "the window never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(up.seen().len(), 2);
    server.assert_healthy();
}
