//! Exports cost every request: wasmi copies each export name into every
//! instance it makes. The count and the names' bytes are charged in fuel
//! and against the `memory` limit at instantiation, `max_module_exports`
//! refuses a module with more at load, and the functions in `functions/`
//! pay next to nothing for their few exports.

mod common;

use common::{Server, TempDir, function, leb128 as leb, wasmgate};
use wasmgate::internals::limits::InstanceCost;
use wasmgate::internals::runtime::Shape;

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len() as u64, out);
    out.extend_from_slice(body);
}

fn name(text: &str, out: &mut Vec<u8>) {
    leb(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

/// A wasi-json module (an empty `_start`, one page of `memory`) that also
/// exports its one function `extra` more times, under names of
/// `name_bytes` bytes (at least 8) that share all but their last 8: every
/// comparison in wasmi's map of names reads through the prefix.
fn exporting(extra: u64, name_bytes: usize) -> Vec<u8> {
    assert!(name_bytes >= 8);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut m);
    section(3, &[1, 0], &mut m);
    section(5, &[1, 0, 1], &mut m);
    let mut exports = Vec::new();
    leb(extra + 2, &mut exports);
    name("_start", &mut exports);
    exports.extend_from_slice(&[0, 0]);
    name("memory", &mut exports);
    exports.extend_from_slice(&[2, 0]);
    let prefix = "x".repeat(name_bytes - 8);
    for i in 0..extra {
        name(&format!("{prefix}{i:08}"), &mut exports);
        exports.extend_from_slice(&[0, 0]);
    }
    section(7, &exports, &mut m);
    section(10, &[1, 2, 0, 0x0b], &mut m);
    m
}

/// `wasmgate check`'s instantiation cost: (fuel, KiB of the memory limit).
fn checked_cost(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("per request: "))
        .unwrap_or_else(|| panic!("no cost line in {out}"));
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(
        (words[1], words[5], words[7]),
        ("fuel", "least", "KiB"),
        "{line}"
    );
    (words[0].parse().unwrap(), words[6].parse().unwrap())
}

/// `wasmgate run`'s fuel.
fn run_fuel(stderr: &str) -> u64 {
    let rest = stderr
        .split("fuel used: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no fuel in {stderr}"));
    rest.split(',').next().unwrap().parse().unwrap()
}

#[test]
fn many_exports_are_charged_in_proportion() {
    let dir = TempDir::new("exports");
    let mut measured = Vec::new();
    for extra in [0u64, 1_000, 4_000] {
        let path = dir.write(&format!("e{extra}.wasm"), exporting(extra, 160));
        let check = wasmgate(["check".as_ref(), path.as_os_str()]);
        assert_eq!(check.code, Some(0), "{check:?}");
        let names = 12 + 160 * extra;
        assert!(
            check
                .stdout
                .contains(&format!("{} exports ({names} bytes of names)", extra + 2)),
            "{check:?}"
        );
        let run = wasmgate(["run".as_ref(), path.as_os_str()]);
        assert_eq!(run.code, Some(0), "{run:?}");
        measured.push((extra, checked_cost(&check.stdout), run_fuel(&run.stderr)));
    }
    let (_, (fuel0, kib0), run0) = measured[0];
    for &(extra, (fuel, kib), run) in &measured[1..] {
        // Each export: its fuel, and fuel and a byte per byte of its name.
        let per_export = InstanceCost::EXPORT_FUEL + 160 * InstanceCost::EXPORT_NAME_BYTE_FUEL;
        assert_eq!(fuel - fuel0, extra * per_export, "{extra} exports");
        let bytes = extra * (InstanceCost::EXPORT_BYTES + 160);
        assert!(kib - kib0 >= bytes / 1024 && kib - kib0 <= bytes.div_ceil(1024) + 1);
        // The request pays it: the guest's own work is the same.
        assert_eq!(run - fuel, run0 - fuel0, "{extra} exports");
    }
    // 4,000 exports of 160-byte names: 4,960,000 fuel, ~906 KiB.
    assert_eq!(measured[2].1.0 - fuel0, 4_960_000);

    // Served, a request pays the same: too little fuel for the charge is
    // a deadline before instantiating, too little memory for the names'
    // copies refuses it; the server answers others throughout.
    let module = exporting(4_000, 160);
    let (_, (fuel, _), run) = measured[2];
    let dir = TempDir::new("exports-served");
    let files = [
        ("hello.wasm", function("hello.wasm")),
        ("many.wasm", dir.write("many.wasm", &module)),
    ];
    let route = |name: &str, limits: &str| {
        format!(
            "\n[[function]]\nname = \"{name}\"\nroute = \"/{name}\"\nmodule = \"many.wasm\"\n\
             limits = {{ {limits} }}\n"
        )
    };
    let toml = format!(
        "[server]\nfunctions_dir = \".\"\n{}{}{}",
        route("poor", &format!("fuel = {}", fuel - 1)),
        route("small", "memory = \"512KiB\""),
        route("rich", &format!("fuel = {}", fuel + 1_000)),
    );
    let s = Server::with_config(&toml, &files);
    let r = s.get("/poor");
    r.assert_error(504, "deadline");
    assert!(r.message().contains(&(fuel - 1).to_string()), "{r:?}");
    s.get("/small").assert_error(503, "module-unavailable");
    s.wait_for_log("the module needs ");
    let r = s.get("/rich");
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    assert_eq!(s.logged_fuel("rich"), run);
    s.assert_healthy();
}

#[test]
fn a_module_over_max_module_exports_is_refused_at_load() {
    let dir = TempDir::new("exports-limit");
    // `_start`, `memory` and 9,999 more: one over the default.
    let over = dir.write("over.wasm", exporting(9_999, 16));
    let at = dir.write("at.wasm", exporting(9_998, 16));
    let why = "10001 exports, more than `max_module_exports` (10000)";
    let files = [
        ("hello.wasm", function("hello.wasm")),
        ("over.wasm", over.clone()),
        ("at.wasm", at),
    ];
    let s = Server::with_config("[server]\nfunctions_dir = \".\"\n", &files);
    s.get("/over").assert_error(503, "module-unavailable");
    s.wait_for_log(why);
    let r = s.get("/at");
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    s.assert_healthy();
    let out = wasmgate(["check".as_ref(), over.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains(why), "{out:?}");

    // The limit is configurable.
    let s = Server::with_config(
        "[server]\nfunctions_dir = \".\"\nmax_module_exports = 20_000\n",
        &files,
    );
    let r = s.get("/over");
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    s.assert_healthy();
}

#[test]
fn ordinary_modules_pay_little_for_their_exports() {
    let mut seen = 0;
    for entry in std::fs::read_dir(function("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wasm") {
            continue;
        }
        let shape = Shape::of(&std::fs::read(&path).unwrap()).unwrap();
        let without = Shape {
            exports: 0,
            export_name_bytes: 0,
            ..shape
        };
        let (cost, base) = (shape.cost(), without.cost());
        // 2–4 exports (`_start` or `handle`, `memory`, an allocator),
        // at most 50 bytes of names: under 0.003% of the default budget.
        assert!(
            (1..=4).contains(&shape.exports) && shape.export_name_bytes <= 64,
            "{}: {shape:?}",
            path.display()
        );
        assert!(cost.fuel - base.fuel <= 3_000, "{}", path.display());
        assert!(cost.bytes - base.bytes <= 512, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} modules in functions/");
}
