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
//! - `encode.rs`: writing a [`Response`], header field validation;
//! - `syntax.rs`: the grammar pieces the others share.

mod body;
mod decode;
mod encode;
mod head;
mod syntax;

#[cfg(test)]
pub(crate) use decode::wire;
pub use decode::{DecodeError, Decoder, Gate, Limits, Request};
pub use encode::{FRAMING_HEADERS, HOST_HEADERS, Response, encode, valid_name, valid_value};
// The layer's interface (linked above); the response half is for the
// gateway's upstream client, which is not written yet.
#[allow(unused_imports)]
pub use head::{
    BodyLength, ParsedMessage, RequestHead, RequestLine, ResponseHead, StatusLine, parse_request,
    parse_response,
};
