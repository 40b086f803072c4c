//! The KV store as the pipeline uses it: opened on the first request of a
//! function that imports a KV host function (so a server whose functions
//! keep no state creates no directory), one transaction per request on the
//! function's namespace and one per http-wasm middleware instance on its
//! own, committed after a good response.

use std::sync::{Arc, OnceLock};

use wasmi::{ExternType, Module};

use crate::config::StateConfig;
use crate::error::{Error, Kind};
use crate::runtime::imports::{gojinn, kv};
use crate::store::{Durability, Quota, Store, Txn};

/// The store, opened on first use, and what it is opened with.
pub struct State {
    config: StateConfig,
    store: OnceLock<Result<Arc<Store>, String>>,
}

impl State {
    /// Nothing opened yet.
    pub fn new(config: &StateConfig) -> Self {
        Self {
            config: config.clone(),
            store: OnceLock::new(),
        }
    }

    /// Takes over `old`'s opened store if it is in the same directory (a
    /// reload: the store's lock refuses a second opening).
    pub fn carry(&self, old: &State) {
        if let (true, Some(Ok(store))) = (self.config.dir == old.config.dir, old.store.get()) {
            let _ = self.store.set(Ok(Arc::clone(store)));
        }
    }

    /// The store, opening it on first use (a failure is logged once and
    /// kept: every KV call then answers "unavailable").
    fn store(&self) -> Result<&Arc<Store>, &String> {
        self.store
            .get_or_init(|| {
                let durability = match self.config.sync {
                    None => Durability::Always,
                    Some(interval) => Durability::Every(interval),
                };
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
                        Ok(store)
                    }
                    Err(e) => {
                        log::error!("state: cannot open the store: {e}");
                        Err(e)
                    }
                }
            })
            .as_ref()
    }

    /// A transaction on namespace `ns` for a request of `module`, or why
    /// there is none (the module uses no KV function, or the store failed
    /// to open).
    pub fn txn(&self, module: &Module, ns: &str) -> Result<Txn, String> {
        if !uses_kv(module) {
            return Err("the module imports no KV function".into());
        }
        let store = self.store().map_err(Clone::clone)?;
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

/// Whether `module` imports a KV host function.
fn uses_kv(module: &Module) -> bool {
    module.imports().any(|i| {
        matches!(i.ty(), ExternType::Func(_))
            && match i.module() {
                "wasmgate" => kv::WASMGATE_FUNCTIONS.iter().any(|(n, ..)| *n == i.name()),
                gojinn::NAME => i.name().starts_with("host_kv_"),
                _ => false,
            }
    })
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
