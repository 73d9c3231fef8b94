//! The stream layer: Godot's `StreamPeer` and `PacketPeer` over any byte
//! stream (TCP, WebSocket, TLS or the in-memory [`StreamPeerBuffer`]).
//!
//! Everything here is public through the crate root (`lunanet::StreamPeer`,
//! ...); the files split the layer by concern:
//!
//! - `peer`: the [`StreamPeer`] trait, its contract and wire format;
//! - `typed`: the machinery behind its typed helpers (the fixed-size
//!   `put_*` / `get_*` generator, checked string readers);
//! - `forward`: `StreamPeer` for `&mut P` and `Box<P>`;
//! - `buffer`: [`StreamPeerBuffer`], the in-memory seekable peer;
//! - `packet`: [`PacketPeerStream`], Godot's length-prefixed packets over a
//!   `StreamPeer`;
//! - `packet_peer`: the [`PacketPeer`] trait (whole packets in and out).

mod buffer;
mod forward;
mod packet;
mod packet_peer;
mod peer;
#[cfg(test)]
pub(crate) mod testing;
mod typed;

pub use buffer::StreamPeerBuffer;
pub use packet::{DEFAULT_MAX_PACKET_SIZE, PacketPeerStream};
pub use packet_peer::PacketPeer;
pub use peer::{MAX_STRING_LENGTH, StreamPeer};
