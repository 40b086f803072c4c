//! Admission: in-flight slots and reservations of the memory budget, for
//! guests, request bodies and responses being written.

use std::cell::{Cell, RefCell};

use super::trace::{TraceId, trace_id};
use crate::http::Gate;
use crate::limits::{BODY_SHARE_DIVISOR, FunctionLimits, ServerLimits};

/// The counters admission decides on.
pub struct Admission {
    memory_budget: u64,
    max_in_flight: usize,
    in_flight: Cell<usize>,
    /// Bytes of `memory_budget` held by guests, bodies and responses.
    reserved_memory: Cell<u64>,
    /// The part of `reserved_memory` held by request bodies being read.
    body_memory: Cell<u64>,
}

impl Admission {
    /// Nothing admitted yet, within `limits`.
    pub fn new(limits: &ServerLimits) -> Self {
        Self {
            memory_budget: limits.memory_budget,
            max_in_flight: limits.max_in_flight,
            in_flight: Cell::new(0),
            reserved_memory: Cell::new(0),
            body_memory: Cell::new(0),
        }
    }

    /// Reserves an in-flight slot and, from the memory budget, the
    /// function's `memory` and `max_response` (its output, buffered in the
    /// host), or says why not.
    pub fn admit(&self, limits: &FunctionLimits) -> Result<Permit<'_>, &'static str> {
        if self.in_flight.get() >= self.max_in_flight {
            return Err("too many requests in flight (max_in_flight); retry later");
        }
        let memory = Reservation::new(self);
        if !memory.grow(limits.memory.saturating_add(limits.max_response)) {
            return Err(
                "the memory budget (memory_budget) is taken by requests in progress; retry later",
            );
        }
        self.in_flight.set(self.in_flight.get().saturating_add(1));
        Ok(Permit {
            admission: self,
            _memory: memory,
        })
    }
}

/// An admitted request; releases its slot and memory when dropped.
pub struct Permit<'a> {
    admission: &'a Admission,
    _memory: Reservation<'a>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let admission = self.admission;
        admission
            .in_flight
            .set(admission.in_flight.get().saturating_sub(1));
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
    fn grow(&self, more: u64) -> bool {
        let reserved = self.admission.reserved_memory.get();
        match reserved.checked_add(more) {
            Some(total) if total <= self.admission.memory_budget => {
                self.admission.reserved_memory.set(total);
                self.bytes.set(self.bytes.get().saturating_add(more));
                true
            }
            _ => false,
        }
    }

    /// Counts `more` bytes whether or not they fit: memory already in use
    /// (a response being written) is counted, so that later requests wait.
    pub fn force(&self, more: u64) {
        let admission = self.admission;
        admission
            .reserved_memory
            .set(admission.reserved_memory.get().saturating_add(more));
        self.bytes.set(self.bytes.get().saturating_add(more));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let admission = self.admission;
        admission.reserved_memory.set(
            admission
                .reserved_memory
                .get()
                .saturating_sub(self.bytes.get()),
        );
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
        let fits = admission
            .body_memory
            .get()
            .checked_add(bytes)
            .is_some_and(|total| total <= share);
        if !fits || !self.body.grow(bytes) {
            return false;
        }
        admission
            .body_memory
            .set(admission.body_memory.get().saturating_add(bytes));
        true
    }
}

impl Drop for RequestGate<'_> {
    fn drop(&mut self) {
        let admission = self.body.admission;
        admission.body_memory.set(
            admission
                .body_memory
                .get()
                .saturating_sub(self.body.bytes.get()),
        );
    }
}
