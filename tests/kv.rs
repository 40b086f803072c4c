//! Per-tenant state (README "State"): the KV host functions through the
//! real server, with a real store on disk, killed with SIGKILL and
//! restarted on the same store.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, TempDir, function};

/// Whether the server runs under an emulator (CI's qemu-user runs, ~10x
/// slower), or `WASMGATE_SLOW` asks for fewer rounds.
fn slow() -> bool {
    let runner = std::env::var("WASMGATE_TEST_RUNNER").unwrap_or_default();
    !runner.trim().is_empty() || std::env::var_os("WASMGATE_SLOW").is_some()
}

/// A config serving `counter.wasm` at `/counter` (and `/hello`), its
/// state in `state` with `extra` in `[state]`.
fn counter_config(state: &Path, extra: &str) -> String {
    format!(
        r#"
[state]
dir = "{}"
{extra}

[[function]]
route = "/counter"
module = "counter.wasm"

[[function]]
route = "/hello"
module = "hello.wasm"
"#,
        state.display()
    )
}

fn counter_files() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("counter.wasm", function("counter.wasm")),
        ("hello.wasm", function("hello.wasm")),
    ]
}

/// `GET /counter?key=KEY`: the count it answers.
fn count(s: &Server, key: &str) -> i64 {
    let r = s.get(&format!("/counter?key={key}"));
    assert_eq!(r.status, 200, "{r:?}\nlog:\n{}", s.log());
    let text = r.text();
    let n = text
        .trim()
        .strip_prefix(&format!("{key}: "))
        .unwrap_or_else(|| panic!("unexpected body {text:?}"));
    n.parse().expect("a number")
}

#[test]
fn counter_counts_its_calls_across_a_kill() {
    let state = TempDir::new("kv-counter");
    let config = counter_config(state.path(), "");
    let s = Server::with_config(&config, &counter_files());
    for i in 1..=3 {
        assert_eq!(count(&s, "calls"), i);
    }
    s.wait_for_log("state: opened");
    drop(s); // SIGKILL
    let s = Server::with_config(&config, &counter_files());
    assert_eq!(count(&s, "calls"), 4);
    s.assert_healthy();
}

/// `GET target` from `clients` threads, `each` times in a row on each,
/// every answer a 200.
fn concurrently(s: &Server, clients: usize, each: usize, target: &'static str) {
    let addr = s.addr;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..each {
                    let r = common::Conn::open(addr).request("GET", target, &[], b"");
                    assert_eq!(r.status, 200, "{r:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

#[test]
fn two_hundred_concurrent_increments_count_exactly() {
    let state = TempDir::new("kv-concurrent");
    // The smallest fuel slice: each request yields ~50 times, so requests
    // interleave between their `kv_incr` and their commit.
    let config = counter_config(state.path(), "")
        .replace("[state]", "[limits]\nfuel_slice = 1000\n\n[state]");
    let s = Server::with_config(&config, &counter_files());
    concurrently(&s, 20, 10, "/counter?key=c");
    assert_eq!(count(&s, "c"), 201);
}

#[test]
fn concurrent_increments_under_sync_always_each_answer_a_new_number() {
    // Under `always` a request's commit waits for its fsync; the next
    // request's `kv_incr` counts from that commit, not from the disk (it
    // is answered after it, so nothing not durable is ever shown).
    distinct_increments("sync = \"always\"");
}

#[test]
fn concurrent_increments_on_two_workers_each_answer_a_new_number() {
    // Requests on two threads interleave between their `kv_incr` and
    // their commit: each still counts the others' buffered increments.
    distinct_increments("sync = \"100ms\"\n[server]\nworkers = 2");
}

/// 8 clients × 10 counter requests: every answer a new number, the total
/// exact.
fn distinct_increments(extra: &str) {
    let state = TempDir::new("kv-distinct");
    let config = counter_config(state.path(), extra);
    let s = Server::with_config(&config, &counter_files());
    let addr = s.addr;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| {
                        let r = common::Conn::open(addr).request("GET", "/counter?key=d", &[], b"");
                        assert_eq!(r.status, 200, "{r:?}");
                        let text = r.text();
                        let n = text.trim().strip_prefix("d: ").map(str::parse::<i64>);
                        match n {
                            Some(Ok(n)) => n,
                            _ => panic!("unexpected body {text:?}"),
                        }
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut seen: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=80).collect::<Vec<i64>>(), "each a new number");
    assert_eq!(count(&s, "d"), 81);
    s.assert_healthy();
}

#[test]
fn a_reload_that_changes_sync_applies_it_to_the_open_store() {
    let state = TempDir::new("kv-resync");
    let s = Server::with_config(
        &counter_config(state.path(), "sync = \"10s\""),
        &counter_files(),
    );
    s.wait_for_log("state: opened");
    let always = counter_config(state.path(), "sync = \"always\"");
    std::fs::write(s.dir().join("wasmgate.toml"), &always).expect("config");
    s.signal("HUP");
    s.wait_for_log("state: sync is now \"always\" (was \"10000ms\")");
    s.wait_for_log("reloaded ");
    // Acknowledged after its fsync, not up to 10 s later: it survives a
    // kill -9 right after the answer.
    assert_eq!(count(&s, "r"), 1);
    drop(s); // SIGKILL
    let s = Server::with_config(&always, &counter_files());
    assert_eq!(count(&s, "r"), 2, "the acknowledged write survived");
    s.assert_healthy();
}

/// Streams writes (`GET /counter?key=wN`, each answering `wN: 1`) until the
/// connection fails; returns each acknowledged key with when it was
/// acknowledged. `started` is set at the first acknowledgement.
fn stream_writes(
    addr: std::net::SocketAddr,
    round: usize,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(String, Instant)>> {
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let key = format!("r{round}w{i}");
            let target = format!("/counter?key={key}");
            let Some((status, body)) = try_get(addr, &target) else {
                break;
            };
            if status != 200 {
                break;
            }
            assert_eq!(body, format!("{key}: 1\n"));
            acked.push((key, Instant::now()));
            started.store(true, Ordering::Relaxed);
        }
        acked
    })
}

/// `GET target` on a new connection: status and body, or `None` if the
/// connection fails or closes before a whole response (the server died).
fn try_get(addr: std::net::SocketAddr, target: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(common::PROCESS_TIMEOUT)).ok()?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).ok()?;
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })?
        .trim()
        .parse()
        .ok()?;
    (body.len() == length).then(|| (status, body.to_owned()))
}

/// Kills the server during a stream of acknowledged writes, `rounds`
/// times, restarting it on the same store each time; `check` gets the
/// restarted server, the acknowledged writes and when the kill was.
fn kill_during_writes(
    extra: &str,
    rounds: usize,
    check: impl Fn(&Server, &[(String, Instant)], Instant),
) {
    let state = TempDir::new("kv-kill");
    let config = counter_config(state.path(), extra);
    let mut rng = fastrand::Rng::with_seed(14);
    let mut s = Server::with_config(&config, &counter_files());
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let writer = stream_writes(s.addr, round, Arc::clone(&stop), Arc::clone(&started));
        // The stream is under way (the first request of a server compiles
        // the module and opens the store: seconds under an emulator)
        // before the kill comes, at a random point of it.
        let deadline = Instant::now() + common::PROCESS_TIMEOUT;
        while !started.load(Ordering::Relaxed) && !writer.is_finished() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(5..40)));
        let killed = Instant::now();
        drop(s); // SIGKILL, while writes are in flight
        stop.store(true, Ordering::Relaxed);
        let acked = writer.join().expect("writer");
        s = Server::with_config(&config, &counter_files());
        check(&s, &acked, killed);
    }
}

#[test]
fn every_acknowledged_write_survives_kill_9_with_sync_always() {
    // 100 kills natively; 10 under an emulator, where each start takes
    // seconds.
    let rounds = if slow() { 10 } else { 100 };
    let total = Mutex::new(0usize);
    kill_during_writes("sync = \"always\"", rounds, |s, acked, _| {
        for (key, _) in acked {
            assert_eq!(count(s, key), 2, "acknowledged write {key} lost");
        }
        *total.lock().expect("lock") += acked.len();
    });
    assert!(
        *total.lock().expect("lock") > 0,
        "no write was acknowledged"
    );
}

#[test]
fn group_commit_loses_nothing_older_than_its_interval() {
    let rounds = if slow() { 3 } else { 10 };
    let interval = Duration::from_millis(50);
    kill_during_writes("sync = \"50ms\"", rounds, |s, acked, killed| {
        // The writer thread writes a commit at most one interval after it;
        // one more interval of slack for scheduling on a busy machine.
        for (key, at) in acked {
            if *at + 2 * interval < killed {
                assert_eq!(count(s, key), 2, "write {key} older than the interval lost");
            }
        }
    });
}

#[test]
fn a_damaged_log_opens_dropping_only_its_tail() {
    let state = TempDir::new("kv-torn");
    let config = counter_config(state.path(), "");
    let s = Server::with_config(&config, &counter_files());
    for i in 0..20 {
        assert_eq!(count(&s, &format!("k{i}")), 1);
    }
    drop(s);
    let log = state.path().join("kv.log");
    let mut bytes = std::fs::read(&log).expect("log");
    let len = bytes.len();
    // Cut the last record short and add garbage.
    bytes.truncate(len - 3);
    bytes.extend_from_slice(b"\xff\xff\xff\x7fgarbage");
    std::fs::write(&log, &bytes).expect("write");
    let s = Server::with_config(&config, &counter_files());
    for i in 0..19 {
        assert_eq!(count(&s, &format!("k{i}")), 2, "k{i}");
    }
    assert_eq!(count(&s, "k19"), 1, "the damaged last record is dropped");
    let log = s.wait_for_log("dropped the last");
    assert!(log.contains("a record"), "{log}");
    s.assert_healthy();
}

#[test]
fn a_record_damaged_in_the_middle_is_cut_off_and_kept_aside() {
    let state = TempDir::new("kv-middle");
    let config = counter_config(state.path(), "");
    let s = Server::with_config(&config, &counter_files());
    for i in 0..20 {
        assert_eq!(count(&s, &format!("k{i}")), 1);
    }
    drop(s); // kill -9
    let log = state.path().join("kv.log");
    let mut bytes = std::fs::read(&log).expect("log");
    // The 8th record (k7's commit): records are `len u32, crc u32, payload`
    // after the 8-byte header.
    let mut at = 8;
    for _ in 0..7 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        at += 8 + len as usize;
    }
    bytes[at + 12] ^= 0x40;
    std::fs::write(&log, &bytes).expect("write");
    let s = Server::with_config(&config, &counter_files());
    // Replay keeps what precedes the damage and never guesses where
    // records resume after it (a stored value may read as a record); the
    // bytes cut off are kept beside the log, and the log says where.
    for i in 0..7 {
        assert_eq!(count(&s, &format!("k{i}")), 2, "k{i} kept");
    }
    let line = s.wait_for_log("may hold acknowledged writes: kept in");
    assert!(line.contains("fails its checksum"), "{line}");
    let aside: Vec<_> = std::fs::read_dir(state.path())
        .expect("dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().contains("kv.log.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).expect("aside"), bytes[at..]);
    assert!(line.contains(&aside[0].display().to_string()), "{line}");
    assert_eq!(count(&s, "k19"), 1, "cut off from the live store");
    s.assert_healthy();
    // Cut: the next start reports no damage.
    drop(s);
    let s = Server::with_config(&config, &counter_files());
    assert_eq!(count(&s, "k19"), 2);
    assert!(!s.log().contains("damaged"), "{}", s.log());
}

#[test]
fn quotas_answer_an_error_value_not_a_trap() {
    let state = TempDir::new("kv-quota");
    let s = Server::with_config(
        &counter_config(state.path(), "max_keys = 2"),
        &counter_files(),
    );
    assert_eq!(count(&s, "a"), 1);
    assert_eq!(count(&s, "b"), 1);
    let r = s.get("/counter?key=c");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.text(), "kv error: Quota\n");
    assert!(
        r.header("x-wasmgate-error").is_none(),
        "the guest's own answer"
    );
    s.wait_for_log("namespace would hold more than kv_max_keys (2) keys");
    assert_eq!(count(&s, "a"), 2, "existing keys still count");
    s.assert_healthy();
}

#[test]
fn ttl_expires_keys() {
    let state = TempDir::new("kv-ttl");
    let s = Server::with_config(&counter_config(state.path(), ""), &counter_files());
    let get = |q: &str| s.get(&format!("/counter?{q}")).text();
    assert_eq!(get("key=w&ttl=1"), "w: 1\n");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get("key=w&ttl=1"), "w: 1\n", "the first window ended");
    assert_eq!(get("key=long&ttl=600000"), "long: 1\n");
    assert_eq!(get("key=long&ttl=600000"), "long: 2\n");
}

/// A wasi-json module in the Gojinn style: `host_kv_set(KEY, VALUE)` when
/// `set`, then `host_kv_get(KEY)` with result type `result`, answering
/// `{"status":200,"body":"VALUE"}` or `{"status":404,"body":"missing"}`;
/// traps at the end when `trap`.
fn gojinn_module(result: &str, key: &str, value: Option<&str>, trap: bool) -> Vec<u8> {
    let is_missing = format!("({result}.eq (local.get $r) ({result}.const -1))");
    let len = if result == "i64" {
        "(i32.wrap_i64 (local.get $r))"
    } else {
        "(local.get $r)"
    };
    let set = match value {
        Some(v) => format!(
            "(call $set (i32.const 300) (i32.const {}) (i32.const 400) (i32.const {}))",
            key.len(),
            v.len()
        ),
        None => String::new(),
    };
    let wat = format!(
        r#"(module
  (import "gojinn" "host_kv_set" (func $set (param i32 i32 i32 i32)))
  (import "gojinn" "host_kv_get" (func $get (param i32 i32 i32 i32) (result {result})))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "{{\"status\":200,\"body\":\"")
  (data (i32.const 200) "\"}}")
  (data (i32.const 210) "{{\"status\":404,\"body\":\"missing\"}}")
  (data (i32.const 300) "{key}")
  (data (i32.const 400) "{value}")
  (func (export "_start") (local $r {result})
    {set}
    (local.set $r (call $get (i32.const 300) (i32.const {klen}) (i32.const 122) (i32.const 64)))
    (if {is_missing}
      (then
        (i32.store (i32.const 0) (i32.const 210))
        (i32.store (i32.const 4) (i32.const 31))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20))))
      (else
        (i32.store (i32.const 0) (i32.const 100))
        (i32.store (i32.const 4) (i32.add (i32.const 22) {len}))
        (i32.store (i32.const 8) (i32.const 200))
        (i32.store (i32.const 12) (i32.const 2))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 20)))))
    {trap})
)"#,
        key = key,
        value = value.unwrap_or(""),
        klen = key.len(),
        trap = if trap { "unreachable" } else { "" },
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"))
}

#[test]
fn gojinn_host_kv_get_links_with_either_result_type() {
    let state = TempDir::new("kv-gojinn");
    let dir = TempDir::new("kv-gojinn-mods");
    for result in ["i32", "i64"] {
        dir.write(
            &format!("set-{result}.wasm"),
            gojinn_module(result, "k", Some("hello"), false),
        );
        dir.write(
            &format!("get-{result}.wasm"),
            gojinn_module(result, "k", None, false),
        );
        dir.write(
            &format!("none-{result}.wasm"),
            gojinn_module(result, "nokey", None, false),
        );
    }
    let mut config = format!("[state]\ndir = \"{}\"\n", state.path().display());
    let mut files = Vec::new();
    for name in [
        "set-i32", "get-i32", "none-i32", "set-i64", "get-i64", "none-i64",
    ] {
        config.push_str(&format!(
            "[[function]]\nroute = \"/{name}\"\nmodule = \"{name}.wasm\"\nkv = \"shared\"\n"
        ));
        files.push((name, dir.path().join(format!("{name}.wasm"))));
    }
    let files: Vec<(&str, PathBuf)> = files
        .iter()
        .map(|(n, p)| {
            (
                Box::leak(format!("{n}.wasm").into_boxed_str()) as &str,
                p.clone(),
            )
        })
        .collect();
    let s = Server::with_config(&config, &files);
    for result in ["i32", "i64"] {
        let r = s.get(&format!("/none-{result}"));
        assert_eq!((r.status, r.text()), (404, "missing".into()), "{result}");
        let r = s.get(&format!("/set-{result}"));
        assert_eq!(
            (r.status, r.text()),
            (200, "hello".into()),
            "{result}: reads its own write"
        );
        let r = s.get(&format!("/get-{result}"));
        assert_eq!(
            (r.status, r.text()),
            (200, "hello".into()),
            "{result}: committed"
        );
    }
}

#[test]
fn a_trapping_requests_writes_are_never_visible() {
    let state = TempDir::new("kv-trap");
    let dir = TempDir::new("kv-trap-mods");
    let trap = dir.write("trap.wasm", gojinn_module("i64", "t", Some("x"), true));
    let get = dir.write("get.wasm", gojinn_module("i64", "t", None, false));
    let config = format!(
        r#"[state]
dir = "{}"
[[function]]
route = "/trap"
module = "trap.wasm"
kv = "shared"
[[function]]
route = "/get"
module = "get.wasm"
kv = "shared"
"#,
        state.path().display()
    );
    let s = Server::with_config(&config, &[("trap.wasm", trap), ("get.wasm", get)]);
    s.get("/trap").assert_error(502, "trap");
    let r = s.get("/get");
    assert_eq!((r.status, r.text()), (404, "missing".into()));
}

#[test]
fn functions_cannot_reach_each_others_namespaces() {
    let state = TempDir::new("kv-isolation");
    let config = format!(
        r#"[state]
dir = "{}"
[[function]]
name = "a"
route = "/a"
module = "counter.wasm"
[[function]]
name = "b"
route = "/b"
module = "counter.wasm"
[[function]]
name = "a-too"
route = "/a-too"
module = "counter.wasm"
kv = "a"
"#,
        state.path().display()
    );
    let s = Server::with_config(&config, &[("counter.wasm", function("counter.wasm"))]);
    let get = |path: &str| s.get(path).text();
    assert_eq!(get("/a?key=k"), "k: 1\n");
    assert_eq!(get("/a?key=k"), "k: 2\n");
    // b sees nothing of a's, whatever the key bytes.
    for key in ["k", "../a/k", "a/k", "%00k", "a%00k", ".."] {
        let text = get(&format!("/b?key={key}"));
        assert!(text.ends_with(": 1\n"), "{key}: {text}");
    }
    // a-too shares a's namespace on purpose.
    assert_eq!(get("/a-too?key=k"), "k: 3\n");
}

#[test]
fn gojinns_own_kv_example_sets_gets_and_keeps_its_data() {
    let state = TempDir::new("kv-gojinn-example");
    let config = format!(
        r#"[state]
dir = "{}"
[[function]]
route = "/kv"
module = "kv.wasm"
[[function]]
route = "/other"
module = "other.wasm"
"#,
        state.path().display()
    );
    let files = [
        ("kv.wasm", function("gojinn/kv.wasm")),
        ("other.wasm", function("gojinn/kv.wasm")),
    ];
    let s = Server::with_config(&config, &files);
    let r = s.request("POST", "/kv", &[], b"SET color blue");
    assert_eq!(r.status, 200, "{r:?}\n{}", s.log());
    assert!(r.text().contains("SET OK: color = blue"), "{}", r.text());
    let r = s.request("POST", "/kv", &[], b"GET color");
    assert_eq!((r.status, r.text()), (200, "Found: blue".into()));
    let r = s.request("POST", "/other", &[], b"GET color");
    assert_eq!(
        r.status,
        404,
        "another function cannot see it: {}",
        r.text()
    );
    drop(s); // SIGKILL
    let s = Server::with_config(&config, &files);
    let r = s.request("POST", "/kv", &[], b"GET color");
    assert_eq!((r.status, r.text()), (200, "Found: blue".into()));
}

#[test]
fn the_kv_command_works_on_a_stopped_store_and_refuses_a_running_one() {
    let state = TempDir::new("kv-cli");
    let dir = state.path().to_str().expect("utf-8").to_owned();
    let kv = |args: &[&str]| {
        let mut all = vec!["kv"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dir", &dir]);
        common::wasmgate(all)
    };
    let ok = |args: &[&str]| {
        let r = kv(args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        r.stdout
    };
    ok(&["set", "counter", "calls", "41"]);
    ok(&["set", "counter", "other", "x"]);
    ok(&["set", "elsewhere", "calls", "7"]);
    assert_eq!(ok(&["get", "counter", "calls"]), "41\n");
    assert_eq!(ok(&["list", "counter"]), "calls\nother\n");
    assert_eq!(ok(&["list", "counter", "ot"]), "other\n");
    ok(&["delete", "counter", "other"]);
    assert_eq!(kv(&["get", "counter", "other"]).code, Some(1));
    let export = ok(&["export", "counter"]);
    assert_eq!(
        export,
        "{\"expires\":0,\"key\":\"calls\",\"value\":\"41\"}\n"
    );

    // The server counts on from what the CLI set.
    let config = counter_config(state.path(), "");
    let s = Server::with_config(&config, &counter_files());
    assert_eq!(count(&s, "calls"), 42);
    // While it runs, the store is locked: a clear refusal with its pid.
    let r = kv(&["get", "counter", "calls"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("in use by another process (pid"),
        "{}",
        r.stderr
    );
    drop(s);

    // Import into a fresh store restores the export.
    let other = TempDir::new("kv-cli-import");
    let file = other.write("backup.jsonl", &export);
    let mut cmd = common::wasmgate_command();
    let status = cmd
        .args(["kv", "import", "counter", "--dir"])
        .arg(other.path().join("store"))
        .stdin(std::fs::File::open(&file).expect("backup"))
        .status()
        .expect("runs");
    assert!(status.success());
    let r = common::wasmgate([
        "kv",
        "get",
        "counter",
        "calls",
        "--dir",
        other.path().join("store").to_str().expect("utf-8"),
    ]);
    assert_eq!(r.stdout, "41\n", "{r:?}");
}

#[test]
fn the_store_is_locked_from_the_start_and_a_held_lock_fails_the_start() {
    let state = TempDir::new("kv-eager");
    let dir = state.path().to_str().expect("utf-8").to_owned();
    let s = Server::with_config(&counter_config(state.path(), ""), &counter_files());
    // No request yet: `wasmgate kv` is refused all the same, naming the
    // server.
    let owner = format!("in use by another process (pid {})", s.pid());
    let r = common::wasmgate(["kv", "list", "counter", "--dir", &dir]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains(&owner), "{}", r.stderr);
    // A second server on the same store does not start.
    let config = s.dir().join("wasmgate.toml");
    let args = ["serve", "--listen", "127.0.0.1:0", "--config"];
    let r = common::wasmgate_in(
        s.dir(),
        args.iter()
            .map(std::ffi::OsStr::new)
            .chain([config.as_os_str()]),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains(&owner), "{}", r.stderr);
    // The first one serves on.
    assert_eq!(count(&s, "calls"), 1);
    s.assert_healthy();
}

#[test]
fn waiting_for_fsync_holds_no_admission_slot() {
    // One request at a time may run a guest. A request that wrote waits
    // for its fsync (`sync = "always"`) after its guest is gone: the slot
    // is free by then, so concurrent requests are not refused.
    let state = TempDir::new("kv-admission");
    let config = counter_config(state.path(), "")
        .replace("[state]", "[server]\nmax_in_flight = 1\n\n[state]");
    let s = Server::with_config(&config, &counter_files());
    concurrently(&s, 8, 10, "/counter?key=n");
    assert_eq!(count(&s, "n"), 81);
}

/// A wasi-json module importing `imports` that runs `body` `times` times
/// (its counter in `$i`) and answers "ok".
fn looping_module(imports: &str, body: &str, times: u32) -> Vec<u8> {
    let wat = format!(
        r#"(module
  {imports}
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "ok")
  (func (export "_start") (local $i i32)
    (loop $again
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {times}))))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))))"#
    );
    wat::parse_str(wat).expect("wat")
}

#[test]
fn kv_calls_are_charged_fuel() {
    // 1,000 `host_kv_get` of a missing key: 1,500 fuel each (`cost::KV_READ`).
    let state = TempDir::new("kv-fuel");
    let dir = TempDir::new("kv-fuel-mods");
    let gets = looping_module(
        r#"(import "gojinn" "host_kv_get" (func $get (param i32 i32 i32 i32) (result i64)))"#,
        "(drop (call $get (i32.const 200) (i32.const 1) (i32.const 300) (i32.const 8)))",
        1000,
    );
    let module = dir.write("gets.wasm", gets);
    let config = format!(
        "[state]\ndir = \"{}\"\n[[function]]\nroute = \"/gets\"\nmodule = \"gets.wasm\"\n",
        state.path().display()
    );
    let s = Server::with_config(&config, &[("gets.wasm", module)]);
    let r = s.get("/gets");
    assert_eq!((r.status, r.text()), (200, "ok".into()), "{r:?}");
    let fuel = s.logged_fuel("gets");
    assert!((1_500_000..1_700_000).contains(&fuel), "{fuel}");
}

#[test]
fn kv_list_is_charged_for_the_keys_it_looks_at() {
    // `/fill` sets 200 keys in namespace "full"; `/list-full` and
    // `/list-empty` (the same module twice) call `kv_list` 200 times with
    // no room for a key (`out_max` 0) on "full" and on an empty namespace:
    // the first looks at 200 keys each time and must pay for it.
    let state = TempDir::new("kv-list-fuel");
    let dir = TempDir::new("kv-list-fuel-mods");
    let fill = looping_module(
        r#"(import "wasmgate" "kv_set" (func $set (param i32 i32 i32 i32 i64) (result i32)))"#,
        "(i32.store (i32.const 200) (local.get $i))
      (drop (call $set (i32.const 200) (i32.const 4) (i32.const 100) (i32.const 1) (i64.const 0)))",
        200,
    );
    let list = looping_module(
        r#"(import "wasmgate" "kv_list" (func $list (param i32 i32 i32 i32 i32 i32) (result i32)))"#,
        "(drop (call $list (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 300) (i32.const 0)))",
        200,
    );
    let files = [
        ("fill.wasm", dir.write("fill.wasm", fill)),
        ("list-full.wasm", dir.write("list-full.wasm", &list)),
        ("list-empty.wasm", dir.write("list-empty.wasm", &list)),
    ];
    let config = format!(
        "[state]\ndir = \"{}\"\n\
         [[function]]\nroute = \"/fill\"\nmodule = \"fill.wasm\"\nkv = \"full\"\n\
         [[function]]\nroute = \"/list-full\"\nmodule = \"list-full.wasm\"\nkv = \"full\"\n\
         [[function]]\nroute = \"/list-empty\"\nmodule = \"list-empty.wasm\"\nkv = \"empty\"\n",
        state.path().display()
    );
    let s = Server::with_config(&config, &files);
    for target in ["/fill", "/list-full", "/list-empty"] {
        let r = s.get(target);
        assert_eq!((r.status, r.text()), (200, "ok".into()), "{target}: {r:?}");
    }
    let (full, empty) = (s.logged_fuel("list-full"), s.logged_fuel("list-empty"));
    // 200 calls x 200 keys of 4 bytes, each weighing 36 bytes at 4 fuel
    // per byte: 5.76 million more.
    assert!(full > empty + 5_000_000, "full {full}, empty {empty}");
    assert_eq!(s.get("/list-full").status, 200, "still serving");
}

/// An http-wasm middleware that lets every request through, and traps in
/// `handle_response` if `fail`.
fn middleware_module(fail: bool) -> Vec<u8> {
    let response = if fail { "unreachable" } else { "" };
    wat::parse_str(format!(
        r#"(module
          (import "http_handler" "log_enabled" (func (param i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "handle_request") (result i64) (i64.const 1))
          (func (export "handle_response") (param i32 i32) {response}))"#
    ))
    .unwrap()
}

#[test]
fn a_function_behind_middleware_commits_only_if_the_response_phase_succeeds() {
    let state = TempDir::new("kv-middleware");
    let dir = TempDir::new("kv-middleware-mods");
    let pass = dir.write("pass.wasm", middleware_module(false));
    let fail = dir.write("fail.wasm", middleware_module(true));
    let config = format!(
        r#"[state]
dir = "{}"
[[middleware]]
name = "pass"
module = "pass.wasm"
[[middleware]]
name = "fail"
module = "fail.wasm"
[[function]]
name = "a"
route = "/a"
module = "counter.wasm"
middleware = ["pass"]
[[function]]
name = "a-failing"
route = "/a-failing"
module = "counter.wasm"
kv = "a"
middleware = ["fail"]
[[function]]
route = "/hello"
module = "hello.wasm"
"#,
        state.path().display()
    );
    let files = [
        ("counter.wasm", function("counter.wasm")),
        ("pass.wasm", pass),
        ("fail.wasm", fail),
        ("hello.wasm", function("hello.wasm")),
    ];
    let s = Server::with_config(&config, &files);
    let get = |path: &str| {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{r:?}\nlog:\n{}", s.log());
        r.text()
    };
    assert_eq!(get("/a?key=k"), "k: 1\n");
    assert_eq!(get("/a?key=k"), "k: 2\n");
    // The function ran and wrote, then its middleware trapped: discarded.
    s.get("/a-failing?key=k").assert_error(502, "trap");
    assert_eq!(get("/a?key=k"), "k: 3\n");
    s.assert_healthy();
}

/// An http-wasm module counting in its namespace: `handle_request` adds 1
/// to key `n` with `kv_incr`, reads it back with `kv_get` (its own write,
/// not committed yet), sets the response header `x-kv` to it, logs
/// `incremented`, then runs `request` (which leaves handle_request's i64
/// result); `handle_response` runs `response`.
fn kv_middleware(request: &str, response: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "http_handler" "set_header_value" (func $set_header (param i32 i32 i32 i32 i32)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "wasmgate" "kv_incr" (func $incr (param i32 i32 i64 i64 i32) (result i32)))
  (import "wasmgate" "kv_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (data (i32.const 16) "x-kv")
  (data (i32.const 32) "incremented")
  (func (export "handle_request") (result i64) (local $len i32)
    (if (call $incr (i32.const 0) (i32.const 1) (i64.const 1) (i64.const 0) (i32.const 256))
      (then unreachable))
    (local.set $len (call $get (i32.const 0) (i32.const 1) (i32.const 300) (i32.const 32)))
    (if (i32.lt_s (local.get $len) (i32.const 1)) (then unreachable))
    (call $set_header (i32.const 1) (i32.const 16) (i32.const 4) (i32.const 300) (local.get $len))
    (call $log (i32.const 1) (i32.const 32) (i32.const 11))
    {request})
  (func (export "handle_response") (param $ctx i32) (param $is_error i32) {response}))"#
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"))
}

/// Continues to the next handler.
const CONTINUE: &str = "(i64.const 1)";
/// Answers itself (200, empty body).
const ANSWER: &str = "(i64.const 0)";
/// Burns fuel until it runs out.
const SPIN: &str = "(loop $l (br $l)) (i64.const 1)";

/// A server with the [`kv_middleware`] variants of `variants` (name,
/// request, response) as `[[middleware]]` NAME, each in front of `/NAME`
/// (hello), all in namespace `mw` (`mw` by its name, the others by `kv =
/// "mw"`); `/counter` (counter.wasm in namespace `mw`: `?key=n` reads the
/// count), `/spin` (loop.wasm behind `mw`, more fuel than a test waits
/// for), `/trap` (a native function that traps, behind `mw`), `/fn`
/// (the first variant as a function, in its own namespace `fn`) and, with
/// a `late-trap` variant, `/both` (hello behind `late-trap` and `mw`).
fn kv_middleware_server(variants: &[(&str, &str, &str)]) -> (Server, TempDir) {
    let state = TempDir::new("kv-mw-state");
    let dir = TempDir::new("kv-mw-mods");
    let trap = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func (export "wasmgate_alloc") (param i32) (result i32) unreachable)
          (func (export "wasmgate_handle") (param i32 i32) (result i64) unreachable))"#,
    )
    .expect("wat");
    let mut config = format!(
        "[state]\ndir = \"{}\"\n\
         [[function]]\nroute = \"/counter\"\nmodule = \"counter.wasm\"\nkv = \"mw\"\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"loop.wasm\"\nmiddleware = [\"mw\"]\n\
         limits = {{ fuel = 1_000_000_000_000, timeout = \"60s\" }}\n\
         [[function]]\nroute = \"/trap\"\nmodule = \"trap.wasm\"\nmiddleware = [\"mw\"]\n\
         [[function]]\nname = \"fn\"\nroute = \"/fn\"\nmodule = \"{}.wasm\"\n",
        state.path().display(),
        variants[0].0,
    );
    let mut files = vec![
        ("counter.wasm", function("counter.wasm")),
        ("hello.wasm", function("hello.wasm")),
        ("loop.wasm", function("hostile/loop.wasm")),
        ("trap.wasm", dir.write("trap.wasm", trap)),
    ];
    for (name, request, response) in variants {
        let file: &'static str = Box::leak(format!("{name}.wasm").into_boxed_str());
        files.push((file, dir.write(file, kv_middleware(request, response))));
        let kv = if *name == "mw" { "" } else { "kv = \"mw\"\n" };
        config.push_str(&format!(
            "[[middleware]]\nname = \"{name}\"\nmodule = \"{file}\"\n{kv}\
             limits = {{ fuel = 10_000_000 }}\n\
             [[function]]\nroute = \"/{name}\"\nmodule = \"hello.wasm\"\nmiddleware = [\"{name}\"]\n"
        ));
    }
    if variants.iter().any(|v| v.0 == "late-trap") {
        // `mw` completes its response phase first, then `late-trap` fails.
        config.push_str(
            "[[function]]\nroute = \"/both\"\nmodule = \"hello.wasm\"\n\
             middleware = [\"late-trap\", \"mw\"]\n",
        );
    }
    (Server::with_config(&config, &files), state)
}

/// What `x-kv` a request to `path` answers with (the middleware's count,
/// its own uncommitted write read back), asserting a 200.
fn kv_header(s: &Server, path: &str) -> String {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{r:?}\nlog:\n{}", s.log());
    r.header("x-kv").unwrap_or_default().to_owned()
}

#[test]
fn http_wasm_writes_commit_when_the_request_completes() {
    let (s, _state) = kv_middleware_server(&[("mw", CONTINUE, ""), ("answers", ANSWER, "")]);
    // Its own write read back before the commit, then committed.
    assert_eq!(kv_header(&s, "/mw"), "1");
    assert_eq!(kv_header(&s, "/mw"), "2");
    // One that answers itself completed too; `kv = "mw"` shares the
    // namespace the first one has by its name.
    assert_eq!(kv_header(&s, "/answers"), "3");
    // As a function, in the function's namespace.
    assert_eq!(kv_header(&s, "/fn"), "1");
    assert_eq!(kv_header(&s, "/fn"), "2");
    // /counter (kv = "mw") adds its own 1 to the 3 committed.
    assert_eq!(count(&s, "n"), 4);
    s.assert_healthy();
}

#[test]
fn http_wasm_writes_are_discarded_when_a_middleware_fails() {
    let (s, _state) = kv_middleware_server(&[
        ("mw", CONTINUE, ""),
        ("late-trap", CONTINUE, "unreachable"),
        ("spinner", SPIN, ""),
    ]);
    assert_eq!(kv_header(&s, "/mw"), "1");
    s.get("/late-trap").assert_error(502, "trap");
    // One failing discards the writes of one that had completed.
    s.get("/both").assert_error(502, "trap");
    s.get("/spinner").assert_error(504, "deadline");
    // Neither failed request's increment was committed.
    assert_eq!(kv_header(&s, "/mw"), "2");
    // A next handler that fails does not discard them: the middleware
    // completed (a rate limit counts failing requests too).
    s.get("/trap").assert_error(502, "trap");
    assert_eq!(kv_header(&s, "/mw"), "4");
    s.assert_healthy();
}

#[test]
fn a_client_that_disconnects_mid_request_has_its_writes_discarded() {
    let (s, _state) = kv_middleware_server(&[("mw", CONTINUE, "")]);
    assert_eq!(kv_header(&s, "/mw"), "1");
    // The middleware increments, then the function behind it spins until
    // the client resets the connection.
    reset_mid_request(&s, "incremented", 2);
    assert_eq!(kv_header(&s, "/mw"), "2");
    s.assert_healthy();
}

/// Sends `GET /spin`, waits until the log holds `marker` `n` times (the
/// request wrote), resets the connection and waits until the server says
/// it cancelled the request.
fn reset_mid_request(s: &Server, marker: &str, n: usize) {
    let mut conn = s.connect();
    conn.send(b"GET /spin HTTP/1.1\r\nhost: t\r\n\r\n");
    wait_for_count(s, marker, n);
    conn.reset();
    let cancelled = "GET /spin cancelled: the client closed the connection";
    wait_for_count(s, cancelled, 1);
}

/// Waits until the server's log holds `needle` `n` times.
fn wait_for_count(s: &Server, needle: &str, n: usize) {
    let deadline = Instant::now() + common::PROCESS_TIMEOUT;
    while s.log().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "{needle:?} not {n} times; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_guest_crates_kv_wrappers_work_compiled_for_wasm() {
    // functions/kvprobe: one `kv` wrapper of the guest crate per request.
    let state = TempDir::new("kv-probe");
    let config = format!(
        "[state]\ndir = \"{}\"\n[[function]]\nroute = \"/kv\"\nmodule = \"kvprobe.wasm\"\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        state.path().display()
    );
    let files = [
        ("kvprobe.wasm", function("kvprobe.wasm")),
        ("hello.wasm", function("hello.wasm")),
    ];
    let s = Server::with_config(&config, &files);
    let call = |method: &str, query: &str, body: &[u8]| {
        let r = s.request(method, &format!("/kv?{query}"), &[], body);
        (r.status, r.body)
    };
    assert_eq!(call("GET", "op=get&key=a", b""), (404, b"missing".to_vec()));
    // A value longer than `get`'s first 256-byte buffer: asked again.
    let long: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(call("POST", "op=set&key=a", &long), (200, b"ok".to_vec()));
    assert_eq!(call("GET", "op=get&key=a", b""), (200, long.clone()));
    assert_eq!(call("POST", "op=set&key=ab", b"x"), (200, b"ok".to_vec()));
    assert_eq!(call("GET", "op=incr&key=n&by=5", b""), (200, b"5".to_vec()));
    assert_eq!(
        call("GET", "op=incr&key=n&by=-7", b""),
        (200, b"-2".to_vec())
    );
    assert_eq!(
        call("GET", "op=list&prefix=a", b""),
        (200, b"a\nab".to_vec())
    );
    assert_eq!(
        call("GET", "op=list&prefix=", b""),
        (200, b"a\nab\nn".to_vec())
    );
    assert_eq!(call("GET", "op=delete&key=a", b""), (200, b"true".to_vec()));
    assert_eq!(
        call("GET", "op=delete&key=a", b""),
        (200, b"false".to_vec())
    );
    assert_eq!(call("GET", "op=list&prefix=a", b""), (200, b"ab".to_vec()));
    // An error value comes back as the crate's error.
    assert_eq!(
        call("GET", "op=incr&key=ab&by=1", b""),
        (507, b"NotANumber".to_vec())
    );
    // `kv::list` pages through more keys than one call returns (16 KiB of
    // records): 1,100 keys of 20 bytes.
    for i in 0..1100 {
        let r = s.request("POST", &format!("/kv?op=set&key=page-{i:015}"), &[], b"");
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (status, body) = call("GET", "op=list&prefix=page-", b"");
    assert_eq!(status, 200);
    assert_eq!(body.split(|&b| b == b'\n').count(), 1100);
    s.assert_healthy();
}

#[test]
fn a_function_whose_client_disconnects_mid_request_has_its_writes_discarded() {
    let state = TempDir::new("kv-gone");
    let dir = TempDir::new("kv-gone-mods");
    // Sets `t`, logs, then spins until the request is dropped.
    let spin = wat::parse_str(
        r#"(module
  (import "gojinn" "host_kv_set" (func $set (param i32 i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "t")
  (data (i32.const 200) "written\n")
  (func (export "_start")
    (call $set (i32.const 100) (i32.const 1) (i32.const 100) (i32.const 1))
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 20)))
    (loop $l (br $l))))"#,
    )
    .expect("wat");
    let spin = dir.write("spin.wasm", spin);
    let get = dir.write("get.wasm", gojinn_module("i64", "t", None, false));
    let config = format!(
        "[state]\ndir = \"{}\"\n\
         [[function]]\nroute = \"/spin\"\nmodule = \"spin.wasm\"\nkv = \"shared\"\n\
         limits = {{ fuel = 1_000_000_000_000, timeout = \"60s\" }}\n\
         [[function]]\nroute = \"/get\"\nmodule = \"get.wasm\"\nkv = \"shared\"\n\
         [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
        state.path().display()
    );
    let s = Server::with_config(
        &config,
        &[
            ("spin.wasm", spin),
            ("get.wasm", get),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    reset_mid_request(&s, "written", 1);
    let r = s.get("/get");
    assert_eq!((r.status, r.text()), (404, "missing".into()));
    s.assert_healthy();
}
