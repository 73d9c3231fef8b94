//! [`DetachedPeer`]: a connection between two reactors, on its way from one
//! thread to another (rooms that live on one thread).

use std::fmt;
use std::net::SocketAddr;

use crate::reactor::PeerSlot;
use crate::{Reactor, SocketError, Status, StreamPeerTcp};

/// A connection taken out of its [`Reactor`] by [`StreamPeerTcp::detach`],
/// to be [`attach`](Self::attach)ed to another reactor, usually on another
/// thread (it is `Send`; a `StreamPeerTcp` is not).
///
/// Everything travels with it: the socket, the bytes received and not yet
/// read, the bytes accepted by `put_*` and not yet sent, the status (and its
/// error), the remote and local addresses, the byte order and `no_delay`
/// setting of the handle, the buffer limits and linger timeout of the reactor
/// it came from. While it travels nobody reads the socket: the kernel keeps
/// what arrives (TCP flow control slows the sender if that takes long), and a
/// close or reset by the remote is seen by the new reactor. Nothing received
/// or accepted is lost.
///
/// Dropping a `DetachedPeer` closes the socket at once, discarding queued
/// output (there is no reactor to deliver it): attach it, then drop the
/// `StreamPeerTcp`, to close gracefully.
///
/// # Example: accept anywhere, authenticate, move the player to its room
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::mpsc;
/// use std::time::{Duration, Instant};
/// use lunanet::{DetachedPeer, Reactor, SocketError, TcpServer};
///
/// // The room's thread: its own reactor, fed players through a channel.
/// let (to_room, arrivals) = mpsc::channel::<DetachedPeer>();
/// let room = std::thread::spawn(move || -> Result<Vec<u8>, SocketError> {
///     let reactor = Reactor::new()?;
///     let moved = arrivals.recv_timeout(Duration::from_secs(10)).expect("a player");
///     let mut player = moved.attach(&reactor)?;
///     // What the player sent after its token is here, whether the lobby
///     // had buffered it or it was still in the kernel.
///     player.wait_for_bytes(5, Duration::from_secs(10))?;
///     let mut hello = [0u8; 5];
///     player.get_data(&mut hello)?;
///     player.put_data(b"welcome")?;
///     player.wait_flushed(Duration::from_secs(10))?;
///     Ok(hello.to_vec())
/// });
///
/// // The lobby: accepts on any thread, authenticates, hands over.
/// let lobby = Reactor::new()?;
/// let mut server = TcpServer::new(&lobby);
/// server.listen(0, "127.0.0.1")?;
/// let mut client = std::net::TcpStream::connect(("127.0.0.1", server.local_port()))?;
/// client.write_all(b"TOKEN-roomhello")?;
///
/// let deadline = Instant::now() + Duration::from_secs(10);
/// let mut player = loop {
///     if let Some(p) = server.take_connection() { break p; }
///     assert!(Instant::now() < deadline, "no connection");
///     lobby.poll(Some(Duration::from_millis(10)))?;
/// };
/// player.wait_for_bytes(10, Duration::from_secs(10))?;
/// let mut token = [0u8; 10];
/// player.get_data(&mut token)?;
/// assert_eq!(&token, b"TOKEN-room");
/// to_room.send(player.detach()?).expect("room thread alive");
///
/// assert_eq!(room.join().expect("room thread")?, b"hello");
/// let mut reply = [0u8; 7];
/// client.read_exact(&mut reply)?;
/// assert_eq!(&reply, b"welcome");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DetachedPeer {
    slot: PeerSlot,
    no_delay: Option<bool>,
    big_endian: bool,
}

// `DetachedPeer` crosses threads: fail the build if a field ever stops being
// `Send` (an `Rc`, a reactor handle...).
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<DetachedPeer>();
};

impl StreamPeerTcp {
    /// Takes this connection out of its reactor, to
    /// [`attach`](DetachedPeer::attach) it to another one (usually on another
    /// thread): the player joins the thread where its room lives.
    ///
    /// Works in every status that has a connection: `Connected` (the usual
    /// case), `Connecting` to an address, and `None` / `Error` after the
    /// remote closed (what is still buffered travels too). Buffered bytes in
    /// both directions, the status and the addresses travel with it; see
    /// [`DetachedPeer`]. If this reactor had been told that bytes arrived but
    /// had not read them yet, the new reactor reads them: it does not wait
    /// for a readiness event (the old one will not be repeated).
    ///
    /// # Errors
    /// The peer is then closed as by `drop` (queued output still delivered):
    /// `SocketInvalid` if it has no connection (never connected, or after
    /// `disconnect_from_host`); `Busy` while its hostname is still being
    /// resolved (that lookup belongs to this reactor; detach once
    /// `Connected`); `Failed` if the OS refused to take the socket out of the
    /// poller.
    pub fn detach(mut self) -> Result<DetachedPeer, SocketError> {
        let (key, no_delay, big_endian) = self.take_for_detach();
        let key = key.ok_or(SocketError::SocketInvalid)?;
        let taken = self.reactor().inner.borrow_mut().take_peer(key);
        match taken {
            Ok(slot) => Ok(DetachedPeer {
                slot,
                no_delay,
                big_endian,
            }),
            Err(e) => {
                // The handle keeps its entry, and dropping it now closes the
                // connection the usual way.
                self.restore_key(key);
                Err(e)
            }
        }
    }
}

impl DetachedPeer {
    /// Hands the connection to `reactor`, whose passes drive it from now on.
    ///
    /// The next pass of `reactor` reads what the kernel holds and writes what
    /// is queued without waiting for a readiness event, applies a close or a
    /// reset by the remote (status `None` once every byte was read, `Error`
    /// for a reset), and puts the peer in the ready set
    /// ([`Reactor::drain_ready`]) under its new [`id`](StreamPeerTcp::id).
    /// The peer keeps the buffer limits of the reactor it came from.
    ///
    /// # Errors
    /// `InitFailed` if the OS refused to register the socket with `reactor`
    /// (out of memory or descriptors); the connection is then closed.
    pub fn attach(self, reactor: &Reactor) -> Result<StreamPeerTcp, SocketError> {
        let DetachedPeer {
            slot,
            no_delay,
            big_endian,
        } = self;
        let key = reactor.inner.borrow_mut().adopt_peer(slot)?;
        Ok(StreamPeerTcp::adopted(reactor, key, no_delay, big_endian))
    }

    /// The status when it was detached (it changes only once attached).
    pub fn status(&self) -> Status {
        self.slot.conn.status()
    }

    /// Why the status is `Error`.
    pub fn error(&self) -> Option<SocketError> {
        self.slot.conn.error()
    }

    /// The remote address (to pick a room by address, for example).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.slot.conn.remote()
    }

    /// Received bytes travelling with the peer, not yet read.
    pub fn available_bytes(&self) -> usize {
        self.slot.conn.available()
    }

    /// Bytes accepted by `put_*` travelling with the peer, not yet sent.
    pub fn pending_write_bytes(&self) -> usize {
        self.slot.conn.pending_write()
    }

    /// Copies up to `buf.len()` of the received bytes without consuming them
    /// (to read a room number the client sent, for example); returns how many.
    pub fn peek_data(&self, buf: &mut [u8]) -> usize {
        self.slot.conn.peek(buf)
    }
}

impl fmt::Debug for DetachedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetachedPeer")
            .field("status", &self.status())
            .field("remote", &self.remote_addr())
            .field("available", &self.available_bytes())
            .field("pending_write", &self.pending_write_bytes())
            .finish_non_exhaustive()
    }
}
