//! Peer I/O: a peer's slot, how the reactor feeds its [`Connection`]
//! (events, resumes, deadlines, lookups, the handle's calls), and the one
//! place the connection's [`Actions`] are carried out.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::Registry;

use super::sched::TimerKind;
use super::{Inner, Key, Kind, Slot};
use crate::core::{Actions, Clock, Connection, Dial, Readiness};
use crate::ip::{Host, Resolver, ResolverId, ResolverStatus};
use crate::sys::{self, Stream};
use crate::{IpType, SocketError};

mod migrate;

/// What `StreamPeerTcp::bind` prepared for the next connect.
pub(crate) struct Bound {
    pub(crate) socket: socket2::Socket,
    pub(crate) local: sys::LocalAddr,
}

/// The socket `bind()` created (taken by the first connect attempt) and
/// where it bound, with the port the OS chose, for further attempts.
struct BindState {
    socket: Option<socket2::Socket>,
    local: sys::LocalAddr,
}

/// A peer's entry: its state machine plus what the reactor needs to drive it.
pub(crate) struct PeerSlot {
    pub(crate) conn: Connection<Stream>,
    /// The hostname lookup this peer waits for, and the port to connect to.
    lookup: Option<(ResolverId, u16)>,
    /// What `bind()` prepared (rare: boxed to keep every other peer small).
    bound: Option<Box<BindState>>,
    /// The pass in which `budget_left` was last set: a peer served twice in
    /// one pass (event and resume) shares one read budget.
    budget_pass: u64,
    budget_left: usize,
    /// Last pass whose reply was written at once (see [`PeerSlot::reply_now`]).
    reply_pass: u64,
    /// The server this connection was accepted by (for its connection count).
    server: Option<Key>,
    no_delay: bool,
}

impl PeerSlot {
    /// Starts the read budget afresh in a new pass (a peer served twice in
    /// one pass, by an event and a resume, shares one budget).
    #[inline]
    pub(super) fn refresh_budget(&mut self, pass: u64, budget: usize) {
        if self.budget_pass != pass {
            self.budget_pass = pass;
            self.budget_left = budget;
        }
    }

    /// With coalescing on: may this `put` be written at once? Yes for the
    /// first put after a pass that read bytes from this peer (a reply:
    /// request/response keeps one direct write per message and its latency);
    /// later puts until the next pass are queued and leave together at the
    /// start of the next pass. A peer that read nothing in the latest pass (a
    /// tick broadcast), or that spent its whole read budget (it is still
    /// streaming in: more input and more replies come next pass), only
    /// queues: one write per peer per pass.
    #[inline(always)]
    pub(super) fn reply_now(&mut self, pass: u64, budget: usize) -> bool {
        // The budget is spent by reading: below full means bytes came in
        // this pass, above zero that the peer's input was drained. Both in
        // one compare: `0 < left < budget` iff `left - 1 < budget - 1`
        // (wrapping; the budget is at least 1).
        if self.budget_pass == pass
            && self.budget_left.wrapping_sub(1) < budget.wrapping_sub(1)
            && self.reply_pass != pass
        {
            self.reply_pass = pass;
            return true;
        }
        false
    }

    /// The connection's short path (steady traffic), with this pass's budget.
    #[inline(always)]
    pub(super) fn steady_read(&mut self, r: Readiness, clock: &mut Clock) -> Option<Actions> {
        self.conn.on_steady_read(r, &mut self.budget_left, clock)
    }

    pub(super) fn accepted(conn: Connection<Stream>, server: Key, no_delay: bool) -> PeerSlot {
        PeerSlot {
            conn,
            lookup: None,
            bound: None,
            budget_pass: 0,
            budget_left: 0,
            reply_pass: 0,
            server: Some(server),
            no_delay,
        }
    }
}

/// Opens the sockets of connect attempts for one peer (see [`Dial`]).
struct Dialer<'a> {
    registry: &'a Registry,
    key: Key,
    bound: &'a mut Option<Box<BindState>>,
    no_delay: bool,
    dead_peer: sys::DeadPeer,
}

impl Dial<Stream> for Dialer<'_> {
    fn dial(&mut self, to: SocketAddr) -> io::Result<(Stream, Option<io::ErrorKind>)> {
        sys::dial(
            self.registry,
            self.key.token(),
            self.bound.as_mut().and_then(|b| b.socket.take()),
            self.bound.as_ref().map(|b| b.local),
            self.no_delay,
            self.dead_peer,
            to,
        )
    }
}

impl Inner {
    /// Runs `f` on a peer's connection with its read budget for this pass
    /// and a dialer; `None` if `key` names no live peer.
    fn drive<R>(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut Connection<Stream>, &mut usize, &mut Dialer<'_>) -> R,
    ) -> Option<R> {
        let Inner {
            slots,
            sched,
            poll,
            config,
            ..
        } = self;
        let Kind::Peer(p) = &mut slots.get_mut(key)?.kind else {
            return None;
        };
        p.refresh_budget(sched.pass(), config.read_budget);
        let mut dialer = Dialer {
            registry: poll.registry(),
            key,
            bound: &mut p.bound,
            no_delay: p.no_delay,
            dead_peer: sys::DeadPeer {
                keepalive: config.keepalive,
                user_timeout: config.user_timeout,
            },
        };
        Some(f(&mut p.conn, &mut p.budget_left, &mut dialer))
    }

    /// Serves a peer for an event or a resume, in the general case (see
    /// `Inner::service` for steady traffic).
    #[inline(never)]
    pub(super) fn service_peer(&mut self, key: Key, r: Readiness, clock: &mut Clock) {
        if let Some(acts) = self.drive(key, |conn, budget, dial| {
            conn.on_ready(r, budget, clock, dial)
        }) {
            self.apply(key, acts);
        }
    }

    /// Carries out what a peer's connection answered: notify, resume, idle
    /// bookkeeping, arm its deadline; on `CLOSED` the one close path (the
    /// server's count, the lookup); on `RELEASE` forget the entry.
    pub(super) fn apply(&mut self, key: Key, acts: Actions) {
        let Inner {
            slots,
            sched,
            resolver,
            totals,
            ..
        } = self;
        let Some(Slot { marks, kind }) = slots.get_mut(key) else {
            return;
        };
        let Kind::Peer(p) = kind else {
            return;
        };
        if acts.has(Actions::EMPTIED) {
            sched.touch_emptied(marks, key);
        } else if acts.has(Actions::MOVED) {
            sched.touch(marks);
        }
        if acts.has(Actions::RESUME) {
            sched.schedule_resume(marks, key);
        }
        if acts.has(Actions::NOTIFY) {
            sched.mark(marks, key);
        }
        if acts.has(Actions::ARM)
            && let Some(at) = p.conn.deadline()
        {
            sched.arm(at, key, TimerKind::Peer);
        }
        let mut server = None;
        if acts.has(Actions::CLOSED) {
            if p.conn.error_kind() == Some(io::ErrorKind::TimedOut)
                && p.conn.status() == crate::Status::Error
            {
                totals.timed_out += 1;
            }
            server = p.server.take().map(|s| (s, p.conn.remote()));
            if let (Some((id, _)), Some(r)) = (p.lookup.take(), resolver.as_ref()) {
                r.erase(id);
            }
        }
        if acts.has(Actions::RELEASE) {
            totals.fold(&p.conn);
            sched.forget(marks);
            slots.remove(key);
        }
        if let Some((server, remote)) = server {
            self.connection_closed(server, remote);
        }
    }

    /// A peer's timer fell due: its connection decides whether it matters.
    pub(super) fn peer_deadline(&mut self, key: Key, clock: &mut Clock) {
        if let Some(acts) = self.drive(key, |conn, _, _| conn.on_deadline(clock)) {
            self.apply(key, acts);
        }
    }

    /// Serves peers whose hostname lookup finished: connect to the addresses.
    pub(super) fn run_resolved(&mut self) {
        self.resolve_check = false;
        let mut i = 0;
        while i < self.resolving.len() {
            let key = self.resolving[i];
            let lookup = self.peer(key).and_then(|p| p.lookup);
            let (Some(resolver), Some((id, port))) = (&self.resolver, lookup) else {
                self.resolving.swap_remove(i);
                continue;
            };
            let targets: Option<Vec<SocketAddr>> = match resolver.status(id) {
                ResolverStatus::Waiting => {
                    i += 1;
                    continue;
                }
                ResolverStatus::Done => Some(
                    resolver
                        .take_addresses(id)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|a| a.to_ip_addr())
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect(),
                ),
                ResolverStatus::Error | ResolverStatus::None => {
                    resolver.erase(id);
                    None
                }
            };
            self.resolving.swap_remove(i);
            if let Some(p) = self.peer_mut(key) {
                p.lookup = None;
            }
            let acts = self.drive(key, |conn, _, dial| match targets {
                Some(targets) => conn.connect_to(targets, dial),
                None => conn.resolve_failed(),
            });
            if let Some(acts) = acts {
                self.apply(key, acts);
            }
        }
    }

    fn peer_mut(&mut self, key: Key) -> Option<&mut PeerSlot> {
        match &mut self.slots.get_mut(key)?.kind {
            Kind::Peer(p) => Some(p),
            Kind::Server(_) => None,
        }
    }

    // -- operations for `StreamPeerTcp` ----------------------------------------

    /// Creates a connecting peer entry (see `StreamPeerTcp::connect_to_host`).
    pub(crate) fn connect(
        &mut self,
        host: Host,
        port: u16,
        bound: Option<Bound>,
        no_delay: bool,
    ) -> Result<Key, SocketError> {
        let bind = bound.as_ref().map(|b| b.local);
        let bound = bound.map(|b| {
            Box::new(BindState {
                socket: Some(b.socket),
                local: b.local,
            })
        });
        // An IP literal is connected to at once; a name is looked up first.
        let (address, lookup) = match (&host, host.literal()) {
            (_, Some(ip)) => {
                let ip = ip.to_ip_addr().ok_or(SocketError::InvalidIpAddress)?;
                (Some(SocketAddr::new(ip, port)), None)
            }
            (Host::Name(name), None) => {
                let ip_type = match bind {
                    Some(local) if !local.dual_stack && local.addr.is_ipv4() => IpType::Ipv4,
                    Some(local) if !local.dual_stack => IpType::Ipv6,
                    _ => IpType::Any,
                };
                (None, Some(self.resolver().queue(name, ip_type)?))
            }
            (Host::Address(_), None) => return Err(SocketError::InvalidIpAddress),
        };
        let (conn, arm) = Connection::resolving(self.limits, &mut Clock::lazy());
        let marks = self.sched.new_marks();
        let peer = PeerSlot {
            conn,
            lookup: lookup.map(|id| (id, port)),
            bound,
            budget_pass: 0,
            budget_left: 0,
            reply_pass: 0,
            server: None,
            no_delay,
        };
        let key = match self.slots.insert_with(|_| {
            Ok(Slot {
                marks,
                kind: Kind::Peer(peer),
            })
        }) {
            Ok(key) => key,
            Err(e) => {
                if let (Some(id), Some(r)) = (lookup, &self.resolver) {
                    r.erase(id);
                }
                return Err(e);
            }
        };
        self.apply(key, arm);
        match address {
            Some(address) => {
                if let Some(acts) =
                    self.drive(key, |conn, _, dial| conn.connect_to(vec![address], dial))
                {
                    self.apply(key, acts);
                }
            }
            None => {
                self.resolving.push(key);
                // A cached name completes at once, without a notification.
                self.resolve_check = true;
            }
        }
        Ok(key)
    }

    /// The reactor's resolver, started on first use; its worker wakes the
    /// reactor when a lookup completes.
    fn resolver(&mut self) -> &Resolver {
        let waker = Arc::clone(&self.waker);
        self.resolver.get_or_insert_with(|| {
            let r = Resolver::new();
            r.set_notify(Arc::new(move || {
                let _ = waker.wake();
            }));
            r
        })
    }

    /// The handle let go of its entry (`disconnect_from_host` or drop).
    pub(crate) fn detach(&mut self, key: Key) {
        if let Some(slot) = self.slots.get_mut(key) {
            // Nobody can take held packets any more.
            slot.marks.held = false;
        }
        let mut clock = Clock::lazy();
        if let Some(acts) = self.drive(key, |conn, budget, dial| {
            conn.detach(budget, &mut clock, dial)
        }) {
            self.apply(key, acts);
        }
    }

    /// `put_data` (`partial == false`) / `put_partial_data`.
    #[inline(always)]
    pub(crate) fn put(
        &mut self,
        key: Key,
        data: &[u8],
        partial: bool,
    ) -> Result<usize, SocketError> {
        // Written out rather than through a shared helper with a closure (as
        // `put_vectored`): that costs this hot path ~38 instructions per
        // echoed message (callgrind, scripts/perf-counts.sh: 391 -> 429).
        let Inner {
            slots,
            sched,
            config,
            ..
        } = self;
        let slot = slots.get_mut(key).ok_or(SocketError::SocketInvalid)?;
        let Kind::Peer(p) = &mut slot.kind else {
            return Err(SocketError::SocketInvalid);
        };
        let mut acts = Actions::NONE;
        let coalesce = config.coalesce_writes && !p.reply_now(sched.pass(), config.read_budget);
        let result = p.conn.put(data, partial, coalesce, &mut acts);
        if acts.has(Actions::RESUME) {
            sched.schedule_resume(&mut slot.marks, key);
        }
        result
    }

    /// `put_partial_data` of the concatenation of `bufs` in one gathering
    /// write (TLS records), as [`put`](Self::put). With `session`, the write
    /// is one the peer's protocol layer makes on its own rather than the
    /// application (a TLS session's handshake flight, session tickets,
    /// alerts, close_notify): written at once when nothing is queued ahead
    /// (as with `coalesce_writes(false)`), and without using the pass's reply
    /// allowance (see [`PeerSlot::reply_now`]), so the application's reply
    /// that follows in the same pass is still written at once.
    #[cfg(feature = "tls")]
    pub(crate) fn put_vectored(
        &mut self,
        key: Key,
        bufs: &[io::IoSlice<'_>],
        session: bool,
    ) -> Result<usize, SocketError> {
        let Inner {
            slots,
            sched,
            config,
            ..
        } = self;
        let slot = slots.get_mut(key).ok_or(SocketError::SocketInvalid)?;
        let Kind::Peer(p) = &mut slot.kind else {
            return Err(SocketError::SocketInvalid);
        };
        let mut acts = Actions::NONE;
        let coalesce =
            !session && config.coalesce_writes && !p.reply_now(sched.pass(), config.read_budget);
        let result = p.conn.put_vectored(bufs, coalesce, &mut acts);
        if acts.has(Actions::RESUME) {
            sched.schedule_resume(&mut slot.marks, key);
        }
        result
    }

    /// `get_data` (`partial == false`, returns the length) / `get_partial_data`.
    #[inline(always)]
    pub(crate) fn get(
        &mut self,
        key: Key,
        buf: &mut [u8],
        partial: bool,
    ) -> Result<usize, SocketError> {
        let Inner { slots, sched, .. } = self;
        let slot = slots.get_mut(key).ok_or(SocketError::SocketInvalid)?;
        let Kind::Peer(p) = &mut slot.kind else {
            return Err(SocketError::SocketInvalid);
        };
        let mut acts = Actions::NONE;
        let result = p.conn.get(buf, partial, &mut acts);
        if acts != Actions::NONE {
            if acts.has(Actions::RESUME) {
                sched.schedule_resume(&mut slot.marks, key);
            }
            if acts.has(Actions::EMPTIED) {
                // The input is all taken: nothing for the recheck list.
                sched.consumed(&mut slot.marks);
                sched.touch_emptied(&mut slot.marks, key);
            }
        }
        result
    }

    pub(crate) fn set_no_delay(&mut self, key: Key, on: bool) -> Result<(), SocketError> {
        let p = self.peer_mut(key).ok_or(SocketError::SocketInvalid)?;
        p.no_delay = on;
        match p.conn.socket() {
            Some(sock) => sys::set_no_delay(sock, on).map_err(SocketError::from),
            None => Ok(()),
        }
    }

    /// `StreamPeerTcp::set_idle_timeout`.
    pub(crate) fn set_idle_timeout(
        &mut self,
        key: Key,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), SocketError> {
        let acts = self
            .drive(key, |conn, _, _| conn.set_idle_timeout(timeout))
            .ok_or(SocketError::SocketInvalid)?;
        self.apply(key, acts);
        Ok(())
    }

    /// `StreamPeerTcp::set_read_rate_limit`.
    pub(crate) fn set_read_rate_limit(
        &mut self,
        key: Key,
        limit: Option<crate::RateLimit>,
    ) -> Result<(), SocketError> {
        if limit.is_some_and(|l| !l.is_valid()) {
            return Err(SocketError::InvalidParameter);
        }
        let mut clock = Clock::lazy();
        let acts = self
            .drive(key, |conn, _, _| {
                conn.set_read_rate_limit(limit, &mut clock)
            })
            .ok_or(SocketError::SocketInvalid)?;
        self.apply(key, acts);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Status, StreamPeerTcp, TcpServer};
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn poll_until(reactor: &crate::Reactor, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pred() {
            assert!(Instant::now() < deadline, "timed out");
            reactor.poll(Some(Duration::from_millis(10))).unwrap();
        }
    }

    /// An event collected for a freed slot (here replayed by hand, as if it
    /// were later in the same `epoll_wait` batch) must not reach the entry
    /// that took the slot since.
    #[test]
    fn a_stale_event_never_reaches_the_next_occupant() {
        let reactor = crate::Reactor::new().unwrap();
        let mut server = TcpServer::new(&reactor);
        server.listen(0, "127.0.0.1").unwrap();
        let port = server.local_port();

        let first_client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut first = None;
        poll_until(&reactor, || {
            first = server.take_connection();
            first.is_some()
        });
        let first: StreamPeerTcp = first.unwrap();
        let stale = first.id().unwrap().0;
        drop(first);
        drop(first_client);
        poll_until(&reactor, || {
            reactor.inner.borrow().slots.get(stale).is_none()
        });

        let mut second_client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut second = None;
        poll_until(&reactor, || {
            second = server.take_connection();
            second.is_some()
        });
        let second = second.unwrap();
        let fresh = second.id().unwrap().0;
        assert_eq!(
            fresh.index, stale.index,
            "slot not reused: test proves nothing"
        );
        assert_ne!(fresh.generation, stale.generation);

        // Data waits in the kernel; no pass has read it.
        second_client.write_all(b"abc").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let inner = reactor.inner.borrow();
            let sock = inner.peer(fresh).unwrap().conn.socket().unwrap();
            if sock.peek(&mut [0u8; 3]).unwrap_or(0) == 3 {
                break;
            }
            assert!(Instant::now() < deadline);
            std::thread::yield_now();
        }
        let all = Readiness {
            readable: true,
            writable: true,
            closing: true,
        };
        reactor
            .inner
            .borrow_mut()
            .service(stale, all, &mut Clock::lazy());
        assert_eq!(
            second.available_bytes(),
            0,
            "stale event reached the new peer"
        );
        assert_eq!(second.status(), Status::Connected);
        reactor.inner.borrow_mut().service(
            fresh,
            Readiness {
                closing: false,
                ..all
            },
            &mut Clock::lazy(),
        );
        assert_eq!(second.available_bytes(), 3);
    }
}
