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

    /// Counts the request; its refusal if it is over the limit. A store
    /// that refuses lets it pass (logged).
    fn count(m: &RateLimit, request: &Request) -> Result<(), Reject> {
        let header = m
            .header()
            .and_then(|name| request.header.get(name.as_bytes()));
        let keys = m.keys(&request.source_addr(), header.as_deref());
        let now = now_ms();
        let n = match kv::incr_with_ttl(&keys.count, 1, m.window_ms) {
            Ok(n) => n,
            Err(e) => {
                glue::log_error(&format!(
                    "rate-limit: the store refused ({e:?}); request passed"
                ));
                return Ok(());
            }
        };
        if n == 1 {
            // The first request of the window: when it started.
            let _ = kv::set_with_ttl(&keys.start, now.to_string().as_bytes(), m.window_ms);
        }
        let start = || {
            let value = kv::get(&keys.start).ok().flatten()?;
            std::str::from_utf8(&value).ok()?.parse().ok()
        };
        if m.check(n, None, now).is_ok() {
            return Ok(());
        }
        m.check(n, start(), now)
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
