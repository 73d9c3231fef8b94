//! Shared helpers for the loopback tests: port 0 everywhere, every wait bounded
//! by a deadline, no fixed sleeps as synchronisation.
#![allow(dead_code)] // each test binary uses a different subset

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
