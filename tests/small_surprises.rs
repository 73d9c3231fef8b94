//! Issue 10 item 6: `SocketAddr` forms, `listen(port, "localhost")`, an
//! accepted peer's id without `unwrap`, `available_packet_count` on `&self`.
//! Loopback only, port 0, every wait bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lunanet::{
    HandleId, PacketPeer, PacketPeerStream, Reactor, SocketError, Status, StreamPeerTcp, TcpServer,
};

const LONG: Duration = Duration::from_secs(10);

fn accept(reactor: &Reactor, server: &mut TcpServer) -> (HandleId, StreamPeerTcp) {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(pair) = server.take_connection_with_id() {
            return pair;
        }
        assert!(Instant::now() < deadline, "no connection accepted");
        reactor.poll(Some(Duration::from_millis(5))).expect("poll");
    }
}

#[test]
fn listen_on_localhost_accepts_a_client_that_connects_to_localhost() {
    let reactor = Reactor::new().unwrap();
    let mut server = TcpServer::new(&reactor);
    server
        .listen(0, "localhost")
        .expect("localhost is accepted");
    let mut client = StreamPeerTcp::new(&reactor);
    // Resolved in the background; `::1` (if listed first) is refused and
    // `127.0.0.1` is tried next.
    client
        .connect_to_host("localhost", server.local_port())
        .unwrap();
    client
        .wait_connected(LONG)
        .expect("connected through localhost");
    let (_, accepted) = accept(&reactor, &mut server);
    let remote = accepted.remote_addr().expect("remote address");
    assert!(remote.ip().is_loopback(), "{remote}");
    assert_eq!(
        client.remote_addr().map(|a| a.ip().to_string()).as_deref(),
        Some("127.0.0.1"),
        "\"localhost\" listens on the IPv4 loopback"
    );
    // Any other name is still refused: `listen` does not resolve.
    let mut other = TcpServer::new(&reactor);
    assert_eq!(
        other.listen(0, "example.invalid"),
        Err(SocketError::InvalidIpAddress)
    );
}

#[test]
fn socket_addr_forms_and_the_accepted_id() {
    let reactor = Reactor::new().unwrap();
    let mut server = TcpServer::new(&reactor);
    server
        .listen_on(SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.local_port()));
    let mut client = StreamPeerTcp::new(&reactor);
    client.connect_to(addr).unwrap();
    client.wait_connected(LONG).unwrap();
    assert_eq!(client.remote_addr(), Some(addr));
    let (id, accepted) = accept(&reactor, &mut server);
    assert_eq!(accepted.id(), Some(id));
    assert_eq!(accepted.status(), Status::Connected);
    assert_eq!(
        server.listen_on(addr),
        Err(SocketError::AlreadyInit),
        "same rules as listen"
    );
}

/// Counting through a shared reference, generically through the trait,
/// moves nothing out of the peer.
#[test]
fn available_packet_count_needs_no_mut() {
    fn count(p: &impl PacketPeer) -> usize {
        p.available_packet_count()
    }
    let reactor = Reactor::new().unwrap();
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").unwrap();
    let mut tx = StreamPeerTcp::new(&reactor);
    tx.connect_to_host("127.0.0.1", server.local_port())
        .unwrap();
    let mut tx = PacketPeerStream::new(tx);
    let (_, rx) = accept(&reactor, &mut server);
    let rx = PacketPeerStream::new(rx);
    for p in [&b"a"[..], b"", b"ccc"] {
        tx.put_packet(p).unwrap();
    }
    let deadline = Instant::now() + LONG;
    while count(&rx) < 3 {
        assert!(Instant::now() < deadline, "3 packets never counted");
        reactor.poll(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(rx.buffered_bytes(), 0, "counting pulled nothing");
    assert_eq!(rx.get_ref().available_bytes(), 5 + 4 + 7);
    let mut rx = rx;
    assert_eq!(rx.get_packet().unwrap(), b"a");
    assert_eq!(count(&rx), 2);
}
