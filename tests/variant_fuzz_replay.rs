//! The Variant fuzz harnesses on stable, in every `cargo test`: the corpus in
//! `tests/corpus/variant/` (the reference vectors and hand-made hostile
//! inputs), every truncation of each corpus input, and proptest-generated
//! inputs (arbitrary bytes, and encodings of generated values with bytes
//! flipped), through the same functions as the cargo-fuzz targets
//! `variant_decode` and `variant_get_var`.
//!
//! `PROPTEST_CASES` raises the number of generated inputs (default 256).
#[path = "fuzz_harness/variant.rs"]
mod harness;

use std::path::PathBuf;

use lunanet::variant::{self, GodotVersion, Variant};
use proptest::prelude::*;

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/variant")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus {dir} has {} files", files.len());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read corpus file"))
        })
        .collect()
}

#[test]
fn decode_corpus_and_every_truncation() {
    for (name, data) in corpus("decode") {
        eprintln!("decode: {name}");
        harness::decode_both(&data);
        for cut in 0..data.len() {
            harness::decode_both(&data[..cut]);
        }
    }
}

#[test]
fn get_var_corpus_and_every_truncation() {
    for (name, data) in corpus("get_var") {
        eprintln!("get_var: {name}");
        harness::get_var_stream(&data);
        for cut in 0..data.len() {
            harness::get_var_stream(&data[..cut]);
        }
    }
}

fn leaf() -> impl Strategy<Value = Variant> {
    prop_oneof![
        Just(Variant::Nil),
        any::<bool>().prop_map(Variant::Bool),
        any::<i64>().prop_map(Variant::Int),
        any::<f64>().prop_map(Variant::Float),
        "[^\\x00\\u{feff}]{0,6}".prop_map(Variant::from),
        proptest::collection::vec(any::<u8>(), 0..7).prop_map(Variant::from),
        proptest::collection::vec(any::<i32>(), 0..3).prop_map(Variant::from),
        proptest::collection::vec("[^\\x00\\u{feff}]{0,3}", 0..3).prop_map(Variant::from),
        (any::<f32>(), any::<f32>()).prop_map(|(x, y)| Variant::from(variant::Vector2::new(x, y))),
        any::<u64>().prop_map(Variant::Object),
    ]
}

fn value() -> impl Strategy<Value = Variant> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Variant::from),
            proptest::collection::vec((inner.clone(), inner), 0..4)
                .prop_map(|kv| Variant::Dictionary(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        harness::decode_both(&data);
        harness::get_var_stream(&data);
    }

    #[test]
    fn mutated_encodings(v in value(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4), v3 in any::<bool>()) {
        let version = if v3 { GodotVersion::V3 } else { GodotVersion::V4 };
        let mut bytes = Vec::new();
        variant::encode(&v, version, &mut bytes).expect("generated values encode in both versions");
        let (back, used) = variant::decode(&bytes, version, &Default::default()).expect("decodes");
        prop_assert!(back == v);
        prop_assert_eq!(used, bytes.len());
        for (at, x) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
        }
        harness::decode_both(&bytes);
        let mut stream = vec![if v3 { 2 } else { 0 }, 0];
        stream.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        stream.extend_from_slice(&bytes);
        harness::get_var_stream(&stream);
    }
}
