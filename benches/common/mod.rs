//! Fixtures shared by the bench targets: loopback pairs in ONE reactor.
//!
//! Unit used everywhere in `benches/`: a **peer** is one `StreamPeerTcp` (one
//! socket registered in the reactor). A **pair** is a client peer connected to
//! a `TcpServer` of the same reactor plus the peer the server accepted for it,
//! so `N` peers are `N / 2` pairs and `N` sockets. (10 000 *pairs* would need
//! 20 005 descriptors; the hard `RLIMIT_NOFILE` of this machine kind is 20 000
//! and cannot be raised without `CAP_SYS_RESOURCE`, so the 10 000 figures of
//! the performance issue are 10 000 peers = 5 000 pairs.)
#![allow(dead_code)] // each bench target uses a different subset

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lunanet::{HandleId, Reactor, Status, StreamPeerTcp, TcpServer};

// The timeouts and the descriptor limit are the tests' (one helper module).
pub use crate::util::{LONG, PHASE, raise_nofile};

/// Connections opened before waiting for them (below the 1024 backlog, so no
/// SYN is dropped and retried a second later).
const CONNECT_BATCH: usize = 256;

/// Which side of a pair a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The peer that called `connect_to_host`.
    Client,
    /// The peer `TcpServer::take_connection` returned.
    Accepted,
}

/// `pairs` loopback pairs in one reactor: `clients[i]` is connected to
/// `accepted[i]`.
pub struct Pairs {
    pub reactor: Reactor,
    pub server: TcpServer,
    pub clients: Vec<StreamPeerTcp>,
    pub accepted: Vec<StreamPeerTcp>,
}

impl Pairs {
    /// A server on 127.0.0.1 (port 0) in `reactor`, no pairs yet.
    pub fn empty(reactor: &Reactor) -> Pairs {
        let mut server = TcpServer::new(reactor);
        server.listen(0, "127.0.0.1").expect("listen on 127.0.0.1");
        Pairs {
            reactor: reactor.clone(),
            server,
            clients: Vec::new(),
            accepted: Vec::new(),
        }
    }

    /// `pairs` connected, idle pairs in `reactor` (panics with a clear message
    /// when the descriptors do not suffice).
    pub fn new(reactor: &Reactor, pairs: usize) -> Pairs {
        let mut p = Pairs::empty(reactor);
        p.connect(pairs);
        p.settle();
        p
    }

    /// Reserves room for `pairs` more pairs in the handle vectors, exactly.
    pub fn reserve_exact(&mut self, pairs: usize) {
        self.clients.reserve_exact(pairs);
        self.accepted.reserve_exact(pairs);
    }

    /// Heap bytes held by the two handle vectors (the application's side).
    pub fn handle_bytes(&self) -> usize {
        (self.clients.capacity() + self.accepted.capacity()) * std::mem::size_of::<StreamPeerTcp>()
    }

    /// Number of peers (two per pair).
    pub fn peers(&self) -> usize {
        self.clients.len() + self.accepted.len()
    }

    /// Adds `pairs` connected pairs, `CONNECT_BATCH` at a time.
    pub fn connect(&mut self, pairs: usize) {
        if let Err(e) = raise_nofile(self.peers() + 2 * pairs) {
            panic!("{e}");
        }
        let port = self.server.local_port();
        let mut left = pairs;
        while left > 0 {
            let batch = left.min(CONNECT_BATCH);
            let first = self.clients.len();
            for _ in 0..batch {
                let mut c = StreamPeerTcp::new(&self.reactor);
                c.connect_to_host("127.0.0.1", port)
                    .unwrap_or_else(|e| panic!("connect #{}: {e}", self.clients.len()));
                self.clients.push(c);
            }
            let deadline = Instant::now() + PHASE;
            loop {
                while let Some(p) = self.server.take_connection() {
                    self.accepted.push(p);
                }
                let connected = self.clients[first..]
                    .iter()
                    .all(|c| c.status() == Status::Connected);
                if connected && self.accepted.len() == self.clients.len() {
                    break;
                }
                if let Some(bad) = self.clients[first..]
                    .iter()
                    .find(|c| matches!(c.status(), Status::Error | Status::None))
                {
                    panic!("a client failed to connect: {:?}", bad.error());
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out connecting pairs ({} of {} accepted)",
                    self.accepted.len(),
                    self.clients.len()
                );
                self.reactor
                    .poll(Some(Duration::from_millis(10)))
                    .expect("reactor poll");
            }
            // Pair them up: accepted[i] is the other end of clients[i].
            let by_port: HashMap<u16, usize> = self.clients[first..]
                .iter()
                .enumerate()
                .map(|(i, c)| (c.local_port(), first + i))
                .collect();
            let mut batch_accepted: Vec<StreamPeerTcp> = self.accepted.drain(first..).collect();
            batch_accepted.sort_by_key(|a| by_port[&a.connected_port()]);
            self.accepted.extend(batch_accepted);
            left -= batch;
        }
    }

    /// Polls until a pass changes nothing, then empties the ready set.
    pub fn settle(&self) {
        let deadline = Instant::now() + LONG;
        let mut quiet = 0;
        while quiet < 3 {
            assert!(Instant::now() < deadline, "reactor never went quiet");
            let changed = self.reactor.poll(Some(Duration::ZERO)).expect("poll");
            quiet = if changed == 0 { quiet + 1 } else { 0 };
        }
        let mut ready = Vec::new();
        self.reactor.drain_ready(&mut ready);
    }

    /// A table from `HandleId::index()` to the peer's side and position, for
    /// ready-set lookups without hashing.
    pub fn id_table(&self) -> Vec<Option<(HandleId, Side, usize)>> {
        let mut table = Vec::new();
        let sides = [
            (Side::Client, &self.clients),
            (Side::Accepted, &self.accepted),
        ];
        for (side, peers) in sides {
            for (i, p) in peers.iter().enumerate() {
                let id = p.id().expect("connected peer has an id");
                if table.len() <= id.index() {
                    table.resize(id.index() + 1, None);
                }
                table[id.index()] = Some((id, side, i));
            }
        }
        table
    }

    /// The client and accepted peer of pair `i`, both mutable.
    pub fn pair_mut(&mut self, i: usize) -> (&mut StreamPeerTcp, &mut StreamPeerTcp) {
        (&mut self.clients[i], &mut self.accepted[i])
    }
}

/// Looks up a ready-set id in an [`Pairs::id_table`] table.
#[inline]
pub fn lookup(table: &[Option<(HandleId, Side, usize)>], id: HandleId) -> Option<(Side, usize)> {
    match table.get(id.index()) {
        Some(Some((known, side, i))) if *known == id => Some((*side, *i)),
        _ => None,
    }
}

/// Runs non-blocking passes until `peer` has `n` bytes available.
#[inline]
pub fn wait_available(reactor: &Reactor, peer: &StreamPeerTcp, n: usize) {
    let mut spins = 0u32;
    let mut deadline = None;
    loop {
        reactor.poll(Some(Duration::ZERO)).expect("poll");
        if peer.available_bytes() >= n {
            return;
        }
        spins += 1;
        if spins.is_multiple_of(1024) {
            let d = *deadline.get_or_insert_with(|| Instant::now() + LONG);
            assert!(Instant::now() < d, "timed out waiting for {n} bytes");
        }
    }
}

/// One echo round trip of `msg` through a pair of the same reactor: `a` puts,
/// `b` gets it and puts it back, `a` gets it. Verifies the bytes.
#[inline]
pub fn round_trip(
    reactor: &Reactor,
    a: &mut StreamPeerTcp,
    b: &mut StreamPeerTcp,
    msg: &[u8],
    buf: &mut [u8],
) {
    a.put_data(msg).expect("put_data");
    wait_available(reactor, b, msg.len());
    b.get_data(buf).expect("get_data");
    b.put_data(buf).expect("put_data back");
    wait_available(reactor, a, msg.len());
    a.get_data(buf).expect("get_data echo");
    assert_eq!(buf, msg, "echo corrupted");
}

/// One tick over a ready set: every client in `senders` puts `msg` (one
/// syscall each), then non-blocking passes run until all `senders.len()`
/// messages have arrived; each pass drains the ready set and reads every ready
/// accepted peer. With `echo`, each received message is put back and the
/// tick also waits for the clients to read their echoes (a full round trip
/// per sender). `ready` is reused so the tick allocates nothing.
pub fn ready_tick(
    pairs: &mut Pairs,
    senders: std::ops::Range<usize>,
    table: &[Option<(HandleId, Side, usize)>],
    ready: &mut Vec<HandleId>,
    msg: &[u8],
    echo: bool,
    visited: Option<&mut usize>,
) -> usize {
    let mut ids = 0usize;
    let expected = senders.len();
    for i in senders {
        pairs.clients[i].put_data(msg).expect("put_data");
    }
    let mut buf = [0u8; 256];
    let len = msg.len();
    assert!(len <= buf.len());
    let mut arrived = 0;
    let mut echoed = 0;
    let mut spins = 0u32;
    let mut deadline = None;
    while arrived < expected || (echo && echoed < expected) {
        pairs.reactor.poll(Some(Duration::ZERO)).expect("poll");
        pairs.reactor.drain_ready(ready);
        ids += ready.len();
        for id in ready.drain(..) {
            let Some((side, i)) = lookup(table, id) else {
                continue;
            };
            let peer = match side {
                Side::Accepted => &mut pairs.accepted[i],
                Side::Client => &mut pairs.clients[i],
            };
            // Whole messages only (a message could in theory arrive split).
            while peer.available_bytes() >= len {
                peer.get_data(&mut buf[..len]).expect("get_data");
                // A real check in bench (release) builds too: a bench that
                // moved wrong bytes measured nothing. One 32-64 B compare per
                // message is noise next to the syscalls.
                assert_eq!(&buf[..len], msg, "tick: wrong bytes");
                match side {
                    Side::Accepted => {
                        arrived += 1;
                        if echo {
                            peer.put_data(&buf[..len]).expect("put_data back");
                        }
                    }
                    Side::Client => echoed += 1,
                }
            }
        }
        spins += 1;
        if spins.is_multiple_of(1024) {
            let d = *deadline.get_or_insert_with(|| Instant::now() + LONG);
            assert!(Instant::now() < d, "tick timed out: {arrived}/{expected}");
        }
    }
    if let Some(v) = visited {
        *v += ids;
    }
    arrived
}
