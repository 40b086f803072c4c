//! The HTTP exchange an http-wasm guest works on: the request on its way
//! to the next handler and the response on its way back ([`Message`]),
//! and what one guest instance may do with them ([`Exchange`]). Plain
//! data: the `http_handler` host functions
//! ([`imports::http_handler`](super::imports::http_handler)) read and
//! write it, the ABI adapter (`abi::http_wasm`) moves the message from one
//! middleware's store to the next.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::limits::{FunctionLimits, MAX_RESPONSE_HEADERS, ServerLimits};

/// `enable_features` bit: the request body stays readable after the next
/// handler ran (wasmgate holds every request body whole, so it always
/// does; the bit is granted and recorded).
pub const BUFFER_REQUEST: u32 = 1;
/// `enable_features` bit: the next handler's response is held so that
/// `handle_response` may read its body and rewrite status, headers and
/// body.
pub const BUFFER_RESPONSE: u32 = 2;
/// `enable_features` bit: trailers. Not supported: the bit is never
/// granted (HTTP/1.1 trailers are not kept by the server).
pub const TRAILERS: u32 = 4;
/// The features wasmgate grants.
pub const SUPPORTED: u32 = BUFFER_REQUEST | BUFFER_RESPONSE;

/// The request and the response of one exchange, as the guests see them.
/// Header names are lower case; values are checked where a guest sets
/// them (`http_handler`'s header functions).
#[derive(Debug, Clone)]
pub struct Message {
    /// The request method.
    pub method: String,
    /// The request target (origin-form: path and query).
    pub uri: String,
    /// Request header fields, in order.
    pub request_headers: Vec<(String, Vec<u8>)>,
    /// The request body.
    pub request_body: Vec<u8>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The response status (200 until someone sets it, as the reference
    /// host answers).
    pub status: u16,
    /// Response header fields, in order.
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// The response body.
    pub response_body: Vec<u8>,
}

impl Default for Message {
    fn default() -> Self {
        Self {
            method: String::new(),
            uri: String::new(),
            request_headers: Vec::new(),
            request_body: Vec::new(),
            peer: None,
            status: 200,
            response_headers: Vec::new(),
            response_body: Vec::new(),
        }
    }
}

/// What one exchange may hold: a guest that would take it past one of
/// these traps.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeLimits {
    /// Request body bytes (the server's `max_body`).
    pub max_body: u64,
    /// Request header fields (the server's `max_headers`).
    pub max_request_headers: usize,
    /// Bytes of request header names and values (`max_header_bytes`).
    pub max_request_header_bytes: u64,
    /// Response header fields ([`crate::limits::MAX_RESPONSE_HEADERS`]).
    pub max_response_headers: usize,
    /// Response body and header bytes (the guest's `max_response`).
    pub max_response: u64,
}

impl ExchangeLimits {
    /// The limits of an exchange on a server with `server`'s limits,
    /// through a guest with `guest`'s.
    pub fn new(server: &ServerLimits, guest: &FunctionLimits) -> Self {
        Self {
            max_body: server.max_body,
            max_request_headers: server.max_headers,
            max_request_header_bytes: server.max_header_bytes as u64,
            max_response_headers: MAX_RESPONSE_HEADERS,
            max_response: guest.max_response,
        }
    }
}

/// One guest instance's view of the exchange: the message while the
/// instance runs, and what the ABI's rules depend on.
#[derive(Debug)]
pub struct Exchange {
    /// The message; moved in before a call, out after it.
    pub message: Message,
    /// The middleware's `config`, as JSON (`get_config`).
    pub config: Arc<[u8]>,
    /// Features enabled so far ([`BUFFER_REQUEST`]…).
    pub features: u32,
    /// Whether the next handler has run (`handle_response` is running).
    pub after_next: bool,
    /// How much of the request body `read_body` has given the guest.
    pub request_read: usize,
    /// How much of the response body `read_body` has given the guest.
    pub response_read: usize,
    /// Whether the guest has written the request body in this call
    /// (the first write replaces the body, later ones append).
    pub request_written: bool,
    /// Whether the guest has written the response body in this call.
    pub response_written: bool,
    /// What the exchange may hold.
    pub limits: ExchangeLimits,
}

impl Exchange {
    /// A fresh view for one instance, with its `config` JSON.
    pub fn new(config: Arc<[u8]>, limits: ExchangeLimits) -> Self {
        Self {
            message: Message::default(),
            config,
            features: 0,
            after_next: false,
            request_read: 0,
            response_read: 0,
            request_written: false,
            response_written: false,
            limits,
        }
    }
}
