//! The decoder: Godot's binary format -> `Variant`, with an explicit stack and
//! every length checked against the bytes present before use.

use super::kind::{ARRAY, DICTIONARY, Kind, PACKED_INT32};
use super::leaf::{leaf, packed_i32s};
use super::reader::Reader;
use super::shapes::{Shapes, matching_in};
use super::{Array, CompactString, Dictionary, GodotVersion, Limits, Variant, VariantError};

/// Most elements reserved up front for a container, whatever its count: the
/// rest grows with elements actually decoded, so memory follows real bytes.
pub(super) const MAX_PREALLOC: usize = 1024;

/// A container whose elements are being decoded.
enum Frame {
    Array {
        items: Array,
        left: usize,
    },
    Dict {
        map: Dictionary,
        left: usize,
        /// Whether this dictionary's next key is decoded and waits, on
        /// the decoder's stack of pending keys, for its value (a container
        /// being decoded above this frame). Kept out of the frame, which
        /// stays small to move.
        has_key: bool,
        /// Whether every key so far was new and is remembered in
        /// [`Shapes`] at this level, in order (so `map.len()` is the index
        /// of the next key there).
        synced: bool,
    },
}

/// Tracks [`Limits::max_elements`]: values are reserved as soon as a count
/// announces them, before anything is allocated for them.
pub(super) struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    pub(super) fn reserve(&mut self, n: usize, offset: usize) -> Result<(), VariantError> {
        match self.used.checked_add(n) {
            Some(total) if total <= self.max => {
                self.used = total;
                Ok(())
            }
            _ => Err(VariantError::LimitExceeded {
                limit: "max_elements",
                max: self.max,
                offset,
            }),
        }
    }
}

/// Decodes one value from the start of `bytes` (Godot `decode_variant` /
/// `bytes_to_var` with `allow_objects = false`) and returns it with the
/// number of bytes it took. Trailing bytes are ignored, as Godot does.
///
/// - Accepts what every Godot of `version` sends: 64-bit ints and floats,
///   64-bit math types from Godot 4 double builds (narrowed to `f32`),
///   NodePaths, object ids (`Object(id)`), 4.3+ typed arrays and 4.4+ typed
///   dictionaries (decoded as untyped: the element-type constraint is
///   dropped), padding with any content.
/// - Refuses full objects ([`VariantError::FullObject`]), unknown type ids,
///   invalid UTF-8, and input past [`Limits`].
/// - Safe on any input: no panic, no recursion (an explicit stack), and no
///   allocation sized by a count before that count is checked against the
///   bytes present and the element budget.
///
/// The returned length is at most `bytes.len()` (a top-level
/// `PackedByteArray` may omit its final padding, which Godot accepts).
///
/// # Errors
///
/// A [`VariantError`] naming the type id, the offset and, for limits, which
/// one. Nothing is returned partially.
///
/// # Example
///
/// ```
/// use lunanet::variant::{self, GodotVersion, Limits, Variant, VariantError};
///
/// let bytes = [4, 0, 0, 0, 5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o', 0, 0, 0, 0xAA];
/// let (v, used) = variant::decode(&bytes, GodotVersion::V4, &Limits::default())?;
/// assert_eq!((v, used), (Variant::from("hello"), 16));
///
/// let short = variant::decode(&bytes[..10], GodotVersion::V4, &Limits::default());
/// assert!(matches!(short, Err(VariantError::Truncated { what: "string", offset: 8, .. })));
/// # Ok::<(), VariantError>(())
/// ```
pub fn decode(
    bytes: &[u8],
    version: GodotVersion,
    limits: &Limits,
) -> Result<(Variant, usize), VariantError> {
    let mut r = Reader::new(bytes, limits.max_bytes);
    let mut budget = Budget {
        used: 0,
        max: limits.max_elements,
    };
    budget.reserve(1, 0)?;
    let mut stack: Vec<Frame> = Vec::new();
    // The keys whose value is a container still being decoded: at most one
    // per open dictionary, in stack order.
    let mut keys: Vec<Variant> = Vec::new();
    let mut shapes = Shapes::default();
    let mut opened = match item(&mut r, version, &mut budget)? {
        Item::Value(v) => return Ok((v, r.pos.min(bytes.len()))),
        Item::Open(frame) => frame,
    };
    let mut ctx = Ctx {
        r: &mut r,
        version,
        max_depth: limits.max_depth,
        budget: &mut budget,
        shapes: &mut shapes,
        keys: &mut keys,
    };
    loop {
        // A non-empty container was opened, one level below the stack's
        // top. It is filled before it is pushed: the usual one (a flat
        // dictionary in an array) completes at once and never goes on the
        // stack.
        let level = stack.len() + 1;
        if level > limits.max_depth {
            return Err(VariantError::LimitExceeded {
                limit: "max_depth",
                max: limits.max_depth,
                offset: ctx.r.pos,
            });
        }
        if let Some(child) = fill(&mut ctx, &mut opened, level)? {
            stack.push(opened);
            opened = child;
            continue;
        }
        // Complete: hand it to its container, and go on filling that one,
        // as far up as they complete, until one opens a container.
        let mut value = opened.into_value();
        opened = loop {
            let level = stack.len();
            let Some(top) = stack.last_mut() else {
                return Ok((value, ctx.r.pos.min(bytes.len())));
            };
            match top {
                // Its `left` was counted down when it opened.
                Frame::Array { items, .. } => items.push(value),
                Frame::Dict {
                    map, left, has_key, ..
                } => {
                    if std::mem::take(has_key) {
                        let Some(k) = ctx.keys.pop() else {
                            return Err(unreachable_frame());
                        };
                        map.insert(k, value);
                        *left -= 1;
                    } else {
                        ctx.keys.push(value);
                        *has_key = true;
                    }
                }
            }
            if let Some(child) = fill(&mut ctx, top, level)? {
                break child;
            }
            value = match stack.pop() {
                Some(frame) => frame.into_value(),
                None => return Err(unreachable_frame()),
            };
        };
    }
}

/// The decoder's state that every container's filling uses.
struct Ctx<'c, 'a> {
    r: &'c mut Reader<'a>,
    version: GodotVersion,
    max_depth: usize,
    budget: &'c mut Budget,
    shapes: &'c mut Shapes<'a>,
    keys: &'c mut Vec<Variant>,
}

impl Frame {
    fn into_value(self) -> Variant {
        match self {
            Frame::Array { items, .. } => Variant::Array(items),
            Frame::Dict { map, .. } => Variant::Dictionary(map),
        }
    }
}

/// Decodes elements into `frame` (at nesting `level`) until it is complete
/// (`None`) or one of them opens a container (returned).
#[inline(always)]
fn fill(
    ctx: &mut Ctx<'_, '_>,
    frame: &mut Frame,
    level: usize,
) -> Result<Option<Frame>, VariantError> {
    match frame {
        Frame::Array { items, left } => fill_array(ctx, items, left, level),
        Frame::Dict {
            map,
            left,
            has_key,
            synced,
        } => {
            let dict = DictState {
                map,
                left,
                has_key,
                synced,
                level,
            };
            fill_dict(ctx.r, ctx.version, ctx.budget, ctx.shapes, ctx.keys, dict)
        }
    }
}

/// One value read at the cursor: a finished value, or a non-empty container
/// whose elements follow.
enum Item {
    Value(Variant),
    Open(Frame),
}

/// Reads one value; a non-empty container is returned open, its count
/// checked against the bytes present and charged to the budget.
///
/// The usual game values are read here, inlined into the element loops,
/// without the type table: ids 2 to 5 (int, float, String, Vector2) are the
/// same in Godot 3 and 4, and these headers carry no flag.
#[inline(always)]
fn item(
    r: &mut Reader<'_>,
    version: GodotVersion,
    budget: &mut Budget,
) -> Result<Item, VariantError> {
    let offset = r.pos;
    let header = r.u32("Variant header")?;
    match header {
        2 => Ok(Item::Value(Variant::Int(r.i32("int")?.into()))),
        3 => Ok(Item::Value(Variant::Float(r.f32()?.into()))),
        4 => {
            let s = CompactString::new(r.str_block()?);
            Ok(Item::Value(Variant::String(s)))
        }
        5 => Ok(Item::Value(Variant::Vector2(r.vector2(false)?))),
        // PackedInt32Array (Godot 3's PoolIntArray): inventories, ids.
        h if h == PACKED_INT32.get(version) => Ok(Item::Value(packed_i32s(r)?)),
        // Untyped containers (no flag: what every Godot sends unless a
        // typed container is encoded).
        h if h == DICTIONARY.get(version) => open_dictionary(r, offset, budget),
        h if h == ARRAY.get(version) => open_array(r, offset, budget),
        _ => item_by_type(r, header, offset, version, budget),
    }
}

/// An `Array` after its header (and any element-type block): its count,
/// checked against the bytes present and charged to the budget.
#[inline(always)]
fn open_array(
    r: &mut Reader<'_>,
    offset: usize,
    budget: &mut Budget,
) -> Result<Item, VariantError> {
    // Every element takes at least 4 bytes (a header) and is one value.
    let count = checked_count(r, 4, 1, "Array elements", offset, budget)?;
    if count == 0 {
        return Ok(Item::Value(Variant::Array(Array::new())));
    }
    Ok(Item::Open(Frame::Array {
        items: Array::with_capacity(count.min(MAX_PREALLOC)),
        left: count,
    }))
}

/// A container's count, checked against the bytes present (`min_bytes` per
/// element) and charged to the budget (`values` per element) before anything
/// is allocated for it. An empty container is checked and charged nothing.
#[inline(always)]
fn checked_count(
    r: &mut Reader<'_>,
    min_bytes: usize,
    values: usize,
    what: &'static str,
    offset: usize,
    budget: &mut Budget,
) -> Result<usize, VariantError> {
    let count = container_count(r)?;
    if count > 0 {
        r.check(count.saturating_mul(min_bytes), what)?;
        budget.reserve(count.saturating_mul(values), offset)?;
    }
    Ok(count)
}

/// A `Dictionary` after its header (and any type blocks), as [`open_array`].
#[inline(always)]
fn open_dictionary(
    r: &mut Reader<'_>,
    offset: usize,
    budget: &mut Budget,
) -> Result<Item, VariantError> {
    // Every entry takes at least 8 bytes (two headers) and is two values.
    let count = checked_count(r, 8, 2, "Dictionary entries", offset, budget)?;
    if count == 0 {
        return Ok(Item::Value(Variant::Dictionary(Dictionary::new())));
    }
    Ok(Item::Open(Frame::Dict {
        map: Dictionary::with_capacity(count.min(MAX_PREALLOC)),
        left: count,
        has_key: false,
        synced: true,
    }))
}

/// [`item`] for every other header, through the type table.
#[inline(never)]
fn item_by_type(
    r: &mut Reader<'_>,
    header: u32,
    offset: usize,
    version: GodotVersion,
    budget: &mut Budget,
) -> Result<Item, VariantError> {
    let type_id = header & 0xFF;
    let kind =
        Kind::from_id(type_id, version).ok_or(VariantError::UnknownType { type_id, offset })?;
    Ok(match kind {
        Kind::Array => {
            if version == GodotVersion::V4 {
                skip_container_type(r, (header >> 16) & 3, offset)?;
            }
            open_array(r, offset, budget)?
        }
        Kind::Dictionary => {
            if version == GodotVersion::V4 {
                skip_container_type(r, (header >> 16) & 3, offset)?;
                skip_container_type(r, (header >> 18) & 3, offset)?;
            }
            open_dictionary(r, offset, budget)?
        }
        _ => Item::Value(leaf(r, kind, header, version, offset, budget)?),
    })
}

/// Decodes elements into `items` until `left` is 0 (returns `None`) or an
/// element opens a container (returned; it counts as decoded).
///
/// A dictionary element whose entries all take [`shaped_entries`]' fast
/// path (an array of players after the first) is completed right here,
/// without going through the decoder's stack.
fn fill_array(
    ctx: &mut Ctx<'_, '_>,
    items: &mut Array,
    left: &mut usize,
    level: usize,
) -> Result<Option<Frame>, VariantError> {
    while *left > 0 {
        *left -= 1;
        match item(ctx.r, ctx.version, ctx.budget)? {
            Item::Value(v) => items.push(v),
            Item::Open(mut frame) => {
                // One level down, within the depth limit (else the
                // decoder's loop reports it). A guard: the fast path only
                // runs on a level with remembered keys, which a dictionary
                // there recorded after passing the loop's check.
                if level < ctx.max_depth
                    && let Frame::Dict {
                        map,
                        left,
                        has_key,
                        synced,
                    } = &mut frame
                {
                    let mut dict = DictState {
                        map,
                        left,
                        has_key,
                        synced,
                        level: level + 1,
                    };
                    shaped_entries(ctx.r, ctx.version, ctx.shapes, &mut dict);
                    if *dict.left == 0 {
                        items.push(frame.into_value());
                        continue;
                    }
                }
                return Ok(Some(frame));
            }
        }
    }
    Ok(None)
}

/// The open dictionary `fill_dict` works on (a `Frame::Dict`'s fields and
/// its nesting level).
struct DictState<'f> {
    map: &'f mut Dictionary,
    left: &'f mut usize,
    has_key: &'f mut bool,
    synced: &'f mut bool,
    level: usize,
}

/// Decodes entries into `d.map` until `d.left` is 0 (returns `None`) or a
/// key or value opens a container (returned; `d.has_key` then tells which
/// it is: a value's key waits on `keys`).
fn fill_dict<'a>(
    r: &mut Reader<'a>,
    version: GodotVersion,
    budget: &mut Budget,
    shapes: &mut Shapes<'a>,
    keys: &mut Vec<Variant>,
    mut d: DictState<'_>,
) -> Result<Option<Frame>, VariantError> {
    // A key that was a container (rare) waits for its value: decoded first,
    // so the loop below only ever starts an entry with its key.
    if std::mem::take(d.has_key) {
        // Pushed with `has_key` set: never absent.
        let Some(k) = keys.pop() else {
            return Err(unreachable_frame());
        };
        if let Some(frame) = entry_value(r, version, budget, keys, &mut d, k, false)? {
            return Ok(Some(frame));
        }
    }
    shaped_entries(r, version, shapes, &mut d);
    while *d.left > 0 {
        let i = d.map.len();
        let rest = r.buf.get(r.pos..).unwrap_or_default();
        // `new`: the key is known to be absent from `d.map`.
        let (k, new) = match shapes.matching(d.level, i, rest).filter(|_| *d.synced) {
            Some((k, n)) => {
                r.pos += n;
                (clone_key(k), true)
            }
            None => {
                let start = r.pos;
                let k = match item(r, version, budget)? {
                    Item::Value(k) => k,
                    Item::Open(frame) => {
                        if std::mem::take(d.synced) {
                            shapes.forget(d.level, i);
                        }
                        return Ok(Some(frame));
                    }
                };
                let raw = r.buf.get(start..r.pos);
                let new = *d.synced && !d.map.contains_key(&k);
                if new && raw.is_some_and(|raw| shapes.record(d.level, i, raw, &k)) {
                    (k, true)
                } else {
                    if std::mem::take(d.synced) {
                        shapes.forget(d.level, i);
                    }
                    (k, new)
                }
            }
        };
        if let Some(frame) = entry_value(r, version, budget, keys, &mut d, k, new)? {
            return Ok(Some(frame));
        }
    }
    Ok(None)
}

/// The usual entries of a dictionary whose keys repeat the last one's at
/// this level (an array of players, of entities): each remembered key
/// matched in place and its value, if one of the usual leaf types, read
/// straight into the entries, without the general loop's `Item` and
/// key/value shuffling. Stops, consuming nothing of it, at the first entry
/// that is anything else or would fail: the general loop then decodes it
/// (and reports its error).
#[inline(always)]
fn shaped_entries(
    r: &mut Reader<'_>,
    version: GodotVersion,
    shapes: &Shapes<'_>,
    d: &mut DictState<'_>,
) {
    if !*d.synced {
        return;
    }
    let Some(entries) = d.map.small_entries(*d.left) else {
        return;
    };
    let known = shapes.at_level(d.level);
    while *d.left > 0 {
        let rest = r.buf.get(r.pos..).unwrap_or_default();
        let Some((key, n)) = matching_in(known, entries.len(), rest) else {
            return;
        };
        let start = r.pos;
        r.pos += n;
        if !push_plain(r, version, entries, key) {
            // Rewound: the general loop decodes this entry again.
            r.pos = start;
            return;
        }
        *d.left -= 1;
    }
}

/// Reads a value of the usual leaf types ([`item`]'s inline ones and
/// `PackedInt32Array`) and appends it with a clone of `key`; `false`
/// (appending nothing) for anything else or on any error. Each arm pushes
/// its own entry, so the value is built in place rather than merged into
/// one `Variant` first and copied (measured: 7k fewer instructions per
/// 100-player snapshot than one push after the match).
#[inline(always)]
fn push_plain(
    r: &mut Reader<'_>,
    version: GodotVersion,
    entries: &mut Vec<(Variant, Variant)>,
    key: &Variant,
) -> bool {
    let key = || clone_key(key);
    let Ok(header) = r.u32("Variant header") else {
        return false;
    };
    match header {
        2 => match r.i32("int") {
            Ok(i) => entries.push((key(), Variant::Int(i.into()))),
            Err(_) => return false,
        },
        3 => match r.f32() {
            Ok(f) => entries.push((key(), Variant::Float(f.into()))),
            Err(_) => return false,
        },
        4 => match r.str_block() {
            Ok(s) => entries.push((key(), Variant::String(CompactString::new(s)))),
            Err(_) => return false,
        },
        5 => match r.vector2(false) {
            Ok(v) => entries.push((key(), Variant::Vector2(v))),
            Err(_) => return false,
        },
        h if h == PACKED_INT32.get(version) => match packed_i32s(r) {
            Ok(v) => entries.push((key(), v)),
            Err(_) => return false,
        },
        _ => return false,
    }
    true
}

/// A remembered key (new in this dictionary, see `Shapes`); the usual one,
/// a string, cloned without the 39-way `Clone` dispatch.
#[inline(always)]
fn clone_key(key: &Variant) -> Variant {
    match key {
        Variant::String(s) => Variant::String(s.clone()),
        other => other.clone(),
    }
}

/// Decodes the value for key `k` (`new`: known absent from the map) and
/// adds the entry; a container value is returned open, `k` waiting on
/// `keys` for it.
#[inline(always)]
fn entry_value(
    r: &mut Reader<'_>,
    version: GodotVersion,
    budget: &mut Budget,
    keys: &mut Vec<Variant>,
    d: &mut DictState<'_>,
    k: Variant,
    new: bool,
) -> Result<Option<Frame>, VariantError> {
    match item(r, version, budget)? {
        Item::Value(v) => {
            if new {
                d.map.push_new(k, v);
            } else {
                // A repeated key overwrites, as Godot's `d[k] = v`.
                d.map.insert(k, v);
            }
            *d.left -= 1;
            Ok(None)
        }
        Item::Open(frame) => {
            keys.push(k);
            *d.has_key = true;
            Ok(Some(frame))
        }
    }
}

/// The stack was checked non-empty just above; reported as an error rather
/// than a panic should that ever change.
#[cold]
fn unreachable_frame() -> VariantError {
    VariantError::Invalid {
        what: "decoder state",
        offset: 0,
    }
}

/// Array / Dictionary count: bit 31 is Godot 3's legacy "shared" flag and
/// is masked off, as Godot does.
fn container_count(r: &mut Reader<'_>) -> Result<usize, VariantError> {
    let n = r.u32("container count")? & 0x7FFF_FFFF;
    Ok(n as usize)
}

/// Reads (and drops) a 4.3+ container element-type block of `kind`.
#[inline]
fn skip_container_type(r: &mut Reader<'_>, kind: u32, offset: usize) -> Result<(), VariantError> {
    match kind {
        0 => Ok(()),
        1 => {
            let id = r.u32("container element type")?;
            if Kind::from_id(id, GodotVersion::V4).is_none() {
                return Err(VariantError::Invalid {
                    what: "container element type id",
                    offset,
                });
            }
            Ok(())
        }
        // Class name or script path: Godot without allow_objects replaces
        // either with "EncodedObjectAsID"; the name itself is not used.
        _ => r.str_block().map(drop),
    }
}
