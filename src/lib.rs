//! # lunanet
//!
//! The Luna engine's `streamPeerTCP` networking component — Godot's
//! `StreamPeerTCP`, `TCPServer`, `StreamPeer`, `PacketPeerStream` and `IP` — on one
//! single-threaded [mio] reactor: one thread drives hundreds to tens of
//! thousands of TCP peers, and fits in a game server's fixed-rate tick loop.
//!
//! ## Quick start
//!
//! ```
//! use std::time::Duration;
//! use lunanet::{Reactor, Status, StreamPeerTcp, TcpServer};
//!
//! let reactor = Reactor::new()?;            // one per thread
//! let mut server = TcpServer::new(&reactor);
//! server.listen(0, "127.0.0.1")?;            // port 0: the OS picks one
//!
//! let mut peer = StreamPeerTcp::new(&reactor);
//! peer.connect_to_host("127.0.0.1", server.local_port())?;
//! peer.put_data(b"hello")?;                  // queued while connecting
//!
//! let deadline = std::time::Instant::now() + Duration::from_secs(5);
//! let mut accepted = None;
//! while accepted.is_none() && std::time::Instant::now() < deadline {
//!     peer.poll()?;                          // processes ALL the reactor's events
//!     accepted = server.take_connection();
//! }
//! let mut accepted = accepted.expect("accepted");
//! accepted.wait_for_bytes(5, Duration::from_secs(5))?;
//! let mut buf = [0u8; 5];
//! accepted.get_data(&mut buf)?;
//! assert_eq!(&buf, b"hello");
//! assert_eq!(peer.status(), Status::Connected);
//! # Ok::<(), lunanet::SocketError>(())
//! ```
//!
//! ## How it works (the call contract)
//!
//! A [`Reactor`] owns one `mio::Poll` and every socket. Peers and servers are
//! handles into it. Sockets are read and written, and statuses change, only
//! during a *reactor pass*: [`Reactor::poll`], [`StreamPeerTcp::poll`] (on any
//! peer — it processes them all), [`TcpServer::is_connection_available`], or a
//! `wait_*` method. Everything else is a non-blocking operation on buffers:
//!
//! - `put_*` gathers each peer's output into one `write` per pass
//!   ([`Config::coalesce_writes`], on by default): a reply (the first put after
//!   a pass that read from that peer) is written at once; other bytes are
//!   queued and leave together at the start of the next pass (before it
//!   sleeps), at [`Reactor::flush`], or at disconnect/drop.
//!   `coalesce_writes(false)` writes every put at once. What the kernel refuses
//!   is queued, up to [`Config::write_buffer_limit`];
//! - `get_*` takes bytes a pass already read, up to
//!   [`Config::read_buffer_limit`] per peer (at the limit the reactor stops
//!   reading that peer, so TCP backpressure reaches the sender);
//! - getters such as [`StreamPeerTcp::status`] and
//!   [`StreamPeerTcp::available_bytes`] never do I/O.
//!
//! The repository's `docs/contract.md` states the whole public contract (what
//! every call does and never does); `docs/architecture.md` shows the layers
//! (a socket-free connection state machine driven by the reactor), the path of
//! a byte and the state diagram.
//!
//! ## Two ways to write the loop
//!
//! **Godot style** — call `poll()` on each peer every frame. The first call does
//! the work; the others find nothing new (one `epoll_wait(0)` each).
//!
//! **Tick loop with the ready set** — sleep in [`Reactor::poll`] until the next
//! tick or the next packet, then visit only the peers that changed
//! ([`Reactor::drain_ready`]): with 10 000 mostly idle peers a tick costs
//! O(active peers). Keep your per-player values in a [`PeerMap`]: indexed by
//! the [`HandleId`] without hashing.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use lunanet::{PeerMap, Reactor, StreamPeerTcp, TcpServer};
//!
//! let reactor = Reactor::new()?;
//! let mut server = TcpServer::new(&reactor);
//! server.listen(0, "127.0.0.1")?;
//! let mut players: PeerMap<StreamPeerTcp> = PeerMap::new();
//! let mut ready = Vec::new();
//! let tick = Duration::from_millis(33);
//! let mut next_tick = Instant::now() + tick;
//! for _ in 0..3 {
//!     // Sleep until the next tick, waking early for network events.
//!     reactor.poll(Some(next_tick.saturating_duration_since(Instant::now())))?;
//!     while let Some((id, p)) = server.take_connection_with_id() {
//!         players.insert(id, p);
//!     }
//!     reactor.drain_ready(&mut ready);
//!     for id in ready.drain(..) {
//!         if let Some(player) = players.get_mut(id) {
//!             let mut input = [0u8; 256];
//!             let _n = player.get_partial_data(&mut input);
//!             // ... apply input ...
//!         }
//!     }
//!     if Instant::now() >= next_tick {
//!         // ... simulate, then broadcast the new state to every player ...
//!         next_tick += tick;
//!     }
//! }
//! # Ok::<(), lunanet::SocketError>(())
//! ```
//!
//! ## Luna / Godot → lunanet
//!
//! | Luna (`streamPeerTCP`)          | Godot                      | lunanet                                    |
//! |---------------------------------|----------------------------|--------------------------------------------|
//! | `Bind(port, host)`              | `bind`                     | [`StreamPeerTcp::bind`]                    |
//! | `ConnectToHost(host, port)`     | `connect_to_host`          | [`StreamPeerTcp::connect_to_host`]         |
//! | `Poll()`                        | `poll`                     | [`StreamPeerTcp::poll`] / [`Reactor::poll`] |
//! | `GetStatus()`                   | `get_status`               | [`StreamPeerTcp::status`]                  |
//! | `GetConnectedHost()`            | `get_connected_host`       | [`StreamPeerTcp::connected_host`]          |
//! | `GetConnectedPort()`            | `get_connected_port`       | [`StreamPeerTcp::connected_port`]          |
//! | `GetLocalPort()`                | `get_local_port`           | [`StreamPeerTcp::local_port`]              |
//! | `DisconnectFromHost()`          | `disconnect_from_host`     | [`StreamPeerTcp::disconnect_from_host`]    |
//! | `PutData(data)`                 | `put_data`                 | [`StreamPeerTcp::put_data`]                |
//! | `PutPartialData(data, out n)`   | `put_partial_data`         | [`StreamPeerTcp::put_partial_data`]        |
//! | `GetData(buffer)`               | `get_data`                 | [`StreamPeerTcp::get_data`]                |
//! | `GetPartialData(buffer, out n)` | `get_partial_data`         | [`StreamPeerTcp::get_partial_data`]        |
//! | `GetAvailableBytes()`           | `get_available_bytes`      | [`StreamPeerTcp::available_bytes`]         |
//! | —                               | `set_no_delay`             | [`StreamPeerTcp::set_no_delay`]            |
//! | —                               | `TCPServer.listen`         | [`TcpServer::listen`]                      |
//! | —                               | `TCPServer.take_connection`| [`TcpServer::take_connection`]             |
//! | `Ip.ResolveHostnameAddress`     | `IP.resolve_hostname`      | [`ip::resolve_hostname`]                   |
//! | —                               | `IP.resolve_hostname_queue_item` | [`Resolver::queue`]                  |
//! | `SocketError`                   | `Error`                    | [`SocketError`]                            |
//! | `Status.STATUS_*`               | `STATUS_*`                 | [`Status`]                                 |
//!
//! Typed helpers (`put_u32`, `get_string`, ...) come from the [`StreamPeer`]
//! trait, byte-compatible with Godot; [`PacketPeerStream`] adds Godot's
//! length-prefixed packets; [`variant`] reads and writes Godot's `put_var`
//! values (Godot 3 and 4) on both.
//!
//! ## Threads
//!
//! A [`Reactor`] and its peers belong to one thread (they are `!Send`). To use
//! several cores, run one reactor per thread; a [`ReactorWaker`] wakes a
//! reactor blocked in `poll` from another thread.
//!
//! ## Deviations from Godot
//!
//! - Nothing blocks: Godot's `put_data` / `get_data` wait until done; here they
//!   queue or return [`SocketError::Busy`], and explicit `wait_*` methods with a
//!   timeout exist for scripts.
//! - Status changes only in a reactor pass, so a reply queued in the same tick as
//!   the last read is still sent.
//! - Closing is graceful: queued output is flushed (bounded by
//!   [`Config::linger_timeout`]) before the FIN.
//!
//! [mio]: https://docs.rs/mio
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod config;
mod core;
mod error;
pub mod ip;
mod peer_map;
mod reactor;
mod stream;
mod sys;
mod tcp;
pub mod tick;
#[cfg(feature = "tls")]
pub mod tls;
pub mod variant;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use crate::core::{PeerStats, RateLimit, Status};
pub use config::Config;
pub use error::SocketError;
pub use ip::{Host, IpAddress, IpType, Resolver, ResolverId, ResolverStatus};
pub use peer_map::{PeerMap, PeerMapIter, PeerMapIterMut};
pub use reactor::{HandleId, Reactor, ReactorStats, ReactorWaker};
pub use stream::{
    DEFAULT_MAX_PACKET_SIZE, MAX_STRING_LENGTH, PacketPeer, PacketPeerStream, StreamPeer,
    StreamPeerBuffer,
};
pub use tcp::detached::DetachedPeer;
pub use tcp::peer::StreamPeerTcp;
pub use tcp::server::TcpServer;
pub use tick::{CatchUp, Tick, TickClock};
#[cfg(feature = "websocket")]
pub use websocket::{WebSocketOptions, WebSocketPeer, WriteMode, WsState};

/// The README's code blocks, compiled (and run unless `no_run`) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
