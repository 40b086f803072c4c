//! Which function or reverse proxy serves a request: exact routes first,
//! then the longest prefix route (`[[function]]` and `[[proxy]]` routes
//! alike), then `functions_dir/NAME.wasm` for `/NAME` and `/NAME/...`.
//!
//! Routing never touches the filesystem: whether `NAME.wasm` exists is the
//! module cache's question, asked once per `module_check_interval` for a
//! module it holds (two `stat` calls per request were ~7% of the CPU).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::proxy::Proxy;
use crate::config::{Config, FunctionSpec};
use crate::limits::FunctionLimits;

/// The outcome of routing one request.
pub enum Match {
    /// This function serves it.
    Found(Arc<FunctionSpec>),
    /// This reverse proxy serves it (every method).
    Proxy(Arc<Proxy>),
    /// A route matches the path but not the method: the function and the
    /// methods it allows.
    MethodNotAllowed(Arc<FunctionSpec>, String),
    /// Nothing serves this path.
    NotFound,
}

/// Routes built once from the config, shared by every executor thread (so
/// the functions are `Arc`s).
pub struct Router {
    /// Exact routes in config order, and where each route is in it.
    exact: Vec<Target>,
    exact_at: HashMap<String, usize>,
    /// Prefix routes, longest first, and where each route is in it.
    prefix: Vec<Target>,
    prefix_at: HashMap<String, usize>,
    dir: Option<(PathBuf, FunctionLimits)>,
    /// KV namespaces of configured functions and middleware, and the
    /// module holding each (`None`: several).
    namespaces: HashMap<String, Option<PathBuf>>,
}

/// What a configured route leads to.
#[derive(Clone)]
enum Target {
    Function(Arc<FunctionSpec>),
    Proxy(Arc<Proxy>),
}

impl Target {
    /// The route, without a trailing `/*`, and whether it is a prefix.
    fn route(&self) -> (&str, bool) {
        match self {
            Target::Function(f) => (&f.route, f.prefix),
            Target::Proxy(p) => (&p.spec.route, p.spec.prefix),
        }
    }
}

impl std::fmt::Debug for Match {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Match::Found(spec) => write!(f, "Found({})", spec.name),
            Match::Proxy(p) => write!(f, "Proxy({})", p.spec.name),
            Match::MethodNotAllowed(spec, allow) => {
                write!(f, "MethodNotAllowed({}, {allow})", spec.name)
            }
            Match::NotFound => f.write_str("NotFound"),
        }
    }
}

impl Router {
    /// Builds the routing table.
    pub fn new(config: &Config) -> Self {
        let functions = config
            .functions
            .iter()
            .map(|f| Target::Function(Arc::new(f.clone())));
        let proxies = config
            .proxies
            .iter()
            .map(|p| Target::Proxy(Arc::new(Proxy::new(p.clone(), &config.server))));
        let (prefix, exact): (Vec<_>, Vec<_>) = functions.chain(proxies).partition(|t| t.route().1);
        let mut prefix = prefix;
        prefix.sort_by_key(|t| std::cmp::Reverse(t.route().0.len()));
        // The first of any two entries with one route (validation refuses
        // those): what a scan in this order would find.
        let index = |targets: &[Target]| {
            let mut at = HashMap::new();
            for (i, t) in targets.iter().enumerate() {
                at.entry(t.route().0.to_owned()).or_insert(i);
            }
            at
        };
        let exact_at = index(&exact);
        let prefix_at = index(&prefix);
        // The namespaces configured functions and middleware hold, with the
        // module each belongs to (`None` once two modules share it).
        let mut namespaces: HashMap<String, Option<PathBuf>> = HashMap::new();
        let held = config
            .functions
            .iter()
            .map(|f| (f.namespace(), &f.module))
            .chain(config.middleware.iter().map(|m| (m.namespace(), &m.module)));
        for (ns, module) in held {
            namespaces
                .entry(ns.to_owned())
                .and_modify(|m| {
                    if m.as_ref() != Some(module) {
                        *m = None;
                    }
                })
                .or_insert_with(|| Some(module.clone()));
        }
        Self {
            exact,
            exact_at,
            prefix,
            prefix_at,
            namespaces,
            dir: config
                .functions_dir
                .clone()
                .map(|d| (d, config.defaults.clone())),
        }
    }

    /// Every `[[proxy]]` route (for the upstream metrics).
    pub fn proxies(&self) -> impl Iterator<Item = &Arc<Proxy>> {
        self.exact
            .iter()
            .chain(&self.prefix)
            .filter_map(|t| match t {
                Target::Proxy(p) => Some(p),
                Target::Function(_) => None,
            })
    }

    /// Routes `method` + `path` (the URI without its query). The decoder
    /// has refused dot-segments, fragments and non-ASCII targets and turned
    /// absolute-form into origin-form, so `path` routes as it reads and is
    /// the path the guest receives.
    ///
    /// A list of more than [`SCANNED_ROUTES`] routes is looked up by the
    /// path, not scanned: a proxied request behind 12,000 functions' routes
    /// took 85 µs of CPU by a scan and 29 µs by the maps (a few routes
    /// are scanned: no hashing of the path).
    pub fn route(&self, method: &str, path: &str) -> Match {
        // Matched with its encoded unreserved characters decoded, as the
        // routes are: `/%61dmin/x` is `/admin/x` to any server that
        // normalises it, so it must meet `/admin/*`'s middleware here.
        let path = &*crate::http::normalized(path);
        // An exact route takes its path with one trailing `/` too:
        // frameworks (Express by default) serve `/admin/` as `/admin`.
        let bare = path.strip_suffix('/').filter(|p| !p.is_empty());
        let exact = match self.exact.len() {
            n if n <= SCANNED_ROUTES => self.scan_exact(path, bare),
            // Of `/a/` and `/a`, both routes, the one first in the config
            // (as the scan finds).
            _ => [Some(path), bare]
                .into_iter()
                .flatten()
                .filter_map(|p| self.exact_at.get(p).copied())
                .min()
                .and_then(|i| self.exact.get(i)),
        };
        let configured = exact
            .or_else(|| match self.prefix.len() {
                n if n <= SCANNED_ROUTES => self.scan_prefix(path),
                // `prefix` is sorted longest first.
                _ => prefix_candidates(path, self.prefix.first().map_or(0, |t| t.route().0.len()))
                    .find_map(|p| self.prefix_at.get(p))
                    .and_then(|&i| self.prefix.get(i)),
            })
            .cloned();
        let found = match configured {
            Some(Target::Proxy(p)) => return Match::Proxy(p),
            Some(Target::Function(f)) => Some(f),
            None => self.in_dir(path),
        };
        match found {
            None => Match::NotFound,
            Some(f) => match &f.methods {
                Some(allowed) if !allowed.iter().any(|m| m == method) => {
                    let allow = allowed.join(", ");
                    Match::MethodNotAllowed(f, allow)
                }
                _ => Match::Found(f),
            },
        }
    }

    /// The first exact route that is `path` or `bare` (`path` without
    /// its trailing `/`), in config order.
    fn scan_exact(&self, path: &str, bare: Option<&str>) -> Option<&Target> {
        self.exact
            .iter()
            .find(|t| t.route().0 == path || Some(t.route().0) == bare)
    }

    /// The longest prefix route that matches `path`.
    fn scan_prefix(&self, path: &str) -> Option<&Target> {
        self.prefix
            .iter()
            .find(|t| prefix_matches(t.route().0, path))
    }

    fn in_dir(&self, path: &str) -> Option<Arc<FunctionSpec>> {
        let (dir, limits) = self.dir.as_ref()?;
        let rest = path.strip_prefix('/')?;
        let name = rest.split('/').next()?;
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return None;
        }
        let spec = FunctionSpec::from_dir(dir, name, limits);
        // Its KV namespace is its name: one a configured function or
        // middleware holds belongs to that one (unless it is the same
        // module), so the file is not served from the directory.
        if let Some(module) = self.namespaces.get(name)
            && module.as_deref() != Some(spec.module.as_path())
        {
            return None;
        }
        Some(Arc::new(spec))
    }
}

/// The most routes of one kind (exact, prefix) [`Router::route`] scans.
const SCANNED_ROUTES: usize = 8;

/// `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`.
fn prefix_matches(route: &str, path: &str) -> bool {
    route == "/"
        || path
            .strip_prefix(route)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The prefix routes of at most `longest` bytes that match `path`
/// ([`prefix_matches`]), longest first: the path, the path up to each `/`
/// in it from the last, then `/`. `/a/b` gives `/a/b`, `/a`, `/`. Only
/// the first `longest` bytes are looked at: a client's 8 KiB path of
/// slashes is not thousands of hashed prefixes.
fn prefix_candidates(path: &str, longest: usize) -> impl Iterator<Item = &str> {
    let whole = (path.len() <= longest).then_some(path);
    let head = path.get(..=longest).unwrap_or(path);
    let cuts = head
        .rmatch_indices('/')
        .filter_map(|(i, _)| path.get(..i))
        .filter(|p| !p.is_empty());
    whole.into_iter().chain(cuts).chain(std::iter::once("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn router(toml: &str) -> Router {
        // `functions_dir` must exist: `/` does, and nothing is read from it.
        Router::new(&Config::parse(toml, "t.toml", Path::new("/"), None).unwrap())
    }

    #[test]
    fn encoded_unreserved_characters_route_as_their_plain_form() {
        let r = router(
            "[[function]]\nroute=\"/admin/*\"\nmodule=\"admin.wasm\"\n[[function]]\nroute=\"/*\"\nmodule=\"all.wasm\"\n",
        );
        let name = |p: &str| match r.route("GET", p) {
            Match::Found(f) => f.name.clone(),
            other => panic!("{p}: {other:?}"),
        };
        for path in ["/admin/x", "/%61dmin/x", "/%61%64%6D%69%6e", "/admin/%7e"] {
            assert_eq!(name(path), "admin", "{path}");
        }
        // Reserved characters stay encoded: `%2f` never reaches the router
        // (the decoder refuses it), `%3a` is not `:` to a server either.
        for path in ["/adm%3ain/x", "/x/admin"] {
            assert_eq!(name(path), "all", "{path}");
        }
        // Hex digits in either case are one escape; an exact route takes a
        // trailing `/`.
        let r = router(
            "[[function]]\nroute=\"/a%3Ab/*\"\nmodule=\"ab.wasm\"\n[[function]]\nroute=\"/exact\"\nmodule=\"exact.wasm\"\n[[function]]\nroute=\"/*\"\nmodule=\"all.wasm\"\n",
        );
        let name = |p: &str| match r.route("GET", p) {
            Match::Found(f) => f.name.clone(),
            other => panic!("{p}: {other:?}"),
        };
        for (path, expected) in [
            ("/a%3ab/x", "ab"),
            ("/a%3Ab", "ab"),
            ("/exact", "exact"),
            ("/exact/", "exact"),
            ("/exact/x", "all"),
            ("/", "all"),
        ] {
            assert_eq!(name(path), expected, "{path}");
        }
    }

    /// What routing is with few routes: a scan of the exact routes in
    /// order, then of the prefix routes longest first.
    fn scanned<'r>(r: &'r Router, path: &str) -> Option<&'r Target> {
        let bare = path.strip_suffix('/').filter(|p| !p.is_empty());
        r.scan_exact(path, bare).or_else(|| r.scan_prefix(path))
    }

    #[test]
    fn looked_up_routes_are_those_a_scan_finds() {
        // Exact and prefix routes over a few segments, with and without a
        // trailing `/`, and `/`; every path over the same segments.
        let segments = ["a", "b", "ab", ""];
        let mut paths = vec!["/".to_owned(), "*".to_owned()];
        for x in segments {
            for y in segments {
                for z in segments {
                    paths.push(format!("/{x}"));
                    paths.push(format!("/{x}/{y}"));
                    paths.push(format!("/{x}/{y}/{z}"));
                }
            }
        }
        paths.sort();
        paths.dedup();
        let mut toml = String::new();
        for (i, path) in paths.iter().filter(|p| p.starts_with('/')).enumerate() {
            // Every third path an exact route, every third a prefix one.
            let route = match i % 3 {
                0 => path.clone(),
                1 if path == "/" => "/*".to_owned(),
                1 => format!("{}/*", path.trim_end_matches('/')),
                _ => continue,
            };
            toml.push_str(&format!(
                "[[function]]\nroute=\"{route}\"\nmodule=\"m{i}.wasm\"\n"
            ));
        }
        let r = router(&toml);
        assert!(r.exact.len() > SCANNED_ROUTES && r.prefix.len() > SCANNED_ROUTES);
        let name = |t: Option<&Target>| match t {
            Some(Target::Function(f)) => f.name.clone(),
            Some(Target::Proxy(p)) => p.spec.name.clone(),
            None => "-".to_owned(),
        };
        for path in &paths {
            let routed = match r.route("GET", path) {
                Match::Found(f) => f.name.clone(),
                Match::NotFound => "-".to_owned(),
                other => panic!("{path}: {other:?}"),
            };
            assert_eq!(routed, name(scanned(&r, path)), "{path}");
        }
        // The candidates are exactly the routes `prefix_matches` accepts.
        for path in &paths {
            for route in &paths {
                let candidate = prefix_candidates(path, route.len()).any(|c| c == route);
                assert_eq!(candidate, prefix_matches(route, path), "{route} for {path}");
            }
        }
    }

    #[test]
    fn exact_then_longest_prefix() {
        let r = router(
            "[[function]]\nroute=\"/a/*\"\nmodule=\"a.wasm\"\n[[function]]\nroute=\"/a/b/*\"\nmodule=\"ab.wasm\"\n[[function]]\nroute=\"/a/x\"\nmodule=\"x.wasm\"\n",
        );
        let name = |p: &str| match r.route("GET", p) {
            Match::Found(f) => f.name.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(name("/a/x"), "x");
        assert_eq!(name("/a/b/c"), "ab");
        assert_eq!(name("/a/c"), "a");
        assert_eq!(name("/a"), "a");
        assert_eq!(name("/ab"), "NotFound");
    }

    #[test]
    fn methods_are_checked() {
        let r =
            router("[[function]]\nroute=\"/p\"\nmodule=\"p.wasm\"\nmethods=[\"POST\",\"PUT\"]\n");
        assert!(matches!(r.route("POST", "/p"), Match::Found(_)));
        match r.route("GET", "/p") {
            Match::MethodNotAllowed(f, allow) => {
                assert_eq!(f.name, "p");
                assert_eq!(allow, "POST, PUT");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dir_function_never_takes_a_configured_namespace() {
        // `handler` (a configured function, another file) and `mw` (a
        // middleware) hold their namespaces; `same` is the very file.
        let r = router(
            "[server]\nfunctions_dir = \".\"\n\n\
             [[function]]\nroute = \"/h\"\nname = \"handler\"\nmodule = \"tenants/a/handler.wasm\"\n\n\
             [[function]]\nroute = \"/s\"\nmodule = \"same.wasm\"\n\n\
             [[middleware]]\nname = \"mw\"\nmodule = \"m.wasm\"\n",
        );
        for path in ["/handler", "/handler/x", "/mw"] {
            assert!(matches!(r.route("GET", path), Match::NotFound), "{path}");
        }
        for (path, name) in [("/same/x", "same"), ("/other", "other")] {
            match r.route("GET", path) {
                Match::Found(f) => {
                    assert_eq!((f.name.as_str(), f.from_functions_dir), (name, true))
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn dir_names_are_restricted() {
        let r = router("[server]\nfunctions_dir = \".\"\n");
        for path in [
            "/../etc",
            "/",
            "/a.wasm",
            "/a b",
            &format!("/{}", "a".repeat(129)),
        ] {
            assert!(matches!(r.route("GET", path), Match::NotFound), "{path}");
        }
        // A valid name is routed without looking for its file: the module
        // cache decides whether it exists.
        match r.route("GET", "/no-such-function/x") {
            Match::Found(f) => {
                assert_eq!(f.name, "no-such-function");
                assert_eq!(f.module, Path::new("/./no-such-function.wasm"));
                assert!(f.from_functions_dir);
            }
            other => panic!("{other:?}"),
        }
    }
}
