//! [`StreamPeerTls`]: a rustls session driven over any lunanet byte stream
//! (normally a [`StreamPeerTcp`]), with Godot 4's `StreamPeerTLS` shape.
//!
//! The TLS layer owns no socket. Ciphertext moves between rustls and the
//! transport's own buffers through the transport's non-blocking `Read` /
//! `Write` (for TCP: the reactor already read the socket; `write` hands bytes
//! to the kernel at once or queues them). So one reactor pass serves TCP and
//! TLS peers alike, and the TLS work itself is a few memory copies plus the
//! crypto, done when the peer is [`poll`](StreamPeerTls::poll)ed,
//! [`process`](StreamPeerTls::process)ed or read.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConnection, Connection, ServerConnection};

use super::options::{Role, TlsOptions};
use crate::{HandleId, SocketError, StreamPeer, StreamPeerTcp};

mod record_io;

use record_io::Rx;

/// Freed rather than kept when the decrypted-input buffer empties and its
/// allocation is larger than this, so idle peers hold little memory.
const KEEP_RX_CAPACITY: usize = 4 * 1024;

/// The byte stream under a TLS session: any [`StreamPeer`] with non-blocking
/// `Read`/`Write` (`WouldBlock` when nothing moves, `Ok(0)` at the end).
///
/// [`poll_transport`](Self::poll_transport) is what
/// [`StreamPeerTls::poll`] runs first; for a [`StreamPeerTcp`] it is a
/// non-blocking reactor pass, Godot style. Streams with nothing to drive keep
/// the default (nothing).
pub trait TlsTransport: StreamPeer + io::Read + io::Write {
    /// Moves the transport's own bytes (a reactor pass for TCP).
    ///
    /// # Errors
    /// Whatever the transport reports; the TLS peer passes it on.
    fn poll_transport(&mut self) -> Result<(), SocketError> {
        Ok(())
    }

    /// Writes records the TLS session sends on its own, not on the
    /// application's behalf: handshake flights, session tickets, alerts,
    /// close_notify. Same contract as [`io::Write::write`], which is the
    /// default. A transport that holds writes back to coalesce them (as
    /// [`StreamPeerTcp`] does, see `Config::coalesce_writes`) should send
    /// these at once, since the remote waits for them, and without counting
    /// them as the application's reply.
    ///
    /// # Errors
    /// As [`io::Write::write`].
    fn write_session(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write(buf)
    }

    /// Writes the concatenation of `bufs` (consecutive records) as one
    /// [`write`](io::Write::write), or one
    /// [`write_session`](Self::write_session) when `session`. The default
    /// joins up to 64 KiB of them in a scratch buffer first; a transport
    /// that can write several buffers at once overrides it.
    #[doc(hidden)]
    fn write_gathered(&mut self, bufs: &[io::IoSlice<'_>], session: bool) -> io::Result<usize> {
        record_io::join_and_write(self, bufs, session)
    }
}

impl TlsTransport for StreamPeerTcp {
    fn poll_transport(&mut self) -> Result<(), SocketError> {
        // Only the poller failing is an error here; a broken peer shows up
        // through its Read/Write.
        self.reactor().poll(Some(Duration::ZERO)).map(|_| ())
    }

    /// Written at once when nothing is queued ahead, leaving the pass's
    /// "reply written at once" allowance to the application: a server's
    /// flight goes out in the pass that read the ClientHello, and the
    /// session tickets sent when the handshake completes do not push the
    /// application's first reply to the next pass.
    fn write_session(&mut self, buf: &[u8]) -> io::Result<usize> {
        StreamPeerTcp::write_session(self, buf)
    }

    /// One gathering `sendmsg` when written at once, one copy into the write
    /// queue otherwise (no scratch buffer in between).
    fn write_gathered(&mut self, bufs: &[io::IoSlice<'_>], session: bool) -> io::Result<usize> {
        StreamPeerTcp::write_gathered(self, bufs, session)
    }
}

impl<S: TlsTransport> TlsTransport for StreamPeerTls<S> {
    fn poll_transport(&mut self) -> Result<(), SocketError> {
        self.poll()
    }
}

/// The state of a TLS peer (Godot's `StreamPeerTLS.Status`, same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsStatus {
    /// No session: never started, closed with `disconnect_from_stream`, or the
    /// remote closed cleanly (close_notify); data it sent before that can
    /// still be read.
    Disconnected,
    /// The handshake is in progress; `put_*` queues (up to the write limit).
    Handshaking,
    /// The session is established.
    Connected,
    /// The session failed; [`StreamPeerTls::tls_error`] says why.
    Error,
    /// The server's certificate is not valid for the name the client asked
    /// for (Godot's `STATUS_ERROR_HOSTNAME_MISMATCH`).
    ErrorHostnameMismatch,
}

/// Why a TLS peer failed or could not start. The `Display` text names the
/// cause in words a server log can show as is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsError {
    /// `connect_to_stream` got server options, or `accept_stream` client ones.
    WrongOptions(&'static str),
    /// `common_name` is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// The server's certificate is not valid for the requested name.
    HostnameMismatch(rustls::Error),
    /// The peer's certificate was refused: untrusted issuer, expired, not
    /// yet valid, revoked, or malformed.
    Certificate(rustls::Error),
    /// The first bytes from the peer are not a TLS record: it speaks plaintext
    /// (HTTP, a game protocol...) to a TLS port. Holds those first bytes.
    NotTls(Vec<u8>),
    /// Any other TLS failure: an alert from the peer, a malformed or
    /// unexpected message, no common protocol version or cipher suite.
    Protocol(rustls::Error),
    /// The handshake took longer than the options' handshake timeout.
    HandshakeTimeout(Duration),
    /// The transport reached its end before the handshake completed.
    ClosedDuringHandshake,
    /// The transport reached its end without a TLS close_notify: the data may
    /// have been cut short by an attacker or a crash. What was decrypted
    /// before stays readable.
    Truncated,
    /// The transport failed (connection refused, reset...).
    Transport(SocketError),
}

impl TlsError {
    /// The lunanet error that `StreamPeer` methods report for this failure:
    /// handshake failures are `ConnectFailed`, a broken session is
    /// `ConnectionClosed`, a transport error is itself.
    pub fn socket_error(&self) -> SocketError {
        match self {
            TlsError::WrongOptions(_) | TlsError::InvalidServerName(_) => {
                SocketError::InvalidParameter
            }
            TlsError::HostnameMismatch(_)
            | TlsError::Certificate(_)
            | TlsError::NotTls(_)
            | TlsError::HandshakeTimeout(_)
            | TlsError::ClosedDuringHandshake => SocketError::ConnectFailed,
            TlsError::Protocol(_) | TlsError::Truncated => SocketError::ConnectionClosed,
            TlsError::Transport(e) => *e,
        }
    }

    /// The rustls error behind this one, if any.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        match self {
            TlsError::HostnameMismatch(e) | TlsError::Certificate(e) | TlsError::Protocol(e) => {
                Some(e)
            }
            _ => None,
        }
    }

    fn from_rustls(e: rustls::Error) -> TlsError {
        match e {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsError::HostnameMismatch(e),
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TlsError::Certificate(e)
            }
            e => TlsError::Protocol(e),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::WrongOptions(why) => write!(f, "wrong TLS options: {why}"),
            TlsError::InvalidServerName(name) => {
                write!(f, "{name:?} is not a valid DNS name or IP address for TLS")
            }
            TlsError::HostnameMismatch(e) => {
                write!(f, "server certificate does not match the hostname: {e}")
            }
            TlsError::Certificate(e) => write!(f, "certificate refused: {e}"),
            TlsError::NotTls(head) => write!(
                f,
                "the peer does not speak TLS (it sent {:?} first)",
                String::from_utf8_lossy(head)
            ),
            TlsError::Protocol(e) => write!(f, "TLS error: {e}"),
            TlsError::HandshakeTimeout(t) => {
                write!(f, "TLS handshake not completed within {t:?}")
            }
            TlsError::ClosedDuringHandshake => {
                f.write_str("the connection closed during the TLS handshake")
            }
            TlsError::Truncated => f.write_str(
                "the connection closed without a TLS close_notify (data may be truncated)",
            ),
            TlsError::Transport(e) => write!(f, "transport failed: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A TLS session over a byte stream (Godot 4's `StreamPeerTLS`), client or
/// server, driven without threads: rustls 0.23 (ring, TLS 1.2 and 1.3) over
/// the transport's buffers.
///
/// # Call contract
/// - Nothing blocks. [`poll`](Self::poll) runs a reactor pass (through the
///   transport) and then [`process`](Self::process), which moves ciphertext
///   between rustls and the transport, advances the handshake and decrypts
///   into a bounded buffer. In a ready-set loop, poll the reactor once and
///   call `process` on the ready peers (and every tick on handshaking ones,
///   so the handshake timeout is seen).
/// - `get_*` take decrypted bytes and decrypt more already-received records
///   on the way (straight into the caller's buffer for `get_partial_data` and
///   `Read`); `put_*` encrypt and hand the records to the transport at once.
/// - At most one TLS record is decrypted ahead of the application; the rest
///   waits in the transport's bounded buffer, so a peer that is not read is
///   not read from the network either (backpressure). As with edge-triggered
///   readiness, on each ready event read until `get_partial_data` returns 0:
///   records already received do not produce a new event.
/// - `put_*` while `Handshaking` queue (up to the write limit) and are sent
///   once the session is up, as TCP does while connecting.
/// - `Read` / `Write` are non-blocking: `WouldBlock` when nothing moves,
///   `Ok(0)` only at a clean end (close_notify).
///
/// ```
/// use std::time::{Duration, Instant};
/// use lunanet::tls::{StreamPeerTls, TlsOptions, TlsStatus};
/// use lunanet::{Reactor, StreamPeer, StreamPeerTcp, TcpServer};
///
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
/// let server_options = TlsOptions::server(cert_pem.as_bytes(), key_pem.as_bytes())?;
/// let client_options = TlsOptions::client_with_roots(cert_pem.as_bytes())?;
///
/// let reactor = Reactor::new()?;
/// let mut server = TcpServer::new(&reactor);
/// server.listen(0, "127.0.0.1")?;
/// let mut tcp = StreamPeerTcp::new(&reactor);
/// tcp.connect_to_host("127.0.0.1", server.local_port())?;
/// let mut client = StreamPeerTls::connect_to_stream(tcp, "localhost", client_options)?;
/// client.put_utf8_string("hello")?; // queued until the handshake completes
///
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let mut accepted = None;
/// while Instant::now() < deadline {
///     client.poll()?;
///     if let Some(tcp) = server.take_connection() {
///         accepted = Some(StreamPeerTls::accept_stream(tcp, &server_options)?);
///     }
///     if let Some(peer) = accepted.as_mut() {
///         peer.process()?;
///         if let Ok(s) = peer.get_utf8_string() {
///             assert_eq!(s, "hello");
///             assert_eq!(peer.status(), TlsStatus::Connected);
///             break;
///         }
///     }
/// }
/// assert_eq!(client.status(), TlsStatus::Connected);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StreamPeerTls<S: TlsTransport = StreamPeerTcp> {
    stream: Option<S>,
    /// In a `RefCell` so that `peek_data(&self)` can move decrypted bytes
    /// into `rx`; every other access goes through `get_mut` (no runtime cost).
    conn: RefCell<Option<Connection>>,
    status: TlsStatus,
    error: Option<TlsError>,
    /// Plaintext moved out of rustls but not taken yet (only when a
    /// `get_data` / `peek_data` needed more than one record's worth).
    rx: RefCell<Rx>,
    /// Plaintext rustls holds, not yet moved to `rx` or taken.
    tls_plain: Cell<usize>,
    /// The transport reached its end.
    eof: bool,
    read_limit: usize,
    write_limit: usize,
    handshake_timeout: Duration,
    handshake_deadline: Option<Instant>,
    /// Plaintext accepted while handshaking (rustls holds it until the
    /// session is up); bounded by `write_limit`.
    queued_early: usize,
    /// No more plaintext will arrive (close_notify or end of transport).
    input_done: bool,
    /// `disconnect_from_stream` ran but the transport could not take the
    /// close_notify (and what precedes it) yet: keep flushing, then drop it.
    closing: bool,
    /// Nothing has been read from the transport yet (to recognise plaintext
    /// sent to a TLS port from its first bytes).
    first_read: bool,
    /// The peer's close_notify was received (a clean end of its data).
    close_notify_seen: bool,
    big_endian: bool,
}

impl<S: TlsTransport> StreamPeerTls<S> {
    fn start(stream: S, conn: Connection, options: &TlsOptions) -> StreamPeerTls<S> {
        let mut conn = conn;
        // lunanet bounds what rustls holds itself (see `put`), because a
        // rustls limit would make `put_data` of a message larger than it
        // impossible even with an idle connection.
        conn.set_buffer_limit(None);
        let mut peer = StreamPeerTls {
            stream: Some(stream),
            conn: RefCell::new(Some(conn)),
            status: TlsStatus::Handshaking,
            error: None,
            rx: RefCell::new(Rx::default()),
            tls_plain: Cell::new(0),
            eof: false,
            read_limit: options.read_limit,
            write_limit: options.write_limit,
            handshake_timeout: options.handshake_timeout,
            handshake_deadline: Instant::now().checked_add(options.handshake_timeout),
            queued_early: 0,
            input_done: false,
            closing: false,
            first_read: true,
            close_notify_seen: false,
            big_endian: false,
        };
        // A client's ClientHello goes out now (queued if TCP is connecting).
        peer.pump();
        peer
    }

    /// Starts a client session over `stream` (connected or still connecting),
    /// checking the server's certificate against `options` and, unless the
    /// options are [`client_unsafe`](TlsOptions::client_unsafe), against
    /// `common_name` (a DNS name or an IP address, also sent as SNI for
    /// names). The peer is `Handshaking`; [`poll`](Self::poll) it.
    ///
    /// # Errors
    /// [`TlsError::WrongOptions`] for server options,
    /// [`TlsError::InvalidServerName`] for an unusable `common_name`; the
    /// stream is dropped (closed gracefully).
    pub fn connect_to_stream(
        stream: S,
        common_name: &str,
        options: TlsOptions,
    ) -> Result<StreamPeerTls<S>, TlsError> {
        let Role::Client(config) = &options.role else {
            return Err(TlsError::WrongOptions(
                "connect_to_stream needs client options (TlsOptions::client...)",
            ));
        };
        let name = ServerName::try_from(common_name.to_owned())
            .map_err(|_| TlsError::InvalidServerName(common_name.to_owned()))?;
        let conn = ClientConnection::new(config.clone(), name).map_err(TlsError::from_rustls)?;
        Ok(Self::start(stream, conn.into(), &options))
    }

    /// Starts a server session over an accepted `stream` (for example from
    /// [`TcpServer::take_connection`](crate::TcpServer::take_connection)),
    /// presenting the certificate of `options`. The peer is `Handshaking`.
    ///
    /// # Errors
    /// [`TlsError::WrongOptions`] for client options.
    pub fn accept_stream(stream: S, options: &TlsOptions) -> Result<StreamPeerTls<S>, TlsError> {
        let Role::Server(config) = &options.role else {
            return Err(TlsError::WrongOptions(
                "accept_stream needs server options (TlsOptions::server)",
            ));
        };
        let conn = ServerConnection::new(config.clone()).map_err(TlsError::from_rustls)?;
        Ok(Self::start(stream, conn.into(), options))
    }

    /// Godot's `poll()`: runs the transport's own pass (for TCP, a
    /// non-blocking pass of the whole reactor), then [`process`](Self::process).
    ///
    /// # Errors
    /// The peer's error while it is in `Error` / `ErrorHostnameMismatch`
    /// (see [`TlsError::socket_error`]), or the transport's poll error.
    pub fn poll(&mut self) -> Result<(), SocketError> {
        if let Some(stream) = self.stream.as_mut() {
            stream.poll_transport()?;
        }
        self.process()
    }

    /// Moves bytes between rustls and the transport without asking the
    /// transport to do I/O of its own: takes the ciphertext the transport
    /// already received (until it has none, or the decrypted buffer is
    /// full), advances the handshake, decrypts, hands pending records to the
    /// transport, checks the handshake timeout. Cheap when nothing changed.
    ///
    /// # Errors
    /// As [`poll`](Self::poll), without the transport's poll.
    pub fn process(&mut self) -> Result<(), SocketError> {
        self.pump();
        match &self.error {
            Some(e) if self.is_failed() => Err(e.socket_error()),
            _ => Ok(()),
        }
    }

    /// The session's status. No side effects.
    pub fn status(&self) -> TlsStatus {
        self.status
    }

    /// Why the peer is in `Error` / `ErrorHostnameMismatch` (`None` otherwise).
    pub fn tls_error(&self) -> Option<&TlsError> {
        if self.is_failed() {
            self.error.as_ref()
        } else {
            None
        }
    }

    /// The transport (Godot's `get_stream()`); `None` after
    /// [`disconnect_from_stream`](Self::disconnect_from_stream) let go of it.
    pub fn get_stream(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// The transport, mutably (for its own settings; writing to it directly
    /// would corrupt the TLS stream).
    pub fn get_stream_mut(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// Ends the session gracefully (Godot's `disconnect_from_stream()`): queues
    /// a TLS close_notify behind everything already accepted, hands it all to
    /// the transport, then drops the transport, which (for TCP) delivers its
    /// queue and closes with a FIN. Unread input is discarded; the status is
    /// `Disconnected` at once.
    ///
    /// If the transport's queue is full, the rest is handed over by later
    /// [`poll`](Self::poll)/[`process`](Self::process) calls
    /// ([`is_closing`](Self::is_closing) is true until then).
    pub fn disconnect_from_stream(&mut self) {
        if self.closing || self.stream.is_none() {
            return;
        }
        let failed = self.is_failed();
        if let Some(conn) = self.conn.get_mut().as_mut().filter(|_| !failed) {
            conn.send_close_notify();
        }
        self.status = TlsStatus::Disconnected;
        self.error = None;
        self.input_done = true;
        *self.rx.get_mut() = Rx::default();
        self.tls_plain.set(0);
        self.closing = true;
        self.finish_closing();
    }

    /// Whether a [`disconnect_from_stream`](Self::disconnect_from_stream) is
    /// still handing its last records to the transport.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// The negotiated TLS version, once known.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn
            .borrow()
            .as_ref()
            .and_then(|c| c.protocol_version())
    }

    /// The negotiated cipher suite, once known.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.conn
            .borrow()
            .as_ref()
            .and_then(|c| c.negotiated_cipher_suite())
    }

    /// For a server session: the name the client asked for with SNI.
    pub fn server_name(&self) -> Option<String> {
        match self.conn.borrow().as_ref()? {
            Connection::Server(c) => c.server_name().map(str::to_owned),
            Connection::Client(_) => None,
        }
    }

    /// Decrypted bytes ready for `get_*`. No side effects.
    pub fn available_bytes(&self) -> usize {
        self.rx.borrow().len() + self.tls_plain.get()
    }

    /// The most decrypted bytes this peer buffers (see
    /// [`TlsOptions::with_read_buffer_limit`]).
    pub fn read_buffer_limit(&self) -> usize {
        self.read_limit
    }
}

impl StreamPeerTls<StreamPeerTcp> {
    /// The TCP connection's id in the reactor's ready set: when it shows up
    /// in [`Reactor::drain_ready`](crate::Reactor::drain_ready), call
    /// [`process`](Self::process) on this peer.
    pub fn id(&self) -> Option<HandleId> {
        self.stream.as_ref().and_then(StreamPeerTcp::id)
    }
}

impl<S: TlsTransport> Drop for StreamPeerTls<S> {
    /// Same as [`disconnect_from_stream`](Self::disconnect_from_stream). If the
    /// transport's queue is full at this moment, the records it cannot take
    /// are lost (logged): disconnect and poll until
    /// [`is_closing`](Self::is_closing) is false to be sure.
    fn drop(&mut self) {
        if self.stream.is_some() && !self.closing {
            self.disconnect_from_stream();
        }
        if self.closing {
            log::warn!("TLS peer dropped while its transport was full: the close_notify is lost");
        }
    }
}

impl<S: TlsTransport> fmt::Debug for StreamPeerTls<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamPeerTls")
            .field("status", &self.status)
            .field("available", &self.available_bytes())
            .field("error", &self.error)
            .field("version", &self.protocol_version())
            .finish_non_exhaustive()
    }
}
