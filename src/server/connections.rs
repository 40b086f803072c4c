//! The table of open connections: `max_connections` and
//! `max_connections_per_ip`, and room made for a new connection by closing
//! the one that has waited longest for a request head. A few clients that
//! open connections and send nothing, or trickle their heads, must not deny
//! service to everyone else.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
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
    next_id: Cell<u64>,
    open: RefCell<HashMap<u64, Rc<Slot>>>,
    per_client: RefCell<HashMap<IpAddr, usize>>,
    /// Connections closing with a lingering close (see [`Table::linger`]).
    /// They are out of the table already, so they are counted here.
    lingering: Rc<Cell<usize>>,
}

/// A connection's turn at a lingering close; gives it back when dropped.
pub struct Lingering(Rc<Cell<usize>>);

impl Drop for Lingering {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// One open connection, shared by the table and its task.
struct Slot {
    client: IpAddr,
    /// Since when the connection has waited for a request head (opened, or
    /// its last response written); `None` while a request is read after
    /// its head, or served.
    waiting: Cell<Option<Instant>>,
    /// Set when the table evicts the connection.
    evicted: Cell<bool>,
    /// Wakes the connection's task when it is evicted.
    waker: Cell<Option<Waker>>,
}

impl Slot {
    fn evict(&self) {
        self.evicted.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// A connection's place in the table; leaves it when dropped.
pub struct Entry<'a> {
    table: &'a Table,
    id: u64,
    slot: Rc<Slot>,
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
    fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Admits a connection from `peer`. Over a limit, the longest-waiting
    /// connection (of the same client, for the per-client limit) is
    /// evicted to make room; when none is waiting, the new one is refused.
    pub fn open(&self, peer: IpAddr, limits: &ServerLimits) -> Result<Entry<'_>, Refused> {
        let client = client_of(peer);
        let per_client = self.per_client.borrow().get(&client).copied().unwrap_or(0);
        if per_client >= limits.max_connections_per_ip && !self.evict_oldest(Some(client)) {
            return Err(Refused::Client(limits.max_connections_per_ip));
        }
        if self.len() >= limits.max_connections && !self.evict_oldest(None) {
            return Err(Refused::Table(limits.max_connections));
        }
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let slot = Rc::new(Slot {
            client,
            waiting: Cell::new(Some(Instant::now())),
            evicted: Cell::new(false),
            waker: Cell::new(None),
        });
        self.open.borrow_mut().insert(id, Rc::clone(&slot));
        *self.per_client.borrow_mut().entry(client).or_insert(0) += 1;
        Ok(Entry {
            table: self,
            id,
            slot,
        })
    }

    /// A turn at a lingering close for a connection that has left the
    /// table, or `None` when `max_connections` are lingering already (then
    /// the connection is closed at once). Lingering connections hold no
    /// slot in the table, so this bounds the sockets they keep open to
    /// `max_connections` more, each for at most its linger time.
    pub fn linger(&self, limits: &ServerLimits) -> Option<Lingering> {
        let now = self.lingering.get();
        if now >= limits.max_connections {
            return None;
        }
        self.lingering.set(now.saturating_add(1));
        Some(Lingering(Rc::clone(&self.lingering)))
    }

    /// Closes the connection (of `client`, if given) that has waited
    /// longest for a request head; false when none is waiting.
    fn evict_oldest(&self, client: Option<IpAddr>) -> bool {
        let victim = self
            .open
            .borrow()
            .iter()
            .filter(|(_, s)| client.is_none_or(|c| s.client == c))
            .filter_map(|(&id, s)| s.waiting.get().map(|since| (since, id)))
            .min();
        match victim {
            Some((_, id)) => {
                if let Some(slot) = self.remove(id) {
                    slot.evict();
                }
                true
            }
            None => false,
        }
    }

    /// Takes connection `id` out of the table, if it is still there.
    fn remove(&self, id: u64) -> Option<Rc<Slot>> {
        let slot = self.open.borrow_mut().remove(&id)?;
        let mut per_client = self.per_client.borrow_mut();
        if let Some(n) = per_client.get_mut(&slot.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_client.remove(&slot.client);
            }
        }
        Some(slot)
    }
}

impl Entry<'_> {
    /// Marks the connection as waiting for a request head (evictable).
    pub fn waiting(&self) {
        self.slot.waiting.set(Some(Instant::now()));
    }

    /// Marks the connection as busy with a request (not evictable).
    pub fn busy(&self) {
        self.slot.waiting.set(None);
    }

    /// Resolves when the table evicts this connection.
    pub async fn evicted(&self) {
        std::future::poll_fn(|cx| match self.slot.evicted.get() {
            true => Poll::Ready(()),
            false => {
                let waker = match self.slot.waker.take() {
                    Some(old) if old.will_wake(cx.waker()) => old,
                    _ => cx.waker().clone(),
                };
                self.slot.waker.set(Some(waker));
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.table.remove(self.id);
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
    fn a_full_table_evicts_the_longest_waiting_connection() {
        let table = Table::default();
        let l = limits(2, 2);
        let first = table.open(ip("127.0.0.1"), &l).unwrap();
        let second = table.open(ip("127.0.0.1"), &l).unwrap();
        first.busy();
        // `second` waits for a head: it makes room.
        let third = table.open(ip("127.0.0.2"), &l).unwrap();
        assert!(second.slot.evicted.get());
        assert!(!first.slot.evicted.get());
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
        assert!(table.per_client.borrow().is_empty());
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
        assert!(a.slot.evicted.get());
        assert!(!other.slot.evicted.get());
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
