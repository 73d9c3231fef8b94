//! The report: text for people (every line fits 80 columns), one JSON object
//! for machines (`--json`, serde_json), the `--compare` ratios, the progress
//! bar (indicatif) and the throughput samples `--report` draws.
//!
//! Units: MB = 10^6 bytes of payload received and verified by the load
//! generator in the window (one direction; the echo means as much went the
//! other way). "µs/msg" of CPU is numerically the CPU seconds per million
//! messages. In broadcast mode a "message" is one 32-byte record.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::args::Args;
use crate::client::{self, ClientReport};
use crate::clock::Clock;
use crate::{Impl, Mode, ServerReport, ServerStats};

/// The width every text line of the report fits in.
pub const COLUMNS: usize = 80;

/// One run's figures.
pub struct RunResult {
    /// `None` when an external server (`--addr`) was loaded.
    pub imp: Option<Impl>,
    pub addr: SocketAddr,
    pub client: ClientReport,
    pub server: Option<ServerReport>,
    pub samples: Samples,
}

impl RunResult {
    pub fn errors(&self) -> u64 {
        self.client.errors.total() + self.server_errors()
    }

    fn server_errors(&self) -> u64 {
        self.server.as_ref().map_or(0, |s| s.errors)
    }

    pub fn msgs_per_s(&self) -> f64 {
        per_second(self.client.msgs, self.client.window)
    }

    fn mb_per_s(&self) -> f64 {
        per_second(self.client.bytes, self.client.window) / 1e6
    }

    /// CPU seconds per million messages (= µs per message).
    fn per_million(&self, cpu: Option<Duration>) -> Option<f64> {
        let cpu = cpu?;
        (self.client.msgs > 0).then(|| cpu.as_secs_f64() * 1e6 / self.client.msgs as f64)
    }

    pub fn server_us_per_msg(&self) -> Option<f64> {
        self.per_million(self.client.server_cpu)
    }

    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        let h = &self.client.latency;
        (!h.is_empty()).then(|| h.value_at_quantile(q))
    }

    pub fn name(&self) -> &'static str {
        self.imp.map_or("external", Impl::name)
    }

    /// Why this run must fail the process even without a counted error.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.client.msgs == 0 {
            p.push(format!(
                "{}: no message completed in the measured window",
                self.name()
            ));
        }
        if self.client.unclosed > 0 {
            p.push(format!(
                "{}: {} connections still open 3 s after the clients closed theirs",
                self.name(),
                self.client.unclosed
            ));
        }
        if self.errors() > 0 {
            p.push(format!("{}: {} errors", self.name(), self.errors()));
        }
        p
    }
}

fn per_second(n: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        n as f64 / window.as_secs_f64()
    }
}

pub fn unit(mode: Mode) -> &'static str {
    match mode {
        Mode::Broadcast => "records",
        Mode::PingPong | Mode::Bulk => "msgs",
    }
}

/// "msgs" -> "msg".
fn one(unit: &str) -> &str {
    unit.strip_suffix('s').unwrap_or(unit)
}

/// 118300.0 → "118.3 k".
pub fn si(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

pub fn dur_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

fn opt_ns(ns: Option<u64>) -> String {
    ns.map_or("n/a".into(), dur_ns)
}

pub fn scenario(a: &Args) -> String {
    let mut threads = if a.server_threads > 1 || a.client_threads > 1 {
        format!(
            ", {} server / {} client threads",
            a.server_threads, a.client_threads
        )
    } else {
        String::new()
    };
    if a.write_at_once {
        threads.push_str(", lunanet writes at once");
    }
    match a.mode {
        Mode::PingPong | Mode::Bulk => format!(
            "{}, {} peers, {} B messages, pipeline {}{threads}",
            a.mode.name(),
            a.peers,
            a.size,
            a.pipeline
        ),
        Mode::Broadcast => format!(
            "broadcast, {} peers, {} x 32 B per peer per tick at {:.1} Hz{threads}",
            a.peers,
            a.tick.records,
            1.0 / a.tick.period.as_secs_f64()
        ),
    }
}

/// Appends `label` and `text` in two columns, wrapped at [`COLUMNS`].
fn field(out: &mut String, label: &str, text: &str) {
    wrap(out, &format!("  {label:<12} "), 15, text);
}

/// Appends `first` then `text`, wrapped at [`COLUMNS`] on spaces, the
/// continuation lines indented by `indent`.
fn wrap(out: &mut String, first: &str, indent: usize, text: &str) {
    let indent = " ".repeat(indent);
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ') {
        let len = line.chars().count() + usize::from(!empty) + word.chars().count();
        if !empty && len > COLUMNS {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        // A single word longer than the line (an address, a path) is cut.
        let room = COLUMNS.saturating_sub(line.chars().count()).max(1);
        line.extend(word.chars().take(room));
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn cpu_text(r: &RunResult, cpu: Option<Duration>, u: &str) -> String {
    let Some(cpu) = cpu else {
        return "n/a".into();
    };
    let window = r.client.window.as_secs_f64().max(1e-9);
    let mut s = format!(
        "{:.2} s = {:.1}% of a core",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / window * 100.0
    );
    if let Some(pm) = r.per_million(Some(cpu)) {
        let _ = write!(s, "; {pm:.3} µs/{}", one(u));
    }
    s
}

/// The report of one run, as text.
pub fn run_text(a: &Args, r: &RunResult) -> String {
    let c = &r.client;
    let u = unit(a.mode);
    let mut o = String::new();
    wrap(&mut o, "loadtest: ", 2, &scenario(a));
    let server = match (r.imp, &r.server) {
        (Some(imp), Some(s)) => format!(
            "{} (embedded, {}), {} thread{}",
            imp.name(),
            r.addr,
            s.accepted_per_thread.len().max(1),
            if s.accepted_per_thread.len() > 1 {
                "s"
            } else {
                ""
            }
        ),
        _ => format!("external at {}", r.addr),
    };
    field(&mut o, "server", &server);
    if let Some(s) = r
        .server
        .as_ref()
        .filter(|s| s.accepted_per_thread.len() > 1)
    {
        let shares: Vec<String> = s.accepted_per_thread.iter().map(u64::to_string).collect();
        field(
            &mut o,
            "accepted",
            &format!(
                "{} per server thread (the kernel's share)",
                shares.join(" / ")
            ),
        );
    }
    field(
        &mut o,
        "peers",
        &format!(
            "{}/{} connected in {:.2} s; warm-up {:.1} s; measured {:.2} s",
            c.connected,
            a.peers,
            c.connect_time.as_secs_f64(),
            a.warmup.as_secs_f64(),
            c.window.as_secs_f64()
        ),
    );
    field(
        &mut o,
        u,
        &format!(
            "{} in the window; {} in the whole run (exact)",
            c.msgs, c.msgs_total
        ),
    );
    field(
        &mut o,
        "throughput",
        &format!(
            "{} {u}/s; {:.2} MB/s payload received{}",
            si(r.msgs_per_s()),
            r.mb_per_s(),
            if a.mode == Mode::Broadcast {
                ""
            } else {
                " (as much sent)"
            }
        ),
    );
    if a.mode == Mode::Broadcast {
        let expected_rate = c.expected_records / c.window.as_secs_f64().max(1e-9);
        field(
            &mut o,
            "delivered",
            &format!(
                "{} of {} records/s expected ({:.1}%)",
                si(r.msgs_per_s()),
                si(expected_rate),
                if c.expected_records > 0.0 {
                    c.msgs as f64 / c.expected_records * 100.0
                } else {
                    0.0
                }
            ),
        );
        field(
            &mut o,
            "late ticks",
            &format!(
                "{} of {} peer-ticks ({:.2}%) had their last record more than {} \
                 after the tick's schedule",
                c.late_ticks,
                c.peer_ticks,
                if c.peer_ticks > 0 {
                    c.late_ticks as f64 / c.peer_ticks as f64 * 100.0
                } else {
                    0.0
                },
                dur_ns(a.tick.period.as_nanos() as u64)
            ),
        );
        if let Some(s) = &r.server {
            field(
                &mut o,
                "server ticks",
                &format!("{} run, {} late", s.ticks, s.late_ticks),
            );
        }
    }
    field(
        &mut o,
        if a.mode == Mode::Broadcast {
            "delay"
        } else {
            "latency"
        },
        &format!(
            "p50 {}  p99 {}  p99.9 {}  max {} ({})",
            opt_ns(r.quantile_ns(0.5)),
            opt_ns(r.quantile_ns(0.99)),
            opt_ns(r.quantile_ns(0.999)),
            opt_ns((!c.latency.is_empty()).then(|| c.latency.max())),
            if a.mode == Mode::Broadcast {
                "tick scheduled -> record received"
            } else {
                "send -> full echo received"
            }
        ),
    );
    field(
        &mut o,
        "errors",
        &format!(
            "{} (connect {}, mismatch {}, closed {}, put {}, server {})",
            r.errors(),
            c.errors.connect,
            c.errors.mismatch,
            c.errors.closed,
            c.errors.io,
            r.server_errors()
        ),
    );
    if let Some(e) = &c.first_error {
        field(&mut o, "", &format!("first client error: {e}"));
    }
    if let Some(e) = r.server.as_ref().and_then(|s| s.first_error.as_ref()) {
        field(&mut o, "", &format!("first server error: {e}"));
    }
    if c.unclosed > 0 {
        field(
            &mut o,
            "unclosed",
            &format!(
                "{} connections still open 3 s after the clients closed theirs",
                c.unclosed
            ),
        );
    }
    if let Some(st) = r.server.as_ref().and_then(|s| s.stats.as_ref()) {
        stats_fields(&mut o, st);
    }
    field(&mut o, "server CPU", &cpu_text(r, c.server_cpu, u));
    field(&mut o, "client CPU", &cpu_text(r, c.client_cpu, u));
    field(&mut o, "process CPU", &cpu_text(r, c.process_cpu, u));
    o
}

/// The server reactors' counters (`Reactor::stats`), two short fields: the
/// passes and bytes, then what happened to connections.
fn stats_fields(o: &mut String, s: &ServerStats) {
    let per_pass = if s.passes == 0 {
        0.0
    } else {
        s.events as f64 / s.passes as f64
    };
    field(
        o,
        "reactor",
        &format!(
            "{} passes, {per_pass:.1} events/pass, {}B in, {}B out",
            si(s.passes as f64),
            si(s.bytes_in as f64),
            si(s.bytes_out as f64),
        ),
    );
    field(
        o,
        "connections",
        &format!(
            "{} accepted, {} refused, {} timed out",
            s.accepted, s.refused, s.timed_out
        ),
    );
}

/// The report of one run, as text (or JSON with `--json`), on stdout.
pub fn print_run(a: &Args, r: &RunResult) {
    if a.json {
        println!("{}", json_run(a, r));
    } else {
        print!("{}", run_text(a, r));
    }
}

/// The final line(s) of `--serve`.
pub fn print_serve(a: &Args, s: &ServerReport, ran: Duration) {
    if a.json {
        let o = json!({
            "serve": a.imp.name(),
            "mode": a.mode.name(),
            "threads": a.server_threads,
            "ran_s": ran.as_secs_f64(),
            "accepted": s.accepted,
            "accepted_per_thread": s.accepted_per_thread,
            "bytes_echoed": s.bytes_echoed,
            "records_sent": s.records_sent,
            "ticks": s.ticks,
            "late_ticks": s.late_ticks,
            "errors": s.errors,
            "first_error": s.first_error,
            "server_cpu_s": s.cpu.map(|c| c.as_secs_f64()),
            "server_stats": s.stats,
        });
        println!("{o}");
        return;
    }
    let cpu = s
        .cpu
        .map_or("n/a".into(), |c| format!("{:.2} s", c.as_secs_f64()));
    let mut o = String::new();
    field(
        &mut o,
        "served",
        &format!(
            "{:.1} s: {} connections, {} bytes echoed, {} records sent \
             ({} ticks, {} late), {} errors, server CPU {cpu}",
            ran.as_secs_f64(),
            s.accepted,
            s.bytes_echoed,
            s.records_sent,
            s.ticks,
            s.late_ticks,
            s.errors
        ),
    );
    if let Some(e) = &s.first_error {
        field(&mut o, "", &format!("first error: {e}"));
    }
    if let Some(st) = &s.stats {
        stats_fields(&mut o, st);
    }
    print!("{o}");
}

/// `--compare` as text: every run, the per-round ratios and their medians.
pub fn compare_text(a: &Args, runs: &[RunResult]) -> String {
    let rounds = ratios(runs);
    let u = unit(a.mode);
    let broadcast = a.mode == Mode::Broadcast;
    let mut o = String::new();
    wrap(&mut o, "loadtest --compare: ", 2, &scenario(a));
    let _ = writeln!(
        o,
        "  {} interleaved rounds of {:.1} s (+{:.1} s warm-up)",
        rounds.len(),
        a.seconds.as_secs_f64(),
        a.warmup.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "  {:<5} {:<8} {:>12} {:>9} {:>9} {:>13} {:>6}{}",
        "round",
        "server",
        format!("{u}/s"),
        "p50",
        "p99",
        format!("srv µs/{}", one(u)),
        "errors",
        if broadcast {
            format!(" {:>9}", "late")
        } else {
            String::new()
        }
    );
    for (i, r) in runs.iter().enumerate() {
        let late = if broadcast {
            let pct = if r.client.peer_ticks > 0 {
                r.client.late_ticks as f64 / r.client.peer_ticks as f64 * 100.0
            } else {
                0.0
            };
            format!(" {:>8.2}%", pct)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  {:<5} {:<8} {:>12} {:>9} {:>9} {:>13} {:>6}{late}",
            i / 3 + 1,
            r.name(),
            format!("{:.0}", r.msgs_per_s()),
            opt_ns(r.quantile_ns(0.5)),
            opt_ns(r.quantile_ns(0.99)),
            r.server_us_per_msg()
                .map_or("n/a".into(), |x| format!("{x:.3}")),
            r.errors(),
        );
    }
    let f = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.3}"));
    let _ = writeln!(
        o,
        "  ratios lunanet / other: {u}/s higher is better, CPU lower is better"
    );
    let _ = writeln!(
        o,
        "  {:<6} {:>13} {:>13} {:>16} {:>16}",
        "round", "rate/tokio", "rate/mio", "srv cpu/tokio", "srv cpu/mio"
    );
    let mut row = |label: String, r: [Option<f64>; 4]| {
        let _ = writeln!(
            o,
            "  {:<6} {:>13} {:>13} {:>16} {:>16}",
            label,
            f(r[0]),
            f(r[1]),
            f(r[2]),
            f(r[3])
        );
    };
    for (i, rr) in rounds.iter().enumerate() {
        row((i + 1).to_string(), rr.as_array());
    }
    row("median".into(), medians(&rounds));
    let errors: u64 = runs.iter().map(RunResult::errors).sum();
    let _ = writeln!(o, "  errors in all runs: {errors}");
    for r in runs.iter().filter(|r| r.errors() > 0) {
        if let Some(e) = &r.client.first_error {
            field(
                &mut o,
                "",
                &format!("{}: first client error: {e}", r.name()),
            );
        }
        if let Some(e) = r.server.as_ref().and_then(|s| s.first_error.as_ref()) {
            field(
                &mut o,
                "",
                &format!("{}: first server error: {e}", r.name()),
            );
        }
    }
    o
}

/// `--compare` on stdout, as text or JSON.
pub fn print_compare(a: &Args, runs: &[RunResult]) {
    if !a.json {
        print!("{}", compare_text(a, runs));
        return;
    }
    let rounds = ratios(runs);
    let ratio_obj = |r: [Option<f64>; 4]| {
        json!({
            "msgs_per_s_lunanet_over_tokio": r[0],
            "msgs_per_s_lunanet_over_mio": r[1],
            "server_cpu_per_msg_lunanet_over_tokio": r[2],
            "server_cpu_per_msg_lunanet_over_mio": r[3],
        })
    };
    let round_ratios: Vec<Value> = rounds
        .iter()
        .enumerate()
        .map(|(i, rr)| {
            let mut v = ratio_obj(rr.as_array());
            v["round"] = json!(i + 1);
            v
        })
        .collect();
    let o = json!({
        "compare": scenario(a),
        "rounds": rounds.len(),
        "runs": runs.iter().map(|r| json_run(a, r)).collect::<Vec<_>>(),
        "round_ratios": round_ratios,
        "median_ratios": ratio_obj(medians(&rounds)),
        "errors": runs.iter().map(RunResult::errors).sum::<u64>(),
    });
    println!("{o}");
}

pub struct RoundRatios {
    rate_vs_tokio: Option<f64>,
    rate_vs_mio: Option<f64>,
    cpu_vs_tokio: Option<f64>,
    cpu_vs_mio: Option<f64>,
}

impl RoundRatios {
    fn as_array(&self) -> [Option<f64>; 4] {
        [
            self.rate_vs_tokio,
            self.rate_vs_mio,
            self.cpu_vs_tokio,
            self.cpu_vs_mio,
        ]
    }
}

/// Runs come in rounds of three: lunanet, tokio, mio.
pub fn ratios(runs: &[RunResult]) -> Vec<RoundRatios> {
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    runs.chunks_exact(3)
        .map(|round| {
            let (l, t, m) = (&round[0], &round[1], &round[2]);
            RoundRatios {
                rate_vs_tokio: div(Some(l.msgs_per_s()), Some(t.msgs_per_s())),
                rate_vs_mio: div(Some(l.msgs_per_s()), Some(m.msgs_per_s())),
                cpu_vs_tokio: div(l.server_us_per_msg(), t.server_us_per_msg()),
                cpu_vs_mio: div(l.server_us_per_msg(), m.server_us_per_msg()),
            }
        })
        .collect()
}

pub fn medians(rounds: &[RoundRatios]) -> [Option<f64>; 4] {
    let col = |k: usize| median(rounds.iter().map(|r| r.as_array()[k]));
    [col(0), col(1), col(2), col(3)]
}

pub fn median(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = xs.flatten().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn json_run(a: &Args, r: &RunResult) -> Value {
    let c = &r.client;
    let cpu = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let mut o = json!({
        "impl": r.name(),
        "addr": r.addr.to_string(),
        "transport": a.transport.name(),
        "mode": a.mode.name(),
        "peers": a.peers,
        "connected": c.connected,
        "size": a.size,
        "pipeline": a.pipeline,
        "server_threads": a.server_threads,
        "client_threads": a.client_threads,
        "connect_s": c.connect_time.as_secs_f64(),
        "warmup_s": a.warmup.as_secs_f64(),
        "window_s": c.window.as_secs_f64(),
        "unit": unit(a.mode),
        "msgs": c.msgs,
        "msgs_total": c.msgs_total,
        "bytes": c.bytes,
        "bytes_total": c.bytes_total,
        "msgs_per_s": r.msgs_per_s(),
        "mb_per_s": r.mb_per_s(),
        "latency_ns": {
            "p50": r.quantile_ns(0.5),
            "p99": r.quantile_ns(0.99),
            "p999": r.quantile_ns(0.999),
            "max": (!c.latency.is_empty()).then(|| c.latency.max()),
            "mean": (!c.latency.is_empty()).then(|| c.latency.mean()),
        },
        "errors": {
            "total": r.errors(),
            "connect": c.errors.connect,
            "mismatch": c.errors.mismatch,
            "closed": c.errors.closed,
            "put": c.errors.io,
            "server": r.server_errors(),
        },
        "first_client_error": c.first_error,
        "first_server_error": r.server.as_ref().and_then(|s| s.first_error.clone()),
        "unclosed": c.unclosed,
        "accepted_per_server_thread": r.server.as_ref().map(|s| s.accepted_per_thread.clone()),
        "server_stats": r.server.as_ref().and_then(|s| s.stats),
        "server_cpu_s": cpu(c.server_cpu),
        "server_cpu_s_per_million": r.per_million(c.server_cpu),
        "client_cpu_s": cpu(c.client_cpu),
        "client_cpu_s_per_million": r.per_million(c.client_cpu),
        "process_cpu_s": cpu(c.process_cpu),
        "process_cpu_s_per_million": r.per_million(c.process_cpu),
        "throughput_samples": r.samples.points.iter().map(|&(t, rate)| [t, rate]).collect::<Vec<_>>(),
        "problems": r.problems(),
    });
    if a.mode == Mode::Broadcast {
        o["tick_hz"] = json!(1.0 / a.tick.period.as_secs_f64());
        o["records_per_tick"] = json!(a.tick.records);
        o["records_expected"] = json!(c.expected_records);
        o["peer_ticks"] = json!(c.peer_ticks);
        o["late_ticks"] = json!(c.late_ticks);
        o["server_ticks"] = json!(r.server.as_ref().map(|s| s.ticks));
        o["server_late_ticks"] = json!(r.server.as_ref().map(|s| s.late_ticks));
    }
    o
}

/// Throughput over the measured window, sampled by the main thread: points
/// of (seconds since the window started, messages per second since the
/// previous point).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub points: Vec<(f64, f64)>,
    last: Option<(Instant, u64)>,
}

impl Samples {
    /// Takes one sample if the load is in its measured window.
    pub fn take(&mut self, p: &client::Progress, clock: Clock) {
        let now = Instant::now();
        let msgs = p.msgs_total.load(Ordering::Relaxed);
        if p.phase.load(Ordering::Relaxed) != client::PHASE_MEASURE {
            self.last = None;
            return;
        }
        let window_start = clock.instant(p.phase_started_ns.load(Ordering::Relaxed));
        if let Some((at, before)) = self.last {
            let dt = now.duration_since(at).as_secs_f64();
            if dt > 0.0 {
                let t = now.saturating_duration_since(window_start).as_secs_f64();
                self.points
                    .push((t, msgs.saturating_sub(before) as f64 / dt));
            }
        }
        self.last = Some((now, msgs));
    }
}

/// The progress bar on stderr (indicatif): one line, redrawn in place and
/// cut to the terminal's width, so a narrow terminal never scrolls a new line
/// per update. Hidden with `--quiet` or when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    unit: &'static str,
    clock: Clock,
    phase: Option<u8>,
    last: Option<(Instant, u64)>,
    rate: f64,
}

impl Progress {
    pub fn new(label: &str, mode: Mode, clock: Clock, draw: bool) -> Progress {
        // Styled before its first draw, so no default bar ever shows.
        let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{prefix}: {wide_msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_string());
        if draw {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Progress {
            bar,
            unit: unit(mode),
            clock,
            phase: None,
            last: None,
            rate: 0.0,
        }
    }

    pub fn update(&mut self, p: &client::Progress) {
        let now = Instant::now();
        let msgs = p.msgs_total.load(Ordering::Relaxed);
        if let Some((at, before)) = self.last {
            let dt = now.duration_since(at).as_secs_f64();
            if dt > 0.0 {
                self.rate = msgs.saturating_sub(before) as f64 / dt;
            }
        }
        self.last = Some((now, msgs));
        let phase = p.phase.load(Ordering::Relaxed);
        let len_ms = p.phase_len_ms.load(Ordering::Relaxed);
        let started = self
            .clock
            .instant(p.phase_started_ns.load(Ordering::Relaxed));
        let elapsed = now.saturating_duration_since(started);
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            // The bar is only for the measured window; the other phases are
            // one message. `wide_msg` is cut to what the terminal has left.
            let template = if phase == client::PHASE_MEASURE {
                "{prefix} [{bar:20}] {wide_msg}"
            } else {
                "{prefix}: {wide_msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                self.bar.set_style(style.progress_chars("=> "));
            }
            self.bar.set_length(len_ms.max(1));
        }
        let stats = format!(
            "{} {}/s, {} errors",
            si(self.rate),
            self.unit,
            p.errors.load(Ordering::Relaxed)
        );
        let msg = match phase {
            client::PHASE_CONNECT => format!(
                "connecting, {} connected",
                p.connected.load(Ordering::Relaxed)
            ),
            client::PHASE_WARMUP => format!(
                "warm-up {:.1}/{:.1} s, {stats}",
                elapsed.as_secs_f64(),
                len_ms as f64 / 1e3
            ),
            client::PHASE_MEASURE => {
                self.bar
                    .set_position((elapsed.as_millis() as u64).min(len_ms));
                format!(
                    "{:.1}/{:.1} s, {stats}",
                    elapsed.as_secs_f64(),
                    len_ms as f64 / 1e3
                )
            }
            _ => "closing connections".to_string(),
        };
        self.bar.set_message(msg);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Errors;
    use clap::Parser;
    use hdrhistogram::Histogram;

    fn args(flags: &str) -> Args {
        let argv = std::iter::once("loadtest").chain(flags.split_whitespace());
        crate::args::Cli::try_parse_from(argv)
            .expect("valid flags")
            .resolve()
            .expect("valid combination")
    }

    /// A run with big numbers and long error texts: the worst case for width.
    fn run(imp: Impl) -> RunResult {
        let mut latency = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("bounds");
        for v in [1_000u64, 50_000, 2_000_000, 3_000_000_000] {
            latency.record(v).expect("in range");
        }
        let long = "connection failed: Connection reset by peer (os error 104) while \
                    reading the echo of message 123456789 from 127.0.0.1:65535 after a long \
                    time, with a_very_long_word_that_cannot_be_wrapped_anywhere_at_all_ever_x";
        RunResult {
            imp: Some(imp),
            addr: "[::1]:65535".parse().expect("addr"),
            client: ClientReport {
                connected: 1_000_000,
                connect_time: Duration::from_secs(12),
                window: Duration::from_secs(10),
                msgs: 12_345_678_901,
                bytes: 98_765_432_109_876,
                msgs_total: 23_456_789_012,
                bytes_total: 198_765_432_109_876,
                latency,
                errors: Errors {
                    connect: 123_456,
                    mismatch: 7,
                    closed: 89_012,
                    io: 3,
                },
                first_error: Some(long.into()),
                peer_ticks: 300_000_000,
                late_ticks: 1_234_567,
                expected_records: 3e9,
                server_cpu: Some(Duration::from_secs(9)),
                client_cpu: Some(Duration::from_secs(10)),
                process_cpu: Some(Duration::from_secs(19)),
                unclosed: 123_456,
            },
            server: Some(ServerReport {
                accepted: 1_000_000,
                accepted_per_thread: vec![250_001, 249_999, 250_000, 250_000],
                errors: 12,
                first_error: Some(long.into()),
                ticks: 123_456_789,
                late_ticks: 1234,
                stats: Some(ServerStats {
                    passes: 123_456_789_012,
                    events: 987_654_321_098,
                    bytes_in: 98_765_432_109_876,
                    bytes_out: 98_765_432_109_876,
                    accepted: 1_000_000,
                    refused: 123_456_789,
                    timed_out: 123_456_789,
                }),
                ..ServerReport::default()
            }),
            samples: Samples::default(),
        }
    }

    #[track_caller]
    fn fits(text: &str) {
        assert!(text.lines().count() > 5, "{text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= COLUMNS,
                "{} columns: {line:?}",
                line.chars().count()
            );
        }
    }

    #[test]
    fn every_report_line_fits_80_columns() {
        for flags in [
            "--peers 1000000 --threads 4 --client-threads 16",
            "--mode broadcast --peers 1000000 --tick-hz 9999.5 --records 100000 --threads 4",
            "--mode bulk --size 67108864 --pipeline 1000000",
        ] {
            let a = args(flags);
            fits(&run_text(&a, &run(Impl::Lunanet)));
            let runs: Vec<RunResult> = (0..2).flat_map(|_| Impl::ALL.map(run)).collect();
            fits(&compare_text(&a, &runs));
        }
    }

    #[test]
    fn a_run_that_moved_nothing_or_left_peers_open_is_a_problem() {
        let mut r = run(Impl::Mio);
        r.client.errors = Errors::default();
        r.server = None;
        assert_eq!(r.problems().len(), 1, "unclosed");
        r.client.unclosed = 0;
        assert!(r.problems().is_empty());
        r.client.msgs = 0;
        assert_eq!(r.problems().len(), 1, "no message");
    }
}
