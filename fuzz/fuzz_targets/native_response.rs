//! Native-ABI response decoding: whatever bytes a guest returns as its
//! postcard-encoded response are decoded the way the server decodes them,
//! without panicking; a decoded response has a final status.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = wasmgate::internals::abi::native::decode_response(data) {
        assert!((200..=999).contains(&response.status));
    }
});
