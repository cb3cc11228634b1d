//! Capability: the cache's commands and typed helpers behave as Redis's do.
//! Method: drive `Cache::execute` and the typed helpers in-process with a `ManualClock` and
//! compare replies with what Redis 7.0 answers.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
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

/// A container command's known subcommand with the wrong argument count names itself as
/// `command|subcommand`; an unknown subcommand is named before any key is read (Redis 7.0.15's
/// texts, read from a running redis-server).
#[test]
fn subcommand_arity_uses_redis_texts() {
    let c = cache();
    let table: &[(&[&str], &str)] = &[
        (
            &["CONFIG", "GET"],
            "ERR wrong number of arguments for 'config|get' command",
        ),
        (
            &["config", "set", "a"],
            "ERR wrong number of arguments for 'config|set' command",
        ),
        (
            &["CONFIG", "RESETSTAT", "x"],
            "ERR wrong number of arguments for 'config|resetstat' command",
        ),
        (
            &["OBJECT", "ENCODING"],
            "ERR wrong number of arguments for 'object|encoding' command",
        ),
        (
            &["OBJECT", "freq", "a", "b"],
            "ERR wrong number of arguments for 'object|freq' command",
        ),
        (
            &["MEMORY", "USAGE"],
            "ERR wrong number of arguments for 'memory|usage' command",
        ),
        (
            &["COMMAND", "COUNT", "x"],
            "ERR wrong number of arguments for 'command|count' command",
        ),
        (
            &["PUBSUB", "NUMPAT", "x"],
            "ERR wrong number of arguments for 'pubsub|numpat' command",
        ),
        (
            &["CONFIG", "FOO"],
            "ERR unknown subcommand 'FOO'. Try CONFIG HELP.",
        ),
        (
            &["OBJECT", "FOO", "missing"],
            "ERR unknown subcommand 'FOO'. Try OBJECT HELP.",
        ),
    ];
    for (args, text) in table {
        assert_eq!(run(&c, args), Frame::error(*text), "{args:?}");
    }
}

/// Without cluster support, as Redis 7.0 with `cluster-enabled no`: every CLUSTER subcommand
/// and ASKING answer that support is disabled (after the usual arity checks), an unknown
/// subcommand gets the unknown-subcommand error, and a script may call CLUSTER but not its
/// one `noscript` subcommand, RESET. COMMAND lists the commands as Redis does.
#[test]
fn cluster_and_asking_answer_that_cluster_support_is_disabled() {
    let c = cache();
    let disabled = Frame::error("ERR This instance has cluster support disabled");
    for call in [
        &["CLUSTER", "INFO"][..],
        &["cluster", "help"],
        &["CLUSTER", "KEYSLOT", "k"],
        &["CLUSTER", "RESET", "HARD"],
        &["ASKING"],
    ] {
        assert_eq!(run(&c, call), disabled, "{call:?}");
    }
    for (call, error) in [
        (
            &["CLUSTER"][..],
            "ERR wrong number of arguments for 'cluster' command",
        ),
        (
            &["CLUSTER", "KEYSLOT"],
            "ERR wrong number of arguments for 'cluster|keyslot' command",
        ),
        (
            &["ASKING", "x"],
            "ERR wrong number of arguments for 'asking' command",
        ),
        (
            &["CLUSTER", "nosuch"],
            "ERR unknown subcommand 'nosuch'. Try CLUSTER HELP.",
        ),
    ] {
        assert_eq!(run(&c, call), Frame::error(error), "{call:?}");
    }
    let script = |body: &str| run(&c, &["EVAL", body, "0"]);
    assert_eq!(script("return redis.pcall('cluster', 'info')"), disabled);
    let Frame::Error(refused) = script("return redis.pcall('cluster', 'reset', 'hard')") else {
        panic!("CLUSTER RESET ran in a script");
    };
    assert!(
        refused.starts_with("ERR This Redis command is not allowed from script"),
        "{refused}"
    );
    let Frame::Array(names) = run(&c, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "cl*help"])
    else {
        panic!("COMMAND LIST answers a list");
    };
    assert!(names.contains(&bulk("cluster|help")), "{names:?}");
    assert!(names.contains(&bulk("client|help")), "{names:?}");
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
fn sort_reads_weights_and_values_through_patterns() {
    let c = cache();
    let arr = |items: &[&str]| Frame::Array(items.iter().map(|s| bulk(s)).collect());
    run(&c, &["RPUSH", "ids", "1", "2", "3"]);
    for (id, w, name) in [("1", "30", "one"), ("2", "10", "two"), ("3", "20", "three")] {
        run(&c, &["SET", &format!("w_{id}"), w]);
        run(
            &c,
            &["HSET", &format!("obj_{id}"), "weight", w, "name", name],
        );
    }
    assert_eq!(
        run(&c, &["SORT", "ids", "BY", "w_*"]),
        arr(&["2", "3", "1"])
    );
    assert_eq!(
        run(
            &c,
            &[
                "SORT",
                "ids",
                "BY",
                "obj_*->weight",
                "DESC",
                "GET",
                "#",
                "GET",
                "obj_*->name"
            ]
        ),
        arr(&["1", "one", "3", "three", "2", "two"])
    );
    // A GET without `*` names nothing; a missing key answers nil.
    let got = run(
        &c,
        &[
            "SORT", "ids", "BY", "w_*", "LIMIT", "0", "1", "GET", "const", "GET", "nope_*",
        ],
    );
    assert_eq!(got, Frame::Array(vec![Frame::Null, Frame::Null]));
    // BY a constant keeps the list's order, reversed by DESC, cut by LIMIT.
    assert_eq!(
        run(
            &c,
            &["SORT", "ids", "BY", "nosort", "DESC", "LIMIT", "1", "5"]
        ),
        arr(&["2", "1"])
    );
    // A missing weight sorts as 0; ALPHA BY puts it first.
    run(&c, &["RPUSH", "ids", "4"]);
    assert_eq!(
        run(&c, &["SORT", "ids", "BY", "w_*"]),
        arr(&["4", "2", "3", "1"])
    );
    assert_eq!(
        run(&c, &["SORT", "ids", "BY", "w_*", "ALPHA"]),
        arr(&["4", "2", "3", "1"])
    );
    // STORE with GET stores "" for a missing value.
    assert_eq!(
        run(
            &c,
            &[
                "SORT",
                "ids",
                "BY",
                "w_*",
                "GET",
                "obj_*->name",
                "STORE",
                "names"
            ]
        ),
        Frame::Integer(4)
    );
    assert_eq!(
        run(&c, &["LRANGE", "names", "0", "-1"]),
        arr(&["", "two", "three", "one"])
    );
    // Sorted sets are sorted too, and BY nosort keeps their order.
    run(&c, &["ZADD", "z", "1", "c", "2", "b", "3", "a"]);
    assert_eq!(run(&c, &["SORT", "z", "ALPHA"]), arr(&["a", "b", "c"]));
    assert_eq!(
        run(&c, &["SORT", "z", "BY", "nosort"]),
        arr(&["c", "b", "a"])
    );
    // A weight strtod cannot read whole fails the command.
    run(&c, &["SET", "w_2", "ten"]);
    assert_eq!(
        run(&c, &["SORT", "ids", "BY", "w_*"]),
        Frame::error("ERR One or more scores can't be converted into double")
    );
    assert_eq!(
        run(
            &c,
            &[
                "COMMAND", "GETKEYS", "SORT", "abc", "STORE", "x", "LIMIT", "0", "1", "STORE",
                "def"
            ]
        ),
        arr(&["abc", "def"])
    );
    assert_eq!(
        run(
            &c,
            &[
                "COMMAND",
                "GETKEYS",
                "GEORADIUS",
                "g",
                "1",
                "1",
                "1",
                "km",
                "STOREDIST",
                "d"
            ]
        ),
        arr(&["g", "d"])
    );
    // Key counts and STREAMS locate the keys of the commands that have them.
    let getkeys = |parts: &[&str]| {
        let mut args = vec!["COMMAND", "GETKEYS"];
        args.extend(parts);
        run(&c, &args)
    };
    assert_eq!(
        getkeys(&["ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"]),
        arr(&["dst", "a", "b"])
    );
    assert_eq!(getkeys(&["ZINTER", "2", "a", "b"]), arr(&["a", "b"]));
    assert_eq!(
        getkeys(&["BLMPOP", "0", "2", "a", "b", "LEFT"]),
        arr(&["a", "b"])
    );
    assert_eq!(
        getkeys(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "STREAMS",
            "s1",
            "s2",
            ">",
            ">"
        ]),
        arr(&["s1", "s2"])
    );
    // COMMAND INFO flags the commands whose keys their options locate, and only those.
    let flags = |name: &str| match run(&c, &["COMMAND", "INFO", name]) {
        Frame::Array(entries) => match &entries[0] {
            Frame::Array(entry) => format!("{:?}", entry[2]),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    for name in ["SORT", "SORT_RO", "GEORADIUS", "ZUNIONSTORE", "XREAD"] {
        assert!(
            flags(name).contains("movablekeys"),
            "{name}: {}",
            flags(name)
        );
    }
    for name in ["SET", "GEORADIUS_RO", "LMOVE", "BLPOP", "RENAME"] {
        assert!(
            !flags(name).contains("movablekeys"),
            "{name}: {}",
            flags(name)
        );
    }
}

#[test]
fn command_getkeysandflags_gives_each_keys_flags_from_redis_key_specs() {
    let c = cache();
    let flagged = |pairs: &[(&str, &[&'static str])]| {
        Frame::Array(
            pairs
                .iter()
                .map(|(key, flags)| {
                    Frame::Array(vec![
                        bulk(key),
                        Frame::Set(flags.iter().map(|f| Frame::simple(f)).collect()),
                    ])
                })
                .collect(),
        )
    };
    let call = |parts: &[&str]| {
        let mut args = vec!["COMMAND", "GETKEYSANDFLAGS"];
        args.extend(parts);
        run(&c, &args)
    };
    // The cases of Redis's own introspection-2 unit.
    assert_eq!(
        call(&["SET", "k1", "v1"]),
        flagged(&[("k1", &["OW", "update"])])
    );
    assert_eq!(
        call(&["MSET", "k1", "v1", "k2", "v2"]),
        flagged(&[("k1", &["OW", "update"]), ("k2", &["OW", "update"])])
    );
    assert_eq!(
        call(&["LMOVE", "k1", "k2", "left", "right"]),
        flagged(&[
            ("k1", &["RW", "access", "delete"]),
            ("k2", &["RW", "insert"])
        ])
    );
    assert_eq!(
        call(&["sort", "k1", "store", "k2"]),
        flagged(&[("k1", &["RO", "access"]), ("k2", &["OW", "update"])])
    );
    // Flags that depend on the arguments come from the command's own key finder.
    assert_eq!(
        call(&["SET", "k", "v", "GET"]),
        flagged(&[("k", &["RW", "access", "update"])])
    );
    assert_eq!(
        call(&["BITFIELD", "k", "GET", "u8", "0"]),
        flagged(&[("k", &["RO", "access"])])
    );
    assert_eq!(
        call(&["BITFIELD", "k", "SET", "u8", "0", "1"]),
        flagged(&[("k", &["RW", "access", "update"])])
    );
    // A destination spec before a key count's keys; a subcommand's own spec.
    assert_eq!(
        call(&["ZUNIONSTORE", "d", "2", "a", "b"]),
        flagged(&[
            ("d", &["OW", "update"]),
            ("a", &["RO", "access"]),
            ("b", &["RO", "access"])
        ])
    );
    assert_eq!(call(&["MEMORY", "USAGE", "k"]), flagged(&[("k", &["RO"])]));
    // Redis's errors, and no keys where none are mandatory.
    for (parts, text) in [
        (&["NOSUCH", "a"][..], "ERR Invalid command specified"),
        (
            &["MEMORY", "NOSUCH", "k"][..],
            "ERR Invalid command specified",
        ),
        (&["PING", "x"][..], "ERR The command has no key arguments"),
        (
            &["SPUBLISH", "ch", "m"][..],
            "ERR The command has no key arguments",
        ),
        (
            &["GET", "a", "b"][..],
            "ERR Invalid number of arguments specified for command",
        ),
        (
            &["ZUNIONSTORE", "d", "0", "a"][..],
            "ERR Invalid arguments specified for command",
        ),
        (
            &["ZUNION", "x", "a"][..],
            "ERR Invalid arguments specified for command",
        ),
    ] {
        assert_eq!(call(parts), Frame::error(text), "{parts:?}");
    }
    assert_eq!(call(&["EVAL", "return 1", "0"]), Frame::Array(Vec::new()));
    // GETKEYS gives the same keys without their flags.
    assert_eq!(
        run(&c, &["COMMAND", "GETKEYS", "SET", "k", "v", "GET"]),
        Frame::Array(vec![bulk("k")])
    );
}

#[test]
fn command_info_gives_redis_key_specs() {
    let c = cache();
    let text = |s: &str| bulk(s);
    let int = Frame::Integer;
    let typed = |kind: &str, spec: Vec<(Frame, Frame)>| {
        Frame::Map(vec![
            (text("type"), text(kind)),
            (text("spec"), Frame::Map(spec)),
        ])
    };
    let specs_of = |name: &str| match run(&c, &["COMMAND", "INFO", name]) {
        Frame::Array(entries) => match &entries[0] {
            Frame::Array(info) => info[8].clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let range = |index: i64, flags: &[&'static str]| {
        Frame::Map(vec![
            (
                text("flags"),
                Frame::Set(flags.iter().map(|f| Frame::simple(f)).collect()),
            ),
            (
                text("begin_search"),
                typed("index", vec![(text("index"), int(index))]),
            ),
            (
                text("find_keys"),
                typed(
                    "range",
                    vec![
                        (text("lastkey"), int(0)),
                        (text("keystep"), int(1)),
                        (text("limit"), int(0)),
                    ],
                ),
            ),
        ])
    };
    assert_eq!(
        specs_of("lmove"),
        Frame::Set(vec![
            range(1, &["RW", "access", "delete"]),
            range(2, &["RW", "insert"])
        ])
    );
    // A keyword start and a key count; a command without keys has none.
    assert_eq!(
        specs_of("zunion"),
        Frame::Set(vec![Frame::Map(vec![
            (
                text("flags"),
                Frame::Set(vec![Frame::simple("RO"), Frame::simple("access")])
            ),
            (
                text("begin_search"),
                typed("index", vec![(text("index"), int(1))])
            ),
            (
                text("find_keys"),
                typed(
                    "keynum",
                    vec![
                        (text("keynumidx"), int(0)),
                        (text("firstkey"), int(1)),
                        (text("keystep"), int(1)),
                    ],
                ),
            ),
        ])])
    );
    match specs_of("xread") {
        Frame::Set(specs) => match &specs[0] {
            Frame::Map(fields) => assert_eq!(
                fields[1].1,
                typed(
                    "keyword",
                    vec![
                        (text("keyword"), text("STREAMS")),
                        (text("startfrom"), int(1))
                    ]
                )
            ),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(specs_of("ping"), Frame::Set(Vec::new()));
    // Flags, the key triple and tips as Redis 7.0.15 gives them; a container's subcommands.
    let info_of = |name: &str| match run(&c, &["COMMAND", "INFO", name]) {
        Frame::Array(mut entries) => match entries.remove(0) {
            Frame::Array(info) => info,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let get = info_of("get");
    assert_eq!(
        get[2],
        Frame::Set(vec![Frame::simple("readonly"), Frame::simple("fast")])
    );
    let mset = info_of("mset");
    assert_eq!(&mset[3..6], &[int(1), int(-1), int(2)]);
    let zunion = info_of("zunion");
    assert!(
        matches!(&zunion[2], Frame::Set(f) if f.contains(&Frame::simple("movablekeys"))),
        "{:?}",
        zunion[2]
    );
    assert_eq!(
        info_of("dbsize")[7],
        Frame::Set(vec![
            text("request_policy:all_shards"),
            text("response_policy:agg_sum")
        ])
    );
    let Frame::Array(subs) = &info_of("memory")[9] else {
        panic!("MEMORY has subcommands");
    };
    let usage = subs
        .iter()
        .find_map(|s| match s {
            Frame::Array(e) if e[0] == text("memory|usage") => Some(e.clone()),
            _ => None,
        })
        .expect("memory|usage listed");
    assert_eq!(
        &usage[1..6],
        &[
            int(-3),
            Frame::Set(vec![Frame::simple("readonly")]),
            int(2),
            int(2),
            int(1)
        ]
    );
    assert_eq!(info_of("get")[9], Frame::Set(Vec::new()));
}

#[test]
fn command_docs_give_redis_documentation() {
    let c = cache();
    let text = |s: &str| bulk(s);
    let key_arg = Frame::Map(vec![
        (text("name"), text("key")),
        (text("type"), text("key")),
        (text("key_spec_index"), Frame::Integer(0)),
    ]);
    assert_eq!(
        run(&c, &["COMMAND", "DOCS", "get", "nosuch"]),
        Frame::Map(vec![(
            text("get"),
            Frame::Map(vec![
                (text("summary"), text("Get the value of a key")),
                (text("since"), text("1.0.0")),
                (text("group"), text("string")),
                (text("complexity"), text("O(1)")),
                (text("arguments"), Frame::Array(vec![key_arg.clone()])),
            ])
        )])
    );
    // History, an optional argument with its own version, a subcommand by its full name.
    let Frame::Map(lpop) = run(&c, &["COMMAND", "DOCS", "LPOP"]) else {
        panic!("a map");
    };
    let Frame::Map(fields) = &lpop[0].1 else {
        panic!("a map");
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == text(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        field("history"),
        Some(Frame::Set(vec![Frame::Array(vec![
            text("6.2.0"),
            text("Added the `count` argument.")
        ])]))
    );
    assert_eq!(
        field("arguments"),
        Some(Frame::Array(vec![
            key_arg,
            Frame::Map(vec![
                (text("name"), text("count")),
                (text("type"), text("integer")),
                (text("since"), text("6.2.0")),
                (text("flags"), Frame::Set(vec![Frame::simple("optional")])),
            ])
        ]))
    );
    let Frame::Map(sub) = run(&c, &["COMMAND", "DOCS", "config|get"]) else {
        panic!("a map");
    };
    assert_eq!(sub[0].0, text("config|get"));
    // A container lists its subcommands' documentation.
    let Frame::Map(config) = run(&c, &["COMMAND", "DOCS", "config"]) else {
        panic!("a map");
    };
    let Frame::Map(fields) = &config[0].1 else {
        panic!("a map");
    };
    assert!(
        fields.iter().any(|(k, v)| *k == text("subcommands")
            && matches!(v, Frame::Map(subs) if subs.iter().any(|(n, _)| *n == text("config|set")))),
        "{fields:?}"
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
    let replies = c.execute_atomic(0, &cmds).unwrap();
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

/// One SCAN-family call: the next cursor and the returned items.
fn scan_call(c: &Cache, parts: &[&str]) -> (String, Vec<Bytes>) {
    let Frame::Array(reply) = run(c, parts) else {
        panic!("SCAN replies with an array");
    };
    let [Frame::Bulk(cursor), Frame::Array(items)] = reply.as_slice() else {
        panic!("SCAN replies with a cursor and items: {reply:?}");
    };
    let items = items
        .iter()
        .map(|f| match f {
            Frame::Bulk(b) => b.clone(),
            other => panic!("item {other:?}"),
        })
        .collect();
    (String::from_utf8(cursor.to_vec()).unwrap(), items)
}

/// Runs a whole SCAN-family iteration (`command` then `key` if any); `between` runs after
/// each call with the items it returned. Bounded: an iteration that never ends fails.
fn scan_all(
    c: &Cache,
    command: &[&str],
    mut between: impl FnMut(&[Bytes]),
) -> std::collections::BTreeSet<Bytes> {
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_owned();
    for _ in 0..100_000 {
        let mut parts = command.to_vec();
        parts.extend([cursor.as_str(), "COUNT", "10"]);
        let (next, items) = scan_call(c, &parts);
        between(&items);
        seen.extend(items);
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
    panic!("the iteration did not end");
}

#[test]
fn scan_returns_every_key_present_throughout_despite_deletes_and_growth() {
    let c = cache();
    for i in 0..100 {
        run(&c, &["SET", &format!("k{i}"), "v"]);
    }
    // Deleting each key as it comes back must not make the cursor skip others.
    let seen = scan_all(&c, &["SCAN"], |items| {
        for k in items {
            run(&c, &["DEL", std::str::from_utf8(k).unwrap()]);
        }
    });
    assert_eq!(seen.len(), 100);
    assert_eq!(run(&c, &["DBSIZE"]), Frame::Integer(0));

    // Keys present throughout come back even while inserts grow the tables under the cursor.
    for i in 0..200 {
        run(&c, &["SET", &format!("k{i}"), "v"]);
    }
    let mut added = 0;
    let seen = scan_all(&c, &["SCAN"], |_| {
        for _ in 0..20 {
            run(&c, &["SET", &format!("new{added}"), "v"]);
            added += 1;
        }
    });
    for i in 0..200 {
        assert!(
            seen.contains(format!("k{i}").as_bytes()),
            "k{i} was skipped"
        );
    }
    // MATCH and TYPE filter what a call returns, not what it visits.
    run(&c, &["RPUSH", "list", "x"]);
    let lists = scan_all(&c, &["SCAN"], |_| {});
    assert!(lists.contains(&b"list"[..]));
    let (_, items) = scan_call(&c, &["SCAN", "0", "COUNT", "100000", "TYPE", "list"]);
    assert_eq!(items, vec![Bytes::from_static(b"list")]);
    let (next, items) = scan_call(&c, &["SCAN", "0", "COUNT", "100000", "MATCH", "k1?"]);
    assert_eq!((next.as_str(), items.len()), ("0", 10));
}

#[test]
fn scan_skips_expired_keys_and_randomkey_finds_a_live_one() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let c = Cache::new(CacheConfig::default(), clock.clone());
    assert_eq!(run(&c, &["RANDOMKEY"]), Frame::Null);
    for i in 0..50 {
        run(&c, &["SET", &format!("t{i}"), "v", "PX", "10"]);
    }
    run(&c, &["SET", "live", "v"]);
    clock.advance(std::time::Duration::from_millis(20));
    let seen = scan_all(&c, &["SCAN"], |_| {});
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec![Bytes::from_static(b"live")]
    );
    for _ in 0..20 {
        assert_eq!(run(&c, &["RANDOMKEY"]), bulk("live"));
    }
}

#[test]
fn hscan_and_sscan_return_every_element_despite_deletes() {
    let c = cache();
    for i in 0..300 {
        run(&c, &["HSET", "h", &format!("f{i}"), "v"]);
        run(&c, &["SADD", "s", &format!("m{i}")]);
    }
    let fields = scan_all(&c, &["HSCAN", "h"], |items| {
        for pair in items.chunks(2) {
            run(&c, &["HDEL", "h", std::str::from_utf8(&pair[0]).unwrap()]);
        }
    });
    assert_eq!(fields.iter().filter(|f| f.starts_with(b"f")).count(), 300);
    let members = scan_all(&c, &["SSCAN", "s"], |items| {
        for m in items {
            run(&c, &["SREM", "s", std::str::from_utf8(m).unwrap()]);
        }
    });
    assert_eq!(members.len(), 300);
    assert_eq!(run(&c, &["EXISTS", "h", "s"]), Frame::Integer(0));
}

#[test]
fn transactions_over_maxmemory_are_discarded_before_running() {
    let c = cache();
    assert_eq!(
        run(&c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        Frame::ok()
    );
    assert_eq!(run(&c, &["SET", "a", "b"]), Frame::ok());
    assert_eq!(run(&c, &["CONFIG", "SET", "maxmemory", "1"]), Frame::ok());
    let oom = "OOM command not allowed when used memory > 'maxmemory'.";
    assert_eq!(run(&c, &["SET", "x", "y"]), Frame::error(oom));
    let write: Vec<Vec<Bytes>> = vec![
        vec![Bytes::from("GET"), Bytes::from("a")],
        vec![Bytes::from("SET"), Bytes::from("x"), Bytes::from("y")],
    ];
    // A batch with a write is refused whole, as EXEC is: nothing in it runs.
    assert_eq!(
        c.execute_atomic(0, &write),
        Err(Frame::error(format!(
            "EXECABORT Transaction discarded because of: {oom}"
        )))
    );
    assert_eq!(run(&c, &["EXISTS", "x"]), Frame::Integer(0));
    // Reads and deletes still run.
    let read: Vec<Vec<Bytes>> = vec![
        vec![Bytes::from("GET"), Bytes::from("a")],
        vec![Bytes::from("DEL"), Bytes::from("a")],
    ];
    assert_eq!(
        c.execute_atomic(0, &read),
        Ok(vec![bulk("b"), Frame::Integer(1)])
    );
}

#[test]
fn random_picks_with_repeats_at_max_and_above() {
    use streamcache::cache::{RANDOM_PICKS_MAX, RANDOM_REPLY_BYTES_MAX};
    let c = cache();
    run(&c, &["SADD", "s", "m"]);
    run(&c, &["HSET", "h", "f", "v"]);
    let at = format!("-{RANDOM_PICKS_MAX}");
    let over = format!("-{}", RANDOM_PICKS_MAX + 1);
    let out_of_range = Frame::error("ERR value is out of range");
    let Frame::Array(picks) = run(&c, &["SRANDMEMBER", "s", &at]) else {
        panic!("an array");
    };
    assert_eq!(picks.len(), RANDOM_PICKS_MAX);
    assert_eq!(run(&c, &["SRANDMEMBER", "s", &over]), out_of_range);
    let Frame::Array(picks) = run(&c, &["HRANDFIELD", "h", &at]) else {
        panic!("an array");
    };
    assert_eq!(picks.len(), RANDOM_PICKS_MAX);
    assert_eq!(run(&c, &["HRANDFIELD", "h", &over]), out_of_range);
    assert_eq!(
        run(&c, &["HRANDFIELD", "h", &over, "WITHVALUES"]),
        out_of_range
    );

    // The reply, counted at 16 bytes of framing per element, stops at RANDOM_REPLY_BYTES_MAX.
    let per_pick = RANDOM_REPLY_BYTES_MAX / RANDOM_PICKS_MAX;
    let fits = "a".repeat(per_pick - 16);
    let too_big = "b".repeat(per_pick - 15);
    run(&c, &["SADD", "fits", &fits]);
    run(&c, &["SADD", "big", &too_big]);
    let Frame::Array(picks) = run(&c, &["SRANDMEMBER", "fits", &at]) else {
        panic!("an array");
    };
    assert_eq!(picks.len(), RANDOM_PICKS_MAX);
    assert_eq!(
        run(&c, &["SRANDMEMBER", "big", &at]),
        Frame::error(format!(
            "ERR reply would exceed {RANDOM_REPLY_BYTES_MAX} bytes"
        ))
    );
}

#[test]
fn getrange_clamps_a_negative_end_and_expiretime_rounds() {
    let c = cache();
    run(&c, &["SET", "s", "hello"]);
    // Replies of redis-server 7.0.15.
    for (start, end, want) in [
        ("0", "-10", "h"),
        ("0", "-6", "h"),
        ("-10", "-10", "h"),
        ("-100", "-3", "hel"),
        ("3", "-10", ""),
        ("-1", "-10", ""),
        ("5", "10", ""),
        ("-3", "-1", "llo"),
    ] {
        assert_eq!(
            run(&c, &["GETRANGE", "s", start, end]),
            bulk(want),
            "{start} {end}"
        );
    }
    run(&c, &["PEXPIREAT", "s", "1900000000499"]);
    assert_eq!(run(&c, &["EXPIRETIME", "s"]), Frame::Integer(1_900_000_000));
    run(&c, &["PEXPIREAT", "s", "1900000000500"]);
    assert_eq!(run(&c, &["EXPIRETIME", "s"]), Frame::Integer(1_900_000_001));
    assert_eq!(
        run(&c, &["PEXPIRETIME", "s"]),
        Frame::Integer(1_900_000_000_500)
    );
}

/// INFO's `keyspace_hits`/`keyspace_misses` of a cache.
fn hits_and_misses(c: &Cache) -> (u64, u64) {
    let Frame::Verbatim(text) = run(c, &["INFO", "stats"]) else {
        panic!("INFO answers text");
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .expect("field present")
    };
    (field("keyspace_hits:"), field("keyspace_misses:"))
}

/// As Redis's `lookupKeyRead`: each key a read command looks up counts as a hit or a miss
/// (a lazily expired key is a miss); writes' lookups do not count; CONFIG RESETSTAT zeroes them.
#[test]
fn info_counts_keyspace_hits_and_misses_of_reads() {
    let clock = ManualClock::shared(1_000_000);
    let c = Cache::new(CacheConfig::default(), clock.clone());
    assert_eq!(hits_and_misses(&c), (0, 0));
    run(&c, &["GET", "a"]);
    run(&c, &["SET", "a", "1"]);
    run(&c, &["INCR", "a"]);
    run(&c, &["GET", "a"]);
    run(&c, &["MGET", "a", "b"]);
    run(&c, &["EXISTS", "a"]);
    run(&c, &["TYPE", "nosuch"]);
    run(&c, &["HGET", "h", "f"]);
    run(&c, &["SET", "t", "v", "PX", "10"]);
    clock.advance(std::time::Duration::from_millis(20));
    run(&c, &["GET", "t"]);
    assert_eq!(hits_and_misses(&c), (3, 5));
    assert_eq!(run(&c, &["CONFIG", "RESETSTAT"]), Frame::ok());
    assert_eq!(hits_and_misses(&c), (0, 0));
    run(&c, &["GET", "a"]);
    assert_eq!(hits_and_misses(&c), (1, 0));
}

// ---- CONFIG over Redis 7.0.15's table of parameters: every name Redis knows and no other,
// immutable and protected ones refused, hidden ones read only by their exact name, both names
// of an aliased parameter, values checked by their type, a multi-parameter SET all or nothing.

/// CONFIG GET's reply as (name, value) pairs.
fn config_get(c: &Cache, names: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["CONFIG", "GET"];
    args.extend_from_slice(names);
    let Frame::Map(pairs) = run(c, &args) else {
        panic!("expected a map")
    };
    let text = |f: &Frame| match f {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    pairs.iter().map(|(k, v)| (text(k), text(v))).collect()
}

fn config_value(c: &Cache, name: &str) -> Option<String> {
    config_get(c, &[name]).into_iter().next().map(|(_, v)| v)
}

#[test]
fn only_redis_parameters_exist() {
    let c = cache();
    assert_eq!(
        run(&c, &["CONFIG", "SET", "no-such-parameter", "1"]),
        Frame::error(
            "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-parameter'"
        )
    );
    assert!(config_get(&c, &["no-such-parameter"]).is_empty());
    // Redis's defaults for what this cache only stores.
    assert_eq!(config_value(&c, "loglevel").as_deref(), Some("notice"));
    assert_eq!(config_value(&c, "tcp-keepalive").as_deref(), Some("300"));
    // Every name `*` lists is one CONFIG GET also reads by name.
    let all = config_get(&c, &["*"]);
    assert!(all.len() > 150, "{}", all.len());
    for (name, v) in &all {
        assert_eq!(config_value(&c, name).as_ref(), Some(v), "{name}");
    }
}

#[test]
fn immutable_and_protected_parameters_are_refused() {
    let c = cache();
    assert_eq!(
        run(&c, &["CONFIG", "SET", "daemonize", "yes"]),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"
        )
    );
    assert_eq!(
        run(&c, &["CONFIG", "SET", "dir", "/tmp"]),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
        )
    );
    assert_eq!(config_value(&c, "daemonize").as_deref(), Some("no"));
}

#[test]
fn hidden_parameters_need_their_exact_name_and_aliases_show_both_names() {
    let c = cache();
    assert!(
        !config_get(&c, &["*"])
            .iter()
            .any(|(k, _)| k == "key-load-delay")
    );
    assert_eq!(
        config_get(&c, &["key-load-delay"]),
        vec![("key-load-delay".to_owned(), "0".to_owned())]
    );
    let names: Vec<String> = config_get(&c, &["maxmemory", "maxmemory*", "*of"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for want in ["maxmemory", "maxmemory-clients", "slaveof", "replicaof"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicates in {names:?}");
    // A name given again in another case is answered once, under its first spelling, as
    // Redis's case-insensitive dict of matches keeps it (it had been answered twice).
    assert_eq!(
        config_get(&c, &["MaxMemory", "maxmemory", "MAXMEMORY*"]),
        vec![
            ("MaxMemory".to_owned(), "0".to_owned()),
            ("maxmemory-clients".to_owned(), "0".to_owned()),
            ("maxmemory-eviction-tenacity".to_owned(), "10".to_owned()),
            ("maxmemory-policy".to_owned(), "noeviction".to_owned()),
            ("maxmemory-samples".to_owned(), "5".to_owned()),
        ]
    );
    // An alias set under one name reads back under both.
    assert_eq!(
        run(&c, &["CONFIG", "SET", "hash-max-ziplist-entries", "100"]),
        Frame::ok()
    );
    assert_eq!(
        config_value(&c, "hash-max-listpack-entries").as_deref(),
        Some("100")
    );
}

#[test]
fn values_are_checked_by_type_at_the_bounds() {
    let c = cache();
    let set = |name: &str, v: &str| run(&c, &["CONFIG", "SET", name, v]);
    let refused = |name: &str, reason: &str| {
        Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
        ))
    };
    assert_eq!(set("protected-mode", "NO"), Frame::ok());
    assert_eq!(config_value(&c, "protected-mode").as_deref(), Some("no"));
    assert_eq!(
        set("protected-mode", "maybe"),
        refused("protected-mode", "argument must be 'yes' or 'no'")
    );
    assert_eq!(set("loglevel", "WARNING"), Frame::ok());
    assert_eq!(config_value(&c, "loglevel").as_deref(), Some("warning"));
    assert_eq!(
        set("loglevel", "loud"),
        refused(
            "loglevel",
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        )
    );
    // tcp-keepalive: 0 ..= INT_MAX.
    assert_eq!(set("tcp-keepalive", "2147483647"), Frame::ok());
    assert_eq!(
        set("tcp-keepalive", "2147483648"),
        refused(
            "tcp-keepalive",
            "argument must be between 0 and 2147483647 inclusive"
        )
    );
    assert_eq!(set("tcp-keepalive", "0"), Frame::ok());
    assert_eq!(
        set("tcp-keepalive", "-1"),
        refused(
            "tcp-keepalive",
            "argument must be between 0 and 2147483647 inclusive"
        )
    );
    // maxmemory-clients: bytes, or a percentage of at most 100.
    assert_eq!(set("maxmemory-clients", "100%"), Frame::ok());
    assert_eq!(
        config_value(&c, "maxmemory-clients").as_deref(),
        Some("100%")
    );
    assert_eq!(
        set("maxmemory-clients", "101%"),
        refused(
            "maxmemory-clients",
            "percentage argument must be less or equal to 100"
        )
    );
    assert_eq!(set("maxmemory-clients", "2mb"), Frame::ok());
    assert_eq!(
        config_value(&c, "maxmemory-clients").as_deref(),
        Some("2097152")
    );
}

/// HELP of the container commands as Redis's `addReplyHelp` writes it (header, Redis's lines for
/// the subcommands answered here, then `HELP` and `    Prints this help.`); CONFIG HELP had been
/// its header alone, OBJECT HELP names without their descriptions, MEMORY HELP and COMMAND HELP
/// unknown subcommands, XINFO's and XGROUP's last line `Print this help.`.
#[test]
fn help_replies_and_memory_and_swapdb_errors_are_redis() {
    let c = cache();
    let lines = |parts: &[&str]| -> Vec<String> {
        let Frame::Array(items) = run(&c, parts) else {
            panic!("{parts:?} answers an array");
        };
        items
            .into_iter()
            .map(|f| match f {
                Frame::Simple(s) => s.into_owned(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    for (command, first, count) in [
        ("CONFIG", "GET <pattern>", 11),
        ("OBJECT", "ENCODING <key>", 15),
        ("MEMORY", "MALLOC-STATS", 10),
        ("COMMAND", "(no subcommand)", 21),
        ("XINFO", "CONSUMERS <key> <groupname>", 9),
        ("XGROUP", "CREATE <key> <groupname> <id|$> [option]", 17),
    ] {
        let got = lines(&[command, "HELP"]);
        assert_eq!(
            got[0],
            format!("{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(got[1], first, "{command}");
        assert_eq!(got[got.len() - 2..], ["HELP", "    Prints this help."]);
        assert_eq!(got.len(), count, "{command}: {got:?}");
    }
    assert_eq!(
        lines(&["OBJECT", "HELP"])[2],
        "    Return the kind of internal representation used in order to store the value"
    );

    // MEMORY: SAMPLES is checked before the key is looked up; PURGE and MALLOC-STATS answer.
    let syntax = Frame::error("ERR syntax error");
    run(&c, &["SET", "k", "v"]);
    for bad in [
        &["MEMORY", "USAGE", "k", "SAMPLES"][..],
        &["MEMORY", "USAGE", "k", "SAMPLES", "-1"],
        &["MEMORY", "USAGE", "nokey", "SAMPLES", "-1"],
        &["MEMORY", "USAGE", "k", "FOO", "1"],
    ] {
        assert_eq!(run(&c, bad), syntax, "{bad:?}");
    }
    assert_eq!(
        run(&c, &["MEMORY", "USAGE", "k", "SAMPLES", "x"]),
        Frame::error("ERR value is not an integer or out of range")
    );
    assert!(matches!(
        run(
            &c,
            &["MEMORY", "USAGE", "k", "SAMPLES", "0", "SAMPLES", "3"]
        ),
        Frame::Integer(_)
    ));
    assert_eq!(
        run(&c, &["MEMORY", "USAGE", "nokey", "SAMPLES", "5"]),
        Frame::Null
    );
    assert_eq!(run(&c, &["MEMORY", "PURGE"]), Frame::ok());
    assert_eq!(
        run(&c, &["MEMORY", "MALLOC-STATS"]),
        bulk("Stats not supported for the current allocator")
    );

    // SWAPDB: a non-integer index is named; one out of range is DB index is out of range.
    let out_of_range = Frame::error("ERR DB index is out of range");
    assert_eq!(run(&c, &["SWAPDB", "0", "16"]), out_of_range);
    assert_eq!(run(&c, &["SWAPDB", "-1", "0"]), out_of_range);
    assert_eq!(
        run(&c, &["SWAPDB", "16", "x"]),
        Frame::error("ERR invalid second DB index")
    );
    assert_eq!(
        run(&c, &["SWAPDB", "x", "0"]),
        Frame::error("ERR invalid first DB index")
    );
    assert_eq!(
        run(&c, &["SWAPDB", "0", "2147483648"]),
        Frame::error("ERR invalid second DB index")
    );
    assert_eq!(run(&c, &["SWAPDB", "0", "15"]), Frame::ok());
}

/// Parameters with a live effect are checked against Redis's range for them too: a
/// `client-query-buffer-limit` or `proto-max-bulk-len` under 1 MiB had been taken, and the
/// next request of every client (even PING) was then refused or closed.
#[test]
fn live_parameters_are_checked_against_redis_ranges() {
    let c = cache();
    let set = |name: &str, v: &str| run(&c, &["CONFIG", "SET", name, v]);
    let refused = |name: &str, reason: &str| {
        Frame::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
        ))
    };
    let at_least_1mb = "argument must be between 1048576 and 9223372036854775807 inclusive";
    for name in ["proto-max-bulk-len", "client-query-buffer-limit"] {
        assert_eq!(set(name, "1048575"), refused(name, at_least_1mb));
        assert_eq!(set(name, "1"), refused(name, at_least_1mb));
        assert_eq!(set(name, "1mb"), Frame::ok());
        assert_eq!(config_value(&c, name).as_deref(), Some("1048576"));
    }
    assert_eq!(run(&c, &["PING"]), Frame::simple("PONG"));
    assert_eq!(
        set("hll-sparse-max-bytes", "-1"),
        refused("hll-sparse-max-bytes", "argument must be a memory value")
    );
    // An integer parameter takes no unit, through its alias too.
    assert_eq!(
        set("zset-max-ziplist-entries", "1k"),
        refused(
            "zset-max-listpack-entries",
            "argument couldn't be parsed into an integer"
        )
    );
    assert_eq!(set("zset-max-listpack-value", "1k"), Frame::ok());
    assert_eq!(
        config_value(&c, "zset-max-ziplist-value").as_deref(),
        Some("1000")
    );
    assert_eq!(set("maxmemory", "10mb"), Frame::ok());
    assert_eq!(config_value(&c, "maxmemory").as_deref(), Some("10485760"));
    assert_eq!(set("maxmemory", "0"), Frame::ok());
    assert_eq!(
        set("maxmemory-policy", "most-recent"),
        refused(
            "maxmemory-policy",
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction, allkeys-sieve"
        )
    );
    // hz is a hint, kept within 1..=500 (Redis's CONFIG_MIN_HZ and CONFIG_MAX_HZ).
    for (given, kept) in [("0", "1"), ("1", "1"), ("500", "500"), ("501", "500")] {
        assert_eq!(set("hz", given), Frame::ok());
        assert_eq!(config_value(&c, "hz").as_deref(), Some(kept));
    }
    assert_eq!(
        set("hz", "-1"),
        refused("hz", "argument must be between 0 and 2147483647 inclusive")
    );
}

/// `save` is checked as Redis's `setConfigSaveOption` checks it and read back in its form; any
/// text had been taken and read back as given.
#[test]
fn save_takes_second_and_change_pairs_as_redis() {
    let c = cache();
    let set = |v: &str| run(&c, &["CONFIG", "SET", "save", v]);
    let invalid = Frame::error(
        "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters",
    );
    for bad in [
        "100",
        "100 x",
        "0 1",
        "1 -1",
        "  100   2 ",
        "1 2 3",
        "+ 1",
        "1 2x",
    ] {
        assert_eq!(set(bad), invalid, "{bad:?}");
    }
    for (given, read) in [
        ("3600 1 300 100", "3600 1 300 100"),
        ("+5 3", "5 3"),
        ("\t5 -0", "5 0"),
        ("1 4294967297", "1 1"),
        ("99999999999999999999 1", "9223372036854775807 1"),
        ("", ""),
    ] {
        assert_eq!(set(given), Frame::ok(), "{given:?}");
        assert_eq!(config_value(&c, "save").as_deref(), Some(read), "{given:?}");
    }
}

#[test]
fn a_multi_parameter_set_changes_all_or_nothing() {
    let c = cache();
    assert_eq!(
        run(&c, &["CONFIG", "SET", "maxmemory", "10000002"]),
        Frame::ok()
    );
    assert_eq!(
        run(
            &c,
            &[
                "CONFIG",
                "SET",
                "maxmemory",
                "10000001",
                "maxmemory-clients",
                "200%",
                "client-query-buffer-limit",
                "invalid",
            ]
        ),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"
        )
    );
    assert_eq!(config_value(&c, "maxmemory").as_deref(), Some("10000002"));
    assert_eq!(config_value(&c, "maxmemory-clients").as_deref(), Some("0"));
    // A name fault comes before any value is looked at.
    assert_eq!(
        run(
            &c,
            &["CONFIG", "SET", "maxmemory", "oops", "daemonize", "yes"]
        ),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"
        )
    );
    assert_eq!(
        run(&c, &["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"]),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"
        )
    );
}

// ---- COMMAND LIST and COMMAND INFO's ACL categories, as Redis 7.0.15.

fn names(f: Frame) -> Vec<String> {
    let Frame::Array(items) = f else {
        panic!("expected an array, got {f:?}")
    };
    items
        .iter()
        .map(|i| match i {
            Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn command_list_names_subcommands_and_filters() {
    let c = cache();
    let all = names(run(&c, &["COMMAND", "LIST"]));
    for want in [
        "set",
        "client|list",
        "config|get",
        "script|kill",
        "function|stats",
    ] {
        assert!(all.iter().any(|n| n == want), "{want}");
    }
    assert_eq!(
        names(run(&c, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "set"])),
        ["set"]
    );
    let config = names(run(
        &c,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "config|*re*"],
    ));
    assert_eq!(config, ["config|resetstat", "config|rewrite"]);
    let scripting = names(run(
        &c,
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting"],
    ));
    assert!(scripting.iter().any(|n| n == "eval"));
    assert!(scripting.iter().any(|n| n == "script|kill"));
    assert!(!scripting.iter().any(|n| n == "set"));
    assert!(
        names(run(
            &c,
            &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nothing"]
        ))
        .is_empty()
    );
    assert!(names(run(&c, &["COMMAND", "LIST", "FILTERBY", "MODULE", "m"])).is_empty());
    for bad in [
        &["COMMAND", "LIST", "bad_arg"][..],
        &["COMMAND", "LIST", "FILTERBY", "bad_arg"],
        &["COMMAND", "LIST", "FILTERBY", "bad_arg", "bad_arg2"],
    ] {
        assert_eq!(run(&c, bad), Frame::error("ERR syntax error"), "{bad:?}");
    }
}

#[test]
fn command_info_gives_redis_acl_categories() {
    let c = cache();
    let Frame::Array(infos) = run(&c, &["COMMAND", "INFO", "get", "set"]) else {
        panic!("expected an array")
    };
    let categories: Vec<Frame> = infos
        .iter()
        .map(|info| match info {
            Frame::Array(fields) => fields[6].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        categories,
        [
            Frame::Set(vec![
                Frame::simple("@read"),
                Frame::simple("@string"),
                Frame::simple("@fast")
            ]),
            Frame::Set(vec![
                Frame::simple("@write"),
                Frame::simple("@string"),
                Frame::simple("@slow")
            ]),
        ]
    );
}

/// LCS's table of (|a| + 1) × (|b| + 1) u32 may be as large as proto-max-bulk-len, as Redis
/// checks it, and no larger; with an empty string there is no table to build at all.
#[test]
fn lcs_table_is_held_to_proto_max_bulk_len() {
    let c = cache();
    run(&c, &["CONFIG", "SET", "proto-max-bulk-len", "1mb"]);
    // 2 × (b + 1) × 4 bytes = 1 MiB exactly at b = 131 071.
    let at_max = "x".repeat(131_071);
    run(&c, &["SET", "a", "x"]);
    run(&c, &["SET", "b", &at_max]);
    assert_eq!(run(&c, &["LCS", "a", "b", "LEN"]), Frame::Integer(1));
    run(&c, &["APPEND", "b", "x"]);
    assert_eq!(
        run(&c, &["LCS", "a", "b", "LEN"]),
        Frame::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        )
    );
    // An empty (missing) string needs no table, however long the other.
    assert_eq!(run(&c, &["LCS", "missing", "b"]), bulk(""));
    assert_eq!(run(&c, &["LCS", "b", "missing", "LEN"]), Frame::Integer(0));
}

/// Counts a client controls are held inside i64: a consumer group read from ENTRIESREAD's
/// largest value keeps counting at the top instead of wrapping; COMMAND GETKEYS with a numkeys
/// past the arguments answers without overflowing.
#[test]
fn huge_client_counts_do_not_overflow() {
    let c = cache();
    run(&c, &["XADD", "s", "1-0", "f", "v"]);
    let max = i64::MAX.to_string();
    assert_eq!(
        run(
            &c,
            &["XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", &max]
        ),
        Frame::ok()
    );
    let Frame::Array(read) = run(&c, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"])
    else {
        panic!("XREADGROUP answers an array");
    };
    assert_eq!(read.len(), 1);
    let Frame::Array(groups) = run(&c, &["XINFO", "GROUPS", "s"]) else {
        panic!("XINFO GROUPS answers an array");
    };
    let Some(Frame::Map(g)) = groups.first() else {
        panic!("one group: {groups:?}");
    };
    let field = |name: &str| {
        g.iter()
            .find(|(k, _)| *k == bulk(name))
            .map(|(_, v)| v.clone())
    };
    // The read count stays at the top, and the lag is Redis's difference, negative here.
    assert_eq!(field("entries-read"), Some(Frame::Integer(i64::MAX)));
    assert_eq!(field("lag"), Some(Frame::Integer(1 - i64::MAX)));

    // EVAL may name no keys (an empty list); ZUNION must name some (Redis's error).
    let huge = i64::MAX.to_string();
    assert_eq!(
        run(&c, &["COMMAND", "GETKEYS", "EVAL", "return 1", &huge]),
        Frame::Array(Vec::new())
    );
    assert_eq!(
        run(&c, &["COMMAND", "GETKEYS", "ZUNION", &huge, "a", "b"]),
        Frame::error("ERR Invalid arguments specified for command")
    );
}

/// Redis looks a key up before it reads some arguments, and answers by what it finds: LINDEX
/// and LSET (`lindexCommand`, `lsetCommand`), GETEX's expire time (`getexCommand`, after the
/// options' syntax); LCS names its own type error. Each reply below is redis-server 7.0.15's.
#[test]
fn the_key_is_looked_up_before_arguments_redis_reads_later() {
    let c = cache();
    let not_int = Frame::error("ERR value is not an integer or out of range");
    let wrongtype =
        Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(run(&c, &["SADD", "s", "m"]), Frame::Integer(1));
    assert_eq!(run(&c, &["RPUSH", "l", "a"]), Frame::Integer(1));
    assert_eq!(run(&c, &["SET", "str", "abc"]), Frame::ok());

    assert_eq!(run(&c, &["LINDEX", "missing", "x"]), Frame::Null);
    assert_eq!(run(&c, &["LINDEX", "s", "x"]), wrongtype);
    assert_eq!(run(&c, &["LINDEX", "l", "x"]), not_int);
    assert_eq!(
        run(&c, &["LSET", "missing", "x", "v"]),
        Frame::error("ERR no such key")
    );
    assert_eq!(run(&c, &["LSET", "s", "x", "v"]), wrongtype);
    assert_eq!(run(&c, &["LSET", "l", "x", "v"]), not_int);

    assert_eq!(run(&c, &["GETEX", "missing", "PX", "soon"]), Frame::Null);
    assert_eq!(run(&c, &["GETEX", "missing", "PX", "0"]), Frame::Null);
    assert_eq!(run(&c, &["GETEX", "s", "EX", "soon"]), wrongtype);
    assert_eq!(run(&c, &["GETEX", "str", "EX", "soon"]), not_int);
    assert_eq!(
        run(&c, &["GETEX", "str", "EX", "0"]),
        Frame::error("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(
        run(&c, &["GETEX", "missing", "EX", "1", "PERSIST"]),
        Frame::error("ERR syntax error")
    );
    assert_eq!(run(&c, &["GETEX", "str", "EX", "10"]), bulk("abc"));
    assert_eq!(run(&c, &["TTL", "str"]), Frame::Integer(10));

    let lcs_type = Frame::error("ERR The specified keys must contain string values");
    assert_eq!(run(&c, &["LCS", "s", "str"]), lcs_type);
    assert_eq!(run(&c, &["LCS", "missing", "l", "BOGUS"]), lcs_type);
    assert_eq!(run(&c, &["LCS", "str", "missing"]), bulk(""));
}

/// Stream IDs are read with `string2ull`, which falls back on C's `strtoull`: leading white
/// space and a `+` are taken; a score range bound is read by `strtod` over a C string, which
/// ends at its first NUL. Each reply below is redis-server 7.0.15's.
#[test]
fn stream_ids_and_score_bounds_are_read_as_c_reads_them() {
    let c = cache();
    assert_eq!(run(&c, &["XADD", "x", " 1", "f", "v"]), bulk("1-0"));
    assert_eq!(run(&c, &["XADD", "x", "+2-\t3", "f", "v"]), bulk("2-3"));
    assert_eq!(run(&c, &["XADD", "x", "003-01", "f", "v"]), bulk("3-1"));
    let invalid = Frame::error("ERR Invalid stream ID specified as stream command argument");
    for id in ["4 ", "+", " ", "x4", "18446744073709551616"] {
        assert_eq!(run(&c, &["XADD", "x", id, "f", "v"]), invalid, "{id:?}");
    }
    assert_eq!(run(&c, &["XLEN", "x"]), Frame::Integer(3));

    assert_eq!(
        run(&c, &["ZADD", "z", "0", "a", "1", "b", "2", "c"]),
        Frame::Integer(3)
    );
    assert_eq!(
        run(&c, &["ZRANGEBYSCORE", "z", "1\0x", "\0"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        run(&c, &["ZRANGEBYSCORE", "z", "\0", "1\0x"]),
        Frame::Array(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(
        run(&c, &["ZCOUNT", "z", " (0", "+inf"]),
        Frame::error("ERR min or max is not a float")
    );
    assert_eq!(run(&c, &["ZCOUNT", "z", "( 0", "+inf"]), Frame::Integer(2));
}

/// Which of several bad arguments Redis names first, and with which text: EXPIRE reads its
/// flags before its time, LPOS an option's name before its value (COUNT and MAXLEN with their
/// own texts), LPOP/RPOP/SPOP's count has one text for a negative number and for none, and a
/// `numkeys` above the arguments given is a syntax error. Each reply below is redis-server
/// 7.0.15's.
#[test]
fn bad_arguments_are_named_in_redis_order() {
    let c = cache();
    let not_int = Frame::error("ERR value is not an integer or out of range");
    let syntax = Frame::error("ERR syntax error");
    let positive = Frame::error("ERR value is out of range, must be positive");
    assert_eq!(run(&c, &["RPUSH", "l", "a", "b", "a"]), Frame::Integer(3));
    assert_eq!(run(&c, &["SADD", "s", "m"]), Frame::Integer(1));

    assert_eq!(
        run(&c, &["EXPIRE", "k", "soon", "bad"]),
        Frame::error("ERR Unsupported option bad")
    );
    assert_eq!(
        run(&c, &["PEXPIRE", "k", "soon", "NX", "XX"]),
        Frame::error("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(run(&c, &["EXPIRE", "k", "soon", "NX"]), not_int);

    assert_eq!(run(&c, &["LPOS", "l", "a", "k2", "x"]), syntax);
    assert_eq!(run(&c, &["LPOS", "l", "a", "RANK"]), syntax);
    assert_eq!(run(&c, &["LPOS", "l", "a", "RANK", "x"]), not_int);
    assert_eq!(
        run(&c, &["LPOS", "l", "a", "COUNT", "x"]),
        Frame::error("ERR COUNT can't be negative")
    );
    assert_eq!(
        run(&c, &["LPOS", "l", "a", "MAXLEN", "-1"]),
        Frame::error("ERR MAXLEN can't be negative")
    );
    assert_eq!(
        run(&c, &["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "2"]),
        Frame::Array(vec![Frame::Integer(0)])
    );

    for cmd in ["LPOP", "RPOP", "SPOP"] {
        assert_eq!(run(&c, &[cmd, "missing", "x"]), positive, "{cmd}");
        assert_eq!(run(&c, &[cmd, "missing", "-1"]), positive, "{cmd}");
    }
    assert_eq!(run(&c, &["LPOP", "l", "1"]), Frame::Array(vec![bulk("a")]));

    for cmd in [
        &["ZUNION", "9223372036854775807", "a"][..],
        &["ZINTERCARD", "3", "a", "b"],
        &["ZUNIONSTORE", "d", "2", "a"],
        &["ZMPOP", "2", "a", "MIN"],
        &["ZMPOP", "9223372036854775807", "a", "MIN"],
    ] {
        assert_eq!(run(&c, cmd), syntax, "{cmd:?}");
    }
    assert_eq!(run(&c, &["ZMPOP", "1", "a", "MIN"]), Frame::NullArray);
}

/// ZINCRBY reads its increment for ZADD's flags first (`zaddGenericCommand` serves both), and
/// EXPIRE names an unknown option as a C string, up to a NUL. Each reply below is
/// redis-server 7.0.15's.
#[test]
fn zincrby_flags_and_option_names_as_redis_reads_them() {
    let c = cache();
    for flag in ["NX", "xx", "CH", "INCR", "GT", "lt"] {
        assert_eq!(
            run(&c, &["ZINCRBY", "z", flag, "m"]),
            Frame::error("ERR syntax error"),
            "{flag}"
        );
    }
    assert_eq!(
        run(&c, &["ZINCRBY", "z", "x", "m"]),
        Frame::error("ERR value is not a valid float")
    );
    assert_eq!(run(&c, &["ZINCRBY", "z", "2", "m"]), Frame::Double(2.0));
    assert_eq!(
        run(&c, &["EXPIRE", "k", "1", "a\0b"]),
        Frame::error("ERR Unsupported option a")
    );
}

/// SET checks its options' syntax before it reads the expire time, then the time, then (with
/// GET) the old value's type, as Redis's `setCommand`. Each reply below is redis-server
/// 7.0.15's.
#[test]
fn set_checks_syntax_then_the_time_then_the_old_value() {
    let c = cache();
    assert_eq!(run(&c, &["SADD", "s", "m"]), Frame::Integer(1));
    assert_eq!(
        run(&c, &["SET", "k", "v", "PX", "soon", "46"]),
        Frame::error("ERR syntax error")
    );
    assert_eq!(
        run(&c, &["SET", "k", "v", "EX", "1", "KEEPTTL"]),
        Frame::error("ERR syntax error")
    );
    assert_eq!(
        run(&c, &["SET", "s", "v", "GET", "PX", "soon"]),
        Frame::error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        run(&c, &["SET", "s", "v", "GET", "EX", "0"]),
        Frame::error("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        run(&c, &["SET", "s", "v", "GET", "EX", "5"]),
        Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(run(&c, &["SET", "k", "v", "EX", "5"]), Frame::ok());
    assert_eq!(run(&c, &["TTL", "k"]), Frame::Integer(5));
}

/// SCAN-family cursors are read as Redis 7.0 reads them with `strtoul` (a sign, a negative
/// one wrapping, the empty string 0; no space, no overflow), and an intset or a listpack hash
/// is answered whole with cursor 0, in its own order, whatever the cursor and COUNT. Replies
/// are `redis-server` 7.0.15's for the same commands.
#[test]
fn scan_cursors_read_as_strtoul_and_compact_collections_answer_whole() {
    let c = cache();
    let page = |items: &[&str]| {
        Frame::Array(vec![
            bulk("0"),
            Frame::Array(items.iter().map(|s| bulk(s)).collect()),
        ])
    };
    run(&c, &["SADD", "s", "3", "1", "-2", "10"]);
    run(&c, &["HSET", "h", "z", "1", "a", "2", "m", "3"]);
    let ints = page(&["-2", "1", "3", "10"]);
    let fields = page(&["z", "1", "a", "2", "m", "3"]);
    assert_eq!(run(&c, &["SSCAN", "s", "0", "COUNT", "1"]), ints);
    assert_eq!(run(&c, &["SSCAN", "s", "-1"]), ints);
    assert_eq!(run(&c, &["SSCAN", "s", ""]), ints);
    assert_eq!(
        run(&c, &["SSCAN", "s", "+0", "MATCH", "1*"]),
        page(&["1", "10"])
    );
    assert_eq!(run(&c, &["HSCAN", "h", "0", "COUNT", "1"]), fields);
    assert_eq!(run(&c, &["HSCAN", "h", "18446744073709551615"]), fields);
    for cursor in ["-", " 1", "18446744073709551616", "0x1"] {
        assert_eq!(
            run(&c, &["SCAN", cursor]),
            Frame::error("ERR invalid cursor"),
            "{cursor:?}"
        );
    }
}

/// OBJECT REFCOUNT of a string Redis 7.0 stores as one of its shared integers (an `int` from 0
/// to 9999, unless maxmemory is set under an LRU or LFU policy) is `INT_MAX`
/// (`OBJ_SHARED_REFCOUNT`); anything else is 1. Replies are `redis-server` 7.0.15's.
#[test]
fn object_refcount_of_a_shared_integer_is_int_max() {
    let c = cache();
    let shared = Frame::Integer(2_147_483_647);
    let refcount = |key: &str| run(&c, &["OBJECT", "REFCOUNT", key]);
    for (key, value) in [("a", "0"), ("b", "9999"), ("c", "10000"), ("d", "-1")] {
        run(&c, &["SET", key, value]);
    }
    run(&c, &["INCR", "e"]);
    run(&c, &["APPEND", "f", "12"]);
    run(&c, &["SET", "g", "1"]);
    run(&c, &["APPEND", "g", "2"]);
    run(&c, &["RPUSH", "l", "1"]);
    for (key, want) in [
        ("a", &shared),
        ("b", &shared),
        ("c", &Frame::Integer(1)),
        ("d", &Frame::Integer(1)),
        ("e", &shared),
        ("f", &shared),
        ("g", &Frame::Integer(1)),
        ("l", &Frame::Integer(1)),
    ] {
        assert_eq!(&refcount(key), want, "{key}");
    }
    run(&c, &["CONFIG", "SET", "maxmemory", "100mb"]);
    run(&c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    run(&c, &["SET", "h", "5"]);
    assert_eq!(refcount("h"), Frame::Integer(1));
    run(&c, &["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]);
    run(&c, &["SET", "i", "5"]);
    assert_eq!(refcount("i"), shared);
    run(&c, &["CONFIG", "SET", "maxmemory", "0"]);
    run(&c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    run(&c, &["SET", "j", "5"]);
    assert_eq!(refcount("j"), shared);
}

/// Members of an intset come out in ascending order, as Redis iterates one: SMEMBERS, and the
/// SINTER, SUNION and SDIFF replies built from or walking one (replies taken from
/// redis-server 7.0.15).
#[test]
fn intset_members_are_answered_in_ascending_order() {
    let c = cache();
    let set = |items: &[&str]| Frame::Set(items.iter().map(|s| bulk(s)).collect());
    run(&c, &["SADD", "a", "5", "3", "10", "1", "-2"]);
    run(&c, &["SADD", "b", "10", "3", "99", "7"]);
    assert_eq!(
        run(&c, &["SMEMBERS", "a"]),
        set(&["-2", "1", "3", "5", "10"])
    );
    assert_eq!(run(&c, &["SINTER", "a", "b"]), set(&["3", "10"]));
    assert_eq!(
        run(&c, &["SUNION", "a", "b"]),
        set(&["-2", "1", "3", "5", "7", "10", "99"])
    );
    assert_eq!(run(&c, &["SDIFF", "a", "b"]), set(&["-2", "1", "5"]));
    // A set with a member that is not an integer is a hash table, in no set order: the same
    // members either way.
    run(&c, &["SADD", "c", "3", "x", "10"]);
    let Frame::Set(mut union) = run(&c, &["SUNION", "a", "c"]) else {
        panic!("SUNION answers a set");
    };
    union.sort_by_key(|f| format!("{f:?}"));
    let Frame::Set(mut want) = set(&["5", "10", "3", "1", "x", "-2"]) else {
        unreachable!()
    };
    want.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(union, want);
}

/// The DUMP payload of `key`.
fn dump_payload(c: &Cache, key: &str) -> Bytes {
    match run(c, &["DUMP", key]) {
        Frame::Bulk(b) => b,
        other => panic!("{other:?}"),
    }
}

/// OBJECT ENCODING of a hash and a set follows `hash-max-listpack-entries`/`-value` and
/// `set-max-intset-entries` as configured (Redis 7.0.15's defaults 512, 64 and 512), as a
/// sorted set's follows `zset-max-listpack-*`; Redis 7.0's lists are always quicklists.
#[test]
fn hash_and_set_encodings_follow_the_configured_thresholds() {
    let c = cache();
    let set = |name: &str, v: &str| run(&c, &["CONFIG", "SET", name, v]);
    let encoding = |key: &str| run(&c, &["OBJECT", "ENCODING", key]);
    // DUMP writes the value in that encoding: its RDB type byte.
    let dump_type = |key: &str| dump_payload(&c, key).first().copied();
    let (type_hash, type_hash_listpack, type_set, type_set_intset) =
        (Some(4), Some(16), Some(2), Some(11));
    for name in ["hash-max-listpack-entries", "hash-max-ziplist-entries"] {
        assert_eq!(config_value(&c, name).as_deref(), Some("512"), "{name}");
    }
    assert_eq!(
        config_value(&c, "hash-max-listpack-value").as_deref(),
        Some("64")
    );
    assert_eq!(
        config_value(&c, "set-max-intset-entries").as_deref(),
        Some("512")
    );
    // 512 fields stay a listpack by default; the 513th makes a hashtable.
    let mut hset = vec!["HSET".to_owned(), "h".to_owned()];
    for i in 0..512 {
        hset.extend([format!("f{i}"), "v".to_owned()]);
    }
    let parts: Vec<&str> = hset.iter().map(String::as_str).collect();
    assert_eq!(run(&c, &parts), Frame::Integer(512));
    assert_eq!(encoding("h"), Frame::bulk(b"listpack"));
    assert_eq!(dump_type("h"), type_hash_listpack);
    run(&c, &["HSET", "h", "f512", "v"]);
    assert_eq!(encoding("h"), Frame::bulk(b"hashtable"));
    assert_eq!(dump_type("h"), type_hash);
    assert_eq!(set("hash-max-listpack-entries", "2"), Frame::ok());
    run(&c, &["HSET", "two", "a", "1", "b", "2"]);
    assert_eq!(encoding("two"), Frame::bulk(b"listpack"));
    run(&c, &["HSET", "three", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(encoding("three"), Frame::bulk(b"hashtable"));
    assert_eq!(set("hash-max-ziplist-value", "3"), Frame::ok());
    run(&c, &["HSET", "long", "a", "123"]);
    assert_eq!(encoding("long"), Frame::bulk(b"listpack"));
    run(&c, &["HSET", "longer", "a", "1234"]);
    assert_eq!(encoding("longer"), Frame::bulk(b"hashtable"));
    assert_eq!(set("set-max-intset-entries", "2"), Frame::ok());
    run(&c, &["SADD", "s2", "1", "2"]);
    assert_eq!(encoding("s2"), Frame::bulk(b"intset"));
    assert_eq!(dump_type("s2"), type_set_intset);
    run(&c, &["SADD", "s3", "1", "2", "3"]);
    assert_eq!(encoding("s3"), Frame::bulk(b"hashtable"));
    assert_eq!(dump_type("s3"), type_set);
    assert_eq!(set("set-max-intset-entries", "0"), Frame::ok());
    run(&c, &["SADD", "one", "1"]);
    assert_eq!(encoding("one"), Frame::bulk(b"hashtable"));
    assert_eq!(set("list-max-listpack-size", "1"), Frame::ok());
    run(&c, &["RPUSH", "l", "a"]);
    assert_eq!(encoding("l"), Frame::bulk(b"quicklist"));
    assert_eq!(
        set("set-max-intset-entries", "-1"),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'set-max-intset-entries') - argument must be between 0 and 9223372036854775807 inclusive"
        )
    );
    assert_eq!(
        set("hash-max-listpack-value", "abc"),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-listpack-value') - argument must be a memory value"
        )
    );
}

/// A hash's and a set's encoding is decided by the writes that made it, as in Redis 7.0.15:
/// it converts to a hashtable when a write crosses a threshold and never converts back, a
/// changed threshold applies from the next write that crosses it, RENAME, COPY and MOVE keep
/// it, and RESTORE, SPOP of most members and the *STORE commands decide it afresh from the
/// contents, as Redis's loader and its set builders do.
#[test]
fn hash_and_set_encodings_are_decided_by_writes_and_never_convert_back() {
    let c = cache();
    let set = |name: &str, v: &str| run(&c, &["CONFIG", "SET", name, v]);
    let encoding = |key: &str| run(&c, &["OBJECT", "ENCODING", key]);
    let dump = |key: &str| dump_payload(&c, key);
    let restore = |key: &str, payload: &Bytes| {
        let args = [
            Bytes::from_static(b"RESTORE"),
            Bytes::copy_from_slice(key.as_bytes()),
            Bytes::from_static(b"0"),
            payload.clone(),
        ];
        assert_eq!(c.execute(0, &args), Frame::ok(), "{key}");
    };
    let (hashtable, listpack, intset) = (bulk("hashtable"), bulk("listpack"), bulk("intset"));
    let (type_set, type_hash) = (2, 4);

    // A set that held a non-integer stays a hashtable once it is gone, in DUMP too.
    run(&c, &["SADD", "s", "1", "a"]);
    run(&c, &["SREM", "s", "a"]);
    assert_eq!(encoding("s"), hashtable);
    assert_eq!(dump("s").first(), Some(&type_set));
    // RENAME, COPY and MOVE carry it; RESTORE loads a SET payload as an intset if it fits.
    assert_eq!(run(&c, &["COPY", "s", "s-copy"]), Frame::Integer(1));
    assert_eq!(encoding("s-copy"), hashtable);
    assert_eq!(run(&c, &["RENAME", "s-copy", "s-renamed"]), Frame::ok());
    assert_eq!(encoding("s-renamed"), hashtable);
    assert_eq!(run(&c, &["MOVE", "s-renamed", "1"]), Frame::Integer(1));
    let moved = c.execute(
        1,
        &[
            Bytes::from_static(b"OBJECT"),
            Bytes::from_static(b"ENCODING"),
            Bytes::from_static(b"s-renamed"),
        ],
    );
    assert_eq!(moved, hashtable);
    restore("s-restored", &dump("s"));
    assert_eq!(encoding("s-restored"), intset);
    // SUNIONSTORE builds its result as an intset; SMOVE to a new key starts one.
    assert_eq!(run(&c, &["SUNIONSTORE", "s-union", "s"]), Frame::Integer(1));
    assert_eq!(encoding("s-union"), intset);
    assert_eq!(run(&c, &["SMOVE", "s", "s-moved", "1"]), Frame::Integer(1));
    assert_eq!(encoding("s-moved"), intset);

    // A lowered set-max-intset-entries converts an intset only when a new member is added.
    run(&c, &["SADD", "i", "3", "1", "2"]);
    assert_eq!(set("set-max-intset-entries", "2"), Frame::ok());
    assert_eq!(encoding("i"), intset);
    // Still answered as an intset: whole and ascending.
    assert_eq!(
        run(&c, &["SMEMBERS", "i"]),
        Frame::Set(vec![bulk("1"), bulk("2"), bulk("3")])
    );
    assert_eq!(
        run(&c, &["SINTER", "i", "i"]),
        Frame::Set(vec![bulk("1"), bulk("2"), bulk("3")])
    );
    run(&c, &["SADD", "i", "3"]);
    assert_eq!(encoding("i"), intset);
    run(&c, &["SADD", "i", "4"]);
    assert_eq!(encoding("i"), hashtable);
    // An intset payload over the threshold loads as a hashtable.
    assert_eq!(set("set-max-intset-entries", "512"), Frame::ok());
    run(&c, &["SADD", "k", "1", "2", "3"]);
    let k = dump("k");
    assert_eq!(set("set-max-intset-entries", "2"), Frame::ok());
    restore("k-restored", &k);
    assert_eq!(encoding("k-restored"), hashtable);
    assert_eq!(set("set-max-intset-entries", "512"), Frame::ok());
    // SPOP of most members keeps the rest in a set built afresh; of a few, in the same set.
    let mut sadd = vec!["SADD".to_owned(), "p".to_owned(), "a".to_owned()];
    sadd.extend((1..=20).map(|i| i.to_string()));
    let parts: Vec<&str> = sadd.iter().map(String::as_str).collect();
    run(&c, &parts);
    run(&c, &["SREM", "p", "a"]);
    run(&c, &["SPOP", "p", "2"]);
    assert_eq!(encoding("p"), hashtable);
    run(&c, &["SPOP", "p", "17"]);
    assert_eq!(run(&c, &["SCARD", "p"]), Frame::Integer(1));
    assert_eq!(encoding("p"), intset);

    // A hash that grew past hash-max-listpack-entries stays a hashtable as it shrinks.
    assert_eq!(set("hash-max-listpack-entries", "2"), Frame::ok());
    run(&c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    run(&c, &["HDEL", "h", "c"]);
    assert_eq!(encoding("h"), hashtable);
    assert_eq!(dump("h").first(), Some(&type_hash));
    // A HASH payload that fits loads as a listpack.
    restore("h-restored", &dump("h"));
    assert_eq!(encoding("h-restored"), listpack);
    // A lowered threshold converts a listpack at its next write, even of an existing field.
    assert_eq!(set("hash-max-listpack-entries", "512"), Frame::ok());
    run(&c, &["HSET", "h2", "a", "1", "b", "2", "c", "3"]);
    let h2 = dump("h2");
    assert_eq!(set("hash-max-listpack-entries", "2"), Frame::ok());
    assert_eq!(encoding("h2"), listpack);
    // A listpack payload with more fields than the threshold loads as a hashtable.
    restore("h2-restored", &h2);
    assert_eq!(encoding("h2-restored"), hashtable);
    run(&c, &["HSET", "h2", "a", "9"]);
    assert_eq!(encoding("h2"), hashtable);
    assert_eq!(set("hash-max-listpack-entries", "512"), Frame::ok());
    // A lowered hash-max-listpack-value: HSETNX of an existing field writes nothing and
    // converts nothing; HINCRBY writing a longer value or field converts.
    run(&c, &["HSET", "h3", "a", "12345"]);
    let h3 = dump("h3");
    assert_eq!(set("hash-max-listpack-value", "3"), Frame::ok());
    assert_eq!(encoding("h3"), listpack);
    // A listpack payload is checked by its length only, not its values'.
    restore("h3-restored", &h3);
    assert_eq!(encoding("h3-restored"), listpack);
    assert_eq!(
        run(&c, &["HSETNX", "h3", "a", "123456789"]),
        Frame::Integer(0)
    );
    assert_eq!(encoding("h3"), listpack);
    run(&c, &["HSET", "h4", "a", "1"]);
    run(&c, &["HINCRBY", "h4", "a", "123456"]);
    assert_eq!(encoding("h4"), hashtable);
    run(&c, &["HSET", "h5", "a", "1"]);
    run(&c, &["HINCRBY", "h5", "abcdef", "1"]);
    assert_eq!(encoding("h5"), hashtable);
}

/// SORT … BY nosort answers a set in its own order, as Redis does: an intset's is ascending.
#[test]
fn sort_by_nosort_answers_an_intset_in_ascending_order() {
    let c = cache();
    run(&c, &["SADD", "n", "30", "1", "2", "100", "7"]);
    let ascending: Vec<Frame> = ["1", "2", "7", "30", "100"].into_iter().map(bulk).collect();
    assert_eq!(
        run(&c, &["SORT", "n", "BY", "nosort"]),
        Frame::Array(ascending.clone())
    );
    assert_eq!(
        run(&c, &["SORT", "n", "BY", "nosort", "DESC"]),
        Frame::Array(ascending.clone())
    );
    assert_eq!(
        run(&c, &["SORT", "n", "BY", "nosort", "LIMIT", "1", "2"]),
        Frame::Array(ascending.get(1..3).unwrap().to_vec())
    );
}

/// DUMP writes a sorted set in the encoding OBJECT ENCODING reports, as Redis does: one kept
/// as a listpack while zset-max-listpack-entries was lowered below its size stays a listpack.
#[test]
fn dump_writes_a_sorted_set_in_its_own_encoding() {
    let c = cache();
    let (type_zset_2, type_zset_listpack) = (5, 17);
    run(&c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(
        run(&c, &["CONFIG", "SET", "zset-max-listpack-entries", "2"]),
        Frame::ok()
    );
    assert_eq!(run(&c, &["OBJECT", "ENCODING", "z"]), bulk("listpack"));
    assert_eq!(dump_payload(&c, "z").first(), Some(&type_zset_listpack));
    run(&c, &["ZADD", "z", "4", "d"]);
    assert_eq!(run(&c, &["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    assert_eq!(dump_payload(&c, "z").first(), Some(&type_zset_2));
}

/// The *STORE commands build their result as Redis 7.0.15's `sinterGenericCommand` and
/// `sunionDiffGenericCommand` do, adding each member to a new intset: a result of more than
/// `set-max-intset-entries` integers, or holding a non-integer, is a hashtable whatever the
/// sources' encodings, and one of few integers is an intset even from hashtable sources.
#[test]
fn set_store_results_get_redis_encoding_whatever_their_size() {
    let c = cache();
    let encoding = |key: &str| run(&c, &["OBJECT", "ENCODING", key]);
    let sadd = |key: &str, members: std::ops::Range<i64>| {
        let mut parts = vec!["SADD".to_owned(), key.to_owned()];
        parts.extend(members.map(|i| i.to_string()));
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        run(&c, &parts)
    };
    let (hashtable, intset) = (bulk("hashtable"), bulk("intset"));
    assert_eq!(sadd("a", 0..600), Frame::Integer(600));
    assert_eq!(sadd("b", 300..900), Frame::Integer(600));
    assert_eq!(sadd("small", 1..4), Frame::Integer(3));
    run(&c, &["SADD", "words", "x"]);
    assert_eq!(encoding("a"), hashtable);
    for (command, dst, sources, len, want) in [
        ("SUNIONSTORE", "union", ["a", "b"], 900, &hashtable),
        ("SINTERSTORE", "inter", ["a", "b"], 300, &intset),
        ("SINTERSTORE", "same", ["a", "a"], 600, &hashtable),
        ("SDIFFSTORE", "diff", ["a", "b"], 300, &intset),
        ("SDIFFSTORE", "most", ["a", "small"], 597, &hashtable),
        ("SUNIONSTORE", "mixed", ["small", "words"], 4, &hashtable),
    ] {
        let mut parts = vec![command, dst];
        parts.extend(sources);
        assert_eq!(run(&c, &parts), Frame::Integer(len), "{command} {dst}");
        assert_eq!(&encoding(dst), want, "{command} {dst}");
    }
    run(&c, &["CONFIG", "SET", "set-max-intset-entries", "100"]);
    run(&c, &["SINTERSTORE", "inter", "a", "b"]);
    assert_eq!(encoding("inter"), hashtable);
}
