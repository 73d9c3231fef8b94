//! A fixed-rate tick clock for game-server loops.
//!
//! A tick loop sleeps in [`Reactor::poll`](crate::Reactor::poll) until the next
//! tick *or* the next packet, whichever comes first, and runs the tick when it
//! is due. [`TickClock`] keeps the schedule: tick `n` is due at
//! `start + n * period` (so the rate never drifts, however long each tick
//! takes), it counts ticks that ran late, and it applies a documented
//! [`CatchUp`] policy when the loop fell behind.
//!
//! The clock is pure: every method takes the current time as an [`Instant`]
//! and nothing reads the system clock, so a schedule can be tested by feeding
//! it instants, without sleeping.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use lunanet::{Reactor, TickClock};
//!
//! let reactor = Reactor::new()?;
//! let start = Instant::now();
//! let mut clock = TickClock::new(Duration::from_millis(10), start); // 100 Hz
//! let stop_at = start + Duration::from_millis(50);
//! while Instant::now() < stop_at {
//!     // Sleep until the next tick or the next network event.
//!     reactor.poll(Some(clock.until_next(Instant::now())))?;
//!     // ... read the peers of `reactor.drain_ready` here ...
//!     while let Some(tick) = clock.due(Instant::now()) {
//!         // ... simulate tick.number and send the state ...
//!         let _ = tick;
//!     }
//! }
//! assert!(clock.ticks() >= 1);
//! # Ok::<(), lunanet::SocketError>(())
//! ```

use std::time::{Duration, Instant};

/// What a [`TickClock`] does when the loop fell behind by more than one
/// period (a long tick, a stalled machine, a debugger pause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Run every missed tick, back to back, each with its own scheduled time
    /// and number. No tick is lost, so a simulation stays deterministic and a
    /// record stamped with its tick's schedule says when it was due; the cost
    /// is a burst of work (and of traffic) after a stall. This is what
    /// `tokio::time::MissedTickBehavior::Burst` does.
    #[default]
    Burst,
    /// Drop the missed ticks and run only the newest one that is due: the
    /// loop is back on schedule at once, tick numbers stay on the grid (so
    /// they jump), and [`TickClock::skipped_ticks`] counts what was dropped.
    /// For state broadcasts, where only the newest state matters.
    Skip,
}

/// One tick that is due, as returned by [`TickClock::due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The tick's number on the grid: tick `n` is due at `start + n * period`
    /// (the first tick is number 0, due at `start`).
    pub number: u64,
    /// When the tick was scheduled (not when it runs).
    pub scheduled: Instant,
    /// The tick runs more than one period after its schedule.
    pub late: bool,
}

/// A fixed-rate tick schedule: due ticks, late-tick count, catch-up policy
/// and the time to the next tick for [`Reactor::poll`](crate::Reactor::poll).
///
/// Pure: it never reads the clock itself; pass `Instant::now()` (or any
/// instant, in a test).
///
/// ```
/// use std::time::{Duration, Instant};
/// use lunanet::{CatchUp, TickClock};
///
/// let t0 = Instant::now();
/// let ms = Duration::from_millis;
/// let mut clock = TickClock::new(ms(50), t0).catch_up(CatchUp::Skip);
/// assert_eq!(clock.due(t0).map(|t| t.number), Some(0));
/// assert_eq!(clock.due(t0 + ms(10)), None); // tick 1 is due at 50 ms
/// assert_eq!(clock.until_next(t0 + ms(10)), ms(40));
///
/// // The loop stalls for 230 ms: Skip runs only tick 4 (due at 200 ms).
/// let tick = clock.due(t0 + ms(240)).expect("a tick is due");
/// assert_eq!((tick.number, tick.late), (4, true));
/// assert_eq!(clock.skipped_ticks(), 3); // ticks 1, 2 and 3
/// assert_eq!(clock.due(t0 + ms(240)), None);
/// ```
#[derive(Debug, Clone)]
pub struct TickClock {
    start: Instant,
    period: Duration,
    policy: CatchUp,
    /// Number of the next tick to run; it is due at `start + next * period`.
    next: u64,
    /// `start + next * period`, kept to avoid a multiplication per call.
    next_at: Instant,
    ran: u64,
    late: u64,
    skipped: u64,
}

impl TickClock {
    /// A clock whose tick 0 is due at `start`, then one every `period`,
    /// catching up with [`CatchUp::Burst`]. To run the first tick one period
    /// from now, pass `Instant::now() + period`.
    ///
    /// # Panics
    ///
    /// When `period` is zero (a programming error: no rate has a zero period).
    pub fn new(period: Duration, start: Instant) -> TickClock {
        assert!(
            !period.is_zero(),
            "TickClock::new: the period must not be zero"
        );
        TickClock {
            start,
            period,
            policy: CatchUp::Burst,
            next: 0,
            next_at: start,
            ran: 0,
            late: 0,
            skipped: 0,
        }
    }

    /// A clock at `hz` ticks per second (see [`TickClock::new`]).
    ///
    /// # Panics
    ///
    /// When `hz` is zero.
    pub fn from_hz(hz: u32, start: Instant) -> TickClock {
        assert!(hz > 0, "TickClock::from_hz: the rate must not be zero");
        TickClock::new(Duration::from_secs(1) / hz, start)
    }

    /// Sets the catch-up policy (builder style).
    pub fn catch_up(mut self, policy: CatchUp) -> TickClock {
        self.policy = policy;
        self
    }

    /// The next tick due at `now`, if any, and marks it run. Call it in a
    /// loop (`while let Some(tick) = clock.due(now)`) so that, with
    /// [`CatchUp::Burst`], every missed tick runs.
    pub fn due(&mut self, now: Instant) -> Option<Tick> {
        if now < self.next_at {
            return None;
        }
        let mut jumped = false;
        if self.policy == CatchUp::Skip {
            // The newest tick whose schedule is not after `now`.
            let behind = now.duration_since(self.next_at).as_nanos() / self.period.as_nanos();
            let behind = u64::try_from(behind).unwrap_or(u64::MAX);
            if behind > 0 {
                jumped = true;
                self.skipped = self.skipped.saturating_add(behind);
                self.next = self.next.saturating_add(behind);
                self.next_at = self.at(self.next);
            }
        }
        // After a Skip jump the tick itself is less than a period old, but
        // the loop was late, and that is what the late count is for.
        let tick = Tick {
            number: self.next,
            scheduled: self.next_at,
            late: jumped || now.duration_since(self.next_at) > self.period,
        };
        self.late += u64::from(tick.late);
        self.ran += 1;
        self.next = self.next.saturating_add(1);
        self.next_at = self.at(self.next);
        Some(tick)
    }

    /// How long a loop may sleep before the next tick is due (zero when one
    /// is due now): the timeout for [`Reactor::poll`](crate::Reactor::poll).
    pub fn until_next(&self, now: Instant) -> Duration {
        self.next_at.saturating_duration_since(now)
    }

    /// When the next tick is due.
    pub fn next_deadline(&self) -> Instant {
        self.next_at
    }

    /// The number the next tick will have (with [`CatchUp::Skip`], a later
    /// one may run instead).
    pub fn next_number(&self) -> u64 {
        self.next
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ran
    }

    /// Ticks that ran more than one period after their schedule (with
    /// [`CatchUp::Skip`]: ticks run after missed ones were skipped).
    pub fn late_ticks(&self) -> u64 {
        self.late
    }

    /// Ticks dropped by [`CatchUp::Skip`] (always 0 with `Burst`).
    pub fn skipped_ticks(&self) -> u64 {
        self.skipped
    }

    /// The period between two ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The catch-up policy.
    pub fn policy(&self) -> CatchUp {
        self.policy
    }

    /// `start + n * period`, saturating at the largest representable
    /// distance (about 584 years of nanoseconds) instead of overflowing.
    fn at(&self, n: u64) -> Instant {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(n));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.start
            .checked_add(Duration::from_nanos(nanos))
            .unwrap_or(self.next_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Numbers of every tick due at `now`.
    fn run_due(clock: &mut TickClock, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| clock.due(now))
            .map(|t| t.number)
            .collect()
    }

    #[test]
    fn first_tick_is_due_at_start_then_one_per_period() {
        let t0 = Instant::now();
        let mut c = TickClock::new(ms(10), t0);
        assert_eq!(c.until_next(t0), Duration::ZERO);
        assert_eq!(run_due(&mut c, t0), [0]);
        assert_eq!(c.until_next(t0 + ms(3)), ms(7));
        assert_eq!(c.next_deadline(), t0 + ms(10));
        assert_eq!(run_due(&mut c, t0 + ms(9)), [] as [u64; 0]);
        assert_eq!(run_due(&mut c, t0 + ms(10)), [1]);
        assert_eq!((c.ticks(), c.late_ticks(), c.skipped_ticks()), (2, 0, 0));
    }

    #[test]
    fn the_schedule_does_not_drift_with_slow_ticks() {
        // Each tick is handled 6 ms after it was due: the next one is still
        // due on the grid, not 10 ms after the previous ran.
        let t0 = Instant::now();
        let mut c = TickClock::new(ms(10), t0);
        for n in 0..100u64 {
            let due_at = t0 + ms(10 * n);
            let tick = c.due(due_at + ms(6)).expect("due");
            assert_eq!((tick.number, tick.scheduled, tick.late), (n, due_at, false));
            assert_eq!(c.until_next(due_at + ms(6)), ms(4));
        }
        assert_eq!(c.late_ticks(), 0);
    }

    #[test]
    fn burst_runs_every_missed_tick_with_its_own_schedule() {
        let t0 = Instant::now();
        let mut c = TickClock::new(ms(10), t0);
        assert_eq!(run_due(&mut c, t0), [0]);
        // Stalled until 45 ms: ticks 1..=4 run now.
        let now = t0 + ms(45);
        let ticks: Vec<Tick> = std::iter::from_fn(|| c.due(now)).collect();
        let numbers: Vec<u64> = ticks.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert_eq!(ticks[0].scheduled, t0 + ms(10));
        // Late: more than one period (10 ms) behind: ticks 1 (35 ms),
        // 2 (25 ms) and 3 (15 ms); tick 4 is only 5 ms behind.
        let late: Vec<bool> = ticks.iter().map(|t| t.late).collect();
        assert_eq!(late, [true, true, true, false]);
        assert_eq!((c.ticks(), c.late_ticks(), c.skipped_ticks()), (5, 3, 0));
        assert_eq!(c.until_next(now), ms(5));
    }

    #[test]
    fn skip_drops_missed_ticks_and_stays_on_the_grid() {
        let t0 = Instant::now();
        let mut c = TickClock::new(ms(10), t0).catch_up(CatchUp::Skip);
        assert_eq!(c.policy(), CatchUp::Skip);
        assert_eq!(run_due(&mut c, t0), [0]);
        let tick = c.due(t0 + ms(45)).expect("due");
        assert_eq!(
            (tick.number, tick.scheduled, tick.late),
            (4, t0 + ms(40), true)
        );
        assert_eq!(c.due(t0 + ms(45)), None);
        assert_eq!((c.ticks(), c.late_ticks(), c.skipped_ticks()), (2, 1, 3));
        assert_eq!(c.until_next(t0 + ms(45)), ms(5));
        // Exactly one period behind is not a skip: tick 5 runs at 55 ms.
        let tick = c.due(t0 + ms(55)).expect("due");
        assert_eq!((tick.number, tick.late), (5, false));
        assert_eq!(c.skipped_ticks(), 3);
    }

    #[test]
    fn from_hz_and_period() {
        let t0 = Instant::now();
        let c = TickClock::from_hz(30, t0);
        assert_eq!(c.period(), Duration::from_secs(1) / 30);
        assert_eq!(c.next_number(), 0);
        assert_eq!(c.policy(), CatchUp::Burst);
    }

    #[test]
    #[should_panic(expected = "period must not be zero")]
    fn a_zero_period_is_refused() {
        let _ = TickClock::new(Duration::ZERO, Instant::now());
    }

    #[test]
    fn far_future_does_not_overflow() {
        let t0 = Instant::now();
        let mut c = TickClock::new(Duration::from_secs(1), t0).catch_up(CatchUp::Skip);
        // Ten years of missed one-second ticks in one call.
        let now = t0 + Duration::from_secs(10 * 365 * 86_400);
        let tick = c.due(now).expect("due");
        assert_eq!(tick.number, 10 * 365 * 86_400);
        assert_eq!(c.skipped_ticks(), 10 * 365 * 86_400);
    }
}
