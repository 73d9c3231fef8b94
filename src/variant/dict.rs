//! Godot `Dictionary`: insertion-ordered, hash-indexed once large.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use super::array::{dispose_in_place, drain_stack, empty_in_place, forget_all};
use super::*;

/// Godot `Dictionary`: keys and values of any type, in insertion order (the
/// order Godot iterates and sends them).
///
/// Stored as a `Vec` of entries: small dictionaries (the usual game message,
/// up to 16 entries) are searched linearly, which beats hashing; larger ones
/// get a hash index ([`hashbrown::HashTable`] of entry positions, keyed with
/// the standard library's randomly seeded hasher), so lookups stay O(1) even
/// with keys chosen by an attacker. Hand-written rather than `indexmap`
/// because that always hashes and is 72 bytes (would double the size of
/// every `Variant`); this is 24.
///
/// Inserting an existing key replaces its value and keeps its position, as
/// Godot does. `==` ignores order (as Godot's); the encoded bytes follow it.
///
/// ```
/// use lunanet::variant::{Dictionary, Variant};
///
/// let mut d = Dictionary::new();
/// d.insert("b", 1);
/// d.insert("a", 2);
/// d.insert("b", 3);
/// let keys: Vec<_> = d.keys().map(|k| k.as_str().unwrap()).collect();
/// assert_eq!(keys, ["b", "a"]);
/// assert_eq!(d.get(&"b".into()), Some(&Variant::Int(3)));
/// ```
#[derive(Clone)]
pub struct Dictionary {
    repr: Repr,
}

/// Entries only while small; entries plus a hash index once large.
#[derive(Clone)]
enum Repr {
    Small(Vec<(Variant, Variant)>),
    Large(Box<Large>),
}

#[derive(Clone)]
struct Large {
    entries: Vec<(Variant, Variant)>,
    hasher: std::hash::RandomState,
    /// Positions in `entries`, keyed by the hash of their key.
    index: hashbrown::HashTable<usize>,
}

/// Above this many entries a dictionary gets a hash index.
const INDEX_THRESHOLD: usize = 16;

impl Large {
    fn build(entries: Vec<(Variant, Variant)>) -> Large {
        let hasher = std::hash::RandomState::new();
        let mut index = hashbrown::HashTable::with_capacity(entries.len());
        for (i, (k, _)) in entries.iter().enumerate() {
            let h = hasher.hash_one(k);
            index.insert_unique(h, i, |&j| hasher.hash_one(&entries[j].0));
        }
        Large {
            entries,
            hasher,
            index,
        }
    }

    fn find(&self, key: &Variant) -> Option<usize> {
        let h = self.hasher.hash_one(key);
        self.index.find(h, |&i| self.entries[i].0 == *key).copied()
    }
}

impl Default for Dictionary {
    fn default() -> Dictionary {
        Dictionary {
            repr: Repr::Small(Vec::new()),
        }
    }
}

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Dictionary {
        Dictionary::default()
    }

    /// An empty dictionary with room for `n` entries.
    #[inline]
    pub fn with_capacity(n: usize) -> Dictionary {
        Dictionary {
            repr: Repr::Small(Vec::with_capacity(n)),
        }
    }

    pub(super) fn entries(&self) -> &Vec<(Variant, Variant)> {
        match &self.repr {
            Repr::Small(e) => e,
            Repr::Large(l) => &l.entries,
        }
    }

    /// The entries of a small dictionary (no hash index yet) with room for
    /// `n` more without needing one: the decoder appends keys it knows to
    /// be new directly.
    #[inline]
    pub(super) fn small_entries(&mut self, n: usize) -> Option<&mut Vec<(Variant, Variant)>> {
        match &mut self.repr {
            Repr::Small(e) if e.len() + n <= INDEX_THRESHOLD => Some(e),
            _ => None,
        }
    }

    /// Whether nothing is allocated (empty and small, as after
    /// `take_entries`): dropping it would do nothing.
    pub(super) fn has_no_allocation(&self) -> bool {
        matches!(&self.repr, Repr::Small(e) if e.capacity() == 0)
    }

    fn position(&self, key: &Variant) -> Option<usize> {
        match &self.repr {
            Repr::Small(e) => e.iter().position(|(k, _)| k == key),
            Repr::Large(l) => l.find(key),
        }
    }

    /// Sets `key` to `value`; returns the previous value. A new key goes last;
    /// an existing one keeps its place.
    pub fn insert(
        &mut self,
        key: impl Into<Variant>,
        value: impl Into<Variant>,
    ) -> Option<Variant> {
        let key = key.into();
        let value = value.into();
        if let Some(i) = self.position(&key) {
            let slot = match &mut self.repr {
                Repr::Small(e) => &mut e[i].1,
                Repr::Large(l) => &mut l.entries[i].1,
            };
            return Some(std::mem::replace(slot, value));
        }
        self.push_new(key, value);
        None
    }

    /// Appends an entry whose key the caller knows is absent (the decoder,
    /// for keys it has already compared).
    #[inline]
    pub(super) fn push_new(&mut self, key: Variant, value: Variant) {
        debug_assert!(!self.contains_key(&key));
        match &mut self.repr {
            Repr::Small(e) => {
                e.push((key, value));
                if e.len() > INDEX_THRESHOLD {
                    let entries = std::mem::take(e);
                    self.repr = Repr::Large(Box::new(Large::build(entries)));
                }
            }
            Repr::Large(l) => {
                let Large {
                    entries,
                    hasher,
                    index,
                } = &mut **l;
                let h = hasher.hash_one(&key);
                index.insert_unique(h, entries.len(), |&j| hasher.hash_one(&entries[j].0));
                entries.push((key, value));
            }
        }
    }

    /// The value for `key`.
    pub fn get(&self, key: &Variant) -> Option<&Variant> {
        self.position(key).map(|i| &self.entries()[i].1)
    }

    /// The value for `key`, mutably.
    pub fn get_mut(&mut self, key: &Variant) -> Option<&mut Variant> {
        let i = self.position(key)?;
        Some(match &mut self.repr {
            Repr::Small(e) => &mut e[i].1,
            Repr::Large(l) => &mut l.entries[i].1,
        })
    }

    /// Removes `key`, keeping the order of the others (O(n), as Godot).
    pub fn remove(&mut self, key: &Variant) -> Option<Variant> {
        let i = self.position(key)?;
        match &mut self.repr {
            Repr::Small(e) => Some(e.remove(i).1),
            Repr::Large(l) => {
                let (_, v) = l.entries.remove(i);
                // Positions after `i` moved: rebuild the index (O(n), like the shift).
                let entries = std::mem::take(&mut l.entries);
                **l = Large::build(entries);
                Some(v)
            }
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &Variant) -> bool {
        self.position(key).is_some()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> DictionaryIter<'_> {
        DictionaryIter {
            inner: self.entries().iter(),
        }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Variant> {
        self.entries().iter().map(|(k, _)| k)
    }

    /// The values in order.
    pub fn values(&self) -> impl Iterator<Item = &Variant> {
        self.entries().iter().map(|(_, v)| v)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.repr = Repr::Small(Vec::new());
    }

    /// Takes the entries out, in order.
    pub fn into_entries(mut self) -> Vec<(Variant, Variant)> {
        self.take_entries()
    }

    pub(super) fn take_entries(&mut self) -> Vec<(Variant, Variant)> {
        match std::mem::replace(&mut self.repr, Repr::Small(Vec::new())) {
            Repr::Small(e) => e,
            Repr::Large(l) => l.entries,
        }
    }
}

/// Iterator over a [`Dictionary`]'s entries, in order.
#[derive(Clone, Debug)]
pub struct DictionaryIter<'a> {
    inner: std::slice::Iter<'a, (Variant, Variant)>,
}

impl<'a> Iterator for DictionaryIter<'a> {
    type Item = (&'a Variant, &'a Variant);
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for DictionaryIter<'_> {}

impl PartialEq for Dictionary {
    /// Same entries, in any order (as Godot's `==`).
    fn eq(&self, other: &Dictionary) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Dictionary {}

impl Hash for Dictionary {
    /// Order-independent, like `==`: the length and the wrapping sum of the
    /// entries' own hashes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        let mut sum = 0u64;
        for entry in self.iter() {
            let mut h = std::hash::DefaultHasher::new();
            entry.hash(&mut h);
            sum = sum.wrapping_add(h.finish());
        }
        sum.hash(state);
    }
}

impl fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Drop for Dictionary {
    fn drop(&mut self) {
        // As `Array`'s drop: keys and values emptied in place, deeper
        // containers iteratively.
        let mut stack: Vec<Variant> = Vec::new();
        let mut entries = self.take_entries();
        for (k, v) in &mut entries {
            empty_in_place(k, &mut stack);
            dispose_in_place(k, &mut stack);
            empty_in_place(v, &mut stack);
            dispose_in_place(v, &mut stack);
        }
        forget_all(entries);
        drain_stack(&mut stack);
    }
}

impl<K: Into<Variant>, V: Into<Variant>> FromIterator<(K, V)> for Dictionary {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Dictionary {
        let mut d = Dictionary::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl<'a> IntoIterator for &'a Dictionary {
    type Item = (&'a Variant, &'a Variant);
    type IntoIter = DictionaryIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
