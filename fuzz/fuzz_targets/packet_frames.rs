//! `PacketPeerStream` frames from arbitrary bytes, with arbitrary maximum
//! sizes, delivered in arbitrary pieces. See `tests/fuzz_harness/mod.rs`.
#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::packet_frames(data));
