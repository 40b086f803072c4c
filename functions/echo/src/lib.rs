//! `echo`: answers with a JSON description of the request it received:
//!
//! ```json
//! {"method":"GET","uri":"/echo?x=1","headers":[["host","pi:8080"]],"body":"","trace_id":"…"}
//! ```
//!
//! Header values and the body are decoded as UTF-8, invalid bytes replaced by
//! U+FFFD. The JSON is written by hand (no serde_json) to keep the module small.

use wasmgate_guest::{Request, Response};

fn handle(req: Request<'_>) -> Response {
    let mut json = String::with_capacity(128 + req.uri.len() + req.body.len());
    json.push_str("{\"method\":");
    push_str(&mut json, req.method);
    json.push_str(",\"uri\":");
    push_str(&mut json, req.uri);
    json.push_str(",\"headers\":[");
    for (i, (name, value)) in req.headers.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('[');
        push_str(&mut json, name);
        json.push(',');
        push_str(&mut json, &String::from_utf8_lossy(value));
        json.push(']');
    }
    json.push_str("],\"body\":");
    push_str(&mut json, &String::from_utf8_lossy(req.body));
    json.push_str(",\"trace_id\":");
    push_str(&mut json, req.trace_id);
    json.push_str("}\n");
    Response::new(200)
        .with_header("content-type", "application/json")
        .with_body(json.into_bytes())
}

wasmgate_guest::handler!(handle);

/// Appends `s` as a JSON string literal (RFC 8259 escaping).
fn push_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_request() {
        let res = handle(Request {
            method: "POST",
            uri: "/echo?q=\"x\"",
            headers: vec![("x-a", b"1\\2".as_slice()), ("x-b", b"\xff")],
            body: b"line\n\x01tab\t",
            trace_id: "abc",
        });
        assert_eq!(res.status, 200);
        assert_eq!(
            String::from_utf8(res.body).unwrap(),
            "{\"method\":\"POST\",\"uri\":\"/echo?q=\\\"x\\\"\",\
             \"headers\":[[\"x-a\",\"1\\\\2\"],[\"x-b\",\"\u{fffd}\"]],\
             \"body\":\"line\\n\\u0001tab\\t\",\"trace_id\":\"abc\"}\n"
        );
    }
}
