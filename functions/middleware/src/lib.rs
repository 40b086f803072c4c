//! Example http-wasm middleware for wasmgate's gateway mode.
//!
//! Each middleware is a module of this library holding its logic as plain
//! Rust functions (config parsing, checks, transformations), tested natively
//! by `cargo test`. The http-wasm glue that reads the request through the
//! `http_handler` host functions and writes the answer lives in
//! `src/bin/NAME.rs` and in [`glue`], compiled for wasm32 only.
//!
//! Configuration arrives as JSON through `get_config` (wasmgate turns the
//! `[[middleware]]` `config` TOML table into JSON). A configuration error is
//! found once, in `_start`; the middleware then answers every request with
//! 500 and the reason (it fails closed) and logs it.

pub mod config;
pub mod cors;
pub mod hmac_verify;
pub mod json_schema;
pub mod jwt_verify;
pub mod rate_limit;
pub mod waf;
pub mod xml_to_json;

#[cfg(target_arch = "wasm32")]
pub mod glue;

use serde_json::{Value, json};

/// An answer a middleware gives instead of passing the request on.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// HTTP status code.
    pub status: u16,
    /// Extra response headers (lowercase name, value).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Value,
}

impl Reject {
    /// A JSON error `{"error": kind, "reason": reason}` with `status`.
    pub fn new(status: u16, kind: &str, reason: impl Into<String>) -> Reject {
        Reject {
            status,
            headers: Vec::new(),
            body: json!({ "error": kind, "reason": reason.into() }),
        }
    }

    /// 500 for a configuration the middleware cannot work with.
    pub fn misconfigured(middleware: &str, reason: &str) -> Reject {
        Reject::new(
            500,
            "middleware-misconfigured",
            format!("{middleware}: {reason}"),
        )
    }

    /// The body as bytes (compact JSON).
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body.to_string().into_bytes()
    }
}

/// Asserts that `result` (a `from_config`) is the 500 misconfiguration
/// answer of middleware `name`, its reason containing `needle`.
#[cfg(test)]
pub(crate) fn assert_misconfigured<T: std::fmt::Debug>(
    result: Result<T, Reject>,
    name: &str,
    needle: &str,
) {
    let r = result.unwrap_err();
    assert_eq!(r.status, 500);
    assert_eq!(r.body["error"], "middleware-misconfigured");
    let reason = r.body["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("{name}: ")), "{reason}");
    assert!(reason.contains(needle), "{needle}: {reason}");
}
