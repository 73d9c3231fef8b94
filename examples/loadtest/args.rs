//! Command-line flags (hand-written, like the other examples).

use std::net::SocketAddr;
use std::time::Duration;

use crate::{Impl, Mode, TickConfig};

pub const HELP: &str = "\
loadtest: load a TCP server with many lunanet client peers and report msgs/s,
MB/s, latency percentiles, errors and CPU per message.

USAGE:
    cargo run --release --example loadtest -- [FLAGS]

With no flags: an embedded lunanet echo server on its own thread, 500 client
peers on one lunanet reactor in another thread, 64-byte ping-pong, 1 s warm-up,
10 s measured. Every payload byte is verified; any mismatch is an error.

SCENARIO:
    --mode MODE        pingpong | bulk | broadcast                [pingpong]
                         pingpong: each peer keeps --pipeline messages of
                           --size bytes in flight; latency = send to full echo
                         bulk: each peer streams --size chunks, up to --pipeline
                           chunks in flight; the server echoes; MB/s counts
                         broadcast: the server sends --records records of 32
                           bytes to every peer --tick-hz times a second; the
                           peers only read and verify; a late tick is one whose
                           last record arrives more than a tick period after
                           the tick was scheduled
    --peers N          client connections       [500; bulk: 1; broadcast: 1000]
    --size BYTES       message / chunk size          [64; bulk: 65536; not in
                         broadcast, whose records are 32 bytes]
    --pipeline N       messages in flight per peer          [1; bulk: 16]
    --tick-hz HZ       broadcast ticks per second                      [30]
    --records K        broadcast records per peer per tick             [10]
    --warmup SECS      warm-up after every peer connected, not counted  [1]
    --seconds SECS     measured time                [10; 5 per --compare round]

SERVER UNDER TEST:
    --impl IMPL        lunanet | tokio | mio                        [lunanet]
                         lunanet: TcpServer + ready set on one Reactor
                         tokio: current_thread runtime, task per connection
                         mio: hand-written edge-triggered mio + slab
    --addr IP:PORT     load an external server instead of the embedded one;
                         with --serve, where to listen       [127.0.0.1:0]
    --serve            run only the --impl server for --mode (for strace,
                         valgrind, perf); prints its address; runs until
                         killed, or for --seconds if given
    --compare          lunanet, tokio and mio in interleaved rounds
                         (A B C A B C ...) in this process; prints per-round
                         ratios and their medians
    --rounds N         rounds of --compare                              [3]

OUTPUT:
    --json             one JSON object on stdout (implies --quiet)
    --quiet            no progress bar (it is also off when stderr is not a
                         terminal)
    -h, --help         this text

Exit status: 0 when the run had no error, 1 when it counted errors, 2 for bad
arguments or when the run could not start.

Measuring a server alone (syscalls, instructions):
    loadtest --serve --impl mio --addr 127.0.0.1:7000 --seconds 15 &   # under strace -f -c / valgrind
    loadtest --addr 127.0.0.1:7000 --seconds 10
The load generator prints the exact number of messages it completed over the
whole run (warm-up included) to divide the server's totals by.
";

/// Everything the command line chose, defaults applied.
#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    pub imp: Impl,
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
    pub json: bool,
    pub quiet: bool,
}

/// `Ok(None)` means `--help` was asked for.
pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut mode = Mode::PingPong;
    let mut imp = Impl::Lunanet;
    let mut peers = None;
    let mut size = None;
    let mut pipeline = None;
    let mut hz = 30.0;
    let mut records = 10usize;
    let mut warmup = 1.0;
    let mut seconds = None;
    let mut addr = None;
    let mut serve = false;
    let mut compare = false;
    let mut rounds = 3usize;
    let mut json = false;
    let mut quiet = false;

    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .ok_or(format!("{name} needs a value (try --help)")),
            }
        };
        match name.as_str() {
            "--mode" => {
                mode = match value()?.as_str() {
                    "pingpong" | "ping-pong" => Mode::PingPong,
                    "bulk" => Mode::Bulk,
                    "broadcast" => Mode::Broadcast,
                    v => return Err(format!("--mode: {v:?} is not pingpong, bulk or broadcast")),
                }
            }
            "--impl" => {
                imp = match value()?.as_str() {
                    "lunanet" => Impl::Lunanet,
                    "tokio" => Impl::Tokio,
                    "mio" => Impl::Mio,
                    v => return Err(format!("--impl: {v:?} is not lunanet, tokio or mio")),
                }
            }
            "--peers" => peers = Some(int(&name, &value()?, 1, 1_000_000)?),
            "--size" => size = Some(int(&name, &value()?, 1, 64 << 20)?),
            "--pipeline" => pipeline = Some(int(&name, &value()?, 1, 1_000_000)?),
            "--tick-hz" => hz = float(&name, &value()?, 0.1, 10_000.0)?,
            "--records" => records = int(&name, &value()?, 1, 100_000)?,
            "--warmup" => warmup = float(&name, &value()?, 0.0, 86_400.0)?,
            "--seconds" => seconds = Some(float(&name, &value()?, 0.1, 31_536_000.0)?),
            "--addr" => {
                let v = value()?;
                addr = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|e| format!("--addr: {v:?}: {e} (expected IP:PORT)"))?,
                );
            }
            "--serve" => serve = true,
            "--compare" => compare = true,
            "--rounds" => rounds = int(&name, &value()?, 1, 1000)?,
            "--json" => json = true,
            "--quiet" | "-q" => quiet = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
        if inline.is_some()
            && matches!(
                name.as_str(),
                "--serve" | "--compare" | "--json" | "--quiet"
            )
        {
            return Err(format!("{name} takes no value"));
        }
    }

    if compare && addr.is_some() {
        return Err("--compare runs the three embedded servers; it cannot use --addr".into());
    }
    if compare && serve {
        return Err("--compare and --serve exclude each other".into());
    }
    if mode == Mode::Broadcast && size.is_some() {
        return Err("--size does not apply to --mode broadcast (records are 32 bytes)".into());
    }
    if mode == Mode::Broadcast && pipeline.is_some() {
        return Err("--pipeline does not apply to --mode broadcast".into());
    }
    let seconds_given = seconds.is_some();
    let seconds = seconds.unwrap_or(if compare { 5.0 } else { 10.0 });
    Ok(Some(Args {
        mode,
        imp,
        peers: peers.unwrap_or(match mode {
            Mode::PingPong => 500,
            Mode::Bulk => 1,
            Mode::Broadcast => 1000,
        }),
        size: match mode {
            Mode::Broadcast => crate::proto::RECORD,
            Mode::Bulk => size.unwrap_or(65536),
            Mode::PingPong => size.unwrap_or(64),
        },
        pipeline: pipeline.unwrap_or(if mode == Mode::Bulk { 16 } else { 1 }),
        tick: TickConfig {
            period: Duration::from_secs_f64(1.0 / hz),
            records,
        },
        warmup: Duration::from_secs_f64(warmup),
        seconds: Duration::from_secs_f64(seconds),
        seconds_given,
        addr,
        serve,
        compare,
        rounds,
        json,
        quiet: quiet || json,
    }))
}

fn int(name: &str, v: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = v
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{name}: {v:?} is not a whole number"))?;
    if !(min..=max).contains(&n) {
        return Err(format!("{name}: {n} is outside {min}..={max}"));
    }
    Ok(n)
}

fn float(name: &str, v: &str, min: f64, max: f64) -> Result<f64, String> {
    let x: f64 = v
        .parse()
        .map_err(|_| format!("{name}: {v:?} is not a number"))?;
    if !(min..=max).contains(&x) {
        return Err(format!("{name}: {x} is outside {min}..={max}"));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<Args>, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_follow_the_mode() {
        let a = p("").unwrap().unwrap();
        assert_eq!((a.peers, a.size, a.pipeline), (500, 64, 1));
        assert_eq!(a.seconds, Duration::from_secs(10));
        let a = p("--mode bulk").unwrap().unwrap();
        assert_eq!((a.peers, a.size, a.pipeline), (1, 65536, 16));
        let a = p("--mode=broadcast").unwrap().unwrap();
        assert_eq!(a.peers, 1000);
        let a = p("--compare").unwrap().unwrap();
        assert_eq!(a.seconds, Duration::from_secs(5));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(p("--peers 0").is_err());
        assert!(p("--peers x").is_err());
        assert!(p("--mode nope").is_err());
        assert!(p("--bogus").is_err());
        assert!(p("--compare --addr 127.0.0.1:1").is_err());
        assert!(p("--mode broadcast --size 64").is_err());
        assert!(p("--seconds").is_err());
        assert!(p("--help").unwrap().is_none());
    }
}
