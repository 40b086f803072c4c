//! hmac-verify: the http-wasm glue around `middleware::hmac_verify`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::hmac_verify::HmacVerify;
    use middleware::{Reject, glue};

    struct Plugin(Result<HmacVerify, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            glue::verdict(&self.0, response, |m| {
                let values = glue::header_values(&request.header, m.header.as_bytes());
                let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                m.verify(&values, &request.body.read())
            })
        }
    }

    pub fn main() {
        // The body is read here and must still reach the next handler.
        register(Plugin(glue::load_enabling(
            HmacVerify::from_config,
            feature::BufferRequest,
        )));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
