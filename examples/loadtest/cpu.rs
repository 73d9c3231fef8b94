//! CPU time of one thread or of the whole process, read from `/proc` (Linux),
//! so the example needs no `unsafe`. Elsewhere every figure is `None` and the
//! report says "n/a".
//!
//! A thread's time comes from `/proc/self/task/TID/schedstat` (nanoseconds on
//! the CPU, user + system), falling back to `utime + stime` of
//! `/proc/self/task/TID/stat` (clock ticks of 10 ms). The process's time is
//! `utime + stime` of `/proc/self/stat` (every thread, living or exited).

use std::time::Duration;

/// Linux's `USER_HZ`: the unit of the tick counts in `/proc/*/stat` (100 on
/// every mainstream architecture; `getconf CLK_TCK` prints it).
const TICKS_PER_SECOND: u64 = 100;

/// The kernel's id of the calling thread (`/proc/thread-self` is a link to
/// `PID/task/TID`).
pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time used so far by thread `tid` of this process.
pub fn thread_cpu(tid: u32) -> Option<Duration> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        && let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok())
    {
        return Some(Duration::from_nanos(ns));
    }
    stat_ticks(&format!("/proc/self/task/{tid}/stat"))
}

/// CPU time used so far by the whole process (all threads).
pub fn process_cpu() -> Option<Duration> {
    stat_ticks("/proc/self/stat")
}

/// `utime + stime` of a `stat` file.
fn stat_ticks(path: &str) -> Option<Duration> {
    let s = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': field 3 is the state, so utime (field 14) is the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// CPU time between two readings, when both exist.
pub fn delta(start: Option<Duration>, end: Option<Duration>) -> Option<Duration> {
    Some(end?.saturating_sub(start?))
}

/// CPU time used so far by all the threads `tids` (None if any is unknown).
pub fn threads_cpu(tids: &[u32]) -> Option<Duration> {
    if tids.is_empty() {
        return None;
    }
    tids.iter().map(|&t| thread_cpu(t)).sum()
}
