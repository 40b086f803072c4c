//! The `wasmgate` import module: the native ABI's host functions (`log`).

use wasmi::{Caller, FuncType, Linker};

use crate::error::CallError;
use crate::runtime::imports::host_module::{HostModule, signature_is};
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
    let Some((_, params, results)) = FUNCTIONS.iter().find(|(n, ..)| *n == name) else {
        return Err("no such wasmgate host function");
    };
    if !signature_is(ty, params, results) {
        return Err("wrong signature for this wasmgate host function");
    }
    Ok(())
}

/// Defines the `wasmgate` host functions in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        NAME,
        "log",
        |mut caller: Caller<'_, HostState>,
         level: i32,
         ptr: i32,
         len: i32|
         -> Result<(), wasmi::Error> {
            let level = match level {
                1 => log::Level::Error,
                2 => log::Level::Warn,
                3 => log::Level::Info,
                4 => log::Level::Debug,
                _ => log::Level::Trace,
            };
            let (Ok(ptr), Ok(len)) = (u32::try_from(ptr), u32::try_from(len)) else {
                return Err(out_of_bounds());
            };
            let (mem, state) = guest_memory::of(&mut caller).ok_or_else(out_of_bounds)?;
            let bytes = usize::try_from(len)
                .ok()
                .and_then(|len| guest_memory::get(mem, ptr, len))
                .ok_or_else(out_of_bounds)?;
            // Copy only what can be logged: the rest is never looked at,
            // and not paid for.
            let keep = bytes.len().min(MAX_LOG_LINE).min(state.log.accepts(level));
            let bytes = bytes[..keep].to_vec();
            charge(&mut caller, cost::LOG, keep as u64)?;
            let line = caller.data_mut().log.line(level, &bytes);
            charge_fuel(&mut caller, line)?;
            finish(&mut caller, ())
        },
    )?;
    Ok(())
}

/// The trap of a `log` call whose message lies outside the guest's memory.
fn out_of_bounds() -> wasmi::Error {
    wasmi::Error::host(CallError::Trap(
        "wasmgate.log: message is out of bounds".into(),
    ))
}
