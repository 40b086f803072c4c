//! `wasmgate.toml`: raw TOML is parsed, then validated into the [`Config`]
//! the server uses. Every key is optional; unknown keys and bad values are
//! errors naming the file, the line and the key.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"
//! functions_dir = "functions"   # serve DIR/NAME.wasm at /NAME
//! max_body = "1MiB"
//!
//! [limits]                      # defaults for every function
//! fuel = 100_000_000
//! memory = "16MiB"
//!
//! [[function]]
//! route = "/api/*"              # a trailing /* makes a prefix route
//! module = "functions/echo.wasm"
//! methods = ["GET", "POST"]
//! limits = { fuel = 5_000_000 }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::board::{self, Board};
use crate::error::ConfigError;
use crate::limits::{FUEL_PER_MS_RANGE, FunctionLimits, MAX_FUEL, ModuleLimits, ServerLimits};

/// The default listen address: loopback only, exposing the server is a choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Which ABI a function speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbiChoice {
    /// Detect from the module's exports.
    Auto,
    /// `wasmgate_alloc` / `wasmgate_handle`, postcard messages.
    Native,
    /// WASI command, JSON on stdin and stdout (the Gojinn contract).
    WasiJson,
}

/// One function: where it is served and what it may use.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The name in logs and error bodies (defaults to the module file stem).
    pub name: String,
    /// The path it is served at, without a trailing `/*`.
    pub route: String,
    /// Whether `route` also matches every path below it.
    pub prefix: bool,
    /// The module file.
    pub module: PathBuf,
    /// Allowed methods (upper case); `None` allows all.
    pub methods: Option<Vec<String>>,
    /// The ABI, or `Auto` to detect it.
    pub abi: AbiChoice,
    /// Environment variables the guest sees (wasi-json), and nothing else.
    pub env: Vec<(String, String)>,
    /// Arguments the guest sees (wasi-json), after the program name.
    pub args: Vec<String>,
    /// Its limits.
    pub limits: FunctionLimits,
    /// Whether it was made from a request path (`/NAME` in `functions_dir`)
    /// rather than configured: then a missing module file means there is no
    /// such function (404), not a broken one (503).
    pub from_functions_dir: bool,
}

impl FunctionSpec {
    /// A function served from a functions directory: `/NAME` → `DIR/NAME.wasm`.
    pub fn from_dir(dir: &Path, name: &str, limits: &FunctionLimits) -> Self {
        Self {
            name: name.to_owned(),
            route: format!("/{name}"),
            prefix: true,
            module: dir.join(format!("{name}.wasm")),
            methods: None,
            abi: AbiChoice::Auto,
            env: Vec::new(),
            args: Vec::new(),
            limits: limits.clone(),
            from_functions_dir: true,
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Server-wide limits.
    pub server: ServerLimits,
    /// Limits for functions that set none of their own.
    pub defaults: FunctionLimits,
    /// Explicitly configured functions, matched before `functions_dir`.
    pub functions: Vec<FunctionSpec>,
    /// Directory whose `NAME.wasm` files are served at `/NAME`.
    pub functions_dir: Option<PathBuf>,
    /// The board profile the defaults came from, if any.
    pub board: Option<Board>,
    /// Instructions per millisecond on this machine (from the board profile
    /// or `[server] fuel_per_ms`); turns a `timeout` into a fuel budget.
    pub fuel_per_ms: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("default listen address is valid"),
            server: ServerLimits::default(),
            defaults: FunctionLimits::default(),
            functions: Vec::new(),
            functions_dir: None,
            board: None,
            fuel_per_ms: None,
        }
    }
}

impl Config {
    /// Reads and validates a config file. Relative paths in it are relative
    /// to the file's directory. `board` (from `--board`) overrides the file's
    /// `board` key.
    pub fn load(path: &Path, board: Option<&str>) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base, board)
    }

    /// Parses and validates config text; `source` names it in errors and
    /// `base` is the directory relative paths (and `boards/`) are under.
    pub fn parse(
        text: &str,
        source: &str,
        base: &Path,
        board: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let ctx = Ctx { text, source };
        let raw: RawConfig = ctx.toml(text)?;
        let defaults = match board.or(raw.board.as_ref().map(|b| b.get_ref().as_str())) {
            Some(name) => Self::for_board(name, base)?,
            None => Config::default(),
        };
        ctx.validate(raw, base, defaults)
    }

    /// The defaults of board profile `name` (see [`crate::board`]), looked
    /// up in `dir/boards/` first, then among the built-in profiles.
    pub fn for_board(name: &str, dir: &Path) -> Result<Self, ConfigError> {
        let (source, text) = board::find(name, dir)?;
        let ctx = Ctx {
            text: &text,
            source: &source,
        };
        let raw: RawBoard = ctx.toml(&text)?;
        ctx.validate_board(raw, name)
    }

    /// Parses a `--listen` value.
    pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
        let mut addrs = value
            .to_socket_addrs()
            .map_err(|e| format!("{value:?} is not an address to listen on (HOST:PORT): {e}"))?;
        addrs
            .next()
            .ok_or_else(|| format!("{value:?} resolves to no address"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    board: Option<Spanned<String>>,
    server: Option<RawServer>,
    limits: Option<RawLimits>,
    #[serde(default, rename = "function")]
    functions: Vec<RawFunction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    functions_dir: Option<Spanned<String>>,
    fuel_per_ms: Option<Spanned<Int>>,
    max_connections: Option<Spanned<Int>>,
    max_connections_per_ip: Option<Spanned<Int>>,
    max_in_flight: Option<Spanned<Int>>,
    memory_budget: Option<Spanned<Size>>,
    max_body: Option<Spanned<Size>>,
    max_header_bytes: Option<Spanned<Size>>,
    max_headers: Option<Spanned<Int>>,
    idle_timeout: Option<Spanned<Time>>,
    header_timeout: Option<Spanned<Time>>,
    body_timeout: Option<Spanned<Time>>,
    write_timeout: Option<Spanned<Time>>,
    module_cache: Option<Spanned<Int>>,
    module_check_interval: Option<Spanned<Time>>,
    max_module_size: Option<Spanned<Size>>,
    module_cache_bytes: Option<Spanned<Size>>,
    max_module_globals: Option<Spanned<Int>>,
    max_module_functions: Option<Spanned<Int>>,
    max_module_table_elements: Option<Spanned<Int>>,
    max_module_element_segments: Option<Spanned<Int>>,
    max_module_data_segments: Option<Spanned<Int>>,
    min_module_function_bytes: Option<Spanned<Int>>,
    max_module_imports: Option<Spanned<Int>>,
    max_module_function_size: Option<Spanned<Size>>,
    max_module_nesting: Option<Spanned<Int>>,
    retry_after: Option<Spanned<Time>>,
}

/// A board profile file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    name: String,
    target: String,
    cpu: String,
    cores: Spanned<Int>,
    ram: Spanned<Size>,
    fuel_per_ms: Option<Spanned<Int>>,
    server: Option<RawServer>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    fuel: Option<Spanned<Int>>,
    fuel_slice: Option<Spanned<Int>>,
    timeout: Option<Spanned<Time>>,
    memory: Option<Spanned<Size>>,
    max_response: Option<Spanned<Size>>,
    max_log: Option<Spanned<Size>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: Option<Spanned<String>>,
    route: Spanned<String>,
    module: Spanned<String>,
    methods: Option<Spanned<Vec<Spanned<String>>>>,
    abi: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    args: Option<Spanned<Vec<String>>>,
    limits: Option<RawLimits>,
}

/// An integer value. Its own `Deserialize` so that a type error says "must
/// be an integer, got a boolean" rather than naming a Rust type; 128 bits
/// so that a range error shows even a number past `u64` as written.
struct Int(i128);

/// A size or duration: an integer (bytes, milliseconds) or a string with a
/// unit (`"16MiB"`, `"250ms"`); `U` says which, for error messages.
struct Quantity<U> {
    amount: Amount,
    unit: PhantomData<U>,
}

enum Amount {
    Int(i128),
    Text(String),
}

/// What a [`Quantity`] measures, in the words of a type error.
trait Unit {
    const EXPECTED: &'static str;
}

/// Bytes.
struct Bytes;
/// Milliseconds.
struct Millis;

impl Unit for Bytes {
    const EXPECTED: &'static str = "a size (an integer number of bytes or a string like \"16MiB\")";
}

impl Unit for Millis {
    const EXPECTED: &'static str =
        "a duration (an integer number of milliseconds or a string like \"250ms\")";
}

type Size = Quantity<Bytes>;
type Time = Quantity<Millis>;

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Int, E> {
                Ok(Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl<'de, U: Unit> Deserialize<'de> for Quantity<U> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<U>(PhantomData<U>);
        impl<U: Unit> serde::de::Visitor<'_> for Visitor<U> {
            type Value = Quantity<U>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(U::EXPECTED)
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Quantity::new(Amount::Int(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Quantity::new(Amount::Int(v.into())))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Self::Value, E> {
                Ok(Quantity::new(Amount::Int(v)))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
                Ok(Quantity::new(Amount::Int(
                    i128::try_from(v).unwrap_or(i128::MAX),
                )))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Quantity::new(Amount::Text(v.to_owned())))
            }
        }
        d.deserialize_any(Visitor(PhantomData))
    }
}

impl<U> Quantity<U> {
    fn new(amount: Amount) -> Self {
        Self {
            amount,
            unit: PhantomData,
        }
    }
}

/// Reads a config or board profile file as UTF-8 text; invalid UTF-8 is an
/// error naming its line and the offending byte.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let error = |line, message| ConfigError {
        source: path.display().to_string(),
        line,
        message,
    };
    let bytes =
        std::fs::read(path).map_err(|e| error(None, format!("cannot read config file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let byte = bytes.get(at).copied().unwrap_or_default();
        error(
            Some(line),
            format!("invalid UTF-8 (byte 0x{byte:02x}): a config file is UTF-8 text"),
        )
    })
}

struct Ctx<'a> {
    text: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn toml<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ConfigError> {
        // TOML allows no raw control character but tab, even in comments;
        // say which one and where, escaped, rather than a parser's guess.
        let raw_control = text
            .char_indices()
            .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
        if let Some((at, c)) = raw_control {
            return self.error(
                at..at,
                format!(
                    "a raw control character ({}) is not allowed; inside a string write it as an escape (\"\\u{:04x}\")",
                    c.escape_debug(),
                    u32::from(c)
                ),
            );
        }
        toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|s| key_at(text, s.start));
            ConfigError {
                source: self.source.to_owned(),
                line: e.span().map(|s| self.line_of(s.start)),
                message: describe(e.message().trim(), key.as_deref()),
            }
        })
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error<T>(&self, span: std::ops::Range<usize>, message: String) -> Result<T, ConfigError> {
        Err(ConfigError {
            source: self.source.to_owned(),
            line: Some(self.line_of(span.start)),
            message,
        })
    }

    /// An integer key in `range` (see the `*_RANGE` constants in
    /// [`crate::limits`]), or `default` when it is absent.
    fn count<T: TryFrom<u64>>(
        &self,
        key: &str,
        value: &Option<Spanned<Int>>,
        default: T,
        range: RangeInclusive<u64>,
    ) -> Result<T, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let n = v.get_ref().0;
        match in_range(u64::try_from(n).ok(), &range) {
            Some(n) => Ok(n),
            None => self.error(
                v.span(),
                format!(
                    "`{key}` must be between {} and {}, got {n}",
                    range.start(),
                    range.end()
                ),
            ),
        }
    }

    /// A size key in `range`, or `default` when it is absent.
    fn size<T: TryFrom<u64>>(
        &self,
        key: &str,
        value: &Option<Spanned<Size>>,
        default: T,
        range: RangeInclusive<u64>,
    ) -> Result<T, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let parsed = match &v.get_ref().amount {
            Amount::Int(n) => u64::try_from(*n).map_err(|_| format!("{n} bytes")),
            Amount::Text(s) => parse_size(s).map_err(|why| format!("`{key}` {why}")),
        };
        let bytes = match parsed {
            Ok(bytes) => bytes,
            Err(why) if why.starts_with('`') => return self.error(v.span(), why),
            Err(got) => return self.range_error(v.span(), key, &range, got, show_size),
        };
        match in_range(Some(bytes), &range) {
            Some(n) => Ok(n),
            None => self.range_error(v.span(), key, &range, show_size(bytes), show_size),
        }
    }

    /// A duration key in `range`, or `default` when it is absent.
    fn duration(
        &self,
        key: &str,
        value: &Option<Spanned<Time>>,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let parsed = match &v.get_ref().amount {
            Amount::Int(n) => u64::try_from(*n)
                .map(Duration::from_millis)
                .map_err(|_| format!("{n} ms")),
            Amount::Text(s) => parse_duration(s).map_err(|why| format!("`{key}` {why}")),
        };
        match parsed {
            Ok(d) if range.contains(&d) => Ok(d),
            Ok(d) => self.range_error(v.span(), key, &range, show_duration(d), show_duration),
            Err(why) if why.starts_with('`') => self.error(v.span(), why),
            Err(got) => self.range_error(v.span(), key, &range, got, show_duration),
        }
    }

    fn range_error<T, R: Copy>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        range: &RangeInclusive<R>,
        got: String,
        show: fn(R) -> String,
    ) -> Result<T, ConfigError> {
        self.error(
            span,
            format!(
                "`{key}` must be between {} and {}, got {got}",
                show(*range.start()),
                show(*range.end())
            ),
        )
    }

    /// Limits from `raw` over `base`. With `fuel_per_ms` known, a `timeout`
    /// given without a `fuel` at the same level also sets the fuel budget to
    /// what the timeout is worth on this board, and the wall-clock backstop
    /// to twice the timeout: the budget decides, the clock only backs it up.
    fn limits(
        &self,
        raw: &RawLimits,
        base: &FunctionLimits,
        fuel_per_ms: Option<u64>,
    ) -> Result<FunctionLimits, ConfigError> {
        type L = FunctionLimits;
        let mut limits = FunctionLimits {
            fuel: self.count("fuel", &raw.fuel, base.fuel, L::FUEL_RANGE)?,
            fuel_slice: self.count(
                "fuel_slice",
                &raw.fuel_slice,
                base.fuel_slice,
                L::FUEL_SLICE_RANGE,
            )?,
            timeout: self.duration("timeout", &raw.timeout, base.timeout, L::TIMEOUT_RANGE)?,
            memory: self.size("memory", &raw.memory, base.memory, L::MEMORY_RANGE)?,
            max_response: self.size(
                "max_response",
                &raw.max_response,
                base.max_response,
                L::MAX_RESPONSE_RANGE,
            )?,
            max_log: self.size("max_log", &raw.max_log, base.max_log, L::MAX_LOG_RANGE)?,
        };
        if let (None, Some(_), Some(per_ms)) = (&raw.fuel, &raw.timeout, fuel_per_ms) {
            // At most 8.64e10 µs × 1e8 per ms (both ranges): no overflow,
            // and the result is within FUEL_RANGE; clamped all the same.
            let fuel = limits.timeout.as_micros().saturating_mul(per_ms.into()) / 1000;
            limits.fuel = u64::try_from(fuel).unwrap_or(MAX_FUEL).clamp(1, MAX_FUEL);
            limits.timeout = limits.timeout.saturating_mul(2);
        }
        Ok(limits)
    }

    fn validate(
        &self,
        raw: RawConfig,
        base: &Path,
        defaults: Config,
    ) -> Result<Config, ConfigError> {
        let mut config = defaults;
        if let Some(s) = raw.server {
            if let Some(listen) = &s.listen {
                config.listen = match Config::parse_listen(listen.get_ref()) {
                    Ok(addr) => addr,
                    Err(why) => return self.error(listen.span(), format!("`listen`: {why}")),
                };
            }
            if let Some(dir) = &s.functions_dir {
                let path = base.join(dir.get_ref());
                let why = match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_dir() => None,
                    Ok(_) => Some("is not a directory".to_owned()),
                    Err(e) => Some(format!("cannot be used: {e}")),
                };
                if let Some(why) = why {
                    return self.error(
                        dir.span(),
                        format!("`functions_dir` {:?} {why}", path.display().to_string()),
                    );
                }
                config.functions_dir = Some(path);
            }
            if s.fuel_per_ms.is_some() {
                config.fuel_per_ms =
                    Some(self.count("fuel_per_ms", &s.fuel_per_ms, 1, FUEL_PER_MS_RANGE)?);
            }
            config.server = self.server(&s, &config.server)?;
        }
        if let Some(l) = &raw.limits {
            config.defaults = self.limits(l, &config.defaults, config.fuel_per_ms)?;
        }
        for f in raw.functions {
            let spec = self.function(f, base, &config.defaults, config.fuel_per_ms)?;
            if let Some(other) = config
                .functions
                .iter()
                .find(|o| o.route == spec.route && o.prefix == spec.prefix)
            {
                return Err(ConfigError {
                    source: self.source.to_owned(),
                    line: None,
                    message: format!(
                        "route `{}` is given to both `{}` and `{}`",
                        spec.route, other.name, spec.name
                    ),
                });
            }
            config.functions.push(spec);
        }
        self.check_budget(&config)?;
        Ok(config)
    }

    /// Server limits from `s` over `d`.
    fn server(&self, s: &RawServer, d: &ServerLimits) -> Result<ServerLimits, ConfigError> {
        type L = ServerLimits;
        let limits = ServerLimits {
            max_connections: self.count(
                "max_connections",
                &s.max_connections,
                d.max_connections,
                L::MAX_CONNECTIONS_RANGE,
            )?,
            max_connections_per_ip: self.count(
                "max_connections_per_ip",
                &s.max_connections_per_ip,
                d.max_connections_per_ip,
                L::MAX_CONNECTIONS_PER_IP_RANGE,
            )?,
            max_in_flight: self.count(
                "max_in_flight",
                &s.max_in_flight,
                d.max_in_flight,
                L::MAX_IN_FLIGHT_RANGE,
            )?,
            memory_budget: self.size(
                "memory_budget",
                &s.memory_budget,
                d.memory_budget,
                L::MEMORY_BUDGET_RANGE,
            )?,
            max_body: self.size("max_body", &s.max_body, d.max_body, L::MAX_BODY_RANGE)?,
            max_header_bytes: self.size(
                "max_header_bytes",
                &s.max_header_bytes,
                d.max_header_bytes,
                L::MAX_HEADER_BYTES_RANGE,
            )?,
            max_headers: self.count(
                "max_headers",
                &s.max_headers,
                d.max_headers,
                L::MAX_HEADERS_RANGE,
            )?,
            idle_timeout: self.duration(
                "idle_timeout",
                &s.idle_timeout,
                d.idle_timeout,
                L::TIMEOUT_RANGE,
            )?,
            header_timeout: self.duration(
                "header_timeout",
                &s.header_timeout,
                d.header_timeout,
                L::TIMEOUT_RANGE,
            )?,
            body_timeout: self.duration(
                "body_timeout",
                &s.body_timeout,
                d.body_timeout,
                L::TIMEOUT_RANGE,
            )?,
            write_timeout: self.duration(
                "write_timeout",
                &s.write_timeout,
                d.write_timeout,
                L::TIMEOUT_RANGE,
            )?,
            module_cache: self.count(
                "module_cache",
                &s.module_cache,
                d.module_cache,
                L::MODULE_CACHE_RANGE,
            )?,
            module_check_interval: self.duration(
                "module_check_interval",
                &s.module_check_interval,
                d.module_check_interval,
                L::MODULE_CHECK_INTERVAL_RANGE,
            )?,
            max_module_size: self.size(
                "max_module_size",
                &s.max_module_size,
                d.max_module_size,
                L::MAX_MODULE_SIZE_RANGE,
            )?,
            module_cache_bytes: self.size(
                "module_cache_bytes",
                &s.module_cache_bytes,
                d.module_cache_bytes,
                L::MODULE_CACHE_BYTES_RANGE,
            )?,
            module: self.module_limits(s, &d.module)?,
            retry_after_secs: self.retry_after(s, d)?,
        };
        // Bodies being read may hold at most a share of the budget.
        if limits.max_body > limits.memory_budget / crate::limits::BODY_SHARE_DIVISOR {
            let span = s.max_body.as_ref().or(s.memory_budget.as_ref());
            return self.error(
                span.map_or(0..0, |v| v.span()),
                format!(
                    "`max_body` ({}) is larger than half of `memory_budget` ({}): bodies being read may hold at most half the budget",
                    show_size(limits.max_body),
                    show_size(limits.memory_budget)
                ),
            );
        }
        Ok(limits)
    }

    /// `retry_after`: whole seconds, as `Retry-After` sends them.
    fn retry_after(&self, s: &RawServer, d: &ServerLimits) -> Result<u32, ConfigError> {
        let default = Duration::from_secs(d.retry_after_secs.into());
        let range = ServerLimits::RETRY_AFTER_RANGE;
        let after = self.duration("retry_after", &s.retry_after, default, range)?;
        match (after.subsec_nanos(), u32::try_from(after.as_secs())) {
            (0, Ok(secs)) => Ok(secs),
            _ => self.error(
                s.retry_after.as_ref().map_or(0..0, |v| v.span()),
                format!(
                    "`retry_after` must be whole seconds, got {}",
                    show_duration(after)
                ),
            ),
        }
    }

    /// Structural module limits from `s` over `d`.
    fn module_limits(&self, s: &RawServer, d: &ModuleLimits) -> Result<ModuleLimits, ConfigError> {
        type M = ModuleLimits;
        Ok(ModuleLimits {
            max_globals: self.count(
                "max_module_globals",
                &s.max_module_globals,
                d.max_globals,
                M::MAX_GLOBALS_RANGE,
            )?,
            max_functions: self.count(
                "max_module_functions",
                &s.max_module_functions,
                d.max_functions,
                M::MAX_FUNCTIONS_RANGE,
            )?,
            max_table_elements: self.count(
                "max_module_table_elements",
                &s.max_module_table_elements,
                d.max_table_elements,
                M::MAX_TABLE_ELEMENTS_RANGE,
            )?,
            max_element_segments: self.count(
                "max_module_element_segments",
                &s.max_module_element_segments,
                d.max_element_segments,
                M::MAX_SEGMENTS_RANGE,
            )?,
            max_data_segments: self.count(
                "max_module_data_segments",
                &s.max_module_data_segments,
                d.max_data_segments,
                M::MAX_SEGMENTS_RANGE,
            )?,
            min_function_bytes: self.count(
                "min_module_function_bytes",
                &s.min_module_function_bytes,
                d.min_function_bytes,
                M::MIN_FUNCTION_BYTES_RANGE,
            )?,
            max_imports: self.count(
                "max_module_imports",
                &s.max_module_imports,
                d.max_imports,
                M::MAX_IMPORTS_RANGE,
            )?,
            max_function_bytes: self.size(
                "max_module_function_size",
                &s.max_module_function_size,
                d.max_function_bytes,
                M::MAX_FUNCTION_BYTES_RANGE,
            )?,
            max_nesting: self.count(
                "max_module_nesting",
                &s.max_module_nesting,
                d.max_nesting,
                M::MAX_NESTING_RANGE,
            )?,
        })
    }

    /// A board profile: its description, then its defaults over the
    /// built-in ones.
    fn validate_board(&self, raw: RawBoard, key: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(s) = &raw.server {
            let misplaced = [
                ("listen", s.listen.as_ref().map(|v| v.span())),
                ("functions_dir", s.functions_dir.as_ref().map(|v| v.span())),
            ];
            for (k, span) in misplaced {
                if let Some(span) = span {
                    return self.error(
                        span,
                        format!("`{k}` belongs in wasmgate.toml, not in a board profile"),
                    );
                }
            }
            config.server = self.server(s, &config.server)?;
        }
        config.fuel_per_ms = match &raw.fuel_per_ms {
            Some(_) => Some(self.count("fuel_per_ms", &raw.fuel_per_ms, 1, FUEL_PER_MS_RANGE)?),
            None => None,
        };
        if let Some(l) = &raw.limits {
            config.defaults = self.limits(l, &config.defaults, config.fuel_per_ms)?;
        }
        config.board = Some(Board {
            key: key.to_owned(),
            name: raw.name,
            target: raw.target,
            cpu: raw.cpu,
            cores: self.count("cores", &Some(raw.cores), 1, board::CORES_RANGE)?,
            ram: self.size("ram", &Some(raw.ram), 1, board::RAM_RANGE)?,
        });
        self.check_budget(&config)?;
        Ok(config)
    }

    /// A function whose `memory` plus `max_response` (what admission
    /// reserves) exceeds the whole budget could never be admitted: say so
    /// at start-up rather than answer 503 for ever.
    fn check_budget(&self, config: &Config) -> Result<(), ConfigError> {
        let budget = config.server.memory_budget;
        let dir_default = config
            .functions_dir
            .as_ref()
            .map(|_| ("functions_dir", &config.defaults));
        let named = config
            .functions
            .iter()
            .map(|f| (f.name.as_str(), &f.limits));
        for (name, limits) in dir_default.into_iter().chain(named) {
            let reserved = limits.memory.saturating_add(limits.max_response);
            if reserved > budget {
                return Err(ConfigError {
                    source: self.source.to_owned(),
                    line: None,
                    message: format!(
                        "`memory` plus `max_response` of {name} ({} + {} bytes) is larger than `memory_budget` ({budget} bytes): it could never run",
                        limits.memory, limits.max_response
                    ),
                });
            }
        }
        Ok(())
    }

    /// `methods`: HTTP tokens (RFC 9110 §5.6.2), matched case-insensitively
    /// by normalising them to upper case (request methods are compared as
    /// sent, and every registered method is upper case). An empty list would
    /// match nothing and is refused.
    fn methods(&self, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ConfigError> {
        if list.get_ref().is_empty() {
            return self.error(
                list.span(),
                "`methods` is empty: the function could never be called (leave the key out to allow every method)".to_owned(),
            );
        }
        let mut out: Vec<String> = Vec::new();
        for m in list.into_inner() {
            let upper = m.get_ref().to_ascii_uppercase();
            if upper.is_empty() || !upper.bytes().all(is_token_byte) {
                return self.error(
                    m.span(),
                    format!(
                        "`methods`: {:?} is not an HTTP method (a token like \"GET\")",
                        m.get_ref()
                    ),
                );
            }
            if !out.contains(&upper) {
                out.push(upper);
            }
        }
        Ok(out)
    }

    fn function(
        &self,
        f: RawFunction,
        base: &Path,
        defaults: &FunctionLimits,
        fuel_per_ms: Option<u64>,
    ) -> Result<FunctionSpec, ConfigError> {
        let route_text = f.route.get_ref();
        let (route, prefix) = match route_text.strip_suffix("/*") {
            Some(r) => (if r.is_empty() { "/" } else { r }, true),
            None => (route_text.as_str(), false),
        };
        if !route.starts_with('/')
            || route.contains(['?', '#', '*'])
            || route.contains(|c: char| c.is_control() || c.is_whitespace())
        {
            return self.error(
                f.route.span(),
                format!("`route` must be a path starting with `/` (optionally ending in `/*`), got {route_text:?}"),
            );
        }
        let module = base.join(f.module.get_ref());
        let name = match &f.name {
            Some(n) => n.get_ref().clone(),
            None => module
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if name.contains(char::is_control) {
            let span = f.name.as_ref().unwrap_or(&f.module).span();
            return self.error(
                span,
                format!("`name` {name:?} contains a control character (it is written to logs)"),
            );
        }
        let methods = match f.methods {
            None => None,
            Some(list) => Some(self.methods(list)?),
        };
        let abi = match &f.abi {
            None => AbiChoice::Auto,
            Some(a) => match a.get_ref().as_str() {
                "auto" => AbiChoice::Auto,
                "native" => AbiChoice::Native,
                "wasi-json" => AbiChoice::WasiJson,
                other => {
                    return self.error(
                        a.span(),
                        format!(
                            "`abi` must be \"auto\", \"native\" or \"wasi-json\", got {other:?}"
                        ),
                    );
                }
            },
        };
        let limits = match &f.limits {
            Some(l) => self.limits(l, defaults, fuel_per_ms)?,
            None => defaults.clone(),
        };
        // The guest reads `environ` as `NAME=value` strings and both `environ`
        // and `args` as NUL-terminated strings: a `=` in a name or a NUL
        // anywhere would reach it as a different variable or a cut string.
        let (env, env_span) = match f.env {
            Some(e) => {
                let span = e.span();
                (e.into_inner(), span)
            }
            None => (BTreeMap::new(), 0..0),
        };
        for (key, value) in &env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return self.error(
                    env_span,
                    format!(
                        "`env` name {key:?} must be non-empty, without `=` or NUL (the guest reads `NAME=value`)"
                    ),
                );
            }
            if value.contains('\0') {
                return self.error(
                    env_span,
                    format!("`env` value of {key:?} contains a NUL (the guest reads NUL-terminated strings)"),
                );
            }
        }
        let (args, args_span) = match f.args {
            Some(a) => {
                let span = a.span();
                (a.into_inner(), span)
            }
            None => (Vec::new(), 0..0),
        };
        if let Some((i, arg)) = args.iter().enumerate().find(|(_, a)| a.contains('\0')) {
            return self.error(
                args_span,
                format!("`args` item {i} ({arg:?}) contains a NUL (the guest reads NUL-terminated strings)"),
            );
        }
        Ok(FunctionSpec {
            name,
            route: route.to_owned(),
            prefix,
            module,
            methods,
            abi,
            env: env.into_iter().collect(),
            args,
            limits,
            from_functions_dir: false,
        })
    }
}

/// Whether `b` may appear in an HTTP token (RFC 9110 §5.6.2 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `n` as a `T` if it is in `range`.
fn in_range<T: TryFrom<u64>>(n: Option<u64>, range: &RangeInclusive<u64>) -> Option<T> {
    n.filter(|n| range.contains(n))
        .and_then(|n| T::try_from(n).ok())
}

/// Rewrites a deserializer's message so that it names `key` and says what
/// was expected in the words of the README: "invalid type: boolean `true`,
/// expected a size (…)" becomes "`max_body` must be a size (…), got a
/// boolean".
fn describe(message: &str, key: Option<&str>) -> String {
    let named = key.map_or_else(|| "the value".to_owned(), |k| format!("`{k}`"));
    if let Some((got, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        let expected = match expected {
            "a sequence" => "an array",
            "a map" => "a table",
            e if e.starts_with("struct ") => "a table",
            e => e,
        };
        let got = match got.split(' ').next().unwrap_or_default() {
            "boolean" => "a boolean",
            "integer" => "an integer",
            "floating" => "a float",
            "string" | "character" => "a string",
            "sequence" => "an array",
            "map" => "a table",
            _ => got,
        };
        return format!("{named} must be {expected}, got {got}");
    }
    match key {
        Some(k) if !message.contains(&format!("`{k}`")) => format!("{named}: {message}"),
        _ => message.to_owned(),
    }
}

/// The key whose value (or name) is at byte `pos` of `text`: the innermost
/// one, so `limits = { fuel = true }` names `fuel`. Only used to word an
/// error, so the text is parsed again.
fn key_at(text: &str, pos: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn walk(table: &DeTable, pos: usize, best: &mut Option<(usize, String)>) {
        for (key, value) in table.iter() {
            let span = value.span();
            let hit = key.span().contains(&pos) || span.contains(&pos) || span.start == pos;
            let len = span.end.saturating_sub(span.start);
            if hit && best.as_ref().is_none_or(|(l, _)| len <= *l) {
                *best = Some((len, key.get_ref().to_string()));
            }
            walk_value(value.get_ref(), pos, best);
        }
    }
    fn walk_value(value: &DeValue, pos: usize, best: &mut Option<(usize, String)>) {
        match value {
            DeValue::Table(t) => walk(t, pos, best),
            DeValue::Array(a) => a.iter().for_each(|v| walk_value(v.get_ref(), pos, best)),
            _ => {}
        }
    }
    let root = DeTable::parse(text).ok()?;
    let mut best = None;
    walk(root.get_ref(), pos, &mut best);
    best.map(|(_, key)| key)
}

/// A size the way a config writes it: `"16MiB"`, or bytes.
fn show_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    match UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
    {
        Some((unit, name)) => format!("{}{name}", bytes / unit),
        None => format!("{bytes}B"),
    }
}

/// A duration the way a config writes it: `"24h"`, `"250ms"`.
fn show_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    match (secs, nanos) {
        (0, 0) => "0s".to_owned(),
        (s, 0) if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        (s, 0) if s.is_multiple_of(60) => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ if nanos.is_multiple_of(1_000_000) => format!("{}ms", d.as_millis()),
        _ => format!("{}us", d.as_micros()),
    }
}

/// Parses `"16MiB"`, `"512KiB"`, `"1GiB"`, `"2MB"`, `"4096"` (bytes) into bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a size like \"16MiB\", got {text:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "has an unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("is too large: {text:?}"))
}

/// Parses `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"100us"`, `"0s"` into a
/// duration.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a duration like \"250ms\" or \"5s\", got {text:?}"))?;
    match unit.trim() {
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        "" => Err(format!("needs a unit (us, ms, s, m, h): {text:?}")),
        other => Err(format!(
            "has an unknown duration unit {other:?} (use us, ms, s, m, h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
             max_module_imports = 11\nmax_module_function_size = \"12KiB\"\nmax_module_nesting = 13\n",
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
                max_function_bytes: 12 << 10,
                max_nesting: 13,
            }
        );
        assert_eq!(parse("").unwrap().server.module, ModuleLimits::default());
        for (text, key) in [
            ("max_module_globals = 0", "max_module_globals"),
            ("max_module_functions = 1_000_001", "max_module_functions"),
            ("max_module_imports = 100_001", "max_module_imports"),
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
        let e = parse("[[function]]\nroute = \"/x\"\nmodule = \"x.wasm\"\nabi = \"jvm\"\n")
            .unwrap_err();
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
        }
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
            refused(
                "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nmethods = [\"GET\\r\\n\"]\n",
            ),
            refused("[limits]\nmemory = \"1\\u0007GiB\"\n"),
            refused("[server]\nfunctions_dir = \"no\\u0000pe\"\n"),
        ] {
            let shown = e.to_string();
            assert!(!shown.contains(|c: char| c.is_control()), "{shown:?}");
            assert!(e.line.is_some(), "{shown}");
        }
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
                &format!(
                    "[[function]]\nroute = \"/a\"\nmodule = \"a.wasm\"\nmethods = {methods}\n"
                ),
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
}
