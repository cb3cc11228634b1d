//! The deadline index: which entries of a shard expire when, ordered by deadline.
//!
//! Pure data structure; time is always an argument. An entry is named by its key's 64-bit hash
//! in the shard's table rather than by a copy of the key (16 bytes per volatile key plus the
//! tree's slack, against a key allocation before); the shard resolves a `(deadline, hash)` pair
//! to the entries with that hash and that deadline. Two keys can share both, so each pair keeps a
//! count and is a multiset.

use std::collections::BTreeMap;

/// `(deadline_ms, key hash)` pairs ordered by deadline (wall-clock milliseconds).
#[derive(Debug, Default)]
pub(crate) struct ExpiryIndex {
    /// Pair → how many entries carry it.
    map: BTreeMap<(u64, u64), u32>,
    /// Total entries (sum of the counts).
    len: usize,
}

impl ExpiryIndex {
    /// Records that the entry with key hash `hash` expires at `deadline_ms`.
    pub(crate) fn insert(&mut self, deadline_ms: u64, hash: u64) {
        let n = self.map.entry((deadline_ms, hash)).or_insert(0);
        *n = n.saturating_add(1);
        self.len = self.len.saturating_add(1);
    }

    /// Forgets one entry with key hash `hash` and deadline `deadline_ms`.
    pub(crate) fn remove(&mut self, deadline_ms: u64, hash: u64) {
        let pair = (deadline_ms, hash);
        let Some(n) = self.map.get_mut(&pair) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.map.remove(&pair);
        }
        self.len = self.len.saturating_sub(1);
    }

    /// At most `max` pairs whose deadline is at or before `now_ms`, earliest first.
    pub(crate) fn due(&self, now_ms: u64, max: usize) -> Vec<(u64, u64)> {
        self.map
            .keys()
            .take_while(|(d, _)| *d <= now_ms)
            .take(max)
            .copied()
            .collect()
    }

    /// The pair with the earliest deadline, if any (for `volatile-ttl` eviction).
    pub(crate) fn earliest(&self) -> Option<(u64, u64)> {
        self.map.keys().next().copied()
    }

    /// Number of entries with a deadline.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_is_bounded_and_ordered() {
        let mut ix = ExpiryIndex::default();
        ix.insert(30, 3);
        ix.insert(10, 1);
        ix.insert(20, 2);
        assert_eq!(ix.due(5, 10), Vec::<(u64, u64)>::new());
        assert_eq!(ix.due(20, 10), vec![(10, 1), (20, 2)]);
        assert_eq!(ix.due(100, 1), vec![(10, 1)]);
        ix.remove(10, 1);
        assert_eq!(ix.earliest(), Some((20, 2)));
        assert_eq!(ix.len(), 2);
    }

    #[test]
    fn equal_pairs_are_counted() {
        let mut ix = ExpiryIndex::default();
        ix.insert(10, 7);
        ix.insert(10, 7);
        assert_eq!(ix.len(), 2);
        ix.remove(10, 7);
        assert_eq!(ix.due(10, 10), vec![(10, 7)]);
        ix.remove(10, 7);
        assert_eq!(ix.len(), 0);
        assert_eq!(ix.earliest(), None);
        ix.remove(10, 7);
        assert_eq!(ix.len(), 0);
    }
}
