//! Writing HTTP/1.1 responses: head and body in one buffer, so a response
//! leaves in as few packets as possible; or the head, then a
//! [`BodyStream`]'s chunks as they come.

use std::borrow::Cow;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;

/// A response about to be written.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields (framing fields are added by `encode`).
    pub headers: Vec<(Cow<'static, str>, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// A body pulled chunk by chunk while it is written, instead of `body`.
    pub stream: Option<Streamed>,
}

/// A body produced while it is written (a reverse proxy's upstream
/// response): the writer pulls it a bounded chunk at a time, so a large
/// body never sits in memory and a slow client slows the producer down.
pub trait BodyStream {
    /// The body's length when known in advance (sent as `content-length`;
    /// else the body is sent chunked, or until the close to HTTP/1.0).
    fn length(&self) -> Option<u64>;
    /// Appends the next at most `max` bytes to `out`: their count, 0 at
    /// the end. An error aborts the response (the connection is closed:
    /// a client must not take a cut body for a whole one).
    fn read<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
        max: usize,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<usize>> + 'a>>;
}

/// A boxed [`BodyStream`] in a [`Response`].
pub struct Streamed(pub Box<dyn BodyStream>);

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Streamed(length {:?})", self.0.length())
    }
}

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `content-length` (omitted for 204 and 304).
    Length(u64),
    /// `transfer-encoding: chunked` (an HTTP/1.1 client).
    Chunked,
    /// The body ends with the connection (an HTTP/1.0 client).
    Close,
}

impl Framing {
    /// How a body of `length` (unknown: `None`) goes to a client that
    /// speaks HTTP/1.1 or not.
    pub fn of(length: Option<u64>, http11: bool) -> Self {
        match (length, http11) {
            (Some(n), _) => Framing::Length(n),
            (None, true) => Framing::Chunked,
            (None, false) => Framing::Close,
        }
    }
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
    let length = u64::try_from(response.body.len()).unwrap_or(u64::MAX);
    encode_head(response, Framing::Length(length), keep_alive, out);
    if !head_only && !bodiless(response.status) {
        out.extend_from_slice(&response.body);
    }
}

/// Whether a response with `status` has no body: 204 and 304 (and 1xx,
/// which are never written as responses here).
pub fn bodiless(status: u16) -> bool {
    matches!(status, 204 | 304)
}

/// Serialises the head of `response`, its body delimited by `framing`.
/// `Framing::Close` implies `connection: close`.
pub fn encode_head(response: &Response, framing: Framing, keep_alive: bool, out: &mut Vec<u8>) {
    // One allocation for the whole head: the fields, plus 128 bytes for
    // the status line (at most 45), the framing fields (at most 57) and
    // the blank line.
    let fields = response.headers.iter().fold(0usize, |n, (name, value)| {
        n.saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(4)
    });
    out.reserve(fields.saturating_add(128));
    out.extend_from_slice(b"HTTP/1.1 ");
    let _ = write!(out, "{:03}", response.status);
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
    match framing {
        _ if bodiless(response.status) => {}
        Framing::Length(n) => {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Close => {}
    }
    if !keep_alive || framing == Framing::Close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
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
            stream: None,
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
            stream: None,
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
