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
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
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
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).map(String::as_str) == Some("histogram"))
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
