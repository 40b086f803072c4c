//! `wasmgate kv`: the operator's view of the KV store, for a stopped
//! server (the store's lock refuses while one runs, naming its pid).
//! `export` and `import` are JSON lines, one entry per line, for backups.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::CliError;
use crate::config::{Config, StateConfig};
use crate::store::{Durability, Quota, Store, Txn};

pub const USAGE: &str = "\
Usage: wasmgate kv ACTION NAMESPACE [ARGS] [--config FILE | --dir DIR]

  list NAMESPACE [PREFIX]     print its keys, one per line
  get NAMESPACE KEY           print the value of KEY (exit 1 if missing)
  set NAMESPACE KEY VALUE [--ttl DURATION]
  delete NAMESPACE KEY        (exit 1 if missing)
  export NAMESPACE            print every entry as a JSON line:
                              {\"key\":..,\"value\":..,\"expires\":UNIX_MS}
  import NAMESPACE            read such lines from stdin and set them

  --config FILE   the store of FILE's [state] dir
  --dir DIR       the store in DIR (default: ./wasmgate-state)

A namespace is a function's name, or its `kv` key. The server must be
stopped: the store is locked while it runs. Quotas do not apply here.";

/// A parsed `wasmgate kv` command.
#[derive(Debug, PartialEq, Default)]
pub struct KvArgs {
    pub action: String,
    pub namespace: String,
    pub rest: Vec<String>,
    pub config: Option<PathBuf>,
    pub dir: Option<PathBuf>,
    pub ttl_ms: u64,
}

/// Parses what follows `wasmgate kv`.
pub fn parse(p: &mut lexopt::Parser) -> Result<Result<KvArgs, &'static str>, CliError> {
    use lexopt::prelude::*;
    let mut args = KvArgs::default();
    let mut words = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Err(USAGE)),
            Long("config") => args.config = Some(PathBuf::from(p.value()?)),
            Long("dir") => args.dir = Some(PathBuf::from(p.value()?)),
            Long("ttl") => {
                let text = super::string(p.value()?, "--ttl")?;
                let d = crate::config::units::parse_duration(&text)
                    .map_err(|e| CliError::Usage(format!("--ttl: {e}")))?;
                args.ttl_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
            }
            Value(v) => words.push(super::string(v, "argument")?),
            other => return Err(other.unexpected().into()),
        }
    }
    let mut words = words.into_iter();
    let usage = |m: &str| CliError::Usage(format!("kv: {m} (see `wasmgate kv --help`)"));
    args.action = words.next().ok_or_else(|| usage("give an ACTION"))?;
    args.namespace = words.next().ok_or_else(|| usage("give a NAMESPACE"))?;
    args.rest = words.collect();
    let wanted = match args.action.as_str() {
        "list" => 0..=1,
        "get" | "delete" => 1..=1,
        "set" => 2..=2,
        "export" | "import" => 0..=0,
        _ => return Err(usage("ACTION is list, get, set, delete, export or import")),
    };
    if !wanted.contains(&args.rest.len()) {
        return Err(usage(&format!(
            "wrong number of arguments for `{}`",
            args.action
        )));
    }
    Ok(Ok(args))
}

/// Runs a `wasmgate kv` command.
pub fn execute(args: KvArgs) -> Result<(), CliError> {
    let state = match (&args.config, &args.dir) {
        (Some(path), _) => Config::load(path, None).map_err(CliError::Config)?.state,
        (None, Some(dir)) => StateConfig {
            dir: dir.clone(),
            ..StateConfig::default()
        },
        (None, None) => StateConfig::default(),
    };
    // Reading changes nothing on disk: a damaged log is reported, not
    // repaired (the server repairs it, keeping a copy, when it opens it).
    let read_only = matches!(args.action.as_str(), "list" | "get" | "export");
    let (store, _) = if read_only {
        Store::open_read_only(&state.dir)
    } else {
        Store::open(&state.dir, Durability::Always)
    }
    .map_err(CliError::Runtime)?;
    let ns: Arc<[u8]> = Arc::from(args.namespace.as_bytes());
    let unlimited = Quota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
        max_value: u64::MAX,
    };
    let mut txn = Txn::new(Arc::clone(&store), Arc::clone(&ns), unlimited);
    let kv_error = |e: crate::store::KvError| CliError::Runtime(e.to_string());
    let mut out = std::io::stdout().lock();
    let key = args.rest.first().map_or(&[][..], |k| k.as_bytes());
    match args.action.as_str() {
        "list" => {
            for (key, _, _) in store.entries(&ns) {
                if key.starts_with(args.rest.first().map_or(&b""[..], |p| p.as_bytes())) {
                    let _ = writeln!(out, "{}", String::from_utf8_lossy(&key).escape_debug());
                }
            }
        }
        "get" => match txn.get(key).map_err(kv_error)? {
            Some(value) => {
                let _ = out.write_all(&value);
                let _ = out.write_all(b"\n");
            }
            None => return Err(CliError::Runtime(format!("no key {:?}", args.rest[0]))),
        },
        "set" => {
            let value = args.rest.get(1).map_or(&[][..], |v| v.as_bytes());
            txn.set(key, value, args.ttl_ms).map_err(kv_error)?;
        }
        "delete" => {
            if !txn.delete(key).map_err(kv_error)? {
                return Err(CliError::Runtime(format!("no key {:?}", args.rest[0])));
            }
        }
        "export" => {
            for (key, value, expires) in store.entries(&ns) {
                let entry = Line {
                    expires,
                    key: text(&key)?.to_owned(),
                    value: text(&value)?.to_owned(),
                };
                let line = serde_json::to_string(&entry)
                    .map_err(|e| CliError::Runtime(format!("export: {e}")))?;
                let _ = writeln!(out, "{line}");
            }
        }
        "import" => {
            let now = crate::store::now_ms();
            for (i, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.map_err(|e| CliError::Runtime(format!("stdin: {e}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let bad = |why: &str| CliError::Runtime(format!("line {}: {why}", i + 1));
                let entry: Line = serde_json::from_str(&line).map_err(|e| bad(&e.to_string()))?;
                if entry.expires != 0 && entry.expires <= now {
                    continue;
                }
                let ttl = entry.expires.saturating_sub(now);
                txn.set(entry.key.as_bytes(), entry.value.as_bytes(), ttl)
                    .map_err(kv_error)?;
            }
        }
        other => return Err(CliError::Usage(format!("kv: unknown action `{other}`"))),
    }
    if !txn.is_empty() {
        let ack = txn.commit().map_err(kv_error)?;
        smol::block_on(ack.durable()).map_err(kv_error)?;
    }
    store.close();
    Ok(())
}

/// One line of `export` and `import`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    /// Unix milliseconds after which the entry is gone; 0: never.
    #[serde(default)]
    expires: u64,
    key: String,
    value: String,
}

/// Stored bytes as JSON text: export only holds UTF-8 (what JSON can).
fn text(bytes: &[u8]) -> Result<&str, CliError> {
    std::str::from_utf8(bytes).map_err(|_| {
        CliError::Runtime(format!(
            "an entry is not UTF-8 ({:?}); JSON lines cannot hold it",
            String::from_utf8_lossy(bytes)
        ))
    })
}
