//! xml-to-json: the http-wasm glue around `middleware::xml_to_json`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::xml_to_json::{XmlToJson, convert, is_xml};
    use middleware::{Reject, glue};

    struct Plugin(Result<XmlToJson, Reject>);

    impl Guest for Plugin {
        fn handle_request(&self, _request: &Request, response: &Response) -> (bool, i32) {
            glue::verdict(&self.0, response, |_| Ok(()))
        }

        fn handle_response(&self, _ctx: i32, _req: &Request, response: &Response, is_error: bool) {
            if is_error {
                return;
            }
            let xml = response
                .header
                .get(b"content-type")
                .is_some_and(|ct| is_xml(&ct));
            if !xml {
                return;
            }
            match convert(&response.body.read()) {
                Ok(json) => {
                    response.header.set(b"content-type", b"application/json");
                    // The first write in handle_response replaces the body.
                    response.body.write(json.as_bytes());
                }
                Err(reject) => glue::respond(response, &reject),
            }
        }
    }

    pub fn main() {
        register(Plugin(glue::load_enabling(
            XmlToJson::from_config,
            feature::BufferResponse,
        )));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
