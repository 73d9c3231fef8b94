//! Fuzz harness for every decoder that reads network bytes, shared by the
//! cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, libFuzzer on nightly) and the
//! stable replay test (`tests/fuzz_replay.rs`), which both load this file
//! with `#[path]` / `mod`.
//!
//! - [`packet_frames`]: `PacketPeerStream` (`available_packet_count`,
//!   `get_packet`, `get_packet_into`) with an arbitrary maximum packet size,
//!   over a `StreamPeerBuffer` or a simulated network peer that delivers the
//!   bytes in arbitrary pieces through a small read buffer.
//! - [`typed_getters`]: every `StreamPeer` getter (integers, floats,
//!   `get_string`, `get_utf8_string`, `get_utf8_string_lossy`,
//!   `get_string_len`, `get_utf8_string_len`) in either byte order, over the
//!   same peers plus one that keeps the trait's default `short_read_error`
//!   and `max_buffered_bytes`.
//!
//! Each harness is differential: an independent reference decoder says what
//! every call must return (value, error and bytes consumed), so the fuzzer
//! finds wrong answers as well as panics. Input layouts are documented on
//! each function; `tests/corpus/README.md` describes the hand-made inputs.
#![allow(dead_code)] // each user needs a different part

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use lunanet::{MAX_STRING_LENGTH, PacketPeerStream, SocketError, StreamPeer, StreamPeerBuffer};

/// Maximum packet sizes the packet harness chooses from.
/// What a harness run answered, recorded (only while [`record_outcomes`]
/// runs) so the corpus replay can assert each file's documented outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `packet_frames`: the lengths of the packets returned, then the error
    /// that ended the stream (`FileEof` or the sticky `OutOfBufferMemory`).
    Frames { lens: Vec<usize>, end: SocketError },
    /// `typed_getters`: getter number (see [`typed_getters`]) and its answer
    /// (`Ok` with the value's length in bytes for strings, 0 otherwise).
    Getter {
        getter: u8,
        answer: Result<usize, SocketError>,
    },
}

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static OUTCOMES: RefCell<Vec<Outcome>> = const { RefCell::new(Vec::new()) };
}

fn record(outcome: impl FnOnce() -> Outcome) {
    if RECORDING.with(Cell::get) {
        let outcome = outcome();
        OUTCOMES.with(|o| o.borrow_mut().push(outcome));
    }
}

/// Runs `harness` on `data` and returns what it answered, in order.
pub fn record_outcomes(harness: fn(&[u8]), data: &[u8]) -> Vec<Outcome> {
    OUTCOMES.with(|o| o.borrow_mut().clear());
    RECORDING.with(|r| r.set(true));
    harness(data);
    RECORDING.with(|r| r.set(false));
    OUTCOMES.with(|o| std::mem::take(&mut *o.borrow_mut()))
}

pub const MAX_SIZES: [usize; 16] = [
    0,
    1,
    2,
    3,
    4,
    5,
    8,
    16,
    100,
    255,
    256,
    1000,
    4096,
    65_536,
    u32::MAX as usize,
    usize::MAX,
];

/// Read-buffer limits of the simulated network peer.
pub const READ_LIMITS: [usize; 16] = [
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    16,
    64,
    255,
    1024,
    4096,
    65_540,
    1 << 20,
    usize::MAX / 2,
    usize::MAX,
];

// ---------------------------------------------------------------------------
// A simulated network peer
// ---------------------------------------------------------------------------

/// A byte stream arriving from the network into a bounded read buffer, with
/// `StreamPeerTcp`'s semantics: `get_data` is all-or-nothing from the buffer
/// (`OutOfBufferMemory` above the read limit, `Busy` while more may come,
/// `FileEof` once the remote closed and everything arrived); bytes move from
/// the network to the buffer only in [`Wire::pass`] (a reactor pass).
#[derive(Debug)]
pub struct Wire {
    /// Bytes still in the network (not yet read into the buffer).
    network: VecDeque<u8>,
    /// The read buffer.
    rx: VecDeque<u8>,
    read_limit: usize,
    /// The remote closed after the bytes in `network`.
    closed: bool,
    big_endian: bool,
    /// Bytes written by `put_*`.
    pub tx: Vec<u8>,
}

impl Wire {
    pub fn new(stream: &[u8], read_limit: usize) -> Wire {
        Wire {
            network: stream.iter().copied().collect(),
            rx: VecDeque::new(),
            read_limit,
            closed: false,
            big_endian: false,
            tx: Vec::new(),
        }
    }

    /// A reactor pass: moves up to `n` bytes from the network into the
    /// buffer, as far as the read limit allows. Returns how many moved.
    pub fn pass(&mut self, n: usize) -> usize {
        let room = self.read_limit.saturating_sub(self.rx.len());
        let n = n.min(room).min(self.network.len());
        self.rx.extend(self.network.drain(..n));
        n
    }

    /// The remote closes once the network is drained.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn network_len(&self) -> usize {
        self.network.len()
    }

    /// No byte will ever be added to the buffer again.
    pub fn finished(&self) -> bool {
        self.closed && self.network.is_empty()
    }

    fn end_error(&self) -> SocketError {
        if self.finished() {
            SocketError::FileEof
        } else {
            SocketError::Busy
        }
    }
}

impl StreamPeer for Wire {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        self.tx.extend_from_slice(data);
        Ok(())
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        self.tx.extend_from_slice(data);
        Ok(data.len())
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        if buf.len() > self.read_limit {
            return Err(SocketError::OutOfBufferMemory);
        }
        if buf.len() > self.rx.len() {
            return Err(self.end_error());
        }
        let n = buf.len();
        for (b, x) in buf.iter_mut().zip(self.rx.drain(..n)) {
            *b = x;
        }
        Ok(())
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        let n = buf.len().min(self.rx.len());
        if n == 0 && !buf.is_empty() && self.finished() {
            return Err(SocketError::FileEof);
        }
        for (b, x) in buf.iter_mut().zip(self.rx.drain(..n)) {
            *b = x;
        }
        Ok(n)
    }
    fn available_bytes(&self) -> usize {
        self.rx.len()
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.rx.len());
        for (b, x) in buf.iter_mut().zip(self.rx.iter()) {
            *b = *x;
        }
        n
    }
    fn is_big_endian(&self) -> bool {
        self.big_endian
    }
    fn set_big_endian(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
    }
    fn max_buffered_bytes(&self) -> usize {
        self.read_limit
    }
    fn short_read_error(&mut self) -> SocketError {
        self.end_error()
    }
}

/// A [`Wire`] seen through only the eight required `StreamPeer` methods, so
/// the trait's default `short_read_error` (a probing `get_data`) and
/// `max_buffered_bytes` (no limit) are what the helpers use.
#[derive(Debug)]
pub struct Minimal(pub Wire);

impl StreamPeer for Minimal {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        self.0.put_data(data)
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        self.0.put_partial_data(data)
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        self.0.get_data(buf)
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        self.0.get_partial_data(buf)
    }
    fn available_bytes(&self) -> usize {
        self.0.available_bytes()
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        self.0.peek_data(buf)
    }
    fn is_big_endian(&self) -> bool {
        self.0.is_big_endian()
    }
    fn set_big_endian(&mut self, big_endian: bool) {
        self.0.set_big_endian(big_endian)
    }
}

// ---------------------------------------------------------------------------
// PacketPeerStream
// ---------------------------------------------------------------------------

/// What a whole byte stream contains as frames (the reference decoder).
#[derive(Debug, PartialEq, Eq)]
pub struct Frames {
    /// The complete frames before the end or the first oversized header.
    pub packets: Vec<Vec<u8>>,
    /// A header announcing more than the maximum follows the packets.
    pub oversized: bool,
}

/// The reference frame decoder: u32 little-endian length + payload.
pub fn reference_frames(stream: &[u8], max: usize) -> Frames {
    let mut packets = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > max {
            return Frames {
                packets,
                oversized: true,
            };
        }
        if rest.len() - 4 < len {
            break;
        }
        packets.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    Frames {
        packets,
        oversized: false,
    }
}

/// Decodes `data` as a packet stream and checks every answer of
/// `PacketPeerStream` against [`reference_frames`].
///
/// Layout: `data[0]` bit 0 = peer (0: simulated network, 1:
/// `StreamPeerBuffer`), bits 1..=4 = index into [`MAX_SIZES`]; `data[1]` low
/// nibble = index into [`READ_LIMITS`], high nibble = call pattern (bit 0:
/// `available_packet_count` before each `get_packet`, bit 1: `get_packet_into`
/// with a reused buffer, bit 2: two gets per pass); `data[2]` = sizes of the
/// pieces the network delivers (0: everything at once, else alternating
/// `1 + (b & 7)` and `1 + (b >> 3)` bytes); the rest is the stream.
/// Shorter inputs are padded with zeros.
pub fn packet_frames(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let stream = data.get(3..).unwrap_or(&[]);
    let max = MAX_SIZES[usize::from(byte(0) >> 1) & 15];
    let read_limit = READ_LIMITS[usize::from(byte(1) & 15)];
    let pattern = byte(1) >> 4;
    let pieces = byte(2);
    let expected = reference_frames(stream, max);
    if byte(0) & 1 == 1 {
        let mut pps = PacketPeerStream::with_max_packet_size(
            StreamPeerBuffer::from_vec(stream.to_vec()),
            max,
        );
        let mut got = Vec::new();
        let end = drain_packets(&mut pps, pattern, &mut got, &expected);
        return check_end(&mut pps, end, &got, &expected);
    }
    let mut pps = PacketPeerStream::with_max_packet_size(Wire::new(stream, read_limit), max);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut piece = 0usize;
    // Bounded: every round moves at least one byte or ends the loop.
    let mut rounds = 0usize;
    loop {
        rounds += 1;
        assert!(rounds <= 4 * stream.len() + 16, "no progress");
        let n = match pieces {
            0 => usize::MAX,
            b if piece.is_multiple_of(2) => 1 + usize::from(b & 7),
            b => 1 + usize::from(b >> 3),
        };
        piece += 1;
        pps.get_mut().pass(n);
        if pps.get_ref().network_len() == 0 {
            pps.get_mut().close();
        }
        match drain_packets(&mut pps, pattern, &mut got, &expected) {
            // More bytes will come: the next pass moves some.
            SocketError::Busy => assert!(!pps.get_ref().finished(), "Busy after the end"),
            end => return check_end(&mut pps, end, &got, &expected),
        }
    }
}

/// Takes packets until an error; returns the error. Checks each packet and
/// `available_packet_count` against the reference.
fn drain_packets<P: StreamPeer>(
    pps: &mut PacketPeerStream<P>,
    pattern: u8,
    got: &mut Vec<Vec<u8>>,
    expected: &Frames,
) -> SocketError {
    let mut reuse = Vec::new();
    loop {
        let promised = if pattern & 1 == 1 {
            let n = pps.available_packet_count();
            assert!(
                got.len() + n <= expected.packets.len(),
                "available_packet_count {n} with {} of {} packets taken",
                got.len(),
                expected.packets.len()
            );
            n
        } else {
            0
        };
        let gets = promised.max(if pattern & 4 == 4 { 2 } else { 1 });
        for i in 0..gets {
            let result = if pattern & 2 == 2 {
                pps.get_packet_into(&mut reuse).map(|()| reuse.clone())
            } else {
                pps.get_packet()
            };
            assert!(pps.buffered_bytes() <= pps.max_packet_size().saturating_add(4));
            match result {
                Ok(packet) => {
                    assert!(packet.len() <= pps.max_packet_size());
                    let index = got.len();
                    assert!(
                        index < expected.packets.len(),
                        "an extra packet of {} bytes",
                        packet.len()
                    );
                    assert!(packet == expected.packets[index], "packet {index} differs");
                    got.push(packet);
                }
                Err(e) => {
                    assert!(
                        i >= promised,
                        "available_packet_count promised {promised}: {e}"
                    );
                    return e;
                }
            }
        }
    }
}

/// Checks the state once `get_packet` returned `end` (not `Busy`): every
/// packet was delivered, then the sticky desynchronisation error or the end
/// of the stream.
fn check_end<P: StreamPeer>(
    pps: &mut PacketPeerStream<P>,
    end: SocketError,
    got: &[Vec<u8>],
    expected: &Frames,
) {
    let eof = SocketError::FileEof;
    record(|| Outcome::Frames {
        lens: got.iter().map(Vec::len).collect(),
        end,
    });
    assert_eq!(
        got.len(),
        expected.packets.len(),
        "packets lost (ended with {end})"
    );
    if expected.oversized {
        assert_eq!(end, SocketError::OutOfBufferMemory);
        assert!(pps.is_desynchronized());
        // Sticky.
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pps.available_packet_count(), 0);
    } else {
        assert_eq!(end, eof);
        assert!(!pps.is_desynchronized());
        assert_eq!(pps.get_packet(), Err(eof));
        assert_eq!(pps.available_packet_count(), 0);
    }
}

// ---------------------------------------------------------------------------
// StreamPeer getters
// ---------------------------------------------------------------------------

/// Which peer the getters run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Buffer,
    Wire,
    Minimal,
}

/// A getter's answer, comparable with the reference.
#[derive(Debug, PartialEq)]
enum Value {
    Int(i128),
    Bits(u64),
    Text(String),
}

const GETTERS: usize = 15;

/// Lengths for `get_string_len` / `get_utf8_string_len`; `None` entries are
/// relative to what is available (`available`, `available + 1`).
const LENS: [Option<usize>; 16] = [
    Some(0),
    Some(1),
    Some(2),
    Some(3),
    Some(4),
    Some(5),
    Some(8),
    Some(100),
    None,
    None,
    Some(4096),
    Some(MAX_STRING_LENGTH),
    Some(MAX_STRING_LENGTH + 1),
    Some(u32::MAX as usize),
    Some(usize::MAX - 3),
    Some(usize::MAX),
];

/// Runs getters chosen by `data` over bytes from `data` and checks each
/// answer (value or error, and bytes consumed) against a reference decoder.
///
/// Layout: `data[0]` bits 0..=1 = peer (0: `StreamPeerBuffer`, 1 and 3:
/// simulated network, 2: simulated network with the trait's default
/// `short_read_error`), bit 2 = big-endian, bits 3..=6 = index into
/// [`READ_LIMITS`]; `data[1]` = number of operation bytes that follow; the
/// rest is the stream. Operation byte: low nibble 0..=14 = getter (`u8`, `i8`,
/// `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`, `f64`, `string`,
/// `utf8_string`, `utf8_string_lossy`, `string_len`, `utf8_string_len`),
/// high nibble = length for the `_len` getters (index into an internal
/// table); low nibble 15 = control: high nibble 0..=7 a network pass of
/// `2^n` bytes, 8 flip the byte order, 9 the remote closes, else a pass of
/// everything.
pub fn typed_getters(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let kind = match byte(0) & 3 {
        0 => Kind::Buffer,
        2 => Kind::Minimal,
        _ => Kind::Wire,
    };
    let big_endian = byte(0) & 4 == 4;
    let read_limit = READ_LIMITS[usize::from(byte(0) >> 3) & 15];
    let op_count = usize::from(byte(1)).min(data.len().saturating_sub(2));
    let ops = data.get(2..2 + op_count).unwrap_or(&[]);
    let stream = data.get(2 + op_count..).unwrap_or(&[]);
    match kind {
        Kind::Buffer => {
            let mut peer = StreamPeerBuffer::from_vec(stream.to_vec());
            peer.set_big_endian(big_endian);
            run_getters(&mut peer, kind, usize::MAX, ops, stream, |p| p.position());
        }
        Kind::Wire => {
            let mut peer = Wire::new(stream, read_limit);
            peer.set_big_endian(big_endian);
            run_getters(&mut peer, kind, read_limit, ops, stream, |w| {
                stream.len() - w.network_len() - w.available_bytes()
            });
        }
        Kind::Minimal => {
            let mut peer = Minimal(Wire::new(stream, read_limit));
            peer.set_big_endian(big_endian);
            run_getters(&mut peer, kind, read_limit, ops, stream, |m| {
                stream.len() - m.0.network_len() - m.0.available_bytes()
            });
        }
    }
}

/// A peer the getter harness can drive: network passes and close are no-ops
/// for a `StreamPeerBuffer` (everything is there, and it ends there).
trait Driven: StreamPeer {
    fn pass(&mut self, n: usize);
    fn close(&mut self);
    /// Nothing more will ever become available.
    fn finished(&self) -> bool;
}

impl Driven for StreamPeerBuffer {
    fn pass(&mut self, _: usize) {}
    fn close(&mut self) {}
    fn finished(&self) -> bool {
        true
    }
}

impl Driven for Wire {
    fn pass(&mut self, n: usize) {
        Wire::pass(self, n);
    }
    fn close(&mut self) {
        Wire::close(self);
    }
    fn finished(&self) -> bool {
        Wire::finished(self)
    }
}

impl Driven for Minimal {
    fn pass(&mut self, n: usize) {
        self.0.pass(n);
    }
    fn close(&mut self) {
        self.0.close();
    }
    fn finished(&self) -> bool {
        self.0.finished()
    }
}

fn run_getters<P: Driven>(
    peer: &mut P,
    kind: Kind,
    read_limit: usize,
    ops: &[u8],
    stream: &[u8],
    consumed: impl Fn(&P) -> usize,
) {
    for &op in ops {
        let (low, high) = (op & 15, op >> 4);
        if usize::from(low) >= GETTERS {
            match high {
                0..=7 => peer.pass(1 << high),
                8 => {
                    let b = peer.is_big_endian();
                    peer.set_big_endian(!b);
                }
                9 => peer.close(),
                _ => peer.pass(usize::MAX),
            }
            continue;
        }
        let pos = consumed(peer);
        let available = peer.available_bytes();
        let visible = &stream[pos..pos + available];
        let len = match LENS[usize::from(high)] {
            Some(n) => n,
            None if high == 8 => available,
            None => available + 1,
        };
        let expected = reference_get(low, len, visible, peer, kind, read_limit);
        let actual = call_getter(peer, low, len);
        record(|| Outcome::Getter {
            getter: low,
            answer: match &actual {
                Ok(Value::Text(t)) => Ok(t.len()),
                Ok(_) => Ok(0),
                Err(e) => Err(*e),
            },
        });
        let taken = consumed(peer) - pos;
        match (&expected, &actual) {
            (Ok((value, n)), Ok(v)) => {
                assert_eq!(v, value, "getter {low} (len {len}) value");
                assert_eq!(
                    taken, *n,
                    "getter {low} (len {len}) consumed {taken}, not {n}"
                );
            }
            (Err(e), Err(a)) => {
                assert_eq!(a, e, "getter {low} (len {len}) error");
                assert_eq!(
                    taken, 0,
                    "getter {low} failed with {a} but consumed {taken}"
                );
            }
            _ => panic!(
                "getter {low} (len {len}) on {kind:?} with {available} available \
                 (read limit {read_limit}): got {actual:?}, expected {expected:?}"
            ),
        }
        assert_eq!(peer.available_bytes(), available - taken);
    }
}

fn call_getter<P: StreamPeer>(peer: &mut P, getter: u8, len: usize) -> Result<Value, SocketError> {
    let int = |v: i128| Value::Int(v);
    Ok(match getter {
        0 => int(peer.get_u8()?.into()),
        1 => int(peer.get_i8()?.into()),
        2 => int(peer.get_u16()?.into()),
        3 => int(peer.get_i16()?.into()),
        4 => int(peer.get_u32()?.into()),
        5 => int(peer.get_i32()?.into()),
        6 => int(peer.get_u64()?.into()),
        7 => int(peer.get_i64()?.into()),
        8 => Value::Bits(peer.get_f32()?.to_bits().into()),
        9 => Value::Bits(peer.get_f64()?.to_bits()),
        10 => Value::Text(peer.get_string()?),
        11 => Value::Text(peer.get_utf8_string()?),
        12 => Value::Text(peer.get_utf8_string_lossy()?),
        13 => Value::Text(peer.get_string_len(len)?),
        _ => Value::Text(peer.get_utf8_string_len(len)?),
    })
}

/// The reference: what getter `getter` must answer with `visible` buffered.
fn reference_get<P: Driven>(
    getter: u8,
    len: usize,
    visible: &[u8],
    peer: &P,
    kind: Kind,
    read_limit: usize,
) -> Result<(Value, usize), SocketError> {
    let big = peer.is_big_endian();
    let finished = peer.finished();
    let available = visible.len();
    // The most bytes the helpers believe the peer can hold.
    let max_buffered = match kind {
        Kind::Wire => read_limit,
        Kind::Buffer | Kind::Minimal => usize::MAX,
    };
    // What `get_data` of `n` bytes answers when fewer are buffered.
    let get_data_error = |n: usize| match kind {
        Kind::Buffer => SocketError::FileEof,
        Kind::Wire | Kind::Minimal if n > read_limit => SocketError::OutOfBufferMemory,
        _ if finished => SocketError::FileEof,
        _ => SocketError::Busy,
    };
    // What `short_read_error` answers (Minimal: the default, which probes
    // `get_data` of `available + 1` bytes).
    let short_error = match kind {
        Kind::Minimal => get_data_error(available.saturating_add(1)),
        _ => get_data_error(0),
    };
    let fixed = |n: usize| -> Result<&[u8], SocketError> {
        if n > max_buffered {
            return Err(SocketError::OutOfBufferMemory);
        }
        if n > read_limit && kind != Kind::Buffer {
            return Err(SocketError::OutOfBufferMemory);
        }
        visible.get(..n).ok_or_else(|| get_data_error(n))
    };
    let word = |b: &[u8]| -> u64 {
        let mut v = 0u64;
        if big {
            for &x in b {
                v = v << 8 | u64::from(x);
            }
        } else {
            for &x in b.iter().rev() {
                v = v << 8 | u64::from(x);
            }
        }
        v
    };
    let int = |n: usize, signed: bool| -> Result<(Value, usize), SocketError> {
        let v = word(fixed(n)?);
        let bits = 8 * n as u32;
        let value = if signed {
            // Sign-extend from `bits`.
            i128::from((v << (64 - bits)) as i64 >> (64 - bits))
        } else {
            i128::from(v)
        };
        Ok((Value::Int(value), n))
    };
    // A string of `len` bytes after `prefix` ignored bytes.
    let text = |prefix: usize, len: usize, mode: u8| -> Result<(Value, usize), SocketError> {
        if len > MAX_STRING_LENGTH {
            return Err(SocketError::OutOfBufferMemory);
        }
        let total = prefix + len;
        if total > max_buffered {
            return Err(SocketError::OutOfBufferMemory);
        }
        let Some(bytes) = visible.get(prefix..total) else {
            return Err(short_error);
        };
        let s = match mode {
            0 => bytes.iter().map(|&b| char::from(b)).collect(),
            1 => {
                String::from(std::str::from_utf8(bytes).map_err(|_| SocketError::InvalidParameter)?)
            }
            _ => String::from_utf8_lossy(bytes).into_owned(),
        };
        Ok((Value::Text(s), total))
    };
    let prefixed = |mode: u8| -> Result<(Value, usize), SocketError> {
        let Some(header) = visible.get(..4) else {
            if max_buffered < 4 {
                // The prefix itself can never be buffered.
                return Err(SocketError::OutOfBufferMemory);
            }
            return Err(short_error);
        };
        let len = word(header) as usize;
        text(4, len, mode)
    };
    match getter {
        0 => int(1, false),
        1 => int(1, true),
        2 => int(2, false),
        3 => int(2, true),
        4 => int(4, false),
        5 => int(4, true),
        6 => int(8, false),
        7 => int(8, true),
        8 => fixed(4).map(|b| (Value::Bits(word(b)), 4)),
        9 => fixed(8).map(|b| (Value::Bits(word(b)), 8)),
        10 => prefixed(0),
        11 => prefixed(1),
        12 => prefixed(2),
        13 => text(0, len, 0),
        _ => text(0, len, 1),
    }
}
