//! The config text being read: TOML into the raw structs, and errors that
//! name the file, the line (and for a syntax error the column) and the key.

use std::io::Read;
use std::ops::{Range, RangeInclusive};
use std::path::Path;

use super::extract::FromValue;
use super::toml::{self, Spanned};
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
    pub(crate) fn parse<T: FromValue>(&self) -> Result<T, ConfigError> {
        let text = self.text;
        // TOML allows no raw C0 control character but tab, nor DEL, even
        // in comments; say which one and where, escaped, rather than a
        // parser's guess.
        let raw_control = text
            .char_indices()
            .find(|&(_, c)| toml::is_control(c) && !matches!(c, '\n' | '\r'));
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
        let root = toml::parse(text).map_err(|e| {
            let line_start = text
                .get(..e.at)
                .and_then(|t| t.rfind('\n'))
                .map_or(0, |n| n + 1);
            let column = text
                .get(line_start..e.at)
                .map_or(1, |t| t.chars().count() + 1);
            ConfigError {
                file: self.file.to_owned(),
                line: Some(self.line_of(e.at)),
                message: format!("column {column}: {}", e.message),
            }
        })?;
        let root = Spanned::new(0..0, toml::Value::Table(root));
        T::from_value("", root).or_else(|r| self.error(r.span, r.message))
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
