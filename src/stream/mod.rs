//! The stream layer: Godot's `StreamPeer` and `PacketPeer` over any byte
//! stream (TCP, WebSocket, TLS or the in-memory [`StreamPeerBuffer`]).
//!
//! Everything here is public through the crate root (`lunanet::StreamPeer`,
//! ...); the files split the layer by concern:
//!
//! - `peer`: the [`StreamPeer`] trait (Godot's typed helpers, wire format);
//! - `packet`: [`PacketPeerStream`] and the [`PacketPeer`] trait (Godot's
//!   length-prefixed packets over a `StreamPeer`).

mod packet;
mod peer;

pub use packet::{DEFAULT_MAX_PACKET_SIZE, PacketPeer, PacketPeerStream};
pub use peer::{MAX_STRING_LENGTH, StreamPeer, StreamPeerBuffer};

#[cfg(test)]
pub(crate) use peer::testing;
