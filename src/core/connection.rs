//! The socket-free part of a connection: [`Status`], the two byte queues, and the
//! rules that move bytes between them and anything that is `Read + Write`.
//!
//! The reactor hands this module a `mio::net::TcpStream`; the unit tests at the
//! bottom hand it scripted fakes, so every edge-triggered rule (a short read means
//! drained, a full buffer stops reading, a budget stops reading, a short write
//! means wait for writability) is tested without the OS.

use std::io::{self, Read, Write};

use crate::SocketError;
use crate::buffer::ByteQueue;

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

/// Why a read loop stopped reading from the socket while data may remain in
/// the kernel. Edge-triggered readiness will not report that data again, so
/// the reactor must come back on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Not stalled: the last read loop ended because the socket was drained.
    No,
    /// The read buffer hit its limit; resume once the application consumes.
    Full,
    /// The per-pass read budget was spent; resume in the next pass.
    Budget,
}

/// How a read loop ended.
#[derive(Debug)]
pub(crate) enum ReadEnd {
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
pub(crate) enum FlushEnd {
    /// The queue is empty.
    Flushed,
    /// The socket took what it could; wait for a writable event.
    Blocked,
    /// The socket failed (reset, broken pipe, ...).
    Failed(io::Error),
}

/// A connection's user-visible state and byte queues, independent of the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) status: Status,
    pub(crate) error: Option<SocketError>,
    /// The OS-level cause of `error`, when there was one.
    pub(crate) error_kind: Option<io::ErrorKind>,
    /// Received bytes not yet taken by the application.
    pub(crate) rx: ByteQueue,
    /// Bytes accepted by `put_*` not yet taken by the kernel.
    pub(crate) tx: ByteQueue,
    /// The remote's FIN was read: no byte will ever be added to `rx`.
    pub(crate) fin_received: bool,
    /// A write came back short or `WouldBlock`: wait for a writable edge before
    /// writing again (writing now would only return `WouldBlock`).
    pub(crate) write_blocked: bool,
    pub(crate) stall: Stall,
    /// An event reported a close or an error that no read has confirmed yet:
    /// the next read goes on until `0`, `WouldBlock` or an error.
    pub(crate) hup: bool,
    /// A write made by `put` failed with this error. The kernel reports a
    /// reset once, so it is kept here until the next reactor pass fails the
    /// connection with it (a read then would see a clean-looking EOF).
    pub(crate) write_error: Option<io::ErrorKind>,
}

impl Conn {
    pub(crate) fn new(status: Status, read_limit: usize, write_limit: usize) -> Conn {
        Conn {
            status,
            error: None,
            error_kind: None,
            rx: ByteQueue::new(read_limit),
            tx: ByteQueue::new(write_limit),
            fin_received: false,
            write_blocked: false,
            stall: Stall::No,
            hup: false,
            write_error: None,
        }
    }

    /// Moves to `Status::Error` with `error` and its OS cause.
    pub(crate) fn fail(&mut self, error: SocketError, kind: Option<io::ErrorKind>) {
        self.status = Status::Error;
        self.error = Some(error);
        self.error_kind = kind;
        // Output can never be delivered now: free it.
        self.tx.clear();
        self.tx.release();
        self.write_blocked = false;
        self.stall = Stall::No;
    }

    /// Fails with the mapping of an I/O error.
    pub(crate) fn fail_io(&mut self, e: &io::Error) {
        self.fail(SocketError::from(io::Error::from(e.kind())), Some(e.kind()));
    }

    /// The FIN rule: a connection whose remote closed stays `Connected` while
    /// received bytes are unread, and goes to `None` once they are all taken.
    /// Returns whether the status changed.
    pub(crate) fn settle(&mut self) -> bool {
        if self.status == Status::Connected && self.fin_received && self.rx.is_empty() {
            self.status = Status::None;
            return true;
        }
        false
    }

    /// After the application consumed bytes: does the reactor have work for
    /// this connection that no readiness event will announce?
    #[inline]
    pub(crate) fn needs_resume(&self) -> bool {
        (self.stall == Stall::Full && self.rx.room() > 0)
            || (self.status == Status::Connected && self.fin_received && self.rx.is_empty())
    }

    /// Reads from `io` into `rx` until drained, full, budget spent, EOF or error.
    ///
    /// Edge-triggered rules (see `docs/architecture.md`):
    /// - a read that returns fewer bytes than asked means the socket is drained;
    ///   no extra read to see `WouldBlock` — unless `until_block` is set (the
    ///   event announced a close or an error, which only a read returning 0 or an
    ///   error reveals);
    /// - a full buffer or a spent budget stops the loop with data possibly left
    ///   in the kernel; `stall` records why so the reactor resumes on its own.
    ///
    /// Reads land directly in the queue's storage (no intermediate copy). Each
    /// read asks for as much as the storage already owns (at least
    /// [`READ_MIN`]), so a peer that receives large bursts keeps large reads
    /// while one that exchanges small messages keeps a small buffer.
    pub(crate) fn fill_from<R: Read>(
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
    pub(crate) fn flush_to<W: Write>(&mut self, io: &mut W) -> FlushEnd {
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

    /// Checks that `put_*` may queue data in the current status.
    #[inline]
    pub(crate) fn check_put(&self) -> Result<(), SocketError> {
        match self.status {
            Status::Connecting | Status::Connected => Ok(()),
            Status::Error => Err(self.error.unwrap_or(SocketError::ConnectionClosed)),
            Status::None => Err(SocketError::ConnectionClosed),
        }
    }

    /// `put_data` / `put_partial_data`. `io` is the socket when writing at once
    /// is allowed (connected, nothing queued, not waiting for writability, not
    /// coalescing); otherwise the data is only queued.
    ///
    /// All-or-nothing (`partial == false`): succeeds iff `data` fits in the
    /// queue's free room, whatever the socket would take right now, so the
    /// outcome never depends on kernel buffer sizes.
    #[inline]
    pub(crate) fn put<W: Write>(
        &mut self,
        io: Option<&mut W>,
        data: &[u8],
        partial: bool,
    ) -> Result<usize, SocketError> {
        self.check_put()?;
        if data.is_empty() {
            return Ok(0);
        }
        if !partial && data.len() > self.tx.room() {
            return Err(SocketError::OutOfBufferMemory);
        }
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

    /// The error a read of more bytes than are buffered gets now: `Busy` while
    /// more can arrive, else the end-of-input error.
    pub(crate) fn short_read_error(&self) -> SocketError {
        if self.input_finished() {
            self.input_end_error()
        } else {
            SocketError::Busy
        }
    }

    /// Whether no byte will ever be added to `rx` again.
    #[inline]
    fn input_finished(&self) -> bool {
        self.fin_received || matches!(self.status, Status::None | Status::Error)
    }

    /// The error for a read that can never be satisfied.
    fn input_end_error(&self) -> SocketError {
        match self.status {
            Status::Error => self.error.unwrap_or(SocketError::ConnectionClosed),
            _ => SocketError::FileEof,
        }
    }

    /// `get_data`: fills `buf` completely or consumes nothing.
    #[inline]
    pub(crate) fn get(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        if buf.len() > self.rx.limit() {
            return Err(SocketError::OutOfBufferMemory);
        }
        if self.rx.len() >= buf.len() {
            self.rx.pop_into(buf);
            return Ok(());
        }
        if self.input_finished() {
            return Err(self.input_end_error());
        }
        Err(SocketError::Busy)
    }

    /// `get_partial_data`: takes what is buffered. `Ok(0)` means "nothing yet";
    /// when nothing is buffered and nothing more can arrive it is an error, so
    /// a read loop always ends.
    #[inline]
    pub(crate) fn get_partial(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        let n = self.rx.pop_into(buf);
        if n == 0 && !buf.is_empty() && self.input_finished() {
            return Err(self.input_end_error());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted socket: each read/write call takes the next scripted step.
    #[derive(Default)]
    struct Script {
        reads: VecDeque<io::Result<Vec<u8>>>,
        /// For writes: how many bytes each call accepts (Err = that error).
        writes: VecDeque<io::Result<usize>>,
        written: Vec<u8>,
        read_calls: usize,
        asked: Vec<usize>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.read_calls += 1;
            self.asked.push(buf.len());
            match self.reads.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(mut data)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    if n < data.len() {
                        self.reads.push_front(Ok(data.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.writes.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(n)) => {
                    let n = n.min(buf.len());
                    self.written.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn() -> Conn {
        Conn::new(Status::Connected, 1024, 1024)
    }

    #[test]
    fn a_short_read_means_drained_and_costs_one_call() {
        let mut c = conn();
        let mut io = Script::default();
        io.reads.push_back(Ok(vec![1; 64]));
        let mut budget = 1 << 20;
        let (n, end) = c.fill_from(&mut io, &mut budget, false);
        assert_eq!(n, 64);
        assert!(matches!(end, ReadEnd::Drained));
        assert_eq!(io.read_calls, 1, "no extra read to see WouldBlock");
        assert_eq!(c.rx.len(), 64);
        assert_eq!(c.stall, Stall::No);
    }

    #[test]
    fn a_close_event_reads_on_to_the_eof() {
        let mut c = conn();
        let mut io = Script::default();
        io.reads.push_back(Ok(vec![1; 10]));
        io.reads.push_back(Ok(vec![]));
        let mut budget = 1 << 20;
        let (n, end) = c.fill_from(&mut io, &mut budget, true);
        assert_eq!(n, 10);
        assert!(matches!(end, ReadEnd::Eof));
        assert!(c.fin_received);
        // Connected while data is unread, None once it is taken.
        assert!(!c.settle());
        assert_eq!(c.status, Status::Connected);
        let mut out = [0; 10];
        c.get(&mut out).unwrap();
        assert!(c.needs_resume());
        assert!(c.settle());
        assert_eq!(c.status, Status::None);
    }

    #[test]
    fn a_full_buffer_stalls_and_asks_for_resume_after_consumption() {
        let mut c = Conn::new(Status::Connected, 100, 100);
        let mut io = Script::default();
        io.reads.push_back(Ok(vec![9; 250]));
        let mut budget = 1 << 20;
        let (n, end) = c.fill_from(&mut io, &mut budget, false);
        assert_eq!(n, 100);
        assert!(matches!(end, ReadEnd::Stalled));
        assert_eq!(c.stall, Stall::Full);
        assert!(!c.needs_resume(), "nothing consumed yet");
        let mut out = [0; 30];
        c.get(&mut out).unwrap();
        assert!(c.needs_resume());
        let (n, _) = c.fill_from(&mut io, &mut budget, false);
        assert_eq!(n, 30);
        assert_eq!(c.rx.len(), 100);
    }

    #[test]
    fn the_budget_bounds_one_pass() {
        let mut c = Conn::new(Status::Connected, 1 << 20, 100);
        let mut io = Script::default();
        io.reads.push_back(Ok(vec![9; 10_000]));
        let mut budget = 2500;
        let (n, end) = c.fill_from(&mut io, &mut budget, false);
        assert_eq!(n, 2500);
        assert!(matches!(end, ReadEnd::Stalled));
        assert_eq!(c.stall, Stall::Budget);
        assert!(io.asked.iter().all(|&a| a <= 2500));
    }

    #[test]
    fn small_traffic_keeps_a_small_buffer_and_bursts_grow_the_reads() {
        let mut c = Conn::new(Status::Connected, 1 << 20, 100);
        let mut io = Script::default();
        let mut budget = 1 << 20;
        io.reads.push_back(Ok(vec![1; 64]));
        c.fill_from(&mut io, &mut budget, false);
        assert_eq!(c.rx.capacity(), READ_MIN);
        c.rx.clear();
        // A 200 KB burst: reads grow with the buffer instead of staying at
        // READ_MIN (which would cost ~50 syscalls).
        io.reads.push_back(Ok(vec![5; 200_000]));
        io.read_calls = 0;
        let (n, end) = c.fill_from(&mut io, &mut budget, false);
        assert_eq!(n, 200_000);
        assert!(matches!(end, ReadEnd::Drained));
        assert!(io.read_calls <= 8, "{} reads", io.read_calls);
        // Once grown (and until released when idle), one read takes a burst.
        c.rx.clear();
        io.reads.push_back(Ok(vec![6; 100_000]));
        io.read_calls = 0;
        c.fill_from(&mut io, &mut budget, false);
        assert_eq!(io.read_calls, 1);
    }

    #[test]
    fn read_errors_are_reported() {
        let mut c = conn();
        let mut io = Script::default();
        io.reads
            .push_back(Err(io::ErrorKind::ConnectionReset.into()));
        let mut budget = 1 << 20;
        let (_, end) = c.fill_from(&mut io, &mut budget, false);
        let ReadEnd::Failed(e) = end else {
            panic!("expected failure, got {end:?}")
        };
        c.fail_io(&e);
        assert_eq!(c.status, Status::Error);
        assert_eq!(c.error, Some(SocketError::ConnectionClosed));
        assert_eq!(c.error_kind, Some(io::ErrorKind::ConnectionReset));
    }

    #[test]
    fn put_writes_at_once_and_queues_only_the_refused_part() {
        let mut c = conn();
        let mut io = Script::default();
        io.writes.push_back(Ok(3));
        assert_eq!(c.put(Some(&mut io), b"hello", false), Ok(5));
        assert_eq!(io.written, b"hel");
        assert_eq!(c.tx.as_slice(), b"lo");
        assert!(c.write_blocked);
        io.writes.push_back(Ok(100));
        assert!(matches!(c.flush_to(&mut io), FlushEnd::Flushed));
        assert_eq!(io.written, b"hello");
    }

    #[test]
    fn put_data_is_all_or_nothing_and_partial_takes_what_fits() {
        let mut c = Conn::new(Status::Connected, 100, 10);
        assert_eq!(
            c.put::<Script>(None, &[1; 11], false),
            Err(SocketError::OutOfBufferMemory)
        );
        assert!(c.tx.is_empty());
        assert_eq!(c.put::<Script>(None, &[1; 6], false), Ok(6));
        assert_eq!(
            c.put::<Script>(None, &[2; 6], false),
            Err(SocketError::OutOfBufferMemory)
        );
        assert_eq!(c.put::<Script>(None, &[2; 6], true), Ok(4));
        assert_eq!(c.put::<Script>(None, &[3; 6], true), Ok(0));
        assert_eq!(c.tx.as_slice(), &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    }

    #[test]
    fn put_refuses_by_status() {
        let mut c = Conn::new(Status::None, 10, 10);
        assert_eq!(
            c.put::<Script>(None, b"x", false),
            Err(SocketError::ConnectionClosed)
        );
        c.fail(SocketError::ConnectFailed, None);
        assert_eq!(
            c.put::<Script>(None, b"x", false),
            Err(SocketError::ConnectFailed)
        );
        let mut c = Conn::new(Status::Connecting, 10, 10);
        assert_eq!(c.put::<Script>(None, b"x", false), Ok(1));
    }

    #[test]
    fn a_failed_direct_write_accepts_nothing() {
        let mut c = conn();
        let mut io = Script::default();
        io.writes.push_back(Err(io::ErrorKind::BrokenPipe.into()));
        assert_eq!(
            c.put(Some(&mut io), b"abc", false),
            Err(SocketError::ConnectionClosed)
        );
        assert!(c.tx.is_empty());
        // Kept for the next pass: a reset is reported only once.
        assert_eq!(c.write_error, Some(io::ErrorKind::BrokenPipe));
        assert_eq!(c.status, Status::Connected, "status changes only in a pass");
    }

    #[test]
    fn get_is_all_or_nothing() {
        let mut c = conn();
        c.rx.push(b"abc");
        let mut four = [0; 4];
        assert_eq!(c.get(&mut four), Err(SocketError::Busy));
        assert_eq!(c.rx.len(), 3);
        c.fin_received = true;
        assert_eq!(c.get(&mut four), Err(SocketError::FileEof));
        assert_eq!(c.rx.len(), 3);
        let mut big = vec![0; 2000];
        assert_eq!(c.get(&mut big), Err(SocketError::OutOfBufferMemory));
        let mut two = [0; 2];
        c.get(&mut two).unwrap();
        assert_eq!(&two, b"ab");
        assert_eq!(c.get_partial(&mut four), Ok(1));
        assert_eq!(c.get_partial(&mut four), Err(SocketError::FileEof));
        assert_eq!(c.get_partial(&mut []), Ok(0));
    }

    #[test]
    fn partial_get_returns_zero_while_more_can_arrive() {
        let mut c = Conn::new(Status::Connecting, 10, 10);
        assert_eq!(c.get_partial(&mut [0; 4]), Ok(0));
        c.fail(SocketError::ConnectFailed, None);
        assert_eq!(c.get_partial(&mut [0; 4]), Err(SocketError::ConnectFailed));
    }

    #[test]
    fn flush_stops_at_a_short_write_and_reports_errors() {
        let mut c = conn();
        c.tx.push(&[1; 100]);
        let mut io = Script::default();
        io.writes.push_back(Ok(40));
        assert!(matches!(c.flush_to(&mut io), FlushEnd::Blocked));
        assert_eq!(c.tx.len(), 60);
        io.writes
            .push_back(Err(io::ErrorKind::ConnectionReset.into()));
        assert!(matches!(c.flush_to(&mut io), FlushEnd::Failed(_)));
    }
}
