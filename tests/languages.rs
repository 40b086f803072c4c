//! Functions in several languages through the real server: the `tax`
//! example in Rust, Go, Zig and C (functions/tax*), and held-out functions
//! from Gojinn's own repository built from their unmodified source
//! (functions/gojinn/README.md). Each answers with the status, headers and
//! body it gives under Gojinn.
//!
//! Go functions spend ~45 M instructions per request in the Go runtime
//! (~10–25 ms here, far more under qemu), so these tests make few requests.
//! Fuel and memory are the defaults (a Go function needs none raised); only
//! the wall-clock `timeout` is raised, for emulated runs.

mod common;

use common::{Server, function};

/// `[limits]` for these tests: defaults, but a timeout an emulator can meet.
const LIMITS: &str = "[limits]\ntimeout = \"120s\"\n";

/// A server with `hello.wasm` (for `assert_healthy`) and `modules` (file
/// name in its functions directory, path under functions/).
fn serve(modules: &[(&str, &str)]) -> Server {
    let mut files = vec![("hello.wasm", function("hello.wasm"))];
    files.extend(modules.iter().map(|(name, rel)| (*name, function(rel))));
    let config = format!("[server]\nfunctions_dir = \".\"\n{LIMITS}");
    Server::with_config(&config, &files)
}

fn post(s: &Server, target: &str, body: &str) -> common::Response {
    s.request(
        "POST",
        target,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

#[test]
fn tax_answers_alike_in_rust_go_zig_and_c() {
    let s = serve(&[
        ("tax.wasm", "tax.wasm"),
        ("tax-go.wasm", "tax-go.wasm"),
        ("tax-zig.wasm", "tax-zig.wasm"),
        ("tax-c.wasm", "tax-c.wasm"),
    ]);
    for name in ["tax", "tax-go", "tax-zig", "tax-c"] {
        let r = post(&s, &format!("/{name}"), r#"{"id":"A1","value":19.99}"#);
        assert_eq!(r.status, 200, "{name}: {r:?}");
        assert!(r.header("x-wasmgate-error").is_none(), "{name}: {r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{name}");
        let body = r.json();
        assert_eq!(body["order_id"], "A1", "{name}: {body}");
        assert_eq!(body["total_final"].as_f64(), Some(22.99), "{name}: {body}");

        let r = post(&s, &format!("/{name}"), r#"{"id":"A1"}"#);
        assert_eq!(r.status, 400, "{name}: {r:?}");
        assert!(r.header("x-wasmgate-error").is_none(), "{name}: {r:?}");
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.starts_with("body must be"), "{name}: {error}");
    }
    s.assert_healthy();
}

/// Gojinn's `examples/functions/http-echo`: looks up
/// `req.Headers["Authorization"]` and answers 401 with a nil headers map.
#[test]
fn gojinn_go_http_echo_reads_the_canonical_authorization_header() {
    let s = serve(&[("http-echo.wasm", "gojinn/http-echo.wasm")]);
    let r = s.get_with(
        "/http-echo/x?y=1",
        &[
            ("authorization", "secret"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-gojinn"), Some("Phase-2"));
    let body = r.json();
    assert_eq!(body["message"], "Hello from Wasm!");
    assert_eq!(body["your_method"], "GET");
    assert_eq!(body["your_path"], "/http-echo/x?y=1");
    assert_eq!(body["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // Its error path prints `"headers":null`.
    let r = s.get_with("/http-echo", &[("authorization", "wrong")]);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("x-wasmgate-error").is_none(), "{r:?}");
    assert_eq!(
        r.text(),
        r#"{"error": "Unauthorized: Missing or wrong secret"}"#
    );
    s.assert_healthy();
}

/// Gojinn's benchmark function (`benchmark/wasm`, headers as a map of
/// strings) and `functions/hello` (a `main` that only calls fmt.Println).
#[test]
fn gojinn_go_benchmark_and_plain_hello() {
    let s = serve(&[
        ("bench-tax.wasm", "gojinn/bench-tax.wasm"),
        ("println.wasm", "gojinn/hello.wasm"),
    ]);
    let r = post(&s, "/bench-tax", r#"{"id":"A1","value":100}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        r#"{"order_id": "A1", "total_final": 115.00, "engine": "gojinn-v0.3.0"}"#
    );
    let r = post(&s, "/bench-tax", "not json");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.header("x-wasmgate-error").is_none(), "{r:?}");
    assert_eq!(r.text(), r#"{"error": "Invalid JSON Body"}"#);

    let r = s.get("/println");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        r.text(),
        "Operação sensível concluída com sucesso! Gerando trilha de auditoria.\n"
    );
    s.assert_healthy();
}

/// The boilerplate of Gojinn's Rust guide (`docs/guides/rust.md`): reads
/// `headers` as a map of arrays, logs with the trace id on stderr.
#[test]
fn gojinn_rust_guide_boilerplate() {
    let s = serve(&[("rust-guide.wasm", "gojinn/rust-guide.wasm")]);
    let r = s.request(
        "POST",
        "/rust-guide",
        &[("x-request-id", "req-7")],
        br#"{"name":"pi"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        r#"{"message": "Hello from Rust, pi!", "trace": "req-7"}"#
    );
    s.wait_for_log("[req-7] Processing request for URI: /rust-guide");
    s.assert_healthy();
}
