//! The http-wasm handler ABI end to end (README "Gateway"): middleware
//! (`[[middleware]]`, `middleware = [...]`) in front of native and
//! wasi-json functions, http-wasm modules as terminal functions, the ABI's
//! rules, limits failing closed, and a middleware built from the public
//! `http-wasm-guest` crate (functions/hwg-example). Rule-breaking guests
//! are small WAT modules.

mod common;

use std::path::PathBuf;

use common::{Server, TempDir, function, wasmgate_in};

/// Every `http_handler` import the WAT guests use, and the strings they
/// write, at fixed offsets.
const PRELUDE: &str = r#"
  (import "http_handler" "set_header_value" (func $set_header (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add_header (param i32 i32 i32 i32 i32)))
  (import "http_handler" "remove_header" (func $remove_header (param i32 i32 i32)))
  (import "http_handler" "set_method" (func $set_method (param i32 i32)))
  (import "http_handler" "get_header_values" (func $get_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_status_code" (func $set_status (param i32)))
  (import "http_handler" "get_status_code" (func $get_status (result i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "get_source_addr" (func $get_source_addr (param i32 i32) (result i32)))
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_uri" (func $set_uri (param i32 i32)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "http_handler" "get_header_names" (func $get_names (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  ;; 0: "x-mw" (4)  16: "yes" (3)  32: "x-trace-id" (10)  48: "bad\r\nx: y" (10)
  ;; 64: "pre-" (4)  80: "wrapped:" (8)  96: "x-src" (5)  112: "x-cfg" (5)
  ;; 128: "created" (7)  144: "x-uri" (5)  160: "/echo?rewritten" (15)
  (data (i32.const 0) "x-mw")
  (data (i32.const 16) "yes")
  (data (i32.const 32) "x-trace-id")
  (data (i32.const 48) "bad\r\nx: y")
  (data (i32.const 64) "pre-")
  (data (i32.const 80) "wrapped:")
  (data (i32.const 96) "x-src")
  (data (i32.const 112) "x-cfg")
  (data (i32.const 128) "created")
  (data (i32.const 144) "x-uri")
  (data (i32.const 160) "/echo?rewritten")
  (data (i32.const 192) "CONNECT")
"#;

/// An http-wasm module: the prelude, `handle_request` returning what
/// `request` leaves on the stack (an i64), and `handle_response`.
fn guest(request: &str, response: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {PRELUDE}
          (func (export "handle_request") (result i64) {request})
          (func (export "handle_response") (param $ctx i32) (param $is_error i32) {response}))"#
    ))
    .unwrap()
}

/// A native function that traps if it is ever called: a request answered
/// with anything but 502 `trap` never reached it.
fn never() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func (export "wasmgate_alloc") (param i32) (result i32) unreachable)
          (func (export "wasmgate_handle") (param i32 i32) (result i64) unreachable))"#,
    )
    .unwrap()
}

/// A server with `/hello`, `/echo` (native: echoes method, URI, headers,
/// body as JSON), `/headers` (wasi-json: echoes the headers), `/never`,
/// the given modules (name, bytes) and config.
fn server(modules: &[(&str, Vec<u8>)], toml: &str) -> Server {
    let tmp = TempDir::new("http-wasm");
    let mut files: Vec<(&str, PathBuf)> = vec![
        ("hello.wasm", function("hello.wasm")),
        ("echo.wasm", function("echo.wasm")),
        ("headers.wasm", function("headers.wasm")),
        ("hwg.wasm", function("hwg-example.wasm")),
        ("never.wasm", tmp.write("never.wasm", never())),
    ];
    for (name, bytes) in modules {
        files.push((name, tmp.write(name, bytes)));
    }
    let toml = format!(
        "[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n{toml}\n\
         [[function]]\nroute = \"/never\"\nmodule = \"never.wasm\"\n"
    );
    Server::with_config(&toml, &files)
}

/// The header fields an echo response's JSON body lists.
fn echoed_headers(r: &common::Response) -> Vec<(String, String)> {
    serde_json::from_value(r.json()["headers"].clone()).unwrap()
}

#[test]
fn the_http_wasm_guest_crate_runs_unmodified_as_middleware_and_as_a_function() {
    let s = server(
        &[],
        "[[middleware]]\nname = \"hwg\"\nmodule = \"hwg.wasm\"\nconfig = { greeting = \"hi\", n = 2 }\n\
         [[function]]\nroute = \"/echo\"\nmodule = \"echo.wasm\"\nmiddleware = [\"hwg\"]\n\
         [[function]]\nroute = \"/headers\"\nmodule = \"headers.wasm\"\nmiddleware = [\"hwg\"]\n\
         [[function]]\nroute = \"/guarded\"\nmodule = \"never.wasm\"\nmiddleware = [\"hwg\"]\n\
         [[function]]\nroute = \"/hwg\"\nmodule = \"hwg.wasm\"\n",
    );
    // In front of a native function: request headers added and read, the
    // config handed over as JSON, the function's status read back.
    let r = s.request("POST", "/echo", &[("x-hwg-token", "t0k")], b"body");
    assert_eq!(r.status, 200, "{r:?}");
    let headers = echoed_headers(&r);
    for (name, value) in [
        ("x-hwg-token", "t0k"),
        ("x-hwg-seen", "t0k"),
        ("x-hwg-method", "POST"),
        ("x-hwg-config", r#"{"greeting":"hi","n":2}"#),
    ] {
        assert!(
            headers.contains(&(name.into(), value.into())),
            "{name}: {headers:?}"
        );
    }
    assert_eq!(r.json()["body"], "body");
    assert_eq!(r.header("x-hwg-status"), Some("200"));
    assert_eq!(r.header("x-hwg-ctx"), Some("42"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    // In front of a wasi-json function.
    let r = s.get_with("/headers", &[("x-hwg-token", "w")]);
    assert_eq!(r.status, 200, "{r:?}");
    // Gojinn-style canonical names, values as lists.
    assert_eq!(r.json()["headers"]["X-Hwg-Seen"][0], "w", "{}", r.text());
    assert_eq!(r.header("x-hwg-status"), Some("200"));
    assert_eq!(r.header("x-single"), Some("one"));

    // Refused before the function: the one behind it traps if called.
    let r = s.get("/guarded");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.text(), "missing x-hwg-token\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(r.header("x-wasmgate-error").is_none());
    assert!(r.header("x-trace-id").is_some());
    // Let through, it reaches the function (which traps): the proof.
    s.get_with("/guarded", &[("x-hwg-token", "t")])
        .assert_error(502, "trap");

    // As a terminal function: refusing, and continuing with no next
    // handler (an empty 200, handle_response run on it).
    let r = s.get("/hwg");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.text(), "missing x-hwg-token\n");
    let r = s.get_with("/hwg", &[("x-hwg-token", "t")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"");
    assert_eq!(r.header("x-hwg-status"), Some("200"));
    assert_eq!(r.header("x-hwg-ctx"), Some("42"));
    s.wait_for_log("GET /hwg fn=hwg status=200");
    s.assert_healthy();
}

/// `handle_request` setting a request header and continuing.
const ADD_X_MW: &str = "(call $add_header (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 3)) (i64.const 1)";

#[test]
fn a_terminal_guest_answers_with_what_it_wrote() {
    // Status, a header and a body, not continuing.
    let answer = guest(
        "(call $set_status (i32.const 201))
         (call $set_header (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 3))
         (call $write_body (i32.const 1) (i32.const 128) (i32.const 7))
         (i64.const 0)",
        "unreachable",
    );
    // Continuing with no next handler: handle_response gets the context
    // (7, in the high bits) and traps on any other.
    let cont = guest(
        "(call $set_header (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 3))
         (i64.const 0x700000001)",
        "(if (i32.ne (local.get $ctx) (i32.const 7)) (then unreachable))
         (if (i32.ne (call $get_status) (i32.const 200)) (then unreachable))",
    );
    let s = server(
        &[("answer.wasm", answer), ("cont.wasm", cont)],
        "[[function]]\nroute = \"/answer\"\nmodule = \"answer.wasm\"\n\
         [[function]]\nroute = \"/cont\"\nmodule = \"cont.wasm\"\n",
    );
    let r = s.get("/answer");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.text(), "created");
    assert_eq!(r.header("x-mw"), Some("yes"));
    let r = s.get("/cont");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-mw"), Some("yes"));
    assert_eq!(r.body, b"");
    s.assert_healthy();
}

#[test]
fn bodies_are_read_and_written_in_both_directions() {
    // Request: replaced by "pre-" then the original appended. Response
    // (buffer_response): "wrapped:" then the function's body.
    let body = guest(
        "(drop (call $enable (i32.const 2)))
         (call $write_body (i32.const 0) (i32.const 64) (i32.const 4))
         (i64.const 1)",
        "(local $n i64)
         (local.set $n (call $read_body (i32.const 1) (i32.const 1024) (i32.const 4096)))
         ;; EOF in the high bits: the function's body fits the buffer.
         (if (i64.eqz (i64.shr_u (local.get $n) (i64.const 32))) (then unreachable))
         (call $write_body (i32.const 1) (i32.const 80) (i32.const 8))
         (call $write_body (i32.const 1) (i32.const 1024) (i32.wrap_i64 (local.get $n)))",
    );
    // Reads the request body before the next handler and writes it back
    // after "pre-": the first write replaces, the next appends.
    let copy = guest(
        "(local $n i64)
         (local.set $n (call $read_body (i32.const 0) (i32.const 1024) (i32.const 4096)))
         (call $write_body (i32.const 0) (i32.const 64) (i32.const 4))
         (call $write_body (i32.const 0) (i32.const 1024) (i32.wrap_i64 (local.get $n)))
         (i64.const 1)",
        "",
    );
    let s = server(
        &[("body.wasm", body), ("copy.wasm", copy)],
        "[[middleware]]\nname = \"body\"\nmodule = \"body.wasm\"\n\
         [[middleware]]\nname = \"copy\"\nmodule = \"copy.wasm\"\n\
         [[function]]\nroute = \"/echo\"\nmodule = \"echo.wasm\"\nmiddleware = [\"body\"]\n\
         [[function]]\nroute = \"/copy\"\nmodule = \"echo.wasm\"\nmiddleware = [\"copy\"]\n",
    );
    let r = s.request("POST", "/echo", &[], b"original");
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.text();
    let json = text.strip_prefix("wrapped:").expect(&text);
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["body"], "pre-");
    assert_eq!(r.header("content-length"), Some(&*text.len().to_string()));
    let r = s.request("POST", "/copy", &[], b"original");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "pre-original");
    s.assert_healthy();
}

#[test]
fn config_source_address_and_uri_reach_the_guest() {
    let probe = guest(
        "(call $set_header (i32.const 0) (i32.const 112) (i32.const 5) (i32.const 2048)
            (call $get_config (i32.const 2048) (i32.const 1024)))
         (call $set_header (i32.const 0) (i32.const 96) (i32.const 5) (i32.const 3072)
            (call $get_source_addr (i32.const 3072) (i32.const 64)))
         (call $set_header (i32.const 0) (i32.const 144) (i32.const 5) (i32.const 3200)
            (call $get_uri (i32.const 3200) (i32.const 256)))
         (call $set_uri (i32.const 160) (i32.const 15))
         (i64.const 1)",
        "",
    );
    let s = server(
        &[("probe.wasm", probe)],
        "[[middleware]]\nname = \"probe\"\nmodule = \"probe.wasm\"\n\
         config = { secret = \"s\", list = [1, 2] }\n\
         [[function]]\nroute = \"/echo\"\nmodule = \"echo.wasm\"\nmiddleware = [\"probe\"]\n",
    );
    let r = s.get("/echo?q=1");
    assert_eq!(r.status, 200, "{r:?}");
    let headers = echoed_headers(&r);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name}: {headers:?}"))
    };
    // The config as JSON, keys sorted (`NAME_env` keys are resolved at
    // load: config::tests::middleware_config_env_keys_are_resolved_by_the_host).
    assert_eq!(get("x-cfg"), r#"{"list":[1,2],"secret":"s"}"#);
    let src: std::net::SocketAddr = get("x-src").parse().unwrap();
    assert!(src.ip().is_loopback(), "{src}");
    assert_eq!(get("x-uri"), "/echo?q=1");
    // The function sees the URI the middleware set.
    assert_eq!(r.json()["uri"], "/echo?rewritten");
    s.assert_healthy();
}

#[test]
fn handle_response_still_reads_the_request() {
    // `handle_response` copies the request's URI and its `x-mw` header
    // into response headers (`x-uri`, `x-mw`), as with the reference host.
    let probe = guest(
        "(drop (call $enable (i32.const 2))) (i64.const 1)",
        "(call $set_header (i32.const 1) (i32.const 144) (i32.const 5) (i32.const 3200)
            (call $get_uri (i32.const 3200) (i32.const 256)))
         (call $set_header (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 3600)
            (i32.sub (i32.wrap_i64 (call $get_values (i32.const 0) (i32.const 0) (i32.const 4)
              (i32.const 3600) (i32.const 256))) (i32.const 1)))",
    );
    let s = server(
        &[("probe.wasm", probe)],
        "[[middleware]]\nname = \"probe\"\nmodule = \"probe.wasm\"\n\
         [[function]]\nroute = \"/echo\"\nmodule = \"echo.wasm\"\nmiddleware = [\"probe\"]\n",
    );
    let r = s.get_with("/echo?q=1", &[("x-mw", "from-client")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-uri"), Some("/echo?q=1"), "{r:?}");
    assert_eq!(r.header("x-mw"), Some("from-client"), "{r:?}");
    assert_eq!(r.json()["uri"], "/echo?q=1");
    s.assert_healthy();
}

#[test]
fn response_headers_after_next_need_buffer_response() {
    let late = guest(
        "(i64.const 1)",
        "(call $set_header (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 3))",
    );
    let late_body = guest(
        "(i64.const 1)",
        "(call $write_body (i32.const 1) (i32.const 128) (i32.const 7))",
    );
    let late_request = guest(
        "(i64.const 1)",
        "(call $set_header (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 3))",
    );
    let s = server(
        &[
            ("late.wasm", late),
            ("late_body.wasm", late_body),
            ("late_request.wasm", late_request),
        ],
        "[[middleware]]\nname = \"late\"\nmodule = \"late.wasm\"\n\
         [[middleware]]\nname = \"late_body\"\nmodule = \"late_body.wasm\"\n\
         [[middleware]]\nname = \"late_request\"\nmodule = \"late_request.wasm\"\n\
         [[function]]\nroute = \"/late\"\nmodule = \"echo.wasm\"\nmiddleware = [\"late\"]\n\
         [[function]]\nroute = \"/late_body\"\nmodule = \"echo.wasm\"\nmiddleware = [\"late_body\"]\n\
         [[function]]\nroute = \"/late_request\"\nmodule = \"echo.wasm\"\nmiddleware = [\"late_request\"]\n",
    );
    for (path, what) in [
        (
            "/late",
            "response header after the next handler unless buffer_response",
        ),
        (
            "/late_body",
            "response body after the next handler unless buffer_response",
        ),
        ("/late_request", "request header after the next handler"),
    ] {
        let json = s.get(path).assert_error(502, "trap");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(what), "{path}: {message}");
        assert!(message.contains("middleware `"), "{path}: {message}");
        s.assert_healthy();
    }
}

#[test]
fn a_guest_cannot_inject_header_lines_or_pose_as_the_host() {
    let cases = [
        // A CR LF in a value.
        (
            "crlf",
            "(call $set_header (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 48) (i32.const 10)) (i64.const 1)",
            "invalid value for header `x-mw`",
        ),
        // A CR LF in a name.
        (
            "crlf_name",
            "(call $add_header (i32.const 1) (i32.const 48) (i32.const 10) (i32.const 16) (i32.const 3)) (i64.const 0)",
            "a header name must be a token",
        ),
        // The host's trace id header, on the response.
        (
            "trace",
            "(call $set_header (i32.const 1) (i32.const 32) (i32.const 10) (i32.const 16) (i32.const 3)) (i64.const 0)",
            "`x-trace-id` is set by the host",
        ),
        // Out-of-bounds memory.
        (
            "oob",
            "(call $set_header (i32.const 0) (i32.const 65530) (i32.const 100) (i32.const 16) (i32.const 3)) (i64.const 1)",
            "outside the guest's memory",
        ),
        // A negative length.
        (
            "negative",
            "(drop (call $get_config (i32.const 0) (i32.const -1))) (i64.const 1)",
            "negative",
        ),
        // A CR LF in the URI.
        (
            "uri",
            "(call $set_uri (i32.const 48) (i32.const 10)) (i64.const 1)",
            "a URI must be a path",
        ),
        // A tunnel, which the request parser refuses too.
        (
            "connect",
            "(call $set_method (i32.const 192) (i32.const 7)) (i64.const 1)",
            "CONNECT is not forwarded",
        ),
        // A status that cannot end a request.
        (
            "status",
            "(call $set_status (i32.const 101)) (i64.const 0)",
            "status 101",
        ),
    ];
    let mut modules = Vec::new();
    let mut toml = String::new();
    for (name, request, _) in &cases {
        modules.push((format!("{name}.wasm"), guest(request, "")));
        toml.push_str(&format!(
            "[[middleware]]\nname = \"{name}\"\nmodule = \"{name}.wasm\"\n\
             [[function]]\nroute = \"/{name}\"\nmodule = \"never.wasm\"\nmiddleware = [\"{name}\"]\n"
        ));
    }
    let modules: Vec<(&str, Vec<u8>)> = modules
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let s = server(&modules, &toml);
    for (name, _, why) in cases {
        let r = s.get(&format!("/{name}"));
        let json = r.assert_error(502, "trap");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(why), "{name}: {message}");
        assert_eq!(
            r.headers.iter().filter(|(n, _)| n == "x-trace-id").count(),
            1
        );
        assert!(r.header("x").is_none());
        s.assert_healthy();
    }
}

#[test]
fn a_failing_middleware_fails_closed_by_error_kind() {
    let trap = guest("unreachable", "");
    let spin = guest("(loop $l (br $l)) (i64.const 1)", "");
    let grow = guest(
        "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (i64.const 1)",
        "",
    );
    let late_trap = guest("(i64.const 1)", "unreachable");
    let s = server(
        &[
            ("trap.wasm", trap),
            ("spin.wasm", spin),
            ("grow.wasm", grow),
            ("late_trap.wasm", late_trap),
        ],
        "[[middleware]]\nname = \"trap\"\nmodule = \"trap.wasm\"\n\
         [[middleware]]\nname = \"spin\"\nmodule = \"spin.wasm\"\nlimits = { fuel = 2_000_000 }\n\
         [[middleware]]\nname = \"grow\"\nmodule = \"grow.wasm\"\nlimits = { memory = \"1MiB\" }\n\
         [[middleware]]\nname = \"late_trap\"\nmodule = \"late_trap.wasm\"\n\
         [[function]]\nroute = \"/trap\"\nmodule = \"never.wasm\"\nmiddleware = [\"trap\"]\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"never.wasm\"\nmiddleware = [\"spin\"]\n\
         [[function]]\nroute = \"/grow\"\nmodule = \"never.wasm\"\nmiddleware = [\"grow\"]\n\
         [[function]]\nroute = \"/late_trap\"\nmodule = \"echo.wasm\"\nmiddleware = [\"late_trap\"]\n\
         [[middleware]]\nname = \"gone\"\nmodule = \"gone.wasm\"\n\
         [[middleware]]\nname = \"native\"\nmodule = \"hello.wasm\"\n\
         [[function]]\nroute = \"/gone\"\nmodule = \"never.wasm\"\nmiddleware = [\"gone\"]\n\
         [[function]]\nroute = \"/native\"\nmodule = \"never.wasm\"\nmiddleware = [\"native\"]\n",
    );
    for (path, status, kind) in [
        ("/trap", 502, "trap"),
        ("/spin", 504, "deadline"),
        ("/grow", 502, "memory-limit"),
        ("/late_trap", 502, "trap"),
        ("/gone", 503, "module-unavailable"),
        ("/native", 503, "module-unavailable"),
    ] {
        let json = s.get(path).assert_error(status, kind);
        let name = &path[1..];
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("middleware `{name}`: ")),
            "{json}"
        );
        s.assert_healthy();
    }
    // The middleware's fuel is in the access line.
    let log = s.wait_for_log("GET /spin fn=never status=504 error=deadline fuel=");
    let line = log
        .lines()
        .find(|l| l.contains("GET /spin fn=never"))
        .unwrap();
    let fuel: u64 = line
        .split(" fuel=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(fuel >= 1_000_000, "{line}");
    s.wait_for_log("speaks the native ABI, not http-wasm");
}

#[test]
fn each_middleware_instance_is_counted_in_the_memory_budget() {
    // The function alone (1 MiB + 512 KiB) fits the 3 MiB budget; with
    // its middleware's 2 MiB + 512 KiB it does not, nor with one of
    // 512 KiB + 1.5 MiB (the response a middleware may write counts too);
    // with one of 512 KiB + 512 KiB it does.
    let s = server(
        &[("mw.wasm", guest(ADD_X_MW, ""))],
        "[server]\nmemory_budget = \"3MiB\"\n[limits]\nmemory = \"1MiB\"\nmax_response = \"512KiB\"\n\
         [[middleware]]\nname = \"big\"\nmodule = \"mw.wasm\"\nlimits = { memory = \"2MiB\" }\n\
         [[middleware]]\nname = \"writer\"\nmodule = \"mw.wasm\"\nlimits = { memory = \"512KiB\", max_response = \"1536KiB\" }\n\
         [[middleware]]\nname = \"small\"\nmodule = \"mw.wasm\"\nlimits = { memory = \"512KiB\" }\n\
         [[function]]\nroute = \"/big\"\nmodule = \"echo.wasm\"\nmiddleware = [\"big\"]\n\
         [[function]]\nroute = \"/writer\"\nmodule = \"echo.wasm\"\nmiddleware = [\"writer\"]\n\
         [[function]]\nroute = \"/small\"\nmodule = \"echo.wasm\"\nmiddleware = [\"small\"]\n",
    );
    for route in ["/big", "/writer"] {
        let r = s.get(route);
        r.assert_error(503, "overloaded");
        assert!(r.header("retry-after").is_some());
    }
    let r = s.get("/small");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(echoed_headers(&r).contains(&("x-mw".into(), "yes".into())));
    s.assert_healthy();
}

#[test]
fn handle_response_learns_that_the_function_failed() {
    // Traps in handle_response only when told the next handler failed.
    let iserr = guest(
        "(i64.const 1)",
        "(if (local.get $is_error) (then unreachable))",
    );
    let s = server(
        &[("iserr.wasm", iserr)],
        "[[middleware]]\nname = \"iserr\"\nmodule = \"iserr.wasm\"\n\
         [[function]]\nroute = \"/ok\"\nmodule = \"echo.wasm\"\nmiddleware = [\"iserr\"]\n\
         [[function]]\nroute = \"/fails\"\nmodule = \"never.wasm\"\nmiddleware = [\"iserr\"]\n",
    );
    assert_eq!(s.get("/ok").status, 200);
    let json = s.get("/fails").assert_error(502, "trap");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .starts_with("middleware `iserr`: "),
        "{json}"
    );
    s.assert_healthy();
}

#[test]
fn host_work_is_charged_in_fuel() {
    // 2,000 calls of get_config on a 32 KiB config: ~100 k fuel each for
    // the copy, ~10 for the loop around it. Within 20 M fuel only if the
    // copies are free.
    let copy = guest(
        "(local $i i32)
         (loop $l
           (drop (call $get_config (i32.const 4096) (i32.const 40000)))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $l (i32.lt_u (local.get $i) (i32.const 2000))))
         (i64.const 1)",
        "",
    );
    let big = "a".repeat(32 * 1024);
    let s = server(
        &[("copy.wasm", copy)],
        &format!(
            "[[middleware]]\nname = \"copy\"\nmodule = \"copy.wasm\"\nconfig = \"{big}\"\n\
             limits = {{ fuel = 20_000_000 }}\n\
             [[middleware]]\nname = \"small\"\nmodule = \"copy.wasm\"\nconfig = \"a\"\n\
             limits = {{ fuel = 20_000_000 }}\n\
             [[function]]\nroute = \"/copy\"\nmodule = \"echo.wasm\"\nmiddleware = [\"copy\"]\n\
             [[function]]\nroute = \"/small\"\nmodule = \"echo.wasm\"\nmiddleware = [\"small\"]\n"
        ),
    );
    assert_eq!(s.get("/small").status, 200);
    s.get("/copy").assert_error(504, "deadline");
    s.assert_healthy();
}

#[test]
fn a_header_name_asked_for_is_paid_by_its_length() {
    // 2,000 lookups of a 64 KiB header name (the whole page): ~190 k fuel
    // each for the copy out of the guest's memory. Within 20 M fuel only
    // if the name is free (it was: a free 7 MiB copy per call held the
    // thread until the timeout).
    let lookup = guest(
        "(local $i i32)
         (loop $l
           (drop (call $get_values (i32.const 0) (i32.const 0) (i32.const 65536) (i32.const 0) (i32.const 0)))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $l (i32.lt_u (local.get $i) (i32.const 2000))))
         (i64.const 1)",
        "",
    );
    let small = guest(
        "(local $i i32)
         (loop $l
           (drop (call $get_values (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0)))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br_if $l (i32.lt_u (local.get $i) (i32.const 2000))))
         (i64.const 1)",
        "",
    );
    let s = server(
        &[("lookup.wasm", lookup), ("small.wasm", small)],
        "[[middleware]]\nname = \"lookup\"\nmodule = \"lookup.wasm\"\nlimits = { fuel = 20_000_000 }\n\
         [[middleware]]\nname = \"small\"\nmodule = \"small.wasm\"\nlimits = { fuel = 20_000_000 }\n\
         [[function]]\nroute = \"/lookup\"\nmodule = \"echo.wasm\"\nmiddleware = [\"lookup\"]\n\
         [[function]]\nroute = \"/small\"\nmodule = \"echo.wasm\"\nmiddleware = [\"small\"]\n",
    );
    assert_eq!(s.get("/small").status, 200);
    let json = s.get("/lookup").assert_error(504, "deadline");
    assert!(json["message"].as_str().unwrap().contains("fuel"), "{json}");
    s.assert_healthy();
}

#[test]
fn guest_log_lines_and_trailers() {
    // Logs "x-mw" at info; trailer kinds list nothing.
    let probe = guest(
        "(call $log (i32.const 0) (i32.const 0) (i32.const 4))
         (if (i64.ne (call $get_names (i32.const 2) (i32.const 4096) (i32.const 100)) (i64.const 0))
           (then unreachable))
         (i64.const 1)",
        "",
    );
    let trailer = guest(
        "(call $set_header (i32.const 3) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 3)) (i64.const 1)",
        "",
    );
    let s = server(
        &[("probe.wasm", probe), ("trailer.wasm", trailer)],
        "[[middleware]]\nname = \"probe\"\nmodule = \"probe.wasm\"\n\
         [[middleware]]\nname = \"trailer\"\nmodule = \"trailer.wasm\"\n\
         [[function]]\nroute = \"/echo\"\nmodule = \"echo.wasm\"\nmiddleware = [\"probe\"]\n\
         [[function]]\nroute = \"/trailer\"\nmodule = \"echo.wasm\"\nmiddleware = [\"trailer\"]\n",
    );
    let r = s.get("/echo");
    assert_eq!(r.status, 200, "{r:?}");
    let trace = r.header("x-trace-id").unwrap();
    s.wait_for_log(&format!("[probe {trace}] x-mw"));
    let json = s.get("/trailer").assert_error(502, "trap");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("trailers are not supported")
    );
    s.assert_healthy();
}

#[test]
fn check_and_run_know_http_wasm_modules() {
    let dir = function("");
    let out = wasmgate_in(&dir, ["check", "hwg-example.wasm"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    for line in [
        "abi: http-wasm",
        "http_handler.enable_features",
        "http-wasm: imports enable_features: it may enable buffer_request, buffer_response, trailers (never granted)",
        "writes headers",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    // Without enable_features, it says so.
    let tmp = TempDir::new("check-http-wasm");
    let plain = wat::parse_str(
        r#"(module (import "http_handler" "get_method" (func (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "handle_request") (result i64) (i64.const 0))
          (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap();
    tmp.write("plain.wasm", plain);
    let out = wasmgate_in(tmp.path(), ["check", "plain.wasm"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "http-wasm: does not import enable_features: it runs with no feature enabled"
        ),
        "{}",
        out.stdout
    );
    // Missing handle_response: refused, naming it.
    let half = wat::parse_str(
        r#"(module (import "http_handler" "get_method" (func (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "handle_request") (result i64) (i64.const 0)))"#,
    )
    .unwrap();
    tmp.write("half.wasm", half);
    let out = wasmgate_in(tmp.path(), ["check", "half.wasm"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stdout
            .contains("http-wasm ABI: missing function export `handle_response`"),
        "{}",
        out.stdout
    );
    // `run` runs one as a function.
    let out = wasmgate_in(&dir, ["run", "hwg-example.wasm", "-H", "x-hwg-token:t"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("HTTP 200\n"), "{}", out.stdout);
    assert!(out.stdout.contains("x-hwg-ctx: 42\n"), "{}", out.stdout);
    let out = wasmgate_in(&dir, ["run", "hwg-example.wasm"]);
    assert!(out.stdout.starts_with("HTTP 403\n"), "{}", out.stdout);
    assert!(out.stderr.contains("abi: http-wasm"), "{}", out.stderr);
}

#[test]
fn header_values_come_nul_terminated_with_their_count() {
    // `x-mw: a` and `x-mw: bb`: "a\0bb\0", count 2, length 5. A buffer
    // too small gets nothing and the length it needs; an absent header, 0.
    let values = guest(
        "(if (i64.ne (call $get_values (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 4096) (i32.const 4))
                     (i64.const 0x200000005))
           (then unreachable))
         (if (i32.ne (i32.load8_u (i32.const 4096)) (i32.const 0)) (then unreachable))
         (if (i64.ne (call $get_values (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 4096) (i32.const 5))
                     (i64.const 0x200000005))
           (then unreachable))
         (if (i32.ne (i32.load (i32.const 4096)) (i32.const 0x62620061)) (then unreachable))
         (if (i32.ne (i32.load8_u (i32.const 4100)) (i32.const 0)) (then unreachable))
         (if (i64.ne (call $get_values (i32.const 0) (i32.const 96) (i32.const 5) (i32.const 4096) (i32.const 100))
                     (i64.const 0))
           (then unreachable))
         (call $write_body (i32.const 1) (i32.const 16) (i32.const 3))
         (i64.const 0)",
        "",
    );
    let s = server(
        &[("values.wasm", values)],
        "[[function]]\nroute = \"/values\"\nmodule = \"values.wasm\"\n",
    );
    let r = s.get_with("/values", &[("X-Mw", "a"), ("x-mw", "bb")]);
    assert_eq!(r.status, 200, "{r:?} {}", r.text());
    assert_eq!(r.text(), "yes");
    // With one value only, the guest's expectations fail: a trap.
    s.get_with("/values", &[("x-mw", "a")])
        .assert_error(502, "trap");
    s.assert_healthy();
}

/// A middleware whose `_start` sets a global, writes memory and enables
/// `buffer_request` (1); `handle_request` bumps the global, reads the body
/// (a trap without the feature) and continues only if it finds the state
/// `_start` left, and answers 500 otherwise. `import` comes before the
/// usual imports, and `_start` runs `read` first.
fn starting(import: &str, read: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {import} {PRELUDE}
          (global $n (mut i32) (i32.const 0))
          (func (export "_start")
            {read}
            (global.set $n (i32.add (global.get $n) (i32.const 41)))
            (i32.store (i32.const 4000) (i32.const 7))
            (drop (call $enable (i32.const 1))))
          (func (export "handle_request") (result i64)
            (global.set $n (i32.add (global.get $n) (i32.const 1)))
            (drop (call $read_body (i32.const 0) (i32.const 6000) (i32.const 64)))
            (if (i32.and (i32.eq (global.get $n) (i32.const 42))
                         (i32.eq (i32.load (i32.const 4000)) (i32.const 7)))
              (then (return (i64.const 1))))
            (call $set_status (i32.const 500))
            (i64.const 0))
          (func (export "handle_response") (param i32 i32)))"#
    ))
    .unwrap()
}

/// A middleware whose `_start` fills 1.5 MiB of memory: too much to keep.
fn filling() -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {PRELUDE}
          (func (export "_start")
            (drop (memory.grow (i32.const 31)))
            (memory.fill (i32.const 0) (i32.const 1) (i32.const 1600000)))
          (func (export "handle_request") (result i64) (i64.const 1))
          (func (export "handle_response") (param i32 i32)))"#
    ))
    .unwrap()
}

#[test]
fn a_snapshot_after_start_gives_each_request_the_state_start_left_at_the_same_fuel() {
    let s = server(
        &[
            ("snap.wasm", starting("", "")),
            (
                "clock.wasm",
                starting(
                    r#"(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))"#,
                    "(drop (call $clock (i32.const 1) (i64.const 0) (i32.const 5000)))",
                ),
            ),
            // Log functions (refused before a snapshot) of two modules
            // with one name, and one of them imported twice.
            (
                "twice.wasm",
                starting(
                    r#"(import "wasmgate" "log" (func (param i32 i32 i32)))
                       (import "http_handler" "log" (func (param i32 i32 i32)))"#,
                    "",
                ),
            ),
            ("fill.wasm", filling()),
        ],
        "[[middleware]]\nname = \"snap\"\nmodule = \"snap.wasm\"\n\
         [[middleware]]\nname = \"clock\"\nmodule = \"clock.wasm\"\n\
         [[middleware]]\nname = \"twice\"\nmodule = \"twice.wasm\"\n\
         [[function]]\nroute = \"/twice\"\nmodule = \"hello.wasm\"\nmiddleware = [\"twice\"]\n\
         [[middleware]]\nname = \"fill\"\nmodule = \"fill.wasm\"\n\
         [[function]]\nroute = \"/fill\"\nmodule = \"hello.wasm\"\nmiddleware = [\"fill\"]\n\
         [[function]]\nroute = \"/snap\"\nmodule = \"hello.wasm\"\nmiddleware = [\"snap\"]\n\
         [[function]]\nroute = \"/clock\"\nmodule = \"hello.wasm\"\nmiddleware = [\"clock\"]\n",
    );
    // The first request runs `_start` itself and starts the snapshot.
    let first = s.request("POST", "/snap", &[], b"body");
    assert_eq!(first.status, 200, "{first:?}");
    s.wait_for_log(
        "middleware snap: instances start from a snapshot taken after `_start` (2 KiB of data)",
    );
    // Each later request gets a fresh instance of the snapshot: the global
    // is 41 + 1 every time (a reused instance would count on), the memory
    // and the feature are there.
    for _ in 0..5 {
        let r = s.request("POST", "/snap", &[], b"body");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, b"Hello from wasmgate!\n", "{r:?}");
    }
    // Every request is charged the same fuel, `_start` included.
    let log = s.wait_for_log_lines("POST /snap fn=hello", 6);
    let fuel: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" /snap "))
        .filter_map(|l| l.split(" fuel=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(fuel.len(), 6, "{log}");
    assert!(fuel.iter().all(|f| *f == fuel[0]), "{fuel:?}");
    // A `_start` that reads the clock is not pre-initialised, and runs.
    let r = s.request("POST", "/clock", &[], b"body");
    assert_eq!(r.status, 200, "{r:?}");
    s.wait_for_log(
        "middleware clock: each instance runs `_start` (no snapshot: `_start`: function trapped: `clock_time_get` is refused before a snapshot)",
    );
    let r = s.request("POST", "/clock", &[], b"body");
    assert_eq!(r.status, 200, "{r:?}");
    // Refused imports that share a name are each refused on their own.
    for _ in 0..2 {
        let r = s.request("POST", "/twice", &[], b"body");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"Hello from wasmgate!\n"[..]),
            "{r:?}"
        );
    }
    s.wait_for_log(
        "middleware twice: instances start from a snapshot taken after `_start` (2 KiB of data)",
    );
    // Nor is one whose `_start` leaves more data than a snapshot keeps.
    assert_eq!(s.get("/fill").status, 200);
    s.wait_for_log(
        "middleware fill: each instance runs `_start` (no snapshot: the memory `_start` left holds 1563 KiB of data, more than the 1024 KiB a snapshot keeps)",
    );
    assert_eq!(s.get("/fill").status, 200);
    s.assert_healthy();
}

/// A middleware that checks, on each request, that it sees exactly the
/// state a new instance of its snapshot has (the global and memory
/// `_start` set, nothing a request wrote, one page), answers 500 if not,
/// then changes all of it: the global, memory in both calls, the request's
/// URI copied into memory; `x-mw: grow` grows the memory, `x-mw: trap`
/// traps after the changes. `table`: elements of a table it declares.
fn pooled(table: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {PRELUDE}
          (table {table} funcref)
          (global $g (mut i32) (i32.const 0))
          (func (export "_start")
            (global.set $g (i32.const 100))
            (i32.store (i32.const 4000) (i32.const 7)))
          (func (export "handle_request") (result i64)
            (local $n i64)
            (if (i32.eqz
                  (i32.and
                    (i32.and (i32.eq (global.get $g) (i32.const 100))
                             (i32.eq (i32.load (i32.const 4000)) (i32.const 7)))
                    (i32.and
                      (i32.and (i32.eqz (i32.load (i32.const 5000)))
                               (i32.eqz (i32.load (i32.const 5004))))
                      (i32.and (i32.eqz (i32.load8_u (i32.const 6000)))
                               (i32.eq (memory.size) (i32.const 1))))))
              (then (call $set_status (i32.const 500)) (return (i64.const 0))))
            (global.set $g (i32.add (global.get $g) (i32.const 1)))
            (i32.store (i32.const 5000) (i32.const 9))
            (drop (call $get_uri (i32.const 6000) (i32.const 256)))
            (local.set $n (call $get_values (i32.const 0) (i32.const 0) (i32.const 4)
                                            (i32.const 7000) (i32.const 64)))
            (if (i64.ne (local.get $n) (i64.const 0))
              (then
                (if (i32.eq (i32.load8_u (i32.const 7000)) (i32.const 103))
                  (then (drop (memory.grow (i32.const 1)))))
                (if (i32.eq (i32.load8_u (i32.const 7000)) (i32.const 116))
                  (then unreachable))))
            (i64.const 1))
          (func (export "handle_response") (param i32 i32)
            (i32.store (i32.const 5004) (i32.const 11))))"#
    ))
    .unwrap()
}

/// The value of `series` (a metric's name and labels) on the admin
/// listener's `/metrics`.
fn metric(s: &Server, series: &str) -> u64 {
    let admin = s.admin.expect("the admin listener is announced");
    let r = common::Conn::open(admin).request("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    let text = r.text();
    let line = text
        .lines()
        .find(|l| l.strip_prefix(series).is_some_and(|v| v.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `wasmgate_snapshot_instances_total{from="pool"}`.
fn pool_hits(s: &Server) -> u64 {
    metric(s, "wasmgate_snapshot_instances_total{from=\"pool\"}")
}

/// `wasmgate_instance_pool_bytes`.
fn pool_bytes(s: &Server) -> u64 {
    metric(s, "wasmgate_instance_pool_bytes")
}

/// A server with the `pooled` middleware (its table of `table` elements)
/// in front of `/p`, `server` as its `[server]` keys, once the first
/// request has run `_start` and the snapshot is made.
fn pooled_server(server_keys: &str, table: u32) -> Server {
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[server]\n{server_keys}\n\
         [[middleware]]\nname = \"pooled\"\nmodule = \"pooled.wasm\"\n\
         [[function]]\nroute = \"/p\"\nmodule = \"hello.wasm\"\nmiddleware = [\"pooled\"]\n"
    );
    let s = server(&[("pooled.wasm", pooled(table))], &config);
    assert_eq!(s.get("/p?first").status, 200);
    s.wait_for_log("middleware pooled: instances start from a snapshot taken after `_start`");
    s
}

#[test]
fn a_pooled_instance_starts_each_request_in_the_snapshots_state_at_the_same_fuel() {
    let s = pooled_server("", 1);
    for i in 0..8 {
        let r = s.get(&format!("/p?request-{i}"));
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"Hello from wasmgate!\n"[..]),
            "{i}: {r:?}"
        );
    }
    // Instances were reused (a worker's requests, one at a time).
    let reused = pool_hits(&s);
    assert!(reused >= 6, "{reused} instances from the pool");
    // Each request from the snapshot is charged the same fuel, whether
    // its instance was new or reused.
    let log = s.wait_for_log_lines("GET /p?request-", 8);
    let fuel: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("GET /p?request-"))
        .filter_map(|l| l.split(" fuel=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(fuel.len(), 8, "{log}");
    assert!(fuel.iter().all(|f| *f == fuel[0]), "{fuel:?}");
    // An instance whose memory grew, or that trapped after changing its
    // state, is not reused: the next request still sees the snapshot's.
    let r = s.get_with("/p?grow", &[("x-mw", "grow")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.get("/p?after-grow").status, 200);
    s.get_with("/p?trap", &[("x-mw", "trap")])
        .assert_error(502, "trap");
    assert_eq!(s.get("/p?after-trap").status, 200);
    assert!(pool_hits(&s) > reused);
    s.assert_healthy();
}

#[test]
fn idle_instances_of_a_snapshot_a_reload_left_behind_are_dropped() {
    // One worker, requests one at a time: one idle instance.
    let s = pooled_server("", 1);
    for _ in 0..3 {
        assert_eq!(s.get("/p").status, 200);
    }
    let one = pool_bytes(&s);
    assert!(one > 0, "nothing idle in the pool");
    // A reload starts a new module cache: a new snapshot, and the old one
    // is gone once no request holds the old config.
    s.signal("HUP");
    s.wait_for_log("reloaded ");
    assert_eq!(s.get("/p?after-reload").status, 200);
    s.wait_for_log_lines(
        "middleware pooled: instances start from a snapshot taken after `_start`",
        2,
    );
    let hits = pool_hits(&s);
    for i in 0..3 {
        let r = s.get(&format!("/p?new-{i}"));
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"Hello from wasmgate!\n"[..]),
            "{r:?}"
        );
    }
    assert!(
        pool_hits(&s) > hits,
        "the new snapshot's instances are pooled"
    );
    // Only the new snapshot's instance is idle: the old one's went at the
    // first take after its snapshot was dropped.
    assert_eq!(pool_bytes(&s), one);
    s.assert_healthy();
}

/// A middleware that writes 60,000 bytes at 1000 (`/` then `a`s) and,
/// by `x-mw`, sets a header of that name with an invalid value (`name`),
/// the URI (`uri`) or the method (`method`) to them.
fn oversized() -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {PRELUDE}
          (func (export "handle_request") (result i64)
            (memory.fill (i32.const 1000) (i32.const 97) (i32.const 60000))
            (i32.store8 (i32.const 1000) (i32.const 47))
            (drop (call $get_values (i32.const 0) (i32.const 0) (i32.const 4)
                                    (i32.const 62000) (i32.const 64)))
            (if (i32.eq (i32.load8_u (i32.const 62000)) (i32.const 110))
              (then (call $set_header (i32.const 0) (i32.const 1001) (i32.const 59999)
                                      (i32.const 48) (i32.const 10))))
            (if (i32.eq (i32.load8_u (i32.const 62000)) (i32.const 117))
              (then (call $set_uri (i32.const 1000) (i32.const 60000))))
            (if (i32.eq (i32.load8_u (i32.const 62000)) (i32.const 109))
              (then (call $set_method (i32.const 1001) (i32.const 59999))))
            (i64.const 1))
          (func (export "handle_response") (param i32 i32)))"#
    ))
    .unwrap()
}

#[test]
fn what_a_middleware_sets_is_held_to_the_heads_limit_and_its_errors_stay_short() {
    let s = server(
        &[("big.wasm", oversized())],
        "[[middleware]]\nname = \"big\"\nmodule = \"big.wasm\"\n\
         [[function]]\nroute = \"/big\"\nmodule = \"hello.wasm\"\nmiddleware = [\"big\"]\n",
    );
    for (which, says) in [
        ("name", "invalid value for header `aaaa"),
        (
            "uri",
            "the URI (60000 bytes) would exceed the server's max_header_bytes",
        ),
        (
            "method",
            "the method (59999 bytes) would exceed the server's max_header_bytes",
        ),
    ] {
        let r = s.get_with("/big", &[("x-mw", which)]);
        let json = r.assert_error(502, "trap");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(says), "{which}: {message}");
        assert!(
            r.body.len() < 2048,
            "{which}: {} bytes of body",
            r.body.len()
        );
    }
    let log = s.wait_for_log_lines("middleware big [", 3);
    assert!(log.contains("… (59999 bytes)`"), "{log}");
    assert!(log.lines().all(|l| l.len() < 2048), "a long log line");
    // Within the limit, the request goes on.
    let r = s.get("/big");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from wasmgate!\n")
    );
    s.assert_healthy();
}

/// Four requests to `s`'s `/p` after its first: none from the pool.
fn assert_never_pooled(s: &Server) {
    for _ in 0..4 {
        assert_eq!(s.get("/p").status, 200);
    }
    assert_eq!(pool_hits(s), 0);
    s.assert_healthy();
}

#[test]
fn an_instance_over_a_quarter_of_the_pool_is_not_kept() {
    // 100,000 table elements count 800 KB, over a quarter of 2 MiB.
    assert_never_pooled(&pooled_server("", 100_000));
}

#[test]
fn instance_pool_0_instantiates_every_request() {
    assert_never_pooled(&pooled_server("instance_pool = 0\n", 1));
}
