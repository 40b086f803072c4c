//! `wasmgate replay DUMP [--module NEW.wasm] [--env VAR]...`: runs a crash
//! dump's request again, offline, with the inputs its guest consumed fed
//! back (clock readings and random bytes in order, KV operations answered
//! from the recording, nothing written to a store), under the same limits
//! and fuel slicing; prints the recorded and the replayed outcome side by
//! side. An http-wasm middleware runs again alone, up to the call that
//! failed, on the request and response it got ([`replay_http_wasm`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use lexopt::prelude::*;

use super::{CliError, Command};
use crate::abi;
use crate::abi::Compiled;
use crate::abi::http_wasm::{self, Guest, Phase};
use crate::app::dumps::HttpWasm;
use crate::app::dumps::{Bytes, Dump};
use crate::cache;
use crate::config::{AbiChoice, FunctionSpec};
use crate::error::CallError;
use crate::limits::MAX_RESPONSE_HEADERS;
use crate::limits::ServerLimits;
use crate::runtime::Runtime;
use crate::runtime::digest::sha256;
use crate::runtime::exchange::{ExchangeLimits, Message};
use crate::runtime::tape::{Shared, Tape, to_hex};
use std::net::SocketAddr;
use std::sync::Arc;

pub const USAGE: &str = "\
Usage: wasmgate replay DUMP [--module NEW.wasm] [--env VAR]...

Runs the request of crash dump DUMP (a file in [dumps] dir) again, offline:
the same request, limits and fuel slicing, with the clock readings, random
bytes and KV answers its guest consumed fed back in order (KV writes go
nowhere). An http-wasm middleware runs again up to the call that failed
(`_start`, `handle_request`, or `handle_response` on the recorded
response); an http-wasm function as the server ran it. Prints the recorded
and the replayed outcome (error kind, fuel, status) and `reproduced` or
`differs`.

  --module NEW.wasm   run NEW.wasm on the same inputs instead of the
                      dump's module (e.g. a fixed build) and show what it
                      does. Inputs it asks for beyond the recording: the
                      clock stands still at its last recorded reading,
                      random bytes are zeros, KV operations answer
                      `unavailable`.
  --env VAR           give the guest this process's $VAR where the dump
                      holds `<redacted: $VAR>`: a middleware config value
                      the server took from the environment (`NAME_env`),
                      never written to a dump. Repeat for each variable.
                      Only variables named so are read: a dump is not
                      trusted, and must not choose which of your
                      variables its guest sees.

Without --module, the module file named in the dump must still have the
recorded SHA-256.

Exit codes: 0 reproduced (the same error kind, status and fuel), 3 the
replay differs from the recording (with --module: NEW.wasm does something
else, e.g. a fix works), 1 the dump or the module cannot be read, 2 usage
error.";

/// Largest dump file read: far above what `[dumps]` writes for the
/// largest `max_body`.
const MAX_DUMP_BYTES: u64 = 1 << 30;

/// Arguments of `wasmgate replay`.
#[derive(Debug, PartialEq)]
pub struct ReplayArgs {
    dump: PathBuf,
    module: Option<PathBuf>,
    /// The variables `--env` names, in order: the only ones read.
    env: Vec<String>,
}

pub fn parse(p: &mut lexopt::Parser) -> Result<Command, CliError> {
    let (mut dump, mut module, mut env) = (None, None, Vec::new());
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(USAGE)),
            Long("module") => module = Some(PathBuf::from(p.value()?)),
            Long("env") => {
                let var = p
                    .value()?
                    .into_string()
                    .map_err(|v| CliError::Usage(format!("replay: --env {v:?} is not UTF-8")))?;
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    return Err(CliError::Usage(format!(
                        "replay: --env takes a variable's name, not {var:?}"
                    )));
                }
                env.push(var);
            }
            Value(v) if dump.is_none() => dump = Some(PathBuf::from(v)),
            other => return Err(other.unexpected().into()),
        }
    }
    let dump = dump.ok_or_else(|| CliError::Usage("replay: give a DUMP file".into()))?;
    Ok(Command::Replay(ReplayArgs { dump, module, env }))
}

/// One side of the comparison.
struct Side {
    error: Option<String>,
    message: String,
    fuel: u64,
    /// 0: none (a middleware that continued past the recorded phase).
    status: u16,
}

impl Side {
    /// The replay's side: the status it answered (`None`: it continued,
    /// with no answer), or its error.
    fn of(result: Result<Option<u16>, CallError>, fuel: u64) -> Self {
        match result {
            Ok(status) => Side {
                error: None,
                message: String::new(),
                fuel,
                status: status.unwrap_or(0),
            },
            Err(e) => Side {
                error: Some(e.kind().as_str().to_owned()),
                message: e.to_string(),
                fuel,
                status: e.kind().status(),
            },
        }
    }
}

/// Runs an http-wasm guest of a dump again (`http`: its `[http_wasm]`):
/// a function as the server ran it, on the recorded request; a
/// middleware up to the phase that failed, on the request it got and, for
/// `handle_response`, the response it got. Returns its status or error
/// and its fuel (`Err`: the dump's `[http_wasm]` is not usable).
fn replay_http_wasm(
    (runtime, compiled): (&Runtime, &Compiled),
    function: &FunctionSpec,
    (request, http): (&abi::GuestRequest<'_>, HttpWasm),
    kv: Result<crate::store::Txn, String>,
    (tape, env): (Shared, &[String]),
) -> Result<(Result<Option<u16>, CallError>, u64), String> {
    let phase = Phase::named(&http.phase)
        .ok_or_else(|| format!("unknown http-wasm phase {:?}", http.phase))?;
    let peer = match http.peer.as_str() {
        "" => None,
        text => Some(
            text.parse::<SocketAddr>()
                .map_err(|_| format!("`peer` {text:?} is not an address"))?,
        ),
    };
    let max_request_headers = usize::try_from(http.max_headers)
        .map_err(|_| "`max_headers` is out of range".to_owned())?;
    let exchange = ExchangeLimits {
        max_body: http.max_body,
        max_request_headers,
        max_request_header_bytes: http.max_header_bytes,
        max_response_headers: MAX_RESPONSE_HEADERS,
        max_response: function.limits.max_response,
    };
    let pairs = |headers: Vec<(String, Bytes)>| -> Vec<(String, Vec<u8>)> {
        headers
            .into_iter()
            .map(|(n, v)| (n, v.into_vec()))
            .collect()
    };
    let message = Message {
        peer,
        ..http_wasm::message_of(request)
    };
    let guest = Guest {
        name: &function.name,
        trace_id: request.trace_id,
        limits: &function.limits,
        config: Arc::from(unredacted(&http.config.into_vec(), env)?),
        exchange,
        kv,
        tape: Some(tape),
    };
    if http.role == "function" {
        let ended = smol::block_on(http_wasm::terminal(runtime, compiled, guest, message));
        let status = ended
            .result
            .map(http_wasm::response)
            .and_then(crate::app::into_http)
            .map(|r| Some(r.status));
        return Ok((status, ended.fuel));
    }
    if http.role != "middleware" {
        return Err(format!("unknown http-wasm role {:?}", http.role));
    }
    let response = match (phase, http.response) {
        (Phase::HandleResponse, None) => {
            return Err("a failed handle_response without [http_wasm.response]".into());
        }
        (_, None) => None,
        (_, Some(r)) => {
            let request_body = match r.request_body {
                Some(body) => body.into_vec(),
                None => message.request_body.clone(),
            };
            let got = Message {
                method: r.method,
                uri: r.uri,
                request_headers: pairs(r.request_headers),
                request_body,
                peer,
                status: r.status,
                response_headers: pairs(r.headers),
                response_body: r.body.into_vec(),
            };
            Some((got, r.is_error))
        }
    };
    Ok(smol::block_on(http_wasm::rerun(
        runtime,
        compiled,
        guest,
        (phase, message, response),
    )))
}

/// The module file a dump names (a path from the dump: not trusted): a
/// regular file of at most the largest `max_module_size` that begins as a
/// WebAssembly module does, read whole. Nothing of another file (its
/// hash, its first bytes) is printed.
fn read_module(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Not blocking on a FIFO; a regular file reads as ever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(crate::signature::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let most = *crate::limits::ServerLimits::MAX_MODULE_SIZE_RANGE.end();
    let mut bytes = Vec::new();
    file.take(most.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > most {
        return Err(std::io::Error::other(format!(
            "larger than any module wasmgate loads ({most} bytes)"
        )));
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(std::io::Error::other("not a WebAssembly module"));
    }
    Ok(bytes)
}

/// A middleware config as the dump holds it, with each value taken from
/// the environment at the time (`"<redacted: $VAR>"`, a secret never
/// written to a dump) read again from this process's environment, for the
/// variables the operator named (`allowed`, `--env`) and no other: the
/// dump is not trusted, and a placeholder naming `$HOME` or a cloud key
/// would otherwise hand it to a guest that may print it. Replaced in the
/// text, so the guest reads the same JSON, byte for byte, as the server
/// gave it (same fuel) when `$VAR` holds the same value.
fn unredacted(config: &[u8], allowed: &[String]) -> Result<Vec<u8>, String> {
    // The placeholder as a JSON string: opening quote, then its text.
    let open = format!("\"{}", crate::config::validate::REDACTED).into_bytes();
    let mut out = Vec::new();
    let mut rest = config;
    while let Some(at) = rest.windows(open.len()).position(|w| w == open) {
        let after = &rest[at + open.len()..];
        let Some(end) = after.windows(2).position(|w| w == b">\"") else {
            break;
        };
        let var = String::from_utf8_lossy(&after[..end]).into_owned();
        if !allowed.contains(&var) {
            let var = shown(&var);
            return Err(format!(
                "the middleware config holds a value from ${var}, which dumps do not hold: pass --env {var} (set to the server's value) to replay it, only if you trust this dump: the value goes to the module it names"
            ));
        }
        let secret = std::env::var(&var).map_err(|_| {
            format!("--env {var}: {var} is not set (or not UTF-8) here: set it to the server's value to replay this dump")
        })?;
        out.extend_from_slice(&rest[..at]);
        let quoted = serde_json::to_string(&secret).map_err(|e| format!("config: {e}"))?;
        out.extend_from_slice(quoted.as_bytes());
        rest = &after[end + 2..];
    }
    out.extend_from_slice(rest);
    Ok(out)
}

pub fn execute(args: ReplayArgs) -> Result<(), CliError> {
    let mut dump = read_dump(&args.dump)?;
    // Every message about the dump is shown escaped: it is not trusted.
    let unreadable =
        |why: String| CliError::Runtime(format!("{}: {}", shown(args.dump.display()), shown(why)));
    let limits = dump.limits.to_function_limits().map_err(unreadable)?;
    let abi = match dump.abi.as_str() {
        "native" => AbiChoice::Native,
        "wasi-json" => AbiChoice::WasiJson,
        // Detected: an http-wasm module imports `http_handler`.
        "http-wasm" if dump.http.is_some() => AbiChoice::Auto,
        "http-wasm" => return Err(unreadable("an http-wasm dump without [http_wasm]".into())),
        other => return Err(unreadable(format!("cannot replay the {other:?} ABI"))),
    };
    let guest_log = dump
        .guest_log
        .parse::<log::LevelFilter>()
        .map_err(|_| unreadable(format!("unknown guest_log {:?}", dump.guest_log)))?;

    let module = args
        .module
        .clone()
        .unwrap_or_else(|| PathBuf::from(&dump.module.path));
    let bytes = read_module(&module)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", shown(module.display()))))?;
    let hash = to_hex(&sha256(&bytes));
    if args.module.is_none() && hash != dump.module.sha256 {
        return Err(CliError::Runtime(format!(
            "{}: the module changed since the dump (sha256 {hash}, recorded {}); pass --module {} to run it anyway",
            shown(module.display()),
            dump.module.sha256,
            shown(module.display())
        )));
    }

    let mut function = FunctionSpec::from_dir(Path::new("."), &dump.function, &limits);
    function.route = std::mem::take(&mut dump.route);
    function.module = module.clone();
    function.abi = abi;
    function.args = std::mem::take(&mut dump.args);
    function.env = std::mem::take(&mut dump.env);
    // The server's module limits are not in the dump: the most any config
    // allows, so that a module the server ran also loads here.
    let mut server = ServerLimits::default();
    server.max_module_size = *ServerLimits::MAX_MODULE_SIZE_RANGE.end();
    server.module_cache_bytes = *ServerLimits::MODULE_CACHE_BYTES_RANGE.end();
    server.memory_budget = server.memory_budget.max(limits.memory);
    let runtime = Runtime::new();
    // The bytes hashed above, not a second read of the file.
    let compiled = cache::load_bytes(&runtime, &module, bytes, abi, &server)
        .map_err(|e| CliError::Runtime(shown(e)))?;
    if dump.http.is_some() && compiled.abi != abi::Abi::HttpWasm {
        return Err(CliError::Runtime(format!(
            "{}: speaks the {} ABI; the dump is of an http-wasm guest",
            shown(module.display()),
            compiled.abi
        )));
    }

    let headers: Vec<(String, Vec<u8>)> = std::mem::take(&mut dump.request.headers)
        .into_iter()
        .map(|(n, v)| (n, v.into_vec()))
        .collect();
    let body = std::mem::replace(&mut dump.request.body, Bytes::Hex(Vec::new())).into_vec();
    let request = &dump.request;
    let guest_request = abi::GuestRequest {
        method: &request.method,
        uri: &request.uri,
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect(),
        body: &body,
        trace_id: &request.trace_id,
    };
    let summary = dump.inputs.summary();
    let truncated = dump.inputs.truncated;
    let tape = Tape::replaying(std::mem::take(&mut dump.inputs), guest_log);
    let no_store = Err("replay: KV operations are answered from the dump".to_owned());
    let http_line = dump.http.as_ref().map(|h| {
        format!(
            "{} failed in {}{}{}, config {} bytes, client {}",
            h.role,
            h.phase,
            match &h.response {
                Some(r) if r.is_error => format!(" (next handler failed: status {})", r.status),
                Some(r) => format!(" (response status {})", r.status),
                None => String::new(),
            },
            if h.snapshot {
                ", started from a snapshot (replay runs `_start`)"
            } else {
                ""
            },
            match &h.config {
                Bytes::Text(t) => t.len(),
                Bytes::Hex(b) => b.len(),
            },
            if h.peer.is_empty() { "-" } else { &h.peer },
        )
    });
    let replayed = match dump.http.take() {
        None => {
            let outcome = smol::block_on(abi::call_taped(
                &runtime,
                &compiled,
                &function,
                &guest_request,
                no_store,
                Some(tape.clone()),
            ));
            let status = outcome.result.and_then(crate::app::into_http);
            Side::of(status.map(|r| Some(r.status)), outcome.fuel)
        }
        Some(http) => {
            let (result, fuel) = replay_http_wasm(
                (&runtime, &compiled),
                &function,
                (&guest_request, http),
                no_store,
                (tape.clone(), &args.env),
            )
            .map_err(unreadable)?;
            Side::of(result, fuel)
        }
    };
    let recorded = Side {
        error: Some(std::mem::take(&mut dump.outcome.error)),
        message: std::mem::take(&mut dump.outcome.message),
        fuel: dump.outcome.fuel,
        status: dump.outcome.status,
    };
    let tape = tape.borrow();
    let same = recorded.error == replayed.error
        && recorded.fuel == replayed.fuel
        && recorded.status == replayed.status;

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "dump:      {} (function {}, {} {}, trace {})",
        shown(args.dump.display()),
        shown(&dump.function),
        shown(&dump.request.method),
        shown(&dump.request.uri),
        shown(&dump.request.trace_id)
    );
    let _ = writeln!(
        out,
        "module:    {} ({}, sha256 {hash}{})",
        shown(module.display()),
        dump.abi,
        if args.module.is_some() {
            " — replacing the dump's module"
        } else {
            ""
        }
    );
    if let Some(line) = &http_line {
        let _ = writeln!(out, "http-wasm: {}", shown(line));
    }
    let _ = writeln!(out, "inputs:    {summary}");
    let _ = writeln!(out, "{:<10} {:<24} replayed", "", "recorded");
    let kind = |s: &Side| s.error.as_deref().map_or_else(|| "none".into(), shown);
    let outcome_of = |s: &Side| match (&s.error, s.status) {
        (Some(_), _) => "error",
        (None, 0) => "continued",
        (None, _) => "response",
    };
    let status_of = |s: &Side| match s.status {
        0 => "-".to_owned(),
        n => n.to_string(),
    };
    let rows = [
        (
            "outcome",
            outcome_of(&recorded).to_owned(),
            outcome_of(&replayed).to_owned(),
        ),
        ("error", kind(&recorded), kind(&replayed)),
        ("fuel", recorded.fuel.to_string(), replayed.fuel.to_string()),
        ("status", status_of(&recorded), status_of(&replayed)),
    ];
    for (name, a, b) in rows {
        let _ = writeln!(out, "{name:<10} {a:<24} {b}");
    }
    // From the dump (and a guest): control bytes escaped, never sent to
    // the terminal as they are.
    let _ = writeln!(out, "recorded message: {}", recorded.message.escape_debug());
    if replayed.message != recorded.message && !replayed.message.is_empty() {
        let _ = writeln!(out, "replayed message: {}", replayed.message.escape_debug());
    }
    let (clocks, random, kv) = tape.unused();
    if clocks + random + kv > 0 {
        let _ = writeln!(
            out,
            "unused:    {clocks} clock reading(s), {random} random byte(s), {kv} KV operation(s) of the recording were not asked for"
        );
    }
    let beyond = tape.unrecorded();
    if beyond > 0 || truncated {
        let _ = writeln!(
            out,
            "warning:   the guest asked for {beyond} input(s) not in the recording{}: the clock stood still at its last recorded reading, random bytes were zeros, KV operations answered `unavailable`",
            if truncated {
                " (the recording was truncated at 1 MiB)"
            } else {
                ""
            }
        );
    }
    if args.module.is_some() {
        let _ = writeln!(
            out,
            "ran {} on the recorded inputs: {}",
            shown(module.display()),
            match &replayed.error {
                None if replayed.status == 0 => "continued to the next handler".to_owned(),
                None => format!("status {}", replayed.status),
                Some(kind) => format!(
                    "{} (status {}) at fuel {}",
                    shown(kind),
                    replayed.status,
                    replayed.fuel
                ),
            }
        );
    }
    if same {
        let _ = writeln!(out, "reproduced");
        Ok(())
    } else {
        let _ = writeln!(out, "differs");
        let _ = out.flush();
        Err(CliError::Differs(format!(
            "the replay of {} differs from the recording",
            shown(args.dump.display())
        )))
    }
}

/// Reads and checks a dump file.
fn read_dump(path: &Path) -> Result<Dump, CliError> {
    use std::io::Read;
    let unreadable =
        |why: String| CliError::Runtime(format!("{}: {}", shown(path.display()), shown(why)));
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DUMP_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| unreadable(e.to_string()))?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_DUMP_BYTES {
        return Err(unreadable(format!(
            "larger than {MAX_DUMP_BYTES} bytes: not a dump"
        )));
    }
    let text = String::from_utf8(text).map_err(|_| unreadable("not UTF-8: not a dump".into()))?;
    let dump =
        Dump::parse(&text).map_err(|e| unreadable(format!("not a wasmgate crash dump: {e}")))?;
    Ok(dump)
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`): what a
/// dump holds (paths, names, a request's target) is printed to a terminal
/// and must not drive it.
fn shown(text: impl std::fmt::Display) -> String {
    text.to_string()
        .chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect()
}
