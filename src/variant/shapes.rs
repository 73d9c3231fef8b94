//! Dictionary keys decoded once per shape: an array of dictionaries with the
//! same keys in the same order (the usual game state: one per player, per
//! entity) repeats the same key bytes in every element. The decoder
//! remembers, for each nesting level, the keys of the last dictionary there
//! with their exact bytes; a later dictionary whose next key has those very
//! bytes gets a clone of the decoded key, and no search for a duplicate: its
//! earlier keys matched the same distinct keys, so this one is new too.

use super::Variant;

/// Keys remembered per level, for the first entries of a dictionary only
/// (past this a dictionary is hash-indexed, see `dict.rs`).
const MAX_KEYS: usize = 16;

/// Levels with remembered keys: game data is rarely deeper, and the cache
/// stays under 25 KiB whatever `Limits::max_depth` allows (deeper
/// dictionaries decode as without it).
const MAX_LEVELS: usize = 32;

/// The remembered keys, by nesting level. Invariant: the keys of one level
/// are pairwise distinct (each was new in the dictionary that recorded it,
/// whose earlier keys were exactly the level's earlier keys).
#[derive(Default)]
pub(super) struct Shapes<'a> {
    levels: Vec<Vec<(&'a [u8], Variant)>>,
}

impl<'a> Shapes<'a> {
    /// Key `i` of the last dictionary at `level`, and its length on the
    /// wire, when `input` starts with exactly its bytes.
    #[inline]
    pub(super) fn matching(
        &self,
        level: usize,
        i: usize,
        input: &[u8],
    ) -> Option<(&Variant, usize)> {
        matching_in(self.at_level(level), i, input)
    }

    /// The keys remembered at `level`, in order, with their bytes.
    #[inline]
    pub(super) fn at_level(&self, level: usize) -> &[(&'a [u8], Variant)] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Remembers `key` (encoded as `raw`) as key `i` at `level`, forgetting
    /// the level's keys from `i` on. Returns `false` (remembering nothing)
    /// past the first [`MAX_KEYS`] keys and for keys other than an `Int` or
    /// a string of up to 24 bytes: those are cloned without allocating or
    /// charging [`Limits::max_elements`](super::Limits::max_elements), so a
    /// cloned key costs exactly what decoding it would. (Also `false` for
    /// raw bytes whose length is not a multiple of 4, which the encoding
    /// never produces: `matching` compares 4 bytes at a time.)
    pub(super) fn record(&mut self, level: usize, i: usize, raw: &'a [u8], key: &Variant) -> bool {
        let cheap = match key {
            Variant::Int(_) => true,
            Variant::String(s) | Variant::StringName(s) => !s.is_heap_allocated(),
            _ => false,
        };
        if i >= MAX_KEYS || level >= MAX_LEVELS || !cheap || !raw.len().is_multiple_of(4) {
            return false;
        }
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        let keys = &mut self.levels[level];
        if keys.capacity() == 0 {
            keys.reserve_exact(MAX_KEYS);
        }
        keys.truncate(i);
        if keys.len() < i {
            return false;
        }
        keys.push((raw, key.clone()));
        true
    }

    /// Forgets the keys of `level` from `i` on.
    pub(super) fn forget(&mut self, level: usize, i: usize) {
        if let Some(keys) = self.levels.get_mut(level) {
            keys.truncate(i);
        }
    }
}

/// Key `i` of `known` (a level's keys, [`Shapes::at_level`]) and its length
/// on the wire, when `input` starts with exactly its bytes.
#[inline(always)]
pub(super) fn matching_in<'k>(
    known: &'k [(&[u8], Variant)],
    i: usize,
    input: &[u8],
) -> Option<(&'k Variant, usize)> {
    let (raw, key) = known.get(i)?;
    let head = input.get(..raw.len())?;
    same_words(head, raw).then_some((key, raw.len()))
}

/// `a == b` for two slices of the same length, a multiple of 4 (every
/// encoded key, see `record`): eight bytes at a time and a last four, as
/// fixed-size compares; for these short keys cheaper than calling `memcmp`.
#[inline(always)]
fn same_words(a: &[u8], b: &[u8]) -> bool {
    let (aw, at) = a.as_chunks::<8>();
    let (bw, bt) = b.as_chunks::<8>();
    aw.iter().zip(bw).all(|(x, y)| x == y) && at.first_chunk::<4>() == bt.first_chunk::<4>()
}
