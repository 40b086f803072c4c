//! Modules as the loader sees them: structural limits refuse a module when
//! it loads (503 `module-unavailable`, named in the log and by `check`),
//! what instantiation still costs is paid in the request's fuel and memory,
//! a module that can never instantiate is refused at load, and names from a
//! module cannot forge lines in the log or in `check` output.

mod common;

use std::thread;

use common::{Server, TempDir, function, leb128 as leb, wasmgate};

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A wasi-json module (it exports `_start`, which does nothing) with
/// `globals` globals, `functions` functions whose bodies are `body_bytes`
/// long (at least 3), and one page of memory: too big to write as text.
fn generated(globals: u64, functions: u64, body_bytes: u64) -> Vec<u8> {
    assert!(functions >= 1 && body_bytes >= 3);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut m);
    let mut funcs = Vec::new();
    leb(functions, &mut funcs);
    funcs.resize(funcs.len() + functions as usize, 0);
    section(3, &funcs, &mut m);
    section(5, &[1, 0, 1], &mut m);
    if globals > 0 {
        let mut g = Vec::new();
        leb(globals, &mut g);
        for _ in 0..globals {
            g.extend_from_slice(&[0x7f, 0, 0x41, 0, 0x0b]);
        }
        section(6, &g, &mut m);
    }
    let mut exports = vec![1, 6];
    exports.extend_from_slice(b"_start");
    exports.extend_from_slice(&[0, 0]);
    section(7, &exports, &mut m);
    let mut code = Vec::new();
    leb(functions, &mut code);
    for _ in 0..functions {
        // Size, no locals, nops, end.
        leb(body_bytes - 1, &mut code);
        code.push(0);
        code.resize(code.len() + body_bytes as usize - 3, 0x01);
        code.push(0x0b);
    }
    section(10, &code, &mut m);
    m
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A server with `hello.wasm` and the given modules in its functions dir;
/// `extra` goes into the config after `[server] functions_dir = "."`.
fn server(modules: &[(&str, Vec<u8>)], extra: &str) -> (Server, TempDir) {
    let dir = TempDir::new("modules");
    let mut files = vec![("hello.wasm", function("hello.wasm"))];
    for (name, bytes) in modules {
        files.push((name, dir.write(name, bytes)));
    }
    let toml = format!("[server]\nfunctions_dir = \".\"\n{extra}");
    (Server::with_config(&toml, &files), dir)
}

#[test]
fn a_module_over_a_structural_limit_is_refused_at_load() {
    let cases: [(&str, Vec<u8>, &str); 3] = [
        // ~5 MB: instantiating it took 0.4–0.6 s and ~35 MB per request.
        (
            "globals.wasm",
            generated(1_000_000, 1, 3),
            "1000000 globals, more than `max_module_globals` (10000)",
        ),
        (
            "functions.wasm",
            generated(0, 999_000, 3),
            "999000 functions, more than `max_module_functions` (100000)",
        ),
        (
            "tiny.wasm",
            generated(0, 50_000, 3),
            "fewer than `min_module_function_bytes` (40)",
        ),
    ];
    refused_at_load(&cases);
    // The limits are configurable.
    let (s, _dir) = server(
        &[("globals.wasm", generated(20_000, 1, 3))],
        "max_module_globals = 30_000\n",
    );
    // Loads and runs (its `_start` prints nothing: an empty 200).
    assert_ran(&s, "/globals");
    s.assert_healthy();
}

/// Asserts that the wasi command at `route`, whose `_start` prints
/// nothing, ran: an empty 200 (`plain_output = "text"`).
fn assert_ran(s: &Server, route: &str) {
    let r = s.get(route);
    assert_eq!((r.status, r.body.len()), (200, 0), "{route}: {r:?}");
}

/// Serves every `(file, module, why)` of `cases` and checks each is
/// refused at load: 503 `module-unavailable` with `why` in the server log
/// and in `wasmgate check`'s output; the server still answers afterwards.
fn refused_at_load(cases: &[(&str, Vec<u8>, &str)]) {
    let modules: Vec<_> = cases.iter().map(|(n, b, _)| (*n, b.clone())).collect();
    let (s, dir) = server(&modules, "");
    for (name, _, why) in cases {
        let route = format!("/{}", name.trim_end_matches(".wasm"));
        s.get(&route).assert_error(503, "module-unavailable");
        s.wait_for_log(why);
        let out = wasmgate(["check".as_ref(), dir.path().join(name).as_os_str()]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.contains(why), "{out:?}");
    }
    s.assert_healthy();
}

/// A wasi-json module whose `_start` nests `depth` blocks.
fn nested(depth: usize) -> Vec<u8> {
    let blocks = format!("{}{}", "block ".repeat(depth), "end ".repeat(depth));
    wat(&format!(
        "(module (memory 1) (func (export \"_start\") {blocks}))"
    ))
}

/// A wasi-json module importing `wasmgate.log` `imports` times.
fn importing(imports: usize) -> Vec<u8> {
    let import = r#"(import "wasmgate" "log" (func (param i32 i32 i32)))"#;
    let imports = import.repeat(imports);
    wat(&format!(
        "(module {imports} (memory 1) (func (export \"_start\")))"
    ))
}

#[test]
fn a_function_wasmi_would_translate_at_length_is_refused_at_load() {
    // wasmi translates a function on its first call, on the serving thread
    // and unmetered: a 15 MiB function stalled every client ~0.4 s, and
    // 1.7 million nested blocks took ~300 MB. So are 100,000 imports
    // resolved by name on every request (~16 ms each).
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "long.wasm",
            generated(0, 1, (1 << 20) + 16),
            "1048591 bytes in its largest function, more than `max_module_function_size` (1048576)",
        ),
        (
            "deep.wasm",
            nested(10_001),
            "10001 levels of nested blocks, more than `max_module_nesting` (10000)",
        ),
        (
            "imports.wasm",
            importing(1_001),
            "1001 imports, more than `max_module_imports` (1000)",
        ),
    ];
    refused_at_load(&cases);
    // Just under the limits, and the limits are configurable.
    let (s, _dir) = server(
        &[
            ("deep.wasm", nested(10_000)),
            ("imports.wasm", importing(1_000)),
            ("long.wasm", generated(0, 1, 100_000)),
        ],
        "max_module_function_size = \"64KiB\"\n",
    );
    // They load and run (`_start` prints nothing: an empty 200).
    assert_ran(&s, "/deep");
    assert_ran(&s, "/imports");
    s.get("/long").assert_error(503, "module-unavailable");
    s.wait_for_log("more than `max_module_function_size` (65536)");
    s.assert_healthy();
}

#[test]
fn every_function_is_translated_when_the_module_loads() {
    // wasmi translated a function on its first call, on the serving thread
    // and unmetered. Translated at load, a function it cannot translate
    // (more live values than wasmi has registers) refuses the module even
    // though nothing calls it.
    let n = 66_000;
    let untranslatable = wat(&format!(
        "(module (memory 1) (func (export \"_start\")) \
         (func (result i32) (local i32) {}{}))",
        "local.get 0 i32.const 1 i32.add ".repeat(n),
        "i32.add ".repeat(n - 1)
    ));
    let (s, _dir) = server(&[("never.wasm", untranslatable)], "");
    s.get("/never").assert_error(503, "module-unavailable");
    s.wait_for_log("translation requires more registers");
    s.assert_healthy();
}

#[test]
fn blocks_count_in_the_module_cache_estimate() {
    // Translating a block peaks at ~64 bytes, 20 times its 3 bytes of
    // Wasm: 5,000 blocks (15 KB of code) are estimated at ~425 KB.
    let blocks = wat(&format!(
        "(module (memory 1) (func (export \"_start\") {}))",
        "block end ".repeat(5_000)
    ));
    let (s, _dir) = server(
        &[("blocks.wasm", blocks)],
        "module_cache_bytes = \"256KiB\"\n",
    );
    s.get("/blocks").assert_error(503, "module-unavailable");
    s.wait_for_log("more than `module_cache_bytes` (262144)");
    s.assert_healthy();
}

#[test]
fn instantiation_is_paid_in_fuel_and_cannot_hold_the_server() {
    // Within every structural limit, but ~38 M fuel to instantiate.
    let heavy = generated(10_000, 90_000, 40);
    let (s, _dir) = server(
        &[("heavy.wasm", heavy)],
        "\n[[function]]\nname = \"heavy\"\nroute = \"/heavy\"\nmodule = \"heavy.wasm\"\n\
         limits = { fuel = 10_000_000 }\n\n\
         [[function]]\nname = \"rich\"\nroute = \"/rich\"\nmodule = \"heavy.wasm\"\n\
         limits = { fuel = 1_000_000_000 }\n",
    );
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let addr = s.addr;
            thread::spawn(move || common::Conn::open(addr).request("GET", "/heavy", &[], b""))
        })
        .collect();
    for client in clients {
        let r = client.join().unwrap();
        r.assert_error(504, "deadline");
        assert!(r.message().contains("10000000"), "{}", r.message());
    }
    s.assert_healthy();
    s.wait_for_log("GET /heavy fn=heavy status=504 error=deadline fuel=10000000 ");
    // With the fuel to pay for it, it instantiates and runs.
    assert_ran(&s, "/rich");
    s.assert_healthy();
}

#[test]
fn globals_and_tables_count_against_the_memory_limit() {
    // 5,000 globals (~200 KB of instance) and one 64 KiB page.
    let globals = generated(5_000, 1, 3);
    // A table grown by 90,000 elements at run time (~720 KB).
    let table = wat(r#"(module
        (memory 1)
        (table 0 funcref)
        (func (export "_start")
          (drop (table.grow (ref.null func) (i32.const 90000)))))"#);
    let (s, _dir) = server(
        &[("globals.wasm", globals), ("table.wasm", table)],
        "\n[[function]]\nname = \"small-globals\"\nroute = \"/small-globals\"\nmodule = \"globals.wasm\"\n\
         limits = { memory = \"192KiB\" }\n\n\
         [[function]]\nname = \"small-table\"\nroute = \"/small-table\"\nmodule = \"table.wasm\"\n\
         limits = { memory = \"256KiB\" }\n",
    );
    // The instance alone is over the limit: refused before instantiating,
    // as a module that cannot run under this function's limit.
    let r = s.get("/small-globals");
    r.assert_error(503, "module-unavailable");
    assert!(
        r.message().contains("(64KiB of initial memory, the rest for its instance and tables); the function's `memory` limit is 192KiB"),
        "{}",
        r.message()
    );
    // The table grows past it while the guest runs.
    let r = s.get("/small-table");
    r.assert_error(502, "memory-limit");
    assert!(r.message().contains("memory limit"), "{}", r.message());
    // Under the default 8 MiB both run.
    for route in ["/globals", "/table"] {
        assert_ran(&s, route);
    }
    s.assert_healthy();
}

#[test]
fn a_module_that_can_never_instantiate_is_refused_at_load() {
    let cases = [
        (
            "memories",
            wat(r#"(module (memory 1) (memory 1) (func (export "_start")))"#),
            "it has 2 memories, more than the 1 wasmgate can instantiate",
        ),
        (
            "tables",
            wat(
                r#"(module (table 1 funcref) (table 1 funcref) (table 1 funcref)
                (table 1 funcref) (table 1 funcref) (func (export "_start")))"#,
            ),
            "it has 5 tables, more than the 4 wasmgate can instantiate",
        ),
        (
            "data",
            wat(r#"(module (memory 1) (data (i32.const 70000) "x") (func (export "_start")))"#),
            "module can never be instantiated: ",
        ),
        (
            "elem",
            wat(
                r#"(module (table 1 funcref) (elem (i32.const 1) func 0) (func (export "_start")))"#,
            ),
            "module can never be instantiated: ",
        ),
        (
            "huge",
            wat(r#"(module (memory 60000) (func (export "_start")))"#),
            "larger than memory_budget",
        ),
    ];
    let modules: Vec<_> = cases
        .iter()
        .map(|(n, b, _)| (format!("{n}.wasm"), b.clone()))
        .collect();
    let modules: Vec<_> = modules
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let (s, dir) = server(&modules, "");
    for (name, _, why) in &cases {
        s.get(&format!("/{name}"))
            .assert_error(503, "module-unavailable");
        s.wait_for_log(why);
        let file = dir.path().join(format!("{name}.wasm"));
        let out = wasmgate(["check".as_ref(), file.as_os_str()]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.contains(why), "{name}: {out:?}");
    }
    s.assert_healthy();
}

#[test]
fn the_trial_instantiation_does_not_run_the_start_function() {
    let dir = TempDir::new("start");
    // A start function that never ends: loading must not run it.
    let file = dir.write(
        "spin.wasm",
        wat(r#"(module (func $spin (loop (br 0))) (start $spin) (func (export "_start")))"#),
    );
    let out = wasmgate(["check".as_ref(), file.as_os_str()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(": ok"), "{out:?}");
}

#[test]
fn names_from_a_module_cannot_forge_lines() {
    let dir = TempDir::new("names");
    let import = dir.write(
        "import.wasm",
        wat(r#"(module (import "wasmgate" "log\nFORGED: ok" (func)) (func (export "_start")))"#),
    );
    let export = dir.write(
        "export.wasm",
        wat(r#"(module (func (export "_start")) (func (export "x\nFORGED: ok\1b[31m")))"#),
    );
    let out = wasmgate(["check".as_ref(), import.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains(r"`wasmgate.log\nFORGED: ok`"),
        "{out:?}"
    );
    let out = wasmgate(["check".as_ref(), export.as_os_str()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(r"x\nFORGED: ok\u{1b}[31m"), "{out:?}");
    for out in [&out.stdout, &out.stderr] {
        assert!(!out.lines().any(|l| l.starts_with("FORGED")), "{out}");
        assert!(!out.contains('\x1b'), "{out}");
    }
    // The server's log escapes the same way.
    let (s, _dir) = server(&[("import.wasm", std::fs::read(&import).unwrap())], "");
    s.get("/import").assert_error(503, "module-unavailable");
    let log = s.wait_for_log(r"log\nFORGED: ok");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "{log}");
    s.assert_healthy();
}

#[test]
fn a_start_function_that_spins_is_told_it_has_one_slice() {
    let dir = TempDir::new("startspin");
    dir.write(
        "spin.wasm",
        wat(r#"(module (func $spin (loop (br 0))) (start $spin) (func (export "_start")))"#),
    );
    dir.copy(&function("hello.wasm"), "hello.wasm");
    let s = Server::serve_dir(dir.path());
    let r = s.get("/spin");
    r.assert_error(504, "deadline");
    let logged = s.wait_for_log("start function ran out of fuel");
    assert!(
        logged.contains("one fuel slice (100000 instructions, `fuel_slice`)"),
        "{logged}"
    );
    assert!(!logged.contains("its budget is"), "{logged}");
    s.assert_healthy();

    let out = wasmgate(["run".as_ref(), dir.path().join("spin.wasm").as_os_str()]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("start function ran out of fuel: a start function runs in one fuel slice (100000 instructions, `fuel_slice`) (deadline, HTTP 504)"),
        "{out:?}"
    );
}

/// A native module that grows its memory by `pages` in one `memory.grow`
/// and answers 200 with an empty body if it may.
fn growing(pages: u32) -> Vec<u8> {
    wat(&format!(
        r#"(module (memory (export "memory") 1) (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (data (i32.const 0) "\c8\01\00\00")
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) (then unreachable))
    (i64.const 4)))"#
    ))
}

#[test]
fn one_memory_grow_is_counted_once_against_the_limit() {
    // The grow's fuel (6 MiB of pages) ends its slice after the limiter
    // said yes; wasmi asks again on resume, and both answers were summed:
    // a module with an 8 MiB limit could not grow past 6.2 MiB.
    let (s, _dir) = server(
        &[("fits.wasm", growing(126)), ("over.wasm", growing(127))],
        "[limits]\nmemory = \"8MiB\"\n",
    );
    // 127 pages and the instance (~4 KiB) fit 8 MiB; 128 pages do not.
    let r = s.get("/fits");
    assert_eq!(r.status, 200, "{}", r.text());
    s.get("/over").assert_error(502, "memory-limit");
    s.assert_healthy();
}

/// A native module that grows a table by `elements` and fills it, then
/// answers 200 with an empty body.
fn table_filling(elements: u32) -> Vec<u8> {
    wat(&format!(
        r#"(module (memory (export "memory") 1) (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (data (i32.const 0) "\c8\01\00\00")
  (table $t 1 funcref) (func $f) (elem declare func $f)
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (drop (table.grow $t (ref.null func) (i32.const {elements})))
    (table.fill $t (i32.const 0) (ref.func $f) (i32.const {elements}))
    (i64.const 4)))"#
    ))
}

#[test]
fn bulk_table_operations_pay_one_fuel_per_8_bytes() {
    // At wasmi's default of one fuel per 64 bytes, a loop of `table.fill`
    // bought 4.3x the wall time per fuel of plain guest code. 80,000
    // elements grown and filled now cost ~84,000 fuel (~14,000 before).
    let (s, _dir) = server(
        &[("table.wasm", table_filling(80_000))],
        "[[function]]\nroute = \"/cheap\"\nmodule = \"table.wasm\"\nlimits = { fuel = 50_000 }\n\
         [[function]]\nroute = \"/paid\"\nmodule = \"table.wasm\"\nlimits = { fuel = 400_000 }\n",
    );
    s.get("/cheap").assert_error(504, "deadline");
    let r = s.get("/paid");
    assert_eq!(r.status, 200, "{}", r.text());
    s.assert_healthy();
}

#[test]
fn a_module_over_the_cache_bound_is_refused_before_it_is_translated() {
    // Translating a module only to refuse it for its estimated size cost
    // up to ~75 MB and ~1 s per request. This one also has a function
    // wasmi's validation refuses (`i32.add` on an empty stack): the answer
    // must be the estimate, found without translating.
    let body = "nop ".repeat(200_000);
    let module = wat(&format!(
        "(module (memory 1) (func (export \"_start\") {body}) (func i32.add drop))"
    ));
    let (s, _dir) = server(&[("big.wasm", module)], "module_cache_bytes = \"1MiB\"\n");
    s.get("/big").assert_error(503, "module-unavailable");
    let log = s.wait_for_log("more than `module_cache_bytes` (1048576)");
    assert!(!log.contains("type mismatch"), "{log}");
    s.assert_healthy();
}
