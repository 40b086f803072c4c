//! Writing HTTP/1.1 responses: head and body in one buffer, so a response
//! leaves in as few packets as possible.

use std::borrow::Cow;

/// A response about to be written.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields (framing fields are added by `encode`).
    pub headers: Vec<(Cow<'static, str>, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Adds a header field.
    pub fn with_header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Header names the host sets itself; a guest's values for them are dropped.
pub const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// Header names the host sets on every response or error; a guest's field
/// with one of these names makes its response a bad response, so a guest
/// cannot pose as the host (a fake error kind, another request's trace id).
pub const HOST_HEADERS: &[&str] = &["x-wasmgate-error", "x-trace-id"];

/// Whether `name` is a valid header field name (an RFC 9110 token).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` is a valid header field value (RFC 9110 §5.5): visible
/// ASCII, obs-text (0x80–0xFF), spaces and tabs; no other control byte.
pub fn valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

/// Serialises `response` into `out`. `head_only` omits the body (HEAD).
pub fn encode(response: &Response, keep_alive: bool, head_only: bool, out: &mut Vec<u8>) {
    out.reserve(response.body.len().saturating_add(128));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(response.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    // 204 and 304 responses have no body and (204) no content-length.
    let bodiless = matches!(response.status, 204 | 304);
    if !bodiless {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(response.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only && !bodiless {
        out.extend_from_slice(&response.body);
    }
}

/// The reason phrase for common codes ("" for others, which HTTP allows).
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_head_and_body() {
        let r = Response {
            status: 200,
            headers: vec![("x-a".into(), b"1".to_vec())],
            body: b"hi".to_vec(),
        };
        let mut out = Vec::new();
        encode(&r, true, false, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 2\r\n\r\nhi"
        );
        out.clear();
        encode(&r, false, true, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn no_content_has_no_body_and_no_length() {
        let r = Response {
            status: 204,
            headers: Vec::new(),
            body: b"ignored".to_vec(),
        };
        let mut out = Vec::new();
        encode(&r, true, false, &mut out);
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\n\r\n");
    }

    #[test]
    fn header_validation() {
        assert!(valid_name("x-custom_1"));
        assert!(!valid_name("bad name"));
        assert!(!valid_name(""));
        assert!(valid_value(b"ok value"));
        assert!(valid_value(b"tab\tand obs-text \xe9 and ~"));
        assert!(valid_value(b""));
        assert!(!valid_value(b"a\r\nset-cookie: x"));
        for control in [0u8, 0x01, 0x08, 0x0b, 0x1b, 0x1f, 0x7f] {
            assert!(!valid_value(&[b'a', control, b'b']), "{control:#x}");
        }
    }
}
