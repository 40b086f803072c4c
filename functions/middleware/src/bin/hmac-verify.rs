//! hmac-verify: the http-wasm glue around `middleware::hmac_verify`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::hmac_verify::HmacVerify;
    use middleware::{Reject, glue};
    use wasmgate_guest::http_wasm::{self, Kind};

    struct Plugin(Result<HmacVerify, Reject>);

    impl Guest for Plugin {
        // The header and the body are read with the guest crate's readers
        // into buffers of our own, not `request.header.values()` and
        // `request.body.read()`, which copy each value and chunk into an
        // allocation of its own: a third of the instructions this guest
        // executes per request (callgrind, README "Gateway benchmark").
        fn handle_request(&self, _: &Request, response: &Response) -> (bool, i32) {
            glue::verdict(&self.0, response, |m| {
                let name = m.header.as_bytes();
                // A signature header is 71 bytes; more only when repeated
                // or malformed, read into a buffer of the size needed.
                let mut small = [0u8; 256];
                let mut large = Vec::new();
                let values: Vec<&[u8]> =
                    match http_wasm::header_values(Kind::Request, name, &mut small) {
                        Ok(values) => values.collect(),
                        Err(needed) => {
                            large.resize(needed, 0);
                            http_wasm::header_values(Kind::Request, name, &mut large)
                                .map(Iterator::collect)
                                .unwrap_or_default()
                        }
                    };
                let mut body = Vec::new();
                http_wasm::read_body_into(Kind::Request, &mut body);
                m.verify(&values, &body)
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
