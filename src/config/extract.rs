//! Reading config structs out of a parsed TOML tree ([`super::toml`]):
//! the [`FromValue`] trait, its impls for the value types a key may have,
//! and [`table!`], which writes a struct and its reader from a list of
//! keys. Type errors say what the key must be in the README's words and
//! name it; unknown keys are refused with the keys the table has.
//!
//! A new key is a field in a `table!` (or a row of `keys!` in `raw.rs`,
//! which is a `table!` too): its name is the key unless written
//! `field = "key"`, its type says what the value may be. `Option<T>` may
//! be left out, `Vec<T>` left out is empty, any other type is required.

use std::collections::BTreeMap;
use std::ops::Range;

use super::toml::{Spanned, Table, Value};

/// Why a value was refused: the message, and where (its line is named).
pub(crate) struct Refused {
    pub(crate) span: Range<usize>,
    pub(crate) message: String,
}

pub(crate) type Read<T> = Result<T, Refused>;

/// A type a config value may be read as.
pub(crate) trait FromValue: Sized {
    /// `value` of `key` (named in errors) as this type.
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self>;
    /// The value of a key left out, or `None` if it is required.
    fn absent() -> Option<Self> {
        None
    }
}

/// "`key` must be EXPECTED, got a boolean".
pub(crate) fn type_error<T>(key: &str, expected: &str, value: &Spanned<Value>) -> Read<T> {
    Err(Refused {
        span: value.span(),
        message: format!(
            "`{key}` must be {expected}, got {}",
            value.get_ref().type_name()
        ),
    })
}

/// `value` as a table, with its span.
pub(crate) fn expect_table(key: &str, value: Spanned<Value>) -> Read<(Range<usize>, Table)> {
    let span = value.span();
    match value.into_inner() {
        Value::Table(t) => Ok((span, t)),
        other => type_error(key, "a table", &Spanned::new(span, other)),
    }
}

/// A key a table does not have.
pub(crate) fn unknown_key(key: &Spanned<String>, known: &[&str]) -> Refused {
    let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    Refused {
        span: key.span(),
        message: format!(
            "unknown field `{}`, expected one of {}",
            key.get_ref(),
            known.join(", ")
        ),
    }
}

/// A required key left out of the table at `span`.
pub(crate) fn missing_key(span: Range<usize>, key: &str) -> Refused {
    Refused {
        span,
        message: format!("missing field `{key}`"),
    }
}

/// A struct read from a TOML table: `field: Type` is key `field`, `field =
/// "key": Type` is key `key`. Every other key is refused.
macro_rules! table {
    (
        $(#[$attr:meta])*
        struct $name:ident {
            $($(#[$fattr:meta])* $field:ident $(= $key:literal)?: $ty:ty,)*
        }
    ) => {
        $(#[$attr])*
        pub(crate) struct $name {
            $($(#[$fattr])* pub(crate) $field: $ty,)*
        }

        impl $crate::config::extract::FromValue for $name {
            fn from_value(
                key: &str,
                value: $crate::config::toml::Spanned<$crate::config::toml::Value>,
            ) -> $crate::config::extract::Read<Self> {
                use $crate::config::extract::{missing_key, unknown_key, FromValue};
                const KEYS: &[&str] = &[$(table!(@key $field $($key)?)),*];
                let (span, table) = $crate::config::extract::expect_table(key, value)?;
                $(let mut $field: Option<$ty> = None;)*
                for (k, v) in table.into_entries() {
                    let name = k.get_ref().as_str();
                    $(if name == table!(@key $field $($key)?) {
                        $field = Some(FromValue::from_value(name, v)?);
                        continue;
                    })*
                    return Err(unknown_key(&k, KEYS));
                }
                Ok(Self {
                    $($field: match $field.or_else(<$ty as FromValue>::absent) {
                        Some(v) => v,
                        None => return Err(missing_key(span, table!(@key $field $($key)?))),
                    },)*
                })
            }
        }
    };
    (@key $field:ident $key:literal) => { $key };
    (@key $field:ident) => { stringify!($field) };
}
pub(crate) use table;

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        T::from_value(key, value).map(Some)
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<T: FromValue> FromValue for Spanned<T> {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        let span = value.span();
        T::from_value(key, value).map(|v| Spanned::new(span, v))
    }
}

/// An array; left out, an empty one (`[[function]]` tables).
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        let span = value.span();
        match value.into_inner() {
            Value::Array(items) => items.into_iter().map(|v| T::from_value(key, v)).collect(),
            other => type_error(key, "an array", &Spanned::new(span, other)),
        }
    }
    fn absent() -> Option<Self> {
        Some(Vec::new())
    }
}

impl FromValue for String {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        let span = value.span();
        match value.into_inner() {
            Value::String(s) => Ok(s),
            other => type_error(key, "a string", &Spanned::new(span, other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        match value.get_ref() {
            Value::Boolean(b) => Ok(*b),
            _ => type_error(key, "true or false", &value),
        }
    }
}

/// A table of strings (`env`): each value is named by its own key.
impl FromValue for BTreeMap<String, String> {
    fn from_value(key: &str, value: Spanned<Value>) -> Read<Self> {
        let (_, table) = expect_table(key, value)?;
        table
            .into_entries()
            .into_iter()
            .map(|(k, v)| String::from_value(k.get_ref(), v).map(|v| (k.into_inner(), v)))
            .collect()
    }
}

/// Any value, as written (a middleware's `config`).
impl FromValue for Value {
    fn from_value(_key: &str, value: Spanned<Value>) -> Read<Self> {
        Ok(value.into_inner())
    }
}
