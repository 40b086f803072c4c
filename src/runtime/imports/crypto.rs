//! `wasmgate.sha256` and `wasmgate.hmac_sha256`: digests computed by the
//! host ([`digest`](crate::runtime::digest)). In the interpreter a guest's
//! own SHA-256 runs ~4,500 instructions per 64-byte block (HMAC over 1 KiB:
//! ~100,000 fuel, ~150 µs on the development VM); the host does the same in
//! ~2.3 µs with the CPU's SHA instructions, ~9–12 µs without. Both write
//! the 32-byte digest at `out_ptr`; a range outside the guest's memory
//! traps, like `wasmgate.log`, and so does more than [`MAX_IO_PER_CALL`]
//! (1 MiB) of key and data in one call: a host call cannot yield to other
//! requests mid-way, so one call is bounded (~11 ms without SHA
//! instructions).

use wasmi::{Caller, Linker, ValType};

use crate::error::CallError;
use crate::runtime::digest::{self, DIGEST_LEN};
use crate::runtime::imports::wasi_snapshot_preview1::MAX_IO_PER_CALL;
use crate::runtime::state::{HostState, charge, cost, finish, guest_memory};

/// The digest functions and their signatures (params, results).
pub const FUNCTIONS: &[(&str, &[ValType], &[ValType])] = {
    use ValType::I32;
    &[
        ("sha256", &[I32, I32, I32], &[]),
        ("hmac_sha256", &[I32, I32, I32, I32, I32], &[]),
    ]
};

/// Why a call traps.
enum Refused {
    OutOfBounds,
    TooLong,
}

fn trap(name: &str, why: Refused) -> wasmi::Error {
    let why = match why {
        Refused::OutOfBounds => "pointer out of bounds",
        Refused::TooLong => "more than 1 MiB of key and data in one call",
    };
    wasmi::Error::host(CallError::Trap(format!("wasmgate.{name}: {why}")))
}

/// `len` as a length, or `None` when negative.
fn length(len: i32) -> Option<usize> {
    usize::try_from(u32::try_from(len).ok()?).ok()
}

/// Function `name`: charges for hashing the key's and the data's bytes,
/// computes `f(key, data)` on the guest's memory and writes it at `out`.
fn digest_into(
    caller: &mut Caller<'_, HostState>,
    name: &str,
    key: (i32, i32),
    data: (i32, i32),
    out: i32,
    f: fn(&[u8], &[u8]) -> [u8; DIGEST_LEN],
) -> Result<(), wasmi::Error> {
    let (Some(key_len), Some(data_len)) = (length(key.1), length(data.1)) else {
        return Err(trap(name, Refused::OutOfBounds));
    };
    let bytes = key_len.saturating_add(data_len);
    if bytes > MAX_IO_PER_CALL {
        return Err(trap(name, Refused::TooLong));
    }
    // Paid before the work, so a guest out of fuel never gets it for free.
    charge(caller, cost::DIGEST, bytes as u64)?;
    let Some((mem, _)) = guest_memory::of(caller) else {
        return Err(trap(name, Refused::OutOfBounds));
    };
    let result = match (
        guest_memory::get(mem, key.0.cast_unsigned(), key_len),
        guest_memory::get(mem, data.0.cast_unsigned(), data_len),
    ) {
        (Some(k), Some(d)) => f(k, d),
        _ => return Err(trap(name, Refused::OutOfBounds)),
    };
    guest_memory::put(mem, out.cast_unsigned(), &result)
        .ok_or_else(|| trap(name, Refused::OutOfBounds))?;
    finish(caller, ())
}

/// Defines the digest functions in module `wasmgate`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    const M: &str = "wasmgate";
    linker.func_wrap(
        M,
        "sha256",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32, out: i32| {
            digest_into(&mut caller, "sha256", (0, 0), (ptr, len), out, |_, d| {
                digest::sha256(d)
            })
        },
    )?;
    linker.func_wrap(
        M,
        "hmac_sha256",
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32, dp: i32, dl: i32, out: i32| {
            let f = digest::hmac_sha256;
            digest_into(&mut caller, "hmac_sha256", (kp, kl), (dp, dl), out, f)
        },
    )?;
    Ok(())
}
