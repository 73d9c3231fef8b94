//! `SocketError` ↔ `std::io` conversions against a fixed table written from
//! the documented mapping (`SocketError::io_kind` and `From<io::Error>` docs),
//! not computed by the library: a changed mapping fails here.
use std::io;

use lunanet::SocketError;

/// Every variant, the `io::ErrorKind` it converts to, and the variant that
/// kind converts back to (the same one where the kind is specific).
const TABLE: [(SocketError, io::ErrorKind, SocketError); 12] = {
    use SocketError as S;
    use io::ErrorKind as K;
    [
        (S::Failed, K::Other, S::Failed),
        (S::InitFailed, K::Other, S::Failed),
        (S::BindFailed, K::AddrInUse, S::BindFailed),
        (S::ConnectFailed, K::ConnectionRefused, S::ConnectFailed),
        (S::InvalidIpAddress, K::InvalidInput, S::InvalidParameter),
        (S::AlreadyInit, K::AlreadyExists, S::AlreadyInit),
        (S::ConnectionClosed, K::ConnectionReset, S::ConnectionClosed),
        (S::OutOfBufferMemory, K::OutOfMemory, S::OutOfBufferMemory),
        (S::Busy, K::WouldBlock, S::Busy),
        (S::SocketInvalid, K::NotConnected, S::SocketInvalid),
        (S::FileEof, K::UnexpectedEof, S::FileEof),
        (S::InvalidParameter, K::InvalidInput, S::InvalidParameter),
    ]
};

#[test]
fn socket_errors_convert_to_the_documented_io_kinds_and_back() {
    for (e, kind, back) in TABLE {
        assert_eq!(e.io_kind(), kind, "{e:?}.io_kind()");
        let io_err = io::Error::from(e);
        assert_eq!(io_err.kind(), kind, "io::Error::from({e:?}).kind()");
        // The original error rides along as the source.
        let inner = io_err
            .get_ref()
            .and_then(|s| s.downcast_ref::<SocketError>());
        assert_eq!(inner, Some(&e), "source of io::Error::from({e:?})");
        assert_eq!(io_err.to_string(), e.to_string(), "message of {e:?}");
        assert_eq!(SocketError::from(io_err), back, "{e:?} → io → back");
    }
}

#[test]
fn io_errors_map_by_kind_as_documented() {
    use SocketError as S;
    use io::ErrorKind as K;
    for (kind, want) in [
        (K::WouldBlock, S::Busy),
        (K::ConnectionRefused, S::ConnectFailed),
        (K::TimedOut, S::ConnectFailed),
        (K::HostUnreachable, S::ConnectFailed),
        (K::NetworkUnreachable, S::ConnectFailed),
        (K::NetworkDown, S::ConnectFailed),
        (K::ConnectionReset, S::ConnectionClosed),
        (K::ConnectionAborted, S::ConnectionClosed),
        (K::BrokenPipe, S::ConnectionClosed),
        (K::NotConnected, S::SocketInvalid),
        (K::AddrInUse, S::BindFailed),
        (K::AddrNotAvailable, S::BindFailed),
        (K::PermissionDenied, S::BindFailed),
        (K::UnexpectedEof, S::FileEof),
        (K::InvalidInput, S::InvalidParameter),
        (K::OutOfMemory, S::OutOfBufferMemory),
        (K::AlreadyExists, S::AlreadyInit),
        (K::Other, S::Failed),
        (K::NotFound, S::Failed),
        (K::Interrupted, S::Failed),
    ] {
        assert_eq!(SocketError::from(io::Error::from(kind)), want, "{kind:?}");
    }
    // An OS error is mapped by its kind too (ECONNRESET is 104 on Linux).
    #[cfg(target_os = "linux")]
    assert_eq!(
        SocketError::from(io::Error::from_raw_os_error(104)),
        S::ConnectionClosed,
        "ECONNRESET"
    );
}
