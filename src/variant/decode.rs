//! The decoder: Godot's binary format -> `Variant`, with an explicit stack and
//! every length checked against the bytes present before use.

use super::encode::{FLAG_64, Kind};
use super::reader::Reader;
use super::shapes::{Shapes, matching_in};
use super::{
    Aabb, Array, Basis, CompactString, Dictionary, GodotVersion, Limits, NodePath, Plane,
    Projection, Quaternion, Rect2, Rect2i, Signal, Transform2D, Transform3D, Variant, VariantError,
    Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};

/// Most elements reserved up front for a container, whatever its count: the
/// rest grows with elements actually decoded, so memory follows real bytes.
const MAX_PREALLOC: usize = 1024;

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
struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    fn reserve(&mut self, n: usize, offset: usize) -> Result<(), VariantError> {
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
                offset: r.pos,
            });
        }
        let mut ctx = Ctx {
            r: &mut r,
            version,
            max_depth: limits.max_depth,
            budget: &mut budget,
            shapes: &mut shapes,
            keys: &mut keys,
        };
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
                return Ok((value, r.pos.min(bytes.len())));
            };
            match top {
                // Its `left` was counted down when it opened.
                Frame::Array { items, .. } => items.push(value),
                Frame::Dict {
                    map, left, has_key, ..
                } => {
                    if std::mem::take(has_key) {
                        let Some(k) = keys.pop() else {
                            return Err(unreachable_frame());
                        };
                        map.insert(k, value);
                        *left -= 1;
                    } else {
                        keys.push(value);
                        *has_key = true;
                    }
                }
            }
            let mut ctx = Ctx {
                r: &mut r,
                version,
                max_depth: limits.max_depth,
                budget: &mut budget,
                shapes: &mut shapes,
                keys: &mut keys,
            };
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
        30 if version == GodotVersion::V4 => Ok(Item::Value(packed_i32s(r)?)),
        21 if version == GodotVersion::V3 => Ok(Item::Value(packed_i32s(r)?)),
        // Untyped containers (no flag: what every Godot sends unless a
        // typed container is encoded).
        27 if version == GodotVersion::V4 => open_dictionary(r, offset, budget),
        28 if version == GodotVersion::V4 => open_array(r, offset, budget),
        18 if version == GodotVersion::V3 => open_dictionary(r, offset, budget),
        19 if version == GodotVersion::V3 => open_array(r, offset, budget),
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
                // decoder's loop reports it).
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
        30 if version == GodotVersion::V4 => match packed_i32s(r) {
            Ok(v) => entries.push((key(), v)),
            Err(_) => return false,
        },
        21 if version == GodotVersion::V3 => match packed_i32s(r) {
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

fn leaf(
    r: &mut Reader<'_>,
    kind: Kind,
    header: u32,
    version: GodotVersion,
    offset: usize,
    budget: &mut Budget,
) -> Result<Variant, VariantError> {
    let flag64 = header & FLAG_64 != 0;
    // Godot 3 only uses the flag for INT, REAL and OBJECT.
    let wide = flag64 && version == GodotVersion::V4;
    Ok(match kind {
        Kind::Nil => Variant::Nil,
        Kind::Bool => Variant::Bool(r.u32("bool")? != 0),
        Kind::Int => {
            if flag64 {
                Variant::Int(r.u64("int")? as i64)
            } else {
                Variant::Int(r.i32("int")?.into())
            }
        }
        Kind::Float => {
            if flag64 {
                Variant::Float(f64::from_le_bytes(r.array::<8>("float")?))
            } else {
                Variant::Float(r.f32()?.into())
            }
        }
        Kind::String => Variant::String(CompactString::new(r.str_block()?)),
        Kind::StringName => Variant::StringName(CompactString::new(r.str_block()?)),
        Kind::Vector2 => Variant::Vector2(r.vector2(wide)?),
        Kind::Vector2i => {
            let [x, y] = r.i32s("Vector2i")?;
            Variant::Vector2i(Vector2i { x, y })
        }
        Kind::Rect2 => {
            let [a, b, c, d] = r.reals(wide, "Rect2")?;
            Variant::Rect2(Rect2::new(Vector2::new(a, b), Vector2::new(c, d)))
        }
        Kind::Rect2i => {
            let [a, b, c, d] = r.i32s("Rect2i")?;
            Variant::Rect2i(Rect2i::new(Vector2i::new(a, b), Vector2i::new(c, d)))
        }
        Kind::Vector3 => Variant::Vector3(r.vector3(wide)?),
        Kind::Vector3i => {
            let [x, y, z] = r.i32s("Vector3i")?;
            Variant::Vector3i(Vector3i { x, y, z })
        }
        Kind::Transform2D => {
            let [a, b, c, d, e, f] = r.reals(wide, "Transform2D")?;
            Variant::Transform2D(Transform2D::new(
                Vector2::new(a, b),
                Vector2::new(c, d),
                Vector2::new(e, f),
            ))
        }
        Kind::Vector4 => Variant::Vector4(r.vector4(wide)?),
        Kind::Vector4i => {
            let [x, y, z, w] = r.i32s("Vector4i")?;
            Variant::Vector4i(Vector4i { x, y, z, w })
        }
        Kind::Plane => {
            let [a, b, c, d] = r.reals(wide, "Plane")?;
            Variant::Plane(Plane::new(Vector3::new(a, b, c), d))
        }
        Kind::Quaternion => {
            let [x, y, z, w] = r.reals(wide, "Quaternion")?;
            Variant::Quaternion(Quaternion { x, y, z, w })
        }
        Kind::Aabb => {
            let [a, b, c, d, e, f] = r.reals(wide, "AABB")?;
            Variant::Aabb(Aabb::new(Vector3::new(a, b, c), Vector3::new(d, e, f)))
        }
        Kind::Basis => {
            let m = r.reals::<9>(wide, "Basis")?;
            Variant::Basis(Box::new(basis(&m)))
        }
        Kind::Transform3D => {
            let m = r.reals::<12>(wide, "Transform3D")?;
            Variant::Transform3D(Box::new(Transform3D {
                basis: basis(&m),
                origin: Vector3::new(m[9], m[10], m[11]),
            }))
        }
        Kind::Projection => {
            let m = r.reals::<16>(wide, "Projection")?;
            let col = |i: usize| Vector4::new(m[i], m[i + 1], m[i + 2], m[i + 3]);
            Variant::Projection(Box::new(Projection {
                columns: [col(0), col(4), col(8), col(12)],
            }))
        }
        Kind::Color => Variant::Color(r.color()?),
        Kind::NodePath => Variant::NodePath(Box::new(node_path(r, offset, budget)?)),
        Kind::Rid => match version {
            GodotVersion::V4 => Variant::Rid(r.u64("RID")?),
            GodotVersion::V3 => Variant::Rid(0),
        },
        Kind::Object => {
            if !flag64 {
                return Err(VariantError::FullObject { offset });
            }
            Variant::Object(r.u64("object id")?)
        }
        Kind::Callable => Variant::Callable,
        Kind::Signal => {
            let name = r.str_block()?.to_owned();
            Variant::Signal(Box::new(Signal {
                name,
                object: r.u64("Signal object id")?,
            }))
        }
        Kind::PackedByteArray => {
            let n = packed_count(r, 1, "PackedByteArray")?;
            let bytes = r.take(n, "PackedByteArray")?.to_vec();
            // Godot counts the padding without requiring it (see `Reader`).
            r.pos += (4 - n % 4) % 4;
            Variant::PackedByteArray(bytes)
        }
        Kind::PackedInt32Array => packed_i32s(r)?,
        Kind::PackedInt64Array => {
            let n = packed_count(r, 8, "PackedInt64Array")?;
            let b = r.take(n * 8, "PackedInt64Array")?;
            Variant::PackedInt64Array(
                b.as_chunks()
                    .0
                    .iter()
                    .map(|c| i64::from_le_bytes(*c))
                    .collect(),
            )
        }
        Kind::PackedFloat32Array => {
            let n = packed_count(r, 4, "PackedFloat32Array")?;
            let b = r.take(n * 4, "PackedFloat32Array")?;
            Variant::PackedFloat32Array(
                b.as_chunks()
                    .0
                    .iter()
                    .map(|c| f32::from_le_bytes(*c))
                    .collect(),
            )
        }
        Kind::PackedFloat64Array => {
            let n = packed_count(r, 8, "PackedFloat64Array")?;
            let b = r.take(n * 8, "PackedFloat64Array")?;
            Variant::PackedFloat64Array(
                b.as_chunks()
                    .0
                    .iter()
                    .map(|c| f64::from_le_bytes(*c))
                    .collect(),
            )
        }
        Kind::PackedStringArray => {
            let count_at = r.pos;
            let raw = r.i32("PackedStringArray count")?;
            // Godot decodes a negative count as an empty array.
            let n = usize::try_from(raw).unwrap_or(0);
            r.check(n.saturating_mul(4), "PackedStringArray")?;
            budget.reserve(n, count_at)?;
            let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
            for _ in 0..n {
                v.push(r.str_block()?.to_owned());
            }
            Variant::PackedStringArray(v)
        }
        Kind::PackedVector2Array => {
            let size = if wide { 16 } else { 8 };
            let n = packed_count(r, size, "PackedVector2Array")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.vector2(wide)?);
            }
            Variant::PackedVector2Array(v)
        }
        Kind::PackedVector3Array => {
            let size = if wide { 24 } else { 12 };
            let n = packed_count(r, size, "PackedVector3Array")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.vector3(wide)?);
            }
            Variant::PackedVector3Array(v)
        }
        Kind::PackedColorArray => {
            let n = packed_count(r, 16, "PackedColorArray")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.color()?);
            }
            Variant::PackedColorArray(v)
        }
        Kind::PackedVector4Array => {
            let size = if wide { 32 } else { 16 };
            let n = packed_count(r, size, "PackedVector4Array")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.vector4(wide)?);
            }
            Variant::PackedVector4Array(v)
        }
        Kind::Array | Kind::Dictionary => {
            return Err(VariantError::Invalid {
                what: "container in leaf position",
                offset,
            });
        }
    })
}

/// A `PackedInt32Array` after its header (read inline by [`item`]: the
/// usual inventory or id list).
#[inline(always)]
fn packed_i32s(r: &mut Reader<'_>) -> Result<Variant, VariantError> {
    let n = packed_count(r, 4, "PackedInt32Array")?;
    let b = r.take(n * 4, "PackedInt32Array")?;
    // `as_chunks`: fixed-size chunks, so the copy vectorizes.
    Ok(Variant::PackedInt32Array(
        b.as_chunks()
            .0
            .iter()
            .map(|c| i32::from_le_bytes(*c))
            .collect(),
    ))
}

fn basis(m: &[f32]) -> Basis {
    Basis {
        rows: [
            Vector3::new(m[0], m[1], m[2]),
            Vector3::new(m[3], m[4], m[5]),
            Vector3::new(m[6], m[7], m[8]),
        ],
    }
}

/// A packed-array count, checked (as Godot) to be non-negative and to fit,
/// times `size`, in the bytes present: only then may it size an allocation.
fn packed_count(
    r: &mut Reader<'_>,
    size: usize,
    what: &'static str,
) -> Result<usize, VariantError> {
    let n = r.count(what)?;
    r.check(n.saturating_mul(size), what)?;
    Ok(n)
}

fn node_path(
    r: &mut Reader<'_>,
    offset: usize,
    budget: &mut Budget,
) -> Result<NodePath, VariantError> {
    let raw = r.u32("NodePath name count")?;
    if raw & 0x8000_0000 == 0 {
        return Err(VariantError::Invalid {
            what: "NodePath (old format, without the 0x80000000 bit)",
            offset,
        });
    }
    let names = (raw & 0x7FFF_FFFF) as usize;
    // Not masked (Godot reads it as is): a huge count fails the bytes check.
    let mut subnames = r.u32("NodePath subname count")? as usize;
    let flags = r.u32("NodePath flags")?;
    if flags & 2 != 0 {
        // Obsolete "property" form: one more subname.
        subnames += 1;
    }
    let total = names + subnames;
    r.check(total.saturating_mul(4), "NodePath names")?;
    budget.reserve(total, offset)?;
    let mut path = NodePath {
        names: Vec::with_capacity(names.min(MAX_PREALLOC)),
        subnames: Vec::with_capacity(subnames.min(MAX_PREALLOC)),
        absolute: flags & 1 != 0,
    };
    for _ in 0..names {
        path.names.push(r.str_block()?.to_owned());
    }
    for _ in 0..subnames {
        path.subnames.push(r.str_block()?.to_owned());
    }
    Ok(path)
}
