//! The admin listener's handler (`[admin] listen`): `GET /healthz`
//! (alive), `GET /readyz` (serving; 503 once a drain started) and
//! `GET /metrics` (the Prometheus text format, see [`super::metrics`]).
//! The server reads its requests with the same framing, timeouts and
//! connection caps as the main listener's.

use std::time::Instant;

use super::App;
use super::metrics::sample;
use crate::error::DecodeError;
use crate::http::{Request, Response};
use crate::limits::ServerLimits;
use crate::server::{Handler, Refused, Status};

/// The largest request body the admin listener reads: 1 KiB. No admin
/// path takes a body, and the admin listener has no memory budget: a
/// larger one is refused (413 `body-too-large`) before it is read.
const ADMIN_MAX_BODY: u64 = 1024;

/// Serves the admin paths from the main server's status.
pub struct Admin {
    status: Status<App>,
    limits: ServerLimits,
}

impl Admin {
    /// The admin handler of the server `status` describes.
    pub fn new(status: Status<App>) -> Self {
        let mut limits = status.handler().config.server.clone();
        limits.max_body = ADMIN_MAX_BODY;
        // Its three paths have no `/` to encode.
        limits.allow_encoded_slash = false;
        Self { status, limits }
    }

    /// Every metric, in the exposition format.
    fn metrics(&self) -> String {
        let app = self.status.handler();
        let mut out = String::new();
        app.metrics.write(&mut out);
        for (which, name, kind, help) in [
            (
                0,
                "wasmgate_upstream_requests_total",
                "counter",
                "Requests sent to each upstream of each [[proxy]] (a retry on another upstream counts there too); since the last reload.",
            ),
            (
                1,
                "wasmgate_upstream_errors_total",
                "counter",
                "Upstream requests that failed: connect, timeout, a bad or cut response; since the last reload.",
            ),
            (
                2,
                "wasmgate_upstream_response_seconds",
                "summary",
                "Seconds from sending a request to its response head; since the last reload.",
            ),
        ] {
            super::metrics::header(&mut out, name, kind, help);
            for proxy in app.router.proxies() {
                proxy.write_metric(&mut out, name, which);
            }
        }
        let (in_flight, reserved) = app.admission.usage();
        let cache = app.cache.stats();
        for (name, help, value) in [
            (
                "wasmgate_requests_in_flight",
                "Requests admitted and not yet answered.",
                u64::try_from(in_flight).unwrap_or(u64::MAX),
            ),
            (
                "wasmgate_memory_reserved_bytes",
                "Bytes of memory_budget held by requests now.",
                reserved,
            ),
            (
                "wasmgate_memory_budget_bytes",
                "The memory_budget.",
                app.config.server.memory_budget,
            ),
            (
                "wasmgate_connections_open",
                "Connections open on the main listener.",
                u64::try_from(self.status.connections()).unwrap_or(u64::MAX),
            ),
            (
                "wasmgate_module_cache_entries",
                "Compiled modules in the cache.",
                cache.entries,
            ),
            (
                "wasmgate_module_cache_bytes",
                "Estimated bytes of the cached modules, their http-wasm snapshots included.",
                cache.bytes,
            ),
        ] {
            sample(&mut out, name, "gauge", help, value);
        }
        for (name, help, value) in [
            (
                "wasmgate_module_cache_hits_total",
                "Module lookups answered from the cache.",
                cache.hits,
            ),
            (
                "wasmgate_module_cache_misses_total",
                "Module lookups that found no current entry.",
                cache.misses,
            ),
            (
                "wasmgate_module_compiles_total",
                "Modules read and compiled (or refused).",
                cache.compiles,
            ),
        ] {
            sample(&mut out, name, "counter", help, value);
        }
        super::metrics::header(
            &mut out,
            "wasmgate_build_info",
            "gauge",
            "The running version.",
        );
        out.push_str(concat!(
            "wasmgate_build_info{version=\"",
            env!("CARGO_PKG_VERSION"),
            "\"} 1\n"
        ));
        out
    }
}

/// A plain-text response.
fn text(status: u16, body: impl Into<Vec<u8>>, content_type: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body: body.into(),
        stream: None,
    }
}

impl Handler for Admin {
    type Gate<'a> = ();
    type Held<'a> = ();

    fn limits(&self) -> &ServerLimits {
        &self.limits
    }
    fn gate(&self) {}
    async fn respond(&self, request: &Request, _: &Self::Gate<'_>) -> Response {
        let plain = "text/plain; charset=utf-8";
        let path = request.path();
        if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return text(404, "not found\n", plain);
        }
        if request.method != "GET" && request.method != "HEAD" {
            return text(405, "method not allowed\n", plain).with_header("allow", "GET, HEAD");
        }
        match path {
            "/healthz" => text(200, "ok\n", plain),
            "/readyz" if self.status.draining() => text(503, "draining\n", plain),
            "/readyz" => text(200, "ready\n", plain),
            _ => text(
                200,
                self.metrics(),
                "text/plain; version=0.0.4; charset=utf-8",
            ),
        }
    }
    fn unreadable(&self, error: DecodeError, (): &(), _: Instant) -> Response {
        let status = error.kind().status();
        text(
            status,
            format!("{}\n", error.message(&self.limits)),
            "text/plain; charset=utf-8",
        )
    }
    fn refused(&self, refused: &Refused, _: Instant) -> Response {
        text(503, format!("{refused}\n"), "text/plain; charset=utf-8")
    }
    fn cancelled(&self, _: &Request, (): &()) {}
    fn hold(&self, _: u64) {}
}
