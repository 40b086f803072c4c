//! `tax`: a Gojinn-style function (wasi-json ABI). Reads the request from
//! stdin, expects a JSON body `{"id": "A1" | 7, "value": 100}` and answers
//! `{"order_id": "A1", "total_final": 115.0}`: the value plus 15% tax,
//! rounded to 2 decimals. A body that is not such an object gets a 400.
//!
//! A plain `fn main` built for wasm32-wasip1, no wasmgate crate: this is what
//! a function written for Gojinn looks like, and it runs unchanged.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The request the host writes to stdin (fields not needed here are ignored).
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    body: String,
}

/// An order id: a string or a number, returned as it came.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(serde_json::Number),
}

#[derive(Deserialize)]
struct Order {
    id: Id,
    value: f64,
}

const TAX_RATE: f64 = 0.15;

fn main() {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("read the request from stdin");
    let request: Request = serde_json::from_str(&input).expect("the request on stdin is JSON");

    let response = match serde_json::from_str::<Order>(&request.body) {
        Ok(order) => {
            let total = (order.value * (1.0 + TAX_RATE) * 100.0).round() / 100.0;
            if total.is_finite() {
                let body = json!({ "order_id": order.id, "total_final": total });
                reply(200, body)
            } else {
                reply(400, json!({ "error": "value is out of range" }))
            }
        }
        Err(e) => reply(
            400,
            json!({ "error": format!("body must be {{\"id\": string or number, \"value\": number}}: {e}") }),
        ),
    };
    println!("{response}");
}

/// The response object the host reads from stdout.
fn reply(status: u16, body: serde_json::Value) -> serde_json::Value {
    json!({
        "status": status,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
    })
}
