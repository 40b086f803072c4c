//! The KV host functions: `wasmgate.kv_get`, `kv_set`, `kv_delete`,
//! `kv_incr`, `kv_list`, and Gojinn's `gojinn.host_kv_set` and
//! `gojinn.host_kv_get`. Each works on the request's transaction
//! ([`KvSlot`]): its namespace only, its own writes visible, nothing
//! stored until the request succeeds. A refused operation (quota, key
//! length, not a number, store unavailable) is an error value to the guest
//! and, once per request, a line in the log; never a trap. A pointer
//! outside the guest's memory traps in `wasmgate` (like `wasmgate.log`)
//! and answers an error value in `gojinn` (like Gojinn).

use wasmi::{Caller, FuncType, Linker, Val, ValType};

use crate::error::CallError;
use crate::runtime::state::{Cost, HostState, charge, cost, finish, guest_memory};
use crate::runtime::tape::Answer;
use crate::store::counters::{KvOp, count};
use crate::store::{KvError, MAX_KEY};

/// `wasmgate.kv_*` results below zero (the guest crate's `kv::Error`).
pub mod code {
    /// No such key (`kv_get`, `kv_delete`).
    pub const NOT_FOUND: i32 = -1;
    /// The key is longer than 1024 bytes.
    pub const KEY_TOO_LONG: i32 = -2;
    /// The value is larger than `[state] max_value`.
    pub const VALUE_TOO_LARGE: i32 = -3;
    /// The namespace would pass `[state] max_keys` or `max_bytes`.
    pub const QUOTA: i32 = -4;
    /// `kv_incr` on a value that is not a decimal integer.
    pub const NOT_A_NUMBER: i32 = -5;
    /// `kv_incr` past the range of an `i64`.
    pub const OVERFLOW: i32 = -6;
    /// The store cannot be used (it failed to open; the log says why).
    pub const UNAVAILABLE: i32 = -7;
}

/// Most keys one `kv_list` call returns.
pub const MAX_LIST: usize = 1000;

/// The `wasmgate` KV functions and their signatures.
pub const WASMGATE_FUNCTIONS: &[(&str, &[ValType], &[ValType])] = {
    use ValType::{I32, I64};
    &[
        ("kv_get", &[I32, I32, I32, I32], &[I32]),
        ("kv_set", &[I32, I32, I32, I32, I64], &[I32]),
        ("kv_delete", &[I32, I32], &[I32]),
        ("kv_incr", &[I32, I32, I64, I64, I32], &[I32]),
        ("kv_list", &[I32, I32, I32, I32, I32, I32], &[I32]),
    ]
};

/// `gojinn.host_kv_get`'s parameters; its result is `i32` (Gojinn's host
/// and Go SDK) or `i64` (its Rust SDK and `functions/kv`), as the module
/// declares it.
pub const GOJINN_KV_GET_PARAMS: &[ValType] = &[ValType::I32; 4];

/// Counts a call that answered `result` (a trap is not counted): a
/// negative code other than [`code::NOT_FOUND`] is a refusal.
fn counted(op: KvOp, result: Result<i32, wasmi::Error>) -> Result<i32, wasmi::Error> {
    if let Ok(code) = &result {
        count(op, *code >= 0 || *code == code::NOT_FOUND);
    }
    result
}

fn kv_code(e: &KvError) -> i32 {
    match e {
        KvError::KeyTooLong => code::KEY_TOO_LONG,
        KvError::ValueTooLarge { .. } => code::VALUE_TOO_LARGE,
        KvError::TooManyKeys { .. } | KvError::TooManyBytes { .. } => code::QUOTA,
        KvError::NotANumber => code::NOT_A_NUMBER,
        KvError::Overflow => code::OVERFLOW,
        KvError::Unavailable(_) => code::UNAVAILABLE,
    }
}

/// An error the guest sees as `code` (a refusal fed back by a replay:
/// the limit in a quota error is not recorded).
fn kv_error(code: i32) -> KvError {
    match code {
        code::KEY_TOO_LONG => KvError::KeyTooLong,
        code::VALUE_TOO_LARGE => KvError::ValueTooLarge { limit: 0 },
        code::QUOTA => KvError::TooManyKeys { limit: 0 },
        code::NOT_A_NUMBER => KvError::NotANumber,
        code::OVERFLOW => KvError::Overflow,
        _ => KvError::Unavailable("unavailable when recorded".into()),
    }
}

/// `cost` without its per-call part: the second charge of a call, for
/// the bytes it copies back once it knows how many.
fn per_byte(cost: Cost) -> Cost {
    Cost {
        per_call: 0,
        ..cost
    }
}

/// Says in the log, once per request, why a KV operation was refused.
fn warn_once(caller: &Caller<'_, HostState>, e: &KvError) {
    let state = caller.data();
    let mut slot = state.kv.borrow_mut();
    if !slot.warned {
        slot.warned = true;
        let ns = slot
            .txn
            .as_ref()
            .map(|t| String::from_utf8_lossy(t.namespace()).into_owned())
            .unwrap_or_default();
        drop(slot);
        state.log.host_warning(&format!(
            "kv namespace {ns:?}: {e} (further refusals not logged)"
        ));
    }
}

fn oob(name: &str) -> wasmi::Error {
    wasmi::Error::host(CallError::Trap(format!(
        "wasmgate.{name}: pointer out of bounds"
    )))
}

/// The `len` bytes at `ptr`, copied, or `None` when outside the memory.
fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let (mem, _) = guest_memory::of(caller)?;
    let len = usize::try_from(u32::try_from(len).ok()?).ok()?;
    Some(guest_memory::get(mem, ptr.cast_unsigned(), len)?.to_vec())
}

/// A key, or why not: `Err(Some(code))` too long, `Err(None)` out of bounds.
fn read_key(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, Option<i32>> {
    if usize::try_from(len.cast_unsigned()).is_ok_and(|l| l > MAX_KEY) {
        return Err(Some(code::KEY_TOO_LONG));
    }
    read(caller, ptr, len).ok_or(None)
}

/// Runs `op` on the request's transaction. `name` and `key` name it on
/// the request's tape (crash dumps: the answer is recorded, or fed back in
/// a replay, see [`Tape::replay_kv`](crate::runtime::tape::Tape::replay_kv)).
fn with_txn<T: Answer>(
    caller: &mut Caller<'_, HostState>,
    (name, key): (&str, &[u8]),
    op: impl FnOnce(&mut crate::store::Txn) -> Result<T, KvError>,
) -> Result<T, KvError> {
    let slot = std::rc::Rc::clone(&caller.data().kv);
    let live = || {
        let mut slot = slot.borrow_mut();
        match slot.txn.as_mut() {
            Some(txn) => op(txn),
            None => Err(KvError::Unavailable(
                slot.unavailable
                    .clone()
                    .unwrap_or_else(|| "no store".into()),
            )),
        }
    };
    let tape = caller.data().tape.clone();
    let replayed = tape
        .as_ref()
        .and_then(|t| t.borrow_mut().replay_kv((name, key), kv_error));
    let result = replayed.unwrap_or_else(live);
    if let Some(tape) = &tape {
        tape.borrow_mut().record_kv((name, key), &result, kv_code);
    }
    if let Err(e) = &result {
        warn_once(caller, e);
    }
    result
}

/// Defines the `wasmgate` KV functions.
pub fn add_wasmgate(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    const M: &str = "wasmgate";
    linker.func_wrap(
        M,
        "kv_get",
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32, op: i32, om: i32| {
            let result = counted(KvOp::Get, get(&mut caller, kp, kl, op, om, true))?;
            finish(&mut caller, result)
        },
    )?;
    linker.func_wrap(
        M,
        "kv_set",
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32, ttl: i64| {
            let result = counted(KvOp::Set, set(&mut caller, (kp, kl), (vp, vl), ttl, true))?;
            finish(&mut caller, result)
        },
    )?;
    linker.func_wrap(
        M,
        "kv_delete",
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32| {
            charge(&mut caller, cost::KV_WRITE, u64::from(kl.cast_unsigned()))?;
            let result = match read_key(&mut caller, kp, kl) {
                Err(None) => return Err(oob("kv_delete")),
                Err(Some(code)) => code,
                Ok(key) => match with_txn(&mut caller, ("delete", &key), |t| t.delete(&key)) {
                    Ok(true) => 0,
                    Ok(false) => code::NOT_FOUND,
                    Err(e) => kv_code(&e),
                },
            };
            let result = counted(KvOp::Delete, Ok(result))?;
            finish(&mut caller, result)
        },
    )?;
    linker.func_wrap(
        M,
        "kv_incr",
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32, delta: i64, ttl: i64, out: i32| {
            charge(&mut caller, cost::KV_WRITE, u64::from(kl.cast_unsigned()))?;
            let result = match read_key(&mut caller, kp, kl) {
                Err(None) => return Err(oob("kv_incr")),
                Err(Some(code)) => code,
                Ok(key) => {
                    let ttl = u64::try_from(ttl).unwrap_or(0);
                    match with_txn(&mut caller, ("incr", &key), |t| t.incr(&key, delta, ttl)) {
                        Ok(value) => {
                            let (mem, _) =
                                guest_memory::of(&mut caller).ok_or_else(|| oob("kv_incr"))?;
                            guest_memory::put(mem, out.cast_unsigned(), &value.to_le_bytes())
                                .ok_or_else(|| oob("kv_incr"))?;
                            0
                        }
                        Err(e) => kv_code(&e),
                    }
                }
            };
            let result = counted(KvOp::Incr, Ok(result))?;
            finish(&mut caller, result)
        },
    )?;
    linker.func_wrap(
        M,
        "kv_list",
        |mut caller: Caller<'_, HostState>,
         pp: i32,
         pl: i32,
         ap: i32,
         al: i32,
         op: i32,
         om: i32| {
            let result = counted(KvOp::List, list(&mut caller, (pp, pl), (ap, al), op, om))?;
            finish(&mut caller, result)
        },
    )?;
    Ok(())
}

/// `kv_get` and `host_kv_get`: the value's length, copied to `out` if it
/// fits (`wasmgate`, `whole`), or cut to `out_max` (Gojinn).
fn get(
    caller: &mut Caller<'_, HostState>,
    kp: i32,
    kl: i32,
    op: i32,
    om: i32,
    whole: bool,
) -> Result<i32, wasmi::Error> {
    charge(caller, cost::KV_READ, u64::from(kl.cast_unsigned()))?;
    let key = match read_key(caller, kp, kl) {
        Err(None) if whole => return Err(oob("kv_get")),
        Err(None) => return Ok(0),
        Err(Some(code)) => return Ok(code),
        Ok(key) => key,
    };
    let value = match with_txn(caller, ("get", &key), |t| t.get(&key)) {
        Ok(Some(value)) => value,
        Ok(None) => return Ok(code::NOT_FOUND),
        Err(e) => return Ok(kv_code(&e)),
    };
    // The value was copied out of the store, whether or not it fits (the
    // copy back is no larger).
    charge(caller, per_byte(cost::KV_READ), value.len() as u64)?;
    let max = usize::try_from(om.cast_unsigned()).unwrap_or(usize::MAX);
    let len = i32::try_from(value.len()).unwrap_or(i32::MAX);
    let copy = if whole {
        if value.len() > max {
            return Ok(len);
        }
        &value[..]
    } else {
        &value[..value.len().min(max)]
    };
    let Some((mem, _)) = guest_memory::of(caller) else {
        return if whole { Err(oob("kv_get")) } else { Ok(0) };
    };
    match guest_memory::put(mem, op.cast_unsigned(), copy) {
        Some(()) if whole => Ok(len),
        Some(()) => Ok(i32::try_from(copy.len()).unwrap_or(i32::MAX)),
        None if whole => Err(oob("kv_get")),
        None => Ok(0),
    }
}

/// `kv_set` and `host_kv_set`: 0 or an error code. A pointer out of
/// bounds traps when `strict` (`wasmgate`), else answers
/// [`code::NOT_FOUND`] (Gojinn ignores it).
fn set(
    caller: &mut Caller<'_, HostState>,
    (kp, kl): (i32, i32),
    (vp, vl): (i32, i32),
    ttl: i64,
    strict: bool,
) -> Result<i32, wasmi::Error> {
    let bytes = u64::from(kl.cast_unsigned()).saturating_add(u64::from(vl.cast_unsigned()));
    charge(caller, cost::KV_WRITE, bytes)?;
    let out_of_bounds = || {
        if strict {
            Err(oob("kv_set"))
        } else {
            Ok(code::NOT_FOUND)
        }
    };
    let key = match read_key(caller, kp, kl) {
        Err(None) => return out_of_bounds(),
        Err(Some(code)) => return Ok(code),
        Ok(key) => key,
    };
    let Some(value) = read(caller, vp, vl) else {
        return out_of_bounds();
    };
    let ttl = u64::try_from(ttl).unwrap_or(0);
    Ok(
        match with_txn(caller, ("set", &key), |t| t.set(&key, &value, ttl)) {
            Ok(()) => 0,
            Err(e) => kv_code(&e),
        },
    )
}

/// `kv_list`: whole `u32 LE length, key` records of the keys with the
/// prefix after `after`, as many as fit in `out_max` (at most
/// [`MAX_LIST`]); the bytes written (0: no more keys).
fn list(
    caller: &mut Caller<'_, HostState>,
    (pp, pl): (i32, i32),
    (ap, al): (i32, i32),
    op: i32,
    om: i32,
) -> Result<i32, wasmi::Error> {
    let bytes = u64::from(pl.cast_unsigned()).saturating_add(u64::from(al.cast_unsigned()));
    charge(caller, cost::KV_LIST, bytes)?;
    let (prefix, after) = match (read_key(caller, pp, pl), read_key(caller, ap, al)) {
        (Ok(prefix), Ok(after)) => (prefix, after),
        (Err(None), _) | (_, Err(None)) => return Err(oob("kv_list")),
        (Err(Some(code)), _) | (_, Err(Some(code))) => return Ok(code),
    };
    let max = usize::try_from(om.cast_unsigned()).unwrap_or(usize::MAX);
    let (keys, work) = match with_txn(caller, ("list", &prefix), |t| {
        Ok(t.keys(&prefix, &after, MAX_LIST))
    }) {
        Ok(found) => found,
        Err(e) => return Ok(kv_code(&e)),
    };
    // Every key looked at and copied out of the store is paid for, before
    // the copy back: listing many keys costs more than listing none,
    // whatever fits in `out_max`.
    charge(caller, per_byte(cost::KV_LIST), work)?;
    let mut out = Vec::new();
    for key in keys {
        if out.len().saturating_add(4).saturating_add(key.len()) > max {
            break;
        }
        out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&key);
    }
    charge(caller, per_byte(cost::KV_LIST), out.len() as u64)?;
    let (mem, _) = guest_memory::of(caller).ok_or_else(|| oob("kv_list"))?;
    guest_memory::put(mem, op.cast_unsigned(), &out).ok_or_else(|| oob("kv_list"))?;
    Ok(i32::try_from(out.len()).unwrap_or(i32::MAX))
}

/// Defines `gojinn.host_kv_set(key_ptr, key_len, val_ptr, val_len)`: like
/// Gojinn, no result; a refusal is logged.
pub fn add_gojinn_set(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        "gojinn",
        "host_kv_set",
        |mut caller: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32| {
            // Out of bounds or refused: Gojinn returns without a trap.
            counted(KvOp::Set, set(&mut caller, (kp, kl), (vp, vl), 0, false))?;
            finish(&mut caller, ())
        },
    )?;
    Ok(())
}

/// Defines `gojinn.host_kv_get(key_ptr, key_len, out_ptr, out_max)` with
/// the result type the module declares (`ty`: `i32` or `i64`): the bytes
/// written, at most `out_max` (a longer value is cut, as in Gojinn), all
/// bits set for a missing key or a refusal, 0 for a pointer out of bounds.
pub fn define_gojinn_get(
    linker: &mut Linker<HostState>,
    ty: &FuncType,
) -> Result<(), wasmi::Error> {
    let wide = ty.results() == [ValType::I64];
    linker.func_new(
        "gojinn",
        "host_kv_get",
        ty.clone(),
        move |mut caller: Caller<'_, HostState>, params: &[Val], results: &mut [Val]| {
            let arg = |i: usize| match params.get(i) {
                Some(Val::I32(v)) => *v,
                _ => 0,
            };
            let n = counted(
                KvOp::Get,
                get(&mut caller, arg(0), arg(1), arg(2), arg(3), false),
            )?;
            let value = match (n >= 0, wide) {
                (true, true) => Val::I64(i64::from(n)),
                (true, false) => Val::I32(n),
                (false, true) => Val::I64(-1),
                (false, false) => Val::I32(-1),
            };
            let value = finish(&mut caller, Some(value))?;
            if let (Some(slot), Some(value)) = (results.first_mut(), value) {
                *slot = value;
            }
            Ok(())
        },
    )?;
    Ok(())
}
