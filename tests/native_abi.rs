//! The native ABI end to end: the example functions in `functions/` served
//! in zero-config mode (`wasmgate serve functions`), over real sockets.

mod common;

use common::{HELLO, Server, encode_request, function};

fn server() -> Server {
    Server::serve_dir(&function(""))
}

fn is_generated_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn hello_answers_with_text_and_a_trace_id() {
    let s = server();
    let r = s.get("/hello");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), HELLO);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("21"));
    assert!(r.header("x-wasmgate-error").is_none());
    let trace = r.header("x-trace-id").expect("x-trace-id");
    assert!(is_generated_trace_id(trace), "{trace}");

    let r = s.get("/hello?name=pi");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello, pi!\n");
    let r = s.get("/hello?name=Raspberry%20Pi");
    assert_eq!(r.text(), "Hello, Raspberry Pi!\n");

    // The access log names function, status, no error, and the trace id.
    s.wait_for_log("fn=hello status=200 error=- ");
    s.wait_for_log(&format!("trace={trace}"));
}

#[test]
fn echo_round_trips_method_uri_headers_and_body() {
    let s = server();
    let r = s.request(
        "POST",
        "/echo?x=1&y=two",
        &[("x-a", "1"), ("X-Mixed-Case", "Value With Spaces")],
        b"hello body",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["uri"], "/echo?x=1&y=two");
    assert_eq!(v["body"], "hello body");
    assert_eq!(v["trace_id"], r.header("x-trace-id").unwrap());
    let headers: Vec<(String, String)> = serde_json::from_value(v["headers"].clone()).unwrap();
    assert!(headers.contains(&("x-a".into(), "1".into())), "{headers:?}");
    assert!(
        headers.contains(&("x-mixed-case".into(), "Value With Spaces".into())),
        "{headers:?}"
    );
    assert!(headers.contains(&("host".into(), "wasmgate.test".into())));

    // Other methods reach the guest unchanged.
    for method in ["PUT", "DELETE", "PATCH", "GET"] {
        let r = s.request(method, "/echo/sub/path", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["method"], method);
        assert_eq!(r.json()["uri"], "/echo/sub/path");
    }
}

#[test]
fn echo_receives_binary_body_bytes() {
    let s = server();
    // Control bytes, quotes, backslash, multi-byte UTF-8, and one byte that
    // is not UTF-8 (echo reports the body as lossy UTF-8).
    let body = b"\x00\x01\x02 tab\t nl\n cr\r \"q\" \\ caf\xc3\xa9 \xff end";
    let r = s.request("POST", "/echo", &[], body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["body"],
        "\u{0}\u{1}\u{2} tab\t nl\n cr\r \"q\" \\ caf\u{e9} \u{fffd} end"
    );
}

#[test]
fn bodies_larger_than_the_guest_arena_round_trip() {
    // The guest crate serves small allocations from the free tail of the
    // initial memory page and larger ones from std's allocator; a body of
    // each size, one after the other, must come back intact.
    let s = server();
    for len in [10, 20_000, 60_000] {
        let body: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let r = s.request("POST", "/echo", &[], body.as_bytes());
        assert_eq!(r.status, 200, "{len}: {r:?}");
        assert_eq!(r.json()["body"], body.as_str(), "{len}");
    }
    s.assert_healthy();
}

#[test]
fn chunked_request_body_is_decoded() {
    let s = server();
    let mut conn = s.connect();
    conn.send(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n1\r\n\x00\r\n0\r\ntrailer: x\r\n\r\n",
    );
    let r = conn.read_response(false);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "hello world\u{0}");
    // The connection stays usable after a chunked body.
    let r = conn.request("GET", "/hello", &[], b"");
    assert_eq!(r.text(), HELLO);
}

#[test]
fn expect_continue_is_answered_before_the_body() {
    let s = server();
    let mut conn = s.connect();
    conn.send(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n",
    );
    let interim = conn.read_one(false);
    assert_eq!(interim.status, 100);
    conn.send(b"ping");
    let r = conn.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], "ping");
}

#[test]
fn sieve_counts_primes() {
    let s = server();
    let r = s.get("/sieve?n=1000000");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "primes below 1000000: 78498\n");
    s.assert_healthy();
}

#[test]
fn head_has_length_but_no_body() {
    let s = server();
    let mut conn = s.connect();
    let r = conn.request("HEAD", "/hello", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("21"));
    assert!(r.header("x-trace-id").is_some());
    assert!(r.body.is_empty());
    // Had the server sent body bytes after the HEAD response, they would be
    // read here as the start of the next response.
    let r = conn.request("GET", "/hello", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), HELLO);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = server();
    let mut conn = s.connect();
    for i in 0..6 {
        let r = if i % 2 == 0 {
            conn.request("GET", &format!("/hello?name=n{i}"), &[], b"")
        } else {
            conn.request("POST", "/echo", &[], format!("body {i}").as_bytes())
        };
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert!(r.header("connection").is_none(), "{r:?}");
        if i % 2 == 0 {
            assert_eq!(r.text(), format!("Hello, n{i}!\n"));
        } else {
            assert_eq!(r.json()["body"], format!("body {i}"));
        }
    }
    // Pipelined: two requests in one write, two responses in order.
    let mut both = encode_request("GET", "/hello?name=one", &[], b"");
    both.extend(encode_request("GET", "/hello?name=two", &[], b""));
    conn.send(&both);
    assert_eq!(conn.read_response(false).text(), "Hello, one!\n");
    assert_eq!(conn.read_response(false).text(), "Hello, two!\n");
    // `connection: close` is honoured: the response says so, then EOF.
    let r = conn.request("GET", "/hello", &[("connection", "close")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.read_to_close().is_empty());
}

#[test]
fn http10_request_closes_the_connection() {
    let s = server();
    let mut conn = s.connect();
    conn.send(b"GET /hello HTTP/1.0\r\n\r\n");
    let r = conn.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), HELLO);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(conn.read_to_close().is_empty());
}

#[test]
fn trace_id_comes_from_x_request_id() {
    let s = server();
    let r = s.request("POST", "/echo", &[("x-request-id", "req-42.a:b_c")], b"x");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-trace-id"), Some("req-42.a:b_c"));
    assert_eq!(r.json()["trace_id"], "req-42.a:b_c");
    s.wait_for_log("trace=req-42.a:b_c");

    // An id with characters that could forge log lines is replaced.
    let r = s.get_with("/hello", &[("x-request-id", "evil id\tx")]);
    let trace = r.header("x-trace-id").unwrap();
    assert!(is_generated_trace_id(trace), "{trace}");
    let r = s.get_with("/hello", &[("x-request-id", &"a".repeat(65))]);
    assert!(is_generated_trace_id(r.header("x-trace-id").unwrap()));

    // Error responses carry it too.
    let r = s.get_with("/no-such-function", &[("x-request-id", "req-404")]);
    let json = r.assert_error(404, "not-found");
    assert_eq!(json["trace_id"], "req-404");
    assert_eq!(r.header("x-trace-id"), Some("req-404"));
    s.assert_healthy();
}

#[test]
fn trace_id_comes_from_traceparent() {
    let s = server();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = s.request("GET", "/echo", &[("traceparent", traceparent)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-trace-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(r.json()["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // traceparent wins over x-request-id.
    let r = s.get_with(
        "/hello",
        &[("x-request-id", "other"), ("traceparent", traceparent)],
    );
    assert_eq!(
        r.header("x-trace-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );

    // A malformed traceparent falls back to x-request-id.
    let r = s.get_with(
        "/hello",
        &[
            ("traceparent", "00-nothex-01"),
            ("x-request-id", "fallback"),
        ],
    );
    assert_eq!(r.header("x-trace-id"), Some("fallback"));
}
