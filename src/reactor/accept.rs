//! Servers: the listening socket's entry, the accept loop and its back-off,
//! and handing accepted connections to the application.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::peer::PeerSlot;
use super::sched::TimerKind;
use super::{Inner, Key, Kind, Slot};
use crate::SocketError;
use crate::core::{Clock, Connection};
use crate::sys::{self, Listener, Stream};

/// First and longest wait before accepting again after the process ran out of
/// descriptors (doubling in between).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listening server's entry.
pub(crate) struct ServerSlot {
    listener: Listener,
    /// Accepted connections not yet taken by the application.
    pending: VecDeque<(Stream, SocketAddr)>,
    pub(crate) local: SocketAddr,
    /// Current back-off after descriptor exhaustion (zero when accepting).
    backoff: Duration,
    paused: bool,
    pub(crate) max_connections: Option<usize>,
    /// Open connections accepted by this server (pending or taken).
    pub(crate) live: usize,
    pub(crate) refused: u64,
    /// See `TcpServer::set_max_connections_per_ip`.
    pub(crate) max_per_ip: Option<usize>,
    /// Open connections per remote address (pending or taken); an address
    /// leaves the map when its last connection closes, so the map is bounded
    /// by `live`.
    per_ip: HashMap<IpAddr, usize>,
}

impl ServerSlot {
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl Inner {
    /// Creates a listening server entry (see `TcpServer::listen`).
    pub(crate) fn listen(&mut self, local: sys::LocalAddr) -> Result<Key, SocketError> {
        let mut listener =
            sys::listener(local, self.config.listen_backlog, self.config.reuse_port)?;
        let local = sys::listener_addr(&listener).map_err(|e| SocketError::from_init(&e))?;
        let marks = self.sched.new_marks();
        let Inner { slots, poll, .. } = self;
        slots.insert_with(|key| {
            sys::register_listener(poll.registry(), &mut listener, key.token())
                .map_err(|e| SocketError::from_init(&e))?;
            Ok(Slot {
                marks,
                kind: Kind::Server(ServerSlot {
                    listener,
                    pending: VecDeque::new(),
                    local,
                    backoff: Duration::ZERO,
                    paused: false,
                    max_connections: None,
                    live: 0,
                    refused: 0,
                    max_per_ip: None,
                    per_ip: HashMap::new(),
                }),
            })
        })
    }

    /// Accepts until the kernel queue is empty, the pending queue is full, or
    /// the process is out of descriptors (then retries after a back-off).
    pub(super) fn service_server(&mut self, key: Key, clock: &mut Clock) {
        let Inner {
            slots,
            sched,
            config,
            totals,
            ..
        } = self;
        let Some(Slot {
            marks,
            kind: Kind::Server(s),
        }) = slots.get_mut(key)
        else {
            return;
        };
        if s.paused {
            return;
        }
        let pending_limit = config.listen_backlog as usize;
        let before = s.pending.len();
        loop {
            if s.pending.len() >= pending_limit {
                // The application is not taking connections: leave the rest in
                // the kernel's queue (its backlog applies); `take_connection`
                // schedules a resume.
                break;
            }
            match sys::accept(&s.listener) {
                Ok((stream, addr)) => {
                    s.backoff = Duration::ZERO;
                    if s.max_connections.is_some_and(|max| s.live >= max) {
                        // Polite refusal: accept and close at once, counted.
                        s.refused += 1;
                        totals.refused += 1;
                        log::debug!("refusing {addr}: max_connections reached");
                        drop(stream);
                        continue;
                    }
                    let ip = addr.ip().to_canonical();
                    let from_ip = s.per_ip.get(&ip).copied().unwrap_or(0);
                    if s.max_per_ip.is_some_and(|max| from_ip >= max) {
                        s.refused += 1;
                        totals.refused += 1;
                        log::debug!("refusing {addr}: max_connections_per_ip reached");
                        drop(stream);
                        continue;
                    }
                    if let Err(e) = sys::set_no_delay(&stream, config.no_delay) {
                        log::debug!("set_nodelay on accepted {addr}: {e}");
                    }
                    sys::DeadPeer {
                        keepalive: config.keepalive,
                        user_timeout: config.user_timeout,
                    }
                    .apply(socket2::SockRef::from(&stream));
                    *s.per_ip.entry(ip).or_insert(0) += 1;
                    totals.accepted += 1;
                    s.live += 1;
                    s.pending.push_back((stream, addr));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // EMFILE and friends: the connection stays in the kernel's
                    // queue and no new edge will come for it, so retry on a
                    // timer, backing off; never spin.
                    s.backoff = (s.backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                    if sys::is_resource_exhaustion(&e) {
                        log::warn!("accept on {}: {e}; retrying in {:?}", s.local, s.backoff);
                    } else {
                        log::error!("accept on {}: {e}; retrying in {:?}", s.local, s.backoff);
                    }
                    s.paused = true;
                    sched.arm(clock.now() + s.backoff, key, TimerKind::Accept);
                    break;
                }
            }
        }
        if s.pending.len() > before {
            sched.mark(marks, key);
        }
    }

    /// The accept back-off timer fell due.
    pub(super) fn accept_retry(&mut self, key: Key, clock: &mut Clock) {
        if let Some(s) = self.server_mut(key) {
            s.paused = false;
            self.service_server(key, clock);
        }
    }

    /// A connection accepted by `server` from `remote` closed its socket.
    pub(super) fn connection_closed(&mut self, server: Key, remote: Option<SocketAddr>) {
        if let Some(s) = self.server_mut(server) {
            s.live = s.live.saturating_sub(1);
            if let Some(ip) = remote.map(|a| a.ip().to_canonical())
                && let Some(n) = s.per_ip.get_mut(&ip)
            {
                *n -= 1;
                if *n == 0 {
                    s.per_ip.remove(&ip);
                }
            }
        }
    }

    /// Takes an accepted connection as a `Connected` peer entry.
    pub(crate) fn take_connection(&mut self, server: Key) -> Option<Key> {
        loop {
            let limit = self.config.listen_backlog as usize;
            let s = self.server_mut(server)?;
            let was_full = s.pending.len() >= limit;
            let (mut stream, remote) = s.pending.pop_front()?;
            if was_full {
                // It had stopped accepting because this queue was full.
                let Inner { slots, sched, .. } = self;
                if let Some(slot) = slots.get_mut(server) {
                    sched.schedule_resume(&mut slot.marks, server);
                }
            }
            let marks = self.sched.new_marks();
            let limits = self.limits;
            let no_delay = self.config.no_delay;
            let Inner { slots, poll, .. } = self;
            let mut arm = crate::core::Actions::NONE;
            let inserted = slots.insert_with(|key| {
                sys::register_stream(poll.registry(), &mut stream, key.token()).map_err(|e| {
                    log::error!("register accepted {remote}: {e}");
                    SocketError::from_init(&e)
                })?;
                let (conn, acts) = Connection::accepted(stream, remote, limits, &mut Clock::lazy());
                arm = acts;
                Ok(Slot {
                    marks,
                    kind: Kind::Peer(PeerSlot::accepted(conn, server, no_delay)),
                })
            });
            match inserted {
                Ok(key) => {
                    self.apply(key, arm);
                    return Some(key);
                }
                // Not registered (or the table is full): the connection is
                // dropped, closing it; try the next one.
                Err(_) => self.connection_closed(server, Some(remote)),
            }
        }
    }

    /// `TcpServer::stop`: closes the listener and every connection accepted
    /// but not taken.
    pub(crate) fn stop_server(&mut self, key: Key) {
        if self.server(key).is_some()
            && let Some(slot) = self.slots.remove(key)
        {
            self.sched.forget(&slot.marks);
        }
    }
}
