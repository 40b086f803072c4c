//! A test middleware written with the public `http-wasm-guest` crate
//! (crates.io, version 1.2.0), used as it is published: wasmgate must run
//! middleware written for other http-wasm hosts (Traefik, Dapr) unchanged.
//!
//! - `handle_request`: a request without `x-hwg-token` is refused with 403
//!   and a text body (the next handler never runs). Otherwise it adds
//!   `x-hwg-seen: <token>` and `x-hwg-method: <method>` to the request,
//!   `x-hwg-config: <config JSON>` when it has a config, enables
//!   `buffer_response` and continues with the context value 42.
//! - `handle_response`: sets `x-hwg-status: <status of the next handler>`
//!   and `x-hwg-ctx: <context>` on the response.

#[cfg(target_arch = "wasm32")]
mod plugin {
    use http_wasm_guest::host::{Request, Response, admin, feature};
    use http_wasm_guest::{Guest, register};

    struct Plugin;

    impl Guest for Plugin {
        fn handle_request(&self, request: &Request, response: &Response) -> (bool, i32) {
            let Some(token) = request.header.get(b"x-hwg-token") else {
                response.set_status(403);
                response.header.set(b"content-type", b"text/plain");
                response.body.write(b"missing x-hwg-token\n");
                return (false, 0);
            };
            request.header.add(b"x-hwg-seen", &token);
            request.header.set(b"x-hwg-method", &request.method());
            let config = admin::config();
            if !config.is_empty() {
                request.header.set(b"x-hwg-config", &config);
            }
            admin::enable(feature::BufferResponse);
            (true, 42)
        }

        fn handle_response(&self, ctx: i32, _: &Request, response: &Response, _: bool) {
            let status = response.status();
            response
                .header
                .set(b"x-hwg-status", status.to_string().as_bytes());
            response
                .header
                .set(b"x-hwg-ctx", ctx.to_string().as_bytes());
        }
    }

    pub fn main() {
        register(Plugin);
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    plugin::main();
}
