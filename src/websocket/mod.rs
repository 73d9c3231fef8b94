//! WebSocket peers (feature `websocket`): Godot 4's `WebSocketPeer` on the
//! same single-threaded reactor, for browsers and Godot web exports, over TCP
//! (`ws://`) or, with the `tls` feature, TLS (`wss://`).
//!
//! Browsers and Godot HTML5 exports cannot open raw TCP; they speak
//! WebSocket. A [`WebSocketPeer`] runs the protocol (tungstenite's
//! `WebSocketContext`, no async runtime) over a lunanet byte stream: a
//! [`StreamPeerTcp`](crate::StreamPeerTcp) for `ws://`, a TLS stream for
//! `wss://`. Both ends are supported:
//!
//! - server: [`WebSocketPeer::accept_stream`] on a peer taken from a
//!   [`TcpServer`](crate::TcpServer);
//! - client: [`WebSocketPeer::connect_to_url`].
//!
//! Messages are whole packets ([`PacketPeer`](crate::PacketPeer)): one
//! binary or text message in, one packet out, as Godot.
//!
//! # Memory and backpressure
//!
//! Nothing is preallocated per connection beyond a 1 KiB frame-reading
//! buffer (tungstenite's default is 128 KiB): an idle open server peer costs
//! about 2 KiB of heap, its reactor entry included. tungstenite's buffers keep
//! the size of the largest frame they handled (bounded by
//! `inbound_buffer_size` for received frames). Received messages wait in a queue bounded
//! by [`WebSocketOptions::inbound_buffer_size`] bytes and
//! [`WebSocketOptions::max_queued_packets`] messages; while it is full the
//! peer stops reading, so TCP flow control slows the sender. A message larger
//! than `inbound_buffer_size` is refused from its frame header, before any
//! memory is reserved for it, and the connection is closed with code 1009.
//! Outgoing messages go straight into the transport's write queue; `send`
//! refuses a message with `OutOfBufferMemory` while
//! [`current_outbound_buffered_amount`](WebSocketPeer::current_outbound_buffered_amount)
//! plus the message exceed [`WebSocketOptions::outbound_buffer_size`].
//!
//! # Example: an echo server and a client on one reactor
//!
//! ```
//! use std::time::{Duration, Instant};
//! use lunanet::websocket::{WebSocketOptions, WebSocketPeer, WsState};
//! use lunanet::{Reactor, StreamPeerTcp, TcpServer};
//!
//! let reactor = Reactor::new()?;
//! let mut server = TcpServer::new(&reactor);
//! server.listen(0, "127.0.0.1")?;
//! let url = format!("ws://127.0.0.1:{}/echo", server.local_port());
//! let mut client = WebSocketPeer::connect_to_url(&reactor, &url, None)?;
//!
//! let options = WebSocketOptions::default();
//! let mut accepted: Option<WebSocketPeer<StreamPeerTcp>> = None;
//! let mut echoed = None;
//! let mut sent = false;
//! let deadline = Instant::now() + Duration::from_secs(5);
//! while echoed.is_none() && Instant::now() < deadline {
//!     reactor.poll(Some(Duration::from_millis(10)))?;
//!     if let Some(tcp) = server.take_connection() {
//!         accepted = Some(WebSocketPeer::accept_stream(tcp, &options));
//!     }
//!     if let Some(peer) = accepted.as_mut() {
//!         peer.process();
//!         while let Ok(packet) = peer.get_packet() {
//!             peer.send_text(std::str::from_utf8(&packet).unwrap_or("?"))?;
//!         }
//!     }
//!     client.process();
//!     if client.ready_state() == WsState::Open && !sent {
//!         client.send_text("hello")?;
//!         sent = true;
//!     }
//!     if let Ok(packet) = client.get_packet() {
//!         echoed = Some((packet, client.was_string_packet()));
//!     }
//! }
//! assert_eq!(echoed, Some((b"hello".to_vec(), true)));
//! assert_eq!(accepted.unwrap().requested_url(), "/echo");
//! # Ok::<(), lunanet::SocketError>(())
//! ```

mod client;
mod handshake;
mod peer;
mod transport;

use std::time::Duration;

pub use client::{ClientTransport, PollReactor};
pub use handshake::{HttpRequestKind, classify_request};
pub use peer::WebSocketPeer;
pub use transport::WebSocketTransport;

/// A WebSocket's state (Godot `WebSocketPeer.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WsState {
    /// The TCP connection or the HTTP upgrade is in progress
    /// (`STATE_CONNECTING`).
    Connecting,
    /// Messages flow both ways (`STATE_OPEN`).
    Open,
    /// A Close frame was sent or received; waiting for the other side's
    /// (`STATE_CLOSING`). Messages received before the peer's Close are still
    /// delivered.
    Closing,
    /// The connection is gone (`STATE_CLOSED`);
    /// [`close_code`](WebSocketPeer::close_code) says how it ended. Queued
    /// packets can still be taken.
    Closed,
}

/// How [`WebSocketPeer::send`] frames a message (Godot `WriteMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WriteMode {
    /// A text message: the payload must be UTF-8 (`WRITE_MODE_TEXT`).
    Text,
    /// A binary message (`WRITE_MODE_BINARY`, Godot's default).
    #[default]
    Binary,
}

/// Without the `tls` feature: a stand-in for TLS client options,
/// uninhabited, so the only value of `Option<TlsOptions>` is `None` and
/// [`WebSocketPeer::connect_to_url`] has the same signature either way.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub enum TlsOptions {}

#[cfg(feature = "tls")]
pub use crate::tls::TlsOptions;

/// Settings of a [`WebSocketPeer`], with Godot 4's defaults.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use lunanet::websocket::WebSocketOptions;
///
/// let mut options = WebSocketOptions::default();
/// assert_eq!(options.inbound_buffer_size, 65_535);
/// options.supported_protocols = vec!["chat".into()];
/// options.heartbeat_interval = Duration::from_secs(10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSocketOptions {
    /// Subprotocols, in preference order. A server with some refuses clients
    /// that offer none of them (as Godot); a client offers them all and
    /// requires the server to pick one. Default: none.
    pub supported_protocols: Vec<String>,
    /// Extra `Name: value` header lines sent with the upgrade request (client)
    /// or response (server). Lines with CR/LF or an invalid name are refused
    /// (client) or skipped with a warning (server). Browsers cannot send
    /// custom headers: put authentication in the URL query
    /// ([`requested_url`](WebSocketPeer::requested_url)), a subprotocol, or
    /// the first message. Default: none.
    pub handshake_headers: Vec<String>,
    /// The largest message accepted, and the most bytes of received messages
    /// queued before the peer stops reading (default 65 535, Godot's). A
    /// larger message closes the connection with code 1009.
    pub inbound_buffer_size: usize,
    /// The most bytes waiting to be sent before `send` refuses with
    /// `OutOfBufferMemory` (default 65 535, Godot's).
    pub outbound_buffer_size: usize,
    /// The most received messages queued before the peer stops reading
    /// (default 4 096, Godot's current default).
    pub max_queued_packets: usize,
    /// How often an open peer sends a Ping (zero, the default: never). Set it
    /// on servers with browser clients, which cannot ping: it keeps NAT
    /// mappings and proxies alive, and a peer from which nothing (not even a
    /// Pong) arrived for three intervals is dropped (lunanet addition;
    /// close code -1).
    pub heartbeat_interval: Duration,
    /// How long the HTTP upgrade may take (server: from `accept_stream`;
    /// client: from the TCP connection), and how long a closing handshake
    /// waits for the other side's Close (default 3 s, Godot's
    /// `handshake_timeout`).
    pub handshake_timeout: Duration,
}

impl Default for WebSocketOptions {
    fn default() -> WebSocketOptions {
        WebSocketOptions {
            supported_protocols: Vec::new(),
            handshake_headers: Vec::new(),
            inbound_buffer_size: 65_535,
            outbound_buffer_size: 65_535,
            max_queued_packets: 4096,
            heartbeat_interval: Duration::ZERO,
            handshake_timeout: Duration::from_secs(3),
        }
    }
}
