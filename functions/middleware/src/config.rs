//! Reading a middleware's JSON configuration: typed getters whose errors
//! name the key, and the refusal of keys a middleware does not know (a typo
//! must not silently weaken a check).

use serde_json::{Map, Value};

/// A middleware's configuration object.
pub struct Config<'a> {
    map: &'a Map<String, Value>,
}

/// Parses `bytes` (the `get_config` payload) as a JSON object; an empty
/// payload is an empty object.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("config is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("config must be a JSON object".into());
    }
    Ok(value)
}

impl<'a> Config<'a> {
    /// Wraps `value`, refusing keys outside `known` and unresolved `*_env`
    /// keys (the host replaces `NAME_env = "VAR"` by `NAME` = `$VAR`).
    pub fn new(value: &'a Value, known: &[&str]) -> Result<Config<'a>, String> {
        let map = value
            .as_object()
            .ok_or_else(|| "config must be a JSON object".to_string())?;
        for key in map.keys() {
            if key.ends_with("_env") {
                return Err(format!("{key} was not resolved by the host"));
            }
            if !known.contains(&key.as_str()) {
                return Err(format!(
                    "unknown config key `{key}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(Config { map })
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// A string value.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    }

    /// A boolean value, `default` when absent.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("`{key}` must be true or false")),
        }
    }

    /// An unsigned integer within `0..=max`, `default` when absent.
    pub fn uint(&self, key: &str, default: u64, max: u64) -> Result<u64, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(n),
                _ => Err(format!("`{key}` must be an integer from 0 to {max}")),
            },
        }
    }

    /// A list of strings (a single string counts as a list of one),
    /// `None` when absent.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("`{key}` must be a list of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("`{key}` must be a list of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_is_an_empty_object() {
        assert_eq!(parse(b"").unwrap(), Value::Object(Map::new()));
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"{").is_err());
    }

    #[test]
    fn unknown_and_unresolved_env_keys_are_refused() {
        let v = parse(br#"{"secret_env":"X"}"#).unwrap();
        let err = Config::new(&v, &["secret"]).err().unwrap();
        assert!(err.contains("secret_env was not resolved"), "{err}");
        let v = parse(br#"{"secert":"X"}"#).unwrap();
        let err = Config::new(&v, &["secret"]).err().unwrap();
        assert!(err.contains("unknown config key `secert`"), "{err}");
    }

    #[test]
    fn typed_getters_name_the_key() {
        let v = parse(br#"{"a":1,"b":"x","c":[1]}"#).unwrap();
        let c = Config::new(&v, &["a", "b", "c"]).unwrap();
        assert_eq!(c.uint("a", 0, 5), Ok(1));
        assert!(c.uint("a", 0, 0).unwrap_err().contains("`a`"));
        assert_eq!(c.str("b"), Ok(Some("x")));
        assert!(c.str("a").unwrap_err().contains("`a`"));
        assert_eq!(c.strings("b"), Ok(Some(vec!["x".to_string()])));
        assert!(c.strings("c").unwrap_err().contains("`c`"));
        assert_eq!(c.bool("missing", true), Ok(true));
    }
}
