//! [`StreamPeer`]: Godot's typed byte-stream helpers, with Godot's exact wire
//! format, over any byte stream (TCP, or the in-memory [`StreamPeerBuffer`]).
//!
//! Wire format (identical to Godot 4's `StreamPeer`):
//!
//! - integers and floats are written in the peer's byte order: little-endian by
//!   default, big-endian after `set_big_endian(true)`; floats are IEEE 754
//!   (`f32` = Godot `put_float`, `f64` = Godot `put_double`);
//! - `put_string` / `put_utf8_string` write a `u32` byte count (in the peer's
//!   byte order) followed by the bytes, no terminator.
//!
//! Differences from Godot are deliberate and listed in `docs/streampeer.md`: the
//! getters return `Result` and consume nothing on error (Godot returns 0 or an
//! empty string and may have consumed part of the value), lengths read from the
//! network are checked before anything is allocated, and `put_string` refuses
//! non-ASCII text instead of replacing it with spaces.

use super::typed::*;
use crate::SocketError;
#[cfg(doc)]
use crate::StreamPeerBuffer;
use crate::variant::{self, GodotVersion, Limits, Variant};

/// The longest string (in bytes, without the 4-byte length prefix) that the
/// string helpers write or read: 16 MiB.
///
/// A length prefix announcing more is rejected with
/// [`SocketError::OutOfBufferMemory`] before anything is allocated, so a
/// malicious peer cannot make a reader allocate gigabytes. Godot itself accepts
/// up to 2 GiB − 1; longer payloads can still be moved with
/// `get_u32` + `get_data`.
pub const MAX_STRING_LENGTH: usize = 16 * 1024 * 1024;

/// A byte stream with Godot's typed helpers (Godot `StreamPeer`).
///
/// Implemented by `StreamPeerTcp` and by the in-memory [`StreamPeerBuffer`];
/// implement the eight required methods to get every helper for your own
/// transport. The trait is dyn-compatible (`Box<dyn StreamPeer>` works), and
/// it is implemented for `&mut P` and `Box<P>` so a peer can be lent to a
/// [`PacketPeerStream`](crate::PacketPeerStream).
///
/// # Contract for implementors
///
/// - `put_data` and `get_data` are all-or-nothing: on error nothing was
///   queued / consumed. The typed helpers' atomicity rests on this.
/// - `peek_data` and `available_bytes` describe exactly what `get_data` would
///   hand out next.
/// - Override [`short_read_error`](StreamPeer::short_read_error) when the
///   answer is known cheaply (the default probes `get_data`).
///
/// The typed helpers (`put_u32`, `get_string`, ...) are provided and are not
/// meant to be overridden.
///
/// # Example
///
/// ```
/// use lunanet::{StreamPeer, StreamPeerBuffer};
///
/// let mut buf = StreamPeerBuffer::new();
/// buf.put_u32(0x0102_0304)?;
/// buf.put_string("abc")?;
/// assert_eq!(buf.data(), [4, 3, 2, 1, 3, 0, 0, 0, b'a', b'b', b'c']);
///
/// buf.seek(0)?;
/// assert_eq!(buf.get_u32()?, 0x0102_0304);
/// assert_eq!(buf.get_string()?, "abc");
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub trait StreamPeer {
    /// Sends (queues) all of `data`, or nothing (Godot `put_data`).
    ///
    /// # Errors
    ///
    /// Nothing was queued when this fails. For TCP: `OutOfBufferMemory` when
    /// the write queue cannot take `data` now (retry after it drains, or use
    /// [`put_partial_data`](StreamPeer::put_partial_data)), `SocketInvalid` when
    /// not connected, `ConnectionClosed` after a reset. A [`StreamPeerBuffer`]
    /// never fails.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_data(b"hello")?;
    /// assert_eq!(buf.data(), b"hello");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError>;

    /// Sends (queues) as much of `data` as fits now and returns how many bytes
    /// were taken, maybe 0 (Godot `put_partial_data`).
    ///
    /// # Errors
    ///
    /// For TCP: `SocketInvalid` when not connected, `ConnectionClosed` after a
    /// reset. A [`StreamPeerBuffer`] never fails and takes everything.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// assert_eq!(buf.put_partial_data(b"hello")?, 5);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError>;

    /// Fills `buf` completely from the stream, or consumes nothing and fails
    /// (Godot `get_data`, without blocking).
    ///
    /// # Errors
    ///
    /// Nothing was consumed when this fails: `Busy` (not enough buffered yet,
    /// more may arrive), `FileEof` (fewer bytes will ever be available; for a
    /// [`StreamPeerBuffer`], fewer bytes remain after the position),
    /// `OutOfBufferMemory` (TCP: `buf` is larger than the read buffer can ever
    /// hold), or the peer's failure (`SocketInvalid`, `ConnectionClosed`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(b"abc".to_vec());
    /// let mut four = [0u8; 4];
    /// assert_eq!(buf.get_data(&mut four), Err(SocketError::FileEof));
    /// assert_eq!(buf.position(), 0); // nothing consumed
    /// let mut three = [0u8; 3];
    /// buf.get_data(&mut three)?;
    /// assert_eq!(&three, b"abc");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError>;

    /// Takes up to `buf.len()` bytes that are available now and returns the
    /// count, maybe 0 (Godot `get_partial_data`). Never waits.
    ///
    /// # Errors
    ///
    /// `FileEof` (or the peer's failure) when nothing is available, `buf` is
    /// not empty and nothing more will ever arrive; TCP returns `Ok(0)` while
    /// more may still arrive.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(b"abc".to_vec());
    /// let mut out = [0u8; 8];
    /// assert_eq!(buf.get_partial_data(&mut out)?, 3);
    /// assert_eq!(buf.get_partial_data(&mut out), Err(SocketError::FileEof));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError>;

    /// How many bytes `get_data` can take right now (Godot
    /// `get_available_bytes`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3]);
    /// assert_eq!(buf.available_bytes(), 3);
    /// buf.get_u8()?;
    /// assert_eq!(buf.available_bytes(), 2);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn available_bytes(&self) -> usize;

    /// Copies up to `buf.len()` of the next available bytes into `buf` without
    /// consuming them, and returns how many were copied (lunanet addition).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let buf = StreamPeerBuffer::from_vec(b"abc".to_vec());
    /// let mut two = [0u8; 2];
    /// assert_eq!(buf.peek_data(&mut two), 2);
    /// assert_eq!(&two, b"ab");
    /// assert_eq!(buf.available_bytes(), 3);
    /// ```
    fn peek_data(&self, buf: &mut [u8]) -> usize;

    /// Whether the typed helpers use big-endian byte order (Godot
    /// `is_big_endian_enabled`). The default is little-endian, as in Godot.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// assert!(!StreamPeerBuffer::new().is_big_endian());
    /// ```
    fn is_big_endian(&self) -> bool;

    /// Chooses the byte order of the typed helpers, including string length
    /// prefixes (Godot `set_big_endian`). It does not affect
    /// [`PacketPeerStream`](crate::PacketPeerStream) headers, which are always
    /// little-endian, as in Godot.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.set_big_endian(true);
    /// buf.put_u16(0x0102)?;
    /// assert_eq!(buf.data(), [1, 2]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn set_big_endian(&mut self, big_endian: bool);

    /// The most bytes this peer can ever hold buffered at once (for TCP, its
    /// read buffer limit). A read needing more can never succeed, so the
    /// helpers return `OutOfBufferMemory` for it instead of `Busy` forever.
    /// The default is `usize::MAX` (no limit).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// assert_eq!(StreamPeerBuffer::new().max_buffered_bytes(), usize::MAX);
    /// ```
    fn max_buffered_bytes(&self) -> usize {
        usize::MAX
    }

    /// Told by a wrapper that pulled bytes out of this peer into its own
    /// buffer (a [`PacketPeerStream`](crate::PacketPeerStream)) whether it
    /// still holds input the application can take now (a complete packet).
    ///
    /// A [`StreamPeerTcp`](crate::StreamPeerTcp) keeps its id in the
    /// reactor's ready set ([`Reactor::drain_ready`](crate::Reactor::drain_ready))
    /// while `held` is true, so that packets taken out of its byte buffer are
    /// not stranded; other peers ignore it (the default does nothing).
    /// Wrappers call it only when the answer changes.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.hold_input(true); // no ready set: nothing happens
    /// assert_eq!(buf.available_bytes(), 0);
    /// ```
    fn hold_input(&mut self, held: bool) {
        let _ = held;
    }

    /// The error that a read needing more than
    /// [`available_bytes`](StreamPeer::available_bytes) gets now: `Busy` while
    /// more bytes may arrive, `FileEof` once none will, or the peer's own
    /// failure (`SocketInvalid`, `ConnectionClosed`, ...). Consumes nothing.
    ///
    /// The string helpers and [`PacketPeerStream`](crate::PacketPeerStream)
    /// use it when they learn from `peek_data` that a value is incomplete. The
    /// default asks `get_data` for `available_bytes() + 1` bytes (which, by the
    /// all-or-nothing contract, cannot succeed) and returns its error; the
    /// probe buffer lives on the stack up to 256 bytes and on the heap above,
    /// so implementors that know their state should override this with an O(1)
    /// answer. [`StreamPeerBuffer`] answers `FileEof`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![1]);
    /// assert_eq!(buf.short_read_error(), SocketError::FileEof);
    /// assert_eq!(buf.available_bytes(), 1);
    /// ```
    fn short_read_error(&mut self) -> SocketError {
        let want = self.available_bytes().saturating_add(1);
        if want > self.max_buffered_bytes() {
            return SocketError::OutOfBufferMemory;
        }
        let probe = if want <= STACK_BYTES {
            let mut probe = [0u8; STACK_BYTES];
            self.get_data(&mut probe[..want])
        } else {
            let mut probe = vec![0u8; want];
            self.get_data(&mut probe)
        };
        match probe {
            Err(e) => e,
            Ok(()) => {
                log::error!(
                    "StreamPeer::get_data returned {want} bytes while available_bytes() said {}; \
                     the implementation breaks the StreamPeer contract",
                    want - 1
                );
                SocketError::Failed
            }
        }
    }

    typed_helpers! {
        u8, 1, put_u8, get_u8, "put_u8", "get_u8", "0xAB", "[0xAB]", "[0xAB]";
        i8, 1, put_i8, get_i8, "put_8", "get_8", "-2", "[0xFE]", "[0xFE]";
        u16, 2, put_u16, get_u16, "put_u16", "get_u16", "0x0102", "[0x02, 0x01]", "[0x01, 0x02]";
        i16, 2, put_i16, get_i16, "put_16", "get_16", "-2", "[0xFE, 0xFF]", "[0xFF, 0xFE]";
        u32, 4, put_u32, get_u32, "put_u32", "get_u32", "0x0102_0304",
            "[0x04, 0x03, 0x02, 0x01]", "[0x01, 0x02, 0x03, 0x04]";
        i32, 4, put_i32, get_i32, "put_32", "get_32", "-2",
            "[0xFE, 0xFF, 0xFF, 0xFF]", "[0xFF, 0xFF, 0xFF, 0xFE]";
        u64, 8, put_u64, get_u64, "put_u64", "get_u64", "0x0102_0304_0506_0708",
            "[8, 7, 6, 5, 4, 3, 2, 1]", "[1, 2, 3, 4, 5, 6, 7, 8]";
        i64, 8, put_i64, get_i64, "put_64", "get_64", "-2",
            "[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]",
            "[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]";
        f32, 4, put_f32, get_f32, "put_float", "get_float", "1.5",
            "[0x00, 0x00, 0xC0, 0x3F]", "[0x3F, 0xC0, 0x00, 0x00]";
        f64, 8, put_f64, get_f64, "put_double", "get_double", "1.5",
            "[0, 0, 0, 0, 0, 0, 0xF8, 0x3F]", "[0x3F, 0xF8, 0, 0, 0, 0, 0, 0]";
    }

    /// Writes an ASCII string as a `u32` byte count (peer byte order) followed
    /// by the bytes (Godot `put_string`).
    ///
    /// Atomic: prefix and bytes go out in one `put_data` call.
    ///
    /// # Errors
    ///
    /// - `InvalidParameter`: `s` is not ASCII (Godot would replace each
    ///   non-ASCII character with a space and log an error; use
    ///   [`put_utf8_string`](StreamPeer::put_utf8_string) for text), or it is
    ///   longer than 16 MiB (`MAX_STRING_LENGTH`). Nothing is written.
    /// - Those of `put_data` (TCP: `OutOfBufferMemory`, `SocketInvalid`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_string("abc")?;
    /// assert_eq!(buf.data(), [3, 0, 0, 0, 0x61, 0x62, 0x63]);
    /// assert_eq!(buf.put_string("é"), Err(SocketError::InvalidParameter));
    /// assert_eq!(buf.size(), 7);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn put_string(&mut self, s: &str) -> Result<(), SocketError> {
        if !s.is_ascii() {
            return Err(SocketError::InvalidParameter);
        }
        put_prefixed(self, s.as_bytes())
    }

    /// Writes a string as UTF-8: a `u32` byte count (peer byte order) followed
    /// by the UTF-8 bytes (Godot `put_utf8_string`).
    ///
    /// Atomic: prefix and bytes go out in one `put_data` call.
    ///
    /// # Errors
    ///
    /// - `InvalidParameter`: `s` is longer than 16 MiB (`MAX_STRING_LENGTH`)
    ///   of UTF-8. Nothing is written.
    /// - Those of `put_data` (TCP: `OutOfBufferMemory`, `SocketInvalid`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_utf8_string("hé")?;
    /// assert_eq!(buf.data(), [3, 0, 0, 0, 0x68, 0xC3, 0xA9]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn put_utf8_string(&mut self, s: &str) -> Result<(), SocketError> {
        put_prefixed(self, s.as_bytes())
    }

    /// Reads a string written by `put_string`: a `u32` byte count (peer byte
    /// order) and that many bytes, decoded as Latin-1 like Godot's
    /// `get_string()` (every byte is a character, so the content never fails;
    /// ASCII is the common case).
    ///
    /// Atomic: the length is peeked and checked first, and nothing is consumed
    /// (not even the length) unless the whole string is buffered. Nothing is
    /// allocated before the length has been checked.
    ///
    /// # Errors
    ///
    /// Nothing is consumed on error:
    /// - `Busy` / `FileEof`: the prefix or the bytes are not all buffered; more
    ///   may arrive (`Busy`) or not (`FileEof`). See
    ///   [`short_read_error`](StreamPeer::short_read_error).
    /// - `OutOfBufferMemory`: the announced length exceeds 16 MiB
    ///   (`MAX_STRING_LENGTH`) or what the peer can ever buffer
    ///   ([`max_buffered_bytes`](StreamPeer::max_buffered_bytes)). Every retry
    ///   fails the same way: the stream is desynchronised; close it (or skip the
    ///   value with `get_u32` + `get_data` if you trust the length).
    /// - Other errors of `get_data` (`SocketInvalid`, ...).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![3, 0, 0, 0, b'a', b'b', b'c']);
    /// assert_eq!(buf.get_string()?, "abc");
    ///
    /// // The length is there, the bytes are not: nothing is consumed.
    /// let mut short = StreamPeerBuffer::from_vec(vec![3, 0, 0, 0, b'a']);
    /// assert_eq!(short.get_string(), Err(SocketError::FileEof));
    /// assert_eq!(short.position(), 0);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_string(&mut self) -> Result<String, SocketError> {
        let len = peek_string_len(self)?;
        read_text(self, PREFIX, len, Text::Latin1)
    }

    /// Reads exactly `len` bytes (no prefix) as a Latin-1 string, like Godot's
    /// `get_string(bytes)`.
    ///
    /// # Errors
    ///
    /// As [`get_string`](StreamPeer::get_string), nothing consumed on error:
    /// `Busy` / `FileEof` when fewer than `len` bytes are buffered,
    /// `OutOfBufferMemory` when `len` exceeds 16 MiB or what the peer can ever
    /// buffer.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(b"GET /".to_vec());
    /// assert_eq!(buf.get_string_len(3)?, "GET");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_string_len(&mut self, len: usize) -> Result<String, SocketError> {
        read_text(self, 0, len, Text::Latin1)
    }

    /// Reads a string written by `put_utf8_string`: a `u32` byte count (peer
    /// byte order) and that many bytes of UTF-8 (Godot `get_utf8_string()`).
    ///
    /// Strict: invalid UTF-8 is an error that consumes nothing (Godot decodes
    /// leniently and logs an error; [`get_utf8_string_lossy`] does that).
    ///
    /// [`get_utf8_string_lossy`]: StreamPeer::get_utf8_string_lossy
    ///
    /// # Errors
    ///
    /// Nothing is consumed on error:
    /// - `InvalidParameter`: the bytes are not valid UTF-8. Retrying fails the
    ///   same way; take the string with `get_utf8_string_lossy` or close.
    /// - `Busy` / `FileEof`: the prefix or the bytes are not all buffered.
    /// - `OutOfBufferMemory`: the announced length exceeds 16 MiB
    ///   (`MAX_STRING_LENGTH`) or what the peer can ever buffer.
    /// - Other errors of `get_data`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![3, 0, 0, 0, 0x68, 0xC3, 0xA9]);
    /// assert_eq!(buf.get_utf8_string()?, "hé");
    ///
    /// let mut bad = StreamPeerBuffer::from_vec(vec![1, 0, 0, 0, 0xFF]);
    /// assert_eq!(bad.get_utf8_string(), Err(SocketError::InvalidParameter));
    /// assert_eq!(bad.position(), 0);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_utf8_string(&mut self) -> Result<String, SocketError> {
        let len = peek_string_len(self)?;
        read_text(self, PREFIX, len, Text::Utf8Strict)
    }

    /// Reads exactly `len` bytes (no prefix) of UTF-8, like Godot's
    /// `get_utf8_string(bytes)`, strictly.
    ///
    /// # Errors
    ///
    /// As [`get_utf8_string`](StreamPeer::get_utf8_string), nothing consumed
    /// on error.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec("日本".as_bytes().to_vec());
    /// assert_eq!(buf.get_utf8_string_len(3)?, "日");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_utf8_string_len(&mut self, len: usize) -> Result<String, SocketError> {
        read_text(self, 0, len, Text::Utf8Strict)
    }

    /// Like [`get_utf8_string`](StreamPeer::get_utf8_string), but invalid
    /// UTF-8 sequences become U+FFFD instead of an error, as Godot does (the
    /// number of U+FFFD per bad sequence may differ from Godot's).
    ///
    /// # Errors
    ///
    /// As `get_utf8_string`, except never `InvalidParameter`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![2, 0, 0, 0, b'a', 0xFF]);
    /// assert_eq!(buf.get_utf8_string_lossy()?, "a\u{FFFD}");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn get_utf8_string_lossy(&mut self) -> Result<String, SocketError> {
        let len = peek_string_len(self)?;
        read_text(self, PREFIX, len, Text::Utf8Lossy)
    }

    /// The Godot major version [`put_var`](StreamPeer::put_var) and
    /// [`get_var`](StreamPeer::get_var) speak (type ids differ between 3.x
    /// and 4.x). Default [`GodotVersion::V4`].
    ///
    /// `StreamPeerTcp` and [`StreamPeerBuffer`] keep it per peer; an
    /// implementor without state keeps the default (override both methods to
    /// store it).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    /// use lunanet::variant::GodotVersion;
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// assert_eq!(buf.godot_version(), GodotVersion::V4);
    /// buf.set_godot_version(GodotVersion::V3);
    /// assert_eq!(buf.godot_version(), GodotVersion::V3);
    /// ```
    fn godot_version(&self) -> GodotVersion {
        GodotVersion::V4
    }

    /// Chooses the Godot major version of `put_var` / `get_var`. The default
    /// implementation cannot store it and logs a warning for anything but V4.
    fn set_godot_version(&mut self, version: GodotVersion) {
        if version != GodotVersion::V4 {
            log::warn!(
                "set_godot_version({version:?}) on a StreamPeer that does not store it; \
                 it keeps speaking V4"
            );
        }
    }

    /// Sends a Godot value as Godot's `StreamPeer.put_var` does: a `u32`
    /// byte length in the peer's byte order, then the encoded value
    /// ([`variant::encode`] for [`godot_version`](StreamPeer::godot_version)),
    /// in ONE `put_data` call, so the frame is queued whole or not at all.
    ///
    /// # Errors
    ///
    /// - `InvalidParameter`: the value cannot be encoded for this version
    ///   (a Godot 4-only type towards Godot 3, nesting over 1024 levels, a
    ///   frame of 2 GiB or more); the cause is logged. Nothing is sent.
    /// - Those of `put_data` (TCP: `OutOfBufferMemory`, `SocketInvalid`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    /// use lunanet::variant::{Variant, Vector2};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_var(&Variant::from(Vector2::new(1.5, -2.0)))?;
    /// assert_eq!(buf.data(), [0x0c, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]);
    ///
    /// buf.seek(0)?;
    /// assert_eq!(buf.get_var()?, Variant::from(Vector2::new(1.5, -2.0)));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn put_var(&mut self, value: &Variant) -> Result<(), SocketError> {
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(&[0; PREFIX]);
        if let Err(e) = variant::encode(value, self.godot_version(), &mut frame) {
            log::warn!("put_var: {e}");
            return Err(SocketError::InvalidParameter);
        }
        let len = u32::try_from(frame.len() - PREFIX)
            .ok()
            .filter(|&n| n <= i32::MAX as u32)
            .ok_or(SocketError::InvalidParameter)?;
        let header = if self.is_big_endian() {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        };
        frame[..PREFIX].copy_from_slice(&header);
        self.put_data(&frame)
    }

    /// Receives a Godot value sent with `StreamPeer.put_var`, with the
    /// default [`Limits`]. See [`get_var_with`](StreamPeer::get_var_with).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
    /// use lunanet::variant::Variant;
    ///
    /// // A frame of 8 bytes holding the int 7, then half of another frame.
    /// let mut buf = StreamPeerBuffer::from_vec(vec![8, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 8, 0]);
    /// assert_eq!(buf.get_var()?, Variant::Int(7));
    /// assert_eq!(buf.get_var(), Err(SocketError::FileEof)); // incomplete: nothing consumed
    /// assert_eq!(buf.available_bytes(), 2);
    /// # Ok::<(), SocketError>(())
    /// ```
    fn get_var(&mut self) -> Result<Variant, SocketError> {
        self.get_var_with(&Limits::default())
    }

    /// Receives one `put_var` frame and decodes it ([`variant::decode`] for
    /// [`godot_version`](StreamPeer::godot_version), under `limits`).
    ///
    /// Atomic: the length is peeked and checked first; nothing is consumed
    /// (and nothing allocated) until the whole frame is buffered. Bytes in
    /// the frame after the value are ignored, as Godot does. A frame of up to
    /// 256 bytes is read on the stack: decoding a scalar allocates nothing.
    ///
    /// # Errors
    ///
    /// - `Busy` / `FileEof`: the frame is not complete yet (more may come, or
    ///   not); nothing consumed.
    /// - `OutOfBufferMemory`: the announced length is over
    ///   `limits.max_bytes` (or 2 GiB, or what the peer can ever buffer).
    ///   Refused before allocation, nothing consumed; every retry fails the
    ///   same way: the stream cannot be resynchronised, close it.
    /// - `InvalidData`: the frame was complete but its payload is not a valid
    ///   value (the cause is logged at debug level). The frame **was
    ///   consumed**: the stream stays in sync and the next call reads the
    ///   next frame.
    /// - Other errors of `get_data`.
    fn get_var_with(&mut self, limits: &Limits) -> Result<Variant, SocketError> {
        let mut header = [0u8; PREFIX];
        if self.peek_data(&mut header) < PREFIX {
            if self.max_buffered_bytes() < PREFIX {
                return Err(SocketError::OutOfBufferMemory);
            }
            return Err(self.short_read_error());
        }
        let len = if self.is_big_endian() {
            u32::from_be_bytes(header)
        } else {
            u32::from_le_bytes(header)
        };
        // Godot reads the prefix as a signed 32-bit length.
        let len = match usize::try_from(len) {
            Ok(n) if n <= i32::MAX as usize && n <= limits.max_bytes => n,
            _ => {
                log::debug!("get_var: a {len}-byte frame is over the limit");
                return Err(SocketError::OutOfBufferMemory);
            }
        };
        let total = PREFIX + len;
        if total > self.max_buffered_bytes() {
            return Err(SocketError::OutOfBufferMemory);
        }
        if self.available_bytes() < total {
            return Err(self.short_read_error());
        }
        let version = self.godot_version();
        let decoded = if total <= STACK_BYTES {
            let mut frame = [0u8; STACK_BYTES];
            self.get_data(&mut frame[..total])?;
            variant::decode(&frame[PREFIX..total], version, limits)
        } else {
            // `total` is bounded by the limit and fully buffered.
            let mut frame = vec![0u8; total];
            self.get_data(&mut frame)?;
            variant::decode(&frame[PREFIX..], version, limits)
        };
        match decoded {
            Ok((value, _)) => Ok(value),
            Err(e) => {
                log::debug!("get_var: {e}");
                Err(SocketError::InvalidData)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamPeerBuffer;
    use crate::stream::testing::{Pipe, garbage};
    use std::fmt;

    /// Puts with `put` into a fresh buffer of the given byte order, checks the
    /// bytes, then reads them back with `get` and checks the value and that
    /// every byte was consumed.
    fn check<T: PartialEq + fmt::Debug + Copy>(
        big_endian: bool,
        value: T,
        bytes: &[u8],
        put: fn(&mut StreamPeerBuffer, T) -> Result<(), SocketError>,
        get: fn(&mut StreamPeerBuffer) -> Result<T, SocketError>,
    ) {
        let mut buf = StreamPeerBuffer::new();
        buf.set_big_endian(big_endian);
        put(&mut buf, value).unwrap();
        assert_eq!(buf.data(), bytes, "put {value:?} big_endian={big_endian}");

        let mut buf = StreamPeerBuffer::from_vec(bytes.to_vec());
        buf.set_big_endian(big_endian);
        assert_eq!(get(&mut buf), Ok(value), "get big_endian={big_endian}");
        assert_eq!(buf.available_bytes(), 0);
    }

    /// `check` in both byte orders: `le` for little-endian, `be` for big.
    fn check_both<T: PartialEq + fmt::Debug + Copy>(
        value: T,
        le: &[u8],
        be: &[u8],
        put: fn(&mut StreamPeerBuffer, T) -> Result<(), SocketError>,
        get: fn(&mut StreamPeerBuffer) -> Result<T, SocketError>,
    ) {
        check(false, value, le, put, get);
        check(true, value, be, put, get);
    }

    #[test]
    fn u8_and_i8_vectors() {
        check_both(0xABu8, &[0xAB], &[0xAB], |b, v| b.put_u8(v), |b| b.get_u8());
        check_both(0u8, &[0], &[0], |b, v| b.put_u8(v), |b| b.get_u8());
        check_both(-2i8, &[0xFE], &[0xFE], |b, v| b.put_i8(v), |b| b.get_i8());
        check_both(
            i8::MIN,
            &[0x80],
            &[0x80],
            |b, v| b.put_i8(v),
            |b| b.get_i8(),
        );
        check_both(127i8, &[0x7F], &[0x7F], |b, v| b.put_i8(v), |b| b.get_i8());
    }

    #[test]
    fn u16_and_i16_vectors() {
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_u16(v),
            |b: &mut StreamPeerBuffer| b.get_u16(),
        );
        check_both(0x0102u16, &[0x02, 0x01], &[0x01, 0x02], p, g);
        check_both(0xFFFEu16, &[0xFE, 0xFF], &[0xFF, 0xFE], p, g);
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_i16(v),
            |b: &mut StreamPeerBuffer| b.get_i16(),
        );
        check_both(-2i16, &[0xFE, 0xFF], &[0xFF, 0xFE], p, g);
        check_both(i16::MIN, &[0x00, 0x80], &[0x80, 0x00], p, g);
        check_both(0x0102i16, &[0x02, 0x01], &[0x01, 0x02], p, g);
    }

    #[test]
    fn u32_and_i32_vectors() {
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_u32(v),
            |b: &mut StreamPeerBuffer| b.get_u32(),
        );
        check_both(0x0102_0304u32, &[4, 3, 2, 1], &[1, 2, 3, 4], p, g);
        check_both(u32::MAX, &[0xFF; 4], &[0xFF; 4], p, g);
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_i32(v),
            |b: &mut StreamPeerBuffer| b.get_i32(),
        );
        check_both(
            -2i32,
            &[0xFE, 0xFF, 0xFF, 0xFF],
            &[0xFF, 0xFF, 0xFF, 0xFE],
            p,
            g,
        );
        check_both(i32::MIN, &[0, 0, 0, 0x80], &[0x80, 0, 0, 0], p, g);
        check_both(
            -123_456_789i32, // 0xF8A432EB
            &[0xEB, 0x32, 0xA4, 0xF8],
            &[0xF8, 0xA4, 0x32, 0xEB],
            p,
            g,
        );
    }

    #[test]
    fn u64_and_i64_vectors() {
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_u64(v),
            |b: &mut StreamPeerBuffer| b.get_u64(),
        );
        check_both(
            0x0102_0304_0506_0708u64,
            &[8, 7, 6, 5, 4, 3, 2, 1],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            p,
            g,
        );
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_i64(v),
            |b: &mut StreamPeerBuffer| b.get_i64(),
        );
        check_both(
            -2i64,
            &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE],
            p,
            g,
        );
        check_both(
            i64::MIN,
            &[0, 0, 0, 0, 0, 0, 0, 0x80],
            &[0x80, 0, 0, 0, 0, 0, 0, 0],
            p,
            g,
        );
    }

    #[test]
    fn f32_and_f64_vectors() {
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_f32(v),
            |b: &mut StreamPeerBuffer| b.get_f32(),
        );
        check_both(
            1.5f32,
            &[0x00, 0x00, 0xC0, 0x3F],
            &[0x3F, 0xC0, 0x00, 0x00],
            p,
            g,
        );
        check_both(
            -2.5f32,
            &[0x00, 0x00, 0x20, 0xC0],
            &[0xC0, 0x20, 0x00, 0x00],
            p,
            g,
        );
        let (p, g) = (
            |b: &mut StreamPeerBuffer, v| b.put_f64(v),
            |b: &mut StreamPeerBuffer| b.get_f64(),
        );
        check_both(
            1.5f64,
            &[0, 0, 0, 0, 0, 0, 0xF8, 0x3F],
            &[0x3F, 0xF8, 0, 0, 0, 0, 0, 0],
            p,
            g,
        );
        check_both(
            -2.5f64,
            &[0, 0, 0, 0, 0, 0, 0x04, 0xC0],
            &[0xC0, 0x04, 0, 0, 0, 0, 0, 0],
            p,
            g,
        );
    }

    #[test]
    fn float_bits_survive_including_nan_payloads() {
        let nan = f32::from_bits(0x7FC0_1234);
        let mut buf = StreamPeerBuffer::new();
        buf.put_f32(nan).unwrap();
        buf.put_f64(f64::from_bits(0xFFF8_0000_0000_0001)).unwrap();
        buf.put_f32(-0.0).unwrap();
        buf.seek(0).unwrap();
        assert_eq!(buf.get_f32().unwrap().to_bits(), 0x7FC0_1234);
        assert_eq!(buf.get_f64().unwrap().to_bits(), 0xFFF8_0000_0000_0001);
        assert_eq!(buf.get_f32().unwrap().to_bits(), 0x8000_0000);
    }

    fn check_string(
        big_endian: bool,
        s: &str,
        bytes: &[u8],
        put: fn(&mut StreamPeerBuffer, &str) -> Result<(), SocketError>,
        get: fn(&mut StreamPeerBuffer) -> Result<String, SocketError>,
    ) {
        let mut buf = StreamPeerBuffer::new();
        buf.set_big_endian(big_endian);
        put(&mut buf, s).unwrap();
        assert_eq!(buf.data(), bytes, "{s:?} big_endian={big_endian}");
        let mut buf = StreamPeerBuffer::from_vec(bytes.to_vec());
        buf.set_big_endian(big_endian);
        assert_eq!(get(&mut buf).as_deref(), Ok(s));
        assert_eq!(buf.available_bytes(), 0);
    }

    #[test]
    fn string_vectors() {
        let (p, g) = (
            |b: &mut StreamPeerBuffer, s: &str| b.put_string(s),
            |b: &mut StreamPeerBuffer| b.get_string(),
        );
        check_string(false, "abc", &[3, 0, 0, 0, 0x61, 0x62, 0x63], p, g);
        check_string(true, "abc", &[0, 0, 0, 3, 0x61, 0x62, 0x63], p, g);
        check_string(false, "", &[0, 0, 0, 0], p, g);
        check_string(true, "", &[0, 0, 0, 0], p, g);
        let long = "x".repeat(300); // past the stack buffer
        let mut le = vec![0x2C, 0x01, 0, 0];
        le.extend(long.bytes());
        check_string(false, &long, &le, p, g);
        let mut be = vec![0, 0, 0x01, 0x2C];
        be.extend(long.bytes());
        check_string(true, &long, &be, p, g);
    }

    #[test]
    fn utf8_string_vectors() {
        let (p, g) = (
            |b: &mut StreamPeerBuffer, s: &str| b.put_utf8_string(s),
            |b: &mut StreamPeerBuffer| b.get_utf8_string(),
        );
        let hello = [6, 0, 0, 0, 0x68, 0xC3, 0xA9, 0x6C, 0x6C, 0x6F];
        check_string(false, "héllo", &hello, p, g);
        let hello_be = [0, 0, 0, 6, 0x68, 0xC3, 0xA9, 0x6C, 0x6C, 0x6F];
        check_string(true, "héllo", &hello_be, p, g);
        let nihon = [6, 0, 0, 0, 0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC];
        check_string(false, "日本", &nihon, p, g);
        let party = [0, 0, 0, 4, 0xF0, 0x9F, 0x8E, 0x89];
        check_string(true, "🎉", &party, p, g);
        check_string(false, "abc", &[3, 0, 0, 0, 0x61, 0x62, 0x63], p, g);
        check_string(false, "", &[0, 0, 0, 0], p, g);
        // The lossy getter reads the same bytes the same way.
        let g = |b: &mut StreamPeerBuffer| b.get_utf8_string_lossy();
        check_string(false, "héllo", &hello, p, g);
    }

    #[test]
    fn put_string_refuses_non_ascii_and_writes_nothing() {
        let mut buf = StreamPeerBuffer::new();
        assert_eq!(buf.put_string("héllo"), Err(SocketError::InvalidParameter));
        assert_eq!(buf.put_string("日本"), Err(SocketError::InvalidParameter));
        assert_eq!(buf.size(), 0);
        assert_eq!(buf.position(), 0);
    }

    #[test]
    fn get_string_decodes_latin1_like_godot_and_keeps_nul() {
        // 0xE9 is 'é' in Latin-1; C3 A9 is two Latin-1 characters, not UTF-8.
        let mut buf = StreamPeerBuffer::from_vec(vec![5, 0, 0, 0, 0xE9, b'A', 0, 0xC3, 0xA9]);
        assert_eq!(buf.get_string().unwrap(), "éA\0Ã©");
        assert_eq!(buf.available_bytes(), 0);
    }

    #[test]
    fn get_string_len_and_get_utf8_string_len() {
        let mut buf = StreamPeerBuffer::from_vec("ab日本".as_bytes().to_vec());
        assert_eq!(buf.get_string_len(0).unwrap(), "");
        assert_eq!(buf.get_string_len(2).unwrap(), "ab");
        // Splitting a character: strict UTF-8 refuses and consumes nothing.
        assert_eq!(
            buf.get_utf8_string_len(2),
            Err(SocketError::InvalidParameter)
        );
        assert_eq!(buf.position(), 2);
        assert_eq!(buf.get_utf8_string_len(3).unwrap(), "日");
        assert_eq!(buf.get_utf8_string_len(4), Err(SocketError::FileEof));
        assert_eq!(buf.position(), 5);
        assert_eq!(buf.get_utf8_string_len(3).unwrap(), "本");
        assert_eq!(
            buf.get_string_len(MAX_STRING_LENGTH + 1),
            Err(SocketError::OutOfBufferMemory)
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_that_consumes_nothing_then_lossy_takes_it() {
        let bytes = vec![4, 0, 0, 0, b'o', b'k', 0xC3, 0x28];
        let mut buf = StreamPeerBuffer::from_vec(bytes);
        assert_eq!(buf.get_utf8_string(), Err(SocketError::InvalidParameter));
        assert_eq!(buf.position(), 0);
        assert_eq!(buf.get_utf8_string_lossy().unwrap(), "ok\u{FFFD}(");
        assert_eq!(buf.available_bytes(), 0);
    }

    #[test]
    fn every_fixed_size_get_with_one_byte_missing_consumes_nothing() {
        type Getter = fn(&mut StreamPeerBuffer) -> Result<(), SocketError>;
        let cases: [(usize, Getter); 10] = [
            (1, |b| b.get_u8().map(drop)),
            (1, |b| b.get_i8().map(drop)),
            (2, |b| b.get_u16().map(drop)),
            (2, |b| b.get_i16().map(drop)),
            (4, |b| b.get_u32().map(drop)),
            (4, |b| b.get_i32().map(drop)),
            (8, |b| b.get_u64().map(drop)),
            (8, |b| b.get_i64().map(drop)),
            (4, |b| b.get_f32().map(drop)),
            (8, |b| b.get_f64().map(drop)),
        ];
        for (n, get) in cases {
            let mut buf = StreamPeerBuffer::from_vec(vec![0x11; n - 1]);
            assert_eq!(get(&mut buf), Err(SocketError::FileEof), "width {n}");
            assert_eq!(buf.position(), 0);
            buf.resize(n);
            assert_eq!(get(&mut buf), Ok(()));
            assert_eq!(buf.available_bytes(), 0);
        }
    }

    #[test]
    fn pipe_get_u32_with_three_bytes_is_busy_then_eof_and_consumes_nothing() {
        let mut pipe = Pipe::new();
        pipe.feed(&[4, 3, 2]);
        assert_eq!(pipe.get_u32(), Err(SocketError::Busy));
        assert_eq!(pipe.available_bytes(), 3);
        pipe.feed(&[1]);
        assert_eq!(pipe.get_u32(), Ok(0x0102_0304));

        pipe.feed(&[4, 3, 2]);
        pipe.closed = true;
        assert_eq!(pipe.get_u32(), Err(SocketError::FileEof));
        assert_eq!(pipe.available_bytes(), 3);
    }

    #[test]
    fn string_with_length_but_not_bytes_consumes_nothing() {
        let mut pipe = Pipe::new();
        pipe.feed(&[5, 0]);
        assert_eq!(pipe.get_string(), Err(SocketError::Busy)); // half a prefix
        pipe.feed(&[0, 0, b'h', b'e']);
        assert_eq!(pipe.get_string(), Err(SocketError::Busy)); // prefix, 2 of 5 bytes
        assert_eq!(pipe.get_utf8_string(), Err(SocketError::Busy));
        assert_eq!(pipe.get_utf8_string_lossy(), Err(SocketError::Busy));
        assert_eq!(pipe.available_bytes(), 6);
        pipe.feed(b"llo");
        assert_eq!(pipe.get_string().unwrap(), "hello");
        assert_eq!(pipe.available_bytes(), 0);

        pipe.feed(&[5, 0, 0, 0, b'h']);
        pipe.closed = true;
        assert_eq!(pipe.get_utf8_string(), Err(SocketError::FileEof));
        assert_eq!(pipe.available_bytes(), 5);
    }

    #[test]
    fn oversized_string_length_is_rejected_before_allocating() {
        // 0xFFFF_FFFF announced, 2 bytes present: rejected without waiting for
        // (or allocating) 4 GiB.
        let mut buf = StreamPeerBuffer::from_vec(vec![0xFF, 0xFF, 0xFF, 0xFF, 1, 2]);
        assert_eq!(buf.get_string(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(buf.get_utf8_string(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(
            buf.get_utf8_string_lossy(),
            Err(SocketError::OutOfBufferMemory)
        );
        assert_eq!(buf.position(), 0);

        // Just over the limit.
        let over = u32::try_from(MAX_STRING_LENGTH + 1).unwrap();
        let mut buf = StreamPeerBuffer::from_vec(over.to_le_bytes().to_vec());
        assert_eq!(buf.get_string(), Err(SocketError::OutOfBufferMemory));

        // More than the peer can ever buffer: OutOfBufferMemory, not Busy forever.
        let mut pipe = Pipe::with_read_limit(16);
        pipe.feed(&[13, 0, 0, 0]);
        assert_eq!(pipe.get_string(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pipe.available_bytes(), 4);
        let mut pipe = Pipe::with_read_limit(16);
        pipe.feed(&[12, 0, 0, 0]);
        assert_eq!(pipe.get_string(), Err(SocketError::Busy)); // 4 + 12 fits
        pipe.feed(&[b'z'; 12]);
        assert_eq!(pipe.get_string().unwrap(), "z".repeat(12));
    }

    #[test]
    fn typed_get_larger_than_the_peer_can_hold_is_out_of_buffer_memory() {
        let mut pipe = Pipe::with_read_limit(4);
        pipe.feed(&[0; 8]);
        assert_eq!(pipe.get_u64(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pipe.get_u32(), Ok(0));
        assert_eq!(pipe.get_u32(), Ok(0));
    }

    #[test]
    fn typed_puts_are_atomic() {
        let mut pipe = Pipe {
            write_limit: Some(6),
            ..Pipe::new()
        };
        pipe.put_u32(1).unwrap();
        assert_eq!(pipe.put_u32(2), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pipe.put_string("a"), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pipe.tx, [1, 0, 0, 0]);
        pipe.put_u16(3).unwrap();
        assert_eq!(pipe.tx, [1, 0, 0, 0, 3, 0]);
    }

    #[test]
    fn oversized_put_string_is_refused() {
        let big = "a".repeat(MAX_STRING_LENGTH + 1);
        let mut buf = StreamPeerBuffer::new();
        assert_eq!(buf.put_string(&big), Err(SocketError::InvalidParameter));
        assert_eq!(
            buf.put_utf8_string(&big),
            Err(SocketError::InvalidParameter)
        );
        assert_eq!(buf.size(), 0);
    }

    #[test]
    fn mixed_round_trip_in_both_byte_orders() {
        for big_endian in [false, true] {
            let mut buf = StreamPeerBuffer::new();
            buf.set_big_endian(big_endian);
            buf.put_u8(200).unwrap();
            buf.put_i8(-100).unwrap();
            buf.put_u16(65_000).unwrap();
            buf.put_i16(-30_000).unwrap();
            buf.put_u32(4_000_000_000).unwrap();
            buf.put_i32(-2_000_000_000).unwrap();
            buf.put_u64(u64::MAX - 1).unwrap();
            buf.put_i64(i64::MIN + 1).unwrap();
            buf.put_f32(-0.25).unwrap();
            buf.put_f64(std::f64::consts::PI).unwrap();
            buf.put_string("ascii").unwrap();
            buf.put_utf8_string("ünïcödé ✓").unwrap();
            assert_eq!(buf.available_bytes(), 0);

            buf.seek(0).unwrap();
            assert_eq!(buf.get_u8(), Ok(200));
            assert_eq!(buf.get_i8(), Ok(-100));
            assert_eq!(buf.get_u16(), Ok(65_000));
            assert_eq!(buf.get_i16(), Ok(-30_000));
            assert_eq!(buf.get_u32(), Ok(4_000_000_000));
            assert_eq!(buf.get_i32(), Ok(-2_000_000_000));
            assert_eq!(buf.get_u64(), Ok(u64::MAX - 1));
            assert_eq!(buf.get_i64(), Ok(i64::MIN + 1));
            assert_eq!(buf.get_f32(), Ok(-0.25));
            assert_eq!(buf.get_f64(), Ok(std::f64::consts::PI));
            assert_eq!(buf.get_string().as_deref(), Ok("ascii"));
            assert_eq!(buf.get_utf8_string().as_deref(), Ok("ünïcödé ✓"));
            assert_eq!(buf.get_u8(), Err(SocketError::FileEof));
        }
    }

    #[test]
    fn byte_order_can_change_mid_stream() {
        let mut buf = StreamPeerBuffer::new();
        buf.put_u16(0x0102).unwrap();
        buf.set_big_endian(true);
        buf.put_u16(0x0102).unwrap();
        assert_eq!(buf.data(), [2, 1, 1, 2]);
    }

    #[test]
    fn short_read_error_default_and_buffer_override() {
        let mut pipe = Pipe::new();
        assert_eq!(pipe.short_read_error(), SocketError::Busy);
        pipe.feed(&[0; 300]); // probe past the stack buffer
        assert_eq!(pipe.short_read_error(), SocketError::Busy);
        pipe.closed = true;
        assert_eq!(pipe.short_read_error(), SocketError::FileEof);
        assert_eq!(pipe.available_bytes(), 300);
        let mut buf = StreamPeerBuffer::new();
        assert_eq!(buf.short_read_error(), SocketError::FileEof);
    }

    #[test]
    fn forwarding_impls_and_trait_objects() {
        fn write_through<P: StreamPeer>(mut peer: P) {
            peer.put_u32(5).unwrap();
            peer.put_string("x").unwrap();
            assert_eq!(peer.short_read_error(), SocketError::FileEof);
        }
        let mut buf = StreamPeerBuffer::new();
        write_through(&mut buf); // the `&mut P` impl
        assert_eq!(buf.data(), [5, 0, 0, 0, 1, 0, 0, 0, b'x']);
        let mut boxed: Box<dyn StreamPeer> = Box::new(buf);
        boxed.set_big_endian(false);
        assert_eq!(boxed.available_bytes(), 0);
        assert_eq!(boxed.get_u8(), Err(SocketError::FileEof));
        assert_eq!(boxed.short_read_error(), SocketError::FileEof);
        assert_eq!(boxed.max_buffered_bytes(), usize::MAX);

        let mut pipe = Pipe::new();
        pipe.feed(&[1, 0, 0, 0, b'q']);
        let dyn_peer: &mut dyn StreamPeer = &mut pipe;
        assert_eq!(dyn_peer.get_string().as_deref(), Ok("q"));
    }

    #[test]
    fn garbage_input_never_panics_and_errors_consume_nothing() {
        for seed in 0..300u64 {
            let len = usize::try_from(seed % 40).unwrap();
            let mut bytes = garbage(seed, len);
            // Make short length prefixes common so strings sometimes decode.
            if seed % 3 == 0 && bytes.len() > 4 {
                bytes[0] %= 8;
                bytes[1..4].fill(0);
            }
            let mut buf = StreamPeerBuffer::from_vec(bytes);
            buf.set_big_endian(seed % 2 == 1);
            for step in 0..64u64 {
                let before = buf.position();
                let result = match (seed + step) % 14 {
                    0 => buf.get_u8().map(drop),
                    1 => buf.get_i16().map(drop),
                    2 => buf.get_u32().map(drop),
                    3 => buf.get_i64().map(drop),
                    4 => buf.get_f32().map(drop),
                    5 => buf.get_f64().map(drop),
                    6 => buf.get_string().map(drop),
                    7 => buf.get_utf8_string().map(drop),
                    8 => buf.get_utf8_string_lossy().map(drop),
                    9 => buf.get_string_len(usize::try_from(step).unwrap()).map(drop),
                    10 => buf.get_utf8_string_len(3).map(drop),
                    11 => buf.get_u16().map(drop),
                    12 => buf.get_i8().map(drop),
                    _ => buf.get_u64().map(drop),
                };
                if result.is_err() {
                    assert_eq!(buf.position(), before, "seed {seed} step {step}");
                }
            }
        }
    }

    #[test]
    fn debug_output_is_bounded() {
        let small = format!("{:?}", StreamPeerBuffer::from_vec(vec![1, 2]));
        assert!(small.contains("data: [1, 2]"), "{small}");
        let big = format!("{:?}", StreamPeerBuffer::from_vec(vec![0; 10_000]));
        assert!(big.len() < 600, "{big}");
        assert!(big.contains("size: 10000"));
    }
}
