//! The config text being read: TOML into the raw structs, and errors that
//! name the file, the line and the key.

use std::io::Read;
use std::ops::{Range, RangeInclusive};
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::units::{self, Int, Value};
use crate::error::ConfigError;
use crate::limits::FUEL_PER_MS_RANGE;

/// The text being read and the file it came from: what every error needs
/// to name the file and the line.
pub(crate) struct ConfigText<'a> {
    pub(crate) text: &'a str,
    pub(crate) file: &'a str,
}

impl ConfigText<'_> {
    /// The text as TOML, into the raw structs.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let text = self.text;
        // TOML allows no raw control character but tab, even in comments;
        // say which one and where, escaped, rather than a parser's guess.
        let raw_control = text
            .char_indices()
            .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
        if let Some((at, c)) = raw_control {
            return self.error(
                at..at,
                format!(
                    "a raw control character ({}) is not allowed; inside a string write it as an escape (\"\\u{:04x}\")",
                    c.escape_debug(),
                    u32::from(c)
                ),
            );
        }
        toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|s| key_at(text, s.start));
            ConfigError {
                file: self.file.to_owned(),
                line: e.span().map(|s| self.line_of(s.start)),
                message: describe(e.message().trim(), key.as_deref()),
            }
        })
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An error at the line of `span`.
    pub(crate) fn error<T>(&self, span: Range<usize>, message: String) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_owned(),
            line: Some(self.line_of(span.start)),
            message,
        })
    }

    /// An error about the file as a whole (two keys that disagree).
    pub(crate) fn file_error(&self, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: None,
            message,
        }
    }

    /// `value` of `key`, checked against `range` (see the `*_RANGE`
    /// constants in [`crate::limits`]) and read as the `T` it is used as.
    pub(crate) fn read<V: Value, T: TryFrom<V::Measure>>(
        &self,
        key: &str,
        value: &Spanned<V>,
        range: &RangeInclusive<V::Measure>,
    ) -> Result<T, ConfigError> {
        units::read(value.get_ref(), key, range)
            .or_else(|message| self.error(value.span(), message))
    }

    /// `fuel_per_ms`, when given.
    pub(crate) fn fuel_per_ms(
        &self,
        value: &Option<Spanned<Int>>,
    ) -> Result<Option<u64>, ConfigError> {
        value
            .as_ref()
            .map(|v| self.read("fuel_per_ms", v, &FUEL_PER_MS_RANGE))
            .transpose()
    }
}

/// The largest config or board profile file read: a config is a few KiB,
/// and a path such as `/dev/zero` or a file that keeps growing must not
/// grow the server's memory without bound while it starts.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a config or board profile file as UTF-8 text, at most
/// [`MAX_CONFIG_BYTES`]; invalid UTF-8 is an error naming its line and the
/// offending byte.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let error = |line, message| ConfigError {
        file: path.display().to_string(),
        line,
        message,
    };
    let unreadable = |e: std::io::Error| error(None, format!("cannot read config file: {e}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CONFIG_BYTES {
        return Err(error(
            None,
            format!(
                "the config file is larger than {}, the most a config file may be",
                crate::limits::show_size(MAX_CONFIG_BYTES)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let byte = bytes.get(at).copied().unwrap_or_default();
        error(
            Some(line),
            format!("invalid UTF-8 (byte 0x{byte:02x}): a config file is UTF-8 text"),
        )
    })
}

/// Rewrites a deserializer's message so that it names `key` and says what
/// was expected in the words of the README: "invalid type: boolean `true`,
/// expected a size (…)" becomes "`max_body` must be a size (…), got a
/// boolean".
fn describe(message: &str, key: Option<&str>) -> String {
    let named = key.map_or_else(|| "the value".to_owned(), |k| format!("`{k}`"));
    if let Some((got, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        let expected = match expected {
            "a sequence" => "an array",
            "a map" => "a table",
            e if e.starts_with("struct ") => "a table",
            e => e,
        };
        let got = match got.split(' ').next().unwrap_or_default() {
            "boolean" => "a boolean",
            "integer" => "an integer",
            "floating" => "a float",
            "string" | "character" => "a string",
            "sequence" => "an array",
            "map" => "a table",
            _ => got,
        };
        return format!("{named} must be {expected}, got {got}");
    }
    match key {
        Some(k) if !message.contains(&format!("`{k}`")) => format!("{named}: {message}"),
        _ => message.to_owned(),
    }
}

/// The key whose value (or name) is at byte `pos` of `text`: the innermost
/// one, so `limits = { fuel = true }` names `fuel`. Only used to word an
/// error, so the text is parsed again.
fn key_at(text: &str, pos: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn walk(table: &DeTable, pos: usize, best: &mut Option<(usize, String)>) {
        for (key, value) in table.iter() {
            let span = value.span();
            let hit = key.span().contains(&pos) || span.contains(&pos) || span.start == pos;
            let len = span.end.saturating_sub(span.start);
            if hit && best.as_ref().is_none_or(|(l, _)| len <= *l) {
                *best = Some((len, key.get_ref().to_string()));
            }
            walk_value(value.get_ref(), pos, best);
        }
    }
    fn walk_value(value: &DeValue, pos: usize, best: &mut Option<(usize, String)>) {
        match value {
            DeValue::Table(t) => walk(t, pos, best),
            DeValue::Array(a) => a.iter().for_each(|v| walk_value(v.get_ref(), pos, best)),
            _ => {}
        }
    }
    let root = DeTable::parse(text).ok()?;
    let mut best = None;
    walk(root.get_ref(), pos, &mut best);
    best.map(|(_, key)| key)
}
