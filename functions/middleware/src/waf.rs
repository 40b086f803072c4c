//! `waf`: refuses requests whose path, query or body match attack patterns,
//! with 403 `{"error":"forbidden","rule":<rule id>,"in":"path"|"query"|"body"}`
//! — the rule's id, never the matched text (which would reflect the attack).
//!
//! Every target is matched in its raw form and percent-decoded (up to two
//! passes, so `%252e` is seen as `%2e` and then `.`; `+` is a space in the
//! query and the body); a rule matches if any form matches. Bodies are
//! matched as text (invalid UTF-8 replaced), whatever their content type.
//!
//! Default rule sets (`rule_sets`, default all three; `[]` for none):
//!
//! - `sqli`: `sqli-union` (`UNION [ALL] SELECT`, comments as spaces),
//!   `sqli-tautology` (`' OR '1'='1`, `or 1=1`), `sqli-comment` (a quote
//!   followed by `--`, `#` or `/*`), `sqli-stacked` (`; DROP …`, `; DELETE`,
//!   …), `sqli-time` (`SLEEP(`, `BENCHMARK(`, `pg_sleep(`, `WAITFOR DELAY`),
//!   `sqli-schema` (`information_schema`, `sysobjects`, `xp_cmdshell`);
//! - `traversal`: `traversal-encoded` (`%2e%2e`, `%252e`, `..%2f`, overlong
//!   UTF-8 `%c0%ae`, …), `traversal-dotdot` (a `..` path segment, `/` or
//!   `\`), `traversal-nul` (`%00` or a NUL byte), `traversal-file`
//!   (`/etc/passwd`, `/etc/shadow`, `/proc/self/`, `win.ini`, `boot.ini`);
//! - `xss`: `xss-script` (`<script`, `</script`), `xss-handler` (an
//!   `on…=` attribute inside a tag), `xss-uri` (`javascript:`,
//!   `vbscript:`), `xss-tag` (`<iframe`, `<object`, `<embed`, `<applet`,
//!   `<meta`, `<base`).
//!
//! These catch common probes, not every attack; a body that talks about SQL
//! may be refused (turn off a set, or the body, for such routes).
//!
//! Config: `rule_sets` (list of set names), `rules` (custom rules: a list of
//! `{"id": "…", "pattern": "<regex-lite regex>", "in": ["path", "query",
//! "body"]}`, `in` defaulting to all three; ids are letters, digits, `-`, `_`,
//! `.` and unique), `inspect_body` (default true; false leaves the body
//! unread and unbuffered). Default rules are tried first, in the order above,
//! then custom rules in config order.

use crate::Reject;
use crate::config::{self, Config};
use regex_lite::Regex;
use serde_json::{Value, json};
use std::cell::OnceCell;

const NAME: &str = "waf";

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The path of the request target.
    Path,
    /// The query of the request target (after `?`).
    Query,
    /// The request body.
    Body,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Path => "path",
            Target::Query => "query",
            Target::Body => "body",
        }
    }
}

const ALL: [Target; 3] = [Target::Path, Target::Query, Target::Body];

#[derive(Debug)]
struct Rule {
    id: String,
    /// Compiled on first use (custom rules: at config load).
    regex: OnceCell<Option<Regex>>,
    pattern: String,
    /// Lowercase strings one of which a form must contain for the regex to
    /// be tried; empty: always tried.
    needles: &'static [&'static str],
    /// Tried anchored at each needle occurrence (see [`DefaultRule`]).
    anchored: bool,
    targets: Vec<Target>,
}

/// One form of a target: the text, its ASCII-lowercase copy, and which
/// bytes occur in it (a needle whose first byte does not occur is not
/// searched for: one pass instead of one per needle).
struct Form {
    text: String,
    lower: String,
    present: [bool; 256],
}

impl Form {
    fn new(text: String) -> Form {
        let lower = text.to_ascii_lowercase();
        let mut present = [false; 256];
        for &b in lower.as_bytes() {
            present[usize::from(b)] = true;
        }
        Form {
            text,
            lower,
            present,
        }
    }

    fn contains(&self, needle: &str) -> bool {
        needle
            .as_bytes()
            .first()
            .is_some_and(|&b| self.present[usize::from(b)])
            && self.lower.contains(needle)
    }
}

impl Rule {
    /// Whether the rule matches one of `forms`. A default regex that does
    /// not compile (the unit tests compile them all) counts as a match: the
    /// WAF fails closed.
    fn matches(&self, forms: &[Form]) -> bool {
        forms.iter().any(|form| {
            if !self.needles.is_empty() && !self.needles.iter().any(|n| form.contains(n)) {
                return false;
            }
            let regex = self.regex.get_or_init(|| {
                if self.anchored {
                    Regex::new(&format!("^(?:{})", self.pattern)).ok()
                } else {
                    Regex::new(&self.pattern).ok()
                }
            });
            let Some(regex) = regex else { return true };
            if !self.anchored {
                return regex.is_match(&form.text);
            }
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let lower = form.lower.as_bytes();
            self.needles.iter().any(|needle| {
                let word_start = needle.bytes().next().is_some_and(word);
                form.lower.match_indices(needle).any(|(at, _)| {
                    let after_word = at > 0 && lower.get(at - 1).copied().is_some_and(word);
                    !(word_start && after_word)
                        && form.text.get(at..).is_some_and(|rest| regex.is_match(rest))
                })
            })
        })
    }
}

/// The parsed configuration: the rules in the order they are tried.
#[derive(Debug)]
pub struct Waf {
    rules: Vec<Rule>,
    /// Whether any rule looks at the body (the glue then buffers and reads it).
    pub inspect_body: bool,
    /// Longest body inspected; a longer one is refused (413).
    max_body_inspect: usize,
}

/// Default `max_body_inspect`: 8 KiB. Matching a JSON body costs ~5,000
/// fuel per byte in the interpreter (regex-lite, a match attempt at every
/// quote), so 8 KiB takes ~40 M of the default 100 M fuel; raise both
/// together for larger bodies.
const DEFAULT_MAX_BODY_INSPECT: u64 = 8 * 1024;

/// A default rule: id, whether it is anchored, needles (lowercase; the regex
/// can only match a form containing one of them, so it is not even compiled
/// for a request without any) and the regex.
///
/// An anchored rule's matches all begin with one of its needles, and a
/// needle that begins with a word character follows a `\b` in the pattern:
/// it is tried only where a needle occurs (not after a word character),
/// anchored there — a few bytes of regex work per occurrence instead of a
/// scan of the whole form, which costs regex-lite ~150 ns per byte natively
/// and far more in the interpreter. `anchored_rules_agree_with_a_full_scan`
/// checks this against plain matching.
type DefaultRule = (&'static str, bool, &'static [&'static str], &'static str);

/// The default rule sets. Compiling all 14 regexes costs ~8 M fuel, on every
/// instance (one per request): the needles skip most of that for ordinary
/// requests.
const DEFAULT_SETS: [(&str, &[DefaultRule]); 3] = [
    (
        "sqli",
        &[
            (
                "sqli-union",
                true,
                &["union"],
                r"(?i)\bunion(\s|/\*.*?\*/)+(all(\s|/\*.*?\*/)+)?select\b",
            ),
            (
                "sqli-tautology",
                true,
                // `or` followed by each ASCII space (regex-lite's `\s`):
                // a bare `or` would compile this regex for every `/orders`.
                &["'", "\"", "or ", "or\t", "or\n", "or\x0b", "or\x0c", "or\r"],
                r#"(?i)['"]\s*\)?\s*(or|and)\s+['"]?\w+['"]?\s*(=|<|>|\blike\b)\s*['"]?\w|\bor\s+\d+\s*=\s*\d+"#,
            ),
            ("sqli-comment", true, &["'", "\""], r#"['"]\s*(--|#|/\*)"#),
            (
                "sqli-stacked",
                true,
                &[";"],
                r"(?i);\s*(drop|delete|insert|update|alter|create|truncate|exec|shutdown)\s",
            ),
            (
                "sqli-time",
                true,
                &["sleep", "benchmark", "pg_sleep", "waitfor"],
                r"(?i)\b(sleep|benchmark|pg_sleep)\s*\(|\bwaitfor\s+delay\b",
            ),
            (
                "sqli-schema",
                true,
                &["information_schema", "sysobjects", "xp_cmdshell"],
                r"(?i)\binformation_schema\b|\bsysobjects\b|\bxp_cmdshell\b",
            ),
        ],
    ),
    (
        "traversal",
        &[
            (
                "traversal-encoded",
                false,
                &["%"],
                r"(?i)%2e%2e|%2e\.|\.%2e|%252e|%c0%ae|%c0%af|%c1%9c|%u002e|\.\.%2f|\.\.%5c",
            ),
            (
                "traversal-dotdot",
                false,
                &[".."],
                r"(^|[/\\])\.\.([/\\]|$)",
            ),
            ("traversal-nul", false, &["%00", "\0"], r"(?i)%00|\x00"),
            (
                "traversal-file",
                true,
                &["/etc/", "/proc/", "win.ini", "boot.ini"],
                r"(?i)/etc/(passwd|shadow)\b|/proc/self/|\bwin\.ini\b|\bboot\.ini\b",
            ),
        ],
    ),
    (
        "xss",
        &[
            ("xss-script", true, &["<"], r"(?i)<\s*/?\s*script\b"),
            ("xss-handler", true, &["<"], r"(?i)<[^>]*\son[a-z]+\s*="),
            (
                "xss-uri",
                true,
                &["javascript", "vbscript"],
                r"(?i)\b(javascript|vbscript)\s*:",
            ),
            (
                "xss-tag",
                true,
                &["<"],
                r"(?i)<\s*(iframe|object|embed|applet|meta|base)\b",
            ),
        ],
    ),
];

impl Waf {
    /// Parses the `get_config` payload and compiles the rules.
    pub fn from_config(bytes: &[u8]) -> Result<Waf, Reject> {
        Self::parse(bytes).map_err(|e| Reject::misconfigured(NAME, &e))
    }

    fn parse(bytes: &[u8]) -> Result<Waf, String> {
        let value = config::parse(bytes)?;
        let c = Config::new(
            &value,
            &["rule_sets", "rules", "inspect_body", "max_body_inspect"],
        )?;
        let sets = c
            .strings("rule_sets")?
            .unwrap_or_else(|| DEFAULT_SETS.iter().map(|(n, _)| n.to_string()).collect());
        let mut rules = Vec::new();
        for set in &sets {
            let (_, list) = DEFAULT_SETS
                .iter()
                .find(|(name, _)| name == set)
                .ok_or_else(|| format!("unknown rule set `{set}` (known: sqli, traversal, xss)"))?;
            for (id, anchored, needles, pattern) in list.iter() {
                rules.push(Rule {
                    id: id.to_string(),
                    regex: OnceCell::new(),
                    pattern: pattern.to_string(),
                    needles,
                    anchored: *anchored,
                    targets: ALL.to_vec(),
                });
            }
        }
        match c.get("rules") {
            None => {}
            Some(Value::Array(list)) => {
                for (i, rule) in list.iter().enumerate() {
                    let rule = custom_rule(rule).map_err(|e| format!("rules[{i}]: {e}"))?;
                    if rules.iter().any(|r| r.id == rule.id) {
                        return Err(format!("rules[{i}]: duplicate rule id `{}`", rule.id));
                    }
                    rules.push(rule);
                }
            }
            Some(_) => return Err("`rules` must be a list of rules".into()),
        }
        let inspect_body = c.bool("inspect_body", true)?;
        if !inspect_body {
            for rule in &mut rules {
                rule.targets.retain(|t| *t != Target::Body);
            }
        }
        let inspect_body = rules.iter().any(|r| r.targets.contains(&Target::Body));
        let max_body_inspect = c.uint("max_body_inspect", DEFAULT_MAX_BODY_INSPECT, 1 << 30)?;
        Ok(Waf {
            rules,
            inspect_body,
            max_body_inspect: usize::try_from(max_body_inspect).unwrap_or(usize::MAX),
        })
    }

    /// Checks a request; `uri` is the request target (path and query).
    pub fn check(&self, uri: &[u8], body: &[u8]) -> Result<(), Reject> {
        let uri = String::from_utf8_lossy(uri);
        let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
        let forms = |raw: &str, plus_is_space: bool| {
            let mut out = vec![raw.to_string()];
            for _ in 0..2 {
                let last = out.last().map(String::as_str).unwrap_or("");
                // Nothing to decode: the next form would be the same (a
                // pass over a body costs hundreds of fuel per byte).
                let decodable = |b: u8| b == b'%' || (plus_is_space && b == b'+');
                if !last.bytes().any(decodable) {
                    break;
                }
                let next = percent_decode(last, plus_is_space);
                if next == last {
                    break;
                }
                out.push(next);
            }
            out.into_iter().map(Form::new).collect::<Vec<_>>()
        };
        if self.inspect_body && body.len() > self.max_body_inspect {
            return Err(Reject::new(
                413,
                "body-too-large-to-inspect",
                format!(
                    "the body is over max_body_inspect ({} bytes)",
                    self.max_body_inspect
                ),
            ));
        }
        let path_forms = forms(path, false);
        let query_forms = forms(query, true);
        let body_forms = if self.inspect_body && !body.is_empty() {
            forms(&String::from_utf8_lossy(body), true)
        } else {
            Vec::new()
        };
        for rule in &self.rules {
            for target in &rule.targets {
                let forms = match target {
                    Target::Path => &path_forms,
                    Target::Query => &query_forms,
                    Target::Body => &body_forms,
                };
                if rule.matches(forms) {
                    return Err(Reject {
                        status: 403,
                        headers: Vec::new(),
                        body: json!({ "error": "forbidden", "rule": rule.id, "in": target.name() }),
                    });
                }
            }
        }
        Ok(())
    }
}

fn custom_rule(value: &Value) -> Result<Rule, String> {
    let c = Config::new(value, &["id", "pattern", "in"])?;
    let id = c.str("id")?.ok_or("`id` is required")?;
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err("`id` must be letters, digits, `-`, `_` or `.`".into());
    }
    let pattern = c.str("pattern")?.ok_or("`pattern` is required")?;
    let regex = Regex::new(pattern).map_err(|e| format!("invalid `pattern`: {e}"))?;
    let compiled = OnceCell::new();
    let _ = compiled.set(Some(regex));
    let targets = match c.strings("in")? {
        None => ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                ALL.into_iter()
                    .find(|t| t.name() == n)
                    .ok_or_else(|| format!("`in`: unknown target `{n}` (path, query, body)"))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Rule {
        id: id.to_string(),
        regex: compiled,
        pattern: pattern.to_string(),
        needles: &[],
        anchored: false,
        targets,
    })
}

/// One pass of percent-decoding (invalid escapes kept as they are; invalid
/// UTF-8 in the result replaced).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(waf: &Waf, uri: &str, body: &str) -> Option<(String, String)> {
        waf.check(uri.as_bytes(), body.as_bytes()).err().map(|r| {
            assert_eq!(r.status, 403);
            assert_eq!(r.body["error"], "forbidden");
            (
                r.body["rule"].as_str().unwrap().to_string(),
                r.body["in"].as_str().unwrap().to_string(),
            )
        })
    }

    fn defaults() -> Waf {
        Waf::from_config(b"{}").unwrap()
    }

    #[test]
    fn ordinary_requests_pass() {
        let waf = defaults();
        for (uri, body) in [
            ("/", ""),
            ("/api/orders/17?sort=desc&page=2", ""),
            ("/search?q=union+station+select+menu", ""),
            ("/files/report..final.pdf", ""),
            (
                "/a/b?name=O%27Brien",
                r#"{"name":"O'Brien","note":"or maybe not"}"#,
            ),
            ("/post", "a < b and c > d; see https://example.com/x.html"),
        ] {
            assert_eq!(blocked(&waf, uri, body), None, "{uri} {body}");
        }
        assert!(waf.inspect_body);
    }

    #[test]
    fn sqli_probes_are_refused_with_the_rule_id() {
        let waf = defaults();
        for (uri, body, rule, target) in [
            (
                "/items?id=1+UNION+SELECT+password+FROM+users",
                "",
                "sqli-union",
                "query",
            ),
            (
                "/items?id=1%20union/**/all/**/select%201",
                "",
                "sqli-union",
                "query",
            ),
            (
                "/login",
                "user=admin&pass=' OR '1'='1",
                "sqli-tautology",
                "body",
            ),
            ("/items?id=1 or 1=1", "", "sqli-tautology", "query"),
            ("/login?user=admin'--", "", "sqli-comment", "query"),
            (
                "/items?id=1;%20DROP%20TABLE%20users",
                "",
                "sqli-stacked",
                "query",
            ),
            ("/items?id=1+AND+SLEEP(5)", "", "sqli-time", "query"),
            (
                "/x",
                r#"{"q":"select * from information_schema.tables"}"#,
                "sqli-schema",
                "body",
            ),
        ] {
            assert_eq!(
                blocked(&waf, uri, body),
                Some((rule.to_string(), target.to_string())),
                "{uri} {body}"
            );
        }
    }

    #[test]
    fn traversal_probes_are_refused_including_encoded_forms() {
        let waf = defaults();
        for (uri, rule, target) in [
            ("/static/../../etc/passwd", "traversal-dotdot", "path"),
            ("/static/..\\..\\boot.ini", "traversal-dotdot", "path"),
            (
                "/static/%2e%2e/%2e%2e/etc/passwd",
                "traversal-encoded",
                "path",
            ),
            ("/static/%252e%252e/secret", "traversal-encoded", "path"),
            ("/static/..%2fsecret", "traversal-encoded", "path"),
            ("/static/%c0%ae%c0%ae/secret", "traversal-encoded", "path"),
            (
                "/download?file=..%2F..%2Fsecret",
                "traversal-encoded",
                "query",
            ),
            ("/download?file=report.pdf%00.png", "traversal-nul", "query"),
            ("/download?file=/etc/shadow", "traversal-file", "query"),
        ] {
            assert_eq!(
                blocked(&waf, uri, ""),
                Some((rule.to_string(), target.to_string())),
                "{uri}"
            );
        }
    }

    #[test]
    fn script_injection_probes_are_refused() {
        let waf = defaults();
        for (uri, body, rule, target) in [
            (
                "/c?text=<script>alert(1)</script>",
                "",
                "xss-script",
                "query",
            ),
            ("/c?text=%3Cscript%3Ealert(1)", "", "xss-script", "query"),
            ("/c?text=%253Cscript%253E", "", "xss-script", "query"),
            ("/c", "<img src=x onerror=alert(1)>", "xss-handler", "body"),
            ("/c?u=javascript:alert(1)", "", "xss-uri", "query"),
            ("/c", "<iframe src=//evil>", "xss-tag", "body"),
        ] {
            assert_eq!(
                blocked(&waf, uri, body),
                Some((rule.to_string(), target.to_string())),
                "{uri} {body}"
            );
        }
    }

    #[test]
    fn rule_sets_custom_rules_and_inspect_body_are_configurable() {
        let waf = Waf::from_config(
            br#"{"rule_sets":["xss"],"rules":[{"id":"no-admin","pattern":"^/admin\\b","in":["path"]},{"id":"no-debug","pattern":"(?i)debug=1"}]}"#,
        )
        .unwrap();
        assert_eq!(blocked(&waf, "/items?id=1+UNION+SELECT+1", ""), None);
        assert_eq!(
            blocked(&waf, "/admin/users", ""),
            Some(("no-admin".into(), "path".into()))
        );
        assert_eq!(blocked(&waf, "/x?p=/admin", ""), None, "path only");
        assert_eq!(
            blocked(&waf, "/x", "DEBUG=1"),
            Some(("no-debug".into(), "body".into()))
        );
        let no_body = Waf::from_config(br#"{"rule_sets":["xss"],"inspect_body":false}"#).unwrap();
        assert!(!no_body.inspect_body);
        assert_eq!(blocked(&no_body, "/x", "<script>"), None);
        assert!(blocked(&no_body, "/x?<script>", "").is_some());
        let none = Waf::from_config(br#"{"rule_sets":[]}"#).unwrap();
        assert!(!none.inspect_body);
        assert_eq!(blocked(&none, "/../etc/passwd?<script>", "' or 1=1"), None);
    }

    #[test]
    fn the_answer_names_the_rule_not_the_matched_text() {
        let r = defaults()
            .check(b"/c?text=<script>steal()</script>", b"")
            .unwrap_err();
        let body = r.body.to_string();
        assert!(
            !body.contains("script>") && !body.contains("steal"),
            "{body}"
        );
    }

    #[test]
    fn config_errors_are_500_with_the_reason() {
        for (config, needle) in [
            (r#"{"rule_sets":["sql"]}"#, "unknown rule set `sql`"),
            (
                r#"{"rules":[{"pattern":"x"}]}"#,
                "rules[0]: `id` is required",
            ),
            (r#"{"rules":[{"id":"a b","pattern":"x"}]}"#, "`id` must be"),
            (
                r#"{"rules":[{"id":"a","pattern":"("}]}"#,
                "invalid `pattern`",
            ),
            (
                r#"{"rules":[{"id":"a","pattern":"x","in":["header"]}]}"#,
                "unknown target",
            ),
            (
                r#"{"rules":[{"id":"xss-uri","pattern":"x"}]}"#,
                "duplicate rule id",
            ),
            (r#"{"rules":{}}"#, "list of rules"),
        ] {
            crate::assert_misconfigured(Waf::from_config(config.as_bytes()), "waf", needle);
        }
    }

    #[test]
    fn bodies_over_max_body_inspect_are_413_unless_the_body_is_not_inspected() {
        let waf = Waf::from_config(br#"{"max_body_inspect":8}"#).unwrap();
        assert_eq!(waf.check(b"/", b"12345678"), Ok(()));
        let r = waf.check(b"/", b"123456789").unwrap_err();
        assert_eq!(r.status, 413);
        assert_eq!(r.body["error"], "body-too-large-to-inspect");
        assert_eq!(
            r.body["reason"],
            "the body is over max_body_inspect (8 bytes)"
        );
        let off = Waf::from_config(br#"{"max_body_inspect":8,"inspect_body":false}"#).unwrap();
        assert_eq!(off.check(b"/", b"123456789"), Ok(()));
        assert_eq!(defaults().max_body_inspect, 8192);
    }

    #[test]
    fn an_ordinary_request_compiles_no_default_regex() {
        let waf = defaults();
        assert_eq!(blocked(&waf, "/api/items/17?page=2", "{}"), None);
        assert_eq!(blocked(&waf, "/api/orders?sort=order", "x"), None);
        let compiled: Vec<&str> = waf
            .rules
            .iter()
            .filter(|r| r.regex.get().is_some())
            .map(|r| r.id.as_str())
            .collect();
        assert!(compiled.is_empty(), "{compiled:?}");
        assert!(blocked(&waf, "/x?q=1+union+select+2", "").is_some());
        assert!(waf.rules.iter().any(|r| r.regex.get().is_some()));
    }

    #[test]
    fn anchored_rules_agree_with_a_full_scan() {
        let mut inputs: Vec<String> = [
            "' OR '1'='1",
            "x' or 1=1--",
            "floor 1=1",
            "color 2=2",
            "a or 3=3",
            "a OR\t4=4",
            "or\n5 = 5",
            "x or\r\n6=6",
            "or\x0b7=7",
            "/orders?or=1",
            "admin'--",
            "admin\" #",
            "1; DROP TABLE t",
            "1;drop table t",
            "pg_sleep(5)",
            "xsleep(1)",
            "SLEEP (1)",
            "waitfor delay '0:0:5'",
            "1 UNION/**/ALL/**/SELECT 2",
            "reunion select",
            "information_schema.tables",
            "my_information_schema",
            "/etc/passwd",
            "a/etc/shadow",
            "x/proc/self/environ",
            "c:\\win.ini",
            "xwin.ini",
            "<script>",
            "< / script>",
            "<img src=x onerror=alert(1)>",
            "<a href='#'>on=1</a>",
            "javascript:alert(1)",
            "notjavascript:1",
            "<IFRAME src=x>",
            "<metadata>",
            r#"{"q":"it's or isn't"}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every input also inside text, after a letter, a digit and a space.
        for base in inputs.clone() {
            for prefix in ["a", "1", " ", "_", "'"] {
                inputs.push(format!("{prefix}{base} tail"));
            }
        }
        for (_, rules) in DEFAULT_SETS {
            for (id, anchored, needles, pattern) in rules.iter() {
                if !anchored {
                    continue;
                }
                let full = Regex::new(pattern).unwrap();
                let rule = Rule {
                    id: id.to_string(),
                    regex: OnceCell::new(),
                    pattern: pattern.to_string(),
                    needles,
                    anchored: true,
                    targets: ALL.to_vec(),
                };
                for input in &inputs {
                    assert_eq!(
                        rule.matches(&[Form::new(input.clone())]),
                        full.is_match(input),
                        "{id} on {input:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_default_rule_compiles_and_has_lowercase_needles() {
        for (_, rules) in DEFAULT_SETS {
            for (id, _, needles, pattern) in rules.iter() {
                assert!(Regex::new(pattern).is_ok(), "{id}");
                assert!(!needles.is_empty(), "{id}");
                for n in needles.iter() {
                    assert_eq!(*n, n.to_ascii_lowercase(), "{id}");
                }
            }
        }
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4", false), "a/b%zz%4");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
