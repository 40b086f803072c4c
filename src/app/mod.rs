//! The application pipeline: route → module cache → admission → sandbox →
//! response.

pub(crate) mod admission;
pub mod router;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use crate::abi;
use crate::app::router::{Match, Router};
use crate::cache::{self, ModuleCache};
use crate::config::{Config, FunctionSpec};
use crate::error::Kind;
use crate::http::{Request, Response};
use crate::limits::MAX_RESPONSE_HEADERS;
use crate::server::connections;

/// Everything the request pipeline shares. Lives on the executor's thread.
pub struct App {
    pub(crate) config: Config,
    pub(crate) router: Router,
    pub(crate) cache: ModuleCache,
    pub(crate) in_flight: Cell<usize>,
    /// Bytes of `memory_budget` held by guests, bodies and responses.
    pub(crate) reserved_memory: Cell<u64>,
    /// The part of `reserved_memory` held by request bodies being read.
    pub(crate) body_memory: Cell<u64>,
    pub(crate) connections: connections::Table,
}

/// What the access log says about one request.
struct Access {
    function: Option<Rc<FunctionSpec>>,
    kind: Option<Kind>,
    fuel: u64,
}

/// An error response and its access-log record.
fn fail(
    kind: Kind,
    message: &str,
    function: Option<Rc<FunctionSpec>>,
    fuel: u64,
    trace_id: &str,
) -> (Response, Access) {
    let name = function.as_deref().map(|f| f.name.as_str());
    let response = Response::error(kind, message, name, trace_id);
    (
        response,
        Access {
            function,
            kind: Some(kind),
            fuel,
        },
    )
}

impl App {
    /// Builds routes, cache and runtime from a validated config.
    pub fn new(config: Config) -> Self {
        Self {
            router: Router::new(&config),
            cache: ModuleCache::new(&config.server),
            in_flight: Cell::new(0),
            reserved_memory: Cell::new(0),
            body_memory: Cell::new(0),
            connections: connections::Table::default(),
            config,
        }
    }

    /// Serves one request, from routing to the response.
    pub(crate) async fn respond(
        &self,
        req: &Request,
        trace_id: &str,
        started: Instant,
    ) -> Response {
        let (response, access) = self.pipeline(req, trace_id).await;
        log_access(
            &req.method,
            &req.uri,
            &access,
            response.status,
            started,
            trace_id,
        );
        response.with_header("x-trace-id", trace_id)
    }

    async fn pipeline(&self, req: &Request, trace_id: &str) -> (Response, Access) {
        let spec = match self.router.route(&req.method, req.path()) {
            Match::Found(spec) => spec,
            Match::NotFound => {
                return fail(
                    Kind::NotFound,
                    "no function serves this path",
                    None,
                    0,
                    trace_id,
                );
            }
            Match::MethodNotAllowed(spec, allow) => {
                let (response, access) = fail(
                    Kind::MethodNotAllowed,
                    "method not allowed for this function",
                    Some(spec),
                    0,
                    trace_id,
                );
                return (response.with_header("allow", allow), access);
            }
        };
        let loaded = match self.cache.get(&spec.module, spec.abi).await {
            Ok(loaded) => loaded,
            // `/NAME` with no `NAME.wasm`: there is no such function.
            Err(e) if spec.from_functions_dir && cache::is_missing(&e) => {
                let message = "no function serves this path";
                return fail(Kind::NotFound, message, None, 0, trace_id);
            }
            Err(e) => {
                // The cache logs other failures once per change of the file;
                // a missing file is not cached, so it is logged here.
                if cache::is_missing(&e) {
                    log::warn!(
                        "function {} [{trace_id}]: module unavailable: {e}",
                        spec.name
                    );
                }
                let message = "the function's module cannot be loaded; the server log says why";
                return fail(Kind::ModuleUnavailable, message, Some(spec), 0, trace_id);
            }
        };
        let _permit = match self.admit(&spec.limits) {
            Ok(permit) => permit,
            Err(message) => {
                let (response, access) = fail(Kind::Overloaded, message, Some(spec), 0, trace_id);
                let retry = self.config.server.retry_after_secs.to_string();
                return (response.with_header("retry-after", retry), access);
            }
        };
        let headers = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let request = abi::Request {
            method: &req.method,
            uri: &req.uri,
            headers,
            body: &req.body,
            trace_id,
        };
        let outcome = abi::call(&loaded.runtime, &loaded.compiled, &spec, &request).await;
        match outcome.result.and_then(into_http) {
            Ok(response) => {
                let access = Access {
                    function: Some(spec),
                    kind: None,
                    fuel: outcome.fuel,
                };
                (response, access)
            }
            Err(e) => {
                log::warn!("function {} [{trace_id}]: {e}", spec.name);
                fail(e.kind(), &e.to_string(), Some(spec), outcome.fuel, trace_id)
            }
        }
    }
}

/// Writes the access line of one response (every response has one).
fn log_access(
    method: &str,
    uri: &str,
    access: &Access,
    status: u16,
    started: Instant,
    trace_id: &str,
) {
    log::info!(
        target: "access",
        "{} {} fn={} status={status} error={} fuel={} us={} trace={trace_id}",
        // Method and target are client text: escaped like guest text, so
        // that no line break or bidi control reaches the log raw.
        crate::host::escape(method),
        crate::host::escape(uri),
        access.function.as_deref().map_or("-", |f| f.name.as_str()),
        access.kind.map_or("-", Kind::as_str),
        access.fuel,
        started.elapsed().as_micros(),
    );
}

/// A response the host makes without running a guest (a request it could
/// not read, a connection it cannot take), with its trace id, and its
/// access line; `method` and `uri` are `-` when unknown.
pub(crate) fn host_error(
    kind: Kind,
    message: &str,
    (method, uri, trace_id): (&str, &str, &str),
    started: Instant,
) -> Response {
    let (response, access) = fail(kind, message, None, 0, trace_id);
    log_access(method, uri, &access, response.status, started, trace_id);
    response.with_header("x-trace-id", trace_id)
}

/// Checks a guest's response and turns it into HTTP: header count, names,
/// values, no host-owned fields (framing fields are dropped). `wasmgate run`
/// uses it too, so that it accepts exactly what the server sends.
pub(crate) fn into_http(guest: abi::Response) -> Result<Response, crate::error::CallError> {
    if guest.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(crate::error::CallError::BadResponse(format!(
            "{} header fields, more than the {MAX_RESPONSE_HEADERS} allowed",
            guest.headers.len()
        )));
    }
    let mut headers = Vec::with_capacity(guest.headers.len());
    for (name, value) in guest.headers {
        let lower = name.to_ascii_lowercase();
        if !crate::http::valid_name(&lower) || !crate::http::valid_value(&value) {
            return Err(crate::error::CallError::BadResponse(format!(
                "invalid header field `{}`: the name must be a token, the value visible characters, spaces and tabs",
                lower.escape_debug()
            )));
        }
        if crate::http::HOST_HEADERS.contains(&lower.as_str()) {
            return Err(crate::error::CallError::BadResponse(format!(
                "header field `{lower}` is set by the host, not by functions"
            )));
        }
        if !crate::http::FRAMING_HEADERS.contains(&lower.as_str()) {
            headers.push((lower.into(), value));
        }
    }
    Ok(Response {
        status: guest.status,
        headers,
        body: guest.body,
    })
}

/// A trace id: at most 64 ASCII characters.
pub(crate) type TraceId = heapless::String<64>;

/// The request's trace id: from `traceparent`, else `x-request-id`, else new.
pub(crate) fn trace_id(headers: &[(String, Vec<u8>)]) -> TraceId {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let mut id = TraceId::new();
    let from_traceparent = header("traceparent")
        .and_then(|v| v.split(|&b| b == b'-').nth(1))
        .filter(|t| t.len() == 32 && t.iter().all(u8::is_ascii_hexdigit));
    let from_request_id = header("x-request-id")
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .filter(|v| {
            v.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        });
    match from_traceparent.or(from_request_id) {
        Some(given) => {
            for &b in given {
                let _ = id.push(b as char);
            }
        }
        None => {
            for _ in 0..32 {
                let _ = id.push(char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'));
            }
        }
    }
    id
}
