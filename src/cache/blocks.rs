//! A double-ended queue stored in blocks of [`BLOCK_LEN`] elements, the shape of a list's
//! elements (as Redis's quicklist keeps a list in nodes instead of one array).
//!
//! One contiguous ring (`VecDeque`) doubles as a list grows: every doubling copies the whole
//! list into a new allocation twice its size, whose pages the kernel then faults in one by one,
//! and up to half of it stays reserved and unused. Blocks of a fixed size grow a list one block
//! at a time, and a block freed by pops is reused by the allocator for the next.
//!
//! Invariant: no block is empty, and every block but the first and the last holds exactly
//! [`BLOCK_LEN`] elements, so the block of an index is found by arithmetic.

use std::collections::VecDeque;

/// Elements per block: 170 list elements (24 bytes each) fill 4 KiB.
pub(crate) const BLOCK_LEN: usize = 170;

/// A deque of `T` in blocks (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct Blocks<T> {
    blocks: VecDeque<VecDeque<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T: PartialEq> PartialEq for Blocks<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for Blocks<T> {}

impl<T> Blocks<T> {
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block and the position in it of element `i` (`i < len`).
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len {
            return None;
        }
        let first = self.blocks.front()?.len();
        if i < first {
            return Some((0, i));
        }
        let j = i - first;
        Some((1 + j / BLOCK_LEN, j % BLOCK_LEN))
    }

    /// Element `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let (b, at) = self.locate(i)?;
        self.blocks.get(b)?.get(at)
    }

    /// Element `i`, writable.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let (b, at) = self.locate(i)?;
        self.blocks.get_mut(b)?.get_mut(at)
    }

    /// The elements from the head.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.blocks.iter().flatten()
    }

    /// The elements at `start..=stop`, from `start`; empty when `start` is past `stop` or the
    /// end.
    pub(crate) fn range(
        &self,
        start: usize,
        stop: usize,
    ) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let stop = stop.min(self.len.saturating_sub(1));
        let found = match (self.locate(start), self.locate(stop)) {
            (Some(a), Some(b)) if start <= stop => Some((a, b)),
            _ => None,
        };
        // The blocks to read, the offset in the first, and the last's index and offset.
        let (blocks, first_at, (last, last_at)) = match found {
            Some(((b0, o0), (b1, o1))) => (b0..b1 + 1, o0, (b1 - b0, o1)),
            None => (0..0, 0, (0, 0)),
        };
        self.blocks
            .range(blocks)
            .enumerate()
            .flat_map(move |(n, block)| {
                let hi = if n == last { last_at + 1 } else { block.len() };
                let hi = hi.min(block.len());
                let lo = if n == 0 { first_at.min(hi) } else { 0 };
                block.range(lo..hi)
            })
    }

    /// A new block holding `v`.
    fn block_of(v: T) -> VecDeque<T> {
        let mut block = VecDeque::with_capacity(BLOCK_LEN);
        block.push_back(v);
        block
    }

    /// Adds `v` at the head.
    pub(crate) fn push_front(&mut self, v: T) {
        match self.blocks.front_mut() {
            Some(b) if b.len() < BLOCK_LEN => b.push_front(v),
            _ => self.blocks.push_front(Self::block_of(v)),
        }
        self.len += 1;
    }

    /// Adds `v` at the tail.
    pub(crate) fn push_back(&mut self, v: T) {
        match self.blocks.back_mut() {
            Some(b) if b.len() < BLOCK_LEN => b.push_back(v),
            _ => self.blocks.push_back(Self::block_of(v)),
        }
        self.len += 1;
    }

    /// Removes the head.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let b = self.blocks.front_mut()?;
        let v = b.pop_front()?;
        if b.is_empty() {
            self.blocks.pop_front();
        }
        self.len -= 1;
        Some(v)
    }

    /// Removes the tail.
    pub(crate) fn pop_back(&mut self) -> Option<T> {
        let b = self.blocks.back_mut()?;
        let v = b.pop_back()?;
        if b.is_empty() {
            self.blocks.pop_back();
        }
        self.len -= 1;
        Some(v)
    }

    /// Inserts `v` before element `i` (at the tail when `i` is the length, or past it).
    pub(crate) fn insert(&mut self, i: usize, v: T) {
        if i == 0 {
            return self.push_front(v);
        }
        let Some((b, at)) = self.locate(i) else {
            return self.push_back(v);
        };
        let Some(block) = self.blocks.get_mut(b) else {
            return self.push_back(v);
        };
        block.insert(at, v);
        self.len += 1;
        // A full block passes its last element on to the next one, until a block has room:
        // the blocks in the middle stay full.
        let mut b = b;
        loop {
            let Some(block) = self.blocks.get_mut(b) else {
                return;
            };
            if block.len() <= BLOCK_LEN {
                return;
            }
            let Some(carry) = block.pop_back() else {
                return;
            };
            b += 1;
            match self.blocks.get_mut(b) {
                Some(next) => next.push_front(carry),
                None => {
                    self.blocks.push_back(Self::block_of(carry));
                    return;
                }
            }
        }
    }

    /// Removes every element.
    pub(crate) fn clear(&mut self) {
        self.blocks.clear();
        self.len = 0;
    }
}

impl<T> FromIterator<T> for Blocks<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = Self::default();
        for v in iter {
            out.push_back(v);
        }
        out
    }
}

impl<T> IntoIterator for Blocks<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::collections::vec_deque::IntoIter<VecDeque<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.blocks.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        PushFront(u32),
        PushBack(u32),
        PopFront,
        PopBack,
        Insert(usize, u32),
        Set(usize, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u32>().prop_map(Op::PushFront),
            4 => any::<u32>().prop_map(Op::PushBack),
            1 => Just(Op::PopFront),
            1 => Just(Op::PopBack),
            2 => (any::<usize>(), any::<u32>()).prop_map(|(i, v)| Op::Insert(i, v)),
            1 => (any::<usize>(), any::<u32>()).prop_map(|(i, v)| Op::Set(i, v)),
        ]
    }

    /// The blocks' invariant (module doc).
    fn check_shape(b: &Blocks<u32>) {
        let n = b.blocks.len();
        for (k, block) in b.blocks.iter().enumerate() {
            assert!(!block.is_empty(), "block {k} of {n} is empty");
            assert!(block.len() <= BLOCK_LEN, "block {k} over BLOCK_LEN");
            if k > 0 && k + 1 < n {
                assert_eq!(block.len(), BLOCK_LEN, "middle block {k} of {n} not full");
            }
        }
        assert_eq!(b.blocks.iter().map(VecDeque::len).sum::<usize>(), b.len);
    }

    proptest! {
        /// Every operation does to the blocks what it does to one `VecDeque`, and the shape
        /// holds after each; sizes go past several blocks.
        #[test]
        fn blocks_behave_as_one_deque(
            seed in proptest::collection::vec(any::<u32>(), 0..1200),
            ops in proptest::collection::vec(op(), 0..300),
            ranges in proptest::collection::vec((0usize..1500, 0usize..1500), 0..8),
        ) {
            let mut b: Blocks<u32> = seed.iter().copied().collect();
            let mut m: VecDeque<u32> = seed.iter().copied().collect();
            check_shape(&b);
            for op in ops {
                match op {
                    Op::PushFront(v) => { b.push_front(v); m.push_front(v); }
                    Op::PushBack(v) => { b.push_back(v); m.push_back(v); }
                    Op::PopFront => prop_assert_eq!(b.pop_front(), m.pop_front()),
                    Op::PopBack => prop_assert_eq!(b.pop_back(), m.pop_back()),
                    Op::Insert(i, v) => {
                        let i = i % (m.len() + 1);
                        b.insert(i, v);
                        m.insert(i, v);
                    }
                    Op::Set(i, v) => {
                        let i = i % (m.len() + 1);
                        if let Some(x) = b.get_mut(i) { *x = v; }
                        if let Some(x) = m.get_mut(i) { *x = v; }
                    }
                }
                check_shape(&b);
                prop_assert_eq!(b.len(), m.len());
            }
            prop_assert!(b.iter().eq(m.iter()));
            prop_assert!(b.iter().rev().eq(m.iter().rev()));
            for i in 0..=m.len() {
                prop_assert_eq!(b.get(i), m.get(i));
            }
            for (start, stop) in ranges {
                let want: Vec<_> = if start <= stop && start < m.len() {
                    m.range(start..=stop.min(m.len() - 1)).collect()
                } else {
                    Vec::new()
                };
                prop_assert_eq!(b.range(start, stop).collect::<Vec<_>>(), want.clone());
                let back: Vec<_> = b.range(start, stop).rev().collect();
                prop_assert_eq!(back, want.into_iter().rev().collect::<Vec<_>>());
            }
            prop_assert!(b.clone().into_iter().eq(m.into_iter()));
        }
    }

    #[test]
    fn a_list_grows_and_shrinks_a_block_at_a_time() {
        let mut b = Blocks::default();
        for i in 0..(3 * BLOCK_LEN as u32) {
            b.push_front(i);
        }
        assert_eq!(b.blocks.len(), 3);
        assert!(b.blocks.iter().all(|block| block.capacity() == BLOCK_LEN));
        for _ in 0..BLOCK_LEN {
            b.pop_back();
        }
        assert_eq!(b.blocks.len(), 2);
        b.clear();
        assert!(b.is_empty() && b.blocks.is_empty());
    }
}
