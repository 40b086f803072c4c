//! How many KV operations the guests made and how many were refused, for
//! the metrics (`wasmgate_kv_operations_total`, `wasmgate_kv_errors_total`).
//! Process-wide atomics: every executor thread counts into them, and they
//! outlive reloads and a store reopened in another directory, as a
//! Prometheus counter should. Labelled by operation only, never by key or
//! namespace (bounded cardinality).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counted operation: a host function's call, or a request's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// `kv_get`, `host_kv_get`.
    Get,
    /// `kv_set`, `host_kv_set`.
    Set,
    /// `kv_delete`.
    Delete,
    /// `kv_incr`.
    Incr,
    /// `kv_list` (each call, a listing may page through several).
    List,
    /// A transaction's commit at the end of a request.
    Commit,
}

impl KvOp {
    /// Every operation, in the exposition's order.
    pub const ALL: [KvOp; 6] = [
        KvOp::Get,
        KvOp::Set,
        KvOp::Delete,
        KvOp::Incr,
        KvOp::List,
        KvOp::Commit,
    ];

    /// The `op` label.
    pub fn name(self) -> &'static str {
        match self {
            KvOp::Get => "get",
            KvOp::Set => "set",
            KvOp::Delete => "delete",
            KvOp::Incr => "incr",
            KvOp::List => "list",
            KvOp::Commit => "commit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

static OPS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
static ERRORS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// Counts one `op`, refused (an error value to the guest, a failed
/// commit) unless `ok`. A missing key is not a refusal.
pub fn count(op: KvOp, ok: bool) {
    if let Some(n) = OPS.get(op.index()) {
        n.fetch_add(1, Relaxed);
    }
    if !ok && let Some(n) = ERRORS.get(op.index()) {
        n.fetch_add(1, Relaxed);
    }
}

/// `op`'s operations and refusals so far.
pub fn counts(op: KvOp) -> (u64, u64) {
    let load = |all: &[AtomicU64; 6]| all.get(op.index()).map_or(0, |n| n.load(Relaxed));
    (load(&OPS), load(&ERRORS))
}
