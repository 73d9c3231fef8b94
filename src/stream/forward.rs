//! `StreamPeer` for lent and boxed peers (`&mut P`, `Box<P>`), so a peer can
//! be lent to a [`PacketPeerStream`](crate::PacketPeerStream) or used as a
//! trait object.

use super::peer::StreamPeer;
use crate::SocketError;
use crate::variant::GodotVersion;

/// Both forwarding impls are the same method by method: one list, so a
/// method added to `StreamPeer` cannot be forwarded by one and forgotten by
/// the other.
macro_rules! forward_stream_peer {
    ($($ty:ty),+) => {$(
        impl<P: StreamPeer + ?Sized> StreamPeer for $ty {
            fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
                (**self).put_data(data)
            }
            fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
                (**self).put_partial_data(data)
            }
            fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
                (**self).get_data(buf)
            }
            fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
                (**self).get_partial_data(buf)
            }
            fn available_bytes(&self) -> usize {
                (**self).available_bytes()
            }
            fn peek_data(&self, buf: &mut [u8]) -> usize {
                (**self).peek_data(buf)
            }
            fn is_big_endian(&self) -> bool {
                (**self).is_big_endian()
            }
            fn set_big_endian(&mut self, big_endian: bool) {
                (**self).set_big_endian(big_endian)
            }
            fn max_buffered_bytes(&self) -> usize {
                (**self).max_buffered_bytes()
            }
            fn hold_input(&mut self, held: bool) {
                (**self).hold_input(held)
            }
            fn short_read_error(&mut self) -> SocketError {
                (**self).short_read_error()
            }
            fn godot_version(&self) -> GodotVersion {
                (**self).godot_version()
            }
            fn set_godot_version(&mut self, version: GodotVersion) {
                (**self).set_godot_version(version)
            }
        }
    )+};
}

forward_stream_peer!(&mut P, Box<P>);
