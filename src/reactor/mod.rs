//! [`Reactor`]: one `mio::Poll`, a table of peers and servers, and the pass
//! that feeds them readiness and time.
//!
//! The reactor moves bytes, registers sockets, keeps timers and the ready set;
//! it decides nothing about a connection's state: each peer's
//! [`Connection`](crate::core::Connection) does, and answers with actions the
//! reactor carries out. Split by concern:
//!
//! - [`slots`]: keys, `HandleId`, the generation-checked table;
//! - [`sched`]: ready set, resume list, timers, idle sweep;
//! - [`peer`]: a peer's slot and its I/O (events, connect, resolve, put/get,
//!   detach), and the one place actions are applied;
//! - [`accept`]: servers, the accept loop and its back-off.
//!
//! OS calls are in [`crate::sys`].

mod accept;
mod peer;
mod sched;
mod slots;
mod stats;

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Waker};

use crate::config::Config;
use crate::core::{Actions, Clock, Limits, Readiness};
use crate::ip::Resolver;
use crate::{SocketError, sys};

pub(crate) use accept::ServerSlot;
pub(crate) use peer::{Bound, PeerSlot};
pub use slots::HandleId;
pub(crate) use slots::Key;
pub use stats::ReactorStats;

use sched::{Marks, Sched, TimerKind};
use slots::{Slots, WAKER_TOKEN};

/// A handle to one single-threaded event loop that drives every
/// [`StreamPeerTcp`](crate::StreamPeerTcp) and [`TcpServer`](crate::TcpServer)
/// created with it.
///
/// Cloning is cheap (a reference count). The reactor and its peers belong to one
/// thread (`Reactor` is `!Send`); use one reactor per thread to use many cores,
/// and a [`ReactorWaker`] to wake a blocked [`Reactor::poll`] from elsewhere.
///
/// Processing is explicit: sockets are read and written, and statuses change,
/// only inside a *reactor pass*: [`Reactor::poll`], `StreamPeerTcp::poll`,
/// `TcpServer::is_connection_available` or a waiting method. Calling `poll()` on
/// any one peer processes the events of all of them (as in Godot, where each
/// peer's `poll()` is called every frame, this is cheap: a pass with nothing to
/// do is one `epoll_wait` with a zero timeout).
///
/// ```
/// use std::time::Duration;
/// use lunanet::Reactor;
///
/// let reactor = Reactor::new()?;
/// // A tick loop sleeps here until the next tick or the next packet.
/// let changed = reactor.poll(Some(Duration::from_millis(1)))?;
/// assert_eq!(changed, 0);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Clone)]
pub struct Reactor {
    pub(crate) inner: Rc<RefCell<Inner>>,
}

/// Wakes a [`Reactor::poll`] that is blocked, from any thread.
///
/// ```
/// use std::time::Duration;
/// use lunanet::Reactor;
///
/// let reactor = Reactor::new()?;
/// let waker = reactor.waker()?;
/// let t = std::thread::spawn(move || waker.wake());
/// // Returns when woken instead of waiting the full minute.
/// reactor.poll(Some(Duration::from_secs(60)))?;
/// t.join().unwrap()?;
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Clone)]
pub struct ReactorWaker {
    waker: Arc<Waker>,
}

impl ReactorWaker {
    /// Makes the reactor's current or next `poll` return promptly.
    pub fn wake(&self) -> Result<(), SocketError> {
        self.waker.wake().map_err(SocketError::from)
    }
}

impl fmt::Debug for ReactorWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorWaker").finish_non_exhaustive()
    }
}

impl Reactor {
    /// A reactor with [`Config::default()`].
    ///
    /// # Errors
    /// `InitFailed` when the OS refuses a poller (out of descriptors).
    pub fn new() -> Result<Reactor, SocketError> {
        Reactor::with_config(Config::default())
    }

    /// A reactor with the given settings.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero limit, budget, capacity or backlog;
    /// `InitFailed` when the OS refuses a poller.
    ///
    /// ```
    /// use lunanet::{Config, Reactor, SocketError};
    /// let bad = Reactor::with_config(Config::default().read_buffer_limit(0));
    /// assert_eq!(bad.err(), Some(SocketError::InvalidParameter));
    /// ```
    pub fn with_config(config: Config) -> Result<Reactor, SocketError> {
        config.validate()?;
        let poll = Poll::new().map_err(|e| SocketError::from_init(&e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER_TOKEN).map_err(|e| SocketError::from_init(&e))?,
        );
        let events = Events::with_capacity(config.events_capacity);
        let limits = Limits {
            read_buffer: config.read_buffer_limit,
            write_buffer: config.write_buffer_limit,
            connect_timeout: config.connect_timeout,
            linger_timeout: config.linger_timeout,
            idle_timeout: config.idle_timeout,
            read_rate: config.read_rate_limit,
        };
        Ok(Reactor {
            inner: Rc::new(RefCell::new(Inner {
                poll,
                events,
                slots: Slots::new(),
                resolver: None,
                resolving: Vec::new(),
                resolve_check: false,
                waker,
                sched: Sched::new(),
                limits,
                config,
                totals: stats::Totals::default(),
            })),
        })
    }

    /// The settings this reactor was created with.
    pub fn config(&self) -> Config {
        self.inner.borrow().config.clone()
    }

    /// Waits up to `timeout` for events and processes them: reads every ready
    /// socket into its peer's buffer, flushes queued output, completes connects
    /// and accepts, fires connect and linger timeouts.
    ///
    /// `None` waits until something happens; `Some(Duration::ZERO)` never blocks.
    /// The wait ends early when a timeout of this reactor falls due or when work
    /// is pending that needs no event (a peer whose read buffer had filled up and
    /// was then read by the application, or an id handed out by
    /// [`drain_ready`](Self::drain_ready) whose input is still unread). Returns
    /// how many peers and servers changed in this pass (status, bytes
    /// available, output flushed, connection waiting to be taken), counting
    /// such leftovers.
    ///
    /// # Errors
    /// `Failed` if the OS poller itself fails (not a per-peer problem: those show
    /// in the peer's status).
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize, SocketError> {
        self.inner.borrow_mut().pass(timeout).map_err(|e| {
            log::error!("lunanet reactor poll failed: {e}");
            SocketError::from(e)
        })
    }

    /// Writes every peer's queued output now (one `write` per peer), without
    /// waiting for events. With [`Config::coalesce_writes`] (the default) every
    /// reactor pass does this first, before it sleeps; call it when you put
    /// data and will not run a pass soon.
    pub fn flush(&self) {
        self.inner.borrow_mut().run_resumes(&mut Clock::lazy());
    }

    /// A [`ReactorWaker`] for this reactor (all wakers share one OS object).
    ///
    /// # Errors
    /// None today; kept fallible for platforms where creating one can fail.
    pub fn waker(&self) -> Result<ReactorWaker, SocketError> {
        Ok(ReactorWaker {
            waker: Arc::clone(&self.inner.borrow().waker),
        })
    }

    /// Moves into `out` the ids of the peers and servers that changed since the
    /// last call (status, bytes available, output flushed, connection to take)
    /// or that still have input you left unread, each once.
    ///
    /// This is the ready set: a tick over 10 000 mostly idle peers visits only
    /// the few that changed instead of calling every peer's `poll()`. `out` is not
    /// cleared first, and its capacity is reused, so a steady loop allocates
    /// nothing.
    ///
    /// **Level-triggered for input**: an id handed out here is reported again
    /// by the next call (and the next reactor pass does not sleep) as long as
    /// the peer still has unread bytes (`available_bytes() > 0`), a
    /// [`PacketPeerStream`](crate::PacketPeerStream) over it holds a complete
    /// packet, or (for a server) a connection waits to be taken. So a loop may
    /// take one packet, or a bounded number of bytes, per id per tick: the rest
    /// is not stranded. Once the input is consumed the id is not reported again
    /// until something new happens. The cost is O(ids handed out last time),
    /// never a scan of all peers. Input you leave unread on purpose (waiting
    /// for a whole message with `available_bytes`) keeps its id reported each
    /// call; a `PacketPeerStream` pulls incomplete frames out of the peer, so
    /// it does not.
    ///
    /// An id may name a connection that has closed since it changed (for
    /// example one you dropped while handling an earlier id): look ids up in
    /// your own map (a [`PeerMap`](crate::PeerMap)) and skip the unknown ones.
    /// Ids are never reused, so a stale id never matches a newer connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lunanet::{PeerMap, Reactor, StreamPeerTcp, TcpServer};
    ///
    /// let reactor = Reactor::new()?;
    /// let mut server = TcpServer::new(&reactor);
    /// server.listen(0, "127.0.0.1")?;
    /// let mut client = StreamPeerTcp::new(&reactor);
    /// client.connect_to_host("127.0.0.1", server.local_port())?;
    /// client.wait_connected(Duration::from_secs(5))?;
    /// let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// let (id, accepted) = loop {
    ///     if let Some(pair) = server.take_connection_with_id() { break pair; }
    ///     assert!(std::time::Instant::now() < deadline, "no connection");
    ///     reactor.poll(Some(Duration::from_millis(10)))?;
    /// };
    /// let mut peers: PeerMap<StreamPeerTcp> = PeerMap::new();
    /// peers.insert(id, accepted);
    /// client.put_data(b"ping")?;
    ///
    /// let mut ready = Vec::new();
    /// let mut buf = [0u8; 64];
    /// 'tick: while std::time::Instant::now() < deadline {
    ///     reactor.poll(Some(Duration::from_millis(10)))?;
    ///     reactor.drain_ready(&mut ready);
    ///     for id in ready.drain(..) {
    ///         if let Some(peer) = peers.get_mut(id) {
    ///             let n = peer.get_partial_data(&mut buf)?;
    ///             if n > 0 { assert_eq!(&buf[..n], b"ping"); break 'tick; }
    ///         }
    ///     }
    /// }
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn drain_ready(&self, out: &mut Vec<HandleId>) {
        let mut inner = self.inner.borrow_mut();
        inner.recheck();
        inner.sched.drain_ready(out);
    }

    /// Number of live connections and servers in this reactor, including peers
    /// that were dropped and are still flushing their output (lingering).
    pub fn len(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    /// Whether the reactor has no connections or servers at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes currently held by peers' read and write buffers (not counting
    /// fixed per-peer bookkeeping): a gauge for memory budgets and tests.
    pub fn buffered_capacity(&self) -> usize {
        self.inner
            .borrow()
            .slots
            .values()
            .map(|s| match &s.kind {
                Kind::Peer(p) => p.conn.buffer_capacity(),
                Kind::Server(_) => 0,
            })
            .sum()
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_borrow() {
            Ok(inner) => f
                .debug_struct("Reactor")
                .field("entries", &inner.slots.len())
                .field("config", &inner.config)
                .finish(),
            Err(_) => f.write_str("Reactor { <busy> }"),
        }
    }
}

// ---------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------

/// The reactor's state, behind the `Rc<RefCell<_>>` of every handle. A
/// handle's method borrows it for one call; no user code runs meanwhile, so
/// there is no re-entrancy.
pub(crate) struct Inner {
    poll: Poll,
    events: Events,
    pub(crate) slots: Slots<Slot>,
    /// Hostname lookups, created on first use.
    resolver: Option<Resolver>,
    /// Peers waiting for a lookup.
    resolving: Vec<Key>,
    /// A lookup completed without the resolver's notification (cache hit).
    resolve_check: bool,
    waker: Arc<Waker>,
    sched: Sched,
    limits: Limits,
    pub(crate) config: Config,
    /// Counters for `Reactor::stats`.
    totals: stats::Totals,
}

/// One entry of the table: its scheduling marks and what it is.
pub(crate) struct Slot {
    marks: Marks,
    pub(crate) kind: Kind,
}

#[allow(
    clippy::large_enum_variant,
    reason = "nearly every entry is a peer; boxing it would add an indirection to every event"
)]
pub(crate) enum Kind {
    Peer(PeerSlot),
    Server(ServerSlot),
}

impl Inner {
    #[inline]
    pub(crate) fn peer(&self, key: Key) -> Option<&PeerSlot> {
        match &self.slots.get(key)?.kind {
            Kind::Peer(p) => Some(p),
            Kind::Server(_) => None,
        }
    }

    pub(crate) fn server(&self, key: Key) -> Option<&ServerSlot> {
        match &self.slots.get(key)?.kind {
            Kind::Server(s) => Some(s),
            Kind::Peer(_) => None,
        }
    }

    pub(crate) fn server_mut(&mut self, key: Key) -> Option<&mut ServerSlot> {
        match &mut self.slots.get_mut(key)?.kind {
            Kind::Server(s) => Some(s),
            Kind::Peer(_) => None,
        }
    }

    /// One reactor pass: flush coalesced output, wait for events (bounded by
    /// `timeout`, timers and pending work), serve them, then the work no event
    /// announces, then lookups that completed, then timers.
    pub(crate) fn pass(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.sched.begin_pass();
        let mut timeout = timeout;
        // Entries the application was told about and left input in are ready
        // now: do not sleep on them.
        if self.recheck() {
            timeout = Some(Duration::ZERO);
        }
        if self.config.coalesce_writes && self.sched.has_resumes() {
            // Queued output leaves before the pass sleeps. The wait is
            // measured from the call, not from after the flush, so a tick
            // loop's sleep still ends on schedule.
            let started = Instant::now();
            self.run_resumes(&mut Clock::at(started));
            timeout = timeout.map(|t| t.saturating_sub(started.elapsed()));
            if self.sched.changed() > 0 {
                // The resumes also did work the application must see (a read
                // resumed after a full buffer): return without sleeping.
                timeout = Some(Duration::ZERO);
            }
        }
        let timeout = self.effective_timeout(timeout);
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let polled = sys::wait(&mut self.poll, &mut events, timeout);
        // Time after the wait, read only if a rule needs it.
        let mut clock = Clock::lazy();
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            if event.token() == WAKER_TOKEN {
                continue;
            }
            let r = Readiness {
                readable: event.is_readable(),
                writable: event.is_writable(),
                closing: event.is_read_closed() || event.is_error(),
            };
            self.service(Key::from_token(event.token()), r, &mut clock);
        }
        self.events = events;
        self.totals.events += count;
        polled?;
        self.run_resumes(&mut clock);
        if self.resolve_check || self.resolver.as_ref().is_some_and(|r| r.has_completed()) {
            self.run_resolved();
        }
        if self.sched.has_timers() {
            self.run_timers(&mut clock);
        }
        Ok(self.sched.changed())
    }

    fn effective_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if self.sched.has_resumes() || self.resolve_check {
            return Some(Duration::ZERO);
        }
        match self.sched.next_wakeup() {
            None => timeout,
            Some(at) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
        }
    }

    /// Serves one entry for an event or a resume. A stale key (the entry was
    /// removed, and maybe replaced, earlier in this batch) matches nothing.
    ///
    /// Steady traffic (a connected peer told that data arrived, with nothing
    /// queued or pending) is served right here with one lookup and one read;
    /// everything else goes through [`Inner::service_peer`].
    #[inline]
    fn service(&mut self, key: Key, r: Readiness, clock: &mut Clock) {
        let Inner {
            slots,
            sched,
            config,
            ..
        } = self;
        let Some(slot) = slots.get_mut(key) else {
            return; // stale: the entry is gone
        };
        let p = match &mut slot.kind {
            Kind::Peer(p) => p,
            Kind::Server(_) => return self.service_server(key, clock),
        };
        p.refresh_budget(sched.pass(), config.read_budget);
        let Some(acts) = p.steady_read(r, clock) else {
            return self.service_peer(key, r, clock);
        };
        if acts.needs_bookkeeping() {
            return self.apply(key, acts);
        }
        sched.touch(&mut slot.marks);
        if acts.has(Actions::NOTIFY) {
            sched.mark(&mut slot.marks, key);
        }
    }

    /// Runs the recheck list: an entry drained last time (or hinted by a
    /// `PacketPeerStream`) that still has something to take goes back into
    /// the ready set. Returns whether any did. O(length of the list).
    pub(crate) fn recheck(&mut self) -> bool {
        if !self.sched.needs_recheck() {
            return false;
        }
        let mut list = self.sched.take_recheck();
        let mut any = false;
        let Inner { slots, sched, .. } = self;
        for HandleId(key) in list.drain(..) {
            let Some(slot) = slots.get_mut(key) else {
                continue; // gone meanwhile
            };
            Sched::rechecked(&mut slot.marks);
            let leftover = match &slot.kind {
                Kind::Peer(p) => slot.marks.held || p.conn.available() > 0,
                Kind::Server(s) => s.has_pending(),
            };
            if leftover {
                sched.mark(&mut slot.marks, key);
                any = true;
            } else {
                sched.consumed(&mut slot.marks);
            }
        }
        self.sched.give_back_recheck(list);
        any
    }

    /// A `PacketPeerStream` over `key` says whether it holds a complete
    /// packet the application has not taken (see `StreamPeer::hold_input`).
    pub(crate) fn hold_input(&mut self, key: Key, held: bool) {
        let Inner { slots, sched, .. } = self;
        let Some(slot) = slots.get_mut(key) else {
            return;
        };
        slot.marks.held = held;
        if held {
            sched.schedule_recheck(&mut slot.marks, key);
        }
    }

    /// Runs the resume list (work no readiness event will announce).
    pub(crate) fn run_resumes(&mut self, clock: &mut Clock) {
        if !self.sched.has_resumes() {
            return;
        }
        let mut list = self.sched.take_resumes();
        for key in list.drain(..) {
            let Some(slot) = self.slots.get_mut(key) else {
                continue;
            };
            Sched::resumed(&mut slot.marks);
            self.service(key, Readiness::default(), clock);
        }
        self.sched.give_back(list);
    }

    fn run_timers(&mut self, clock: &mut Clock) {
        let now = clock.now();
        while let Some((key, kind)) = self.sched.pop_due(now) {
            match kind {
                TimerKind::Peer => self.peer_deadline(key, clock),
                TimerKind::Accept => self.accept_retry(key, clock),
            }
        }
        if self.sched.sweep_due(now) {
            self.sweep_idle(now);
        }
    }

    /// Releases the buffers of peers whose queues are empty and that saw no
    /// I/O for a whole sweep period.
    fn sweep_idle(&mut self, now: Instant) {
        let (mut list, epoch) = self.sched.begin_sweep();
        list.retain(|&key| {
            let Some(slot) = self.slots.get_mut(key) else {
                return false;
            };
            if Sched::stays_listed(&mut slot.marks, epoch) {
                return true;
            }
            if let Kind::Peer(p) = &mut slot.kind {
                p.conn.release_buffers();
            }
            false
        });
        self.sched.end_sweep(list, now);
    }

    /// Whether any lingering peer still has output to deliver.
    fn lingering_output(&self) -> bool {
        self.slots
            .values()
            .any(|s| matches!(&s.kind, Kind::Peer(p) if p.conn.has_lingering_output()))
    }
}

impl Drop for Inner {
    /// The last handle is gone. Peers that were dropped with output still
    /// queued would lose it if their sockets closed now, so keep processing,
    /// bounded by the linger timeout, until it is delivered.
    fn drop(&mut self) {
        let deadline = Instant::now() + self.config.linger_timeout;
        while self.lingering_output() {
            let now = Instant::now();
            if now >= deadline {
                log::warn!("reactor dropped with unsent output after the linger timeout");
                break;
            }
            if self.pass(Some(deadline - now)).is_err() {
                break;
            }
        }
    }
}
