//! The instruction budget decides, not the machine's load: requests that
//! share the server's thread each get the same fuel figure as when they run
//! alone, because the `timeout` backstop counts only a request's own work.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{PROCESS_TIMEOUT, Server, TempDir, counting, function};

/// `(fuel, us)` of every access line of function `name` so far, waiting
/// (bounded) until there are at least `count`.
fn access(s: &Server, name: &str, count: usize) -> Vec<(u64, u64)> {
    let needle = format!(" fn={name} status=");
    let field = |line: &str, key: &str| -> u64 {
        let value = line.split(key).nth(1).unwrap();
        value.split(' ').next().unwrap().parse().unwrap()
    };
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    loop {
        let log = s.log();
        let lines: Vec<(u64, u64)> = log
            .lines()
            .filter(|l| l.contains("access]") && l.contains(&needle))
            .map(|l| (field(l, " fuel="), field(l, " us=")))
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{count} access lines of {name} never came; log:\n{log}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// With 12 requests sharing the thread, each spends about 12 times its own
/// time waiting for the others' fuel slices. The timeout is sized from what
/// one request takes alone on this machine (natively or under qemu), at 3
/// times that; all of them together take ~9 times as long. Counted from the
/// request's start, the backstop fired in all of them at whatever fuel they
/// had reached; counted on the request's own CPU time, it never fires, and
/// every request ends as it does alone: the counting ones answer 200 with
/// the same fuel, the spinning ones stop at exactly their budget.
#[test]
fn concurrent_requests_end_at_the_same_fuel_as_alone() {
    let dir = TempDir::new("budget");
    let count = dir.write("count.wasm", counting(2_000_000));
    let spin = dir.write("spin.wasm", counting(u64::MAX));

    // Alone, with time to spare: the fuel the count needs, and the time it
    // takes here (the fastest of three, after a first request that loads
    // the module).
    let alone = Server::with_config(
        "[server]\nfunctions_dir = \".\"\n\n[limits]\nfuel = 1_000_000_000\ntimeout = \"600s\"\n",
        &[
            ("count.wasm", count.clone()),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    for _ in 0..4 {
        let r = alone.get("/count");
        assert_eq!((r.status, r.text()), (200, "done".to_owned()), "{r:?}");
    }
    let runs = access(&alone, "count", 4);
    let fuel = runs[0].0;
    assert!(runs.iter().all(|r| r.0 == fuel), "{runs:?}");
    let us = runs[1..].iter().map(|r| r.1).min().unwrap();
    drop(alone);

    // Twice the count's fuel: the spin needs twice its time.
    let budget = 2 * fuel;
    let timeout_ms = (3 * 2 * us).div_ceil(1000).max(1);
    let s = Server::with_config(
        &format!(
            "[server]\nfunctions_dir = \".\"\n\n[limits]\nfuel = {budget}\ntimeout = \"{timeout_ms}ms\"\n"
        ),
        &[
            ("count.wasm", count),
            ("spin.wasm", spin),
            ("hello.wasm", function("hello.wasm")),
        ],
    );
    // Each alone first: the count answers, the spin stops at its budget
    // (within the cost of the instruction it could not pay for).
    let r = s.get("/count");
    assert_eq!((r.status, r.text()), (200, "done".to_owned()), "{r:?}");
    s.get("/spin").assert_error(504, "deadline");
    let spent = access(&s, "spin", 1)[0].0;
    assert!(
        (budget - 100..=budget).contains(&spent),
        "{spent} of {budget}"
    );

    let barrier = Arc::new(Barrier::new(12));
    let clients: Vec<_> = (0..12)
        .map(|i| {
            let name = if i % 2 == 0 { "count" } else { "spin" };
            // All of them take ~9 times as long as one alone (more on a
            // busy machine): longer than one read may wait under qemu.
            let mut conn = s.connect().read_timeout(Duration::from_secs(120));
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                (name, conn.request("GET", &format!("/{name}"), &[], b""))
            })
        })
        .collect();
    for client in clients {
        let (name, r) = client.join().unwrap();
        if name == "count" {
            assert_eq!((r.status, r.text()), (200, "done".to_owned()), "{r:?}");
        } else {
            r.assert_error(504, "deadline");
            let message = r.message();
            assert!(
                message.contains(&format!("out of fuel: its budget is {budget}")),
                "{message} (timeout {timeout_ms} ms)"
            );
        }
    }
    let counts = access(&s, "count", 7);
    assert!(counts.iter().all(|r| r.0 == fuel), "{counts:?} != {fuel}");
    let spins = access(&s, "spin", 7);
    assert!(spins.iter().all(|r| r.0 == spent), "{spins:?} != {spent}");
    s.assert_healthy();
}
