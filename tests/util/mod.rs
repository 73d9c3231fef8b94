//! The ONE helper module of the tests and benches (benches include it with
//! `#[path = "../tests/util/mod.rs"]`): loopback pairs on port 0, `poll_until`
//! bounded by one set of timeouts, the seeded byte streams and RNG
//! (`splitmix64`, written once), and raising the descriptor limit (once).
//! Every wait is bounded by a deadline; nothing sleeps to synchronise.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use lunanet::{
    Config, PacketPeerStream, Reactor, SocketError, Status, StreamPeer, StreamPeerTcp, TcpServer,
};

/// Generous bound for anything that should take milliseconds on loopback
/// (a loaded 2-core CI machine running debug tests in parallel included).
pub const LONG: Duration = Duration::from_secs(20);

/// Bound for a phase that moves a lot of data or many sockets (connecting
/// thousands of pairs, draining a soak).
pub const PHASE: Duration = Duration::from_secs(60);

/// The reactor pass length `poll_until` uses between checks.
pub const STEP: Duration = Duration::from_millis(20);

/// Bound for a blocking read that must end *because the other side acted*
/// (EOF, reset): far below `LONG`, so a read that only ends by its timeout is
/// told apart from one that ended for the right reason.
pub const PROMPT: Duration = Duration::from_secs(5);

/// Runs reactor passes until `pred` holds; panics with `what` after `LONG`.
#[track_caller]
pub fn poll_until(reactor: &Reactor, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        reactor.poll(Some(STEP)).expect("reactor poll");
    }
}

/// Like [`poll_until`], but `pred` also sees the number of changed entries
/// each pass reported (`Reactor::poll`'s return value), starting with one
/// non-blocking pass so that no pass is run without `pred` seeing its count.
#[track_caller]
pub fn poll_counting_until(reactor: &Reactor, what: &str, mut pred: impl FnMut(usize) -> bool) {
    let deadline = Instant::now() + LONG;
    loop {
        let changed = reactor.poll(Some(STEP)).expect("reactor poll");
        if pred(changed) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
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
        match peer.get_partial_data(&mut out[got..]) {
            Ok(k) => got += k,
            Err(e) => panic!("reading {n} bytes: {e} after {got}"),
        }
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

/// Takes every whole packet `rx` has now, passing each to `each`; stops at
/// `Busy` (no whole frame yet) and panics on any other error, so a loop over
/// it neither hangs on nor swallows a broken stream.
#[track_caller]
pub fn take_packets<P: StreamPeer>(rx: &mut PacketPeerStream<P>, mut each: impl FnMut(Vec<u8>)) {
    loop {
        match rx.get_packet() {
            Ok(p) => each(p),
            Err(SocketError::Busy) => return,
            Err(e) => panic!("get_packet: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------

/// Descriptors a test process needs besides its sockets: stdio, epoll, the
/// waker, listeners, the test harness, slack.
pub const FD_SLACK: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` so that `sockets` sockets (plus
/// [`FD_SLACK`]) fit; `Err` says why they cannot (the hard limit is lower and
/// only a privileged user can raise it).
pub fn raise_nofile(sockets: usize) -> Result<u64, String> {
    let needed = sockets as u64 + FD_SLACK;
    let got = rlimit::increase_nofile_limit(needed)
        .map_err(|e| format!("raising RLIMIT_NOFILE to {needed}: {e}"))?;
    if got < needed {
        return Err(format!(
            "{sockets} sockets need {needed} descriptors but RLIMIT_NOFILE allows {got} \
             (its hard limit); raise `ulimit -Hn` as a privileged user"
        ));
    }
    Ok(got)
}

// ---------------------------------------------------------------------------
// Seeded streams and RNG
// ---------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea, Flood 2014): a good 64-bit mix of `z`.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` with the bytes of stream `seed` from `offset` on. Random access
/// (a receiver regenerates any part): byte `i` is byte `i % 8` of
/// `splitmix64(seed ^ word(i / 8))`.
pub fn fill_stream(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = splitmix64(seed ^ (pos >> 3).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let bytes = word.to_le_bytes();
        let start = (pos & 7) as usize;
        let n = (8 - start).min(out.len() - i);
        out[i..i + n].copy_from_slice(&bytes[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// Bytes `offset..offset + len` of stream `seed` (see [`fill_stream`]).
pub fn stream_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    fill_stream(seed, offset, &mut out);
    out
}

/// A small seeded PRNG for sizes and choices (xorshift64*, seeded through
/// [`splitmix64`]).
#[derive(Debug, Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    /// The generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix64(seed) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
