//! [`Status`]: the user-visible connection status.

/// A peer's connection status, with Luna/Godot's meaning and transitions.
///
/// Status changes only while the reactor processes events (any `poll`), never
/// inside `get_*` / `put_*`, so code that reads the last bytes and queues a
/// reply in one tick always gets the reply out.
///
/// ```text
///            connect_to_host          connected
///   None ───────────────────► Connecting ───────► Connected
///    ▲                           │                  │   │
///    │     refused / timeout /   │   reset / error  │   │ remote FIN and every
///    │     unresolvable          ▼                  │   │ received byte read
///    │                         Error ◄──────────────┘   │
///    └──────────────────────────────────────────────────┘
///            disconnect_from_host() from any status goes to None at once
/// ```
///
/// ```
/// use lunanet::{Reactor, Status, StreamPeerTcp};
/// let reactor = Reactor::new()?;
/// let peer = StreamPeerTcp::new(&reactor);
/// assert_eq!(peer.status(), Status::None);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    /// No connection: never connected, disconnected by the user, or closed by the
    /// remote after every received byte was read.
    #[default]
    None,
    /// Resolving the hostname or waiting for the TCP handshake. Data put now is
    /// queued and sent on connect.
    Connecting,
    /// Connected. Data can be sent and received. The remote may already have
    /// closed its side: unread bytes stay readable first.
    Connected,
    /// The connection failed or broke; `error()` says why. Bytes received before
    /// the failure can still be read.
    Error,
}
