//! The value types a key can hold: binary-safe strings, hashes, lists, sets, sorted sets and
//! streams (the last two in `zset.rs` and `stream.rs`).
//!
//! Collections keep a running total of the bytes they are charged ([`HashValue::bytes`] and
//! the like): every mutation goes through a method here that adds or subtracts what it changed,
//! so re-measuring a key after a command ([`Value::mem_bytes`]) is O(1) however large the
//! collection. The collections hand out only shared access to their elements (`Deref`), so no
//! command can change one without the total following.
//!
//! Invariant: a collection's `bytes` equals its `recount_bytes()`: the sum over its elements
//! of their data bytes plus [`ELEMENT_OVERHEAD_BYTES`] each (field and value counted
//! separately in a hash).

use super::blocks::Blocks;
use std::ops::Deref;

use bytes::Bytes;
use hashbrown::{DefaultHashBuilder, HashSet};
use indexmap::IndexMap;

use crate::cache::stream::StreamValue;
use crate::cache::zset::{Listpack, ZSetValue};

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A binary-safe string (also holds integers and floats as their decimal text).
    Str(Vec<u8>),
    /// Field → value.
    Hash(Box<HashValue>),
    /// An ordered sequence, pushed and popped at both ends.
    List(Box<ListValue>),
    /// Unordered unique members.
    Set(Box<SetValue>),
    /// Unique members ordered by score.
    ZSet(Box<ZSetValue>),
    /// Entries by ID (never removed when empty, as in Redis).
    Stream(Box<StreamValue>),
}

/// Bytes of bookkeeping counted per collection element on top of its data (the `Bytes` handle,
/// its allocation header and the table or deque slot).
pub(crate) const ELEMENT_OVERHEAD_BYTES: usize = 48;

/// Bytes one element of `len` data bytes is charged.
pub(crate) fn element_bytes(len: usize) -> usize {
    len.saturating_add(ELEMENT_OVERHEAD_BYTES)
}

/// Field → value in insertion order (Redis's listpack order, which HGETALL, HKEYS, HVALS and
/// DUMP show for a small hash).
pub(crate) type FieldMap = IndexMap<Bytes, Bytes, DefaultHashBuilder>;

/// Most fields a hash may hold for HDEL to keep the others' order (an O(n) shift); a larger
/// hash, which Redis keeps in a table of no particular order, moves its last field into the
/// hole instead (O(1)).
const HASH_ORDERED_REMOVE_LEN_MAX: usize = 1024;

/// A hash with the bytes it is charged.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashValue {
    map: FieldMap,
    bytes: usize,
    /// Whether Redis would have converted this hash from a listpack to a table by now (set by
    /// the writes that cross the thresholds, never cleared, as `hashTypeConvert`).
    hashtable: bool,
}

impl PartialEq for HashValue {
    /// Same fields and values, in the same order, whatever the encoding.
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl Deref for HashValue {
    type Target = FieldMap;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl HashValue {
    /// Whether Redis 7.0 keeps this hash as a listpack (OBJECT ENCODING; HSCAN answers it
    /// whole): decided by the writes that made it, not by its contents now.
    pub(crate) fn is_listpack(&self) -> bool {
        !self.hashtable
    }

    /// The hash of `pairs` (a later pair replaces an earlier one of the same field) in the
    /// encoding Redis's loader gives a hash it reads (RESTORE, a snapshot): see
    /// [`HashValue::fit_encoding`]. O(n).
    pub(crate) fn from_pairs(
        pairs: impl IntoIterator<Item = (Bytes, Bytes)>,
        lp: Listpack,
    ) -> Self {
        let mut h = Self::default();
        for (f, v) in pairs {
            h.insert(f, v);
        }
        h.fit_encoding(lp);
        h
    }

    /// Sets the encoding of a hash built whole as Redis's loader does: a table if it has more
    /// than `lp.entries` fields or a field or value longer than `lp.value` (O(n); pass
    /// `usize::MAX` as `lp.value` for a listpack payload, which Redis checks by its length
    /// only).
    fn fit_encoding(&mut self, lp: Listpack) {
        self.hashtable = self.len() > lp.entries
            || self
                .iter()
                .any(|(k, v)| k.len() > lp.value || v.len() > lp.value);
    }

    /// [`HashValue::set`] as Redis's `hashTypeSet` does it: a field or value longer than
    /// `lp.value`, or more than `lp.entries` fields after it, converts a listpack to a table
    /// (never back). O(1) besides the set.
    pub(crate) fn set_within(&mut self, field: &[u8], value: &[u8], lp: Listpack) -> bool {
        if field.len() > lp.value || value.len() > lp.value {
            self.hashtable = true;
        }
        let new = self.set(field, value);
        if self.map.len() > lp.entries {
            self.hashtable = true;
        }
        new
    }

    /// Bytes charged for the fields and values.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The charge recomputed from the elements (O(n); for audits).
    pub(crate) fn recount_bytes(&self) -> usize {
        self.map.iter().fold(0, |n, (f, v)| {
            n.saturating_add(element_bytes(f.len()))
                .saturating_add(element_bytes(v.len()))
        })
    }

    /// Sets `field` to `value`; returns the previous value.
    pub(crate) fn insert(&mut self, field: Bytes, value: Bytes) -> Option<Bytes> {
        let added = element_bytes(value.len());
        let field_bytes = element_bytes(field.len());
        let old = self.map.insert(field, value);
        self.bytes = self.bytes.saturating_add(added);
        match &old {
            Some(o) => self.bytes = self.bytes.saturating_sub(element_bytes(o.len())),
            None => self.bytes = self.bytes.saturating_add(field_bytes),
        }
        old
    }

    /// Sets `field` to a copy of `value`, copying the field only when it is new (an existing
    /// field keeps its key). Returns whether the field was new.
    pub(crate) fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.map.get_mut(field) {
            Some(old) => {
                self.bytes = self
                    .bytes
                    .saturating_sub(old.len())
                    .saturating_add(value.len());
                *old = Bytes::copy_from_slice(value);
                false
            }
            None => {
                self.insert(Bytes::copy_from_slice(field), Bytes::copy_from_slice(value));
                true
            }
        }
    }

    /// Removes `field`; returns its value.
    pub(crate) fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        let (f, v) = if self.map.len() <= HASH_ORDERED_REMOVE_LEN_MAX {
            self.map.shift_remove_entry(field)?
        } else {
            self.map.swap_remove_entry(field)?
        };
        self.bytes = self
            .bytes
            .saturating_sub(element_bytes(f.len()))
            .saturating_sub(element_bytes(v.len()));
        Some(v)
    }
}

/// Most bytes a list element holds inside its slot; a longer one has a heap block of its own.
pub(crate) const ELEM_INLINE_BYTES_MAX: usize = 22;

/// One list element in a 24-byte slot: up to [`ELEM_INLINE_BYTES_MAX`] bytes in the slot
/// itself (no allocation, as Redis packs small elements into a listpack), longer ones in an
/// exact-size heap block. The variant follows from the length alone, so equal elements are
/// equal values.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Elem {
    /// `len` bytes at the start of `data`, the rest zero.
    Inline {
        len: u8,
        data: [u8; ELEM_INLINE_BYTES_MAX],
    },
    /// More than [`ELEM_INLINE_BYTES_MAX`] bytes.
    Heap(Box<[u8]>),
}

impl Elem {
    /// The element holding a copy of `v`.
    pub(crate) fn new(v: &[u8]) -> Self {
        let mut data = [0u8; ELEM_INLINE_BYTES_MAX];
        match (data.get_mut(..v.len()), u8::try_from(v.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(v);
                Self::Inline { len, data }
            }
            _ => Self::Heap(v.into()),
        }
    }

    /// The element's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, data } => data.get(..usize::from(*len)).unwrap_or_default(),
            Self::Heap(b) => b,
        }
    }

    /// A copy of the bytes as [`Bytes`] (for a reply).
    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }

    /// The bytes as [`Bytes`]; a heap element hands its block over without a copy.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Self::Inline { .. } => self.to_bytes(),
            Self::Heap(b) => Bytes::from(b),
        }
    }
}

impl Deref for Elem {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Elem {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq<[u8]> for Elem {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl std::fmt::Debug for Elem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_bytes()), f)
    }
}

/// A list with the bytes it is charged.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ListValue {
    items: Blocks<Elem>,
    bytes: usize,
}

impl Deref for ListValue {
    type Target = Blocks<Elem>;
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

impl FromIterator<Bytes> for ListValue {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        let items: Blocks<Elem> = iter.into_iter().map(|b| Elem::new(&b)).collect();
        let bytes = recount(items.iter());
        Self { items, bytes }
    }
}

/// The charge of `items`, one by one.
fn recount<'a, T: AsRef<[u8]> + 'a>(items: impl Iterator<Item = &'a T>) -> usize {
    items.fold(0, |n, v| n.saturating_add(element_bytes(v.as_ref().len())))
}

impl ListValue {
    /// Bytes charged for the elements.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The charge recomputed from the elements (O(n); for audits).
    pub(crate) fn recount_bytes(&self) -> usize {
        recount(self.items.iter())
    }

    fn added(&mut self, v: &[u8]) {
        self.bytes = self.bytes.saturating_add(element_bytes(v.len()));
    }

    /// Pushes a copy of `v` at the head (`left`) or the tail.
    pub(crate) fn push(&mut self, v: &[u8], left: bool) {
        self.added(v);
        if left {
            self.items.push_front(Elem::new(v));
        } else {
            self.items.push_back(Elem::new(v));
        }
    }

    /// Pops from the head (`left`) or the tail.
    pub(crate) fn pop(&mut self, left: bool) -> Option<Bytes> {
        let v = if left {
            self.items.pop_front()
        } else {
            self.items.pop_back()
        }?;
        self.bytes = self.bytes.saturating_sub(element_bytes(v.len()));
        Some(v.into_bytes())
    }

    /// Replaces the element at `i` with a copy of `v`; false when `i` is out of range.
    pub(crate) fn set(&mut self, i: usize, v: &[u8]) -> bool {
        let new = element_bytes(v.len());
        let Some(slot) = self.items.get_mut(i) else {
            return false;
        };
        let old = std::mem::replace(slot, Elem::new(v));
        self.bytes = self
            .bytes
            .saturating_sub(element_bytes(old.len()))
            .saturating_add(new);
        true
    }

    /// Inserts a copy of `v` before position `i` (at the end when `i` is the length).
    pub(crate) fn insert(&mut self, i: usize, v: &[u8]) {
        self.added(v);
        self.items.insert(i, Elem::new(v));
    }

    /// Removes up to `limit` elements equal to `target`, scanning from the head or, with
    /// `from_tail`, from the tail (LREM); returns how many.
    pub(crate) fn remove_equal(&mut self, target: &[u8], limit: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let mut kept = Blocks::default();
        let items = std::mem::take(&mut self.items).into_iter();
        if from_tail {
            for v in items.rev() {
                if removed < limit && v.as_bytes() == target {
                    removed += 1;
                } else {
                    kept.push_front(v);
                }
            }
        } else {
            for v in items {
                if removed < limit && v.as_bytes() == target {
                    removed += 1;
                } else {
                    kept.push_back(v);
                }
            }
        }
        self.items = kept;
        self.bytes = self
            .bytes
            .saturating_sub(element_bytes(target.len()).saturating_mul(removed));
        removed
    }

    /// Keeps only the elements at `start..=stop` (LTRIM); `None` empties the list. Costs the
    /// number of elements removed.
    pub(crate) fn trim(&mut self, keep: Option<(usize, usize)>) {
        let Some((start, stop)) = keep else {
            self.items.clear();
            self.bytes = 0;
            return;
        };
        // Popped one by one: the cost is the number of elements removed.
        let end = stop.saturating_add(1).min(self.items.len());
        let mut gone = 0usize;
        while self.items.len() > end {
            if let Some(v) = self.items.pop_back() {
                gone = gone.saturating_add(element_bytes(v.len()));
            }
        }
        for _ in 0..start.min(self.items.len()) {
            if let Some(v) = self.items.pop_front() {
                gone = gone.saturating_add(element_bytes(v.len()));
            }
        }
        self.bytes = self.bytes.saturating_sub(gone);
    }
}

/// Whether Redis 7.0 keeps `len` set members as an intset: at most `max`
/// (`set-max-intset-entries`), each an integer.
pub(crate) fn is_intset<'a>(
    len: usize,
    mut members: impl Iterator<Item = &'a Bytes>,
    max: usize,
) -> bool {
    len <= max && members.all(|m| crate::cache::resp::frame::parse_i64(m).is_some())
}

/// The thresholds under which Redis 7.0 keeps a hash as a listpack
/// (`hash-max-listpack-entries`, `hash-max-listpack-value`) and a set of integers as an intset
/// (`set-max-intset-entries`), as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compact {
    /// A hash's most fields, and longest field or value in bytes.
    pub(crate) hash: Listpack,
    /// A set's most members as an intset.
    pub(crate) intset_entries: usize,
}

impl Default for Compact {
    /// Redis 7.0.15's defaults.
    fn default() -> Self {
        Self {
            hash: Listpack {
                entries: 512,
                value: 64,
            },
            intset_entries: 512,
        }
    }
}

/// A set with the bytes it is charged.
#[derive(Debug, Clone, Default)]
pub(crate) struct SetValue {
    members: HashSet<Bytes>,
    bytes: usize,
    /// Whether Redis would have converted this set from an intset to a table by now (set by
    /// the adds that cross the threshold or bring a non-integer, never cleared, as
    /// `setTypeConvert`).
    hashtable: bool,
}

impl PartialEq for SetValue {
    /// Same members, whatever the encoding.
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members
    }
}

impl Deref for SetValue {
    type Target = HashSet<Bytes>;
    fn deref(&self) -> &Self::Target {
        &self.members
    }
}

impl SetValue {
    /// Whether Redis 7.0 keeps this set as an intset (OBJECT ENCODING; SSCAN answers it whole,
    /// in its ascending order): decided by the writes that made it, not by its contents now.
    pub(crate) fn is_intset(&self) -> bool {
        !self.hashtable
    }

    /// The set of `members` in the encoding Redis gives a set it builds whole (RESTORE, a
    /// snapshot, a SINTERSTORE, SUNIONSTORE or SDIFFSTORE result): see
    /// [`SetValue::fit_encoding`]. O(n).
    pub(crate) fn from_members(members: HashSet<Bytes>, max: usize) -> Self {
        let bytes = recount(members.iter());
        let mut s = Self {
            members,
            bytes,
            hashtable: false,
        };
        s.fit_encoding(max);
        s
    }

    /// Sets the encoding of a set built whole as Redis does, adding each member to an
    /// intset: an intset if every member is an integer and there are at most `max`
    /// (`set-max-intset-entries`). O(n).
    pub(crate) fn fit_encoding(&mut self, max: usize) {
        self.hashtable = !is_intset(self.len(), self.iter(), max);
    }

    /// [`SetValue::insert`] as Redis's `setTypeAdd` does it: a non-integer member, or a new
    /// one that takes an intset past `max` members, converts it to a table (never back).
    /// O(1) besides the insert.
    pub(crate) fn add(&mut self, m: Bytes, max: usize) -> bool {
        if !self.hashtable && crate::cache::resp::frame::parse_i64(&m).is_none() {
            self.hashtable = true;
        }
        let new = self.insert(m);
        if new && self.members.len() > max {
            self.hashtable = true;
        }
        new
    }

    /// Bytes charged for the members.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The charge recomputed from the members (O(n); for audits).
    pub(crate) fn recount_bytes(&self) -> usize {
        recount(self.members.iter())
    }

    /// Adds `m`; returns whether it was new.
    pub(crate) fn insert(&mut self, m: Bytes) -> bool {
        let n = element_bytes(m.len());
        let new = self.members.insert(m);
        if new {
            self.bytes = self.bytes.saturating_add(n);
        }
        new
    }

    /// Removes `m`; returns whether it was there.
    pub(crate) fn remove(&mut self, m: &[u8]) -> bool {
        let was = self.members.remove(m);
        if was {
            self.bytes = self.bytes.saturating_sub(element_bytes(m.len()));
        }
        was
    }
}

impl Value {
    /// The Redis type name (`TYPE`).
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Str(_) => "string",
            Self::Hash(_) => "hash",
            Self::List(_) => "list",
            Self::Set(_) => "set",
            Self::ZSet(_) => "zset",
            Self::Stream(_) => "stream",
        }
    }

    /// The encoding `OBJECT ENCODING` reports, as Redis 7.0 would after the writes that made
    /// the value.
    pub(crate) fn encoding(&self) -> &'static str {
        match self {
            Self::Str(s) => Self::str_encoding(s),
            Self::Hash(h) => {
                if h.is_listpack() {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            Self::List(_) => "quicklist",
            // Redis 7.0 has no listpack sets (7.2 added them).
            Self::Set(s) => {
                if s.is_intset() {
                    "intset"
                } else {
                    "hashtable"
                }
            }
            Self::ZSet(z) => z.encoding(),
            Self::Stream(_) => "stream",
        }
    }

    /// The encoding Redis 7.0 reports for a string of these bytes.
    pub(crate) fn str_encoding(s: &[u8]) -> &'static str {
        if s.len() <= 20 && crate::cache::resp::frame::parse_i64(s).is_some() {
            "int"
        } else if s.len() <= 44 {
            "embstr"
        } else {
            "raw"
        }
    }

    /// Bytes the value is charged: a string's length; a collection's element bytes plus
    /// [`ELEMENT_OVERHEAD_BYTES`] per element (per field and per value in a hash), kept as a
    /// running total so this is O(1).
    pub(crate) fn mem_bytes(&self) -> usize {
        match self {
            Self::Str(s) => s.len(),
            Self::Hash(h) => h.bytes(),
            Self::List(l) => l.bytes(),
            Self::Set(s) => s.bytes(),
            Self::ZSet(z) => z.bytes(),
            Self::Stream(x) => x.bytes(),
        }
    }

    /// [`Value::mem_bytes`] recomputed from the elements (O(n); for audits and tests).
    pub(crate) fn recount_mem_bytes(&self) -> usize {
        match self {
            Self::Str(s) => s.len(),
            Self::Hash(h) => h.recount_bytes(),
            Self::List(l) => l.recount_bytes(),
            Self::Set(s) => s.recount_bytes(),
            Self::ZSet(z) => z.recount_bytes(),
            Self::Stream(x) => x.recount_bytes(),
        }
    }

    /// Whether a collection has become empty (Redis deletes such keys).
    pub(crate) fn is_empty_collection(&self) -> bool {
        match self {
            Self::Str(_) | Self::Stream(_) => false,
            Self::Hash(h) => h.is_empty(),
            Self::List(l) => l.is_empty(),
            Self::Set(s) => s.is_empty(),
            Self::ZSet(z) => z.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{Compact, ELEM_INLINE_BYTES_MAX, Elem, HashValue, ListValue, SetValue};

    /// A set or hash built whole gets the encoding Redis 7.0.15 gives it by its contents
    /// (`setTypeAdd` into a new intset, the loader's hash checks), whatever its size: no
    /// caller has to fix it up afterwards.
    #[test]
    fn sets_and_hashes_built_whole_get_redis_encoding() {
        let compact = Compact::default();
        let ints = |n: i64| (0..n).map(|i| Bytes::from(i.to_string())).collect();
        let set = SetValue::from_members(ints(512), compact.intset_entries);
        assert!(set.is_intset());
        assert_eq!(set.bytes(), set.recount_bytes());
        assert!(!SetValue::from_members(ints(513), compact.intset_entries).is_intset());
        let mut mixed = ints(3);
        mixed.insert(Bytes::from_static(b"a"));
        assert!(!SetValue::from_members(mixed, compact.intset_entries).is_intset());
        let pairs = |n: usize, value: &'static [u8]| {
            (0..n).map(move |i| (Bytes::from(format!("f{i}")), Bytes::from_static(value)))
        };
        let hash = HashValue::from_pairs(pairs(512, b"v"), compact.hash);
        assert!(hash.is_listpack());
        assert_eq!(hash.len(), 512);
        assert!(!HashValue::from_pairs(pairs(513, b"v"), compact.hash).is_listpack());
        let long: &'static [u8] = &[b'x'; 65];
        assert!(!HashValue::from_pairs(pairs(1, long), compact.hash).is_listpack());
    }

    #[test]
    fn an_element_fills_a_24_byte_slot() {
        assert_eq!(std::mem::size_of::<Elem>(), 24);
    }

    #[test]
    fn elements_up_to_the_inline_limit_stay_in_the_slot_and_longer_ones_get_a_block() {
        let at_max = [b'a'; ELEM_INLINE_BYTES_MAX];
        let over = [b'b'; ELEM_INLINE_BYTES_MAX + 1];
        for (v, inline) in [
            (&b""[..], true),
            (&b"x"[..], true),
            (&at_max[..], true),
            (&over[..], false),
        ] {
            let e = Elem::new(v);
            assert_eq!(
                matches!(e, Elem::Inline { .. }),
                inline,
                "{} bytes",
                v.len()
            );
            assert_eq!(e.as_bytes(), v);
            assert_eq!(&*e, v);
            assert!(e == *v);
            assert_eq!(e.to_bytes(), Bytes::copy_from_slice(v));
            assert_eq!(e.clone().into_bytes(), Bytes::copy_from_slice(v));
        }
        assert_ne!(Elem::new(b"ab"), Elem::new(b"ab\0"));
    }

    #[test]
    fn a_list_charges_what_it_holds_through_every_mutation() {
        let long = vec![b'z'; 100];
        let mut l = ListValue::default();
        l.push(b"one", false);
        l.push(&long, true);
        l.insert(1, b"two");
        assert!(l.set(2, &long));
        assert!(!l.set(3, b"out of range"));
        let items: Vec<&[u8]> = l.iter().map(|e| e.as_bytes()).collect();
        assert_eq!(items, [&long[..], &b"two"[..], &long[..]]);
        assert_eq!(l.bytes(), l.recount_bytes());
        assert_eq!(l.pop(true), Some(Bytes::copy_from_slice(&long)));
        assert_eq!(l.remove_equal(&long, 1, false), 1);
        assert_eq!(l.bytes(), l.recount_bytes());
        assert_eq!(l.pop(false), Some(Bytes::from_static(b"two")));
        assert_eq!(l.pop(false), None);
        assert_eq!(l.bytes(), 0);
    }
}
