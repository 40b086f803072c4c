//! The command line: help and version, `run`, `check`, and how `serve`
//! fails on bad arguments and configuration (exit 2) or at run time
//! (exit 1), always with one clear line and never a panic.

mod common;

use std::net::TcpListener;

use common::{Cli, HELLO, Server, TempDir, function, native_answering, wasmgate, wasmgate_in};

fn path(rel: &str) -> String {
    function(rel).to_str().unwrap().to_owned()
}

/// Exit code 0 and nothing alarming on stderr.
fn assert_ok(out: &Cli) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_no_panic(out);
}

fn assert_no_panic(out: &Cli) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!out.stderr.contains(bad), "{out:?}");
    }
}

/// Exit code `code` with exactly one line on stderr, which is returned.
fn assert_fails(out: &Cli, code: i32) -> String {
    assert_eq!(out.code, Some(code), "{out:?}");
    assert_no_panic(out);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one line on stderr: {out:?}");
    assert!(lines[0].starts_with("wasmgate: "), "{out:?}");
    lines[0].to_owned()
}

#[test]
fn version_and_help() {
    let out = wasmgate(["--version"]);
    assert_ok(&out);
    assert_eq!(
        out.stdout.trim(),
        format!("wasmgate {}", env!("CARGO_PKG_VERSION"))
    );

    for args in [&["--help"][..], &["-h"], &["help"], &[]] {
        let out = wasmgate(args);
        assert_ok(&out);
        for word in ["Usage:", "serve", "run", "check", "Exit codes"] {
            assert!(out.stdout.contains(word), "{args:?}: {out:?}");
        }
    }
    for (command, flag) in [
        ("serve", "--listen"),
        ("run", "--fuel"),
        ("run", "--memory SIZE"),
        ("run", "--timeout DURATION"),
        ("run", "--config FILE"),
        ("check", "MODULE|DIR"),
        ("check", "--memory SIZE"),
        ("keygen", "--out KEYFILE"),
        ("sign", "--key KEYFILE"),
    ] {
        let out = wasmgate([command, "--help"]);
        assert_ok(&out);
        assert!(
            out.stdout
                .starts_with(&format!("Usage: wasmgate {command}")),
            "{out:?}"
        );
        assert!(out.stdout.contains(flag), "{out:?}");
    }
}

#[test]
fn run_hello() {
    let out = wasmgate(["run", &path("hello.wasm")]);
    assert_ok(&out);
    assert!(out.stdout.starts_with("HTTP 200\n"), "{out:?}");
    assert!(out.stdout.contains("content-type: text/plain"), "{out:?}");
    assert!(out.stdout.ends_with(&format!("\n\n{HELLO}")), "{out:?}");
    assert!(out.stderr.contains("fuel used: "), "{out:?}");
    assert!(out.stderr.contains("abi: native"), "{out:?}");

    let out = wasmgate(["run", &path("hello.wasm"), "--path", "/hello?name=pi"]);
    assert_ok(&out);
    assert!(out.stdout.ends_with("\n\nHello, pi!\n"), "{out:?}");
}

#[test]
fn run_echo_with_body_from_file() {
    let dir = TempDir::new("cli-body");
    let body = dir.write("body.txt", "line one\nline \"two\"\n");
    let out = wasmgate([
        "run",
        &path("echo.wasm"),
        "-X",
        "post",
        "--path",
        "/echo?q=1",
        "--header",
        "X-Custom: yes",
        "--body",
        &format!("@{}", body.display()),
    ]);
    assert_ok(&out);
    assert!(out.stdout.starts_with("HTTP 200\n"), "{out:?}");
    let json_text = out.stdout.split("\n\n").nth(1).expect("body after headers");
    let v: serde_json::Value = serde_json::from_str(json_text).expect("echo JSON");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["uri"], "/echo?q=1");
    assert_eq!(v["body"], "line one\nline \"two\"\n");
    assert_eq!(v["headers"], serde_json::json!([["x-custom", "yes"]]));

    // A literal body, and a missing body file is a usage error.
    let out = wasmgate(["run", &path("echo.wasm"), "--body", "literal"]);
    assert_ok(&out);
    assert!(out.stdout.contains(r#""body":"literal""#), "{out:?}");
    let missing = dir.path().join("missing.txt");
    let out = wasmgate([
        "run",
        &path("echo.wasm"),
        "--body",
        &format!("@{}", missing.display()),
    ]);
    let line = assert_fails(&out, 2);
    assert!(line.contains("missing.txt"), "{line}");
}

#[test]
fn run_loop_hits_its_fuel_and_exits_1() {
    let out = wasmgate(["run", &path("hostile/loop.wasm"), "--fuel", "1000000"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_no_panic(&out);
    assert!(out.stderr.contains("deadline"), "{out:?}");
    assert!(out.stderr.contains("1000000"), "{out:?}");
    assert!(out.stderr.contains("HTTP 504"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn run_on_a_failing_fixture_names_the_error_kind() {
    let out = wasmgate(["run", &path("hostile/divzero.wasm")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("divide by zero"), "{out:?}");
    assert!(out.stderr.contains("(trap, HTTP 502)"), "{out:?}");
    let out = wasmgate(["run", &path("hostile/badimport.wasm")]);
    let line = assert_fails(&out, 1);
    assert!(line.contains("env.nonexistent"), "{line}");
}

/// A native module answering 200 with the fields `x-trace-id: forged`
/// (the host's own: a bad response) or `content-length: 999` (framing: the
/// host drops it) and the body `hi`. Postcard: status 200 (`c8 01`), one
/// field, name and value with their lengths, the body with its length.
fn native_with_field(field: &str) -> Vec<u8> {
    let (name, value) = field.split_once(": ").unwrap();
    let mut msg = vec![0xc8, 0x01, 1, name.len() as u8];
    msg.extend_from_slice(name.as_bytes());
    msg.push(value.len() as u8);
    msg.extend_from_slice(value.as_bytes());
    msg.extend_from_slice(b"\x02hi");
    native_answering(&msg, 1)
}

/// `run` and the server take one path from a guest's output to HTTP: what
/// the server answers with 502 `bad-response`, `run` refuses with the same
/// kind and status; a framing field the server drops, `run` drops.
#[test]
fn run_checks_the_guests_response_as_the_server_does() {
    let dir = TempDir::new("cli-run-checks");
    let forged = dir.write("forged.wasm", native_with_field("x-trace-id: forged"));
    let framed = dir.write("framed.wasm", native_with_field("content-length: 999"));
    let s = Server::with_config(
        "[server]\nfunctions_dir = \".\"\n",
        &[
            ("forged.wasm", forged.clone()),
            ("framed.wasm", framed.clone()),
        ],
    );
    let r = s.get("/forged");
    r.assert_error(502, "bad-response");
    assert!(r.message().contains("set by the host"), "{}", r.message());
    let r = s.get("/framed");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("2"), "{r:?}");

    let out = wasmgate(["run", forged.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_no_panic(&out);
    assert!(out.stderr.contains("set by the host"), "{out:?}");
    assert!(out.stderr.contains("(bad-response, HTTP 502)"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");

    let out = wasmgate(["run", framed.to_str().unwrap()]);
    assert_ok(&out);
    assert_eq!(out.stdout, "HTTP 200\n\nhi", "{out:?}");
}

#[test]
fn check_hello() {
    let out = wasmgate(["check", &path("hello.wasm")]);
    assert_ok(&out);
    assert!(out.stdout.contains("hello.wasm: ok"), "{out:?}");
    assert!(out.stdout.contains("abi: native"), "{out:?}");
    assert!(out.stdout.contains("imports: wasmgate.log"), "{out:?}");
    assert!(out.stdout.contains("wasmgate_handle"), "{out:?}");
}

#[test]
fn check_hostile_fixtures() {
    // These are valid modules that fail only when run.
    for name in [
        "loop",
        "grow",
        "recurse",
        "bigresponse",
        "garbage",
        "startrap",
        "divzero",
    ] {
        let out = wasmgate(["check", &path(&format!("hostile/{name}.wasm"))]);
        assert_ok(&out);
        assert!(out.stdout.contains("abi: native"), "{name}: {out:?}");
    }

    let out = wasmgate(["check", &path("hostile/badimport.wasm")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("env.nonexistent"), "{out:?}");
    assert_fails(&out, 1);

    let out = wasmgate(["check", &path("hostile/invalid.wasm")]);
    assert!(
        out.stdout.contains("not a valid WebAssembly module"),
        "{out:?}"
    );
    assert_fails(&out, 1);

    // The directory as a whole fails because of those two.
    let out = wasmgate(["check", &path("hostile")]);
    let line = assert_fails(&out, 1);
    assert!(line.contains("failed the check"), "{line}");
    assert!(out.stdout.contains("loop.wasm: ok"), "{out:?}");
    assert!(out.stdout.contains("badimport.wasm: error"), "{out:?}");
    assert!(out.stdout.contains("invalid.wasm: error"), "{out:?}");
}

#[test]
fn check_failures() {
    let out = wasmgate(["check", "/definitely/not/here.wasm"]);
    let line = assert_fails(&out, 1);
    assert!(line.contains("failed the check"), "{line}");
    assert!(out.stdout.contains("cannot read module"), "{out:?}");

    let empty = TempDir::new("cli-empty");
    let out = wasmgate(["check", empty.path().to_str().unwrap()]);
    let line = assert_fails(&out, 1);
    assert!(line.contains("no .wasm files"), "{line}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, needle) in [
        (&["frobnicate"][..], "frobnicate"),
        (&["--frobnicate"], "--frobnicate"),
        (&["serve", "--bogus"], "--bogus"),
        (&["run"], "MODULE"),
        (&["run", "x.wasm", "--fuel", "lots"], "--fuel"),
        (&["run", "x.wasm", "--header", "nocolon"], "NAME:VALUE"),
        (&["run", "x.wasm", "--path", "relative"], "--path"),
        (&["run", "x.wasm", "--abi", "jvm"], "--abi"),
        (&["check"], "MODULE"),
        (&["serve", "--listen"], "--listen"),
    ] {
        let out = wasmgate(args);
        let line = assert_fails(&out, 2);
        assert!(line.contains(needle), "{args:?}: {line}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

#[test]
fn serve_rejects_an_unknown_config_key_with_file_and_line() {
    let dir = TempDir::new("cli-badkey");
    let config = dir.write(
        "wasmgate.toml",
        "[server]\nfunctions_dir = \".\"\nlisen = \"127.0.0.1:0\"\n",
    );
    let out = wasmgate(["serve", "--config", config.to_str().unwrap()]);
    let line = assert_fails(&out, 2);
    assert!(line.contains(&format!("{}:3:", config.display())), "{line}");
    assert!(line.contains("lisen"), "{line}");
}

#[test]
fn serve_rejects_a_bad_value_with_key_and_line() {
    let dir = TempDir::new("cli-badvalue");
    let config = dir.write(
        "wasmgate.toml",
        "[server]\nfunctions_dir = \".\"\n\n[limits]\nfuel = 1000\nmemory = \"lots\"\n",
    );
    let out = wasmgate(["serve", "--config", config.to_str().unwrap()]);
    let line = assert_fails(&out, 2);
    assert!(line.contains(&format!("{}:6:", config.display())), "{line}");
    assert!(line.contains("`memory`"), "{line}");

    // Found as ./wasmgate.toml when no DIR or --config is given.
    let out = wasmgate_in(dir.path(), ["serve", "--listen", "127.0.0.1:0"]);
    let line = assert_fails(&out, 2);
    assert!(line.contains("wasmgate.toml:6:"), "{line}");
}

#[test]
fn serve_with_nothing_to_serve_exits_2() {
    let dir = TempDir::new("cli-nothing");
    let out = wasmgate_in(dir.path(), ["serve", "--listen", "127.0.0.1:0"]);
    let line = assert_fails(&out, 2);
    assert!(line.contains("nothing to serve"), "{line}");

    let missing = dir.path().join("no-such-dir");
    let out = wasmgate(["serve", missing.to_str().unwrap()]);
    let line = assert_fails(&out, 2);
    assert!(line.contains("not a directory"), "{line}");
}

#[test]
fn serve_with_a_garbage_listen_address_exits_2() {
    let out = wasmgate(["serve", &path(""), "--listen", "garbage"]);
    let line = assert_fails(&out, 2);
    assert!(
        line.contains("--listen") && line.contains("garbage"),
        "{line}"
    );
}

#[test]
fn serve_on_a_port_in_use_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = wasmgate(["serve", &path(""), "--listen", &addr]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_no_panic(&out);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("wasmgate: cannot serve on"), "{out:?}");
    assert!(last.contains(&addr), "{out:?}");
    assert!(!out.stdout.contains("listening"), "{out:?}");
}

#[test]
fn a_function_that_could_never_fit_the_memory_budget_is_a_config_error() {
    let dir = common::TempDir::new("cli-budget");
    let config = dir.write(
        "wasmgate.toml",
        "[server]\nmemory_budget = \"4MiB\"\n\n[[function]]\nname = \"big\"\nroute = \"/big\"\nmodule = \"hello.wasm\"\nlimits = { memory = \"8MiB\" }\n",
    );
    let out = common::wasmgate(["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("big") && out.stderr.contains("memory_budget"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

/// Runs `serve --config` on a file holding `text` and returns its one line
/// of stderr, checking exit code 2 and that it names the file and `line`.
fn serve_refuses(tag: &str, text: impl AsRef<[u8]>, line: usize) -> String {
    let dir = TempDir::new(tag);
    let config = dir.write("wasmgate.toml", text);
    let out = wasmgate([
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let shown = assert_fails(&out, 2);
    assert!(
        shown.contains(&format!("{}:{line}: ", config.display())),
        "{shown}"
    );
    // Nothing of the config's bytes reaches the terminal raw.
    assert!(
        !shown.contains(|c: char| c.is_control() || c == char::REPLACEMENT_CHARACTER),
        "{shown:?}"
    );
    shown
}

#[test]
fn serve_refuses_a_number_outside_its_range() {
    for (key, value, shown) in [
        ("max_headers", "9223372036854775807", "between 1 and 1024"),
        ("max_headers", "1_000_000_000_000", "between 1 and 1024"),
        (
            "max_header_bytes",
            "1_000_000_000_000",
            "between 1KiB and 1MiB",
        ),
        ("max_body", "\"64GiB\"", "between 1B and 256MiB"),
        (
            "fuel_per_ms",
            "9223372036854775807",
            "between 1 and 100000000",
        ),
    ] {
        let text = format!("[server]\nfunctions_dir = \".\"\n{key} = {value}\n");
        let line = serve_refuses("cli-range", text, 3);
        assert!(line.contains(&format!("`{key}` must be {shown}")), "{line}");
    }
    let text = "[server]\nfunctions_dir = \".\"\n[limits]\nmemory = \"8GiB\"\n";
    let line = serve_refuses("cli-range", text, 4);
    assert!(
        line.contains("`memory` must be between 64KiB and 4GiB"),
        "{line}"
    );
}

#[test]
fn serve_refuses_a_value_of_the_wrong_type_naming_key_and_expectation() {
    let line = serve_refuses(
        "cli-type",
        "[server]\nfunctions_dir = \".\"\nmax_header_bytes = true\n",
        3,
    );
    assert!(
        line.ends_with(
            "`max_header_bytes` must be a size (an integer number of bytes or a string like \"16MiB\"), got a boolean"
        ),
        "{line}"
    );
    let line = serve_refuses(
        "cli-type",
        "[server]\nfunctions_dir = \".\"\n\n[[function]]\nroute = \"/a\"\nmodule = \"hello.wasm\"\nlimits = { fuel = \"lots\" }\n",
        7,
    );
    assert!(
        line.ends_with("`fuel` must be an integer, got a string"),
        "{line}"
    );
}

#[test]
fn serve_shows_control_bytes_and_invalid_utf8_escaped_with_their_line() {
    let line = serve_refuses("cli-nul", "[server]\n\nmax_headers = 1\0\n", 3);
    assert!(line.contains("(\\0)"), "{line}");
    let line = serve_refuses(
        "cli-esc",
        "[[function]]\nroute = \"/a\\u001b[2J\"\nmodule = \"x.wasm\"\n",
        2,
    );
    assert!(
        line.contains("`route`") && line.contains("\\u{1b}[2J"),
        "{line}"
    );
    let line = serve_refuses("cli-utf8", b"[server]\n\nlisten = \"\xc3\x28\"\n", 3);
    assert!(line.contains("invalid UTF-8 (byte 0xc3)"), "{line}");
}

#[test]
fn serve_refuses_a_configured_functions_dir_that_is_not_a_directory() {
    let line = serve_refuses(
        "cli-nodir",
        "[server]\n\nfunctions_dir = \"no-such-dir\"\n",
        3,
    );
    assert!(
        line.contains("`functions_dir`") && line.contains("no-such-dir"),
        "{line}"
    );
    let line = serve_refuses(
        "cli-filedir",
        "[server]\nfunctions_dir = \"wasmgate.toml\"\n",
        2,
    );
    assert!(line.ends_with("is not a directory"), "{line}");
}

#[test]
fn serve_refuses_methods_that_could_never_match() {
    let head = "[[function]]\nroute = \"/a\"\nmodule = \"hello.wasm\"\n";
    let line = serve_refuses("cli-methods", format!("{head}methods = []\n"), 4);
    assert!(line.contains("`methods` is empty"), "{line}");
    let line = serve_refuses(
        "cli-methods",
        format!("{head}methods = [\"GET\", \"GET /\"]\n"),
        4,
    );
    assert!(line.contains("\"GET /\" is not an HTTP method"), "{line}");
}

/// A native module of 256 pages (16 MiB, Zig's default stack) answering
/// 200 `ok`.
fn sixteen_mib(dir: &TempDir) -> String {
    let msg = [0xc8, 0x01, 0x00, 0x02, b'o', b'k'];
    let big = dir.write("big.wasm", native_answering(&msg, 256));
    big.to_str().unwrap().to_owned()
}

/// A `run` that failed at run time (exit 1): the stats line, then the
/// error line, which is returned.
fn run_fails(out: &Cli) -> String {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_no_panic(out);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("fuel used: "), "{out:?}");
    assert!(lines[1].starts_with("wasmgate: "), "{out:?}");
    lines[1].to_owned()
}

const REFUSED: &str =
    "the module declares 16MiB of initial memory; the function's `memory` limit is 8MiB";

/// `run` applies the limits in force: the defaults, a config's (its
/// `[limits]`, or the `[[function]]` serving the module), then the flags.
#[test]
fn run_takes_memory_timeout_and_config() {
    let dir = TempDir::new("cli-run-limits");
    let big = sixteen_mib(&dir);
    let out = wasmgate(["run", &big]);
    let line = run_fails(&out);
    assert!(line.contains(REFUSED), "{line}");
    assert!(out.stderr.starts_with("fuel used: 0,"), "{out:?}");
    assert!(line.contains("(module-unavailable, HTTP 503)"), "{line}");
    assert!(out.stdout.is_empty(), "{out:?}");

    let out = wasmgate(["run", &big, "--memory", "32MiB"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "HTTP 200\n\nok", "{out:?}");

    // A configured function's limits, and the config's [limits] for any
    // other module; a flag wins over both.
    let config = dir.write(
        "wasmgate.toml",
        "[limits]\nmemory = \"64MiB\"\nfuel = 1000\n\n\
         [[function]]\nroute = \"/big\"\nmodule = \"big.wasm\"\n\
         limits = { memory = \"32MiB\", fuel = 1_000_000 }\n",
    );
    let config = config.to_str().unwrap();
    let out = wasmgate(["run", &big, "--config", config]);
    assert_ok(&out);
    assert_eq!(out.stdout, "HTTP 200\n\nok", "{out:?}");
    let out = wasmgate(["run", &big, "--config", config, "--memory", "8MiB"]);
    assert!(run_fails(&out).contains(REFUSED), "{out:?}");
    let out = wasmgate(["run", &path("hello.wasm"), "--config", config]);
    let line = run_fails(&out);
    assert!(line.contains("its budget is 1000 instructions"), "{line}");

    // The timeout: CPU time, 1 ms, with fuel out of reach.
    let out = wasmgate([
        "run",
        &path("hostile/loop.wasm"),
        "--fuel",
        "1_000_000_000_000",
        "--timeout",
        "1ms",
    ]);
    let line = run_fails(&out);
    assert!(line.contains("timeout of 1 ms of CPU time"), "{line}");

    // Values outside a key's range are usage errors, as in a config.
    for (flag, value, needle) in [
        (
            "--memory",
            "1KiB",
            "--memory must be between 64KiB and 4GiB, got 1KiB",
        ),
        ("--memory", "lots", "--memory must be a size"),
        (
            "--timeout",
            "0ms",
            "--timeout must be between 1ms and 24h, got 0s",
        ),
        ("--fuel", "0", "--fuel must be between 1 and"),
    ] {
        let out = wasmgate(["run", &big, flag, value]);
        let line = assert_fails(&out, 2);
        assert!(line.contains(needle), "{line}");
    }
}

/// `check` warns about a module no request could run under the limits in
/// force, and says which limits those are.
#[test]
fn check_warns_when_the_initial_memory_is_over_the_limit() {
    let dir = TempDir::new("cli-check-limits");
    let big = sixteen_mib(&dir);
    let out = wasmgate(["check", &big]);
    assert_ok(&out);
    assert!(out.stdout.contains("big.wasm: ok"), "{out:?}");
    assert!(
        out.stdout
            .contains("limits in force: fuel 100000000, memory 8MiB, timeout 5s"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "warning: {REFUSED}: every request would be refused (503 module-unavailable)"
        )),
        "{out:?}"
    );

    let out = wasmgate(["check", &big, "--memory", "32MiB"]);
    assert_ok(&out);
    assert!(!out.stdout.contains("warning"), "{out:?}");
    let config = dir.write(
        "wasmgate.toml",
        "[limits]\nmemory = \"32MiB\"\nfuel = 100\n",
    );
    let out = wasmgate(["check", &big, "--config", config.to_str().unwrap()]);
    assert_ok(&out);
    assert!(!out.stdout.contains("warning: the module"), "{out:?}");
    assert!(
        out.stdout
            .contains("more than the `fuel` budget (100): every request would end in 504 deadline"),
        "{out:?}"
    );
}

/// `check`'s advice for a large initial memory names the stack flag of the
/// toolchain the module's `producers` section names, or every one's.
#[test]
fn check_names_the_stack_flag_of_the_modules_toolchain() {
    let dir = TempDir::new("cli-check-toolchain");
    let msg = [0xc8, 0x01, 0x00, 0x00];
    let cases = [
        (
            "rust",
            &[
                ("language", &["C11", "Rust"][..]),
                ("processed-by", &["clang", "rustc"]),
            ][..],
            "RUSTFLAGS=\"-C link-arg=-zstack-size=65536\"",
        ),
        (
            "c",
            &[("language", &["C11"][..]), ("processed-by", &["clang"])],
            "link with `-Wl,-z,stack-size=65536`",
        ),
        ("go", &[("language", &["Go"][..])], "no flag makes it"),
        (
            "unknown",
            &[],
            "Rust: -C link-arg=-zstack-size=65536; Zig: --stack 65536;\n  \
             C (clang, wasm-ld): -Wl,-z,stack-size=65536",
        ),
    ];
    for (name, fields, advice) in cases {
        // 32 pages (2 MiB): over the size the note is printed at.
        let mut module = native_answering(&msg, 32);
        if !fields.is_empty() {
            module.extend(producers_section(fields));
        }
        let file = dir.write(&format!("{name}.wasm"), module);
        let out = wasmgate(["check", file.to_str().unwrap()]);
        assert_ok(&out);
        assert!(
            out.stdout.contains("the initial memory is zero-filled"),
            "{out:?}"
        );
        assert!(out.stdout.contains(advice), "{name}: {out:?}");
    }
}

/// A `producers` custom section (appended to a module, it is still valid)
/// of `(field, [values])`.
fn producers_section(fields: &[(&str, &[&str])]) -> Vec<u8> {
    let string = |out: &mut Vec<u8>, s: &str| {
        common::leb128(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    };
    let mut payload = Vec::new();
    string(&mut payload, "producers");
    common::leb128(fields.len() as u64, &mut payload);
    for (field, values) in fields {
        string(&mut payload, field);
        common::leb128(values.len() as u64, &mut payload);
        for value in *values {
            string(&mut payload, value);
            string(&mut payload, "1.0");
        }
    }
    let mut section = vec![0];
    common::leb128(payload.len() as u64, &mut section);
    section.extend(payload);
    section
}

/// A config file is read up to 1 MiB: `/dev/zero` (which grew memory
/// without bound) or a larger file is refused by every command that reads
/// one, naming the file and the cap; a file of exactly 1 MiB is read.
#[test]
fn a_config_file_over_1_mib_is_refused_naming_the_file_and_the_cap() {
    let dir = TempDir::new("cli-bigconfig");
    let sized = |name: &str, len: usize| {
        let mut text = "[limits]\nfuel = 1000\n#".to_owned();
        text.push_str(&"x".repeat(len - text.len() - 1));
        text.push('\n');
        dir.write(name, text).to_str().unwrap().to_owned()
    };
    let exact = sized("exact.toml", 1 << 20);
    let out = wasmgate(["check", &path("hello.wasm"), "--config", &exact]);
    assert_ok(&out);
    assert!(out.stdout.contains("fuel 1000,"), "{out:?}");

    let over = sized("over.toml", (1 << 20) + 1);
    for config in [over.as_str(), "/dev/zero"] {
        for args in [
            &["serve", "--config", config][..],
            &["run", &path("hello.wasm"), "--config", config],
            &["check", &path("hello.wasm"), "--config", config],
        ] {
            let line = assert_fails(&wasmgate(args), 2);
            assert!(
                line.contains(&format!(
                    "{config}: the config file is larger than 1MiB, the most a config file may be"
                )),
                "{args:?}: {line}"
            );
        }
    }
}

/// `--memory` is held to the rule the config's own `memory` is: with
/// `max_response` it must fit `memory_budget`, or the function could never
/// be admitted; the error is the config's.
#[test]
fn run_and_check_memory_must_fit_the_memory_budget_with_max_response() {
    for command in ["run", "check"] {
        let out = wasmgate([command, &path("hello.wasm"), "--memory", "4GiB"]);
        let line = assert_fails(&out, 2);
        assert!(
            line.contains(
                "`memory` plus `max_response` of hello (4294967296 + 1048576 bytes) is larger than `memory_budget` (268435456 bytes): it could never run"
            ),
            "{command}: {line}"
        );
        // 255 MiB + 1 MiB is the whole default budget: allowed.
        let out = wasmgate([command, &path("hello.wasm"), "--memory", "255MiB"]);
        assert_ok(&out);
    }
}
