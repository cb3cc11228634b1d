//! Capability: DUMP and RESTORE in Redis 7.0.15's own RDB payload format — a value DUMPed here
//! is byte for byte what Redis 7.0 writes for the same value (strings, lists, intsets and
//! tables of sets, listpack and table hashes, listpack and skiplist sorted sets, short of LZF
//! compression), payloads taken from a real Redis (compressed ones, and the older encodings of
//! Redis 2.x–6.x: zipmap, ziplist hashes, quicklists of ziplists, text scores) restore here,
//! every type and encoding survives DUMP → RESTORE, RESTORE's options (REPLACE, ABSTTL,
//! IDLETIME, FREQ) and errors match Redis's, a corrupt payload is refused without touching
//! the keyspace, and RESTORE publishes `restore`, breaks WATCH and is refused over maxmemory.
//! Method: a real TCP client on an in-process RESP server (127.0.0.1:0, `ManualClock`), with
//! expected bytes copied from `redis-server` 7.0.15's `DUMP` replies (hex literals below) and
//! old-encoding payloads built by hand from the format and checked against `redis-server`
//! 7.0.15's RESTORE; a proptest drives random values through DUMP and RESTORE. Waits are
//! bounded socket timeouts, never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::ManualClock;

mod resp_common;

use resp_common::{Conn, bulk, bulks, err, payload};

/// The manual clock's start, in wall-clock milliseconds.
const NOW_MS: u64 = 1_000_000_000;

struct Server {
    resp: resp_common::Server,
    clock: Arc<ManualClock>,
}

fn start() -> Server {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let cache = Cache::new(CacheConfig::default(), clock.clone());
    let config = RespConfig::from_cache(&cache, None);
    Server {
        resp: resp_common::serve(cache, config),
        clock,
    }
}

/// DUMP and RESTORE on a connection.
trait DumpRestore {
    fn dump(&mut self, key: &str) -> Vec<u8>;
    fn restore(&mut self, key: &str, ttl: &str, payload: &[u8], opts: &[&str]) -> Frame;
}

impl DumpRestore for Conn {
    /// DUMP's payload of `key`.
    fn dump(&mut self, key: &str) -> Vec<u8> {
        match self.cmd(&["DUMP", key]) {
            Frame::Bulk(b) => b.to_vec(),
            other => panic!("DUMP {key}: {other:?}"),
        }
    }

    fn restore(&mut self, key: &str, ttl: &str, payload: &[u8], opts: &[&str]) -> Frame {
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), ttl.as_bytes(), payload];
        args.extend(opts.iter().map(|o| o.as_bytes()));
        self.raw(&args)
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ok() -> Frame {
    Frame::simple("OK")
}

/// A key's contents in a comparable form: its type, and its elements sorted where order is
/// not part of the type.
fn contents(c: &mut Conn, key: &str) -> (Frame, Frame) {
    let kind = c.cmd(&["TYPE", key]);
    let Frame::Simple(kind_name) = &kind else {
        panic!("TYPE {key}: {kind:?}");
    };
    let sorted = |f: Frame| match f {
        Frame::Array(mut items) => {
            items.sort_by_key(|i| format!("{i:?}"));
            Frame::Array(items)
        }
        other => other,
    };
    let value = match kind_name.as_ref() {
        "string" => c.cmd(&["GET", key]),
        "list" => c.cmd(&["LRANGE", key, "0", "-1"]),
        "set" => sorted(c.cmd(&["SMEMBERS", key])),
        "hash" => {
            let Frame::Array(flat) = c.cmd(&["HGETALL", key]) else {
                panic!("HGETALL {key}");
            };
            let mut pairs: Vec<Frame> = flat.chunks(2).map(|p| Frame::Array(p.to_vec())).collect();
            pairs.sort_by_key(|i| format!("{i:?}"));
            Frame::Array(pairs)
        }
        "zset" => c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        other => panic!("unexpected type {other}"),
    };
    (kind, value)
}

/// Payloads `redis-server` 7.0.15 DUMPed (hex), with the commands that built each value. Every
/// value fits Redis's no-compression case (strings of at most 20 bytes, small containers), so
/// streamcache must produce the same bytes.
const REDIS_EXACT: &[(&[&str], &str)] = &[
    (&["SET", "k", "hello"], "000568656c6c6f0a006372df766534200a"),
    (&["SET", "k", "12345"], "00c139300a009d94ea2793fc08b9"),
    (&["SET", "k", "-7"], "00c0f90a005e26d130d7a242ab"),
    (&["SET", "k", ""], "00000a005d9b5c400f7fa2da"),
    (
        &["SET", "k", "4294967296"],
        "000a343239343936373239360a00a5a389c81a8c4656",
    ),
    (
        &["RPUSH", "k", "a", "1", "b"],
        "1201020f0f00000003008161020101816202ff0a009043a34ceb8e1b1c",
    ),
    (
        &["RPUSH", "k", "-5000", "70000", "9000000000", "-1"],
        "1201021d1d0000000400f178ec03f270110104f4001a71180200000009dfff02ff0a00325af9da599a4ad3",
    ),
    (
        &["SADD", "k", "3", "1", "-2"],
        "0b0e0200000003000000feff010003000a001b18460ee16f04bb",
    ),
    (
        &["SADD", "k", "member"],
        "0201066d656d6265720a00782717cf5e5d03c4",
    ),
    (
        &["HSET", "k", "f", "v", "n", "7"],
        "1012120000000400816602817602816e020701ff0a00b82adea8407ffaa8",
    ),
    (
        &["HSET", "k", "field", "value"],
        "1015150000000200856669656c64068576616c756506ff0a00f141e4cc66b9ceb1",
    ),
    (
        &["ZADD", "k", "1", "a", "2.5", "b"],
        "1114140000000400816102010181620283322e3504ff0a00d44c6ea4f644d9d7",
    ),
];

#[test]
fn hash_fields_keep_insertion_order_as_a_listpack_does() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["HSET", "h", "z", "1", "a", "2", "m", "3", "b", "4"]);
    assert_eq!(c.cmd(&["HKEYS", "h"]), bulks(&["z", "a", "m", "b"]));
    c.cmd(&["HDEL", "h", "a"]);
    c.cmd(&["HSET", "h", "z", "changed", "new", "5"]);
    assert_eq!(
        c.cmd(&["HGETALL", "h"]),
        bulks(&["z", "changed", "m", "3", "b", "4", "new", "5"])
    );
    // DUMP lists them in that order, as Redis's listpack does.
    let dump = c.dump("h");
    assert_eq!(c.restore("copy", "0", &dump, &[]), ok());
    assert_eq!(c.cmd(&["HKEYS", "copy"]), bulks(&["z", "m", "b", "new"]));
}

/// Redis 7.0 turns a string it changes in place into `raw` whatever its size
/// (`dbUnshareStringValue`: APPEND to an existing key, SETRANGE, SETBIT, BITFIELD, PFADD) and
/// creates SETRANGE's, SETBIT's, BITFIELD's, BITOP's and PFADD's new strings `raw`; a new value
/// (SET, INCR, INCRBYFLOAT) reads by its bytes again. Expected encodings read from
/// `redis-server` 7.0.15 given the same commands.
#[test]
fn strings_changed_in_place_are_raw_as_in_redis_7_0() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    let cases: &[(&str, &[&[&str]], &str)] = &[
        (
            "append-int",
            &[&["SET", "k", "1"], &["APPEND", "k", "2"]],
            "raw",
        ),
        (
            "append-embstr",
            &[&["SET", "k", "hello"], &["APPEND", "k", "x"]],
            "raw",
        ),
        ("append-new", &[&["APPEND", "k", "x"]], "embstr"),
        ("append-new-int", &[&["APPEND", "k", "12"]], "int"),
        (
            "setrange",
            &[&["SET", "k", "hello"], &["SETRANGE", "k", "1", "x"]],
            "raw",
        ),
        ("setrange-new", &[&["SETRANGE", "k", "1", "x"]], "raw"),
        (
            "setrange-empty",
            &[&["SET", "k", "12"], &["SETRANGE", "k", "0", ""]],
            "int",
        ),
        (
            "setbit",
            &[&["SET", "k", "hello"], &["SETBIT", "k", "1", "1"]],
            "raw",
        ),
        ("setbit-new", &[&["SETBIT", "k", "1", "1"]], "raw"),
        (
            "bitfield",
            &[
                &["SET", "k", "hello"],
                &["BITFIELD", "k", "SET", "u8", "0", "1"],
            ],
            "raw",
        ),
        (
            "bitfield-new",
            &[&["BITFIELD", "k", "SET", "u8", "0", "1"]],
            "raw",
        ),
        (
            "bitop",
            &[&["SET", "k", "hello"], &["BITOP", "NOT", "k", "k"]],
            "raw",
        ),
        ("pfadd-new", &[&["PFADD", "k", "a"]], "raw"),
        (
            "append-incr",
            &[&["SET", "k", "5"], &["APPEND", "k", "1"], &["INCR", "k"]],
            "int",
        ),
        (
            "append-incrbyfloat",
            &[
                &["SET", "k", "5"],
                &["APPEND", "k", "1"],
                &["INCRBYFLOAT", "k", "1.5"],
            ],
            "embstr",
        ),
        (
            "append-set",
            &[
                &["SET", "k", "5"],
                &["APPEND", "k", "1"],
                &["SET", "k", "ab"],
            ],
            "embstr",
        ),
        (
            "getrange",
            &[&["SET", "k", "12"], &["GETRANGE", "k", "0", "1"]],
            "int",
        ),
    ];
    for (name, cmds, want) in cases {
        c.cmd(&["DEL", "k"]);
        for cmd in *cmds {
            let reply = c.cmd(cmd);
            assert!(
                !matches!(reply, Frame::Error(_)),
                "{name}: {cmd:?}: {reply:?}"
            );
        }
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", "k"]), bulk(want), "{name}");
    }
    // The raw string still reads, grows and counts as before.
    c.cmd(&["SET", "k", "12"]);
    c.cmd(&["APPEND", "k", "3"]);
    assert_eq!(c.cmd(&["INCRBY", "k", "7"]), Frame::Integer(130));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("130"));
}

/// RENAME, RENAMENX, MOVE and COPY (to its own database or another) carry a string's object
/// over as it is (`dupStringObject` keeps `raw`), so a `raw` string of digits stays `raw`, and
/// COPY REPLACE over it writes the source's `int`. Expected encodings read from `redis-server`
/// 7.0.15 given the same commands.
#[test]
fn a_raw_string_stays_raw_when_renamed_moved_or_copied() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["SET", "k", "12"]);
    c.cmd(&["APPEND", "k", "3"]);
    assert_eq!(c.cmd(&["RENAMENX", "k", "a"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "a"]), bulk("raw"));
    assert_eq!(c.cmd(&["COPY", "a", "b"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "b"]), bulk("raw"));
    assert_eq!(c.cmd(&["MOVE", "b", "1"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["COPY", "a", "c", "DB", "2"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["SWAPDB", "0", "3"]), ok());
    assert_eq!(
        c.cmd(&["RENAME", "a", "d"]),
        Frame::Error("ERR no such key".into())
    );
    c.cmd(&["SELECT", "3"]);
    assert_eq!(c.cmd(&["RENAME", "a", "d"]), ok());
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "d"]), bulk("raw"));
    assert_eq!(c.cmd(&["GET", "d"]), bulk("123"));
    for db in ["1", "2"] {
        c.cmd(&["SELECT", db]);
        let key = if db == "1" { "b" } else { "c" };
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", key]), bulk("raw"), "db {db}");
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "e", "99"]);
    assert_eq!(c.cmd(&["COPY", "e", "d", "REPLACE"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "d"]), bulk("int"));
    // The carried raw string still grows in place and reads back.
    assert_eq!(c.cmd(&["APPEND", "e", "1"]), Frame::Integer(3));
    assert_eq!(c.cmd(&["RENAME", "e", "f"]), ok());
    assert_eq!(c.cmd(&["INCR", "f"]), Frame::Integer(992));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "f"]), bulk("int"));
}

/// Redis 7.0 keeps a set as an intset while every member is an integer (up to 512), otherwise
/// as a table, however small: listpack sets came with 7.2. OBJECT ENCODING and DUMP agree.
#[test]
fn sets_are_intsets_or_tables_as_in_redis_7_0() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["SADD", "ints", "1", "2", "-3"]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "ints"]), bulk("intset"));
    c.cmd(&["SADD", "small", "a", "b"]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "small"]), bulk("hashtable"));
    // RDB type 2 (a table) for the small set of strings, 11 (intset) for the integers.
    assert_eq!(c.dump("small").first(), Some(&2));
    assert_eq!(c.dump("ints").first(), Some(&11));
}

#[test]
fn dump_writes_redis_bytes() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    for (build, expected) in REDIS_EXACT {
        c.cmd(&["DEL", "k"]);
        c.cmd(build);
        assert_eq!(hex(&c.dump("k")), *expected, "DUMP after {build:?}");
    }
    assert_eq!(c.cmd(&["DUMP", "missing"]), Frame::Null);
    // No MIGRATE, so no cached MIGRATE connections: INFO says so in Redis's field.
    let Frame::Bulk(info) = c.cmd(&["INFO", "stats"]) else {
        panic!("INFO")
    };
    assert!(String::from_utf8_lossy(&info).contains("\r\nmigrate_cached_sockets:0\r\n"));
    assert_eq!(
        c.cmd(&["DUMP"]),
        err("ERR wrong number of arguments for 'dump' command")
    );
    assert_eq!(
        c.cmd(&["DUMP", "a", "b"]),
        err("ERR wrong number of arguments for 'dump' command")
    );
}

/// Payloads from `redis-server` 7.0.15 (LZF-compressed strings and listpacks among them) and
/// older encodings, built by hand and checked to RESTORE on `redis-server` 7.0.15, with the
/// value each holds.
fn redis_payloads() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        // 30 × "a", LZF-compressed.
        (
            "00c3091e016161e011000161610a0045737cbb2b647bbb",
            "string",
            vec!["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        ),
        // A hash whose value is 65 × "x": a table (type 4), the value compressed.
        (
            "04010166c3094041017878e034000178780a00f106d1071b265c18",
            "hash",
            vec![
                "f",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ],
        ),
        // A skiplist sorted set (ZSET_2), its long member compressed.
        (
            "050301630000000000000840c3094041016161e03400016161000000000000f03f016200000000000004c00a006b1c68d0fa1e90e0",
            "zset",
            vec![
                "b",
                "-2.5",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "1",
                "c",
                "3",
            ],
        ),
        // A 64-bit intset, compressed.
        (
            "0bc31018040800000002200300ffe0040001ff7f0a00fe812a2eb2e8b3c7",
            "set",
            vec!["-1", "9223372036854775807"],
        ),
        // A listpack sorted set with infinite scores, compressed.
        (
            "11c32b3419340000000600826c6f03842d696e6605836d69640493302e3130e00500063114826869038320220104ff0a00b0a82ce05bedb29a",
            "zset",
            vec!["lo", "-inf", "mid", "0.10000000000000001", "hi", "inf"],
        ),
        // Redis ≤ 6: a ziplist hash (type 13), RDB version 9.
        (
            "0d11110000000d0000000200000166030176ff0900d0e7c38cbb022b78",
            "hash",
            vec!["f", "v"],
        ),
        // Redis 3.2–6: a quicklist of ziplists (type 14) holding a string, an immediate
        // integer and another string.
        (
            "0e0114140000000f000000030000016103fd02026262ff0900d2d434aba6150e8a",
            "list",
            vec!["a", "12", "bb"],
        ),
        // Redis ≤ 2.4: a zipmap hash (type 9), RDB version 4.
        (
            "0909010166030076616cff0400d16e455b81d31c4d",
            "hash",
            vec!["f", "val"],
        ),
        // Redis ≤ 3.2: a sorted set with text scores (type 3), RDB version 6.
        (
            "0301016d03312e35060022a6fe58e0e0e778",
            "zset",
            vec!["m", "1.5"],
        ),
    ]
}

#[test]
fn restore_reads_payloads_from_redis_and_older_encodings() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    for (i, (payload_hex, kind, items)) in redis_payloads().into_iter().enumerate() {
        let key = format!("k{i}");
        assert_eq!(
            c.restore(&key, "0", &unhex(payload_hex), &[]),
            ok(),
            "{payload_hex}"
        );
        assert_eq!(c.cmd(&["TYPE", &key]), Frame::simple(kind));
        let got = match kind {
            "string" => Frame::Array(vec![c.cmd(&["GET", &key])]),
            "hash" => c.cmd(&["HGETALL", &key]),
            "list" => c.cmd(&["LRANGE", &key, "0", "-1"]),
            "set" => {
                let Frame::Array(mut m) = c.cmd(&["SMEMBERS", &key]) else {
                    panic!()
                };
                m.sort_by_key(|f| format!("{f:?}"));
                Frame::Array(m)
            }
            _ => c.cmd(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
        };
        assert_eq!(got, bulks(&items), "{payload_hex}");
    }
    // The encodings Redis would give them: a 3-member sorted set with a 65-byte member stays
    // a skiplist, an old ziplist hash becomes a listpack.
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "k2"]), bulk("skiplist"));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "k5"]), bulk("listpack"));
    // What RESTORE wrote, DUMP writes back as Redis 7.0 would (a ziplist hash as a listpack).
    assert_eq!(
        hex(&c.dump("k5")),
        "100d0d0000000200816602817602ff0a0020f13d442354089d"
    );
}

/// Builds one key of every type and encoding under `key`.
fn build_all(c: &mut Conn) -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |c: &mut Conn, key: &str, args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = c.cmd(&a);
        assert!(!matches!(reply, Frame::Error(_)), "{key}: {reply:?}");
        keys.push(key.to_owned());
    };
    let v = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    add(c, "str-int", v(&["SET", "str-int", "-9223372036854775808"]));
    add(c, "str-short", v(&["SET", "str-short", "hello world"]));
    add(
        c,
        "str-long",
        vec!["SET".into(), "str-long".into(), "xy".repeat(5000)],
    );
    add(
        c,
        "str-bin",
        vec!["SET".into(), "str-bin".into(), "\u{0}\u{ff}\r\n".into()],
    );
    // A list of many nodes: varied lengths, integers of every listpack width.
    let mut list = v(&["RPUSH", "list-big"]);
    for i in 0..3000i64 {
        list.push(match i % 5 {
            0 => (i * 1_000_003).to_string(),
            1 => "z".repeat(usize::try_from(i % 700).unwrap()),
            2 => (-i).to_string(),
            3 => (i << 40).to_string(),
            _ => format!("item-{i}"),
        });
    }
    add(c, "list-big", list);
    add(c, "list-small", v(&["RPUSH", "list-small", "a", "", "-1"]));
    add(c, "set-int16", v(&["SADD", "set-int16", "1", "2", "-300"]));
    add(c, "set-int32", v(&["SADD", "set-int32", "1", "100000"]));
    add(
        c,
        "set-int64",
        v(&["SADD", "set-int64", "1", "10000000000"]),
    );
    let mut big_ints = v(&["SADD", "set-many-ints"]);
    big_ints.extend((0..600).map(|i: i32| i.to_string()));
    add(c, "set-many-ints", big_ints);
    add(c, "set-str", v(&["SADD", "set-str", "a", "b", "01"]));
    add(
        c,
        "hash-lp",
        v(&["HSET", "hash-lp", "f", "1", "g", "", "h", "-70000"]),
    );
    add(
        c,
        "hash-long",
        vec![
            "HSET".into(),
            "hash-long".into(),
            "f".into(),
            "v".repeat(65),
        ],
    );
    let mut many = v(&["HSET", "hash-many"]);
    for i in 0..200 {
        many.push(format!("field{i}"));
        many.push(i.to_string());
    }
    add(c, "hash-many", many);
    add(
        c,
        "zset-lp",
        v(&[
            "ZADD", "zset-lp", "1", "a", "-2.5", "b", "1e300", "c", "-inf", "d", "0.1", "e",
        ]),
    );
    let mut zbig = v(&["ZADD", "zset-skip"]);
    for i in 0..200 {
        zbig.push(format!("{}", f64::from(i) / 7.0));
        zbig.push(format!("m{i}"));
    }
    add(c, "zset-skip", zbig);
    keys
}

#[test]
fn every_type_and_encoding_round_trips() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    for key in build_all(&mut c) {
        let before = contents(&mut c, &key);
        let encoding = c.cmd(&["OBJECT", "ENCODING", &key]);
        let dump = c.dump(&key);
        let copy = format!("{key}-copy");
        assert_eq!(c.restore(&copy, "0", &dump, &[]), ok(), "{key}");
        assert_eq!(contents(&mut c, &copy), before, "{key}");
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", &copy]), encoding, "{key}");
        // And the copy dumps to the same bytes (for the order-free types).
        if !key.starts_with("hash") && !key.starts_with("set-str") && key != "set-many-ints" {
            assert_eq!(c.dump(&copy), dump, "{key}");
        }
    }
}

#[test]
fn restore_options_and_errors_as_redis() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["SET", "src", "v"]);
    let dump = c.dump("src");
    assert_eq!(
        c.cmd(&["RESTORE", "k", "0"]),
        err("ERR wrong number of arguments for 'restore' command")
    );
    // Busy key before anything else is looked at; REPLACE overwrites.
    assert_eq!(
        c.restore("src", "0", &dump, &[]),
        err("BUSYKEY Target key name already exists.")
    );
    assert_eq!(
        c.restore("src", "-1", b"junk", &[]),
        err("BUSYKEY Target key name already exists.")
    );
    assert_eq!(
        c.restore("k", "-1", &dump, &[]),
        err("ERR Invalid TTL value, must be >= 0")
    );
    assert_eq!(
        c.restore("k", "x", &dump, &[]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.restore("k", "0", &dump, &["BOGUS"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.restore("k", "0", &dump, &["IDLETIME"]),
        err("ERR syntax error")
    );
    assert_eq!(
        c.restore("k", "0", &dump, &["IDLETIME", "-1"]),
        err("ERR Invalid IDLETIME value, must be >= 0")
    );
    assert_eq!(
        c.restore("k", "0", &dump, &["FREQ", "256"]),
        err("ERR Invalid FREQ value, must be >= 0 and <= 255")
    );
    assert_eq!(
        c.restore("k", "0", &dump, &["FREQ", "-1"]),
        err("ERR Invalid FREQ value, must be >= 0 and <= 255")
    );
    // IDLETIME and FREQ exclude each other.
    assert_eq!(
        c.restore("k", "0", &dump, &["IDLETIME", "1", "FREQ", "1"]),
        err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["EXISTS", "k"]), Frame::Integer(0));

    // A relative TTL, an absolute one, and REPLACE.
    assert_eq!(c.restore("k", "5000", &dump, &[]), ok());
    assert_eq!(c.cmd(&["PTTL", "k"]), Frame::Integer(5000));
    let at = (NOW_MS + 3000).to_string();
    assert_eq!(c.restore("k", &at, &dump, &["REPLACE", "ABSTTL"]), ok());
    assert_eq!(c.cmd(&["PTTL", "k"]), Frame::Integer(3000));
    assert_eq!(c.restore("k", "0", &dump, &["replace"]), ok());
    assert_eq!(c.cmd(&["PTTL", "k"]), Frame::Integer(-1));
    // An absolute TTL already past stores nothing; with REPLACE the old key is deleted.
    let past = (NOW_MS - 1).to_string();
    assert_eq!(c.restore("gone", &past, &dump, &["ABSTTL"]), ok());
    assert_eq!(c.cmd(&["EXISTS", "gone"]), Frame::Integer(0));
    assert_eq!(c.restore("k", &past, &dump, &["ABSTTL", "REPLACE"]), ok());
    assert_eq!(c.cmd(&["EXISTS", "k"]), Frame::Integer(0));

    // IDLETIME sets the idle time OBJECT IDLETIME reads, under an LRU policy.
    assert_eq!(c.restore("idle", "0", &dump, &["IDLETIME", "1000"]), ok());
    assert_eq!(c.cmd(&["OBJECT", "IDLETIME", "idle"]), Frame::Integer(1000));
    s.clock.advance(Duration::from_secs(5));
    assert_eq!(c.cmd(&["OBJECT", "IDLETIME", "idle"]), Frame::Integer(1005));
    // FREQ sets the LFU counter under an LFU policy.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]),
        ok()
    );
    assert_eq!(c.restore("hot", "0", &dump, &["FREQ", "100"]), ok());
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "hot"]), Frame::Integer(100));
    assert_eq!(c.restore("plain", "0", &dump, &[]), ok());
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "plain"]), Frame::Integer(5));
}

#[test]
fn corrupt_payloads_are_refused_and_change_nothing() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["RPUSH", "victim", "a", "b"]);
    let good = c.dump("victim");
    let wrong_footer = err("ERR DUMP payload version or checksum are wrong");
    let bad = err("ERR Bad data format");
    let mut cases: Vec<(&str, Vec<u8>, Frame)> = Vec::new();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    cases.push(("bad CRC", flipped, wrong_footer.clone()));
    let mut body_flip = good.clone();
    body_flip[3] ^= 0x40;
    cases.push(("flipped body", body_flip, wrong_footer.clone()));
    cases.push((
        "shorter than a footer",
        good[..9].to_vec(),
        wrong_footer.clone(),
    ));
    cases.push(("empty", Vec::new(), wrong_footer.clone()));
    let body = &good[..good.len() - 10];
    cases.push(("version 11", payload(body, 11), wrong_footer.clone()));
    // Valid footers over bad bodies.
    cases.push((
        "truncated body",
        payload(&body[..body.len() - 3], 10),
        bad.clone(),
    ));
    cases.push(("type byte only", payload(&[18], 10), bad.clone()));
    cases.push(("nothing", payload(&[], 10), bad.clone()));
    cases.push((
        "string length past the end",
        payload(&[0, 0x40, 0xFF, b'a'], 10),
        bad.clone(),
    ));
    cases.push((
        "32-bit length past the end",
        payload(&[0, 0x80, 0xFF, 0xFF, 0xFF, 0xFF], 10),
        bad.clone(),
    ));
    cases.push((
        "list count past the end",
        payload(&[1, 0x80, 0x10, 0, 0, 0, 1, b'a'], 10),
        bad.clone(),
    ));
    cases.push(("empty list", payload(&[1, 0], 10), bad.clone()));
    cases.push(("unknown type 8", payload(&[8, 1, b'a'], 10), bad.clone()));
    cases.push((
        "unknown type 200",
        payload(&[200, 1, b'a'], 10),
        bad.clone(),
    ));
    cases.push(("stream", payload(&[15, 0], 10), bad.clone()));
    cases.push(("stream v2", payload(&[19, 0], 10), bad.clone()));
    cases.push(("module", payload(&[7, 0], 10), bad.clone()));
    cases.push((
        "duplicate set members",
        payload(&[2, 2, 1, b'a', 1, b'a'], 10),
        bad.clone(),
    ));
    cases.push((
        "duplicate hash fields",
        payload(&[4, 2, 1, b'f', 1, b'1', 1, b'f', 1, b'2'], 10),
        bad.clone(),
    ));
    cases.push(("NaN score", payload(&[3, 1, 1, b'm', 253], 10), bad.clone()));
    // A listpack whose header states the wrong size.
    let mut lp = unhex("0f00000003008161020101816202ff");
    lp[0] = 0x10;
    let mut quicklist = vec![18, 1, 2, u8::try_from(lp.len()).unwrap()];
    quicklist.extend_from_slice(&lp);
    cases.push(("listpack size", payload(&quicklist, 10), bad.clone()));
    // A listpack entry whose back-length lies.
    let mut lp = unhex("0f00000003008161020101816202ff");
    lp[8] = 0x03;
    let mut quicklist = vec![18, 1, 2, u8::try_from(lp.len()).unwrap()];
    quicklist.extend_from_slice(&lp);
    cases.push(("listpack backlen", payload(&quicklist, 10), bad.clone()));
    // An LZF string whose data falls short of its stated length.
    cases.push((
        "short LZF",
        payload(&[0, 0xC3, 4, 30, 0x01, b'a', b'a', 0x20], 10),
        bad.clone(),
    ));
    // An intset whose members are out of order.
    cases.push((
        "unsorted intset",
        payload(&[11, 12, 2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 1, 0], 10),
        bad.clone(),
    ));

    for (what, p, expected) in cases {
        assert_eq!(
            c.restore("victim", "0", &p, &["REPLACE"]),
            expected,
            "{what}"
        );
        assert_eq!(c.restore("fresh", "0", &p, &[]), expected, "{what}");
        assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(1), "{what}");
        assert_eq!(
            c.cmd(&["LRANGE", "victim", "0", "-1"]),
            bulks(&["a", "b"]),
            "{what}"
        );
    }
    // Every truncation and every single-byte change of a real payload is refused or restores
    // something, and never takes the server down.
    c.cmd(&["HSET", "h", "field", "value", "n", "12"]);
    let h = c.dump("h");
    for cut in 0..h.len() {
        let mut p = h[..cut].to_vec();
        if cut >= 10 {
            p = payload(&h[..cut - 10], 10);
        }
        let reply = c.restore("t", "0", &p, &["REPLACE"]);
        assert!(
            reply == ok() || matches!(reply, Frame::Error(_)),
            "cut {cut}"
        );
    }
    let body = &h[..h.len() - 10];
    for i in 0..body.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut b = body.to_vec();
            b[i] ^= flip;
            let reply = c.restore("t", "0", &payload(&b, 10), &["REPLACE"]);
            assert!(
                reply == ok() || reply == bad,
                "byte {i} ^ {flip:#x}: {reply:?}"
            );
        }
    }
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn restore_notifies_breaks_watch_and_obeys_maxmemory() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    c.cmd(&["SET", "src", "v"]);
    let dump = c.dump("src");

    // Keyspace notifications: `restore` (generic class; `new` is not in `A`, as in Redis).
    let mut sub = Conn::open(s.resp.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        ok()
    );
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    assert_eq!(c.restore("n", "0", &dump, &[]), ok());
    let next = |sub: &mut Conn| match sub.reply() {
        Frame::Array(items) | Frame::Push(items) => items[2].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(next(&mut sub), bulk("__keyevent@0__:restore"));
    // With the `n` class too, `new` comes first.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEgn"]),
        ok()
    );
    assert_eq!(c.restore("n2", "0", &dump, &[]), ok());
    assert_eq!(next(&mut sub), bulk("__keyevent@0__:new"));
    assert_eq!(next(&mut sub), bulk("__keyevent@0__:restore"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]),
        ok()
    );

    // WATCH: a RESTORE of the watched key aborts the transaction.
    let mut w = Conn::open(s.resp.addr);
    assert_eq!(w.cmd(&["WATCH", "n"]), ok());
    assert_eq!(c.restore("n", "0", &dump, &["REPLACE"]), ok());
    w.cmd(&["MULTI"]);
    w.cmd(&["GET", "n"]);
    assert_eq!(w.cmd(&["EXEC"]), Frame::NullArray);

    // RESTORE is DENYOOM: refused over maxmemory, as Redis's command table flags it.
    let Frame::Array(info) = c.cmd(&["COMMAND", "INFO", "restore", "dump"]) else {
        panic!()
    };
    let flags = |f: &Frame| match f {
        Frame::Array(entry) => format!("{:?}", entry[2]),
        other => panic!("{other:?}"),
    };
    assert!(flags(&info[0]).contains("denyoom"), "{}", flags(&info[0]));
    assert!(flags(&info[0]).contains("write"));
    assert!(flags(&info[1]).contains("readonly"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), ok());
    assert_eq!(
        c.restore("oom", "0", &dump, &[]),
        err("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert!(matches!(c.cmd(&["DUMP", "src"]), Frame::Bulk(_)));
}

#[test]
fn sanitize_dump_payload_setting_as_redis() {
    let s = start();
    let mut c = Conn::open(s.resp.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "sanitize-dump-payload"]),
        bulks(&["sanitize-dump-payload", "no"])
    );
    for v in ["yes", "clients", "no"] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "sanitize-dump-payload", v]), ok());
    }
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "sanitize-dump-payload", "maybe"]),
        Frame::Error(e) if e.contains("argument(s) must be one of the following: no, yes, clients")
    ));
}

/// A random value: its type and the commands that build it under `k`.
fn value_strategy() -> impl Strategy<Value = Vec<Vec<Bytes>>> {
    let element = prop_oneof![
        any::<i64>().prop_map(|i| Bytes::from(i.to_string())),
        (0u32..200).prop_map(|i| Bytes::from(i.to_string())),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Bytes::from),
    ];
    let elements = proptest::collection::vec(element, 1..300);
    (
        0u8..5,
        elements,
        proptest::collection::vec(-1e6f64..1e6, 300),
    )
        .prop_map(|(kind, items, scores)| {
            let name: &[u8] = match kind {
                0 => b"SET",
                1 => b"RPUSH",
                2 => b"SADD",
                3 => b"HSET",
                _ => b"ZADD",
            };
            let mut cmd = vec![Bytes::from_static(name), Bytes::from_static(b"k")];
            match kind {
                0 => cmd.push(items[0].clone()),
                3 => {
                    for (i, it) in items.iter().enumerate() {
                        cmd.push(it.clone());
                        cmd.push(Bytes::from(i.to_string()));
                    }
                }
                4 => {
                    for (it, score) in items.iter().zip(&scores) {
                        cmd.push(Bytes::from(score.to_string()));
                        cmd.push(it.clone());
                    }
                }
                _ => cmd.extend(items.iter().cloned()),
            }
            vec![cmd]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn dump_then_restore_is_the_identity(cmds in value_strategy()) {
        let s = start();
        let mut c = Conn::open(s.resp.addr);
        for cmd in &cmds {
            let args: Vec<&[u8]> = cmd.iter().map(|b| b.as_ref()).collect();
            let reply = c.raw(&args);
            prop_assert!(!matches!(reply, Frame::Error(_)), "{:?}", reply);
        }
        let before = contents(&mut c, "k");
        let encoding = c.cmd(&["OBJECT", "ENCODING", "k"]);
        let dump = c.dump("k");
        prop_assert_eq!(c.restore("k", "0", &dump, &["REPLACE"]), ok());
        prop_assert_eq!(contents(&mut c, "k"), before);
        prop_assert_eq!(c.cmd(&["OBJECT", "ENCODING", "k"]), encoding);
    }
}
