//! The module cache: changed files are recompiled on their next request,
//! broken files do not take the server down, and the LRU bound evicts
//! without breaking anything.

mod common;

use common::{HELLO, Server, TempDir, function};

#[test]
fn a_changed_module_file_is_recompiled_on_its_next_request() {
    let dir = TempDir::new("cache-change");
    dir.copy(&function("hello.wasm"), "hello.wasm");
    dir.copy(&function("hello.wasm"), "f.wasm");
    let s = Server::serve_dir(dir.path());
    let r = s.get("/f");
    assert_eq!(r.text(), HELLO);

    // Replace f.wasm by echo: the next request must run echo.
    std::fs::copy(function("echo.wasm"), dir.path().join("f.wasm")).unwrap();
    let r = s.request("POST", "/f", &[], b"changed");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "changed");

    // Break it: 503 for that route, the rest keeps working.
    std::fs::write(dir.path().join("f.wasm"), b"\0asm garbage").unwrap();
    s.get("/f").assert_error(503, "module-unavailable");
    s.wait_for_log("not a valid WebAssembly module");
    s.assert_healthy();

    // Fix it again: served again, no restart needed.
    std::fs::copy(function("hello.wasm"), dir.path().join("f.wasm")).unwrap();
    assert_eq!(s.get("/f").text(), HELLO);

    // Remove it: now the route does not exist at all.
    std::fs::remove_file(dir.path().join("f.wasm")).unwrap();
    s.get("/f").assert_error(404, "not-found");
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
    let log = s.log();
    let loads = log.matches("loaded ").count();
    assert!(
        loads >= 9,
        "expected a load per request, got {loads}:\n{log}"
    );
}
