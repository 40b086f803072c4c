//! The dump file: a TOML document written by hand ([`Dump::to_toml`])
//! and read back with the config's own TOML parser ([`Dump::parse`]).
//! serde's derives for these types, or serde_json's `Value`, cost 5 to 50
//! KB more of the shipped binary; the format is in the README
//! ("Operations: crash dumps and replay").

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::toml::{self, Table, Value};
use crate::limits::{FunctionLimits, PlainOutput, ServerLimits};
use crate::runtime::tape::{Hex, Inputs, KvAnswer, KvEvent, Reading, from_hex, to_hex};

/// The format version in every dump's `wasmgate_dump` field.
pub const FORMAT: u32 = 1;

/// The most values (keys and headers included) a dump is read with: far
/// above what the server writes (a tape of at most ~11,000 inputs,
/// header lists of at most 1,024 fields, `env` and `args` from a config
/// of at most 1 MiB), and what bounds the memory a crafted one's tree
/// takes beyond its text and strings (~200 MB: ~100–200 bytes a value).
const MAX_VALUES: usize = 1 << 20;

/// Bytes that are text when they are UTF-8: `{"text": "..."}`, else
/// `{"hex": "..."}`.
#[derive(Debug, Clone)]
pub enum Bytes {
    Text(String),
    Hex(Vec<u8>),
}

impl Bytes {
    pub fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text.to_owned()),
            Err(_) => Bytes::Hex(bytes.to_vec()),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Text(text) => text.into_bytes(),
            Bytes::Hex(bytes) => bytes,
        }
    }
}

/// The module that failed.
#[derive(Debug, Clone)]
pub struct ModuleRef {
    /// Its file, as configured.
    pub path: String,
    /// The SHA-256 of that file when the dump was written, in hex.
    pub sha256: String,
}

/// The function's limits, as the request ran under them.
#[derive(Debug, Clone)]
pub struct Limits {
    pub fuel: u64,
    pub fuel_slice: u64,
    pub timeout_ns: u64,
    pub memory: u64,
    pub max_response: u64,
    pub max_log: u64,
    pub plain_output: String,
}

impl Limits {
    pub fn of(limits: &FunctionLimits) -> Self {
        let plain = PlainOutput::NAMES
            .iter()
            .find(|(_, p)| *p == limits.plain_output)
            .map_or("text", |(name, _)| name);
        Self {
            fuel: limits.fuel,
            fuel_slice: limits.fuel_slice,
            timeout_ns: u64::try_from(limits.timeout.as_nanos()).unwrap_or(u64::MAX),
            memory: limits.memory,
            max_response: limits.max_response,
            max_log: limits.max_log,
            plain_output: plain.to_owned(),
        }
    }

    /// The limits to run a replay with (`Err`: a value no config allows).
    pub fn to_function_limits(&self) -> Result<FunctionLimits, String> {
        let plain_output = PlainOutput::NAMES
            .iter()
            .find(|(name, _)| *name == self.plain_output)
            .map(|(_, p)| *p)
            .ok_or_else(|| format!("unknown plain_output {:?}", self.plain_output))?;
        let limits = FunctionLimits {
            fuel: self.fuel,
            fuel_slice: self.fuel_slice,
            timeout: Duration::from_nanos(self.timeout_ns),
            memory: self.memory,
            max_response: self.max_response,
            max_log: self.max_log,
            plain_output,
        };
        let check = |name: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("limit `{name}` is out of range"))
            }
        };
        check("fuel", FunctionLimits::FUEL_RANGE.contains(&limits.fuel))?;
        check(
            "fuel_slice",
            FunctionLimits::FUEL_SLICE_RANGE.contains(&limits.fuel_slice),
        )?;
        check(
            "memory",
            FunctionLimits::MEMORY_RANGE.contains(&limits.memory),
        )?;
        check(
            "timeout",
            FunctionLimits::TIMEOUT_RANGE.contains(&limits.timeout),
        )?;
        check(
            "max_response",
            FunctionLimits::MAX_RESPONSE_RANGE.contains(&limits.max_response),
        )?;
        check(
            "max_log",
            FunctionLimits::MAX_LOG_RANGE.contains(&limits.max_log),
        )?;
        Ok(limits)
    }
}

/// The request as the guest received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    pub trace_id: String,
}

/// How the request ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The error kind (`trap`, `deadline`, …).
    pub error: String,
    pub message: String,
    pub status: u16,
    /// Fuel consumed in all, instantiation included.
    pub fuel: u64,
}

/// What an http-wasm guest (a middleware, or a module on a function
/// route) had besides its request: the `[http_wasm]` table, absent from
/// other dumps.
#[derive(Debug, Clone)]
pub struct HttpWasm {
    /// `middleware` or `function`.
    pub role: String,
    /// The call that failed: `_start`, `handle_request` or
    /// `handle_response`.
    pub phase: String,
    /// Its `config` (`get_config`).
    pub config: Bytes,
    /// The client's address (`get_source_addr`), empty when none.
    pub peer: String,
    /// Whether its instance started from a snapshot taken after `_start`
    /// (a replay runs `_start` itself: the fuel is the same).
    pub snapshot: bool,
    /// The server's limits on the exchange: `max_body`, `max_headers`,
    /// `max_header_bytes`.
    pub max_body: u64,
    pub max_headers: u64,
    pub max_header_bytes: u64,
    /// A middleware's failed `handle_response`: what the guest could read
    /// then (`[http_wasm.response]`).
    pub response: Option<HttpResponse>,
}

/// What a middleware's `handle_response` was called on.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Whether the next handler failed (`is_error`).
    pub is_error: bool,
    /// The response: the next handler's (or the error's status), through
    /// the `handle_response` of the middleware after this one, with the
    /// fields this one set before the next handler first. Its body is the
    /// one held for the guest (empty when streamed: no guest reads it).
    pub status: u16,
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    /// The request as the next handler got it (the guest reads it then).
    pub method: String,
    pub uri: String,
    pub request_headers: Vec<(String, Bytes)>,
    /// `None` when it is `[request]`'s body (written once).
    pub request_body: Option<Bytes>,
}

/// One crash dump, written as TOML ([`Dump::to_toml`]) and read with the
/// config's TOML parser ([`Dump::parse`]): serde's derives for these
/// types, or serde_json's `Value`, cost 20 to 50 KB more of the shipped
/// binary.
#[derive(Debug, Clone)]
pub struct Dump {
    /// When it was written, in ms since the Unix epoch.
    pub unix_ms: u64,
    pub function: String,
    pub route: String,
    pub module: ModuleRef,
    /// `native`, `wasi-json` or `http-wasm`.
    pub abi: String,
    pub limits: Limits,
    /// The guest's args after its name, and its environment (wasi-json).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The most verbose guest log level that was on (`RUST_LOG`): log
    /// lines cost fuel only when written, so a replay writes the same.
    pub guest_log: String,
    pub request: Request,
    pub outcome: Outcome,
    pub inputs: Inputs,
    /// An http-wasm guest's exchange (`[http_wasm]`).
    pub http: Option<HttpWasm>,
}

/// A TOML text being written.
struct Toml(String);

impl Toml {
    fn raw(&mut self, text: &str) {
        self.0.push_str(text);
    }

    /// A basic string: `"` and `\` escaped, control characters as
    /// `\uXXXX`, everything else as it is.
    fn str(&mut self, text: &str) {
        self.0.push('"');
        for c in text.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(self.0, "\\u{:04x}", u32::from(c));
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn num(&mut self, n: impl std::fmt::Display) {
        let _ = write!(self.0, "{n}");
    }

    /// `key = "text"` on a line.
    fn line(&mut self, key: &str, text: &str) {
        self.raw(key);
        self.raw(" = ");
        self.str(text);
        self.raw("\n");
    }

    /// `key = n` on a line.
    fn line_num(&mut self, key: &str, n: impl std::fmt::Display) {
        self.raw(key);
        self.raw(" = ");
        self.num(n);
        self.raw("\n");
    }

    fn hex(&mut self, bytes: &[u8]) {
        self.raw("\"");
        self.raw(&to_hex(bytes));
        self.raw("\"");
    }

    fn bytes(&mut self, bytes: &Bytes) {
        match bytes {
            Bytes::Text(text) => {
                self.raw("{ text = ");
                self.str(text);
            }
            Bytes::Hex(bytes) => {
                self.raw("{ hex = ");
                self.hex(bytes);
            }
        }
        self.raw(" }");
    }

    /// `[[a, b], ...]`.
    fn pairs<T>(&mut self, pairs: &[(String, T)], second: impl Fn(&mut Self, &T)) {
        self.raw("[");
        for (i, (a, b)) in pairs.iter().enumerate() {
            self.raw(if i == 0 { "[" } else { ", [" });
            self.str(a);
            self.raw(", ");
            second(self, b);
            self.raw("]");
        }
        self.raw("]\n");
    }
}

impl Dump {
    /// The dump as a TOML document.
    pub fn to_toml(&self) -> String {
        let mut t = Toml(String::new());
        t.raw("# A wasmgate crash dump: `wasmgate replay FILE` runs it again.\n");
        t.line_num("wasmgate_dump", FORMAT);
        t.line_num("unix_ms", self.unix_ms);
        t.line("function", &self.function);
        t.line("route", &self.route);
        t.line("abi", &self.abi);
        t.line("guest_log", &self.guest_log);
        t.raw("args = [");
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                t.raw(", ");
            }
            t.str(arg);
        }
        t.raw("]\nenv = ");
        t.pairs(&self.env, |t, v| t.str(v));
        t.raw("\n[module]\n");
        t.line("path", &self.module.path);
        t.line("sha256", &self.module.sha256);
        let l = &self.limits;
        t.raw("\n[limits]\n");
        for (key, value) in [
            ("fuel", l.fuel),
            ("fuel_slice", l.fuel_slice),
            ("timeout_ns", l.timeout_ns),
            ("memory", l.memory),
            ("memory_pages", l.memory / 65536),
            ("max_response", l.max_response),
            ("max_log", l.max_log),
        ] {
            t.line_num(key, value);
        }
        t.line("plain_output", &l.plain_output);
        let r = &self.request;
        t.raw("\n[request]\n");
        t.line("method", &r.method);
        t.line("uri", &r.uri);
        t.line("trace_id", &r.trace_id);
        t.raw("headers = ");
        t.pairs(&r.headers, Toml::bytes);
        t.raw("body = ");
        t.bytes(&r.body);
        let o = &self.outcome;
        t.raw("\n\n[outcome]\n");
        t.line("error", &o.error);
        t.line("message", &o.message);
        t.line_num("status", o.status);
        t.line_num("fuel", o.fuel);
        if let Some(h) = &self.http {
            t.raw("\n[http_wasm]\n");
            t.line("role", &h.role);
            t.line("phase", &h.phase);
            t.line("peer", &h.peer);
            t.raw(if h.snapshot {
                "snapshot = true\n"
            } else {
                "snapshot = false\n"
            });
            t.line_num("max_body", h.max_body);
            t.line_num("max_headers", h.max_headers);
            t.line_num("max_header_bytes", h.max_header_bytes);
            t.raw("config = ");
            t.bytes(&h.config);
            t.raw("\n");
            if let Some(r) = &h.response {
                t.raw("\n[http_wasm.response]\n");
                t.raw(if r.is_error {
                    "is_error = true\n"
                } else {
                    "is_error = false\n"
                });
                t.line_num("status", r.status);
                t.raw("headers = ");
                t.pairs(&r.headers, Toml::bytes);
                t.raw("body = ");
                t.bytes(&r.body);
                t.raw("\n");
                t.line("method", &r.method);
                t.line("uri", &r.uri);
                t.raw("request_headers = ");
                t.pairs(&r.request_headers, Toml::bytes);
                if let Some(body) = &r.request_body {
                    t.raw("request_body = ");
                    t.bytes(body);
                    t.raw("\n");
                }
            }
        }
        let inputs = &self.inputs;
        t.raw("\n[inputs]\n");
        t.raw(if inputs.truncated {
            "truncated = true\n"
        } else {
            "truncated = false\n"
        });
        t.raw("clocks = [");
        for (i, reading) in inputs.clocks.iter().enumerate() {
            t.raw(if i == 0 { "{ clock = " } else { ", { clock = " });
            t.num(reading.clock);
            t.raw(", nanos = ");
            t.num(reading.nanos);
            t.raw(" }");
        }
        t.raw("]\nrandom = ");
        t.hex(&inputs.random.0);
        t.raw("\nkv = [");
        for (i, event) in inputs.kv.iter().enumerate() {
            t.raw(if i == 0 {
                "\n  { op = "
            } else {
                ",\n  { op = "
            });
            t.str(&event.op);
            t.raw(", key = ");
            t.hex(&event.key.0);
            t.raw(", answer = ");
            match &event.answer {
                KvAnswer::Value(None) => t.raw("\"missing\""),
                KvAnswer::Value(Some(value)) => {
                    t.raw("{ value = ");
                    t.hex(&value.0);
                    t.raw(" }");
                }
                KvAnswer::Done => t.raw("\"done\""),
                KvAnswer::Found(found) => t.raw(if *found {
                    "{ found = true }"
                } else {
                    "{ found = false }"
                }),
                KvAnswer::Number(n) => {
                    t.raw("{ number = ");
                    t.num(n);
                    t.raw(" }");
                }
                KvAnswer::Keys { keys, work } => {
                    t.raw("{ keys = [");
                    for (i, key) in keys.iter().enumerate() {
                        if i > 0 {
                            t.raw(", ");
                        }
                        t.hex(&key.0);
                    }
                    t.raw("], work = ");
                    t.num(work);
                    t.raw(" }");
                }
                KvAnswer::Error(code) => {
                    t.raw("{ error = ");
                    t.num(code);
                    t.raw(" }");
                }
            }
            t.raw(" }");
        }
        t.raw("]\n");
        t.0
    }

    /// Reads a dump written by [`Dump::to_toml`], with the config's own
    /// TOML parser (`Err`: what is wrong, naming the line or the field).
    pub fn parse(document: &str) -> Result<Self, String> {
        let root = toml::parse_bounded(document, MAX_VALUES).map_err(|e| {
            let line = document.get(..e.at).map_or(0, |t| t.matches('\n').count()) + 1;
            format!("line {line}: {}", e.message)
        })?;
        let format = num(&root, "wasmgate_dump")?;
        if format != u64::from(FORMAT) {
            return Err(format!(
                "dump format {format} (this wasmgate reads format {FORMAT})"
            ));
        }
        let module = table(&root, "module")?;
        let limits = table(&root, "limits")?;
        let request = table(&root, "request")?;
        let outcome = table(&root, "outcome")?;
        let inputs = table(&root, "inputs")?;

        let mut args = Vec::new();
        for arg in array(&root, "args")? {
            args.push(string(arg, "args")?.to_owned());
        }
        let mut env = Vec::new();
        for p in array(&root, "env")? {
            let (name, value) = pair(p, "env")?;
            env.push((name, string(value, "env")?.to_owned()));
        }
        let headers = headers(request, "headers")?;
        let mut clocks = Vec::new();
        for r in array(inputs, "clocks")? {
            let r = as_table(r, "clocks")?;
            let clock =
                i32::try_from(num(r, "clock")?).map_err(|_| "`clock`: out of range".to_owned())?;
            clocks.push(Reading {
                clock,
                nanos: num(r, "nanos")?,
            });
        }
        let mut kv = Vec::new();
        for e in array(inputs, "kv")? {
            let e = as_table(e, "kv")?;
            kv.push(KvEvent {
                op: text(e, "op")?.to_owned(),
                key: Hex(hex_of(field(e, "key")?, "key")?),
                answer: kv_answer(field(e, "answer")?)?,
            });
        }
        let http = match root.get("http_wasm") {
            None => None,
            Some(h) => Some(http_wasm(as_table(h, "http_wasm")?)?),
        };
        // What the server writes, and no more: these are printed as they
        // are (a guest's log lines name the function and trace id).
        let function = text(&root, "function")?;
        if function.is_empty() || function.contains(char::is_control) {
            return Err("`function` is empty or holds a control character".into());
        }
        let trace_id = text(request, "trace_id")?;
        if !crate::app::trace::is_trace_id(trace_id.as_bytes()) {
            return Err(
                "`trace_id` is not a trace id (1 to 64 letters, digits, `-`, `_`, `.`, `:`)".into(),
            );
        }
        let sha256 = text(module, "sha256")?;
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("`sha256` is not 64 lowercase hex digits".into());
        }
        Ok(Self {
            http,
            unix_ms: num(&root, "unix_ms")?,
            function: function.to_owned(),
            route: text(&root, "route")?.to_owned(),
            module: ModuleRef {
                path: text(module, "path")?.to_owned(),
                sha256: sha256.to_owned(),
            },
            abi: text(&root, "abi")?.to_owned(),
            limits: Limits {
                fuel: num(limits, "fuel")?,
                fuel_slice: num(limits, "fuel_slice")?,
                timeout_ns: num(limits, "timeout_ns")?,
                memory: num(limits, "memory")?,
                max_response: num(limits, "max_response")?,
                max_log: num(limits, "max_log")?,
                plain_output: text(limits, "plain_output")?.to_owned(),
            },
            args,
            env,
            guest_log: text(&root, "guest_log")?.to_owned(),
            request: Request {
                method: text(request, "method")?.to_owned(),
                uri: text(request, "uri")?.to_owned(),
                headers,
                body: bytes_of(field(request, "body")?, "body")?,
                trace_id: trace_id.to_owned(),
            },
            outcome: Outcome {
                error: text(outcome, "error")?.to_owned(),
                message: text(outcome, "message")?.to_owned(),
                status: u16::try_from(num(outcome, "status")?)
                    .map_err(|_| "`status`: out of range".to_owned())?,
                fuel: num(outcome, "fuel")?,
            },
            inputs: Inputs {
                clocks,
                random: Hex(hex_of(field(inputs, "random")?, "random")?),
                kv,
                truncated: boolean(inputs, "truncated")?,
            },
        })
    }
}

/// `[http_wasm]`.
fn http_wasm(h: &Table) -> Result<HttpWasm, String> {
    let response = match h.get("response") {
        None => None,
        Some(r) => {
            let r = as_table(r, "response")?;
            Some(HttpResponse {
                is_error: boolean(r, "is_error")?,
                status: u16::try_from(num(r, "status")?)
                    .map_err(|_| "`status`: out of range".to_owned())?,
                headers: headers(r, "headers")?,
                body: bytes_of(field(r, "body")?, "body")?,
                method: text(r, "method")?.to_owned(),
                uri: text(r, "uri")?.to_owned(),
                request_headers: headers(r, "request_headers")?,
                request_body: match r.get("request_body") {
                    None => None,
                    Some(b) => Some(bytes_of(b, "request_body")?),
                },
            })
        }
    };
    // The server's ranges: a dump is not trusted, and these bound what a
    // replayed guest may make the host hold.
    let exchange = |key: &str, range: std::ops::RangeInclusive<u64>| {
        let n = num(h, key)?;
        match range.contains(&n) {
            true => Ok(n),
            false => Err(format!(
                "`{key}` {n} is outside {}..={}",
                range.start(),
                range.end()
            )),
        }
    };
    Ok(HttpWasm {
        role: text(h, "role")?.to_owned(),
        phase: text(h, "phase")?.to_owned(),
        config: bytes_of(field(h, "config")?, "config")?,
        peer: text(h, "peer")?.to_owned(),
        snapshot: boolean(h, "snapshot")?,
        max_body: exchange("max_body", ServerLimits::MAX_BODY_RANGE)?,
        max_headers: exchange("max_headers", ServerLimits::MAX_HEADERS_RANGE)?,
        max_header_bytes: exchange("max_header_bytes", ServerLimits::MAX_HEADER_BYTES_RANGE)?,
        response,
    })
}

/// `[[name, { text = ... }], ...]`.
fn headers(t: &Table, key: &str) -> Result<Vec<(String, Bytes)>, String> {
    let mut headers = Vec::new();
    for p in array(t, key)? {
        let (name, value) = pair(p, key)?;
        headers.push((name, bytes_of(value, key)?));
    }
    Ok(headers)
}

fn boolean(t: &Table, key: &str) -> Result<bool, String> {
    match field(t, key)? {
        Value::Boolean(b) => Ok(*b),
        _ => Err(format!("`{key}`: not true or false")),
    }
}

/// Field `key` of table `t`.
fn field<'a>(t: &'a Table, key: &str) -> Result<&'a Value, String> {
    t.get(key)
        .ok_or_else(|| format!("field `{key}` is missing"))
}

fn as_table<'a>(v: &'a Value, what: &str) -> Result<&'a Table, String> {
    match v {
        Value::Table(t) => Ok(t),
        _ => Err(format!("`{what}`: not a table")),
    }
}

fn table<'a>(t: &'a Table, key: &str) -> Result<&'a Table, String> {
    as_table(field(t, key)?, key)
}

fn string<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(format!("`{what}`: not a string")),
    }
}

fn text<'a>(t: &'a Table, key: &str) -> Result<&'a str, String> {
    string(field(t, key)?, key)
}

fn int(v: &Value, what: &str) -> Result<i128, String> {
    match v {
        Value::Integer(n) => Ok(*n),
        _ => Err(format!("`{what}`: not an integer")),
    }
}

fn num(t: &Table, key: &str) -> Result<u64, String> {
    u64::try_from(int(field(t, key)?, key)?).map_err(|_| format!("`{key}`: out of range"))
}

fn array<'a>(t: &'a Table, key: &str) -> Result<impl Iterator<Item = &'a Value>, String> {
    match field(t, key)? {
        Value::Array(items) => Ok(items.iter().map(|i| i.get_ref())),
        _ => Err(format!("`{key}`: not an array")),
    }
}

/// `[name, value]`.
fn pair<'a>(v: &'a Value, what: &str) -> Result<(String, &'a Value), String> {
    match v {
        Value::Array(items) => match items.as_slice() {
            [name, value] => Ok((string(name.get_ref(), what)?.to_owned(), value.get_ref())),
            _ => Err(format!("`{what}`: not a [name, value] pair")),
        },
        _ => Err(format!("`{what}`: not a [name, value] pair")),
    }
}

fn hex_of(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    from_hex(string(v, what)?).ok_or_else(|| format!("`{what}`: not a string of hex digits"))
}

/// `{ text = ... }` or `{ hex = ... }`.
fn bytes_of(v: &Value, what: &str) -> Result<Bytes, String> {
    let t = as_table(v, what)?;
    match (t.get("text"), t.get("hex")) {
        (Some(text), None) => Ok(Bytes::Text(string(text, what)?.to_owned())),
        (None, Some(hex)) => Ok(Bytes::Hex(hex_of(hex, what)?)),
        _ => Err(format!("`{what}`: not {{ text = ... }} or {{ hex = ... }}")),
    }
}

fn kv_answer(v: &Value) -> Result<KvAnswer, String> {
    let bad = || "`answer`: not a KV answer".to_owned();
    let t = match v {
        Value::String(s) if s == "done" => return Ok(KvAnswer::Done),
        Value::String(s) if s == "missing" => return Ok(KvAnswer::Value(None)),
        Value::Table(t) => t,
        _ => return Err(bad()),
    };
    let Some((kind, inner)) = t.iter().next() else {
        return Err(bad());
    };
    Ok(match kind {
        "value" => KvAnswer::Value(Some(Hex(hex_of(inner, "value")?))),
        "found" => match inner {
            Value::Boolean(b) => KvAnswer::Found(*b),
            _ => return Err(bad()),
        },
        "number" => KvAnswer::Number(i64::try_from(int(inner, "number")?).map_err(|_| bad())?),
        "error" => KvAnswer::Error(i32::try_from(int(inner, "error")?).map_err(|_| bad())?),
        "keys" | "work" => {
            let mut keys = Vec::new();
            for k in array(t, "keys")? {
                keys.push(Hex(hex_of(k, "keys")?));
            }
            KvAnswer::Keys {
                keys,
                work: num(t, "work")?,
            }
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_reads_back_as_written() {
        let dump = Dump {
            unix_ms: 1,
            function: "f\"n".into(),
            route: "/f".into(),
            module: ModuleRef {
                path: "/m.wasm".into(),
                sha256: "00".repeat(32),
            },
            abi: "native".into(),
            limits: Limits::of(&FunctionLimits::default()),
            args: vec!["a\nb".into()],
            env: vec![("K".into(), "v\u{7f}\u{1}é".into())],
            guest_log: "info".into(),
            request: Request {
                method: "POST".into(),
                uri: "/f?x=\\".into(),
                headers: vec![("h".into(), Bytes::Hex(vec![0xff, 0]))],
                body: Bytes::of(b"\xff\xfe"),
                trace_id: "t".into(),
            },
            outcome: Outcome {
                error: "trap".into(),
                message: "m \"q\"".into(),
                status: 502,
                fuel: 77,
            },
            inputs: Inputs {
                clocks: vec![Reading {
                    clock: 1,
                    nanos: u64::MAX,
                }],
                random: Hex(vec![1, 2, 3]),
                kv: [
                    KvAnswer::Value(None),
                    KvAnswer::Value(Some(Hex(b"v".to_vec()))),
                    KvAnswer::Done,
                    KvAnswer::Found(true),
                    KvAnswer::Number(-5),
                    KvAnswer::Keys {
                        keys: vec![Hex(b"a".to_vec()), Hex(Vec::new())],
                        work: 9,
                    },
                    KvAnswer::Error(-4),
                ]
                .into_iter()
                .map(|answer| KvEvent {
                    op: "get".into(),
                    key: Hex(b"k".to_vec()),
                    answer,
                })
                .collect(),
                truncated: true,
            },
            http: None,
        };
        let text = dump.to_toml();
        let back = Dump::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.to_toml(), text);
        assert_eq!(back.inputs.kv.len(), 7);
        assert!(matches!(back.request.body, Bytes::Hex(ref b) if b == &[0xff, 0xfe]));
        assert_eq!(back.env[0].1, "v\u{7f}\u{1}é");
        let broken = text.replace("[outcome]", "[outcome");
        assert!(Dump::parse(&broken).unwrap_err().starts_with("line "));
        let missing = text.replace("fuel = 77", "");
        assert_eq!(
            Dump::parse(&missing).unwrap_err(),
            "field `fuel` is missing"
        );

        // An http-wasm middleware's failed `handle_response`.
        let mut dump = dump;
        dump.abi = "http-wasm".into();
        let mut http = HttpWasm {
            role: "middleware".into(),
            phase: "handle_response".into(),
            config: Bytes::of(b"{\"k\":1}"),
            peer: "127.0.0.1:9".into(),
            snapshot: true,
            max_body: 1,
            max_headers: 2,
            max_header_bytes: 1024,
            response: Some(HttpResponse {
                is_error: true,
                status: 504,
                headers: vec![("a".into(), Bytes::of(b"b"))],
                body: Bytes::of(b"\xff"),
                method: "GET".into(),
                uri: "/u".into(),
                request_headers: Vec::new(),
                request_body: Some(Bytes::of(b"changed")),
            }),
        };
        dump.http = Some(http.clone());
        let text = dump.to_toml();
        let back = Dump::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.to_toml(), text);
        let r = back.http.unwrap().response.unwrap();
        assert!(r.is_error && r.status == 504);
        assert!(matches!(r.request_body, Some(Bytes::Text(ref b)) if b == "changed"));
        // The exchange's limits within the server's ranges: a crafted dump
        // cannot have a replayed guest make the host hold 4 GiB.
        for (from, to, error) in [
            (
                "max_body = 1\n",
                "max_body = 18446744073709551615\n",
                "`max_body` 18446744073709551615 is outside 1..=268435456",
            ),
            (
                "max_headers = 2\n",
                "max_headers = 1025\n",
                "`max_headers` 1025 is outside 1..=1024",
            ),
            (
                "max_header_bytes = 1024\n",
                "max_header_bytes = 1023\n",
                "`max_header_bytes` 1023 is outside 1024..=1048576",
            ),
        ] {
            assert!(text.contains(from), "{text}");
            assert_eq!(Dump::parse(&text.replace(from, to)).unwrap_err(), error);
        }
        // Without a response, and with the request's body.
        http.phase = "_start".into();
        http.response = None;
        dump.http = Some(http);
        let text = dump.to_toml();
        assert_eq!(Dump::parse(&text).unwrap().to_toml(), text);
    }
}
