//! The sorted set value: a member → score map beside an order-statistic treap over
//! (score, member), so that a member's rank, the element at a rank, the number of elements
//! below a score or lexical bound, and removing a range of ranks all cost O(log n) (plus the
//! elements returned), as Redis's skiplist with spans does (`t_zset.c`).
//!
//! Order is Redis's: by score (`<` on doubles, so `-0` and `0` tie), then by member bytes
//! (`memcmp`, a prefix first). Scores are never NaN: the commands refuse NaN before anything
//! reaches this file.
//!
//! The treap's nodes live in one `Vec`, linked by index; a removed node's slot is filled by the
//! last node (its parent found by a descent on its key), so the vector stays dense and never
//! holds garbage. A node's heap priority is a hash of its member under the map's own randomly
//! seeded hasher: the expected depth is O(log n) whatever the members, and the tree's shape is
//! never observable in a reply.
//!
//! Invariant: `scores` and the treap hold the same (member, score) pairs; every node's `size`
//! is one more than its children's; an in-order walk is ascending by (score, member); a
//! parent's priority is at least its children's; `bytes` equals `recount_bytes()`.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::HashMap;

use crate::cache::value::element_bytes;

/// No node.
const NIL: usize = usize::MAX;

/// Bytes of data one element is charged besides its member: the 8-byte score.
const SCORE_BYTES: usize = 8;

/// The thresholds under which Redis keeps a sorted set in a listpack
/// (`zset-max-listpack-entries`, `zset-max-listpack-value`); only `OBJECT ENCODING` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listpack {
    /// Most elements.
    pub(crate) entries: usize,
    /// Longest member, in bytes.
    pub(crate) value: usize,
}

impl Default for Listpack {
    fn default() -> Self {
        Self {
            entries: 128,
            value: 64,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    member: Bytes,
    score: f64,
    prio: u64,
    left: usize,
    right: usize,
    size: usize,
}

/// Redis's element order: score, then member bytes.
pub(crate) fn cmp_elements(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    if s1 < s2 {
        Ordering::Less
    } else if s1 > s2 {
        Ordering::Greater
    } else {
        m1.cmp(m2)
    }
}

/// A sorted set with the bytes it is charged.
#[derive(Debug, Clone)]
pub(crate) struct ZSetValue {
    scores: HashMap<Bytes, f64>,
    nodes: Vec<Node>,
    root: usize,
    bytes: usize,
    /// Whether Redis would have converted this set to a skiplist by now (sticky, as there).
    skiplist: bool,
}

impl Default for ZSetValue {
    fn default() -> Self {
        Self {
            scores: HashMap::new(),
            nodes: Vec::new(),
            root: NIL,
            bytes: 0,
            skiplist: false,
        }
    }
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .range(0, self.len(), false)
                .into_iter()
                .zip(other.range(0, other.len(), false))
                .all(|((m1, s1), (m2, s2))| m1 == m2 && s1.to_bits() == s2.to_bits())
    }
}

impl ZSetValue {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether the set has no element.
    pub(crate) fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Bytes charged for the elements.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The charge recomputed from the elements (O(n); for audits).
    pub(crate) fn recount_bytes(&self) -> usize {
        self.scores
            .keys()
            .fold(0, |n, m| n.saturating_add(charge(m.len())))
    }

    /// The encoding `OBJECT ENCODING` reports.
    pub(crate) fn encoding(&self) -> &'static str {
        if self.skiplist {
            "skiplist"
        } else {
            "listpack"
        }
    }

    /// [`ZSetValue::insert`] as Redis's `zsetAdd` does it: a new member that would take the
    /// set past `lp` converts it to a skiplist first (never back), and a listpack stores a
    /// score of `-0` as the integer `0` (so it reads back as `0`; a skiplist keeps `-0`).
    pub(crate) fn add(&mut self, member: &[u8], score: f64, lp: Listpack) -> Option<f64> {
        if !self.scores.contains_key(member)
            && (self.len() >= lp.entries || member.len() > lp.value)
        {
            self.skiplist = true;
        }
        let score = if self.skiplist {
            score
        } else {
            listpack_score(score)
        };
        self.insert(member, score)
    }

    /// Sets the encoding of a freshly built set as `zsetConvertToListpackIfNeeded` decides it
    /// (a listpack turns `-0` scores into `0`, which keeps the order: `-0` ties with `0`).
    pub(crate) fn fit_encoding(&mut self, lp: Listpack) {
        let longest = self.scores.keys().map(Bytes::len).max().unwrap_or(0);
        self.skiplist = self.len() > lp.entries || longest > lp.value;
        if !self.skiplist {
            for n in &mut self.nodes {
                n.score = listpack_score(n.score);
            }
            for s in self.scores.values_mut() {
                *s = listpack_score(*s);
            }
        }
    }

    /// The score of `member`.
    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score, adding it if new. Returns the previous score.
    pub(crate) fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        if let Some(&old) = self.scores.get(member) {
            if old.to_bits() != score.to_bits() {
                let idx = self.detach(old, member);
                if let Some(n) = self.nodes.get_mut(idx) {
                    n.score = score;
                    n.left = NIL;
                    n.right = NIL;
                    n.size = 1;
                }
                self.attach(idx);
                if let Some(s) = self.scores.get_mut(member) {
                    *s = score;
                }
            }
            return Some(old);
        }
        let member = Bytes::copy_from_slice(member);
        let prio = self.scores.hasher().hash_one(&member);
        self.bytes = self.bytes.saturating_add(charge(member.len()));
        self.scores.insert(member.clone(), score);
        self.nodes.push(Node {
            member,
            score,
            prio,
            left: NIL,
            right: NIL,
            size: 1,
        });
        self.attach(self.nodes.len() - 1);
        None
    }

    /// Removes `member`; returns its score.
    pub(crate) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (m, score) = self.scores.remove_entry(member)?;
        self.bytes = self.bytes.saturating_sub(charge(m.len()));
        let idx = self.detach(score, member);
        self.free(&mut [idx]);
        Some(score)
    }

    /// The 0-based ascending rank of `member`.
    pub(crate) fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let below = self.count_while(|s, m| cmp_elements(s, m, score, member) == Ordering::Less);
        Some(below)
    }

    /// The element at ascending rank `i`.
    pub(crate) fn at(&self, mut i: usize) -> Option<(Bytes, f64)> {
        let mut t = self.root;
        while let Some(n) = self.nodes.get(t) {
            let left = self.size(n.left);
            match i.cmp(&left) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return Some((n.member.clone(), n.score)),
                Ordering::Greater => {
                    i -= left + 1;
                    t = n.right;
                }
            }
        }
        None
    }

    /// How many elements, in ascending order, satisfy `below` before the first that does not.
    /// `below` must hold for a prefix of the order (e.g. "score < min"); O(log n).
    pub(crate) fn count_while(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut count = 0usize;
        let mut t = self.root;
        while let Some(n) = self.nodes.get(t) {
            if below(n.score, &n.member) {
                count = count.saturating_add(self.size(n.left) + 1);
                t = n.right;
            } else {
                t = n.left;
            }
        }
        count
    }

    /// Up to `count` elements starting at rank `start`, ascending, or with `rev` descending
    /// from the `start`-th highest. O(log n + count).
    pub(crate) fn range(&self, start: usize, count: usize, rev: bool) -> Vec<(Bytes, f64)> {
        let mut out = Vec::with_capacity(count.min(self.len().saturating_sub(start)));
        if count == 0 || start >= self.len() {
            return out;
        }
        // Descend to the start, keeping the nodes still to visit after it (those left of the
        // path in the walking direction are behind us).
        // (the child walked first, the other) in the walking direction.
        let near = |n: &Node| {
            if rev {
                (n.right, n.left)
            } else {
                (n.left, n.right)
            }
        };
        let mut stack = Vec::new();
        let mut t = self.root;
        let mut k = start;
        while let Some(n) = self.nodes.get(t) {
            let (a, b) = near(n);
            let skip = self.size(a);
            match k.cmp(&skip) {
                Ordering::Less => {
                    stack.push(t);
                    t = a;
                }
                Ordering::Equal => {
                    stack.push(t);
                    break;
                }
                Ordering::Greater => {
                    k -= skip + 1;
                    t = b;
                }
            }
        }
        while out.len() < count {
            let Some(t) = stack.pop() else { break };
            let Some(n) = self.nodes.get(t) else { break };
            out.push((n.member.clone(), n.score));
            let (_, mut c) = near(n);
            while let Some(cn) = self.nodes.get(c) {
                stack.push(c);
                c = near(cn).0;
            }
        }
        out
    }

    /// Removes the elements of ascending ranks `first..=last`; returns them in order.
    pub(crate) fn remove_ranks(&mut self, first: usize, last: usize) -> Vec<(Bytes, f64)> {
        if first > last || first >= self.len() {
            return Vec::new();
        }
        let out = self.range(first, last - first + 1, false);
        let (a, b) = self.split_rank(self.root, first);
        let (mid, c) = self.split_rank(b, last - first + 1);
        self.root = self.merge(a, c);
        let mut gone = Vec::with_capacity(out.len());
        self.collect(mid, &mut gone);
        for (m, _) in &out {
            if self.scores.remove(m).is_some() {
                self.bytes = self.bytes.saturating_sub(charge(m.len()));
            }
        }
        self.free(&mut gone);
        out
    }

    /// Removes and returns the lowest (or, with `max`, highest) element.
    pub(crate) fn pop(&mut self, max: bool) -> Option<(Bytes, f64)> {
        let i = if max { self.len().checked_sub(1)? } else { 0 };
        self.remove_ranks(i, i).pop()
    }

    /// Every element, ascending.
    pub(crate) fn to_vec(&self) -> Vec<(Bytes, f64)> {
        self.range(0, self.len(), false)
    }

    /// Every (member, score) in the map's (hash) order, without walking the tree.
    pub(crate) fn iter_unordered(&self) -> impl Iterator<Item = (&Bytes, f64)> {
        self.scores.iter().map(|(m, s)| (m, *s))
    }

    /// The map's hasher (ZSCAN's cursor is a hash of the member under it).
    pub(crate) fn hasher(&self) -> &impl BuildHasher {
        self.scores.hasher()
    }

    // ---- treap internals ----

    fn size(&self, t: usize) -> usize {
        self.nodes.get(t).map_or(0, |n| n.size)
    }

    fn update(&mut self, t: usize) {
        let (l, r) = match self.nodes.get(t) {
            Some(n) => (n.left, n.right),
            None => return,
        };
        let size = self.size(l) + self.size(r) + 1;
        if let Some(n) = self.nodes.get_mut(t) {
            n.size = size;
        }
    }

    fn set_left(&mut self, t: usize, c: usize) {
        if let Some(n) = self.nodes.get_mut(t) {
            n.left = c;
        }
        self.update(t);
    }

    fn set_right(&mut self, t: usize, c: usize) {
        if let Some(n) = self.nodes.get_mut(t) {
            n.right = c;
        }
        self.update(t);
    }

    /// Splits `t` into the elements ordered before (score, member) and the rest.
    fn split_key(&mut self, t: usize, score: f64, member: &[u8]) -> (usize, usize) {
        let Some(n) = self.nodes.get(t) else {
            return (NIL, NIL);
        };
        if cmp_elements(n.score, &n.member, score, member) == Ordering::Less {
            let r = n.right;
            let (a, b) = self.split_key(r, score, member);
            self.set_right(t, a);
            (t, b)
        } else {
            let l = n.left;
            let (a, b) = self.split_key(l, score, member);
            self.set_left(t, b);
            (a, t)
        }
    }

    /// Splits `t` into its first `k` elements and the rest.
    fn split_rank(&mut self, t: usize, k: usize) -> (usize, usize) {
        let Some(n) = self.nodes.get(t) else {
            return (NIL, NIL);
        };
        let (l, r) = (n.left, n.right);
        let left = self.size(l);
        if k <= left {
            let (a, b) = self.split_rank(l, k);
            self.set_left(t, b);
            (a, t)
        } else {
            let (a, b) = self.split_rank(r, k - left - 1);
            self.set_right(t, a);
            (t, b)
        }
    }

    /// Joins two treaps, every element of `a` ordered before every element of `b`.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let (Some(na), Some(nb)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return if a == NIL { b } else { a };
        };
        if na.prio >= nb.prio {
            let r = na.right;
            let m = self.merge(r, b);
            self.set_right(a, m);
            a
        } else {
            let l = nb.left;
            let m = self.merge(a, l);
            self.set_left(b, m);
            b
        }
    }

    /// Links the lone node `idx` into the tree by its key.
    fn attach(&mut self, idx: usize) {
        let Some(n) = self.nodes.get(idx) else { return };
        let (score, member) = (n.score, n.member.clone());
        let (a, b) = self.split_key(self.root, score, &member);
        let left = self.merge(a, idx);
        self.root = self.merge(left, b);
    }

    /// Unlinks the node of (score, member) from the tree and returns its index.
    fn detach(&mut self, score: f64, member: &[u8]) -> usize {
        let (a, b) = self.split_key(self.root, score, member);
        let (mid, c) = self.split_rank(b, 1);
        self.root = self.merge(a, c);
        debug_assert!(self.nodes.get(mid).is_some_and(|n| &n.member[..] == member));
        mid
    }

    /// The nodes of subtree `t`.
    fn collect(&self, t: usize, out: &mut Vec<usize>) {
        let mut stack = vec![t];
        while let Some(t) = stack.pop() {
            if let Some(n) = self.nodes.get(t) {
                out.push(t);
                stack.push(n.left);
                stack.push(n.right);
            }
        }
    }

    /// Drops unlinked nodes, moving the last node into each freed slot.
    fn free(&mut self, idx: &mut [usize]) {
        idx.sort_unstable_by(|a, b| b.cmp(a));
        for &i in idx.iter() {
            let last = self.nodes.len().saturating_sub(1);
            if i != last {
                self.repoint(last, i);
            }
            if i < self.nodes.len() {
                self.nodes.swap_remove(i);
            }
        }
    }

    /// Makes the link that points at node `from` point at `to` instead.
    fn repoint(&mut self, from: usize, to: usize) {
        if self.root == from {
            self.root = to;
            return;
        }
        let Some(n) = self.nodes.get(from) else {
            return;
        };
        let (score, member) = (n.score, n.member.clone());
        let mut t = self.root;
        while let Some(n) = self.nodes.get(t) {
            let go_left = cmp_elements(score, &member, n.score, &n.member) == Ordering::Less;
            let c = if go_left { n.left } else { n.right };
            if c == from {
                if let Some(n) = self.nodes.get_mut(t) {
                    if go_left {
                        n.left = to;
                    } else {
                        n.right = to;
                    }
                }
                return;
            }
            t = c;
        }
    }

    /// Checks every invariant of the module doc (O(n); for tests).
    #[cfg(test)]
    fn check(&self) {
        assert_eq!(self.size(self.root), self.scores.len());
        assert_eq!(self.nodes.len(), self.scores.len());
        for (i, n) in self.nodes.iter().enumerate() {
            assert_eq!(
                n.size,
                self.size(n.left) + self.size(n.right) + 1,
                "size of {i}"
            );
            for c in [n.left, n.right] {
                if let Some(cn) = self.nodes.get(c) {
                    assert!(cn.prio <= n.prio, "heap order at {i}");
                }
            }
        }
        let all = self.to_vec();
        for w in all.windows(2) {
            assert_eq!(
                cmp_elements(w[0].1, &w[0].0, w[1].1, &w[1].0),
                Ordering::Less
            );
        }
        for (m, s) in &all {
            assert_eq!(self.scores.get(m).map(|x| x.to_bits()), Some(s.to_bits()));
        }
        assert_eq!(self.bytes, self.recount_bytes());
    }
}

/// A score as a listpack stores it: `-0` is written as the integer `0`.
fn listpack_score(score: f64) -> f64 {
    if score == 0.0 { 0.0 } else { score }
}

/// Bytes one element with a member of `len` bytes is charged.
fn charge(len: usize) -> usize {
    element_bytes(len.saturating_add(SCORE_BYTES))
}

impl FromIterator<(Bytes, f64)> for ZSetValue {
    fn from_iter<I: IntoIterator<Item = (Bytes, f64)>>(iter: I) -> Self {
        let mut z = Self::default();
        for (m, s) in iter {
            z.insert(&m, s);
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
        RemoveRanks(u8, u8),
        Pop(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40, -5i8..5).prop_map(|(m, s)| Op::Insert(m, s)),
            2 => (0u8..40).prop_map(Op::Remove),
            1 => (0u8..40, 0u8..40).prop_map(|(a, b)| Op::RemoveRanks(a, b)),
            1 => any::<bool>().prop_map(Op::Pop),
        ]
    }

    fn member(m: u8) -> Vec<u8> {
        // Members of different lengths, so prefixes order first.
        vec![b'a' + m % 3; usize::from(m / 3 % 4) + 1]
            .into_iter()
            .chain(std::iter::once(m))
            .collect()
    }

    /// The model: a Vec kept sorted in Redis's order.
    fn sorted(model: &mut [(Vec<u8>, f64)]) {
        model.sort_by(|a, b| cmp_elements(a.1, &a.0, b.1, &b.0));
    }

    proptest! {
        #[test]
        fn agrees_with_a_sorted_vec(ops in proptest::collection::vec(op(), 1..200)) {
            let mut z = ZSetValue::default();
            let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(m, s) => {
                        let m = member(m);
                        let s = f64::from(s) / 2.0;
                        let old = model.iter().position(|e| e.0 == m).map(|i| model.remove(i).1);
                        model.push((m.clone(), s));
                        sorted(&mut model);
                        prop_assert_eq!(z.insert(&m, s), old);
                    }
                    Op::Remove(m) => {
                        let m = member(m);
                        let old = model.iter().position(|e| e.0 == m).map(|i| model.remove(i).1);
                        prop_assert_eq!(z.remove(&m), old);
                    }
                    Op::RemoveRanks(a, b) => {
                        let (a, b) = (usize::from(a), usize::from(b));
                        let want: Vec<(Vec<u8>, f64)> = if a <= b && a < model.len() {
                            model.drain(a..=b.min(model.len() - 1)).collect()
                        } else {
                            Vec::new()
                        };
                        let got: Vec<(Vec<u8>, f64)> =
                            z.remove_ranks(a, b).into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Pop(max) => {
                        let want = if max { model.pop() } else if model.is_empty() { None } else { Some(model.remove(0)) };
                        prop_assert_eq!(z.pop(max).map(|(m, s)| (m.to_vec(), s)), want);
                    }
                }
                z.check();
                prop_assert_eq!(z.len(), model.len());
                for (i, (m, s)) in model.iter().enumerate() {
                    prop_assert_eq!(z.rank(m), Some(i));
                    prop_assert_eq!(z.at(i), Some((Bytes::copy_from_slice(m), *s)));
                }
                let n = model.len();
                for start in 0..=n {
                    for count in [0, 1, 3, n] {
                        let fwd: Vec<_> = model.iter().skip(start).take(count).cloned().collect();
                        let got: Vec<_> = z.range(start, count, false).into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                        prop_assert_eq!(got, fwd);
                        let back: Vec<_> = model.iter().rev().skip(start).take(count).cloned().collect();
                        let got: Vec<_> = z.range(start, count, true).into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                        prop_assert_eq!(got, back);
                    }
                }
                for bound in -6i8..6 {
                    let b = f64::from(bound) / 2.0;
                    let want = model.iter().take_while(|e| e.1 < b).count();
                    prop_assert_eq!(z.count_while(|s, _| s < b), want);
                }
            }
        }
    }

    #[test]
    fn order_is_score_then_member_bytes() {
        let mut z = ZSetValue::default();
        z.insert(b"b", 1.0);
        z.insert(b"a", 1.0);
        z.insert(b"ab", 1.0);
        z.insert(b"z", 0.5);
        z.insert(b"neg", -0.0);
        z.insert(b"inf", f64::INFINITY);
        z.insert(b"ninf", f64::NEG_INFINITY);
        let order: Vec<Bytes> = z.to_vec().into_iter().map(|(m, _)| m).collect();
        assert_eq!(
            order,
            ["ninf", "neg", "z", "a", "ab", "b", "inf"].map(|s| Bytes::from_static(s.as_bytes()))
        );
        // -0 and 0 tie on score, so the member decides.
        z.insert(b"zero", 0.0);
        assert_eq!(z.rank(b"neg"), Some(1));
        assert_eq!(z.rank(b"zero"), Some(2));
        z.check();
    }

    #[test]
    fn encoding_follows_the_listpack_thresholds_and_sticks() {
        let lp = Listpack {
            entries: 2,
            value: 4,
        };
        let mut z = ZSetValue::default();
        z.add(b"a", 1.0, lp);
        z.add(b"b", -0.0, lp);
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(
            z.score(b"b").map(f64::to_bits),
            Some(0f64.to_bits()),
            "listpack -0 is 0"
        );
        z.add(b"c", 1.0, lp);
        assert_eq!(z.encoding(), "skiplist");
        z.add(b"d", -0.0, lp);
        assert_eq!(z.score(b"d").map(f64::to_bits), Some((-0f64).to_bits()));
        z.remove(b"c");
        z.remove(b"d");
        assert_eq!(
            z.encoding(),
            "skiplist",
            "Redis never converts back on removal"
        );
        z.fit_encoding(lp);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"longer", 1.0);
        z.fit_encoding(lp);
        assert_eq!(z.encoding(), "skiplist");
        let zero = Listpack {
            entries: 0,
            value: 64,
        };
        let mut z = ZSetValue::default();
        z.add(b"a", 1.0, zero);
        assert_eq!(
            z.encoding(),
            "skiplist",
            "entries 0 creates a skiplist at once"
        );
        z.check();
    }

    #[test]
    fn charge_follows_every_change() {
        let mut z = ZSetValue::default();
        z.insert(b"abc", 1.0);
        assert_eq!(
            z.bytes(),
            3 + 8 + crate::cache::value::ELEMENT_OVERHEAD_BYTES
        );
        z.insert(b"abc", 2.0);
        z.insert(b"de", 2.0);
        z.remove_ranks(0, 0);
        z.pop(true);
        assert_eq!(z.bytes(), 0);
        z.check();
    }
}
