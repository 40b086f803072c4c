//! Instances of http-wasm snapshots kept between requests, per worker
//! thread (`[server] instance_pool`, README "Instance pool").
//!
//! An instance made from a snapshot ([`super::http_wasm::Snapshot`]) is
//! given back here once its request completed without an error, after it
//! has been put back into exactly the state a new instance of the snapshot
//! has: its memory the same size and, byte for byte, the snapshot's image
//! over zeros; each mutable global its initial value; its tables are never
//! changed (a snapshot is refused to modules with an instruction that
//! changes one), nor are its data and element segments (active ones are
//! dropped at instantiation, passive data is refused). The next request for
//! the same snapshot takes it with a host state of its own and is charged
//! the fuel and memory instantiating costs, so that it runs exactly as on a
//! new instance, at the same fuel, without making one (~35 % of the CPU of
//! a request through `hmac-verify`).
//!
//! Bounded in bytes per thread: what the store's limiter counts for an
//! instance (its linear memory, its tables, its estimated host bytes). The
//! oldest idle instance goes first when a new one does not fit; one larger
//! than a quarter of the bound is not kept. An idle instance of a snapshot
//! that is gone (evicted from the module cache, or left by a reload) is
//! dropped at its thread's next take or put: a snapshot holds a [`Life`],
//! whose drop is counted in [`RETIRED`], and a pool that sees the count
//! move sweeps.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Weak};

use wasmi::{Global, Instance, Memory, Store, Val};

use crate::runtime::sandbox::Fresh;
use crate::runtime::state::HostState;

/// An instance at rest, in its snapshot's initial state.
pub struct Idle {
    /// The snapshot it is an instance of ([`Life::watch`]).
    pub snapshot: Watch,
    pub store: Store<HostState>,
    pub instance: Instance,
    /// What a new instance's sandbox starts with.
    pub fresh: Fresh,
    /// Its memory, and each mutable global with its initial value.
    pub state: (Memory, Vec<(Global, Val)>),
    /// Its bytes, counted against the bound.
    pub bytes: u64,
}

/// What a snapshot (`super::http_wasm::Snapshot`) holds for the pools:
/// an id unique in the process, and whether it is alive. Its drop
/// retires the snapshot: its idle instances go.
pub struct Life {
    id: u64,
    alive: Option<Arc<()>>,
}

/// An idle instance's view of its snapshot's [`Life`].
pub struct Watch {
    id: u64,
    alive: Weak<()>,
}

/// The next [`Life`]'s id.
static NEXT_LIFE: AtomicU64 = AtomicU64::new(1);

impl Life {
    pub fn new() -> Self {
        Life {
            id: NEXT_LIFE.fetch_add(1, Relaxed),
            alive: Some(Arc::new(())),
        }
    }

    /// What an idle instance of the snapshot keeps.
    pub fn watch(&self) -> Watch {
        Watch {
            id: self.id,
            alive: self.alive.as_ref().map_or_else(Weak::new, Arc::downgrade),
        }
    }
}

impl Default for Life {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Life {
    /// Dead first, then counted: a pool that sees the count sees it dead.
    fn drop(&mut self) {
        drop(self.alive.take());
        RETIRED.fetch_add(1, SeqCst);
    }
}

/// The idle instances of this thread, oldest first, their bytes, and the
/// [`RETIRED`] count of its last sweep.
struct Pool {
    idle: VecDeque<Idle>,
    bytes: u64,
    swept: u64,
}

impl Pool {
    /// Moves the idle instances of snapshots that are gone to `dropped`,
    /// when a snapshot went since the last sweep.
    fn sweep(&mut self, dropped: &mut Vec<Idle>) {
        let retired = RETIRED.load(SeqCst);
        if retired == self.swept {
            return;
        }
        self.swept = retired;
        let mut kept = VecDeque::new();
        for idle in std::mem::take(&mut self.idle) {
            match idle.snapshot.alive.strong_count() {
                0 => {
                    self.bytes = self.bytes.saturating_sub(idle.bytes);
                    IDLE_BYTES.fetch_sub(idle.bytes, Relaxed);
                    dropped.push(idle);
                }
                _ => kept.push_back(idle),
            }
        }
        self.idle = kept;
    }
}

impl Drop for Pool {
    /// A worker that ends takes its bytes out of the metric.
    fn drop(&mut self) {
        IDLE_BYTES.fetch_sub(self.bytes, Relaxed);
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            idle: VecDeque::new(),
            bytes: 0,
            swept: 0,
        })
    };
}

/// Instances of snapshots handed to requests: taken from a pool, made
/// new; and the bytes idle in the pools of all threads (metrics).
static REUSED: AtomicU64 = AtomicU64::new(0);
static MADE: AtomicU64 = AtomicU64::new(0);
static IDLE_BYTES: AtomicU64 = AtomicU64::new(0);
/// Snapshots dropped in the process so far ([`Life`]'s drop).
static RETIRED: AtomicU64 = AtomicU64::new(0);

/// Counts an instance of a snapshot handed to a request: `reused` from a
/// pool, or made new.
pub fn count(reused: bool) {
    match reused {
        true => REUSED.fetch_add(1, Relaxed),
        false => MADE.fetch_add(1, Relaxed),
    };
}

/// (reused, made new, bytes idle in all pools), for `/metrics`.
pub fn counts() -> (u64, u64, u64) {
    (
        REUSED.load(Relaxed),
        MADE.load(Relaxed),
        IDLE_BYTES.load(Relaxed),
    )
}

/// The most recently parked idle instance of `snapshot`, if there is one.
pub fn take(snapshot: &Life) -> Option<Idle> {
    // Dropped outside the borrow: a store's drop must not find it held.
    let mut dropped = Vec::new();
    let taken = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.sweep(&mut dropped);
        let at = pool
            .idle
            .iter()
            .rposition(|i| i.snapshot.id == snapshot.id)?;
        let idle = pool.idle.remove(at)?;
        pool.bytes = pool.bytes.saturating_sub(idle.bytes);
        IDLE_BYTES.fetch_sub(idle.bytes, Relaxed);
        Some(idle)
    });
    drop(dropped);
    taken
}

/// Whether an instance of `bytes` may be kept within `bound`: at most a
/// quarter of it.
pub fn keeps(bytes: u64, bound: u64) -> bool {
    bytes <= bound / 4
}

/// Keeps `idle` for the next request of its snapshot, within `bound`
/// bytes for the thread (the oldest idle instances are dropped to make
/// room); drops it unless [`keeps`].
pub fn put(idle: Idle, bound: u64) {
    if !keeps(idle.bytes, bound) {
        trim(bound);
        return;
    }
    trim(bound.saturating_sub(idle.bytes));
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.bytes = pool.bytes.saturating_add(idle.bytes);
        IDLE_BYTES.fetch_add(idle.bytes, Relaxed);
        pool.idle.push_back(idle);
    });
}

/// Drops this thread's oldest idle instances until they hold at most
/// `bound` bytes (all of them for 0: a reload that turned the pool off).
pub fn trim(bound: u64) {
    // Dropped outside the borrow: a store's drop must not find it held.
    let mut dropped = Vec::new();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.sweep(&mut dropped);
        while pool.bytes > bound {
            let Some(oldest) = pool.idle.pop_front() else {
                break;
            };
            pool.bytes = pool.bytes.saturating_sub(oldest.bytes);
            IDLE_BYTES.fetch_sub(oldest.bytes, Relaxed);
            dropped.push(oldest);
        }
    });
    drop(dropped);
}
