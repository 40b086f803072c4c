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
            glue::verdict(&self.0, response, |m| {
                let body = if m.inspect_body {
                    request.body.read().to_vec()
                } else {
                    Vec::new()
                };
                m.check(&request.uri(), &body)
            })
        }
    }

    pub fn main() {
        let m = glue::load(Waf::from_config);
        if m.as_ref().is_ok_and(|waf| waf.inspect_body) {
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
