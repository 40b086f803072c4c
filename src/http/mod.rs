//! HTTP/1.1 framing, with no server and no wasm in it: reading messages
//! within limits, writing responses, and the header syntax both share.

mod decode;
mod encode;
mod head;
mod syntax;

#[cfg(test)]
pub(crate) use decode::wire;
pub use decode::{DecodeError, Decoder, Gate, Limits, Request};
pub use encode::{FRAMING_HEADERS, HOST_HEADERS, Response, encode, valid_name, valid_value};
pub use head::{
    BodyLength, ParsedMessage, RequestHead, RequestLine, ResponseHead, StatusLine, parse_request,
    parse_response,
};
