//! Scheduling: what the reactor must come back to, and what the application
//! must hear about.
//!
//! - the **ready set**: entries that changed since the last
//!   [`Reactor::drain_ready`](crate::Reactor::drain_ready), each once, plus
//!   the entries drained last time that still have something to take (level
//!   triggering, see the **recheck list**);
//! - the **recheck list**: the entries handed out by the last drain, and
//!   peers a `PacketPeerStream` said hold complete packets; each is looked at
//!   once, at the next pass or drain, and goes back into the ready set only if
//!   it still has unread input. O(entries reported last time), never a scan;
//! - the **resume list**: work no readiness event will announce (a read
//!   stalled on a full buffer or a spent budget, coalesced output, a failed
//!   direct write, a server whose pending queue had filled), run next pass;
//! - the **timers**: deadlines (connect, linger, accept back-off) in a binary
//!   heap, O(log n) to arm, O(1) to peek. Timers are never cancelled: the
//!   state machine ignores one whose deadline moved on (it compares with its
//!   own deadline), so a deadline that changes often (an idle timeout pushed
//!   back by each receive) can be re-armed lazily when its old timer fires;
//! - the **idle sweep**: peers whose buffers emptied, released once they saw
//!   no I/O for a whole period; O(peers that emptied a buffer recently).
//!
//! Every list holds [`Key`]s, looked up with the generation check, so an
//! entry freed meanwhile is skipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::slots::{HandleId, Key};

/// How long an empty buffer must stay untouched before its memory is released.
pub(crate) const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// A peer's deadline (connect or linger): ask its state machine.
    Peer,
    /// Retry accepting after descriptor exhaustion.
    Accept,
}

/// Per-entry scheduling state, kept in the entry's slot so that membership
/// tests are O(1).
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// Last pass in which this entry was counted as changed.
    changed_pass: u64,
    /// Equal to `Sched::ready_epoch` while the entry is in the ready set.
    ready_epoch: u64,
    in_resume: bool,
    in_idle: bool,
    /// In `Sched::recheck`.
    in_recheck: bool,
    /// A `PacketPeerStream` over this peer holds a complete packet (see
    /// `StreamPeer::hold_input`): report the peer while it does.
    pub(crate) held: bool,
    /// May have input the application has not taken: set when the entry
    /// enters the ready set (or holds a packet), cleared when its input is
    /// consumed; counted in `Sched::unread`.
    unread: bool,
    /// Idle epoch of the last I/O (see `Sched::sweep`).
    touched: u32,
}

/// The reactor's lists and counters.
#[derive(Debug)]
pub(crate) struct Sched {
    /// Pass counter, to count each changed entry once per pass.
    pass: u64,
    changed: usize,
    resume: Vec<Key>,
    resume_spare: Vec<Key>,
    /// Held as the ids handed out, so that a drain into an empty vector
    /// is a swap.
    ready: Vec<HandleId>,
    /// Bumped by `drain_ready`; an entry whose `ready_epoch` equals it is
    /// already in `ready`.
    ready_epoch: u64,
    /// Entries to look at again (see the module docs); `recheck_spare` keeps
    /// the other buffer's storage so that a steady loop allocates nothing.
    recheck: Vec<HandleId>,
    recheck_spare: Vec<HandleId>,
    /// Entries whose `Marks::unread` is set. While it is 0 no entry can have
    /// leftover input, so the recheck list is dropped without a lookup.
    unread: usize,
    /// `recheck` holds an entry put there by `schedule_recheck` (its
    /// `in_recheck` mark must be cleared by a run of the list).
    hinted: bool,
    timers: BinaryHeap<Reverse<(Instant, Key, TimerKind)>>,
    idle: Vec<Key>,
    idle_epoch: u32,
    next_sweep: Option<Instant>,
}

impl Sched {
    pub(crate) fn new() -> Sched {
        Sched {
            pass: 0,
            changed: 0,
            resume: Vec::new(),
            resume_spare: Vec::new(),
            ready: Vec::new(),
            ready_epoch: 1,
            recheck: Vec::new(),
            recheck_spare: Vec::new(),
            unread: 0,
            hinted: false,
            timers: BinaryHeap::new(),
            idle: Vec::new(),
            idle_epoch: 0,
            next_sweep: None,
        }
    }

    /// Fresh marks for a new entry.
    pub(crate) fn new_marks(&self) -> Marks {
        Marks {
            touched: self.idle_epoch,
            ..Marks::default()
        }
    }

    /// Starts a pass.
    pub(crate) fn begin_pass(&mut self) {
        self.pass += 1;
        self.changed = 0;
    }

    /// The current pass number.
    #[inline]
    pub(crate) fn pass(&self) -> u64 {
        self.pass
    }

    /// Entries counted as changed in this pass.
    pub(crate) fn changed(&self) -> usize {
        self.changed
    }

    /// Records that an entry changed in this pass (counted once) and puts it
    /// in the ready set (once until drained).
    #[inline]
    pub(crate) fn mark(&mut self, marks: &mut Marks, key: Key) {
        if marks.changed_pass != self.pass {
            marks.changed_pass = self.pass;
            self.changed += 1;
        }
        if marks.ready_epoch != self.ready_epoch {
            marks.ready_epoch = self.ready_epoch;
            self.ready.push(HandleId(key));
        }
        self.set_unread(marks);
    }

    /// Notes that an entry may have input the application has not taken.
    #[inline]
    fn set_unread(&mut self, marks: &mut Marks) {
        if !marks.unread {
            marks.unread = true;
            self.unread += 1;
        }
    }

    /// The application took an entry's last buffered byte (or a recheck
    /// found nothing left): unless it holds a packet, it has no leftover.
    #[inline]
    pub(crate) fn consumed(&mut self, marks: &mut Marks) {
        if marks.unread && !marks.held {
            marks.unread = false;
            self.unread -= 1;
        }
    }

    /// An entry is being removed from the table.
    pub(crate) fn forget(&mut self, marks: &Marks) {
        if marks.unread {
            self.unread -= 1;
        }
    }

    /// Moves the ready set into `out` and forgets every membership at once
    /// (O(1), no slab walk). Every drained entry is put on the recheck list,
    /// so that it is reported again if the application leaves input unread.
    /// Run [`Sched::take_recheck`] first so that leftovers are included.
    /// Into an empty `out` (the usual loop drains its vector each tick) the
    /// set moves by swapping the vectors, so `out`'s storage is reused for
    /// the next ready set and nothing is copied or allocated.
    pub(crate) fn drain_ready(&mut self, out: &mut Vec<HandleId>) {
        // Marks are not reachable from here; a duplicate on the recheck
        // list is harmless (`ready_epoch` dedups the ready set) and rare
        // (only a hinted entry that was also drained).
        self.recheck.extend_from_slice(&self.ready);
        if out.is_empty() {
            std::mem::swap(out, &mut self.ready);
        } else {
            out.append(&mut self.ready);
        }
        self.ready_epoch += 1;
    }

    /// Puts `key` on the recheck list (once, however often asked).
    pub(crate) fn schedule_recheck(&mut self, marks: &mut Marks, key: Key) {
        self.set_unread(marks);
        if !marks.in_recheck {
            marks.in_recheck = true;
            self.hinted = true;
            self.recheck.push(HandleId(key));
        }
    }

    /// Whether the recheck list must be run. When no entry can have
    /// leftover input (every entry that entered the ready set had its input
    /// taken since, the common case) and no hint is pending, the list is
    /// dropped here at once: no lookup per entry.
    pub(crate) fn needs_recheck(&mut self) -> bool {
        if self.recheck.is_empty() {
            return false;
        }
        if self.unread == 0 && !self.hinted {
            self.recheck.clear();
            return false;
        }
        true
    }

    /// Takes the recheck list; run it (clearing each entry with
    /// [`Sched::rechecked`]) and give the storage back with
    /// [`Sched::give_back_recheck`].
    pub(crate) fn take_recheck(&mut self) -> Vec<HandleId> {
        let mut list = std::mem::take(&mut self.recheck_spare);
        std::mem::swap(&mut list, &mut self.recheck);
        self.hinted = false;
        list
    }

    /// Clears an entry's recheck membership as it is looked at.
    pub(crate) fn rechecked(marks: &mut Marks) {
        marks.in_recheck = false;
    }

    /// Returns the (drained) recheck list's storage for reuse.
    pub(crate) fn give_back_recheck(&mut self, mut list: Vec<HandleId>) {
        list.clear();
        self.recheck_spare = list;
    }

    /// Serves `key` again next pass (once, however often asked).
    #[inline]
    pub(crate) fn schedule_resume(&mut self, marks: &mut Marks, key: Key) {
        if !marks.in_resume {
            marks.in_resume = true;
            self.resume.push(key);
        }
    }

    pub(crate) fn has_resumes(&self) -> bool {
        !self.resume.is_empty()
    }

    /// Takes the resume list; entries scheduled while it is being run go into
    /// the next one (a budget-limited peer must not loop within a pass). Give
    /// the list back with [`Sched::give_back`].
    pub(crate) fn take_resumes(&mut self) -> Vec<Key> {
        let mut list = std::mem::take(&mut self.resume_spare);
        std::mem::swap(&mut list, &mut self.resume);
        list
    }

    /// Clears an entry's resume membership as it is run.
    pub(crate) fn resumed(marks: &mut Marks) {
        marks.in_resume = false;
    }

    /// Returns the (drained) list's storage for reuse.
    pub(crate) fn give_back(&mut self, mut list: Vec<Key>) {
        list.clear();
        self.resume_spare = list;
    }

    /// Notes I/O on a peer: not idle in this period.
    #[inline]
    pub(crate) fn touch(&mut self, marks: &mut Marks) {
        marks.touched = self.idle_epoch;
    }

    /// Notes I/O that emptied a buffer owning memory: listed for release if
    /// it stays idle for a whole period.
    #[inline]
    pub(crate) fn touch_emptied(&mut self, marks: &mut Marks, key: Key) {
        marks.touched = self.idle_epoch;
        if !marks.in_idle {
            self.list_idle(marks, key);
        }
    }

    #[inline(never)]
    fn list_idle(&mut self, marks: &mut Marks, key: Key) {
        marks.in_idle = true;
        self.idle.push(key);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(Instant::now() + IDLE_RELEASE);
        }
    }

    /// Arms a timer.
    pub(crate) fn arm(&mut self, at: Instant, key: Key, kind: TimerKind) {
        self.timers.push(Reverse((at, key, kind)));
    }

    /// Whether a timer or a sweep is pending (else no clock read is needed).
    pub(crate) fn has_timers(&self) -> bool {
        !self.timers.is_empty() || self.next_sweep.is_some()
    }

    /// The earliest timer or sweep.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
        match (timer, self.next_sweep) {
            (Some(t), Some(s)) => Some(t.min(s)),
            (t, s) => t.or(s),
        }
    }

    /// Pops one timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Key, TimerKind)> {
        match self.timers.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.timers.pop().map(|Reverse((_, key, kind))| (key, kind))
            }
            _ => None,
        }
    }

    /// Whether the idle sweep is due.
    pub(crate) fn sweep_due(&self, now: Instant) -> bool {
        self.next_sweep.is_some_and(|t| t <= now)
    }

    /// Starts the idle sweep: the listed entries and the current period.
    pub(crate) fn begin_sweep(&mut self) -> (Vec<Key>, u32) {
        (std::mem::take(&mut self.idle), self.idle_epoch)
    }

    /// For a listed entry during the sweep: whether it stays listed (it saw
    /// I/O in this period); otherwise it is unlisted and its buffers should be
    /// released.
    pub(crate) fn stays_listed(marks: &mut Marks, epoch: u32) -> bool {
        if marks.touched == epoch {
            return true;
        }
        marks.in_idle = false;
        false
    }

    /// Ends the sweep with the entries still listed.
    pub(crate) fn end_sweep(&mut self, list: Vec<Key>, now: Instant) {
        self.idle = list;
        self.idle_epoch = self.idle_epoch.wrapping_add(1);
        self.next_sweep = (!self.idle.is_empty()).then(|| now + IDLE_RELEASE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(ids: &[HandleId]) -> Vec<usize> {
        ids.iter().map(|id| id.index()).collect()
    }

    fn key(index: usize) -> Key {
        Key {
            index,
            generation: 1,
        }
    }

    #[test]
    fn an_entry_is_in_the_ready_set_once_until_drained_and_counted_once_per_pass() {
        let mut s = Sched::new();
        let mut a = s.new_marks();
        let mut b = s.new_marks();
        s.begin_pass();
        s.mark(&mut a, key(1));
        s.mark(&mut a, key(1));
        s.mark(&mut b, key(2));
        assert_eq!(s.changed(), 2);
        s.begin_pass();
        s.mark(&mut a, key(1)); // changed again, already in the ready set
        assert_eq!(s.changed(), 1);
        let mut out = Vec::new();
        s.drain_ready(&mut out);
        assert_eq!(indexes(&out), [1, 2]);
        s.drain_ready(&mut out);
        assert_eq!(indexes(&out), [1, 2], "drained: nothing new");
        s.mark(&mut a, key(1));
        s.drain_ready(&mut out);
        assert_eq!(indexes(&out), [1, 2, 1], "marked again after the drain");
    }

    #[test]
    fn the_recheck_list_is_dropped_without_lookups_once_all_input_was_taken() {
        let mut s = Sched::new();
        let mut a = s.new_marks();
        let mut b = s.new_marks();
        s.mark(&mut a, key(1));
        s.mark(&mut b, key(2));
        let mut out = Vec::new();
        s.drain_ready(&mut out);
        s.consumed(&mut a);
        assert!(s.needs_recheck(), "b may still have input");
        let list = s.take_recheck();
        assert_eq!(indexes(&list), [1, 2]);
        s.consumed(&mut b); // as the run of the list finds b empty
        s.give_back_recheck(list);

        s.mark(&mut a, key(1));
        s.drain_ready(&mut out);
        assert!(s.needs_recheck(), "a's input not taken yet");
        s.consumed(&mut a);
        assert!(!s.needs_recheck(), "every input taken: nothing to look up");
        assert!(!s.has_resumes() && s.recheck.is_empty(), "list dropped");

        // A held packet keeps its entry listed although its bytes were taken.
        a.held = true;
        s.schedule_recheck(&mut a, key(1));
        s.consumed(&mut a);
        assert!(s.needs_recheck());
        let list = s.take_recheck();
        Sched::rechecked(&mut a);
        s.give_back_recheck(list);
        // A hint is run once even when nothing is counted as unread.
        a.held = false;
        s.consumed(&mut a);
        s.schedule_recheck(&mut a, key(1));
        s.consumed(&mut a);
        assert!(
            s.needs_recheck(),
            "hinted: in_recheck must be cleared by a run"
        );

        // A removed entry no longer counts.
        let mut c = s.new_marks();
        s.mark(&mut c, key(3));
        s.forget(&c);
        assert_eq!(s.unread, 0);
    }

    #[test]
    fn a_resume_is_scheduled_once_and_resumes_scheduled_while_running_wait() {
        let mut s = Sched::new();
        let mut a = s.new_marks();
        s.schedule_resume(&mut a, key(1));
        s.schedule_resume(&mut a, key(1));
        let list = s.take_resumes();
        assert_eq!(list, [key(1)]);
        assert!(!s.has_resumes());
        Sched::resumed(&mut a);
        // Scheduled while the list runs: next pass.
        s.schedule_resume(&mut a, key(1));
        s.give_back(list);
        assert!(s.has_resumes());
        assert_eq!(s.take_resumes(), [key(1)]);
    }

    #[test]
    fn timers_fire_in_order_when_due() {
        let mut s = Sched::new();
        let t = Instant::now();
        assert!(!s.has_timers());
        s.arm(t + Duration::from_secs(2), key(2), TimerKind::Peer);
        s.arm(t + Duration::from_secs(1), key(1), TimerKind::Accept);
        assert_eq!(s.next_wakeup(), Some(t + Duration::from_secs(1)));
        assert_eq!(s.pop_due(t), None);
        let later = t + Duration::from_secs(3);
        assert_eq!(s.pop_due(later), Some((key(1), TimerKind::Accept)));
        assert_eq!(s.pop_due(later), Some((key(2), TimerKind::Peer)));
        assert_eq!(s.pop_due(later), None);
    }

    #[test]
    fn the_sweep_releases_only_entries_idle_for_a_whole_period() {
        let mut s = Sched::new();
        let mut busy = s.new_marks();
        let mut idle = s.new_marks();
        s.touch_emptied(&mut busy, key(1));
        s.touch_emptied(&mut idle, key(2));
        assert!(s.has_timers(), "a sweep is scheduled");
        // First sweep: both were touched in this period: kept.
        let now = Instant::now() + IDLE_RELEASE;
        let (list, epoch) = s.begin_sweep();
        assert!(Sched::stays_listed(&mut busy, epoch));
        assert!(Sched::stays_listed(&mut idle, epoch));
        s.end_sweep(list, now);
        // Only `busy` sees I/O in the next period.
        s.touch(&mut busy);
        let (list, epoch) = s.begin_sweep();
        assert!(Sched::stays_listed(&mut busy, epoch));
        assert!(!Sched::stays_listed(&mut idle, epoch), "released");
        s.end_sweep(vec![key(1)], now + IDLE_RELEASE);
        drop(list);
        // Listed again when a buffer empties again.
        s.touch_emptied(&mut idle, key(2));
        let (list, _) = s.begin_sweep();
        assert_eq!(list, [key(1), key(2)]);
    }
}
