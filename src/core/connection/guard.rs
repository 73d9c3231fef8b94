//! Protections of an open connection, as deadlines of the state machine (no
//! scan of peers anywhere): the idle timeout (no byte received for too
//! long: `Error`, `TimedOut`) and the read rate limit (over its rate the peer
//! is not read; reading resumes at the bucket's refill deadline).
//!
//! An open connection's `deadline` is the earliest of the two. Timers are
//! never cancelled: `armed` remembers the earliest timer known to be pending
//! in the reactor, so a deadline that moves later (each receive pushes the
//! idle deadline back) costs nothing until that timer fires, and a deadline
//! that moves earlier arms one new timer.

use std::time::{Duration, Instant};

use super::{Connection, Link};
use crate::SocketError;
use crate::core::drive::{Actions, Clock, Transport};
use crate::core::io::{Io, ReadEnd, Stall};
use crate::core::rate::{RateLimit, TokenBucket};
use crate::core::stats::PeerStats;
use crate::core::status::Status;

impl<S: Transport> Connection<S> {
    /// Answers `ARM` when the current deadline is earlier than every timer
    /// known to be pending (and records it as pending).
    pub(super) fn rearm(&mut self) -> Actions {
        match self.deadline {
            Some(d) if self.armed.is_none_or(|a| d < a) => {
                self.armed = Some(d);
                Actions::ARM
            }
            _ => Actions::NONE,
        }
    }

    /// The connection just opened (connected, or accepted) at `now`: start
    /// the counters' clock, the rate bucket and the idle deadline.
    pub(super) fn became_open(&mut self, now: Instant) -> Actions {
        self.io.stats.connected_since = Some(now);
        self.io.rate = self
            .read_rate
            .as_deref()
            .map(|&l| Box::new(TokenBucket::new(l, now)));
        self.deadline = self.open_deadline(true);
        self.rearm()
    }

    /// The earliest of the idle deadline and (with `rate`, when reading is
    /// held back by the rate limit) the bucket's refill deadline.
    fn open_deadline(&self, rate: bool) -> Option<Instant> {
        let idle = self.idle_timeout.and_then(|t| {
            let since = self
                .io
                .stats
                .last_receive
                .or(self.io.stats.connected_since)?;
            Some(since + t)
        });
        let refill = match (&self.io.rate, self.io.stall) {
            (Some(bucket), Stall::Rate) if rate => Some(bucket.refill_at()),
            _ => None,
        };
        match (idle, refill) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An open connection's deadline fell due at `now`.
    pub(super) fn on_open_deadline(&mut self, now: Instant) -> Actions {
        if let Some(t) = self.idle_timeout {
            let since = self.io.stats.last_receive.or(self.io.stats.connected_since);
            if since.is_some_and(|s| s + t <= now) && self.status == Status::Connected {
                log::debug!("{:?}: nothing received for {t:?}: timed out", self.remote);
                self.fail(
                    SocketError::ConnectionClosed,
                    Some(std::io::ErrorKind::TimedOut),
                );
                return self.close() | self.summary_tail();
            }
        }
        let mut acts = Actions::NONE;
        let mut rate = true;
        if self.io.stall == Stall::Rate
            && self.io.rate.as_ref().is_none_or(|b| b.refill_at() <= now)
        {
            // Read again next pass (the resume clears the stall, which
            // re-arms the refill deadline if the peer is still over).
            acts |= Actions::RESUME;
            rate = false;
        }
        self.deadline = self.open_deadline(rate);
        acts | self.rearm()
    }

    /// After a read on an open connection: if the rate limit held it back,
    /// arm the refill deadline.
    pub(super) fn after_limited_read(&mut self) -> Actions {
        if self.io.stall != Stall::Rate || !matches!(self.link, Link::Open { .. }) {
            return Actions::NONE;
        }
        self.deadline = self.open_deadline(true);
        self.rearm()
    }

    /// `StreamPeerTcp::set_idle_timeout`.
    pub(crate) fn set_idle_timeout(&mut self, timeout: Option<Duration>) -> Actions {
        self.idle_timeout = timeout;
        if !matches!(self.link, Link::Open { .. }) {
            return Actions::NONE;
        }
        self.deadline = self.open_deadline(true);
        self.rearm()
    }

    /// `StreamPeerTcp::set_read_rate_limit`: a new bucket, full.
    pub(crate) fn set_read_rate_limit(
        &mut self,
        limit: Option<RateLimit>,
        clock: &mut Clock,
    ) -> Actions {
        self.read_rate = limit.map(Box::new);
        if !matches!(self.link, Link::Open { .. }) {
            return Actions::NONE;
        }
        self.io.rate = limit.map(|l| Box::new(TokenBucket::new(l, clock.now())));
        let mut acts = Actions::NONE;
        if self.io.stall == Stall::Rate {
            acts |= Actions::RESUME; // read again with the new limit
        }
        self.deadline = self.open_deadline(false);
        acts | self.rearm()
    }

    /// The idle timeout in force.
    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The read rate limit in force.
    pub(crate) fn read_rate_limit(&self) -> Option<RateLimit> {
        self.read_rate.as_deref().copied()
    }

    /// The counters.
    pub(crate) fn stats(&self) -> PeerStats {
        self.io.stats
    }
}

/// Reads into `io.rx` like [`Io::fill_from`], within the rate limit when
/// `limited` (open connections; a closing one reads only to find the FIN),
/// and notes the time of the receive.
pub(super) fn read_into<R: Transport>(
    io: &mut Io,
    sock: &mut R,
    budget: &mut usize,
    until_block: bool,
    limited: bool,
    clock: &mut Clock,
) -> (usize, ReadEnd) {
    let allowed = match io.rate.as_mut() {
        Some(bucket) if limited => Some(bucket.allowance(clock.now())),
        _ => None,
    };
    let (n, end) = match allowed {
        None => io.fill_from(sock, budget, until_block),
        Some(allowed) => {
            let cap = allowed.min(*budget);
            let mut left = cap;
            let (n, end) = io.fill_from(sock, &mut left, until_block);
            *budget -= n;
            if let Some(bucket) = io.rate.as_mut() {
                bucket.spend(n);
            }
            if io.stall == Stall::Budget && allowed < *budget + n {
                // The bucket, not the pass budget, stopped the read.
                io.stall = Stall::Rate;
            }
            (n, end)
        }
    };
    if n > 0 {
        io.stats.last_receive = Some(clock.now());
    }
    (n, end)
}
