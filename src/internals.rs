//! The surface the benchmarks, fuzz targets, examples and integration tests
//! reach the crate's internals through. **Not a stable API**: it changes
//! with the code it re-exports, and nothing outside this repository should
//! depend on it.
//!
//! The crate's modules are private so that their layering (see the crate
//! docs) is the compiler's to check and unused code shows up as dead. This
//! module re-exports exactly the items those callers use, grouped by the
//! layer they come from, so each item here names who needs it:
//!
//! | caller | uses |
//! |---|---|
//! | `benches/micro.rs` (divan) | [`abi`], [`cache`], [`config`], [`limits`], [`runtime`] |
//! | `benches/host.rs` (host function costs) | [`abi::wasi_json::sandbox`], [`calibrate`], [`runtime`], [`runtime::exchange`], [`store`] |
//! | `benches/load/baseline.rs` (example: native server) | [`http`], [`server`], [`limits::ServerLimits`] |
//! | `benches/load/probe.rs` (example: callgrind loop) | [`abi`], [`cache`], [`config`], [`runtime`] |
//! | `fuzz/fuzz_targets/http_request.rs` | [`http`], [`server::read_request`] |
//! | `fuzz/fuzz_targets/config.rs` | [`config::Config`] |
//! | `fuzz/fuzz_targets/toml.rs` (against the `toml` crate) | [`config::toml_to_json`] |
//! | `fuzz/fuzz_targets/{native_response,wasi_stdout}.rs` | `abi::{native,wasi_json}::decode_response` |
//! | `fuzz/fuzz_targets/module_load.rs` | [`abi`], [`cache`], [`config`], [`runtime`] |
//! | `tests/differential.rs` (against hyper) | [`http`] |
//! | `tests/host_work.rs` | [`runtime::cost`], [`runtime::MAX_IO_PER_CALL`] |

/// Request framing: the decoder a client of the server would see, and the
/// response type the baseline server writes.
pub mod http {
    pub use crate::http::{DecodeError, Decoder, Limits, Request, Response};
}

/// The server and function limits with their defaults.
pub mod limits {
    pub use crate::limits::{FunctionLimits, InstanceCost, PlainOutput, ServerLimits};
}

/// The configuration: `Config` for the config fuzz target, a function's
/// spec and ABI choice for everything that loads a module by hand.
pub mod config {
    pub use crate::config::{AbiChoice, Config, FunctionSpec};

    /// TOML text as the config parser reads it, as JSON (what a
    /// middleware's `config` becomes), or the syntax error; for the fuzz
    /// target that compares the parser with the `toml` crate.
    pub fn toml_to_json(text: &str) -> Result<String, String> {
        use crate::config::toml;
        let table = toml::parse(text).map_err(|e| e.message)?;
        let mut json = String::new();
        toml::to_json(&toml::Value::Table(table), &mut json);
        Ok(json)
    }
}

/// The executor driver and the connection loop's read and write steps, so
/// the baseline server frames HTTP exactly as wasmgate does.
pub mod server {
    pub use crate::server::{read_request, run_local, write};
}

/// The interpreter set-up, the per-call store data and sandbox, the
/// structural check of a module, and the host function costs.
pub mod runtime {
    pub use crate::runtime::imports::wasi_snapshot_preview1::MAX_IO_PER_CALL;
    pub use crate::runtime::state::{KvSlot, cost};
    pub use crate::runtime::structure::Shape;
    pub use crate::runtime::{HostState, Runtime, Sandbox};

    /// The exchange an http-wasm guest works on (`benches/host.rs` gives
    /// its sandboxes one for the `http_handler` cases).
    pub mod exchange {
        pub use crate::runtime::exchange::{Exchange, ExchangeLimits, Message};
    }
}

/// One guest call through either ABI, and each ABI's encoding.
pub mod abi {
    pub use crate::abi::{Abi, GuestRequest, GuestResponse, call};

    /// The native (postcard) ABI.
    pub mod native {
        pub use crate::abi::native::decode_response;
    }

    /// The WASI ABI: JSON on stdin and stdout.
    pub mod wasi_json {
        pub use crate::abi::wasi_json::{decode_output, decode_response, encode_request, sandbox};
    }
}

/// The KV store, for the KV host functions' cost (`benches/host.rs`).
pub mod store {
    pub use crate::store::{Durability, Quota, Store, Txn};
}

/// Loading and compiling a module as the cache does.
pub mod cache {
    pub use crate::cache::{Compiled, load};
    /// What a module's signature check found (`Compiled::signature`).
    pub use crate::signature::Status;
}

/// The fuel-per-millisecond measurement `wasmgate calibrate` prints.
pub mod calibrate {
    pub use crate::calibrate::measure;
}
