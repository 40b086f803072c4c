//! wasmgate runs untrusted WebAssembly functions behind one small HTTP
//! server, built for ARM boards with little RAM and no JIT.
//!
//! ```text
//!  TCP accept ─► server::decode ─► router ─► cache ─► sandbox ─► abi::{native,wasi_json} ─► server::encode
//!  (bounded)     (size/time limits) (path,    (eager    (fresh Store,   (postcard | JSON on
//!                                    method)   compile,  fuel slices,    stdin/stdout)
//!                                              LRU)      memory limit)
//! ```
//!
//! One thread runs a `smol::LocalExecutor`; every connection is a task, and
//! a guest call yields between fuel slices so a busy function cannot stall
//! the others. Every limit is in [`limits`]; every error kind and its HTTP
//! status in [`error`].

#![forbid(unsafe_code)]

pub mod abi;
pub mod cache;
pub mod calibrate;
pub mod cli;
pub mod config;
pub mod error;
pub mod limits;
pub mod router;
pub mod runtime;
pub mod server;
