//! Guests that make host functions do a lot of work per call (big
//! `random_get`s, huge `fd_write`s to stderr, huge `wasmgate.log` messages,
//! response header floods) pay for it in fuel and cannot hold the server's
//! one thread: they end in their documented error while other requests are
//! still answered.

mod common;

use std::sync::Arc;
use std::thread;

use common::{Server, TempDir, function};

/// `random_get` over the whole 1 MiB memory, for ever.
const RANDOM_BOMB: &str = r#"
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 16)
  (func (export "_start")
    (loop $again
      (drop (call $random (i32.const 0) (i32.const 1048576)))
      (br $again))))
"#;

/// `fd_write` to stderr of 1024 iovecs that each cover the whole 1 MiB
/// memory (1 GiB per call), for ever.
const STDERR_BOMB: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 16)
  (func (export "_start")
    (local $i i32)
    (loop $fill
      (i32.store (i32.mul (local.get $i) (i32.const 8)) (i32.const 0))
      (i32.store (i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.const 4)) (i32.const 1048576))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 1024))))
    (loop $again
      (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1024) (i32.const 1048000)))
      (br $again))))
"#;

/// A native module whose handler logs the whole 1 MiB memory, for ever.
const LOG_BOMB: &str = r#"
(module
  (import "wasmgate" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 16)
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (loop $again
      (call $log (i32.const 3) (i32.const 0) (i32.const 1048576))
      (br $again))
    (i64.const 0)))
"#;

/// A native module answering 1 byte of status + 20,000 empty headers.
fn header_flood() -> Vec<u8> {
    // postcard Response: status 200 (varint c8 01), header count, headers
    // ("a", ""), empty body.
    let count: u32 = 20_000;
    let mut msg = vec![0xc8, 0x01];
    let mut n = count;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            msg.push(byte);
            break;
        }
        msg.push(byte | 0x80);
    }
    for _ in 0..count {
        msg.extend_from_slice(&[1, b'a', 0]);
    }
    msg.push(0);
    let data: String = msg.iter().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 2)
  (data (i32.const 4096) "{data}")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.const {len}))))"#,
        len = msg.len()
    ))
    .unwrap()
}

fn server(dir: &TempDir) -> Server {
    let compile = |name: &str, wat: &str| {
        dir.write(name, wat::parse_str(wat).unwrap());
    };
    compile("random.wasm", RANDOM_BOMB);
    compile("stderr.wasm", STDERR_BOMB);
    compile("log.wasm", LOG_BOMB);
    dir.write("headers.wasm", header_flood());
    let files = ["random", "stderr", "log", "headers"]
        .map(|n| (format!("{n}.wasm"), dir.path().join(format!("{n}.wasm"))));
    let mut files: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    files.push(("hello.wasm", function("hello.wasm")));
    // A generous wall clock: the fuel budget must be what stops them.
    Server::with_config(
        "[server]\nfunctions_dir = \".\"\n\n[limits]\nfuel = 20_000_000\ntimeout = \"60s\"\n",
        &files,
    )
}

#[test]
fn host_work_is_paid_in_fuel_and_ends_in_deadline() {
    let dir = TempDir::new("host-work");
    let s = Arc::new(server(&dir));
    for name in ["random", "stderr", "log"] {
        // While the bomb runs, another request is answered.
        let bomb = {
            let s = Arc::clone(&s);
            let name = name.to_owned();
            thread::spawn(move || s.get(&format!("/{name}")))
        };
        s.assert_healthy();
        let r = bomb.join().unwrap();
        let json = r.assert_error(504, "deadline");
        assert_eq!(json["function"], name, "{json}");
        s.wait_for_log(&format!("fn={name} status=504 error=deadline fuel="));
    }
    s.assert_healthy();
}

#[test]
fn a_flood_of_response_headers_is_a_bad_response() {
    let dir = TempDir::new("header-flood");
    let s = server(&dir);
    let r = s.get("/headers");
    r.assert_error(502, "bad-response");
    assert!(
        r.message().contains("20000 header fields"),
        "{}",
        r.message()
    );
    s.assert_healthy();
}
