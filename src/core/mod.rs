//! The socket-free core: byte queues and the connection state machine.
//!
//! Nothing here touches the OS: no mio, no socket2, no syscalls. The reactor
//! drives it with readiness, bytes and time; the unit tests drive it with
//! scripted transports and explicit timestamps (`tests/architecture.rs`
//! fails if this directory ever imports mio or socket2).
//!
//! - [`status`]: the user-visible [`Status`];
//! - [`drive`]: what goes in (readiness, time) and out ([`Actions`]), and the
//!   two seams to the OS ([`Transport`], [`Dial`]);
//! - [`io`]: the edge-triggered read and write loops on the two queues;
//! - [`buffer`]: the bounded byte queue;
//! - [`connection`]: the state machine that owns all of it.

pub(crate) mod buffer;
pub(crate) mod connection;
pub(crate) mod drive;
pub(crate) mod io;
pub(crate) mod status;

pub(crate) use connection::Connection;
pub(crate) use drive::{Actions, Clock, Dial, Limits, Readiness, Transport};
pub use status::Status;
