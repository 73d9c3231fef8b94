//! The TCP handles: `StreamPeerTcp` and `TcpServer`.

pub(crate) mod detached;
pub(crate) mod peer;
pub(crate) mod server;
