//! The reverse proxy: a `[[proxy]]` route's request goes to one of its
//! upstreams and the upstream's response comes back, as named phases
//! (CONVENTIONS.md, Pingora's `ProxyHttp`): upstream selection
//! ([`Proxy::pick`], round robin with passive health) → upstream request
//! ([`upstream_request`]: hop-by-hop fields removed, `X-Forwarded-*` and
//! `traceparent` set) → exchange ([`Proxy::exchange`], over a pooled
//! connection, retried once on a fresh one when a pooled one turns out
//! closed) → response ([`response_headers`], body streamed or buffered).
//!
//! Middleware (`[[middleware]]`) runs around [`Proxy::forward`]: request
//! middleware before it, on the request it is given; response middleware
//! after it, on a response it asked to be buffered (`buffer = true`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::config::{ProxySpec, Upstream};
use crate::error::{Error, UpstreamError};
use crate::http::client::{self, ClientConn, ClientLimits, Pool, ResponseBody};
use crate::http::{Response, ResponseHead, Streamed};
use crate::limits::ServerLimits;

/// The request a proxy forwards: the client's, or what request middleware
/// made of it.
pub struct ProxyRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The target in origin-form (path and query), sent as it is.
    pub uri: &'a str,
    /// Header fields, names lower case, as the client sent them (hop-by-hop
    /// fields included: [`Proxy::forward`] removes them).
    pub headers: &'a [(String, Vec<u8>)],
    /// The body (sent with `content-length`).
    pub body: &'a [u8],
    /// The client's address, appended to `X-Forwarded-For`.
    pub peer: Option<SocketAddr>,
    /// The request's trace id (the access line's), sent in `traceparent`.
    pub trace_id: &'a str,
}

/// One `[[proxy]]` route at run time: its spec, and per upstream a
/// connection pool and its health. Shared by every executor thread.
pub struct Proxy {
    /// The route's configuration.
    pub spec: ProxySpec,
    upstreams: Vec<UpstreamState>,
    /// The next upstream in turn.
    next: AtomicUsize,
    /// The origin of the health clocks (milliseconds since).
    epoch: Instant,
    /// The response limits the server applies to its own requests
    /// (`max_header_bytes`, `max_headers`).
    head_limits: (usize, usize),
}

/// One upstream's pool and passive health.
struct UpstreamState {
    pool: Arc<Pool>,
    /// Connect failures or timeouts in a row.
    failures: AtomicU32,
    /// Skipped until this time (ms since `epoch`; 0: not skipped).
    skipped_until: AtomicU64,
    /// When it last failed (ms since `epoch`).
    last_failure: AtomicU64,
    /// Requests sent (attempts, retries on another upstream included).
    requests: AtomicU64,
    /// Attempts that failed: connect, timeout, a bad or cut response.
    errors: AtomicU64,
    /// Microseconds from sending to the response head, summed over the
    /// attempts that got one, and how many did.
    head_micros: AtomicU64,
    heads: AtomicU64,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Proxy>();
};

impl Proxy {
    /// The run-time state of `spec`; heads are read within `server`'s
    /// head limits.
    pub fn new(spec: ProxySpec, server: &ServerLimits) -> Self {
        let limits = &spec.limits;
        let upstreams = spec
            .upstreams
            .iter()
            .map(|_| UpstreamState {
                pool: Arc::new(Pool::new(limits.pool_size, limits.pool_idle_timeout)),
                failures: AtomicU32::new(0),
                skipped_until: AtomicU64::new(0),
                last_failure: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                head_micros: AtomicU64::new(0),
                heads: AtomicU64::new(0),
            })
            .collect();
        Self {
            spec,
            upstreams,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            head_limits: (server.max_header_bytes, server.max_headers),
        }
    }

    /// The upstream `i` (as `forward` reports it).
    pub fn upstream(&self, i: usize) -> Option<&Upstream> {
        self.spec.upstreams.get(i)
    }

    /// Forwards `req` to the next upstream and returns its response: with
    /// `buffer`, the whole body read (at most `max_response`, else 502
    /// `upstream-bad-response`); without, a streamed body the server
    /// writes as it arrives. `used` learns which upstream was tried (for
    /// the access line).
    pub async fn forward(
        &self,
        req: &ProxyRequest<'_>,
        buffer: bool,
        used: &mut Option<usize>,
    ) -> Result<Response, Error> {
        // Upstreams that could not be connected to (nothing was sent: any
        // request may go to another one), as bits by index.
        let mut tried = 0u64;
        let mut attempts = 0usize;
        let mut next = self.pick(tried);
        let (upstream, state, exchanged) = loop {
            let Some(i) = next else {
                return Err(UpstreamError::Closed.into());
            };
            *used = Some(i);
            let (Some(upstream), Some(state)) = (self.spec.upstreams.get(i), self.upstreams.get(i))
            else {
                return Err(UpstreamError::Closed.into());
            };
            let head = upstream_request(req, upstream, self.spec.limits.pool_size > 0);
            let sent = Instant::now();
            let exchanged = self.exchange(req, upstream, state, &head).await;
            state.requests.fetch_add(1, Ordering::Relaxed);
            match &exchanged {
                Err(e) => {
                    state.errors.fetch_add(1, Ordering::Relaxed);
                    if e.is_failure() {
                        self.failed(state);
                    }
                }
                Ok(_) => {
                    let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    state.head_micros.fetch_add(took, Ordering::Relaxed);
                    state.heads.fetch_add(1, Ordering::Relaxed);
                    self.succeeded(state);
                }
            }
            attempts += 1;
            if let Err(e @ (UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_))) =
                &exchanged
            {
                tried |= 1u64
                    .checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
                    .unwrap_or(0);
                next = self.pick(tried);
                if attempts < self.upstreams.len() && next.is_some() {
                    log::warn!(
                        "proxy {} [{}]: upstream {}: {e}; trying another upstream",
                        self.spec.name,
                        req.trace_id,
                        upstream.url
                    );
                    continue;
                }
            }
            break (upstream, state, exchanged);
        };
        let response = match exchanged {
            Ok((conn, head)) => {
                let head_request = req.method == "HEAD";
                let response = self.respond(conn, head, state, buffer, head_request).await;
                if response.is_err() {
                    state.errors.fetch_add(1, Ordering::Relaxed);
                }
                response
            }
            Err(e) => Err(e),
        };
        response.map_err(|e| {
            log::warn!(
                "proxy {} [{}]: upstream {}: {e}",
                self.spec.name,
                req.trace_id,
                upstream.url
            );
            Error::from(e)
        })
    }

    /// Writes each upstream's samples of the metric `name`: `which` 0,
    /// requests; 1, errors; 2, the summary of seconds to the response head.
    pub fn write_metric(&self, out: &mut String, name: &str, which: usize) {
        for (upstream, state) in self.spec.upstreams.iter().zip(&self.upstreams) {
            let labels = format!(
                "{{proxy=\"{}\",upstream=\"{}\"}}",
                super::metrics::escape(&self.spec.name),
                super::metrics::escape(&upstream.url)
            );
            let _ = match which {
                0 => writeln!(
                    out,
                    "{name}{labels} {}",
                    state.requests.load(Ordering::Relaxed)
                ),
                1 => writeln!(
                    out,
                    "{name}{labels} {}",
                    state.errors.load(Ordering::Relaxed)
                ),
                // Exact below 2^53 µs (285 years of waiting).
                #[allow(clippy::cast_precision_loss)]
                _ => writeln!(
                    out,
                    "{name}_sum{labels} {}\n{name}_count{labels} {}",
                    state.head_micros.load(Ordering::Relaxed) as f64 / 1e6,
                    state.heads.load(Ordering::Relaxed)
                ),
            };
        }
    }

    /// Upstream selection among those not in `tried` (bits by index; the
    /// 65th upstream on is never excluded): the next one in turn that is
    /// not being skipped; when every one is, the one whose last failure is
    /// the oldest (it may have recovered; failing without trying would
    /// keep the route down until a skip ends). `None` when every upstream
    /// was tried.
    fn pick(&self, tried: u64) -> Option<usize> {
        let n = self.upstreams.len().max(1);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = self.now_ms();
        let untried = |i: &usize| {
            u32::try_from(*i)
                .ok()
                .and_then(|i| 1u64.checked_shl(i))
                .is_none_or(|bit| tried & bit == 0)
        };
        let healthy = (0..n).map(|k| (start + k) % n).filter(untried).find(|&i| {
            self.upstreams
                .get(i)
                .is_some_and(|u| u.skipped_until.load(Ordering::Relaxed) <= now)
        });
        healthy.or_else(|| {
            (0..n).filter(untried).min_by_key(|&i| {
                self.upstreams
                    .get(i)
                    .map_or(u64::MAX, |u| u.last_failure.load(Ordering::Relaxed))
            })
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Passive health: one more failure in a row; at `fail_threshold`,
    /// the upstream is skipped for `fail_skip` (again at each further one).
    fn failed(&self, state: &UpstreamState) {
        let now = self.now_ms();
        state.last_failure.store(now, Ordering::Relaxed);
        let failures = state
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures >= self.spec.limits.fail_threshold {
            let skip = u64::try_from(self.spec.limits.fail_skip.as_millis()).unwrap_or(u64::MAX);
            // 1 at least: 0 means "not skipped".
            let until = now.saturating_add(skip).max(1);
            state.skipped_until.store(until, Ordering::Relaxed);
            log::warn!(
                "proxy {}: an upstream failed {failures} times in a row; skipped for {} ms",
                self.spec.name,
                skip
            );
        }
    }

    fn succeeded(&self, state: &UpstreamState) {
        state.failures.store(0, Ordering::Relaxed);
        state.skipped_until.store(0, Ordering::Relaxed);
    }

    /// The limits a response is read within.
    fn client_limits(&self) -> ClientLimits {
        let limits = &self.spec.limits;
        ClientLimits {
            max_header_bytes: self.head_limits.0,
            max_headers: self.head_limits.1,
            response_timeout: limits.response_timeout,
            body_timeout: limits.upstream_body_timeout,
            max_body: limits.max_upstream_body,
        }
    }

    /// Sends the request and reads the response head, over a pooled
    /// connection if there is one. A pooled connection that fails before
    /// the response's first byte (the upstream closed it while it was
    /// idle) is replaced by a fresh one, once, when the request is
    /// idempotent (RFC 9110 §9.2.2): another method may have had effect.
    async fn exchange(
        &self,
        req: &ProxyRequest<'_>,
        upstream: &Upstream,
        state: &UpstreamState,
        head: &[u8],
    ) -> Result<(ClientConn, ResponseHead), UpstreamError> {
        let limits = self.client_limits();
        if let Some(mut conn) = state.pool.take() {
            match self.send(&mut conn, req, head, &limits).await {
                Ok(response) => return Ok((conn, response)),
                Err(UpstreamError::Closed | UpstreamError::Io(_)) if idempotent(req.method) => {}
                Err(e) => return Err(e),
            }
        }
        let mut conn = client::connect(
            &upstream.host,
            upstream.port,
            self.spec.limits.connect_timeout,
        )
        .await?;
        let response = self.send(&mut conn, req, head, &limits).await?;
        Ok((conn, response))
    }

    /// The request out and the response head in, on `conn`.
    async fn send(
        &self,
        conn: &mut ClientConn,
        req: &ProxyRequest<'_>,
        head: &[u8],
        limits: &ClientLimits,
    ) -> Result<ResponseHead, UpstreamError> {
        client::send(conn, head, req.body, limits.response_timeout).await?;
        client::read_head(conn, req.method, limits).await
    }

    /// The client's response from the upstream's: its fields (hop-by-hop
    /// and framing ones removed) and its body, buffered or streamed.
    async fn respond(
        &self,
        conn: ClientConn,
        head: ResponseHead,
        state: &UpstreamState,
        buffer: bool,
        head_request: bool,
    ) -> Result<Response, UpstreamError> {
        let mut body =
            ResponseBody::new(conn, &head, self.client_limits(), Arc::clone(&state.pool))?;
        let headers = response_headers(head.headers);
        let status = head.line.status;
        if buffer && head_request {
            // A HEAD's response has no body to buffer, and the length a
            // GET would get is not known here: a middleware that asked
            // for the body may change it (`xml-to-json`), so neither the
            // upstream's `content-length` nor the empty buffer's 0 is true
            // (RFC 9110 §9.3.2: a wrong one is worse than none). The head
            // goes out as one of unknown length; middleware still see the
            // status and fields, and set fields.
            body.forget_length();
            return Ok(Response {
                status,
                headers,
                body: Vec::new(),
                stream: Some(Streamed(Box::new(body))),
            });
        }
        if buffer {
            body.set_limit(
                self.spec
                    .limits
                    .max_response
                    .min(self.spec.limits.max_upstream_body),
                "max_response",
            )?;
            let body = body.read_all().await?;
            return Ok(Response {
                status,
                headers,
                body,
                stream: None,
            });
        }
        Ok(Response {
            status,
            headers,
            body: Vec::new(),
            stream: Some(Streamed(Box::new(body))),
        })
    }
}

/// Whether a request with `method` may be sent twice (RFC 9110 §9.2.2).
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// Hop-by-hop fields (RFC 9110 §7.6.1, and the obsolete `keep-alive` and
/// `proxy-connection` of RFC 2068 and common practice): they describe one
/// connection and are never forwarded, in either direction. `proxy-*`
/// authentication is for this proxy, not the next hop.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// The fields of `headers` that are not forwarded: the hop-by-hop ones
/// and every field a `connection` field names (RFC 9110 §7.6.1).
fn connection_named(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|token| String::from_utf8_lossy(token.trim_ascii()).to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether field `name` goes on to the next hop, given the names the
/// message's `connection` fields list.
fn end_to_end(name: &str, named: &[String]) -> bool {
    !HOP_BY_HOP.contains(&name) && !named.iter().any(|n| n == name)
}

/// The capacity an upstream request's head starts with: room for a usual
/// one (request line, a dozen fields, the forwarding ones) without regrowth.
const HEAD_ROOM: usize = 512;

/// Upstream request: the head sent to `upstream`. The client's fields go
/// on except the hop-by-hop ones, `host` (the upstream's authority is
/// sent; the client's goes in `x-forwarded-host`), the framing and
/// `expect` (the body has been read; it is sent with `content-length`),
/// and those the proxy sets: `x-forwarded-for` gets the client's address
/// appended, `x-forwarded-proto` and `x-forwarded-host` are replaced, and
/// `traceparent` carries the request's trace id.
pub fn upstream_request(req: &ProxyRequest<'_>, upstream: &Upstream, keep_alive: bool) -> Vec<u8> {
    let named = connection_named(req.headers);
    // Room for a usual head at once (no regrowth); a larger one grows.
    let mut out = Vec::with_capacity(HEAD_ROOM);
    let line = |out: &mut Vec<u8>, name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.uri.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    line(&mut out, "host", upstream.authority.as_bytes());
    let mut forwarded_for: Vec<u8> = Vec::new();
    let mut client_host: Option<&[u8]> = None;
    let mut traceparent: Option<&[u8]> = None;
    for (name, value) in req.headers {
        match name.as_str() {
            "host" => client_host = Some(value),
            "x-forwarded-for" => {
                if !forwarded_for.is_empty() {
                    forwarded_for.extend_from_slice(b", ");
                }
                forwarded_for.extend_from_slice(value);
            }
            "traceparent" => traceparent = Some(value),
            "content-length" | "expect" | "x-forwarded-proto" | "x-forwarded-host" => {}
            _ if end_to_end(name, &named) => line(&mut out, name, value),
            _ => {}
        }
    }
    // Written straight into the head (writing to a Vec cannot fail).
    if !forwarded_for.is_empty() || req.peer.is_some() {
        out.extend_from_slice(b"x-forwarded-for: ");
        out.extend_from_slice(&forwarded_for);
        if let Some(peer) = req.peer {
            if !forwarded_for.is_empty() {
                out.extend_from_slice(b", ");
            }
            match peer.ip() {
                // Digits by hand: `Ipv4Addr`'s Display formats into a
                // buffer of its own first (~1 k instructions per request).
                std::net::IpAddr::V4(ip) => {
                    for (i, octet) in ip.octets().into_iter().enumerate() {
                        if i > 0 {
                            out.push(b'.');
                        }
                        decimal(&mut out, octet);
                    }
                }
                ip => {
                    let _ = write!(out, "{ip}");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    line(&mut out, "x-forwarded-proto", b"http");
    if let Some(host) = client_host {
        line(&mut out, "x-forwarded-host", host);
    }
    out.extend_from_slice(b"traceparent: ");
    self::traceparent(traceparent, req.trace_id, &mut out);
    out.extend_from_slice(b"\r\n");
    let sends_body = !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH");
    if sends_body {
        let _ = write!(out, "content-length: {}\r\n", req.body.len());
    }
    if !keep_alive {
        line(&mut out, "connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `n` in decimal.
fn decimal(out: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        out.push(b'0' + n / 100);
    }
    if n >= 10 {
        out.push(b'0' + n / 10 % 10);
    }
    out.push(b'0' + n % 10);
}

/// The `traceparent` sent upstream: the client's when its trace id is the
/// request's (it is, when it was valid: `trace::trace_id` takes it from
/// there), else a new one carrying the request's trace id, with a new
/// parent id, sampled. A trace id taken from `x-request-id` that is not
/// 32 hex digits cannot be a W3C trace id: the upstream then gets a new
/// one (and `x-request-id` as the client sent it).
fn traceparent(given: Option<&[u8]>, trace_id: &str, out: &mut Vec<u8>) {
    if let Some(given) = given
        && given.split(|&b| b == b'-').nth(1) == Some(trace_id.as_bytes())
    {
        out.extend_from_slice(given);
        return;
    }
    let hex = |out: &mut Vec<u8>, n: usize| {
        out.extend((0..n).map(|_| b"0123456789abcdef"[fastrand::usize(0..16)]));
    };
    let valid = trace_id.len() == 32
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
        && trace_id.bytes().any(|b| b != b'0');
    out.extend_from_slice(b"00-");
    match valid {
        true => out.extend(trace_id.bytes().map(|b| b.to_ascii_lowercase())),
        false => hex(out, 32),
    }
    out.push(b'-');
    hex(out, 16);
    out.extend_from_slice(b"-01");
}

/// Response: the upstream's fields the client gets. Hop-by-hop and
/// `connection`-named fields are removed, framing fields too (the server
/// frames the body itself), and those the host sets (`x-trace-id`,
/// `x-wasmgate-error`): an upstream cannot pose as the gateway.
pub fn response_headers(headers: Vec<(String, Vec<u8>)>) -> Vec<(Cow<'static, str>, Vec<u8>)> {
    let named = connection_named(&headers);
    headers
        .into_iter()
        .filter(|(n, _)| {
            end_to_end(n, &named)
                && n != "content-length"
                && !super::HOST_HEADERS.contains(&n.as_str())
        })
        .map(|(n, v)| (Cow::Owned(n), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_octet_is_written_in_decimal_as_display_would() {
        for n in [0u8, 7, 9, 10, 42, 99, 100, 109, 200, 255] {
            let mut out = Vec::new();
            decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    fn fields(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn upstream() -> Upstream {
        Upstream {
            url: "http://10.0.0.1:9000".into(),
            host: "10.0.0.1".into(),
            port: 9000,
            authority: "10.0.0.1:9000".into(),
        }
    }

    #[test]
    fn rfc9110_7_6_1_hop_by_hop_fields_are_not_forwarded_upstream() {
        let headers = fields(&[
            ("host", "gw.example"),
            ("connection", "keep-alive, X-Secret , close"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("x-kept", "yes"),
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-proto", "https"),
            ("content-length", "2"),
            ("expect", "100-continue"),
        ]);
        let req = ProxyRequest {
            method: "POST",
            uri: "/a?b=1",
            headers: &headers,
            body: b"hi",
            peer: Some("192.0.2.7:5555".parse().unwrap()),
            trace_id: "0af7651916cd43dd8448eb211c80319c",
        };
        let head = String::from_utf8(upstream_request(&req, &upstream(), true)).unwrap();
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(lines[0], "POST /a?b=1 HTTP/1.1");
        assert_eq!(lines[1], "host: 10.0.0.1:9000");
        assert!(lines.contains(&"x-kept: yes"), "{head}");
        assert!(
            lines.contains(&"x-forwarded-for: 10.9.9.9, 192.0.2.7"),
            "{head}"
        );
        assert!(lines.contains(&"x-forwarded-proto: http"), "{head}");
        assert!(lines.contains(&"x-forwarded-host: gw.example"), "{head}");
        assert!(lines.contains(&"content-length: 2"), "{head}");
        let traceparent = lines
            .iter()
            .find(|l| l.starts_with("traceparent: 00-0af7651916cd43dd8448eb211c80319c-"));
        assert!(traceparent.is_some(), "{head}");
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "te:",
            "trailer",
            "upgrade",
            "proxy-",
            "expect",
            "https",
        ] {
            assert!(!head.contains(gone), "{gone} in {head}");
        }
        assert!(head.ends_with("\r\n\r\nhi") || head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn rfc9110_7_6_1_hop_by_hop_fields_are_not_forwarded_downstream() {
        let headers = fields(&[
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("proxy-authenticate", "Basic"),
            ("x-trace-id", "forged"),
            ("x-wasmgate-error", "forged"),
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let names: Vec<String> = response_headers(headers)
            .into_iter()
            .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(&v)))
            .collect();
        assert_eq!(
            names,
            [
                "content-type=text/plain",
                "set-cookie=a=1",
                "set-cookie=b=2"
            ]
        );
    }

    #[test]
    fn traceparent_carries_the_request_trace_id() {
        let traceparent = |given: Option<&[u8]>, trace_id: &str| {
            let mut out = b"x".to_vec();
            super::traceparent(given, trace_id, &mut out);
            assert_eq!(out.remove(0), b'x', "appended after what is there");
            out
        };
        let given = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            traceparent(Some(given), "4bf92f3577b34da6a3ce929d0e0e4736"),
            given
        );
        let made =
            String::from_utf8(traceparent(None, "4bf92f3577b34da6a3ce929d0e0e4736")).unwrap();
        assert!(
            made.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{made}"
        );
        assert_eq!(made.len(), 55);
        // An x-request-id that is no W3C trace id: a new one.
        let made = String::from_utf8(traceparent(None, "req-1")).unwrap();
        assert_eq!(made.len(), 55);
        assert!(
            made.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{made}"
        );
        // Upper-case hex digits in the trace id are sent in lower case.
        let made =
            String::from_utf8(traceparent(None, "4BF92F3577B34DA6A3CE929D0E0E4736")).unwrap();
        assert!(
            made.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{made}"
        );
    }

    /// A proxy to an upstream on a std thread that answers every request
    /// on its connection with `response`.
    fn proxy_to(response: &'static [u8], max_response: u64) -> Proxy {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(1..)) {
                    if s.write_all(response).is_err() {
                        break;
                    }
                }
            }
        });
        let spec = ProxySpec {
            name: "t".into(),
            route: "/".into(),
            prefix: true,
            upstreams: vec![Upstream {
                url: format!("http://{addr}"),
                host: addr.ip().to_string(),
                port: addr.port(),
                authority: addr.to_string(),
            }],
            middleware: Vec::new(),
            limits: crate::limits::ProxyLimits {
                max_response,
                ..Default::default()
            },
        };
        Proxy::new(spec, &ServerLimits::default())
    }

    fn get() -> ProxyRequest<'static> {
        ProxyRequest {
            method: "GET",
            uri: "/x",
            headers: &[],
            body: b"",
            peer: None,
            trace_id: "0af7651916cd43dd8448eb211c80319c",
        }
    }

    #[test]
    fn a_buffered_response_is_read_whole_within_max_response() {
        let proxy = proxy_to(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            5,
        );
        let mut used = None;
        for _ in 0..2 {
            let r = smol::block_on(proxy.forward(&get(), true, &mut used)).unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
            assert!(r.stream.is_none());
            assert_eq!(r.headers, [(Cow::Borrowed("x-a"), b"1".to_vec())]);
        }
        assert_eq!(used, Some(0));
        let proxy = proxy_to(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
            5,
        );
        let e = smol::block_on(proxy.forward(&get(), true, &mut used)).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::UpstreamBadResponse);
        assert!(
            e.message.contains("max_response (5 bytes)"),
            "{}",
            e.message
        );
        // A declared length over the limit is refused before it is read.
        let proxy = proxy_to(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nabcdef", 5);
        let e = smol::block_on(proxy.forward(&get(), true, &mut used)).unwrap_err();
        assert!(
            e.message.contains("6 bytes is larger than max_response"),
            "{}",
            e.message
        );
    }
}
