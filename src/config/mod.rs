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
//! middleware = ["verify"]       # http-wasm middleware, run in order
//!
//! [[middleware]]
//! name = "verify"
//! module = "functions/hmac-verify.wasm"
//! config = { header = "x-signature" }   # handed to the guest as JSON
//! ```

pub mod board;
#[cfg(test)]
mod differential;
pub(crate) mod extract;
mod load;
pub(crate) mod raw;
#[cfg(test)]
mod tests;
pub(crate) mod text;
pub(crate) mod toml;
pub(crate) mod units;
pub(crate) mod validate;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::limits::{FunctionLimits, ProxyLimits, ServerLimits, StateLimits};

/// The default listen address: loopback only, exposing the server is a choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The admin listener's address when `[admin]` has no `listen`: loopback,
/// like the server's (metrics name every configured function).
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    9090,
));

/// What a profile says about its board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The profile's name, as in `board = "rpi4b"`.
    pub key: String,
    /// The board's name.
    pub name: String,
    /// The Rust target triple to build for it.
    pub target: String,
    /// Its CPU.
    pub cpu: String,
    /// CPU cores.
    pub cores: u32,
    /// RAM in bytes.
    pub ram: u64,
}

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
    /// Its KV namespace when not its own name (`kv = "..."`: functions
    /// naming the same one share it on purpose).
    pub kv: Option<String>,
    /// The http-wasm middleware run before it, in order (and after it in
    /// reverse order).
    pub middleware: Vec<Arc<MiddlewareSpec>>,
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
            kv: None,
            middleware: Vec::new(),
            from_functions_dir: true,
        }
    }

    /// Its KV namespace: `kv`, else its name.
    pub fn namespace(&self) -> &str {
        self.kv.as_deref().unwrap_or(&self.name)
    }
}

/// The KV store (`[state]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Its directory; relative: under the working directory.
    pub dir: PathBuf,
    /// `None`: fsync before a write is acknowledged (`sync = "always"`);
    /// else at most this long after it (group commit).
    pub sync: Option<Duration>,
    /// The quotas of each namespace.
    pub limits: StateLimits,
}

impl StateConfig {
    /// Defaults to `wasmgate-state` under the working directory.
    pub const DEFAULT_DIR: &str = "wasmgate-state";
    /// The longest KV namespace, whether set with `kv` or a function's or
    /// middleware's name used as one: 128 bytes (it is shown in logs,
    /// typed on the `wasmgate kv` command line, and written before every
    /// key of the namespace in the log).
    pub const MAX_NAMESPACE: usize = 128;
    /// What one entry of a namespace costs in the log beyond its key and
    /// value bytes (which `max_bytes` counts): the op byte, the three
    /// `u32` lengths, the `u64` expiry, and the namespace itself (see
    /// `store::record`).
    pub const ENTRY_OVERHEAD: u64 = 1 + 4 + 4 + 8 + 4 + Self::MAX_NAMESPACE as u64;
    /// The longest record the store's log replays (`store::record`'s
    /// `MAX_PAYLOAD`, 256 MiB; the store is a layer above config, so the
    /// number is repeated here, and `tests/kv_namespaces.rs` checks that a
    /// record this long is read and a longer one is not). One request's
    /// writes are one record, and the store refuses a longer commit: with
    /// these ranges, a request that fills its namespace within the quotas
    /// still fits. (A compaction splits a namespace into records of its
    /// own size.)
    pub const MAX_RECORD: u64 = 256 << 20;
    /// `max_bytes`: 1 KiB..=128 MiB, half of [`Self::MAX_RECORD`]; the
    /// other half is for `max_keys` entries' [`Self::ENTRY_OVERHEAD`].
    /// (Tighter than `StateLimits`'s own range, which knows nothing of
    /// the log.)
    pub const MAX_BYTES_RANGE: std::ops::RangeInclusive<u64> =
        *StateLimits::MAX_BYTES_RANGE.start()..=Self::MAX_RECORD / 2;
    /// `max_keys`: 1..=800,000, so that as many entries' overhead fits in
    /// the other half of a record: 800,000 × 149 bytes is 119.2 MB, under
    /// 128 MiB (checked at compile time below).
    pub const MAX_KEYS_RANGE: std::ops::RangeInclusive<u64> =
        *StateLimits::MAX_KEYS_RANGE.start()..=800_000;
    /// The longest record a namespace within the quotas takes in the log:
    /// every key and value byte, and every entry's overhead.
    pub const FULLEST_RECORD: u64 =
        *Self::MAX_BYTES_RANGE.end() + *Self::MAX_KEYS_RANGE.end() * Self::ENTRY_OVERHEAD;
}

// The fullest namespace the ranges allow is still one record replay reads.
const _: () = assert!(StateConfig::FULLEST_RECORD <= StateConfig::MAX_RECORD);

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(Self::DEFAULT_DIR),
            sync: None,
            limits: StateLimits::default(),
        }
    }
}

/// Crash dumps (`[dumps]`): a failing request's inputs, for `wasmgate
/// replay`. Off unless configured: a dump holds the request (headers,
/// body) and the function's `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpsConfig {
    /// The directory, created if missing; relative: under the config
    /// file's directory.
    pub dir: PathBuf,
    /// Most dump files kept; the oldest go first.
    pub max_files: u64,
    /// Most bytes of dump files kept; the oldest go first.
    pub max_bytes: u64,
}

impl DumpsConfig {
    /// Defaults to 100 files: the recent failures, not a history.
    pub const DEFAULT_MAX_FILES: u64 = 100;
    /// `max_files`: 1..=100,000 (each dump lists the directory).
    pub const MAX_FILES_RANGE: std::ops::RangeInclusive<u64> = 1..=100_000;
    /// Defaults to 64 MiB: room for the default 100 dumps of requests up
    /// to `max_body`'s default (1 MiB) with their recorded inputs, on a
    /// board's SD card.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
    /// `max_bytes`: 64 KiB..=64 GiB.
    pub const MAX_BYTES_RANGE: std::ops::RangeInclusive<u64> = (64 << 10)..=(64 << 30);

    /// Dumps in `dir` with the default bounds.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_files: Self::DEFAULT_MAX_FILES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// One `[[middleware]]`: an http-wasm module that `[[function]]` routes
/// name in their `middleware` list.
#[derive(Debug, Clone)]
pub struct MiddlewareSpec {
    /// The name routes refer to it by, also in logs and error messages.
    pub name: String,
    /// The module file.
    pub module: PathBuf,
    /// Its `config` as JSON, handed to the guest as-is (`get_config`);
    /// empty when there is none.
    pub config: Arc<[u8]>,
    /// `config` as crash dumps hold it: each value taken from the
    /// environment (`NAME_env = "VAR"`, a secret) as `<redacted: $VAR>`.
    pub dump_config: Arc<[u8]>,
    /// Its limits, for each call.
    pub limits: FunctionLimits,
    /// Its KV namespace when not its own name (`kv = "..."`).
    pub kv: Option<String>,
}

impl MiddlewareSpec {
    /// Its KV namespace: `kv`, else its name.
    pub fn namespace(&self) -> &str {
        self.kv.as_deref().unwrap_or(&self.name)
    }
}

/// One upstream of a `[[proxy]]`: an `http://host:port` origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The URL as configured, for logs and the access line.
    pub url: String,
    /// The host to connect to: an IP address or a name resolved when a
    /// connection is opened.
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
    /// `host:port` as the `Host` field sends it (IPv6 in brackets).
    pub authority: String,
}

/// One reverse-proxy route: where it is served, where it forwards to.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// The name in logs and error bodies (defaults to the route).
    pub name: String,
    /// The path it is served at, without a trailing `/*`.
    pub route: String,
    /// Whether `route` also matches every path below it.
    pub prefix: bool,
    /// Its upstreams, taken in turn (round robin).
    pub upstreams: Vec<Upstream>,
    /// The middleware to run, in request order.
    pub middleware: Vec<Arc<MiddlewareSpec>>,
    /// Its timeouts, pool and health settings, response bounds.
    pub limits: ProxyLimits,
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
    /// The `[[middleware]]` tables.
    pub middleware: Vec<Arc<MiddlewareSpec>>,
    /// Directory whose `NAME.wasm` files are served at `/NAME`.
    pub functions_dir: Option<PathBuf>,
    /// Reverse-proxy routes (`[[proxy]]`).
    pub proxies: Vec<ProxySpec>,
    /// Defaults for every `[[proxy]]` (`[gateway]`).
    pub gateway: ProxyLimits,
    /// The board profile the defaults came from, if any.
    pub board: Option<Board>,
    /// Instructions per millisecond on this machine (from the board profile
    /// or `[server] fuel_per_ms`); turns a `timeout` into a fuel budget.
    pub fuel_per_ms: Option<u64>,
    /// The KV store.
    pub state: StateConfig,
    /// The admin listener's address (`[admin] listen`), if `[admin]` is
    /// present: health, readiness and metrics.
    pub admin: Option<SocketAddr>,
    /// Crash dumps (`[dumps]`), when configured.
    pub dumps: Option<DumpsConfig>,
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
            middleware: Vec::new(),
            functions_dir: None,
            proxies: Vec::new(),
            gateway: ProxyLimits::default(),
            board: None,
            fuel_per_ms: None,
            state: StateConfig::default(),
            admin: None,
            dumps: None,
        }
    }
}

impl Config {
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
