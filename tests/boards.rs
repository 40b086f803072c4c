//! Board profiles and calibration from the command line: `--board`, the
//! `board` key, overrides, unknown names, and `wasmgate calibrate`.

mod common;

use common::{Server, TempDir, function, wasmgate};

#[test]
fn serve_with_a_board_profile_logs_it_and_serves() {
    let s = Server::with_config(
        "board = \"rpi-zero-2w\"\n[server]\nfunctions_dir = \".\"\nmax_in_flight = 5\n",
        &[("hello.wasm", function("hello.wasm"))],
    );
    s.wait_for_log("board profile rpi-zero-2w: Raspberry Pi Zero 2 W");
    s.assert_healthy();
}

#[test]
fn board_timeout_rule_gives_a_deterministic_fuel_budget() {
    // fuel_per_ms = 1000 and timeout = 5ms: a 5 000 instruction budget,
    // reported by the deadline error, whatever the machine's speed.
    let s = Server::with_config(
        "[server]\nfunctions_dir = \".\"\nfuel_per_ms = 1000\n\n[[function]]\nroute = \"/spin\"\nmodule = \"loop.wasm\"\nlimits = { timeout = \"5ms\" }\n",
        &[
            ("hello.wasm", function("hello.wasm")),
            ("loop.wasm", function("hostile/loop.wasm")),
        ],
    );
    let r = s.get("/spin");
    r.assert_error(504, "deadline");
    assert!(r.message().contains("5000 instructions"), "{}", r.message());
    s.assert_healthy();
}

#[test]
fn unknown_boards_are_usage_errors_that_list_the_known_ones() {
    let out = wasmgate(["serve", function("").to_str().unwrap(), "--board", "rpi9"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("unknown board"), "{}", out.stderr);
    for known in ["rpi4b", "rpi5", "beaglebone-black", "generic-aarch64"] {
        assert!(out.stderr.contains(known), "{}", out.stderr);
    }
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);

    let dir = TempDir::new("board-key");
    let config = dir.write(
        "wasmgate.toml",
        "board = \"nope\"\n[server]\nfunctions_dir = \".\"\n",
    );
    let out = wasmgate(["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("board `nope`"), "{}", out.stderr);
}

#[test]
fn a_local_profile_overrides_the_built_in_one() {
    let dir = TempDir::new("board-local");
    dir.write(
        "boards/rpi4b.toml",
        "name = \"My Pi\"\ntarget = \"aarch64-unknown-linux-musl\"\ncpu = \"A72\"\ncores = 4\nram = \"8GiB\"\nfuel_per_ms = 123\n[server]\nmax_in_flight = 2\n",
    );
    let s = Server::with_config(
        "board = \"rpi4b\"\n[server]\nfunctions_dir = \".\"\n",
        &[
            ("hello.wasm", function("hello.wasm")),
            ("boards/rpi4b.toml", dir.path().join("boards/rpi4b.toml")),
        ],
    );
    s.wait_for_log("board profile rpi4b: My Pi");
    s.wait_for_log("fuel_per_ms 123");
    s.assert_healthy();
}

#[test]
fn calibrate_prints_a_fuel_per_ms_line() {
    let out = wasmgate(["calibrate"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("fuel_per_ms = "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let n: u64 = line["fuel_per_ms = ".len()..].parse().unwrap();
    assert!(n > 0, "{line}");
    // The fastest of the runs, timed on CPU time, with their spread (a
    // busy machine may add a warning on stderr; nothing else may appear).
    assert!(
        out.stdout.contains("timed on this thread's CPU time"),
        "{out:?}"
    );
    let runs: Vec<u64> = out
        .stdout
        .lines()
        .filter(|l| l.contains(" ms of CPU ("))
        .map(|l| {
            l.rsplit(": ")
                .next()
                .unwrap()
                .trim_end_matches(" fuel/ms")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(runs.len(), 7, "{out:?}");
    assert_eq!(runs.iter().max(), Some(&n), "{out:?}");
    assert!(out.stdout.contains("\nspread: "), "{out:?}");
    for line in out.stderr.lines() {
        assert!(line.starts_with("warning: the runs differ by "), "{out:?}");
    }
}
