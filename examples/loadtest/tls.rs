//! `loadtest --transport tls`: lunanet's TLS echo server (`StreamPeerTls` on
//! one reactor) against an idiomatic tokio-rustls echo server on a
//! `current_thread` runtime, with the same rustls (0.23, ring) and the same
//! `ServerConfig` object, in interleaved rounds, reporting medians.
//!
//! ```text
//! cargo run --release --features tls --example loadtest -- --transport tls --compare
//! cargo run --release --features tls --example loadtest -- --transport tls --compare --mode handshake --rounds 5
//! ```
//!
//! Loads (the client side is the same lunanet TLS client on one reactor
//! thread for both servers, so ratios compare servers):
//! - `pingpong`: `--peers` clients (100) each send 64 B and wait for the echo;
//!   msgs/s and the server thread's CPU time per message;
//! - `bulk`: `--bulk-peers` clients (4) keep 256 KiB in flight each; echoed MB/s;
//! - `handshake`: `--handshake-peers` connections at a time (16), each a full
//!   handshake (client resumption disabled), one 1-byte echo, a
//!   close_notify; handshakes/s.
//!
//! Self-contained (its own flags, servers and client) so the rest of the
//! loadtest can change independently; `tls_heap` reuses the two servers.
#![allow(dead_code)] // shared with the tls_heap example, which uses a subset

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use lunanet::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use lunanet::tls::{StreamPeerTls, TlsOptions, TlsStatus};
use lunanet::{HandleId, Reactor, StreamPeer, StreamPeerTcp, TcpServer};

/// Flags of `loadtest --transport tls`.
#[derive(Parser, Debug, Clone)]
#[command(name = "loadtest --transport tls")]
pub struct TlsArgs {
    /// Which load.
    #[arg(long, value_enum, default_value = "pingpong")]
    pub mode: TlsMode,
    /// Run both servers in interleaved rounds and print ratios (otherwise
    /// only --impl).
    #[arg(long)]
    pub compare: bool,
    /// Server when not comparing.
    #[arg(long = "impl", value_enum, default_value = "lunanet")]
    pub which: Which,
    /// Ping-pong clients.
    #[arg(long, default_value_t = 100)]
    pub peers: usize,
    /// Bulk clients.
    #[arg(long, default_value_t = 4)]
    pub bulk_peers: usize,
    /// Handshake clients (connections in flight); 1 measures the latency of
    /// one handshake after another.
    #[arg(long, default_value_t = 16)]
    pub handshake_peers: usize,
    /// Rounds (each runs every server once).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Warm-up seconds per run (not measured).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Pingpong,
    Bulk,
    Handshake,
    All,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Lunanet,
    TokioRustls,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Lunanet => "lunanet",
            Which::TokioRustls => "tokio-rustls",
        }
    }
}

/// If the command line says `--transport tls`, runs the TLS load test with the
/// remaining flags and returns its exit code.
pub fn dispatch() -> Option<i32> {
    let argv: Vec<String> = std::env::args().collect();
    let at = argv.iter().position(|a| a == "--transport")?;
    if argv.get(at + 1).map(String::as_str) != Some("tls") {
        return None;
    }
    let rest = argv[..at]
        .iter()
        .chain(&argv[at + 2..])
        .cloned()
        .collect::<Vec<_>>();
    let args = TlsArgs::parse_from(rest);
    Some(match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("loadtest --transport tls: {e}");
            1
        }
    })
}

/// The certificate both servers present and the client configuration.
pub struct Fixture {
    pub server: Arc<ServerConfig>,
    pub client: TlsOptions,
}

impl Fixture {
    pub fn new() -> Fixture {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        let cert_pem = ck.cert.pem();
        let key_pem = ck.signing_key.serialize_pem();
        // One ServerConfig object for both servers: same suites, same keys.
        let server = TlsOptions::server(cert_pem.as_bytes(), key_pem.as_bytes()).expect("server");
        let mut roots = RootCertStore::empty();
        roots.add(ck.cert.der().clone()).expect("root");
        let mut client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        // Every handshake a full one: no session resumption from the client.
        client.resumption = rustls::client::Resumption::disabled();
        Fixture {
            server: server.server_config().expect("server options").clone(),
            client: TlsOptions::from_client_config(Arc::new(client)),
        }
    }
}

/// What a server thread counted.
#[derive(Debug, Default, Clone)]
pub struct ServerStats {
    pub accepted: u64,
    pub bytes: u64,
    pub errors: u64,
}

/// A server running on its own thread.
pub struct Running {
    pub addr: SocketAddr,
    /// The kernel id of the server thread (for its CPU time).
    pub tid: Option<u32>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<ServerStats>>,
}

impl Running {
    pub fn stop(mut self) -> ServerStats {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// Starts `which` on 127.0.0.1 (port chosen by the OS) on a new thread.
pub fn spawn(which: Which, config: Arc<ServerConfig>) -> Running {
    spawn_hooked(which, config, || {})
}

/// As [`spawn`], running `hook` first on the server thread (the heap example
/// marks the thread whose allocations it counts).
pub fn spawn_hooked(which: Which, config: Arc<ServerConfig>, hook: fn()) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s = stop.clone();
    let thread = thread::spawn(move || match (hook(), which).1 {
        Which::Lunanet => lunanet_server(config, s, tx),
        Which::TokioRustls => tokio_server(config, s, tx),
    });
    let (addr, tid) = rx.recv().expect("server started");
    Running {
        addr,
        tid,
        stop,
        thread: Some(thread),
    }
}

pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time of thread `tid` of this process (Linux `schedstat`, ns).
pub fn thread_cpu(tid: Option<u32>) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", tid?)).ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

struct Conn {
    tls: StreamPeerTls,
    /// Echo bytes the transport could not take yet.
    pending: Vec<u8>,
}

/// lunanet: one reactor, the ready set, `process` on the ready peers, echo.
fn lunanet_server(
    config: Arc<ServerConfig>,
    stop: Arc<AtomicBool>,
    started: mpsc::Sender<(SocketAddr, Option<u32>)>,
) -> ServerStats {
    let options = TlsOptions::from_server_config(config);
    let reactor = Reactor::new().expect("reactor");
    let mut server = TcpServer::new(&reactor);
    server.listen(0, "127.0.0.1").expect("listen");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.local_port()));
    let _ = started.send((addr, current_tid()));
    let mut conns: HashMap<HandleId, Conn> = HashMap::new();
    let mut ready = Vec::new();
    let mut backlog: Vec<HandleId> = Vec::new();
    let mut stats = ServerStats::default();
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let _ = reactor.poll(Some(Duration::from_millis(100)));
        while let Some(tcp) = server.take_connection() {
            let Some(id) = tcp.id() else { continue };
            if let Ok(tls) = StreamPeerTls::accept_stream(tcp, &options) {
                stats.accepted += 1;
                conns.insert(
                    id,
                    Conn {
                        tls,
                        pending: Vec::new(),
                    },
                );
                ready.push(id);
            }
        }
        reactor.drain_ready(&mut ready);
        ready.append(&mut backlog);
        for id in ready.drain(..) {
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            let alive = echo(c, &mut buf, &mut stats);
            if !alive {
                conns.remove(&id);
            } else if !c.pending.is_empty() {
                backlog.push(id);
            }
        }
        backlog.dedup();
    }
    stats
}

/// Echoes what `c` has; false when the connection is over.
fn echo(c: &mut Conn, buf: &mut [u8], stats: &mut ServerStats) -> bool {
    let handshaking = c.tls.status() == TlsStatus::Handshaking;
    if c.tls.process().is_err() {
        // Counted like the tokio server does: failed handshakes only (a
        // client closing with an echo unread resets the connection; that is
        // the end of a run, not an error of the server).
        stats.errors += handshaking as u64;
        return false;
    }
    if !c.pending.is_empty() {
        match c.tls.put_partial_data(&c.pending) {
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(_) => return false,
        }
        if !c.pending.is_empty() {
            return true; // do not read more while the echo is stuck
        }
    }
    loop {
        match c.tls.get_partial_data(buf) {
            Ok(0) => break,
            Ok(n) => {
                stats.bytes += n as u64;
                match c.tls.put_partial_data(&buf[..n]) {
                    Ok(m) if m < n => {
                        c.pending.extend_from_slice(&buf[m..n]);
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
            Err(_) => return false,
        }
    }
    !matches!(c.tls.status(), TlsStatus::Disconnected)
}

/// tokio-rustls: a task per connection, `TlsAcceptor::accept`, then `read`
/// into a 64 KiB buffer and `write_all` (tokio's echo example over TLS).
fn tokio_server(
    config: Arc<ServerConfig>,
    stop: Arc<AtomicBool>,
    started: mpsc::Sender<(SocketAddr, Option<u32>)>,
) -> ServerStats {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let accepted = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (a, b, e) = (accepted.clone(), bytes.clone(), errors.clone());
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let _ = started.send((listener.local_addr().expect("addr"), current_tid()));
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let mut check = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let Ok((tcp, _)) = r else { continue };
                    let _ = tcp.set_nodelay(true);
                    a.fetch_add(1, Ordering::Relaxed);
                    let acceptor = acceptor.clone();
                    let (b, e) = (b.clone(), e.clone());
                    tokio::spawn(async move {
                        let mut tls = match acceptor.accept(tcp).await {
                            Ok(t) => t,
                            Err(_) => { e.fetch_add(1, Ordering::Relaxed); return; }
                        };
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match tls.read(&mut buf).await {
                                Ok(0) => break,
                                Ok(n) => {
                                    b.fetch_add(n as u64, Ordering::Relaxed);
                                    if tls.write_all(&buf[..n]).await.is_err() { break; }
                                }
                                Err(_) => break,
                            }
                        }
                        let _ = tls.shutdown().await;
                    });
                }
                _ = check.tick() => {
                    if stop.load(Ordering::Relaxed) { break; }
                }
            }
        }
    });
    ServerStats {
        accepted: accepted.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// One measured run's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Completed units per second (messages, MB, handshakes).
    pub rate: f64,
    /// Server thread CPU per unit, microseconds.
    pub cpu_us: Option<f64>,
}

struct Client {
    tls: StreamPeerTls,
    /// Bytes sent and not yet echoed.
    in_flight: usize,
    started: Instant,
}

fn connect(reactor: &Reactor, addr: SocketAddr, options: &TlsOptions) -> io::Result<Client> {
    let mut tcp = StreamPeerTcp::new(reactor);
    tcp.connect_to_host(addr.ip(), addr.port())
        .map_err(io::Error::from)?;
    let tls = StreamPeerTls::connect_to_stream(tcp, "localhost", options.clone())
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Client {
        tls,
        in_flight: 0,
        started: Instant::now(),
    })
}

/// Drives one load against `addr` for warm-up + measured time; returns the
/// figures, with the server thread's CPU time over the measured part.
fn drive(
    mode: TlsMode,
    addr: SocketAddr,
    server_tid: Option<u32>,
    fixture: &Fixture,
    args: &TlsArgs,
) -> Result<Figures, String> {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let options = &fixture.client;
    let peers = match mode {
        TlsMode::Pingpong => args.peers,
        TlsMode::Bulk => args.bulk_peers,
        _ => args.handshake_peers,
    };
    let msg = [0x5au8; 64];
    let chunk = vec![0xa5u8; 16 * 1024];
    const WINDOW: usize = 256 * 1024;
    let mut clients: Vec<Client> = Vec::new();
    let mut by_id: HashMap<HandleId, usize> = HashMap::new();
    for _ in 0..peers {
        let mut c = connect(&reactor, addr, options).map_err(|e| e.to_string())?;
        if mode == TlsMode::Pingpong {
            c.tls.put_data(&msg).map_err(|e| e.to_string())?;
            c.in_flight = msg.len();
        }
        if mode == TlsMode::Handshake {
            c.tls.put_data(&[1]).map_err(|e| e.to_string())?;
            c.in_flight = 1;
        }
        if let Some(id) = c.tls.id() {
            by_id.insert(id, clients.len());
        }
        clients.push(c);
    }
    let warm_end = Instant::now() + Duration::from_secs_f64(args.warmup);
    let end = warm_end + Duration::from_secs_f64(args.seconds);
    let mut measuring = false;
    let mut units = 0f64;
    let mut cpu_start = None;
    let mut ready = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut all: Vec<usize> = Vec::new();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !measuring && now >= warm_end {
            measuring = true;
            units = 0.0;
            cpu_start = thread_cpu(server_tid);
        }
        reactor
            .poll(Some(Duration::from_millis(5)))
            .map_err(|e| e.to_string())?;
        reactor.drain_ready(&mut ready);
        let mut todo: Vec<usize> = ready
            .drain(..)
            .filter_map(|id| by_id.get(&id).copied())
            .collect();
        if mode == TlsMode::Bulk {
            // Bulk clients write whenever their window allows, not only when ready.
            all.clear();
            all.extend(0..clients.len());
            todo.append(&mut all);
            todo.sort_unstable();
            todo.dedup();
        }
        for i in todo {
            let c = &mut clients[i];
            if let Err(e) = c.tls.process() {
                return Err(format!(
                    "client {i}: {e} ({:?})",
                    c.tls.tls_error().map(|e| e.to_string())
                ));
            }
            match mode {
                TlsMode::Pingpong => {
                    while c.tls.available_bytes() >= msg.len() {
                        c.tls
                            .get_data(&mut buf[..msg.len()])
                            .map_err(|e| e.to_string())?;
                        units += 1.0;
                        c.tls.put_data(&msg).map_err(|e| e.to_string())?;
                    }
                }
                TlsMode::Bulk => {
                    loop {
                        let n = c
                            .tls
                            .get_partial_data(&mut buf)
                            .map_err(|e| e.to_string())?;
                        if n == 0 {
                            break;
                        }
                        c.in_flight -= n;
                        units += n as f64 / 1e6;
                    }
                    while c.in_flight + chunk.len() <= WINDOW {
                        let n = c.tls.put_partial_data(&chunk).map_err(|e| e.to_string())?;
                        if n == 0 {
                            break;
                        }
                        c.in_flight += n;
                    }
                }
                TlsMode::Handshake | TlsMode::All => {
                    if c.tls.available_bytes() >= 1 {
                        c.tls.get_data(&mut buf[..1]).map_err(|e| e.to_string())?;
                        units += 1.0;
                        // Done: close and replace with a fresh connection.
                        let mut fresh =
                            connect(&reactor, addr, options).map_err(|e| e.to_string())?;
                        fresh.tls.put_data(&[1]).map_err(|e| e.to_string())?;
                        fresh.in_flight = 1;
                        if let Some(id) = c.tls.id() {
                            by_id.remove(&id);
                        }
                        let mut old = std::mem::replace(c, fresh);
                        old.tls.disconnect_from_stream();
                        if let Some(id) = c.tls.id() {
                            by_id.insert(id, i);
                        }
                        let _ = old.started;
                    }
                }
            }
        }
    }
    let cpu = thread_cpu(server_tid)
        .zip(cpu_start)
        .map(|(e, s)| e.saturating_sub(s));
    let rate = units / args.seconds;
    Ok(Figures {
        rate,
        cpu_us: cpu.map(|c| c.as_secs_f64() * 1e6 / units.max(1.0)),
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn unit(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Pingpong => "msgs/s",
        TlsMode::Bulk => "MB/s",
        _ => "handshakes/s",
    }
}

/// Runs the requested loads and prints per-run figures, medians and ratios.
pub fn run(args: &TlsArgs) -> Result<(), String> {
    let fixture = Fixture::new();
    let modes: Vec<TlsMode> = if args.mode == TlsMode::All {
        vec![TlsMode::Pingpong, TlsMode::Bulk, TlsMode::Handshake]
    } else {
        vec![args.mode]
    };
    let impls: Vec<Which> = if args.compare {
        vec![Which::Lunanet, Which::TokioRustls]
    } else {
        vec![args.which]
    };
    for mode in modes {
        let mut results: HashMap<&'static str, Vec<Figures>> = HashMap::new();
        for round in 0..args.rounds {
            // Interleaved, alternating the order each round.
            let mut order = impls.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for which in order {
                let server = spawn(which, fixture.server.clone());
                let figures = drive(mode, server.addr, server.tid, &fixture, args);
                let stats = server.stop();
                let figures = figures?;
                println!(
                    "{:?} round {}/{} {:>12}: {:>12.1} {} server CPU {} (accepted {}, errors {})",
                    mode,
                    round + 1,
                    args.rounds,
                    which.name(),
                    figures.rate,
                    unit(mode),
                    figures
                        .cpu_us
                        .map_or("n/a".into(), |c| format!("{c:.2} us/unit")),
                    stats.accepted,
                    stats.errors
                );
                results.entry(which.name()).or_default().push(figures);
            }
        }
        let mut medians = Vec::new();
        for which in &impls {
            let runs = &results[which.name()];
            let mut rates: Vec<f64> = runs.iter().map(|f| f.rate).collect();
            let mut cpus: Vec<f64> = runs.iter().filter_map(|f| f.cpu_us).collect();
            let (r, c) = (median(&mut rates), median(&mut cpus));
            println!(
                "{:?} median {:>12}: {:>12.1} {}  server CPU {:.2} us/unit",
                mode,
                which.name(),
                r,
                unit(mode),
                c
            );
            medians.push((r, c));
        }
        if medians.len() == 2 {
            println!(
                "{:?} lunanet/tokio-rustls: rate x{:.3}, server CPU per unit x{:.3}",
                mode,
                medians[0].0 / medians[1].0,
                medians[0].1 / medians[1].1
            );
        }
    }
    Ok(())
}
