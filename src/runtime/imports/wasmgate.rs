//! The `wasmgate` import module: the native ABI's host functions (`log`,
//! the KV functions of [`kv`](super::kv) and the digests of
//! [`crypto`](super::crypto)).

use wasmi::{Caller, FuncType, Linker};

use crate::error::CallError;
use crate::runtime::imports::host_module::{HostModule, Mismatch, check_in};
use crate::runtime::state::{
    HostState, MAX_LOG_LINE, charge, charge_fuel, cost, finish, guest_memory,
};

/// The import module's name.
pub const NAME: &str = "wasmgate";

/// The module's row in [`HOST_MODULES`](super::HOST_MODULES).
pub const MODULE: HostModule = HostModule {
    name: NAME,
    check: check_import,
    define: add_to_linker,
};

/// Host functions in [`NAME`] and their signatures (params, results), as
/// the loader verifies them.
pub const FUNCTIONS: &[(&str, &[wasmi::ValType], &[wasmi::ValType])] = {
    use wasmi::ValType::I32;
    &[("log", &[I32, I32, I32], &[])]
};

/// Whether a `wasmgate` import can be provided.
fn check_import(name: &str, ty: &FuncType) -> Result<(), &'static str> {
    // `log`, then the KV functions (`kv`), then the digests (`crypto`).
    let found = [super::kv::WASMGATE_FUNCTIONS, super::crypto::FUNCTIONS]
        .iter()
        .fold(check_in(FUNCTIONS, name, ty), |found, table| match found {
            Err(Mismatch::Unknown) => check_in(table, name, ty),
            other => other,
        });
    found.map_err(|mismatch| match mismatch {
        Mismatch::Unknown => "no such wasmgate host function",
        Mismatch::Signature => "wrong signature for this wasmgate host function",
    })
}

/// Defines the `wasmgate` host functions in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    super::kv::add_wasmgate(linker)?;
    super::crypto::add_to_linker(linker)?;
    define_log(
        linker,
        NAME,
        "log",
        |level| match level {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        },
        |_| {
            Err(wasmi::Error::host(CallError::Trap(
                "wasmgate.log: message is out of bounds".into(),
            )))
        },
    )
}

/// Defines `module.name(level, ptr, len)`, a log function: the message
/// goes through [`log_message`] at `level_of(level)`; a message outside
/// the guest's memory is answered by `out_of_bounds` (a trap, or a charge
/// and nothing).
pub(super) fn define_log(
    linker: &mut Linker<HostState>,
    module: &'static str,
    name: &'static str,
    level_of: fn(i32) -> log::Level,
    out_of_bounds: fn(&mut Caller<'_, HostState>) -> Result<(), wasmi::Error>,
) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        module,
        name,
        move |mut caller: Caller<'_, HostState>,
              level: i32,
              ptr: i32,
              len: i32|
              -> Result<(), wasmi::Error> {
            if !log_message(&mut caller, level_of(level), ptr, len)? {
                out_of_bounds(&mut caller)?;
            }
            finish(&mut caller, ())
        },
    )?;
    Ok(())
}

/// Logs the `len` bytes at `ptr` in the guest's memory as one guest log
/// line at `level` (escaped, at most [`MAX_LOG_LINE`] bytes and what is
/// left of the request's `max_log`), charging [`cost::LOG`] per byte
/// copied and [`cost::LOG_LINE`] per line written. `false`, with nothing
/// charged, when the message lies outside the guest's memory. The caller
/// ends the call ([`finish`]). `wasmgate.log` and `gojinn.host_log`.
pub(super) fn log_message(
    caller: &mut Caller<'_, HostState>,
    level: log::Level,
    ptr: i32,
    len: i32,
) -> Result<bool, wasmi::Error> {
    let (Ok(ptr), Ok(len)) = (u32::try_from(ptr), u32::try_from(len)) else {
        return Ok(false);
    };
    let Some((mem, state)) = guest_memory::of(caller) else {
        return Ok(false);
    };
    let Some(bytes) = usize::try_from(len)
        .ok()
        .and_then(|len| guest_memory::get(mem, ptr, len))
    else {
        return Ok(false);
    };
    // Copy only what can be logged: the rest is never looked at, and not
    // paid for.
    let keep = bytes.len().min(MAX_LOG_LINE).min(state.log.accepts(level));
    let bytes = bytes[..keep].to_vec();
    charge(caller, cost::LOG, keep as u64)?;
    let line = caller.data_mut().log.line(level, &bytes);
    charge_fuel(caller, line)?;
    Ok(true)
}
