//! One shard of one logical database: a hash table of entries, its deadline index and its
//! memory account.
//!
//! Layout (what a key costs): the table holds 24-byte [`Slot`]s, and a slot owns one heap
//! allocation, `kv`: a key-length header, the deadline (8 bytes, only for a key with a TTL), the
//! key and — for a string — the value's bytes (*embedded*, as Redis's embstr). Collections, and
//! strings changed in place (APPEND, SETRANGE, SETBIT, BITFIELD, the HyperLogLog writes) or
//! built so (SETRANGE's and BITOP's new strings), are *boxed*: the value lives in the shard's
//! slab and `kv` ends with its index. A boxed string is what Redis 7.0 calls `raw` (OBJECT
//! ENCODING), so the encoding costs no bit of its own; a new value (SET, INCR) embeds it again,
//! while RENAME, MOVE and COPY box it again where it lands (`Entry::raw`).
//! Slots carry no hash; it is recomputed from the key when the table grows. The deadline index
//! names entries by key hash, not by a copy of the key.
//!
//! Invariant: the deadline index holds `(d, h)` exactly when some slot whose key hashes to `h`
//! has deadline `d != 0`; `volatile` counts the slots with a deadline; `used_bytes` is the sum
//! of the entries' `mem`.
//! Invariant: a slot has the `BOXED` flag exactly when its `kv` tail is the index of an occupied
//! slab cell, and no two slots name the same cell.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::cache::expiry::ExpiryIndex;
use crate::cache::sieve::Sieve;
use crate::cache::value::Value;

/// Bytes counted per entry for the table slot, the allocation headers and the key header.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Slot flag: SIEVE's visited bit.
const VISITED: u8 = 1;
/// Slot flag: the value is in the slab (see the module doc).
const BOXED: u8 = 2;
/// Slot flag: the entry has a deadline, stored in `kv` after the key-length header.
const VOLATILE: u8 = 4;
/// Control tags of a full hashbrown bucket: the top 7 bits of the hash (see [`Shard::scan`]).
const CONTROL_TAGS: u64 = 128;
/// Key-length header byte that announces a 4-byte length.
const LONG_KEY: u8 = u8::MAX;

/// The low 32 bits of the wall clock in milliseconds: LRU ages are differences taken with
/// wrapping arithmetic, valid for 49 days of idleness.
pub(crate) fn access_stamp(now_ms: u64) -> u32 {
    (now_ms & 0xFFFF_FFFF) as u32
}

/// Redis's `LFU_INIT_VAL`: the counter of a new key, so it is not evicted before it had a
/// chance to be read.
pub(crate) const LFU_INIT_VAL: u8 = 5;

/// Redis's LFU settings (`lfu-log-factor`, `lfu-decay-time`) and whether an LFU policy is in
/// force, copied into each command's context from the keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lfu {
    /// An LFU `maxmemory-policy` is in force: only then does an access update the counter, as
    /// Redis's `updateLFU` runs only under `MAXMEMORY_FLAG_LFU` (under any other policy the
    /// counter stands still, and reads pay nothing for it).
    pub(crate) active: bool,
    /// How slowly the counter climbs (Redis's default 10: about a million hits reach 255).
    pub(crate) log_factor: u32,
    /// Minutes per decrement of an idle key's counter (0: never decays).
    pub(crate) decay_minutes: u32,
}

impl Default for Lfu {
    fn default() -> Self {
        Self {
            active: false,
            log_factor: 10,
            decay_minutes: 1,
        }
    }
}

/// The low 16 bits of the wall clock in minutes: Redis's `LFUGetTimeInMinutes`, an LFU
/// counter's last decrement time.
pub(crate) fn lfu_minutes(now_ms: u64) -> u16 {
    ((now_ms / 60_000) & 0xFFFF) as u16
}

/// Redis's `LFUDecrAndReturn`: `counter`, last decremented at minute `ldt`, less one per
/// `decay_minutes` elapsed by `now_ms` (minutes wrap at 2^16, taken as wrapping once).
pub(crate) fn lfu_decayed(counter: u8, ldt: u16, now_ms: u64, decay_minutes: u32) -> u8 {
    if decay_minutes == 0 {
        return counter;
    }
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        u32::from(now - ldt)
    } else {
        65_535 - u32::from(ldt) + u32::from(now)
    };
    let periods = elapsed / decay_minutes;
    counter.saturating_sub(u8::try_from(periods).unwrap_or(u8::MAX))
}

/// Redis's `LFULogIncr`: one more hit on `counter`, taken with probability
/// `1 / ((counter - LFU_INIT_VAL) × log_factor + 1)`; `r` is uniform in `[0, 1)`.
pub(crate) fn lfu_log_incr(counter: u8, r: f64, log_factor: u32) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(log_factor) + 1.0);
    if r < p { counter + 1 } else { counter }
}

/// A key's value with its metadata, detached from a shard (what is inserted and removed).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The value.
    pub(crate) value: Value,
    /// Wall-clock deadline in milliseconds; 0 means no TTL.
    pub(crate) expire_at_ms: u64,
    /// Last access, from [`access_stamp`].
    pub(crate) access: u32,
    /// SIEVE's visited bit.
    pub(crate) visited: bool,
    /// LFU's logarithmic access counter.
    pub(crate) hits: u8,
    /// When `hits` was last decremented or hit, from [`lfu_minutes`].
    pub(crate) ldt: u16,
    /// The string was boxed where it came from (Redis's `raw`, see the module doc): it is
    /// boxed again where it is inserted, as Redis's RENAME, MOVE and COPY carry the object
    /// over as it is. Meaningless for a collection.
    pub(crate) raw: bool,
}

impl Entry {
    /// A fresh entry without TTL (its counter at [`LFU_INIT_VAL`]).
    pub(crate) fn new(value: Value) -> Self {
        Self {
            value,
            expire_at_ms: 0,
            access: 0,
            visited: false,
            hits: LFU_INIT_VAL,
            ldt: 0,
            raw: false,
        }
    }
}

/// One stored key (see the module doc for `kv`): 24 bytes.
#[derive(Debug)]
pub(crate) struct Slot {
    kv: Box<[u8]>,
    access: u32,
    /// LFU counter's last decrement time (Redis keeps it beside the counter in `lru`).
    ldt: u16,
    hits: u8,
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 24);

/// `kv` for `key` with deadline `expire_at_ms` (0: none, not stored) followed by `tail`.
fn pack(key: &[u8], expire_at_ms: u64, tail: &[u8]) -> Box<[u8]> {
    // Exactly the final length: `into_boxed_slice` then keeps the allocation as it is, and the
    // allocator serves the entry from the smallest size class that holds it (a 13-byte worst-case
    // header reserve cost a larger class plus a shrinking reallocation per entry).
    let header = if key.len() < usize::from(LONG_KEY) {
        1
    } else {
        5
    };
    let deadline = if expire_at_ms != 0 { 8 } else { 0 };
    let mut kv = Vec::with_capacity(header + deadline + key.len() + tail.len());
    match u8::try_from(key.len()) {
        Ok(n) if n < LONG_KEY => kv.push(n),
        // Keys are at most KEY_BYTES_MAX (512 MiB), which fits in u32.
        _ => {
            kv.push(LONG_KEY);
            kv.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
        }
    }
    if expire_at_ms != 0 {
        kv.extend_from_slice(&expire_at_ms.to_le_bytes());
    }
    kv.extend_from_slice(key);
    kv.extend_from_slice(tail);
    debug_assert_eq!(kv.len(), kv.capacity(), "pack sized its buffer exactly");
    kv.into_boxed_slice()
}

/// `(deadline, key, tail)` of a packed `kv` whose slot has `flags`.
fn split(kv: &[u8], flags: u8) -> (u64, &[u8], &[u8]) {
    let (mut start, klen): (usize, usize) = match kv.first() {
        Some(&n) if n < LONG_KEY => (1, usize::from(n)),
        Some(_) => {
            let n = kv
                .get(1..5)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_le_bytes);
            (5, n as usize)
        }
        None => (0, 0),
    };
    let mut deadline = 0;
    if flags & VOLATILE != 0 {
        deadline = kv
            .get(start..start + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes);
        start += 8;
    }
    let end = start.saturating_add(klen).min(kv.len());
    (
        deadline,
        kv.get(start..end).unwrap_or_default(),
        kv.get(end..).unwrap_or_default(),
    )
}

fn mem_of(key_len: usize, value_bytes: usize) -> u32 {
    u32::try_from(
        key_len
            .saturating_add(value_bytes)
            .saturating_add(ENTRY_OVERHEAD_BYTES),
    )
    .unwrap_or(u32::MAX)
}

impl Slot {
    fn parts(&self) -> (u64, &[u8], &[u8]) {
        split(&self.kv, self.flags)
    }

    fn key(&self) -> &[u8] {
        self.parts().1
    }

    /// The string bytes of an embedded entry, or the slab index bytes of a boxed one.
    fn tail(&self) -> &[u8] {
        self.parts().2
    }

    fn expire_at_ms(&self) -> u64 {
        self.parts().0
    }

    /// Rewrites `kv` with a new deadline (0: none).
    fn set_deadline(&mut self, expire_at_ms: u64) {
        let (_, key, tail) = self.parts();
        let kv = pack(key, expire_at_ms, tail);
        self.kv = kv;
        if expire_at_ms == 0 {
            self.flags &= !VOLATILE;
        } else {
            self.flags |= VOLATILE;
        }
    }

    fn boxed_index(&self) -> Option<u32> {
        if self.flags & BOXED == 0 {
            return None;
        }
        <[u8; 4]>::try_from(self.tail())
            .ok()
            .map(u32::from_le_bytes)
    }

    fn is_expired(&self, now_ms: u64) -> bool {
        let d = self.expire_at_ms();
        d != 0 && d <= now_ms
    }
}

/// A boxed value with the bytes it is charged.
#[derive(Debug)]
struct Boxed {
    value: Value,
    mem: u32,
}

/// Cells for boxed values, reused through a free list.
#[derive(Debug, Default)]
struct Slab {
    cells: Vec<Option<Boxed>>,
    free: Vec<u32>,
}

impl Slab {
    fn put(&mut self, b: Boxed) -> u32 {
        if let Some(i) = self.free.pop()
            && let Some(cell) = self.cells.get_mut(i as usize)
        {
            *cell = Some(b);
            return i;
        }
        self.cells.push(Some(b));
        // More than 2^32 boxed values in one shard would need far more memory than exists.
        u32::try_from(self.cells.len() - 1).unwrap_or(u32::MAX)
    }

    fn take(&mut self, i: u32) -> Option<Boxed> {
        let b = self.cells.get_mut(i as usize)?.take()?;
        self.free.push(i);
        Some(b)
    }

    fn get(&self, i: u32) -> Option<&Boxed> {
        self.cells.get(i as usize)?.as_ref()
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut Boxed> {
        self.cells.get_mut(i as usize)?.as_mut()
    }
}

/// A stored entry, read-only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRef<'a> {
    slot: &'a Slot,
    slab: &'a Slab,
}

/// A stored entry, writable (from [`Shard::lookup`]).
#[derive(Debug)]
pub(crate) struct EntryMut<'a> {
    slot: &'a mut Slot,
    slab: &'a mut Slab,
    /// The shard's `used_bytes`, kept true by the changes made through the entry.
    used_bytes: &'a mut usize,
}

fn boxed_of<'a>(slot: &Slot, slab: &'a Slab) -> Option<&'a Boxed> {
    slab.get(slot.boxed_index()?)
}

fn str_of<'a>(slot: &'a Slot, slab: &'a Slab) -> Option<&'a [u8]> {
    match boxed_of(slot, slab) {
        Some(b) => match &b.value {
            Value::Str(s) => Some(s),
            _ => None,
        },
        None if slot.flags & BOXED == 0 => Some(slot.tail()),
        None => None,
    }
}

fn mem_in(slot: &Slot, slab: &Slab) -> u32 {
    match boxed_of(slot, slab) {
        Some(b) => b.mem,
        None => {
            let (_, k, v) = slot.parts();
            mem_of(k.len(), v.len())
        }
    }
}

fn type_in(slot: &Slot, slab: &Slab) -> &'static str {
    boxed_of(slot, slab).map_or("string", |b| b.value.type_name())
}

fn detach(slot: &Slot, slab: &Slab) -> Entry {
    let value = match boxed_of(slot, slab) {
        Some(b) => b.value.clone(),
        None => Value::Str(slot.tail().to_vec()),
    };
    Entry {
        value,
        expire_at_ms: slot.expire_at_ms(),
        access: slot.access,
        visited: slot.flags & VISITED != 0,
        hits: slot.hits,
        ldt: slot.ldt,
        raw: slot.flags & BOXED != 0,
    }
}

impl<'a> EntryRef<'a> {
    /// The key (read from the entry's own allocation: a memory access the inline fields
    /// below do not make).
    pub(crate) fn key(&self) -> &'a [u8] {
        self.slot.key()
    }

    /// Last access stamp.
    pub(crate) fn access(&self) -> u32 {
        self.slot.access
    }

    /// Whether the key has a TTL (an inline flag: the deadline itself is not read).
    pub(crate) fn has_deadline(&self) -> bool {
        self.slot.flags & VOLATILE != 0
    }

    /// Wall-clock deadline in milliseconds; 0 when the key has no TTL.
    pub(crate) fn expire_at_ms(&self) -> u64 {
        self.slot.expire_at_ms()
    }

    /// The LFU counter at `now_ms`, decayed by the minutes the key sat idle (Redis's
    /// `LFUDecrAndReturn`, what OBJECT FREQ and LFU eviction read); nothing is stored.
    pub(crate) fn lfu_counter(&self, now_ms: u64, lfu: Lfu) -> u8 {
        lfu_decayed(self.slot.hits, self.slot.ldt, now_ms, lfu.decay_minutes)
    }

    /// Whether the deadline has passed at `now_ms`.
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.slot.is_expired(now_ms)
    }

    /// The Redis type name (`TYPE`).
    pub(crate) fn type_name(&self) -> &'static str {
        type_in(self.slot, self.slab)
    }

    /// Bytes the entry is charged.
    pub(crate) fn mem(&self) -> u32 {
        mem_in(self.slot, self.slab)
    }

    /// A detached copy of the entry.
    pub(crate) fn to_entry(self) -> Entry {
        detach(self.slot, self.slab)
    }
}

impl<'a> EntryMut<'a> {
    /// Deadline in wall-clock milliseconds; 0 means no TTL.
    pub(crate) fn expire_at_ms(&self) -> u64 {
        self.slot.expire_at_ms()
    }

    /// Sets the LRU stamp (TOUCH).
    pub(crate) fn set_access(&mut self, stamp: u32) {
        self.slot.access = stamp;
    }

    /// Last access stamp.
    pub(crate) fn access(&self) -> u32 {
        self.slot.access
    }

    /// Sets the LFU counter and the minute it was last decremented (RESTORE … FREQ).
    pub(crate) fn set_lfu(&mut self, hits: u8, ldt: u16) {
        self.slot.hits = hits;
        self.slot.ldt = ldt;
    }

    /// The value, read-only: a string's bytes (embedded or boxed) or the boxed value.
    pub(crate) fn into_stored(self) -> crate::cache::rdb::Stored<'a> {
        let slot: &'a Slot = self.slot;
        let slab: &'a Slab = self.slab;
        match boxed_of(slot, slab) {
            Some(b) => crate::cache::rdb::Stored::Value(&b.value),
            None => crate::cache::rdb::Stored::Str(slot.tail()),
        }
    }

    /// The LFU counter at `now_ms` (see [`EntryRef::lfu_counter`]).
    pub(crate) fn lfu_counter(&self, now_ms: u64, lfu: Lfu) -> u8 {
        lfu_decayed(self.slot.hits, self.slot.ldt, now_ms, lfu.decay_minutes)
    }

    /// The Redis type name (`TYPE`).
    pub(crate) fn type_name(&self) -> &'static str {
        type_in(self.slot, self.slab)
    }

    /// The encoding `OBJECT ENCODING` reports: a boxed string was changed in place (see the
    /// module doc), which Redis 7.0 does only to a `raw` one (`dbUnshareStringValue`), so it
    /// is `raw` whatever its size or digits. A collection's is the one its writes left it in.
    pub(crate) fn encoding(&self) -> &'static str {
        match boxed_of(self.slot, self.slab) {
            Some(Boxed {
                value: Value::Str(_),
                ..
            }) => "raw",
            Some(b) => b.value.encoding(),
            None => Value::str_encoding(self.slot.tail()),
        }
    }

    /// A detached copy of the entry.
    pub(crate) fn to_entry(&self) -> Entry {
        detach(self.slot, self.slab)
    }

    /// The string's bytes, `None` for a collection.
    pub(crate) fn into_str(self) -> Option<&'a [u8]> {
        str_of(self.slot, self.slab)
    }

    /// [`EntryMut::into_str`] without giving up the entry.
    pub(crate) fn str(&self) -> Option<&[u8]> {
        str_of(self.slot, self.slab)
    }

    /// Replaces the bytes of the string with a new value, keeping its deadline and metadata (an
    /// embedded string of the same length is overwritten where it is; a boxed one is embedded
    /// again, as Redis's INCR and INCRBYFLOAT store a new `int` or `embstr` object in place of a
    /// `raw` one). Returns false, changing nothing, when the entry holds a collection.
    pub(crate) fn replace_str(self, bytes: &[u8]) -> bool {
        let Self {
            slot,
            slab,
            used_bytes,
        } = self;
        let old_mem = mem_in(slot, slab);
        match slot.boxed_index() {
            Some(i) => {
                if !matches!(
                    slab.get(i),
                    Some(Boxed {
                        value: Value::Str(_),
                        ..
                    })
                ) {
                    return false;
                }
                slab.take(i);
                let (deadline, key, _) = slot.parts();
                slot.kv = pack(key, deadline, bytes);
                slot.flags &= !BOXED;
            }
            None => {
                let (deadline, key, old) = slot.parts();
                if old.len() == bytes.len() {
                    let start = slot.kv.len().saturating_sub(bytes.len());
                    if let Some(tail) = slot.kv.get_mut(start..) {
                        tail.copy_from_slice(bytes);
                    }
                } else {
                    slot.kv = pack(key, deadline, bytes);
                }
            }
        }
        let new_mem = mem_in(slot, slab);
        *used_bytes = used_bytes
            .saturating_sub(old_mem as usize)
            .saturating_add(new_mem as usize);
        true
    }

    /// Runs `grow` on the boxed value and settles the entry's charge after it, as
    /// [`Shard::settle`] does but without looking the key up again. `None`, without running
    /// `grow`, when the entry is an embedded string. For changes that cannot leave a
    /// collection empty (a push): `Shard::settle` is what deletes an emptied one.
    pub(crate) fn grow_boxed<R>(self, grow: impl FnOnce(&mut Value) -> R) -> Option<R> {
        let Self {
            slot,
            slab,
            used_bytes,
        } = self;
        let key_len = slot.key().len();
        let b = slab.get_mut(slot.boxed_index()?)?;
        let out = grow(&mut b.value);
        let mem = mem_of(key_len, b.value.mem_bytes());
        *used_bytes = used_bytes
            .saturating_sub(b.mem as usize)
            .saturating_add(mem as usize);
        b.mem = mem;
        Some(out)
    }

    /// The boxed value (every collection; strings only once changed in place), without
    /// converting an embedded string.
    pub(crate) fn into_boxed(self) -> Option<&'a mut Value> {
        let i = self.slot.boxed_index()?;
        Some(&mut self.slab.get_mut(i)?.value)
    }

    /// The value, writable: an embedded string is moved into the slab first.
    pub(crate) fn into_value_mut(self) -> Option<&'a mut Value> {
        if self.slot.flags & BOXED == 0 {
            let (deadline, key, value) = self.slot.parts();
            let mem = mem_of(key.len(), value.len());
            let i = self.slab.put(Boxed {
                value: Value::Str(value.to_vec()),
                mem,
            });
            self.slot.kv = pack(key, deadline, &i.to_le_bytes());
            self.slot.flags |= BOXED;
        }
        self.into_boxed()
    }
}

/// SplitMix64's output function: every output bit depends on every input bit.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Random slots [`Shard::random_entry`] probes before walking to an occupied one.
const RANDOM_PROBES_MAX: usize = 256;

/// One shard.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    table: HashTable<Slot>,
    hasher: DefaultHashBuilder,
    slab: Slab,
    /// Deadlines of the keys with a TTL.
    expiry: ExpiryIndex,
    /// How many entries have a deadline.
    volatile: usize,
    /// Estimated bytes held by this shard.
    pub(crate) used_bytes: usize,
    /// Keys removed by lazy or active expiry since the caller last drained them.
    pub(crate) expired: Vec<Box<[u8]>>,
    /// Counted lookups (a read command's) that found a live key: INFO `keyspace_hits`, summed
    /// over the shards then (a counter under the shard's lock, not a shared atomic per read).
    pub(crate) keyspace_hits: u64,
    /// Counted lookups that found no live key: INFO `keyspace_misses`.
    pub(crate) keyspace_misses: u64,
    /// Insertion queue for the SIEVE policy; `None` unless that policy is in force.
    pub(crate) sieve: Option<Sieve>,
    /// SplitMix64 state for the LFU counter's coin flips.
    rng: u64,
    /// Set by the context holding the lock while CLIENT PAUSE holds expiry for a read: a
    /// lookup sees an expired key as missing and leaves it in place (`crate::cache::pause`).
    pub(crate) keep_expired: bool,
}

impl Shard {
    /// An empty shard, with a SIEVE queue when that policy is in force.
    pub(crate) fn new(sieve: bool) -> Self {
        Self {
            sieve: sieve.then(Sieve::default),
            ..Self::default()
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of stored entries (expired ones not yet removed included).
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Number of entries with a deadline.
    pub(crate) fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// The stored slots whose key hashes to `hash` and whose deadline is `deadline`
    /// (`iter_hash` also yields slots that only share the hash's 7-bit tag, so the full hash is
    /// checked).
    fn with_deadline(&self, deadline: u64, hash: u64) -> impl Iterator<Item = &Slot> {
        let hasher = &self.hasher;
        self.table
            .iter_hash(hash)
            .filter(move |s| s.expire_at_ms() == deadline && hasher.hash_one(s.key()) == hash)
    }

    fn has_deadline(&self, deadline: u64, hash: u64) -> bool {
        self.with_deadline(deadline, hash).next().is_some()
    }

    /// Drops the index pair `(deadline, hash)` unless a stored entry still has it.
    fn forget_deadline(&mut self, deadline: u64, hash: u64) {
        self.volatile = self.volatile.saturating_sub(1);
        if !self.has_deadline(deadline, hash) {
            self.expiry.remove(deadline, hash);
        }
    }

    /// Every stored entry with its key, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        let slab = &self.slab;
        self.table
            .iter()
            .map(move |slot| (slot.key(), EntryRef { slot, slab }))
    }

    /// SCAN over this shard: visits the entries whose home bucket (their key hash masked to the
    /// table's size) is the next in Redis's reverse-binary order from `cursor`, bucket after
    /// bucket, until `*visited` reaches `count` or `*buckets_left` reaches 0 (both counted
    /// here; an empty shard costs one bucket); returns the next cursor, 0 once every home
    /// bucket was visited.
    ///
    /// Why by home bucket, not by slot: a deletion never moves an entry and a resize moves
    /// each entry to a home bucket that extends its old one by a high bit, so, as in Redis,
    /// every entry present for a whole iteration is visited at least once, though the table
    /// may grow or shrink between calls. A home bucket's entries are found through
    /// `iter_hash` for each of the 128 control tags (the top 7 bits of the hash): an entry
    /// lies on its home bucket's probe sequence, which is exactly what `iter_hash` walks.
    pub(crate) fn scan(
        &self,
        cursor: u64,
        count: usize,
        visited: &mut usize,
        buckets_left: &mut usize,
        mut visit: impl FnMut(&[u8], EntryRef<'_>),
    ) -> u64 {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            *buckets_left = buckets_left.saturating_sub(1);
            return 0;
        }
        let mask = (buckets as u64).wrapping_sub(1);
        let mut v = cursor;
        loop {
            let home = v & mask;
            for tag in 0..CONTROL_TAGS {
                for slot in self.table.iter_hash((tag << 57) | home) {
                    let key = slot.key();
                    if self.hash(key) & mask == home {
                        visit(
                            key,
                            EntryRef {
                                slot,
                                slab: &self.slab,
                            },
                        );
                        *visited += 1;
                    }
                }
            }
            // Increments the reversed cursor: the bits above the mask are set so the carry
            // runs through them and leaves them clear.
            v = (v | !mask).reverse_bits().wrapping_add(1).reverse_bits();
            *buckets_left = buckets_left.saturating_sub(1);
            if v == 0 || *visited >= count || *buckets_left == 0 {
                return v;
            }
        }
    }

    /// A stored entry picked uniformly at random from `seed`, `None` when the shard is empty:
    /// random slots are probed until one is occupied (the table is at least 7/16 full once it
    /// has grown, so a few probes suffice); after [`RANDOM_PROBES_MAX`] misses (a table left
    /// nearly empty by deletions), an entry at a uniform position of a walk over the table. (Taking the first occupied slot after a single
    /// random one, as Redis's bucket pick does, favours the entries that follow empty runs.)
    pub(crate) fn random_entry(&self, seed: u64) -> Option<(&[u8], EntryRef<'_>)> {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return None;
        }
        // SplitMix64 from a mixed start: seeds that differ by the generator's own step (as
        // callers' counters do) must not share probe sequences.
        let mut x = splitmix(seed);
        for _ in 0..RANDOM_PROBES_MAX {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = splitmix(x);
            if let Some(slot) = self.table.get_bucket((z % buckets as u64) as usize) {
                return Some((
                    slot.key(),
                    EntryRef {
                        slot,
                        slab: &self.slab,
                    },
                ));
            }
        }
        // A table nearly empty after deletions: the n-th entry, n uniform, by a walk.
        let nth = (splitmix(x) % self.table.len() as u64) as usize;
        self.table.iter().nth(nth).map(|slot| {
            (
                slot.key(),
                EntryRef {
                    slot,
                    slab: &self.slab,
                },
            )
        })
    }

    /// Up to `max` stored entries from consecutive occupied slots, starting at a slot picked
    /// by `seed` and wrapping (Redis's `dictGetSomeKeys`): the cost is the slots walked, about
    /// `max` over the table's load, not the shard's size. Fewer than `max` only when the shard
    /// holds fewer.
    pub(crate) fn sample(&self, seed: u64, max: usize) -> Vec<EntryRef<'_>> {
        let buckets = self.table.num_buckets();
        let want = max.min(self.table.len());
        let mut out = Vec::with_capacity(want);
        if want == 0 || buckets == 0 {
            return out;
        }
        // `num_buckets` is a power of two, so the mask wraps the walk.
        let start = (seed % buckets as u64) as usize;
        for i in 0..buckets {
            if let Some(slot) = self.table.get_bucket((start + i) & (buckets - 1)) {
                out.push(EntryRef {
                    slot,
                    slab: &self.slab,
                });
                if out.len() == want {
                    break;
                }
            }
        }
        out
    }

    /// The stored entry under `key`, expired or not, without touching it.
    pub(crate) fn peek(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        let slot = self.table.find(self.hash(key), |s| s.key() == key)?;
        Some(EntryRef {
            slot,
            slab: &self.slab,
        })
    }

    /// The live entry under `key`, removing it first if it has expired at `now_ms`; the lookup
    /// is an access (LRU stamp, LFU counter with the settings `lfu`, SIEVE's visited bit).
    pub(crate) fn lookup(&mut self, key: &[u8], now_ms: u64, lfu: Lfu) -> Option<EntryMut<'_>> {
        self.find_live(key, now_ms, Some(lfu), false)
    }

    /// [`Shard::lookup`] (or, `touch` `None`, [`Shard::lookup_notouch`]) that also counts a hit
    /// or a miss in the shard's keyspace statistics, as Redis's `lookupKeyRead`.
    pub(crate) fn lookup_counted(
        &mut self,
        key: &[u8],
        now_ms: u64,
        touch: Option<Lfu>,
    ) -> Option<EntryMut<'_>> {
        self.find_live(key, now_ms, touch, true)
    }

    /// [`Shard::lookup`] without the access (Redis's `LOOKUP_NOTOUCH`, which EXISTS, TYPE, the
    /// TTL family and OBJECT use): the entry's idle time and frequency stay as they were.
    pub(crate) fn lookup_notouch(&mut self, key: &[u8], now_ms: u64) -> Option<EntryMut<'_>> {
        self.find_live(key, now_ms, None, false)
    }

    /// A uniform draw in `[0, 1)` (SplitMix64) for the LFU counter.
    fn coin(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits, exactly representable, over 2^53.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    #[inline]
    fn find_live(
        &mut self,
        key: &[u8],
        now_ms: u64,
        touch: Option<Lfu>,
        count: bool,
    ) -> Option<EntryMut<'_>> {
        let hash = self.hash(key);
        // One probe: the bucket found is revisited by index (the borrow checker does not let
        // a found slot be returned on one path and the table changed on another).
        let Some(at) = self.table.find_bucket_index(hash, |s| s.key() == key) else {
            self.keyspace_misses += u64::from(count);
            return None;
        };
        if self
            .table
            .get_bucket(at)
            .is_some_and(|s| s.is_expired(now_ms))
        {
            if !self.keep_expired {
                self.unlink_hashed(key, hash);
                self.expired.push(key.into());
            }
            self.keyspace_misses += u64::from(count);
            return None;
        }
        self.keyspace_hits += u64::from(count);
        let r = match touch {
            Some(lfu) if lfu.active => self.coin(),
            _ => 0.0,
        };
        let Self {
            table,
            slab,
            used_bytes,
            ..
        } = self;
        let slot = table.get_bucket_mut(at)?;
        if let Some(lfu) = touch {
            slot.flags |= VISITED;
            slot.access = access_stamp(now_ms);
            if lfu.active {
                // Redis's `updateLFU`: decay by the idle minutes, then a logarithmic increment.
                let counter = lfu_decayed(slot.hits, slot.ldt, now_ms, lfu.decay_minutes);
                slot.hits = lfu_log_incr(counter, r, lfu.log_factor);
                slot.ldt = lfu_minutes(now_ms);
            }
        }
        Some(EntryMut {
            slot,
            slab,
            used_bytes,
        })
    }

    /// Stores `entry` under `key`, replacing any previous entry (and its deadline).
    pub(crate) fn insert(&mut self, key: &[u8], entry: Entry) {
        self.insert_keeping(key, entry, false);
    }

    /// [`Shard::insert`]; with `keep_lfu`, a replaced entry's LFU counter and its time stay
    /// (Redis's `dbOverwrite` keeps the old object's `lru` field under an LFU policy).
    fn insert_keeping(&mut self, key: &[u8], mut entry: Entry, keep_lfu: bool) {
        let hash = self.hash(key);
        if let Value::Str(bytes) = &entry.value
            && !entry.raw
            && self.sieve.is_none()
            && self.overwrite_embedded(key, hash, bytes, &entry, keep_lfu)
        {
            return;
        }
        if let Some((old, _)) = self.unlink_hashed(key, hash)
            && keep_lfu
        {
            entry.hits = old.hits;
            entry.ldt = old.ldt;
        }
        let Entry {
            value,
            expire_at_ms,
            access,
            visited,
            hits,
            ldt,
            raw,
        } = entry;
        let mut flags = if visited { VISITED } else { 0 };
        if expire_at_ms != 0 {
            flags |= VOLATILE;
        }
        let (kv, mem) = match value {
            Value::Str(s) if !raw => (pack(key, expire_at_ms, &s), mem_of(key.len(), s.len())),
            value => {
                let mem = mem_of(key.len(), value.mem_bytes());
                let i = self.slab.put(Boxed { value, mem });
                flags |= BOXED;
                (pack(key, expire_at_ms, &i.to_le_bytes()), mem)
            }
        };
        self.used_bytes = self.used_bytes.saturating_add(mem as usize);
        if expire_at_ms != 0 {
            self.expiry.insert(expire_at_ms, hash);
            self.volatile = self.volatile.saturating_add(1);
        }
        if let Some(s) = &mut self.sieve {
            s.insert(key);
        }
        let hasher = &self.hasher;
        self.table.insert_unique(
            hash,
            Slot {
                kv,
                access,
                ldt,
                hits,
                flags,
            },
            |s| hasher.hash_one(s.key()),
        );
    }

    /// Stores the string `bytes` under `key` with the metadata of `meta` (its value is ignored):
    /// an existing embedded string is overwritten in its slot without building a value first,
    /// anything else goes through [`Shard::insert`]. A replaced key keeps its LFU counter, as
    /// Redis's SET keeps the overwritten object's.
    pub(crate) fn insert_str(&mut self, key: &[u8], bytes: &[u8], meta: Entry) {
        let hash = self.hash(key);
        if self.sieve.is_none() && self.overwrite_embedded(key, hash, bytes, &meta, true) {
            return;
        }
        self.insert_keeping(
            key,
            Entry {
                value: Value::Str(bytes.to_vec()),
                raw: false,
                ..meta
            },
            true,
        );
    }

    /// Overwrites an embedded string entry in its slot (no table removal; no allocation when
    /// the deadline and the length stay). Returns false, changing nothing, when `key` is absent
    /// or boxed.
    fn overwrite_embedded(
        &mut self,
        key: &[u8],
        hash: u64,
        bytes: &[u8],
        entry: &Entry,
        keep_lfu: bool,
    ) -> bool {
        let Self {
            table, used_bytes, ..
        } = self;
        let Some(slot) = table.find_mut(hash, |s| s.key() == key) else {
            return false;
        };
        if slot.flags & BOXED != 0 {
            return false;
        }
        let (old_deadline, _, old) = slot.parts();
        let old_mem = mem_of(key.len(), old.len());
        let new_deadline = entry.expire_at_ms;
        if old_deadline == new_deadline && old.len() == bytes.len() {
            let start = slot.kv.len().saturating_sub(bytes.len());
            if let Some(tail) = slot.kv.get_mut(start..) {
                tail.copy_from_slice(bytes);
            }
        } else {
            slot.kv = pack(key, new_deadline, bytes);
        }
        slot.flags = if entry.visited { VISITED } else { 0 };
        if new_deadline != 0 {
            slot.flags |= VOLATILE;
        }
        slot.access = entry.access;
        if !keep_lfu {
            slot.hits = entry.hits;
            slot.ldt = entry.ldt;
        }
        *used_bytes = used_bytes
            .saturating_sub(old_mem as usize)
            .saturating_add(mem_of(key.len(), bytes.len()) as usize);
        self.move_deadline(hash, old_deadline, new_deadline);
        true
    }

    /// Moves the index entry of a slot with key hash `hash` from deadline `old` to `new` (either
    /// may be 0: none); the slot already carries `new`.
    fn move_deadline(&mut self, hash: u64, old: u64, new: u64) {
        if old == new {
            return;
        }
        if old != 0 {
            self.forget_deadline(old, hash);
        }
        if new != 0 {
            self.expiry.insert(new, hash);
            self.volatile = self.volatile.saturating_add(1);
        }
    }

    /// Replaces the bytes of the string under `key`, keeping its deadline and metadata.
    /// Returns false when no string is stored there.
    pub(crate) fn replace_str(&mut self, key: &[u8], bytes: &[u8]) -> bool {
        let hash = self.hash(key);
        let Self {
            table,
            slab,
            used_bytes,
            ..
        } = self;
        table
            .find_mut(hash, |s| s.key() == key)
            .is_some_and(|slot| {
                EntryMut {
                    slot,
                    slab,
                    used_bytes,
                }
                .replace_str(bytes)
            })
    }

    /// Removes `key`, returning its entry.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let hash = self.hash(key);
        let (slot, boxed) = self.unlink_hashed(key, hash)?;
        Some(Entry {
            raw: boxed.is_some(),
            value: boxed.map_or_else(|| Value::Str(slot.tail().to_vec()), |b| b.value),
            expire_at_ms: slot.expire_at_ms(),
            access: slot.access,
            visited: slot.flags & VISITED != 0,
            hits: slot.hits,
            ldt: slot.ldt,
        })
    }

    /// Deletes `key`, dropping its value where it lies (no copy of a string stored in its
    /// slot, as [`Shard::remove`] makes to return it). Returns whether it existed.
    pub(crate) fn delete(&mut self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        self.unlink_hashed(key, hash).is_some()
    }

    /// Takes `key`'s slot out of the table, the SIEVE queue and the deadline index, and its
    /// boxed value (if any) out of the slab, and uncharges its memory.
    fn unlink_hashed(&mut self, key: &[u8], hash: u64) -> Option<(Slot, Option<Boxed>)> {
        let (slot, _) = self
            .table
            .find_entry(hash, |s| s.key() == key)
            .ok()?
            .remove();
        if let Some(s) = &mut self.sieve {
            s.remove(key);
        }
        let expire_at_ms = slot.expire_at_ms();
        if expire_at_ms != 0 {
            self.forget_deadline(expire_at_ms, hash);
        }
        let boxed = slot.boxed_index().and_then(|i| self.slab.take(i));
        let mem = boxed
            .as_ref()
            .map_or_else(|| mem_of(key.len(), slot.tail().len()), |b| b.mem);
        self.used_bytes = self.used_bytes.saturating_sub(mem as usize);
        Some((slot, boxed))
    }

    /// Sets (or with 0 clears) the deadline of an existing `key`. Returns whether it exists.
    pub(crate) fn set_expire(&mut self, key: &[u8], deadline_ms: u64) -> bool {
        let hash = self.hash(key);
        let Some(slot) = self.table.find_mut(hash, |s| s.key() == key) else {
            return false;
        };
        let old = slot.expire_at_ms();
        if old == deadline_ms {
            return true;
        }
        slot.set_deadline(deadline_ms);
        self.move_deadline(hash, old, deadline_ms);
        true
    }

    /// Re-measures `key` after its value changed in place; removes it if it became an empty
    /// collection. Returns whether the key still exists.
    pub(crate) fn settle(&mut self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let Some(slot) = self.table.find(hash, |s| s.key() == key) else {
            return false;
        };
        let Some(b) = slot.boxed_index().and_then(|i| self.slab.get_mut(i)) else {
            return true;
        };
        if b.value.is_empty_collection() {
            self.delete(key);
            return false;
        }
        let mem = mem_of(key.len(), b.value.mem_bytes());
        self.used_bytes = self
            .used_bytes
            .saturating_sub(b.mem as usize)
            .saturating_add(mem as usize);
        b.mem = mem;
        true
    }

    /// Removes at most `max` keys whose deadline has passed at `now_ms`; returns how many.
    pub(crate) fn expire_due(&mut self, now_ms: u64, max: usize) -> usize {
        let mut n = 0;
        for (deadline, hash) in self.expiry.due(now_ms, max) {
            let keys: Vec<Box<[u8]>> = self
                .with_deadline(deadline, hash)
                .map(|s| Box::from(s.key()))
                .collect();
            for key in keys {
                self.delete(&key);
                self.expired.push(key);
                n += 1;
            }
        }
        n
    }

    /// The key with the earliest deadline and that deadline (for `volatile-ttl` eviction).
    pub(crate) fn earliest_volatile(&self) -> Option<(u64, &[u8])> {
        let (deadline, hash) = self.expiry.earliest()?;
        self.with_deadline(deadline, hash)
            .next()
            .map(|s| (deadline, s.key()))
    }

    /// Up to `max` entries with a TTL, sampled from the deadline index from a point picked by
    /// `seed` (`volatile-lru` samples these, so a few keys with a TTL among many without are
    /// still found).
    pub(crate) fn sample_volatile(&self, seed: u64, max: usize) -> Vec<EntryRef<'_>> {
        let mut out = Vec::with_capacity(max);
        for (deadline, hash) in self.expiry.sample(seed, max) {
            for slot in self.with_deadline(deadline, hash) {
                if out.len() < max {
                    out.push(EntryRef {
                        slot,
                        slab: &self.slab,
                    });
                }
            }
        }
        out
    }

    /// SIEVE's next victim, queueing every key first if the policy was switched on at run time.
    pub(crate) fn sieve_victim(&mut self) -> Option<Box<[u8]>> {
        let Self {
            table,
            hasher,
            sieve,
            ..
        } = self;
        let queue = sieve.get_or_insert_with(|| {
            let mut s = Sieve::default();
            for slot in table.iter() {
                s.insert(slot.key());
            }
            s
        });
        queue.victim(|k| {
            table
                .find_mut(hasher.hash_one(k), |s| s.key() == k)
                .is_some_and(|s| {
                    let was = s.flags & VISITED != 0;
                    s.flags &= !VISITED;
                    was
                })
        })
    }

    /// The bytes the stored entries come to when measured afresh from their elements: equals
    /// `used_bytes` (the module invariant). O(entries + elements); for audits.
    pub(crate) fn recount_bytes(&self) -> usize {
        self.table.iter().fold(0usize, |n, slot| {
            let (_, key, tail) = slot.parts();
            let value_bytes = match boxed_of(slot, &self.slab) {
                Some(b) => b.value.recount_mem_bytes(),
                None => tail.len(),
            };
            n.saturating_add(mem_of(key.len(), value_bytes) as usize)
        })
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.table = HashTable::new();
        self.slab = Slab::default();
        self.expiry.clear();
        self.volatile = 0;
        self.used_bytes = 0;
        if self.sieve.is_some() {
            self.sieve = Some(Sieve::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::value::{Compact, SetValue};

    #[test]
    fn a_sample_is_distinct_live_entries_and_every_key_can_be_drawn() {
        let mut shard = Shard::new(false);
        assert!(shard.sample(7, 16).is_empty());
        for i in 0..1_000u32 {
            shard.insert(
                format!("k{i}").as_bytes(),
                Entry::new(Value::Str(b"v".to_vec())),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for seed in 0..4_096u64 {
            let keys: Vec<Vec<u8>> = shard
                .sample(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 16)
                .into_iter()
                .map(|e| e.key().to_vec())
                .collect();
            assert_eq!(keys.len(), 16);
            let distinct: std::collections::HashSet<_> = keys.iter().collect();
            assert_eq!(distinct.len(), 16, "a sample repeats a key");
            seen.extend(keys);
        }
        assert_eq!(seen.len(), 1_000, "some keys are never sampled");
        // Fewer entries than asked: every one, once.
        let mut small = Shard::new(false);
        for i in 0..5u32 {
            small.insert(
                format!("s{i}").as_bytes(),
                Entry::new(Value::Str(Vec::new())),
            );
        }
        assert_eq!(small.sample(u64::MAX, 16).len(), 5);
    }

    #[test]
    fn a_random_entry_is_uniform_even_in_a_sparse_table() {
        // Several shards, each with its own randomly seeded hasher, so several table layouts.
        for _ in 0..5 {
            // 1000 inserted, 900 removed: the table keeps its size, so the 100 left sit
            // between runs of empty slots of very different lengths.
            let mut shard = Shard::new(false);
            for i in 0..1_000u32 {
                shard.insert(
                    format!("k{i}").as_bytes(),
                    Entry::new(Value::Str(b"v".to_vec())),
                );
            }
            for i in 100..1_000u32 {
                assert!(shard.remove(format!("k{i}").as_bytes()).is_some());
            }
            let mut counts = std::collections::HashMap::new();
            for seed in 0..100_000u64 {
                // Seeds one generator step apart, as `evict_until` draws them.
                let (k, _) = shard
                    .random_entry(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .unwrap();
                *counts.entry(k.to_vec()).or_insert(0u64) += 1;
            }
            assert_eq!(counts.len(), 100);
            // 1000 expected each; a binomial's spread is ≈ 31.5, so ±6 of it.
            let (min, max) = (
                counts.values().min().copied().unwrap_or(0),
                counts.values().max().copied().unwrap_or(0),
            );
            assert!(min > 810 && max < 1_190, "min {min}, max {max}");
        }
    }

    #[test]
    fn delete_releases_what_remove_would_without_returning_the_value() {
        // An inline string with a deadline, and a boxed value (a set).
        let fill = |s: &mut Shard| {
            let mut inline = Entry::new(Value::Str(b"inline value".to_vec()));
            inline.expire_at_ms = 5_000;
            s.insert(b"inline", inline);
            s.insert(
                b"boxed",
                Entry::new(Value::Set(Box::new(SetValue::from_members(
                    [&b"a"[..], b"b"]
                        .into_iter()
                        .map(bytes::Bytes::copy_from_slice)
                        .collect(),
                    Compact::default().intset_entries,
                )))),
            );
        };
        let (mut deleted, mut removed) = (Shard::new(false), Shard::new(false));
        fill(&mut deleted);
        fill(&mut removed);
        assert!(deleted.used_bytes > 0);
        assert_eq!(deleted.used_bytes, removed.used_bytes);
        for key in [&b"inline"[..], b"boxed"] {
            assert!(deleted.delete(key));
            assert!(removed.remove(key).is_some());
            assert_eq!(deleted.used_bytes, removed.used_bytes);
            assert!(!deleted.delete(key), "deleted twice");
        }
        assert_eq!(deleted.used_bytes, 0);
        assert_eq!(deleted.len(), 0);
        assert!(deleted.earliest_volatile().is_none(), "deadline kept");
        assert!(
            deleted.slab.cells.iter().all(Option::is_none),
            "boxed value kept"
        );
    }

    #[test]
    fn the_lfu_counter_decays_one_per_decay_period_as_redis() {
        let minute = 60_000;
        // Idle for 2 min 59 s with a 1-minute decay time: two periods.
        assert_eq!(lfu_decayed(10, 0, 3 * minute - 1_000, 1), 8);
        assert_eq!(lfu_decayed(10, 0, 3 * minute, 1), 7);
        // A 2-minute decay time halves the periods; 0 disables the decay.
        assert_eq!(lfu_decayed(10, 0, 5 * minute, 2), 8);
        assert_eq!(lfu_decayed(10, 0, 500 * minute, 0), 10);
        // More periods than the counter: 0, never wrapping.
        assert_eq!(lfu_decayed(10, 0, 300 * minute, 1), 0);
        // The 16-bit minute clock wraps once (Redis's LFUTimeElapsed: 65535 - ldt + now).
        assert_eq!(lfu_decayed(10, 65_534, 65_536 * minute + 2 * minute, 1), 7);
    }

    #[test]
    fn the_lfu_counter_climbs_logarithmically_as_redis() {
        // Up to LFU_INIT_VAL every hit counts (p = 1).
        assert_eq!(lfu_log_incr(0, 0.999, 10), 1);
        assert_eq!(lfu_log_incr(LFU_INIT_VAL, 0.999, 10), LFU_INIT_VAL + 1);
        // At 7 with factor 10: p = 1 / (2 × 10 + 1).
        let p = 1.0 / 21.0;
        assert_eq!(lfu_log_incr(7, p - 1e-9, 10), 8);
        assert_eq!(lfu_log_incr(7, p, 10), 7);
        // Factor 0: every hit counts; 255 saturates.
        assert_eq!(lfu_log_incr(100, 0.999, 0), 101);
        assert_eq!(lfu_log_incr(255, 0.0, 0), 255);
    }

    #[test]
    fn pack_round_trips_short_and_long_keys() {
        let long = vec![b'k'; 300];
        for key in [&b""[..], b"a", &long[..254], &long[..255], &long] {
            let kv = pack(key, 0, b"value");
            assert_eq!(split(&kv, 0), (0, key, &b"value"[..]));
            let kv = pack(key, 42, b"value");
            assert_eq!(split(&kv, VOLATILE), (42, key, &b"value"[..]));
        }
    }

    #[test]
    fn strings_embed_until_changed_in_place() {
        let mut s = Shard::default();
        s.insert(b"k", Entry::new(Value::Str(b"v".to_vec())));
        assert_eq!(s.slab.cells.len(), 0);
        let used = s.used_bytes;
        let e = s.lookup(b"k", 1, Lfu::default()).map(EntryMut::into_str);
        assert_eq!(e, Some(Some(&b"v"[..])));
        if let Some(Some(Value::Str(v))) = s
            .lookup(b"k", 1, Lfu::default())
            .map(EntryMut::into_value_mut)
        {
            v.extend_from_slice(b"w");
        }
        assert!(s.settle(b"k"));
        assert_eq!(s.slab.cells.len(), 1);
        assert_eq!(s.used_bytes, used + 1);
        let e = s.lookup(b"k", 1, Lfu::default()).map(EntryMut::into_str);
        assert_eq!(e, Some(Some(&b"vw"[..])));
        assert!(s.replace_str(b"k", b"xy"));
        assert!(s.replace_str(b"k", b"xyz"));
        assert_eq!(s.used_bytes, used + 2);
        let removed = s.remove(b"k").map(|e| e.value);
        assert_eq!(removed, Some(Value::Str(b"xyz".to_vec())));
        assert_eq!(s.used_bytes, 0);
        assert_eq!(s.slab.free, vec![0]);
    }

    #[test]
    fn overwrites_stay_in_place_and_keep_the_index_in_step() {
        let mut s = Shard::default();
        s.insert(b"k", Entry::new(Value::Str(b"aa".to_vec())));
        let used = s.used_bytes;
        s.insert(b"k", Entry::new(Value::Str(b"bb".to_vec())));
        assert_eq!(s.used_bytes, used);
        assert!(s.replace_str(b"k", b"ccc"));
        assert_eq!(s.used_bytes, used + 1);
        s.insert(
            b"k",
            Entry {
                expire_at_ms: 50,
                ..Entry::new(Value::Str(b"dd".to_vec()))
            },
        );
        assert_eq!(
            (s.volatile_len(), s.earliest_volatile()),
            (1, Some((50, &b"k"[..])))
        );
        s.insert(b"k", Entry::new(Value::Str(b"ee".to_vec())));
        assert_eq!((s.volatile_len(), s.earliest_volatile()), (0, None));
        assert_eq!(s.used_bytes, used);
        assert_eq!(s.len(), 1);
        let e = s.lookup(b"k", 1, Lfu::default()).map(EntryMut::into_str);
        assert_eq!(e, Some(Some(&b"ee"[..])));
        assert!(!s.replace_str(b"missing", b"x"));
    }

    #[test]
    fn deadlines_resolve_through_the_hash() {
        let mut s = Shard::default();
        for (k, d) in [(&b"a"[..], 10), (b"b", 20), (b"c", 0)] {
            s.insert(
                k,
                Entry {
                    expire_at_ms: d,
                    ..Entry::new(Value::Str(k.to_vec()))
                },
            );
        }
        assert_eq!(s.volatile_len(), 2);
        assert_eq!(s.earliest_volatile(), Some((10, &b"a"[..])));
        assert!(s.set_expire(b"a", 30));
        assert_eq!(s.earliest_volatile(), Some((20, &b"b"[..])));
        assert_eq!(s.expire_due(25, 10), 1);
        assert_eq!(s.expired, vec![Box::from(&b"b"[..])]);
        assert!(s.lookup(b"a", 30, Lfu::default()).is_none());
        assert_eq!(s.len(), 1);
        assert_eq!(s.volatile_len(), 0);
    }
}
