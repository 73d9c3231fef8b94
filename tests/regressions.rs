//! One test per library bug found by the soak, model and fuzz work of issue 4
//! (all fixed; each test failed before its fix).
mod util;

use std::time::{Duration, Instant};

use lunanet::{Reactor, SocketError, Status, StreamPeerTcp};
use util::{LONG, client_to_std};

/// Found by `tests/model.rs`. The remote resets the connection; before any
/// reactor pass notices, `put_data` writes directly to the socket and gets
/// `ECONNRESET` (returned to the caller as `ConnectionClosed`). The kernel
/// reports a reset once: the next pass's probe read returns 0, which the
/// reactor takes for a FIN, so the peer goes to `Status::None` with no
/// `error()` — a reset reported as a graceful close. DESIGN.md: "Reset, socket
/// error → `Error`; `error()` returns the cause", and docs/architecture.md
/// says the probe after a failed direct write "moves to `Error`". An
/// application that saw `None` believes the remote received everything and
/// closed; in fact bytes it accepted with `Ok` before the reset were lost.
#[test]
fn a_reset_seen_by_a_direct_write_ends_in_error_not_none() {
    // About the direct write: write-at-once, explicitly (the default queues).
    let reactor = Reactor::with_config(lunanet::Config::default().coalesce_writes(false)).unwrap();
    let (mut peer, remote) = client_to_std(&reactor);
    let remote = socket2::Socket::from(remote);
    remote.set_linger(Some(Duration::ZERO)).unwrap();
    drop(remote); // RST
    // No reactor pass: put_data writes at once (nothing is queued), until a
    // write meets the reset.
    let deadline = Instant::now() + LONG;
    let failed = loop {
        assert!(Instant::now() < deadline, "put_data never saw the reset");
        match peer.put_data(b"x") {
            Ok(()) => std::thread::yield_now(),
            Err(e) => break e,
        }
    };
    assert_eq!(failed, SocketError::ConnectionClosed);
    assert_eq!(
        peer.status(),
        Status::Connected,
        "status changes only in a pass"
    );
    let deadline = Instant::now() + LONG;
    while peer.status() == Status::Connected {
        assert!(Instant::now() < deadline, "the reset was never reported");
        reactor.poll(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(peer.status(), Status::Error, "error() = {:?}", peer.error());
    assert_eq!(peer.error(), Some(SocketError::ConnectionClosed));
}

/// Found while writing the fuzz harness's reference decoder. With a read
/// buffer limit below 4 bytes (legal: `Config` only rejects 0), `get_u32`
/// answers `OutOfBufferMemory` ("the peer can never hold that many bytes"),
/// but `get_string` / `get_utf8_string` / `get_utf8_string_lossy` answer
/// `Busy` for ever: they peek the 4-byte length prefix without first checking
/// that 4 bytes can ever be buffered, so a caller polling until the string
/// arrives spins. Expected: `OutOfBufferMemory`, as for every other value
/// the peer can never hold. (Low severity: a limit under 4 bytes is odd.)
#[test]
fn get_string_with_a_read_limit_below_the_prefix_is_out_of_buffer_memory() {
    use lunanet::{Config, StreamPeer, TcpServer};
    let reactor = Reactor::with_config(Config::default().read_buffer_limit(3)).unwrap();
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").unwrap();
    let mut client = StreamPeerTcp::new(&reactor);
    client
        .connect_to_host("127.0.0.1", server.local_port())
        .unwrap();
    client.put_string("hi").unwrap(); // 02 00 00 00 'h' 'i'
    let deadline = Instant::now() + LONG;
    let mut accepted = None;
    while accepted
        .as_ref()
        .is_none_or(|p: &StreamPeerTcp| p.available_bytes() < 3)
    {
        assert!(Instant::now() < deadline, "the bytes never arrived");
        reactor.poll(Some(Duration::from_millis(10))).unwrap();
        if accepted.is_none() {
            accepted = server.take_connection();
        }
    }
    let mut accepted = accepted.unwrap();
    assert_eq!(accepted.get_u32(), Err(SocketError::OutOfBufferMemory));
    assert_eq!(accepted.get_string(), Err(SocketError::OutOfBufferMemory));
}
