//! Trace ids: the one a client sent (`traceparent`, `x-request-id`) or
//! a new one, for `x-trace-id`, the access line and the guest.

/// A trace id: at most 64 ASCII characters.
pub(crate) type TraceId = heapless::String<64>;

/// Whether `id` may be a trace id taken from a client's `x-request-id`
/// (and so any trace id wasmgate gives): 1 to 64 ASCII letters, digits,
/// `-`, `_`, `.` or `:`.
pub(crate) fn is_trace_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// The request's trace id: from `traceparent`, else `x-request-id`, else new.
pub(crate) fn trace_id(headers: &[(String, Vec<u8>)]) -> TraceId {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let mut id = TraceId::new();
    let from_traceparent = header("traceparent")
        .and_then(|v| v.split(|&b| b == b'-').nth(1))
        .filter(|t| t.len() == 32 && t.iter().all(u8::is_ascii_hexdigit));
    let from_request_id = header("x-request-id").filter(|v| is_trace_id(v));
    match from_traceparent.or(from_request_id) {
        Some(given) => {
            for &b in given {
                let _ = id.push(b as char);
            }
        }
        None => {
            for _ in 0..32 {
                let _ = id.push(char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'));
            }
        }
    }
    id
}
