//! Guests that make host functions do a lot of work per call (big
//! `random_get`s, huge `fd_write`s to stderr, huge `wasmgate.log` messages,
//! response header floods) pay for it in fuel and cannot hold the server's
//! one thread: they end in their documented error while other requests are
//! still answered.

mod common;

use std::sync::Arc;
use std::thread;

use common::{Server, TempDir, function};
use wasmgate::internals::runtime::MAX_IO_PER_CALL;
use wasmgate::internals::runtime::cost;

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
    common::leb128(count.into(), &mut msg);
    for _ in 0..count {
        msg.extend_from_slice(&[1, b'a', 0]);
    }
    msg.push(0);
    common::native_answering(&msg, 2)
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
    // A small budget, so that the bombs end quickly even on a busy machine
    // or under emulation, and a generous wall clock: the fuel budget must be
    // what stops them.
    Server::with_config(
        "[server]\nfunctions_dir = \".\"\n\n[limits]\nfuel = 20_000_000\ntimeout = \"600s\"\n",
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

/// A wasi command whose `_start` runs `body` (with `$random`, `$exit` and a
/// 2 MiB memory), then returns.
fn wasi_command(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 32)
  (func (export "_start") {body}))"#
    ))
    .unwrap()
}

fn serve(name: &str, wasm: Vec<u8>, limits: &str) -> (TempDir, Server) {
    let dir = TempDir::new("host-work");
    let file = format!("{name}.wasm");
    let path = dir.write(&file, wasm);
    let s = Server::with_config(
        &format!("[server]\nfunctions_dir = \".\"\n\n[limits]\ntimeout = \"600s\"\n{limits}\n"),
        &[
            (file.as_str(), path),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    (dir, s)
}

#[test]
fn one_random_get_is_charged_per_call_and_per_byte() {
    let body = "(drop (call $random (i32.const 0) (i32.const 1048576)))";
    let (_dir, s) = serve("random1", wasi_command(body), "");
    // It returns without output (an empty 200): the fuel is what counts.
    let r = s.get("/random1");
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    let fuel = s.logged_fuel("random1");
    let charged = cost::RANDOM_GET.fuel(1 << 20);
    assert!(
        (charged..charged + 20_000).contains(&fuel),
        "fuel {fuel}, expected {charged} plus instantiation and a few instructions"
    );
    s.assert_healthy();
}

#[test]
fn random_get_over_the_per_call_cap_is_einval() {
    // proc_exit(errno): the exit code names what random_get returned.
    let body = format!(
        "(call $exit (call $random (i32.const 0) (i32.const {})))",
        MAX_IO_PER_CALL + 1
    );
    let (_dir, s) = serve("random2", wasi_command(&body), "");
    let r = s.get("/random2");
    r.assert_error(502, "exit-code");
    assert!(r.message().contains("code 28"), "{}", r.message());
    s.assert_healthy();
}

#[test]
fn host_calls_in_one_block_cannot_outrun_the_budget() {
    // 100 calls of 1 MiB in one basic block: wasmi checks fuel when a block
    // starts, so only the host's own accounting can stop them.
    let body = "(drop (call $random (i32.const 0) (i32.const 1048576)))\n".repeat(100);
    let (_dir, s) = serve("straight", wasi_command(&body), "fuel = 20_000_000");
    let r = s.get("/straight");
    r.assert_error(504, "deadline");
    assert!(r.message().contains("20000000"), "{}", r.message());
    let fuel = s.logged_fuel("straight");
    assert!(fuel <= 20_000_000, "used {fuel} of a 20,000,000 budget");
    s.assert_healthy();
}

#[test]
fn host_work_in_a_start_function_must_fit_its_slice() {
    let wasm = wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 32)
  (func $init (drop (call $random (i32.const 0) (i32.const 1048576))))
  (start $init)
  (func (export "_start")))"#,
    )
    .unwrap();
    let (_dir, s) = serve("startrandom", wasm, "");
    let r = s.get("/startrandom");
    r.assert_error(504, "deadline");
    s.assert_healthy();
}

/// `fd_read` pays its own cost row (`cost::FD_READ`), not `fd_write`'s: a
/// read of a 512 KiB request (the body, JSON-escaped on stdin) into one
/// iovec costs what `FD_READ` charges for it, plus instantiation and a
/// few instructions (at `FD_WRITE`'s rate it cost ~4.8 times as much).
#[test]
fn one_fd_read_is_charged_at_its_own_cost() {
    let wasm = wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 32)
  (func (export "_start")
    ;; one iovec at 0: 1 MiB at 1024; the count lands at 16.
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 1048576))
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
    )
    .unwrap();
    let (_dir, s) = serve("read1", wasm, "");
    let body = vec![b'a'; 512 << 10];
    let r = s.request("POST", "/read1", &[], &body);
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    let fuel = s.logged_fuel("read1");
    // stdin is the body plus the request's method, uri, headers and trace
    // id: under 2 KiB more.
    let least = cost::FD_READ.fuel(64 + (512 << 10));
    let most = cost::FD_READ.fuel(64 + (514 << 10)) + 20_000;
    assert!(
        (least..most).contains(&fuel),
        "fuel {fuel}, expected {least}..{most}: fd_read's cost plus instantiation and a few instructions"
    );
    s.assert_healthy();
}
