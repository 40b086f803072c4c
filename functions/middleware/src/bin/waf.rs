//! waf: the http-wasm glue around `middleware::waf`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, admin, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::waf::Waf;
    use middleware::{Reject, glue};

    struct Plugin(Result<Waf, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            let verdict = self.0.as_ref().map_err(Clone::clone).and_then(|m| {
                let body = if m.inspect_body {
                    request.body.read().to_vec()
                } else {
                    Vec::new()
                };
                m.check(&request.uri(), &body)
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
        let m = Waf::from_config(&glue::config());
        match &m {
            Err(reject) => glue::log_error(&reject.body.to_string()),
            Ok(waf) if waf.inspect_body => {
                // The body is read here and must still reach the next handler.
                admin::enable(feature::BufferRequest);
            }
            Ok(_) => {}
        }
        register(Plugin(m));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
