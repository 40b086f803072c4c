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

/// Whether `module` imports a KV host function (its requests then get a
/// transaction). Found once when the module loads (`Compiled::kv`).
pub fn uses_kv(module: &wasmi::Module) -> bool {
    module
        .imports()
        .any(|i| matches!(i.ty(), wasmi::ExternType::Func(_)) && is_kv(i.module(), i.name()))
}

/// Whether the module file `bytes` imports a KV host function, read from
/// its import section alone (no validation, no compilation): what the
/// server asks at start of every configured module, to open the store
/// then. A file that is not a readable module answers `false` (it fails
/// later, when it loads, with the precise error).
pub fn file_uses_kv(bytes: &[u8]) -> bool {
    use wasmparser::{Parser, Payload, TypeRef};
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ImportSection(imports)) => {
                return imports.into_iter().any(|import| {
                    import
                        .is_ok_and(|i| matches!(i.ty, TypeRef::Func(_)) && is_kv(i.module, i.name))
                });
            }
            // The import section comes before every section that
            // defines something; a module without one imports nothing.
            Ok(
                Payload::FunctionSection(_)
                | Payload::TableSection(_)
                | Payload::MemorySection(_)
                | Payload::GlobalSection(_)
                | Payload::ExportSection(_)
                | Payload::CodeSectionStart { .. }
                | Payload::DataSection(_),
            )
            | Err(_) => return false,
            Ok(_) => {}
        }
    }
    false
}

/// Whether the function `name` of import module `module` is a KV host
/// function.
fn is_kv(module: &str, name: &str) -> bool {
    match module {
        wasmgate::NAME => kv::WASMGATE_FUNCTIONS.iter().any(|(n, ..)| *n == name),
        gojinn::NAME => name.starts_with("host_kv_"),
        _ => false,
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
    fn a_module_file_uses_kv_only_if_its_import_section_names_a_kv_function() {
        let uses = |wat: &str| file_uses_kv(&wat::parse_str(wat).unwrap());
        assert!(uses(
            r#"(module (import "wasmgate" "kv_get" (func (param i32 i32 i32 i32) (result i32))))"#
        ));
        assert!(uses(
            r#"(module (import "gojinn" "host_kv_set" (func (param i32 i32 i32 i32))))"#
        ));
        // Not an import of the KV function: a data segment holding its
        // name as an import would spell it, a host module without KV, a
        // memory import, no import at all.
        assert!(!uses(
            r#"(module (memory 1) (data (i32.const 0) "\06kv_get\08wasmgate"))"#
        ));
        assert!(!uses(
            r#"(module (import "wasi_snapshot_preview1" "kv_get" (func)))"#
        ));
        assert!(!uses(r#"(module (import "wasmgate" "kv_get" (memory 1)))"#));
        assert!(!uses("(module)"));
        assert!(!file_uses_kv(b"not a module"));
        assert!(!file_uses_kv(b""));
    }

    #[test]
    fn the_refusal_names_every_host_module() {
        for host in HOST_MODULES {
            assert!(UNKNOWN_MODULE.contains(&format!("`{}`", host.name)));
        }
    }
}
