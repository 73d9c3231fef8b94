//! The Godot wire format over real TCP: the `StreamPeer` typed helpers and
//! `PacketPeerStream` on `StreamPeerTcp`, against lunanet peers and against
//! plain `std::net::TcpStream` remotes that write and check Godot's bytes.
//!
//! Loopback only, port 0, every wait bounded by a deadline (`poll_until`,
//! `wait_*`, socket timeouts); no fixed sleeps as synchronisation.
mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use lunanet::{
    Config, DEFAULT_MAX_PACKET_SIZE, PacketPeerStream, Reactor, SocketError, Status, StreamPeer,
    StreamPeerBuffer, StreamPeerTcp, TcpServer,
};
use util::*;

// ---------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------

/// A plain std client (the "Godot" side) connected to a lunanet server, and
/// the accepted lunanet peer.
fn std_to_server(reactor: &Reactor, server: &mut TcpServer) -> (TcpStream, StreamPeerTcp) {
    let addr = SocketAddr::from(([127, 0, 0, 1], server.local_port()));
    let remote = TcpStream::connect_timeout(&addr, LONG).unwrap();
    bound_std(&remote);
    let peer = accept(reactor, server);
    (remote, peer)
}

/// A Godot `PacketPeerStream` frame: u32 little-endian length + payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Reads exactly `n` bytes from a std socket (bounded by its read timeout).
fn read_std(remote: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    remote.read_exact(&mut out).expect("std read");
    out
}

/// Polls until `get` stops answering `Busy`, and returns that answer.
#[track_caller]
fn poll_while_busy<T>(
    reactor: &Reactor,
    what: &str,
    mut get: impl FnMut() -> Result<T, SocketError>,
) -> Result<T, SocketError> {
    let mut result = None;
    poll_until(reactor, what, || match get() {
        Err(SocketError::Busy) => false,
        other => {
            result = Some(other);
            true
        }
    });
    result.expect("set when the loop ends")
}

/// One value of each `StreamPeer` helper family. Floats are kept as bits so
/// that NaN payloads and -0.0 compare exactly.
#[derive(Debug, Clone, PartialEq)]
enum V {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(u32),
    F64(u64),
    /// `put_string` / `get_string` (ASCII out, Latin-1 in).
    Str(String),
    /// `put_utf8_string` / `get_utf8_string`.
    Utf8(String),
}

impl V {
    fn put(&self, p: &mut impl StreamPeer) -> Result<(), SocketError> {
        match self {
            V::U8(v) => p.put_u8(*v),
            V::I8(v) => p.put_i8(*v),
            V::U16(v) => p.put_u16(*v),
            V::I16(v) => p.put_i16(*v),
            V::U32(v) => p.put_u32(*v),
            V::I32(v) => p.put_i32(*v),
            V::U64(v) => p.put_u64(*v),
            V::I64(v) => p.put_i64(*v),
            V::F32(bits) => p.put_f32(f32::from_bits(*bits)),
            V::F64(bits) => p.put_f64(f64::from_bits(*bits)),
            V::Str(s) => p.put_string(s),
            V::Utf8(s) => p.put_utf8_string(s),
        }
    }

    /// Reads a value of the same kind with the matching getter.
    fn get_same(&self, p: &mut impl StreamPeer) -> Result<V, SocketError> {
        Ok(match self {
            V::U8(_) => V::U8(p.get_u8()?),
            V::I8(_) => V::I8(p.get_i8()?),
            V::U16(_) => V::U16(p.get_u16()?),
            V::I16(_) => V::I16(p.get_i16()?),
            V::U32(_) => V::U32(p.get_u32()?),
            V::I32(_) => V::I32(p.get_i32()?),
            V::U64(_) => V::U64(p.get_u64()?),
            V::I64(_) => V::I64(p.get_i64()?),
            V::F32(_) => V::F32(p.get_f32()?.to_bits()),
            V::F64(_) => V::F64(p.get_f64()?.to_bits()),
            V::Str(_) => V::Str(p.get_string()?),
            V::Utf8(_) => V::Utf8(p.get_utf8_string()?),
        })
    }

    /// Godot's bytes for this value, written here from the wire format
    /// (fixed-width integers and IEEE bits in the chosen byte order; strings
    /// as a u32 byte length, then the bytes) and independent of the library,
    /// so a round trip cannot agree with itself by construction.
    fn encode(&self, big_endian: bool) -> Vec<u8> {
        macro_rules! ordered {
            ($v:expr) => {
                if big_endian {
                    $v.to_be_bytes().to_vec()
                } else {
                    $v.to_le_bytes().to_vec()
                }
            };
        }
        match self {
            V::U8(v) => vec![*v],
            V::I8(v) => v.to_le_bytes().to_vec(),
            V::U16(v) => ordered!(v),
            V::I16(v) => ordered!(v),
            V::U32(v) => ordered!(v),
            V::I32(v) => ordered!(v),
            V::U64(v) => ordered!(v),
            V::I64(v) => ordered!(v),
            V::F32(bits) => ordered!(bits),
            V::F64(bits) => ordered!(bits),
            V::Str(s) | V::Utf8(s) => {
                let mut out = ordered!(u32::try_from(s.len()).expect("a test string"));
                out.extend_from_slice(s.as_bytes());
                out
            }
        }
    }
}

/// Every helper with a fixed value and Godot's bytes for it:
/// (value, little-endian bytes, big-endian bytes). Same table as
/// `docs/streampeer.md`.
fn godot_vectors() -> Vec<(V, Vec<u8>, Vec<u8>)> {
    vec![
        (V::U8(0xAB), vec![0xAB], vec![0xAB]),
        (V::I8(-2), vec![0xFE], vec![0xFE]),
        (V::U16(0x0102), vec![0x02, 0x01], vec![0x01, 0x02]),
        (V::I16(-2), vec![0xFE, 0xFF], vec![0xFF, 0xFE]),
        (V::U32(0x0102_0304), vec![4, 3, 2, 1], vec![1, 2, 3, 4]),
        (
            V::I32(-2),
            vec![0xFE, 0xFF, 0xFF, 0xFF],
            vec![0xFF, 0xFF, 0xFF, 0xFE],
        ),
        (
            V::U64(0x0102_0304_0506_0708),
            vec![8, 7, 6, 5, 4, 3, 2, 1],
            vec![1, 2, 3, 4, 5, 6, 7, 8],
        ),
        (
            V::I64(-2),
            vec![0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE],
        ),
        (
            V::F32(1.5f32.to_bits()),
            vec![0x00, 0x00, 0xC0, 0x3F],
            vec![0x3F, 0xC0, 0x00, 0x00],
        ),
        (
            V::F64(1.5f64.to_bits()),
            vec![0, 0, 0, 0, 0, 0, 0xF8, 0x3F],
            vec![0x3F, 0xF8, 0, 0, 0, 0, 0, 0],
        ),
        (
            V::Str("abc".into()),
            vec![3, 0, 0, 0, 0x61, 0x62, 0x63],
            vec![0, 0, 0, 3, 0x61, 0x62, 0x63],
        ),
        (V::Str(String::new()), vec![0, 0, 0, 0], vec![0, 0, 0, 0]),
        (
            V::Utf8("héllo".into()),
            vec![6, 0, 0, 0, 0x68, 0xC3, 0xA9, 0x6C, 0x6C, 0x6F],
            vec![0, 0, 0, 6, 0x68, 0xC3, 0xA9, 0x6C, 0x6C, 0x6F],
        ),
        (
            V::Utf8("日本 ✓".into()),
            vec![
                10, 0, 0, 0, 0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC, 0x20, 0xE2, 0x9C, 0x93,
            ],
            vec![
                0, 0, 0, 10, 0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC, 0x20, 0xE2, 0x9C, 0x93,
            ],
        ),
        // NaN payloads travel bit for bit (no canonicalisation).
        (
            V::F32(0x7FC0_1234),
            vec![0x34, 0x12, 0xC0, 0x7F],
            vec![0x7F, 0xC0, 0x12, 0x34],
        ),
        (
            V::F64(0x7FF8_0000_DEAD_BEEF),
            vec![0xEF, 0xBE, 0xAD, 0xDE, 0x00, 0x00, 0xF8, 0x7F],
            vec![0x7F, 0xF8, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF],
        ),
        (
            V::F32((-0.0f32).to_bits()),
            vec![0, 0, 0, 0x80],
            vec![0x80, 0, 0, 0],
        ),
        // Longer than the helpers' stack buffer: 300 = 0x012C.
        (
            V::Str("x".repeat(300)),
            [&[0x2C, 0x01, 0, 0][..], &[b'x'; 300][..]].concat(),
            [&[0, 0, 0x01, 0x2C][..], &[b'x'; 300][..]].concat(),
        ),
        // 5000 × "é" is 10 000 bytes = 0x2710.
        (
            V::Utf8("é".repeat(5000)),
            [&[0x10, 0x27, 0, 0][..], &[0xC3, 0xA9].repeat(5000)[..]].concat(),
            [&[0, 0, 0x27, 0x10][..], &[0xC3, 0xA9].repeat(5000)[..]].concat(),
        ),
    ]
}

/// Values at the edges of every type, for round trips.
fn edge_values() -> Vec<V> {
    vec![
        V::U8(0),
        V::U8(u8::MAX),
        V::I8(i8::MIN),
        V::I8(i8::MAX),
        V::U16(u16::MAX),
        V::I16(i16::MIN),
        V::I16(-1),
        V::U32(u32::MAX),
        V::U32(0x8000_0001),
        V::I32(i32::MIN),
        V::I32(i32::MAX),
        V::U64(u64::MAX - 1),
        V::I64(i64::MIN + 1),
        V::I64(i64::MAX),
        V::F32((-0.0f32).to_bits()),
        V::F32(0x7FC0_1234), // quiet NaN with a payload
        V::F32(1),           // smallest subnormal
        V::F32(f32::INFINITY.to_bits()),
        V::F64(std::f64::consts::PI.to_bits()),
        V::F64(0x7FF8_0000_DEAD_BEEF), // quiet NaN with a payload
        V::F64(f64::NEG_INFINITY.to_bits()),
        V::Str(String::new()),
        V::Str("plain ascii, with\ttabs and \0 NUL".into()),
        V::Str("x".repeat(300)), // longer than the helpers' stack buffer
        V::Utf8(String::new()),
        V::Utf8("héllo wörld ✓ 日本語 🎮".into()),
        V::Utf8("é".repeat(5000)),
    ]
}

// ---------------------------------------------------------------------------
// Typed helpers over TCP
// ---------------------------------------------------------------------------

/// Every typed helper, put on one `StreamPeerTcp` and got on the other, in
/// both byte orders and both directions, with non-ASCII UTF-8 strings; the
/// bytes on the wire are Godot's, encoded independently by `V::encode`.
#[test]
fn every_typed_helper_round_trips_between_tcp_peers_in_both_byte_orders() {
    let reactor = Reactor::new().unwrap();
    let (mut client, mut server) = pair(&reactor);
    let mut values = edge_values();
    values.extend(godot_vectors().into_iter().map(|(v, _, _)| v));

    for big_endian in [false, true] {
        for client_sends in [true, false] {
            let (from, to) = if client_sends {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            from.set_big_endian(big_endian);
            to.set_big_endian(big_endian);
            assert_eq!(from.is_big_endian(), big_endian);
            let mut expected = Vec::new();
            for v in &values {
                v.put(from).unwrap();
                expected.extend(v.encode(big_endian));
            }
            poll_until(&reactor, "every value buffered", || {
                to.available_bytes() == expected.len()
            });
            // The bytes on the wire are exactly Godot's.
            let mut wire = vec![0u8; expected.len()];
            assert_eq!(to.peek_data(&mut wire), expected.len());
            assert!(wire == expected, "big_endian {big_endian}: bytes differ");
            for v in &values {
                assert_eq!(v.get_same(to).as_ref(), Ok(v), "big_endian {big_endian}");
            }
            assert_eq!(to.available_bytes(), 0);
            assert_eq!(to.get_u8(), Err(SocketError::Busy), "nothing left: Busy");
        }
    }
}

/// lunanet → Godot: the bytes on the wire are Godot's, for every helper in both
/// byte orders, checked by a plain std socket.
#[test]
fn typed_helpers_write_godot_bytes_on_the_wire() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    for big_endian in [false, true] {
        peer.set_big_endian(big_endian);
        for (v, le, be) in godot_vectors() {
            v.put(&mut peer).unwrap();
            peer.wait_flushed(LONG).unwrap();
            let want = if big_endian { be } else { le };
            let got = read_std(&mut remote, want.len());
            assert_eq!(got, want, "{v:?}, big_endian {big_endian}");
        }
    }
    // The two named in the issue, spelled out.
    peer.set_big_endian(false);
    peer.put_u32(0xDEAD_BEEF).unwrap();
    peer.set_big_endian(true);
    peer.put_u32(0xDEAD_BEEF).unwrap();
    peer.set_big_endian(false);
    peer.put_string("abc").unwrap();
    peer.wait_flushed(LONG).unwrap();
    assert_eq!(
        read_std(&mut remote, 15),
        [
            0xEF, 0xBE, 0xAD, 0xDE, // put_u32 little-endian
            0xDE, 0xAD, 0xBE, 0xEF, // put_u32 big-endian
            0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63, // put_string("abc")
        ]
    );
}

/// Godot → lunanet: a std socket writes Godot's bytes for every helper in both
/// byte orders, lunanet decodes them; plus the getters that have no `put_*`
/// twin (Latin-1 `get_string`, `get_string_len`, `get_utf8_string_len`,
/// `get_utf8_string_lossy`).
#[test]
fn typed_helpers_decode_godot_bytes_from_the_wire() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    for big_endian in [false, true] {
        peer.set_big_endian(big_endian);
        let vectors = godot_vectors();
        let mut all = Vec::new();
        for (_, le, be) in &vectors {
            all.extend(if big_endian { be } else { le });
        }
        remote.write_all(&all).unwrap();
        poll_until(&reactor, "all values", || {
            peer.available_bytes() == all.len()
        });
        for (v, _, _) in &vectors {
            assert_eq!(
                v.get_same(&mut peer).as_ref(),
                Ok(v),
                "big_endian {big_endian}"
            );
        }
        assert_eq!(peer.available_bytes(), 0);
    }

    peer.set_big_endian(false);
    let mut bytes = vec![3, 0, 0, 0, 0x63, 0xE9, 0x00]; // Godot put_data of Latin-1 "cé\0"
    bytes.extend(b"GET"); // get_string(3)
    bytes.extend("日".as_bytes()); // get_utf8_string(3)
    bytes.extend([2, 0, 0, 0, b'a', 0xFF]); // invalid UTF-8
    remote.write_all(&bytes).unwrap();
    poll_until(&reactor, "strings", || {
        peer.available_bytes() == bytes.len()
    });
    assert_eq!(peer.get_string().as_deref(), Ok("c\u{E9}\u{0}"));
    assert_eq!(peer.get_string_len(3).as_deref(), Ok("GET"));
    assert_eq!(peer.get_utf8_string_len(3).as_deref(), Ok("日"));
    assert_eq!(peer.get_utf8_string(), Err(SocketError::InvalidParameter));
    assert_eq!(peer.available_bytes(), 6, "strict UTF-8 consumed nothing");
    assert_eq!(peer.get_utf8_string_lossy().as_deref(), Ok("a\u{FFFD}"));
    assert_eq!(peer.available_bytes(), 0);
}

/// `put_string` of non-ASCII text is refused and puts nothing on the wire;
/// the next value arrives intact.
#[test]
fn a_refused_put_string_sends_nothing_over_tcp() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    assert_eq!(peer.put_string("héllo"), Err(SocketError::InvalidParameter));
    assert_eq!(peer.pending_write_bytes(), 0);
    peer.put_u16(0x0102).unwrap();
    peer.wait_flushed(LONG).unwrap();
    assert_eq!(read_std(&mut remote, 2), [0x02, 0x01]);
}

// ---------------------------------------------------------------------------
// Atomicity over TCP
// ---------------------------------------------------------------------------

/// A u32 whose 4th byte has not arrived is `Busy` and consumes nothing; once
/// the byte arrives the whole value is returned. Both byte orders.
#[test]
fn a_u32_missing_its_fourth_byte_is_busy_and_consumes_nothing() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    for (big_endian, want) in [(false, 0x0403_0201u32), (true, 0x0102_0304)] {
        peer.set_big_endian(big_endian);
        remote.write_all(&[1, 2, 3]).unwrap();
        poll_until(&reactor, "3 bytes", || peer.available_bytes() == 3);
        for _ in 0..3 {
            assert_eq!(peer.get_u32(), Err(SocketError::Busy));
            assert_eq!(peer.get_i32(), Err(SocketError::Busy));
            assert_eq!(peer.get_f32(), Err(SocketError::Busy));
            assert_eq!(peer.get_u64(), Err(SocketError::Busy));
            assert_eq!(peer.available_bytes(), 3, "nothing consumed");
            // More reactor passes with nothing new change nothing.
            reactor.poll(Some(Duration::ZERO)).unwrap();
        }
        remote.write_all(&[4]).unwrap();
        assert_eq!(
            poll_while_busy(&reactor, "the 4th byte", || peer.get_u32()),
            Ok(want)
        );
        assert_eq!(peer.available_bytes(), 0);
    }
}

/// A string whose length prefix arrived but not all its bytes is `Busy` for
/// every string getter and consumes nothing, even when the bytes present end
/// in the middle of a UTF-8 character.
#[test]
fn a_string_with_its_length_but_not_its_bytes_is_busy_and_consumes_nothing() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    for big_endian in [false, true] {
        peer.set_big_endian(big_endian);
        let bytes = V::Utf8("héllo".into()).encode(big_endian); // 4 + 6
        let steps: [&[u8]; 4] = [&bytes[..2], &bytes[2..4], &bytes[4..6], &bytes[6..]];
        let mut sent = 0;
        for step in &steps[..3] {
            remote.write_all(step).unwrap();
            sent += step.len();
            poll_until(&reactor, "partial string", || {
                peer.available_bytes() == sent
            });
            // Prefix half there, prefix only, prefix + "h" + half of "é".
            assert_eq!(peer.get_string(), Err(SocketError::Busy));
            assert_eq!(peer.get_utf8_string(), Err(SocketError::Busy));
            assert_eq!(peer.get_utf8_string_lossy(), Err(SocketError::Busy));
            assert_eq!(peer.available_bytes(), sent, "nothing consumed");
        }
        remote.write_all(steps[3]).unwrap();
        assert_eq!(
            poll_while_busy(&reactor, "the rest of the string", || peer
                .get_utf8_string())
            .as_deref(),
            Ok("héllo")
        );
        assert_eq!(peer.available_bytes(), 0);
    }
}

/// A length prefix announcing more than the peer's read buffer can ever hold
/// is `OutOfBufferMemory` at once (not `Busy` for ever), nothing consumed.
#[test]
fn a_string_longer_than_the_read_buffer_can_hold_is_out_of_buffer_memory() {
    let reactor = reactor_with(Config::default().read_buffer_limit(1024));
    let (mut peer, mut remote) = client_to_std(&reactor);
    remote.write_all(&[0xFD, 0x03, 0, 0, b'a']).unwrap(); // 1021 + 4 > 1024
    poll_until(&reactor, "prefix", || peer.available_bytes() == 5);
    assert_eq!(peer.get_string(), Err(SocketError::OutOfBufferMemory));
    assert_eq!(peer.get_utf8_string(), Err(SocketError::OutOfBufferMemory));
    assert_eq!(peer.available_bytes(), 5);
    // 1020 + 4 fits: just not there yet.
    let mut peer2 = client_to_std(&reactor);
    peer2.1.write_all(&[0xFC, 0x03, 0, 0, b'a']).unwrap();
    poll_until(&reactor, "prefix", || peer2.0.available_bytes() == 5);
    assert_eq!(peer2.0.get_string(), Err(SocketError::Busy));
    peer2.1.write_all(&[b'z'; 1019]).unwrap();
    let s = poll_while_busy(&reactor, "1020 bytes", || peer2.0.get_string()).unwrap();
    assert_eq!(s.len(), 1020);
}

/// The remote closes in the middle of a value: the getter answers `FileEof`
/// (never `Busy` for ever, never a partial value) and consumes nothing; the
/// bytes are still there for `get_partial_data`, and the peer goes `None` only
/// once they are read.
#[test]
fn the_remote_closing_mid_value_is_file_eof_and_consumes_nothing() {
    type Getter = fn(&mut StreamPeerTcp) -> Result<(), SocketError>;
    let cases: [(&str, Vec<u8>, Getter); 7] = [
        ("u32, 3 of 4", vec![4, 3, 2], |p| p.get_u32().map(drop)),
        ("i16, 1 of 2", vec![0xFE], |p| p.get_i16().map(drop)),
        ("u64, 7 of 8", vec![1; 7], |p| p.get_u64().map(drop)),
        ("f64, 4 of 8", vec![0; 4], |p| p.get_f64().map(drop)),
        ("string, half a prefix", vec![3, 0], |p| {
            p.get_string().map(drop)
        }),
        ("string, prefix only", vec![3, 0, 0, 0], |p| {
            p.get_string().map(drop)
        }),
        ("utf8, 2 of 6 bytes", vec![6, 0, 0, 0, 0x68, 0xC3], |p| {
            p.get_utf8_string().map(drop)
        }),
    ];
    let reactor = Reactor::new().unwrap();
    for (what, bytes, get) in cases {
        let (mut peer, mut remote) = client_to_std(&reactor);
        remote.write_all(&bytes).unwrap();
        remote.shutdown(Shutdown::Write).unwrap(); // FIN after the partial value
        let got = poll_while_busy(&reactor, what, || get(&mut peer));
        assert_eq!(got, Err(SocketError::FileEof), "{what}");
        assert_eq!(got, get(&mut peer), "{what}: the same answer again");
        assert_eq!(
            peer.available_bytes(),
            bytes.len(),
            "{what}: nothing consumed"
        );
        assert_eq!(peer.status(), Status::Connected, "{what}: unread data");
        let mut rest = vec![0u8; 16];
        assert_eq!(peer.get_partial_data(&mut rest), Ok(bytes.len()));
        assert_eq!(rest[..bytes.len()], bytes[..], "{what}");
        poll_until(&reactor, "None once read", || peer.status() == Status::None);
        assert_eq!(get(&mut peer), Err(SocketError::FileEof), "{what}");
    }
}

/// `put_*` and `put_packet` are all-or-nothing when the write queue is full:
/// a refused value leaves the queue untouched, and the byte stream the remote
/// receives decodes exactly to the values accepted with `Ok`.
#[test]
fn typed_puts_and_put_packet_are_all_or_nothing_when_the_write_queue_is_full() {
    const LIMIT: usize = 64 * 1024;
    let reactor = reactor_with(Config::default().write_buffer_limit(LIMIT));
    let (mut peer, remote) = client_to_std(&reactor);
    // Fill the kernel (the remote does not read yet) until lunanet queues.
    let chunk = pattern(0, 16 * 1024);
    let mut filler = 0usize;
    let deadline = std::time::Instant::now() + LONG;
    while peer.pending_write_bytes() == 0 {
        assert!(std::time::Instant::now() < deadline, "kernel never filled");
        filler += peer
            .put_partial_data(&chunk[filler % chunk.len()..])
            .unwrap();
    }
    // Fill the queue with u32s until one is refused.
    let mut count = 0u32;
    loop {
        let before = peer.pending_write_bytes();
        match peer.put_u32(count) {
            Ok(()) => count += 1,
            Err(e) => {
                assert_eq!(e, SocketError::OutOfBufferMemory);
                assert_eq!(peer.pending_write_bytes(), before, "nothing queued");
                break;
            }
        }
    }
    let before = peer.pending_write_bytes();
    assert!(LIMIT - before < 4);
    assert_eq!(peer.put_string("abc"), Err(SocketError::OutOfBufferMemory));
    assert_eq!(peer.put_u64(1), Err(SocketError::OutOfBufferMemory));
    {
        let mut pps = PacketPeerStream::new(&mut peer);
        assert_eq!(pps.put_packet(b""), Err(SocketError::OutOfBufferMemory));
    }
    assert_eq!(peer.pending_write_bytes(), before);

    // Drain: the remote reads to the end; lunanet flushes, then closes.
    let reader = std::thread::spawn(move || {
        let mut remote = remote;
        let mut all = Vec::new();
        remote.read_to_end(&mut all).unwrap();
        all
    });
    peer.wait_flushed(LONG).unwrap();
    peer.disconnect_from_host();
    poll_until(&reactor, "closed", || reactor.is_empty());
    let got = reader.join().unwrap();
    let mut want: Vec<u8> = (0..filler).map(|i| chunk[i % chunk.len()]).collect();
    for i in 0..count {
        want.extend(i.to_le_bytes());
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the stream is exactly the accepted values");
}

// ---------------------------------------------------------------------------
// PacketPeerStream over TCP
// ---------------------------------------------------------------------------

/// lunanet `put_packet` puts Godot's frame on the wire: u32 little-endian
/// length (whatever the peer's byte order) + payload; empty packets are a bare
/// header.
#[test]
fn put_packet_writes_the_godot_frame_on_the_wire() {
    let reactor = Reactor::new().unwrap();
    let (peer, mut remote) = client_to_std(&reactor);
    let mut pps = PacketPeerStream::new(peer);
    for big_endian in [false, true] {
        pps.get_mut().set_big_endian(big_endian);
        pps.put_packet(b"abc").unwrap();
        pps.get_mut().wait_flushed(LONG).unwrap();
        assert_eq!(
            read_std(&mut remote, 7),
            [0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63],
            "big_endian {big_endian}"
        );
    }
    pps.put_packet(b"").unwrap();
    pps.put_packet(&[0xAA; 258]).unwrap();
    pps.get_mut().wait_flushed(LONG).unwrap();
    assert_eq!(read_std(&mut remote, 4), [0, 0, 0, 0]);
    let big = read_std(&mut remote, 4 + 258);
    assert_eq!(big[..4], [0x02, 0x01, 0x00, 0x00]);
    assert!(big[4..].iter().all(|&b| b == 0xAA));
}

/// Godot frames written by a std socket are decoded by lunanet, including
/// empty ones, whatever the peer's byte order.
#[test]
fn get_packet_decodes_godot_frames_from_the_wire() {
    let reactor = Reactor::new().unwrap();
    let (mut peer, mut remote) = client_to_std(&reactor);
    peer.set_big_endian(true); // must not matter for frames
    let mut pps = PacketPeerStream::new(peer);
    let mut bytes = vec![0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63];
    bytes.extend([0, 0, 0, 0]);
    bytes.extend(frame(&pattern(7, 258)));
    remote.write_all(&bytes).unwrap();
    assert_eq!(
        poll_while_busy(&reactor, "abc", || pps.get_packet()).as_deref(),
        Ok(&b"abc"[..])
    );
    assert_eq!(
        poll_while_busy(&reactor, "empty", || pps.get_packet()),
        Ok(Vec::new())
    );
    assert_eq!(
        poll_while_busy(&reactor, "258 bytes", || pps.get_packet()),
        Ok(pattern(7, 258))
    );
    assert_eq!(pps.get_packet(), Err(SocketError::Busy));
}

/// Frames arrive one byte per TCP segment with a reactor pass between bytes:
/// no packet is reported before its last byte, each is reported exactly when
/// it completes, and `get_packet` is `Busy` (never an error) in between.
#[test]
fn packet_frames_arriving_byte_by_byte_with_a_reactor_pass_between_bytes() {
    let reactor = Reactor::new().unwrap();
    let (peer, mut remote) = client_to_std(&reactor);
    let mut pps = PacketPeerStream::new(peer);
    let payloads = [b"hello, godot".to_vec(), Vec::new(), pattern(0, 300)];
    let mut wire = Vec::new();
    let mut ends = Vec::new(); // offset just past each frame
    for p in &payloads {
        wire.extend(frame(p));
        ends.push(wire.len());
    }
    let mut delivered_bytes = 0;
    let mut next = 0; // index of the next packet expected
    for (i, byte) in wire.iter().enumerate() {
        remote.write_all(&[*byte]).unwrap();
        let sent = i + 1;
        // Wait until that byte is in lunanet (in the peer or in the pps).
        poll_until(&reactor, "one more byte", || {
            delivered_bytes + pps.buffered_bytes() + pps.get_ref().available_bytes() == sent
        });
        if sent == ends[next] {
            assert_eq!(pps.available_packet_count(), 1, "byte {sent}");
            let p = pps.get_packet().unwrap();
            assert_eq!(p, payloads[next]);
            delivered_bytes += 4 + p.len();
            next += 1;
        } else {
            assert_eq!(pps.available_packet_count(), 0, "byte {sent}");
            assert_eq!(pps.get_packet(), Err(SocketError::Busy), "byte {sent}");
        }
    }
    assert_eq!(next, payloads.len());
    assert_eq!(pps.buffered_bytes(), 0);
}

/// 1000 packets put in one burst (no reactor pass in between) arrive whole,
/// in order; every packet counted by `available_packet_count` can be taken.
#[test]
fn a_burst_of_1000_packets_arrives_whole_and_in_order() {
    let reactor = Reactor::new().unwrap();
    let (client, server) = pair(&reactor);
    let mut tx = PacketPeerStream::new(client);
    let mut rx = PacketPeerStream::new(server);
    let payload = |i: usize| pattern(i, (i % 50) * 3);
    for i in 0..1000 {
        tx.put_packet(&payload(i)).unwrap();
    }
    let mut got = 0;
    let mut packet = Vec::new();
    poll_until(&reactor, "1000 packets", || {
        let n = rx.available_packet_count();
        assert!(n <= 1000 - got);
        for _ in 0..n {
            rx.get_packet_into(&mut packet).unwrap();
            assert_eq!(packet, payload(got), "packet {got}");
            got += 1;
        }
        got == 1000
    });
    assert_eq!(rx.get_packet(), Err(SocketError::Busy));
    assert_eq!(rx.buffered_bytes(), 0);
}

/// 1000 Godot frames written in ONE std write (as a Godot client flushing a
/// frame's worth of messages) are split exactly.
#[test]
fn a_burst_of_1000_godot_frames_in_one_write_is_split_exactly() {
    let reactor = Reactor::new().unwrap();
    let (peer, mut remote) = client_to_std(&reactor);
    let mut rx = PacketPeerStream::new(peer);
    let payload = |i: u32| i.to_le_bytes().repeat(usize::try_from(i % 9).unwrap());
    let mut burst = Vec::new();
    for i in 0..1000 {
        burst.extend(frame(&payload(i)));
    }
    remote.write_all(&burst).unwrap();
    let mut got = 0u32;
    poll_until(&reactor, "1000 frames", || {
        take_packets(&mut rx, |p| {
            assert_eq!(p, payload(got), "packet {got}");
            got += 1;
        });
        got == 1000
    });
    assert_eq!(rx.get_packet(), Err(SocketError::Busy));
}

/// A 50 000-byte frame crosses a peer whose read buffer holds 1024 bytes: the
/// `PacketPeerStream` buffers the frame itself while the reactor keeps
/// reading the peer in 1 KiB steps (backpressure, then resume).
#[test]
fn a_frame_larger_than_the_peers_read_buffer_limit_is_received() {
    const BIG: usize = 50_000;
    let reactor = reactor_with(Config::default().read_buffer_limit(1024));
    let (client, server) = pair(&reactor);
    assert_eq!(server.read_buffer_limit(), 1024);
    let mut tx = PacketPeerStream::with_max_packet_size(client, BIG);
    let mut rx = PacketPeerStream::with_max_packet_size(server, BIG);
    assert_eq!(
        tx.put_packet(&pattern(0, BIG + 1)),
        Err(SocketError::InvalidParameter)
    );
    tx.put_packet(&pattern(0, BIG)).unwrap();
    tx.put_packet(b"after").unwrap();
    let mut packets = Vec::new();
    poll_until(&reactor, "the big frame and the next", || {
        assert!(rx.get_ref().available_bytes() <= 1024);
        assert!(rx.buffered_bytes() <= BIG + 4);
        match rx.get_packet() {
            Ok(p) => packets.push(p),
            Err(e) => assert_eq!(e, SocketError::Busy),
        }
        packets.len() == 2
    });
    assert_eq!(packets[0].len(), BIG);
    assert!(packets[0] == pattern(0, BIG), "payload intact");
    assert_eq!(packets[1], b"after");

    // The raw peer alone could never take it in one get_data.
    let mut peer = rx.into_inner();
    let mut huge = vec![0u8; BIG + 4];
    assert_eq!(
        peer.get_data(&mut huge),
        Err(SocketError::OutOfBufferMemory)
    );
}

/// An oversized header (0xFFFFFFFF, or just one byte over the maximum) is
/// rejected with `OutOfBufferMemory`; the state is sticky (desynchronised)
/// while `put_packet` still works, and another connection in the same reactor
/// keeps exchanging packets before and after.
#[test]
fn an_oversized_header_desynchronises_only_its_own_connection() {
    let reactor = Reactor::new().unwrap();
    let mut server = util::server(&reactor);
    let (mut good_remote, good) = std_to_server(&reactor, &mut server);
    let mut good = PacketPeerStream::new(good);

    let over = u32::try_from(DEFAULT_MAX_PACKET_SIZE + 1).unwrap();
    for header in [u32::MAX, over] {
        let (mut bad_remote, bad) = std_to_server(&reactor, &mut server);
        let mut bad = PacketPeerStream::new(bad);
        let mut bytes = frame(b"ok");
        bytes.extend(header.to_le_bytes());
        bytes.extend(pattern(0, 100)); // start of the "payload"
        bytes.extend(frame(b"hidden")); // never surfaces
        bad_remote.write_all(&bytes).unwrap();
        good_remote.write_all(&frame(b"ping")).unwrap();

        // The frame before the bad header is still delivered.
        assert_eq!(
            poll_while_busy(&reactor, "ok", || bad.get_packet()).as_deref(),
            Ok(&b"ok"[..])
        );
        assert_eq!(
            poll_while_busy(&reactor, "the bad header", || bad.get_packet()),
            Err(SocketError::OutOfBufferMemory),
            "header {header:#x}"
        );
        assert!(bad.is_desynchronized());
        assert_eq!(bad.buffered_bytes(), 0, "buffer freed");
        for _ in 0..3 {
            reactor.poll(Some(Duration::from_millis(1))).unwrap();
            assert_eq!(bad.get_packet(), Err(SocketError::OutOfBufferMemory));
            assert_eq!(bad.available_packet_count(), 0);
        }
        let mut out = vec![9];
        assert_eq!(
            bad.get_packet_into(&mut out),
            Err(SocketError::OutOfBufferMemory)
        );
        assert_eq!(out, [9], "untouched on error");
        // The connection itself is fine: a goodbye can still be sent.
        assert_eq!(bad.get_ref().status(), Status::Connected);
        bad.put_packet(b"bye").unwrap();
        bad.get_mut().wait_flushed(LONG).unwrap();
        assert_eq!(read_std(&mut bad_remote, 7), frame(b"bye"));
        // Closing is the only recovery.
        bad.get_mut().disconnect_from_host();
        assert_eq!(bad.get_ref().status(), Status::None);

        // The other connection never noticed.
        assert_eq!(
            poll_while_busy(&reactor, "ping", || good.get_packet()).as_deref(),
            Ok(&b"ping"[..])
        );
        good.put_packet(b"pong").unwrap();
        good.get_mut().wait_flushed(LONG).unwrap();
        assert_eq!(read_std(&mut good_remote, 8), frame(b"pong"));
    }
    assert!(!good.is_desynchronized());
    assert_eq!(good.get_ref().status(), Status::Connected);
}

/// Empty packets cross TCP as bare headers, are counted, and come back empty,
/// interleaved with non-empty ones.
#[test]
fn zero_length_packets_cross_tcp_and_are_counted() {
    let reactor = Reactor::new().unwrap();
    let (client, server) = pair(&reactor);
    let mut tx = PacketPeerStream::new(client);
    let mut rx = PacketPeerStream::new(server);
    let sent: [&[u8]; 5] = [b"", b"", b"x", b"", b""];
    for p in sent {
        tx.put_packet(p).unwrap();
    }
    poll_until(&reactor, "5 packets", || rx.available_packet_count() == 5);
    assert_eq!(rx.buffered_bytes(), 4 * 5 + 1);
    for (i, p) in sent.iter().enumerate() {
        assert_eq!(rx.available_packet_count(), 5 - i);
        assert_eq!(rx.get_packet().as_deref(), Ok(*p));
    }
    assert_eq!(rx.available_packet_count(), 0);
    assert_eq!(rx.get_packet(), Err(SocketError::Busy));
}

/// `available_packet_count` counts complete frames only: a partial frame is
/// not counted until its last byte arrives, and counting consumes nothing.
#[test]
fn available_packet_count_counts_only_complete_frames() {
    let reactor = Reactor::new().unwrap();
    let (peer, mut remote) = client_to_std(&reactor);
    let mut pps = PacketPeerStream::new(peer);
    assert_eq!(pps.available_packet_count(), 0);
    let third = frame(b"three");
    let mut bytes = frame(b"one");
    bytes.extend(frame(b""));
    bytes.extend(&third[..6]); // header + 2 of 5 payload bytes
    remote.write_all(&bytes).unwrap();
    poll_until(&reactor, "two frames and a half", || {
        pps.available_packet_count() == 2 && pps.buffered_bytes() == bytes.len()
    });
    assert_eq!(pps.available_packet_count(), 2, "counting consumes nothing");
    assert_eq!(pps.get_packet().as_deref(), Ok(&b"one"[..]));
    assert_eq!(pps.available_packet_count(), 1);
    assert_eq!(pps.get_packet().as_deref(), Ok(&b""[..]));
    assert_eq!(pps.available_packet_count(), 0);
    assert_eq!(pps.get_packet(), Err(SocketError::Busy));
    remote.write_all(&third[6..]).unwrap();
    poll_until(&reactor, "the third", || pps.available_packet_count() == 1);
    assert_eq!(pps.get_packet().as_deref(), Ok(&b"three"[..]));
    assert_eq!(pps.available_packet_count(), 0);
}

/// The remote closes in the middle of a frame: the complete frames before it
/// are delivered, then `FileEof` (not `Busy` for ever), and it stays so.
#[test]
fn a_frame_cut_by_the_remote_close_is_file_eof_after_the_complete_ones() {
    let reactor = Reactor::new().unwrap();
    let (peer, mut remote) = client_to_std(&reactor);
    let mut pps = PacketPeerStream::new(peer);
    let mut bytes = frame(b"whole");
    bytes.extend(&frame(b"half")[..5]);
    remote.write_all(&bytes).unwrap();
    drop(remote);
    assert_eq!(
        poll_while_busy(&reactor, "whole", || pps.get_packet()).as_deref(),
        Ok(&b"whole"[..])
    );
    assert_eq!(
        poll_while_busy(&reactor, "end of stream", || pps.get_packet()),
        Err(SocketError::FileEof)
    );
    poll_until(&reactor, "None", || pps.get_ref().status() == Status::None);
    assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
    assert_eq!(pps.available_packet_count(), 0);
}

/// The pattern of `docs/streampeer.md`: a message built with the typed helpers
/// in a `StreamPeerBuffer`, sent as one packet over TCP, decoded on the other
/// side, and a reply the same way.
#[test]
fn a_typed_message_inside_a_packet_round_trips() {
    let reactor = Reactor::new().unwrap();
    let (client, server) = pair(&reactor);
    let mut client = PacketPeerStream::new(client);
    let mut server = PacketPeerStream::new(server);

    let mut msg = StreamPeerBuffer::new();
    msg.put_u16(1).unwrap();
    msg.put_utf8_string("héllo from Godot").unwrap();
    msg.put_f32(0.5).unwrap();
    client.put_packet(msg.data()).unwrap();

    let packet = poll_while_busy(&reactor, "hello", || server.get_packet()).unwrap();
    let mut msg = StreamPeerBuffer::from_vec(packet);
    let kind = msg.get_u16().unwrap();
    let text = msg.get_utf8_string().unwrap();
    assert_eq!(
        (kind, text.as_str(), msg.get_f32()),
        (1, "héllo from Godot", Ok(0.5))
    );
    let mut reply = StreamPeerBuffer::new();
    reply.put_u16(kind).unwrap();
    reply.put_utf8_string(&format!("echo: {text}")).unwrap();
    server.put_packet(reply.data()).unwrap();

    let packet = poll_while_busy(&reactor, "reply", || client.get_packet()).unwrap();
    let mut reply = StreamPeerBuffer::from_vec(packet);
    assert_eq!(reply.get_u16(), Ok(1));
    assert_eq!(
        reply.get_utf8_string().as_deref(),
        Ok("echo: héllo from Godot")
    );
    assert_eq!(reply.get_u8(), Err(SocketError::FileEof));
}

/// Helpers and packets on a peer that never connected (or was disconnected)
/// fail with `SocketInvalid`, not `Busy` for ever.
#[test]
fn helpers_on_an_unconnected_peer_are_socket_invalid() {
    let reactor = Reactor::new().unwrap();
    let mut peer = StreamPeerTcp::new(&reactor);
    assert_eq!(peer.get_u32(), Err(SocketError::SocketInvalid));
    assert_eq!(peer.get_string(), Err(SocketError::SocketInvalid));
    assert_eq!(peer.put_u32(1), Err(SocketError::SocketInvalid));
    assert_eq!(peer.put_string("a"), Err(SocketError::SocketInvalid));
    let mut pps = PacketPeerStream::new(peer);
    assert_eq!(pps.get_packet(), Err(SocketError::SocketInvalid));
    assert_eq!(pps.put_packet(b"a"), Err(SocketError::SocketInvalid));
    assert_eq!(pps.available_packet_count(), 0);

    let (client, _server) = pair(&reactor);
    let mut pps = PacketPeerStream::new(client);
    pps.get_mut().disconnect_from_host();
    assert_eq!(pps.get_packet(), Err(SocketError::SocketInvalid));
    assert_eq!(pps.put_packet(b"a"), Err(SocketError::SocketInvalid));
}

/// Even a read buffer smaller than a frame header (3 bytes) delivers frames:
/// the reactor resumes reading the peer each time the `PacketPeerStream`
/// empties its buffer, without a new readiness event.
#[test]
fn frames_cross_a_read_buffer_smaller_than_their_header() {
    let reactor = reactor_with(Config::default().read_buffer_limit(3));
    let (client, server) = pair(&reactor);
    let mut tx = PacketPeerStream::new(client);
    let mut rx = PacketPeerStream::new(server);
    for i in 0..20 {
        tx.put_packet(&pattern(i, i * 10)).unwrap();
    }
    assert_eq!(rx.get_mut().get_u32(), Err(SocketError::OutOfBufferMemory));
    let mut got = 0;
    poll_until(&reactor, "20 packets through 3 bytes", || {
        assert!(rx.get_ref().available_bytes() <= 3);
        take_packets(&mut rx, |p| {
            assert_eq!(p, pattern(got, got * 10));
            got += 1;
        });
        got == 20
    });
}
