//! What the reactor and a [`Connection`](super::Connection) exchange:
//! readiness and time going in, [`Actions`] coming out, and the two seams to
//! the OS ([`Transport`] for bytes, [`Dial`] for connect attempts) that the
//! reactor implements on sockets and the tests on scripted fakes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::{BitOr, BitOrAssign};
use std::time::{Duration, Instant};

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
    /// One read, as `Read::read` (every read of a connection goes through
    /// here, so the socket can make it a plain `recv` system call).
    #[inline(always)]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }
    /// [`recv`](Self::recv) for the steady-traffic read, its one caller
    /// (so that the socket's version can be inlined there).
    #[inline(always)]
    fn recv_steady(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
    /// One write, as `Write::write` (see [`recv`](Self::recv)).
    #[inline(always)]
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write(buf)
    }
    /// One gathering write, as `Write::write_vectored` (see
    /// [`recv`](Self::recv)).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // only TLS gathers its records
    #[inline(always)]
    fn send_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored(bufs)
    }
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

/// What the reactor must do after feeding a [`Connection`](super::Connection) an input. A set of
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
    /// A new deadline ([`Connection::deadline`](super::Connection::deadline)) must be armed.
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
    /// No byte received for this long: `Error` (`TimedOut`).
    pub(crate) idle_timeout: Option<Duration>,
    /// The read rate limit.
    pub(crate) read_rate: Option<super::RateLimit>,
}
