//! Choosing an eviction victim under `maxmemory`.
//!
//! Victims are chosen from a bounded sample of each non-empty shard (Redis samples too): the
//! policy picks the least recently used, least frequently used or nearest-deadline key among
//! the sample, a random one, or — for SIEVE — the first sampled key whose visited bit is clear,
//! clearing the bits it passes (the hand).

use bytes::Bytes;

use crate::cache::EvictionPolicy;
use crate::cache::keyspace::Ctx;

/// Entries examined per shard when choosing a victim.
pub(crate) const EVICTION_SAMPLE_LEN_MAX: usize = 16;

/// Picks `(db, key)` to evict, or `None` when no key qualifies.
pub(crate) fn choose(ctx: &mut Ctx<'_>, policy: EvictionPolicy) -> Option<(usize, Bytes)> {
    let shards = ctx.lock_everything();
    let start = ctx.random_below(shards.len().max(1));
    let mut best: Option<(u64, usize, Bytes)> = None;
    for i in 0..shards.len() {
        let Some(&(db, pos)) = shards.get((start + i) % shards.len()) else {
            continue;
        };
        let offset = ctx.random() as usize;
        let Some(shard) = ctx.shard_at(pos) else {
            continue;
        };
        if shard.map.is_empty() {
            continue;
        }
        if policy == EvictionPolicy::VolatileTtl {
            if let Some(k) = shard.expiry.earliest() {
                let d = shard.map.get(k).map_or(u64::MAX, |e| e.expire_at_ms);
                if best.as_ref().is_none_or(|(s, _, _)| d < *s) {
                    best = Some((d, db, Bytes::copy_from_slice(k)));
                }
            }
            continue;
        }
        let skip = offset
            % shard
                .map
                .len()
                .saturating_sub(EVICTION_SAMPLE_LEN_MAX)
                .max(1);
        for (k, e) in shard
            .map
            .iter_mut()
            .skip(skip)
            .take(EVICTION_SAMPLE_LEN_MAX)
        {
            let score = match policy {
                EvictionPolicy::VolatileLru if e.expire_at_ms == 0 => continue,
                EvictionPolicy::AllkeysLru
                | EvictionPolicy::VolatileLru
                | EvictionPolicy::AllkeysLfu => u64::from(e.access),
                EvictionPolicy::AllkeysSieve => {
                    if e.visited {
                        e.visited = false;
                        continue;
                    }
                    0
                }
                _ => 0,
            };
            if best.as_ref().is_none_or(|(s, _, _)| score < *s) {
                best = Some((score, db, Bytes::copy_from_slice(k)));
            }
            if score == 0
                && matches!(
                    policy,
                    EvictionPolicy::AllkeysRandom | EvictionPolicy::AllkeysSieve
                )
            {
                break;
            }
        }
        if best.as_ref().is_some_and(|(s, _, _)| *s == 0) && policy != EvictionPolicy::AllkeysLru {
            break;
        }
    }
    best.map(|(_, db, k)| (db, k))
}
