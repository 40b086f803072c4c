//! rate-limit: the http-wasm glue around `middleware::rate_limit`, counting
//! with the `wasmgate.kv_*` host functions (the guest crate's `kv`).

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response};
    use http_wasm_guest::{Guest, register};
    use middleware::rate_limit::RateLimit;
    use middleware::{Reject, glue};
    use std::time::{SystemTime, UNIX_EPOCH};
    use wasmgate_guest::kv;

    struct Plugin(Result<RateLimit, Reject>);

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Counts the request; its refusal if it is over the limit (then taken
    /// back out of the count). A store that refuses lets it pass (logged).
    fn count(m: &RateLimit, request: &Request) -> Result<(), Reject> {
        let header = m
            .header()
            .and_then(|name| request.header.get(name.as_bytes()));
        let keys = m.keys(&request.source_addr(), header.as_deref());
        let slot = m.slot(now_ms());
        let current = keys.window(slot.index);
        // Kept two windows: the next window weighs this one.
        let ttl = m.window_ms.saturating_mul(2);
        let n = match kv::incr_with_ttl(&current, 1, ttl) {
            Ok(n) => u64::try_from(n).unwrap_or(0),
            Err(e) => {
                glue::log_error(&format!(
                    "rate-limit: the store refused ({e:?}); request passed"
                ));
                return Ok(());
            }
        };
        let previous = slot
            .index
            .checked_sub(1)
            .and_then(|i| kv::get(&keys.window(i)).ok().flatten())
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0);
        let verdict = m.check(previous, n, slot);
        if verdict.is_err() {
            let _ = kv::incr_with_ttl(&current, -1, ttl);
        }
        verdict
    }

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            glue::verdict(&self.0, response, |m| count(m, request))
        }
    }

    pub fn main() {
        register(Plugin(glue::load(RateLimit::from_config)));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
