//! The command line: `serve`, `run`, `check`, `calibrate`, `kv`, `keygen`, `sign`, `replay`. Parses arguments into a
//! [`Command`], runs it, and reports failures as one line with an exit code
//! (0 success, 1 runtime failure, 2 usage or configuration error, 3 a
//! replay that differs from its dump).

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lexopt::prelude::*;
use wasmi::ExternType;

mod kv;
mod logs;
mod replay;
mod sign;

pub use logs::init as init_logging;

use crate::abi;
use crate::cache;
use crate::config::units::{parse_duration, parse_size, show_duration};
use crate::config::validate::over_budget;
use crate::config::{AbiChoice, Config, FunctionSpec};
use crate::error::ConfigError;
use crate::limits::{FunctionLimits, show_size};
use crate::runtime::Runtime;
use crate::runtime::toolchain::{Toolchain, stack_advice};

const USAGE: &str = "\
wasmgate: run untrusted WebAssembly functions behind a small HTTP server

Usage:
  wasmgate serve [DIR] [--config FILE] [--listen ADDR] [--board NAME]
  wasmgate run MODULE [--method M] [--path P] [--header NAME:VALUE]... [--body TEXT|@FILE]
               [--config FILE] [--fuel N] [--memory SIZE] [--timeout DURATION]
  wasmgate check MODULE|DIR [--config FILE] [--fuel N] [--memory SIZE] [--timeout DURATION]
  wasmgate calibrate
  wasmgate kv list|get|set|delete|export|import NAMESPACE [ARGS] [--config FILE | --dir DIR]
  wasmgate keygen --out KEYFILE
  wasmgate sign MODULE --key KEYFILE
  wasmgate replay DUMP [--module NEW.wasm] [--env VAR]...
  wasmgate --help | --version

Commands:
  serve   Serve functions over HTTP. DIR serves each DIR/NAME.wasm at /NAME;
          --config reads wasmgate.toml (default: ./wasmgate.toml if present).
  run     Call a module once with one request and print the response,
          the fuel used and the time taken.
  check   Validate a module (or every .wasm in a directory) and print its
          ABI, imports, exports and declared memory.
  calibrate  Measure instructions per millisecond on this machine, for a
          board profile's fuel_per_ms.
  kv      Read and write the functions' KV store while the server is stopped;
          export and import it as JSON lines.
  keygen  Make an Ed25519 key pair for signed modules: the secret key to
          KEYFILE (mode 0600), the public key printed for trusted_keys.
  sign    Sign MODULE with KEYFILE: writes the detached MODULE.sig, or
          with --gojinn Gojinn's signed file (module, signature, GJSIG).
  replay  Run a crash dump's request again offline with its recorded inputs
          and compare the outcome and fuel ([dumps] in wasmgate.toml).

Environment:
  RUST_LOG  log filter (default: info), e.g. RUST_LOG=warn or RUST_LOG=access=off

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error,
3 a replay that differs from its dump.
Run `wasmgate COMMAND --help` for a command's options.";

const SERVE_USAGE: &str = "\
Usage: wasmgate serve [DIR] [--config FILE] [--listen ADDR] [--board NAME]

  DIR             serve each DIR/NAME.wasm at /NAME (and /NAME/...)
  --config FILE   read configuration from FILE (default: ./wasmgate.toml if present)
  --listen ADDR   listen on ADDR, e.g. 0.0.0.0:8080 (default: 127.0.0.1:8080)
  --board NAME    take defaults from board profile NAME (overrides the config's
                  `board` key; keys in the config still override the profile).
                  Built in: beaglebone-black, generic-aarch64, revpi-connect4,
                  rpi-zero-2w, rpi3b, rpi4b, rpi5";

/// The options `run` and `check` share: the limits in force. A macro so
/// that both usage texts include it with `concat!`.
macro_rules! limits_usage {
    () => {
        "  --config FILE         take the limits of wasmgate.toml FILE: its [server]
                        limits, and its [limits] or, when MODULE is the
                        module of one of its [[function]]s, that function's
  --fuel N              instruction budget (default: 100000000)
  --memory SIZE         memory limit, e.g. 16MiB (default: 8MiB)
  --timeout DURATION    CPU-time backstop, e.g. 500ms (default: 5s)
  Flags win over --config."
    };
}

const RUN_USAGE: &str = concat!(
    "\
Usage: wasmgate run MODULE [OPTIONS]

  --method M            request method (default: GET)
  --path P              request target, path and query (default: /)
  --header NAME:VALUE   add a request header; repeatable
  --body TEXT|@FILE     request body, literally or read from FILE
  --abi auto|native|wasi-json   force the ABI (default: auto, or the
                        configured function's)
",
    limits_usage!(),
    "

Prints the status, headers and body on stdout; fuel and time on stderr.
Exits 1 when the function fails (trap, deadline, bad response…)."
);

const CALIBRATE_USAGE: &str = "\
Usage: wasmgate calibrate

Runs a fixed, bundled workload 7 times for about a second in all, timed on
the thread's CPU time, and prints how many instructions (fuel units) this
machine executes per millisecond in the fastest run, as the
`fuel_per_ms = N` line for a board profile, with the spread between the
runs; warns when they differ by more than 10%. With fuel_per_ms known, a
function's `timeout` also sets its instruction budget.";

const CHECK_USAGE: &str = concat!(
    "\
Usage: wasmgate check MODULE|DIR [OPTIONS]

Validates MODULE (or every .wasm file in DIR) as wasmgate would load it and
prints its ABI, imports, exports and declared memory, with a warning when a
request could never run under the limits in force (its initial memory over
`memory`, its instantiation over `fuel`), and its signature status under
--config's [signatures] (without it, signatures are not checked). Exits 1
if any fails to load, a signature refusal included.

",
    limits_usage!()
);

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Print this text and exit 0.
    Help(&'static str),
    /// Print the version and exit 0.
    Version,
    /// Serve over HTTP.
    Serve {
        dir: Option<PathBuf>,
        config: Option<PathBuf>,
        listen: Option<String>,
        board: Option<String>,
    },
    /// Measure fuel per millisecond on this machine.
    Calibrate,
    /// Call a module once.
    Run(RunArgs),
    /// Validate modules.
    Check(PathBuf, LimitArgs),
    /// Operate on the KV store.
    Kv(kv::KvArgs),
    /// Make a key pair, the secret key into this file.
    Keygen(PathBuf),
    /// Sign a module with a key file.
    Sign(sign::SignArgs),
    /// Replay a crash dump.
    Replay(replay::ReplayArgs),
}

/// Arguments of `wasmgate run`.
#[derive(Debug, PartialEq)]
pub struct RunArgs {
    module: PathBuf,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// `None`: the configured function's, else detected.
    abi: Option<AbiChoice>,
    limits: LimitArgs,
}

/// The limits `run` and `check` apply: `--config`'s, then the flags.
#[derive(Debug, Default, PartialEq)]
pub struct LimitArgs {
    config: Option<PathBuf>,
    fuel: Option<u64>,
    memory: Option<u64>,
    timeout: Option<Duration>,
}

impl LimitArgs {
    /// The flags it reads (`--config`, `--fuel`, `--memory`, `--timeout`).
    const FLAGS: [&str; 4] = ["config", "fuel", "memory", "timeout"];

    /// Sets flag `--{flag}` (one of [`LimitArgs::FLAGS`]) to `value`,
    /// within the range the config key has.
    fn set(&mut self, flag: &str, value: OsString) -> Result<(), CliError> {
        if flag == "config" {
            self.config = Some(PathBuf::from(value));
            return Ok(());
        }
        let text = string(value, &format!("--{flag}"))?;
        let bad = |why: String| CliError::Usage(format!("--{flag} {why}"));
        match flag {
            "fuel" => {
                let fuel = text
                    .replace('_', "")
                    .parse()
                    .map_err(|_| bad(format!("wants a positive integer, got `{text}`")))?;
                let range = FunctionLimits::FUEL_RANGE;
                self.fuel = Some(within(flag, fuel, &range, |n| n.to_string())?);
            }
            "memory" => {
                let memory = parse_size(&text).map_err(bad)?;
                let range = FunctionLimits::MEMORY_RANGE;
                self.memory = Some(within(flag, memory, &range, show_size)?);
            }
            _ => {
                let timeout = parse_duration(&text).map_err(bad)?;
                let range = FunctionLimits::TIMEOUT_RANGE;
                self.timeout = Some(within(flag, timeout, &range, show_duration)?);
            }
        }
        Ok(())
    }

    /// The config of `--config`, or the defaults.
    fn config(&self) -> Result<Config, CliError> {
        match &self.config {
            Some(path) => Config::load(path, None).map_err(CliError::Config),
            None => Ok(Config::default()),
        }
    }

    /// The function `module` runs as under `config`: its `[[function]]`
    /// whose module is `module`, else one with its `[limits]`; then the
    /// flags, which must leave it within `memory_budget` as the config's
    /// own limits must.
    fn function(&self, config: &Config, module: &Path) -> Result<FunctionSpec, CliError> {
        let same = |a: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(module)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == module,
        };
        let mut function = match config.functions.iter().find(|f| same(&f.module)) {
            Some(f) => f.clone(),
            None => {
                let name = module
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut f = FunctionSpec::from_dir(Path::new("."), &name, &config.defaults);
                f.module = module.to_owned();
                f
            }
        };
        let limits = &mut function.limits;
        limits.fuel = self.fuel.unwrap_or(limits.fuel);
        limits.memory = self.memory.unwrap_or(limits.memory);
        limits.timeout = self.timeout.unwrap_or(limits.timeout);
        match over_budget(
            &function.name,
            &function.limits,
            config.server.memory_budget,
        ) {
            Some(message) => Err(CliError::Usage(message)),
            None => Ok(function),
        }
    }
}

/// `value` of flag `--{flag}` if it is in `range`, else a usage error that
/// names the range as a config would write it.
fn within<T: PartialOrd + Copy>(
    flag: &str,
    value: T,
    range: &std::ops::RangeInclusive<T>,
    show: fn(T) -> String,
) -> Result<T, CliError> {
    if range.contains(&value) {
        return Ok(value);
    }
    Err(CliError::Usage(format!(
        "--{flag} must be between {} and {}, got {}",
        show(*range.start()),
        show(*range.end()),
        show(value)
    )))
}

/// A failure with its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments: exit 2.
    Usage(String),
    /// Bad configuration: exit 2.
    Config(ConfigError),
    /// Something failed while running: exit 1.
    Runtime(String),
    /// A replay did not reproduce its dump: exit 3.
    Differs(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Config(_) => 2,
            CliError::Runtime(_) => 1,
            CliError::Differs(_) => 3,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m} (see `wasmgate --help`)"),
            CliError::Config(e) => write!(f, "{e}"),
            CliError::Runtime(m) | CliError::Differs(m) => f.write_str(m),
        }
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> Self {
        CliError::Usage(e.to_string())
    }
}

fn string(value: OsString, what: &str) -> Result<String, CliError> {
    value
        .into_string()
        .map_err(|_| CliError::Usage(format!("{what} is not valid UTF-8")))
}

/// Parses the command line (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, CliError> {
    let mut p = lexopt::Parser::from_iter(std::iter::once(OsString::from("wasmgate")).chain(args));
    let command = match p.next()? {
        None => return Ok(Command::Help(USAGE)),
        Some(Short('h') | Long("help")) => return Ok(Command::Help(USAGE)),
        Some(Short('V') | Long("version")) => return Ok(Command::Version),
        Some(Value(v)) => string(v, "command")?,
        Some(other) => return Err(other.unexpected().into()),
    };
    match command.as_str() {
        "help" => Ok(Command::Help(USAGE)),
        "serve" => parse_serve(&mut p),
        "kv" => Ok(match kv::parse(&mut p)? {
            Ok(args) => Command::Kv(args),
            Err(usage) => Command::Help(usage),
        }),
        "run" => parse_run(&mut p),
        "keygen" => Ok(match sign::parse_keygen(&mut p)? {
            Ok(out) => Command::Keygen(out),
            Err(usage) => Command::Help(usage),
        }),
        "sign" => Ok(match sign::parse_sign(&mut p)? {
            Ok(args) => Command::Sign(args),
            Err(usage) => Command::Help(usage),
        }),
        "replay" => replay::parse(&mut p),
        "calibrate" => match p.next()? {
            None => Ok(Command::Calibrate),
            Some(Short('h') | Long("help")) => Ok(Command::Help(CALIBRATE_USAGE)),
            Some(other) => Err(other.unexpected().into()),
        },
        "check" => {
            let (mut target, mut limits) = (None, LimitArgs::default());
            while let Some(arg) = p.next()? {
                match arg {
                    Short('h') | Long("help") => return Ok(Command::Help(CHECK_USAGE)),
                    Long(flag) if LimitArgs::FLAGS.contains(&flag) => {
                        let flag = flag.to_owned();
                        limits.set(&flag, p.value()?)?;
                    }
                    Value(v) if target.is_none() => target = Some(PathBuf::from(v)),
                    other => return Err(other.unexpected().into()),
                }
            }
            let target =
                target.ok_or_else(|| CliError::Usage("check: give a MODULE or DIR".into()))?;
            Ok(Command::Check(target, limits))
        }
        other => Err(CliError::Usage(format!("unknown command `{other}`"))),
    }
}

fn parse_serve(p: &mut lexopt::Parser) -> Result<Command, CliError> {
    let (mut dir, mut config, mut listen, mut board) = (None, None, None, None);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(SERVE_USAGE)),
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
            Short('l') | Long("listen") => listen = Some(string(p.value()?, "--listen")?),
            Short('b') | Long("board") => board = Some(string(p.value()?, "--board")?),
            Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Command::Serve {
        dir,
        config,
        listen,
        board,
    })
}

fn parse_run(p: &mut lexopt::Parser) -> Result<Command, CliError> {
    let mut module = None;
    let mut args = RunArgs {
        module: PathBuf::new(),
        method: "GET".into(),
        path: "/".into(),
        headers: Vec::new(),
        body: None,
        abi: None,
        limits: LimitArgs::default(),
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(RUN_USAGE)),
            Short('X') | Long("method") => {
                args.method = string(p.value()?, "--method")?.to_ascii_uppercase()
            }
            Long("path") => {
                args.path = string(p.value()?, "--path")?;
                if !args.path.starts_with('/') {
                    return Err(CliError::Usage(format!(
                        "--path must start with `/`, got `{}`",
                        args.path
                    )));
                }
            }
            Short('H') | Long("header") => {
                let h = string(p.value()?, "--header")?;
                let Some((name, value)) = h.split_once(':') else {
                    return Err(CliError::Usage(format!(
                        "--header wants NAME:VALUE, got `{h}`"
                    )));
                };
                args.headers
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
            Short('d') | Long("body") => args.body = Some(string(p.value()?, "--body")?),
            Long(flag) if LimitArgs::FLAGS.contains(&flag) => {
                let flag = flag.to_owned();
                args.limits.set(&flag, p.value()?)?;
            }
            Long("abi") => {
                args.abi = Some(match string(p.value()?, "--abi")?.as_str() {
                    "auto" => AbiChoice::Auto,
                    "native" => AbiChoice::Native,
                    "wasi-json" => AbiChoice::WasiJson,
                    other => {
                        return Err(CliError::Usage(format!(
                            "--abi must be auto, native or wasi-json, got `{other}`"
                        )));
                    }
                })
            }
            Value(v) if module.is_none() => module = Some(PathBuf::from(v)),
            other => return Err(other.unexpected().into()),
        }
    }
    args.module = module.ok_or_else(|| CliError::Usage("run: give a MODULE".into()))?;
    Ok(Command::Run(args))
}

/// Runs a parsed command.
pub fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Help(text) => {
            let _ = writeln!(std::io::stdout(), "{text}");
            Ok(())
        }
        Command::Version => {
            let _ = writeln!(std::io::stdout(), "wasmgate {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve {
            dir,
            config,
            listen,
            board,
        } => serve(dir, config, listen, board),
        Command::Calibrate => calibrate(),
        Command::Run(args) => run(args),
        Command::Check(target, limits) => check(&target, &limits),
        Command::Kv(args) => kv::execute(args),
        Command::Keygen(out) => sign::keygen(&out),
        Command::Sign(args) => sign::sign(&args),
        Command::Replay(args) => replay::execute(args),
    }
}

fn serve(
    dir: Option<PathBuf>,
    config_path: Option<PathBuf>,
    listen: Option<String>,
    board: Option<String>,
) -> Result<(), CliError> {
    // SIGHUP's default action ends the process. Until the server takes
    // the signals (after the config is read and the KV store replayed,
    // which can take seconds), one is taken here and dropped: a reload
    // asked for while starting is not a reason to die.
    let _starting = async_signal::Signals::new([async_signal::Signal::Hup]);
    let default_file = Path::new("wasmgate.toml");
    let config_path = config_path
        .or_else(|| (dir.is_none() && default_file.is_file()).then(|| default_file.into()));
    let source = ServeArgs {
        dir,
        config_path,
        listen,
        board,
    };
    let config = source.config()?;
    logs::set_json(config.server.log_json);
    let listen = config.listen;
    let admin_at = config.admin;
    let admin = config
        .admin
        .map(|addr| (addr, crate::app::admin::Admin::new));
    // The store is opened (and locked) before the server listens.
    let state = crate::app::State::at_start(&config).map_err(CliError::Runtime)?;
    // Read and checked on a thread of its own (`server::run`).
    let load = move || {
        let Some(path) = &source.config_path else {
            log::warn!("SIGHUP: no config file to re-read; nothing changed");
            return None;
        };
        match source.config() {
            Ok(config) => Some((path.clone(), config)),
            Err(e) => {
                log::error!("reload failed, keeping the running config: {e}");
                None
            }
        }
    };
    let reload = move |app: &crate::app::App, (path, mut config): (PathBuf, Config)| {
        if config.listen != listen {
            log::warn!(
                "reload: `listen` changed to {}: that needs a restart; still listening on {listen}",
                config.listen
            );
            config.listen = listen;
        }
        if config.admin != admin_at {
            let show =
                |a: Option<std::net::SocketAddr>| a.map_or("none".to_string(), |a| a.to_string());
            log::warn!(
                "reload: `[admin] listen` changed to {}: that needs a restart; the admin listener is still {}",
                show(config.admin),
                show(admin_at)
            );
            config.admin = admin_at;
        }
        logs::set_json(config.server.log_json);
        log::info!("reloaded {}", path.display());
        Some(app.reloaded(config))
    };
    crate::server::run(
        listen,
        move |addr| crate::app::App::start(config, addr).with_state(state),
        (load, reload),
        admin,
    )
    .map_err(|e| CliError::Runtime(format!("cannot serve on {listen}: {e}")))
}

/// Where `serve` takes its config from: read at start and again on SIGHUP.
struct ServeArgs {
    dir: Option<PathBuf>,
    config_path: Option<PathBuf>,
    listen: Option<String>,
    board: Option<String>,
}

impl ServeArgs {
    /// The config file (or board, or defaults) with the command line's
    /// DIR and `--listen` applied.
    fn config(&self) -> Result<Config, CliError> {
        let board = self.board.as_deref();
        let mut config = match (&self.config_path, board) {
            (Some(path), _) => Config::load(path, board),
            (None, Some(board)) => Config::for_board(board, Path::new(".")),
            (None, None) => Ok(Config::default()),
        }
        .map_err(CliError::Config)?;
        if let Some(dir) = &self.dir {
            if !dir.is_dir() {
                return Err(CliError::Usage(format!(
                    "{}: not a directory",
                    dir.display()
                )));
            }
            config.functions_dir = Some(dir.clone());
        }
        if config.functions_dir.is_none()
            && config.functions.is_empty()
            && config.proxies.is_empty()
        {
            return Err(CliError::Usage(
                "nothing to serve: give a functions DIR, or --config FILE with [[function]] or [[proxy]] entries or server.functions_dir"
                    .into(),
            ));
        }
        if let Some(listen) = &self.listen {
            config.listen = Config::parse_listen(listen)
                .map_err(|m| CliError::Usage(format!("--listen: {m}")))?;
        }
        Ok(config)
    }
}

fn calibrate() -> Result<(), CliError> {
    use crate::calibrate::{MAX_SPREAD_PERCENT, RUNS, Summary, measure};
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "calibrating: {RUNS} runs of the bundled workload, timed on this thread's CPU time..."
    );
    let samples = measure(&Runtime::new())
        .map_err(|e| CliError::Runtime(format!("calibration failed: {e}")))?;
    for s in &samples {
        let _ = writeln!(
            out,
            "  {} fuel in {:.1} ms of CPU ({:.1} ms wall): {} fuel/ms",
            s.fuel,
            s.cpu.as_secs_f64() * 1000.0,
            s.wall.as_secs_f64() * 1000.0,
            s.fuel_per_ms()
        );
    }
    let summary = Summary::of(&samples)
        .ok_or_else(|| CliError::Runtime("calibration failed: no runs".into()))?;
    let _ = writeln!(
        out,
        "spread: {}% (slowest run {} fuel/ms, fastest {}); the thread was on a CPU {}% of the time",
        summary.spread_percent, summary.worst, summary.best, summary.cpu_share_percent
    );
    let _ = writeln!(
        out,
        "\nfuel_per_ms = {}\n\nThe fastest run: what this machine does undisturbed. Put this line in the\nboard's profile (boards/NAME.toml) or under [server] in wasmgate.toml.\nMeasure on an otherwise idle board, with the binary built for it (--release).",
        summary.best
    );
    if !summary.trusted() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: the runs differ by {}%, more than {MAX_SPREAD_PERCENT}%: the machine is busy (other processes, \
             a changing clock speed), and fuel_per_ms = {} is not to be trusted; calibrate again on an idle board",
            summary.spread_percent,
            summary.best
        );
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<(), CliError> {
    let runtime = Runtime::new();
    let config = args.limits.config()?;
    let mut function = args.limits.function(&config, &args.module)?;
    function.abi = args.abi.unwrap_or(function.abi);
    let loaded = cache::load(&runtime, &args.module, function.abi, &config.server)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let body = match &args.body {
        None => Vec::new(),
        Some(b) => match b.strip_prefix('@') {
            Some(file) => {
                std::fs::read(file).map_err(|e| CliError::Usage(format!("--body @{file}: {e}")))?
            }
            None => b.clone().into_bytes(),
        },
    };
    let headers = args
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let request = abi::GuestRequest {
        method: &args.method,
        uri: &args.path,
        headers,
        body: &body,
        trace_id: "run",
    };
    let started = Instant::now();
    let outcome = smol::block_on(abi::call(&runtime, &loaded, &function, &request));
    let micros = started.elapsed().as_micros();
    let stats = format!(
        "fuel used: {}, time: {micros} us, abi: {}",
        outcome.fuel, loaded.abi
    );
    // A closed stdout or stderr (`| head`) must not turn into a panic.
    let print_stats = || {
        let _ = writeln!(std::io::stderr(), "{stats}");
    };
    // The server's checks (header count, names, values, host-owned
    // fields): `run` accepts exactly the responses `serve` sends.
    match outcome.result.and_then(crate::app::into_http) {
        Ok(response) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "HTTP {}", response.status);
            for (name, value) in &response.headers {
                let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(value));
            }
            let _ = writeln!(out);
            let _ = out.write_all(&response.body);
            let _ = out.flush();
            print_stats();
            Ok(())
        }
        Err(e) => {
            print_stats();
            Err(CliError::Runtime(format!(
                "{}: {} ({}, HTTP {})",
                args.module.display(),
                e,
                e.kind(),
                e.kind().status()
            )))
        }
    }
}

/// Initial memory above which `check` suggests a smaller stack: wasmi
/// zero-fills the whole initial memory at every instantiation.
const LARGE_INITIAL_MEMORY_KIB: u64 = 256;

fn check(target: &Path, limits: &LimitArgs) -> Result<(), CliError> {
    let runtime = Runtime::new();
    let config = limits.config()?;
    let files = if target.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(target)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", target.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        files
    } else {
        vec![target.to_owned()]
    };
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for file in &files {
        let function = limits.function(&config, file)?;
        match cache::load(&runtime, file, function.abi, &config.server) {
            Ok(loaded) => {
                let _ = writeln!(out, "{}", describe(file, &loaded, &function.limits));
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "{}: error: {e}", file.display());
            }
        }
    }
    match (files.len(), failed) {
        (0, _) => Err(CliError::Runtime(format!(
            "{}: no .wasm files",
            target.display()
        ))),
        (_, 0) => Ok(()),
        (n, f) => Err(CliError::Runtime(format!(
            "{f} of {n} module(s) failed the check"
        ))),
    }
}

/// What `check` can say statically about an http-wasm module's features:
/// a guest enables them at run time (`enable_features`), so only whether
/// it can, and what its imports let it touch.
fn http_wasm_features(m: &wasmi::Module) -> String {
    use crate::runtime::exchange::{BUFFER_REQUEST, BUFFER_RESPONSE, SUPPORTED, TRAILERS};
    let imported = |name: &str| {
        m.imports()
            .any(|i| i.module() == crate::runtime::imports::http_handler::NAME && i.name() == name)
    };
    let features = if imported("enable_features") {
        let granted = |bit: u32| {
            if SUPPORTED & bit != 0 {
                ""
            } else {
                " (never granted)"
            }
        };
        format!(
            "imports enable_features: it may enable buffer_request, buffer_response, trailers{} at run time (buffer_request{} and buffer_response{} are granted)",
            granted(TRAILERS),
            granted(BUFFER_REQUEST),
            granted(BUFFER_RESPONSE),
        )
    } else {
        "does not import enable_features: it runs with no feature enabled".to_owned()
    };
    let mut touches = Vec::new();
    if imported("read_body") || imported("write_body") {
        touches.push("bodies");
    }
    if ["set_header_value", "add_header_value", "remove_header"]
        .iter()
        .any(|f| imported(f))
    {
        touches.push("writes headers");
    }
    if imported("set_status_code") {
        touches.push("sets the status");
    }
    if imported("get_config") {
        touches.push("reads its config");
    }
    let touches = match touches.is_empty() {
        true => String::new(),
        false => format!("; {}", touches.join(", ")),
    };
    format!("http-wasm: {features}{touches}")
}

/// What `check` prints about a module that loads. Names come from the
/// module, so they are escaped: a name cannot forge a line of output.
fn describe(file: &Path, loaded: &cache::Compiled, limits: &FunctionLimits) -> String {
    use std::fmt::Write as _;
    let (m, shape) = (&loaded.module, &loaded.shape);
    let mut text = format!("{}: ok\n  abi: {}\n", file.display(), loaded.abi);
    let imports: Vec<String> = m
        .imports()
        .map(|i| format!("{}.{}", i.module().escape_debug(), i.name().escape_debug()))
        .collect();
    let imports = match imports.is_empty() {
        true => "(none)".to_owned(),
        false => imports.join(", "),
    };
    let exports: Vec<String> = m
        .exports()
        .map(|e| e.name().escape_debug().to_string())
        .collect();
    let _ = writeln!(
        text,
        "  imports: {imports}\n  exports: {}",
        exports.join(", ")
    );
    if loaded.abi == crate::abi::Abi::HttpWasm {
        let _ = writeln!(text, "  {}", http_wasm_features(m));
    }
    for (name, ty) in crate::runtime::imports::gojinn::stubs(m) {
        let value = crate::runtime::imports::gojinn::error_value(&ty);
        let _ = writeln!(
            text,
            "  stubbed: gojinn.{} is not provided; a call returns {}",
            name.escape_debug(),
            crate::runtime::imports::gojinn::show(value.as_ref())
        );
    }
    let _ = writeln!(
        text,
        "  structure: {} functions, {} globals, {} table elements, {} data segments ({} bytes), {} exports ({} bytes of names)",
        shape.functions,
        shape.globals,
        shape.table_elements,
        shape.data_segments,
        shape.data_bytes,
        shape.exports,
        shape.export_name_bytes
    );
    let _ = write!(
        text,
        "  per request: {} fuel to instantiate, at least {} KiB of the memory limit",
        loaded.cost.fuel,
        shape.initial_bytes().div_ceil(1024)
    );
    for e in m.exports() {
        if let ExternType::Memory(ty) = e.ty() {
            let max = ty
                .maximum()
                .map_or("no maximum".to_owned(), |p| format!("maximum {p} pages"));
            let kib = ty.minimum().saturating_mul(64);
            let _ = write!(
                text,
                "\n  memory `{}`: {} pages ({kib} KiB) initial, {max}",
                e.name().escape_debug(),
                ty.minimum(),
            );
            if kib > LARGE_INITIAL_MEMORY_KIB {
                let toolchain = std::fs::read(file).ok().and_then(|b| Toolchain::of(&b));
                let _ = write!(
                    text,
                    "\n  note: the initial memory is zero-filled on every request; most of it is\n  {}",
                    stack_advice(toolchain)
                );
            }
        }
    }
    let _ = write!(text, "\n  signature: {}", loaded.signature);
    let _ = write!(
        text,
        "\n  limits in force: fuel {}, memory {}, timeout {}",
        limits.fuel,
        show_size(limits.memory),
        show_duration(limits.timeout)
    );
    if let Err(e) = shape.fits(limits.memory) {
        let _ = write!(
            text,
            "\n  warning: {e}: every request would be refused (503 module-unavailable)"
        );
    }
    if loaded.cost.fuel > limits.fuel {
        let _ = write!(
            text,
            "\n  warning: instantiating it costs {} fuel, more than the `fuel` budget ({}): every request would end in 504 deadline",
            loaded.cost.fuel, limits.fuel
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command, CliError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse_str(&[]).unwrap(), Command::Help(USAGE));
        assert_eq!(parse_str(&["--version"]).unwrap(), Command::Version);
        assert_eq!(
            parse_str(&["serve", "fns", "--listen", "0.0.0.0:1", "--board", "rpi4b"]).unwrap(),
            Command::Serve {
                dir: Some("fns".into()),
                config: None,
                listen: Some("0.0.0.0:1".into()),
                board: Some("rpi4b".into()),
            }
        );
        assert_eq!(parse_str(&["calibrate"]).unwrap(), Command::Calibrate);
        let Command::Run(run) = parse_str(&[
            "run", "m.wasm", "-X", "post", "--header", "A: b", "--body", "x",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(run.method, "POST");
        assert_eq!(run.headers, vec![("a".to_owned(), "b".to_owned())]);
        assert_eq!(
            parse_str(&["serve", "--help"]).unwrap(),
            Command::Help(SERVE_USAGE)
        );
        assert_eq!(
            parse_str(&["keygen", "--out", "k"]).unwrap(),
            Command::Keygen("k".into())
        );
        assert_eq!(
            parse_str(&["sign", "m.wasm", "--key", "k"]).unwrap(),
            Command::Sign(sign::SignArgs {
                module: "m.wasm".into(),
                key: "k".into(),
                output: sign::SignOutput::Detached,
            })
        );
        assert_eq!(
            parse_str(&["sign", "fns/m.wasm", "--key", "k", "--gojinn"]).unwrap(),
            Command::Sign(sign::SignArgs {
                module: "fns/m.wasm".into(),
                key: "k".into(),
                output: sign::SignOutput::Gojinn("fns/m.signed.wasm".into()),
            })
        );
        assert_eq!(
            parse_str(&["sign", "m", "-k", "k", "-g", "-o", "out.wasm"]).unwrap(),
            Command::Sign(sign::SignArgs {
                module: "m".into(),
                key: "k".into(),
                output: sign::SignOutput::Gojinn("out.wasm".into()),
            })
        );
        assert_eq!(
            sign::gojinn_path(std::path::Path::new("m")),
            std::path::Path::new("m.signed.wasm")
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        for bad in [
            &["frobnicate"][..],
            &["run"],
            &["run", "m", "--header", "nocolon"],
            &["serve", "--bogus"],
            &["check"],
            &["keygen"],
            &["keygen", "--out"],
            &["sign", "m.wasm"],
            &["sign", "--key", "k"],
            &["sign", "a", "b", "--key", "k"],
            &["sign", "m.wasm", "--key", "k", "--out", "o.wasm"],
            &["sign", "m.wasm", "--key", "k", "--gojinn", "--out"],
        ] {
            let e = parse_str(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }
}
