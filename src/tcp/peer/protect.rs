//! `StreamPeerTcp`'s protections and counters: idle timeout, read rate
//! limit, statistics (see `Config::idle_timeout`, `Config::read_rate_limit`).

use std::time::Duration;

use super::StreamPeerTcp;
use crate::{PeerStats, RateLimit, SocketError};

impl StreamPeerTcp {
    /// Sets this peer's idle timeout (replacing
    /// [`Config::idle_timeout`](crate::Config::idle_timeout) for it): once
    /// connected, no byte received for `timeout` moves it to `Status::Error`
    /// (`error_kind()` `TimedOut`). `None` disables it. Counted from the last
    /// receive (or the connection's start), so a shorter value can fire at
    /// the next pass.
    ///
    /// # Errors
    /// `SocketInvalid` when the peer has no connection (set it after
    /// `connect_to_host` or on an accepted peer).
    ///
    /// ```
    /// use std::time::Duration;
    /// use lunanet::{Reactor, SocketError, StreamPeerTcp};
    /// let reactor = Reactor::new()?;
    /// let mut peer = StreamPeerTcp::new(&reactor);
    /// assert_eq!(
    ///     peer.set_idle_timeout(Some(Duration::from_secs(10))),
    ///     Err(SocketError::SocketInvalid)
    /// );
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SocketError> {
        let key = self.key.opt().ok_or(SocketError::SocketInvalid)?;
        self.reactor
            .inner
            .borrow_mut()
            .set_idle_timeout(key, timeout)
    }

    /// The idle timeout in force for this peer (`None` without a connection).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.with(|p| p.conn.idle_timeout()).flatten()
    }

    /// Sets this peer's read rate limit (replacing
    /// [`Config::read_rate_limit`](crate::Config::read_rate_limit) for it),
    /// with a full bucket; `None` removes it. Over its rate the peer is not
    /// read (TCP backpressure), nothing is dropped.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero rate or burst; `SocketInvalid` when the
    /// peer has no connection.
    pub fn set_read_rate_limit(&mut self, limit: Option<RateLimit>) -> Result<(), SocketError> {
        let key = self.key.opt().ok_or(SocketError::SocketInvalid)?;
        self.reactor
            .inner
            .borrow_mut()
            .set_read_rate_limit(key, limit)
    }

    /// The read rate limit in force for this peer.
    pub fn read_rate_limit(&self) -> Option<RateLimit> {
        self.with(|p| p.conn.read_rate_limit()).flatten()
    }

    /// This connection's counters (zero without a connection). A new
    /// connection (`connect_to_host` again) starts from zero.
    pub fn stats(&self) -> PeerStats {
        self.with(|p| p.conn.stats()).unwrap_or_default()
    }
}
