//! [`StreamPeerBuffer`]: the in-memory, seekable [`StreamPeer`].

use std::fmt;
use std::io;

use super::peer::StreamPeer;
use crate::SocketError;
use crate::variant::GodotVersion;

/// An in-memory, seekable [`StreamPeer`] (Godot `StreamPeerBuffer`).
///
/// A byte vector and a position: `put_*` writes at the position (overwriting,
/// and extending the data past its end), `get_*` reads from the position, and
/// both advance it. `available_bytes()` is `size() - position()`. Useful to
/// build or parse messages with the typed helpers, and in tests.
///
/// Reads are all-or-nothing like every `StreamPeer`: a read needing more bytes
/// than remain returns [`SocketError::FileEof`] (no more bytes will ever
/// arrive) and leaves the position unchanged. Also implements
/// `std::io::{Read, Write, Seek}`.
///
/// `Clone` copies everything (data, position, byte order);
/// [`duplicate`](StreamPeerBuffer::duplicate) is Godot's copy (data only).
///
/// # Example
///
/// ```
/// use lunanet::{StreamPeer, StreamPeerBuffer};
///
/// let mut buf = StreamPeerBuffer::new();
/// buf.put_u16(7)?;
/// buf.put_utf8_string("hi")?;
/// assert_eq!(buf.position(), 8);
///
/// buf.seek(0)?;
/// assert_eq!(buf.get_u16()?, 7);
/// assert_eq!(buf.get_utf8_string()?, "hi");
/// assert_eq!(buf.available_bytes(), 0);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Default, Clone, PartialEq, Eq)]
pub struct StreamPeerBuffer {
    data: Vec<u8>,
    /// Invariant: `position <= data.len()`.
    position: usize,
    big_endian: bool,
    godot_version: GodotVersion,
}

impl StreamPeerBuffer {
    /// An empty buffer at position 0, little-endian.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::StreamPeerBuffer;
    ///
    /// let buf = StreamPeerBuffer::new();
    /// assert_eq!((buf.size(), buf.position()), (0, 0));
    /// ```
    pub fn new() -> StreamPeerBuffer {
        StreamPeerBuffer::default()
    }

    /// A buffer holding `data`, at position 0 (ready to read it).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![4, 3, 2, 1]);
    /// assert_eq!(buf.get_u32()?, 0x0102_0304);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn from_vec(data: Vec<u8>) -> StreamPeerBuffer {
        StreamPeerBuffer {
            data,
            position: 0,
            big_endian: false,
            godot_version: GodotVersion::V4,
        }
    }

    /// All the data, whatever the position (Godot `data_array` /
    /// `get_data_array`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_u8(1)?;
    /// assert_eq!(buf.data(), [1]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Replaces the data and moves to position 0 (Godot `set_data_array`).
    /// The byte order is kept.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_u8(1)?;
    /// buf.set_data(vec![9, 8]);
    /// assert_eq!((buf.position(), buf.get_u8()?), (0, 9));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn set_data(&mut self, data: Vec<u8>) {
        self.data = data;
        self.position = 0;
    }

    /// The data, consuming the buffer.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_u16(0x0102)?;
    /// assert_eq!(buf.into_vec(), vec![2, 1]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    /// The read/write position (Godot `get_position`); always `<= size()`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::new();
    /// buf.put_u32(0)?;
    /// assert_eq!(buf.position(), 4);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn position(&self) -> usize {
        self.position
    }

    /// Moves the position to `position` (Godot `seek`). `size()` itself is a
    /// valid position (the end).
    ///
    /// # Errors
    ///
    /// `InvalidParameter` when `position > size()`; the position is unchanged
    /// (Godot logs an error and ignores the call).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{SocketError, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3]);
    /// buf.seek(3)?;
    /// assert_eq!(buf.seek(4), Err(SocketError::InvalidParameter));
    /// assert_eq!(buf.position(), 3);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn seek(&mut self, position: usize) -> Result<(), SocketError> {
        if position > self.data.len() {
            return Err(SocketError::InvalidParameter);
        }
        self.position = position;
        Ok(())
    }

    /// The number of bytes of data (Godot `get_size`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::StreamPeerBuffer;
    ///
    /// assert_eq!(StreamPeerBuffer::from_vec(vec![0; 5]).size(), 5);
    /// ```
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Sets the size of the data (Godot `resize`): new bytes are zero; when
    /// shrinking below the position, the position moves to the new end
    /// (Godot leaves it past the end).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::StreamPeerBuffer;
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3]);
    /// buf.seek(3)?;
    /// buf.resize(1);
    /// assert_eq!((buf.data(), buf.position()), (&[1u8][..], 1));
    /// buf.resize(3);
    /// assert_eq!(buf.data(), [1, 0, 0]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn resize(&mut self, size: usize) {
        self.data.resize(size, 0);
        self.position = self.position.min(size);
    }

    /// Empties the data and moves to position 0 (Godot `clear`). The byte
    /// order and the allocation are kept.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::StreamPeerBuffer;
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3]);
    /// buf.clear();
    /// assert_eq!((buf.size(), buf.position()), (0, 0));
    /// ```
    pub fn clear(&mut self) {
        self.data.clear();
        self.position = 0;
    }

    /// Godot's `duplicate`: a new buffer with a copy of the data, at position
    /// 0 and little-endian (use `clone()` to copy the position and byte order
    /// too).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{StreamPeer, StreamPeerBuffer};
    ///
    /// let mut buf = StreamPeerBuffer::from_vec(vec![1, 2]);
    /// buf.set_big_endian(true);
    /// buf.seek(2)?;
    /// let copy = buf.duplicate();
    /// assert_eq!(copy.data(), [1, 2]);
    /// assert_eq!((copy.position(), copy.is_big_endian()), (0, false));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn duplicate(&self) -> StreamPeerBuffer {
        StreamPeerBuffer::from_vec(self.data.clone())
    }

    /// The bytes after the position (what the next reads will see).
    fn remaining(&self) -> &[u8] {
        self.data.get(self.position..).unwrap_or(&[])
    }
}

impl fmt::Debug for StreamPeerBuffer {
    /// Shows the size, position, byte order and at most the first 64 bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let mut s = f.debug_struct("StreamPeerBuffer");
        s.field("size", &self.data.len())
            .field("position", &self.position)
            .field("big_endian", &self.big_endian);
        if self.data.len() <= SHOWN {
            s.field("data", &self.data).finish()
        } else {
            s.field("data_head", &&self.data[..SHOWN])
                .finish_non_exhaustive()
        }
    }
}

impl From<Vec<u8>> for StreamPeerBuffer {
    /// Same as [`StreamPeerBuffer::from_vec`].
    fn from(data: Vec<u8>) -> StreamPeerBuffer {
        StreamPeerBuffer::from_vec(data)
    }
}

impl From<&[u8]> for StreamPeerBuffer {
    /// A buffer holding a copy of `data`, at position 0.
    fn from(data: &[u8]) -> StreamPeerBuffer {
        StreamPeerBuffer::from_vec(data.to_vec())
    }
}

impl StreamPeer for StreamPeerBuffer {
    /// Writes at the position, overwriting and extending; never fails.
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        let start = self.position;
        let end = start + data.len(); // both fit in memory: no overflow
        if start == self.data.len() {
            self.data.extend_from_slice(data);
        } else {
            if end > self.data.len() {
                self.data.resize(end, 0);
            }
            self.data[start..end].copy_from_slice(data);
        }
        self.position = end;
        Ok(())
    }

    /// Writes everything (as `put_data`) and returns `data.len()`.
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        self.put_data(data)?;
        Ok(data.len())
    }

    /// All-or-nothing: `FileEof` (position unchanged) when fewer than
    /// `buf.len()` bytes remain. (Godot consumes the remaining bytes and
    /// returns `ERR_INVALID_PARAMETER`.)
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        let src = self
            .remaining()
            .get(..buf.len())
            .ok_or(SocketError::FileEof)?;
        buf.copy_from_slice(src);
        self.position += buf.len();
        Ok(())
    }

    /// Takes up to `buf.len()` bytes; `FileEof` when none remain and `buf`
    /// is not empty (as Godot).
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.peek_data(buf);
        if n == 0 {
            return Err(SocketError::FileEof);
        }
        self.position += n;
        Ok(n)
    }

    fn available_bytes(&self) -> usize {
        self.data.len() - self.position
    }

    fn peek_data(&self, buf: &mut [u8]) -> usize {
        let src = self.remaining();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        n
    }

    fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    fn set_big_endian(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
    }

    fn godot_version(&self) -> GodotVersion {
        self.godot_version
    }

    fn set_godot_version(&mut self, version: GodotVersion) {
        self.godot_version = version;
    }

    /// Always `FileEof`: no byte is ever added except by writing.
    fn short_read_error(&mut self) -> SocketError {
        SocketError::FileEof
    }
}

impl io::Read for StreamPeerBuffer {
    /// Reads from the position; `Ok(0)` at the end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.peek_data(buf);
        self.position += n;
        Ok(n)
    }
}

impl io::Write for StreamPeerBuffer {
    /// Writes all of `buf` at the position (as `put_data`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put_partial_data(buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Seek for StreamPeerBuffer {
    /// Moves the position; as Godot's `seek`, a target before 0 or past
    /// `size()` is an `InvalidInput` error and leaves the position unchanged.
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let target = match pos {
            io::SeekFrom::Start(n) => usize::try_from(n).ok(),
            io::SeekFrom::End(off) => offset(self.data.len(), off),
            io::SeekFrom::Current(off) => offset(self.position, off),
        };
        let target = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        StreamPeerBuffer::seek(self, target).map_err(io::Error::from)?;
        Ok(target as u64)
    }
}

/// `base + off` when it is a valid `usize`.
fn offset(base: usize, off: i64) -> Option<usize> {
    let base = i64::try_from(base).ok()?;
    usize::try_from(base.checked_add(off)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn buffer_writes_overwrite_then_extend() {
        let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3, 4]);
        buf.seek(2).unwrap();
        buf.put_data(&[9, 9, 9]).unwrap();
        assert_eq!(buf.data(), [1, 2, 9, 9, 9]);
        assert_eq!(buf.position(), 5);
        buf.seek(1).unwrap();
        buf.put_u8(7).unwrap();
        assert_eq!(buf.data(), [1, 7, 9, 9, 9]);
        assert_eq!(buf.available_bytes(), 3);
        buf.put_data(&[]).unwrap();
        assert_eq!(buf.position(), 2);
        assert_eq!(buf.put_partial_data(&[5, 5]), Ok(2));
        assert_eq!(buf.data(), [1, 7, 5, 5, 9]);
    }

    #[test]
    fn buffer_seek_resize_clear_set_data_duplicate() {
        let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3]);
        assert_eq!(buf.seek(4), Err(SocketError::InvalidParameter));
        assert_eq!(buf.position(), 0);
        buf.seek(3).unwrap();
        assert_eq!(buf.available_bytes(), 0);
        buf.resize(5);
        assert_eq!(buf.data(), [1, 2, 3, 0, 0]);
        assert_eq!((buf.position(), buf.available_bytes()), (3, 2));
        buf.resize(2);
        assert_eq!((buf.position(), buf.available_bytes()), (2, 0));
        buf.set_big_endian(true);
        let dup = buf.duplicate();
        assert_eq!(
            (dup.data(), dup.position(), dup.is_big_endian()),
            (&[1u8, 2][..], 0, false)
        );
        let cloned = buf.clone();
        assert_eq!(cloned, buf);
        buf.set_data(vec![7, 8, 9]);
        assert_eq!(
            (buf.position(), buf.size(), buf.is_big_endian()),
            (0, 3, true)
        );
        buf.clear();
        assert_eq!((buf.position(), buf.size()), (0, 0));
        assert_eq!(buf.clone().into_vec(), Vec::<u8>::new());
        assert_eq!(StreamPeerBuffer::from(&[1u8, 2][..]).data(), [1, 2]);
        assert_eq!(StreamPeerBuffer::from(vec![3u8]).data(), [3]);
    }

    #[test]
    fn buffer_partial_reads_peek_and_eof() {
        let mut buf = StreamPeerBuffer::from_vec(vec![1, 2, 3]);
        let mut two = [0; 2];
        assert_eq!(buf.peek_data(&mut two), 2);
        assert_eq!(buf.position(), 0);
        let mut big = [0; 8];
        assert_eq!(buf.get_partial_data(&mut big), Ok(3));
        assert_eq!(&big[..3], [1, 2, 3]);
        assert_eq!(buf.get_partial_data(&mut big), Err(SocketError::FileEof));
        assert_eq!(buf.get_partial_data(&mut []), Ok(0));
        assert_eq!(buf.get_data(&mut []), Ok(()));
        assert_eq!(buf.peek_data(&mut big), 0);
    }

    #[test]
    fn buffer_io_traits() {
        let mut buf = StreamPeerBuffer::new();
        buf.write_all(b"hello world").unwrap();
        buf.flush().unwrap();
        assert_eq!(Seek::seek(&mut buf, SeekFrom::Start(6)).unwrap(), 6);
        let mut s = String::new();
        buf.read_to_string(&mut s).unwrap();
        assert_eq!(s, "world");
        assert_eq!(Seek::seek(&mut buf, SeekFrom::End(-5)).unwrap(), 6);
        assert_eq!(Seek::seek(&mut buf, SeekFrom::Current(-6)).unwrap(), 0);
        let err = Seek::seek(&mut buf, SeekFrom::Current(-1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = Seek::seek(&mut buf, SeekFrom::End(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(buf.position(), 0);
        let mut out = [0; 3];
        buf.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"hel");
    }
}
