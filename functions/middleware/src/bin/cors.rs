//! cors: the http-wasm glue around `middleware::cors`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, admin, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::cors::{Cors, CorsRequest, Decision};
    use middleware::{Reject, glue};

    struct Plugin(Result<Cors, Reject>);

    /// The decision for `request` (read again in handle_response: the
    /// module keeps no state between the two calls).
    fn decide(cors: &Cors, request: &Request) -> Decision {
        let method = String::from_utf8_lossy(&request.method()).into_owned();
        let origin = glue::first_value(&request.header, b"origin");
        let request_method = glue::first_value(&request.header, b"access-control-request-method");
        let request_headers = glue::first_value(&request.header, b"access-control-request-headers");
        cors.decide(&CorsRequest {
            method: &method,
            origin: origin.as_deref(),
            request_method: request_method.as_deref(),
            request_headers: request_headers.as_deref(),
        })
    }

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            let cors = match &self.0 {
                Ok(cors) => cors,
                Err(reject) => {
                    glue::respond(response, reject);
                    return (false, 0);
                }
            };
            match decide(cors, request) {
                Decision::PassThrough => (true, 0),
                Decision::PassOn(_) => {
                    // Response headers after the next handler need
                    // buffer_response; only CORS requests pay for it.
                    admin::enable(feature::BufferResponse);
                    (true, 1)
                }
                Decision::Answer(answer) => {
                    glue::respond(response, &answer);
                    (false, 0)
                }
            }
        }

        fn handle_response(
            &self,
            ctx: i32,
            request: &Request,
            response: &Response,
            is_error: bool,
        ) {
            let Ok(cors) = &self.0 else { return };
            if ctx != 1 || is_error {
                return;
            }
            if let Decision::PassOn(headers) = decide(cors, request) {
                for (name, value) in headers {
                    if name == "vary" {
                        response.header.add(name.as_bytes(), value.as_bytes());
                    } else {
                        response.header.set(name.as_bytes(), value.as_bytes());
                    }
                }
            }
        }
    }

    pub fn main() {
        let m = Cors::from_config(&glue::config());
        if let Err(reject) = &m {
            glue::log_error(&reject.body.to_string());
        }
        register(Plugin(m));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
