//! The deadline index: which entries of a shard expire when, ordered by deadline.
//!
//! Pure data structure; time is always an argument. An entry is named by its key's 64-bit hash
//! in the shard's table rather than by a copy of the key (16 bytes per volatile key plus the
//! tree's slack); the shard resolves a `(deadline, hash)` pair to the entries with that hash and
//! that deadline. Two keys can share both: the pair then stands for both, and the shard removes
//! it only when the last of them loses that deadline.

use std::collections::BTreeSet;

/// `(deadline_ms, key hash)` pairs ordered by deadline (wall-clock milliseconds).
#[derive(Debug, Default)]
pub(crate) struct ExpiryIndex {
    set: BTreeSet<(u64, u64)>,
}

impl ExpiryIndex {
    /// Records that an entry with key hash `hash` expires at `deadline_ms` (a no-op if the pair
    /// is already there: it then stands for every entry that has it).
    pub(crate) fn insert(&mut self, deadline_ms: u64, hash: u64) {
        self.set.insert((deadline_ms, hash));
    }

    /// Forgets the pair; the caller does so only when no entry has it any more.
    pub(crate) fn remove(&mut self, deadline_ms: u64, hash: u64) {
        self.set.remove(&(deadline_ms, hash));
    }

    /// At most `max` pairs whose deadline is at or before `now_ms`, earliest first.
    pub(crate) fn due(&self, now_ms: u64, max: usize) -> Vec<(u64, u64)> {
        self.set
            .iter()
            .take_while(|(d, _)| *d <= now_ms)
            .take(max)
            .copied()
            .collect()
    }

    /// The pair with the earliest deadline, if any (for `volatile-ttl` eviction).
    pub(crate) fn earliest(&self) -> Option<(u64, u64)> {
        self.set.first().copied()
    }

    /// At most `max` consecutive pairs from a deadline picked by `seed` between the earliest
    /// and the latest (wrapping to the earliest), for sampling keys with a TTL (`volatile-lru`)
    /// in O(log n) rather than by walking the index.
    pub(crate) fn sample(&self, seed: u64, max: usize) -> Vec<(u64, u64)> {
        let (Some(&(first, _)), Some(&(last, _))) = (self.set.first(), self.set.last()) else {
            return Vec::new();
        };
        let span = last.saturating_sub(first).saturating_add(1);
        let from = first.saturating_add(seed % span);
        self.set
            .range((from, 0)..)
            .chain(self.set.iter())
            .take(max.min(self.set.len()))
            .copied()
            .collect()
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.set.clear();
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
        ix.insert(20, 2);
        assert_eq!(ix.due(100, 10), vec![(20, 2), (30, 3)]);
        assert_eq!(ix.sample(0, 1), vec![(20, 2)]);
        assert_eq!(ix.sample(10, 5), vec![(30, 3), (20, 2)]);
        ix.clear();
        assert_eq!(ix.earliest(), None);
        assert_eq!(ix.sample(7, 5), Vec::<(u64, u64)>::new());
    }
}
