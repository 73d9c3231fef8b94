//! A timestamp scale shared by the server and the load generator.
//!
//! Broadcast records carry the time their tick was scheduled for, and the load
//! generator compares it with the time the record arrived. Inside one process
//! both sides use the same [`Clock`] (one `Instant` anchor), so timestamps are
//! monotonic and exact. Between two processes (`--serve` + `--addr`) each side
//! anchors its own `Instant` to the wall clock once at start, so the scales
//! agree to within the anchoring error (microseconds) plus any wall-clock
//! adjustment made between the two starts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, advanced by a monotonic `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_ns: u64,
}

impl Clock {
    /// Anchors the monotonic clock to the wall clock now.
    pub fn new() -> Clock {
        let anchor = Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            anchor,
            anchor_unix_ns: unix.as_nanos() as u64,
        }
    }

    /// The timestamp of `t` on this scale.
    pub fn ns(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.anchor) {
            Some(d) => self.anchor_unix_ns + d.as_nanos() as u64,
            None => self
                .anchor_unix_ns
                .saturating_sub((self.anchor - t).as_nanos() as u64),
        }
    }

    /// The instant of timestamp `ns` (the inverse of [`Clock::ns`]).
    pub fn instant(&self, ns: u64) -> Instant {
        if ns >= self.anchor_unix_ns {
            self.anchor + Duration::from_nanos(ns - self.anchor_unix_ns)
        } else {
            let back = Duration::from_nanos(self.anchor_unix_ns - ns);
            self.anchor.checked_sub(back).unwrap_or(self.anchor)
        }
    }

    /// The timestamp of now.
    pub fn now_ns(&self) -> u64 {
        self.ns(Instant::now())
    }
}
