//! The `Variant` enum: equality, hashing and accessors.

use std::hash::{Hash, Hasher};

use super::types::BitEq;
use super::*;

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
    /// `String`: a [`CompactString`], which keeps up to 24 bytes inline
    /// (dictionary keys, names) and dereferences to `str`. Build one with
    /// `Variant::from("text")` or from a `String` (whose buffer is reused);
    /// take it out with `String::try_from(v)` or `as_str`.
    String(CompactString),
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
    /// `StringName` (4.x); a [`CompactString`] as `String`.
    StringName(CompactString),
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

    /// Drops this value, skipping the drop glue (a call through a 39-way
    /// jump table) when it owns no memory: forgetting such a value is
    /// exactly dropping it. Every value whose type has a `Drop` with an
    /// effect (an allocation to free) goes through `drop`.
    #[inline(always)]
    pub(super) fn release(self) {
        if self.owns_no_memory() {
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }

    /// Whether this value owns no heap memory: scalars, math types stored
    /// inline, strings of up to 24 bytes (inline `CompactString`s), and
    /// containers with no allocation (emptied by a parent's drop).
    #[inline(always)]
    pub(super) fn owns_no_memory(&self) -> bool {
        match self {
            Variant::String(s) | Variant::StringName(s) => !s.is_heap_allocated(),
            Variant::Basis(_)
            | Variant::Transform3D(_)
            | Variant::Projection(_)
            | Variant::NodePath(_)
            | Variant::Signal(_)
            | Variant::PackedByteArray(_)
            | Variant::PackedInt32Array(_)
            | Variant::PackedInt64Array(_)
            | Variant::PackedFloat32Array(_)
            | Variant::PackedFloat64Array(_)
            | Variant::PackedStringArray(_)
            | Variant::PackedVector2Array(_)
            | Variant::PackedVector3Array(_)
            | Variant::PackedColorArray(_)
            | Variant::PackedVector4Array(_) => false,
            Variant::Array(a) => a.capacity() == 0,
            Variant::Dictionary(d) => d.has_no_allocation(),
            Variant::Nil
            | Variant::Bool(_)
            | Variant::Int(_)
            | Variant::Float(_)
            | Variant::Vector2(_)
            | Variant::Vector2i(_)
            | Variant::Rect2(_)
            | Variant::Rect2i(_)
            | Variant::Vector3(_)
            | Variant::Vector3i(_)
            | Variant::Transform2D(_)
            | Variant::Vector4(_)
            | Variant::Vector4i(_)
            | Variant::Plane(_)
            | Variant::Quaternion(_)
            | Variant::Aabb(_)
            | Variant::Color(_)
            | Variant::Rid(_)
            | Variant::Object(_)
            | Variant::Callable => true,
        }
    }

    /// Whether this value is a non-empty `Array` or `Dictionary` (whose drop
    /// is done iteratively, see [`Array`]).
    #[inline]
    pub(super) fn is_nonempty_container(&self) -> bool {
        match self {
            Variant::Array(a) => !a.is_empty(),
            Variant::Dictionary(d) => !d.is_empty(),
            _ => false,
        }
    }
}
