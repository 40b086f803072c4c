//! json-schema: the http-wasm glue around `middleware::json_schema`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::json_schema::JsonSchema;
    use middleware::{Reject, glue};

    struct Plugin(Result<JsonSchema, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            glue::verdict(&self.0, response, |m| m.check(&request.body.read()))
        }
    }

    pub fn main() {
        // The body is read here and must still reach the next handler.
        register(Plugin(glue::load_enabling(
            JsonSchema::from_config,
            feature::BufferRequest,
        )));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
