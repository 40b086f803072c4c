use std::collections::HashMap;
use std::io::{self, Read, Write};
use serde::{Deserialize, Serialize};

// --- 1. Gojinn Contract ---

#[derive(Deserialize)]
struct GojinnRequest {
    method: String,
    uri: String,
    headers: HashMap<String, Vec<String>>,
    body: String,     // User payload comes here as a string
    trace_id: String, // Distributed Tracing ID from Caddy
}

#[derive(Serialize)]
struct GojinnResponse {
    status: u16,
    headers: HashMap<String, Vec<String>>,
    body: String,
}

// --- 2. Your Business Logic Data ---

#[derive(Deserialize)]
struct MyPayload {
    name: String,
}

fn main() -> io::Result<()> {
    // A. Read Stdin (Input)
    let mut buffer = String::new();
    io::stdin().read_to_string(&mut buffer)?;

    // B. Unwrap Gojinn Request
    let req: GojinnRequest = match serde_json::from_str(&buffer) {
        Ok(r) => r,
        Err(e) => return reply_error(400, &format!("Invalid JSON Input: {}", e)),
    };

    // C. Logging (Use Stderr + TraceID)
    // We use eprintln! to send logs to Caddy without breaking the JSON response
    eprintln!("[{}] Processing request for URI: {}", req.trace_id, req.uri);

    // D. Process Internal Payload
    let name = if req.body.is_empty() {
        "Stranger".to_string()
    } else {
        match serde_json::from_str::<MyPayload>(&req.body) {
            Ok(p) => p.name,
            Err(_) => "Stranger".to_string(),
        }
    };

    // E. Respond
    let response_body = format!(r#"{{"message": "Hello from Rust, {}!", "trace": "{}"}}"#, name, req.trace_id);
    
    reply(200, response_body)
}

// Helper to write the JSON response to Stdout
fn reply(status: u16, body: String) -> io::Result<()> {
    let mut headers = HashMap::new();
    headers.insert("Content-Type".to_string(), vec!["application/json".to_string()]);

    let resp = GojinnResponse {
        status,
        headers,
        body,
    };

    let output = serde_json::to_string(&resp)?;
    io::stdout().write_all(output.as_bytes())?;
    Ok(())
}

fn reply_error(status: u16, msg: &str) -> io::Result<()> {
    let body = format!(r#"{{"error": "{}"}}"#, msg);
    reply(status, body)
}
