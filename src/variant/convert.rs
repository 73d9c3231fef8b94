//! `From` and `TryFrom` between Rust types and `Variant`.

use super::*;

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
    String => |x| Variant::String(CompactString::from(x)),
    &str => |x| Variant::String(CompactString::new(x)),
    &String => |x| Variant::String(CompactString::new(x)),
    CompactString => |x| Variant::String(x),
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
    CompactString, "String", String | StringName;
    Array, "Array", Array;
    Dictionary, "Dictionary", Dictionary;
    Vec<u8>, "PackedByteArray", PackedByteArray;
    Vec<i32>, "PackedInt32Array", PackedInt32Array;
    Vec<i64>, "PackedInt64Array", PackedInt64Array;
    Vec<f32>, "PackedFloat32Array", PackedFloat32Array;
    Vec<f64>, "PackedFloat64Array", PackedFloat64Array;
    Vec<String>, "PackedStringArray", PackedStringArray;
}
