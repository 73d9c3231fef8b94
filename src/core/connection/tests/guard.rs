//! The idle timeout and the read rate limit as deadlines, with explicit
//! timestamps and a scripted transport.

use super::*;
use crate::core::rate::RateLimit;

fn at(t0: Instant, ms: u64) -> Clock {
    Clock::at(t0 + Duration::from_millis(ms))
}

#[test]
fn silence_for_the_idle_timeout_fails_with_timed_out_and_receives_push_it_back() {
    let t0 = Instant::now();
    let fake = Fake::default();
    let limits = Limits {
        idle_timeout: Some(Duration::from_secs(10)),
        ..LIMITS
    };
    let (mut c, acts) = Connection::accepted(fake.clone(), addr(9), limits, &mut Clock::at(t0));
    assert!(acts.has(Actions::ARM));
    assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(10)));

    fake.read(b"hi");
    let _ = ready(&mut c, READ, t0 + Duration::from_secs(4));
    assert_eq!(c.stats().last_receive, Some(t0 + Duration::from_secs(4)));
    assert_eq!(c.stats().bytes_in, 2);

    // The old timer fires: not idle long enough; re-armed for last receive + 10 s.
    let acts = c.on_deadline(&mut at(t0, 10_000));
    assert_eq!(c.status(), Status::Connected);
    assert!(acts.has(Actions::ARM), "{acts:?}");
    assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(14)));

    // Early timer (a stale one): nothing happens, nothing re-armed twice.
    let acts = c.on_deadline(&mut at(t0, 12_000));
    assert!(!acts.has(Actions::ARM) && c.status() == Status::Connected);

    let acts = c.on_deadline(&mut at(t0, 14_000));
    assert_eq!(c.status(), Status::Error);
    assert_eq!(c.error(), Some(SocketError::ConnectionClosed));
    assert_eq!(c.error_kind(), Some(io::ErrorKind::TimedOut));
    assert!(acts.has(Actions::CLOSED) && acts.has(Actions::NOTIFY));
    assert!(c.is_closed());
}

#[test]
fn idle_timeout_set_per_peer_takes_effect_and_can_be_removed() {
    let t0 = Instant::now();
    let (mut c, _acts) = Connection::accepted(Fake::default(), addr(9), LIMITS, &mut Clock::at(t0));
    assert_eq!(c.deadline(), None);
    let acts = c.set_idle_timeout(Some(Duration::from_secs(1)));
    assert!(acts.has(Actions::ARM));
    let _ = c.set_idle_timeout(None);
    let acts = c.on_deadline(&mut at(t0, 5_000));
    assert_eq!(c.status(), Status::Connected);
    assert!(!acts.has(Actions::ARM));
}

#[test]
fn over_its_rate_a_peer_is_not_read_until_the_refill_deadline() {
    let t0 = Instant::now();
    let fake = Fake::default();
    let limits = Limits {
        read_buffer: 4096,
        read_rate: Some(RateLimit {
            bytes_per_second: 1000,
            burst: 100,
        }),
        ..LIMITS
    };
    let (mut c, _) = Connection::accepted(fake.clone(), addr(9), limits, &mut Clock::at(t0));
    fake.read(&[7u8; 1000]);
    let acts = ready(&mut c, READ, t0);
    assert_eq!(c.available(), 100, "the burst only");
    assert!(acts.has(Actions::ARM), "{acts:?}");
    assert!(
        !acts.has(Actions::RESUME),
        "no spinning while over the rate"
    );
    let due = c.deadline().unwrap();
    assert!(
        due > t0 && due <= t0 + Duration::from_millis(21),
        "{:?}",
        due - t0
    );

    // A readable event meanwhile reads only what refilled (1 ms: 1 byte),
    // and the refill deadline moves with it.
    let _ = ready(&mut c, READ, t0 + Duration::from_millis(1));
    assert!(c.available() <= 101);
    let due = c.deadline().unwrap();
    assert!(c.on_deadline(&mut Clock::at(due - Duration::from_millis(2))) == Actions::NONE);

    let acts = c.on_deadline(&mut Clock::at(due));
    assert!(acts.has(Actions::RESUME), "{acts:?}");
    let _ = ready(&mut c, RESUME, due);
    let got = c.available();
    assert!((119..=122).contains(&got), "{got}");
    assert_eq!(c.stats().bytes_in as usize, got);

    // Removing the limit resumes at full speed.
    let acts = c.set_read_rate_limit(None, &mut Clock::at(due));
    assert!(acts.has(Actions::RESUME));
    let _ = ready(&mut c, RESUME, due);
    assert_eq!(c.available(), 1000);
}
