//! `wasmgate.sha256` and `wasmgate.hmac_sha256` through the server: the
//! digest a guest gets back, the fuel it pays, and the traps for a range
//! outside its memory or more than 1 MiB in one call.

mod common;

use common::{Server, TempDir};

/// A native module whose handler answers 200 with the 32-byte digest of
/// `call` as its body: the postcard response head (status 200, no headers,
/// a 32-byte body) is at 4096, the digest is written right after it, at
/// 4100. Memory: "Jefe" at 0, "what do ya want for nothing?" at 16.
fn answering_digest(call: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasmgate" "sha256" (func $sha256 (param i32 i32 i32)))
  (import "wasmgate" "hmac_sha256" (func $hmac (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 32)
  (data (i32.const 0) "Jefe")
  (data (i32.const 16) "what do ya want for nothing?")
  (data (i32.const 4096) "\c8\01\00\20")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    {call}
    (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.const 36))))"#
    ))
    .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn server(dir: &TempDir) -> Server {
    let modules = [
        (
            "hmac",
            "(call $hmac (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 28) (i32.const 4100))",
        ),
        (
            "sha",
            "(call $sha256 (i32.const 16) (i32.const 28) (i32.const 4100))",
        ),
        // 1 MiB of data hashed: the most one call takes.
        (
            "sha1mib",
            "(call $sha256 (i32.const 0) (i32.const 1048576) (i32.const 4100))",
        ),
        // One byte more than 1 MiB.
        (
            "sha_too_long",
            "(call $sha256 (i32.const 0) (i32.const 1048577) (i32.const 4100))",
        ),
        // The data runs past the 2 MiB memory.
        (
            "sha_oob",
            "(call $sha256 (i32.const 2000000) (i32.const 100000) (i32.const 4100))",
        ),
        // The digest would be written past the memory's end.
        (
            "hmac_out_oob",
            "(call $hmac (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 28) (i32.const 2097140))",
        ),
        // A negative length.
        (
            "hmac_negative",
            "(call $hmac (i32.const 0) (i32.const -1) (i32.const 16) (i32.const 28) (i32.const 4100))",
        ),
    ];
    let mut config = String::new();
    let mut files = Vec::new();
    for (name, call) in modules {
        let file = format!("{name}.wasm");
        files.push((name, dir.write(&file, answering_digest(call))));
        config.push_str(&format!(
            "[[function]]\nname = \"{name}\"\nroute = \"/{name}\"\nmodule = \"{file}\"\n\n"
        ));
    }
    // `assert_healthy` asks for /hello.
    files.push(("hello", common::function("hello.wasm")));
    config
        .push_str("[[function]]\nname = \"hello\"\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n");
    let files: Vec<(String, std::path::PathBuf)> = files
        .into_iter()
        .map(|(name, path)| (format!("{name}.wasm"), path))
        .collect();
    let files: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    Server::with_config(&config, &files)
}

#[test]
fn the_host_computes_sha256_and_hmac_sha256_into_guest_memory() {
    let dir = TempDir::new("digest");
    let server = server(&dir);
    let r = server.get("/hmac");
    assert_eq!(r.status, 200, "{}", r.text());
    // RFC 4231 test case 2.
    assert_eq!(
        hex(&r.body),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let r = server.get("/sha");
    assert_eq!(r.status, 200, "{}", r.text());
    // Python: hashlib.sha256(b"what do ya want for nothing?").
    assert_eq!(
        hex(&r.body),
        "b381e7fec653fc3ab9b178272366b8ac87fed8d31cb25ed1d0e1f3318644c89c"
    );
    server.assert_healthy();
}

#[test]
fn hashing_is_paid_for_by_the_byte() {
    let dir = TempDir::new("digest-fuel");
    let server = server(&dir);
    assert_eq!(server.get("/sha").status, 200);
    let small = server.logged_fuel("sha");
    assert_eq!(server.get("/sha1mib").status, 200);
    let big = server.logged_fuel("sha1mib");
    // 1 MiB at `cost::DIGEST`'s 16,384 fuel per KiB.
    assert!(
        big >= 16_384 * 1024 && small < 10_000,
        "1 MiB hashed for {big} fuel, 28 bytes for {small}"
    );
    server.assert_healthy();
}

#[test]
fn out_of_bounds_ranges_and_over_long_calls_trap() {
    let dir = TempDir::new("digest-trap");
    let server = server(&dir);
    for (path, needle) in [
        ("/sha_too_long", "wasmgate.sha256: more than 1 MiB"),
        ("/sha_oob", "wasmgate.sha256: pointer out of bounds"),
        (
            "/hmac_out_oob",
            "wasmgate.hmac_sha256: pointer out of bounds",
        ),
        (
            "/hmac_negative",
            "wasmgate.hmac_sha256: pointer out of bounds",
        ),
    ] {
        let r = server.get(path);
        let body = r.assert_error(502, "trap");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{path}: {body}"
        );
    }
    server.assert_healthy();
}
