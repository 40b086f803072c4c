//! `rate-limit`: at most `limit` requests per client in each window, counted
//! in the middleware's KV namespace with `kv_incr` and a TTL; a request over
//! the limit is answered 429 with `Retry-After` (seconds) and
//! `{"error":"rate-limited","reason":…,"retry_after":N}`, and never reaches
//! the next handler.
//!
//! A client is its address (`get_source_addr`, without the port), or with
//! `key = "header:NAME"` the value of that request header (an API key),
//! stored as a SHA-256 digest so that the keys never sit on disk in clear;
//! a request without the header is counted by its address.
//!
//! Windows are fixed and start at a client's first request: its counter is
//! created with the window as its TTL, so the store drops it when the
//! window ends and the next request starts a new one. The window's start is
//! kept next to the counter to tell a refused client when to come back.
//! Requests over the limit are counted too (they do not extend the window).
//! Concurrent requests are all counted (`kv_incr` is exact), but each one
//! sees the count committed before it plus its own: a burst of concurrent
//! first requests may pass the limit by the requests in flight.
//!
//! If the store refuses (unavailable, namespace full) the request passes
//! (fail open, as a rate limiter in front of a service should) and the
//! refusal is logged.
//!
//! Config: `limit` (requests per window, 1 to 1,000,000,000; required),
//! `window` (seconds as an integer, or a string such as `"1s"`, `"10m"`,
//! `"1h"`; 1 s to 1 day; default 1 s), `key` (`"addr"`, the default, or
//! `"header:NAME"`).

use crate::Reject;
use crate::config::{self, Config};
use crate::hmac_verify::is_token_char;
use serde_json::Value;
use sha2::{Digest, Sha256};

const NAME: &str = "rate-limit";

/// The longest window: a day.
const MAX_WINDOW_SECS: u64 = 86_400;

/// Who a request is counted for.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyFrom {
    /// The client's address.
    Addr,
    /// A request header's value (lowercase name); the address without it.
    Header(String),
}

/// The parsed configuration.
#[derive(Debug)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// Who a request is counted for.
    pub key: KeyFrom,
}

/// A client's two KV keys: its counter and its window's start.
#[derive(Debug, PartialEq)]
pub struct Keys {
    /// The request counter (`kv_incr`, TTL the window).
    pub count: Vec<u8>,
    /// The window's start, unix milliseconds as decimal text.
    pub start: Vec<u8>,
}

impl RateLimit {
    /// Parses the `get_config` payload; an error is the 500 answer.
    pub fn from_config(bytes: &[u8]) -> Result<RateLimit, Reject> {
        Self::parse(bytes).map_err(|e| Reject::misconfigured(NAME, &e))
    }

    fn parse(bytes: &[u8]) -> Result<RateLimit, String> {
        let value = config::parse(bytes)?;
        let c = Config::new(&value, &["limit", "window", "key"])?;
        let limit = match c.get("limit") {
            None => return Err("`limit` is required (requests per window)".into()),
            Some(_) => c.uint("limit", 0, 1_000_000_000)?,
        };
        if limit == 0 {
            return Err("`limit` must be an integer from 1 to 1000000000".into());
        }
        let window = match c.get("window") {
            None => 1,
            Some(Value::String(text)) => parse_window(text)?,
            Some(_) => c.uint("window", 1, MAX_WINDOW_SECS)?,
        };
        if !(1..=MAX_WINDOW_SECS).contains(&window) {
            return Err(format!(
                "`window` must be from 1 s to {MAX_WINDOW_SECS} s (1 day)"
            ));
        }
        let key = match c.str("key")?.unwrap_or("addr") {
            "addr" => KeyFrom::Addr,
            other => match other.strip_prefix("header:") {
                Some(name) if !name.is_empty() && name.bytes().all(is_token_char) => {
                    KeyFrom::Header(name.to_ascii_lowercase())
                }
                _ => {
                    return Err(format!(
                        "`key` must be \"addr\" or \"header:NAME\" with a header name, got {other:?}"
                    ));
                }
            },
        };
        Ok(RateLimit {
            limit,
            window_ms: window * 1000,
            key,
        })
    }

    /// The header to read, if the client is named by one.
    pub fn header(&self) -> Option<&str> {
        match &self.key {
            KeyFrom::Header(name) => Some(name),
            KeyFrom::Addr => None,
        }
    }

    /// The keys of the client at `addr` (`get_source_addr`: `IP:PORT`,
    /// `[IPv6]:PORT`) whose request carries `header` (the configured
    /// header's first value, if any).
    pub fn keys(&self, addr: &[u8], header: Option<&[u8]>) -> Keys {
        let id = match header.filter(|_| self.header().is_some()) {
            Some(value) => {
                let digest = Sha256::digest(value);
                let mut id = b"key:".to_vec();
                for byte in &digest[..16] {
                    id.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
                id
            }
            None => [&b"addr:"[..], host(addr)].concat(),
        };
        Keys {
            count: [&b"n/"[..], &id].concat(),
            start: [&b"t/"[..], &id].concat(),
        }
    }

    /// The answer to a request that is the `count`th of its window (the
    /// window started at `start` ms, if known) at `now` ms: pass, or 429.
    pub fn check(&self, count: i64, start: Option<u64>, now: u64) -> Result<(), Reject> {
        if u64::try_from(count).is_ok_and(|n| n <= self.limit) {
            return Ok(());
        }
        let left_ms = match start {
            Some(start) => start.saturating_add(self.window_ms).saturating_sub(now),
            None => self.window_ms,
        };
        let retry = left_ms.div_ceil(1000).clamp(1, self.window_ms / 1000);
        let mut reject = Reject::new(
            429,
            "rate-limited",
            format!(
                "more than {} requests in {} s; retry in {retry} s",
                self.limit,
                self.window_ms / 1000
            ),
        );
        reject.body["retry_after"] = Value::from(retry);
        reject.headers.push(("retry-after", retry.to_string()));
        Err(reject)
    }
}

/// `"30"`, `"30s"`, `"10m"`, `"1h"`, `"1d"`: seconds.
fn parse_window(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`window` must be seconds or a duration such as \"1s\", \"10m\", \"1h\", got {text:?}"
        )
    };
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = match &text[digits.len()..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(n.saturating_mul(unit))
}

/// The host part of `IP:PORT` or `[IPv6]:PORT` (all of it without a port).
fn host(addr: &[u8]) -> &[u8] {
    let Some(colon) = addr.iter().rposition(|&b| b == b':') else {
        return addr;
    };
    let host = &addr[..colon];
    match host {
        [b'[', inner @ .., b']'] => inner,
        // A bare IPv6 address has more colons and no port.
        _ if host.contains(&b':') => addr,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_misconfigured;

    fn rl(config: &str) -> RateLimit {
        RateLimit::from_config(config.as_bytes()).unwrap()
    }

    #[test]
    fn config_parses_with_defaults_and_units() {
        let r = rl(r#"{"limit":10}"#);
        assert_eq!((r.limit, r.window_ms, r.key), (10, 1000, KeyFrom::Addr));
        assert_eq!(rl(r#"{"limit":1,"window":"10m"}"#).window_ms, 600_000);
        assert_eq!(rl(r#"{"limit":1,"window":90}"#).window_ms, 90_000);
        assert_eq!(rl(r#"{"limit":1,"window":"1d"}"#).window_ms, 86_400_000);
        assert_eq!(
            rl(r#"{"limit":1,"key":"header:X-API-Key"}"#).key,
            KeyFrom::Header("x-api-key".into())
        );
    }

    #[test]
    fn bad_config_is_refused_naming_the_key() {
        for (config, needle) in [
            ("{}", "`limit` is required"),
            (r#"{"limit":0}"#, "`limit` must be"),
            (r#"{"limit":-1}"#, "`limit` must be"),
            (r#"{"limit":1,"window":0}"#, "`window`"),
            (r#"{"limit":1,"window":"2d"}"#, "`window` must be from"),
            (r#"{"limit":1,"window":"1w"}"#, "`window` must be seconds"),
            (r#"{"limit":1,"window":"s"}"#, "`window` must be seconds"),
            (r#"{"limit":1,"key":"ip"}"#, "`key` must be"),
            (r#"{"limit":1,"key":"header:"}"#, "`key` must be"),
            (r#"{"limit":1,"key":"header:a b"}"#, "`key` must be"),
            (r#"{"limit":1,"burst":2}"#, "unknown config key `burst`"),
        ] {
            assert_misconfigured(RateLimit::from_config(config.as_bytes()), NAME, needle);
        }
    }

    #[test]
    fn clients_are_their_address_or_a_digest_of_their_key() {
        let by_addr = rl(r#"{"limit":1}"#);
        let keys = by_addr.keys(b"10.0.0.1:5555", Some(b"secret"));
        assert_eq!(keys.count, b"n/addr:10.0.0.1");
        assert_eq!(keys.start, b"t/addr:10.0.0.1");
        assert_eq!(by_addr.keys(b"[::1]:80", None).count, b"n/addr:::1");
        assert_eq!(by_addr.keys(b"::1", None).count, b"n/addr:::1");
        let by_key = rl(r#"{"limit":1,"key":"header:x-api-key"}"#);
        let a = by_key.keys(b"10.0.0.1:1", Some(b"secret"));
        let b = by_key.keys(b"10.0.0.2:2", Some(b"secret"));
        assert_eq!(a, b);
        let text = String::from_utf8(a.count).unwrap();
        assert!(
            text.starts_with("n/key:") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(text.len(), "n/key:".len() + 32);
        assert_ne!(
            by_key.keys(b"10.0.0.1:1", Some(b"other")).count,
            text.as_bytes()
        );
        // Without the header: by address.
        assert_eq!(by_key.keys(b"10.0.0.1:1", None).count, b"n/addr:10.0.0.1");
    }

    #[test]
    fn over_the_limit_is_429_with_the_seconds_left() {
        let r = rl(r#"{"limit":2,"window":"1m"}"#);
        assert!(r.check(1, None, 0).is_ok());
        assert!(r.check(2, Some(0), 59_999).is_ok());
        let reject = r.check(3, Some(1_000), 31_500).unwrap_err();
        assert_eq!(reject.status, 429);
        assert_eq!(reject.headers, vec![("retry-after", "30".to_string())]);
        assert_eq!(reject.body["error"], "rate-limited");
        assert_eq!(reject.body["retry_after"], 30);
        // Start unknown: the whole window; past its end: at least 1 s.
        let unknown = r.check(3, None, 5).unwrap_err();
        assert_eq!(unknown.body["retry_after"], 60);
        let late = r.check(3, Some(0), 70_000).unwrap_err();
        assert_eq!(late.body["retry_after"], 1);
    }
}
