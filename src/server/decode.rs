//! Reading HTTP/1.x requests from a connection, within the server's limits:
//! head size and field count, body size, and the idle, head and body
//! timeouts. Every failure is a [`DecodeError`] the server can answer.

use std::time::Instant;

use smol::Timer;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::limits::ServerLimits;

/// A request as read from the wire, body included.
#[derive(Debug)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/hello?name=pi`.
    pub uri: String,
    /// Header fields in order; names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
}

impl Request {
    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        self.uri.split(['?', '#']).next().unwrap_or("")
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
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
    /// The request is not valid HTTP/1.x.
    Malformed(&'static str),
    /// The [`Gate`] refused memory for the body: the memory budget is full.
    Overloaded,
    /// A socket error.
    Io(std::io::Error),
}

/// What the server decides while a request is read, beyond the fixed
/// limits: it learns when a head is complete, and it grants (or refuses)
/// memory for a body before the body is buffered.
pub trait Gate {
    /// A complete, parsed head (before any body byte is read).
    fn head(&self, method: &str, uri: &str, headers: &[(String, Vec<u8>)]);
    /// Asks for `bytes` more of the memory budget before that much more
    /// body is buffered; `false` refuses the request ([`DecodeError::Overloaded`]).
    fn reserve_body(&self, bytes: u64) -> bool;
}

/// No gate: every body fits.
impl Gate for () {
    fn head(&self, _: &str, _: &str, _: &[(String, Vec<u8>)]) {}
    fn reserve_body(&self, _: u64) -> bool {
        true
    }
}

/// Reads requests from one connection, keeping bytes that arrived early.
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    /// When the connection was opened; its first head is due by
    /// `opened + header_timeout`.
    opened: Instant,
    /// Whether no head has been read on this connection yet.
    first: bool,
}

/// Read chunk size: a typical request fits in one read.
const READ_CHUNK: usize = 4096;
/// Longest chunk-size line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            opened: Instant::now(),
            first: true,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads more bytes before `deadline`; `Ok(0)` at end of stream.
    async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<usize, Option<std::io::Error>> {
        // Drop what was consumed before growing: a client that keeps a read
        // ending mid-line (chunk lines, trailers) must not grow the buffer.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let read = smol::future::or(
            async { io.read(&mut self.buf[old..]).await.map_err(Some) },
            async {
                Timer::at(deadline).await;
                Err(None)
            },
        )
        .await;
        self.buf.truncate(old + *read.as_ref().unwrap_or(&0));
        read
    }

    /// Reads the next request, or says why none can be read.
    ///
    /// Answers `Expect: 100-continue` itself once the body is known to fit.
    /// `gate` hears of the head and grants memory for the body.
    pub async fn read<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        limits: &ServerLimits,
        gate: &dyn Gate,
    ) -> Result<Request, DecodeError> {
        // Compact: drop what earlier requests consumed.
        self.buf.drain(..self.start);
        self.start = 0;

        let head_end = self.read_head(io, limits).await?;
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&self.buf[..head_end]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(DecodeError::Malformed("incomplete request head"));
            }
            Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
            Err(_) => return Err(DecodeError::Malformed("malformed request head")),
        }
        let method = parsed.method.unwrap_or_default().to_owned();
        let uri = parsed.path.unwrap_or_default().to_owned();
        if !uri.starts_with('/') {
            return Err(DecodeError::Malformed(
                "request target must be an absolute path",
            ));
        }
        let http11 = parsed.version == Some(1);
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut keep_alive = http11;
        let mut expect_continue = false;
        let mut fields = Vec::with_capacity(parsed.headers.len());
        for h in parsed.headers.iter() {
            let name = h.name.to_ascii_lowercase();
            match name.as_str() {
                "content-length" => {
                    let n = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .ok_or(DecodeError::Malformed("invalid content-length"))?;
                    if content_length.is_some_and(|old| old != n) {
                        return Err(DecodeError::Malformed("conflicting content-length fields"));
                    }
                    content_length = Some(n);
                }
                "transfer-encoding" => {
                    if !h.value.eq_ignore_ascii_case(b"chunked") {
                        return Err(DecodeError::Malformed("unsupported transfer-encoding"));
                    }
                    chunked = true;
                }
                "connection" => {
                    for token in h.value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            keep_alive = false;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            keep_alive = true;
                        }
                    }
                }
                "expect" => expect_continue = h.value.eq_ignore_ascii_case(b"100-continue"),
                _ => {}
            }
            fields.push((name, h.value.to_vec()));
        }
        self.start = head_end;
        gate.head(&method, &uri, &fields);
        if chunked && content_length.is_some() {
            return Err(DecodeError::Malformed(
                "both content-length and transfer-encoding",
            ));
        }
        if let Some(n) = content_length.filter(|&n| n > limits.max_body) {
            return Err(DecodeError::BodyTooLarge(n));
        }
        // A declared length is reserved whole, before `100 Continue`.
        if let Some(n) = content_length.filter(|&n| n > 0)
            && !gate.reserve_body(n)
        {
            return Err(DecodeError::Overloaded);
        }
        if expect_continue && (chunked || content_length.is_some_and(|n| n > 0)) {
            io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(DecodeError::Io)?;
        }
        let deadline = Instant::now() + limits.body_timeout;
        let body = if chunked {
            self.read_chunked(io, limits, gate, deadline).await?
        } else {
            self.read_exact(io, content_length.unwrap_or(0) as usize, deadline)
                .await?
        };
        Ok(Request {
            method,
            uri,
            headers: fields,
            body,
            keep_alive,
        })
    }

    /// Waits for a complete head; returns the offset just past it.
    async fn read_head<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        limits: &ServerLimits,
    ) -> Result<usize, DecodeError> {
        // The first head is due `header_timeout` after the connection was
        // opened, whether or not it has started; later ones get
        // `idle_timeout` to start and `header_timeout` from their first byte.
        let mut deadline = match self.first {
            true => self.opened + limits.header_timeout,
            false => Instant::now() + limits.idle_timeout,
        };
        let mut started = false;
        let mut searched = 0;
        loop {
            // Tolerate blank lines before a request (RFC 9112 §2.2).
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if !started && !self.buf.is_empty() {
                started = true;
                if !self.first {
                    deadline = Instant::now() + limits.header_timeout;
                }
            }
            if let Some(i) = find(&self.buf[searched..], b"\r\n\r\n") {
                let end = searched + i + 4;
                if end > limits.max_header_bytes {
                    return Err(DecodeError::HeadTooLarge);
                }
                self.first = false;
                return Ok(end);
            }
            if self.buf.len() > limits.max_header_bytes {
                return Err(DecodeError::HeadTooLarge);
            }
            searched = self.buf.len().saturating_sub(3);
            match self.fill(io, deadline).await {
                Ok(0) if self.buf.is_empty() => return Err(DecodeError::Closed),
                Ok(0) => {
                    return Err(DecodeError::Malformed(
                        "connection closed inside the request head",
                    ));
                }
                Ok(_) => {}
                Err(None) if started => return Err(DecodeError::HeadTimeout),
                Err(None) => return Err(DecodeError::Closed),
                Err(Some(e)) => return Err(DecodeError::Io(e)),
            }
        }
    }

    async fn need<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<(), DecodeError> {
        match self.fill(io, deadline).await {
            Ok(0) => Err(DecodeError::Malformed(
                "connection closed inside the request body",
            )),
            Ok(_) => Ok(()),
            Err(None) => Err(DecodeError::BodyTimeout),
            Err(Some(e)) => Err(DecodeError::Io(e)),
        }
    }

    async fn read_exact<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        len: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, DecodeError> {
        let mut body = Vec::with_capacity(len);
        loop {
            let take = (len - body.len()).min(self.pending().len());
            body.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
            if body.len() == len {
                return Ok(body);
            }
            self.need(io, deadline).await?;
        }
    }

    async fn read_line<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<Vec<u8>, DecodeError> {
        loop {
            if let Some(i) = find(self.pending(), b"\r\n") {
                let line = self.pending()[..i].to_vec();
                self.start += i + 2;
                return Ok(line);
            }
            if self.pending().len() > MAX_CHUNK_LINE {
                return Err(DecodeError::Malformed("chunk line too long"));
            }
            self.need(io, deadline).await?;
        }
    }

    async fn read_chunked<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        limits: &ServerLimits,
        gate: &dyn Gate,
        deadline: Instant,
    ) -> Result<Vec<u8>, DecodeError> {
        let (max_body, max_trailers) = (limits.max_body, limits.max_header_bytes);
        let mut body = Vec::new();
        loop {
            let line = self.read_line(io, deadline).await?;
            let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size_text)
                .ok()
                .map(str::trim)
                .filter(|s| s.len() <= 16)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or(DecodeError::Malformed("invalid chunk size"))?;
            if size == 0 {
                // Trailer fields, ignored, up to the empty line; bounded like
                // a head.
                let mut trailers = 0;
                loop {
                    let line = self.read_line(io, deadline).await?;
                    if line.is_empty() {
                        return Ok(body);
                    }
                    trailers += line.len() + 2;
                    if trailers > max_trailers {
                        return Err(DecodeError::HeadTooLarge);
                    }
                }
            }
            let total = (body.len() as u64).saturating_add(size);
            if total > max_body {
                return Err(DecodeError::BodyTooLarge(total));
            }
            if !gate.reserve_body(size) {
                return Err(DecodeError::Overloaded);
            }
            let chunk = self.read_exact(io, size as usize, deadline).await?;
            body.extend_from_slice(&chunk);
            if !self.read_line(io, deadline).await?.is_empty() {
                return Err(DecodeError::Malformed("chunk not followed by CRLF"));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], limits: &ServerLimits) -> Result<Request, DecodeError> {
        let mut io = smol::io::Cursor::new(bytes.to_vec());
        smol::block_on(Decoder::new().read(&mut io, limits, &()))
    }

    #[test]
    fn simple_get_with_keep_alive() {
        let r = decode(
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n",
            &ServerLimits::default(),
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/a");
        assert_eq!(r.header("x-a"), Some(&b"1"[..]));
        assert!(r.keep_alive);
        assert!(r.body.is_empty());
    }

    #[test]
    fn http10_closes_by_default() {
        let r = decode(b"GET / HTTP/1.0\r\n\r\n", &ServerLimits::default()).unwrap();
        assert!(!r.keep_alive);
    }

    #[test]
    fn content_length_and_chunked_bodies() {
        let r = decode(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            &ServerLimits::default(),
        )
        .unwrap();
        assert_eq!(r.body, b"hello");
        let r = decode(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
            &ServerLimits::default(),
        )
        .unwrap();
        assert_eq!(r.body, b"hello world");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = ServerLimits {
            max_body: 4,
            max_headers: 2,
            max_header_bytes: 64,
            ..ServerLimits::default()
        };
        assert!(matches!(
            decode(
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                &limits
            ),
            Err(DecodeError::BodyTooLarge(5))
        ));
        assert!(matches!(
            decode(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", &limits),
            Err(DecodeError::TooManyHeaders)
        ));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(100));
        assert!(matches!(
            decode(long.as_bytes(), &limits),
            Err(DecodeError::HeadTooLarge)
        ));
        assert!(matches!(
            decode(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n",
                &limits
            ),
            Err(DecodeError::BodyTooLarge(9))
        ));
    }

    #[test]
    fn huge_chunk_sizes_and_endless_trailers_are_refused() {
        let d = ServerLimits::default();
        // A size near u64::MAX must not wrap past max_body.
        assert!(matches!(
            decode(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n", &d),
            Err(DecodeError::BodyTooLarge(_))
        ));
        assert!(matches!(
            decode(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n", &d),
            Err(DecodeError::Malformed(_))
        ));
        let mut endless = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        for _ in 0..10_000 {
            endless.extend_from_slice(b"a: b\r\n");
        }
        assert!(matches!(
            decode(&endless, &d),
            Err(DecodeError::HeadTooLarge)
        ));
    }

    /// A gate that grants `left` bytes in all and records heads.
    struct Budget {
        left: std::cell::Cell<u64>,
        heads: std::cell::RefCell<Vec<String>>,
    }

    impl Gate for Budget {
        fn head(&self, method: &str, uri: &str, _: &[(String, Vec<u8>)]) {
            self.heads.borrow_mut().push(format!("{method} {uri}"));
        }
        fn reserve_body(&self, bytes: u64) -> bool {
            match self.left.get().checked_sub(bytes) {
                Some(left) => {
                    self.left.set(left);
                    true
                }
                None => false,
            }
        }
    }

    #[test]
    fn bodies_are_reserved_from_the_gate_before_they_are_read() {
        let d = ServerLimits::default();
        let read = |bytes: &[u8], budget: &Budget| {
            let mut io = smol::io::Cursor::new(bytes.to_vec());
            smol::block_on(Decoder::new().read(&mut io, &d, budget))
        };
        let budget = |left| Budget {
            left: std::cell::Cell::new(left),
            heads: Default::default(),
        };
        // A declared length is reserved whole, before any body byte.
        let b = budget(4);
        let r = read(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n", &b);
        assert!(matches!(r, Err(DecodeError::Overloaded)), "{r:?}");
        assert_eq!(*b.heads.borrow(), ["POST /a"]);
        let b = budget(5);
        assert!(read(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &b).is_ok());
        assert_eq!(b.left.get(), 0);
        // Chunks are reserved one by one.
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
        assert!(matches!(
            read(chunked, &budget(5)),
            Err(DecodeError::Overloaded)
        ));
        assert!(read(chunked, &budget(6)).is_ok());
        // No body, nothing reserved.
        let b = budget(0);
        assert!(read(b"GET / HTTP/1.1\r\n\r\n", &b).is_ok());
        assert_eq!(*b.heads.borrow(), ["GET /"]);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let d = ServerLimits::default();
        assert!(matches!(
            decode(b"NOT HTTP\r\n\r\n", &d),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                &d
            ),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", &d),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode(b"", &d), Err(DecodeError::Closed)));
        assert!(matches!(
            decode(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc", &d),
            Err(DecodeError::Malformed(_))
        ));
    }
}
