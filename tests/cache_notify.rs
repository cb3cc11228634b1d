//! Capability: keyspace notifications over pub/sub (`notify-keyspace-events`), as Redis 7.0
//! publishes them: for each write, the events of its data type's class on
//! `__keyspace@<db>__:<key>` (message: event) and `__keyevent@<db>__:<event>` (message: key),
//! in Redis's order and only when something changed; expired and evicted keys; Redis's flag
//! letters for CONFIG SET/GET; nothing at all when disabled (the default).
//! Method: a real TCP client PSUBSCRIBEs `__key*__:*`; another runs commands, then publishes a
//! sentinel on a matching channel, so the subscriber reads exactly what the commands published.
//! Time is a `ManualClock`; waits are bounded socket timeouts, never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use streamcache::cache::{Cache, CacheConfig, RespConfig};
use streamcache::clock::ManualClock;

const SENTINEL: &str = "__keyevent@0__:end-of-test";

mod resp_common;

struct Server {
    resp: resp_common::Server,
    cache: Cache,
    clock: Arc<ManualClock>,
}

fn start() -> Server {
    let clock = ManualClock::shared(1_000_000);
    let cache = Cache::new(CacheConfig::default(), clock.clone());
    let config = RespConfig::from_cache(&cache, None);
    Server {
        resp: resp_common::serve(cache.clone(), config),
        cache,
        clock,
    }
}

fn client(s: &Server) -> redis::Connection {
    let c = redis::Client::open(format!("redis://{}/", s.resp.addr)).unwrap();
    let con = c
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    con
}

fn run(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args.first().unwrap());
    for a in args.iter().skip(1) {
        cmd.arg(*a);
    }
    cmd.query(con).unwrap()
}

/// A subscriber to every keyspace channel and a client to write with.
struct Watcher {
    sub: redis::PubSub<'static>,
    con: redis::Connection,
}

/// A pattern subscription to every keyspace channel (dropping a `PubSub` unsubscribes, so its
/// connection lives for the rest of the test).
fn subscriber(s: &Server) -> redis::PubSub<'static> {
    let mut sub = Box::leak(Box::new(client(s))).as_pubsub();
    sub.psubscribe("__key*__:*").unwrap();
    sub
}

impl Watcher {
    fn new(s: &Server, flags: &str) -> Self {
        let mut con = client(s);
        run(
            &mut con,
            &["CONFIG", "SET", "notify-keyspace-events", flags],
        );
        Self {
            sub: subscriber(s),
            con,
        }
    }

    fn run(&mut self, args: &[&str]) -> redis::Value {
        run(&mut self.con, args)
    }

    /// Every (channel, message) published since the last call, in order.
    fn published(&mut self) -> Vec<(String, String)> {
        run(&mut self.con, &["PUBLISH", SENTINEL, "end"]);
        let mut out = Vec::new();
        loop {
            let m = self.sub.get_message().unwrap();
            let channel = m.get_channel_name().to_owned();
            if channel == SENTINEL {
                return out;
            }
            out.push((channel, m.get_payload::<String>().unwrap()));
        }
    }
}

/// The messages Redis publishes with K and E set for `events` ((db, key, event), in order):
/// the keyspace message, then the keyevent message, of each.
fn expect(events: &[(u8, &str, &str)]) -> Vec<(String, String)> {
    events
        .iter()
        .flat_map(|(db, key, event)| {
            [
                (format!("__keyspace@{db}__:{key}"), (*event).to_owned()),
                (format!("__keyevent@{db}__:{event}"), (*key).to_owned()),
            ]
        })
        .collect()
}

#[test]
fn string_commands_publish_redis_events() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    for cmd in [
        &["SET", "a", "1"][..],
        &["SET", "a", "2", "EX", "100"],
        &["SETNX", "a", "3"],
        &["SET", "a", "4", "NX"],
        &["INCR", "n"],
        &["DECRBY", "n", "3"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["APPEND", "a", "x"],
        &["SETRANGE", "a", "0", "z"],
        &["SETRANGE", "a", "0", ""],
        &["MSET", "m1", "1", "m2", "2"],
        &["GET", "a"],
        &["GETDEL", "a"],
        &["GETDEL", "a"],
        &["SETEX", "e", "100", "v"],
        &["GETEX", "e", "PERSIST"],
        &["GETEX", "e", "PERSIST"],
    ] {
        w.run(cmd);
    }
    assert_eq!(
        w.published(),
        expect(&[
            (0, "a", "set"),
            (0, "a", "set"),
            (0, "a", "expire"),
            (0, "n", "incrby"),
            (0, "n", "incrby"),
            (0, "f", "incrbyfloat"),
            (0, "a", "append"),
            (0, "a", "setrange"),
            (0, "m1", "set"),
            (0, "m2", "set"),
            (0, "a", "del"),
            (0, "e", "set"),
            (0, "e", "expire"),
            (0, "e", "persist"),
        ])
    );
}

#[test]
fn generic_commands_publish_redis_events() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    for cmd in [
        &["SET", "k", "v"][..],
        &["EXPIRE", "k", "100"],
        &["PERSIST", "k"],
        &["PERSIST", "k"],
        &["EXPIRE", "nosuch", "100"],
        &["RENAME", "k", "k2"],
        &["COPY", "k2", "k3"],
        &["MOVE", "k3", "1"],
        &["DEL", "k2", "nosuch"],
        &["SET", "p", "v"],
        &["PEXPIREAT", "p", "1"],
        &["SET", "q", "v", "PXAT", "1"],
    ] {
        w.run(cmd);
    }
    assert_eq!(
        w.published(),
        expect(&[
            (0, "k", "set"),
            (0, "k", "expire"),
            (0, "k", "persist"),
            (0, "k", "rename_from"),
            (0, "k2", "rename_to"),
            (0, "k3", "copy_to"),
            (0, "k3", "move_from"),
            (1, "k3", "move_to"),
            (0, "k2", "del"),
            (0, "p", "set"),
            (0, "p", "del"),
            // SET with a deadline already past: Redis 7.0 stores the key and expires it.
            (0, "q", "set"),
            (0, "q", "expire"),
            (0, "q", "expired"),
        ])
    );
}

#[test]
fn list_commands_publish_redis_events() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    for cmd in [
        &["RPUSH", "l", "a", "b", "c"][..],
        &["LPUSH", "l", "z"],
        &["LPUSHX", "nosuch", "z"],
        &["LPOP", "l"],
        &["RPOP", "l", "2"],
        &["LSET", "l", "0", "q"],
        &["LINSERT", "l", "BEFORE", "q", "p"],
        &["LINSERT", "l", "BEFORE", "nosuch", "x"],
        &["LREM", "l", "0", "nosuch"],
        &["LREM", "l", "0", "p"],
        &["LMOVE", "l", "m", "LEFT", "RIGHT"],
        &["RPUSH", "m", "r"],
        &["RPOPLPUSH", "m", "m"],
        &["LTRIM", "m", "1", "0"],
    ] {
        w.run(cmd);
    }
    assert_eq!(
        w.published(),
        expect(&[
            (0, "l", "rpush"),
            (0, "l", "lpush"),
            (0, "l", "lpop"),
            (0, "l", "rpop"),
            (0, "l", "lset"),
            (0, "l", "linsert"),
            (0, "l", "lrem"),
            // LMOVE: the push on the destination, then the pop (and removal) of the source.
            (0, "m", "rpush"),
            (0, "l", "lpop"),
            (0, "l", "del"),
            (0, "m", "rpush"),
            (0, "m", "lpush"),
            (0, "m", "rpop"),
            (0, "m", "ltrim"),
            (0, "m", "del"),
        ])
    );
}

#[test]
fn hash_commands_publish_redis_events() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    for cmd in [
        &["HSET", "h", "a", "1", "b", "2"][..],
        &["HSETNX", "h", "a", "9"],
        &["HSETNX", "h", "c", "3"],
        &["HINCRBY", "h", "a", "5"],
        &["HINCRBYFLOAT", "h", "b", "0.5"],
        &["HDEL", "h", "nosuch"],
        &["HDEL", "h", "a", "b"],
        &["HDEL", "h", "c"],
    ] {
        w.run(cmd);
    }
    assert_eq!(
        w.published(),
        expect(&[
            (0, "h", "hset"),
            (0, "h", "hset"),
            (0, "h", "hincrby"),
            (0, "h", "hincrbyfloat"),
            (0, "h", "hdel"),
            (0, "h", "hdel"),
            (0, "h", "del"),
        ])
    );
}

#[test]
fn set_commands_publish_redis_events() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    for cmd in [
        &["SADD", "s", "a", "b"][..],
        &["SADD", "s", "a"],
        &["SREM", "s", "nosuch"],
        &["SADD", "d", "a"],
        &["SMOVE", "s", "d", "a"],
        &["SMOVE", "s", "d", "nosuch"],
        &["SMOVE", "s", "d", "b"],
        &["SINTERSTORE", "x", "d", "d"],
        &["SUNIONSTORE", "x", "nosuch"],
        &["SUNIONSTORE", "x", "nosuch"],
        &["SPOP", "d"],
        &["SPOP", "d", "5"],
    ] {
        w.run(cmd);
    }
    assert_eq!(
        w.published(),
        expect(&[
            (0, "s", "sadd"),
            (0, "d", "sadd"),
            // SMOVE of a member the destination holds: only the source changed.
            (0, "s", "srem"),
            (0, "s", "srem"),
            (0, "s", "del"),
            (0, "d", "sadd"),
            (0, "x", "sinterstore"),
            (0, "x", "del"),
            (0, "d", "spop"),
            // SPOP with a count that takes the whole set publishes only the deletion.
            (0, "d", "del"),
        ])
    );
}

#[test]
fn sorted_set_commands_publish_redis_events() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    for cmd in [
        &["ZADD", "z", "1", "a", "2", "b"][..],
        &["ZADD", "z", "1", "a"],
        &["ZADD", "z", "NX", "5", "a"],
        &["ZINCRBY", "z", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZREM", "z", "nosuch"],
        &["ZREM", "z", "a"],
        &["ZADD", "z", "3", "c", "4", "d"],
        &["ZREMRANGEBYSCORE", "z", "3", "3"],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["ZREMRANGEBYRANK", "z", "5", "9"],
        &["ZADD", "l", "0", "x", "0", "y"],
        &["ZREMRANGEBYLEX", "l", "-", "+"],
        &["ZPOPMIN", "z"],
        &["ZADD", "p", "1", "a", "2", "b", "3", "c"],
        &["ZPOPMAX", "p", "1"],
        &["ZUNIONSTORE", "u", "1", "p"],
        &["ZINTERSTORE", "u", "2", "p", "nosuch"],
        &["ZDIFFSTORE", "u", "1", "p"],
        &["ZRANGESTORE", "u", "p", "0", "0"],
        &["ZMPOP", "1", "p", "MIN", "COUNT", "5"],
    ] {
        w.run(cmd);
    }
    assert_eq!(
        w.published(),
        expect(&[
            (0, "z", "zadd"),
            (0, "z", "zincr"),
            (0, "z", "zincr"),
            (0, "z", "zrem"),
            (0, "z", "zadd"),
            (0, "z", "zremrangebyscore"),
            (0, "z", "zremrangebyrank"),
            (0, "l", "zadd"),
            (0, "l", "zremrangebylex"),
            (0, "l", "del"),
            (0, "z", "zpopmin"),
            (0, "z", "del"),
            (0, "p", "zadd"),
            (0, "p", "zpopmax"),
            (0, "u", "zunionstore"),
            (0, "u", "del"),
            (0, "u", "zdiffstore"),
            (0, "u", "zrangestore"),
            (0, "p", "zpopmin"),
            (0, "p", "del"),
        ])
    );
}

/// Redis's suite, unit/type/set: "SMOVE only notify dstset when the addition is successful" —
/// a WATCH on the destination survives an SMOVE of a member it already holds.
#[test]
fn smove_of_a_member_the_destination_holds_does_not_touch_it() {
    let s = start();
    let mut a = client(&s);
    let mut b = client(&s);
    run(&mut a, &["SADD", "src", "a", "b"]);
    run(&mut a, &["SADD", "dst", "a"]);
    run(&mut a, &["WATCH", "dst"]);
    run(&mut a, &["MULTI"]);
    run(&mut a, &["SADD", "dst", "c"]);
    assert_eq!(
        run(&mut b, &["SMOVE", "src", "dst", "a"]),
        redis::Value::Int(1)
    );
    assert_eq!(
        run(&mut a, &["EXEC"]),
        redis::Value::Array(vec![redis::Value::Int(1)])
    );
    assert_eq!(run(&mut a, &["SCARD", "dst"]), redis::Value::Int(2));
}

#[test]
fn expired_keys_publish_expired_lazily_and_actively() {
    let s = start();
    let mut w = Watcher::new(&s, "KEx$g");
    w.run(&["SET", "lazy", "v", "PX", "100"]);
    w.run(&["SET", "active", "v", "PX", "100"]);
    s.clock.advance(Duration::from_millis(200));
    // A write that finds its key expired: `expired` comes before the command's own events.
    w.run(&["SET", "lazy", "w"]);
    assert_eq!(s.cache.active_expire_cycle(), 1);
    assert_eq!(
        w.published(),
        expect(&[
            (0, "lazy", "set"),
            (0, "lazy", "expire"),
            (0, "active", "set"),
            (0, "active", "expire"),
            (0, "lazy", "expired"),
            (0, "lazy", "set"),
            (0, "active", "expired"),
        ])
    );
}

/// Inside MULTI/EXEC, each queued command's lazy expirations come just before its own events,
/// as Redis publishes `expired` when that command looks the key up (not all of the
/// transaction's expirations first).
#[test]
fn a_transaction_publishes_each_commands_lazy_expiry_in_place() {
    let s = start();
    let mut w = Watcher::new(&s, "KEx$g");
    w.run(&["SET", "gone", "v", "PX", "100"]);
    s.clock.advance(Duration::from_millis(200));
    w.run(&["MULTI"]);
    w.run(&["SET", "a", "1"]);
    w.run(&["GET", "gone"]);
    w.run(&["SET", "gone", "w"]);
    w.run(&["EXEC"]);
    assert_eq!(
        w.published(),
        expect(&[
            (0, "gone", "set"),
            (0, "gone", "expire"),
            (0, "a", "set"),
            (0, "gone", "expired"),
            (0, "gone", "set"),
        ])
    );
}

/// Every command evicts before it runs while memory is over the ceiling, as Redis's
/// `processCommand`: the SET evicts `old`, and the CONFIG SET that lifts the ceiling evicts
/// `new` before it runs.
#[test]
fn evicted_keys_publish_evicted() {
    let s = start();
    let mut w = Watcher::new(&s, "KEA");
    w.run(&["SET", "old", "v"]);
    w.run(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    w.run(&["CONFIG", "SET", "maxmemory", "1"]);
    w.run(&["SET", "new", "v"]);
    w.run(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(
        w.published(),
        expect(&[
            (0, "old", "set"),
            (0, "old", "evicted"),
            (0, "new", "set"),
            (0, "new", "evicted"),
        ])
    );
}

#[test]
fn only_the_enabled_classes_and_channels_publish() {
    let s = start();
    // Keyspace channels only, list class only, plus key creation.
    let mut w = Watcher::new(&s, "Kln");
    w.run(&["SET", "str", "v"]);
    w.run(&["RPUSH", "l", "a"]);
    w.run(&["RPUSH", "l", "b"]);
    // A stored result replacing a key is not new (Redis's setKey overwrites it).
    w.run(&["SORT", "l", "ALPHA", "STORE", "l"]);
    w.run(&["DEL", "l"]);
    assert_eq!(
        w.published(),
        vec![
            ("__keyspace@0__:str".to_owned(), "new".to_owned()),
            ("__keyspace@0__:l".to_owned(), "new".to_owned()),
            ("__keyspace@0__:l".to_owned(), "rpush".to_owned()),
            ("__keyspace@0__:l".to_owned(), "rpush".to_owned()),
            ("__keyspace@0__:l".to_owned(), "sortstore".to_owned()),
        ]
    );
}

#[test]
fn read_misses_publish_keymiss_with_class_m() {
    let s = start();
    let mut w = Watcher::new(&s, "KEm");
    w.run(&["GET", "nosuch"]);
    w.run(&["SET", "a", "1"]);
    w.run(&["GET", "a"]);
    w.run(&["MGET", "a", "b"]);
    w.run(&["EXISTS", "c"]);
    // A write's lookup is no miss.
    w.run(&["INCR", "d"]);
    assert_eq!(
        w.published(),
        expect(&[
            (0, "nosuch", "keymiss"),
            (0, "b", "keymiss"),
            (0, "c", "keymiss")
        ])
    );
}

/// Write commands that read keys look them up as Redis's `lookupKeyRead` does: a missing
/// source publishes `keymiss` and counts in `keyspace_misses`, a found one in `keyspace_hits`;
/// the keys they only write do not count. These had published nothing and counted nothing.
#[test]
fn write_commands_reading_keys_publish_keymiss_and_count() {
    let s = start();
    let mut w = Watcher::new(&s, "Km");
    w.run(&["SADD", "s", "a"]);
    w.run(&["CONFIG", "RESETSTAT"]);
    let reads: &[(&[&str], &[&str])] = &[
        (&["SUNIONSTORE", "d", "s", "m1"], &["m1"]),
        (&["SINTERSTORE", "d", "m2", "s"], &["m2"]),
        (&["SDIFFSTORE", "d", "s", "m3"], &["m3"]),
        (&["ZUNIONSTORE", "z", "2", "m4", "m5"], &["m4", "m5"]),
        (&["ZRANGESTORE", "z", "m6", "0", "-1"], &["m6"]),
        (&["PFMERGE", "h", "m7"], &["h", "m7"]),
        (&["SORT", "m8"], &["m8"]),
        (&["SORT", "m9", "STORE", "d"], &["m9"]),
        (&["BITOP", "AND", "d", "m10", "m11"], &["m10", "m11"]),
        (&["BITFIELD", "m12", "GET", "u8", "0"], &["m12"]),
        (&["GETEX", "m13"], &["m13"]),
        (&["GETDEL", "m14"], &["m14"]),
        (&["GETSET", "m15", "v"], &["m15"]),
        (&["SET", "m16", "v", "GET"], &["m16"]),
        (&["COPY", "m17", "d"], &["m17"]),
        (
            &["GEORADIUS", "m18", "0", "0", "1", "km", "STORE", "d"],
            &["m18"],
        ),
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "m19",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km",
            ],
            &["m19"],
        ),
    ];
    let mut want = Vec::new();
    for (cmd, missed) in reads {
        w.run(cmd);
        want.extend(
            missed
                .iter()
                .map(|k| (format!("__keyspace@0__:{k}"), "keymiss".to_owned())),
        );
    }
    // Writes that do not read their key publish nothing.
    w.run(&["BITFIELD", "m20", "SET", "u8", "0", "1"]);
    w.run(&["SET", "m21", "v"]);
    assert_eq!(w.published(), want);
    let misses = want.len();
    let redis::Value::BulkString(info) = w.run(&["INFO", "stats"]) else {
        panic!("INFO is a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    // The found sources: SUNIONSTORE's, SINTERSTORE's and SDIFFSTORE's `s`; GETSET's and
    // SET … GET's keys did not exist yet.
    assert!(info.contains("\r\nkeyspace_hits:3\r\n"), "{info}");
    assert!(
        info.contains(&format!("\r\nkeyspace_misses:{misses}\r\n")),
        "{info}"
    );
}

/// Redis 7.0's OBJECT looks keys up with `LOOKUP_NOTOUCH|LOOKUP_NONOTIFY`: its misses publish
/// no `keymiss` (EXISTS, TYPE and TTL, with `LOOKUP_NOTOUCH` alone, do).
#[test]
fn object_misses_publish_no_keymiss() {
    let s = start();
    let mut w = Watcher::new(&s, "KEm");
    for sub in ["ENCODING", "REFCOUNT", "IDLETIME", "FREQ"] {
        w.run(&["OBJECT", sub, "nosuch"]);
    }
    w.run(&["TYPE", "t"]);
    w.run(&["TTL", "u"]);
    assert_eq!(
        w.published(),
        expect(&[(0, "t", "keymiss"), (0, "u", "keymiss")])
    );
}

#[test]
fn nothing_is_published_when_disabled() {
    let s = start();
    // The default, then classes without a channel (no K or E), then switched off again.
    for flags in [None, Some("A"), Some("")] {
        let mut w = match flags {
            None => Watcher {
                sub: subscriber(&s),
                con: client(&s),
            },
            Some(f) => Watcher::new(&s, f),
        };
        w.run(&["SET", "a", "1"]);
        w.run(&["RPUSH", "l", "a"]);
        w.run(&["SADD", "s", "a"]);
        w.run(&["HSET", "h", "a", "1"]);
        w.run(&["DEL", "a", "l", "s", "h"]);
        assert_eq!(w.published(), Vec::new(), "flags {flags:?}");
    }
}

#[test]
fn config_flags_use_redis_letters_and_canonical_order() {
    let s = start();
    let mut con = client(&s);
    let get = |con: &mut redis::Connection| -> String {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query(con)
            .unwrap();
        v.get(1).cloned().unwrap()
    };
    assert_eq!(get(&mut con), "", "disabled by default");
    for (set, canonical) in [
        ("KEA", "AKE"),
        ("Elg$", "g$lE"),
        ("Eg$lshzxetd", "AE"),
        ("mnAK", "AKm"),
        ("xe", "xe"),
        ("", ""),
    ] {
        run(&mut con, &["CONFIG", "SET", "notify-keyspace-events", set]);
        assert_eq!(get(&mut con), canonical, "set {set:?}");
    }
    run(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEl"],
    );
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEw")
        .query::<redis::Value>(&mut con)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some(
            "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - \
             Invalid event class character. Use 'Ag$lshzxeKEtmd'."
        )
    );
    assert_eq!(get(&mut con), "lKE", "an invalid value changes nothing");
}

/// `n` beside `A` stays in force although CONFIG GET reports `AKE` without it, as Redis 7.0
/// (its `keyspaceEventsFlagsToString` prints `n` only without `A`, and keeps the flags).
#[test]
fn new_key_events_stay_on_beside_a() {
    let s = start();
    let mut w = Watcher::new(&s, "KAn");
    w.run(&["SET", "fresh", "v"]);
    assert_eq!(
        w.published(),
        vec![
            ("__keyspace@0__:fresh".to_owned(), "new".to_owned()),
            ("__keyspace@0__:fresh".to_owned(), "set".to_owned()),
        ]
    );
    let mut con = client(&s);
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, ["notify-keyspace-events", "AK"]);
}
