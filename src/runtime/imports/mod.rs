//! The host modules a guest may import, one file each.

pub mod wasi_snapshot_preview1;
pub mod wasmgate;
