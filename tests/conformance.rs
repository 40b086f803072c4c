//! HTTP/1.1 conformance (RFC 9112, and the parts of RFC 9110 and RFC 3986
//! that decide framing and routing): every row of `http_cases` is sent to
//! the real server over a real socket, on its own connection. Each row
//! asserts the responses (status, error kind, what the guest received),
//! whether the connection is closed afterwards, and that the server still
//! serves others.

mod common;
mod http_cases;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{HELLO, Server, function};
use http_cases::{Answer, Case, cases};

fn server() -> Server {
    Server::serve_dir(&function(""))
}

/// Sends one row and checks everything it promises.
fn check(s: &Server, case: &Case) {
    let mut conn = s.connect();
    conn.send(&case.bytes);
    if case.close_write {
        conn.close_write();
    }
    for (i, answer) in case.answers.iter().enumerate() {
        let r = conn.read_response(false);
        match answer {
            Answer::Hello => {
                assert_eq!(r.status, 200, "answer {i}: {r:?}");
                assert_eq!(r.text(), HELLO, "answer {i}");
            }
            Answer::Echo { method, uri, body } => {
                assert_eq!(r.status, 200, "answer {i}: {r:?}");
                let json = r.json();
                assert_eq!(json["method"], *method, "answer {i}: {json}");
                assert_eq!(json["uri"], *uri, "answer {i}: {json}");
                let body = String::from_utf8_lossy(body);
                assert_eq!(json["body"], *body, "answer {i}: {json}");
            }
            Answer::Error { status, kind } => {
                r.assert_error(*status, kind);
                assert!(r.header("x-trace-id").is_some(), "answer {i}: {r:?}");
                if case.closes && i + 1 == case.answers.len() {
                    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
                }
            }
        }
    }
    if case.closes {
        let rest = conn.read_to_close();
        assert!(
            rest.is_empty(),
            "more bytes after the last answer: {:?}",
            String::from_utf8_lossy(&rest)
        );
    } else {
        let r = conn.request("GET", "/hello", &[], b"");
        assert_eq!(r.status, 200, "connection unusable afterwards: {r:?}");
        assert_eq!(r.text(), HELLO);
    }
    s.assert_healthy();
}

/// Every row against one server; failures are collected so that one run
/// names every rule that is broken.
#[test]
fn conformance_table() {
    let s = server();
    let mut failed = Vec::new();
    for case in cases() {
        if catch_unwind(AssertUnwindSafe(|| check(&s, &case))).is_err() {
            failed.push(case.name);
        }
    }
    assert!(
        failed.is_empty(),
        "{} rule(s) broken: {failed:#?}\nserver log:\n{}",
        failed.len(),
        s.log()
    );
}

/// Row names are unique and follow `rfcNNNN_…`, so a failure names its rule.
#[test]
fn rows_are_named_after_their_rules() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate row names");
    for name in names {
        assert!(
            name.starts_with("rfc9112_")
                || name.starts_with("rfc9110_")
                || name.starts_with("rfc3986_"),
            "{name}"
        );
    }
}
