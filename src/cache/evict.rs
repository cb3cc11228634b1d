//! Choosing an eviction victim under `maxmemory`.
//!
//! Victims are chosen from a bounded sample of each non-empty shard (Redis samples too): the
//! policy picks the least recently used, least frequently used or nearest-deadline key among
//! the samples, or a random one. `volatile-lru` samples the shard's deadline index, so only
//! keys with a TTL are sampled. SIEVE instead asks one shard's SIEVE queue (its hand clears
//! visited bits until it reaches an unvisited key); shards are visited from a random start, so
//! eviction pressure spreads over them.

use bytes::Bytes;

use crate::cache::EvictionPolicy;
use crate::cache::keyspace::Ctx;

/// Entries examined per shard when choosing a victim.
pub(crate) const EVICTION_SAMPLE_LEN_MAX: usize = 16;

/// Picks `(db, key)` to evict, or `None` when no key qualifies.
pub(crate) fn choose(ctx: &mut Ctx<'_>, policy: EvictionPolicy) -> Option<(usize, Bytes)> {
    let shards = ctx.lock_everything();
    if policy == EvictionPolicy::AllkeysSieve {
        return sieve_victim(ctx, &shards);
    }
    if policy == EvictionPolicy::AllkeysRandom {
        return random_victim(ctx, &shards);
    }
    let start = ctx.random_below(shards.len().max(1));
    let now32 = ctx.access_stamp();
    let (now_ms, lfu) = (ctx.now_ms, ctx.lfu);
    let mut best: Option<(u64, usize, Bytes)> = None;
    for i in 0..shards.len() {
        let Some(&(db, pos)) = shards.get((start + i) % shards.len()) else {
            continue;
        };
        let offset = usize::try_from(ctx.random() >> 1).unwrap_or(0);
        let Some(shard) = ctx.shard_at(pos) else {
            continue;
        };
        if shard.is_empty() {
            continue;
        }
        match policy {
            EvictionPolicy::VolatileTtl => {
                if let Some((d, k)) = shard.earliest_volatile()
                    && best.as_ref().is_none_or(|(s, _, _)| d < *s)
                {
                    best = Some((d, db, Bytes::copy_from_slice(k)));
                }
            }
            EvictionPolicy::VolatileLru => {
                // Sampled from the deadline index: among many keys without a TTL, a table
                // sample could miss the few with one and answer OOM.
                for (k, e) in shard.sample_volatile(offset as u64, EVICTION_SAMPLE_LEN_MAX) {
                    let score = u64::MAX - u64::from(now32.wrapping_sub(e.access()));
                    if best.as_ref().is_none_or(|(s, _, _)| score < *s) {
                        best = Some((score, db, Bytes::copy_from_slice(k)));
                    }
                }
            }
            _ => {
                let skip = offset % shard.len().saturating_sub(EVICTION_SAMPLE_LEN_MAX).max(1);
                for (k, e) in shard.iter().skip(skip).take(EVICTION_SAMPLE_LEN_MAX) {
                    let score = match policy {
                        EvictionPolicy::AllkeysLru => {
                            u64::MAX - u64::from(now32.wrapping_sub(e.access()))
                        }
                        // Decayed by idleness, as Redis's `LFUDecrAndReturn` in its pool.
                        EvictionPolicy::AllkeysLfu => u64::from(e.lfu_counter(now_ms, lfu)),
                        _ => 0,
                    };
                    if best.as_ref().is_none_or(|(s, _, _)| score < *s) {
                        best = Some((score, db, Bytes::copy_from_slice(k)));
                    }
                    if policy == EvictionPolicy::AllkeysRandom {
                        break;
                    }
                }
                if policy == EvictionPolicy::AllkeysRandom && best.is_some() {
                    break;
                }
            }
        }
    }
    best.map(|(_, db, k)| (db, k))
}

/// SIEVE victim from the fullest shard, so every shard's queue drains at the rate it fills
/// (the shards together then behave like one queue).
fn sieve_victim(ctx: &mut Ctx<'_>, shards: &[(usize, usize)]) -> Option<(usize, Bytes)> {
    let mut fullest: Option<(usize, usize, usize)> = None;
    for &(db, pos) in shards {
        let len = ctx.shard_at(pos).map_or(0, |s| s.len());
        if len > 0 && fullest.is_none_or(|(_, _, l)| len > l) {
            fullest = Some((db, pos, len));
        }
    }
    let (db, pos, _) = fullest?;
    let shard = ctx.shard_at(pos)?;
    let victim = shard.sieve_victim()?;
    Some((db, Bytes::from(victim.into_vec())))
}

/// A uniformly random key: a shard is chosen with probability proportional to its size, then a
/// random position in it.
fn random_victim(ctx: &mut Ctx<'_>, shards: &[(usize, usize)]) -> Option<(usize, Bytes)> {
    let lens: Vec<usize> = shards
        .iter()
        .map(|&(_, pos)| ctx.shard_at(pos).map_or(0, |s| s.len()))
        .collect();
    let total: usize = lens.iter().sum();
    let mut r = ctx.random_below(total.max(1));
    for (&(db, pos), &len) in shards.iter().zip(&lens) {
        if r < len {
            let shard = ctx.shard_at(pos)?;
            let key = shard.keys().nth(r)?;
            return Some((db, Bytes::copy_from_slice(key)));
        }
        r -= len;
    }
    None
}
