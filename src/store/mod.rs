//! The key-value store behind the `kv_*` host functions: namespaces of
//! keys, each namespace with its quotas, kept in memory and made durable
//! by an append-only log on local disk (`[state] dir`). It knows nothing
//! of guests: `runtime` gives each request a [`Txn`] on its namespace.
//!
//! - [`record`]: the log's bytes (length, CRC-32, length-prefixed
//!   namespace and key per operation) and its replay, which keeps the
//!   intact records and drops a damaged tail.
//! - [`writer`]: the thread that appends and fsyncs, so that executor
//!   threads never wait on the disk.
//! - [`txn`]: one request's writes, buffered, read back by the request,
//!   committed as one record or dropped.
//! - [`counters`]: operations and refusals, for the metrics.
//!
//! The [`Store`] handle is `Send + Sync`: one in-memory index behind a
//! mutex (held for map operations only, never across I/O) and a channel
//! to the writer. Every commit's record is sent while the lock is held, so
//! the log's order is the order in which commits were applied.
//!
//! A commit is applied to the index at once (a later commit, `incr`
//! above all, builds on it) but the value it replaced is kept aside until
//! the writer says the record is on disk. Under `sync = "always"` readers
//! see that kept value, so nothing is visible before it is durable; if the
//! write fails, the index is rolled back to the kept values, which is what
//! the disk holds. The kept values are found by namespace and key (a
//! hash map each), so a read costs the same however many writes wait.
//!
//! What waits for the writer is bounded twice: [`QUEUE`] commits and
//! [`QUEUE_BYTES`] bytes of records; a commit past either is refused.

pub mod counters;
pub mod record;
mod txn;
pub mod writer;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use txn::Txn;
pub use writer::Durability;

use record::Op;
use writer::{Msg, Outcome};

/// What looking at one entry weighs, in bytes beyond its key, when a
/// listing is charged (a step through the index).
pub const SCAN_WEIGHT: u64 = 32;

/// The longest key: longer ones are refused ([`KvError::KeyTooLong`]).
pub const MAX_KEY: usize = 1024;

/// The lock file in the store's directory, holding the owner's pid.
pub const LOCK: &str = "lock";

/// A namespace's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Keys it may hold.
    pub max_keys: u64,
    /// Bytes of keys and values it may hold.
    pub max_bytes: u64,
    /// The largest value.
    pub max_value: u64,
}

/// Why a store operation failed. Each is an error value to the guest,
/// never a trap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The key is longer than [`MAX_KEY`].
    KeyTooLong,
    /// The value is larger than the namespace's `max_value`.
    ValueTooLarge { limit: u64 },
    /// The namespace would hold more than `max_keys` keys.
    TooManyKeys { limit: u64 },
    /// The namespace would hold more than `max_bytes` bytes.
    TooManyBytes { limit: u64 },
    /// `incr` on a value that is not a decimal integer.
    NotANumber,
    /// `incr` past the range of an `i64`.
    Overflow,
    /// The store cannot be opened or written.
    Unavailable(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::KeyTooLong => write!(f, "key longer than {MAX_KEY} bytes"),
            KvError::ValueTooLarge { limit } => {
                write!(f, "value larger than kv_max_value ({limit} bytes)")
            }
            KvError::TooManyKeys { limit } => {
                write!(
                    f,
                    "namespace would hold more than kv_max_keys ({limit}) keys"
                )
            }
            KvError::TooManyBytes { limit } => {
                write!(
                    f,
                    "namespace would hold more than kv_max_bytes ({limit} bytes)"
                )
            }
            KvError::NotANumber => f.write_str("incr on a value that is not a decimal integer"),
            KvError::Overflow => f.write_str("incr overflows a 64-bit integer"),
            KvError::Unavailable(why) => write!(f, "store unavailable: {why}"),
        }
    }
}

/// One stored value.
#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    /// Unix milliseconds after which the entry is gone; 0: never.
    expires: u64,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        self.expires == 0 || self.expires > now
    }
}

/// One namespace: its entries and what they weigh.
#[derive(Debug, Default)]
struct Space {
    entries: BTreeMap<Vec<u8>, Entry>,
    /// Sum of key and value lengths.
    bytes: u64,
}

impl Space {
    fn put(&mut self, key: Vec<u8>, entry: Entry) {
        let added = weight(&key, &entry.value);
        // An overwritten entry gives back its key's bytes too: the key is
        // counted once, whatever how often it is written.
        let given_back = match self.entries.get(&key) {
            Some(old) => weight(&key, &old.value),
            None => 0,
        };
        self.entries.insert(key, entry);
        self.bytes = self.bytes.saturating_add(added).saturating_sub(given_back);
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(weight(key, &old.value));
        }
    }

    /// Drops expired entries (their deletion needs no record: replayed, they
    /// are expired still).
    fn purge(&mut self, now: u64) {
        let dead: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.live(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            self.remove(&key);
        }
    }

    fn get(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.live(now))
    }
}

fn weight(key: &[u8], value: &[u8]) -> u64 {
    (key.len() as u64).saturating_add(value.len() as u64)
}

/// What the commits not yet on disk replaced at one key, oldest first
/// (`None`: absent); the front one is on disk.
type Kept = VecDeque<Option<Entry>>;

/// The index and the channel to the writer, behind the store's mutex.
struct Inner {
    spaces: BTreeMap<Vec<u8>, Space>,
    /// Bytes in the log file (after the last compaction).
    log_bytes: u64,
    /// `None` once the store is closed.
    tx: Option<smol::channel::Sender<Msg>>,
    /// The last commit's number.
    seq: u64,
    /// What each write of a commit not yet on disk replaced, by namespace
    /// and key, in commit order (`None`: the key was absent). A key's
    /// front one is its entry on disk.
    kept: HashMap<Vec<u8>, HashMap<Vec<u8>, Kept>>,
    /// The commit, namespace and key of each entry in `kept`, in commit
    /// order: what the writer's "durable through" forgets, front first.
    order: VecDeque<(u64, Vec<u8>, Vec<u8>)>,
    /// When the writer fsyncs: readers' and commits' copy of
    /// [`writer::Shared::durability`], changed with it.
    durability: Durability,
    /// Why the store takes no more writes, once a failed write could not
    /// be cut off the log.
    failed: Option<String>,
    /// The sum of the increments live transactions have buffered, by
    /// namespace and key ([`Store::add_pending`]).
    pending_adds: HashMap<(Vec<u8>, Vec<u8>), i64>,
}

impl Inner {
    /// Forgets the buffered increments `adds` of one transaction on `ns`.
    fn release_adds(&mut self, ns: &[u8], adds: &HashMap<Vec<u8>, i64>) {
        for (key, delta) in adds {
            let id = (ns.to_vec(), key.clone());
            if let Some(sum) = self.pending_adds.get_mut(&id) {
                *sum = sum.wrapping_sub(*delta);
                if *sum == 0 {
                    self.pending_adds.remove(&id);
                }
            }
        }
    }
}

impl Inner {
    /// What the writer found: forgets the kept entries of durable commits,
    /// or rolls the index back to them all. Returns the commit up to which
    /// queued commits are to be discarded.
    fn written(&mut self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Durable(through) => {
                // What a later commit replaced is on disk now.
                while self.order.front().is_some_and(|(seq, ..)| *seq <= through) {
                    let Some((_, ns, key)) = self.order.pop_front() else {
                        break;
                    };
                    let Some(keys) = self.kept.get_mut(&ns) else {
                        continue;
                    };
                    if let Some(entries) = keys.get_mut(&key) {
                        entries.pop_front();
                        if entries.is_empty() {
                            keys.remove(&key);
                        }
                    }
                    if keys.is_empty() {
                        self.kept.remove(&ns);
                    }
                }
                0
            }
            Outcome::Failed { why, broken, .. } => {
                // Commits after the failed one were resolved against it:
                // they go too, and the index is what the disk holds: each
                // key's first kept entry.
                self.order.clear();
                for (ns, keys) in std::mem::take(&mut self.kept) {
                    let space = self.spaces.entry(ns).or_default();
                    for (key, mut entries) in keys {
                        match entries.pop_front().flatten() {
                            Some(entry) => space.put(key, entry),
                            None => space.remove(&key),
                        }
                    }
                }
                if broken {
                    self.failed = Some(why);
                }
                self.seq
            }
        }
    }

    /// Keeps the entry `op` replaces until commit `seq` is on disk.
    fn keep(&mut self, op: &Op, seq: u64) {
        let (Op::Set { ns, key, .. } | Op::Delete { ns, key }) = op;
        let entry = self
            .spaces
            .get(ns)
            .and_then(|s| s.entries.get(key))
            .cloned();
        self.kept
            .entry(ns.clone())
            .or_default()
            .entry(key.clone())
            .or_default()
            .push_back(entry);
        self.order.push_back((seq, ns.clone(), key.clone()));
    }

    /// The entry on disk that readers see at `ns`/`key` in place of the
    /// index's, if a commit not yet on disk replaced it (`Some(None)`:
    /// absent on disk).
    fn kept_at(&self, ns: &[u8], key: &[u8]) -> Option<&Option<Entry>> {
        self.kept.get(ns)?.get(key)?.front()
    }
}

/// Commits (and compactions) that may wait for the writer: one more is
/// refused ([`KvError::Unavailable`], 503 `state-unavailable`) rather than
/// queued without bound when the disk does not keep up. Under `sync =
/// "always"` they are requests awaiting their fsync (admission slots
/// already released); under an interval, the commits of one interval.
pub const QUEUE: usize = 65_536;

/// Bytes of records that may wait for the writer (counted from the commit
/// that queues them until the writer has written them or failed them):
/// one more commit is refused ([`KvError::Unavailable`], 503
/// `state-unavailable`) rather than held in memory. Defaults to 16 MiB:
/// about a second of an SD card's sequential writes and 3% of a 512 MiB
/// board; more waiting means the disk does not keep up, and [`QUEUE`]
/// commits of large values would otherwise hold gigabytes. A commit larger
/// than this is taken when nothing waits (else it could never be).
/// Compactions are not counted: each is at most the live entries, already
/// in memory, and the next needs the log to double again.
pub const QUEUE_BYTES: u64 = 16 << 20;

/// A compaction rewrites the log once it is this large and more than twice
/// what the live entries take.
const COMPACT_MIN: u64 = 1 << 20;

/// The store: see the module doc.
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    /// Shared with the writer.
    shared: Arc<writer::Shared>,
    /// Most bytes of records waiting for the writer ([`QUEUE_BYTES`]).
    queue_bytes: u64,
    dir: PathBuf,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held (flock) for the store's life; holds the owner's pid.
    _lock: File,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
};

/// The current time in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What [`Store::open`] found in the log.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Intact records replayed.
    pub records: usize,
    /// Bytes of the log kept.
    pub bytes: u64,
    /// The damaged tail dropped, if any, and why.
    pub damage: Option<String>,
}

impl Store {
    /// Opens (or creates) the store in `dir`: takes its lock (refusing, with
    /// the owner's pid, if another process holds it), replays the log,
    /// cuts a damaged tail off (logged) and starts the writer.
    pub fn open(dir: &Path, durability: Durability) -> Result<(Arc<Store>, Recovery), String> {
        Self::open_with_queue(dir, durability, QUEUE, QUEUE_BYTES)
    }

    /// The store in `dir` as it is on disk, to read (`wasmgate kv list`,
    /// `get`, `export`): its lock taken, its log replayed, nothing written
    /// or repaired (damage is reported in the [`Recovery`], and the next
    /// [`Store::open`] repairs it); commits are refused.
    pub fn open_read_only(dir: &Path) -> Result<(Arc<Store>, Recovery), String> {
        if !dir.is_dir() {
            return Err(format!("{}: no store here", dir.display()));
        }
        let lock = lock(dir)?;
        let path = dir.join(writer::LOG);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let replay = record::replay(&bytes);
        let recovery = Recovery {
            records: replay.batches.len(),
            bytes: replay.good_len,
            damage: replay.damage.clone(),
        };
        if let Some(damage) = &recovery.damage {
            log::warn!(
                "state: {}: {damage} (read only: left as it is; the server repairs it when it opens the store)",
                path.display()
            );
        }
        let (inner, shared) = index(replay.batches, recovery.bytes, None, Durability::Always);
        let store = Store {
            inner,
            shared,
            queue_bytes: 0,
            dir: dir.to_path_buf(),
            writer: Mutex::new(None),
            _lock: lock,
        };
        Ok((Arc::new(store), recovery))
    }

    /// [`Store::open`] with at most `queue` commits and `queue_bytes`
    /// bytes of records waiting for the writer.
    fn open_with_queue(
        dir: &Path,
        durability: Durability,
        queue: usize,
        queue_bytes: u64,
    ) -> Result<(Arc<Store>, Recovery), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock = lock(dir)?;
        let path = dir.join(writer::LOG);
        let _ = std::fs::remove_file(dir.join(writer::NEXT));
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let mut replay = record::replay(&bytes);
        if replay.followed && replay.good_len >= record::MAGIC.len() as u64 {
            // Damage that is not a torn last write (a bad sector, a flipped
            // bit) may have acknowledged records after it: the bytes cut
            // off are kept beside the log first, for an operator to recover
            // by hand (replay never guesses where records resume).
            let aside = keep_tail(&path, &bytes, replay.good_len)?;
            let damage = replay.damage.take().unwrap_or_default();
            log::error!(
                "state: {}: {damage}; they may hold acknowledged writes: kept in {}",
                path.display(),
                aside.display()
            );
            replay.damage = Some(format!("{damage}; kept in {}", aside.display()));
        }
        if !bytes.is_empty() && replay.good_len < record::MAGIC.len() as u64 {
            // Not even the header is intact: this may be another file, or
            // one an operator can still recover by hand. Never destroy it.
            let aside = set_aside(&path)?;
            replay.damage = Some(format!(
                "the file does not start with the store's header; moved it to {} and started an empty store",
                aside.display()
            ));
        }
        drop(bytes);
        let recovery = Recovery {
            records: replay.batches.len(),
            bytes: replay.good_len,
            damage: replay.damage.clone(),
        };
        if let Some(damage) = replay.damage.as_ref().filter(|_| !replay.followed) {
            log::warn!("state: {}: {damage}", path.display());
        }
        if replay.good_len < record::MAGIC.len() as u64 {
            // New, or not even the header survived: start afresh.
            let mut f = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            std::io::Write::write_all(&mut f, record::MAGIC)
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            writer::sync_dir(dir)?;
        } else if replay.damage.is_some() {
            // A damaged tail: cut off (kept aside above unless a torn write).
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.set_len(replay.good_len)
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let file = writer::open_append(&path)?;
        let (tx, rx) = smol::channel::bounded(queue);
        let log_bytes = recovery.bytes.max(record::MAGIC.len() as u64);
        let (inner, shared) = index(replay.batches, log_bytes, Some(tx), durability);
        let writer_shared = Arc::clone(&shared);
        let reported = Arc::clone(&inner);
        let report = move |outcome| {
            let mut inner = reported.lock().unwrap_or_else(|p| p.into_inner());
            inner.written(outcome)
        };
        let writer_dir = dir.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("wasmgate-kv".into())
            .spawn(move || writer::run(writer_dir, file, log_bytes, &writer_shared, rx, report))
            .map_err(|e| format!("cannot start the store's writer: {e}"))?;
        let store = Store {
            inner,
            shared,
            queue_bytes,
            dir: dir.to_path_buf(),
            writer: Mutex::new(Some(handle)),
            _lock: lock,
        };
        Ok((Arc::new(store), recovery))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When the writer fsyncs (see [`Store::set_durability`]).
    pub fn durability(&self) -> Durability {
        self.lock().durability
    }

    /// Makes the writer fsync under `durability` from its next write on (a
    /// reload that changes `sync`). Commits already made keep theirs: one
    /// made under `always` is still acknowledged after its fsync. Under
    /// `always`, readers from now on see only what is on disk.
    pub fn set_durability(&self, durability: Durability) {
        // Under the index's lock: a commit decides whether to wait for
        // its fsync, and a reader what it sees, under one mode.
        let mut inner = self.lock();
        inner.durability = durability;
        *self
            .shared
            .durability
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = durability;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held left the index as consistent as
        // each map operation is: go on with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries on disk of `ns` that readers see in place of the
    /// index's (under `sync = "always"`: nothing before it is durable):
    /// each key's first kept entry.
    fn kept<'a>(&self, inner: &'a Inner, ns: &[u8]) -> Vec<(&'a Vec<u8>, &'a Option<Entry>)> {
        if inner.durability != Durability::Always {
            return Vec::new();
        }
        inner.kept.get(ns).map_or_else(Vec::new, |keys| {
            keys.iter()
                .filter_map(|(key, entries)| Some((key, entries.front()?)))
                .collect()
        })
    }

    /// The committed, live value of `key` in `ns`.
    pub fn get(&self, ns: &[u8], key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.lock();
        let now = now_ms();
        // Only under `always` do readers see the kept entries.
        let first = match inner.durability {
            Durability::Always => inner.kept_at(ns, key),
            Durability::Every(_) => None,
        };
        let entry = match first {
            Some(kept) => kept.as_ref().filter(|e| e.live(now))?,
            None => inner.spaces.get(ns)?.get(key, now)?,
        };
        Some(entry.value.clone())
    }

    /// The live value of `key` in `ns` as the last commit left it, on disk
    /// yet or not: what the next commit's `incr` adds to. A request that
    /// sees it (through `incr`) is answered only after its own commit,
    /// later in the log, is durable, and so then is this value.
    pub fn latest(&self, ns: &[u8], key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.lock();
        let entry = inner.spaces.get(ns)?.get(key, now_ms())?;
        Some(entry.value.clone())
    }

    /// `incr`'s answer: the live value of `key` in `ns` (as the last
    /// commit left it), plus every increment of it that live transactions
    /// have buffered (the caller's earlier ones included), plus `delta`,
    /// which is buffered too until the caller commits or is dropped
    /// ([`Store::release_adds`]). So concurrent requests incrementing one
    /// key each get a number of their own, while the increments still
    /// commit (or are discarded) with their requests.
    pub fn add_pending(&self, ns: &[u8], key: &[u8], delta: i64) -> Result<i64, KvError> {
        let mut inner = self.lock();
        let current = match inner.spaces.get(ns).and_then(|s| s.get(key, now_ms())) {
            Some(entry) => parse_int(&entry.value)?,
            None => 0,
        };
        let id = (ns.to_vec(), key.to_vec());
        let buffered = inner.pending_adds.get(&id).copied().unwrap_or(0);
        let buffered = buffered.checked_add(delta).ok_or(KvError::Overflow)?;
        let value = current.checked_add(buffered).ok_or(KvError::Overflow)?;
        if buffered == 0 {
            inner.pending_adds.remove(&id);
        } else {
            inner.pending_adds.insert(id, buffered);
        }
        Ok(value)
    }

    /// Forgets a dropped transaction's buffered increments `adds` on `ns`.
    pub fn release_adds(&self, ns: &[u8], adds: &HashMap<Vec<u8>, i64>) {
        self.lock().release_adds(ns, adds);
    }

    /// Live keys of `ns` with `prefix`, after `after` (exclusive), in
    /// order, at most `limit`; and the work it took, in bytes: every key
    /// looked at (expired ones too), each [`SCAN_WEIGHT`] more.
    pub fn keys(
        &self,
        ns: &[u8],
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> (Vec<Vec<u8>>, u64) {
        let inner = self.lock();
        let now = now_ms();
        let start = if after.is_empty() || after < prefix {
            std::ops::Bound::Included(prefix)
        } else {
            std::ops::Bound::Excluded(after)
        };
        let range = (start, std::ops::Bound::Unbounded);
        let kept = self.kept(&inner, ns);
        let mut hidden: Vec<Vec<u8>> = kept.iter().map(|(key, _)| (*key).clone()).collect();
        hidden.sort();
        let mut work = 0u64;
        let mut scan = |k: &Vec<u8>| {
            work = work
                .saturating_add(k.len() as u64)
                .saturating_add(SCAN_WEIGHT);
            k.starts_with(prefix)
        };
        let mut keys: Vec<Vec<u8>> = inner.spaces.get(ns).map_or_else(Vec::new, |space| {
            space
                .entries
                .range::<[u8], _>(range)
                .take_while(|(k, _)| scan(k))
                .filter(|(k, e)| e.live(now) && hidden.binary_search(k).is_err())
                .take(limit)
                .map(|(k, _)| k.clone())
                .collect()
        });
        if !kept.is_empty() {
            keys.extend(
                kept.iter()
                    .filter(|(key, _)| scan(key) && (after.is_empty() || key.as_slice() > after))
                    .filter(|(_, entry)| entry.as_ref().is_some_and(|e| e.live(now)))
                    .map(|(key, _)| (*key).clone()),
            );
            keys.sort();
            keys.truncate(limit);
        }
        (keys, work)
    }

    /// Every namespace that holds a live key.
    pub fn namespaces(&self) -> Vec<Vec<u8>> {
        let inner = self.lock();
        let now = now_ms();
        inner
            .spaces
            .iter()
            .filter(|(_, s)| s.entries.values().any(|e| e.live(now)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every live entry of `ns`: key, value, expiry (unix ms, 0: never).
    pub fn entries(&self, ns: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
        let inner = self.lock();
        let now = now_ms();
        inner.spaces.get(ns).map_or_else(Vec::new, |s| {
            s.entries
                .iter()
                .filter(|(_, e)| e.live(now))
                .map(|(k, e)| (k.clone(), e.value.clone(), e.expires))
                .collect()
        })
    }

    /// Keys and bytes `ns` holds (expired entries not yet purged included).
    pub fn usage(&self, ns: &[u8]) -> (u64, u64) {
        let inner = self.lock();
        inner
            .spaces
            .get(ns)
            .map_or((0, 0), |s| (s.entries.len() as u64, s.bytes))
    }

    /// Applies `ops` of namespace `ns` (already resolved: no increments
    /// left) within `quota`, as one record. Nothing is applied if any
    /// limit would be passed. The returned [`Ack`] resolves once the record
    /// is durable under `sync = "always"`, at once otherwise.
    pub fn commit(
        &self,
        ns: &[u8],
        quota: &Quota,
        writes: Vec<txn::Resolved>,
        adds: &HashMap<Vec<u8>, i64>,
    ) -> Result<Ack, KvError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        // Under the same lock as they are applied (or refused): no `incr`
        // sees them both buffered and committed.
        inner.release_adds(ns, adds);
        if let Some(why) = &inner.failed {
            return Err(KvError::Unavailable(why.clone()));
        }
        let now = now_ms();
        let space = inner.spaces.entry(ns.to_vec()).or_default();
        let mut ops = Vec::new();
        for write in writes {
            ops.push(match write {
                txn::Resolved::Set {
                    key,
                    value,
                    expires,
                } => Op::Set {
                    ns: ns.to_vec(),
                    key,
                    value,
                    expires,
                },
                txn::Resolved::Delete { key } => {
                    if !space.entries.contains_key(&key) {
                        continue;
                    }
                    Op::Delete {
                        ns: ns.to_vec(),
                        key,
                    }
                }
                txn::Resolved::Add { key, delta, ttl } => {
                    let (current, expires) = match space.get(&key, now) {
                        Some(e) => (parse_int(&e.value)?, e.expires),
                        None => (0, ttl.map_or(0, |t| now.saturating_add(t))),
                    };
                    let value = current.checked_add(delta).ok_or(KvError::Overflow)?;
                    Op::Set {
                        ns: ns.to_vec(),
                        key,
                        value: value.to_string().into_bytes(),
                        expires,
                    }
                }
            });
        }
        if ops.is_empty() {
            return Ok(Ack(None));
        }
        if let Err(e) = fits(space, &ops, quota) {
            space.purge(now);
            fits(space, &ops, quota).inspect_err(|_| log::debug!("state: quota: {e}"))?;
        }
        let mut payload = Vec::new();
        for op in &ops {
            record::encode_op(&mut payload, op);
        }
        // One commit is one record, and replay takes none longer than
        // `MAX_PAYLOAD` (`wasmgate kv import` runs without quotas).
        if payload.len() > usize::try_from(record::MAX_PAYLOAD).unwrap_or(usize::MAX) {
            return Err(KvError::Unavailable(format!(
                "a commit of {} bytes is larger than one log record ({} bytes)",
                payload.len(),
                record::MAX_PAYLOAD
            )));
        }
        let bytes = record::frame(&payload);
        let len = bytes.len() as u64;
        let (ack, rx) = match inner.durability {
            Durability::Always => {
                let (tx, rx) = smol::channel::bounded(1);
                (Some(tx), Some(rx))
            }
            Durability::Every(_) => (None, None),
        };
        // Queued before it is applied: a full queue refuses the commit
        // with nothing applied.
        let seq = inner.seq.saturating_add(1);
        let Some(tx) = &inner.tx else {
            return Err(KvError::Unavailable("the store is closed".into()));
        };
        // Counted before it is sent (the writer may write it at once);
        // commits count under the index's lock, so no two race here.
        let queued = self.shared.queued.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(len) > self.queue_bytes {
            return Err(KvError::Unavailable(format!(
                "{queued} bytes of commits wait for the disk already (at most {})",
                self.queue_bytes
            )));
        }
        self.shared.queued.fetch_add(len, Ordering::AcqRel);
        tx.try_send(Msg::Append(seq, bytes, ack)).map_err(|e| {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            KvError::Unavailable(if e.is_full() {
                format!("{QUEUE} commits wait for the disk already")
            } else {
                "the store is closed".into()
            })
        })?;
        inner.seq = seq;
        for op in ops {
            inner.keep(&op, seq);
            apply(&mut inner.spaces, op);
        }
        inner.log_bytes = inner.log_bytes.saturating_add(len);
        self.maybe_compact(inner, now);
        Ok(Ack(rx))
    }

    /// Rewrites the log with only the live entries when it has grown past
    /// [`COMPACT_MIN`] and twice what they take encoded: each compaction at
    /// least halves the log, so its cost is amortised over the writes that
    /// doubled it.
    fn maybe_compact(&self, inner: &mut Inner, now: u64) {
        if inner.log_bytes < COMPACT_MIN {
            return;
        }
        let live: u64 = inner
            .spaces
            .iter()
            .map(|(ns, s)| {
                // tag, 3 lengths, expiry and the namespace, per entry
                let per_entry = 21u64.saturating_add(ns.len() as u64);
                s.bytes
                    .saturating_add(per_entry.saturating_mul(s.entries.len() as u64))
                    .saturating_add(record::HEADER as u64)
            })
            .sum();
        if inner.log_bytes / 2 < live {
            return;
        }
        let bytes = snapshot(&mut inner.spaces, now);
        let len = bytes.len() as u64;
        // A full queue skips this compaction: the next commit tries again.
        if let Some(tx) = &inner.tx
            && tx.try_send(Msg::Rewrite(inner.seq, bytes)).is_ok()
        {
            inner.log_bytes = len;
        }
    }

    /// Stops the writer after it has written everything committed.
    pub fn close(&self) {
        self.lock().tx = None;
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether `ops` keep `space` within `quota`. A limit already passed (a
/// quota lowered in the config) refuses only what would grow further.
fn fits(space: &Space, ops: &[Op], quota: &Quota) -> Result<(), KvError> {
    let (mut keys, mut bytes) = (space.entries.len() as u64, space.bytes);
    let (keys0, bytes0) = (keys, bytes);
    for op in ops {
        let (key, new) = match op {
            Op::Set { key, value, .. } => {
                if value.len() as u64 > quota.max_value {
                    return Err(KvError::ValueTooLarge {
                        limit: quota.max_value,
                    });
                }
                (key, Some(value))
            }
            Op::Delete { key, .. } => (key, None),
        };
        if let Some(old) = space.entries.get(key) {
            keys = keys.saturating_sub(1);
            bytes = bytes.saturating_sub(weight(key, &old.value));
        }
        if let Some(value) = new {
            keys = keys.saturating_add(1);
            bytes = bytes.saturating_add(weight(key, value));
        }
    }
    if keys > quota.max_keys && keys > keys0 {
        return Err(KvError::TooManyKeys {
            limit: quota.max_keys,
        });
    }
    if bytes > quota.max_bytes && bytes > bytes0 {
        return Err(KvError::TooManyBytes {
            limit: quota.max_bytes,
        });
    }
    Ok(())
}

/// An `incr` operand: a decimal `i64`, surrounding whitespace allowed.
pub fn parse_int(value: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(KvError::NotANumber)
}

fn apply(spaces: &mut BTreeMap<Vec<u8>, Space>, op: Op) {
    match op {
        Op::Set {
            ns,
            key,
            value,
            expires,
        } => spaces
            .entry(ns)
            .or_default()
            .put(key, Entry { value, expires }),
        Op::Delete { ns, key } => {
            if let Some(space) = spaces.get_mut(&ns) {
                space.remove(&key);
            }
        }
    }
}

/// The log holding exactly the live entries: the header and one record
/// per namespace.
fn snapshot(spaces: &mut BTreeMap<Vec<u8>, Space>, now: u64) -> Vec<u8> {
    snapshot_in(spaces, now, SNAPSHOT_RECORD)
}

/// The longest payload of a compacted log's records: 64 MiB. A namespace's
/// entries are written in as many records as they need (each entry fits
/// one: a commit does, within `MAX_PAYLOAD`), so that however large a
/// namespace grew, replay reads every record back.
const SNAPSHOT_RECORD: usize = 64 << 20;

/// [`snapshot`] with records of at most `max_record` bytes of payload
/// (one entry more if a single entry is longer).
fn snapshot_in(spaces: &mut BTreeMap<Vec<u8>, Space>, now: u64, max_record: usize) -> Vec<u8> {
    let mut out = record::MAGIC.to_vec();
    spaces.retain(|_, space| {
        space.purge(now);
        !space.entries.is_empty()
    });
    for (ns, space) in spaces.iter() {
        let mut payload = Vec::new();
        for (key, e) in &space.entries {
            let op = Op::Set {
                ns: ns.clone(),
                key: key.clone(),
                value: e.value.clone(),
                expires: e.expires,
            };
            let start = payload.len();
            record::encode_op(&mut payload, &op);
            if payload.len() > max_record && start > 0 {
                let next = payload.split_off(start);
                out.extend(record::frame(&payload));
                payload = next;
            }
        }
        out.extend(record::frame(&payload));
    }
    out
}

/// The index the replayed `batches` make, over a log of `log_bytes`, with
/// the writer's channel `tx` (`None`: read only), and the state it shares
/// with the writer.
fn index(
    batches: Vec<Vec<Op>>,
    log_bytes: u64,
    tx: Option<smol::channel::Sender<Msg>>,
    durability: Durability,
) -> (Arc<Mutex<Inner>>, Arc<writer::Shared>) {
    let mut spaces: BTreeMap<Vec<u8>, Space> = BTreeMap::new();
    for ops in batches {
        for op in ops {
            apply(&mut spaces, op);
        }
    }
    let inner = Arc::new(Mutex::new(Inner {
        spaces,
        log_bytes,
        tx,
        seq: 0,
        kept: HashMap::new(),
        order: VecDeque::new(),
        pending_adds: HashMap::new(),
        durability,
        failed: None,
    }));
    let shared = Arc::new(writer::Shared {
        queued: AtomicU64::new(0),
        durability: Mutex::new(durability),
    });
    (inner, shared)
}

/// Writes the bytes of `bytes` from `from` on beside the log at `path`
/// (`kv.log.damaged-UNIXTIME`, synced) and returns its path.
fn keep_tail(path: &Path, bytes: &[u8], from: u64) -> Result<PathBuf, String> {
    let aside = aside_name(path);
    let from = usize::try_from(from).map_or(bytes.len(), |n| n.min(bytes.len()));
    let written = File::create(&aside).and_then(|mut f| {
        std::io::Write::write_all(&mut f, &bytes[from..])?;
        f.sync_all()
    });
    written.map_err(|e| {
        format!(
            "{}: cannot keep the damaged part aside in {}: {e}",
            path.display(),
            aside.display()
        )
    })?;
    if let Some(dir) = path.parent() {
        writer::sync_dir(dir)?;
    }
    Ok(aside)
}

/// A free name beside `path` for a damaged log: `kv.log.damaged-<unix s>`.
fn aside_name(path: &Path) -> PathBuf {
    let stem = format!("{}.damaged-{}", path.display(), now_ms() / 1000);
    let mut aside = PathBuf::from(&stem);
    for n in 1..1000 {
        if !aside.exists() {
            break;
        }
        aside = PathBuf::from(format!("{stem}.{n}"));
    }
    aside
}

/// Renames `path` to `PATH.damaged-UNIXTIME` (`.N` added if that exists).
fn set_aside(path: &Path) -> Result<PathBuf, String> {
    let aside = aside_name(path);
    std::fs::rename(path, &aside)
        .map_err(|e| format!("{}: cannot move the damaged log aside: {e}", path.display()))?;
    Ok(aside)
}

/// Takes the store's lock file (flock, exclusive, not waiting) and writes
/// our pid into it; refuses with the holder's pid.
fn lock(dir: &Path) -> Result<File, String> {
    use std::io::{Seek, Write};
    let path = dir.join(LOCK);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        return Err(format!(
            "the store in {} is in use by another process (pid {}): stop it first",
            dir.display(),
            pid.trim()
        ));
    }
    f.set_len(0)
        .and_then(|()| f.rewind())
        .and_then(|()| writeln!(f, "{}", std::process::id()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(f)
}

/// A commit's acknowledgement (see [`Store::commit`]).
#[must_use]
pub struct Ack(Option<smol::channel::Receiver<Result<(), String>>>);

impl Ack {
    /// Waits until the commit is durable (under `sync = "always"`).
    pub async fn durable(self) -> Result<(), KvError> {
        let Some(rx) = self.0 else { return Ok(()) };
        match rx.recv().await {
            Ok(result) => result.map_err(KvError::Unavailable),
            Err(_) => Err(KvError::Unavailable("the store's writer stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests;
