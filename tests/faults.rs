//! The fault matrix: misbehaving remotes, resource exhaustion and awkward
//! handle lifetimes. Every case is bounded in time (`util::LONG` at most).
mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use lunanet::{Config, HandleId, Reactor, SocketError, Status, StreamPeerTcp, TcpServer};
use util::*;

// ---------------------------------------------------------------------------
// Misbehaving remotes
// ---------------------------------------------------------------------------

#[test]
fn reset_mid_stream_keeps_what_arrived_and_errors_cleanly() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    remote.write_all(&pattern(0, 100_000)).unwrap();
    // Both directions busy when the reset comes.
    peer.put_data(&pattern(0, 50_000)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    poll_until(&reactor, "some bytes", || {
        let n = peer.get_partial_data(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        !got.is_empty()
    });
    let remote = socket2::Socket::from(remote);
    remote.set_linger(Some(Duration::ZERO)).unwrap();
    drop(remote); // RST, with unread data on its side
    poll_until(&reactor, "the reset", || {
        if let Ok(n) = peer.get_partial_data(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        peer.status() == Status::Error
    });
    assert_eq!(peer.error(), Some(SocketError::ConnectionClosed));
    // Whatever arrived is an exact prefix of what was sent: nothing corrupted.
    while let Ok(n) = peer.get_partial_data(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == pattern(0, got.len()));
    assert_eq!(peer.put_data(b"x"), Err(SocketError::ConnectionClosed));
    assert_eq!(
        peer.get_partial_data(&mut buf),
        Err(SocketError::ConnectionClosed)
    );
}

/// A reply queued in the same tick as the last read is still sent after the
/// remote half-closed (status changes only in a reactor pass).
#[test]
fn remote_half_close_still_receives_our_reply() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    remote.write_all(b"request").unwrap();
    remote.shutdown(Shutdown::Write).unwrap();
    peer.wait_for_bytes(7, LONG).unwrap();
    let mut req = [0u8; 7];
    peer.get_data(&mut req).unwrap();
    assert_eq!(&req, b"request");
    peer.put_data(&pattern(0, 200_000)).unwrap(); // same tick as the last read
    assert_eq!(peer.status(), Status::Connected);
    let mut reply = Vec::new();
    let reader = std::thread::spawn(move || {
        remote.read_to_end(&mut reply).unwrap();
        reply
    });
    poll_until(&reactor, "None", || peer.status() == Status::None);
    drop(peer);
    poll_until(&reactor, "closed", || reactor.is_empty());
    assert!(reader.join().unwrap() == pattern(0, 200_000));
}

#[test]
fn a_remote_that_never_reads_costs_bounded_memory_and_loses_nothing() {
    const LIMIT: usize = 128 * 1024;
    let reactor = reactor_with(Config::default().write_buffer_limit(LIMIT));
    let (mut peer, remote) = client_to_std(&reactor);
    let mut sent = 0usize;
    let mut refusals = 0;
    let deadline = Instant::now() + LONG;
    // Keep offering data for a while: the queue must stay bounded.
    while refusals < 50 {
        assert!(Instant::now() < deadline);
        match peer.put_data(&pattern(sent, 4096)) {
            Ok(()) => sent += 4096,
            Err(SocketError::OutOfBufferMemory) => refusals += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(peer.pending_write_bytes() <= LIMIT);
        reactor.poll(Some(Duration::ZERO)).unwrap();
    }
    assert!(
        reactor.buffered_capacity() <= LIMIT + 64 * 1024,
        "{}",
        reactor.buffered_capacity()
    );
    // Once it reads, every accepted byte arrives, in order.
    let reader = std::thread::spawn(move || {
        let mut remote = remote;
        let mut got = vec![0u8; sent];
        remote.read_exact(&mut got).unwrap();
        got
    });
    poll_until(&reactor, "flushed", || peer.pending_write_bytes() == 0);
    assert!(reader.join().unwrap() == pattern(0, sent));
}

#[test]
fn a_flooding_remote_is_held_back_and_others_are_served_promptly() {
    const LIMIT: usize = 64 * 1024;
    let reactor = reactor_with(
        Config::default()
            .read_buffer_limit(LIMIT)
            .read_budget(16 * 1024),
    );
    let (flooded, mut flooder) = client_to_std(&reactor);
    let (mut a, mut b) = pair(&reactor);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let flood = std::thread::spawn(move || {
        let chunk = vec![0x5a; 64 * 1024];
        let mut written = 0usize;
        while !stop2.load(Ordering::Relaxed) {
            match flooder.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    });
    // The application never reads the flooded peer: its buffer stops at the
    // limit and TCP backpressure blocks the flooder.
    poll_until(&reactor, "buffer full", || {
        flooded.available_bytes() == LIMIT
    });
    for round in 0..20 {
        let start = Instant::now();
        a.put_data(&pattern(round, 64)).unwrap();
        b.wait_for_bytes(64, LONG).unwrap();
        let mut buf = [0u8; 64];
        b.get_data(&mut buf).unwrap();
        assert_eq!(&buf[..], &pattern(round, 64)[..]);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "starved: {:?}",
            start.elapsed()
        );
        assert_eq!(flooded.available_bytes(), LIMIT);
    }
    assert!(reactor.buffered_capacity() <= LIMIT + 64 * 1024);
    stop.store(true, Ordering::Relaxed);
    drop(flooded); // lingers: discards input until the flooder's FIN
    poll_until(&reactor, "flooded peer closed", || reactor.len() == 2);
    let written = flood.join().unwrap();
    assert!(written >= LIMIT, "the flooder wrote {written}");
}

// ---------------------------------------------------------------------------
// Connect failures
// ---------------------------------------------------------------------------

#[test]
fn connect_refused_goes_to_error_and_can_retry() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reactor = Reactor::new().unwrap();
    let mut peer = StreamPeerTcp::new(&reactor);
    peer.connect_to_host("127.0.0.1", port).unwrap();
    assert_eq!(
        peer.status(),
        Status::Connecting,
        "refusal is seen in a pass"
    );
    poll_until(&reactor, "refusal", || peer.status() != Status::Connecting);
    assert_eq!(peer.status(), Status::Error);
    assert_eq!(peer.error(), Some(SocketError::ConnectFailed));
    assert_eq!(
        peer.error_kind(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert_eq!(peer.put_data(b"x"), Err(SocketError::ConnectFailed));
    peer.disconnect_from_host();
    assert_eq!(peer.status(), Status::None);
    let mut server = server(&reactor);
    peer.connect_to_host("127.0.0.1", server.local_port())
        .unwrap();
    let _accepted = accept(&reactor, &mut server);
    poll_until(&reactor, "reconnect", || peer.status() == Status::Connected);
}

/// A listener whose accept queue is full drops SYNs on Linux, so a connect to
/// it hangs until our connect timeout fires.
#[test]
fn connect_timeout_against_a_full_accept_queue() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    assert!(fillers.len() < 16, "the accept queue never filled up");

    let timeout = Duration::from_millis(500);
    let reactor = reactor_with(Config::default().connect_timeout(timeout));
    let mut peer = StreamPeerTcp::new(&reactor);
    let start = Instant::now();
    peer.connect_to_host("127.0.0.1", addr.port()).unwrap();
    poll_until(&reactor, "connect timeout", || {
        peer.status() != Status::Connecting
    });
    let took = start.elapsed();
    assert_eq!(peer.status(), Status::Error);
    assert_eq!(peer.error(), Some(SocketError::ConnectFailed));
    assert_eq!(peer.error_kind(), Some(std::io::ErrorKind::TimedOut));
    assert!(took >= timeout, "timed out early: {took:?}");
    assert!(
        took < timeout + Duration::from_secs(3),
        "timed out late: {took:?}"
    );
}

#[test]
fn an_unresolvable_hostname_goes_to_error() {
    let reactor = Reactor::new().unwrap();
    let mut peer = StreamPeerTcp::new(&reactor);
    // `.invalid` is reserved (RFC 2606): it never resolves.
    peer.connect_to_host("no-such-host.invalid", 80).unwrap();
    assert_eq!(peer.status(), Status::Connecting);
    poll_until(&reactor, "resolution failure", || {
        peer.status() != Status::Connecting
    });
    assert_eq!(peer.status(), Status::Error);
    assert_eq!(peer.error(), Some(SocketError::InvalidIpAddress));
    assert_eq!(peer.error_kind(), Some(std::io::ErrorKind::NotFound));
}

// ---------------------------------------------------------------------------
// Descriptor exhaustion, in a child process with a low RLIMIT_NOFILE
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "LUNANET_FAULTS_EMFILE_CHILD";
/// Soft descriptor limit of the child: stdio, epoll, waker, listener and room
/// for about 30 connections.
const CHILD_NOFILE: u64 = 40;

/// CPU time of this process, from /proc (Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name: utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// The child: an echo server that reports on stdout when asked on stdin.
/// Runs only when the parent test starts it (it is `#[ignore]`d otherwise).
#[test]
#[ignore = "helper process for descriptor_exhaustion_backs_off_and_recovers"]
fn emfile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(CHILD_NOFILE, hard).unwrap();
    let reactor = Reactor::new().unwrap();
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").unwrap();
    println!("port={}", server.local_port());
    // Commands arrive on stdin, read by a thread that wakes the reactor.
    let (tx, rx) = mpsc::channel::<String>();
    let waker = reactor.waker().unwrap();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
            let _ = waker.wake();
        }
    });
    let mut peers: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    let mut accepted = 0u64;
    let mut ready = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        reactor.poll(Some(Duration::from_secs(1))).unwrap();
        while let Some(p) = server.take_connection() {
            accepted += 1;
            peers.insert(p.id().unwrap(), p);
        }
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            if let Some(p) = peers.get_mut(&id) {
                while let Ok(n) = p.get_partial_data(&mut buf) {
                    if n == 0 || p.put_data(&buf[..n]).is_err() {
                        break;
                    }
                }
                if matches!(p.status(), Status::None | Status::Error) {
                    peers.remove(&id);
                }
            }
        }
        while let Ok(cmd) = rx.try_recv() {
            match cmd.as_str() {
                "report" => println!("accepted={accepted} cpu_ms={}", process_cpu().as_millis()),
                _ => return,
            }
        }
    }
}

struct Child {
    proc: std::process::Child,
    stdin: std::process::ChildStdin,
    /// Lines of the child's stdout, read by a thread so no read blocks the
    /// test without a deadline.
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn() -> Child {
        let exe = std::env::current_exe().unwrap();
        let mut proc = Command::new(exe)
            .args([
                "emfile_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = proc.stdin.take().unwrap();
        let stdout = BufReader::new(proc.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child { proc, stdin, lines }
    }

    /// The next line the child prints that contains `key` (libtest may
    /// prefix it).
    fn line_with(&self, key: &str) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("child went silent");
            if line.contains(key) {
                return line;
            }
        }
    }

    /// The number after `key` in `line`.
    fn field(line: &str, key: &str) -> u64 {
        let at = line.find(key).expect(line) + key.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect(line)
    }

    /// (connections accepted so far, process CPU ms).
    fn report(&mut self) -> (u64, u64) {
        writeln!(self.stdin, "report").unwrap();
        let line = self.line_with("accepted=");
        (
            Child::field(&line, "accepted="),
            Child::field(&line, "cpu_ms="),
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.proc.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

#[track_caller]
fn until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50)); // polling a child: pacing only
    }
}

fn echo_ok(s: &mut TcpStream, msg: &[u8]) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}

#[test]
fn descriptor_exhaustion_backs_off_and_recovers() {
    let mut child = Child::spawn();
    let port = u16::try_from(Child::field(&child.line_with("port="), "port=")).unwrap();

    // More clients than the child has descriptors for: the kernel completes
    // every handshake; the child can accept only some.
    let mut clients: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut last = 0;
    until("the child to stop accepting", || {
        let (accepted, _) = child.report();
        let stable = accepted == last && accepted > 0;
        last = accepted;
        stable
    });
    let capped = last;
    assert!(
        capped < 60,
        "never ran out of descriptors ({capped} accepted)"
    );

    // Existing peers are still served.
    assert!(echo_ok(&mut clients[0], b"still served"));

    // No spinning while it cannot accept: CPU over a one-second window.
    let (_, cpu0) = child.report();
    let window = Instant::now();
    until("a second to pass", || {
        window.elapsed() >= Duration::from_secs(1)
    });
    let (_, cpu1) = child.report();
    let busy = cpu1.saturating_sub(cpu0);
    assert!(
        busy < 200,
        "child burned {busy} ms of CPU in 1 s while out of descriptors"
    );
    eprintln!("descriptor exhaustion: {capped}/60 accepted, {busy} ms of CPU in 1 s while stalled");

    // Free descriptors: close ten accepted clients; the child accepts again.
    for c in clients.drain(..10) {
        drop(c);
    }
    until("accepting again", || child.report().0 >= capped + 5);
    // Connections are accepted in arrival order: the first one that had to
    // wait (index `capped` before the ten were removed) is served now.
    let first_waiting = capped as usize - 10;
    assert!(echo_ok(
        &mut clients[first_waiting],
        b"served after recovery"
    ));
}

// ---------------------------------------------------------------------------
// Handle lifetimes
// ---------------------------------------------------------------------------

#[test]
fn a_slot_reused_within_the_ready_batch_is_not_confused_with_its_old_peer() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let port = server.local_port();
    let mut peers: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    let mut remotes = Vec::new();
    for _ in 0..2 {
        remotes.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        let p = accept(&reactor, &mut server);
        peers.insert(p.id().unwrap(), p);
    }
    // Peer 0 gets data; peer 1 gets reset: both land in the same ready batch.
    remotes[0].write_all(b"data").unwrap();
    let r1 = socket2::Socket::from(remotes.remove(1));
    r1.set_linger(Some(Duration::ZERO)).unwrap();
    drop(r1);
    let mut batch = Vec::new();
    poll_until(&reactor, "both changed", || {
        reactor.drain_ready(&mut batch);
        peers
            .values()
            .all(|p| p.status() == Status::Error || p.available_bytes() == 4)
    });
    let errored = *peers
        .iter()
        .find(|(_, p)| p.status() == Status::Error)
        .unwrap()
        .0;
    assert!(batch.contains(&errored));
    // Handling the batch: drop the errored peer (its slot is freed at once)
    // and take a new connection, which reuses the slot mid-batch.
    remotes.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let mut handled = 0;
    for id in batch.clone() {
        if id == errored {
            peers.remove(&id);
            let newcomer = accept(&reactor, &mut server);
            let nid = newcomer.id().unwrap();
            assert_eq!(
                nid.index(),
                errored.index(),
                "slot not reused: test proves nothing"
            );
            assert_ne!(nid, errored);
            peers.insert(nid, newcomer);
        } else if let Some(p) = peers.get_mut(&id) {
            let mut buf = [0u8; 4];
            p.get_data(&mut buf).unwrap();
            handled += 1;
        }
    }
    assert_eq!(handled, 1);
    // The errored id is gone for good; the newcomer works.
    assert!(!peers.contains_key(&errored));
    let mut more = Vec::new();
    reactor.drain_ready(&mut more);
    assert!(!more.contains(&errored));
    remotes.last_mut().unwrap().write_all(b"hi").unwrap();
    poll_until(&reactor, "newcomer data", || {
        peers.values().any(|p| p.available_bytes() == 2)
    });
}

#[test]
fn a_peer_dropped_while_processing_another_is_skipped_safely() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let mut clients = Vec::new();
    let mut peers: HashMap<HandleId, StreamPeerTcp> = HashMap::new();
    for _ in 0..10 {
        let mut c = StreamPeerTcp::new(&reactor);
        c.connect_to_host("127.0.0.1", server.local_port()).unwrap();
        let p = accept(&reactor, &mut server);
        peers.insert(p.id().unwrap(), p);
        clients.push(c);
    }
    poll_until(&reactor, "connected", || {
        clients.iter().all(|c| c.status() == Status::Connected)
    });
    for c in &mut clients {
        c.put_data(b"kick").unwrap();
    }
    let mut batch = Vec::new();
    poll_until(&reactor, "all have data", || {
        reactor.drain_ready(&mut batch);
        peers.values().all(|p| p.available_bytes() == 4)
    });
    // Each handled peer "kicks" the next one in the batch.
    let ids = batch.clone();
    let mut handled = 0;
    for (i, id) in ids.iter().enumerate() {
        let Some(p) = peers.get_mut(id) else { continue };
        let mut buf = [0u8; 4];
        p.get_data(&mut buf).unwrap();
        handled += 1;
        if let Some(next) = ids.get(i + 1) {
            peers.remove(next); // dropped from inside the processing of another
        }
    }
    assert_eq!(handled, 5);
    poll_until(&reactor, "kicked clients see FIN", || {
        clients
            .iter()
            .filter(|c| c.status() == Status::None)
            .count()
            == 5
    });
}

#[test]
fn the_reactor_handle_dropped_before_its_peers_and_servers() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    let mut client = StreamPeerTcp::new(&reactor);
    client
        .connect_to_host("127.0.0.1", server.local_port())
        .unwrap();
    drop(reactor);
    // The peers and the server keep the reactor alive and working.
    let deadline = Instant::now() + LONG;
    let mut accepted = None;
    while accepted.is_none() {
        assert!(Instant::now() < deadline);
        client.poll().unwrap();
        accepted = server.take_connection();
    }
    let mut accepted = accepted.unwrap();
    client.wait_connected(LONG).unwrap();
    client.put_data(b"alive").unwrap();
    accepted.wait_for_bytes(5, LONG).unwrap();
    drop(server);
    drop(client);
    assert_eq!(accepted.wait_for_bytes(6, LONG), Err(SocketError::FileEof));
}

#[test]
fn max_connections_refuses_politely_and_recovers() {
    let reactor = Reactor::new().unwrap();
    let mut server = server(&reactor);
    server.set_max_connections(Some(3)).unwrap();
    let port = server.local_port();
    let mut taken = Vec::new();
    let mut remotes: Vec<TcpStream> = Vec::new();
    for _ in 0..3 {
        remotes.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        taken.push(accept(&reactor, &mut server));
    }
    assert_eq!(server.connection_count(), 3);
    // Two more: accepted and closed at once, counted.
    let mut extra: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    poll_until(&reactor, "refusals", || server.refused_count() == 2);
    assert!(server.take_connection().is_none());
    for s in &mut extra {
        s.set_read_timeout(Some(LONG)).unwrap();
        let mut b = [0u8; 1];
        // Closed by the server: EOF (or a reset), never data, never a hang.
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
    // A peer leaves: room for one more.
    drop(taken.pop());
    drop(remotes.pop());
    poll_until(&reactor, "the count drops", || {
        server.connection_count() == 2
    });
    remotes.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
    taken.push(accept(&reactor, &mut server));
    assert_eq!(server.connection_count(), 3);
    assert_eq!(server.refused_count(), 2);
}
