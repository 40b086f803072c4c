//! Every limit wasmgate enforces, with its default and the reason for it.
//!
//! [`FunctionLimits`] bound one request's guest; [`ServerLimits`] bound the
//! server as a whole. Both are plain values: `config` fills them from
//! `wasmgate.toml`, the rest of the server only reads them.

use std::time::Duration;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Limits applied to every call of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLimits {
    /// Instructions (wasmi fuel units) one request may execute. This is the
    /// deadline: deterministic, the same on every board.
    pub fuel: u64,
    /// Fuel executed between two yields to the executor; smaller slices give
    /// fairer latency to other requests at a small cost in throughput.
    pub fuel_slice: u64,
    /// Wall-clock backstop, checked between slices.
    pub timeout: Duration,
    /// Most bytes of linear memory the guest may hold (all memories together).
    pub memory: u64,
    /// Largest response (native) or stdout (wasi-json) the guest may produce.
    pub max_response: u64,
    /// Bytes of log output (guest `log` calls, stderr) kept per request.
    pub max_log: u64,
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
    /// catches time spent outside metered code.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Defaults to 8 MiB: a Rust handler built with a 64 KiB stack starts at
    /// 128 KiB and rarely needs 1–2 MiB; 8 leaves room for real work while
    /// `max_in_flight` requests fit the default `memory_budget`.
    pub const DEFAULT_MEMORY: u64 = 8 * MIB;
    /// Defaults to 1 MiB: functions answer API calls, not file downloads.
    pub const DEFAULT_MAX_RESPONSE: u64 = MIB;
    /// Defaults to 16 KiB: enough for diagnostics, too little to flood the log.
    pub const DEFAULT_MAX_LOG: u64 = 16 * KIB;
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
    /// Compiled modules kept in memory (least recently used are dropped).
    pub module_cache: usize,
    /// How long a cached module is trusted before its file is checked for a
    /// change again; zero checks on every request.
    pub module_check_interval: Duration,
    /// Largest module file accepted.
    pub max_module_size: u64,
    /// Seconds a client is told to wait (`Retry-After`) when overloaded.
    pub retry_after_secs: u32,
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
    /// Defaults to 32, the default `memory_budget` divided by the default
    /// `memory`. Admission also reserves `max_response`, and bodies being
    /// read and responses being written take from the budget too: with
    /// every default, 28 guests fit at once (256 MiB / 9 MiB). Functions
    /// with a smaller `memory` (a few MiB is typical) meet this count first.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
    /// Defaults to 256 MiB: half of a 512 MiB board.
    pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * MIB;
    /// Defaults to 1 MiB: functions take API payloads, not uploads.
    pub const DEFAULT_MAX_BODY: u64 = MIB;
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
    /// Defaults to 1 s: a deployed file is served within a second; checking
    /// on every request costs a stat call per request (two such calls were
    /// ~7% of the server's CPU under load on `GET /hello`).
    pub const DEFAULT_MODULE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
    /// Defaults to 16 MiB: a large Rust or Go function is 2–8 MiB.
    pub const DEFAULT_MAX_MODULE_SIZE: u64 = 16 * MIB;
    /// Defaults to 1 s.
    pub const DEFAULT_RETRY_AFTER_SECS: u32 = 1;
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
            module_check_interval: Self::DEFAULT_MODULE_CHECK_INTERVAL,
            max_module_size: Self::DEFAULT_MAX_MODULE_SIZE,
            retry_after_secs: Self::DEFAULT_RETRY_AFTER_SECS,
        }
    }
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

/// Longest duration any timeout may be set to. Defaults to 24 h: longer is a
/// typo, and `Instant + duration` must not overflow.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// wasmi call-stack bounds, the same for every function.
///
/// Defaults to 1000 nested calls and 128 Ki value slots (1 MiB) per call
/// stack: deep enough for real code, and a suspended request holds at most
/// 1 MiB of stack while it waits for its next fuel slice.
pub const MAX_RECURSION_DEPTH: usize = 1000;
/// See [`MAX_RECURSION_DEPTH`].
pub const MAX_STACK_HEIGHT: usize = 128 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_in_flight_requests_fit_the_default_budget() {
        let fit = ServerLimits::DEFAULT_MEMORY_BUDGET / FunctionLimits::DEFAULT_MEMORY;
        assert!(fit >= ServerLimits::DEFAULT_MAX_IN_FLIGHT as u64);
    }
}
