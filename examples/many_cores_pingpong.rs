//! Server CPU per message with 1 and with N server reactors (one per thread,
//! sharing a port with `Config::reuse_port`), against one load-generator
//! thread doing ping-pong: each client sends a message and waits for its
//! echo before sending the next.
//!
//! Rounds alternate 1 reactor and N reactors (interleaved, so slow drifts of
//! a shared machine hit both alike); the report gives every round and the
//! medians. Server CPU is the on-CPU time of the server threads (user +
//! system), read from `/proc/self/task/TID/schedstat` (Linux), so the
//! example needs no `unsafe`.
//!
//! ```text
//! cargo run --release --example many_cores_pingpong -- --reactors 2 --clients 200 --seconds 3 --rounds 7
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::{Config, HandleId, PeerMap, Reactor, Status, StreamPeerTcp, TcpServer};

/// Ping-pong: server CPU per message, 1 reactor vs N reactors on one port.
#[derive(Parser, Debug)]
struct Args {
    /// Server reactors (threads) to compare with one.
    #[arg(long, default_value_t = 2)]
    reactors: usize,
    /// Connections of the load generator (one thread).
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds (each runs 1 reactor, then N).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// The kernel's id of the calling thread.
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// On-CPU time of thread `tid` of this process so far.
fn thread_cpu(tid: u32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// One echo reactor on its own thread; reports its thread id and port.
fn server(
    port: u16,
    ready: mpsc::Sender<(u32, u16)>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let reactor = Reactor::with_config(Config::default().reuse_port(true)).expect("reactor");
        let mut server = TcpServer::new(&reactor);
        server.listen(port, "127.0.0.1").expect("listen");
        let server_id = server.id();
        ready
            .send((current_tid().unwrap_or(0), server.local_port()))
            .expect("main alive");
        let mut peers: PeerMap<StreamPeerTcp> = PeerMap::new();
        let mut ready_ids: Vec<HandleId> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            if reactor.poll(Some(Duration::from_millis(20))).is_err() {
                break;
            }
            reactor.drain_ready(&mut ready_ids);
            for id in ready_ids.drain(..) {
                if Some(id) == server_id {
                    while let Some(p) = server.take_connection() {
                        if let Some(pid) = p.id() {
                            peers.insert(pid, p);
                        }
                    }
                    continue;
                }
                let Some(p) = peers.get_mut(id) else { continue };
                while let Ok(n) = p.get_partial_data(&mut buf) {
                    if n == 0 || p.put_data(&buf[..n]).is_err() {
                        break;
                    }
                }
                if p.status() != Status::Connected {
                    peers.remove(id);
                }
            }
        }
    })
}

/// One run: `reactors` server threads, the load generator on this thread.
/// Returns (messages, server CPU).
fn run(args: &Args, reactors: usize) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let mut threads = vec![server(0, tx.clone(), Arc::clone(&stop))];
    let (tid, port) = rx.recv().expect("server");
    let mut tids = vec![tid];
    for _ in 1..reactors {
        threads.push(server(port, tx.clone(), Arc::clone(&stop)));
        tids.push(rx.recv().expect("server").0);
    }

    let reactor = Reactor::new().expect("client reactor");
    let mut clients: PeerMap<(StreamPeerTcp, usize)> = PeerMap::new();
    let mut all = Vec::new();
    for _ in 0..args.clients {
        let mut c = StreamPeerTcp::new(&reactor);
        c.connect_to_host("127.0.0.1", port).expect("connect");
        all.push(c);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while all.iter().any(|c| c.status() != Status::Connected) {
        assert!(Instant::now() < deadline, "clients did not connect");
        reactor.poll(Some(Duration::from_millis(10))).expect("poll");
    }
    let msg = vec![7u8; args.size];
    for mut c in all {
        c.put_data(&msg).expect("first ping");
        let id = c.id().expect("connected");
        clients.insert(id, (c, 0));
    }
    // Warm up, then measure.
    let warm = Instant::now() + Duration::from_millis(500);
    let mut ready_ids = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut messages = 0u64;
    let mut pump = |until: Instant, messages: &mut u64| {
        while Instant::now() < until {
            reactor.poll(Some(Duration::from_millis(5))).expect("poll");
            reactor.drain_ready(&mut ready_ids);
            for id in ready_ids.drain(..) {
                let Some((c, got)) = clients.get_mut(id) else {
                    continue;
                };
                while let Ok(n) = c.get_partial_data(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    *got += n;
                }
                while *got >= args.size {
                    *got -= args.size;
                    *messages += 1;
                    c.put_data(&msg).expect("ping");
                }
            }
        }
    };
    pump(warm, &mut messages);
    let cpu = |tids: &[u32]| -> Duration { tids.iter().filter_map(|&t| thread_cpu(t)).sum() };
    let cpu0 = cpu(&tids);
    messages = 0;
    pump(
        Instant::now() + Duration::from_secs_f64(args.seconds),
        &mut messages,
    );
    let used = cpu(&tids).saturating_sub(cpu0);
    stop.store(true, Ordering::Relaxed);
    drop(clients);
    for t in threads {
        let _ = t.join();
    }
    (messages, used)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = Args::parse();
    if thread_cpu(current_tid().unwrap_or(0)).is_none() {
        eprintln!("no /proc/self/task/TID/schedstat: server CPU cannot be measured here");
        std::process::exit(2);
    }
    println!(
        "ping-pong, {} clients on 1 load-generator thread, {} B messages, {} s per run, {} rounds",
        args.clients, args.size, args.seconds, args.rounds
    );
    let (mut one, mut many, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let mut per = [0.0; 2];
        for (i, &n) in [1, args.reactors].iter().enumerate() {
            let (msgs, cpu) = run(&args, n);
            let ns = cpu.as_nanos() as f64 / msgs.max(1) as f64;
            per[i] = ns;
            println!(
                "round {round}: {n} reactor(s): {msgs} messages ({:.0}/s), server CPU {:.3} s, {ns:.0} ns/message",
                msgs as f64 / args.seconds,
                cpu.as_secs_f64()
            );
        }
        one.push(per[0]);
        many.push(per[1]);
        ratios.push(per[1] / per[0]);
    }
    println!(
        "median server CPU per message: 1 reactor {:.0} ns, {} reactors {:.0} ns; median ratio {:.3}",
        median(&mut one),
        args.reactors,
        median(&mut many),
        median(&mut ratios)
    );
}
