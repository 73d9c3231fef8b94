//! [`PacketPeer`]: whole packets in and out, the seam shared by
//! [`PacketPeerStream`] and message transports such as WebSocket.

use super::packet::PacketPeerStream;
use crate::variant::{self, GodotVersion, Limits, Variant};
use crate::{SocketError, StreamPeer, StreamPeerBuffer};

/// Whole packets in and out: the seam shared by [`PacketPeerStream`] (framed
/// over any byte stream) and message transports such as WebSocket (Godot's
/// `PacketPeer`).
///
/// Every call is non-blocking: a packet is returned whole or not at all, and
/// `put_packet` queues a packet whole or refuses it.
///
/// # Example
///
/// ```
/// use lunanet::{PacketPeer, PacketPeerStream, SocketError, StreamPeerBuffer};
///
/// fn echo_one(peer: &mut impl PacketPeer) -> Result<(), SocketError> {
///     let packet = peer.get_packet()?;
///     peer.put_packet(&packet)
/// }
///
/// let mut pps = PacketPeerStream::new(StreamPeerBuffer::from_vec(vec![1, 0, 0, 0, 7]));
/// echo_one(&mut pps)?;
/// assert_eq!(pps.get_ref().data(), [1, 0, 0, 0, 7, 1, 0, 0, 0, 7]);
/// # Ok::<(), SocketError>(())
/// ```
pub trait PacketPeer {
    /// Queues one whole packet, or refuses it and queues nothing.
    ///
    /// # Errors
    ///
    /// As the implementation documents: `InvalidParameter` for a packet over
    /// its maximum size, `OutOfBufferMemory` when the outbound buffer is full
    /// now (retry after it drains), the transport's failure otherwise.
    fn put_packet(&mut self, packet: &[u8]) -> Result<(), SocketError>;

    /// Returns the next whole packet.
    ///
    /// # Errors
    ///
    /// `Busy` while no whole packet is buffered; `FileEof` when none will
    /// arrive any more; the transport's failure otherwise.
    fn get_packet(&mut self) -> Result<Vec<u8>, SocketError>;

    /// How many whole packets can be taken now without waiting. Takes
    /// `&self`: counting never consumes or moves input.
    fn available_packet_count(&self) -> usize;

    /// The Godot major version `put_var` / `get_var` speak. Default
    /// [`GodotVersion::V4`]; `PacketPeerStream` uses its peer's.
    fn godot_version(&self) -> GodotVersion {
        GodotVersion::V4
    }

    /// Chooses the Godot major version of `put_var` / `get_var`. The default
    /// implementation cannot store it and logs a warning for anything but V4.
    fn set_godot_version(&mut self, version: GodotVersion) {
        if version != GodotVersion::V4 {
            log::warn!(
                "set_godot_version({version:?}) on a PacketPeer that does not store it; \
                 it keeps speaking V4"
            );
        }
    }

    /// Sends one Godot value as one packet, as Godot's `PacketPeer.put_var`
    /// (no length prefix: the transport marks the boundary).
    ///
    /// # Errors
    ///
    /// `InvalidParameter` when the value cannot be encoded for
    /// [`godot_version`](PacketPeer::godot_version) (the cause is logged);
    /// those of `put_packet` otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use lunanet::{PacketPeer, PacketPeerStream, StreamPeerBuffer};
    /// use lunanet::variant::Variant;
    ///
    /// fn reply(peer: &mut impl PacketPeer) -> Result<(), lunanet::SocketError> {
    ///     let v = peer.get_var()?;
    ///     peer.put_var(&Variant::from(format!("got {}", v.type_name())))
    /// }
    /// let mut pps = PacketPeerStream::new(StreamPeerBuffer::from_vec(
    ///     vec![8, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0],
    /// ));
    /// reply(&mut pps)?;
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    fn put_var(&mut self, value: &Variant) -> Result<(), SocketError> {
        let mut packet = Vec::new();
        if let Err(e) = variant::encode(value, self.godot_version(), &mut packet) {
            log::warn!("put_var: {e}");
            return Err(SocketError::InvalidParameter);
        }
        self.put_packet(&packet)
    }

    /// Receives one packet and decodes it as one Godot value (default
    /// [`Limits`]), as Godot's `PacketPeer.get_var`.
    ///
    /// # Errors
    ///
    /// Those of `get_packet`; `InvalidData` when the packet is not a valid
    /// value (the packet is consumed; the next call reads the next one).
    fn get_var(&mut self) -> Result<Variant, SocketError> {
        let packet = self.get_packet()?;
        variant::decode(&packet, self.godot_version(), &Limits::default())
            .map(|(v, _)| v)
            .map_err(|e| {
                log::debug!("get_var: {e}");
                SocketError::InvalidData
            })
    }

    /// Builds one packet with the typed helpers of a [`StreamPeerBuffer`]
    /// and sends it. `PacketPeerStream` reuses its buffers.
    ///
    /// # Errors
    ///
    /// The first error of `write` (nothing sent), or those of `put_packet`.
    fn put_packet_with<F>(&mut self, write: F) -> Result<(), SocketError>
    where
        Self: Sized,
        F: FnOnce(&mut StreamPeerBuffer) -> Result<(), SocketError>,
    {
        let mut w = StreamPeerBuffer::new();
        write(&mut w)?;
        self.put_packet(w.data())
    }

    /// Takes the next packet and reads it with the typed helpers of a
    /// [`StreamPeerBuffer`]; the packet is consumed whatever `read` returns.
    ///
    /// # Errors
    ///
    /// Those of `get_packet`, or `read`'s.
    fn get_packet_with<T, F>(&mut self, read: F) -> Result<T, SocketError>
    where
        Self: Sized,
        F: FnOnce(&mut StreamPeerBuffer) -> Result<T, SocketError>,
    {
        let packet = self.get_packet()?;
        read(&mut StreamPeerBuffer::from_vec(packet))
    }
}

impl<P: StreamPeer> PacketPeer for PacketPeerStream<P> {
    fn put_packet(&mut self, packet: &[u8]) -> Result<(), SocketError> {
        PacketPeerStream::put_packet(self, packet)
    }

    fn get_packet(&mut self) -> Result<Vec<u8>, SocketError> {
        PacketPeerStream::get_packet(self)
    }

    fn available_packet_count(&self) -> usize {
        PacketPeerStream::available_packet_count(self)
    }

    /// The wrapped peer's version (see [`StreamPeer::godot_version`]).
    fn godot_version(&self) -> GodotVersion {
        self.peer.godot_version()
    }

    /// Sets the wrapped peer's version.
    fn set_godot_version(&mut self, version: GodotVersion) {
        self.peer.set_godot_version(version)
    }

    fn put_var(&mut self, value: &Variant) -> Result<(), SocketError> {
        PacketPeerStream::put_var(self, value)
    }

    fn get_var(&mut self) -> Result<Variant, SocketError> {
        PacketPeerStream::get_var(self)
    }

    fn put_packet_with<F>(&mut self, write: F) -> Result<(), SocketError>
    where
        F: FnOnce(&mut StreamPeerBuffer) -> Result<(), SocketError>,
    {
        PacketPeerStream::put_packet_with(self, write)
    }

    fn get_packet_with<T, F>(&mut self, read: F) -> Result<T, SocketError>
    where
        F: FnOnce(&mut StreamPeerBuffer) -> Result<T, SocketError>,
    {
        PacketPeerStream::get_packet_with(self, read)
    }
}
