//! `StreamPeerTcp::poll()` reports the peer's own error while it is in
//! `Status::Error` (Luna's `Poll()` returns a `SocketError`; contract 9.2).

mod util;

use std::time::{Duration, Instant};

use lunanet::{Reactor, SocketError, Status, StreamPeerTcp};
use util::{LONG, client_to_std, pair};

/// Polls `peer` (and only through `peer.poll()`) until it returns an error.
#[track_caller]
fn poll_until_err(peer: &StreamPeerTcp) -> SocketError {
    let deadline = Instant::now() + LONG;
    loop {
        match peer.poll() {
            Err(e) => return e,
            Ok(()) => {
                assert!(Instant::now() < deadline, "poll() never reported an error");
                // Nothing else to wait on: `poll()` never blocks.
                std::thread::yield_now();
            }
        }
    }
}

#[test]
fn a_refused_connect_is_reported_by_poll() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reactor = Reactor::new().unwrap();
    let mut peer = StreamPeerTcp::new(&reactor);
    peer.connect_to_host("127.0.0.1", port).unwrap();
    assert_eq!(poll_until_err(&peer), SocketError::ConnectFailed);
    assert_eq!(peer.status(), Status::Error);
    // Every call while in Error says so, not only the first.
    assert_eq!(peer.poll(), Err(SocketError::ConnectFailed));
    // Once disconnected, the peer has no error any more.
    peer.disconnect_from_host();
    assert_eq!(peer.poll(), Ok(()));
}

#[test]
fn a_reset_connection_is_reported_by_poll() {
    let reactor = Reactor::new().unwrap();
    let (peer, remote) = client_to_std(&reactor);
    assert_eq!(peer.poll(), Ok(()));
    // SO_LINGER 0: closing sends RST instead of FIN.
    socket2::SockRef::from(&remote)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(remote);
    assert_eq!(poll_until_err(&peer), SocketError::ConnectionClosed);
    assert_eq!(peer.status(), Status::Error);
    assert_eq!(peer.error_kind(), Some(std::io::ErrorKind::ConnectionReset));
}

#[test]
fn a_graceful_close_is_not_an_error() {
    let reactor = Reactor::new().unwrap();
    let (client, accepted) = pair(&reactor);
    assert_eq!(client.poll(), Ok(()));
    assert_eq!(accepted.poll(), Ok(()));
    drop(accepted); // FIN
    let deadline = Instant::now() + LONG;
    while client.status() != Status::None {
        assert!(Instant::now() < deadline, "the FIN never arrived");
        assert_eq!(client.poll(), Ok(()), "a FIN is not an error");
        std::thread::yield_now();
    }
    assert_eq!(client.poll(), Ok(()));
}
