//! Capability: `maxmemory` is enforced — `noeviction` refuses writes with Redis's OOM error,
//! the evicting policies keep memory at the ceiling and report `evicted` events, and SIEVE keeps
//! a hot set that is read between inserts.
//! Method: in-process `Cache` with a small ceiling and a `ManualClock`.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use streamcache::cache::{Cache, CacheConfig, EventKind, EvictionPolicy, Frame};
use streamcache::clock::ManualClock;

const CEILING: u64 = 40_000;

fn cache(policy: EvictionPolicy) -> (Arc<ManualClock>, Cache) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = CacheConfig {
        maxmemory_bytes: CEILING,
        eviction_policy: policy,
        ..CacheConfig::default()
    };
    (clock.clone(), Cache::new(config, clock))
}

#[test]
fn noeviction_refuses_writes_with_redis_oom_error() {
    let (_, c) = cache(EvictionPolicy::Noeviction);
    let mut refused = None;
    for i in 0..10_000 {
        let r = c.set(0, format!("k{i}").as_bytes(), &[b'x'; 100], None);
        if r != Frame::ok() {
            refused = Some(r);
            break;
        }
    }
    assert_eq!(
        refused,
        Some(Frame::error(
            "OOM command not allowed when used memory > 'maxmemory'."
        ))
    );
    assert!(c.get(0, b"k0").is_some(), "reads still work");
    assert_eq!(c.del(0, &[b"k0"]), 1, "deletes still work");
}

#[test]
fn every_evicting_policy_holds_the_ceiling() {
    for policy in [
        EvictionPolicy::AllkeysLru,
        EvictionPolicy::AllkeysLfu,
        EvictionPolicy::AllkeysRandom,
        EvictionPolicy::AllkeysSieve,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileTtl,
    ] {
        let (clock, c) = cache(policy);
        let mut rx = c.subscribe_events();
        for i in 0..2_000 {
            clock.advance(Duration::from_millis(1));
            assert_eq!(
                c.set(0, format!("k{i}").as_bytes(), &[b'x'; 100], Some(1_000_000)),
                Frame::ok(),
                "{policy:?}"
            );
        }
        // The check runs before each write, so the ceiling is exceeded by at most one entry.
        assert!(
            c.used_bytes() <= CEILING as usize + 400,
            "{policy:?}: {}",
            c.used_bytes()
        );
        let mut evicted = 0;
        while let Ok(e) = rx.try_recv() {
            if e.kind == EventKind::Evicted {
                evicted += 1;
            }
        }
        assert!(evicted > 1_000, "{policy:?} evicted only {evicted}");
    }
}

#[test]
fn sieve_and_lru_keep_a_hot_set() {
    for policy in [EvictionPolicy::AllkeysSieve, EvictionPolicy::AllkeysLru] {
        let (clock, c) = cache(policy);
        for h in 0..20 {
            c.set(0, format!("hot{h}").as_bytes(), &[b'h'; 100], None);
        }
        for i in 0..3_000 {
            clock.advance(Duration::from_millis(1));
            for h in 0..20 {
                let _ = c.get(0, format!("hot{h}").as_bytes());
            }
            c.set(0, format!("cold{i}").as_bytes(), &[b'c'; 100], None);
        }
        let kept = (0..20)
            .filter(|h| c.get(0, format!("hot{h}").as_bytes()).is_some())
            .count();
        assert!(kept >= 15, "{policy:?} kept only {kept} of 20 hot keys");
    }
}

#[test]
fn volatile_lru_evicts_the_few_keys_with_a_ttl() {
    // Room for ~20 000 keys: far more than one round samples (16 per shard).
    const CEILING: u64 = 4_000_000;
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = CacheConfig {
        maxmemory_bytes: CEILING,
        eviction_policy: EvictionPolicy::VolatileLru,
        ..CacheConfig::default()
    };
    let c = Cache::new(config, clock.clone());
    // Mostly persistent keys, and a few with a TTL: the sample must find those few instead of
    // answering OOM.
    let mut i = 0;
    while c.used_bytes() < CEILING as usize - 500 {
        c.set(0, format!("p{i}").as_bytes(), &[b'x'; 100], None);
        i += 1;
    }
    for v in 0..10 {
        clock.advance(Duration::from_millis(1));
        c.set(0, format!("v{v}").as_bytes(), &[b'x'; 100], Some(1_000_000));
    }
    assert!(c.used_bytes() > CEILING as usize);
    let r = c.set(0, b"one-more", &[b'x'; 100], None);
    assert_eq!(r, Frame::ok());
    let volatile_left = (0..10)
        .filter(|v| c.get(0, format!("v{v}").as_bytes()).is_some())
        .count();
    assert!(volatile_left < 10, "a key with a TTL was evicted");
    assert!((0..i).all(|p| c.get(0, format!("p{p}").as_bytes()).is_some()));
}
