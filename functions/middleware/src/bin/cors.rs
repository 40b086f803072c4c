//! cors: the http-wasm glue around `middleware::cors`.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, admin, feature};
    use http_wasm_guest::{Guest, register};
    use middleware::cors::{Cors, CorsRequest, Decision};
    use middleware::{Reject, glue};
    use std::cell::RefCell;

    struct Plugin(Result<Cors, Reject>);

    /// Response headers decided in handle_request for handle_response,
    /// with the context value that identifies the request. An instance
    /// serves one request at a time (wasmgate even starts one per request);
    /// a host that does not keep it gets the decision recomputed from the
    /// request instead.
    type Pending = Option<(i32, Vec<(&'static str, String)>)>;
    thread_local! {
        static PENDING: RefCell<Pending> = const { RefCell::new(None) };
        static NEXT_CTX: RefCell<i32> = const { RefCell::new(1) };
    }

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
                Decision::PassOn(headers) => {
                    // Response headers after the next handler need
                    // buffer_response; only CORS requests pay for it.
                    admin::enable(feature::BufferResponse);
                    let ctx = NEXT_CTX.with_borrow_mut(|next| {
                        let ctx = *next;
                        *next = if ctx == i32::MAX { 1 } else { ctx + 1 };
                        ctx
                    });
                    PENDING.set(Some((ctx, headers)));
                    (true, ctx)
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
            let pending = PENDING.take();
            if ctx == 0 || is_error {
                return;
            }
            let headers = match pending {
                Some((id, headers)) if id == ctx => headers,
                _ => match decide(cors, request) {
                    Decision::PassOn(headers) => headers,
                    _ => return,
                },
            };
            for (name, value) in headers {
                if name == "vary" {
                    response.header.add(name.as_bytes(), value.as_bytes());
                } else {
                    response.header.set(name.as_bytes(), value.as_bytes());
                }
            }
        }
    }

    pub fn main() {
        register(Plugin(glue::load(Cors::from_config)));
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
