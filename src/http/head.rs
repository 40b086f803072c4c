//! Parsing a complete message head and applying the framing rules of
//! RFC 9112: where the body ends, whether the connection stays open.

use super::syntax::{names_another_version, parse_content_length, request_target, valid_authority};
use crate::error::DecodeError;

/// Header fields parsed without a heap allocation. Defaults to 32: a
/// typical request has 5–20. A head with more lines gets a buffer sized by
/// its line count (at most `max_headers`), never by the config alone.
const INLINE_HEADERS: usize = 32;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyLength {
    /// Neither field: no body.
    None,
    /// `Content-Length`.
    Fixed(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed and checked request head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) method: String,
    pub(super) uri: String,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: BodyLength,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
}

/// Parses a complete head (ending in its blank line) and applies the
/// framing rules. The header buffer grows with the head's line count, up to
/// `max_headers`: a huge configured limit is never allocated by itself.
pub(super) fn parse_head(head: &[u8], max_headers: usize) -> Result<Head, DecodeError> {
    // Every line but the request line and the blank one is a field line.
    let lines = head.iter().filter(|&&b| b == b'\n').count();
    let slots = lines.saturating_sub(2).min(max_headers);
    if slots <= INLINE_HEADERS {
        let mut headers = [httparse::EMPTY_HEADER; INLINE_HEADERS];
        parse_head_with(head, &mut headers[..slots])
    } else {
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        parse_head_with(head, &mut headers)
    }
}

fn parse_head_with<'h>(
    head: &'h [u8],
    slots: &mut [httparse::Header<'h>],
) -> Result<Head, DecodeError> {
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
    let (uri, authority) =
        request_target(parsed.path.unwrap_or_default()).map_err(DecodeError::Malformed)?;

    let mut host: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_asked = false;
    let mut expect_continue = false;
    let mut headers = Vec::new();
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
            "connection" => {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_asked |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
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
    Ok(Head {
        method: method.to_owned(),
        uri,
        headers,
        body,
        keep_alive,
        expect_continue,
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
