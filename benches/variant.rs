//! Godot Variant codec speed against serde_json and bincode, same run, same
//! data: a 100-player state snapshot, each player a Dictionary of
//! `id: int, name: String, pos: Vector2, hp: float, inventory:
//! PackedInt32Array` (for serde: a `Vec<Player>` of the same fields).
//!
//! Each benchmark is one encode plus one decode of the whole snapshot:
//!
//! - `variant`: `variant::encode` into a reused buffer + `variant::decode`
//!   (the `Variant` tree built once, as a server keeping its state in
//!   Variants would);
//! - `variant_serde`: `to_variant(&players)` + encode + decode +
//!   `from_variant` (Rust structs in, Rust structs out; needs `--features serde`);
//! - `serde_json`: `to_writer` into a reused buffer + `from_slice`;
//! - `bincode`: `serialize_into` a reused buffer + `deserialize`.
//!
//! Run: `cargo bench --bench variant --features serde` (the serde-bridge
//! line is left out without the feature). The encoded sizes are printed
//! first. After the group come the targets as ratios (issue 11: `variant`
//! at least 3x faster than `serde_json`, at most 2x `bincode`'s time), twice:
//! from criterion's medians of this run, then from an interleaved
//! measurement (the four workloads alternated in short batches, 7 rounds;
//! median of the per-round medians), which a shared, noisy machine drifts
//! much less. (Only with `--bench`, not in criterion's test mode.)

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use criterion::Criterion;
use lunanet::variant::{self, Dictionary, GodotVersion, Limits, Variant, Vector2};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Pos {
    x: f32,
    y: f32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Player {
    id: i64,
    name: String,
    pos: Pos,
    hp: f64,
    inventory: Vec<i32>,
}

fn players() -> Vec<Player> {
    (0..100)
        .map(|i| Player {
            id: 1000 + i,
            name: format!("player_{i}"),
            pos: Pos {
                x: i as f32 * 1.5,
                y: -(i as f32) * 0.25,
            },
            hp: 100.0 - i as f64 * 0.5,
            inventory: (0..8).map(|k| (i * 10 + k) as i32).collect(),
        })
        .collect()
}

fn snapshot(players: &[Player]) -> Variant {
    Variant::Array(
        players
            .iter()
            .map(|p| {
                let mut d = Dictionary::with_capacity(5);
                d.insert("id", p.id);
                d.insert("name", p.name.as_str());
                d.insert("pos", Vector2::new(p.pos.x, p.pos.y));
                d.insert("hp", p.hp);
                d.insert("inventory", p.inventory.clone());
                Variant::Dictionary(d)
            })
            .collect(),
    )
}

fn bench(c: &mut Criterion) {
    let players = players();
    let snap = snapshot(&players);
    let limits = Limits::default();

    let mut buf = Vec::new();
    variant::encode(&snap, GodotVersion::V4, &mut buf).expect("encode");
    assert_eq!(
        variant::decode(&buf, GodotVersion::V4, &limits)
            .expect("decode")
            .0,
        snap
    );
    let json = serde_json::to_vec(&players).expect("json");
    let bin = bincode::serialize(&players).expect("bincode");
    println!(
        "encoded sizes: variant {} B, serde_json {} B, bincode {} B",
        buf.len(),
        json.len(),
        bin.len()
    );

    let mut g = c.benchmark_group(GROUP);
    let [
        mut variant_run,
        mut _variant_serde_run,
        mut json_run,
        mut bincode_run,
    ] = workloads(&players, &snap, &limits);
    g.bench_function("variant", |b| b.iter(&mut variant_run));
    #[cfg(feature = "serde")]
    g.bench_function("variant_serde", |b| b.iter(&mut _variant_serde_run));
    g.bench_function("serde_json", |b| b.iter(&mut json_run));
    g.bench_function("bincode", |b| b.iter(&mut bincode_run));
    g.finish();
}

const GROUP: &str = "snapshot_100_players";

/// One encode + decode each, with its own reused output buffer: `variant`,
/// `variant_serde` (a no-op without the feature), `serde_json`, `bincode`.
fn workloads<'a>(
    players: &'a [Player],
    snap: &'a Variant,
    limits: &'a Limits,
) -> [Box<dyn FnMut() + 'a>; 4] {
    let mut buf = Vec::new();
    let variant = move || {
        buf.clear();
        variant::encode(black_box(snap), GodotVersion::V4, &mut buf).expect("encode");
        black_box(variant::decode(&buf, GodotVersion::V4, limits).expect("decode"));
    };
    #[cfg(feature = "serde")]
    let mut buf = Vec::new();
    let variant_serde = move || {
        #[cfg(feature = "serde")]
        {
            buf.clear();
            let v = variant::to_variant(black_box(players)).expect("to_variant");
            variant::encode(&v, GodotVersion::V4, &mut buf).expect("encode");
            let (back, _) = variant::decode(&buf, GodotVersion::V4, limits).expect("decode");
            black_box(variant::from_variant::<Vec<Player>>(back).expect("from_variant"));
        }
    };
    let mut buf = Vec::new();
    let json = move || {
        buf.clear();
        serde_json::to_writer(&mut buf, black_box(players)).expect("json");
        black_box(serde_json::from_slice::<Vec<Player>>(&buf).expect("json decode"));
    };
    let mut buf = Vec::new();
    let bin = move || {
        buf.clear();
        bincode::serialize_into(&mut buf, black_box(players)).expect("bincode");
        black_box(bincode::deserialize::<Vec<Player>>(&buf).expect("bincode decode"));
    };
    [
        Box::new(variant),
        Box::new(variant_serde),
        Box::new(json),
        Box::new(bin),
    ]
}

/// The two targets as lines: `json / variant` (speed-up, target >= 3) and
/// `variant / bincode` (slow-down, target <= 2), from medians in ns.
fn target_lines(variant: f64, json: f64, bincode: f64) -> [String; 2] {
    let speedup = json / variant;
    let slowdown = variant / bincode;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    [
        format!(
            "  serde_json / variant: {json:>10.0} ns / {variant:>8.0} ns = {speedup:>5.2}x faster  (target >= 3: {})",
            verdict(speedup >= 3.0)
        ),
        format!(
            "  variant / bincode:    {variant:>10.0} ns / {bincode:>8.0} ns = {slowdown:>5.2}x slower  (target <= 2: {})",
            verdict(slowdown <= 2.0)
        ),
    ]
}

/// Where criterion writes its results (set explicitly so both sides agree):
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else next to the
/// target directory of this executable.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Criterion's median (ns) of `GROUP/bench`, if written since `since`.
fn median_ns(dir: &Path, bench: &str, since: SystemTime) -> Option<f64> {
    let path = dir
        .join(GROUP)
        .join(bench)
        .join("new")
        .join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let json = std::fs::read_to_string(&path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    value[..value.find([',', '}'])?].trim().parse().ok()
}

/// The workloads alternated in batches of `BATCH` runs, `ROUNDS` rounds of
/// `PER_ROUND` batches each: per round the median batch time of each, then
/// the median over rounds (ns per run) and the per-round ratios' spread.
fn interleaved(runs: &mut [Box<dyn FnMut() + '_>; 4]) -> ([f64; 4], [(f64, f64); 2]) {
    const ROUNDS: usize = 7;
    const PER_ROUND: usize = 11;
    const BATCH: u32 = 20;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut per_round: [Vec<f64>; 4] = Default::default();
    for _ in 0..ROUNDS {
        let mut times: [Vec<f64>; 4] = Default::default();
        for _ in 0..PER_ROUND {
            for (run, t) in runs.iter_mut().zip(&mut times) {
                let start = Instant::now();
                for _ in 0..BATCH {
                    run();
                }
                t.push(start.elapsed().as_nanos() as f64 / f64::from(BATCH));
            }
        }
        for (t, r) in times.iter_mut().zip(&mut per_round) {
            r.push(median(t));
        }
    }
    let spread = |num: usize, den: usize| {
        let ratios = per_round[num]
            .iter()
            .zip(&per_round[den])
            .map(|(n, d)| n / d);
        ratios.fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(r), hi.max(r)))
    };
    let spreads = [spread(2, 0), spread(0, 3)];
    let mut medians = [0.0; 4];
    for (m, r) in medians.iter_mut().zip(&mut per_round) {
        *m = median(r);
    }
    (medians, spreads)
}

fn main() {
    let started = SystemTime::now();
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let medians = ["variant", "serde_json", "bincode"].map(|b| median_ns(&dir, b, started));
    if let [Some(v), Some(j), Some(b)] = medians {
        println!("\nTargets, from criterion's medians (encode + decode, 100 players):");
        for line in target_lines(v, j, b) {
            println!("{line}");
        }
    }
    let players = players();
    let snap = snapshot(&players);
    let limits = Limits::default();
    let mut runs = workloads(&players, &snap, &limits);
    let ([v, vs, j, b], [(j_lo, j_hi), (b_lo, b_hi)]) = interleaved(&mut runs);
    println!("\nInterleaved (7 rounds of alternated batches; medians, ns per encode + decode):");
    println!("  variant {v:.0}, variant_serde {vs:.0}, serde_json {j:.0}, bincode {b:.0}");
    let [speedup, slowdown] = target_lines(v, j, b);
    println!("{speedup}  per round {j_lo:.2}..{j_hi:.2}");
    println!("{slowdown}  per round {b_lo:.2}..{b_hi:.2}");
}
