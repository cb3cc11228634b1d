//! The sparse indexes beside each segment: `.index` maps a relative offset to a byte position,
//! `.timeindex` maps a timestamp to a relative offset. Both are Kafka's layouts (big-endian,
//! 8- and 12-byte entries) and are pure in-memory structures here; the partition writes them to
//! disk when a segment is sealed and rebuilds them from the segment when they are missing or
//! fail validation.

#![deny(clippy::indexing_slicing)]

/// Bytes per `.index` entry: relative offset (u32) + position (u32).
pub(crate) const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes per `.timeindex` entry: timestamp (i64) + relative offset (u32).
pub(crate) const TIME_ENTRY_BYTES: usize = 12;

/// Offset index of one segment: entries sorted by relative offset and by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    /// `(offset - segment base, byte position of the batch holding it)`.
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; entries must arrive in increasing offset and position order, others are
    /// ignored (so the index stays sorted whatever the caller does).
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if self
            .entries
            .last()
            .is_none_or(|&(o, p)| relative_offset > o && position > p)
        {
            self.entries.push((relative_offset, position));
        }
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last entry: `(offset - segment base, byte position)` of the last indexed batch.
    #[must_use]
    pub fn last_entry(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    /// Byte position from which to scan for `relative_offset`: the position of the largest
    /// indexed offset not above it, or 0.
    #[must_use]
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        i.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map_or(0, |&(_, p)| p)
    }

    /// The first indexed batch position at or after `position`, if any: a batch boundary, so
    /// a read that ends there ends between two batches.
    #[must_use]
    pub fn boundary_at_or_after(&self, position: u32) -> Option<u32> {
        let i = self.entries.partition_point(|&(_, p)| p < position);
        self.entries.get(i).map(|&(_, p)| p)
    }

    /// Encodes every entry in the `.index` file layout.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_BYTES);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Decodes a `.index` file; `None` when its length is not a multiple of the entry size, the
    /// entries are not strictly increasing, or a position is at or past `segment_len`.
    #[must_use]
    pub fn decode(bytes: &[u8], segment_len: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(OFFSET_ENTRY_BYTES) {
            return None;
        }
        let mut index = Self::new();
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
            let (o, p) = chunk.split_at(4);
            let o = u32::from_be_bytes(o.try_into().ok()?);
            let p = u32::from_be_bytes(p.try_into().ok()?);
            let ordered = index
                .entries
                .last()
                .is_none_or(|&(lo, lp)| o > lo && p > lp);
            if !ordered || u64::from(p) >= segment_len {
                return None;
            }
            index.entries.push((o, p));
        }
        Some(index)
    }
}

/// Time index of one segment: entries with strictly increasing timestamps and offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    /// `(largest timestamp so far, offset - segment base where it was reached)`.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry when both its timestamp and offset exceed the last one's.
    pub fn push(&mut self, timestamp_ms: i64, relative_offset: u32) {
        if self
            .entries
            .last()
            .is_none_or(|&(t, o)| timestamp_ms > t && relative_offset > o)
        {
            self.entries.push((timestamp_ms, relative_offset));
        }
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Largest timestamp recorded, if any.
    #[must_use]
    pub fn max_timestamp_ms(&self) -> Option<i64> {
        self.entries.last().map(|&(t, _)| t)
    }

    /// Relative offset from which to scan for the first record with timestamp `>= ts`: the
    /// offset of the last entry whose timestamp is below `ts` (every record before it is older),
    /// or 0.
    #[must_use]
    pub fn lookup(&self, timestamp_ms: i64) -> u32 {
        let i = self.entries.partition_point(|&(t, _)| t < timestamp_ms);
        i.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map_or(0, |&(_, o)| o)
    }

    /// Encodes every entry in the `.timeindex` file layout.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_ENTRY_BYTES);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    /// Decodes a `.timeindex` file; `None` when it is malformed or out of order.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(TIME_ENTRY_BYTES) {
            return None;
        }
        let mut index = Self::new();
        for chunk in bytes.chunks_exact(TIME_ENTRY_BYTES) {
            let (t, o) = chunk.split_at(8);
            let t = i64::from_be_bytes(t.try_into().ok()?);
            let o = u32::from_be_bytes(o.try_into().ok()?);
            if !index
                .entries
                .last()
                .is_none_or(|&(lt, lo)| t > lt && o > lo)
            {
                return None;
            }
            index.entries.push((t, o));
        }
        Some(index)
    }
}
