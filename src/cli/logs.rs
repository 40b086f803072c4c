//! The log's line format on stderr: `[LEVEL target] message` by default;
//! prefixed with its syslog priority (`<3>` error ... `<7>` debug) when
//! stderr is the systemd journal (`JOURNAL_STREAM` names stderr's device
//! and inode), so that `journalctl -p warning` works; or, with
//! `log_format = "json"`, one JSON object per line for log shippers.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Set by `serve` from `[server] log_format` (and again on a reload).
static JSON: AtomicBool = AtomicBool::new(false);

/// Logs JSON lines from now on (or stops).
pub fn set_json(json: bool) {
    JSON.store(json, Relaxed);
}

/// Starts the logger: `RUST_LOG` filters (default `info`).
pub fn init() {
    let journal = stderr_is_journal();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |out, record| {
            let msg = record.args().to_string();
            let target = record.target();
            if JSON.load(Relaxed) {
                writeln!(out, "{}", json_line(record.level(), target, &msg))
            } else {
                if journal {
                    write!(out, "<{}>", priority(record.level()))?;
                }
                writeln!(out, "[{:<5} {target}] {msg}", record.level())
            }
        })
        .init();
}

/// The syslog priority of a level (sd-daemon(3)).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` is
/// `DEVICE:INODE` of the socket systemd connected stderr to; a child whose
/// stderr was redirected elsewhere inherits the variable but not the file.
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

/// One JSON object: `ts` (seconds since the Unix epoch, to the
/// microsecond), `level`, `target`, `msg`; an access line (`METHOD TARGET
/// key=value ...`) also has `method`, `uri` and each `key` as a field.
fn json_line(level: log::Level, target: &str, msg: &str) -> String {
    use serde_json::{Map, Value};
    let mut line = Map::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = serde_json::Number::from_f64(now.as_secs_f64()).map_or(Value::Null, Value::Number);
    line.insert("ts".into(), ts);
    line.insert("level".into(), level.as_str().into());
    line.insert("target".into(), target.into());
    line.insert("msg".into(), msg.into());
    if target == "access" {
        access_fields(msg, &mut line);
    }
    Value::Object(line).to_string()
}

/// The fields of an access line, when it is `METHOD TARGET` followed by
/// `key=value` words only (method, target and values are escaped: no
/// spaces); numbers stay numbers.
fn access_fields(msg: &str, line: &mut serde_json::Map<String, serde_json::Value>) {
    let mut words = msg.split(' ');
    let (Some(method), Some(uri)) = (words.next(), words.next()) else {
        return;
    };
    let mut fields = vec![("method", method.into()), ("uri", uri.into())];
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return;
        };
        let value = match value.parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) => value.into(),
        };
        fields.push((key, value));
    }
    for (key, value) in fields {
        line.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_line_becomes_fields() {
        let line = json_line(
            log::Level::Info,
            "access",
            "GET /hello fn=hello status=200 error=- fuel=123 us=45 trace=abc",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["uri"], "/hello");
        assert_eq!(v["fn"], "hello");
        assert_eq!(v["status"], 200);
        assert_eq!(v["fuel"], 123);
        assert_eq!(v["trace"], "abc");
        assert!(v["ts"].as_f64().unwrap() > 1.7e9);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn other_lines_keep_their_message_only() {
        let msg = "GET /spin cancelled: the client closed the connection trace=x";
        let v: serde_json::Value =
            serde_json::from_str(&json_line(log::Level::Warn, "access", msg)).unwrap();
        assert_eq!(v["msg"], msg);
        assert!(v.get("method").is_none());
        let v: serde_json::Value =
            serde_json::from_str(&json_line(log::Level::Error, "x", "a \"quoted\"\nline")).unwrap();
        assert_eq!(v["msg"], "a \"quoted\"\nline");
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(
            [
                log::Level::Error,
                log::Level::Warn,
                log::Level::Info,
                log::Level::Debug
            ]
            .map(priority),
            [3, 4, 6, 7]
        );
    }
}
