//! `counter`: counts its calls with `kv_incr`, in its own KV namespace.
//!
//! `GET /counter` answers `calls: N` with this call counted;
//! `GET /counter?key=NAME` counts under another key, `&ttl=MS` makes a key
//! it creates expire (a window: the next call after it starts at 1 again,
//! as a rate limit would). The count is
//! committed when the response is sent, so concurrent calls all count
//! (two of them may show the same N; the stored total is exact).

use wasmgate_guest::{Request, Response, kv};

fn handle(req: Request<'_>) -> Response {
    let key = wasmgate_guest::query(req.uri, "key").unwrap_or("calls");
    let ttl = wasmgate_guest::query(req.uri, "ttl").and_then(|t| t.parse().ok());
    match kv::incr_with_ttl(key.as_bytes(), 1, ttl.unwrap_or(0)) {
        Ok(n) => Response::text(200, format!("{key}: {n}\n")),
        Err(e) => Response::text(503, format!("kv error: {e:?}\n")),
    }
}

wasmgate_guest::handler!(handle);
