//! [`StreamPeerTcp`]: the public TCP peer (Luna's `streamPeerTCP`), a thin handle
//! that validates arguments and delegates to its [`Reactor`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::reactor::{Bound, Key, PeerSlot};

mod protect;
use crate::{HandleId, Host, IpAddress, Reactor, SocketError, Status, StreamPeer, sys};

/// A TCP connection driven by a [`Reactor`] (Luna's `streamPeerTCP`, Godot's
/// `StreamPeerTCP`).
///
/// # Call contract
/// - Nothing here blocks, except the `wait_*` methods, which say so.
/// - Sockets are read and written, and [`status`](Self::status) /
///   [`available_bytes`](Self::available_bytes) change, only while the reactor
///   processes events: [`poll`](Self::poll) on *any* peer of the reactor,
///   [`Reactor::poll`], or a waiting method. Getters have no side effects.
/// - `put_*` queue output (writing at once when the socket can take it);
///   `get_*` take input that a reactor pass buffered.
///
/// ```
/// use std::time::Duration;
/// use lunanet::{Reactor, Status, StreamPeerTcp, TcpServer};
///
/// let reactor = Reactor::new()?;
/// let mut server = TcpServer::new(&reactor);
/// server.listen(0, "127.0.0.1")?;
///
/// let mut client = StreamPeerTcp::new(&reactor);
/// client.connect_to_host("127.0.0.1", server.local_port())?;
/// assert_eq!(client.status(), Status::Connecting);
/// client.put_data(b"hello")?; // queued, sent on connect
///
/// let mut accepted = None;
/// let deadline = std::time::Instant::now() + Duration::from_secs(5);
/// while accepted.is_none() && std::time::Instant::now() < deadline {
///     client.poll()?; // processes every peer and server of the reactor
///     accepted = server.take_connection();
/// }
/// let mut accepted = accepted.expect("accepted");
/// accepted.wait_for_bytes(5, Duration::from_secs(5))?;
/// let mut buf = [0u8; 5];
/// accepted.get_data(&mut buf)?;
/// assert_eq!(&buf, b"hello");
/// assert_eq!(client.status(), Status::Connected);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub struct StreamPeerTcp {
    reactor: Reactor,
    /// The reactor entry of the current connection, [`Key::NONE`] if none.
    key: Key,
    /// The socket `bind()` prepared for the next connect.
    bound: Option<Bound>,
    /// `set_no_delay` called before connecting.
    no_delay: Option<bool>,
    /// Byte order of the `StreamPeer` typed helpers.
    big_endian: bool,
    /// Godot version spoken by `put_var` / `get_var`.
    godot_version: crate::variant::GodotVersion,
}

impl StreamPeerTcp {
    /// A peer in `Status::None`, driven by `reactor`. Allocates no socket.
    pub fn new(reactor: &Reactor) -> StreamPeerTcp {
        StreamPeerTcp {
            reactor: reactor.clone(),
            key: Key::NONE,
            bound: None,
            no_delay: None,
            big_endian: false,
            godot_version: crate::variant::GodotVersion::V4,
        }
    }

    pub(crate) fn from_key(reactor: &Reactor, key: Key) -> StreamPeerTcp {
        let mut peer = StreamPeerTcp::new(reactor);
        peer.key = key;
        peer
    }

    /// For `detach`: the entry's key, taken out so that dropping the handle
    /// does not close the connection; the per-handle settings that travel.
    pub(super) fn take_for_detach(&mut self) -> (Option<Key>, Option<bool>, bool) {
        (self.take_key(), self.no_delay, self.big_endian)
    }

    /// Takes the key, leaving `Key::NONE`.
    fn take_key(&mut self) -> Option<Key> {
        std::mem::replace(&mut self.key, Key::NONE).opt()
    }

    /// For `detach` that failed: the handle keeps its entry.
    pub(super) fn restore_key(&mut self, key: Key) {
        self.key = key;
    }

    /// For `attach`: a handle for an adopted entry, with its settings.
    pub(super) fn adopted(
        reactor: &Reactor,
        key: Key,
        no_delay: Option<bool>,
        big_endian: bool,
    ) -> StreamPeerTcp {
        let mut peer = StreamPeerTcp::from_key(reactor, key);
        peer.no_delay = no_delay;
        peer.big_endian = big_endian;
        peer
    }

    /// The reactor that drives this peer.
    pub fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// This connection's id in the reactor's ready set
    /// ([`Reactor::drain_ready`]); `None` before connecting and after
    /// `disconnect_from_host` (the id names the reactor entry of one
    /// connection, and such a peer has none). For an accepted peer,
    /// [`TcpServer::take_connection_with_id`](crate::TcpServer::take_connection_with_id)
    /// returns the id with the peer, so no `unwrap` is needed.
    #[inline]
    pub fn id(&self) -> Option<HandleId> {
        self.key.opt().map(HandleId)
    }

    /// Opens the socket and binds it to `host:port`, so that the next
    /// `connect_to_host` uses this source address (NAT punch-through, choosing
    /// the interface). Rarely needed. Port 0 lets the OS choose; `"*"` binds
    /// every interface of both families.
    ///
    /// # Errors
    /// `AlreadyInit` if connected (or already bound), `InvalidIpAddress` for an
    /// invalid host, `BindFailed` if the address is in use or not local.
    ///
    /// ```
    /// use lunanet::{Reactor, StreamPeerTcp};
    /// let reactor = Reactor::new()?;
    /// let mut peer = StreamPeerTcp::new(&reactor);
    /// peer.bind(0, "127.0.0.1")?;
    /// assert_ne!(peer.local_port(), 0);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn bind(&mut self, port: u16, host: impl Into<IpAddress>) -> Result<(), SocketError> {
        if self.bound.is_some() || self.status() != Status::None {
            return Err(SocketError::AlreadyInit);
        }
        let mut local = sys::LocalAddr::new(host.into(), port)?;
        let socket = sys::bound_socket(local, false)?;
        // Keep the port the OS chose so later attempts (other addresses of a
        // hostname) bind the same one.
        if let Some(addr) = socket.local_addr().ok().and_then(|a| a.as_socket()) {
            local.addr = addr;
            local.dual_stack = local.dual_stack && addr.is_ipv6();
        }
        self.bound = Some(Bound { socket, local });
        Ok(())
    }

    /// Starts connecting to `host:port` and returns at once; the peer is
    /// `Connecting` until a reactor pass sees the connection complete
    /// (`Connected`) or fail (`Error`, e.g. refused, or the
    /// [`connect timeout`](crate::Config::connect_timeout) expired).
    ///
    /// `host` is an [`IpAddress`], a std `IpAddr`, or a string: an IP literal is
    /// used as is; anything else is a hostname, resolved on the reactor's
    /// background resolver without blocking (all its addresses are tried in
    /// order; none → `Error` with `InvalidIpAddress`).
    ///
    /// # Errors
    /// `InvalidParameter` for port 0; `AlreadyInit` unless the status is `None`;
    /// `InvalidIpAddress` for an invalid address, the wildcard or an impossible
    /// hostname; `InitFailed` if no socket could be created.
    ///
    /// ```
    /// use lunanet::{Reactor, SocketError, Status, StreamPeerTcp};
    /// let reactor = Reactor::new()?;
    /// let mut peer = StreamPeerTcp::new(&reactor);
    /// assert_eq!(peer.connect_to_host("127.0.0.1", 0), Err(SocketError::InvalidParameter));
    /// assert_eq!(peer.connect_to_host("*", 80), Err(SocketError::InvalidIpAddress));
    /// peer.connect_to_host("localhost", 9)?; // resolved in the background
    /// assert_eq!(peer.status(), Status::Connecting);
    /// assert_eq!(peer.connect_to_host("localhost", 9), Err(SocketError::AlreadyInit));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn connect_to_host(&mut self, host: impl Into<Host>, port: u16) -> Result<(), SocketError> {
        if port == 0 {
            return Err(SocketError::InvalidParameter);
        }
        if self.status() != Status::None {
            return Err(SocketError::AlreadyInit);
        }
        let host = host.into();
        host.check()?;
        // A previous connection (closed by the remote) lets go of its entry.
        self.release();
        let no_delay = self
            .no_delay
            .unwrap_or_else(|| self.reactor.inner.borrow().config.no_delay);
        let bound = self.bound.take();
        let key = self
            .reactor
            .inner
            .borrow_mut()
            .connect(host, port, bound, no_delay)?;
        self.key = key;
        Ok(())
    }

    /// Starts connecting to `addr` (same as
    /// `connect_to_host(addr.ip(), addr.port())`, in the order a
    /// `SocketAddr` is written).
    ///
    /// # Errors
    /// As [`connect_to_host`](Self::connect_to_host).
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    /// use lunanet::{Reactor, StreamPeerTcp, TcpServer};
    ///
    /// let reactor = Reactor::new()?;
    /// let mut server = TcpServer::new(&reactor);
    /// server.listen_on("127.0.0.1:0".parse().unwrap())?;
    /// let addr = SocketAddr::from(([127, 0, 0, 1], server.local_port()));
    /// let mut peer = StreamPeerTcp::new(&reactor);
    /// peer.connect_to(addr)?;
    /// peer.wait_connected(Duration::from_secs(5))?;
    /// assert_eq!(peer.remote_addr(), Some(addr));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn connect_to(&mut self, addr: SocketAddr) -> Result<(), SocketError> {
        self.connect_to_host(addr.ip(), addr.port())
    }

    /// Processes the events of the whole reactor without blocking (Godot's
    /// `poll()`, `reactor().poll(Some(Duration::ZERO))`), then reports this
    /// peer's own failure, as Luna's `Poll()` returns a `SocketError`.
    ///
    /// # Errors
    /// While the peer is in `Status::Error`, its [`error`](Self::error) (every
    /// call, until the peer is disconnected or connects again); `Failed` if the
    /// OS poller itself fails.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use lunanet::{Reactor, SocketError, Status, StreamPeerTcp};
    ///
    /// // A port nobody listens on: the connection is refused.
    /// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    /// let reactor = Reactor::new()?;
    /// let mut peer = StreamPeerTcp::new(&reactor);
    /// peer.connect_to_host("127.0.0.1", port)?;
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// let outcome = loop {
    ///     if let Err(e) = peer.poll() { break e; }
    ///     assert!(Instant::now() < deadline, "no outcome");
    ///     std::thread::sleep(Duration::from_millis(1)); // a game would run a frame
    /// };
    /// assert_eq!(outcome, SocketError::ConnectFailed);
    /// assert_eq!(peer.status(), Status::Error);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&self) -> Result<(), SocketError> {
        self.reactor.poll(Some(Duration::ZERO))?;
        match self.status() {
            Status::Error => Err(self.error().unwrap_or(SocketError::ConnectionClosed)),
            _ => Ok(()),
        }
    }

    /// The connection status. No side effects.
    #[inline]
    pub fn status(&self) -> Status {
        self.with(|p| p.conn.status()).unwrap_or(Status::None)
    }

    /// Why the peer is in `Status::Error` (`None` otherwise).
    pub fn error(&self) -> Option<SocketError> {
        self.with(|p| p.conn.error()).flatten()
    }

    /// The OS-level cause behind [`error`](Self::error), when there was one:
    /// `ConnectionRefused`, `TimedOut` (connect timeout), `ConnectionReset`,
    /// `NotFound` (hostname did not resolve)...
    pub fn error_kind(&self) -> Option<io::ErrorKind> {
        self.with(|p| p.conn.error_kind()).flatten()
    }

    /// The remote address (see [`remote_addr`](Self::remote_addr): kept after
    /// the connection closed); invalid when there is none (never connected,
    /// still resolving, or disconnected).
    pub fn connected_host(&self) -> IpAddress {
        self.remote_addr()
            .map_or(IpAddress::invalid(), |a| IpAddress::from(a.ip()))
    }

    /// The remote port; 0 when there is none.
    pub fn connected_port(&self) -> u16 {
        self.remote_addr().map_or(0, |a| a.port())
    }

    /// The remote socket address, for the connection's whole lifetime: while
    /// connecting (the address being tried), connected, and after it closed or
    /// failed (so "who left?" has an answer); `None` before connecting, while
    /// a hostname is still resolving, and after `disconnect_from_host`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lunanet::{Reactor, StreamPeerTcp, TcpServer};
    ///
    /// let reactor = Reactor::new()?;
    /// let mut server = TcpServer::new(&reactor);
    /// server.listen(0, "127.0.0.1")?;
    /// let mut peer = StreamPeerTcp::new(&reactor);
    /// assert_eq!(peer.remote_addr(), None);
    /// peer.connect_to_host("127.0.0.1", server.local_port())?;
    /// peer.wait_connected(Duration::from_secs(5))?;
    /// let addr = peer.remote_addr().expect("connected");
    /// assert_eq!(addr.port(), server.local_port());
    /// peer.disconnect_from_host();
    /// assert_eq!(peer.remote_addr(), None);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.with(|p| p.conn.remote()).flatten()
    }

    /// The local port of the socket (bound, connecting or connected); 0 when
    /// there is none.
    pub fn local_port(&self) -> u16 {
        if let Some(b) = &self.bound {
            return b.local.addr.port();
        }
        self.with(|p| p.conn.local_addr())
            .flatten()
            .map_or(0, |a| a.port())
    }

    /// Closes the connection gracefully and returns to `Status::None` at once.
    ///
    /// Unread input is discarded. Queued output is still delivered in the
    /// background (as long as the reactor is polled, or while the reactor is
    /// dropped), bounded by the [`linger timeout`](crate::Config::linger_timeout),
    /// then the connection is closed with a FIN. Dropping the peer does the same.
    pub fn disconnect_from_host(&mut self) {
        self.release();
        self.bound = None;
    }

    fn release(&mut self) {
        if let Some(key) = self.take_key() {
            self.reactor.inner.borrow_mut().detach(key);
        }
    }

    /// Queues all of `data` for sending, or nothing.
    ///
    /// With the default [`Config::coalesce_writes`](crate::Config::coalesce_writes)
    /// a reply (the first put after a pass that read bytes from this peer) is
    /// written to the socket at once; other bytes are queued and leave in one
    /// `write` per peer at the start of the next reactor pass (any `poll`,
    /// `wait_*`), at [`Reactor::flush`](crate::Reactor::flush), or at
    /// disconnect/drop. With `coalesce_writes(false)`, bytes are written at
    /// once whenever nothing is queued ahead. Either way only what the kernel
    /// refuses stays queued. Data put while `Connecting` is sent on connect.
    /// Bytes accepted with `Ok` are delivered in order unless the connection
    /// fails.
    ///
    /// # Errors
    /// `OutOfBufferMemory` if the queue cannot take all of `data` now (see
    /// [`Config::write_buffer_limit`](crate::Config::write_buffer_limit); wait for
    /// [`pending_write_bytes`](Self::pending_write_bytes) to drop, or use
    /// [`put_partial_data`](Self::put_partial_data)); `SocketInvalid` before
    /// connecting; `ConnectionClosed` after the connection closed or broke (or
    /// the error that broke it).
    #[inline]
    pub fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        self.put(data, false).map(|_| ())
    }

    /// Queues as much of `data` as fits and returns how many bytes were taken
    /// (possibly 0). Errors as [`put_data`](Self::put_data), except
    /// `OutOfBufferMemory`.
    #[inline]
    pub fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        self.put(data, true)
    }

    #[inline(always)]
    fn put(&mut self, data: &[u8], partial: bool) -> Result<usize, SocketError> {
        // Without a connection the key is `Key::NONE`, which no lookup
        // finds: `SocketInvalid`.
        self.reactor.inner.borrow_mut().put(self.key, data, partial)
    }

    /// `io::Write::write` for records the TLS session over this peer sends on
    /// its own (see `Inner::put_vectored`): at once, without using the pass's
    /// reply allowance.
    #[cfg(feature = "tls")]
    pub(crate) fn write_session(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_gathered(&[io::IoSlice::new(buf)], true)
    }

    /// [`write_session`](Self::write_session) (`session`) or `io::Write::write`
    /// of the concatenation of `bufs`, in one gathering system call when
    /// written at once (the records of a TLS session).
    #[cfg(feature = "tls")]
    pub(crate) fn write_gathered(
        &mut self,
        bufs: &[io::IoSlice<'_>],
        session: bool,
    ) -> io::Result<usize> {
        // `Key::NONE` (no connection) finds nothing: `SocketInvalid`.
        match self
            .reactor
            .inner
            .borrow_mut()
            .put_vectored(self.key, bufs, session)
        {
            Ok(0) if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into()),
        }
    }

    /// Fills `buf` completely from the received bytes, or takes nothing.
    ///
    /// # Errors
    /// `Busy`: fewer than `buf.len()` bytes are buffered yet (poll and retry).
    /// `FileEof`: the remote closed and fewer bytes will ever be available (take
    /// the rest with `get_partial_data`). `OutOfBufferMemory`: `buf` is larger
    /// than the read buffer limit, so it can never be filled. `SocketInvalid`:
    /// never connected. In `Status::Error`, the error that broke the connection.
    #[inline]
    pub fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        self.get(buf, false).map(|_| ())
    }

    /// Takes up to `buf.len()` received bytes and returns how many (0 when none
    /// are buffered yet). Never blocks.
    ///
    /// # Errors
    /// `FileEof` when nothing is buffered and the remote closed (so a read loop
    /// always ends); `SocketInvalid` when never connected; in `Status::Error`
    /// with nothing buffered, the error that broke the connection.
    #[inline]
    pub fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        self.get(buf, true)
    }

    #[inline(always)]
    fn get(&mut self, buf: &mut [u8], partial: bool) -> Result<usize, SocketError> {
        self.reactor.inner.borrow_mut().get(self.key, buf, partial)
    }

    /// Copies up to `buf.len()` received bytes into `buf` without consuming
    /// them; returns how many.
    pub fn peek_data(&self, buf: &mut [u8]) -> usize {
        self.with(|p| p.conn.peek(buf)).unwrap_or(0)
    }

    /// Bytes received and buffered by the last reactor pass, ready for `get_*`.
    /// No syscall.
    #[inline]
    pub fn available_bytes(&self) -> usize {
        self.with(|p| p.conn.available()).unwrap_or(0)
    }

    /// Bytes accepted by `put_*` that the kernel has not taken yet.
    #[inline]
    pub fn pending_write_bytes(&self) -> usize {
        self.with(|p| p.conn.pending_write()).unwrap_or(0)
    }

    /// The most bytes this peer can buffer for reading (the reactor's
    /// [`read_buffer_limit`](crate::Config::read_buffer_limit)).
    pub fn read_buffer_limit(&self) -> usize {
        self.reactor.inner.borrow().config.read_buffer_limit
    }

    /// Enables or disables Nagle's algorithm being off (`TCP_NODELAY`) for this
    /// peer; before connecting, the setting applies at connect.
    ///
    /// # Errors
    /// `Failed` if the OS refuses the option on the socket.
    pub fn set_no_delay(&mut self, enabled: bool) -> Result<(), SocketError> {
        self.no_delay = Some(enabled);
        match self.key.opt() {
            Some(key) => self.reactor.inner.borrow_mut().set_no_delay(key, enabled),
            None => Ok(()),
        }
    }

    /// Processes the reactor until the connection completes or fails, at most
    /// `timeout`. Other peers of the reactor keep making progress meanwhile.
    ///
    /// # Errors
    /// `Busy` on timeout; the peer's error if it failed; `SocketInvalid` if it is
    /// not connecting.
    pub fn wait_connected(&mut self, timeout: Duration) -> Result<(), SocketError> {
        self.wait(timeout, |peer| match peer.status() {
            Status::Connected => Some(Ok(())),
            Status::Connecting => None,
            Status::Error => Some(Err(peer.error().unwrap_or(SocketError::ConnectFailed))),
            Status::None => Some(Err(SocketError::SocketInvalid)),
        })
    }

    /// Processes the reactor until at least `n` bytes are available, at most
    /// `timeout`. Other peers keep making progress meanwhile.
    ///
    /// # Errors
    /// `Busy` on timeout; `FileEof` if the remote closed with fewer bytes sent;
    /// `OutOfBufferMemory` if `n` exceeds the read buffer limit; the peer's error
    /// in `Status::Error`; `SocketInvalid` without a connection.
    pub fn wait_for_bytes(&mut self, n: usize, timeout: Duration) -> Result<(), SocketError> {
        if n > self.read_buffer_limit() {
            return Err(SocketError::OutOfBufferMemory);
        }
        self.wait(timeout, |peer| {
            if peer.available_bytes() >= n {
                return Some(Ok(()));
            }
            match peer.status() {
                Status::Connecting => None,
                Status::Connected if !peer.input_finished() => None,
                Status::Connected => Some(Err(SocketError::FileEof)),
                Status::Error => Some(Err(peer.error().unwrap_or(SocketError::ConnectionClosed))),
                Status::None if peer.key.opt().is_some() => Some(Err(SocketError::FileEof)),
                Status::None => Some(Err(SocketError::SocketInvalid)),
            }
        })
    }

    /// Processes the reactor until every queued byte was handed to the kernel,
    /// at most `timeout`.
    ///
    /// # Errors
    /// `Busy` on timeout; the peer's error if the connection failed.
    pub fn wait_flushed(&mut self, timeout: Duration) -> Result<(), SocketError> {
        self.wait(timeout, |peer| {
            if peer.pending_write_bytes() == 0 {
                return Some(Ok(()));
            }
            match peer.status() {
                Status::Error => Some(Err(peer.error().unwrap_or(SocketError::ConnectionClosed))),
                _ => None,
            }
        })
    }

    /// Runs reactor passes until `done` answers, or `timeout` (→ `Busy`).
    fn wait(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&StreamPeerTcp) -> Option<Result<(), SocketError>>,
    ) -> Result<(), SocketError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = done(self) {
                return result;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SocketError::Busy);
            }
            self.reactor.poll(Some(deadline - now))?;
        }
    }

    fn input_finished(&self) -> bool {
        self.with(|p| p.conn.fin_received()).unwrap_or(true)
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&PeerSlot) -> R) -> Option<R> {
        // `Key::NONE` finds nothing. An exclusive borrow although only
        // reading: no other borrow of the reactor is ever alive while a
        // handle's method runs (no user code runs inside one), and taking
        // it is one test where a shared borrow is a range check.
        let inner = self.reactor.inner.borrow_mut();
        inner.peer(self.key).map(f)
    }
}

/// The typed helpers (`put_u32`, `get_string`, ...) and `PacketPeerStream`
/// work on TCP peers through this trait; every method delegates to the inherent
/// method of the same name.
impl StreamPeer for StreamPeerTcp {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        StreamPeerTcp::put_data(self, data)
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        StreamPeerTcp::put_partial_data(self, data)
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        StreamPeerTcp::get_data(self, buf)
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        StreamPeerTcp::get_partial_data(self, buf)
    }
    fn available_bytes(&self) -> usize {
        StreamPeerTcp::available_bytes(self)
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        StreamPeerTcp::peek_data(self, buf)
    }
    fn is_big_endian(&self) -> bool {
        self.big_endian
    }
    fn set_big_endian(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
    }
    fn godot_version(&self) -> crate::variant::GodotVersion {
        self.godot_version
    }
    fn set_godot_version(&mut self, version: crate::variant::GodotVersion) {
        self.godot_version = version;
    }
    fn max_buffered_bytes(&self) -> usize {
        self.read_buffer_limit()
    }
    fn short_read_error(&mut self) -> SocketError {
        self.with(|p| p.conn.short_read_error())
            .unwrap_or(SocketError::SocketInvalid)
    }
    /// Keeps this peer's id in the ready set while a `PacketPeerStream` over
    /// it holds a complete packet (level-triggered ready set).
    fn hold_input(&mut self, held: bool) {
        if let Some(key) = self.key.opt() {
            self.reactor.inner.borrow_mut().hold_input(key, held);
        }
    }
}

impl Drop for StreamPeerTcp {
    /// Same as [`disconnect_from_host`](Self::disconnect_from_host): queued
    /// output is still delivered, bounded by the linger timeout.
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for StreamPeerTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StreamPeerTcp");
        d.field("id", &self.id()).field("status", &self.status());
        if let Some(addr) = self.remote_addr() {
            d.field("remote", &addr);
        }
        d.field("available", &self.available_bytes())
            .field("pending_write", &self.pending_write_bytes())
            .field("error", &self.error())
            .finish()
    }
}

/// Non-blocking `Read`: `WouldBlock` when nothing is buffered yet, `Ok(0)` at the
/// end of the stream (remote closed and everything read).
impl io::Read for StreamPeerTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.get_partial_data(buf) {
            Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(SocketError::FileEof) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// Non-blocking `Write`: takes what the write queue can hold, `WouldBlock` when
/// it is full. `flush` first writes the reactor's queued output (as
/// [`Reactor::flush`](crate::Reactor::flush)), then succeeds when nothing is
/// left queued and returns `WouldBlock` while bytes wait for the kernel (use
/// [`wait_flushed`](StreamPeerTcp::wait_flushed) to wait).
impl io::Write for StreamPeerTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.put_partial_data(buf) {
            Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Coalesced output waits for the next pass: hand it to the kernel now.
        if self.pending_write_bytes() != 0 {
            self.reactor.flush();
        }
        if self.pending_write_bytes() == 0 {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
}
