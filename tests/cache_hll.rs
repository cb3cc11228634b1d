//! Capability: HyperLogLogs as Redis 7.0.15 has them — PFADD, PFCOUNT (one key with its
//! cached cardinality, several keys as a union that writes nothing), PFMERGE (a missing
//! destination included) and PFDEBUG, on strings in Redis's own format: sparse and dense
//! values byte for byte what `redis-server` 7.0.15 stores, values made by Redis read and
//! extended here, corrupt values answered with Redis's errors, `hll-sparse-max-bytes`, the
//! `pfadd` notification, WATCH and `maxmemory`.
//! Method: a real TCP client on an in-process RESP server (127.0.0.1:0, `ManualClock`).
//! Pinned encodings are the bytes `redis-server` 7.0.15 returned to GET after the same
//! commands (the dense one by its SHA-256); the live cross-check is tests/peers_redis_hll.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use sha2::{Digest, Sha256};
use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::ManualClock;

mod resp_common;

use resp_common::{Conn, err};

/// Redis 7.0.15's GET of `PFADD abc a b c`.
const ABC: &str = "48594c4c01000000000000000000008060f38050b1844bfb80425a";
/// The same after `PFCOUNT abc` cached 3.
const ABC_COUNTED: &str = "48594c4c01000000030000000000000060f38050b1844bfb80425a";
/// Redis 7.0.15's GET of `PFADD e` (an empty sketch: XZERO 16384).
const EMPTY: &str = "48594c4c010000000000000000000080";
/// Redis 7.0.15's GET of `PFADD x b c d` then `PFMERGE m abc x`.
const MERGED: &str = "48594c4c0100000000000000000000805c7b8044768050b1844bfb80425a";
/// Redis 7.0.15's GET of `PFADD n200 0 1 … 199` (sparse; PFCOUNT 201).
const N200: &str = "48594c4c010000000000000000000080407388404690409784208c2a8c404a841c803380404790018440c680407e8016803b802b801c8c4041884091843b8016881084404d8007803680118041418c128038840798406a8404840880318840ed804059842080078040f480418380098040808817801c804040842b80178440778006942e8040aa800a8040ad80018c378833804076804046804052803180405f802c840580404a8001884054904083804054848040898040628440568414802280108c1e84409f980f8040588040948037802480404b8001804121803180328441628040ad94404390406580407990028c407e8040578040ac90038040758040cb881a840c8004802a8c258040db80048c0f8440bf84159440bb8c378c09880c84405c880d804056844045843a940b8c3a80407780318c28802d803c801c8029804072802e884196802a80404b88404b801a804150804052883e804095800d84405d8840c4841b881588408d804044804095842d800e90388440eb8037843788218440a580406d84407384405280407584298040da80078c108409804058800680406b8804a0407b8440cd84388c40fb80358422801d882184406f80168c0b801b844099802880404880404a942c801180258c12841c802188179040768840a680404a8c40b880158418883a8040d994408a80407b80404e804098";
/// SHA-256 of Redis 7.0.15's GET of `PFADD big 0 1 … 4999` (dense, 12304 bytes; PFCOUNT 4985).
const BIG_SHA256: &str = "8082b2e9e81ef22fd929870153cde504a08eade7545b5c16c036daf87e195890";

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

fn start() -> resp_common::Server {
    let cache = Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    );
    let config = RespConfig::from_cache(&cache, None);
    resp_common::serve(cache, config)
}

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn get(c: &mut Conn, key: &str) -> Vec<u8> {
    match c.cmd(&["GET", key]) {
        Frame::Bulk(b) => b.to_vec(),
        other => panic!("GET {key}: {other:?}"),
    }
}

fn pfadd_numbers(c: &mut Conn, key: &str, n: usize) -> Frame {
    let numbers: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut args = vec!["PFADD", key];
    args.extend(numbers.iter().map(String::as_str));
    c.cmd(&args)
}

#[test]
fn encodings_are_redis_bytes() {
    let s = start();
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["PFADD", "e"]), int(1));
    assert_eq!(get(&mut c, "e"), unhex(&format!("{EMPTY}7fff")));
    assert_eq!(c.cmd(&["PFCOUNT", "e"]), int(0));

    assert_eq!(c.cmd(&["PFADD", "abc", "a", "b", "c"]), int(1));
    assert_eq!(get(&mut c, "abc"), unhex(ABC));
    assert_eq!(c.cmd(&["PFADD", "abc", "a", "b", "c"]), int(0));
    assert_eq!(c.cmd(&["PFCOUNT", "abc"]), int(3));
    assert_eq!(get(&mut c, "abc"), unhex(ABC_COUNTED));

    assert_eq!(c.cmd(&["PFADD", "x", "b", "c", "d"]), int(1));
    assert_eq!(c.cmd(&["PFMERGE", "m", "abc", "x"]), Frame::ok());
    assert_eq!(get(&mut c, "m"), unhex(MERGED));
    assert_eq!(c.cmd(&["PFCOUNT", "m"]), int(4));

    assert_eq!(pfadd_numbers(&mut c, "n200", 200), int(1));
    assert_eq!(get(&mut c, "n200"), unhex(N200));
    assert_eq!(c.cmd(&["PFCOUNT", "n200"]), int(201));
    assert_eq!(
        c.cmd(&["PFDEBUG", "ENCODING", "n200"]),
        Frame::simple("sparse")
    );

    assert_eq!(pfadd_numbers(&mut c, "big", 5000), int(1));
    let big = get(&mut c, "big");
    assert_eq!(big.len(), 12304);
    let sha: String = Sha256::digest(&big)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, BIG_SHA256);
    assert_eq!(c.cmd(&["PFCOUNT", "big"]), int(4985));
    assert_eq!(
        c.cmd(&["PFDEBUG", "ENCODING", "big"]),
        Frame::simple("dense")
    );

    // Several keys: the union's estimate, nothing written (the caches stay stale).
    assert_eq!(c.cmd(&["PFADD", "n200", "extra"]), int(1));
    let before = get(&mut c, "n200");
    assert_eq!(
        c.cmd(&["PFCOUNT", "n200", "big", "abc", "missing"]),
        int(4989)
    );
    assert_eq!(get(&mut c, "n200"), before);
}

#[test]
fn values_made_by_redis_work_here() {
    let s = start();
    let mut c = Conn::open(s.addr);
    // Redis's value with a stale cache: counted and the cache stored as Redis stores it.
    c.raw(&[b"SET", b"k", &unhex(ABC)]);
    assert_eq!(c.cmd(&["PFCOUNT", "k"]), int(3));
    assert_eq!(get(&mut c, "k"), unhex(ABC_COUNTED));
    // A valid cache is answered as stored, without recounting.
    let mut forged = unhex(ABC_COUNTED);
    forged[8] = 42;
    c.raw(&[b"SET", b"f", &forged]);
    assert_eq!(c.cmd(&["PFCOUNT", "f"]), int(42));
    // Extending Redis's value gives Redis's bytes.
    c.raw(&[b"SET", b"k2", &unhex(ABC)]);
    assert_eq!(c.cmd(&["PFADD", "k2", "d"]), int(1));
    assert_eq!(c.cmd(&["PFADD", "k3", "a", "b", "c", "d"]), int(1));
    assert_eq!(get(&mut c, "k2"), get(&mut c, "k3"));
}

#[test]
fn missing_and_wrong_keys() {
    let s = start();
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["PFCOUNT", "none"]), int(0));
    assert_eq!(c.cmd(&["PFCOUNT", "none", "other"]), int(0));
    assert_eq!(c.cmd(&["EXISTS", "none"]), int(0));
    // PFMERGE into a missing destination from missing sources makes an empty sketch.
    assert_eq!(c.cmd(&["PFMERGE", "dest"]), Frame::ok());
    assert_eq!(get(&mut c, "dest"), unhex(&format!("{EMPTY}7fff")));
    assert_eq!(c.cmd(&["PFMERGE", "dest2", "none"]), Frame::ok());
    assert_eq!(c.cmd(&["PFCOUNT", "dest2"]), int(0));

    c.cmd(&["RPUSH", "list", "a"]);
    let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(c.cmd(&["PFADD", "list", "a"]), wrongtype);
    assert_eq!(c.cmd(&["PFCOUNT", "list"]), wrongtype);
    assert_eq!(c.cmd(&["PFMERGE", "x", "list"]), wrongtype);
    c.cmd(&["SET", "str", "bar"]);
    assert_eq!(c.cmd(&["PFADD", "str", "a"]), err(NOT_HLL));
    assert_eq!(c.cmd(&["PFCOUNT", "str"]), err(NOT_HLL));
    assert_eq!(c.cmd(&["PFCOUNT", "abc", "str"]), err(NOT_HLL));
    assert_eq!(c.cmd(&["PFMERGE", "str", "none"]), err(NOT_HLL));
    assert_eq!(c.cmd(&["PFMERGE", "y", "str"]), err(NOT_HLL));
    assert_eq!(c.cmd(&["EXISTS", "x", "y"]), int(0));
    assert_eq!(
        c.cmd(&["PFDEBUG", "ENCODING", "none"]),
        err("ERR The specified key does not exist")
    );
    c.cmd(&["PFADD", "h", "a"]);
    assert_eq!(
        c.cmd(&["PFDEBUG", "NOPE", "h"]),
        err("ERR Unknown PFDEBUG subcommand 'NOPE'")
    );
    assert_eq!(
        c.cmd(&["PFADD"]),
        err("ERR wrong number of arguments for 'pfadd' command")
    );
}

#[test]
fn corrupt_values_get_redis_errors() {
    let s = start();
    let mut c = Conn::open(s.addr);
    let abc = unhex(ABC);
    let set = |c: &mut Conn, v: &[u8]| {
        c.raw(&[b"SET", b"h", v]);
    };
    // Bytes past the last register.
    set(&mut c, &[abc.as_slice(), b"hello"].concat());
    assert_eq!(c.cmd(&["PFCOUNT", "h"]), err(CORRUPT));
    assert_eq!(c.cmd(&["PFCOUNT", "h", "h"]), err(CORRUPT));
    assert_eq!(c.cmd(&["PFMERGE", "d", "h"]), err(CORRUPT));
    // A run past the last register, even after an exact cover, for every command that decodes.
    set(&mut c, &[abc.as_slice(), &[0x80]].concat());
    assert_eq!(c.cmd(&["PFCOUNT", "h"]), err(CORRUPT));
    assert_eq!(c.cmd(&["PFCOUNT", "h", "none"]), err(CORRUPT));
    assert_eq!(c.cmd(&["PFMERGE", "d", "h"]), err(CORRUPT));
    assert_eq!(c.cmd(&["PFDEBUG", "TODENSE", "h"]), err(CORRUPT));
    assert_eq!(c.cmd(&["EXISTS", "d"]), int(0));
    // Registers that stop short.
    set(&mut c, &abc[..abc.len() - 2]);
    assert_eq!(c.cmd(&["PFCOUNT", "h"]), err(CORRUPT));
    assert_eq!(c.cmd(&["PFDEBUG", "TODENSE", "h"]), err(CORRUPT));
    // A register PFADD looks for lies past the end.
    set(&mut c, &abc[..17]);
    assert_eq!(pfadd_numbers(&mut c, "h", 50), err(CORRUPT));
    // Broken magic, unknown encoding, short header, a dense value of the wrong length.
    for bad in [
        [b"0123".as_slice(), &abc[4..]].concat(),
        [&abc[..4], b"x", &abc[5..]].concat(),
        abc[..15].to_vec(),
        [&abc[..4], &[0u8], &abc[5..]].concat(),
        Vec::new(),
    ] {
        set(&mut c, &bad);
        assert_eq!(c.cmd(&["PFCOUNT", "h"]), err(NOT_HLL));
        assert_eq!(c.cmd(&["PFADD", "h", "z"]), err(NOT_HLL));
    }
    // Random corruption of sparse and dense values never breaks the server.
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..400 {
        c.cmd(&["DEL", "h"]);
        pfadd_numbers(&mut c, "h", (next() % 3000) as usize);
        let mut v = get(&mut c, "h");
        for _ in 0..1 + next() % 5 {
            let at = (next() % v.len() as u64) as usize;
            v[at] = next() as u8;
        }
        set(&mut c, &v);
        for cmd in [
            &["PFCOUNT", "h"][..],
            &["PFADD", "h", "q", "r"],
            &["PFMERGE", "h2", "h"],
        ] {
            match c.cmd(cmd) {
                Frame::Integer(_) | Frame::Simple(_) => {}
                Frame::Error(e) => assert!(
                    e == CORRUPT || e == NOT_HLL,
                    "round {round}: {cmd:?} answered {e}"
                ),
                other => panic!("round {round}: {other:?}"),
            }
        }
    }
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn sparse_max_bytes_promotes_to_dense() {
    let s = start();
    let mut c = Conn::open(s.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hll-sparse-max-bytes"]),
        Frame::Array(vec![
            Frame::bulk(b"hll-sparse-max-bytes"),
            Frame::bulk(b"3000")
        ])
    );
    // Under the default, 2000 elements stay sparse; at 3000 bytes the sketch turns dense.
    pfadd_numbers(&mut c, "a", 1000);
    assert_eq!(
        c.cmd(&["PFDEBUG", "ENCODING", "a"]),
        Frame::simple("sparse")
    );
    assert!(get(&mut c, "a").len() <= 3000);
    pfadd_numbers(&mut c, "a", 4000);
    assert_eq!(c.cmd(&["PFDEBUG", "ENCODING", "a"]), Frame::simple("dense"));
    // A sparse sketch may reach the limit exactly, never pass it.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hll-sparse-max-bytes", "40"]),
        Frame::ok()
    );
    let mut i = 0;
    loop {
        c.cmd(&["PFADD", "b", &i.to_string()]);
        if c.cmd(&["PFDEBUG", "ENCODING", "b"]) == Frame::simple("dense") {
            break;
        }
        assert!(get(&mut c, "b").len() <= 40);
        i += 1;
    }
    assert!(i > 3, "turned dense after {i} elements");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hll-sparse-max-bytes", "x"]),
        err(
            "ERR CONFIG SET failed (possibly related to argument 'hll-sparse-max-bytes') - argument must be a memory value"
        )
    );
    // PFDEBUG TODENSE converts once; GETREG reads the registers.
    c.cmd(&["PFADD", "c", "a", "b", "c"]);
    assert_eq!(
        c.cmd(&["PFDEBUG", "DECODE", "c"]),
        Frame::bulk(b"Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603")
    );
    assert_eq!(c.cmd(&["PFDEBUG", "TODENSE", "c"]), int(1));
    assert_eq!(c.cmd(&["PFDEBUG", "TODENSE", "c"]), int(0));
    assert_eq!(
        c.cmd(&["PFDEBUG", "DECODE", "c"]),
        err("ERR HLL encoding is not sparse")
    );
    let Frame::Array(regs) = c.cmd(&["PFDEBUG", "GETREG", "c"]) else {
        panic!("GETREG")
    };
    assert_eq!(regs.len(), 16384);
    assert_eq!(regs.iter().filter(|r| **r != int(0)).count(), 3);
    assert_eq!(c.cmd(&["PFCOUNT", "c"]), int(3));
}

#[test]
fn watch_notifications_and_maxmemory() {
    let s = start();
    let mut c = Conn::open(s.addr);
    let mut sub = Conn::open(s.addr);
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "E$"]);
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    c.cmd(&["PFADD", "h", "a"]);
    c.cmd(&["PFADD", "h", "a"]);
    c.cmd(&["PFMERGE", "m", "h"]);
    c.cmd(&["PFCOUNT", "h"]);
    c.cmd(&["SET", "end", "1"]);
    let events: Vec<Frame> = (0..3).map(|_| sub.reply()).collect();
    let event = |name: &str, key: &str| {
        Frame::Array(vec![
            Frame::bulk(b"pmessage"),
            Frame::bulk(b"__keyevent@0__:*"),
            Frame::bulk(format!("__keyevent@0__:{name}").as_bytes()),
            Frame::bulk(key.as_bytes()),
        ])
    };
    // PFMERGE publishes `pfadd`, as Redis 7.0 does; an unchanged PFADD and PFCOUNT publish nothing.
    assert_eq!(
        events,
        vec![
            event("pfadd", "h"),
            event("pfadd", "m"),
            event("set", "end")
        ]
    );

    // WATCH: a changing PFADD and a PFCOUNT that stores its cache abort the transaction;
    // an unchanged PFADD and a cached PFCOUNT do not.
    let mut other = Conn::open(s.addr);
    for (cmd, aborts) in [
        (&["PFADD", "h", "a"][..], false),
        (&["PFADD", "h", "b"], true),
        (&["PFCOUNT", "h"], true),
        (&["PFCOUNT", "h"], false),
    ] {
        c.cmd(&["WATCH", "h"]);
        other.cmd(cmd);
        c.cmd(&["MULTI"]);
        c.cmd(&["PING"]);
        let reply = c.cmd(&["EXEC"]);
        assert_eq!(reply == Frame::NullArray, aborts, "{cmd:?}: {reply:?}");
    }

    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    c.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    let oom = err("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(c.cmd(&["PFADD", "h", "z"]), oom);
    assert_eq!(c.cmd(&["PFMERGE", "h", "m"]), oom);
    assert_eq!(c.cmd(&["PFCOUNT", "h"]), int(2));
}
