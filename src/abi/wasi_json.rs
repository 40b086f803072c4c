//! The wasi-json ABI (the Gojinn contract): a WASI preview1 command reads one
//! JSON request on stdin and writes one JSON response on stdout.
//!
//! Not implemented yet (issue 3): modules that speak it are refused at load
//! time with a clear error, so no request ever reaches this adapter.

use wasmi::{FuncType, Linker, Module, ValType};

use super::{Request, Response};
use crate::config::FunctionSpec;
use crate::error::CallError;
use crate::host::HostState;
use crate::sandbox::{Runtime, Sandbox};

/// The WASI import module.
pub const MODULE: &str = "wasi_snapshot_preview1";
/// The command entry point.
pub const START: &str = "_start";
/// Function exports a wasi-json module must have.
pub const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[(START, &[], &[])];

/// Per-request WASI state.
#[derive(Debug, Default)]
pub struct WasiState;

/// Defines the WASI functions in the linker.
pub fn add_to_linker(_linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    Ok(())
}

/// Whether a WASI import can be provided.
pub fn check_import(_name: &str, _ty: &FuncType) -> Result<(), &'static str> {
    Err("the wasi-json ABI is not supported by this build yet")
}

/// Creates the sandbox for a wasi-json call.
pub fn sandbox(
    runtime: &Runtime,
    module: &Module,
    function: &FunctionSpec,
    _request: &Request<'_>,
    state: HostState,
) -> Result<Sandbox, (CallError, u64)> {
    Sandbox::new(runtime, module, &function.limits, state)
}

/// Runs `_start` and parses stdout.
pub async fn call(_sandbox: &mut Sandbox) -> Result<Response, CallError> {
    Err(CallError::Trap(
        "the wasi-json ABI is not supported by this build yet".into(),
    ))
}
