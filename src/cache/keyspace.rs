//! The keyspace: 16 logical databases of shards behind one gate, and [`Ctx`], the view of it a
//! command runs against.
//!
//! Locking: a command that names its keys up front takes the gate shared and then locks the
//! shards of those keys in (db, shard) order; a command that touches a whole database, several
//! databases or keys it only discovers while running (FLUSHALL, SWAPDB, KEYS, EXEC, …) takes the
//! gate exclusively and locks shards as it goes, which cannot deadlock because nobody else holds
//! a shard.
//!
//! Invariant: no shard lock is ever taken without holding the gate.
//! Invariant: within a shared-gate command, shard locks are taken in ascending (db, shard) order.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use crate::cache::notify::{self, Note};
use crate::cache::pause::Pause;
use crate::cache::shard::{Entry, EntryMut, EntryRef, Lfu, Shard, lfu_minutes};
use crate::cache::tracking::RunFor;
use crate::cache::value::Value;
use crate::cache::{DATABASES, EventKind, SHARDS};

// `Keyspace::keyed` collects the wanted shards of a command in a `u32` bit set, and
// `Db::occupied` holds two bits per shard in one.
const _: () = assert!(SHARDS <= 16 && SHARDS.is_power_of_two());

/// One logical database.
#[derive(Debug)]
pub(crate) struct Db {
    /// The shards, indexed by [`shard_of`].
    pub(crate) shards: Box<[Mutex<Shard>]>,
    /// Each shard's sizes as its last context left it ([`pack_sizes`]), read without its lock
    /// by the eviction policies that pick a shard by its size (SIEVE, the random ones).
    pub(crate) sizes: Box<[AtomicU64]>,
    /// Which shards' published sizes are not zero ([`occupancy`]), so eviction skips an
    /// empty database with one load instead of one per shard.
    pub(crate) occupied: AtomicU32,
}

/// Every shard of a database as a bit set (bit `s`: shard `s`), the form of
/// [`Keyspace::occupied_hint`].
pub(crate) const ALL_SHARDS: u32 = (1 << SHARDS) - 1;

/// The bits of [`Db::occupied`] that shard `shard` with published sizes `packed` sets: bit
/// `shard` when it holds keys, bit `SHARDS + shard` when some have a deadline.
fn occupancy(packed: u64, shard: usize) -> u32 {
    let keys = u32::from(packed & u64::from(u32::MAX) != 0) << shard;
    let volatile = u32::from(packed >> 32 != 0) << (SHARDS + shard);
    keys | volatile
}

/// A shard's key count (low 32 bits) and count of keys with a deadline (high 32 bits), each
/// saturating at `u32::MAX`, for [`Db::sizes`].
fn pack_sizes(shard: &Shard) -> u64 {
    let clamp = |n: usize| u64::from(u32::try_from(n).unwrap_or(u32::MAX));
    clamp(shard.volatile_len()) << 32 | clamp(shard.len())
}

/// All databases.
#[derive(Debug)]
pub(crate) struct Keyspace {
    /// Shared for keyed commands, exclusive for whole-keyspace ones.
    pub(crate) gate: RwLock<()>,
    /// The databases.
    pub(crate) dbs: Box<[Db]>,
    /// Enabled keyspace notification classes ([`notify::effective`]: 0 unless K or E is set).
    pub(crate) notify_flags: AtomicU32,
    /// Whether an LFU policy is in force, `lfu-log-factor` and `lfu-decay-time` ([`pack_lfu`]),
    /// one load per command.
    pub(crate) lfu: AtomicU64,
    /// Keys changed since the last snapshot (Redis's `dirty`, INFO's
    /// `rdb_changes_since_last_save`): one per key a command records as changed.
    pub(crate) dirty: AtomicU64,
    /// CLIENT PAUSE (it also holds expiry).
    pub(crate) pause: Pause,
}

/// Packs LFU settings for [`Keyspace::lfu`]: `active` in bit 63, `lfu-log-factor` (at most
/// `LFU_SETTING_MAX`, 31 bits) above `lfu-decay-time`.
pub(crate) fn pack_lfu(lfu: Lfu) -> u64 {
    (u64::from(lfu.active) << 63)
        | (u64::from(lfu.log_factor & 0x7FFF_FFFF) << 32)
        | u64::from(lfu.decay_minutes)
}

fn unpack_lfu(v: u64) -> Lfu {
    Lfu {
        active: v >> 63 == 1,
        log_factor: ((v >> 32) & 0x7FFF_FFFF) as u32,
        decay_minutes: (v & 0xFFFF_FFFF) as u32,
    }
}

/// Which shard of a database holds `key`: the key's 8-byte words folded by multiplication and
/// finished with SplitMix64's mixer, whose low bits depend on every input bit. A hash of its own
/// rather than the map's keeps the bits that pick the shard independent of the bits that pick
/// the bucket; it is not seeded, which is fine for choosing a lock (each shard's map hashes
/// with a random seed). Nothing stored depends on it.
pub(crate) fn shard_of(key: &[u8]) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = key.len() as u64;
    for word in key.chunks(8) {
        // The last word is zero-padded.
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(word) {
            *d = *s;
        }
        h = (h.rotate_left(23) ^ u64::from_le_bytes(b)).wrapping_mul(K);
    }
    (crate::cache::shard::splitmix(h) as usize) & (SHARDS - 1)
}

/// Locks a mutex; a poisoned shard is still structurally sound (no code path panics while
/// holding it), so its data is used as is.
pub(crate) fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Keyspace {
    /// An empty keyspace.
    pub(crate) fn new(sieve: bool, lfu_policy: bool) -> Self {
        let shard = || Shard::new(sieve);
        let dbs = (0..DATABASES)
            .map(|_| Db {
                shards: (0..SHARDS).map(|_| Mutex::new(shard())).collect(),
                sizes: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
                occupied: AtomicU32::new(0),
            })
            .collect();
        Self {
            gate: RwLock::new(()),
            dbs,
            dirty: AtomicU64::new(0),
            pause: Pause::default(),
            notify_flags: AtomicU32::new(0),
            lfu: AtomicU64::new(pack_lfu(Lfu {
                active: lfu_policy,
                ..Lfu::default()
            })),
        }
    }

    fn shard_mutex(&self, db: usize, shard: usize) -> Option<&Mutex<Shard>> {
        self.dbs.get(db)?.shards.get(shard)
    }

    /// Shard `shard` of database `db`, locked on its own (no gate, no context): for reading one
    /// shard at a time, as eviction sampling does. Never held while taking another lock.
    pub(crate) fn lock_one(&self, db: usize, shard: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shard_mutex(db, shard).map(lock)
    }

    /// Shard `shard` of database `db`'s `(keys, keys with a deadline)` as the last context
    /// that held it left them: a hint (a shard being changed right now may differ), so a
    /// caller that finds a hinted shard empty under its lock looks elsewhere.
    pub(crate) fn sizes_hint(&self, db: usize, shard: usize) -> (usize, usize) {
        let packed = self
            .dbs
            .get(db)
            .and_then(|d| d.sizes.get(shard))
            .map_or(0, |a| a.load(Ordering::Relaxed));
        (
            (packed & u64::from(u32::MAX)) as usize,
            (packed >> 32) as usize,
        )
    }

    /// The shards of database `db` whose published sizes hold keys (`volatile`: keys with a
    /// deadline), as a bit set (bit `s`: shard `s`); a hint, as [`Keyspace::sizes_hint`].
    pub(crate) fn occupied_hint(&self, db: usize, volatile: bool) -> u32 {
        let bits = self
            .dbs
            .get(db)
            .map_or(0, |d| d.occupied.load(Ordering::Relaxed));
        let shift = if volatile { SHARDS } else { 0 };
        (bits >> shift) & ALL_SHARDS
    }

    /// The LFU settings in force.
    pub(crate) fn lfu(&self) -> Lfu {
        unpack_lfu(self.lfu.load(Ordering::Relaxed))
    }

    /// A context holding the gate shared and the shards of `keys` (all in `db`) locked, in
    /// ascending shard order (a bit set of the wanted shards: no allocation, each shard once).
    pub(crate) fn keyed<'k>(
        &self,
        db: usize,
        keys: impl IntoIterator<Item = &'k [u8]>,
        now_ms: u64,
    ) -> Ctx<'_> {
        let gate = Gate::Shared(self.gate.read().unwrap_or_else(PoisonError::into_inner));
        let mut ctx = Ctx::new(self, gate, db, now_ms);
        let mut wanted: u32 = 0;
        for key in keys {
            wanted |= 1 << shard_of(key);
        }
        while wanted != 0 {
            let s = wanted.trailing_zeros() as usize;
            wanted &= wanted - 1;
            ctx.lock_shard(db, s);
        }
        ctx
    }

    /// A context holding the gate exclusively.
    pub(crate) fn exclusive(&self, db: usize, now_ms: u64) -> Ctx<'_> {
        let gate = Gate::Exclusive(self.gate.write().unwrap_or_else(PoisonError::into_inner));
        Ctx::new(self, gate, db, now_ms)
    }
}

/// The gate held by a context.
#[derive(Debug)]
pub(crate) enum Gate<'a> {
    /// Keyed command.
    Shared(#[expect(dead_code, reason = "held only for its lock")] RwLockReadGuard<'a, ()>),
    /// Whole-keyspace command.
    Exclusive(#[expect(dead_code, reason = "held only for its lock")] RwLockWriteGuard<'a, ()>),
}

/// A side effect a command had, applied after its locks are released.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effect {
    /// Database.
    pub(crate) db: usize,
    /// Key.
    pub(crate) key: Bytes,
    /// What happened.
    pub(crate) kind: EventKind,
}

/// One locked shard: (database, shard index, guard, `used_bytes` when locked).
type Held<'a> = (usize, usize, MutexGuard<'a, Shard>, usize);

/// The shards a context holds. Most commands lock one shard, which is kept inline so a command
/// allocates nothing for its locks; further shards go to a vector. Positions are stable: 0 is
/// the first shard locked, `i` the `i`-th after it.
#[derive(Debug, Default)]
struct Locks<'a> {
    first: Option<Held<'a>>,
    more: Vec<Held<'a>>,
}

impl<'a> Locks<'a> {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn push(&mut self, held: Held<'a>) {
        if self.first.is_none() {
            self.first = Some(held);
        } else {
            self.more.push(held);
        }
    }

    fn get_mut(&mut self, pos: usize) -> Option<&mut Held<'a>> {
        match pos {
            0 => self.first.as_mut(),
            _ => self.more.get_mut(pos - 1),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Held<'a>> {
        self.first.iter().chain(self.more.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Held<'a>> {
        self.first.iter_mut().chain(self.more.iter_mut())
    }
}

/// What a running command sees: its database, the time, and the locked shards.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    ks: &'a Keyspace,
    /// Locked shards with their `used_bytes` when locked (declared before the gate so they are
    /// released before it).
    locked: Locks<'a>,
    _gate: Gate<'a>,
    /// Selected database.
    pub(crate) db: usize,
    /// Wall-clock milliseconds at the start of the command.
    pub(crate) now_ms: u64,
    /// Modifications, expirations and evictions to publish.
    pub(crate) effects: Vec<Effect>,
    /// Keys removed by expiry while this context ran (count).
    pub(crate) expired: u64,
    /// Whether any list gained elements (wakes blocked pops).
    pub(crate) list_pushed: bool,
    /// State of the random choices (SPOP, RANDOMKEY …), advanced per use; 0 until the first
    /// one, which seeds it from `rng_source` (or, without one, from the time).
    rng_state: u64,
    /// The shared seed sequence a context draws its seed from, only when it makes a random
    /// choice (most commands make none, and skip the shared counter).
    pub(crate) rng_source: Option<&'a AtomicU64>,
    /// Whether a database was flushed or swapped (every blocked client tries again).
    pub(crate) flushed: bool,
    /// Watched keys a FLUSHDB, FLUSHALL or SWAPDB changed (their WATCHes fail at EXEC).
    pub(crate) watch_touched: Vec<(usize, Bytes)>,
    /// Whether the client speaks RESP3 (a few replies nest differently).
    pub(crate) resp3: bool,
    /// Memory was over `maxmemory` when a script command started: its script's
    /// memory-growing commands are refused.
    pub(crate) over_memory: bool,
    /// A script's `redis.call` runs the command.
    pub(crate) in_script: bool,
    /// CLIENT PAUSE holds expiry and the command reads: expired keys are left in place
    /// ([`Ctx::keep_expired`]).
    keep_expired: bool,
    /// The client the command runs for (client-side caching, `crate::cache::tracking`).
    pub(crate) run_for: RunFor,
    /// A script run for a client whose reads are remembered called a read-only command:
    /// the script's declared keys are remembered (Redis 7.0's `trackingRememberKeys`).
    pub(crate) script_read: bool,
    /// The RESP thread runs this script command itself, ready to hand it to another thread
    /// if it runs past its inline budget before it has had an effect.
    pub(crate) script_inline: bool,
    /// Set by such a script when it stopped to be handed off: its reply is to be discarded.
    pub(crate) script_handed_off: bool,
    /// Whether anyone needs per-key effects (WATCH, event subscribers, blocked clients);
    /// without them recording effects is skipped on the hot path.
    pub(crate) track: bool,
    /// Whether lookups count in INFO's `keyspace_hits`/`keyspace_misses` (a read command's,
    /// as Redis's `lookupKeyRead`; writes' lookups do not count).
    pub(crate) count_lookups: bool,
    /// While an inline script run may still be handed off: the (database, shard, hit) of each
    /// counted lookup, so a run that is handed off takes them back ([`Ctx::uncount_lookups`]).
    pub(crate) lookup_log: Option<Vec<(usize, usize, bool)>>,
    /// Keyspace notification classes enabled when the command started (0: none).
    pub(crate) notify: u32,
    /// Keyspace notifications to publish, in the order Redis publishes them.
    pub(crate) notes: Vec<Note>,
    /// LFU settings when the command started.
    pub(crate) lfu: Lfu,
    /// Keys this context changed, added to [`Keyspace::dirty`] when it ends.
    changes: u64,
}

impl<'a> Ctx<'a> {
    fn new(ks: &'a Keyspace, gate: Gate<'a>, db: usize, now_ms: u64) -> Self {
        Self {
            ks,
            locked: Locks::default(),
            _gate: gate,
            db,
            now_ms,
            effects: Vec::new(),
            expired: 0,
            list_pushed: false,
            rng_state: 0,
            rng_source: None,
            flushed: false,
            watch_touched: Vec::new(),
            resp3: false,
            over_memory: false,
            in_script: false,
            keep_expired: false,
            run_for: RunFor::NONE,
            script_read: false,
            script_inline: false,
            script_handed_off: false,
            track: true,
            count_lookups: false,
            lookup_log: None,
            notify: ks.notify_flags.load(Ordering::Relaxed),
            notes: Vec::new(),
            lfu: ks.lfu(),
            changes: 0,
        }
    }

    fn lock_shard(&mut self, db: usize, shard: usize) -> Option<usize> {
        if let Some(pos) = self
            .locked
            .iter()
            .position(|(d, s, _, _)| *d == db && *s == shard)
        {
            return Some(pos);
        }
        let m = self.ks.shard_mutex(db, shard)?;
        let mut guard = lock(m);
        guard.keep_expired = self.keep_expired;
        let used = guard.used_bytes;
        self.locked.push((db, shard, guard, used));
        Some(self.locked.len() - 1)
    }

    /// The shard of `key` in database `db`, locked.
    pub(crate) fn shard_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Shard> {
        let pos = self.lock_shard(db, shard_of(key))?;
        let (_, _, guard, _) = self.locked.get_mut(pos)?;
        let shard: &mut Shard = guard;
        if !shard.expired.is_empty() {
            // Drained lazily so expiry inside lookups is reported.
        }
        Some(shard)
    }

    /// Every shard of database `db`, locked (exclusive contexts only).
    pub(crate) fn all_shards(&mut self, db: usize) -> Vec<usize> {
        (0..SHARDS).filter_map(|s| self.lock_shard(db, s)).collect()
    }

    /// The locked shard at position `pos` (from [`Ctx::all_shards`]).
    pub(crate) fn shard_at(&mut self, pos: usize) -> Option<&mut Shard> {
        self.locked.get_mut(pos).map(|(_, _, g, _)| &mut **g)
    }

    /// The live entry under `key` in the selected database.
    pub(crate) fn entry(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        let now = self.now_ms;
        let db = self.db;
        self.entry_in(db, key, now)
    }

    fn entry_in(&mut self, db: usize, key: &[u8], now: u64) -> Option<EntryMut<'_>> {
        self.find(db, key, now, true, true)
    }

    /// A lookup (an access if `touch`); a read command's is counted in the shard's keyspace
    /// statistics and, when it misses with class `m` enabled and `miss_event`, publishes
    /// `keymiss`.
    fn find(
        &mut self,
        db: usize,
        key: &[u8],
        now: u64,
        touch: bool,
        miss_event: bool,
    ) -> Option<EntryMut<'_>> {
        let pos = self.lock_shard(db, shard_of(key))?;
        let count = self.count_lookups;
        let touch = touch.then_some(self.lfu);
        let keymiss = count && miss_event && self.notify & notify::KEY_MISS != 0;
        if keymiss {
            // Only with `m` enabled: a found key is looked up again, untouched and uncounted.
            let found = {
                let (_, _, guard, _) = self.locked.get_mut(pos)?;
                guard.lookup_counted(key, now, touch).is_some()
            };
            if let Some(log) = &mut self.lookup_log {
                log.push((db, shard_of(key), found));
            }
            if !found {
                self.notify_in(db, notify::KEY_MISS, "keymiss", key);
                return None;
            }
            let (_, _, guard, _) = self.locked.get_mut(pos)?;
            return guard.lookup_notouch(key, now);
        }
        let (_, _, guard, _) = self.locked.get_mut(pos)?;
        match (count, touch) {
            (true, _) => {
                let found = guard.lookup_counted(key, now, touch);
                if let Some(log) = &mut self.lookup_log {
                    log.push((db, shard_of(key), found.is_some()));
                }
                found
            }
            (false, Some(lfu)) => guard.lookup(key, now, lfu),
            (false, None) => guard.lookup_notouch(key, now),
        }
    }

    /// Takes back from `keyspace_hits`/`keyspace_misses` the lookups of `log` (see
    /// [`Ctx::lookup_log`]).
    pub(crate) fn uncount_lookups(&mut self, log: Vec<(usize, usize, bool)>) {
        for (db, shard, hit) in log {
            let Some(pos) = self.lock_shard(db, shard) else {
                continue;
            };
            if let Some((_, _, guard, _)) = self.locked.get_mut(pos) {
                let counter = if hit {
                    &mut guard.keyspace_hits
                } else {
                    &mut guard.keyspace_misses
                };
                *counter = counter.saturating_sub(1);
            }
        }
    }

    /// Runs `read` with its lookups made as a read command's, whatever the command (Redis's
    /// `lookupKeyRead`: counted in `keyspace_hits`/`keyspace_misses`, `keymiss` on a miss): the
    /// keys a write command reads, such as SUNIONSTORE's sources or GETDEL's key.
    pub(crate) fn reading<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> T {
        let counted = std::mem::replace(&mut self.count_lookups, true);
        let out = read(self);
        self.count_lookups = counted;
        out
    }

    /// Counts a lookup of `key` as [`Ctx::reading`] does, without touching it, for a write
    /// command whose own lookup of a key it reads holds a borrow too long to run inside
    /// [`Ctx::reading`] (GEORADIUS's source); a read command's lookups count already.
    pub(crate) fn count_read(&mut self, key: &[u8]) {
        if !self.count_lookups {
            self.reading(|ctx| ctx.entry_notouch(key).is_some());
        }
    }

    /// The live entry under `key` in the selected database, looked up without counting as an
    /// access (Redis's `LOOKUP_NOTOUCH`: EXISTS, TYPE, the TTL family).
    pub(crate) fn entry_notouch(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        let (db, now) = (self.db, self.now_ms);
        self.find(db, key, now, false, true)
    }

    /// [`Ctx::entry_notouch`] that publishes no `keymiss` (Redis's OBJECT looks keys up with
    /// `LOOKUP_NOTOUCH|LOOKUP_NONOTIFY`; the miss still counts in INFO).
    pub(crate) fn entry_nonotify(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        let (db, now) = (self.db, self.now_ms);
        self.find(db, key, now, false, false)
    }

    /// The entry under `key` in the selected database, expired or not, neither touched nor
    /// expired (Redis's MEMORY USAGE finds the key in the table directly).
    pub(crate) fn peek(&mut self, key: &[u8]) -> Option<EntryRef<'_>> {
        let db = self.db;
        self.shard_in(db, key).and_then(|s| s.peek(key))
    }

    /// The live entry under `key` in database `db`.
    pub(crate) fn entry_db(&mut self, db: usize, key: &[u8]) -> Option<EntryMut<'_>> {
        let now = self.now_ms;
        self.entry_in(db, key, now)
    }

    /// Whether `key` exists (and has not expired); not an access of the key.
    pub(crate) fn exists(&mut self, key: &[u8]) -> bool {
        self.entry_notouch(key).is_some()
    }

    /// Stores `value` under `key` with deadline `expire_at_ms` (0: none), replacing any entry.
    pub(crate) fn put(&mut self, key: &[u8], value: Value, expire_at_ms: u64) {
        let db = self.db;
        self.put_in(
            db,
            key,
            Entry {
                expire_at_ms,
                ..Entry::new(value)
            },
        );
    }

    /// Stores the string `bytes` under `key` with deadline `expire_at_ms` (0: none), replacing
    /// any entry; an existing string of the same length is overwritten without allocating.
    pub(crate) fn put_str(&mut self, key: &[u8], bytes: &[u8], expire_at_ms: u64) {
        let meta = Entry {
            expire_at_ms,
            access: self.access_stamp(),
            ldt: lfu_minutes(self.now_ms),
            ..Entry::new(Value::Str(Vec::new()))
        };
        let db = self.db;
        self.notify_new_in(db, key);
        if let Some(shard) = self.shard_in(db, key) {
            shard.insert_str(key, bytes, meta);
        }
    }

    /// [`Ctx::put`] (no deadline) of a key the command removed to replace it (`existed`), as
    /// Redis's `setKey` overwrites: `new` is published only when the key did not exist before.
    pub(crate) fn put_replacing(&mut self, key: &[u8], value: Value, existed: bool) {
        let notify = self.notify;
        if existed {
            self.notify &= !notify::NEW;
        }
        self.put(key, value, 0);
        self.notify = notify;
    }

    /// Stores a whole entry under `key` in database `db`.
    pub(crate) fn put_in(&mut self, db: usize, key: &[u8], mut entry: Entry) {
        entry.access = self.access_stamp();
        entry.ldt = lfu_minutes(self.now_ms);
        self.notify_new_in(db, key);
        if let Some(shard) = self.shard_in(db, key) {
            shard.insert(key, entry);
        }
    }

    /// Removes `key` from the selected database and returns its entry (expired entries count
    /// as absent).
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (db, now) = (self.db, self.now_ms);
        self.entry_in(db, key, now)?;
        self.shard_in(db, key)?.remove(key)
    }

    /// Deletes `key` from the selected database without taking its value out ([`Ctx::remove`]
    /// for callers that drop it). Returns whether it existed.
    pub(crate) fn delete(&mut self, key: &[u8]) -> bool {
        let db = self.db;
        self.delete_in(db, key)
    }

    /// [`Ctx::delete`] in database `db` (expired entries count as absent).
    pub(crate) fn delete_in(&mut self, db: usize, key: &[u8]) -> bool {
        let now = self.now_ms;
        self.entry_in(db, key, now).is_some()
            && self.shard_in(db, key).is_some_and(|s| s.delete(key))
    }

    /// Replaces the bytes of the string under `key` in place, keeping its deadline. Returns
    /// whether a string was stored there.
    pub(crate) fn replace_str(&mut self, key: &[u8], bytes: &[u8]) -> bool {
        let db = self.db;
        self.shard_in(db, key)
            .is_some_and(|s| s.replace_str(key, bytes))
    }

    /// Sets or clears (`0`) the deadline of an existing key.
    pub(crate) fn set_expire(&mut self, key: &[u8], deadline_ms: u64) -> bool {
        let db = self.db;
        self.shard_in(db, key)
            .is_some_and(|s| s.set_expire(key, deadline_ms))
    }

    /// Re-measures `key` after an in-place change and deletes it if it became an empty
    /// collection. Returns whether it still exists.
    pub(crate) fn settle(&mut self, key: &[u8]) -> bool {
        let db = self.db;
        self.shard_in(db, key).is_some_and(|s| s.settle(key))
    }

    /// Whether lookups leave expired keys in place (a read-only command while CLIENT PAUSE
    /// holds expiry), for the shards locked now and later.
    pub(crate) fn keep_expired(&mut self, keep: bool) {
        self.keep_expired = keep;
        for (_, _, guard, _) in self.locked.iter_mut() {
            guard.keep_expired = keep;
        }
    }

    /// Records that `key` in the selected database changed (`kind`).
    pub(crate) fn touched(&mut self, key: &[u8], kind: EventKind) {
        let db = self.db;
        self.touched_in(db, key, kind);
    }

    /// Records that `key` in `db` changed.
    pub(crate) fn touched_in(&mut self, db: usize, key: &[u8], kind: EventKind) {
        self.changes += 1;
        if !self.track {
            return;
        }
        self.effects.push(Effect {
            db,
            key: Bytes::copy_from_slice(key),
            kind,
        });
    }

    /// Records Redis's keyspace notification `event` (of class `class`, a [`notify`] bit) for
    /// `key` in the selected database, if that class is enabled.
    pub(crate) fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        let db = self.db;
        self.notify_in(db, class, event, key);
    }

    /// [`Ctx::notify`] for `key` in database `db`.
    pub(crate) fn notify_in(&mut self, db: usize, class: u32, event: &'static str, key: &[u8]) {
        if self.notify & class != 0 {
            self.notes.push(Note {
                db,
                event,
                key: Bytes::copy_from_slice(key),
            });
        }
    }

    /// Records the `new` notification if `key` does not exist in `db` (called before a write
    /// that creates it, as Redis's `dbAdd` publishes it).
    pub(crate) fn notify_new_in(&mut self, db: usize, key: &[u8]) {
        if self.notify & notify::NEW != 0 && self.entry_db(db, key).is_none() {
            self.notify_in(db, notify::NEW, "new", key);
        }
    }

    /// Stamp stored in an entry's `access` field for LRU.
    pub(crate) fn access_stamp(&self) -> u32 {
        crate::cache::shard::access_stamp(self.now_ms)
    }

    /// A pseudo-random number (xorshift*); deterministic for a given start time.
    pub(crate) fn random(&mut self) -> u64 {
        if self.rng_state == 0 {
            self.rng_state = match self.rng_source {
                Some(seq) => seq.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) | 1,
                None => (self.now_ms ^ 0x9E37_79B9_7F4A_7C15) | 1,
            };
        }
        let mut x = self.rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng_state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A pseudo-random index below `n` (`n > 0`).
    pub(crate) fn random_below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.random() % (n as u64)) as usize
    }

    /// Drains the keys removed by expiry from every locked shard into `effects`, and returns
    /// the net change of used bytes across the locked shards.
    pub(crate) fn finish(&mut self) -> i64 {
        let mut delta: i64 = 0;
        for (_, _, guard, used_at_lock) in self.locked.iter_mut() {
            delta = delta
                .saturating_add(i64::try_from(guard.used_bytes).unwrap_or(i64::MAX))
                .saturating_sub(i64::try_from(*used_at_lock).unwrap_or(i64::MAX));
            *used_at_lock = guard.used_bytes;
        }
        self.drain_expired(0);
        delta
    }

    /// Moves the keys the locked shards removed by lazy expiry into `effects`, and their
    /// `expired` notifications into `notes` at `at`: before the events the command that looked
    /// them up recorded from there on (an EXEC batch calls this after each command, so each
    /// command's expirations precede its own events, as Redis publishes them at the lookup).
    pub(crate) fn drain_expired(&mut self, at: usize) {
        let mut expired = Vec::new();
        for (db, _, guard, _) in self.locked.iter_mut() {
            for key in guard.expired.drain(..) {
                expired.push(Effect {
                    db: *db,
                    key: Bytes::from(key.into_vec()),
                    kind: EventKind::Expired,
                });
            }
        }
        self.expired = self.expired.saturating_add(expired.len() as u64);
        if self.notify & notify::EXPIRED != 0 && !expired.is_empty() {
            // Lazy expiry happens at a command's lookups, before its own events.
            let at = at.min(self.notes.len());
            let notes = expired.iter().map(|e| Note {
                db: e.db,
                event: "expired",
                key: e.key.clone(),
            });
            self.notes.splice(at..at, notes);
        }
        self.effects.extend(expired);
    }
}

impl Drop for Ctx<'_> {
    /// Publishes the sizes of the shards this context held ([`Db::sizes`], and
    /// [`Db::occupied`] when one became empty or not); a shard whose sizes did not change is
    /// not written, so reads leave the shared lines alone.
    fn drop(&mut self) {
        if self.changes > 0 {
            self.ks.dirty.fetch_add(self.changes, Ordering::Relaxed);
        }
        for (db, shard, guard, _) in self.locked.iter() {
            let Some(d) = self.ks.dbs.get(*db) else {
                continue;
            };
            if let Some(slot) = d.sizes.get(*shard) {
                let now = pack_sizes(guard);
                let before = slot.load(Ordering::Relaxed);
                if before != now {
                    slot.store(now, Ordering::Relaxed);
                    // Only a context holding the shard's lock changes its two bits, so they
                    // follow its sizes.
                    let (was, is) = (occupancy(before, *shard), occupancy(now, *shard));
                    if is & !was != 0 {
                        d.occupied.fetch_or(is & !was, Ordering::Relaxed);
                    }
                    if was & !is != 0 {
                        d.occupied.fetch_and(!(was & !is), Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

impl Keyspace {
    /// A context for the active expiry cycle: the gate shared and one shard locked.
    pub(crate) fn exclusive_shard(&self, db: usize, shard: usize, now_ms: u64) -> Ctx<'_> {
        let gate = Gate::Shared(self.gate.read().unwrap_or_else(PoisonError::into_inner));
        let mut ctx = Ctx::new(self, gate, db, now_ms);
        ctx.lock_shard(db, shard);
        ctx
    }
}

impl Ctx<'_> {
    /// Removes at most `max` due keys from each locked shard; returns how many.
    pub(crate) fn expire_locked(&mut self, max: usize) -> usize {
        let now = self.now_ms;
        self.locked
            .iter_mut()
            .map(|(_, _, g, _)| g.expire_due(now, max))
            .sum()
    }

    /// Databases and shard positions of every shard, locking them (exclusive contexts only).
    pub(crate) fn lock_everything(&mut self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for db in 0..DATABASES {
            for pos in self.all_shards(db) {
                out.push((db, pos));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{SHARDS, shard_of};

    /// Counts per shard of `keys`, each within a fifth of the even share.
    fn assert_even(keys: impl Iterator<Item = Vec<u8>>, what: &str) {
        let mut counts = [0usize; SHARDS];
        let mut n = 0;
        for k in keys {
            counts[shard_of(&k)] += 1;
            n += 1;
        }
        let even = n / SHARDS;
        for (s, c) in counts.iter().enumerate() {
            assert!(
                c.abs_diff(even) <= even / 5,
                "{what}: shard {s} has {c} of {n} keys (even share {even}): {counts:?}"
            );
        }
    }

    #[test]
    fn shards_are_chosen_evenly_for_keys_that_differ_anywhere() {
        // Differing in the last, partial word; in a whole word; only in the length.
        assert_even(
            (0..32_000).map(|i| format!("key:{i}").into_bytes()),
            "key:N",
        );
        assert_even(
            (0..32_000u64).map(|i| {
                let mut k = i.to_le_bytes().to_vec();
                k.extend_from_slice(b"-a-shared-suffix");
                k
            }),
            "binary prefix",
        );
        assert_even((0..16_000).map(|n| vec![b'x'; n % 4000]), "lengths");
    }
}
