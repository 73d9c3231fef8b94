//! [`ByteQueue`]: a bounded FIFO of bytes, socket-free.
//!
//! One queue holds a peer's received bytes (filled by the reactor, drained by
//! `get_*`), another its outgoing bytes (filled by `put_*`, drained by the
//! reactor). Design points, each for a measured reason:
//!
//! - **Lazy storage.** A new queue owns no heap memory; storage is allocated on
//!   the first push and can be released when the queue is empty
//!   ([`ByteQueue::release`]), so ten thousand idle peers cost almost nothing.
//! - **Initialised storage.** `forbid(unsafe_code)` rules out reading into
//!   uninitialised memory, so storage is always zero-initialised once (`vec![0; n]`)
//!   and reused; the free space after the tail can be handed to `read(2)` directly
//!   ([`ByteQueue::spare_mut`]) with no per-read `memset`.
//! - **Linear, not a ring.** Bytes live in `storage[head..tail]`; when the queue
//!   empties both indexes go back to 0, which in request/response traffic is the
//!   common case, so the data is contiguous for a single `write(2)` and a single
//!   copy out. When the tail runs out of room the live bytes are moved to the
//!   front (amortised by growing by doubling).
//! - **A hard limit.** The queue never holds more than `limit` bytes; callers
//!   check [`ByteQueue::room`] first (all-or-nothing `put_data`).

/// Smallest storage allocated, so tiny messages do not cause many small
/// reallocations as they accumulate.
const MIN_STORAGE: usize = 256;

/// A bounded byte FIFO with lazily allocated, reusable storage.
#[derive(Debug, Default)]
pub(crate) struct ByteQueue {
    /// Storage; every byte is initialised. `storage.len()` is the capacity.
    storage: Vec<u8>,
    /// Index of the first live byte.
    head: usize,
    /// One past the last live byte.
    tail: usize,
    /// Most live bytes the queue may hold.
    limit: usize,
}

impl ByteQueue {
    /// An empty queue that will hold at most `limit` bytes. Allocates nothing.
    pub(crate) fn new(limit: usize) -> ByteQueue {
        ByteQueue {
            storage: Vec::new(),
            head: 0,
            tail: 0,
            limit,
        }
    }

    /// Number of live bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tail - self.head
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// The most bytes this queue may hold.
    #[inline]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// How many more bytes may be pushed before the limit.
    #[inline]
    pub(crate) fn room(&self) -> usize {
        self.limit - self.len()
    }

    /// Bytes of heap storage currently owned.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// The live bytes, oldest first.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.storage[self.head..self.tail]
    }

    /// Appends `data`. The caller guarantees `data.len() <= self.room()`.
    pub(crate) fn push(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= self.room(), "push beyond the queue limit");
        if data.is_empty() {
            return;
        }
        self.make_spare(data.len());
        self.storage[self.tail..self.tail + data.len()].copy_from_slice(data);
        self.tail += data.len();
    }

    /// Length of [`ByteQueue::spare_mut`], without borrowing.
    #[inline]
    pub(crate) fn spare_len(&self) -> usize {
        // `tail - head <= limit`, so `head + limit >= tail`: no underflow.
        self.storage.len().min(self.head + self.limit) - self.tail
    }

    /// Contiguous free space after the tail that is usable without reallocating
    /// and without exceeding the limit (may be empty). Fill a prefix of it and
    /// call [`ByteQueue::commit`].
    #[inline]
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        let end = self.storage.len().min(self.head + self.limit);
        let tail = self.tail;
        &mut self.storage[tail..end.max(tail)]
    }

    /// All the storage, when the queue is empty (`None` otherwise): the
    /// steady-traffic read lands here. The storage never exceeds the limit.
    #[inline(always)]
    pub(crate) fn empty_storage_mut(&mut self) -> Option<&mut [u8]> {
        if self.head != self.tail {
            return None;
        }
        debug_assert!(self.head == 0 && self.storage.len() <= self.limit);
        Some(&mut self.storage)
    }

    /// Marks `n` bytes written into [`ByteQueue::spare_mut`] as live.
    #[inline]
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(self.tail + n <= self.storage.len());
        debug_assert!(self.len() + n <= self.limit);
        self.tail += n;
    }

    /// Copies up to `out.len()` bytes from the front without consuming them.
    #[inline(always)]
    pub(crate) fn peek(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len());
        out[..n].copy_from_slice(&self.storage[self.head..self.head + n]);
        n
    }

    /// Drops `n` bytes from the front (`n <= len`).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.head += n;
        if self.head == self.tail {
            // Empty: rewind so the next data is contiguous from the start.
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Moves up to `out.len()` bytes from the front into `out`.
    #[inline(always)]
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek(out);
        self.consume(n);
        n
    }

    /// Drops every live byte, keeping the storage.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }

    /// Frees the storage if the queue is empty; returns whether it owned any.
    pub(crate) fn release(&mut self) -> bool {
        if self.is_empty() && !self.storage.is_empty() {
            self.storage = Vec::new();
            self.head = 0;
            self.tail = 0;
            return true;
        }
        false
    }

    /// Ensures `n` bytes of contiguous, initialised space after the tail
    /// (`len + n <= limit`), compacting or growing the storage.
    fn make_spare(&mut self, n: usize) {
        if self.storage.len() - self.tail >= n {
            return;
        }
        let needed = self.len() + n;
        if self.head > 0 && self.storage.len() >= needed {
            // Enough room in total: move the live bytes to the front.
            self.storage.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
            return;
        }
        // Grow by doubling (amortised O(1) per byte), at least MIN_STORAGE,
        // never beyond what the limit can use.
        let grown = (self.storage.len() * 2).max(MIN_STORAGE).max(needed);
        let new_cap = grown.min(self.limit.max(needed));
        let mut storage = vec![0u8; new_cap];
        let len = self.len();
        storage[..len].copy_from_slice(self.as_slice());
        self.storage = storage;
        self.head = 0;
        self.tail = len;
    }

    /// Grows the storage so that [`ByteQueue::spare_mut`] offers at least
    /// `min(n, room)` bytes.
    pub(crate) fn reserve_spare(&mut self, n: usize) {
        let n = n.min(self.room());
        if n > 0 {
            self.make_spare(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_queue_owns_no_memory() {
        let q = ByteQueue::new(1024);
        assert_eq!(q.capacity(), 0);
        assert!(q.is_empty());
        assert_eq!(q.room(), 1024);
    }

    #[test]
    fn fifo_order_across_pushes_and_partial_pops() {
        let mut q = ByteQueue::new(1 << 20);
        let mut expected = std::collections::VecDeque::new();
        let mut next = 0u8;
        let mut out = [0u8; 97];
        for round in 0..500 {
            let chunk: Vec<u8> = (0..(round % 300))
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            q.push(&chunk);
            expected.extend(chunk);
            let n = q.pop_into(&mut out[..round % 97]);
            for b in &out[..n] {
                assert_eq!(Some(*b), expected.pop_front());
            }
            assert_eq!(q.len(), expected.len());
        }
        let mut rest = vec![0u8; q.len()];
        assert_eq!(q.pop_into(&mut rest), rest.len());
        assert!(rest.iter().copied().eq(expected.into_iter()));
    }

    #[test]
    fn never_grows_past_the_limit() {
        let mut q = ByteQueue::new(1000);
        q.push(&[1; 600]);
        q.push(&[2; 400]);
        assert_eq!(q.room(), 0);
        assert!(q.capacity() <= 1000, "capacity {}", q.capacity());
        assert!(q.spare_mut().is_empty());
    }

    #[test]
    fn compacts_instead_of_growing_when_room_exists() {
        let mut q = ByteQueue::new(1 << 20);
        q.push(&[7; 200]);
        let cap = q.capacity();
        let mut sink = [0u8; 150];
        q.pop_into(&mut sink);
        q.push(&[8; 150]); // 50 + 150 fits in the 256 bytes already owned
        assert_eq!(q.capacity(), cap);
        assert_eq!(&q.as_slice()[..50], &[7; 50][..]);
        assert_eq!(&q.as_slice()[50..], &[8; 150][..]);
    }

    #[test]
    fn empty_queue_rewinds_so_storage_is_reused() {
        let mut q = ByteQueue::new(4096);
        for _ in 0..1000 {
            q.push(&[1; 64]);
            let mut out = [0u8; 64];
            assert_eq!(q.pop_into(&mut out), 64);
        }
        assert_eq!(q.capacity(), MIN_STORAGE);
    }

    #[test]
    fn spare_and_commit_append_in_place() {
        let mut q = ByteQueue::new(100);
        assert!(q.spare_mut().is_empty());
        q.reserve_spare(1000); // clamped to the room
        let spare = q.spare_mut();
        assert!(!spare.is_empty() && spare.len() <= 100);
        spare[..3].copy_from_slice(b"abc");
        q.commit(3);
        assert_eq!(q.as_slice(), b"abc");
        // The spare region never lets the queue exceed its limit.
        let s = q.spare_mut().len();
        assert!(q.len() + s <= 100);
    }

    #[test]
    fn peek_does_not_consume_and_release_frees_only_when_empty() {
        let mut q = ByteQueue::new(100);
        q.push(b"hello");
        let mut out = [0u8; 3];
        assert_eq!(q.peek(&mut out), 3);
        assert_eq!(&out, b"hel");
        assert_eq!(q.len(), 5);
        assert!(!q.release());
        q.consume(5);
        assert!(q.release());
        assert_eq!(q.capacity(), 0);
        assert!(!q.release());
    }
}
