//! Running one guest call: the thread's CPU clock ([`clock`]), the
//! per-request host state at the bottom ([`state`]), the host modules a
//! guest may import ([`imports`]), the engine and linker ([`engine`]), a
//! module's structural limits ([`structure`]) and the sandbox of one
//! request ([`sandbox`]). The ABIs
//! (`abi/`) sit on top and turn requests into guest input and guest
//! output into responses; nothing here knows them.

pub mod clock;
pub mod engine;
pub mod imports;
pub mod sandbox;
pub mod state;
pub mod structure;

pub use engine::Runtime;
pub use sandbox::Sandbox;
pub use state::{HostState, escape};
