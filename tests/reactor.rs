//! The reactor as a whole: many peers, the ready set, stale ids, wakers,
//! coalesced writes, memory release.
mod util;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lunanet::{Config, HandleId, Reactor, Status, StreamPeerTcp};
use util::*;

#[test]
fn five_hundred_peers_echo_in_one_reactor() {
    const PEERS: usize = 500;
    const ROUNDS: usize = 20;
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let mut clients: Vec<StreamPeerTcp> = (0..PEERS)
        .map(|_| {
            let mut c = StreamPeerTcp::new(&reactor);
            c.connect_to_host("127.0.0.1", server.local_port()).unwrap();
            c
        })
        .collect();
    let mut accepted: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    poll_until(&reactor, "all accepted", || {
        while let Some(p) = server.take_connection() {
            accepted.insert(p.id().unwrap(), p);
        }
        accepted.len() == PEERS
    });
    poll_until(&reactor, "all connected", || {
        clients.iter().all(|c| c.status() == Status::Connected)
    });
    let mut ready = Vec::new();
    let mut buf = [0u8; 64];
    for round in 0..ROUNDS {
        for (i, c) in clients.iter_mut().enumerate() {
            c.put_data(&message(i, round)).unwrap();
        }
        // Server side: visit only the peers that changed, echo what arrived.
        let mut echoed = 0;
        poll_until(&reactor, "every message echoed", || {
            reactor.drain_ready(&mut ready);
            for id in ready.drain(..) {
                if let Some(p) = accepted.get_mut(&id) {
                    loop {
                        match p.get_partial_data(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                p.put_data(&buf[..n]).unwrap();
                                echoed += n;
                            }
                            Err(e) => panic!("round {round}: echo read: {e}"),
                        }
                    }
                }
            }
            echoed == PEERS * 64
        });
        for (i, c) in clients.iter_mut().enumerate() {
            c.wait_for_bytes(64, LONG).unwrap();
            c.get_data(&mut buf).unwrap();
            assert_eq!(buf, message(i, round), "peer {i} round {round}");
        }
    }
}

fn message(peer: usize, round: usize) -> [u8; 64] {
    let mut m = [0u8; 64];
    for (j, b) in m.iter_mut().enumerate() {
        *b = (peer * 7 + round * 13 + j) as u8;
    }
    m
}

#[test]
fn a_peer_dropped_while_in_the_ready_batch_never_aliases_its_successor() {
    let reactor = Reactor::new().unwrap();
    let (mut a1, a2) = pair(&reactor);
    let (mut b1, b2) = pair(&reactor);
    a1.put_data(b"to a").unwrap();
    b1.put_data(b"to b").unwrap();
    poll_until(&reactor, "both have data", || {
        a2.available_bytes() == 4 && b2.available_bytes() == 4
    });
    let mut batch = Vec::new();
    reactor.drain_ready(&mut batch);
    let b_id = b2.id().unwrap();
    assert!(batch.contains(&a2.id().unwrap()) && batch.contains(&b_id));
    // While handling the batch, drop b2; once its close completes, new
    // entries take its freed slot. b2's id must never reach them.
    let before = reactor.len();
    drop(b2);
    poll_until(&reactor, "b2's slot freed", || {
        b1.status() == Status::None && reactor.len() < before
    });
    let mut server = server(&reactor);
    let mut c = StreamPeerTcp::new(&reactor);
    c.connect_to_host("127.0.0.1", server.local_port()).unwrap();
    let c2 = accept(&reactor, &mut server);
    let ids = [server.id().unwrap(), c.id().unwrap(), c2.id().unwrap()];
    assert!(
        ids.iter().any(|id| id.index() == b_id.index()),
        "the slot was not reused: the test proves nothing"
    );
    assert!(!ids.contains(&b_id), "a stale id matches a new peer");
    // Traffic for the new occupant is reported under its own id only.
    c.put_data(b"new").unwrap();
    let mut seen = Vec::new();
    poll_until(&reactor, "c2 data", || {
        reactor.drain_ready(&mut seen);
        c2.available_bytes() == 3
    });
    assert!(!seen.contains(&b_id));
    drop(a1);
}

#[test]
fn the_ready_set_lists_each_changed_entry_once_and_nothing_idle() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let mut idle: Vec<_> = (0..50)
        .map(|_| {
            let mut c = StreamPeerTcp::new(&reactor);
            c.connect_to_host("127.0.0.1", server.local_port()).unwrap();
            c
        })
        .collect();
    let mut accepted = Vec::new();
    poll_until(&reactor, "accepted", || {
        while let Some(p) = server.take_connection() {
            accepted.push(p);
        }
        accepted.len() == 50
    });
    poll_until(&reactor, "connected", || {
        idle.iter().all(|c| c.status() == Status::Connected)
    });
    let mut ready = Vec::new();
    reactor.drain_ready(&mut ready);
    ready.clear();
    reactor.poll(Some(Duration::from_millis(10))).unwrap();
    reactor.drain_ready(&mut ready);
    assert!(ready.is_empty(), "idle peers reported: {ready:?}");
    for _ in 0..3 {
        idle[7].put_data(b"x").unwrap();
        reactor.poll(Some(Duration::from_millis(10))).unwrap();
    }
    poll_until(&reactor, "data", || {
        accepted.iter().any(|p| p.available_bytes() == 3)
    });
    reactor.drain_ready(&mut ready);
    let target = accepted
        .iter()
        .find(|p| p.available_bytes() == 3)
        .unwrap()
        .id()
        .unwrap();
    assert_eq!(ready.iter().filter(|&&id| id == target).count(), 1);
    assert!(ready.len() <= 2, "{ready:?}");
    idle.clear();
}

#[test]
fn poll_returns_the_number_of_changed_entries() {
    let reactor = Reactor::new().unwrap();
    let (mut a, b) = pair(&reactor);
    assert_eq!(reactor.poll(Some(Duration::ZERO)).unwrap(), 0);
    a.put_data(b"1").unwrap();
    // Every pass's count is added (none is run and discarded in between).
    let mut changed = 0;
    poll_counting_until(&reactor, "b gets data", |n| {
        changed += n;
        b.available_bytes() == 1
    });
    assert_eq!(changed, 1);
}

#[test]
fn a_waker_ends_a_blocking_poll() {
    let reactor = Reactor::new().unwrap();
    let waker = reactor.waker().unwrap();
    let start = Instant::now();
    let t = std::thread::spawn(move || waker.wake().unwrap());
    reactor.poll(Some(LONG)).unwrap();
    assert!(start.elapsed() < LONG);
    t.join().unwrap();
}

#[test]
fn poll_sleeps_until_the_timeout_when_nothing_happens() {
    let reactor = Reactor::new().unwrap();
    let (_a, _b) = pair(&reactor);
    // Consume the edges left from connecting (e.g. the accepted socket's
    // first writable edge); after that, nothing can wake the reactor.
    for _ in 0..3 {
        reactor.poll(Some(Duration::ZERO)).unwrap();
    }
    for _ in 0..3 {
        let start = Instant::now();
        assert_eq!(reactor.poll(Some(Duration::from_millis(30))).unwrap(), 0);
        assert!(
            start.elapsed() >= Duration::from_millis(29),
            "{:?}",
            start.elapsed()
        );
    }
}

#[test]
fn coalesced_writes_go_out_in_the_next_pass_in_order() {
    let reactor = reactor_with(Config::default().coalesce_writes(true));
    let (mut a, mut b) = pair(&reactor);
    for i in 0..100u8 {
        a.put_data(&[i; 10]).unwrap();
    }
    assert_eq!(
        a.pending_write_bytes(),
        1000,
        "nothing written before the pass"
    );
    reactor.flush();
    assert_eq!(a.pending_write_bytes(), 0);
    let got = read_exact(&reactor, &mut b, 1000);
    for (i, chunk) in got.chunks(10).enumerate() {
        assert_eq!(chunk, &[i as u8; 10]);
    }
    a.put_data(b"tail").unwrap();
    assert_eq!(read_exact(&reactor, &mut b, 4), b"tail");
}

#[test]
fn buffers_of_idle_peers_are_released() {
    let reactor = Reactor::new().unwrap();
    let (mut a, mut b) = pair(&reactor);
    a.put_data(&[1u8; 3000]).unwrap();
    let _ = read_exact(&reactor, &mut b, 3000);
    assert!(reactor.buffered_capacity() > 0);
    // Released after about two idle sweeps (1 s each); the reactor wakes for them.
    let deadline = Instant::now() + LONG;
    while reactor.buffered_capacity() > 0 {
        assert!(Instant::now() < deadline, "never released");
        reactor.poll(Some(Duration::from_millis(200))).unwrap();
    }
    // And they come back on demand.
    a.put_data(b"again").unwrap();
    assert_eq!(read_exact(&reactor, &mut b, 5), b"again");
}

#[test]
fn peers_outlive_a_dropped_reactor_handle() {
    let reactor = Reactor::new().unwrap();
    let (mut a, mut b) = pair(&reactor);
    drop(reactor);
    a.put_data(b"still works").unwrap();
    b.wait_for_bytes(11, LONG).unwrap();
    let mut buf = [0u8; 11];
    b.get_data(&mut buf).unwrap();
    assert_eq!(&buf, b"still works");
}
