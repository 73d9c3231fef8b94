//! Shared helpers for the loopback tests: port 0 everywhere, every wait bounded
//! by a deadline, no fixed sleeps as synchronisation.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use lunanet::{Config, Reactor, Status, StreamPeerTcp, TcpServer};

/// Generous bound for anything that should take milliseconds on loopback.
pub const LONG: Duration = Duration::from_secs(20);

/// Runs reactor passes until `pred` holds; panics with `what` after `LONG`.
#[track_caller]
pub fn poll_until(reactor: &Reactor, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        reactor
            .poll(Some(Duration::from_millis(20)))
            .expect("reactor poll");
    }
}

/// A listening server on 127.0.0.1 with an OS-chosen port.
#[track_caller]
pub fn server(reactor: &Reactor) -> TcpServer {
    let mut server = TcpServer::new(reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    server
}

/// Takes one connection, polling until it arrives.
#[track_caller]
pub fn accept(reactor: &Reactor, server: &mut TcpServer) -> StreamPeerTcp {
    let mut taken = None;
    poll_until(reactor, "a connection to accept", || {
        taken = server.take_connection();
        taken.is_some()
    });
    taken.expect("taken")
}

/// A connected (client, accepted) pair in one reactor.
#[track_caller]
pub fn pair(reactor: &Reactor) -> (StreamPeerTcp, StreamPeerTcp) {
    let mut server = server(reactor);
    let mut client = StreamPeerTcp::new(reactor);
    client
        .connect_to_host("127.0.0.1", server.local_port())
        .expect("connect");
    let accepted = accept(reactor, &mut server);
    poll_until(reactor, "client connected", || {
        client.status() == Status::Connected
    });
    (client, accepted)
}

/// A reactor with `config`.
pub fn reactor_with(config: Config) -> Reactor {
    Reactor::with_config(config).expect("reactor")
}

/// Reads exactly `n` bytes from `peer`, polling as needed.
#[track_caller]
pub fn read_exact(reactor: &Reactor, peer: &mut StreamPeerTcp, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    poll_until(reactor, "bytes to read", || {
        got += peer.get_partial_data(&mut out[got..]).unwrap_or(0);
        got == n
    });
    out
}

/// A deterministic pattern so any loss, duplication or reordering shows.
pub fn pattern(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| (i % 251) as u8).collect()
}

/// Bounds every blocking call on a std socket by `LONG`, and sends small
/// writes at once.
pub fn bound_std(s: &TcpStream) {
    s.set_read_timeout(Some(LONG)).unwrap();
    s.set_write_timeout(Some(LONG)).unwrap();
    s.set_nodelay(true).unwrap();
}

/// A lunanet client connected to a plain std socket the test controls (the
/// "remote", e.g. a Godot client), both bounded by `LONG`.
#[track_caller]
pub fn client_to_std(reactor: &Reactor) -> (StreamPeerTcp, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = StreamPeerTcp::new(reactor);
    peer.connect_to_host("127.0.0.1", listener.local_addr().unwrap().port())
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut accepted = None;
    poll_until(reactor, "std accept", || {
        accepted = listener.accept().ok();
        accepted.is_some()
    });
    let (remote, _) = accepted.expect("accepted");
    remote.set_nonblocking(false).unwrap();
    bound_std(&remote);
    poll_until(reactor, "connected", || peer.status() == Status::Connected);
    (peer, remote)
}
