//! The encoder: `Variant` -> Godot's binary format, with an explicit stack.

use super::kind::{DICTIONARY, FLAG_64, PACKED_INT32, kind_of};
use super::{
    Color, GodotVersion, MAX_ENCODE_DEPTH, Variant, VariantError, Vector2, Vector3, Vector4,
};

/// A container whose elements are still to be written.
enum Frame<'a> {
    Items(std::slice::Iter<'a, super::Variant>),
    /// The entries (a slice iterator, so that [`scalar_entries`] can hand
    /// over the rest of a dictionary it stopped in), and the value of the
    /// entry whose key was just written.
    Entries(
        std::slice::Iter<'a, (Variant, Variant)>,
        Option<&'a Variant>,
    ),
}

/// Appends the Godot encoding of `value` to `out` (Godot `encode_variant`,
/// `var_to_bytes` without any prefix), as `version` expects it.
///
/// Godot's choices are reproduced byte for byte: an `Int` is 32-bit when it
/// fits and 64-bit (header flag) otherwise; a `Float` is 32-bit when the
/// round trip through `f32` is exact (so NaN is always 64-bit); math types
/// are 32-bit floats (Godot's standard builds); padding is zeroed;
/// containers are untyped, which every 4.x decodes; `Object(id)` is the
/// instance-id form. Nesting is handled with an explicit stack.
///
/// # Errors
///
/// [`VariantError::Unsupported`] when the value has no encoding in
/// `version` (a Godot 4-only type for `V3`, a non-zero `Rid` for `V3`), a
/// string, array or count is 2 GiB or more, or nesting exceeds
/// [`MAX_ENCODE_DEPTH`] (1024, Godot's limit). `out` is left as it was.
///
/// # Example
///
/// ```
/// use lunanet::variant::{self, GodotVersion, Variant};
///
/// let mut out = Vec::new();
/// variant::encode(&Variant::Int(0x1234_5678), GodotVersion::V4, &mut out)?;
/// assert_eq!(out, [2, 0, 0, 0, 0x78, 0x56, 0x34, 0x12]);
///
/// let err = variant::encode(&Variant::Callable, GodotVersion::V3, &mut out);
/// assert!(err.is_err());
/// assert_eq!(out.len(), 8); // untouched
/// # Ok::<(), lunanet::variant::VariantError>(())
/// ```
pub fn encode(
    value: &Variant,
    version: GodotVersion,
    out: &mut Vec<u8>,
) -> Result<(), VariantError> {
    let start = out.len();
    let result = encode_all(value, version, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The encoded size of `value` in bytes (encodes into a scratch buffer).
///
/// ```
/// use lunanet::variant::{self, GodotVersion, Variant};
/// assert_eq!(variant::encoded_len(&Variant::from("hello"), GodotVersion::V4)?, 16);
/// # Ok::<(), lunanet::variant::VariantError>(())
/// ```
pub fn encoded_len(value: &Variant, version: GodotVersion) -> Result<usize, VariantError> {
    let mut scratch = Vec::new();
    encode(value, version, &mut scratch)?;
    Ok(scratch.len())
}

fn encode_all(
    value: &Variant,
    version: GodotVersion,
    out: &mut Vec<u8>,
) -> Result<(), VariantError> {
    let Some(mut current) = write_one(value, version, out, true)? else {
        return Ok(());
    };
    // `current` is the innermost open container (depth `stack.len() + 1`),
    // `stack` its unfinished parents. Keeping the top frame out of the `Vec`
    // saves a `last_mut` per step (the stack-top version measured 59.2k
    // instructions per snapshot against 59.0k, and more for deep nesting).
    let mut stack: Vec<Frame<'_>> = Vec::new();
    loop {
        // May a container opened in `current` be written inline (its depth,
        // `stack.len() + 2`, within the cap)?
        let nest = stack.len() + 2 <= MAX_ENCODE_DEPTH;
        let child = match &mut current {
            Frame::Items(items) => write_items(items, version, out, nest)?,
            Frame::Entries(entries, pending) => {
                write_entries(entries, pending, version, out, nest)?
            }
        };
        match child {
            Some(frame) => {
                if !nest {
                    return Err(VariantError::Unsupported {
                        what: "nesting deeper than 1024 levels",
                        version,
                    });
                }
                stack.push(std::mem::replace(&mut current, frame));
            }
            None => match stack.pop() {
                Some(parent) => current = parent,
                None => return Ok(()),
            },
        }
    }
}

/// Writes array elements until the end (`None`) or one opens a container.
fn write_items<'a>(
    items: &mut std::slice::Iter<'a, Variant>,
    version: GodotVersion,
    out: &mut Vec<u8>,
    nest: bool,
) -> Result<Option<Frame<'a>>, VariantError> {
    loop {
        let rest = items.as_slice();
        let Some(v) = items.next() else {
            return Ok(None);
        };
        if write_scalar(v, version, out) {
            continue;
        }
        // Tested only after the scalars: an array of ints pays nothing.
        let frame = match v {
            Variant::Dictionary(_) if nest => {
                *items = rest.iter();
                scalar_dicts(items, version, out)?
            }
            _ => write_one(v, version, out, nest)?,
        };
        if frame.is_some() {
            return Ok(frame);
        }
    }
}

/// An array's run of dictionaries (the usual snapshot: an array of flat
/// dictionaries), each written here while its entries are scalars: one
/// call for the run rather than `write_one`'s dispatch, or a call with its
/// prologue, per dictionary. Stops before the first element that is not a
/// dictionary (`None`), or returns the frame of the first dictionary with
/// an entry that is not scalar, positioned there.
#[inline(never)]
fn scalar_dicts<'a>(
    items: &mut std::slice::Iter<'a, Variant>,
    version: GodotVersion,
    out: &mut Vec<u8>,
) -> Result<Option<Frame<'a>>, VariantError> {
    let id = DICTIONARY.get(version);
    while let Some(Variant::Dictionary(d)) = items.as_slice().first() {
        items.next();
        let entries = d.entries();
        put_pair(out, id, count(entries.len(), version)?);
        if let Some(frame) = scalar_entries(entries, version, out) {
            return Ok(Some(frame));
        }
    }
    Ok(None)
}

/// Writes dictionary entries until the end (`None`) or a key or value opens
/// a container; `pending` holds the value still to write after a key did.
fn write_entries<'a>(
    entries: &mut std::slice::Iter<'a, (Variant, Variant)>,
    pending: &mut Option<&'a Variant>,
    version: GodotVersion,
    out: &mut Vec<u8>,
    nest: bool,
) -> Result<Option<Frame<'a>>, VariantError> {
    if let Some(v) = pending.take()
        && let Some(frame) = write_one(v, version, out, nest)?
    {
        return Ok(Some(frame));
    }
    for (k, v) in entries {
        if !write_scalar(k, version, out)
            && let Some(frame) = write_one(k, version, out, nest)?
        {
            *pending = Some(v);
            return Ok(Some(frame));
        }
        if !write_scalar(v, version, out)
            && let Some(frame) = write_one(v, version, out, nest)?
        {
            return Ok(Some(frame));
        }
    }
    Ok(None)
}

/// A dictionary's entries written inline while they are scalars (the usual
/// game record: an array of flat dictionaries then needs no frame per
/// dictionary); `None` when all were, else the frame of the rest, which the
/// general loop finishes.
#[inline(always)]
fn scalar_entries<'a>(
    entries: &'a [(Variant, Variant)],
    version: GodotVersion,
    out: &mut Vec<u8>,
) -> Option<Frame<'a>> {
    for (i, (k, v)) in entries.iter().enumerate() {
        // Keys are nearly always strings: tested first, before the general
        // dispatch (a jump table).
        let key_done = match k {
            Variant::String(s) => put_short_str(out, 4, s),
            _ => write_scalar(k, version, out),
        };
        if !key_done {
            return Some(Frame::Entries(entries[i..].iter(), None));
        }
        if !write_scalar(v, version, out) {
            return Some(Frame::Entries(entries[i + 1..].iter(), Some(v)));
        }
    }
    None
}

/// An array's elements written inline while they are scalars (a small
/// array of numbers then needs no frame); `None` when all were, else the
/// frame of the rest, which the general loop finishes.
#[inline(always)]
fn scalar_items<'a>(
    items: &'a [Variant],
    version: GodotVersion,
    out: &mut Vec<u8>,
) -> Option<Frame<'a>> {
    for (i, v) in items.iter().enumerate() {
        if !write_scalar(v, version, out) {
            return Some(Frame::Items(items[i..].iter()));
        }
    }
    None
}

/// The usual game values, written inline in the element loops: an int
/// that fits 32 bits, a float exact in 32 bits, a short `String`, a
/// `Vector2`, a bool, nil (ids 0 to 5, the same in Godot 3 and 4), a
/// `PackedInt32Array`. Returns `false`, writing nothing, for anything else
/// (left to [`write_one`], which writes the same bytes).
#[inline(always)]
fn write_scalar(value: &Variant, version: GodotVersion, out: &mut Vec<u8>) -> bool {
    match value {
        Variant::Int(i) => match i32::try_from(*i) {
            Ok(small) => {
                put_pair(out, 2, small.to_le_bytes());
                true
            }
            Err(_) => false,
        },
        Variant::Float(f) => {
            let narrow = *f as f32;
            if f64::from(narrow) == *f {
                put_pair(out, 3, narrow.to_le_bytes());
                true
            } else {
                false
            }
        }
        Variant::String(s) => put_short_str(out, 4, s),
        Variant::Vector2(v) => {
            put_vector2(out, 5, v);
            true
        }
        Variant::Bool(b) => {
            put_pair(out, 1, u32::from(*b).to_le_bytes());
            true
        }
        Variant::Nil => {
            put_u32(out, 0);
            true
        }
        Variant::PackedInt32Array(v) if v.len() <= i32::MAX as usize => {
            put_packed_i32(out, PACKED_INT32.get(version), v);
            true
        }
        _ => false,
    }
}

/// A `PackedInt32Array`: header, count and elements (count checked by the
/// caller). One call from the element loops, out of line: inlined, its loop
/// cost the loops registers (68.4k -> 69.7k instructions per snapshot).
#[inline(never)]
fn put_packed_i32(out: &mut Vec<u8>, id: u32, v: &[i32]) {
    put_pair(out, id, (v.len() as u32).to_le_bytes());
    write_i32s(out, v);
}

#[inline(always)]
fn put_vector2(out: &mut Vec<u8>, id: u32, v: &Vector2) {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&id.to_le_bytes());
    b[4..8].copy_from_slice(&v.x.to_le_bytes());
    b[8..].copy_from_slice(&v.y.to_le_bytes());
    out.extend_from_slice(&b);
}

fn unsupported(what: &'static str, version: GodotVersion) -> VariantError {
    VariantError::Unsupported { what, version }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_f32(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_count(out: &mut Vec<u8>, n: usize, version: GodotVersion) -> Result<(), VariantError> {
    put_u32(out, u32::from_le_bytes(count(n, version)?));
    Ok(())
}

/// A count or length as Godot reads it: signed 32-bit.
#[inline(always)]
fn count(n: usize, version: GodotVersion) -> Result<[u8; 4], VariantError> {
    match u32::try_from(n) {
        Ok(n) if n <= i32::MAX as u32 => Ok(n.to_le_bytes()),
        _ => Err(unsupported("a length of 2 GiB or more", version)),
    }
}

/// Zero padding to 4 after `len` bytes (three zeros written, the extra cut:
/// fixed-size copies, no `memset` call for 0 to 3 bytes).
fn pad(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&[0u8; 3]);
    out.truncate(out.len() - 3 + (len.wrapping_neg() & 3));
}

/// The string block: u32 byte length, UTF-8 bytes, zero padding to 4.
fn put_str(out: &mut Vec<u8>, s: &str, version: GodotVersion) -> Result<(), VariantError> {
    check_text(s, version)?;
    out.reserve(s.len() + 8);
    put_count(out, s.len(), version)?;
    out.extend_from_slice(s.as_bytes());
    pad(out, s.len());
    Ok(())
}

/// Godot strings cannot hold NUL (its decoder stops there) and its decoder
/// drops a leading byte-order mark: such text would arrive changed, so it is
/// refused rather than silently altered.
fn check_text(s: &str, version: GodotVersion) -> Result<(), VariantError> {
    if s.starts_with('\u{feff}') {
        return Err(unsupported(
            "a string starting with U+FEFF (Godot drops it)",
            version,
        ));
    }
    // A plain loop for the usual short string beats `memchr`'s setup.
    let nul = if s.len() <= 32 {
        s.bytes().any(|b| b == 0)
    } else {
        s.as_bytes().contains(&0)
    };
    if nul {
        return Err(unsupported(
            "a string containing NUL (Godot cuts it there)",
            version,
        ));
    }
    Ok(())
}

fn put_v2(out: &mut Vec<u8>, v: Vector2) {
    put_f32(out, v.x);
    put_f32(out, v.y);
}

fn put_v3(out: &mut Vec<u8>, v: Vector3) {
    put_f32(out, v.x);
    put_f32(out, v.y);
    put_f32(out, v.z);
}

fn put_v4(out: &mut Vec<u8>, v: Vector4) {
    for f in [v.x, v.y, v.z, v.w] {
        put_f32(out, f);
    }
}

fn put_color(out: &mut Vec<u8>, c: Color) {
    for f in [c.r, c.g, c.b, c.a] {
        put_f32(out, f);
    }
}

fn put_i32s(out: &mut Vec<u8>, v: &[i32]) {
    out.reserve(v.len() * 4);
    write_i32s(out, v);
}

/// `v` little-endian: eight, then four at a time (one fixed-size append
/// each), then one by one. No `reserve`: for the usual short array the
/// appends' own checks are cheaper.
#[inline(always)]
fn write_i32s(out: &mut Vec<u8>, v: &[i32]) {
    let rest = write_i32_blocks::<8>(out, v);
    let rest = write_i32_blocks::<4>(out, rest);
    for i in rest {
        out.extend_from_slice(&i.to_le_bytes());
    }
}

/// Appends `v`'s whole blocks of `N` (at most 8) and returns the rest.
#[inline(always)]
fn write_i32_blocks<'v, const N: usize>(out: &mut Vec<u8>, v: &'v [i32]) -> &'v [i32] {
    let (blocks, rest) = v.as_chunks::<N>();
    for c in blocks {
        let mut b = [0u8; 32];
        for (d, i) in b.chunks_exact_mut(4).zip(c) {
            d.copy_from_slice(&i.to_le_bytes());
        }
        out.extend_from_slice(&b[..N * 4]);
    }
    rest
}

/// A header and a 4-byte payload in one 8-byte append.
#[inline(always)]
fn put_pair(out: &mut Vec<u8>, id: u32, payload: [u8; 4]) {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&id.to_le_bytes());
    b[4..].copy_from_slice(&payload);
    out.extend_from_slice(&b);
}

/// The usual short string (dictionary keys, names) with its header in one
/// fixed-size append, cut to length: header, length, up to 24 bytes of
/// text, zero padding. Returns `false`, writing nothing, for a longer text
/// or one [`check_text`] must refuse (left to the general path).
///
/// The text is read with a few fixed-size loads, overlapping at the end
/// (never a loop or a `memcpy` call, which cost more than the rest): the
/// words to write are zero padded, while the words for the NUL test hold
/// only text (the overlap) or 0x01 filler, so the classic zero-byte test on
/// them is exact.
#[inline(always)]
fn put_short_str(out: &mut Vec<u8>, id: u32, s: &str) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let text = s.as_bytes();
    let len = text.len();
    let (w, nul) = if len < 8 {
        if len >= 4 {
            let lo = u64::from(u32::from_le_bytes([text[0], text[1], text[2], text[3]]));
            let hi = u64::from(u32::from_le_bytes([
                text[len - 4],
                text[len - 3],
                text[len - 2],
                text[len - 1],
            ]));
            ([lo | hi << (8 * (len - 4)), 0, 0], zero(lo | hi << 32))
        } else if len >= 2 {
            let lo = u64::from(u16::from_le_bytes([text[0], text[1]]));
            let hi = u64::from(u16::from_le_bytes([text[len - 2], text[len - 1]]));
            let test = lo | hi << 16 | LO << 32;
            ([lo | hi << (8 * (len - 2)), 0, 0], zero(test))
        } else if len == 1 {
            let c = u64::from(text[0]);
            ([c, 0, 0], zero(c | LO << 8))
        } else {
            ([0; 3], 0)
        }
    } else if len <= 24 {
        let word = |i: usize| {
            let c = &text[i..i + 8];
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        };
        let first = word(0);
        // The last eight bytes; shifted, the 0 to 7 after the last whole word.
        let last = word(len - 8);
        let tail = last.checked_shr(64 - 8 * (len % 8) as u32).unwrap_or(0);
        if len < 16 {
            ([first, tail, 0], zero(first) | zero(last))
        } else {
            let second = word(8);
            let nul = zero(first) | zero(second) | zero(last);
            if len < 24 {
                ([first, second, tail], nul)
            } else {
                ([first, second, last], nul)
            }
        }
    } else {
        return false;
    };
    // A leading byte-order mark (EF BB BF); padding zeros cannot match it.
    if nul != 0 || w[0] & 0xFF_FFFF == 0xBF_BBEF {
        return false;
    }
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&id.to_le_bytes());
    b[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    b[8..16].copy_from_slice(&w[0].to_le_bytes());
    b[16..24].copy_from_slice(&w[1].to_le_bytes());
    b[24..].copy_from_slice(&w[2].to_le_bytes());
    let start = out.len();
    out.extend_from_slice(&b);
    out.truncate(start + ((len + 11) & !3));
    true
}

/// Writes one value; for a non-empty container, writes its header and count
/// and returns the frame of its elements. With `nest` (the container is
/// within the depth cap) a dictionary's or array's leading scalar elements
/// are written here too, and the frame, if any, holds the rest; without it
/// the frame holds them all, for the caller to refuse.
fn write_one<'a>(
    value: &'a Variant,
    version: GodotVersion,
    out: &mut Vec<u8>,
    nest: bool,
) -> Result<Option<Frame<'a>>, VariantError> {
    let kind = kind_of(value);
    let id = kind
        .id(version)
        .ok_or_else(|| unsupported(kind.name(), version))?;
    match value {
        Variant::Nil | Variant::Callable => put_u32(out, id),
        Variant::Bool(b) => {
            put_u32(out, id);
            put_u32(out, u32::from(*b));
        }
        Variant::Int(i) => match i32::try_from(*i) {
            Ok(small) => put_pair(out, id, small.to_le_bytes()),
            Err(_) => {
                put_u32(out, id | FLAG_64);
                out.extend_from_slice(&i.to_le_bytes());
            }
        },
        Variant::Float(f) => {
            let narrow = *f as f32;
            // Godot's rule: 32-bit iff the f32 round trip compares equal
            // (NaN never does, so it is always 64-bit).
            if f64::from(narrow) == *f {
                put_pair(out, id, narrow.to_le_bytes());
            } else {
                put_u32(out, id | FLAG_64);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Variant::String(s) | Variant::StringName(s) => {
            if !put_short_str(out, id, s) {
                put_u32(out, id);
                put_str(out, s, version)?;
            }
        }
        Variant::Vector2(v) => put_vector2(out, id, v),
        Variant::Vector2i(v) => {
            put_u32(out, id);
            put_i32s(out, &[v.x, v.y]);
        }
        Variant::Rect2(r) => {
            put_u32(out, id);
            put_v2(out, r.position);
            put_v2(out, r.size);
        }
        Variant::Rect2i(r) => {
            put_u32(out, id);
            put_i32s(out, &[r.position.x, r.position.y, r.size.x, r.size.y]);
        }
        Variant::Vector3(v) => {
            put_u32(out, id);
            put_v3(out, *v);
        }
        Variant::Vector3i(v) => {
            put_u32(out, id);
            put_i32s(out, &[v.x, v.y, v.z]);
        }
        Variant::Transform2D(t) => {
            put_u32(out, id);
            put_v2(out, t.x);
            put_v2(out, t.y);
            put_v2(out, t.origin);
        }
        Variant::Vector4(v) => {
            put_u32(out, id);
            put_v4(out, *v);
        }
        Variant::Vector4i(v) => {
            put_u32(out, id);
            put_i32s(out, &[v.x, v.y, v.z, v.w]);
        }
        Variant::Plane(p) => {
            put_u32(out, id);
            put_v3(out, p.normal);
            put_f32(out, p.d);
        }
        Variant::Quaternion(q) => {
            put_u32(out, id);
            for f in [q.x, q.y, q.z, q.w] {
                put_f32(out, f);
            }
        }
        Variant::Aabb(a) => {
            put_u32(out, id);
            put_v3(out, a.position);
            put_v3(out, a.size);
        }
        Variant::Basis(b) => {
            put_u32(out, id);
            for row in b.rows {
                put_v3(out, row);
            }
        }
        Variant::Transform3D(t) => {
            put_u32(out, id);
            for row in t.basis.rows {
                put_v3(out, row);
            }
            put_v3(out, t.origin);
        }
        Variant::Projection(p) => {
            put_u32(out, id);
            for col in p.columns {
                put_v4(out, col);
            }
        }
        Variant::Color(c) => {
            put_u32(out, id);
            put_color(out, *c);
        }
        Variant::NodePath(p) => {
            put_u32(out, id);
            let names = u32::try_from(p.names.len())
                .ok()
                .filter(|&n| n <= i32::MAX as u32)
                .ok_or(unsupported("a NodePath with 2^31 names", version))?;
            put_u32(out, names | 0x8000_0000);
            put_count(out, p.subnames.len(), version)?;
            put_u32(out, u32::from(p.absolute));
            for s in p.names.iter().chain(&p.subnames) {
                put_str(out, s, version)?;
            }
        }
        Variant::Rid(rid) => {
            put_u32(out, id);
            match version {
                GodotVersion::V4 => out.extend_from_slice(&rid.to_le_bytes()),
                // Godot 3 RIDs carry no payload: only the empty RID survives.
                GodotVersion::V3 if *rid == 0 => {}
                GodotVersion::V3 => return Err(unsupported("a RID with an id", version)),
            }
        }
        Variant::Object(oid) => {
            put_u32(out, id | FLAG_64);
            out.extend_from_slice(&oid.to_le_bytes());
        }
        Variant::Signal(s) => {
            put_u32(out, id);
            put_str(out, &s.name, version)?;
            out.extend_from_slice(&s.object.to_le_bytes());
        }
        Variant::Dictionary(d) => {
            let entries = d.entries();
            put_u32(out, id);
            put_count(out, entries.len(), version)?;
            if !entries.is_empty() {
                // Too deep: the frame makes the caller refuse it.
                if !nest {
                    return Ok(Some(Frame::Entries(entries.iter(), None)));
                }
                return Ok(scalar_entries(entries, version, out));
            }
        }
        Variant::Array(a) => {
            put_pair(out, id, count(a.len(), version)?);
            if !a.is_empty() {
                // Too deep: the frame makes the caller refuse it. An array
                // of containers goes to the general loop without trying its
                // first element as a scalar twice.
                if !nest || matches!(a[0], Variant::Array(_) | Variant::Dictionary(_)) {
                    return Ok(Some(Frame::Items(a.iter())));
                }
                return Ok(scalar_items(a, version, out));
            }
        }
        Variant::PackedByteArray(b) => {
            put_u32(out, id);
            put_count(out, b.len(), version)?;
            out.extend_from_slice(b);
            pad(out, b.len());
        }
        Variant::PackedInt32Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            put_i32s(out, v);
        }
        Variant::PackedInt64Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for i in v {
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
        Variant::PackedFloat32Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for f in v {
                put_f32(out, *f);
            }
        }
        Variant::PackedFloat64Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for f in v {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Variant::PackedStringArray(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for s in v {
                check_text(s, version)?;
                // Godot counts and writes a NUL terminator here.
                put_count(out, s.len() + 1, version)?;
                out.extend_from_slice(s.as_bytes());
                out.push(0);
                pad(out, s.len() + 1);
            }
        }
        Variant::PackedVector2Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for x in v {
                put_v2(out, *x);
            }
        }
        Variant::PackedVector3Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for x in v {
                put_v3(out, *x);
            }
        }
        Variant::PackedColorArray(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for x in v {
                put_color(out, *x);
            }
        }
        Variant::PackedVector4Array(v) => {
            put_u32(out, id);
            put_count(out, v.len(), version)?;
            for x in v {
                put_v4(out, *x);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    //! The element loops' fast paths (a run of dictionaries in an array, the
    //! entries of a dictionary while scalar) against the general ones.

    use super::super::{Dictionary, Limits, NodePath, Vector2i, decode};
    use super::*;
    use crate::{varray, vdict};

    fn enc(v: &Variant, version: GodotVersion) -> Result<Vec<u8>, VariantError> {
        let mut out = vec![0xAA; 3];
        let r = encode(v, version, &mut out);
        match r {
            Ok(()) => Ok(out.split_off(3)),
            Err(e) => {
                assert_eq!(out, [0xAA; 3], "out left as it was on error");
                Err(e)
            }
        }
    }

    /// Dictionaries whose entries stop being scalar at every place: a
    /// container key or value, a 64-bit int, a long string, a float that
    /// needs 64 bits, a NodePath.
    fn mixed_dicts() -> Vec<Variant> {
        let long = "a fairly long string, longer than 24 bytes";
        vec![
            vdict! {},
            vdict! { "id" => 1, "name" => "p", "pos" => Vector2::new(1.0, 2.0) },
            vdict! { "hp" => 0.5, "inv" => vec![1i32, 2, 3, 4, 5, 6, 7, 8, 9], "x" => 1 },
            vdict! { "a" => varray![1, "b"], "c" => 2 },
            vdict! { varray![1] => "k", "after" => true },
            vdict! { "big" => 1i64 << 40, "nan" => f64::NAN, "s" => long, long => 0.1 },
            vdict! { "nested" => vdict! { "in" => vdict! { "deep" => 1 } }, "t" => Variant::Nil },
            vdict! { 7 => Variant::Nil, false => vec![0i32; 40], "e" => Vec::<i32>::new() },
            vdict! { "node" => NodePath::parse("a/b:c"), "last" => "" },
        ]
    }

    #[test]
    fn a_run_of_dictionaries_encodes_as_each_dictionary_alone() {
        let dicts = mixed_dicts();
        for version in [GodotVersion::V3, GodotVersion::V4] {
            // Every run length and position of a non-dictionary between.
            for cut in 0..=dicts.len() {
                let mut items = dicts.clone();
                items.insert(cut, Variant::from(42));
                let array = Variant::Array(items.clone().into());
                let bytes = enc(&array, version).unwrap();
                let mut want = enc(&Variant::Array(Vec::new().into()), version).unwrap();
                want[4..].copy_from_slice(&(items.len() as u32).to_le_bytes());
                for item in &items {
                    want.extend(enc(item, version).unwrap());
                }
                assert_eq!(bytes, want, "{version:?} {cut}");
                let (back, used) = decode(&bytes, version, &Limits::default()).unwrap();
                assert_eq!((back, used), (array, bytes.len()), "{version:?} {cut}");
            }
        }
    }

    #[test]
    fn errors_in_a_run_of_dictionaries_leave_out_untouched() {
        let refused = [
            vdict! { "k" => "nul\0" },
            vdict! { "nul\0" => 1 },
            vdict! { "\u{feff}bom" => 1 },
            vdict! { "k" => "a long text with a NUL \0 past the short path" },
            vdict! { "k" => Vector2i::new(1, 2) },
            vdict! { "k" => varray![Vector2i::new(1, 2)] },
        ];
        for bad in refused {
            let array = varray![vdict! { "ok" => 1 }, vdict! { "ok" => 2, "bad" => bad }];
            assert!(enc(&array, GodotVersion::V3).is_err(), "{array:?}");
        }
        assert!(enc(&varray![vdict! { "k" => "nul\0" }], GodotVersion::V4).is_err());
        assert!(enc(&varray![vdict! { "\u{feff}" => 1 }], GodotVersion::V4).is_err());
    }

    #[test]
    fn depth_cap_counts_dictionaries_written_in_the_array_loop() {
        // 1023 arrays around a non-empty dictionary: 1024 levels, allowed;
        // one more array: refused. An empty dictionary opens no level.
        for (inner, levels_ok) in [(vdict! { "a" => 1 }, true), (vdict! {}, false)] {
            let mut v = inner;
            for _ in 0..MAX_ENCODE_DEPTH - 1 {
                v = varray![v];
            }
            assert!(enc(&v, GodotVersion::V4).is_ok());
            let v = varray![v];
            assert_eq!(enc(&v, GodotVersion::V4).is_ok(), !levels_ok);
        }
    }

    #[test]
    fn dictionary_keys_of_every_short_length_match_the_general_path() {
        for len in 0..=30 {
            let key: String = ('a'..='z').cycle().take(len).collect();
            let mut d = Dictionary::new();
            d.insert(key.as_str(), len as i64);
            let got = enc(&varray![Variant::Dictionary(d)], GodotVersion::V4).unwrap();
            let mut want = vec![28, 0, 0, 0, 1, 0, 0, 0, 27, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0];
            want.extend((len as u32).to_le_bytes());
            want.extend(key.as_bytes());
            want.resize(want.len() + (4 - len % 4) % 4, 0);
            want.extend([2, 0, 0, 0, len as u8, 0, 0, 0]);
            assert_eq!(got, want, "{len}");
        }
    }
}
