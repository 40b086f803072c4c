//! The `wasmgate` import module: the native ABI's host functions (`log`).

use wasmi::{Caller, Linker};

use crate::error::CallError;
use crate::runtime::state::{
    HostState, MAX_LOG_LINE, charge, charge_fuel, cost, finish, guest_slice,
};

/// The import module of native host functions.
pub const MODULE: &str = "wasmgate";

/// Host functions in [`MODULE`] and their signatures (params, results), as
/// `check` reports them and the loader verifies them.
pub const FUNCTIONS: &[(&str, &[wasmi::ValType], &[wasmi::ValType])] = {
    use wasmi::ValType::I32;
    &[("log", &[I32, I32, I32], &[])]
};

/// A linker with the `wasmgate` host functions defined.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        MODULE,
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
            let bytes = guest_slice(&caller, ptr, len).ok_or_else(|| {
                wasmi::Error::host(CallError::Trap(
                    "wasmgate.log: message is out of bounds".into(),
                ))
            })?;
            // Copy only what can be logged: the rest is never looked at,
            // and not paid for.
            let keep = bytes
                .len()
                .min(MAX_LOG_LINE)
                .min(caller.data().log.accepts(level));
            let bytes = bytes[..keep].to_vec();
            charge(&mut caller, cost::LOG, keep as u64)?;
            let line = caller.data_mut().log.line(level, &bytes);
            charge_fuel(&mut caller, line)?;
            finish(&mut caller, ())
        },
    )?;
    Ok(())
}
