//! HTTP/1.1 framing, with no server and no wasm in it, for the server's
//! side and (later) a client's:
//!
//! - `head.rs`: a complete request or response head → [`ParsedMessage`]
//!   (body length, keep-alive, expect-continue), RFC 9112's rules;
//! - `decode.rs`: the [`Decoder`], reading heads from a connection within
//!   the framing [`Limits`], memory for bodies granted by a [`Gate`]; it
//!   never writes (the server answers `100 Continue`);
//! - `body.rs`: reading a body (length, chunked, until close), and a whole
//!   request, head and body;
//! - `encode.rs`: writing a [`Response`] (whole, or its head and then a
//!   [`BodyStream`]), header field validation;
//! - `client.rs`: the upstream side: connections, a keep-alive pool,
//!   writing a request, reading a response head and body;
//! - `syntax.rs`: the grammar pieces the others share.

mod body;
pub mod client;
mod decode;
mod encode;
mod head;
mod syntax;

#[cfg(test)]
pub(crate) use decode::wire;
pub use decode::{DecodeError, Decoder, Gate, Limits, Request};
pub use encode::{
    BodyStream, FRAMING_HEADERS, Framing, HOST_HEADERS, Response, Streamed, bodiless, encode,
    encode_head, valid_name, valid_value,
};
pub use syntax::normalized;
// The layer's interface (linked above).
#[allow(unused_imports)]
pub use head::{
    BodyLength, ParsedMessage, RequestHead, RequestLine, ResponseHead, StatusLine, parse_request,
    parse_response,
};
