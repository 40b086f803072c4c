//! Guest responses over the limits the server enforces (header count), for
//! both ABIs, served and under `wasmgate run`; and the access line's
//! escaping of the request target.

mod common;

use common::{Server, TempDir, function, wasmgate};

/// A native module whose response declares `count` header fields `a: ""`.
fn native_many_headers(count: u32) -> Vec<u8> {
    let mut response = vec![0xc8, 0x01]; // status 200
    common::leb128(count.into(), &mut response);
    for _ in 0..count {
        response.extend_from_slice(b"\x01a\x00");
    }
    response.push(0); // empty body
    let data: String = response.iter().map(|b| format!("\\{b:02x}")).collect();
    let len = response.len();
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 2)
  (data (i32.const 65536) "{data}")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 16))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 65536) (i64.const 32)) (i64.const {len}))))"#
    ))
    .unwrap()
}

/// A wasi-json module printing one header with `count` values.
fn wasi_many_headers(count: usize) -> Vec<u8> {
    wasi_printing(&format!(
        r#"{{"headers":{{"a":[{}]}},"body":"x"}}"#,
        vec![r#""x""#; count].join(",")
    ))
}

/// A wasi-json module printing `json` to stdout.
fn wasi_printing(json: &str) -> Vec<u8> {
    let data = json.replace('\\', "\\\\").replace('"', "\\\"");
    let len = json.len();
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 65536) "{data}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))"#
    ))
    .unwrap()
}

#[test]
fn too_many_response_headers_are_bad_responses_for_both_abis() {
    let dir = TempDir::new("manyheaders");
    dir.write("native.wasm", native_many_headers(5000));
    dir.write("wasi.wasm", wasi_many_headers(5000));
    dir.write("native100.wasm", native_many_headers(100));
    dir.copy(&function("hello.wasm"), "hello.wasm");
    let s = Server::serve_dir(dir.path());

    let r = s.get("/native");
    r.assert_error(502, "bad-response");
    assert!(r.body.is_ascii());
    // The warning is written before the access line: wait for the later.
    let logged = s.wait_for_log("fn=native status=502 error=bad-response");
    assert!(logged.contains("5000 header fields, more than the 100 allowed"));

    let r = s.get("/wasi");
    r.assert_error(502, "bad-response");
    s.wait_for_log("more than the 100 header fields allowed");

    // The limit itself is fine.
    let r = s.get("/native100");
    assert_eq!(r.status, 200, "{r:?}");
    s.assert_healthy();
}

#[test]
fn run_refuses_what_the_server_refuses() {
    let dir = TempDir::new("runheaders");
    let native = dir.write("native.wasm", native_many_headers(5000));
    let wasi = dir.write("wasi.wasm", wasi_many_headers(5000));
    let ok = dir.write("native100.wasm", native_many_headers(100));

    let out = wasmgate([std::ffi::OsStr::new("run"), native.as_os_str()]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr
            .contains("5000 header fields, more than the 100 allowed (bad-response, HTTP 502)"),
        "{out:?}"
    );

    let out = wasmgate([std::ffi::OsStr::new("run"), wasi.as_os_str()]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("more than the 100 header fields allowed"),
        "{out:?}"
    );

    // What only the response check refuses: a name that is not a token, a
    // field the host owns.
    for (name, json, why) in [
        (
            "badname.wasm",
            r#"{"status":200,"headers":{"a b":"1"}}"#,
            "invalid header field `a b`",
        ),
        (
            "hostowned.wasm",
            r#"{"status":200,"headers":{"X-Trace-Id":"1"}}"#,
            "header field `x-trace-id` is set by the host",
        ),
    ] {
        let module = dir.write(name, wasi_printing(json));
        let out = wasmgate([std::ffi::OsStr::new("run"), module.as_os_str()]);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(out.stderr.contains(why), "{out:?}");
        assert!(out.stderr.contains("(bad-response, HTTP 502)"), "{out:?}");
    }

    let out = wasmgate([std::ffi::OsStr::new("run"), ok.as_os_str()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("HTTP 200\n"), "{out:?}");
}

#[test]
fn access_line_escapes_the_request_target() {
    let dir = TempDir::new("escapetarget");
    dir.copy(&function("hello.wasm"), "hello.wasm");
    let s = Server::serve_dir(dir.path());
    // The parser refuses control bytes and non-ASCII in a target; a
    // backslash is what still reaches the log, and it is escaped (`\\`), so
    // that a target cannot write what reads as an escape sequence (`\n`).
    let r = s.raw(b"GET /hello?x=\\nINFO HTTP/1.1\r\nhost: a\r\n\r\n");
    assert_eq!(r.status, 200, "{r:?}");
    let logged = s.wait_for_log(r"/hello?x=\\nINFO");
    assert!(!logged.contains(r"x=\nINFO"), "{logged}");
    s.assert_healthy();
}
