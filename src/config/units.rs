//! The value types of config keys: counts ([`Int`]), sizes ([`Size`]) and
//! durations ([`Time`]) as a config writes them. Each carries its
//! reader (type errors in the README's words), its units (`"16MiB"`,
//! `"250ms"`), how it is shown in an error, and, through [`read`], the one
//! range check every numeric key goes through.

use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::extract::{FromValue, Read, type_error};
use super::toml::{Spanned, Value as Toml};

pub(crate) use crate::limits::show_size;

/// An integer value. Its own type so that a type error says "must be an
/// integer, got a boolean" rather than naming a Rust type; 128 bits
/// so that a range error shows even a number past `u64` as written.
pub(crate) struct Int(pub(crate) i128);

/// A size or duration: an integer (bytes, milliseconds) or a string with a
/// unit (`"16MiB"`, `"250ms"`); `U` says which, for error messages.
pub(crate) struct Quantity<U> {
    pub(crate) amount: Amount,
    unit: PhantomData<U>,
}

pub(crate) enum Amount {
    Int(i128),
    Text(String),
}

/// What a [`Quantity`] measures, in the words of a type error.
pub(crate) trait Unit {
    const EXPECTED: &'static str;
}

/// Bytes.
pub(crate) struct Bytes;
/// Milliseconds.
pub(crate) struct Millis;

impl Unit for Bytes {
    const EXPECTED: &'static str = "a size (an integer number of bytes or a string like \"16MiB\")";
}

impl Unit for Millis {
    const EXPECTED: &'static str =
        "a duration (an integer number of milliseconds or a string like \"250ms\")";
}

pub(crate) type Size = Quantity<Bytes>;
pub(crate) type Time = Quantity<Millis>;

/// A config value type: what its raw form measures and how a measure is
/// shown in an error. A key's range is the key's (see `raw.rs`), not the
/// type's: `timeout` and `module_check_interval` are both durations.
pub(crate) trait Value {
    /// What it measures: `u64` (a count, bytes) or a [`Duration`]. Ranges
    /// are in this type, whatever type the field it fills has.
    type Measure: Copy + PartialOrd;
    /// The measure as written, or why there is none.
    fn measure(&self, key: &str) -> Result<Self::Measure, Refusal>;
    /// A measure the way a config writes it.
    fn show(measure: Self::Measure) -> String;
}

/// Why a value has no measure.
pub(crate) enum Refusal {
    /// A number outside every range (negative, past `u64`): shown as
    /// written, with its unit, in the key's range error.
    OutOfRange(String),
    /// Not a value of the type (an unknown unit): the whole message.
    Invalid(String),
}

impl Value for Int {
    type Measure = u64;
    fn measure(&self, _key: &str) -> Result<u64, Refusal> {
        u64::try_from(self.0).map_err(|_| Refusal::OutOfRange(self.0.to_string()))
    }
    fn show(n: u64) -> String {
        n.to_string()
    }
}

impl Value for Size {
    type Measure = u64;
    fn measure(&self, key: &str) -> Result<u64, Refusal> {
        match &self.amount {
            Amount::Int(n) => {
                u64::try_from(*n).map_err(|_| Refusal::OutOfRange(format!("{n} bytes")))
            }
            Amount::Text(s) => {
                parse_size(s).map_err(|why| Refusal::Invalid(format!("`{key}` {why}")))
            }
        }
    }
    fn show(bytes: u64) -> String {
        show_size(bytes)
    }
}

impl Value for Time {
    type Measure = Duration;
    fn measure(&self, key: &str) -> Result<Duration, Refusal> {
        match &self.amount {
            Amount::Int(n) => u64::try_from(*n)
                .map(Duration::from_millis)
                .map_err(|_| Refusal::OutOfRange(format!("{n} ms"))),
            Amount::Text(s) => {
                parse_duration(s).map_err(|why| Refusal::Invalid(format!("`{key}` {why}")))
            }
        }
    }
    fn show(d: Duration) -> String {
        show_duration(d)
    }
}

/// `value` of `key` in `range`, as the type `T` it is used as, or the
/// message saying why not. Every numeric key is read here: the measure is
/// checked against the range, then converted, never cast, so a `u64` keeps
/// every bit and a `usize` past `usize::MAX` (32-bit ARM) gets the same
/// range error as any value outside the range.
pub(crate) fn read<V: Value, T: TryFrom<V::Measure>>(
    value: &V,
    key: &str,
    range: &RangeInclusive<V::Measure>,
) -> Result<T, String> {
    let range_error = |got: String| {
        format!(
            "`{key}` must be between {} and {}, got {got}",
            V::show(*range.start()),
            V::show(*range.end())
        )
    };
    let measure = match value.measure(key) {
        Ok(measure) => measure,
        Err(Refusal::OutOfRange(got)) => return Err(range_error(got)),
        Err(Refusal::Invalid(message)) => return Err(message),
    };
    match range.contains(&measure) {
        true => T::try_from(measure).map_err(|_| range_error(V::show(measure))),
        false => Err(range_error(V::show(measure))),
    }
}

impl FromValue for Int {
    fn from_value(key: &str, value: Spanned<Toml>) -> Read<Self> {
        match value.get_ref() {
            Toml::Integer(n) => Ok(Int(*n)),
            _ => type_error(key, "an integer", &value),
        }
    }
}

impl<U: Unit> FromValue for Quantity<U> {
    fn from_value(key: &str, value: Spanned<Toml>) -> Read<Self> {
        let span = value.span();
        match value.into_inner() {
            Toml::Integer(n) => Ok(Quantity::new(Amount::Int(n))),
            Toml::String(s) => Ok(Quantity::new(Amount::Text(s))),
            other => type_error(key, U::EXPECTED, &Spanned::new(span, other)),
        }
    }
}

impl<U> Quantity<U> {
    fn new(amount: Amount) -> Self {
        Self {
            amount,
            unit: PhantomData,
        }
    }
}

/// A duration the way a config writes it: `"24h"`, `"250ms"`.
pub(crate) fn show_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    match (secs, nanos) {
        (0, 0) => "0s".to_owned(),
        (s, 0) if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        (s, 0) if s.is_multiple_of(60) => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ if nanos.is_multiple_of(1_000_000) => format!("{}ms", d.as_millis()),
        _ => format!("{}us", d.as_micros()),
    }
}

/// Parses `"16MiB"`, `"512KiB"`, `"1GiB"`, `"2MB"`, `"4096"` (bytes) into bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a size like \"16MiB\", got {text:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "has an unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("is too large: {text:?}"))
}

/// Parses `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"100us"`, `"0s"` into a
/// duration.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("must be a duration like \"250ms\" or \"5s\", got {text:?}"))?;
    match unit.trim() {
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        "" => Err(format!("needs a unit (us, ms, s, m, h): {text:?}")),
        other => Err(format!(
            "has an unknown duration unit {other:?} (use us, ms, s, m, h)"
        )),
    }
}
