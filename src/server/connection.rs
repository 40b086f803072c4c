//! One connection: its requests one after the other, then a clean close.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::net::TcpStream;

use super::{DecodeError, Decoder, Gate, Handler, Request, Response, Server, connections, encode};
use crate::http::Limits;
use crate::http::{BodyStream, Framing, Streamed, bodiless, encode_head};

/// How often a connection whose client has half-closed it (shut down its
/// writing side) is checked for a reset while its request runs. Defaults
/// to 100 ms: an end of stream stays readable, so it cannot be waited for;
/// a reset found within 100 ms frees the request's slot soon enough, at
/// ten `peek` calls a second.
const HALF_CLOSED_CHECK: Duration = Duration::from_millis(100);

/// Serves requests on one connection until it closes, fails or is evicted
/// from the connection table.
pub(super) async fn connection<H: Handler>(
    server: &Server<H>,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let accepted = Instant::now();
    // Head and body go out in one write, but without NODELAY a pipelined
    // client could still wait on Nagle + delayed ACK.
    stream.set_nodelay(true)?;
    let entry = {
        let handler = server.handler();
        let limits = handler.limits();
        match server.connections.open(peer.ip(), limits) {
            Ok(entry) => entry,
            Err(refused) => {
                let r = handler.refused(&refused, accepted);
                write(&mut stream, &r, false, false, limits.write_timeout).await?;
                linger(server, stream).await;
                return Ok(());
            }
        }
    };
    let mut decoder = Decoder::new();
    loop {
        // Error responses count from when reading began, others (as
        // before) from when the request was in.
        let reading = entry.waiting();
        // After `waiting`: a drain that starts now either is seen here
        // (then the connection closes as an evicted one does) or sees this
        // connection waiting, and evicts it.
        let draining = server.draining();
        // Each request is served by the handler of the moment: a reload
        // applies from the next request on, while this one finishes on
        // the handler it started with.
        let handler = server.handler();
        let limits = handler.limits();
        let framing = Limits::from(limits);
        let gate = handler.gate();
        let busy = Busy {
            entry: &entry,
            gate: &gate,
        };
        let read = smol::future::or(
            async { Some(read_request(&mut decoder, &mut stream, &framing, &busy).await) },
            async {
                entry.evicted().await;
                None
            },
        );
        let outcome = match draining {
            true => {
                drop(read);
                None
            }
            false => read.await,
        };
        let req = match outcome {
            // Evicted while its head came in (another executor's new
            // connection took its place): it is out of the table, so it
            // closes, as it would have a moment earlier.
            Some(Ok(_)) if entry.is_evicted() => return Ok(()),
            Some(Ok(req)) => Request {
                peer: Some(peer),
                ..req
            },
            Some(Err(DecodeError::Closed)) => return Ok(()),
            Some(Err(DecodeError::Io(e))) => return Err(e),
            Some(Err(e)) => {
                let r = handler.unreadable(e, &gate, reading);
                // The body's reservation and the table slot are given
                // back before the response is written and the rest of the
                // request is discarded.
                drop(gate);
                drop(entry);
                write(&mut stream, &r, false, false, limits.write_timeout).await?;
                linger(server, stream).await;
                return Ok(());
            }
            None => {
                log::debug!("connection from {peer} closed (draining, or to make room)");
                close_cleanly(&mut stream).await;
                return Ok(());
            }
        };
        // A client that resets the connection stops its request: the guest
        // is dropped at its next fuel slice instead of burning CPU and an
        // in-flight slot. One that only half-closes still gets its answer.
        let answered =
            smol::future::or(async { Some(handler.respond(&req, &gate).await) }, async {
                peer_reset(&stream).await;
                None
            });
        let Some(mut response) = answered.await else {
            handler.cancelled(&req, &gate);
            return Ok(());
        };
        // A drain closes the connection after this response, and says so.
        let mut keep_alive = req.keep_alive && !server.draining();
        let head_only = req.method == "HEAD";
        let http11 = req.http11;
        // The body leaves the memory budget with the request; the encoded
        // response enters it until it is written.
        drop(req);
        drop(gate);
        // The request is read whole: what the decoder holds now is what
        // the client sent after it. With nothing, the client sends its next
        // request once it has read this response, so the next read waits
        // for it first.
        decoder.read_when_readable(&stream);
        if let Some(Streamed(body)) = response.stream.take() {
            let head = Head {
                keep_alive,
                head_only,
                http11,
            };
            keep_alive = write_streamed(&*handler, &mut stream, response, body, head).await?;
            if !keep_alive {
                drop(entry);
                linger(server, stream).await;
                return Ok(());
            }
            continue;
        }
        let mut out = Vec::new();
        encode(&response, keep_alive, head_only, &mut out);
        drop(response);
        let held = handler.hold(u64::try_from(out.len()).unwrap_or(u64::MAX));
        write_bytes(&mut stream, &out, limits.write_timeout).await?;
        drop(held);
        if !keep_alive {
            // Requests pipelined after a `connection: close` one are
            // discarded, not left to reset the connection.
            drop(entry);
            linger(server, stream).await;
            return Ok(());
        }
    }
}

/// What the request decided about its response's head.
struct Head {
    keep_alive: bool,
    head_only: bool,
    http11: bool,
}

/// Largest chunk of a streamed body read and written at once: 32 KiB. A
/// streamed response holds one such buffer (counted against the memory
/// budget through `Handler::hold`) whatever its length; bigger buffers
/// gain little once a write fills the socket's send buffer.
const STREAM_CHUNK: usize = 32 << 10;

/// Writes `response`'s head, then its streamed `body` chunk by chunk, each
/// write within `write_timeout`; the next chunk is read only once the last
/// one is written (backpressure). Returns whether the connection may serve
/// another request. An error from the body, or a body that ends before or
/// runs past its declared length, fails the connection: it is closed
/// without the terminating chunk, so the client sees an incomplete
/// response, never a cut one posing as whole.
async fn write_streamed<H: Handler>(
    handler: &H,
    stream: &mut TcpStream,
    response: Response,
    mut body: Box<dyn BodyStream>,
    request: Head,
) -> std::io::Result<bool> {
    let timeout = handler.limits().write_timeout;
    let framing = Framing::of(body.length(), request.http11);
    let keep_alive = request.keep_alive && framing != Framing::Close;
    let mut out = Vec::new();
    encode_head(&response, framing, keep_alive, &mut out);
    if request.head_only || bodiless(response.status) {
        write_bytes(stream, &out, timeout).await?;
        return Ok(keep_alive);
    }
    drop(response);
    let buffers = STREAM_CHUNK.saturating_mul(2).saturating_add(out.len());
    let _held = handler.hold(u64::try_from(buffers).unwrap_or(u64::MAX));
    // The head waits for the first chunk, and the last chunk of a body of
    // known length carries nothing after it: a small response leaves in
    // one write, as an encoded one does.
    let mut chunk = Vec::new();
    let mut sent = 0u64;
    loop {
        chunk.clear();
        let n = body.read(&mut chunk, STREAM_CHUNK).await?;
        sent = sent.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        let done = match framing {
            Framing::Length(length) if sent > length => {
                return Err(cut("the body ran past its declared length"));
            }
            Framing::Length(length) if n == 0 && sent < length => {
                return Err(cut("the body ended before its declared length"));
            }
            Framing::Length(length) => sent == length,
            _ => n == 0,
        };
        if framing == Framing::Chunked && n > 0 {
            out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            out.extend_from_slice(&chunk);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&chunk);
        }
        if done && framing == Framing::Chunked {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        write_bytes(stream, &out, timeout).await?;
        out.clear();
        if done {
            return Ok(keep_alive);
        }
    }
}

/// A streamed body that does not match its framing.
fn cut(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned())
}

/// The handler's gate, seen through the connection: a complete head makes
/// the connection busy (no longer evictable as idle).
struct Busy<'a, G> {
    entry: &'a connections::Entry<'a>,
    gate: &'a G,
}

impl<G: Gate> Gate for Busy<'_, G> {
    fn head(&self, method: &str, uri: &str, headers: &[(String, Vec<u8>)]) {
        self.entry.busy();
        self.gate.head(method, uri, headers);
    }

    fn reserve_body(&self, bytes: u64) -> bool {
        self.gate.reserve_body(bytes)
    }

    fn body_fits(&self, bytes: u64) -> bool {
        self.gate.body_fits(bytes)
    }
}

/// Reads the next request from `io`, answering `Expect: 100-continue`
/// once the head has passed its checks (RFC 9110 §10.1.1): the client then
/// sends a body the server has already agreed to take. Re-exported in
/// [`crate::internals`] for the load benchmark's native baseline, which
/// must read exactly as the server does, and for the request fuzz target.
pub async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    decoder: &mut Decoder,
    io: &mut S,
    limits: &Limits,
    gate: &dyn Gate,
) -> Result<Request, DecodeError> {
    let head = decoder.read_head(io, limits, gate).await?;
    if head.expect_continue && head.body.has_body() {
        // A declared length that would not fit the budget now is refused
        // before the client is invited to send it (nothing is reserved:
        // the body is, as it arrives).
        if let crate::http::BodyLength::Fixed(n) = head.body
            && !gate.body_fits(n)
        {
            return Err(DecodeError::Overloaded);
        }
        // Within the body's time: a client that does not read (its window
        // full of pipelined responses) would otherwise hold the connection
        // and the body's memory reservation forever. Timed out, perhaps
        // half written: the connection is closed without a response.
        smol::future::or(
            async {
                io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .map_err(DecodeError::Io)
            },
            async {
                smol::Timer::after(limits.body_timeout).await;
                Err(DecodeError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client did not read `100 Continue` within body_timeout",
                )))
            },
        )
        .await?;
    }
    let body = decoder.read_body(io, head.body, limits, gate).await?;
    Ok(Request::new(head, body))
}

/// How long a connection closed after its last response (an error that
/// refused the request before it was read, or `connection: close`) keeps
/// reading and discarding what the client still sends: 2 s. Closing a
/// socket with unread input makes the kernel reset the connection, and a
/// reset can destroy the response before the client reads it (RFC 9112
/// §9.6, lingering close). 2 s covers a client that sends its whole body
/// before it reads and then closes; the time is short because lingering
/// connections, though out of the connection table, hold sockets
/// (bounded by [`connections::Table::linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);

/// How many bytes a lingering close discards beyond `max_body`: 4 MiB, what
/// the client's and the server's socket buffers can hold (a few MiB on
/// Linux) of a body that was on its way when the refusal went out. A body
/// refused by the memory budget is at most `max_body`, so it is discarded
/// whole; a client that sends more is reset.
const LINGER_BYTES: u64 = 4 << 20;

/// Closes a connection after its last response: shuts down the writing
/// side (the client reads an end of stream after the response), then reads
/// and discards input until the client closes too, for up to
/// [`LINGER_TIME`] and `max_body` + [`LINGER_BYTES`] bytes, so that the
/// close is a FIN and not a reset. The caller has given back the
/// connection's table slot.
async fn linger<H: Handler>(server: &Server<H>, mut stream: TcpStream) {
    let handler = server.handler();
    let limits = handler.limits();
    let Some(_turn) = server.connections.linger(limits) else {
        close_cleanly(&mut stream).await;
        return;
    };
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    let mut left = limits.max_body.saturating_add(LINGER_BYTES);
    smol::future::or(
        async {
            while let Ok(n @ 1..) = stream.read(&mut sink).await {
                left = left.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                if left == 0 {
                    break;
                }
            }
        },
        async {
            smol::Timer::after(LINGER_TIME).await;
        },
    )
    .await;
}

/// Closes a connection with a FIN, not a reset: bytes the client sent that
/// were not read yet (which would make the kernel reset it) are discarded
/// first, up to [`CLOSE_DISCARD`] without waiting.
async fn close_cleanly(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    let mut left = CLOSE_DISCARD;
    while let Some(Ok(n)) = smol::future::poll_once(stream.read(&mut sink)).await {
        left = left.saturating_sub(n);
        if n == 0 || left == 0 {
            break;
        }
    }
}

/// Most bytes [`close_cleanly`] discards: 256 KiB, what a socket's receive
/// buffer holds by default. Its reads never wait, so without a bound a
/// client sending as fast as they drain (on a fast link) would hold the
/// thread; past it, the close may be a reset.
const CLOSE_DISCARD: usize = 256 << 10;

/// Resolves when the peer resets the connection (or it fails). An end of
/// stream is a half-close, not an end: the client may still read its
/// answer. Once the end of stream has arrived, reads report it even after
/// a reset, so the connection is looked at every [`HALF_CLOSED_CHECK`]:
/// a reset one has no peer address any more. Bytes of a pipelined next
/// request are left unread.
///
/// It first waits until something arrives. The server's sockets are
/// edge-triggered (vendor/async-io/PATCH.md): while the request's last
/// read found the socket drained, that wait costs no system call and no
/// timer, however quick the request (most are answered before anything
/// could arrive); a socket that may hold bytes is peeked at once.
async fn peer_reset(stream: &TcpStream) {
    let socket: std::sync::Arc<smol::Async<std::net::TcpStream>> = stream.clone().into();
    if socket.readable().await.is_err() {
        return;
    }
    let mut byte = [0u8; 1];
    loop {
        match stream.peek(&mut byte).await {
            Err(_) => return,
            Ok(0) if stream.peer_addr().is_err() => return,
            Ok(0) => {
                smol::Timer::after(HALF_CLOSED_CHECK).await;
            }
            Ok(_) => smol::future::pending().await,
        }
    }
}

/// Writes one response; a client that does not take it within
/// `write_timeout` loses its connection. Re-exported in
/// [`crate::internals`] for the load benchmark's native baseline, which
/// must write exactly as the server does.
pub async fn write(
    stream: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
    head_only: bool,
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    let mut out = Vec::new();
    encode(response, keep_alive, head_only, &mut out);
    write_bytes(stream, &out, timeout).await
}

/// Writes an encoded response within `timeout`.
async fn write_bytes(
    stream: &mut TcpStream,
    out: &[u8],
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    smol::future::or(
        async {
            stream.write_all(out).await?;
            stream.flush().await
        },
        async {
            smol::Timer::after(timeout).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client did not read the response within write_timeout",
            ))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::wire::Wire;

    #[test]
    fn expect_continue_is_answered_on_http_1_1_only() {
        let d = Limits::default();
        for (request, interim) in [
            (&b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"[..], &b"HTTP/1.1 100 Continue\r\n\r\n"[..]),
            (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", b""),
            (b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", b""),
        ] {
            let mut io = Wire {
                input: request.to_vec(),
                at: 0,
                step: usize::MAX,
                written: Vec::new(),
            };
            assert!(smol::block_on(read_request(&mut Decoder::new(), &mut io, &d, &())).is_ok());
            assert_eq!(io.written, interim, "{:?}", request.escape_ascii().to_string());
        }
    }

    /// Reads a request; its writes never complete (a client that does not
    /// read, its window full).
    struct Stuck(Wire);

    impl AsyncRead for Stuck {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Stuck {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Pending
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_100_continue_the_client_does_not_read_ends_within_body_timeout() {
        let limits = Limits {
            body_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let mut io = Stuck(Wire {
            input:
                b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
                    .to_vec(),
            at: 0,
            step: usize::MAX,
            written: Vec::new(),
        });
        let result = smol::block_on(read_request(&mut Decoder::new(), &mut io, &limits, &()));
        assert!(
            matches!(&result, Err(DecodeError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "{result:?}"
        );
    }
}
