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
//! cargo run --release --example loadtest -- --help
//! ```
//!
//! Shape: the server under test runs on its own thread with its own reactor
//! (or runtime, or `mio::Poll`); the load generator runs on another thread,
//! with every client peer on ONE lunanet `Reactor`, and is the same for every
//! server, so ratios between runs compare servers. The main thread only draws
//! the progress bar and prints the report. Modules:
//!
//! - `args`: flags and `--help`;
//! - `client`: the load generator (ping-pong, bulk, broadcast);
//! - `server_lunanet`, `server_tokio`, `server_mio`: the servers under test;
//! - `proto`: the verified payload and record formats;
//! - `report`: text and JSON reports, `--compare` ratios;
//! - `cpu`, `clock`: CPU time from `/proc`, a timestamp scale for records.
//!
//! The comparison servers are kept here, honest and idiomatic, so anyone can
//! rerun the comparison; see each module's header for what it does.

mod args;
mod client;
mod clock;
mod cpu;
mod proto;
mod report;
mod server_lunanet;
mod server_mio;
mod server_tokio;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "websocket")]
mod ws; // `--transport ws`: self-contained WebSocket load test // --transport tls (self-contained)

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use clock::Clock;
use report::RunResult;

/// Which server is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
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
}

/// The fixed-rate tick schedule of the broadcast servers: a loop that falls
/// behind runs every missed tick at once (burst), each with its own scheduled
/// time, so no tick is skipped and every record says when it was due.
pub struct TickSchedule {
    start: Instant,
    period: Duration,
    next: Instant,
    tick: u64,
}

impl TickSchedule {
    pub fn new(period: Duration) -> TickSchedule {
        let start = Instant::now();
        TickSchedule {
            start,
            period,
            next: start,
            tick: 0,
        }
    }

    /// The next tick due at `now`: its number, when it was scheduled, and
    /// whether it is late (more than a period behind). `None` when none is due.
    pub fn due(&mut self, now: Instant) -> Option<(u64, Instant, bool)> {
        if now < self.next {
            return None;
        }
        let due = (self.tick, self.next, now > self.next + self.period);
        self.tick += 1;
        self.next = self.start + self.period.mul_f64(self.tick as f64);
        Some(due)
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    /// How long a loop may sleep before the next tick, at most `max`
    /// (measured after the tick's work, so the sleep ends on schedule).
    pub fn wait(&self, max: Duration) -> Duration {
        self.next.saturating_duration_since(Instant::now()).min(max)
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

/// What a server counted over its whole life.
#[derive(Debug, Clone, Default)]
pub struct ServerReport {
    pub accepted: u64,
    pub bytes_echoed: u64,
    pub records_sent: u64,
    pub ticks: u64,
    /// Ticks sent more than a period after their scheduled time.
    pub late_ticks: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Connections still open when the server was stopped.
    pub open_at_stop: u64,
    /// CPU time of the server thread over its whole life.
    pub cpu: Option<Duration>,
}

impl ServerReport {
    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// A server running on its own thread.
struct ServerHandle {
    addr: SocketAddr,
    tid: Option<u32>,
    stop: Arc<Stop>,
    thread: thread::JoinHandle<ServerReport>,
}

impl ServerHandle {
    fn stop(self) -> ServerReport {
        self.stop.request();
        self.thread.join().unwrap_or_else(|_| ServerReport {
            errors: 1,
            first_error: Some("server thread panicked".into()),
            ..ServerReport::default()
        })
    }
}

fn spawn_server(imp: Impl, cfg: ServerConfig) -> Result<ServerHandle, String> {
    let stop = Arc::new(Stop::default());
    let (tx, rx) = mpsc::channel::<Result<(Started, Option<u32>), String>>();
    let thread_stop = Arc::clone(&stop);
    let thread = thread::Builder::new()
        .name(format!("server-{}", imp.name()))
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
    match rx.recv() {
        Ok(Ok((started, tid))) => Ok(ServerHandle {
            addr: started.addr,
            tid,
            stop,
            thread,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the server thread ended before listening".into()),
    }
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
            },
        )?),
    };
    let addr = a
        .addr
        .or(server.as_ref().map(|s| s.addr))
        .expect("an address");
    let progress = Arc::new(client::Progress::default());
    let cfg = client::ClientConfig {
        addr,
        mode: a.mode,
        peers: a.peers,
        size: a.size,
        pipeline: a.pipeline,
        tick: a.tick,
        warmup: a.warmup,
        seconds: a.seconds,
        clock,
        server_tid: server.as_ref().and_then(|s| s.tid),
        progress: Arc::clone(&progress),
    };
    let load = thread::Builder::new()
        .name("load".into())
        .spawn(move || client::run(cfg))
        .map_err(|e| format!("spawn load thread: {e}"))?;
    let draw = !a.quiet && std::io::stderr().is_terminal();
    let mut bar = report::ProgressBar::new(label, a.mode, clock);
    while !load.is_finished() {
        thread::sleep(Duration::from_millis(200));
        if draw {
            bar.draw(&progress);
        }
    }
    if draw {
        bar.clear();
    }
    let client = load
        .join()
        .map_err(|_| "the load thread panicked".to_string())?;
    let server_report = server.map(ServerHandle::stop);
    Ok(RunResult {
        imp: if a.addr.is_some() { None } else { Some(imp) },
        addr,
        client,
        server: server_report,
    })
}

/// `--serve`: the chosen server alone, on its own thread, until killed
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
        },
    )?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "listening on {} (impl {}, mode {}{})",
        server.addr,
        a.imp.name(),
        a.mode.name(),
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
        if server.thread.is_finished() || (a.seconds_given && started.elapsed() >= a.seconds) {
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

fn main() {
    #[cfg(feature = "websocket")]
    if let Some(code) = ws::run_if_selected() {
        std::process::exit(code);
    }
    #[cfg(feature = "tls")]
    if let Some(code) = tls::dispatch() {
        std::process::exit(code);
    }
    let a = match args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", args::HELP);
            return;
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
    };
    raise_nofile(a.peers, a.json);
    let clock = Clock::new();

    let outcome = if a.serve {
        serve(&a, clock)
    } else if a.compare {
        let mut runs: Vec<RunResult> = Vec::new();
        let mut failed = None;
        'rounds: for round in 1..=a.rounds {
            for imp in Impl::ALL {
                let label = format!("{} {round}/{}", imp.name(), a.rounds);
                if !a.json {
                    eprintln!("round {round}/{}: {}", a.rounds, imp.name());
                }
                match run_once(&a, imp, clock, &label) {
                    Ok(r) => runs.push(r),
                    Err(e) => {
                        failed = Some(e);
                        break 'rounds;
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => {
                report::print_compare(&a, &runs);
                Ok(runs.iter().all(|r| r.errors() == 0))
            }
        }
    } else {
        run_once(&a, a.imp, clock, a.imp.name()).map(|r| {
            report::print_run(&a, &r);
            r.errors() == 0
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
