//! Choosing eviction victims under `maxmemory`.
//!
//! As Redis's `evict.c`: each eviction samples `maxmemory-samples` keys per database into a
//! pool of the best [`EVICTION_POOL_LEN`] candidates kept between evictions, and evicts the
//! pool's best — least recently used, least frequently used (the decayed LFU counter) or
//! nearest deadline. A database is sampled from a shard picked at random (shards split keys
//! evenly by `keyspace::shard_of`) on through the next occupied ones, each as a run of occupied
//! table slots from a random one (Redis's `dictGetSomeKeys`), so choosing costs the same
//! whatever the keyspace holds, and only the shards being sampled or evicted from are locked.
//! A sample is scored from the entries' inline fields, and only the keys of the candidates the
//! pool admits are read. The `volatile-*` policies sample the
//! shard's deadline index, so only keys with a TTL are candidates. A candidate is checked
//! under its shard's lock before it goes: a key deleted since it was sampled is skipped, and
//! one read since (a better score now) goes back to the pool with its new score.
//!
//! `allkeys-random` / `volatile-random` take a random key of the next non-empty database in
//! turn (Redis's `next_db`). SIEVE asks the fullest shard's SIEVE queue (its hand clears
//! visited bits until it reaches an unvisited key), so every shard's queue drains at the rate
//! it fills and the shards together behave like one queue.

use crate::cache::EvictionPolicy;
use crate::cache::keyspace::{ALL_SHARDS, Keyspace};
use crate::cache::shard::{EntryRef, Lfu, Shard};
use crate::cache::{DATABASES, SHARDS};

/// Redis's `EVPOOL_SIZE`: candidates kept between evictions.
pub(crate) const EVICTION_POOL_LEN: usize = 16;

/// Redis's default `maxmemory-samples`.
pub(crate) const MAXMEMORY_SAMPLES_DEFAULT: u32 = 5;

/// Largest `maxmemory-samples` (Redis's bound; 1 is the smallest).
pub(crate) const MAXMEMORY_SAMPLES_MAX: u32 = 64;

/// A key that may be evicted, with its score: lower goes first.
#[derive(Debug)]
struct Candidate {
    score: u64,
    db: usize,
    key: Box<[u8]>,
}

/// The eviction pool: the best candidates seen, lowest score first.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// The policy the scores were computed under; another policy starts an empty pool.
    policy: Option<EvictionPolicy>,
    /// Sorted by score, ascending; at most [`EVICTION_POOL_LEN`].
    entries: Vec<Candidate>,
    /// The database the random policies try first (Redis's `next_db`).
    next_db: usize,
}

impl Pool {
    /// Offers a candidate, kept if the pool has room or it beats the worst entry; only then
    /// is `key` read (a sampled entry's key is a memory access of its own, and most samples
    /// of a full pool do not enter it), and a key already pooled takes the new score. A
    /// pooled key offered with a score that does not enter keeps its old one, which
    /// [`verdict`] checks again when it comes out (Redis's pool does not look for the key).
    pub(crate) fn offer<'k>(&mut self, score: u64, db: usize, key: impl FnOnce() -> &'k [u8]) {
        if !self.admits(score) {
            return;
        }
        let key = key();
        let candidate = match self
            .entries
            .iter()
            .position(|c| c.db == db && *c.key == *key)
        {
            Some(i) => Candidate {
                score,
                ..self.entries.remove(i)
            },
            None => Candidate {
                score,
                db,
                key: key.into(),
            },
        };
        let at = self.entries.partition_point(|e| e.score <= score);
        self.entries.insert(at, candidate);
        self.entries.truncate(EVICTION_POOL_LEN);
    }

    /// Whether a candidate with `score` would enter the pool now.
    fn admits(&self, score: u64) -> bool {
        self.entries.len() < EVICTION_POOL_LEN
            || self.entries.last().is_some_and(|w| score < w.score)
    }

    /// The best candidate, `(score, db, key)`, removed from the pool.
    pub(crate) fn pop_best(&mut self) -> Option<(u64, usize, Box<[u8]>)> {
        if self.entries.is_empty() {
            return None;
        }
        let c = self.entries.remove(0);
        Some((c.score, c.db, c.key))
    }

    /// Empties the pool when `policy` is not the one its scores were computed under.
    fn adopt(&mut self, policy: EvictionPolicy) {
        if self.policy != Some(policy) {
            self.entries.clear();
            self.policy = Some(policy);
        }
    }
}

/// How a policy scores an entry at a moment: lower is evicted first; `None` when the entry is
/// not a candidate (no TTL under a `volatile-*` policy).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scorer {
    pub(crate) policy: EvictionPolicy,
    pub(crate) now_ms: u64,
    pub(crate) now32: u32,
    pub(crate) lfu: Lfu,
}

impl Scorer {
    fn score(&self, e: &EntryRef<'_>) -> Option<u64> {
        // The deadline lives in the entry's own allocation; only `volatile-ttl` reads it.
        if self.policy.is_volatile() && !e.has_deadline() {
            return None;
        }
        Some(match self.policy {
            EvictionPolicy::VolatileTtl => e.expire_at_ms(),
            // Decayed by idleness, as Redis's `LFUDecrAndReturn` in its pool.
            EvictionPolicy::AllkeysLfu | EvictionPolicy::VolatileLfu => {
                u64::from(e.lfu_counter(self.now_ms, self.lfu))
            }
            _ => u64::MAX - u64::from(self.now32.wrapping_sub(e.access())),
        })
    }
}

/// Samples each database into `pool`, for the pooled policies (LRU, LFU, TTL): `samples` keys
/// (under `volatile-ttl`, shards' nearest deadlines), from a random shard on to the next ones
/// until that many were offered, as Redis's `dictGetSomeKeys` walks on until it has its count
/// (so a database of few keys is sampled whole, not one shard of it). Shards are skipped by
/// their published sizes; when that leaves the pool empty (stale hints), every shard is sampled,
/// so an empty pool means no key qualifies. One shard is locked at a time.
pub(crate) fn populate(ks: &Keyspace, pool: &mut Pool, scorer: Scorer, samples: usize, seed: u64) {
    pool.adopt(scorer.policy);
    let mut rng = Rng(seed | 1);
    let s = (rng.next() % SHARDS as u64) as usize;
    let volatile = scorer.policy.is_volatile();
    for db in 0..DATABASES {
        let mut offered = 0;
        for shard in shards_from(ks.occupied_hint(db, volatile), s) {
            if offered >= samples {
                break;
            }
            offered += sample_shard(ks, pool, scorer, samples, (db, shard), rng.next());
        }
    }
    if !pool.entries.is_empty() {
        return;
    }
    for db in 0..DATABASES {
        for shard in 0..SHARDS {
            sample_shard(ks, pool, scorer, samples, (db, shard), rng.next());
        }
    }
}

/// The shards in the bit set `mask` (bit `s`: shard `s`), from shard `start` on, wrapping.
/// Only the set bits are visited (the mask rotated so that `start` is bit 0, lowest bit
/// first): an eviction walks every database's mask, and most databases are usually empty.
fn shards_from(mask: u32, start: usize) -> impl Iterator<Item = usize> {
    let start = start % SHARDS;
    let mask = mask & ALL_SHARDS;
    // `SHARDS` is at most 16 (asserted in keyspace.rs), so neither shift overflows a `u32`.
    let mut rest = ((mask >> start) | (mask << (SHARDS - start))) & ALL_SHARDS;
    std::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        let i = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        Some((start + i) % SHARDS)
    })
}

/// xorshift64* for sampling positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn sample_shard(
    ks: &Keyspace,
    pool: &mut Pool,
    scorer: Scorer,
    samples: usize,
    (db, shard): (usize, usize),
    seed: u64,
) -> usize {
    ks.lock_one(db, shard).map_or(0, |guard| {
        offer_from(&guard, db, seed, pool, scorer, samples)
    })
}

fn offer_from(
    shard: &Shard,
    db: usize,
    seed: u64,
    pool: &mut Pool,
    scorer: Scorer,
    samples: usize,
) -> usize {
    if scorer.policy == EvictionPolicy::VolatileTtl {
        return match shard.earliest_volatile() {
            Some((deadline, key)) => {
                pool.offer(deadline, db, || key);
                1
            }
            None => 0,
        };
    }
    let sample = if scorer.policy.is_volatile() {
        shard.sample_volatile(seed, samples)
    } else {
        shard.sample(seed, samples)
    };
    let n = sample.len();
    // Each step reads every sampled entry before the next step needs any of them, so the
    // entries' cache misses are in flight together rather than one after another: the scores
    // (the slots), then the keys of the candidates the pool admits (their own allocations).
    let mut scored: Vec<(u64, EntryRef<'_>)> = sample
        .iter()
        .filter_map(|e| scorer.score(e).map(|score| (score, *e)))
        .collect();
    scored.sort_unstable_by_key(|&(score, _)| score);
    // The best `room` enter a pool with that much room; any further one must beat the pool's
    // worst as it is now (the worst after those only rises).
    let room = EVICTION_POOL_LEN.saturating_sub(pool.entries.len());
    let keyed: Vec<(u64, &[u8])> = scored
        .iter()
        .enumerate()
        .filter(|&(i, &(score, _))| i < room || pool.admits(score))
        .map(|(_, (score, e))| (*score, e.key()))
        .collect();
    for (score, key) in keyed {
        pool.offer(score, db, || key);
    }
    n
}

/// What to do with the pool's best candidate, decided under its shard's lock.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Evict it.
    Evict,
    /// Gone or no longer a candidate: forget it.
    Drop,
    /// Its score rose since it was sampled: back into the pool with this score.
    Rescore(u64),
}

/// Judges a candidate popped with `score` against its entry now (`None`: no such key).
pub(crate) fn verdict(entry: Option<EntryRef<'_>>, score: u64, scorer: Scorer) -> Verdict {
    match entry.and_then(|e| scorer.score(&e)) {
        None => Verdict::Drop,
        Some(now) if now > score => Verdict::Rescore(now),
        Some(_) => Verdict::Evict,
    }
}

/// A random key for `allkeys-random` (`volatile`: `volatile-random`, keys with a TTL only):
/// from the next database in turn that holds one, a random shard of it that does, a random
/// slot of its table (Redis's `dictGetRandomKey`) or a random point of its deadline index.
/// Shards are skipped by their published occupancy ([`Keyspace::occupied_hint`]), so empty
/// databases cost no locks; when the hints find nothing, every shard is locked and looked at.
pub(crate) fn random_victim(
    ks: &Keyspace,
    pool: &mut Pool,
    seed: u64,
    volatile: bool,
) -> Option<(usize, Box<[u8]>)> {
    // Mixed first: callers' seeds are odd (`| 1`), and their low bits alone would only ever
    // start at odd shards.
    let mut x = crate::cache::shard::splitmix(seed);
    for guided in [true, false] {
        for i in 0..DATABASES {
            let db = (pool.next_db + i) % DATABASES;
            let start = (x as usize) % SHARDS;
            let mask = if guided {
                ks.occupied_hint(db, volatile)
            } else {
                ALL_SHARDS
            };
            for s in shards_from(mask, start) {
                let Some(shard) = ks.lock_one(db, s) else {
                    continue;
                };
                x = x.rotate_left(17).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let key = if volatile {
                    shard.sample_volatile(x, 1).first().map(EntryRef::key)
                } else {
                    shard.random_entry(x).map(|(key, _)| key)
                };
                if let Some(key) = key {
                    pool.next_db = (db + 1) % DATABASES;
                    return Some((db, key.into()));
                }
            }
        }
    }
    None
}

/// A shard's published key count (`volatile`: keys with a deadline).
fn hinted_len(ks: &Keyspace, db: usize, shard: usize, volatile: bool) -> usize {
    let (keys, with_deadline) = ks.sizes_hint(db, shard);
    if volatile { with_deadline } else { keys }
}

/// SIEVE's victim from the fullest shard of all databases, found by the shards' published
/// sizes; when that shard turns out empty under its lock, by every shard's locked length.
pub(crate) fn sieve_victim(ks: &Keyspace) -> Option<(usize, Box<[u8]>)> {
    let fullest = |len_of: &dyn Fn(usize, usize) -> usize| {
        let mut fullest: Option<(usize, usize, usize)> = None;
        for db in 0..DATABASES {
            for s in 0..SHARDS {
                let len = len_of(db, s);
                if len > 0 && fullest.is_none_or(|(_, _, l)| len > l) {
                    fullest = Some((db, s, len));
                }
            }
        }
        fullest
    };
    let victim_in = |(db, s, _): (usize, usize, usize)| {
        let victim = ks.lock_one(db, s)?.sieve_victim()?;
        Some((db, victim))
    };
    fullest(&|db, s| hinted_len(ks, db, s, false))
        .and_then(victim_in)
        .or_else(|| {
            fullest(&|db, s| ks.lock_one(db, s).map_or(0, |sh| sh.len())).and_then(victim_in)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_from_visits_the_set_bits_from_start_wrapping() {
        for mask in 0..=ALL_SHARDS {
            for start in 0..SHARDS {
                let plain: Vec<usize> = (start..SHARDS)
                    .chain(0..start)
                    .filter(|&s| mask & (1 << s) != 0)
                    .collect();
                assert_eq!(
                    shards_from(mask, start).collect::<Vec<_>>(),
                    plain,
                    "mask {mask:#x} from {start}"
                );
            }
        }
        // Bits above the shards are not shards.
        assert_eq!(shards_from(u32::MAX, 3).count(), SHARDS);
    }

    #[test]
    fn the_pool_keeps_the_lowest_scores_in_order() {
        let mut pool = Pool::default();
        for i in 0..40u64 {
            // Scores 39, 38, … 0 arrive; only the 16 lowest stay.
            let key = format!("k{}", 39 - i);
            pool.offer(39 - i, 0, || key.as_bytes());
        }
        assert_eq!(pool.entries.len(), EVICTION_POOL_LEN);
        let scores: Vec<u64> = pool.entries.iter().map(|c| c.score).collect();
        assert_eq!(scores, (0..16).collect::<Vec<_>>());
        // A pooled key offered with a score that enters takes it and moves.
        pool.offer(14, 0, || b"k0");
        assert_eq!(pool.entries.len(), EVICTION_POOL_LEN);
        let order: Vec<&[u8]> = pool.entries.iter().map(|c| &*c.key).collect();
        assert_eq!(order.get(13..15), Some(&[&b"k14"[..], &b"k0"[..]][..]));
        // One offered with a score that does not enter keeps its old score (checked again
        // when it comes out); a worse score than the worst of a full pool is not kept, and
        // its key is not read.
        pool.offer(100, 0, || b"k0");
        assert_eq!(
            pool.entries.get(14).map(|c| (c.score, &*c.key)),
            Some((14, &b"k0"[..]))
        );
        pool.offer(1_000, 0, || {
            unreachable!("the key of a rejected candidate is read")
        });
        assert!(pool.entries.iter().all(|c| c.score < 1_000));
        // The same key in another database is another candidate.
        pool.offer(0, 1, || b"k1");
        assert_eq!(pool.pop_best().map(|(s, db, _)| (s, db)), Some((0, 1)));
    }

    #[test]
    fn another_policy_empties_the_pool() {
        let mut pool = Pool::default();
        pool.adopt(EvictionPolicy::AllkeysLru);
        pool.offer(1, 0, || b"a");
        pool.adopt(EvictionPolicy::AllkeysLru);
        assert_eq!(pool.entries.len(), 1);
        pool.adopt(EvictionPolicy::VolatileTtl);
        assert!(pool.entries.is_empty());
    }

    /// Keys `k0`…`k{n-1}` in database `db` (every fourth with a deadline), written through
    /// contexts as commands write them.
    fn fill(ks: &Keyspace, db: usize, n: usize) {
        for i in 0..n {
            let key = format!("k{i}");
            let mut ctx = ks.keyed(db, [key.as_bytes()], 1);
            let deadline = if i % 4 == 0 { 1_000_000 } else { 0 };
            ctx.put_str(key.as_bytes(), b"v", deadline);
        }
    }

    #[test]
    fn contexts_publish_their_shards_sizes() {
        let ks = Keyspace::new(false, false);
        fill(&ks, 5, 64);
        let (keys, volatile) = (0..SHARDS).fold((0, 0), |(k, v), s| {
            let (a, b) = ks.sizes_hint(5, s);
            (k + a, v + b)
        });
        assert_eq!((keys, volatile), (64, 16));
        for s in 0..SHARDS {
            let locked = ks.lock_one(5, s).map(|g| (g.len(), g.volatile_len()));
            assert_eq!(Some(ks.sizes_hint(5, s)), locked, "shard {s}");
            assert_eq!(ks.sizes_hint(4, s), (0, 0));
            let (keys, volatile) = ks.sizes_hint(5, s);
            let bit = 1 << s;
            assert_eq!(ks.occupied_hint(5, false) & bit != 0, keys > 0, "shard {s}");
            assert_eq!(
                ks.occupied_hint(5, true) & bit != 0,
                volatile > 0,
                "shard {s}"
            );
        }
        assert_eq!(ks.occupied_hint(4, false) | ks.occupied_hint(4, true), 0);
        // A removal is published when its context ends.
        let mut ctx = ks.keyed(5, [&b"k0"[..]], 1);
        assert!(ctx.remove(b"k0").is_some());
        drop(ctx);
        let s = crate::cache::keyspace::shard_of(b"k0");
        assert_eq!(
            Some(ks.sizes_hint(5, s)),
            ks.lock_one(5, s).map(|g| (g.len(), g.volatile_len()))
        );
        // A shard emptied of its keys (then of its deadlines) leaves the occupied set.
        let in_shard: Vec<String> = (1..64)
            .map(|i| format!("k{i}"))
            .filter(|k| crate::cache::keyspace::shard_of(k.as_bytes()) == s)
            .collect();
        for key in &in_shard {
            let mut ctx = ks.keyed(5, [key.as_bytes()], 1);
            assert!(ctx.remove(key.as_bytes()).is_some());
        }
        assert_eq!(ks.sizes_hint(5, s), (0, 0));
        assert_eq!(ks.occupied_hint(5, false) & (1 << s), 0);
        assert_eq!(ks.occupied_hint(5, true) & (1 << s), 0);
    }

    #[test]
    fn victims_come_from_the_one_populated_database() {
        let ks = Keyspace::new(true, false);
        fill(&ks, 9, 40);
        let mut pool = Pool::default();
        for seed in 1..50 {
            let (db, key) = random_victim(&ks, &mut pool, seed, false).expect("keys exist");
            assert_eq!(db, 9);
            assert!(key.starts_with(b"k"));
            let (db, key) = random_victim(&ks, &mut pool, seed, true).expect("deadlines exist");
            assert_eq!(db, 9);
            let i: usize = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
            assert_eq!(
                i % 4,
                0,
                "volatile-random picked k{i}, which has no deadline"
            );
        }
        let (db, _) = sieve_victim(&ks).expect("keys exist");
        assert_eq!(db, 9);
    }

    #[test]
    fn random_victims_come_from_every_shard() {
        let ks = Keyspace::new(false, false);
        fill(&ks, 0, 4_000);
        let mut pool = Pool::default();
        let mut per_shard = [0usize; SHARDS];
        // Seeds as the eviction loop draws them: a Weyl sequence, each made odd.
        let mut counter = 0u64;
        for _ in 0..16_000 {
            counter = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let (_, key) = random_victim(&ks, &mut pool, counter | 1, false).expect("keys exist");
            per_shard[crate::cache::keyspace::shard_of(&key)] += 1;
        }
        // 1000 expected per shard; a shard never or rarely picked means a biased start.
        assert!(per_shard.iter().all(|&n| n > 700), "{per_shard:?}");
    }

    #[test]
    fn stale_hints_fall_back_to_locking_every_shard() {
        let ks = Keyspace::new(true, false);
        fill(&ks, 2, 8);
        for d in ks.dbs.iter() {
            for slot in d.sizes.iter() {
                slot.store(0, std::sync::atomic::Ordering::Relaxed);
            }
            d.occupied.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        let mut pool = Pool::default();
        assert_eq!(
            random_victim(&ks, &mut pool, 7, false).map(|v| v.0),
            Some(2)
        );
        assert_eq!(random_victim(&ks, &mut pool, 7, true).map(|v| v.0), Some(2));
        assert_eq!(sieve_victim(&ks).map(|v| v.0), Some(2));
        // The other way round: a hint promising keys in an empty database finds none there.
        let empty = Keyspace::new(true, false);
        empty.dbs[0].sizes[3].store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        empty.dbs[0]
            .occupied
            .store(u32::MAX, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(random_victim(&empty, &mut pool, 7, false), None);
        assert_eq!(sieve_victim(&empty), None);
    }
}
