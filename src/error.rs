//! Every way a request can fail, and the one place that maps each to an HTTP
//! status and an error kind.
//!
//! There is one error enum per boundary: [`DecodeError`] (reading a
//! message), [`LoadError`] (turning a file into a runnable module),
//! [`CallError`] (running a guest), [`ConfigError`] (reading
//! configuration). Each converts to a [`Kind`], which alone decides the
//! status code, the origin, the `x-wasmgate-error` header and the `error`
//! field of the JSON body. A request that fails carries an [`Error`]: its
//! kind, its message and the fields its answer adds.

use std::fmt;
use std::path::PathBuf;

use crate::limits::{ServerLimits, show_size};

/// The error kinds a client can see, in `x-wasmgate-error` and the JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No route matches the path.
    NotFound,
    /// A route matches the path but not the method.
    MethodNotAllowed,
    /// The request could not be parsed.
    BadRequest,
    /// The request line names an HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
    /// The client was too slow sending its request.
    RequestTimeout,
    /// The request body is larger than `max_body`.
    BodyTooLarge,
    /// The request head is larger than `max_header_bytes` or has more than
    /// `max_headers` fields.
    HeadersTooLarge,
    /// The function's module cannot be loaded (missing, invalid, bad import).
    ModuleUnavailable,
    /// The function used its whole fuel budget or its timeout (CPU time).
    Deadline,
    /// The function tried to grow its memory past its `memory` limit.
    MemoryLimit,
    /// The function trapped (unreachable, stack overflow, bad memory access…).
    Trap,
    /// The function's response broke the ABI (too large, malformed).
    BadResponse,
    /// A wasi-json function exited with a non-zero code, or a native-ABI
    /// function called `proc_exit` (any code).
    ExitCode,
    /// Admission control refused the request: too many in flight or the
    /// memory budget is taken.
    Overloaded,
    /// The server has too many open connections.
    TooManyConnections,
    /// The function's KV writes could not be committed: the store cannot
    /// be written, or a quota filled up while the request ran. The writes
    /// are discarded.
    StateUnavailable,
    /// No upstream could be reached, or one failed or closed the
    /// connection before its response was complete.
    UpstreamUnavailable,
    /// An upstream did not connect, answer or send its body in time.
    UpstreamTimeout,
    /// An upstream's response broke HTTP framing or a limit (a malformed
    /// or oversized head, a lying length, a protocol switch).
    UpstreamBadResponse,
}

/// Who an error is about: what an operator looks at first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client's request: unreadable, too large, too slow, unrouted.
    Client,
    /// The guest: it ran out of fuel or memory, trapped, exited or answered
    /// badly.
    Guest,
    /// An upstream behind the gateway: down, slow, or answering badly.
    Upstream,
    /// The host: a module it cannot load, or no capacity left.
    Internal,
}

impl Kind {
    /// Name, HTTP status and origin of every kind: the one table.
    fn row(self) -> (&'static str, u16, Origin) {
        use Origin::{Client, Guest, Internal, Upstream};
        match self {
            Kind::NotFound => ("not-found", 404, Client),
            Kind::MethodNotAllowed => ("method-not-allowed", 405, Client),
            Kind::BadRequest => ("bad-request", 400, Client),
            Kind::VersionNotSupported => ("version-not-supported", 505, Client),
            Kind::RequestTimeout => ("request-timeout", 408, Client),
            Kind::BodyTooLarge => ("body-too-large", 413, Client),
            Kind::HeadersTooLarge => ("headers-too-large", 431, Client),
            Kind::ModuleUnavailable => ("module-unavailable", 503, Internal),
            Kind::Deadline => ("deadline", 504, Guest),
            Kind::MemoryLimit => ("memory-limit", 502, Guest),
            Kind::Trap => ("trap", 502, Guest),
            Kind::BadResponse => ("bad-response", 502, Guest),
            Kind::ExitCode => ("exit-code", 502, Guest),
            Kind::Overloaded => ("overloaded", 503, Internal),
            Kind::TooManyConnections => ("too-many-connections", 503, Internal),
            Kind::StateUnavailable => ("state-unavailable", 503, Internal),
            Kind::UpstreamUnavailable => ("upstream-unavailable", 502, Upstream),
            Kind::UpstreamTimeout => ("upstream-timeout", 504, Upstream),
            Kind::UpstreamBadResponse => ("upstream-bad-response", 502, Upstream),
        }
    }

    /// The name used in `x-wasmgate-error`, the JSON body and the access log.
    pub fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The HTTP status code for this kind.
    pub fn status(self) -> u16 {
        self.row().1
    }

    /// Who the error is about.
    pub fn origin(self) -> Origin {
        self.row().2
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum DecodeError {
    /// The peer closed the connection, or stayed idle past `idle_timeout`,
    /// between requests: close quietly.
    Closed,
    /// The head did not arrive within `header_timeout`.
    HeadTimeout,
    /// The body did not arrive within `body_timeout`.
    BodyTimeout,
    /// The head is larger than `max_header_bytes`.
    HeadTooLarge,
    /// More than `max_headers` fields.
    TooManyHeaders,
    /// The body is larger than `max_body`.
    BodyTooLarge(u64),
    /// The request line names an HTTP version other than 1.0 and 1.1.
    UnsupportedVersion,
    /// The request is not valid HTTP/1.x, or could be framed or routed
    /// differently by another parser; the text says which rule it broke.
    Malformed(&'static str),
    /// The `http::Gate` refused memory for the body: the memory budget is full.
    Overloaded,
    /// A socket error.
    Io(std::io::Error),
}

impl DecodeError {
    /// The client-visible kind of this error. `Closed` and `Io` are never
    /// answered (the connection is gone); they read as a bad request.
    pub fn kind(&self) -> Kind {
        match self {
            DecodeError::HeadTimeout | DecodeError::BodyTimeout => Kind::RequestTimeout,
            DecodeError::HeadTooLarge | DecodeError::TooManyHeaders => Kind::HeadersTooLarge,
            DecodeError::BodyTooLarge(_) => Kind::BodyTooLarge,
            DecodeError::Overloaded => Kind::Overloaded,
            DecodeError::UnsupportedVersion => Kind::VersionNotSupported,
            DecodeError::Malformed(_) | DecodeError::Closed | DecodeError::Io(_) => {
                Kind::BadRequest
            }
        }
    }

    /// What the client is told, naming the limit it ran into and its value.
    pub fn message(&self, limits: &ServerLimits) -> String {
        match self {
            DecodeError::HeadTimeout => format!(
                "request head not received within header_timeout ({} ms)",
                limits.header_timeout.as_millis()
            ),
            DecodeError::BodyTimeout => format!(
                "request body not received within body_timeout ({} ms)",
                limits.body_timeout.as_millis()
            ),
            DecodeError::HeadTooLarge => format!(
                "request head is larger than {} bytes",
                limits.max_header_bytes
            ),
            DecodeError::TooManyHeaders => {
                format!("request has more than {} header fields", limits.max_headers)
            }
            DecodeError::BodyTooLarge(n) => format!(
                "request body of {n} bytes is larger than {} bytes",
                limits.max_body
            ),
            DecodeError::Overloaded => format!(
                "the request body does not fit in what is left of the memory budget (memory_budget = {} bytes); retry later",
                limits.memory_budget
            ),
            DecodeError::UnsupportedVersion => "only HTTP/1.0 and HTTP/1.1 are served".to_owned(),
            DecodeError::Malformed(why) => (*why).to_owned(),
            DecodeError::Closed | DecodeError::Io(_) => {
                "the connection failed while the request was read".to_owned()
            }
        }
    }
}

/// Why a request got an error response instead of a guest's: its kind (and
/// through it the status), the message for the client, and the fields the
/// answer adds (`retry-after`, `allow`). The pipeline returns it; the
/// application turns it into the JSON error body in one place.
#[derive(Debug)]
pub struct Error {
    /// The kind.
    pub kind: Kind,
    /// What the client is told.
    pub message: String,
    /// Header fields added to the error response.
    pub headers: Vec<(&'static str, String)>,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header field to the error response.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// Why a module file could not be turned into a runnable function.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is larger than `max_module_size`.
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// The bytes are not a valid WebAssembly module.
    Invalid { path: PathBuf, message: String },
    /// The module imports something wasmgate does not provide.
    Import {
        path: PathBuf,
        module: String,
        name: String,
        why: &'static str,
    },
    /// The module's exports fit no ABI, or not the one configured.
    Abi { path: PathBuf, message: String },
    /// The module is over one of its structural limits.
    Limit {
        path: PathBuf,
        exceeded: LimitExceeded,
    },
    /// The module fails to instantiate whatever the request: a data or
    /// element segment out of bounds, an initial memory larger than the
    /// memory budget, and the like.
    Instantiate { path: PathBuf, message: String },
    /// `[signatures]` refused it: unsigned while signatures are required,
    /// a signature that does not verify, or a malformed `.sig` file.
    Signature {
        path: PathBuf,
        error: crate::signature::SignatureError,
    },
    /// Loading failed in wasmgate itself, not because of the file (not
    /// cached: the next request tries again).
    Internal {
        path: PathBuf,
        message: &'static str,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, error } => {
                write!(f, "{}: cannot read module: {error}", path.display())
            }
            LoadError::TooLarge { path, size, limit } => write!(
                f,
                "{}: module is {size} bytes, larger than max_module_size ({limit} bytes)",
                path.display()
            ),
            LoadError::Invalid { path, message } => {
                write!(
                    f,
                    "{}: not a valid WebAssembly module: {message}",
                    path.display()
                )
            }
            LoadError::Import {
                path,
                module,
                name,
                why,
            } => write!(
                f,
                "{}: unsupported import `{}.{}`: {why}",
                path.display(),
                module.escape_debug(),
                name.escape_debug()
            ),
            LoadError::Abi { path, message } => write!(f, "{}: {message}", path.display()),
            LoadError::Limit { path, exceeded } => {
                write!(f, "{}: module refused: {exceeded}", path.display())
            }
            LoadError::Instantiate { path, message } => write!(
                f,
                "{}: module can never be instantiated: {message}",
                path.display()
            ),
            LoadError::Internal { path, message } => write!(f, "{}: {message}", path.display()),
            LoadError::Signature { path, error } => {
                write!(f, "{}: module refused: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Why a call into a guest did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The fuel budget ran out.
    OutOfFuel { budget: u64 },
    /// The module's start function used up its one fuel slice: it runs
    /// during instantiation, which is not sliced (`fuel_slice`).
    StartOutOfFuel { slice: u64 },
    /// The backstop fired: the request's own work (its fuel slices, host
    /// calls and instantiation) took more CPU time than its `timeout`.
    Timeout { timeout_ms: u64 },
    /// The guest asked for more memory than its limit.
    MemoryLimit { limit: u64 },
    /// The guest trapped; the message names the trap.
    Trap(String),
    /// The guest's response broke the ABI.
    BadResponse(String),
    /// A wasi-json guest exited with a non-zero status. WASI exit codes are
    /// `u32` (`proc_exit(-1)` is code 4294967295); wasmi passes them as `i32`.
    ExitCode(u32),
    /// The module cannot be instantiated within the function's `memory`
    /// limit: it declares more initial memory (`declared`, bytes), or that
    /// with its instance and tables (`needed`) is more. Refused before
    /// instantiating: the module's problem under this function's limits,
    /// not the guest's growth.
    InitialMemory {
        declared: u64,
        needed: u64,
        limit: u64,
    },
}

impl CallError {
    /// The client-visible kind of this error.
    pub fn kind(&self) -> Kind {
        match self {
            CallError::OutOfFuel { .. }
            | CallError::StartOutOfFuel { .. }
            | CallError::Timeout { .. } => Kind::Deadline,
            CallError::MemoryLimit { .. } => Kind::MemoryLimit,
            CallError::Trap(_) => Kind::Trap,
            CallError::BadResponse(_) => Kind::BadResponse,
            CallError::ExitCode(_) => Kind::ExitCode,
            CallError::InitialMemory { .. } => Kind::ModuleUnavailable,
        }
    }
}

/// The most bytes of a trap's or a bad response's message an error shows:
/// they may quote what a guest chose (a header name, an import's name),
/// and go to the log line and the error body.
pub const MAX_MESSAGE: usize = 1024;

/// `text` cut to at most `max` bytes (at a character boundary), saying
/// how long it was, when longer.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let kept = text.get(..end).unwrap_or_default();
    std::borrow::Cow::Owned(format!("{kept}… ({} bytes)", text.len()))
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::OutOfFuel { budget } => {
                write!(
                    f,
                    "function ran out of fuel: its budget is {budget} instructions"
                )
            }
            CallError::StartOutOfFuel { slice } => write!(
                f,
                "the module's start function ran out of fuel: a start function runs in one fuel slice ({slice} instructions, `fuel_slice`)"
            ),
            CallError::Timeout { timeout_ms } => {
                write!(
                    f,
                    "function ran past its timeout of {timeout_ms} ms of CPU time"
                )
            }
            CallError::MemoryLimit { limit } => {
                write!(
                    f,
                    "function tried to use more than its memory limit of {limit} bytes"
                )
            }
            CallError::Trap(message) => {
                write!(f, "function trapped: {}", clip(message, MAX_MESSAGE))
            }
            CallError::BadResponse(message) => write!(
                f,
                "function gave a bad response: {}",
                clip(message, MAX_MESSAGE)
            ),
            CallError::ExitCode(code) => write!(f, "function exited with code {code}"),
            CallError::InitialMemory {
                declared,
                needed,
                limit,
            } => {
                let shown = show_size(*limit);
                if declared > limit {
                    write!(
                        f,
                        "the module declares {} of initial memory; the function's `memory` limit is {shown}",
                        show_size(*declared)
                    )
                } else {
                    write!(
                        f,
                        "the module needs {} to instantiate ({} of initial memory, the rest for its instance and tables); the function's `memory` limit is {shown}",
                        show_size(*needed),
                        show_size(*declared)
                    )
                }
            }
        }
    }
}

impl std::error::Error for CallError {}

/// Why an upstream gave no usable response: the reverse proxy's boundary.
#[derive(Debug)]
pub enum UpstreamError {
    /// Connecting failed (refused, unreachable).
    Connect(std::io::Error),
    /// Connecting took longer than `connect_timeout`.
    ConnectTimeout(std::time::Duration),
    /// The connection failed while the request was sent or the response
    /// read (a reset).
    Io(std::io::Error),
    /// The upstream closed the connection before its response was complete.
    Closed,
    /// The response head did not arrive within `response_timeout`.
    HeadTimeout(std::time::Duration),
    /// The response body stopped arriving for `upstream_body_timeout`.
    BodyTimeout(std::time::Duration),
    /// The response head is larger than `max_header_bytes` or has more
    /// than `max_headers` fields.
    HeadTooLarge,
    /// The response breaks HTTP/1.1 framing; the text says which rule.
    Malformed(&'static str),
    /// The response body is larger than the limit named.
    BodyTooLarge {
        length: u64,
        limit: u64,
        key: &'static str,
    },
    /// The upstream answered `101 Switching Protocols`: no upgrade is
    /// passed through.
    Upgrade,
}

impl UpstreamError {
    /// The client-visible kind of this error.
    pub fn kind(&self) -> Kind {
        match self {
            UpstreamError::ConnectTimeout(_)
            | UpstreamError::HeadTimeout(_)
            | UpstreamError::BodyTimeout(_) => Kind::UpstreamTimeout,
            UpstreamError::Connect(_) | UpstreamError::Io(_) | UpstreamError::Closed => {
                Kind::UpstreamUnavailable
            }
            UpstreamError::HeadTooLarge
            | UpstreamError::Malformed(_)
            | UpstreamError::BodyTooLarge { .. }
            | UpstreamError::Upgrade => Kind::UpstreamBadResponse,
        }
    }

    /// Whether the upstream itself is failing (passive health counts it):
    /// it cannot be reached or does not answer, as opposed to a response
    /// it gave.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect(_)
                | UpstreamError::ConnectTimeout(_)
                | UpstreamError::HeadTimeout(_)
        )
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &std::time::Duration| d.as_millis();
        match self {
            UpstreamError::Connect(e) => write!(f, "cannot connect to the upstream: {e}"),
            UpstreamError::ConnectTimeout(d) => write!(
                f,
                "the upstream did not accept a connection within connect_timeout ({} ms)",
                ms(d)
            ),
            UpstreamError::Io(e) => write!(f, "the upstream connection failed: {e}"),
            UpstreamError::Closed => f.write_str(
                "the upstream closed the connection before its response was complete",
            ),
            UpstreamError::HeadTimeout(d) => write!(
                f,
                "the upstream did not answer within response_timeout ({} ms)",
                ms(d)
            ),
            UpstreamError::BodyTimeout(d) => write!(
                f,
                "the upstream's response body stopped for upstream_body_timeout ({} ms)",
                ms(d)
            ),
            UpstreamError::HeadTooLarge => f.write_str(
                "the upstream's response head is larger than max_header_bytes or has more than max_headers fields",
            ),
            UpstreamError::Malformed(why) => write!(f, "the upstream's response is malformed: {why}"),
            UpstreamError::BodyTooLarge { length, limit, key } => write!(
                f,
                "the upstream's response body of {length} bytes is larger than {key} ({limit} bytes)"
            ),
            UpstreamError::Upgrade => f.write_str(
                "the upstream switched protocols (101): upgrades are not passed through",
            ),
        }
    }
}

impl From<UpstreamError> for Error {
    fn from(e: UpstreamError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// A configuration problem: names the file, the line when known, and the key.
#[derive(Debug)]
pub struct ConfigError {
    /// The file the problem is in (`wasmgate.toml`, `boards/x.toml (built
    /// in)`), or what stands for one (`board `x``) when there is no file.
    pub file: String,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE: MESSAGE` on one line. Control characters that config
    /// text carried into the file name or message (a NUL, an escape, a line
    /// break) are shown escaped: an error never forges or splits a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        write_escaped(f, &self.message)
    }
}

/// Writes `text` with every control character escaped (`\0`, `\n`,
/// `\u{1b}`).
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c.is_control() {
            true => write!(f, "{}", c.escape_debug())?,
            false => write!(f, "{c}")?,
        }
    }
    Ok(())
}

impl std::error::Error for ConfigError {}

/// A module over one of its structural limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// What is counted, e.g. "globals".
    pub what: &'static str,
    /// How many the module has.
    pub actual: u64,
    /// The limit, and the config key that sets it (`None`: fixed).
    pub limit: u64,
    pub key: Option<&'static str>,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.what, self.key) {
            ("average function bytes", Some(key)) => write!(
                f,
                "its functions average {} bytes, fewer than `{key}` ({})",
                self.actual, self.limit
            ),
            (what, Some(key)) => write!(
                f,
                "it has {} {what}, more than `{key}` ({})",
                self.actual, self.limit
            ),
            (what, None) => write!(
                f,
                "it has {} {what}, more than the {} wasmgate can instantiate",
                self.actual, self.limit
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_documented_statuses() {
        assert_eq!(Kind::Deadline.status(), 504);
        assert_eq!(Kind::MemoryLimit.status(), 502);
        assert_eq!(Kind::BodyTooLarge.status(), 413);
        assert_eq!(Kind::HeadersTooLarge.status(), 431);
        assert_eq!(Kind::VersionNotSupported.status(), 505);
        assert_eq!(Kind::Overloaded.status(), 503);
        assert_eq!(CallError::Timeout { timeout_ms: 5 }.kind(), Kind::Deadline);
        assert_eq!(Kind::ModuleUnavailable.as_str(), "module-unavailable");
    }

    #[test]
    fn kinds_have_origins() {
        assert_eq!(Kind::BodyTooLarge.origin(), Origin::Client);
        assert_eq!(Kind::Trap.origin(), Origin::Guest);
        assert_eq!(Kind::Overloaded.origin(), Origin::Internal);
        assert_eq!(Kind::UpstreamTimeout.origin(), Origin::Upstream);
        assert_eq!(Kind::UpstreamTimeout.status(), 504);
        assert_eq!(Kind::UpstreamUnavailable.status(), 502);
        assert_eq!(UpstreamError::Closed.kind(), Kind::UpstreamUnavailable);
        assert_eq!(DecodeError::HeadTimeout.kind(), Kind::RequestTimeout);
        assert_eq!(DecodeError::TooManyHeaders.kind(), Kind::HeadersTooLarge);
    }

    #[test]
    fn config_errors_escape_control_characters() {
        let e = ConfigError {
            file: "a\nb.toml".into(),
            line: Some(3),
            message: "`route` got \"/\0\u{1b}[31m\u{7f}\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "a\\nb.toml:3: `route` got \"/\\0\\u{1b}[31m\\u{7f}\""
        );
    }

    #[test]
    fn guest_text_in_an_error_is_clipped_at_a_character_boundary() {
        assert_eq!(clip("short", 5), "short");
        assert_eq!(clip("ééé", 3), "é… (6 bytes)");
        let e = CallError::Trap("x".repeat(100_000));
        let shown = e.to_string();
        assert!(shown.len() < MAX_MESSAGE + 64, "{}", shown.len());
        assert!(shown.ends_with("… (100000 bytes)"), "{shown}");
    }
}
