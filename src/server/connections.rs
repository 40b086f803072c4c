//! The table of open connections: `max_connections` and
//! `max_connections_per_ip`, and room made for a new connection by closing
//! the one that has waited longest for a request head. A few clients that
//! open connections and send nothing, or trickle their heads, must not deny
//! service to everyone else.
//!
//! The limits are global, so the table is shared by every executor thread
//! (`Send + Sync`): one `Mutex` over the map of connections and the
//! per-client counts, so that a check and the insert that follows it are
//! one step; a `Mutex` per connection for its state and waker, so that an
//! eviction cannot slip between a task's look at its state and its
//! waker's registration. No lock is held across an `.await`, and the
//! table's lock is taken before a connection's, never after.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::limits::ServerLimits;

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` are open and none is waiting for a head.
    Table(usize),
    /// `max_connections_per_ip` are open from this client and none of them
    /// is waiting for a head.
    Client(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Table(n) => write!(
                f,
                "too many open connections (max_connections = {n}), all busy; retry later"
            ),
            Refused::Client(n) => write!(
                f,
                "too many open connections from this address (max_connections_per_ip = {n}), all busy; retry later"
            ),
        }
    }
}

/// The open connections.
#[derive(Default)]
pub struct Table {
    open: Mutex<Open>,
    /// Connections closing with a lingering close (see [`Table::linger`]).
    /// They are out of the table already, so they are counted here.
    lingering: Arc<AtomicUsize>,
}

/// What [`Table::open`] checks and changes in one step.
#[derive(Default)]
struct Open {
    next_id: u64,
    slots: HashMap<u64, Arc<Slot>>,
    per_client: HashMap<IpAddr, usize>,
}

// Fails to compile if a thread-bound type gets into the table.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Table>();
};

/// Locks `mutex`. A poisoned lock (a thread panicked holding it; release
/// builds abort on panic instead) is used as it is: nothing under these
/// locks panics between two changes that must go together, short of an
/// allocation failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's turn at a lingering close; gives it back when dropped.
pub struct Lingering(Arc<AtomicUsize>);

impl Drop for Lingering {
    fn drop(&mut self) {
        let _ = self
            .0
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }
}

/// One open connection, shared by the table and its task.
struct Slot {
    client: IpAddr,
    state: Mutex<State>,
}

/// A connection's state, as the table sees it.
struct State {
    /// Since when the connection has waited for a request head (opened, or
    /// its last response written); `None` while a request is read after
    /// its head, or served.
    waiting: Option<Instant>,
    /// Set when the table evicts the connection.
    evicted: bool,
    /// Wakes the connection's task when it is evicted.
    waker: Option<Waker>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Marks the connection evicted if it is still waiting for a request
    /// head, in the same lock section as that check (so a connection that
    /// has just become busy on another thread is never evicted); its
    /// waker, to be woken outside the table's lock. `None` when it is no
    /// longer waiting.
    fn mark_evicted(&self) -> Option<Option<Waker>> {
        let mut state = self.state();
        if state.waiting.is_none() || state.evicted {
            return None;
        }
        state.evicted = true;
        Some(state.waker.take())
    }
}

/// A connection's place in the table; leaves it when dropped.
pub struct Entry<'a> {
    table: &'a Table,
    id: u64,
    slot: Arc<Slot>,
}

/// The address connections are counted by: an IPv4 address, or the /64 an
/// IPv6 address is in (one host usually holds a whole /64).
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

impl Table {
    /// Open connections.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.open).slots.len()
    }

    /// Evicts every connection waiting for a request head (idle
    /// keep-alive connections, and new ones that have not sent a whole
    /// head): a drain closes them. Returns how many.
    pub fn evict_waiting(&self) -> usize {
        let wakers: Vec<Option<Waker>> = {
            let mut open = lock(&self.open);
            let marked: Vec<(u64, Option<Waker>)> = open
                .slots
                .iter()
                .filter_map(|(&id, slot)| slot.mark_evicted().map(|waker| (id, waker)))
                .collect();
            marked
                .into_iter()
                .map(|(id, waker)| {
                    open.remove(id);
                    waker
                })
                .collect()
        };
        let count = wakers.len();
        // Woken outside the table's lock.
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
        count
    }

    /// Admits a connection from `peer`. Over a limit, the longest-waiting
    /// connection (of the same client, for the per-client limit) is
    /// evicted to make room; when none is waiting, the new one is refused.
    pub fn open(&self, peer: IpAddr, limits: &ServerLimits) -> Result<Entry<'_>, Refused> {
        let client = client_of(peer);
        let mut evicted = Vec::new();
        let opened = {
            let mut open = lock(&self.open);
            open.admit(client, limits, &mut evicted)
                .map(|(id, slot)| Entry {
                    table: self,
                    id,
                    slot,
                })
        };
        // Woken outside the table's lock.
        for waker in evicted.into_iter().flatten() {
            waker.wake();
        }
        opened
    }

    /// A turn at a lingering close for a connection that has left the
    /// table, or `None` when `max_connections` are lingering already (then
    /// the connection is closed at once). Lingering connections hold no
    /// slot in the table, so this bounds the sockets they keep open to
    /// `max_connections` more, each for at most its linger time.
    pub fn linger(&self, limits: &ServerLimits) -> Option<Lingering> {
        self.lingering
            .fetch_update(Relaxed, Relaxed, |now| {
                (now < limits.max_connections).then(|| now.saturating_add(1))
            })
            .ok()?;
        Some(Lingering(Arc::clone(&self.lingering)))
    }
}

impl Open {
    /// [`Table::open`] under the table's lock: the new connection's id and
    /// slot, with the wakers of the connections evicted for it in `evicted`.
    fn admit(
        &mut self,
        client: IpAddr,
        limits: &ServerLimits,
        evicted: &mut Vec<Option<Waker>>,
    ) -> Result<(u64, Arc<Slot>), Refused> {
        let per_client = self.per_client.get(&client).copied().unwrap_or(0);
        if per_client >= limits.max_connections_per_ip && !self.evict_oldest(Some(client), evicted)
        {
            return Err(Refused::Client(limits.max_connections_per_ip));
        }
        if self.slots.len() >= limits.max_connections && !self.evict_oldest(None, evicted) {
            return Err(Refused::Table(limits.max_connections));
        }
        let id = self.next_id;
        self.next_id = id.wrapping_add(1);
        let slot = Arc::new(Slot {
            client,
            state: Mutex::new(State {
                waiting: Some(Instant::now()),
                evicted: false,
                waker: None,
            }),
        });
        self.slots.insert(id, Arc::clone(&slot));
        let count = self.per_client.entry(client).or_insert(0);
        *count = count.saturating_add(1);
        Ok((id, slot))
    }

    /// Takes out the connection (of `client`, if given) that has waited
    /// longest for a request head, to be closed; false when none is
    /// waiting.
    /// A victim whose task made it busy between the scan and its marking
    /// (another executor thread) is kept, and the scan starts again: at most
    /// once per connection in the table.
    fn evict_oldest(&mut self, client: Option<IpAddr>, evicted: &mut Vec<Option<Waker>>) -> bool {
        for _ in 0..=self.slots.len() {
            let victim = self
                .slots
                .iter()
                .filter(|(_, s)| client.is_none_or(|c| s.client == c))
                .filter_map(|(&id, s)| s.state().waiting.map(|since| (since, id)))
                .min();
            let Some((_, id)) = victim else {
                return false;
            };
            let marked = self.slots.get(&id).and_then(|slot| slot.mark_evicted());
            if let Some(waker) = marked {
                self.remove(id);
                evicted.push(waker);
                return true;
            }
        }
        false
    }

    /// Takes connection `id` out of the table, if it is still there.
    fn remove(&mut self, id: u64) -> Option<Arc<Slot>> {
        let slot = self.slots.remove(&id)?;
        if let Some(n) = self.per_client.get_mut(&slot.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&slot.client);
            }
        }
        Some(slot)
    }
}

impl Entry<'_> {
    /// Marks the connection as waiting for a request head (evictable);
    /// returns the time it was marked at.
    pub fn waiting(&self) -> Instant {
        let now = Instant::now();
        self.slot.state().waiting = Some(now);
        now
    }

    /// Marks the connection as busy with a request (not evictable), unless
    /// it was evicted already; whether it is busy now.
    pub fn busy(&self) -> bool {
        let mut state = self.slot.state();
        if !state.evicted {
            state.waiting = None;
        }
        !state.evicted
    }

    /// Whether the table has evicted this connection (it has left the
    /// table: it must close, even with a request read).
    pub fn is_evicted(&self) -> bool {
        self.slot.state().evicted
    }

    /// Resolves when the table evicts this connection.
    pub async fn evicted(&self) {
        std::future::poll_fn(|cx| {
            let mut state = self.slot.state();
            if state.evicted {
                return Poll::Ready(());
            }
            match &mut state.waker {
                Some(old) if old.will_wake(cx.waker()) => {}
                waker => *waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        lock(&self.table.open).remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> ServerLimits {
        ServerLimits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            ..ServerLimits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_a_waiting_connection_is_marked_evicted_and_then_never_busy() {
        let table = Table::default();
        let l = limits(2, 2);
        let a = table.open(ip("127.0.0.1"), &l).unwrap();
        assert!(a.busy());
        // The check and the mark are one lock section: a busy connection
        // picked by a scan an instant earlier is not marked.
        assert!(a.slot.mark_evicted().is_none());
        assert!(!a.is_evicted());
        a.waiting();
        assert!(a.slot.mark_evicted().is_some());
        assert!(a.slot.mark_evicted().is_none(), "marked once");
        assert!(a.is_evicted());
        assert!(!a.busy(), "an evicted connection does not become busy");
    }

    #[test]
    fn a_connection_made_busy_is_never_evicted_by_another_thread() {
        // Two threads open connections into a table of one and make them
        // busy at once: whichever wins, a connection that became busy is
        // never evicted afterwards, and an evicted one never becomes busy.
        let table = Table::default();
        let l = limits(1, 1);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..2_000 {
                        let Ok(entry) = table.open(ip("127.0.0.1"), &l) else {
                            continue;
                        };
                        let busy = entry.busy();
                        std::thread::yield_now();
                        assert_eq!(busy, !entry.is_evicted());
                        entry.waiting();
                    }
                });
            }
        });
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_full_table_evicts_the_longest_waiting_connection() {
        let table = Table::default();
        let l = limits(2, 2);
        let first = table.open(ip("127.0.0.1"), &l).unwrap();
        let second = table.open(ip("127.0.0.1"), &l).unwrap();
        first.busy();
        // `second` waits for a head: it makes room.
        let third = table.open(ip("127.0.0.2"), &l).unwrap();
        assert!(second.slot.state().evicted);
        assert!(!first.slot.state().evicted);
        assert_eq!(table.len(), 2);
        // Both busy: refused.
        third.busy();
        assert_eq!(
            table.open(ip("127.0.0.3"), &l).err(),
            Some(Refused::Table(2))
        );
        drop(second); // already gone: counts stay right
        assert_eq!(table.len(), 2);
        drop((first, third));
        assert_eq!(table.len(), 0);
        assert!(lock(&table.open).per_client.is_empty());
    }

    #[test]
    fn the_per_client_limit_evicts_only_that_clients_connections() {
        let table = Table::default();
        let l = limits(10, 2);
        let other = table.open(ip("10.0.0.9"), &l).unwrap();
        let a = table.open(ip("10.0.0.1"), &l).unwrap();
        let b = table.open(ip("10.0.0.1"), &l).unwrap();
        b.busy();
        let _c = table.open(ip("10.0.0.1"), &l).unwrap();
        assert!(a.slot.state().evicted);
        assert!(!other.slot.state().evicted);
        _c.busy();
        assert_eq!(
            table.open(ip("10.0.0.1"), &l).err(),
            Some(Refused::Client(2))
        );
    }

    #[test]
    fn lingering_closes_are_bounded_by_max_connections_and_free_no_slot() {
        let table = Table::default();
        let l = limits(2, 2);
        let a = table.linger(&l).unwrap();
        let _b = table.linger(&l).unwrap();
        assert!(table.linger(&l).is_none());
        // Lingering connections are out of the table: new ones get in.
        let _open = table.open(ip("127.0.0.1"), &l).unwrap();
        drop(a);
        assert!(table.linger(&l).is_some());
    }

    /// Threads opening connections at once never take the table past its
    /// limits, and leave it empty.
    #[test]
    fn racing_threads_stay_within_the_limits() {
        let table = Table::default();
        let l = limits(3, 2);
        std::thread::scope(|scope| {
            for client in ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3"] {
                let (table, l) = (&table, &l);
                scope.spawn(move || {
                    for _ in 0..2000 {
                        if let Ok(entry) = table.open(ip(client), l) {
                            entry.busy();
                            let open = lock(&table.open);
                            assert!(open.slots.len() <= 3);
                            assert!(open.per_client.values().all(|&n| n <= 2));
                        }
                    }
                });
            }
        });
        assert_eq!(table.len(), 0);
        assert!(lock(&table.open).per_client.is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            client_of(ip("2001:db8::1")),
            client_of(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            client_of(ip("2001:db8::1")),
            client_of(ip("2001:db8:0:1::1"))
        );
        assert_eq!(client_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
