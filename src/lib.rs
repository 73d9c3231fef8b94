//! lunanet (work in progress)
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod buffer;
mod config;
mod conn;
mod error;
pub mod ip;
mod net;
mod packet;
mod peer;
mod reactor;
mod server;
mod stream_peer;

pub use config::Config;
pub use conn::Status;
pub use error::SocketError;
pub use ip::{Host, IpAddress, IpType, Resolver, ResolverId, ResolverStatus};
pub use packet::{DEFAULT_MAX_PACKET_SIZE, PacketPeerStream};
pub use peer::StreamPeerTcp;
pub use reactor::{HandleId, Reactor, ReactorWaker};
pub use server::TcpServer;
pub use stream_peer::{MAX_STRING_LENGTH, StreamPeer, StreamPeerBuffer};
