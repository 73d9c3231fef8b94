//! Godot's type ids: the Godot 4 and Godot 3 tables, shared by the encoder
//! and the decoder.

use super::{GodotVersion, Variant};

/// Header flag: 64-bit INT / FLOAT; for OBJECT, "encoded as an id".
pub(crate) const FLAG_64: u32 = 1 << 16;

/// Type ids, named as Godot 4; `id(version)` gives the wire id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Nil = 0,
    Bool,
    Int,
    Float,
    String,
    Vector2,
    Vector2i,
    Rect2,
    Rect2i,
    Vector3,
    Vector3i,
    Transform2D,
    Vector4,
    Vector4i,
    Plane,
    Quaternion,
    Aabb,
    Basis,
    Transform3D,
    Projection,
    Color,
    StringName,
    NodePath,
    Rid,
    Object,
    Callable,
    Signal,
    Dictionary,
    Array,
    PackedByteArray,
    PackedInt32Array,
    PackedInt64Array,
    PackedFloat32Array,
    PackedFloat64Array,
    PackedStringArray,
    PackedVector2Array,
    PackedVector3Array,
    PackedColorArray,
    PackedVector4Array,
}

/// Godot 4 (4.3+) ids, in order: the index is the wire id.
pub(crate) const V4_KINDS: [Kind; 39] = {
    use Kind::*;
    [
        Nil,
        Bool,
        Int,
        Float,
        String,
        Vector2,
        Vector2i,
        Rect2,
        Rect2i,
        Vector3,
        Vector3i,
        Transform2D,
        Vector4,
        Vector4i,
        Plane,
        Quaternion,
        Aabb,
        Basis,
        Transform3D,
        Projection,
        Color,
        StringName,
        NodePath,
        Rid,
        Object,
        Callable,
        Signal,
        Dictionary,
        Array,
        PackedByteArray,
        PackedInt32Array,
        PackedInt64Array,
        PackedFloat32Array,
        PackedFloat64Array,
        PackedStringArray,
        PackedVector2Array,
        PackedVector3Array,
        PackedColorArray,
        PackedVector4Array,
    ]
};

/// Godot 3 ids (3.2 to 3.6), in order.
pub(crate) const V3_KINDS: [Kind; 27] = {
    use Kind::*;
    [
        Nil,
        Bool,
        Int,
        Float,
        String,
        Vector2,
        Rect2,
        Vector3,
        Transform2D,
        Plane,
        Quaternion,
        Aabb,
        Basis,
        Transform3D,
        Color,
        NodePath,
        Rid,
        Object,
        Dictionary,
        Array,
        PackedByteArray,
        PackedInt32Array,
        PackedFloat32Array,
        PackedStringArray,
        PackedVector2Array,
        PackedVector3Array,
        PackedColorArray,
    ]
};

impl Kind {
    /// The wire id in `version`, `None` when that version has no such type.
    pub(crate) fn id(self, version: GodotVersion) -> Option<u32> {
        match version {
            GodotVersion::V4 => Some(self as u32),
            GodotVersion::V3 => V3_KINDS.iter().position(|&k| k == self).map(|i| i as u32),
        }
    }

    /// The type for a wire id, `None` for ids the version does not define.
    pub(crate) fn from_id(id: u32, version: GodotVersion) -> Option<Kind> {
        let table: &[Kind] = match version {
            GodotVersion::V4 => &V4_KINDS,
            GodotVersion::V3 => &V3_KINDS,
        };
        table.get(usize::try_from(id).ok()?).copied()
    }

    /// The Godot 4 name, for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Vector2i => "Vector2i",
            Kind::Rect2i => "Rect2i",
            Kind::Vector3i => "Vector3i",
            Kind::Vector4 => "Vector4",
            Kind::Vector4i => "Vector4i",
            Kind::Projection => "Projection",
            Kind::StringName => "StringName",
            Kind::Callable => "Callable",
            Kind::Signal => "Signal",
            Kind::PackedInt64Array => "PackedInt64Array",
            Kind::PackedFloat64Array => "PackedFloat64Array",
            Kind::PackedVector4Array => "PackedVector4Array",
            _ => "value",
        }
    }
}

/// The type of `v`.
pub(crate) fn kind_of(v: &Variant) -> Kind {
    match v {
        Variant::Nil => Kind::Nil,
        Variant::Bool(_) => Kind::Bool,
        Variant::Int(_) => Kind::Int,
        Variant::Float(_) => Kind::Float,
        Variant::String(_) => Kind::String,
        Variant::Vector2(_) => Kind::Vector2,
        Variant::Vector2i(_) => Kind::Vector2i,
        Variant::Rect2(_) => Kind::Rect2,
        Variant::Rect2i(_) => Kind::Rect2i,
        Variant::Vector3(_) => Kind::Vector3,
        Variant::Vector3i(_) => Kind::Vector3i,
        Variant::Transform2D(_) => Kind::Transform2D,
        Variant::Vector4(_) => Kind::Vector4,
        Variant::Vector4i(_) => Kind::Vector4i,
        Variant::Plane(_) => Kind::Plane,
        Variant::Quaternion(_) => Kind::Quaternion,
        Variant::Aabb(_) => Kind::Aabb,
        Variant::Basis(_) => Kind::Basis,
        Variant::Transform3D(_) => Kind::Transform3D,
        Variant::Projection(_) => Kind::Projection,
        Variant::Color(_) => Kind::Color,
        Variant::StringName(_) => Kind::StringName,
        Variant::NodePath(_) => Kind::NodePath,
        Variant::Rid(_) => Kind::Rid,
        Variant::Object(_) => Kind::Object,
        Variant::Callable => Kind::Callable,
        Variant::Signal(_) => Kind::Signal,
        Variant::Dictionary(_) => Kind::Dictionary,
        Variant::Array(_) => Kind::Array,
        Variant::PackedByteArray(_) => Kind::PackedByteArray,
        Variant::PackedInt32Array(_) => Kind::PackedInt32Array,
        Variant::PackedInt64Array(_) => Kind::PackedInt64Array,
        Variant::PackedFloat32Array(_) => Kind::PackedFloat32Array,
        Variant::PackedFloat64Array(_) => Kind::PackedFloat64Array,
        Variant::PackedStringArray(_) => Kind::PackedStringArray,
        Variant::PackedVector2Array(_) => Kind::PackedVector2Array,
        Variant::PackedVector3Array(_) => Kind::PackedVector3Array,
        Variant::PackedColorArray(_) => Kind::PackedColorArray,
        Variant::PackedVector4Array(_) => Kind::PackedVector4Array,
    }
}
