//! Every way a request can fail, and the one place that maps each to an HTTP
//! status and an error kind.
//!
//! There is one error enum per boundary: [`LoadError`] (turning a file into a
//! runnable module), [`CallError`] (running a guest), [`ConfigError`] (reading
//! configuration). Each converts to a [`Kind`], which alone decides the status
//! code, the `x-wasmgate-error` header and the `error` field of the JSON body.

use std::fmt;
use std::path::PathBuf;

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
    /// The function used its whole fuel budget or its wall-clock timeout.
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
}

impl Kind {
    /// The name used in `x-wasmgate-error`, the JSON body and the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::BadRequest => "bad-request",
            Kind::VersionNotSupported => "version-not-supported",
            Kind::RequestTimeout => "request-timeout",
            Kind::BodyTooLarge => "body-too-large",
            Kind::HeadersTooLarge => "headers-too-large",
            Kind::ModuleUnavailable => "module-unavailable",
            Kind::Deadline => "deadline",
            Kind::MemoryLimit => "memory-limit",
            Kind::Trap => "trap",
            Kind::BadResponse => "bad-response",
            Kind::ExitCode => "exit-code",
            Kind::Overloaded => "overloaded",
            Kind::TooManyConnections => "too-many-connections",
        }
    }

    /// The HTTP status code for this kind.
    pub fn status(self) -> u16 {
        match self {
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::BadRequest => 400,
            Kind::VersionNotSupported => 505,
            Kind::RequestTimeout => 408,
            Kind::BodyTooLarge => 413,
            Kind::HeadersTooLarge => 431,
            Kind::ModuleUnavailable => 503,
            Kind::Deadline => 504,
            Kind::MemoryLimit | Kind::Trap | Kind::BadResponse | Kind::ExitCode => 502,
            Kind::Overloaded | Kind::TooManyConnections => 503,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        exceeded: crate::runtime::structure::LimitExceeded,
    },
    /// The module fails to instantiate whatever the request: a data or
    /// element segment out of bounds, an initial memory larger than the
    /// memory budget, and the like.
    Instantiate { path: PathBuf, message: String },
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
    /// The wall-clock backstop fired.
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
        }
    }
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
                    "function ran past its wall-clock timeout of {timeout_ms} ms"
                )
            }
            CallError::MemoryLimit { limit } => {
                write!(
                    f,
                    "function tried to use more than its memory limit of {limit} bytes"
                )
            }
            CallError::Trap(message) => write!(f, "function trapped: {message}"),
            CallError::BadResponse(message) => write!(f, "function gave a bad response: {message}"),
            CallError::ExitCode(code) => write!(f, "function exited with code {code}"),
        }
    }
}

impl std::error::Error for CallError {}

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
}
