//! `rate-limit`: at most `limit` requests per client in any window of
//! `window`, estimated as a sliding window over two fixed ones, counted in
//! the middleware's KV namespace with `kv_incr` and a TTL; a request over
//! the limit is answered 429 with `Retry-After` (seconds) and
//! `{"error":"rate-limited","reason":…,"retry_after":N}`, and never reaches
//! the next handler.
//!
//! A client is its address (`get_source_addr`, without the port), or, with
//! `key = "header:NAME"`, the value of that request header (an API key),
//! stored as a SHA-256 digest so that the keys never sit on disk in clear;
//! a request without the header is counted by its address.
//!
//! The sliding window counter: time is cut into fixed windows (unix time /
//! `window`), each client has one counter per window (`kv_incr`, TTL two
//! windows, so the store drops it when it can no longer count). A request
//! at `elapsed` into the current window is weighed against the previous
//! window's count scaled by the part of it still inside the sliding window:
//! `previous × (window − elapsed) / window + current`. No burst at a window
//! boundary can pass twice the limit, as with plain fixed windows. A
//! refused request is taken back out of the count (`kv_incr` −1): a client
//! that keeps knocking is not locked out for longer. Concurrent requests
//! are all counted (`kv_incr` is exact), but each one sees the count
//! committed before it plus its own: a burst of concurrent requests may
//! pass the limit by the requests in flight.
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

/// A client's counters: one per fixed window.
#[derive(Debug, PartialEq)]
pub struct Keys {
    /// The counters' common prefix; [`Keys::window`] appends the index.
    pub prefix: Vec<u8>,
}

impl Keys {
    /// The counter of fixed window `index` (unix ms / window ms).
    pub fn window(&self, index: u64) -> Vec<u8> {
        [&self.prefix[..], index.to_string().as_bytes()].concat()
    }
}

/// Where a request falls: its fixed window and how far into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// The fixed window's index (unix ms / window ms).
    pub index: u64,
    /// Milliseconds since that window began.
    pub elapsed: u64,
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
            prefix: [&b"n/"[..], &id, b"/"].concat(),
        }
    }

    /// The fixed window `now` (unix ms) falls in.
    pub fn slot(&self, now: u64) -> Slot {
        Slot {
            index: now / self.window_ms,
            elapsed: now % self.window_ms,
        }
    }

    /// The sliding window's estimate `elapsed` into the window: the previous window's
    /// `previous` requests weighed by the part of it still inside the
    /// sliding window, plus the current window's `current`.
    fn estimate(&self, previous: u64, current: u64, elapsed: u64) -> u64 {
        let w = u128::from(self.window_ms);
        let left = w.saturating_sub(u128::from(elapsed));
        // Rounded up: a part of a request still counts as one.
        let weighed = u128::from(previous).saturating_mul(left).div_ceil(w.max(1));
        u64::try_from(weighed)
            .unwrap_or(u64::MAX)
            .saturating_add(current)
    }

    /// The answer to a request that made the current window's count
    /// `current` (itself included), with `previous` in the window before,
    /// at `slot`: pass, or 429 with the seconds until a request would pass
    /// (the caller then takes this one back out of the count).
    pub fn check(&self, previous: u64, current: u64, slot: Slot) -> Result<(), Reject> {
        if self.estimate(previous, current, slot.elapsed) <= self.limit {
            return Ok(());
        }
        let retry = self.retry_ms(previous, current.saturating_sub(1), slot.elapsed);
        let retry = retry.div_ceil(1000).max(1);
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

    /// Milliseconds from `elapsed` into the current window until one more
    /// request would pass, with `previous` and `current` counted (the
    /// refused one taken back): later in this window as the previous
    /// window's weight fades, or in the next one, where `current` becomes
    /// the previous count. At most two windows.
    fn retry_ms(&self, previous: u64, current: u64, elapsed: u64) -> u64 {
        let w = self.window_ms;
        // The smallest `e` in `from..w` where `prev × (w − e) / w + now + 1`
        // is within the limit, by bisection (the estimate only falls).
        let first_passing = |prev: u64, now: u64, from: u64| -> Option<u64> {
            let passes = |e: u64| self.estimate(prev, now.saturating_add(1), e) <= self.limit;
            if !passes(w.saturating_sub(1)) {
                return None;
            }
            let (mut lo, mut hi) = (from, w.saturating_sub(1));
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if passes(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Some(lo)
        };
        match first_passing(previous, current, elapsed) {
            Some(e) => e.saturating_sub(elapsed),
            None => {
                let next = first_passing(current, 0, 0).unwrap_or(w);
                w.saturating_sub(elapsed).saturating_add(next)
            }
        }
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
        assert_eq!(keys.prefix, b"n/addr:10.0.0.1/");
        assert_eq!(keys.window(42), b"n/addr:10.0.0.1/42");
        assert_eq!(by_addr.keys(b"[::1]:80", None).prefix, b"n/addr:::1/");
        assert_eq!(by_addr.keys(b"::1", None).prefix, b"n/addr:::1/");
        let by_key = rl(r#"{"limit":1,"key":"header:x-api-key"}"#);
        let a = by_key.keys(b"10.0.0.1:1", Some(b"secret"));
        let b = by_key.keys(b"10.0.0.2:2", Some(b"secret"));
        assert_eq!(a, b);
        let text = String::from_utf8(a.prefix).unwrap();
        assert!(
            text.starts_with("n/key:") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(text.len(), "n/key:/".len() + 32);
        assert_ne!(
            by_key.keys(b"10.0.0.1:1", Some(b"other")).prefix,
            text.as_bytes()
        );
        // Without the header: by address.
        assert_eq!(by_key.keys(b"10.0.0.1:1", None).prefix, b"n/addr:10.0.0.1/");
    }

    #[test]
    fn the_previous_window_weighs_by_its_part_still_in_the_sliding_window() {
        let r = rl(r#"{"limit":10,"window":"1m"}"#);
        let at = |elapsed| Slot { index: 7, elapsed };
        assert_eq!(r.slot(7 * 60_000 + 1_500), at(1_500));
        // 10 in the previous window, 30 s into this one: 5 of them count.
        assert!(r.check(10, 5, at(30_000)).is_ok());
        assert!(r.check(10, 6, at(30_000)).is_err());
        // At the window's start all 10 count; at its last millisecond a
        // part of one (rounded up: one).
        assert!(r.check(10, 1, at(0)).is_err());
        assert!(r.check(10, 9, at(59_999)).is_ok());
        assert!(r.check(10, 10, at(59_999)).is_err());
        // A burst at a boundary: 10 at the end of one window and 10 more at
        // the start of the next cannot both pass (plain fixed windows would).
        assert!(r.check(10, 1, at(1)).is_err());
    }

    #[test]
    fn over_the_limit_is_429_with_the_seconds_until_one_passes() {
        let r = rl(r#"{"limit":2,"window":"1m"}"#);
        let at = |elapsed| Slot { index: 1, elapsed };
        assert!(r.check(0, 2, at(0)).is_ok());
        let reject = r.check(0, 3, at(30_000)).unwrap_err();
        assert_eq!(reject.status, 429);
        assert_eq!(reject.body["error"], "rate-limited");
        // 2 counted this window (the refused one taken back): the next
        // window starts in 30 s with 2 × (60 − e) / 60 + 1 ≤ 2 from e = 30 s.
        assert_eq!(reject.headers, vec![("retry-after", "60".to_string())]);
        assert_eq!(reject.body["retry_after"], 60);
        // 4 in the previous window, none yet in this one, 15 s in: passes
        // once 4 × (60 − e) / 60 + 1 ≤ 2, at e = 45 s: in 30 s.
        let fading = r.check(4, 1, at(15_000)).unwrap_err();
        assert_eq!(fading.body["retry_after"], 30);
        // Never more than two windows, never less than a second.
        for (previous, current, elapsed) in
            [(1_000_000, 1, 0), (0, 1_000_000, 59_999), (3, 3, 59_999)]
        {
            if let Err(e) = r.check(previous, current, at(elapsed)) {
                let retry = e.body["retry_after"].as_u64().unwrap();
                assert!(
                    (1..=120).contains(&retry),
                    "{previous} {current} {elapsed}: {retry}"
                );
            }
        }
    }
}
