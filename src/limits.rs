//! Every limit an operator can set or needs to know, with its default, its
//! range and the reason for them: the config keys, the board profile's
//! numbers, and the fixed bounds the server and the sandbox share (call
//! stack, module structure, instance cost). A bound private to one
//! mechanism (a chunk-size line, lingering on close, one log line) is a
//! named constant next to the code it bounds, with its reason.
//!
//! [`FunctionLimits`] bound one request's guest; [`ServerLimits`] bound the
//! server as a whole. Both are plain values: `config` fills them from
//! `wasmgate.toml`, the rest of the server only reads them.
//!
//! Every numeric key also has an accepted range (the `*_RANGE` constants,
//! next to its default): a value outside it is a config error. A key is
//! read by one row of the table in `config/raw.rs`, which names its range
//! here; `config` checks the value against it as the type the range is in
//! (`u64`, `Duration`) and converts it, never casts, into the field's
//! type. The ranges
//! keep every product and cast the server makes of a config value (fuel ×
//! `fuel_per_ms`, sizes `as usize` on 32-bit ARM, `Instant + timeout`)
//! far from overflow, and refuse values no board can honour.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::signature::Signatures;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// Largest `fuel_per_ms` accepted: 100 million instructions per ms, 50× what
/// `wasmgate calibrate` measures on a desktop x86-64 core (~2 million).
pub const MAX_FUEL_PER_MS: u64 = 100_000_000;

/// Accepted `fuel_per_ms`: 1..=[`MAX_FUEL_PER_MS`]. The timeout rule
/// multiplies it by a timeout in microseconds (at most 8.64e10 for 24 h):
/// the product stays below 8.64e18, inside `u64`.
pub const FUEL_PER_MS_RANGE: RangeInclusive<u64> = 1..=MAX_FUEL_PER_MS;

/// Largest fuel budget: the longest timeout ([`MAX_DURATION`], 24 h) at the
/// fastest `fuel_per_ms` (8.64e15 instructions), so a budget the timeout
/// rule derives is always in range, and budget + slice arithmetic stays
/// three orders of magnitude below `u64::MAX`.
pub const MAX_FUEL: u64 = MAX_DURATION.as_secs() * 1000 * MAX_FUEL_PER_MS;

/// Limits applied to every call of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLimits {
    /// Instructions (wasmi fuel units) one request may execute. This is the
    /// deadline: deterministic, the same on every board.
    pub fuel: u64,
    /// Fuel executed between two yields to the executor; smaller slices give
    /// fairer latency to other requests at a small cost in throughput.
    pub fuel_slice: u64,
    /// Backstop, checked between slices: CPU time of the request's own work
    /// (instantiation, its fuel slices and the host calls in them), not the
    /// time it waited while other requests ran.
    pub timeout: Duration,
    /// Most bytes of linear memory the guest may hold (all memories together).
    pub memory: u64,
    /// Largest response (native) or stdout (wasi-json) the guest may produce.
    pub max_response: u64,
    /// Bytes of log output (guest `log` calls, stderr) kept per request.
    pub max_log: u64,
    /// What a wasi-json function's stdout that is not a response object
    /// becomes (`plain_output`).
    pub plain_output: PlainOutput,
}

/// `plain_output`: what a wasi-json function's stdout becomes when it is
/// not a JSON response object with a status (plain text, other JSON, a
/// field of the wrong type). Defaults to [`PlainOutput::Text`], as the
/// newest Gojinn answers: a Go `main` that only calls `fmt.Println` is a
/// function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainOutput {
    /// `"text"`: 200 with stdout as it is, as a `text/plain; charset=utf-8`
    /// body (no content type when stdout is empty).
    #[default]
    Text,
    /// `"refuse"`: 502 `bad-response`, as Gojinn's docs and its versions
    /// before March 2026 answer; a missing status then means 200.
    Refuse,
}

impl PlainOutput {
    /// Every value, with the name the config writes it as.
    pub const NAMES: &[(&str, PlainOutput)] =
        &[("text", PlainOutput::Text), ("refuse", PlainOutput::Refuse)];
}

impl FunctionLimits {
    /// Defaults to 100 million instructions: about 0.1–0.3 s on a desktop
    /// core, 0.5–1 s on a Raspberry Pi 4. Enough for real handlers, short
    /// enough that a runaway loop is stopped quickly.
    pub const DEFAULT_FUEL: u64 = 100_000_000;
    /// Defaults to 100 000 instructions, well under a millisecond on a Pi 4,
    /// so other requests wait at most about that long for the executor.
    pub const DEFAULT_FUEL_SLICE: u64 = 100_000;
    /// Defaults to 5 s: the fuel budget normally decides first; this only
    /// catches time metering does not see (a host call or a slice that runs
    /// long on its own).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Defaults to 8 MiB: a Rust handler built with a 64 KiB stack starts at
    /// 128 KiB and rarely needs 1–2 MiB; 8 leaves room for real work while
    /// `max_in_flight` requests fit the default `memory_budget`.
    pub const DEFAULT_MEMORY: u64 = 8 * MIB;
    /// Defaults to 1 MiB: functions answer API calls, not file downloads.
    pub const DEFAULT_MAX_RESPONSE: u64 = MIB;
    /// Defaults to 16 KiB: enough for diagnostics, too little to flood the log.
    pub const DEFAULT_MAX_LOG: u64 = 16 * KIB;

    /// `fuel`: 1..=`MAX_FUEL` (24 h at the fastest `fuel_per_ms`).
    pub const FUEL_RANGE: RangeInclusive<u64> = 1..=MAX_FUEL;
    /// `fuel_slice`: 1 000..=10 000 000. Below 1 000, yielding costs more
    /// than the slice runs. The `timeout` backstop is checked between
    /// slices, and a new request waits for one slice of every request in
    /// flight: a slice of days with `timeout = "1ms"` held the only thread
    /// for ever, and 100 million-fuel slices of four `table.fill` loops
    /// held `/hello` for 3.8 s. Ten million is 5–30 ms on a desktop core,
    /// ~0.1 s on a Pi 4. A `fuel` larger than the slice runs in several.
    pub const FUEL_SLICE_RANGE: RangeInclusive<u64> = 1_000..=10_000_000;
    /// `timeout`: 1 ms..=24 h (`MAX_DURATION`); the timeout rule doubles
    /// it, still far from `Instant` overflow.
    pub const TIMEOUT_RANGE: RangeInclusive<Duration> = MS..=MAX_DURATION;
    /// `memory`: 64 KiB (one Wasm page)..=4 GiB (the whole wasm32 address
    /// space, 65 536 pages).
    pub const MEMORY_RANGE: RangeInclusive<u64> = 64 * KIB..=4 * GIB;
    /// `max_response`: 1 B..=256 MiB. The response (wasi-json: stdout) is
    /// held in host memory, outside the guest's `memory`: one copy must fit
    /// the smallest supported board (512 MiB RAM), and fits `usize` on
    /// 32-bit ARM.
    pub const MAX_RESPONSE_RANGE: RangeInclusive<u64> = 1..=256 * MIB;
    /// `max_log`: 1 B..=1 MiB per request: kept in memory while the request
    /// runs; more is a guest flooding the log.
    pub const MAX_LOG_RANGE: RangeInclusive<u64> = 1..=MIB;
}

impl Default for FunctionLimits {
    fn default() -> Self {
        Self {
            fuel: Self::DEFAULT_FUEL,
            fuel_slice: Self::DEFAULT_FUEL_SLICE,
            timeout: Self::DEFAULT_TIMEOUT,
            memory: Self::DEFAULT_MEMORY,
            max_response: Self::DEFAULT_MAX_RESPONSE,
            max_log: Self::DEFAULT_MAX_LOG,
            plain_output: PlainOutput::Text,
        }
    }
}

/// Limits on the server as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Open connections. When the table is full, the connection that has
    /// waited longest for a request head (idle keep-alive, or a head still
    /// arriving) is closed to make room; when none is waiting, the new one
    /// is answered 503 `too-many-connections` and closed.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv4 address or an
    /// IPv6 /64); over it, that address's longest-waiting connection is
    /// closed to make room, or the new one is refused like one over
    /// `max_connections`.
    pub max_connections_per_ip: usize,
    /// Requests running a guest at once; more get 503 `overloaded`.
    pub max_in_flight: usize,
    /// Memory the server may hold for requests: the `memory` plus
    /// `max_response` of every guest running, the request bodies being
    /// buffered (their declared length, or each chunk as it is announced)
    /// and the responses being written. A request that does not fit gets
    /// 503 `overloaded`.
    pub memory_budget: u64,
    /// Largest request body.
    pub max_body: u64,
    /// Largest request head (request line and header fields).
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// How long an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
    /// How long a client may take to send a request head: the first one
    /// from the moment the connection is accepted, later ones (keep-alive)
    /// from their first byte.
    pub header_timeout: Duration,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// How long a client may take to read a response.
    pub write_timeout: Duration,
    /// Compiled modules kept in memory (the lowest GreedyDual-Size priority
    /// is dropped: large and least recently used first).
    pub module_cache: usize,
    /// Estimated bytes of all cached modules together (file size plus
    /// compiled code); the lowest-priority entries are dropped until they fit.
    pub module_cache_bytes: u64,
    /// How long a cached module is trusted before its file is checked for a
    /// change again; zero checks on every request.
    pub module_check_interval: Duration,
    /// Largest module file accepted.
    pub max_module_size: u64,
    /// The structure a module may have; checked when it loads.
    pub module: ModuleLimits,
    /// Seconds a client is told to wait (`Retry-After`) when overloaded.
    pub retry_after_secs: u32,
    /// How long SIGTERM or SIGINT waits for requests in flight to finish
    /// before the process exits anyway.
    pub drain_timeout: Duration,
    /// `log_format = "json"`: one JSON object per log line.
    pub log_json: bool,
    /// Bytes of idle http-wasm middleware instances each worker keeps for
    /// the next request of the same snapshot (`abi::pool`); 0 turns the
    /// pool off (every request instantiates).
    pub instance_pool: u64,
    /// `allow_encoded_slash = true`: a request path may hold `%2F` (any
    /// case), which is then routed and forwarded as it is, not refused
    /// with 400. For upstreams that take encoded slashes in a segment
    /// (`/api/v4/projects/group%2Fproject`); safe only if no upstream
    /// decodes them before it resolves `..` (see the README).
    pub allow_encoded_slash: bool,
    /// Requests that may wait for a `max_in_flight` slot or memory from
    /// `memory_budget` instead of getting 503 at once.
    pub admission_queue: usize,
    /// How long a request waits in the admission queue before its 503.
    pub admission_timeout: Duration,
    /// Worker threads, each running its own single-threaded executor and
    /// accepting on the shared listening socket. Everything else here is
    /// global: the connection caps, `max_in_flight` and `memory_budget`
    /// hold for all workers together. Read at start only (a reload keeps
    /// the running count).
    pub workers: usize,
    /// `[signatures]`: the keys modules must be signed with, checked where
    /// a module file is read (not a limit, but what loading a module obeys,
    /// like the limits above). Defaults to none: nothing checked.
    pub signatures: Signatures,
}

impl ServerLimits {
    /// Defaults to 256: far more than a board serves at once, few enough
    /// that their buffers cannot exhaust RAM.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
    /// Defaults to 64, a quarter of the default `max_connections`: a browser
    /// opens 6 per host, so a few users behind one NAT fit, and it takes
    /// four addresses to fill the table with connections that cannot be
    /// closed to make room (requests running or being uploaded). Behind a
    /// reverse proxy every client has the proxy's address: set it to
    /// `max_connections` there.
    pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
    /// Defaults to 28, the default `memory_budget` divided by what
    /// admission reserves per guest with every default (`memory` +
    /// `max_response` = 9 MiB): that many guests always fit the budget, so
    /// the count, not the budget, is what a burst of guests meets first.
    /// Bodies being read and responses being written take from the budget
    /// too, so a burst with large bodies can still meet the budget.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 28;
    /// Defaults to 256 MiB: half of a 512 MiB board.
    pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * MIB;
    /// Defaults to 1 MiB: functions take API payloads, not uploads.
    pub const DEFAULT_MAX_BODY: u64 = MIB;
    /// Defaults to 2 MiB per worker: ~20 idle instances of a middleware
    /// such as `hmac-verify` (64 KiB of memory, ~35 KiB of host bytes),
    /// 0.4 % of a 512 MiB board.
    pub const DEFAULT_INSTANCE_POOL: u64 = 2 * MIB;
    /// Defaults to 8 KiB: larger heads are an attack, not a use.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;
    /// Defaults to 64 fields: browsers send about 20.
    pub const DEFAULT_MAX_HEADERS: usize = 64;
    /// Defaults to 30 s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Defaults to 10 s: a slow-loris client is cut off after that, and a
    /// connection that sends nothing is closed after that.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// Defaults to 30 s for the whole body.
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Defaults to 30 s: a client that does not read its response must not
    /// hold a connection slot for ever.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Defaults to 64 compiled modules.
    pub const DEFAULT_MODULE_CACHE: usize = 64;
    /// Defaults to 64 MiB: a dozen large (4 MiB) modules with their
    /// compiled code, or every small one a board serves; a quarter of the
    /// default `memory_budget`. A module estimated larger than this alone
    /// is refused.
    pub const DEFAULT_MODULE_CACHE_BYTES: u64 = 64 * MIB;
    /// 64 KiB to 1 TiB.
    pub const MODULE_CACHE_BYTES_RANGE: RangeInclusive<u64> = 64 * KIB..=1024 * GIB;
    /// Defaults to 1 s: a deployed file is served within a second; checking
    /// on every request costs a stat call per request (two such calls were
    /// ~7% of the server's CPU under load on `GET /hello`).
    pub const DEFAULT_MODULE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
    /// Defaults to 16 MiB: a large Rust or Go function is 2–8 MiB.
    pub const DEFAULT_MAX_MODULE_SIZE: u64 = 16 * MIB;
    /// Defaults to 1 s.
    pub const DEFAULT_RETRY_AFTER_SECS: u32 = 1;
    /// Defaults to 10 s: systemd's default `TimeoutStopSec` is 90 s, and the
    /// unit in `cross/` gives 15 s.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// Defaults to 0: no queue, a request over `max_in_flight` or
    /// `memory_budget` gets 503 `overloaded` at once, as before the queue.
    pub const DEFAULT_ADMISSION_QUEUE: usize = 0;
    /// `admission_queue`: 0..=4096 waiting requests, each holding its
    /// connection and request body meanwhile.
    pub const ADMISSION_QUEUE_RANGE: RangeInclusive<u64> = 0..=4096;
    /// Defaults to 1 s: a burst's wait, not a backlog's.
    pub const DEFAULT_ADMISSION_TIMEOUT: Duration = Duration::from_secs(1);
    /// `admission_timeout`: 1 ms..=1 min.
    pub const ADMISSION_TIMEOUT_RANGE: RangeInclusive<Duration> = MS..=Duration::from_secs(60);
    /// Defaults to 1 without a board profile, and to the profile's `cores`
    /// with one: a config that names no board says nothing about the
    /// machine, the other defaults are sized for the smallest board (one
    /// core of a 512 MiB board), and one worker is the server exactly as
    /// on a single-core board. Set it to the cores to use them all.
    pub const DEFAULT_WORKERS: usize = 1;
    /// `workers`: 1..=64. Each worker is a thread (its stack, its share of
    /// the reactor); more workers than cores only add switching, and 64 is
    /// more cores than any supported board has. A board profile with more
    /// `cores` defaults to 64.
    pub const WORKERS_RANGE: RangeInclusive<u64> = 1..=64;
    /// The top of `WORKERS_RANGE`, as a count.
    pub const MAX_WORKERS: usize = 64;
    /// `drain_timeout`: 0 (cut requests in flight at once)..=1 h: a stop
    /// that waits longer is a hang to whoever stops it.
    pub const DRAIN_TIMEOUT_RANGE: RangeInclusive<Duration> =
        Duration::ZERO..=Duration::from_secs(3600);

    /// `max_connections`: 1..=65 536. Each connection is a file descriptor
    /// and a read buffer; past the process's open-file limit (`ulimit -n`,
    /// commonly 1024 soft and 4096–524 288 hard) accept fails instead of
    /// answering 503, so raise that limit with this one.
    pub const MAX_CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=65_536;
    /// `max_connections_per_ip`: 1..=65 536, like `max_connections`; a
    /// value above `max_connections` acts as `max_connections`.
    pub const MAX_CONNECTIONS_PER_IP_RANGE: RangeInclusive<u64> = 1..=65_536;
    /// `max_in_flight`: 1..=1024. Each request in flight holds an instance
    /// and up to 128 KiB of suspended value stack (`MAX_STACK_HEIGHT`):
    /// 1024 of them are already more than any supported board can spare.
    pub const MAX_IN_FLIGHT_RANGE: RangeInclusive<u64> = 1..=1024;
    /// `memory_budget`: 64 KiB..=1 TiB: more than any board has, and the
    /// sum of reservations (budget + one 4 GiB `memory`) stays far inside
    /// `u64`.
    pub const MEMORY_BUDGET_RANGE: RangeInclusive<u64> = 64 * KIB..=1024 * GIB;
    /// `max_body`: 1 B..=256 MiB, and at most `memory_budget`. A body is
    /// held in memory before the guest runs: one must fit the smallest
    /// supported board (512 MiB RAM), and its length fits `usize` on 32-bit
    /// ARM. Uploads larger than that are not function calls.
    pub const MAX_BODY_RANGE: RangeInclusive<u64> = 1..=256 * MIB;
    /// 0 (off) to 256 MiB per worker: idle memory, outside `memory_budget`.
    pub const INSTANCE_POOL_RANGE: RangeInclusive<u64> = 0..=256 * MIB;
    /// `max_header_bytes`: 1 KiB..=1 MiB. A request line and a few ordinary
    /// headers need about 1 KiB; every connection may buffer this much, so
    /// more than 1 MiB × `max_connections` is memory no board has. Also the
    /// limit on a chunked body's trailer section.
    pub const MAX_HEADER_BYTES_RANGE: RangeInclusive<u64> = KIB..=MIB;
    /// `max_headers`: 1..=1024. The parser allocates one field slot per
    /// line of a head, up to this many.
    pub const MAX_HEADERS_RANGE: RangeInclusive<u64> = 1..=1024;
    /// `idle_timeout`, `header_timeout`, `body_timeout`, `write_timeout`:
    /// 1 ms..=24 h (`MAX_DURATION`).
    pub const TIMEOUT_RANGE: RangeInclusive<Duration> = MS..=MAX_DURATION;
    /// `module_cache`: 1..=4096 compiled modules. Each holds its compiled
    /// code (0.1–10× the file) in memory.
    pub const MODULE_CACHE_RANGE: RangeInclusive<u64> = 1..=4096;
    /// `module_check_interval`: 0 (check on every request)..=24 h.
    pub const MODULE_CHECK_INTERVAL_RANGE: RangeInclusive<Duration> = Duration::ZERO..=MAX_DURATION;
    /// `max_module_size`: 8 B (the smallest module: magic and
    /// version)..=256 MiB. A module is read whole and compiled on one helper
    /// thread (~8 ms per MiB on a desktop core, several times that on a
    /// board) and its length fits `usize` on 32-bit ARM.
    pub const MAX_MODULE_SIZE_RANGE: RangeInclusive<u64> = 8..=256 * MIB;
    /// `retry_after`: whole seconds, 1 s..=1 h: `Retry-After` has a
    /// resolution of one second, and a client told to wait longer than an
    /// hour has been refused, not asked to retry.
    pub const RETRY_AFTER_RANGE: RangeInclusive<Duration> = SEC..=Duration::from_secs(3600);
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: Self::DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            memory_budget: Self::DEFAULT_MEMORY_BUDGET,
            max_body: Self::DEFAULT_MAX_BODY,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            module_cache: Self::DEFAULT_MODULE_CACHE,
            module_cache_bytes: Self::DEFAULT_MODULE_CACHE_BYTES,
            module_check_interval: Self::DEFAULT_MODULE_CHECK_INTERVAL,
            max_module_size: Self::DEFAULT_MAX_MODULE_SIZE,
            module: ModuleLimits::default(),
            retry_after_secs: Self::DEFAULT_RETRY_AFTER_SECS,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
            log_json: false,
            allow_encoded_slash: false,
            instance_pool: Self::DEFAULT_INSTANCE_POOL,
            admission_queue: Self::DEFAULT_ADMISSION_QUEUE,
            admission_timeout: Self::DEFAULT_ADMISSION_TIMEOUT,
            workers: Self::DEFAULT_WORKERS,
            signatures: Signatures::default(),
        }
    }
}

/// Quotas of one KV namespace (`[state]`): every function sharing a
/// namespace shares them. Going over is an error value to the guest and a
/// log line, never a trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLimits {
    /// Keys a namespace may hold.
    pub max_keys: u64,
    /// Bytes of keys and values a namespace may hold. The store keeps every
    /// namespace in memory: this, times the namespaces, is its RAM.
    pub max_bytes: u64,
    /// The largest value.
    pub max_value: u64,
}

impl StateLimits {
    /// Defaults to 10,000 keys: counters and sessions of a small site.
    pub const DEFAULT_MAX_KEYS: u64 = 10_000;
    /// Defaults to 1 MiB: a board with 512 MiB holds hundreds of
    /// namespaces.
    pub const DEFAULT_MAX_BYTES: u64 = MIB;
    /// Defaults to 64 KiB: state, not blobs.
    pub const DEFAULT_MAX_VALUE: u64 = 64 * KIB;
    /// `max_keys`: 1..=10 million.
    pub const MAX_KEYS_RANGE: RangeInclusive<u64> = 1..=10_000_000;
    /// `max_bytes`: 1 KiB..=4 GiB (the store is in memory).
    pub const MAX_BYTES_RANGE: RangeInclusive<u64> = KIB..=4 * GIB;
    /// `max_value`: 1 byte..=16 MiB (a value is copied through guest
    /// memory in one call).
    pub const MAX_VALUE_RANGE: RangeInclusive<u64> = 1..=16 * MIB;
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_keys: Self::DEFAULT_MAX_KEYS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_value: Self::DEFAULT_MAX_VALUE,
        }
    }
}

/// Limits of one `[[proxy]]` route and its upstreams: the `[gateway]`
/// table sets the defaults, each `[[proxy]]` may override any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLimits {
    /// How long opening a connection to an upstream may take.
    pub connect_timeout: Duration,
    /// How long the upstream may take, after the request was sent, to
    /// send its response head.
    pub response_timeout: Duration,
    /// Most time between two reads of the upstream's response body: a
    /// body may take as long as it keeps arriving.
    pub upstream_body_timeout: Duration,
    /// Idle keep-alive connections kept per upstream.
    pub pool_size: usize,
    /// How long an idle pooled connection is kept before it is closed.
    pub pool_idle_timeout: Duration,
    /// Connect failures or timeouts in a row after which an upstream is
    /// skipped.
    pub fail_threshold: u32,
    /// How long a failing upstream is skipped.
    pub fail_skip: Duration,
    /// Largest upstream response body passed on, streamed or buffered.
    pub max_upstream_body: u64,
    /// Largest upstream response body buffered whole (when middleware
    /// reads the response).
    pub max_response: u64,
}

impl ProxyLimits {
    /// Defaults to 5 s: a loopback or LAN upstream connects in
    /// milliseconds; seconds mean it is down.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Defaults to 30 s, nginx's `proxy_read_timeout` is 60 s: a legacy
    /// backend may be slow, a client should not wait a minute.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Defaults to 30 s between two reads, like the response head.
    pub const DEFAULT_UPSTREAM_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Defaults to 32 idle connections per upstream, nginx's usual
    /// `keepalive 32`: a board serves tens of requests at once, and each
    /// request beyond the pool opens (and later closes) a connection of its
    /// own, while an idle connection costs only a socket on both sides. With
    /// 8, 16 clients made 2 % of proxied requests connect anew.
    pub const DEFAULT_POOL_SIZE: usize = 32;
    /// Defaults to 4 s, under the 5 s keep-alive timeout of Node.js and
    /// the 60–75 s of nginx and Apache: a connection the upstream is about
    /// to close is rarely reused.
    pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
    /// Defaults to 3 failures in a row: one is bad luck, three a pattern.
    pub const DEFAULT_FAIL_THRESHOLD: u32 = 3;
    /// Defaults to 10 s, long enough that a down upstream costs few
    /// connect attempts, short enough that a restarted one is soon used.
    pub const DEFAULT_FAIL_SKIP: Duration = Duration::from_secs(10);
    /// Defaults to 1 GiB: streamed bodies use a fixed buffer whatever
    /// their size, but a length beyond what a gateway on a board passes on
    /// is an upstream lying (or a download that belongs elsewhere).
    pub const DEFAULT_MAX_UPSTREAM_BODY: u64 = GIB;

    /// `connect_timeout`, `response_timeout`, `upstream_body_timeout`,
    /// `pool_idle_timeout`, `fail_skip`: 1 ms..=24 h.
    pub const TIMEOUT_RANGE: RangeInclusive<Duration> = MS..=MAX_DURATION;
    /// `pool_size`: 0 (no reuse)..=1024 idle connections per upstream.
    pub const POOL_SIZE_RANGE: RangeInclusive<u64> = 0..=1024;
    /// `fail_threshold`: 1..=1000 failures in a row.
    pub const FAIL_THRESHOLD_RANGE: RangeInclusive<u64> = 1..=1000;
    /// `max_upstream_body`: 0..=1 TiB (a streamed body is never held whole).
    pub const MAX_UPSTREAM_BODY_RANGE: RangeInclusive<u64> = 0..=1024 * GIB;
}

impl Default for ProxyLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            upstream_body_timeout: Self::DEFAULT_UPSTREAM_BODY_TIMEOUT,
            pool_size: Self::DEFAULT_POOL_SIZE,
            pool_idle_timeout: Self::DEFAULT_POOL_IDLE_TIMEOUT,
            fail_threshold: Self::DEFAULT_FAIL_THRESHOLD,
            fail_skip: Self::DEFAULT_FAIL_SKIP,
            max_upstream_body: Self::DEFAULT_MAX_UPSTREAM_BODY,
            max_response: FunctionLimits::DEFAULT_MAX_RESPONSE,
        }
    }
}

/// The structure a module may have, checked once when it loads (a module
/// over a limit is refused: 503 `module-unavailable`, and the log and
/// `wasmgate check` name the limit). Every request instantiates the module
/// afresh, and instantiation cannot be interrupted: these bound how long one
/// instantiation holds the thread and what one instance costs in memory
/// before any guest code runs. What is left is charged to the request (see
/// [`InstanceCost`]).
///
/// Server-wide (`[server]` keys, board profiles), not per function: a
/// cached module is shared by every function that names its file, so its
/// verdict cannot depend on which function asked first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLimits {
    /// Global variables (`max_module_globals`).
    pub max_globals: u32,
    /// Functions, imported ones included (`max_module_functions`).
    pub max_functions: u32,
    /// Initial elements of all tables together (`max_module_table_elements`).
    pub max_table_elements: u64,
    /// Element segments (`max_module_element_segments`).
    pub max_element_segments: u32,
    /// Data segments (`max_module_data_segments`).
    pub max_data_segments: u32,
    /// Smallest average function body in bytes, enforced once the bodies
    /// total [`MIN_FUNCTION_BYTES_FROM`] (`min_module_function_bytes`).
    pub min_function_bytes: u32,
    /// Imports of any kind (`max_module_imports`).
    pub max_imports: u32,
    /// Exports of any kind (`max_module_exports`).
    pub max_exports: u32,
    /// Bytes of one function body (`max_module_function_size`).
    pub max_function_bytes: u64,
    /// Levels of nested blocks in one function (`max_module_nesting`).
    pub max_nesting: u32,
}

impl ModuleLimits {
    /// Defaults to 10,000: compilers emit a handful (a stack pointer, a few
    /// for TLS); each costs ~40 bytes and ~70 ns per instantiation.
    /// Range: 1 to 1,000,000.
    pub const DEFAULT_MAX_GLOBALS: u32 = 10_000;
    /// Defaults to 100,000: a large Go or Rust program has 10,000–40,000;
    /// each costs ~70 bytes and ~200 ns per instantiation, so the default
    /// bounds one instantiation to ~7 MiB and ~20 ms. Range: 1 to 1,000,000.
    pub const DEFAULT_MAX_FUNCTIONS: u32 = 100_000;
    /// Defaults to 100,000, the most elements the store's limiter lets one
    /// table grow to: function tables of real programs hold a few thousand.
    /// Range: 1 to 10,000,000.
    pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 100_000;
    /// Defaults to 1,000: toolchains emit one or a few. Range: 1 to 1,000,000.
    pub const DEFAULT_MAX_ELEMENT_SEGMENTS: u32 = 1_000;
    /// Defaults to 100,000: most toolchains emit one per output section (a
    /// few); Go's linker (`GOOS=wasip1`) emits one per run of non-zero data,
    /// ~42,000 for a small `encoding/json` function. Range: 1 to 1,000,000.
    pub const DEFAULT_MAX_DATA_SEGMENTS: u32 = 100_000;
    /// Defaults to 40 bytes, wasmi's own strict limit: compiled modules
    /// average 100–2,500 bytes per function; a module of many empty
    /// functions exists to make instantiation expensive. Range: 1 to 10,000.
    pub const DEFAULT_MIN_FUNCTION_BYTES: u32 = 40;
    /// Defaults to 1,000: real modules import fewer than 200 functions (Go's
    /// wasip1 runtime ~30–40). Every request resolves each import by name
    /// when it instantiates, in one piece: 100,000 imports took ~16 ms per
    /// request. Range: 1 to 100,000.
    pub const DEFAULT_MAX_IMPORTS: u32 = 1_000;
    /// Defaults to 10,000: compilers export a handful (`_start`, `memory`,
    /// a few allocator or http-wasm entry points); Emscripten's
    /// `EXPORT_ALL` a few thousand. wasmi copies every export name into
    /// each instance, in one piece: 95,000 exports took ~48 ms per request
    /// (~100 ms with names sharing a long prefix), charged in fuel and
    /// memory as [`InstanceCost::EXPORT_FUEL`] says; this bounds that
    /// stall. Range: 1 to 100,000.
    pub const DEFAULT_MAX_EXPORTS: u32 = 10_000;
    /// Defaults to 1 MiB. wasmi translates a function to its own code on
    /// its first call, on the serving thread and unmetered: ~40 ms per MiB
    /// of body (measured: see the README), so this bounds that stall.
    /// Compilers emit functions of at most a few hundred KiB. Range: 1 KiB
    /// to 256 MiB.
    pub const DEFAULT_MAX_FUNCTION_BYTES: u64 = 1 << 20;
    /// Defaults to 10,000. Translation keeps state per open block: 1.7
    /// million nested blocks in one function took ~300 MB. Compilers nest
    /// one block per `switch` case or (Go) per resume point: thousands at
    /// most. Range: 1 to 1,000,000.
    pub const DEFAULT_MAX_NESTING: u32 = 10_000;
    /// See [`Self::DEFAULT_MAX_IMPORTS`].
    pub const MAX_IMPORTS_RANGE: RangeInclusive<u64> = 1..=100_000;
    /// See [`Self::DEFAULT_MAX_EXPORTS`].
    pub const MAX_EXPORTS_RANGE: RangeInclusive<u64> = 1..=100_000;
    /// See [`Self::DEFAULT_MAX_FUNCTION_BYTES`].
    pub const MAX_FUNCTION_BYTES_RANGE: RangeInclusive<u64> = 1024..=256 << 20;
    /// See [`Self::DEFAULT_MAX_NESTING`].
    pub const MAX_NESTING_RANGE: RangeInclusive<u64> = 1..=1_000_000;
    /// See [`Self::DEFAULT_MAX_GLOBALS`].
    pub const MAX_GLOBALS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
    /// See [`Self::DEFAULT_MAX_FUNCTIONS`].
    pub const MAX_FUNCTIONS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
    /// See [`Self::DEFAULT_MAX_TABLE_ELEMENTS`].
    pub const MAX_TABLE_ELEMENTS_RANGE: RangeInclusive<u64> = 1..=10_000_000;
    /// Element and data segments: 1 to 1,000,000.
    pub const MAX_SEGMENTS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
    /// See [`Self::DEFAULT_MIN_FUNCTION_BYTES`].
    pub const MIN_FUNCTION_BYTES_RANGE: RangeInclusive<u64> = 1..=10_000;
}

impl Default for ModuleLimits {
    fn default() -> Self {
        Self {
            max_globals: Self::DEFAULT_MAX_GLOBALS,
            max_functions: Self::DEFAULT_MAX_FUNCTIONS,
            max_table_elements: Self::DEFAULT_MAX_TABLE_ELEMENTS,
            max_element_segments: Self::DEFAULT_MAX_ELEMENT_SEGMENTS,
            max_data_segments: Self::DEFAULT_MAX_DATA_SEGMENTS,
            min_function_bytes: Self::DEFAULT_MIN_FUNCTION_BYTES,
            max_imports: Self::DEFAULT_MAX_IMPORTS,
            max_exports: Self::DEFAULT_MAX_EXPORTS,
            max_function_bytes: Self::DEFAULT_MAX_FUNCTION_BYTES,
            max_nesting: Self::DEFAULT_MAX_NESTING,
        }
    }
}

/// The average-bytes-per-function limit applies once all function bodies
/// together have this many bytes: small modules cannot be an attack.
/// 1,000 bytes, as in wasmi's strict limits.
pub const MIN_FUNCTION_BYTES_FROM: u64 = 1_000;

/// Linear memories a module may define: one, the most the store's limiter
/// allows (wasmi would trap on every instantiation of a second).
pub const MAX_MEMORIES: u32 = 1;

/// Tables a module may define: four, the most the store's limiter allows.
pub const MAX_TABLES: u32 = 4;

/// What one instantiation of a module costs before any guest code runs,
/// computed once when the module loads from the counts in its sections.
///
/// The bytes count against the function's `memory` limit (and so against
/// the memory budget that admission reserves); the fuel against its `fuel`
/// budget, charged before instantiating, so a request that cannot afford
/// its instantiation ends in 504 `deadline` without doing the work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceCost {
    /// Heap bytes of the instance besides its linear memory and tables
    /// (the store's limiter counts those as they are created and grown):
    /// store and instance overhead, globals, function handles, element
    /// segments, the instance's copies of the export names.
    pub bytes: u64,
    /// Fuel charged for instantiating (allocating those, copying data
    /// segments), at about the wall time per fuel of guest instructions.
    pub fuel: u64,
}

impl InstanceCost {
    /// Bytes of a store and an empty instance (measured: ~3.8 KiB).
    pub const BASE_BYTES: u64 = 4 * KIB;
    /// Bytes per global (measured: ~38 on x86_64).
    pub const GLOBAL_BYTES: u64 = 40;
    /// Bytes per function (measured: ~69 on x86_64).
    pub const FUNCTION_BYTES: u64 = 72;
    /// Bytes per table element (measured: ~4.2 on x86_64; a reference is
    /// up to 8 bytes).
    pub const TABLE_ELEMENT_BYTES: u64 = 8;
    /// Fuel of a store and an empty instance (measured: ~1 µs, ~2,000
    /// instructions' worth at 2,000,000 fuel/ms).
    pub const BASE_FUEL: u64 = 2_000;
    /// Fuel per global (measured: ~70 ns).
    pub const GLOBAL_FUEL: u64 = 140;
    /// Fuel per function (measured: ~210 ns).
    pub const FUNCTION_FUEL: u64 = 420;
    /// Fuel per table element or element-segment item (measured: ~0.5 ns).
    pub const TABLE_ELEMENT_FUEL: u64 = 1;
    /// Data-segment bytes copied per fuel, wasmi's rate for bulk memory
    /// instructions.
    pub const DATA_BYTES_PER_FUEL: u64 = 64;
    /// Bytes per data segment: the instance's segment entity and handle
    /// (estimated from wasmi's `DataSegmentEntity`: 16 bytes, plus the
    /// store arena's and the instance's entries).
    pub const DATA_SEGMENT_BYTES: u64 = 32;
    /// Fuel per data segment, however small (measured: ~48 ns each with
    /// `wasmgate run` on a module of 100,000 one-byte segments, release
    /// build, x86_64 at ~2,200,000 fuel/ms). Go's linker emits one segment
    /// per run of non-zero data, tens of thousands per module.
    pub const DATA_SEGMENT_FUEL: u64 = 100;
    /// Bytes per export besides its name: wasmi keeps an instance's exports
    /// in a `BTreeMap<Box<str>, Extern>` (no `hash-collections` feature);
    /// measured with a counting allocator around `instantiate`: 56 bytes
    /// per export of B-tree nodes and entries beyond the name's own bytes
    /// (x86_64; 95,000 exports: 6.04 MB with 8-byte names, 20.48 MB with
    /// 160-byte ones), plus 16 for the allocator's header and rounding of
    /// each name's allocation. The name's bytes are charged one for one.
    pub const EXPORT_BYTES: u64 = 72;
    /// Fuel per export, however short its name (measured: 350–440 ns each
    /// with `wasmgate run` on modules of 10,000–95,000 exports of one
    /// function, release build, x86_64 at ~1,230,000 fuel/ms; ~155 ns each
    /// with 100): wasmi allocates each name and inserts it into the
    /// instance's map, checking it is not there already.
    pub const EXPORT_FUEL: u64 = 600;
    /// Fuel per byte of export names (measured: ~0.4 ns per byte of names
    /// that differ early, 1.2–2.9 ns per byte of names sharing a long
    /// prefix, which every comparison in the map reads through; same
    /// machine as [`Self::EXPORT_FUEL`]). Charged at the worst case.
    pub const EXPORT_NAME_BYTE_FUEL: u64 = 4;
}

/// Most header fields a guest's response may carry. Defaults to 100:
/// responses carry a handful; thousands would be a guest flooding clients.
pub const MAX_RESPONSE_HEADERS: usize = 100;

/// Request bodies being read may hold at most `memory_budget` divided by
/// this. Defaults to 2 (half the budget): clients holding bodies (a large
/// declared length, the bytes sent slowly or never) must not deny memory to
/// requests without one, which always find the other half for their
/// functions.
pub const BODY_SHARE_DIVISOR: u64 = 2;

/// A size the way a config writes it: `"16MiB"`, or bytes (`"1000B"`);
/// errors that name a size limit show it so.
pub fn show_size(bytes: u64) -> String {
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

/// Longest duration any timeout may be set to. Defaults to 24 h: longer is a
/// typo, and `Instant + duration` must not overflow.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A board profile's `cores`: 1..=1024, more than any board has.
pub const CORES_RANGE: RangeInclusive<u64> = 1..=1024;
/// A board profile's `ram`: 16 MiB..=1 TiB, from the smallest Linux board to
/// more than any board has.
pub const RAM_RANGE: RangeInclusive<u64> = 16 << 20..=1 << 40;

/// wasmi call-stack bounds, the same for every function.
///
/// Defaults to 1000 nested calls and a value stack of 128 KiB
/// ([`MAX_STACK_HEIGHT`] is in bytes in wasmi 2: 16 Ki 8-byte cells, e.g.
/// ~135 frames of a function with 121 locals and temporaries): deep enough
/// for real code, and a suspended request holds at most 128 KiB of value
/// stack while it waits for its next fuel slice.
pub const MAX_RECURSION_DEPTH: usize = 1000;
/// See [`MAX_RECURSION_DEPTH`].
pub const MAX_STACK_HEIGHT: usize = 128 * 1024;

// What the ranges guarantee, checked when the crate compiles: the products
// and casts the server makes of config values cannot overflow, on 32-bit
// ARM included.
const _: () = {
    const U32: u64 = u32::MAX as u64;
    // The timeout rule: timeout (µs) × fuel_per_ms.
    assert!(
        (MAX_DURATION.as_secs() * 1_000_000)
            .checked_mul(MAX_FUEL_PER_MS)
            .is_some()
    );
    // Budget + a slice + what host calls charge past it.
    assert!(MAX_FUEL < u64::MAX / 1000);
    // Reserved memory + one more request's limit.
    assert!(
        ServerLimits::MEMORY_BUDGET_RANGE
            .end()
            .checked_add(*FunctionLimits::MEMORY_RANGE.end())
            .is_some()
    );
    // Values the server holds or casts as `usize` fit a 32-bit `usize`.
    assert!(*ServerLimits::MAX_BODY_RANGE.end() <= U32);
    assert!(*ServerLimits::MAX_HEADER_BYTES_RANGE.end() <= U32);
    assert!(*ServerLimits::MAX_HEADERS_RANGE.end() <= U32);
    assert!(*ServerLimits::MAX_CONNECTIONS_RANGE.end() <= U32);
    assert!(*ServerLimits::MAX_CONNECTIONS_PER_IP_RANGE.end() <= U32);
    assert!(*ServerLimits::MAX_IN_FLIGHT_RANGE.end() <= U32);
    assert!(*ServerLimits::MODULE_CACHE_RANGE.end() <= U32);
    assert!(*ServerLimits::MAX_MODULE_SIZE_RANGE.end() <= U32);
    assert!(*FunctionLimits::MAX_RESPONSE_RANGE.end() <= U32);
    assert!(*FunctionLimits::MAX_LOG_RANGE.end() <= U32);
    assert!(*ProxyLimits::POOL_SIZE_RANGE.end() <= U32);
    assert!(*ProxyLimits::FAIL_THRESHOLD_RANGE.end() <= U32);
    // `Retry-After` is a u32 of seconds.
    assert!(ServerLimits::RETRY_AFTER_RANGE.end().as_secs() <= U32);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_in_flight_requests_fit_the_default_budget() {
        let per_guest = FunctionLimits::DEFAULT_MEMORY + FunctionLimits::DEFAULT_MAX_RESPONSE;
        let fit = ServerLimits::DEFAULT_MEMORY_BUDGET / per_guest;
        assert_eq!(fit, ServerLimits::DEFAULT_MAX_IN_FLIGHT as u64);
    }
}
