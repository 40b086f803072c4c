//! The syntax rules of HTTP/1.1 requests (RFC 9112, with the URI rules of
//! RFC 3986 and the field rules of RFC 9110) as pure functions on bytes:
//! where a head ends, what a valid length, chunk line, target or host is.
//! `decode` applies them while it reads; each refusal is a message for the
//! 400 that names the rule.

/// Where the search for the end of a head stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Scan {
    /// The head ends just before this offset.
    End(usize),
    /// A CR not followed by LF, or an LF not preceded by CR.
    BareLineEnd,
    /// No end yet; bytes before this offset are checked.
    More(usize),
}

/// Looks for the blank line that ends a head in `buf[from..]`, checking that
/// every line ends in CRLF. A CR as the last byte is left for the next call.
pub(super) fn scan_head(buf: &[u8], from: usize) -> Scan {
    // Only line ends matter: jump from one to the next (memchr's vector
    // search), not byte by byte.
    let tail = buf.get(from..).unwrap_or_default();
    for i in memchr::memchr2_iter(b'\r', b'\n', tail).map(|at| from + at) {
        match buf[i] {
            b'\r' => match buf.get(i + 1) {
                Some(b'\n') => {}
                Some(_) => return Scan::BareLineEnd,
                None => return Scan::More(i),
            },
            b'\n' => {
                if i == 0 || buf[i - 1] != b'\r' {
                    return Scan::BareLineEnd;
                }
                if i >= 3 && buf[i - 3..i - 1] == *b"\r\n" {
                    return Scan::End(i + 1);
                }
            }
            _ => {}
        }
    }
    Scan::More(buf.len())
}

/// Whether a request line is well formed but for its version, which is
/// `HTTP/d.d` other than 1.0 and 1.1 (those httparse accepts).
pub(super) fn names_another_version(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    match parts.as_slice() {
        [_, _, version] => {
            version.len() == 8
                && version.starts_with(b"HTTP/")
                && version[5].is_ascii_digit()
                && version[6] == b'.'
                && version[7].is_ascii_digit()
        }
        _ => false,
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6). No sign, no inner
/// whitespace, no list (httparse has trimmed the surrounding whitespace).
pub(super) fn parse_content_length(value: &[u8]) -> Result<u64, &'static str> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err("content-length must be a decimal number");
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("content-length out of range")
}

/// Checks a request target and returns it in origin-form, with the
/// authority of an absolute-form target (RFC 9112 §3.2). `encoded_slash`:
/// whether its path may hold `%2F` (see [`path_forms`]).
pub(super) fn request_target(
    raw: &str,
    encoded_slash: bool,
) -> Result<(String, Option<&str>), &'static str> {
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("request target must be ASCII");
    }
    if raw.contains('#') {
        return Err("request target has a fragment");
    }
    // Never sent unencoded by a browser (WHATWG URL percent-encodes them),
    // and refused by other servers (hyper): a request with them could reach
    // wasmgate through one proxy and not through another.
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    if path.contains(['"', '<', '>', '`']) || query.contains(['"', '<', '>']) {
        return Err("request target has a character that must be percent-encoded");
    }
    let (origin, authority) = if raw.starts_with('/') {
        (raw, None)
    } else if let Some(rest) = strip_scheme(raw) {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() || !valid_authority(authority.as_bytes()) {
            return Err("invalid authority in the request target");
        }
        (path, Some(authority))
    } else {
        return Err("request target must be an absolute path or an http(s) URI");
    };
    let path = origin.split('?').next().unwrap_or_default();
    if path.split('/').any(is_dot_segment) {
        return Err("request target has a `.` or `..` segment");
    }
    // Forms that a server behind (or in front) may read as another path
    // than the one routed here: an encoded `/` or `\` (`/pub/..%2fadmin`),
    // a `\` (a `/` to some servers), an empty segment (`//admin`, merged
    // by nginx and many frameworks). Percent-encoded unreserved characters
    // (`/%61dmin`) are equivalent to their plain form (RFC 3986 §6.2.2.2)
    // and route as such (`router::normalized`).
    path_forms(path, encoded_slash)?;
    let uri = if origin.starts_with('/') {
        origin.to_owned()
    } else {
        format!("/{origin}")
    };
    Ok((uri, authority))
}

/// Refuses, in a request target's path, what could route elsewhere than
/// it reads: an encoded `/` (unless `encoded_slash`) or `\\`, a `\\`, an
/// empty segment, a `%` not followed by two hex digits. An allowed `%2F`
/// stays encoded: it routes as part of its segment (`/api/*` takes
/// `/api/a%2Fb`, `/api/a` does not) and is forwarded as sent.
fn path_forms(path: &str, encoded_slash: bool) -> Result<(), &'static str> {
    if path.contains('\\') {
        return Err("request target has a `\\` in its path");
    }
    if path.contains("//") {
        return Err("request target has an empty path segment (`//`)");
    }
    // `/admin;x/secret`, `/pub/..;/admin`: Tomcat, Jetty and Spring drop
    // path parameters (and then resolve `..`).
    if path.contains(';') {
        return Err("request target has a `;` in its path");
    }
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        let Some(hex) = hex else {
            return Err("request target has an invalid percent-encoding in its path");
        };
        if hex.eq_ignore_ascii_case(b"5c") {
            return Err("request target has an encoded `\\` in its path");
        }
        if hex.eq_ignore_ascii_case(b"2f") && !encoded_slash {
            return Err("request target has an encoded `/` in its path");
        }
    }
    // Allowed, an encoded `/` still may not make, once decoded, a `.` or
    // `..` segment or an empty one (`/pub/..%2Fadmin`, `/a%2F%2Fb`).
    if encoded_slash {
        let decoded_segments = path.split('/').flat_map(|segment| {
            let mut pieces = Vec::new();
            let mut rest = segment;
            while let Some(at) = find_encoded_slash(rest) {
                pieces.push(&rest[..at]);
                rest = &rest[at + 3..];
            }
            // A segment without `%2F` is checked above (`//`) or by the
            // caller (dot-segments); only the pieces it splits into here.
            (!pieces.is_empty()).then(|| pieces.push(rest));
            pieces
        });
        for piece in decoded_segments {
            if piece.is_empty() || is_dot_segment(piece) {
                return Err(
                    "request target has an encoded `/` next to an empty, `.` or `..` segment",
                );
            }
        }
    }
    Ok(())
}

/// Where `text` holds `%2F` or `%2f`, if it does.
fn find_encoded_slash(text: &str) -> Option<usize> {
    text.as_bytes()
        .windows(3)
        .position(|w| w.eq_ignore_ascii_case(b"%2f"))
}

/// `path` with its percent-encoded unreserved characters (`A-Z a-z 0-9 -
/// . _ ~`, RFC 3986 §2.3) decoded (`/%61dmin` is `/admin`, §6.2.2.2) and
/// its other escapes' hex digits upper case (`%3a` is `%3A`, §6.2.2.1).
/// What routes match, so that a path routes as any server that normalises
/// it reads it. Borrowed when there is nothing to change.
pub fn normalized(path: &str) -> std::borrow::Cow<'_, str> {
    fn unreserved(hex: &[u8]) -> Option<u8> {
        let text = std::str::from_utf8(hex).ok()?;
        let b = u8::from_str_radix(text, 16).ok()?;
        (b.is_ascii_alphanumeric() || b"-._~".contains(&b)).then_some(b)
    }
    let bytes = path.as_bytes();
    let decodes = |i: usize| bytes.get(i + 1..i + 3).and_then(unreserved);
    let lower = |i: usize| {
        bytes.get(i + 1..i + 3).is_some_and(|h| {
            h.iter().all(u8::is_ascii_hexdigit) && h.iter().any(u8::is_ascii_lowercase)
        })
    };
    if !path
        .match_indices('%')
        .any(|(i, _)| decodes(i).is_some() || lower(i))
    {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], decodes(i)) {
            (b'%', Some(b)) => {
                out.push(char::from(b));
                i += 3;
            }
            (b'%', None) if lower(i) => {
                out.push('%');
                out.extend(
                    bytes[i + 1..i + 3]
                        .iter()
                        .map(|b| char::from(b.to_ascii_uppercase())),
                );
                i += 3;
            }
            (b, _) => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `raw` without a leading `http://` or `https://` (any case).
pub(super) fn strip_scheme(raw: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        raw.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &raw[scheme.len()..])
    })
}

/// Whether a path segment is `.` or `..`, also percent-encoded (`%2e`).
pub(super) fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// `uri-host [ ":" port ]` (RFC 3986 §3.2.2): an IP literal in brackets or
/// a reg-name, then optional digits. Empty is valid (RFC 9112 §3.2).
pub(super) fn valid_authority(value: &[u8]) -> bool {
    let (host_ok, rest) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let ok = close > 0
            && literal[..close]
                .iter()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(b));
        (ok, &literal[close + 1..])
    } else {
        let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        (valid_reg_name(&value[..end]), &value[end..])
    };
    let port_ok = rest.is_empty()
        || rest
            .strip_prefix(b":")
            .is_some_and(|port| port.iter().all(u8::is_ascii_digit));
    host_ok && port_ok
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
pub(super) fn valid_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b == b'%' {
            let hex = name.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `tchar` (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes allowed in a field value and a quoted string: VCHAR, SP, HTAB and
/// obs-text; no other control byte.
pub(super) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80
}

/// Parses a chunk-size line (without CRLF): `1*HEXDIG [ chunk-ext ]`, where
/// `chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`
/// (RFC 9112 §7.1, §7.1.1). Extensions are checked and ignored.
pub(super) fn chunk_size(line: &[u8]) -> Result<u64, &'static str> {
    const INVALID: &str = "invalid chunk size";
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // 16 hex digits are 64 bits; longer is out of range (or zero padding).
    if digits == 0 || digits > 16 {
        return Err(INVALID);
    }
    let size = std::str::from_utf8(&line[..digits])
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or(INVALID)?;
    if !valid_chunk_extensions(&line[digits..]) {
        return Err("invalid chunk extension");
    }
    Ok(size)
}

pub(super) fn valid_chunk_extensions(mut rest: &[u8]) -> bool {
    fn skip_bws(s: &[u8]) -> &[u8] {
        let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        &s[n..]
    }
    fn token(s: &[u8]) -> Option<&[u8]> {
        let n = s.iter().take_while(|&&b| is_tchar(b)).count();
        (n > 0).then(|| &s[n..])
    }
    while !rest.is_empty() {
        let Some(after) = skip_bws(rest).strip_prefix(b";") else {
            return false;
        };
        let Some(after_name) = token(skip_bws(after)) else {
            return false;
        };
        rest = match skip_bws(after_name).strip_prefix(b"=") {
            None => after_name,
            Some(value) => {
                let value = skip_bws(value);
                match value.strip_prefix(b"\"") {
                    Some(quoted) => match quoted_string_rest(quoted) {
                        Some(rest) => rest,
                        None => return false,
                    },
                    None => match token(value) {
                        Some(rest) => rest,
                        None => return false,
                    },
                }
            }
        };
    }
    true
}

/// The bytes after a quoted string whose opening quote is already consumed,
/// or `None` if it is unterminated or holds a control byte.
pub(super) fn quoted_string_rest(s: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => return Some(&s[i + 1..]),
            b'\\' => {
                if !s.get(i + 1).is_some_and(|&b| is_field_byte(b)) {
                    return None;
                }
                i += 2;
            }
            b if is_field_byte(b) => i += 1,
            _ => return None,
        }
    }
    None
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5): a token name with no
/// space before the colon, and a value without control bytes.
pub(super) fn valid_field_line(line: &[u8]) -> bool {
    let name = line.iter().take_while(|&&b| is_tchar(b)).count();
    name > 0 && line.get(name) == Some(&b':') && line[name + 1..].iter().all(|&b| is_field_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_first_blank_crlf_line() {
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n\r\nrest", 0), Scan::End(18));
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 0),
            Scan::End(24)
        );
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0),
            Scan::More(22)
        );
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\nA: b\r\n\r", 22),
            Scan::More(22)
        );
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\nA: b\r\n\r\n", 0),
            Scan::BareLineEnd
        );
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 0),
            Scan::BareLineEnd
        );
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n\n", 0), Scan::BareLineEnd);
        assert_eq!(scan_head(b"\n", 0), Scan::BareLineEnd);
    }

    /// The scan as it was written before it jumped between line ends with
    /// memchr: one byte at a time.
    fn scan_head_bytewise(buf: &[u8], from: usize) -> Scan {
        for i in from..buf.len() {
            match buf[i] {
                b'\r' => match buf.get(i + 1) {
                    Some(b'\n') => {}
                    Some(_) => return Scan::BareLineEnd,
                    None => return Scan::More(i),
                },
                b'\n' => {
                    if i == 0 || buf[i - 1] != b'\r' {
                        return Scan::BareLineEnd;
                    }
                    if i >= 3 && buf[i - 3..i - 1] == *b"\r\n" {
                        return Scan::End(i + 1);
                    }
                }
                _ => {}
            }
        }
        Scan::More(buf.len())
    }

    #[test]
    fn the_head_scan_agrees_with_a_bytewise_scan_on_every_mix_of_line_ends() {
        // Every buffer of up to 7 bytes over {a, \r, \n}, scanned from each
        // offset: 3,280 buffers.
        let alphabet = [b'a', b'\r', b'\n'];
        for len in 0..=7u32 {
            for mut n in 0..3usize.pow(len) {
                let mut buf = Vec::new();
                for _ in 0..len {
                    buf.push(alphabet[n % 3]);
                    n /= 3;
                }
                for from in 0..=buf.len() {
                    assert_eq!(
                        scan_head(&buf, from),
                        scan_head_bytewise(&buf, from),
                        "{buf:?} from {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunk_size_lines() {
        for (line, size) in [
            (&b"0"[..], 0),
            (b"000", 0),
            (b"a", 10),
            (b"Ff", 255),
            (b"ffffffffffffffff", u64::MAX),
            (b"3;a", 3),
            (b"3 ;a", 3),
            (b"3;a=b", 3),
            (b"3; a = \"b\\\"c d\" ;e", 3),
            (b"3;a=\"\"", 3),
            (b"3;a=\"\xc3\xa9\"", 3),
        ] {
            assert_eq!(
                chunk_size(line).ok(),
                Some(size),
                "{:?}",
                line.escape_ascii().to_string()
            );
        }
        for line in [
            &b""[..],
            b"+3",
            b"+0",
            b" 3",
            b"3 ",
            b"-1",
            b"0x3",
            b"3;",
            b"3;a ",
            b"3;a=",
            b"3;a=\"b",
            b"3;a=b c",
            b"3;a\x01",
            b"3;a\r",
            b"3;a=\"\x7f\"",
            b"3;a=\"\\\x00\"",
            b"3,a",
            b"00000000000000001",
        ] {
            assert!(
                chunk_size(line).is_err(),
                "{:?}",
                line.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_content_length(b"0").ok(), Some(0));
        assert_eq!(parse_content_length(b"0042").ok(), Some(42));
        assert_eq!(
            parse_content_length(b"18446744073709551615").ok(),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"+3",
            b"-3",
            b"3 3",
            b"3,3",
            b"0x3",
            b"18446744073709551616",
            b"\xd9\xa3",
        ] {
            assert!(parse_content_length(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn normalized_decodes_unreserved_characters_only() {
        assert!(matches!(
            normalized("/a/b%3A"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(normalized("/%61dmin/%7E%2d%5F%2E"), "/admin/~-_.");
        assert_eq!(normalized("/a%3a%20%25%41%c3%A9"), "/a%3A%20%25A%C3%A9");
        assert!(matches!(
            normalized("/a%3A%C3"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(normalized("/a%4"), "/a%4");
    }

    #[test]
    fn an_allowed_encoded_slash_passes_unless_it_makes_an_empty_or_dot_segment() {
        let ok = |raw: &str| request_target(raw, true).map(|(uri, _)| uri);
        for good in [
            "/api/v4/projects/group%2Fproject",
            "/a%2fb%2Fc/d?x=%2F",
            "/files/a.b%2F.c%2F..d",
            "http://x/a%2Fb",
        ] {
            let uri = ok(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            // Forwarded as sent (origin-form).
            assert!(good.ends_with(&uri), "{good} -> {uri}");
            assert!(request_target(good, false).is_err(), "{good}");
        }
        for bad in [
            "/pub/..%2Fadmin",
            "/pub/.%2fadmin",
            "/pub/a%2F..",
            "/pub/a%2F%2e%2E/b",
            "/a%2F%2Fb",
            "/%2Fa",
            "/a%2F",
            "/a%2F/b",
            "/a%5Cb",
            "/a%2Fb//c",
            "/a%2Fb/../c",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_route_as_they_read() {
        let ok = |raw: &str| {
            request_target(raw, false)
                .map(|(uri, a)| (uri, a.map(str::to_owned)))
                .ok()
        };
        assert_eq!(ok("/a/b?c=/../d"), Some(("/a/b?c=/../d".into(), None)));
        assert_eq!(
            ok("/a/..b/.c/%2e%2ex"),
            Some(("/a/..b/.c/%2e%2ex".into(), None))
        );
        assert_eq!(
            ok("/{a}|^[b]?c=`{d}|^\\"),
            Some(("/{a}|^[b]?c=`{d}|^\\".into(), None))
        );
        // Escapes other than `/`, `\` and a bad one pass, as sent.
        assert_eq!(ok("/a%3Ab/%41%7e"), Some(("/a%3Ab/%41%7e".into(), None)));
        assert_eq!(ok("/a/?q=%2f%zz//"), Some(("/a/?q=%2f%zz//".into(), None)));
        assert_eq!(ok("http://x/a?b"), Some(("/a?b".into(), Some("x".into()))));
        assert_eq!(ok("HTTPS://x:1"), Some(("/".into(), Some("x:1".into()))));
        assert_eq!(ok("http://x?q"), Some(("/?q".into(), Some("x".into()))));
        for bad in [
            "/admin;x/secret",
            "/pub/..;/admin",
            "/{a}|^[b]\\?c",
            "/a%2fb",
            "/a%2F..",
            "/a%5cb",
            "//a",
            "/a//",
            "/a%",
            "/a%4",
            "/a%g1",
            "http://x//a",
            "/a/../b",
            "/a/./b",
            "/..",
            "/.",
            "/a/%2e",
            "/a/%2E%2e/b",
            "/a/.%2e",
            "/a#b",
            "/\u{e9}",
            "/a\"b",
            "/a?b=\"c\"",
            "/<a>",
            "/a?<b>",
            "/a`b",
            "*",
            "a/b",
            "x:80",
            "http://",
            "http:///a",
            "http://u@x/",
            "ftp://x/a",
            "http://x/../a",
        ] {
            assert!(request_target(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_values() {
        for good in [
            &b""[..],
            b"x",
            b"x:80",
            b"x:",
            b"Pi.local",
            b"[::1]",
            b"[::1]:8080",
            b"a%20b",
            b"10.0.0.1:1",
        ] {
            assert!(
                valid_authority(good),
                "{:?}",
                good.escape_ascii().to_string()
            );
        }
        for bad in [
            &b"x/y"[..],
            b"u@x",
            b"x:8a",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"a b",
            b"a%2",
            b"x:1:2",
        ] {
            assert!(
                !valid_authority(bad),
                "{:?}",
                bad.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn trailer_field_lines() {
        assert!(valid_field_line(b"a: b"));
        assert!(valid_field_line(b"a:"));
        assert!(valid_field_line(b"a:\tb c\xff"));
        for bad in [
            &b" a: b"[..],
            b"a : b",
            b"a",
            b": b",
            b"a: b\x01",
            b"a: b\r",
        ] {
            assert!(!valid_field_line(bad), "{bad:?}");
        }
    }

    #[test]
    fn versions_other_than_1_0_and_1_1() {
        assert!(names_another_version(b"GET / HTTP/1.2\r\n\r\n"));
        assert!(names_another_version(b"GET / HTTP/2.0\r\n\r\n"));
        assert!(!names_another_version(b"GET / http/1.2\r\n\r\n"));
        assert!(!names_another_version(b"GET / HTTP/1.10\r\n\r\n"));
        assert!(!names_another_version(b"GET /a b HTTP/1.2\r\n\r\n"));
    }
}
