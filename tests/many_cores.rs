//! Many cores: several reactors on one port (`Config::reuse_port`) and peers
//! moving between reactors on different threads (`StreamPeerTcp::detach` /
//! `DetachedPeer::attach`), on loopback, every byte checked.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use lunanet::{Config, DetachedPeer, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};
use util::{LONG, bound_std};

/// Bound for the whole of a many-connection test (debug builds, a loaded
/// 2-core machine).
const TEST_DEADLINE: Duration = Duration::from_secs(180);

/// Byte `offset` of stream `seed`: position-dependent with no short period,
/// so a lost, duplicated or reordered byte shows at once.
fn stream_byte(seed: u64, offset: usize) -> u8 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (offset as u64);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    x as u8
}

/// Checks `data` against stream `seed` from `offset`; returns the index of
/// the first wrong byte.
fn check(seed: u64, offset: usize, data: &[u8]) -> Result<(), usize> {
    match data
        .iter()
        .enumerate()
        .find(|&(i, &b)| b != stream_byte(seed, offset + i))
    {
        Some((i, _)) => Err(offset + i),
        None => Ok(()),
    }
}

fn fill(seed: u64, offset: usize, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = stream_byte(seed, offset + i);
    }
}

/// FNV-1a, the checksum reported for each direction.
fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

// ---------------------------------------------------------------------------
// Four reactors, four threads, one port
// ---------------------------------------------------------------------------

/// An echo server on its own reactor and thread, sharing `port` (0: choose
/// one and report it). Returns how many connections it accepted.
fn echo_reactor(
    port: u16,
    listening: mpsc::Sender<u16>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let reactor = Reactor::with_config(Config::default().reuse_port(true)).expect("reactor");
        let mut server = TcpServer::new(&reactor);
        server
            .listen(port, "127.0.0.1")
            .expect("listen with reuse_port");
        listening.send(server.local_port()).expect("main alive");
        let mut peers: Vec<StreamPeerTcp> = Vec::new();
        let mut accepted = 0;
        let mut buf = vec![0u8; 16 * 1024];
        let deadline = Instant::now() + TEST_DEADLINE;
        while !stop.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "echo reactor: test deadline");
            reactor.poll(Some(Duration::from_millis(10))).expect("poll");
            while let Some(p) = server.take_connection() {
                accepted += 1;
                peers.push(p);
            }
            peers.retain_mut(|p| {
                while let Ok(n) = p.get_partial_data(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if p.put_data(&buf[..n]).is_err() {
                        return false; // the client verifies: a loss fails it
                    }
                }
                p.status() == Status::Connected
            });
        }
        accepted
    })
}

/// Four reactors on four threads listen on one port with `reuse_port`;
/// 2 000 clients each send 1 KiB of their own stream and check the echo.
#[test]
fn four_reactors_share_one_port_and_serve_2000_clients() {
    const REACTORS: usize = 4;
    const CLIENTS: usize = 2000;
    const CLIENT_THREADS: usize = 4;
    const MSG: usize = 1024;

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let mut servers = vec![echo_reactor(0, tx.clone(), Arc::clone(&stop))];
    let port = rx.recv_timeout(LONG).expect("first reactor listening");
    for _ in 1..REACTORS {
        servers.push(echo_reactor(port, tx.clone(), Arc::clone(&stop)));
    }
    for _ in 1..REACTORS {
        assert_eq!(rx.recv_timeout(LONG).expect("reactor listening"), port);
    }

    let clients: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            thread::spawn(move || {
                let ids: Vec<usize> = (t..CLIENTS).step_by(CLIENT_THREADS).collect();
                let mut streams = Vec::new();
                for _ in &ids {
                    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    bound_std(&s);
                    streams.push(s);
                }
                let mut msg = vec![0u8; MSG];
                for (s, &id) in streams.iter_mut().zip(&ids) {
                    fill(id as u64, 0, &mut msg);
                    s.write_all(&msg).expect("send");
                }
                let mut verified = 0;
                for (s, &id) in streams.iter_mut().zip(&ids) {
                    s.read_exact(&mut msg).expect("echo");
                    if let Err(at) = check(id as u64, 0, &msg) {
                        panic!("client {id}: wrong echo byte at {at}");
                    }
                    verified += MSG;
                }
                verified
            })
        })
        .collect();
    let verified: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    stop.store(true, Ordering::Release);
    let shares: Vec<usize> = servers.into_iter().map(|s| s.join().unwrap()).collect();

    println!(
        "reuse_port: {CLIENTS} clients over {REACTORS} reactors: {:?} connections ({})",
        shares,
        shares
            .iter()
            .map(|&n| format!("{:.1}%", 100.0 * n as f64 / CLIENTS as f64))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(verified, CLIENTS * MSG, "every echoed byte verified");
    assert_eq!(shares.iter().sum::<usize>(), CLIENTS);
    // The kernel hashes each connection's addresses and ports: about 500
    // each (binomial, standard deviation ~19). Fewer than 250 on any one
    // would mean the port is not really shared.
    for (i, &n) in shares.iter().enumerate() {
        assert!(n >= CLIENTS / REACTORS / 2, "reactor {i} got only {n}");
    }
}

// ---------------------------------------------------------------------------
// Moving 1 000 live peers between reactors mid-stream
// ---------------------------------------------------------------------------

const MOVED: usize = 1000;
/// Bytes of each direction of each connection.
const STREAM: usize = 32 * 1024;
/// The first reactor moves a peer once it has read this much.
const MOVE_AT: usize = STREAM / 4;
const CHUNK: usize = 4096;

/// A server-side connection's progress, which travels with its peer.
#[derive(Debug, Default)]
struct Progress {
    /// The client's index, from its 4-byte header.
    id: Option<u64>,
    rx: usize,
    tx: usize,
    rx_sum: u64,
}

impl Progress {
    /// Reads (at most up to `limit` stream bytes) and checks what arrived.
    fn read(&mut self, peer: &mut StreamPeerTcp, limit: usize, buf: &mut [u8]) {
        if self.id.is_none() {
            let mut head = [0u8; 4];
            if peer.get_data(&mut head).is_err() {
                return;
            }
            self.id = Some(u64::from(u32::from_le_bytes(head)));
            self.rx_sum = FNV0;
        }
        let Some(id) = self.id else { return };
        while self.rx < limit {
            let want = (limit - self.rx).min(buf.len());
            let n = match peer.get_partial_data(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Err(at) = check(id * 2, self.rx, &buf[..n]) {
                panic!("server: client {id}'s stream wrong at byte {at}");
            }
            self.rx_sum = fnv(self.rx_sum, &buf[..n]);
            self.rx += n;
        }
    }

    /// Queues up to one chunk of the server's stream, up to `limit`.
    fn write(&mut self, peer: &mut StreamPeerTcp, limit: usize, buf: &mut [u8]) {
        let Some(id) = self.id else { return };
        if self.tx >= limit {
            return;
        }
        let n = (limit - self.tx).min(CHUNK);
        fill(id * 2 + 1, self.tx, &mut buf[..n]);
        if let Ok(put) = peer.put_partial_data(&buf[..n]) {
            self.tx += put;
        }
    }
}

/// What the first reactor saw of the peers it moved.
#[derive(Debug, Default)]
struct MoveStats {
    moved: usize,
    with_unread_input: usize,
    with_queued_output: usize,
}

/// The lobby: accepts, streams a quarter, then moves every peer (with input
/// it has not read and output it has not sent) to the room thread.
fn lobby(
    listening: mpsc::Sender<u16>,
    to_room: mpsc::Sender<(DetachedPeer, Progress)>,
    room_waker: lunanet::ReactorWaker,
) -> MoveStats {
    // Coalesced writes: apart from a reply (the first put after a pass that
    // read from the peer, written at once) `put_*` only queues, so a peer
    // moved right after a second put carries that output with it.
    let reactor = Reactor::with_config(Config::default().coalesce_writes(true)).expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    listening.send(server.local_port()).expect("main alive");
    let mut peers: Vec<(StreamPeerTcp, Progress)> = Vec::new();
    let mut stats = MoveStats::default();
    let mut buf = vec![0u8; CHUNK];
    let deadline = Instant::now() + TEST_DEADLINE;
    while stats.moved < MOVED {
        assert!(Instant::now() < deadline, "lobby: moved only {stats:?}");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        while let Some(p) = server.take_connection() {
            peers.push((p, Progress::default()));
        }
        let mut i = 0;
        while i < peers.len() {
            let (peer, progress) = &mut peers[i];
            progress.read(peer, MOVE_AT, &mut buf);
            progress.write(peer, MOVE_AT, &mut buf);
            // Mid-stream in both directions, with bytes buffered both ways.
            if progress.rx >= MOVE_AT && peer.available_bytes() > 0 {
                // One byte first: if it is this pass's reply it goes out at
                // once, and the rest is queued either way.
                let one = (progress.tx + 1).min(STREAM);
                progress.write(peer, one, &mut buf);
                progress.write(peer, STREAM, &mut buf);
                let (peer, progress) = peers.swap_remove(i);
                let moved = peer.detach().expect("detach");
                stats.moved += 1;
                stats.with_unread_input += usize::from(moved.available_bytes() > 0);
                stats.with_queued_output += usize::from(moved.pending_write_bytes() > 0);
                to_room.send((moved, progress)).expect("room alive");
                room_waker.wake().expect("wake the room");
                continue;
            }
            i += 1;
        }
    }
    assert_eq!(reactor.len(), 1, "only the server is left in the lobby");
    stats
}

/// The room: attaches moved peers and finishes both streams, until every
/// moved connection completed. Returns the per-connection (id, bytes
/// received, checksum).
fn room(
    reactor: Reactor,
    arrivals: mpsc::Receiver<(DetachedPeer, Progress)>,
) -> Vec<(u64, usize, u64)> {
    let mut peers: Vec<(StreamPeerTcp, Progress)> = Vec::new();
    let mut done = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let deadline = Instant::now() + TEST_DEADLINE;
    while done.len() < MOVED {
        assert!(
            Instant::now() < deadline,
            "room: {} done, {} in progress",
            done.len(),
            peers.len()
        );
        // Woken by the lobby when a peer arrives.
        reactor.poll(Some(Duration::from_millis(50))).expect("poll");
        while let Ok((moved, progress)) = arrivals.try_recv() {
            peers.push((moved.attach(&reactor).expect("attach"), progress));
        }
        peers.retain_mut(|(peer, progress)| {
            progress.read(peer, STREAM, &mut buf);
            progress.write(peer, STREAM, &mut buf);
            if progress.rx == STREAM && progress.tx == STREAM && peer.pending_write_bytes() == 0 {
                done.push((
                    progress.id.unwrap_or(u64::MAX),
                    progress.rx,
                    progress.rx_sum,
                ));
                return false; // graceful close
            }
            assert_eq!(peer.status(), Status::Connected, "room peer {progress:?}");
            true
        });
    }
    done
}

/// 1 000 connections stream 32 KiB each way; the server side moves every one
/// of them to another reactor on another thread after a quarter, while both
/// directions are in flight and with bytes buffered both ways. Every byte is
/// checked, in order, on both ends.
#[test]
fn a_thousand_peers_move_between_reactors_mid_stream_without_losing_a_byte() {
    let (to_room, arrivals) = mpsc::channel();
    let (waker_tx, waker_rx) = mpsc::channel();
    let room = thread::spawn(move || {
        let reactor = Reactor::new().expect("room reactor");
        waker_tx
            .send(reactor.waker().expect("waker"))
            .expect("main");
        room(reactor, arrivals)
    });
    let room_waker = waker_rx.recv_timeout(LONG).expect("room started");
    let (port_tx, port_rx) = mpsc::channel();
    let lobby = thread::spawn(move || lobby(port_tx, to_room, room_waker));
    let port = port_rx.recv_timeout(LONG).expect("lobby listening");

    // The clients: one reactor on this thread.
    let reactor = Reactor::new().expect("client reactor");
    struct Client {
        peer: StreamPeerTcp,
        sent: usize,
        recv: usize,
        sum: u64,
    }
    let mut clients: Vec<Client> = (0..MOVED)
        .map(|id| {
            let mut peer = StreamPeerTcp::new(&reactor);
            peer.connect_to_host("127.0.0.1", port).expect("connect");
            peer.put_data(&(id as u32).to_le_bytes()).expect("header");
            Client {
                peer,
                sent: 0,
                recv: 0,
                sum: FNV0,
            }
        })
        .collect();
    let mut buf = vec![0u8; CHUNK];
    let deadline = Instant::now() + TEST_DEADLINE;
    let mut finished = 0;
    while finished < MOVED {
        assert!(
            Instant::now() < deadline,
            "clients: {finished} of {MOVED} done"
        );
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
        finished = 0;
        for (id, c) in clients.iter_mut().enumerate() {
            let id = id as u64;
            while c.sent < STREAM {
                let n = (STREAM - c.sent).min(CHUNK);
                fill(id * 2, c.sent, &mut buf[..n]);
                match c.peer.put_partial_data(&buf[..n]) {
                    Ok(0) => break,
                    Ok(put) => c.sent += put,
                    Err(e) => panic!("client {id}: put failed: {e:?}"),
                }
            }
            loop {
                match c.peer.get_partial_data(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Err(at) = check(id * 2 + 1, c.recv, &buf[..n]) {
                            panic!("client {id}: server stream wrong at byte {at}");
                        }
                        c.sum = fnv(c.sum, &buf[..n]);
                        c.recv += n;
                    }
                    Err(SocketError::FileEof) => break,
                    Err(e) => panic!("client {id}: {e:?} after {} bytes", c.recv),
                }
            }
            assert!(c.recv <= STREAM, "client {id}: more bytes than sent");
            finished += usize::from(c.recv == STREAM);
        }
    }
    let stats = lobby.join().expect("lobby");
    let done = room.join().expect("room");

    let mut ids: Vec<u64> = done.iter().map(|d| d.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let to_server: usize = done.iter().map(|d| d.1).sum();
    let to_clients: usize = clients.iter().map(|c| c.recv).sum();
    let sum_up = done.iter().fold(0u64, |a, d| a ^ d.2);
    let sum_down = clients.iter().fold(0u64, |a, c| a ^ c.sum);
    println!(
        "moved {} peers mid-stream ({} with unread input, {} with queued output); \
         {to_server} bytes to the servers (xor of FNV-1a {sum_up:016x}), \
         {to_clients} to the clients (xor of FNV-1a {sum_down:016x}), all checked in order",
        stats.moved, stats.with_unread_input, stats.with_queued_output
    );
    assert_eq!(stats.moved, MOVED);
    assert_eq!(
        stats.with_unread_input, MOVED,
        "every move carried unread input"
    );
    assert_eq!(
        stats.with_queued_output, MOVED,
        "every move carried queued output"
    );
    assert_eq!(ids.len(), MOVED, "every connection completed in the room");
    assert_eq!(
        to_server,
        MOVED * STREAM,
        "0 bytes lost towards the servers"
    );
    assert_eq!(
        to_clients,
        MOVED * STREAM,
        "0 bytes lost towards the clients"
    );
}

// ---------------------------------------------------------------------------
// Moving with bytes buffered; the remote closing during the move
// ---------------------------------------------------------------------------

/// A connection accepted by `lobby` (read budget 1 KiB, coalesced writes)
/// from a std client the test controls.
fn accepted_in(lobby: &Reactor) -> (StreamPeerTcp, TcpStream) {
    let mut server = TcpServer::new(lobby);
    server.listen(0, "127.0.0.1").expect("listen");
    let client = TcpStream::connect(("127.0.0.1", server.local_port())).expect("connect");
    bound_std(&client);
    let peer = util::accept(lobby, &mut server);
    (peer, client)
}

fn lobby_reactor() -> Reactor {
    util::reactor_with(Config::default().read_budget(1024).coalesce_writes(true))
}

/// Attaches `moved` to a reactor on another thread and reads until the
/// stream ends; returns the bytes, the final status and the error kind.
fn finish_in_room(
    moved: DetachedPeer,
) -> (
    Vec<u8>,
    Status,
    Option<SocketError>,
    Option<std::io::ErrorKind>,
) {
    thread::spawn(move || {
        let reactor = Reactor::new().expect("room");
        let mut peer = moved.attach(&reactor).expect("attach");
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let mut end = None;
        util::poll_until(&reactor, "the end of the stream", || {
            loop {
                match peer.get_partial_data(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        end = Some(e);
                        return true;
                    }
                }
            }
        });
        // `Error` may come with a last buffered byte already taken; FileEof
        // only after the status reached None.
        util::poll_until(&reactor, "a final status", || {
            peer.status() != Status::Connected
        });
        let _ = end;
        (got, peer.status(), peer.error(), peer.error_kind())
    })
    .join()
    .expect("room thread")
}

/// A peer moved with input already buffered (read, not taken), input left in
/// the kernel by a spent read budget (its edge consumed by the old poller),
/// and output queued: the new reactor delivers all of it, and a FIN sent
/// while the peer travelled ends in `None` after the last byte.
#[test]
fn a_peer_moved_with_buffered_bytes_gets_them_and_a_fin_during_the_move_ends_in_none() {
    const SENT: usize = 64 * 1024;
    let lobby = lobby_reactor();
    let (mut peer, mut client) = accepted_in(&lobby);
    let mut data = vec![0u8; SENT];
    fill(7, 0, &mut data);
    client.write_all(&data).expect("send");
    // One pass reads one budget (1 KiB): the rest stays in the kernel.
    util::poll_until(&lobby, "some input buffered", || peer.available_bytes() > 0);
    peer.put_data(b"queued in the lobby").expect("put");
    assert!(peer.pending_write_bytes() > 0, "coalesced: still queued");
    let moved = peer.detach().expect("detach");
    assert!(moved.available_bytes() > 0 && moved.available_bytes() < SENT);
    assert_eq!(moved.pending_write_bytes(), b"queued in the lobby".len());
    assert_eq!(moved.status(), Status::Connected);
    assert!(lobby.is_empty(), "the peer left the lobby");

    // The remote sends more and closes while the peer travels.
    client.write_all(b"tail").expect("tail");
    client.shutdown(std::net::Shutdown::Write).expect("FIN");
    let (got, status, error, _) = finish_in_room(moved);
    let mut expected = data;
    expected.extend_from_slice(b"tail");
    assert_eq!(got.len(), expected.len(), "bytes lost across the move");
    assert!(got == expected, "bytes reordered across the move");
    assert_eq!(status, Status::None);
    assert_eq!(error, None);
    let mut reply = vec![0u8; b"queued in the lobby".len()];
    client
        .read_exact(&mut reply)
        .expect("queued output delivered");
    assert_eq!(reply, b"queued in the lobby");
}

/// A remote that resets the connection while the peer travels: the new
/// reactor hands over what was buffered and ends in `Error` (reset), not in
/// a clean `None`.
#[test]
fn a_peer_reset_during_the_move_ends_in_error() {
    let lobby = lobby_reactor();
    let (mut peer, mut client) = accepted_in(&lobby);
    client.write_all(b"before the move").expect("send");
    util::poll_until(&lobby, "input buffered", || peer.available_bytes() == 15);
    // Queued output the reset will make undeliverable.
    peer.put_data(b"never delivered").expect("put");
    let moved = peer.detach().expect("detach");
    let remote = socket2::Socket::from(client);
    remote.set_linger(Some(Duration::ZERO)).expect("linger 0");
    drop(remote); // RST
    let (got, status, error, kind) = finish_in_room(moved);
    assert_eq!(
        got, b"before the move",
        "the buffered bytes are still readable"
    );
    assert_eq!(status, Status::Error, "a reset is not a clean close");
    assert!(error.is_some());
    assert!(
        matches!(
            kind,
            Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
        ),
        "cause: {kind:?}"
    );
}

/// What cannot move says so, and the peer is then closed as by drop.
#[test]
fn detach_refuses_a_peer_without_a_connection() {
    let reactor = Reactor::new().unwrap();
    let peer = StreamPeerTcp::new(&reactor);
    assert_eq!(peer.detach().err(), Some(SocketError::SocketInvalid));
    // Still resolving a hostname: the lookup belongs to this reactor.
    let mut resolving = StreamPeerTcp::new(&reactor);
    resolving.connect_to_host("localhost", 9).unwrap();
    assert_eq!(resolving.detach().err(), Some(SocketError::Busy));
    util::poll_until(&reactor, "the refused peer closed", || reactor.is_empty());
}
