//! Gojinn compatibility: what Gojinn's docs, SDKs and example functions
//! rely on, served over real sockets. Request header names in Go's
//! canonical form, response headers as a map of arrays or of strings, nil
//! maps on error paths, plain-text output, `gojinn.host_log` and the stubs
//! of the other `gojinn` imports, env and args.
//!
//! The guests are WAT commands printing what Go's `encoding/json` prints,
//! and the Rust examples in `functions/`; functions built with Go and Zig
//! come with their toolchains.

mod common;

use common::{Server, TempDir, function, wasmgate};

/// `bytes` as a WAT string literal.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A WASI command whose `_start` runs `body`, with `imports` (WAT import
/// lines), `data` segments `(offset, bytes)` (offsets from 1024; 0..16 is
/// the iovec) and `$print (ptr, len)`, which writes to stdout.
fn command(imports: &str, body: &str, data: &[(u32, &[u8])]) -> Vec<u8> {
    let data: String = data
        .iter()
        .map(|(at, bytes)| format!("(data (i32.const {at}) \"{}\")\n", wat_bytes(bytes)))
        .collect();
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  {data}
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") {body}))"#
    ))
    .unwrap()
}

/// A command that prints `stdout`.
fn printing(stdout: &[u8]) -> Vec<u8> {
    command(
        "",
        &format!(
            "(call $print (i32.const 1024) (i32.const {}))",
            stdout.len()
        ),
        &[(1024, stdout)],
    )
}

/// A server with `hello.wasm` and `modules` in its functions directory.
fn serve(modules: &[(&str, Vec<u8>)], extra: &str) -> (TempDir, Server) {
    let dir = TempDir::new("gojinn");
    let mut files = vec![("hello.wasm", function("hello.wasm"))];
    for (name, bytes) in modules {
        files.push((name, dir.write(name, bytes)));
    }
    let config = format!("[server]\nfunctions_dir = \".\"\n{extra}");
    (dir, Server::with_config(&config, &files))
}

#[test]
fn request_header_names_are_gos_canonical_names() {
    let (_d, s) = serve(
        &[(
            "headers.wasm",
            std::fs::read(function("headers.wasm")).unwrap(),
        )],
        "",
    );
    let r = s.get_with(
        "/headers",
        &[
            ("authorization", "Bearer t0ken"),
            ("content-type", "application/json"),
            ("x-request-id", "req-1"),
            ("WWW-Authenticate", "Basic"),
            ("content-md5", "Q2hlY2s="),
            ("x-multi", "1"),
            ("X-MULTI", "2"),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let headers = &r.json()["headers"];
    // What Gojinn's examples look up: `req.Headers["Authorization"]`.
    assert_eq!(
        headers["Authorization"],
        serde_json::json!(["Bearer t0ken"])
    );
    assert_eq!(
        headers["Content-Type"],
        serde_json::json!(["application/json"])
    );
    assert_eq!(headers["X-Request-Id"], serde_json::json!(["req-1"]));
    assert_eq!(headers["Www-Authenticate"], serde_json::json!(["Basic"]));
    assert_eq!(headers["Content-Md5"], serde_json::json!(["Q2hlY2s="]));
    // Fields whose names differ only in case are one list, in order.
    assert_eq!(headers["X-Multi"], serde_json::json!(["1", "2"]));
    let names: Vec<&String> = headers.as_object().unwrap().keys().collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(|c: char| c.is_ascii_uppercase())),
        "{names:?}"
    );
    s.assert_healthy();
}

#[test]
fn response_headers_may_be_a_map_of_arrays_or_of_strings() {
    let stdout = br#"{"status":200,"headers":{"Content-Type":["text/html"],"X-One":"1","X-Many":["a","b"]},"body":"<p>hi</p>"}"#;
    let (_d, s) = serve(&[("shapes.wasm", printing(stdout))], "");
    let r = s.get("/shapes");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(r.header("x-one"), Some("1"));
    let many: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "x-many")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(many, ["a", "b"]);
    assert_eq!(r.text(), "<p>hi</p>");
    s.assert_healthy();
}

#[test]
fn nil_maps_and_untagged_go_structs_on_error_paths_are_responses() {
    let cases: [(&str, &[u8], u16, &str); 4] = [
        // A Go response struct with a nil map, as Gojinn's examples print
        // it when they refuse a request.
        (
            "nilmap",
            b"{\"status\":401,\"headers\":null,\"body\":\"{\\\"error\\\": \\\"unauthorized\\\"}\"}\n",
            401,
            r#"{"error": "unauthorized"}"#,
        ),
        // The Go SDK's SendError, as json.Encoder writes it.
        (
            "senderror",
            b"{\"status\":500,\"headers\":{\"Content-Type\":[\"application/json\"],\"X-Powered-By\":[\"Gojinn SDK\"]},\"body\":\"{\\\"error\\\": \\\"boom\\\"}\"}\n",
            500,
            r#"{"error": "boom"}"#,
        ),
        // A struct without json tags: Go prints the field names as they are.
        (
            "untagged",
            br#"{"Status":404,"Headers":null,"Body":"no such order"}"#,
            404,
            "no such order",
        ),
        (
            "nilbody",
            br#"{"status":204,"headers":{"X-A":null},"body":null}"#,
            204,
            "",
        ),
    ];
    let modules: Vec<(String, Vec<u8>)> = cases
        .iter()
        .map(|(name, stdout, ..)| (format!("{name}.wasm"), printing(stdout)))
        .collect();
    let modules: Vec<(&str, Vec<u8>)> = modules
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let (_d, s) = serve(&modules, "");
    for (name, _, status, body) in cases {
        let r = s.get(&format!("/{name}"));
        assert_eq!(r.status, status, "{name}: {r:?}");
        assert!(r.header("x-wasmgate-error").is_none(), "{name}: {r:?}");
        assert_eq!(r.text(), body, "{name}");
    }
    s.assert_healthy();
}

#[test]
fn plain_text_output_is_the_body() {
    let (_d, s) = serve(
        &[
            ("println.wasm", printing(b"Hello from Go!\n")),
            ("data.wasm", printing(b"{\"message\":\"hi\"}\n")),
        ],
        "",
    );
    // A Go `main` that only calls fmt.Println.
    let r = s.get("/println");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), "Hello from Go!\n");
    // JSON that is not a response object (no status) is output too.
    let r = s.get("/data");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "{\"message\":\"hi\"}\n");
    s.assert_healthy();
}

const HOST_LOG: &str = r#"(import "gojinn" "host_log" (func $log (param i32 i32 i32)))"#;

#[test]
fn host_log_writes_escaped_lines_to_the_log() {
    let info = b"info from the sdk\n[INFO  access] forged";
    let error = b"error from the sdk";
    let body = format!(
        "(call $log (i32.const 1) (i32.const 2048) (i32.const {}))
         (call $log (i32.const 3) (i32.const 3072) (i32.const {}))
         ;; Out of bounds: Gojinn skips it, and so does wasmgate.
         (call $log (i32.const 1) (i32.const 65530) (i32.const 100))
         (call $print (i32.const 1024) (i32.const 2))",
        info.len(),
        error.len()
    );
    let module = command(
        HOST_LOG,
        &body,
        &[(1024, b"ok"), (2048, info), (3072, error)],
    );
    let (_d, s) = serve(&[("sdklog.wasm", module)], "");
    let r = s.get("/sdklog");
    assert_eq!((r.status, r.text()), (200, "ok".to_owned()), "{r:?}");
    let log = s.wait_for_log("error from the sdk");
    let line = log
        .lines()
        .find(|l| l.contains("info from the sdk"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.starts_with("[INFO  guest] [sdklog "), "{line}");
    assert!(
        line.ends_with("info from the sdk\\n[INFO  access] forged"),
        "{line}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("error from the sdk"))
        .unwrap();
    assert!(line.starts_with("[ERROR guest] [sdklog "), "{line}");
    s.assert_healthy();
}

/// Imports Gojinn functions wasmgate does not provide (the KV ones are
/// provided: tests/kv.rs), one without a result, one returning an i32 and
/// `host_ask_ai` with the type its Rust SDK declares (a u64), calls each,
/// and prints `miss` when every result is the error value, else `hit!`.
const KV: &str = r#"
  (import "gojinn" "host_ws_write" (func $set (param i32 i32 i32 i32)))
  (import "gojinn" "host_mutex_lock" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "gojinn" "host_ask_ai" (func $ai (param i32 i32 i32 i32) (result i64)))"#;

const KV_BODY: &str = "
    (call $set (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))
    (if (i32.and
          (i32.eq (call $get (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 64)) (i32.const -1))
          (i64.eq (call $ai (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 64)) (i64.const -1)))
      (then (call $print (i32.const 1024) (i32.const 4)))
      (else (call $print (i32.const 1028) (i32.const 4))))";

#[test]
fn other_gojinn_imports_link_to_stubs_that_return_errors_and_log_once() {
    let module = command(KV, KV_BODY, &[(1024, b"misshit!")]);
    let (d, s) = serve(&[("kv.wasm", module)], "");
    for _ in 0..3 {
        let r = s.get("/kv");
        assert_eq!((r.status, r.text()), (200, "miss".to_owned()), "{r:?}");
    }
    s.wait_for_log("GET /kv fn=kv status=200");
    let log = s.wait_for_log("gojinn.host_ask_ai is not provided");
    // Once per module load, not per call.
    for (name, value) in [
        ("host_mutex_lock", "-1"),
        ("host_ask_ai", "-1"),
        ("host_ws_write", "nothing"),
    ] {
        let needle =
            format!("gojinn.{name} is not provided by wasmgate; the call returned {value}");
        assert_eq!(log.matches(&needle).count(), 1, "{needle}\n{log}");
    }
    s.assert_healthy();

    // `check` lists them.
    let out = wasmgate(["check", d.path().join("kv.wasm").to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for line in [
        "stubbed: gojinn.host_ws_write is not provided; a call returns nothing",
        "stubbed: gojinn.host_mutex_lock is not provided; a call returns -1",
        "stubbed: gojinn.host_ask_ai is not provided; a call returns -1",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
    // A module with only `host_log` has no stubs.
    let logging = d.write("log.wasm", command(HOST_LOG, "", &[]));
    let out = wasmgate(["check", logging.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("stubbed"), "{}", out.stdout);
}

#[test]
fn gojinn_host_calls_are_charged_fuel() {
    // 1,000 calls of a stub, and of host_log with a 1 KiB message.
    let calls = |call: &str| {
        format!(
            "(local $i i32)
             (loop $again
               {call}
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
             (call $print (i32.const 1024) (i32.const 2))"
        )
    };
    let stub = command(
        r#"(import "gojinn" "host_mutex_lock" (func $get (param i32 i32 i32 i32) (result i32)))"#,
        &calls("(drop (call $get (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))"),
        &[(1024, b"ok")],
    );
    let log = command(
        HOST_LOG,
        &calls("(call $log (i32.const 1) (i32.const 2048) (i32.const 1024))"),
        &[(1024, b"ok")],
    );
    let (_d, s) = serve(
        &[("stubcalls.wasm", stub), ("logcalls.wasm", log)],
        "[limits]\nmax_log = \"1MiB\"\n",
    );
    for name in ["stubcalls", "logcalls"] {
        let r = s.get(&format!("/{name}"));
        assert_eq!(
            (r.status, r.text()),
            (200, "ok".to_owned()),
            "{name}: {r:?}"
        );
    }
    // `cost::STUB` is 400 per call; the loop itself is ~10 instructions.
    let fuel = s.logged_fuel("stubcalls");
    assert!((400_000..450_000).contains(&fuel), "stub: {fuel}");
    // `cost::LOG` (250 + 64 per KiB) and `cost::LOG_LINE` (4,000 + 16,384
    // per KiB written) per call: more than 20,000 each.
    let fuel = s.logged_fuel("logcalls");
    assert!(fuel > 20_000_000, "host_log: {fuel}");
    s.assert_healthy();
}

#[test]
fn gojinn_imports_that_cannot_be_provided_are_refused_at_load() {
    let dir = TempDir::new("gojinn-refused");
    for (name, import, why) in [
        (
            "badlog.wasm",
            r#"(import "gojinn" "host_log" (func (param i32 i32)))"#,
            "wrong signature for this gojinn host function",
        ),
        (
            "tworesults.wasm",
            r#"(import "gojinn" "host_pair" (func (result i32 i32)))"#,
            "a stub can return at most one number",
        ),
        (
            "funcref.wasm",
            r#"(import "gojinn" "host_ref" (func (result funcref)))"#,
            "a stub can return at most one number",
        ),
    ] {
        let module = dir.write(name, command(import, "", &[]));
        let out = wasmgate(["check", module.to_str().unwrap()]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.contains(why), "{name}: {}", out.stdout);
    }
}

#[test]
fn env_and_args_are_the_configured_ones() {
    let (_d, s) = serve(
        &[("env.wasm", std::fs::read(function("env.wasm")).unwrap())],
        "\n[[function]]\nroute = \"/env\"\nmodule = \"env.wasm\"\n\
         env = { GOJINN_MODE = \"prod\" }\nargs = [\"--port\", \"8080\"]\n",
    );
    let r = s.get("/env");
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["args"], serde_json::json!(["env", "--port", "8080"]));
    assert_eq!(v["env"], serde_json::json!({"GOJINN_MODE": "prod"}));
    s.assert_healthy();
}
