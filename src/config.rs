//! [`Config`]: the reactor-wide settings.

use std::time::Duration;

use crate::{RateLimit, SocketError};

/// Settings for a [`Reactor`](crate::Reactor) and every peer and server in it.
///
/// Start from [`Config::default()`] and change what you need with the consuming
/// setters; each setter documents its default. Limits bound memory: nothing is
/// preallocated, buffers grow on demand up to the limit and are released when a
/// peer goes idle.
///
/// ```
/// use std::time::Duration;
/// use lunanet::{Config, Reactor};
///
/// let reactor = Reactor::with_config(
///     Config::default()
///         .read_buffer_limit(1 << 20)
///         .connect_timeout(Duration::from_secs(5)),
/// )?;
/// assert_eq!(reactor.config().connect_timeout, Duration::from_secs(5));
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// See [`Config::read_buffer_limit`].
    pub read_buffer_limit: usize,
    /// See [`Config::write_buffer_limit`].
    pub write_buffer_limit: usize,
    /// See [`Config::connect_timeout`].
    pub connect_timeout: Duration,
    /// See [`Config::read_budget`].
    pub read_budget: usize,
    /// See [`Config::events_capacity`].
    pub events_capacity: usize,
    /// See [`Config::listen_backlog`].
    pub listen_backlog: u32,
    /// See [`Config::linger_timeout`].
    pub linger_timeout: Duration,
    /// See [`Config::no_delay`].
    pub no_delay: bool,
    /// See [`Config::coalesce_writes`].
    pub coalesce_writes: bool,
    /// See [`Config::reuse_port`].
    pub reuse_port: bool,
    /// See [`Config::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// See [`Config::keepalive`].
    pub keepalive: Option<Duration>,
    /// See [`Config::user_timeout`].
    pub user_timeout: Option<Duration>,
    /// See [`Config::read_rate_limit`].
    pub read_rate_limit: Option<RateLimit>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            read_buffer_limit: 256 * 1024,
            write_buffer_limit: 1024 * 1024,
            connect_timeout: Duration::from_secs(30),
            read_budget: 64 * 1024,
            events_capacity: 1024,
            listen_backlog: 1024,
            linger_timeout: Duration::from_secs(5),
            no_delay: true,
            coalesce_writes: true,
            reuse_port: false,
            idle_timeout: None,
            keepalive: None,
            user_timeout: None,
            read_rate_limit: None,
        }
    }
}

impl Config {
    /// Most bytes buffered in user space for one peer's incoming data
    /// (default 256 KiB). When a peer's read buffer is full the reactor stops
    /// reading it, so TCP flow control slows the sender down; reading resumes as
    /// soon as the application consumes data. A `get_data` larger than this can
    /// never succeed and returns `OutOfBufferMemory`.
    pub fn read_buffer_limit(mut self, bytes: usize) -> Config {
        self.read_buffer_limit = bytes;
        self
    }

    /// Most bytes queued in user space for one peer's outgoing data
    /// (default 1 MiB). `put_data` that would exceed it is refused whole with
    /// `OutOfBufferMemory`; `put_partial_data` queues what fits.
    pub fn write_buffer_limit(mut self, bytes: usize) -> Config {
        self.write_buffer_limit = bytes;
        self
    }

    /// How long `connect_to_host` may stay `Connecting` (hostname resolution
    /// included) before the peer goes to `Status::Error` with `ConnectFailed`
    /// (default 30 s, as Godot).
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// Most bytes read from one peer in one reactor pass (default 64 KiB), so a
    /// flooding peer cannot starve the others. A peer that hits its budget is
    /// read again in the next pass without waiting for a new readiness event.
    pub fn read_budget(mut self, bytes: usize) -> Config {
        self.read_budget = bytes;
        self
    }

    /// Most readiness events taken from the OS in one pass (default 1024). More
    /// ready sockets are simply served in the next pass.
    pub fn events_capacity(mut self, events: usize) -> Config {
        self.events_capacity = events;
        self
    }

    /// Length of the kernel's accept queue for [`TcpServer`](crate::TcpServer)s
    /// (default 1024; the kernel may cap it, see `net.core.somaxconn`).
    pub fn listen_backlog(mut self, backlog: u32) -> Config {
        self.listen_backlog = backlog;
        self
    }

    /// How long a closed peer (after `disconnect_from_host()` or drop) may keep
    /// flushing queued output and waiting for the remote's FIN before its socket
    /// is closed regardless (default 5 s). Output still queued at that point is
    /// discarded and logged.
    pub fn linger_timeout(mut self, timeout: Duration) -> Config {
        self.linger_timeout = timeout;
        self
    }

    /// Whether new peers disable Nagle's algorithm (`TCP_NODELAY`, default on:
    /// games want small messages sent now). Per peer:
    /// [`StreamPeerTcp::set_no_delay`](crate::StreamPeerTcp::set_no_delay).
    pub fn no_delay(mut self, on: bool) -> Config {
        self.no_delay = on;
        self
    }

    /// Whether `put_*` gathers a peer's output into one `write` per reactor
    /// pass (default **on**).
    ///
    /// On (the default), exactly when bytes leave:
    ///
    /// - **a reply is written at once**: the first `put_*` to a connected peer
    ///   with nothing queued, after a pass that read bytes from that peer and
    ///   drained them (it did not spend its whole
    ///   [`read_budget`](Config::read_budget)), goes straight to the socket.
    ///   Request/response keeps one `write` per reply and its latency;
    /// - **everything else is queued**: puts to a peer that sent nothing in the
    ///   latest pass (a tick broadcast), later puts after that reply, puts to a
    ///   peer still streaming in;
    /// - **queued bytes leave in one `write` per peer** at the start of the next
    ///   reactor pass, before it sleeps ([`Reactor::poll`](crate::Reactor::poll),
    ///   any `StreamPeerTcp::poll`, `TcpServer::is_connection_available`, every
    ///   `wait_*`), at [`Reactor::flush`](crate::Reactor::flush) and
    ///   `io::Write::flush`, and at `disconnect_from_host()` or drop (which
    ///   flush, then send FIN).
    ///
    /// A tick loop that `put_data`s ten records to each of 1 000 peers and then
    /// sleeps in `poll` makes one `write` per peer per tick instead of ten. A
    /// program that puts and then never runs a pass (nor flushes) sends
    /// nothing: call [`Reactor::flush`](crate::Reactor::flush) if you must.
    ///
    /// Off: every `put_*` writes at once when nothing is queued ahead of it
    /// (one `write` per call, as Godot's `put_data`).
    ///
    /// ```
    /// use lunanet::{Config, Reactor};
    /// assert!(Reactor::new()?.config().coalesce_writes);
    /// let write_at_once = Reactor::with_config(Config::default().coalesce_writes(false))?;
    /// assert!(!write_at_once.config().coalesce_writes);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn coalesce_writes(mut self, on: bool) -> Config {
        self.coalesce_writes = on;
        self
    }

    /// Whether [`TcpServer::listen`](crate::TcpServer::listen) sets
    /// `SO_REUSEPORT` (default off), so that several reactors, one per thread,
    /// can each listen on the same address and port.
    ///
    /// The kernel then spreads incoming connections over the listening
    /// sockets by a hash of each connection's addresses and ports: even on
    /// average, but blind to load (a stalled thread keeps receiving
    /// connections), and connections still queued on a listener that closes
    /// are reset. `docs/many-cores.md` explains the limits and what to do
    /// about them. Every socket sharing a port must set it, in processes of
    /// the same user. Unix only (Linux, the BSDs, macOS): elsewhere `listen`
    /// fails with `InvalidParameter`.
    ///
    /// ```
    /// use lunanet::{Config, Reactor, TcpServer};
    ///
    /// let config = Config::default().reuse_port(true);
    /// let (a, b) = (Reactor::with_config(config.clone())?, Reactor::with_config(config)?);
    /// let mut first = TcpServer::new(&a);
    /// first.listen(0, "127.0.0.1")?;
    /// // A second reactor (normally on another thread) listens on the same port.
    /// let mut second = TcpServer::new(&b);
    /// second.listen(first.local_port(), "127.0.0.1")?;
    /// assert_eq!(second.local_port(), first.local_port());
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Config {
        self.reuse_port = on;
        self
    }

    /// A connected peer that receives no byte for this long goes to
    /// `Status::Error` (`error()` `ConnectionClosed`, `error_kind()`
    /// `TimedOut`); default `None` (never). Per peer:
    /// [`StreamPeerTcp::set_idle_timeout`](crate::StreamPeerTcp::set_idle_timeout).
    ///
    /// It is a deadline of each connection's state machine (a timer per peer,
    /// pushed back lazily), not a scan of peers: 10 000 idle peers cost a
    /// reactor pass nothing. It catches silent clients whatever the network
    /// does; pick it above your protocol's longest quiet period (a game
    /// client usually sends input or a heartbeat every second).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.idle_timeout = timeout;
        self
    }

    /// TCP keepalive (`SO_KEEPALIVE`) on new peers: after this long without
    /// traffic the kernel probes the remote every `time` (at least 1 s), and
    /// resets the connection after a few unanswered probes (`TCP_KEEPCNT`,
    /// 3 here where the OS allows it); default `None` (off). The peer then
    /// goes to `Error` (`TimedOut`). Detects a vanished host even when the
    /// application protocol is silent by design.
    pub fn keepalive(mut self, time: Option<Duration>) -> Config {
        self.keepalive = time;
        self
    }

    /// Linux `TCP_USER_TIMEOUT` on new peers: data sent but not acknowledged
    /// for this long (a pulled cable, a frozen host, a remote whose window
    /// stays closed) makes the kernel abort the connection, and the peer goes
    /// to `Error` (`TimedOut`); default `None` (the kernel's retransmission
    /// limits, about 15 minutes). Ignored on other systems.
    pub fn user_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.user_timeout = timeout;
        self
    }

    /// Reads from each peer at most `bytes_per_second` on average, bursts up
    /// to `burst` (default `None`: unlimited). A peer over its rate is simply
    /// not read: its bytes wait in the kernel and TCP's flow control slows the
    /// sender; nothing is dropped. Per peer:
    /// [`StreamPeerTcp::set_read_rate_limit`](crate::StreamPeerTcp::set_read_rate_limit).
    pub fn read_rate_limit(mut self, limit: Option<RateLimit>) -> Config {
        self.read_rate_limit = limit;
        self
    }

    /// Rejects settings that cannot work.
    pub(crate) fn validate(&self) -> Result<(), SocketError> {
        if self.read_buffer_limit == 0
            || self.write_buffer_limit == 0
            || self.read_budget == 0
            || self.events_capacity == 0
            || self.listen_backlog == 0
            || self.read_rate_limit.is_some_and(|r| !r.is_valid())
        {
            log::error!("invalid lunanet config: {self:?}");
            return Err(SocketError::InvalidParameter);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.read_buffer_limit, 256 * 1024);
        assert_eq!(c.write_buffer_limit, 1024 * 1024);
        assert_eq!(c.connect_timeout, Duration::from_secs(30));
        assert!(c.no_delay);
        assert!(!c.reuse_port);
        assert!(c.coalesce_writes, "the default serves a tick loop");
        assert!(c.listen_backlog >= 1024);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn zero_limits_are_rejected() {
        for c in [
            Config::default().read_buffer_limit(0),
            Config::default().write_buffer_limit(0),
            Config::default().read_budget(0),
            Config::default().events_capacity(0),
            Config::default().listen_backlog(0),
        ] {
            assert_eq!(c.validate(), Err(SocketError::InvalidParameter));
        }
    }
}
