//! Hostile guests (`functions/hostile/*.wasm`) each end in their documented
//! clean error for that one request, and never stall or break the server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{HELLO, Response, Server, function};

/// The native-ABI fixtures of `functions/README.md`.
const FIXTURES: &[&str] = &[
    "loop",
    "grow",
    "recurse",
    "bigresponse",
    "garbage",
    "startrap",
    "divzero",
    "badimport",
    "invalid",
];

/// A server whose functions dir holds `hello.wasm` and every fixture, with
/// `limits` as the `[limits]` table.
fn hostile_server(limits: &str) -> Server {
    let mut files = vec![("hello.wasm", function("hello.wasm"))];
    let names: Vec<String> = FIXTURES.iter().map(|f| format!("{f}.wasm")).collect();
    for name in &names {
        files.push((name.as_str(), function(&format!("hostile/{name}"))));
    }
    Server::with_config(
        &format!("[server]\nfunctions_dir = \".\"\n\n[limits]\n{limits}\n"),
        &files,
    )
}

fn server() -> Server {
    hostile_server("fuel = 20_000_000")
}

/// Calls fixture `name` and checks the error response names it and carries
/// the request's trace id.
fn call(s: &Server, name: &str, status: u16, kind: &str) -> (Response, String) {
    let r = s.request("POST", &format!("/{name}"), &[], b"some request body");
    let json = r.assert_error(status, kind);
    assert_eq!(json["function"], name, "{json}");
    assert_eq!(
        json["trace_id"].as_str(),
        r.header("x-trace-id"),
        "trace id in body and header differ"
    );
    let message = r.message();
    (r, message)
}

#[test]
fn loop_hits_the_fuel_deadline() {
    let s = server();
    let (_, message) = call(&s, "loop", 504, "deadline");
    assert!(
        message.contains("fuel") && message.contains("20000000"),
        "{message}"
    );
    s.wait_for_log("POST /loop fn=loop status=504 error=deadline fuel=20000000 ");
    s.assert_healthy();
    // Once more: the budget is per request, not used up for good.
    call(&s, "loop", 504, "deadline");
    s.assert_healthy();
}

#[test]
fn grow_hits_the_memory_limit() {
    let s = server();
    let (_, message) = call(&s, "grow", 502, "memory-limit");
    assert!(
        message.contains("memory limit of 8388608 bytes"),
        "{message}"
    );
    s.wait_for_log("fn=grow status=502 error=memory-limit ");
    s.assert_healthy();
}

#[test]
fn recurse_overflows_the_guest_stack_not_the_host() {
    let s = server();
    let (_, message) = call(&s, "recurse", 502, "trap");
    assert!(message.contains("stack overflow"), "{message}");
    s.assert_healthy();
}

#[test]
fn bigresponse_is_refused_before_it_is_read() {
    let s = server();
    let (_, message) = call(&s, "bigresponse", 502, "bad-response");
    assert!(message.contains("max_response"), "{message}");
    s.assert_healthy();
}

#[test]
fn garbage_response_is_refused() {
    let s = server();
    let (_, message) = call(&s, "garbage", 502, "bad-response");
    assert!(message.contains("not a valid"), "{message}");
    s.assert_healthy();
}

#[test]
fn startrap_traps_at_instantiation() {
    let s = server();
    let (_, message) = call(&s, "startrap", 502, "trap");
    assert!(message.contains("unreachable"), "{message}");
    // It fails per request: the module stays loadable, the next call traps too.
    call(&s, "startrap", 502, "trap");
    s.assert_healthy();
}

#[test]
fn divzero_traps() {
    let s = server();
    let (_, message) = call(&s, "divzero", 502, "trap");
    assert!(message.contains("divide by zero"), "{message}");
    s.assert_healthy();
}

#[test]
fn badimport_is_unavailable_and_the_log_names_the_import() {
    let s = server();
    call(&s, "badimport", 503, "module-unavailable");
    s.wait_for_log("env.nonexistent");
    s.wait_for_log("fn=badimport status=503 error=module-unavailable ");
    s.assert_healthy();
    // A cached load failure answers the same way.
    call(&s, "badimport", 503, "module-unavailable");
    s.assert_healthy();
}

#[test]
fn invalid_module_is_unavailable() {
    let s = server();
    call(&s, "invalid", 503, "module-unavailable");
    s.wait_for_log("not a valid WebAssembly module");
    s.assert_healthy();
}

#[test]
fn every_fixture_in_turn_on_one_connection_then_hello() {
    let s = server();
    let expected = [
        ("loop", 504, "deadline"),
        ("grow", 502, "memory-limit"),
        ("recurse", 502, "trap"),
        ("bigresponse", 502, "bad-response"),
        ("garbage", 502, "bad-response"),
        ("startrap", 502, "trap"),
        ("divzero", 502, "trap"),
        ("badimport", 503, "module-unavailable"),
        ("invalid", 503, "module-unavailable"),
    ];
    assert_eq!(expected.len(), FIXTURES.len());
    // Guest failures do not cost the client its keep-alive connection.
    let mut conn = s.connect();
    for (name, status, kind) in expected {
        let r = conn.request("GET", &format!("/{name}"), &[], b"");
        r.assert_error(status, kind);
        assert!(r.header("connection").is_none(), "{name}: {r:?}");
    }
    let r = conn.request("GET", "/hello", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), HELLO);
}

#[test]
fn cpu_time_timeout_is_a_deadline() {
    let s = hostile_server("fuel = 1_000_000_000_000\ntimeout = \"300ms\"");
    let (_, message) = call(&s, "loop", 504, "deadline");
    assert!(
        message.contains("timeout of 300 ms of CPU time"),
        "{message}"
    );
    s.wait_for_log("fn=loop status=504 error=deadline ");
    s.assert_healthy();
}

/// Two long-running `loop` requests share the one server thread with
/// ordinary requests: 10 sequential hellos all complete while both loops
/// are still spinning, and the loops then end in 504 `deadline`.
#[test]
fn busy_guests_do_not_stall_other_requests() {
    // Each loop spins until its backstop, 3 s of its own CPU time (its fuel
    // budget is out of reach; the two share the thread, so ~6 s of the
    // server's CPU, more on a busy machine), so it outlasts the hellos
    // however fast the machine is, natively or under qemu (where a hello
    // takes ~0.2 s).
    let s = Arc::new(hostile_server(
        "fuel = 1_000_000_000_000\ntimeout = \"3s\"\nfuel_slice = 100_000",
    ));
    let done: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let spinners: Vec<_> = done
        .iter()
        .map(|flag| {
            let (s, flag) = (Arc::clone(&s), Arc::clone(flag));
            thread::spawn(move || {
                let mut conn = s.connect().read_timeout(Duration::from_secs(120));
                let r = conn.request("GET", "/loop", &[], b"");
                flag.store(true, Ordering::SeqCst);
                r
            })
        })
        .collect();
    // The module is loaded (and the request admitted) just before its first
    // fuel slice runs.
    s.wait_for_log("loop.wasm (native ABI)");
    thread::sleep(Duration::from_millis(100));
    assert!(
        !done.iter().any(|d| d.load(Ordering::SeqCst)),
        "a loop request finished before the hellos started: fuel too small for this machine?"
    );

    for i in 0..10 {
        let r = s.get(&format!("/hello?name=h{i}"));
        assert_eq!(r.status, 200, "hello {i}: {r:?}");
        assert_eq!(r.text(), format!("Hello, h{i}!\n"));
    }
    let finished: Vec<bool> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    assert_eq!(
        finished,
        [false, false],
        "the hellos should all finish while both loops still spin"
    );

    for spinner in spinners {
        let r = spinner.join().expect("loop request thread");
        let json = r.assert_error(504, "deadline");
        assert_eq!(json["function"], "loop");
        let message = r.message();
        assert!(
            message.contains("timeout of 3000 ms of CPU time"),
            "{message}"
        );
    }
    s.assert_healthy();
}

/// One fuel slice as large as the whole budget (the largest slice
/// allowed): the guest runs without a yield, and the host's own stack must
/// not depend on how many instructions a slice executes.
#[test]
fn one_huge_fuel_slice_does_not_overflow_the_host_stack() {
    let s = hostile_server("fuel = 10_000_000\nfuel_slice = 10_000_000");
    let (_, message) = call(&s, "loop", 504, "deadline");
    assert!(message.contains("10000000"), "{message}");
    s.assert_healthy();
}
