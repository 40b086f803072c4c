//! `json-schema`: validates the request body against a JSON Schema given in
//! the config, a subset of draft 2020-12.
//!
//! Supported keywords: `type` (a name or a list of names: `null`,
//! `boolean`, `object`, `array`, `number`, `string`, `integer` — a number
//! with no fractional part, `1.0` included), `enum`, `const`, `properties`,
//! `required`, `additionalProperties` (boolean or schema), `items` (one
//! schema for every element), `minItems`/`maxItems`, `minimum`/`maximum`,
//! `exclusiveMinimum`/`exclusiveMaximum` (numbers), `minLength`/`maxLength`
//! (counted in Unicode code points), `pattern` (a regex-lite regular
//! expression, unanchored as the spec says), and boolean schemas
//! (`true`/`false`). The annotations `$schema`, `$id`, `$comment`, `title`,
//! `description`, `default`, `examples`, `deprecated`, `readOnly`,
//! `writeOnly` and `format` (an annotation in 2020-12) are accepted and
//! ignored. Any other keyword (`$ref`, `anyOf`, `prefixItems`, …) is refused
//! when the config is loaded, so a schema is never silently weaker than it
//! reads.
//!
//! A body that is not JSON, or that violates the schema, is answered 400
//! `{"error":"invalid-body","violations":[{"path":…,"message":…}]}` with up
//! to `max_violations` entries (default 20); `path` is a JSON Pointer
//! (RFC 6901) into the body, `""` for the body itself.
//!
//! Config: `schema` (required), `max_violations` (1 to 1000, default 20).

use crate::Reject;
use crate::config::{self, Config};
use regex_lite::Regex;
use serde_json::{Map, Value, json};

const NAME: &str = "json-schema";

/// The parsed configuration: a compiled schema.
#[derive(Debug)]
pub struct JsonSchema {
    schema: Schema,
    max_violations: usize,
}

/// One compiled (sub)schema.
#[derive(Debug)]
enum Schema {
    Bool(bool),
    Object(Box<Keywords>),
}

#[derive(Debug, Default)]
struct Keywords {
    types: Option<Vec<String>>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    properties: Vec<(String, Schema)>,
    required: Vec<String>,
    additional: Option<Schema>,
    items: Option<Schema>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<(String, Regex)>,
}

/// One violation: where in the body, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// JSON Pointer into the body.
    pub path: String,
    /// Human-readable message.
    pub message: String,
}

const TYPES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "string", "integer",
];

const ANNOTATIONS: [&str; 11] = [
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
];

impl JsonSchema {
    /// Parses the `get_config` payload and compiles its schema.
    pub fn from_config(bytes: &[u8]) -> Result<JsonSchema, Reject> {
        Self::parse(bytes).map_err(|e| Reject::misconfigured(NAME, &e))
    }

    fn parse(bytes: &[u8]) -> Result<JsonSchema, String> {
        if nesting(bytes) > MAX_DEPTH {
            return Err(format!("config nests deeper than {MAX_DEPTH} levels"));
        }
        let value = config::parse(bytes)?;
        let c = Config::new(&value, &["schema", "max_violations"])?;
        let schema = c.get("schema").ok_or("`schema` is required")?;
        Ok(JsonSchema {
            schema: compile(schema, "schema")?,
            max_violations: c.uint("max_violations", 20, 1000)?.max(1) as usize,
        })
    }

    /// Validates `body`; `Err` is the 400 answer.
    pub fn check(&self, body: &[u8]) -> Result<(), Reject> {
        let violations = self.validate(body);
        if violations.is_empty() {
            return Ok(());
        }
        let list: Vec<Value> = violations
            .into_iter()
            .map(|v| json!({ "path": v.path, "message": v.message }))
            .collect();
        Err(Reject {
            status: 400,
            headers: Vec::new(),
            body: json!({ "error": "invalid-body", "violations": list }),
        })
    }

    /// The violations of `body` (at most `max_violations`).
    pub fn validate(&self, body: &[u8]) -> Vec<Violation> {
        if nesting(body) > MAX_DEPTH {
            return vec![Violation {
                path: String::new(),
                message: format!("body nests deeper than {MAX_DEPTH} levels"),
            }];
        }
        let instance: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return vec![Violation {
                    path: String::new(),
                    message: format!("body is not JSON: {e}"),
                }];
            }
        };
        let mut out = Vec::new();
        let mut path = String::new();
        validate(
            &self.schema,
            &instance,
            &mut path,
            &mut out,
            self.max_violations,
        );
        out
    }
}

/// Deepest array/object nesting of a body that is validated. Parsing and
/// validating recurse once per level on the guest's 32 KiB stack, which
/// holds about 80 (a deeper body would trap: still refused, 502, but
/// without the reason); real payloads stay far below 64.
pub const MAX_DEPTH: usize = 64;

/// The deepest `[`/`{` nesting of `json`, strings skipped (no parsing, no
/// recursion; on malformed input the parser reports the error after).
fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn compile(value: &Value, at: &str) -> Result<Schema, String> {
    let map = match value {
        Value::Bool(b) => return Ok(Schema::Bool(*b)),
        Value::Object(map) => map,
        _ => return Err(format!("{at}: a schema must be an object or a boolean")),
    };
    let mut k = Keywords::default();
    for (key, v) in map {
        let here = format!("{at}.{key}");
        let number = || v.as_f64().ok_or_else(|| format!("{here} must be a number"));
        let count = || {
            v.as_u64()
                .ok_or_else(|| format!("{here} must be a non-negative integer"))
        };
        match key.as_str() {
            "type" => {
                let names: Vec<String> = match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("{here} must be a type name or a list of them"))?,
                    _ => return Err(format!("{here} must be a type name or a list of them")),
                };
                if let Some(bad) = names.iter().find(|n| !TYPES.contains(&n.as_str())) {
                    return Err(format!("{here}: unknown type `{bad}`"));
                }
                k.types = Some(names);
            }
            "enum" => {
                k.enumeration = Some(
                    v.as_array()
                        .ok_or_else(|| format!("{here} must be an array"))?
                        .clone(),
                )
            }
            "const" => k.constant = Some(v.clone()),
            "properties" => {
                let props = v
                    .as_object()
                    .ok_or_else(|| format!("{here} must be an object"))?;
                for (name, sub) in props {
                    k.properties
                        .push((name.clone(), compile(sub, &format!("{here}.{name}"))?));
                }
            }
            "required" => {
                k.required = v
                    .as_array()
                    .and_then(|a| a.iter().map(|i| i.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| format!("{here} must be a list of strings"))?
            }
            "additionalProperties" => k.additional = Some(compile(v, &here)?),
            "items" => k.items = Some(compile(v, &here)?),
            "minItems" => k.min_items = Some(count()?),
            "maxItems" => k.max_items = Some(count()?),
            "minimum" => k.minimum = Some(number()?),
            "maximum" => k.maximum = Some(number()?),
            "exclusiveMinimum" => k.exclusive_minimum = Some(number()?),
            "exclusiveMaximum" => k.exclusive_maximum = Some(number()?),
            "minLength" => k.min_length = Some(count()?),
            "maxLength" => k.max_length = Some(count()?),
            "pattern" => {
                let source = v
                    .as_str()
                    .ok_or_else(|| format!("{here} must be a string"))?;
                let regex =
                    Regex::new(source).map_err(|e| format!("{here}: invalid regex: {e}"))?;
                k.pattern = Some((source.to_string(), regex));
            }
            _ if ANNOTATIONS.contains(&key.as_str()) => {}
            _ => return Err(format!("{here}: keyword not supported by this middleware")),
        }
    }
    Ok(Schema::Object(Box::new(k)))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::Number(_) => "number",
        Value::String(_) => "string",
    }
}

fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "integer" => is_integer(v),
        _ => type_name(v) == name,
    }
}

/// Appends `/token` (RFC 6901 escaped) to `path` and returns the old length.
fn push_token(path: &mut String, token: &str) -> usize {
    let len = path.len();
    path.push('/');
    path.push_str(&token.replace('~', "~0").replace('/', "~1"));
    len
}

fn validate(schema: &Schema, v: &Value, path: &mut String, out: &mut Vec<Violation>, max: usize) {
    let fail = |out: &mut Vec<Violation>, path: &str, message: String| {
        if out.len() < max {
            out.push(Violation {
                path: path.to_string(),
                message,
            });
        }
    };
    let k = match schema {
        Schema::Bool(true) => return,
        Schema::Bool(false) => return fail(out, path, "not allowed here".into()),
        Schema::Object(k) => k,
    };
    if let Some(types) = &k.types
        && !types.iter().any(|t| has_type(v, t))
    {
        let wanted = types.join(" or ");
        return fail(
            out,
            path,
            format!("expected {wanted}, got {}", type_name(v)),
        );
    }
    if let Some(values) = &k.enumeration
        && !values.iter().any(|e| json_equal(e, v))
    {
        fail(
            out,
            path,
            format!("must be one of {}", Value::from(values.clone())),
        );
    }
    if let Some(c) = &k.constant
        && !json_equal(c, v)
    {
        fail(out, path, format!("must be {c}"));
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(m) = k.minimum.filter(|m| x < *m) {
                fail(out, path, format!("must be >= {m}"));
            }
            if let Some(m) = k.maximum.filter(|m| x > *m) {
                fail(out, path, format!("must be <= {m}"));
            }
            if let Some(m) = k.exclusive_minimum.filter(|m| x <= *m) {
                fail(out, path, format!("must be > {m}"));
            }
            if let Some(m) = k.exclusive_maximum.filter(|m| x >= *m) {
                fail(out, path, format!("must be < {m}"));
            }
        }
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(m) = k.min_length.filter(|m| chars < *m) {
                fail(out, path, format!("must be at least {m} characters long"));
            }
            if let Some(m) = k.max_length.filter(|m| chars > *m) {
                fail(out, path, format!("must be at most {m} characters long"));
            }
            if let Some((source, regex)) = &k.pattern
                && !regex.is_match(s)
            {
                fail(out, path, format!("must match the pattern {source}"));
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(m) = k.min_items.filter(|m| len < *m) {
                fail(out, path, format!("must have at least {m} items"));
            }
            if let Some(m) = k.max_items.filter(|m| len > *m) {
                fail(out, path, format!("must have at most {m} items"));
            }
            if let Some(item_schema) = &k.items {
                for (i, item) in items.iter().enumerate() {
                    let len = push_token(path, &i.to_string());
                    validate(item_schema, item, path, out, max);
                    path.truncate(len);
                }
            }
        }
        Value::Object(map) => validate_object(k, map, path, out, max),
        _ => {}
    }
}

fn validate_object(
    k: &Keywords,
    map: &Map<String, Value>,
    path: &mut String,
    out: &mut Vec<Violation>,
    max: usize,
) {
    for name in &k.required {
        if !map.contains_key(name) && out.len() < max {
            out.push(Violation {
                path: path.clone(),
                message: format!("missing required property `{name}`"),
            });
        }
    }
    for (name, value) in map {
        let declared = k.properties.iter().find(|(n, _)| n == name);
        let schema = match (declared, &k.additional) {
            (Some((_, s)), _) => s,
            (None, Some(s)) => s,
            (None, None) => continue,
        };
        let len = push_token(path, name);
        if declared.is_none() && matches!(schema, Schema::Bool(false)) {
            if out.len() < max {
                out.push(Violation {
                    path: path.clone(),
                    message: "additional property not allowed".into(),
                });
            }
        } else {
            validate(schema, value, path, out, max);
        }
        path.truncate(len);
    }
}

/// JSON equality as the spec defines it: numbers by value (`1` == `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| json_equal(a, b)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mw(schema: Value) -> JsonSchema {
        JsonSchema::from_config(json!({ "schema": schema }).to_string().as_bytes()).unwrap()
    }

    fn violations(m: &JsonSchema, body: &str) -> Vec<(String, String)> {
        m.validate(body.as_bytes())
            .into_iter()
            .map(|v| (v.path, v.message))
            .collect()
    }

    fn order_schema() -> JsonSchema {
        mw(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "order",
            "type": "object",
            "required": ["id", "qty"],
            "properties": {
                "id": { "type": "string", "pattern": "^[A-Z][0-9]+$", "minLength": 2, "maxLength": 8 },
                "qty": { "type": "integer", "minimum": 1, "maximum": 100 },
                "price": { "type": "number", "exclusiveMinimum": 0 },
                "kind": { "enum": ["retail", "wholesale"] },
                "tags": { "type": "array", "items": { "type": "string", "maxLength": 3 }, "maxItems": 3 },
                "note": { "type": ["string", "null"] },
                "a/b~c": { "type": "boolean" }
            },
            "additionalProperties": false
        }))
    }

    #[test]
    fn a_valid_body_passes() {
        let m = order_schema();
        assert_eq!(
            m.check(br#"{"id":"A12","qty":3,"price":9.5,"kind":"retail","tags":["x","yz"],"note":null}"#),
            Ok(())
        );
        // 2020-12: 1.0 is an integer.
        assert_eq!(m.check(br#"{"id":"A12","qty":1.0}"#), Ok(()));
    }

    #[test]
    fn every_keyword_reports_its_violation_with_a_json_pointer() {
        let m = order_schema();
        let got = violations(
            &m,
            r#"{"id":"a","qty":0.5,"price":0,"kind":"x","tags":["abcd",1,"a","b"],"note":3,"extra":1,"a/b~c":"no"}"#,
        );
        let want: Vec<(String, String)> = [
            ("/id", "must be at least 2 characters long"),
            ("/id", "must match the pattern ^[A-Z][0-9]+$"),
            ("/qty", "expected integer, got number"),
            ("/price", "must be > 0"),
            ("/kind", r#"must be one of ["retail","wholesale"]"#),
            ("/tags", "must have at most 3 items"),
            ("/tags/0", "must be at most 3 characters long"),
            ("/tags/1", "expected string, got number"),
            ("/note", "expected string or null, got number"),
            ("/extra", "additional property not allowed"),
            ("/a~1b~0c", "expected boolean, got string"),
        ]
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted = want;
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted);
        assert_eq!(
            violations(&m, r#"{"qty":500}"#),
            vec![
                ("".into(), "missing required property `id`".into()),
                ("/qty".into(), "must be <= 100".into())
            ]
        );
        assert_eq!(
            violations(&m, "[1]"),
            vec![("".into(), "expected object, got array".into())]
        );
    }

    #[test]
    fn lengths_count_code_points_and_patterns_are_unanchored() {
        let m = mw(json!({ "type": "string", "minLength": 3, "maxLength": 3, "pattern": "b|ö" }));
        assert!(
            violations(&m, r#""äöü""#).is_empty(),
            "3 code points, 6 bytes"
        );
        assert!(violations(&m, r#""abc""#).is_empty());
        assert_eq!(violations(&m, r#""ab""#).len(), 1);
        assert_eq!(violations(&m, r#""xyz""#).len(), 1);
    }

    #[test]
    fn schema_additional_properties_const_and_boolean_schemas() {
        let m = mw(json!({
            "properties": { "v": { "const": 1 }, "no": false, "any": true },
            "additionalProperties": { "type": "integer" }
        }));
        assert!(violations(&m, r#"{"v":1.0,"any":[{}],"x":2}"#).is_empty());
        assert_eq!(
            violations(&m, r#"{"v":2,"no":1,"x":"s"}"#),
            vec![
                ("/no".into(), "not allowed here".into()),
                ("/v".into(), "must be 1".into()),
                ("/x".into(), "expected integer, got string".into()),
            ]
        );
        assert_eq!(violations(&mw(json!(false)), "1").len(), 1);
        assert!(violations(&mw(json!(true)), "1").is_empty());
    }

    #[test]
    fn not_json_and_the_violation_cap_give_400() {
        let m = JsonSchema::from_config(
            br#"{"schema":{"items":{"type":"string"}},"max_violations":2}"#,
        )
        .unwrap();
        let r = m.check(b"{not json").unwrap_err();
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error"], "invalid-body");
        assert!(
            r.body["violations"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("body is not JSON")
        );
        let r = m.check(b"[1,2,3,4]").unwrap_err();
        assert_eq!(r.body["violations"].as_array().unwrap().len(), 2);
        assert_eq!(r.body["violations"][1]["path"], "/1");
    }

    #[test]
    fn bodies_nested_deeper_than_max_depth_are_refused_without_parsing() {
        let m = mw(json!(true));
        let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert!(violations(&m, &nested(MAX_DEPTH)).is_empty());
        assert_eq!(
            violations(&m, &nested(MAX_DEPTH + 1)),
            vec![("".into(), "body nests deeper than 64 levels".into())]
        );
        // Brackets inside strings do not count.
        let quoted = format!(r#"["{}\"{}"]"#, "[".repeat(100), "{".repeat(100));
        assert!(violations(&m, &quoted).is_empty(), "{quoted}");
        assert_eq!(nesting(br#"{"a":[1,{"b":"]]]"}]}"#), 3);
    }

    #[test]
    fn unsupported_keywords_and_bad_schemas_are_refused_at_load() {
        for (schema, needle) in [
            (
                json!({ "$ref": "#/x" }),
                "schema.$ref: keyword not supported",
            ),
            (json!({ "anyOf": [] }), "anyOf"),
            (
                json!({ "properties": { "a": { "prefixItems": [] } } }),
                "schema.properties.a.prefixItems",
            ),
            (json!({ "type": "float" }), "unknown type `float`"),
            (json!({ "pattern": "(" }), "invalid regex"),
            (json!({ "minLength": -1 }), "non-negative integer"),
            (json!(3), "object or a boolean"),
            (
                serde_json::from_str(&format!("{}{}", "[".repeat(70), "]".repeat(70))).unwrap(),
                "config nests deeper than 64 levels",
            ),
        ] {
            let config = json!({ "schema": schema }).to_string();
            crate::assert_misconfigured(
                JsonSchema::from_config(config.as_bytes()),
                "json-schema",
                needle,
            );
        }
        assert!(JsonSchema::from_config(b"{}").is_err());
    }
}
