//! The `http_handler` import module: the host functions of the http-wasm
//! handler ABI (<https://http-wasm.io/http-handler-abi/>), the ABI of
//! Traefik's and Dapr's wasm middleware. They read and write the
//! [`Exchange`] in the host state, under the ABI's rules, matching the
//! reference host (`http-wasm-host-go`) where the specification is silent:
//!
//! - a function that fills a guest buffer writes nothing and returns the
//!   length it needs when the buffer is too small; lists (header names,
//!   values) are NUL-terminated strings with their count in the high 32
//!   bits of the `i64` result;
//! - the request (method, URI, headers, body) is writable only before the
//!   next handler; the response (status, headers, body) before it, or after
//!   it with `buffer_response` enabled; the response body is readable after
//!   it only with `buffer_response`, the request body only with
//!   `buffer_request`;
//! - a header a guest sets is checked as a function's response header is
//!   (`app::into_http`): a token name, a visible value (no CR, LF or NUL),
//!   not one the host owns (`x-wasmgate-error`, `x-trace-id`); framing
//!   fields (`content-length`, `transfer-encoding`, `connection`,
//!   `keep-alive`) are the host's to write and a guest's are dropped;
//! - trailers are not supported: `enable_features` never grants them,
//!   their lists are empty, and writing one traps.
//!
//! A guest that breaks a rule traps (502 `trap`); every function charges
//! fuel for the bytes it copies ([`cost::HTTP_COPY`]).

use std::borrow::Cow;

use wasmi::{Caller, FuncType, Linker, Val, ValType};

use super::wasmgate::define_log;
use crate::error::CallError;
use crate::http::{FRAMING_HEADERS, HOST_HEADERS, valid_name, valid_value};
use crate::runtime::exchange::{BUFFER_REQUEST, BUFFER_RESPONSE, Exchange, SUPPORTED};
use crate::runtime::imports::host_module::{HostModule, Mismatch, check_in};
use crate::runtime::state::{HEADER_FIELD_BYTES, HostState, charge, cost, finish, guest_memory};

/// The import module's name.
pub const NAME: &str = "http_handler";

/// The module's row in [`HOST_MODULES`](super::HOST_MODULES).
pub const MODULE: HostModule = HostModule {
    name: NAME,
    check: check_import,
    define: add_to_linker,
};

/// The protocol version `get_protocol_version` reports: the server speaks
/// HTTP/1.1 (an HTTP/1.0 request is answered as 1.1).
pub const PROTOCOL_VERSION: &str = "HTTP/1.1";

/// Host functions in [`NAME`] and their signatures (params, results).
pub const FUNCTIONS: &[(&str, &[ValType], &[ValType])] = {
    use wasmi::ValType::{I32, I64};
    &[
        ("log", &[I32, I32, I32], &[]),
        ("log_enabled", &[I32], &[I32]),
        ("get_config", &[I32, I32], &[I32]),
        ("enable_features", &[I32], &[I32]),
        ("get_method", &[I32, I32], &[I32]),
        ("set_method", &[I32, I32], &[]),
        ("get_uri", &[I32, I32], &[I32]),
        ("set_uri", &[I32, I32], &[]),
        ("get_protocol_version", &[I32, I32], &[I32]),
        ("get_header_names", &[I32, I32, I32], &[I64]),
        ("get_header_values", &[I32, I32, I32, I32, I32], &[I64]),
        ("set_header_value", &[I32, I32, I32, I32, I32], &[]),
        ("add_header_value", &[I32, I32, I32, I32, I32], &[]),
        ("remove_header", &[I32, I32, I32], &[]),
        ("read_body", &[I32, I32, I32], &[I64]),
        ("write_body", &[I32, I32, I32], &[]),
        ("get_status_code", &[], &[I32]),
        ("set_status_code", &[I32], &[]),
        ("get_source_addr", &[I32, I32], &[I32]),
    ]
};

/// Whether an `http_handler` import can be provided.
fn check_import(name: &str, ty: &FuncType) -> Result<(), &'static str> {
    check_in(FUNCTIONS, name, ty).map_err(|mismatch| match mismatch {
        Mismatch::Unknown => "no such http_handler host function",
        Mismatch::Signature => "wrong signature for this http_handler host function",
    })
}

/// Header kinds (`kind` parameter of the header functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    Request,
    Response,
    RequestTrailers,
    ResponseTrailers,
}

impl HeaderKind {
    fn of(kind: i32) -> Result<Self, wasmi::Error> {
        match kind {
            0 => Ok(Self::Request),
            1 => Ok(Self::Response),
            2 => Ok(Self::RequestTrailers),
            3 => Ok(Self::ResponseTrailers),
            _ => Err(trap(format!("unsupported header kind {kind}"))),
        }
    }

    fn is_request(self) -> bool {
        matches!(self, Self::Request | Self::RequestTrailers)
    }
}

/// A trap for a guest that broke the ABI's rules.
fn trap(message: impl std::fmt::Display) -> wasmi::Error {
    wasmi::Error::host(CallError::Trap(format!("http_handler: {message}")))
}

/// The caller's exchange, or a trap when it runs outside one (a module
/// called through another ABI).
fn exchange<'a>(caller: &'a mut Caller<'_, HostState>) -> Result<&'a mut Exchange, wasmi::Error> {
    caller
        .data_mut()
        .http
        .as_deref_mut()
        .ok_or_else(|| trap("called outside an http-wasm exchange"))
}

/// The guest's memory and the caller's exchange, borrowed together.
fn memory_and_exchange<'a>(
    caller: &'a mut Caller<'_, HostState>,
) -> Result<(&'a mut [u8], &'a mut Exchange), wasmi::Error> {
    let (mem, state) =
        guest_memory::of(caller).ok_or_else(|| trap("the guest exports no memory"))?;
    let ex = state
        .http
        .as_deref_mut()
        .ok_or_else(|| trap("called outside an http-wasm exchange"))?;
    Ok((mem, ex))
}

/// A non-negative guest `i32` (a pointer, length or limit) as `u32`.
fn unsigned(value: i32, what: &str) -> Result<u32, wasmi::Error> {
    u32::try_from(value).map_err(|_| trap(format!("{what} {value} is negative")))
}

/// The `len` bytes at `ptr` in the guest's memory, copied.
fn read(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
    what: &str,
) -> Result<Vec<u8>, wasmi::Error> {
    let (ptr, len) = (unsigned(ptr, what)?, unsigned(len, what)?);
    if len == 0 {
        return Ok(Vec::new());
    }
    let len = usize::try_from(len).map_err(|_| trap(format!("{what} is too long")))?;
    let (mem, _) = guest_memory::of(caller).ok_or_else(|| trap("the guest exports no memory"))?;
    guest_memory::get(mem, ptr, len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            trap(format!(
                "{what} at {ptr:#x}+{len} lies outside the guest's memory"
            ))
        })
}

/// Copies what `what` takes from the exchange into the guest's buffer
/// `buf` of `limit` bytes, if it fits; returns its length either way (the
/// guest retries with a larger buffer).
fn give(
    caller: &mut Caller<'_, HostState>,
    buf: i32,
    limit: i32,
    what: fn(&Exchange) -> Cow<'_, [u8]>,
) -> Result<i32, wasmi::Error> {
    let limit = unsigned(limit, "buf_limit")?;
    let len = what(exchange(caller)?).len();
    let len32 = u32::try_from(len).map_err(|_| trap("value longer than 4 GiB"))?;
    let fits = len32 <= limit;
    charge(caller, cost::HTTP_COPY, if fits { len as u64 } else { 0 })?;
    if fits && len > 0 {
        let buf = unsigned(buf, "buf")?;
        let (mem, ex) = memory_and_exchange(caller)?;
        guest_memory::put(mem, buf, &what(ex)).ok_or_else(|| {
            trap(format!(
                "buf at {buf:#x}+{len} lies outside the guest's memory"
            ))
        })?;
    }
    finish(caller, len32.cast_signed())
}

/// Writes `joined` (`count` NUL-terminated items) to `buf` if it fits in
/// `limit` bytes: the ABI's `count << 32 | length` result (0 for no
/// items). `looked_at` fields were read to make the list.
fn give_list(
    caller: &mut Caller<'_, HostState>,
    (buf, limit): (i32, i32),
    count: usize,
    joined: &[u8],
    looked_at: u64,
) -> Result<i64, wasmi::Error> {
    let limit = unsigned(limit, "buf_limit")?;
    let (Ok(count), Ok(len)) = (u32::try_from(count), u32::try_from(joined.len())) else {
        return Err(trap("list longer than 4 GiB"));
    };
    let fits = len <= limit;
    // The list was joined whether or not it fits: its bytes are paid
    // either way, so that asking again and again with a small buffer is
    // not free work.
    let weight = looked_at.saturating_mul(HEADER_FIELD_BYTES);
    charge(
        caller,
        cost::HTTP_COPY,
        weight.saturating_add(joined.len() as u64),
    )?;
    if count == 0 {
        return finish(caller, 0i64);
    }
    if fits {
        let buf = unsigned(buf, "buf")?;
        let (mem, _) =
            guest_memory::of(caller).ok_or_else(|| trap("the guest exports no memory"))?;
        guest_memory::put(mem, buf, joined).ok_or_else(|| {
            trap(format!(
                "buf at {buf:#x}+{len} lies outside the guest's memory"
            ))
        })?;
    }
    let packed = (u64::from(count) << 32) | u64::from(len);
    finish(caller, packed.cast_signed())
}

/// Appends `item` and its NUL terminator to `joined`.
fn join(joined: &mut Vec<u8>, item: &[u8]) {
    joined.extend_from_slice(item);
    joined.push(0);
}

/// Fails unless the request may still be changed (before the next handler).
fn before_next(ex: &Exchange, op: &str) -> Result<(), wasmi::Error> {
    if ex.after_next {
        return Err(trap(format!("can't {op} after the next handler")));
    }
    Ok(())
}

/// Fails unless the response may be changed or its body read: before the
/// next handler, or after it with `feature` enabled.
fn before_next_or(ex: &Exchange, feature: u32, op: &str) -> Result<(), wasmi::Error> {
    if ex.after_next && ex.features & feature == 0 {
        let name = if feature == BUFFER_REQUEST {
            "buffer_request"
        } else {
            "buffer_response"
        };
        return Err(trap(format!(
            "can't {op} after the next handler unless {name} is enabled"
        )));
    }
    Ok(())
}

/// The header fields of `kind`; trailers have none.
fn fields(ex: &Exchange, kind: HeaderKind) -> &[(String, Vec<u8>)] {
    match kind {
        HeaderKind::Request => &ex.message.request_headers,
        HeaderKind::Response => &ex.message.response_headers,
        _ => &[],
    }
}

/// Bytes the response holds: its body and header fields.
fn response_bytes(ex: &Exchange) -> u64 {
    let headers: u64 = ex
        .message
        .response_headers
        .iter()
        .map(|(n, v)| (n.len() + v.len()) as u64)
        .sum();
    headers.saturating_add(ex.message.response_body.len() as u64)
}

/// What a set, add or remove does to a header list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edit {
    Set,
    Add,
    Remove,
}

/// `set_header_value`, `add_header_value` and `remove_header`.
fn edit_header(
    caller: &mut Caller<'_, HostState>,
    edit: Edit,
    (kind, name, name_len): (i32, i32, i32),
    (value, value_len): (i32, i32),
) -> Result<(), wasmi::Error> {
    let kind = HeaderKind::of(kind)?;
    let op = match edit {
        Edit::Set => "set",
        Edit::Add => "add",
        Edit::Remove => "remove",
    };
    {
        let ex = exchange(caller)?;
        if kind.is_request() {
            before_next(ex, &format!("{op} a request header"))?;
        } else {
            before_next_or(ex, BUFFER_RESPONSE, &format!("{op} a response header"))?;
        }
    }
    if matches!(
        kind,
        HeaderKind::RequestTrailers | HeaderKind::ResponseTrailers
    ) {
        return Err(trap(
            "trailers are not supported (enable_features never grants them)",
        ));
    }
    if name_len == 0 {
        return Err(trap("HTTP header name cannot be empty"));
    }
    let name = read(caller, name, name_len, "header name")?;
    let value = match edit {
        Edit::Remove => Vec::new(),
        _ => read(caller, value, value_len, "header value")?,
    };
    // The list is walked (to replace or remove, and to check its size):
    // every field counts.
    let fields = {
        let ex = exchange(caller)?;
        match kind {
            HeaderKind::Request => ex.message.request_headers.len(),
            _ => ex.message.response_headers.len(),
        }
    };
    let weight = (fields as u64 + 1).saturating_mul(HEADER_FIELD_BYTES);
    charge(
        caller,
        cost::HTTP_COPY,
        ((name.len() + value.len()) as u64).saturating_add(weight),
    )?;
    let name = String::from_utf8(name)
        .ok()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| valid_name(n))
        .ok_or_else(|| trap("a header name must be a token (RFC 9110 §5.6.2)"))?;
    if edit != Edit::Remove {
        if !valid_value(&value) {
            return Err(trap(format!(
                "invalid value for header `{}`: visible characters, spaces and tabs only (no CR, LF or NUL)",
                crate::error::clip(&name, 64)
            )));
        }
        if HOST_HEADERS.contains(&name.as_str()) {
            return Err(trap(format!(
                "header field `{name}` is set by the host, not by middleware"
            )));
        }
    }
    let ex = exchange(caller)?;
    // Framing fields are the host's to write: a guest's are dropped, as in
    // a function's response, so that no guest can make the message framed
    // differently from its body.
    if FRAMING_HEADERS.contains(&name.as_str()) && edit != Edit::Remove {
        return finish(caller, ());
    }
    let limits = ex.limits;
    let list = match kind {
        HeaderKind::Request => &mut ex.message.request_headers,
        _ => &mut ex.message.response_headers,
    };
    apply_edit(list, edit, &name, value);
    match kind {
        HeaderKind::Request => {
            let headers = &ex.message.request_headers;
            let bytes: u64 = headers
                .iter()
                .map(|(n, v)| (n.len() + v.len()) as u64)
                .sum();
            if headers.len() > limits.max_request_headers || bytes > limits.max_request_header_bytes
            {
                return Err(trap(format!(
                    "the request headers would exceed the server's max_headers ({}) or max_header_bytes ({} bytes)",
                    limits.max_request_headers, limits.max_request_header_bytes
                )));
            }
        }
        _ => {
            if ex.message.response_headers.len() > limits.max_response_headers
                || response_bytes(ex) > limits.max_response
            {
                return Err(trap(format!(
                    "the response would exceed {} header fields or max_response ({} bytes)",
                    limits.max_response_headers, limits.max_response
                )));
            }
        }
    }
    finish(caller, ())
}

/// Applies `edit` of `name` (lower case) to `list`.
fn apply_edit(list: &mut Vec<(String, Vec<u8>)>, edit: Edit, name: &str, value: Vec<u8>) {
    if edit != Edit::Add {
        list.retain(|(n, _)| n != name);
    }
    if edit != Edit::Remove {
        list.push((name.to_owned(), value));
    }
}

/// `get_header_names(kind, buf, buf_limit) -> count_len`: each name once,
/// lower case, sorted.
fn get_header_names(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    buf: i32,
    limit: i32,
) -> Result<i64, wasmi::Error> {
    let kind = HeaderKind::of(kind)?;
    let ex = exchange(caller)?;
    let all = fields(ex, kind);
    // Each name once, sorted (the reference host lists a Go map's keys:
    // no order is promised).
    let mut names: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut joined = Vec::new();
    for name in &names {
        join(&mut joined, name.as_bytes());
    }
    // Sorting: each field counts twice (`benches/host.rs`: 20 fields at
    // one weight each bought up to 2.1x a guest's time per fuel).
    let (count, looked_at) = (names.len(), (all.len() as u64).saturating_mul(2));
    give_list(caller, (buf, limit), count, &joined, looked_at)
}

/// `get_header_values(kind, name, name_len, buf, buf_limit) -> count_len`.
fn get_header_values(
    caller: &mut Caller<'_, HostState>,
    (kind, name, name_len): (i32, i32, i32),
    buf: i32,
    limit: i32,
) -> Result<i64, wasmi::Error> {
    let kind = HeaderKind::of(kind)?;
    if name_len == 0 {
        return Err(trap("HTTP header name cannot be empty"));
    }
    // The name is copied out of the guest's memory: paid by its bytes
    // before the copy (a 7 MiB name was a free 7 MiB copy per call).
    let bytes = unsigned(name_len, "header name")?;
    charge(caller, cost::HTTP_COPY, u64::from(bytes))?;
    let name = read(caller, name, name_len, "header name")?;
    let ex = exchange(caller)?;
    let all = fields(ex, kind);
    let (mut joined, mut count) = (Vec::new(), 0);
    for (_, value) in all
        .iter()
        .filter(|(n, _)| n.as_bytes().eq_ignore_ascii_case(&name))
    {
        join(&mut joined, value);
        count += 1;
    }
    let looked_at = all.len() as u64;
    give_list(caller, (buf, limit), count, &joined, looked_at)
}

/// `read_body(kind, buf, buf_limit) -> eof_len`: the next bytes of the
/// request (0) or response (1) body, with EOF in the high 32 bits once
/// the body is all read.
fn read_body(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    buf: i32,
    limit: i32,
) -> Result<i64, wasmi::Error> {
    let limit = unsigned(limit, "buf_limit")?;
    if limit == 0 {
        return Err(trap("buf_limit 0 reading a body"));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let (start, end) = {
        let ex = exchange(caller)?;
        let (body, at) = match kind {
            0 => {
                before_next_or(ex, BUFFER_REQUEST, "read the request body")?;
                (&ex.message.request_body, ex.request_read)
            }
            1 => {
                before_next_or(ex, BUFFER_RESPONSE, "read the response body")?;
                (&ex.message.response_body, ex.response_read)
            }
            _ => return Err(trap(format!("unsupported body kind {kind}"))),
        };
        let start = at.min(body.len());
        (start, start + (body.len() - start).min(limit))
    };
    let n = end - start;
    charge(caller, cost::HTTP_COPY, n as u64)?;
    let buf = unsigned(buf, "buf")?;
    let (mem, ex) = memory_and_exchange(caller)?;
    let (body, at) = if kind == 0 {
        (&ex.message.request_body, &mut ex.request_read)
    } else {
        (&ex.message.response_body, &mut ex.response_read)
    };
    guest_memory::put(mem, buf, &body[start..end]).ok_or_else(|| {
        trap(format!(
            "buf at {buf:#x}+{n} lies outside the guest's memory"
        ))
    })?;
    *at = end;
    let eof = i64::from(end == body.len()) << 32;
    let n = i64::try_from(n).map_err(|_| trap("read too long"))?;
    finish(caller, eof | n)
}

/// `write_body(kind, body, body_len)`: the first write of a call replaces
/// the body, later ones append.
fn write_body(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    ptr: i32,
    len: i32,
) -> Result<(), wasmi::Error> {
    {
        let ex = exchange(caller)?;
        match kind {
            0 => before_next(ex, "write the request body")?,
            1 => before_next_or(ex, BUFFER_RESPONSE, "write the response body")?,
            _ => return Err(trap(format!("unsupported body kind {kind}"))),
        }
    }
    let bytes = read(caller, ptr, len, "body")?;
    charge(caller, cost::HTTP_COPY, bytes.len() as u64)?;
    let ex = exchange(caller)?;
    if kind == 0 {
        if !std::mem::replace(&mut ex.request_written, true) {
            ex.message.request_body.clear();
            ex.request_read = 0;
        }
        let total = (ex.message.request_body.len() as u64).saturating_add(bytes.len() as u64);
        if total > ex.limits.max_body {
            return Err(trap(format!(
                "the request body would exceed max_body ({} bytes)",
                ex.limits.max_body
            )));
        }
        ex.message.request_body.extend_from_slice(&bytes);
    } else {
        if !std::mem::replace(&mut ex.response_written, true) {
            ex.message.response_body.clear();
            ex.response_read = 0;
        }
        if response_bytes(ex).saturating_add(bytes.len() as u64) > ex.limits.max_response {
            return Err(trap(format!(
                "the response would exceed max_response ({} bytes)",
                ex.limits.max_response
            )));
        }
        ex.message.response_body.extend_from_slice(&bytes);
    }
    finish(caller, ())
}

/// Whether `uri` is an origin-form target wasmgate forwards as it reads:
/// `/` then visible ASCII, no fragment, no dot-segment.
fn valid_uri(uri: &[u8]) -> bool {
    let path_end = uri.iter().position(|&b| b == b'?').unwrap_or(uri.len());
    uri.first() == Some(&b'/')
        && uri.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'#')
        && !uri[..path_end]
            .split(|&b| b == b'/')
            .any(|segment| segment == b"." || segment == b"..")
}

/// Defines the `http_handler` host functions in `linker`. `log` is the
/// log function the other modules share; the others are one dynamic host
/// function type dispatching on the name ([`call`]): one wasmi trampoline
/// for all of them, not one per closure (11 KB less code on aarch64 than a
/// `func_wrap` per function).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    define_log(linker, NAME, "log", level_of, |_| {
        Err(trap("log: message is out of bounds"))
    })?;
    for &(name, params, results) in FUNCTIONS {
        if name == "log" {
            continue;
        }
        let ty = FuncType::new(params.iter().copied(), results.iter().copied());
        linker.func_new(
            NAME,
            name,
            ty,
            move |mut caller: Caller<'_, HostState>, args: &[Val], out: &mut [Val]| {
                let value = call(&mut caller, name, args)?;
                if let (Some(slot), Some(value)) = (out.first_mut(), value) {
                    *slot = value;
                }
                Ok(())
            },
        )?;
    }
    Ok(())
}

/// Runs the host function `name` with `args` (their types checked by the
/// linker against [`FUNCTIONS`]): its result, if it has one.
fn call(
    caller: &mut Caller<'_, HostState>,
    name: &str,
    args: &[Val],
) -> Result<Option<Val>, wasmi::Error> {
    let a = |n: usize| match args.get(n) {
        Some(Val::I32(v)) => *v,
        _ => 0,
    };
    let i32 = |r: Result<i32, wasmi::Error>| r.map(|v| Some(Val::I32(v)));
    let i64 = |r: Result<i64, wasmi::Error>| r.map(|v| Some(Val::I64(v)));
    let unit = |r: Result<(), wasmi::Error>| r.map(|()| None);
    match name {
        "log_enabled" => i32(log_enabled(caller, a(0))),
        "get_config" => i32(give(caller, a(0), a(1), |ex| Cow::Borrowed(&ex.config))),
        "enable_features" => i32(enable_features(caller, a(0))),
        "get_method" => i32(give(caller, a(0), a(1), |ex| {
            Cow::Borrowed(ex.message.method.as_bytes())
        })),
        "set_method" => unit(set_method(caller, a(0), a(1))),
        "get_uri" => i32(give(caller, a(0), a(1), |ex| {
            Cow::Borrowed(ex.message.uri.as_bytes())
        })),
        "set_uri" => unit(set_uri(caller, a(0), a(1))),
        "get_protocol_version" => i32(give(caller, a(0), a(1), |_| {
            Cow::Borrowed(PROTOCOL_VERSION.as_bytes())
        })),
        "get_header_names" => i64(get_header_names(caller, a(0), a(1), a(2))),
        "get_header_values" => i64(get_header_values(caller, (a(0), a(1), a(2)), a(3), a(4))),
        "set_header_value" => unit(edit_header(
            caller,
            Edit::Set,
            (a(0), a(1), a(2)),
            (a(3), a(4)),
        )),
        "add_header_value" => unit(edit_header(
            caller,
            Edit::Add,
            (a(0), a(1), a(2)),
            (a(3), a(4)),
        )),
        "remove_header" => unit(edit_header(
            caller,
            Edit::Remove,
            (a(0), a(1), a(2)),
            (0, 0),
        )),
        "read_body" => i64(read_body(caller, a(0), a(1), a(2))),
        "write_body" => unit(write_body(caller, a(0), a(1), a(2))),
        "get_status_code" => i32(get_status_code(caller)),
        "set_status_code" => unit(set_status_code(caller, a(0))),
        "get_source_addr" => i32(give(caller, a(0), a(1), |ex| {
            Cow::Owned(
                ex.message
                    .peer
                    .map(|p| p.to_string())
                    .unwrap_or_default()
                    .into_bytes(),
            )
        })),
        _ => Err(trap(format!("no host function `{name}`"))),
    }
}

/// `log_enabled(level) -> 0 | 1`.
fn log_enabled(caller: &mut Caller<'_, HostState>, level: i32) -> Result<i32, wasmi::Error> {
    charge(caller, cost::SMALL, 0)?;
    // The request's level (a replay's is the recording's).
    let on = level <= 2 && caller.data().log.enabled(level_of(level));
    finish(caller, i32::from(on))
}

/// `enable_features(features) -> enabled`.
fn enable_features(caller: &mut Caller<'_, HostState>, features: i32) -> Result<i32, wasmi::Error> {
    charge(caller, cost::SMALL, 0)?;
    let ex = exchange(caller)?;
    let mut granted = features.cast_unsigned() & SUPPORTED;
    // The next handler's response is not held back once it ran.
    if ex.after_next {
        granted &= !BUFFER_RESPONSE;
    }
    ex.features |= granted;
    let features = ex.features.cast_signed();
    finish(caller, features)
}

/// `set_method(method, method_len)`.
fn set_method(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    before_next(exchange(caller)?, "set the method")?;
    if len == 0 {
        return Err(trap("HTTP method cannot be empty"));
    }
    let method = read(caller, ptr, len, "method")?;
    charge(caller, cost::HTTP_COPY, method.len() as u64)?;
    within_head(caller, method.len(), "method")?;
    let method = String::from_utf8(method)
        .ok()
        .filter(|m| valid_name(m))
        .ok_or_else(|| trap("a method must be a token (RFC 9110 §9.1)"))?;
    // The request parser refuses CONNECT (no tunnels): a middleware may
    // not turn a request into one, whose 2xx would make the upstream
    // connection a tunnel.
    if method.eq_ignore_ascii_case("CONNECT") {
        return Err(trap("CONNECT is not forwarded (wasmgate opens no tunnels)"));
    }
    exchange(caller)?.message.method = method;
    finish(caller, ())
}

/// Traps unless a method or URI of `len` bytes fits the server's
/// `max_header_bytes`, as a client's request line must: what a middleware
/// sets is forwarded, and held in memory outside its own.
fn within_head(
    caller: &mut Caller<'_, HostState>,
    len: usize,
    what: &str,
) -> Result<(), wasmi::Error> {
    let most = exchange(caller)?.limits.max_request_header_bytes;
    if len as u64 > most {
        return Err(trap(format!(
            "the {what} ({len} bytes) would exceed the server's max_header_bytes ({most} bytes)"
        )));
    }
    Ok(())
}

/// `set_uri(uri, uri_len)`.
fn set_uri(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    before_next(exchange(caller)?, "set the URI")?;
    let mut uri = read(caller, ptr, len, "uri")?;
    charge(caller, cost::HTTP_COPY, uri.len() as u64)?;
    within_head(caller, uri.len(), "URI")?;
    // As the reference host: an empty URI is `/`.
    if uri.is_empty() {
        uri = b"/".to_vec();
    }
    if !valid_uri(&uri) {
        return Err(trap(
            "a URI must be a path starting with `/` and an optional query: visible ASCII, no fragment, no `.` or `..` segment",
        ));
    }
    let uri = String::from_utf8(uri).map_err(|_| trap("URI is not ASCII"))?;
    exchange(caller)?.message.uri = uri;
    finish(caller, ())
}

/// `get_status_code() -> status`.
fn get_status_code(caller: &mut Caller<'_, HostState>) -> Result<i32, wasmi::Error> {
    charge(caller, cost::SMALL, 0)?;
    let status = i32::from(exchange(caller)?.message.status);
    finish(caller, status)
}

/// `set_status_code(status)`.
fn set_status_code(caller: &mut Caller<'_, HostState>, code: i32) -> Result<(), wasmi::Error> {
    charge(caller, cost::SMALL, 0)?;
    let ex = exchange(caller)?;
    before_next_or(ex, BUFFER_RESPONSE, "set the status code")?;
    ex.message.status = match u16::try_from(code) {
        Ok(status @ 200..=999) => status,
        _ => {
            return Err(trap(format!("status {code} is not between 200 and 999")));
        }
    };
    finish(caller, ())
}

/// The ABI's log levels: -1 debug, 0 info, 1 warn, 2 error, 3 none.
fn level_of(level: i32) -> log::Level {
    match level {
        -1 => log::Level::Debug,
        0 => log::Level::Info,
        1 => log::Level::Warn,
        2 => log::Level::Error,
        _ => log::Level::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_origin_form_without_dot_segments() {
        for ok in ["/", "/a/b?x=1", "/a?q=/../", "/%2e%2e/x"] {
            assert!(valid_uri(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "a", "/a b", "/a\r\nx", "/../etc", "/a/./b", "/a/..", "/a#f", "/\u{e9}",
        ] {
            assert!(!valid_uri(bad.as_bytes()), "{bad:?}");
        }
    }
}
