//! Load test: many lunanet client peers against an echo or broadcast server —
//! lunanet's own, an idiomatic tokio one, or a hand-written mio one — with
//! msgs/s, MB/s, latency percentiles (HdrHistogram), errors and CPU per
//! message in the report.
//!
//! ```text
//! cargo run --release --example loadtest                    # 500 peers, 64 B ping-pong, 10 s
//! cargo run --release --example loadtest -- --impl tokio    # same load, tokio server
//! cargo run --release --example loadtest -- --compare       # lunanet vs tokio vs mio
//! cargo run --release --example loadtest -- --mode broadcast
//! cargo run --release --example loadtest -- --compare --report out.html
//! cargo run --release --example loadtest -- --help
//! ```
//!
//! Shape: the server under test runs on its own thread with its own reactor
//! (or runtime, or `mio::Poll`) — `--threads N` runs N of them on one port
//! (SO_REUSEPORT); the load generator runs on another thread, with every
//! client peer on ONE lunanet `Reactor` (`--client-threads M`: M threads, a
//! reactor each), and is the same for every server, so ratios between runs
//! compare servers. The main thread only draws the progress bar, samples the
//! throughput for `--report` and prints the report. Modules:
//!
//! - `args`: flags and `--help` (clap);
//! - `client`: the load generator (ping-pong, bulk, broadcast);
//! - `server_lunanet`, `server_tokio`, `server_mio`: the servers under test;
//! - `proto`: the verified payload and record formats;
//! - `report`: text (80 columns) and JSON (serde_json) reports, `--compare`
//!   ratios, the progress bar (indicatif);
//! - `plot`: the `--report FILE.html|svg` picture (plotters);
//! - `cpu`, `clock`: CPU time from `/proc`, a timestamp scale for records.
//!
//! The comparison servers are kept here, honest and idiomatic, so anyone can
//! rerun the comparison; see each module's header for what it does.

mod args;
mod client;
mod clock;
mod cpu;
mod plot;
mod proto;
mod report;
mod server_lunanet;
mod server_mio;
mod server_tokio;
#[cfg(feature = "tls")]
mod tls; // --transport tls (self-contained)
#[cfg(feature = "websocket")]
mod ws; // `--transport ws`: self-contained WebSocket load test

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use clock::Clock;
use report::RunResult;

/// Which server is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Impl {
    Lunanet,
    Tokio,
    Mio,
}

impl Impl {
    pub const ALL: [Impl; 3] = [Impl::Lunanet, Impl::Tokio, Impl::Mio];

    pub fn name(self) -> &'static str {
        match self {
            Impl::Lunanet => "lunanet",
            Impl::Tokio => "tokio",
            Impl::Mio => "mio",
        }
    }
}

/// What the load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    #[value(name = "pingpong", alias = "ping-pong")]
    PingPong,
    Bulk,
    Broadcast,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::PingPong => "pingpong",
            Mode::Bulk => "bulk",
            Mode::Broadcast => "broadcast",
        }
    }
}

/// The transport of the client connections. `tls` and `ws` are separate
/// load tests with their own flags and comparison servers (tokio-rustls,
/// tokio-tungstenite): `examples/loadtest/tls.rs` and `ws.rs` take the
/// command line before this parser when they are selected; see
/// `loadtest --transport tls --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Plain TCP (the scenarios below)
    Tcp,
    /// TLS (feature `tls`): lunanet StreamPeerTls vs tokio-rustls
    Tls,
    /// WebSocket (feature `websocket`): lunanet WebSocketPeer vs tokio-tungstenite
    Ws,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
        }
    }
}

/// Broadcast schedule: `records` records per peer every `period`.
#[derive(Debug, Clone, Copy)]
pub struct TickConfig {
    pub period: Duration,
    pub records: usize,
}

/// What a server under test needs to know.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub mode: Mode,
    pub tick: TickConfig,
    pub clock: Clock,
    /// Listen with SO_REUSEPORT: several server threads share the port.
    pub reuse_port: bool,
    /// `--write-at-once`: the lunanet server turns write coalescing off.
    pub write_at_once: bool,
}

impl ServerConfig {
    /// The broadcast records of one tick (the same bytes for every client).
    pub fn tick_records(
        &self,
        tick: u64,
        scheduled: Instant,
    ) -> impl Iterator<Item = [u8; proto::RECORD]> {
        let scheduled_ns = self.clock.ns(scheduled);
        let count = self.tick.records as u32;
        (0..count).map(move |index| {
            proto::encode_record(proto::Record {
                tick,
                scheduled_ns,
                index,
                count,
            })
        })
    }

    /// The fixed-rate schedule of the broadcast servers: a loop that falls
    /// behind runs every missed tick at once (burst), each with its own
    /// scheduled time, so no tick is skipped and every record says when it
    /// was due.
    pub fn tick_clock(&self) -> lunanet::TickClock {
        lunanet::TickClock::new(self.tick.period, Instant::now())
    }
}

/// Sent by a server once it listens.
pub struct Started {
    pub addr: SocketAddr,
}

/// A stop request for a server thread: a flag the poll loops check (they
/// never sleep longer than 100 ms) and a `Notify` the tokio accept loop awaits.
#[derive(Default)]
pub struct Stop {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub async fn notified(&self) {
        if !self.requested() {
            self.notify.notified().await;
        }
    }
}

/// What a server counted over its whole life (summed over its threads).
#[derive(Debug, Clone, Default)]
pub struct ServerReport {
    pub accepted: u64,
    /// Connections accepted by each server thread (the kernel's share).
    pub accepted_per_thread: Vec<u64>,
    pub bytes_echoed: u64,
    pub records_sent: u64,
    pub ticks: u64,
    /// Ticks sent more than a period after their scheduled time.
    pub late_ticks: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Connections still open when the server was stopped.
    pub open_at_stop: u64,
    /// CPU time of the server threads over their whole life.
    pub cpu: Option<Duration>,
    /// The reactors' own counters at the end (lunanet only), summed over
    /// the threads.
    pub stats: Option<ServerStats>,
}

/// `lunanet::ReactorStats` of the server at the end of a run, summed over its
/// threads. A copy of our own because `ReactorStats` is `#[non_exhaustive]`
/// (cannot be built outside lunanet to hold a sum) and has no serde derive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    pub passes: u64,
    pub events: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub accepted: u64,
    pub refused: u64,
    pub timed_out: u64,
}

impl From<lunanet::ReactorStats> for ServerStats {
    fn from(s: lunanet::ReactorStats) -> ServerStats {
        ServerStats {
            passes: s.passes,
            events: s.events,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            accepted: s.accepted,
            refused: s.refused,
            timed_out: s.timed_out,
        }
    }
}

impl std::ops::Add for ServerStats {
    type Output = ServerStats;
    fn add(self, o: ServerStats) -> ServerStats {
        ServerStats {
            passes: self.passes + o.passes,
            events: self.events + o.events,
            bytes_in: self.bytes_in + o.bytes_in,
            bytes_out: self.bytes_out + o.bytes_out,
            accepted: self.accepted + o.accepted,
            refused: self.refused + o.refused,
            timed_out: self.timed_out + o.timed_out,
        }
    }
}

impl ServerReport {
    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    fn add(&mut self, o: ServerReport) {
        self.accepted += o.accepted;
        self.accepted_per_thread.push(o.accepted);
        self.bytes_echoed += o.bytes_echoed;
        self.records_sent += o.records_sent;
        self.ticks += o.ticks;
        self.late_ticks += o.late_ticks;
        self.errors += o.errors;
        self.first_error = self.first_error.take().or(o.first_error);
        self.open_at_stop += o.open_at_stop;
        self.cpu = match (self.cpu, o.cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.stats = match (self.stats, o.stats) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

/// A server: one thread per reactor (runtime, poll), all on one port.
struct ServerHandle {
    addr: SocketAddr,
    tids: Vec<u32>,
    threads: Vec<(Arc<Stop>, thread::JoinHandle<ServerReport>)>,
}

impl ServerHandle {
    fn stop(self) -> ServerReport {
        for (stop, _) in &self.threads {
            stop.request();
        }
        let mut all = ServerReport::default();
        for (_, thread) in self.threads {
            all.add(thread.join().unwrap_or_else(|_| ServerReport {
                errors: 1,
                first_error: Some("server thread panicked".into()),
                ..ServerReport::default()
            }));
        }
        all
    }

    fn finished(&self) -> bool {
        self.threads.iter().any(|(_, t)| t.is_finished())
    }
}

/// Starts `threads` server threads: the first binds `cfg.addr` (port 0 picks
/// one), the others the same port, all with SO_REUSEPORT when more than one.
fn spawn_server(imp: Impl, cfg: ServerConfig, threads: usize) -> Result<ServerHandle, String> {
    let cfg = ServerConfig {
        reuse_port: threads > 1,
        ..cfg
    };
    let mut handle = ServerHandle {
        addr: cfg.addr,
        tids: Vec::new(),
        threads: Vec::new(),
    };
    for i in 0..threads {
        let cfg = ServerConfig {
            addr: handle.addr,
            ..cfg
        };
        let stop = Arc::new(Stop::default());
        let (tx, rx) = mpsc::channel::<Result<(Started, Option<u32>), String>>();
        let thread_stop = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(format!("server-{}-{i}", imp.name()))
            .spawn(move || {
                let tid = cpu::current_tid();
                let started = |r: Result<Started, String>| {
                    let _ = tx.send(r.map(|s| (s, tid)));
                };
                let mut report = match imp {
                    Impl::Lunanet => server_lunanet::run(&cfg, &started, &thread_stop),
                    Impl::Tokio => server_tokio::run(&cfg, &started, &thread_stop),
                    Impl::Mio => server_mio::run(&cfg, &started, &thread_stop),
                };
                report.cpu = tid.and_then(cpu::thread_cpu);
                report
            })
            .map_err(|e| format!("spawn server thread: {e}"))?;
        let started = rx.recv();
        handle.threads.push((stop, thread));
        match started {
            Ok(Ok((started, tid))) => {
                handle.addr = started.addr;
                handle.tids.extend(tid);
            }
            Ok(Err(e)) => {
                handle.stop();
                return Err(e);
            }
            Err(_) => {
                handle.stop();
                return Err("a server thread ended before listening".into());
            }
        }
    }
    Ok(handle)
}

/// One run: a server (embedded unless `--addr`), the load, the figures.
fn run_once(a: &args::Args, imp: Impl, clock: Clock, label: &str) -> Result<RunResult, String> {
    let server = match a.addr {
        Some(_) => None,
        None => Some(spawn_server(
            imp,
            ServerConfig {
                addr: "127.0.0.1:0".parse().expect("literal address"),
                mode: a.mode,
                tick: a.tick,
                clock,
                reuse_port: false,
                write_at_once: a.write_at_once,
            },
            a.server_threads,
        )?),
    };
    let addr = a
        .addr
        .or(server.as_ref().map(|s| s.addr))
        .expect("an address");
    let progress = Arc::new(client::Progress::default());
    let sync = Arc::new(client::WindowSync::new(a.client_threads));
    let mut load = Vec::new();
    for i in 0..a.client_threads {
        // An equal share of the peers; the first threads take the remainder.
        let peers = a.peers / a.client_threads + usize::from(i < a.peers % a.client_threads);
        let cfg = client::ClientConfig {
            addr,
            mode: a.mode,
            peers,
            size: a.size,
            pipeline: a.pipeline,
            tick: a.tick,
            warmup: a.warmup,
            seconds: a.seconds,
            clock,
            measures_cpu: i == 0,
            server_tids: server.as_ref().map_or(Vec::new(), |s| s.tids.clone()),
            progress: Arc::clone(&progress),
            sync: Arc::clone(&sync),
        };
        let thread = thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || client::run(cfg))
            .map_err(|e| format!("spawn load thread: {e}"))?;
        load.push(thread);
    }
    let draw = !a.quiet && std::io::stderr().is_terminal();
    let mut bar = report::Progress::new(label, a.mode, clock, draw);
    let mut samples = report::Samples::default();
    while !load.iter().all(|t| t.is_finished()) {
        thread::sleep(Duration::from_millis(200));
        samples.take(&progress, clock);
        bar.update(&progress);
    }
    bar.finish();
    let mut reports = Vec::new();
    for thread in load {
        reports.push(
            thread
                .join()
                .map_err(|_| "a load thread panicked".to_string())?,
        );
    }
    let client = client::merge(reports).ok_or("no load thread ran")?;
    let server_report = server.map(ServerHandle::stop);
    Ok(RunResult {
        imp: if a.addr.is_some() { None } else { Some(imp) },
        addr,
        client,
        server: server_report,
        samples,
    })
}

/// `--serve`: the chosen server alone, on its own thread(s), until killed
/// or for `--seconds`.
fn serve(a: &args::Args, clock: Clock) -> Result<bool, String> {
    let server = spawn_server(
        a.imp,
        ServerConfig {
            addr: a
                .addr
                .unwrap_or_else(|| "127.0.0.1:0".parse().expect("literal")),
            mode: a.mode,
            tick: a.tick,
            clock,
            reuse_port: false,
            write_at_once: a.write_at_once,
        },
        a.server_threads,
    )?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "listening on {} (impl {}, mode {}, {} thread{}{})",
        server.addr,
        a.imp.name(),
        a.mode.name(),
        a.server_threads,
        if a.server_threads == 1 { "" } else { "s" },
        if a.seconds_given {
            format!(", for {:.1} s", a.seconds.as_secs_f64())
        } else {
            ", until killed".to_string()
        }
    );
    let _ = out.flush();
    let started = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(100));
        if server.finished() || (a.seconds_given && started.elapsed() >= a.seconds) {
            break;
        }
    }
    let r = server.stop();
    report::print_serve(a, &r, started.elapsed());
    Ok(r.errors == 0)
}

/// Raises the soft limit on open files to the hard limit when the run needs
/// more than the soft limit allows.
fn raise_nofile(peers: usize, quiet: bool) {
    #[cfg(unix)]
    {
        let need = (peers as u64) * 2 + 100;
        let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
            return;
        };
        if need <= soft {
            return;
        }
        if soft < hard {
            match rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard) {
                Ok(()) if !quiet => {
                    eprintln!("raised the open-file limit (RLIMIT_NOFILE) from {soft} to {hard}")
                }
                Ok(()) => {}
                Err(e) => eprintln!("could not raise RLIMIT_NOFILE from {soft} to {hard}: {e}"),
            }
        }
        if need > hard {
            eprintln!(
                "warning: {peers} peers need about {need} descriptors; the hard limit is {hard} \
                 (raise it with `ulimit -Hn` as root)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (peers, quiet);
}

/// The load runs of `--compare` (interleaved rounds) or of a single run.
fn load_runs(a: &args::Args, clock: Clock) -> Result<Vec<RunResult>, String> {
    if !a.compare {
        return Ok(vec![run_once(a, a.imp, clock, a.imp.name())?]);
    }
    let mut runs = Vec::new();
    for round in 1..=a.rounds {
        for imp in Impl::ALL {
            let label = format!("{} {round}/{}", imp.name(), a.rounds);
            if !a.json {
                eprintln!("round {round}/{}: {}", a.rounds, imp.name());
            }
            runs.push(run_once(a, imp, clock, &label)?);
        }
    }
    Ok(runs)
}

fn main() {
    #[cfg(feature = "websocket")]
    if let Some(code) = ws::run_if_selected() {
        std::process::exit(code);
    }
    // `--transport tls` has its own flags and runs (lunanet vs tokio-rustls).
    #[cfg(feature = "tls")]
    if let Some(code) = tls::dispatch() {
        std::process::exit(code);
    }
    let a = match args::Cli::parse().resolve() {
        // Reached only when the transport's feature is off (else its own
        // load test took the command line above).
        Ok(a) if a.transport != Transport::Tcp => {
            let t = a.transport.name();
            let feature = if t == "ws" { "websocket" } else { t };
            eprintln!(
                "loadtest: --transport {t} needs the `{feature}` feature (--features {feature})"
            );
            std::process::exit(2);
        }
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
    };
    raise_nofile(a.peers, a.json);
    let clock = Clock::new();

    let outcome = if a.serve {
        serve(&a, clock)
    } else {
        load_runs(&a, clock).and_then(|runs| {
            if a.compare {
                report::print_compare(&a, &runs);
            } else {
                report::print_run(&a, &runs[0]);
            }
            if let Some(path) = &a.report {
                plot::write_report(path, &a, &runs)?;
                if !a.json {
                    eprintln!("report written to {}", path.display());
                }
            }
            // A run that moved nothing or left connections open is a
            // failure even without a counted error.
            let problems: Vec<String> = runs.iter().flat_map(RunResult::problems).collect();
            for p in &problems {
                eprintln!("loadtest: {p}");
            }
            Ok(problems.is_empty())
        })
    };
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
    }
}
