//! Every OS call of the crate, in one module (mio's `sys/` habit): socket
//! creation with socket2 (address families, dual stack, options, bind,
//! non-blocking connect), registration with the poller, the wait, accept,
//! and the [`Transport`] implementation that lets the socket-free
//! [`Connection`](crate::core::Connection) read, write and shut down a mio socket.
//!
//! The rest of the crate decides; this module only carries out.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::time::Duration;

use mio::net::TcpListener;
#[cfg(not(unix))]
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::core::Transport;
use crate::{IpAddress, SocketError};

/// The connection socket type the reactor drives. On Unix, std's stream,
/// registered by its descriptor (`SourceFd`): its descriptor accessor is
/// inlined, so each `recv`/`send` makes no call before the system call
/// (mio's is not); elsewhere mio's.
#[cfg(unix)]
pub(crate) type Stream = std::net::TcpStream;
#[cfg(not(unix))]
pub(crate) type Stream = TcpStream;
/// The listening socket type.
pub(crate) type Listener = TcpListener;

impl Transport for Stream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    /// As mio documents for `TcpStream::connect`: on an event, `take_error()`
    /// reports a failure; otherwise `peer_addr()` succeeds once connected and
    /// fails with `NotConnected` while still in progress (a spurious wake-up).
    fn connect_outcome(&mut self) -> io::Result<Option<SocketAddr>> {
        match self.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match self.peer_addr() {
                Ok(addr) => Ok(Some(addr)),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        Stream::local_addr(self).ok()
    }

    /// `recv(fd, buf, 0)`, the call std's `read` makes, as a plain system
    /// call: libc's wrapper is a thread-cancellation point whose bookkeeping
    /// (two atomic updates per call in a multi-threaded process) cost more
    /// instructions than the rest of the wrapper chain.
    #[cfg(target_os = "linux")]
    #[inline(always)]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rustix::net::recv(&*self, buf, rustix::net::RecvFlags::empty())
            .map(|(n, _)| n)
            .map_err(io::Error::from)
    }

    /// `recv` as above, a separate instance of the system call's wrapper
    /// with a single call site, which the compiler inlines.
    #[cfg(target_os = "linux")]
    #[inline(always)]
    fn recv_steady(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsFd;
        rustix::net::recv(self.as_fd(), buf, rustix::net::RecvFlags::empty())
            .map(|(n, _)| n)
            .map_err(io::Error::from)
    }

    /// `send(fd, buf, MSG_NOSIGNAL)`, the call std's `write` makes (no
    /// `SIGPIPE` on a reset connection), as a plain system call (see `recv`).
    #[cfg(target_os = "linux")]
    #[inline(always)]
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        rustix::net::send(&*self, buf, rustix::net::SendFlags::NOSIGNAL).map_err(io::Error::from)
    }

    /// `sendmsg(fd, iov, MSG_NOSIGNAL)`: std's `write_vectored` is `writev`,
    /// which raises `SIGPIPE` on a reset connection.
    #[cfg(target_os = "linux")]
    #[inline(always)]
    fn send_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        rustix::net::sendmsg(
            &*self,
            bufs,
            &mut rustix::net::SendAncillaryBuffer::default(),
            rustix::net::SendFlags::NOSIGNAL,
        )
        .map_err(io::Error::from)
    }
}

/// Registers a connection socket for both directions, once for its lifetime
/// (edge-triggered: no `epoll_ctl` per message).
pub(crate) fn register_stream(
    registry: &Registry,
    sock: &mut Stream,
    token: Token,
) -> io::Result<()> {
    let interest = Interest::READABLE | Interest::WRITABLE;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        registry.register(&mut mio::unix::SourceFd(&sock.as_raw_fd()), token, interest)
    }
    #[cfg(not(unix))]
    {
        registry.register(sock, token, interest)
    }
}

/// Takes a connection socket out of this reactor's poller, so that another
/// reactor can register it (moving a peer between threads).
pub(crate) fn deregister_stream(registry: &Registry, sock: &mut Stream) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        registry.deregister(&mut mio::unix::SourceFd(&sock.as_raw_fd()))
    }
    #[cfg(not(unix))]
    {
        registry.deregister(sock)
    }
}

/// Registers a listening socket for incoming connections.
pub(crate) fn register_listener(
    registry: &Registry,
    listener: &mut TcpListener,
    token: Token,
) -> io::Result<()> {
    registry.register(listener, token, Interest::READABLE)
}

/// `epoll_wait`: an interrupted wait (`EINTR`) counts as a wait with no events.
pub(crate) fn wait(
    poll: &mut Poll,
    events: &mut Events,
    timeout: Option<Duration>,
) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        other => other,
    }
}

/// Accepts one connection.
pub(crate) fn accept(listener: &TcpListener) -> io::Result<(Stream, SocketAddr)> {
    listener.accept().map(|(sock, addr)| (sock.into(), addr))
}

/// Sets `TCP_NODELAY` on a connection socket.
pub(crate) fn set_no_delay(sock: &Stream, on: bool) -> io::Result<()> {
    sock.set_nodelay(on)
}

/// The local address of a listener.
pub(crate) fn listener_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
    listener.local_addr()
}

/// A local address to bind, from a Luna `IpAddress` and a port.
///
/// The wildcard `"*"` means every interface of both families: an IPv6 socket
/// with `IPV6_V6ONLY` off. `"0.0.0.0"` and `"::"` mean that family only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalAddr {
    pub(crate) addr: SocketAddr,
    /// Dual-stack (IPv6 socket that also accepts/initiates IPv4).
    pub(crate) dual_stack: bool,
}

impl LocalAddr {
    pub(crate) fn new(host: IpAddress, port: u16) -> Result<LocalAddr, SocketError> {
        if host.is_wildcard() {
            return Ok(LocalAddr {
                addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                dual_stack: true,
            });
        }
        match host.to_ip_addr() {
            Some(ip) => Ok(LocalAddr {
                addr: SocketAddr::new(ip, port),
                dual_stack: false,
            }),
            None => Err(SocketError::InvalidIpAddress),
        }
    }

    /// The IPv4 equivalent of a dual-stack wildcard, for hosts without IPv6.
    fn v4_fallback(self) -> Option<LocalAddr> {
        self.dual_stack.then(|| LocalAddr {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.addr.port()),
            dual_stack: false,
        })
    }
}

/// A non-blocking, close-on-exec TCP socket of the family of `addr`.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<Socket> {
    // socket2 sets close-on-exec (and SO_NOSIGPIPE where needed) for us.
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Creates a socket and binds it to `local` (dual-stack when asked, falling
/// back to IPv4 when the host has no IPv6).
pub(crate) fn bound_socket(local: LocalAddr, reuse_address: bool) -> Result<Socket, SocketError> {
    bound_socket_with(local, reuse_address, false)
}

/// [`bound_socket`], and with `reuse_port` also `SO_REUSEPORT` (set before
/// `bind`, as the kernel requires of every socket of the group).
fn bound_socket_with(
    local: LocalAddr,
    reuse_address: bool,
    reuse_port: bool,
) -> Result<Socket, SocketError> {
    match try_bound_socket(local, reuse_address, reuse_port) {
        Ok(s) => Ok(s),
        Err(e) if local.dual_stack && is_family_unsupported(&e) => {
            let v4 = local.v4_fallback().unwrap_or(local);
            log::debug!("no IPv6 on this host ({e}); binding {} instead", v4.addr);
            try_bound_socket(v4, reuse_address, reuse_port).map_err(|e| bind_error(&e, v4.addr))
        }
        Err(e) => Err(bind_error(&e, local.addr)),
    }
}

/// Sets `SO_REUSEPORT`: several sockets (one per reactor thread) may then
/// listen on one address and port, the kernel spreading connections over
/// them.
#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this platform",
    ))
}

fn try_bound_socket(local: LocalAddr, reuse_address: bool, reuse_port: bool) -> io::Result<Socket> {
    let socket = tcp_socket(&local.addr)?;
    if local.addr.is_ipv6() {
        // "::" means IPv6 only; "*" means both families.
        socket.set_only_v6(!local.dual_stack)?;
    }
    // On Unix SO_REUSEADDR only lets a listener rebind a port that still has
    // TIME_WAIT connections; on Windows it would let another process hijack
    // a port in use, so it is never set there.
    if reuse_address && cfg!(unix) {
        socket.set_reuse_address(true)?;
    }
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.bind(&SockAddr::from(local.addr))?;
    Ok(socket)
}

fn is_family_unsupported(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
        )
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::AddrNotAvailable
    }
}

fn bind_error(e: &io::Error, addr: SocketAddr) -> SocketError {
    log::debug!("bind {addr} failed: {e}");
    match e.kind() {
        io::ErrorKind::AddrInUse
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::PermissionDenied => SocketError::BindFailed,
        io::ErrorKind::Unsupported => SocketError::InvalidParameter,
        _ => SocketError::from_init(e),
    }
}

/// The address to connect to from `socket`'s family: an IPv4 target is
/// reached from a dual-stack IPv6 socket through its v4-mapped form.
pub(crate) fn target_for(socket: &Socket, target: SocketAddr) -> Result<SocketAddr, SocketError> {
    let local_is_v6 = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.is_ipv6());
    match (local_is_v6, target) {
        (Some(true), SocketAddr::V4(v4)) => Ok(SocketAddr::new(
            IpAddr::V6(v4.ip().to_ipv6_mapped()),
            v4.port(),
        )),
        (Some(false), SocketAddr::V6(_)) => Err(SocketError::InvalidIpAddress),
        _ => Ok(target),
    }
}

/// Starts a non-blocking connect on `socket`. `Ok` means connected or in
/// progress; completion is observed later as a writable event.
pub(crate) fn start_connect(socket: &Socket, target: SocketAddr) -> io::Result<()> {
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => Ok(()),
        Err(e) if is_in_progress(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

fn is_in_progress(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::WouldBlock {
        return true; // Windows reports WSAEWOULDBLOCK
    }
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EINPROGRESS)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Turns a socket2 socket into the reactor's stream type.
pub(crate) fn into_stream(socket: Socket) -> Stream {
    #[cfg(unix)]
    {
        std::net::TcpStream::from(socket)
    }
    #[cfg(not(unix))]
    {
        TcpStream::from_std(std::net::TcpStream::from(socket))
    }
}

/// Turns a socket2 socket into a mio listener.
pub(crate) fn into_mio_listener(socket: Socket) -> TcpListener {
    TcpListener::from_std(std::net::TcpListener::from(socket))
}

/// Opens a socket bound to `local` and listening with `backlog`; with
/// `reuse_port`, one of a group sharing the port (`SO_REUSEPORT`).
pub(crate) fn listener(
    local: LocalAddr,
    backlog: u32,
    reuse_port: bool,
) -> Result<TcpListener, SocketError> {
    let socket = bound_socket_with(local, true, reuse_port)?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket.listen(backlog).map_err(|e| {
        log::debug!("listen on {}: {e}", local.addr);
        match e.kind() {
            io::ErrorKind::AddrInUse => SocketError::BindFailed,
            _ => SocketError::from_init(&e),
        }
    })?;
    Ok(into_mio_listener(socket))
}

/// Opens a socket for one connect attempt towards `target` (reusing the
/// socket `bind()` prepared, or binding like it), starts the non-blocking
/// connect and registers the socket with `token`.
///
/// Returns the stream and, when `connect(2)` failed at once, its error kind
/// (observed by the state machine at the next pass).
pub(crate) fn dial(
    registry: &Registry,
    token: Token,
    bound: Option<Socket>,
    bind: Option<LocalAddr>,
    no_delay: bool,
    dead_peer: DeadPeer,
    target: SocketAddr,
) -> io::Result<(Stream, Option<io::ErrorKind>)> {
    let socket = match (bound, bind) {
        (Some(socket), _) => socket,
        (None, Some(local)) => bound_socket(local, false).map_err(io::Error::from)?,
        (None, None) => tcp_socket(&target)?,
    };
    let target = target_for(&socket, target).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not reachable from the bound address family",
        )
    })?;
    if let Err(e) = socket.set_tcp_nodelay(no_delay) {
        log::debug!("set_nodelay: {e}");
    }
    dead_peer.apply(socket2::SockRef::from(&socket));
    let started = start_connect(&socket, target);
    let mut sock = into_stream(socket);
    if let Err(e) = register_stream(registry, &mut sock, token) {
        log::error!("register {target}: {e}");
        return Err(e);
    }
    Ok((sock, started.err().map(|e| e.kind())))
}

/// Dead-peer detection the kernel does for us (see `Config::keepalive` and
/// `Config::user_timeout`), set on every new connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeadPeer {
    pub(crate) keepalive: Option<Duration>,
    pub(crate) user_timeout: Option<Duration>,
}

impl DeadPeer {
    /// Sets the options on `sock`; a failure is logged, not fatal (the
    /// application-level idle timeout still applies).
    pub(crate) fn apply(self, sock: socket2::SockRef<'_>) {
        if let Some(time) = self.keepalive {
            let every = time.max(Duration::from_secs(1));
            let params = socket2::TcpKeepalive::new().with_time(every);
            #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
            let params = params.with_interval(every).with_retries(3);
            if let Err(e) = sock.set_tcp_keepalive(&params) {
                log::warn!("cannot enable TCP keepalive: {e}");
            }
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(timeout) = self.user_timeout
            && let Err(e) = sock.set_tcp_user_timeout(Some(timeout))
        {
            log::warn!("cannot set TCP_USER_TIMEOUT: {e}");
        }
    }
}

/// Whether an accept error is the process or system running out of
/// descriptors or memory: the listen queue still holds connections, but
/// accepting again at once would fail the same way (and spin).
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}
