//! The application's side: `put_*` and `get_*` on the queues, answering
//! with the work they leave for the next pass. They never change the status.

use super::{Connection, Link};
use crate::SocketError;
use crate::core::drive::{Actions, Transport};
use crate::core::io::Stall;
use crate::core::status::Status;

impl<S: Transport> Connection<S> {
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

    /// `put_data` (`partial == false`: all or nothing) / `put_partial_data`.
    ///
    /// Writes at once when the connection is open with nothing queued ahead,
    /// no writable edge awaited and no coalescing; else queues. All-or-nothing
    /// succeeds iff `data` fits in the queue's free room, whatever the socket would take right now, so the outcome never
    /// depends on kernel buffer sizes. Answers `RESUME` when the next pass has
    /// work: coalesced output to write, or a failed direct write to turn into
    /// `Error` (status changes only in a pass).
    #[inline(always)]
    pub(crate) fn put(
        &mut self,
        data: &[u8],
        partial: bool,
        coalesce: bool,
        acts: &mut Actions,
    ) -> Result<usize, SocketError> {
        // The common case first: open, nothing queued ahead, no writable edge
        // awaited, not coalescing (an open link means `Connected`).
        if !coalesce
            && let Link::Open { sock } = &mut self.link
            && self.io.tx.is_empty()
            && !self.io.write_blocked
        {
            if data.len() > self.io.tx.room() && !partial {
                return Err(SocketError::OutOfBufferMemory);
            }
            if data.is_empty() {
                return Ok(0);
            }
            debug_assert_eq!(self.status, Status::Connected, "an open link is connected");
            let result = self.io.write_direct(sock, data);
            if self.io.write_error.is_some() {
                *acts |= Actions::RESUME;
            }
            return result;
        }
        if !self.can_send() {
            return Err(self.send_refusal());
        }
        if data.is_empty() {
            return Ok(0);
        }
        if !partial && data.len() > self.io.tx.room() {
            return Err(SocketError::OutOfBufferMemory);
        }
        let was_empty = self.io.tx.is_empty();
        let result = self.io.put::<S>(None, data);
        self.after_queueing(coalesce, was_empty, acts);
        result
    }

    /// `put_partial_data` of the concatenation of `bufs`, as [`put`](Self::put)
    /// decides (written at once or queued), in one gathering write when it is
    /// written at once: a layer above that holds its output in several
    /// buffers (TLS records) hands them over without joining them first.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // only TLS gathers its records
    pub(crate) fn put_vectored(
        &mut self,
        bufs: &[std::io::IoSlice<'_>],
        coalesce: bool,
        acts: &mut Actions,
    ) -> Result<usize, SocketError> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if !coalesce
            && let Link::Open { sock } = &mut self.link
            && self.io.tx.is_empty()
            && !self.io.write_blocked
        {
            if total == 0 {
                return Ok(0);
            }
            debug_assert_eq!(self.status, Status::Connected, "an open link is connected");
            let result = self.io.write_direct_vectored(sock, bufs, total);
            if self.io.write_error.is_some() {
                *acts |= Actions::RESUME;
            }
            return result;
        }
        if !self.can_send() {
            return Err(self.send_refusal());
        }
        if total == 0 {
            return Ok(0);
        }
        let was_empty = self.io.tx.is_empty();
        let queued = self.io.queue_vectored(bufs, 0);
        self.after_queueing(coalesce, was_empty, acts);
        Ok(queued)
    }

    /// Why a put is refused once the connection cannot send.
    fn send_refusal(&self) -> SocketError {
        match self.status {
            Status::Error => self.error.unwrap_or(SocketError::ConnectionClosed),
            _ => SocketError::ConnectionClosed,
        }
    }

    /// After a put queued its bytes: when coalescing made the queue
    /// non-empty, one write for everything queued is due at the next pass.
    #[inline]
    fn after_queueing(&self, coalesce: bool, was_empty: bool, acts: &mut Actions) {
        if coalesce
            && was_empty
            && !self.io.tx.is_empty()
            && !self.io.write_blocked
            && matches!(self.link, Link::Open { .. })
        {
            *acts |= Actions::RESUME;
        }
    }

    /// `get_data` (`partial == false`: fills `buf` or takes nothing; returns
    /// its length) / `get_partial_data` (takes what is buffered; `Ok(0)` means
    /// "nothing yet", and an error once nothing more can arrive, so a read loop
    /// always ends). Answers `RESUME` when consuming unblocks work no event
    /// will announce (a read stalled on a full buffer; the FIN rule once the
    /// last byte is taken), `MOVED | EMPTIED` when the buffer emptied.
    #[inline(always)]
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
}
