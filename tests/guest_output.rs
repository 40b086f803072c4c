//! What a guest controls beyond its body, the host checks: response header
//! values (RFC 9110 field values only) and names (not the host's own),
//! log text (escaped, one line per log call), and how it ends
//! (`proc_exit`).

mod common;

use common::{Server, TempDir, function};

/// A server with `name.wasm` built from `wasm`, and `hello`.
fn serve(name: &str, wasm: Vec<u8>) -> (TempDir, Server) {
    let dir = TempDir::new("guest-output");
    let file = format!("{name}.wasm");
    let path = dir.write(&file, wasm);
    let s = Server::with_config(
        "[server]\nfunctions_dir = \".\"\n",
        &[
            (file.as_str(), path),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    (dir, s)
}

/// `bytes` as a WAT string literal.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A native module answering 200 with one header `name: value`.
fn native_header(name: &str, value: &[u8]) -> Vec<u8> {
    // postcard Response: status 200 (varint c8 01), 1 header, empty body.
    let mut msg = vec![0xc8, 0x01, 1, name.len() as u8];
    msg.extend_from_slice(name.as_bytes());
    msg.push(value.len() as u8);
    msg.extend_from_slice(value);
    msg.push(0);
    common::native_answering(&msg, 1)
}

/// A wasi command that writes `stdout` and returns.
fn wasi_stdout(stdout: &[u8]) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\04\00\00{len}")
  (data (i32.const 1024) "{data}")
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
        len = wat_bytes(&(stdout.len() as u32).to_le_bytes()),
        data = wat_bytes(stdout)
    ))
    .unwrap()
}

#[test]
fn header_values_with_control_bytes_are_bad_responses() {
    for (i, value) in [&b"a\x01b"[..], b"a\x7fb", b"\x1b[31mred", b"a\x0bb"]
        .into_iter()
        .enumerate()
    {
        let (_d, s) = serve("native", native_header("x-custom", value));
        let r = s.get("/native");
        r.assert_error(502, "bad-response");
        assert!(r.message().contains("x-custom"), "{i}: {}", r.message());
        s.assert_healthy();

        let json = serde_json::json!({
            "status": 200,
            "headers": {"x-custom": String::from_utf8_lossy(value)},
            "body": "x",
        });
        let (_d, s) = serve("wasi", wasi_stdout(json.to_string().as_bytes()));
        s.get("/wasi").assert_error(502, "bad-response");
        s.assert_healthy();
    }
}

#[test]
fn header_values_may_hold_tabs_and_spaces() {
    let (_d, s) = serve("native", native_header("x-custom", b"a\tb c"));
    let r = s.get("/native");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-custom"), Some("a\tb c"));
}

#[test]
fn guests_cannot_set_the_hosts_own_headers() {
    for name in ["x-wasmgate-error", "x-trace-id", "X-Trace-Id"] {
        let (_d, s) = serve("native", native_header(name, b"forged"));
        let r = s.get("/native");
        r.assert_error(502, "bad-response");
        assert!(r.message().contains("set by the host"), "{}", r.message());
        s.assert_healthy();

        let json = serde_json::json!({"status": 200, "headers": {name: "forged"}, "body": "x"});
        let (_d, s) = serve("wasi", wasi_stdout(json.to_string().as_bytes()));
        let r = s.get("/wasi");
        r.assert_error(502, "bad-response");
        assert_ne!(r.header("x-trace-id"), Some("forged"));
        s.assert_healthy();
    }
}

/// A native module that logs `text` at info level, then traps.
fn native_log(text: &[u8]) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasmgate" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "{data}")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (call $log (i32.const 3) (i32.const 4096) (i32.const {len}))
    unreachable))"#,
        data = wat_bytes(text),
        len = text.len()
    ))
    .unwrap()
}

const FORGED: &str = "[INFO  access] GET /admin fn=admin status=200 error=- fuel=1 us=1 trace=x";

#[test]
fn guest_log_text_is_escaped_on_one_line() {
    let text =
        format!("x\n{FORGED}\r\n\u{1b}[2K\u{2028}{FORGED}\u{202e}\u{85}\\u{{a}} \"ok\" caf\u{e9}");
    let (_d, s) = serve("logger", native_log(text.as_bytes()));
    s.get("/logger").assert_error(502, "trap");
    let log = s.wait_for_log("GET /logger fn=logger status=502");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("GET /admin")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(line.contains(" guest] [logger "), "{line}");
    assert!(
        !line.contains('\u{1b}') && !line.contains('\u{2028}'),
        "{line:?}"
    );
    assert!(
        !line.contains('\u{202e}') && !line.contains('\u{85}'),
        "{line:?}"
    );
    for escaped in [
        "x\\n[INFO  access]",
        "\\r\\n\\u{1b}[2K\\u{2028}[INFO",
        "\\u{202e}\\u{85}\\\\u{a} \"ok\" caf\u{e9}",
    ] {
        assert!(line.contains(escaped), "{escaped} not in {line:?}");
    }
    s.assert_healthy();
}

#[test]
fn guest_stderr_is_escaped_line_by_line() {
    let text = format!("one\u{1b}[2K{FORGED}\u{2028}two\nthree\n");
    let wasm = wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\04\00\00{len}")
  (data (i32.const 1024) "{data}")
  (func (export "_start")
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
        len = wat_bytes(&(text.len() as u32).to_le_bytes()),
        data = wat_bytes(text.as_bytes())
    ))
    .unwrap();
    let (_d, s) = serve("stderr", wasm);
    // No stdout: an empty 200 (plain_output = "text").
    let r = s.get("/stderr");
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    let log = s.wait_for_log("GET /stderr fn=stderr status=200");
    let guest: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("guest] [stderr "))
        .collect();
    assert_eq!(guest.len(), 2, "{log}");
    assert!(
        guest[0].ends_with("one\\u{1b}[2K[INFO  access] GET /admin fn=admin status=200 error=- fuel=1 us=1 trace=x\\u{2028}two"),
        "{:?}",
        guest[0]
    );
    assert!(guest[1].ends_with("] three"), "{:?}", guest[1]);
}

/// A wasi command whose start function writes a response and calls
/// `proc_exit(code)`; `_start` would trap if it ran.
fn wasi_exit_in_start(code: i32) -> Vec<u8> {
    let stdout = br#"{"status":201,"body":"from start"}"#;
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\04\00\00{len}")
  (data (i32.const 1024) "{data}")
  (func $init
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (call $exit (i32.const {code})))
  (start $init)
  (func (export "_start") unreachable))"#,
        len = wat_bytes(&(stdout.len() as u32).to_le_bytes()),
        data = wat_bytes(stdout)
    ))
    .unwrap()
}

#[test]
fn wasi_proc_exit_0_in_a_start_function_is_success() {
    let (_d, s) = serve("exit0", wasi_exit_in_start(0));
    let r = s.get("/exit0");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.text(), "from start");
    let (_d, s) = serve("exit3", wasi_exit_in_start(3));
    let r = s.get("/exit3");
    r.assert_error(502, "exit-code");
    assert!(r.message().contains("code 3"), "{}", r.message());
    s.assert_healthy();
}

#[test]
fn native_proc_exit_is_an_exit_code_error_whatever_the_code() {
    for (code, start) in [(0, false), (0, true), (7, false)] {
        let call = format!("(call $exit (i32.const {code}))");
        let (init, handle) = if start {
            (format!("(func $init {call}) (start $init)"), String::new())
        } else {
            (String::new(), call)
        };
        let wasm = wat::parse_str(format!(
            r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  {init}
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    {handle}
    (i64.const 0)))"#
        ))
        .unwrap();
        let (_d, s) = serve("native", wasm);
        let r = s.get("/native");
        r.assert_error(502, "exit-code");
        assert!(
            r.message().contains(&format!("code {code}")),
            "{code} {start}: {}",
            r.message()
        );
        s.assert_healthy();
    }
}
