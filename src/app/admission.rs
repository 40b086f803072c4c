//! Admission: in-flight slots and reservations of the memory budget.

use std::cell::{Cell, RefCell};

use super::{App, TraceId, trace_id};
use crate::http::Gate;
use crate::limits::BODY_SHARE_DIVISOR;
use crate::server::connections;

impl App {
    /// Reserves an in-flight slot and, from the memory budget, the
    /// function's `memory` and `max_response` (its output, buffered in the
    /// host), or says why not.
    pub(crate) fn admit(
        &self,
        limits: &crate::limits::FunctionLimits,
    ) -> Result<Permit<'_>, &'static str> {
        if self.in_flight.get() >= self.config.server.max_in_flight {
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
            app: self,
            _memory: memory,
        })
    }
}

/// An admitted request; releases its slot and memory when dropped.
pub(crate) struct Permit<'a> {
    pub(crate) app: &'a App,
    _memory: Reservation<'a>,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let app = self.app;
        app.in_flight.set(app.in_flight.get().saturating_sub(1));
    }
}

/// Bytes of the memory budget held for one request (its body, a guest, a
/// response); given back when dropped.
pub(crate) struct Reservation<'a> {
    pub(crate) app: &'a App,
    pub(crate) bytes: Cell<u64>,
}

impl<'a> Reservation<'a> {
    pub(crate) fn new(app: &'a App) -> Self {
        Self {
            app,
            bytes: Cell::new(0),
        }
    }

    /// Takes `more` bytes if they fit in `memory_budget`.
    fn grow(&self, more: u64) -> bool {
        let reserved = self.app.reserved_memory.get();
        match reserved.checked_add(more) {
            Some(total) if total <= self.app.config.server.memory_budget => {
                self.app.reserved_memory.set(total);
                self.bytes.set(self.bytes.get().saturating_add(more));
                true
            }
            _ => false,
        }
    }

    /// Counts `more` bytes whether or not they fit: memory already in use
    /// (a response being written) is counted, so that later requests wait.
    pub(crate) fn force(&self, more: u64) {
        let app = self.app;
        app.reserved_memory
            .set(app.reserved_memory.get().saturating_add(more));
        self.bytes.set(self.bytes.get().saturating_add(more));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let app = self.app;
        app.reserved_memory
            .set(app.reserved_memory.get().saturating_sub(self.bytes.get()));
    }
}

/// What a connection learns while one request is read: its head (for the
/// connection table, the access log and the trace id), and memory for its
/// body from the budget.
pub(crate) struct RequestGate<'a> {
    pub(crate) entry: &'a connections::Entry<'a>,
    pub(crate) body: Reservation<'a>,
    /// Method, target and trace id, once the head is in.
    pub(crate) head: RefCell<Option<(String, String, TraceId)>>,
}

impl Gate for RequestGate<'_> {
    fn head(&self, method: &str, uri: &str, headers: &[(String, Vec<u8>)]) {
        self.entry.busy();
        let trace = trace_id(headers);
        *self.head.borrow_mut() = Some((method.to_owned(), uri.to_owned(), trace));
    }

    fn reserve_body(&self, bytes: u64) -> bool {
        let app = self.body.app;
        let share = app.config.server.memory_budget / BODY_SHARE_DIVISOR;
        let fits = app
            .body_memory
            .get()
            .checked_add(bytes)
            .is_some_and(|total| total <= share);
        if !fits || !self.body.grow(bytes) {
            return false;
        }
        app.body_memory
            .set(app.body_memory.get().saturating_add(bytes));
        true
    }
}

impl Drop for RequestGate<'_> {
    fn drop(&mut self) {
        let app = self.body.app;
        app.body_memory
            .set(app.body_memory.get().saturating_sub(self.body.bytes.get()));
    }
}
