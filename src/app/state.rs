//! The KV store as the pipeline uses it: opened when the server starts if
//! a configured function or middleware uses KV (or the store's directory
//! already holds a log), else on the first request of a function that
//! imports a KV host function (so a server whose functions keep no state
//! creates no directory); one transaction per request on the function's
//! namespace and one per http-wasm middleware instance on its own,
//! committed after a good response.

use std::sync::{Arc, Mutex, OnceLock};

use crate::config::{Config, StateConfig};
use crate::error::{Error, Kind};
use crate::runtime::imports;
use crate::store::{Durability, Quota, Store, Txn};

/// The store, once opened, and what it is opened with.
pub struct State {
    config: StateConfig,
    /// Only ever holds an opened store (a failed opening is tried again at
    /// the next request: the lock may have been released meanwhile).
    store: OnceLock<Result<Arc<Store>, String>>,
    opening: Mutex<()>,
}

impl State {
    /// Nothing opened yet.
    pub fn new(config: &StateConfig) -> Self {
        Self {
            config: config.clone(),
            store: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// Takes over `old`'s opened store if it is in the same directory (a
    /// reload: the store's lock refuses a second opening), and makes it
    /// fsync as this config's `sync` says (from the writer's next batch:
    /// at most one old interval later).
    pub fn carry(&self, old: &State) {
        if let (true, Some(Ok(store))) = (self.config.dir == old.config.dir, old.store.get()) {
            let durability = self.durability();
            if store.durability() != durability {
                log::info!(
                    "state: sync is now {} (was {})",
                    sync_name(durability),
                    sync_name(store.durability())
                );
                store.set_durability(durability);
            }
            let _ = self.store.set(Ok(Arc::clone(store)));
        }
    }

    /// The configured `sync`.
    fn durability(&self) -> Durability {
        match self.config.sync {
            None => Durability::Always,
            Some(interval) => Durability::Every(interval),
        }
    }

    /// The state of a server starting with `config`: the store is opened
    /// now if a configured function or middleware uses KV or the store's
    /// directory holds a log, so that `wasmgate kv` is refused from the
    /// start and a store locked by another process fails the start.
    pub fn at_start(config: &Config) -> Result<Self, String> {
        let state = Self::new(&config.state);
        let modules = config
            .functions
            .iter()
            .map(|f| &f.module)
            .chain(config.middleware.iter().map(|m| &m.module));
        let used = config.functions.iter().any(|f| f.kv.is_some())
            || config.state.dir.join(crate::store::writer::LOG).exists()
            || modules
                .into_iter()
                .any(|m| std::fs::read(m).is_ok_and(|bytes| imports::file_uses_kv(&bytes)));
        if used {
            state.store()?;
        }
        Ok(state)
    }

    /// The store, opening it if it is not yet (a failure is logged and
    /// answered "unavailable"; the next request tries again).
    fn store(&self) -> Result<&Arc<Store>, String> {
        if let Some(Ok(store)) = self.store.get() {
            return Ok(store);
        }
        let _opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Ok(store)) = self.store.get() {
            return Ok(store);
        }
        let durability = self.durability();
        let dir = &self.config.dir;
        let started = std::time::Instant::now();
        match Store::open(dir, durability) {
            Ok((store, recovery)) => {
                log::info!(
                    "state: opened {} ({} records, {} bytes, {} µs)",
                    dir.display(),
                    recovery.records,
                    recovery.bytes,
                    started.elapsed().as_micros()
                );
                let _ = self.store.set(Ok(store));
                match self.store.get() {
                    Some(Ok(store)) => Ok(store),
                    _ => Err("the store was not kept".into()),
                }
            }
            Err(e) => {
                log::error!("state: cannot open the store: {e}");
                Err(e)
            }
        }
    }

    /// A transaction on namespace `ns` for a request of a module that
    /// imports a KV function (`uses_kv`, [`Compiled::kv`]), or why there
    /// is none (it uses none, or the store failed to open).
    ///
    /// [`Compiled::kv`]: crate::abi::Compiled::kv
    pub fn txn(&self, uses_kv: bool, ns: &str) -> Result<Txn, String> {
        if !uses_kv {
            return Err("the module imports no KV function".into());
        }
        let store = self.store()?;
        let limits = &self.config.limits;
        let quota = Quota {
            max_keys: limits.max_keys,
            max_bytes: limits.max_bytes,
            max_value: limits.max_value,
        };
        let ns: Arc<[u8]> = Arc::from(ns.as_bytes());
        Ok(Txn::new(Arc::clone(store), ns, quota))
    }
}

/// `sync` as the config spells it.
fn sync_name(durability: Durability) -> String {
    match durability {
        Durability::Always => "\"always\"".into(),
        Durability::Every(interval) => format!("\"{}ms\"", interval.as_millis()),
    }
}

/// Commits a request's writes (one transaction per namespace: the
/// function's and each middleware's, each one record), and under `sync =
/// "always"` waits until they are on disk: the response is sent only
/// after. A refusal discards that transaction and answers 503
/// `state-unavailable`; `route` (the function or proxy) names it in the log.
pub async fn commit(txns: Vec<Txn>, route: &str, trace_id: &str) -> Result<(), Error> {
    let mut saved = Ok(());
    for txn in txns.into_iter().filter(|t| !t.is_empty()) {
        let result = match txn.commit() {
            Ok(ack) => ack.durable().await,
            Err(e) => Err(e),
        };
        crate::store::counters::count(crate::store::counters::KvOp::Commit, result.is_ok());
        if let Err(e) = result {
            log::warn!("{route} [{trace_id}]: KV writes not committed: {e}");
            saved = Err(Error::new(
                Kind::StateUnavailable,
                "the request's state could not be saved; the server log says why",
            ));
        }
    }
    saved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_opening_is_tried_again_at_the_next_request() {
        let dir = std::env::temp_dir().join(format!("wasmgate-state-{}-retry", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = StateConfig {
            dir: dir.clone(),
            ..StateConfig::default()
        };
        let held = Store::open(&dir, Durability::Always).expect("opens");
        let state = State::new(&config);
        let Err(e) = state.store() else {
            panic!("opened a locked store")
        };
        assert!(e.contains("in use by another process"), "{e}");
        drop(held);
        assert!(state.store().is_ok(), "opened once the lock is free");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reload_applies_its_sync_to_the_store_it_carries_over() {
        let dir = std::env::temp_dir().join(format!("wasmgate-state-{}-sync", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let interval = StateConfig {
            dir: dir.clone(),
            sync: Some(std::time::Duration::from_secs(10)),
            ..StateConfig::default()
        };
        let always = StateConfig {
            sync: None,
            ..interval.clone()
        };
        let old = State::new(&interval);
        let store = Arc::clone(old.store().expect("opens"));
        assert_eq!(
            store.durability(),
            Durability::Every(std::time::Duration::from_secs(10))
        );
        let new = State::new(&always);
        new.carry(&old);
        let carried = new.store().expect("carried over");
        assert!(Arc::ptr_eq(carried, &store), "the same store");
        assert_eq!(store.durability(), Durability::Always, "the new sync");
        drop((old, new, store));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
