//! The HTTP/1.1 conformance table, shared by `tests/conformance.rs` (which
//! sends each row to the real server) and `tests/differential.rs` (which
//! feeds each row's bytes to hyper and to wasmgate's decoder).
//!
//! One row per rule, named after its section: `rfc9112_6_3_…` is RFC 9112
//! (HTTP/1.1) §6.3, `rfc9110_…` HTTP semantics, `rfc3986_…` URI syntax. The
//! rows are run against `wasmgate serve functions/`: `/echo` answers with
//! the method, target and body its guest received, `/hello` with a fixed
//! text.

#![allow(dead_code)] // each test binary uses a different part

/// What the server answers to one request of a row.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 from `/echo`: its guest received this method, target and body.
    Echo {
        method: &'static str,
        uri: &'static str,
        body: &'static [u8],
    },
    /// 200 from `/hello`.
    Hello,
    /// An error response of this status and `x-wasmgate-error` kind.
    Error { status: u16, kind: &'static str },
}

/// One rule: bytes sent on one connection and what must come back.
#[derive(Debug, Clone)]
pub struct Case {
    /// `rfcNNNN_section_rule`.
    pub name: &'static str,
    /// Everything the client sends, in one write.
    pub bytes: Vec<u8>,
    /// The client shuts down its side after sending.
    pub close_write: bool,
    /// The responses, in order.
    pub answers: Vec<Answer>,
    /// Whether the server closes the connection after the last answer
    /// (always after a refusal). When it does not, the connection must go
    /// on serving requests.
    pub closes: bool,
}

const BAD: Answer = Answer::Error {
    status: 400,
    kind: "bad-request",
};

fn echo(method: &'static str, uri: &'static str, body: &'static [u8]) -> Answer {
    Answer::Echo { method, uri, body }
}

fn served(name: &'static str, bytes: &[u8], answers: Vec<Answer>) -> Case {
    Case {
        name,
        bytes: bytes.to_vec(),
        close_write: false,
        answers,
        closes: false,
    }
}

fn served_then_closed(name: &'static str, bytes: &[u8], answers: Vec<Answer>) -> Case {
    Case {
        closes: true,
        ..served(name, bytes, answers)
    }
}

fn refused(name: &'static str, bytes: &[u8]) -> Case {
    refused_with(name, bytes, BAD)
}

fn refused_with(name: &'static str, bytes: &[u8], answer: Answer) -> Case {
    Case {
        name,
        bytes: bytes.to_vec(),
        close_write: false,
        answers: vec![answer],
        closes: true,
    }
}

/// A chunked POST to `/echo` with the given chunked body bytes.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut bytes =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// `POST /echo` with one extra header field line (e.g. a content-length)
/// and then `body`.
fn post(field: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("POST /echo HTTP/1.1\r\nHost: x\r\n{field}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `GET target` with `Host: x`.
fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// Every row. Rules of RFC 9112 §6.3 that concern responses only (1, 2 and
/// 7: HEAD, 1xx/204/304, CONNECT, read-until-close) have no request row.
pub fn cases() -> Vec<Case> {
    let hello = || Answer::Hello;
    vec![
        // §2.2 Message parsing: lines end in CRLF. A bare LF or CR is
        // refused everywhere (head, chunk lines, trailers): a parser that
        // accepts bare LF ends the head elsewhere than one that does not.
        refused(
            "rfc9112_2_2_bare_lf_cannot_end_the_head_early",
            b"POST /echo HTTP/1.1\nHost: x\nContent-Length: 20\n\nAAAA\r\n\r\nGET /echo/IN HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_2_2_bare_lf_after_request_line",
            b"GET /hello HTTP/1.1\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_2_2_bare_lf_between_fields",
            b"GET /hello HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
        ),
        refused(
            "rfc9112_2_2_bare_lf_ending_the_head",
            b"GET /hello HTTP/1.1\r\nHost: x\r\n\n",
        ),
        refused(
            "rfc9112_2_2_bare_cr_in_a_field",
            b"GET /hello HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n",
        ),
        served(
            "rfc9112_2_2_empty_lines_before_a_request_are_ignored",
            b"\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![hello()],
        ),
        // §2.3 HTTP version: 1.0 and 1.1 are served, nothing else.
        refused_with(
            "rfc9112_2_3_http_1_2_is_not_served_as_1_1",
            b"GET /hello HTTP/1.2\r\nHost: x\r\n\r\n",
            Answer::Error {
                status: 505,
                kind: "version-not-supported",
            },
        ),
        refused_with(
            "rfc9112_2_3_http_2_0_is_not_supported",
            b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n",
            Answer::Error {
                status: 505,
                kind: "version-not-supported",
            },
        ),
        refused(
            "rfc9112_2_3_version_is_case_sensitive",
            b"GET /hello http/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_2_3_version_with_two_digits",
            b"GET /hello HTTP/1.10\r\nHost: x\r\n\r\n",
        ),
        served_then_closed(
            "rfc9112_2_3_http_1_0_is_served_and_closed",
            b"GET /hello HTTP/1.0\r\n\r\nGET /hello HTTP/1.0\r\n\r\n",
            vec![hello()],
        ),
        // §3 Request line: single spaces, a token method.
        refused(
            "rfc9112_3_request_line_with_two_spaces",
            b"GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_3_request_line_with_space_in_target",
            b"GET /hello there HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_3_request_line_without_version",
            b"GET /hello\r\nHost: x\r\n\r\n",
        ),
        // §3.2 Host: exactly one on HTTP/1.1, at most one on 1.0, valid.
        refused(
            "rfc9112_3_2_missing_host_on_1_1",
            b"GET /hello HTTP/1.1\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_repeated_host",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_repeated_host_on_1_0",
            b"GET /hello HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_invalid_host",
            b"GET /hello HTTP/1.1\r\nHost: x/y\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_host_with_userinfo",
            b"GET /hello HTTP/1.1\r\nHost: u@x\r\n\r\n",
        ),
        served(
            "rfc9112_3_2_host_with_port_and_ip_literal",
            b"GET /hello HTTP/1.1\r\nHost: [::1]:8080\r\n\r\nGET /hello HTTP/1.1\r\nHost: Pi.local:80\r\n\r\n",
            vec![hello(), hello()],
        ),
        served(
            "rfc9112_3_2_empty_host_is_valid",
            b"GET /hello HTTP/1.1\r\nHost:\r\n\r\n",
            vec![hello()],
        ),
        served_then_closed(
            "rfc9112_3_2_http_1_0_without_host",
            b"GET /hello HTTP/1.0\r\n\r\n",
            vec![hello()],
        ),
        // §3.2.1 origin-form: routed and passed on as received.
        served(
            "rfc9112_3_2_1_origin_form_reaches_the_guest_unchanged",
            &get("/echo/a.b/..c/%41?x=/../y&z=%2e%2e"),
            vec![echo("GET", "/echo/a.b/..c/%41?x=/../y&z=%2e%2e", b"")],
        ),
        // §3.2.2 absolute-form: accepted (a server MUST), routed on its path;
        // the guest sees origin-form. Its authority must agree with Host.
        served(
            "rfc9112_3_2_2_absolute_form_is_routed_on_its_path",
            b"GET http://x/echo/a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nGET HTTP://X:80 HTTP/1.1\r\nHost: x:80\r\n\r\n",
            vec![
                echo("GET", "/echo/a?b=1", b""),
                Answer::Error {
                    status: 404,
                    kind: "not-found",
                },
            ],
        ),
        served(
            "rfc9112_3_2_2_absolute_form_with_query_only",
            b"GET http://x?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![Answer::Error {
                status: 404,
                kind: "not-found",
            }],
        ),
        refused(
            "rfc9112_3_2_2_absolute_form_authority_must_match_host",
            b"GET http://y/hello HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_2_absolute_form_with_userinfo",
            b"GET http://u@x/hello HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_2_absolute_form_of_another_scheme",
            b"GET ftp://x/hello HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        // §3.2.3, §3.2.4: authority-form (CONNECT) and asterisk-form are
        // not served by a function server.
        refused(
            "rfc9112_3_2_3_authority_form_is_refused",
            b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_3_connect_with_a_path_is_refused",
            b"CONNECT /echo HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        refused(
            "rfc9112_3_2_4_asterisk_form_is_refused",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        // RFC 3986: a target routes as it reads. Dot-segments (§5.2.4), also
        // percent-encoded, would route elsewhere than a proxy in front
        // decided; a fragment (§3.5) is not part of a request target; only
        // ASCII (§2).
        refused("rfc3986_5_2_4_dot_dot_segment_is_refused", &get("/echo/../hello")),
        refused("rfc3986_5_2_4_dot_segment_is_refused", &get("/echo/./x")),
        refused("rfc3986_5_2_4_trailing_dot_dot_is_refused", &get("/hello/..")),
        refused("rfc3986_5_2_4_trailing_dot_is_refused", &get("/hello/.")),
        refused(
            "rfc3986_5_2_4_encoded_dot_segment_is_refused",
            &get("/echo/%2e%2E/hello"),
        ),
        refused(
            "rfc3986_5_2_4_half_encoded_dot_segment_is_refused",
            &get("/echo/.%2e/hello"),
        ),
        refused(
            "rfc3986_5_2_4_dot_segments_in_absolute_form_are_refused",
            b"GET http://x/echo/../hello HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        // Forms a server behind or in front may read as another path than
        // the one routed: `/pub/..%2fadmin` is `/admin` to a server that
        // decodes before it normalises, `//admin` to one that merges
        // slashes, `\` a `/` to some.
        refused(
            "rfc3986_encoded_slash_in_path_is_refused",
            &get("/echo/..%2fhello"),
        ),
        refused(
            "rfc3986_encoded_backslash_in_path_is_refused",
            &get("/echo/..%5Chello"),
        ),
        refused("rfc3986_backslash_in_path_is_refused", &get("/echo\\..\\hello")),
        refused("rfc3986_path_parameter_is_refused", &get("/echo;x/y")),
        refused("rfc3986_dot_dot_with_parameter_is_refused", &get("/x/..;/echo")),
        refused("rfc3986_empty_segment_is_refused", &get("//echo/x")),
        refused("rfc3986_empty_segment_inside_is_refused", &get("/echo//x")),
        refused("rfc3986_2_1_bad_percent_encoding_is_refused", &get("/echo/%zz")),
        refused("rfc3986_2_1_cut_percent_encoding_is_refused", &get("/echo/%2")),
        refused("rfc3986_3_5_fragment_is_refused", &get("/echo#/../hello")),
        refused("rfc3986_2_non_ascii_target_is_refused", &get("/echo/\u{e9}")),
        refused("rfc3986_2_quote_in_query_is_refused", &get("/echo?a=\"b\"")),
        refused("rfc3986_2_angle_brackets_are_refused", &get("/echo/<b>")),
        refused("rfc3986_2_backtick_in_path_is_refused", &get("/echo/`b`")),
        served(
            "rfc3986_2_characters_browsers_send_unencoded_are_accepted",
            &get("/echo/{a}|^[b]?c=`{d}|^'"),
            vec![echo("GET", "/echo/{a}|^[b]?c=`{d}|^'", b"")],
        ),
        // §5 Field syntax.
        refused(
            "rfc9112_5_1_space_before_colon_is_refused",
            b"GET /hello HTTP/1.1\r\nHost : x\r\n\r\n",
        ),
        refused(
            "rfc9112_5_2_obs_fold_is_refused",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
        ),
        refused(
            "rfc9112_5_2_field_line_starting_with_space_is_refused",
            b"GET /hello HTTP/1.1\r\n Host: x\r\n\r\n",
        ),
        refused(
            "rfc9110_5_5_control_byte_in_field_value_is_refused",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
        ),
        // §6.1 Transfer-Encoding.
        served_then_closed(
            "rfc9112_6_1_http_1_0_with_transfer_encoding_is_closed_after",
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![echo("POST", "/echo", b"abc")],
        ),
        refused(
            "rfc9112_6_1_chunked_twice_in_one_field_is_refused",
            &post("Transfer-Encoding: chunked, chunked", b"3\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_6_1_two_transfer_encoding_fields_are_refused",
            &post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
                b"3\r\nabc\r\n0\r\n\r\n",
            ),
        ),
        // §6.3 Message body length, case by case.
        served(
            "rfc9112_6_3_3_chunked_body",
            &chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            vec![echo("POST", "/echo", b"hello world")],
        ),
        served(
            "rfc9112_6_3_3_chunked_is_case_insensitive",
            &post("Transfer-Encoding: Chunked", b"1\r\na\r\n0\r\n\r\n"),
            vec![echo("POST", "/echo", b"a")],
        ),
        refused(
            "rfc9112_6_3_3_chunked_not_final_is_refused",
            &post("Transfer-Encoding: chunked, gzip", b"3\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_6_3_3_unknown_transfer_coding_is_refused",
            &post("Transfer-Encoding: gzip, chunked", b"3\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_6_3_3_transfer_encoding_with_content_length_is_refused",
            &post(
                "Content-Length: 3\r\nTransfer-Encoding: chunked",
                b"3\r\nabc\r\n0\r\n\r\n",
            ),
        ),
        refused(
            "rfc9112_6_3_3_content_length_after_transfer_encoding_is_refused",
            &post(
                "Transfer-Encoding: chunked\r\nContent-Length: 3",
                b"3\r\nabc\r\n0\r\n\r\n",
            ),
        ),
        refused(
            "rfc9112_6_3_4_conflicting_content_lengths_are_refused",
            &post("Content-Length: 3\r\nContent-Length: 4", b"abcd"),
        ),
        refused(
            "rfc9112_6_3_4_repeated_content_length_is_refused",
            &post("Content-Length: 3\r\nContent-Length: 3", b"abc"),
        ),
        refused(
            "rfc9112_6_3_4_content_length_list_is_refused",
            &post("Content-Length: 3, 3", b"abc"),
        ),
        refused(
            "rfc9112_6_3_4_content_length_with_plus_sign_is_refused",
            &post("Content-Length: +3", b"abc"),
        ),
        refused(
            "rfc9112_6_3_4_content_length_with_inner_space_is_refused",
            &post("Content-Length: 3 3", b"abc"),
        ),
        refused(
            "rfc9112_6_3_4_negative_content_length_is_refused",
            &post("Content-Length: -1", b"abc"),
        ),
        refused(
            "rfc9112_6_3_4_hex_content_length_is_refused",
            &post("Content-Length: 0x3", b"abc"),
        ),
        refused(
            "rfc9112_6_3_4_empty_content_length_is_refused",
            &post("Content-Length:", b""),
        ),
        refused(
            "rfc9112_6_3_4_content_length_beyond_u64_is_refused",
            &post("Content-Length: 99999999999999999999", b"abc"),
        ),
        served(
            "rfc9112_6_3_5_content_length_sets_the_body",
            &post("Content-Length: 3", b"abcGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"),
            vec![echo("POST", "/echo", b"abc"), hello()],
        ),
        served(
            "rfc9112_6_3_5_content_length_surrounded_by_whitespace",
            &post("Content-Length: \t3 \t", b"abc"),
            vec![echo("POST", "/echo", b"abc")],
        ),
        served(
            "rfc9112_6_3_5_content_length_with_leading_zeros",
            &post("Content-Length: 003", b"abc"),
            vec![echo("POST", "/echo", b"abc")],
        ),
        served(
            "rfc9112_6_3_5_content_length_on_a_get",
            b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
            vec![echo("GET", "/echo", b"hi")],
        ),
        refused_with(
            "rfc9112_6_3_5_content_length_over_max_body",
            &post("Content-Length: 1048577", b""),
            Answer::Error {
                status: 413,
                kind: "body-too-large",
            },
        ),
        Case {
            close_write: true,
            ..refused(
                "rfc9112_6_3_5_body_shorter_than_content_length",
                &post("Content-Length: 10", b"abc"),
            )
        },
        served(
            "rfc9112_6_3_6_no_length_means_no_body",
            b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![echo("POST", "/echo", b""), hello()],
        ),
        // §7.1 Chunked transfer coding: chunk-size is 1*HEXDIG.
        refused("rfc9112_7_1_chunk_size_with_plus_sign", &chunked(b"+3\r\nabc\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_last_chunk_with_plus_sign", &chunked(b"+0\r\n\r\n")),
        refused("rfc9112_7_1_chunk_size_with_leading_space", &chunked(b" 3\r\nabc\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_chunk_size_with_trailing_space", &chunked(b"3 \r\nabc\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_chunk_size_with_0x", &chunked(b"0x3\r\nabc\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_empty_chunk_size", &chunked(b"\r\nabc\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_negative_chunk_size", &chunked(b"-1\r\na\r\n0\r\n\r\n")),
        refused(
            "rfc9112_7_1_chunk_size_beyond_u64_is_refused",
            &chunked(b"10000000000000003\r\nabc\r\n0\r\n\r\n"),
        ),
        refused_with(
            "rfc9112_7_1_chunk_size_over_max_body",
            &chunked(b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
            Answer::Error {
                status: 413,
                kind: "body-too-large",
            },
        ),
        served(
            "rfc9112_7_1_hex_digits_either_case_and_zero_padding",
            &chunked(b"0A\r\n0123456789\r\n0a\r\nabcdefghij\r\n000\r\n\r\n"),
            vec![echo("POST", "/echo", b"0123456789abcdefghij")],
        ),
        refused("rfc9112_7_1_bare_lf_after_chunk_size", &chunked(b"3\nabc\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_bare_lf_after_chunk_data", &chunked(b"3\r\nabc\n0\r\n\r\n")),
        refused("rfc9112_7_1_chunk_data_longer_than_its_size", &chunked(b"3\r\nabcd\r\n0\r\n\r\n")),
        refused("rfc9112_7_1_bare_lf_after_last_chunk", &chunked(b"3\r\nabc\r\n0\n\r\n")),
        refused("rfc9112_7_1_bare_lf_ending_the_chunked_body", &chunked(b"3\r\nabc\r\n0\r\n\n")),
        Case {
            close_write: true,
            ..refused(
                "rfc9112_7_1_chunked_body_without_last_chunk",
                &chunked(b"3\r\nabc\r\n"),
            )
        },
        // §7.1.1 Chunk extensions: BWS ";" BWS token [BWS "=" BWS (token /
        // quoted-string)], no bare LF, no control bytes.
        served(
            "rfc9112_7_1_1_chunk_extensions_are_accepted_and_ignored",
            &chunked(b"3;a\r\nabc\r\n2 ; b = c;d=\"e \\\" f\"\r\nde\r\n0;last\r\n\r\n"),
            vec![echo("POST", "/echo", b"abcde")],
        ),
        refused(
            "rfc9112_7_1_1_bare_lf_in_chunk_extension",
            &chunked(b"3;x\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_1_control_byte_in_chunk_extension",
            &chunked(b"3;x\x01y\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_1_bare_cr_in_chunk_extension",
            &chunked(b"3;x\ry\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_1_chunk_extension_without_name",
            &chunked(b"3;\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_1_chunk_extension_with_empty_value",
            &chunked(b"3;a=\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_1_chunk_extension_with_unterminated_quote",
            &chunked(b"3;a=\"bc\r\nabc\r\n0\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_1_chunk_extension_with_trailing_space",
            &chunked(b"3;a \r\nabc\r\n0\r\n\r\n"),
        ),
        // §7.1.2 Trailer section: field lines, read and discarded.
        served(
            "rfc9112_7_1_2_trailer_fields_are_discarded",
            &chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"),
            vec![echo("POST", "/echo", b"abc"), hello()],
        ),
        refused(
            "rfc9112_7_1_2_bare_lf_in_trailer_section",
            &chunked(b"3\r\nabc\r\n0\r\nX-T: 1\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_2_invalid_trailer_field",
            &chunked(b"3\r\nabc\r\n0\r\nnot a field\r\n\r\n"),
        ),
        refused(
            "rfc9112_7_1_2_folded_trailer_field",
            &chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
        ),
        // §9.3, §9.6 Persistence.
        served(
            "rfc9112_9_3_pipelined_requests_are_answered_in_order",
            b"GET /echo/1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nbGET /echo/3 HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![
                echo("GET", "/echo/1", b""),
                echo("POST", "/echo/2", b"b"),
                echo("GET", "/echo/3", b""),
            ],
        ),
        served(
            "rfc9112_9_3_http_1_0_keep_alive_is_honoured",
            b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            vec![hello()],
        ),
        served_then_closed(
            "rfc9112_9_6_close_wins_over_keep_alive",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![hello()],
        ),
        served_then_closed(
            "rfc9112_9_6_close_in_a_second_connection_field",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            vec![hello()],
        ),
    ]
}
