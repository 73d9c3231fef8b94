//! The TCP handles: `StreamPeerTcp` and `TcpServer`.

pub(crate) mod peer;
pub(crate) mod server;
