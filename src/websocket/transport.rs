//! The byte stream a [`WebSocketPeer`](super::WebSocketPeer) runs over, and
//! the `Read`/`Write` adapter tungstenite drives.

use std::io;

use crate::{HandleId, Status, StreamPeer, StreamPeerTcp};

/// A byte stream a [`WebSocketPeer`](super::WebSocketPeer) can run over: a
/// [`StreamPeerTcp`] (`ws://`), or a TLS stream over one (`wss://`).
///
/// Besides [`StreamPeer`] and the non-blocking `io::Read` / `io::Write`
/// (`WouldBlock` when nothing can move now), the WebSocket layer needs the
/// connection's status, how many bytes wait to be sent (its outbound budget),
/// a way to advance the stream's own state machine, and a graceful close.
///
/// # Example
///
/// ```
/// use lunanet::websocket::WebSocketTransport;
/// use lunanet::{Reactor, Status, StreamPeerTcp};
///
/// let reactor = Reactor::new()?;
/// let tcp = StreamPeerTcp::new(&reactor);
/// assert_eq!(WebSocketTransport::status(&tcp), Status::None);
/// assert_eq!(tcp.queued_output(), 0);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub trait WebSocketTransport: StreamPeer + io::Read + io::Write {
    /// The connection's status: `Connecting` until bytes can flow (TCP
    /// connect, TLS handshake), `Connected`, then `None` (closed) or `Error`.
    fn status(&self) -> Status;

    /// Bytes accepted for sending that the operating system has not taken
    /// yet (what `current_outbound_buffered_amount` reports).
    fn queued_output(&self) -> usize;

    /// Advances the stream's own state (a TLS handshake, decrypting buffered
    /// records). Called by `WebSocketPeer::process` before reading. TCP has
    /// nothing to do: its reactor pass already moved the bytes.
    ///
    /// # Errors
    ///
    /// The stream's failure; the WebSocket is then closed uncleanly.
    fn advance(&mut self) -> Result<(), crate::SocketError> {
        Ok(())
    }

    /// Closes gracefully: queued output is still delivered, then the
    /// connection is shut down.
    fn shut_down(&mut self);

    /// The id of the underlying TCP connection in the reactor's ready set.
    fn handle_id(&self) -> Option<HandleId>;

    /// Asks the operating system to send small writes at once (`TCP_NODELAY`).
    ///
    /// # Errors
    ///
    /// As [`StreamPeerTcp::set_no_delay`].
    fn set_no_delay(&mut self, enabled: bool) -> Result<(), crate::SocketError>;
}

impl WebSocketTransport for StreamPeerTcp {
    fn status(&self) -> Status {
        StreamPeerTcp::status(self)
    }

    fn queued_output(&self) -> usize {
        self.pending_write_bytes()
    }

    fn shut_down(&mut self) {
        self.disconnect_from_host();
    }

    fn handle_id(&self) -> Option<HandleId> {
        self.id()
    }

    fn set_no_delay(&mut self, enabled: bool) -> Result<(), crate::SocketError> {
        StreamPeerTcp::set_no_delay(self, enabled)
    }
}

/// `wss://`: WebSocket over TLS over TCP (feature `tls`). TLS's own state
/// machine advances in [`advance`](WebSocketTransport::advance)
/// (`StreamPeerTls::process`).
#[cfg(feature = "tls")]
impl WebSocketTransport for crate::tls::StreamPeerTls<StreamPeerTcp> {
    fn status(&self) -> Status {
        use crate::tls::TlsStatus;
        match crate::tls::StreamPeerTls::status(self) {
            TlsStatus::Handshaking => Status::Connecting,
            TlsStatus::Connected => Status::Connected,
            TlsStatus::Disconnected => Status::None,
            TlsStatus::Error | TlsStatus::ErrorHostnameMismatch => Status::Error,
        }
    }

    fn queued_output(&self) -> usize {
        // Encrypted bytes waiting in the TCP queue.
        self.get_stream()
            .map_or(0, StreamPeerTcp::pending_write_bytes)
    }

    fn advance(&mut self) -> Result<(), crate::SocketError> {
        self.process()
    }

    fn shut_down(&mut self) {
        self.disconnect_from_stream();
    }

    fn handle_id(&self) -> Option<HandleId> {
        self.id()
    }

    fn set_no_delay(&mut self, enabled: bool) -> Result<(), crate::SocketError> {
        match self.get_stream_mut() {
            Some(tcp) => tcp.set_no_delay(enabled),
            None => Err(crate::SocketError::SocketInvalid),
        }
    }
}

/// What tungstenite reads from and writes to: the transport, with two
/// guarantees tungstenite depends on.
///
/// - `write` never returns `Ok(0)` for a non-empty buffer: tungstenite takes
///   `Ok(0)` for a reset connection (`frame/mod.rs`, `write_out_buffer`),
///   while a full TLS or TCP queue only means "later". It becomes
///   `WouldBlock`, and tungstenite keeps the frame buffered.
/// - `flush` always succeeds: bytes handed to the transport are queued in
///   lunanet's bounded buffers and delivered by the reactor; waiting for the
///   kernel to take them would turn every message into `WouldBlock`.
pub(crate) struct Io<'a, S>(pub(crate) &'a mut S);

impl<S: io::Read> io::Read for Io<'_, S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: io::Write> io::Write for Io<'_, S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.write(buf) {
            Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            other => other,
        }
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A writer that reports a full buffer the way rustls's `Writer` does.
    struct ZeroWriter;
    impl io::Write for ZeroWriter {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    #[test]
    fn full_writer_is_would_block_never_ok_zero() {
        let mut w = ZeroWriter;
        let mut io = Io(&mut w);
        assert_eq!(
            io.write(b"x").map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        assert_eq!(io.write(b"").map_err(|e| e.kind()), Ok(0));
        assert!(io.flush().is_ok());
    }
}
