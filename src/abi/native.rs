//! The native ABI (version 1, specified in `functions/guest/src/abi.rs` and
//! the README): the request is postcard-encoded into a buffer the guest
//! allocates, and the guest returns the location of its encoded response.

use wasmi::{Val, ValType};

use super::{GuestRequest, GuestResponse};
use crate::error::CallError;
use crate::limits::MAX_RESPONSE_HEADERS;
use crate::runtime::Sandbox;
use crate::runtime::state::guest_memory;

/// Export that allocates the request buffer.
pub const ALLOC: &str = "wasmgate_alloc";
/// Export that handles a request.
pub const HANDLE: &str = "wasmgate_handle";
/// Function exports a native module must have, with their signatures.
pub const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[
    (ALLOC, &[ValType::I32], &[ValType::I32]),
    (HANDLE, &[ValType::I32, ValType::I32], &[ValType::I64]),
];

/// Encodes `request`, hands it to the guest and decodes its response.
pub async fn call(
    sandbox: &mut Sandbox,
    request: &GuestRequest<'_>,
    max_response: u64,
) -> Result<GuestResponse, CallError> {
    let bytes = postcard::to_allocvec(request)
        .map_err(|e| CallError::Trap(format!("cannot encode request: {e}")))?;
    let len = i32::try_from(bytes.len())
        .map_err(|_| CallError::Trap("request too large for a 32-bit guest".into()))?;

    let mut out = [Val::I32(0)];
    sandbox.call(ALLOC, &[Val::I32(len)], &mut out).await?;
    let ptr = match out[0] {
        Val::I32(p) if p != 0 => p.cast_unsigned(),
        _ => {
            return Err(CallError::BadResponse(format!(
                "{ALLOC}({len}) returned a null pointer"
            )));
        }
    };
    let memory = sandbox
        .memory()
        .ok_or_else(|| CallError::BadResponse("module has no `memory` export".into()))?;
    guest_memory::put(memory.data_mut(sandbox.store_mut()), ptr, &bytes).ok_or_else(|| {
        CallError::BadResponse(format!(
            "{ALLOC}({len}) returned {ptr:#x}, outside the guest's memory"
        ))
    })?;
    drop(bytes);

    let mut out = [Val::I64(0)];
    sandbox
        .call(
            HANDLE,
            &[Val::I32(ptr.cast_signed()), Val::I32(len)],
            &mut out,
        )
        .await?;
    let Val::I64(packed) = out[0] else {
        return Err(CallError::BadResponse(format!("{HANDLE} returned no i64")));
    };
    let packed = packed.cast_unsigned();
    let (res_ptr, res_len) = ((packed >> 32) as u32, (packed & 0xffff_ffff) as usize);
    if res_len as u64 > max_response {
        return Err(CallError::BadResponse(format!(
            "response is {res_len} bytes, more than max_response ({max_response} bytes)"
        )));
    }
    let data = memory.data(sandbox.store());
    let encoded = guest_memory::get(data, res_ptr, res_len).ok_or_else(|| {
        CallError::BadResponse(format!(
            "response at {res_ptr:#x}+{res_len} lies outside the guest's memory ({} bytes)",
            data.len()
        ))
    })?;
    decode_response(encoded).map_err(CallError::BadResponse)
}

/// Decodes the bytes a guest returned as its response (a fuzz target):
/// a postcard-encoded [`GuestResponse`], field by field so that the
/// header count is read, and refused past `limits::MAX_RESPONSE_HEADERS`, before
/// any header is built: decoding a declared 340,000 fields in full took
/// ~20 ms of unmetered host time per request. Trailing bytes are ignored,
/// as `postcard::from_bytes` does.
pub fn decode_response(encoded: &[u8]) -> Result<GuestResponse, String> {
    let invalid = |e: postcard::Error| format!("response is not a valid ABI v1 message: {e}");
    let (status, rest) = postcard::take_from_bytes::<u16>(encoded).map_err(invalid)?;
    // A sequence length is a varint `usize`; read as u64 so that no count
    // wraps on a 32-bit host before it is compared.
    let (count, mut rest) = postcard::take_from_bytes::<u64>(rest).map_err(invalid)?;
    if count > MAX_RESPONSE_HEADERS as u64 {
        return Err(format!(
            "{count} header fields, more than the {MAX_RESPONSE_HEADERS} allowed"
        ));
    }
    let mut headers = Vec::new();
    for _ in 0..count {
        let (field, tail) =
            postcard::take_from_bytes::<(String, Vec<u8>)>(rest).map_err(invalid)?;
        headers.push(field);
        rest = tail;
    }
    let (body, _) = postcard::take_from_bytes::<Vec<u8>>(rest).map_err(invalid)?;
    super::check_status(status.into())?;
    Ok(GuestResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_matches_postcard_for_a_valid_response() {
        let mut response = GuestResponse::new(201);
        response.headers = vec![("a".into(), b"1".to_vec()), ("b".into(), Vec::new())];
        response.body = b"hello".to_vec();
        let bytes = postcard::to_allocvec(&response).unwrap();
        let decoded = decode_response(&bytes).unwrap();
        assert_eq!(decoded.status, 201);
        assert_eq!(decoded.headers, response.headers);
        assert_eq!(decoded.body, response.body);
        assert!(decode_response(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn decode_refuses_a_huge_header_count_before_reading_fields() {
        // Status 200, then a declared count of 340,000 and no fields at all:
        // a decoder that built fields first would fail on the missing bytes
        // (or, given them, build 340,000 fields); this one stops at the count.
        let mut bytes = postcard::to_allocvec(&200u16).unwrap();
        bytes.extend(postcard::to_allocvec(&340_000u64).unwrap());
        assert_eq!(
            decode_response(&bytes).err().as_deref(),
            Some("340000 header fields, more than the 100 allowed")
        );
        let mut max = postcard::to_allocvec(&200u16).unwrap();
        max.extend(postcard::to_allocvec(&u64::MAX).unwrap());
        assert!(
            decode_response(&max)
                .unwrap_err()
                .contains("more than the 100 allowed")
        );
    }
}
