//! [`PeerStats`]: per-connection counters, kept by the state machine.

use std::time::Instant;

/// Counters of one connection, from [`StreamPeerTcp::stats`](crate::StreamPeerTcp::stats).
///
/// Always on: they are a few integer additions per read and write call. Reads
/// and writes count the system calls that moved bytes.
///
/// ```
/// use lunanet::{Reactor, StreamPeerTcp};
/// let reactor = Reactor::new()?;
/// let peer = StreamPeerTcp::new(&reactor);
/// let stats = peer.stats();
/// assert_eq!(stats.bytes_in, 0);
/// assert!(stats.connected_since.is_none());
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket (taken by the kernel).
    pub bytes_out: u64,
    /// `read` calls that returned bytes.
    pub reads: u64,
    /// `write` calls that the kernel took bytes from.
    pub writes: u64,
    /// When the connection was established (connect completed, or accepted
    /// connection taken from the server).
    pub connected_since: Option<Instant>,
    /// When bytes were last received (the time of the reactor pass that read
    /// them).
    pub last_receive: Option<Instant>,
}
