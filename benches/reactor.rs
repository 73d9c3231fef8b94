//! Reactor benches (criterion): the cost of a pass with idle peers, of a
//! Godot-style frame, of a tick over the ready set, and of the put/get hot path.
//!
//! Units (see `benches/common/mod.rs`): a *peer* is one `StreamPeerTcp`, i.e.
//! one socket in the reactor; a *pair* is a client connected to a `TcpServer`
//! of the same reactor plus the accepted peer, so `N` peers = `N / 2` pairs.
//! All peers of a bench live in ONE reactor.
//!
//! Groups:
//! - `poll_zero_idle/{10,1000,10000}`: `Reactor::poll(Some(ZERO))` with N
//!   connected idle peers. Target: 10 000 / 10 ≤ 1.5 (nothing scans idle peers).
//! - `godot_tick/1000`: one frame in which each of 1 000 idle peers calls
//!   `peer.poll()` (1 000 passes; divide by 1 000 for one call).
//! - `ready_tick/{10_active,10000_idle_plus_10_active}`: 10 active pairs each
//!   send one 32 B message, then `poll(Some(ZERO))` + `drain_ready` + read every
//!   ready peer until all 10 arrived; alone, then beside 10 000 idle peers.
//!   Target: ratio ≤ 1.5 (a tick costs O(active)).
//! - `hot_path/echo_64B`: one 64 B round trip through one pair of one reactor
//!   (put, poll until it arrives, get, put back, poll, get).
//! - `hot_path/put_get_no_io`: one `put_data(64 B)` + one `get_data(64 B)` that
//!   touch only user-space buffers (`coalesce_writes` queues the put; the get
//!   takes bytes a previous pass buffered): the library's bookkeeping without
//!   syscalls. Refills happen outside the timed region.
//!
//! The fixtures compared by a ratio target (all `poll_zero_idle` sizes; both
//! `ready_tick` reactors) exist together while any of them is measured, so
//! the kernel holds the same sockets and only the reactor differs.
//!
//! After the groups, the ratios of criterion's medians are printed for the
//! groups that ran in this invocation, followed by an interleaved measurement
//! of the same two ratios (the two fixtures alternated in short batches, 7
//! rounds, median and spread of the per-round ratios): on a shared 2-core
//! machine successive criterion runs drift by more than the targets' 1.5×,
//! interleaving cancels most of that drift. (Only with `--bench`, not in
//! criterion's test mode.)
//!
//! Run: `cargo bench --bench reactor` (about 40 s of measuring); one group:
//! `cargo bench --bench reactor -- poll_zero_idle`. Needs about 11 100
//! descriptors (raised to the hard limit with `rlimit`).
//!
//! **Check mode (CI)**: `LUNANET_RATIO_CHECK=1 cargo bench --bench reactor`
//! skips criterion and runs only the two interleaved ratio measurements, then
//! exits non-zero if either ratio is above `CI_RATIO_LIMIT` (3.0). The design
//! target stays 1.5 and is printed as met/MISSED; the CI limit is twice it so
//! that noise on a shared machine cannot trip it, while the failure it guards
//! against cannot pass: a pass or tick that scanned the idle peers would cost
//! O(peers), i.e. a ratio in the tens to hundreds at 10 000 / 10 peers.

#[path = "../tests/util/mod.rs"]
mod util;

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion};
use lunanet::{Config, HandleId, Reactor};

use common::{Pairs, Side};

/// Peer counts of `poll_zero_idle` (each is N / 2 pairs).
const IDLE_PEERS: [usize; 3] = [10, 1_000, 10_000];
/// Active pairs of `ready_tick` and the idle peers beside them.
const ACTIVE_PAIRS: usize = 10;
const IDLE_BESIDE: usize = 10_000;
const TICK_MSG: [u8; 32] = [0x5a; 32];

fn poll_zero_idle(c: &mut Criterion, notes: &mut Vec<String>) {
    let mut g = c.benchmark_group("poll_zero_idle");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    // One reactor per size, all built (lazily: only if the filter selects one
    // of them) before any is measured, so every size runs with the same
    // sockets open in the kernel and only the reactor differs.
    let mut fixtures: Option<Vec<(Reactor, Pairs)>> = None;
    let build = || {
        IDLE_PEERS
            .iter()
            .map(|&peers| {
                let reactor = Reactor::new().expect("reactor");
                let pairs = Pairs::new(&reactor, peers / 2);
                assert_eq!(pairs.peers(), peers);
                (reactor, pairs)
            })
            .collect::<Vec<_>>()
    };
    for (i, peers) in IDLE_PEERS.into_iter().enumerate() {
        g.bench_function(BenchmarkId::from_parameter(peers), |b| {
            let (reactor, _pairs) = &fixtures.get_or_insert_with(build)[i];
            assert_eq!(reactor.poll(Some(Duration::ZERO)).expect("poll"), 0);
            b.iter(|| black_box(reactor.poll(Some(Duration::ZERO)).expect("poll")));
        });
    }
    g.finish();
    if let Some(all) = &fixtures
        && bench_mode()
    {
        let (small, big) = (&all[0].0, &all[IDLE_PEERS.len() - 1].0);
        let time = |r: &Reactor| {
            let t = Instant::now();
            for _ in 0..2_000 {
                black_box(r.poll(Some(Duration::ZERO)).expect("poll"));
            }
            t.elapsed().as_secs_f64() * 1e9 / 2_000.0
        };
        notes.push(interleaved(
            "poll_zero_idle 10000 / 10 peers",
            || time(big),
            || time(small),
        ));
    }
}

fn godot_tick(c: &mut Criterion) {
    const PEERS: usize = 1_000;
    let mut g = c.benchmark_group("godot_tick");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let mut fixture: Option<(Reactor, Pairs)> = None;
    g.bench_function(BenchmarkId::from_parameter(PEERS), |b| {
        let (_reactor, pairs) = fixture.get_or_insert_with(|| {
            let reactor = Reactor::new().expect("reactor");
            let pairs = Pairs::new(&reactor, PEERS / 2);
            (reactor, pairs)
        });
        b.iter(|| {
            for peer in pairs.clients.iter().chain(pairs.accepted.iter()) {
                peer.poll().expect("poll");
            }
        });
    });
    drop(fixture);
    g.finish();
}

/// A reactor whose pairs `0..ACTIVE_PAIRS` send every tick, beside idle ones.
struct TickFixture {
    pairs: Pairs,
    table: Vec<Option<(HandleId, Side, usize)>>,
    ready: Vec<HandleId>,
    /// Ready-set ids visited by every tick so far.
    visited: usize,
}

impl TickFixture {
    fn new(idle_peers: usize) -> TickFixture {
        let reactor = Reactor::new().expect("reactor");
        let mut pairs = Pairs::empty(&reactor);
        pairs.connect(ACTIVE_PAIRS);
        pairs.connect(idle_peers / 2);
        pairs.settle();
        let table = pairs.id_table();
        TickFixture {
            pairs,
            table,
            ready: Vec::with_capacity(64),
            visited: 0,
        }
    }

    fn tick(&mut self) -> usize {
        common::ready_tick(
            &mut self.pairs,
            0..ACTIVE_PAIRS,
            &self.table,
            &mut self.ready,
            &TICK_MSG,
            false,
            Some(&mut self.visited),
        )
    }
}

fn ready_tick(c: &mut Criterion, notes: &mut Vec<String>) {
    let mut g = c.benchmark_group("ready_tick");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // Both reactors exist (in the same process) while either is measured.
    let mut fixtures: Option<[TickFixture; 2]> = None;
    let build = || [TickFixture::new(0), TickFixture::new(IDLE_BESIDE)];
    for (i, name) in ["10_active", "10000_idle_plus_10_active"]
        .into_iter()
        .enumerate()
    {
        g.bench_function(name, |b| {
            let fx = &mut fixtures.get_or_insert_with(build)[i];
            b.iter(|| fx.tick());
        });
    }
    g.finish();
    if let Some([alone, beside]) = &mut fixtures
        && bench_mode()
    {
        let time = |fx: &mut TickFixture| {
            let t = Instant::now();
            for _ in 0..200 {
                fx.tick();
            }
            t.elapsed().as_secs_f64() * 1e9 / 200.0
        };
        notes.push(interleaved(
            "ready_tick 10000 idle + 10 active / 10 active",
            || time(beside),
            || time(alone),
        ));
    }
}

/// Interleaved comparison, robust to a noisy machine: `ROUNDS` rounds, each
/// alternating `num` and `den` `BATCHES` times and taking each side's median;
/// reports the median, min and max of the per-round ratios.
fn interleaved(name: &str, num: impl FnMut() -> f64, den: impl FnMut() -> f64) -> String {
    interleaved_ratio(name, num, den).0
}

/// [`interleaved`], also returning the median per-round ratio.
fn interleaved_ratio(
    name: &str,
    mut num: impl FnMut() -> f64,
    mut den: impl FnMut() -> f64,
) -> (String, f64) {
    const ROUNDS: usize = 7;
    const BATCHES: usize = 11;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    num();
    den();
    let mut ratios = Vec::new();
    let (mut nums, mut dens) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (mut n, mut d) = (Vec::new(), Vec::new());
        for _ in 0..BATCHES {
            n.push(num());
            d.push(den());
        }
        let (n, d) = (median(&mut n), median(&mut d));
        nums.push(n);
        dens.push(d);
        ratios.push(n / d);
    }
    let ratio = median(&mut ratios);
    let spread = format!(
        "{ratio:.2} (min {:.2}, max {:.2} over {ROUNDS} rounds)",
        ratios[0],
        ratios[ROUNDS - 1]
    );
    let line = format!(
        "  {name:<46} {:>12.1} ns / {:>10.1} ns = {spread}",
        median(&mut nums),
        median(&mut dens)
    );
    println!("\ninterleaved:\n{line}");
    (line, ratio)
}

/// Whether this is a real measurement (`cargo bench`), not criterion's test
/// mode (`cargo test --benches`) or `--list`.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn hot_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_path");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let mut fixture: Option<(Reactor, Pairs)> = None;
    g.bench_function("echo_64B", |b| {
        let (reactor, pairs) = fixture.get_or_insert_with(|| {
            let reactor = Reactor::new().expect("reactor");
            let pairs = Pairs::new(&reactor, 1);
            (reactor, pairs)
        });
        let msg = [0xa5u8; 64];
        let mut buf = [0u8; 64];
        let (a, b_peer) = pairs.pair_mut(0);
        b.iter(|| common::round_trip(reactor, a, b_peer, &msg, &mut buf));
    });
    drop(fixture);

    // put_data queued (coalescing: no write until the next pass) + get_data
    // from bytes a pass already buffered. BATCH messages are kept in flight:
    // the receiver starts each batch with BATCH * 64 B buffered, the sender
    // queues what the receiver takes, and an untimed pass moves it across.
    const BATCH: u64 = 1024;
    const MSG: usize = 64;
    let mut fixture: Option<(Reactor, Pairs)> = None;
    g.bench_function("put_get_no_io", |b| {
        let (reactor, pairs) = fixture.get_or_insert_with(|| {
            let reactor =
                Reactor::with_config(Config::default().coalesce_writes(true)).expect("reactor");
            let mut pairs = Pairs::new(&reactor, 1);
            let (tx, rx) = pairs.pair_mut(0);
            for _ in 0..BATCH {
                tx.put_data(&[7u8; MSG]).expect("put_data");
            }
            common::wait_available(&reactor, rx, BATCH as usize * MSG);
            (reactor, pairs)
        });
        let (tx, rx) = pairs.pair_mut(0);
        let msg = [7u8; MSG];
        let mut buf = [0u8; MSG];
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let t = Instant::now();
                for _ in 0..n {
                    tx.put_data(black_box(&msg)).expect("put_data");
                    rx.get_data(black_box(&mut buf)).expect("get_data");
                }
                timed += t.elapsed();
                left -= n;
                common::wait_available(reactor, rx, BATCH as usize * MSG);
            }
            timed
        });
    });
    drop(fixture);
    g.finish();
}

// ---------------------------------------------------------------------------
// Ratios of criterion's medians, for the groups that ran in this invocation.
// ---------------------------------------------------------------------------

/// Where criterion writes its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `<target dir of this executable>/criterion`
/// (set explicitly on `Criterion` so both sides agree).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // <target>/<profile>/deps/<bench executable>
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median point estimate (ns) of `group/bench`, if written since `since`.
fn median_ns(dir: &Path, bench: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(bench).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json = std::fs::read_to_string(&path).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":X,...},...}
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

fn print_ratios(dir: &Path, since: SystemTime) {
    let mut lines = Vec::new();
    let mut ratio = |name: &str, num: &str, den: &str, target: Option<f64>| {
        let (Some(n), Some(d)) = (median_ns(dir, num, since), median_ns(dir, den, since)) else {
            return;
        };
        let r = n / d;
        let verdict = match target {
            Some(t) if r <= t => format!("  (target <= {t}: met)"),
            Some(t) => format!("  (target <= {t}: MISSED)"),
            None => String::new(),
        };
        lines.push(format!(
            "  {name:<46} {n:>12.1} ns / {d:>10.1} ns = {r:>7.2}{verdict}"
        ));
    };
    ratio(
        "poll_zero_idle 10000 / 10 peers",
        "poll_zero_idle/10000",
        "poll_zero_idle/10",
        Some(1.5),
    );
    ratio(
        "poll_zero_idle 1000 / 10 peers",
        "poll_zero_idle/1000",
        "poll_zero_idle/10",
        None,
    );
    ratio(
        "ready_tick 10000 idle + 10 active / 10 active",
        "ready_tick/10000_idle_plus_10_active",
        "ready_tick/10_active",
        Some(1.5),
    );
    if let Some(t) = median_ns(dir, "godot_tick/1000", since) {
        lines.push(format!(
            "  godot_tick/1000: {:.1} ns per peer.poll()",
            t / 1000.0
        ));
    }
    if !lines.is_empty() {
        println!("\nRatios of criterion medians (this run):");
        for line in lines {
            println!("{line}");
        }
    }
}

/// The design target of both ratios (a pass, a tick cost O(active)).
const RATIO_TARGET: f64 = 1.5;
/// What CI fails on: twice the target, out of noise's reach (see the module
/// docs); an O(idle peers) regression gives tens to hundreds.
const CI_RATIO_LIMIT: f64 = 3.0;

/// Check mode: the two interleaved ratios, each fixture set built, measured
/// and dropped in turn (both at once would need more descriptors than the
/// usual hard limit of 20 000).
fn ratio_check() -> std::process::ExitCode {
    let mut ratios = Vec::new();
    let mut counted_failure = None;
    {
        let build = |peers: usize| {
            let reactor = Reactor::new().expect("reactor");
            let pairs = Pairs::new(&reactor, peers / 2);
            assert_eq!(reactor.poll(Some(Duration::ZERO)).expect("poll"), 0);
            (reactor, pairs)
        };
        let (small, _small_pairs) = build(IDLE_PEERS[0]);
        let (big, _big_pairs) = build(IDLE_PEERS[IDLE_PEERS.len() - 1]);
        let time = |r: &Reactor| {
            let t = Instant::now();
            for _ in 0..2_000 {
                black_box(r.poll(Some(Duration::ZERO)).expect("poll"));
            }
            t.elapsed().as_secs_f64() * 1e9 / 2_000.0
        };
        let (line, ratio) = interleaved_ratio(
            "poll_zero_idle 10000 / 10 peers",
            || time(&big),
            || time(&small),
        );
        ratios.push((line, ratio));
    }
    {
        let mut alone = TickFixture::new(0);
        let mut beside = TickFixture::new(IDLE_BESIDE);
        let time = |fx: &mut TickFixture| {
            let t = Instant::now();
            for _ in 0..200 {
                assert_eq!(fx.tick(), ACTIVE_PAIRS, "a tick moved every message");
            }
            t.elapsed().as_secs_f64() * 1e9 / 200.0
        };
        let (line, ratio) = interleaved_ratio(
            "ready_tick 10000 idle + 10 active / 10 active",
            || time(&mut beside),
            || time(&mut alone),
        );
        ratios.push((line, ratio));
        // Counted, not timed: the ids the ready set named over the same
        // number of ticks. Idle peers must never appear, so beside 10 000 of
        // them a tick visits what it visits alone (a little slack for the
        // passes a message happens to need).
        let (alone_ids, beside_ids) = (alone.visited, beside.visited);
        let limit = alone_ids + alone_ids / 2 + 100;
        println!(
            "\nready-set ids visited over the same ticks: {beside_ids} beside {IDLE_BESIDE} idle \
             peers, {alone_ids} alone (CI fails above {limit})"
        );
        if beside_ids > limit {
            counted_failure = Some(format!(
                "ready_tick visited {beside_ids} ids beside {IDLE_BESIDE} idle peers, \
                 {alone_ids} alone: idle peers reach the ready set"
            ));
        }
    }
    println!("\nratio check (target <= {RATIO_TARGET}, CI fails above {CI_RATIO_LIMIT}):");
    let mut failed = false;
    for (line, ratio) in &ratios {
        let verdict = if *ratio > CI_RATIO_LIMIT {
            failed = true;
            "FAILED (above the CI limit)"
        } else if *ratio > RATIO_TARGET {
            "ok for CI, design target MISSED"
        } else {
            "ok, target met"
        };
        println!("{line}: {verdict}");
    }
    if let Some(why) = &counted_failure {
        println!("ready-set count: FAILED: {why}");
        failed = true;
    }
    if failed {
        println!("ratio check: FAILED");
        std::process::ExitCode::FAILURE
    } else {
        println!("ratio check: passed");
        std::process::ExitCode::SUCCESS
    }
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("LUNANET_RATIO_CHECK").is_some() {
        return ratio_check();
    }
    let started = SystemTime::now();
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    let mut notes = Vec::new();
    poll_zero_idle(&mut c, &mut notes);
    godot_tick(&mut c);
    ready_tick(&mut c, &mut notes);
    hot_path(&mut c);
    c.final_summary();
    print_ratios(&dir, started);
    if !notes.is_empty() {
        println!("\nInterleaved ratios (same fixtures, alternated; per-round medians):");
        for line in &notes {
            println!("{line}");
        }
    }
    std::process::ExitCode::SUCCESS
}
