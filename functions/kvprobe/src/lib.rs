//! `kvprobe`: a test fixture calling the guest crate's `kv` wrappers, one
//! per request (`tests/kv.rs`), so that they run compiled for wasm against
//! the real host functions:
//!
//! - `POST ?op=set&key=K` sets K to the body (`&ttl=MS` expires it);
//! - `?op=get&key=K`: 200 with the value, or 404;
//! - `?op=delete&key=K`: `true` or `false` (whether it was there);
//! - `?op=incr&key=K&by=N`: the new value;
//! - `?op=list&prefix=P`: the keys with the prefix, one per line.
//!
//! A refused call answers 507 with the guest crate's error.

use wasmgate_guest::{Request, Response, kv, query};

fn handle(req: Request<'_>) -> Response {
    let arg = |name| query(req.uri, name).unwrap_or("");
    let key = arg("key").as_bytes();
    let number = |name| arg(name).parse().unwrap_or(0);
    let result = match arg("op") {
        "set" => kv::set_with_ttl(key, req.body, number("ttl") as u64).map(|()| b"ok".to_vec()),
        "get" => match kv::get(key) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => return Response::text(404, "missing"),
            Err(e) => Err(e),
        },
        "delete" => kv::delete(key).map(|was| was.to_string().into_bytes()),
        "incr" => kv::incr(key, number("by")).map(|n| n.to_string().into_bytes()),
        "list" => kv::list(arg("prefix").as_bytes()).map(|keys| keys.join(&b'\n')),
        _ => return Response::text(400, "op: set, get, delete, incr or list"),
    };
    match result {
        Ok(body) => Response::new(200).with_body(body),
        Err(e) => Response::text(507, format!("{e:?}")),
    }
}

wasmgate_guest::handler!(handle);
