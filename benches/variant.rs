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
//! first.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
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

    let mut g = c.benchmark_group("snapshot_100_players");
    g.bench_function("variant", |b| {
        b.iter(|| {
            buf.clear();
            variant::encode(black_box(&snap), GodotVersion::V4, &mut buf).expect("encode");
            black_box(variant::decode(&buf, GodotVersion::V4, &limits).expect("decode"))
        })
    });
    #[cfg(feature = "serde")]
    g.bench_function("variant_serde", |b| {
        b.iter(|| {
            buf.clear();
            let v = variant::to_variant(black_box(&players)).expect("to_variant");
            variant::encode(&v, GodotVersion::V4, &mut buf).expect("encode");
            let (back, _) = variant::decode(&buf, GodotVersion::V4, &limits).expect("decode");
            black_box(variant::from_variant::<Vec<Player>>(back).expect("from_variant"))
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&players)).expect("json");
            black_box(serde_json::from_slice::<Vec<Player>>(&buf).expect("json decode"))
        })
    });
    g.bench_function("bincode", |b| {
        b.iter(|| {
            buf.clear();
            bincode::serialize_into(&mut buf, black_box(&players)).expect("bincode");
            black_box(bincode::deserialize::<Vec<Player>>(&buf).expect("bincode decode"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
