//! Slots and keys: the reactor's table of entries, with the one
//! generation-checked lookup every event, timer, resume and handle goes
//! through.
//!
//! A [`Key`] is a slab index plus the generation of the entry that occupied
//! it; the generation of an index is bumped each time the index is reused, so
//! anything that names a freed slot (a late event in the same `epoll_wait`
//! batch, an old timer, a stale ready-set id) matches nothing instead of
//! reaching the slot's next occupant.

use std::fmt;

use mio::Token;

use crate::SocketError;

/// Bits of a token that hold the slab index; the rest hold the generation.
const INDEX_BITS: u32 = if usize::BITS >= 64 { 32 } else { 20 };
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GEN_MASK: u32 = (usize::MAX >> INDEX_BITS) as u32;
/// The waker's token: an index no slab will reach.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// A slot index plus the generation of the entry that occupied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) index: usize,
    pub(crate) generation: u32,
}

impl Key {
    /// No entry: an index beyond any table (entries stop at `INDEX_MASK`),
    /// so a lookup fails at the bounds check it makes anyway. A handle
    /// without a connection holds it instead of `None`, which saves its hot
    /// calls a test before the lookup.
    pub(crate) const NONE: Key = Key {
        index: usize::MAX,
        generation: 0,
    };

    /// `None` for [`Key::NONE`].
    #[inline]
    pub(crate) fn opt(self) -> Option<Key> {
        (self.index != usize::MAX).then_some(self)
    }

    /// The mio token of this key: `index | generation << INDEX_BITS`.
    #[inline]
    pub(crate) fn token(self) -> Token {
        Token(self.index | ((self.generation as usize) << INDEX_BITS))
    }

    #[inline]
    pub(crate) fn from_token(token: Token) -> Key {
        Key {
            index: token.0 & INDEX_MASK,
            generation: (token.0 >> INDEX_BITS) as u32,
        }
    }
}

/// Identifies one connection (or server) in a [`Reactor`](crate::Reactor), as
/// reported by [`Reactor::drain_ready`](crate::Reactor::drain_ready).
///
/// A peer gets a new id each time it connects; an id is never reused while the
/// reactor lives (up to wrap-around of a 32-bit generation per slot), so an old
/// id simply matches nothing. Keep per-peer data in a
/// [`PeerMap`](crate::PeerMap), indexed by the id without hashing.
///
/// ```
/// use lunanet::{Reactor, TcpServer};
/// let reactor = Reactor::new()?;
/// let mut server = TcpServer::new(&reactor);
/// assert_eq!(server.id(), None);
/// server.listen(0, "127.0.0.1")?;
/// let id = server.id().unwrap();
/// // Dense, small: usable as an index into your own Vec or slab.
/// assert!(id.index() < 1_000);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId(pub(crate) Key);

impl HandleId {
    /// The slot index: small and dense (reused after the connection closes), so
    /// applications can keep per-connection data in a `Vec` indexed by it.
    #[inline]
    pub fn index(self) -> usize {
        self.0.index
    }

    /// The generation of the slot when this id was issued.
    #[inline]
    pub(crate) fn generation(self) -> u32 {
        self.0.generation
    }
}

impl fmt::Debug for HandleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandleId({}v{})", self.0.index, self.0.generation)
    }
}

/// One index of the table: the generation of its latest occupant (kept
/// after removal, so that the occupant's keys stay stale) and the occupant,
/// if any. The generation is compared first: a lookup is a bounds check, a
/// generation compare and the caller's match on the value.
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// A table whose lookups check the generation.
pub(crate) struct Slots<T> {
    entries: Vec<Entry<T>>,
    /// Vacant indexes, reused last-freed first.
    free: Vec<usize>,
    len: usize,
}

impl<T> Slots<T> {
    pub(crate) fn new() -> Slots<T> {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Inserts the value `make` builds for the key it will live under (so a
    /// socket can be registered with its token before it is stored). Nothing
    /// is inserted when `make` fails.
    pub(crate) fn insert_with(
        &mut self,
        make: impl FnOnce(Key) -> Result<T, SocketError>,
    ) -> Result<Key, SocketError> {
        let index = self.free.last().copied().unwrap_or(self.entries.len());
        if index > INDEX_MASK {
            log::error!("lunanet reactor is full ({index} entries)");
            return Err(SocketError::InitFailed);
        }
        let previous = self.entries.get(index).map_or(0, |e| e.generation);
        let generation = previous.wrapping_add(1) & GEN_MASK;
        let key = Key { index, generation };
        let value = make(key)?;
        if index == self.entries.len() {
            self.entries.push(Entry {
                generation,
                value: Some(value),
            });
        } else {
            self.free.pop();
            self.entries[index] = Entry {
                generation,
                value: Some(value),
            };
        }
        self.len += 1;
        Ok(key)
    }

    /// The live entry of `key`: the one generation-checked lookup.
    #[inline]
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.entries.get(key.index) {
            Some(e) if e.generation == key.generation => e.value.as_ref(),
            _ => None,
        }
    }

    /// The live entry of `key`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.entries.get_mut(key.index) {
            Some(e) if e.generation == key.generation => e.value.as_mut(),
            _ => None,
        }
    }

    /// Removes the entry of `key`, if it is still live.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let e = self.entries.get_mut(key.index)?;
        if e.generation != key.generation {
            return None;
        }
        let value = e.value.take()?;
        self.free.push(key.index);
        self.len -= 1;
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().filter_map(|e| e.value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_collide_with_the_waker() {
        for key in [
            Key {
                index: 0,
                generation: 1,
            },
            Key {
                index: INDEX_MASK - 1,
                generation: GEN_MASK,
            },
            Key {
                index: 12345,
                generation: 77,
            },
        ] {
            assert_eq!(Key::from_token(key.token()), key);
            assert_ne!(key.token(), WAKER_TOKEN);
        }
    }

    #[test]
    fn a_reused_index_gets_a_new_generation_and_old_keys_miss() {
        let mut slots = Slots::new();
        let a = slots.insert_with(|_| Ok("a")).unwrap();
        assert_eq!(slots.get(a), Some(&"a"));
        assert_eq!(slots.remove(a), Some("a"));
        let b = slots.insert_with(|_| Ok("b")).unwrap();
        assert_eq!(a.index, b.index);
        assert_ne!(a.generation, b.generation);
        assert_eq!(slots.get(a), None);
        assert_eq!(slots.get_mut(a), None);
        assert_eq!(slots.remove(a), None);
        assert_eq!(slots.get(b), Some(&"b"));
    }

    #[test]
    fn the_key_given_to_make_is_the_key_returned_and_failures_insert_nothing() {
        let mut slots: Slots<Key> = Slots::new();
        assert_eq!(
            slots.insert_with(|_| Err(SocketError::Failed)),
            Err(SocketError::Failed)
        );
        assert_eq!(slots.len(), 0);
        let k = slots.insert_with(Ok).unwrap();
        assert_eq!(slots.get(k), Some(&k));
    }
}
