//! The one counting global allocator of the tests, benches and examples that
//! measure memory (`benches/alloc.rs`, `tests/ws_memory.rs`,
//! `tests/variant_hostile.rs`, `tests/fuzz_replay.rs`,
//! `examples/tls_heap.rs`). Each includes this file with `#[path]` and
//! installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;
//! ```
//!
//! It keeps process-wide totals ([`Totals`]) and, for threads that opt in,
//! their own figures: [`counted`] (calls and largest single request while a
//! closure runs), [`live_after`] (bytes a closure left allocated on its
//! thread) and [`track_this_thread`] / [`tracked_live`] (bytes live
//! from a thread tracked for the rest of its life, such as a server thread).
//!
//! The bookkeeping touches only atomics and `const`-initialised
//! thread-locals, so it never allocates and never re-enters the allocator;
//! `try_with` keeps it safe during thread teardown. The library itself stays
//! `forbid(unsafe_code)`: this `unsafe impl` lives outside it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// `System`, counting every call on the side.
pub struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static DEALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
/// Bytes live that tracked threads allocated (and did not free themselves).
static TRACKED_LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    /// Bytes this thread allocated minus those it freed while tracked.
    static LOCAL_LIVE: Cell<i64> = const { Cell::new(0) };
}

fn tracking() -> bool {
    TRACKING.try_with(Cell::get).unwrap_or(false)
}

/// A successful (re)allocation of `size` bytes that changed the live bytes
/// by `delta`.
fn allocated(size: usize, delta: i64) {
    LIVE.fetch_add(delta, Relaxed);
    if tracking() {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        TRACKED_LIVE.fetch_add(delta, Relaxed);
        let _ = LOCAL_LIVE.try_with(|l| l.set(l.get() + delta));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and only updates counters on the side (no allocation, no
// re-entrancy).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            allocated(layout.size(), layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Relaxed);
            allocated(layout.size(), layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from this allocator (= System).
        unsafe { System.dealloc(ptr, layout) };
        DEALLOCS.fetch_add(1, Relaxed);
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        if tracking() {
            TRACKED_LIVE.fetch_sub(layout.size() as i64, Relaxed);
            let _ = LOCAL_LIVE.try_with(|l| l.set(l.get() - layout.size() as i64));
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            REALLOCS.fetch_add(1, Relaxed);
            allocated(new_size, new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Process-wide counts since the start (or, from [`Totals::since`], between
/// two readings).
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    pub allocs: u64,
    pub reallocs: u64,
    pub deallocs: u64,
    /// Bytes allocated and not yet freed.
    pub live: i64,
}

impl Totals {
    pub fn now() -> Totals {
        Totals {
            allocs: ALLOCS.load(Relaxed),
            reallocs: REALLOCS.load(Relaxed),
            deallocs: DEALLOCS.load(Relaxed),
            live: LIVE.load(Relaxed),
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(self, before: Totals) -> Totals {
        Totals {
            allocs: self.allocs - before.allocs,
            reallocs: self.reallocs - before.reallocs,
            deallocs: self.deallocs - before.deallocs,
            live: self.live - before.live,
        }
    }
}

/// Stops tracking when dropped, even if the tracked closure panicked.
struct Untrack;

impl Drop for Untrack {
    fn drop(&mut self) {
        let _ = TRACKING.try_with(|t| t.set(false));
    }
}

/// Runs `f` with this thread tracked: `(result, allocation and reallocation
/// calls, largest single request in bytes)`. Other threads are not counted,
/// so tests may run in parallel.
pub fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    COUNT.with(|c| c.set(0));
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let untrack = Untrack;
    let r = f();
    drop(untrack);
    (r, COUNT.with(Cell::get), LARGEST.with(Cell::get))
}

/// Runs `f` with this thread tracked: `(result, bytes it left allocated)`
/// (allocated minus freed by this thread while `f` ran; 0 when everything
/// `f` allocated and dropped was freed).
pub fn live_after<T>(f: impl FnOnce() -> T) -> (T, i64) {
    LOCAL_LIVE.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let untrack = Untrack;
    let r = f();
    drop(untrack);
    (r, LOCAL_LIVE.with(Cell::get))
}

/// Tracks this thread for the rest of its life: what it allocates and frees
/// shows in [`tracked_live`].
pub fn track_this_thread() {
    TRACKING.with(|t| t.set(true));
}

/// Bytes live that tracked threads allocated and did not free themselves.
pub fn tracked_live() -> i64 {
    TRACKED_LIVE.load(Relaxed)
}
