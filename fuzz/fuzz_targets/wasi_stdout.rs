//! wasi-json stdout parsing: whatever a guest prints is either one response
//! or an error, without panicking; a parsed response has a final status.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use wasmgate::internals::abi::wasi_json::{decode_output, decode_response};
    use wasmgate::internals::limits::PlainOutput;
    if let Ok(response) = decode_response(data) {
        assert!((200..=999).contains(&response.status));
    }
    // By default, what is not a response object is the body, as it is.
    if let Ok(response) = decode_output(data, PlainOutput::Text) {
        assert!((200..=999).contains(&response.status));
    }
});
