//! `jwt-verify`: `Authorization: Bearer <JWT>` (RFC 7519) with HS256 or
//! ES256 signatures (RFC 7518 §3.2, §3.4).
//!
//! The token's `alg` must be one the config has a key for (`none` and every
//! other algorithm are refused); the signature is checked before any claim
//! is trusted; `exp` and `nbf` (NumericDate seconds) are checked against the
//! clock with `leeway` seconds of tolerance. A token that passes has its
//! `sub` claim passed on in a request header (`x-jwt-sub` by default); the
//! client's own value of that header is always removed first. Every failure
//! is 401 with the reason and `WWW-Authenticate: Bearer error="invalid_token"`.
//!
//! Config: `hs256_secret` (string; `hs256_secret_env` resolved by wasmgate),
//! `es256_public_key` (PEM `PUBLIC KEY`, P-256) or `es256_jwk`
//! (`{"kty":"EC","crv":"P-256","x":…,"y":…}`) — at least one key;
//! `sub_header` (default `x-jwt-sub`), `leeway` (seconds, default 0, at
//! most 600), `require_exp` (default true).

use crate::Reject;
use crate::config::{self, Config};
use crate::hmac_verify::is_token_char;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::Sha256;

const NAME: &str = "jwt-verify";

/// The parsed configuration.
#[derive(Debug)]
pub struct JwtVerify {
    hs256: Option<Vec<u8>>,
    es256: Option<VerifyingKey>,
    /// The request header that carries `sub` on (lowercase).
    pub sub_header: String,
    leeway: u64,
    require_exp: bool,
}

/// A verified token's claims that the middleware passes on.
#[derive(Debug, PartialEq)]
pub struct Verified {
    /// The `sub` claim, if the token has one.
    pub sub: Option<String>,
}

/// The SubjectPublicKeyInfo DER prefix of an uncompressed P-256 key
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes): the 65-byte SEC1
/// point follows it.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl JwtVerify {
    /// Parses the `get_config` payload.
    pub fn from_config(bytes: &[u8]) -> Result<JwtVerify, Reject> {
        Self::parse(bytes).map_err(|e| Reject::misconfigured(NAME, &e))
    }

    fn parse(bytes: &[u8]) -> Result<JwtVerify, String> {
        let value = config::parse(bytes)?;
        let c = Config::new(
            &value,
            &[
                "hs256_secret",
                "es256_public_key",
                "es256_jwk",
                "sub_header",
                "leeway",
                "require_exp",
            ],
        )?;
        let hs256 = match c.str("hs256_secret")? {
            Some("") => return Err("`hs256_secret` must not be empty".into()),
            other => other.map(|s| s.as_bytes().to_vec()),
        };
        let es256 = match (c.str("es256_public_key")?, c.get("es256_jwk")) {
            (Some(_), Some(_)) => {
                return Err("give `es256_public_key` or `es256_jwk`, not both".into());
            }
            (Some(pem), None) => Some(key_from_pem(pem)?),
            (None, Some(jwk)) => Some(key_from_jwk(jwk)?),
            (None, None) => None,
        };
        if hs256.is_none() && es256.is_none() {
            return Err(
                "no key: give `hs256_secret` (or `hs256_secret_env`), `es256_public_key` or `es256_jwk`"
                    .into(),
            );
        }
        let sub_header = c.str("sub_header")?.unwrap_or("x-jwt-sub");
        if sub_header.is_empty() || !sub_header.bytes().all(is_token_char) {
            return Err("`sub_header` must be a header name".into());
        }
        Ok(JwtVerify {
            hs256,
            es256,
            sub_header: sub_header.to_ascii_lowercase(),
            leeway: c.uint("leeway", 0, 600)?,
            require_exp: c.bool("require_exp", true)?,
        })
    }

    /// Verifies the `Authorization` header values at `now` (seconds since
    /// the Unix epoch).
    pub fn verify(&self, authorization: &[&[u8]], now: u64) -> Result<Verified, Reject> {
        self.check(authorization, now).map_err(|reason| {
            let mut r = Reject::new(401, "unauthorized", reason);
            r.headers.push((
                "www-authenticate",
                "Bearer error=\"invalid_token\"".to_string(),
            ));
            r
        })
    }

    fn check(&self, authorization: &[&[u8]], now: u64) -> Result<Verified, String> {
        let value = match authorization {
            [] => return Err("missing bearer token".into()),
            [one] => *one,
            _ => return Err("more than one Authorization header".into()),
        };
        let value = std::str::from_utf8(value).map_err(|_| "malformed Authorization header")?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err("missing bearer token".into()),
        };
        let mut parts = token.split('.');
        let (Some(header64), Some(payload64), Some(signature64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token: expected three dot-separated parts".into());
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("malformed token: {what} is not base64url"))
        };
        let header: Value = serde_json::from_slice(&decode(header64, "header")?)
            .map_err(|_| "malformed token: header is not JSON")?;
        let signature = decode(signature64, "signature")?;
        let signed = &token.as_bytes()[..header64.len() + 1 + payload64.len()];
        match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => {
                let secret = self.hs256.as_ref().ok_or("algorithm HS256 not accepted")?;
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "unusable HS256 secret")?;
                mac.update(signed);
                mac.verify_slice(&signature)
                    .map_err(|_| "invalid signature")?;
            }
            Some("ES256") => {
                let key = self.es256.as_ref().ok_or("algorithm ES256 not accepted")?;
                // JWS ES256 signatures are r || s, 32 bytes each (not DER).
                let signature =
                    Signature::from_slice(&signature).map_err(|_| "invalid signature")?;
                key.verify(signed, &signature)
                    .map_err(|_| "invalid signature")?;
            }
            Some(alg) => return Err(format!("algorithm {alg} not accepted")),
            None => return Err("malformed token: header has no alg".into()),
        }
        let claims: Value = serde_json::from_slice(&decode(payload64, "payload")?)
            .map_err(|_| "malformed token: payload is not JSON")?;
        if !claims.is_object() {
            return Err("malformed token: payload is not a JSON object".into());
        }
        match numeric_date(&claims, "exp")? {
            Some(exp) if now >= exp.saturating_add(self.leeway) => {
                return Err("token expired".into());
            }
            None if self.require_exp => return Err("token has no exp claim".into()),
            _ => {}
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")?
            && now.saturating_add(self.leeway) < nbf
        {
            return Err("token not yet valid (nbf)".into());
        }
        let sub = match claims.get("sub") {
            None => None,
            Some(Value::String(s)) if is_header_value(s) => Some(s.clone()),
            Some(_) => return Err("malformed token: sub must be a printable string".into()),
        };
        Ok(Verified { sub })
    }
}

/// A NumericDate claim as whole seconds (fractions rounded down; negative
/// dates count as 0).
fn numeric_date(claims: &Value, name: &str) -> Result<Option<u64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(n), _) => Ok(Some(n)),
            (None, Some(f)) if f.is_finite() => Ok(Some(if f <= 0.0 {
                0
            } else if f >= u64::MAX as f64 {
                u64::MAX
            } else {
                f as u64
            })),
            _ => Err(format!("malformed token: {name} is not a number")),
        },
    }
}

/// Visible ASCII and spaces: safe to pass on as a header value.
fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// A P-256 key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block.
fn key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    const BAD: &str = "`es256_public_key` must be a PEM \"PUBLIC KEY\" block of a P-256 key";
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or(BAD)?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(base64).map_err(|_| BAD)?;
    let point = der.strip_prefix(&P256_SPKI_PREFIX[..]).ok_or(BAD)?;
    VerifyingKey::from_sec1_bytes(point).map_err(|_| BAD.to_string())
}

/// A P-256 key from a JWK (RFC 7518 §6.2.1).
fn key_from_jwk(jwk: &Value) -> Result<VerifyingKey, String> {
    const BAD: &str = "`es256_jwk` must be {\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":…,\"y\":…}";
    let field = |name: &str| jwk.get(name).and_then(Value::as_str).ok_or(BAD);
    if field("kty")? != "EC" || field("crv")? != "P-256" {
        return Err(BAD.into());
    }
    let coordinate = |name: &str| -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD.decode(field(name)?).map_err(|_| BAD)?;
        if bytes.len() == 32 {
            Ok(bytes)
        } else {
            Err(BAD.into())
        }
    };
    let mut point = vec![0x04];
    point.extend(coordinate("x")?);
    point.extend(coordinate("y")?);
    VerifyingKey::from_sec1_bytes(&point).map_err(|_| "`es256_jwk` is not a P-256 point".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    const NOW: u64 = 1_800_000_000;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn hs256(secret: &[u8], header: &str, claims: &str) -> String {
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn signing_key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn es256(claims: &str) -> String {
        let header = r#"{"alg":"ES256","typ":"JWT"}"#;
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature: Signature = signing_key().sign(signed.as_bytes());
        format!("{signed}.{}", b64(&signature.to_bytes()))
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn reason(r: Result<Verified, Reject>) -> String {
        let r = r.unwrap_err();
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"], "unauthorized");
        assert_eq!(
            r.headers,
            vec![("www-authenticate", "Bearer error=\"invalid_token\"".into())]
        );
        r.body["reason"].as_str().unwrap().to_string()
    }

    #[test]
    fn hs256_token_passes_and_sub_is_passed_on() {
        let m = JwtVerify::from_config(br#"{"hs256_secret":"k"}"#).unwrap();
        let token = hs256(
            b"k",
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &format!(r#"{{"sub":"alice","exp":{}}}"#, NOW + 60),
        );
        let auth = bearer(&token);
        assert_eq!(
            m.verify(&[auth.as_bytes()], NOW),
            Ok(Verified {
                sub: Some("alice".into())
            })
        );
        assert_eq!(m.sub_header, "x-jwt-sub");
        // The scheme is case-insensitive.
        let auth = format!("bearer {token}");
        assert!(m.verify(&[auth.as_bytes()], NOW).is_ok());
    }

    #[test]
    fn hs256_wrong_key_tampered_payload_and_alg_confusion_are_refused() {
        let m = JwtVerify::from_config(br#"{"hs256_secret":"k"}"#).unwrap();
        let claims = format!(r#"{{"sub":"alice","exp":{}}}"#, NOW + 60);
        let wrong = hs256(b"other", r#"{"alg":"HS256"}"#, &claims);
        assert_eq!(
            reason(m.verify(&[bearer(&wrong).as_bytes()], NOW)),
            "invalid signature"
        );
        let good = hs256(b"k", r#"{"alg":"HS256"}"#, &claims);
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = b64(format!(r#"{{"sub":"root","exp":{}}}"#, NOW + 60).as_bytes());
        parts[1] = &forged;
        assert_eq!(
            reason(m.verify(&[bearer(&parts.join(".")).as_bytes()], NOW)),
            "invalid signature"
        );
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.as_bytes()));
        assert_eq!(
            reason(m.verify(&[bearer(&none).as_bytes()], NOW)),
            "algorithm none not accepted"
        );
        // An ES256 token is refused when no ES256 key is configured.
        assert_eq!(
            reason(m.verify(&[bearer(&es256(&claims)).as_bytes()], NOW)),
            "algorithm ES256 not accepted"
        );
    }

    #[test]
    fn exp_and_nbf_are_checked_against_the_clock_with_leeway() {
        let m = JwtVerify::from_config(br#"{"hs256_secret":"k"}"#).unwrap();
        let token = |claims: String| bearer(&hs256(b"k", r#"{"alg":"HS256"}"#, &claims));
        let expired = token(format!(r#"{{"exp":{NOW}}}"#));
        assert_eq!(
            reason(m.verify(&[expired.as_bytes()], NOW)),
            "token expired"
        );
        assert!(m.verify(&[expired.as_bytes()], NOW - 1).is_ok());
        let early = token(format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 100, NOW + 10));
        assert_eq!(
            reason(m.verify(&[early.as_bytes()], NOW)),
            "token not yet valid (nbf)"
        );
        assert!(m.verify(&[early.as_bytes()], NOW + 10).is_ok());
        assert_eq!(
            reason(m.verify(&[token("{}".into()).as_bytes()], NOW)),
            "token has no exp claim"
        );
        let bad = token(r#"{"exp":"tomorrow"}"#.into());
        assert_eq!(
            reason(m.verify(&[bad.as_bytes()], NOW)),
            "malformed token: exp is not a number"
        );
        let lenient =
            JwtVerify::from_config(br#"{"hs256_secret":"k","leeway":30,"require_exp":false}"#)
                .unwrap();
        assert!(lenient.verify(&[expired.as_bytes()], NOW + 29).is_ok());
        assert_eq!(
            reason(lenient.verify(&[expired.as_bytes()], NOW + 30)),
            "token expired"
        );
        assert!(lenient.verify(&[early.as_bytes()], NOW - 20).is_ok());
        assert!(
            lenient
                .verify(&[token("{}".into()).as_bytes()], NOW)
                .is_ok()
        );
    }

    #[test]
    fn es256_with_pem_or_jwk_key() {
        let point = signing_key().verifying_key().to_sec1_point(false);
        let point = point.as_bytes();
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(point);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &STANDARD.encode(&der)[..64],
            &STANDARD.encode(&der)[64..]
        );
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        let claims = format!(r#"{{"sub":"dev-7","exp":{}}}"#, NOW + 60);
        for config in [
            serde_json::json!({ "es256_public_key": pem, "sub_header": "X-User" }),
            serde_json::json!({ "es256_jwk": jwk, "sub_header": "X-User" }),
        ] {
            let m = JwtVerify::from_config(config.to_string().as_bytes()).unwrap();
            assert_eq!(m.sub_header, "x-user");
            let token = es256(&claims);
            assert_eq!(
                m.verify(&[bearer(&token).as_bytes()], NOW),
                Ok(Verified {
                    sub: Some("dev-7".into())
                })
            );
            // Flip one bit of the signature.
            let mut sig = URL_SAFE_NO_PAD
                .decode(token.rsplit('.').next().unwrap())
                .unwrap();
            sig[40] ^= 1;
            let (signed, _) = token.rsplit_once('.').unwrap();
            let bad = format!("{signed}.{}", b64(&sig));
            assert_eq!(
                reason(m.verify(&[bearer(&bad).as_bytes()], NOW)),
                "invalid signature"
            );
            // An HS256 token is refused: no HS256 secret is configured.
            let hs = hs256(b"k", r#"{"alg":"HS256"}"#, &claims);
            assert_eq!(
                reason(m.verify(&[bearer(&hs).as_bytes()], NOW)),
                "algorithm HS256 not accepted"
            );
        }
    }

    #[test]
    fn missing_or_malformed_tokens_are_401() {
        let m = JwtVerify::from_config(br#"{"hs256_secret":"k"}"#).unwrap();
        assert_eq!(reason(m.verify(&[], NOW)), "missing bearer token");
        assert_eq!(
            reason(m.verify(&[b"Basic dXNlcjpwYXNz"], NOW)),
            "missing bearer token"
        );
        assert!(reason(m.verify(&[b"Bearer a.b"], NOW)).starts_with("malformed token"));
        assert!(reason(m.verify(&[b"Bearer a.b.c.d"], NOW)).starts_with("malformed token"));
        assert!(reason(m.verify(&[b"Bearer !!.b.c"], NOW)).starts_with("malformed token"));
        assert!(reason(m.verify(&[b"Bearer x", b"Bearer y"], NOW)).starts_with("more than one"));
        // A sub that would break a header is refused.
        let token = hs256(
            b"k",
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"a\r\nx: y","exp":{}}}"#, NOW + 1),
        );
        assert!(reason(m.verify(&[bearer(&token).as_bytes()], NOW)).contains("sub"));
    }

    #[test]
    fn config_errors_are_500_with_the_reason() {
        for (config, needle) in [
            ("{}", "no key"),
            (r#"{"hs256_secret":""}"#, "must not be empty"),
            (
                r#"{"hs256_secret_env":"X"}"#,
                "hs256_secret_env was not resolved",
            ),
            (r#"{"es256_public_key":"nope"}"#, "PEM"),
            (
                r#"{"es256_jwk":{"kty":"EC","crv":"P-384","x":"","y":""}}"#,
                "es256_jwk",
            ),
            (r#"{"hs256_secret":"k","leeway":100000}"#, "`leeway`"),
        ] {
            crate::assert_misconfigured(
                JwtVerify::from_config(config.as_bytes()),
                "jwt-verify",
                needle,
            );
        }
    }
}
