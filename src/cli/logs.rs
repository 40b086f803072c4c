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
            let target = record.target();
            if JSON.load(Relaxed) {
                let msg = record.args().to_string();
                writeln!(out, "{}", json_line(record.level(), target, &msg))
            } else {
                if journal {
                    write!(out, "<{}>", priority(record.level()))?;
                }
                // Straight into the logger's buffer: no string per line.
                writeln!(
                    out,
                    "[{} {target}] {}",
                    padded(record.level()),
                    record.args()
                )
            }
        })
        .init();
}

/// The level's name padded to 5 columns (what `{:<5}` would write,
/// without the formatter's padding machinery on every line).
fn padded(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARN ",
        log::Level::Info => "INFO ",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "TRACE",
    }
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
/// key=value ...`) also has `method`, `uri` and each `key` as a field
/// (numbers as numbers). Written by hand: a `serde_json::Value` cost ~7 KB
/// of binary more.
fn json_line(level: log::Level, target: &str, msg: &str) -> String {
    use std::fmt::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = String::new();
    let _ = write!(
        line,
        "{{\"ts\":{}.{:06},\"level\":\"{level}\"",
        now.as_secs(),
        now.subsec_micros()
    );
    field(&mut line, "target", target, false);
    field(&mut line, "msg", msg, false);
    if target == "access" {
        access_fields(msg, &mut line);
    }
    line.push('}');
    line
}

/// Appends `,"key":value` to a JSON object: `value` as a number when
/// `number` (the caller checked it is digits), else as a string.
fn field(line: &mut String, key: &str, value: &str, number: bool) {
    line.push(',');
    string(line, key);
    line.push(':');
    if number {
        line.push_str(value);
    } else {
        string(line, value);
    }
}

/// Appends `text` as a JSON string (RFC 8259 §7).
fn string(line: &mut String, text: &str) {
    use std::fmt::Write;
    line.push('"');
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            c if c < ' ' => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// The fields of an access line, when it is `METHOD TARGET` followed by
/// `key=value` words only (method, target and values are escaped: no
/// spaces); a value that is a `u64` written plainly is a number.
fn access_fields(msg: &str, line: &mut String) {
    let mut words = msg.split(' ');
    let (Some(method), Some(uri)) = (words.next(), words.next()) else {
        return;
    };
    let mut pairs = Vec::new();
    for word in words {
        match word.split_once('=') {
            Some(pair) => pairs.push(pair),
            None => return,
        }
    }
    field(line, "method", method, false);
    field(line, "uri", uri, false);
    for (key, value) in pairs {
        // Trace ids stay strings even when they are all digits.
        let number = key != "trace"
            && value.parse::<u64>().is_ok()
            && (value == "0" || !value.starts_with('0'));
        field(line, key, value, number);
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
        let line = json_line(
            log::Level::Info,
            "access",
            "GET / status=007 trace=123 us=0",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (&v["status"], &v["trace"], &v["us"]),
            (&"007".into(), &"123".into(), &0.into())
        );
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
        let v: serde_json::Value = serde_json::from_str(&json_line(
            log::Level::Error,
            "x",
            "a \"q\\\"\n\t\u{1b}é\u{2028}",
        ))
        .unwrap();
        assert_eq!(v["msg"], "a \"q\\\"\n\t\u{1b}é\u{2028}");
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
