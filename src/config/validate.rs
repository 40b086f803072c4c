//! Raw input → the validated [`Config`]: every key's range,
//! the checks between keys, and errors naming the file, line and key.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::raw::{
    RawConfig, RawFunction, RawLimits, RawMiddleware, RawProxy, RawServer, RawSignatures, RawState,
    Upstreams,
};
use super::text::ConfigText;
use super::toml::{self, Spanned, Value};
use super::units::{parse_duration, show_duration, show_size};
use super::{AbiChoice, Config, FunctionSpec, MiddlewareSpec, ProxySpec, StateConfig, Upstream};
use crate::error::ConfigError;
use crate::limits::{
    BODY_SHARE_DIVISOR, FunctionLimits, MAX_FUEL, PlainOutput, ProxyLimits, ServerLimits,
};
use crate::signature::{self, Signatures};

/// Function limits from `raw` over `base`. With `fuel_per_ms` known, a
/// `timeout` given without a `fuel` at the same level also sets the fuel
/// budget to what the timeout is worth on this board, and the CPU-time
/// backstop to twice the timeout: the budget decides, the clock only backs
/// it up.
pub(crate) fn function_limits(
    input: &ConfigText,
    raw: &RawLimits,
    base: &FunctionLimits,
    fuel_per_ms: Option<u64>,
) -> Result<FunctionLimits, ConfigError> {
    let mut limits = base.clone();
    raw.apply(input, &mut limits)?;
    if let Some(value) = &raw.plain_output {
        limits.plain_output = plain_output(input, value)?;
    }
    if let (None, Some(_), Some(per_ms)) = (&raw.fuel, &raw.timeout, fuel_per_ms) {
        // At most 8.64e10 µs × 1e8 per ms (both ranges): no overflow,
        // and the result is within FUEL_RANGE; clamped all the same.
        let fuel = limits.timeout.as_micros().saturating_mul(per_ms.into()) / 1000;
        limits.fuel = u64::try_from(fuel).unwrap_or(MAX_FUEL).clamp(1, MAX_FUEL);
        limits.timeout = limits.timeout.saturating_mul(2);
    }
    Ok(limits)
}

/// `plain_output`: one of [`PlainOutput::NAMES`].
fn plain_output(input: &ConfigText, value: &Spanned<String>) -> Result<PlainOutput, ConfigError> {
    match PlainOutput::NAMES
        .iter()
        .find(|(name, _)| *name == value.get_ref().as_str())
    {
        Some((_, choice)) => Ok(*choice),
        None => input.error(
            value.span(),
            format!(
                "`plain_output` must be \"text\" or \"refuse\", got {:?}",
                value.get_ref()
            ),
        ),
    }
}

/// Server limits from `s` over `d`.
pub(crate) fn server_limits(
    input: &ConfigText,
    s: &RawServer,
    d: &ServerLimits,
) -> Result<ServerLimits, ConfigError> {
    let mut limits = d.clone();
    s.apply(input, &mut limits)?;
    limits.retry_after_secs = retry_after(input, s, d)?;
    if let Some(value) = &s.log_format {
        limits.log_json = match value.get_ref().as_str() {
            "text" => false,
            "json" => true,
            other => {
                return input.error(
                    value.span(),
                    format!("`log_format` must be \"text\" or \"json\", got {other:?}"),
                );
            }
        };
    }
    if let Some(value) = &s.allow_encoded_slash {
        limits.allow_encoded_slash = *value.get_ref();
    }
    // Bodies being read may hold at most a share of the budget.
    if limits.max_body > limits.memory_budget / BODY_SHARE_DIVISOR {
        let span = s.max_body.as_ref().or(s.memory_budget.as_ref());
        return input.error(
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
fn retry_after(input: &ConfigText, s: &RawServer, d: &ServerLimits) -> Result<u32, ConfigError> {
    let Some(value) = &s.retry_after else {
        return Ok(d.retry_after_secs);
    };
    let after: Duration = input.read("retry_after", value, &ServerLimits::RETRY_AFTER_RANGE)?;
    match (after.subsec_nanos(), u32::try_from(after.as_secs())) {
        (0, Ok(secs)) => Ok(secs),
        _ => input.error(
            value.span(),
            format!(
                "`retry_after` must be whole seconds, got {}",
                show_duration(after)
            ),
        ),
    }
}

/// `raw` over `defaults` (the built-in ones or a board's): relative paths
/// are under `base`.
pub(crate) fn validate(
    input: &ConfigText,
    raw: RawConfig,
    base: &Path,
    defaults: Config,
) -> Result<Config, ConfigError> {
    let mut config = defaults;
    if let Some(s) = raw.server {
        if let Some(listen) = &s.listen {
            config.listen = match Config::parse_listen(listen.get_ref()) {
                Ok(addr) => addr,
                Err(why) => return input.error(listen.span(), format!("`listen`: {why}")),
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
                return input.error(
                    dir.span(),
                    format!("`functions_dir` {:?} {why}", path.display().to_string()),
                );
            }
            config.functions_dir = Some(path);
        }
        if let Some(per_ms) = input.fuel_per_ms(&s.fuel_per_ms)? {
            config.fuel_per_ms = Some(per_ms);
        }
        config.server = server_limits(input, &s, &config.server)?;
    }
    if let Some(admin) = &raw.admin {
        config.admin = Some(match &admin.listen {
            None => super::DEFAULT_ADMIN_LISTEN,
            Some(listen) => match Config::parse_listen(listen.get_ref()) {
                Ok(addr) => addr,
                Err(why) => return input.error(listen.span(), format!("`admin.listen`: {why}")),
            },
        });
    }
    if let Some(s) = &raw.signatures {
        config.server.signatures = signatures(input, s)?;
    }
    if let Some(dumps) = &raw.dumps {
        let mut config_dumps = super::DumpsConfig::new(base.join(dumps.dir.get_ref()));
        dumps.apply(input, &mut config_dumps)?;
        config.dumps = Some(config_dumps);
    }
    if let Some(st) = &raw.state {
        state(input, st, base, &mut config.state)?;
    }
    if let Some(l) = &raw.limits {
        config.defaults = function_limits(input, l, &config.defaults, config.fuel_per_ms)?;
    }
    // Duplicates are found through maps, not by scanning the entries so
    // far: a config of thousands of functions loads in linear time.
    let mut users = Vec::new();
    // Each middleware by its name, for the lists that use it.
    let mut defined: HashMap<String, Arc<MiddlewareSpec>> = HashMap::new();
    for m in raw.middleware {
        if defined.contains_key(m.name.get_ref()) {
            return input.error(
                m.name.span(),
                format!("[[middleware]] name {:?} is used twice", m.name.get_ref()),
            );
        }
        let span = m.kv.as_ref().unwrap_or(&m.name).span();
        let spec = middleware(input, m, base, &config.defaults, config.fuel_per_ms)?;
        users.push(NamespaceUser {
            who: format!("middleware `{}`", spec.name),
            namespace: spec.namespace().to_owned(),
            explicit: spec.kv.is_some(),
            program: (spec.module.clone(), Vec::new(), Vec::new()),
            span,
        });
        let spec = Arc::new(spec);
        defined.insert(spec.name.clone(), Arc::clone(&spec));
        config.middleware.push(spec);
    }
    // The first entry given each route: a function's, then a proxy's.
    let mut routes: HashMap<(String, bool), String> = HashMap::new();
    // The first function given each name (those after it with the same
    // name run the same module, or the config is refused).
    let mut named: HashMap<String, usize> = HashMap::new();
    for f in raw.functions {
        let chain = match &f.middleware {
            Some(names) => middleware_list(input, names, &defined)?,
            None => Vec::new(),
        };
        let name_span = f.name.as_ref().unwrap_or(&f.module).span();
        let kv_span = f.kv.as_ref().map_or(name_span.clone(), Spanned::span);
        let written = format!(
            "(route `{}`, module {:?})",
            f.route.get_ref(),
            f.module.get_ref()
        );
        let mut spec = function(input, f, base, &config.defaults, config.fuel_per_ms)?;
        spec.middleware = chain;
        if let Some(other) = claim_route(&mut routes, &spec.route, spec.prefix, &spec.name) {
            return Err(input.file_error(format!(
                "route `{}` is given to both `{other}` and `{}`",
                spec.route, spec.name
            )));
        }
        let user = NamespaceUser {
            who: format!("function `{}` {written}", spec.name),
            namespace: spec.namespace().to_owned(),
            explicit: spec.kv.is_some(),
            program: (spec.module.clone(), spec.env.clone(), spec.args.clone()),
            span: kv_span,
        };
        // One module served at several routes is one function and may keep
        // its name; two modules may not share one. `users` holds the
        // middleware, then the functions so far, in order.
        let first = named.get(&spec.name).map(|&i| {
            let user = users.get(config.middleware.len().saturating_add(i));
            (config.functions.get(i), user)
        });
        if let Some((Some(other), Some(other_user))) = first
            && other.module != spec.module
        {
            let shared = match other.kv.is_none() && spec.kv.is_none() {
                true => format!(", and they would share KV namespace {:?}", spec.name),
                false => String::new(),
            };
            return input.error(
                name_span,
                format!(
                    "{} has the name of {}: logs, metrics and error bodies would not tell them apart{shared}; set a distinct `name` on one",
                    user.who, other_user.who
                ),
            );
        }
        users.push(user);
        named
            .entry(spec.name.clone())
            .or_insert(config.functions.len());
        config.functions.push(spec);
    }
    namespaces(input, users)?;
    if let Some(g) = &raw.gateway {
        let route_key = [
            ("name", g.name.as_ref().map(Spanned::span)),
            ("route", g.route.as_ref().map(Spanned::span)),
            ("upstream", g.upstream.as_ref().map(Spanned::span)),
            ("middleware", g.middleware.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(span))) = route_key.into_iter().find(|(_, s)| s.is_some()) {
            return input.error(
                span,
                format!("`{key}` belongs in a `[[proxy]]` table; `[gateway]` only sets the defaults of their other keys"),
            );
        }
        g.apply(input, &mut config.gateway)?;
    }
    for p in raw.proxies {
        let spec = proxy(input, p, &config.gateway, &defined)?;
        if let Some(other) = claim_route(&mut routes, &spec.route, spec.prefix, &spec.name) {
            return Err(input.file_error(format!(
                "route `{}` is given to both `{other}` and proxy `{}`",
                spec.route, spec.name
            )));
        }
        config.proxies.push(spec);
    }
    check_budget(input, &config)?;
    Ok(config)
}

/// Gives `route` (a prefix route if `prefix`) to `name` in `routes`,
/// unless an entry has it already: then that entry's name.
fn claim_route<'r>(
    routes: &'r mut HashMap<(String, bool), String>,
    route: &str,
    prefix: bool,
    name: &str,
) -> Option<&'r str> {
    match routes.entry((route.to_owned(), prefix)) {
        std::collections::hash_map::Entry::Occupied(other) => Some(other.into_mut().as_str()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(name.to_owned());
            None
        }
    }
}

/// A module with its `env` and `args` (a middleware has neither): one
/// program, wherever it is served.
type Program = (PathBuf, Vec<(String, String)>, Vec<String>);

/// A function or middleware as the owner of a KV namespace, for
/// [`namespaces`].
struct NamespaceUser {
    /// How errors name it: "function `a` (route `/a`, module "a.wasm")" or
    /// "middleware `m`".
    who: String,
    /// Its namespace: its `kv`, else its name.
    namespace: String,
    /// Whether `kv` set it.
    explicit: bool,
    /// What it runs.
    program: Program,
    /// Where errors about it point: its `kv`, else its `name`, else its
    /// `module` (whose file stem is then its name).
    span: Range<usize>,
}

/// A namespace that is a name by default belongs to that function or
/// middleware alone: otherwise `tenants/a/handler.wasm` and
/// `tenants/b/handler.wasm`, both named `handler` after their file stem,
/// would read and overwrite each other's keys. Two share one when a `kv`
/// names it (on both, or on one, naming the other's), or when they are one
/// [`Program`] served at several routes (an http-wasm module as a
/// middleware and as a function too). A name
/// used as a namespace is held to `kv`'s length, which the log's record
/// bound assumes (see [`StateConfig::ENTRY_OVERHEAD`]). The error points
/// at the later of two in the file.
fn namespaces(input: &ConfigText, mut users: Vec<NamespaceUser>) -> Result<(), ConfigError> {
    users.sort_by_key(|u| u.span.start);
    // The first user of each name-namespace: those after it with the same
    // one run the same program, or the config is refused.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        if user.explicit {
            continue;
        }
        let max = StateConfig::MAX_NAMESPACE;
        if user.namespace.len() > max {
            return input.error(
                user.span.clone(),
                format!(
                    "{}: its name is its KV namespace, which may be at most {max} bytes, not {}; set a shorter `name` or a `kv`",
                    user.who,
                    user.namespace.len()
                ),
            );
        }
        let other = *first.entry(user.namespace.as_str()).or_insert(i);
        let Some(other) = users.get(other).filter(|o| o.program != user.program) else {
            continue;
        };
        return input.error(
            user.span.clone(),
            format!(
                "{} would share KV namespace {:?} with {}: without `kv` a namespace is the name, and belongs to that one alone; set a distinct `name` or `kv` on one (the same `kv` on both shares it on purpose)",
                user.who, user.namespace, other.who
            ),
        );
    }
    Ok(())
}

/// `[signatures]`: each trusted key 64 hex digits of a curve point
/// (duplicates are dropped), and `require` only with a key to require.
fn signatures(input: &ConfigText, raw: &RawSignatures) -> Result<Signatures, ConfigError> {
    let mut out = Signatures::default();
    for (n, key) in raw
        .trusted_keys
        .iter()
        .flat_map(|k| k.get_ref())
        .enumerate()
    {
        let parsed = match signature::parse_public_key(key.get_ref()) {
            Ok(parsed) => parsed,
            Err(why) => {
                return input.error(
                    key.span(),
                    format!(
                        "`trusted_keys` entry {} ({:?}) is not a raw Ed25519 public key in hex: {why}",
                        n + 1,
                        key.get_ref()
                    ),
                );
            }
        };
        if !out.trusted_keys.contains(&parsed) {
            out.trusted_keys.push(parsed);
        }
    }
    if let Some(require) = &raw.require {
        out.require = *require.get_ref();
        if out.require && out.trusted_keys.is_empty() {
            return input.error(
                require.span(),
                "`require = true` needs at least one key in `trusted_keys`: no module could load"
                    .to_owned(),
            );
        }
    }
    Ok(out)
}

/// A function whose `memory` plus `max_response` (what admission
/// reserves) exceeds the whole budget could never be admitted: say so
/// at start-up rather than answer 503 for ever.
pub(crate) fn check_budget(input: &ConfigText, config: &Config) -> Result<(), ConfigError> {
    let budget = config.server.memory_budget;
    let dir_default = config
        .functions_dir
        .as_ref()
        .map(|_| ("functions_dir", &config.defaults));
    let named = config
        .functions
        .iter()
        .map(|f| (f.name.as_str(), &f.limits));
    let middleware = config
        .middleware
        .iter()
        .map(|m| (m.name.as_str(), &m.limits));
    for (name, limits) in dir_default.into_iter().chain(named).chain(middleware) {
        if let Some(message) = over_budget(name, limits, budget) {
            return Err(input.file_error(message));
        }
    }
    Ok(())
}

/// Why function `name` with `limits` could never be admitted under
/// `budget` (`memory_budget`), if it could not: its `memory` plus its
/// `max_response` are what admission reserves. `wasmgate run` and `check`
/// apply it after their `--memory` flag too.
pub(crate) fn over_budget(name: &str, limits: &FunctionLimits, budget: u64) -> Option<String> {
    let reserved = limits.memory.saturating_add(limits.max_response);
    (reserved > budget).then(|| format!(
        "`memory` plus `max_response` of {name} ({} + {} bytes) is larger than `memory_budget` ({budget} bytes): it could never run",
        limits.memory, limits.max_response
    ))
}

/// `methods`: HTTP tokens (RFC 9110 §5.6.2), matched case-insensitively
/// by normalising them to upper case (request methods are compared as
/// sent, and every registered method is upper case). An empty list would
/// match nothing and is refused.
fn methods(
    input: &ConfigText,
    list: Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<String>, ConfigError> {
    if list.get_ref().is_empty() {
        return input.error(
            list.span(),
            "`methods` is empty: the function could never be called (leave the key out to allow every method)".to_owned(),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for m in list.into_inner() {
        let upper = m.get_ref().to_ascii_uppercase();
        if upper.is_empty() || !upper.bytes().all(is_token_byte) {
            return input.error(
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
    input: &ConfigText,
    f: RawFunction,
    base: &Path,
    defaults: &FunctionLimits,
    fuel_per_ms: Option<u64>,
) -> Result<FunctionSpec, ConfigError> {
    let (route, prefix) = route(input, &f.route)?;
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
        return input.error(
            span,
            format!("`name` {name:?} contains a control character (it is written to logs)"),
        );
    }
    let methods = match f.methods {
        None => None,
        Some(list) => Some(methods(input, list)?),
    };
    let abi = match &f.abi {
        None => AbiChoice::Auto,
        Some(a) => match a.get_ref().as_str() {
            "auto" => AbiChoice::Auto,
            "native" => AbiChoice::Native,
            "wasi-json" => AbiChoice::WasiJson,
            other => {
                return input.error(
                    a.span(),
                    format!("`abi` must be \"auto\", \"native\" or \"wasi-json\", got {other:?}"),
                );
            }
        },
    };
    let limits = match &f.limits {
        Some(l) => function_limits(input, l, defaults, fuel_per_ms)?,
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
            return input.error(
                env_span,
                format!(
                    "`env` name {key:?} must be non-empty, without `=` or NUL (the guest reads `NAME=value`)"
                ),
            );
        }
        if value.contains('\0') {
            return input.error(
                env_span,
                format!(
                    "`env` value of {key:?} contains a NUL (the guest reads NUL-terminated strings)"
                ),
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
        return input.error(
            args_span,
            format!(
                "`args` item {i} ({arg:?}) contains a NUL (the guest reads NUL-terminated strings)"
            ),
        );
    }
    Ok(FunctionSpec {
        name,
        route,
        prefix,
        module,
        methods,
        abi,
        env: env.into_iter().collect(),
        args,
        limits,
        kv: f.kv.as_ref().map(|ns| namespace(input, ns)).transpose()?,
        middleware: Vec::new(),
        from_functions_dir: false,
    })
}

/// The `[state]` table over `state`'s defaults (the built-in ones or a
/// board's).
pub(crate) fn state(
    input: &ConfigText,
    raw: &RawState,
    base: &Path,
    state: &mut StateConfig,
) -> Result<(), ConfigError> {
    if let Some(dir) = &raw.dir {
        state.dir = base.join(dir.get_ref());
    }
    if let Some(sync) = &raw.sync {
        state.sync = match sync.get_ref().as_str() {
            "always" => None,
            text => match parse_duration(text) {
                Ok(d) if STATE_SYNC_RANGE.contains(&d) => Some(d),
                _ => {
                    return input.error(
                        sync.span(),
                        format!(
                            "`sync` must be \"always\" or an interval from 1ms to 10s such as \"100ms\", got {text:?}"
                        ),
                    );
                }
            },
        };
    }
    raw.apply(input, &mut state.limits)
}

/// Group-commit intervals: 1 ms..=10 s. Longer loses more than a board's
/// operator expects from "a power cut loses the last moment".
const STATE_SYNC_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(10);

/// A `kv` namespace name: 1 to [`StateConfig::MAX_NAMESPACE`] (128)
/// bytes of `A-Z a-z 0-9 . _ -` (it is shown in logs and typed on the
/// `wasmgate kv` command line).
fn namespace(input: &ConfigText, ns: &Spanned<String>) -> Result<String, ConfigError> {
    let name = ns.get_ref();
    let ok = (1..=StateConfig::MAX_NAMESPACE).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return input.error(
            ns.span(),
            format!("`kv` must be 1 to 128 letters, digits, `.`, `_` or `-`, got {name:?}"),
        );
    }
    Ok(name.clone())
}

/// One `[[middleware]]`: a unique, printable name, the module, its
/// `config` turned into the JSON the guest reads, its limits.
fn middleware(
    input: &ConfigText,
    m: RawMiddleware,
    base: &Path,
    defaults: &FunctionLimits,
    fuel_per_ms: Option<u64>,
) -> Result<MiddlewareSpec, ConfigError> {
    let name = m.name.get_ref();
    if name.is_empty() || name.contains(char::is_control) {
        return input.error(
            m.name.span(),
            format!("middleware `name` {name:?} must be non-empty, without control characters (it is written to logs)"),
        );
    }
    let (config, dump_config): (Arc<[u8]>, Arc<[u8]>) = match &m.config {
        None => (Arc::from(&b""[..]), Arc::from(&b""[..])),
        Some(value) => {
            let (resolved, redacted) = with_env(input, value)?;
            let json = |value: &Value| {
                let mut json = String::new();
                toml::to_json(value, &mut json);
                Arc::from(json.into_bytes())
            };
            (json(&resolved), json(&redacted))
        }
    };
    let limits = match &m.limits {
        Some(l) => function_limits(input, l, defaults, fuel_per_ms)?,
        None => defaults.clone(),
    };
    Ok(MiddlewareSpec {
        name: name.clone(),
        module: base.join(m.module.get_ref()),
        config,
        dump_config,
        limits,
        kv: m.kv.as_ref().map(|ns| namespace(input, ns)).transpose()?,
    })
}

/// A middleware's `config` with each top-level `NAME_env = "VAR"` replaced
/// by `NAME = "<value of $VAR>"`: a guest has no environment of its own,
/// and a secret belongs in the environment, not in the config file. An
/// unset or non-UTF-8 variable, or both `NAME` and `NAME_env`, is an error.
/// Also the same config with `NAME = "<redacted: $VAR>"` instead
/// ([`redacted`]), what crash dumps hold.
fn with_env(input: &ConfigText, value: &Spanned<Value>) -> Result<(Value, Value), ConfigError> {
    // Dumps hold `<redacted: $VAR>` for a value from the environment, and
    // replay puts `$VAR` back wherever it reads one: a config that holds
    // the text itself would be replayed as another config.
    if holds_placeholder(value.get_ref()) {
        return input.error(
            value.span(),
            "middleware `config` holds the text `<redacted: $`, which crash dumps use for values taken from the environment: use `NAME_env` for those".to_owned(),
        );
    }
    let Value::Table(table) = value.get_ref() else {
        return Ok((value.get_ref().clone(), value.get_ref().clone()));
    };
    let mut out = table.clone();
    let mut redacted_out = table.clone();
    for (key, v) in table.iter() {
        let (Some(name), Value::String(var)) = (key.strip_suffix("_env"), v) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if table.contains_key(name) {
            return input.error(
                value.span(),
                format!("middleware `config` sets both `{name}` and `{key}`: keep one"),
            );
        }
        let Some(resolved) = std::env::var_os(var) else {
            return input.error(
                value.span(),
                format!(
                    "middleware `config` key `{key}`: the environment variable {var:?} is not set"
                ),
            );
        };
        let Ok(resolved) = resolved.into_string() else {
            return input.error(
                value.span(),
                format!(
                    "middleware `config` key `{key}`: the environment variable {var:?} is not UTF-8"
                ),
            );
        };
        out.rename(key, name.to_owned(), Value::String(resolved));
        redacted_out.rename(key, name.to_owned(), Value::String(redacted(var)));
    }
    Ok((Value::Table(out), Value::Table(redacted_out)))
}

/// Whether `value` (any string in it, keys included) holds the text of a
/// [`redacted`] placeholder.
fn holds_placeholder(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(REDACTED),
        Value::Array(items) => items.iter().any(|v| holds_placeholder(v.get_ref())),
        Value::Table(table) => table
            .iter()
            .any(|(key, v)| key.contains(REDACTED) || holds_placeholder(v)),
        _ => false,
    }
}

/// What a crash dump holds in place of a config value taken from the
/// environment variable `var`: `<redacted: $VAR>` (`wasmgate replay`
/// reads `$VAR` from its own environment).
pub fn redacted(var: &str) -> String {
    format!("{REDACTED}{var}>")
}

/// How a [`redacted`] placeholder begins; `>` ends it.
pub const REDACTED: &str = "<redacted: $";

/// `route`: a path starting with `/`, a trailing `/*` making it a prefix
/// route; the same syntax for `[[function]]` and `[[proxy]]`.
fn route(input: &ConfigText, text: &Spanned<String>) -> Result<(String, bool), ConfigError> {
    let route_text = text.get_ref();
    let (route, prefix) = match route_text.strip_suffix("/*") {
        Some(r) => (if r.is_empty() { "/" } else { r }, true),
        None => (route_text.as_str(), false),
    };
    if !route.starts_with('/')
        || route.contains(['?', '#', '*'])
        || route.contains(|c: char| c.is_control() || c.is_whitespace())
    {
        return input.error(
            text.span(),
            format!("`route` must be a path starting with `/` (optionally ending in `/*`), got {route_text:?}"),
        );
    }
    // Requests route with their encoded unreserved characters decoded
    // (`/%61dmin` is `/admin`): a route spelled encoded would match
    // nothing.
    if let Some(escape) = encoded_unreserved(route) {
        return input.error(
            text.span(),
            format!("`route` has {escape:?}, which requests do not route as written (an unreserved character routes plain, other escapes with upper-case hex): write it plain or upper case, got {route_text:?}"),
        );
    }
    Ok((route.to_owned(), prefix))
}

/// The first `%XX` in `route` that requests would not route as written:
/// one that encodes an unreserved character (RFC 3986 §2.3: `A-Z a-z 0-9 -
/// . _ ~`, routed decoded) or has lower-case hex digits (routed upper
/// case).
fn encoded_unreserved(route: &str) -> Option<&str> {
    route.match_indices('%').find_map(|(i, _)| {
        let escape = route.get(i..i + 3)?;
        let hex = escape.get(1..)?;
        let byte = u8::from_str_radix(hex, 16).ok()?;
        (byte.is_ascii_alphanumeric()
            || b"-._~".contains(&byte)
            || hex.bytes().any(|b| b.is_ascii_lowercase()))
        .then_some(escape)
    })
}

/// One `[[proxy]]` table over the `[gateway]` defaults.
fn proxy(
    input: &ConfigText,
    p: RawProxy,
    defaults: &ProxyLimits,
    defined: &HashMap<String, Arc<MiddlewareSpec>>,
) -> Result<ProxySpec, ConfigError> {
    let Some(route_text) = &p.route else {
        return Err(input.file_error("a `[[proxy]]` table needs a `route`".to_owned()));
    };
    let (route, prefix) = route(input, route_text)?;
    let Some(list) = &p.upstream else {
        return input.error(
            route_text.span(),
            format!(
                "proxy `{}` needs an `upstream` (\"http://host:port\" or a list of them)",
                route_text.get_ref()
            ),
        );
    };
    let urls = match list.get_ref() {
        Upstreams::One(url) => std::slice::from_ref(url),
        Upstreams::Many(urls) => urls.as_slice(),
    };
    if urls.is_empty() {
        return input.error(list.span(), "`upstream` is an empty list".to_owned());
    }
    let mut upstreams = Vec::new();
    for url in urls {
        match upstream(url) {
            Ok(u) => upstreams.push(u),
            Err(why) => return input.error(list.span(), format!("`upstream` {url:?}: {why}")),
        }
    }
    let name = match &p.name {
        Some(n) => n.get_ref().clone(),
        None => route_text.get_ref().clone(),
    };
    if name.contains(char::is_control) {
        let span = p.name.as_ref().map_or(0..0, Spanned::span);
        return input.error(
            span,
            format!("`name` {name:?} contains a control character (it is written to logs)"),
        );
    }
    let middleware = match &p.middleware {
        Some(list) => middleware_list(input, list, defined)?,
        None => Vec::new(),
    };
    let mut limits = defaults.clone();
    p.apply(input, &mut limits)?;
    Ok(ProxySpec {
        name,
        route,
        prefix,
        upstreams,
        middleware,
        limits,
    })
}

/// A `middleware` list: every name a `[[middleware]]` defined before it
/// is used (`defined`, by name). A name may appear once.
pub(crate) fn middleware_list(
    input: &ConfigText,
    names: &Spanned<Vec<Spanned<String>>>,
    defined: &HashMap<String, Arc<MiddlewareSpec>>,
) -> Result<Vec<Arc<MiddlewareSpec>>, ConfigError> {
    let mut chain: Vec<Arc<MiddlewareSpec>> = Vec::new();
    let mut listed = HashSet::new();
    for name in names.get_ref() {
        let Some(spec) = defined.get(name.get_ref()) else {
            return input.error(
                name.span(),
                format!(
                    "`middleware`: no [[middleware]] is named {:?}",
                    name.get_ref()
                ),
            );
        };
        if !listed.insert(name.get_ref().as_str()) {
            return input.error(
                name.span(),
                format!("`middleware`: {:?} is listed twice", name.get_ref()),
            );
        }
        chain.push(Arc::clone(spec));
    }
    Ok(chain)
}

/// Parses an upstream URL: `http://HOST[:PORT][/]`, HOST an IPv4 address,
/// an IPv6 address in brackets or a DNS name. No other scheme, no
/// credentials, no path, query or fragment: the request's own target is
/// what is sent.
fn upstream(url: &str) -> Result<Upstream, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// upstreams are supported")?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) || !authority.is_ascii() {
        return Err("must be http://HOST[:PORT], with no path, query or credentials".to_owned());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("invalid port {p:?}"))?,
        ),
        _ => (authority, 80),
    };
    let bare = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
            v6
        }
        None => {
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(format!("{host:?} is not a host name or address"));
            }
            host
        }
    };
    if port == 0 {
        return Err("port 0 is not a port to connect to".to_owned());
    }
    Ok(Upstream {
        url: url.to_owned(),
        host: bare.to_owned(),
        port,
        authority: match port {
            80 => host.to_owned(),
            _ => format!("{host}:{port}"),
        },
    })
}

/// Whether `b` may appear in an HTTP token (RFC 9110 §5.6.2 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
