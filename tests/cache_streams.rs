//! Capability: streams as Redis 7.0.15 has them — XADD (auto, `<ms>-*` and explicit IDs,
//! NOMKSTREAM, MAXLEN/MINID exact and `~` with LIMIT), XLEN, XRANGE/XREVRANGE (incomplete and
//! exclusive bounds, COUNT), XDEL, XTRIM, XSETID, XREAD (several keys, `$`, BLOCK woken by an
//! XADD from another connection), XINFO STREAM [FULL] and HELP, with Redis's error texts; TYPE,
//! OBJECT ENCODING, MEMORY USAGE, `maxmemory`, WATCH, the `t` notifications, COPY/RENAME/MOVE
//! and the snapshot; consumer groups — XGROUP, XREADGROUP (`>`, history, NOACK, BLOCK woken,
//! timed out and unblocked by a destroyed group or deleted key), XACK, XPENDING, XCLAIM,
//! XAUTOCLAIM, XINFO GROUPS/CONSUMERS, their events and their snapshot — with idle times from
//! the injected clock.
//! Method: a real TCP client on an in-process RESP server (127.0.0.1:0, `ManualClock` at
//! 1 000 000 ms, so auto IDs are predictable, and a blocked XREAD times out when the test moves
//! the clock, never by sleeping); the snapshot through `Cache::open`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::ManualClock;

mod resp_common;

use resp_common::{Conn, bulk, bulks, err, payload};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const SMALLER: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";

fn start_with(clock: Arc<ManualClock>) -> resp_common::Server {
    let cache = Cache::new(CacheConfig::default(), clock);
    let config = RespConfig::from_cache(&cache, None);
    resp_common::serve(cache, config)
}

fn start() -> resp_common::Server {
    start_with(Arc::new(ManualClock::new(1_000_000)))
}

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

/// An entry as XRANGE answers it.
fn entry(id: &str, fields: &[&str]) -> Frame {
    Frame::Array(vec![bulk(id), bulks(fields)])
}

fn ids(reply: &Frame) -> Vec<String> {
    match reply {
        Frame::Array(items) => items
            .iter()
            .map(|e| match e {
                Frame::Array(parts) => match &parts[0] {
                    Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn add_n(c: &mut Conn, key: &str, n: u64) {
    for i in 1..=n {
        let id = format!("{i}-0");
        assert_eq!(c.cmd(&["XADD", key, &id, "f", "v"]), bulk(&id));
    }
}

#[test]
fn xadd_generates_and_checks_ids() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = start_with(clock.clone());
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["XADD", "s", "*", "a", "1"]), bulk("1000000-0"));
    assert_eq!(c.cmd(&["XADD", "s", "*", "b", "2"]), bulk("1000000-1"));
    clock.advance(Duration::from_millis(5));
    assert_eq!(c.cmd(&["XADD", "s", "*", "c", "3"]), bulk("1000005-0"));
    // The clock going back keeps the IDs increasing.
    clock.set_ms(10);
    assert_eq!(c.cmd(&["XADD", "s", "*", "d", "4"]), bulk("1000005-1"));
    assert_eq!(
        c.cmd(&["XADD", "s", "1000005-*", "e", "5"]),
        bulk("1000005-2")
    );
    assert_eq!(
        c.cmd(&["XADD", "s", "2000000-*", "e", "5"]),
        bulk("2000000-0")
    );
    assert_eq!(c.cmd(&["XADD", "s", "2000000-0", "x", "y"]), err(SMALLER));
    assert_eq!(c.cmd(&["XADD", "s", "1-*", "x", "y"]), err(SMALLER));
    assert_eq!(c.cmd(&["XADD", "s", "2000000", "x", "y"]), err(SMALLER));
    assert_eq!(
        c.cmd(&["XADD", "s", "2000001", "x", "y"]),
        bulk("2000001-0")
    );
    assert_eq!(c.cmd(&["XLEN", "s"]), int(7));
    assert_eq!(
        c.cmd(&["XADD", "new", "0-0", "x", "y"]),
        err("ERR The ID specified in XADD must be greater than 0-0")
    );
    assert_eq!(c.cmd(&["EXISTS", "new"]), int(0));
    assert_eq!(c.cmd(&["XADD", "new", "0-*", "x", "y"]), bulk("0-1"));
    for bad in [
        "-",
        "+",
        "1-x",
        "a",
        "1-2-3",
        "18446744073709551616-0",
        "1-*-",
    ] {
        assert_eq!(
            c.cmd(&["XADD", "s", bad, "x", "y"]),
            err(INVALID_ID),
            "{bad}"
        );
    }
    let wrong = err("ERR wrong number of arguments for 'xadd' command");
    assert_eq!(c.cmd(&["XADD", "s", "*", "x"]), wrong);
    assert_eq!(c.cmd(&["XADD", "s", "*", "x", "y", "z"]), wrong);
    assert_eq!(c.cmd(&["XADD", "s", "MAXLEN", "5", "*"]), wrong);
    // NOMKSTREAM: nothing created.
    assert_eq!(
        c.cmd(&["XADD", "none", "NOMKSTREAM", "*", "a", "1"]),
        Frame::Null
    );
    assert_eq!(c.cmd(&["EXISTS", "none"]), int(0));
    assert_eq!(c.cmd(&["TYPE", "s"]), Frame::simple("stream"));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "s"]), bulk("stream"));
    assert_eq!(c.cmd(&["SET", "str", "x"]), Frame::ok());
    let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(c.cmd(&["XADD", "str", "*", "a", "1"]), wrongtype);
    assert_eq!(c.cmd(&["XLEN", "str"]), wrongtype);
    assert_eq!(c.cmd(&["XRANGE", "str", "-", "+"]), wrongtype);
    // The last possible ID exhausts the stream.
    assert_eq!(
        c.cmd(&[
            "XADD",
            "max",
            "18446744073709551615-18446744073709551615",
            "a",
            "1"
        ]),
        bulk("18446744073709551615-18446744073709551615")
    );
    assert_eq!(
        c.cmd(&["XADD", "max", "*", "a", "1"]),
        err("ERR The stream has exhausted the last possible ID, unable to add more items")
    );
}

#[test]
fn xadd_and_xtrim_trim_exactly_or_by_whole_nodes() {
    let s = start();
    let mut c = Conn::open(s.addr);
    add_n(&mut c, "s", 10);
    assert_eq!(
        c.cmd(&["XADD", "s", "MAXLEN", "5", "11-0", "f", "v"]),
        bulk("11-0")
    );
    assert_eq!(c.cmd(&["XLEN", "s"]), int(5));
    assert_eq!(
        c.cmd(&["XADD", "s", "MAXLEN", "=", "3", "*", "f", "v"]),
        bulk("1000000-0")
    );
    assert_eq!(c.cmd(&["XLEN", "s"]), int(3));
    assert_eq!(c.cmd(&["XTRIM", "s", "MAXLEN", "1"]), int(2));
    assert_eq!(c.cmd(&["XTRIM", "missing", "MAXLEN", "1"]), int(0));

    add_n(&mut c, "t", 250);
    // `~` removes only whole nodes (100 entries appended each by default), at most LIMIT
    // entries.
    assert_eq!(c.cmd(&["XTRIM", "t", "MAXLEN", "~", "120"]), int(100));
    assert_eq!(c.cmd(&["XTRIM", "t", "MAXLEN", "~", "120"]), int(0));
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MINID", "~", "201", "LIMIT", "99"]),
        int(0)
    );
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MINID", "~", "201", "LIMIT", "100"]),
        int(100)
    );
    assert_eq!(c.cmd(&["XTRIM", "t", "MINID", "220"]), int(19));
    assert_eq!(
        c.cmd(&["XRANGE", "t", "-", "+", "COUNT", "1"]),
        Frame::Array(vec![entry("220-0", &["f", "v"])])
    );

    let both =
        err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
    assert_eq!(c.cmd(&["XTRIM", "t", "MAXLEN", "1", "MINID", "1"]), both);
    assert_eq!(
        c.cmd(&["XADD", "t", "MINID", "1", "MAXLEN", "1", "*", "f", "v"]),
        both
    );
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MAXLEN", "-1"]),
        err("ERR The MAXLEN argument must be >= 0.")
    );
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MAXLEN", "~", "1", "LIMIT", "-1"]),
        err("ERR The LIMIT argument must be >= 0.")
    );
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MAXLEN", "1", "LIMIT", "10"]),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(
        c.cmd(&["XADD", "t", "LIMIT", "10", "*", "f", "v"]),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(
        c.cmd(&["XTRIM", "t", "LIMIT", "10"]),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(c.cmd(&["XTRIM", "t", "FOO", "10"]), err("ERR syntax error"));
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MAXLEN", "x"]),
        err("ERR value is not an integer or out of range")
    );
    // MAXLEN and LIMIT are bounded by the 64-bit integer Redis reads them as.
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MAXLEN", "9223372036854775807"]),
        int(0)
    );
    assert_eq!(
        c.cmd(&["XTRIM", "t", "MAXLEN", "9223372036854775808"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&[
            "XTRIM",
            "t",
            "MAXLEN",
            "~",
            "0",
            "LIMIT",
            "9223372036854775807"
        ]),
        int(31),
        "the last node goes whole"
    );
    assert_eq!(
        c.cmd(&[
            "XTRIM",
            "t",
            "MAXLEN",
            "~",
            "0",
            "LIMIT",
            "9223372036854775808"
        ]),
        err("ERR value is not an integer or out of range")
    );
}

#[test]
fn xrange_bounds_counts_and_errors() {
    let s = start();
    let mut c = Conn::open(s.addr);
    for id in ["1-1", "1-2", "2-0", "3-5"] {
        assert_eq!(c.cmd(&["XADD", "s", id, "k", id]), bulk(id));
    }
    let all = c.cmd(&["XRANGE", "s", "-", "+"]);
    assert_eq!(ids(&all), ["1-1", "1-2", "2-0", "3-5"]);
    assert_eq!(
        c.cmd(&["XRANGE", "s", "1", "1"]),
        Frame::Array(vec![
            entry("1-1", &["k", "1-1"]),
            entry("1-2", &["k", "1-2"])
        ])
    );
    assert_eq!(
        ids(&c.cmd(&["XRANGE", "s", "(1-1", "(3-5"])),
        ["1-2", "2-0"]
    );
    assert_eq!(
        ids(&c.cmd(&["XREVRANGE", "s", "+", "-", "COUNT", "2"])),
        ["3-5", "2-0"]
    );
    assert_eq!(
        ids(&c.cmd(&["XREVRANGE", "s", "(3-5", "(1-1"])),
        ["2-0", "1-2"]
    );
    assert_eq!(
        c.cmd(&["XRANGE", "s", "-", "+", "COUNT", "0"]),
        Frame::NullArray
    );
    assert_eq!(
        c.cmd(&["XRANGE", "s", "-", "+", "COUNT", "-3"]),
        Frame::NullArray
    );
    assert_eq!(c.cmd(&["XRANGE", "s", "3", "1"]), Frame::Array(vec![]));
    assert_eq!(
        c.cmd(&["XRANGE", "missing", "-", "+"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        c.cmd(&[
            "XRANGE",
            "s",
            "(18446744073709551615-18446744073709551615",
            "+"
        ]),
        err("ERR invalid start ID for the interval")
    );
    assert_eq!(
        c.cmd(&["XRANGE", "s", "-", "(0-0"]),
        err("ERR invalid end ID for the interval")
    );
    assert_eq!(c.cmd(&["XRANGE", "s", "(-", "+"]), err(INVALID_ID));
    assert_eq!(
        c.cmd(&["XRANGE", "s", "-", "+", "COUNT"]),
        err("ERR syntax error")
    );
    assert_eq!(
        ids(&c.cmd(&["XRANGE", "s", "-", "+", "COUNT", "9223372036854775807"])).len(),
        4
    );
    assert_eq!(
        c.cmd(&["XRANGE", "s", "-", "+", "COUNT", "9223372036854775808"]),
        err("ERR value is not an integer or out of range")
    );
}

#[test]
fn xdel_xsetid_and_xinfo_keep_the_bookkeeping() {
    let s = start();
    let mut c = Conn::open(s.addr);
    add_n(&mut c, "s", 3);
    assert_eq!(c.cmd(&["XDEL", "s", "1-0", "3-0", "9-0"]), int(2));
    assert_eq!(c.cmd(&["XDEL", "s", "2-0", "bad"]), err(INVALID_ID));
    assert_eq!(
        c.cmd(&["XLEN", "s"]),
        int(1),
        "an invalid ID deletes nothing"
    );
    assert_eq!(c.cmd(&["XDEL", "missing", "1-0"]), int(0));
    let info = c.cmd(&["XINFO", "STREAM", "s"]);
    assert_eq!(
        info,
        Frame::Array(vec![
            bulk("length"),
            int(1),
            bulk("radix-tree-keys"),
            int(1),
            bulk("radix-tree-nodes"),
            int(2),
            bulk("last-generated-id"),
            bulk("3-0"),
            bulk("max-deleted-entry-id"),
            bulk("3-0"),
            bulk("entries-added"),
            int(3),
            bulk("recorded-first-entry-id"),
            bulk("2-0"),
            bulk("groups"),
            int(0),
            bulk("first-entry"),
            entry("2-0", &["f", "v"]),
            bulk("last-entry"),
            entry("2-0", &["f", "v"]),
        ])
    );
    // The last entry deleted: the stream stays, empty.
    assert_eq!(c.cmd(&["XDEL", "s", "2-0"]), int(1));
    assert_eq!(c.cmd(&["EXISTS", "s"]), int(1));
    assert_eq!(c.cmd(&["XLEN", "s"]), int(0));
    // Auto IDs continue after the last generated one.
    assert_eq!(c.cmd(&["XADD", "s", "3-*", "f", "v"]), bulk("3-1"));

    assert_eq!(
        c.cmd(&[
            "XSETID",
            "s",
            "5-0",
            "ENTRIESADDED",
            "9",
            "MAXDELETEDID",
            "4-0"
        ]),
        Frame::ok()
    );
    let full = c.cmd(&["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]);
    assert_eq!(
        full,
        Frame::Array(vec![
            bulk("length"),
            int(1),
            bulk("radix-tree-keys"),
            int(1),
            bulk("radix-tree-nodes"),
            int(2),
            bulk("last-generated-id"),
            bulk("5-0"),
            bulk("max-deleted-entry-id"),
            bulk("4-0"),
            bulk("entries-added"),
            int(9),
            bulk("recorded-first-entry-id"),
            bulk("3-1"),
            bulk("entries"),
            Frame::Array(vec![entry("3-1", &["f", "v"])]),
            bulk("groups"),
            Frame::Array(vec![]),
        ])
    );
    assert_eq!(
        c.cmd(&["XSETID", "s", "3-0"]),
        err("ERR The ID specified in XSETID is smaller than the target stream top item")
    );
    assert_eq!(
        c.cmd(&["XSETID", "s", "6-0", "ENTRIESADDED", "0"]),
        err("ERR The entries_added specified in XSETID is smaller than the target stream length")
    );
    assert_eq!(
        c.cmd(&["XSETID", "s", "6-0", "ENTRIESADDED", "-1"]),
        err("ERR entries_added must be positive")
    );
    assert_eq!(
        c.cmd(&["XSETID", "s", "6-0", "MAXDELETEDID", "7-0"]),
        err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
    );
    assert_eq!(c.cmd(&["XSETID", "missing", "1-0"]), err("ERR no such key"));
    assert_eq!(
        c.cmd(&["XSETID", "s", "6-0", "FOO"]),
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["XADD", "s", "5-0", "f", "v"]), err(SMALLER));

    assert_eq!(
        c.cmd(&["XINFO", "STREAM", "missing"]),
        err("ERR no such key")
    );
    assert_eq!(
        c.cmd(&["XINFO", "STREAM", "s", "FULL", "COUNT"]),
        err("ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.")
    );
    assert_eq!(
        c.cmd(&["XINFO", "FOO", "s"]),
        err("ERR unknown subcommand 'FOO'. Try XINFO HELP.")
    );
    assert_eq!(
        c.cmd(&["XINFO", "STREAM"]),
        err("ERR wrong number of arguments for 'xinfo|stream' command")
    );
    assert_eq!(c.cmd(&["XINFO", "GROUPS", "s"]), Frame::Array(vec![]));
    match c.cmd(&["XINFO", "HELP"]) {
        Frame::Array(lines) => assert_eq!(lines.len(), 9),
        other => panic!("{other:?}"),
    }
}

/// Waits (bounded) until one client is blocked.
fn wait_blocked(c: &mut Conn) {
    for _ in 0..1000 {
        if let Frame::Bulk(info) = c.cmd(&["INFO", "clients"])
            && String::from_utf8_lossy(&info).contains("blocked_clients:1")
        {
            return;
        }
        std::thread::yield_now();
    }
    panic!("the XREAD never blocked");
}

#[test]
fn xread_reads_several_streams_and_blocks_until_an_xadd() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = start_with(clock.clone());
    let mut c = Conn::open(s.addr);
    add_n(&mut c, "a", 3);
    add_n(&mut c, "b", 1);
    assert_eq!(
        c.cmd(&[
            "XREAD", "COUNT", "2", "STREAMS", "a", "b", "missing", "1-0", "0", "0"
        ]),
        Frame::Array(vec![
            Frame::Array(vec![
                bulk("a"),
                Frame::Array(vec![entry("2-0", &["f", "v"]), entry("3-0", &["f", "v"])])
            ]),
            Frame::Array(vec![
                bulk("b"),
                Frame::Array(vec![entry("1-0", &["f", "v"])])
            ]),
        ])
    );
    assert_eq!(c.cmd(&["XREAD", "STREAMS", "a", "$"]), Frame::NullArray);
    assert_eq!(c.cmd(&["XREAD", "STREAMS", "a", "3-0"]), Frame::NullArray);
    assert_eq!(
        c.cmd(&["XREAD", "STREAMS", "a", "b", "0"]),
        err(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
        )
    );
    assert_eq!(
        c.cmd(&["XREAD", "COUNT", "1", "a", "0"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["XREAD", "STREAMS", "a", ">"]),
        err(
            "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
        )
    );
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "-1", "STREAMS", "a", "$"]),
        err("ERR timeout is negative")
    );
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "x", "STREAMS", "a", "$"]),
        err("ERR timeout is not an integer or out of range")
    );

    // BLOCK with `$`: only what arrives after the client blocked.
    let mut waiter = Conn::open(s.addr);
    waiter.send(&["XREAD", "BLOCK", "0", "STREAMS", "a", "b", "$", "$"]);
    wait_blocked(&mut c);
    assert_eq!(c.cmd(&["XADD", "b", "7-0", "new", "1"]), bulk("7-0"));
    assert_eq!(
        waiter.reply(),
        Frame::Array(vec![Frame::Array(vec![
            bulk("b"),
            Frame::Array(vec![entry("7-0", &["new", "1"])])
        ])])
    );
    // A blocked read that sees nothing answers a null array at its timeout, reached by moving
    // the injected clock (the 10-minute wait would outlast the client's 10 s read timeout).
    waiter.send(&["XREAD", "BLOCK", "600000", "STREAMS", "a", "$"]);
    wait_blocked(&mut c);
    clock.advance(Duration::from_secs(599));
    assert_eq!(c.cmd(&["XADD", "b", "8-0", "other", "key"]), bulk("8-0"));
    clock.advance(Duration::from_secs(1));
    assert_eq!(waiter.reply(), Frame::NullArray);
    // Inside MULTI a BLOCK does not wait.
    assert_eq!(waiter.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(
        waiter.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "a", "$"]),
        Frame::simple("QUEUED")
    );
    assert_eq!(waiter.cmd(&["EXEC"]), Frame::Array(vec![Frame::NullArray]));
}

#[test]
fn xread_names_at_most_the_key_limit() {
    let s = start();
    let mut c = Conn::open(s.addr);
    let max = streamcache::cache::XREAD_KEYS_MAX;
    assert_eq!(
        c.cmd(&["XGROUP", "CREATE", "k0", "g", "$", "MKSTREAM"]),
        Frame::ok()
    );
    for command in ["XREAD", "XREADGROUP"] {
        for (n, ok) in [(max, true), (max + 1, false)] {
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let mut args = vec![command];
            if command == "XREADGROUP" {
                args.extend(["GROUP", "g", "alice"]);
            }
            args.push("STREAMS");
            args.extend(keys.iter().map(String::as_str));
            args.extend(std::iter::repeat_n("0", n));
            let reply = c.cmd(&args);
            if !ok {
                assert_eq!(
                    reply,
                    err(&format!(
                        "ERR {command} names {n} streams, at most {max} are allowed"
                    ))
                );
            } else if command == "XREAD" {
                assert_eq!(reply, Frame::NullArray);
            } else {
                // Past the limit check: the second key has no group.
                assert!(
                    matches!(&reply, Frame::Error(e) if e.starts_with("NOGROUP")),
                    "{reply:?}"
                );
            }
        }
    }
}

#[test]
fn streams_are_keys_like_the_others() {
    let s = start();
    let mut c = Conn::open(s.addr);
    let mut sub = Conn::open(s.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Et"]),
        Frame::ok()
    );
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    add_n(&mut c, "s", 2);
    c.cmd(&["XADD", "s", "MAXLEN", "1", "3-0", "f", "v"]);
    c.cmd(&["XDEL", "s", "3-0"]);
    c.cmd(&["XTRIM", "s", "MAXLEN", "0"]);
    c.cmd(&["XSETID", "s", "9-0"]);
    let mut events = Vec::new();
    for _ in 0..6 {
        match sub.reply() {
            Frame::Array(m) => events.push(m[2].clone()),
            other => panic!("{other:?}"),
        }
    }
    // XTRIM that removed nothing published nothing.
    let expected: Vec<Frame> = ["xadd", "xadd", "xadd", "xtrim", "xdel", "xsetid"]
        .iter()
        .map(|e| bulk(&format!("__keyevent@0__:{e}")))
        .collect();
    assert_eq!(events, expected);

    // COPY, RENAME and MOVE carry the whole stream, bookkeeping included.
    add_n(&mut c, "src", 2);
    assert_eq!(c.cmd(&["COPY", "src", "dst"]), int(1));
    assert_eq!(c.cmd(&["XADD", "src", "3-0", "f", "v"]), bulk("3-0"));
    assert_eq!(c.cmd(&["XLEN", "dst"]), int(2));
    assert_eq!(c.cmd(&["XADD", "dst", "2-0", "f", "v"]), err(SMALLER));
    assert_eq!(c.cmd(&["RENAME", "dst", "moved"]), Frame::ok());
    assert_eq!(c.cmd(&["MOVE", "moved", "3"]), int(1));
    assert_eq!(c.cmd(&["SELECT", "3"]), Frame::ok());
    assert_eq!(ids(&c.cmd(&["XRANGE", "moved", "-", "+"])), ["1-0", "2-0"]);
    assert_eq!(c.cmd(&["SELECT", "0"]), Frame::ok());

    // WATCH: an XADD from another client fails the transaction.
    let mut other = Conn::open(s.addr);
    assert_eq!(c.cmd(&["WATCH", "src"]), Frame::ok());
    assert_eq!(other.cmd(&["XADD", "src", "4-0", "f", "v"]), bulk("4-0"));
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    c.cmd(&["XLEN", "src"]);
    assert_eq!(c.cmd(&["EXEC"]), Frame::NullArray);

    // Memory is charged and refused over maxmemory as for other writes.
    let usage = |c: &mut Conn| match c.cmd(&["MEMORY", "USAGE", "src"]) {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    let before = usage(&mut c);
    assert_eq!(
        c.cmd(&["XADD", "src", "5-0", "field", "a-longer-value"]),
        bulk("5-0")
    );
    assert!(usage(&mut c) > before);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), Frame::ok());
    assert_eq!(
        c.cmd(&["XADD", "src", "*", "f", "v"]),
        err("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert_eq!(c.cmd(&["XDEL", "src", "5-0"]), int(1));
    assert_eq!(c.cmd(&["XTRIM", "src", "MAXLEN", "0"]), int(4));
}

/// A cache that loads and saves its snapshot in `dir`.
fn open_snapshotting(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Cache {
    Cache::open(
        CacheConfig {
            snapshot: true,
            ..CacheConfig::default()
        },
        clock.clone(),
        dir,
    )
}

/// Runs one command on database 0 of `c`.
fn run(c: &Cache, parts: &[&str]) -> Frame {
    let args: Vec<Bytes> = parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect();
    c.execute(0, &args)
}

#[test]
fn streams_survive_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let open = || open_snapshotting(dir.path(), &clock);
    let c = open();
    run(&c, &["XADD", "s", "1-0", "a", "1", "b", "2"]);
    run(&c, &["XADD", "s", "2-0", "c", "3"]);
    run(&c, &["XADD", "s", "3-0", "d", "4"]);
    run(&c, &["XDEL", "s", "1-0"]);
    run(&c, &["XSETID", "s", "9-0", "ENTRIESADDED", "12"]);
    run(&c, &["XADD", "e", "1-0", "a", "1"]);
    run(&c, &["XDEL", "e", "1-0"]);
    let info = run(&c, &["XINFO", "STREAM", "s"]);
    let empty = run(&c, &["XINFO", "STREAM", "e"]);
    c.save_snapshot().unwrap();
    drop(c);
    let c = open();
    assert_eq!(run(&c, &["XINFO", "STREAM", "s"]), info);
    assert_eq!(run(&c, &["XINFO", "STREAM", "e"]), empty);
    assert_eq!(
        run(&c, &["XRANGE", "s", "-", "+"]),
        Frame::Array(vec![entry("2-0", &["c", "3"]), entry("3-0", &["d", "4"])])
    );
}

#[test]
fn consumer_groups_deliver_track_and_acknowledge() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = start_with(clock.clone());
    let mut c = Conn::open(s.addr);
    assert_eq!(
        c.cmd(&["XGROUP", "CREATE", "s", "g", "$"]),
        err(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
        )
    );
    assert_eq!(
        c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        Frame::ok()
    );
    assert_eq!(
        c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]),
        err("BUSYGROUP Consumer Group name already exists")
    );
    assert_eq!(
        c.cmd(&["XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", "-2"]),
        err("ERR value for ENTRIESREAD must be positive or -1")
    );
    assert_eq!(
        c.cmd(&["XGROUP", "SETID", "s", "nope", "0"]),
        err("NOGROUP No such consumer group 'nope' for key name 's'")
    );
    add_n(&mut c, "s", 3);
    let read = |c: &mut Conn, who: &str, id: &str| {
        c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            who,
            "COUNT",
            "2",
            "STREAMS",
            "s",
            id,
        ])
    };
    assert_eq!(
        read(&mut c, "alice", ">"),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            Frame::Array(vec![entry("1-0", &["f", "v"]), entry("2-0", &["f", "v"])])
        ])])
    );
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "NOACK",
            "STREAMS",
            "s",
            ">"
        ]),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            Frame::Array(vec![entry("3-0", &["f", "v"])])
        ])])
    );
    assert_eq!(read(&mut c, "alice", ">"), Frame::NullArray);
    // History: alice's pending entries above the ID.
    assert_eq!(
        ids(&match read(&mut c, "alice", "0") {
            Frame::Array(mut v) => match v.remove(0) {
                Frame::Array(mut kv) => kv.remove(1),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }),
        ["1-0", "2-0"]
    );
    assert_eq!(
        read(&mut c, "alice", "1-0"),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            Frame::Array(vec![entry("2-0", &["f", "v"])])
        ])])
    );
    assert_eq!(
        c.cmd(&["XPENDING", "s", "g"]),
        Frame::Array(vec![
            int(2),
            bulk("1-0"),
            bulk("2-0"),
            Frame::Array(vec![bulks(&["alice", "2"])]),
        ])
    );
    clock.advance(Duration::from_millis(50));
    // 1-0 was redelivered by the history read of 0 (count 2), 2-0 twice more (count 3).
    assert_eq!(
        c.cmd(&["XPENDING", "s", "g", "IDLE", "10", "-", "+", "10"]),
        Frame::Array(vec![
            Frame::Array(vec![bulk("1-0"), bulk("alice"), int(50), int(2)]),
            Frame::Array(vec![bulk("2-0"), bulk("alice"), int(50), int(3)]),
        ])
    );
    assert_eq!(
        c.cmd(&["XPENDING", "s", "g", "-", "+", "10", "bob"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        c.cmd(&["XPENDING", "s", "nope"]),
        err("NOGROUP No such key 's' or consumer group 'nope'")
    );
    assert_eq!(c.cmd(&["XACK", "s", "g", "1-0", "9-0"]), int(1));
    assert_eq!(c.cmd(&["XACK", "s", "g", "bad"]), err(INVALID_ID));
    assert_eq!(c.cmd(&["XACK", "s", "nope", "1-0"]), int(0));
    // A deleted pending entry reads back as its ID with a null array.
    assert_eq!(c.cmd(&["XDEL", "s", "2-0"]), int(1));
    assert_eq!(
        read(&mut c, "alice", "0"),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            Frame::Array(vec![Frame::Array(vec![bulk("2-0"), Frame::NullArray])])
        ])])
    );
    assert_eq!(
        c.cmd(&["XINFO", "GROUPS", "s"]),
        Frame::Array(vec![Frame::Array(vec![
            bulk("name"),
            bulk("g"),
            bulk("consumers"),
            int(2),
            bulk("pending"),
            int(1),
            bulk("last-delivered-id"),
            bulk("3-0"),
            bulk("entries-read"),
            int(3),
            bulk("lag"),
            int(0),
        ])])
    );
    clock.advance(Duration::from_millis(7));
    assert_eq!(
        c.cmd(&["XINFO", "CONSUMERS", "s", "g"]),
        Frame::Array(vec![
            Frame::Array(vec![
                bulk("name"),
                bulk("alice"),
                bulk("pending"),
                int(1),
                bulk("idle"),
                int(7)
            ]),
            Frame::Array(vec![
                bulk("name"),
                bulk("bob"),
                bulk("pending"),
                int(0),
                bulk("idle"),
                int(57)
            ]),
        ])
    );
    assert_eq!(
        c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "carol"]),
        int(1)
    );
    assert_eq!(
        c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "carol"]),
        int(0)
    );
    assert_eq!(c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "alice"]), int(1));
    assert_eq!(
        c.cmd(&["XPENDING", "s", "g"]),
        Frame::Array(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray])
    );
    // SETID back to the start: entries are delivered again; lag unknown after a deletion.
    assert_eq!(c.cmd(&["XGROUP", "SETID", "s", "g", "0"]), Frame::ok());
    assert_eq!(
        ids(&match read(&mut c, "dave", ">") {
            Frame::Array(mut v) => match v.remove(0) {
                Frame::Array(mut kv) => kv.remove(1),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }),
        ["1-0", "3-0"]
    );
    assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), int(1));
    assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), int(0));
    assert_eq!(
        c.cmd(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]),
        err("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option")
    );
    assert_eq!(
        c.cmd(&["XREADGROUP", "COUNT", "1", "NOACK", "STREAMS", "s", ">"]),
        err("ERR Missing GROUP option for XREADGROUP")
    );
    assert_eq!(
        c.cmd(&["XGROUP", "FOO", "s"]),
        err("ERR unknown subcommand 'FOO'. Try XGROUP HELP.")
    );
    assert_eq!(
        c.cmd(&["XGROUP", "HELP", "x"]),
        err("ERR wrong number of arguments for 'xgroup|help' command")
    );
}

#[test]
fn xclaim_and_xautoclaim_move_idle_entries() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = start_with(clock.clone());
    let mut c = Conn::open(s.addr);
    add_n(&mut c, "s", 4);
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]), Frame::ok());
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]);
    clock.advance(Duration::from_millis(1000));
    // Not idle long enough: nothing claimed.
    assert_eq!(
        c.cmd(&["XCLAIM", "s", "g", "bob", "5000", "1-0"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        c.cmd(&["XCLAIM", "s", "g", "bob", "500", "1-0", "2-0"]),
        Frame::Array(vec![entry("1-0", &["f", "v"]), entry("2-0", &["f", "v"])])
    );
    assert_eq!(
        c.cmd(&[
            "XCLAIM",
            "s",
            "g",
            "bob",
            "0",
            "3-0",
            "JUSTID",
            "RETRYCOUNT",
            "7",
            "IDLE",
            "20"
        ]),
        bulks(&["3-0"])
    );
    assert_eq!(
        c.cmd(&["XPENDING", "s", "g", "-", "+", "10"]),
        Frame::Array(vec![
            Frame::Array(vec![bulk("1-0"), bulk("bob"), int(0), int(2)]),
            Frame::Array(vec![bulk("2-0"), bulk("bob"), int(0), int(2)]),
            Frame::Array(vec![bulk("3-0"), bulk("bob"), int(20), int(7)]),
            Frame::Array(vec![bulk("4-0"), bulk("alice"), int(1000), int(1)]),
        ])
    );
    assert_eq!(
        c.cmd(&["XCLAIM", "s", "g", "bob", "0", "1-0", "BOGUS"]),
        err("ERR Unrecognized XCLAIM option 'BOGUS'")
    );
    assert_eq!(
        c.cmd(&["XCLAIM", "s", "g", "bob", "x", "1-0"]),
        err("ERR Invalid min-idle-time argument for XCLAIM")
    );
    assert_eq!(
        c.cmd(&["XCLAIM", "s", "nope", "bob", "0", "1-0"]),
        err("NOGROUP No such key 's' or consumer group 'nope'")
    );
    // FORCE makes a pending entry of one never delivered; LASTID moves the group on.
    c.cmd(&["XADD", "s", "5-0", "f", "v"]);
    assert_eq!(
        c.cmd(&[
            "XCLAIM", "s", "g", "carol", "0", "5-0", "FORCE", "JUSTID", "LASTID", "5-0"
        ]),
        bulks(&["5-0"])
    );
    assert_eq!(
        c.cmd(&["XREADGROUP", "GROUP", "g", "x", "STREAMS", "s", ">"]),
        Frame::NullArray
    );
    // XAUTOCLAIM: deleted pending entries are dropped and listed; the cursor is the next ID.
    assert_eq!(c.cmd(&["XDEL", "s", "2-0"]), int(1));
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        c.cmd(&["XAUTOCLAIM", "s", "g", "dave", "50", "0", "COUNT", "2"]),
        Frame::Array(vec![
            bulk("3-0"),
            Frame::Array(vec![entry("1-0", &["f", "v"])]),
            bulks(&["2-0"]),
        ])
    );
    assert_eq!(
        c.cmd(&["XAUTOCLAIM", "s", "g", "dave", "0", "(1-0", "JUSTID"]),
        Frame::Array(vec![
            bulk("0-0"),
            bulks(&["3-0", "4-0", "5-0"]),
            Frame::Array(vec![])
        ])
    );
    let max = (i64::MAX / 16).to_string();
    let over = (i64::MAX / 16 + 1).to_string();
    assert_eq!(
        c.cmd(&[
            "XAUTOCLAIM",
            "s",
            "g",
            "dave",
            "0",
            "0",
            "COUNT",
            &max,
            "JUSTID"
        ]),
        Frame::Array(vec![
            bulk("0-0"),
            bulks(&["1-0", "3-0", "4-0", "5-0"]),
            Frame::Array(vec![])
        ])
    );
    assert_eq!(
        c.cmd(&["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", &over]),
        err("ERR COUNT must be > 0")
    );
    assert_eq!(
        c.cmd(&["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "0"]),
        err("ERR COUNT must be > 0")
    );
}

#[test]
fn blocked_xreadgroup_is_woken_times_out_and_sees_its_group_go() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = start_with(clock.clone());
    let mut c = Conn::open(s.addr);
    assert_eq!(
        c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        Frame::ok()
    );
    let mut waiter = Conn::open(s.addr);
    waiter.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "w",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut c);
    assert_eq!(c.cmd(&["XADD", "s", "1-0", "f", "v"]), bulk("1-0"));
    assert_eq!(
        waiter.reply(),
        Frame::Array(vec![Frame::Array(vec![
            bulk("s"),
            Frame::Array(vec![entry("1-0", &["f", "v"])])
        ])])
    );
    waiter.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "w",
        "BLOCK",
        "600000",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut c);
    clock.advance(Duration::from_secs(600));
    assert_eq!(waiter.reply(), Frame::NullArray);
    waiter.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "w",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut c);
    assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), int(1));
    assert_eq!(
        waiter.reply(),
        err("NOGROUP the consumer group this client was blocked on no longer exists")
    );
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "s", "g", "$"]), Frame::ok());
    waiter.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "w",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut c);
    assert_eq!(c.cmd(&["DEL", "s"]), int(1));
    assert_eq!(
        waiter.reply(),
        err("UNBLOCKED the stream key no longer exists")
    );
}

#[test]
fn consumer_groups_survive_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let open = || open_snapshotting(dir.path(), &clock);
    let c = open();
    run(&c, &["XADD", "s", "1-0", "a", "1"]);
    run(&c, &["XADD", "s", "2-0", "b", "2"]);
    run(&c, &["XGROUP", "CREATE", "s", "g", "0"]);
    run(&c, &["XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "2"]);
    run(
        &c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    clock.advance(Duration::from_millis(5));
    run(
        &c,
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
    );
    run(&c, &["XGROUP", "CREATECONSUMER", "s", "h", "idle"]);
    let full = run(&c, &["XINFO", "STREAM", "s", "FULL"]);
    let pending = run(&c, &["XPENDING", "s", "g", "-", "+", "10"]);
    c.save_snapshot().unwrap();
    drop(c);
    let c = open();
    assert_eq!(run(&c, &["XINFO", "STREAM", "s", "FULL"]), full);
    assert_eq!(run(&c, &["XPENDING", "s", "g", "-", "+", "10"]), pending);
    assert!(matches!(&full, Frame::Map(m) if m.len() == 9), "{full:?}");
}

#[test]
fn consumer_group_commands_publish_redis_events() {
    let s = start();
    let mut c = Conn::open(s.addr);
    let mut sub = Conn::open(s.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Et"]),
        Frame::ok()
    );
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "Bob"]);
    c.cmd(&["XADD", "s", "1-0", "f", "v"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "Alice", "STREAMS", "s", ">"]);
    c.cmd(&["XCLAIM", "s", "g", "Mike", "0", "1-0", "FORCE"]);
    c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "Lee"]);
    c.cmd(&["XAUTOCLAIM", "s", "g", "Bob", "0", "1-0"]);
    c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "Bob"]);
    c.cmd(&["XGROUP", "SETID", "s", "g", "0"]);
    c.cmd(&["XGROUP", "DESTROY", "s", "g"]);
    let expected = [
        "xgroup-create",
        "xgroup-createconsumer",
        "xadd",
        "xgroup-createconsumer",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
        "xgroup-setid",
        "xgroup-destroy",
    ];
    for e in expected {
        match sub.reply() {
            Frame::Array(m) => assert_eq!(m[2], bulk(&format!("__keyevent@0__:{e}"))),
            other => panic!("{other:?}"),
        }
    }
}

/// The value under `name` in a RESP2 reply of name/value pairs.
fn lookup(reply: &Frame, name: &str) -> Option<Frame> {
    match reply {
        Frame::Array(items) => items
            .chunks(2)
            .find(|p| p[0] == bulk(name))
            .map(|p| p[1].clone()),
        other => panic!("{other:?}"),
    }
}

fn dump(c: &mut Conn, key: &str) -> Vec<u8> {
    match c.cmd(&["DUMP", key]) {
        Frame::Bulk(b) => b.to_vec(),
        other => panic!("DUMP {key}: {other:?}"),
    }
}

fn restore(c: &mut Conn, key: &str, payload: &[u8]) -> Frame {
    c.raw(&[b"RESTORE", key.as_bytes(), b"0", payload])
}

#[test]
fn dump_and_restore_carry_streams_with_their_groups() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = start_with(clock.clone());
    let mut c = Conn::open(s.addr);
    // 250 entries in three nodes, some with their own fields, a few deleted, one node's head
    // trimmed inside it; two groups, one with pending entries of two consumers.
    for i in 1..=250u64 {
        let id = format!("{i}-{}", i % 3);
        let reply = if i % 7 == 0 {
            c.cmd(&["XADD", "s", &id, "other", &i.to_string(), "x", "-12"])
        } else {
            c.cmd(&[
                "XADD",
                "s",
                &id,
                "f",
                &format!("value-{i}"),
                "n",
                &i.to_string(),
            ])
        };
        assert_eq!(reply, bulk(&id));
    }
    for id in ["5-2", "101-2", "250-1"] {
        assert_eq!(c.cmd(&["XDEL", "s", id]), int(1));
    }
    assert_eq!(c.cmd(&["XTRIM", "s", "MAXLEN", "240"]), int(7));
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]), Frame::ok());
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "s", "h", "$"]), Frame::ok());
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "3",
        "STREAMS",
        "s",
        ">",
    ]);
    clock.advance(Duration::from_millis(40));
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "COUNT",
        "2",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&["XACK", "s", "g", "11-2"]);
    assert_eq!(
        c.cmd(&["XGROUP", "CREATECONSUMER", "s", "h", "idle"]),
        int(1)
    );

    let payload = dump(&mut c, "s");
    assert_eq!(payload.first(), Some(&19), "RDB_TYPE_STREAM_LISTPACKS_2");
    assert_eq!(restore(&mut c, "copy", &payload), Frame::ok());
    for probe in [
        vec!["XINFO", "STREAM", "KEY", "FULL"],
        vec!["XINFO", "STREAM", "KEY"],
        vec!["XRANGE", "KEY", "-", "+"],
        vec!["XPENDING", "KEY", "g", "-", "+", "10"],
        vec!["XINFO", "GROUPS", "KEY"],
    ] {
        let ask = |c: &mut Conn, key: &str| {
            let args: Vec<&str> = probe
                .iter()
                .map(|a| if *a == "KEY" { key } else { a })
                .collect();
            c.cmd(&args)
        };
        let want = ask(&mut c, "s");
        assert!(!matches!(want, Frame::Error(_)), "{want:?}");
        assert_eq!(ask(&mut c, "copy"), want, "{probe:?}");
    }
    // The copy goes on as the original: the next ID, node filling, trims, group reads.
    for key in ["s", "copy"] {
        assert_eq!(c.cmd(&["XADD", key, "*", "f", "v"]), bulk("1000040-0"));
        assert_eq!(c.cmd(&["XTRIM", key, "MAXLEN", "~", "100"]), int(92));
        c.cmd(&["XREADGROUP", "GROUP", "h", "idle", "STREAMS", key, ">"]);
    }
    assert_eq!(
        c.cmd(&["XINFO", "STREAM", "copy", "FULL"]),
        c.cmd(&["XINFO", "STREAM", "s", "FULL"])
    );
    // What was restored dumps the same bytes again.
    let copied = dump(&mut c, "copy");
    assert_eq!(restore(&mut c, "again", &copied), Frame::ok());
    assert_eq!(dump(&mut c, "again"), dump(&mut c, "copy"));

    // An empty stream with no groups stays a key.
    c.cmd(&["XADD", "e", "7-0", "f", "v"]);
    c.cmd(&["XDEL", "e", "7-0"]);
    let empty = dump(&mut c, "e");
    assert_eq!(restore(&mut c, "e2", &empty), Frame::ok());
    assert_eq!(
        c.cmd(&["XINFO", "STREAM", "e2"]),
        c.cmd(&["XINFO", "STREAM", "e"])
    );
}

/// A stream DUMPed by Redis 5 (`RDB_TYPE_STREAM_LISTPACKS`, no 7.0 metadata), from Redis's own
/// `unit/type/stream-cgroups` test: the metadata is derived as Redis 7.0 derives it.
#[test]
fn restore_reads_a_stream_dumped_by_redis_5() {
    let legacy = b"\x0F\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\xC3\x40\x4A\x40\x57\x16\x57\x00\x00\x00\x23\x00\x02\x01\x04\x01\x01\x01\x84\x64\x61\x74\x61\x05\x00\x01\x03\x01\x00\x20\x01\x03\x81\x61\x02\x04\x20\x0A\x00\x01\x40\x0A\x00\x62\x60\x0A\x00\x02\x40\x0A\x00\x63\x60\x0A\x40\x22\x01\x81\x64\x20\x0A\x40\x39\x20\x0A\x00\x65\x60\x0A\x00\x05\x40\x0A\x00\x66\x20\x0A\x00\xFF\x02\x06\x00\x02\x02\x67\x31\x05\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x01\x03\x63\x31\x31\x3E\xF7\x83\x43\x7A\x01\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x02\x67\x32\x00\x00\x00\x00\x09\x00\x3D\x52\xEF\x68\x67\x52\x1D\xFA";
    let s = start();
    let mut c = Conn::open(s.addr);
    assert_eq!(restore(&mut c, "x", legacy), Frame::ok());
    // XADD 1..6, XDEL 3, XTRIM MAXLEN = 2: 5-0 and 6-0 are left.
    assert_eq!(
        c.cmd(&["XRANGE", "x", "-", "+"]),
        Frame::Array(vec![
            entry("5-0", &["data", "e"]),
            entry("6-0", &["data", "f"])
        ])
    );
    let info = c.cmd(&["XINFO", "STREAM", "x", "FULL"]);
    let field = |name: &str| lookup(&info, name).unwrap();
    assert_eq!(field("max-deleted-entry-id"), bulk("0-0"));
    assert_eq!(field("entries-added"), int(2));
    assert_eq!(field("last-generated-id"), bulk("6-0"));
    assert_eq!(field("recorded-first-entry-id"), bulk("5-0"));
    // g1 read 1, 2, 4 and 5 (c11 holds them pending): entries-read 1, lag 1; g2 read none.
    let groups = c.cmd(&["XINFO", "GROUPS", "x"]);
    let Frame::Array(groups) = groups else {
        panic!("{groups:?}")
    };
    let group_field = lookup;
    assert_eq!(group_field(&groups[0], "entries-read"), Some(int(1)));
    assert_eq!(group_field(&groups[0], "lag"), Some(int(1)));
    assert_eq!(group_field(&groups[0], "pending"), Some(int(4)));
    assert_eq!(group_field(&groups[1], "entries-read"), Some(int(0)));
    assert_eq!(group_field(&groups[1], "lag"), Some(int(2)));
    assert_eq!(
        ids(&c.cmd(&["XPENDING", "x", "g1", "-", "+", "10", "c11"])),
        ["1-0", "2-0", "4-0", "5-0"]
    );
}

#[test]
fn restore_refuses_inconsistent_streams_and_changes_nothing() {
    let s = start();
    let mut c = Conn::open(s.addr);
    c.cmd(&["XADD", "s", "1-0", "f", "v"]);
    c.cmd(&["XADD", "s", "2-0", "f", "w"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]);
    let good = dump(&mut c, "s");
    let body = &good[..good.len() - 10];
    assert_eq!(restore(&mut c, "ok", &payload(body, 10)), Frame::ok());
    // The tail of the body: ... group "g", last ID 2-0, entries read 2, PEL of 2 (each 16 + 8
    // + 1 bytes), 1 consumer "alice", seen time, its PEL of 2 raw IDs.
    let consumer_pel_at = body.len() - 2 * 16 - 1;
    assert_eq!(body[consumer_pel_at], 2);
    let bad = "ERR Bad data format";
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // The consumer owns an ID the group's PEL does not have.
    let mut b = body.to_vec();
    b[consumer_pel_at + 16] = 9;
    cases.push(("consumer entry not in the group PEL", b));
    // The consumer owns only one of the two pending entries.
    let mut b = body[..body.len() - 16].to_vec();
    b[consumer_pel_at] = 1;
    cases.push(("group PEL entry without a consumer", b));
    // The stated length differs from the entries.
    let length_at = body.iter().rposition(|&x| x == 0xFF).unwrap() + 1;
    assert_eq!(body[length_at], 2, "the length follows the node's listpack");
    let mut b = body.to_vec();
    b[length_at] = 3;
    cases.push(("length past the entries", b));
    // The last ID below the last entry.
    let mut b = body.to_vec();
    b[length_at + 1] = 1;
    cases.push(("last ID below an entry", b));
    cases.push(("truncated", body[..body.len() - 3].to_vec()));
    cases.push(("node key not 16 bytes", {
        let mut b = body.to_vec();
        b[2] = 15;
        b
    }));
    for (what, b) in cases {
        assert_eq!(restore(&mut c, "new", &payload(&b, 10)), err(bad), "{what}");
        assert_eq!(c.cmd(&["EXISTS", "new"]), int(0), "{what}");
    }
}

#[test]
fn consumer_groups_are_charged_to_the_key() {
    let s = start();
    let mut c = Conn::open(s.addr);
    let usage = |c: &mut Conn| match c.cmd(&["MEMORY", "USAGE", "s"]) {
        Frame::Integer(n) => n,
        other => panic!("{other:?}"),
    };
    add_n(&mut c, "s", 1000);
    let bare = usage(&mut c);
    assert_eq!(c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]), Frame::ok());
    let grouped = usage(&mut c);
    assert!(grouped > bare, "{grouped} vs {bare}");
    // 1000 pending entries cost at least their IDs and bookkeeping.
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]);
    let pending = usage(&mut c);
    assert!(pending >= grouped + 1000 * 64, "{pending} vs {grouped}");
    let mut ack = vec!["XACK", "s", "g"];
    let ids: Vec<String> = (1..=1000).map(|i| format!("{i}-0")).collect();
    ack.extend(ids.iter().map(String::as_str));
    assert_eq!(c.cmd(&ack), int(1000));
    assert_eq!(c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "alice"]), int(0));
    assert_eq!(usage(&mut c), grouped);
    assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), int(1));
    assert_eq!(usage(&mut c), bare);
}
