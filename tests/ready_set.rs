//! The application-facing ready set is level-triggered (issue 10 item 1): a
//! peer whose input the application left unread (bytes in the peer, or
//! complete packets held by a `PacketPeerStream` over it) is reported by
//! `Reactor::drain_ready` again, until consumed; a peer without leftovers is
//! not reported again. Loopback only, port 0, every loop bounded by a deadline.

use std::time::{Duration, Instant};

use lunanet::{HandleId, PacketPeerStream, PeerMap, Reactor, StreamPeerTcp, TcpServer};

const DEADLINE: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(1);

/// `n` connected pairs of one reactor: (clients, accepted peers with their ids).
fn pairs(reactor: &Reactor, n: usize) -> (Vec<StreamPeerTcp>, Vec<(HandleId, StreamPeerTcp)>) {
    let mut server = TcpServer::new(reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = StreamPeerTcp::new(reactor);
        c.connect_to_host("127.0.0.1", server.local_port())
            .expect("connect");
        clients.push(c);
    }
    let mut accepted = Vec::with_capacity(n);
    let deadline = Instant::now() + DEADLINE;
    while accepted.len() < n {
        assert!(
            Instant::now() < deadline,
            "accepted {} of {n}",
            accepted.len()
        );
        reactor.poll(Some(TICK)).expect("poll");
        while let Some((id, peer)) = server.take_connection_with_id() {
            accepted.push((id, peer));
        }
    }
    for c in &mut clients {
        c.wait_connected(DEADLINE).expect("connected");
    }
    (clients, accepted)
}

/// Drains the ready set until it reports nothing twice in a row, bounded.
fn settle(reactor: &Reactor, ready: &mut Vec<HandleId>) {
    let deadline = Instant::now() + DEADLINE;
    let mut quiet = 0;
    while quiet < 2 {
        assert!(Instant::now() < deadline, "the ready set never went quiet");
        reactor.poll(Some(Duration::ZERO)).expect("poll");
        ready.clear();
        reactor.drain_ready(ready);
        quiet = if ready.is_empty() { quiet + 1 } else { 0 };
    }
}

#[test]
fn one_packet_per_id_per_tick_delivers_every_packet() {
    const PEERS: usize = 40;
    const PACKETS: usize = 25;
    let reactor = Reactor::new().expect("reactor");
    let (clients, accepted) = pairs(&reactor, PEERS);
    let mut peers: PeerMap<(usize, PacketPeerStream<StreamPeerTcp>)> = PeerMap::new();
    for (i, (id, peer)) in accepted.into_iter().enumerate() {
        peers.insert(id, (i, PacketPeerStream::new(peer)));
    }
    let mut ready = Vec::new();
    settle(&reactor, &mut ready);

    // Every client sends all its packets at once: they arrive together and
    // sit in the accepted peer's buffer (and then in its PacketPeerStream).
    let mut senders: Vec<PacketPeerStream<StreamPeerTcp>> =
        clients.into_iter().map(PacketPeerStream::new).collect();
    for (i, s) in senders.iter_mut().enumerate() {
        for k in 0..PACKETS {
            s.put_packet(format!("peer {i} packet {k}").as_bytes())
                .expect("put_packet");
        }
    }

    let mut got = vec![0usize; PEERS];
    let mut total = 0;
    let deadline = Instant::now() + DEADLINE;
    while total < PEERS * PACKETS {
        assert!(
            Instant::now() < deadline,
            "only {total} of {} packets delivered (stranded in the buffers)",
            PEERS * PACKETS
        );
        reactor.poll(Some(TICK)).expect("poll");
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            let Some((i, pps)) = peers.get_mut(id) else {
                continue;
            };
            // One packet per reported id per tick.
            if let Ok(packet) = pps.get_packet() {
                assert_eq!(packet, format!("peer {i} packet {}", got[*i]).as_bytes());
                got[*i] += 1;
                total += 1;
            }
        }
    }
    assert!(got.iter().all(|&n| n == PACKETS), "{got:?}");
    // Nothing is left: no accepted peer is reported again.
    for _ in 0..3 {
        reactor.poll(Some(TICK)).expect("poll");
        reactor.drain_ready(&mut ready);
        let busy: Vec<_> = ready
            .drain(..)
            .filter(|id| peers.contains_key(*id))
            .collect();
        assert!(busy.is_empty(), "reported without leftovers: {busy:?}");
    }
    drop(senders);
}

#[test]
fn bounded_reads_per_tick_deliver_every_byte_and_then_go_quiet() {
    const PEERS: usize = 20;
    const BYTES: usize = 3000;
    const PER_TICK: usize = 64;
    let reactor = Reactor::new().expect("reactor");
    let (mut clients, accepted) = pairs(&reactor, PEERS);
    let mut peers: PeerMap<(usize, StreamPeerTcp)> = PeerMap::new();
    for (i, (id, peer)) in accepted.into_iter().enumerate() {
        peers.insert(id, (i, peer));
    }
    let mut ready = Vec::new();
    settle(&reactor, &mut ready);
    for (i, c) in clients.iter_mut().enumerate() {
        let data: Vec<u8> = (0..BYTES).map(|k| (i + k) as u8).collect();
        c.put_data(&data).expect("put_data");
    }

    let mut got: Vec<Vec<u8>> = vec![Vec::new(); PEERS];
    let mut total = 0;
    let mut buf = [0u8; PER_TICK];
    let deadline = Instant::now() + DEADLINE;
    while total < PEERS * BYTES {
        assert!(
            Instant::now() < deadline,
            "only {total} of {} bytes delivered",
            PEERS * BYTES
        );
        reactor.poll(Some(TICK)).expect("poll");
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            let Some((i, peer)) = peers.get_mut(id) else {
                continue;
            };
            let n = peer.get_partial_data(&mut buf).expect("get_partial_data");
            got[*i].extend_from_slice(&buf[..n]);
            total += n;
        }
    }
    for (i, g) in got.iter().enumerate() {
        let want: Vec<u8> = (0..BYTES).map(|k| (i + k) as u8).collect();
        assert_eq!(g, &want, "peer {i}");
    }
    for _ in 0..3 {
        reactor.poll(Some(TICK)).expect("poll");
        reactor.drain_ready(&mut ready);
        let busy: Vec<_> = ready
            .drain(..)
            .filter(|id| peers.contains_key(*id))
            .collect();
        assert!(busy.is_empty(), "reported without leftovers: {busy:?}");
    }
}

/// A peer left with unread bytes is reported at every drain until read, and
/// a blocking `poll` after such a drain does not sleep on it.
#[test]
fn unread_input_is_reported_again_and_poll_does_not_sleep_on_it() {
    let reactor = Reactor::new().expect("reactor");
    let (mut clients, mut accepted) = pairs(&reactor, 1);
    let (id, mut peer) = accepted.pop().expect("one pair");
    let mut ready = Vec::new();
    settle(&reactor, &mut ready);
    clients[0].put_data(b"hello").expect("put_data");
    peer.wait_for_bytes(5, DEADLINE).expect("arrived");
    reactor.drain_ready(&mut ready);
    assert!(ready.contains(&id), "reported when the bytes arrived");
    for round in 0..3 {
        ready.clear();
        let started = Instant::now();
        // Long timeout: it must return at once, the peer still has input.
        let changed = reactor.poll(Some(Duration::from_secs(5))).expect("poll");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "round {round}: poll slept although input was left unread"
        );
        assert!(
            changed >= 1,
            "round {round}: the leftover counts as a change"
        );
        reactor.drain_ready(&mut ready);
        assert!(
            ready.contains(&id),
            "round {round}: reported again while unread"
        );
    }
    let mut buf = [0u8; 5];
    peer.get_data(&mut buf).expect("get_data");
    assert_eq!(&buf, b"hello");
    ready.clear();
    reactor.drain_ready(&mut ready);
    assert!(!ready.contains(&id), "reported after it was consumed");
}
