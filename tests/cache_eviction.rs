//! Capability: `maxmemory` is enforced — `noeviction` refuses writes with Redis's OOM error,
//! the evicting policies keep memory at the ceiling and report `evicted` events, and SIEVE keeps
//! a hot set that is read between inserts. Collections count against the ceiling by their
//! element bytes.
//! Method: in-process `Cache` with a small ceiling and a `ManualClock`.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, EventKind, EvictionPolicy, Frame, KeyEvent};
use streamcache::clock::ManualClock;
use tokio::sync::broadcast;

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

/// Over the ceiling only Redis's DENYOOM commands are refused: writes that may grow memory.
/// Removing members, trimming, changing a TTL or a name still run, as in Redis 7.0.
#[test]
fn over_the_ceiling_only_commands_that_may_grow_memory_are_refused() {
    let (_, c) = cache(EvictionPolicy::Noeviction);
    let oom = Frame::error("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(run(&c, &[b"SADD", b"s", b"a", b"b"]), Frame::Integer(2));
    assert_eq!(
        run(&c, &[b"HSET", b"h", b"f", b"v", b"g", b"w"]),
        Frame::Integer(2)
    );
    assert_eq!(
        run(&c, &[b"RPUSH", b"l", b"a", b"b", b"c"]),
        Frame::Integer(3)
    );
    assert_eq!(
        run(&c, &[b"ZADD", b"z", b"1", b"a", b"2", b"b"]),
        Frame::Integer(2)
    );
    assert_eq!(run(&c, &[b"SET", b"t", b"v"]), Frame::ok());
    let mut i = 0;
    while c.set(0, format!("k{i}").as_bytes(), &[b'x'; 100], None) == Frame::ok() {
        i += 1;
    }
    for refused in [
        &[&b"SET"[..], b"x", b"1"][..],
        &[b"SADD", b"s", b"c"],
        &[b"HSET", b"h", b"x", b"y"],
        &[b"LPUSH", b"l", b"z"],
        &[b"ZADD", b"z", b"3", b"c"],
        &[b"INCR", b"n"],
        &[b"APPEND", b"t", b"more"],
        &[b"COPY", b"t", b"t2"],
    ] {
        assert_eq!(run(&c, refused), oom, "{:?}", refused.first());
    }
    for (allowed, reply) in [
        (&[&b"SREM"[..], b"s", b"a"][..], Frame::Integer(1)),
        (&[b"HDEL", b"h", b"f"], Frame::Integer(1)),
        (&[b"LREM", b"l", b"0", b"a"], Frame::Integer(1)),
        (&[b"LTRIM", b"l", b"0", b"0"], Frame::ok()),
        (&[b"ZREM", b"z", b"a"], Frame::Integer(1)),
        (&[b"EXPIRE", b"t", b"100"], Frame::Integer(1)),
        (&[b"PERSIST", b"t"], Frame::Integer(1)),
        (&[b"RENAME", b"t", b"t3"], Frame::ok()),
        (&[b"GETDEL", b"t3"], Frame::bulk(b"v")),
        (&[b"SPOP", b"s"], Frame::bulk(b"b")),
    ] {
        assert_eq!(run(&c, allowed), reply, "{:?}", allowed.first());
    }
}

/// Over the ceiling every command evicts before it runs, a read too, as Redis's
/// `processCommand` does: a GETBIT evicts the one key with a TTL (volatile-random), then runs
/// although memory stays over the ceiling, since a read is never refused; a transaction of
/// reads evicts the same way.
#[test]
fn over_the_ceiling_every_command_evicts_first_a_read_too() {
    let (_, c) = cache(EvictionPolicy::VolatileRandom);
    let mut rx = c.subscribe_events();
    assert_eq!(run(&c, &[b"SET", b"v", b"x", b"EX", b"1000"]), Frame::ok());
    // 60 000 bytes without a TTL, written while memory was under the ceiling.
    assert_eq!(
        run(&c, &[b"SETBIT", b"big", b"480000", b"1"]),
        Frame::Integer(0)
    );
    assert!(c.used_bytes() > CEILING as usize);
    let evicted = |rx: &mut broadcast::Receiver<KeyEvent>| {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| e.kind == EventKind::Evicted)
            .map(|e| e.key)
            .collect::<Vec<_>>()
    };
    assert!(evicted(&mut rx).is_empty());
    assert_eq!(run(&c, &[b"GETBIT", b"big", b"480000"]), Frame::Integer(1));
    assert_eq!(evicted(&mut rx), vec![Bytes::from_static(b"v")]);
    // A transaction of reads too (`execute_atomic`, as `POST /redis/multi-exec` runs one).
    assert_eq!(run(&c, &[b"DEL", b"big"]), Frame::Integer(1));
    assert_eq!(run(&c, &[b"SET", b"v", b"x", b"EX", b"1000"]), Frame::ok());
    assert_eq!(
        run(&c, &[b"SETBIT", b"big", b"480000", b"1"]),
        Frame::Integer(0)
    );
    assert!(evicted(&mut rx).is_empty());
    let queue = vec![vec![
        Bytes::from_static(b"STRLEN"),
        Bytes::from_static(b"v"),
    ]];
    assert!(c.execute_atomic(0, &queue).is_ok());
    assert_eq!(evicted(&mut rx), vec![Bytes::from_static(b"v")]);
    assert!(c.used_bytes() > CEILING as usize);
    // Nothing is left to evict: reads and removals still run, a write that may grow is refused.
    assert_eq!(run(&c, &[b"STRLEN", b"big"]), Frame::Integer(60_001));
    assert_eq!(
        run(&c, &[b"SET", b"w", b"1"]),
        Frame::error("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert_eq!(run(&c, &[b"DEL", b"big"]), Frame::Integer(1));
    assert_eq!(run(&c, &[b"SET", b"w", b"1"]), Frame::ok());
}

/// A container's subcommands are refused over the ceiling by their own DENYOOM flag, as Redis's
/// command table gives each one: XGROUP CREATE, CREATECONSUMER and FUNCTION LOAD are refused;
/// XGROUP SETID, DELCONSUMER, DESTROY and FUNCTION DELETE run. XGROUP SETID and the other
/// XGROUP writes had been refused and FUNCTION LOAD had run.
#[test]
fn over_the_ceiling_subcommands_are_refused_by_their_own_flag() {
    let (_, c) = cache(EvictionPolicy::Noeviction);
    let oom = Frame::error("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(
        run(&c, &[b"XADD", b"s", b"1-1", b"f", b"v"]),
        Frame::bulk(b"1-1")
    );
    assert_eq!(
        run(&c, &[b"XGROUP", b"CREATE", b"s", b"g", b"0"]),
        Frame::ok()
    );
    assert_eq!(
        run(&c, &[b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c"]),
        Frame::Integer(1)
    );
    let library = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)";
    assert_eq!(
        run(&c, &[b"FUNCTION", b"LOAD", library]),
        Frame::bulk(b"lib")
    );
    let mut i = 0;
    while c.set(0, format!("k{i}").as_bytes(), &[b'x'; 100], None) == Frame::ok() {
        i += 1;
    }
    let other = b"#!lua name=other\nredis.register_function('o', function() return 1 end)";
    for refused in [
        &[&b"XGROUP"[..], b"CREATE", b"s", b"g2", b"0"][..],
        &[b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c2"],
        &[b"FUNCTION", b"LOAD", other],
    ] {
        assert_eq!(run(&c, refused), oom, "{:?}", refused.get(1));
    }
    for (allowed, reply) in [
        (
            &[&b"XGROUP"[..], b"SETID", b"s", b"g", b"0"][..],
            Frame::ok(),
        ),
        (
            &[b"XGROUP", b"DELCONSUMER", b"s", b"g", b"c"],
            Frame::Integer(0),
        ),
        (&[b"XGROUP", b"DESTROY", b"s", b"g"], Frame::Integer(1)),
        (&[b"FUNCTION", b"DELETE", b"lib"], Frame::ok()),
    ] {
        assert_eq!(run(&c, allowed), reply, "{:?}", allowed.get(1));
    }
}

/// Over the ceiling a script that declares flags without `allow-oom` or `no-writes` is refused
/// before it runs with the OOM error every DENYOOM command gets, as Redis's
/// `evalGetCommandFlags` and `fcallGetCommandFlags` flag it (EVAL_RO's write-flag error comes
/// after); such scripts had run up to a different `allow-oom flag is not set` error.
#[test]
fn over_the_ceiling_scripts_declaring_writes_are_refused_as_denyoom() {
    let (_, c) = cache(EvictionPolicy::Noeviction);
    let oom = Frame::error("OOM command not allowed when used memory > 'maxmemory'.");
    let library = b"#!lua name=lib
redis.register_function('writes', function() return 1 end)
redis.register_function{function_name='oom_ok', callback=function() return 1 end, flags={'allow-oom'}}
redis.register_function{function_name='reads', callback=function() return 1 end, flags={'no-writes'}}";
    assert_eq!(
        run(&c, &[b"FUNCTION", b"LOAD", library]),
        Frame::bulk(b"lib")
    );
    let writes = b"#!lua\nreturn 1";
    let Frame::Bulk(sha) = run(&c, &[b"SCRIPT", b"LOAD", writes]) else {
        panic!("SCRIPT LOAD answers the SHA");
    };
    let mut i = 0;
    while c.set(0, format!("k{i}").as_bytes(), &[b'x'; 100], None) == Frame::ok() {
        i += 1;
    }
    for refused in [
        &[&b"EVAL"[..], writes, b"0"][..],
        &[b"EVAL_RO", writes, b"0"],
        &[b"EVALSHA", &sha, b"0"],
        &[b"FCALL", b"writes", b"0"],
        &[b"FCALL_RO", b"WRITES", b"0"],
    ] {
        assert_eq!(run(&c, refused), oom, "{:?}", refused.get(1));
    }
    for allowed in [
        &[&b"EVAL"[..], b"return 1", b"0"][..],
        &[b"EVAL", b"#!lua flags=allow-oom\nreturn 1", b"0"],
        &[b"EVAL", b"#!lua flags=no-writes\nreturn 1", b"0"],
        &[b"FCALL", b"oom_ok", b"0"],
        &[b"FCALL", b"reads", b"0"],
    ] {
        assert_eq!(run(&c, allowed), Frame::Integer(1), "{:?}", allowed.get(1));
    }
    assert_eq!(
        run(&c, &[b"FCALL", b"nosuch", b"0"]),
        Frame::error("ERR Function not found")
    );
    // In a transaction it makes EXEC refuse the whole queue, as any DENYOOM command does.
    let queue = vec![
        vec![Bytes::from_static(b"PING")],
        vec![
            Bytes::from_static(b"EVAL"),
            Bytes::from_static(writes),
            Bytes::from_static(b"0"),
        ],
    ];
    assert_eq!(
        c.execute_atomic(0, &queue),
        Err(Frame::error(
            "EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'."
        ))
    );
}

#[test]
fn every_evicting_policy_holds_the_ceiling() {
    for policy in [
        EvictionPolicy::AllkeysLru,
        EvictionPolicy::AllkeysLfu,
        EvictionPolicy::AllkeysRandom,
        EvictionPolicy::AllkeysSieve,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
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
fn volatile_policies_evict_only_the_few_keys_with_a_ttl() {
    // Room for ~20 000 keys: far more than one round samples (16 per shard).
    const CEILING: u64 = 4_000_000;
    for policy in [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ] {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let config = CacheConfig {
            maxmemory_bytes: CEILING,
            eviction_policy: policy,
            ..CacheConfig::default()
        };
        let c = Cache::new(config, clock.clone());
        // Mostly persistent keys, and a few with a TTL: the sample must find those few
        // instead of answering OOM, and never take a persistent key.
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
        assert_eq!(r, Frame::ok(), "{policy:?}");
        let volatile_left = (0..10)
            .filter(|v| c.get(0, format!("v{v}").as_bytes()).is_some())
            .count();
        assert!(
            volatile_left < 10,
            "{policy:?}: no key with a TTL was evicted"
        );
        assert!(
            (0..i).all(|p| c.get(0, format!("p{p}").as_bytes()).is_some()),
            "{policy:?} evicted a key without a TTL"
        );
        // Once every key with a TTL is gone, a write over the ceiling is refused.
        for n in 0..20 {
            let _ = c.set(0, format!("more{n}").as_bytes(), &[b'x'; 100], None);
        }
        assert_eq!(
            c.set(0, b"last", &[b'x'; 100], None),
            Frame::error("OOM command not allowed when used memory > 'maxmemory'."),
            "{policy:?}"
        );
    }
}

#[test]
fn volatile_lfu_keeps_the_frequently_read_keys_with_a_ttl() {
    let (clock, c) = cache(EvictionPolicy::VolatileLfu);
    for h in 0..20 {
        c.set(
            0,
            format!("hot{h}").as_bytes(),
            &[b'h'; 100],
            Some(10_000_000),
        );
    }
    for i in 0..3_000 {
        clock.advance(Duration::from_millis(1));
        for h in 0..20 {
            let _ = c.get(0, format!("hot{h}").as_bytes());
        }
        c.set(
            0,
            format!("cold{i}").as_bytes(),
            &[b'c'; 100],
            Some(10_000_000),
        );
    }
    let kept = (0..20)
        .filter(|h| c.get(0, format!("hot{h}").as_bytes()).is_some())
        .count();
    assert!(kept >= 18, "volatile-lfu kept only {kept} of 20 hot keys");
}

#[test]
fn config_set_takes_every_redis_policy_and_refuses_others() {
    let (_, c) = cache(EvictionPolicy::Noeviction);
    for name in [
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-sieve",
    ] {
        assert_eq!(
            run(
                &c,
                &[b"CONFIG", b"SET", b"maxmemory-policy", name.as_bytes()]
            ),
            Frame::ok(),
            "{name}"
        );
        assert_eq!(
            run(&c, &[b"CONFIG", b"GET", b"maxmemory-policy"]),
            Frame::Map(vec![(
                Frame::bulk(&b"maxmemory-policy"[..]),
                Frame::bulk(name.as_bytes())
            )]),
        );
    }
    let Frame::Error(e) = run(
        &c,
        &[b"CONFIG", b"SET", b"maxmemory-policy", b"volatile-fifo"],
    ) else {
        panic!("an unknown policy was accepted");
    };
    assert!(
        e.contains("argument(s) must be one of the following"),
        "{e}"
    );
}

/// `maxmemory-samples` takes Redis's range, 1 to 64, and refuses 0 and 65 with Redis's text.
#[test]
fn maxmemory_samples_at_its_bounds() {
    let (_, c) = cache(EvictionPolicy::AllkeysLru);
    for ok in [&b"1"[..], b"64"] {
        assert_eq!(
            run(&c, &[b"CONFIG", b"SET", b"maxmemory-samples", ok]),
            Frame::ok()
        );
    }
    for bad in [&b"0"[..], b"65"] {
        let Frame::Error(e) = run(&c, &[b"CONFIG", b"SET", b"maxmemory-samples", bad]) else {
            panic!("maxmemory-samples {bad:?} was accepted");
        };
        assert!(
            e.contains("maxmemory-samples")
                && e.contains("argument must be between 1 and 64 inclusive"),
            "{e}"
        );
    }
    assert_eq!(
        run(&c, &[b"CONFIG", b"GET", b"maxmemory-samples"]),
        Frame::Map(vec![(
            Frame::bulk(&b"maxmemory-samples"[..]),
            Frame::bulk(&b"64"[..])
        )]),
    );
}

fn run(c: &Cache, parts: &[&[u8]]) -> Frame {
    let args: Vec<bytes::Bytes> = parts
        .iter()
        .map(|p| bytes::Bytes::copy_from_slice(p))
        .collect();
    c.execute(0, &args)
}

/// A list is charged its elements' bytes: pushing 10 KB elements under `noeviction` meets
/// Redis's OOM error once the pushed bytes pass the ceiling (the check runs before each write,
/// so one element may go over), and MEMORY USAGE and `used_bytes` report those bytes.
#[test]
fn big_list_elements_reach_the_ceiling_by_their_bytes() {
    const ELEMENT: usize = 10_000;
    let (_, c) = cache(EvictionPolicy::Noeviction);
    let element = vec![b'e'; ELEMENT];
    let mut pushed = 0usize;
    let refused = loop {
        let r = run(&c, &[b"RPUSH", b"big", &element]);
        if !matches!(r, Frame::Integer(_)) {
            break r;
        }
        pushed += 1;
        assert!(
            pushed < 1_000,
            "40 KB ceiling never reached after {pushed} × 10 KB"
        );
    };
    assert_eq!(
        refused,
        Frame::error("OOM command not allowed when used memory > 'maxmemory'.")
    );
    let bytes = pushed * ELEMENT;
    // Refused only once over, and not before the elements' own bytes came near the ceiling.
    assert!(
        (pushed - 1) * ELEMENT < CEILING as usize,
        "{bytes} bytes pushed"
    );
    let Frame::Integer(usage) = run(&c, &[b"MEMORY", b"USAGE", b"big"]) else {
        panic!("MEMORY USAGE of a list is an integer");
    };
    assert!(
        usage as usize > CEILING as usize,
        "refused at MEMORY USAGE {usage}"
    );
    assert!(usage as usize >= bytes, "MEMORY USAGE {usage} < {bytes}");
    assert_eq!(c.used_bytes(), usage as usize);
    assert_eq!(c.used_bytes(), c.recount_used_bytes());
    // Popping frees the elements' bytes again.
    assert_eq!(run(&c, &[b"LPOP", b"big", b"1000"]), {
        Frame::Array(vec![Frame::bulk(&element); pushed])
    });
    assert_eq!(c.used_bytes(), 0);
}

/// Under allkeys-lru, a hash that grows by its field and value bytes pushes the other keys out.
#[test]
fn a_growing_hash_evicts_other_keys() {
    const VALUE: usize = 3_000;
    let (clock, c) = cache(EvictionPolicy::AllkeysLru);
    for i in 0..10 {
        c.set(0, format!("small{i}").as_bytes(), &[b's'; 1_000], None);
    }
    clock.advance(Duration::from_secs(1));
    let value = vec![b'v'; VALUE];
    let hset = |f: usize| {
        clock.advance(Duration::from_millis(1));
        let field = format!("field{f}");
        run(&c, &[b"HSET", b"big", field.as_bytes(), &value])
    };
    // 9 × 3 KB of values and 10 × 1 KB of strings fit under the 40 KB ceiling.
    for f in 0..9 {
        assert_eq!(hset(f), Frame::Integer(1));
    }
    assert!((0..10).all(|i| c.get(0, format!("small{i}").as_bytes()).is_some()));
    // Three more fields (12 × 3 KB still fit alone) go over it: the small keys make room.
    for f in 9..12 {
        assert_eq!(hset(f), Frame::Integer(1));
    }
    assert_eq!(run(&c, &[b"HLEN", b"big"]), Frame::Integer(12));
    let left = (0..10)
        .filter(|i| c.get(0, format!("small{i}").as_bytes()).is_some())
        .count();
    assert!(left < 10, "no small key was evicted");
    let Frame::Integer(usage) = run(&c, &[b"MEMORY", b"USAGE", b"big"]) else {
        panic!("MEMORY USAGE of a hash is an integer");
    };
    assert!(usage as usize > 12 * VALUE, "MEMORY USAGE {usage}");
    assert!(
        c.used_bytes() <= CEILING as usize + VALUE + 200,
        "{}",
        c.used_bytes()
    );
    assert_eq!(c.used_bytes(), c.recount_used_bytes());
}

/// Redis's texts for OBJECT FREQ without an LFU policy and OBJECT IDLETIME with one.
const FREQ_UNTRACKED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const IDLE_UNTRACKED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// As Redis 7.0's `objectCommand`: OBJECT FREQ answers the key's LFU counter only under an LFU
/// policy and OBJECT IDLETIME only otherwise, switching with CONFIG SET at run time. The
/// counter starts at `LFU_INIT_VAL` (5), climbs by `LFULogIncr` with `lfu-log-factor`, decays
/// by one per `lfu-decay-time` minutes idle on the injected clock (`LFUDecrAndReturn`, which
/// OBJECT only reads), and survives an overwrite by SET (`dbOverwrite` keeps it).
#[test]
fn object_freq_reads_the_decaying_lfu_counter_under_an_lfu_policy() {
    let (clock, c) = cache(EvictionPolicy::AllkeysLru);
    // The clock starts at 1 000 000 ms, 40 s into minute 16; the test moves by whole minutes.
    assert_eq!(run(&c, &[b"SET", b"k", b"v"]), Frame::ok());
    assert_eq!(
        run(&c, &[b"OBJECT", b"FREQ", b"k"]),
        Frame::error(FREQ_UNTRACKED)
    );
    assert_eq!(run(&c, &[b"OBJECT", b"IDLETIME", b"k"]), Frame::Integer(0));
    let set = |name: &[u8], value: &[u8]| run(&c, &[b"CONFIG", b"SET", name, value]);
    assert_eq!(set(b"maxmemory-policy", b"allkeys-lfu"), Frame::ok());
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(5));
    assert_eq!(
        run(&c, &[b"OBJECT", b"FREQ", b"k"]),
        Frame::Integer(5),
        "OBJECT is no access"
    );
    assert_eq!(
        run(&c, &[b"OBJECT", b"IDLETIME", b"k"]),
        Frame::error(IDLE_UNTRACKED)
    );
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"nosuch"]), Frame::Null);
    // At LFU_INIT_VAL a hit always counts; above it, 1 in (counter - 5) × factor + 1.
    assert_eq!(run(&c, &[b"GET", b"k"]), Frame::bulk(b"v"));
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(6));
    assert_eq!(set(b"lfu-log-factor", b"0"), Frame::ok());
    for _ in 0..10 {
        run(&c, &[b"GET", b"k"]);
    }
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(16));
    // Three minutes idle: one decrement per minute (the default lfu-decay-time 1).
    clock.advance(Duration::from_secs(180));
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(13));
    assert_eq!(set(b"lfu-decay-time", b"0"), Frame::ok());
    assert_eq!(
        run(&c, &[b"OBJECT", b"FREQ", b"k"]),
        Frame::Integer(16),
        "no decay"
    );
    assert_eq!(set(b"lfu-decay-time", b"2"), Frame::ok());
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(15));
    // SET's lookup is a hit (decay, then +1), and the overwrite keeps the counter.
    assert_eq!(run(&c, &[b"SET", b"k", b"w"]), Frame::ok());
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(16));
    // A new key starts at 5 whatever the others do.
    assert_eq!(run(&c, &[b"SET", b"fresh", b"v"]), Frame::ok());
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"fresh"]), Frame::Integer(5));
    // Back to LRU: FREQ is refused again and IDLETIME answers.
    assert_eq!(set(b"maxmemory-policy", b"allkeys-lru"), Frame::ok());
    assert_eq!(
        run(&c, &[b"OBJECT", b"FREQ", b"k"]),
        Frame::error(FREQ_UNTRACKED)
    );
    assert_eq!(run(&c, &[b"OBJECT", b"IDLETIME", b"k"]), Frame::Integer(0));
    // Under LRU the counter stands still, as Redis updates it only under an LFU policy (with
    // lfu-log-factor 0 these reads would have raised it by 20).
    for _ in 0..20 {
        run(&c, &[b"GET", b"k"]);
    }
    assert_eq!(set(b"maxmemory-policy", b"allkeys-lfu"), Frame::ok());
    assert_eq!(run(&c, &[b"OBJECT", b"FREQ", b"k"]), Frame::Integer(16));
}

/// `lfu-log-factor` and `lfu-decay-time` take Redis's range 0..=INT_MAX, with its texts.
#[test]
fn lfu_settings_at_max_and_above() {
    let (_, c) = cache(EvictionPolicy::AllkeysLfu);
    for name in [&b"lfu-log-factor"[..], b"lfu-decay-time"] {
        let set = |value: &[u8]| run(&c, &[b"CONFIG", b"SET", name, value]);
        let failed = |reason: &str| {
            Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {reason}",
                String::from_utf8_lossy(name)
            ))
        };
        assert_eq!(set(b"2147483647"), Frame::ok());
        let between = failed("argument must be between 0 and 2147483647 inclusive");
        assert_eq!(set(b"2147483648"), between);
        assert_eq!(set(b"-1"), between);
        assert_eq!(
            set(b"ten"),
            failed("argument couldn't be parsed into an integer")
        );
        let got = run(&c, &[b"CONFIG", b"GET", name]);
        assert_eq!(
            got,
            Frame::Map(vec![(Frame::bulk(name), Frame::bulk(b"2147483647"))])
        );
    }
}

/// A CONFIG SET of several parameters sets all or none, as Redis 7.0: one bad value, or a
/// parameter named twice (also under its other name), leaves every parameter as it was.
#[test]
fn config_set_of_several_parameters_is_all_or_nothing() {
    let (_, c) = cache(EvictionPolicy::AllkeysLru);
    let get = |name: &[u8]| match run(&c, &[b"CONFIG", b"GET", name]) {
        Frame::Map(pairs) => pairs.into_iter().next().map(|(_, v)| v),
        other => panic!("CONFIG GET answered {other:?}"),
    };
    let failed = |name: &str, reason: &str| {
        Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
        ))
    };
    let set2 = |a: &[u8], x: &[u8], b: &[u8], y: &[u8]| run(&c, &[b"CONFIG", b"SET", a, x, b, y]);
    let before = (get(b"maxmemory"), get(b"maxmemory-samples"));
    assert_eq!(
        set2(b"maxmemory", b"1mb", b"maxmemory-samples", b"65"),
        failed(
            "maxmemory-samples",
            "argument must be between 1 and 64 inclusive"
        )
    );
    assert_eq!((get(b"maxmemory"), get(b"maxmemory-samples")), before);
    assert_eq!(
        set2(b"maxmemory-samples", b"7", b"MAXMEMORY-SAMPLES", b"8"),
        failed("maxmemory-samples", "duplicate parameter")
    );
    assert_eq!(
        set2(
            b"zset-max-listpack-entries",
            b"7",
            b"zset-max-ziplist-entries",
            b"8"
        ),
        failed("zset-max-ziplist-entries", "duplicate parameter")
    );
    assert_eq!(get(b"maxmemory-samples"), before.1);
    assert_eq!(get(b"zset-max-listpack-entries"), Some(Frame::bulk(b"128")));
    // Good pairs all take effect.
    assert_eq!(
        set2(b"maxmemory", b"1mb", b"maxmemory-samples", b"9"),
        Frame::ok()
    );
    assert_eq!(get(b"maxmemory"), Some(Frame::bulk(b"1048576")));
    assert_eq!(get(b"maxmemory-samples"), Some(Frame::bulk(b"9")));
}
