//! Running one guest call: the thread's CPU clock ([`clock`]), the
//! per-request host state at the bottom ([`state`]), the host modules a
//! guest may import ([`imports`]), the engine and linker ([`engine`]), a
//! module's structural limits ([`structure`]), the recorded inputs of
//! a crash dump and its replay ([`tape`]), the sandbox of one request
//! ([`sandbox`]), and which toolchain built a module ([`toolchain`], for
//! `wasmgate check`'s advice). The ABIs
//! (`abi/`) sit on top and turn requests into guest input and guest
//! output into responses; nothing here knows them.

pub mod clock;
pub mod digest;
pub mod engine;
pub mod exchange;
pub mod imports;
pub mod sandbox;
pub mod snapshot;
pub mod state;
pub mod structure;
pub mod tape;
pub mod toolchain;

pub use engine::Runtime;
pub use sandbox::Sandbox;
pub use state::{HostState, escape};
