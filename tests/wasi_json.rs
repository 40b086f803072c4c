//! The wasi-json ABI (the Gojinn contract) end to end: real WASI preview1
//! command modules built from plain Rust `fn main`, served over real sockets
//! and run through `wasmgate run`.

mod common;

use common::{Server, TempDir, function, wasmgate};

/// A server with hello (for health checks) and the wasi examples, plus any
/// extra `[[function]]` entries.
fn server_with(extra: &str, files: &[(&str, std::path::PathBuf)]) -> Server {
    let mut all = vec![
        ("hello.wasm", function("hello.wasm")),
        ("tax.wasm", function("tax.wasm")),
        ("headers.wasm", function("headers.wasm")),
        ("env.wasm", function("env.wasm")),
    ];
    all.extend(files.iter().cloned());
    let config = format!(
        "[server]\nfunctions_dir = \".\"\n\n[[function]]\nroute = \"/env\"\nmodule = \"env.wasm\"\nenv = {{ GREETING = \"hi\", REGION = \"north\" }}\nargs = [\"--flag\", \"two words\"]\n{extra}"
    );
    Server::with_config(&config, &all)
}

fn server() -> Server {
    server_with("", &[])
}

#[test]
fn tax_computes_the_total_like_gojinns_benchmark_function() {
    let s = server();
    let r = s.request(
        "POST",
        "/tax",
        &[("content-type", "application/json")],
        br#"{"id":"A1","value":100}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-trace-id").is_some());
    let body = r.json();
    assert_eq!(body["order_id"], "A1");
    assert_eq!(body["total_final"], 115.0);

    // The function's own error path: a 400 it chose, not a wasmgate error.
    let r = s.request("POST", "/tax", &[], b"not an order");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.header("x-wasmgate-error").is_none());
    s.wait_for_log("fn=tax status=200 error=- ");
    s.assert_healthy();
}

#[test]
fn tax_is_a_plain_rust_main_with_serde_json_only() {
    // The promise to Gojinn users: no wasmgate crate, only std + serde_json.
    let manifest: toml::Table = std::fs::read_to_string(function("tax/Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deps: Vec<&String> = manifest["dependencies"]
        .as_table()
        .unwrap()
        .keys()
        .collect();
    assert!(
        deps.iter().all(|d| *d == "serde" || *d == "serde_json"),
        "{deps:?}"
    );
    let source = std::fs::read_to_string(function("tax/src/main.rs")).unwrap();
    assert!(source.contains("fn main"));
    assert!(source.contains("read_to_string"));
    let check = wasmgate(["check", function("tax.wasm").to_str().unwrap()]);
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(check.stdout.contains("abi: wasi-json"), "{}", check.stdout);
}

#[test]
fn request_bodies_that_are_not_utf8_are_replaced_not_refused() {
    let s = server();
    let r = s.request("POST", "/tax", &[], b"{\"id\":\"\xff\xfe\",\"value\":2}");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["order_id"], "\u{fffd}\u{fffd}");
    s.assert_healthy();
}

#[test]
fn headers_sees_request_headers_and_trace_id_and_returns_both_value_shapes() {
    let s = server();
    let r = s.get_with(
        "/headers",
        &[
            ("x-request-id", "req-42"),
            ("x-multi", "1"),
            ("x-multi", "2"),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-trace-id"), Some("req-42"));
    let body = r.json();
    assert_eq!(body["trace_id"], "req-42");
    // Names in Go's canonical form, as Gojinn passes them; repeated
    // fields are one list, in order.
    assert_eq!(body["headers"]["X-Multi"], serde_json::json!(["1", "2"]));
    assert_eq!(
        body["headers"]["X-Request-Id"],
        serde_json::json!(["req-42"])
    );
    assert!(body["headers"].get("x-request-id").is_none(), "{body}");
    // A string value and an array value in the function's response headers.
    assert_eq!(r.header("x-single"), Some("one"));
    let multi: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "x-multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(multi, ["a", "b"]);

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = s.get_with("/headers", &[("traceparent", traceparent)]);
    assert_eq!(r.json()["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    s.assert_healthy();
}

#[test]
fn env_sees_exactly_the_configured_variables_and_args() {
    let s = server();
    let r = s.get("/env");
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    // Nothing of the server's environment (PATH, HOME, CARGO_*, RUST_LOG…).
    assert_eq!(
        body["env"],
        serde_json::json!({"GREETING": "hi", "REGION": "north"})
    );
    assert_eq!(
        body["args"],
        serde_json::json!(["env", "--flag", "two words"])
    );
    // Its stderr line reached the log, tagged with the function name.
    s.wait_for_log("[env ");
    s.wait_for_log("env function called");
    s.assert_healthy();
}

#[test]
fn wasmgate_run_works_for_wasi_json_modules() {
    let dir = TempDir::new("run-wasi");
    let order = dir.write("order.json", r#"{"id":7,"value":10}"#);
    let body = format!("@{}", order.display());
    let out = wasmgate([
        "run",
        function("tax.wasm").to_str().unwrap(),
        "--method",
        "POST",
        "--body",
        &body,
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("HTTP 200\n"), "{}", out.stdout);
    assert!(out.stdout.contains("content-type: application/json"));
    let json_line = out.stdout.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["order_id"], 7);
    assert_eq!(v["total_final"], 11.5);
    assert!(out.stderr.contains("abi: wasi-json"), "{}", out.stderr);

    // Without configuration, `run` gives a function no environment at all.
    let out = wasmgate(["run", function("env.wasm").to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(r#"{"args":["env"],"env":{}}"#),
        "{}",
        out.stdout
    );
}

/// Serves every wasi hostile fixture under its own name with a small fuel
/// budget, so the endless ones end quickly, and `plain_output = "refuse"`:
/// output that is not a response object is refused.
fn hostile_server() -> Server {
    let names = [
        "notjson",
        "trailing",
        "stdoutflood",
        "stderrflood",
        "exit3",
        "exit0",
        "passwd",
        "stdinforever",
    ];
    let files: Vec<(String, std::path::PathBuf)> = names
        .iter()
        .map(|n| {
            (
                format!("wasi-{n}.wasm"),
                function(&format!("hostile/wasi-{n}.wasm")),
            )
        })
        .collect();
    let files: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    server_with(
        "\n[limits]\nfuel = 20_000_000\nplain_output = \"refuse\"\n",
        &files,
    )
}

#[test]
fn hostile_wasi_functions_get_their_documented_errors() {
    let s = hostile_server();

    let r = s.get("/wasi-notjson");
    let json = r.assert_error(502, "bad-response");
    assert_eq!(json["function"], "wasi-notjson");
    s.wait_for_log("this is not json");
    s.assert_healthy();

    s.get("/wasi-trailing").assert_error(502, "bad-response");
    s.wait_for_log("garbage after");
    s.assert_healthy();

    let r = s.get("/wasi-stdoutflood");
    r.assert_error(502, "bad-response");
    assert!(r.message().contains("max_response"), "{}", r.message());
    s.assert_healthy();

    s.get("/wasi-stderrflood").assert_error(504, "deadline");
    s.wait_for_log("log limit reached");
    s.wait_for_log("fn=wasi-stderrflood status=504 error=deadline fuel=");
    s.assert_healthy();

    let r = s.get("/wasi-exit3");
    r.assert_error(502, "exit-code");
    assert!(r.message().contains("code 3"), "{}", r.message());
    s.assert_healthy();

    let r = s.get("/wasi-exit0");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.text(), "made");
    s.assert_healthy();

    s.get("/wasi-stdinforever").assert_error(504, "deadline");
    s.assert_healthy();
}

#[test]
fn a_function_cannot_read_host_files_or_reach_the_network() {
    let s = hostile_server();
    let r = s.get("/wasi-passwd");
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.text();
    assert!(!text.contains("root:"), "{text}");
    let body = r.json();
    for key in ["passwd", "root", "tcp"] {
        let v = body[key].as_str().unwrap_or_default();
        assert!(v.starts_with("Err("), "{key}: {v}");
    }
    s.assert_healthy();
}

/// Calls WASI functions outside the subset directly: they must exist (the
/// module links) and answer what a host without files or sockets does:
/// EBADF (8) for descriptor 3, which does not exist.
const NOT_CAPABLE_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept"
    (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{\"status\":200,\"body\":\"notcapable\"}")
  (data (i32.const 128) "{\"status\":200,\"body\":\"capable!!!\"}")
  (func (export "_start")
    (local $msg i32)
    (local.set $msg (i32.const 128))
    (if (i32.and
          (i32.eq (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 11)
                    (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))
                  (i32.const 8))
          (i32.eq (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 0)) (i32.const 8)))
      (then (local.set $msg (i32.const 64))))
    ;; iovec at 0: (msg, 34)
    (i32.store (i32.const 0) (local.get $msg))
    (i32.store (i32.const 4) (i32.const 34))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
"#;

#[test]
fn wasi_functions_outside_the_subset_answer_ebadf_for_a_missing_descriptor() {
    let dir = TempDir::new("notcapable");
    let wasm = dir.write("notcapable.wasm", wat::parse_str(NOT_CAPABLE_WAT).unwrap());
    let s = server_with("", &[("notcapable.wasm", wasm)]);
    let r = s.get("/notcapable");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "notcapable");
    s.assert_healthy();
}

#[test]
fn imports_that_are_not_wasi_preview1_make_the_module_unavailable() {
    let dir = TempDir::new("badwasi");
    let bogus = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "open_the_pod_bay_doors" (func (result i32)))
                   (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let wrong_sig = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
                   (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let bogus = dir.write("bogus.wasm", bogus);
    let wrong_sig = dir.write("wrongsig.wasm", wrong_sig);

    let out = wasmgate(["check", bogus.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .contains("wasi_snapshot_preview1.open_the_pod_bay_doors"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("not a WASI preview1 function"),
        "{}",
        out.stdout
    );
    let out = wasmgate(["check", wrong_sig.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("wasi_snapshot_preview1.fd_write"),
        "{}",
        out.stdout
    );

    let s = server_with("", &[("bogus.wasm", bogus)]);
    s.get("/bogus").assert_error(503, "module-unavailable");
    s.wait_for_log("open_the_pod_bay_doors");
    s.assert_healthy();
}

#[test]
fn the_wasi_path_gets_the_same_fuel_memory_and_abi_rules() {
    let extra = "
[[function]]
route = \"/tax-tiny-fuel\"
module = \"tax.wasm\"
limits = { fuel = 1000 }

[[function]]
route = \"/tax-tiny-memory\"
module = \"tax.wasm\"
limits = { memory = \"128KiB\" }

[[function]]
route = \"/tax-as-native\"
module = \"tax.wasm\"
abi = \"native\"
";
    let s = server_with(extra, &[]);
    let order: &[u8] = br#"{"id":"A1","value":100}"#;
    s.request("POST", "/tax-tiny-fuel", &[], order)
        .assert_error(504, "deadline");
    let log = s.wait_for_log("fn=tax status=504 error=deadline fuel=");
    let fuel: u64 = log
        .split("fn=tax status=504 error=deadline fuel=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("fuel in access log");
    assert!(fuel > 0 && fuel <= 1000, "fuel {fuel} outside the budget");
    // tax's stack and data fit its one initial page, and the instance
    // (counted against the limit too) fits the second 64 KiB; reading a
    // 100 KB request must grow the memory past the 128 KiB limit.
    let big = format!(
        r#"{{"id":"A1","value":100,"pad":"{}"}}"#,
        "x".repeat(100_000)
    );
    s.request("POST", "/tax-tiny-memory", &[], big.as_bytes())
        .assert_error(502, "memory-limit");
    assert_eq!(
        s.request("POST", "/tax-tiny-memory", &[], order).status,
        200
    );
    s.request("POST", "/tax-as-native", &[], order)
        .assert_error(503, "module-unavailable");
    s.wait_for_log("missing function export `wasmgate_alloc`");
    // The same module through its auto-detected ABI still works.
    assert_eq!(s.request("POST", "/tax", &[], order).status, 200);
    s.assert_healthy();
}

#[test]
fn exit_codes_are_unsigned_as_in_wasi() {
    let dir = TempDir::new("exitminus1");
    let wasm = dir.write(
        "exitminus1.wasm",
        wat::parse_str(
            r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const -1))))"#,
        )
        .unwrap(),
    );
    let s = server_with("", &[("exitminus1.wasm", wasm)]);
    let r = s.get("/exitminus1");
    r.assert_error(502, "exit-code");
    assert!(r.message().contains("code 4294967295"), "{}", r.message());
    s.assert_healthy();
}

/// Serves `wasi-notjson`, `wasi-trailing` and `wasi-stdoutflood` as
/// `/notjson`, `/trailing` and `/flood`, and again as `/strict-*` with
/// `limits = { plain_output = FUNCTION }`, under `[limits] plain_output =
/// GLOBAL` (left out when `None`).
fn plain_output_server(global: Option<&str>, function_value: &str) -> Server {
    let mut config = String::from("\n[limits]\nfuel = 20_000_000\n");
    if let Some(global) = global {
        config.push_str(&format!("plain_output = \"{global}\"\n"));
    }
    let mut files = Vec::new();
    for (route, file) in [
        ("notjson", "wasi-notjson.wasm"),
        ("trailing", "wasi-trailing.wasm"),
        ("flood", "wasi-stdoutflood.wasm"),
    ] {
        files.push((file, function(&format!("hostile/{file}"))));
        config.push_str(&format!(
            "\n[[function]]\nroute = \"/{route}\"\nmodule = \"{file}\"\n\
             \n[[function]]\nroute = \"/strict-{route}\"\nmodule = \"{file}\"\n\
             limits = {{ plain_output = \"{function_value}\" }}\n"
        ));
    }
    server_with(&config, &files)
}

#[test]
fn plain_stdout_is_a_200_text_response_by_default() {
    let s = plain_output_server(None, "refuse");
    // A Go `main` that only prints: its output is the body, as the newest
    // Gojinn answers.
    let r = s.get("/notjson");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), "this is not json\n");
    assert!(r.header("x-wasmgate-error").is_none());
    // A response object followed by more output is not one response
    // object: all of stdout is the body.
    let r = s.get("/trailing");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.text(),
        "{\"status\":200,\"body\":\"ok\"}\ngarbage after\n"
    );
    // Output is still bounded by `max_response`.
    let r = s.get("/flood");
    r.assert_error(502, "bad-response");
    assert!(r.message().contains("max_response"), "{}", r.message());
    s.wait_for_log("fn=wasi-notjson status=200 error=- ");
    s.assert_healthy();

    // The strict switch, per function.
    s.get("/strict-notjson").assert_error(502, "bad-response");
    s.wait_for_log("this is not json");
    s.get("/strict-trailing").assert_error(502, "bad-response");
    s.assert_healthy();
}

#[test]
fn plain_output_refuse_is_a_global_switch_a_function_may_override() {
    let s = plain_output_server(Some("refuse"), "text");
    let r = s.get("/notjson");
    r.assert_error(502, "bad-response");
    assert!(
        r.message().contains("not one JSON response object"),
        "{}",
        r.message()
    );
    s.get("/trailing").assert_error(502, "bad-response");
    // The function's own `plain_output = "text"` wins over `[limits]`.
    let r = s.get("/strict-notjson");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "this is not json\n");
    s.get("/strict-flood").assert_error(502, "bad-response");
    s.assert_healthy();
}

/// A wasi-json request's stdin is counted in `memory_budget` before the
/// call: JSON escaping makes a body of control bytes ~6 times larger
/// (`\u0001` for each byte), held in host memory for the whole call. One
/// that could never fit beside the function's memory, `max_response` and
/// the body is 413; the same size of plain text fits and runs.
#[test]
fn a_wasi_json_stdin_is_counted_in_the_memory_budget() {
    let dir = TempDir::new("stdin-budget");
    let quiet = dir.write(
        "quiet.wasm",
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .unwrap(),
    );
    let s = Server::with_config(
        "[server]\nfunctions_dir = \".\"\nmemory_budget = \"4MiB\"\nmax_body = \"2MiB\"\n\n[limits]\nmemory = \"128KiB\"\nmax_response = \"64KiB\"\n",
        &[
            ("quiet.wasm", quiet),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    // 600 KiB of text: ~600 KiB of stdin.
    let r = s.request("POST", "/quiet", &[], &vec![b'a'; 600 << 10]);
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    // 600 KiB of control bytes: ~3.6 MiB of stdin, beside 192 KiB
    // reserved for the function and the 600 KiB body: over 4 MiB.
    let r = s.request("POST", "/quiet", &[], &vec![1u8; 600 << 10]);
    r.assert_error(413, "body-too-large");
    let message = r.message();
    assert!(
        message.contains("as the function's JSON stdin is 3686"),
        "{message}"
    );
    s.assert_healthy();
}
