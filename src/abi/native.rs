//! The native ABI (version 1, specified in `functions/guest/src/abi.rs` and
//! the README): the request is postcard-encoded into a buffer the guest
//! allocates, and the guest returns the location of its encoded response.

use wasmi::{Val, ValType};

use super::{Request, Response};
use crate::error::CallError;
use crate::sandbox::Sandbox;

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
    request: &Request<'_>,
    max_response: u64,
) -> Result<Response, CallError> {
    let bytes = postcard::to_allocvec(request)
        .map_err(|e| CallError::Trap(format!("cannot encode request: {e}")))?;
    let len = i32::try_from(bytes.len())
        .map_err(|_| CallError::Trap("request too large for a 32-bit guest".into()))?;

    let mut out = [Val::I32(0)];
    sandbox.call(ALLOC, &[Val::I32(len)], &mut out).await?;
    let ptr = match out[0] {
        Val::I32(p) if p != 0 => p as u32 as usize,
        _ => {
            return Err(CallError::BadResponse(format!(
                "{ALLOC}({len}) returned a null pointer"
            )));
        }
    };
    let memory = sandbox
        .memory()
        .ok_or_else(|| CallError::BadResponse("module has no `memory` export".into()))?;
    memory
        .write(sandbox.store_mut(), ptr, &bytes)
        .map_err(|_| {
            CallError::BadResponse(format!(
                "{ALLOC}({len}) returned {ptr:#x}, outside the guest's memory"
            ))
        })?;
    drop(bytes);

    let mut out = [Val::I64(0)];
    sandbox
        .call(HANDLE, &[Val::I32(ptr as i32), Val::I32(len)], &mut out)
        .await?;
    let Val::I64(packed) = out[0] else {
        return Err(CallError::BadResponse(format!("{HANDLE} returned no i64")));
    };
    let (res_ptr, res_len) = (
        (packed as u64 >> 32) as usize,
        (packed as u64 & 0xffff_ffff) as usize,
    );
    if res_len as u64 > max_response {
        return Err(CallError::BadResponse(format!(
            "response is {res_len} bytes, more than max_response ({max_response} bytes)"
        )));
    }
    let data = memory.data(sandbox.store());
    let encoded = res_ptr
        .checked_add(res_len)
        .and_then(|end| data.get(res_ptr..end))
        .ok_or_else(|| {
            CallError::BadResponse(format!(
                "response at {res_ptr:#x}+{res_len} lies outside the guest's memory ({} bytes)",
                data.len()
            ))
        })?;
    decode_response(encoded).map_err(CallError::BadResponse)
}

/// Decodes the bytes a guest returned as its response (a fuzz target).
pub fn decode_response(encoded: &[u8]) -> Result<Response, String> {
    let response: Response = postcard::from_bytes(encoded)
        .map_err(|e| format!("response is not a valid ABI v1 message: {e}"))?;
    super::check_status(response.status.into())?;
    Ok(response)
}
