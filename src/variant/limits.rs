//! Version selection and decoding limits.

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

/// Caps applied by [`decode`](super::decode()) and `get_var` to input from the network.
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
