//! Capability: the geospatial commands on the in-process server — GEOADD stores Redis's
//! 52-bit geohash scores, GEODIST/GEOHASH/GEOPOS answer Redis's texts, the searches find,
//! order, count and store as Redis 7.0.15 (the values below are `redis-server` 7.0.15's own
//! answers to the same commands), and the errors are Redis's.
//! Method: a real TCP client on an in-process RESP server; `tests/peers_redis_geo.rs` compares
//! thousands of random geo commands with a real `redis-server`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::ManualClock;

mod resp_common;

use resp_common::{Conn, bulk, bulks, err};

fn start() -> resp_common::Server {
    let cache = Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    );
    let config = RespConfig::from_cache(&cache, None);
    resp_common::serve(cache, config)
}

fn arr(items: Vec<Frame>) -> Frame {
    Frame::Array(items)
}

fn sicily(c: &mut Conn) {
    assert_eq!(
        c.cmd(&[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania"
        ]),
        Frame::Integer(2)
    );
}

#[test]
fn points_are_sorted_set_members_with_redis_scores() {
    let s = start();
    let mut c = Conn::open(s.addr);
    sicily(&mut c);
    assert_eq!(
        c.cmd(&["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"]),
        bulks(&["Palermo", "3479099956230698", "Catania", "3479447370796909"])
    );
    assert_eq!(
        c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania"]),
        bulk("166274.1516")
    );
    assert_eq!(
        c.cmd(&["GEODIST", "Sicily", "Palermo", "Catania", "mi"]),
        bulk("103.3182")
    );
    assert_eq!(
        c.cmd(&["GEODIST", "Sicily", "Palermo", "Nope"]),
        Frame::Null
    );
    assert_eq!(
        c.cmd(&["GEOHASH", "Sicily", "Palermo", "Catania", "Nope"]),
        arr(vec![bulk("sqc8b49rny0"), bulk("sqdtr74hyu0"), Frame::Null])
    );
    assert_eq!(
        c.cmd(&["GEOPOS", "Sicily", "Palermo", "Nope"]),
        arr(vec![
            bulks(&["13.36138933897018433", "38.11555639549629859"]),
            Frame::NullArray
        ])
    );
    // NX, XX and CH reach ZADD.
    assert_eq!(
        c.cmd(&[
            "GEOADD", "Sicily", "XX", "CH", "13.5", "38.1", "Palermo", "1", "1", "New"
        ]),
        Frame::Integer(1)
    );
    assert_eq!(c.cmd(&["ZCARD", "Sicily"]), Frame::Integer(2));
}

#[test]
fn searches_find_order_count_and_store_as_redis() {
    let s = start();
    let mut c = Conn::open(s.addr);
    sicily(&mut c);
    assert_eq!(
        c.cmd(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "WITHDIST",
            "WITHCOORD",
            "WITHHASH"
        ]),
        arr(vec![
            arr(vec![
                bulk("Palermo"),
                bulk("190.4424"),
                Frame::Integer(3_479_099_956_230_698),
                bulks(&["13.36138933897018433", "38.11555639549629859"]),
            ]),
            arr(vec![
                bulk("Catania"),
                bulk("56.4413"),
                Frame::Integer(3_479_447_370_796_909),
                bulks(&["15.08726745843887329", "37.50266842333162032"]),
            ]),
        ])
    );
    c.cmd(&[
        "GEOADD",
        "Sicily",
        "12.758489",
        "38.788135",
        "edge1",
        "17.241510",
        "38.788135",
        "edge2",
    ]);
    assert_eq!(
        c.cmd(&[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYBOX",
            "400",
            "400",
            "km",
            "ASC",
            "WITHDIST"
        ]),
        arr(vec![
            bulks(&["Catania", "56.4413"]),
            bulks(&["Palermo", "190.4424"]),
            bulks(&["edge2", "279.7403"]),
            bulks(&["edge1", "279.7405"]),
        ])
    );
    // COUNT … ANY stops at the first members found, cell by cell, then sorts them.
    assert_eq!(
        c.cmd(&[
            "GEOSEARCH",
            "Sicily",
            "FROMMEMBER",
            "Palermo",
            "BYRADIUS",
            "300",
            "km",
            "DESC",
            "COUNT",
            "2",
            "ANY"
        ]),
        bulks(&["edge1", "Palermo"])
    );
    assert_eq!(
        c.cmd(&["GEORADIUSBYMEMBER", "Sicily", "Catania", "100", "km"]),
        bulks(&["Catania"])
    );
    assert_eq!(
        c.cmd(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STOREDIST",
            "near"
        ]),
        Frame::Integer(2)
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "near", "0", "-1", "WITHSCORES"]),
        bulks(&[
            "Catania",
            "56.441257870158204",
            "Palermo",
            "190.44242984775784"
        ])
    );
    assert_eq!(
        c.cmd(&[
            "GEOSEARCHSTORE",
            "near",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "10",
            "m"
        ]),
        Frame::Integer(0)
    );
    assert_eq!(c.cmd(&["EXISTS", "near"]), Frame::Integer(0));
    assert_eq!(
        c.cmd(&["GEORADIUS", "missing", "15", "37", "200", "km"]),
        arr(Vec::new())
    );
}

#[test]
fn arguments_are_checked_as_redis_checks_them() {
    let s = start();
    let mut c = Conn::open(s.addr);
    sicily(&mut c);
    c.cmd(&["SET", "str", "x"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["GEOADD", "g", "181", "10", "m"],
            "ERR invalid longitude,latitude pair 181.000000,10.000000",
        ),
        (
            vec!["GEOADD", "g", "NX", "XX", "1", "1", "m"],
            "ERR syntax error",
        ),
        (
            vec!["GEOADD", "g", "1", "1"],
            "ERR wrong number of arguments for 'geoadd' command",
        ),
        (
            vec!["GEOADD", "str", "1", "1", "m"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec!["GEODIST", "Sicily", "a", "b", "yd"],
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
            "ERR radius cannot be negative",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "r", "km"],
            "ERR need numeric radius",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "1", "km", "COUNT", "0"],
            "ERR COUNT must be > 0",
        ),
        (
            vec!["GEORADIUS", "Sicily", "15", "37", "1", "km", "ANY"],
            "ERR the ANY argument requires COUNT argument",
        ),
        (
            vec![
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "1",
                "km",
                "WITHDIST",
                "STORE",
                "x",
            ],
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        (
            vec![
                "GEORADIUS_RO",
                "Sicily",
                "15",
                "37",
                "1",
                "km",
                "STORE",
                "x",
            ],
            "ERR syntax error",
        ),
        (
            vec!["GEORADIUSBYMEMBER", "Sicily", "Nope", "1", "km"],
            "ERR could not decode requested zset member",
        ),
        (
            vec![
                "geosearch",
                "Sicily",
                "BYRADIUS",
                "1",
                "km",
                "WITHDIST",
                "ASC",
            ],
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch",
        ),
        (
            vec!["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "ASC", "ASC"],
            "ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH",
        ),
        (
            vec![
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYBOX",
                "1",
                "-1",
                "km",
            ],
            "ERR height or width cannot be negative",
        ),
        (
            vec![
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "WITHHASH",
            ],
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(c.cmd(&args), err(want), "{args:?}");
    }
}

/// A member whose score GEOADD did not write decodes as Redis decodes it on x86-64: the score
/// converted to 64 bits as C's `(uint64_t)` cast compiles there (-1 is all ones, +inf is 0),
/// every bit read, the cell's center clamped. Each reply below is redis-server 7.0.15's.
#[test]
fn scores_geoadd_did_not_write_decode_as_redis_decodes_them() {
    let s = start();
    let mut c = Conn::open(s.addr);
    for (score, lon, lat, hash) in [
        ("-1", "180", "85.0511287799999991", "bp05b5048p0"),
        ("-inf", "180", "-85.05112751263942528", "00bh0hbj200"),
        (
            "9223372036854775807",
            "180",
            "-85.05112751263942528",
            "00bh0hbj200",
        ),
        (
            "inf",
            "-179.99999731779098511",
            "-85.05112751263942528",
            "00bh0hbj200",
        ),
        (
            "1e300",
            "-179.99999731779098511",
            "-85.05112751263942528",
            "00bh0hbj200",
        ),
    ] {
        assert_eq!(
            c.cmd(&["ZADD", "g", score, "m"]),
            Frame::Integer(1),
            "{score}"
        );
        assert_eq!(
            c.cmd(&["GEOPOS", "g", "m"]),
            arr(vec![bulks(&[lon, lat])]),
            "{score}"
        );
        assert_eq!(c.cmd(&["GEOHASH", "g", "m"]), bulks(&[hash]), "{score}");
        assert_eq!(c.cmd(&["DEL", "g"]), Frame::Integer(1));
    }
}
