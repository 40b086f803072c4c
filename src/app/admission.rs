//! Admission: in-flight slots and reservations of the memory budget, for
//! guests, request bodies and responses being written.
//!
//! The counters ([`Admission`]) are shared by every executor thread, so
//! they are atomics; each check-and-add is one `fetch_update` (a
//! compare-exchange loop) that cannot take a counter past its limit however
//! threads race. Where a decision needs two counters (a slot and memory; a
//! body's share and the whole budget), the first is taken and given back
//! if the second does not fit: neither overshoots, and a request racing
//! with it may at worst be refused while the first is briefly held, as if
//! it had come a moment earlier. Atomics rather than a `Mutex`: no request
//! waits on a lock held by a thread the OS has descheduled, and on one
//! thread an uncontended compare-exchange is what a `Mutex` costs anyway.
//! The guards ([`Permit`], [`Reservation`], [`RequestGate`]) belong to one
//! request on one thread.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use event_listener::IntoNotification;

use super::trace::{TraceId, trace_id};
use crate::http::Gate;
use crate::limits::{BODY_SHARE_DIVISOR, FunctionLimits, ServerLimits};

/// The refusal when every in-flight slot is taken.
pub const IN_FLIGHT: &str = "too many requests in flight (max_in_flight); retry later";

/// The counters admission decides on, shared by every executor thread.
/// `Relaxed` is enough: each counter is its own total order of
/// read-modify-writes, and no other memory is published through them.
pub struct Admission {
    memory_budget: u64,
    max_in_flight: usize,
    in_flight: AtomicUsize,
    /// Bytes of `memory_budget` held by guests, bodies and responses.
    reserved_memory: AtomicU64,
    /// The part of `reserved_memory` held by request bodies being read.
    body_memory: AtomicU64,
    /// `admission_queue`, and the requests waiting in it.
    queue: usize,
    queued: AtomicUsize,
    /// Notified (one waiter) each time a slot or memory is given back:
    /// what a queued request waits for.
    freed: event_listener::Event,
}

/// A place in the admission queue, given back when dropped.
pub struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }
}

/// Adds `more` to `counter` if the sum stays within `limit`, in one atomic
/// step; false (and nothing added) otherwise.
fn add_within(counter: &AtomicU64, more: u64, limit: u64) -> bool {
    counter
        .fetch_update(Relaxed, Relaxed, |now| {
            now.checked_add(more).filter(|&total| total <= limit)
        })
        .is_ok()
}

/// Adds `more` to `counter`, saturating.
fn add(counter: &AtomicU64, more: u64) {
    let _ = counter.fetch_update(Relaxed, Relaxed, |now| Some(now.saturating_add(more)));
}

/// Takes `less` from `counter`, saturating at zero.
fn sub(counter: &AtomicU64, less: u64) {
    let _ = counter.fetch_update(Relaxed, Relaxed, |now| Some(now.saturating_sub(less)));
}

impl Admission {
    /// Nothing admitted yet, within `limits`.
    pub fn new(limits: &ServerLimits) -> Self {
        Self {
            memory_budget: limits.memory_budget,
            max_in_flight: limits.max_in_flight,
            in_flight: AtomicUsize::new(0),
            reserved_memory: AtomicU64::new(0),
            body_memory: AtomicU64::new(0),
            queue: limits.admission_queue,
            queued: AtomicUsize::new(0),
            freed: event_listener::Event::new(),
        }
    }

    /// Something to wait on until a slot or memory is given back (one
    /// waiter is woken per release, in the order they started waiting).
    /// Listen, then try [`Admission::admit`] again, then wait: a release
    /// in between is not missed.
    pub fn listen(&self) -> event_listener::EventListener {
        self.freed.listen()
    }

    /// Wakes one more queued request, if any waits, after a release
    /// (one per release, however many come before the woken ones run).
    fn released(&self) {
        if self.queue > 0 {
            self.freed.notify(1.additional());
        }
    }

    /// A place in the admission queue (of `admission_queue` places), for a
    /// request that [`Admission::admit`] refused; `None` when it is full.
    pub fn queue(&self) -> Option<Queued<'_>> {
        self.queued
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < self.queue).then(|| n.saturating_add(1))
            })
            .ok()?;
        Some(Queued(&self.queued))
    }

    /// Reserves an in-flight slot and, from the memory budget, the
    /// function's `memory` and `max_response` (its output, buffered in the
    /// host), or says why not.
    pub fn admit(&self, limits: &FunctionLimits) -> Result<Permit<'_>, &'static str> {
        // The slot is taken first and given back (by the permit's drop) if
        // the memory does not fit: the check and the count are one step.
        let slot = self.in_flight.fetch_update(Relaxed, Relaxed, |now| {
            (now < self.max_in_flight).then(|| now.saturating_add(1))
        });
        if slot.is_err() {
            return Err(IN_FLIGHT);
        }
        let memory = Reservation::new(self);
        if !memory.grow(limits.memory.saturating_add(limits.max_response)) {
            // Given back without a wake-up: nothing was freed for anyone,
            // and a queued request refused here would wake itself and
            // never wait (an executor spinning in one task).
            let _ = self
                .in_flight
                .fetch_update(Relaxed, Relaxed, |now| Some(now.saturating_sub(1)));
            return Err(
                "the memory budget (memory_budget) is taken by requests in progress; retry later",
            );
        }
        Ok(Permit {
            admission: self,
            memory,
        })
    }
}

impl Admission {
    /// Requests admitted now, and bytes of `memory_budget` held now.
    pub fn usage(&self) -> (usize, u64) {
        (
            self.in_flight.load(Relaxed),
            self.reserved_memory.load(Relaxed),
        )
    }

    /// Reserves `bytes` of the memory budget without a slot: an
    /// admitted request's middleware instance (its `memory`) while it
    /// lives.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation<'_>, &'static str> {
        let held = Reservation::new(self);
        if !held.grow(bytes) {
            return Err(
                "the memory budget (memory_budget) is taken by requests in progress; retry later",
            );
        }
        Ok(held)
    }
}

/// An admitted request; releases its slot and memory when dropped.
pub struct Permit<'a> {
    admission: &'a Admission,
    memory: Reservation<'a>,
}

impl Permit<'_> {
    /// Adds `bytes` the call will hold in host memory (a wasi-json
    /// request's stdin) to the request's reservation if they fit in
    /// `memory_budget` now; otherwise whether they could fit it at all,
    /// beside this request's own reservation and `besides` (its body).
    pub fn hold(&self, bytes: u64, besides: u64) -> Result<(), bool> {
        if self.memory.grow(bytes) {
            return Ok(());
        }
        let own = self.memory.bytes.get().saturating_add(besides);
        Err(own.saturating_add(bytes) <= self.admission.memory_budget)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let _ = self
            .admission
            .in_flight
            .fetch_update(Relaxed, Relaxed, |now| Some(now.saturating_sub(1)));
        self.admission.released();
    }
}

/// Bytes of the memory budget held for one request (its body, a guest, a
/// response); given back when dropped.
pub struct Reservation<'a> {
    admission: &'a Admission,
    bytes: Cell<u64>,
}

impl<'a> Reservation<'a> {
    pub fn new(admission: &'a Admission) -> Self {
        Self {
            admission,
            bytes: Cell::new(0),
        }
    }

    /// Takes `more` bytes if they fit in `memory_budget`.
    pub fn grow(&self, more: u64) -> bool {
        let admission = self.admission;
        if !add_within(&admission.reserved_memory, more, admission.memory_budget) {
            return false;
        }
        self.bytes.set(self.bytes.get().saturating_add(more));
        true
    }

    /// Counts `more` bytes whether or not they fit: memory already in use
    /// (a response being written) is counted, so that later requests wait.
    pub fn force(&self, more: u64) {
        add(&self.admission.reserved_memory, more);
        self.bytes.set(self.bytes.get().saturating_add(more));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        sub(&self.admission.reserved_memory, self.bytes.get());
        if self.bytes.get() > 0 {
            self.admission.released();
        }
    }
}

/// What the application learns while one request is read: its head (for
/// the access log and the trace id), and memory for its body from the
/// budget.
pub struct RequestGate<'a> {
    body: Reservation<'a>,
    /// Method, target and trace id, once the head is in.
    pub(crate) head: RefCell<Option<(String, String, TraceId)>>,
}

impl<'a> RequestGate<'a> {
    pub fn new(admission: &'a Admission) -> Self {
        Self {
            body: Reservation::new(admission),
            head: RefCell::new(None),
        }
    }
}

impl Gate for RequestGate<'_> {
    fn head(&self, method: &str, uri: &str, headers: &[(String, Vec<u8>)]) {
        let trace = trace_id(headers);
        *self.head.borrow_mut() = Some((method.to_owned(), uri.to_owned(), trace));
    }

    fn reserve_body(&self, bytes: u64) -> bool {
        let admission = self.body.admission;
        let share = admission.memory_budget / BODY_SHARE_DIVISOR;
        // Bodies' share first, then the whole budget; the share is given
        // back if the budget is full, so neither counter overshoots (a
        // racing thread may be refused while the share is briefly held).
        if !add_within(&admission.body_memory, bytes, share) {
            return false;
        }
        if !self.body.grow(bytes) {
            sub(&admission.body_memory, bytes);
            return false;
        }
        true
    }

    fn body_fits(&self, bytes: u64) -> bool {
        let admission = self.body.admission;
        let share = admission.memory_budget / BODY_SHARE_DIVISOR;
        let within = |counter: &AtomicU64, limit: u64| {
            counter
                .load(Relaxed)
                .checked_add(bytes)
                .is_some_and(|total| total <= limit)
        };
        within(&admission.body_memory, share)
            && within(&admission.reserved_memory, admission.memory_budget)
    }
}

impl Drop for RequestGate<'_> {
    fn drop(&mut self) {
        sub(&self.body.admission.body_memory, self.body.bytes.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads racing for slots, memory and body shares never take a
    /// counter past its limit, and give everything back.
    #[test]
    fn racing_threads_never_overshoot() {
        let limits = ServerLimits {
            memory_budget: 8 * BODY_SHARE_DIVISOR,
            max_in_flight: 3,
            ..ServerLimits::default()
        };
        let admission = Admission::new(&limits);
        let function = FunctionLimits {
            memory: 2,
            max_response: 1,
            ..FunctionLimits::default()
        };
        let within = |a: &Admission| {
            assert!(a.in_flight.load(Relaxed) <= limits.max_in_flight);
            assert!(a.reserved_memory.load(Relaxed) <= limits.memory_budget);
            assert!(a.body_memory.load(Relaxed) <= limits.memory_budget / BODY_SHARE_DIVISOR);
        };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..2000 {
                        let gate = RequestGate::new(&admission);
                        let _ = gate.reserve_body(3);
                        within(&admission);
                        let permit = admission.admit(&function);
                        within(&admission);
                        drop((gate, permit));
                    }
                });
            }
        });
        assert_eq!(admission.in_flight.load(Relaxed), 0);
        assert_eq!(admission.reserved_memory.load(Relaxed), 0);
        assert_eq!(admission.body_memory.load(Relaxed), 0);
    }
}
