//! [`PacketPeerStream`]: Godot's packet framing over any [`StreamPeer`].
//!
//! A frame is a `u32` little-endian payload length followed by the payload,
//! exactly as Godot's `PacketPeerStream` writes and reads it (whatever the
//! peer's `big_endian` flag). Incoming bytes are buffered in the
//! `PacketPeerStream` itself, bounded by the maximum packet size plus the
//! 4-byte header, so any frame up to the maximum is receivable whatever the
//! peer's own read-buffer limit, and the length announced by the network is
//! checked before any memory is reserved for it.

use std::cell::Cell;
use std::fmt;

use crate::variant::{self, Limits, Variant};
use crate::{SocketError, StreamPeer, StreamPeerBuffer};

/// The default maximum packet size (payload bytes, without the 4-byte header):
/// 64 KiB (65 536).
///
/// Godot's default (`network/limits/packet_peer_stream/max_buffer_po2` = 16)
/// gives 64 KiB buffers: a Godot peer sends payloads of up to 65 532 bytes and
/// receives up to 65 531. 64 KiB accepts everything a default Godot peer can
/// send, and bounds what one connection can make a server buffer to 64 KiB + 4
/// bytes. When a Godot peer is on the other side, keep packets sent to it at
/// 65 531 bytes or less, or raise its `max_buffer_po2` (and this limit) on both
/// sides.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 64 * 1024;

/// Size of the frame header.
const HEADER: usize = 4;

/// The largest payload a header can announce.
fn header_max() -> usize {
    usize::try_from(u32::MAX).unwrap_or(usize::MAX)
}

/// Godot's `PacketPeerStream`: whole packets over a byte stream (u32
/// little-endian length + payload).
///
/// Owns its [`StreamPeer`] (a `StreamPeerTcp`, a [`StreamPeerBuffer`], or a
/// `&mut` / `Box` of one). `put_packet` writes a frame atomically;
/// `get_packet` returns the next complete frame or `Busy`; nothing is ever
/// returned half.
///
/// [`StreamPeerBuffer`]: crate::StreamPeerBuffer
///
/// # Maximum packet size and desynchronisation
///
/// [`max_packet_size`](PacketPeerStream::max_packet_size) (default 64 KiB,
/// `DEFAULT_MAX_PACKET_SIZE`) bounds both directions. When the network
/// announces a larger frame, `get_packet` fails with
/// [`SocketError::OutOfBufferMemory`] before anything is allocated for it. The
/// byte stream can no longer be split into packets after that, so the state is
/// sticky: every later `get_packet` returns the same error and
/// `available_packet_count` returns 0 (check with
/// [`is_desynchronized`](PacketPeerStream::is_desynchronized)). The only
/// recovery is to close the connection; `put_packet` keeps working so a last
/// message can still be sent.
///
/// # Example
///
/// ```
/// use lunanet::{PacketPeerStream, SocketError, StreamPeerBuffer};
///
/// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
/// pps.put_packet(b"abc")?;
/// assert_eq!(pps.get_ref().data(), [3, 0, 0, 0, 0x61, 0x62, 0x63]);
///
/// pps.get_mut().seek(0)?; // read back what was written
/// assert_eq!(pps.available_packet_count(), 1);
/// assert_eq!(pps.get_packet()?, b"abc");
/// assert_eq!(pps.get_packet(), Err(SocketError::FileEof)); // the buffer's end
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub struct PacketPeerStream<P: StreamPeer> {
    pub(super) peer: P,
    /// Received bytes; `input[start..]` are not yet returned. Its length never
    /// exceeds `max_packet_size + HEADER` and its capacity grows only with
    /// bytes that actually arrived.
    input: Vec<u8>,
    start: usize,
    /// Scratch for `put_packet`: header + payload, reused.
    output: Vec<u8>,
    /// Scratch for `get_packet_with`: the payload handed to the reader, reused.
    scratch: Vec<u8>,
    max_packet_size: usize,
    /// Set when an oversized frame was announced; sticky.
    desync: Option<SocketError>,
    /// What the peer was last told through `StreamPeer::hold_input` (so that
    /// it is told only when the answer changes).
    told_held: bool,
    /// Scratch for `available_packet_count(&self)` to peek at the peer's
    /// bytes: reused (taken out and put back), so a steady loop does not
    /// allocate; never larger than `max_packet_size + 4`.
    peek: Cell<Vec<u8>>,
}

impl<P: StreamPeer> PacketPeerStream<P> {
    /// Frames packets over `peer`, with the default maximum packet size (64 KiB).
    /// Allocates nothing until data moves.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// assert_eq!(pps.max_packet_size(), 65_536);
    /// ```
    pub fn new(peer: P) -> PacketPeerStream<P> {
        PacketPeerStream::with_max_packet_size(peer, DEFAULT_MAX_PACKET_SIZE)
    }

    /// Frames packets over `peer` with a maximum packet size of `max` payload
    /// bytes (clamped to `u32::MAX`, the most a header can announce).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let pps = PacketPeerStream::with_max_packet_size(StreamPeerBuffer::new(), 1 << 20);
    /// assert_eq!(pps.max_packet_size(), 1 << 20);
    /// ```
    pub fn with_max_packet_size(peer: P, max: usize) -> PacketPeerStream<P> {
        PacketPeerStream {
            peer,
            input: Vec::new(),
            start: 0,
            output: Vec::new(),
            scratch: Vec::new(),
            max_packet_size: max.min(header_max()),
            desync: None,
            told_held: false,
            peek: Cell::new(Vec::new()),
        }
    }

    /// The wrapped peer.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeer, StreamPeerBuffer};
    ///
    /// let pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// assert_eq!(pps.get_ref().available_bytes(), 0);
    /// ```
    pub fn get_ref(&self) -> &P {
        &self.peer
    }

    /// The wrapped peer, mutably (to poll it, or check its status).
    ///
    /// Writing to it directly is fine between packets; reading from it steals
    /// bytes from the packet stream and desynchronises it.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// pps.put_packet(b"x")?;
    /// pps.get_mut().seek(0)?;
    /// assert_eq!(pps.get_packet()?, b"x");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut P {
        &mut self.peer
    }

    /// Returns the peer. Bytes already taken from it but not yet returned as
    /// packets are dropped; use [`into_parts`](PacketPeerStream::into_parts)
    /// to keep them.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// pps.put_packet(b"hi")?;
    /// assert_eq!(pps.into_inner().data(), [2, 0, 0, 0, b'h', b'i']);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn into_inner(mut self) -> P {
        self.tell_held(false);
        self.peer
    }

    /// Returns the peer and the bytes received from it that were not yet
    /// returned as packets (the start of the next frames), in order.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, SocketError, StreamPeerBuffer};
    ///
    /// // One complete frame and the first 2 bytes of the next.
    /// let peer = StreamPeerBuffer::from_vec(vec![1, 0, 0, 0, b'a', 9, 0]);
    /// let mut pps = PacketPeerStream::new(peer);
    /// assert_eq!(pps.get_packet()?, b"a");
    /// assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
    /// let (_peer, rest) = pps.into_parts();
    /// assert_eq!(rest, [9, 0]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn into_parts(mut self) -> (P, Vec<u8>) {
        self.tell_held(false);
        self.input.drain(..self.start);
        (self.peer, self.input)
    }

    /// The maximum payload size, in bytes, for both directions.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// assert_eq!(PacketPeerStream::new(StreamPeerBuffer::new()).max_packet_size(), 64 * 1024);
    /// ```
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Sets the maximum payload size (clamped to `u32::MAX`; 0 allows only
    /// empty packets). It applies to every frame not yet returned, including
    /// those already buffered: lowering it below a buffered frame's size
    /// desynchronises the stream when that frame is reached.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, SocketError, StreamPeerBuffer};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// pps.set_max_packet_size(2);
    /// assert_eq!(pps.put_packet(b"abc"), Err(SocketError::InvalidParameter));
    /// ```
    pub fn set_max_packet_size(&mut self, max: usize) {
        self.max_packet_size = max.min(header_max());
    }

    /// Whether an oversized frame was announced, leaving the stream unusable
    /// for reading (see the type's documentation).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, SocketError, StreamPeerBuffer};
    ///
    /// // A header announcing 4 GiB − 1 bytes.
    /// let peer = StreamPeerBuffer::from_vec(vec![0xFF, 0xFF, 0xFF, 0xFF]);
    /// let mut pps = PacketPeerStream::new(peer);
    /// assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
    /// assert!(pps.is_desynchronized());
    /// ```
    pub fn is_desynchronized(&self) -> bool {
        self.desync.is_some()
    }

    /// Bytes received from the peer and held here that were not yet returned
    /// as packets (at most `max_packet_size() + 4`).
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::from_vec(vec![5, 0, 0, 0, 1]));
    /// assert_eq!(pps.available_packet_count(), 0); // 1 of 5 payload bytes
    /// assert_eq!(pps.buffered_bytes(), 0); // counting moves nothing
    /// assert!(pps.get_packet().is_err()); // a get pulls the bytes in
    /// assert_eq!(pps.buffered_bytes(), 5);
    /// ```
    pub fn buffered_bytes(&self) -> usize {
        self.input.len() - self.start
    }

    /// Sends one packet: the 4-byte little-endian length and the payload, in
    /// ONE `put_data` call, so the frame is queued whole or not at all. An
    /// empty packet is sent as the header `00 00 00 00` (Godot sends nothing).
    /// The header/payload scratch buffer is reused: no allocation per packet
    /// once it has grown to the largest packet sent.
    ///
    /// # Errors
    ///
    /// - `InvalidParameter`: `packet` is longer than
    ///   [`max_packet_size`](PacketPeerStream::max_packet_size) (as Godot's
    ///   `ERR_INVALID_PARAMETER`). Nothing is sent.
    /// - Those of the peer's `put_data`, with nothing sent: for TCP
    ///   `OutOfBufferMemory` when the write queue cannot take the frame now
    ///   (retry once the queue drains — unless the frame, 4 header bytes
    ///   included, is larger than the whole
    ///   [`write_buffer_limit`](crate::Config::write_buffer_limit): then it can
    ///   never be sent; raise the limit), `SocketInvalid` when not connected.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// pps.put_packet(b"abc")?;
    /// pps.put_packet(b"")?;
    /// assert_eq!(pps.get_ref().data(), [3, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn put_packet(&mut self, packet: &[u8]) -> Result<(), SocketError> {
        if packet.len() > self.max_packet_size {
            return Err(SocketError::InvalidParameter);
        }
        let len = u32::try_from(packet.len()).map_err(|_| SocketError::InvalidParameter)?;
        self.output.clear();
        self.output.extend_from_slice(&len.to_le_bytes());
        self.output.extend_from_slice(packet);
        self.peer.put_data(&self.output)
    }

    /// Returns the next packet (Godot `get_packet` + `get_packet_error`).
    /// Allocates only the returned `Vec` (nothing for an empty packet); see
    /// [`get_packet_into`](PacketPeerStream::get_packet_into) to reuse one.
    ///
    /// # Errors
    ///
    /// Nothing is consumed from complete frames on error:
    /// - `Busy`: no complete frame is buffered yet; poll and retry.
    /// - `FileEof`: no complete frame is buffered and no more bytes will arrive
    ///   (remote closed, or the end of a `StreamPeerBuffer`); a partial frame
    ///   left at that point is incomplete for ever.
    /// - `OutOfBufferMemory`: the next frame announces more than
    ///   `max_packet_size()` bytes. Sticky: the stream is desynchronised; close
    ///   the connection.
    /// - The peer's failure (`SocketInvalid`, `ConnectionClosed`, ...) when no
    ///   complete frame is buffered.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, SocketError, StreamPeerBuffer};
    ///
    /// let peer = StreamPeerBuffer::from_vec(vec![3, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0]);
    /// let mut pps = PacketPeerStream::new(peer);
    /// assert_eq!(pps.get_packet()?, b"abc");
    /// assert_eq!(pps.get_packet()?, b"");
    /// assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn get_packet(&mut self) -> Result<Vec<u8>, SocketError> {
        let mut packet = Vec::new();
        self.get_packet_into(&mut packet)?;
        Ok(packet)
    }

    /// Like [`get_packet`](PacketPeerStream::get_packet), but writes the
    /// payload into `out` (cleared first, its capacity reused), so a receive
    /// loop allocates nothing in steady state. On error `out` is untouched.
    ///
    /// # Errors
    ///
    /// As `get_packet`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// let peer = StreamPeerBuffer::from_vec(vec![1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
    /// let mut pps = PacketPeerStream::new(peer);
    /// let mut packet = Vec::with_capacity(64);
    /// let mut seen = Vec::new();
    /// while pps.get_packet_into(&mut packet).is_ok() {
    ///     seen.extend_from_slice(&packet);
    /// }
    /// assert_eq!(seen, b"ab");
    /// ```
    pub fn get_packet_into(&mut self, out: &mut Vec<u8>) -> Result<(), SocketError> {
        let len = self.next_frame()?;
        let payload = self.start + HEADER;
        out.clear();
        out.extend_from_slice(&self.input[payload..payload + len]);
        self.consume_frame(len);
        Ok(())
    }

    /// The payload length of the next complete frame (at `start + HEADER`),
    /// pulling from the peer if needed; consumes nothing.
    fn next_frame(&mut self) -> Result<usize, SocketError> {
        if let Some(e) = self.desync {
            return Err(e);
        }
        let mut frame = self.front_frame()?;
        let mut pull_error = None;
        if frame.is_none() {
            pull_error = self.pull().err();
            frame = self.front_frame()?;
        }
        match frame {
            Some(len) => Ok(len),
            None => {
                self.tell_held(false);
                Err(match pull_error {
                    Some(e) => e,
                    None => self.peer.short_read_error(),
                })
            }
        }
    }

    /// Sends one Godot value as one packet (Godot `PacketPeer.put_var`):
    /// the frame header and the encoded value ([`variant::encode`] for the
    /// peer's [`godot_version`](StreamPeer::godot_version)), written straight
    /// into the reused output buffer: no allocation once it has grown.
    ///
    /// # Errors
    ///
    /// `InvalidParameter` when the value cannot be encoded for the version
    /// (the cause is logged) or is larger than `max_packet_size()`; those of
    /// `put_packet` otherwise. Nothing is sent on error.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer, vdict};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// pps.put_var(&vdict! { "a" => 1 })?;
    /// pps.get_mut().seek(0)?;
    /// assert_eq!(pps.get_var()?, vdict! { "a" => 1 });
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn put_var(&mut self, value: &Variant) -> Result<(), SocketError> {
        self.output.clear();
        self.output.extend_from_slice(&[0; HEADER]);
        if let Err(e) = variant::encode(value, self.peer.godot_version(), &mut self.output) {
            log::warn!("put_var: {e}");
            return Err(SocketError::InvalidParameter);
        }
        self.send_output()
    }

    /// Patches the header of the frame in `output` and sends it.
    fn send_output(&mut self) -> Result<(), SocketError> {
        let len = self.output.len() - HEADER;
        if len > self.max_packet_size {
            return Err(SocketError::InvalidParameter);
        }
        let len = u32::try_from(len).map_err(|_| SocketError::InvalidParameter)?;
        self.output[..HEADER].copy_from_slice(&len.to_le_bytes());
        self.peer.put_data(&self.output)
    }

    /// Receives one packet holding one Godot value (Godot
    /// `PacketPeer.get_var`), decoded in place from the input buffer with the
    /// default [`Limits`]: a scalar allocates nothing.
    ///
    /// # Errors
    ///
    /// Those of [`get_packet`](PacketPeerStream::get_packet), nothing
    /// consumed; `InvalidData` when the packet is not a valid value: that
    /// packet **is** consumed (the cause is logged at debug level), so the
    /// next call reads the next one.
    pub fn get_var(&mut self) -> Result<Variant, SocketError> {
        let len = self.next_frame()?;
        let payload = self.start + HEADER;
        let decoded = variant::decode(
            &self.input[payload..payload + len],
            self.peer.godot_version(),
            &Limits::default(),
        );
        self.consume_frame(len);
        match decoded {
            Ok((value, _)) => Ok(value),
            Err(e) => {
                log::debug!("get_var: {e}");
                Err(SocketError::InvalidData)
            }
        }
    }

    /// Builds and sends one packet with the typed helpers: `write` fills a
    /// [`StreamPeerBuffer`] (in the peer's byte order) that reuses this
    /// stream's output buffer, and the result goes out as one frame. No
    /// allocation in steady state.
    ///
    /// # Errors
    ///
    /// The first error of `write` (nothing sent), `InvalidParameter` when
    /// the packet is over `max_packet_size()`, those of `put_data`.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeer, StreamPeerBuffer};
    ///
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
    /// pps.put_packet_with(|w| {
    ///     w.put_u16(7)?;
    ///     w.put_utf8_string("hi")
    /// })?;
    /// pps.get_mut().seek(0)?;
    /// let (id, text) = pps.get_packet_with(|r| Ok((r.get_u16()?, r.get_utf8_string()?)))?;
    /// assert_eq!((id, text.as_str()), (7, "hi"));
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn put_packet_with<F>(&mut self, write: F) -> Result<(), SocketError>
    where
        F: FnOnce(&mut StreamPeerBuffer) -> Result<(), SocketError>,
    {
        let mut frame = std::mem::take(&mut self.output);
        frame.clear();
        frame.extend_from_slice(&[0; HEADER]);
        let mut w = StreamPeerBuffer::from_vec(frame);
        w.set_big_endian(self.peer.is_big_endian());
        let written = w.seek(HEADER).and_then(|()| write(&mut w));
        self.output = w.into_vec();
        written?;
        self.send_output()
    }

    /// Takes the next packet and reads it with the typed helpers: `read`
    /// gets a [`StreamPeerBuffer`] over the payload (in the peer's byte
    /// order; reused between calls). The packet is consumed whatever `read`
    /// returns. No allocation in steady state.
    ///
    /// # Errors
    ///
    /// Those of `get_packet` (nothing consumed), or `read`'s (a short read
    /// inside the packet is `FileEof`).
    pub fn get_packet_with<T, F>(&mut self, read: F) -> Result<T, SocketError>
    where
        F: FnOnce(&mut StreamPeerBuffer) -> Result<T, SocketError>,
    {
        let mut payload = std::mem::take(&mut self.scratch);
        let got = self.get_packet_into(&mut payload);
        let mut r = StreamPeerBuffer::from_vec(payload);
        r.set_big_endian(self.peer.is_big_endian());
        let result = got.and_then(|()| read(&mut r));
        self.scratch = r.into_vec();
        result
    }

    /// How many complete packets can be taken now without waiting (Godot
    /// `get_available_packet_count`). Consumes nothing and takes `&self`:
    /// counts the complete frames held here, then continues over the bytes
    /// the peer has buffered, reading them with
    /// [`peek_data`](StreamPeer::peek_data) into a reused scratch buffer. It
    /// looks at as many bytes as `get_packet` would hold (`max_packet_size() +
    /// 4` in all), so more packets may be counted after some are taken; it
    /// never counts a packet that cannot be taken, and whenever one can, the
    /// count is at least 1. Frames from an oversized header on are not
    /// counted; 0 once desynchronised. Errors of the peer are not reported
    /// here; `get_packet` reports them.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeerStream, StreamPeerBuffer};
    ///
    /// // Two complete frames and half of a third.
    /// let peer = StreamPeerBuffer::from_vec(vec![0, 0, 0, 0, 1, 0, 0, 0, 7, 2, 0]);
    /// let pps = PacketPeerStream::new(peer); // no `mut` needed to count
    /// assert_eq!(pps.available_packet_count(), 2);
    /// let shared = &pps;
    /// assert_eq!(shared.available_packet_count(), 2, "counting consumes nothing");
    /// ```
    pub fn available_packet_count(&self) -> usize {
        if self.desync.is_some() {
            return 0;
        }
        let held = &self.input[self.start..];
        let (held_frames, _) = count_frames(held, &[], self.max_packet_size);
        // The bytes `get_packet` would pull next: the same window as before.
        let cap = self.max_packet_size.saturating_add(HEADER);
        let want = self
            .peer
            .available_bytes()
            .min(cap.saturating_sub(held.len()));
        if want == 0 {
            return held_frames;
        }
        let mut scratch = self.peek.take();
        scratch.clear();
        scratch.resize(want, 0);
        let n = self.peer.peek_data(&mut scratch).min(want);
        let total = count_frames(held, &scratch[..n], self.max_packet_size).0;
        self.peek.set(scratch);
        total
    }

    /// Whether a complete frame (within the maximum size) is held at the front.
    fn front_complete(&self) -> bool {
        let live = &self.input[self.start..];
        live.split_first_chunk::<HEADER>()
            .is_some_and(|(header, payload)| {
                let len = frame_len(*header);
                len <= self.max_packet_size && payload.len() >= len
            })
    }

    /// Consumes the frame at the front (payload `len`) and tells the peer
    /// whether complete packets are still held here: they are invisible to
    /// its own `available_bytes`, and its id must stay in the ready set.
    fn consume_frame(&mut self, len: usize) {
        self.consume(HEADER + len);
        let held = self.front_complete();
        self.tell_held(held);
    }

    /// Tells the peer whether complete packets are held here, when that
    /// changed (see [`StreamPeer::hold_input`]).
    fn tell_held(&mut self, held: bool) {
        if held != self.told_held {
            self.told_held = held;
            self.peer.hold_input(held);
        }
    }

    /// The payload length of the complete frame at the front, `None` while it
    /// is incomplete. An oversized header desynchronises the stream.
    fn front_frame(&mut self) -> Result<Option<usize>, SocketError> {
        let live = &self.input[self.start..];
        let Some((header, payload)) = live.split_first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let len = frame_len(*header);
        if len > self.max_packet_size {
            return Err(self.desynchronize(len));
        }
        Ok((payload.len() >= len).then_some(len))
    }

    /// Enters the sticky desynchronised state and frees the input buffer.
    fn desynchronize(&mut self, announced: usize) -> SocketError {
        log::warn!(
            "PacketPeerStream: the peer announced a {announced}-byte packet, more than the \
             maximum of {} bytes; the stream is desynchronised and must be closed",
            self.max_packet_size
        );
        let error = SocketError::OutOfBufferMemory;
        self.desync = Some(error);
        self.tell_held(false);
        self.input = Vec::new();
        self.start = 0;
        error
    }

    /// Marks `n` buffered bytes as returned.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        }
    }

    /// Moves bytes from the peer into `input`, up to `max_packet_size + 4`
    /// held bytes. The buffer grows only by bytes that are available now, so
    /// an announced length never reserves memory by itself.
    fn pull(&mut self) -> Result<(), SocketError> {
        let cap = self.max_packet_size.saturating_add(HEADER);
        loop {
            let available = self.peer.available_bytes();
            let held = self.input.len() - self.start;
            let want = available.min(cap.saturating_sub(held));
            if want == 0 {
                return Ok(());
            }
            if self.input.len() + want > cap {
                // Only the unreturned tail moves, and only when the end is hit.
                self.input.drain(..self.start);
                self.start = 0;
            }
            let old = self.input.len();
            let needed = old + want;
            if needed > self.input.capacity() {
                // Geometric growth, never past the cap.
                let target = needed.max(cap.min(self.input.capacity().saturating_mul(2)));
                self.input.reserve_exact(target - old);
            }
            self.input.resize(needed, 0);
            match self.peer.get_partial_data(&mut self.input[old..]) {
                Ok(n) => {
                    self.input.truncate(old + n.min(want));
                    if n == 0 {
                        return Ok(());
                    }
                }
                Err(e) => {
                    self.input.truncate(old);
                    return if e == SocketError::Busy {
                        Ok(())
                    } else {
                        Err(e)
                    };
                }
            }
        }
    }
}

/// Counts the complete frames (each within `max`) at the start of `a`
/// followed by `b`; returns the count and the bytes they span.
fn count_frames(a: &[u8], b: &[u8], max: usize) -> (usize, usize) {
    let total = a.len() + b.len();
    let byte = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
    let (mut pos, mut count) = (0usize, 0usize);
    while pos + HEADER <= total {
        let header = [byte(pos), byte(pos + 1), byte(pos + 2), byte(pos + 3)];
        let len = frame_len(header);
        if len > max {
            break;
        }
        let end = (pos + HEADER).saturating_add(len);
        if end > total {
            break;
        }
        pos = end;
        count += 1;
    }
    (count, pos)
}

/// The payload length a frame header announces.
fn frame_len(header: [u8; HEADER]) -> usize {
    usize::try_from(u32::from_le_bytes(header)).unwrap_or(usize::MAX)
}

impl<P: StreamPeer + fmt::Debug> fmt::Debug for PacketPeerStream<P> {
    /// Shows the peer, the buffered byte count, the maximum and whether the
    /// stream is desynchronised (not the buffered bytes themselves).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketPeerStream")
            .field("peer", &self.peer)
            .field("buffered_bytes", &self.buffered_bytes())
            .field("max_packet_size", &self.max_packet_size)
            .field("desynchronized", &self.desync.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamPeerBuffer;
    use crate::stream::testing::Pipe;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn put_packet_abc_vector_in_both_byte_orders() {
        for big_endian in [false, true] {
            let mut peer = StreamPeerBuffer::new();
            peer.set_big_endian(big_endian); // the frame header ignores it, as Godot
            let mut pps = PacketPeerStream::new(peer);
            pps.put_packet(b"abc").unwrap();
            assert_eq!(
                pps.get_ref().data(),
                [0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63]
            );
        }
    }

    #[test]
    fn put_packet_vectors() {
        let mut pps = PacketPeerStream::new(StreamPeerBuffer::new());
        pps.put_packet(b"").unwrap();
        pps.put_packet(&[0xAA; 258]).unwrap();
        let data = pps.get_ref().data();
        assert_eq!(&data[..4], [0, 0, 0, 0]);
        assert_eq!(&data[4..8], [0x02, 0x01, 0x00, 0x00]);
        assert_eq!(data.len(), 4 + 4 + 258);
    }

    #[test]
    fn get_packet_from_fixed_bytes() {
        let mut peer = StreamPeerBuffer::from_vec(vec![3, 0, 0, 0, 0x61, 0x62, 0x63]);
        peer.set_big_endian(true); // ignored for frames
        let mut pps = PacketPeerStream::new(peer);
        assert_eq!(pps.get_packet().unwrap(), b"abc");
        assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
    }

    #[test]
    fn zero_length_packet_round_trip() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        pps.put_packet(b"").unwrap();
        assert_eq!(pps.get_ref().tx, [0, 0, 0, 0]);
        let tx = std::mem::take(&mut pps.get_mut().tx);
        pps.get_mut().feed(&tx);
        assert_eq!(pps.available_packet_count(), 1);
        let p = pps.get_packet().unwrap();
        assert!(p.is_empty());
        assert_eq!(p.capacity(), 0); // nothing allocated
        assert_eq!(pps.get_packet(), Err(SocketError::Busy));
    }

    #[test]
    fn frame_arriving_byte_by_byte() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        let bytes = frame(b"hello, godot");
        let (last, head) = bytes.split_last().unwrap();
        for b in head {
            pps.get_mut().feed(&[*b]);
            assert_eq!(pps.available_packet_count(), 0);
            assert_eq!(pps.get_packet(), Err(SocketError::Busy));
        }
        assert_eq!(pps.buffered_bytes(), head.len());
        pps.get_mut().feed(&[*last]);
        assert_eq!(pps.available_packet_count(), 1);
        assert_eq!(pps.get_packet().unwrap(), b"hello, godot");
        assert_eq!(pps.available_packet_count(), 0);
        assert_eq!(pps.buffered_bytes(), 0);
        assert_eq!(pps.get_packet(), Err(SocketError::Busy));
    }

    #[test]
    fn two_frames_byte_by_byte_without_count_calls() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        let mut bytes = frame(b"one");
        bytes.extend(frame(b""));
        bytes.extend(frame(b"three"));
        let mut got = Vec::new();
        for b in bytes {
            pps.get_mut().feed(&[b]);
            while let Ok(p) = pps.get_packet() {
                got.push(p);
            }
        }
        assert_eq!(got, [b"one".to_vec(), Vec::new(), b"three".to_vec()]);
    }

    #[test]
    fn many_packets_in_one_burst() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        let mut burst = Vec::new();
        for i in 0..1000u32 {
            let payload = i.to_le_bytes().repeat(usize::try_from(i % 7).unwrap());
            burst.extend(frame(&payload));
        }
        pps.get_mut().feed(&burst);
        assert_eq!(pps.available_packet_count(), 1000);
        let mut out = Vec::new();
        for i in 0..1000u32 {
            pps.get_packet_into(&mut out).unwrap();
            assert_eq!(out, i.to_le_bytes().repeat(usize::try_from(i % 7).unwrap()));
        }
        assert_eq!(pps.available_packet_count(), 0);
        assert_eq!(pps.get_packet_into(&mut out), Err(SocketError::Busy));
        assert_eq!(out, 999u32.to_le_bytes().repeat(5)); // untouched on error
    }

    #[test]
    fn burst_larger_than_the_input_cap_is_taken_in_rounds() {
        // Cap = 10 + 4 bytes: only some frames fit at once.
        let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), 10);
        let mut burst = Vec::new();
        for i in 0..50u8 {
            burst.extend(frame(&[i; 3]));
        }
        pps.get_mut().feed(&burst);
        assert_eq!(pps.available_packet_count(), 2); // 14 bytes held: 2 × 7
        for i in 0..50u8 {
            assert_eq!(pps.get_packet().unwrap(), [i; 3]);
            assert!(pps.input.len() <= 14);
        }
        assert_eq!(pps.get_packet(), Err(SocketError::Busy));
    }

    #[test]
    fn frame_larger_than_the_peers_read_limit_is_received() {
        // The peer buffers 16 bytes at most; the frame is 1000 + 4.
        let mut pps = PacketPeerStream::new(Pipe::with_read_limit(16));
        let payload: Vec<u8> = (0..1000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        pps.get_mut().feed(&frame(&payload));
        assert_eq!(pps.get_packet().unwrap(), payload);
        assert!(pps.get_ref().network.is_empty());
    }

    #[test]
    fn a_header_announcing_4_gib_is_rejected_without_allocating() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        pps.get_mut().feed(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        assert_eq!(pps.available_packet_count(), 0);
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
        assert!(pps.is_desynchronized());
        assert_eq!(pps.input.capacity(), 0); // freed, never sized by the header
        // Sticky, even when valid frames follow.
        pps.get_mut().feed(&frame(b"ok"));
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pps.available_packet_count(), 0);
        let mut out = vec![7];
        assert_eq!(
            pps.get_packet_into(&mut out),
            Err(SocketError::OutOfBufferMemory)
        );
        assert_eq!(out, [7]);
        // Sending still works (e.g. a goodbye message).
        pps.put_packet(b"bye").unwrap();
        assert_eq!(pps.get_ref().tx, frame(b"bye"));
        assert!(format!("{pps:?}").contains("desynchronized: true"));
    }

    #[test]
    fn an_announced_length_within_a_huge_max_reserves_nothing() {
        // With the largest maximum, a 4 GiB − 1 announcement is legal: the
        // buffer still grows only with bytes that arrived.
        let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), usize::MAX);
        assert_eq!(pps.max_packet_size(), header_max());
        pps.get_mut().feed(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        assert_eq!(pps.get_packet(), Err(SocketError::Busy));
        assert_eq!(pps.available_packet_count(), 0);
        assert!(pps.input.capacity() < 1024, "{}", pps.input.capacity());
        assert!(!pps.is_desynchronized());
    }

    #[test]
    fn max_packet_size_boundary() {
        let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), 10);
        pps.get_mut().feed(&frame(&[1; 10]));
        assert_eq!(pps.get_packet().unwrap(), [1; 10]);
        pps.get_mut().feed(&frame(&[2; 11]));
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
    }

    #[test]
    fn frames_before_an_oversized_header_are_delivered_first() {
        let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), 100);
        let mut bytes = frame(b"a");
        bytes.extend(frame(b"b"));
        bytes.extend([200, 0, 0, 0]);
        pps.get_mut().feed(&bytes);
        assert_eq!(pps.available_packet_count(), 2);
        assert_eq!(pps.get_packet().unwrap(), b"a");
        assert_eq!(pps.get_packet().unwrap(), b"b");
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
    }

    #[test]
    fn lowering_the_max_below_a_buffered_frame_desynchronises_there() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        let mut bytes = frame(b"ab");
        bytes.extend(frame(b"abcdef"));
        pps.get_mut().feed(&bytes);
        assert_eq!(pps.available_packet_count(), 2);
        pps.set_max_packet_size(4);
        assert_eq!(pps.available_packet_count(), 1);
        assert_eq!(pps.get_packet().unwrap(), b"ab");
        assert_eq!(pps.get_packet(), Err(SocketError::OutOfBufferMemory));
    }

    #[test]
    fn put_packet_over_the_max_is_refused_and_sends_nothing() {
        let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), 3);
        assert_eq!(pps.put_packet(b"abcd"), Err(SocketError::InvalidParameter));
        assert!(pps.get_ref().tx.is_empty());
        pps.put_packet(b"abc").unwrap();
        assert_eq!(pps.get_ref().tx, frame(b"abc"));
        pps.set_max_packet_size(0);
        assert_eq!(pps.put_packet(b"a"), Err(SocketError::InvalidParameter));
        pps.put_packet(b"").unwrap();
    }

    #[test]
    fn put_packet_is_all_or_nothing_when_the_peer_is_full() {
        let pipe = Pipe {
            write_limit: Some(10),
            ..Pipe::new()
        };
        let mut pps = PacketPeerStream::new(pipe);
        pps.put_packet(b"abc").unwrap(); // 7 bytes
        assert_eq!(pps.put_packet(b"abc"), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pps.get_ref().tx, frame(b"abc"));
        // Even an empty packet's 4-byte header does not fit (7 + 4 > 10).
        assert_eq!(pps.put_packet(b""), Err(SocketError::OutOfBufferMemory));
        assert_eq!(pps.get_ref().tx, frame(b"abc"));
        pps.get_mut().write_limit = Some(11);
        pps.put_packet(b"").unwrap();
        assert_eq!(pps.get_ref().tx[7..], [0, 0, 0, 0]);
    }

    #[test]
    fn steady_state_reuses_buffers() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        let mut out = Vec::new();
        for round in 0..3 {
            for size in [0usize, 1, 100, 5000, 3] {
                pps.put_packet(&vec![7; size]).unwrap();
                let tx = std::mem::take(&mut pps.get_mut().tx);
                pps.get_mut().feed(&tx);
                pps.get_packet_into(&mut out).unwrap();
                assert_eq!(out.len(), size);
            }
            if round == 0 {
                continue;
            }
            // After the first round no buffer needs to grow.
            assert!(pps.output.capacity() >= 5004);
            assert!(pps.input.capacity() <= DEFAULT_MAX_PACKET_SIZE + HEADER);
        }
        let (in_cap, out_cap, vec_cap) =
            (pps.input.capacity(), pps.output.capacity(), out.capacity());
        for _ in 0..100 {
            pps.put_packet(&[1; 5000]).unwrap();
            let tx = std::mem::take(&mut pps.get_mut().tx);
            pps.get_mut().feed(&tx);
            pps.get_packet_into(&mut out).unwrap();
        }
        assert_eq!(
            (pps.input.capacity(), pps.output.capacity(), out.capacity()),
            (in_cap, out_cap, vec_cap)
        );
    }

    #[test]
    fn input_never_exceeds_the_cap() {
        let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), 100);
        let mut bytes = Vec::new();
        for i in 0..200u8 {
            bytes.extend(frame(&vec![i; usize::from(i % 101)]));
        }
        pps.get_mut().feed(&bytes);
        for i in 0..200u8 {
            pps.available_packet_count();
            assert!(pps.input.len() <= 104);
            assert!(pps.input.capacity() <= 104, "{}", pps.input.capacity());
            assert_eq!(pps.get_packet().unwrap(), vec![i; usize::from(i % 101)]);
        }
    }

    #[test]
    fn end_of_stream_is_file_eof() {
        // Closed with nothing buffered.
        let mut pps = PacketPeerStream::new(Pipe::new());
        pps.get_mut().closed = true;
        assert_eq!(pps.get_packet(), Err(SocketError::FileEof));

        // Closed after a complete frame and half of another: the complete one
        // is still delivered, then FileEof.
        let mut pps = PacketPeerStream::new(Pipe::new());
        let mut bytes = frame(b"whole");
        bytes.extend(&frame(b"half")[..5]);
        pps.get_mut().feed(&bytes);
        pps.get_mut().closed = true;
        assert_eq!(pps.get_packet().unwrap(), b"whole");
        assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
        assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
    }

    #[test]
    fn packets_through_a_stream_peer_buffer_and_lent_peers() {
        let mut buf = StreamPeerBuffer::new();
        {
            let mut pps = PacketPeerStream::new(&mut buf);
            pps.put_packet(b"first").unwrap();
            pps.put_packet(b"second").unwrap();
        }
        buf.seek(0).unwrap();
        let mut pps = PacketPeerStream::new(Box::new(buf) as Box<dyn StreamPeer>);
        assert_eq!(pps.available_packet_count(), 2);
        assert_eq!(pps.get_packet().unwrap(), b"first");
        assert_eq!(pps.get_packet().unwrap(), b"second");
        assert_eq!(pps.get_packet(), Err(SocketError::FileEof));
    }

    #[test]
    fn into_parts_keeps_unreturned_bytes() {
        let mut pps = PacketPeerStream::new(Pipe::new());
        let mut bytes = frame(b"x");
        bytes.extend([9, 0, 0, 0, 1]);
        pps.get_mut().feed(&bytes);
        assert_eq!(pps.get_packet().unwrap(), b"x");
        let (pipe, rest) = pps.into_parts();
        assert_eq!(rest, [9, 0, 0, 0, 1]);
        assert!(pipe.rx.is_empty());
    }

    #[test]
    fn garbage_input_never_panics_or_returns_oversized_packets() {
        for seed in 0..200u64 {
            let mut bytes = crate::stream::testing::garbage(seed, 300);
            // Make plausible (small) headers common.
            for chunk in bytes.chunks_mut(23).step_by(2) {
                if chunk.len() >= 4 {
                    chunk[0] %= 20;
                    chunk[1..4].fill(0);
                }
            }
            let max = usize::try_from(seed % 64).unwrap();
            let mut pps = PacketPeerStream::with_max_packet_size(Pipe::new(), max);
            for piece in bytes.chunks(usize::try_from(seed % 7 + 1).unwrap()) {
                pps.get_mut().feed(piece);
                let count = pps.available_packet_count();
                for _ in 0..count {
                    let p = pps.get_packet().unwrap();
                    assert!(p.len() <= max);
                }
                match pps.get_packet() {
                    Ok(p) => assert!(p.len() <= max),
                    Err(e) => assert!(
                        matches!(e, SocketError::Busy | SocketError::OutOfBufferMemory),
                        "{e:?}"
                    ),
                }
                assert!(pps.buffered_bytes() <= max + HEADER);
            }
        }
    }

    #[test]
    fn debug_shows_state_not_bytes() {
        let mut pps = PacketPeerStream::new(StreamPeerBuffer::from_vec(vec![5, 0, 0, 0, 1]));
        assert_eq!(pps.available_packet_count(), 0);
        assert_eq!(pps.get_packet(), Err(SocketError::FileEof)); // pulls the 5 bytes
        let s = format!("{pps:?}");
        assert!(s.contains("buffered_bytes: 5"), "{s}");
        assert!(s.contains("max_packet_size: 65536"), "{s}");
        assert!(s.contains("desynchronized: false"), "{s}");
    }
}
