//! [`SocketError`]: the seed's `netSocket` error vocabulary.
//!
//! Every fallible lunanet operation returns `Result<_, SocketError>`. The enum is
//! small and `Copy` so that hot paths (`get_data` returning [`SocketError::Busy`]
//! many times per second) cost nothing; when the operating system reported the
//! cause, [`StreamPeerTcp::error_kind`](crate::StreamPeerTcp::error_kind) keeps the
//! finer `io::ErrorKind` for diagnosis.

use std::fmt;
use std::io;

/// Why a lunanet operation failed (Luna's `SocketError`, with `Ok` standing for
/// `SUCCESS`).
///
/// Each variant says when it happens and how to recover.
///
/// ```
/// use lunanet::SocketError;
///
/// let e = SocketError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert_eq!(e, SocketError::ConnectFailed);
/// assert_eq!(e.to_string(), "connection failed");
/// assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::ConnectionRefused);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketError {
    /// An operating-system call failed for a reason no other variant describes
    /// (the `io::ErrorKind` is logged and, for peers, kept in
    /// [`StreamPeerTcp::error_kind`](crate::StreamPeerTcp::error_kind)).
    ///
    /// Recovery: treat the object as broken; drop it and create a new one.
    Failed,
    /// The operating system refused to create a socket or a poller: the process
    /// ran out of file descriptors (`EMFILE`), the address family is not supported,
    /// or the kernel is out of memory.
    ///
    /// Recovery: close unused peers (or raise `ulimit -n`) and retry.
    InitFailed,
    /// Binding a local address failed: the port is held by another socket, the
    /// address does not belong to this host, or the port needs privileges.
    ///
    /// Recovery: choose another port (0 lets the OS pick) or address.
    BindFailed,
    /// The connection could not be established: refused by the remote, no route,
    /// or the connect timeout ([`Config::connect_timeout`](crate::Config::connect_timeout))
    /// expired.
    ///
    /// Recovery: the peer is in `Status::Error`; call `disconnect_from_host()` and
    /// `connect_to_host()` again, typically after a back-off delay.
    ConnectFailed,
    /// The address is invalid for this operation (an unparsable string, the
    /// wildcard where a concrete host is needed, a family mismatch), or a hostname
    /// did not resolve to any address of the requested type.
    ///
    /// Recovery: fix the address; for hostnames, check the name and the network.
    InvalidIpAddress,
    /// The object is already in use: `connect_to_host` on a peer that is not in
    /// `Status::None`, `bind` after connecting, `listen` on a listening server.
    ///
    /// Recovery: call `disconnect_from_host()` / `stop()` first.
    AlreadyInit,
    /// The connection was reset or aborted by the remote, or writing to it is no
    /// longer possible. Data still buffered in user space can be read.
    ///
    /// Recovery: the connection is over; reconnect if needed.
    ConnectionClosed,
    /// A buffer limit would be exceeded: `put_data` of more than the write queue
    /// can hold now ([`Config::write_buffer_limit`](crate::Config::write_buffer_limit)),
    /// or a `get_data` / frame larger than the read limit can ever hold.
    ///
    /// Recovery: for writes, wait until [`pending_write_bytes`](crate::StreamPeerTcp::pending_write_bytes)
    /// drops (the remote is reading slowly) or use `put_partial_data`; for reads,
    /// read in smaller pieces or raise the limit.
    OutOfBufferMemory,
    /// The operation cannot complete yet without blocking: not enough bytes are
    /// buffered for `get_data`, or a waiting call reached its timeout. Nothing was
    /// consumed.
    ///
    /// Recovery: poll the reactor and try again.
    Busy,
    /// The object has no socket: the peer never connected (or was disconnected),
    /// the server is not listening.
    ///
    /// Recovery: connect / listen first.
    SocketInvalid,
    /// The remote closed the connection (FIN) and fewer bytes than requested will
    /// ever be available. Nothing was consumed: `get_partial_data` can still take
    /// the remaining bytes.
    ///
    /// Recovery: read what remains with `get_partial_data`, then drop or reconnect.
    FileEof,
    /// A parameter is out of range: port 0 where a port is required, a zero-sized
    /// limit, a size the operation can never satisfy.
    ///
    /// Recovery: fix the argument.
    InvalidParameter,
    /// Well-framed bytes did not hold a valid value: `get_var` found a frame
    /// whose payload is not a valid Godot Variant (bad type id, invalid
    /// UTF-8, a full object, a [`Limits`](crate::variant::Limits) cap...).
    /// The frame was consumed, so the stream is still in sync; the cause is
    /// logged at debug level.
    ///
    /// Recovery: skip the value and keep reading (the next `get_var` starts at
    /// the next frame), or close a peer that keeps sending garbage.
    InvalidData,
}

impl SocketError {
    /// The `io::ErrorKind` this error maps to, for code that speaks `std::io`.
    ///
    /// ```
    /// use lunanet::SocketError;
    /// assert_eq!(SocketError::Busy.io_kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn io_kind(self) -> io::ErrorKind {
        match self {
            SocketError::Failed => io::ErrorKind::Other,
            SocketError::InitFailed => io::ErrorKind::Other,
            SocketError::BindFailed => io::ErrorKind::AddrInUse,
            SocketError::ConnectFailed => io::ErrorKind::ConnectionRefused,
            SocketError::InvalidIpAddress => io::ErrorKind::InvalidInput,
            SocketError::AlreadyInit => io::ErrorKind::AlreadyExists,
            SocketError::ConnectionClosed => io::ErrorKind::ConnectionReset,
            SocketError::OutOfBufferMemory => io::ErrorKind::OutOfMemory,
            SocketError::Busy => io::ErrorKind::WouldBlock,
            SocketError::SocketInvalid => io::ErrorKind::NotConnected,
            SocketError::FileEof => io::ErrorKind::UnexpectedEof,
            SocketError::InvalidParameter => io::ErrorKind::InvalidInput,
            SocketError::InvalidData => io::ErrorKind::InvalidData,
        }
    }

    /// The lowercase message also used by `Display`.
    fn message(self) -> &'static str {
        match self {
            SocketError::Failed => "operation failed",
            SocketError::InitFailed => "socket initialisation failed",
            SocketError::BindFailed => "bind failed",
            SocketError::ConnectFailed => "connection failed",
            SocketError::InvalidIpAddress => "invalid ip address",
            SocketError::AlreadyInit => "already initialised",
            SocketError::ConnectionClosed => "connection closed",
            SocketError::OutOfBufferMemory => "out of buffer memory",
            SocketError::Busy => "busy, try again later",
            SocketError::SocketInvalid => "socket invalid",
            SocketError::FileEof => "end of stream",
            SocketError::InvalidParameter => "invalid parameter",
            SocketError::InvalidData => "invalid data",
        }
    }

    /// Maps an error from socket creation (as opposed to I/O on a live socket).
    pub(crate) fn from_init(e: &io::Error) -> SocketError {
        match SocketError::from_kind(e.kind()) {
            SocketError::Failed => SocketError::InitFailed,
            other => other,
        }
    }

    fn from_kind(kind: io::ErrorKind) -> SocketError {
        use io::ErrorKind as K;
        match kind {
            K::WouldBlock => SocketError::Busy,
            K::ConnectionRefused
            | K::TimedOut
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown => SocketError::ConnectFailed,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                SocketError::ConnectionClosed
            }
            K::NotConnected => SocketError::SocketInvalid,
            K::AddrInUse | K::AddrNotAvailable | K::PermissionDenied => SocketError::BindFailed,
            K::UnexpectedEof => SocketError::FileEof,
            K::InvalidInput => SocketError::InvalidParameter,
            K::OutOfMemory => SocketError::OutOfBufferMemory,
            K::AlreadyExists => SocketError::AlreadyInit,
            _ => SocketError::Failed,
        }
    }
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SocketError {}

impl From<io::Error> for SocketError {
    /// Maps by `io::ErrorKind`: `WouldBlock` → `Busy`, refused / timed out /
    /// unreachable → `ConnectFailed`, reset / aborted / broken pipe →
    /// `ConnectionClosed`, address in use / not available / permission →
    /// `BindFailed`, `UnexpectedEof` → `FileEof`, `InvalidInput` →
    /// `InvalidParameter`, anything else → `Failed`.
    fn from(e: io::Error) -> SocketError {
        SocketError::from_kind(e.kind())
    }
}

impl From<SocketError> for io::Error {
    fn from(e: SocketError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SocketError; 13] = [
        SocketError::Failed,
        SocketError::InitFailed,
        SocketError::BindFailed,
        SocketError::ConnectFailed,
        SocketError::InvalidIpAddress,
        SocketError::AlreadyInit,
        SocketError::ConnectionClosed,
        SocketError::OutOfBufferMemory,
        SocketError::Busy,
        SocketError::SocketInvalid,
        SocketError::FileEof,
        SocketError::InvalidParameter,
        SocketError::InvalidData,
    ];

    #[test]
    fn display_is_lowercase_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for e in ALL {
            let s = e.to_string();
            assert_eq!(s, s.to_lowercase(), "{e:?}");
            assert!(seen.insert(s), "duplicate message for {e:?}");
        }
    }

    #[test]
    fn io_round_trip_keeps_the_variant_where_the_kind_is_specific() {
        for e in ALL {
            let io_err = io::Error::from(e);
            assert_eq!(io_err.kind(), e.io_kind());
            // The wrapped source survives the conversion.
            let inner = io_err
                .get_ref()
                .and_then(|s| s.downcast_ref::<SocketError>());
            assert_eq!(inner, Some(&e));
        }
        for (kind, want) in [
            (io::ErrorKind::WouldBlock, SocketError::Busy),
            (io::ErrorKind::ConnectionRefused, SocketError::ConnectFailed),
            (io::ErrorKind::TimedOut, SocketError::ConnectFailed),
            (
                io::ErrorKind::ConnectionReset,
                SocketError::ConnectionClosed,
            ),
            (io::ErrorKind::BrokenPipe, SocketError::ConnectionClosed),
            (io::ErrorKind::AddrInUse, SocketError::BindFailed),
            (io::ErrorKind::UnexpectedEof, SocketError::FileEof),
            (io::ErrorKind::Other, SocketError::Failed),
        ] {
            assert_eq!(SocketError::from(io::Error::from(kind)), want, "{kind:?}");
        }
    }

    #[test]
    fn init_errors_default_to_init_failed() {
        let e = io::Error::from(io::ErrorKind::Other);
        assert_eq!(SocketError::from_init(&e), SocketError::InitFailed);
        let e = io::Error::from(io::ErrorKind::AddrInUse);
        assert_eq!(SocketError::from_init(&e), SocketError::BindFailed);
    }
}
