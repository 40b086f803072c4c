//! Parsing a complete message head, of a request (the server's side) or of
//! a response (a client's side), and applying the framing rules of RFC 9112:
//! where the body ends, whether the connection stays open, whether the
//! peer waits for `100 Continue`. The result is a [`ParsedMessage`], as in
//! hyper.

use super::syntax::{names_another_version, parse_content_length, request_target, valid_authority};
use crate::error::DecodeError;

/// Header fields parsed without a heap allocation. Defaults to 32: a
/// typical request has 5–20. A head with more lines gets a buffer sized by
/// its line count (at most `max_headers`), never by the config alone.
const INLINE_HEADERS: usize = 32;

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: a request with neither field; a response to HEAD, or
    /// with status 1xx, 204 or 304.
    None,
    /// `Content-Length`.
    Fixed(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// A response with no framing field (or a coding other than
    /// `chunked`): the body ends when the server closes the connection.
    UntilClose,
}

impl BodyLength {
    /// Whether body bytes may follow the head.
    pub fn has_body(self) -> bool {
        !matches!(self, BodyLength::None | BodyLength::Fixed(0))
    }
}

/// A request line: what a server routes on.
#[derive(Debug)]
pub struct RequestLine {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The target in origin-form (see [`super::Request::uri`]).
    pub uri: String,
}

/// A status line: what a client learns first.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // read by the gateway's client, later
pub struct StatusLine {
    /// The status code.
    pub status: u16,
}

/// A parsed and checked message head: its first line, its fields, and how
/// the message goes on (hyper's `ParsedMessage`).
#[derive(Debug)]
pub struct ParsedMessage<L> {
    /// The request line or status line.
    pub line: L,
    /// Header fields in order; names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Where the body ends.
    pub body: BodyLength,
    /// Whether the connection may carry another message after this one.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before it sends the
    /// body (a request only; the reader never writes the interim response).
    pub expect_continue: bool,
    /// Whether the message is HTTP/1.1 (else 1.0).
    pub http11: bool,
}

/// A parsed request head.
pub type RequestHead = ParsedMessage<RequestLine>;

/// A parsed response head.
pub type ResponseHead = ParsedMessage<StatusLine>;

/// The header slots for a head of `head.len()` bytes, at most
/// `max_headers`: on the stack for a typical head, else sized by the head's
/// line count, never by the config alone.
fn with_slots<'h, T>(
    head: &'h [u8],
    max_headers: usize,
    parse: impl FnOnce(&mut [httparse::Header<'h>]) -> T,
) -> T {
    // Every line but the first line and the blank one is a field line.
    let lines = head.iter().filter(|&&b| b == b'\n').count();
    let slots = lines.saturating_sub(2).min(max_headers);
    if slots <= INLINE_HEADERS {
        let mut headers = [httparse::EMPTY_HEADER; INLINE_HEADERS];
        parse(&mut headers[..slots])
    } else {
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        parse(&mut headers)
    }
}

/// Parses a complete request head (ending in its blank line) and applies
/// the framing rules. The header buffer grows with the head's line count,
/// up to `max_headers`: a huge configured limit is never allocated by
/// itself. `encoded_slash`: whether the path may hold `%2F`
/// (`[server] allow_encoded_slash`).
pub fn parse_request(
    head: &[u8],
    max_headers: usize,
    encoded_slash: bool,
) -> Result<RequestHead, DecodeError> {
    with_slots(head, max_headers, |slots| {
        parse_request_with(head, slots, encoded_slash)
    })
}

fn parse_request_with<'h>(
    head: &'h [u8],
    slots: &mut [httparse::Header<'h>],
    encoded_slash: bool,
) -> Result<RequestHead, DecodeError> {
    let mut parsed = httparse::Request::new(slots);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(DecodeError::Malformed("malformed request head")),
        Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
        Err(httparse::Error::Version) if names_another_version(head) => {
            return Err(DecodeError::UnsupportedVersion);
        }
        Err(e) => return Err(DecodeError::Malformed(head_error(e))),
    }
    let method = parsed.method.unwrap_or_default();
    if method == "CONNECT" {
        // Its target is authority-form (RFC 9112 §3.2.3): a tunnel, not a
        // function call.
        return Err(DecodeError::Malformed("CONNECT is not served"));
    }
    let http11 = parsed.version == Some(1);
    let (uri, authority) = request_target(parsed.path.unwrap_or_default(), encoded_slash)
        .map_err(DecodeError::Malformed)?;

    let mut host: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_asked = false;
    let mut expect_continue = false;
    // httparse shrank the slots to the fields parsed: exactly the room
    // needed, no more than the head holds.
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "host" => {
                if host.is_some() {
                    return Err(DecodeError::Malformed("more than one host field"));
                }
                if !valid_authority(h.value) {
                    return Err(DecodeError::Malformed("invalid host field"));
                }
                host = Some(h.value);
            }
            "content-length" => {
                // Even identical repeats (RFC 9110 §8.6 allows either).
                if content_length.is_some() {
                    return Err(DecodeError::Malformed("more than one content-length field"));
                }
                content_length =
                    Some(parse_content_length(h.value).map_err(DecodeError::Malformed)?);
            }
            "transfer-encoding" => {
                // Exactly one field `chunked`: any other coding is not
                // implemented, and `chunked, chunked` or a second field is
                // read differently by different parsers.
                if chunked {
                    return Err(DecodeError::Malformed(
                        "more than one transfer-encoding field",
                    ));
                }
                if !h.value.eq_ignore_ascii_case(b"chunked") {
                    return Err(DecodeError::Malformed(
                        "transfer-encoding must be exactly `chunked`",
                    ));
                }
                chunked = true;
            }
            "connection" => connection_tokens(h.value, &mut close, &mut keep_alive_asked),
            // An HTTP/1.0 client cannot read a 100 (RFC 9110 §10.1.1).
            "expect" => {
                expect_continue = http11 && h.value.eq_ignore_ascii_case(b"100-continue");
            }
            _ => {}
        }
        headers.push((name, h.value.to_vec()));
    }
    if http11 && host.is_none() {
        return Err(DecodeError::Malformed(
            "missing host field (required in HTTP/1.1)",
        ));
    }
    if let (Some(authority), Some(host)) = (authority, host)
        && !host.eq_ignore_ascii_case(authority.as_bytes())
    {
        return Err(DecodeError::Malformed(
            "host field differs from the authority of the request target",
        ));
    }
    let body = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(DecodeError::Malformed(
                "both content-length and transfer-encoding",
            ));
        }
        (true, None) => BodyLength::Chunked,
        (false, Some(n)) => BodyLength::Fixed(n),
        (false, None) => BodyLength::None,
    };
    // `close` wins over `keep-alive` (RFC 9112 §9.6). An HTTP/1.0 message
    // with Transfer-Encoding has faulty framing: serve it, then close
    // (RFC 9112 §6.1).
    let keep_alive = !close && (http11 || keep_alive_asked) && (http11 || !chunked);
    Ok(ParsedMessage {
        line: RequestLine {
            method: method.to_owned(),
            uri,
        },
        headers,
        body,
        keep_alive,
        expect_continue,
        http11,
    })
}

/// What was wrong with a head httparse refused, for the 400's message.
fn head_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header field name",
        httparse::Error::HeaderValue => "invalid byte in a header field value",
        httparse::Error::NewLine => "invalid line ending in the request head",
        httparse::Error::Token => "invalid method or request target",
        httparse::Error::Version => "invalid HTTP version",
        _ => "malformed request head",
    }
}

/// Reads the tokens of a `connection` field: `close` and `keep-alive`.
fn connection_tokens(value: &[u8], close: &mut bool, keep_alive: &mut bool) {
    for token in value.split(|&b| b == b',') {
        let token = token.trim_ascii();
        *close |= token.eq_ignore_ascii_case(b"close");
        *keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
    }
}

/// Parses a complete response head (ending in its blank line), the answer
/// to a request with method `request_method`, and applies the framing
/// rules of RFC 9112 §6.3 in their order:
///
/// 1. a response to HEAD, and every 1xx, 204 and 304, has no body,
///    whatever its fields say;
/// 2. `Transfer-Encoding` wins over `Content-Length`: chunked when its last
///    coding is `chunked`, else the body runs until the close; either way
///    the connection is not reused (the message may be an attempt at
///    response splitting);
/// 3. one `Content-Length` (identical repeats allowed, RFC 9110 §8.6);
///    conflicting or invalid lengths are refused, as the RFC requires;
/// 4. no framing field: the body runs until the server closes.
///
/// Not reading a body until close is the caller's choice (`max_body`
/// still bounds it).
///
/// Only the tests call it until the gateway's upstream client exists.
#[cfg_attr(not(test), allow(dead_code))]
pub fn parse_response(
    head: &[u8],
    max_headers: usize,
    request_method: &str,
) -> Result<ResponseHead, DecodeError> {
    with_slots(head, max_headers, |slots| {
        parse_response_with(head, slots, request_method)
    })
}

fn parse_response_with<'h>(
    head: &'h [u8],
    slots: &mut [httparse::Header<'h>],
    request_method: &str,
) -> Result<ResponseHead, DecodeError> {
    let mut parsed = httparse::Response::new(slots);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(DecodeError::Malformed("malformed response head")),
        Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(DecodeError::UnsupportedVersion),
        Err(httparse::Error::Status) => {
            return Err(DecodeError::Malformed("invalid status code"));
        }
        Err(_) => return Err(DecodeError::Malformed("malformed response head")),
    }
    let status = parsed.code.unwrap_or_default();
    let http11 = parsed.version == Some(1);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut last_coding_chunked = false;
    let mut other_coding = false;
    let mut close = false;
    let mut keep_alive_asked = false;
    // httparse shrank the slots to the fields parsed: exactly the room
    // needed, no more than the head holds.
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let n = parse_content_length(h.value).map_err(DecodeError::Malformed)?;
                if content_length.is_some_and(|m| m != n) {
                    return Err(DecodeError::Malformed(
                        "content-length fields with different values",
                    ));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                // The codings of all fields form one list; the last decides.
                transfer_encoding = true;
                other_coding |= h
                    .value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"chunked"));
                if let Some(last) = h.value.rsplit(|&b| b == b',').next() {
                    let last = last.trim_ascii();
                    if !last.is_empty() {
                        last_coding_chunked = last.eq_ignore_ascii_case(b"chunked");
                    }
                }
            }
            "connection" => connection_tokens(h.value, &mut close, &mut keep_alive_asked),
            _ => {}
        }
        headers.push((name, h.value.to_vec()));
    }
    // RFC 9112 §4: three digits. httparse takes 000–099 too, which would
    // go to the client as a status line of fewer digits.
    if status < 100 {
        return Err(DecodeError::Malformed("status code below 100"));
    }
    let bodiless =
        request_method == "HEAD" || (100..200).contains(&status) || matches!(status, 204 | 304);
    // A coding other than chunked (gzip, compress, deflate…) is not
    // decoded here, and the field is hop-by-hop: passed on, the client
    // would read the coded bytes as the body. Refused, as nginx does.
    if other_coding && !bodiless {
        return Err(DecodeError::Malformed(
            "a transfer coding other than chunked",
        ));
    }
    let body = match (bodiless, transfer_encoding, content_length) {
        (true, _, _) => BodyLength::None,
        (false, true, _) if last_coding_chunked => BodyLength::Chunked,
        (false, true, _) => BodyLength::UntilClose,
        (false, false, Some(n)) => BodyLength::Fixed(n),
        (false, false, None) => BodyLength::UntilClose,
    };
    let framing_doubtful = transfer_encoding && (content_length.is_some() || !http11);
    let keep_alive = !close
        && (http11 || keep_alive_asked)
        && !framing_doubtful
        && body != BodyLength::UntilClose;
    Ok(ParsedMessage {
        line: StatusLine { status },
        headers,
        body,
        keep_alive,
        expect_continue: false,
        http11,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(head: &str, method: &str) -> Result<ResponseHead, DecodeError> {
        parse_response(head.as_bytes(), 64, method)
    }

    fn body(head: &str) -> BodyLength {
        match response(head, "GET") {
            Ok(parsed) => parsed.body,
            Err(e) => panic!("{head:?}: {e:?}"),
        }
    }

    #[test]
    fn rfc9112_6_3_1xx_204_304_have_no_body() {
        for status in [
            "100 Continue",
            "101 Switching Protocols",
            "204 No Content",
            "304 Not Modified",
        ] {
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            assert_eq!(body(&head), BodyLength::None, "{status}");
        }
    }

    /// Where the body of a response to `method` ends, and whether the
    /// connection is reused.
    fn framing(head: &str, method: &str) -> (BodyLength, bool) {
        let parsed = response(head, method).unwrap();
        (parsed.body, parsed.keep_alive)
    }

    #[test]
    fn rfc9112_6_3_response_to_head_has_no_body() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(framing(head, "HEAD"), (BodyLength::None, true));
    }

    #[test]
    fn rfc9112_6_3_chunked_wins_over_content_length() {
        // Doubtful framing: the connection is not reused.
        let both = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(framing(both, "GET"), (BodyLength::Chunked, false));
        let twice =
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(framing(twice, "GET"), (BodyLength::Chunked, true));
    }

    #[test]
    fn a_transfer_coding_other_than_chunked_is_refused_when_there_is_a_body() {
        // Not decoded here and hop-by-hop: the client would get the coded
        // bytes as the body.
        for te in [
            "gzip, chunked",
            "chunked, gzip",
            "gzip",
            "x-custom",
            "chunked\r\ntransfer-encoding: deflate",
        ] {
            let head = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: {te}\r\n\r\n");
            let r = response(&head, "GET");
            assert!(
                matches!(
                    r,
                    Err(DecodeError::Malformed(
                        "a transfer coding other than chunked"
                    ))
                ),
                "{te}: {r:?}"
            );
            // No body, nothing to misread: a HEAD's or a 304's head passes.
            assert_eq!(framing(&head, "HEAD").0, BodyLength::None, "{te}");
            let head = format!("HTTP/1.1 304 Not Modified\r\ntransfer-encoding: {te}\r\n\r\n");
            assert_eq!(framing(&head, "GET").0, BodyLength::None, "{te}");
        }
    }

    #[test]
    fn rfc9112_4_a_status_below_100_is_refused() {
        for code in ["000", "042", "099"] {
            let r = response(
                &format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\n\r\n"),
                "GET",
            );
            assert!(
                matches!(r, Err(DecodeError::Malformed("status code below 100"))),
                "{code}: {r:?}"
            );
        }
        assert_eq!(
            framing("HTTP/1.1 100 Continue\r\n\r\n", "GET").0,
            BodyLength::None
        );
    }

    #[test]
    fn rfc9112_6_3_conflicting_lengths_are_refused() {
        let r = response(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "GET",
        );
        assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
        let r = response("HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n", "GET");
        assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
        let r = response("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "GET");
        assert!(matches!(r, Err(DecodeError::Malformed(_))), "{r:?}");
        // Identical repeats are one length (RFC 9110 §8.6).
        assert_eq!(
            body("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n"),
            BodyLength::Fixed(5)
        );
    }

    #[test]
    fn rfc9112_6_3_no_framing_reads_until_close() {
        let parsed = response("HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\n", "GET").unwrap();
        assert_eq!(parsed.body, BodyLength::UntilClose);
        assert!(!parsed.keep_alive);
        assert_eq!(parsed.line.status, 200);
        assert_eq!(parsed.headers, [("x-a".to_owned(), b"1".to_vec())]);
    }

    #[test]
    fn rfc9112_9_3_keep_alive_follows_version_and_connection() {
        let ok = "content-length: 0\r\n\r\n";
        assert!(
            response(&format!("HTTP/1.1 200 OK\r\n{ok}"), "GET")
                .unwrap()
                .keep_alive
        );
        assert!(
            !response(
                &format!("HTTP/1.1 200 OK\r\nconnection: close\r\n{ok}"),
                "GET"
            )
            .unwrap()
            .keep_alive
        );
        assert!(
            !response(&format!("HTTP/1.0 200 OK\r\n{ok}"), "GET")
                .unwrap()
                .keep_alive
        );
        assert!(
            response(
                &format!("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n{ok}"),
                "GET"
            )
            .unwrap()
            .keep_alive
        );
    }

    #[test]
    fn malformed_status_lines_are_refused() {
        for head in [
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 OK\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
        ] {
            assert!(response(head, "GET").is_err(), "{head:?}");
        }
        assert!(matches!(
            response("HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\n\r\n", "GET").map(|_| ()),
            Ok(())
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\n\r\n", 1, "GET"),
            Err(DecodeError::TooManyHeaders)
        ));
    }

    #[test]
    fn request_heads_report_expect_continue_and_leave_the_answer_to_the_caller() {
        let parsed = parse_request(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            64,
            false,
        )
        .unwrap();
        assert!(parsed.expect_continue);
        assert_eq!(parsed.body, BodyLength::Fixed(2));
        let parsed = parse_request(
            b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            64,
            false,
        )
        .unwrap();
        assert!(!parsed.expect_continue);
    }
}
