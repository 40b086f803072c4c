//! The official WASI test suite (`WebAssembly/wasi-testsuite`): every
//! vendored preview1 test module (`tests/wasi-testsuite/`, see its README)
//! runs through the real server as a wasi-json function, with the test's own
//! `args` and `env`, and must give what the suite expects: exit code 0 is a
//! 2xx answer whose body is the expected `stdout` (when the test names
//! one); a non-zero exit code N is 502 `exit-code` naming N.
//!
//! One server serves them all, one request at a time (bounded work under
//! qemu); every failure is collected and reported by the test's name.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{Response, Server, function};

/// The suite's languages, each a directory of `NAME.wasm` (+ `NAME.json`).
const LANGUAGES: &[&str] = &["assemblyscript", "c", "rust"];
/// How many tests are vendored (the README's count): a file lost from the
/// directory fails here instead of silently shrinking the suite.
const VENDORED: usize = 23;

/// One suite test: its module and what its JSON specifies.
struct Case {
    /// `language/NAME`, as the suite names it.
    name: String,
    module: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    exit_code: i64,
    stdout: Option<String>,
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi-testsuite")
}

/// Every vendored test, in name order, with the suite's defaults for what
/// its JSON leaves out (doc/specification.md: no args, empty env, exit code
/// 0, stdout unchecked).
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for lang in LANGUAGES {
        let dir = suite_dir().join(lang);
        let mut modules: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        modules.sort();
        for module in modules {
            let stem = module.file_stem().unwrap().to_str().unwrap().to_owned();
            let spec: serde_json::Value = match std::fs::read(module.with_extension("json")) {
                Ok(text) => serde_json::from_slice(&text).unwrap(),
                Err(_) => serde_json::json!({}),
            };
            for key in spec.as_object().unwrap().keys() {
                assert!(
                    ["args", "env", "exit_code", "stdout"].contains(&key.as_str()),
                    "{lang}/{stem}: `{key}` in its JSON is not supported here \
                     (a filesystem test must not be vendored)"
                );
            }
            let strings = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
            cases.push(Case {
                name: format!("{lang}/{stem}"),
                args: spec["args"]
                    .as_array()
                    .map(|a| a.iter().map(strings).collect())
                    .unwrap_or_default(),
                env: spec["env"]
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                    .unwrap_or_default(),
                exit_code: spec["exit_code"].as_i64().unwrap_or(0),
                stdout: spec["stdout"].as_str().map(str::to_owned),
                module,
            });
        }
    }
    cases
}

/// A TOML basic string: JSON's string escapes are all valid TOML escapes.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn route(case: &Case) -> String {
    format!("/wasi/{}", case.name)
}

/// One `[[function]]` per test, wasi-json, with the test's args and env.
fn config(cases: &[Case]) -> String {
    let mut toml = String::from("[server]\nfunctions_dir = \".\"\n");
    for case in cases {
        let args: Vec<String> = case.args.iter().map(|a| toml_string(a)).collect();
        let env: Vec<String> = case
            .env
            .iter()
            .map(|(k, v)| format!("{} = {}", toml_string(k), toml_string(v)))
            .collect();
        write!(
            toml,
            "\n[[function]]\nroute = {}\nmodule = {}\nabi = \"wasi-json\"\nargs = [{}]\nenv = {{ {} }}\n",
            toml_string(&route(case)),
            toml_string(case.module.to_str().unwrap()),
            args.join(", "),
            env.join(", "),
        )
        .unwrap();
    }
    toml
}

/// What is wrong with `r` for `case`, if anything.
fn check(case: &Case, r: &Response) -> Option<String> {
    let error = r.header("x-wasmgate-error");
    if case.exit_code == 0 {
        if !(200..300).contains(&r.status) || error.is_some() {
            return Some(format!(
                "expected a 2xx answer, got {} {error:?}: {}",
                r.status,
                r.text()
            ));
        }
        if let Some(stdout) = &case.stdout
            && r.body != stdout.as_bytes()
        {
            return Some(format!("expected body {stdout:?}, got {:?}", r.text()));
        }
        return None;
    }
    let named = format!("code {}", case.exit_code);
    let message = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|j| j["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if r.status != 502 || error != Some("exit-code") || !message.contains(&named) {
        return Some(format!(
            "expected 502 exit-code naming {named:?}, got {} {error:?}: {}",
            r.status,
            r.text()
        ));
    }
    None
}

#[test]
fn every_vendored_preview1_test_passes_through_the_server() {
    let cases = cases();
    assert_eq!(
        cases.len(),
        VENDORED,
        "vendored tests: {:?}",
        cases.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    let s = Server::with_config(&config(&cases), &[("hello.wasm", function("hello.wasm"))]);
    let mut failures = String::new();
    for case in &cases {
        let r = s.get(&route(case));
        if let Some(why) = check(case, &r) {
            // The guest's stderr (assertion messages) is in the log, tagged
            // with the function's name.
            let stem = case.name.rsplit('/').next().unwrap_or_default();
            let tag = format!("[{stem} ");
            let guest: Vec<String> = s
                .log()
                .lines()
                .filter(|l| l.contains(&tag))
                .map(str::to_owned)
                .collect();
            writeln!(failures, "{}: {why}\n    log: {guest:?}", case.name).unwrap();
        }
    }
    assert!(failures.is_empty(), "failed suite tests:\n{failures}");
    s.assert_healthy();
}
