//! hmac-verify: the http-wasm glue around `middleware::hmac_verify`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, admin, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::hmac_verify::HmacVerify;
    use middleware::{Reject, glue};

    struct Plugin(Result<HmacVerify, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            let verdict = self.0.as_ref().map_err(Clone::clone).and_then(|m| {
                let values = glue::header_values(&request.header, m.header.as_bytes());
                let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                m.verify(&values, &request.body.read())
            });
            match verdict {
                Ok(()) => (true, 0),
                Err(reject) => {
                    glue::respond(response, &reject);
                    (false, 0)
                }
            }
        }
    }

    pub fn main() {
        let m = HmacVerify::from_config(&glue::config());
        if let Err(reject) = &m {
            glue::log_error(&reject.body.to_string());
        } else {
            // The body is read here and must still reach the next handler.
            admin::enable(feature::BufferRequest);
        }
        register(Plugin(m));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
