//! [`Reactor`]: one `mio::Poll`, a slab of peers and servers, and the event loop
//! that moves bytes between sockets and the peers' buffers.
//!
//! Handles ([`StreamPeerTcp`](crate::StreamPeerTcp), [`TcpServer`](crate::TcpServer))
//! hold a [`Key`] into the slab; the reactor owns every socket. A key carries the
//! slot's generation, so an event, timer or ready-set entry that names a freed
//! slot can never reach the slot's next occupant.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;

use crate::config::Config;
use crate::conn::{Conn, FlushEnd, ReadEnd, Stall, Status};
use crate::ip::{Host, Resolver, ResolverId, ResolverStatus};
use crate::{IpType, SocketError, net};

/// How long an empty buffer must stay untouched before its memory is released.
const IDLE_RELEASE: Duration = Duration::from_secs(1);
/// First and longest wait before accepting again after the process ran out of
/// descriptors (doubling in between).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Bits of a token that hold the slab index; the rest hold the generation.
const INDEX_BITS: u32 = if usize::BITS >= 64 { 32 } else { 20 };
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GEN_MASK: u32 = (usize::MAX >> INDEX_BITS) as u32;
/// The waker's token: an index no slab will reach.
const WAKER_TOKEN: Token = Token(usize::MAX);

/// A slot index plus the generation of the entry that occupied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    index: usize,
    generation: u32,
}

impl Key {
    fn token(self) -> Token {
        Token(self.index | ((self.generation as usize) << INDEX_BITS))
    }

    fn from_token(token: Token) -> Key {
        Key {
            index: token.0 & INDEX_MASK,
            generation: (token.0 >> INDEX_BITS) as u32,
        }
    }
}

/// Identifies one connection (or server) in a [`Reactor`], as reported by
/// [`Reactor::drain_ready`].
///
/// A peer gets a new id each time it connects; an id is never reused while the
/// reactor lives (up to wrap-around of a 32-bit generation per slot), so an old
/// id simply matches nothing.
///
/// ```
/// use lunanet::{Reactor, TcpServer};
/// let reactor = Reactor::new()?;
/// let mut server = TcpServer::new(&reactor);
/// assert_eq!(server.id(), None);
/// server.listen(0, "127.0.0.1")?;
/// let id = server.id().unwrap();
/// // Dense, small: usable as an index into your own Vec or slab.
/// assert!(id.index() < 1_000);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId(pub(crate) Key);

impl HandleId {
    /// The slot index: small and dense (reused after the connection closes), so
    /// applications can keep per-connection data in a `Vec` indexed by it.
    pub fn index(self) -> usize {
        self.0.index
    }
}

impl fmt::Debug for HandleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandleId({}v{})", self.0.index, self.0.generation)
    }
}

/// A handle to one single-threaded event loop that drives every
/// [`StreamPeerTcp`](crate::StreamPeerTcp) and [`TcpServer`](crate::TcpServer)
/// created with it.
///
/// Cloning is cheap (a reference count). The reactor and its peers belong to one
/// thread (`Reactor` is `!Send`); use one reactor per thread to use many cores,
/// and a [`ReactorWaker`] to wake a blocked [`Reactor::poll`] from elsewhere.
///
/// Processing is explicit: sockets are read, written and their status updated
/// only inside a *reactor pass* — [`Reactor::poll`], `StreamPeerTcp::poll`,
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
        Ok(Reactor {
            inner: Rc::new(RefCell::new(Inner {
                poll,
                events,
                slots: Slab::new(),
                gens: Vec::new(),
                resolver: None,
                resolving: Vec::new(),
                resolve_check: false,
                waker,
                cx: Cx {
                    config,
                    resume: Vec::new(),
                    resume_spare: Vec::new(),
                    ready: Vec::new(),
                    ready_epoch: 1,
                    timers: BinaryHeap::new(),
                    idle: Vec::new(),
                    idle_epoch: 0,
                    next_sweep: None,
                    pass: 0,
                    changed: 0,
                },
            })),
        })
    }

    /// The settings this reactor was created with.
    pub fn config(&self) -> Config {
        self.inner.borrow().cx.config.clone()
    }

    /// Waits up to `timeout` for events and processes them: reads every ready
    /// socket into its peer's buffer, flushes queued output, completes connects
    /// and accepts, fires connect and linger timeouts.
    ///
    /// `None` waits until something happens; `Some(Duration::ZERO)` never blocks.
    /// The wait ends early when a timeout of this reactor falls due or when work
    /// is pending that needs no event (a peer whose read buffer had filled up and
    /// was then read by the application). Returns how many peers and servers
    /// changed in this pass (status, bytes available, output flushed, connection
    /// waiting to be taken).
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

    /// Writes every peer's queued output now, without waiting for events. Only
    /// needed with [`Config::coalesce_writes`]; every reactor pass does it too.
    pub fn flush(&self) {
        self.inner.borrow_mut().flush_dirty();
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
    /// last call (status, bytes available, output flushed, connection to take),
    /// each once, and forgets them.
    ///
    /// This is the ready set: a tick over 10 000 mostly idle peers visits only
    /// the few that changed instead of calling every peer's `poll()`. `out` is not
    /// cleared first, and its capacity is reused, so a steady loop allocates
    /// nothing.
    ///
    /// An id may name a connection that has closed since it changed (for
    /// example one you dropped while handling an earlier id): look ids up in
    /// your own map and skip the unknown ones. Ids are never reused, so a stale
    /// id never matches a newer connection.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use lunanet::{HandleId, Reactor, StreamPeerTcp, TcpServer};
    ///
    /// let reactor = Reactor::new()?;
    /// let mut server = TcpServer::new(&reactor);
    /// server.listen(0, "127.0.0.1")?;
    /// let mut client = StreamPeerTcp::new(&reactor);
    /// client.connect_to_host("127.0.0.1", server.local_port())?;
    /// client.wait_connected(Duration::from_secs(5))?;
    /// let accepted = loop {
    ///     if let Some(peer) = server.take_connection() { break peer; }
    ///     reactor.poll(Some(Duration::from_millis(10)))?;
    /// };
    /// let mut peers: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    /// peers.insert(accepted.id().unwrap(), accepted);
    /// client.put_data(b"ping")?;
    ///
    /// let mut ready = Vec::new();
    /// let mut buf = [0u8; 64];
    /// let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// 'tick: while std::time::Instant::now() < deadline {
    ///     reactor.poll(Some(Duration::from_millis(10)))?;
    ///     reactor.drain_ready(&mut ready);
    ///     for id in ready.drain(..) {
    ///         if let Some(peer) = peers.get_mut(&id) {
    ///             let n = peer.get_partial_data(&mut buf)?;
    ///             if n > 0 { assert_eq!(&buf[..n], b"ping"); break 'tick; }
    ///         }
    ///     }
    /// }
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn drain_ready(&self, out: &mut Vec<HandleId>) {
        let cx = &mut self.inner.borrow_mut().cx;
        out.extend(cx.ready.drain(..).map(HandleId));
        // Forget every entry's membership at once (O(1), no slab walk).
        cx.ready_epoch += 1;
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
            .iter()
            .map(|(_, s)| match &s.kind {
                Kind::Peer(p) => p.conn.rx.capacity() + p.conn.tx.capacity(),
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
                .field("config", &inner.cx.config)
                .finish(),
            Err(_) => f.write_str("Reactor { <busy> }"),
        }
    }
}

// ---------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------

/// The reactor's state, behind the `Rc<RefCell<_>>` of every handle.
pub(crate) struct Inner {
    poll: Poll,
    events: Events,
    pub(crate) slots: Slab<Slot>,
    /// Generation per slab index, kept across removals.
    gens: Vec<u32>,
    /// Hostname lookups, created on first use.
    resolver: Option<Resolver>,
    /// Peers waiting for a lookup.
    resolving: Vec<Key>,
    /// A lookup completed without the resolver's notification (cache hit).
    resolve_check: bool,
    waker: Arc<Waker>,
    pub(crate) cx: Cx,
}

/// Everything the per-peer handlers need besides the slot itself (split from
/// `Inner` so a slot and this can be borrowed mutably at once).
pub(crate) struct Cx {
    pub(crate) config: Config,
    /// Peers and servers with work that no readiness event will announce.
    resume: Vec<Key>,
    resume_spare: Vec<Key>,
    /// The ready set: entries changed since the last `drain_ready`.
    ready: Vec<Key>,
    /// Bumped by `drain_ready`; an entry whose `ready_epoch` equals it is
    /// already in `ready`.
    ready_epoch: u64,
    timers: BinaryHeap<Reverse<(Instant, Key, TimerKind)>>,
    /// Peers whose buffers became empty, candidates for release when idle.
    idle: Vec<Key>,
    idle_epoch: u32,
    next_sweep: Option<Instant>,
    /// Pass counter, to count each changed entry once per pass.
    pass: u64,
    changed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// Connect (or resolve) deadline of a peer.
    Connect,
    /// Linger deadline of a closing peer.
    Linger,
    /// Retry accepting after descriptor exhaustion.
    Accept,
}

pub(crate) struct Slot {
    generation: u32,
    /// Last pass in which this entry was counted as changed.
    changed_pass: u64,
    /// Equal to `Cx::ready_epoch` while the entry is in the ready set.
    ready_epoch: u64,
    in_resume: bool,
    in_idle: bool,
    /// Idle epoch of the last I/O (see `Cx::sweep`).
    touched: u32,
    pub(crate) kind: Kind,
}

pub(crate) enum Kind {
    Peer(PeerSlot),
    Server(ServerSlot),
}

/// Lifecycle of a peer's socket (the user-visible [`Status`] lives in `Conn`).
#[derive(Debug)]
enum Phase {
    /// Waiting for the resolver.
    Resolving {
        id: ResolverId,
        port: u16,
        deadline: Instant,
    },
    /// Non-blocking connect in progress.
    Connecting {
        deadline: Instant,
        /// Further addresses of the host to try if this one fails (last first).
        fallbacks: Vec<SocketAddr>,
        /// A failure reported by `connect(2)` itself, observed at the next pass.
        early_error: Option<io::ErrorKind>,
    },
    /// Connected.
    Open,
    /// Flushing output, then FIN, then reading (and discarding) until the
    /// remote's FIN, bounded by the linger deadline.
    Closing { deadline: Instant, shut: bool },
    /// No socket.
    Closed,
}

pub(crate) struct PeerSlot {
    sock: Option<TcpStream>,
    /// The socket `bind()` created, used for the first connect attempt.
    bound: Option<socket2::Socket>,
    /// Where `bind()` bound (with the port the OS chose), for further attempts.
    bind: Option<net::LocalAddr>,
    /// The pass in which `budget_left` was last set: a peer served twice in
    /// one pass (event and resume) shares one read budget.
    budget_pass: u64,
    budget_left: usize,
    pub(crate) conn: Conn,
    phase: Phase,
    /// A `StreamPeerTcp` owns this entry; when false the entry only lingers to
    /// flush and close, and is removed once `Closed`.
    attached: bool,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: Option<SocketAddr>,
    /// The server this connection was accepted by (for its connection count).
    server: Option<Key>,
    no_delay: bool,
}

pub(crate) struct ServerSlot {
    listener: TcpListener,
    /// Accepted connections not yet taken by the application.
    pending: VecDeque<(TcpStream, SocketAddr)>,
    pub(crate) local: SocketAddr,
    /// Current back-off after descriptor exhaustion (zero when accepting).
    backoff: Duration,
    paused: bool,
    pub(crate) max_connections: Option<usize>,
    /// Open connections accepted by this server (pending or taken).
    pub(crate) live: usize,
    pub(crate) refused: u64,
}

impl PeerSlot {
    fn new(config: &Config, status: Status, phase: Phase, no_delay: bool) -> PeerSlot {
        PeerSlot {
            sock: None,
            bound: None,
            bind: None,
            budget_pass: 0,
            budget_left: 0,
            conn: Conn::new(status, config.read_buffer_limit, config.write_buffer_limit),
            phase,
            attached: true,
            local: None,
            remote: None,
            server: None,
            no_delay,
        }
    }
}

impl ServerSlot {
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// What the OS reported for a socket in this pass.
#[derive(Debug, Clone, Copy, Default)]
struct Readiness {
    readable: bool,
    writable: bool,
    /// Read-closed or error: read on until a definitive answer (0 or error).
    closing: bool,
}

impl Readiness {
    fn from_event(e: &Event) -> Readiness {
        Readiness {
            readable: e.is_readable(),
            writable: e.is_writable(),
            closing: e.is_read_closed() || e.is_error(),
        }
    }
}

impl Cx {
    #[inline]
    /// Records that an entry changed in this pass (counted once) and puts it in
    /// the ready set (once until drained).
    fn mark(&mut self, slot: &mut Slot, key: Key) {
        if slot.changed_pass != self.pass {
            slot.changed_pass = self.pass;
            self.changed += 1;
        }
        if slot.ready_epoch != self.ready_epoch {
            slot.ready_epoch = self.ready_epoch;
            self.ready.push(key);
        }
    }

    fn schedule_resume(&mut self, slot: &mut Slot, key: Key) {
        if !slot.in_resume {
            slot.in_resume = true;
            self.resume.push(key);
        }
    }

    /// Notes an I/O on a peer, and lists it for release if a buffer emptied.
    fn touch(&mut self, slot: &mut Slot, key: Key, buffers_emptied: bool) {
        slot.touched = self.idle_epoch;
        if buffers_emptied && !slot.in_idle {
            slot.in_idle = true;
            self.idle.push(key);
            if self.next_sweep.is_none() {
                self.next_sweep = Some(Instant::now() + IDLE_RELEASE);
            }
        }
    }

    fn timer(&mut self, at: Instant, key: Key, kind: TimerKind) {
        self.timers.push(Reverse((at, key, kind)));
    }
}

fn peer_of(slot: &mut Slot) -> Option<&mut PeerSlot> {
    match &mut slot.kind {
        Kind::Peer(p) => Some(p),
        Kind::Server(_) => None,
    }
}

impl Inner {
    // -- slots --------------------------------------------------------------

    fn insert(&mut self, kind: Kind) -> Result<Key, SocketError> {
        let index = self.slots.vacant_key();
        if index > INDEX_MASK {
            log::error!("lunanet reactor is full ({index} entries)");
            return Err(SocketError::InitFailed);
        }
        if self.gens.len() <= index {
            self.gens.resize(index + 1, 0);
        }
        let generation = self.gens[index].wrapping_add(1) & GEN_MASK;
        self.gens[index] = generation;
        self.slots.insert(Slot {
            generation,
            changed_pass: 0,
            ready_epoch: 0,
            in_resume: false,
            in_idle: false,
            touched: self.cx.idle_epoch,
            kind,
        });
        Ok(Key { index, generation })
    }

    pub(crate) fn slot_mut(&mut self, key: Key) -> Option<&mut Slot> {
        slot_in(&mut self.slots, key)
    }

    #[inline]
    pub(crate) fn slot(&self, key: Key) -> Option<&Slot> {
        self.slots
            .get(key.index)
            .filter(|s| s.generation == key.generation)
    }

    #[inline]
    pub(crate) fn peer(&self, key: Key) -> Option<&PeerSlot> {
        match &self.slot(key)?.kind {
            Kind::Peer(p) => Some(p),
            Kind::Server(_) => None,
        }
    }

    pub(crate) fn server(&self, key: Key) -> Option<&ServerSlot> {
        match &self.slot(key)?.kind {
            Kind::Server(s) => Some(s),
            Kind::Peer(_) => None,
        }
    }

    /// Removes an entry, releasing its socket (the OS drops it from epoll).
    fn remove(&mut self, key: Key) {
        if self.slot(key).is_none() {
            return;
        }
        let slot = self.slots.remove(key.index);
        if let Kind::Peer(p) = slot.kind {
            if p.sock.is_some() {
                self.connection_closed(p.server);
            }
            if let Phase::Resolving { id, .. } = p.phase
                && let Some(r) = &self.resolver
            {
                r.erase(id);
            }
        }
    }

    /// A connection accepted by `server` closed its socket.
    fn connection_closed(&mut self, server: Option<Key>) {
        if let Some(key) = server
            && let Some(Slot {
                kind: Kind::Server(s),
                ..
            }) = self.slot_mut(key)
        {
            s.live = s.live.saturating_sub(1);
        }
    }

    // -- the pass ----------------------------------------------------------

    /// One reactor pass: flush coalesced output, wait for events (bounded by
    /// `timeout`, timers and pending work), process them, then the work no
    /// event announces, then timers.
    pub(crate) fn pass(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.cx.pass += 1;
        self.cx.changed = 0;
        let mut timeout = timeout;
        if self.cx.config.coalesce_writes && !self.cx.resume.is_empty() {
            // The wait is measured from the call, not from after the flush, so
            // a tick loop's sleep still ends on schedule.
            let started = Instant::now();
            self.flush_dirty();
            timeout = timeout.map(|t| t.saturating_sub(started.elapsed()));
        }
        let timeout = self.effective_timeout(timeout);
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let polled = match self.poll.poll(&mut events, timeout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(())
            }
            Err(e) => Err(e),
        };
        for event in events.iter() {
            if event.token() == WAKER_TOKEN {
                continue;
            }
            let key = Key::from_token(event.token());
            self.service(key, Readiness::from_event(event));
        }
        self.events = events;
        polled?;
        self.run_resumes();
        if self.resolve_check || self.resolver.as_ref().is_some_and(|r| r.has_completed()) {
            self.run_resolved();
        }
        self.run_timers();
        Ok(self.cx.changed)
    }

    fn effective_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.cx.resume.is_empty() || self.resolve_check {
            return Some(Duration::ZERO);
        }
        let next = match (self.cx.timers.peek(), self.cx.next_sweep) {
            (Some(Reverse((t, _, _))), Some(s)) => Some((*t).min(s)),
            (Some(Reverse((t, _, _))), None) => Some(*t),
            (None, s) => s,
        };
        match next {
            None => timeout,
            Some(at) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
        }
    }

    fn run_resumes(&mut self) {
        if self.cx.resume.is_empty() {
            return;
        }
        // Swap with a spare vector: handlers may schedule new resumes, which
        // then run in the next pass (a budget-limited peer must not loop here).
        let mut list = std::mem::take(&mut self.cx.resume_spare);
        std::mem::swap(&mut list, &mut self.cx.resume);
        for key in list.drain(..) {
            let Some(slot) = self.slot_mut(key) else {
                continue;
            };
            slot.in_resume = false;
            self.service(key, Readiness::default());
        }
        self.cx.resume_spare = list;
    }

    fn run_timers(&mut self) {
        if self.cx.timers.is_empty() && self.cx.next_sweep.is_none() {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse((at, key, kind))) = self.cx.timers.peek().copied() {
            if at > now {
                break;
            }
            self.cx.timers.pop();
            match kind {
                TimerKind::Connect | TimerKind::Linger => self.peer_deadline(key, at),
                TimerKind::Accept => {
                    if let Some(Slot {
                        kind: Kind::Server(s),
                        ..
                    }) = self.slot_mut(key)
                    {
                        s.paused = false;
                        self.service_server(key);
                    }
                }
            }
        }
        if self.cx.next_sweep.is_some_and(|t| t <= now) {
            self.sweep_idle(now);
        }
    }

    /// Releases the buffers of peers whose queues are empty and that saw no I/O
    /// for a whole sweep period; cost O(peers that emptied a buffer recently).
    fn sweep_idle(&mut self, now: Instant) {
        let epoch = self.cx.idle_epoch;
        let mut list = std::mem::take(&mut self.cx.idle);
        list.retain(|&key| {
            let Some(slot) = slot_in(&mut self.slots, key) else {
                return false;
            };
            if slot.touched == epoch {
                return true; // active in this period: look again next time
            }
            slot.in_idle = false;
            if let Kind::Peer(p) = &mut slot.kind {
                p.conn.rx.release();
                p.conn.tx.release();
            }
            false
        });
        self.cx.idle = list;
        self.cx.idle_epoch = epoch.wrapping_add(1);
        self.cx.next_sweep = (!self.cx.idle.is_empty()).then(|| now + IDLE_RELEASE);
    }

    // -- peers --------------------------------------------------------------

    /// Serves one entry for an event or a resume. Stale keys — the entry was
    /// removed, and maybe replaced, earlier in this batch — match nothing
    /// (generation check). Steady traffic — data for a
    /// connected peer with nothing queued or pending — takes a short path: one
    /// read, and the peer marked changed. Everything else (connect
    /// completion, flushing, stalls, the FIN rule, closing, errors, servers)
    /// goes through `service_slow`, kept out of line so the short path stays
    /// short.
    fn service(&mut self, key: Key, r: Readiness) {
        let Inner { slots, cx, .. } = self;
        let Some(slot) = slot_in(slots, key) else {
            return; // stale: the entry is gone
        };
        let Kind::Peer(p) = &mut slot.kind else {
            return self.service_server(key);
        };
        if !fast_path(p, r) {
            return self.service_slow(key, r, None);
        }
        if r.writable {
            p.conn.write_blocked = false;
        }
        refresh_budget(p, cx);
        let Some(sock) = p.sock.as_mut() else {
            return; // Open always has a socket
        };
        let avail_before = p.conn.rx.len();
        let (n, end) = p.conn.fill_from(sock, &mut p.budget_left, false);
        if let ReadEnd::Drained = end {
            slot.touched = cx.idle_epoch;
            if n > 0 {
                cx.mark(slot, key);
            }
            return;
        }
        self.service_slow(key, r, Some((avail_before, end)));
    }

    /// The general case of `service`. With `read`, the short path
    /// already read (from `avail_before` bytes) and ended with something other
    /// than "drained"; only the rest of the work is left.
    #[inline(never)]
    fn service_slow(&mut self, key: Key, r: Readiness, read: Option<(usize, ReadEnd)>) {
        let Inner {
            slots, cx, poll, ..
        } = self;
        let Some(slot) = slot_in(slots, key) else {
            return;
        };
        let Kind::Peer(p) = &mut slot.kind else {
            return;
        };
        let status_before = p.conn.status;
        let blocked_before = p.conn.write_blocked;
        let (avail_before, served) = match read {
            Some((avail_before, end)) => {
                let mut out = Served {
                    moved: true,
                    ..Served::default()
                };
                let failed = after_read(p, end, false, false, &mut out);
                (avail_before, serve_tail(p, failed, cx, key, out))
            }
            None => (p.conn.rx.len(), serve_peer(p, r, cx, poll.registry(), key)),
        };
        let server = if served.closed { close_socket(p) } else { None };
        let attached = p.attached;
        // Changed: status, more bytes to read, or output that had to wait for
        // the kernel is now all out (room to put more). A coalesced flush that
        // never waited is not news.
        let changed = p.conn.status != status_before
            || p.conn.rx.len() > avail_before
            || (blocked_before && !p.conn.write_blocked && p.conn.tx.is_empty());
        let emptied = served.moved
            && (p.conn.rx.is_empty() || p.conn.tx.is_empty())
            && p.conn.rx.capacity() + p.conn.tx.capacity() > 0;
        if served.moved {
            cx.touch(slot, key, emptied);
        }
        if served.resume {
            cx.schedule_resume(slot, key);
        }
        if changed && attached {
            cx.mark(slot, key);
        }
        if served.closed {
            self.after_close(key, server);
        }
    }

    /// After a peer's socket closed: update its server's count; forget the entry
    /// if no handle owns it.
    fn after_close(&mut self, key: Key, server: Option<Key>) {
        self.connection_closed(server);
        if let Some(p) = self.peer(key)
            && !p.attached
        {
            self.slots.remove(key.index);
        }
    }

    /// A connect or linger deadline fell due (`at` tells stale timers apart).
    fn peer_deadline(&mut self, key: Key, at: Instant) {
        let Inner {
            slots,
            cx,
            resolver,
            ..
        } = self;
        let Some(slot) = slot_in(slots, key) else {
            return;
        };
        let Kind::Peer(p) = &mut slot.kind else {
            return;
        };
        match &p.phase {
            Phase::Resolving { deadline, id, .. } if *deadline == at => {
                if let Some(r) = resolver {
                    r.erase(*id);
                }
                log::debug!("connect timed out while resolving");
                p.conn
                    .fail(SocketError::ConnectFailed, Some(io::ErrorKind::TimedOut));
            }
            Phase::Connecting { deadline, .. } if *deadline == at => {
                log::debug!("connect to {:?} timed out", p.remote);
                p.conn
                    .fail(SocketError::ConnectFailed, Some(io::ErrorKind::TimedOut));
            }
            Phase::Closing { deadline, .. } if *deadline == at => {
                if !p.conn.tx.is_empty() {
                    log::warn!(
                        "linger timeout: discarding {} unsent bytes to {:?}",
                        p.conn.tx.len(),
                        p.remote
                    );
                }
            }
            _ => return, // stale timer: the phase moved on
        }
        let server = close_socket(p);
        if p.attached {
            cx.mark(slot, key);
        }
        self.after_close(key, server);
    }

    fn mark_key(&mut self, key: Key) {
        let Inner { slots, cx, .. } = self;
        if let Some(slot) = slot_in(slots, key) {
            cx.mark(slot, key);
        }
    }

    /// Serves peers whose hostname lookup finished: connect to the addresses.
    fn run_resolved(&mut self) {
        self.resolve_check = false;
        let mut i = 0;
        while i < self.resolving.len() {
            let key = self.resolving[i];
            let Some(resolver) = &self.resolver else {
                return;
            };
            let (id, port) = match self.peer(key).map(|p| &p.phase) {
                Some(Phase::Resolving { id, port, .. }) => (*id, *port),
                _ => {
                    self.resolving.swap_remove(i);
                    continue;
                }
            };
            match resolver.status(id) {
                ResolverStatus::Waiting => i += 1,
                ResolverStatus::Done => {
                    let addrs = resolver.take_addresses(id).unwrap_or_default();
                    self.resolving.swap_remove(i);
                    let targets = addrs
                        .iter()
                        .filter_map(|a| a.to_ip_addr())
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect();
                    self.begin_connect(key, targets);
                }
                ResolverStatus::Error | ResolverStatus::None => {
                    resolver.erase(id);
                    self.resolving.swap_remove(i);
                    self.fail_peer(key, SocketError::InvalidIpAddress, io::ErrorKind::NotFound);
                }
            }
        }
    }

    fn fail_peer(&mut self, key: Key, error: SocketError, kind: io::ErrorKind) {
        let Some(p) = self.slot_mut(key).and_then(peer_of) else {
            return;
        };
        log::debug!("peer {:?}: {error} ({kind:?})", p.remote);
        p.conn.fail(error, Some(kind));
        let server = close_socket(p);
        if p.attached {
            self.mark_key(key);
        }
        self.after_close(key, server);
    }

    /// Starts connecting a `Resolving` or `Connecting` peer to the first of
    /// `targets`, keeping the others as fallbacks.
    fn begin_connect(&mut self, key: Key, mut targets: Vec<SocketAddr>) {
        let Inner {
            slots, cx, poll, ..
        } = self;
        let Some(slot) = slot_in(slots, key) else {
            return;
        };
        let Kind::Peer(p) = &mut slot.kind else {
            return;
        };
        let deadline = match &p.phase {
            Phase::Resolving { deadline, .. } | Phase::Connecting { deadline, .. } => *deadline,
            _ => return,
        };
        targets.reverse(); // pop() takes the first address
        p.phase = Phase::Connecting {
            deadline,
            fallbacks: targets,
            early_error: None,
        };
        if !try_next_address(p, poll.registry(), key) {
            let kind = p.conn.error_kind.unwrap_or(io::ErrorKind::NotFound);
            p.conn.fail(SocketError::ConnectFailed, Some(kind));
            p.phase = Phase::Closed;
            if p.attached {
                cx.mark(slot, key);
            }
        } else if has_early_error(p) {
            cx.schedule_resume(slot, key);
        }
    }

    /// Writes the queued output of every peer with coalesced output now.
    pub(crate) fn flush_dirty(&mut self) {
        // Peers with coalesced output are in the resume list; serving them
        // writes their queues (and does any other pending work for them).
        self.run_resumes();
    }

    // -- servers ------------------------------------------------------------

    /// Accepts until the kernel queue is empty, the pending queue is full, or
    /// the process is out of descriptors (then retries after a back-off).
    fn service_server(&mut self, key: Key) {
        let Inner { slots, cx, .. } = self;
        let Some(slot) = slot_in(slots, key) else {
            return;
        };
        let Kind::Server(s) = &mut slot.kind else {
            return;
        };
        if s.paused {
            return;
        }
        let pending_limit = cx.config.listen_backlog as usize;
        let before = s.pending.len();
        loop {
            if s.pending.len() >= pending_limit {
                // The application is not taking connections: leave the rest in
                // the kernel's queue (its backlog applies); `take_connection`
                // schedules a resume.
                break;
            }
            match s.listener.accept() {
                Ok((stream, addr)) => {
                    s.backoff = Duration::ZERO;
                    if s.max_connections.is_some_and(|max| s.live >= max) {
                        // Polite refusal: accept and close at once, counted.
                        s.refused += 1;
                        log::debug!("refusing {addr}: max_connections reached");
                        drop(stream);
                        continue;
                    }
                    if let Err(e) = stream.set_nodelay(cx.config.no_delay) {
                        log::debug!("set_nodelay on accepted {addr}: {e}");
                    }
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
                    if net::is_resource_exhaustion(&e) {
                        log::warn!("accept on {}: {e}; retrying in {:?}", s.local, s.backoff);
                    } else {
                        log::error!("accept on {}: {e}; retrying in {:?}", s.local, s.backoff);
                    }
                    s.paused = true;
                    cx.timer(Instant::now() + s.backoff, key, TimerKind::Accept);
                    break;
                }
            }
        }
        if s.pending.len() > before {
            cx.mark(slot, key);
        }
    }

    /// Registers a socket for both directions, once for its lifetime.
    fn register(registry: &Registry, sock: &mut TcpStream, key: Key) -> io::Result<()> {
        registry.register(sock, key.token(), Interest::READABLE | Interest::WRITABLE)
    }
}

/// The live slot of `key`, if the entry still exists (generation check).
fn slot_in(slots: &mut Slab<Slot>, key: Key) -> Option<&mut Slot> {
    slots
        .get_mut(key.index)
        .filter(|s| s.generation == key.generation)
}

/// What serving a peer did, for the bookkeeping its caller does on the slot.
#[derive(Debug, Default)]
struct Served {
    /// The socket must be closed (error, end of the closing sequence).
    closed: bool,
    /// Work remains that no readiness event will announce.
    resume: bool,
    /// Bytes were moved (for the idle-release sweep).
    moved: bool,
}

/// Whether an event can take the fast path: a connected peer with nothing
/// queued, nothing stalled and nothing pending, told only that data arrived.
/// This is the whole of steady request/response traffic.
#[inline]
fn fast_path(p: &PeerSlot, r: Readiness) -> bool {
    r.readable
        && !r.closing
        && matches!(p.phase, Phase::Open)
        && p.conn.tx.is_empty()
        && p.conn.stall == Stall::No
        && !p.conn.hup
        && p.conn.write_error.is_none()
        && !p.conn.fin_received
}

/// Starts the peer's read budget afresh in a new pass (a peer served twice in
/// one pass, by an event and a resume, shares one budget).
#[inline]
fn refresh_budget(p: &mut PeerSlot, cx: &Cx) {
    if p.budget_pass != cx.pass {
        p.budget_pass = cx.pass;
        p.budget_left = cx.config.read_budget;
    }
}

/// The per-peer part of a pass, on the peer alone (see `Inner::service`).
fn serve_peer(
    p: &mut PeerSlot,
    r: Readiness,
    cx: &mut Cx,
    registry: &Registry,
    key: Key,
) -> Served {
    let mut out = Served::default();
    if let Phase::Connecting { .. } = p.phase {
        match connect_progress(p, registry, key, cx) {
            ConnectProgress::Pending => {
                out.resume = has_early_error(p);
                return out;
            }
            ConnectProgress::Connected => {}
            ConnectProgress::Failed => {
                out.closed = true;
                return out;
            }
        }
    }
    if !matches!(p.phase, Phase::Open | Phase::Closing { .. }) {
        return out;
    }
    let closing = matches!(p.phase, Phase::Closing { .. });
    let Some(sock) = p.sock.as_mut() else {
        return out;
    };
    let mut failed: Option<io::Error> = None;

    // Output first: a writable edge clears the block; queued bytes go out.
    if r.writable {
        p.conn.write_blocked = false;
    }
    if !p.conn.write_blocked && !p.conn.tx.is_empty() {
        out.moved = true;
        if let FlushEnd::Failed(e) = p.conn.flush_to(sock) {
            failed = Some(e);
        }
    }

    // A direct write already met the error: it is the cause (a reset is
    // reported once; a read now would only see a clean-looking EOF).
    if let Some(kind) = p.conn.write_error.take()
        && failed.is_none()
    {
        failed = Some(io::Error::from(kind));
    }

    // Input: on a readiness event, on a close/error event, or to resume a
    // stalled read (full buffer since consumed, or budget spent last pass).
    let resume_read = match p.conn.stall {
        Stall::No => false,
        Stall::Full => p.conn.rx.room() > 0,
        Stall::Budget => true,
    };
    // A close/error event (or a failed direct write) means: read until a
    // definitive answer (0 or an error). If the budget or a full buffer cuts
    // that read short, the intent must survive until the resumed read: no
    // new edge will come for a FIN that was already reported.
    let until_block = r.closing || p.conn.hup;
    if r.closing && !p.conn.fin_received {
        p.conn.hup = true; // kept even if no read happens now (full buffer)
    }
    if failed.is_none() && !p.conn.fin_received && (r.readable || until_block || resume_read) {
        out.moved = true;
        refresh_budget(p, cx);
        if let Some(sock) = p.sock.as_mut() {
            let (_, end) = p.conn.fill_from(sock, &mut p.budget_left, until_block);
            failed = after_read(p, end, until_block, closing, &mut out);
        }
    }
    serve_tail(p, failed, cx, key, out)
}

/// Applies how a read ended; returns the error that broke the socket, if any.
fn after_read(
    p: &mut PeerSlot,
    end: ReadEnd,
    until_block: bool,
    closing: bool,
    out: &mut Served,
) -> Option<io::Error> {
    if closing {
        // Nobody will read this data; reading only looks for the FIN.
        p.conn.rx.clear();
    }
    p.conn.hup = until_block && matches!(end, ReadEnd::Stalled);
    match end {
        ReadEnd::Failed(e) => return Some(e),
        ReadEnd::Stalled => out.resume = p.conn.stall == Stall::Budget || closing,
        ReadEnd::Drained | ReadEnd::Eof => {}
    }
    None
}

/// The end of serving a peer: failure, the FIN rule, the closing sequence.
fn serve_tail(
    p: &mut PeerSlot,
    failed: Option<io::Error>,
    cx: &mut Cx,
    key: Key,
    mut out: Served,
) -> Served {
    if let Some(e) = failed {
        if p.conn.status == Status::Connected {
            log::debug!("connection to {:?} failed: {e}", p.remote);
            p.conn.fail_io(&e);
        }
        out.closed = true;
        return out;
    }

    // The FIN rule: Connected → None once the remote closed and every received
    // byte was taken; what was queued before is still flushed, then FIN.
    if p.conn.settle() {
        enter_closing(p, cx, key);
    }
    if let Phase::Closing { shut, .. } = &mut p.phase {
        if p.conn.tx.is_empty() && !*shut {
            *shut = true;
            if let Some(sock) = &p.sock
                && sock.shutdown(Shutdown::Write).is_err()
            {
                // Already reset by the remote: nothing more to wait for.
                p.conn.fin_received = true;
            }
        }
        if *shut && p.conn.fin_received {
            out.closed = true;
        }
    }
    out
}

/// Starts the graceful close: flush, FIN, wait for the remote's FIN, all
/// bounded by the linger timeout.
fn enter_closing(p: &mut PeerSlot, cx: &mut Cx, key: Key) {
    let deadline = Instant::now() + cx.config.linger_timeout;
    p.phase = Phase::Closing {
        deadline,
        shut: false,
    };
    cx.timer(deadline, key, TimerKind::Linger);
}

fn has_early_error(p: &PeerSlot) -> bool {
    matches!(
        p.phase,
        Phase::Connecting {
            early_error: Some(_),
            ..
        }
    )
}

/// Drops a peer's socket (closing it), moving to `Closed`. Returns the server
/// whose connection count must drop, if the socket was accepted and open.
fn close_socket(p: &mut PeerSlot) -> Option<Key> {
    p.phase = Phase::Closed;
    p.conn.write_blocked = false;
    p.sock.take().and(p.server)
}

enum ConnectProgress {
    Pending,
    Connected,
    Failed,
}

/// Checks a connecting socket as mio documents for `TcpStream::connect`: on an
/// event, `take_error()` reports a failure; otherwise `peer_addr()` succeeds
/// once connected and fails with `NotConnected` while still in progress (a
/// spurious wake-up).
fn connect_progress(
    p: &mut PeerSlot,
    registry: &Registry,
    key: Key,
    cx: &mut Cx,
) -> ConnectProgress {
    let Phase::Connecting { early_error, .. } = &mut p.phase else {
        return ConnectProgress::Pending;
    };
    let outcome = match (early_error.take(), p.sock.as_ref()) {
        (Some(kind), _) => Err(io::Error::from(kind)),
        (None, None) => Err(io::ErrorKind::NotConnected.into()),
        (None, Some(sock)) => match sock.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match sock.peer_addr() {
                Ok(addr) => Ok(Some(addr)),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
                Err(e) => Err(e),
            },
        },
    };
    match outcome {
        Ok(None) => ConnectProgress::Pending,
        Ok(Some(addr)) => {
            p.remote = Some(addr);
            p.local = p.sock.as_ref().and_then(|s| s.local_addr().ok());
            if p.attached {
                p.conn.status = Status::Connected;
                p.phase = Phase::Open;
            } else {
                // Disconnected while connecting with output queued: deliver
                // it, then close.
                enter_closing(p, cx, key);
            }
            ConnectProgress::Connected
        }
        Err(e) => {
            log::debug!("connect to {:?} failed: {e}", p.remote);
            p.conn.error_kind = Some(e.kind());
            if try_next_address(p, registry, key) {
                return ConnectProgress::Pending;
            }
            p.conn.fail(SocketError::ConnectFailed, Some(e.kind()));
            ConnectProgress::Failed
        }
    }
}

/// Opens a socket to the next address of the host (bound like the first one
/// if the user called `bind()`). Returns false when none is left or none can
/// be opened.
fn try_next_address(p: &mut PeerSlot, registry: &Registry, key: Key) -> bool {
    let Phase::Connecting {
        fallbacks,
        early_error,
        ..
    } = &mut p.phase
    else {
        return false;
    };
    p.sock = None;
    while let Some(target) = fallbacks.pop() {
        let socket = match (p.bound.take(), p.bind) {
            (Some(socket), _) => Ok(socket),
            (None, Some(local)) => net::bound_socket(local, false).map_err(io::Error::from),
            (None, None) => net::tcp_socket(&target),
        };
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                log::debug!("socket for {target}: {e}");
                p.conn.error_kind = Some(e.kind());
                continue;
            }
        };
        let Ok(target) = net::target_for(&socket, target) else {
            log::debug!("skipping {target}: not reachable from the bound address family");
            continue;
        };
        if let Err(e) = socket.set_tcp_nodelay(p.no_delay) {
            log::debug!("set_nodelay: {e}");
        }
        p.remote = Some(target);
        let started = net::start_connect(&socket, target);
        let mut sock = net::into_mio_stream(socket);
        if let Err(e) = Inner::register(registry, &mut sock, key) {
            log::error!("register {target}: {e}");
            p.conn.error_kind = Some(e.kind());
            continue;
        }
        if let Err(e) = started {
            // Observed at the next pass, like a refusal, so that status
            // changes only inside reactor processing.
            *early_error = Some(e.kind());
        }
        p.sock = Some(sock);
        return true;
    }
    false
}

// ---------------------------------------------------------------------------
// Operations for the handles (StreamPeerTcp, TcpServer)
// ---------------------------------------------------------------------------

/// What `StreamPeerTcp::bind` prepared for the next connect.
pub(crate) struct Bound {
    pub(crate) socket: socket2::Socket,
    pub(crate) local: net::LocalAddr,
}

impl Inner {
    /// Creates a connecting peer entry (see `StreamPeerTcp::connect_to_host`).
    pub(crate) fn connect(
        &mut self,
        host: Host,
        port: u16,
        bound: Option<Bound>,
        no_delay: bool,
    ) -> Result<Key, SocketError> {
        let deadline = Instant::now() + self.cx.config.connect_timeout;
        let (bound, bind) = match bound {
            Some(b) => (Some(b.socket), Some(b.local)),
            None => (None, None),
        };
        let literal = host.literal();
        let lookup = match (&host, literal) {
            (_, Some(ip)) => {
                let ip = ip.to_ip_addr().ok_or(SocketError::InvalidIpAddress)?;
                Err(SocketAddr::new(ip, port))
            }
            (Host::Name(name), None) => {
                let ip_type = match bind {
                    Some(local) if !local.dual_stack && local.addr.is_ipv4() => IpType::Ipv4,
                    Some(local) if !local.dual_stack => IpType::Ipv6,
                    _ => IpType::Any,
                };
                let waker = Arc::clone(&self.waker);
                let resolver = self.resolver.get_or_insert_with(|| {
                    let r = Resolver::new();
                    r.set_notify(Arc::new(move || {
                        let _ = waker.wake();
                    }));
                    r
                });
                Ok(resolver.queue(name, ip_type)?)
            }
            (Host::Address(_), None) => return Err(SocketError::InvalidIpAddress),
        };
        let phase = match lookup {
            Ok(id) => Phase::Resolving { id, port, deadline },
            Err(_) => Phase::Connecting {
                deadline,
                fallbacks: Vec::new(),
                early_error: None,
            },
        };
        let mut peer = PeerSlot::new(&self.cx.config, Status::Connecting, phase, no_delay);
        peer.bound = bound;
        peer.bind = bind;
        let key = self.insert(Kind::Peer(peer))?;
        self.cx.timer(deadline, key, TimerKind::Connect);
        match lookup {
            Err(target) => self.begin_connect(key, vec![target]),
            Ok(_) => {
                self.resolving.push(key);
                // A cached name completes at once, without a notification.
                self.resolve_check = true;
            }
        }
        Ok(key)
    }

    /// The handle let go of its entry (`disconnect_from_host` or drop): unread
    /// input is dropped, queued output is flushed (bounded by the linger
    /// timeout), then FIN; the entry is forgotten once its socket is closed.
    pub(crate) fn detach(&mut self, key: Key) {
        let Inner {
            slots,
            cx,
            resolver,
            ..
        } = self;
        let Some(slot) = slot_in(slots, key) else {
            return;
        };
        let Kind::Peer(p) = &mut slot.kind else {
            return;
        };
        p.attached = false;
        p.conn.rx.clear();
        p.conn.rx.release();
        let mut serve_now = false;
        match &p.phase {
            Phase::Resolving { id, .. } => {
                if let Some(r) = resolver {
                    r.erase(*id);
                }
                p.phase = Phase::Closed;
            }
            // Still connecting with nothing to send: nothing to be graceful about.
            Phase::Connecting { .. } if p.conn.tx.is_empty() => {
                let server = close_socket(p);
                debug_assert!(server.is_none());
            }
            Phase::Connecting { .. } => {} // delivers its output once connected
            Phase::Open => {
                enter_closing(p, cx, key);
                serve_now = true;
            }
            Phase::Closing { .. } | Phase::Closed => {}
        }
        if serve_now {
            // Flush and send FIN now rather than at the next pass, so a
            // program that disconnects and exits still gets its data out
            // as far as the socket buffer allows.
            self.service(key, Readiness::default());
        }
        if matches!(self.peer(key).map(|p| &p.phase), Some(Phase::Closed)) {
            self.remove(key);
        }
    }

    /// `put_data` (`partial == false`) / `put_partial_data`.
    #[inline]
    pub(crate) fn put(
        &mut self,
        key: Key,
        data: &[u8],
        partial: bool,
    ) -> Result<usize, SocketError> {
        let Inner { slots, cx, .. } = self;
        let slot = slots
            .get_mut(key.index)
            .filter(|s| s.generation == key.generation)
            .ok_or(SocketError::SocketInvalid)?;
        let Kind::Peer(p) = &mut slot.kind else {
            return Err(SocketError::SocketInvalid);
        };
        let open = matches!(p.phase, Phase::Open);
        let coalesce = cx.config.coalesce_writes;
        let was_empty = p.conn.tx.is_empty();
        let direct = open && !coalesce && was_empty && !p.conn.write_blocked;
        let result = if direct {
            p.conn.put(p.sock.as_mut(), data, partial)
        } else {
            p.conn.put::<TcpStream>(None, data, partial)
        };
        if direct && p.conn.write_error.is_some() {
            // The socket is broken: the next pass moves the peer to `Error`
            // with this cause (status changes only in a pass).
            cx.schedule_resume(slot, key);
        } else if open && coalesce && was_empty && !p.conn.tx.is_empty() && !p.conn.write_blocked {
            // Coalescing: one write for everything queued until the next pass.
            cx.schedule_resume(slot, key);
        }
        result
    }

    /// `get_data` (`partial == false`, returns the length) / `get_partial_data`.
    #[inline]
    pub(crate) fn get(
        &mut self,
        key: Key,
        buf: &mut [u8],
        partial: bool,
    ) -> Result<usize, SocketError> {
        let Inner { slots, cx, .. } = self;
        let slot = slots
            .get_mut(key.index)
            .filter(|s| s.generation == key.generation)
            .ok_or(SocketError::SocketInvalid)?;
        let Kind::Peer(p) = &mut slot.kind else {
            return Err(SocketError::SocketInvalid);
        };
        let c = &mut p.conn;
        if partial && c.stall == Stall::No && !c.fin_received && !c.rx.is_empty() {
            // Steady traffic: take what is there; nothing to resume, and the
            // status cannot be affected.
            let n = c.rx.pop_into(buf);
            if c.rx.is_empty() {
                cx.touch(slot, key, true);
            }
            return Ok(n);
        }
        let result = if partial {
            p.conn.get_partial(buf)
        } else {
            p.conn.get(buf).map(|()| buf.len())
        };
        if matches!(result, Ok(n) if n > 0) {
            // Reading resumes without a readiness event (edge-triggered epoll
            // will not repeat one) when the buffer had filled up; the FIN
            // rule is applied at the next pass once the last byte is taken.
            let resume = p.conn.needs_resume();
            let emptied = p.conn.rx.is_empty();
            if resume {
                cx.schedule_resume(slot, key);
            }
            if emptied {
                cx.touch(slot, key, true);
            }
        }
        result
    }

    pub(crate) fn peer_local_addr(&self, key: Key) -> Option<SocketAddr> {
        let p = self.peer(key)?;
        p.local.or_else(|| p.sock.as_ref()?.local_addr().ok())
    }

    pub(crate) fn peek(&self, key: Key, buf: &mut [u8]) -> usize {
        self.peer(key).map_or(0, |p| p.conn.rx.peek(buf))
    }

    pub(crate) fn set_no_delay(&mut self, key: Key, on: bool) -> Result<(), SocketError> {
        let p = self
            .slot_mut(key)
            .and_then(peer_of)
            .ok_or(SocketError::SocketInvalid)?;
        p.no_delay = on;
        match &p.sock {
            Some(sock) => sock.set_nodelay(on).map_err(SocketError::from),
            None => Ok(()),
        }
    }

    /// Creates a listening server entry (see `TcpServer::listen`).
    pub(crate) fn listen(&mut self, local: net::LocalAddr) -> Result<Key, SocketError> {
        let socket = net::bound_socket(local, true)?;
        let backlog = i32::try_from(self.cx.config.listen_backlog).unwrap_or(i32::MAX);
        socket.listen(backlog).map_err(|e| {
            log::debug!("listen on {}: {e}", local.addr);
            match e.kind() {
                io::ErrorKind::AddrInUse => SocketError::BindFailed,
                _ => SocketError::from_init(&e),
            }
        })?;
        let mut listener = net::into_mio_listener(socket);
        let local_addr = listener
            .local_addr()
            .map_err(|e| SocketError::from_init(&e))?;
        let index = self.slots.vacant_key();
        let generation = self
            .gens
            .get(index)
            .map_or(1, |g| g.wrapping_add(1) & GEN_MASK);
        self.poll
            .registry()
            .register(
                &mut listener,
                Key { index, generation }.token(),
                Interest::READABLE,
            )
            .map_err(|e| SocketError::from_init(&e))?;
        let key = self.insert(Kind::Server(ServerSlot {
            listener,
            pending: VecDeque::new(),
            local: local_addr,
            backoff: Duration::ZERO,
            paused: false,
            max_connections: None,
            live: 0,
            refused: 0,
        }))?;
        debug_assert_eq!(key, Key { index, generation });
        Ok(key)
    }

    pub(crate) fn server_mut(&mut self, key: Key) -> Option<&mut ServerSlot> {
        match &mut self.slot_mut(key)?.kind {
            Kind::Server(s) => Some(s),
            Kind::Peer(_) => None,
        }
    }

    /// Takes an accepted connection as a `Connected` peer entry.
    pub(crate) fn take_connection(&mut self, server: Key) -> Option<Key> {
        loop {
            let limit = self.cx.config.listen_backlog as usize;
            let s = self.server_mut(server)?;
            let was_full = s.pending.len() >= limit;
            let (mut stream, remote) = s.pending.pop_front()?;
            if was_full {
                // It had stopped accepting because this queue was full.
                self.schedule_server_resume(server);
            }
            let local = stream.local_addr().ok();
            let no_delay = self.cx.config.no_delay;
            let index = self.slots.vacant_key();
            let generation = self
                .gens
                .get(index)
                .map_or(1, |g| g.wrapping_add(1) & GEN_MASK);
            if let Err(e) =
                Inner::register(self.poll.registry(), &mut stream, Key { index, generation })
            {
                log::error!("register accepted {remote}: {e}");
                self.connection_closed(Some(server));
                continue;
            }
            let mut peer = PeerSlot::new(&self.cx.config, Status::Connected, Phase::Open, no_delay);
            peer.sock = Some(stream);
            peer.local = local;
            peer.remote = Some(remote);
            peer.server = Some(server);
            let key = self.insert(Kind::Peer(peer));
            return key.ok();
        }
    }

    fn schedule_server_resume(&mut self, key: Key) {
        let Inner { slots, cx, .. } = self;
        if let Some(slot) = slot_in(slots, key) {
            cx.schedule_resume(slot, key);
        }
    }

    /// `TcpServer::stop`: closes the listener and every connection accepted
    /// but not taken.
    pub(crate) fn stop_server(&mut self, key: Key) {
        self.remove(key);
    }

    /// Whether any lingering peer still has output to deliver.
    fn lingering_output(&self) -> bool {
        self.slots
            .iter()
            .any(|(_, s)| matches!(&s.kind, Kind::Peer(p) if !p.attached && !p.conn.tx.is_empty()))
    }
}

impl Drop for Inner {
    /// The last handle is gone. Peers that were dropped with output still
    /// queued would lose it if their sockets closed now, so keep processing —
    /// bounded by the linger timeout — until it is delivered.
    fn drop(&mut self) {
        let deadline = Instant::now() + self.cx.config.linger_timeout;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StreamPeerTcp, TcpServer};
    use std::io::Write;

    #[test]
    fn tokens_round_trip_and_never_collide_with_the_waker() {
        for key in [
            Key {
                index: 0,
                generation: 1,
            },
            Key {
                index: INDEX_MASK - 1,
                generation: GEN_MASK,
            },
            Key {
                index: 12345,
                generation: 77,
            },
        ] {
            assert_eq!(Key::from_token(key.token()), key);
            assert_ne!(key.token(), WAKER_TOKEN);
        }
    }

    fn poll_until(reactor: &Reactor, mut pred: impl FnMut() -> bool) {
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
        let reactor = Reactor::new().unwrap();
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
        poll_until(&reactor, || reactor.inner.borrow().slot(stale).is_none());

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
            let sock = inner.peer(fresh).unwrap().sock.as_ref().unwrap();
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
        reactor.inner.borrow_mut().service(stale, all);
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
        );
        assert_eq!(second.available_bytes(), 3);
    }
}
