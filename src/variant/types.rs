//! Godot's math and engine value types as plain Rust structs.
//!
//! Floating-point fields are `f32`, Godot's `real_t` in every standard build.
//! Equality and hashing compare floats **by bit pattern** so that every type
//! can be a [`Dictionary`](super::Dictionary) key (Godot accepts any key):
//! `NaN == NaN` when the bits are the same, and `0.0 != -0.0`. This is
//! structural equality ("the same bytes on the wire"), not IEEE comparison.

use std::hash::{Hash, Hasher};

/// Bit-pattern equality and hashing for the float-carrying types.
pub(crate) trait BitEq {
    fn bit_eq(&self, other: &Self) -> bool;
    fn bit_hash<H: Hasher>(&self, state: &mut H);
}

impl BitEq for f32 {
    fn bit_eq(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
    fn bit_hash<H: Hasher>(&self, state: &mut H) {
        self.to_bits().hash(state)
    }
}

impl BitEq for f64 {
    fn bit_eq(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
    fn bit_hash<H: Hasher>(&self, state: &mut H) {
        self.to_bits().hash(state)
    }
}

impl BitEq for i32 {
    fn bit_eq(&self, other: &Self) -> bool {
        self == other
    }
    fn bit_hash<H: Hasher>(&self, state: &mut H) {
        self.hash(state)
    }
}

impl<T: BitEq, const N: usize> BitEq for [T; N] {
    fn bit_eq(&self, other: &Self) -> bool {
        self.iter().zip(other).all(|(a, b)| a.bit_eq(b))
    }
    fn bit_hash<H: Hasher>(&self, state: &mut H) {
        for v in self {
            v.bit_hash(state);
        }
    }
}

impl<T: BitEq> BitEq for [T] {
    fn bit_eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.bit_eq(b))
    }
    fn bit_hash<H: Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        for v in self {
            v.bit_hash(state);
        }
    }
}

/// Declares a `Copy` struct with public fields, a `new` constructor, and
/// bit-pattern `PartialEq`/`Eq`/`Hash`.
macro_rules! value_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)+
        }

        impl $name {
            #[doc = concat!("A `", stringify!($name), "` from its fields, in declaration order.")]
            #[allow(clippy::too_many_arguments)]
            pub const fn new($($field: $ty),+) -> $name {
                $name { $($field),+ }
            }
        }

        impl BitEq for $name {
            fn bit_eq(&self, other: &Self) -> bool {
                true $(&& self.$field.bit_eq(&other.$field))+
            }
            fn bit_hash<H: Hasher>(&self, state: &mut H) {
                $(self.$field.bit_hash(state);)+
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.bit_eq(other)
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.bit_hash(state)
            }
        }
    };
}

value_struct!(
    /// Godot `Vector2`.
    Vector2 { /// X.
        x: f32, /// Y.
        y: f32 }
);
value_struct!(
    /// Godot 4 `Vector2i` (32-bit integers).
    Vector2i { /// X.
        x: i32, /// Y.
        y: i32 }
);
value_struct!(
    /// Godot `Vector3`.
    Vector3 { /// X.
        x: f32, /// Y.
        y: f32, /// Z.
        z: f32 }
);
value_struct!(
    /// Godot 4 `Vector3i`.
    Vector3i { /// X.
        x: i32, /// Y.
        y: i32, /// Z.
        z: i32 }
);
value_struct!(
    /// Godot 4 `Vector4`.
    Vector4 { /// X.
        x: f32, /// Y.
        y: f32, /// Z.
        z: f32, /// W.
        w: f32 }
);
value_struct!(
    /// Godot 4 `Vector4i`.
    Vector4i { /// X.
        x: i32, /// Y.
        y: i32, /// Z.
        z: i32, /// W.
        w: i32 }
);
value_struct!(
    /// Godot `Rect2`: a position and a size.
    Rect2 { /// Top-left corner.
        position: Vector2, /// Width and height.
        size: Vector2 }
);
value_struct!(
    /// Godot 4 `Rect2i`.
    Rect2i { /// Top-left corner.
        position: Vector2i, /// Width and height.
        size: Vector2i }
);
value_struct!(
    /// Godot `Transform2D`: the x and y axes (columns) and the origin.
    Transform2D { /// The X axis (column 0).
        x: Vector2, /// The Y axis (column 1).
        y: Vector2, /// The translation (column 2).
        origin: Vector2 }
);
value_struct!(
    /// Godot `Plane`: a normal and the distance from the origin.
    Plane { /// The normal.
        normal: Vector3, /// The distance from the origin along the normal.
        d: f32 }
);
value_struct!(
    /// Godot `Quaternion` (3.x `Quat`).
    Quaternion { /// X.
        x: f32, /// Y.
        y: f32, /// Z.
        z: f32, /// W.
        w: f32 }
);
value_struct!(
    /// Godot `AABB`: a position and a size.
    Aabb { /// The minimum corner.
        position: Vector3, /// The size.
        size: Vector3 }
);
value_struct!(
    /// Godot `Basis`: three rows (3.x `elements`, 4.x `rows`).
    Basis { /// Rows 0, 1 and 2.
        rows: [Vector3; 3] }
);
value_struct!(
    /// Godot `Transform3D` (3.x `Transform`): a basis and an origin.
    Transform3D { /// Rotation, scale and shear.
        basis: Basis, /// The translation.
        origin: Vector3 }
);
value_struct!(
    /// Godot 4 `Projection`: four columns.
    Projection { /// Columns 0 to 3.
        columns: [Vector4; 4] }
);
value_struct!(
    /// Godot `Color` (always 32-bit floats on the wire, in every version).
    Color { /// Red.
        r: f32, /// Green.
        g: f32, /// Blue.
        b: f32, /// Alpha.
        a: f32 }
);

impl Basis {
    /// The identity basis.
    pub const IDENTITY: Basis = Basis {
        rows: [
            Vector3::new(1.0, 0.0, 0.0),
            Vector3::new(0.0, 1.0, 0.0),
            Vector3::new(0.0, 0.0, 1.0),
        ],
    };
}

/// Godot `NodePath`: names (`a/b/c`), subnames (`:x:y`) and whether it is
/// absolute (starts with `/`).
///
/// ```
/// use lunanet::variant::NodePath;
///
/// let p = NodePath::parse("/root/Player:position:x");
/// assert!(p.absolute);
/// assert_eq!(p.names, ["root", "Player"]);
/// assert_eq!(p.subnames, ["position", "x"]);
/// assert_eq!(p.to_string(), "/root/Player:position:x");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NodePath {
    /// The node names, in order.
    pub names: Vec<String>,
    /// The property subnames, in order.
    pub subnames: Vec<String>,
    /// Whether the path starts at the scene root (`/`).
    pub absolute: bool,
}

impl NodePath {
    /// Parses Godot's text form: `[/]name/name[:sub:sub]`. Empty names are
    /// skipped, as Godot does.
    pub fn parse(text: &str) -> NodePath {
        let absolute = text.starts_with('/');
        let mut parts = text.split(':');
        let path = parts.next().unwrap_or("");
        NodePath {
            names: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            subnames: parts.filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            absolute,
        }
    }
}

impl std::fmt::Display for NodePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.absolute {
            f.write_str("/")?;
        }
        f.write_str(&self.names.join("/"))?;
        for s in &self.subnames {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

/// Godot 4 `Signal`: a signal name on an object (by instance id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Signal {
    /// The signal's name.
    pub name: String,
    /// The instance id of the object that owns it.
    pub object: u64,
}
