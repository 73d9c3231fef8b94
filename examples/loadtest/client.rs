//! The load generator: client `StreamPeerTcp`s on ONE lunanet `Reactor` per
//! load thread, driven by `reactor.poll` + `drain_ready`. It is the same
//! whatever server is under test, so ratios between runs compare servers.
//!
//! [`run`] is the life of one load thread, in steps:
//!
//! 1. [`Generator::connect_all`]: start every connect (at most 15 s);
//! 2. [`Generator::drive`]: connect, warm up (`--warmup`, not counted) and
//!    measure (`--seconds`); with `--client-threads N` the threads agree on
//!    one window through [`WindowSync`], so their counts add up;
//! 3. [`Generator::close_all`]: close every peer gracefully and wait (at most
//!    3 s) for the server to close its side, so a server that reports a reset
//!    at the end really saw one;
//! 4. [`Generator::into_report`]: the figures; [`merge`] adds the threads'.
//!
//! Every received byte is checked against what was sent (see `proto`); a
//! mismatch, a refused connect, an unexpected close or a failed `put` is
//! counted as an error, the peer concerned is dropped, and the run goes on.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use lunanet::{Config, HandleId, Reactor, SocketError, Status, StreamPeerTcp};

use crate::clock::Clock;
use crate::proto::{self, RECORD};
use crate::{Mode, TickConfig, cpu};

const CONNECT_DEADLINE: Duration = Duration::from_secs(15);
const CLOSE_DEADLINE: Duration = Duration::from_secs(3);
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Read and send scratch sizes (the reactor's default read buffer limit).
const SCRATCH: usize = 256 * 1024;
/// Latency histogram range: 1 ns .. 1 hour, 3 significant digits.
const HIST_MAX_NS: u64 = 3_600_000_000_000;

pub struct ClientConfig {
    pub addr: SocketAddr,
    pub mode: Mode,
    /// Peers of this load thread.
    pub peers: usize,
    pub size: usize,
    pub pipeline: usize,
    pub tick: TickConfig,
    pub warmup: Duration,
    pub seconds: Duration,
    pub clock: Clock,
    /// This thread reads the server's and the process's CPU time at the
    /// window's start and end (one thread does, for everybody).
    pub measures_cpu: bool,
    /// The embedded server's threads.
    pub server_tids: Vec<u32>,
    pub progress: Arc<Progress>,
    pub sync: Arc<WindowSync>,
}

/// What the progress bar reads; every load thread adds its own counts.
#[derive(Default)]
pub struct Progress {
    pub phase: AtomicU8,
    /// When the current phase started, on the clock's scale.
    pub phase_started_ns: AtomicU64,
    pub phase_len_ms: AtomicU64,
    pub connected: AtomicU64,
    /// Messages (records in broadcast) completed since the first connect.
    pub msgs_total: AtomicU64,
    pub errors: AtomicU64,
}

pub const PHASE_CONNECT: u8 = 0;
pub const PHASE_WARMUP: u8 = 1;
pub const PHASE_MEASURE: u8 = 2;
pub const PHASE_CLOSE: u8 = 3;

/// How the load threads agree on one measurement window: the last thread to
/// finish connecting sets its start (after the warm-up); every thread
/// measures from then for `--seconds`.
pub struct WindowSync {
    threads: usize,
    done_connecting: AtomicUsize,
    /// On the clock's scale; 0 while unknown.
    measure_start_ns: AtomicU64,
}

impl WindowSync {
    pub fn new(threads: usize) -> WindowSync {
        WindowSync {
            threads,
            done_connecting: AtomicUsize::new(0),
            measure_start_ns: AtomicU64::new(0),
        }
    }

    fn finished_connecting(&self, clock: &Clock, warmup: Duration) {
        if self.done_connecting.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            let start = clock.ns(Instant::now() + warmup).max(1);
            self.measure_start_ns.store(start, Ordering::Release);
        }
    }

    fn measure_start(&self, clock: &Clock) -> Option<Instant> {
        match self.measure_start_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(clock.instant(ns)),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Errors {
    /// Connects refused, timed out or failed.
    pub connect: u64,
    /// Received bytes that differ from what was sent (or were never sent).
    pub mismatch: u64,
    /// Connections closed or reset by the server before the end.
    pub closed: u64,
    /// `put_*` refused for another reason than a full queue.
    pub io: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.mismatch + self.closed + self.io
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.mismatch += o.mismatch;
        self.closed += o.closed;
        self.io += o.io;
    }
}

pub struct ClientReport {
    pub connected: usize,
    pub connect_time: Duration,
    /// Length of the measurement window actually run.
    pub window: Duration,
    /// Messages (broadcast: records) completed in the window.
    pub msgs: u64,
    /// Payload bytes received and verified in the window (one direction).
    pub bytes: u64,
    /// Messages / bytes completed over the whole run, warm-up included.
    pub msgs_total: u64,
    pub bytes_total: u64,
    /// Ping-pong/bulk: send to full echo. Broadcast: tick scheduled to record
    /// received. Nanoseconds.
    pub latency: Histogram<u64>,
    pub errors: Errors,
    pub first_error: Option<String>,
    /// Broadcast: (peer, tick) pairs completed in the window, and how many of
    /// them were late (last record more than a tick period after schedule).
    pub peer_ticks: u64,
    pub late_ticks: u64,
    /// Broadcast: records the window should have delivered.
    pub expected_records: f64,
    pub server_cpu: Option<Duration>,
    pub client_cpu: Option<Duration>,
    pub process_cpu: Option<Duration>,
    /// Connections still not closed by the server at the end.
    pub unclosed: usize,
}

/// The reports of every load thread as one: counts and histograms add up,
/// times are the longest, the CPU of the server and the process comes from
/// the thread that measured it.
pub fn merge(reports: Vec<ClientReport>) -> Option<ClientReport> {
    let mut it = reports.into_iter();
    let mut all = it.next()?;
    for r in it {
        all.connected += r.connected;
        all.connect_time = all.connect_time.max(r.connect_time);
        all.window = all.window.max(r.window);
        all.msgs += r.msgs;
        all.bytes += r.bytes;
        all.msgs_total += r.msgs_total;
        all.bytes_total += r.bytes_total;
        // Same bounds on every thread, so adding cannot fail.
        let _ = all.latency.add(&r.latency);
        all.errors.add(&r.errors);
        all.first_error = all.first_error.or(r.first_error);
        all.peer_ticks += r.peer_ticks;
        all.late_ticks += r.late_ticks;
        all.expected_records += r.expected_records;
        all.server_cpu = all.server_cpu.or(r.server_cpu);
        all.process_cpu = all.process_cpu.or(r.process_cpu);
        all.client_cpu = match (all.client_cpu, r.client_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        all.unclosed += r.unclosed;
    }
    Some(all)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    Dead,
}

struct Peer {
    sock: StreamPeerTcp,
    num: u32,
    state: State,
    /// Next message to send, and bytes of it already queued.
    send_seq: u64,
    send_pos: usize,
    /// Message being received, and bytes of it already verified.
    recv_seq: u64,
    recv_pos: usize,
    /// When each message in flight was queued (oldest first).
    sent_at: VecDeque<Instant>,
    /// Broadcast: a record split across reads, and the next one expected.
    carry: [u8; RECORD],
    carry_len: usize,
    expect: Option<(u64, u32)>,
}

struct Stats {
    in_window: bool,
    msgs: u64,
    bytes: u64,
    msgs_total: u64,
    bytes_total: u64,
    latency: Histogram<u64>,
    errors: Errors,
    first_error: Option<String>,
    peer_ticks: u64,
    late_ticks: u64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            in_window: false,
            msgs: 0,
            bytes: 0,
            msgs_total: 0,
            bytes_total: 0,
            latency: Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("valid histogram bounds"),
            errors: Errors::default(),
            first_error: None,
            peer_ticks: 0,
            late_ticks: 0,
        }
    }

    fn complete(&mut self, bytes: usize, latency_ns: u64) {
        self.msgs_total += 1;
        self.bytes_total += bytes as u64;
        if self.in_window {
            self.msgs += 1;
            self.bytes += bytes as u64;
            self.latency.saturating_record(latency_ns.max(1));
        }
    }

    fn note(&mut self, what: String) {
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// CPU readings at the start of the window.
struct CpuMarks {
    server: Option<Duration>,
    client: Option<Duration>,
    process: Option<Duration>,
}

/// The measured window and the CPU spent in it.
#[derive(Default)]
struct Window {
    len: Duration,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
    process_cpu: Option<Duration>,
}

/// One load thread's life; see the module docs for the steps.
pub fn run(cfg: ClientConfig) -> ClientReport {
    let mut g = Generator::new(&cfg);
    let reactor = match Reactor::with_config(Config::default().connect_timeout(CONNECT_DEADLINE)) {
        Ok(r) => r,
        Err(e) => {
            g.stats.errors.connect = cfg.peers as u64;
            g.stats.note(format!("client reactor: {e}"));
            // The other threads must not wait for this one.
            cfg.sync.finished_connecting(&cfg.clock, cfg.warmup);
            return g.into_report(Window::default());
        }
    };
    g.connect_all(&reactor);
    let window = g.drive(&reactor);
    g.close_all(&reactor);
    g.into_report(window)
}

struct Generator<'a> {
    cfg: &'a ClientConfig,
    peers: Vec<Peer>,
    /// Peer number by `HandleId::index()` (u32::MAX: none).
    // TODO(merge): PeerMap — switch to `lunanet::PeerMap<u32>` once the core
    // helper's PeerMap lands (same O(1) index lookup, without the stale-id
    // check done by hand in `lookup`).
    slot_map: Vec<u32>,
    rbuf: Vec<u8>,
    sbuf: Vec<u8>,
    exp: Vec<u8>,
    stats: Stats,
    /// Peers still connecting, and peers connected so far.
    connecting: usize,
    connected: usize,
    connect_time: Duration,
    /// Counts already added to the shared progress.
    published: (u64, u64, u64),
    my_tid: Option<u32>,
    /// Connections the server had not closed 3 s after ours closed.
    unclosed: usize,
}

impl<'a> Generator<'a> {
    fn new(cfg: &'a ClientConfig) -> Generator<'a> {
        Generator {
            cfg,
            peers: Vec::with_capacity(cfg.peers),
            slot_map: Vec::new(),
            rbuf: vec![0u8; SCRATCH],
            sbuf: vec![0u8; SCRATCH],
            exp: vec![0u8; SCRATCH],
            stats: Stats::new(),
            connecting: 0,
            connected: 0,
            connect_time: Duration::ZERO,
            published: (0, 0, 0),
            my_tid: cpu::current_tid(),
            unclosed: 0,
        }
    }

    /// Step 1: start every connect.
    fn connect_all(&mut self, reactor: &Reactor) {
        self.set_phase(PHASE_CONNECT, CONNECT_DEADLINE);
        for num in 0..self.cfg.peers {
            self.connect(reactor, num as u32);
        }
    }

    /// Step 2: connect, warm up, measure. Returns the measured window (empty
    /// when no peer connected or the reactor failed).
    fn drive(&mut self, reactor: &Reactor) -> Window {
        let cfg = self.cfg;
        let start = Instant::now();
        let connect_end = start + CONNECT_DEADLINE;
        let ok = self.run_until(reactor, Some(connect_end), |g, now| {
            g.connecting == 0 || now >= connect_end
        });
        self.give_up_connecting();
        self.connect_time = start.elapsed();
        cfg.sync.finished_connecting(&cfg.clock, cfg.warmup);
        if !ok {
            return Window::default();
        }
        if self.connected == 0 {
            // Nobody to load: skip to the report (the errors say why).
            self.stats.note("no peer connected".into());
            return Window::default();
        }

        self.set_phase(PHASE_WARMUP, cfg.warmup);
        let ok = self.run_until(reactor, None, |_, now| {
            cfg.sync.measure_start(&cfg.clock).is_some_and(|t| now >= t)
        });
        if !ok {
            return Window::default();
        }

        self.set_phase(PHASE_MEASURE, cfg.seconds);
        let window_start = Instant::now();
        let window_end = window_start + cfg.seconds;
        let marks = self.cpu_marks();
        self.stats.in_window = true;
        self.run_until(reactor, Some(window_end), |_, now| now >= window_end);
        self.stats.in_window = false;
        let len = window_start.elapsed();
        let now = self.cpu_marks();
        Window {
            len,
            server_cpu: cpu::delta(marks.server, now.server),
            client_cpu: cpu::delta(marks.client, now.client),
            process_cpu: cpu::delta(marks.process, now.process),
        }
    }

    /// Polls and serves the ready set until `done` says so; false when the
    /// reactor failed (noted as an error).
    fn run_until(
        &mut self,
        reactor: &Reactor,
        deadline: Option<Instant>,
        mut done: impl FnMut(&Self, Instant) -> bool,
    ) -> bool {
        let mut ready: Vec<HandleId> = Vec::with_capacity(1024);
        loop {
            let now = Instant::now();
            if done(self, now) {
                return true;
            }
            let wait =
                deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(now).min(MAX_WAIT));
            if let Err(e) = reactor.poll(Some(wait)) {
                self.stats.errors.io += 1;
                self.stats.note(format!("client reactor poll: {e}"));
                return false;
            }
            reactor.drain_ready(&mut ready);
            for id in ready.drain(..) {
                if let Some(num) = self.lookup(id) {
                    self.visit(num);
                }
            }
            self.publish_progress();
        }
    }

    /// Step 3: close every peer; wait for the server to close its side.
    fn close_all(&mut self, reactor: &Reactor) {
        self.set_phase(PHASE_CLOSE, CLOSE_DEADLINE);
        for p in &mut self.peers {
            p.sock.disconnect_from_host();
        }
        let deadline = Instant::now() + CLOSE_DEADLINE;
        while !reactor.is_empty() && Instant::now() < deadline {
            if reactor.poll(Some(MAX_WAIT)).is_err() {
                break;
            }
        }
        self.unclosed = reactor.len();
    }

    /// Step 4: the figures of this thread.
    fn into_report(self, w: Window) -> ClientReport {
        let cfg = self.cfg;
        let unclosed = self.unclosed;
        let s = self.stats;
        ClientReport {
            connected: self.connected,
            connect_time: self.connect_time,
            window: w.len,
            msgs: s.msgs,
            bytes: s.bytes,
            msgs_total: s.msgs_total,
            bytes_total: s.bytes_total,
            latency: s.latency,
            errors: s.errors,
            first_error: s.first_error,
            peer_ticks: s.peer_ticks,
            late_ticks: s.late_ticks,
            expected_records: if cfg.mode == Mode::Broadcast {
                self.connected as f64
                    * cfg.tick.records as f64
                    * (w.len.as_secs_f64() / cfg.tick.period.as_secs_f64())
            } else {
                0.0
            },
            server_cpu: w.server_cpu,
            client_cpu: w.client_cpu,
            process_cpu: w.process_cpu,
            unclosed,
        }
    }

    fn cpu_marks(&self) -> CpuMarks {
        let measures = self.cfg.measures_cpu;
        CpuMarks {
            server: if measures {
                cpu::threads_cpu(&self.cfg.server_tids)
            } else {
                None
            },
            client: self.my_tid.and_then(cpu::thread_cpu),
            process: if measures { cpu::process_cpu() } else { None },
        }
    }

    fn set_phase(&self, phase: u8, len: Duration) {
        let p = &self.cfg.progress;
        p.phase_started_ns
            .store(self.cfg.clock.now_ns(), Ordering::Relaxed);
        p.phase_len_ms
            .store(len.as_millis() as u64, Ordering::Relaxed);
        p.phase.store(phase, Ordering::Relaxed);
    }

    /// Adds what changed since the last call to the shared progress.
    fn publish_progress(&mut self) {
        let p = &self.cfg.progress;
        let now = (
            self.stats.msgs_total,
            self.stats.errors.total(),
            self.connected as u64,
        );
        let (m, e, c) = self.published;
        p.msgs_total.fetch_add(now.0 - m, Ordering::Relaxed);
        p.errors.fetch_add(now.1 - e, Ordering::Relaxed);
        p.connected.fetch_add(now.2 - c, Ordering::Relaxed);
        self.published = now;
    }

    fn connect(&mut self, reactor: &Reactor, num: u32) {
        let mut sock = StreamPeerTcp::new(reactor);
        let mut state = State::Connecting;
        match sock.connect_to_host(self.cfg.addr.ip(), self.cfg.addr.port()) {
            Ok(()) => {
                self.connecting += 1;
                if let Some(id) = sock.id() {
                    if self.slot_map.len() <= id.index() {
                        self.slot_map.resize(id.index() + 1, u32::MAX);
                    }
                    self.slot_map[id.index()] = num;
                }
            }
            Err(e) => {
                self.stats.errors.connect += 1;
                self.stats
                    .note(format!("connect_to_host {}: {e}", self.cfg.addr));
                state = State::Dead;
            }
        }
        self.peers.push(Peer {
            sock,
            num,
            state,
            send_seq: 0,
            send_pos: 0,
            recv_seq: 0,
            recv_pos: 0,
            sent_at: VecDeque::with_capacity(self.cfg.pipeline.min(1024) + 1),
            carry: [0; RECORD],
            carry_len: 0,
            expect: None,
        });
    }

    /// Peers still connecting at the deadline count as connect errors.
    fn give_up_connecting(&mut self) {
        for i in 0..self.peers.len() {
            if self.peers[i].state == State::Connecting {
                self.stats.errors.connect += 1;
                self.stats.note("connect did not complete in 15 s".into());
                self.kill(i);
            }
        }
        self.connecting = 0;
    }

    fn lookup(&self, id: HandleId) -> Option<usize> {
        let num = *self.slot_map.get(id.index())? as usize;
        let p = self.peers.get(num)?;
        (p.sock.id() == Some(id)).then_some(num)
    }

    fn kill(&mut self, num: usize) {
        let p = &mut self.peers[num];
        if let Some(id) = p.sock.id()
            && let Some(slot) = self.slot_map.get_mut(id.index())
        {
            *slot = u32::MAX;
        }
        p.sock.disconnect_from_host();
        p.state = State::Dead;
    }

    /// Serves one peer of the ready set.
    fn visit(&mut self, num: usize) {
        let cfg = self.cfg;
        let p = &mut self.peers[num];
        match p.state {
            State::Dead => return,
            State::Open => {}
            State::Connecting => match p.sock.status() {
                Status::Connecting => return,
                Status::Connected => {
                    p.state = State::Open;
                    self.connecting -= 1;
                    self.connected += 1;
                }
                Status::Error | Status::None => {
                    self.connecting -= 1;
                    self.stats.errors.connect += 1;
                    let what = format!(
                        "connect to {}: {:?} ({:?})",
                        cfg.addr,
                        p.sock.error(),
                        p.sock.error_kind()
                    );
                    self.stats.note(what);
                    self.kill(num);
                    return;
                }
            },
        }

        let checked = match cfg.mode {
            Mode::PingPong | Mode::Bulk => {
                recv_echo(p, &mut self.rbuf, &mut self.exp, cfg.size, &mut self.stats)
            }
            Mode::Broadcast => recv_records(p, &mut self.rbuf, cfg, &mut self.stats),
        };
        if let Err(what) = checked {
            self.stats.errors.mismatch += 1;
            self.stats.note(what);
            self.kill(num);
            return;
        }
        if cfg.mode != Mode::Broadcast
            && let Err(e) = pump_send(p, &mut self.sbuf, cfg.size, cfg.pipeline)
            && p.sock.status() == Status::Connected
        {
            self.stats.errors.io += 1;
            self.stats.note(format!("put_partial_data: {e}"));
            self.kill(num);
            return;
        }
        match p.sock.status() {
            Status::Connected => {}
            status => {
                self.stats.errors.closed += 1;
                let what = match (status, p.sock.error()) {
                    (Status::Error, Some(e)) => format!(
                        "peer {}: connection failed: {e} ({:?})",
                        p.num,
                        p.sock.error_kind()
                    ),
                    _ => format!("peer {}: the server closed the connection", p.num),
                };
                self.stats.note(what);
                self.kill(num);
            }
        }
    }
}

/// Queues as much as the pipeline allows: the rest of a partly queued
/// message, then new messages until `pipeline` are in flight.
fn pump_send(
    p: &mut Peer,
    sbuf: &mut [u8],
    size: usize,
    pipeline: usize,
) -> Result<(), SocketError> {
    let now = Instant::now();
    loop {
        let started = p.send_seq + u64::from(p.send_pos > 0);
        let in_flight = (started - p.recv_seq) as usize;
        let new_msgs = pipeline.saturating_sub(in_flight);
        let rest = if p.send_pos > 0 { size - p.send_pos } else { 0 };
        let want = rest.saturating_add(new_msgs.saturating_mul(size));
        if want == 0 {
            return Ok(());
        }
        let chunk = want.min(sbuf.len());
        proto::fill_stream(p.num, p.send_seq, p.send_pos, size, &mut sbuf[..chunk]);
        let n = p.sock.put_partial_data(&sbuf[..chunk])?;
        let mut left = n;
        while left > 0 {
            if p.send_pos == 0 {
                p.sent_at.push_back(now);
            }
            let take = (size - p.send_pos).min(left);
            p.send_pos += take;
            left -= take;
            if p.send_pos == size {
                p.send_pos = 0;
                p.send_seq += 1;
            }
        }
        if n < chunk || chunk == want {
            // The write queue is full (the peer comes back in the ready set
            // once it flushed), or everything allowed is queued.
            return Ok(());
        }
    }
}

/// Takes and verifies the echoed bytes; completes messages.
fn recv_echo(
    p: &mut Peer,
    rbuf: &mut [u8],
    exp: &mut [u8],
    size: usize,
    stats: &mut Stats,
) -> Result<(), String> {
    loop {
        let n = match p.sock.get_partial_data(rbuf) {
            Ok(n) => n,
            Err(_) => return Ok(()), // closed or failed: the status says which
        };
        if n == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut off = 0;
        while off < n {
            let sent = match p.recv_seq.cmp(&p.send_seq) {
                std::cmp::Ordering::Less => size,
                std::cmp::Ordering::Equal => p.send_pos,
                std::cmp::Ordering::Greater => 0,
            };
            let take = (size - p.recv_pos).min(n - off);
            if p.recv_pos + take > sent {
                return Err(format!(
                    "peer {}: received byte {} of message {} which was never sent",
                    p.num,
                    sent.max(p.recv_pos),
                    p.recv_seq
                ));
            }
            let got = &rbuf[off..off + take];
            let want = &mut exp[..take];
            proto::fill(p.num, p.recv_seq, p.recv_pos, want);
            if got != &want[..] {
                let i = got
                    .iter()
                    .zip(want.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return Err(format!(
                    "peer {}: message {} byte {}: got {:#04x}, expected {:#04x}",
                    p.num,
                    p.recv_seq,
                    p.recv_pos + i,
                    got[i],
                    want[i]
                ));
            }
            p.recv_pos += take;
            off += take;
            if p.recv_pos == size {
                p.recv_pos = 0;
                p.recv_seq += 1;
                let latency = p
                    .sent_at
                    .pop_front()
                    .map_or(0, |t| now.saturating_duration_since(t).as_nanos() as u64);
                stats.complete(size, latency);
            }
        }
        if n < rbuf.len() {
            return Ok(());
        }
    }
}

/// Takes and verifies broadcast records (in order, K per tick, no gap).
fn recv_records(
    p: &mut Peer,
    rbuf: &mut [u8],
    cfg: &ClientConfig,
    stats: &mut Stats,
) -> Result<(), String> {
    loop {
        let n = match p.sock.get_partial_data(rbuf) {
            Ok(n) => n,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let now_ns = cfg.clock.now_ns();
        let mut data = &rbuf[..n];
        if p.carry_len > 0 {
            let take = (RECORD - p.carry_len).min(data.len());
            p.carry[p.carry_len..p.carry_len + take].copy_from_slice(&data[..take]);
            p.carry_len += take;
            data = &data[take..];
            if p.carry_len == RECORD {
                p.carry_len = 0;
                let record = p.carry;
                check_record(p, &record, now_ns, cfg, stats)?;
            }
        }
        while data.len() >= RECORD {
            check_record(p, &data[..RECORD], now_ns, cfg, stats)?;
            data = &data[RECORD..];
        }
        if !data.is_empty() {
            p.carry[..data.len()].copy_from_slice(data);
            p.carry_len = data.len();
        }
        if n < rbuf.len() {
            return Ok(());
        }
    }
}

fn check_record(
    p: &mut Peer,
    bytes: &[u8],
    now_ns: u64,
    cfg: &ClientConfig,
    stats: &mut Stats,
) -> Result<(), String> {
    let r = proto::decode_record(bytes).map_err(|e| format!("peer {}: {e}", p.num))?;
    if r.count as usize != cfg.tick.records {
        return Err(format!(
            "peer {}: the server sends {} records per tick, --records says {}",
            p.num, r.count, cfg.tick.records
        ));
    }
    let expected = p.expect.unwrap_or((r.tick, 0));
    if (r.tick, r.index) != expected {
        return Err(format!(
            "peer {}: got record {} of tick {}, expected record {} of tick {}",
            p.num, r.index, r.tick, expected.1, expected.0
        ));
    }
    p.expect = Some(if r.index + 1 == r.count {
        (r.tick + 1, 0)
    } else {
        (r.tick, r.index + 1)
    });
    let delay = now_ns.saturating_sub(r.scheduled_ns);
    stats.complete(RECORD, delay);
    if r.index + 1 == r.count && stats.in_window {
        stats.peer_ticks += 1;
        if delay > cfg.tick.period.as_nanos() as u64 {
            stats.late_ticks += 1;
        }
    }
    Ok(())
}
