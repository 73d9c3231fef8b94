//! Godot's type ids: the Godot 4 and Godot 3 tables, shared by the encoder
//! and the decoder.

use super::{GodotVersion, Variant};

/// Header flag: 64-bit INT / FLOAT; for OBJECT, "encoded as an id".
pub(crate) const FLAG_64: u32 = 1 << 16;

/// Declares `Kind` and its Godot 4 table from one list, so the two cannot
/// disagree: in Godot 4 a type's wire id is its position.
macro_rules! kinds {
    ($($k:ident),* $(,)?) => {
        /// Type ids, named as Godot 4; `id(version)` gives the wire id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Kind {
            $($k,)*
        }

        /// Godot 4 (4.3+) ids, in order: the index is the wire id.
        pub(crate) const V4_KINDS: [Kind; [$(Kind::$k),*].len()] = [$(Kind::$k),*];
    };
}

kinds! {
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
}

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

/// Each type's Godot 3 id, by its Godot 4 id (`NO_V3` where Godot 3 has no
/// such type): `V3_KINDS` inverted at compile time.
const V3_IDS: [u32; V4_KINDS.len()] = {
    let mut ids = [NO_V3; V4_KINDS.len()];
    let mut i = 0;
    while i < V3_KINDS.len() {
        ids[V3_KINDS[i] as usize] = i as u32;
        i += 1;
    }
    ids
};
const NO_V3: u32 = u32::MAX;

/// The wire ids, in both versions, of a type both have: the element loops
/// test headers against these (a plain comparison, where [`Kind::id`]
/// gives an `Option`).
#[derive(Clone, Copy)]
pub(crate) struct WireIds {
    v4: u32,
    v3: u32,
}

impl WireIds {
    /// Evaluated in constants: a type Godot 3 lacks fails the build.
    const fn of(kind: Kind) -> WireIds {
        match kind.id(GodotVersion::V3) {
            Some(v3) => WireIds {
                v4: kind as u32,
                v3,
            },
            None => panic!("a type Godot 3 does not have"),
        }
    }

    #[inline(always)]
    pub(crate) fn get(self, version: GodotVersion) -> u32 {
        match version {
            GodotVersion::V4 => self.v4,
            GodotVersion::V3 => self.v3,
        }
    }
}

pub(crate) const DICTIONARY: WireIds = WireIds::of(Kind::Dictionary);
pub(crate) const ARRAY: WireIds = WireIds::of(Kind::Array);
pub(crate) const PACKED_INT32: WireIds = WireIds::of(Kind::PackedInt32Array);

impl Kind {
    /// The wire id in `version`, `None` when that version has no such type.
    pub(crate) const fn id(self, version: GodotVersion) -> Option<u32> {
        match version {
            GodotVersion::V4 => Some(self as u32),
            GodotVersion::V3 => match V3_IDS[self as usize] {
                NO_V3 => None,
                id => Some(id),
            },
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
