//! The client side of HTTP/1.1, for the gateway's upstreams: opening
//! connections (within `connect_timeout`), a bounded pool of idle
//! keep-alive connections, writing a request, reading the response head
//! ([`parse_response`], skipping interim responses) and its body as a
//! [`BodyStream`] pulled chunk by chunk.
//!
//! The upstream is not trusted any more than a client: the head is bounded
//! by `max_header_bytes` and `max_headers` and framed by the same rules as
//! a request's (`http::head`), a declared length is a claim (the body's
//! buffer grows with what arrives), chunk lines and trailers are read by
//! the server's own reader (`http::body`), and every wait has a deadline.
//! A connection goes back to the pool only when its response was read to
//! its exact end and the upstream allows reuse.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol::Timer;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use super::body::CLOSED_IN_BODY;
use super::decode::Decoder;
use super::encode::BodyStream;
use super::head::{BodyLength, ResponseHead, parse_response};
use super::syntax::{Scan, chunk_size, scan_head};
use crate::error::{DecodeError, UpstreamError};

/// What a client accepts of a response. Each field is the key of the same
/// name (`max_header_bytes`, `max_headers` are the server's).
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Largest response head, in bytes (also bounds chunked trailers).
    pub max_header_bytes: usize,
    /// Most header fields in a response head.
    pub max_headers: usize,
    /// How long the response head may take, from when the request was sent.
    pub response_timeout: Duration,
    /// Most time between two reads of the body.
    pub body_timeout: Duration,
    /// Largest body.
    pub max_body: u64,
}

/// One connection to an upstream, with the bytes read ahead of where its
/// messages were consumed.
pub struct ClientConn {
    stream: TcpStream,
    decoder: Decoder,
    /// Whether it came from the pool (a failure before any response byte
    /// may then be the upstream's close of an idle connection).
    pub reused: bool,
}

/// Opens a connection to `host:port` within `timeout`. A host that is not
/// an IP address is resolved by the system's resolver on a thread of its
/// own, at most [`MAX_LOOKUPS`] at once (`connect_name`), never on the
/// executor.
pub async fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<ClientConn, UpstreamError> {
    let connecting = async {
        let stream = match host.parse::<IpAddr>() {
            Ok(ip) => TcpStream::connect((ip, port)).await,
            Err(_) => connect_name(host, port).await,
        }
        .map_err(UpstreamError::Connect)?;
        stream.set_nodelay(true).map_err(UpstreamError::Connect)?;
        Ok(ClientConn {
            stream,
            decoder: Decoder::new(),
            reused: false,
        })
    };
    smol::future::or(connecting, async {
        Timer::after(timeout).await;
        Err(UpstreamError::ConnectTimeout(timeout))
    })
    .await
}

/// How many host name lookups may run at once in the whole process. A
/// lookup runs on a thread of its own and cannot be cancelled: when the
/// DNS server does not answer, glibc's resolver holds it for its full
/// retries (5 s × 2 per server by default), well past the request's
/// `connect_timeout`. Without a bound, an offline board in front of a named
/// upstream would gather a thread per new upstream connection.
pub const MAX_LOOKUPS: usize = 4;

/// The permits of [`MAX_LOOKUPS`]. A connection attempt waits for one
/// within its `connect_timeout` (504 `upstream-timeout` past it); the
/// lookup's thread holds it until the resolver returns.
static LOOKUPS: smol::lock::Semaphore = smol::lock::Semaphore::new(MAX_LOOKUPS);

/// Connects to host name `host`: resolved by the system's resolver on a
/// thread of its own (`threads::spawn_detached`, not smol's blocking
/// pool, whose threads never end; never on the executor, where a lookup
/// could stall every connection for seconds), at most [`MAX_LOOKUPS`] at
/// once, then each address tried in turn.
async fn connect_name(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let resolved = lookup(&LOOKUPS, host, port).await?;
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("`{host}` resolves to no address"),
    );
    for addr in resolved {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The answer of a lookup: addresses, or why there are none.
type Answer = Result<Vec<std::net::SocketAddr>, String>;

/// The lookup of one name under way. Its thread lands the answer here
/// whether or not the connection that started it is still waiting, so a
/// connection that gives up (`connect_timeout`) never makes the next one
/// start a second lookup of the same name.
#[derive(Default)]
struct Flight {
    /// Whether a connection has taken on starting the lookup.
    started: std::sync::atomic::AtomicBool,
    answer: Mutex<Option<Answer>>,
    landed: event_listener::Event,
}

impl Flight {
    fn answer(&self) -> Option<Answer> {
        self.answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Lands `answer` for every waiter, and forgets the flight (the next
    /// lookup of the name asks again: nothing is cached).
    fn land(self: &Arc<Self>, key: &(String, u16), answer: Answer) {
        *self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
        let mut flights = flights();
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, self)) {
            flights.remove(key);
        }
        drop(flights);
        self.landed.notify(usize::MAX);
    }
}

/// Lookups under way, by name and port. Keyed by the names of configured
/// upstreams only (bounded by the config); an entry lives while its lookup
/// runs.
static FLIGHTS: std::sync::LazyLock<Mutex<Flights>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

/// Flights by name (lower case) and port.
type Flights = HashMap<(String, u16), Arc<Flight>>;

fn flights() -> std::sync::MutexGuard<'static, Flights> {
    FLIGHTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lands the lookup's answer; dropped without one (the resolver panicked,
/// in a build that unwinds), lands an error, so that no flight waits
/// forever.
struct Landing(Option<(Arc<Flight>, (String, u16))>);

impl Landing {
    fn land(mut self, answer: Answer) {
        if let Some((flight, key)) = self.0.take() {
            flight.land(&key, answer);
        }
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if let Some((flight, key)) = self.0.take() {
            flight.land(&key, Err("the resolver thread failed".into()));
        }
    }
}

/// Gives the start back if the connection that took it on goes away
/// before the lookup's thread is running (waiting for a permit).
struct Starting<'a>(&'a Flight);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0
            .started
            .store(false, std::sync::atomic::Ordering::Release);
        self.0.landed.notify(usize::MAX);
    }
}

/// The addresses of `host`. One lookup per name at a time, its answer
/// shared by every connection that asked meanwhile: while a name's lookup
/// hangs (its DNS server does not answer), new connections to it wait for
/// that one (each within its `connect_timeout`) instead of taking more of
/// the [`MAX_LOOKUPS`], so other names (one in `/etc/hosts`, say) still
/// resolve, and a burst of new connections costs one lookup.
async fn lookup(
    permits: &'static smol::lock::Semaphore,
    host: &str,
    port: u16,
) -> std::io::Result<Vec<std::net::SocketAddr>> {
    use std::sync::atomic::Ordering;
    let key = (host.to_ascii_lowercase(), port);
    let flight = Arc::clone(flights().entry(key.clone()).or_default());
    loop {
        let listener = flight.landed.listen();
        if let Some(answer) = flight.answer() {
            return answer.map_err(std::io::Error::other);
        }
        if !flight.started.swap(true, Ordering::AcqRel) {
            let starting = Starting(&flight);
            let permit = permits.acquire().await;
            let (landing, name, key) = (Arc::clone(&flight), host.to_owned(), key.clone());
            let spawned = crate::threads::spawn_detached("wasmgate-resolve", move || {
                let landing = Landing(Some((landing, key)));
                let answer = resolve(&name, port);
                // The permit is back before anyone hears the answer.
                drop(permit);
                landing.land(answer);
            });
            match spawned {
                // The thread lands the answer: the start is no longer ours
                // to give back.
                Ok(()) => std::mem::forget(starting),
                Err(e) => {
                    drop(starting);
                    return Err(std::io::Error::other(format!(
                        "cannot start a thread to resolve `{host}`: {e}"
                    )));
                }
            }
            continue;
        }
        listener.await;
    }
}

/// `host`'s addresses from the system's resolver (blocking: on a thread of
/// its own).
fn resolve(host: &str, port: u16) -> Answer {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| e.to_string())
}

/// Idle keep-alive connections to one upstream: at most `max_idle`, each
/// closed after `idle_timeout` unused. Newest first out, so that the
/// connection least likely to have been closed by the upstream is reused.
pub struct Pool {
    idle: Mutex<Vec<(ClientConn, Instant)>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    /// An empty pool.
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// An idle connection that is still open, if there is one. Expired
    /// ones, and ones the upstream closed or sent bytes on unasked, are
    /// dropped.
    pub fn take(&self) -> Option<ClientConn> {
        // One clock reading for the whole list (the peeks below take
        // microseconds, against an idle timeout of seconds).
        let now = Instant::now();
        let fresh = |since: &Instant| now.saturating_duration_since(*since) < self.idle_timeout;
        loop {
            // Fresh: the list keeps only those.
            let (mut conn, _) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.retain(|(_, since)| fresh(since));
                idle.pop()?
            };
            if quiet(&conn.stream) {
                conn.reused = true;
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for reuse, unless the pool is full.
    fn put(&self, conn: ClientConn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Whether an idle connection is still open and quiet: a non-blocking
/// peek finds nothing to read. An end of stream, a reset or bytes the
/// upstream sent unasked all make it unusable. The peek asks the kernel,
/// not the reactor's last word: an end of stream the reactor has not
/// collected yet (its worker busy with a guest) is still seen.
fn quiet(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    let peek = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    matches!(
        rustix::net::recv(stream, &mut byte, peek),
        Err(rustix::io::Errno::AGAIN)
    )
}

/// Writes a request: `head` (request line, fields and blank line, as
/// built by the caller) and `body`, in one write.
pub async fn send(
    conn: &mut ClientConn,
    head: &[u8],
    body: &[u8],
    timeout: Duration,
) -> Result<(), UpstreamError> {
    smol::future::or(
        async {
            // Head and body leave together (one `writev`), neither copied.
            let mut sent = 0usize;
            let total = head.len().saturating_add(body.len());
            while sent < total {
                let (first, second) = match head.get(sent..) {
                    Some(rest) if !rest.is_empty() => (rest, body),
                    _ => (
                        body.get(sent.saturating_sub(head.len())..)
                            .unwrap_or_default(),
                        &[][..],
                    ),
                };
                let slices = [std::io::IoSlice::new(first), std::io::IoSlice::new(second)];
                match conn.stream.write_vectored(&slices).await? {
                    0 => return Err(std::io::ErrorKind::WriteZero.into()),
                    n => sent = sent.saturating_add(n),
                }
            }
            conn.stream.flush().await
        },
        async {
            Timer::after(timeout).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the upstream did not take the request",
            ))
        },
    )
    .await
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => UpstreamError::HeadTimeout(timeout),
        _ => UpstreamError::Io(e),
    })
}

/// Reads the final response head to a request with `method`: interim
/// responses (`100 Continue`, `103 Early Hints`…) are read and dropped; a
/// `101 Switching Protocols` is refused. `Closed` means the upstream
/// closed before sending a single byte (what a pooled connection the
/// upstream timed out looks like).
pub async fn read_head(
    conn: &mut ClientConn,
    method: &str,
    limits: &ClientLimits,
) -> Result<ResponseHead, UpstreamError> {
    let deadline = Instant::now() + limits.response_timeout;
    // The request has just left: the response is not there yet.
    conn.decoder.read_when_readable(&conn.stream);
    let mut interim = 0usize;
    loop {
        let end = head_bytes(conn, limits, deadline, interim == 0).await?;
        let d = &mut conn.decoder;
        let head = parse_response(&d.buf[d.start..d.start + end], limits.max_headers, method)
            .map_err(|e| match e {
                DecodeError::TooManyHeaders => UpstreamError::HeadTooLarge,
                DecodeError::UnsupportedVersion => {
                    UpstreamError::Malformed("the response names an HTTP version other than 1.x")
                }
                DecodeError::Malformed(why) => UpstreamError::Malformed(why),
                _ => UpstreamError::Malformed("malformed response head"),
            })?;
        d.start += end;
        match head.line.status {
            101 => return Err(UpstreamError::Upgrade),
            100..=199 => {
                // Bounded like the head: an upstream cannot keep the
                // request waiting with an endless stream of 1xx.
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(UpstreamError::Malformed("too many interim (1xx) responses"));
                }
            }
            _ => return Ok(head),
        }
    }
}

/// Most interim responses accepted before the final one: 8 (a `100` and a
/// few `103`s are what servers send).
const MAX_INTERIM: usize = 8;

/// Waits for a complete head in the decoder's buffer; returns its length
/// from `start`.
async fn head_bytes(
    conn: &mut ClientConn,
    limits: &ClientLimits,
    deadline: Instant,
    first: bool,
) -> Result<usize, UpstreamError> {
    let mut scanned = 0;
    loop {
        let d = &conn.decoder;
        let pending = d.pending();
        let window = pending.len().min(limits.max_header_bytes);
        match scan_head(&pending[..window], scanned) {
            Scan::End(end) => return Ok(end),
            Scan::BareLineEnd => {
                return Err(UpstreamError::Malformed(
                    "bare CR or LF in the response head: lines must end with CRLF",
                ));
            }
            Scan::More(upto) => scanned = upto,
        }
        if pending.len() > limits.max_header_bytes {
            return Err(UpstreamError::HeadTooLarge);
        }
        let was_empty = pending.is_empty();
        // `fill` compacts the buffer: offsets are relative to `start`,
        // which it moves to 0.
        match conn.decoder.fill(&mut conn.stream, deadline).await {
            Ok(0) if was_empty && first => return Err(UpstreamError::Closed),
            Ok(0) => {
                return Err(UpstreamError::Malformed(
                    "connection closed inside the response head",
                ));
            }
            Ok(_) => {}
            Err(None) => return Err(UpstreamError::HeadTimeout(limits.response_timeout)),
            Err(Some(e)) => return Err(UpstreamError::Io(e)),
        }
    }
}

/// Where a body being read stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `n` more bytes of a `Content-Length` body.
    Fixed(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// `n` more bytes of the current chunk.
    ChunkData(u64),
    /// Until the upstream closes.
    UntilClose,
    /// Read to its end.
    Done,
}

/// A response body read from its connection on demand. Read to its end, it
/// gives the connection back to `pool` when reusable; dropped before, the
/// connection is closed (a client that went away mid-stream does not leave
/// a half-read connection in the pool).
pub struct ResponseBody {
    conn: Option<ClientConn>,
    state: State,
    /// Body bytes read so far.
    read: u64,
    /// The length the head declared, passed on (also for a HEAD response).
    declared: Option<u64>,
    keep_alive: bool,
    limits: ClientLimits,
    pool: Arc<Pool>,
    /// The key bounding the body, for errors.
    key: &'static str,
}

impl ResponseBody {
    /// The body of `head`, read from `conn`. A declared length larger than
    /// `limits.max_body` is refused before any of it is read. A body-less
    /// response gives the connection back at once.
    pub fn new(
        conn: ClientConn,
        head: &ResponseHead,
        limits: ClientLimits,
        pool: Arc<Pool>,
    ) -> Result<Self, UpstreamError> {
        let declared = head
            .headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
        let state = match head.body {
            BodyLength::None | BodyLength::Fixed(0) => State::Done,
            BodyLength::Fixed(n) if n > limits.max_body => {
                return Err(UpstreamError::BodyTooLarge {
                    length: n,
                    limit: limits.max_body,
                    key: "max_upstream_body",
                });
            }
            BodyLength::Fixed(n) => State::Fixed(n),
            BodyLength::Chunked => State::ChunkSize,
            BodyLength::UntilClose => State::UntilClose,
        };
        let mut body = Self {
            conn: Some(conn),
            state,
            read: 0,
            declared: match head.body {
                BodyLength::Fixed(n) => Some(n),
                BodyLength::None => declared,
                _ => None,
            },
            keep_alive: head.keep_alive,
            limits,
            pool,
            key: "max_upstream_body",
        };
        body.finish_if_done();
        Ok(body)
    }

    /// Forgets the length the head declared: the body is then framed as
    /// one of unknown length (chunked, or up to the close).
    pub fn forget_length(&mut self) {
        self.declared = None;
    }

    /// Which key bounds the body, for errors (`max_response` when buffering).
    pub fn set_limit(&mut self, max_body: u64, key: &'static str) -> Result<(), UpstreamError> {
        if let Some(n) = self
            .declared
            .filter(|&n| n > max_body && self.state != State::Done)
        {
            return Err(UpstreamError::BodyTooLarge {
                length: n,
                limit: max_body,
                key,
            });
        }
        self.limits.max_body = max_body;
        self.key = key;
        Ok(())
    }

    /// Reads the whole body (within `limits.max_body`).
    pub async fn read_all(&mut self) -> Result<Vec<u8>, UpstreamError> {
        let mut out = Vec::new();
        while self.next(&mut out, READ_MAX).await? > 0 {}
        Ok(out)
    }

    /// Appends at most `max` more body bytes to `out`; 0 at the end.
    pub async fn next(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, UpstreamError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(0);
            };
            let deadline = Instant::now() + self.limits.body_timeout;
            let n = match self.state {
                State::Done => return Ok(0),
                State::Fixed(left) => {
                    let n = read_some(conn, out, cap(left, max), deadline, &self.limits).await?;
                    if n == 0 {
                        return Err(UpstreamError::Closed);
                    }
                    self.state = match left - len_u64(n) {
                        0 => State::Done,
                        left => State::Fixed(left),
                    };
                    n
                }
                State::UntilClose => {
                    let n = read_some(conn, out, max, deadline, &self.limits).await?;
                    if n == 0 {
                        self.state = State::Done;
                    }
                    n
                }
                State::ChunkSize => {
                    let line = read_line(conn, deadline, &self.limits).await?;
                    let size = chunk_size(&line).map_err(UpstreamError::Malformed)?;
                    if size == 0 {
                        read_trailers(conn, deadline, &self.limits).await?;
                        self.state = State::Done;
                    } else {
                        self.state = State::ChunkData(size);
                    }
                    0
                }
                State::ChunkData(left) => {
                    let n = read_some(conn, out, cap(left, max), deadline, &self.limits).await?;
                    if n == 0 {
                        return Err(UpstreamError::Closed);
                    }
                    self.state = match left - len_u64(n) {
                        0 => {
                            if !read_line(conn, deadline, &self.limits).await?.is_empty() {
                                return Err(UpstreamError::Malformed(
                                    "chunk data not followed by CRLF",
                                ));
                            }
                            State::ChunkSize
                        }
                        left => State::ChunkData(left),
                    };
                    n
                }
            };
            self.read = self.read.saturating_add(len_u64(n));
            if self.read > self.limits.max_body {
                self.conn = None;
                return Err(UpstreamError::BodyTooLarge {
                    length: self.read,
                    limit: self.limits.max_body,
                    key: self.key,
                });
            }
            self.finish_if_done();
            if n > 0 || self.state == State::Done {
                return Ok(n);
            }
        }
    }

    /// At the body's end, gives a reusable connection back to the pool.
    fn finish_if_done(&mut self) {
        if self.state != State::Done {
            return;
        }
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.decoder.pending().is_empty()
        {
            self.pool.put(ClientConn {
                reused: false,
                ..conn
            });
        }
    }
}

/// Largest read for [`ResponseBody::read_all`]: 64 KiB.
const READ_MAX: usize = 64 << 10;

/// `max`, or fewer when only `left` bytes are due.
fn cap(left: u64, max: usize) -> usize {
    usize::try_from(left).map_or(max, |left| left.min(max))
}

/// Appends up to `max` bytes to `out`: those the decoder read ahead, else
/// one read from the socket straight into `out`. 0 at the end of stream.
async fn read_some(
    conn: &mut ClientConn,
    out: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
    limits: &ClientLimits,
) -> Result<usize, UpstreamError> {
    let d = &mut conn.decoder;
    let pending = d.pending();
    if !pending.is_empty() {
        let n = pending.len().min(max);
        out.extend_from_slice(&pending[..n]);
        d.start += n;
        return Ok(n);
    }
    let old = out.len();
    out.resize(old.saturating_add(max), 0);
    let read = smol::future::or(
        async {
            conn.stream
                .read(&mut out[old..])
                .await
                .map_err(UpstreamError::Io)
        },
        async {
            Timer::at(deadline).await;
            Err(UpstreamError::BodyTimeout(limits.body_timeout))
        },
    )
    .await;
    out.truncate(old + *read.as_ref().unwrap_or(&0));
    read
}

/// One line of a chunked body, through the server's reader.
async fn read_line(
    conn: &mut ClientConn,
    deadline: Instant,
    limits: &ClientLimits,
) -> Result<Vec<u8>, UpstreamError> {
    conn.decoder
        .read_line(&mut conn.stream, deadline)
        .await
        .map_err(|e| body_error(e, limits))
}

/// The trailer fields after the last chunk, through the server's reader.
async fn read_trailers(
    conn: &mut ClientConn,
    deadline: Instant,
    limits: &ClientLimits,
) -> Result<(), UpstreamError> {
    conn.decoder
        .read_trailers(&mut conn.stream, deadline, limits.max_header_bytes)
        .await
        .map_err(|e| body_error(e, limits))
}

/// A body reader's error, as the upstream's.
fn body_error(e: DecodeError, limits: &ClientLimits) -> UpstreamError {
    match e {
        DecodeError::Malformed(why) if why == CLOSED_IN_BODY => UpstreamError::Closed,
        DecodeError::Malformed(why) => UpstreamError::Malformed(why),
        DecodeError::BodyTimeout => UpstreamError::BodyTimeout(limits.body_timeout),
        DecodeError::Io(e) => UpstreamError::Io(e),
        DecodeError::HeadTooLarge => UpstreamError::HeadTooLarge,
        _ => UpstreamError::Malformed("malformed response body"),
    }
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl BodyStream for ResponseBody {
    fn length(&self) -> Option<u64> {
        self.declared
    }

    fn read<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
        max: usize,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<usize>> + 'a>> {
        Box::pin(async move {
            self.next(out, max).await.map_err(|e| {
                log::warn!("upstream response body aborted: {e}");
                std::io::Error::other(e.to_string())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_waits_for_a_permit_and_the_thread_gives_it_back() {
        static ONE: smol::lock::Semaphore = smol::lock::Semaphore::new(1);
        smol::block_on(async {
            // Every permit taken: the lookup waits, and starts no thread.
            let held = ONE.acquire().await;
            let waited =
                smol::future::or(async { Some(lookup(&ONE, "localhost", 80).await) }, async {
                    Timer::after(Duration::from_millis(200)).await;
                    None
                })
                .await;
            assert!(waited.is_none(), "{waited:?}");
            drop(held);
            // Given back: it runs, twice in a row with one permit (the
            // first lookup's thread returned it).
            for _ in 0..2 {
                let addrs = lookup(&ONE, "localhost", 80).await.expect("localhost");
                assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
            }
            assert!(ONE.try_acquire().is_some());
        });
    }

    #[test]
    fn a_name_under_lookup_is_looked_up_once_for_all_who_ask() {
        static TWO: smol::lock::Semaphore = smol::lock::Semaphore::new(2);
        smol::block_on(async {
            // A lookup of `hung.test` under way, never landing: the next
            // ones for that name wait for it, taking no permit...
            let hung = Arc::new(Flight::default());
            hung.started
                .store(true, std::sync::atomic::Ordering::Release);
            let key = ("hung.test".to_owned(), 80);
            flights().insert(key.clone(), Arc::clone(&hung));
            let waiting =
                smol::future::or(async { Some(lookup(&TWO, "HUNG.test", 80).await) }, async {
                    Timer::after(Duration::from_millis(200)).await;
                    None
                })
                .await;
            assert!(waiting.is_none(), "{waiting:?}");
            assert_eq!(TWO.try_acquire().map(drop), Some(()));
            // ...and get its answer when it lands.
            let asking = smol::future::or(
                async {
                    lookup(&TWO, "hung.test", 80)
                        .await
                        .map_err(|e| e.to_string())
                },
                async {
                    Timer::after(Duration::from_millis(20)).await;
                    hung.land(&key, Err("landed".into()));
                    std::future::pending().await
                },
            )
            .await;
            assert_eq!(asking, Err("landed".to_owned()));
            assert!(!flights().contains_key(&key));
            // Another name resolves meanwhile, and its flight is gone once
            // it has landed.
            let addrs = lookup(&TWO, "localhost", 81).await.expect("localhost");
            assert!(addrs.iter().all(|a| a.port() == 81));
            assert!(!flights().contains_key(&("localhost".to_owned(), 81)));
        });
    }

    #[test]
    fn a_connection_that_gives_up_waiting_for_a_permit_hands_the_start_on() {
        static ONE: smol::lock::Semaphore = smol::lock::Semaphore::new(1);
        smol::block_on(async {
            let held = ONE.acquire().await;
            // Takes on the start, waits for the permit, gives up.
            let gave_up =
                smol::future::or(async { Some(lookup(&ONE, "localhost", 82).await) }, async {
                    Timer::after(Duration::from_millis(100)).await;
                    None
                })
                .await;
            assert!(gave_up.is_none());
            drop(held);
            // The next connection starts it.
            let addrs = lookup(&ONE, "localhost", 82).await.expect("localhost");
            assert!(!addrs.is_empty());
        });
    }
}
