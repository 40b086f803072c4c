//! One request's view of its namespace: reads see the request's own
//! writes, writes are buffered here and reach the store only through
//! [`Txn::commit`], as one record. Dropping a `Txn` discards them.
//!
//! `incr` is buffered as an addition and applied at commit against the
//! value current then, under the store's lock: concurrent increments all
//! count (the total is exact), while a `set` of the same key is last
//! commit wins. What `incr` returns is the value the last commit left (on
//! disk yet or not), plus every increment of the key that live
//! transactions have buffered, plus its own ([`Store::add_pending`]):
//! concurrent requests each get a number of their own. A transaction's
//! increments stop counting for others when it commits (under the lock
//! that applies them) or is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Ack, KvError, MAX_KEY, Quota, Store, now_ms, parse_int, weight};

/// A store operation's result.
pub type KvResult<T> = Result<T, KvError>;

/// A buffered write.
#[derive(Debug, Clone)]
enum Write {
    Set {
        value: Vec<u8>,
        expires: u64,
    },
    Delete,
    /// Add `delta` at commit; a key created by it expires `ttl` ms later.
    Add {
        delta: i64,
        ttl: Option<u64>,
    },
}

/// A write as the store applies it at commit.
#[derive(Debug)]
pub enum Resolved {
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        expires: u64,
    },
    Delete {
        key: Vec<u8>,
    },
    Add {
        key: Vec<u8>,
        delta: i64,
        ttl: Option<u64>,
    },
}

/// One request's transaction on one namespace.
pub struct Txn {
    store: Arc<Store>,
    ns: Arc<[u8]>,
    quota: Quota,
    writes: BTreeMap<Vec<u8>, Write>,
    /// Keys and bytes the buffered writes add to the namespace, as of each
    /// write (the commit checks again, exactly).
    keys: i64,
    bytes: i64,
    /// The increments buffered in the store's view
    /// ([`Store::add_pending`]), by key, to forget at commit or drop.
    adds: HashMap<Vec<u8>, i64>,
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.adds.is_empty() {
            self.store.release_adds(&self.ns, &self.adds);
        }
    }
}

fn check_key(key: &[u8]) -> KvResult<()> {
    if key.len() > MAX_KEY {
        return Err(KvError::KeyTooLong);
    }
    Ok(())
}

fn expiry(ttl_ms: u64) -> u64 {
    if ttl_ms == 0 {
        0
    } else {
        now_ms().saturating_add(ttl_ms).max(1)
    }
}

impl Txn {
    /// An empty transaction on `ns` of `store`, within `quota`.
    pub fn new(store: Arc<Store>, ns: Arc<[u8]>, quota: Quota) -> Self {
        Self {
            store,
            ns,
            quota,
            writes: BTreeMap::new(),
            keys: 0,
            bytes: 0,
            adds: HashMap::new(),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &[u8] {
        &self.ns
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The value of `key` as this request sees it.
    pub fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        Ok(match self.writes.get(key) {
            Some(Write::Set { value, .. }) => Some(value.clone()),
            Some(Write::Delete) => None,
            Some(Write::Add { delta, .. }) => {
                let current = self.committed_int(key)?;
                let value = current.checked_add(*delta).ok_or(KvError::Overflow)?;
                Some(value.to_string().into_bytes())
            }
            None => self.store.get(&self.ns, key),
        })
    }

    /// The integer at `key` as the last commit left it, that an `incr`
    /// buffered now will be added to.
    fn committed_int(&self, key: &[u8]) -> KvResult<i64> {
        self.store
            .latest(&self.ns, key)
            .map_or(Ok(0), |v| parse_int(&v))
    }

    /// The weight of `key` as this request sees it, if present.
    fn weight_of(&self, key: &[u8]) -> KvResult<Option<u64>> {
        Ok(self.get(key)?.map(|v| weight(key, &v)))
    }

    /// Records that `key` now weighs `new` (`None`: absent), refusing it if
    /// the namespace would pass a quota.
    fn account(&mut self, key: &[u8], new: Option<u64>) -> KvResult<()> {
        let old = self.weight_of(key)?;
        let keys = self.keys + i64::from(new.is_some()) - i64::from(old.is_some());
        let to_i64 = |w: Option<u64>| w.map_or(0, |w| i64::try_from(w).unwrap_or(i64::MAX));
        let bytes = self
            .bytes
            .saturating_add(to_i64(new))
            .saturating_sub(to_i64(old));
        let (used_keys, used_bytes) = self.store.usage(&self.ns);
        let total = |used: u64, delta: i64| used.saturating_add_signed(delta);
        if keys > self.keys && total(used_keys, keys) > self.quota.max_keys {
            return Err(KvError::TooManyKeys {
                limit: self.quota.max_keys,
            });
        }
        if bytes > self.bytes && total(used_bytes, bytes) > self.quota.max_bytes {
            return Err(KvError::TooManyBytes {
                limit: self.quota.max_bytes,
            });
        }
        self.keys = keys;
        self.bytes = bytes;
        Ok(())
    }

    /// Sets `key` to `value`, expiring `ttl_ms` from now (0: never).
    pub fn set(&mut self, key: &[u8], value: &[u8], ttl_ms: u64) -> KvResult<()> {
        check_key(key)?;
        if value.len() as u64 > self.quota.max_value {
            return Err(KvError::ValueTooLarge {
                limit: self.quota.max_value,
            });
        }
        self.account(key, Some(weight(key, value)))?;
        let expires = expiry(ttl_ms);
        let value = value.to_vec();
        self.writes
            .insert(key.to_vec(), Write::Set { value, expires });
        Ok(())
    }

    /// Deletes `key`; whether it was there.
    pub fn delete(&mut self, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        let existed = self.get(key)?.is_some();
        // Nothing to delete, nothing buffered: otherwise a guest deleting
        // absent keys in a loop would grow this transaction (host memory,
        // outside its memory limit and the quotas) without bound.
        if !existed && !self.writes.contains_key(key) {
            return Ok(false);
        }
        self.account(key, None)?;
        // A key the store does not hold needs no `Delete`: forgetting this
        // request's own write of it (and its buffered increment) leaves
        // the same. Otherwise a guest setting, or incrementing, and
        // deleting new keys in a loop would grow this transaction and the
        // store's pending increments without bound, each delete weighing
        // nothing against the quotas.
        if self.store.latest(&self.ns, key).is_none() {
            self.writes.remove(key);
            if let Some(sum) = self.adds.remove(key) {
                self.store
                    .release_adds(&self.ns, &HashMap::from([(key.to_vec(), sum)]));
            }
            return Ok(existed);
        }
        self.writes.insert(key.to_vec(), Write::Delete);
        Ok(existed)
    }

    /// Adds `delta` to the integer at `key` (absent: 0); a key this creates
    /// expires `ttl_ms` from now (0: never; an existing key keeps its
    /// expiry). Returns the value as this request now sees it.
    pub fn incr(&mut self, key: &[u8], delta: i64, ttl_ms: u64) -> KvResult<i64> {
        check_key(key)?;
        let (value, write) = match self.writes.get(key) {
            Some(Write::Set { value, expires }) => {
                let n = parse_int(value)?
                    .checked_add(delta)
                    .ok_or(KvError::Overflow)?;
                let value = n.to_string().into_bytes();
                let expires = *expires;
                (n, Write::Set { value, expires })
            }
            Some(Write::Delete) => {
                let value = delta.to_string().into_bytes();
                let expires = expiry(ttl_ms);
                (delta, Write::Set { value, expires })
            }
            Some(Write::Add { delta: d, ttl }) => {
                let d = d.checked_add(delta).ok_or(KvError::Overflow)?;
                let n = self.store.add_pending(&self.ns, key, delta)?;
                (
                    n,
                    Write::Add {
                        delta: d,
                        ttl: *ttl,
                    },
                )
            }
            None => {
                let n = self.store.add_pending(&self.ns, key, delta)?;
                let ttl = (ttl_ms != 0).then_some(ttl_ms);
                (n, Write::Add { delta, ttl })
            }
        };
        let buffered = matches!(write, Write::Add { .. });
        if buffered {
            let sum = self.adds.entry(key.to_vec()).or_insert(0);
            *sum = sum.wrapping_add(delta);
        }
        let new = weight(key, value.to_string().as_bytes());
        if let Err(e) = self.account(key, Some(new)) {
            if buffered {
                let undo = HashMap::from([(key.to_vec(), delta)]);
                self.store.release_adds(&self.ns, &undo);
                if let Some(sum) = self.adds.get_mut(key) {
                    *sum = sum.wrapping_sub(delta);
                }
            }
            return Err(e);
        }
        self.writes.insert(key.to_vec(), write);
        Ok(value)
    }

    /// Keys with `prefix` after `after` (exclusive; empty: from the
    /// start), as this request sees them, in order, at most `limit`; and
    /// the work it took in bytes (see [`Store::keys`]).
    pub fn keys(&self, prefix: &[u8], after: &[u8], limit: usize) -> (Vec<Vec<u8>>, u64) {
        let extra = self.writes.len();
        let (mut keys, mut work) =
            self.store
                .keys(&self.ns, prefix, after, limit.saturating_add(extra));
        let in_range = |k: &[u8]| k.starts_with(prefix) && (after.is_empty() || k > after);
        for (key, write) in &self.writes {
            work = work.saturating_add(super::SCAN_WEIGHT);
            if in_range(key) && !matches!(write, Write::Delete) {
                keys.push(key.clone());
            }
        }
        keys.sort();
        keys.dedup();
        keys.retain(|k| !matches!(self.writes.get(k), Some(Write::Delete)));
        keys.truncate(limit);
        (keys, work)
    }

    /// Commits every buffered write as one record (see [`Store::commit`]).
    pub fn commit(mut self) -> KvResult<Ack> {
        let adds = std::mem::take(&mut self.adds);
        let resolved = std::mem::take(&mut self.writes)
            .into_iter()
            .map(|(key, write)| match write {
                Write::Set { value, expires } => Resolved::Set {
                    key,
                    value,
                    expires,
                },
                Write::Delete => Resolved::Delete { key },
                Write::Add { delta, ttl } => Resolved::Add { key, delta, ttl },
            })
            .collect();
        self.store.commit(&self.ns, &self.quota, resolved, &adds)
    }
}
