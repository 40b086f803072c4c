//! The wasi-json ABI, the Gojinn contract: a WASI preview1 command reads one
//! JSON request on stdin and writes one JSON response on stdout. The WASI
//! functions it calls are in [`crate::runtime::imports::wasi_snapshot_preview1`].
//!
//! stdin:  `{"method","uri","headers":{name:[values]},"body","trace_id"}`
//! stdout: `{"status","headers":{name: value | [values]},"body"}`

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use wasmi::{Module, ValType};

use super::{GuestRequest, GuestResponse};
use crate::config::FunctionSpec;
use crate::error::CallError;
use crate::limits::{InstanceCost, MAX_RESPONSE_HEADERS, PlainOutput};
use crate::runtime::state::{HostState, Stdio};
use crate::runtime::{Runtime, Sandbox};

/// The command entry point.
pub const START: &str = "_start";
/// Function exports a wasi-json module must have.
pub const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[(START, &[], &[])];

/// Bytes of a bad stdout quoted in the log.
const QUOTED_OUTPUT: usize = 200;
/// The content type of stdout answered as it is ([`PlainOutput::Text`]):
/// never sniffed (sniffing a guest's output as HTML would let it run
/// script in a browser where a text body cannot).
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";
const CONTENT_TYPE: &str = "content-type";

/// The request JSON written to stdin.
#[derive(Serialize)]
struct StdinRequest<'a> {
    method: &'a str,
    uri: &'a str,
    headers: BTreeMap<Cow<'a, str>, Vec<Cow<'a, str>>>,
    body: Cow<'a, str>,
    trace_id: &'a str,
}

/// A response object as stdout held it, its status not yet checked.
#[derive(Default)]
struct StdoutResponse {
    /// 0 when absent or `null`: Go's zero value, which Gojinn reads as
    /// "no status".
    status: i64,
    headers: Headers,
    body: String,
}

/// Why stdout is not a response.
enum Unparsed {
    /// It is not a response object: not JSON, not an object, or a field
    /// of the wrong type (what Go's `json.Unmarshal` refuses).
    NotAResponse(String),
    /// A response object with more header fields than allowed.
    OverLimit(String),
}

/// Reads stdout as one response object. Header values are counted as they
/// are read (see [`Headers`]).
fn parse(stdout: &[u8]) -> Result<StdoutResponse, Unparsed> {
    // Go replaces bytes that are not UTF-8 in a JSON string with U+FFFD;
    // outside a string they are a syntax error either way.
    let text = String::from_utf8_lossy(stdout);
    let text = as_go_reads(&text).map_err(|e| {
        Unparsed::NotAResponse(format!("stdout is not one JSON response object: {e}"))
    })?;
    let mut count = 0;
    let mut de = serde_json::Deserializer::from_str(&text);
    let parsed = ResponseSeed { count: &mut count }
        .deserialize(&mut de)
        .and_then(|parsed| de.end().map(|()| parsed));
    parsed.map_err(|e| {
        if count > MAX_RESPONSE_HEADERS {
            Unparsed::OverLimit(e.to_string())
        } else {
            Unparsed::NotAResponse(format!("stdout is not one JSON response object: {e}"))
        }
    })
}

/// The deepest nesting of arrays and objects Go's `encoding/json` accepts
/// (`maxNestingDepth` in its scanner, checked over the whole text before
/// decoding): deeper stdout is not a response object.
const MAX_NESTING: usize = 10_000;

/// stdout's text made ready for serde_json to read as Go's decoder reads
/// it, or why Go would refuse it:
/// - an escaped UTF-16 surrogate that is not half of a pair (`"\ud800"`,
///   `"\udc00"`, `"\ud800\u0041"`) is U+FFFD for Go, where serde_json
///   refuses the whole text: it is rewritten `\ufffd` (the same length, so
///   error positions stay right). As in Go, the escape after a high
///   surrogate that does not pair with it is read on its own.
/// - nesting deeper than [`MAX_NESTING`] is refused, as Go refuses it.
///   serde_json alone skips an unknown field's value at any depth (without
///   recursion) and refuses a typed value past 128 levels (where Go has a
///   type error anyway), so neither overflows the stack.
fn as_go_reads(text: &str) -> Result<Cow<'_, str>, String> {
    let bytes = text.as_bytes();
    // The number of brackets bounds the depth: most stdout is done here.
    let brackets = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
    if brackets <= MAX_NESTING && !text.contains("\\u") {
        return Ok(Cow::Borrowed(text));
    }
    let hex4 = |at: usize| {
        let digits = std::str::from_utf8(bytes.get(at..at.saturating_add(4))?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut fixed: Option<Vec<u8>> = None;
    let (mut depth, mut in_string, mut i) = (0usize, false, 0usize);
    while let Some(&b) = bytes.get(i) {
        match (in_string, b) {
            (false, b'"') | (true, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "arrays and objects nested deeper than {MAX_NESTING} (Go's limit)"
                    ));
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            (true, b'\\') if bytes.get(i + 1) == Some(&b'u') => {
                let unit = hex4(i + 2);
                if let Some(unit @ 0xD800..=0xDFFF) = unit {
                    let low = (bytes.get(i + 6..i + 8) == Some(b"\\u"))
                        .then(|| hex4(i + 8))
                        .flatten();
                    if unit < 0xDC00 && matches!(low, Some(0xDC00..=0xDFFF)) {
                        i += 12;
                        continue;
                    }
                    let replaced = fixed.get_or_insert_with(|| bytes.to_vec());
                    if let Some(escape) = replaced.get_mut(i..i + 6) {
                        escape.copy_from_slice(b"\\ufffd");
                    }
                }
                i += if unit.is_some() { 6 } else { 2 };
                continue;
            }
            (true, b'\\') => {
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(match fixed {
        // ASCII replaced ASCII: still UTF-8.
        Some(fixed) => Cow::Owned(String::from_utf8_lossy(&fixed).into_owned()),
        None => Cow::Borrowed(text),
    })
}

/// The response object, its header values counted in `count`.
struct ResponseSeed<'c> {
    count: &'c mut usize,
}

impl<'de> DeserializeSeed<'de> for ResponseSeed<'_> {
    type Value = StdoutResponse;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed<'_> {
    type Value = StdoutResponse;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(r#"an object {"status","headers","body"}"#)
    }

    /// Each field as Go's `json.Unmarshal` decodes it into Gojinn's
    /// response struct: names match case-insensitively, a field given
    /// twice is decoded twice, `null` leaves `status` and `body` as they
    /// are and empties `headers`, other keys are skipped.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StdoutResponse, A::Error> {
        let mut response = StdoutResponse::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if go_field_is(&key, "status") {
                if let Some(Status(status)) = map.next_value()? {
                    response.status = status;
                }
            } else if go_field_is(&key, "headers") {
                response.headers = map.next_value_seed(HeadersSeed {
                    count: &mut *self.count,
                    into: std::mem::take(&mut response.headers),
                })?;
            } else if go_field_is(&key, "body") {
                if let Some(body) = map.next_value()? {
                    response.body = body;
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(response)
    }

    /// `null`: Go leaves the struct as it is.
    fn visit_unit<E: serde::de::Error>(self) -> Result<StdoutResponse, E> {
        Ok(StdoutResponse::default())
    }
}

/// Whether the JSON object key `key` names the struct field `field` (ASCII
/// lower case) for Go's `encoding/json`: an exact match, or the same under
/// its case folding, where ASCII letters match either case and the only
/// other runes that fold to an ASCII letter are U+017F (ſ, to `s`) and
/// U+212A (the Kelvin sign, to `k`). So `Status`, `STATUS` and `ſtatus`
/// name `status`, as a Go struct without `json` tags prints it.
fn go_field_is(key: &str, field: &str) -> bool {
    let mut expected = field.chars();
    for c in key.chars() {
        let folded = match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        };
        if expected.next() != Some(folded) {
            return false;
        }
    }
    expected.next().is_none()
}

/// A `status`: an integer, as Go decodes one into an `int` (no fraction,
/// no exponent, within 64 bits); `null` is read as `Option::None`.
struct Status(i64);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_i64(StatusVisitor)
    }
}

struct StatusVisitor;

impl Visitor<'_> for StatusVisitor {
    type Value = Status;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer status")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Status, E> {
        Ok(Status(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Status, E> {
        i64::try_from(v)
            .map(Status)
            .map_err(|_| E::custom(format_args!("status {v} is out of range")))
    }
}

/// The `headers` object of a response: each name with its values (a string
/// or a list of strings). Values are counted across all names while they
/// are parsed, and parsing stops past [`MAX_RESPONSE_HEADERS`]: building
/// 349,492 values before counting them took ~96 ms of unmetered host time.
/// A name given twice keeps its last values, as a map does.
#[derive(Default)]
struct Headers(BTreeMap<String, Vec<String>>);

/// The `headers` object, its values counted in `count`, added to `into`
/// (as Go decodes an object into a map it already holds: a `headers` key
/// given twice merges); `null` empties it (Go sets the map to nil).
struct HeadersSeed<'c> {
    count: &'c mut usize,
    into: Headers,
}

impl<'de> DeserializeSeed<'de> for HeadersSeed<'_> {
    type Value = Headers;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Headers, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadersSeed<'_> {
    type Value = Headers;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of header names to a string or a list of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        let mut headers = self.into.0;
        while let Some(name) = map.next_key::<String>()? {
            let values = map.next_value_seed(ValuesSeed {
                count: &mut *self.count,
            })?;
            // A name with no values (`null`, `[]`) is not sent, but it was
            // parsed and is held: it counts as a field too, so that a flood
            // of names is refused like a flood of values.
            if values.is_empty() {
                ValuesSeed {
                    count: &mut *self.count,
                }
                .add::<A::Error>()?;
            }
            headers.insert(name, values);
        }
        Ok(Headers(headers))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Headers, E> {
        Ok(Headers::default())
    }
}

/// One header's values; adds them to `count` and stops past the limit.
struct ValuesSeed<'c> {
    count: &'c mut usize,
}

impl ValuesSeed<'_> {
    fn add<E: serde::de::Error>(&mut self) -> Result<(), E> {
        *self.count = self.count.saturating_add(1);
        if *self.count > MAX_RESPONSE_HEADERS {
            return Err(E::custom(format_args!(
                "more than the {MAX_RESPONSE_HEADERS} header fields allowed"
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<Vec<String>, E> {
        self.add()?;
        Ok(vec![v.to_owned()])
    }

    fn visit_string<E: serde::de::Error>(mut self, v: String) -> Result<Vec<String>, E> {
        self.add()?;
        Ok(vec![v])
    }

    /// A list; a `null` in it is an empty value (Go's zero string).
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut values = Vec::new();
        while let Some(v) = seq.next_element::<Option<String>>()? {
            self.add()?;
            values.push(v.unwrap_or_default());
        }
        Ok(values)
    }

    /// `null`: no values (Go's nil slice).
    fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
}

/// Encodes the request as the stdin JSON. Header names are in Go's
/// canonical form ([`canonical_header_key`]), as Gojinn passes Go's
/// `http.Header`; the values of names that are the same in that form are
/// one list, in the order received. Header values and the body are
/// strings: bytes that are not UTF-8 become U+FFFD (use the native ABI for
/// binary bodies).
pub fn encode_request(request: &GuestRequest<'_>) -> Vec<u8> {
    serde_json::to_vec(&stdin_request(request)).unwrap_or_default()
}

/// The length of what [`encode_request`] writes, counted without writing
/// it: JSON escaping can make stdin ~6 times the body (a control byte is
/// `\u00XX`), and it is held in host memory for the whole call, so the
/// server counts it in `memory_budget` before the call.
pub fn stdin_len(request: &GuestRequest<'_>) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            self.0 = self.0.saturating_add(len);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, &stdin_request(request));
    count.0
}

fn stdin_request<'a>(request: &GuestRequest<'a>) -> StdinRequest<'a> {
    let mut headers: BTreeMap<Cow<'a, str>, Vec<Cow<'a, str>>> = BTreeMap::new();
    for &(name, value) in &request.headers {
        headers
            .entry(canonical_header_key(name))
            .or_default()
            .push(String::from_utf8_lossy(value));
    }
    StdinRequest {
        method: request.method,
        uri: request.uri,
        headers,
        body: String::from_utf8_lossy(request.body),
        trace_id: request.trace_id,
    }
}

/// `name` as Go's `net/http` gives it to a handler, and Gojinn to its
/// functions (`textproto.CanonicalMIMEHeaderKey`): the first letter and
/// every letter after a `-` upper case, every other letter lower case
/// (`x-request-id` → `X-Request-Id`, `www-authenticate` →
/// `Www-Authenticate`, `content-md5` → `Content-Md5`). A name that is not
/// an HTTP token (empty, a space or another byte outside `tchar`) is left
/// as it is, as Go leaves it.
pub fn canonical_header_key(name: &str) -> Cow<'_, str> {
    if !crate::http::valid_name(name) {
        return Cow::Borrowed(name);
    }
    let mut upper = true;
    let canonical = name
        .chars()
        .map(|c| {
            let c = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            c
        })
        .collect::<String>();
    if canonical == name {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(canonical)
    }
}

/// Parses what the guest printed as a response object, strictly (as
/// `plain_output = "refuse"` does): anything else is an error, and a
/// missing, `null` or 0 status means 200 (as Gojinn did before it passed
/// plain output through).
pub fn decode_response(stdout: &[u8]) -> Result<GuestResponse, String> {
    match parse(stdout) {
        Ok(parsed) if parsed.status == 0 => response(200, parsed),
        Ok(parsed) => response(parsed.status, parsed),
        Err(Unparsed::NotAResponse(why) | Unparsed::OverLimit(why)) => Err(why),
    }
}

/// What the guest printed, as the response `plain_output` makes of it:
/// a response object with a status is that response; anything else (not
/// JSON, not an object, a field of the wrong type, no status, status
/// `null` or 0) is refused ([`PlainOutput::Refuse`], see
/// [`decode_response`]) or answered 200 with stdout as a text body
/// ([`PlainOutput::Text`], as the newest Gojinn does). A response object
/// over a limit, or with a status that is not a final HTTP status, is an
/// error either way.
pub fn decode_output(stdout: &[u8], plain: PlainOutput) -> Result<GuestResponse, String> {
    if plain == PlainOutput::Refuse {
        return decode_response(stdout);
    }
    match parse(stdout) {
        Ok(parsed) if parsed.status != 0 => response(parsed.status, parsed),
        Ok(_) | Err(Unparsed::NotAResponse(_)) => Ok(plain_text(stdout)),
        Err(Unparsed::OverLimit(why)) => Err(why),
    }
}

/// `parsed` with its status checked.
fn response(status: i64, parsed: StdoutResponse) -> Result<GuestResponse, String> {
    let status = u64::try_from(status)
        .map_err(|_| format!("status {status} is not between 200 and 999"))
        .and_then(super::check_status)?;
    let mut headers = Vec::new();
    for (name, values) in parsed.headers.0 {
        headers.extend(values.into_iter().map(|v| (name.clone(), v.into_bytes())));
    }
    Ok(GuestResponse {
        status,
        headers,
        body: parsed.body.into_bytes(),
    })
}

/// Stdout as a 200 `text/plain` response. An empty stdout has no content
/// type, as Go's `net/http` sends an empty body.
fn plain_text(stdout: &[u8]) -> GuestResponse {
    let mut headers = Vec::new();
    if !stdout.is_empty() {
        headers.push((CONTENT_TYPE.to_owned(), PLAIN_TEXT.as_bytes().to_vec()));
    }
    GuestResponse {
        status: 200,
        headers,
        body: stdout.to_vec(),
    }
}

/// Runs one request through a wasi-json module: instantiate it with the
/// request on stdin, run `_start`, parse stdout. Returns the response and
/// the fuel used. `proc_exit(0)` is success wherever the guest calls it,
/// in a start function too: what it wrote to stdout until then is its
/// response (and `_start` does not run: the program has ended).
pub async fn run(
    runtime: &Runtime,
    module: &Module,
    cost: InstanceCost,
    function: &FunctionSpec,
    request: &GuestRequest<'_>,
    state: HostState,
) -> (Result<GuestResponse, CallError>, u64) {
    match Sandbox::start(
        runtime,
        module,
        cost,
        &function.limits,
        with_stdio(function, request, state),
    ) {
        Ok(mut sandbox) => {
            let result = call(&mut sandbox, function.limits.plain_output).await;
            (result, sandbox.fuel_used())
        }
        Err((error, fuel, mut state)) => {
            state.flush_stderr();
            match error {
                CallError::ExitCode(0) => (respond(&state, function.limits.plain_output), fuel),
                error => (Err(error), fuel),
            }
        }
    }
}

/// Creates the sandbox for one wasi-json call: stdin holds the request.
pub fn sandbox(
    runtime: &Runtime,
    module: &Module,
    cost: InstanceCost,
    function: &FunctionSpec,
    request: &GuestRequest<'_>,
    state: HostState,
) -> Result<Sandbox, (CallError, u64)> {
    Sandbox::new(
        runtime,
        module,
        cost,
        &function.limits,
        with_stdio(function, request, state),
    )
}

/// `state` with the stdio of one call of `function`: stdin holds the request.
fn with_stdio(
    function: &FunctionSpec,
    request: &GuestRequest<'_>,
    mut state: HostState,
) -> HostState {
    let mut args = vec![function.name.clone().into_bytes()];
    args.extend(function.args.iter().map(|a| a.clone().into_bytes()));
    let env = function
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    let stdin = encode_request(request);
    state.stdio = Some(Stdio::new(stdin, function.limits.max_response, args, env));
    state
}

/// Runs `_start` and parses stdout.
async fn call(sandbox: &mut Sandbox, plain: PlainOutput) -> Result<GuestResponse, CallError> {
    let result = sandbox.call(START, &[], &mut []).await;
    sandbox.store_mut().data_mut().flush_stderr();
    match result {
        Ok(()) | Err(CallError::ExitCode(0)) => respond(sandbox.store().data(), plain),
        Err(e) => Err(e),
    }
}

/// The response the guest wrote to stdout.
fn respond(state: &HostState, plain: PlainOutput) -> Result<GuestResponse, CallError> {
    let stdio = state.stdio.as_ref();
    let stdout = stdio.map_or(&[][..], |w| w.stdout());
    let max = stdio.map_or(0, Stdio::max_stdout);
    decode_output(stdout, plain)
        .and_then(|response| within(response, max))
        .map_err(|why| {
            let shown = &stdout[..stdout.len().min(QUOTED_OUTPUT)];
            log::warn!(
                "wasi-json output rejected: {why}; it began with {:?}",
                String::from_utf8_lossy(shown)
            );
            CallError::BadResponse(why)
        })
}

/// `response` if its decoded size is still within `max_response` (`max`):
/// stdout is, but each byte that is not UTF-8 inside a JSON string becomes
/// U+FFFD, three bytes, so a decoded response can be up to three times
/// larger than the stdout it came from.
fn within(response: GuestResponse, max: u64) -> Result<GuestResponse, String> {
    let size = response
        .headers
        .iter()
        .map(|(name, value)| name.len().saturating_add(value.len()))
        .fold(response.body.len(), usize::saturating_add);
    match u64::try_from(size) {
        Ok(size) if size <= max => Ok(response),
        _ => Err(format!(
            "the response is {size} bytes once invalid UTF-8 in it is replaced (U+FFFD), more than max_response ({max} bytes)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_header_values_are_counted_while_parsing() {
        // 100 values across names and lists are fine.
        let ok = format!(
            r#"{{"headers":{{"a":"1","b":[{}]}}}}"#,
            vec![r#""x""#; 99].join(",")
        );
        assert_eq!(decode_response(ok.as_bytes()).unwrap().headers.len(), 100);
        // The 101st value stops parsing: what follows it (here, not even
        // JSON) is never read, so a list of 349,492 values costs 101.
        let over = format!(
            r#"{{"headers":{{"a":["1"],"b":[{}, this is not JSON"#,
            vec![r#""x""#; 100].join(",")
        );
        let e = decode_response(over.as_bytes()).unwrap_err();
        assert!(e.contains("more than the 100 header fields allowed"), "{e}");
    }

    #[test]
    fn header_names_are_canonical_as_go_writes_them() {
        for (name, canonical) in [
            ("authorization", "Authorization"),
            ("content-type", "Content-Type"),
            ("x-request-id", "X-Request-Id"),
            ("www-authenticate", "Www-Authenticate"),
            ("content-md5", "Content-Md5"),
            ("te", "Te"),
            ("a--b", "A--B"),
            ("-x", "-X"),
            ("x-", "X-"),
            ("x-1a", "X-1a"),
            ("x-a1b", "X-A1b"),
            ("123", "123"),
            ("sec-ch-ua-wow64", "Sec-Ch-Ua-Wow64"),
            ("x_under_score", "X_under_score"),
            ("a.b-c", "A.b-C"),
            ("X-REQUEST-ID", "X-Request-Id"),
            ("Content-Type", "Content-Type"),
            // Not a token: left as it is.
            ("x request-id", "x request-id"),
            ("x:y", "x:y"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("", ""),
        ] {
            assert_eq!(canonical_header_key(name), canonical, "{name:?}");
        }
    }

    #[test]
    fn request_json_groups_headers_and_replaces_bad_utf8() {
        let req = GuestRequest {
            method: "POST",
            uri: "/t?x=1",
            headers: vec![("a", b"1"), ("x-id", b"2"), ("A", b"3"), ("b", b"\xff")],
            body: b"ok\xff",
            trace_id: "t",
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_request(&req)).unwrap();
        // Names the same in canonical form are one list, in order.
        assert_eq!(v["headers"]["A"], serde_json::json!(["1", "3"]));
        assert_eq!(v["headers"]["X-Id"], serde_json::json!(["2"]));
        assert_eq!(v["headers"]["B"], serde_json::json!(["\u{fffd}"]));
        assert_eq!(v["headers"].as_object().unwrap().len(), 3);
        assert_eq!(v["body"], "ok\u{fffd}");
        assert_eq!(v["trace_id"], "t");
    }

    #[test]
    fn response_json_accepts_gojinn_shapes() {
        let r =
            decode_response(b"  {\"headers\":{\"a\":\"1\",\"b\":[\"2\",\"3\"]},\"body\":\"x\"}\n")
                .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.len(), 3);
        assert_eq!(r.body, b"x");
        assert_eq!(decode_response(b"{\"status\":201}").unwrap().status, 201);
    }

    #[test]
    fn response_json_rejects_garbage() {
        for bad in [
            &b"hello"[..],
            b"{\"status\":200} trailing",
            b"{\"status\":\"200\"}",
            b"{\"status\":101}",
            b"{\"status\":200.5}",
            b"",
        ] {
            assert!(
                decode_response(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// What `plain_output = "text"` makes of `stdout`: status, content
    /// type, body.
    fn text(stdout: &[u8]) -> (u16, Option<String>, Vec<u8>) {
        let r = decode_output(stdout, PlainOutput::Text).unwrap();
        let content_type = r
            .headers
            .iter()
            .find(|(n, _)| n == CONTENT_TYPE)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap());
        (r.status, content_type, r.body)
    }

    #[test]
    fn stdout_that_is_not_a_response_object_is_plain_text_by_default() {
        let plain = Some(PLAIN_TEXT.to_owned());
        // What Go's json.Unmarshal refuses into Gojinn's response struct,
        // and objects whose status is absent, null or 0: Gojinn writes
        // stdout as it is, with status 200.
        for stdout in [
            &b"hello\n"[..],
            b"  [1, 2]",
            b"\"a string\"",
            b"{\"status\":200} trailing",
            b"{\"status\":\"200\"}",
            b"{\"status\":200.5}",
            b"{\"status\":2e2}",
            b"{\"status\":true}",
            b"{\"status\":9223372036854775808}",
            b"{\"status\":200,\"body\":{\"a\":1}}",
            b"{\"status\":200,\"headers\":[\"a\"]}",
            b"{\"status\":200,\"headers\":{\"a\":1}}",
            b"{\"body\":\"no status\"}",
            b"{\"status\":null,\"body\":\"x\"}",
            b"{\"status\":0,\"body\":\"x\"}",
            b"{\"message\":\"data, not a response\"}",
            b"\xff\xfe not UTF-8",
        ] {
            let shown = String::from_utf8_lossy(stdout);
            assert_eq!(
                text(stdout),
                (200, plain.clone(), stdout.to_vec()),
                "{shown}"
            );
        }
        // Empty stdout: an empty 200 without a content type, as Go's
        // net/http sends an empty body.
        assert_eq!(text(b""), (200, None, Vec::new()));
        // A response object is still the response.
        let r = decode_output(b"{\"status\":201,\"body\":\"x\"}", PlainOutput::Text).unwrap();
        assert_eq!((r.status, r.body), (201, b"x".to_vec()));
        // A response object with a status that cannot end a request, or
        // over the header limit, is still refused.
        for bad in [
            "{\"status\":101}".to_owned(),
            "{\"status\":-200}".to_owned(),
            "{\"status\":1000}".to_owned(),
            format!(
                r#"{{"status":200,"headers":{{"a":[{}]}}}}"#,
                vec![r#""x""#; 101].join(",")
            ),
        ] {
            assert!(
                decode_output(bad.as_bytes(), PlainOutput::Text).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuse_refuses_what_is_not_a_response_object() {
        for stdout in [&b"hello"[..], b"", b"{\"status\":\"200\"}", b"[1]"] {
            let e = decode_output(stdout, PlainOutput::Refuse).unwrap_err();
            assert!(e.contains("not one JSON response object"), "{e}");
        }
        // A missing, null or 0 status means 200, as Gojinn before 2026-03.
        for stdout in [
            &b"{\"body\":\"x\"}"[..],
            b"{\"status\":null,\"body\":\"x\"}",
            b"{\"status\":0,\"body\":\"x\"}",
        ] {
            let r = decode_output(stdout, PlainOutput::Refuse).unwrap();
            assert_eq!((r.status, r.body), (200, b"x".to_vec()));
        }
    }

    /// `stdout` decoded strictly: status, headers (name, value), body.
    fn strict(stdout: &str) -> (u16, Vec<(String, String)>, String) {
        let r = decode_response(stdout.as_bytes()).unwrap_or_else(|e| panic!("{stdout}: {e}"));
        let headers = r
            .headers
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8(v).unwrap()))
            .collect();
        (r.status, headers, String::from_utf8(r.body).unwrap())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn names_without_values_count_against_the_header_limit() {
        for empty in ["null", "[]"] {
            let names: Vec<String> = (0..=MAX_RESPONSE_HEADERS)
                .map(|i| format!("\"h{i}\":{empty}"))
                .collect();
            let stdout = format!("{{\"status\":200,\"headers\":{{{}}}}}", names.join(","));
            for plain in [PlainOutput::Text, PlainOutput::Refuse] {
                let e = decode_output(stdout.as_bytes(), plain).unwrap_err();
                assert!(e.contains("header fields allowed"), "{e}");
            }
        }
    }

    #[test]
    fn a_response_grown_past_max_response_by_replacement_characters_is_refused() {
        // 1,000 bytes that are not UTF-8 become 3,000 bytes of U+FFFD.
        let mut stdout = b"{\"status\":200,\"body\":\"".to_vec();
        stdout.extend([0xFF; 1000]);
        stdout.extend(b"\"}");
        let max = u64::try_from(stdout.len()).unwrap();
        let response = decode_output(&stdout, PlainOutput::Text).unwrap();
        assert_eq!(response.body.len(), 3000);
        let e = within(response, max).unwrap_err();
        assert!(e.contains("more than max_response"), "{e}");
        let response = decode_output(&stdout, PlainOutput::Text).unwrap();
        assert_eq!(within(response, 3000).unwrap().body.len(), 3000);
    }

    #[test]
    fn response_json_is_decoded_as_gos_json_unmarshal_does() {
        // A nil map and an empty string, as Go prints them on an error path.
        assert_eq!(
            strict(r#"{"status":401,"headers":null,"body":"denied"}"#),
            (401, vec![], "denied".into())
        );
        assert_eq!(
            strict(r#"{"status":204,"body":null}"#),
            (204, vec![], String::new())
        );
        // A nil slice is no value; a null in a list is an empty value.
        assert_eq!(
            strict(r#"{"status":200,"headers":{"a":null,"b":["1",null]}}"#),
            (200, pairs(&[("b", "1"), ("b", "")]), String::new())
        );
        // Field names match case-insensitively (a Go struct without json
        // tags prints `Status`), with Go's folding of U+017F and U+212A.
        for stdout in [
            r#"{"Status":201,"Headers":{"X-A":["1"]},"Body":"b"}"#,
            r#"{"STATUS":201,"hEaDeRs":{"X-A":"1"},"BODY":"b"}"#,
            "{\"\u{17f}tatu\u{17f}\":201,\"Header\u{17f}\":{\"X-A\":\"1\"},\"body\":\"b\"}",
        ] {
            assert_eq!(
                strict(stdout),
                (201, pairs(&[("X-A", "1")]), "b".into()),
                "{stdout}"
            );
        }
        // Not a fold: these are other keys, skipped.
        assert_eq!(
            strict(r#"{"status":200,"bodyx":"no","bod":"no","b\u00f6dy":"no"}"#).2,
            ""
        );
        // A field given twice is decoded twice: the last value wins, null
        // leaves status and body as they were, and headers objects merge
        // into one map (null empties it).
        assert_eq!(
            strict(r#"{"status":201,"body":"x","status":null,"body":null}"#),
            (201, vec![], "x".into())
        );
        assert_eq!(strict(r#"{"status":200,"status":202}"#).0, 202);
        assert_eq!(
            strict(r#"{"status":200,"headers":{"a":"1","b":"2"},"Headers":{"b":"3"}}"#).1,
            pairs(&[("a", "1"), ("b", "3")])
        );
        assert_eq!(
            strict(r#"{"status":200,"headers":{"a":"1"},"headers":null,"headers":{"b":"2"}}"#).1,
            pairs(&[("b", "2")])
        );
        // Bytes that are not UTF-8 inside a string become U+FFFD.
        let r = decode_response(b"{\"status\":200,\"body\":\"a\xffb\"}").unwrap();
        assert_eq!(r.body, "a\u{fffd}b".as_bytes());
        // An escaped surrogate that is not half of a pair is U+FFFD, as
        // Go decodes it; the escape after it is read on its own; pairs
        // stay pairs, in strings, header names and values and keys alike.
        for (escaped, decoded) in [
            (r"\ud800", "\u{fffd}"),
            (r"\udc00", "\u{fffd}"),
            (r"a\udbffb", "a\u{fffd}b"),
            (r"\ud800\u0041", "\u{fffd}A"),
            (r"\ud800\ud83d\ude00", "\u{fffd}\u{1f600}"),
            (r"\udc00\ud800", "\u{fffd}\u{fffd}"),
            (r"\ud83d\ude00", "\u{1f600}"),
            (r"\ud800\n", "\u{fffd}\n"),
            (r"\\ud800", r"\ud800"),
        ] {
            let stdout = format!(
                r#"{{"status":200,"headers":{{"x-{escaped}":["{escaped}"]}},"bo{escaped}dy":1,"body":"{escaped}"}}"#
            );
            assert_eq!(
                strict(&stdout),
                (
                    200,
                    pairs(&[(&format!("x-{decoded}"), decoded)]),
                    decoded.to_owned()
                ),
                "{stdout}"
            );
        }
        // Arrays and objects nest at most 10,000 deep, as in Go, however
        // deep (an unknown field's value is skipped without recursion, a
        // typed one refused at 128 levels): deeper is not a response.
        // `depth` levels, the response object's own included.
        let nested = |depth: usize| {
            let depth = depth - 1;
            format!(
                r#"{{"status":201,"x":{}0{}}}"#,
                "[{\"a\":".repeat(depth / 2) + &"[".repeat(depth % 2),
                "]".repeat(depth % 2) + &"}]".repeat(depth / 2)
            )
        };
        assert_eq!(
            decode_response(nested(9_999).as_bytes()).unwrap().status,
            201
        );
        assert_eq!(
            decode_response(nested(10_000).as_bytes()).unwrap().status,
            201
        );
        for depth in [10_001, 100_000] {
            let e = decode_response(nested(depth).as_bytes()).unwrap_err();
            assert!(e.contains("nested deeper than 10000"), "{e}");
            let stdout = "[".repeat(depth);
            let e = decode_response(stdout.as_bytes()).unwrap_err();
            assert!(e.contains("not one JSON response object"), "{e}");
            let r = decode_output(stdout.as_bytes(), PlainOutput::Text).unwrap();
            assert_eq!(r.body, stdout.as_bytes());
        }
        let typed = format!(r#"{{"status":200,"body":{}}}"#, "[".repeat(100_000));
        assert!(decode_response(typed.as_bytes()).is_err());
        // Top-level null decodes to nothing: no status.
        assert_eq!(strict("null"), (200, vec![], String::new()));
        assert_eq!(
            text(b"null"),
            (200, Some(PLAIN_TEXT.into()), b"null".to_vec())
        );
    }
}
