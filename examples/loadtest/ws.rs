//! `--transport ws`: the WebSocket load test, self-contained (its own flags,
//! servers, client driver and report), entered through [`run_if_selected`].
//!
//! ```text
//! cargo run --release --features websocket --example loadtest -- --transport ws --compare
//! cargo run --release --features websocket --example loadtest -- --transport ws --hold --peers 1000
//! ```
//!
//! Servers under test, each on its own thread:
//! - `lunanet`: `WebSocketPeer`s on one `Reactor`; the loop sleeps in
//!   `Reactor::poll`, then visits only the peers in the ready set
//!   (`drain_ready`), echoing every message with `send`;
//! - `tokio`: tokio-tungstenite on a `current_thread` runtime, a task per
//!   connection doing `ws.next().await` / `ws.send(msg).await` (the crate's
//!   own echo server example), `set_nodelay(true)`, default configuration.
//!
//! Load generator (the same for both, on a third thread): lunanet
//! `WebSocketPeer` clients on one reactor; each keeps one binary message of
//! `--size` bytes in flight (ping-pong) and checks every echo (sequence
//! number and length). Server CPU is the server thread's CPU time
//! (`/proc/self/task/TID/schedstat`) over the measured window.
//!
//! `--hold`: connect `--peers` clients, each sends one small message per
//! second for `--seconds`; every peer must stay open and every echo arrive
//! (errors otherwise).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use lunanet::websocket::{WebSocketOptions, WebSocketPeer, WsState};
use lunanet::{HandleId, Reactor, StreamPeerTcp, TcpServer, WriteMode};

/// WebSocket load test (`--transport ws`).
#[derive(Parser, Debug, Clone)]
#[command(name = "loadtest --transport ws")]
struct WsArgs {
    /// Must be `ws` (selects this load test).
    #[arg(long)]
    transport: String,
    /// Client connections.
    #[arg(long, default_value_t = 100)]
    peers: usize,
    /// Message size in bytes (at least 8: a sequence number).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Server under test when not comparing.
    #[arg(long = "impl", default_value = "lunanet")]
    imp: String,
    /// lunanet vs tokio-tungstenite in interleaved rounds.
    #[arg(long)]
    compare: bool,
    /// Rounds for --compare.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Hold mode: many mostly idle peers, one message per peer per second.
    #[arg(long)]
    hold: bool,
}

/// Runs the WebSocket load test when `--transport ws` is among the
/// arguments; returns the exit code, or `None` to let the TCP load test run.
pub fn run_if_selected() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    let selected = args
        .windows(2)
        .any(|w| w[0] == "--transport" && w[1] == "ws")
        || args.iter().any(|a| a == "--transport=ws");
    if !selected {
        return None;
    }
    let a = match WsArgs::try_parse_from(&args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return Some(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if a.size < 8 {
        eprintln!("loadtest: --size must be at least 8");
        return Some(2);
    }
    raise_nofile(a.peers * 2 + 100);
    let result = if a.compare {
        compare(&a)
    } else {
        let imp = match a.imp.as_str() {
            "lunanet" => Impl::Lunanet,
            "tokio" => Impl::Tokio,
            other => {
                eprintln!("loadtest: --impl {other}: expected lunanet or tokio");
                return Some(2);
            }
        };
        run(&a, imp).map(|r| {
            r.print(&a);
            r.errors == 0
        })
    };
    Some(match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("loadtest: {e}");
            2
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Lunanet,
    Tokio,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Lunanet => "lunanet",
            Impl::Tokio => "tokio-tungstenite",
        }
    }
}

struct RunResult {
    imp: Impl,
    messages: u64,
    elapsed: Duration,
    server_cpu: Option<Duration>,
    errors: u64,
    first_error: Option<String>,
    open_at_end: usize,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_msg_us(&self) -> Option<f64> {
        self.server_cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.messages.max(1) as f64)
    }

    fn print(&self, a: &WsArgs) {
        let cpu = self
            .cpu_per_msg_us()
            .map_or("n/a".to_owned(), |c| format!("{c:.2} us"));
        println!(
            "ws {:<18} peers {:>5}  {} B  {:>10.0} msgs/s  server CPU/msg {:>9}  open at end {}  errors {}{}",
            self.imp.name(),
            a.peers,
            a.size,
            self.rate(),
            cpu,
            self.open_at_end,
            self.errors,
            self.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        );
    }
}

fn compare(a: &WsArgs) -> Result<bool, String> {
    let mut runs = Vec::new();
    for round in 1..=a.rounds {
        for imp in [Impl::Lunanet, Impl::Tokio] {
            let r = run(a, imp)?;
            print!("round {round}/{}: ", a.rounds);
            r.print(a);
            runs.push(r);
        }
    }
    let median = |imp: Impl, f: &dyn Fn(&RunResult) -> Option<f64>| {
        let mut v: Vec<f64> = runs.iter().filter(|r| r.imp == imp).filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let (lr, tr) = (
        median(Impl::Lunanet, &|r| Some(r.rate())),
        median(Impl::Tokio, &|r| Some(r.rate())),
    );
    let (lc, tc) = (
        median(Impl::Lunanet, &|r| r.cpu_per_msg_us()),
        median(Impl::Tokio, &|r| r.cpu_per_msg_us()),
    );
    if let (Some(lr), Some(tr)) = (lr, tr) {
        println!(
            "median msgs/s: lunanet {lr:.0}, tokio-tungstenite {tr:.0}: ratio {:.2}x",
            lr / tr
        );
    }
    if let (Some(lc), Some(tc)) = (lc, tc) {
        println!(
            "median server CPU per message: lunanet {lc:.2} us, tokio-tungstenite {tc:.2} us: ratio {:.2}x",
            lc / tc
        );
    }
    Ok(runs.iter().all(|r| r.errors == 0))
}

type Started = Result<(u16, Option<u32>), String>;

fn run(a: &WsArgs, imp: Impl) -> Result<RunResult, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Started>();
    let stop2 = Arc::clone(&stop);
    let server = thread::Builder::new()
        .name(format!("ws-server-{}", imp.name()))
        .spawn(move || match imp {
            Impl::Lunanet => lunanet_server(&tx, &stop2),
            Impl::Tokio => tokio_server(&tx, &stop2),
        })
        .map_err(|e| format!("server thread: {e}"))?;
    let (port, tid) = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the server did not start".to_owned())??;
    let a2 = a.clone();
    let client = thread::Builder::new()
        .name("ws-clients".into())
        .spawn(move || drive_clients(&a2, port, tid))
        .map_err(|e| format!("client thread: {e}"))?;
    let outcome = client.join().map_err(|_| "the client thread panicked")?;
    stop.store(true, Relaxed);
    let _ = server.join();
    let mut r = outcome?;
    r.imp = imp;
    Ok(r)
}

/// CPU time of thread `tid` of this process (Linux `schedstat`).
fn thread_cpu(tid: Option<u32>) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", tid?)).ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

fn current_tid() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

fn raise_nofile(need: usize) {
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        && (need as u64) > soft
        && soft < hard
    {
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard);
    }
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

fn lunanet_server(started: &mpsc::Sender<Started>, stop: &AtomicBool) {
    let reactor = match Reactor::new() {
        Ok(r) => r,
        Err(e) => {
            let _ = started.send(Err(format!("reactor: {e}")));
            return;
        }
    };
    let mut server = TcpServer::new(&reactor);
    if let Err(e) = server.listen(0, "127.0.0.1") {
        let _ = started.send(Err(format!("listen: {e}")));
        return;
    }
    let _ = started.send(Ok((server.local_port(), current_tid())));
    let options = WebSocketOptions::default();
    let mut peers: HashMap<HandleId, WebSocketPeer<StreamPeerTcp>> = HashMap::new();
    let mut ready = Vec::new();
    let mut sweep = Instant::now();
    while !stop.load(Relaxed) {
        if reactor.poll(Some(Duration::from_millis(20))).is_err() {
            break;
        }
        while let Some(tcp) = server.take_connection() {
            if let Some(id) = tcp.id() {
                peers.insert(id, WebSocketPeer::accept_stream(tcp, &options));
            }
        }
        reactor.drain_ready(&mut ready);
        for id in ready.drain(..) {
            if let Some(peer) = peers.get_mut(&id) {
                serve(peer);
            }
        }
        // Timers (handshake timeouts, closing handshakes) for every peer,
        // ten times a second.
        if sweep.elapsed() >= Duration::from_millis(100) {
            sweep = Instant::now();
            peers.retain(|_, p| {
                serve(p);
                p.ready_state() != WsState::Closed
            });
        }
    }
}

fn serve(peer: &mut WebSocketPeer<StreamPeerTcp>) {
    peer.process();
    while let Ok(packet) = peer.get_packet() {
        let mode = if peer.was_string_packet() {
            WriteMode::Text
        } else {
            WriteMode::Binary
        };
        // A client that already started closing no longer takes messages.
        if let Err(e) = peer.send(&packet, mode)
            && peer.ready_state() == WsState::Open
        {
            eprintln!("lunanet server: echo failed: {e}");
        }
    }
}

fn tokio_server(started: &mpsc::Sender<Started>, stop: &AtomicBool) {
    use futures_util::{SinkExt, StreamExt};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = started.send(Err(format!("runtime: {e}")));
            return;
        }
    };
    rt.block_on(async {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                let _ = started.send(Err(format!("bind: {e}")));
                return;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = started.send(Ok((port, current_tid())));
        while !stop.load(Relaxed) {
            let Ok(Ok((stream, _))) =
                tokio::time::timeout(Duration::from_millis(20), listener.accept()).await
            else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------
// Client driver
// ---------------------------------------------------------------------------

struct Client {
    ws: WebSocketPeer,
    next_seq: u64,
    in_flight: bool,
    last_send: Instant,
}

fn drive_clients(a: &WsArgs, port: u16, server_tid: Option<u32>) -> Result<RunResult, String> {
    let reactor = Reactor::new().map_err(|e| format!("client reactor: {e}"))?;
    let url = format!("ws://127.0.0.1:{port}/load");
    let mut clients: Vec<Client> = Vec::with_capacity(a.peers);
    let mut index: HashMap<HandleId, usize> = HashMap::new();
    let errors = AtomicU64::new(0);
    let mut first_error: Option<String> = None;
    let mut error = |what: String| {
        if errors.fetch_add(1, Relaxed) == 0 {
            first_error = Some(what);
        }
    };
    // Connect in batches so the accept queue never overflows.
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    let mut payload = vec![0xA5u8; a.size];
    while clients.len() < a.peers {
        let batch = (a.peers - clients.len()).min(100);
        for _ in 0..batch {
            let ws = WebSocketPeer::connect_to_url(&reactor, &url, None)
                .map_err(|e| format!("connect: {e}"))?;
            clients.push(Client {
                ws,
                next_seq: 0,
                in_flight: false,
                last_send: Instant::now(),
            });
        }
        loop {
            reactor
                .poll(Some(Duration::from_millis(5)))
                .map_err(|e| format!("poll: {e}"))?;
            let mut connecting = 0;
            for c in &mut clients {
                c.ws.process();
                match c.ws.ready_state() {
                    WsState::Connecting => connecting += 1,
                    WsState::Open => {}
                    _ => return Err(format!("a client failed to open: {}", c.ws.close_reason())),
                }
            }
            if connecting == 0 {
                break;
            }
            if Instant::now() > connect_deadline {
                return Err(format!("{connecting} clients still connecting after 60 s"));
            }
        }
    }
    for (i, c) in clients.iter().enumerate() {
        if let Some(id) = c.ws.id() {
            index.insert(id, i);
        }
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.seconds);
    let mut measuring = false;
    let mut counted = 0u64;
    let mut cpu0 = None;
    let mut t0 = measure_from;
    let mut ready = Vec::new();
    let mut sweep = Instant::now();
    let hold_period = Duration::from_secs(1);

    let send = |c: &mut Client, payload: &mut Vec<u8>| -> Result<(), String> {
        payload[..8].copy_from_slice(&c.next_seq.to_le_bytes());
        c.ws.send(payload, WriteMode::Binary)
            .map_err(|e| format!("send: {e}"))?;
        c.in_flight = true;
        c.last_send = Instant::now();
        Ok(())
    };
    if !a.hold {
        for c in &mut clients {
            if let Err(e) = send(c, &mut payload) {
                error(e);
            }
        }
    }
    while Instant::now() < end {
        if !measuring && Instant::now() >= measure_from {
            measuring = true;
            counted = 0;
            cpu0 = thread_cpu(server_tid);
            t0 = Instant::now();
        }
        reactor
            .poll(Some(Duration::from_millis(10)))
            .map_err(|e| format!("poll: {e}"))?;
        reactor.drain_ready(&mut ready);
        let full_sweep = sweep.elapsed() >= Duration::from_millis(100);
        if full_sweep {
            sweep = Instant::now();
            ready.clear();
            ready.extend(clients.iter().filter_map(|c| c.ws.id()));
        }
        for id in ready.drain(..) {
            let Some(&i) = index.get(&id) else { continue };
            let c = &mut clients[i];
            c.ws.process();
            while let Ok(p) = c.ws.get_packet() {
                let seq = p
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes);
                if p.len() != a.size || seq != Some(c.next_seq) {
                    error(format!("bad echo: {} bytes, seq {seq:?}", p.len()));
                }
                c.next_seq += 1;
                c.in_flight = false;
                counted += 1;
                if !a.hold
                    && let Err(e) = send(c, &mut payload)
                {
                    error(e);
                }
            }
            if c.ws.ready_state() != WsState::Open {
                error(format!(
                    "a client closed ({}: {})",
                    c.ws.close_code(),
                    c.ws.close_reason()
                ));
                index.remove(&id);
            }
        }
        if a.hold && full_sweep {
            for c in &mut clients {
                if c.ws.ready_state() != WsState::Open {
                    continue;
                }
                if c.in_flight && c.last_send.elapsed() > Duration::from_secs(10) {
                    error("an echo took over 10 s".to_owned());
                    c.in_flight = false;
                }
                if !c.in_flight
                    && c.last_send.elapsed() >= hold_period
                    && let Err(e) = send(c, &mut payload)
                {
                    error(e);
                }
            }
        }
    }
    let elapsed = t0.elapsed();
    let server_cpu = match (cpu0, thread_cpu(server_tid)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let open_at_end = clients
        .iter()
        .filter(|c| c.ws.ready_state() == WsState::Open)
        .count();
    for c in &mut clients {
        c.ws.close(1000, "done");
    }
    // Let the closing handshakes go out (bounded).
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && clients
            .iter()
            .any(|c| c.ws.ready_state() != WsState::Closed)
    {
        let _ = reactor.poll(Some(Duration::from_millis(10)));
        for c in &mut clients {
            c.ws.process();
        }
    }
    Ok(RunResult {
        imp: Impl::Lunanet,
        messages: counted,
        elapsed,
        server_cpu,
        errors: errors.load(Relaxed),
        first_error,
        open_at_end,
    })
}
