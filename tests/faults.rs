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
    const SENT: usize = 100_000; // below the default 256 KiB read limit
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    remote.write_all(&pattern(0, SENT)).unwrap();
    // Both directions busy when the reset comes.
    peer.put_data(&pattern(0, 50_000)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    poll_until(&reactor, "some bytes", || {
        let n = peer.get_partial_data(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        !got.is_empty()
    });
    // Everything else the remote sent is in lunanet's read buffer (not only
    // in the kernel) before the reset: that is what must survive it.
    let buffered = SENT - got.len();
    poll_until(&reactor, "the rest buffered", || {
        peer.available_bytes() == buffered
    });
    let remote = socket2::Socket::from(remote);
    remote.set_linger(Some(Duration::ZERO)).unwrap();
    drop(remote); // RST, with unread data on its side
    poll_until(&reactor, "the reset", || peer.status() == Status::Error);
    assert_eq!(peer.error(), Some(SocketError::ConnectionClosed));
    // What was buffered when the Error was seen is still there, all of it.
    assert_eq!(
        peer.available_bytes(),
        buffered,
        "the read buffer lost bytes when the reset was seen"
    );
    // And it reads back exactly: nothing corrupted, then the error.
    loop {
        match peer.get_partial_data(&mut buf) {
            Ok(0) => panic!("Ok(0) in Error with {} bytes read", got.len()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_eq!(e, SocketError::ConnectionClosed, "after the buffer");
                break;
            }
        }
    }
    assert_eq!(got.len(), SENT, "bytes buffered before the reset were lost");
    assert!(got == pattern(0, SENT), "corrupted");
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
    // "Promptly" is counted in reactor passes, not wall time (a loaded CI
    // machine stretches time, not passes): a loopback message is in the
    // kernel when `put_data` returns, so one pass sees it; a flood that
    // starved the others would need unboundedly many.
    const MAX_PASSES: usize = 10;
    for round in 0..20 {
        a.put_data(&pattern(round, 64)).unwrap();
        let mut passes = 0;
        poll_counting_until(&reactor, "the message beside the flood", |_| {
            passes += 1;
            b.available_bytes() >= 64
        });
        assert!(
            passes <= MAX_PASSES,
            "starved: round {round} took {passes} passes"
        );
        let mut buf = [0u8; 64];
        b.get_data(&mut buf).unwrap();
        assert_eq!(&buf[..], &pattern(round, 64)[..]);
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
    // Our timer, not the kernel's SYN retries (about 127 s with the default
    // tcp_syn_retries): generous headroom for a loaded machine.
    assert!(
        took < timeout + Duration::from_secs(10),
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

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`), asked of
/// `getconf CLK_TCK` rather than assumed to be 100.
fn clock_ticks_per_second() -> Result<u64, String> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map_err(|e| format!("running getconf CLK_TCK: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u64>() {
        Ok(hz) if out.status.success() && hz > 0 => Ok(hz),
        _ => Err(format!("getconf CLK_TCK printed {text:?} ({})", out.status)),
    }
}

/// CPU time (user + system) of this process, from `/proc/self/stat` opened
/// beforehand (a process out of descriptors cannot open it: that is exactly
/// when it is measured); `Err` when it cannot be measured, never a made-up 0.
fn process_cpu(stat_file: &mut std::fs::File, ticks_per_second: u64) -> Result<Duration, String> {
    use std::io::Seek;
    stat_file
        .rewind()
        .map_err(|e| format!("rewinding /proc/self/stat: {e}"))?;
    let mut stat = String::new();
    stat_file
        .read_to_string(&mut stat)
        .map_err(|e| format!("reading /proc/self/stat: {e}"))?;
    // Fields after the command name: utime is the 14th field of the line,
    // stime the 15th, i.e. the 12th and 13th after ")".
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("no ')' in /proc/self/stat: {stat:?}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("field {} of /proc/self/stat: {stat:?}", i + 3))
    };
    let ticks = field(11)? + field(12)?;
    Ok(Duration::from_millis(ticks * 1000 / ticks_per_second))
}

/// Whether this process has no descriptor left: opening one more file fails
/// with EMFILE. (A direct probe: the child is "capped" because it is out of
/// descriptors, not because it was slow to accept.)
fn out_of_descriptors() -> bool {
    match std::fs::File::open("/dev/null") {
        Ok(_) => false,
        Err(e) => e.raw_os_error() == Some(24), // EMFILE
    }
}

/// The child: an echo server that reports on stdout when asked on stdin.
/// Runs only when the parent test starts it (it is `#[ignore]`d otherwise).
#[test]
#[ignore = "helper process for descriptor_exhaustion_backs_off_and_recovers"]
fn emfile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // Asked and opened before the limit is lowered (running getconf and
    // opening /proc need descriptors the child will not have).
    let hz = clock_ticks_per_second();
    let mut stat_file = std::fs::File::open("/proc/self/stat");
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
    let mut passes = 0u64;
    let mut ready = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        reactor.poll(Some(Duration::from_secs(1))).unwrap();
        passes += 1;
        while let Some(p) = server.take_connection() {
            accepted += 1;
            peers.insert(p.id().unwrap(), p);
        }
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            if let Some(p) = peers.get_mut(&id) {
                // Echo what is buffered; any error ends this peer's turn and,
                // if the connection is over, the peer (printed, not hidden).
                loop {
                    match p.get_partial_data(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if let Err(e) = p.put_data(&buf[..n]) {
                                println!("echo put_data: {e}");
                                break;
                            }
                        }
                        Err(SocketError::FileEof | SocketError::ConnectionClosed) => break,
                        Err(e) => {
                            println!("echo get_partial_data: {e}");
                            break;
                        }
                    }
                }
                if matches!(p.status(), Status::None | Status::Error) {
                    peers.remove(&id);
                }
            }
        }
        while let Ok(cmd) = rx.try_recv() {
            match cmd.as_str() {
                "report" => {
                    let cpu = match (&hz, &mut stat_file) {
                        (Ok(hz), Ok(file)) => process_cpu(file, *hz),
                        (Err(e), _) => Err(e.clone()),
                        (_, Err(e)) => Err(format!("opening /proc/self/stat: {e}")),
                    };
                    match cpu {
                        Ok(cpu) => println!(
                            "accepted={accepted} passes={passes} capped={} cpu_ms={}",
                            u8::from(out_of_descriptors()),
                            cpu.as_millis()
                        ),
                        // The parent fails on this line (no cpu_ms): an
                        // unmeasurable CPU time is never reported as 0.
                        Err(e) => println!("accepted={accepted} cpu_error={e}"),
                    }
                }
                _ => return,
            }
        }
    }
}

/// One `report` of the child.
#[derive(Debug, Clone, Copy)]
struct Report {
    /// Connections accepted so far.
    accepted: u64,
    /// Reactor passes so far.
    passes: u64,
    /// No descriptor was free when the report was made.
    capped: bool,
    /// CPU time of the child so far, in ms.
    cpu_ms: u64,
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

    /// What the child measured of itself.
    fn report(&mut self) -> Report {
        writeln!(self.stdin, "report").unwrap();
        let line = self.line_with("accepted=");
        Report {
            accepted: Child::field(&line, "accepted="),
            passes: Child::field(&line, "passes="),
            capped: Child::field(&line, "capped=") == 1,
            cpu_ms: Child::field(&line, "cpu_ms="),
        }
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
    // Capped: the child has no descriptor left (probed directly) and still
    // accepts nothing more, i.e. the rest wait in the kernel's queue.
    let mut last = 0;
    until("the child to run out of descriptors", || {
        let r = child.report();
        let stable = r.capped && r.accepted == last && r.accepted > 0;
        last = r.accepted;
        stable
    });
    let capped = last;
    assert!(
        capped < 60,
        "never ran out of descriptors ({capped} accepted)"
    );

    // Existing peers are still served.
    assert!(echo_ok(&mut clients[0], b"still served"));

    // No spinning while it cannot accept, over a one-second window, counted
    // two ways: reactor passes (deterministic: back-off timers, the two
    // reports; a spin would be thousands) and CPU time (must be measurable).
    let before = child.report();
    let window = Instant::now();
    until("a second to pass", || {
        window.elapsed() >= Duration::from_secs(1)
    });
    let after = child.report();
    assert!(
        after.capped,
        "descriptors came free by themselves: {after:?}"
    );
    let passes = after.passes - before.passes;
    let busy = after.cpu_ms.saturating_sub(before.cpu_ms);
    assert!(
        passes < 100,
        "child ran {passes} reactor passes in {:?} while out of descriptors (spinning)",
        window.elapsed()
    );
    assert!(
        busy < 200,
        "child burned {busy} ms of CPU in 1 s while out of descriptors"
    );
    eprintln!(
        "descriptor exhaustion: {capped}/60 accepted, {passes} passes and {busy} ms of CPU in \
         1 s while stalled"
    );

    // Free descriptors: close ten accepted clients; the child accepts again.
    for c in clients.drain(..10) {
        drop(c);
    }
    until("accepting again", || child.report().accepted >= capped + 5);
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
    // The batch may name a peer more than once (several passes ran) and in
    // any order: keep each of our peers once, in order; all ten changed.
    let mut ids: Vec<HandleId> = Vec::new();
    for id in batch {
        if peers.contains_key(&id) && !ids.contains(&id) {
            ids.push(id);
        }
    }
    assert_eq!(
        ids.len(),
        10,
        "a peer with data is missing from the ready set"
    );
    // Each handled peer "kicks" the next one in the batch: peers 0, 2, 4, 6,
    // 8 of the batch are handled, 1, 3, 5, 7, 9 are dropped before their turn.
    let mut handled = Vec::new();
    let mut kicked = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(p) = peers.get_mut(id) else { continue };
        let mut buf = [0u8; 4];
        p.get_data(&mut buf).unwrap();
        assert_eq!(&buf, b"kick");
        handled.push(*id);
        if let Some(next) = ids.get(i + 1) {
            peers.remove(next); // dropped from inside the processing of another
            kicked.push(*next);
        }
    }
    assert_eq!(handled.len(), 5, "handled {handled:?}, kicked {kicked:?}");
    assert_eq!(kicked.len(), 5);
    assert!(handled.iter().all(|id| peers.contains_key(id)));
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
        // Closed by the server: EOF or a reset, never data, never a hang. A
        // read that ends only by its timeout is a hang and fails.
        s.set_read_timeout(Some(PROMPT)).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) => {}
            Ok(n) => panic!("a refused connection got {n} byte(s) of data"),
            Err(e) => panic!("a refused connection was not closed within {PROMPT:?}: {e}"),
        }
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
