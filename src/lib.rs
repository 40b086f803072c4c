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
//! the others. Every limit is in [`limits`]; every error kind and its HTTP
//! status in [`error`].

#![forbid(unsafe_code)]

pub mod abi;
pub mod app;
pub mod cache;
pub mod calibrate;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod limits;
pub mod runtime;
pub mod server;
