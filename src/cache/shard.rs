//! One shard of one logical database: a hash map of entries, its deadline index and its memory
//! account.
//!
//! Invariant: an entry has `expire_at_ms != 0` exactly when the deadline index holds
//! `(expire_at_ms, key)`; `used_bytes` is the sum of the entries' `mem` fields.

use hashbrown::HashMap;

use crate::cache::expiry::ExpiryIndex;
use crate::cache::sieve::Sieve;
use crate::cache::value::Value;

/// Bytes counted per entry for the map slot, key and entry headers.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 64;

/// The low 32 bits of the wall clock in milliseconds: LRU ages are differences taken with
/// wrapping arithmetic, valid for 49 days of idleness.
pub(crate) fn access_stamp(now_ms: u64) -> u32 {
    (now_ms & 0xFFFF_FFFF) as u32
}

/// A key's value with its metadata.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The value.
    pub(crate) value: Value,
    /// Wall-clock deadline in milliseconds; 0 means no TTL.
    pub(crate) expire_at_ms: u64,
    /// Last access, from [`access_stamp`].
    pub(crate) access: u32,
    /// Bytes this entry counts toward `used_bytes`.
    pub(crate) mem: u32,
    /// SIEVE's visited bit.
    pub(crate) visited: bool,
    /// LFU's logarithmic access counter.
    pub(crate) hits: u8,
}

impl Entry {
    /// A fresh entry without TTL.
    pub(crate) fn new(value: Value) -> Self {
        Self {
            value,
            expire_at_ms: 0,
            access: 0,
            mem: 0,
            visited: false,
            hits: 0,
        }
    }

    /// Whether the entry's deadline has passed at `now_ms`.
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms != 0 && self.expire_at_ms <= now_ms
    }
}

/// One shard.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Key → entry.
    pub(crate) map: HashMap<Box<[u8]>, Entry>,
    /// Deadlines of the keys with a TTL.
    pub(crate) expiry: ExpiryIndex,
    /// Estimated bytes held by this shard.
    pub(crate) used_bytes: usize,
    /// Keys removed by lazy or active expiry since the caller last drained them.
    pub(crate) expired: Vec<Box<[u8]>>,
    /// Insertion queue for the SIEVE policy; `None` unless that policy is in force.
    pub(crate) sieve: Option<Sieve>,
}

fn mem_of(key: &[u8], value: &Value) -> u32 {
    u32::try_from(
        key.len()
            .saturating_add(value.mem_bytes())
            .saturating_add(ENTRY_OVERHEAD_BYTES),
    )
    .unwrap_or(u32::MAX)
}

impl Shard {
    /// The live entry under `key`, removing it first if it has expired at `now_ms`.
    pub(crate) fn lookup(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let expired = self.map.get(key).is_some_and(|e| e.is_expired(now_ms));
        if expired {
            self.remove(key);
            self.expired.push(key.into());
            return None;
        }
        let entry = self.map.get_mut(key)?;
        entry.visited = true;
        entry.access = access_stamp(now_ms);
        // A logarithmic counter as Redis's LFU: frequent keys climb ever more slowly.
        let h = u64::from(entry.hits);
        if h < 8
            || (now_ms ^ (key.len() as u64).wrapping_mul(0x9E37_79B9)).is_multiple_of(h * h / 8 + 1)
        {
            entry.hits = entry.hits.saturating_add(1);
        }
        Some(entry)
    }

    /// Stores `entry` under `key`, replacing any previous entry (and its deadline).
    pub(crate) fn insert(&mut self, key: &[u8], mut entry: Entry) {
        self.remove(key);
        entry.mem = mem_of(key, &entry.value);
        self.used_bytes = self.used_bytes.saturating_add(entry.mem as usize);
        if entry.expire_at_ms != 0 {
            self.expiry.insert(entry.expire_at_ms, key);
        }
        if let Some(s) = &mut self.sieve {
            s.insert(key);
        }
        self.map.insert(key.into(), entry);
    }

    /// Removes `key`, returning its entry.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        if let Some(s) = &mut self.sieve {
            s.remove(key);
        }
        self.used_bytes = self.used_bytes.saturating_sub(entry.mem as usize);
        if entry.expire_at_ms != 0 {
            self.expiry.remove(entry.expire_at_ms, key);
        }
        Some(entry)
    }

    /// Sets (or with 0 clears) the deadline of an existing `key`. Returns whether it exists.
    pub(crate) fn set_expire(&mut self, key: &[u8], deadline_ms: u64) -> bool {
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        let old = entry.expire_at_ms;
        entry.expire_at_ms = deadline_ms;
        if old != 0 {
            self.expiry.remove(old, key);
        }
        if deadline_ms != 0 {
            self.expiry.insert(deadline_ms, key);
        }
        true
    }

    /// Re-measures `key` after its value changed in place; removes it if it became an empty
    /// collection. Returns whether the key still exists.
    pub(crate) fn settle(&mut self, key: &[u8]) -> bool {
        let Some(entry) = self.map.get_mut(key) else {
            return false;
        };
        if entry.value.is_empty_collection() {
            self.remove(key);
            return false;
        }
        let mem = mem_of(key, &entry.value);
        self.used_bytes = self
            .used_bytes
            .saturating_sub(entry.mem as usize)
            .saturating_add(mem as usize);
        entry.mem = mem;
        true
    }

    /// Removes at most `max` keys whose deadline has passed at `now_ms`; returns how many.
    pub(crate) fn expire_due(&mut self, now_ms: u64, max: usize) -> usize {
        let due = self.expiry.due(now_ms, max);
        let n = due.len();
        for key in due {
            self.remove(&key);
            self.expired.push(key);
        }
        n
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.map.shrink_to_fit();
        self.expiry.clear();
        self.used_bytes = 0;
        if self.sieve.is_some() {
            self.sieve = Some(Sieve::default());
        }
    }
}
