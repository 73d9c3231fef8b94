//! Heap check (no criterion): a counting global allocator around
//! `std::alloc::System` measures
//!
//! 1. heap allocations per echoed message in steady state, through one pair,
//!    and through 100 pairs served from the ready set (`drain_ready`);
//! 2. heap bytes live per connected idle peer at 10 000 peers (5 000 pairs),
//!    when the peers never sent anything and when each exchanged one message
//!    and then stayed idle for more than 2 s (the reactor releases empty
//!    buffers in an idle sweep about 1 s after a peer stops; the reactor is
//!    polled while waiting).
//!
//! Units: a *peer* is one `StreamPeerTcp` (one socket in the reactor); a
//! *pair* is a client and the peer a `TcpServer` of the same reactor accepted
//! for it. An *echoed message* is one 64 B round trip: the client puts it, the
//! accepted peer gets it and puts it back, the client gets it.
//!
//! "Heap per peer" is every byte the process heap gained since just before the
//! peers were created, divided by the number of peers: the reactor's slab,
//! timers, ready set and buffers, and the application's `Vec`s of
//! `StreamPeerTcp` handles (shown separately). Kernel socket memory is not
//! heap and is not counted.
//!
//! Exits non-zero if a steady-state echo allocates (target: 0 per message) or
//! an idle peer costs more than 1 024 B, so it can serve as a check.
//!
//! Run: `cargo bench --bench alloc` (about 15 s). Without `--bench` (e.g.
//! `cargo test --benches`) it runs a shorter smoke version.
//! `LUNANET_ALLOC_IDLE_PEERS=N` changes the idle peer count (even, default
//! 10 000; the fd hard limit bounds it).

#[path = "../tests/util/mod.rs"]
mod util;

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lunanet::{Reactor, StreamPeerTcp};

use common::Pairs;

#[path = "../tests/util/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, Totals};

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

const MSG: [u8; 64] = [0xa5; 64];
const HEAP_PER_IDLE_PEER_MAX: f64 = 1024.0;

struct Sizes {
    warmup: usize,
    messages: usize,
    idle_peers: usize,
}

/// Failed checks, reported at the end.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    fn check(&mut self, ok: bool, what: String) {
        println!("  check: {what}: {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            self.failures.push(what);
        }
    }
}

fn report_echo(what: &str, d: Totals, messages: usize, elapsed: Duration, v: &mut Verdict) {
    let heap_calls = d.allocs + d.reallocs;
    let per_msg = heap_calls as f64 / messages as f64;
    println!("{what}");
    println!(
        "  {messages} echoed 64 B messages in {:.2} s ({:.0} round trips/s)",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  allocations {} + reallocations {} = {heap_calls} ({per_msg:.6} per echoed message), \
         deallocations {}, live bytes change {:+}",
        d.allocs, d.reallocs, d.deallocs, d.live
    );
    v.check(
        heap_calls == 0,
        format!("{what}: heap allocations per echoed message = {per_msg} (target 0)"),
    );
}

/// 1 pair: warm up, then count over `messages` round trips.
fn echo_one_pair(s: &Sizes, v: &mut Verdict) {
    let reactor = Reactor::new().expect("reactor");
    let mut pairs = Pairs::new(&reactor, 1);
    let (a, b) = pairs.pair_mut(0);
    let mut buf = [0u8; 64];
    for _ in 0..s.warmup {
        common::round_trip(&reactor, a, b, &MSG, &mut buf);
    }
    let before = Totals::now();
    let t = Instant::now();
    for _ in 0..s.messages {
        common::round_trip(&reactor, a, b, &MSG, &mut buf);
    }
    let elapsed = t.elapsed();
    let d = Totals::now().since(before);
    report_echo(
        "echo, 1 pair (put, poll, get, put back, poll, get)",
        d,
        s.messages,
        elapsed,
        v,
    );
}

/// 100 pairs: every tick each client puts one message, the ready set is
/// drained and every ready peer is served (accepted peers echo, clients read)
/// until all 100 echoes are back.
fn echo_ready_set(s: &Sizes, v: &mut Verdict) {
    const PAIRS: usize = 100;
    let reactor = Reactor::new().expect("reactor");
    let mut pairs = Pairs::new(&reactor, PAIRS);
    let table = pairs.id_table();
    let mut ready = Vec::with_capacity(4 * PAIRS);
    let tick = |pairs: &mut Pairs, ready: &mut Vec<_>| {
        common::ready_tick(pairs, 0..PAIRS, &table, ready, &MSG, true, None);
    };
    for _ in 0..s.warmup.div_ceil(PAIRS) {
        tick(&mut pairs, &mut ready);
    }
    let ticks = s.messages.div_ceil(PAIRS);
    let before = Totals::now();
    let t = Instant::now();
    for _ in 0..ticks {
        tick(&mut pairs, &mut ready);
    }
    let elapsed = t.elapsed();
    let d = Totals::now().since(before);
    report_echo(
        "echo, 100 pairs through the ready set (poll, drain_ready, serve each ready peer)",
        d,
        ticks * PAIRS,
        elapsed,
        v,
    );
}

/// Polls the reactor (as an idle server loop would) for `wait`.
fn idle_for(reactor: &Reactor, wait: Duration) {
    let end = Instant::now() + wait;
    let mut ready = Vec::new();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        reactor
            .poll(Some((end - now).min(Duration::from_millis(50))))
            .expect("poll");
        reactor.drain_ready(&mut ready);
        ready.clear();
    }
}

fn idle_memory(s: &Sizes, v: &mut Verdict) {
    let peers = s.idle_peers;
    let pairs_n = peers / 2;
    if let Err(e) = common::raise_nofile(peers) {
        v.check(false, format!("idle memory at {peers} peers: {e}"));
        return;
    }
    println!(
        "heap per connected idle peer, {peers} peers ({pairs_n} pairs) in one reactor \
         (size_of::<StreamPeerTcp>() = {} B)",
        std::mem::size_of::<StreamPeerTcp>()
    );
    let reactor = Reactor::new().expect("reactor");
    let mut pairs = Pairs::empty(&reactor);
    let base = Totals::now();
    pairs.reserve_exact(pairs_n);

    let report = |label: &str, pairs: &Pairs, checked: bool, v: &mut Verdict| {
        let live = Totals::now().since(base).live;
        let per_peer = live as f64 / peers as f64;
        let handles = pairs.handle_bytes();
        let lib = (live - handles as i64) as f64 / peers as f64;
        println!(
            "  {label:<58} {per_peer:>7.1} B/peer ({:>7.1} B/pair; library {lib:.1} + handles {:.1}); \
             buffers held: {} B",
            2.0 * per_peer,
            handles as f64 / peers as f64,
            reactor.buffered_capacity()
        );
        if checked {
            v.check(
                per_peer <= HEAP_PER_IDLE_PEER_MAX,
                format!(
                    "{label}: heap per idle peer = {per_peer:.1} B (target <= {HEAP_PER_IDLE_PEER_MAX} B)"
                ),
            );
        }
    };

    let t = Instant::now();
    pairs.connect(pairs_n);
    pairs.settle();
    println!(
        "  ({peers} peers connected in {:.2} s)",
        t.elapsed().as_secs_f64()
    );
    report("never sent anything, just connected", &pairs, true, v);
    idle_for(&reactor, Duration::from_millis(2500));
    report("never sent anything, then idle 2.5 s", &pairs, true, v);

    // Every pair exchanges one 64 B message (served from the ready set).
    {
        let table = pairs.id_table();
        let mut ready = Vec::with_capacity(peers);
        common::ready_tick(&mut pairs, 0..pairs_n, &table, &mut ready, &MSG, true, None);
    }
    pairs.settle();
    report(
        "exchanged one message, just now (buffers still held)",
        &pairs,
        false,
        v,
    );
    idle_for(&reactor, Duration::from_millis(2500));
    report("exchanged one message, then idle 2.5 s", &pairs, true, v);
    let t = Instant::now();
    drop(pairs);
    drop(reactor);
    println!(
        "  (teardown {:.2} s; live bytes change after teardown {:+})",
        t.elapsed().as_secs_f64(),
        Totals::now().since(base).live
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`, plus any filter: run only if "alloc" is
    // selected (or nothing is).
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "alloc".contains(f.as_str())) {
        return ExitCode::SUCCESS;
    }
    let full = args.iter().any(|a| a == "--bench");
    let idle_peers = std::env::var("LUNANET_ALLOC_IDLE_PEERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|n| n & !1)
        .unwrap_or(if full { 10_000 } else { 1_000 });
    let sizes = if full {
        Sizes {
            warmup: 10_000,
            messages: 100_000,
            idle_peers,
        }
    } else {
        Sizes {
            warmup: 1_000,
            messages: 5_000,
            idle_peers,
        }
    };
    println!(
        "lunanet heap check ({} mode): counting allocator around System\n",
        if full { "bench" } else { "smoke" }
    );
    let mut v = Verdict::default();
    echo_one_pair(&sizes, &mut v);
    println!();
    echo_ready_set(&sizes, &mut v);
    println!();
    idle_memory(&sizes, &mut v);
    println!();
    if v.failures.is_empty() {
        println!("heap check: all targets met");
        ExitCode::SUCCESS
    } else {
        println!("heap check: {} target(s) MISSED:", v.failures.len());
        for f in &v.failures {
            println!("  - {f}");
        }
        ExitCode::FAILURE
    }
}
