//! [`RateLimit`] and the token bucket that enforces it on a connection's
//! reads, without the OS: time comes in as an `Instant`.
//!
//! A peer over its rate is simply not read: its bytes wait in the kernel, its
//! TCP window closes and the sender slows down (backpressure); nothing is
//! dropped. Reading resumes at a deadline computed here.

use std::time::{Duration, Instant};

/// A read rate limit: at most `bytes_per_second` on average, with bursts of up
/// to `burst` bytes (a token bucket that starts full).
///
/// ```
/// use lunanet::{Config, RateLimit};
/// // 64 KiB/s sustained, 16 KiB at once.
/// let config = Config::default().read_rate_limit(Some(RateLimit {
///     bytes_per_second: 64 * 1024,
///     burst: 16 * 1024,
/// }));
/// assert_eq!(config.read_rate_limit.unwrap().burst, 16 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Sustained rate, bytes per second (must be > 0).
    pub bytes_per_second: u64,
    /// Most bytes read at once after a quiet period (must be > 0).
    pub burst: u64,
}

impl RateLimit {
    /// Whether both figures are positive.
    pub(crate) fn is_valid(&self) -> bool {
        self.bytes_per_second > 0 && self.burst > 0
    }
}

/// The token bucket of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    /// Bytes that may be read now (at most `burst`).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(limit: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            limit,
            tokens: limit.burst as f64,
            at: now,
        }
    }

    /// Bytes that may be read at `now`.
    pub(crate) fn allowance(&mut self, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.limit.bytes_per_second as f64)
            .min(self.limit.burst as f64);
        // Whole bytes only; usize is at least 32 bits and burst caps it.
        self.tokens.max(0.0).min(usize::MAX as f64) as usize
    }

    /// `n` bytes were read.
    pub(crate) fn spend(&mut self, n: usize) {
        self.tokens -= n as f64;
    }

    /// When reading is worth resuming: once a chunk of the bucket refilled
    /// (a fiftieth of a second's worth, at least one byte, at most `burst`),
    /// so a throttled peer costs at most ~50 wake-ups per second.
    pub(crate) fn refill_at(&self) -> Instant {
        let rate = self.limit.bytes_per_second as f64;
        let chunk = (rate / 50.0).max(1.0).min(self.limit.burst as f64);
        let missing = (chunk - self.tokens).max(0.0);
        self.at + Duration::from_secs_f64(missing / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        bytes_per_second: 1000,
        burst: 100,
    };

    #[test]
    fn starts_full_refills_at_the_rate_and_caps_at_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(LIMIT, t0);
        assert_eq!(b.allowance(t0), 100);
        b.spend(100);
        assert_eq!(b.allowance(t0), 0);
        // 1000 B/s: 50 bytes after 50 ms.
        assert_eq!(b.allowance(t0 + Duration::from_millis(50)), 50);
        assert_eq!(b.allowance(t0 + Duration::from_secs(10)), 100);
    }

    #[test]
    fn refill_deadline_is_one_chunk_away() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(LIMIT, t0);
        b.spend(100);
        // chunk = 1000 / 50 = 20 bytes -> 20 ms.
        let at = b.refill_at();
        let wait = at - t0;
        assert!(
            wait >= Duration::from_millis(19) && wait <= Duration::from_millis(21),
            "{wait:?}"
        );
        assert!(b.allowance(at) >= 19);
    }

    #[test]
    fn held_to_its_rate_over_time() {
        // A reader that takes everything allowed, checked at 1 ms steps, reads
        // burst + rate * t.
        let t0 = Instant::now();
        let mut b = TokenBucket::new(LIMIT, t0);
        let mut total = 0;
        for ms in 0..=5000 {
            let n = b.allowance(t0 + Duration::from_millis(ms));
            b.spend(n);
            total += n;
        }
        assert!((5050..=5110).contains(&total), "{total}");
    }
}
