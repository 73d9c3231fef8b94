//! [`ReactorStats`]: reactor-wide counters, and `Reactor::stats`.
//!
//! Passes and events are counted as they happen (one addition each); byte
//! counters live in each connection ([`PeerStats`](crate::PeerStats)) and are
//! folded into the totals when a peer's entry is freed, so the hot path adds
//! nothing per byte and a query sums the live peers (O(entries), meant for a
//! log line per second, not per message).

use super::{Inner, Kind, Reactor};
use crate::core::Connection;
use crate::sys::Stream;

/// Counters of one [`Reactor`] since it was created, from
/// [`Reactor::stats`].
///
/// ```
/// use std::time::Duration;
/// use lunanet::Reactor;
/// let reactor = Reactor::new()?;
/// reactor.poll(Some(Duration::ZERO))?;
/// let stats = reactor.stats();
/// assert_eq!(stats.passes, 1);
/// assert_eq!(stats.peers, 0);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReactorStats {
    /// Live peer entries now (including dropped ones still lingering).
    pub peers: usize,
    /// Listening servers now.
    pub servers: usize,
    /// Reactor passes run (each `poll`, waiting call or `is_connection_available`).
    pub passes: u64,
    /// Readiness events the OS reported.
    pub events: u64,
    /// Bytes read from all peers, closed ones included.
    pub bytes_in: u64,
    /// Bytes written to all peers, closed ones included.
    pub bytes_out: u64,
    /// Connections accepted by the servers (refused ones not included).
    pub accepted: u64,
    /// Connections refused at once by a server's `max_connections` or
    /// `max_connections_per_ip`.
    pub refused: u64,
    /// Peers that ended in `Error` with `TimedOut`: idle timeout, connect
    /// timeout, or the kernel's keepalive / user timeout.
    pub timed_out: u64,
}

/// What the reactor counts as it goes (the rest is summed on demand).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) events: u64,
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    pub(crate) timed_out: u64,
    /// Bytes of peers whose entries were freed.
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

impl Totals {
    /// A peer's entry is being freed: keep its byte counts.
    pub(crate) fn fold(&mut self, conn: &Connection<Stream>) {
        let s = conn.stats();
        self.bytes_in += s.bytes_in;
        self.bytes_out += s.bytes_out;
    }
}

impl Reactor {
    /// The reactor's counters (see [`ReactorStats`]). Costs a walk over the
    /// live entries: call it for a periodic log line, not per message.
    pub fn stats(&self) -> ReactorStats {
        self.inner.borrow().stats()
    }
}

impl Inner {
    fn stats(&self) -> ReactorStats {
        let t = &self.totals;
        let mut out = ReactorStats {
            passes: self.sched.pass(),
            events: t.events,
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            accepted: t.accepted,
            refused: t.refused,
            timed_out: t.timed_out,
            ..ReactorStats::default()
        };
        for slot in self.slots.values() {
            match &slot.kind {
                Kind::Peer(p) => {
                    out.peers += 1;
                    let s = p.conn.stats();
                    out.bytes_in += s.bytes_in;
                    out.bytes_out += s.bytes_out;
                }
                Kind::Server(_) => out.servers += 1,
            }
        }
        out
    }
}
