//! wasi-json stdout parsing: whatever a guest prints is either one response
//! or an error, without panicking; a parsed response has a final status.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = wasmgate::internals::abi::wasi_json::decode_response(data) {
        assert!((200..=999).contains(&response.status));
    }
});
