//! The module cache: changed files are recompiled once
//! `module_check_interval` has passed, broken files do not take the server
//! down, missing ones are 404 without touching the cache, and the LRU bound
//! evicts without breaking anything.

mod common;

use std::time::{Duration, Instant};

use common::{HELLO, Server, TempDir, encode_request, function};

#[test]
fn a_changed_module_file_is_recompiled_on_its_next_request() {
    // Checking on every request: each change is seen by the next one.
    let config = "[server]\nfunctions_dir = \".\"\nmodule_check_interval = \"0s\"\n";
    let s = Server::with_config(
        config,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("f.wasm", function("hello.wasm")),
        ],
    );
    let f = s.dir().join("f.wasm");
    let r = s.get("/f");
    assert_eq!(r.text(), HELLO);

    // Replace f.wasm by echo: the next request must run echo.
    std::fs::copy(function("echo.wasm"), &f).unwrap();
    let r = s.request("POST", "/f", &[], b"changed");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "changed");

    // Break it: 503 for that route, the rest keeps working.
    std::fs::write(&f, b"\0asm garbage").unwrap();
    s.get("/f").assert_error(503, "module-unavailable");
    s.wait_for_log("not a valid WebAssembly module");
    s.assert_healthy();

    // Fix it again: served again, no restart needed.
    std::fs::copy(function("hello.wasm"), &f).unwrap();
    assert_eq!(s.get("/f").text(), HELLO);

    // Remove it: now the route does not exist at all.
    std::fs::remove_file(&f).unwrap();
    let json = s.get("/f").assert_error(404, "not-found");
    assert!(json["function"].is_null(), "{json}");
    s.wait_for_log("dropped ");
    s.assert_healthy();
}

#[test]
fn with_the_default_interval_a_changed_file_is_served_after_it() {
    let config = "[server]\nfunctions_dir = \".\"\n";
    let s = Server::with_config(
        config,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("f.wasm", function("hello.wasm")),
        ],
    );
    assert_eq!(s.get("/f").text(), HELLO);
    std::fs::copy(function("echo.wasm"), s.dir().join("f.wasm")).unwrap();

    // Within the interval (1 s) the old module may still answer; after it,
    // echo must. Poll, bounded, rather than assume how long a request takes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = s.request("POST", "/f", &[], b"changed");
        if r.text() != HELLO || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "changed", "{r:?}");
    s.assert_healthy();
}

#[test]
fn within_the_interval_the_cached_module_is_served_without_a_check() {
    let config = "[server]\nfunctions_dir = \".\"\nmodule_check_interval = \"60m\"\n";
    let s = Server::with_config(config, &[("hello.wasm", function("hello.wasm"))]);
    assert_eq!(s.get("/hello").text(), HELLO);
    // Replaced and then removed: an hour has not passed, so neither is seen.
    let hello = s.dir().join("hello.wasm");
    std::fs::copy(function("echo.wasm"), &hello).unwrap();
    assert_eq!(s.request("POST", "/hello", &[], b"x").text(), HELLO);
    std::fs::remove_file(&hello).unwrap();
    s.assert_healthy();
    assert_eq!(s.get("/hello?last=1").text(), HELLO);
    // The last request's access line comes after any load it caused.
    let log = s.wait_for_log("GET /hello?last=1 fn=hello status=200");
    assert_eq!(log.matches("loaded ").count(), 1, "{log}");
}

#[test]
fn a_missing_dir_function_is_404_and_never_evicts_a_real_one() {
    let config = "[server]\nfunctions_dir = \".\"\nmodule_cache = 1\n";
    let s = Server::with_config(config, &[("hello.wasm", function("hello.wasm"))]);
    assert_eq!(s.get("/hello").text(), HELLO);
    for i in 0..50 {
        let r = s.get(&format!("/random{i}"));
        let json = r.assert_error(404, "not-found");
        assert!(json["function"].is_null(), "{json}");
    }
    assert_eq!(s.get("/hello?after=1").text(), HELLO);
    // The last request's access line comes after any load it caused.
    let log = s.wait_for_log("GET /hello?after=1 fn=hello status=200");
    assert_eq!(
        log.matches("loaded ").count(),
        1,
        "nonexistent names evicted the real module:\n{log}"
    );
    assert!(!log.contains("module unavailable"), "{log}");
    s.assert_healthy();
}

#[test]
fn a_configured_function_whose_module_is_missing_is_unavailable() {
    let config = "[[function]]\nroute = \"/gone\"\nmodule = \"gone.wasm\"\n\n[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n";
    let s = Server::with_config(config, &[("hello.wasm", function("hello.wasm"))]);
    for _ in 0..2 {
        let json = s.get("/gone").assert_error(503, "module-unavailable");
        assert_eq!(json["function"], "gone", "{json}");
    }
    s.wait_for_log("module unavailable");
    s.wait_for_log("cannot read module");
    s.assert_healthy();
}

#[test]
fn the_lru_bound_evicts_and_reloads_modules_transparently() {
    let config = "[server]\nfunctions_dir = \".\"\nmodule_cache = 1\n";
    let s = Server::with_config(
        config,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("echo.wasm", function("echo.wasm")),
            ("sieve.wasm", function("sieve.wasm")),
        ],
    );
    for _ in 0..3 {
        assert_eq!(s.get("/hello").text(), HELLO);
        assert_eq!(s.request("POST", "/echo", &[], b"x").json()["body"], "x");
        assert_eq!(s.get("/sieve?n=100").text(), "primes below 100: 25\n");
    }
    // With room for one module, each request above had to compile again.
    // (The log is read by another thread: give the last line time to land.)
    let started = Instant::now();
    let mut log = s.log();
    while log.matches("loaded ").count() < 9 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        log = s.log();
    }
    let loads = log.matches("loaded ").count();
    assert!(
        loads >= 9,
        "expected a load per request, got {loads}:\n{log}"
    );
}

/// A valid module of about `size` bytes that fits no ABI: `count` functions
/// of `i32.const 0; drop` repeated. wasmi validates every body on load.
fn big_module(size: usize) -> Vec<u8> {
    fn leb(n: usize, out: &mut Vec<u8>) {
        common::leb128(n as u64, out);
    }
    fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len(), out);
        out.extend_from_slice(body);
    }
    let per_body = 4096;
    let count = size / per_body + 1;
    let mut body = vec![0x00]; // no locals
    while body.len() + 4 < per_body {
        body.extend_from_slice(&[0x41, 0x00, 0x1a]); // i32.const 0; drop
    }
    body.push(0x0b); // end
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[0x01, 0x60, 0x00, 0x00], &mut out); // one type: [] -> []
    let mut funcs = Vec::new();
    leb(count, &mut funcs);
    funcs.extend(std::iter::repeat_n(0x00, count));
    section(3, &funcs, &mut out);
    let mut code = Vec::new();
    leb(count, &mut code);
    for _ in 0..count {
        leb(body.len(), &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut out);
    out
}

#[test]
fn other_requests_are_served_while_a_large_module_compiles() {
    let dir = TempDir::new("big-module");
    let big = dir.write("big.wasm", big_module(12 << 20));
    // One 12 MiB function (~88 MB estimated once compiled): allowed here
    // so that it compiles, at length.
    let s = Server::with_config(
        "[server]\nfunctions_dir = \".\"\nmax_module_function_size = \"16MiB\"\n\
         module_cache_bytes = \"128MiB\"\n",
        &[("hello.wasm", function("hello.wasm")), ("big.wasm", big)],
    );
    assert_eq!(s.get("/hello").text(), HELLO);

    // Ask for the big module twice, then keep asking for hello on another
    // connection: hello must answer while the big one is still compiling.
    let mut slow = s.connect();
    slow.send(&encode_request("GET", "/big", &[], b""));
    let mut again = s.connect();
    again.send(&encode_request("GET", "/big", &[], b""));
    let mut fast = s.connect();
    let mut answered_first = 0;
    let started = Instant::now();
    while !slow.has_data() && started.elapsed() < Duration::from_secs(60) {
        let r = fast.request("GET", "/hello", &[], b"");
        assert_eq!(r.text(), HELLO);
        if !slow.has_data() {
            answered_first += 1;
        }
    }
    assert!(
        answered_first > 0,
        "no hello was answered while big.wasm compiled:\n{}",
        s.log()
    );
    slow.read_response(false)
        .assert_error(503, "module-unavailable");
    again
        .read_response(false)
        .assert_error(503, "module-unavailable");
    // The second request waited for the first one's compile instead of
    // compiling the same file again: one load, one warning.
    s.wait_for_log("exports neither `wasmgate_handle`");
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log();
    assert_eq!(log.matches("exports neither").count(), 1, "{log}");
    s.assert_healthy();
}

#[test]
fn thousands_of_routes_each_reach_their_own_function() {
    // 2,000 tenants: exact routes (one with a trailing `/`), prefix routes
    // and a catch-all. The router looks these up rather than scanning;
    // each request must still land where the longest match says.
    let mut config = String::new();
    for i in 0..1000 {
        config.push_str(&format!(
            "[[function]]\nname = \"t{i}\"\nroute = \"/t{i}\"\nmodule = \"hello.wasm\"\n\
             [[function]]\nname = \"p{i}\"\nroute = \"/p{i}/*\"\nmodule = \"hello.wasm\"\n"
        ));
    }
    config.push_str(
        "[[function]]\nname = \"deep\"\nroute = \"/p7/a/b/*\"\nmodule = \"hello.wasm\"\n\
         [[function]]\nname = \"slash\"\nroute = \"/s/\"\nmodule = \"hello.wasm\"\n\
         [[function]]\nname = \"hello\"\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\
         [[function]]\nname = \"all\"\nroute = \"/*\"\nmodule = \"echo.wasm\"\n",
    );
    let s = Server::with_config(
        &config,
        &[
            ("hello.wasm", function("hello.wasm")),
            ("echo.wasm", function("echo.wasm")),
        ],
    );
    for (target, name) in [
        ("/t0", "t0"),
        ("/t999", "t999"),
        ("/t999/", "t999"),
        ("/p0", "p0"),
        ("/p999/x/y", "p999"),
        ("/p7/a/b", "deep"),
        ("/p7/a/bc", "p7"),
        ("/p7/a/b/c/d", "deep"),
        ("/s/", "slash"),
    ] {
        let r = s.get(target);
        assert_eq!((r.status, r.text().as_str()), (200, HELLO), "{target}");
        s.wait_for_log(&format!("GET {target} fn={name} status=200"));
    }
    // Not a route of any tenant: the catch-all (echo) answers.
    for target in ["/t1000", "/t99x", "/p1000", "/s", "/"] {
        let r = s.get(target);
        assert_eq!(r.status, 200, "{target}: {r:?}");
        assert_eq!(r.json()["uri"], target, "{target}");
        s.wait_for_log(&format!("GET {target} fn=all status=200"));
    }
    s.assert_healthy();
}
