//! Request decoding: the input is the byte stream a client sends on one
//! connection (pipelined requests, chunked bodies, anything). The decoder
//! reads requests from it until it refuses one or the stream ends, under
//! several limits and read sizes. It must never panic, never read past the
//! stream, and find the same requests whether the bytes arrive all at once
//! or one at a time.
//!
//! Corpus files are raw request streams (the differential test against
//! hyper reads them too).
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use smol::io::{AsyncRead, AsyncWrite};
use wasmgate::internals::http::{DecodeError, Decoder, Limits, Request};
use wasmgate::internals::server::read_request;

/// Requests decoded from one stream at most (a 4 KiB input holds fewer).
const MAX_REQUESTS: usize = 256;

/// A connection whose peer sends `input` in reads of at most `step` bytes,
/// then closes; what the server writes (100 Continue) is counted and dropped.
struct Stream<'a> {
    input: &'a [u8],
    step: usize,
    written: usize,
}

impl AsyncRead for Stream<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.step).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Stream<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What a request or a refusal looks like, for comparing two runs.
#[derive(Debug, PartialEq)]
enum Seen {
    Request(String, String, Vec<(String, Vec<u8>)>, Vec<u8>, bool),
    Refused(String),
}

fn seen(result: &Result<Request, DecodeError>) -> Seen {
    match result {
        Ok(r) => Seen::Request(
            r.method.clone(),
            r.uri.clone(),
            r.headers.clone(),
            r.body.clone(),
            r.keep_alive,
        ),
        // The variant, not the message: that may quote what was read so far.
        Err(e) => Seen::Refused(
            format!("{e:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("")
                .to_owned(),
        ),
    }
}

/// Decodes every request of `input`, read `step` bytes at a time.
fn decode(input: &[u8], step: usize, limits: &Limits) -> Vec<Seen> {
    let mut stream = Stream {
        input,
        step,
        written: 0,
    };
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    smol::block_on(async {
        for _ in 0..MAX_REQUESTS {
            let result = read_request(&mut decoder, &mut stream, limits, &()).await;
            let done = result.is_err() || !result.as_ref().is_ok_and(|r| r.keep_alive);
            if let Ok(r) = &result {
                assert!(r.body.len() as u64 <= limits.max_body, "body over max_body");
                assert!(
                    r.headers.len() <= limits.max_headers,
                    "more headers than max_headers"
                );
            }
            out.push(seen(&result));
            if done {
                break;
            }
        }
    });
    assert!(
        stream.written <= 64 * out.len().max(1),
        "wrote more than a 100 Continue per request"
    );
    out
}

fuzz_target!(|input: &[u8]| {
    let default = Limits::default();
    let small = Limits {
        max_body: 16,
        max_header_bytes: 64,
        max_headers: 4,
        ..Limits::default()
    };
    // The crash: a body limit far above memory.
    let huge = Limits {
        max_body: 64 << 30,
        max_headers: 1000,
        allow_encoded_slash: true,
        ..Limits::default()
    };
    for limits in [&default, &small, &huge] {
        let whole = decode(input, usize::MAX, limits);
        let bytewise = decode(input, 1, limits);
        assert_eq!(
            whole, bytewise,
            "the requests found depend on how the bytes arrive"
        );
    }
    decode(input, 7, &default);
});
