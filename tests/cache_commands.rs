//! Capability: the cache's commands and typed helpers behave as Redis's do.
//! Method: drive `Cache::execute` and the typed helpers in-process with a `ManualClock` and
//! compare replies with what Redis 7.0 answers.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, EventKind, Frame};
use streamcache::clock::ManualClock;

fn cache() -> Cache {
    Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    )
}

fn run(c: &Cache, parts: &[&str]) -> Frame {
    let args: Vec<Bytes> = parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect();
    c.execute(0, &args)
}

fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes())
}

#[test]
fn strings_and_arithmetic() {
    let c = cache();
    assert_eq!(run(&c, &["SET", "k", "10"]), Frame::ok());
    assert_eq!(run(&c, &["INCRBY", "k", "5"]), Frame::Integer(15));
    assert_eq!(run(&c, &["APPEND", "k", "x"]), Frame::Integer(3));
    assert_eq!(
        run(&c, &["INCR", "k"]),
        Frame::error("ERR value is not an integer or out of range")
    );
    assert_eq!(run(&c, &["SET", "f", "10.5"]), Frame::ok());
    assert_eq!(run(&c, &["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
    assert_eq!(run(&c, &["SET", "k", "v", "NX"]), Frame::Null);
    assert_eq!(run(&c, &["SET", "k", "v", "XX", "GET"]), bulk("15x"));
    assert_eq!(run(&c, &["GETRANGE", "k", "0", "-1"]), bulk("v"));
    assert_eq!(run(&c, &["SETRANGE", "k", "3", "z"]), Frame::Integer(4));
    assert_eq!(
        run(&c, &["GET", "k"]),
        Frame::Bulk(Bytes::from_static(b"v\0\0z"))
    );
    assert_eq!(run(&c, &["MSET", "a", "1", "b", "2"]), Frame::ok());
    assert_eq!(
        run(&c, &["MGET", "a", "b", "nope"]),
        Frame::Array(vec![bulk("1"), bulk("2"), Frame::Null])
    );
    assert_eq!(run(&c, &["SET", "big", "9223372036854775807"]), Frame::ok());
    assert_eq!(
        run(&c, &["INCR", "big"]),
        Frame::error("ERR increment or decrement would overflow")
    );
}

#[test]
fn unknown_command_and_arity_use_redis_texts() {
    let c = cache();
    assert_eq!(
        run(&c, &["FOO", "a", "b"]),
        Frame::error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        run(&c, &["GET"]),
        Frame::error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(run(&c, &["LPUSH", "s", "a"]), Frame::Integer(1));
    assert_eq!(
        run(&c, &["GET", "s"]),
        Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}

#[test]
fn hashes_lists_sets() {
    let c = cache();
    assert_eq!(
        c.hset(0, b"h", &[(b"a", b"1"), (b"b", b"2")]),
        Frame::Integer(2)
    );
    assert_eq!(run(&c, &["HINCRBY", "h", "a", "9"]), Frame::Integer(10));
    assert_eq!(run(&c, &["HLEN", "h"]), Frame::Integer(2));
    assert_eq!(run(&c, &["HDEL", "h", "a", "b"]), Frame::Integer(2));
    assert_eq!(
        run(&c, &["EXISTS", "h"]),
        Frame::Integer(0),
        "an emptied hash is deleted"
    );

    assert_eq!(
        run(&c, &["RPUSH", "l", "a", "b", "c", "b"]),
        Frame::Integer(4)
    );
    assert_eq!(
        run(&c, &["LPOS", "l", "b", "RANK", "-1"]),
        Frame::Integer(3)
    );
    assert_eq!(run(&c, &["LREM", "l", "-1", "b"]), Frame::Integer(1));
    assert_eq!(
        run(&c, &["LRANGE", "l", "0", "-1"]),
        Frame::Array(vec![bulk("a"), bulk("b"), bulk("c")])
    );
    assert_eq!(run(&c, &["LMOVE", "l", "m", "LEFT", "RIGHT"]), bulk("a"));
    assert_eq!(
        run(&c, &["LMPOP", "2", "x", "l", "RIGHT", "COUNT", "5"]),
        Frame::Array(vec![bulk("l"), Frame::Array(vec![bulk("c"), bulk("b")])])
    );

    assert_eq!(run(&c, &["SADD", "s1", "a", "b", "c"]), Frame::Integer(3));
    assert_eq!(run(&c, &["SADD", "s2", "b", "c", "d"]), Frame::Integer(3));
    assert_eq!(run(&c, &["SINTERCARD", "2", "s1", "s2"]), Frame::Integer(2));
    assert_eq!(
        run(&c, &["SDIFFSTORE", "s3", "s1", "s2"]),
        Frame::Integer(1)
    );
    assert_eq!(run(&c, &["SMEMBERS", "s3"]), Frame::Set(vec![bulk("a")]));
    assert_eq!(
        run(&c, &["SMISMEMBER", "s1", "a", "z"]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)])
    );
}

#[test]
fn sort_orders_and_stores() {
    let c = cache();
    run(&c, &["RPUSH", "n", "10", "2", "33", "1.5"]);
    assert_eq!(
        run(&c, &["SORT", "n"]),
        Frame::Array(vec![bulk("1.5"), bulk("2"), bulk("10"), bulk("33")])
    );
    assert_eq!(
        run(&c, &["SORT", "n", "ALPHA", "DESC", "LIMIT", "0", "2"]),
        Frame::Array(vec![bulk("33"), bulk("2")])
    );
    assert_eq!(run(&c, &["SORT", "n", "STORE", "dst"]), Frame::Integer(4));
    assert_eq!(run(&c, &["LINDEX", "dst", "0"]), bulk("1.5"));
    assert_eq!(
        run(&c, &["SORT_RO", "n", "STORE", "x"]),
        Frame::error("ERR syntax error")
    );
}

#[test]
fn databases_are_separate_and_swappable() {
    let c = cache();
    c.set(0, b"k", b"zero", None);
    c.set(1, b"k", b"one", None);
    assert_eq!(c.get(1, b"k").as_deref(), Some(&b"one"[..]));
    assert_eq!(run(&c, &["SWAPDB", "0", "1"]), Frame::ok());
    assert_eq!(c.get(0, b"k").as_deref(), Some(&b"one"[..]));
    assert_eq!(run(&c, &["MOVE", "k", "2"]), Frame::Integer(1));
    assert_eq!(c.get(2, b"k").as_deref(), Some(&b"one"[..]));
    assert_eq!(c.del(2, &[b"k", b"missing"]), 1);
    assert_eq!(
        run(&c, &["SELECT", "1"]),
        Frame::error("ERR 'SELECT' is only available on a RESP connection")
    );
}

#[test]
fn keyspace_events_reach_subscribers() {
    let c = cache();
    let mut rx = c.subscribe_events();
    c.set(3, b"k", b"v", None);
    c.del(3, &[b"k"]);
    let first = rx.try_recv().unwrap();
    assert_eq!(
        (first.db, &first.key[..], first.kind),
        (3, &b"k"[..], EventKind::Set)
    );
    assert_eq!(rx.try_recv().unwrap().kind, EventKind::Del);
}

#[test]
fn transactions_run_atomically() {
    let c = cache();
    let cmds: Vec<Vec<Bytes>> = vec![
        vec![Bytes::from("SET"), Bytes::from("a"), Bytes::from("1")],
        vec![Bytes::from("INCR"), Bytes::from("a")],
        vec![Bytes::from("GET")],
    ];
    let replies = c.execute_atomic(0, &cmds);
    assert_eq!(replies[1], Frame::Integer(2));
    assert_eq!(
        replies[2],
        Frame::error("ERR wrong number of arguments for 'get' command")
    );
}

#[test]
fn key_and_value_limits_at_max_and_above() {
    // The value limit is checked where a value grows: SETRANGE at the last byte of the limit is
    // refused only past it.
    let c = cache();
    let max = streamcache::cache::VALUE_BYTES_MAX;
    assert_eq!(
        run(&c, &["SETRANGE", "k", &(max).to_string(), "x"]),
        Frame::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    assert_eq!(
        run(&c, &["SETBIT", "k", &((max as u64) * 8).to_string(), "1"]),
        Frame::error("ERR bit offset is not an integer or out of range")
    );
    assert_eq!(run(&c, &["SETRANGE", "k", "0", "x"]), Frame::Integer(1));
}

#[test]
fn default_toml_with_cache_section_parses_to_defaults() {
    let text = streamcache::config::default_toml();
    assert!(text.contains("[cache]"));
    let parsed =
        streamcache::config::parse_toml(&text, std::path::Path::new("default.toml")).unwrap();
    assert_eq!(parsed, streamcache::config::Config::default());
}
