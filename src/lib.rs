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
//! Each worker thread (`workers`, one per core) runs a `smol::LocalExecutor`
//! sharing the handler; every connection is a task on one of them, and
//! a guest call yields between fuel slices so a busy function cannot stall
//! the others. Every limit is in `limits`; every error kind and its HTTP
//! status in `error`.
//!
//! Two modules are public: [`cli`], what the binary runs (`main.rs` calls
//! [`cli::parse`], then [`cli::execute`]), and [`internals`], the surface
//! of the benchmarks, fuzz targets, examples and integration tests, which
//! is not a stable API. There is no embedding API: the gateway, KV and
//! per-core executor issues will reshape `config`, `server` and `app`
//! before one is worth promising. Every other module is private, so code
//! nothing uses is reported dead; `cargo doc --document-private-items`
//! shows them all.

#![forbid(unsafe_code)]

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
mod signature;
mod store;
mod threads;
