//! The `gojinn` import module: the host functions of Gojinn's SDKs, so
//! that modules built against them instantiate. `host_log` writes to the
//! guest log; `host_kv_set` and `host_kv_get` use the function's KV
//! namespace ([`kv`](super::kv)), `host_kv_get` with whichever result type
//! (`i32` or `i64`) the module declares, defined in the module's own linker
//! ([`define_stubs`]). Every other `gojinn` function (`host_db_query`,
//! `host_ask_ai`…: databases and AI are not provided here) links
//! to a stub of the type the module declares, which returns an error value
//! and says so in the log once per module load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmi::{Caller, ExternType, F32, F64, FuncType, Linker, Module, Val, ValType};

use super::wasmgate::define_log;
use crate::runtime::imports::host_module::{HostModule, signature_is};
use crate::runtime::state::{HostState, charge, cost, finish};

/// The import module's name.
pub const NAME: &str = "gojinn";

/// The module's row in [`HOST_MODULES`](super::HOST_MODULES).
pub const MODULE: HostModule = HostModule {
    name: NAME,
    check: check_import,
    define: add_to_linker,
};

/// `gojinn` functions provided here and their signatures (params, results),
/// as Gojinn's host defines them: `host_log(level, ptr, len)`,
/// `host_kv_set(key_ptr, key_len, val_ptr, val_len)`.
pub const FUNCTIONS: &[(&str, &[ValType], &[ValType])] = {
    use ValType::I32;
    &[
        ("host_log", &[I32, I32, I32], &[]),
        ("host_kv_set", &[I32, I32, I32, I32], &[]),
    ]
};

/// `host_kv_get`: defined per module, with the result type it declares.
pub const KV_GET: &str = "host_kv_get";

/// Whether `ty` is a `host_kv_get` wasmgate provides: four `i32`s to one
/// `i32` (Gojinn's host, its Go SDK) or one `i64` (its Rust SDK,
/// `functions/kv`).
fn is_kv_get(ty: &FuncType) -> bool {
    ty.params() == super::kv::GOJINN_KV_GET_PARAMS
        && matches!(ty.results(), [ValType::I32] | [ValType::I64])
}

/// Gojinn's `host_log` level for errors (its Rust SDK's `logger::error`);
/// Gojinn logs every other level as info (the SDK's `logger::info` is 1).
const LEVEL_ERROR: i32 = 3;

/// Whether a `gojinn` import can be provided: a function of [`FUNCTIONS`]
/// with its signature, or any other name, stubbed, if its result is at
/// most one number (a stub must have an error value to return).
fn check_import(name: &str, ty: &FuncType) -> Result<(), &'static str> {
    if name == KV_GET {
        return match is_kv_get(ty) {
            true => Ok(()),
            false => Err("host_kv_get must take four i32 and return one i32 or i64"),
        };
    }
    match FUNCTIONS.iter().find(|(n, ..)| *n == name) {
        Some((_, params, results)) if signature_is(ty, params, results) => Ok(()),
        Some(_) => Err("wrong signature for this gojinn host function"),
        None => match ty.results() {
            [] | [ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64] => Ok(()),
            _ => Err("not provided, and a stub can return at most one number"),
        },
    }
}

/// Defines `gojinn.host_log` in `linker`. Like Gojinn, a message outside
/// the guest's memory is not logged and does not trap.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    super::kv::add_gojinn_set(linker)?;
    define_log(
        linker,
        NAME,
        "host_log",
        |level| match level {
            LEVEL_ERROR => log::Level::Error,
            _ => log::Level::Info,
        },
        |caller| charge(caller, cost::LOG, 0),
    )
}

/// The `gojinn` function imports of `module` that link to a stub: each
/// name (once) with the type the module declares.
pub fn stubs(module: &Module) -> Vec<(String, FuncType)> {
    let mut stubs: Vec<(String, FuncType)> = Vec::new();
    for import in module.imports() {
        let (ExternType::Func(ty), NAME) = (import.ty(), import.module()) else {
            continue;
        };
        let name = import.name();
        if name != KV_GET
            && FUNCTIONS.iter().all(|(n, ..)| *n != name)
            && stubs.iter().all(|(n, _)| n != name)
        {
            stubs.push((name.to_owned(), ty.clone()));
        }
    }
    stubs
}

/// What a stub of type `ty` returns: all bits set (-1 for an integer, a NaN
/// for a float), as Gojinn's `host_kv_get` answers a failure; nothing for
/// a function without a result.
pub fn error_value(ty: &FuncType) -> Option<Val> {
    ty.results().first().map(|result| match result {
        ValType::I64 => Val::I64(-1),
        ValType::F32 => Val::F32(F32::from_bits(u32::MAX)),
        ValType::F64 => Val::F64(F64::from_bits(u64::MAX)),
        // `check_import` lets only numbers through.
        _ => Val::I32(-1),
    })
}

/// The type `module` imports `host_kv_get` with, if it does: it is
/// defined in the module's own linker, like the stubs.
pub fn kv_get(module: &Module) -> Option<FuncType> {
    module.imports().find_map(|import| match import.ty() {
        ExternType::Func(ty) if import.module() == NAME && import.name() == KV_GET => {
            Some(ty.clone())
        }
        _ => None,
    })
}

/// Defines `module`'s `host_kv_get` ([`kv_get`]) and a stub in `linker`
/// for every import of `module` that [`stubs`] lists. Each charges [`cost::STUB`] per call, returns its
/// [`error_value`], and logs a warning the first time it is called after
/// this definition (once per module load: the linker is the module's).
/// Returns how many it defined.
pub fn define_stubs(
    linker: &mut Linker<HostState>,
    module: &Module,
) -> Result<usize, wasmi::Error> {
    if let Some(ty) = kv_get(module) {
        super::kv::define_gojinn_get(linker, &ty)?;
    }
    let stubs = stubs(module);
    for (name, ty) in &stubs {
        let value = error_value(ty);
        let logged = Arc::new(AtomicBool::new(false));
        let message: Arc<str> = Arc::from(format!(
            "{NAME}.{} is not provided by wasmgate; the call returned {}",
            name.escape_debug(),
            show(value.as_ref())
        ));
        linker.func_new(
            NAME,
            name,
            ty.clone(),
            move |mut caller: Caller<'_, HostState>, _params: &[Val], results: &mut [Val]| {
                charge(&mut caller, cost::STUB, 0)?;
                if !logged.swap(true, Ordering::Relaxed) {
                    caller.data().log.host_warning(&message);
                }
                let value = finish(&mut caller, value.clone())?;
                if let (Some(slot), Some(value)) = (results.first_mut(), value) {
                    *slot = value;
                }
                Ok(())
            },
        )?;
    }
    Ok(stubs.len())
}

/// A stub's error value as `check` and the log show it.
pub fn show(value: Option<&Val>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(Val::I32(v)) => v.to_string(),
        Some(Val::I64(v)) => v.to_string(),
        Some(_) => "NaN".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_return_all_bits_set_of_their_one_numeric_result() {
        use ValType::{F32 as F, F64 as D, FuncRef, I32 as I, I64 as L};
        let ty = |results: &[ValType]| FuncType::new([I, I], results.to_vec());
        assert!(matches!(error_value(&ty(&[I])), Some(Val::I32(-1))));
        assert!(matches!(error_value(&ty(&[L])), Some(Val::I64(-1))));
        let Some(Val::F32(f)) = error_value(&ty(&[F])) else {
            panic!("f32")
        };
        assert_eq!(f.to_bits(), u32::MAX);
        let Some(Val::F64(d)) = error_value(&ty(&[D])) else {
            panic!("f64")
        };
        assert_eq!(d.to_bits(), u64::MAX);
        assert!(error_value(&ty(&[])).is_none());
        assert_eq!(show(error_value(&ty(&[F])).as_ref()), "NaN");
        for ok in [&[][..], &[I], &[L], &[F], &[D]] {
            assert!(check_import("host_db_query", &ty(ok)).is_ok(), "{ok:?}");
        }
        for bad in [&[I, I][..], &[FuncRef]] {
            assert!(check_import("host_db_query", &ty(bad)).is_err(), "{bad:?}");
        }
        assert!(check_import("host_log", &FuncType::new([I, I, I], [])).is_ok());
        assert!(check_import("host_kv_get", &FuncType::new([I, I, I, I], [I])).is_ok());
        assert!(check_import("host_kv_get", &FuncType::new([I, I, I, I], [L])).is_ok());
        assert!(check_import("host_kv_get", &FuncType::new([I, I, I], [L])).is_err());
        assert!(check_import("host_kv_get", &FuncType::new([I, I, I, I], [F])).is_err());
        assert!(check_import("host_log", &FuncType::new([I, I], [])).is_err());
    }
}
