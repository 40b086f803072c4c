//! `hello`: the smallest useful wasmgate function.
//!
//! `GET /hello` answers "Hello from wasmgate!"; `GET /hello?name=Ada` answers
//! "Hello, Ada!" (the name is percent-decoded, invalid UTF-8 replaced).

use wasmgate_guest::{Request, Response, log};

fn handle(req: Request<'_>) -> Response {
    let body = match wasmgate_guest::query(req.uri, "name") {
        Some(name) => format!("Hello, {}!\n", percent_decode(name)),
        None => String::from("Hello from wasmgate!\n"),
    };
    log::info(body.trim_end());
    Response::text(200, body)
}

wasmgate_guest::handler!(handle);

/// Decodes `%XX` escapes and `+` (space) of a query value; malformed escapes
/// are kept as they are.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Response {
        handle(Request {
            method: "GET",
            uri,
            headers: Vec::new(),
            body: b"",
            trace_id: "t",
        })
    }

    #[test]
    fn greets() {
        assert_eq!(get("/hello").body, b"Hello from wasmgate!\n");
        assert_eq!(get("/hello?name=pi").body, b"Hello, pi!\n");
        assert_eq!(
            get("/hello?x=1&name=Ada+L%C3%B6").body,
            "Hello, Ada Lö!\n".as_bytes()
        );
        assert_eq!(get("/hello?name=%zz%").body, b"Hello, %zz%!\n");
    }
}
