//! `env`: a Gojinn-style function (wasi-json ABI). Answers 200
//! `application/json` `{"env": {NAME: value}, "args": [...]}` with every
//! environment variable and argument the host lets it see: only those set in
//! its config, and `args[0]` is the function name. Logs one line to stderr.
//! It does not read the request at all, which a function may do.

use std::collections::BTreeMap;

use serde_json::json;

fn main() {
    eprintln!("env function called");
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let args: Vec<String> = std::env::args().collect();
    let body = json!({ "env": env, "args": args });
    let response = json!({
        "status": 200,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
    });
    println!("{response}");
}
