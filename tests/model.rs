//! Model-based property test: random sequences of API operations on pairs of
//! peers, checked against a model of the contract in DESIGN.md.
//!
//! Each case builds one reactor (small buffer limits, writes coalesced or
//! not), a `TcpServer` and a plain std listener in it, and runs a random
//! sequence of operations on up to two connection slots:
//! `connect_to_host` (a new connection, a reconnect, or `AlreadyInit`),
//! `put_data`, `put_partial_data`, `get_data`, `get_partial_data`, `poll`,
//! `disconnect_from_host`, drop, a remote close (`shutdown(Write)` of a std
//! socket, or `disconnect_from_host` of the lunanet peer at the other end), a
//! remote drop and a remote reset (`SO_LINGER 0` on a std socket). Every
//! connection is a lunanet client whose other end is either a lunanet peer
//! taken from the `TcpServer` (so both ends are checked) or a std socket.
//!
//! The model knows, for each direction of each connection, how many bytes the
//! sender's `put_*` accepted and how many the receiver took; the bytes are a
//! deterministic stream, so every byte read is checked against what must be
//! there. After every operation it checks:
//!
//! - **bytes**: what arrives is exactly the accepted bytes, in order; a
//!   receiver never has more available than was accepted and not yet read;
//! - **all-or-nothing**: `get_data` fills the buffer completely or consumes
//!   nothing (`Busy`/`FileEof`/`OutOfBufferMemory`/the error, each only when
//!   the contract says); `put_data` accepts everything or nothing
//!   (`OutOfBufferMemory` exactly when the write queue has no room);
//!   `get_partial_data` takes `min(len, available)`; `put_partial_data` takes
//!   at least what fits in the queue;
//! - **no side effects outside a pass**: statuses and available bytes of every
//!   peer change only during `poll` (apart from what the operation itself
//!   consumed, and `disconnect_from_host` → `None`);
//! - **status transitions** during a pass: `Connecting → Connected`;
//!   `→ None` only after the remote closed and every byte it sent was read;
//!   `→ Error` only after a reset (or a remote that closed a socket with
//!   unread data, which the kernel turns into a reset); `None` and `Error`
//!   are final; available bytes only grow during a pass;
//! - at the end of the case, **liveness**: after polls bounded by a deadline,
//!   every byte accepted on a connection that was not reset arrives; then a
//!   **graceful close** (the remote's close and the client's reply queued in
//!   the same tick, or the client's last message and close) delivers
//!   everything accepted before it.
//!
//! Network timing is not deterministic, so the model is tolerant exactly
//! where the contract is: when bytes arrive and when a pass notices a close
//! are left open, but not what arrives or what may follow what.
//!
//! `PROPTEST_CASES` raises the case count (default 256, about 5 s in a debug
//! build); the test prints how many cases and operations ran and how often
//! each interesting outcome occurred.
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod util;

use lunanet::{Config, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use util::{splitmix64, stream_bytes as stream};

/// Small limits, so that the limits are reached within a few operations.
const READ_LIMIT: usize = 3 * 1024;
const WRITE_LIMIT: usize = 4 * 1024;
/// Long enough that no lingering peer is closed by the timeout during a case
/// (the model allows the consequences once it has elapsed).
const LINGER: Duration = Duration::from_secs(10);
/// Bound for anything that should take milliseconds on loopback.
const DEADLINE: Duration = Duration::from_secs(20);
const DEFAULT_CASES: u32 = 256;
/// From this many cases on, every outcome counter must be above 0.
const MIN_CASES_FOR_COVERAGE: u32 = 64;

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Remote,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Remote => 1,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// `connect_to_host` on the slot's client: a first connection, a
    /// reconnect once the client is `None`, or `AlreadyInit`. The other end is
    /// a std socket or a lunanet peer of the same reactor.
    Connect { slot: usize, std_remote: bool },
    /// `put_data` / `put_partial_data` of `len` bytes (a std `write` on a std
    /// end).
    Put {
        slot: usize,
        side: Side,
        len: usize,
        partial: bool,
    },
    /// `get_data` / `get_partial_data` into `len` bytes (a std `read` on a std
    /// end).
    Get {
        slot: usize,
        side: Side,
        len: usize,
        partial: bool,
    },
    /// A reactor pass waiting up to `millis`.
    Poll { millis: u64 },
    /// `disconnect_from_host` (std end: `shutdown(Write)`).
    Close { slot: usize, side: Side },
    /// Drop the handle (std end: close the socket).
    Drop { slot: usize, side: Side },
    /// Reset the remote: `SO_LINGER 0` then close (a lunanet remote is dropped).
    Reset { slot: usize },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Client), Just(Side::Remote)]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..2usize;
    prop_oneof![
        3 => (slot.clone(), any::<bool>())
            .prop_map(|(slot, std_remote)| Op::Connect { slot, std_remote }),
        8 => (slot.clone(), side(), 0..6 * 1024usize, any::<bool>())
            .prop_map(|(slot, side, len, partial)| Op::Put { slot, side, len, partial }),
        8 => (slot.clone(), side(), 0..4 * 1024usize, any::<bool>())
            .prop_map(|(slot, side, len, partial)| Op::Get { slot, side, len, partial }),
        8 => (0..4u64).prop_map(|millis| Op::Poll { millis }),
        1 => (slot.clone(), side()).prop_map(|(slot, side)| Op::Close { slot, side }),
        1 => (slot.clone(), side()).prop_map(|(slot, side)| Op::Drop { slot, side }),
        1 => slot.prop_map(|slot| Op::Reset { slot }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    coalesce_writes: bool,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (any::<bool>(), prop::collection::vec(op(), 1..80)).prop_map(|(coalesce_writes, ops)| Case {
        coalesce_writes,
        ops,
    })
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Stats {
    cases: AtomicU64,
    ops: AtomicU64,
    polls: AtomicU64,
    bytes: AtomicU64,
    refused_puts: AtomicU64,
    busy_gets: AtomicU64,
    oversized_gets: AtomicU64,
    eof_gets: AtomicU64,
    to_none: AtomicU64,
    to_error: AtomicU64,
    graceful_closes: AtomicU64,
}

static STATS: Stats = Stats {
    cases: AtomicU64::new(0),
    ops: AtomicU64::new(0),
    polls: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    refused_puts: AtomicU64::new(0),
    busy_gets: AtomicU64::new(0),
    oversized_gets: AtomicU64::new(0),
    eof_gets: AtomicU64::new(0),
    to_none: AtomicU64::new(0),
    to_error: AtomicU64::new(0),
    graceful_closes: AtomicU64::new(0),
};

fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[test]
fn api_sequences_follow_the_contract() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = ProptestConfig {
        cases,
        max_shrink_iters: 512,
        // The failing case is printed in full; runs share no regression file.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let result = runner.run(&case(), |case| {
        run_case(&case);
        Ok(())
    });
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "model: {} cases, {} operations ({} polls) in {:.1} s; {} bytes checked; {} puts \
         refused (OutOfBufferMemory), {} gets Busy, {} gets over the read limit \
         (OutOfBufferMemory), {} FileEof; {} → None, {} → Error; {} graceful closes checked",
        get(&STATS.cases),
        get(&STATS.ops),
        get(&STATS.polls),
        started.elapsed().as_secs_f64(),
        get(&STATS.bytes),
        get(&STATS.refused_puts),
        get(&STATS.busy_gets),
        get(&STATS.oversized_gets),
        get(&STATS.eof_gets),
        get(&STATS.to_none),
        get(&STATS.to_error),
        get(&STATS.graceful_closes),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // A generator that drifted (e.g. sizes that never reach a limit, closes
    // that never happen) would leave whole rules unchecked while the test
    // still passes: every outcome the model checks must have occurred.
    if cases >= MIN_CASES_FOR_COVERAGE {
        for (what, counter) in [
            ("cases", &STATS.cases),
            ("operations", &STATS.ops),
            ("polls", &STATS.polls),
            ("bytes checked", &STATS.bytes),
            ("puts refused with OutOfBufferMemory", &STATS.refused_puts),
            ("gets answered Busy", &STATS.busy_gets),
            ("gets over the read limit", &STATS.oversized_gets),
            ("gets answered FileEof or the error", &STATS.eof_gets),
            ("transitions to None", &STATS.to_none),
            ("transitions to Error", &STATS.to_error),
            ("graceful closes checked", &STATS.graceful_closes),
        ] {
            assert!(
                get(counter) > 0,
                "the generator never produced {what} in {cases} cases: that rule went unchecked"
            );
        }
    } else {
        eprintln!(
            "model: only {cases} cases (PROPTEST_CASES): outcome coverage not asserted \
             (needs at least {MIN_CASES_FOR_COVERAGE})"
        );
    }
}

fn run_case(case: &Case) {
    count(&STATS.cases, 1);
    let mut world = World::new(case.coalesce_writes);
    for op in &case.ops {
        count(&STATS.ops, 1);
        world.apply(op);
    }
    world.finish();
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

// The bytes of each flow are `util::stream_bytes(seed, offset, len)`.

static SEEDS: AtomicU64 = AtomicU64::new(1);

/// One direction of one connection.
#[derive(Debug)]
struct Flow {
    seed: u64,
    /// Bytes the sender's `put_*` (or std `write`) accepted.
    accepted: u64,
    /// Bytes the receiver took (all verified).
    delivered: u64,
    /// The sender closed its sending side: FIN follows the accepted bytes.
    fin: bool,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            seed: splitmix64(SEEDS.fetch_add(1, Ordering::Relaxed)),
            accepted: 0,
            delivered: 0,
            fin: false,
        }
    }

    fn in_flight(&self) -> u64 {
        self.accepted - self.delivered
    }

    /// Checks bytes a receiver took against the stream and counts them.
    #[track_caller]
    fn deliver(&mut self, got: &[u8]) {
        assert!(
            self.delivered + got.len() as u64 <= self.accepted,
            "received {} bytes, only {} were accepted",
            self.delivered + got.len() as u64,
            self.accepted
        );
        let expected = stream(self.seed, self.delivered, got.len());
        if got != expected {
            let at = got.iter().zip(&expected).position(|(a, b)| a != b);
            panic!(
                "wrong bytes at stream offset {}: got {got:?}, expected {expected:?}",
                self.delivered + at.unwrap_or(0) as u64
            );
        }
        self.delivered += got.len() as u64;
        count(&STATS.bytes, got.len() as u64);
    }
}

// ---------------------------------------------------------------------------
// The world: the system under test and its model
// ---------------------------------------------------------------------------

/// A lunanet handle and what was last observed of it.
struct End {
    peer: StreamPeerTcp,
    /// `disconnect_from_host` was called (the handle has no connection).
    detached: bool,
    status: Status,
    available: usize,
    /// A `put_*` failed because a direct write found the socket broken.
    write_failed: bool,
}

impl End {
    fn new(peer: StreamPeerTcp) -> End {
        let status = peer.status();
        let available = peer.available_bytes();
        End {
            peer,
            detached: false,
            status,
            available,
            write_failed: false,
        }
    }
}

enum Remote {
    /// Not accepted yet.
    Pending,
    /// A lunanet peer taken from the `TcpServer` (`None` once dropped).
    Lunanet(Option<End>),
    /// A std socket (`None` once closed); `shut` after `shutdown(Write)`.
    Std { sock: Option<TcpStream>, shut: bool },
}

/// One TCP connection: the slot's client and its other end.
struct Connection {
    std_remote: bool,
    client_port: u16,
    remote: Remote,
    /// `flows[0]`: client → remote; `flows[1]`: remote → client.
    flows: [Flow; 2],
    /// A reset may have happened: errors are allowed, liveness is not owed.
    reset: bool,
    /// When an end let go of the connection (its lingering entry may be
    /// closed by the linger timeout after `LINGER`).
    detached_at: Option<Instant>,
}

/// Whether a connection may fail: a reset may have happened, or an end let go
/// of it long enough ago that the linger timeout may have closed it.
fn may_fail(reset: bool, detached_at: Option<Instant>) -> bool {
    reset || detached_at.is_some_and(|t| t.elapsed() + Duration::from_secs(1) >= LINGER)
}

impl Connection {
    fn may_fail(&self) -> bool {
        may_fail(self.reset, self.detached_at)
    }
}

/// The model of a connection, seen from one of its lunanet ends.
struct View<'a> {
    flows: &'a mut [Flow; 2],
    reset: &'a mut bool,
    detached_at: &'a mut Option<Instant>,
}

impl View<'_> {
    fn may_fail(&self) -> bool {
        may_fail(*self.reset, *self.detached_at)
    }
}

struct Slot {
    /// The client handle (kept across reconnects; `None` once dropped).
    client: Option<End>,
    connection: Option<Connection>,
}

struct World {
    reactor: Reactor,
    server: TcpServer,
    /// The std listener for std remotes (`None` after teardown).
    listener: Option<TcpListener>,
    slots: [Slot; 2],
    /// Scratch for std reads.
    buf: Vec<u8>,
}

impl World {
    fn new(coalesce_writes: bool) -> World {
        let reactor = Reactor::with_config(
            Config::default()
                .read_buffer_limit(READ_LIMIT)
                .write_buffer_limit(WRITE_LIMIT)
                .linger_timeout(LINGER)
                .coalesce_writes(coalesce_writes),
        )
        .expect("reactor");
        let mut server = TcpServer::new(&reactor);
        server.listen(0, "127.0.0.1").expect("listen");
        let listener = TcpListener::bind("127.0.0.1:0").expect("std listener");
        listener.set_nonblocking(true).expect("nonblocking");
        World {
            reactor,
            server,
            listener: Some(listener),
            slots: [
                Slot {
                    client: None,
                    connection: None,
                },
                Slot {
                    client: None,
                    connection: None,
                },
            ],
            buf: vec![0; 8 * 1024],
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect { slot, std_remote } => self.connect(slot, std_remote),
            Op::Put {
                slot,
                side,
                len,
                partial,
            } => {
                match side {
                    Side::Client => self.put_lunanet(slot, side, len, partial),
                    Side::Remote if self.is_std(slot) => self.put_std(slot, len),
                    Side::Remote => self.put_lunanet(slot, side, len, partial),
                }
                self.note_input_to_closed(slot);
                self.check_quiet(Some((slot, side)));
            }
            Op::Get {
                slot,
                side,
                len,
                partial,
            } => {
                match side {
                    Side::Client => self.get_lunanet(slot, side, len, partial),
                    Side::Remote if self.is_std(slot) => self.get_std(slot, len),
                    Side::Remote => self.get_lunanet(slot, side, len, partial),
                }
                self.check_quiet(Some((slot, side)));
            }
            Op::Poll { millis } => self.poll(Duration::from_millis(millis)),
            Op::Close { slot, side } => self.close(slot, side, false),
            Op::Drop { slot, side } => self.close(slot, side, true),
            Op::Reset { slot } => self.reset(slot),
        }
    }

    /// Bytes accepted for a std remote that already closed its socket will
    /// be answered with a reset by its kernel: from then on the connection
    /// may fail.
    fn note_input_to_closed(&mut self, slot: usize) {
        if let Some(c) = self.slots[slot].connection.as_mut()
            && matches!(c.remote, Remote::Std { sock: None, .. })
            && c.flows[0].in_flight() > 0
        {
            c.reset = true;
        }
    }

    fn is_std(&self, slot: usize) -> bool {
        self.slots[slot]
            .connection
            .as_ref()
            .is_some_and(|c| c.std_remote)
    }

    /// The lunanet end at (slot, side), with its connection.
    fn end_mut(&mut self, slot: usize, side: Side) -> Option<(&mut End, View<'_>)> {
        let Slot { client, connection } = &mut self.slots[slot];
        let Connection {
            remote,
            flows,
            reset,
            detached_at,
            ..
        } = connection.as_mut()?;
        let end = match side {
            Side::Client => client.as_mut()?,
            Side::Remote => match remote {
                Remote::Lunanet(Some(end)) => end,
                _ => return None,
            },
        };
        Some((
            end,
            View {
                flows,
                reset,
                detached_at,
            },
        ))
    }

    // -- connect --------------------------------------------------------------

    fn connect(&mut self, slot: usize, std_remote: bool) {
        let port = if std_remote {
            let listener = self.listener.as_ref().expect("listener");
            listener.local_addr().expect("addr").port()
        } else {
            self.server.local_port()
        };
        let client = self.slots[slot]
            .client
            .get_or_insert_with(|| End::new(StreamPeerTcp::new(&self.reactor)));
        let before = client.status;
        let result = client.peer.connect_to_host("127.0.0.1", port);
        if before != Status::None {
            assert_eq!(
                result,
                Err(SocketError::AlreadyInit),
                "connect while {before:?}"
            );
            assert_eq!(client.peer.status(), before);
            self.check_quiet(None);
            return;
        }
        result.expect("connect_to_host from None");
        let status = client.peer.status();
        assert!(
            matches!(status, Status::Connecting | Status::Connected),
            "{status:?} right after connect_to_host"
        );
        client.status = status;
        client.detached = false;
        client.available = client.peer.available_bytes();
        assert_eq!(client.available, 0, "a new connection has nothing to read");
        let client_port = client.peer.local_port();
        assert_ne!(client_port, 0, "local port of a connecting peer");
        // The previous connection of this slot (if any) is retired: its other
        // end goes away.
        self.slots[slot].connection = Some(Connection {
            std_remote,
            client_port,
            remote: Remote::Pending,
            flows: [Flow::new(), Flow::new()],
            reset: false,
            detached_at: None,
        });
        self.check_quiet(Some((slot, Side::Client)));
    }

    /// Takes accepted connections and gives them to their pending connection.
    fn accept(&mut self) {
        while let Some(peer) = self.server.take_connection() {
            assert_eq!(peer.status(), Status::Connected, "a taken connection");
            let port = peer.connected_port();
            if let Some(c) = self.pending_for(port, false) {
                c.remote = Remote::Lunanet(Some(End::new(peer)));
            }
        }
        while let Some(listener) = &self.listener {
            match listener.accept() {
                Ok((sock, addr)) => {
                    sock.set_nonblocking(true).expect("nonblocking");
                    sock.set_nodelay(true).expect("nodelay");
                    // A connection of a retired (reconnected) slot is dropped.
                    if let Some(c) = self.pending_for(addr.port(), true) {
                        c.remote = Remote::Std {
                            sock: Some(sock),
                            shut: false,
                        };
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("std accept: {e}"),
            }
        }
    }

    fn pending_for(&mut self, port: u16, std_remote: bool) -> Option<&mut Connection> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.connection.as_mut())
            .find(|c| {
                c.client_port == port
                    && c.std_remote == std_remote
                    && matches!(c.remote, Remote::Pending)
            })
    }

    // -- lunanet operations -----------------------------------------------------

    fn put_lunanet(&mut self, slot: usize, side: Side, len: usize, partial: bool) {
        let Some((end, c)) = self.end_mut(slot, side) else {
            return;
        };
        let may_fail = c.may_fail();
        let flow = &mut c.flows[side.index()];
        let data = stream(flow.seed, flow.accepted, len);
        let pending = end.peer.pending_write_bytes();
        let result = if partial {
            end.peer.put_partial_data(&data)
        } else {
            end.peer.put_data(&data).map(|()| len)
        };
        let after = end.peer.pending_write_bytes();
        assert!(
            after <= WRITE_LIMIT,
            "{after} bytes queued, limit {WRITE_LIMIT}"
        );
        if end.detached {
            assert_eq!(
                result,
                Err(SocketError::SocketInvalid),
                "put after disconnect"
            );
            return;
        }
        match end.status {
            Status::None => {
                assert_eq!(result, Err(SocketError::ConnectionClosed), "put when None");
                return;
            }
            Status::Error => {
                assert_eq!(
                    result,
                    Err(end.peer.error().expect("error()")),
                    "put in Error"
                );
                return;
            }
            Status::Connecting | Status::Connected => {}
        }
        let room = WRITE_LIMIT - pending;
        match result {
            Ok(n) => {
                assert!(n <= len);
                if partial {
                    // Takes at least what fits in the queue.
                    assert!(
                        n >= len.min(room),
                        "put_partial_data({len}) took {n}, room {room}"
                    );
                } else {
                    assert!(len <= room, "put_data({len}) accepted with room {room}");
                }
                assert!(after <= pending + n, "queued more than was accepted");
                flow.accepted += n as u64;
            }
            Err(SocketError::OutOfBufferMemory) if !partial => {
                assert!(len > room, "put_data({len}) refused with room {room}");
                assert_eq!(after, pending, "a refused put_data queued bytes");
                count(&STATS.refused_puts, 1);
            }
            // A direct write found the socket broken: nothing accepted.
            Err(e) if may_fail => {
                assert_eq!(after, pending, "a failed put queued bytes ({e})");
                end.write_failed = true;
            }
            Err(e) => panic!(
                "put of {len} (partial {partial}) while {:?}: {e}",
                end.status
            ),
        }
    }

    fn get_lunanet(&mut self, slot: usize, side: Side, len: usize, partial: bool) {
        let Some((end, c)) = self.end_mut(slot, side) else {
            return;
        };
        let flow = &mut c.flows[1 - side.index()];
        let available = end.peer.available_bytes();
        assert_eq!(available, end.available, "available changed outside a pass");
        let mut buf = vec![0u8; len];
        let result = if partial {
            end.peer.get_partial_data(&mut buf)
        } else {
            end.peer.get_data(&mut buf).map(|()| len)
        };
        if end.detached {
            assert_eq!(
                result,
                Err(SocketError::SocketInvalid),
                "get after disconnect"
            );
            return;
        }
        let after = end.peer.available_bytes();
        if !partial && len > READ_LIMIT {
            // The contract: a request larger than the read buffer limit can
            // never succeed → OutOfBufferMemory, whatever is buffered and
            // whatever the status (not Busy, not FileEof).
            assert_eq!(
                result,
                Err(SocketError::OutOfBufferMemory),
                "get_data({len}) over the read limit {READ_LIMIT} while {:?}",
                end.status
            );
            count(&STATS.oversized_gets, 1);
        }
        match result {
            Ok(n) => {
                if partial {
                    assert_eq!(
                        n,
                        len.min(available),
                        "get_partial_data({len}) of {available}"
                    );
                } else {
                    assert!(len <= READ_LIMIT && len <= available);
                }
                flow.deliver(&buf[..n]);
                assert_eq!(after, available - n, "consumed more or less than returned");
                end.available = after;
            }
            Err(e) => {
                assert_eq!(after, available, "a failed get consumed bytes ({e})");
                let finished_error = match end.status {
                    Status::Error => end.peer.error().expect("error()"),
                    _ => SocketError::FileEof,
                };
                match e {
                    SocketError::OutOfBufferMemory => {
                        assert!(!partial && len > READ_LIMIT, "OutOfBufferMemory for {len}");
                    }
                    SocketError::Busy => {
                        assert!(
                            !partial && len > available && len <= READ_LIMIT,
                            "Busy with {available} of {len}"
                        );
                        assert!(
                            matches!(end.status, Status::Connected | Status::Connecting),
                            "Busy while {:?}",
                            end.status
                        );
                        count(&STATS.busy_gets, 1);
                    }
                    e if e == finished_error => {
                        // Nothing more will arrive: the remote closed (FIN), or
                        // the connection is over.
                        assert!(len > available, "{e} with {available} of {len} available");
                        assert!(!partial || available == 0);
                        if end.status == Status::Connected {
                            assert!(flow.fin, "{e} while Connected but the remote never closed");
                            assert_eq!(
                                flow.in_flight(),
                                available as u64,
                                "FileEof, bytes missing"
                            );
                        }
                        count(&STATS.eof_gets, 1);
                    }
                    e => panic!(
                        "get of {len} (partial {partial}) while {:?}: {e}",
                        end.status
                    ),
                }
            }
        }
    }

    // -- std operations -----------------------------------------------------------

    fn put_std(&mut self, slot: usize, len: usize) {
        let Some(c) = self.slots[slot].connection.as_mut() else {
            return;
        };
        let client_gone = self.slots[slot].client.as_ref().is_none_or(|e| e.detached);
        let may_fail = c.may_fail() || client_gone;
        let Remote::Std {
            sock: Some(sock),
            shut: false,
        } = &mut c.remote
        else {
            return;
        };
        let flow = &mut c.flows[1];
        let data = stream(flow.seed, flow.accepted, len);
        match sock.write(&data) {
            Ok(n) => flow.accepted += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if may_fail => {
                let _ = e;
            }
            Err(e) => panic!("std write: {e}"),
        }
    }

    fn get_std(&mut self, slot: usize, len: usize) {
        let Some(c) = self.slots[slot].connection.as_mut() else {
            return;
        };
        let client_gone = self.slots[slot].client.as_ref().is_none_or(|e| e.detached);
        let may_fail = c.may_fail() || client_gone;
        let connection_may_fail = c.may_fail();
        let Remote::Std {
            sock: Some(sock), ..
        } = &mut c.remote
        else {
            return;
        };
        let flow = &mut c.flows[0];
        let len = len.max(1);
        match sock.read(&mut self.buf[..len]) {
            Ok(0) => {
                // EOF: the client closed gracefully, after everything.
                assert!(flow.fin || may_fail, "EOF but the client never closed");
                if !connection_may_fail {
                    assert_eq!(flow.in_flight(), 0, "EOF before every accepted byte");
                }
            }
            Ok(n) => flow.deliver(&self.buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if may_fail => {
                let _ = e;
            }
            Err(e) => panic!("std read: {e}"),
        }
    }

    // -- closing ------------------------------------------------------------------

    fn close(&mut self, slot: usize, side: Side, drop_it: bool) {
        if side == Side::Remote && self.is_std(slot) {
            let client_gone = self.slots[slot].client.as_ref().is_none_or(|e| e.detached);
            let c = self.slots[slot].connection.as_mut().expect("connection");
            let may_fail = c.may_fail() || client_gone;
            let Remote::Std { sock, shut } = &mut c.remote else {
                return; // not accepted yet
            };
            let Some(s) = sock else {
                return;
            };
            if drop_it {
                // Closing sends FIN after what the remote wrote; only unread
                // input (or input arriving later: see `note_input_to_closed`)
                // makes the kernel send a reset instead. Without one, the
                // connection owes the client every byte (liveness checked).
                *sock = None;
                c.flows[1].fin = true;
                if c.flows[0].in_flight() > 0 {
                    c.reset = true;
                }
            } else if !*shut {
                // Fails only if the client already aborted the connection.
                if let Err(e) = s.shutdown(Shutdown::Write) {
                    assert!(may_fail, "shutdown: {e}");
                }
                *shut = true;
                c.flows[1].fin = true;
            }
            self.check_quiet(None);
            return;
        }
        let Some((end, c)) = self.end_mut(slot, side) else {
            return;
        };
        let status = end.status;
        let pending = end.peer.pending_write_bytes();
        end.peer.disconnect_from_host();
        assert_eq!(
            end.peer.status(),
            Status::None,
            "None at once after disconnect"
        );
        assert_eq!(end.peer.available_bytes(), 0);
        assert_eq!(end.peer.id(), None);
        if !end.detached {
            end.detached = true;
            end.status = Status::None;
            end.available = 0;
            if matches!(status, Status::Connecting | Status::Connected) {
                // Graceful: what was accepted is still delivered, then FIN.
                c.flows[side.index()].fin = true;
                c.detached_at.get_or_insert_with(Instant::now);
            }
            if status == Status::Connecting && pending == 0 {
                // Closed before the connection completed: the kernel may
                // abort it with a reset.
                *c.reset = true;
            }
        }
        if drop_it {
            match side {
                Side::Client => self.slots[slot].client = None,
                Side::Remote => {
                    let c = self.slots[slot].connection.as_mut().expect("connection");
                    c.remote = Remote::Lunanet(None);
                }
            }
        }
        self.check_quiet(None);
    }

    fn reset(&mut self, slot: usize) {
        if !self.is_std(slot) {
            return self.close(slot, Side::Remote, true);
        }
        let c = self.slots[slot].connection.as_mut().expect("connection");
        if let Remote::Std { sock, .. } = &mut c.remote
            && let Some(s) = sock.take()
        {
            let s = socket2::Socket::from(s);
            s.set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
            drop(s);
            c.reset = true;
        }
        self.check_quiet(None);
    }

    // -- passes -------------------------------------------------------------------

    /// Outside a pass nothing changes: every handle's status and available
    /// bytes are what was last observed (`except` is the operation's target,
    /// already updated by it).
    fn check_quiet(&mut self, except: Option<(usize, Side)>) {
        for slot in 0..2 {
            for side in [Side::Client, Side::Remote] {
                if except == Some((slot, side)) {
                    continue;
                }
                if let Some((end, _)) = self.end_mut(slot, side) {
                    assert_eq!(
                        end.peer.status(),
                        end.status,
                        "status changed outside a pass"
                    );
                    assert_eq!(
                        end.peer.available_bytes(),
                        end.available,
                        "available bytes changed outside a pass"
                    );
                    assert!(end.peer.pending_write_bytes() <= WRITE_LIMIT);
                }
            }
        }
    }

    /// A reactor pass, then the transition rules for every handle.
    fn poll(&mut self, timeout: Duration) {
        count(&STATS.polls, 1);
        self.reactor.poll(Some(timeout)).expect("reactor poll");
        for slot in 0..2 {
            for side in [Side::Client, Side::Remote] {
                if let Some((end, c)) = self.end_mut(slot, side) {
                    observe(end, c, side);
                }
            }
        }
        self.accept();
    }

    // -- the end of a case ------------------------------------------------------------

    /// Liveness and graceful close, then teardown.
    fn finish(&mut self) {
        // Every connection whose client is still there gets its other end.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let waiting = self.slots.iter().any(|s| {
                s.connection
                    .as_ref()
                    .is_some_and(|c| matches!(c.remote, Remote::Pending) && !c.reset)
                    && s.client.as_ref().is_some_and(|e| !e.detached)
            });
            if !waiting {
                break;
            }
            assert!(Instant::now() < deadline, "a connection was never accepted");
            self.poll(Duration::from_millis(5));
        }
        // Liveness: every byte accepted on a live connection arrives.
        let deadline = Instant::now() + DEADLINE;
        while self.undelivered() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} accepted bytes never arrived",
                self.undelivered()
            );
            self.poll(Duration::from_millis(1));
            self.read_everything();
        }
        for slot in 0..2 {
            self.graceful_close(slot);
        }
        self.teardown();
    }

    /// Bytes owed to receivers that can still read, on connections that were
    /// not reset.
    fn undelivered(&mut self) -> u64 {
        let mut owed = 0;
        for slot in 0..2 {
            let client_reads = self.slots[slot]
                .client
                .as_ref()
                .is_some_and(|e| !e.detached && e.status != Status::Error);
            let Some(c) = self.slots[slot].connection.as_ref() else {
                continue;
            };
            if c.may_fail() {
                continue;
            }
            let remote_reads = match &c.remote {
                Remote::Pending => false,
                Remote::Lunanet(end) => end
                    .as_ref()
                    .is_some_and(|e| !e.detached && e.status != Status::Error),
                Remote::Std { sock, .. } => sock.is_some(),
            };
            if remote_reads {
                owed += c.flows[0].in_flight();
            }
            if client_reads && !matches!(c.remote, Remote::Pending) {
                owed += c.flows[1].in_flight();
            }
        }
        owed
    }

    /// Takes everything every live receiver has.
    fn read_everything(&mut self) {
        for slot in 0..2 {
            for side in [Side::Client, Side::Remote] {
                if side == Side::Remote && self.is_std(slot) {
                    self.get_std(slot, 8 * 1024);
                } else if let Some((end, _)) = self.end_mut(slot, side) {
                    let n = end.available;
                    if n > 0 {
                        self.get_lunanet(slot, side, n, true);
                    }
                }
            }
        }
    }

    /// Closes one connection gracefully and checks that everything accepted
    /// before the close arrives: the remote closes first (and the client
    /// replies in the same tick as its last read) or the client does.
    fn graceful_close(&mut self, slot: usize) {
        let Some(c) = self.slots[slot].connection.as_ref() else {
            return;
        };
        let client_open = self.slots[slot]
            .client
            .as_ref()
            .is_some_and(|e| !e.detached && e.status == Status::Connected);
        if c.may_fail() || !client_open {
            return;
        }
        let remote_open = match &c.remote {
            Remote::Lunanet(Some(e)) => !e.detached && e.status == Status::Connected,
            Remote::Std { sock, shut } => sock.is_some() && !shut,
            _ => false,
        };
        let remote_first = remote_open && c.client_port % 2 == 0;
        if remote_first {
            // The remote's last message, then its close.
            if self.is_std(slot) {
                self.put_std(slot, 1500);
            } else {
                self.put_lunanet(slot, Side::Remote, 1500, true);
            }
            self.close(slot, Side::Remote, false);
            // The client reads until None; its reply, queued in the tick of
            // its last read, still goes out before its FIN.
            let deadline = Instant::now() + DEADLINE;
            let mut replied = false;
            loop {
                let end = self.slots[slot].client.as_ref().expect("client");
                if end.status == Status::None {
                    break;
                }
                assert!(Instant::now() < deadline, "the client never saw the close");
                self.poll(Duration::from_millis(1));
                let end = self.slots[slot].client.as_ref().expect("client");
                let n = end.available;
                if n > 0 {
                    self.get_lunanet(slot, Side::Client, n, false);
                    let c = self.slots[slot].connection.as_ref().expect("connection");
                    if !replied && c.flows[1].in_flight() == 0 && self.is_std(slot) {
                        replied = true;
                        let before = c.flows[0].accepted;
                        self.put_lunanet(slot, Side::Client, 700, false);
                        let c = self.slots[slot].connection.as_ref().expect("connection");
                        assert_eq!(c.flows[0].accepted, before + 700, "the reply was refused");
                    }
                }
            }
            let c = self.slots[slot].connection.as_ref().expect("connection");
            assert_eq!(c.flows[1].in_flight(), 0, "None before every byte was read");
            if self.is_std(slot) {
                // The std remote reads the reply, then EOF.
                self.drain_std(slot);
            }
        } else {
            let remote_reads = match &c.remote {
                Remote::Lunanet(Some(e)) => !e.detached && e.status == Status::Connected,
                Remote::Std { sock, .. } => sock.is_some(),
                _ => false,
            };
            if !remote_reads {
                return;
            }
            // The client's last message, then its close at once.
            self.put_lunanet(slot, Side::Client, 1500, true);
            self.close(slot, Side::Client, false);
            if self.is_std(slot) {
                self.drain_std(slot);
            } else {
                let deadline = Instant::now() + DEADLINE;
                loop {
                    let Some((end, _)) = self.end_mut(slot, Side::Remote) else {
                        unreachable!()
                    };
                    if end.status == Status::None {
                        break;
                    }
                    assert!(Instant::now() < deadline, "the remote never saw the close");
                    self.poll(Duration::from_millis(1));
                    let Some((end, _)) = self.end_mut(slot, Side::Remote) else {
                        unreachable!()
                    };
                    let n = end.available;
                    if n > 0 {
                        self.get_lunanet(slot, Side::Remote, n, false);
                    }
                }
                let c = self.slots[slot].connection.as_ref().expect("connection");
                assert_eq!(c.flows[0].in_flight(), 0, "None before every byte was read");
            }
        }
        count(&STATS.graceful_closes, 1);
    }

    /// Reads a std remote until EOF; everything accepted must have arrived.
    fn drain_std(&mut self, slot: usize) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "the std remote never got EOF");
            self.poll(Duration::from_millis(1));
            let c = self.slots[slot].connection.as_mut().expect("connection");
            let Remote::Std {
                sock: Some(sock), ..
            } = &mut c.remote
            else {
                unreachable!()
            };
            match sock.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => c.flows[0].deliver(&self.buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("std read while draining: {e}"),
            }
        }
        let c = self.slots[slot].connection.as_ref().expect("connection");
        assert_eq!(c.flows[0].in_flight(), 0, "EOF before every accepted byte");
    }

    /// Resets the std sockets and closes the std listener (so no lingering
    /// entry waits for them), drops every handle, and checks that the reactor
    /// ends empty.
    fn teardown(&mut self) {
        self.listener = None;
        for slot in &mut self.slots {
            if let Some(c) = slot.connection.as_mut()
                && let Remote::Std { sock, .. } = &mut c.remote
                && let Some(s) = sock.take()
            {
                let s = socket2::Socket::from(s);
                let _ = s.set_linger(Some(Duration::ZERO));
            }
            slot.connection = None;
            slot.client = None;
        }
        self.server.stop();
        let deadline = Instant::now() + DEADLINE;
        while !self.reactor.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} entries left after teardown",
                self.reactor.len()
            );
            self.reactor
                .poll(Some(Duration::from_millis(5)))
                .expect("reactor poll");
        }
    }
}

/// The transition rules for one handle after a pass.
fn observe(end: &mut End, c: View<'_>, side: Side) {
    let status = end.peer.status();
    let available = end.peer.available_bytes();
    let incoming = &c.flows[1 - side.index()];
    assert!(
        available >= end.available,
        "available bytes shrank in a pass: {} → {available}",
        end.available
    );
    assert!(
        available as u64 <= incoming.in_flight(),
        "{available} available, but only {} accepted and not yet read",
        incoming.in_flight()
    );
    assert!(available <= READ_LIMIT);
    assert!(end.peer.pending_write_bytes() <= WRITE_LIMIT);
    let before = end.status;
    if status != before {
        let to_none_ok = incoming.fin && available == 0 && incoming.in_flight() == 0;
        let ok = match (before, status) {
            (Status::Connecting, Status::Connected) => true,
            (Status::Connecting | Status::Connected, Status::None) => to_none_ok,
            (Status::Connecting | Status::Connected, Status::Error) => c.may_fail(),
            _ => false,
        };
        assert!(
            ok,
            "{side:?}: {before:?} → {status:?} in a pass (available {available}, remote closed \
             {}, {} bytes in flight, reset {}, error {:?})",
            incoming.fin,
            incoming.in_flight(),
            *c.reset,
            end.peer.error()
        );
        match status {
            Status::None => {
                // Reached through the remote's FIN: what was queued is still
                // flushed, then our FIN.
                c.flows[side.index()].fin = true;
                count(&STATS.to_none, 1);
            }
            Status::Error => {
                assert!(end.peer.error().is_some(), "Error without error()");
                count(&STATS.to_error, 1);
            }
            _ => {}
        }
    }
    end.status = status;
    end.available = available;
}
