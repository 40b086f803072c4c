//! The example middleware of functions/ (README "Example middleware"),
//! end to end through the real server: each one's pass and reject paths in
//! front of the native `echo` function (which echoes method, URI, headers
//! and body as JSON, so the test sees exactly what passed through), or of
//! `never` (traps if called: a request answered otherwise never reached it).
//! `xml-to-json` works on responses: it sits in front of `mirror`, a
//! terminal http-wasm module that answers with the request's body and the
//! content type named by its `x-ct` header.
//!
//! The guests are built from functions/middleware by functions/build.sh;
//! their logic is unit-tested there (`cargo test --manifest-path
//! functions/Cargo.toml`). These tests check what only the server can: the
//! ABI glue, buffering, config handed over as JSON, the WASI clock, and that
//! the server keeps serving afterwards.

mod common;

use std::path::PathBuf;

use common::{Response, Server, TempDir, function};
use serde_json::{Value, json};

/// The example middleware modules.
const MIDDLEWARE: [&str; 6] = [
    "hmac-verify",
    "jwt-verify",
    "json-schema",
    "xml-to-json",
    "waf",
    "cors",
];

/// A native function that traps if it is ever called.
fn never() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func (export "wasmgate_alloc") (param i32) (result i32) unreachable)
          (func (export "wasmgate_handle") (param i32 i32) (result i64) unreachable))"#,
    )
    .unwrap()
}

/// A terminal http-wasm function: answers 200 with the request body and,
/// as content type, the request's first `x-ct` value.
fn mirror() -> Vec<u8> {
    wat::parse_str(
        r#"(module
          (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
          (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
          (import "http_handler" "get_header_values" (func $get_values (param i32 i32 i32 i32 i32) (result i64)))
          (import "http_handler" "set_header_value" (func $set_header (param i32 i32 i32 i32 i32)))
          (memory (export "memory") 2)
          (data (i32.const 0) "x-ct")
          (data (i32.const 16) "content-type")
          (func (export "handle_request") (result i64)
            (local $off i32) (local $r i64) (local $len i32)
            ;; x-ct's values at 2048 (NUL-terminated); the first one becomes
            ;; the response's content type.
            (local.set $r (call $get_values (i32.const 0) (i32.const 0) (i32.const 4)
                                            (i32.const 2048) (i32.const 1024)))
            (local.set $len (i32.wrap_i64 (local.get $r)))
            (if (i32.and (i64.ne (i64.shr_u (local.get $r) (i64.const 32)) (i64.const 0))
                         (i32.le_u (local.get $len) (i32.const 1024)))
              (then (call $set_header (i32.const 1) (i32.const 16) (i32.const 12)
                                      (i32.const 2048) (i32.sub (local.get $len) (i32.const 1)))))
            ;; The body at 4096, read to the end.
            (loop $more
              (local.set $r (call $read_body (i32.const 0)
                                  (i32.add (i32.const 4096) (local.get $off))
                                  (i32.sub (i32.const 120000) (local.get $off))))
              (local.set $off (i32.add (local.get $off) (i32.wrap_i64 (local.get $r))))
              (br_if $more (i64.eqz (i64.shr_u (local.get $r) (i64.const 32)))))
            (call $write_body (i32.const 1) (i32.const 4096) (local.get $off))
            (i64.const 0))
          (func (export "handle_response") (param i32 i32)))"#,
    )
    .unwrap()
}

/// `value` as a TOML inline value (JSON strings are valid TOML basic
/// strings for the characters used here).
fn toml(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", Value::from(k.as_str()), toml(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Null => panic!("TOML has no null"),
        other => other.to_string(),
    }
}

/// A server with `/hello`, the given `[[middleware]]` (name, module name
/// without `.wasm`, config) and `[[function]]` routes (route, module name
/// without `.wasm` — `echo`, `never` or `mirror` — and middleware names).
fn server(middleware: &[(&str, &str, Value)], routes: &[(&str, &str, &[&str])]) -> Server {
    let tmp = TempDir::new("middleware-examples");
    let mut files: Vec<(String, PathBuf)> = vec![
        ("hello.wasm".into(), function("hello.wasm")),
        ("echo.wasm".into(), function("echo.wasm")),
        ("never.wasm".into(), tmp.write("never.wasm", never())),
        ("mirror.wasm".into(), tmp.write("mirror.wasm", mirror())),
    ];
    for name in MIDDLEWARE {
        files.push((format!("{name}.wasm"), function(&format!("{name}.wasm"))));
    }
    let mut config = String::from("[[function]]\nroute = \"/hello\"\nmodule = \"hello.wasm\"\n");
    for (name, module, cfg) in middleware {
        config.push_str(&format!(
            "[[middleware]]\nname = \"{name}\"\nmodule = \"{module}.wasm\"\nconfig = {}\n",
            toml(cfg)
        ));
    }
    for (route, module, chain) in routes {
        let chain: Vec<Value> = chain.iter().map(|m| Value::from(*m)).collect();
        config.push_str(&format!(
            "[[function]]\nroute = \"{route}\"\nmodule = \"{module}.wasm\"\nmiddleware = {}\n",
            Value::from(chain)
        ));
    }
    let files: Vec<(&str, PathBuf)> = files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    Server::with_config(&config, &files)
}

/// Asserts a middleware's own JSON answer: status, `error`, no wasmgate
/// error kind (the guest answered, the server did not fail). Returns the
/// body.
fn assert_refused(r: &Response, status: u16, error: &str) -> Value {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert!(r.header("x-wasmgate-error").is_none(), "{r:?}");
    let body = r.json();
    assert_eq!(body["error"], error, "{body}");
    body
}

/// The header fields the echo function saw, as `(name, value)` pairs.
fn echoed_headers(r: &Response) -> Vec<(String, String)> {
    serde_json::from_value(r.json()["headers"].clone()).unwrap()
}

fn echoed_header(r: &Response, name: &str) -> Vec<String> {
    echoed_headers(r)
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect()
}

const WEBHOOK_BODY: &str = r#"{"event":"push","ref":"main"}"#;
/// HMAC-SHA256 of WEBHOOK_BODY under `webhook-secret`.
const WEBHOOK_SIGNATURE: &str =
    "sha256=519dba301674e3c276c84529c876e8555a9ca5c9d4eb8f21e3690b1730a9a1e9";

#[test]
fn hmac_verify_passes_signed_bodies_and_refuses_the_rest_with_401() {
    let s = server(
        &[(
            "verify",
            "hmac-verify",
            json!({ "secret": "webhook-secret", "header": "x-hub-signature-256" }),
        )],
        &[
            ("/echo", "echo", &["verify"]),
            ("/never", "never", &["verify"]),
        ],
    );
    let r = s.request(
        "POST",
        "/echo",
        &[("x-hub-signature-256", WEBHOOK_SIGNATURE)],
        WEBHOOK_BODY.as_bytes(),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The body was read by the middleware and still reached the function.
    assert_eq!(r.json()["body"], WEBHOOK_BODY);

    for (headers, body, reason) in [
        (
            vec![("x-hub-signature-256", WEBHOOK_SIGNATURE)],
            r#"{"event":"push","ref":"evil"}"#,
            "signature mismatch",
        ),
        (vec![], WEBHOOK_BODY, "missing x-hub-signature-256 header"),
        (
            vec![("x-hub-signature-256", "sha256=00")],
            WEBHOOK_BODY,
            "malformed x-hub-signature-256 header: expected sha256=<64 hex digits>",
        ),
    ] {
        let r = s.request("POST", "/never", &headers, body.as_bytes());
        let json = assert_refused(&r, 401, "unauthorized");
        assert_eq!(json["reason"], reason);
    }
    s.assert_healthy();
}

#[test]
fn jwt_verify_checks_signature_and_clock_and_passes_sub_on() {
    // Tokens signed offline: HS256 under `jwt-test-secret`; ES256 with the
    // P-256 key whose public JWK is below. exp 4102444800 is 2100-01-01,
    // 1000000000 is 2001-09-09: the guest's WASI clock must be the real one.
    const HS_OK: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.fDxpHQ34RLRLi0iCK1eA89d8rlidrU2gYP8yy5jG4hE";
    const HS_EXPIRED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTAwMDAwMDAwMH0.iiIRqgfBiLZmF8HMO-c4nZNKuHGQ6u2qKIXFJVi9l0s";
    const HS_NOT_YET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwibmJmIjo0MDAwMDAwMDAwfQ.xFXo1Qkl2WsymMw-Sne9gHY1thjufbv61ebW9rFLngc";
    const ES_OK: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZXZpY2UtOSIsImV4cCI6NDEwMjQ0NDgwMH0.itWdvfKej56tvWFWH7LE2fhisx7rYS-P2yt-q6NfYpDfKWC1pnTBfsDa8m0oAJzFOmWgj0MVs37S8CDw1z2otQ";
    let s = server(
        &[
            (
                "hs",
                "jwt-verify",
                json!({ "hs256_secret": "jwt-test-secret" }),
            ),
            (
                "es",
                "jwt-verify",
                json!({
                    "es256_jwk": {
                        "kty": "EC", "crv": "P-256",
                        "x": "OtOGGpViE5JRa7WT7wVYPtLlhm9ctiYKMBcjf9ibkK8",
                        "y": "0JYcfjcHWmeRo5xh9WKVsCttJlZ7YV5gqkHuHI6DOI0",
                    },
                    "sub_header": "x-device",
                }),
            ),
        ],
        &[
            ("/echo", "echo", &["hs"]),
            ("/device", "echo", &["es"]),
            ("/never", "never", &["hs"]),
        ],
    );
    let bearer = |t: &str| format!("Bearer {t}");

    // A good token passes; sub is passed on, a client-sent x-jwt-sub is not.
    let auth = bearer(HS_OK);
    let r = s.get_with(
        "/echo",
        &[("authorization", &auth), ("x-jwt-sub", "mallory")],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(echoed_header(&r, "x-jwt-sub"), ["alice"]);

    let auth = bearer(ES_OK);
    let r = s.get_with("/device", &[("authorization", &auth)]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(echoed_header(&r, "x-device"), ["device-9"]);

    for (auth, reason) in [
        (bearer(HS_EXPIRED), "token expired"),
        (bearer(HS_NOT_YET), "token not yet valid (nbf)"),
        (bearer(ES_OK), "algorithm ES256 not accepted"),
        (bearer(&HS_OK.replace(".fDx", ".gDx")), "invalid signature"),
        ("Basic YTpi".into(), "missing bearer token"),
    ] {
        let r = s.get_with("/never", &[("authorization", &auth)]);
        let json = assert_refused(&r, 401, "unauthorized");
        assert_eq!(json["reason"], reason, "{auth}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    let r = s.get("/never");
    assert_eq!(
        assert_refused(&r, 401, "unauthorized")["reason"],
        "missing bearer token"
    );
    s.assert_healthy();
}

#[test]
fn json_schema_passes_valid_bodies_and_lists_violations_with_400() {
    let schema = json!({
        "type": "object",
        "required": ["id", "qty"],
        "properties": {
            "id": { "type": "string", "pattern": "^[A-Z][0-9]+$" },
            "qty": { "type": "integer", "minimum": 1, "maximum": 100 },
            "tags": { "type": "array", "items": { "type": "string", "maxLength": 3 } },
        },
        "additionalProperties": false,
    });
    let s = server(
        &[("schema", "json-schema", json!({ "schema": schema }))],
        &[
            ("/echo", "echo", &["schema"]),
            ("/never", "never", &["schema"]),
        ],
    );
    let body = r#"{"id":"A7","qty":3,"tags":["x"]}"#;
    let r = s.request("POST", "/echo", &[], body.as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], body);

    let r = s.request(
        "POST",
        "/never",
        &[],
        br#"{"id":"a7","qty":0,"tags":["long"],"x":1}"#,
    );
    let json = assert_refused(&r, 400, "invalid-body");
    let mut got: Vec<(String, String)> = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["path"].as_str().unwrap().to_string(),
                v["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("/id", "must match the pattern ^[A-Z][0-9]+$"),
            ("/qty", "must be >= 1"),
            ("/tags/0", "must be at most 3 characters long"),
            ("/x", "additional property not allowed"),
        ]
        .map(|(p, m)| (p.to_string(), m.to_string()))
    );

    // Nesting: 64 levels are validated inside the guest's 32 KiB stack;
    // deeper bodies are refused with the reason before parsing.
    let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
    let r = s.request("POST", "/never", &[], nested(64).as_bytes());
    let json = assert_refused(&r, 400, "invalid-body");
    assert_eq!(
        json["violations"][0]["message"],
        "expected object, got array"
    );
    let r = s.request("POST", "/never", &[], nested(5000).as_bytes());
    let json = assert_refused(&r, 400, "invalid-body");
    assert_eq!(
        json["violations"][0]["message"],
        "body nests deeper than 64 levels"
    );

    let r = s.request("POST", "/never", &[], b"{\"id\":");
    let json = assert_refused(&r, 400, "invalid-body");
    assert_eq!(json["violations"][0]["path"], "");
    assert!(
        json["violations"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("body is not JSON")
    );
    s.assert_healthy();
}

#[test]
fn waf_refuses_attacks_in_path_query_and_body_with_the_rule_id() {
    let s = server(
        &[(
            "waf",
            "waf",
            json!({ "rules": [{ "id": "no-debug", "pattern": "(?i)debug=1", "in": ["query"] }] }),
        )],
        &[
            ("/echo", "echo", &["waf"]),
            ("/files/*", "never", &["waf"]),
            ("/never", "never", &["waf"]),
        ],
    );
    let r = s.request(
        "POST",
        "/echo?q=union+station&page=2",
        &[],
        br#"{"name":"O'Brien"}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], r#"{"name":"O'Brien"}"#);

    for (method, target, body, rule, place) in [
        (
            "GET",
            "/never?id=1+UNION+SELECT+password+FROM+users",
            "",
            "sqli-union",
            "query",
        ),
        (
            "POST",
            "/never",
            "user=admin&pass=' OR '1'='1",
            "sqli-tautology",
            "body",
        ),
        // (`/files/%2e%2e/` never gets here: the server refuses dot segments.)
        (
            "GET",
            "/files/%252e%252e/%252e%252e/etc/passwd",
            "",
            "traversal-encoded",
            "path",
        ),
        (
            "GET",
            "/never?file=..%2F..%2Fetc%2Fpasswd",
            "",
            "traversal-encoded",
            "query",
        ),
        (
            "POST",
            "/never",
            "<script>alert(1)</script>",
            "xss-script",
            "body",
        ),
        ("GET", "/never?debug=1", "", "no-debug", "query"),
    ] {
        let r = s.request(method, target, &[], body.as_bytes());
        let json = assert_refused(&r, 403, "forbidden");
        assert_eq!(json["rule"], rule, "{target} {body}");
        assert_eq!(json["in"], place, "{target} {body}");
        // The rule, never the matched text, is named.
        assert!(!r.text().contains("script>") && !r.text().contains("passwd"));
    }
    // A body over max_body_inspect (default 8 KiB) is refused, not let
    // through unread.
    let r = s.request("POST", "/never", &[], &[b'x'; 8193]);
    let json = assert_refused(&r, 413, "body-too-large-to-inspect");
    assert_eq!(
        json["reason"],
        "the body is over max_body_inspect (8192 bytes)"
    );
    let r = s.request("POST", "/echo", &[], &[b'x'; 8192]);
    assert_eq!(r.status, 200, "{r:?}");
    s.assert_healthy();
}

#[test]
fn cors_answers_preflights_refuses_other_origins_and_sets_response_headers() {
    let s = server(
        &[(
            "cors",
            "cors",
            json!({
                "allowed_origins": ["https://app.example.com"],
                "allowed_methods": ["GET", "PUT"],
                "allowed_headers": ["content-type", "x-api-key"],
                "exposed_headers": ["x-request-id"],
                "allow_credentials": true,
                "max_age": 600,
            }),
        )],
        &[("/echo", "echo", &["cors"]), ("/never", "never", &["cors"])],
    );
    let origin = ("origin", "https://app.example.com");

    // A preflight is answered by the middleware: the function never runs.
    let r = s.request(
        "OPTIONS",
        "/never",
        &[
            origin,
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "Content-Type, X-Api-Key"),
        ],
        b"",
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.body.is_empty());
    for (name, value) in [
        ("access-control-allow-origin", "https://app.example.com"),
        ("access-control-allow-methods", "GET, PUT"),
        ("access-control-allow-headers", "content-type, x-api-key"),
        ("access-control-max-age", "600"),
        ("access-control-allow-credentials", "true"),
    ] {
        assert_eq!(r.header(name), Some(value), "{name}: {r:?}");
    }

    for (headers, reason) in [
        (
            vec![
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ],
            "origin not allowed",
        ),
        (
            vec![origin, ("access-control-request-method", "DELETE")],
            "method DELETE not allowed",
        ),
    ] {
        let r = s.request("OPTIONS", "/never", &headers, b"");
        assert_eq!(assert_refused(&r, 403, "cors-denied")["reason"], reason);
    }
    let r = s.get_with("/never", &[("origin", "https://evil.example")]);
    assert_eq!(
        assert_refused(&r, 403, "cors-denied")["reason"],
        "origin not allowed"
    );

    // An allowed request reaches the function; the response gets the headers.
    let r = s.get_with("/echo", &[origin]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(r.json()["method"], "GET");

    // Without Origin it is not a CORS request: untouched.
    let r = s.get("/echo");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
    s.assert_healthy();
}

#[test]
fn xml_to_json_converts_xml_responses_and_answers_502_for_broken_xml() {
    let s = server(
        &[("xml", "xml-to-json", json!({}))],
        &[("/mirror", "mirror", &["xml"])],
    );
    let xml = r#"<?xml version="1.0"?><order id="A1"><item sku="x1">Bolt</item><item sku="x2">Nut</item><total>12.50</total></order>"#;
    let r = s.request(
        "POST",
        "/mirror",
        &[("x-ct", "application/xml")],
        xml.as_bytes(),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        r##"{"order":{"@id":"A1","item":[{"@sku":"x1","#text":"Bolt"},{"@sku":"x2","#text":"Nut"}],"total":"12.50"}}"##
    );

    // Other content types pass untouched.
    let r = s.request("POST", "/mirror", &[("x-ct", "text/plain")], xml.as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.text(), xml);

    // 128 levels convert inside the guest's 32 KiB stack; deeper is 502.
    let nested = |d: usize| format!("{}{}", "<a>".repeat(d), "</a>".repeat(d));
    let xml = ("x-ct", "application/xml");
    let r = s.request("POST", "/mirror", &[xml], nested(128).as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().starts_with(r#"{"a":{"a":{"#), "{}", r.text());
    let r = s.request("POST", "/mirror", &[xml], nested(5000).as_bytes());
    let json = assert_refused(&r, 502, "bad-upstream-xml");
    assert_eq!(
        json["reason"],
        "upstream XML nests elements deeper than 128 levels"
    );

    let r = s.request(
        "POST",
        "/mirror",
        &[("x-ct", "text/xml; charset=utf-8")],
        b"<order><item></order>",
    );
    let json = assert_refused(&r, 502, "bad-upstream-xml");
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed upstream XML"),
        "{json}"
    );
    s.assert_healthy();
}

#[test]
fn three_example_middleware_chain_in_order_and_a_misconfigured_one_fails_closed() {
    let s = server(
        &[
            ("waf", "waf", json!({})),
            (
                "verify",
                "hmac-verify",
                json!({ "secret": "webhook-secret" }),
            ),
            (
                "schema",
                "json-schema",
                json!({ "schema": { "type": "object", "required": ["event"] } }),
            ),
            // No secret: the guest refuses every request with 500.
            ("broken", "hmac-verify", json!({})),
        ],
        &[
            ("/echo", "echo", &["waf", "verify", "schema"]),
            ("/never", "never", &["waf", "verify", "schema"]),
            ("/broken", "never", &["broken"]),
        ],
    );
    let sig = ("x-signature", WEBHOOK_SIGNATURE);
    let r = s.request("POST", "/echo", &[sig], WEBHOOK_BODY.as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], WEBHOOK_BODY);

    // The WAF runs first: an attack is refused before the signature check.
    let r = s.request("POST", "/never?id=1+UNION+SELECT+1", &[], b"{}");
    assert_eq!(assert_refused(&r, 403, "forbidden")["rule"], "sqli-union");
    // Then the signature, before the schema.
    let r = s.request("POST", "/never", &[], b"[]");
    assert_eq!(
        assert_refused(&r, 401, "unauthorized")["reason"],
        "missing x-signature header"
    );

    let r = s.request("POST", "/broken", &[], b"{}");
    let json = assert_refused(&r, 500, "middleware-misconfigured");
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .starts_with("hmac-verify: `secret` (or `secret_env`) is required"),
        "{json}"
    );
    s.assert_healthy();
}
