//! `cors`: Cross-Origin Resource Sharing (the Fetch standard's CORS
//! protocol) for an API behind wasmgate.
//!
//! - A request without `Origin` is not a CORS request: passed on untouched.
//! - A preflight (`OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`) is answered here, never passed on:
//!   204 with `Access-Control-Allow-Origin`, `-Allow-Methods`,
//!   `-Allow-Headers`, `-Max-Age` (if configured), `-Allow-Credentials` (if
//!   configured) and `Vary: Origin, Access-Control-Request-Method,
//!   Access-Control-Request-Headers`; 403 `{"error":"cors-denied","reason":…}`
//!   when the origin, the method or one of the requested headers is not
//!   allowed.
//! - Any other request with a disallowed `Origin` is refused 403 (before it
//!   reaches the backend); with an allowed one it is passed on and the
//!   response gets `Access-Control-Allow-Origin` (the origin, or `*` when
//!   every origin is allowed and credentials are not), `Vary: Origin`
//!   (appended), `Access-Control-Allow-Credentials: true` and
//!   `Access-Control-Expose-Headers` if configured.
//!
//! Config: `allowed_origins` (list of origins such as
//! `https://app.example.com`, compared ASCII-case-insensitively, or `["*"]`;
//! required), `allowed_methods` (default `["GET", "HEAD", "POST"]`),
//! `allowed_headers` (request headers a preflight may ask for, default none;
//! CORS-safelisted headers need no listing), `exposed_headers` (default none),
//! `allow_credentials` (default false; refused together with `*`, which the
//! standard forbids), `max_age` (seconds, 0 to 86400, no header when absent).

use crate::Reject;
use crate::config::{self, Config};
use crate::hmac_verify::is_token_char;

const NAME: &str = "cors";

/// The parsed configuration.
#[derive(Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    exposed: Vec<String>,
    credentials: bool,
    max_age: Option<u64>,
}

/// What the middleware does with a request.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Not a CORS request: pass on, leave the response alone.
    PassThrough,
    /// An allowed CORS request: pass on, then set these response headers.
    PassOn(Vec<(&'static str, String)>),
    /// Answer here (204 preflight or 403 refusal).
    Answer(Reject),
}

/// The request facts the decision depends on.
#[derive(Debug, Default)]
pub struct CorsRequest<'a> {
    /// The request method.
    pub method: &'a str,
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// `Access-Control-Request-Method`, if any.
    pub request_method: Option<&'a str>,
    /// `Access-Control-Request-Headers` (comma-separated), if any.
    pub request_headers: Option<&'a str>,
}

impl Cors {
    /// Parses the `get_config` payload.
    pub fn from_config(bytes: &[u8]) -> Result<Cors, Reject> {
        Self::parse(bytes).map_err(|e| Reject::misconfigured(NAME, &e))
    }

    fn parse(bytes: &[u8]) -> Result<Cors, String> {
        let value = config::parse(bytes)?;
        let c = Config::new(
            &value,
            &[
                "allowed_origins",
                "allowed_methods",
                "allowed_headers",
                "exposed_headers",
                "allow_credentials",
                "max_age",
            ],
        )?;
        let origins = c
            .strings("allowed_origins")?
            .filter(|o| !o.is_empty())
            .ok_or("`allowed_origins` is required (a list of origins, or [\"*\"])")?;
        let any_origin = origins.iter().any(|o| o == "*");
        if any_origin && origins.len() > 1 {
            return Err("`allowed_origins`: \"*\" must be alone".into());
        }
        if let Some(bad) = origins
            .iter()
            .find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(format!(
                "`allowed_origins`: `{bad}` is not an origin (scheme://host[:port])"
            ));
        }
        let tokens = |key: &str, default: &[&str]| -> Result<Vec<String>, String> {
            let list = c
                .strings(key)?
                .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
            if list
                .iter()
                .any(|t| t.is_empty() || !t.bytes().all(is_token_char))
            {
                return Err(format!("`{key}` must be a list of tokens"));
            }
            Ok(list)
        };
        let credentials = c.bool("allow_credentials", false)?;
        if credentials && any_origin {
            return Err(
                "`allow_credentials` cannot be combined with allowed_origins [\"*\"]".into(),
            );
        }
        let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_ascii_lowercase()).collect();
        Ok(Cors {
            any_origin,
            origins: lower(origins),
            methods: tokens("allowed_methods", &["GET", "HEAD", "POST"])?,
            headers: lower(tokens("allowed_headers", &[])?),
            exposed: tokens("exposed_headers", &[])?,
            credentials,
            max_age: match c.get("max_age") {
                None => None,
                Some(_) => Some(c.uint("max_age", 0, 86_400)?),
            },
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.contains(&origin.to_ascii_lowercase())
    }

    /// The headers every allowed CORS response carries.
    fn allow_origin_headers(&self, origin: &str) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        // (allow_credentials with "*" is refused at config load.)
        if self.any_origin {
            h.push(("access-control-allow-origin", "*".to_string()));
        } else {
            h.push(("access-control-allow-origin", origin.to_string()));
        }
        if self.credentials {
            h.push(("access-control-allow-credentials", "true".to_string()));
        }
        h
    }

    /// Decides what to do with a request.
    pub fn decide(&self, req: &CorsRequest) -> Decision {
        let Some(origin) = req.origin else {
            return Decision::PassThrough;
        };
        let deny = |reason: String| Decision::Answer(Reject::new(403, "cors-denied", reason));
        if !self.origin_allowed(origin) {
            return deny("origin not allowed".into());
        }
        let mut headers = self.allow_origin_headers(origin);
        match (req.method, req.request_method) {
            ("OPTIONS", Some(method)) => {
                if !self.methods.iter().any(|m| m == method) {
                    return deny(format!("method {method} not allowed"));
                }
                let requested = req.request_headers.unwrap_or("");
                for name in requested
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                {
                    if !self.headers.contains(&name.to_ascii_lowercase()) {
                        return deny(format!("request header {name} not allowed"));
                    }
                }
                headers.push(("access-control-allow-methods", self.methods.join(", ")));
                if !self.headers.is_empty() {
                    headers.push(("access-control-allow-headers", self.headers.join(", ")));
                }
                if let Some(age) = self.max_age {
                    headers.push(("access-control-max-age", age.to_string()));
                }
                headers.push((
                    "vary",
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                        .to_string(),
                ));
                Decision::Answer(Reject {
                    status: 204,
                    headers,
                    body: serde_json::Value::Null,
                })
            }
            _ => {
                if !self.exposed.is_empty() {
                    headers.push(("access-control-expose-headers", self.exposed.join(", ")));
                }
                if !self.any_origin {
                    headers.push(("vary", "Origin".to_string()));
                }
                Decision::PassOn(headers)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(config: &str) -> Cors {
        Cors::from_config(config.as_bytes()).unwrap()
    }

    fn preflight<'a>(
        origin: &'a str,
        method: &'a str,
        headers: Option<&'a str>,
    ) -> CorsRequest<'a> {
        CorsRequest {
            method: "OPTIONS",
            origin: Some(origin),
            request_method: Some(method),
            request_headers: headers,
        }
    }

    fn denied(d: Decision) -> String {
        match d {
            Decision::Answer(r) if r.status == 403 => {
                assert_eq!(r.body["error"], "cors-denied");
                r.body["reason"].as_str().unwrap().to_string()
            }
            other => panic!("not denied: {other:?}"),
        }
    }

    const APP: &str = r#"{"allowed_origins":["https://app.example.com"],"allowed_methods":["GET","PUT"],"allowed_headers":["Content-Type","X-Api-Key"],"exposed_headers":["X-Request-Id"],"allow_credentials":true,"max_age":600}"#;

    #[test]
    fn an_allowed_preflight_is_answered_204_with_the_configured_headers() {
        let c = cors(APP);
        let Decision::Answer(r) = c.decide(&preflight(
            "https://APP.example.com",
            "PUT",
            Some("content-type, x-api-key"),
        )) else {
            panic!("preflight not answered");
        };
        assert_eq!(r.status, 204);
        assert_eq!(
            r.headers,
            vec![
                (
                    "access-control-allow-origin",
                    "https://APP.example.com".into()
                ),
                ("access-control-allow-credentials", "true".into()),
                ("access-control-allow-methods", "GET, PUT".into()),
                (
                    "access-control-allow-headers",
                    "content-type, x-api-key".into()
                ),
                ("access-control-max-age", "600".into()),
                (
                    "vary",
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".into()
                ),
            ]
        );
    }

    #[test]
    fn disallowed_origins_methods_and_headers_are_403() {
        let c = cors(APP);
        assert_eq!(
            denied(c.decide(&preflight("https://evil.example", "GET", None))),
            "origin not allowed"
        );
        assert_eq!(
            denied(c.decide(&preflight("https://app.example.com", "DELETE", None))),
            "method DELETE not allowed"
        );
        assert_eq!(
            denied(c.decide(&preflight(
                "https://app.example.com",
                "GET",
                Some("x-other")
            ))),
            "request header x-other not allowed"
        );
        let simple = CorsRequest {
            method: "GET",
            origin: Some("http://app.example.com"),
            ..Default::default()
        };
        assert_eq!(
            denied(c.decide(&simple)),
            "origin not allowed",
            "scheme matters"
        );
    }

    #[test]
    fn allowed_simple_requests_pass_on_with_response_headers() {
        let c = cors(APP);
        let req = CorsRequest {
            method: "POST",
            origin: Some("https://app.example.com"),
            ..Default::default()
        };
        assert_eq!(
            c.decide(&req),
            Decision::PassOn(vec![
                (
                    "access-control-allow-origin",
                    "https://app.example.com".into()
                ),
                ("access-control-allow-credentials", "true".into()),
                ("access-control-expose-headers", "X-Request-Id".into()),
                ("vary", "Origin".into()),
            ])
        );
        // OPTIONS without Access-Control-Request-Method is not a preflight.
        let options = CorsRequest {
            method: "OPTIONS",
            origin: Some("https://app.example.com"),
            ..Default::default()
        };
        assert!(matches!(c.decide(&options), Decision::PassOn(_)));
        // No Origin: not CORS at all.
        assert_eq!(
            c.decide(&CorsRequest {
                method: "GET",
                ..Default::default()
            }),
            Decision::PassThrough
        );
    }

    #[test]
    fn any_origin_answers_star_without_vary() {
        let c = cors(r#"{"allowed_origins":"*"}"#);
        let req = CorsRequest {
            method: "GET",
            origin: Some("https://anyone.example"),
            ..Default::default()
        };
        assert_eq!(
            c.decide(&req),
            Decision::PassOn(vec![("access-control-allow-origin", "*".into())])
        );
        let Decision::Answer(r) = c.decide(&preflight("https://x.example", "HEAD", None)) else {
            panic!()
        };
        assert_eq!(r.status, 204);
        assert!(
            r.headers
                .contains(&("access-control-allow-methods", "GET, HEAD, POST".into()))
        );
        assert!(
            !r.headers
                .iter()
                .any(|(n, _)| *n == "access-control-max-age")
        );
    }

    #[test]
    fn config_errors_are_500_with_the_reason() {
        for (config, needle) in [
            ("{}", "`allowed_origins` is required"),
            (r#"{"allowed_origins":[]}"#, "`allowed_origins` is required"),
            (r#"{"allowed_origins":["*","https://a"]}"#, "must be alone"),
            (
                r#"{"allowed_origins":["app.example.com"]}"#,
                "not an origin",
            ),
            (
                r#"{"allowed_origins":"*","allow_credentials":true}"#,
                "cannot be combined",
            ),
            (
                r#"{"allowed_origins":"*","allowed_methods":["GET POST"]}"#,
                "list of tokens",
            ),
            (r#"{"allowed_origins":"*","max_age":-1}"#, "`max_age`"),
        ] {
            crate::assert_misconfigured(Cors::from_config(config.as_bytes()), "cors", needle);
        }
    }
}
