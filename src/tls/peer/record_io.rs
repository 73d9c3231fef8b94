//! The record I/O of [`StreamPeerTls`]: moving ciphertext between rustls and
//! the transport, decrypting into the bounded input buffer, and the
//! `StreamPeer` / `Read` / `Write` impls built on it.

use std::cell::RefCell;
use std::io::{self, BufRead, Read, Write};

use super::*;

impl<S: TlsTransport> StreamPeerTls<S> {
    pub(super) fn is_failed(&self) -> bool {
        matches!(
            self.status,
            TlsStatus::Error | TlsStatus::ErrorHostnameMismatch
        )
    }

    pub(super) fn fail(&mut self, error: TlsError) {
        log::debug!("TLS peer failed: {error}");
        self.status = if matches!(error, TlsError::HostnameMismatch(_)) {
            TlsStatus::ErrorHostnameMismatch
        } else {
            TlsStatus::Error
        };
        self.error = Some(error);
        self.input_done = true;
        // rustls queued an alert for protocol errors: send it (best effort).
        self.flush_tls();
    }

    /// Hands rustls' pending records to the transport until it has none or
    /// the transport refuses more. Returns false if the transport failed.
    ///
    /// Outside `Connected` (handshake, closing, failed) what rustls holds is
    /// the session's own (flights, alerts, close_notify): it goes through
    /// [`TlsTransport::write_session`]. In `Connected` it is the
    /// application's data, written as the application's own puts are.
    pub(super) fn flush_tls(&mut self) -> bool {
        let session = self.status != TlsStatus::Connected || self.closing;
        self.flush_records(session)
    }

    /// [`flush_tls`](Self::flush_tls), saying whether the records are the
    /// session's own (see [`TlsTransport::write_session`]).
    pub(super) fn flush_records(&mut self, session: bool) -> bool {
        let (Some(conn), Some(stream)) = (self.conn.get_mut().as_mut(), self.stream.as_mut())
        else {
            return true;
        };
        while conn.wants_write() {
            match conn.write_tls(&mut Gather { stream, session }) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let err = SocketError::from(e);
                    if !matches!(
                        self.status,
                        TlsStatus::Error | TlsStatus::ErrorHostnameMismatch
                    ) && !self.closing
                    {
                        self.status = TlsStatus::Error;
                        self.error = Some(TlsError::Transport(err));
                        self.input_done = true;
                    }
                    return false;
                }
            }
        }
        true
    }

    pub(super) fn finish_closing(&mut self) {
        let ok = self.flush_tls();
        let drained = self
            .conn
            .get_mut()
            .as_ref()
            .is_none_or(|c| !c.wants_write());
        if !ok || drained {
            // Dropping the transport closes it gracefully (TCP flushes its
            // own queue within its linger timeout, then sends FIN).
            self.stream = None;
            *self.conn.get_mut() = None;
            self.closing = false;
        }
    }

    /// The engine: see [`process`](Self::process). Ciphertext is taken from
    /// the transport only while rustls holds no undelivered plaintext: at most
    /// one record is decrypted ahead of the application, the rest waits in
    /// the transport's bounded buffer (and then in the kernel). `get_*` decrypt
    /// more as they go, straight into the caller's buffer.
    pub(super) fn pump(&mut self) {
        if self.closing {
            self.finish_closing();
            return;
        }
        if self.stream.is_none() || self.is_failed() {
            return;
        }
        if self.status == TlsStatus::Handshaking
            && self.handshake_deadline.is_some_and(|d| Instant::now() >= d)
        {
            self.fail(TlsError::HandshakeTimeout(self.handshake_timeout));
            return;
        }
        while self.tls_plain.get() == 0 && self.read_more() {}
        self.settle();
    }

    /// One step: hands pending records to the transport, then reads what the
    /// transport holds into rustls and processes it. Returns whether it made
    /// progress (so callers loop until it does not).
    pub(super) fn read_more(&mut self) -> bool {
        if self.eof || self.is_failed() || !self.flush_tls() {
            return false;
        }
        let (Some(conn), Some(stream)) = (self.conn.get_mut().as_mut(), self.stream.as_mut())
        else {
            return false;
        };
        if !conn.wants_read() {
            // Close_notify seen, plaintext pending, or handshake output still
            // queued (the transport is full): nothing to read now.
            return false;
        }
        if self.first_read {
            let mut head = [0u8; 16];
            let n = stream.peek_data(&mut head);
            if n > 0 {
                self.first_read = false;
                // Every TLS connection starts with a handshake record
                // (content type 22); a client may also get an alert (21).
                let ok = head[0] == 22 || (head[0] == 21 && conn.is_handshaking());
                if !ok {
                    self.fail(TlsError::NotTls(head[..n].to_vec()));
                    return false;
                }
            }
        }
        // Nothing buffered and more may come: skip `read_tls`, which would
        // only be told WouldBlock (and may resize its buffer on the way).
        // `short_read_error` is O(1) for TCP and says Busy until the end.
        if stream.available_bytes() == 0 && stream.short_read_error() == SocketError::Busy {
            return false;
        }
        let read = loop {
            match conn.read_tls(stream) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(n) => {
                self.eof = n == 0;
                match conn.process_new_packets() {
                    Ok(io) => {
                        self.close_notify_seen |= io.peer_has_closed();
                        self.tls_plain.set(io.plaintext_bytes_to_read());
                    }
                    Err(e) => {
                        self.fail(TlsError::from_rustls(e));
                        return false;
                    }
                }
                // Handshake replies must go out before rustls wants more.
                // Whatever processing input queued (flights, the tickets
                // sent as the handshake completes, a key update's answer)
                // is the session's own: the application's reply to the same
                // input must still be written at once.
                self.flush_records(true);
                n > 0
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                // The transport broke (reset, refused, timed out...).
                self.fail(TlsError::Transport(SocketError::from(e)));
                false
            }
        }
    }

    /// Status transitions after reading: handshake done, clean close, end of
    /// the transport.
    pub(super) fn settle(&mut self) {
        if self.is_failed() || self.closing || !self.flush_tls() {
            return;
        }
        let Some(conn) = self.conn.get_mut().as_mut() else {
            return;
        };
        if self.status == TlsStatus::Handshaking && !conn.is_handshaking() {
            self.status = TlsStatus::Connected;
            self.queued_early = 0;
            self.handshake_deadline = None;
        }
        if self.close_notify_seen {
            // A clean close_notify: answer it, keep what was decrypted.
            self.input_done = true;
            if self.status != TlsStatus::Disconnected {
                self.status = TlsStatus::Disconnected;
                conn.send_close_notify();
                self.flush_tls();
            }
        } else if self.eof {
            if self.status == TlsStatus::Handshaking {
                self.fail(TlsError::ClosedDuringHandshake);
            } else {
                self.fail(TlsError::Truncated);
            }
        }
    }

    /// Moves plaintext held by rustls into `rx` until `rx` holds `want`
    /// bytes (or rustls has no more, or `rx` is at the read limit). Works
    /// through `&self` so that `peek_data` sees everything `available_bytes`
    /// counts.
    pub(super) fn fill_rx(&self, want: usize) {
        if self.tls_plain.get() == 0 {
            return;
        }
        let mut conn = self.conn.borrow_mut();
        let Some(conn) = conn.as_mut() else {
            return;
        };
        let mut rx = self.rx.borrow_mut();
        let mut reader = conn.reader();
        while rx.len() < want.min(self.read_limit) {
            let chunk = match reader.fill_buf() {
                Ok(chunk) if !chunk.is_empty() => chunk,
                // Empty chunk (clean end), WouldBlock (none yet),
                // UnexpectedEof (truncation, reported by `settle`).
                _ => {
                    self.tls_plain.set(0);
                    break;
                }
            };
            let take = chunk.len().min(self.read_limit - rx.len());
            rx.push(&chunk[..take]);
            reader.consume(take);
            self.tls_plain.set(self.tls_plain.get() - take);
        }
    }

    /// Reads plaintext held by rustls straight into `buf`.
    pub(super) fn read_plain(&mut self, buf: &mut [u8]) -> usize {
        let Some(conn) = self.conn.get_mut().as_mut() else {
            return 0;
        };
        let n = conn.reader().read(buf).unwrap_or(0);
        // Never loop on a stale count: no bytes means rustls holds none.
        let left = if n == 0 {
            0
        } else {
            self.tls_plain.get().saturating_sub(n)
        };
        self.tls_plain.set(left);
        n
    }

    /// The error a `get_*` that cannot be served gets.
    pub(super) fn short_read(&self) -> SocketError {
        if self.is_failed() {
            if let Some(TlsError::Truncated) = self.error {
                return SocketError::FileEof;
            }
            return self
                .error
                .as_ref()
                .map_or(SocketError::ConnectionClosed, TlsError::socket_error);
        }
        match self.status {
            TlsStatus::Handshaking | TlsStatus::Connected => SocketError::Busy,
            TlsStatus::Disconnected if self.input_done && self.stream.is_some() => {
                SocketError::FileEof
            }
            _ => SocketError::SocketInvalid,
        }
    }

    pub(super) fn get(&mut self, buf: &mut [u8], partial: bool) -> Result<usize, SocketError> {
        if !partial {
            if buf.len() > self.read_limit {
                return Err(SocketError::OutOfBufferMemory);
            }
            // Gather `buf.len()` bytes in `rx` (decrypting what the transport
            // already holds, no syscall), or fail taking nothing.
            loop {
                self.fill_rx(buf.len());
                if self.rx.get_mut().len() >= buf.len() || !self.read_more() {
                    break;
                }
            }
            self.settle();
            let rx = self.rx.get_mut();
            if rx.len() < buf.len() {
                return Err(self.short_read());
            }
            rx.take(buf);
            return Ok(buf.len());
        }
        // Partial: what `rx` holds first, then plaintext straight from rustls
        // into `buf` (no intermediate copy), decrypting more as needed.
        let mut n = self.rx.get_mut().take_some(buf);
        while n < buf.len() {
            if self.tls_plain.get() > 0 {
                n += self.read_plain(&mut buf[n..]);
            } else if !self.read_more() {
                break;
            }
        }
        if n == 0 && !buf.is_empty() {
            self.settle();
            return match self.short_read() {
                SocketError::Busy => Ok(0),
                e => Err(e),
            };
        }
        // Decrypt the next record the transport holds, so `available_bytes`
        // shows it without a new readiness event.
        self.pump();
        Ok(n)
    }

    pub(super) fn put(&mut self, data: &[u8], partial: bool) -> Result<usize, SocketError> {
        match self.status {
            TlsStatus::Handshaking | TlsStatus::Connected => {}
            TlsStatus::Disconnected if self.stream.is_some() && !self.closing => {
                return Err(SocketError::ConnectionClosed);
            }
            TlsStatus::Disconnected => return Err(SocketError::SocketInvalid),
            _ => {
                return Err(self
                    .error
                    .as_ref()
                    .map_or(SocketError::ConnectionClosed, TlsError::socket_error));
            }
        }
        if data.is_empty() {
            return Ok(0);
        }
        if !self.flush_tls() {
            return Err(self
                .error
                .as_ref()
                .map_or(SocketError::ConnectionClosed, TlsError::socket_error));
        }
        let Some(conn) = self.conn.get_mut().as_mut() else {
            return Err(SocketError::SocketInvalid);
        };
        let room = if conn.is_handshaking() {
            self.write_limit.saturating_sub(self.queued_early)
        } else if conn.wants_write() {
            // The transport's queue is full: take nothing until it drains, so
            // the encrypted backlog stays bounded.
            0
        } else {
            self.write_limit
        };
        let take = if partial {
            data.len().min(room)
        } else if data.len() <= room {
            data.len()
        } else {
            return Err(SocketError::OutOfBufferMemory);
        };
        if take == 0 {
            return Ok(0);
        }
        // No rustls limit is set, so the writer takes everything.
        let written = match conn.writer().write(&data[..take]) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("rustls refused plaintext: {e}");
                return Err(SocketError::ConnectionClosed);
            }
        };
        if conn.is_handshaking() {
            self.queued_early += written;
        }
        self.flush_tls();
        Ok(written)
    }
}

/// Most bytes [`join_and_write`] joins into one transport write.
const GATHER_MAX: usize = 64 * 1024;

thread_local! {
    /// One scratch buffer per thread, shared by every TLS peer on it, so
    /// that idle peers hold none.
    static GATHER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The default [`TlsTransport::write_gathered`]: joins up to [`GATHER_MAX`]
/// bytes of `bufs` into one write (a memory copy is cheaper than a system
/// call) for transports that write one slice per call.
pub(super) fn join_and_write<S: TlsTransport + ?Sized>(
    stream: &mut S,
    bufs: &[io::IoSlice<'_>],
    session: bool,
) -> io::Result<usize> {
    if bufs.len() == 1 || bufs[0].len() >= GATHER_MAX {
        return write_one(stream, &bufs[0], session);
    }
    GATHER.with(|g| {
        let mut g = g.borrow_mut();
        g.clear();
        for b in bufs {
            let room = GATHER_MAX - g.len();
            if room == 0 {
                break;
            }
            g.extend_from_slice(&b[..b.len().min(room)]);
        }
        write_one(stream, &g, session)
    })
}

/// One record (or joined records) to the transport: the session's own
/// ([`TlsTransport::write_session`]) or the application's (`write`).
fn write_one<S: TlsTransport + ?Sized>(
    stream: &mut S,
    buf: &[u8],
    session: bool,
) -> io::Result<usize> {
    if session {
        stream.write_session(buf)
    } else {
        stream.write(buf)
    }
}

/// rustls hands its queued records to `write_vectored`; transports such as
/// `StreamPeerTcp` write one slice per `write`, which would cost one
/// `send(2)` per 16 KiB record. Consecutive records go to
/// [`TlsTransport::write_gathered`] instead: one gathering write for
/// `StreamPeerTcp`, a joined one for other transports.
/// `session`: the records are the session's own (see
/// [`TlsTransport::write_session`]).
struct Gather<'a, S> {
    stream: &'a mut S,
    session: bool,
}

impl<S: TlsTransport> io::Write for Gather<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_one(self.stream, buf, self.session)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else {
            return Ok(0);
        };
        if bufs.len() - first == 1 {
            return write_one(self.stream, &bufs[first], self.session);
        }
        self.stream.write_gathered(&bufs[first..], self.session)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Decrypted bytes not yet taken: `buf[start..]`.
#[derive(Default)]
pub(super) struct Rx {
    buf: Vec<u8>,
    start: usize,
}

impl Rx {
    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.buf.len() + data.len() > self.buf.capacity() {
            // Reuse the consumed front instead of growing.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    pub(super) fn peek(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        n
    }

    /// Takes exactly `out.len()` bytes (the caller checked there are enough).
    pub(super) fn take(&mut self, out: &mut [u8]) {
        let n = self.take_some(out);
        debug_assert_eq!(n, out.len());
    }

    pub(super) fn take_some(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek(out);
        self.start += n;
        if self.start == self.buf.len() {
            self.start = 0;
            if self.buf.capacity() > KEEP_RX_CAPACITY {
                // Idle peers should hold little memory.
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
        }
        n
    }
}

impl<S: TlsTransport> StreamPeer for StreamPeerTls<S> {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        self.put(data, false).map(|_| ())
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        self.put(data, true)
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        self.get(buf, false).map(|_| ())
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        self.get(buf, true)
    }
    fn available_bytes(&self) -> usize {
        StreamPeerTls::available_bytes(self)
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        self.fill_rx(buf.len());
        self.rx.borrow().peek(buf)
    }
    fn godot_version(&self) -> crate::variant::GodotVersion {
        // Stored by the transport (a StreamPeerTcp keeps it), so it survives
        // into `get_stream` and back.
        self.stream
            .as_ref()
            .map_or(crate::variant::GodotVersion::V4, |s| s.godot_version())
    }
    fn set_godot_version(&mut self, version: crate::variant::GodotVersion) {
        if let Some(s) = self.stream.as_mut() {
            s.set_godot_version(version);
        }
    }
    fn is_big_endian(&self) -> bool {
        self.big_endian
    }
    fn set_big_endian(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
    }
    fn max_buffered_bytes(&self) -> usize {
        self.read_limit
    }
    fn short_read_error(&mut self) -> SocketError {
        self.pump();
        self.short_read()
    }
}

/// Non-blocking `Read` of the decrypted stream: `WouldBlock` while nothing is
/// decrypted yet, `Ok(0)` after a clean close_notify once everything was read,
/// an error (`UnexpectedEof` for a close without close_notify) otherwise.
impl<S: TlsTransport> io::Read for StreamPeerTls<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.get(buf, true) {
            Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(SocketError::FileEof) if !matches!(self.error, Some(TlsError::Truncated)) => Ok(0),
            Err(SocketError::FileEof) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                TlsError::Truncated.to_string(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// Non-blocking `Write`: encrypts what the limits allow, `WouldBlock` when
/// the transport's queue is full. `flush` hands pending records to the
/// transport and succeeds when rustls holds none.
impl<S: TlsTransport> io::Write for StreamPeerTls<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.put(buf, true) {
            Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.flush_tls() {
            return Err(SocketError::ConnectionClosed.into());
        }
        match self.conn.get_mut() {
            Some(c) if c.wants_write() => Err(io::ErrorKind::WouldBlock.into()),
            _ => Ok(()),
        }
    }
}
