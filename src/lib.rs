//! wasmgate runs untrusted WebAssembly functions behind one small HTTP
//! server, built for ARM boards with little RAM and no JIT.
//!
//! ```text
//! server ─► http::decode ─► app: router ─► cache ─► runtime ─► abi::{native,wasi_json} ─► http::encode
//! (accept,  (size/time      (path,         (eager   (fresh Store, (postcard | JSON on
//!  caps)     limits)         method)        compile, fuel slices,  stdin/stdout)
//!                                           LRU)     memory limit)
//! ```
//!
//! `http` is framing only (usable by a client too); `server` runs any
//! `server::Handler`; `app` is the handler that routes, admits, calls the
//! guest and checks its response.
//!
//! One thread runs a `smol::LocalExecutor`; every connection is a task, and
//! a guest call yields between fuel slices so a busy function cannot stall
//! the others. Every limit is in `limits`; every error kind and its HTTP
//! status in `error`.

#![forbid(unsafe_code)]

// Public: `cli` is what the binary runs (`main.rs`: `cli::parse`, then
// `cli::execute`); `internals` is the documented surface of the benchmarks,
// fuzz targets, examples and integration tests. Nothing else is public:
// there is no embedding API yet, and the gateway, KV and per-core executor
// issues will reshape `config`, `server` and `app` before one is worth
// promising. Everything below is crate-private, so unused code is dead code.
pub mod cli;
pub mod internals;

mod abi;
mod app;
mod cache;
mod calibrate;
mod config;
mod error;
mod http;
mod limits;
mod runtime;
mod server;
