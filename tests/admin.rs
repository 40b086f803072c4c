//! The admin listener (`[admin] listen`): health, readiness during a
//! drain, the Prometheus exposition after requests, the cap on
//! per-function series, and a hostile request on the admin port.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::{Conn, Server, TempDir, counting};

/// A module that traps at once (kind `trap`).
fn trapping() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (memory (export "memory") 1)
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64) unreachable))"#,
    )
    .unwrap()
}

/// A server with `toml` before one function, `/ok`.
fn serve_ok(toml: &str) -> Server {
    let dir = TempDir::new("admin");
    let ok = dir.write("ok.wasm", counting(10));
    Server::with_config(
        &format!("{toml}[[function]]\nroute = \"/ok\"\nmodule = \"ok.wasm\"\n"),
        &[("ok.wasm", ok)],
    )
}

fn admin(s: &Server) -> SocketAddr {
    s.admin.expect("the server announced its admin address")
}

fn get(addr: SocketAddr, path: &str) -> common::Response {
    Conn::open(addr).request("GET", path, &[], b"")
}

/// Checks every line of an exposition against the text format 0.0.4 and
/// returns its samples, by name with labels as written.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary"].contains(&kind),
                "{line}"
            );
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect(line);
                for label in split_labels(labels) {
                    let (key, value) = label.split_once('=').expect(line);
                    assert!(valid_name(key), "{line}");
                    assert!(
                        value.starts_with('"') && value.ends_with('"') && value.len() >= 2,
                        "{line}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(valid_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| {
                    let kind = typed.get(*f).map(String::as_str);
                    kind == Some("histogram") || (kind == Some("summary") && *s != "_bucket")
                })
            })
            .unwrap_or(name);
        let kind = typed
            .get(family)
            .unwrap_or_else(|| panic!("no TYPE before {line}"));
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "twice: {line}"
        );
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y"` split at the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&labels[start..]);
    parts
}

fn metrics(s: &Server) -> BTreeMap<String, f64> {
    let r = get(admin(s), "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&r.text())
}

fn count(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[test]
fn metrics_count_requests_by_function_status_and_error_kind() {
    let dir = TempDir::new("admin-metrics");
    let ok = dir.write("ok.wasm", counting(10));
    let bad = dir.write("bad.wasm", trapping());
    let s = Server::with_config(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [[function]]\nroute = \"/ok\"\nmodule = \"ok.wasm\"\n\n\
         [[function]]\nroute = \"/bad\"\nmodule = \"bad.wasm\"\n",
        &[("ok.wasm", ok), ("bad.wasm", bad)],
    );
    let before = metrics(&s);
    assert_eq!(
        count(&before, "wasmgate_request_duration_seconds_count"),
        0.0
    );
    assert_eq!(
        count(
            &before,
            &format!(
                "wasmgate_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    for _ in 0..2 {
        assert_eq!(s.get("/ok").status, 200);
    }
    s.get("/bad").assert_error(502, "trap");
    for path in ["/made-up", "/other/made-up"] {
        s.get(path).assert_error(404, "not-found");
    }
    let m = metrics(&s);
    let r = "wasmgate_requests_total";
    assert_eq!(
        count(
            &m,
            &format!("{r}{{function=\"ok\",status=\"2xx\",error=\"\"}}")
        ),
        2.0,
        "{m:?}"
    );
    assert_eq!(
        count(
            &m,
            &format!("{r}{{function=\"bad\",status=\"5xx\",error=\"trap\"}}")
        ),
        1.0,
        "{m:?}"
    );
    assert_eq!(
        count(
            &m,
            &format!("{r}{{function=\"_none\",status=\"4xx\",error=\"not-found\"}}")
        ),
        2.0,
        "{m:?}"
    );
    assert_eq!(m.keys().filter(|k| k.starts_with(r)).count(), 3, "{m:?}");
    for h in ["wasmgate_request_duration_seconds", "wasmgate_request_fuel"] {
        assert_eq!(count(&m, &format!("{h}_count")), 5.0, "{h}");
        assert_eq!(count(&m, &format!("{h}_bucket{{le=\"+Inf\"}}")), 5.0, "{h}");
    }
    assert!(count(&m, "wasmgate_request_fuel_sum") > 0.0);
    assert_eq!(count(&m, "wasmgate_module_cache_entries"), 2.0, "{m:?}");
    assert_eq!(
        count(&m, "wasmgate_module_cache_misses_total"),
        2.0,
        "{m:?}"
    );
    assert_eq!(count(&m, "wasmgate_module_compiles_total"), 2.0, "{m:?}");
    assert_eq!(count(&m, "wasmgate_module_cache_hits_total"), 1.0, "{m:?}");
    assert_eq!(count(&m, "wasmgate_requests_in_flight"), 0.0);
    assert!(m.contains_key("wasmgate_connections_open"));
    assert_eq!(s.get("/ok").status, 200);
}

#[test]
fn healthz_readyz_404_405_and_a_garbage_request_on_the_admin_port() {
    let s = serve_ok("[admin]\nlisten = \"127.0.0.1:0\"\n");
    let a = admin(&s);
    assert_ne!(a, s.addr);
    let r = get(a, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert_eq!(get(a, "/readyz").status, 200);
    assert_eq!(
        get(a, "/ok").status,
        404,
        "the admin port serves no function"
    );
    assert_eq!(get(a, "/nope").status, 404);
    let r = Conn::open(a).request("POST", "/metrics", &[], b"x");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // No admin path takes a body, and the admin port has no memory
    // budget: more than 1 KiB is refused before it is read.
    let r = Conn::open(a).request("POST", "/metrics", &[], &[b'x'; 2048]);
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.text().contains("larger than 1024 bytes"), "{r:?}");
    let mut garbage = Conn::open(a);
    garbage.send(b"\x00\x01 GARBAGE\r\n\r\n");
    assert_eq!(garbage.read_response(false).status, 400);
    assert_eq!(get(a, "/healthz").status, 200);
    assert_eq!(s.get("/ok").status, 200);
}

#[test]
fn no_admin_table_no_admin_listener() {
    let s = serve_ok("");
    assert_eq!(s.admin, None);
    assert!(!s.log().contains("admin"));
}

#[test]
fn readyz_says_503_while_draining() {
    let mut s =
        serve_ok("[admin]\nlisten = \"127.0.0.1:0\"\n\n[server]\ndrain_timeout = \"60s\"\n\n");
    let a = admin(&s);
    // A request in flight: its head is in, its body is not.
    let mut busy = s.connect();
    busy.send(b"POST /ok HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n");
    assert_eq!(busy.read_one(false).status, 100);
    s.signal("TERM");
    s.wait_for_log("stopped accepting");
    let r = get(a, "/readyz");
    assert_eq!((r.status, r.text().as_str()), (503, "draining\n"));
    assert_eq!(get(a, "/healthz").status, 200);
    busy.send(b"body");
    assert_eq!(busy.read_response(false).status, 200);
    assert!(s.wait_exit().success(), "{}", s.log());
}

#[test]
fn functions_dir_functions_beyond_the_cap_share_one_series() {
    const CAP: usize = 100;
    let dir = TempDir::new("admin-cap");
    let module = dir.write("m.wasm", counting(10));
    let names: Vec<String> = (0..CAP + 5).map(|i| format!("f{i:03}")).collect();
    let files: Vec<(String, std::path::PathBuf)> = names
        .iter()
        .map(|n| (format!("{n}.wasm"), module.clone()))
        .collect();
    let files: Vec<(&str, std::path::PathBuf)> =
        files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let s = Server::with_config(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[server]\nfunctions_dir = \".\"\n",
        &files,
    );
    for name in &names {
        assert_eq!(s.get(&format!("/{name}")).status, 200, "{name}");
    }
    s.get("/no-such-module").assert_error(404, "not-found");
    let m = metrics(&s);
    let series: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("wasmgate_requests_total{"))
        .collect();
    assert_eq!(series.len(), CAP + 2, "{series:?}");
    let r = "wasmgate_requests_total";
    assert_eq!(
        count(
            &m,
            &format!("{r}{{function=\"f000\",status=\"2xx\",error=\"\"}}")
        ),
        1.0
    );
    assert_eq!(
        count(
            &m,
            &format!("{r}{{function=\"_other\",status=\"2xx\",error=\"\"}}")
        ),
        5.0
    );
    assert_eq!(
        count(
            &m,
            &format!("{r}{{function=\"_none\",status=\"4xx\",error=\"not-found\"}}")
        ),
        1.0
    );
    assert_eq!(
        count(&m, "wasmgate_request_duration_seconds_count"),
        (CAP + 6) as f64
    );
}

#[test]
fn metrics_count_kv_operations_and_refusals_by_operation() {
    let state = TempDir::new("admin-kv");
    let s = Server::with_config(
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[state]\ndir = \"{}\"\n\n\
             [[function]]\nroute = \"/kv\"\nmodule = \"kvprobe.wasm\"\n\n\
             [[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n",
            state.path().display()
        ),
        &[
            ("kvprobe.wasm", common::function("kvprobe.wasm")),
            ("hello.wasm", common::function("hello.wasm")),
        ],
    );
    let series = |op: &str| {
        (
            format!("wasmgate_kv_operations_total{{op=\"{op}\"}}"),
            format!("wasmgate_kv_errors_total{{op=\"{op}\"}}"),
        )
    };
    let before = metrics(&s);
    for op in ["get", "set", "delete", "incr", "list", "commit"] {
        let (ops, errors) = series(op);
        assert_eq!(count(&before, &ops), 0.0, "{op}");
        assert_eq!(count(&before, &errors), 0.0, "{op}");
        assert!(before.contains_key(&ops), "every operation has a series");
    }
    let request = |method: &str, target: &str, body: &[u8], status: u16| {
        let r = Conn::open(s.addr).request(method, target, &[], body);
        assert_eq!(r.status, status, "{target}: {r:?}");
        r
    };
    request("POST", "/kv?op=set&key=word", b"abc", 200);
    request("GET", "/kv?op=get&key=word", b"", 200);
    request("GET", "/kv?op=get&key=absent", b"", 404);
    request("GET", "/kv?op=incr&key=n&by=2", b"", 200);
    // Not a number: an error value to the guest (507 from kvprobe).
    let r = request("GET", "/kv?op=incr&key=word&by=1", b"", 507);
    assert!(r.text().contains("NotANumber"), "{r:?}");
    request("GET", "/kv?op=list&prefix=", b"", 200);
    request("GET", "/kv?op=delete&key=word", b"", 200);
    let m = metrics(&s);
    let expect = [
        // (op, at least, errors): a missing key is not an error.
        ("get", 2.0, 0.0),
        ("set", 1.0, 0.0),
        ("delete", 1.0, 0.0),
        ("incr", 2.0, 1.0),
        ("list", 1.0, 0.0),
        // set, incr, delete committed; the refused incr's request answered
        // 507 and committed nothing.
        ("commit", 3.0, 0.0),
    ];
    for (op, at_least, refused) in expect {
        let (ops, errors) = series(op);
        assert!(count(&m, &ops) >= at_least, "{op}: {}", count(&m, &ops));
        assert_eq!(count(&m, &errors), refused, "{op}");
    }
    assert_eq!(count(&m, &series("get").0), 2.0);
    assert_eq!(count(&m, &series("incr").0), 2.0);
    s.assert_healthy();
}

/// An upstream that answers every request on a connection with 200 and
/// `up` (reads heads up to their blank line; requests carry no body).
fn tiny_upstream() -> SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nup";
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
    addr
}

#[test]
fn metrics_count_upstream_requests_errors_latency_and_admission_refusals() {
    let up = tiny_upstream();
    // A port with nothing listening: bound, then closed.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = TempDir::new("admin-upstreams");
    let mw = dir.write(
        "mw.wasm",
        std::fs::read(common::function("hwg-example.wasm")).unwrap(),
    );
    // The middleware's 2 MiB cannot fit the 3 MiB budget beside the
    // function's 1 MiB + 512 KiB: refused for memory.
    let s = Server::with_config(
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\
             [server]\nmemory_budget = \"3MiB\"\n[limits]\nmemory = \"1MiB\"\nmax_response = \"512KiB\"\n\
             [[middleware]]\nname = \"big\"\nmodule = \"mw.wasm\"\nlimits = {{ memory = \"2MiB\" }}\n\
             [[function]]\nroute = \"/big\"\nmodule = \"ok.wasm\"\nmiddleware = [\"big\"]\n\
             [[function]]\nroute = \"/ok\"\nmodule = \"ok.wasm\"\n\
             [[proxy]]\nroute = \"/up/*\"\nupstream = \"http://{up}\"\n\
             [[proxy]]\nroute = \"/down/*\"\nupstream = \"http://{down}\"\n"
        ),
        &[
            ("ok.wasm", dir.write("ok.wasm", counting(10))),
            ("mw.wasm", mw),
        ],
    );
    let up_series = |m: &str| format!("{m}{{proxy=\"/up/*\",upstream=\"http://{up}\"}}");
    let down_series = |m: &str| format!("{m}{{proxy=\"/down/*\",upstream=\"http://{down}\"}}");
    let before = metrics(&s);
    assert_eq!(
        count(&before, &up_series("wasmgate_upstream_requests_total")),
        0.0
    );
    for _ in 0..3 {
        let r = s.get("/up/x");
        assert_eq!((r.status, r.text().as_str()), (200, "up"), "{r:?}");
    }
    let r = s.get("/down/x");
    r.assert_error(502, "upstream-unavailable");
    s.get("/big").assert_error(503, "overloaded");
    let after = metrics(&s);
    assert_eq!(
        count(&after, &up_series("wasmgate_upstream_requests_total")),
        3.0
    );
    assert_eq!(
        count(&after, &up_series("wasmgate_upstream_errors_total")),
        0.0
    );
    assert_eq!(
        count(
            &after,
            &up_series("wasmgate_upstream_response_seconds_count")
        ),
        3.0
    );
    assert!(count(&after, &up_series("wasmgate_upstream_response_seconds_sum")) > 0.0);
    assert_eq!(
        count(&after, &down_series("wasmgate_upstream_requests_total")),
        1.0
    );
    assert_eq!(
        count(&after, &down_series("wasmgate_upstream_errors_total")),
        1.0
    );
    assert_eq!(
        count(
            &after,
            &down_series("wasmgate_upstream_response_seconds_count")
        ),
        0.0
    );
    assert_eq!(
        count(
            &after,
            "wasmgate_admission_refusals_total{reason=\"memory\"}"
        ),
        1.0
    );
    assert_eq!(
        count(
            &after,
            "wasmgate_admission_refusals_total{reason=\"in_flight\"}"
        ),
        0.0
    );
    // The server still answers.
    let r = s.get("/ok");
    assert_eq!(r.status, 200, "{r:?}");
}

/// An http-wasm middleware whose `_start` leaves 900,000 bytes of data,
/// which its snapshot keeps.
fn filling_start() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
  (memory (export "memory") 15)
  (func (export "_start")
    (drop (call $enable (i32.const 0)))
    (memory.fill (i32.const 0) (i32.const 1) (i32.const 900000)))
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap()
}

/// A server with `[server]` keys `server`: `/other` (a small function),
/// `/snapfn` (the middleware's module as a function: its `_start` runs per
/// request, no snapshot) and `/snap` (`/other`'s module behind the
/// middleware `snap`, whose first request makes its snapshot).
fn snapshot_server(server: &str) -> Server {
    let dir = TempDir::new("admin-snapshot");
    let other = dir.write("other.wasm", counting(10));
    let snap = dir.write("snap.wasm", filling_start());
    Server::with_config(
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[server]\n{server}\n\
             [[middleware]]\nname = \"snap\"\nmodule = \"snap.wasm\"\n\n\
             [[function]]\nroute = \"/other\"\nmodule = \"other.wasm\"\n\n\
             [[function]]\nroute = \"/snapfn\"\nmodule = \"snap.wasm\"\n\n\
             [[function]]\nroute = \"/snap\"\nmodule = \"other.wasm\"\nmiddleware = [\"snap\"]\n"
        ),
        &[("other.wasm", other), ("snap.wasm", snap)],
    )
}

const CACHE_BYTES: &str = "wasmgate_module_cache_bytes";
const SNAPSHOT_MADE: &str =
    "middleware snap: instances start from a snapshot taken after `_start` (879 KiB of data)";

#[test]
fn snapshots_count_in_the_module_cache_bytes_and_never_evict_a_module() {
    let s = snapshot_server("");
    assert_eq!(s.get("/other").status, 200);
    let other = count(&metrics(&s), CACHE_BYTES);
    assert!(other > 0.0);
    assert_eq!(s.get("/snapfn").status, 200);
    let modules = count(&metrics(&s), CACHE_BYTES);
    assert!(modules > other, "{modules} {other}");
    // Both modules are cached; the snapshot adds its module and its data.
    assert_eq!(s.get("/snap").status, 200);
    s.wait_for_log(SNAPSHOT_MADE);
    let m = metrics(&s);
    assert_eq!(count(&m, "wasmgate_module_cache_entries"), 2.0, "{m:?}");
    let snapshotted = count(&m, CACHE_BYTES);
    assert!(
        snapshotted >= modules + 900_000.0,
        "{snapshotted} {modules}"
    );
    assert_eq!(s.get("/snap").status, 200);
    assert_eq!(s.get("/other").status, 200);

    // Room for both modules, and for the middleware's with its snapshot,
    // not for all three: the snapshot is not kept, and no module is evicted
    // for it (the two would evict each other on alternate requests, a
    // compile and a snapshot each time).
    let limit = (snapshotted - other / 2.0) as u64;
    let s = snapshot_server(&format!("module_cache_bytes = {limit}\n"));
    assert_eq!(s.get("/other").status, 200);
    assert_eq!(s.get("/snapfn").status, 200);
    assert_eq!(s.get("/snap").status, 200);
    s.wait_for_log("modules are not evicted for a snapshot");
    for path in ["/other", "/snap", "/other", "/snap"] {
        assert_eq!(s.get(path).status, 200, "{path}");
    }
    let m = metrics(&s);
    assert_eq!(count(&m, "wasmgate_module_cache_entries"), 2.0, "{m:?}");
    assert_eq!(count(&m, CACHE_BYTES), modules, "{m:?}");
    assert_eq!(count(&m, "wasmgate_module_compiles_total"), 2.0, "{m:?}");

    // Room for both modules but not for the snapshot: none is kept.
    assert!(snapshotted > f64::from(512 << 10) && modules < f64::from(512 << 10));
    let s = snapshot_server("module_cache_bytes = \"512KiB\"\n");
    assert_eq!(s.get("/snap").status, 200);
    s.wait_for_log("middleware snap: each instance runs `_start` (no snapshot: ~");
    let m = metrics(&s);
    assert_eq!(count(&m, "wasmgate_module_cache_entries"), 2.0, "{m:?}");
    assert_eq!(count(&m, CACHE_BYTES), modules, "{m:?}");
    assert_eq!(s.get("/snap").status, 200);
    assert_eq!(s.get("/other").status, 200);
}
