//! Raw input → the validated [`Config`](super::Config): every key's range,
//! the checks between keys, and errors naming the file, line and key.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawConfig, RawFunction, RawLimits, RawServer};
use super::units::{Amount, Int, Size, Time, parse_duration, parse_size, show_duration, show_size};
use super::{AbiChoice, Config, FunctionSpec};
use crate::error::ConfigError;
use crate::limits::{FUEL_PER_MS_RANGE, FunctionLimits, MAX_FUEL, ModuleLimits, ServerLimits};

pub(crate) struct Ctx<'a> {
    pub(crate) text: &'a str,
    pub(crate) file: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn toml<T: serde::de::DeserializeOwned>(
        &self,
        text: &str,
    ) -> Result<T, ConfigError> {
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

    pub(crate) fn error<T>(
        &self,
        span: std::ops::Range<usize>,
        message: String,
    ) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_owned(),
            line: Some(self.line_of(span.start)),
            message,
        })
    }

    /// An integer key in `range` (see the `*_RANGE` constants in
    /// [`crate::limits`]), or `default` when it is absent.
    pub(crate) fn count<T: TryFrom<u64>>(
        &self,
        key: &str,
        value: &Option<Spanned<Int>>,
        default: T,
        range: RangeInclusive<u64>,
    ) -> Result<T, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let n = v.get_ref().0;
        match in_range(u64::try_from(n).ok(), &range) {
            Some(n) => Ok(n),
            None => self.error(
                v.span(),
                format!(
                    "`{key}` must be between {} and {}, got {n}",
                    range.start(),
                    range.end()
                ),
            ),
        }
    }

    /// A size key in `range`, or `default` when it is absent.
    pub(crate) fn size<T: TryFrom<u64>>(
        &self,
        key: &str,
        value: &Option<Spanned<Size>>,
        default: T,
        range: RangeInclusive<u64>,
    ) -> Result<T, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let parsed = match &v.get_ref().amount {
            Amount::Int(n) => u64::try_from(*n).map_err(|_| format!("{n} bytes")),
            Amount::Text(s) => parse_size(s).map_err(|why| format!("`{key}` {why}")),
        };
        let bytes = match parsed {
            Ok(bytes) => bytes,
            Err(why) if why.starts_with('`') => return self.error(v.span(), why),
            Err(got) => return self.range_error(v.span(), key, &range, got, show_size),
        };
        match in_range(Some(bytes), &range) {
            Some(n) => Ok(n),
            None => self.range_error(v.span(), key, &range, show_size(bytes), show_size),
        }
    }

    /// A duration key in `range`, or `default` when it is absent.
    fn duration(
        &self,
        key: &str,
        value: &Option<Spanned<Time>>,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let parsed = match &v.get_ref().amount {
            Amount::Int(n) => u64::try_from(*n)
                .map(Duration::from_millis)
                .map_err(|_| format!("{n} ms")),
            Amount::Text(s) => parse_duration(s).map_err(|why| format!("`{key}` {why}")),
        };
        match parsed {
            Ok(d) if range.contains(&d) => Ok(d),
            Ok(d) => self.range_error(v.span(), key, &range, show_duration(d), show_duration),
            Err(why) if why.starts_with('`') => self.error(v.span(), why),
            Err(got) => self.range_error(v.span(), key, &range, got, show_duration),
        }
    }

    fn range_error<T, R: Copy>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        range: &RangeInclusive<R>,
        got: String,
        show: fn(R) -> String,
    ) -> Result<T, ConfigError> {
        self.error(
            span,
            format!(
                "`{key}` must be between {} and {}, got {got}",
                show(*range.start()),
                show(*range.end())
            ),
        )
    }

    /// Limits from `raw` over `base`. With `fuel_per_ms` known, a `timeout`
    /// given without a `fuel` at the same level also sets the fuel budget to
    /// what the timeout is worth on this board, and the wall-clock backstop
    /// to twice the timeout: the budget decides, the clock only backs it up.
    pub(crate) fn limits(
        &self,
        raw: &RawLimits,
        base: &FunctionLimits,
        fuel_per_ms: Option<u64>,
    ) -> Result<FunctionLimits, ConfigError> {
        type L = FunctionLimits;
        let mut limits = FunctionLimits {
            fuel: self.count("fuel", &raw.fuel, base.fuel, L::FUEL_RANGE)?,
            fuel_slice: self.count(
                "fuel_slice",
                &raw.fuel_slice,
                base.fuel_slice,
                L::FUEL_SLICE_RANGE,
            )?,
            timeout: self.duration("timeout", &raw.timeout, base.timeout, L::TIMEOUT_RANGE)?,
            memory: self.size("memory", &raw.memory, base.memory, L::MEMORY_RANGE)?,
            max_response: self.size(
                "max_response",
                &raw.max_response,
                base.max_response,
                L::MAX_RESPONSE_RANGE,
            )?,
            max_log: self.size("max_log", &raw.max_log, base.max_log, L::MAX_LOG_RANGE)?,
        };
        if let (None, Some(_), Some(per_ms)) = (&raw.fuel, &raw.timeout, fuel_per_ms) {
            // At most 8.64e10 µs × 1e8 per ms (both ranges): no overflow,
            // and the result is within FUEL_RANGE; clamped all the same.
            let fuel = limits.timeout.as_micros().saturating_mul(per_ms.into()) / 1000;
            limits.fuel = u64::try_from(fuel).unwrap_or(MAX_FUEL).clamp(1, MAX_FUEL);
            limits.timeout = limits.timeout.saturating_mul(2);
        }
        Ok(limits)
    }

    pub(crate) fn validate(
        &self,
        raw: RawConfig,
        base: &Path,
        defaults: Config,
    ) -> Result<Config, ConfigError> {
        let mut config = defaults;
        if let Some(s) = raw.server {
            if let Some(listen) = &s.listen {
                config.listen = match Config::parse_listen(listen.get_ref()) {
                    Ok(addr) => addr,
                    Err(why) => return self.error(listen.span(), format!("`listen`: {why}")),
                };
            }
            if let Some(dir) = &s.functions_dir {
                let path = base.join(dir.get_ref());
                let why = match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_dir() => None,
                    Ok(_) => Some("is not a directory".to_owned()),
                    Err(e) => Some(format!("cannot be used: {e}")),
                };
                if let Some(why) = why {
                    return self.error(
                        dir.span(),
                        format!("`functions_dir` {:?} {why}", path.display().to_string()),
                    );
                }
                config.functions_dir = Some(path);
            }
            if s.fuel_per_ms.is_some() {
                config.fuel_per_ms =
                    Some(self.count("fuel_per_ms", &s.fuel_per_ms, 1, FUEL_PER_MS_RANGE)?);
            }
            config.server = self.server(&s, &config.server)?;
        }
        if let Some(l) = &raw.limits {
            config.defaults = self.limits(l, &config.defaults, config.fuel_per_ms)?;
        }
        for f in raw.functions {
            let spec = self.function(f, base, &config.defaults, config.fuel_per_ms)?;
            if let Some(other) = config
                .functions
                .iter()
                .find(|o| o.route == spec.route && o.prefix == spec.prefix)
            {
                return Err(ConfigError {
                    file: self.file.to_owned(),
                    line: None,
                    message: format!(
                        "route `{}` is given to both `{}` and `{}`",
                        spec.route, other.name, spec.name
                    ),
                });
            }
            config.functions.push(spec);
        }
        self.check_budget(&config)?;
        Ok(config)
    }

    /// Server limits from `s` over `d`.
    pub(crate) fn server(
        &self,
        s: &RawServer,
        d: &ServerLimits,
    ) -> Result<ServerLimits, ConfigError> {
        type L = ServerLimits;
        let limits = ServerLimits {
            max_connections: self.count(
                "max_connections",
                &s.max_connections,
                d.max_connections,
                L::MAX_CONNECTIONS_RANGE,
            )?,
            max_connections_per_ip: self.count(
                "max_connections_per_ip",
                &s.max_connections_per_ip,
                d.max_connections_per_ip,
                L::MAX_CONNECTIONS_PER_IP_RANGE,
            )?,
            max_in_flight: self.count(
                "max_in_flight",
                &s.max_in_flight,
                d.max_in_flight,
                L::MAX_IN_FLIGHT_RANGE,
            )?,
            memory_budget: self.size(
                "memory_budget",
                &s.memory_budget,
                d.memory_budget,
                L::MEMORY_BUDGET_RANGE,
            )?,
            max_body: self.size("max_body", &s.max_body, d.max_body, L::MAX_BODY_RANGE)?,
            max_header_bytes: self.size(
                "max_header_bytes",
                &s.max_header_bytes,
                d.max_header_bytes,
                L::MAX_HEADER_BYTES_RANGE,
            )?,
            max_headers: self.count(
                "max_headers",
                &s.max_headers,
                d.max_headers,
                L::MAX_HEADERS_RANGE,
            )?,
            idle_timeout: self.duration(
                "idle_timeout",
                &s.idle_timeout,
                d.idle_timeout,
                L::TIMEOUT_RANGE,
            )?,
            header_timeout: self.duration(
                "header_timeout",
                &s.header_timeout,
                d.header_timeout,
                L::TIMEOUT_RANGE,
            )?,
            body_timeout: self.duration(
                "body_timeout",
                &s.body_timeout,
                d.body_timeout,
                L::TIMEOUT_RANGE,
            )?,
            write_timeout: self.duration(
                "write_timeout",
                &s.write_timeout,
                d.write_timeout,
                L::TIMEOUT_RANGE,
            )?,
            module_cache: self.count(
                "module_cache",
                &s.module_cache,
                d.module_cache,
                L::MODULE_CACHE_RANGE,
            )?,
            module_check_interval: self.duration(
                "module_check_interval",
                &s.module_check_interval,
                d.module_check_interval,
                L::MODULE_CHECK_INTERVAL_RANGE,
            )?,
            max_module_size: self.size(
                "max_module_size",
                &s.max_module_size,
                d.max_module_size,
                L::MAX_MODULE_SIZE_RANGE,
            )?,
            module_cache_bytes: self.size(
                "module_cache_bytes",
                &s.module_cache_bytes,
                d.module_cache_bytes,
                L::MODULE_CACHE_BYTES_RANGE,
            )?,
            module: self.module_limits(s, &d.module)?,
            retry_after_secs: self.retry_after(s, d)?,
        };
        // Bodies being read may hold at most a share of the budget.
        if limits.max_body > limits.memory_budget / crate::limits::BODY_SHARE_DIVISOR {
            let span = s.max_body.as_ref().or(s.memory_budget.as_ref());
            return self.error(
                span.map_or(0..0, |v| v.span()),
                format!(
                    "`max_body` ({}) is larger than half of `memory_budget` ({}): bodies being read may hold at most half the budget",
                    show_size(limits.max_body),
                    show_size(limits.memory_budget)
                ),
            );
        }
        Ok(limits)
    }

    /// `retry_after`: whole seconds, as `Retry-After` sends them.
    fn retry_after(&self, s: &RawServer, d: &ServerLimits) -> Result<u32, ConfigError> {
        let default = Duration::from_secs(d.retry_after_secs.into());
        let range = ServerLimits::RETRY_AFTER_RANGE;
        let after = self.duration("retry_after", &s.retry_after, default, range)?;
        match (after.subsec_nanos(), u32::try_from(after.as_secs())) {
            (0, Ok(secs)) => Ok(secs),
            _ => self.error(
                s.retry_after.as_ref().map_or(0..0, |v| v.span()),
                format!(
                    "`retry_after` must be whole seconds, got {}",
                    show_duration(after)
                ),
            ),
        }
    }

    /// Structural module limits from `s` over `d`.
    fn module_limits(&self, s: &RawServer, d: &ModuleLimits) -> Result<ModuleLimits, ConfigError> {
        type M = ModuleLimits;
        Ok(ModuleLimits {
            max_globals: self.count(
                "max_module_globals",
                &s.max_module_globals,
                d.max_globals,
                M::MAX_GLOBALS_RANGE,
            )?,
            max_functions: self.count(
                "max_module_functions",
                &s.max_module_functions,
                d.max_functions,
                M::MAX_FUNCTIONS_RANGE,
            )?,
            max_table_elements: self.count(
                "max_module_table_elements",
                &s.max_module_table_elements,
                d.max_table_elements,
                M::MAX_TABLE_ELEMENTS_RANGE,
            )?,
            max_element_segments: self.count(
                "max_module_element_segments",
                &s.max_module_element_segments,
                d.max_element_segments,
                M::MAX_SEGMENTS_RANGE,
            )?,
            max_data_segments: self.count(
                "max_module_data_segments",
                &s.max_module_data_segments,
                d.max_data_segments,
                M::MAX_SEGMENTS_RANGE,
            )?,
            min_function_bytes: self.count(
                "min_module_function_bytes",
                &s.min_module_function_bytes,
                d.min_function_bytes,
                M::MIN_FUNCTION_BYTES_RANGE,
            )?,
            max_imports: self.count(
                "max_module_imports",
                &s.max_module_imports,
                d.max_imports,
                M::MAX_IMPORTS_RANGE,
            )?,
            max_function_bytes: self.size(
                "max_module_function_size",
                &s.max_module_function_size,
                d.max_function_bytes,
                M::MAX_FUNCTION_BYTES_RANGE,
            )?,
            max_nesting: self.count(
                "max_module_nesting",
                &s.max_module_nesting,
                d.max_nesting,
                M::MAX_NESTING_RANGE,
            )?,
        })
    }
    /// A function whose `memory` plus `max_response` (what admission
    /// reserves) exceeds the whole budget could never be admitted: say so
    /// at start-up rather than answer 503 for ever.
    pub(crate) fn check_budget(&self, config: &Config) -> Result<(), ConfigError> {
        let budget = config.server.memory_budget;
        let dir_default = config
            .functions_dir
            .as_ref()
            .map(|_| ("functions_dir", &config.defaults));
        let named = config
            .functions
            .iter()
            .map(|f| (f.name.as_str(), &f.limits));
        for (name, limits) in dir_default.into_iter().chain(named) {
            let reserved = limits.memory.saturating_add(limits.max_response);
            if reserved > budget {
                return Err(ConfigError {
                    file: self.file.to_owned(),
                    line: None,
                    message: format!(
                        "`memory` plus `max_response` of {name} ({} + {} bytes) is larger than `memory_budget` ({budget} bytes): it could never run",
                        limits.memory, limits.max_response
                    ),
                });
            }
        }
        Ok(())
    }

    /// `methods`: HTTP tokens (RFC 9110 §5.6.2), matched case-insensitively
    /// by normalising them to upper case (request methods are compared as
    /// sent, and every registered method is upper case). An empty list would
    /// match nothing and is refused.
    fn methods(&self, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ConfigError> {
        if list.get_ref().is_empty() {
            return self.error(
                list.span(),
                "`methods` is empty: the function could never be called (leave the key out to allow every method)".to_owned(),
            );
        }
        let mut out: Vec<String> = Vec::new();
        for m in list.into_inner() {
            let upper = m.get_ref().to_ascii_uppercase();
            if upper.is_empty() || !upper.bytes().all(is_token_byte) {
                return self.error(
                    m.span(),
                    format!(
                        "`methods`: {:?} is not an HTTP method (a token like \"GET\")",
                        m.get_ref()
                    ),
                );
            }
            if !out.contains(&upper) {
                out.push(upper);
            }
        }
        Ok(out)
    }

    fn function(
        &self,
        f: RawFunction,
        base: &Path,
        defaults: &FunctionLimits,
        fuel_per_ms: Option<u64>,
    ) -> Result<FunctionSpec, ConfigError> {
        let route_text = f.route.get_ref();
        let (route, prefix) = match route_text.strip_suffix("/*") {
            Some(r) => (if r.is_empty() { "/" } else { r }, true),
            None => (route_text.as_str(), false),
        };
        if !route.starts_with('/')
            || route.contains(['?', '#', '*'])
            || route.contains(|c: char| c.is_control() || c.is_whitespace())
        {
            return self.error(
                f.route.span(),
                format!("`route` must be a path starting with `/` (optionally ending in `/*`), got {route_text:?}"),
            );
        }
        let module = base.join(f.module.get_ref());
        let name = match &f.name {
            Some(n) => n.get_ref().clone(),
            None => module
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if name.contains(char::is_control) {
            let span = f.name.as_ref().unwrap_or(&f.module).span();
            return self.error(
                span,
                format!("`name` {name:?} contains a control character (it is written to logs)"),
            );
        }
        let methods = match f.methods {
            None => None,
            Some(list) => Some(self.methods(list)?),
        };
        let abi = match &f.abi {
            None => AbiChoice::Auto,
            Some(a) => match a.get_ref().as_str() {
                "auto" => AbiChoice::Auto,
                "native" => AbiChoice::Native,
                "wasi-json" => AbiChoice::WasiJson,
                other => {
                    return self.error(
                        a.span(),
                        format!(
                            "`abi` must be \"auto\", \"native\" or \"wasi-json\", got {other:?}"
                        ),
                    );
                }
            },
        };
        let limits = match &f.limits {
            Some(l) => self.limits(l, defaults, fuel_per_ms)?,
            None => defaults.clone(),
        };
        // The guest reads `environ` as `NAME=value` strings and both `environ`
        // and `args` as NUL-terminated strings: a `=` in a name or a NUL
        // anywhere would reach it as a different variable or a cut string.
        let (env, env_span) = match f.env {
            Some(e) => {
                let span = e.span();
                (e.into_inner(), span)
            }
            None => (BTreeMap::new(), 0..0),
        };
        for (key, value) in &env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return self.error(
                    env_span,
                    format!(
                        "`env` name {key:?} must be non-empty, without `=` or NUL (the guest reads `NAME=value`)"
                    ),
                );
            }
            if value.contains('\0') {
                return self.error(
                    env_span,
                    format!("`env` value of {key:?} contains a NUL (the guest reads NUL-terminated strings)"),
                );
            }
        }
        let (args, args_span) = match f.args {
            Some(a) => {
                let span = a.span();
                (a.into_inner(), span)
            }
            None => (Vec::new(), 0..0),
        };
        if let Some((i, arg)) = args.iter().enumerate().find(|(_, a)| a.contains('\0')) {
            return self.error(
                args_span,
                format!("`args` item {i} ({arg:?}) contains a NUL (the guest reads NUL-terminated strings)"),
            );
        }
        Ok(FunctionSpec {
            name,
            route: route.to_owned(),
            prefix,
            module,
            methods,
            abi,
            env: env.into_iter().collect(),
            args,
            limits,
            from_functions_dir: false,
        })
    }
}

/// Whether `b` may appear in an HTTP token (RFC 9110 §5.6.2 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `n` as a `T` if it is in `range`.
fn in_range<T: TryFrom<u64>>(n: Option<u64>, range: &RangeInclusive<u64>) -> Option<T> {
    n.filter(|n| range.contains(n))
        .and_then(|n| T::try_from(n).ok())
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
