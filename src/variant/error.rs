//! The codec error type.

use std::fmt;

use super::GodotVersion;

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
    /// A [`Limits`](super::Limits) cap was hit.
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
