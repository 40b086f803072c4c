//! Crash dumps (`[dumps]`): a request whose guest failed (trap, deadline,
//! memory limit, bad response, exit code) — a function, or an http-wasm
//! middleware in its chain ([`MiddlewareFailure`]) — is written to a TOML file
//! ([`format`]) with everything `wasmgate replay` needs to run it again
//! offline and stop at the same fuel count: the request, the module's
//! path and SHA-256, the function's limits, args and env, the outcome,
//! and the nondeterministic inputs its guest consumed (`Inputs`).
//!
//! The directory is a ring: after each dump, the oldest files go until at
//! most `max_files` files and `max_bytes` bytes are left. Writing happens
//! off the executor, on a thread of its own, at most [`MAX_PENDING`] at a
//! time (more failures meanwhile are not dumped, and say so in the log); a
//! dump that cannot be written is a log line, never a failed request.

pub mod format;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

pub use format::{Bytes, Dump, HttpResponse, HttpWasm, Limits, ModuleRef, Outcome, Request};

use crate::config::{DumpsConfig, FunctionSpec, MiddlewareSpec};
use crate::error::CallError;
use crate::runtime::digest::sha256;
use crate::runtime::exchange::Message;
use crate::runtime::tape::{Inputs, to_hex};

/// Dumps being written at once; a failure while this many are pending is
/// not dumped: a burst of failures cannot queue unbounded disk work.
pub const MAX_PENDING: usize = 4;

/// Dumps written in a burst: 20; after it, one more every
/// [`DUMP_INTERVAL`]. A client that makes a function fail on every request
/// cannot rewrite the ring (and wear the board's flash) at its request
/// rate: the dumps that matter stay, and the rest are log lines.
pub const DUMP_BURST: u32 = 20;

/// One more dump after a burst: every 3 s (20 a minute).
pub const DUMP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// What the request pipeline hands over for a dump.
pub struct Failure<'a> {
    pub function: &'a FunctionSpec,
    pub abi: crate::abi::Abi,
    pub request: &'a crate::abi::GuestRequest<'a>,
    pub error: &'a CallError,
    pub fuel: u64,
    pub inputs: Inputs,
    /// An http-wasm function's exchange.
    pub http: Option<HttpWasm>,
}

/// What the middleware chain hands over for the dump of a middleware that
/// failed.
pub struct MiddlewareFailure<'a> {
    pub middleware: &'a MiddlewareSpec,
    /// The route it guards.
    pub route: &'a str,
    /// The request as it got it in `handle_request` (before its changes).
    pub request: &'a Message,
    pub trace_id: &'a str,
    pub error: &'a CallError,
    /// The fuel its instance used.
    pub fuel: u64,
    pub inputs: Inputs,
    /// Its exchange (phase, config, response).
    pub http: HttpWasm,
}

/// The dump writer of one configured `[dumps]`.
#[derive(Debug)]
pub struct Dumps {
    config: DumpsConfig,
    pending: AtomicUsize,
    /// The next dump's number: one more than the highest in the directory
    /// when the first dump is written (`None` until then), so that names
    /// sort in the order dumps were written, across restarts and whatever
    /// the wall clock did (a board without a clock restarts in 1970).
    next: Mutex<Option<u64>>,
    /// Dumps that may be written now ([`DUMP_BURST`] at most) and when
    /// the count was last topped up.
    allowance: Mutex<(u32, std::time::Instant)>,
    /// Dumps skipped by the allowance since the last one written (logged
    /// with the next).
    skipped: AtomicUsize,
}

impl Dumps {
    /// `[dumps] max_bytes`: no dump is larger, so no copy for one need be.
    pub fn max_bytes(&self) -> u64 {
        self.config.max_bytes
    }

    pub fn new(config: DumpsConfig) -> Self {
        Self {
            config,
            pending: AtomicUsize::new(0),
            next: Mutex::new(None),
            allowance: Mutex::new((DUMP_BURST, std::time::Instant::now())),
            skipped: AtomicUsize::new(0),
        }
    }

    /// Its `[dumps]`.
    pub fn config(&self) -> &DumpsConfig {
        &self.config
    }

    /// Writes a dump of `failure` in the background. Never fails: a dump
    /// that cannot be written (too many pending, disk full, too large for
    /// `max_bytes`) is a log line.
    pub fn write(self: &std::sync::Arc<Self>, failure: Failure<'_>) {
        if self.busy(failure.request.trace_id) {
            return;
        }
        self.spawn(dump_of(failure));
    }

    /// Writes a dump of a middleware's `failure` in the background, as
    /// [`Dumps::write`].
    pub fn write_middleware(self: &std::sync::Arc<Self>, failure: MiddlewareFailure<'_>) {
        if self.busy(failure.trace_id) {
            return;
        }
        self.spawn(middleware_dump(failure));
    }

    /// Whether the allowance ([`DUMP_BURST`], [`DUMP_INTERVAL`]) is spent
    /// or [`MAX_PENDING`] dumps are being written (logged); if not, one
    /// more is counted.
    fn busy(&self, trace: &str) -> bool {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            log::warn!(
                "[{trace}] crash dump skipped: {MAX_PENDING} dumps are being written already"
            );
            return true;
        }
        // Only a dump that will be written takes from the allowance.
        if !self.allowed(std::time::Instant::now()) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            let skipped = self.skipped.fetch_add(1, Ordering::AcqRel) + 1;
            log::warn!(
                "[{trace}] crash dump skipped: more than {DUMP_BURST} dumps in a burst ({skipped} skipped since the last written; one more every {} s)",
                DUMP_INTERVAL.as_secs()
            );
            return true;
        }
        self.skipped.store(0, Ordering::Release);
        false
    }

    /// Takes one dump from the allowance, topped up by one per
    /// [`DUMP_INTERVAL`] since it last was; `false` if none is left.
    fn allowed(&self, now: std::time::Instant) -> bool {
        let mut allowance = self
            .allowance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (left, since) = &mut *allowance;
        let elapsed = now.saturating_duration_since(*since);
        let earned = elapsed.as_millis() / DUMP_INTERVAL.as_millis().max(1);
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            *left = left.saturating_add(earned).min(DUMP_BURST);
            *since = match DUMP_INTERVAL.checked_mul(earned) {
                Some(used) if *left < DUMP_BURST => *since + used,
                _ => now,
            };
        }
        if *left == 0 {
            return false;
        }
        if *left == DUMP_BURST {
            // Full: time until now earned nothing more.
            *since = now;
        }
        *left -= 1;
        true
    }

    /// Writes `dump` on a thread of its own (counted by [`Dumps::busy`]).
    fn spawn(self: &std::sync::Arc<Self>, dump: Dump) {
        let trace = dump.request.trace_id.clone();
        let this = std::sync::Arc::clone(self);
        // A thread of its own (at most `MAX_PENDING`), not
        // `smol::unblock`: a task type for it cost ~7 KB of binary.
        let spawned = std::thread::Builder::new()
            .name("wasmgate-dump".into())
            .spawn(move || {
                let result = this.save(dump);
                this.pending.fetch_sub(1, Ordering::AcqRel);
                match result {
                    Ok(path) => log::info!("[{trace}] crash dump written: {}", path.display()),
                    Err(e) => log::warn!("[{trace}] crash dump not written: {e}"),
                }
            });
        if let Err(e) = spawned {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            log::warn!("crash dump not written: no thread to write it: {e}");
        }
    }

    /// Hashes the module, writes the dump (to a temporary name, then
    /// renamed: a reader never sees half a file) and trims the ring.
    fn save(&self, mut dump: Dump) -> Result<PathBuf, String> {
        let module = Path::new(&dump.module.path);
        let bytes = std::fs::read(module).map_err(|e| format!("{}: {e}", module.display()))?;
        dump.module.sha256 = to_hex(&sha256(&bytes));
        drop(bytes);
        let json = dump.to_toml().into_bytes();
        let len = u64::try_from(json.len()).unwrap_or(u64::MAX);
        if len > self.config.max_bytes {
            return Err(format!(
                "it is {len} bytes, more than [dumps] max_bytes ({})",
                self.config.max_bytes
            ));
        }
        let dir = &self.config.dir;
        let in_dir = |e: std::io::Error| format!("{}: {e}", dir.display());
        std::fs::create_dir_all(dir).map_err(in_dir)?;
        let seq = self.number(dir);
        let name = format!(
            "{seq:013}-{:013}-{}{SUFFIX}",
            dump.unix_ms,
            file_safe(&dump.function)
        );
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        write_private(&tmp, &json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                in_dir(e)
            })?;
        self.trim().map_err(in_dir)?;
        Ok(path)
    }

    /// The next dump's number (see [`Dumps::next`]).
    fn number(&self, dir: &Path) -> u64 {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let n = *next.get_or_insert_with(|| {
            let highest = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name();
                    let name = name.as_encoded_bytes();
                    if !is_dump_name(name) {
                        return None;
                    }
                    std::str::from_utf8(&name[..13]).ok()?.parse::<u64>().ok()
                })
                .max();
            highest.map_or(0, |h| h.saturating_add(1))
        });
        // Thirteen digits: 10^13 dumps.
        *next = Some(n.saturating_add(1) % 10_000_000_000_000);
        n
    }

    /// Deletes the oldest dumps until at most `max_files` files and
    /// `max_bytes` bytes are left.
    fn trim(&self) -> std::io::Result<()> {
        use std::os::unix::ffi::OsStringExt;
        let dir = &self.config.dir;
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut bytes: u64 = 0;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().into_vec();
            // A directory or a link named like a dump is not one.
            if is_dump_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
                bytes = bytes.saturating_add(entry.metadata().map_or(0, |m| m.len()));
                names.push(name);
            }
        }
        // The names start with the dump's number: sorted, oldest first.
        names.sort();
        let mut files = u64::try_from(names.len()).unwrap_or(u64::MAX);
        for name in names {
            if files <= self.config.max_files && bytes <= self.config.max_bytes {
                break;
            }
            let path = dir.join(std::ffi::OsString::from_vec(name));
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            match std::fs::remove_file(&path) {
                // Another writer trimmed it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                result => result?,
            }
            files -= 1;
            bytes = bytes.saturating_sub(len);
        }
        Ok(())
    }
}

/// The end of every dump file's name.
pub const SUFFIX: &str = ".dump.toml";

/// Whether `name` is a dump's file name (`NUMBER-UNIXMS-FUNCTION.dump.toml`):
/// the ring deletes nothing else.
fn is_dump_name(name: &[u8]) -> bool {
    name.ends_with(SUFFIX.as_bytes())
        && name.len() > 21
        && name[..13].iter().all(u8::is_ascii_digit)
}

/// `name` with everything but ASCII letters, digits, `-` and `_` replaced
/// by `_`, cut to 64 characters: a function name in a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .collect()
}

/// Writes `bytes` to a new file readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// The module at `path`, its hash to be filled in when the dump is written.
fn unhashed(path: &std::path::Path) -> ModuleRef {
    ModuleRef {
        path: path.display().to_string(),
        sha256: String::new(),
    }
}

/// The guest log level of the moment, as a dump records it (replay runs
/// the guest at the same level).
fn guest_log() -> String {
    crate::runtime::tape::guest_log_level()
        .as_str()
        .to_ascii_lowercase()
}

/// The dump of `failure` (its module hash is filled in when written).
fn dump_of(failure: Failure<'_>) -> Dump {
    let Failure {
        function,
        abi,
        request,
        error,
        fuel,
        inputs,
        http,
    } = failure;
    Dump {
        http,
        unix_ms: now_ms(),
        function: function.name.clone(),
        route: function.route.clone(),
        module: unhashed(&function.module),
        abi: abi.to_string(),
        limits: Limits::of(&function.limits),
        args: function.args.clone(),
        env: function.env.clone(),
        guest_log: guest_log(),
        request: Request {
            method: request.method.to_owned(),
            uri: request.uri.to_owned(),
            headers: headers_of(&request.headers),
            body: Bytes::of(request.body),
            trace_id: request.trace_id.to_owned(),
        },
        outcome: outcome(error, fuel),
        inputs,
    }
}

/// The dump of a middleware's `failure` (its module hash is filled in
/// when written).
fn middleware_dump(failure: MiddlewareFailure<'_>) -> Dump {
    let MiddlewareFailure {
        middleware,
        route,
        request,
        trace_id,
        error,
        fuel,
        inputs,
        http,
    } = failure;
    Dump {
        unix_ms: now_ms(),
        function: middleware.name.clone(),
        route: route.to_owned(),
        module: unhashed(&middleware.module),
        abi: crate::abi::Abi::HttpWasm.to_string(),
        limits: Limits::of(&middleware.limits),
        args: Vec::new(),
        env: Vec::new(),
        guest_log: guest_log(),
        request: Request {
            method: request.method.clone(),
            uri: request.uri.clone(),
            headers: headers_of(&request.request_headers),
            body: Bytes::of(&request.request_body),
            trace_id: trace_id.to_owned(),
        },
        outcome: outcome(error, fuel),
        inputs,
        http: Some(http),
    }
}

/// The exchange of an http-wasm guest that failed in `phase`: `message`
/// is what its `handle_response` got (with `is_error`), if that failed;
/// `request` is the request it got in `handle_request`.
pub fn http_wasm(
    (role, phase): (&str, crate::abi::http_wasm::Phase),
    config: &[u8],
    exchange: &crate::runtime::exchange::ExchangeLimits,
    (request, snapshot): (&Message, bool),
    response: Option<(&Message, bool)>,
) -> HttpWasm {
    HttpWasm {
        role: role.to_owned(),
        phase: phase.as_str().to_owned(),
        config: Bytes::of(config),
        peer: request.peer.map(|p| p.to_string()).unwrap_or_default(),
        snapshot,
        max_body: exchange.max_body,
        max_headers: u64::try_from(exchange.max_request_headers).unwrap_or(u64::MAX),
        max_header_bytes: exchange.max_request_header_bytes,
        response: response.map(|(message, is_error)| HttpResponse {
            is_error,
            status: message.status,
            headers: headers_of(&message.response_headers),
            body: Bytes::of(&message.response_body),
            method: message.method.clone(),
            uri: message.uri.clone(),
            request_headers: headers_of(&message.request_headers),
            request_body: (message.request_body != request.request_body)
                .then(|| Bytes::of(&message.request_body)),
        }),
    }
}

/// Header fields as a dump records them: names as they are, values as text
/// or hex.
fn headers_of<N: AsRef<str>, V: AsRef<[u8]>>(headers: &[(N, V)]) -> Vec<(String, Bytes)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_ref().to_owned(), Bytes::of(v.as_ref())))
        .collect()
}

fn outcome(error: &CallError, fuel: u64) -> Outcome {
    let kind = error.kind();
    Outcome {
        error: kind.as_str().to_owned(),
        message: error.to_string(),
        status: kind.status(),
        fuel,
    }
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dumps_come_in_a_burst_then_one_per_interval() {
        let dumps = super::Dumps::new(crate::config::DumpsConfig::new(std::env::temp_dir()));
        let start = std::time::Instant::now();
        for _ in 0..super::DUMP_BURST {
            assert!(dumps.allowed(start));
        }
        assert!(!dumps.allowed(start), "the burst is spent");
        // An interval later, one more (and only one).
        let later = start + super::DUMP_INTERVAL;
        assert!(dumps.allowed(later));
        assert!(!dumps.allowed(later));
        // A long quiet time refills the burst, no more.
        let quiet = later + super::DUMP_INTERVAL * 100;
        for _ in 0..super::DUMP_BURST {
            assert!(dumps.allowed(quiet));
        }
        assert!(!dumps.allowed(quiet));
    }

    use super::*;

    #[test]
    fn only_dump_names_are_trimmed() {
        assert!(is_dump_name(b"1764661234567-000001-crash.dump.toml"));
        assert!(!is_dump_name(b"notes.json"));
        assert!(!is_dump_name(b".1764661234567-000001-crash.dump.toml.tmp"));
        assert!(!is_dump_name(b"abc.dump.toml"));
        assert_eq!(file_safe("a/../b c"), "a____b_c");
    }

    #[test]
    fn numbers_go_on_from_the_directory_and_the_ring_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("wasmgate-dumps-ring-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Written before a restart, with a clock ahead of today's.
        for name in [
            "0000000000007-9999999999999-f.dump.toml",
            "0000000000003-9999999999998-f.dump.toml",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        // A directory named like a dump is neither counted nor deleted.
        std::fs::create_dir(dir.join("0000000000001-0000000000000-d.dump.toml")).unwrap();
        let mut config = DumpsConfig::new(dir.clone());
        config.max_files = 2;
        let dumps = Dumps::new(config);
        assert_eq!(dumps.number(&dir), 8);
        assert_eq!(dumps.number(&dir), 9);
        std::fs::write(dir.join("0000000000008-0000000000001-f.dump.toml"), b"x").unwrap();
        dumps.trim().unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "0000000000001-0000000000000-d.dump.toml",
                "0000000000007-9999999999999-f.dump.toml",
                "0000000000008-0000000000001-f.dump.toml"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
