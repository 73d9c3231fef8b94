//! Moving a peer's entry out of one reactor and into another (rooms that
//! live on one thread). The socket leaves the old poller and joins the new
//! one; the state machine, both queues, the status and the addresses travel
//! as they are (see `DetachedPeer`).

use super::PeerSlot;
use crate::reactor::{Inner, Key, Kind, Slot};
use crate::{SocketError, sys};

impl Inner {
    /// Takes a peer's entry out of this reactor: its socket leaves the
    /// poller, the server that accepted it counts one connection less.
    /// Nothing is read, written or dropped.
    ///
    /// Refused (entry untouched) while a hostname lookup is in flight: it
    /// belongs to this reactor's resolver (`Busy`).
    pub(crate) fn take_peer(&mut self, key: Key) -> Result<PeerSlot, SocketError> {
        let Inner { slots, poll, .. } = self;
        let Some(Slot {
            kind: Kind::Peer(p),
            ..
        }) = slots.get_mut(key)
        else {
            return Err(SocketError::SocketInvalid);
        };
        if p.lookup.is_some() || p.conn.is_resolving() {
            return Err(SocketError::Busy);
        }
        if let Some(sock) = p.conn.socket_mut() {
            sys::deregister_stream(poll.registry(), sock).map_err(|e| {
                log::error!("detach: deregistering {:?} failed: {e}", p.conn.remote());
                SocketError::from(e)
            })?;
        }
        let mut p = match slots.remove(key) {
            Some(Slot {
                kind: Kind::Peer(p),
                marks,
            }) => {
                self.sched.forget(&marks);
                p
            }
            _ => return Err(SocketError::SocketInvalid),
        };
        // Entries in the old ready set, resume list, idle list and timers
        // name `key`, which no longer matches anything: they are skipped.
        p.budget_pass = 0;
        p.budget_left = 0;
        if let Some(server) = p.server.take() {
            self.connection_closed(server, p.conn.remote());
        }
        Ok(p)
    }

    /// Puts a peer taken from another reactor into this one: registers its
    /// socket under a new key and schedules the work no event will announce
    /// (see `Connection::rehome`). On failure the entry is dropped (its socket
    /// closes).
    pub(crate) fn adopt_peer(&mut self, mut p: PeerSlot) -> Result<Key, SocketError> {
        let acts = p.conn.rehome();
        let marks = self.sched.new_marks();
        let Inner { slots, poll, .. } = self;
        let key = slots.insert_with(|key| {
            if let Some(sock) = p.conn.socket_mut() {
                sys::register_stream(poll.registry(), sock, key.token()).map_err(|e| {
                    log::error!("attach: registering {:?} failed: {e}", p.conn.remote());
                    SocketError::from_init(&e)
                })?;
            }
            Ok(Slot {
                marks,
                kind: Kind::Peer(p),
            })
        })?;
        self.apply(key, acts);
        Ok(key)
    }
}
