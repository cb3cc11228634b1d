//! The deadline index: which keys of a shard expire when, ordered by deadline.
//!
//! Pure data structure; time is always an argument. The shard keeps it in step with each
//! entry's `expire_at_ms`; the active expiry cycle asks it for at most N due keys per tick.

use std::collections::BTreeSet;

/// Keys ordered by their expiry deadline (wall-clock milliseconds).
#[derive(Debug, Default)]
pub(crate) struct ExpiryIndex {
    /// `(deadline_ms, key)`, so iteration order is deadline order.
    set: BTreeSet<(u64, Box<[u8]>)>,
}

impl ExpiryIndex {
    /// Records that `key` expires at `deadline_ms`.
    pub(crate) fn insert(&mut self, deadline_ms: u64, key: &[u8]) {
        self.set.insert((deadline_ms, key.into()));
    }

    /// Forgets the deadline `deadline_ms` of `key`.
    pub(crate) fn remove(&mut self, deadline_ms: u64, key: &[u8]) {
        self.set.remove(&(deadline_ms, Box::<[u8]>::from(key)));
    }

    /// At most `max` keys whose deadline is at or before `now_ms`, earliest first.
    pub(crate) fn due(&self, now_ms: u64, max: usize) -> Vec<Box<[u8]>> {
        self.set
            .iter()
            .take_while(|(d, _)| *d <= now_ms)
            .take(max)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The key with the earliest deadline, if any (for `volatile-ttl` eviction).
    pub(crate) fn earliest(&self) -> Option<&[u8]> {
        self.set.first().map(|(_, k)| &**k)
    }

    /// Number of keys with a deadline.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
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
        ix.insert(30, b"c");
        ix.insert(10, b"a");
        ix.insert(20, b"b");
        assert_eq!(ix.due(5, 10), Vec::<Box<[u8]>>::new());
        assert_eq!(
            ix.due(20, 10),
            vec![Box::from(&b"a"[..]), Box::from(&b"b"[..])]
        );
        assert_eq!(ix.due(100, 1), vec![Box::from(&b"a"[..])]);
        ix.remove(10, b"a");
        assert_eq!(ix.earliest(), Some(&b"b"[..]));
        assert_eq!(ix.len(), 2);
    }
}
