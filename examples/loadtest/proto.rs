//! What goes over the wire, and how every byte of it is checked.
//!
//! Ping-pong and bulk: each peer sends a stream of messages of `--size` bytes.
//! Message `seq` of peer `peer` is a deterministic function of the two: bytes
//! 0..8 are `seq` (little-endian), 8..16 are the peer number and a marker, and
//! the rest is a pattern seeded by both, so an echo that is lost, duplicated,
//! reordered, truncated or delivered to the wrong peer fails the comparison.
//! Any byte range of a message can be generated on its own, so the sender and
//! the checker never keep copies of what was sent.
//!
//! Broadcast: 32-byte records, see [`encode_record`].

/// Bytes of one broadcast record.
pub const RECORD: usize = 32;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(GOLDEN);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Word `j` (bytes `8j..8j+8`) of message `seq` of peer `peer`.
#[inline]
fn word(peer: u32, seq: u64, seed: u64, j: u64) -> u64 {
    match j {
        0 => seq,
        1 => u64::from(peer) | 0x5EED_0000_0000_0000,
        _ => seed ^ j.wrapping_mul(GOLDEN),
    }
}

/// Writes bytes `pos..pos + out.len()` of message `seq` of peer `peer`.
pub fn fill(peer: u32, seq: u64, pos: usize, out: &mut [u8]) {
    let seed = splitmix(seq ^ (u64::from(peer) << 40));
    // Unaligned head, whole words, tail.
    let head = ((8 - pos % 8) % 8).min(out.len());
    let (first, rest) = out.split_at_mut(head);
    if head > 0 {
        let w = word(peer, seq, seed, (pos / 8) as u64).to_le_bytes();
        first.copy_from_slice(&w[pos % 8..pos % 8 + head]);
    }
    let mut j = (pos + head) as u64 / 8;
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word(peer, seq, seed, j).to_le_bytes());
        j += 1;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let w = word(peer, seq, seed, j).to_le_bytes();
        let n = tail.len();
        tail.copy_from_slice(&w[..n]);
    }
}

/// Writes consecutive messages of `size` bytes into `out`, starting at byte
/// `pos` of message `seq`.
pub fn fill_stream(peer: u32, mut seq: u64, mut pos: usize, size: usize, out: &mut [u8]) {
    let mut k = 0;
    while k < out.len() {
        let take = (size - pos).min(out.len() - k);
        fill(peer, seq, pos, &mut out[k..k + take]);
        k += take;
        pos += take;
        if pos == size {
            pos = 0;
            seq += 1;
        }
    }
}

/// One broadcast record, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Tick number (0 = the server's first tick).
    pub tick: u64,
    /// When the tick was scheduled, on the [`Clock`](crate::clock::Clock) scale.
    pub scheduled_ns: u64,
    /// Index of the record in its tick, `0..count`.
    pub index: u32,
    /// Records per tick.
    pub count: u32,
}

fn pattern(tick: u64, index: u32) -> u32 {
    (tick as u32).wrapping_mul(0x9E37_79B1) ^ index.rotate_left(16) ^ 0x00C0_FFEE
}

/// FNV-1a over the first 28 bytes.
fn checksum(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Layout (little-endian): tick u64, scheduled time u64 (ns), index u32,
/// count u32, a pattern derived from tick and index u32, FNV-1a checksum of
/// the 28 bytes before it u32. The same for every peer.
pub fn encode_record(r: Record) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0..8].copy_from_slice(&r.tick.to_le_bytes());
    b[8..16].copy_from_slice(&r.scheduled_ns.to_le_bytes());
    b[16..20].copy_from_slice(&r.index.to_le_bytes());
    b[20..24].copy_from_slice(&r.count.to_le_bytes());
    b[24..28].copy_from_slice(&pattern(r.tick, r.index).to_le_bytes());
    let sum = checksum(&b[..28]);
    b[28..32].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Decodes and checks a record (checksum, pattern, index below count).
pub fn decode_record(b: &[u8]) -> Result<Record, &'static str> {
    if b.len() != RECORD {
        return Err("record of the wrong length");
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    if checksum(&b[..28]) != u32_at(28) {
        return Err("record checksum mismatch");
    }
    let r = Record {
        tick: u64_at(0),
        scheduled_ns: u64_at(8),
        index: u32_at(16),
        count: u32_at(20),
    };
    if pattern(r.tick, r.index) != u32_at(24) {
        return Err("record pattern mismatch");
    }
    if r.index >= r.count {
        return Err("record index out of range");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_agree_with_whole_messages() {
        let mut whole = vec![0u8; 100];
        fill(7, 3, 0, &mut whole);
        for pos in 0..100 {
            for len in 0..(100 - pos).min(20) {
                let mut part = vec![0u8; len];
                fill(7, 3, pos, &mut part);
                assert_eq!(part, &whole[pos..pos + len]);
            }
        }
        let mut other = vec![0u8; 100];
        fill(8, 3, 0, &mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn records_round_trip_and_corruption_is_caught() {
        let r = Record {
            tick: 5,
            scheduled_ns: 123,
            index: 2,
            count: 10,
        };
        let mut b = encode_record(r);
        assert_eq!(decode_record(&b), Ok(r));
        b[3] ^= 1;
        assert!(decode_record(&b).is_err());
    }
}
