//! Dictionaries of one shape (an array of players, of entities): the
//! decoder remembers their keys per level and reads their entries in a fast
//! path (`src/variant/shapes.rs`, `decode::shaped_entries`). Whatever the
//! previous dictionaries held, every mix of keys and values must decode
//! exactly as inserting every entry would, and every failure must be the
//! general decoder's.

use lunanet::variant::{
    Dictionary, GodotVersion, Limits, Variant, VariantError, Vector2, decode, encode,
};
use lunanet::vdict;

/// Encodes an array of dictionaries given as raw entry lists (so repeated
/// keys can be written, as Godot never does but a peer may).
fn raw_dicts(dicts: &[Vec<(Variant, Variant)>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&28u32.to_le_bytes());
    out.extend_from_slice(&(dicts.len() as u32).to_le_bytes());
    for d in dicts {
        out.extend_from_slice(&27u32.to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        for (k, v) in d {
            encode(k, GodotVersion::V4, &mut out).expect("key");
            encode(v, GodotVersion::V4, &mut out).expect("value");
        }
    }
    out
}

#[test]
fn dictionaries_of_one_shape_decode_as_inserted() {
    // Keys decoded once per shape (see `shapes.rs`) must give exactly what
    // inserting every entry gives: same entries, same order, repeated keys
    // overwriting in place, whatever the previous dictionaries held.
    let e = |k: &str, v: i64| (Variant::from(k), Variant::from(v));
    let nested = vdict! { "x" => 1 };
    let cases: Vec<Vec<Vec<(Variant, Variant)>>> = vec![
        vec![vec![e("a", 1), e("b", 2)]; 3],
        vec![vec![e("a", 1), e("b", 2)], vec![e("a", 3), e("a", 4)]],
        vec![
            vec![e("a", 1), e("b", 2)],
            vec![e("a", 1), e("b", 2), e("b", 5)],
        ],
        vec![
            vec![e("a", 1), e("b", 2)],
            vec![e("b", 1), e("a", 2)],
            vec![e("a", 0), e("b", 0)],
        ],
        vec![
            vec![e("a", 1), e("b", 2), e("c", 3)],
            vec![e("a", 1)],
            vec![e("a", 1), e("c", 3), e("b", 2)],
        ],
        vec![
            vec![e("a", 1), (Variant::from("n"), nested.clone()), e("b", 2)],
            vec![e("a", 1), (Variant::from("n"), nested.clone()), e("b", 2)],
            vec![(nested.clone(), Variant::Nil), e("a", 1), e("a", 9)],
        ],
        vec![
            vec![
                (Variant::Int(1), Variant::Nil),
                (Variant::from("1"), Variant::Nil),
            ],
            vec![
                (Variant::Int(1), Variant::Nil),
                (Variant::StringName("1".into()), Variant::Nil),
            ],
        ],
        vec![(0..40).map(|i| e(&format!("k{}", i % 20), i)).collect(); 2],
    ];
    for dicts in &cases {
        let bytes = raw_dicts(dicts);
        let (got, used) = decode(&bytes, GodotVersion::V4, &Limits::default()).expect("decode");
        assert_eq!(used, bytes.len());
        let got = got.as_array().expect("array");
        assert_eq!(got.len(), dicts.len());
        for (g, d) in got.iter().zip(dicts) {
            let want: Dictionary = d.iter().cloned().collect();
            let g = g.as_dictionary().expect("dictionary");
            let entries = |x: &Dictionary| {
                x.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(entries(g), entries(&want), "{dicts:?}");
        }
    }
}

#[test]
fn dictionaries_of_one_shape_with_every_kind_of_value() {
    // The shaped fast path (`decode::shaped_entries`) reads the usual leaf
    // values itself and leaves anything else, and any failure, to the
    // general loop: every mix must decode as inserted, and every truncation
    // must fail cleanly, naming bytes that really are missing.
    let player = |id: i64, name: &str, hp: f64, inv: Variant| {
        vec![
            (Variant::from("id"), Variant::Int(id)),
            (Variant::from("name"), Variant::from(name)),
            (
                Variant::from("pos"),
                Variant::Vector2(Vector2::new(1.5, -2.0)),
            ),
            (Variant::from("hp"), Variant::Float(hp)),
            (Variant::from("inventory"), inv),
        ]
    };
    let inv = |n: i32| Variant::PackedInt32Array((0..n).collect());
    let dicts = vec![
        player(1, "ann", 100.0, inv(3)),
        player(1 << 40, "bob", 0.1, inv(0)),
        player(3, "a name longer than twenty-four bytes", 99.5, inv(8)),
        player(4, "", f64::NAN, vdict! { "x" => 1 }),
        player(5, "d\u{e9}j\u{e0}", -1.0, Variant::Nil),
        player(6, "eve", 2.0, inv(1)),
    ];
    let bytes = raw_dicts(&dicts);
    let (got, used) = decode(&bytes, GodotVersion::V4, &Limits::default()).expect("decode");
    assert_eq!(used, bytes.len());
    let want = Variant::Array(
        dicts
            .iter()
            .map(|d| Variant::Dictionary(d.iter().cloned().collect()))
            .collect(),
    );
    assert_eq!(got, want);
    for cut in 0..bytes.len() {
        match decode(&bytes[..cut], GodotVersion::V4, &Limits::default()) {
            Err(VariantError::Truncated { offset, needed, .. }) => {
                assert!(
                    offset <= cut && offset + needed > cut,
                    "cut {cut}: {offset} + {needed}"
                )
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    // Invalid UTF-8 in a value of a shaped dictionary: the general loop's
    // error, at the string's offset.
    let mut bad = dicts[..2].to_vec();
    bad[1][1].1 = Variant::from("zz\u{e9}");
    let mut bytes = raw_dicts(&bad);
    let at = bytes.len()
        - bytes
            .windows(2)
            .rev()
            .position(|w| w == [0xC3, 0xA9])
            .unwrap()
        - 2;
    bytes[at] = 0xFF;
    assert!(matches!(
        decode(&bytes, GodotVersion::V4, &Limits::default()),
        Err(VariantError::InvalidUtf8 { .. })
    ));
}
