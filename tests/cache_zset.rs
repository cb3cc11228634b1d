//! Capability: sorted sets as Redis 7.0.15 has them — ZADD and its options, scores printed as
//! Redis prints them in RESP2 and RESP3, ranks, the ZRANGE family, range removal, pops and
//! blocking pops, the union/intersection/difference commands, random members, ZSCAN, and
//! everything a value type carries (TYPE, OBJECT ENCODING, MEMORY USAGE, COPY, MOVE, RENAME,
//! WATCH, the snapshot), with Redis's error texts and our limits at max and max + 1.
//! Method: a real TCP client on an in-process RESP server (127.0.0.1:0, `ManualClock`): each
//! command is sent as a RESP array and its reply decoded by the crate's own frame decoder, or
//! compared byte for byte where the wire form is the point. Expected replies are what
//! `redis-server` 7.0.15 answers to the same commands. Waits are bounded socket timeouts,
//! never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig, ZADD_PAIRS_MAX, ZSET_NUMKEYS_MAX};
use streamcache::clock::ManualClock;

mod resp_common;

use resp_common::{Conn, bulk, bulks, err};

struct Server {
    resp: resp_common::Server,
    cache: Cache,
}

fn start() -> Server {
    let cache = Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    );
    let config = RespConfig::from_cache(&cache, None);
    Server {
        resp: resp_common::serve(cache.clone(), config),
        cache,
    }
}

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

#[test]
fn zadd_options_replies_and_errors() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    assert_eq!(c.cmd(&["ZADD", "z", "1", "a", "2", "b"]), int(2));
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "5", "a", "3", "c"]), int(1));
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), bulk("1"));
    assert_eq!(c.cmd(&["ZADD", "z", "XX", "5", "a", "9", "new"]), int(0));
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), bulk("5"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "new"]), Frame::Null);
    // CH counts updates too; GT/LT only move a score up/down.
    assert_eq!(
        c.cmd(&["ZADD", "z", "CH", "GT", "4", "a", "3", "b"]),
        int(1)
    );
    assert_eq!(
        c.cmd(&["ZMSCORE", "z", "a", "b", "x"]),
        Frame::Array(vec![bulk("5"), bulk("3"), Frame::Null])
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "LT", "CH", "1", "a", "7", "d"]),
        int(2)
    );
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "2.5", "a"]), bulk("3.5"));
    assert_eq!(c.cmd(&["ZINCRBY", "z", "-1", "a"]), bulk("2.5"));
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "INCR", "1", "a"]), Frame::Null);
    assert_eq!(c.cmd(&["ZADD", "z", "GT", "INCR", "-1", "a"]), Frame::Null);
    assert_eq!(
        c.cmd(&["ZADD", "missing", "XX", "INCR", "1", "a"]),
        Frame::Null
    );
    assert_eq!(c.cmd(&["EXISTS", "missing"]), int(0));
    assert_eq!(c.cmd(&["ZCARD", "z"]), int(4));
    assert_eq!(
        c.cmd(&["ZADD", "z", "1", "a", "2"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "1"]),
        err("ERR wrong number of arguments for 'zadd' command")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "NX"]),
        err("ERR wrong number of arguments for 'zadd' command")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "NX", "XX", "1", "a"]),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "GT", "LT", "1", "a"]),
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "INCR", "1", "a", "2", "b"]),
        err("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(c.cmd(&["ZADD", "hex", "0x1.8p1", "a"]), int(1));
    assert_eq!(c.cmd(&["ZSCORE", "hex", "a"]), bulk("3"));
    for bad in ["nan", "", " 1", "abc", "1e400", "0x"] {
        assert_eq!(
            c.cmd(&["ZADD", "z", bad, "a"]),
            err("ERR value is not a valid float"),
            "{bad:?}"
        );
    }
    // A bad score anywhere adds nothing.
    assert_eq!(
        c.cmd(&["ZADD", "z", "1", "p", "x", "q"]),
        err("ERR value is not a valid float")
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "p"]), Frame::Null);
    assert_eq!(c.cmd(&["ZADD", "inf", "inf", "a"]), int(1));
    assert_eq!(
        c.cmd(&["ZINCRBY", "inf", "-inf", "a"]),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(c.cmd(&["ZSCORE", "inf", "a"]), bulk("inf"));
    assert_eq!(c.cmd(&["SET", "str", "v"]), Frame::ok());
    assert_eq!(
        c.cmd(&["ZADD", "str", "1", "a"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(c.cmd(&["TYPE", "z"]), Frame::simple("zset"));
}

#[test]
fn scores_print_as_redis_in_resp2_and_resp3() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&[
        "ZADD", "z", "0.1", "a", "1.5", "b", "1e300", "c", "-inf", "d",
    ]);
    assert_eq!(
        c.wire(&["ZSCORE", "z", "a"]),
        "$19\r\n0.10000000000000001\r\n"
    );
    assert_eq!(c.wire(&["ZSCORE", "z", "b"]), "$3\r\n1.5\r\n");
    assert_eq!(
        c.wire(&["ZSCORE", "z", "c"]),
        "$23\r\n1.0000000000000001e+300\r\n"
    );
    assert_eq!(c.wire(&["ZSCORE", "z", "d"]), "$4\r\n-inf\r\n");
    assert_eq!(
        c.wire(&["ZRANGE", "z", "0", "1", "WITHSCORES"]),
        "*4\r\n$1\r\nd\r\n$4\r\n-inf\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n"
    );
    assert_eq!(
        c.wire(&["ZPOPMAX", "z"]),
        "*2\r\n$1\r\nc\r\n$23\r\n1.0000000000000001e+300\r\n"
    );
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.wire(&["ZSCORE", "z", "a"]), ",0.10000000000000001\r\n");
    assert_eq!(c.wire(&["ZSCORE", "z", "nope"]), "_\r\n");
    assert_eq!(
        c.wire(&["ZRANGE", "z", "0", "1", "WITHSCORES"]),
        "*2\r\n*2\r\n$1\r\nd\r\n,-inf\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n"
    );
    // ZPOPMIN nests pairs in RESP3 only when a count is given.
    assert_eq!(c.wire(&["ZPOPMIN", "z"]), "*2\r\n$1\r\nd\r\n,-inf\r\n");
    assert_eq!(
        c.wire(&["ZPOPMIN", "z", "1"]),
        "*1\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n"
    );
    assert_eq!(c.wire(&["ZINCRBY", "z", "1", "b"]), ",2.5\r\n");
}

#[test]
fn ranks_and_the_zrange_family() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&[
        "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
    ]);
    assert_eq!(c.cmd(&["ZRANK", "z", "c"]), int(2));
    assert_eq!(c.cmd(&["ZREVRANK", "z", "c"]), int(2));
    assert_eq!(c.cmd(&["ZREVRANK", "z", "a"]), int(4));
    assert_eq!(c.cmd(&["ZRANK", "z", "x"]), Frame::Null);
    assert_eq!(c.cmd(&["ZRANGE", "z", "1", "-2"]), bulks(&["b", "c", "d"]));
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "1", "REV"]), bulks(&["e", "d"]));
    assert_eq!(c.cmd(&["ZREVRANGE", "z", "-2", "-1"]), bulks(&["b", "a"]));
    assert_eq!(c.cmd(&["ZRANGE", "z", "5", "10"]), bulks(&[]));
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "(1", "3"]),
        bulks(&["b", "c"])
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "2"]),
        bulks(&["b", "c"])
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "-1", "2"]),
        bulks(&[])
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "2", "+inf", "LIMIT", "1", "-1"]),
        bulks(&["c", "d", "e"])
    );
    assert_eq!(
        c.cmd(&["ZREVRANGEBYSCORE", "z", "4", "(2", "WITHSCORES"]),
        bulks(&["d", "4", "c", "3"])
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "(4", "+inf", "BYSCORE"]),
        bulks(&["e"])
    );
    assert_eq!(
        c.cmd(&[
            "ZRANGE", "z", "+inf", "4", "BYSCORE", "REV", "LIMIT", "0", "1"
        ]),
        bulks(&["e"])
    );
    assert_eq!(c.cmd(&["ZCOUNT", "z", "(1", "(5"]), int(3));
    assert_eq!(c.cmd(&["ZCOUNT", "z", "5", "1"]), int(0));
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "x", "1"]),
        err("ERR min or max is not a float")
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "1", "nan"]),
        err("ERR min or max is not a float")
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "0", "1", "REV"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "a", "1"]),
        err("ERR value is not an integer or out of range")
    );
    // Lex ranges over equal scores.
    c.cmd(&[
        "ZADD", "l", "0", "alpha", "0", "bar", "0", "cool", "0", "down", "0", "elephant",
    ]);
    assert_eq!(
        c.cmd(&["ZRANGEBYLEX", "l", "-", "[cool"]),
        bulks(&["alpha", "bar", "cool"])
    );
    assert_eq!(
        c.cmd(&["ZRANGEBYLEX", "l", "(bar", "(down"]),
        bulks(&["cool"])
    );
    assert_eq!(
        c.cmd(&["ZREVRANGEBYLEX", "l", "+", "(cool", "LIMIT", "0", "1"]),
        bulks(&["elephant"])
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "l", "[b", "[d", "BYLEX"]),
        bulks(&["bar", "cool"])
    );
    assert_eq!(c.cmd(&["ZLEXCOUNT", "l", "-", "+"]), int(5));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "l", "[d", "[b"]), int(0));
    assert_eq!(
        c.cmd(&["ZRANGEBYLEX", "l", "bar", "+"]),
        err("ERR min or max not valid string range item")
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "l", "-", "+", "BYLEX", "WITHSCORES"]),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(c.cmd(&["ZRANGE", "missing", "0", "-1"]), bulks(&[]));
}

#[test]
fn rank_lookups_do_not_walk_the_set() {
    // 200 000 elements: a walk per ZRANK would take seconds in this debug build; ranks,
    // indexes and score bounds answer from the order-statistic tree.
    let s = start();
    let n = 200_000usize;
    let mut args: Vec<Bytes> = vec![Bytes::from_static(b"ZADD"), Bytes::from_static(b"big")];
    for i in 0..n {
        args.push(Bytes::from(i.to_string()));
        args.push(Bytes::from(format!("m{i:06}")));
    }
    assert_eq!(s.cache.execute(0, &args), int(n as i64));
    let mut c = Conn::open(s.resp.addr);
    for i in (0..n).step_by(997) {
        let m = format!("m{i:06}");
        assert_eq!(c.cmd(&["ZRANK", "big", &m]), int(i as i64));
        assert_eq!(c.cmd(&["ZREVRANK", "big", &m]), int((n - 1 - i) as i64));
        let r = i.to_string();
        assert_eq!(c.cmd(&["ZRANGE", "big", &r, &r]), bulks(&[&m]));
        assert_eq!(
            c.cmd(&["ZCOUNT", "big", "-inf", &format!("({i}")]),
            int(i as i64)
        );
    }
    assert_eq!(
        c.cmd(&["ZREMRANGEBYRANK", "big", "1000", "-1001"]),
        int((n - 2000) as i64)
    );
    assert_eq!(c.cmd(&["ZCARD", "big"]), int(2000));
    assert_eq!(
        c.cmd(&["ZRANGE", "big", "999", "1000"]),
        bulks(&["m000999", "m199000"])
    );
}

#[test]
fn removal_and_pops() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&[
        "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f",
    ]);
    assert_eq!(c.cmd(&["ZREM", "z", "a", "x"]), int(1));
    assert_eq!(c.cmd(&["ZREMRANGEBYSCORE", "z", "(5", "+inf"]), int(1));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "-1", "-1"]), int(1));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "3", "1"]), int(0));
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "-1"]), bulks(&["b", "c", "d"]));
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "2"]), bulks(&["b", "2", "c", "3"]));
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "5"]), bulks(&["d", "4"]));
    assert_eq!(
        c.cmd(&["EXISTS", "z"]),
        int(0),
        "an emptied sorted set is deleted"
    );
    assert_eq!(c.cmd(&["ZPOPMIN", "z"]), bulks(&[]));
    assert_eq!(
        c.cmd(&["ZPOPMIN", "z", "-1"]),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        c.cmd(&["ZPOPMIN", "z", "a"]),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "1", "2"]), err("ERR syntax error"));
    c.cmd(&["ZADD", "l", "0", "a", "0", "b", "0", "c"]);
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "l", "[b", "+"]), int(2));
    assert_eq!(
        c.cmd(&["ZREMRANGEBYLEX", "l", "x", "+"]),
        err("ERR min or max not valid string range item")
    );
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "l", "a", "+inf"]),
        err("ERR min or max is not a float")
    );
    c.cmd(&["ZADD", "m", "1", "x", "2", "y", "3", "z"]);
    assert_eq!(
        c.cmd(&["ZMPOP", "3", "none", "l", "m", "MAX", "COUNT", "10"]),
        Frame::Array(vec![bulk("l"), Frame::Array(vec![bulks(&["a", "0"])])])
    );
    assert_eq!(
        c.cmd(&["ZMPOP", "2", "l", "m", "MIN"]),
        Frame::Array(vec![bulk("m"), Frame::Array(vec![bulks(&["x", "1"])])])
    );
    assert_eq!(c.cmd(&["ZMPOP", "1", "none", "MIN"]), Frame::NullArray);
    assert_eq!(
        c.cmd(&["ZMPOP", "0", "m", "MIN"]),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        c.cmd(&["ZMPOP", "1", "m", "MIN", "COUNT", "0"]),
        err("ERR count should be greater than 0")
    );
    assert_eq!(c.cmd(&["ZMPOP", "1", "m", "LEFT"]), err("ERR syntax error"));
}

#[test]
fn store_and_set_algebra() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["ZADD", "a", "1", "x", "2", "y", "3", "z"]);
    c.cmd(&["ZADD", "b", "10", "y", "20", "z", "30", "w"]);
    c.cmd(&["SADD", "s", "z", "w", "v"]);
    assert_eq!(
        c.cmd(&["ZUNION", "2", "a", "b", "WITHSCORES"]),
        bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(
        c.cmd(&[
            "ZUNIONSTORE",
            "u",
            "3",
            "a",
            "b",
            "s",
            "WEIGHTS",
            "2",
            "1",
            "100",
            "AGGREGATE",
            "MAX"
        ]),
        int(5)
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "u", "0", "-1", "WITHSCORES"]),
        bulks(&["x", "2", "y", "10", "v", "100", "w", "100", "z", "100"])
    );
    assert_eq!(
        c.cmd(&["ZINTER", "3", "a", "b", "s", "WITHSCORES"]),
        bulks(&["z", "24"])
    );
    assert_eq!(
        c.cmd(&["ZINTER", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"]),
        bulks(&["y", "2", "z", "3"])
    );
    assert_eq!(c.cmd(&["ZINTERSTORE", "i", "2", "a", "b"]), int(2));
    assert_eq!(
        c.cmd(&["ZDIFF", "2", "a", "b", "WITHSCORES"]),
        bulks(&["x", "1"])
    );
    assert_eq!(c.cmd(&["ZDIFFSTORE", "d", "2", "s", "a"]), int(2));
    assert_eq!(
        c.cmd(&["ZRANGE", "d", "0", "-1", "WITHSCORES"]),
        bulks(&["v", "1", "w", "1"])
    );
    // An empty result deletes the destination.
    assert_eq!(c.cmd(&["ZDIFFSTORE", "d", "2", "a", "a"]), int(0));
    assert_eq!(c.cmd(&["EXISTS", "d"]), int(0));
    assert_eq!(c.cmd(&["ZINTERCARD", "2", "a", "b"]), int(2));
    assert_eq!(c.cmd(&["ZINTERCARD", "2", "a", "b", "LIMIT", "1"]), int(1));
    assert_eq!(
        c.cmd(&["ZINTERCARD", "1", "a", "LIMIT", "-1"]),
        err("ERR LIMIT can't be negative")
    );
    assert_eq!(
        c.cmd(&["ZUNION", "0", "a"]),
        err("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "u", "3", "a", "b"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "u", "2", "a", "b", "WITHSCORES"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"]),
        err("ERR weight value is not a float")
    );
    assert_eq!(
        c.cmd(&["ZDIFF", "2", "a", "b", "AGGREGATE", "SUM"]),
        err("ERR syntax error")
    );
    c.cmd(&["SET", "str", "v"]);
    assert_eq!(
        c.cmd(&["ZUNION", "2", "a", "str"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    // +inf and -inf sum to 0, as Redis's zunionInterAggregate.
    c.cmd(&["ZADD", "p", "inf", "m"]);
    c.cmd(&["ZADD", "n", "-inf", "m"]);
    assert_eq!(
        c.cmd(&["ZUNION", "2", "p", "n", "WITHSCORES"]),
        bulks(&["m", "0"])
    );
    // ZRANGESTORE stores what ZRANGE would answer, and an empty range deletes.
    assert_eq!(
        c.cmd(&[
            "ZRANGESTORE",
            "r",
            "b",
            "(10",
            "+inf",
            "BYSCORE",
            "LIMIT",
            "0",
            "1"
        ]),
        int(1)
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "r", "0", "-1", "WITHSCORES"]),
        bulks(&["z", "20"])
    );
    assert_eq!(c.cmd(&["ZRANGESTORE", "r", "b", "5", "9"]), int(0));
    assert_eq!(c.cmd(&["EXISTS", "r"]), int(0));
    assert_eq!(
        c.cmd(&["ZRANGESTORE", "r", "b", "0", "-1", "WITHSCORES"]),
        err("ERR syntax error")
    );
}

#[test]
fn random_members_scan_and_encoding() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(
        c.cmd(&["ZRANDMEMBER", "z", "5", "WITHSCORES"]),
        // A count past the size answers the whole set, from the highest, as Redis walks it.
        bulks(&["c", "3", "b", "2", "a", "1"])
    );
    let Frame::Array(picks) = c.cmd(&["ZRANDMEMBER", "z", "-7"]) else {
        panic!("array expected")
    };
    assert_eq!(picks.len(), 7);
    assert!(
        picks
            .iter()
            .all(|p| [bulk("a"), bulk("b"), bulk("c")].contains(p))
    );
    let Frame::Array(two) = c.cmd(&["ZRANDMEMBER", "z", "2"]) else {
        panic!("array expected")
    };
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1], "a positive count picks distinct members");
    assert_eq!(c.cmd(&["ZRANDMEMBER", "none"]), Frame::Null);
    assert_eq!(
        c.cmd(&["ZRANDMEMBER", "z", "1", "2"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"]),
        err("ERR value is out of range")
    );
    let Frame::Array(scan) = c.cmd(&["ZSCAN", "z", "0", "COUNT", "100"]) else {
        panic!("array expected")
    };
    assert_eq!(scan[0], bulk("0"));
    let Frame::Array(mut flat) = scan[1].clone() else {
        panic!("array expected")
    };
    assert_eq!(flat.len(), 6);
    let mut pairs: Vec<(Frame, Frame)> = Vec::new();
    while !flat.is_empty() {
        let m = flat.remove(0);
        pairs.push((m, flat.remove(0)));
    }
    pairs.sort_by_key(|(m, _)| format!("{m:?}"));
    assert_eq!(
        pairs,
        vec![
            (bulk("a"), bulk("1")),
            (bulk("b"), bulk("2")),
            (bulk("c"), bulk("3"))
        ]
    );
    // A listpack-encoded set scans whole in one call, whatever COUNT, as Redis answers it.
    assert_eq!(
        c.cmd(&["ZSCAN", "z", "0", "COUNT", "1", "MATCH", "[ab]"]),
        Frame::Array(vec![bulk("0"), bulks(&["a", "1", "b", "2"])])
    );
    // OBJECT ENCODING follows zset-max-listpack-entries/-value and sticks once a skiplist.
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z"]), bulk("listpack"));
    let long = "x".repeat(65);
    c.cmd(&["ZADD", "z", "4", &long]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    c.cmd(&["ZREM", "z", &long]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "zset-max-ziplist-entries", "2"]),
        Frame::ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "zset-max-listpack-entries"]),
        bulks(&["zset-max-listpack-entries", "2"])
    );
    c.cmd(&["ZADD", "y", "1", "a", "2", "b"]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "y"]), bulk("listpack"));
    c.cmd(&["ZADD", "y", "3", "c"]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "y"]), bulk("skiplist"));
    // A stored result is sized afresh.
    assert_eq!(c.cmd(&["ZRANGESTORE", "w", "y", "0", "1"]), int(2));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "w"]), bulk("listpack"));
}

#[test]
fn memory_copy_move_rename_and_watch() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["ZADD", "z", "1", "a"]);
    let Frame::Integer(small) = c.cmd(&["MEMORY", "USAGE", "z"]) else {
        panic!("integer expected")
    };
    let member = "m".repeat(1000);
    c.cmd(&["ZADD", "z", "2", &member]);
    let Frame::Integer(big) = c.cmd(&["MEMORY", "USAGE", "z"]) else {
        panic!("integer expected")
    };
    assert!(big >= small + 1000, "{small} -> {big}");
    assert_eq!(s.cache.used_bytes(), s.cache.recount_used_bytes());
    assert_eq!(c.cmd(&["COPY", "z", "z2"]), int(1));
    assert_eq!(
        c.cmd(&["ZRANGE", "z2", "0", "-1", "WITHSCORES"]),
        bulks(&["a", "1", &member, "2"])
    );
    assert_eq!(c.cmd(&["MOVE", "z2", "3"]), int(1));
    assert_eq!(c.cmd(&["RENAME", "z", "r"]), Frame::ok());
    assert_eq!(c.cmd(&["ZSCORE", "r", "a"]), bulk("1"));
    c.cmd(&["SELECT", "3"]);
    assert_eq!(c.cmd(&["TYPE", "z2"]), Frame::simple("zset"));
    c.cmd(&["SELECT", "0"]);
    // A sorted set write touches a watched key; a no-op (NX on a member) does not.
    let mut other = Conn::open(s.resp.addr);
    c.cmd(&["WATCH", "r"]);
    other.cmd(&["ZADD", "r", "NX", "9", "a"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["ZCARD", "r"]);
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![int(2)]));
    c.cmd(&["WATCH", "r"]);
    other.cmd(&["ZINCRBY", "r", "1", "a"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["ZCARD", "r"]);
    assert_eq!(c.cmd(&["EXEC"]), Frame::NullArray);
    assert_eq!(s.cache.used_bytes(), s.cache.recount_used_bytes());
}

/// Waits (bounded) until `n` clients are blocked.
fn wait_blocked(c: &mut Conn, n: usize) {
    for _ in 0..2000 {
        let Frame::Bulk(info) = c.cmd(&["INFO", "clients"]) else {
            panic!("bulk expected")
        };
        if String::from_utf8_lossy(&info).contains(&format!("blocked_clients:{n}")) {
            return;
        }
        std::thread::yield_now();
    }
    panic!("never saw {n} blocked clients");
}

#[test]
fn blocking_pops_are_served_by_a_zadd() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    let mut waiter = Conn::open(s.resp.addr);
    waiter.send(&["BZPOPMIN", "none", "q", "0"]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["ZADD", "q", "2", "b", "1", "a"]), int(2));
    assert_eq!(waiter.reply_raw().0, bulks(&["q", "a", "1"]));
    waiter.send(&["BZMPOP", "0", "2", "none", "p", "MAX", "COUNT", "2"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["ZADD", "p", "1", "x", "2", "y", "3", "z"]);
    assert_eq!(
        waiter.reply_raw().0,
        Frame::Array(vec![
            bulk("p"),
            Frame::Array(vec![bulks(&["z", "3"]), bulks(&["y", "2"])])
        ])
    );
    // Ready at once: no blocking.
    assert_eq!(c.cmd(&["BZPOPMAX", "p", "q", "0"]), bulks(&["p", "x", "1"]));
    assert_eq!(c.cmd(&["BZPOPMAX", "empty", "0.01"]), Frame::NullArray);
    assert_eq!(
        c.cmd(&["BZPOPMIN", "q", "-1"]),
        err("ERR timeout is negative")
    );
    assert_eq!(
        c.cmd(&["BZMPOP", "x", "1", "q", "MIN"]),
        err("ERR timeout is not a float or out of range")
    );
    c.cmd(&["SET", "str", "v"]);
    assert_eq!(
        c.cmd(&["BZPOPMIN", "str", "0"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    // Inside MULTI a blocking pop that would wait answers null at once.
    c.cmd(&["MULTI"]);
    c.cmd(&["BZPOPMIN", "empty", "0"]);
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::NullArray]));
}

#[test]
fn limits_at_max_and_above() {
    let s = start();
    // ZADD pairs: XX on a missing key parses every score and stores nothing, so the maximum
    // costs no insertion.
    let zadd = |pairs: usize| {
        let mut args = vec![
            Bytes::from_static(b"ZADD"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"XX"),
        ];
        for _ in 0..pairs {
            args.push(Bytes::from_static(b"1"));
            args.push(Bytes::from_static(b"m"));
        }
        s.cache.execute(0, &args)
    };
    assert_eq!(zadd(ZADD_PAIRS_MAX), int(0));
    assert_eq!(
        zadd(ZADD_PAIRS_MAX + 1),
        err(&format!(
            "ERR too many score-member pairs ({}, at most {ZADD_PAIRS_MAX})",
            ZADD_PAIRS_MAX + 1
        ))
    );
    // numkeys: every command that takes it.
    let with_keys = |prefix: &[&str], n: usize, suffix: &[&str]| {
        let mut args: Vec<Bytes> = prefix
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        args.push(Bytes::from(n.to_string()));
        for i in 0..n {
            args.push(Bytes::from(format!("key{i}")));
        }
        args.extend(suffix.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())));
        s.cache.execute(0, &args)
    };
    let over = err(&format!(
        "ERR numkeys is {}, at most {ZSET_NUMKEYS_MAX} keys are allowed",
        ZSET_NUMKEYS_MAX + 1
    ));
    for (prefix, suffix, at_max) in [
        (&["ZUNION"][..], &[][..], Frame::Array(Vec::new())),
        (&["ZINTERCARD"], &[], int(0)),
        (&["ZDIFFSTORE", "dst"], &[], int(0)),
        (&["ZMPOP"], &["MIN"], Frame::NullArray),
    ] {
        assert_eq!(
            with_keys(prefix, ZSET_NUMKEYS_MAX, suffix),
            at_max,
            "{prefix:?}"
        );
        assert_eq!(
            with_keys(prefix, ZSET_NUMKEYS_MAX + 1, suffix),
            over,
            "{prefix:?}"
        );
    }
}

#[test]
fn snapshot_keeps_sorted_sets() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = CacheConfig {
        snapshot: true,
        ..CacheConfig::default()
    };
    let args = |parts: &[&str]| -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    };
    let c = Cache::open(config.clone(), clock.clone(), dir.path());
    let _ = c.execute(
        0,
        &args(&["ZADD", "z", "-inf", "low", "0.1", "a", "2", "b"]),
    );
    c.save_snapshot().unwrap();
    drop(c);
    let c = Cache::open(config, clock, dir.path());
    assert_eq!(
        c.execute(0, &args(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])),
        Frame::Array(vec![
            bulk("low"),
            Frame::Double(f64::NEG_INFINITY),
            bulk("a"),
            Frame::Double(0.1),
            bulk("b"),
            Frame::Double(2.0)
        ])
    );
    assert_eq!(c.used_bytes(), c.recount_used_bytes());
}
