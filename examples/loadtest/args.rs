//! Command-line flags: clap (derive) parses them, [`Cli::resolve`] applies
//! the defaults that depend on the mode and refuses combinations that make
//! no sense.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::{Impl, Mode, TickConfig, Transport};

const AFTER_HELP: &str = "\
With no flags: an embedded lunanet echo server on its own thread, 500 client
peers on one lunanet reactor in another thread, 64-byte ping-pong, 1 s warm-up,
10 s measured. Every payload byte is verified; any mismatch is an error.

Exit status: 0 when the run moved messages, counted no error and every
connection closed; 1 otherwise (the report says which); 2 for bad arguments
or when the run could not start.

Measuring a server alone (syscalls, instructions):
  loadtest --serve --impl mio --addr 127.0.0.1:7000 --seconds 15 &
  loadtest --addr 127.0.0.1:7000 --seconds 10
The load generator prints the exact number of messages it completed over the
whole run (warm-up included) to divide the server's totals by.

A picture of a comparison:
  loadtest --compare --report out.html   (or out.svg)";

/// Load a TCP server with many lunanet client peers and report msgs/s, MB/s,
/// latency percentiles, errors and CPU per message.
#[derive(Debug, Parser)]
#[command(name = "loadtest", after_help = AFTER_HELP)]
pub struct Cli {
    /// pingpong: each peer keeps --pipeline messages of --size bytes in
    /// flight; latency = send to full echo. bulk: each peer streams --size
    /// chunks, up to --pipeline in flight, echoed back. broadcast: the server
    /// sends --records 32-byte records to every peer --tick-hz times a second;
    /// a late tick is one whose last record arrives more than a tick period
    /// after it was scheduled
    #[arg(long, value_enum, default_value_t = Mode::PingPong, help_heading = "Scenario")]
    pub mode: Mode,
    /// Client connections [default: 500; bulk: 1; broadcast: 1000]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "Scenario")]
    pub peers: Option<u32>,
    /// Message / chunk size in bytes [default: 64; bulk: 65536; not in
    /// broadcast, whose records are 32 bytes]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=(64 << 20)), help_heading = "Scenario")]
    pub size: Option<u32>,
    /// Messages in flight per peer [default: 1; bulk: 16]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "Scenario")]
    pub pipeline: Option<u32>,
    /// Broadcast ticks per second
    #[arg(long, default_value_t = 30.0, value_parser = float_in(0.1, 10_000.0), help_heading = "Scenario")]
    pub tick_hz: f64,
    /// Broadcast records per peer per tick
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Scenario")]
    pub records: u32,
    /// Warm-up seconds after every peer connected, not counted
    #[arg(long, default_value_t = 1.0, value_parser = float_in(0.0, 86_400.0), help_heading = "Scenario")]
    pub warmup: f64,
    /// Measured seconds [default: 10; 5 per --compare round]
    #[arg(long, value_parser = float_in(0.1, 31_536_000.0), help_heading = "Scenario")]
    pub seconds: Option<f64>,
    /// Transport: tcp, or the separate tls / ws load tests (their own
    /// flags: `--transport tls --help`)
    #[arg(long, value_enum, default_value_t = Transport::Tcp, help_heading = "Scenario")]
    pub transport: Transport,

    /// lunanet: TcpServer + ready set on one Reactor per thread; tokio:
    /// current_thread runtime per thread, task per connection; mio:
    /// hand-written edge-triggered mio + slab
    #[arg(long = "impl", value_enum, default_value_t = Impl::Lunanet, help_heading = "Server under test")]
    pub imp: Impl,
    /// Server threads, each with its own reactor (runtime, poll) listening on
    /// one port with SO_REUSEPORT; the kernel spreads the connections
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024), help_heading = "Server under test")]
    pub threads: u32,
    /// Load an external server instead of the embedded one; with --serve,
    /// where to listen [default: 127.0.0.1:0]
    #[arg(long, help_heading = "Server under test")]
    pub addr: Option<SocketAddr>,
    /// Run only the --impl server for --mode (for strace, valgrind, perf);
    /// print its address; run until killed, or for --seconds if given
    #[arg(long, conflicts_with = "compare", help_heading = "Server under test")]
    pub serve: bool,
    /// lunanet, tokio and mio in interleaved rounds (A B C A B C ...) in this
    /// process; prints per-round ratios and their medians
    #[arg(long, conflicts_with = "addr", help_heading = "Server under test")]
    pub compare: bool,
    /// Rounds of --compare
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = "Server under test")]
    pub rounds: u32,

    /// Load-generator threads, each with its own reactor and an equal share
    /// of the peers
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024), help_heading = "Load generator")]
    pub client_threads: u32,

    /// lunanet server only: `Config::coalesce_writes(false)`, every
    /// `put_data` written at once instead of once per reactor pass (to
    /// compare latency with the default)
    #[arg(long, help_heading = "Server under test")]
    pub write_at_once: bool,
    /// One JSON object on stdout (implies --quiet)
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// No progress bar (it is also off when stderr is not a terminal)
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,
    /// Write a picture of the run: throughput over time per implementation
    /// and latency percentiles; FILE.html (a page with the figures) or
    /// FILE.svg (the picture alone)
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,
}

/// Everything the command line chose, defaults applied.
#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    pub imp: Impl,
    pub transport: Transport,
    pub peers: usize,
    pub size: usize,
    pub pipeline: usize,
    pub tick: TickConfig,
    pub warmup: Duration,
    pub seconds: Duration,
    /// `--seconds` was given (`--serve` runs forever otherwise).
    pub seconds_given: bool,
    pub addr: Option<SocketAddr>,
    pub serve: bool,
    pub compare: bool,
    pub rounds: usize,
    pub server_threads: usize,
    pub client_threads: usize,
    /// `--write-at-once`: the lunanet server does not coalesce writes.
    pub write_at_once: bool,
    pub json: bool,
    pub quiet: bool,
    pub report: Option<PathBuf>,
}

impl Cli {
    /// Applies the mode's defaults; refuses flags that do not apply.
    pub fn resolve(self) -> Result<Args, String> {
        let mode = self.mode;
        if mode == Mode::Broadcast && self.size.is_some() {
            return Err("--size does not apply to --mode broadcast (records are 32 bytes)".into());
        }
        if mode == Mode::Broadcast && self.pipeline.is_some() {
            return Err("--pipeline does not apply to --mode broadcast".into());
        }
        if self.write_at_once
            && !self.compare
            && (self.imp != Impl::Lunanet || (self.addr.is_some() && !self.serve))
        {
            return Err("--write-at-once configures the embedded lunanet server only".into());
        }
        if let Some(path) = &self.report {
            if self.serve {
                return Err("--report draws a load run; --serve has none".into());
            }
            match path.extension().and_then(|e| e.to_str()) {
                Some("html" | "htm" | "svg") => {}
                _ => {
                    return Err(format!(
                        "--report {}: the file name must end in .html or .svg",
                        path.display()
                    ));
                }
            }
        }
        let peers = self.peers.map_or(
            match mode {
                Mode::PingPong => 500,
                Mode::Bulk => 1,
                Mode::Broadcast => 1000,
            },
            |n| n as usize,
        );
        let client_threads = self.client_threads as usize;
        if client_threads > peers {
            return Err(format!(
                "--client-threads {client_threads} is more than --peers {peers}"
            ));
        }
        let seconds_given = self.seconds.is_some();
        let seconds = self
            .seconds
            .unwrap_or(if self.compare { 5.0 } else { 10.0 });
        Ok(Args {
            mode,
            imp: self.imp,
            transport: self.transport,
            peers,
            size: match mode {
                Mode::Broadcast => crate::proto::RECORD,
                Mode::Bulk => self.size.map_or(65536, |n| n as usize),
                Mode::PingPong => self.size.map_or(64, |n| n as usize),
            },
            pipeline: self
                .pipeline
                .map_or(if mode == Mode::Bulk { 16 } else { 1 }, |n| n as usize),
            tick: TickConfig {
                period: Duration::from_secs_f64(1.0 / self.tick_hz),
                records: self.records as usize,
            },
            warmup: Duration::from_secs_f64(self.warmup),
            seconds: Duration::from_secs_f64(seconds),
            seconds_given,
            addr: self.addr,
            serve: self.serve,
            compare: self.compare,
            rounds: self.rounds as usize,
            server_threads: self.threads as usize,
            client_threads,
            write_at_once: self.write_at_once,
            json: self.json,
            quiet: self.quiet || self.json,
            report: self.report,
        })
    }
}

/// A clap value parser for a float within `min..=max`.
fn float_in(min: f64, max: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |v: &str| {
        let x: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
        if !(min..=max).contains(&x) {
            return Err(format!("{x} is outside {min}..={max}"));
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, String> {
        let argv = std::iter::once("loadtest").chain(s.split_whitespace());
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .resolve()
    }

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_mode() {
        let a = p("").unwrap();
        assert_eq!((a.peers, a.size, a.pipeline), (500, 64, 1));
        assert_eq!(a.seconds, Duration::from_secs(10));
        assert_eq!((a.server_threads, a.client_threads), (1, 1));
        let a = p("--mode bulk").unwrap();
        assert_eq!((a.peers, a.size, a.pipeline), (1, 65536, 16));
        let a = p("--mode=broadcast").unwrap();
        assert_eq!(a.peers, 1000);
        let a = p("--compare --rounds 4 --report out.html").unwrap();
        assert_eq!(a.seconds, Duration::from_secs(5));
        assert_eq!(a.rounds, 4);
        let a = p("--threads 2 --client-threads 2 --impl mio --transport tcp").unwrap();
        assert_eq!(
            (a.server_threads, a.client_threads, a.imp),
            (2, 2, Impl::Mio)
        );
        assert!(!a.write_at_once);
        assert!(p("--write-at-once").unwrap().write_at_once);
        assert!(p("--compare --write-at-once").unwrap().write_at_once);
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            "--peers 0",
            "--peers x",
            "--mode nope",
            "--bogus",
            "--write-at-once --impl tokio",
            "--write-at-once --addr 127.0.0.1:9",
            "--compare --addr 127.0.0.1:1",
            "--compare --serve",
            "--mode broadcast --size 64",
            "--mode broadcast --pipeline 2",
            "--seconds",
            "--seconds 0",
            "--report out.png",
            "--serve --report out.html",
            "--peers 2 --client-threads 3",
            "--transport carrier-pigeon",
        ] {
            assert!(p(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
