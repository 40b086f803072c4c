//! Crash dumps and `wasmgate replay`: a real server with `[dumps]` writes
//! a dump for each failing request (and none for a good one, none without
//! `[dumps]`), keeps at most `max_files`, and `wasmgate replay` runs each
//! dump again offline to the same outcome at the same fuel count, with
//! the clock readings, random bytes and KV answers fed back. http-wasm
//! too: a middleware in front of a real upstream (failing in `_start`,
//! `handle_request`, or `handle_response` on the upstream's response or
//! error) and an http-wasm function.

mod common;

use std::path::{Path, PathBuf};

use common::{Server, TempDir, function, wasmgate};

/// A wasi-json module that reads the realtime and monotonic clocks and 8
/// random bytes, then counts down a number of iterations that depends on
/// them, then runs `end` (`unreachable`: a trap whose fuel count depends
/// on every input; nothing: 200 with an empty body).
fn dice(end: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i32)
    (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 256)))
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 264)))
    (drop (call $random (i32.const 512) (i32.const 8)))
    (local.set $n
      (i32.add
        (i32.add (i32.load8_u (i32.const 512)) (i32.load8_u (i32.const 519)))
        (i32.add
          (i32.and (i32.wrap_i64 (i64.load (i32.const 256))) (i32.const 1023))
          (i32.and (i32.wrap_i64 (i64.load (i32.const 264))) (i32.const 1023)))))
    (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 300)) (i32.const 1)))
    (loop $l
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    {end}))"#
    ))
    .unwrap()
}

/// A native module that reads KV key `k`. A short request (no body) sets
/// `k` to `hello` and answers 200; a long one counts down a number of
/// iterations that depends on what `kv_get` answered, then traps.
fn kv_crash() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasmgate" "kv_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_set" (func $set (param i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "k")
  (data (i32.const 32) "hello")
  (data (i32.const 4096) "\c8\01\00\00")
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "wasmgate_handle") (param $p i32) (param $len i32) (result i64)
    (local $n i32)
    (local.set $n (call $get (i32.const 16) (i32.const 1) (i32.const 64) (i32.const 64)))
    (if (i32.lt_u (local.get $len) (i32.const 500))
      (then
        (drop (call $set (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 5) (i64.const 0)))
        (return (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.const 4)))))
    (local.set $n (i32.mul (i32.add (local.get $n) (i32.const 10)) (i32.const 10000)))
    (loop $l
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    unreachable))"#,
    )
    .unwrap()
}

/// The modules of [`server`], written to `tmp`.
fn files(tmp: &TempDir) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("hello.wasm", function("hello.wasm")),
        ("divzero.wasm", function("hostile/divzero.wasm")),
        ("loop.wasm", function("hostile/loop.wasm")),
        ("dice.wasm", tmp.write("dice.wasm", dice("unreachable"))),
        ("kvcrash.wasm", tmp.write("kvcrash.wasm", kv_crash())),
    ]
}

const FUNCTIONS: &str = r#"
[state]
dir = "state"

[[function]]
route = "/hello"
module = "hello.wasm"

[[function]]
route = "/divzero"
module = "divzero.wasm"

[[function]]
route = "/loop"
module = "loop.wasm"
limits = { fuel = 3_000_000 }

[[function]]
route = "/dice"
module = "dice.wasm"

[[function]]
route = "/kvcrash"
module = "kvcrash.wasm"
"#;

/// A server with `[dumps]` (`extra` added to it) and every test function.
fn server(tmp: &TempDir, extra: &str) -> Server {
    let config = format!("[dumps]\ndir = \"dumps\"\n{extra}\n{FUNCTIONS}");
    Server::with_config(&config, &files(tmp))
}

/// How many dumps the log says were written.
fn written(s: &Server) -> usize {
    s.log().matches("crash dump written").count()
}

/// The dump files in `dir`, oldest first.
fn dumps_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".dump.toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The dump of the request with trace id `trace` (waits for it).
fn dump_of(s: &Server, trace: &str) -> (PathBuf, serde_json::Value) {
    let log = s.wait_for_log(&format!("[{trace}] crash dump written: "));
    let line = log
        .lines()
        .find(|l| l.contains(&format!("[{trace}] crash dump written: ")))
        .unwrap();
    let path = PathBuf::from(line.split("crash dump written: ").nth(1).unwrap().trim());
    (path.clone(), read_dump(&path))
}

/// A dump file (TOML, read with the reference parser) as JSON, for
/// indexing.
fn read_dump(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    serde_json::to_value(table).unwrap()
}

/// The value of row `name` of replay's table: (recorded, replayed).
fn row<'a>(stdout: &'a str, name: &str) -> (&'a str, &'a str) {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` row in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1], words[2])
}

/// Replays `dump` (with `extra` arguments) and checks it is reproduced:
/// exit 0, `reproduced`, the recorded kind, status and fuel on both sides.
fn assert_reproduced(dump: &Path, json: &serde_json::Value) {
    let out = wasmgate(["replay".as_ref(), dump.as_os_str()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.lines().any(|l| l == "reproduced"), "{out:?}");
    let kind = json["outcome"]["error"].as_str().unwrap();
    let fuel = json["outcome"]["fuel"].as_u64().unwrap().to_string();
    let status = json["outcome"]["status"].as_u64().unwrap().to_string();
    assert_eq!(row(&out.stdout, "error"), (kind, kind), "{}", out.stdout);
    assert_eq!(
        row(&out.stdout, "fuel"),
        (fuel.as_str(), fuel.as_str()),
        "{}",
        out.stdout
    );
    assert_eq!(
        row(&out.stdout, "status"),
        (status.as_str(), status.as_str())
    );
}

#[test]
fn a_trap_writes_a_dump_that_replays_at_the_same_fuel() {
    let tmp = TempDir::new("dumps-trap");
    let s = server(&tmp, "");
    let r = s.request(
        "POST",
        "/divzero?x=1",
        &[("x-request-id", "trap-1"), ("x-note", "kept")],
        b"the body\x01\x7f\"\\\n",
    );
    r.assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "trap-1");
    assert_eq!(dump["wasmgate_dump"], 1);
    assert_eq!(dump["function"], "divzero");
    assert_eq!(dump["route"], "/divzero");
    assert_eq!(dump["abi"], "native");
    let sha = dump["module"]["sha256"].as_str().unwrap();
    assert!(
        sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "{sha}"
    );
    assert!(
        dump["module"]["path"]
            .as_str()
            .unwrap()
            .ends_with("divzero.wasm")
    );
    assert_eq!(dump["request"]["method"], "POST");
    assert_eq!(dump["request"]["uri"], "/divzero?x=1");
    assert_eq!(dump["request"]["body"]["text"], "the body\u{1}\u{7f}\"\\\n");
    assert_eq!(dump["request"]["trace_id"], "trap-1");
    let headers = dump["request"]["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "x-note" && h[1]["text"] == "kept"),
        "{headers:?}"
    );
    assert_eq!(dump["limits"]["fuel"], 100_000_000);
    assert_eq!(dump["limits"]["fuel_slice"], 100_000);
    assert_eq!(dump["limits"]["memory"], 8 << 20);
    assert_eq!(dump["limits"]["memory_pages"], 128);
    assert_eq!(dump["outcome"]["error"], "trap");
    assert_eq!(dump["outcome"]["status"], 502);
    assert!(
        dump["outcome"]["message"]
            .as_str()
            .unwrap()
            .contains("divide by zero"),
        "{dump}"
    );
    let fuel = dump["outcome"]["fuel"].as_u64().unwrap();
    assert!(fuel > 0);
    let access = s.wait_for_log("fn=divzero status=502");
    let line = access.lines().find(|l| l.contains("trace=trap-1")).unwrap();
    assert!(
        line.contains(&format!(" fuel={fuel} ")),
        "the access line's fuel: {line}"
    );
    assert_reproduced(&path, &dump);
    s.assert_healthy();

    // A bad response (a request its one page of memory cannot take) too.
    let body = vec![b'x'; 70 << 10];
    let r = s.request("POST", "/divzero", &[("x-request-id", "bad-1")], &body);
    r.assert_error(502, "bad-response");
    let (path, dump) = dump_of(&s, "bad-1");
    assert_eq!(dump["outcome"]["error"], "bad-response");
    assert_eq!(
        dump["request"]["body"]["text"].as_str().unwrap().len(),
        70 << 10
    );
    assert_reproduced(&path, &dump);
    s.assert_healthy();
}

#[test]
fn a_deadline_replays_at_the_same_fuel() {
    let tmp = TempDir::new("dumps-deadline");
    let s = server(&tmp, "");
    let r = s.get_with("/loop", &[("x-request-id", "loop-1")]);
    r.assert_error(504, "deadline");
    let (path, dump) = dump_of(&s, "loop-1");
    assert_eq!(dump["outcome"]["error"], "deadline");
    assert_eq!(dump["limits"]["fuel"], 3_000_000);
    assert_eq!(
        dump["outcome"]["fuel"].as_u64(),
        Some(s.logged_fuel("loop"))
    );
    assert_reproduced(&path, &dump);
    s.assert_healthy();
}

#[test]
fn clock_and_random_inputs_are_fed_back() {
    let tmp = TempDir::new("dumps-dice");
    let s = server(&tmp, "");
    let mut fuels = Vec::new();
    for i in 0..2 {
        let trace = format!("dice-{i}");
        let r = s.get_with("/dice", &[("x-request-id", &trace)]);
        r.assert_error(502, "trap");
        let (path, dump) = dump_of(&s, &trace);
        assert_eq!(dump["abi"], "wasi-json");
        let clocks = dump["inputs"]["clocks"].as_array().unwrap();
        assert_eq!(clocks.len(), 2, "{dump}");
        assert_eq!(clocks[0]["clock"], 0);
        assert_eq!(clocks[1]["clock"], 1);
        assert_eq!(dump["inputs"]["random"].as_str().unwrap().len(), 16);
        assert_eq!(dump["inputs"]["truncated"], false);
        assert_reproduced(&path, &dump);
        fuels.push(dump["outcome"]["fuel"].as_u64().unwrap());

        // The same dump with other random bytes stops elsewhere: the
        // replay does use the recording.
        let random = dump["inputs"]["random"].as_str().unwrap();
        let flipped = if random.starts_with("ff") { "00" } else { "ff" };
        let text = std::fs::read_to_string(&path).unwrap();
        let line = format!("random = \"{random}\"");
        assert!(text.contains(&line), "{text}");
        let other = text.replace(&line, &format!("random = \"{flipped}{}\"", &random[2..]));
        let edited = tmp.write(&format!("edited-{i}.toml"), other);
        let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
        assert_eq!(out.code, Some(3), "{out:?}");
        assert!(out.stdout.lines().any(|l| l == "differs"), "{out:?}");
        assert!(out.stderr.contains("differs from the recording"), "{out:?}");
    }
    s.assert_healthy();
}

#[test]
fn replay_prints_what_a_dump_holds_with_its_control_characters_escaped() {
    let tmp = TempDir::new("dumps-escape");
    let s = server(&tmp, "");
    s.get_with("/dice", &[("x-request-id", "esc-1")])
        .assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "esc-1");
    let text = std::fs::read_to_string(&path).unwrap();
    // A crafted target: an OSC sequence that would retitle the terminal.
    let uri = dump["request"]["uri"].as_str().unwrap();
    let line = format!("uri = \"{uri}\"");
    assert!(text.contains(&line), "{text}");
    let crafted = text.replace(&line, &format!("uri = \"{uri}\\u001b]0;TITLE\\u0007\""));
    let edited = tmp.write("escape.toml", &crafted);
    let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
    // The guest reads the target, so it may run differently (3).
    assert!(matches!(out.code, Some(0 | 3)), "{out:?}");
    assert!(
        !out.stdout.contains(['\u{1b}', '\u{7}']) && !out.stderr.contains(['\u{1b}', '\u{7}']),
        "{out:?}"
    );
    assert!(out.stdout.contains("\\u{1b}]0;TITLE\\u{7}"), "{out:?}");
    // A module path the dump names, in the error that it cannot be read.
    let module = dump["module"]["path"].as_str().unwrap();
    let line = format!("path = \"{module}\"");
    assert!(crafted.contains(&line), "{crafted}");
    let crafted = crafted.replace(&line, "path = \"/nonexistent\\u001b[31m.wasm\"");
    let edited = tmp.write("escape-path.toml", crafted);
    let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("/nonexistent\\u{1b}[31m.wasm"),
        "{out:?}"
    );
    assert!(!out.stderr.contains('\u{1b}'), "{out:?}");

    // What the server never writes is refused, and said escaped: a
    // function name or trace id with control characters (guest log lines
    // print both), a hash that is not one, TOML that quotes a crafted key.
    let function = format!("function = \"{}\"", dump["function"].as_str().unwrap());
    let trace = "trace_id = \"esc-1\"";
    let sha = format!(
        "sha256 = \"{}\"",
        dump["module"]["sha256"].as_str().unwrap()
    );
    // And one of more values than any dump holds (its tree would take
    // far more memory than its text).
    let many = format!("{trace}\nextra = [{}0]", "0,".repeat(1 << 20));
    for (from, to, error) in [
        (trace, many.as_str(), "too many values"),
        (
            function.as_str(),
            "function = \"f\\u001b[2J\"",
            "`function` is empty or holds a control character",
        ),
        (
            trace,
            "trace_id = \"esc\\u001b]0;T\\u0007\"",
            "`trace_id` is not a trace id",
        ),
        (
            sha.as_str(),
            "sha256 = \"\\u001b[31m\"",
            "`sha256` is not 64 lowercase hex digits",
        ),
        (
            trace,
            "trace_id = \"esc-1\"\n\"\\u001b[2J\" = 1\n\"\\u001b[2J\" = 2",
            "duplicate key",
        ),
    ] {
        assert!(text.contains(from), "{from} in {text}");
        let edited = tmp.write("refused.toml", text.replace(from, to));
        let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("not a wasmgate crash dump"), "{out:?}");
        assert!(out.stderr.contains(error), "{error}: {out:?}");
        assert!(!out.stderr.contains(['\u{1b}', '\u{7}']), "{out:?}");
    }
    // The dump's own file name.
    let named = tmp.write("dump-\u{1b}[31m.toml", &text);
    let out = wasmgate(["replay".as_ref(), named.as_os_str()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("dump-\\u{1b}[31m.toml"), "{out:?}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'),
        "{out:?}"
    );
    // A module path naming a file that is not a module: refused without
    // its hash or first bytes, also with --module.
    let module = dump["module"]["path"].as_str().unwrap();
    let passwd = text.replace(&format!("path = \"{module}\""), "path = \"/etc/passwd\"");
    let edited = tmp.write("passwd.toml", passwd);
    let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("/etc/passwd: not a WebAssembly module"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("sha256"), "{out:?}");
    let out = wasmgate([
        "replay".as_ref(),
        path.as_os_str(),
        "--module".as_ref(),
        "/etc/passwd".as_ref(),
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("/etc/passwd: not a WebAssembly module"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("root"), "{out:?}");
    s.assert_healthy();
}

#[test]
fn kv_reads_are_answered_from_the_recording() {
    let tmp = TempDir::new("dumps-kv");
    let s = server(&tmp, "");
    // A good request sets `k` (and writes no dump)...
    assert_eq!(s.get("/kvcrash").status, 200);
    // ...which the failing one reads.
    let body = vec![b'x'; 1000];
    let r = s.request("POST", "/kvcrash", &[("x-request-id", "kv-1")], &body);
    r.assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "kv-1");
    let kv = dump["inputs"]["kv"].as_array().unwrap();
    assert_eq!(kv.len(), 1, "{dump}");
    assert_eq!(kv[0]["op"], "get");
    assert_eq!(kv[0]["key"], "6b");
    assert_eq!(kv[0]["answer"]["value"], "68656c6c6f");
    assert_eq!(written(&s), 1, "the good request wrote no dump");
    // The replay has no store: its fuel matches only because `get`
    // answered `hello` from the recording.
    assert_reproduced(&path, &dump);
    s.assert_healthy();
}

#[test]
fn a_new_module_runs_on_the_recorded_inputs() {
    let tmp = TempDir::new("dumps-module");
    let s = server(&tmp, "");
    s.get_with("/dice", &[("x-request-id", "fix-1")])
        .assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "fix-1");
    let fixed = tmp.write("fixed.wasm", dice(""));
    let out = wasmgate([
        "replay".as_ref(),
        path.as_os_str(),
        "--module".as_ref(),
        fixed.as_os_str(),
    ]);
    // It does something else: exit 3.
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(row(&out.stdout, "status"), ("502", "200"), "{}", out.stdout);
    assert_eq!(row(&out.stdout, "error"), ("trap", "none"));
    assert!(
        out.stdout.contains("on the recorded inputs: status 200"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("warning:"), "{out:?}");
    // The same inputs, the same path up to where the trap was: no more
    // fuel than the recording.
    let recorded = dump["outcome"]["fuel"].as_u64().unwrap();
    let (_, replayed) = row(&out.stdout, "fuel");
    assert!(
        replayed.parse::<u64>().unwrap() <= recorded,
        "{}",
        out.stdout
    );

    // A module that asks for more than was recorded is told so.
    let greedy = tmp.write(
        "greedy.wasm",
        dice("(drop (call $random (i32.const 512) (i32.const 8)))"),
    );
    let out = wasmgate([
        "replay".as_ref(),
        path.as_os_str(),
        "--module".as_ref(),
        greedy.as_os_str(),
    ]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stdout
            .contains("warning:   the guest asked for 1 input(s) not in the recording"),
        "{out:?}"
    );

    // Without --module, a changed module file is refused.
    std::fs::copy(&fixed, s.dir().join("dice.wasm")).unwrap();
    let out = wasmgate(["replay".as_ref(), path.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("the module changed since the dump"),
        "{out:?}"
    );
    s.assert_healthy();
}

#[test]
fn the_ring_keeps_at_most_max_files() {
    let tmp = TempDir::new("dumps-ring");
    let s = server(&tmp, "max_files = 2");
    for i in 0..5 {
        let trace = format!("ring-{i}");
        s.get_with("/divzero", &[("x-request-id", &trace)])
            .assert_error(502, "trap");
        // One at a time, so that each is written and trimmed in order.
        dump_of_written(&s, &trace);
        assert!(dumps_in(&s.dir().join("dumps")).len() <= 2);
    }
    let kept = dumps_in(&s.dir().join("dumps"));
    assert_eq!(kept.len(), 2, "{kept:?}");
    let traces: Vec<String> = kept
        .iter()
        .map(|p| {
            read_dump(p)["request"]["trace_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(traces, ["ring-3", "ring-4"], "the newest are kept");
    s.assert_healthy();
}

/// Waits for the log line of `trace`'s dump.
fn dump_of_written(s: &Server, trace: &str) {
    s.wait_for_log(&format!("[{trace}] crash dump written: "));
}

#[test]
fn good_requests_write_no_dump() {
    let tmp = TempDir::new("dumps-good");
    let s = server(&tmp, "");
    for _ in 0..3 {
        s.assert_healthy();
    }
    s.get_with("/divzero", &[("x-request-id", "after-good")])
        .assert_error(502, "trap");
    dump_of_written(&s, "after-good");
    let dumps = dumps_in(&s.dir().join("dumps"));
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert_eq!(written(&s), 1);
}

#[test]
fn without_dumps_nothing_is_written() {
    let tmp = TempDir::new("dumps-off");
    let s = Server::with_config(FUNCTIONS, &files(&tmp));
    s.get_with("/divzero", &[("x-request-id", "off-1")])
        .assert_error(502, "trap");
    s.get("/loop").assert_error(504, "deadline");
    s.assert_healthy();
    let log = s.wait_for_log("fn=hello status=200");
    assert!(!log.contains("crash dump"), "{log}");
    assert!(!s.dir().join("dumps").exists());
}

#[test]
fn replay_refuses_what_is_not_a_dump() {
    let tmp = TempDir::new("dumps-bad");
    let bad = tmp.write("bad.toml", "wasmgate_dump = 1\n");
    let out = wasmgate(["replay".as_ref(), bad.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("not a wasmgate crash dump"), "{out:?}");
    let out = wasmgate(["replay"]);
    assert_eq!(out.code, Some(2), "{out:?}");
}

#[test]
fn a_dump_that_cannot_be_written_is_a_log_line_not_a_failure() {
    let tmp = TempDir::new("dumps-unwritable");
    // `dir` under a regular file: it can never be created.
    let config = format!("[dumps]\ndir = \"hello.wasm/dumps\"\n{FUNCTIONS}");
    let s = Server::with_config(&config, &files(&tmp));
    let r = s.get_with("/divzero", &[("x-request-id", "nodir-1")]);
    r.assert_error(502, "trap");
    s.wait_for_log("[nodir-1] crash dump not written: ");
    s.assert_healthy();

    // A dump larger than `max_bytes` is not written; smaller ones are.
    let s = server(&tmp, "max_bytes = \"64KiB\"");
    let body = vec![b'x'; 70 << 10];
    // (divzero's one page of memory cannot take it: bad-response.)
    let r = s.request("POST", "/divzero", &[("x-request-id", "big-1")], &body);
    r.assert_error(502, "bad-response");
    let log = s.wait_for_log("[big-1] crash dump not written: ");
    assert!(log.contains("more than [dumps] max_bytes (65536)"), "{log}");
    s.get_with("/divzero", &[("x-request-id", "small-1")])
        .assert_error(502, "trap");
    dump_of_written(&s, "small-1");
    assert_eq!(dumps_in(&s.dir().join("dumps")).len(), 1);
    s.assert_healthy();
}

/// The `http_handler` and WASI imports of the http-wasm guests below.
const HTTP_WASM_IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "http_handler" "get_header_values" (func $get_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_status_code" (func $get_status (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-crash")
  (global $started (mut i32) (i32.const 0))
  ;; Spins a number of iterations that depends on the clock, 8 random
  ;; bytes and `extra`.
  (func $dice (param $extra i32)
    (local $n i32)
    (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 256)))
    (drop (call $random (i32.const 512) (i32.const 8)))
    (local.set $n
      (i32.add
        (i32.add (i32.load8_u (i32.const 512)) (i32.load8_u (i32.const 519)))
        (i32.add (local.get $extra)
          (i32.and (i32.wrap_i64 (i64.load (i32.const 256))) (i32.const 1023)))))
    (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 300)) (i32.const 1)))
    (loop $l
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0)))))
  ;; Whether the request has an `x-crash` field.
  (func $crash (result i32)
    (i64.ne
      (i64.shr_u (call $get_values (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 64) (i32.const 64))
        (i64.const 32))
      (i64.const 0)))
  ;; `_start` (pre-initialised into a snapshot): handle_request traps
  ;; unless it ran.
  (func (export "_start") (global.set $started (i32.const 1)))
"#;

/// An http-wasm module: the imports, and `handle_request` and
/// `handle_response` bodies.
fn http_guest(request: &str, response: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {HTTP_WASM_IMPORTS}
          (func (export "handle_request") (result i64)
            (if (i32.eqz (global.get $started)) (then unreachable))
            {request})
          (func (export "handle_response") (param $ctx i32) (param $is_error i32) {response}))"#
    ))
    .unwrap()
}

/// A middleware whose `handle_request` rolls the dice, then traps on a
/// request with `x-crash` (`fixed`: continues).
fn crashing_middleware(fixed: bool) -> Vec<u8> {
    let end = if fixed {
        "(i64.const 1)"
    } else {
        "(if (call $crash) (then unreachable)) (i64.const 1)"
    };
    http_guest(&format!("(call $dice (i32.const 0)) {end}"), "")
}

/// A middleware that holds the response (`buffer_response`) and, on a
/// request with `x-crash`, reads its body and spins in `handle_response`
/// until its fuel runs out.
fn spinning_middleware() -> Vec<u8> {
    http_guest(
        "(drop (call $enable (i32.const 2))) (i64.const 1)",
        r#"(drop (call $read_body (i32.const 1) (i32.const 1024) (i32.const 64)))
           (call $dice (call $get_status))
           (if (call $crash) (then (loop $forever (br $forever))))"#,
    )
}

/// An http-wasm module as a function: 200 unless `x-crash`, then traps in
/// `handle_response` after a roll of the dice.
fn crashing_function() -> Vec<u8> {
    http_guest(
        "(i64.const 1)",
        "(call $dice (i32.const 7)) (if (call $crash) (then unreachable))",
    )
}

/// A middleware whose `_start` reads the clock, then exits with code 3.
fn exiting_middleware() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 64)))
    (call $exit (i32.const 3)))
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap()
}

/// `http://` a loopback port nothing listens on (just closed).
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// An upstream on 127.0.0.1 that answers every request (head only: the
/// tests send no bodies) with `201 made!`, keeping the connection.
fn upstream() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer =
                            b"HTTP/1.1 201 Created\r\nx-up: 1\r\ncontent-length: 5\r\n\r\nmade!";
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// A server with `[dumps]`, `/hello`, a proxy `/api/*` to a real upstream
/// behind the `dice` middleware, a proxy `/spin/*` behind `spin`, and the
/// http-wasm function `/hw`.
fn gateway(tmp: &TempDir) -> Server {
    gateway_with(tmp, "")
}

/// [`gateway`] with `dumps` added to its `[dumps]` table.
fn gateway_with(tmp: &TempDir, dumps: &str) -> Server {
    let toml = format!(
        r#"[dumps]
dir = "dumps"
{dumps}

[[function]]
route = "/hello"
module = "hello.wasm"

[[function]]
route = "/hw"
module = "hw.wasm"

[[middleware]]
name = "dice"
module = "dice-mw.wasm"
config = {{ k = "v" }}

[[middleware]]
name = "spin"
module = "spin-mw.wasm"
limits = {{ fuel = 10_000_000 }}

[[proxy]]
name = "api"
route = "/api/*"
upstream = "{up}"
middleware = ["dice"]

[[proxy]]
name = "spinning"
route = "/spin/*"
upstream = "{up}"
middleware = ["spin"]

[[middleware]]
name = "exit"
module = "exit-mw.wasm"

[[proxy]]
name = "exiting"
route = "/exit/*"
upstream = "{up}"
middleware = ["exit"]

[[proxy]]
name = "down"
route = "/down/*"
upstream = "{down}"
middleware = ["spin"]
"#,
        up = upstream(),
        down = closed_port()
    );
    let files = [
        ("hello.wasm", function("hello.wasm")),
        ("hw.wasm", tmp.write("hw.wasm", crashing_function())),
        (
            "dice-mw.wasm",
            tmp.write("dice-mw.wasm", crashing_middleware(false)),
        ),
        (
            "spin-mw.wasm",
            tmp.write("spin-mw.wasm", spinning_middleware()),
        ),
        (
            "exit-mw.wasm",
            tmp.write("exit-mw.wasm", exiting_middleware()),
        ),
    ];
    Server::with_config(&toml, &files)
}

#[test]
fn a_middleware_request_larger_than_max_bytes_is_not_copied_for_a_dump() {
    let tmp = TempDir::new("dumps-mw-big");
    let s = gateway_with(&tmp, "max_bytes = \"64KiB\"");
    // The body alone is past `max_bytes`: no copy is taken for a dump (nor
    // counted in the budget), and the failure is answered as ever.
    let body = vec![b'x'; 100 << 10];
    let r = s.request(
        "POST",
        "/api/item",
        &[("x-request-id", "big-1"), ("x-crash", "1")],
        &body,
    );
    r.assert_error(502, "trap");
    // A small one is dumped, after the big one: the big one was not.
    let r = s.get_with(
        "/api/item",
        &[("x-request-id", "small-1"), ("x-crash", "1")],
    );
    r.assert_error(502, "trap");
    let (_, dump) = dump_of(&s, "small-1");
    assert_eq!(dump["outcome"]["error"], "trap");
    // Not built and refused when written either (that needed the copy).
    let log = s.log();
    assert!(!log.contains("[big-1] crash dump written"), "{log}");
    assert!(!log.contains("more than [dumps] max_bytes"), "{log}");
    assert_eq!(s.get("/hello").status, 200);
}

#[test]
fn a_trapping_middleware_in_front_of_a_proxy_replays_at_the_same_fuel() {
    let tmp = TempDir::new("dumps-mw");
    let s = gateway(&tmp);
    // Good requests reach the upstream; the first starts the snapshot.
    let r = s.get("/api/x");
    assert_eq!((r.status, r.text().as_str()), (201, "made!"), "{r:?}");
    s.wait_for_log("middleware dice: instances start from a snapshot taken after `_start`");
    let r = s.get("/api/x");
    assert_eq!(r.status, 201, "{r:?}");

    let r = s.get_with(
        "/api/item?q=1",
        &[("x-request-id", "mw-1"), ("x-crash", "1")],
    );
    r.assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "mw-1");
    assert_eq!(dump["abi"], "http-wasm");
    assert_eq!(dump["function"], "dice");
    assert_eq!(dump["route"], "/api");
    assert!(
        dump["module"]["path"]
            .as_str()
            .unwrap()
            .ends_with("dice-mw.wasm")
    );
    assert_eq!(dump["module"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(dump["limits"]["fuel"], 100_000_000);
    let http = &dump["http_wasm"];
    assert_eq!(http["role"], "middleware");
    assert_eq!(http["phase"], "handle_request");
    assert_eq!(http["snapshot"], true, "{dump}");
    assert_eq!(http["config"]["text"], r#"{"k":"v"}"#);
    assert!(http["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(http.get("response").is_none(), "{dump}");
    assert_eq!(dump["request"]["method"], "GET");
    assert_eq!(dump["request"]["uri"], "/api/item?q=1");
    let headers = dump["request"]["headers"].as_array().unwrap();
    assert!(headers.iter().any(|h| h[0] == "x-crash"), "{headers:?}");
    assert_eq!(dump["inputs"]["clocks"].as_array().unwrap().len(), 1);
    assert_eq!(dump["inputs"]["random"].as_str().unwrap().len(), 16);
    assert_eq!(dump["outcome"]["error"], "trap");
    // Its fuel is the request's (it is the only guest that ran), from the
    // snapshot; the replay runs `_start` itself, to the same count.
    let log = s.wait_for_log(" trace=mw-1");
    let line = log.lines().find(|l| l.contains(" trace=mw-1")).unwrap();
    let fuel = dump["outcome"]["fuel"].as_u64().unwrap();
    assert!(line.contains(&format!(" fuel={fuel} ")), "{line}");
    assert_reproduced(&path, &dump);
    let out = wasmgate(["replay".as_ref(), path.as_os_str()]);
    assert!(
        out.stdout
            .contains("http-wasm: middleware failed in handle_request"),
        "{out:?}"
    );

    // Other random bytes: another fuel count, so the replay fed them.
    let text = std::fs::read_to_string(&path).unwrap();
    let random = dump["inputs"]["random"].as_str().unwrap();
    let flipped = if random.starts_with("ff") { "00" } else { "ff" };
    let line = format!("random = \"{random}\"");
    let edited = tmp.write(
        "edited.toml",
        text.replace(&line, &format!("random = \"{flipped}{}\"", &random[2..])),
    );
    let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.lines().any(|l| l == "differs"), "{out:?}");

    // A fixed module continues where the recording trapped: exit 3.
    let fixed = tmp.write("fixed.wasm", crashing_middleware(true));
    let out = wasmgate([
        "replay".as_ref(),
        path.as_os_str(),
        "--module".as_ref(),
        fixed.as_os_str(),
    ]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(
        row(&out.stdout, "outcome"),
        ("error", "continued"),
        "{}",
        out.stdout
    );
    assert_eq!(row(&out.stdout, "error"), ("trap", "none"));
    assert_eq!(row(&out.stdout, "status"), ("502", "-"));
    assert!(
        out.stdout
            .contains("on the recorded inputs: continued to the next handler"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("warning:"), "{out:?}");
    // The same inputs, the same path up to the trap: less fuel.
    let (_, replayed) = row(&out.stdout, "fuel");
    assert!(replayed.parse::<u64>().unwrap() < fuel, "{}", out.stdout);

    // The server still answers, through the middleware too.
    let r = s.get("/api/x");
    assert_eq!((r.status, r.text().as_str()), (201, "made!"), "{r:?}");
    s.assert_healthy();
}

#[test]
fn a_deadline_in_handle_response_replays_on_the_recorded_response() {
    let tmp = TempDir::new("dumps-mw-deadline");
    let s = gateway(&tmp);
    let r = s.get("/spin/x");
    assert_eq!((r.status, r.text().as_str()), (201, "made!"), "{r:?}");
    let r = s.get_with("/spin/x", &[("x-request-id", "spin-1"), ("x-crash", "1")]);
    r.assert_error(504, "deadline");
    let (path, dump) = dump_of(&s, "spin-1");
    assert_eq!(dump["function"], "spin");
    assert_eq!(dump["route"], "/spin");
    assert_eq!(dump["limits"]["fuel"], 10_000_000);
    let http = &dump["http_wasm"];
    assert_eq!(http["phase"], "handle_response");
    let response = &http["response"];
    assert_eq!(response["is_error"], false);
    assert_eq!(response["status"], 201);
    assert_eq!(response["body"]["text"], "made!");
    assert!(
        response["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "x-up" && h[1]["text"] == "1"),
        "{response}"
    );
    assert_eq!(response["uri"], "/spin/x");
    assert_eq!(dump["outcome"]["error"], "deadline");
    assert_eq!(dump["outcome"]["status"], 504);
    // Two rolls of the dice: handle_request's none, handle_response's one.
    assert_eq!(dump["inputs"]["clocks"].as_array().unwrap().len(), 1);
    assert_reproduced(&path, &dump);

    // The replay feeds the recorded request to `handle_response` too:
    // without `x-crash` there, it answers.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[\"x-crash\", { text = \"1\" }]"), "{text}");
    let edited = tmp.write(
        "no-crash.toml",
        text.replace(
            "[\"x-crash\", { text = \"1\" }]",
            "[\"x-calm\", { text = \"1\" }]",
        ),
    );
    let out = wasmgate(["replay".as_ref(), edited.as_os_str()]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(
        row(&out.stdout, "outcome"),
        ("error", "response"),
        "{}",
        out.stdout
    );
    assert_eq!(row(&out.stdout, "status"), ("504", "201"), "{}", out.stdout);

    let r = s.get("/spin/x");
    assert_eq!(r.status, 201, "{r:?}");
    s.assert_healthy();
}

#[test]
fn an_http_wasm_function_replays_at_the_same_fuel() {
    let tmp = TempDir::new("dumps-hw");
    let s = gateway(&tmp);
    assert_eq!(s.get("/hw").status, 200);
    let r = s.request(
        "POST",
        "/hw",
        &[("x-request-id", "hw-1"), ("x-crash", "yes")],
        b"payload",
    );
    r.assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "hw-1");
    assert_eq!(dump["abi"], "http-wasm");
    assert_eq!(dump["function"], "hw");
    assert_eq!(dump["route"], "/hw");
    assert_eq!(dump["request"]["body"]["text"], "payload");
    let http = &dump["http_wasm"];
    assert_eq!(http["role"], "function");
    assert_eq!(http["phase"], "handle_response");
    assert_eq!(http["config"]["text"], "");
    assert_eq!(dump["inputs"]["clocks"].as_array().unwrap().len(), 1);
    let log = s.wait_for_log(" trace=hw-1");
    let line = log.lines().find(|l| l.contains(" trace=hw-1")).unwrap();
    let fuel = dump["outcome"]["fuel"].as_u64().unwrap();
    assert!(line.contains(&format!(" fuel={fuel} ")), "{line}");
    assert_reproduced(&path, &dump);
    assert_eq!(written(&s), 1, "the good request wrote no dump");
    s.assert_healthy();
}

#[test]
fn a_middleware_failing_in_start_or_after_a_failed_upstream_is_dumped() {
    let tmp = TempDir::new("dumps-mw-start");
    let s = gateway(&tmp);
    // `_start` exits 3: every request through it fails closed.
    let r = s.get_with("/exit/x", &[("x-request-id", "exit-1")]);
    r.assert_error(502, "exit-code");
    let (path, dump) = dump_of(&s, "exit-1");
    assert_eq!(dump["function"], "exit");
    assert_eq!(dump["http_wasm"]["phase"], "_start");
    assert_eq!(dump["http_wasm"]["snapshot"], false);
    assert_eq!(dump["request"]["uri"], "/exit/x");
    let clocks = dump["inputs"]["clocks"].as_array().unwrap();
    assert_eq!(clocks.len(), 1, "{dump}");
    assert_eq!(clocks[0]["clock"], 1, "{dump}");
    assert_reproduced(&path, &dump);

    // The upstream is down: `handle_response` gets `is_error` and the
    // error's status, and spins to its deadline.
    let r = s.get_with("/down/x", &[("x-request-id", "down-1"), ("x-crash", "1")]);
    r.assert_error(504, "deadline");
    let (path, dump) = dump_of(&s, "down-1");
    let response = &dump["http_wasm"]["response"];
    assert_eq!(response["is_error"], true, "{dump}");
    assert_eq!(response["status"], 502);
    assert_eq!(response["body"]["text"], "");
    assert_reproduced(&path, &dump);
    let out = wasmgate(["replay".as_ref(), path.as_os_str()]);
    assert!(
        out.stdout.contains(
            "http-wasm: middleware failed in handle_response (next handler failed: status 502)"
        ),
        "{out:?}"
    );
    // Without the crash header it answers the upstream's error, as the
    // server did: no dump.
    let r = s.get_with("/down/x", &[("x-request-id", "down-2")]);
    r.assert_error(502, "upstream-unavailable");
    assert_eq!(written(&s), 2);
    s.assert_healthy();
}

#[test]
fn a_config_secret_from_the_environment_is_never_written_to_a_dump() {
    let tmp = TempDir::new("dumps-secret");
    let toml = format!(
        r#"[dumps]
dir = "dumps"

[[function]]
route = "/hello"
module = "hello.wasm"

[[middleware]]
name = "dice"
module = "dice-mw.wasm"
config = {{ key_env = "WG_DUMP_TEST_SECRET", plain = "visible" }}

[[proxy]]
name = "api"
route = "/api/*"
upstream = "{up}"
middleware = ["dice"]
"#,
        up = upstream()
    );
    let files = [
        ("hello.wasm", function("hello.wasm")),
        (
            "dice-mw.wasm",
            tmp.write("dice-mw.wasm", crashing_middleware(false)),
        ),
    ];
    let s = Server::with_config_env(&toml, &files, &[("WG_DUMP_TEST_SECRET", "TopSecret\"42")]);
    let r = s.get_with("/api/x", &[("x-request-id", "sec-1"), ("x-crash", "1")]);
    r.assert_error(502, "trap");
    let (path, dump) = dump_of(&s, "sec-1");
    let text = std::fs::read_to_string(&path).expect("dump");
    assert!(!text.contains("TopSecret"), "{text}");
    assert!(text.contains("<redacted: $WG_DUMP_TEST_SECRET>"), "{text}");
    assert!(text.contains("visible"), "{text}");
    // Replay reads the secret from its own environment, only when the
    // operator names the variable (`--env`), and reproduces.
    let replay_of = |dump: &Path, secret: Option<&str>, env: &[&str]| {
        let mut command = common::wasmgate_command();
        command
            .arg("replay")
            .arg(dump)
            .env_remove("WG_DUMP_TEST_SECRET");
        for var in env {
            command.arg("--env").arg(var);
        }
        if let Some(secret) = secret {
            command.env("WG_DUMP_TEST_SECRET", secret);
        }
        command.output().expect("replay runs")
    };
    let replay = |secret: Option<&str>, env: &[&str]| replay_of(&path, secret, env);
    let refused = |out: &std::process::Output, why: &str| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{err}");
        assert!(!err.contains("TopSecret"), "{err}");
        assert!(out.stdout.is_empty(), "{out:?}");
    };
    // Set in the environment but not named: not read.
    for secret in [None, Some("TopSecret\"42")] {
        refused(
            &replay(secret, &[]),
            "holds a value from $WG_DUMP_TEST_SECRET, which dumps do not hold: pass --env WG_DUMP_TEST_SECRET",
        );
    }
    refused(
        &replay(None, &["WG_DUMP_TEST_SECRET"]),
        "--env WG_DUMP_TEST_SECRET: WG_DUMP_TEST_SECRET is not set",
    );
    // A dump is not trusted: one that names another of the operator's
    // variables does not get it, though that one is set and another is
    // named.
    let other = tmp.write(
        "other.dump.toml",
        text.replace("$WG_DUMP_TEST_SECRET>", "$WG_DUMP_TEST_OTHER>"),
    );
    let mut command = common::wasmgate_command();
    let out = command
        .arg("replay")
        .arg(&other)
        .args(["--env", "WG_DUMP_TEST_SECRET"])
        .env("WG_DUMP_TEST_SECRET", "x")
        .env("WG_DUMP_TEST_OTHER", "TopSecret-other")
        .output()
        .expect("replay runs");
    refused(&out, "pass --env WG_DUMP_TEST_OTHER");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("TopSecret-other"));
    // `--env` takes a name: an assignment is a usage error.
    let out = replay(None, &["WG_DUMP_TEST_SECRET=TopSecret"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--env takes a variable's name"), "{err}");
    let out = replay(Some("TopSecret\"42"), &["WG_DUMP_TEST_SECRET"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.lines().any(|l| l == "reproduced"), "{stdout}");
    let fuel = dump["outcome"]["fuel"].as_u64().unwrap().to_string();
    assert_eq!(
        row(&stdout, "fuel"),
        (fuel.as_str(), fuel.as_str()),
        "{stdout}"
    );
    // A dump is not trusted: a module path that is not a regular file
    // (`/dev/zero` would be read forever) is refused.
    let hostile: String = text
        .lines()
        .map(|l| match l.starts_with("path = ") {
            true => "path = \"/dev/zero\"".to_owned(),
            false => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let hostile_path = tmp.write("hostile.dump.toml", hostile);
    let mut command = common::wasmgate_command();
    let out = command
        .arg("replay")
        .arg(&hostile_path)
        .args(["--env", "WG_DUMP_TEST_SECRET"])
        .env("WG_DUMP_TEST_SECRET", "x")
        .output()
        .expect("replay runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/dev/zero: not a regular file"),
        "{out:?}"
    );
    s.assert_healthy();
}
