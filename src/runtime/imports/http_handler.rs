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

use wasmi::{Caller, FuncType, Linker, ValType};

use super::wasmgate::define_log;
use crate::error::CallError;
use crate::http::{FRAMING_HEADERS, HOST_HEADERS, valid_name, valid_value};
use crate::runtime::exchange::{BUFFER_REQUEST, BUFFER_RESPONSE, Exchange, SUPPORTED};
use crate::runtime::imports::host_module::{HostModule, signature_is};
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
    let Some((_, params, results)) = FUNCTIONS.iter().find(|(n, ..)| *n == name) else {
        return Err("no such http_handler host function");
    };
    if !signature_is(ty, params, results) {
        return Err("wrong signature for this http_handler host function");
    }
    Ok(())
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
        let (mem, state) =
            guest_memory::of(caller).ok_or_else(|| trap("the guest exports no memory"))?;
        let ex = state
            .http
            .as_deref()
            .ok_or_else(|| trap("called outside an http-wasm exchange"))?;
        guest_memory::put(mem, buf, &what(ex)).ok_or_else(|| {
            trap(format!(
                "buf at {buf:#x}+{len} lies outside the guest's memory"
            ))
        })?;
    }
    finish(caller, len32.cast_signed())
}

/// Writes `items`, NUL-terminated, to `buf` if they fit in `limit` bytes:
/// the ABI's `count << 32 | length` result (0 for no items).
fn give_list(
    caller: &mut Caller<'_, HostState>,
    buf: i32,
    limit: i32,
    items: &[Vec<u8>],
    looked_at: u64,
) -> Result<i64, wasmi::Error> {
    let limit = unsigned(limit, "buf_limit")?;
    let bytes = items
        .iter()
        .try_fold(0u64, |sum, item| sum.checked_add(item.len() as u64 + 1))
        .unwrap_or(u64::MAX);
    let (Ok(count), Ok(len)) = (u32::try_from(items.len()), u32::try_from(bytes)) else {
        return Err(trap("list longer than 4 GiB"));
    };
    let fits = len <= limit;
    let weight = looked_at.saturating_mul(HEADER_FIELD_BYTES);
    charge(
        caller,
        cost::HTTP_COPY,
        weight.saturating_add(if fits { bytes } else { 0 }),
    )?;
    if count == 0 {
        return finish(caller, 0i64);
    }
    if fits {
        let buf = unsigned(buf, "buf")?;
        let (mem, _) =
            guest_memory::of(caller).ok_or_else(|| trap("the guest exports no memory"))?;
        let len = usize::try_from(len).map_err(|_| trap("list too long"))?;
        let out = guest_memory::get_mut(mem, buf, len).ok_or_else(|| {
            trap(format!(
                "buf at {buf:#x}+{len} lies outside the guest's memory"
            ))
        })?;
        let mut at = 0;
        for item in items {
            out[at..at + item.len()].copy_from_slice(item);
            at += item.len();
            out[at] = 0;
            at += 1;
        }
    }
    let packed = (u64::from(count) << 32) | u64::from(len);
    finish(caller, packed.cast_signed())
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
    charge(
        caller,
        cost::HTTP_COPY,
        (name.len() + value.len()) as u64 + HEADER_FIELD_BYTES,
    )?;
    let name = String::from_utf8(name)
        .ok()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| valid_name(n))
        .ok_or_else(|| trap("a header name must be a token (RFC 9110 §5.6.2)"))?;
    if edit != Edit::Remove {
        if !valid_value(&value) {
            return Err(trap(format!(
                "invalid value for header `{name}`: visible characters, spaces and tabs only (no CR, LF or NUL)"
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
/// lower case, in first-seen order.
fn get_header_names(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    buf: i32,
    limit: i32,
) -> Result<i64, wasmi::Error> {
    let kind = HeaderKind::of(kind)?;
    let ex = exchange(caller)?;
    let all = fields(ex, kind);
    let mut seen = std::collections::BTreeSet::new();
    let names: Vec<Vec<u8>> = all
        .iter()
        .filter(|(name, _)| seen.insert(name.as_str()))
        .map(|(name, _)| name.as_bytes().to_vec())
        .collect();
    let looked_at = all.len() as u64;
    give_list(caller, buf, limit, &names, looked_at)
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
    let name = read(caller, name, name_len, "header name")?;
    let ex = exchange(caller)?;
    let all = fields(ex, kind);
    let values: Vec<Vec<u8>> = all
        .iter()
        .filter(|(n, _)| n.as_bytes().eq_ignore_ascii_case(&name))
        .map(|(_, v)| v.clone())
        .collect();
    let looked_at = all.len() as u64;
    give_list(caller, buf, limit, &values, looked_at)
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
    let (mem, state) =
        guest_memory::of(caller).ok_or_else(|| trap("the guest exports no memory"))?;
    let ex = state
        .http
        .as_deref_mut()
        .ok_or_else(|| trap("called outside an http-wasm exchange"))?;
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

/// Defines the `http_handler` host functions in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    define_log(linker, NAME, "log", level_of, |_| {
        Err(trap("log: message is out of bounds"))
    })?;
    linker.func_wrap(
        NAME,
        "log_enabled",
        |mut caller: Caller<'_, HostState>, level: i32| -> Result<i32, wasmi::Error> {
            charge(&mut caller, cost::SMALL, 0)?;
            let on = level <= 2 && log::log_enabled!(target: "guest", level_of(level));
            finish(&mut caller, i32::from(on))
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_config",
        |mut caller: Caller<'_, HostState>, buf: i32, limit: i32| {
            give(&mut caller, buf, limit, |ex| Cow::Borrowed(&ex.config))
        },
    )?;
    linker.func_wrap(
        NAME,
        "enable_features",
        |mut caller: Caller<'_, HostState>, features: i32| -> Result<i32, wasmi::Error> {
            charge(&mut caller, cost::SMALL, 0)?;
            let ex = exchange(&mut caller)?;
            let mut granted = features.cast_unsigned() & SUPPORTED;
            // The next handler's response is not held back once it ran.
            if ex.after_next {
                granted &= !BUFFER_RESPONSE;
            }
            ex.features |= granted;
            let features = ex.features.cast_signed();
            finish(&mut caller, features)
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_method",
        |mut caller: Caller<'_, HostState>, buf: i32, limit: i32| {
            give(&mut caller, buf, limit, |ex| {
                Cow::Borrowed(ex.message.method.as_bytes())
            })
        },
    )?;
    linker.func_wrap(
        NAME,
        "set_method",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
            before_next(exchange(&mut caller)?, "set the method")?;
            if len == 0 {
                return Err(trap("HTTP method cannot be empty"));
            }
            let method = read(&mut caller, ptr, len, "method")?;
            charge(&mut caller, cost::HTTP_COPY, method.len() as u64)?;
            let method = String::from_utf8(method)
                .ok()
                .filter(|m| valid_name(m))
                .ok_or_else(|| trap("a method must be a token (RFC 9110 §9.1)"))?;
            exchange(&mut caller)?.message.method = method;
            finish(&mut caller, ())
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_uri",
        |mut caller: Caller<'_, HostState>, buf: i32, limit: i32| {
            give(&mut caller, buf, limit, |ex| {
                Cow::Borrowed(ex.message.uri.as_bytes())
            })
        },
    )?;
    linker.func_wrap(
        NAME,
        "set_uri",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
            before_next(exchange(&mut caller)?, "set the URI")?;
            let mut uri = read(&mut caller, ptr, len, "uri")?;
            charge(&mut caller, cost::HTTP_COPY, uri.len() as u64)?;
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
            exchange(&mut caller)?.message.uri = uri;
            finish(&mut caller, ())
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_protocol_version",
        |mut caller: Caller<'_, HostState>, buf: i32, limit: i32| {
            give(&mut caller, buf, limit, |_| {
                Cow::Borrowed(PROTOCOL_VERSION.as_bytes())
            })
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_header_names",
        |mut caller: Caller<'_, HostState>, kind: i32, buf: i32, limit: i32| {
            get_header_names(&mut caller, kind, buf, limit)
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_header_values",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         name: i32,
         name_len: i32,
         buf: i32,
         limit: i32| { get_header_values(&mut caller, (kind, name, name_len), buf, limit) },
    )?;
    linker.func_wrap(
        NAME,
        "set_header_value",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         name: i32,
         name_len: i32,
         value: i32,
         value_len: i32| {
            edit_header(
                &mut caller,
                Edit::Set,
                (kind, name, name_len),
                (value, value_len),
            )
        },
    )?;
    linker.func_wrap(
        NAME,
        "add_header_value",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         name: i32,
         name_len: i32,
         value: i32,
         value_len: i32| {
            edit_header(
                &mut caller,
                Edit::Add,
                (kind, name, name_len),
                (value, value_len),
            )
        },
    )?;
    linker.func_wrap(
        NAME,
        "remove_header",
        |mut caller: Caller<'_, HostState>, kind: i32, name: i32, name_len: i32| {
            edit_header(&mut caller, Edit::Remove, (kind, name, name_len), (0, 0))
        },
    )?;
    linker.func_wrap(
        NAME,
        "read_body",
        |mut caller: Caller<'_, HostState>, kind: i32, buf: i32, limit: i32| {
            read_body(&mut caller, kind, buf, limit)
        },
    )?;
    linker.func_wrap(
        NAME,
        "write_body",
        |mut caller: Caller<'_, HostState>, kind: i32, ptr: i32, len: i32| {
            write_body(&mut caller, kind, ptr, len)
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_status_code",
        |mut caller: Caller<'_, HostState>| -> Result<i32, wasmi::Error> {
            charge(&mut caller, cost::SMALL, 0)?;
            let status = i32::from(exchange(&mut caller)?.message.status);
            finish(&mut caller, status)
        },
    )?;
    linker.func_wrap(
        NAME,
        "set_status_code",
        |mut caller: Caller<'_, HostState>, code: i32| -> Result<(), wasmi::Error> {
            charge(&mut caller, cost::SMALL, 0)?;
            let ex = exchange(&mut caller)?;
            before_next_or(ex, BUFFER_RESPONSE, "set the status code")?;
            ex.message.status = match u16::try_from(code) {
                Ok(status @ 200..=999) => status,
                _ => {
                    return Err(trap(format!("status {code} is not between 200 and 999")));
                }
            };
            finish(&mut caller, ())
        },
    )?;
    linker.func_wrap(
        NAME,
        "get_source_addr",
        |mut caller: Caller<'_, HostState>, buf: i32, limit: i32| {
            give(&mut caller, buf, limit, |ex| {
                Cow::Owned(
                    ex.message
                        .peer
                        .map(|p| p.to_string())
                        .unwrap_or_default()
                        .into_bytes(),
                )
            })
        },
    )?;
    Ok(())
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
