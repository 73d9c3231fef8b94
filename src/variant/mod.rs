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

mod array;
mod convert;
mod decode;
mod dict;
mod encode;
mod error;
mod kind;
mod leaf;
mod limits;
mod reader;
#[cfg(feature = "serde")]
mod serde;
mod shapes;
mod types;
mod value;

pub use array::Array;
/// The string type of [`Variant::String`] and [`Variant::StringName`]
/// (re-exported from the `compact_str` crate).
pub use compact_str::CompactString;
pub use decode::decode;
pub use dict::{Dictionary, DictionaryIter};
pub use encode::{encode, encoded_len};
pub use error::VariantError;
pub use limits::{GodotVersion, Limits, MAX_ENCODE_DEPTH};
#[cfg(feature = "serde")]
pub use serde::{from_variant, to_variant};
pub use types::{
    Aabb, Basis, Color, NodePath, Plane, Projection, Quaternion, Rect2, Rect2i, Signal,
    Transform2D, Transform3D, Vector2, Vector2i, Vector3, Vector3i, Vector4, Vector4i,
};
pub use value::Variant;

// `#[macro_use]` puts `varray!` / `vdict!` in textual scope for the modules
// declared after it: the unit tests use them unqualified, as they did when the
// macros were defined in this file. Declared last so that `serde`'s tests keep
// their own explicit `use crate::{varray, vdict}`.
#[macro_use]
mod macros;

#[cfg(test)]
mod tests;
