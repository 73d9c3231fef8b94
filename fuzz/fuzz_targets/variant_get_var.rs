//! `StreamPeer::get_var` and `PacketPeerStream::get_var` over a stream that
//! arrives in pieces. See `tests/fuzz_harness/variant.rs`.
#![no_main]

#[path = "../../tests/fuzz_harness/variant.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::get_var_stream(data));
