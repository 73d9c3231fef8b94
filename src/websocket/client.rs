//! [`ClientTransport`], the stream a client [`WebSocketPeer`](super::WebSocketPeer)
//! runs over, and [`PollReactor`].

use std::io;

use super::WebSocketTransport;
use crate::{HandleId, SocketError, Status, StreamPeerTcp};

/// Streams that can run one non-blocking pass of their reactor, for
/// [`WebSocketPeer::poll`](super::WebSocketPeer::poll).
pub trait PollReactor {
    /// One non-blocking reactor pass.
    ///
    /// # Errors
    ///
    /// Only if the OS poller fails.
    fn poll_reactor(&self) -> Result<(), SocketError>;
}

impl PollReactor for StreamPeerTcp {
    fn poll_reactor(&self) -> Result<(), SocketError> {
        self.poll()
    }
}

#[cfg(feature = "tls")]
impl PollReactor for crate::tls::StreamPeerTls<StreamPeerTcp> {
    fn poll_reactor(&self) -> Result<(), SocketError> {
        self.get_stream().map_or(Ok(()), StreamPeerTcp::poll)
    }
}

/// The stream a client [`WebSocketPeer`](super::WebSocketPeer) from
/// [`connect_to_url`](super::WebSocketPeer::connect_to_url) runs over: TCP for
/// `ws://` (TLS for `wss://` once the `tls` feature exists). Every trait
/// delegates to the stream inside.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientTransport {
    /// `ws://`.
    Tcp(StreamPeerTcp),
    /// `wss://` (feature `tls`).
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::StreamPeerTls<StreamPeerTcp>>),
}

/// Runs `$e` with `$s` bound to the stream inside a [`ClientTransport`]
/// (`ref`: shared, `mut`: exclusive).
macro_rules! each_transport {
    (ref $self:expr, $s:ident => $e:expr) => {
        match $self {
            ClientTransport::Tcp($s) => $e,
            #[cfg(feature = "tls")]
            ClientTransport::Tls(boxed) => {
                let $s = boxed.as_ref();
                $e
            }
        }
    };
    (mut $self:expr, $s:ident => $e:expr) => {
        match $self {
            ClientTransport::Tcp($s) => $e,
            #[cfg(feature = "tls")]
            ClientTransport::Tls(boxed) => {
                let $s = boxed.as_mut();
                $e
            }
        }
    };
}

impl crate::StreamPeer for ClientTransport {
    fn put_data(&mut self, data: &[u8]) -> Result<(), SocketError> {
        each_transport!(mut self, s => s.put_data(data))
    }
    fn put_partial_data(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        each_transport!(mut self, s => s.put_partial_data(data))
    }
    fn get_data(&mut self, buf: &mut [u8]) -> Result<(), SocketError> {
        each_transport!(mut self, s => s.get_data(buf))
    }
    fn get_partial_data(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        each_transport!(mut self, s => s.get_partial_data(buf))
    }
    fn available_bytes(&self) -> usize {
        each_transport!(ref self, s => s.available_bytes())
    }
    fn peek_data(&self, buf: &mut [u8]) -> usize {
        each_transport!(ref self, s => s.peek_data(buf))
    }
    fn is_big_endian(&self) -> bool {
        each_transport!(ref self, s => crate::StreamPeer::is_big_endian(s))
    }
    fn set_big_endian(&mut self, big_endian: bool) {
        each_transport!(mut self, s => crate::StreamPeer::set_big_endian(s, big_endian))
    }
    fn max_buffered_bytes(&self) -> usize {
        each_transport!(ref self, s => crate::StreamPeer::max_buffered_bytes(s))
    }
    fn short_read_error(&mut self) -> SocketError {
        each_transport!(mut self, s => crate::StreamPeer::short_read_error(s))
    }
    fn godot_version(&self) -> crate::variant::GodotVersion {
        each_transport!(ref self, s => crate::StreamPeer::godot_version(s))
    }
    fn set_godot_version(&mut self, version: crate::variant::GodotVersion) {
        each_transport!(mut self, s => crate::StreamPeer::set_godot_version(s, version))
    }
}

impl io::Read for ClientTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each_transport!(mut self, s => s.read(buf))
    }
}

impl io::Write for ClientTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each_transport!(mut self, s => s.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        each_transport!(mut self, s => s.flush())
    }
}

impl WebSocketTransport for ClientTransport {
    fn status(&self) -> Status {
        each_transport!(ref self, s => WebSocketTransport::status(s))
    }
    fn queued_output(&self) -> usize {
        each_transport!(ref self, s => s.queued_output())
    }
    fn advance(&mut self) -> Result<(), SocketError> {
        each_transport!(mut self, s => s.advance())
    }
    fn shut_down(&mut self) {
        each_transport!(mut self, s => s.shut_down())
    }
    fn handle_id(&self) -> Option<HandleId> {
        each_transport!(ref self, s => s.handle_id())
    }
    fn set_no_delay(&mut self, enabled: bool) -> Result<(), SocketError> {
        each_transport!(mut self, s => WebSocketTransport::set_no_delay(s, enabled))
    }
}

impl PollReactor for ClientTransport {
    fn poll_reactor(&self) -> Result<(), SocketError> {
        each_transport!(ref self, s => s.poll_reactor())
    }
}
