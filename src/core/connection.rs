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
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::buffer::ByteQueue;
use super::drive::{Actions, Clock, Dial, Limits, Readiness, Transport};

mod app;
mod connect;
mod guard;
mod moving;
use super::io::{FlushEnd, Io, ReadEnd, Stall};
use super::rate::RateLimit;
use super::stats::PeerStats;
use super::status::Status;
use crate::SocketError;

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
    /// No byte received for this long while open: `Error` (`TimedOut`).
    idle_timeout: Option<Duration>,
    /// The read rate limit (its bucket lives in `io` while open).
    /// Boxed: only rate-limited peers pay for it (see `Io::rate`).
    read_rate: Option<Box<RateLimit>>,
    /// The earliest timer known to be pending in the reactor (see `guard`).
    armed: Option<Instant>,
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
                stats: PeerStats::default(),
                rate: None,
            },
            idle_timeout: limits.idle_timeout,
            read_rate: limits.read_rate.map(Box::new),
            armed: None,
        }
    }

    /// A connection waiting for its host's addresses (`connect_to_host`), with
    /// its connect deadline armed from `clock`. Returns `ARM`.
    pub(crate) fn resolving(limits: Limits, clock: &mut Clock) -> (Connection<S>, Actions) {
        let mut c = Connection::with(Link::Resolving, Status::Connecting, limits);
        c.deadline = Some(clock.now() + limits.connect_timeout);
        let acts = c.rearm();
        (c, acts)
    }

    /// A connection accepted by a server: open at once (at `clock`'s time,
    /// which starts its idle timeout and rate bucket). May answer `ARM`.
    pub(crate) fn accepted(
        sock: S,
        remote: SocketAddr,
        limits: Limits,
        clock: &mut Clock,
    ) -> (Connection<S>, Actions) {
        let local = sock.local_addr();
        let mut c = Connection::with(Link::Open { sock }, Status::Connected, limits);
        c.remote = Some(remote);
        c.local = local;
        let acts = c.became_open(clock.now());
        (c, acts)
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
        self.rearm()
    }

    // -- inputs from the reactor -----------------------------------------------

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
        let now = clock.now();
        if self.armed.is_some_and(|a| a <= now) {
            self.armed = None; // that timer is the one firing now
        }
        let Some(deadline) = self.deadline else {
            return Actions::NONE;
        };
        if deadline > now {
            // Moved later since the timer was armed: arm for the new time.
            return self.rearm();
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
            Link::Open { .. } => return self.on_open_deadline(now),
            Link::Closed => return Actions::NONE,
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
        match self.on_steady_read(r, budget, clock) {
            Some(acts) => acts,
            None => self.on_ready_slow(r, budget, clock, dial),
        }
    }

    /// The short path of [`on_ready`](Self::on_ready), for the reactor to try
    /// before it prepares what the general case needs: `None` unless this is
    /// steady traffic.
    #[inline(always)]
    pub(crate) fn on_steady_read(
        &mut self,
        r: Readiness,
        budget: &mut usize,
        clock: &mut Clock,
    ) -> Option<Actions> {
        if !(r.readable && !r.closing && self.io.is_steady()) {
            return None;
        }
        let Link::Open { sock } = &mut self.link else {
            return None;
        };
        if r.writable {
            self.io.write_blocked = false;
        }
        let (n, end) = self.io.fill_steady(sock, budget);
        if n > 0 {
            self.io.stats.last_receive = Some(clock.now());
        }
        if let ReadEnd::Drained = end {
            return Some(if n > 0 {
                Actions::NOTIFY | Actions::MOVED
            } else {
                Actions::MOVED
            });
        }
        // Reading only appends: what was buffered before is what is there
        // now less what this read added.
        let before = self.io.rx.len() - n;
        Some(self.after_short_path(before, end, clock))
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
            Stall::Budget | Stall::Rate => true,
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
            let (_, end) =
                guard::read_into(&mut self.io, sock, budget, until_block, !closing, clock);
            failed = self.after_read(end, until_block, closing, &mut acts);
            if failed.is_none() {
                acts |= self.after_limited_read();
            }
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
    use crate::core::io::READ_MIN;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::io::{Read, Write};
    use std::rc::Rc;

    mod guard;

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
        idle_timeout: None,
        read_rate: None,
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
        let (c, _) = Connection::accepted(fake.clone(), addr(9), limits, &mut Clock::lazy());
        (c, fake)
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
    fn put_vectored_writes_at_once_and_queues_the_refused_slices_up_to_the_limit() {
        let limits = Limits {
            write_buffer: 6,
            ..LIMITS
        };
        let (mut c, io) = open_with(limits);
        // The fake writes only the first slice, 2 of its bytes: a short write.
        io.accept_writes(2);
        let bufs = [
            io::IoSlice::new(b"abc"),
            io::IoSlice::new(b""),
            io::IoSlice::new(b"defg"),
            io::IoSlice::new(b"hij"),
        ];
        let mut acts = Actions::NONE;
        assert_eq!(c.put_vectored(&bufs, false, &mut acts), Ok(8));
        assert_eq!(acts, Actions::NONE, "the writable edge will come");
        assert_eq!(io.written(), b"ab");
        assert_eq!(c.io.tx.as_slice(), b"cdefgh", "queued up to the limit");
        // Blocked: queues without a write call, and only what fits.
        assert_eq!(c.put_vectored(&bufs, false, &mut acts), Ok(0));
        io.accept_writes(100);
        let acts = ready(&mut c, WRITE, Instant::now());
        assert_eq!(io.written(), b"abcdefgh");
        assert!(acts.has(Actions::NOTIFY), "blocked output drained");
        // Coalescing: queued, one write next pass.
        let (mut c, io) = open();
        let mut acts = Actions::NONE;
        assert_eq!(c.put_vectored(&bufs, true, &mut acts), Ok(10));
        assert_eq!(acts, Actions::RESUME);
        assert!(io.written().is_empty());
        io.accept_writes(100);
        let acts = ready(&mut c, RESUME, Instant::now());
        assert_eq!(io.written(), b"abcdefghij");
        assert!(!acts.has(Actions::NOTIFY), "a flush that never waited");
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
