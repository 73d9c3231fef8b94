//! The byte-moving rules of a connection, on its two queues: the
//! edge-triggered read loop, the write loop and the direct write of `put`.

use std::io;

use super::buffer::ByteQueue;
use super::drive::Transport;
use super::rate::TokenBucket;
use super::stats::PeerStats;
use crate::SocketError;

/// Smallest read asked of the kernel (and so the smallest read buffer a peer
/// that receives anything holds until it goes idle).
pub(crate) const READ_MIN: usize = 4096;

/// Why a read loop stopped reading from the socket while data may remain in
/// the kernel. Edge-triggered readiness will not report that data again, so
/// the reactor must come back on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stall {
    /// Not stalled: the last read loop ended because the socket was drained.
    No,
    /// The read buffer hit its limit; resume once the application consumes.
    Full,
    /// The per-pass read budget was spent; resume in the next pass.
    Budget,
    /// The read rate limit was reached; resume at the bucket's refill deadline.
    Rate,
}

/// How a read loop ended.
#[derive(Debug)]
pub(super) enum ReadEnd {
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
pub(super) enum FlushEnd {
    /// The queue is empty.
    Flushed,
    /// The socket took what it could; wait for a writable event.
    Blocked,
    /// The socket failed (reset, broken pipe, ...).
    Failed(io::Error),
}

/// The two byte queues and the edge-triggered read/write rules, kept apart
/// from the link (which owns the socket) so a socket borrowed from the link and the queues can be used
/// at once.
#[derive(Debug)]
pub(super) struct Io {
    /// Received bytes not yet taken by the application.
    pub(super) rx: ByteQueue,
    /// Bytes accepted by `put_*` not yet taken by the kernel.
    pub(super) tx: ByteQueue,
    /// The remote's FIN was read: no byte will ever be added to `rx`.
    pub(super) fin_received: bool,
    /// A write came back short or `WouldBlock`: wait for a writable edge before
    /// writing again (writing now would only return `WouldBlock`).
    pub(super) write_blocked: bool,
    pub(super) stall: Stall,
    /// An event reported a close or an error that no read has confirmed yet:
    /// the next read goes on until `0`, `WouldBlock` or an error.
    pub(super) hup: bool,
    /// A write made by `put` failed with this error. The kernel reports a
    /// reset once, so it is kept here until the next reactor pass fails the
    /// connection with it (a read then would see a clean-looking EOF).
    pub(super) write_error: Option<io::ErrorKind>,
    /// Counters (always on: a few additions per system call).
    pub(super) stats: PeerStats,
    /// The read rate limit's bucket, when the peer has one.
    /// Boxed: only rate-limited peers pay for it (per-peer memory is
    /// multiplied by the slab's spare capacity; see the alloc bench).
    pub(super) rate: Option<Box<TokenBucket>>,
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
    #[inline(always)]
    pub(super) fn fill_from<R: Transport>(
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
            match io.recv(&mut spare[..asked]) {
                Ok(0) => {
                    self.fin_received = true;
                    return (total, ReadEnd::Eof);
                }
                Ok(n) => {
                    self.rx.commit(n);
                    self.stats.bytes_in += n as u64;
                    self.stats.reads += 1;
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

    /// [`fill_from`](Self::fill_from) for steady traffic: when the read queue
    /// is empty and owns at least [`READ_MIN`] bytes that the budget covers,
    /// one read into all of it, without the loop's bookkeeping. A short read
    /// (the common case) ends here; anything else continues as `fill_from`.
    #[inline(always)]
    pub(super) fn fill_steady<R: Transport>(
        &mut self,
        io: &mut R,
        budget: &mut usize,
    ) -> (usize, ReadEnd) {
        let cap = self.rx.capacity();
        let buf = match self.rx.empty_storage_mut() {
            Some(buf) if cap >= READ_MIN && *budget >= cap => buf,
            _ => return self.fill_from(io, budget, false),
        };
        match io.recv_steady(buf) {
            Ok(n) if n > 0 && n < cap => {
                self.rx.commit(n);
                self.stats.bytes_in += n as u64;
                self.stats.reads += 1;
                *budget -= n;
                (n, ReadEnd::Drained)
            }
            Ok(0) => {
                self.fin_received = true;
                (0, ReadEnd::Eof)
            }
            Ok(n) => {
                // Filled the buffer: there may be more.
                self.rx.commit(n);
                self.stats.bytes_in += n as u64;
                self.stats.reads += 1;
                *budget -= n;
                let (more, end) = self.fill_from(io, budget, false);
                (n + more, end)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, ReadEnd::Drained),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.fill_from(io, budget, false),
            Err(e) => (0, ReadEnd::Failed(e)),
        }
    }

    /// Writes the queued output to `io` until it is empty or the socket is full.
    pub(super) fn flush_to<W: Transport>(&mut self, io: &mut W) -> FlushEnd {
        while !self.tx.is_empty() {
            match io.send(self.tx.as_slice()) {
                Ok(0) => return FlushEnd::Failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.stats.bytes_out += n as u64;
                    self.stats.writes += 1;
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
    #[inline(always)]
    pub(super) fn put<W: Transport>(
        &mut self,
        io: Option<&mut W>,
        data: &[u8],
    ) -> Result<usize, SocketError> {
        let mut written = 0;
        if let Some(io) = io {
            debug_assert!(self.tx.is_empty() && !self.write_blocked);
            written = loop {
                if let Some(n) = self.sent(io.send(data))? {
                    break n;
                }
            };
            if written < data.len() {
                self.write_blocked = true;
            }
        }
        if written == data.len() {
            return Ok(written); // the common case: the kernel took it all
        }
        Ok(written + self.queue(&data[written..]))
    }

    /// Accounts for one send's outcome: `Ok(Some(n))`, the bytes the kernel
    /// took (0: it would block); `Ok(None)`, interrupted, send again; `Err`,
    /// nothing was accepted and the connection failed (the status changes at
    /// the next reactor pass, which fails it with the recorded error).
    #[inline(always)]
    fn sent(&mut self, outcome: io::Result<usize>) -> Result<Option<usize>, SocketError> {
        match outcome {
            Ok(0) => {
                self.write_error = Some(io::ErrorKind::WriteZero);
                Err(SocketError::ConnectionClosed)
            }
            Ok(n) => {
                self.stats.bytes_out += n as u64;
                self.stats.writes += 1;
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Some(0)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => {
                self.write_error = Some(e.kind());
                Err(SocketError::from(e))
            }
        }
    }

    /// Queues as much of `rest` as the queue has room for; returns how much.
    #[inline]
    fn queue(&mut self, rest: &[u8]) -> usize {
        let queued = rest.len().min(self.tx.room());
        self.tx.push(&rest[..queued]);
        queued
    }

    /// The direct write of `put` when nothing is queued ahead: the kernel
    /// taking everything (the common case) costs one comparison; any other
    /// outcome goes to [`put`](Self::put)'s general handling, out of line.
    #[inline(always)]
    pub(super) fn write_direct<W: Transport>(
        &mut self,
        io: &mut W,
        data: &[u8],
    ) -> Result<usize, SocketError> {
        match io.send(data) {
            Ok(n) if n == data.len() && n > 0 => {
                self.stats.bytes_out += n as u64;
                self.stats.writes += 1;
                Ok(n)
            }
            other => self.after_direct_write(other, io, data),
        }
    }

    #[inline(never)]
    fn after_direct_write<W: Transport>(
        &mut self,
        outcome: io::Result<usize>,
        io: &mut W,
        data: &[u8],
    ) -> Result<usize, SocketError> {
        let Some(written) = self.sent(outcome)? else {
            return self.put(Some(io), data); // interrupted: send again
        };
        // Short: the send buffer is full; queue the rest, wait for the edge.
        self.write_blocked = true;
        Ok(written + self.queue(&data[written..]))
    }

    /// [`write_direct`](Self::write_direct) for several slices in one
    /// gathering system call (`total`: their summed length, not zero). What
    /// the kernel refuses is queued, up to the queue's room.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // only TLS gathers its records
    pub(super) fn write_direct_vectored<W: Transport>(
        &mut self,
        io: &mut W,
        bufs: &[io::IoSlice<'_>],
        total: usize,
    ) -> Result<usize, SocketError> {
        debug_assert!(self.tx.is_empty() && !self.write_blocked);
        let written = loop {
            if let Some(n) = self.sent(io.send_vectored(bufs))? {
                break n;
            }
        };
        if written == total {
            return Ok(written);
        }
        // Short: the send buffer is full; queue the rest, wait for the edge.
        self.write_blocked = true;
        Ok(written + self.queue_vectored(bufs, written))
    }

    /// Queues the bytes of `bufs` after the first `skip`, up to the queue's
    /// room; returns how many it queued.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // only TLS gathers its records
    pub(super) fn queue_vectored(&mut self, bufs: &[io::IoSlice<'_>], mut skip: usize) -> usize {
        let mut queued = 0;
        for b in bufs {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            let rest = &b[skip..];
            skip = 0;
            let take = self.queue(rest);
            queued += take;
            if take < rest.len() {
                break;
            }
        }
        queued
    }

    /// Steady traffic: nothing queued, stalled or pending, so a readable
    /// event is served by one read and nothing else.
    #[inline]
    pub(super) fn is_steady(&self) -> bool {
        self.tx.is_empty()
            && self.stall == Stall::No
            && self.rate.is_none()
            && !self.hup
            && self.write_error.is_none()
            && !self.fin_received
    }
}
