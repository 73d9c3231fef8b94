//! Fuzz harnesses for the Godot Variant codec, shared by the cargo-fuzz
//! targets `variant_decode` and `variant_get_var` (`fuzz/fuzz_targets/`) and
//! the stable replay test `tests/variant_fuzz_replay.rs` (corpus in
//! `tests/corpus/variant/`), which load this file with `#[path]`.
//!
//! - [`decode_both`]: `variant::decode` of arbitrary bytes as Godot 3 and as
//!   Godot 4, under the default and under tight limits. Whatever decodes
//!   must re-encode, and that encoding must decode to an equal value with
//!   every byte used and re-encode to the same bytes (a fixed point).
//! - [`get_var_stream`]: `StreamPeer::get_var` over a peer that releases the
//!   bytes in pieces, in either byte order and version, with a small or
//!   unbounded read buffer, checked call by call against an independent
//!   framing reference (what must be returned, and how many bytes consumed);
//!   then `PacketPeerStream::get_var` over the same bytes.
#![allow(dead_code)]

use lunanet::variant::{self, GodotVersion, Limits, Variant};
use lunanet::{PacketPeerStream, SocketError, StreamPeer, StreamPeerBuffer};

const VERSIONS: [GodotVersion; 2] = [GodotVersion::V3, GodotVersion::V4];

/// Tight limits, to reach the limit paths with small inputs.
pub const TIGHT: Limits = Limits {
    max_depth: 4,
    max_elements: 16,
    max_bytes: 96,
};

/// Input: any bytes, decoded whole.
pub fn decode_both(data: &[u8]) {
    for version in VERSIONS {
        for limits in [Limits::default(), TIGHT] {
            check_decode(data, version, &limits);
        }
    }
}

fn check_decode(data: &[u8], version: GodotVersion, limits: &Limits) {
    let Ok((value, used)) = variant::decode(data, version, limits) else {
        return;
    };
    assert!(
        used <= data.len() && used >= 4,
        "used {used} of {}",
        data.len()
    );
    assert!(used <= limits.max_bytes);
    let mut once = Vec::new();
    // Every decoded value is encodable in the version it came from, except
    // text the encoder refuses because Godot would alter it: a double BOM on
    // the wire decodes (as in Godot) to text starting with U+FEFF.
    match variant::encode(&value, version, &mut once) {
        Ok(()) => {}
        Err(lunanet::variant::VariantError::Unsupported { what, .. })
            if what.starts_with("a string starting with U+FEFF") =>
        {
            return;
        }
        Err(e) => panic!("a decoded value does not re-encode: {e}"),
    }
    assert_eq!(once.len() % 4, 0);
    let (again, used2) =
        variant::decode(&once, version, &Limits::default()).expect("own encoding decodes");
    assert_eq!(used2, once.len());
    assert!(again == value, "re-decoded value differs");
    let mut twice = Vec::new();
    variant::encode(&again, version, &mut twice).expect("re-encodes");
    assert_eq!(once, twice, "encoding is not a fixed point");
}

/// A peer that releases its bytes in pieces, like a network: `Busy` until
/// the rest arrives, `FileEof` once everything was released and read.
pub struct Trickle {
    data: Vec<u8>,
    released: usize,
    pos: usize,
    big_endian: bool,
    version: GodotVersion,
    max_buffered: usize,
}

impl Trickle {
    fn avail(&self) -> usize {
        self.released - self.pos
    }
    fn short(&self) -> SocketError {
        if self.released == self.data.len() {
            SocketError::FileEof
        } else {
            SocketError::Busy
        }
    }
}

impl StreamPeer for Trickle {
    fn put_data(&mut self, _data: &[u8]) -> Result<(), SocketError> {
        Ok(())
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        Ok(data.len())
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        if buf.len() > self.max_buffered {
            return Err(SocketError::OutOfBufferMemory);
        }
        if buf.len() > self.avail() {
            return Err(self.short());
        }
        buf.copy_from_slice(&self.data[self.pos..self.pos + buf.len()]);
        self.pos += buf.len();
        Ok(())
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        let n = buf.len().min(self.avail());
        if n == 0 && !buf.is_empty() && self.released == self.data.len() {
            return Err(SocketError::FileEof);
        }
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
    fn available_bytes(&self) -> usize {
        self.avail()
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.avail());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        n
    }
    fn is_big_endian(&self) -> bool {
        self.big_endian
    }
    fn set_big_endian(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
    }
    fn max_buffered_bytes(&self) -> usize {
        self.max_buffered
    }
    fn short_read_error(&mut self) -> SocketError {
        self.short()
    }
    fn godot_version(&self) -> GodotVersion {
        self.version
    }
    fn set_godot_version(&mut self, version: GodotVersion) {
        self.version = version;
    }
}

const PIECES: [usize; 8] = [1, 2, 3, 5, 8, 64, 1000, usize::MAX];
const READ_LIMITS: [usize; 4] = [usize::MAX, 16, 300, 4096];
const MAX_BYTES: [usize; 4] = [8 << 20, 0, 12, 200];

/// Input: byte 0 = configuration (bit 0 big-endian, bit 1 Godot 3, bits 2-4
/// piece size, bits 5-6 read-buffer limit), byte 1 bits 0-1 = `max_bytes`
/// choice, then the stream of `put_var` frames.
pub fn get_var_stream(data: &[u8]) {
    let [config, lim, stream @ ..] = data else {
        return;
    };
    let piece = PIECES[usize::from((config >> 2) & 7)];
    let limits = Limits {
        max_bytes: MAX_BYTES[usize::from(lim & 3)],
        ..Limits::default()
    };
    let mut peer = Trickle {
        data: stream.to_vec(),
        released: 0,
        pos: 0,
        big_endian: config & 1 != 0,
        version: if config & 2 != 0 {
            GodotVersion::V3
        } else {
            GodotVersion::V4
        },
        max_buffered: READ_LIMITS[usize::from((config >> 5) & 3)],
    };
    // Bounded: every pass either releases bytes or ends.
    for _pass in 0..=stream.len() + 1 {
        peer.released = peer.released.saturating_add(piece).min(stream.len());
        loop {
            let before = peer.pos;
            let expected = reference(&peer, &limits);
            let got = peer.get_var_with(&limits);
            match (&expected, &got) {
                (Expect::Value(n, v), Ok(g)) => {
                    assert!(g == v, "value differs from the codec's");
                    assert_eq!(peer.pos, before + n);
                }
                (Expect::Invalid(n), Err(SocketError::InvalidData)) => {
                    assert_eq!(peer.pos, before + n);
                }
                (Expect::Error(e), Err(g)) if e == g => assert_eq!(peer.pos, before),
                _ => panic!("expected {expected:?}, got {got:?}"),
            }
            match got {
                Ok(_) | Err(SocketError::InvalidData) => continue,
                _ => break,
            }
        }
        if peer.released == stream.len() {
            break;
        }
    }
    packet_stream(stream, peer.version);
}

#[derive(Debug)]
enum Expect {
    Value(usize, Variant),
    Invalid(usize),
    Error(SocketError),
}

/// What `get_var` must do now, from the framing rules alone.
fn reference(peer: &Trickle, limits: &Limits) -> Expect {
    let rest = &peer.data[peer.pos..peer.released];
    let Some(head) = rest.first_chunk::<4>() else {
        return Expect::Error(peer.short());
    };
    let len = if peer.big_endian {
        u32::from_be_bytes(*head)
    } else {
        u32::from_le_bytes(*head)
    } as usize;
    if len > i32::MAX as usize || len > limits.max_bytes || 4 + len > peer.max_buffered {
        return Expect::Error(SocketError::OutOfBufferMemory);
    }
    if rest.len() < 4 + len {
        return Expect::Error(peer.short());
    }
    match variant::decode(&rest[4..4 + len], peer.version, limits) {
        Ok((v, _)) => Expect::Value(4 + len, v),
        Err(_) => Expect::Invalid(4 + len),
    }
}

/// `PacketPeerStream::get_var` over the same bytes (little-endian frames):
/// every complete frame gives the codec's answer for its payload.
fn packet_stream(stream: &[u8], version: GodotVersion) {
    let mut buf = StreamPeerBuffer::from_vec(stream.to_vec());
    buf.set_godot_version(version);
    let mut pps = PacketPeerStream::new(buf);
    let mut rest = stream;
    for _ in 0..=stream.len() {
        let got = pps.get_var();
        let Some((head, tail)) = rest.split_first_chunk::<4>() else {
            assert_eq!(got, Err(SocketError::FileEof));
            return;
        };
        let len = u32::from_le_bytes(*head) as usize;
        if len > pps.max_packet_size() {
            assert_eq!(got, Err(SocketError::OutOfBufferMemory));
            return;
        }
        if tail.len() < len {
            assert_eq!(got, Err(SocketError::FileEof));
            return;
        }
        match variant::decode(&tail[..len], version, &Limits::default()) {
            Ok((v, _)) => assert!(got == Ok(v.clone()), "{got:?} != {v:?}"),
            Err(_) => assert_eq!(got, Err(SocketError::InvalidData)),
        }
        rest = &tail[len..];
    }
}
