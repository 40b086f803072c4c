//! Reading HTTP/1.x messages from a connection, within framing [`Limits`]:
//! head size and field count, body size, and the idle, head and body
//! timeouts. Every failure is a [`DecodeError`] the server can answer.
//! The reader only reads: the interim `100 Continue` a request may wait
//! for is the server's to write ([`RequestHead::expect_continue`]).
//!
//! The framing is strict (RFC 9112), because wasmgate sits behind and in
//! front of other HTTP parsers: a message that two parsers could frame or
//! route differently is refused, never guessed at. README "HTTP
//! conformance" lists what is refused; `tests/conformance.rs` has one row
//! per rule and `tests/differential.rs` compares the framing with hyper's.
//!
//! - Lines end in CRLF, in the head, in chunk lines and in trailers: a bare
//!   LF or CR is refused, so the head ends where every parser ends it.
//! - The body length is `Transfer-Encoding: chunked` (exactly that, once)
//!   or one `Content-Length` of digits; both together are refused.
//! - The target is origin-form, or absolute-form (`http://host/path`,
//!   passed on as origin-form); no dot-segments, no fragment, ASCII only:
//!   the path that is routed is the path the guest sees.
//! - HTTP/1.1 needs exactly one valid `Host`.
//! - Buffers grow with the bytes that arrive, never with a declared length
//!   or a configured limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncReadExt};
use smol::{Async, Timer};

use super::head::{BodyLength, RequestHead, parse_request};
use super::syntax::{Scan, scan_head};
pub use crate::error::DecodeError;
use crate::limits::ServerLimits;

/// What a reader accepts of a message: the framing part of the server's
/// limits (and, later, of a client's). Each field is the server key of the
/// same name; its default and reason are documented there.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest head, in bytes (also bounds a chunked body's trailers).
    pub max_header_bytes: usize,
    /// Most header fields in a head.
    pub max_headers: usize,
    /// Largest body, in bytes.
    pub max_body: u64,
    /// How long a connection may wait, between messages, for the next one.
    pub idle_timeout: Duration,
    /// How long a head may take to arrive.
    pub header_timeout: Duration,
    /// How long a body may take to arrive.
    pub body_timeout: Duration,
    /// Whether a request path may hold an encoded `/` (`%2F`).
    pub allow_encoded_slash: bool,
}

impl From<&ServerLimits> for Limits {
    fn from(server: &ServerLimits) -> Self {
        Self {
            max_header_bytes: server.max_header_bytes,
            max_headers: server.max_headers,
            max_body: server.max_body,
            idle_timeout: server.idle_timeout,
            header_timeout: server.header_timeout,
            body_timeout: server.body_timeout,
            allow_encoded_slash: server.allow_encoded_slash,
        }
    }
}

impl Default for Limits {
    /// The server's defaults.
    fn default() -> Self {
        Self::from(&ServerLimits::default())
    }
}

/// A request as read from the wire, body included.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target in origin-form, e.g. `/hello?name=pi`: an
    /// absolute-form target's path and query. Never contains a
    /// dot-segment or a fragment, so it routes as it reads.
    pub uri: String,
    /// Header fields in order; names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// Whether the connection may serve another request after this one.
    pub keep_alive: bool,
    /// Whether the request is HTTP/1.1 (else 1.0): whether a response of
    /// unknown length may be sent chunked.
    pub http11: bool,
    /// The client's address, when the request came over a socket (the
    /// server sets it; `X-Forwarded-For`, http-wasm's `get_source_addr`).
    pub peer: Option<std::net::SocketAddr>,
}

impl Request {
    /// A request from its parsed head and its body.
    pub fn new(head: RequestHead, body: Vec<u8>) -> Self {
        Self {
            method: head.line.method,
            uri: head.line.uri,
            headers: head.headers,
            body,
            keep_alive: head.keep_alive,
            http11: head.http11,
            peer: None,
        }
    }

    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
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
    /// Whether `bytes` more of body would fit the budget now, reserving
    /// nothing: asked before `100 Continue` for a declared length, so that
    /// a client is not invited to send a body that would be refused.
    fn body_fits(&self, bytes: u64) -> bool;
}

/// No gate: every body fits.
impl Gate for () {
    fn head(&self, _: &str, _: &str, _: &[(String, Vec<u8>)]) {}
    fn reserve_body(&self, _: u64) -> bool {
        true
    }
    fn body_fits(&self, _: u64) -> bool {
        true
    }
}

/// Reads requests from one connection, keeping bytes that arrived early.
pub struct Decoder {
    pub(super) buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pub(super) start: usize,
    /// When the connection was opened; its first head is due by
    /// `opened + header_timeout`.
    opened: Instant,
    /// Whether no head has been read on this connection yet.
    first: bool,
    /// When set, the next [`Decoder::fill`] waits until this socket is
    /// readable before it reads (see [`Decoder::read_when_readable`]).
    ready_first: Option<Arc<Async<std::net::TcpStream>>>,
}

/// Read chunk size: a typical request fits in one read.
const READ_CHUNK: usize = 4096;

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            opened: Instant::now(),
            first: true,
            ready_first: None,
        }
    }

    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Makes the next read wait until `stream` is readable before it reads,
    /// when nothing is buffered: for a read that would find nothing yet (a
    /// keep-alive client's next request right after its response, an
    /// upstream's response right after its request). A read that finds
    /// nothing costs a system call before the wait; this waits first. An
    /// early byte is not missed: the server's sockets are edge-triggered
    /// (vendor/async-io/PATCH.md), and such a wait waits only while the
    /// last read found the socket drained and no event has come since
    /// (one registered oneshot is re-armed, which reports a socket that is
    /// readable already).
    pub fn read_when_readable(&mut self, stream: &smol::net::TcpStream) {
        if self.pending().is_empty() {
            self.ready_first = Some(stream.clone().into());
        }
    }

    /// Reads more bytes before `deadline`; `Ok(0)` at end of stream.
    pub(super) async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        deadline: Instant,
    ) -> Result<usize, Option<std::io::Error>> {
        let ready_first = self.ready_first.take();
        // Drop what was consumed before growing: a client that keeps a read
        // ending mid-line (chunk lines, trailers) must not grow the buffer.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let read = smol::future::or(
            async {
                if let Some(socket) = &ready_first {
                    socket.readable().await.map_err(Some)?;
                }
                io.read(&mut self.buf[old..]).await.map_err(Some)
            },
            async {
                Timer::at(deadline).await;
                Err(None)
            },
        )
        .await;
        self.buf.truncate(old + *read.as_ref().unwrap_or(&0));
        read
    }

    /// Reads the next request head, tells `gate`, and checks the body's
    /// declared length against `max_body` and the gate's memory: after
    /// this, the body may be asked for (`100 Continue`).
    pub async fn read_head<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        limits: &Limits,
        gate: &dyn Gate,
    ) -> Result<RequestHead, DecodeError> {
        // Compact: drop what earlier requests consumed.
        self.buf.drain(..self.start);
        self.start = 0;

        let head_end = self.read_head_bytes(io, limits).await?;
        let head = parse_request(
            &self.buf[..head_end],
            limits.max_headers,
            limits.allow_encoded_slash,
        )?;
        self.start = head_end;
        gate.head(&head.line.method, &head.line.uri, &head.headers);
        if let BodyLength::Fixed(n) = head.body
            && n > limits.max_body
        {
            return Err(DecodeError::BodyTooLarge(n));
        }
        // The body's memory is reserved as its bytes arrive
        // (`read_body`), not from the declared length: a length is only a
        // claim, and heads alone (a few bytes each) reserving their whole
        // claims for `body_timeout` would deny the budget to everyone else.
        Ok(head)
    }

    /// Waits for a complete head; returns the offset just past it (the
    /// blank line's CRLF). Every LF must follow a CR and every CR precede an
    /// LF: with bare line ends allowed, parsers disagree on where the head
    /// ends, and the rest of the body becomes someone's next request.
    async fn read_head_bytes<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        limits: &Limits,
    ) -> Result<usize, DecodeError> {
        // The first head is due `header_timeout` after the connection was
        // opened, whether or not it has started; later ones get
        // `idle_timeout` to start and `header_timeout` from their first byte.
        let mut deadline = match self.first {
            true => self.opened + limits.header_timeout,
            false => Instant::now() + limits.idle_timeout,
        };
        let mut started = false;
        // Whether `deadline` must become `header_timeout` from now before
        // the next read: a head that is whole in its first read never
        // needs it.
        let mut rearm = false;
        // Bytes of `buf` checked for line ends so far.
        let mut scanned = 0;
        loop {
            // Tolerate blank lines before a request (RFC 9112 §2.2).
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
                scanned = 0;
            }
            if !started && !self.buf.is_empty() {
                started = true;
                rearm = !self.first;
            }
            // Only the first `max_header_bytes` count: what lies beyond
            // must not decide the outcome, or it would depend on how much
            // had arrived.
            let window = self.buf.len().min(limits.max_header_bytes);
            match scan_head(&self.buf[..window], scanned) {
                Scan::End(end) => {
                    self.first = false;
                    return Ok(end);
                }
                Scan::BareLineEnd => {
                    return Err(DecodeError::Malformed(
                        "bare CR or LF in the request head: lines must end with CRLF",
                    ));
                }
                Scan::More(upto) => scanned = upto,
            }
            if self.buf.len() > limits.max_header_bytes {
                return Err(DecodeError::HeadTooLarge);
            }
            if rearm {
                rearm = false;
                deadline = Instant::now() + limits.header_timeout;
            }
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
}

/// A connection for unit tests of readers.
#[cfg(test)]
pub(crate) mod wire {
    use smol::io::{AsyncRead, AsyncWrite};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A connection whose client sent `input` (delivered `step` bytes per
    /// read) and then closed; what the server writes is kept apart.
    pub(crate) struct Wire {
        pub(crate) input: Vec<u8>,
        pub(crate) at: usize,
        pub(crate) step: usize,
        pub(crate) written: Vec<u8>,
    }

    impl AsyncRead for Wire {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = (self.input.len() - self.at).min(out.len()).min(self.step);
            out[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Wire {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(bytes);
            Poll::Ready(Ok(bytes.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wire::Wire;
    use super::*;

    /// Every request in `bytes` until an error (or a request that closes).
    fn decode_all(bytes: &[u8], step: usize, limits: &Limits) -> (Vec<Request>, DecodeError) {
        let mut io = Wire {
            input: bytes.to_vec(),
            at: 0,
            step,
            written: Vec::new(),
        };
        let mut decoder = Decoder::new();
        let mut requests = Vec::new();
        loop {
            match smol::block_on(decoder.read(&mut io, limits, &())) {
                Ok(r) => requests.push(r),
                Err(e) => return (requests, e),
            }
        }
    }

    fn decode(bytes: &[u8], limits: &Limits) -> Result<Request, DecodeError> {
        let (mut requests, e) = decode_all(bytes, usize::MAX, limits);
        if requests.is_empty() {
            Err(e)
        } else {
            Ok(requests.remove(0))
        }
    }

    fn malformed(bytes: &[u8]) -> bool {
        matches!(
            decode(bytes, &Limits::default()),
            Err(DecodeError::Malformed(_))
        )
    }

    #[test]
    fn an_encoded_slash_is_read_only_where_the_server_allows_it() {
        let get = b"GET /p/group%2Fproject HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(malformed(get));
        let server = ServerLimits {
            allow_encoded_slash: true,
            ..ServerLimits::default()
        };
        let r = decode(get, &Limits::from(&server)).unwrap();
        assert_eq!(r.uri, "/p/group%2Fproject");
    }

    #[test]
    fn simple_get_with_keep_alive() {
        let r = decode(
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n",
            &Limits::default(),
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
        let r = decode(b"GET / HTTP/1.0\r\n\r\n", &Limits::default()).unwrap();
        assert!(!r.keep_alive);
    }

    #[test]
    fn content_length_and_chunked_bodies() {
        let r = decode(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.body, b"hello");
        let r = decode(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.body, b"hello world");
    }

    #[test]
    fn requests_split_into_single_bytes_decode_alike() {
        let stream = b"\r\nPOST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;e=\"q\"\r\nhello\r\n0\r\nT: 1\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let d = Limits::default();
        let (whole, end) = decode_all(stream, usize::MAX, &d);
        assert!(matches!(end, DecodeError::Closed), "{end:?}");
        let (bytewise, end) = decode_all(stream, 1, &d);
        assert!(matches!(end, DecodeError::Closed), "{end:?}");
        let summary = |rs: &[Request]| -> Vec<(String, Vec<u8>)> {
            rs.iter().map(|r| (r.uri.clone(), r.body.clone())).collect()
        };
        assert_eq!(summary(&whole), summary(&bytewise));
        assert_eq!(
            summary(&whole),
            [
                ("/a".to_owned(), b"hello".to_vec()),
                ("/b".to_owned(), b"hi".to_vec()),
                ("/c".to_owned(), Vec::new())
            ]
        );
    }

    /// Whether a stream is refused, and why, must not depend on how its
    /// bytes arrive: a line end or a limit past the point where a
    /// byte-by-byte reader stops was seen by a reader that got it all.
    #[test]
    fn refusals_do_not_depend_on_how_bytes_arrive() {
        let limits = Limits {
            max_header_bytes: 64,
            ..Limits::default()
        };
        let long_ext = format!("1;x={}\r\na\r\n0\r\n\r\n", "y".repeat(2000));
        let long_trailer = format!("1\r\na\r\n0\r\nt: {}\r\n\r\n", "y".repeat(1100));
        let chunked = |body: &str| {
            format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
        };
        for stream in [
            format!("GET /{} HTTP/1.1\nHost: x\r\n\r\n", "a".repeat(80)),
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(41)),
            chunked(&long_ext),
            chunked(&long_trailer),
        ] {
            let refusal = |step| {
                let (requests, end) = decode_all(stream.as_bytes(), step, &limits);
                (requests.len(), format!("{end:?}"))
            };
            assert_eq!(refusal(usize::MAX), refusal(1), "{stream:?}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_body: 4,
            max_headers: 2,
            max_header_bytes: 64,
            ..Limits::default()
        };
        assert!(matches!(
            decode(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
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
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n",
                &limits
            ),
            Err(DecodeError::BodyTooLarge(9))
        ));
    }

    #[test]
    fn huge_chunk_sizes_and_endless_trailers_are_refused() {
        let d = Limits::default();
        // A size near u64::MAX must not wrap past max_body.
        assert!(matches!(
            decode(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n", &d),
            Err(DecodeError::BodyTooLarge(_))
        ));
        assert!(matches!(
            decode(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n", &d),
            Err(DecodeError::Malformed(_))
        ));
        let mut endless =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
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
        fn body_fits(&self, bytes: u64) -> bool {
            bytes <= self.left.get()
        }
    }

    #[test]
    fn bodies_are_reserved_from_the_gate_before_they_are_read() {
        let d = Limits::default();
        let read = |bytes: &[u8], budget: &Budget| {
            let mut io = smol::io::Cursor::new(bytes.to_vec());
            smol::block_on(Decoder::new().read(&mut io, &d, budget))
        };
        let budget = |left| Budget {
            left: std::cell::Cell::new(left),
            heads: Default::default(),
        };
        // A declared length reserves nothing before its bytes arrive: a
        // head alone holds no budget, and the body is refused when the
        // bytes it brings pass the budget.
        let b = budget(4);
        let r = read(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            &b,
        );
        assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
        assert_eq!(
            (b.left.get(), b.heads.borrow().clone()),
            (4, vec!["POST /a".to_owned()])
        );
        let r = read(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            &b,
        );
        assert!(matches!(r, Err(DecodeError::Overloaded)), "{r:?}");
        let b = budget(5);
        assert!(
            read(
                b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                &b
            )
            .is_ok()
        );
        assert_eq!(b.left.get(), 0);
        // Chunks are reserved as their bytes arrive: a chunk size alone
        // (a claim) holds nothing.
        let b = budget(2);
        let r = read(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffff\r\nab",
            &b,
        );
        assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
        assert_eq!(b.left.get(), 0);
        let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
        assert!(matches!(
            read(chunked, &budget(5)),
            Err(DecodeError::Overloaded)
        ));
        assert!(read(chunked, &budget(6)).is_ok());
        // No body, nothing reserved.
        let b = budget(0);
        assert!(read(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &b).is_ok());
        assert_eq!(*b.heads.borrow(), ["GET /"]);
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert!(malformed(b"NOT HTTP\r\n\r\n"));
        assert!(malformed(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(malformed(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n"
        ));
        assert!(matches!(
            decode(b"", &Limits::default()),
            Err(DecodeError::Closed)
        ));
        assert!(malformed(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc"
        ));
    }

    /// With `max_body` of 64 GiB, `Content-Length: 60000000000` reserved
    /// 60 GB before a byte of body arrived, and the process aborted.
    #[test]
    fn a_declared_length_is_not_allocated() {
        let limits = Limits {
            max_body: 64 << 30,
            ..Limits::default()
        };
        for request in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000000\r\n\r\nabc"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\ndf8475800\r\nabc",
        ] {
            // The three bytes are read and the stream ends; on 32-bit the
            // length does not fit memory at all.
            let r = decode(request, &limits);
            let ended = matches!(&r, Err(DecodeError::Malformed(m)) if m.contains("closed"));
            let too_large = cfg!(target_pointer_width = "32")
                && matches!(r, Err(DecodeError::BodyTooLarge(60_000_000_000)));
            assert!(ended || too_large, "{r:?}");
        }
    }

    /// A length of 2^32 + 1 was cast with `as usize`: on 32-bit boards it
    /// became 1, and the bytes after the first became the next request.
    #[test]
    fn a_length_beyond_usize_is_not_truncated() {
        let limits = Limits {
            max_body: u64::MAX,
            ..Limits::default()
        };
        for framing in [
            &b"Content-Length: 4294967297\r\n\r\n"[..],
            b"Transfer-Encoding: chunked\r\n\r\n100000001\r\n",
        ] {
            let mut bytes = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
            bytes.extend_from_slice(framing);
            bytes.extend_from_slice(b"aGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
            let (requests, _) = decode_all(&bytes, usize::MAX, &limits);
            assert!(requests.is_empty(), "{requests:?}");
        }
    }

    /// `max_headers` came from the config and was allocated per request:
    /// a huge value aborted on the first request. The buffer now follows
    /// the head's line count.
    #[test]
    fn a_huge_max_headers_is_not_allocated() {
        let limits = Limits {
            max_headers: usize::MAX,
            ..Limits::default()
        };
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..100 {
            head.extend_from_slice(format!("x-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let r = decode(&head, &limits).unwrap();
        assert_eq!(r.headers.len(), 101);
        assert!(decode(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &limits).is_ok());
    }

    #[test]
    fn connection_and_transfer_encoding_rules() {
        let d = Limits::default();
        let r = decode(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            &d,
        )
        .unwrap();
        assert!(!r.keep_alive);
        let r = decode(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &d).unwrap();
        assert!(r.keep_alive);
        let r = decode(
            b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
            &d,
        )
        .unwrap();
        assert_eq!(r.body, b"a");
        assert!(!r.keep_alive);
        assert!(malformed(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(malformed(b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"));
        assert!(malformed(b"GET http://y/ HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(malformed(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
        assert!(malformed(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na"
        ));
    }

    #[test]
    fn versions_other_than_1_0_and_1_1_are_505() {
        assert!(matches!(
            decode(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", &Limits::default()),
            Err(DecodeError::UnsupportedVersion)
        ));
    }
}
