//! `hmac-verify`: webhook-style request signatures.
//!
//! The client sends `X-Signature: sha256=<hex>` (header name configurable),
//! the HMAC-SHA256 of the raw request body under a shared secret. The
//! middleware recomputes it and compares in constant time; a missing,
//! malformed or wrong signature is answered 401 with a JSON reason and never
//! reaches the next handler.
//!
//! Config: `secret` (string, required, non-empty; `secret_env = "VAR"` is
//! resolved into `secret` by wasmgate at config load), `header` (default
//! `x-signature`).

use crate::Reject;
use crate::config::{self, Config};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The parsed configuration.
#[derive(Debug)]
pub struct HmacVerify {
    secret: Vec<u8>,
    /// The request header that carries the signature (lowercase).
    pub header: String,
}

const NAME: &str = "hmac-verify";

/// The prefix of the signature header's value.
const PREFIX: &str = "sha256=";

impl HmacVerify {
    /// Parses the `get_config` payload.
    pub fn from_config(bytes: &[u8]) -> Result<HmacVerify, Reject> {
        Self::parse(bytes).map_err(|e| Reject::misconfigured(NAME, &e))
    }

    fn parse(bytes: &[u8]) -> Result<HmacVerify, String> {
        let value = config::parse(bytes)?;
        let c = Config::new(&value, &["secret", "header"])?;
        let secret = c
            .str("secret")?
            .filter(|s| !s.is_empty())
            .ok_or("`secret` (or `secret_env`) is required and must not be empty")?;
        let header = c.str("header")?.unwrap_or("x-signature");
        if header.is_empty() || !header.bytes().all(is_token_char) {
            return Err("`header` must be a header name".into());
        }
        Ok(HmacVerify {
            secret: secret.as_bytes().to_vec(),
            header: header.to_ascii_lowercase(),
        })
    }

    /// Checks the signature header's values against `body`.
    pub fn verify(&self, values: &[&[u8]], body: &[u8]) -> Result<(), Reject> {
        let unauthorized = |reason: String| Reject::new(401, "unauthorized", reason);
        let value = match values {
            [] => return Err(unauthorized(format!("missing {} header", self.header))),
            [one] => *one,
            _ => {
                return Err(unauthorized(format!(
                    "more than one {} header",
                    self.header
                )));
            }
        };
        let signature = value
            .strip_prefix(PREFIX.as_bytes())
            .and_then(decode_hex32)
            .ok_or_else(|| {
                unauthorized(format!(
                    "malformed {} header: expected sha256=<64 hex digits>",
                    self.header
                ))
            })?;
        let expected = mac(&self.secret, body)
            .ok_or_else(|| Reject::misconfigured(NAME, "unusable secret"))?;
        // Compared in constant time: every byte is looked at, whatever
        // differs.
        let diff = expected
            .iter()
            .zip(&signature)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(unauthorized("signature mismatch".into()));
        }
        Ok(())
    }
}

/// HMAC-SHA256 of `body` under `secret`. On wasm32 it is asked of the host
/// (`wasmgate.hmac_sha256`, the guest crate's `digest`: ~100,000 fewer
/// instructions per KiB interpreted) up to the host's 1 MiB per call, and
/// computed here past that; elsewhere (native tests) it is computed here.
fn mac(secret: &[u8], body: &[u8]) -> Option<[u8; 32]> {
    #[cfg(target_arch = "wasm32")]
    if secret.len().saturating_add(body.len()) <= HOST_MAX {
        return Some(wasmgate_guest::digest::hmac_sha256(secret, body));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(mac.finalize().into_bytes().into())
}

/// The most key and data bytes one `wasmgate.hmac_sha256` call takes.
#[cfg(target_arch = "wasm32")]
const HOST_MAX: usize = 1 << 20;

/// `sha256=<hex>` for `body` under `secret` (what a client sends).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut out = String::from(PREFIX);
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        mac.update(body);
        for byte in mac.finalize().into_bytes() {
            out.push_str(&format!("{byte:02x}"));
        }
    }
    out
}

/// RFC 9110 token characters (header names).
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decodes 64 hex digits (either case) into 32 bytes; `None` for any other
/// length or a non-hex digit.
fn decode_hex32(hex: &[u8]) -> Option<[u8; 32]> {
    let (pairs, []) = hex.as_chunks::<2>() else {
        return None;
    };
    let mut out = [0u8; 32];
    if pairs.len() != out.len() {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    for (byte, &[high, low]) in out.iter_mut().zip(pairs) {
        *byte = (digit(high)? * 16 + digit(low)?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mw(config: &str) -> HmacVerify {
        HmacVerify::from_config(config.as_bytes()).unwrap()
    }

    #[test]
    fn rfc4231_test_case_2_and_a_good_signature_passes() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let m = mw(r#"{"secret":"Jefe"}"#);
        assert_eq!(m.header, "x-signature");
        assert_eq!(
            m.verify(&[sig.as_bytes()], b"what do ya want for nothing?"),
            Ok(())
        );
        // Upper-case hex is accepted too.
        let upper = format!("sha256={}", sig[7..].to_ascii_uppercase());
        assert_eq!(
            m.verify(&[upper.as_bytes()], b"what do ya want for nothing?"),
            Ok(())
        );
    }

    #[test]
    fn wrong_missing_malformed_or_repeated_signatures_are_401() {
        let m = mw(r#"{"secret":"s3cret","header":"X-Hub-Signature-256"}"#);
        assert_eq!(m.header, "x-hub-signature-256");
        let good = sign(b"s3cret", b"body");
        let reason = |r: Result<(), Reject>| {
            let r = r.unwrap_err();
            assert_eq!(r.status, 401);
            assert_eq!(r.body["error"], "unauthorized");
            r.body["reason"].as_str().unwrap().to_string()
        };
        assert_eq!(
            reason(m.verify(&[good.as_bytes()], b"bodY")),
            "signature mismatch"
        );
        assert_eq!(
            reason(m.verify(&[sign(b"other", b"body").as_bytes()], b"body")),
            "signature mismatch"
        );
        assert_eq!(
            reason(m.verify(&[], b"body")),
            "missing x-hub-signature-256 header"
        );
        for bad in [&good[7..], "sha256=abc", "sha1=00", "sha256=zz", ""] {
            assert!(
                reason(m.verify(&[bad.as_bytes()], b"body")).starts_with("malformed"),
                "{bad}"
            );
        }
        let truncated = &good[..good.len() - 2];
        assert!(reason(m.verify(&[truncated.as_bytes()], b"body")).starts_with("malformed"));
        assert!(
            reason(m.verify(&[good.as_bytes(), good.as_bytes()], b"body"))
                .starts_with("more than one")
        );
    }

    #[test]
    fn config_errors_are_500_with_the_reason() {
        for (config, needle) in [
            ("{}", "`secret`"),
            (r#"{"secret":""}"#, "`secret`"),
            (
                r#"{"secret_env":"WEBHOOK_SECRET"}"#,
                "secret_env was not resolved",
            ),
            (r#"{"secret":"x","header":"bad header"}"#, "`header`"),
            (r#"{"secret":"x","hedaer":"x"}"#, "unknown config key"),
        ] {
            crate::assert_misconfigured(
                HmacVerify::from_config(config.as_bytes()),
                "hmac-verify",
                needle,
            );
        }
    }
}
