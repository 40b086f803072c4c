//! KV namespaces as the config assigns them (README "State"): two tenants'
//! modules with one file stem do not share a namespace by default, and the
//! quotas keep a namespace within one record of the store's log.

mod common;

use common::{Server, TempDir, function, wasmgate};

/// `serve --config` on `toml` (with `files` next to it): exit code 2 and
/// one line on stderr, which is returned.
fn serve_refuses(toml: &str, files: &[(&str, &str)]) -> String {
    let dir = TempDir::new("kv-ns-refused");
    for (name, src) in files {
        dir.copy(&function(src), name);
    }
    let config = dir.write("wasmgate.toml", toml);
    let out = wasmgate([
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one line on stderr: {out:?}");
    lines[0].to_owned()
}

#[test]
fn modules_with_one_file_stem_do_not_share_a_namespace() {
    let tenants = [
        ("tenants/a/counter.wasm", "counter.wasm"),
        ("tenants/b/counter.wasm", "counter.wasm"),
    ];
    let state = TempDir::new("kv-ns-state");
    let config = |b_name: &str| {
        format!(
            "[state]\ndir = \"{}\"\n\
             [[function]]\nroute = \"/a\"\nmodule = \"tenants/a/counter.wasm\"\n\
             [[function]]\n{b_name}route = \"/b\"\nmodule = \"tenants/b/counter.wasm\"\n",
            state.path().display()
        )
    };
    // Both named `counter` after their file stem: refused, naming both.
    let shown = serve_refuses(&config(""), &tenants);
    assert!(shown.contains("wasmgate.toml:8: "), "{shown}");
    for needle in [
        "function `counter` (route `/b`, module \"tenants/b/counter.wasm\")",
        "function `counter` (route `/a`, module \"tenants/a/counter.wasm\")",
        "share KV namespace \"counter\"",
        "set a distinct `name`",
    ] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    // Named apart, each counts in its own namespace.
    let files: Vec<(&str, std::path::PathBuf)> = tenants
        .iter()
        .map(|(name, src)| (*name, function(src)))
        .collect();
    let s = Server::with_config(&config("name = \"counter-b\"\n"), &files);
    assert_eq!(s.get("/a?key=k").text(), "k: 1\n");
    assert_eq!(s.get("/a?key=k").text(), "k: 2\n");
    assert_eq!(s.get("/b?key=k").text(), "k: 1\n");
    assert_eq!(s.get("/a?key=k").text(), "k: 3\n");
}

#[test]
fn a_quota_past_one_log_record_is_refused() {
    let shown = serve_refuses("[state]\nmax_bytes = \"4GiB\"\n", &[]);
    assert!(
        shown.ends_with("wasmgate.toml:2: `max_bytes` must be between 1KiB and 128MiB, got 4GiB"),
        "{shown}"
    );
    let shown = serve_refuses("[state]\nmax_keys = 10_000_000\n", &[]);
    assert!(
        shown.ends_with("`max_keys` must be between 1 and 800000, got 10000000"),
        "{shown}"
    );
    // The range ends together are accepted.
    let s = Server::with_config(
        "[state]\nmax_bytes = \"128MiB\"\nmax_keys = 800_000\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        &[("hello.wasm", function("hello.wasm"))],
    );
    assert_eq!(s.get("/hello").status, 200);
    s.assert_healthy();
}

/// What `wasmgate kv list` logs about a log holding only a record header
/// that claims a payload of `len` bytes (none follow).
fn damage_of_a_record_claiming(len: u32) -> String {
    let dir = TempDir::new("kv-ns-record");
    let mut log = b"WGKV\x01\n\0\0".to_vec();
    log.extend_from_slice(&len.to_le_bytes());
    log.extend_from_slice(&0u32.to_le_bytes());
    dir.write("kv.log", log);
    let out = wasmgate(["kv", "list", "ns", "--dir", dir.path().to_str().unwrap()]);
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out.stderr
}

#[test]
fn the_fullest_namespace_the_quotas_allow_is_a_record_replay_reads() {
    // 128 MiB of keys and values, and 800,000 entries each written with
    // 21 bytes of lengths, tag and expiry and a namespace of up to 128
    // bytes: `StateConfig::FULLEST_RECORD`.
    let fullest = (128 << 20) + 800_000 * (21 + 128);
    assert_eq!(fullest, 253_417_728);
    // Replay takes a record this long as one cut short (a crash mid-write),
    // not as a length no record can have; the same up to 256 MiB
    // (`StateConfig::MAX_RECORD`), and not one byte past it.
    for len in [fullest, 256 << 20] {
        let log = damage_of_a_record_claiming(len);
        assert!(
            log.contains("a record is cut short at offset 8"),
            "{len}: {log}"
        );
    }
    let log = damage_of_a_record_claiming((256 << 20) + 1);
    assert!(
        log.contains("a record length is out of range at offset 8"),
        "{log}"
    );
}
