//! SIEVE (Zhang et al., NSDI '24) as a pure structure: a FIFO queue of keys and a hand that
//! moves from the oldest toward the newest. Hits only set a visited bit (kept by the caller in
//! the entry); eviction clears visited bits as the hand passes and evicts the first unvisited
//! key, which stays in place otherwise — so popular keys are never moved, unlike LRU.
//!
//! Nodes live in a slab with `u32` links; a key → node map finds a key's node on removal.

use hashbrown::HashMap;

const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Node {
    key: Box<[u8]>,
    /// Toward the newest (head).
    newer: u32,
    /// Toward the oldest (tail).
    older: u32,
}

/// The queue.
#[derive(Debug)]
pub(crate) struct Sieve {
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: HashMap<Box<[u8]>, u32>,
    /// Newest.
    head: u32,
    /// Oldest.
    tail: u32,
    /// Next candidate; `NONE` means start from the tail.
    hand: u32,
}

impl Default for Sieve {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            head: NONE,
            tail: NONE,
            hand: NONE,
        }
    }
}

impl Sieve {
    fn node(&self, i: u32) -> Option<&Node> {
        self.nodes.get(i as usize)
    }

    fn node_mut(&mut self, i: u32) -> Option<&mut Node> {
        self.nodes.get_mut(i as usize)
    }

    /// Queues a new key at the head (no-op if already queued).
    pub(crate) fn insert(&mut self, key: &[u8]) {
        if self.index.contains_key(key) {
            return;
        }
        let node = Node {
            key: key.into(),
            newer: NONE,
            older: self.head,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.node_mut(i) {
                    *slot = node;
                }
                i
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(NONE)
            }
        };
        let old_head = self.head;
        if let Some(h) = self.node_mut(old_head) {
            h.newer = i;
        }
        self.head = i;
        if self.tail == NONE {
            self.tail = i;
        }
        self.index.insert(key.into(), i);
    }

    /// Unlinks `key` if queued.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        let Some(i) = self.index.remove(key) else {
            return;
        };
        let (newer, older) = match self.node(i) {
            Some(n) => (n.newer, n.older),
            None => return,
        };
        if let Some(n) = self.node_mut(newer) {
            n.older = older;
        } else {
            self.head = older;
        }
        if let Some(o) = self.node_mut(older) {
            o.newer = newer;
        } else {
            self.tail = newer;
        }
        if self.hand == i {
            self.hand = newer;
        }
        if let Some(n) = self.node_mut(i) {
            n.key = Box::default();
        }
        self.free.push(i);
    }

    /// The key the hand stops at: `visited(key)` reports and clears an entry's visited bit.
    /// The key stays queued; the caller removes it (with [`Sieve::remove`]) when it evicts.
    pub(crate) fn victim(&mut self, mut visited: impl FnMut(&[u8]) -> bool) -> Option<Box<[u8]>> {
        if self.index.is_empty() {
            return None;
        }
        // Two full sweeps clear every bit, so the loop ends within 2 × len steps.
        for _ in 0..self.index.len().saturating_mul(2).saturating_add(1) {
            let at = if self.hand == NONE {
                self.tail
            } else {
                self.hand
            };
            let (key, newer) = match self.node(at) {
                Some(n) => (n.key.clone(), n.newer),
                None => return None,
            };
            if visited(&key) {
                self.hand = newer;
                continue;
            }
            self.hand = newer;
            return Some(key);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn evicts_oldest_unvisited_and_keeps_visited_in_place() {
        let mut s = Sieve::default();
        for k in [b"a", b"b", b"c"] {
            s.insert(k);
        }
        let mut visited: HashSet<Vec<u8>> = [b"a".to_vec()].into_iter().collect();
        let v = s.victim(|k| visited.remove(k)).unwrap();
        assert_eq!(&*v, b"b");
        s.remove(&v);
        assert_eq!(s.index.len(), 2);
        let v = s.victim(|k| visited.remove(k)).unwrap();
        assert_eq!(&*v, b"c");
        s.remove(&v);
        let v = s.victim(|k| visited.remove(k)).unwrap();
        assert_eq!(&*v, b"a");
        s.remove(&v);
        assert!(s.victim(|_| false).is_none());
        s.insert(b"d");
        assert_eq!(s.victim(|_| false).as_deref(), Some(&b"d"[..]));
    }
}
#[cfg(test)]
mod more_tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hot_keys_survive_churn() {
        let mut s = Sieve::default();
        let mut visited: HashSet<Vec<u8>> = HashSet::new();
        let mut live: HashSet<Vec<u8>> = HashSet::new();
        for h in 0..3u8 {
            s.insert(&[b'h', h]);
            live.insert(vec![b'h', h]);
        }
        for i in 0..1000u32 {
            for h in 0..3u8 {
                visited.insert(vec![b'h', h]);
            }
            let k = format!("c{i}").into_bytes();
            s.insert(&k);
            live.insert(k);
            if live.len() > 10 {
                let v = s.victim(|k| visited.remove(k)).unwrap();
                s.remove(&v);
                live.remove(&*v);
            }
        }
        for h in 0..3u8 {
            assert!(live.contains(&vec![b'h', h]), "hot {h} evicted");
        }
    }
}
