//! The stream value: entries keyed by `<ms>-<seq>` IDs in ascending order, with Redis 7.0's
//! bookkeeping (last generated ID, largest deleted ID, entries ever added, first ID).
//!
//! Entries live in a `BTreeMap` keyed by [`StreamId`] rather than Redis's radix tree of
//! listpack nodes: range reads, deletion of any ID and trimming from the head are all
//! O(log n) per entry with no node splitting or tombstones to maintain, and the reply shapes
//! do not depend on the node layout. What does depend on it — which entries a trim removes as
//! whole nodes, so where an approximate (`~`) trim or its LIMIT stops — is kept as Redis keeps
//! it: a list of [`Node`]s, each the run of IDs one listpack would hold, a new node started
//! when the tail one has had `stream-node-max-entries` entries appended (deleted ones count,
//! as in Redis), a node dropped when its last live entry goes.
//!
//! Invariants: every entry's ID is at most `last_id`; `first_id` is the smallest entry's ID
//! (0-0 when empty); `entries_added` is at least the length; `bytes` equals
//! [`StreamValue::recount_bytes`]; the nodes' live counts sum to the length, each node's live
//! entries lie in `[first, next node's first)`, and no node has none.

use std::collections::BTreeMap;
use std::ops::{Bound, Deref};

use bytes::Bytes;

use crate::cache::value::element_bytes;

/// Redis's `stream-node-max-entries` default: entries appended to a node before a new one.
pub(crate) const NODE_ENTRIES: usize = 100;

/// One emulated listpack node: the entries appended from `first` on, until the next node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The first ID appended to the node (its radix-tree key in Redis).
    first: StreamId,
    /// The last ID appended to it.
    last: StreamId,
    /// Entries appended (live and deleted: Redis's count for starting a new node).
    appended: usize,
    /// Live entries.
    live: usize,
}

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct StreamId {
    /// Milliseconds part.
    pub(crate) ms: u64,
    /// Sequence part.
    pub(crate) seq: u64,
}

impl StreamId {
    /// The smallest ID.
    pub(crate) const MIN: Self = Self { ms: 0, seq: 0 };
    /// The largest ID.
    pub(crate) const MAX: Self = Self {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An ID.
    pub(crate) const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The next ID (`streamIncrID`), `None` past the largest.
    pub(crate) fn incr(self) -> Option<Self> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(Self::new(self.ms + 1, 0))
            }
        } else {
            Some(Self::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (`streamDecrID`), `None` before the smallest.
    pub(crate) fn decr(self) -> Option<Self> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(Self::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(Self::new(self.ms, self.seq - 1))
        }
    }

    /// `<ms>-<seq>` as Redis prints it.
    pub(crate) fn to_bytes(self) -> Bytes {
        Bytes::from(format!("{}-{}", self.ms, self.seq))
    }
}

/// One entry's fields and values, alternating.
pub(crate) type Fields = Box<[Bytes]>;

/// Bytes one entry is charged: its ID and node slot plus each field and value.
fn entry_bytes(fields: &[Bytes]) -> usize {
    fields.iter().fold(element_bytes(16), |n, f| {
        n.saturating_add(element_bytes(f.len()))
    })
}

/// A stream with the bytes it is charged.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StreamValue {
    entries: BTreeMap<StreamId, Fields>,
    /// The last ID generated or set (XSETID).
    pub(crate) last_id: StreamId,
    /// The largest ID ever deleted by XDEL (or set by XSETID MAXDELETEDID).
    pub(crate) max_deleted: StreamId,
    /// Entries ever added.
    pub(crate) entries_added: u64,
    /// The first entry's ID (0-0 when empty).
    pub(crate) first_id: StreamId,
    bytes: usize,
    nodes: std::collections::VecDeque<Node>,
    /// Consumer groups by name (Redis's radix tree order: byte order); changed only through
    /// the methods that keep `group_bytes`.
    groups: BTreeMap<Bytes, Group>,
    /// Bytes charged for the groups: the sum of [`Group::bytes`].
    group_bytes: usize,
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Group {
    /// The last ID delivered to the group.
    pub(crate) last_id: StreamId,
    /// Entries the group has read, when known (Redis's `entries_read`, -1 when not).
    pub(crate) entries_read: i64,
    /// Pending entries: delivered, not yet acknowledged.
    pub(crate) pel: BTreeMap<StreamId, Pending>,
    /// Consumers by name; added and removed only through [`Group::consumer_mut`] and
    /// [`Group::delete_consumer`], which keep `consumer_name_bytes`.
    pub(crate) consumers: BTreeMap<Bytes, Consumer>,
    /// The consumers' names' bytes, summed.
    consumer_name_bytes: usize,
}

/// One pending entry (Redis's `streamNACK`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    /// The consumer it was delivered to.
    pub(crate) consumer: Bytes,
    /// When it was last delivered (ms on the injected clock).
    pub(crate) delivery_time_ms: u64,
    /// Times it was delivered.
    pub(crate) delivery_count: u64,
}

/// A consumer: when it was last seen and the IDs pending for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Consumer {
    /// When it last read or claimed (ms on the injected clock).
    pub(crate) seen_time_ms: u64,
    /// Its pending IDs (each also in the group's PEL, naming it).
    pub(crate) pel: std::collections::BTreeSet<StreamId>,
}

/// Redis's `SCG_INVALID_ENTRIES_READ`.
pub(crate) const ENTRIES_READ_UNKNOWN: i64 = -1;

/// Bytes a group is charged besides its name: its last ID, entries read and two maps.
const GROUP_BYTES: usize = 64;
/// Bytes a pending entry is charged: its ID and [`Pending`] in the group's list, and its ID in
/// its consumer's set.
const PENDING_BYTES: usize = 16 + 48 + 16;
/// Bytes a consumer is charged besides its name: its seen time and its set.
const CONSUMER_BYTES: usize = 32;

impl Group {
    /// A group at `last_id` with `entries_read` (-1: unknown).
    pub(crate) fn new(last_id: StreamId, entries_read: i64) -> Self {
        Self {
            last_id,
            entries_read,
            ..Self::default()
        }
    }

    /// Removes `id` from the PEL and its consumer's; whether it was pending.
    pub(crate) fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Makes `id` pending for `consumer` (created if missing), delivered at `now_ms`: a new
    /// entry counts 1 delivery; one pending elsewhere moves with its count reset to 1
    /// (`streamReplyWithRange`'s NACK handling).
    pub(crate) fn deliver(&mut self, id: StreamId, consumer: &Bytes, now_ms: u64) {
        if let Some(p) = self.pel.get_mut(&id) {
            let old = std::mem::replace(&mut p.consumer, consumer.clone());
            p.delivery_time_ms = now_ms;
            p.delivery_count = 1;
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        } else {
            self.pel.insert(
                id,
                Pending {
                    consumer: consumer.clone(),
                    delivery_time_ms: now_ms,
                    delivery_count: 1,
                },
            );
        }
        self.consumer_mut(consumer, now_ms).pel.insert(id);
    }

    /// The consumer named `name`, created (seen at `now_ms`) when missing.
    pub(crate) fn consumer_mut(&mut self, name: &Bytes, now_ms: u64) -> &mut Consumer {
        let names = &mut self.consumer_name_bytes;
        self.consumers.entry(name.clone()).or_insert_with(|| {
            *names = names.saturating_add(name.len());
            Consumer {
                seen_time_ms: now_ms,
                pel: std::collections::BTreeSet::new(),
            }
        })
    }

    /// Bytes the group is charged, its name of `name_len` bytes included: O(1), from the
    /// sizes of its maps.
    pub(crate) fn bytes(&self, name_len: usize) -> usize {
        self.charge(name_len, self.consumer_name_bytes)
    }

    /// The charge with the consumers' names summing to `consumer_names` bytes.
    fn charge(&self, name_len: usize, consumer_names: usize) -> usize {
        let pending = self.pel.len().saturating_mul(element_bytes(PENDING_BYTES));
        let consumers = self
            .consumers
            .len()
            .saturating_mul(element_bytes(CONSUMER_BYTES));
        element_bytes(GROUP_BYTES.saturating_add(name_len))
            .saturating_add(pending)
            .saturating_add(consumers)
            .saturating_add(consumer_names)
    }

    /// Moves pending `id` to `consumer` (`XCLAIM`/`XAUTOCLAIM`).
    pub(crate) fn claim(&mut self, id: StreamId, consumer: &Bytes, now_ms: u64) {
        let Some(p) = self.pel.get_mut(&id) else {
            return;
        };
        if p.consumer != *consumer {
            let old = std::mem::replace(&mut p.consumer, consumer.clone());
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        self.consumer_mut(consumer, now_ms).pel.insert(id);
    }

    /// Deletes a consumer and its pending entries; returns how many were pending.
    pub(crate) fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        self.consumer_name_bytes = self.consumer_name_bytes.saturating_sub(name.len());
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }
}

/// A group borrowed for changing: when dropped, the stream's charge for it is updated from
/// its size then (so every change made through it is charged).
#[derive(Debug)]
pub(crate) struct GroupMut<'a> {
    group: &'a mut Group,
    name_len: usize,
    before: usize,
    total: &'a mut usize,
}

impl Deref for GroupMut<'_> {
    type Target = Group;
    fn deref(&self) -> &Group {
        self.group
    }
}

impl std::ops::DerefMut for GroupMut<'_> {
    fn deref_mut(&mut self) -> &mut Group {
        self.group
    }
}

impl Drop for GroupMut<'_> {
    fn drop(&mut self) {
        let now = self.group.bytes(self.name_len);
        *self.total = self.total.saturating_sub(self.before).saturating_add(now);
    }
}

impl Deref for StreamValue {
    type Target = BTreeMap<StreamId, Fields>;
    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl StreamValue {
    /// Bytes charged for the entries and the consumer groups.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.saturating_add(self.group_bytes)
    }

    /// The charge recomputed from the entries and groups (O(n); for audits).
    pub(crate) fn recount_bytes(&self) -> usize {
        let entries = self
            .entries
            .values()
            .fold(0usize, |n, f| n.saturating_add(entry_bytes(f)));
        self.groups.iter().fold(entries, |n, (name, g)| {
            let names = g.consumers.keys().map(Bytes::len).sum();
            n.saturating_add(g.charge(name.len(), names))
        })
    }

    /// The consumer groups by name.
    pub(crate) fn groups(&self) -> &BTreeMap<Bytes, Group> {
        &self.groups
    }

    /// Group `name` for changing; its charge is settled when the guard drops.
    pub(crate) fn group_mut(&mut self, name: &[u8]) -> Option<GroupMut<'_>> {
        let group = self.groups.get_mut(name)?;
        Some(GroupMut {
            before: group.bytes(name.len()),
            name_len: name.len(),
            group,
            total: &mut self.group_bytes,
        })
    }

    /// Removes group `name` and its charge.
    pub(crate) fn take_group(&mut self, name: &[u8]) -> Option<Group> {
        let (key, g) = self.groups.remove_entry(name)?;
        self.group_bytes = self.group_bytes.saturating_sub(g.bytes(key.len()));
        Some(g)
    }

    /// Puts group `g` under `name` (replacing any there) with its charge.
    pub(crate) fn put_group(&mut self, name: Bytes, g: Group) {
        self.group_bytes = self.group_bytes.saturating_add(g.bytes(name.len()));
        let name_len = name.len();
        if let Some(old) = self.groups.insert(name, g) {
            self.group_bytes = self.group_bytes.saturating_sub(old.bytes(name_len));
        }
    }

    /// Appends an entry under `id`, which the caller has checked is above `last_id` (and every
    /// entry); a new node starts once the tail node has had `node_max` entries appended (0: no
    /// limit).
    pub(crate) fn append(&mut self, id: StreamId, fields: Fields, node_max: usize) {
        self.push_entry(id, fields, node_max);
        self.last_id = id;
        self.entries_added = self.entries_added.saturating_add(1);
    }

    /// Adds an entry above every other one, with its node, and no other bookkeeping.
    fn push_entry(&mut self, id: StreamId, fields: Fields, node_max: usize) {
        self.bytes = self.bytes.saturating_add(entry_bytes(&fields));
        if self.entries.is_empty() {
            self.first_id = id;
        }
        self.entries.insert(id, fields);
        match self.nodes.back_mut() {
            Some(n) if node_max == 0 || n.appended < node_max => {
                n.appended += 1;
                n.live += 1;
                n.last = id;
            }
            _ => self.nodes.push_back(Node {
                first: id,
                last: id,
                appended: 1,
                live: 1,
            }),
        }
    }

    /// Adds an entry loaded from a snapshot; entries arrive in ascending order (one out of
    /// order is dropped: only a damaged file has one).
    pub(crate) fn insert_loaded(&mut self, id: StreamId, fields: Fields) {
        if self
            .entries
            .last_key_value()
            .is_none_or(|(last, _)| *last < id)
        {
            self.push_entry(id, fields, NODE_ENTRIES);
        }
    }

    /// Adds a node read from a DUMP payload: `entries` (ascending, above every entry already
    /// held) under the node first appended at `first`, last appended at `last`, with
    /// `appended` entries ever appended (live and deleted). A node with no live entries is
    /// not kept (Redis drops such a node when its last entry goes).
    pub(crate) fn push_loaded_node(
        &mut self,
        first: StreamId,
        last: StreamId,
        appended: usize,
        entries: Vec<(StreamId, Fields)>,
    ) {
        if entries.is_empty() {
            return;
        }
        let live = entries.len();
        for (id, fields) in entries {
            self.bytes = self.bytes.saturating_add(entry_bytes(&fields));
            self.entries.insert(id, fields);
        }
        self.nodes.push_back(Node {
            first,
            last,
            appended: appended.max(live),
            live,
        });
        self.refresh_first();
    }

    /// The emulated nodes in order, each as the ID it was first appended at and its live
    /// entries (what one listpack of Redis's radix tree holds, less its deleted entries).
    pub(crate) fn node_entries(
        &self,
    ) -> impl Iterator<Item = (StreamId, Vec<(StreamId, &Fields)>)> {
        self.nodes.iter().enumerate().map(|(i, n)| {
            let end = self.nodes.get(i + 1).map(|next| next.first);
            let run = match end {
                Some(e) => self.entries.range(n.first..e),
                None => self.entries.range(n.first..),
            };
            (n.first, run.map(|(k, v)| (*k, v)).collect())
        })
    }

    /// Index of the node holding `id`.
    fn node_of(&self, id: StreamId) -> Option<usize> {
        self.nodes.partition_point(|n| n.first <= id).checked_sub(1)
    }

    /// Counts one entry of node `i` gone, dropping the node when it has none left.
    fn node_lost_one(&mut self, i: usize) {
        if let Some(n) = self.nodes.get_mut(i) {
            n.live = n.live.saturating_sub(1);
            if n.live == 0 {
                self.nodes.remove(i);
            }
        }
    }

    /// Deletes `id` (XDEL): updates the largest deleted ID and the first ID.
    pub(crate) fn delete(&mut self, id: StreamId) -> bool {
        let Some(old) = self.entries.remove(&id) else {
            return false;
        };
        self.bytes = self.bytes.saturating_sub(entry_bytes(&old));
        if let Some(i) = self.node_of(id) {
            self.node_lost_one(i);
        }
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        if id == self.first_id {
            self.refresh_first();
        }
        true
    }

    fn refresh_first(&mut self) {
        self.first_id = self.entries.keys().next().copied().unwrap_or(StreamId::MIN);
    }

    /// Removes the head node and its live entries; returns how many.
    fn drop_head_node(&mut self) -> usize {
        let Some(n) = self.nodes.pop_front() else {
            return 0;
        };
        let end = self.nodes.front().map(|next| next.first);
        let ids: Vec<StreamId> = match end {
            Some(e) => self.entries.range(..e).map(|(k, _)| *k).collect(),
            None => self.entries.keys().copied().collect(),
        };
        for id in &ids {
            if let Some(f) = self.entries.remove(id) {
                self.bytes = self.bytes.saturating_sub(entry_bytes(&f));
            }
        }
        debug_assert_eq!(ids.len(), n.live);
        ids.len()
    }

    /// Trims from the head as Redis's `streamTrim`: to at most `maxlen` entries, or (with
    /// `minid`) every entry below it. Whole nodes go first; `approx` stops at the first node
    /// that cannot go whole, and `limit` (0: none) stops before a node that would take the
    /// count past it. Returns the number removed.
    pub(crate) fn trim(
        &mut self,
        maxlen: Option<usize>,
        minid: Option<StreamId>,
        approx: bool,
        limit: usize,
    ) -> usize {
        let mut removed = 0usize;
        while let Some(head) = self.nodes.front() {
            let len = self.entries.len();
            if let Some(m) = maxlen
                && len <= m
            {
                break;
            }
            let (live, last) = (head.live, head.last);
            if limit > 0 && removed.saturating_add(live) > limit {
                break;
            }
            let whole = match (maxlen, minid) {
                (Some(m), _) => len - live >= m,
                (None, Some(id)) => last < id,
                (None, None) => break,
            };
            if whole {
                removed += self.drop_head_node();
                continue;
            }
            if approx {
                break;
            }
            // Exact: entries from inside the head node, which stays.
            let mut inside = 0;
            while let Some((&id, _)) = self.entries.first_key_value() {
                let go = match (maxlen, minid) {
                    (Some(m), _) => self.entries.len() > m,
                    (None, Some(min)) => id < min,
                    (None, None) => false,
                };
                if !go {
                    break;
                }
                if let Some((_, f)) = self.entries.pop_first() {
                    self.bytes = self.bytes.saturating_sub(entry_bytes(&f));
                }
                inside += 1;
            }
            if let Some(n) = self.nodes.front_mut() {
                n.live = n.live.saturating_sub(inside);
            }
            removed += inside;
            break;
        }
        if removed > 0 {
            self.refresh_first();
        }
        removed
    }

    /// Emulated listpack nodes (Redis's `radix-tree-keys`).
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Entries with IDs in `start..=end`, ascending or (`rev`) descending, at most `count`
    /// (0: all).
    pub(crate) fn range(
        &self,
        start: StreamId,
        end: StreamId,
        count: usize,
        rev: bool,
    ) -> Vec<(StreamId, &Fields)> {
        if start > end {
            return Vec::new();
        }
        let r = self
            .entries
            .range((Bound::Included(start), Bound::Included(end)));
        let take = if count == 0 { usize::MAX } else { count };
        if rev {
            r.rev().take(take).map(|(k, v)| (*k, v)).collect()
        } else {
            r.take(take).map(|(k, v)| (*k, v)).collect()
        }
    }

    /// Whether XDEL may have left a gap in `start..` (`streamRangeHasTombstones`).
    pub(crate) fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// How many entries precede and include `id` since the first ever, when that can be told
    /// (`streamEstimateDistanceFromFirstEverEntry`); -1 when not.
    pub(crate) fn distance_from_first_ever(&self, id: StreamId) -> i64 {
        let added = i64::try_from(self.entries_added).unwrap_or(i64::MAX);
        let len = i64::try_from(self.entries.len()).unwrap_or(i64::MAX);
        if self.entries_added == 0 {
            return 0;
        }
        if self.entries.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        }
        if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        if self.max_deleted == StreamId::MIN || self.max_deleted < self.first_id {
            if id < self.first_id {
                return added - len;
            }
            if id == self.first_id {
                return added - len + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// A group's lag (`streamReplyWithCGLag`), `None` when it cannot be told.
    pub(crate) fn lag(&self, g: &Group) -> Option<i64> {
        let added = i64::try_from(self.entries_added).unwrap_or(i64::MAX);
        if self.entries_added == 0 {
            return Some(0);
        }
        // `entries_read` may be any count XGROUP … ENTRIESREAD set: a difference that does not
        // fit is a lag that cannot be told.
        if g.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(g.last_id) {
            return added.checked_sub(g.entries_read);
        }
        let read = self.distance_from_first_ever(g.last_id);
        if read == ENTRIES_READ_UNKNOWN {
            return None;
        }
        added.checked_sub(read)
    }

    /// Advances `group`'s last ID and entries-read past a delivered `id`.
    pub(crate) fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(id) {
            g.entries_read = g.entries_read.saturating_add(1);
        } else if self.entries_added != 0 {
            g.entries_read = self.distance_from_first_ever(id);
        }
        g.last_id = id;
    }

    /// The largest entry ID, or 0-0 when empty (`streamLastValidID`'s view for reads).
    pub(crate) fn last_entry_id(&self) -> StreamId {
        self.entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(StreamId::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: usize) -> Fields {
        vec![Bytes::from(format!("f{n}")), Bytes::from("v")].into_boxed_slice()
    }

    #[test]
    fn bookkeeping_follows_appends_deletes_and_trims() {
        let mut s = StreamValue::default();
        for i in 1..=250u64 {
            s.append(
                StreamId::new(i, 0),
                f(usize::try_from(i).unwrap()),
                NODE_ENTRIES,
            );
        }
        assert_eq!(s.first_id, StreamId::new(1, 0));
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert_eq!(s.max_deleted, StreamId::new(1, 0));
        // 249 entries in nodes of 99 (one deleted), 100 and 50; MAXLEN ~ 10: two whole nodes.
        assert_eq!(s.node_count(), 3);
        assert_eq!(s.trim(Some(10), None, true, 0), 199);
        assert_eq!(s.len(), 50);
        assert_eq!(s.trim(Some(10), None, false, 0), 40);
        assert_eq!(s.node_count(), 1);
        assert_eq!(s.first_id, StreamId::new(241, 0));
        assert_eq!(s.entries_added, 250);
        assert_eq!(s.bytes(), s.recount_bytes());
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(1, 0).decr(), Some(StreamId::new(0, u64::MAX)));
    }

    #[test]
    fn groups_are_charged_as_they_grow_and_shrink() {
        let mut s = StreamValue::default();
        for i in 1..=50u64 {
            s.append(StreamId::new(i, 0), f(1), NODE_ENTRIES);
        }
        let bare = s.bytes();
        s.put_group(Bytes::from("g"), Group::new(StreamId::MIN, 0));
        let with_group = s.bytes();
        assert!(with_group > bare);
        assert_eq!(s.bytes(), s.recount_bytes());
        let (alice, bob) = (Bytes::from("alice"), Bytes::from("bob"));
        {
            let mut g = s.group_mut(b"g").unwrap();
            for i in 1..=40u64 {
                g.deliver(StreamId::new(i, 0), &alice, 7);
            }
            g.claim(StreamId::new(3, 0), &bob, 9);
        }
        let delivered = s.bytes();
        assert!(delivered > with_group + 40 * PENDING_BYTES);
        assert_eq!(s.bytes(), s.recount_bytes());
        let mut g = s.take_group(b"g").unwrap();
        assert_eq!(s.bytes(), bare);
        for i in 1..=10u64 {
            assert!(g.ack(StreamId::new(i, 0)));
        }
        assert_eq!(g.delete_consumer(b"bob"), Some(0));
        s.put_group(Bytes::from("g"), g);
        assert!(s.bytes() < delivered);
        assert_eq!(s.bytes(), s.recount_bytes());
        s.group_mut(b"g").unwrap().delete_consumer(b"alice");
        assert_eq!(s.bytes(), with_group);
        assert_eq!(s.bytes(), s.recount_bytes());
    }
}
