//! The socket-free core: byte queues and the connection state machine.
//!
//! Nothing here touches the OS: no mio, no socket2, no syscalls. The reactor
//! drives it with readiness, bytes and time; the unit tests drive it with
//! scripted transports and explicit timestamps (`tests/architecture.rs`
//! fails the build if this directory ever imports mio or socket2).

pub(crate) mod buffer;
pub(crate) mod connection;

pub use connection::Status;
pub(crate) use connection::{Actions, Clock, Connection, Dial, Limits, Readiness, Transport};
