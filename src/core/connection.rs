//! [`Connection`]: one TCP connection's lifecycle as a socket-free state
//! machine, in the quinn-proto / smoltcp manner.
//!
//! The reactor feeds it readiness ([`Readiness`]), time ([`Clock`]) and the
//! application's `put_*` / `get_*` calls; it answers with [`Actions`] (notify
//! the application, come back without an event, the socket closed, arm a
//! deadline, forget the entry). It reads, writes and shuts down through the
//! [`Transport`] it owns, and opens sockets for connect attempts through a
//! [`Dial`]er the reactor lends it: the reactor implements both on mio sockets,
//! the unit tests at the bottom on scripted fakes with explicit timestamps, so
//! every rule below is tested without the OS.
//!
//! # States
//!
//! ```text
//!            detach / deadline                          detach (output queued)
//!  Resolving ─────────────────────────────► Closed ◄──────────────┐
//!     │ addresses                              ▲ ▲                │
//!     ▼                                        │ │ FIN seen after │
//!  Connecting ── refused, no address left, ────┘ │ our FIN, or    │
//!     │          connect deadline                │ linger deadline│
//!     │ connected                                │                │
//!     ▼            remote FIN and every          │                │
//!   Open ──────── byte taken, or detach ──────► Closing ─────────┘
//!     │                                  flush → shutdown(Write) → wait for FIN
//!     └── read/write error (reset) ──► Closed (status Error)
//! ```
//!
//! The user-visible [`Status`] follows from these: `Connecting` while
//! resolving or connecting, `Connected` while open (and, for a remote FIN, until
//! the last byte is taken), `None` after the FIN rule, `Error` after a failure.
//! "An open connection has a socket" is a fact of the type: the socket lives in
//! the [`Link`] variants that need one, and nowhere else.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::{BitOr, BitOrAssign};
use std::time::{Duration, Instant};

use super::buffer::ByteQueue;
use crate::SocketError;

/// A peer's connection status, with Luna/Godot's meaning and transitions.
///
/// Status changes only while the reactor processes events (any `poll`), never
/// inside `get_*` / `put_*`, so code that reads the last bytes and queues a
/// reply in one tick always gets the reply out.
///
/// ```text
///            connect_to_host          connected
///   None ───────────────────► Connecting ───────► Connected
///    ▲                           │                  │   │
///    │     refused / timeout /   │   reset / error  │   │ remote FIN and every
///    │     unresolvable          ▼                  │   │ received byte read
///    │                         Error ◄──────────────┘   │
///    └──────────────────────────────────────────────────┘
///            disconnect_from_host() from any status goes to None at once
/// ```
///
/// ```
/// use lunanet::{Reactor, Status, StreamPeerTcp};
/// let reactor = Reactor::new()?;
/// let peer = StreamPeerTcp::new(&reactor);
/// assert_eq!(peer.status(), Status::None);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    /// No connection: never connected, disconnected by the user, or closed by the
    /// remote after every received byte was read.
    #[default]
    None,
    /// Resolving the hostname or waiting for the TCP handshake. Data put now is
    /// queued and sent on connect.
    Connecting,
    /// Connected. Data can be sent and received. The remote may already have
    /// closed its side: unread bytes stay readable first.
    Connected,
    /// The connection failed or broke; `error()` says why. Bytes received before
    /// the failure can still be read.
    Error,
}

/// Smallest read asked of the kernel (and so the smallest read buffer a peer
/// that receives anything holds until it goes idle).
pub(crate) const READ_MIN: usize = 4096;

/// What the OS reported for a socket in this pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// Read-closed or error: read on until a definitive answer (0 or error).
    pub(crate) closing: bool,
}

/// The byte stream a connection owns once a connect attempt started: a
/// non-blocking socket for the reactor, a scripted fake for the tests.
pub(crate) trait Transport: Read + Write {
    /// Sends our FIN (`shutdown(Write)`).
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Whether a connect in progress completed: `Ok(Some(remote))` connected,
    /// `Ok(None)` still in progress (a spurious wake-up), `Err` failed.
    fn connect_outcome(&mut self) -> io::Result<Option<SocketAddr>>;
    /// The local address, if the OS knows it.
    fn local_addr(&self) -> Option<SocketAddr>;
}

/// Opens a transport towards one address for a connect attempt: the OS side
/// of "connect with address fallback", lent by the reactor for one call.
pub(crate) trait Dial<S> {
    /// A transport with a connect started towards `to`. `Ok((s, Some(kind)))`
    /// when `connect(2)` failed at once: the failure is observed at the next
    /// pass, like a refusal, so that status changes only inside a pass.
    fn dial(&mut self, to: SocketAddr) -> io::Result<(S, Option<io::ErrorKind>)>;
}

/// The time of one reactor pass, read from the OS clock at most once and only
/// when a rule needs it (steady traffic never does). Tests pin it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    now: Option<Instant>,
}

impl Clock {
    /// Reads the OS clock on first use.
    pub(crate) fn lazy() -> Clock {
        Clock { now: None }
    }

    /// A clock stopped at `now` (tests, and callers that already read it).
    pub(crate) fn at(now: Instant) -> Clock {
        Clock { now: Some(now) }
    }

    pub(crate) fn now(&mut self) -> Instant {
        *self.now.get_or_insert_with(Instant::now)
    }
}

/// What the reactor must do after feeding a [`Connection`] an input. A set of
/// flags, cheap to return on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub(crate) struct Actions(u8);

impl Actions {
    /// Nothing to do.
    pub(crate) const NONE: Actions = Actions(0);
    /// The application should look at this peer (status changed, bytes
    /// arrived, blocked output drained): put it in the ready set.
    pub(crate) const NOTIFY: Actions = Actions(1);
    /// Work remains that no readiness event will announce (a stalled read,
    /// coalesced output, a failed direct write): serve it again next pass.
    pub(crate) const RESUME: Actions = Actions(1 << 1);
    /// Bytes moved: the peer is not idle.
    pub(crate) const MOVED: Actions = Actions(1 << 2);
    /// A buffer emptied while owning memory: a candidate for release when idle.
    pub(crate) const EMPTIED: Actions = Actions(1 << 3);
    /// The socket was just closed (dropped): once per connection.
    pub(crate) const CLOSED: Actions = Actions(1 << 4);
    /// A new deadline ([`Connection::deadline`]) must be armed.
    pub(crate) const ARM: Actions = Actions(1 << 5);
    /// Closed and no handle owns it: forget the entry.
    pub(crate) const RELEASE: Actions = Actions(1 << 6);

    #[inline]
    pub(crate) fn has(self, flag: Actions) -> bool {
        self.0 & flag.0 != 0
    }

    /// Whether anything beyond `NOTIFY | MOVED` is asked (the slow path of
    /// applying actions).
    #[inline]
    pub(crate) fn needs_bookkeeping(self) -> bool {
        self.0 & !(Actions::NOTIFY.0 | Actions::MOVED.0) != 0
    }
}

impl BitOr for Actions {
    type Output = Actions;
    #[inline]
    fn bitor(self, rhs: Actions) -> Actions {
        Actions(self.0 | rhs.0)
    }
}

impl BitOrAssign for Actions {
    #[inline]
    fn bitor_assign(&mut self, rhs: Actions) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            "NOTIFY", "RESUME", "MOVED", "EMPTIED", "CLOSED", "ARM", "RELEASE",
        ];
        let mut set = f.debug_set();
        for (i, name) in names.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                set.entry(name);
            }
        }
        set.finish()
    }
}

/// The limits and durations a connection needs from the reactor's `Config`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) read_buffer: usize,
    pub(crate) write_buffer: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) linger_timeout: Duration,
}

/// Why a read loop stopped reading from the socket while data may remain in
/// the kernel. Edge-triggered readiness will not report that data again, so
/// the reactor must come back on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Not stalled: the last read loop ended because the socket was drained.
    No,
    /// The read buffer hit its limit; resume once the application consumes.
    Full,
    /// The per-pass read budget was spent; resume in the next pass.
    Budget,
}

/// How a read loop ended.
#[derive(Debug)]
enum ReadEnd {
    /// The socket has no more data now (short read or `WouldBlock`).
    Drained,
    /// Stopped with data possibly left in the kernel; see [`Stall`].
    Stalled,
    /// The remote closed its sending side (read returned 0).
    Eof,
    /// The socket failed (reset, ...).
    Failed(io::Error),
}

/// How a flush ended.
#[derive(Debug)]
enum FlushEnd {
    /// The queue is empty.
    Flushed,
    /// The socket took what it could; wait for a writable event.
    Blocked,
    /// The socket failed (reset, broken pipe, ...).
    Failed(io::Error),
}

/// Where the connection is in its lifecycle; the variants that need a socket
/// own it.
enum Link<S> {
    /// Waiting for the hostname's addresses.
    Resolving,
    /// A non-blocking connect in progress.
    Connecting {
        sock: S,
        /// Further addresses to try if this one fails (last first).
        fallbacks: Vec<SocketAddr>,
        /// A failure `connect(2)` reported at once, observed at the next pass.
        early_error: Option<io::ErrorKind>,
    },
    /// Connected: bytes flow both ways.
    Open { sock: S },
    /// Flushing output, then FIN (`shut`), then reading (and discarding) until
    /// the remote's FIN, bounded by the linger deadline.
    Closing { sock: S, shut: bool },
    /// No socket, for good.
    Closed,
}

impl<S> Link<S> {
    fn name(&self) -> &'static str {
        match self {
            Link::Resolving => "Resolving",
            Link::Connecting { .. } => "Connecting",
            Link::Open { .. } => "Open",
            Link::Closing { .. } => "Closing",
            Link::Closed => "Closed",
        }
    }
}

/// The two byte queues and the edge-triggered read/write rules, kept apart
/// from [`Link`] so a socket borrowed from the link and the queues can be used
/// at once.
#[derive(Debug)]
struct Io {
    /// Received bytes not yet taken by the application.
    rx: ByteQueue,
    /// Bytes accepted by `put_*` not yet taken by the kernel.
    tx: ByteQueue,
    /// The remote's FIN was read: no byte will ever be added to `rx`.
    fin_received: bool,
    /// A write came back short or `WouldBlock`: wait for a writable edge before
    /// writing again (writing now would only return `WouldBlock`).
    write_blocked: bool,
    stall: Stall,
    /// An event reported a close or an error that no read has confirmed yet:
    /// the next read goes on until `0`, `WouldBlock` or an error.
    hup: bool,
    /// A write made by `put` failed with this error. The kernel reports a
    /// reset once, so it is kept here until the next reactor pass fails the
    /// connection with it (a read then would see a clean-looking EOF).
    write_error: Option<io::ErrorKind>,
}

impl Io {
    /// Reads from `io` into `rx` until drained, full, budget spent, EOF or error.
    ///
    /// Edge-triggered rules (see `docs/architecture.md`):
    /// - a read that returns fewer bytes than asked means the socket is drained;
    ///   no extra read to see `WouldBlock`, unless `until_block` is set (the
    ///   event announced a close or an error, which only a read returning 0 or
    ///   an error reveals);
    /// - a full buffer or a spent budget stops the loop with data possibly left
    ///   in the kernel; `stall` records why so the reactor resumes on its own.
    ///
    /// Reads land directly in the queue's storage (no intermediate copy). Each
    /// read asks for as much as the storage already owns (at least
    /// [`READ_MIN`]), so a peer that receives large bursts keeps large reads
    /// while one that exchanges small messages keeps a small buffer.
    #[inline]
    fn fill_from<R: Read>(
        &mut self,
        io: &mut R,
        budget: &mut usize,
        until_block: bool,
    ) -> (usize, ReadEnd) {
        let mut total = 0;
        self.stall = Stall::No;
        loop {
            let room = self.rx.room();
            if room == 0 {
                self.stall = Stall::Full;
                return (total, ReadEnd::Stalled);
            }
            if *budget == 0 {
                self.stall = Stall::Budget;
                return (total, ReadEnd::Stalled);
            }
            let cap = room.min(*budget);
            let want = cap.min(self.rx.capacity().max(READ_MIN));
            if self.rx.spare_len() < want {
                self.rx.reserve_spare(want);
            }
            let spare = self.rx.spare_mut();
            let asked = cap.min(spare.len());
            match io.read(&mut spare[..asked]) {
                Ok(0) => {
                    self.fin_received = true;
                    return (total, ReadEnd::Eof);
                }
                Ok(n) => {
                    self.rx.commit(n);
                    total += n;
                    *budget -= n;
                    if n < asked && !until_block {
                        return (total, ReadEnd::Drained);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (total, ReadEnd::Drained);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (total, ReadEnd::Failed(e)),
            }
        }
    }

    /// Writes the queued output to `io` until it is empty or the socket is full.
    fn flush_to<W: Write>(&mut self, io: &mut W) -> FlushEnd {
        while !self.tx.is_empty() {
            match io.write(self.tx.as_slice()) {
                Ok(0) => return FlushEnd::Failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let short = n < self.tx.len();
                    self.tx.consume(n);
                    if short {
                        // A short write means the kernel's send buffer is full:
                        // the next write would return WouldBlock, and the
                        // writable edge will tell us when there is room.
                        self.write_blocked = true;
                        return FlushEnd::Blocked;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return FlushEnd::Blocked;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return FlushEnd::Failed(e),
            }
        }
        FlushEnd::Flushed
    }

    /// Writes `data` to `io` at once when given, queues the rest (or all of it
    /// without `io`). The caller checked the status and, for all-or-nothing
    /// puts, the room.
    #[inline]
    fn put<W: Write>(&mut self, io: Option<&mut W>, data: &[u8]) -> Result<usize, SocketError> {
        let mut written = 0;
        if let Some(io) = io {
            debug_assert!(self.tx.is_empty() && !self.write_blocked);
            loop {
                match io.write(data) {
                    Ok(0) => {
                        self.write_error = Some(io::ErrorKind::WriteZero);
                        return Err(SocketError::ConnectionClosed);
                    }
                    Ok(n) => {
                        written = n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // Nothing was accepted. The status changes at the next
                    // reactor pass, which fails the connection with this error.
                    Err(e) => {
                        self.write_error = Some(e.kind());
                        return Err(SocketError::from(e));
                    }
                }
            }
            if written < data.len() {
                self.write_blocked = true;
            }
        }
        if written == data.len() {
            return Ok(written); // the common case: the kernel took it all
        }
        let rest = &data[written..];
        let queued = rest.len().min(self.tx.room());
        self.tx.push(&rest[..queued]);
        Ok(written + queued)
    }

    /// Steady traffic: nothing queued, stalled or pending, so a readable
    /// event is served by one read and nothing else.
    #[inline]
    fn is_steady(&self) -> bool {
        self.tx.is_empty()
            && self.stall == Stall::No
            && !self.hup
            && self.write_error.is_none()
            && !self.fin_received
    }
}

/// One connection's lifecycle and bytes; see the module docs.
pub(crate) struct Connection<S> {
    link: Link<S>,
    status: Status,
    error: Option<SocketError>,
    /// The OS-level cause of `error`, when there was one.
    error_kind: Option<io::ErrorKind>,
    /// A handle (`StreamPeerTcp`) owns this connection; when false it only
    /// lingers to deliver its output and close.
    attached: bool,
    /// The connect or linger deadline of the current link, if any.
    deadline: Option<Instant>,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    linger: Duration,
    io: Io,
}

/// How a connect attempt check ended.
enum Progress {
    Pending,
    Connected,
    Failed,
}

impl<S: Transport> Connection<S> {
    fn with(link: Link<S>, status: Status, limits: Limits) -> Connection<S> {
        Connection {
            link,
            status,
            error: None,
            error_kind: None,
            attached: true,
            deadline: None,
            remote: None,
            local: None,
            linger: limits.linger_timeout,
            io: Io {
                rx: ByteQueue::new(limits.read_buffer),
                tx: ByteQueue::new(limits.write_buffer),
                fin_received: false,
                write_blocked: false,
                stall: Stall::No,
                hup: false,
                write_error: None,
            },
        }
    }

    /// A connection waiting for its host's addresses (`connect_to_host`), with
    /// its connect deadline armed from `clock`. Returns `ARM`.
    pub(crate) fn resolving(limits: Limits, clock: &mut Clock) -> (Connection<S>, Actions) {
        let mut c = Connection::with(Link::Resolving, Status::Connecting, limits);
        c.deadline = Some(clock.now() + limits.connect_timeout);
        (c, Actions::ARM)
    }

    /// A connection accepted by a server: open at once.
    pub(crate) fn accepted(sock: S, remote: SocketAddr, limits: Limits) -> Connection<S> {
        let local = sock.local_addr();
        let mut c = Connection::with(Link::Open { sock }, Status::Connected, limits);
        c.remote = Some(remote);
        c.local = local;
        c
    }

    // -- predicates (no side effects) -----------------------------------------

    /// The user-visible status.
    #[inline]
    pub(crate) fn status(&self) -> Status {
        self.status
    }

    /// Why the status is `Error`.
    pub(crate) fn error(&self) -> Option<SocketError> {
        self.error
    }

    /// The OS-level cause of [`error`](Self::error) (or of the last failed
    /// connect attempt).
    pub(crate) fn error_kind(&self) -> Option<io::ErrorKind> {
        self.error_kind
    }

    /// `put_*` may queue data: `Connecting` (sent on connect) or `Connected`.
    #[inline]
    pub(crate) fn can_send(&self) -> bool {
        matches!(self.status, Status::Connecting | Status::Connected)
    }

    /// More bytes may still arrive: not after the remote's FIN, not in `None`
    /// or `Error`.
    #[inline]
    pub(crate) fn can_recv(&self) -> bool {
        !(self.io.fin_received || matches!(self.status, Status::None | Status::Error))
    }

    /// The remote's FIN was read (bytes before it may still be buffered).
    pub(crate) fn fin_received(&self) -> bool {
        self.io.fin_received
    }

    /// Whether a handle owns this connection.
    #[cfg(test)]
    pub(crate) fn is_attached(&self) -> bool {
        self.attached
    }

    /// Closed for good: no socket, nothing more will happen.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.link, Link::Closed)
    }

    /// Whether the connection is waiting for its host's addresses.
    pub(crate) fn is_resolving(&self) -> bool {
        matches!(self.link, Link::Resolving)
    }

    /// Whether `put_*` writes to the socket at once now (open, nothing queued
    /// ahead, no writable edge awaited, not coalescing).
    #[inline]
    fn writes_directly(&self, coalesce: bool) -> bool {
        matches!(self.link, Link::Open { .. })
            && !coalesce
            && self.io.tx.is_empty()
            && !self.io.write_blocked
    }

    /// A dropped handle's output still waits for the kernel.
    pub(crate) fn has_lingering_output(&self) -> bool {
        !self.attached && !self.io.tx.is_empty()
    }

    /// The deadline to arm when an input answered `ARM`.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Bytes buffered for the application.
    #[inline]
    pub(crate) fn available(&self) -> usize {
        self.io.rx.len()
    }

    /// Bytes accepted by `put_*` not yet taken by the kernel.
    #[inline]
    pub(crate) fn pending_write(&self) -> usize {
        self.io.tx.len()
    }

    /// Heap bytes held by the two queues.
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.io.rx.capacity() + self.io.tx.capacity()
    }

    /// The remote address of the current (or last) attempt.
    pub(crate) fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The local address, once known.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local.or_else(|| self.socket()?.local_addr())
    }

    /// The socket, in the links that have one.
    pub(crate) fn socket(&self) -> Option<&S> {
        match &self.link {
            Link::Connecting { sock, .. } | Link::Open { sock } | Link::Closing { sock, .. } => {
                Some(sock)
            }
            Link::Resolving | Link::Closed => None,
        }
    }

    /// Copies buffered bytes without consuming them.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> usize {
        self.io.rx.peek(buf)
    }

    /// The error a read of more bytes than are buffered gets now: `Busy` while
    /// more can arrive, else the end-of-input error.
    pub(crate) fn short_read_error(&self) -> SocketError {
        if self.can_recv() {
            SocketError::Busy
        } else {
            self.input_end_error()
        }
    }

    /// The error for a read that can never be satisfied.
    fn input_end_error(&self) -> SocketError {
        match self.status {
            Status::Error => self.error.unwrap_or(SocketError::ConnectionClosed),
            _ => SocketError::FileEof,
        }
    }

    // -- the one transition point --------------------------------------------

    /// Every status change goes through here, so the allowed edges are
    /// written once (and checked in debug builds).
    fn transition(&mut self, to: Status) {
        let from = self.status;
        debug_assert!(
            matches!(
                (from, to),
                (Status::Connecting, Status::Connected)
                    | (Status::Connecting, Status::Error)
                    | (Status::Connected, Status::None)
                    | (Status::Connected, Status::Error)
            ),
            "illegal transition {from:?} -> {to:?}"
        );
        self.status = to;
    }

    /// Moves to `Status::Error` with `error` and its OS cause, and drops the
    /// output (it can never be delivered now).
    fn fail(&mut self, error: SocketError, kind: Option<io::ErrorKind>) {
        if matches!(self.status, Status::Connecting | Status::Connected) {
            self.transition(Status::Error);
        }
        self.error = Some(error);
        self.error_kind = kind;
        self.io.tx.clear();
        self.io.tx.release();
        self.io.write_blocked = false;
        self.io.stall = Stall::No;
    }

    /// The only way to `Closed`: drops the socket (the OS closes it and takes
    /// it out of epoll). Answers `CLOSED` once per connection.
    fn close(&mut self) -> Actions {
        if self.is_closed() {
            return Actions::NONE;
        }
        self.link = Link::Closed;
        self.deadline = None;
        self.io.write_blocked = false;
        Actions::CLOSED
    }

    /// Starts the graceful close of an open connection: flush, FIN, wait for
    /// the remote's FIN, all bounded by the linger deadline.
    fn enter_closing(&mut self, clock: &mut Clock) -> Actions {
        let sock = match std::mem::replace(&mut self.link, Link::Closed) {
            Link::Open { sock } | Link::Connecting { sock, .. } => sock,
            other => {
                self.link = other;
                return Actions::NONE;
            }
        };
        self.link = Link::Closing { sock, shut: false };
        self.deadline = Some(clock.now() + self.linger);
        Actions::ARM
    }

    // -- inputs from the reactor -----------------------------------------------

    /// The host resolved to `targets` (or was a literal): connect to the first,
    /// keeping the others as fallbacks.
    pub(crate) fn connect_to<D: Dial<S>>(
        &mut self,
        mut targets: Vec<SocketAddr>,
        dial: &mut D,
    ) -> Actions {
        if !self.is_resolving() {
            return Actions::NONE;
        }
        targets.reverse(); // pop() takes the first address
        if self.try_next_address(targets, dial) {
            return if self.has_early_error() {
                Actions::RESUME
            } else {
                Actions::NONE
            };
        }
        let kind = self.error_kind.unwrap_or(io::ErrorKind::NotFound);
        self.fail(SocketError::ConnectFailed, Some(kind));
        self.close() | self.summary_tail()
    }

    /// The hostname did not resolve.
    pub(crate) fn resolve_failed(&mut self) -> Actions {
        if !self.is_resolving() {
            return Actions::NONE;
        }
        log::debug!("hostname did not resolve");
        self.fail(SocketError::InvalidIpAddress, Some(io::ErrorKind::NotFound));
        self.close() | self.summary_tail()
    }

    /// NOTIFY if attached, RELEASE if closed and detached: what every
    /// input that can end the connection adds.
    fn summary_tail(&self) -> Actions {
        let mut acts = Actions::NONE;
        if self.attached {
            acts |= Actions::NOTIFY;
        }
        if self.is_closed() && !self.attached {
            acts |= Actions::RELEASE;
        }
        acts
    }

    /// A time-out check: the connect or linger deadline, if it is due at
    /// `clock`'s time. A timer armed for a deadline that moved since is a
    /// no-op, so the reactor never has to cancel timers.
    pub(crate) fn on_deadline(&mut self, clock: &mut Clock) -> Actions {
        let Some(deadline) = self.deadline else {
            return Actions::NONE;
        };
        if deadline > clock.now() {
            return Actions::NONE;
        }
        match &self.link {
            Link::Resolving => {
                log::debug!("connect timed out while resolving");
                self.fail(SocketError::ConnectFailed, Some(io::ErrorKind::TimedOut));
            }
            Link::Connecting { .. } => {
                log::debug!("connect to {:?} timed out", self.remote);
                self.fail(SocketError::ConnectFailed, Some(io::ErrorKind::TimedOut));
            }
            Link::Closing { .. } => {
                if !self.io.tx.is_empty() {
                    log::warn!(
                        "linger timeout: discarding {} unsent bytes to {:?}",
                        self.io.tx.len(),
                        self.remote
                    );
                }
            }
            Link::Open { .. } | Link::Closed => return Actions::NONE,
        }
        self.close() | self.summary_tail()
    }

    /// Readiness for this connection's socket (or a resume: no readiness).
    ///
    /// Steady traffic (open, nothing queued, stalled or pending, told only
    /// that data arrived) takes a short path: one read, and `NOTIFY` when
    /// bytes came. Everything else goes through the general case, kept out of
    /// line so the short path stays short.
    #[inline]
    pub(crate) fn on_ready<D: Dial<S>>(
        &mut self,
        r: Readiness,
        budget: &mut usize,
        clock: &mut Clock,
        dial: &mut D,
    ) -> Actions {
        if r.readable
            && !r.closing
            && self.io.is_steady()
            && let Link::Open { sock } = &mut self.link
        {
            if r.writable {
                self.io.write_blocked = false;
            }
            let before = self.io.rx.len();
            let (n, end) = self.io.fill_from(sock, budget, false);
            if let ReadEnd::Drained = end {
                return if n > 0 {
                    Actions::NOTIFY | Actions::MOVED
                } else {
                    Actions::MOVED
                };
            }
            return self.after_short_path(before, end, clock);
        }
        self.on_ready_slow(r, budget, clock, dial)
    }

    /// The short path read something other than "drained": finish the work.
    #[inline(never)]
    fn after_short_path(&mut self, before: usize, end: ReadEnd, clock: &mut Clock) -> Actions {
        let snap = Snapshot {
            status: self.status,
            available: before,
            blocked: self.io.write_blocked,
        };
        let mut acts = Actions::MOVED;
        let failed = self.after_read(end, false, false, &mut acts);
        acts |= self.serve_tail(failed, clock);
        self.summarize(acts, snap)
    }

    #[inline(never)]
    fn on_ready_slow<D: Dial<S>>(
        &mut self,
        r: Readiness,
        budget: &mut usize,
        clock: &mut Clock,
        dial: &mut D,
    ) -> Actions {
        let snap = Snapshot {
            status: self.status,
            available: self.io.rx.len(),
            blocked: self.io.write_blocked,
        };
        let acts = self.serve(r, budget, clock, dial);
        self.summarize(acts, snap)
    }

    /// What the application should hear of a general-case input.
    fn summarize(&self, mut acts: Actions, before: Snapshot) -> Actions {
        // Changed: status, more bytes to read, or output that had to wait for
        // the kernel is now all out (room to put more). A coalesced flush that
        // never waited is not news.
        let changed = self.status != before.status
            || self.io.rx.len() > before.available
            || (before.blocked && !self.io.write_blocked && self.io.tx.is_empty());
        if acts.has(Actions::MOVED)
            && (self.io.rx.is_empty() || self.io.tx.is_empty())
            && self.buffer_capacity() > 0
        {
            acts |= Actions::EMPTIED;
        }
        if changed && self.attached {
            acts |= Actions::NOTIFY;
        }
        if self.is_closed() && !self.attached {
            acts |= Actions::RELEASE;
        }
        acts
    }

    /// The general case of [`on_ready`](Self::on_ready).
    fn serve<D: Dial<S>>(
        &mut self,
        r: Readiness,
        budget: &mut usize,
        clock: &mut Clock,
        dial: &mut D,
    ) -> Actions {
        let mut acts = Actions::NONE;
        if let Link::Connecting { .. } = self.link {
            match self.connect_progress(clock, dial, &mut acts) {
                Progress::Pending => {
                    if self.has_early_error() {
                        acts |= Actions::RESUME;
                    }
                    return acts;
                }
                Progress::Connected => {}
                Progress::Failed => return acts | self.close(),
            }
        }
        let (sock, closing) = match &mut self.link {
            Link::Open { sock } => (sock, false),
            Link::Closing { sock, .. } => (sock, true),
            _ => return acts,
        };
        let mut failed: Option<io::Error> = None;

        // Output first: a writable edge clears the block; queued bytes go out.
        if r.writable {
            self.io.write_blocked = false;
        }
        if !self.io.write_blocked && !self.io.tx.is_empty() {
            acts |= Actions::MOVED;
            if let FlushEnd::Failed(e) = self.io.flush_to(sock) {
                failed = Some(e);
            }
        }

        // A direct write already met the error: it is the cause (a reset is
        // reported once; a read now would only see a clean-looking EOF).
        if let Some(kind) = self.io.write_error.take()
            && failed.is_none()
        {
            failed = Some(io::Error::from(kind));
        }

        // Input: on a readiness event, on a close/error event, or to resume a
        // stalled read (full buffer since consumed, or budget spent last pass).
        let resume_read = match self.io.stall {
            Stall::No => false,
            Stall::Full => self.io.rx.room() > 0,
            Stall::Budget => true,
        };
        // A close/error event (or a failed direct write) means: read until a
        // definitive answer (0 or an error). If the budget or a full buffer
        // cuts that read short, the intent must survive until the resumed
        // read: no new edge will come for a FIN that was already reported.
        let until_block = r.closing || self.io.hup;
        if r.closing && !self.io.fin_received {
            self.io.hup = true; // kept even if no read happens now (full buffer)
        }
        if failed.is_none() && !self.io.fin_received && (r.readable || until_block || resume_read) {
            acts |= Actions::MOVED;
            let (_, end) = self.io.fill_from(sock, budget, until_block);
            failed = self.after_read(end, until_block, closing, &mut acts);
        }
        acts | self.serve_tail(failed, clock)
    }

    /// Applies how a read ended; returns the error that broke the socket.
    fn after_read(
        &mut self,
        end: ReadEnd,
        until_block: bool,
        closing: bool,
        acts: &mut Actions,
    ) -> Option<io::Error> {
        if closing {
            // Nobody will read this data; reading only looks for the FIN.
            self.io.rx.clear();
        }
        self.io.hup = until_block && matches!(end, ReadEnd::Stalled);
        match end {
            ReadEnd::Failed(e) => return Some(e),
            ReadEnd::Stalled if self.io.stall == Stall::Budget || closing => {
                *acts |= Actions::RESUME;
            }
            ReadEnd::Stalled | ReadEnd::Drained | ReadEnd::Eof => {}
        }
        None
    }

    /// The end of serving: failure, the FIN rule, the closing sequence.
    fn serve_tail(&mut self, failed: Option<io::Error>, clock: &mut Clock) -> Actions {
        if let Some(e) = failed {
            if self.status == Status::Connected {
                log::debug!("connection to {:?} failed: {e}", self.remote);
                self.fail(SocketError::from(io::Error::from(e.kind())), Some(e.kind()));
            }
            return self.close();
        }
        let mut acts = Actions::NONE;
        // The FIN rule: Connected -> None once the remote closed and every
        // received byte was taken; what was queued before is still flushed,
        // then FIN.
        if self.status == Status::Connected && self.io.fin_received && self.io.rx.is_empty() {
            self.transition(Status::None);
            acts |= self.enter_closing(clock);
        }
        if let Link::Closing { sock, shut } = &mut self.link {
            if self.io.tx.is_empty() && !*shut {
                *shut = true;
                if sock.shutdown_write().is_err() {
                    // Already reset by the remote: nothing more to wait for.
                    self.io.fin_received = true;
                }
            }
            if *shut && self.io.fin_received {
                acts |= self.close();
            }
        }
        acts
    }

    fn has_early_error(&self) -> bool {
        matches!(
            self.link,
            Link::Connecting {
                early_error: Some(_),
                ..
            }
        )
    }

    /// Checks a connecting transport (see [`Transport::connect_outcome`]);
    /// on failure, moves on to the next address.
    fn connect_progress<D: Dial<S>>(
        &mut self,
        clock: &mut Clock,
        dial: &mut D,
        acts: &mut Actions,
    ) -> Progress {
        let Link::Connecting {
            sock, early_error, ..
        } = &mut self.link
        else {
            return Progress::Pending;
        };
        let outcome = match early_error.take() {
            Some(kind) => Err(io::Error::from(kind)),
            None => sock.connect_outcome(),
        };
        match outcome {
            Ok(None) => Progress::Pending,
            Ok(Some(addr)) => {
                self.remote = Some(addr);
                self.local = sock.local_addr();
                if self.attached {
                    let Link::Connecting { sock, .. } =
                        std::mem::replace(&mut self.link, Link::Closed)
                    else {
                        unreachable!("matched above");
                    };
                    self.link = Link::Open { sock };
                    self.deadline = None;
                    self.transition(Status::Connected);
                } else {
                    // Disconnected while connecting with output queued:
                    // deliver it, then close.
                    *acts |= self.enter_closing(clock);
                }
                Progress::Connected
            }
            Err(e) => {
                log::debug!("connect to {:?} failed: {e}", self.remote);
                self.error_kind = Some(e.kind());
                let fallbacks = match &mut self.link {
                    Link::Connecting { fallbacks, .. } => std::mem::take(fallbacks),
                    _ => Vec::new(),
                };
                if self.try_next_address(fallbacks, dial) {
                    return Progress::Pending;
                }
                self.fail(SocketError::ConnectFailed, Some(e.kind()));
                Progress::Failed
            }
        }
    }

    /// Dials the next address of `fallbacks` (last first) until one starts;
    /// the link becomes `Connecting` with it. Returns false (link unchanged
    /// unless it was connecting, then `Closed`) when none is left or none
    /// can be opened.
    fn try_next_address<D: Dial<S>>(
        &mut self,
        mut fallbacks: Vec<SocketAddr>,
        dial: &mut D,
    ) -> bool {
        while let Some(target) = fallbacks.pop() {
            match dial.dial(target) {
                Ok((sock, early_error)) => {
                    self.remote = Some(target);
                    self.link = Link::Connecting {
                        sock,
                        fallbacks,
                        early_error,
                    };
                    return true;
                }
                Err(e) => {
                    log::debug!("cannot connect to {target}: {e}");
                    self.error_kind = Some(e.kind());
                }
            }
        }
        if let Link::Connecting { .. } = self.link {
            // The failed attempt's socket goes; the caller fails and closes.
            self.link = Link::Resolving;
        }
        false
    }

    /// The handle let go (`disconnect_from_host` or drop): unread input is
    /// dropped, queued output is flushed (bounded by the linger timeout),
    /// then FIN; `RELEASE` once nothing is left to do.
    pub(crate) fn detach<D: Dial<S>>(
        &mut self,
        budget: &mut usize,
        clock: &mut Clock,
        dial: &mut D,
    ) -> Actions {
        self.attached = false;
        self.io.rx.clear();
        self.io.rx.release();
        let acts = match &self.link {
            Link::Resolving => self.close(),
            // Still connecting with nothing to send: nothing to be graceful about.
            Link::Connecting { .. } if self.io.tx.is_empty() => self.close(),
            Link::Connecting { .. } => Actions::NONE, // delivers its output once connected
            Link::Open { .. } => {
                // Flush and send FIN now rather than at the next pass, so a
                // program that disconnects and exits still gets its data out
                // as far as the socket buffer allows.
                let acts = self.enter_closing(clock);
                acts | self.on_ready(Readiness::default(), budget, clock, dial)
            }
            Link::Closing { .. } | Link::Closed => Actions::NONE,
        };
        if self.is_closed() {
            acts | Actions::RELEASE
        } else {
            acts
        }
    }

    /// `put_data` (`partial == false`: all or nothing) / `put_partial_data`.
    ///
    /// Writes at once when [`writes_directly`](Self::writes_directly), else
    /// queues. All-or-nothing succeeds iff `data` fits in the queue's free
    /// room, whatever the socket would take right now, so the outcome never
    /// depends on kernel buffer sizes. Answers `RESUME` when the next pass has
    /// work: coalesced output to write, or a failed direct write to turn into
    /// `Error` (status changes only in a pass).
    #[inline]
    pub(crate) fn put(
        &mut self,
        data: &[u8],
        partial: bool,
        coalesce: bool,
        acts: &mut Actions,
    ) -> Result<usize, SocketError> {
        if !self.can_send() {
            return Err(match self.status {
                Status::Error => self.error.unwrap_or(SocketError::ConnectionClosed),
                _ => SocketError::ConnectionClosed,
            });
        }
        if data.is_empty() {
            return Ok(0);
        }
        if !partial && data.len() > self.io.tx.room() {
            return Err(SocketError::OutOfBufferMemory);
        }
        if self.writes_directly(coalesce) {
            let Link::Open { sock } = &mut self.link else {
                unreachable!("writes_directly checked the link");
            };
            let result = self.io.put(Some(sock), data);
            if self.io.write_error.is_some() {
                *acts |= Actions::RESUME;
            }
            return result;
        }
        let was_empty = self.io.tx.is_empty();
        let result = self.io.put::<S>(None, data);
        if coalesce
            && was_empty
            && !self.io.tx.is_empty()
            && !self.io.write_blocked
            && matches!(self.link, Link::Open { .. })
        {
            // Coalescing: one write for everything queued until the next pass.
            *acts |= Actions::RESUME;
        }
        result
    }

    /// `get_data` (`partial == false`: fills `buf` or takes nothing; returns
    /// its length) / `get_partial_data` (takes what is buffered; `Ok(0)` means
    /// "nothing yet", and an error once nothing more can arrive, so a read loop
    /// always ends). Answers `RESUME` when consuming unblocks work no event
    /// will announce (a read stalled on a full buffer; the FIN rule once the
    /// last byte is taken), `MOVED | EMPTIED` when the buffer emptied.
    #[inline]
    pub(crate) fn get(
        &mut self,
        buf: &mut [u8],
        partial: bool,
        acts: &mut Actions,
    ) -> Result<usize, SocketError> {
        let io = &mut self.io;
        if partial && io.stall == Stall::No && !io.fin_received && !io.rx.is_empty() {
            // Steady traffic: take what is there; nothing to resume, and the
            // status cannot be affected.
            let n = io.rx.pop_into(buf);
            if io.rx.is_empty() {
                *acts |= Actions::MOVED | Actions::EMPTIED;
            }
            return Ok(n);
        }
        let result = if partial {
            let n = io.rx.pop_into(buf);
            if n == 0 && !buf.is_empty() && !self.can_recv() {
                Err(self.input_end_error())
            } else {
                Ok(n)
            }
        } else if buf.len() > io.rx.limit() {
            Err(SocketError::OutOfBufferMemory)
        } else if io.rx.len() >= buf.len() {
            io.rx.pop_into(buf);
            Ok(buf.len())
        } else if self.can_recv() {
            Err(SocketError::Busy)
        } else {
            Err(self.input_end_error())
        };
        if matches!(result, Ok(n) if n > 0) {
            if self.needs_resume() {
                *acts |= Actions::RESUME;
            }
            if self.io.rx.is_empty() {
                *acts |= Actions::MOVED | Actions::EMPTIED;
            }
        }
        result
    }

    /// After the application consumed bytes: does the reactor have work for
    /// this connection that no readiness event will announce?
    fn needs_resume(&self) -> bool {
        (self.io.stall == Stall::Full && self.io.rx.room() > 0)
            || (self.status == Status::Connected && self.io.fin_received && self.io.rx.is_empty())
    }

    /// Frees the memory of empty queues (idle sweep).
    pub(crate) fn release_buffers(&mut self) {
        self.io.rx.release();
        self.io.tx.release();
    }
}

/// What `summarize` compares against.
#[derive(Clone, Copy)]
struct Snapshot {
    status: Status,
    available: usize,
    blocked: bool,
}

impl<S> fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("link", &self.link.name())
            .field("status", &self.status)
            .field("error", &self.error)
            .field("attached", &self.attached)
            .field("available", &self.io.rx.len())
            .field("pending_write", &self.io.tx.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The state machine without sockets: a scripted transport, a scripted
    //! dialer, explicit timestamps.

    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// What a scripted transport does and saw.
    #[derive(Default)]
    struct Script {
        reads: VecDeque<io::Result<Vec<u8>>>,
        /// For writes: how many bytes each call accepts (Err = that error);
        /// nothing scripted means `WouldBlock`.
        writes: VecDeque<io::Result<usize>>,
        written: Vec<u8>,
        read_calls: usize,
        asked: Vec<usize>,
        /// Bytes written when `shutdown_write` was called.
        shut_at: Option<usize>,
        shutdown_error: Option<io::ErrorKind>,
        /// `connect_outcome` answers (nothing scripted: still in progress).
        outcomes: VecDeque<io::Result<Option<SocketAddr>>>,
    }

    #[derive(Clone, Default)]
    struct Fake(Rc<RefCell<Script>>);

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut s = self.0.borrow_mut();
            s.read_calls += 1;
            s.asked.push(buf.len());
            match s.reads.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(mut data)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    if n < data.len() {
                        s.reads.push_front(Ok(data.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut s = self.0.borrow_mut();
            match s.writes.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(n)) => {
                    let n = n.min(buf.len());
                    s.written.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Fake {
        fn shutdown_write(&mut self) -> io::Result<()> {
            let mut s = self.0.borrow_mut();
            s.shut_at = Some(s.written.len());
            match s.shutdown_error {
                Some(kind) => Err(kind.into()),
                None => Ok(()),
            }
        }
        fn connect_outcome(&mut self) -> io::Result<Option<SocketAddr>> {
            self.0.borrow_mut().outcomes.pop_front().unwrap_or(Ok(None))
        }
        fn local_addr(&self) -> Option<SocketAddr> {
            Some(addr(1))
        }
    }

    impl Fake {
        fn read(&self, data: &[u8]) {
            self.0.borrow_mut().reads.push_back(Ok(data.to_vec()));
        }
        fn read_err(&self, kind: io::ErrorKind) {
            self.0.borrow_mut().reads.push_back(Err(kind.into()));
        }
        fn eof(&self) {
            self.0.borrow_mut().reads.push_back(Ok(Vec::new()));
        }
        fn accept_writes(&self, n: usize) {
            self.0.borrow_mut().writes.push_back(Ok(n));
        }
        fn write_err(&self, kind: io::ErrorKind) {
            self.0.borrow_mut().writes.push_back(Err(kind.into()));
        }
        fn outcome(&self, o: io::Result<Option<SocketAddr>>) {
            self.0.borrow_mut().outcomes.push_back(o);
        }
        fn written(&self) -> Vec<u8> {
            self.0.borrow().written.clone()
        }
        fn shut_at(&self) -> Option<usize> {
            self.0.borrow().shut_at
        }
    }

    /// A dialer whose attempts are scripted per address.
    #[derive(Default)]
    struct Dialer {
        /// Per attempt, in order: open fails with this kind, or succeeds with
        /// this early error (`connect(2)` failing at once).
        plan: VecDeque<Result<Option<io::ErrorKind>, io::ErrorKind>>,
        dialed: Vec<SocketAddr>,
        opened: Vec<Fake>,
    }

    impl Dial<Fake> for Dialer {
        fn dial(&mut self, to: SocketAddr) -> io::Result<(Fake, Option<io::ErrorKind>)> {
            self.dialed.push(to);
            match self.plan.pop_front().unwrap_or(Ok(None)) {
                Err(kind) => Err(kind.into()),
                Ok(early) => {
                    let fake = Fake::default();
                    self.opened.push(fake.clone());
                    Ok((fake, early))
                }
            }
        }
    }

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 7000))
    }

    const LIMITS: Limits = Limits {
        read_buffer: 1024,
        write_buffer: 1024,
        connect_timeout: Duration::from_secs(30),
        linger_timeout: Duration::from_secs(5),
    };

    const BIG: usize = 1 << 20;
    const READ: Readiness = Readiness {
        readable: true,
        writable: false,
        closing: false,
    };
    const WRITE: Readiness = Readiness {
        readable: false,
        writable: true,
        closing: false,
    };
    const HUP: Readiness = Readiness {
        readable: true,
        writable: false,
        closing: true,
    };
    const RESUME: Readiness = Readiness {
        readable: false,
        writable: false,
        closing: false,
    };

    fn open_with(limits: Limits) -> (Connection<Fake>, Fake) {
        let fake = Fake::default();
        (Connection::accepted(fake.clone(), addr(9), limits), fake)
    }

    fn open() -> (Connection<Fake>, Fake) {
        open_with(LIMITS)
    }

    /// Feeds one readiness at `t`, with a fresh budget.
    fn ready(c: &mut Connection<Fake>, r: Readiness, t: Instant) -> Actions {
        c.on_ready(
            r,
            &mut BIG.clone(),
            &mut Clock::at(t),
            &mut Dialer::default(),
        )
    }

    fn take(c: &mut Connection<Fake>, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        let mut acts = Actions::NONE;
        let got = c.get(&mut out, true, &mut acts).unwrap();
        out.truncate(got);
        out
    }

    // -- reading ------------------------------------------------------------------

    #[test]
    fn a_short_read_means_drained_and_costs_one_call() {
        let (mut c, io) = open();
        io.read(&[1; 64]);
        let acts = ready(&mut c, READ, Instant::now());
        assert_eq!(acts, Actions::NOTIFY | Actions::MOVED);
        assert_eq!(
            io.0.borrow().read_calls,
            1,
            "no extra read to see WouldBlock"
        );
        assert_eq!(c.available(), 64);
    }

    #[test]
    fn a_read_that_finds_nothing_is_not_news() {
        let (mut c, _io) = open();
        assert_eq!(ready(&mut c, READ, Instant::now()), Actions::MOVED);
    }

    #[test]
    fn a_close_event_reads_on_to_the_eof_and_the_fin_rule_waits_for_the_last_byte() {
        let t = Instant::now();
        let (mut c, io) = open();
        io.read(&[1; 10]);
        io.eof();
        let acts = ready(&mut c, HUP, t);
        assert!(acts.has(Actions::NOTIFY));
        assert!(c.fin_received() && !c.can_recv());
        // Connected while data is unread...
        assert_eq!(c.status(), Status::Connected);
        let mut out = [0; 10];
        let mut acts = Actions::NONE;
        assert_eq!(c.get(&mut out, false, &mut acts), Ok(10));
        // ...and the change waits for a pass: status never changes in get.
        assert!(acts.has(Actions::RESUME));
        assert_eq!(c.status(), Status::Connected);
        let acts = ready(&mut c, RESUME, t);
        assert_eq!(c.status(), Status::None);
        assert!(acts.has(Actions::NOTIFY) && acts.has(Actions::ARM));
        // Nothing was queued: FIN at once, and the remote's FIN is already in,
        // so the close completes in the same pass (no deadline left).
        assert_eq!(io.shut_at(), Some(0));
        assert!(acts.has(Actions::CLOSED));
        assert_eq!(c.deadline(), None);
        assert!(c.is_closed());
    }

    #[test]
    fn a_reply_queued_with_the_last_read_goes_out_before_our_fin() {
        let t = Instant::now();
        let (mut c, io) = open();
        io.read(b"ping");
        io.eof();
        let _ = ready(&mut c, HUP, t);
        assert_eq!(take(&mut c, 4), b"ping");
        // The status is still Connected: the reply is accepted. The socket
        // takes nothing now, so it is queued.
        let mut acts = Actions::NONE;
        assert_eq!(c.put(b"pong", false, false, &mut acts), Ok(4));
        assert_eq!(c.pending_write(), 4);
        let acts = ready(&mut c, RESUME, t);
        assert_eq!(c.status(), Status::None);
        assert!(!acts.has(Actions::CLOSED), "output still queued");
        io.accept_writes(100);
        let acts = ready(&mut c, WRITE, t);
        assert_eq!(io.written(), b"pong");
        assert_eq!(io.shut_at(), Some(4), "FIN after the reply");
        assert!(acts.has(Actions::CLOSED));
        assert!(!acts.has(Actions::RELEASE), "the handle still owns it");
    }

    #[test]
    fn a_full_buffer_stalls_and_resumes_after_consumption() {
        let limits = Limits {
            read_buffer: 100,
            ..LIMITS
        };
        let (mut c, io) = open_with(limits);
        io.read(&[9; 250]);
        let acts = ready(&mut c, READ, Instant::now());
        assert_eq!(c.available(), 100);
        assert!(!acts.has(Actions::RESUME), "wait for the application");
        let mut acts = Actions::NONE;
        let mut out = [0; 30];
        c.get(&mut out, false, &mut acts).unwrap();
        assert!(acts.has(Actions::RESUME));
        let _ = ready(&mut c, RESUME, Instant::now());
        assert_eq!(c.available(), 100);
        // No new edge comes for data left in the kernel: the resume read it.
        assert_eq!(
            io.0.borrow()
                .reads
                .front()
                .map(|r| r.as_ref().map(Vec::len).ok()),
            Some(Some(120))
        );
    }

    #[test]
    fn the_budget_bounds_one_pass_and_asks_for_a_resume() {
        let limits = Limits {
            read_buffer: BIG,
            ..LIMITS
        };
        let (mut c, io) = open_with(limits);
        io.read(&[9; 10_000]);
        let mut budget = 2500;
        let acts = c.on_ready(
            READ,
            &mut budget,
            &mut Clock::lazy(),
            &mut Dialer::default(),
        );
        assert_eq!(c.available(), 2500);
        assert!(acts.has(Actions::RESUME) && acts.has(Actions::NOTIFY));
        assert!(io.0.borrow().asked.iter().all(|&a| a <= 2500));
    }

    #[test]
    fn a_fin_reported_during_a_budget_stall_is_not_lost() {
        let limits = Limits {
            read_buffer: BIG,
            ..LIMITS
        };
        let (mut c, io) = open_with(limits);
        io.read(&[1; 5000]);
        io.eof();
        let mut budget = 1000;
        let acts = c.on_ready(HUP, &mut budget, &mut Clock::lazy(), &mut Dialer::default());
        assert!(acts.has(Actions::RESUME));
        assert!(!c.fin_received());
        // The resume has no close event: the kept intent reads on to the EOF.
        let _ = ready(&mut c, RESUME, Instant::now());
        assert!(c.fin_received());
        assert_eq!(c.available(), 5000);
    }

    #[test]
    fn small_traffic_keeps_a_small_buffer_and_bursts_grow_the_reads() {
        let limits = Limits {
            read_buffer: BIG,
            ..LIMITS
        };
        let (mut c, io) = open_with(limits);
        io.read(&[1; 64]);
        let _ = ready(&mut c, READ, Instant::now());
        assert_eq!(c.io.rx.capacity(), READ_MIN);
        take(&mut c, 64);
        io.read(&[5; 200_000]);
        io.0.borrow_mut().read_calls = 0;
        let _ = ready(&mut c, READ, Instant::now());
        assert_eq!(c.available(), 200_000);
        assert!(
            io.0.borrow().read_calls <= 8,
            "{} reads",
            io.0.borrow().read_calls
        );
    }

    #[test]
    fn a_reset_fails_the_connection_and_keeps_what_arrived() {
        let (mut c, io) = open();
        io.read(b"abc");
        let _ = ready(&mut c, READ, Instant::now());
        io.read_err(io::ErrorKind::ConnectionReset);
        let acts = ready(&mut c, HUP, Instant::now());
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error(), Some(SocketError::ConnectionClosed));
        assert_eq!(c.error_kind(), Some(io::ErrorKind::ConnectionReset));
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::NOTIFY));
        // Bytes received before the failure stay readable; then the error.
        assert_eq!(take(&mut c, 10), b"abc");
        let mut acts = Actions::NONE;
        assert_eq!(
            c.get(&mut [0; 4], true, &mut acts),
            Err(SocketError::ConnectionClosed)
        );
        assert!(!c.can_send());
    }

    // -- writing ------------------------------------------------------------------

    #[test]
    fn put_writes_at_once_and_queues_only_the_refused_part() {
        let (mut c, io) = open();
        io.accept_writes(3);
        let mut acts = Actions::NONE;
        assert_eq!(c.put(b"hello", false, false, &mut acts), Ok(5));
        assert_eq!(acts, Actions::NONE, "the writable edge will come");
        assert_eq!(io.written(), b"hel");
        assert_eq!(c.pending_write(), 2);
        // Blocked: the next put queues without a write call.
        assert_eq!(c.put(b"!", false, false, &mut acts), Ok(1));
        io.accept_writes(100);
        let acts = ready(&mut c, WRITE, Instant::now());
        assert_eq!(io.written(), b"hello!");
        assert!(
            acts.has(Actions::NOTIFY),
            "blocked output drained: room again"
        );
    }

    #[test]
    fn coalescing_queues_and_asks_for_one_write_next_pass() {
        let (mut c, io) = open();
        let mut acts = Actions::NONE;
        c.put(b"ab", false, true, &mut acts).unwrap();
        c.put(b"cd", false, true, &mut acts).unwrap();
        assert_eq!(acts, Actions::RESUME);
        assert!(io.written().is_empty());
        io.accept_writes(100);
        let acts = ready(&mut c, RESUME, Instant::now());
        assert_eq!(io.written(), b"abcd");
        assert!(
            !acts.has(Actions::NOTIFY),
            "a flush that never waited is not news"
        );
    }

    #[test]
    fn put_data_is_all_or_nothing_and_partial_takes_what_fits() {
        let limits = Limits {
            write_buffer: 10,
            ..LIMITS
        };
        let (mut c, _io) = open_with(limits);
        let mut a = Actions::NONE;
        assert_eq!(
            c.put(&[1; 11], false, true, &mut a),
            Err(SocketError::OutOfBufferMemory)
        );
        assert_eq!(c.pending_write(), 0);
        assert_eq!(c.put(&[1; 6], false, true, &mut a), Ok(6));
        assert_eq!(
            c.put(&[2; 6], false, true, &mut a),
            Err(SocketError::OutOfBufferMemory)
        );
        assert_eq!(c.put(&[2; 6], true, true, &mut a), Ok(4));
        assert_eq!(c.put(&[3; 6], true, true, &mut a), Ok(0));
        assert_eq!(c.io.tx.as_slice(), &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(c.put(&[], false, true, &mut a), Ok(0));
    }

    #[test]
    fn a_failed_direct_write_accepts_nothing_and_fails_at_the_next_pass() {
        let (mut c, io) = open();
        io.write_err(io::ErrorKind::BrokenPipe);
        let mut acts = Actions::NONE;
        assert_eq!(
            c.put(b"abc", false, false, &mut acts),
            Err(SocketError::ConnectionClosed)
        );
        assert_eq!(c.pending_write(), 0);
        assert!(acts.has(Actions::RESUME));
        assert_eq!(
            c.status(),
            Status::Connected,
            "status changes only in a pass"
        );
        // The kernel reports a reset once: a read now would see a clean EOF.
        io.eof();
        let acts = ready(&mut c, RESUME, Instant::now());
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error_kind(), Some(io::ErrorKind::BrokenPipe));
        assert!(acts.has(Actions::CLOSED));
    }

    #[test]
    fn a_failed_flush_fails_the_connection() {
        let (mut c, io) = open();
        io.accept_writes(40);
        let mut acts = Actions::NONE;
        c.put(&[1; 100], false, false, &mut acts).unwrap();
        assert_eq!(c.pending_write(), 60);
        io.write_err(io::ErrorKind::ConnectionReset);
        let acts = ready(&mut c, WRITE, Instant::now());
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.pending_write(), 0, "undeliverable output is freed");
        assert!(acts.has(Actions::CLOSED));
    }

    // -- reading by the application -------------------------------------------------

    #[test]
    fn get_is_all_or_nothing() {
        let (mut c, io) = open();
        io.read(b"abc");
        let _ = ready(&mut c, READ, Instant::now());
        let mut a = Actions::NONE;
        assert_eq!(c.get(&mut [0; 4], false, &mut a), Err(SocketError::Busy));
        assert_eq!(c.short_read_error(), SocketError::Busy);
        assert_eq!(c.available(), 3);
        io.eof();
        let _ = ready(&mut c, HUP, Instant::now());
        assert_eq!(c.get(&mut [0; 4], false, &mut a), Err(SocketError::FileEof));
        assert_eq!(c.short_read_error(), SocketError::FileEof);
        assert_eq!(
            c.get(&mut vec![0; 2000], false, &mut a),
            Err(SocketError::OutOfBufferMemory)
        );
        let mut two = [0; 2];
        assert_eq!(c.get(&mut two, false, &mut a), Ok(2));
        assert_eq!(&two, b"ab");
        assert_eq!(c.get(&mut [0; 4], true, &mut a), Ok(1));
        assert_eq!(c.get(&mut [0; 4], true, &mut a), Err(SocketError::FileEof));
        assert_eq!(c.get(&mut [], true, &mut a), Ok(0));
    }

    // -- connecting ---------------------------------------------------------------

    fn resolving(t: Instant) -> Connection<Fake> {
        let (c, acts) = Connection::resolving(LIMITS, &mut Clock::at(t));
        assert_eq!(acts, Actions::ARM);
        assert_eq!(c.deadline(), Some(t + LIMITS.connect_timeout));
        assert_eq!(c.status(), Status::Connecting);
        c
    }

    #[test]
    fn connect_completes_on_the_first_address() {
        let t = Instant::now();
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        let acts = c.connect_to(vec![addr(1), addr(2)], &mut dial);
        assert_eq!(acts, Actions::NONE);
        assert_eq!(dial.dialed, [addr(1)]);
        assert_eq!(c.remote(), Some(addr(1)));
        // A spurious wake-up: still in progress.
        let acts = c.on_ready(WRITE, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(c.status(), Status::Connecting);
        assert!(!acts.has(Actions::NOTIFY));
        dial.opened[0].outcome(Ok(Some(addr(1))));
        let acts = c.on_ready(WRITE, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(c.status(), Status::Connected);
        assert!(acts.has(Actions::NOTIFY));
        assert_eq!(c.deadline(), None);
        assert_eq!(c.local_addr(), Some(addr(1)));
        // The connect timer fires later: a no-op.
        let later = t + LIMITS.connect_timeout;
        assert_eq!(c.on_deadline(&mut Clock::at(later)), Actions::NONE);
        assert_eq!(c.status(), Status::Connected);
    }

    #[test]
    fn a_refused_address_falls_back_to_the_next() {
        let t = Instant::now();
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        let _ = c.connect_to(vec![addr(1), addr(2)], &mut dial);
        dial.opened[0].outcome(Err(io::ErrorKind::ConnectionRefused.into()));
        let acts = c.on_ready(WRITE, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(c.status(), Status::Connecting);
        assert!(!acts.has(Actions::CLOSED));
        assert_eq!(dial.dialed, [addr(1), addr(2)]);
        dial.opened[1].outcome(Err(io::ErrorKind::ConnectionRefused.into()));
        let acts = c.on_ready(WRITE, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error(), Some(SocketError::ConnectFailed));
        assert_eq!(c.error_kind(), Some(io::ErrorKind::ConnectionRefused));
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::NOTIFY));
        assert!(c.is_closed());
    }

    #[test]
    fn an_address_that_cannot_be_opened_is_skipped() {
        let t = Instant::now();
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        dial.plan.push_back(Err(io::ErrorKind::AddrNotAvailable));
        let _ = c.connect_to(vec![addr(1), addr(2)], &mut dial);
        assert_eq!(dial.dialed, [addr(1), addr(2)]);
        assert_eq!(c.remote(), Some(addr(2)));
        // None can be opened: Error at once (inside the pass that resolved).
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        dial.plan.push_back(Err(io::ErrorKind::AddrNotAvailable));
        let acts = c.connect_to(vec![addr(1)], &mut dial);
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error_kind(), Some(io::ErrorKind::AddrNotAvailable));
        assert!(acts.has(Actions::CLOSED));
    }

    #[test]
    fn an_immediate_connect_failure_is_observed_at_the_next_pass() {
        let t = Instant::now();
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        dial.plan
            .push_back(Ok(Some(io::ErrorKind::ConnectionRefused)));
        let acts = c.connect_to(vec![addr(1)], &mut dial);
        assert_eq!(acts, Actions::RESUME);
        assert_eq!(c.status(), Status::Connecting, "not inside connect_to_host");
        let _ = c.on_ready(RESUME, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error_kind(), Some(io::ErrorKind::ConnectionRefused));
    }

    #[test]
    fn the_connect_deadline_fails_with_timed_out() {
        let t = Instant::now();
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        let _ = c.connect_to(vec![addr(1)], &mut dial);
        let early = t + LIMITS.connect_timeout - Duration::from_millis(1);
        assert_eq!(c.on_deadline(&mut Clock::at(early)), Actions::NONE);
        let acts = c.on_deadline(&mut Clock::at(t + LIMITS.connect_timeout));
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error(), Some(SocketError::ConnectFailed));
        assert_eq!(c.error_kind(), Some(io::ErrorKind::TimedOut));
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::NOTIFY));
        // While resolving too.
        let mut c = resolving(t);
        let _ = c.on_deadline(&mut Clock::at(t + LIMITS.connect_timeout));
        assert_eq!(c.error_kind(), Some(io::ErrorKind::TimedOut));
    }

    #[test]
    fn an_unresolvable_name_fails_with_invalid_ip_address() {
        let mut c = resolving(Instant::now());
        let acts = c.resolve_failed();
        assert_eq!(c.status(), Status::Error);
        assert_eq!(c.error(), Some(SocketError::InvalidIpAddress));
        assert_eq!(c.error_kind(), Some(io::ErrorKind::NotFound));
        assert!(acts.has(Actions::CLOSED));
        assert_eq!(c.resolve_failed(), Actions::NONE, "once");
    }

    #[test]
    fn data_put_while_connecting_is_sent_on_connect() {
        let t = Instant::now();
        let mut c = resolving(t);
        let mut acts = Actions::NONE;
        assert_eq!(c.put(b"hello", false, false, &mut acts), Ok(5));
        assert_eq!(acts, Actions::NONE);
        let mut dial = Dialer::default();
        let _ = c.connect_to(vec![addr(1)], &mut dial);
        let io = dial.opened[0].clone();
        io.outcome(Ok(Some(addr(1))));
        io.accept_writes(100);
        let _ = c.on_ready(WRITE, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(c.status(), Status::Connected);
        assert_eq!(io.written(), b"hello");
    }

    // -- closing ------------------------------------------------------------------

    #[test]
    fn detach_flushes_sends_fin_and_waits_for_the_remote_fin() {
        let t = Instant::now();
        let (mut c, io) = open();
        let mut a = Actions::NONE;
        c.put(b"bye", false, true, &mut a).unwrap();
        io.read(b"unread");
        let _ = ready(&mut c, READ, t);
        assert!(io.written().is_empty(), "the kernel took nothing yet");
        io.accept_writes(100);
        let _ = ready(&mut c, WRITE, t);
        let acts = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut Dialer::default());
        assert!(!c.is_attached());
        assert_eq!(c.available(), 0, "unread input is dropped");
        assert_eq!(io.written(), b"bye");
        assert_eq!(io.shut_at(), Some(3));
        assert!(acts.has(Actions::ARM));
        assert!(!acts.has(Actions::NOTIFY), "nobody to notify");
        assert!(!acts.has(Actions::RELEASE), "waits for the remote's FIN");
        // Data still arriving is read and dropped; the FIN ends it.
        io.read(b"late");
        io.eof();
        let acts = ready(&mut c, HUP, t);
        assert_eq!(c.available(), 0);
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::RELEASE));
    }

    #[test]
    fn the_linger_deadline_bounds_the_close() {
        let t = Instant::now();
        let (mut c, io) = open();
        let mut a = Actions::NONE;
        c.put(b"never taken", false, true, &mut a).unwrap();
        let acts = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut Dialer::default());
        assert!(acts.has(Actions::ARM) && !acts.has(Actions::CLOSED));
        assert_eq!(io.shut_at(), None, "FIN only after the output");
        let at = t + LIMITS.linger_timeout;
        assert_eq!(
            c.on_deadline(&mut Clock::at(at - Duration::from_millis(1))),
            Actions::NONE
        );
        let acts = c.on_deadline(&mut Clock::at(at));
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::RELEASE));
    }

    #[test]
    fn a_reset_while_closing_ends_the_close() {
        let t = Instant::now();
        let (mut c, io) = open();
        io.0.borrow_mut().shutdown_error = Some(io::ErrorKind::NotConnected);
        let acts = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut Dialer::default());
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::RELEASE));
        // A read error while waiting for the FIN ends it too, status untouched.
        let (mut c, io) = open();
        let _ = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut Dialer::default());
        io.read_err(io::ErrorKind::ConnectionReset);
        let acts = ready(&mut c, HUP, t);
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::RELEASE));
        assert!(c.is_closed());
    }

    #[test]
    fn detach_while_connecting_or_resolving() {
        let t = Instant::now();
        // Nothing to send: closed at once.
        let mut c = resolving(t);
        let mut dial = Dialer::default();
        let _ = c.connect_to(vec![addr(1)], &mut dial);
        let acts = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::RELEASE));
        let mut c = resolving(t);
        let acts = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert!(acts.has(Actions::CLOSED) && acts.has(Actions::RELEASE));
        // Output queued: delivered once connected, then FIN.
        let mut c = resolving(t);
        let mut a = Actions::NONE;
        c.put(b"queued", false, false, &mut a).unwrap();
        let mut dial = Dialer::default();
        let _ = c.connect_to(vec![addr(1)], &mut dial);
        let acts = c.detach(&mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(acts, Actions::NONE);
        let io = dial.opened[0].clone();
        io.outcome(Ok(Some(addr(1))));
        io.accept_writes(100);
        let acts = c.on_ready(WRITE, &mut BIG.clone(), &mut Clock::at(t), &mut dial);
        assert_eq!(io.written(), b"queued");
        assert_eq!(io.shut_at(), Some(6));
        assert!(acts.has(Actions::ARM));
        assert_eq!(c.deadline(), Some(t + LIMITS.linger_timeout));
    }

    #[test]
    fn detaching_a_closed_connection_releases_it() {
        let (mut c, io) = open();
        io.read_err(io::ErrorKind::ConnectionReset);
        let acts = ready(&mut c, HUP, Instant::now());
        assert!(acts.has(Actions::CLOSED) && !acts.has(Actions::RELEASE));
        let acts = c.detach(&mut BIG.clone(), &mut Clock::lazy(), &mut Dialer::default());
        assert_eq!(acts, Actions::RELEASE, "closed once, released once");
    }

    // -- predicates ---------------------------------------------------------------

    #[test]
    fn predicates_follow_the_status() {
        let t = Instant::now();
        let c = resolving(t);
        assert!(c.can_send() && c.can_recv() && c.is_resolving());
        let (mut c, io) = open();
        assert!(c.can_send() && c.can_recv() && !c.is_closed());
        io.read(b"x");
        io.eof();
        let _ = ready(&mut c, HUP, t);
        assert!(c.can_send(), "Connected until the FIN rule applies");
        assert!(!c.can_recv());
        assert_eq!(take(&mut c, 1), b"x");
        let _ = ready(&mut c, RESUME, t);
        assert_eq!(c.status(), Status::None);
        assert!(!c.can_send() && !c.can_recv());
        let mut a = Actions::NONE;
        assert_eq!(
            c.put(b"x", false, false, &mut a),
            Err(SocketError::ConnectionClosed)
        );
    }

    #[test]
    #[should_panic(expected = "illegal transition")]
    #[cfg(debug_assertions)]
    fn an_illegal_transition_is_caught_in_debug_builds() {
        let (mut c, _io) = open();
        c.transition(Status::Connecting);
    }
}
