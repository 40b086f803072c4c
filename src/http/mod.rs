//! HTTP/1.1 framing, with no server and no wasm in it: reading messages
//! within limits, writing responses, and the header syntax both share.

mod decode;
mod encode;
mod head;
mod syntax;

pub use decode::{DecodeError, Decoder, Gate, Request};
pub use encode::{FRAMING_HEADERS, HOST_HEADERS, Response, encode, valid_name, valid_value};
