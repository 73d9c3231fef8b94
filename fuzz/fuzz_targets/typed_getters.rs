//! `StreamPeer` typed and string getters over arbitrary bytes, in either
//! byte order. See `tests/fuzz_harness/mod.rs`.
#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::typed_getters(data));
