//! json-schema: the http-wasm glue around `middleware::json_schema`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, admin, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::json_schema::JsonSchema;
    use middleware::{Reject, glue};

    struct Plugin(Result<JsonSchema, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            let verdict = self
                .0
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|m| m.check(&request.body.read()));
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
        let m = JsonSchema::from_config(&glue::config());
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
