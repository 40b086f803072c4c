//! What a row of the host-module table is, apart from the table
//! ([`HOST_MODULES`](super::HOST_MODULES)) so that the module files it
//! lists depend on this file, not on the table.

use wasmi::{FuncType, Linker, ValType};

use crate::runtime::state::HostState;

/// One import module the host provides.
pub struct HostModule {
    /// The name guests import it by.
    pub name: &'static str,
    /// Whether the function import `name` of type `ty` can be provided,
    /// and if not, why.
    pub check: fn(name: &str, ty: &FuncType) -> Result<(), &'static str>,
    /// Defines the module's functions in a linker.
    pub define: fn(&mut Linker<HostState>) -> Result<(), wasmi::Error>,
}

/// Whether `ty` has exactly these params and results.
pub fn signature_is(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    ty.params() == params && ty.results() == results
}

/// Why an import does not match a host function table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// No function of that name.
    Unknown,
    /// The name is there, with another signature.
    Signature,
}

/// Whether the import `name` of type `ty` is one of `functions`
/// (name, params, results).
pub fn check_in(
    functions: &[(&str, &[ValType], &[ValType])],
    name: &str,
    ty: &FuncType,
) -> Result<(), Mismatch> {
    let Some((_, params, results)) = functions.iter().find(|(n, ..)| *n == name) else {
        return Err(Mismatch::Unknown);
    };
    if !signature_is(ty, params, results) {
        return Err(Mismatch::Signature);
    }
    Ok(())
}
