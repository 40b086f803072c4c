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
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::board::{self, Board};
use crate::error::ConfigError;
use crate::limits::{FunctionLimits, MAX_DURATION, ServerLimits};

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
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: path.display().to_string(),
            line: None,
            message: format!("cannot read config file: {e}"),
        })?;
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
            .map_err(|e| format!("`{value}` is not an address to listen on (HOST:PORT): {e}"))?;
        addrs
            .next()
            .ok_or_else(|| format!("`{value}` resolves to no address"))
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
    fuel_per_ms: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_ip: Option<Spanned<i64>>,
    max_in_flight: Option<Spanned<i64>>,
    memory_budget: Option<Spanned<Quantity>>,
    max_body: Option<Spanned<Quantity>>,
    max_header_bytes: Option<Spanned<Quantity>>,
    max_headers: Option<Spanned<i64>>,
    idle_timeout: Option<Spanned<Quantity>>,
    header_timeout: Option<Spanned<Quantity>>,
    body_timeout: Option<Spanned<Quantity>>,
    write_timeout: Option<Spanned<Quantity>>,
    module_cache: Option<Spanned<i64>>,
    module_check_interval: Option<Spanned<Quantity>>,
    max_module_size: Option<Spanned<Quantity>>,
    retry_after: Option<Spanned<Quantity>>,
}

/// A board profile file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    name: String,
    target: String,
    cpu: String,
    cores: Spanned<i64>,
    ram: Spanned<Quantity>,
    fuel_per_ms: Option<Spanned<i64>>,
    server: Option<RawServer>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    fuel: Option<Spanned<i64>>,
    fuel_slice: Option<Spanned<i64>>,
    timeout: Option<Spanned<Quantity>>,
    memory: Option<Spanned<Quantity>>,
    max_response: Option<Spanned<Quantity>>,
    max_log: Option<Spanned<Quantity>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: Option<Spanned<String>>,
    route: Spanned<String>,
    module: Spanned<String>,
    methods: Option<Vec<Spanned<String>>>,
    abi: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    args: Vec<String>,
    limits: Option<RawLimits>,
}

/// A size or duration: an integer (bytes, milliseconds) or a string with a
/// unit (`"16MiB"`, `"250ms"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Quantity {
    Int(i64),
    Text(String),
}

struct Ctx<'a> {
    text: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn toml<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError {
            source: self.source.to_owned(),
            line: e.span().map(|s| self.line_of(s.start)),
            message: e.message().trim().to_owned(),
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

    fn count(
        &self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() >= 1 => Ok(*v.get_ref() as usize),
            Some(v) => self.error(
                v.span(),
                format!("`{key}` must be at least 1, got {}", v.get_ref()),
            ),
        }
    }

    fn positive(
        &self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        self.count(key, value, default as usize).map(|n| n as u64)
    }

    fn size(
        &self,
        key: &str,
        value: &Option<Spanned<Quantity>>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let parsed = match v.get_ref() {
            Quantity::Int(n) if *n >= 1 => Ok(*n as u64),
            Quantity::Int(n) => Err(format!("must be at least 1 byte, got {n}")),
            Quantity::Text(s) => parse_size(s),
        };
        parsed.or_else(|why| self.error(v.span(), format!("`{key}` {why}")))
    }

    fn duration(
        &self,
        key: &str,
        value: &Option<Spanned<Quantity>>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.any_duration(key, value, default, false)
    }

    /// A duration where zero (`0`, `"0s"`) is allowed and means "every time".
    fn interval(
        &self,
        key: &str,
        value: &Option<Spanned<Quantity>>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.any_duration(key, value, default, true)
    }

    fn any_duration(
        &self,
        key: &str,
        value: &Option<Spanned<Quantity>>,
        default: Duration,
        zero_ok: bool,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let min_ms = if zero_ok { 0 } else { 1 };
        let parsed = match v.get_ref() {
            Quantity::Int(n) if *n >= min_ms => Ok(Duration::from_millis(*n as u64)),
            Quantity::Int(n) => Err(format!("must be at least {min_ms} ms, got {n}")),
            Quantity::Text(s) if zero_ok => parse_duration_or_zero(s),
            Quantity::Text(s) => parse_duration(s),
        }
        .and_then(|d| match d > MAX_DURATION {
            true => Err(format!("must be at most 24h, got {}s", d.as_secs())),
            false => Ok(d),
        });
        parsed.or_else(|why| self.error(v.span(), format!("`{key}` {why}")))
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
        let mut limits = FunctionLimits {
            fuel: self.positive("fuel", &raw.fuel, base.fuel)?,
            fuel_slice: self.positive("fuel_slice", &raw.fuel_slice, base.fuel_slice)?,
            timeout: self.duration("timeout", &raw.timeout, base.timeout)?,
            memory: self.size("memory", &raw.memory, base.memory)?,
            max_response: self.size("max_response", &raw.max_response, base.max_response)?,
            max_log: self.size("max_log", &raw.max_log, base.max_log)?,
        };
        if limits.memory < 64 * 1024 {
            let span = raw.memory.as_ref().map_or(0..0, |m| m.span());
            return self.error(
                span,
                format!(
                    "`memory` must be at least 64KiB (one Wasm page), got {} bytes",
                    limits.memory
                ),
            );
        }
        if let (None, Some(_), Some(per_ms)) = (&raw.fuel, &raw.timeout, fuel_per_ms) {
            let micros = u64::try_from(limits.timeout.as_micros()).unwrap_or(u64::MAX);
            limits.fuel = (micros.saturating_mul(per_ms) / 1000).max(1);
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
                config.functions_dir = Some(base.join(dir.get_ref()));
            }
            if s.fuel_per_ms.is_some() {
                config.fuel_per_ms = Some(self.positive("fuel_per_ms", &s.fuel_per_ms, 1)?);
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
        Ok(ServerLimits {
            max_connections: self.count(
                "max_connections",
                &s.max_connections,
                d.max_connections,
            )?,
            max_connections_per_ip: self.count(
                "max_connections_per_ip",
                &s.max_connections_per_ip,
                d.max_connections_per_ip,
            )?,
            max_in_flight: self.count("max_in_flight", &s.max_in_flight, d.max_in_flight)?,
            memory_budget: self.size("memory_budget", &s.memory_budget, d.memory_budget)?,
            max_body: self.size("max_body", &s.max_body, d.max_body)?,
            max_header_bytes: self.size(
                "max_header_bytes",
                &s.max_header_bytes,
                d.max_header_bytes as u64,
            )? as usize,
            max_headers: self.count("max_headers", &s.max_headers, d.max_headers)?,
            idle_timeout: self.duration("idle_timeout", &s.idle_timeout, d.idle_timeout)?,
            header_timeout: self.duration("header_timeout", &s.header_timeout, d.header_timeout)?,
            body_timeout: self.duration("body_timeout", &s.body_timeout, d.body_timeout)?,
            write_timeout: self.duration("write_timeout", &s.write_timeout, d.write_timeout)?,
            module_cache: self.count("module_cache", &s.module_cache, d.module_cache)?,
            module_check_interval: self.interval(
                "module_check_interval",
                &s.module_check_interval,
                d.module_check_interval,
            )?,
            max_module_size: self.size("max_module_size", &s.max_module_size, d.max_module_size)?,
            retry_after_secs: self
                .duration(
                    "retry_after",
                    &s.retry_after,
                    Duration::from_secs(d.retry_after_secs.into()),
                )?
                .as_secs()
                .clamp(1, u32::MAX.into()) as u32,
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
            Some(_) => Some(self.positive("fuel_per_ms", &raw.fuel_per_ms, 1)?),
            None => None,
        };
        if let Some(l) = &raw.limits {
            config.defaults = self.limits(l, &config.defaults, config.fuel_per_ms)?;
        }
        let cores = Some(raw.cores);
        config.board = Some(Board {
            key: key.to_owned(),
            name: raw.name,
            target: raw.target,
            cpu: raw.cpu,
            cores: u32::try_from(self.count("cores", &cores, 1)?).unwrap_or(u32::MAX),
            ram: self.size("ram", &Some(raw.ram), 1)?,
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
        if !route.starts_with('/') || route.contains(['?', '#', ' ', '*']) {
            return self.error(
                f.route.span(),
                format!("`route` must be a path starting with `/` (optionally ending in `/*`), got `{route_text}`"),
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
        let methods = match f.methods {
            None => None,
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for m in list {
                    let upper = m.get_ref().to_ascii_uppercase();
                    if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return self.error(
                            m.span(),
                            format!("`methods`: `{}` is not an HTTP method", m.get_ref()),
                        );
                    }
                    out.push(upper);
                }
                Some(out)
            }
        };
        let abi = match &f.abi {
            None => AbiChoice::Auto,
            Some(a) => {
                match a.get_ref().as_str() {
                    "auto" => AbiChoice::Auto,
                    "native" => AbiChoice::Native,
                    "wasi-json" => AbiChoice::WasiJson,
                    other => {
                        return self.error(a.span(), format!("`abi` must be \"auto\", \"native\" or \"wasi-json\", got \"{other}\""));
                    }
                }
            }
        };
        let limits = match &f.limits {
            Some(l) => self.limits(l, defaults, fuel_per_ms)?,
            None => defaults.clone(),
        };
        Ok(FunctionSpec {
            name,
            route: route.to_owned(),
            prefix,
            module,
            methods,
            abi,
            env: f.env.into_iter().collect(),
            args: f.args,
            limits,
            from_functions_dir: false,
        })
    }
}

/// Parses `"16MiB"`, `"512KiB"`, `"1GiB"`, `"2MB"`, `"4096"` (bytes) into bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a size like \"16MiB\", got \"{text}\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "has an unknown size unit \"{other}\" (use B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    match n.checked_mul(mult) {
        Some(0) => Err("must be at least 1 byte".to_owned()),
        Some(v) => Ok(v),
        None => Err(format!("is too large: \"{text}\"")),
    }
}

/// Parses `"250ms"`, `"5s"`, `"2m"`, `"100us"` into a duration longer than
/// zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    match parse_duration_or_zero(text)? {
        d if d.is_zero() => Err("must be longer than zero".to_owned()),
        d => Ok(d),
    }
}

/// Parses a duration like [`parse_duration`], `"0s"` included.
fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a duration like \"250ms\" or \"5s\", got \"{text}\""))?;
    match unit.trim() {
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "" => Err(format!("needs a unit (us, ms, s, m): \"{text}\"")),
        other => Err(format!(
            "has an unknown duration unit \"{other}\" (use us, ms, s, m)"
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
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("0s").is_err());
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
        assert!(e.message.contains("at most 24h"), "{e}");
        let e = parse(&format!("{key} = -1\n")).unwrap_err();
        assert!(e.message.contains("at least 0 ms"), "{e}");
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
        assert!(e.message.contains("at most 24h"), "{e}");
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
        let e = parse("[server]\nfunctions_dir = \".\"\nmemory_budget = \"1MiB\"\n").unwrap_err();
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
            // Every admitted request's memory limit fits the budget.
            let fit = c.server.memory_budget / c.defaults.memory;
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
}
