//! Log lines from lunanet's always-on counters, shared by the examples
//! (included with `#[path]`: a directory without `main.rs` is not an example
//! of its own).
//!
//! - [`StatsLog::maybe_log`]: once per interval, `Reactor::stats()` as one
//!   line, with the passes per second since the previous line.
//! - [`peer_left`]: a leaving peer's `stats()`: bytes in/out and how long it
//!   was connected (its address stays readable after it closed).

use std::time::{Duration, Instant};

use lunanet::{Reactor, ReactorStats, StreamPeerTcp};

/// Logs `Reactor::stats()` at most once per `every`.
pub struct StatsLog {
    every: Duration,
    last_at: Instant,
    last_passes: u64,
}

impl StatsLog {
    pub fn new(every: Duration) -> StatsLog {
        StatsLog {
            every,
            last_at: Instant::now(),
            last_passes: 0,
        }
    }

    /// Logs one line if `every` has passed since the last one. `stats()`
    /// walks the reactor's live entries, hence once per interval, not per
    /// pass.
    pub fn maybe_log(&mut self, reactor: &Reactor) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_at);
        if elapsed < self.every {
            return;
        }
        let s: ReactorStats = reactor.stats();
        let passes_per_s = s.passes.saturating_sub(self.last_passes) as f64 / elapsed.as_secs_f64();
        log::info!(
            "peers={} in={}B out={}B accepted={} refused={} timed_out={} passes/s={:.0}",
            s.peers,
            s.bytes_in,
            s.bytes_out,
            s.accepted,
            s.refused,
            s.timed_out,
            passes_per_s
        );
        self.last_at = now;
        self.last_passes = s.passes;
    }
}

/// Logs a leaving peer: address, bytes each way, time connected, and why.
pub fn peer_left(peer: &StreamPeerTcp, why: &str) {
    let s = peer.stats();
    let from = peer.remote_addr().map_or("?".into(), |a| a.to_string());
    let connected = s.connected_since.map_or("?".into(), |t| {
        format!("{:.1} s", t.elapsed().as_secs_f64())
    });
    log::info!(
        "{from} left ({why}) after {connected}: in={}B out={}B reads={} writes={}",
        s.bytes_in,
        s.bytes_out,
        s.reads,
        s.writes
    );
}
