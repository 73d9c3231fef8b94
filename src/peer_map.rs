//! [`PeerMap`]: the application's per-peer values, indexed by [`HandleId`]
//! without hashing.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::{Index, IndexMut};

use crate::HandleId;
use crate::reactor::Key;

/// A map from [`HandleId`] to the application's value for that peer (a
/// player, a session, the [`StreamPeerTcp`](crate::StreamPeerTcp) itself),
/// with O(1) lookups by the id's dense [`index`](HandleId::index): no hashing,
/// one bounds check and one generation compare.
///
/// Ids come from [`StreamPeerTcp::id`](crate::StreamPeerTcp::id),
/// [`TcpServer::id`](crate::TcpServer::id) and
/// [`Reactor::drain_ready`](crate::Reactor::drain_ready). An id names one
/// connection: a stale id (its connection was released and the index reused
/// by a newer one) finds nothing, exactly as in a `HashMap`.
///
/// One index holds one id at a time. The reactor reuses an index only after
/// the connection that had it was released (its handle dropped or
/// disconnected), so a map that removes an id when it drops the peer never
/// sees two live ids with the same index; [`insert`](Self::insert) of an id
/// whose index holds an older id's value replaces that value and returns it.
///
/// Memory: one slot per index up to the largest index inserted (indexes are
/// dense and small: at most the reactor's peak number of entries).
///
/// ```
/// use std::time::Duration;
/// use lunanet::{PeerMap, Reactor, StreamPeerTcp, TcpServer};
///
/// let reactor = Reactor::new()?;
/// let mut server = TcpServer::new(&reactor);
/// server.listen(0, "127.0.0.1")?;
/// let mut client = StreamPeerTcp::new(&reactor);
/// client.connect_to_host("127.0.0.1", server.local_port())?;
/// client.wait_connected(Duration::from_secs(5))?;
///
/// struct Player { name: String, peer: StreamPeerTcp }
/// let mut players: PeerMap<Player> = PeerMap::new();
/// let deadline = std::time::Instant::now() + Duration::from_secs(5);
/// while players.is_empty() && std::time::Instant::now() < deadline {
///     reactor.poll(Some(Duration::from_millis(10)))?;
///     while let Some(peer) = server.take_connection() {
///         let id = peer.id().expect("an accepted peer has an id");
///         players.insert(id, Player { name: format!("player {}", id.index()), peer });
///     }
/// }
/// assert_eq!(players.len(), 1);
/// let (id, player) = players.iter().next().unwrap();
/// assert_eq!(player.peer.id(), Some(id));
/// assert!(players[id].name.starts_with("player"));
/// let gone = players.remove(id).unwrap();
/// assert!(!players.contains_key(id) && players.is_empty());
/// # drop(gone);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub struct PeerMap<T> {
    slots: Vec<Option<Entry<T>>>,
    len: usize,
}

struct Entry<T> {
    generation: u32,
    value: T,
}

impl<T> PeerMap<T> {
    /// An empty map. Allocates nothing.
    pub const fn new() -> PeerMap<T> {
        PeerMap {
            slots: Vec::new(),
            len: 0,
        }
    }

    /// An empty map with room for ids of index below `capacity` without
    /// reallocating.
    ///
    /// ```
    /// let map: lunanet::PeerMap<u32> = lunanet::PeerMap::with_capacity(1024);
    /// assert!(map.is_empty());
    /// ```
    pub fn with_capacity(capacity: usize) -> PeerMap<T> {
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        PeerMap { slots, len: 0 }
    }

    /// Number of values in the map.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds no value.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` for `id`. Returns the value it replaces: the previous
    /// value of `id`, or that of an older id with the same index (see the
    /// type's docs).
    pub fn insert(&mut self, id: HandleId, value: T) -> Option<T> {
        let index = id.index();
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        let old = self.slots[index].replace(Entry {
            generation: id.generation(),
            value,
        });
        if old.is_none() {
            self.len += 1;
        }
        old.map(|e| e.value)
    }

    /// The value of `id`, if present.
    #[inline]
    pub fn get(&self, id: HandleId) -> Option<&T> {
        match self.slots.get(id.index()) {
            Some(Some(e)) if e.generation == id.generation() => Some(&e.value),
            _ => None,
        }
    }

    /// The value of `id`, mutably, if present.
    #[inline]
    pub fn get_mut(&mut self, id: HandleId) -> Option<&mut T> {
        match self.slots.get_mut(id.index()) {
            Some(Some(e)) if e.generation == id.generation() => Some(&mut e.value),
            _ => None,
        }
    }

    /// Whether `id` has a value.
    #[inline]
    pub fn contains_key(&self, id: HandleId) -> bool {
        self.get(id).is_some()
    }

    /// Removes and returns the value of `id`, if present.
    pub fn remove(&mut self, id: HandleId) -> Option<T> {
        let slot = self.slots.get_mut(id.index())?;
        match slot {
            Some(e) if e.generation == id.generation() => {
                self.len -= 1;
                slot.take().map(|e| e.value)
            }
            _ => None,
        }
    }

    /// Removes every value (keeps the storage).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.len = 0;
    }

    /// Keeps only the values for which `keep` returns true.
    ///
    /// ```
    /// # use lunanet::PeerMap;
    /// # let mut map: PeerMap<u32> = PeerMap::new();
    /// map.retain(|_id, value| *value > 0);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(HandleId, &mut T) -> bool) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(e) = slot
                && !keep(id(index, e.generation), &mut e.value)
            {
                *slot = None;
                self.len -= 1;
            }
        }
    }

    /// The ids and values, in index order.
    pub fn iter(&self) -> PeerMapIter<'_, T> {
        PeerMapIter {
            inner: self.slots.iter().enumerate(),
            left: self.len,
        }
    }

    /// The ids and mutable values, in index order.
    pub fn iter_mut(&mut self) -> PeerMapIterMut<'_, T> {
        PeerMapIterMut {
            inner: self.slots.iter_mut().enumerate(),
            left: self.len,
        }
    }

    /// The ids, in index order.
    pub fn keys(&self) -> impl Iterator<Item = HandleId> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// The values, in index order: for example every player, to broadcast a
    /// tick.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The values, mutably, in index order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.iter_mut().map(|(_, v)| v)
    }
}

fn id(index: usize, generation: u32) -> HandleId {
    HandleId(Key { index, generation })
}

impl<T> Default for PeerMap<T> {
    fn default() -> PeerMap<T> {
        PeerMap::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for PeerMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T> Index<HandleId> for PeerMap<T> {
    type Output = T;

    /// # Panics
    /// If `id` has no value (as `HashMap`'s index).
    fn index(&self, id: HandleId) -> &T {
        self.get(id)
            .expect("no value for this HandleId in the PeerMap")
    }
}

impl<T> IndexMut<HandleId> for PeerMap<T> {
    /// # Panics
    /// If `id` has no value.
    fn index_mut(&mut self, id: HandleId) -> &mut T {
        self.get_mut(id)
            .expect("no value for this HandleId in the PeerMap")
    }
}

impl<T> Extend<(HandleId, T)> for PeerMap<T> {
    fn extend<I: IntoIterator<Item = (HandleId, T)>>(&mut self, iter: I) {
        for (id, value) in iter {
            self.insert(id, value);
        }
    }
}

impl<T> FromIterator<(HandleId, T)> for PeerMap<T> {
    fn from_iter<I: IntoIterator<Item = (HandleId, T)>>(iter: I) -> PeerMap<T> {
        let mut map = PeerMap::new();
        map.extend(iter);
        map
    }
}

impl<'a, T> IntoIterator for &'a PeerMap<T> {
    type Item = (HandleId, &'a T);
    type IntoIter = PeerMapIter<'a, T>;
    fn into_iter(self) -> PeerMapIter<'a, T> {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut PeerMap<T> {
    type Item = (HandleId, &'a mut T);
    type IntoIter = PeerMapIterMut<'a, T>;
    fn into_iter(self) -> PeerMapIterMut<'a, T> {
        self.iter_mut()
    }
}

/// Iterator over a [`PeerMap`]'s ids and values ([`PeerMap::iter`]).
pub struct PeerMapIter<'a, T> {
    inner: std::iter::Enumerate<std::slice::Iter<'a, Option<Entry<T>>>>,
    left: usize,
}

impl<'a, T> Iterator for PeerMapIter<'a, T> {
    type Item = (HandleId, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None; // the tail holds no value: skip the scan
        }
        for (index, slot) in self.inner.by_ref() {
            if let Some(e) = slot {
                self.left -= 1;
                return Some((id(index, e.generation), &e.value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for PeerMapIter<'_, T> {}
impl<T> FusedIterator for PeerMapIter<'_, T> {}

/// Iterator over a [`PeerMap`]'s ids and mutable values ([`PeerMap::iter_mut`]).
pub struct PeerMapIterMut<'a, T> {
    inner: std::iter::Enumerate<std::slice::IterMut<'a, Option<Entry<T>>>>,
    left: usize,
}

impl<'a, T> Iterator for PeerMapIterMut<'a, T> {
    type Item = (HandleId, &'a mut T);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        for (index, slot) in self.inner.by_ref() {
            if let Some(e) = slot {
                self.left -= 1;
                return Some((id(index, e.generation), &mut e.value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for PeerMapIterMut<'_, T> {}
impl<T> FusedIterator for PeerMapIterMut<'_, T> {}

impl<T> fmt::Debug for PeerMapIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerMapIter")
            .field("left", &self.left)
            .finish()
    }
}

impl<T> fmt::Debug for PeerMapIterMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerMapIterMut")
            .field("left", &self.left)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hid(index: usize, generation: u32) -> HandleId {
        id(index, generation)
    }

    #[test]
    fn insert_get_remove_by_id_with_generation_check() {
        let mut m = PeerMap::new();
        assert_eq!(m.insert(hid(3, 1), "a"), None);
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(hid(3, 1)), Some(&"a"));
        assert_eq!(m.get(hid(3, 2)), None, "stale or future generation");
        assert_eq!(m.get(hid(4, 1)), None);
        assert_eq!(m.get(hid(1000, 1)), None, "beyond the storage");
        *m.get_mut(hid(3, 1)).unwrap() = "b";
        assert_eq!(m[hid(3, 1)], "b");
        assert_eq!(m.remove(hid(3, 2)), None);
        assert_eq!(m.remove(hid(3, 1)), Some("b"));
        assert_eq!(m.remove(hid(3, 1)), None);
        assert!(m.is_empty());
    }

    #[test]
    fn a_newer_id_on_the_same_index_replaces_the_older() {
        let mut m = PeerMap::new();
        m.insert(hid(0, 1), 10);
        assert_eq!(m.insert(hid(0, 2), 20), Some(10));
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(hid(0, 1)), None);
        assert_eq!(m.insert(hid(0, 2), 21), Some(20));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn iteration_is_in_index_order_and_exact() {
        let mut m: PeerMap<usize> = [(hid(5, 1), 5), (hid(1, 7), 1), (hid(9, 2), 9)]
            .into_iter()
            .collect();
        let ids: Vec<_> = m.keys().map(|id| id.index()).collect();
        assert_eq!(ids, [1, 5, 9]);
        assert_eq!(m.iter().len(), 3);
        for (id, v) in &mut m {
            *v += id.index();
        }
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [2, 10, 18]);
        m.retain(|id, _| id.index() != 5);
        assert_eq!(m.len(), 2);
        assert!(!m.contains_key(hid(5, 1)));
        assert!(m.contains_key(hid(9, 2)));
        assert_eq!(format!("{m:?}"), "{HandleId(1v7): 2, HandleId(9v2): 18}");
        m.clear();
        assert!(m.is_empty() && m.iter().next().is_none());
    }
}
