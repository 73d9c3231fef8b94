//! The machinery behind [`StreamPeer`]'s provided typed helpers: the
//! fixed-size `put_*` / `get_*` generator and the checked string readers.
//! Kept apart from the trait so the trait's file shows the contract.

use super::peer::{MAX_STRING_LENGTH, StreamPeer};
use crate::SocketError;

/// Size of the stack buffers used to avoid heap allocation for small values.
pub(super) const STACK_BYTES: usize = 256;

/// Size of the length prefix of strings.
pub(super) const PREFIX: usize = 4;

/// Reads exactly `N` bytes through `get_data` (all-or-nothing).
pub(super) fn read_array<P: StreamPeer + ?Sized, const N: usize>(
    peer: &mut P,
) -> Result<[u8; N], SocketError> {
    if N > peer.max_buffered_bytes() {
        return Err(SocketError::OutOfBufferMemory);
    }
    let mut bytes = [0u8; N];
    peer.get_data(&mut bytes)?;
    Ok(bytes)
}

/// Writes a `u32` length prefix (in the peer's byte order) and `bytes` in ONE
/// `put_data` call, so the string is queued whole or not at all.
pub(super) fn put_prefixed<P: StreamPeer + ?Sized>(
    peer: &mut P,
    bytes: &[u8],
) -> Result<(), SocketError> {
    if bytes.len() > MAX_STRING_LENGTH {
        return Err(SocketError::InvalidParameter);
    }
    let len = u32::try_from(bytes.len()).map_err(|_| SocketError::InvalidParameter)?;
    let header = if peer.is_big_endian() {
        len.to_be_bytes()
    } else {
        len.to_le_bytes()
    };
    let total = PREFIX + bytes.len();
    if total <= STACK_BYTES {
        let mut frame = [0u8; STACK_BYTES];
        frame[..PREFIX].copy_from_slice(&header);
        frame[PREFIX..total].copy_from_slice(bytes);
        peer.put_data(&frame[..total])
    } else {
        let mut frame = Vec::with_capacity(total);
        frame.extend_from_slice(&header);
        frame.extend_from_slice(bytes);
        peer.put_data(&frame)
    }
}

/// Checks that a value of `prefix + len` bytes may be read now: within the
/// string limit, within what the peer can ever hold, and fully buffered.
pub(super) fn check_readable<P: StreamPeer + ?Sized>(
    peer: &mut P,
    prefix: usize,
    len: usize,
) -> Result<usize, SocketError> {
    if len > MAX_STRING_LENGTH {
        return Err(SocketError::OutOfBufferMemory);
    }
    let total = prefix + len; // len <= 16 MiB: no overflow
    if total > peer.max_buffered_bytes() {
        return Err(SocketError::OutOfBufferMemory);
    }
    if peer.available_bytes() < total {
        return Err(peer.short_read_error());
    }
    Ok(total)
}

/// Peeks and checks the `u32` length prefix of a string; consumes nothing.
pub(super) fn peek_string_len<P: StreamPeer + ?Sized>(peer: &mut P) -> Result<usize, SocketError> {
    let mut header = [0u8; PREFIX];
    if peer.peek_data(&mut header) < PREFIX {
        if peer.max_buffered_bytes() < PREFIX {
            // The prefix itself can never be buffered: waiting is futile.
            return Err(SocketError::OutOfBufferMemory);
        }
        return Err(peer.short_read_error());
    }
    let len = if peer.is_big_endian() {
        u32::from_be_bytes(header)
    } else {
        u32::from_le_bytes(header)
    };
    usize::try_from(len).map_err(|_| SocketError::OutOfBufferMemory)
}

/// How the bytes of a string are checked before anything is consumed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Text {
    /// Any bytes (Latin-1, as Godot's `get_string`).
    Latin1,
    /// Valid UTF-8 only; invalid → `InvalidParameter`, nothing consumed.
    Utf8Strict,
    /// Any bytes; invalid sequences become U+FFFD (Godot's lenient parse).
    Utf8Lossy,
}

/// Reads `prefix` ignored bytes then `len` text bytes, all-or-nothing.
pub(super) fn read_text<P: StreamPeer + ?Sized>(
    peer: &mut P,
    prefix: usize,
    len: usize,
    text: Text,
) -> Result<String, SocketError> {
    let total = check_readable(peer, prefix, len)?;
    // Allocation happens only now: `total` is bounded and fully buffered.
    let mut bytes = vec![0u8; total];
    if text == Text::Utf8Strict {
        // Validate before consuming, so an error consumes nothing.
        if peer.peek_data(&mut bytes) != total {
            return Err(SocketError::Failed);
        }
        if std::str::from_utf8(&bytes[prefix..]).is_err() {
            return Err(SocketError::InvalidParameter);
        }
    }
    peer.get_data(&mut bytes)?;
    bytes.drain(..prefix);
    Ok(match text {
        Text::Latin1 => latin1(bytes),
        Text::Utf8Strict => String::from_utf8(bytes).map_err(|_| SocketError::Failed)?,
        Text::Utf8Lossy => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        },
    })
}

/// Decodes bytes as Latin-1 (each byte is the code point U+0000..=U+00FF), as
/// Godot's `get_string` does. Never fails.
pub(super) fn latin1(bytes: Vec<u8>) -> String {
    if bytes.is_ascii() {
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => e.as_bytes().iter().map(|&b| char::from(b)).collect(),
        }
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

/// Generates the typed `put_*` / `get_*` helpers of [`StreamPeer`].
macro_rules! typed_helpers {
    ($(
        $t:ty, $n:literal, $put:ident, $get:ident, $gput:literal, $gget:literal,
        $val:literal, $le:literal, $be:literal;
    )*) => {$(
        #[doc = concat!("Writes a `", stringify!($t), "` as ", stringify!($n),
            " byte(s) in the peer's byte order (Godot `", $gput, "`).")]
        #[doc = ""]
        #[doc = "Atomic: the bytes go out in one [`put_data`](StreamPeer::put_data) call, so"]
        #[doc = "either all of them are queued or none is."]
        #[doc = ""]
        #[doc = "# Errors"]
        #[doc = ""]
        #[doc = "Those of `put_data`: for TCP, `OutOfBufferMemory` when the write queue is"]
        #[doc = "full (nothing queued; retry after it drains) and `SocketInvalid` when not"]
        #[doc = "connected. A [`StreamPeerBuffer`] never fails."]
        #[doc = ""]
        #[doc = "# Example"]
        #[doc = ""]
        #[doc = "```"]
        #[doc = "use lunanet::{StreamPeer, StreamPeerBuffer};"]
        #[doc = ""]
        #[doc = "let mut buf = StreamPeerBuffer::new();"]
        #[doc = concat!("buf.", stringify!($put), "(", $val, ")?;")]
        #[doc = concat!("assert_eq!(buf.data(), ", $le, "); // little-endian (default)")]
        #[doc = ""]
        #[doc = "let mut buf = StreamPeerBuffer::new();"]
        #[doc = "buf.set_big_endian(true);"]
        #[doc = concat!("buf.", stringify!($put), "(", $val, ")?;")]
        #[doc = concat!("assert_eq!(buf.data(), ", $be, ");")]
        #[doc = "# Ok::<(), lunanet::SocketError>(())"]
        #[doc = "```"]
        fn $put(&mut self, value: $t) -> Result<(), SocketError> {
            let bytes = if self.is_big_endian() {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            self.put_data(&bytes)
        }

        #[doc = concat!("Reads a `", stringify!($t), "` from ", stringify!($n),
            " byte(s) in the peer's byte order (Godot `", $gget, "`).")]
        #[doc = ""]
        #[doc = "Atomic: returns the value, or an error and consumes nothing (never a"]
        #[doc = "silent 0 as in Godot)."]
        #[doc = ""]
        #[doc = "# Errors"]
        #[doc = ""]
        #[doc = concat!("- `Busy`: fewer than ", stringify!($n),
            " byte(s) are buffered but more may arrive; poll and retry.")]
        #[doc = "- `FileEof`: no more bytes will arrive (remote closed; for a"]
        #[doc = "  [`StreamPeerBuffer`], the end of the data)."]
        #[doc = "- `OutOfBufferMemory`: the peer can never hold that many bytes"]
        #[doc = "  ([`max_buffered_bytes`](StreamPeer::max_buffered_bytes))."]
        #[doc = "- Any other error of `get_data` (e.g. `SocketInvalid`, `ConnectionClosed`)."]
        #[doc = ""]
        #[doc = "# Example"]
        #[doc = ""]
        #[doc = "```"]
        #[doc = "use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};"]
        #[doc = ""]
        #[doc = concat!("let mut buf = StreamPeerBuffer::from_vec(vec!", $le, ");")]
        #[doc = concat!("assert_eq!(buf.", stringify!($get), "()?, ", $val, ");")]
        #[doc = "// Nothing left: an error, not a silent 0."]
        #[doc = concat!("assert_eq!(buf.", stringify!($get), "(), Err(SocketError::FileEof));")]
        #[doc = ""]
        #[doc = concat!("let mut buf = StreamPeerBuffer::from_vec(vec!", $be, ");")]
        #[doc = "buf.set_big_endian(true);"]
        #[doc = concat!("assert_eq!(buf.", stringify!($get), "()?, ", $val, ");")]
        #[doc = "# Ok::<(), lunanet::SocketError>(())"]
        #[doc = "```"]
        fn $get(&mut self) -> Result<$t, SocketError> {
            let bytes: [u8; $n] = read_array(self)?;
            Ok(if self.is_big_endian() {
                <$t>::from_be_bytes(bytes)
            } else {
                <$t>::from_le_bytes(bytes)
            })
        }
    )*};
}

pub(super) use typed_helpers;
