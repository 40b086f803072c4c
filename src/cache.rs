//! Compiled modules, loaded on first use and kept in a bounded LRU.
//!
//! A module is keyed by its path and ABI choice and stamped with the file's
//! size and modification time (and, with `[signatures]`, its `.sig`
//! file's: a new or changed signature is a changed module; `load` checks
//! the signature on the bytes it compiles, see `signature.rs`). The file is stat'ed again only once
//! `module_check_interval` has passed since its last check (a `stat` per
//! request was a measurable share of the server's CPU), so a changed file is
//! recompiled on its first request after that. Load failures are cached with
//! the same stamp, so a broken module costs one compile attempt per change,
//! not one per request. Compilation is eager: wasmi validates and translates
//! every function here, on the load helper thread, never on the serving
//! thread when a function is first called.
//!
//! A missing file is never cached: `functions_dir` routes are made from
//! request paths, so caching misses would let requests for made-up names
//! evict real modules and force recompiles. A missing file is stat'ed on
//! every request instead (404s are not the hot path), and a cached module
//! whose file is found gone is dropped.
//!
//! Each cached module has an engine of its own: a wasmi engine keeps every
//! function it ever compiled until it is dropped, so with one shared engine
//! each evicted or reloaded module would leak its code (60–75 KiB for a
//! small Rust function). Dropping the entry drops the engine and its code.
//!
//! An http-wasm middleware's snapshots (`abi::http_wasm::Snapshots`, each
//! a second compiled module with the data its `_start` left) are counted
//! against the entry of the module they were made of when the thread that
//! makes one settles it through a [`Ledger`], which may evict other
//! entries; an entry that leaves the cache drops its snapshots.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use smol::lock::MutexGuardArc;
use wasmi::{Module, Store, TrapCode};

use crate::abi;
pub use crate::abi::Compiled;
use crate::abi::http_wasm::{MAX_MODULE_IMAGE_BYTES, Snapshot};
use crate::config::AbiChoice;
use crate::error::LimitExceeded;
use crate::error::LoadError;
use crate::limits::{FunctionLimits, ServerLimits};
use crate::runtime::structure::Shape;
use crate::runtime::{HostState, Runtime};
use crate::signature;

/// A cached module with the engine (and linker) that owns its code.
pub struct Loaded {
    /// The engine the module was compiled with, and its linker.
    pub runtime: Runtime,
    /// The module.
    pub compiled: Compiled,
    /// Its http-wasm snapshots, by config.
    pub snapshots: abi::http_wasm::Snapshots,
}

/// Reads, validates and inspects one module file, compiling it with
/// `runtime`'s engine: refused if it is over a structural limit or cannot
/// be instantiated whatever the request (see `trial`).
pub fn load(
    runtime: &Runtime,
    path: &Path,
    choice: AbiChoice,
    limits: &ServerLimits,
) -> Result<Compiled, LoadError> {
    let read_error = |error| LoadError::Read {
        path: path.to_owned(),
        error,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > limits.max_module_size {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit: limits.max_module_size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    load_bytes(runtime, path, bytes, choice, limits)
}

/// [`load`] of `bytes` already read from `path` (`wasmgate replay`
/// compiles the bytes it hashed, not a second read of the file).
pub fn load_bytes(
    runtime: &Runtime,
    path: &Path,
    bytes: Vec<u8>,
    choice: AbiChoice,
    limits: &ServerLimits,
) -> Result<Compiled, LoadError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limits.max_module_size {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            limit: limits.max_module_size,
        });
    }
    // Verified on the bytes that are compiled, before anything parses
    // them; a Gojinn trailer is removed here.
    let (bytes, signature) =
        signature::check(&limits.signatures, path, bytes).map_err(|error| {
            LoadError::Signature {
                path: path.to_owned(),
                error,
            }
        })?;
    let invalid = |message: String| LoadError::Invalid {
        path: path.to_owned(),
        message,
    };
    let refused = |exceeded| LoadError::Limit {
        path: path.to_owned(),
        exceeded,
    };
    // Counted before compiling: wasmi's parsed module of a million globals
    // alone is ~40 MB. Bytes the counting cannot parse are left to wasmi,
    // whose validation names the problem.
    let shape = Shape::of(&bytes);
    // So is the estimate of what the compiled module will hold: translating
    // a module only to refuse it for its size cost up to ~75 MB and ~1 s
    // per request outside every bound.
    let estimate = |shape: &Shape| shape.cache_bytes(bytes.len());
    if let Ok(shape) = &shape {
        shape.check(&limits.module).map_err(refused)?;
        let cache_bytes = estimate(shape);
        if cache_bytes > limits.module_cache_bytes {
            return Err(refused(LimitExceeded {
                what: "bytes in the module cache (estimated)",
                actual: cache_bytes,
                limit: limits.module_cache_bytes,
                key: Some("module_cache_bytes"),
            }));
        }
    }
    let module = Module::new(runtime.engine(), &bytes).map_err(|e| invalid(e.to_string()))?;
    let shape = shape.map_err(invalid)?;
    let mut cache_bytes = estimate(&shape);
    let abi = abi::inspect(&module, path, choice)?;
    let instantiate_error = |message| LoadError::Instantiate {
        path: path.to_owned(),
        message,
    };
    let stubbed = runtime
        .with_stubs(&module)
        .map_err(|e| instantiate_error(e.to_string()))?;
    trial(
        stubbed.as_ref().unwrap_or(runtime),
        &module,
        limits.memory_budget,
    )
    .map_err(instantiate_error)?;
    // Kept for the snapshots of its `_start` (`abi::http_wasm::Snapshot`).
    let source = (abi == abi::Abi::HttpWasm
        && stubbed.is_none()
        && module.get_export(abi::http_wasm::START).is_some())
    .then(|| {
        cache_bytes = cache_bytes.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        bytes.into_boxed_slice()
    });
    let kv = crate::runtime::imports::uses_kv(&module);
    Ok(Compiled {
        module,
        abi,
        shape,
        cost: shape.cost(),
        cache_bytes,
        stubbed,
        source,
        signature,
        kv,
    })
}

/// Instantiates `module` once in a throwaway store without running its
/// `start` function (the store has no fuel: the start function, if any,
/// stops at its first instruction), so that a module that fails to
/// instantiate on every request (a data or element segment out of bounds,
/// a memory larger than the memory budget) is refused when it loads, not
/// reported as a trap per request. Memories and tables go through a limiter
/// capped at `memory_budget`, which no function's `memory` may exceed.
fn trial(runtime: &Runtime, module: &Module, memory_budget: u64) -> Result<(), String> {
    let state = HostState::new(Rc::from("load"), Rc::from("-"), memory_budget, 0);
    let mut store = Store::new(runtime.engine(), state);
    store.limiter(|state| &mut state.limiter);
    store.set_fuel(0).map_err(|e| e.to_string())?;
    let Err(error) = runtime.linker().instantiate_and_start(&mut store, module) else {
        return Ok(());
    };
    if error.as_trap_code() == Some(TrapCode::OutOfFuel) {
        return Ok(());
    }
    if store.data().limiter.denied {
        return Err(format!(
            "its initial memories and tables are larger than memory_budget ({memory_budget} bytes)"
        ));
    }
    Err(error.to_string())
}

/// A module file's size and modification time, and its `.sig` file's
/// when signatures are checked: a changed signature is a changed module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// `None` when there is no `.sig` or signatures are not checked.
    sig: Option<(u64, Option<SystemTime>)>,
}

impl Stamp {
    /// The file's stamp; a `NotFound` error when there is no regular file.
    /// With `signed`, its `.sig` file's stamp too.
    fn of(path: &Path, signed: bool) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a regular file",
            ));
        }
        let sig = match signed {
            false => None,
            true => match std::fs::metadata(signature::sig_path(path)) {
                Ok(meta) => Some((meta.len(), meta.modified().ok())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                // There but not stat'able: `load` says why when it reads it.
                Err(_) => Some((u64::MAX, None)),
            },
        };
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            sig,
        })
    }
}

/// Whether `error` says the module file does not exist (as opposed to
/// existing but being unusable). [`ModuleCache::get`] never caches these.
pub fn is_missing(error: &LoadError) -> bool {
    matches!(error, LoadError::Read { error, .. } if error.kind() == std::io::ErrorKind::NotFound)
}

struct Entry {
    /// `None` when the file's metadata could not be read (but it exists).
    stamp: Option<Stamp>,
    /// When the stamp was last compared with the file.
    checked: Instant,
    loaded: Result<Arc<Loaded>, Arc<LoadError>>,
    /// Estimated bytes of the module's http-wasm snapshots (see
    /// [`Ledger::settle`]).
    snapshot_bytes: u64,
    last_used: u64,
    /// Its GreedyDual-Size value: the cache's inflation when it was last
    /// used plus [`Entry::bonus`]. The lowest is evicted first.
    priority: u64,
}

/// A module of `n` estimated bytes earns `SIZE_BONUS / n` of priority when
/// it is used: 2^40 puts a 100 KiB module ~10 million ahead, a 50 MiB one
/// ~20 thousand.
const SIZE_BONUS: u64 = 1 << 40;

impl Entry {
    /// Estimated bytes the entry holds, its snapshots' included (a cached
    /// failure: none to speak of).
    fn bytes(&self) -> u64 {
        self.loaded.as_ref().map_or(0, |l| {
            l.compiled.cache_bytes.saturating_add(self.snapshot_bytes)
        })
    }

    /// What a use adds to the cache's inflation: inversely proportional to
    /// the entry's size, none for a cached failure (the first to go).
    fn bonus(&self) -> u64 {
        match self.loaded {
            Ok(_) => SIZE_BONUS / self.bytes().max(1),
            Err(_) => 0,
        }
    }

    /// Marks a use at LRU clock `now` with the cache's `inflation`.
    fn touch(&mut self, now: u64, inflation: u64) {
        self.last_used = now;
        self.priority = inflation.saturating_add(self.bonus());
    }
}

type Key = (PathBuf, AbiChoice);
type Entries = HashMap<Key, Entry>;

/// The module cache. `Send + Sync`, so that executors on several threads
/// can share one; the locks it takes are std mutexes held for a lookup or
/// an insertion, never across an `.await`.
pub struct ModuleCache {
    /// The entries and their bytes, shared with the threads that make
    /// snapshots ([`Ledger`]).
    books: Arc<Books>,
    limits: ServerLimits,
    check_interval: Duration,
    clock: AtomicU64,
    /// Held while a module compiles: one compile at a time.
    compiling: Arc<smol::lock::Mutex<()>>,
    /// Requests waiting for [`Self::compiling`], by (deadline in µs since
    /// `epoch`, arrival): see [`ModuleCache::lane`]. Each holds the sender
    /// that tells it it is next.
    waiting: Mutex<BTreeMap<(u64, u64), smol::channel::Sender<()>>>,
    epoch: Instant,
    /// Lookups answered from the cache, lookups that were not, and
    /// modules read and compiled (or refused).
    hits: AtomicU64,
    misses: AtomicU64,
    compiles: AtomicU64,
}

/// The cache's entries and what they hold.
struct Books {
    capacity: usize,
    capacity_bytes: u64,
    entries: Mutex<Entries>,
    /// Sum of the entries' [`Entry::bytes`]. Written only with `entries`
    /// locked, like `inflation`.
    bytes: AtomicU64,
    /// GreedyDual-Size's inflation: the priority of the last entry evicted.
    inflation: AtomicU64,
}

/// Where the snapshots of the cache's modules are counted: a handle on the
/// cache for the thread that makes one, which may finish after the module
/// was evicted or reloaded, or after the cache itself is gone (a config
/// reload starts a new one).
pub struct Ledger(Weak<Books>);

/// The cache's numbers of the moment: see [`ModuleCache::stats`].
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub compiles: u64,
}

// Shared by every executor thread; what a compile hands out is too
// (wasmi's and hyper's way of keeping a type `Send + Sync`).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ModuleCache>();
    assert_send_sync::<Ledger>();
    assert_send_sync::<Loaded>();
    assert_send_sync::<Compiled>();
    assert_send_sync::<LoadError>();
};

/// Locks `mutex`. A panic while it was held (none is expected: the
/// critical sections only move values) leaves consistent data behind, so a
/// poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How fast the compile lane assumes modules load, for ordering waiters:
/// 16 bytes per µs (1 MiB in ~65 ms, about what eager translation takes on
/// the development machine). See [`ModuleCache::lane`].
const LANE_BYTES_PER_MICROSECOND: u64 = 16;

impl ModuleCache {
    /// What the metrics show of the cache.
    pub fn stats(&self) -> CacheStats {
        let entries = lock(&self.books.entries).len();
        CacheStats {
            entries: u64::try_from(entries).unwrap_or(u64::MAX),
            bytes: self.books.bytes.load(Relaxed),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            compiles: self.compiles.load(Relaxed),
        }
    }

    /// A cache holding at most `module_cache` modules of together at most
    /// `module_cache_bytes` (estimated), checking a module's file for a
    /// change at most once per `module_check_interval` (zero: every
    /// request), loading modules under `limits`.
    pub fn new(limits: &ServerLimits) -> Self {
        Self {
            books: Arc::new(Books {
                capacity: limits.module_cache.max(1),
                capacity_bytes: limits.module_cache_bytes,
                entries: Mutex::new(HashMap::new()),
                bytes: AtomicU64::new(0),
                inflation: AtomicU64::new(0),
            }),
            limits: limits.clone(),
            check_interval: limits.module_check_interval,
            clock: AtomicU64::new(0),
            compiling: Arc::new(smol::lock::Mutex::new(())),
            waiting: Mutex::new(BTreeMap::new()),
            epoch: Instant::now(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
        }
    }

    /// The module at `path`, compiling it if it is new or changed. A missing
    /// file is an error that [`is_missing`] recognises; it is not cached and
    /// not logged.
    ///
    /// Reading and compiling a module (up to `max_module_size`, ~8 ms per
    /// MiB here) runs on a helper thread, one module at a time, so other
    /// requests keep being served meanwhile and a client cycling through
    /// more functions than the cache holds cannot occupy more than that one
    /// thread with compiles.
    pub async fn get(&self, path: &Path, choice: AbiChoice) -> Result<Arc<Loaded>, Arc<LoadError>> {
        let key = (path.to_owned(), choice);
        let size = match self.lookup(&key) {
            Lookup::Cached(loaded) => {
                self.hits.fetch_add(1, Relaxed);
                return loaded;
            }
            Lookup::Missing(error) => return Err(Arc::new(error)),
            Lookup::Changed(stamp) => {
                self.misses.fetch_add(1, Relaxed);
                stamp.map_or(0, |s| s.len)
            }
        };
        // One compile at a time, smallest file first. The guard moves into
        // the helper thread's job and comes back with its result: a compile
        // whose client went away holds the lane until it finishes
        // (disconnecting cannot stack up compiles), and a finished one holds
        // it until its result is in the cache (a waiter for the same module
        // then finds it there).
        let lane = self.lane(size).await;
        // Another request may have compiled this module while we waited.
        let stamp = match self.lookup(&key) {
            Lookup::Changed(stamp) => stamp,
            Lookup::Cached(loaded) => return loaded,
            Lookup::Missing(error) => return Err(Arc::new(error)),
        };
        self.compiles.fetch_add(1, Relaxed);
        let file = path.to_owned();
        let limits = self.limits.clone();
        let compiled = crate::threads::off_thread("wasmgate-compile", move || {
            let runtime = Runtime::new();
            let loaded = load(&runtime, &file, choice, &limits).map(|compiled| Loaded {
                runtime,
                compiled,
                snapshots: abi::http_wasm::Snapshots::default(),
            });
            (loaded, lane)
        })
        .await;
        let Some((loaded, lane)) = compiled else {
            // Not cached: the next request tries again.
            log::error!("compiling {} panicked", path.display());
            return Err(Arc::new(LoadError::Internal {
                path: path.to_owned(),
                message: "its compile ended without a result (a wasmgate bug)",
            }));
        };
        let loaded = loaded.map(Arc::new).map_err(Arc::new);
        let books = &*self.books;
        let mut entries = lock(&books.entries);
        match &loaded {
            Ok(l) if self.limits.signatures.enabled() => log::info!(
                "loaded {} ({} ABI), signature {}",
                path.display(),
                l.compiled.abi,
                l.compiled.signature
            ),
            Ok(l) => log::info!("loaded {} ({} ABI)", path.display(), l.compiled.abi),
            // Removed between the stat and the read.
            Err(e) if is_missing(e) => {
                self.forget(&mut entries, &key);
                return loaded;
            }
            Err(e) => log::warn!("module unavailable: {e}"),
        }
        let mut entry = Entry {
            stamp,
            checked: Instant::now(),
            loaded: loaded.clone(),
            snapshot_bytes: 0,
            last_used: 0,
            priority: 0,
        };
        entry.touch(self.tick(), books.inflation.load(Relaxed));
        books.remove(&mut entries, &key);
        // `load` refused any module larger than the byte bound alone.
        books.make_room(&mut entries, 1, entry.bytes());
        entry.priority = books.inflation.load(Relaxed).saturating_add(entry.bonus());
        books.add_bytes(entry.bytes());
        entries.insert(key, entry);
        drop(lane);
        loaded
    }

    /// Waits for the compile lane. Waiters go earliest deadline first, a
    /// module's deadline being its arrival plus the time its size takes to
    /// load at [`LANE_BYTES_PER_MICROSECOND`]: small modules pass large
    /// ones that came at about the same time (in FIFO order, a tenant
    /// cycling through many large modules queued every other function's
    /// reload behind all of them: `/hello` waited 1.9 s behind 32 loads),
    /// and a large module is not passed for ever by a stream of small ones
    /// (with smallest-first alone, an 8 MiB module waited 15 s). Only the
    /// first waiter goes to the lock, so a module waits for the compile
    /// running, not for the queue.
    async fn lane(&self, size: u64) -> MutexGuardArc<()> {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let deadline = now.saturating_add(size / LANE_BYTES_PER_MICROSECOND);
        let key = (deadline, self.tick());
        let (next, is_next) = smol::channel::bounded(1);
        let mut first = {
            let mut waiting = lock(&self.waiting);
            waiting.insert(key, next);
            waiting.keys().next() == Some(&key)
        };
        // Leaves the queue on return or when the request is dropped, and
        // then tells the new first waiter to go to the lock.
        let _ticket = Ticket { cache: self, key };
        loop {
            if !first {
                // The sender is in the queue until the ticket is dropped.
                let _ = is_next.recv().await;
            }
            let lane = self.compiling.lock_arc().await;
            if lock(&self.waiting).keys().next() == Some(&key) {
                return lane;
            }
            // A smaller module came while this one waited at the lock: it
            // is at the lock too (or on its way), and goes first; this one
            // is told again when it is first.
            first = false;
        }
    }

    /// Drops the entry of a module whose file is gone.
    fn forget(&self, entries: &mut Entries, key: &Key) {
        if self.books.remove(entries, key) {
            log::info!(
                "dropped {} from the module cache: the file is gone",
                key.0.display()
            );
        }
    }

    /// What the cache knows about `key` without compiling: a result that
    /// still stands (re-stat'ing the file if `check_interval` has passed),
    /// a missing file, or the stamp of a file that needs compiling.
    fn lookup(&self, key: &Key) -> Lookup {
        let now = self.tick();
        let checked = Instant::now();
        let inflation = &self.books.inflation;
        let mut entries = lock(&self.books.entries);
        // Checked recently: trust the cached result without a syscall.
        if let Some(entry) = entries.get_mut(key)
            && checked.duration_since(entry.checked) < self.check_interval
        {
            entry.touch(now, inflation.load(Relaxed));
            return Lookup::Cached(entry.loaded.clone());
        }
        let stamp = match Stamp::of(&key.0, self.limits.signatures.enabled()) {
            Ok(stamp) => Some(stamp),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.forget(&mut entries, key);
                return Lookup::Missing(LoadError::Read {
                    path: key.0.clone(),
                    error,
                });
            }
            // Exists but cannot be stat'ed: `load` reports why, and the
            // failure is cached like any other.
            Err(_) => None,
        };
        // Same size and mtime: the cached result stands, so a broken module
        // is reported once, not per request.
        if let Some(entry) = entries.get_mut(key)
            && entry.stamp == stamp
        {
            entry.checked = checked;
            entry.touch(now, inflation.load(Relaxed));
            return Lookup::Cached(entry.loaded.clone());
        }
        Lookup::Changed(stamp)
    }

    /// Where the snapshots of this cache's modules are counted.
    pub fn ledger(&self) -> Ledger {
        Ledger(Arc::downgrade(&self.books))
    }

    /// The LRU clock's next tick.
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Relaxed).wrapping_add(1)
    }
}

impl Books {
    /// Removes the entry of `key`, if any, and its bytes; its snapshots
    /// are dropped (instances made from them keep theirs until they end).
    fn remove(&self, entries: &mut Entries, key: &Key) -> bool {
        match entries.remove(key) {
            Some(entry) => {
                let bytes = self.bytes.load(Relaxed).saturating_sub(entry.bytes());
                self.bytes.store(bytes, Relaxed);
                if let Ok(loaded) = &entry.loaded {
                    loaded.snapshots.close();
                }
                true
            }
            None => false,
        }
    }

    /// Evicts entries until `new` more entries of together `bytes` more
    /// fit both bounds. By GreedyDual-Size: the lowest
    /// priority, so large modules and failures go before small ones used
    /// as recently, and least recently used among equals. Plain LRU let a
    /// tenant's large modules, each used more often than a small function,
    /// evict it over and over; its reload then waited for their ~1 s
    /// compiles (/hello max 1 s in the attacker review).
    fn make_room(&self, entries: &mut Entries, new: usize, bytes: u64) {
        while entries.len().saturating_add(new) > self.capacity
            || self.bytes.load(Relaxed).saturating_add(bytes) > self.capacity_bytes
        {
            let Some((victim, priority)) = entries
                .iter()
                .min_by_key(|(_, e)| (e.priority, e.last_used))
                .map(|(k, e)| (k.clone(), e.priority))
            else {
                break;
            };
            self.inflation.fetch_max(priority, Relaxed);
            self.remove(entries, &victim);
        }
    }

    /// Adds `bytes` to [`Self::bytes`]; with `entries` locked.
    fn add_bytes(&self, bytes: u64) {
        let total = self.bytes.load(Relaxed).saturating_add(bytes);
        self.bytes.store(total, Relaxed);
    }
}

impl Ledger {
    /// Records the snapshot made of `loaded` for `config` and `limits`
    /// (`None`: there is none), counting its estimated bytes against the
    /// cache entry that holds `loaded`, in the cache's free room (no module
    /// is evicted for a snapshot). Err: why it is not kept: `loaded` is no
    /// longer cached (evicted, its file changed, or the config reloaded),
    /// the cache has no room for it, or its module's snapshots
    /// hold too much data already ([`Snapshots::settle`]).
    pub fn settle(
        &self,
        loaded: &Arc<Loaded>,
        config: &Arc<[u8]>,
        limits: &FunctionLimits,
        snapshot: Option<Arc<Snapshot>>,
    ) -> Result<(), String> {
        let refuse = |why: String| {
            loaded.snapshots.settle(config, limits, None);
            Err(why)
        };
        let Some(snapshot) = snapshot else {
            loaded.snapshots.settle(config, limits, None);
            return Ok(());
        };
        let gone = || "its module left the module cache meanwhile".to_string();
        let Some(books) = self.0.upgrade() else {
            return refuse(gone());
        };
        // Under the entries' lock, so that the entry cannot be evicted or
        // replaced between finding it and counting the snapshot in it.
        let mut entries = lock(&books.entries);
        let Some(key) = entries
            .iter()
            .find(|(_, e)| e.loaded.as_ref().is_ok_and(|l| Arc::ptr_eq(l, loaded)))
            .map(|(key, _)| key.clone())
        else {
            return refuse(gone());
        };
        // Only into free room: a snapshot saves its module's `_start`, and
        // evicting another module for it would make the two modules evict
        // each other in turn (a compile and a snapshot per request).
        let bytes = snapshot.cache_bytes;
        let total = books.bytes.load(Relaxed).saturating_add(bytes);
        if total > books.capacity_bytes {
            return refuse(format!(
                "~{} KiB more would take the module cache past `module_cache_bytes` ({}); \
                 modules are not evicted for a snapshot",
                bytes / 1024,
                books.capacity_bytes
            ));
        }
        if !loaded.snapshots.settle(config, limits, Some(snapshot)) {
            return Err(format!(
                "its module's snapshots hold {} MiB of data already",
                MAX_MODULE_IMAGE_BYTES >> 20
            ));
        }
        if let Some(entry) = entries.get_mut(&key) {
            entry.snapshot_bytes = entry.snapshot_bytes.saturating_add(bytes);
            books.add_bytes(bytes);
        }
        Ok(())
    }
}

/// A request's place in the compile lane's queue; see [`ModuleCache::lane`].
struct Ticket<'a> {
    cache: &'a ModuleCache,
    key: (u64, u64),
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut waiting = lock(&self.cache.waiting);
        let was_first = waiting.keys().next() == Some(&self.key);
        waiting.remove(&self.key);
        if was_first && let Some(next) = waiting.values().next() {
            // Full means it was already told.
            let _ = next.try_send(());
        }
    }
}

/// See [`ModuleCache::lookup`].
enum Lookup {
    Cached(Result<Arc<Loaded>, Arc<LoadError>>),
    Missing(LoadError),
    Changed(Option<Stamp>),
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    // What the tests inspect; the server has no use for these.
    impl ModuleCache {
        /// Modules currently held.
        fn len(&self) -> usize {
            lock(&self.books.entries).len()
        }

        /// Estimated bytes of the modules held.
        fn bytes(&self) -> u64 {
            self.books.bytes.load(Relaxed)
        }

        /// Whether the cache holds no module.
        fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str) -> Self {
            let name = format!("wasmgate-cache-{}-{tag}.wasm", std::process::id());
            Self(std::env::temp_dir().join(name))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn cache(capacity: usize, check_interval: Duration) -> ModuleCache {
        ModuleCache::new(&ServerLimits {
            module_cache: capacity,
            module_check_interval: check_interval,
            ..ServerLimits::default()
        })
    }

    fn failure(cache: &ModuleCache, path: &Path) -> Arc<LoadError> {
        match smol::block_on(cache.get(path, AbiChoice::Auto)) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(e) => e,
        }
    }

    /// Holds the compile lane while requests for modules with data
    /// segments of `pads` bytes arrive, `pause` apart; checks that they all
    /// queued, releases the lane and returns the order they loaded in.
    fn lane_order(tag: &str, pads: &[usize], pause: Duration) -> Vec<usize> {
        let files: Vec<TempFile> = pads
            .iter()
            .enumerate()
            .map(|(i, pad)| {
                let file = TempFile::new(&format!("{tag}-{i}"));
                let text = format!(
                    "(module (memory 1) (data (i32.const 0) \"{}\"))",
                    "a".repeat(*pad)
                );
                std::fs::write(&file.0, wat::parse_str(&text).unwrap()).unwrap();
                file
            })
            .collect();
        let cache = cache(8, Duration::ZERO);
        let done = RefCell::new(Vec::new());
        let executor = smol::LocalExecutor::new();
        let held = smol::block_on(cache.compiling.lock_arc());
        let tasks: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, file)| {
                if i > 0 {
                    std::thread::sleep(pause);
                }
                let (cache, done) = (&cache, &done);
                let task = executor.spawn(async move {
                    let _ = cache.get(&file.0, AbiChoice::Auto).await;
                    done.borrow_mut().push(i);
                });
                // Each takes its place in the queue before the next comes.
                while executor.try_tick() {}
                task
            })
            .collect();
        assert_eq!(lock(&cache.waiting).len(), pads.len());
        drop(held);
        smol::block_on(executor.run(async {
            for task in tasks {
                task.await;
            }
        }));
        assert!(lock(&cache.waiting).is_empty());
        done.borrow().clone()
    }

    #[test]
    fn smaller_modules_go_first_in_the_compile_lane() {
        // Three requests wait for the lane while it is held; arriving
        // within a few ms of each other, they go smallest first (their
        // deadlines are 25 and 50 ms apart), whatever order they came in.
        let order = lane_order("lane", &[400_000, 800_000, 10], Duration::ZERO);
        assert_eq!(order, [2, 0, 1]);
    }

    #[test]
    fn a_large_module_is_not_passed_for_ever_by_smaller_ones() {
        // A 1.6 MB module waits for the lane; one that comes more than its
        // 100 ms later goes after it, however small.
        let order = lane_order("aging", &[1_600_000, 10], Duration::from_millis(150));
        assert_eq!(order, [0, 1]);
    }

    #[test]
    fn small_modules_outlive_large_ones_used_as_recently() {
        let hello = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("functions/hello.wasm");
        let bigs: Vec<TempFile> = (0..3)
            .map(|i| {
                let file = TempFile::new(&format!("gds-{i}"));
                let text = format!(
                    "(module (memory (export \"memory\") 1) (func (export \"_start\") {}))",
                    "nop ".repeat(100_000)
                );
                std::fs::write(&file.0, wat::parse_str(&text).unwrap()).unwrap();
                file
            })
            .collect();
        let estimate = |path: &Path| {
            let roomy = cache(8, Duration::ZERO);
            let loaded = smol::block_on(roomy.get(path, AbiChoice::Auto)).unwrap();
            loaded.compiled.cache_bytes
        };
        let (small, big) = (estimate(&hello), estimate(&bigs[0].0));
        assert!(small * 4 < big, "{small} {big}");
        // Room for hello and two of the large modules, not three.
        let cache = ModuleCache::new(&ServerLimits {
            module_cache_bytes: small + 2 * big + small / 2,
            module_check_interval: Duration::from_secs(3600),
            ..ServerLimits::default()
        });
        let get = |path: &Path| smol::block_on(cache.get(path, AbiChoice::Auto)).unwrap();
        let first = get(&hello);
        get(&bigs[0].0);
        get(&bigs[1].0);
        // Least recently used, hello would make room for the third.
        get(&bigs[2].0);
        assert_eq!(cache.len(), 3);
        assert!(Arc::ptr_eq(&first, &get(&hello)));
    }

    #[test]
    fn a_file_is_checked_again_only_after_the_interval() {
        let file = TempFile::new("interval");
        std::fs::write(&file.0, b"\0asm broken").unwrap();
        let patient = cache(4, Duration::from_secs(3600));
        let eager = cache(4, Duration::ZERO);
        let (p1, e1) = (failure(&patient, &file.0), failure(&eager, &file.0));
        // Unchanged: both answer from the cache.
        assert!(Arc::ptr_eq(&p1, &failure(&patient, &file.0)));
        assert!(Arc::ptr_eq(&e1, &failure(&eager, &file.0)));
        // Changed (another size): only the cache that checks now sees it.
        std::fs::write(&file.0, b"not wasm at all").unwrap();
        assert!(Arc::ptr_eq(&p1, &failure(&patient, &file.0)));
        let e2 = failure(&eager, &file.0);
        assert!(!Arc::ptr_eq(&e1, &e2));
        assert!(matches!(*e2, LoadError::Invalid { .. }), "{e2}");
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_as_well_as_count() {
        // Five modules of ~100 KB each (file bytes, mostly a data segment).
        let data = "\\2a".repeat(100_000);
        let files: Vec<TempFile> = (0..5)
            .map(|i| {
                let file = TempFile::new(&format!("bytes{i}"));
                let wat = format!(
                    r#"(module (memory 2) (func (export "_start")) (data (i32.const {i}) "{data}"))"#
                );
                std::fs::write(&file.0, wat::parse_str(&wat).unwrap()).unwrap();
                file
            })
            .collect();
        let cache = ModuleCache::new(&ServerLimits {
            module_cache: 64,
            module_cache_bytes: 250_000,
            ..ServerLimits::default()
        });
        let get = |file: &TempFile| match smol::block_on(cache.get(&file.0, AbiChoice::Auto)) {
            Ok(loaded) => loaded,
            Err(e) => panic!("{e}"),
        };
        let mut last = None;
        for file in &files {
            last = Some(get(file));
            assert!(cache.bytes() <= 250_000, "{} bytes", cache.bytes());
        }
        assert_eq!(cache.len(), 2);
        // The most recent module is the one kept.
        let last = last.unwrap();
        assert!(Arc::ptr_eq(&last, &get(&files[4])));
        assert!(last.compiled.cache_bytes > 100_000);
        // A module larger than the whole bound is refused, not cached alone.
        let small = ModuleCache::new(&ServerLimits {
            module_cache_bytes: 50_000,
            ..ServerLimits::default()
        });
        let e = failure(&small, &files[0].0);
        assert!(
            e.to_string().contains("`module_cache_bytes` (50000)"),
            "{e}"
        );
    }

    /// Makes the snapshot of `loaded` (an http-wasm module with `_start`)
    /// for an empty config and the default limits, runs `meanwhile`, and
    /// settles it in `ledger`.
    fn make_snapshot(
        ledger: &Ledger,
        loaded: &Arc<Loaded>,
        meanwhile: impl FnOnce(),
    ) -> Result<u64, String> {
        let (config, limits) = (Arc::<[u8]>::from(&b""[..]), FunctionLimits::default());
        assert!(matches!(
            loaded.snapshots.claim(&config, &limits),
            abi::http_wasm::Claim::Make
        ));
        let guest = abi::http_wasm::Guest {
            name: "snap",
            trace_id: "test",
            limits: &limits,
            config: Arc::clone(&config),
            exchange: crate::runtime::exchange::ExchangeLimits::new(
                &ServerLimits::default(),
                &limits,
            ),
            kv: Err("none".into()),
            tape: None,
        };
        let source = loaded.compiled.source.as_deref().unwrap();
        let made =
            abi::http_wasm::prepare(&loaded.runtime, &loaded.compiled, source, guest).unwrap();
        let bytes = made.cache_bytes;
        meanwhile();
        ledger.settle(loaded, &config, &limits, Some(Arc::new(made)))?;
        Ok(bytes)
    }

    #[test]
    fn snapshots_count_against_their_module_and_go_with_it() {
        // An http-wasm middleware whose `_start` leaves 200,000 bytes of
        // data, and a small module.
        let snap = TempFile::new("snap");
        let text = r#"(module
          (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
          (memory (export "memory") 4)
          (func (export "_start")
            (drop (call $enable (i32.const 0)))
            (memory.fill (i32.const 0) (i32.const 1) (i32.const 200000)))
          (func (export "handle_request") (result i64) (i64.const 1))
          (func (export "handle_response") (param i32 i32)))"#;
        std::fs::write(&snap.0, wat::parse_str(text).unwrap()).unwrap();
        let small = TempFile::new("small");
        std::fs::write(
            &small.0,
            wat::parse_str(r#"(module (func (export "_start")))"#).unwrap(),
        )
        .unwrap();
        let get = |cache: &ModuleCache, path: &Path| {
            smol::block_on(cache.get(path, AbiChoice::Auto)).unwrap()
        };
        let roomy = cache(8, Duration::from_secs(3600));
        let loaded = get(&roomy, &snap.0);
        let module = roomy.bytes();
        let snapshot = make_snapshot(&roomy.ledger(), &loaded, || {}).unwrap();
        assert!(snapshot > 200_000, "{snapshot}");
        assert_eq!(roomy.bytes(), module + snapshot);
        // Made ready, and counted once.
        let config = Arc::<[u8]>::from(&b""[..]);
        let claim = loaded.snapshots.claim(&config, &FunctionLimits::default());
        assert!(matches!(claim, abi::http_wasm::Claim::Ready(_)));
        assert_eq!(roomy.bytes(), module + snapshot);

        // With room for the module and its snapshot but not for the small
        // module too: the snapshot is refused and nothing is evicted for it
        // (two modules evicting each other in turn would cost a compile and
        // a snapshot per request).
        let tight = ModuleCache::new(&ServerLimits {
            module_cache_bytes: module + snapshot,
            module_check_interval: Duration::from_secs(3600),
            ..ServerLimits::default()
        });
        let first = get(&tight, &small.0);
        let small_bytes = tight.bytes();
        let loaded = get(&tight, &snap.0);
        assert_eq!(tight.len(), 2);
        let e = make_snapshot(&tight.ledger(), &loaded, || {}).unwrap_err();
        assert!(e.contains("modules are not evicted for a snapshot"), "{e}");
        assert_eq!((tight.len(), tight.bytes()), (2, small_bytes + module));
        assert!(Arc::ptr_eq(&first, &get(&tight, &small.0)));
        assert!(Arc::ptr_eq(&loaded, &get(&tight, &snap.0)));
        let claim = loaded.snapshots.claim(&config, &FunctionLimits::default());
        assert!(matches!(claim, abi::http_wasm::Claim::None));

        // Alone in the same room, the middleware keeps its snapshot; the
        // small module then evicts both, and the snapshot goes with them.
        let alone = ModuleCache::new(&ServerLimits {
            module_cache_bytes: module + snapshot,
            module_check_interval: Duration::from_secs(3600),
            ..ServerLimits::default()
        });
        let loaded = get(&alone, &snap.0);
        make_snapshot(&alone.ledger(), &loaded, || {}).unwrap();
        assert_eq!((alone.len(), alone.bytes()), (1, module + snapshot));
        get(&alone, &small.0);
        assert_eq!((alone.len(), alone.bytes()), (1, small_bytes));
        let claim = loaded.snapshots.claim(&config, &FunctionLimits::default());
        assert!(matches!(claim, abi::http_wasm::Claim::None));

        // A snapshot finished after its module left the cache is not
        // kept, nor counted.
        let one = cache(1, Duration::from_secs(3600));
        let loaded = get(&one, &snap.0);
        let e = make_snapshot(&one.ledger(), &loaded, || {
            get(&one, &small.0);
        })
        .unwrap_err();
        assert!(e.contains("left the module cache"), "{e}");
        assert_eq!((one.len(), one.bytes()), (1, small_bytes));
        // Nor once the cache itself is gone (a config reload).
        let gone = cache(8, Duration::from_secs(3600));
        let loaded = get(&gone, &snap.0);
        let ledger = gone.ledger();
        let e = make_snapshot(&ledger, &loaded, || drop(gone)).unwrap_err();
        assert!(e.contains("left the module cache"), "{e}");
    }

    #[test]
    fn a_missing_file_is_never_cached() {
        let file = TempFile::new("missing");
        let cache = cache(1, Duration::ZERO);
        for _ in 0..2 {
            assert!(is_missing(&failure(&cache, &file.0)));
            assert!(cache.is_empty());
        }
        // A broken file is cached; once it is gone, so is its entry.
        std::fs::write(&file.0, b"\0asm broken").unwrap();
        assert!(!is_missing(&failure(&cache, &file.0)));
        assert_eq!(cache.len(), 1);
        std::fs::remove_file(&file.0).unwrap();
        assert!(is_missing(&failure(&cache, &file.0)));
        assert!(cache.is_empty());
        // A directory is not a module file.
        let dir = std::env::temp_dir();
        assert!(is_missing(&failure(&cache, &dir)));
        assert!(cache.is_empty());
    }
}
