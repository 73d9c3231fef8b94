//! The socket-free core: byte queues and the connection state machine.

pub(crate) mod buffer;
pub(crate) mod connection;
