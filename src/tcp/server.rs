//! [`TcpServer`]: accepts connections into the reactor (Godot's `TCPServer`).

use std::fmt;
use std::time::Duration;

use crate::reactor::{Key, ServerSlot};
use crate::{HandleId, IpAddress, Reactor, SocketError, StreamPeerTcp, sys};

/// A listening TCP socket whose connections become [`StreamPeerTcp`]s of the
/// same [`Reactor`] (Godot's `TCPServer`).
///
/// Accepting happens during reactor passes (and in
/// [`take_connection`](Self::take_connection)); accepted connections wait in a
/// queue (bounded by [`Config::listen_backlog`](crate::Config::listen_backlog);
/// beyond it the kernel's backlog applies) until taken. When the process runs
/// out of file descriptors the server backs off and retries on a timer: it never
/// spins, and existing peers keep being served.
///
/// ```
/// use std::time::Duration;
/// use lunanet::{Reactor, StreamPeerTcp, TcpServer};
///
/// let reactor = Reactor::new()?;
/// let mut server = TcpServer::new(&reactor);
/// server.listen(0, "127.0.0.1")?; // port 0: the OS picks one
/// let mut client = StreamPeerTcp::new(&reactor);
/// client.connect_to_host("127.0.0.1", server.local_port())?;
///
/// let deadline = std::time::Instant::now() + Duration::from_secs(5);
/// while !server.is_connection_available() && std::time::Instant::now() < deadline {
///     reactor.poll(Some(Duration::from_millis(10)))?;
/// }
/// let peer = server.take_connection().expect("a connection");
/// assert_eq!(peer.status(), lunanet::Status::Connected);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub struct TcpServer {
    reactor: Reactor,
    key: Option<Key>,
}

impl TcpServer {
    /// A server that is not listening yet.
    pub fn new(reactor: &Reactor) -> TcpServer {
        TcpServer {
            reactor: reactor.clone(),
            key: None,
        }
    }

    /// Listens on `bind_address:port`. `"*"` listens on every interface of both
    /// IPv6 and IPv4 (one dual-stack socket; IPv4 only on hosts without IPv6);
    /// `"0.0.0.0"` or `"::"` on every interface of that family only; a concrete
    /// address on that interface only. Port 0 lets the OS choose (see
    /// [`local_port`](Self::local_port)). With
    /// [`Config::reuse_port`](crate::Config::reuse_port), servers of several
    /// reactors (one per thread) may listen on the same port; the kernel
    /// spreads connections over them (see `docs/many-cores.md`).
    ///
    /// # Errors
    /// `AlreadyInit` if already listening; `InvalidIpAddress` for an invalid
    /// address; `BindFailed` if the port is held by another socket (without
    /// `reuse_port` on both) or the address is not local; `InvalidParameter`
    /// for `reuse_port` where the OS has no `SO_REUSEPORT`; `InitFailed` if no
    /// socket could be created.
    ///
    /// ```
    /// use lunanet::{Reactor, SocketError, TcpServer};
    /// let reactor = Reactor::new()?;
    /// let mut a = TcpServer::new(&reactor);
    /// a.listen(0, "127.0.0.1")?;
    /// let mut b = TcpServer::new(&reactor);
    /// assert_eq!(b.listen(a.local_port(), "127.0.0.1"), Err(SocketError::BindFailed));
    /// # Ok::<(), SocketError>(())
    /// ```
    pub fn listen(
        &mut self,
        port: u16,
        bind_address: impl Into<IpAddress>,
    ) -> Result<(), SocketError> {
        if self.key.is_some() {
            return Err(SocketError::AlreadyInit);
        }
        let local = sys::LocalAddr::new(bind_address.into(), port)?;
        let key = self.reactor.inner.borrow_mut().listen(local)?;
        self.key = Some(key);
        Ok(())
    }

    /// Whether the server is listening.
    pub fn is_listening(&self) -> bool {
        self.key.is_some()
    }

    /// Processes the reactor's events (without blocking) and says whether an
    /// accepted connection is waiting to be taken.
    pub fn is_connection_available(&self) -> bool {
        let Some(key) = self.key else {
            return false;
        };
        if let Err(e) = self.reactor.poll(Some(Duration::ZERO)) {
            log::error!("is_connection_available: {e}");
        }
        self.reactor
            .inner
            .borrow()
            .server(key)
            .is_some_and(|s| s.has_pending())
    }

    /// Takes the oldest accepted connection: a `Connected` peer of the same
    /// reactor. `None` if none is waiting.
    ///
    /// Connections are accepted during reactor passes (any `poll`, or
    /// [`is_connection_available`](Self::is_connection_available)); this call
    /// makes no syscall, so calling it every frame costs nothing.
    pub fn take_connection(&mut self) -> Option<StreamPeerTcp> {
        let key = self.key?;
        let peer = self.reactor.inner.borrow_mut().take_connection(key)?;
        Some(StreamPeerTcp::from_key(&self.reactor, peer))
    }

    /// The port listened on (the one the OS chose for port 0); 0 when not
    /// listening.
    pub fn local_port(&self) -> u16 {
        self.with(|s| s.local.port()).unwrap_or(0)
    }

    /// This server's id in the reactor's ready set: it appears there when
    /// connections are waiting to be taken.
    pub fn id(&self) -> Option<HandleId> {
        self.key.map(HandleId)
    }

    /// Stops listening and closes every connection accepted but not taken.
    /// Peers already taken are not affected.
    pub fn stop(&mut self) {
        if let Some(key) = self.key.take() {
            self.reactor.inner.borrow_mut().stop_server(key);
        }
    }

    /// Caps the open connections accepted by this server (taken or waiting);
    /// further clients are accepted and closed at once, and counted in
    /// [`refused_count`](Self::refused_count). `None` (the default) means no cap.
    /// A connection counts until its socket closes.
    ///
    /// # Errors
    /// `SocketInvalid` when not listening.
    pub fn set_max_connections(&mut self, max: Option<usize>) -> Result<(), SocketError> {
        let key = self.key.ok_or(SocketError::SocketInvalid)?;
        let mut inner = self.reactor.inner.borrow_mut();
        let server = inner.server_mut(key).ok_or(SocketError::SocketInvalid)?;
        server.max_connections = max;
        Ok(())
    }

    /// The cap set by [`set_max_connections`](Self::set_max_connections).
    pub fn max_connections(&self) -> Option<usize> {
        self.with(|s| s.max_connections).flatten()
    }

    /// Open connections accepted by this server (waiting or taken).
    pub fn connection_count(&self) -> usize {
        self.with(|s| s.live).unwrap_or(0)
    }

    /// Clients refused because of [`set_max_connections`](Self::set_max_connections).
    pub fn refused_count(&self) -> u64 {
        self.with(|s| s.refused).unwrap_or(0)
    }

    fn with<R>(&self, f: impl FnOnce(&ServerSlot) -> R) -> Option<R> {
        let key = self.key?;
        self.reactor.inner.borrow().server(key).map(f)
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("id", &self.id())
            .field("local_port", &self.local_port())
            .field("connections", &self.connection_count())
            .finish()
    }
}
