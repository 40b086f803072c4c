//! Connections as a resource: a few clients that hold connections idle,
//! trickle their heads, half-close or hold bodies must not deny service to
//! everyone else; responses the host makes itself carry a trace id and an
//! access line like every other response.

mod common;

use std::net::IpAddr;

use common::{Conn, HELLO, Server, function};

/// A server with `hello.wasm`, `echo.wasm` and `loop.wasm` in its functions
/// dir, configured by `toml` (which should set `functions_dir = "."`).
fn server(toml: &str) -> Server {
    Server::with_config(
        toml,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("echo.wasm", function("echo.wasm")),
            ("loop.wasm", function("hostile/loop.wasm")),
        ],
    )
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Asserts that `r` is hello's normal answer.
fn assert_hello(r: &common::Response) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), HELLO);
}

/// `GET /hello` on `conn`, asserted to be answered normally.
fn hello(conn: &mut Conn) {
    assert_hello(&conn.request("GET", "/hello", &[], b""));
}

/// Sends `GET /hello` and half-closes: the answer comes, then a clean
/// close.
fn hello_half_closed(conn: &mut Conn) {
    conn.send(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n");
    conn.half_close();
    assert_hello(&conn.read_response(false));
    conn.assert_clean_close();
}

/// Sends a head announcing a body of `len` bytes with
/// `Expect: 100-continue` and waits for `100 Continue`: then the server has
/// read the head (the connection is busy with a request, its body's memory
/// reserved).
fn start_upload(conn: &mut Conn, target: &str, len: usize) {
    conn.send(
        format!(
            "POST {target} HTTP/1.1\r\nhost: t\r\ncontent-length: {len}\r\nexpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = conn.read_one(false);
    assert_eq!(r.status, 100, "{r:?}");
}

const TABLE_OF_8: &str =
    "[server]\nfunctions_dir = \".\"\nmax_connections = 8\nmax_connections_per_ip = 8\n";

#[test]
fn idle_keep_alive_connections_make_room_for_a_new_client() {
    let s = server(TABLE_OF_8);
    // The table is full of idle keep-alive connections from 127.0.0.1.
    let mut idle: Vec<Conn> = (0..8).map(|_| s.connect()).collect();
    for conn in &mut idle {
        hello(conn);
    }
    // Three new clients: each is served, and each closes the connection
    // that has been idle longest.
    let mut others = Vec::new();
    for _ in 0..3 {
        let mut conn = Conn::open_from(ip("127.0.0.2"), s.addr);
        hello(&mut conn);
        others.push(conn);
    }
    for conn in &mut idle[..3] {
        conn.assert_clean_close();
    }
    // The others were not touched.
    for conn in &mut idle[3..] {
        hello(conn);
    }
    s.assert_healthy();
}

#[test]
fn trickled_heads_make_room_for_a_new_client() {
    // A long header_timeout: only eviction can free the table.
    let s = server(&format!("{TABLE_OF_8}header_timeout = \"60s\"\n"));
    let mut trickling: Vec<Conn> = (0..8)
        .map(|_| {
            let mut conn = s.connect();
            conn.send(b"GET /hello HTTP/1.1\r\nho");
            conn
        })
        .collect();
    hello(&mut Conn::open_from(ip("127.0.0.2"), s.addr));
    // The oldest trickler made room; the newest still completes its head.
    trickling[0].assert_clean_close();
    let last = trickling.last_mut().unwrap();
    last.send(b"st: t\r\n\r\n");
    let r = last.read_response(false);
    assert_eq!(r.text(), HELLO, "{r:?}");
    s.assert_healthy();
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_header_timeout_not_idle_timeout() {
    let s = server(
        "[server]\nfunctions_dir = \".\"\nidle_timeout = \"60m\"\nheader_timeout = \"2s\"\n",
    );
    let mut silent = s.connect();
    // No 408: it never started a request. Before the first head, the
    // connection does not get idle_timeout (the read would time out).
    silent.assert_clean_close();
    // A keep-alive connection still gets idle_timeout between requests.
    let mut kept = s.connect();
    hello(&mut kept);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    hello(&mut kept);
    s.assert_healthy();
}

#[test]
fn one_address_cannot_take_more_than_max_connections_per_ip() {
    let s = server("[server]\nfunctions_dir = \".\"\nmax_connections_per_ip = 2\n");
    // Two busy connections from 127.0.0.1 (bodies announced, not sent).
    let mut a = s.connect();
    let mut b = s.connect();
    start_upload(&mut a, "/echo", 2);
    start_upload(&mut b, "/echo", 2);
    // A third from the same address is refused...
    let r = s.get("/hello");
    let json = r.assert_error(503, "too-many-connections");
    assert!(json["function"].is_null(), "{json}");
    assert!(
        r.message().contains("max_connections_per_ip = 2"),
        "{}",
        r.message()
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-trace-id"), json["trace_id"].as_str());
    s.wait_for_log("- - fn=- status=503 error=too-many-connections fuel=0 us=");
    // ...another address is not.
    hello(&mut Conn::open_from(ip("127.0.0.2"), s.addr));
    // Once idle, a connection of the address makes room for its next one.
    for conn in [&mut a, &mut b] {
        conn.send(b"hi");
        assert_eq!(conn.read_response(false).status, 200);
    }
    s.assert_healthy();
    a.assert_clean_close();
}

#[test]
fn a_full_table_of_busy_connections_refuses_with_503() {
    let s = server("[server]\nfunctions_dir = \".\"\nmax_connections = 2\n");
    let mut a = s.connect();
    let mut b = s.connect();
    start_upload(&mut a, "/echo", 2);
    start_upload(&mut b, "/echo", 2);
    let r = Conn::open_from(ip("127.0.0.2"), s.addr).request("GET", "/hello", &[], b"");
    r.assert_error(503, "too-many-connections");
    assert!(
        r.message().contains("max_connections = 2"),
        "{}",
        r.message()
    );
    a.send(b"hi");
    assert_eq!(a.read_response(false).status, 200);
    // `a` is idle now: a new client takes its place.
    s.assert_healthy();
    a.assert_clean_close();
}

#[test]
fn a_half_closed_client_gets_its_answer() {
    // hello needs ~11,000 fuel: many slices of 1,000.
    let s = server("[server]\nfunctions_dir = \".\"\n\n[limits]\nfuel_slice = 1000\n");
    hello_half_closed(&mut s.connect());
    s.wait_for_log("GET /hello fn=hello status=200");
    s.assert_healthy();
}

/// A keep-alive request, then a half-close, read at once: the server
/// answers, reads the end of stream behind the request and closes, long
/// before `idle_timeout`. Sockets are edge-triggered
/// (vendor/async-io/PATCH.md): a read that takes the request can take the
/// end of stream with it, and no later event reports it again.
#[test]
fn a_half_closed_keep_alive_client_is_closed_right_after_a_quick_answer() {
    let s = server("[server]\nfunctions_dir = \".\"\nidle_timeout = \"120s\"\n");
    for _ in 0..5 {
        // Well under the 120 s idle_timeout, well over a busy machine's
        // scheduling delays.
        hello_half_closed(&mut s.connect().read_timeout(std::time::Duration::from_secs(10)));
    }
    s.assert_healthy();
}

/// Urgent data between two pipelined requests: the server's read stops at
/// the urgent mark, short of what the socket holds, and the second request
/// must still be read and answered.
#[test]
fn urgent_data_between_pipelined_requests_stalls_neither() {
    let s = server("[server]\nfunctions_dir = \".\"\nidle_timeout = \"120s\"\n");
    let mut conn = s.connect().read_timeout(std::time::Duration::from_secs(10));
    conn.send(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n");
    conn.send_urgent(b'!');
    conn.send(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n");
    for _ in 0..2 {
        assert_hello(&conn.read_response(false));
    }
    s.assert_healthy();
}

#[test]
fn a_client_that_resets_cancels_its_request_and_frees_its_slot() {
    let s = server(
        "[server]\nfunctions_dir = \".\"\nmax_in_flight = 1\n\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"loop.wasm\"\n\
         limits = { fuel = 1_000_000_000_000, timeout = \"60s\" }\n",
    );
    let cancelled = "GET /spin cancelled: the client closed the connection";
    let wait_for_cancelled = |n: usize| {
        let deadline = std::time::Instant::now() + common::PROCESS_TIMEOUT;
        while s.log().matches(cancelled).count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "request not cancelled; log:\n{}",
                s.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    // A reset while the request runs.
    let mut conn = s.connect();
    conn.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\n");
    s.wait_for_log("loop.wasm (native ABI)");
    conn.reset();
    wait_for_cancelled(1);
    // Half-closed first: the request keeps running until the reset.
    let mut conn = s.connect();
    conn.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\n");
    conn.half_close();
    // Most likely the server sees the end of stream first (not required).
    std::thread::sleep(std::time::Duration::from_millis(300));
    conn.reset();
    wait_for_cancelled(2);
    // The only in-flight slot is free again long before the 60 s backstop.
    s.assert_healthy();
}

/// The trace id of an error response: header and body agree.
fn trace_of(r: &common::Response) -> String {
    let json = r.json();
    let trace = r.header("x-trace-id").expect("x-trace-id").to_owned();
    assert_eq!(json["trace_id"].as_str(), Some(trace.as_str()), "{r:?}");
    assert_eq!(trace.len(), 32, "{trace}");
    trace
}

/// Waits for the access line that starts `start` (after the log prefix)
/// and names trace id `trace`.
fn assert_access_line(s: &Server, start: &str, trace: &str) {
    let needle = format!("[INFO  access] {start}");
    let log = s.wait_for_log(&format!(" trace={trace}"));
    assert!(
        log.lines()
            .any(|l| l.contains(&needle) && l.ends_with(&format!(" trace={trace}"))),
        "no access line `{needle}… trace={trace}`; log:\n{log}"
    );
}

#[test]
fn unreadable_requests_carry_a_trace_id_and_an_access_line() {
    let s = server(
        "[server]\nfunctions_dir = \".\"\nmax_body = 100\nmax_header_bytes = \"1KiB\"\nheader_timeout = \"2s\"\nbody_timeout = \"2s\"\n",
    );
    // 400: nothing is known of the request.
    let r = s.raw(b"GARBAGE\r\n\r\n");
    r.assert_error(400, "bad-request");
    let trace = trace_of(&r);
    assert_access_line(
        &s,
        "- - fn=- status=400 error=bad-request fuel=0 us=",
        &trace,
    );
    // 413 from the head: method, target and the client's trace id known.
    let r = s.raw(
        b"POST /echo?x=1 HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\
          traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
    );
    r.assert_error(413, "body-too-large");
    assert_eq!(trace_of(&r), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_access_line(
        &s,
        "POST /echo?x=1 fn=- status=413 error=body-too-large fuel=0 us=",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    );
    // 431.
    let big = "a".repeat(2000);
    let r = s.get_with("/hello", &[("x-big", &big)]);
    r.assert_error(431, "headers-too-large");
    let trace = trace_of(&r);
    assert_access_line(
        &s,
        "- - fn=- status=431 error=headers-too-large fuel=0 us=",
        &trace,
    );
    // 408: a head started but never finished.
    let mut conn = s.connect();
    conn.send(b"GET /hello HTTP/1.1\r\nhost");
    let r = conn.read_response(false);
    r.assert_error(408, "request-timeout");
    let trace = trace_of(&r);
    assert_access_line(
        &s,
        "- - fn=- status=408 error=request-timeout fuel=0 us=",
        &trace,
    );
    // 408 for a body: the head is known.
    let mut conn = s.connect();
    conn.send(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\nx-request-id: slow-body-1\r\n\r\nabc");
    let r = conn.read_response(false);
    r.assert_error(408, "request-timeout");
    assert_eq!(r.header("x-trace-id"), Some("slow-body-1"));
    assert_access_line(
        &s,
        "POST /echo fn=- status=408 error=request-timeout fuel=0 us=",
        "slow-body-1",
    );
    s.assert_healthy();
}

#[test]
fn buffered_bodies_count_against_the_memory_budget() {
    // Budget 7.5 MiB, of which bodies may hold half (3.75 MiB). Every
    // function reserves memory + max_response: hello 1 MiB + 64 KiB; /sink
    // (hello with room for a 1 MiB body) 4 MiB + 64 KiB.
    let s = server(
        "[server]\nfunctions_dir = \".\"\nmemory_budget = \"7680KiB\"\n\n\
         [limits]\nmemory = \"1MiB\"\nmax_response = \"64KiB\"\n\n\
         [[function]]\nroute = \"/sink\"\nmodule = \"hello.wasm\"\nlimits = { memory = \"4MiB\" }\n",
    );
    const BODY: usize = 1 << 20;
    // Four clients announce 1 MiB bodies and send 3 bytes: a claim holds
    // nothing, so a whole 1 MiB body still fits.
    let mut holders: Vec<Conn> = (0..4)
        .map(|_| {
            let mut conn = s.connect();
            start_upload(&mut conn, "/nope", BODY);
            conn.send(b"abc");
            conn
        })
        .collect();
    let r = s.request("POST", "/sink", &[], &vec![b'y'; BODY]);
    assert_eq!(r.status, 200, "{r:?}");
    // Three send all but 3 bytes: ~3 MiB held. Another 1 MiB body does
    // not fit once its bytes pass what is left (as soon as the server has
    // read the holders' bytes: tried until then, bounded).
    for conn in &mut holders[..3] {
        conn.send(&vec![b'x'; BODY - 6]);
    }
    let refused = until_refused(|| s.raw(&whole_post("/sink", BODY)));
    let json = refused.assert_error(503, "overloaded");
    assert!(json["function"].is_null(), "{json}");
    assert!(
        refused.message().contains("memory_budget"),
        "{}",
        refused.message()
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(refused.header("x-trace-id").is_some(), "{refused:?}");
    assert_eq!(refused.header("connection"), Some("close"));
    s.wait_for_log("POST /sink fn=- status=503 error=overloaded fuel=0 us=");
    // A client that asks first (`Expect: 100-continue`) is refused before
    // it is invited to send what would not fit.
    let mut asking = s.connect();
    asking.send(
        format!(
            "POST /sink HTTP/1.1\r\nhost: t\r\ncontent-length: {BODY}\r\nexpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    );
    asking.read_one(false).assert_error(503, "overloaded");
    // So is a chunked one, at the bytes of its first chunk.
    let mut chunked =
        b"POST /sink HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n100000\r\n".to_vec();
    chunked.resize(chunked.len() + BODY, b'z');
    s.raw(&chunked).assert_error(503, "overloaded");
    // A request without a body still fits: bodies hold at most half.
    s.assert_healthy();
    // The holders finish: their reservations are given back.
    for (i, conn) in holders.iter_mut().enumerate() {
        let sent = if i < 3 { BODY - 3 } else { 3 };
        conn.send(&vec![b'x'; BODY - sent]);
        conn.read_response(false).assert_error(404, "not-found");
    }
    let r = s.request("POST", "/sink", &[], &vec![b'y'; BODY]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), HELLO);
    s.assert_healthy();
}

/// A POST of `len` bytes to `target`, head and body.
fn whole_post(target: &str, len: usize) -> Vec<u8> {
    let mut request =
        format!("POST {target} HTTP/1.1\r\nhost: t\r\ncontent-length: {len}\r\n\r\n").into_bytes();
    request.resize(request.len().saturating_add(len), b'x');
    request
}

/// `attempt`'s response once it is a 503 (the bytes of other uploads the
/// server has yet to read count only once read): each other answer must
/// be a 200; at most 100 tries 50 ms apart.
fn until_refused(mut attempt: impl FnMut() -> common::Response) -> common::Response {
    for _ in 0..100 {
        let r = attempt();
        if r.status == 503 {
            return r;
        }
        assert_eq!(r.status, 200, "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("never refused");
}

#[test]
fn a_half_closed_client_gets_answers_to_all_its_pipelined_requests() {
    // The first request runs for a while (many fuel slices), so the end
    // of stream arrives while it is served.
    let s = server(
        "[server]\nfunctions_dir = \".\"\n\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"loop.wasm\"\n\
         limits = { fuel = 20_000_000, fuel_slice = 1000 }\n",
    );
    let mut conn = s.connect();
    conn.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\nGET /hello HTTP/1.1\r\nhost: t\r\n\r\n");
    conn.half_close();
    conn.read_response(false).assert_error(504, "deadline");
    assert_hello(&conn.read_response(false));
    conn.assert_clean_close();
    s.assert_healthy();
}

/// Sends a POST head and its whole body in one go, as clients that do not
/// wait for `100 Continue` do, and reads the answer: a refusal sent while
/// the body is still arriving must reach the client, not be destroyed by a
/// reset (lingering close, RFC 9112 §9.6).
fn post_whole(conn: &mut Conn, target: &str, len: usize) -> common::Response {
    let mut request =
        format!("POST {target} HTTP/1.1\r\nhost: t\r\ncontent-length: {len}\r\n\r\n").into_bytes();
    request.resize(request.len().saturating_add(len), b'x');
    conn.send(&request);
    let r = conn.read_response(false);
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    conn.assert_clean_close();
    r
}

#[test]
fn a_body_refused_as_too_large_is_answered_not_reset() {
    let s = server("[server]\nfunctions_dir = \".\"\nmax_body = \"1MiB\"\n");
    for _ in 0..3 {
        let r = post_whole(&mut s.connect(), "/echo", 2 << 20);
        r.assert_error(413, "body-too-large");
        s.assert_healthy();
    }
}

#[test]
fn a_body_refused_by_the_memory_budget_is_answered_not_reset() {
    // As in `buffered_bodies_count_against_the_memory_budget`: three
    // holders leave too little of the bodies' half of the budget for 1 MiB.
    let s = server(
        "[server]\nfunctions_dir = \".\"\nmemory_budget = \"7680KiB\"\n\n\
         [limits]\nmemory = \"1MiB\"\nmax_response = \"64KiB\"\n",
    );
    const BODY: usize = 1 << 20;
    let _holders: Vec<Conn> = (0..3)
        .map(|_| {
            let mut conn = s.connect();
            start_upload(&mut conn, "/nope", BODY);
            conn.send(&vec![b'x'; BODY - 3]);
            conn
        })
        .collect();
    let r = until_refused(|| {
        let mut conn = s.connect();
        conn.send(&whole_post("/echo", BODY));
        conn.read_response(false)
    });
    r.assert_error(503, "overloaded");
    let mut conn = s.connect();
    let r = post_whole(&mut conn, "/echo", BODY);
    r.assert_error(503, "overloaded");
    s.assert_healthy();
}

#[test]
fn a_refused_connection_that_sent_a_request_is_answered_not_reset() {
    let s = server("[server]\nfunctions_dir = \".\"\nmax_connections = 2\n");
    let mut a = s.connect();
    let mut b = s.connect();
    start_upload(&mut a, "/echo", 2);
    start_upload(&mut b, "/echo", 2);
    let mut conn = Conn::open_from(ip("127.0.0.2"), s.addr);
    let r = post_whole(&mut conn, "/echo", 256 << 10);
    r.assert_error(503, "too-many-connections");
    a.send(b"hi");
    assert_eq!(a.read_response(false).status, 200);
    s.assert_healthy();
}
