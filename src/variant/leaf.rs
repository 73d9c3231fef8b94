//! The decoder's leaf values, through the type table: every type that is
//! not a container, each read with its lengths checked against the bytes
//! present (and its element counts against the budget) before use.

use super::decode::{Budget, MAX_PREALLOC};
use super::kind::{FLAG_64, Kind};
use super::reader::Reader;
use super::{
    Aabb, Basis, CompactString, GodotVersion, NodePath, Plane, Projection, Quaternion, Rect2,
    Rect2i, Signal, Transform2D, Transform3D, Variant, VariantError, Vector2, Vector2i, Vector3,
    Vector3i, Vector4, Vector4i,
};

pub(super) fn leaf(
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
            Variant::PackedInt64Array(packed_numbers(r, "PackedInt64Array", i64::from_le_bytes)?)
        }
        Kind::PackedFloat32Array => Variant::PackedFloat32Array(packed_numbers(
            r,
            "PackedFloat32Array",
            f32::from_le_bytes,
        )?),
        Kind::PackedFloat64Array => Variant::PackedFloat64Array(packed_numbers(
            r,
            "PackedFloat64Array",
            f64::from_le_bytes,
        )?),
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
        Kind::PackedVector2Array => Variant::PackedVector2Array(packed_each(
            r,
            if wide { 16 } else { 8 },
            "PackedVector2Array",
            |r| r.vector2(wide),
        )?),
        Kind::PackedVector3Array => Variant::PackedVector3Array(packed_each(
            r,
            if wide { 24 } else { 12 },
            "PackedVector3Array",
            |r| r.vector3(wide),
        )?),
        Kind::PackedColorArray => {
            Variant::PackedColorArray(packed_each(r, 16, "PackedColorArray", |r| r.color())?)
        }
        Kind::PackedVector4Array => Variant::PackedVector4Array(packed_each(
            r,
            if wide { 32 } else { 16 },
            "PackedVector4Array",
            |r| r.vector4(wide),
        )?),
        Kind::Array | Kind::Dictionary => {
            return Err(VariantError::Invalid {
                what: "container in leaf position",
                offset,
            });
        }
    })
}

/// A `PackedInt32Array` after its header (read inline by the decoder: the
/// usual inventory or id list).
#[inline(always)]
pub(super) fn packed_i32s(r: &mut Reader<'_>) -> Result<Variant, VariantError> {
    packed_numbers(r, "PackedInt32Array", i32::from_le_bytes).map(Variant::PackedInt32Array)
}

/// A packed array of `N`-byte numbers after its header: count, then the
/// elements, copied from fixed-size chunks (so the copy vectorizes).
#[inline(always)]
fn packed_numbers<const N: usize, T>(
    r: &mut Reader<'_>,
    what: &'static str,
    from_le: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>, VariantError> {
    let n = packed_count(r, N, what)?;
    let b = r.take(n * N, what)?;
    Ok(b.as_chunks().0.iter().map(|c| from_le(*c)).collect())
}

/// A packed array of `size`-byte elements after its header, each read by
/// `read` (which checks its own bytes).
fn packed_each<T>(
    r: &mut Reader<'_>,
    size: usize,
    what: &'static str,
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T, VariantError>,
) -> Result<Vec<T>, VariantError> {
    let n = packed_count(r, size, what)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(read(r)?);
    }
    Ok(v)
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
#[inline]
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
