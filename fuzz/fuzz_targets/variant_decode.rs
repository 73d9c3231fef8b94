//! `variant::decode` of arbitrary bytes as Godot 3 and Godot 4, with the
//! re-encode fixed-point check. See `tests/fuzz_harness/variant.rs`.
#![no_main]

#[path = "../../tests/fuzz_harness/variant.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::decode_both(data));
