//! Issue 9 item 1: the default `Config` coalesces a tick's output into one
//! write per peer per pass, while a reply is still written at once.
//! docs/contract.md 9.2 states exactly when queued bytes leave.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lunanet::{Config, Reactor, StreamPeerTcp, TcpServer};

const LONG: Duration = Duration::from_secs(20);

/// An accepted peer and the std client at its other end.
fn accepted(reactor: &Reactor) -> (StreamPeerTcp, TcpStream) {
    let mut server = TcpServer::new(reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let client = TcpStream::connect(("127.0.0.1", server.local_port())).expect("connect");
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(peer) = server.take_connection() {
            return (peer, client);
        }
        assert!(Instant::now() < deadline, "no connection");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
    }
}

/// Reads exactly `n` bytes (blocking, bounded by `LONG`).
fn read_n(client: &mut TcpStream, n: usize) -> Vec<u8> {
    client.set_read_timeout(Some(LONG)).expect("timeout");
    let mut got = vec![0u8; n];
    client.read_exact(&mut got).expect("read");
    got
}

/// Nothing has arrived at `client` (non-blocking peek).
fn nothing_arrived(client: &TcpStream) -> bool {
    client.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 1];
    let r = client.peek(&mut b);
    client.set_nonblocking(false).expect("blocking");
    matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[test]
fn the_default_coalesces_writes() {
    assert!(Config::default().coalesce_writes);
}

/// A tick: ten records put to a peer that sent nothing stay queued (no write
/// at all), and the next pass writes them, before it would sleep.
#[test]
fn a_ticks_records_stay_queued_until_the_next_pass() {
    let reactor = Reactor::new().expect("reactor");
    let (mut peer, mut client) = accepted(&reactor);
    let mut expected = Vec::new();
    for i in 0..10u8 {
        let record = [i; 32];
        peer.put_data(&record).expect("put");
        expected.extend_from_slice(&record);
    }
    assert_eq!(peer.pending_write_bytes(), 320, "queued, not written");
    assert!(
        nothing_arrived(&client),
        "no write happened before the pass"
    );
    // A pass that would sleep a whole minute flushes first and returns
    // nothing changed; the bytes are already with the kernel.
    let started = Instant::now();
    reactor.poll(Some(Duration::ZERO)).expect("poll");
    assert!(started.elapsed() < LONG);
    assert_eq!(peer.pending_write_bytes(), 0, "one pass wrote the queue");
    assert_eq!(read_n(&mut client, 320), expected, "in order");
}

/// `Reactor::flush` and `io::Write::flush` write queued output without a pass.
#[test]
fn flush_writes_queued_output() {
    let reactor = Reactor::new().expect("reactor");
    let (mut peer, mut client) = accepted(&reactor);
    peer.put_data(b"by flush").expect("put");
    assert_eq!(peer.pending_write_bytes(), 8);
    reactor.flush();
    assert_eq!(peer.pending_write_bytes(), 0);
    assert_eq!(read_n(&mut client, 8), b"by flush");
    peer.write_all(b"by io").expect("write");
    assert_eq!(peer.pending_write_bytes(), 5);
    peer.flush().expect("io flush");
    assert_eq!(read_n(&mut client, 5), b"by io");
}

/// Request/response: the first put after a pass that read from the peer is
/// written at once; a second put in the same pass is queued until the next.
#[test]
fn a_reply_is_written_at_once_and_what_follows_it_is_queued() {
    let reactor = Reactor::new().expect("reactor");
    let (mut peer, mut client) = accepted(&reactor);
    for round in 0..3u8 {
        client.write_all(&[round; 4]).expect("request");
        peer.wait_for_bytes(4, LONG).expect("request arrives");
        let mut req = [0u8; 4];
        peer.get_data(&mut req).expect("get");
        assert_eq!(req, [round; 4]);
        peer.put_data(&[round + 100; 4]).expect("reply");
        assert_eq!(peer.pending_write_bytes(), 0, "the reply left at once");
        assert_eq!(read_n(&mut client, 4), [round + 100; 4]);
        peer.put_data(b"more").expect("second put");
        assert_eq!(peer.pending_write_bytes(), 4, "after the reply: queued");
        assert!(nothing_arrived(&client));
        reactor.poll(Some(Duration::ZERO)).expect("poll");
        assert_eq!(peer.pending_write_bytes(), 0);
        assert_eq!(read_n(&mut client, 4), b"more");
    }
}

/// Disconnecting flushes queued output, then sends FIN.
#[test]
fn disconnect_sends_queued_output_then_fin() {
    let reactor = Reactor::new().expect("reactor");
    let (mut peer, mut client) = accepted(&reactor);
    peer.put_data(b"last words").expect("put");
    assert_eq!(peer.pending_write_bytes(), 10);
    peer.disconnect_from_host();
    client.set_read_timeout(Some(LONG)).expect("timeout");
    let mut all = Vec::new();
    client.read_to_end(&mut all).expect("read to FIN");
    assert_eq!(all, b"last words");
}

/// The opt-out: every put is written at once.
#[test]
fn coalesce_writes_false_writes_at_once() {
    let reactor = Reactor::with_config(Config::default().coalesce_writes(false)).expect("reactor");
    let (mut peer, mut client) = accepted(&reactor);
    for i in 0..3u8 {
        peer.put_data(&[i; 32]).expect("put");
        assert_eq!(peer.pending_write_bytes(), 0, "written at once");
        assert_eq!(read_n(&mut client, 32), [i; 32]);
    }
}
