//! Every vector of the reference (`godot-variant.md` §6): decode, then
//! re-encode byte-identically.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s
        .split_whitespace()
        .flat_map(|w| {
            if w.starts_with('"') && w.ends_with('"') && w.len() >= 2 {
                w[1..w.len() - 1]
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
            } else {
                vec![w.to_owned()]
            }
        })
        .collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Decodes `bytes` as `version`, expects `want`, using all bytes, and checks
/// that encoding `want` gives `bytes` back.
fn round_trip(version: GodotVersion, bytes: &[u8], want: &Variant) {
    let (got, used) = decode(bytes, version, &Limits::default())
        .unwrap_or_else(|e| panic!("decode {want:?} ({version:?}): {e}"));
    assert_eq!(&got, want, "{version:?}");
    assert_eq!(used, bytes.len(), "{want:?} {version:?}");
    let mut out = Vec::new();
    encode(want, version, &mut out).unwrap_or_else(|e| panic!("encode {want:?}: {e}"));
    assert_eq!(out, bytes, "re-encode of {want:?} ({version:?})");
}

fn both(bytes: &str, want: Variant) {
    let b = hex(bytes);
    round_trip(GodotVersion::V3, &b, &want);
    round_trip(GodotVersion::V4, &b, &want);
}

const BIG: i64 = 0xf123_4567_89ab_cdef_u64 as i64;

#[test]
fn godot_test_marshalls_vectors() {
    // tests/core/io/test_marshalls.h (Godot 4 master)
    let v4 = GodotVersion::V4;
    round_trip(v4, &hex("00 00 00 00"), &Variant::Nil);
    round_trip(
        v4,
        &hex("02 00 00 00 78 56 34 12"),
        &Variant::Int(0x1234_5678),
    );
    assert_eq!(BIG as u64, 0xf123_4567_89ab_cdef);
    round_trip(
        v4,
        &hex("02 00 01 00 ef cd ab 89 67 45 23 f1"),
        &Variant::Int(BIG),
    );
    round_trip(
        v4,
        &hex("03 00 00 00 00 00 20 3e"),
        &Variant::Float(0.15625),
    );
    round_trip(
        v4,
        &hex("03 00 01 00 55 55 55 55 55 55 d5 3f"),
        &Variant::Float(0.333_333_333_333_333_3),
    );
    let e = decode(&[0], v4, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, VariantError::Truncated { offset: 0, .. }),
        "{e}"
    );
    let e = decode(&hex("ff 00 00 00"), v4, &Limits::default()).unwrap_err();
    assert_eq!(
        e,
        VariantError::UnknownType {
            type_id: 255,
            offset: 0
        }
    );
}

/// Typed containers (4.3+ arrays, 4.4+ dictionaries) decode; lunanet encodes
/// them untyped (what 4.0-4.2 can read), so the re-encoding is the untyped
/// form: the same bytes without the type block and with the flags cleared.
#[test]
fn typed_containers_decode_and_reencode_untyped() {
    let v4 = GodotVersion::V4;
    let cases = [
        (
            "1c 00 01 00 02 00 00 00 01 00 00 00 02 00 01 00 ef cd ab 89 67 45 23 f1",
            varray![BIG],
            "1c 00 00 00 01 00 00 00 02 00 01 00 ef cd ab 89 67 45 23 f1",
        ),
        (
            "1b 00 05 00 02 00 00 00 02 00 00 00 01 00 00 00 02 00 01 00 ef cd ab 89 67 45 23 f1 02 00 01 00 ef cd ab 89 67 45 23 f1",
            vdict! { BIG => BIG },
            "1b 00 00 00 01 00 00 00 02 00 01 00 ef cd ab 89 67 45 23 f1 02 00 01 00 ef cd ab 89 67 45 23 f1",
        ),
        (
            "1c 00 01 00 02 00 00 00 01 00 00 00 02 00 00 00 01 00 00 00",
            varray![1],
            "1c 00 00 00 01 00 00 00 02 00 00 00 01 00 00 00",
        ),
        (
            "1b 00 05 00 04 00 00 00 02 00 00 00 01 00 00 00 04 00 00 00 01 00 00 00 61 00 00 00 02 00 00 00 01 00 00 00",
            vdict! { "a" => 1 },
            "1b 00 00 00 01 00 00 00 04 00 00 00 01 00 00 00 61 00 00 00 02 00 00 00 01 00 00 00",
        ),
        (
            // Array[Node] (class-name kind 2) with one object id.
            "1c 00 02 00 11 00 00 00 \"EncodedObjectAsID\" 00 00 00 01 00 00 00 18 00 01 00 34 12 00 00 00 00 00 00",
            varray![Variant::Object(0x1234)],
            "1c 00 00 00 01 00 00 00 18 00 01 00 34 12 00 00 00 00 00 00",
        ),
    ];
    for (typed, want, untyped) in cases {
        let typed = hex(typed);
        let (got, used) = decode(&typed, v4, &Limits::default()).expect("typed decodes");
        assert_eq!((&got, used), (&want, typed.len()));
        round_trip(v4, &hex(untyped), &want);
    }
    // A builtin element type id out of range is invalid data.
    let bad = hex("1c 00 01 00 27 00 00 00 00 00 00 00");
    assert!(matches!(
        decode(&bad, v4, &Limits::default()),
        Err(VariantError::Invalid { .. })
    ));
}

#[test]
fn other_known_vectors() {
    round_trip(
        GodotVersion::V4,
        &hex("17 00 00 00 0d 00 00 00 00 00 00 00"),
        &Variant::Rid(13),
    );
    both(
        "04 00 00 00 0a 00 00 00 62 61 6e 61 6e 61 42 6c 6f 78 00 00",
        Variant::from("bananaBlox"),
    );
    // godot#44999: 3.2.3 NodePath; the expected bytes, then with garbage padding.
    let path = NodePath {
        names: vec!["Path2D".into(), "PathFollow2D".into(), "Sprite".into()],
        subnames: vec!["position".into(), "x".into()],
        absolute: false,
    };
    let bytes = "0f 00 00 00 03 00 00 80 02 00 00 00 00 00 00 00 06 00 00 00 \"Path2D\" 00 00 0c 00 00 00 \"PathFollow2D\" 06 00 00 00 \"Sprite\" 00 00 08 00 00 00 \"position\" 01 00 00 00 \"x\" 00 00 00";
    round_trip(GodotVersion::V3, &hex(bytes), &Variant::from(path.clone()));
    let garbage = hex(&bytes
        .replace("00 00 0c", "de ad 0c")
        .replace("\"x\" 00 00 00", "\"x\" 41 42 43"));
    let (got, used) = decode(&garbage, GodotVersion::V3, &Limits::default()).expect("garbage pad");
    assert_eq!((got, used), (Variant::from(path), garbage.len()));
}

#[test]
fn derived_vectors_per_version() {
    let pairs: Vec<(&str, &str, Variant)> = vec![
        ("12 00 00 00", "1b 00 00 00", vdict! { "a" => 1 }),
        ("13 00 00 00", "1c 00 00 00", varray![1, "x", 2.5]),
        ("14 00 00 00", "1d 00 00 00", Variant::from(vec![1u8, 2, 3])),
        (
            "17 00 00 00",
            "22 00 00 00",
            Variant::from(vec!["ab".to_owned(), String::new()]),
        ),
        (
            "0f 00 00 00",
            "16 00 00 00",
            Variant::from(NodePath::parse("/a/b:c")),
        ),
        (
            "0e 00 00 00",
            "14 00 00 00",
            Variant::from(Color::new(1.0, 0.0, 0.0, 1.0)),
        ),
    ];
    let tails = [
        "01 00 00 00 04 00 00 00 01 00 00 00 61 00 00 00 02 00 00 00 01 00 00 00",
        "03 00 00 00 02 00 00 00 01 00 00 00 04 00 00 00 01 00 00 00 78 00 00 00 03 00 00 00 00 00 20 40",
        "03 00 00 00 01 02 03 00",
        "02 00 00 00 03 00 00 00 61 62 00 00 01 00 00 00 00 00 00 00",
        "02 00 00 80 01 00 00 00 01 00 00 00 01 00 00 00 61 00 00 00 01 00 00 00 62 00 00 00 01 00 00 00 63 00 00 00",
        "00 00 80 3f 00 00 00 00 00 00 00 00 00 00 80 3f",
    ];
    for ((h3, h4, v), tail) in pairs.into_iter().zip(tails) {
        round_trip(GodotVersion::V3, &hex(&format!("{h3} {tail}")), &v);
        round_trip(GodotVersion::V4, &hex(&format!("{h4} {tail}")), &v);
    }
    // Vector2(1.5, -2): same in both; a double build's form decodes too.
    both(
        "05 00 00 00 00 00 c0 3f 00 00 00 c0",
        Variant::from(Vector2::new(1.5, -2.0)),
    );
    let (v, _) = decode(
        &hex("05 00 01 00 00 00 00 00 00 00 f8 3f 00 00 00 00 00 00 00 c0"),
        GodotVersion::V4,
        &Limits::default(),
    )
    .expect("double-build Vector2");
    assert_eq!(v, Variant::from(Vector2::new(1.5, -2.0)));
    // Null object: late 3.x and 4.x send NIL; 3.2 sends OBJECT+id 0.
    round_trip(
        GodotVersion::V3,
        &hex("11 00 01 00 00 00 00 00 00 00 00 00"),
        &Variant::Object(0),
    );
    // 3.2 full-object form of null is refused (no full objects at all).
    assert_eq!(
        decode(
            &hex("11 00 00 00 00 00 00 00"),
            GodotVersion::V3,
            &Limits::default()
        ),
        Err(VariantError::FullObject { offset: 0 })
    );
}

#[test]
fn same_in_both_versions() {
    both("02 00 00 00 01 00 00 00", Variant::Int(1));
    both("02 00 00 00 ff ff ff ff", Variant::Int(-1));
    both("02 00 01 00 00 00 00 80 00 00 00 00", Variant::Int(1 << 31));
    both(
        "02 00 01 00 ff ff ff 7f ff ff ff ff",
        Variant::Int(-(1 << 31) - 1),
    );
    both("03 00 00 00 00 00 20 40", Variant::Float(2.5));
    both("03 00 01 00 9a 99 99 99 99 99 b9 3f", Variant::Float(0.1));
    both("03 00 00 00 00 00 80 7f", Variant::Float(f64::INFINITY));
    both(
        "03 00 01 00 00 00 00 00 00 00 f8 7f",
        Variant::Float(f64::NAN),
    );
    both("01 00 00 00 01 00 00 00", Variant::Bool(true));
    both(
        "04 00 00 00 05 00 00 00 68 65 6c 6c 6f 00 00 00",
        Variant::from("hello"),
    );
    both("04 00 00 00 00 00 00 00", Variant::from(""));
    both("04 00 00 00 02 00 00 00 c3 a9 00 00", Variant::from("é"));
}

#[test]
fn godot4_only_vectors() {
    let v4 = GodotVersion::V4;
    round_trip(
        v4,
        &hex("06 00 00 00 01 00 00 00 ff ff ff ff"),
        &Variant::from(Vector2i::new(1, -1)),
    );
    round_trip(
        v4,
        &hex("15 00 00 00 01 00 00 00 61 00 00 00"),
        &Variant::StringName("a".into()),
    );
    round_trip(
        v4,
        &hex("18 00 01 00 34 12 00 00 00 00 00 00"),
        &Variant::Object(0x1234),
    );
    round_trip(v4, &hex("19 00 00 00"), &Variant::Callable);
    // StreamPeer form: the u32 LE length first.
    let mut framed = crate::StreamPeerBuffer::new();
    crate::StreamPeer::put_var(&mut framed, &vdict! { "a" => 1 }).expect("put_var");
    assert_eq!(&framed.data()[..4], hex("1c 00 00 00"));
}

#[test]
fn every_type_round_trips_in_each_version_that_has_it() {
    let all = sample_values();
    for v in &all {
        for version in [GodotVersion::V3, GodotVersion::V4] {
            let mut out = Vec::new();
            match encode(v, version, &mut out) {
                Ok(()) => {
                    assert_eq!(out.len() % 4, 0, "{v:?}");
                    let (back, used) = decode(&out, version, &Limits::default()).expect("decode");
                    assert_eq!((&back, used), (v, out.len()), "{version:?}");
                }
                Err(VariantError::Unsupported { .. }) => {
                    assert_eq!(version, GodotVersion::V3, "V4 encodes every type: {v:?}");
                    assert!(out.is_empty());
                }
                Err(e) => panic!("{v:?}: {e}"),
            }
        }
    }
    let everything = Variant::Array(all.into_iter().collect());
    let mut out = Vec::new();
    encode(&everything, GodotVersion::V4, &mut out).expect("all types");
    assert_eq!(
        decode(&out, GodotVersion::V4, &Limits::default())
            .expect("decode")
            .0,
        everything
    );
}

pub(crate) fn sample_values() -> Vec<Variant> {
    let v2 = Vector2::new(1.5, -2.0);
    let v3 = Vector3::new(1.0, 2.0, 3.0);
    let v4 = Vector4::new(1.0, 2.0, 3.0, 4.0);
    vec![
        Variant::Nil,
        Variant::Bool(false),
        Variant::Int(i64::MIN),
        Variant::Float(-0.0),
        Variant::from("日本"),
        Variant::from(v2),
        Variant::from(Vector2i::new(-3, 4)),
        Variant::from(Rect2::new(v2, v2)),
        Variant::from(Rect2i::new(Vector2i::new(1, 2), Vector2i::new(3, 4))),
        Variant::from(v3),
        Variant::from(Vector3i::new(1, 2, 3)),
        Variant::from(Transform2D::new(v2, v2, v2)),
        Variant::from(v4),
        Variant::from(Vector4i::new(1, 2, 3, 4)),
        Variant::from(Plane::new(v3, 0.5)),
        Variant::from(Quaternion::new(0.0, 0.0, 0.0, 1.0)),
        Variant::from(Aabb::new(v3, v3)),
        Variant::from(Basis::IDENTITY),
        Variant::from(Transform3D::new(Basis::IDENTITY, v3)),
        Variant::from(Projection::new([v4; 4])),
        Variant::from(Color::new(0.1, 0.2, 0.3, 0.4)),
        Variant::StringName("sn".into()),
        Variant::from(NodePath::parse("a/b:c")),
        Variant::Rid(0),
        Variant::Rid(99),
        Variant::Object(7),
        Variant::Callable,
        Variant::from(Signal {
            name: "hit".into(),
            object: 5,
        }),
        vdict! { 1 => "one", "two" => 2.0, v2 => varray![], varray![1] => vdict!{} },
        varray![Variant::Nil, varray![varray![1]]],
        Variant::from(vec![1u8, 2, 3, 4, 5]),
        Variant::from(vec![1i32, -1]),
        Variant::from(vec![1i64 << 40]),
        Variant::from(vec![0.5f32, f32::NAN]),
        Variant::from(vec![0.1f64]),
        Variant::from(vec!["a".to_owned(), "bcd".to_owned(), String::new()]),
        Variant::from(vec![v2, v2]),
        Variant::from(vec![v3]),
        Variant::from(vec![Color::new(1.0, 1.0, 1.0, 1.0)]),
        Variant::from(vec![v4]),
    ]
}

#[test]
fn godot3_refuses_godot4_only_values() {
    for v in [
        Variant::from(Vector2i::new(1, 1)),
        Variant::Callable,
        Variant::StringName("x".into()),
        Variant::Rid(5),
        Variant::from(vec![1i64]),
        varray![1, Variant::from(Vector4::default())],
    ] {
        let mut out = vec![9];
        let e = encode(&v, GodotVersion::V3, &mut out).unwrap_err();
        assert!(
            matches!(
                e,
                VariantError::Unsupported {
                    version: GodotVersion::V3,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(out, [9], "nothing appended on error");
    }
}

#[test]
fn string_rules() {
    let v4 = GodotVersion::V4;
    let l = Limits::default();
    // BOM skipped, text stops at NUL.
    let (v, _) = decode(
        &hex("04 00 00 00 06 00 00 00 ef bb bf 61 00 62 00 00"),
        v4,
        &l,
    )
    .unwrap();
    assert_eq!(v, Variant::from("a"));
    // Invalid UTF-8 and a surrogate are refused.
    assert_eq!(
        decode(&hex("04 00 00 00 01 00 00 00 ff 00 00 00"), v4, &l),
        Err(VariantError::InvalidUtf8 { offset: 4 })
    );
    assert!(decode(&hex("04 00 00 00 03 00 00 00 ed a0 80 00"), v4, &l).is_err());
    // The padding must be present.
    assert!(matches!(
        decode(&hex("04 00 00 00 01 00 00 00 61"), v4, &l),
        Err(VariantError::Truncated { .. })
    ));
    // A top-level PackedByteArray may omit it.
    let (v, used) = decode(&hex("1d 00 00 00 01 00 00 00 07"), v4, &l).unwrap();
    assert_eq!((v, used), (Variant::from(vec![7u8]), 9));
    // PackedStringArray without the NUL terminator, and a negative count.
    let (v, _) = decode(
        &hex("22 00 00 00 01 00 00 00 02 00 00 00 61 62 00 00"),
        v4,
        &l,
    )
    .unwrap();
    assert_eq!(v, Variant::from(vec!["ab".to_owned()]));
    let (v, _) = decode(&hex("22 00 00 00 ff ff ff ff"), v4, &l).unwrap();
    assert_eq!(v, Variant::PackedStringArray(vec![]));
}

#[test]
fn limits_are_enforced_and_named() {
    let v4 = GodotVersion::V4;
    let nested = |n: usize| {
        let mut b = Vec::new();
        for _ in 0..n {
            b.extend_from_slice(&hex("1c 00 00 00 01 00 00 00"));
        }
        b.extend_from_slice(&hex("00 00 00 00"));
        b
    };
    let lim = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    assert!(decode(&nested(3), v4, &lim).is_ok());
    assert!(matches!(
        decode(&nested(4), v4, &lim),
        Err(VariantError::LimitExceeded {
            limit: "max_depth",
            max: 3,
            ..
        })
    ));
    // Dictionaries of one shape in an array: the first at a level goes
    // through the decoder loop's depth check, the later ones are completed
    // by `decode::fill_array` (whose own check is a guard: a level has
    // remembered keys only once a dictionary there passed the loop's). At
    // every limit the same error, at the same place, as for any container.
    let mut players = Vec::new();
    encode(
        &varray![varray![
            vdict! { "a" => 1 },
            vdict! { "a" => 2 },
            vdict! { "a" => 3 }
        ]],
        v4,
        &mut players,
    )
    .expect("encode");
    for depth in 1..5 {
        let lim = Limits {
            max_depth: depth,
            ..Limits::default()
        };
        match decode(&players, v4, &lim) {
            Ok(_) => assert!(depth >= 3, "depth {depth}"),
            Err(VariantError::LimitExceeded {
                limit: "max_depth",
                offset,
                ..
            }) => assert!(
                depth < 3 && offset == 8 + 8 * depth,
                "depth {depth}: {offset}"
            ),
            Err(e) => panic!("depth {depth}: {e:?}"),
        }
    }
    let lim = Limits {
        max_elements: 3,
        ..Limits::default()
    };
    assert!(decode(&nested(2), v4, &lim).is_ok());
    assert!(matches!(
        decode(&nested(3), v4, &lim),
        Err(VariantError::LimitExceeded {
            limit: "max_elements",
            ..
        })
    ));
    let lim = Limits {
        max_bytes: 8,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&hex("04 00 00 00 01 00 00 00 61 00 00 00"), v4, &lim),
        Err(VariantError::LimitExceeded {
            limit: "max_bytes",
            max: 8,
            ..
        })
    ));
    // 2^31 - 1 elements announced in 8 bytes: refused before any allocation.
    assert!(matches!(
        decode(&hex("1c 00 00 00 ff ff ff 7f"), v4, &Limits::default()),
        Err(VariantError::Truncated {
            what: "Array elements",
            ..
        })
    ));
}

#[test]
fn encoder_depth_limit_matches_godot() {
    let mut v = Variant::Nil;
    for _ in 0..MAX_ENCODE_DEPTH {
        v = varray![v];
    }
    let mut out = Vec::new();
    encode(&v, GodotVersion::V4, &mut out).expect("1024 levels");
    let v = varray![v];
    assert!(matches!(
        encode(&v, GodotVersion::V4, &mut Vec::new()),
        Err(VariantError::Unsupported { .. })
    ));
}

#[test]
fn dictionary_keeps_order_and_accepts_any_key() {
    let d = vdict! { "z" => 1, 2 => 2, Variant::Nil => 3, f64::NAN => 4, varray![1] => 5 };
    let keys: Vec<Variant> = d.as_dictionary().unwrap().keys().cloned().collect();
    assert_eq!(keys[0], Variant::from("z"));
    assert_eq!(d.get(f64::NAN).and_then(Variant::as_int), Some(4));
    assert_eq!(d.get(varray![1]).and_then(Variant::as_int), Some(5));
    assert_ne!(Variant::Float(0.0), Variant::Float(-0.0));
    assert_ne!(Variant::Int(1), Variant::Float(1.0));
    // Duplicate keys on the wire: the last value wins, as in Godot.
    let bytes = hex(
        "1b 00 00 00 02 00 00 00 02 00 00 00 01 00 00 00 02 00 00 00 0a 00 00 00 02 00 00 00 01 00 00 00 02 00 00 00 0b 00 00 00",
    );
    let (v, _) = decode(&bytes, GodotVersion::V4, &Limits::default()).unwrap();
    assert_eq!(v, vdict! { 1 => 11 });
}

#[test]
fn variant_is_small() {
    assert!(
        std::mem::size_of::<Variant>() <= 32,
        "{}",
        std::mem::size_of::<Variant>()
    );
}

#[test]
fn conversions() {
    assert_eq!(String::try_from(Variant::from("x")).unwrap(), "x");
    let e = i64::try_from(Variant::from("x")).unwrap_err();
    assert_eq!(e.to_string(), "expected int, found String");
    assert!(i32::try_from(Variant::Int(1 << 40)).is_err());
    assert_eq!(Variant::from(None::<i32>), Variant::Nil);
    let a: Array = [1, 2].into_iter().collect();
    assert_eq!(Variant::from(a), varray![1, 2]);
}

#[test]
fn text_godot_would_alter_is_refused() {
    for s in ["a\0b", "\u{feff}x"] {
        for v in [Variant::from(s), Variant::from(vec![s.to_owned()])] {
            let e = encode(&v, GodotVersion::V4, &mut Vec::new()).unwrap_err();
            assert!(matches!(e, VariantError::Unsupported { .. }), "{e}");
        }
    }
    // Inside the text (not leading) a U+FEFF is kept.
    both(
        "04 00 00 00 04 00 00 00 61 ef bb bf",
        Variant::from("a\u{feff}"),
    );
}

#[test]
fn large_dictionaries_use_the_index_and_keep_order() {
    let mut d = Dictionary::new();
    for i in 0..100 {
        assert_eq!(d.insert(i, i * 2), None);
    }
    assert_eq!(d.insert(5, "five"), Some(Variant::Int(10)));
    assert_eq!(d.len(), 100);
    assert_eq!(d.get(&Variant::Int(99)), Some(&Variant::Int(198)));
    assert_eq!(d.get(&Variant::Int(100)), None);
    assert_eq!(d.remove(&Variant::Int(0)), Some(Variant::Int(0)));
    assert_eq!(
        d.get(&Variant::Int(1)),
        Some(&Variant::Int(2)),
        "index rebuilt after the shift"
    );
    let keys: Vec<i64> = d.keys().map(|k| k.as_int().unwrap()).collect();
    assert_eq!(keys, (1..100).collect::<Vec<_>>());
    assert_eq!(d.get(&Variant::Int(5)), Some(&Variant::from("five")));
    // Equality ignores order, across the two representations.
    let small: Dictionary = (0..3).rev().map(|i| (i, i)).collect();
    let other: Dictionary = (0..3).map(|i| (i, i)).collect();
    assert_eq!(small, other);
    let v = Variant::Dictionary(d.clone());
    let mut out = Vec::new();
    encode(&v, GodotVersion::V4, &mut out).unwrap();
    assert_eq!(
        decode(&out, GodotVersion::V4, &Limits::default())
            .unwrap()
            .0,
        v
    );
}

#[test]
fn short_strings_with_a_nul_anywhere_are_refused_and_others_round_trip() {
    // The encoder checks short strings eight bytes at a time: every length
    // and NUL position around the word boundaries, and text whose bytes
    // (0x01, 0x80 and up) are near the zero-byte test's edge.
    for len in 1..=40 {
        for at in 0..len {
            let mut text = "x".repeat(len);
            text.replace_range(at..at + 1, "\0");
            let e = encode(
                &Variant::from(text.as_str()),
                GodotVersion::V4,
                &mut Vec::new(),
            );
            assert!(
                matches!(e, Err(VariantError::Unsupported { .. })),
                "{len} {at}"
            );
        }
        for filler in ["\u{1}", "\u{80}", "\u{100}", "é", "\u{7f}"] {
            let text: String = filler.repeat(len).chars().take(len).collect();
            let v = Variant::from(text.as_str());
            let mut out = Vec::new();
            encode(&v, GodotVersion::V4, &mut out).unwrap();
            let (back, used) = decode(&out, GodotVersion::V4, &Limits::default()).unwrap();
            assert_eq!((back, used), (v, out.len()), "{len} {filler:?}");
        }
    }
}

#[test]
fn dropping_mixed_nesting_keeps_every_value_reachable_until_dropped() {
    // Flat children are emptied by their parent's drop, deeper ones go
    // through the iterative path: both in one tree, keys included.
    let flat = vdict! { "a" => 1, "b" => varray![] };
    let deep = varray![varray![varray![1]], vdict! { "k" => varray![2] }];
    let mut d = Dictionary::new();
    d.insert(varray![1, 2], flat.clone());
    d.insert(deep.clone(), "v");
    d.insert("x", varray![flat.clone(), deep.clone(), Variant::Nil]);
    let tree = Variant::Array(
        varray![Variant::Dictionary(d), flat, deep]
            .as_array()
            .unwrap()
            .clone(),
    );
    let copy = tree.clone();
    assert_eq!(tree, copy);
    // Container keys and values decode in place (a key waiting for its
    // value while that value's containers are decoded).
    let mut out = Vec::new();
    encode(&tree, GodotVersion::V4, &mut out).unwrap();
    let (back, used) = decode(&out, GodotVersion::V4, &Limits::default()).unwrap();
    assert_eq!((&back, used), (&tree, out.len()));
    drop(back);
    drop(tree);
    assert_eq!(
        copy.at(0)
            .and_then(|v| v.as_dictionary())
            .map(Dictionary::len),
        Some(3)
    );
}
