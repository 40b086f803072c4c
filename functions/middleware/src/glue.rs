//! The thin http-wasm side shared by the middleware binaries (wasm32 only):
//! reading the config once, answering with a [`Reject`], logging.

use crate::Reject;
use http_wasm_guest::host::{Response, admin, feature, log};

/// http-wasm log levels.
const LOG_ERROR: i32 = 2;

/// The `get_config` payload.
pub fn config() -> Vec<u8> {
    admin::config().to_vec()
}

/// Logs a configuration error at error level.
pub fn log_error(message: &str) {
    log::write(LOG_ERROR, message.as_bytes());
}

/// Writes `reject` as the response: status, headers and JSON body (no
/// body and no content type when the body is `null`, as for a 204).
pub fn respond(response: &Response, reject: &Reject) {
    response.set_status(i32::from(reject.status));
    for (name, value) in &reject.headers {
        response.header.set(name.as_bytes(), value.as_bytes());
    }
    if !reject.body.is_null() {
        response.header.set(b"content-type", b"application/json");
        response.body.write(&reject.body_bytes());
    }
}

/// The first value of a header, as text (lossy).
pub fn first_value(header: &http_wasm_guest::host::Header, name: &[u8]) -> Option<String> {
    header
        .get(name)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Values of a request or response header, as byte vectors.
pub fn header_values(header: &http_wasm_guest::host::Header, name: &[u8]) -> Vec<Vec<u8>> {
    header.values(name).iter().map(|v| v.to_vec()).collect()
}

/// The middleware's parsed config, from `parse` on the `get_config`
/// payload; an error is logged (the middleware then refuses every request
/// with it).
pub fn load<T>(parse: impl FnOnce(&[u8]) -> Result<T, Reject>) -> Result<T, Reject> {
    let loaded = parse(&config());
    if let Err(reject) = &loaded {
        log_error(&reject.body.to_string());
    }
    loaded
}

/// [`load`], then enables `features` if the config is usable (not
/// otherwise: a middleware that refuses everything reads no body).
pub fn load_enabling<T>(
    parse: impl FnOnce(&[u8]) -> Result<T, Reject>,
    features: feature::Feature,
) -> Result<T, Reject> {
    let loaded = load(parse);
    if loaded.is_ok() {
        admin::enable(features);
    }
    loaded
}

/// `handle_request`'s answer: `check` on the loaded middleware; continue
/// when it passes, else write its refusal (or the config error) and stop.
pub fn verdict<T>(
    loaded: &Result<T, Reject>,
    response: &Response,
    check: impl FnOnce(&T) -> Result<(), Reject>,
) -> (bool, i32) {
    match loaded.as_ref().map_err(Clone::clone).and_then(check) {
        Ok(()) => (true, 0),
        Err(reject) => {
            respond(response, &reject);
            (false, 0)
        }
    }
}
