//! The wasi-json ABI, the Gojinn contract: a WASI preview1 command reads one
//! JSON request on stdin and writes one JSON response on stdout. The WASI
//! functions it calls are in [`crate::runtime::imports::wasi_snapshot_preview1`].
//!
//! stdin:  `{"method","uri","headers":{name:[values]},"body","trace_id"}`
//! stdout: `{"status","headers":{name: value | [values]},"body"}`

use std::collections::BTreeMap;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use wasmi::{Module, ValType};

use super::{GuestRequest, GuestResponse};
use crate::config::FunctionSpec;
use crate::error::CallError;
use crate::limits::{InstanceCost, MAX_RESPONSE_HEADERS};
use crate::runtime::state::{HostState, Stdio};
use crate::runtime::{Runtime, Sandbox};

/// The command entry point.
pub const START: &str = "_start";
/// Function exports a wasi-json module must have.
pub const EXPORTS: &[(&str, &[ValType], &[ValType])] = &[(START, &[], &[])];

/// Bytes of a bad stdout quoted in the log.
const QUOTED_OUTPUT: usize = 200;

/// The request JSON written to stdin.
#[derive(Serialize)]
struct StdinRequest<'a> {
    method: &'a str,
    uri: &'a str,
    headers: BTreeMap<&'a str, Vec<String>>,
    body: String,
    trace_id: &'a str,
}

/// The response JSON read from stdout.
#[derive(Deserialize)]
struct StdoutResponse {
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    headers: Headers,
    #[serde(default)]
    body: Option<String>,
}

/// The `headers` object of a response: each name with its values (a string
/// or a list of strings). Values are counted across all names while they
/// are parsed, and parsing stops past [`MAX_RESPONSE_HEADERS`]: building
/// 349,492 values before counting them took ~96 ms of unmetered host time.
/// A name given twice keeps its last values, as a map does.
#[derive(Default)]
struct Headers(BTreeMap<String, Vec<String>>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of header names to a string or a list of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        let mut headers = BTreeMap::new();
        let mut count = 0usize;
        while let Some(name) = map.next_key::<String>()? {
            let values = map.next_value_seed(ValuesSeed { count: &mut count })?;
            headers.insert(name, values);
        }
        Ok(Headers(headers))
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

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut values = Vec::new();
        while let Some(v) = seq.next_element::<String>()? {
            self.add()?;
            values.push(v);
        }
        Ok(values)
    }
}

/// Encodes the request as the stdin JSON. Header values and the body are
/// strings: bytes that are not UTF-8 become U+FFFD (use the native ABI for
/// binary bodies).
pub fn encode_request(request: &GuestRequest<'_>) -> Vec<u8> {
    let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        headers
            .entry(name)
            .or_default()
            .push(String::from_utf8_lossy(value).into_owned());
    }
    let stdin = StdinRequest {
        method: request.method,
        uri: request.uri,
        headers,
        body: String::from_utf8_lossy(request.body).into_owned(),
        trace_id: request.trace_id,
    };
    serde_json::to_vec(&stdin).unwrap_or_default()
}

/// Parses what the guest printed into a response.
pub fn decode_response(stdout: &[u8]) -> Result<GuestResponse, String> {
    let text = stdout.trim_ascii();
    let parsed: StdoutResponse = serde_json::from_slice(text)
        .map_err(|e| format!("stdout is not one JSON response object: {e}"))?;
    let status = match &parsed.status {
        None | Some(serde_json::Value::Null) => 200,
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(s) => super::check_status(s)?,
            None => return Err(format!("status {n} is not an integer between 200 and 999")),
        },
        Some(other) => return Err(format!("status {other} is not an integer")),
    };
    let mut headers = Vec::new();
    for (name, values) in parsed.headers.0 {
        headers.extend(values.into_iter().map(|v| (name.clone(), v.into_bytes())));
    }
    Ok(GuestResponse {
        status,
        headers,
        body: parsed.body.unwrap_or_default().into_bytes(),
    })
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
            let result = call(&mut sandbox).await;
            (result, sandbox.fuel_used())
        }
        Err((error, fuel, mut state)) => {
            state.flush_stderr();
            match error {
                CallError::ExitCode(0) => (respond(&state), fuel),
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
async fn call(sandbox: &mut Sandbox) -> Result<GuestResponse, CallError> {
    let result = sandbox.call(START, &[], &mut []).await;
    sandbox.store_mut().data_mut().flush_stderr();
    match result {
        Ok(()) | Err(CallError::ExitCode(0)) => respond(sandbox.store().data()),
        Err(e) => Err(e),
    }
}

/// The response the guest wrote to stdout.
fn respond(state: &HostState) -> Result<GuestResponse, CallError> {
    let stdout = state.stdio.as_ref().map_or(&[][..], |w| w.stdout());
    decode_response(stdout).map_err(|why| {
        let shown = &stdout[..stdout.len().min(QUOTED_OUTPUT)];
        log::warn!(
            "wasi-json output rejected: {why}; it began with {:?}",
            String::from_utf8_lossy(shown)
        );
        CallError::BadResponse(why)
    })
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
    fn request_json_groups_headers_and_replaces_bad_utf8() {
        let req = GuestRequest {
            method: "POST",
            uri: "/t?x=1",
            headers: vec![("a", b"1"), ("a", b"2"), ("b", b"\xff")],
            body: b"ok\xff",
            trace_id: "t",
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_request(&req)).unwrap();
        assert_eq!(v["headers"]["a"], serde_json::json!(["1", "2"]));
        assert_eq!(v["headers"]["b"], serde_json::json!(["\u{fffd}"]));
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
}
