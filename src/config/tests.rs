//! The config parser's tests: defaults, ranges, type errors, boards.

use std::path::Path;
use std::time::Duration;

use super::board;
use super::units::{self, parse_duration, parse_size, show_duration, show_size};
use super::*;
use crate::error::ConfigError;
use crate::limits::{FunctionLimits, MAX_FUEL, ModuleLimits, ServerLimits};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", Path::new("/base"), None)
}

#[test]
fn empty_config_is_all_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
    assert_eq!(c.server, ServerLimits::default());
    assert_eq!(c.defaults, FunctionLimits::default());
    assert!(c.functions.is_empty());
}

#[test]
fn sizes_and_durations_parse() {
    assert_eq!(parse_size("16MiB"), Ok(16 << 20));
    assert_eq!(parse_size("512KiB"), Ok(512 << 10));
    assert_eq!(parse_size("2MB"), Ok(2_000_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert!(
        parse_size("12 parsecs")
            .unwrap_err()
            .contains("unknown size unit")
    );
    assert_eq!(parse_size("0"), Ok(0)); // refused by every key's range
    assert!(parse_size("99999999999999GiB").is_err());
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(show_size(16 << 20), "16MiB");
    assert_eq!(show_size(1000), "1000B");
    assert_eq!(show_duration(Duration::from_secs(24 * 3600)), "24h");
    assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
}

#[test]
fn module_structure_keys_parse_within_their_ranges() {
    let c = parse(
        "[server]\nmodule_cache_bytes = \"8MiB\"\nmax_module_globals = 5\nmax_module_functions = 6\n\
         max_module_table_elements = 7\nmax_module_element_segments = 8\n\
         max_module_data_segments = 9\nmin_module_function_bytes = 10\n\
         max_module_imports = 11\nmax_module_function_size = \"12KiB\"\nmax_module_nesting = 13\n\
         max_module_exports = 14\n",
    )
    .unwrap();
    assert_eq!(c.server.module_cache_bytes, 8 << 20);
    assert_eq!(
        c.server.module,
        ModuleLimits {
            max_globals: 5,
            max_functions: 6,
            max_table_elements: 7,
            max_element_segments: 8,
            max_data_segments: 9,
            min_function_bytes: 10,
            max_imports: 11,
            max_exports: 14,
            max_function_bytes: 12 << 10,
            max_nesting: 13,
        }
    );
    assert_eq!(parse("").unwrap().server.module, ModuleLimits::default());
    for (text, key) in [
        ("max_module_globals = 0", "max_module_globals"),
        ("max_module_functions = 1_000_001", "max_module_functions"),
        ("max_module_imports = 100_001", "max_module_imports"),
        ("max_module_exports = 0", "max_module_exports"),
        (
            "max_module_function_size = \"1B\"",
            "max_module_function_size",
        ),
        ("max_module_nesting = 0", "max_module_nesting"),
        (
            "min_module_function_bytes = -1",
            "min_module_function_bytes",
        ),
        ("module_cache_bytes = \"1KiB\"", "module_cache_bytes"),
    ] {
        let e = parse(&format!("[server]\n{text}\n")).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains(key), "{e}");
    }
}

#[test]
fn module_check_interval_parses_and_allows_zero() {
    let interval = |toml: &str| parse(toml).map(|c| c.server.module_check_interval);
    assert_eq!(
        interval("").unwrap(),
        ServerLimits::DEFAULT_MODULE_CHECK_INTERVAL
    );
    let key = "[server]\nmodule_check_interval";
    assert_eq!(
        interval(&format!("{key} = \"250ms\"\n")).unwrap(),
        Duration::from_millis(250)
    );
    assert_eq!(
        interval(&format!("{key} = \"1s\"\n")).unwrap(),
        Duration::from_secs(1)
    );
    assert_eq!(
        interval(&format!("{key} = 1500\n")).unwrap(),
        Duration::from_millis(1500)
    );
    // Zero checks on every request; other durations still refuse it.
    assert_eq!(
        interval(&format!("{key} = \"0s\"\n")).unwrap(),
        Duration::ZERO
    );
    assert_eq!(interval(&format!("{key} = 0\n")).unwrap(), Duration::ZERO);
    assert!(parse("[server]\nidle_timeout = \"0s\"\n").is_err());

    let e = parse("[server]\n\nmodule_check_interval = \"soon\"\n").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("`module_check_interval`"), "{e}");
    assert!(e.message.contains("duration"), "{e}");
    let e = parse(&format!("{key} = \"1441m\"\n")).unwrap_err();
    assert!(e.message.contains("between 0s and 24h, got 1441m"), "{e}");
    let e = parse(&format!("{key} = -1\n")).unwrap_err();
    assert!(e.message.contains("between 0s and 24h, got -1 ms"), "{e}");
    let e = parse(&format!("{key} = \"0\"\n")).unwrap_err();
    assert!(e.message.contains("needs a unit"), "{e}");
}

#[test]
fn functions_inherit_and_override_limits() {
    let c = parse(
        "[limits]\nfuel = 1000\n\n[[function]]\nroute = \"/api/*\"\nmodule = \"f/echo.wasm\"\nmethods = [\"get\"]\nlimits = { memory = \"1MiB\" }\n",
    )
    .unwrap();
    let f = &c.functions[0];
    assert_eq!(f.name, "echo");
    assert_eq!(f.route, "/api");
    assert!(f.prefix);
    assert_eq!(f.module, Path::new("/base/f/echo.wasm"));
    assert_eq!(f.methods.as_deref(), Some(&["GET".to_owned()][..]));
    assert_eq!(f.limits.fuel, 1000);
    assert_eq!(f.limits.memory, 1 << 20);
}

#[test]
fn unknown_key_names_key_file_and_line() {
    let e = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.to_string().starts_with("test.toml:3:"), "{e}");
    assert!(e.message.contains("lisen"), "{e}");
}

#[test]
fn invalid_values_name_key_and_line() {
    let e = parse("[limits]\n\nmemory = \"lots\"\n").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("`memory`"), "{e}");
    let e = parse("[server]\nmax_in_flight = 0\n").unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("max_in_flight"), "{e}");
    let e = parse("[server]\nidle_timeout = \"18446744073709551615s\"\n").unwrap_err();
    assert!(e.message.contains("between 1ms and 24h"), "{e}");
    let e = parse("[[function]]\nroute = \"nope\"\nmodule = \"x.wasm\"\n").unwrap_err();
    assert_eq!(e.line, Some(2));
    let e =
        parse("[[function]]\nroute = \"/x\"\nmodule = \"x.wasm\"\nabi = \"jvm\"\n").unwrap_err();
    assert!(e.message.contains("`abi`"), "{e}");
}

#[test]
fn a_function_larger_than_the_memory_budget_is_refused() {
    let e = parse("[server]\nmemory_budget = \"4MiB\"\n[[function]]\nname = \"big\"\nroute = \"/b\"\nmodule = \"b.wasm\"\nlimits = { memory = \"8MiB\" }\n")
        .unwrap_err();
    assert!(
        e.message.contains("big") && e.message.contains("memory_budget"),
        "{e}"
    );
    let e = Config::parse(
        "[server]\nfunctions_dir = \".\"\nmemory_budget = \"4MiB\"\n",
        "t",
        Path::new("/"),
        None,
    )
    .unwrap_err();
    assert!(e.message.contains("functions_dir"), "{e}");
    // Admission reserves `max_response` too.
    let e = parse("[server]\nmemory_budget = \"4MiB\"\n[[function]]\nname = \"big\"\nroute = \"/b\"\nmodule = \"b.wasm\"\nlimits = { memory = \"4MiB\" }\n")
        .unwrap_err();
    assert!(e.message.contains("max_response"), "{e}");
}

#[test]
fn every_builtin_board_profile_loads() {
    for name in board::builtin_names() {
        let c = Config::for_board(name, Path::new("/nowhere"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = c.board.as_ref().unwrap();
        assert_eq!(b.key, name);
        assert!(b.cores >= 1 && b.ram >= 256 << 20, "{b:?}");
        assert!(b.target.contains("linux"), "{b:?}");
        assert!(c.fuel_per_ms.is_some(), "{name}");
        assert!(c.server.memory_budget < b.ram, "{name}");
        // What admission reserves for each guest (its memory limit and
        // its largest response) fits the budget for every request the
        // in-flight cap admits.
        let fit = c.server.memory_budget / (c.defaults.memory + c.defaults.max_response);
        assert!(fit >= c.server.max_in_flight as u64, "{name}");
        // SD cards and eMMC: group commit, not an fsync per write.
        assert_eq!(c.state.sync, Some(Duration::from_millis(100)), "{name}");
        // The store is in RAM: on 512 MiB boards a namespace holds less.
        if b.ram <= 512 << 20 {
            assert_eq!(c.state.limits.max_bytes, 256 << 10, "{name}");
        }
    }
}

#[test]
fn workers_default_to_one_without_a_board_and_to_the_board_s_cores() {
    assert_eq!(parse("").unwrap().server.workers, 1);
    assert_eq!(parse("[server]\nworkers = 2\n").unwrap().server.workers, 2);
    // rpi4b has 4 cores, the BeagleBone Black one.
    assert_eq!(parse("board = \"rpi4b\"\n").unwrap().server.workers, 4);
    let bbb = parse("board = \"beaglebone-black\"\n").unwrap();
    assert_eq!(bbb.server.workers, 1);
    let c = parse("board = \"rpi4b\"\n[server]\nworkers = 2\n").unwrap();
    assert_eq!(c.server.workers, 2);
    // A profile may say otherwise; one with more cores than the range
    // allows gets the top of the range.
    let dir = std::env::temp_dir().join(format!("wasmgate-board-workers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("boards")).unwrap();
    let profile = "name = \"Mine\"\ntarget = \"x-linux\"\ncpu = \"c\"\nram = \"1GiB\"\n";
    for (rest, workers) in [
        ("cores = 8\n[server]\nworkers = 3\n", 3),
        ("cores = 1000\n", ServerLimits::MAX_WORKERS),
    ] {
        std::fs::write(dir.join("boards/mine.toml"), format!("{profile}{rest}")).unwrap();
        let c = Config::parse("board = \"mine\"\n", "t", &dir, None).unwrap();
        assert_eq!(c.server.workers, workers, "{rest}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn workers_out_of_range_name_the_file_line_and_key() {
    for (text, message) in [
        (
            "[server]\nworkers = 0\n",
            "`workers` must be between 1 and 64, got 0",
        ),
        (
            "[server]\nworkers = 65\n",
            "`workers` must be between 1 and 64, got 65",
        ),
        (
            "[server]\nworkers = -1\n",
            "`workers` must be between 1 and 64",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.message.starts_with(message), "{text}: {e}");
        assert_eq!(e.line, Some(2), "{text}: {e}");
    }
    let e = parse("[server]\nworkers = \"two\"\n").unwrap_err();
    assert!(e.message.contains("`workers`"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn board_state_defaults_apply_and_explicit_keys_win() {
    // Without a board: fsync per write, as documented.
    assert_eq!(parse("").unwrap().state.sync, None);
    let c = parse("board = \"rpi4b\"\n").unwrap();
    assert_eq!(c.state.sync, Some(Duration::from_millis(100)));
    assert_eq!(c.state.dir, StateConfig::default().dir);
    let c = parse("board = \"rpi4b\"\n[state]\nsync = \"always\"\nmax_keys = 7\n").unwrap();
    assert_eq!((c.state.sync, c.state.limits.max_keys), (None, 7));
    // A profile sets defaults, not where the store lives.
    let dir = std::env::temp_dir().join(format!("wasmgate-board-state-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("boards")).unwrap();
    let profile = "name = \"Mine\"\ntarget = \"x-linux\"\ncpu = \"c\"\ncores = 1\nram = \"1GiB\"\n";
    std::fs::write(
        dir.join("boards/mine.toml"),
        format!("{profile}[state]\ndir = \"/data\"\n"),
    )
    .unwrap();
    let e = Config::parse("board = \"mine\"\n", "t", &dir, None).unwrap_err();
    assert!(e.message.contains("`dir` belongs in wasmgate.toml"), "{e}");
    std::fs::write(
        dir.join("boards/mine.toml"),
        format!("{profile}[state]\nsync = \"1s\"\nmax_value = 100\n"),
    )
    .unwrap();
    let c = Config::parse("board = \"mine\"\n", "t", &dir, None).unwrap();
    assert_eq!(c.state.sync, Some(Duration::from_secs(1)));
    assert_eq!(c.state.limits.max_value, 100);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn board_defaults_are_overridden_by_explicit_keys() {
    let c = parse("board = \"rpi4b\"\n[server]\nmax_in_flight = 3\n").unwrap();
    assert_eq!(c.board.as_ref().unwrap().name, "Raspberry Pi 4 Model B");
    assert_eq!(c.server.max_in_flight, 3);
    assert_eq!(c.server.memory_budget, 512 << 20); // from the profile
    assert_eq!(c.defaults.memory, 16 << 20); // from the profile
    assert_eq!(c.fuel_per_ms, Some(500_000));
    // --board wins over the file's key.
    let c = Config::parse("board = \"rpi4b\"\n", "t", Path::new("/x"), Some("rpi5")).unwrap();
    assert_eq!(c.board.unwrap().key, "rpi5");
}

#[test]
fn a_timeout_sets_the_fuel_budget_when_fuel_per_ms_is_known() {
    let c = parse(
        "board = \"rpi4b\"\n[limits]\ntimeout = \"50ms\"\n\n[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nlimits = { timeout = \"10ms\" }\n\n[[function]]\nroute = \"/b\"\nmodule = \"b.wasm\"\nlimits = { timeout = \"10ms\", fuel = 7 }\n",
    )
    .unwrap();
    assert_eq!(c.defaults.fuel, 50 * 500_000);
    assert_eq!(c.defaults.timeout, Duration::from_millis(100));
    assert_eq!(c.functions[0].limits.fuel, 10 * 500_000);
    assert_eq!(c.functions[0].limits.timeout, Duration::from_millis(20));
    // An explicit fuel at the same level wins.
    assert_eq!(c.functions[1].limits.fuel, 7);
    assert_eq!(c.functions[1].limits.timeout, Duration::from_millis(10));
    // Without fuel_per_ms a timeout is only the backstop.
    let c = parse("[limits]\ntimeout = \"50ms\"\n").unwrap();
    assert_eq!(c.defaults.fuel, FunctionLimits::DEFAULT_FUEL);
    assert_eq!(c.defaults.timeout, Duration::from_millis(50));
    let c = parse("[server]\nfuel_per_ms = 1000\n[limits]\ntimeout = \"2s\"\n").unwrap();
    assert_eq!(c.defaults.fuel, 2_000_000);
}

#[test]
fn unknown_and_malformed_boards_are_clear_errors() {
    let e = parse("board = \"rpi9\"\n").unwrap_err();
    assert!(
        e.message.contains("unknown board") && e.message.contains("rpi4b"),
        "{e}"
    );
    let e = parse("board = \"../etc\"\n").unwrap_err();
    assert!(e.message.contains("lower-case"), "{e}");
    let dir = std::env::temp_dir().join(format!("wasmgate-board-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("boards")).unwrap();
    std::fs::write(
        dir.join("boards/mine.toml"),
        "name = \"Mine\"\ntarget = \"x-linux\"\ncpu = \"c\"\ncores = 1\nram = \"1GiB\"\nfuel_per_ms = 9\n[server]\nlisten = \"0.0.0.0:1\"\n",
    )
    .unwrap();
    let e = Config::parse("board = \"mine\"\n", "t", &dir, None).unwrap_err();
    assert!(
        e.message.contains("`listen` belongs in wasmgate.toml"),
        "{e}"
    );
    assert_eq!(e.line, Some(8));
    std::fs::write(
        dir.join("boards/mine.toml"),
        "name = \"Mine\"\ntarget = \"x-linux\"\ncpu = \"c\"\ncores = 1\nram = \"1GiB\"\nfuel_per_ms = 9\n",
    )
    .unwrap();
    let c = Config::parse("board = \"mine\"\n", "t", &dir, None).unwrap();
    assert_eq!(c.fuel_per_ms, Some(9));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_routes_are_refused() {
    let e = parse("[[function]]\nroute = \"/x\"\nmodule = \"a.wasm\"\n[[function]]\nroute = \"/x\"\nmodule = \"b.wasm\"\n")
        .unwrap_err();
    assert!(e.message.contains("`/x`"), "{e}");
}

/// The error for `text`, which must be refused.
fn refused(text: &str) -> ConfigError {
    match Config::parse(text, "test.toml", Path::new("/"), None) {
        Ok(_) => panic!("accepted: {text:?}"),
        Err(e) => e,
    }
}

#[test]
fn env_names_with_equals_and_nul_in_env_or_args_are_refused() {
    let f = "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\n";
    let cases = [
        (
            r#"env = { "A=B" = "c" }"#,
            "`env` name \"A=B\" must be non-empty, without `=` or NUL",
        ),
        (r#"env = { "" = "c" }"#, "`env` name \"\" must be non-empty"),
        (
            r#"env = { "A\u0000" = "c" }"#,
            "`env` name \"A\\0\" must be non-empty",
        ),
        (
            r#"env = { A = "c\u0000d" }"#,
            "`env` value of \"A\" contains a NUL",
        ),
        (
            r#"args = ["x", "c\u0000d"]"#,
            "`args` item 1 (\"c\\0d\") contains a NUL",
        ),
    ];
    for (line, want) in cases {
        let e = refused(&format!("{f}{line}\n"));
        assert!(e.message.starts_with(want), "{line}: {e}");
        assert_eq!(e.line, Some(4), "{line}: {e}");
        assert!(e.to_string().starts_with("test.toml:4: "), "{e}");
    }
    // `=` in a value is fine: the guest splits at the first one.
    let ok = format!("{f}env = {{ A = \"b=c\" }}\nargs = [\"x=y\"]\n");
    let config = Config::parse(&ok, "test.toml", Path::new("/"), None).unwrap();
    assert_eq!(config.functions[0].env, vec![("A".into(), "b=c".into())]);
}

/// On 32-bit ARM (`usize` is 32 bits) a value is parsed as the type it
/// is used as: a `u64` keeps every bit (5e9 is not cut to 705,032,704)
/// and a `usize` count past `usize::MAX` is refused by name, never
/// wrapped. Runs in CI's emulated armv7 run.
#[test]
fn numbers_keep_their_value_on_32_bit_targets() {
    let c = parse("[limits]\nfuel = 5_000_000_000\n").unwrap();
    assert_eq!(c.defaults.fuel, 5_000_000_000);
    let c = parse("[server]\nmemory_budget = \"8GiB\"\n[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nlimits = { fuel = 5_000_000_000, memory = \"4GiB\" }\n").unwrap();
    assert_eq!(c.functions[0].limits.fuel, 5_000_000_000);
    assert_eq!(c.functions[0].limits.memory, 4 << 30);
    let c = parse("[server]\nmemory_budget = \"1TiB\"\nmodule_cache_bytes = \"1TiB\"\n").unwrap();
    assert_eq!(c.server.memory_budget, 1 << 40);
    assert_eq!(c.server.module_cache_bytes, 1 << 40);
    // 2^32 + 1: one past a 32-bit `usize`, 1 if it were cast.
    for key in [
        "max_connections",
        "max_connections_per_ip",
        "max_in_flight",
        "max_headers",
        "module_cache",
        "max_header_bytes",
    ] {
        let e = refused(&format!("[server]\n{key} = 4_294_967_297\n"));
        assert_eq!(e.line, Some(2), "{e}");
        assert!(
            e.message.starts_with(&format!("`{key}` must be between ")),
            "{e}"
        );
        assert!(e.message.contains("4294967297"), "{e}");
    }
}

/// The one conversion every numeric key goes through, with a range wider
/// than `usize` on 32-bit ARM: the value is refused with the key's range
/// message there, kept whole on 64-bit targets, never cast.
#[test]
fn a_value_past_usize_is_refused_by_name_not_cast() {
    let wide = units::Int(5_000_000_000);
    let as_usize: Result<usize, String> = units::read(&wide, "k", &(1..=u64::MAX));
    match usize::try_from(5_000_000_000_u64) {
        Ok(n) => assert_eq!(as_usize, Ok(n)),
        Err(_) => assert_eq!(
            as_usize,
            Err("`k` must be between 1 and 18446744073709551615, got 5000000000".to_owned())
        ),
    }
    let as_u64: Result<u64, String> = units::read(&wide, "fuel", &(1..=u64::MAX));
    assert_eq!(as_u64, Ok(5_000_000_000));
}

#[test]
fn every_numeric_key_is_refused_outside_its_range() {
    let function = "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nlimits = ";
    // (config text, key, the value shown in the message)
    let cases = [
        (
            "[server]\nmax_headers = 9223372036854775807",
            "max_headers",
            "between 1 and 1024, got 9223372036854775807",
        ),
        (
            "[server]\nmax_headers = 1_000_000_000_000",
            "max_headers",
            "got 1000000000000",
        ),
        ("[server]\nmax_headers = 0", "max_headers", "got 0"),
        (
            "[server]\nmax_headers = 99999999999999999999",
            "max_headers",
            "got 99999999999999999999",
        ),
        (
            "[server]\nmax_body = 99999999999999999999",
            "max_body",
            "got 99999999999999999999 bytes",
        ),
        (
            "[server]\nmax_header_bytes = 512",
            "max_header_bytes",
            "between 1KiB and 1MiB, got 512B",
        ),
        (
            "[server]\nmax_header_bytes = \"2MiB\"",
            "max_header_bytes",
            "got 2MiB",
        ),
        (
            "[server]\nmax_body = \"64GiB\"",
            "max_body",
            "between 1B and 256MiB, got 64GiB",
        ),
        ("[server]\nmax_body = -1", "max_body", "got -1 bytes"),
        (
            "[server]\nmax_connections = 1_000_000",
            "max_connections",
            "between 1 and 65536",
        ),
        (
            "[server]\nmax_in_flight = 100_000",
            "max_in_flight",
            "between 1 and 1024",
        ),
        (
            "[server]\nmemory_budget = \"2TiB\"",
            "memory_budget",
            "between 64KiB and 1TiB",
        ),
        (
            "[server]\nmodule_cache = 0",
            "module_cache",
            "between 1 and 4096",
        ),
        (
            "[server]\nmax_module_size = \"1GiB\"",
            "max_module_size",
            "between 8B and 256MiB",
        ),
        (
            "[server]\nidle_timeout = \"25h\"",
            "idle_timeout",
            "between 1ms and 24h, got 25h",
        ),
        ("[server]\nheader_timeout = 0", "header_timeout", "got 0s"),
        ("[server]\nbody_timeout = -5", "body_timeout", "got -5 ms"),
        (
            "[server]\nwrite_timeout = \"100us\"",
            "write_timeout",
            "got 100us",
        ),
        (
            "[server]\nretry_after = \"2h\"",
            "retry_after",
            "between 1s and 1h",
        ),
        (
            "[server]\ndrain_timeout = \"2h\"",
            "drain_timeout",
            "between 0s and 1h",
        ),
        (
            "[server]\nadmission_queue = 5000",
            "admission_queue",
            "between 0 and 4096",
        ),
        (
            "[server]\nadmission_timeout = \"2min\"",
            "admission_timeout",
            "between 1ms and 1m, got 2m",
        ),
        (
            "[server]\nlog_format = \"xml\"",
            "log_format",
            "\"text\" or \"json\", got \"xml\"",
        ),
        (
            "[server]\ninstance_pool = \"1GiB\"",
            "instance_pool",
            "between 0B and 256MiB, got 1GiB",
        ),
        (
            "[server]\nallow_encoded_slash = \"yes\"",
            "allow_encoded_slash",
            "must be true or false, got a string",
        ),
        (
            "[server]\nfuel_per_ms = 1_000_000_000",
            "fuel_per_ms",
            "between 1 and 100000000",
        ),
        (
            "[limits]\nfuel = 9223372036854775807",
            "fuel",
            "between 1 and 8640000000000000",
        ),
        (
            "[limits]\nfuel_slice = 10",
            "fuel_slice",
            "between 1000 and 10000000",
        ),
        // A slice of days with a 1 ms timeout held the only thread for
        // ever: the backstop is checked between slices.
        (
            "[limits]\nfuel_slice = 8_640_000_000_000_000\nfuel = 8_640_000_000_000_000\ntimeout = \"1ms\"",
            "fuel_slice",
            "between 1000 and 10000000",
        ),
        (
            "[limits]\ntimeout = \"0s\"",
            "timeout",
            "between 1ms and 24h",
        ),
        (
            "[limits]\nmemory = \"8GiB\"",
            "memory",
            "between 64KiB and 4GiB, got 8GiB",
        ),
        ("[limits]\nmemory = 1000", "memory", "got 1000B"),
        (
            "[limits]\nmax_response = \"1GiB\"",
            "max_response",
            "between 1B and 256MiB",
        ),
        (
            "[limits]\nmax_log = 0",
            "max_log",
            "between 1B and 1MiB, got 0B",
        ),
    ];
    for (text, key, shown) in cases {
        let e = refused(&format!("\n{text}\n"));
        assert_eq!(e.line, Some(3), "{text}: {e}");
        let named = format!("`{key}` must be ");
        assert!(e.message.starts_with(&named), "{text}: {e}");
        assert!(e.message.contains(shown), "{text}: {e}");
    }
    // The same keys per function, inline.
    let e = refused(&format!("{function}{{ fuel = 0 }}\n"));
    assert_eq!(e.line, Some(4));
    assert!(e.message.starts_with("`fuel` must be between 1 and"), "{e}");
    let e = refused(&format!("{function}{{ memory = \"5GiB\" }}\n"));
    assert!(e.message.starts_with("`memory` must be between"), "{e}");
    // A body larger than the whole memory budget: the two disagree.
    let e = refused("[server]\nmemory_budget = \"4MiB\"\nmax_body = \"8MiB\"\n");
    assert_eq!(e.line, Some(3));
    assert!(
        e.message
            .contains("`max_body` (8MiB) is larger than half of `memory_budget` (4MiB)"),
        "{e}"
    );
    // `retry_after` is sent in whole seconds.
    let e = refused("[server]\nretry_after = \"1500ms\"\n");
    assert!(e.message.contains("whole seconds"), "{e}");
}

#[test]
fn range_ends_are_accepted_and_the_timeout_rule_stays_in_range() {
    let c = parse(
        "[server]\nmax_headers = 1024\nmax_header_bytes = \"1MiB\"\nmax_connections = 65536\nmax_in_flight = 1024\nmemory_budget = \"1024GiB\"\nmax_body = \"256MiB\"\nretry_after = \"1h\"\nfuel_per_ms = 100_000_000\n[limits]\nmemory = \"4GiB\"\ntimeout = \"24h\"\nfuel_slice = 1_000\n",
    )
    .unwrap();
    assert_eq!(c.server.max_headers, 1024);
    assert_eq!(c.server.max_header_bytes, 1 << 20);
    assert_eq!(c.server.retry_after_secs, 3600);
    assert_eq!(c.defaults.memory, 4 << 30);
    // 24 h at the largest fuel_per_ms is exactly the largest budget.
    assert_eq!(c.defaults.fuel, MAX_FUEL);
    assert!(
        MAX_FUEL
            .checked_add(*FunctionLimits::FUEL_SLICE_RANGE.end())
            .is_some()
    );
    let c = parse("[server]\nmax_headers = 1\nmax_header_bytes = \"1KiB\"\n[limits]\nfuel = 1\nmemory = \"64KiB\"\n").unwrap();
    assert_eq!((c.server.max_headers, c.defaults.fuel), (1, 1));
    // Every built-in default is inside its own range.
    let (s, f) = (ServerLimits::default(), FunctionLimits::default());
    assert!(ServerLimits::MAX_HEADERS_RANGE.contains(&(s.max_headers as u64)));
    assert!(ServerLimits::MAX_HEADER_BYTES_RANGE.contains(&(s.max_header_bytes as u64)));
    assert!(ServerLimits::MAX_BODY_RANGE.contains(&s.max_body));
    assert!(ServerLimits::MEMORY_BUDGET_RANGE.contains(&s.memory_budget));
    assert!(ServerLimits::MAX_CONNECTIONS_RANGE.contains(&(s.max_connections as u64)));
    assert!(ServerLimits::MAX_IN_FLIGHT_RANGE.contains(&(s.max_in_flight as u64)));
    assert!(ServerLimits::MODULE_CACHE_RANGE.contains(&(s.module_cache as u64)));
    assert!(ServerLimits::MAX_MODULE_SIZE_RANGE.contains(&s.max_module_size));
    assert!(FunctionLimits::FUEL_RANGE.contains(&f.fuel));
    assert!(FunctionLimits::FUEL_SLICE_RANGE.contains(&f.fuel_slice));
    assert!(FunctionLimits::MEMORY_RANGE.contains(&f.memory));
    assert!(FunctionLimits::MAX_RESPONSE_RANGE.contains(&f.max_response));
    assert!(FunctionLimits::MAX_LOG_RANGE.contains(&f.max_log));
}

#[test]
fn board_profile_numbers_have_ranges() {
    let dir = std::env::temp_dir().join(format!("wasmgate-board-range-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("boards")).unwrap();
    let profile = "name = \"Mine\"\ntarget = \"x-linux\"\ncpu = \"c\"\n";
    for (rest, key) in [
        ("cores = 0\nram = \"1GiB\"\n", "cores"),
        ("cores = 5000000000\nram = \"1GiB\"\n", "cores"),
        ("cores = 1\nram = \"1MiB\"\n", "ram"),
        (
            "cores = 1\nram = \"1GiB\"\nfuel_per_ms = 0\n",
            "fuel_per_ms",
        ),
        (
            "cores = 1\nram = \"1GiB\"\n[server]\nmax_headers = 2000\n",
            "max_headers",
        ),
    ] {
        std::fs::write(dir.join("boards/mine.toml"), format!("{profile}{rest}")).unwrap();
        let e = Config::parse("board = \"mine\"\n", "t", &dir, None).unwrap_err();
        assert!(
            e.message.starts_with(&format!("`{key}` must be between")),
            "{e}"
        );
        assert!(e.line.is_some_and(|l| l >= 4), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn type_errors_name_the_key_and_what_was_expected() {
    let cases = [
        (
            "[server]\nmax_header_bytes = true",
            "`max_header_bytes` must be a size (an integer number of bytes or a string like \"16MiB\"), got a boolean",
        ),
        (
            "[server]\nidle_timeout = [1]",
            "`idle_timeout` must be a duration (an integer number of milliseconds or a string like \"250ms\"), got an array",
        ),
        (
            "[server]\nmax_headers = 1.5",
            "`max_headers` must be an integer, got a float",
        ),
        (
            "[server]\nlisten = 80",
            "`listen` must be a string, got an integer",
        ),
        ("server = 3", "`server` must be a table, got an integer"),
        ("board = 7", "`board` must be a string, got an integer"),
        (
            "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nlimits = { fuel = \"x\" }",
            "`fuel` must be an integer, got a string",
        ),
        (
            "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nmethods = \"GET\"",
            "`methods` must be an array, got a string",
        ),
        (
            "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nenv = { A = 1 }",
            "`A` must be a string, got an integer",
        ),
    ];
    for (text, want) in cases {
        let e = refused(&format!("\n{text}\n"));
        assert_eq!(e.message, want, "{text}");
        assert_eq!(e.line, Some(text.lines().count() + 1), "{text}: {e}");
        assert!(e.to_string().starts_with("test.toml:"), "{e}");
    }
    // The second [[function]]'s key, on its own line.
    let e = refused(
        "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\n\n[[function]]\nroute = 5\nmodule = \"b.wasm\"\n",
    );
    assert_eq!(
        e.to_string(),
        "test.toml:6: `route` must be a string, got an integer"
    );
}

#[test]
fn control_characters_and_invalid_utf8_are_named_and_escaped() {
    // A raw NUL (TOML allows no raw control character but tab).
    let e = refused("[server]\nmax_headers = 1\0\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("(\\0)"), "{e}");
    // Escaped control characters inside strings reach messages escaped.
    let e = refused("[server]\nlisten = \"\\u0000x\\u001b[31m\"\n");
    assert_eq!(e.line, Some(2));
    for e in [
        e,
        refused("[[function]]\nroute = \"/\\u0000\\n\"\nmodule = \"a.wasm\"\n"),
        refused("[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nname = \"x\\u001b\"\n"),
        refused("[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nmethods = [\"GET\\r\\n\"]\n"),
        refused("[limits]\nmemory = \"1\\u0007GiB\"\n"),
        refused("[server]\nfunctions_dir = \"no\\u0000pe\"\n"),
    ] {
        let shown = e.to_string();
        assert!(!shown.contains(|c: char| c.is_control()), "{shown:?}");
        assert!(e.line.is_some(), "{shown}");
    }
    // DEL is refused as C0 is; C1 (U+0080 to U+009F) is allowed in
    // comments and strings, as TOML allows it (fuzz: a U+0097 in a comment).
    let e = refused("[server]\n# a\u{7f}b\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("(\\u{7f})"), "{e}");
    let c = parse("# 4\u{97} Cortex\n[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nenv = { A = \"x\u{85}y\" }\n")
        .unwrap();
    assert_eq!(
        c.functions[0].env,
        [("A".to_owned(), "x\u{85}y".to_owned())]
    );
    // Invalid UTF-8 in a file: its line and the byte.
    let path = std::env::temp_dir().join(format!("wasmgate-utf8-{}.toml", std::process::id()));
    std::fs::write(&path, b"[server]\n\nmax_headers = \"\xff\"\n").unwrap();
    let e = Config::load(&path, None).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("invalid UTF-8 (byte 0xff)"), "{e}");
}

#[test]
fn functions_dir_must_be_a_directory() {
    let e = refused("[server]\n\nfunctions_dir = \"no-such-dir\"\n");
    assert_eq!(e.line, Some(3));
    assert!(
        e.message
            .starts_with("`functions_dir` \"/no-such-dir\" cannot be used"),
        "{e}"
    );
    let file = std::env::temp_dir().join(format!("wasmgate-notadir-{}", std::process::id()));
    std::fs::write(&file, "").unwrap();
    let e = refused(&format!(
        "[server]\nfunctions_dir = {:?}\n",
        file.display().to_string()
    ));
    std::fs::remove_file(&file).unwrap();
    assert!(e.message.ends_with("is not a directory"), "{e}");
    let c = parse("[server]\nfunctions_dir = \"/\"\n").unwrap();
    assert_eq!(c.functions_dir.as_deref(), Some(Path::new("/")));
}

#[test]
fn methods_are_tokens_normalised_to_upper_case() {
    let f = |methods: &str| {
        Config::parse(
            &format!("[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nmethods = {methods}\n"),
            "test.toml",
            Path::new("/"),
            None,
        )
        .map(|c| c.functions[0].methods.clone().unwrap_or_default())
    };
    assert_eq!(f("[\"get\", \"Post\", \"GET\"]").unwrap(), ["GET", "POST"]);
    assert_eq!(
        f("[\"m-search\", \"X_CUSTOM.1\"]").unwrap(),
        ["M-SEARCH", "X_CUSTOM.1"]
    );
    for bad in [
        "[\"GE T\"]",
        "[\"\"]",
        "[\"GET/\"]",
        "[\"(GET)\"]",
        "[\"GÉT\"]",
    ] {
        let e = f(bad).unwrap_err();
        assert_eq!(e.line, Some(4), "{bad}");
        assert!(e.message.contains("is not an HTTP method"), "{bad}: {e}");
    }
    let e = f("[]").unwrap_err();
    assert!(e.message.contains("`methods` is empty"), "{e}");
}

#[test]
fn plain_output_is_text_by_default_and_set_globally_or_per_function() {
    use crate::limits::PlainOutput;
    let c = parse(
        "[limits]\nplain_output = \"refuse\"\n\
         [[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\n\
         [[function]]\nroute = \"/b\"\nmodule = \"b.wasm\"\nlimits = { plain_output = \"text\" }\n",
    )
    .unwrap();
    assert_eq!(c.defaults.plain_output, PlainOutput::Refuse);
    assert_eq!(c.functions[0].limits.plain_output, PlainOutput::Refuse);
    assert_eq!(c.functions[1].limits.plain_output, PlainOutput::Text);
    assert_eq!(parse("").unwrap().defaults.plain_output, PlainOutput::Text);
    let e = refused("\n[limits]\nplain_output = \"502\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(
        e.message
            .contains(r#"`plain_output` must be "text" or "refuse", got "502""#),
        "{e}"
    );
}

#[test]
fn middleware_tables_and_lists_parse() {
    let c = parse(
        "[[middleware]]\nname = \"verify\"\nmodule = \"m/verify.wasm\"\n\
         config = { header = \"x-signature\", n = 3, list = [1, \"a\"] }\nlimits = { fuel = 5000 }\n\
         [[middleware]]\nname = \"plain\"\nmodule = \"plain.wasm\"\n\
         [[function]]\nroute = \"/f\"\nmodule = \"f.wasm\"\nmiddleware = [\"verify\", \"plain\"]\n\
         [[function]]\nroute = \"/g\"\nmodule = \"g.wasm\"\n",
    )
    .unwrap();
    assert_eq!(c.middleware.len(), 2);
    let verify = &c.middleware[0];
    assert_eq!(verify.module, Path::new("/base/m/verify.wasm"));
    assert_eq!(
        &*verify.config,
        br#"{"header":"x-signature","list":[1,"a"],"n":3}"#
    );
    assert_eq!(verify.limits.fuel, 5000);
    assert!(c.middleware[1].config.is_empty());
    let names: Vec<&str> = c.functions[0]
        .middleware
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["verify", "plain"]);
    assert!(c.functions[1].middleware.is_empty());
}

#[test]
fn middleware_errors_name_the_line_and_key() {
    let cases = [
        (
            "[[function]]\nroute = \"/f\"\nmodule = \"f.wasm\"\nmiddleware = [\"nope\"]\n",
            4,
            "`middleware`: no [[middleware]] is named \"nope\"",
        ),
        (
            "[[middleware]]\nname = \"a\"\nmodule = \"a.wasm\"\n[[function]]\nroute = \"/f\"\n\
             module = \"f.wasm\"\nmiddleware = [\"a\", \"a\"]\n",
            7,
            "listed twice",
        ),
        (
            "[[middleware]]\nname = \"a\"\nmodule = \"a.wasm\"\n[[middleware]]\nname = \"a\"\nmodule = \"b.wasm\"\n",
            5,
            "used twice",
        ),
        (
            "[[middleware]]\nname = \"a\"\nmodule = \"a.wasm\"\nsecret = 1\n",
            4,
            "unknown field `secret`",
        ),
        (
            "[[middleware]]\nname = \"a\\n\"\nmodule = \"a.wasm\"\n",
            2,
            "control characters",
        ),
        (
            "[[middleware]]\nname = \"a\"\nmodule = \"a.wasm\"\nlimits = { fuel = 0 }\n",
            4,
            "fuel",
        ),
    ];
    for (text, line, message) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, Some(line), "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
    }
}

#[test]
fn proxy_tables_parse_with_gateway_defaults() {
    let c = parse(
        "[gateway]\nconnect_timeout = \"2s\"\npool_size = 3\n\n[[proxy]]\nroute = \"/api/*\"\nupstream = [\"http://127.0.0.1:9000\", \"http://[::1]:81/\", \"http://backend.local\"]\nfail_threshold = 5\n",
    )
    .unwrap();
    let p = &c.proxies[0];
    assert_eq!(
        (p.route.as_str(), p.prefix, p.name.as_str()),
        ("/api", true, "/api/*")
    );
    assert_eq!(p.limits.connect_timeout, Duration::from_secs(2));
    assert_eq!(p.limits.pool_size, 3);
    assert_eq!(p.limits.fail_threshold, 5);
    let hosts: Vec<(&str, u16, &str)> = p
        .upstreams
        .iter()
        .map(|u| (u.host.as_str(), u.port, u.authority.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("127.0.0.1", 9000, "127.0.0.1:9000"),
            ("::1", 81, "[::1]:81"),
            ("backend.local", 80, "backend.local")
        ]
    );
}

#[test]
fn proxy_tables_are_checked() {
    let proxy = |keys: &str| parse(&format!("[[proxy]]\nroute = \"/api/*\"\n{keys}\n"));
    for (keys, says) in [
        ("upstream = \"https://x\"", "only http://"),
        ("upstream = \"http://x/path\"", "no path"),
        ("upstream = \"http://x:99999\"", "invalid port"),
        ("upstream = []", "empty list"),
        ("", "needs an `upstream`"),
        (
            "upstream = \"http://x\"\nmiddleware = [\"verify\"]",
            "no [[middleware]] is named \"verify\"",
        ),
        (
            "upstream = \"http://x\"\nfail_threshold = 0",
            "fail_threshold",
        ),
    ] {
        let e = proxy(keys).unwrap_err().to_string();
        assert!(e.contains(says), "{keys}: {e}");
    }
    let e = parse("[gateway]\nroute = \"/x\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("belongs in a `[[proxy]]`"), "{e}");
    let e = parse(
        "[[function]]\nroute = \"/api/*\"\nmodule = \"a.wasm\"\n[[proxy]]\nroute = \"/api/*\"\nupstream = \"http://x\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("route `/api` is given to both `a` and proxy `/api/*`"),
        "{e}"
    );
    // An empty middleware list is no middleware.
    assert!(proxy("upstream = \"http://x\"\nmiddleware = []").is_ok());
}

#[test]
fn state_keys_and_namespaces_parse_and_bad_ones_are_refused() {
    let c = parse("").unwrap();
    assert_eq!(c.state, StateConfig::default());
    let c = parse(
        "[state]\ndir = \"kv\"\nsync = \"100ms\"\nmax_keys = 5\nmax_bytes = \"2KiB\"\nmax_value = 10\n\
         [[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nkv = \"tenant-42\"\n\
         [[function]]\nroute = \"/b\"\nmodule = \"b.wasm\"\n\
         [[middleware]]\nname = \"m\"\nmodule = \"m.wasm\"\n\
         [[middleware]]\nname = \"n\"\nmodule = \"n.wasm\"\nkv = \"shared\"\n",
    )
    .unwrap();
    assert_eq!(c.middleware[0].namespace(), "m");
    assert_eq!(c.middleware[1].namespace(), "shared");
    assert_eq!(c.state.dir, Path::new("/base/kv"));
    assert_eq!(c.state.sync, Some(Duration::from_millis(100)));
    assert_eq!(
        (
            c.state.limits.max_keys,
            c.state.limits.max_bytes,
            c.state.limits.max_value
        ),
        (5, 2048, 10)
    );
    assert_eq!(c.functions[0].namespace(), "tenant-42");
    assert_eq!(c.functions[1].namespace(), "b");
    assert_eq!(
        parse("[state]\nsync = \"always\"\n").unwrap().state.sync,
        None
    );
    for (text, needle) in [
        (
            "[state]\nsync = \"sometimes\"\n",
            "`sync` must be \"always\" or an interval",
        ),
        (
            "[state]\nsync = \"1h\"\n",
            "`sync` must be \"always\" or an interval",
        ),
        ("[state]\nmax_keys = 0\n", "`max_keys` must be between"),
        ("[state]\nunknown = 1\n", "unknown"),
        (
            "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nkv = \"../b\"\n",
            "`kv` must be 1 to 128 letters",
        ),
        (
            "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nkv = \"\"\n",
            "`kv` must be 1 to 128 letters",
        ),
        (
            "[[middleware]]\nname = \"m\"\nmodule = \"m.wasm\"\nkv = \"a/b\"\n",
            "`kv` must be 1 to 128 letters",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}

#[test]
fn middleware_config_env_keys_are_resolved_by_the_host() {
    // PATH is set wherever tests run.
    let path = std::env::var("PATH").unwrap();
    let c = parse(
        "[[middleware]]\nname = \"verify\"\nmodule = \"v.wasm\"\n\
         config = { secret_env = \"PATH\", header = \"x-signature\", nested = { a_env = \"PATH\" } }\n",
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&c.middleware[0].config).unwrap();
    assert_eq!(json["secret"], path.as_str());
    assert!(json.get("secret_env").is_none(), "{json}");
    // Only top-level keys are resolved.
    assert_eq!(json["nested"]["a_env"], "PATH");
    for (config, says) in [
        (
            "{ secret_env = \"WASMGATE_TEST_SURELY_UNSET_VARIABLE\" }",
            "`secret_env`: the environment variable \"WASMGATE_TEST_SURELY_UNSET_VARIABLE\" is not set",
        ),
        (
            "{ secret = \"s\", secret_env = \"PATH\" }",
            "sets both `secret` and `secret_env`",
        ),
    ] {
        let e = parse(&format!(
            "[[middleware]]\nname = \"v\"\nmodule = \"v.wasm\"\nconfig = {config}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(says), "{config}: {e}");
        assert!(e.contains("test.toml:4"), "{e}");
    }
}

#[test]
fn admin_listener_is_off_without_its_table_and_on_loopback_with_it() {
    assert_eq!(parse("").unwrap().admin, None);
    assert_eq!(
        parse("[admin]\n").unwrap().admin,
        Some(super::DEFAULT_ADMIN_LISTEN)
    );
    assert_eq!(
        parse("[admin]\nlisten = \"0.0.0.0:9100\"\n").unwrap().admin,
        Some("0.0.0.0:9100".parse().unwrap())
    );
    let e = parse("[admin]\nlisten = \"nowhere\"\n").unwrap_err();
    assert!(e.message.contains("`admin.listen`"), "{}", e.message);
    assert!(parse("[admin]\nport = 1\n").is_err());
}

#[test]
fn dumps_are_off_without_their_table_and_need_a_dir() {
    assert_eq!(parse("").unwrap().dumps, None);
    let dumps = parse("[dumps]\ndir = \"crash\"\n").unwrap().dumps.unwrap();
    assert!(dumps.dir.ends_with("crash"), "{dumps:?}");
    assert_eq!(dumps.max_files, super::DumpsConfig::DEFAULT_MAX_FILES);
    assert_eq!(dumps.max_bytes, super::DumpsConfig::DEFAULT_MAX_BYTES);
    let dumps = parse("[dumps]\ndir = \"d\"\nmax_files = 3\nmax_bytes = \"1MiB\"\n")
        .unwrap()
        .dumps
        .unwrap();
    assert_eq!((dumps.max_files, dumps.max_bytes), (3, 1 << 20));
    let e = parse("[dumps]\nmax_files = 3\n").unwrap_err();
    assert!(e.message.contains("dir"), "{}", e.message);
    let e = parse("[dumps]\ndir = \"d\"\nmax_files = 0\n").unwrap_err();
    assert!(e.message.contains("max_files"), "{}", e.message);
    let e = parse("[dumps]\ndir = \"d\"\nmax_bytes = \"1KiB\"\n").unwrap_err();
    assert!(e.message.contains("max_bytes"), "{}", e.message);
    assert!(parse("[dumps]\ndir = \"d\"\nkeep = 1\n").is_err());
}

#[test]
fn functions_named_after_the_same_file_stem_are_refused() {
    // Two tenants' modules with one file stem: one name, one namespace.
    let e = refused(
        "[[function]]\nroute = \"/a\"\nmodule = \"tenants/a/handler.wasm\"\n\
         [[function]]\nroute = \"/b\"\nmodule = \"tenants/b/handler.wasm\"\n",
    );
    assert_eq!(e.line, Some(6), "{e}");
    assert_eq!(
        e.message,
        "function `handler` (route `/b`, module \"tenants/b/handler.wasm\") has the name of \
         function `handler` (route `/a`, module \"tenants/a/handler.wasm\"): logs, metrics and \
         error bodies would not tell them apart, and they would share KV namespace \"handler\"; \
         set a distinct `name` on one"
    );
    // A name given twice, each with a `kv` of its own: still one name.
    let e = refused(
        "[[function]]\nname = \"h\"\nroute = \"/a\"\nmodule = \"a.wasm\"\nkv = \"a\"\n\
         [[function]]\nname = \"h\"\nroute = \"/b\"\nmodule = \"b.wasm\"\nkv = \"b\"\n",
    );
    assert_eq!(e.line, Some(7), "{e}");
    assert!(e.message.contains("has the name of function `h`"), "{e}");
    assert!(!e.message.contains("KV namespace"), "{e}");
    // Setting `name` on one is the fix.
    let c = parse(
        "[[function]]\nroute = \"/a\"\nmodule = \"tenants/a/handler.wasm\"\n\
         [[function]]\nname = \"b-handler\"\nroute = \"/b\"\nmodule = \"tenants/b/handler.wasm\"\n",
    )
    .unwrap();
    assert_eq!(c.functions[0].namespace(), "handler");
    assert_eq!(c.functions[1].namespace(), "b-handler");
}

#[test]
fn a_namespace_that_is_a_name_by_default_is_not_shared() {
    let middleware = "[[middleware]]\nname = \"rl\"\nmodule = \"m.wasm\"\n";
    let function = "[[function]]\nname = \"rl\"\nroute = \"/1\"\nmodule = \"rl.wasm\"\n";
    // A function and a middleware named alike: the later one is refused,
    // naming both.
    let e = refused(&format!("{middleware}{function}"));
    assert_eq!(e.line, Some(5), "{e}");
    assert_eq!(
        e.message,
        "function `rl` (route `/1`, module \"rl.wasm\") would share KV namespace \"rl\" with \
         middleware `rl`: without `kv` a namespace is the name, and belongs to that one alone; \
         set a distinct `name` or `kv` on one (the same `kv` on both shares it on purpose)"
    );
    let e = refused(&format!("{function}{middleware}"));
    assert_eq!(e.line, Some(6), "{e}");
    assert!(
        e.message.starts_with(
            "middleware `rl` would share KV namespace \"rl\" with function `rl` (route `/1`, module \"rl.wasm\")"
        ),
        "{e}"
    );
    // One module, two tenants told apart by `env` (or `args`) only.
    for input in ["env = { TENANT = \"{}\" }", "args = [\"{}\"]"] {
        let e = refused(&format!(
            "[[function]]\nroute = \"/t1\"\nmodule = \"app.wasm\"\n{}\n\
             [[function]]\nroute = \"/t2\"\nmodule = \"app.wasm\"\n{}\n",
            input.replace("{}", "1"),
            input.replace("{}", "2"),
        ));
        assert_eq!(e.line, Some(7), "{e}");
        assert!(
            e.message.starts_with(
                "function `app` (route `/t2`, module \"app.wasm\") would share KV namespace \"app\" \
                 with function `app` (route `/t1`, module \"app.wasm\"): "
            ),
            "{e}"
        );
    }
}

#[test]
fn a_namespace_named_by_kv_is_shared_on_purpose() {
    let c = parse(
        "[[function]]\nname = \"a\"\nroute = \"/a\"\nmodule = \"tenants/a/handler.wasm\"\nkv = \"shared\"\n\
         [[function]]\nname = \"b\"\nroute = \"/b\"\nmodule = \"tenants/b/handler.wasm\"\nkv = \"shared\"\n\
         [[middleware]]\nname = \"m\"\nmodule = \"m.wasm\"\nkv = \"shared\"\n\
         [[function]]\nname = \"c\"\nroute = \"/c\"\nmodule = \"c.wasm\"\n\
         [[function]]\nname = \"c-too\"\nroute = \"/c-too\"\nmodule = \"c.wasm\"\nkv = \"c\"\n\
         [[middleware]]\nname = \"n\"\nmodule = \"n.wasm\"\n\
         [[function]]\nname = \"n-fn\"\nroute = \"/n\"\nmodule = \"n.wasm\"\nkv = \"n\"\n",
    )
    .unwrap();
    let ns: Vec<&str> = c.functions.iter().map(|f| f.namespace()).collect();
    assert_eq!(ns, ["shared", "shared", "c", "c", "n"]);
    assert_eq!(c.middleware[0].namespace(), "shared");
    assert_eq!(c.middleware[1].namespace(), "n");
    // One module served at several routes is one program: one name, one
    // namespace; an http-wasm module as a middleware and a function too.
    let c = parse(
        "[[function]]\nroute = \"/a\"\nmodule = \"hello.wasm\"\n\
         [[function]]\nroute = \"/b\"\nmodule = \"hello.wasm\"\n\
         [[middleware]]\nname = \"hw\"\nmodule = \"hw.wasm\"\n\
         [[function]]\nroute = \"/hw\"\nmodule = \"hw.wasm\"\n",
    )
    .unwrap();
    assert_eq!(c.functions[0].namespace(), c.functions[1].namespace());
    assert_eq!(c.functions[2].namespace(), c.middleware[0].namespace());
}

#[test]
fn a_name_used_as_a_namespace_is_at_most_128_bytes() {
    let long = "n".repeat(StateConfig::MAX_NAMESPACE + 1);
    let e = refused(&format!(
        "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\n\
         [[function]]\nname = \"{long}\"\nroute = \"/b\"\nmodule = \"b.wasm\"\n"
    ));
    assert_eq!(e.line, Some(5), "{e}");
    assert!(
        e.message
            .contains("its name is its KV namespace, which may be at most 128 bytes, not 129"),
        "{e}"
    );
    // With a `kv` of its own the name may be longer.
    parse(&format!(
        "[[function]]\nname = \"{long}\"\nroute = \"/b\"\nmodule = \"b.wasm\"\nkv = \"b\"\n"
    ))
    .unwrap();
}

#[test]
fn state_quotas_keep_a_namespace_within_one_log_record() {
    // `tests/kv_namespaces.rs` has the store read a record of
    // `FULLEST_RECORD` bytes, and refuse one past `MAX_RECORD`.
    let (max_bytes, max_keys) = (
        *StateConfig::MAX_BYTES_RANGE.end(),
        *StateConfig::MAX_KEYS_RANGE.end(),
    );
    assert_eq!(
        StateConfig::FULLEST_RECORD,
        max_bytes + max_keys * StateConfig::ENTRY_OVERHEAD
    );
    assert_eq!(
        (StateConfig::FULLEST_RECORD, StateConfig::MAX_RECORD),
        (253_417_728, 256 << 20)
    );
    let defaults = crate::limits::StateLimits::default();
    assert!(StateConfig::MAX_BYTES_RANGE.contains(&defaults.max_bytes));
    assert!(StateConfig::MAX_KEYS_RANGE.contains(&defaults.max_keys));
    // The range ends are accepted, one past them refused by name.
    let c = parse("[state]\nmax_bytes = \"128MiB\"\nmax_keys = 800_000\n").unwrap();
    assert_eq!(
        (c.state.limits.max_bytes, c.state.limits.max_keys),
        (max_bytes, max_keys)
    );
    for (text, message) in [
        (
            "max_bytes = \"4GiB\"",
            "`max_bytes` must be between 1KiB and 128MiB, got 4GiB",
        ),
        (
            "max_bytes = 134_217_729",
            "`max_bytes` must be between 1KiB and 128MiB, got 134217729B",
        ),
        (
            "max_keys = 800_001",
            "`max_keys` must be between 1 and 800000, got 800001",
        ),
    ] {
        let e = refused(&format!("[state]\n{text}\n"));
        assert_eq!((e.line, e.message.as_str()), (Some(2), message), "{text}");
    }
}

#[test]
fn a_route_that_encodes_an_unreserved_character_is_refused() {
    let e = parse("[[function]]\nroute = \"/%61dmin/*\"\nmodule = \"a.wasm\"\n").unwrap_err();
    assert!(
        e.message.contains("has \"%61\"") && e.message.contains("write it plain"),
        "{}",
        e.message
    );
    let e = parse("[[proxy]]\nroute = \"/x%7e\"\nupstream = \"http://127.0.0.1:9\"\n").unwrap_err();
    assert!(e.message.contains("%7e"), "{}", e.message);
    // Reserved characters stay encoded in requests, so may in routes.
    let c = parse("[[function]]\nroute = \"/a%20b%3A\"\nmodule = \"a.wasm\"\n").unwrap();
    assert_eq!(c.functions[0].route, "/a%20b%3A");
    let e = parse("[[function]]\nroute = \"/a%3a\"\nmodule = \"a.wasm\"\n").unwrap_err();
    assert!(e.message.contains("upper case"), "{}", e.message);
}

#[test]
fn a_middleware_config_may_not_hold_the_dump_placeholder() {
    for config in [
        r#"{ note = "<redacted: $HOME>" }"#,
        r#"{ a = { b = ["x", "y <redacted: $X> z"] } }"#,
    ] {
        let e = parse(&format!(
            "[[middleware]]\nname = \"m\"\nmodule = \"m.wasm\"\nconfig = {config}\n"
        ))
        .unwrap_err();
        assert!(
            e.message.contains("<redacted: $"),
            "{config}: {}",
            e.message
        );
    }
}

#[test]
fn instance_pool_defaults_to_2_mib_and_0_turns_it_off() {
    assert_eq!(parse("").unwrap().server.instance_pool, 2 << 20);
    let c = parse("[server]\ninstance_pool = 0\n").unwrap();
    assert_eq!(c.server.instance_pool, 0);
}

#[test]
fn allow_encoded_slash_is_off_unless_set() {
    assert!(!parse("").unwrap().server.allow_encoded_slash);
    let c = parse("[server]\nallow_encoded_slash = true\n").unwrap();
    assert!(c.server.allow_encoded_slash);
}

#[test]
fn duplicates_among_thousands_of_entries_name_the_first_earlier_one() {
    // 3,000 functions, one module served under each name at two routes.
    let mut toml = String::new();
    for i in 0..1500 {
        for route in [format!("/t{i}"), format!("/t{i}/more/*")] {
            toml.push_str(&format!(
                "[[function]]\nname = \"t{i}\"\nroute = \"{route}\"\nmodule = \"t{i}.wasm\"\n"
            ));
        }
    }
    let c = parse(&toml).unwrap();
    assert_eq!(c.functions.len(), 3000);
    let with = |extra: &str| parse(&format!("{toml}{extra}")).unwrap_err().message;
    assert_eq!(
        with("[[function]]\nname = \"late\"\nroute = \"/t7\"\nmodule = \"late.wasm\"\n"),
        "route `/t7` is given to both `t7` and `late`"
    );
    assert_eq!(
        with("[[proxy]]\nroute = \"/t1499/more/*\"\nupstream = \"http://x\"\n"),
        "route `/t1499/more` is given to both `t1499` and proxy `/t1499/more/*`"
    );
    assert_eq!(
        with(
            "[[proxy]]\nroute = \"/p/*\"\nupstream = \"http://x\"\n\
             [[proxy]]\nroute = \"/p/*\"\nupstream = \"http://y\"\n"
        ),
        "route `/p` is given to both `/p/*` and proxy `/p/*`"
    );
    // A third route for `t3` with another module: refused, naming the
    // first `t3`.
    let e = with("[[function]]\nname = \"t3\"\nroute = \"/x\"\nmodule = \"other.wasm\"\n");
    assert!(
        e.starts_with(
            "function `t3` (route `/x`, module \"other.wasm\") has the name of function `t3` \
             (route `/t3`, module \"t3.wasm\")"
        ),
        "{e}"
    );
    // A middleware named after a function takes its namespace.
    let e = with("[[middleware]]\nname = \"t1000\"\nmodule = \"m.wasm\"\n");
    assert!(
        e.starts_with("middleware `t1000` would share KV namespace \"t1000\" with function `t1000` (route `/t1000`, module \"t1000.wasm\")"),
        "{e}"
    );
    let e = with(
        "[[middleware]]\nname = \"m\"\nmodule = \"m.wasm\"\n\
         [[middleware]]\nname = \"m\"\nmodule = \"n.wasm\"\n",
    );
    assert_eq!(e, "[[middleware]] name \"m\" is used twice");
}

#[test]
fn long_middleware_lists_keep_their_order_and_name_a_repeat() {
    // 2,000 middleware, all listed by one proxy in reverse order.
    let mut toml = String::new();
    for i in 0..2000 {
        toml.push_str(&format!(
            "[[middleware]]\nname = \"m{i}\"\nmodule = \"m.wasm\"\nkv = \"shared\"\n"
        ));
    }
    let list: Vec<String> = (0..2000).rev().map(|i| format!("\"m{i}\"")).collect();
    let proxy = |list: &[String]| {
        format!(
            "{toml}[[proxy]]\nroute = \"/p/*\"\nupstream = \"http://x\"\nmiddleware = [{}]\n",
            list.join(", ")
        )
    };
    let c = parse(&proxy(&list)).unwrap();
    let names: Vec<&str> = c.proxies[0]
        .middleware
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names.len(), 2000);
    assert_eq!((names[0], names[1999]), ("m1999", "m0"));
    assert!(names.windows(2).all(|w| w[0] != w[1]));
    let mut repeated = list.clone();
    repeated.push("\"m1234\"".to_owned());
    let e = parse(&proxy(&repeated)).unwrap_err().message;
    assert_eq!(e, "`middleware`: \"m1234\" is listed twice");
    let mut unknown = list;
    unknown.push("\"m2000\"".to_owned());
    let e = parse(&proxy(&unknown)).unwrap_err().message;
    assert_eq!(e, "`middleware`: no [[middleware]] is named \"m2000\"");
}
