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
