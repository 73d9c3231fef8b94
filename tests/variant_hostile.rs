//! Hostile input for the Godot Variant decoder, each case on a thread with a
//! 256 KiB stack and under a counting global allocator (this binary's own):
//!
//! - 100 000 nested arrays (and dictionaries): a clear `max_depth` error with
//!   the default limits; with the limit lifted, decoded and dropped without
//!   recursion;
//! - an element count of 2^31 (and 2^31 - 1) in 8 bytes, a 4 GiB string
//!   length, in every container and packed type: a clear error, nothing
//!   reserved;
//! - every truncation of every test vector and of an encoding of every type:
//!   a clear error, no panic;
//! - `get_var` frames announcing 4 GiB: refused before allocation;
//! - decoded values of every shape (flat and deep containers, container
//!   keys, long and inline strings, boxes, packed arrays): dropping them
//!   frees every byte they allocated.
//!
//! No single allocation may exceed 1 MiB while decoding, and decoding a
//! scalar or a string of up to 24 bytes (bare, through `StreamPeer::get_var`
//! or `PacketPeerStream::get_var`) allocates nothing at all; the bench's
//! 100-player snapshot takes two allocations per player.

use lunanet::variant::{self, GodotVersion, Limits, Variant, VariantError, Vector2};
use lunanet::{PacketPeerStream, SocketError, StreamPeer, StreamPeerBuffer, varray, vdict};

#[path = "util/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, counted, live_after};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1 << 20;

/// Runs `f` on a thread with a 256 KiB stack.
fn small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the case panicked (or overflowed its stack)");
}

/// Decodes under the counting allocator; asserts no allocation over 1 MiB.
fn decode_counted(
    bytes: &[u8],
    version: GodotVersion,
    limits: &Limits,
) -> Result<(Variant, usize), VariantError> {
    let (r, _, largest) = counted(|| variant::decode(bytes, version, limits));
    assert!(largest <= MIB, "an allocation of {largest} bytes");
    r
}

fn nested(open: &[u8], n: usize, close: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(open.len() * n + close.len());
    for _ in 0..n {
        b.extend_from_slice(open);
    }
    b.extend_from_slice(close);
    b
}

const ARRAY_OF_ONE: [u8; 8] = [0x1c, 0, 0, 0, 1, 0, 0, 0];
/// Dictionary of one entry whose key is nil, then the value follows.
const DICT_OF_ONE: [u8; 12] = [0x1b, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];

#[test]
fn hundred_thousand_nested_arrays() {
    small_stack(|| {
        for (open, name) in [
            (&ARRAY_OF_ONE[..], "arrays"),
            (&DICT_OF_ONE[..], "dictionaries"),
        ] {
            let bytes = nested(open, 100_000, &[0, 0, 0, 0]);
            let err = decode_counted(&bytes, GodotVersion::V4, &Limits::default()).unwrap_err();
            assert!(
                matches!(
                    err,
                    VariantError::LimitExceeded {
                        limit: "max_depth",
                        max: 256,
                        ..
                    }
                ),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("max_depth"), "{err}");
            // With the depth limit lifted, the explicit stack decodes all
            // 100 000 levels and the value drops without recursion.
            let unlimited = Limits {
                max_depth: usize::MAX,
                ..Limits::default()
            };
            let (v, used) = variant::decode(&bytes, GodotVersion::V4, &unlimited).expect(name);
            assert_eq!(used, bytes.len());
            // Re-encoding refuses over Godot's 1024 levels, without recursion either.
            assert!(matches!(
                variant::encode(&v, GodotVersion::V4, &mut Vec::new()),
                Err(VariantError::Unsupported { .. })
            ));
            drop(v);
        }
    });
}

#[test]
fn huge_counts_and_lengths_are_refused_before_allocation() {
    small_stack(|| {
        let le = |x: u32| x.to_le_bytes();
        let mut cases: Vec<(GodotVersion, Vec<u8>)> = Vec::new();
        for (version, ids) in [
            // Array, Dictionary, String, PackedByte/Int32/Float32/String/Vector2/Vector3/Color, NodePath
            (
                GodotVersion::V4,
                [28u32, 27, 4, 29, 30, 32, 34, 35, 36, 37, 22, 31, 33, 38, 21],
            ),
            (
                GodotVersion::V3,
                [19u32, 18, 4, 20, 21, 22, 23, 24, 25, 26, 15, 19, 18, 4, 4],
            ),
        ] {
            for id in ids {
                for count in [1u32 << 31, (1u32 << 31) - 1, u32::MAX, 1 << 30, 1 << 20] {
                    let mut b = le(id).to_vec();
                    b.extend_from_slice(&le(count));
                    b.extend_from_slice(&le(count)); // a second count (NodePath subnames)
                    b.extend_from_slice(&[0; 4]);
                    cases.push((version, b));
                }
            }
        }
        for (version, bytes) in &cases {
            match decode_counted(bytes, *version, &Limits::default()) {
                Err(e) => assert!(!e.to_string().is_empty()),
                // 2^31 as an Array/Dictionary count is 0 once Godot's legacy
                // "shared" bit is masked off; -1 strings in a PackedStringArray
                // decode as empty, as Godot; a NodePath of 0 names (count
                // 2^31 is the format bit) and 0 subnames is empty.
                Ok((v, _)) => assert!(
                    v == varray![]
                        || v == vdict! {}
                        || v == Variant::PackedStringArray(vec![])
                        || v == Variant::from(variant::NodePath::default()),
                    "{bytes:02x?} decoded as {v:?}"
                ),
            }
        }
        // The named cases, with the exact errors.
        let e = decode_counted(
            &[4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            GodotVersion::V4,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            VariantError::Invalid {
                what: "negative count",
                offset: 4
            },
            "4 GiB string"
        );
        let e = decode_counted(
            &[0x1c, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f],
            GodotVersion::V4,
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                VariantError::Truncated {
                    what: "Array elements",
                    offset: 8,
                    ..
                }
            ),
            "{e}"
        );
        let e = decode_counted(
            &[0x1d, 0, 0, 0, 0, 0, 0, 0x80],
            GodotVersion::V4,
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                VariantError::Invalid {
                    what: "negative count",
                    ..
                }
            ),
            "{e}"
        );
    });
}

fn sample_encodings() -> Vec<(GodotVersion, Vec<u8>)> {
    let v2 = Vector2::new(1.5, -2.0);
    let values = [
        Variant::Nil,
        Variant::Int(1 << 40),
        Variant::Float(0.1),
        Variant::from("hello"),
        Variant::from(v2),
        Variant::from(variant::NodePath::parse("/a/b:c")),
        Variant::Object(0x1234),
        vdict! { "a" => 1, 2 => varray![1, "x", 2.5], "v" => v2 },
        Variant::from(vec![1i32, 2, 3]),
        Variant::from(vec!["ab".to_owned(), String::new()]),
        Variant::from(vec![v2, v2]),
        Variant::from(vec![variant::Color::new(1.0, 0.0, 0.0, 1.0)]),
    ];
    let mut out = Vec::new();
    for version in [GodotVersion::V3, GodotVersion::V4] {
        for v in &values {
            let mut b = Vec::new();
            variant::encode(v, version, &mut b).expect("encodes");
            out.push((version, b));
        }
    }
    // And every file of the fuzz corpus, in both versions.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/variant/decode");
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        out.push((GodotVersion::V3, bytes.clone()));
        out.push((GodotVersion::V4, bytes));
    }
    out
}

#[test]
fn every_truncation_of_every_vector_is_a_clear_error() {
    small_stack(|| {
        let mut checked = 0;
        for (version, bytes) in sample_encodings() {
            let full = variant::decode(&bytes, version, &Limits::default());
            for cut in 0..bytes.len() {
                let short = &bytes[..cut];
                match decode_counted(short, version, &Limits::default()) {
                    Err(e) => assert!(!e.to_string().is_empty()),
                    Ok((v, used)) => {
                        // Only possible when the full input had bytes past its
                        // value, or a PackedByteArray without its final padding.
                        let (fv, fused) = full
                            .clone()
                            .expect("a prefix decodes only if the whole does");
                        assert!(
                            used <= cut
                                && (fused <= cut || matches!(v, Variant::PackedByteArray(_))),
                            "{short:02x?}"
                        );
                        let _ = fv;
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
    });
}

#[test]
fn get_var_refuses_a_4_gib_frame_before_allocating() {
    small_stack(|| {
        for big_endian in [false, true] {
            let mut buf = StreamPeerBuffer::from_vec(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
            buf.set_big_endian(big_endian);
            let (r, _, largest) = counted(|| buf.get_var());
            assert_eq!(r, Err(SocketError::OutOfBufferMemory));
            assert_eq!(buf.position(), 0, "nothing consumed");
            assert!(largest < 1024, "{largest}");
        }
        // Just over the default 8 MiB limit, announced in 4 bytes.
        let mut buf = StreamPeerBuffer::from_vec(((8u32 << 20) + 1).to_le_bytes().to_vec());
        let (r, count, _) = counted(|| buf.get_var());
        assert_eq!((r, count), (Err(SocketError::OutOfBufferMemory), 0));
    });
}

#[test]
fn decoding_a_scalar_allocates_nothing() {
    small_stack(|| {
        // The counter sees this thread's allocations (so the zeros below can fail).
        let (v, count, largest) = counted(|| Vec::<u8>::with_capacity(1000));
        assert_eq!((count, largest), (1, 1000));
        drop(v);
        let scalars = [
            Variant::Nil,
            Variant::Bool(true),
            Variant::Int(7),
            Variant::Int(i64::MAX),
            Variant::Float(0.1),
            Variant::from(Vector2::new(1.0, 2.0)),
            Variant::from(variant::Color::new(1.0, 1.0, 1.0, 1.0)),
            Variant::Object(3),
            Variant::Rid(4),
            Variant::from(variant::Rect2::default()),
            Variant::from(variant::Vector3i::default()),
            // Strings of up to 24 bytes are stored inline (`CompactString`).
            Variant::from("player_42"),
            Variant::from("a string of 24 bytes...."),
        ];
        for v in &scalars {
            let mut bytes = Vec::new();
            variant::encode(v, GodotVersion::V4, &mut bytes).expect("encode");
            let (r, count, _) =
                counted(|| variant::decode(&bytes, GodotVersion::V4, &Limits::default()));
            assert_eq!(r.expect("decode").0, *v);
            assert_eq!(count, 0, "decode of {v:?} allocated");

            let mut buf = StreamPeerBuffer::new();
            buf.put_var(v).expect("put_var");
            buf.seek(0).expect("seek");
            let (r, count, _) = counted(|| buf.get_var());
            assert_eq!(r.as_ref(), Ok(v));
            assert_eq!(count, 0, "StreamPeer::get_var of {v:?} allocated");
        }
        // PacketPeerStream: after the first packet has sized its buffers.
        let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
        for v in scalars.iter().chain(&scalars) {
            pps.put_var(v).expect("put_var");
        }
        pps.get_mut().seek(0).expect("seek");
        assert_eq!(pps.get_var().as_ref(), Ok(&scalars[0]));
        for v in scalars.iter().chain(&scalars).skip(1) {
            let (r, count, _) = counted(|| pps.get_var());
            assert_eq!(r.as_ref(), Ok(v));
            assert_eq!(count, 0, "PacketPeerStream::get_var of {v:?} allocated");
        }
        // And put_var reuses the output buffer once it has grown.
        let (r, count, _) = counted(|| pps.put_var(&Variant::Int(1)));
        r.expect("put_var");
        assert_eq!(count, 0, "PacketPeerStream::put_var allocated");
    });
}

/// The bench's state snapshot (`benches/variant.rs`): 100 players, each a
/// Dictionary of `id`, `name`, `pos`, `hp`, `inventory`.
fn snapshot() -> Variant {
    Variant::Array(
        (0..100)
            .map(|i: i64| {
                vdict! {
                    "id" => 1000 + i,
                    "name" => format!("player_{i}"),
                    "pos" => Vector2::new(i as f32 * 1.5, -(i as f32) * 0.25),
                    "hp" => 100.0 - i as f64 * 0.5,
                    "inventory" => (0..8).map(|k| (i * 10 + k) as i32).collect::<Vec<i32>>(),
                }
            })
            .collect(),
    )
}

#[test]
fn decoding_the_player_snapshot_allocates_per_player() {
    small_stack(|| {
        let snap = snapshot();
        let mut bytes = Vec::new();
        variant::encode(&snap, GodotVersion::V4, &mut bytes).expect("encode");
        let (r, count, _) =
            counted(|| variant::decode(&bytes, GodotVersion::V4, &Limits::default()));
        assert_eq!(r.expect("decode").0, snap);
        // Per player: its entries and its PackedInt32Array (keys, name and
        // scalars are inline); per decode: the outer array, the decoder's
        // stack, and its remembered key shapes (one list of levels, one list
        // per level with dictionaries).
        eprintln!("snapshot decode: {count} allocations for 100 players");
        assert!(count <= 2 * 100 + 4, "{count} allocations");
    });
}

#[test]
fn remembered_key_shapes_stay_bounded_in_deep_input() {
    // `{"k": {"k": ... nil}}`, 10 000 levels with the depth limit lifted:
    // one allocation per level (its entry), plus the decoder's stack growing
    // by doubling; the remembered key shapes stop at 32 levels instead of
    // adding a list per level.
    small_stack(|| {
        const LEVELS: usize = 10_000;
        let open = [
            27, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, b'k', 0, 0, 0,
        ];
        let bytes = nested(&open, LEVELS, &[0, 0, 0, 0]);
        let unlimited = Limits {
            max_depth: usize::MAX,
            ..Limits::default()
        };
        let (r, count, _) = counted(|| variant::decode(&bytes, GodotVersion::V4, &unlimited));
        let (v, used) = r.expect("decode");
        assert_eq!(used, bytes.len());
        assert!(
            count < LEVELS + 100,
            "{count} allocations for {LEVELS} levels"
        );
        drop(v);
    });
}

#[test]
fn decoded_values_free_everything_when_dropped() {
    // Drops skip the glue of values that own no memory (`mem::forget`):
    // everything that does own memory must still be freed, at every level
    // and in both drop paths (flat children emptied by their parent, deep
    // ones iteratively). Strings past 24 bytes, boxed math types and packed
    // arrays sit next to inline strings and scalars.
    small_stack(|| {
        let long = "a string longer than twenty-four bytes";
        let leafy = vdict! {
            "s" => "short",
            long => long,
            "basis" => variant::Basis::default(),
            "path" => variant::NodePath::parse("a/b:c"),
            "ints" => vec![1, 2, 3],
            "strs" => vec![long.to_owned()],
            "empty" => varray![],
        };
        let deep = varray![
            varray![varray![leafy.clone(), long]],
            vdict! { long => varray![long] }
        ];
        let mut values = vec![
            leafy.clone(),
            deep.clone(),
            varray![leafy.clone(), leafy.clone()],
        ];
        let mut keyed = variant::Dictionary::new();
        keyed.insert(leafy.clone(), deep.clone());
        keyed.insert(long, leafy);
        values.push(Variant::Dictionary(keyed));
        for v in values {
            let mut bytes = Vec::new();
            variant::encode(&v, GodotVersion::V4, &mut bytes).expect("encode");
            let (same, left) = live_after(|| {
                let (back, _) =
                    variant::decode(&bytes, GodotVersion::V4, &Limits::default()).expect("decode");
                back == v
            });
            assert!(same, "{v:?}");
            assert_eq!(left, 0, "bytes left allocated after dropping {v:?}");
        }
    });
}
