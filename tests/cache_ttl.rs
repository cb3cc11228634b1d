//! Capability: keys expire on time — lazily on access and through the bounded active cycle —
//! and TTL commands report what Redis reports.
//! Method: a `ManualClock` is advanced explicitly; nothing sleeps.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streamcache::cache::{
    ACTIVE_EXPIRE_KEYS_PER_SHARD_MAX, Cache, CacheConfig, EventKind, Frame, SHARDS,
};
use streamcache::clock::ManualClock;

fn setup() -> (Arc<ManualClock>, Cache) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    (clock.clone(), Cache::new(CacheConfig::default(), clock))
}

fn run(c: &Cache, parts: &[&str]) -> Frame {
    let args: Vec<Bytes> = parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect();
    c.execute(0, &args)
}

#[test]
fn lazy_expiry_on_access() {
    let (clock, c) = setup();
    c.set(0, b"k", b"v", Some(1_500));
    assert_eq!(run(&c, &["PTTL", "k"]), Frame::Integer(1_500));
    assert_eq!(run(&c, &["TTL", "k"]), Frame::Integer(2));
    clock.advance(Duration::from_millis(1_499));
    assert!(c.get(0, b"k").is_some());
    clock.advance(Duration::from_millis(1));
    assert_eq!(c.get(0, b"k"), None);
    assert_eq!(run(&c, &["TTL", "k"]), Frame::Integer(-2));
}

#[test]
fn expire_options_and_persist() {
    let (_clock, c) = setup();
    run(&c, &["SET", "k", "v"]);
    assert_eq!(run(&c, &["TTL", "k"]), Frame::Integer(-1));
    assert_eq!(run(&c, &["EXPIRE", "k", "100", "XX"]), Frame::Integer(0));
    assert_eq!(run(&c, &["EXPIRE", "k", "100", "NX"]), Frame::Integer(1));
    assert_eq!(run(&c, &["EXPIRE", "k", "50", "GT"]), Frame::Integer(0));
    assert_eq!(run(&c, &["EXPIRE", "k", "50", "LT"]), Frame::Integer(1));
    assert_eq!(run(&c, &["EXPIRETIME", "k"]), Frame::Integer(1_000 + 50));
    assert_eq!(run(&c, &["PERSIST", "k"]), Frame::Integer(1));
    assert_eq!(run(&c, &["EXPIRE", "k", "-1"]), Frame::Integer(1));
    assert_eq!(
        run(&c, &["EXISTS", "k"]),
        Frame::Integer(0),
        "a deadline in the past deletes"
    );
    assert_eq!(
        run(&c, &["SET", "k", "v", "EX", "0"]),
        Frame::error("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        run(&c, &["EXPIRE", "k", "9223372036854775807"]),
        Frame::error("ERR invalid expire time in 'expire' command")
    );
}

#[test]
fn active_cycle_is_bounded_and_emits_expired_events() {
    let (clock, c) = setup();
    let mut rx = c.subscribe_events();
    let n = SHARDS * ACTIVE_EXPIRE_KEYS_PER_SHARD_MAX * 2;
    for i in 0..n {
        c.set(0, format!("k{i}").as_bytes(), b"v", Some(10));
    }
    while rx.try_recv().is_ok() {}
    clock.advance(Duration::from_millis(10));
    let first = c.active_expire_cycle();
    assert!(
        first > 0 && first <= SHARDS * ACTIVE_EXPIRE_KEYS_PER_SHARD_MAX,
        "one pass removed {first}"
    );
    let mut total = first;
    while total < n {
        let removed = c.active_expire_cycle();
        assert!(removed > 0);
        total += removed;
    }
    assert_eq!(run(&c, &["DBSIZE"]), Frame::Integer(0));
    assert_eq!(rx.try_recv().unwrap().kind, EventKind::Expired);
}

#[test]
fn getex_and_keepttl() {
    let (clock, c) = setup();
    run(&c, &["SET", "k", "v", "PX", "1000"]);
    run(&c, &["SET", "k", "w", "KEEPTTL"]);
    assert_eq!(run(&c, &["PTTL", "k"]), Frame::Integer(1000));
    assert_eq!(run(&c, &["GETEX", "k", "PERSIST"]), Frame::bulk(b"w"));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(run(&c, &["GET", "k"]), Frame::bulk(b"w"));
}

/// The engine's housekeeping task runs the active cycle whether or not the RESP server does:
/// an embedded engine with no listener still removes a key nobody reads once its time is up.
#[tokio::test]
async fn an_embedded_engine_expires_keys_actively_without_the_resp_server() {
    use streamcache::config::Config;
    use streamcache::engine::Engine;
    use streamcache::shutdown::Shutdown;

    let clock = ManualClock::shared(1_000_000);
    let config = Config {
        ephemeral: true,
        ..Config::default()
    };
    let engine = Engine::open_with_clock(config, clock.clone()).unwrap();
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    let c = engine.cache().clone();
    let mut rx = c.subscribe_events();
    c.set(0, b"unread", b"v", Some(100));
    assert_eq!(rx.recv().await.unwrap().kind, EventKind::Set);
    clock.advance(Duration::from_millis(100));
    // Nothing reads the key: only the active cycle can report it expired.
    let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the housekeeping task expires the key within its cycles")
        .unwrap();
    assert_eq!(event.kind, EventKind::Expired);
    assert_eq!(run(&c, &["DBSIZE"]), Frame::Integer(0));
    shutdown.trigger();
    engine.stop().await;
    engine.shutdown().unwrap();
}

/// Redis 7.0 looks keys up with `LOOKUP_NOTOUCH` for EXISTS, TYPE, the TTL family and OBJECT
/// (and MEMORY USAGE reads the table directly): inspecting a key is not an access, so its idle
/// time keeps growing and LRU eviction still sees it as cold. GET is an access.
#[test]
fn inspecting_a_key_leaves_its_idle_time_and_lru_age_alone() {
    let (clock, c) = setup();
    c.set(0, b"k", b"v", Some(1_000_000));
    run(&c, &["RPUSH", "l", "x"]);
    clock.advance(Duration::from_secs(30));
    for cmd in [
        &["TYPE", "k"][..],
        &["TTL", "k"],
        &["PTTL", "k"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["EXISTS", "k"],
        &["OBJECT", "ENCODING", "k"],
        &["OBJECT", "REFCOUNT", "k"],
        &["MEMORY", "USAGE", "k"],
        &["TYPE", "l"],
        &["EXISTS", "l"],
    ] {
        run(&c, cmd);
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(run(&c, &["OBJECT", "IDLETIME", "k"]), Frame::Integer(41));
    assert_eq!(run(&c, &["OBJECT", "IDLETIME", "k"]), Frame::Integer(41));
    assert_eq!(run(&c, &["OBJECT", "IDLETIME", "l"]), Frame::Integer(41));
    assert!(c.get(0, b"k").is_some());
    assert_eq!(run(&c, &["OBJECT", "IDLETIME", "k"]), Frame::Integer(0));
    run(&c, &["LLEN", "l"]);
    assert_eq!(run(&c, &["OBJECT", "IDLETIME", "l"]), Frame::Integer(0));
    clock.advance(Duration::from_secs(5));
    run(&c, &["TOUCH", "k"]);
    assert_eq!(run(&c, &["OBJECT", "IDLETIME", "k"]), Frame::Integer(0));
}

/// Under allkeys-lru, a key only inspected (TYPE, TTL, EXISTS, OBJECT) is still the least
/// recently used one and goes first.
#[test]
fn an_inspected_key_is_still_the_lru_victim() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = Cache::new(
        CacheConfig {
            eviction_policy: streamcache::cache::EvictionPolicy::AllkeysLru,
            ..CacheConfig::default()
        },
        clock.clone(),
    );
    c.set(0, b"cold", &[b'x'; 100], None);
    clock.advance(Duration::from_secs(10));
    c.set(0, b"warm", &[b'x'; 100], None);
    clock.advance(Duration::from_secs(10));
    for cmd in ["TYPE", "TTL", "EXISTS"] {
        run(&c, &[cmd, "cold"]);
    }
    run(&c, &["OBJECT", "IDLETIME", "cold"]);
    let used = c.used_bytes();
    run(&c, &["CONFIG", "SET", "maxmemory", &used.to_string()]);
    // Fits exactly; the next write takes memory over the ceiling, and the command after it
    // evicts one key before it runs (which brings memory back under it).
    c.set(0, b"new", &[b'x'; 100], None);
    assert_eq!(run(&c, &["EXISTS", "warm"]), Frame::Integer(1));
    assert_eq!(run(&c, &["EXISTS", "cold"]), Frame::Integer(0));
    assert_eq!(run(&c, &["EXISTS", "new"]), Frame::Integer(1));
}
