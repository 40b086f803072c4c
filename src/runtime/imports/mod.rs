//! The host modules a guest may import, one file each, and the one table
//! of them, [`HOST_MODULES`], that both the linker ([`define_all`], in
//! [`Runtime`](super::Runtime)) and ABI detection ([`check`], in
//! `abi::inspect`) read: a new host module is one file and one row here.

pub mod crypto;
pub mod gojinn;
mod host_module;
pub mod http_handler;
pub mod kv;
pub mod wasi_snapshot_preview1;
pub mod wasmgate;

pub use host_module::{HostModule, signature_is};
use wasmi::{FuncType, Linker};

use crate::runtime::state::HostState;

/// Every host module, in the order the linker defines them.
pub const HOST_MODULES: &[HostModule] = &[
    wasmgate::MODULE,
    wasi_snapshot_preview1::MODULE,
    gojinn::MODULE,
    http_handler::MODULE,
];

/// Why an import from a module not in [`HOST_MODULES`] is refused.
pub const UNKNOWN_MODULE: &str =
    "only `wasi_snapshot_preview1`, `wasmgate`, `gojinn` and `http_handler` imports are provided";

/// Whether the function `name` of the import module `module`, of type
/// `ty`, is provided; if not, why.
pub fn check(module: &str, name: &str, ty: &FuncType) -> Result<(), &'static str> {
    match HOST_MODULES.iter().find(|host| host.name == module) {
        Some(host) => (host.check)(name, ty),
        None => Err(UNKNOWN_MODULE),
    }
}

/// Defines the functions of every host module in `linker`.
pub fn define_all(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    for host in HOST_MODULES {
        (host.define)(linker)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_every_host_module() {
        for host in HOST_MODULES {
            assert!(UNKNOWN_MODULE.contains(&format!("`{}`", host.name)));
        }
    }
}
