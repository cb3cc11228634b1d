//! Capability: the optional snapshot survives a restart — every type, TTLs included, and the
//! FUNCTION libraries — and a corrupt snapshot is set aside instead of crashing the start.
//! Method: `Cache::open` on a temporary directory, `save_snapshot`, reopen; then overwrite the
//! file with damaged bytes and reopen.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, Frame};
use streamcache::clock::ManualClock;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Cache {
    Cache::open(
        CacheConfig {
            snapshot: true,
            ..CacheConfig::default()
        },
        clock.clone(),
        dir,
    )
}

fn run(c: &Cache, db: usize, parts: &[&str]) -> Frame {
    let args: Vec<Bytes> = parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect();
    c.execute(db, &args)
}

#[test]
fn snapshot_round_trip_with_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = open(dir.path(), &clock);
    c.set(0, b"s", b"v", None);
    c.set(0, b"short", b"v", Some(100));
    c.set(5, b"long", b"v", Some(100_000));
    run(&c, 0, &["HSET", "h", "f", "1"]);
    run(&c, 0, &["RPUSH", "l", "a", "b"]);
    run(&c, 0, &["SADD", "set", "m"]);
    c.save_snapshot().unwrap();
    drop(c);

    clock.advance(Duration::from_millis(200));
    let c = open(dir.path(), &clock);
    assert_eq!(c.get(0, b"s").as_deref(), Some(&b"v"[..]));
    assert_eq!(c.get(0, b"short"), None, "expired while down");
    assert_eq!(run(&c, 5, &["PTTL", "long"]), Frame::Integer(99_800));
    assert_eq!(run(&c, 0, &["HGET", "h", "f"]), Frame::bulk(b"1"));
    assert_eq!(
        run(&c, 0, &["LRANGE", "l", "0", "-1"]),
        Frame::Array(vec![Frame::bulk(b"a"), Frame::bulk(b"b")])
    );
    assert_eq!(run(&c, 0, &["SISMEMBER", "set", "m"]), Frame::Integer(1));
}

#[test]
fn function_libraries_survive_a_restart_and_keys_do_not_collide_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = open(dir.path(), &clock);
    let code = "#!lua name=mylib\nredis.register_function('hello', function(keys, args) return 'hi '..args[1] end)";
    assert_eq!(
        run(&c, 0, &["FUNCTION", "LOAD", code]),
        Frame::bulk(b"mylib")
    );
    // A key named like the library stays a key.
    c.set(0, b"mylib", b"a key", None);
    c.save_snapshot().unwrap();
    drop(c);

    let c = open(dir.path(), &clock);
    assert_eq!(
        run(&c, 0, &["FCALL", "hello", "0", "you"]),
        Frame::bulk(b"hi you")
    );
    assert_eq!(c.get(0, b"mylib").as_deref(), Some(&b"a key"[..]));
    let Frame::Array(libs) = run(&c, 0, &["FUNCTION", "LIST", "WITHCODE"]) else {
        panic!("FUNCTION LIST")
    };
    assert_eq!(libs.len(), 1);
    assert!(
        format!("{libs:?}").contains("register_function('hello'"),
        "{libs:?}"
    );
}

#[test]
fn corrupt_snapshot_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = open(dir.path(), &clock);
    c.set(0, b"k", b"v", None);
    c.save_snapshot().unwrap();
    drop(c);
    let path = dir.path().join("cache.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();

    let c = open(dir.path(), &clock);
    assert_eq!(c.get(0, b"k"), None, "a corrupt snapshot is not loaded");
    assert_eq!(set_aside(dir.path()), ["cache.snapshot.corrupt-1000000"]);
    assert!(!path.exists());

    // A second corrupt snapshot is set aside beside the first, not over it.
    drop(c);
    std::fs::write(&path, b"not a snapshot").unwrap();
    clock.advance(Duration::from_millis(5));
    let c = open(dir.path(), &clock);
    assert_eq!(
        set_aside(dir.path()),
        [
            "cache.snapshot.corrupt-1000000",
            "cache.snapshot.corrupt-1000005"
        ]
    );
    drop(c);
}

/// The names of the snapshots set aside in `dir`, sorted.
fn set_aside(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("cache.snapshot.corrupt"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_snapshot_that_cannot_be_read_is_set_aside_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    // Reading a directory fails as an unreadable file does (EISDIR).
    let path = dir.path().join("cache.snapshot");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), b"kept").unwrap();
    let c = open(dir.path(), &clock);
    c.set(0, b"k", b"v", None);
    c.save_snapshot().unwrap();
    let aside = dir.path().join("cache.snapshot.corrupt-1000000");
    assert_eq!(std::fs::read(aside.join("inside")).unwrap(), b"kept");
    drop(c);
    let c = open(dir.path(), &clock);
    assert_eq!(c.get(0, b"k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_failed_save_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = open(dir.path(), &clock);
    c.set(0, b"k", b"v", None);
    // A non-empty directory where the snapshot goes: the rename over it fails.
    let path = dir.path().join("cache.snapshot");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), b"x").unwrap();
    assert!(c.save_snapshot().is_err());
    assert!(!dir.path().join("cache.snapshot.tmp").exists());
}

/// A loaded hash or set gets the encoding Redis's loader gives it by its contents under the
/// thresholds in force (the snapshot does not record it): a set that was converted by a
/// non-integer since removed loads as an intset, as after Redis's DEBUG RELOAD.
#[test]
fn loaded_hashes_and_sets_get_their_encoding_from_their_contents() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = open(dir.path(), &clock);
    run(&c, 0, &["SADD", "ints", "1", "a"]);
    run(&c, 0, &["SREM", "ints", "a"]);
    run(&c, 0, &["SADD", "words", "a"]);
    run(&c, 0, &["HSET", "small", "f", "v"]);
    let long = "x".repeat(65);
    run(&c, 0, &["HSET", "long", "f", &long]);
    // Past the default thresholds (512 fields, 512 integers): tables when loaded.
    let mut hset = vec!["HSET".to_owned(), "many".to_owned()];
    let mut sadd = vec!["SADD".to_owned(), "bigints".to_owned()];
    for i in 0..600 {
        hset.extend([format!("f{i}"), "v".to_owned()]);
        sadd.push(i.to_string());
    }
    for parts in [hset, sadd] {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        run(&c, 0, &parts);
    }
    assert_eq!(
        run(&c, 0, &["OBJECT", "ENCODING", "ints"]),
        Frame::bulk(b"hashtable")
    );
    c.save_snapshot().unwrap();
    drop(c);

    let c = open(dir.path(), &clock);
    for (key, want) in [
        ("ints", "intset"),
        ("words", "hashtable"),
        ("small", "listpack"),
        ("long", "hashtable"),
        ("many", "hashtable"),
        ("bigints", "hashtable"),
    ] {
        assert_eq!(
            run(&c, 0, &["OBJECT", "ENCODING", key]),
            Frame::bulk(want.as_bytes()),
            "{key}"
        );
    }
}
