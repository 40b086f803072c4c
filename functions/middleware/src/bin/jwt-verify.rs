//! jwt-verify: the http-wasm glue around `middleware::jwt_verify`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response};
    use http_wasm_guest::{Guest, register};
    use middleware::jwt_verify::JwtVerify;
    use middleware::{Reject, glue};
    use std::time::{SystemTime, UNIX_EPOCH};

    struct Plugin(Result<JwtVerify, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            glue::verdict(&self.0, response, |m| {
                // The client's own value is never passed on.
                request.header.remove(m.sub_header.as_bytes());
                let values = glue::header_values(&request.header, b"authorization");
                let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                // WASI clock_time_get (realtime): http-wasm has no clock.
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let verified = m.verify(&values, now)?;
                if let Some(sub) = verified.sub {
                    request.header.set(m.sub_header.as_bytes(), sub.as_bytes());
                }
                Ok(())
            })
        }
    }

    pub fn main() {
        register(Plugin(glue::load(JwtVerify::from_config)));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
