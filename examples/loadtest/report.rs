//! The report: text for people, one JSON object for machines (`--json`), the
//! `--compare` ratios, and the progress bar.
//!
//! Units: MB = 10^6 bytes of payload received and verified by the load
//! generator in the window (one direction; the echo means as much went the
//! other way). "CPU s per million msgs" is numerically the CPU microseconds
//! per message. In broadcast mode a "message" is one 32-byte record.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::client::{self, ClientReport, Progress};
use crate::clock::Clock;
use crate::{Impl, Mode, ServerReport};

/// One run's figures.
pub struct RunResult {
    /// `None` when an external server (`--addr`) was loaded.
    pub imp: Option<Impl>,
    pub addr: SocketAddr,
    pub client: ClientReport,
    pub server: Option<ServerReport>,
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

    fn quantile_ns(&self, q: f64) -> Option<u64> {
        let h = &self.client.latency;
        (!h.is_empty()).then(|| h.value_at_quantile(q))
    }

    fn name(&self) -> &'static str {
        self.imp.map_or("external", Impl::name)
    }
}

fn per_second(n: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        n as f64 / window.as_secs_f64()
    }
}

fn unit(mode: Mode) -> &'static str {
    match mode {
        Mode::Broadcast => "records",
        Mode::PingPong | Mode::Bulk => "msgs",
    }
}

/// 118300.0 → "118.3 k".
fn si(x: f64) -> String {
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

fn dur_ns(ns: u64) -> String {
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

fn scenario(a: &Args) -> String {
    match a.mode {
        Mode::PingPong | Mode::Bulk => format!(
            "{}, {} peers, {} B messages, pipeline {}",
            a.mode.name(),
            a.peers,
            a.size,
            a.pipeline
        ),
        Mode::Broadcast => format!(
            "broadcast, {} peers, {} records of 32 B per peer per tick, {:.1} Hz",
            a.peers,
            a.tick.records,
            1.0 / a.tick.period.as_secs_f64()
        ),
    }
}

fn cpu_line(r: &RunResult, cpu: Option<Duration>, u: &str) -> String {
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
        let _ = write!(
            s,
            "; {pm:.3} s per million {u} ({pm:.3} µs/{})",
            &u[..u.len() - 1]
        );
    }
    s
}

/// The report of one run, as text (or JSON with `--json`).
pub fn print_run(a: &Args, r: &RunResult) {
    if a.json {
        println!("{}", json_run(a, r));
        return;
    }
    let c = &r.client;
    let u = unit(a.mode);
    let server = match (r.imp, &r.server) {
        (Some(imp), Some(_)) => format!("{} (embedded, {})", imp.name(), r.addr),
        _ => format!("external at {}", r.addr),
    };
    println!("loadtest: {}; server: {server}", scenario(a));
    println!(
        "  peers        {}/{} connected in {:.2} s; warm-up {:.1} s; measured {:.2} s",
        c.connected,
        a.peers,
        c.connect_time.as_secs_f64(),
        a.warmup.as_secs_f64(),
        c.window.as_secs_f64()
    );
    println!(
        "  {u:<12} {} in the window; {} over the whole run (warm-up included), exact counts",
        c.msgs, c.msgs_total
    );
    println!(
        "  throughput   {} {u}/s   {:.2} MB/s payload received{}",
        si(r.msgs_per_s()),
        r.mb_per_s(),
        if a.mode == Mode::Broadcast {
            ""
        } else {
            " (as much sent)"
        }
    );
    if a.mode == Mode::Broadcast {
        let expected_rate = c.expected_records / c.window.as_secs_f64().max(1e-9);
        println!(
            "  delivered    {} records/s of {} records/s expected ({:.1}%)",
            si(r.msgs_per_s()),
            si(expected_rate),
            if c.expected_records > 0.0 {
                c.msgs as f64 / c.expected_records * 100.0
            } else {
                0.0
            }
        );
        println!(
            "  late ticks   {} of {} peer-ticks ({:.2}%): last record more than {} after the tick's schedule{}",
            c.late_ticks,
            c.peer_ticks,
            if c.peer_ticks > 0 {
                c.late_ticks as f64 / c.peer_ticks as f64 * 100.0
            } else {
                0.0
            },
            dur_ns(a.tick.period.as_nanos() as u64),
            match &r.server {
                Some(s) => format!("; server ran {} of {} ticks late", s.late_ticks, s.ticks),
                None => String::new(),
            }
        );
    }
    println!(
        "  {:<12} p50 {}   p99 {}   p99.9 {}   max {}   ({})",
        if a.mode == Mode::Broadcast {
            "delay"
        } else {
            "latency"
        },
        opt_ns(r.quantile_ns(0.5)),
        opt_ns(r.quantile_ns(0.99)),
        opt_ns(r.quantile_ns(0.999)),
        opt_ns((!c.latency.is_empty()).then(|| c.latency.max())),
        if a.mode == Mode::Broadcast {
            "tick scheduled -> record received"
        } else {
            "send -> full echo received, HdrHistogram"
        }
    );
    println!(
        "  errors       {} (connect {}, mismatch {}, closed {}, put {}, server {})",
        r.errors(),
        c.errors.connect,
        c.errors.mismatch,
        c.errors.closed,
        c.errors.io,
        r.server_errors()
    );
    if let Some(e) = &c.first_error {
        println!("    first client error: {e}");
    }
    if let Some(e) = r.server.as_ref().and_then(|s| s.first_error.as_ref()) {
        println!("    first server error: {e}");
    }
    if c.unclosed > 0 {
        println!(
            "    note: {} connections were still open 3 s after the clients closed theirs",
            c.unclosed
        );
    }
    println!("  server CPU   {}", cpu_line(r, c.server_cpu, u));
    println!("  client CPU   {}", cpu_line(r, c.client_cpu, u));
    println!("  process CPU  {}", cpu_line(r, c.process_cpu, u));
}

/// The final line(s) of `--serve`.
pub fn print_serve(a: &Args, s: &ServerReport, ran: Duration) {
    let cpu = s
        .cpu
        .map_or("n/a".into(), |c| format!("{:.2} s", c.as_secs_f64()));
    if a.json {
        let mut o = Obj::new();
        o.str("serve", a.imp.name());
        o.str("mode", a.mode.name());
        o.num("ran_s", ran.as_secs_f64());
        o.int("accepted", s.accepted);
        o.int("bytes_echoed", s.bytes_echoed);
        o.int("records_sent", s.records_sent);
        o.int("ticks", s.ticks);
        o.int("late_ticks", s.late_ticks);
        o.int("errors", s.errors);
        o.opt_str("first_error", s.first_error.as_deref());
        o.opt_num("server_cpu_s", s.cpu.map(|c| c.as_secs_f64()));
        println!("{}", o.end());
        return;
    }
    println!(
        "served {:.1} s: {} connections, {} bytes echoed, {} records sent ({} ticks, {} late), \
         {} errors, server thread CPU {cpu}",
        ran.as_secs_f64(),
        s.accepted,
        s.bytes_echoed,
        s.records_sent,
        s.ticks,
        s.late_ticks,
        s.errors
    );
    if let Some(e) = &s.first_error {
        println!("  first error: {e}");
    }
}

/// `--compare`: every run, the per-round ratios and their medians.
pub fn print_compare(a: &Args, runs: &[RunResult]) {
    let rounds = ratios(runs);
    if a.json {
        let mut o = Obj::new();
        o.str("compare", &scenario(a));
        o.int("rounds", rounds.len() as u64);
        o.raw(
            "runs",
            format!(
                "[{}]",
                runs.iter()
                    .map(|r| json_run(a, r))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        let mut rs = Vec::new();
        for (i, rr) in rounds.iter().enumerate() {
            let mut ro = Obj::new();
            ro.int("round", i as u64 + 1);
            ro.opt_num("msgs_per_s_lunanet_over_tokio", rr.rate_vs_tokio);
            ro.opt_num("msgs_per_s_lunanet_over_mio", rr.rate_vs_mio);
            ro.opt_num("server_cpu_per_msg_lunanet_over_tokio", rr.cpu_vs_tokio);
            ro.opt_num("server_cpu_per_msg_lunanet_over_mio", rr.cpu_vs_mio);
            rs.push(ro.end());
        }
        o.raw("round_ratios", format!("[{}]", rs.join(",")));
        let mut m = Obj::new();
        m.opt_num(
            "msgs_per_s_lunanet_over_tokio",
            median(rounds.iter().map(|r| r.rate_vs_tokio)),
        );
        m.opt_num(
            "msgs_per_s_lunanet_over_mio",
            median(rounds.iter().map(|r| r.rate_vs_mio)),
        );
        m.opt_num(
            "server_cpu_per_msg_lunanet_over_tokio",
            median(rounds.iter().map(|r| r.cpu_vs_tokio)),
        );
        m.opt_num(
            "server_cpu_per_msg_lunanet_over_mio",
            median(rounds.iter().map(|r| r.cpu_vs_mio)),
        );
        o.raw("median_ratios", m.end());
        o.int("errors", runs.iter().map(RunResult::errors).sum());
        println!("{}", o.end());
        return;
    }
    let u = unit(a.mode);
    println!(
        "loadtest --compare: {}; {} interleaved rounds of {:.1} s (+{:.1} s warm-up)",
        scenario(a),
        rounds.len(),
        a.seconds.as_secs_f64(),
        a.warmup.as_secs_f64()
    );
    println!(
        "  {:<6} {:<8} {:>14} {:>10} {:>10} {:>16} {:>7}{}",
        "round",
        "server",
        format!("{u}/s"),
        "p50",
        "p99",
        format!("srv µs/{}", &u[..u.len() - 1]),
        "errors",
        if a.mode == Mode::Broadcast {
            "  late ticks"
        } else {
            ""
        }
    );
    for (i, r) in runs.iter().enumerate() {
        println!(
            "  {:<6} {:<8} {:>14} {:>10} {:>10} {:>16} {:>7}{}",
            i / 3 + 1,
            r.name(),
            format!("{:.0}", r.msgs_per_s()),
            opt_ns(r.quantile_ns(0.5)),
            opt_ns(r.quantile_ns(0.99)),
            r.server_us_per_msg()
                .map_or("n/a".into(), |x| format!("{x:.3}")),
            r.errors(),
            if a.mode == Mode::Broadcast {
                format!("  {}/{}", r.client.late_ticks, r.client.peer_ticks)
            } else {
                String::new()
            }
        );
    }
    let f = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.3}"));
    println!(
        "  ratios (lunanet / other): {u}/s higher is better, server CPU per {} lower is better",
        &u[..u.len() - 1]
    );
    println!(
        "  {:<6} {:>14} {:>14} {:>18} {:>18}",
        "round", "rate vs tokio", "rate vs mio", "cpu/msg vs tokio", "cpu/msg vs mio"
    );
    for (i, rr) in rounds.iter().enumerate() {
        println!(
            "  {:<6} {:>14} {:>14} {:>18} {:>18}",
            i + 1,
            f(rr.rate_vs_tokio),
            f(rr.rate_vs_mio),
            f(rr.cpu_vs_tokio),
            f(rr.cpu_vs_mio)
        );
    }
    println!(
        "  {:<6} {:>14} {:>14} {:>18} {:>18}",
        "median",
        f(median(rounds.iter().map(|r| r.rate_vs_tokio))),
        f(median(rounds.iter().map(|r| r.rate_vs_mio))),
        f(median(rounds.iter().map(|r| r.cpu_vs_tokio))),
        f(median(rounds.iter().map(|r| r.cpu_vs_mio)))
    );
    let errors: u64 = runs.iter().map(RunResult::errors).sum();
    println!("  errors in all runs: {errors}");
    for r in runs.iter().filter(|r| r.errors() > 0) {
        if let Some(e) = &r.client.first_error {
            println!("    {}: first client error: {e}", r.name());
        }
        if let Some(e) = r.server.as_ref().and_then(|s| s.first_error.as_ref()) {
            println!("    {}: first server error: {e}", r.name());
        }
    }
}

struct RoundRatios {
    rate_vs_tokio: Option<f64>,
    rate_vs_mio: Option<f64>,
    cpu_vs_tokio: Option<f64>,
    cpu_vs_mio: Option<f64>,
}

/// Runs come in rounds of three: lunanet, tokio, mio.
fn ratios(runs: &[RunResult]) -> Vec<RoundRatios> {
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

fn median(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
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

fn json_run(a: &Args, r: &RunResult) -> String {
    let c = &r.client;
    let mut o = Obj::new();
    o.str("impl", r.name());
    o.str("addr", &r.addr.to_string());
    o.str("mode", a.mode.name());
    o.int("peers", a.peers as u64);
    o.int("connected", c.connected as u64);
    o.int("size", a.size as u64);
    o.int("pipeline", a.pipeline as u64);
    if a.mode == Mode::Broadcast {
        o.num("tick_hz", 1.0 / a.tick.period.as_secs_f64());
        o.int("records_per_tick", a.tick.records as u64);
    }
    o.num("connect_s", c.connect_time.as_secs_f64());
    o.num("warmup_s", a.warmup.as_secs_f64());
    o.num("window_s", c.window.as_secs_f64());
    o.str("unit", unit(a.mode));
    o.int("msgs", c.msgs);
    o.int("msgs_total", c.msgs_total);
    o.int("bytes", c.bytes);
    o.int("bytes_total", c.bytes_total);
    o.num("msgs_per_s", r.msgs_per_s());
    o.num("mb_per_s", r.mb_per_s());
    let mut l = Obj::new();
    l.opt_int("p50", r.quantile_ns(0.5));
    l.opt_int("p99", r.quantile_ns(0.99));
    l.opt_int("p999", r.quantile_ns(0.999));
    l.opt_int("max", (!c.latency.is_empty()).then(|| c.latency.max()));
    l.opt_num("mean", (!c.latency.is_empty()).then(|| c.latency.mean()));
    o.raw("latency_ns", l.end());
    if a.mode == Mode::Broadcast {
        o.num("records_expected", c.expected_records);
        o.int("peer_ticks", c.peer_ticks);
        o.int("late_ticks", c.late_ticks);
        o.opt_int("server_ticks", r.server.as_ref().map(|s| s.ticks));
        o.opt_int("server_late_ticks", r.server.as_ref().map(|s| s.late_ticks));
    }
    let mut e = Obj::new();
    e.int("total", r.errors());
    e.int("connect", c.errors.connect);
    e.int("mismatch", c.errors.mismatch);
    e.int("closed", c.errors.closed);
    e.int("put", c.errors.io);
    e.int("server", r.server_errors());
    o.raw("errors", e.end());
    o.opt_str("first_client_error", c.first_error.as_deref());
    o.opt_str(
        "first_server_error",
        r.server.as_ref().and_then(|s| s.first_error.as_deref()),
    );
    o.int("unclosed", c.unclosed as u64);
    for (name, cpu) in [
        ("server", c.server_cpu),
        ("client", c.client_cpu),
        ("process", c.process_cpu),
    ] {
        o.opt_num(&format!("{name}_cpu_s"), cpu.map(|d| d.as_secs_f64()));
        o.opt_num(&format!("{name}_cpu_s_per_million"), r.per_million(cpu));
    }
    o.end()
}

/// A minimal JSON object writer (keys are plain identifiers).
struct Obj {
    s: String,
    first: bool,
}

impl Obj {
    fn new() -> Obj {
        Obj {
            s: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.s.push(',');
        }
        self.first = false;
        let _ = write!(self.s, "\"{k}\":");
    }

    fn raw(&mut self, k: &str, v: String) {
        self.key(k);
        self.s.push_str(&v);
    }

    fn int(&mut self, k: &str, v: u64) {
        self.raw(k, v.to_string());
    }

    fn num(&mut self, k: &str, v: f64) {
        self.raw(
            k,
            if v.is_finite() {
                format!("{v}")
            } else {
                "null".into()
            },
        );
    }

    fn str(&mut self, k: &str, v: &str) {
        let mut q = String::from("\"");
        for ch in v.chars() {
            match ch {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(q, "\\u{:04x}", c as u32);
                }
                c => q.push(c),
            }
        }
        q.push('"');
        self.raw(k, q);
    }

    fn opt_int(&mut self, k: &str, v: Option<u64>) {
        match v {
            Some(v) => self.int(k, v),
            None => self.raw(k, "null".into()),
        }
    }

    fn opt_num(&mut self, k: &str, v: Option<f64>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.raw(k, "null".into()),
        }
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.raw(k, "null".into()),
        }
    }

    fn end(mut self) -> String {
        self.s.push('}');
        self.s
    }
}

/// One line on stderr, redrawn in place.
pub struct ProgressBar {
    label: String,
    unit: &'static str,
    clock: Clock,
    last: Option<(Instant, u64)>,
    rate: f64,
    width: usize,
}

impl ProgressBar {
    pub fn new(label: &str, mode: Mode, clock: Clock) -> ProgressBar {
        ProgressBar {
            label: label.to_string(),
            unit: unit(mode),
            clock,
            last: None,
            rate: 0.0,
            width: 0,
        }
    }

    pub fn draw(&mut self, p: &Progress) {
        let now = Instant::now();
        let msgs = p.msgs_total.load(Ordering::Relaxed);
        if let Some((at, before)) = self.last {
            let dt = now.duration_since(at).as_secs_f64();
            if dt > 0.0 {
                self.rate = msgs.saturating_sub(before) as f64 / dt;
            }
        }
        self.last = Some((now, msgs));
        let elapsed =
            self.clock
                .now_ns()
                .saturating_sub(p.phase_started_ns.load(Ordering::Relaxed)) as f64
                / 1e9;
        let len = p.phase_len_ms.load(Ordering::Relaxed) as f64 / 1e3;
        let errors = p.errors.load(Ordering::Relaxed);
        let stats = format!("{} {}/s  errors {errors}", si(self.rate), self.unit);
        let line = match p.phase.load(Ordering::Relaxed) {
            client::PHASE_CONNECT => format!(
                "{}: connecting, {} connected",
                self.label,
                p.connected.load(Ordering::Relaxed)
            ),
            client::PHASE_WARMUP => {
                format!("{}: warm-up {elapsed:.1}/{len:.1} s  {stats}", self.label)
            }
            client::PHASE_MEASURE => {
                const CELLS: usize = 30;
                let done = ((elapsed / len.max(1e-9)).clamp(0.0, 1.0) * CELLS as f64) as usize;
                let mut bar = "=".repeat(done);
                if done < CELLS {
                    bar.push('>');
                    bar.push_str(&" ".repeat(CELLS - done - 1));
                }
                format!("{}: [{bar}] {elapsed:.1}/{len:.1} s  {stats}", self.label)
            }
            _ => format!("{}: closing connections", self.label),
        };
        let pad = self.width.saturating_sub(line.chars().count());
        self.width = self.width.max(line.chars().count());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        let _ = err.flush();
    }

    pub fn clear(&mut self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\r", " ".repeat(self.width));
        let _ = err.flush();
    }
}
