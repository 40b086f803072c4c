//! `headers`: a Gojinn-style function (wasi-json ABI). Answers 200
//! `application/json` `{"headers": {name: [values]}, "trace_id": "…"}` with
//! the request headers exactly as the host passed them on stdin. It also sets
//! the response headers `x-multi: a`, `x-multi: b` (an array value) and
//! `x-single: one` (a plain string value): the two shapes Gojinn accepts.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use serde_json::json;

/// The request the host writes to stdin (fields not needed here are ignored).
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    trace_id: String,
}

fn main() {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("read the request from stdin");
    let request: Request = serde_json::from_str(&input).expect("the request on stdin is JSON");

    let body = json!({ "headers": request.headers, "trace_id": request.trace_id });
    let response = json!({
        "status": 200,
        "headers": {
            "content-type": "application/json",
            "x-multi": ["a", "b"],
            "x-single": "one",
        },
        "body": body.to_string(),
    });
    serde_json::to_writer(std::io::stdout(), &response).expect("write the response to stdout");
}
