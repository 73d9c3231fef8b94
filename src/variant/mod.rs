//! Godot [`Variant`]s on the wire: the binary format of Godot's `var_to_bytes`
//! / `var2bytes`, `StreamPeer.put_var` / `get_var` and `PacketPeer.put_var` /
//! `get_var`, for Godot 3 and Godot 4.
//!
//! - [`encode`] / [`decode`] are pure functions over bytes.
//! - [`StreamPeer::put_var`](crate::StreamPeer::put_var) /
//!   [`get_var`](crate::StreamPeer::get_var) add Godot's `u32` length prefix;
//!   [`PacketPeer::put_var`](crate::PacketPeer::put_var) /
//!   [`get_var`](crate::PacketPeer::get_var) send one value per packet.
//! - With the `serde` feature, `to_variant` / `from_variant` convert Rust
//!   types.
//!
//! The decoder never trusts the input: every count and length is checked
//! against the bytes present before anything is reserved, nesting is handled
//! with an explicit stack (no recursion, whatever the input), and [`Limits`]
//! caps depth, the number of values and the size. Full objects are refused
//! (Godot's `allow_objects = false`); object *ids* are decoded.
//!
//! ```
//! use lunanet::variant::{self, GodotVersion, Limits, Variant, Vector2};
//! use lunanet::{varray, vdict};
//!
//! let state = vdict! {
//!     "id" => 7,
//!     "name" => "ada",
//!     "pos" => Vector2::new(1.5, -2.0),
//!     "tags" => varray![1, "x", 2.5],
//! };
//! let mut bytes = Vec::new();
//! variant::encode(&state, GodotVersion::V4, &mut bytes)?;
//!
//! let (back, used) = variant::decode(&bytes, GodotVersion::V4, &Limits::default())?;
//! assert_eq!(used, bytes.len());
//! assert_eq!(back, state);
//! assert_eq!(back.get("name").and_then(Variant::as_str), Some("ada"));
//! # Ok::<(), lunanet::variant::VariantError>(())
//! ```
//!
//! See `docs/variant.md` for the type table (3.x vs 4.x ids) and what is
//! refused and why.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

mod decode;
mod encode;
#[cfg(feature = "serde")]
mod serde;
mod types;

pub use decode::decode;
pub use encode::{encode, encoded_len};
#[cfg(feature = "serde")]
pub use serde::{from_variant, to_variant};
use types::BitEq;
pub use types::{
    Aabb, Basis, Color, NodePath, Plane, Projection, Quaternion, Rect2, Rect2i, Signal,
    Transform2D, Transform3D, Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};

/// The most nesting levels the encoder produces (Godot 3.4+ and 4.x refuse
/// deeper values with "Potential infinite recursion detected").
pub const MAX_ENCODE_DEPTH: usize = 1024;

/// Which Godot major version is on the other side. Type ids differ between
/// 3.x and 4.x (they agree only on ids 0 to 5), so every codec call needs it.
///
/// ```
/// use lunanet::variant::GodotVersion;
/// assert_eq!(GodotVersion::default(), GodotVersion::V4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum GodotVersion {
    /// Godot 3.2 to 3.6.
    V3,
    /// Godot 4.0 and later: encodes untyped containers (every 4.x decodes
    /// them); decodes 4.3+ typed arrays and 4.4+ typed dictionaries.
    #[default]
    V4,
}

/// Caps applied by [`decode`] and `get_var` to input from the network.
///
/// ```
/// use lunanet::variant::Limits;
///
/// let strict = Limits { max_depth: 8, ..Limits::default() };
/// assert_eq!(strict.max_elements, Limits::default().max_elements);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The most container levels: a top-level scalar is depth 0, the elements
    /// of a top-level array depth 1. Default 256 (Godot allows 1024; game
    /// data rarely goes past 10, and a lower cap keeps the recursive `Clone`,
    /// `PartialEq` and `Debug` of decoded values cheap on small stacks).
    pub max_depth: usize,
    /// The most values one decode produces: every `Variant` (nested ones
    /// included) and every string of a `PackedStringArray`. Bounds the memory
    /// a small input can make the decoder allocate (each value is 32 bytes in
    /// memory for as little as 4 on the wire). Default 262 144 (8 MiB of
    /// values).
    pub max_elements: usize,
    /// The most bytes one value may occupy on the wire; for `get_var`, the
    /// largest frame accepted (checked before anything is allocated). Default
    /// 8 MiB, Godot's `PacketPeer` `encode_buffer_max_size`.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 256,
            max_elements: 1 << 18,
            max_bytes: 8 << 20,
        }
    }
}

/// Why a value could not be encoded or decoded. Every variant names what
/// failed and, for decoding, the byte offset where it was found.
///
/// ```
/// use lunanet::variant::{self, GodotVersion, Limits, VariantError};
///
/// let err = variant::decode(&[0xff, 0, 0, 0], GodotVersion::V4, &Limits::default()).unwrap_err();
/// assert_eq!(err, VariantError::UnknownType { type_id: 0xff, offset: 0 });
/// assert_eq!(err.to_string(), "unknown Variant type id 255 at byte 0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariantError {
    /// The input ended before a value was complete (`needed` more bytes were
    /// required at `offset`).
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs from `offset`.
        needed: usize,
    },
    /// A type id the version does not define (Godot's `ERR_INVALID_DATA`).
    UnknownType {
        /// The id (low 8 bits of the header).
        type_id: u32,
        /// Offset of the header.
        offset: usize,
    },
    /// A string is not valid UTF-8.
    InvalidUtf8 {
        /// Offset of the string's length word.
        offset: usize,
    },
    /// A structurally invalid value (old-format NodePath, negative count,
    /// bad container type...).
    Invalid {
        /// What is wrong.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// A full object (class name and properties): never decoded, as Godot
    /// with `allow_objects = false` (`ERR_UNAUTHORIZED`). Object ids are fine.
    FullObject {
        /// Offset of the header.
        offset: usize,
    },
    /// A [`Limits`] cap was hit.
    LimitExceeded {
        /// Which limit: `"max_depth"`, `"max_elements"` or `"max_bytes"`.
        limit: &'static str,
        /// Its value.
        max: usize,
        /// Offset where it was exceeded.
        offset: usize,
    },
    /// The value has no encoding in the target version (for example a
    /// `Vector2i` for Godot 3), or is too large or too deep to encode.
    Unsupported {
        /// The Godot type name, or the reason.
        what: &'static str,
        /// The target version.
        version: GodotVersion,
    },
    /// A conversion between a Rust type and a `Variant` failed (serde bridge,
    /// `TryFrom`): `path` names the field (`players[3].name`), empty at the top.
    Conversion {
        /// Where in the value.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for VariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariantError::Truncated {
                what,
                offset,
                needed,
            } => write!(
                f,
                "truncated input: {what} at byte {offset} needs {needed} bytes"
            ),
            VariantError::UnknownType { type_id, offset } => {
                write!(f, "unknown Variant type id {type_id} at byte {offset}")
            }
            VariantError::InvalidUtf8 { offset } => {
                write!(f, "invalid UTF-8 in the string at byte {offset}")
            }
            VariantError::Invalid { what, offset } => write!(f, "invalid {what} at byte {offset}"),
            VariantError::FullObject { offset } => write!(
                f,
                "full object at byte {offset} refused (only object ids are decoded)"
            ),
            VariantError::LimitExceeded { limit, max, offset } => {
                write!(f, "limit {limit} = {max} exceeded at byte {offset}")
            }
            VariantError::Unsupported { what, version } => {
                write!(f, "{what} cannot be encoded for Godot {version:?}")
            }
            VariantError::Conversion { path, message } if path.is_empty() => f.write_str(message),
            VariantError::Conversion { path, message } => write!(f, "at `{path}`: {message}"),
        }
    }
}

impl std::error::Error for VariantError {}

/// A Godot value: every Godot 4 type, with Godot 3's mapped onto them
/// (`REAL` → `Float`, `QUAT` → `Quaternion`, `TRANSFORM` → `Transform3D`,
/// `POOL_*_ARRAY` → `Packed*Array`, `_RID` → `Rid(0)`).
///
/// Equality and hashing are structural and compare floats by bit pattern
/// (`NaN == NaN`, `0.0 != -0.0`), so any `Variant` can be a [`Dictionary`]
/// key, as in Godot; `Int(1) != Float(1.0)`. Dictionaries compare without
/// regard to order, as Godot's `==`.
///
/// ```
/// use lunanet::variant::Variant;
///
/// let v = Variant::from("hi");
/// assert_eq!(v.as_str(), Some("hi"));
/// assert_eq!(i64::try_from(Variant::from(7)).unwrap(), 7);
/// assert_eq!(Variant::from(0.5).type_name(), "float");
/// ```
#[derive(Debug, Clone, Default)]
pub enum Variant {
    /// `null`.
    #[default]
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (64-bit; sent as 32-bit when it fits, as Godot).
    Int(i64),
    /// `float` (3.x `REAL`; sent as 32-bit when exact, as Godot).
    Float(f64),
    /// `String`.
    String(String),
    /// `Vector2`.
    Vector2(Vector2),
    /// `Vector2i` (4.x).
    Vector2i(Vector2i),
    /// `Rect2`.
    Rect2(Rect2),
    /// `Rect2i` (4.x).
    Rect2i(Rect2i),
    /// `Vector3`.
    Vector3(Vector3),
    /// `Vector3i` (4.x).
    Vector3i(Vector3i),
    /// `Transform2D`.
    Transform2D(Transform2D),
    /// `Vector4` (4.x).
    Vector4(Vector4),
    /// `Vector4i` (4.x).
    Vector4i(Vector4i),
    /// `Plane`.
    Plane(Plane),
    /// `Quaternion` (3.x `Quat`).
    Quaternion(Quaternion),
    /// `AABB`.
    Aabb(Aabb),
    /// `Basis` (boxed: 36 bytes).
    Basis(Box<Basis>),
    /// `Transform3D` (3.x `Transform`; boxed: 48 bytes).
    Transform3D(Box<Transform3D>),
    /// `Projection` (4.x; boxed: 64 bytes).
    Projection(Box<Projection>),
    /// `Color`.
    Color(Color),
    /// `StringName` (4.x).
    StringName(String),
    /// `NodePath`.
    NodePath(Box<NodePath>),
    /// `RID`: the id (always 0 from Godot 3, whose RIDs carry no payload).
    Rid(u64),
    /// An `Object` by instance id (0 = null). Full objects are never decoded.
    Object(u64),
    /// `Callable` (4.x): carries no payload on the wire.
    Callable,
    /// `Signal` (4.x).
    Signal(Box<Signal>),
    /// `Dictionary`.
    Dictionary(Dictionary),
    /// `Array`.
    Array(Array),
    /// `PackedByteArray` (3.x `PoolByteArray`).
    PackedByteArray(Vec<u8>),
    /// `PackedInt32Array` (3.x `PoolIntArray`).
    PackedInt32Array(Vec<i32>),
    /// `PackedInt64Array` (4.x).
    PackedInt64Array(Vec<i64>),
    /// `PackedFloat32Array` (3.x `PoolRealArray`).
    PackedFloat32Array(Vec<f32>),
    /// `PackedFloat64Array` (4.x).
    PackedFloat64Array(Vec<f64>),
    /// `PackedStringArray` (3.x `PoolStringArray`).
    PackedStringArray(Vec<String>),
    /// `PackedVector2Array` (3.x `PoolVector2Array`).
    PackedVector2Array(Vec<Vector2>),
    /// `PackedVector3Array` (3.x `PoolVector3Array`).
    PackedVector3Array(Vec<Vector3>),
    /// `PackedColorArray` (3.x `PoolColorArray`).
    PackedColorArray(Vec<Color>),
    /// `PackedVector4Array` (4.3+).
    PackedVector4Array(Vec<Vector4>),
}

/// Generates `PartialEq` arms for variants whose payload has a suitable `==`.
macro_rules! same_arms {
    ($a:expr, $b:expr; units: $($u:ident),*; eq: $($e:ident),*; bits: $($bt:ident),*) => {
        match ($a, $b) {
            $((Variant::$u, Variant::$u) => true,)*
            $((Variant::$e(x), Variant::$e(y)) => x == y,)*
            $((Variant::$bt(x), Variant::$bt(y)) => x.bit_eq(y),)*
            _ => false,
        }
    };
}

impl PartialEq for Variant {
    fn eq(&self, other: &Variant) -> bool {
        same_arms!(self, other;
            units: Nil, Callable;
            eq: Bool, Int, String, Vector2, Vector2i, Rect2, Rect2i, Vector3, Vector3i,
                Transform2D, Vector4, Vector4i, Plane, Quaternion, Aabb, Basis, Transform3D,
                Projection, Color, StringName, NodePath, Rid, Object, Signal, Dictionary, Array,
                PackedByteArray, PackedInt32Array, PackedInt64Array, PackedStringArray,
                PackedVector2Array, PackedVector3Array, PackedColorArray, PackedVector4Array;
            bits: Float, PackedFloat32Array, PackedFloat64Array)
    }
}

impl Eq for Variant {}

impl Hash for Variant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Variant::Nil | Variant::Callable => {}
            Variant::Bool(v) => v.hash(state),
            Variant::Int(v) => v.hash(state),
            Variant::Float(v) => v.bit_hash(state),
            Variant::String(v) | Variant::StringName(v) => v.hash(state),
            Variant::Vector2(v) => v.hash(state),
            Variant::Vector2i(v) => v.hash(state),
            Variant::Rect2(v) => v.hash(state),
            Variant::Rect2i(v) => v.hash(state),
            Variant::Vector3(v) => v.hash(state),
            Variant::Vector3i(v) => v.hash(state),
            Variant::Transform2D(v) => v.hash(state),
            Variant::Vector4(v) => v.hash(state),
            Variant::Vector4i(v) => v.hash(state),
            Variant::Plane(v) => v.hash(state),
            Variant::Quaternion(v) => v.hash(state),
            Variant::Aabb(v) => v.hash(state),
            Variant::Basis(v) => v.hash(state),
            Variant::Transform3D(v) => v.hash(state),
            Variant::Projection(v) => v.hash(state),
            Variant::Color(v) => v.hash(state),
            Variant::NodePath(v) => v.hash(state),
            Variant::Rid(v) | Variant::Object(v) => v.hash(state),
            Variant::Signal(v) => v.hash(state),
            Variant::Dictionary(v) => v.hash(state),
            Variant::Array(v) => v.hash(state),
            Variant::PackedByteArray(v) => v.hash(state),
            Variant::PackedInt32Array(v) => v.hash(state),
            Variant::PackedInt64Array(v) => v.hash(state),
            Variant::PackedFloat32Array(v) => v.bit_hash(state),
            Variant::PackedFloat64Array(v) => v.bit_hash(state),
            Variant::PackedStringArray(v) => v.hash(state),
            Variant::PackedVector2Array(v) => v.hash(state),
            Variant::PackedVector3Array(v) => v.hash(state),
            Variant::PackedColorArray(v) => v.hash(state),
            Variant::PackedVector4Array(v) => v.hash(state),
        }
    }
}

impl Variant {
    /// Godot 4's name of the value's type (`"int"`, `"Vector2"`,
    /// `"PackedByteArray"`...), for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Variant::Nil => "Nil",
            Variant::Bool(_) => "bool",
            Variant::Int(_) => "int",
            Variant::Float(_) => "float",
            Variant::String(_) => "String",
            Variant::Vector2(_) => "Vector2",
            Variant::Vector2i(_) => "Vector2i",
            Variant::Rect2(_) => "Rect2",
            Variant::Rect2i(_) => "Rect2i",
            Variant::Vector3(_) => "Vector3",
            Variant::Vector3i(_) => "Vector3i",
            Variant::Transform2D(_) => "Transform2D",
            Variant::Vector4(_) => "Vector4",
            Variant::Vector4i(_) => "Vector4i",
            Variant::Plane(_) => "Plane",
            Variant::Quaternion(_) => "Quaternion",
            Variant::Aabb(_) => "AABB",
            Variant::Basis(_) => "Basis",
            Variant::Transform3D(_) => "Transform3D",
            Variant::Projection(_) => "Projection",
            Variant::Color(_) => "Color",
            Variant::StringName(_) => "StringName",
            Variant::NodePath(_) => "NodePath",
            Variant::Rid(_) => "RID",
            Variant::Object(_) => "Object",
            Variant::Callable => "Callable",
            Variant::Signal(_) => "Signal",
            Variant::Dictionary(_) => "Dictionary",
            Variant::Array(_) => "Array",
            Variant::PackedByteArray(_) => "PackedByteArray",
            Variant::PackedInt32Array(_) => "PackedInt32Array",
            Variant::PackedInt64Array(_) => "PackedInt64Array",
            Variant::PackedFloat32Array(_) => "PackedFloat32Array",
            Variant::PackedFloat64Array(_) => "PackedFloat64Array",
            Variant::PackedStringArray(_) => "PackedStringArray",
            Variant::PackedVector2Array(_) => "PackedVector2Array",
            Variant::PackedVector3Array(_) => "PackedVector3Array",
            Variant::PackedColorArray(_) => "PackedColorArray",
            Variant::PackedVector4Array(_) => "PackedVector4Array",
        }
    }

    /// Whether this is `Nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Variant::Nil)
    }

    /// The value of a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Variant::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value of an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Variant::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value of a `Float`, or of an `Int` converted (GDScript mixes them).
    ///
    /// ```
    /// use lunanet::variant::Variant;
    /// assert_eq!(Variant::Int(2).as_float(), Some(2.0));
    /// ```
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            Variant::Float(f) => Some(f),
            Variant::Int(i) => Some(i as f64),
            _ => None,
        }
    }

    /// The text of a `String` or `StringName`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Variant::String(s) | Variant::StringName(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a `Vector2`.
    pub fn as_vector2(&self) -> Option<Vector2> {
        match *self {
            Variant::Vector2(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an `Array`.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Variant::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements of an `Array`, mutably.
    pub fn as_array_mut(&mut self) -> Option<&mut Array> {
        match self {
            Variant::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries of a `Dictionary`.
    pub fn as_dictionary(&self) -> Option<&Dictionary> {
        match self {
            Variant::Dictionary(d) => Some(d),
            _ => None,
        }
    }

    /// The entries of a `Dictionary`, mutably.
    pub fn as_dictionary_mut(&mut self) -> Option<&mut Dictionary> {
        match self {
            Variant::Dictionary(d) => Some(d),
            _ => None,
        }
    }

    /// The bytes of a `PackedByteArray`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Variant::PackedByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// `self[key]` for a `Dictionary` (any key type converts), `None` for a
    /// missing key or another type.
    ///
    /// ```
    /// use lunanet::vdict;
    /// let d = vdict! { "hp" => 3.5, 1 => "one" };
    /// assert_eq!(d.get("hp").and_then(|v| v.as_float()), Some(3.5));
    /// assert_eq!(d.get(1).and_then(|v| v.as_str()), Some("one"));
    /// ```
    pub fn get(&self, key: impl Into<Variant>) -> Option<&Variant> {
        self.as_dictionary()?.get(&key.into())
    }

    /// `self[index]` for an `Array`.
    pub fn at(&self, index: usize) -> Option<&Variant> {
        self.as_array()?.get(index)
    }

    /// Whether this is a container holding a non-empty container: dropping
    /// it normally could recurse more than two levels.
    fn has_nested_container(&self) -> bool {
        match self {
            Variant::Array(a) => a.items.iter().any(Variant::is_nonempty_container),
            Variant::Dictionary(d) => d
                .entries()
                .iter()
                .any(|(k, v)| k.is_nonempty_container() || v.is_nonempty_container()),
            _ => false,
        }
    }

    /// Whether this value is a non-empty `Array` or `Dictionary` (whose drop
    /// is done iteratively, see [`Array`]).
    fn is_nonempty_container(&self) -> bool {
        match self {
            Variant::Array(a) => !a.items.is_empty(),
            Variant::Dictionary(d) => !d.is_empty(),
            _ => false,
        }
    }
}

/// Godot `Array`: a list of `Variant`s. Dereferences to `Vec<Variant>`.
///
/// Dropping a deeply nested array does not recurse (a value decoded with a
/// raised [`Limits::max_depth`] can be very deep); `Clone`, `==`, `Hash` and
/// `Debug` do recurse, which the default depth limit keeps cheap.
///
/// ```
/// use lunanet::variant::{Array, Variant};
/// use lunanet::varray;
///
/// let mut a = varray![1, "two"];
/// a.as_array_mut().unwrap().push(3.0.into());
/// assert_eq!(a.at(2), Some(&Variant::Float(3.0)));
/// let plain: Array = vec![Variant::Nil].into();
/// assert_eq!(plain.len(), 1);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Array {
    items: Vec<Variant>,
}

impl Array {
    /// An empty array.
    pub fn new() -> Array {
        Array::default()
    }

    /// An empty array with room for `n` elements.
    pub fn with_capacity(n: usize) -> Array {
        Array {
            items: Vec::with_capacity(n),
        }
    }

    /// The elements, as a `Vec`.
    pub fn into_vec(mut self) -> Vec<Variant> {
        std::mem::take(&mut self.items)
    }
}

impl std::ops::Deref for Array {
    type Target = Vec<Variant>;
    fn deref(&self) -> &Vec<Variant> {
        &self.items
    }
}

impl std::ops::DerefMut for Array {
    fn deref_mut(&mut self) -> &mut Vec<Variant> {
        &mut self.items
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.items).finish()
    }
}

impl From<Vec<Variant>> for Array {
    fn from(items: Vec<Variant>) -> Array {
        Array { items }
    }
}

impl<T: Into<Variant>> FromIterator<T> for Array {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Array {
        Array {
            items: iter.into_iter().map(Into::into).collect(),
        }
    }
}

impl IntoIterator for Array {
    type Item = Variant;
    type IntoIter = std::vec::IntoIter<Variant>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Array {
    type Item = &'a Variant;
    type IntoIter = std::slice::Iter<'a, Variant>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Moves the nested non-empty containers of `v` onto `stack`, emptying them,
/// so that dropping `v` afterwards does not recurse.
fn detach_children(v: &mut Variant, stack: &mut Vec<Variant>) {
    match v {
        Variant::Array(a) => {
            for child in a.items.iter_mut() {
                if child.is_nonempty_container() {
                    stack.push(std::mem::take(child));
                }
            }
        }
        Variant::Dictionary(d) => {
            for (k, mut val) in d.take_entries() {
                if k.is_nonempty_container() {
                    stack.push(k);
                }
                if val.is_nonempty_container() {
                    stack.push(std::mem::take(&mut val));
                }
            }
        }
        _ => {}
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        // Shallow values (the common case: at most two more levels, e.g. an
        // array of flat dictionaries) drop normally, allocating nothing.
        if !self.items.iter().any(Variant::has_nested_container) {
            return;
        }
        let mut stack: Vec<Variant> = Vec::new();
        for child in self.items.iter_mut() {
            if child.is_nonempty_container() {
                stack.push(std::mem::take(child));
            }
        }
        while let Some(mut v) = stack.pop() {
            detach_children(&mut v, &mut stack);
        }
    }
}

/// Godot `Dictionary`: keys and values of any type, in insertion order (the
/// order Godot iterates and sends them).
///
/// Stored as a `Vec` of entries: small dictionaries (the usual game message,
/// up to 16 entries) are searched linearly, which beats hashing; larger ones
/// get a hash index ([`hashbrown::HashTable`] of entry positions, keyed with
/// the standard library's randomly seeded hasher), so lookups stay O(1) even
/// with keys chosen by an attacker. Hand-written rather than `indexmap`
/// because that always hashes and is 72 bytes (would double the size of
/// every `Variant`); this is 24.
///
/// Inserting an existing key replaces its value and keeps its position, as
/// Godot does. `==` ignores order (as Godot's); the encoded bytes follow it.
///
/// ```
/// use lunanet::variant::{Dictionary, Variant};
///
/// let mut d = Dictionary::new();
/// d.insert("b", 1);
/// d.insert("a", 2);
/// d.insert("b", 3);
/// let keys: Vec<_> = d.keys().map(|k| k.as_str().unwrap()).collect();
/// assert_eq!(keys, ["b", "a"]);
/// assert_eq!(d.get(&"b".into()), Some(&Variant::Int(3)));
/// ```
#[derive(Clone)]
pub struct Dictionary {
    repr: Repr,
}

/// Entries only while small; entries plus a hash index once large.
#[derive(Clone)]
enum Repr {
    Small(Vec<(Variant, Variant)>),
    Large(Box<Large>),
}

#[derive(Clone)]
struct Large {
    entries: Vec<(Variant, Variant)>,
    hasher: std::hash::RandomState,
    /// Positions in `entries`, keyed by the hash of their key.
    index: hashbrown::HashTable<usize>,
}

/// Above this many entries a dictionary gets a hash index.
const INDEX_THRESHOLD: usize = 16;

impl Large {
    fn build(entries: Vec<(Variant, Variant)>) -> Large {
        let hasher = std::hash::RandomState::new();
        let mut index = hashbrown::HashTable::with_capacity(entries.len());
        for (i, (k, _)) in entries.iter().enumerate() {
            let h = hasher.hash_one(k);
            index.insert_unique(h, i, |&j| hasher.hash_one(&entries[j].0));
        }
        Large {
            entries,
            hasher,
            index,
        }
    }

    fn find(&self, key: &Variant) -> Option<usize> {
        let h = self.hasher.hash_one(key);
        self.index.find(h, |&i| self.entries[i].0 == *key).copied()
    }
}

impl Default for Dictionary {
    fn default() -> Dictionary {
        Dictionary {
            repr: Repr::Small(Vec::new()),
        }
    }
}

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Dictionary {
        Dictionary::default()
    }

    /// An empty dictionary with room for `n` entries.
    pub fn with_capacity(n: usize) -> Dictionary {
        Dictionary {
            repr: Repr::Small(Vec::with_capacity(n)),
        }
    }

    fn entries(&self) -> &Vec<(Variant, Variant)> {
        match &self.repr {
            Repr::Small(e) => e,
            Repr::Large(l) => &l.entries,
        }
    }

    fn position(&self, key: &Variant) -> Option<usize> {
        match &self.repr {
            Repr::Small(e) => e.iter().position(|(k, _)| k == key),
            Repr::Large(l) => l.find(key),
        }
    }

    /// Sets `key` to `value`; returns the previous value. A new key goes last;
    /// an existing one keeps its place.
    pub fn insert(
        &mut self,
        key: impl Into<Variant>,
        value: impl Into<Variant>,
    ) -> Option<Variant> {
        let key = key.into();
        let value = value.into();
        if let Some(i) = self.position(&key) {
            let slot = match &mut self.repr {
                Repr::Small(e) => &mut e[i].1,
                Repr::Large(l) => &mut l.entries[i].1,
            };
            return Some(std::mem::replace(slot, value));
        }
        match &mut self.repr {
            Repr::Small(e) => {
                e.push((key, value));
                if e.len() > INDEX_THRESHOLD {
                    let entries = std::mem::take(e);
                    self.repr = Repr::Large(Box::new(Large::build(entries)));
                }
            }
            Repr::Large(l) => {
                let Large {
                    entries,
                    hasher,
                    index,
                } = &mut **l;
                let h = hasher.hash_one(&key);
                index.insert_unique(h, entries.len(), |&j| hasher.hash_one(&entries[j].0));
                entries.push((key, value));
            }
        }
        None
    }

    /// The value for `key`.
    pub fn get(&self, key: &Variant) -> Option<&Variant> {
        self.position(key).map(|i| &self.entries()[i].1)
    }

    /// The value for `key`, mutably.
    pub fn get_mut(&mut self, key: &Variant) -> Option<&mut Variant> {
        let i = self.position(key)?;
        Some(match &mut self.repr {
            Repr::Small(e) => &mut e[i].1,
            Repr::Large(l) => &mut l.entries[i].1,
        })
    }

    /// Removes `key`, keeping the order of the others (O(n), as Godot).
    pub fn remove(&mut self, key: &Variant) -> Option<Variant> {
        let i = self.position(key)?;
        match &mut self.repr {
            Repr::Small(e) => Some(e.remove(i).1),
            Repr::Large(l) => {
                let (_, v) = l.entries.remove(i);
                // Positions after `i` moved: rebuild the index (O(n), like the shift).
                let entries = std::mem::take(&mut l.entries);
                **l = Large::build(entries);
                Some(v)
            }
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &Variant) -> bool {
        self.position(key).is_some()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> DictionaryIter<'_> {
        DictionaryIter {
            inner: self.entries().iter(),
        }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Variant> {
        self.entries().iter().map(|(k, _)| k)
    }

    /// The values in order.
    pub fn values(&self) -> impl Iterator<Item = &Variant> {
        self.entries().iter().map(|(_, v)| v)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.repr = Repr::Small(Vec::new());
    }

    /// Takes the entries out, in order.
    pub fn into_entries(mut self) -> Vec<(Variant, Variant)> {
        self.take_entries()
    }

    fn take_entries(&mut self) -> Vec<(Variant, Variant)> {
        match std::mem::replace(&mut self.repr, Repr::Small(Vec::new())) {
            Repr::Small(e) => e,
            Repr::Large(l) => l.entries,
        }
    }
}

/// Iterator over a [`Dictionary`]'s entries, in order.
#[derive(Clone, Debug)]
pub struct DictionaryIter<'a> {
    inner: std::slice::Iter<'a, (Variant, Variant)>,
}

impl<'a> Iterator for DictionaryIter<'a> {
    type Item = (&'a Variant, &'a Variant);
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for DictionaryIter<'_> {}

impl PartialEq for Dictionary {
    /// Same entries, in any order (as Godot's `==`).
    fn eq(&self, other: &Dictionary) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Dictionary {}

impl Hash for Dictionary {
    /// Order-independent, like `==`: the length and the wrapping sum of the
    /// entries' own hashes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        let mut sum = 0u64;
        for entry in self.iter() {
            let mut h = std::hash::DefaultHasher::new();
            entry.hash(&mut h);
            sum = sum.wrapping_add(h.finish());
        }
        sum.hash(state);
    }
}

impl fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Drop for Dictionary {
    fn drop(&mut self) {
        if !self
            .entries()
            .iter()
            .any(|(k, v)| k.has_nested_container() || v.has_nested_container())
        {
            return;
        }
        let mut stack: Vec<Variant> = Vec::new();
        for (k, mut v) in self.take_entries() {
            if k.is_nonempty_container() {
                stack.push(k);
            }
            if v.is_nonempty_container() {
                stack.push(std::mem::take(&mut v));
            }
        }
        while let Some(mut v) = stack.pop() {
            detach_children(&mut v, &mut stack);
        }
    }
}

impl<K: Into<Variant>, V: Into<Variant>> FromIterator<(K, V)> for Dictionary {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Dictionary {
        let mut d = Dictionary::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl<'a> IntoIterator for &'a Dictionary {
    type Item = (&'a Variant, &'a Variant);
    type IntoIter = DictionaryIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Builds a `Variant::Array` from values that convert into `Variant`.
///
/// ```
/// use lunanet::varray;
/// use lunanet::variant::Variant;
/// let a = varray![1, "x", 2.5, varray![]];
/// assert_eq!(a.at(1), Some(&Variant::from("x")));
/// ```
#[macro_export]
macro_rules! varray {
    ($($v:expr),* $(,)?) => {
        $crate::variant::Variant::Array($crate::variant::Array::from(
            ::std::vec![$($crate::variant::Variant::from($v)),*]
        ))
    };
}

/// Builds a `Variant::Dictionary` from `key => value` pairs (any types that
/// convert into `Variant`), in order.
///
/// ```
/// use lunanet::vdict;
/// let d = vdict! { "id" => 7, "name" => "ada" };
/// assert_eq!(d.get("id").and_then(|v| v.as_int()), Some(7));
/// ```
#[macro_export]
macro_rules! vdict {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut d = $crate::variant::Dictionary::new();
        $(d.insert($crate::variant::Variant::from($k), $crate::variant::Variant::from($v));)*
        $crate::variant::Variant::Dictionary(d)
    }};
}

// ---- conversions ----------------------------------------------------------

macro_rules! from_via {
    ($($t:ty => |$x:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Variant {
            fn from($x: $t) -> Variant {
                $e
            }
        })*
    };
}

from_via! {
    () => |_x| Variant::Nil,
    bool => |x| Variant::Bool(x),
    i8 => |x| Variant::Int(x.into()),
    i16 => |x| Variant::Int(x.into()),
    i32 => |x| Variant::Int(x.into()),
    i64 => |x| Variant::Int(x),
    u8 => |x| Variant::Int(x.into()),
    u16 => |x| Variant::Int(x.into()),
    u32 => |x| Variant::Int(x.into()),
    f32 => |x| Variant::Float(x.into()),
    f64 => |x| Variant::Float(x),
    String => |x| Variant::String(x),
    &str => |x| Variant::String(x.to_owned()),
    &String => |x| Variant::String(x.clone()),
    Vector2 => |x| Variant::Vector2(x),
    Vector2i => |x| Variant::Vector2i(x),
    Rect2 => |x| Variant::Rect2(x),
    Rect2i => |x| Variant::Rect2i(x),
    Vector3 => |x| Variant::Vector3(x),
    Vector3i => |x| Variant::Vector3i(x),
    Transform2D => |x| Variant::Transform2D(x),
    Vector4 => |x| Variant::Vector4(x),
    Vector4i => |x| Variant::Vector4i(x),
    Plane => |x| Variant::Plane(x),
    Quaternion => |x| Variant::Quaternion(x),
    Aabb => |x| Variant::Aabb(x),
    Basis => |x| Variant::Basis(Box::new(x)),
    Transform3D => |x| Variant::Transform3D(Box::new(x)),
    Projection => |x| Variant::Projection(Box::new(x)),
    Color => |x| Variant::Color(x),
    NodePath => |x| Variant::NodePath(Box::new(x)),
    Signal => |x| Variant::Signal(Box::new(x)),
    Dictionary => |x| Variant::Dictionary(x),
    Array => |x| Variant::Array(x),
    Vec<Variant> => |x| Variant::Array(Array::from(x)),
    Vec<u8> => |x| Variant::PackedByteArray(x),
    &[u8] => |x| Variant::PackedByteArray(x.to_vec()),
    Vec<i32> => |x| Variant::PackedInt32Array(x),
    Vec<i64> => |x| Variant::PackedInt64Array(x),
    Vec<f32> => |x| Variant::PackedFloat32Array(x),
    Vec<f64> => |x| Variant::PackedFloat64Array(x),
    Vec<String> => |x| Variant::PackedStringArray(x),
    Vec<Vector2> => |x| Variant::PackedVector2Array(x),
    Vec<Vector3> => |x| Variant::PackedVector3Array(x),
    Vec<Color> => |x| Variant::PackedColorArray(x),
    Vec<Vector4> => |x| Variant::PackedVector4Array(x),
}

impl<T: Into<Variant>> From<Option<T>> for Variant {
    /// `None` becomes `Nil`.
    fn from(v: Option<T>) -> Variant {
        v.map_or(Variant::Nil, Into::into)
    }
}

impl From<&Variant> for Variant {
    fn from(v: &Variant) -> Variant {
        v.clone()
    }
}

fn mismatch(expected: &str, found: &Variant) -> VariantError {
    VariantError::Conversion {
        path: String::new(),
        message: format!("expected {expected}, found {}", found.type_name()),
    }
}

macro_rules! try_from_variant {
    ($($t:ty, $name:literal, |$v:ident| $e:expr);* $(;)?) => {
        $(impl TryFrom<Variant> for $t {
            type Error = VariantError;
            fn try_from($v: Variant) -> Result<$t, VariantError> {
                let r: Option<$t> = $e;
                r.ok_or_else(|| mismatch($name, &$v))
            }
        })*
    };
}

try_from_variant! {
    bool, "bool", |v| v.as_bool();
    i64, "int", |v| v.as_int();
    i32, "int within i32", |v| v.as_int().and_then(|i| i32::try_from(i).ok());
    u32, "int within u32", |v| v.as_int().and_then(|i| u32::try_from(i).ok());
    u64, "int within u64", |v| v.as_int().and_then(|i| u64::try_from(i).ok());
    f64, "float", |v| v.as_float();
    f32, "float", |v| v.as_float().map(|f| f as f32);
    Vector2, "Vector2", |v| v.as_vector2();
}

macro_rules! try_from_owned {
    ($($t:ty, $name:literal, $($pat:ident)|+);* $(;)?) => {
        $(impl TryFrom<Variant> for $t {
            type Error = VariantError;
            fn try_from(v: Variant) -> Result<$t, VariantError> {
                match v {
                    $(Variant::$pat(x) => Ok(x.into()),)+
                    other => Err(mismatch($name, &other)),
                }
            }
        })*
    };
}

try_from_owned! {
    String, "String", String | StringName;
    Array, "Array", Array;
    Dictionary, "Dictionary", Dictionary;
    Vec<u8>, "PackedByteArray", PackedByteArray;
    Vec<i32>, "PackedInt32Array", PackedInt32Array;
    Vec<i64>, "PackedInt64Array", PackedInt64Array;
    Vec<f32>, "PackedFloat32Array", PackedFloat32Array;
    Vec<f64>, "PackedFloat64Array", PackedFloat64Array;
    Vec<String>, "PackedStringArray", PackedStringArray;
}

#[cfg(test)]
mod tests;
