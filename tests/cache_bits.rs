//! Capability: the bitmap commands (BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO, and SETBIT's
//! write accounting) behave as Redis 7.0.15's `bitops.c`: ranges in byte and bit units, the
//! checks in Redis's order, overflow modes, what counts as a change (keyspace events,
//! `rdb_changes_since_last_save`), and the offset limit at max and max+1.
//! Method: drive `Cache::execute` in process on a `ManualClock`; every expected reply below
//! was read from a `redis-server` 7.0.15 given the same commands (`tests/peers_redis_bits.rs`
//! compares the two on thousands of random commands).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, EventKind, Frame, VALUE_BYTES_MAX};
use streamcache::clock::ManualClock;

fn cache() -> Cache {
    Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    )
}

fn run_raw(c: &Cache, parts: &[&[u8]]) -> Frame {
    let args: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    c.execute(0, &args)
}

fn run(c: &Cache, line: &str) -> Frame {
    let parts: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    run_raw(c, &parts)
}

fn ints(values: &[i64]) -> Frame {
    Frame::Array(values.iter().map(|v| Frame::Integer(*v)).collect())
}

fn err(text: &str) -> Frame {
    Frame::error(text)
}

const SYNTAX: &str = "ERR syntax error";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn bitcount_and_bitpos_read_ranges_as_redis() {
    let c = cache();
    run_raw(&c, &[b"SET", b"s", b"foobar"]);
    run_raw(&c, &[b"SET", b"p", b"\xff\xf0\x00"]);
    run_raw(&c, &[b"SET", b"o", b"\xff\xff\xff"]);
    run(&c, "RPUSH l x");
    let table: &[(&str, Frame)] = &[
        ("BITCOUNT s", Frame::Integer(26)),
        ("BITCOUNT s 1 1 byte", Frame::Integer(6)),
        ("BITCOUNT s 5 30 bit", Frame::Integer(17)),
        ("BITCOUNT s -3 -1 bit", Frame::Integer(1)),
        ("BITCOUNT s -1 -3", Frame::Integer(0)),
        ("BITCOUNT s 100 200", Frame::Integer(0)),
        ("BITCOUNT s 0", err(SYNTAX)),
        ("BITCOUNT s 0 1 word", err(SYNTAX)),
        ("BITCOUNT s x 1", err(NOT_INTEGER)),
        // A missing key answers before its arguments are read.
        ("BITCOUNT nokey 0", Frame::Integer(0)),
        ("BITCOUNT l", err(WRONGTYPE)),
        ("BITPOS p 0", Frame::Integer(12)),
        ("BITPOS p 1 2", Frame::Integer(-1)),
        // Without an end, clear bits continue past the string; with one, they do not.
        ("BITPOS p 0 2", Frame::Integer(16)),
        ("BITPOS o 0", Frame::Integer(24)),
        ("BITPOS o 0 0 -1", Frame::Integer(-1)),
        ("BITPOS p 1 7 15 bit", Frame::Integer(7)),
        ("BITPOS p 0 7 15 bit", Frame::Integer(12)),
        ("BITPOS p 0 0 11 bit", Frame::Integer(-1)),
        ("BITPOS o 1 3 20 bit", Frame::Integer(3)),
        ("BITPOS nokey 0", Frame::Integer(0)),
        ("BITPOS nokey 1", Frame::Integer(-1)),
        ("BITPOS p 2", err("ERR The bit argument must be 1 or 0.")),
        ("BITPOS p x", err(NOT_INTEGER)),
        ("BITPOS s 1 0 5 word", err(SYNTAX)),
        ("BITPOS l 1", err(WRONGTYPE)),
    ];
    for (line, want) in table {
        assert_eq!(&run(&c, line), want, "{line}");
    }
}

#[test]
fn bitop_combines_and_deletes_an_empty_result() {
    let c = cache();
    run_raw(&c, &[b"SET", b"s", b"foobar"]);
    run_raw(&c, &[b"SET", b"p", b"\xff\xf0\x00"]);
    run(&c, "RPUSH l x");
    assert_eq!(run(&c, "BITOP AND d s p"), Frame::Integer(6));
    assert_eq!(run(&c, "GET d"), Frame::bulk(b"f`\0\0\0\0"));
    assert_eq!(run(&c, "BITOP or d s p nokey"), Frame::Integer(6));
    assert_eq!(run(&c, "GET d"), Frame::bulk(b"\xff\xffobar"));
    assert_eq!(run(&c, "BITOP XOR d s s"), Frame::Integer(6));
    assert_eq!(run(&c, "GET d"), Frame::bulk(&[0u8; 6]));
    assert_eq!(run(&c, "BITOP NOT d p"), Frame::Integer(3));
    assert_eq!(run(&c, "GET d"), Frame::bulk(b"\x00\x0f\xff"));
    let mut rx = c.subscribe_events();
    assert_eq!(run(&c, "BITOP AND d nokey nokey2"), Frame::Integer(0));
    assert_eq!(run(&c, "EXISTS d"), Frame::Integer(0));
    assert_eq!(rx.try_recv().unwrap().kind, EventKind::Del);
    assert_eq!(
        run(&c, "BITOP NOT d p s"),
        err("ERR BITOP NOT must be called with a single source key.")
    );
    assert_eq!(run(&c, "BITOP NAND d s"), err(SYNTAX));
    assert_eq!(run(&c, "BITOP OR d s l"), err(WRONGTYPE));
}

#[test]
fn bitfield_reads_writes_and_overflows_as_redis() {
    let c = cache();
    run(&c, "RPUSH l x");
    let table: &[(&str, Frame)] = &[
        (
            "BITFIELD bf SET i8 0 100 GET i8 0 INCRBY i8 0 100",
            ints(&[0, 100, -56]),
        ),
        (
            "BITFIELD bf OVERFLOW SAT INCRBY i8 0 100 OVERFLOW FAIL INCRBY i8 0 100 GET u4 0",
            Frame::Array(vec![Frame::Integer(44), Frame::Null, Frame::Integer(2)]),
        ),
        (
            "BITFIELD bf SET u8 #1 255 GET u8 #1 INCRBY u8 #1 10",
            ints(&[0, 255, 9]),
        ),
        (
            "BITFIELD bf OVERFLOW SAT SET u8 16 300 SET i4 24 -100 GET i4 24",
            ints(&[0, 0, -8]),
        ),
        (
            "BITFIELD bf SET u63 100 -1 GET u63 100",
            ints(&[0, i64::MAX]),
        ),
        (
            "BITFIELD bf SET i64 200 -5 INCRBY i64 200 9223372036854775807 GET i64 200",
            ints(&[0, i64::MAX - 5, i64::MAX - 5]),
        ),
        ("BITFIELD bf2 SET u2 0 5 GET u2 0", ints(&[0, 1])),
        (
            "BITFIELD bf3 INCRBY u2 0 -1 OVERFLOW SAT INCRBY u2 2 -1 GET u4 0",
            ints(&[3, 0, 12]),
        ),
        (
            "BITFIELD bf4 INCRBY i3 0 -5 OVERFLOW SAT INCRBY i3 3 -5 GET i3 0 GET i3 3",
            ints(&[3, -4, 3, -4]),
        ),
        ("BITFIELD nokey GET i8 0 GET u1 3", ints(&[0, 0])),
        ("BITFIELD_RO bf GET u8 0 GET i16 8", ints(&[44, 2559])),
        ("BITFIELD_RO nokey GET u8 0", ints(&[0])),
        (
            "BITFIELD_RO bf SET u8 0 1",
            err("ERR BITFIELD_RO only supports the GET subcommand"),
        ),
        (
            "BITFIELD bf GET i65 0",
            err(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            ),
        ),
        (
            "BITFIELD bf GET u64 0",
            err(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            ),
        ),
        (
            "BITFIELD bf GET i8 -1",
            err("ERR bit offset is not an integer or out of range"),
        ),
        (
            "BITFIELD bf GET i8 #x",
            err("ERR bit offset is not an integer or out of range"),
        ),
        (
            "BITFIELD bf OVERFLOW nope",
            err("ERR Invalid OVERFLOW type specified"),
        ),
        ("BITFIELD bf GET i8", err(SYNTAX)),
        ("BITFIELD l GET u8 0", err(WRONGTYPE)),
    ];
    for (line, want) in table {
        assert_eq!(&run(&c, line), want, "{line}");
    }
    // A GET of a missing key creates nothing.
    assert_eq!(run(&c, "EXISTS nokey"), Frame::Integer(0));
}

fn dirty(c: &Cache) -> i64 {
    let Frame::Verbatim(info) = run(c, "INFO persistence") else {
        panic!("INFO answers text")
    };
    let text = String::from_utf8_lossy(&info).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Redis's own test "SETBIT/BITFIELD only increase dirty when the value changed", and the
/// keyspace events that go with it.
#[test]
fn only_changes_count_as_writes() {
    let c = cache();
    let start = dirty(&c);
    run(&c, "SETBIT foo 0 0");
    run(&c, "BITFIELD foo2 SET i5 0 0");
    assert_eq!(dirty(&c), start + 2, "creating a key is a change");
    let mut rx = c.subscribe_events();
    run(&c, "SETBIT foo 0 0");
    run(&c, "BITFIELD foo2 SET i5 0 0");
    assert_eq!(dirty(&c), start + 2, "setting what is there is not");
    assert!(rx.try_recv().is_err(), "and publishes nothing");
    for line in [
        "SETBIT foo 0 1",
        "SETBIT foo 0 1",
        "SETBIT foo 0 0",
        "SETBIT foo 0 0",
        "BITFIELD foo2 SET i5 0 1",
        "BITFIELD foo2 SET i5 0 1",
        "BITFIELD foo2 SET i5 0 0",
        "BITFIELD foo2 SET i5 0 0",
    ] {
        run(&c, line);
    }
    assert_eq!(dirty(&c), start + 6);
    assert_eq!(rx.try_recv().unwrap().kind, EventKind::Set);
    // Growing the string is a change even when the bit stays clear.
    run(&c, "SETBIT foo 100 0");
    assert_eq!(dirty(&c), start + 7);
    // A snapshot takes the count back to zero.
    let dir = tempfile::tempdir().unwrap();
    let saved = Cache::open(
        CacheConfig {
            snapshot: true,
            ..CacheConfig::default()
        },
        Arc::new(ManualClock::new(1_000_000)),
        dir.path(),
    );
    run(&saved, "SET k v");
    assert_eq!(dirty(&saved), 1);
    saved.save_snapshot().unwrap();
    assert_eq!(dirty(&saved), 0);
}

/// Bit offsets reach the last bit of a `VALUE_BYTES_MAX` string and no further.
#[test]
fn bit_offsets_are_checked_at_the_limit() {
    let c = cache();
    let last = (VALUE_BYTES_MAX as u64) * 8 - 1;
    let at_max = format!("BITFIELD k GET u1 {last}");
    assert_eq!(run(&c, &at_max), ints(&[0]));
    let past = format!("BITFIELD k GET u1 {}", last + 1);
    assert_eq!(
        run(&c, &past),
        err("ERR bit offset is not an integer or out of range")
    );
    let hashed = format!("BITFIELD k GET u8 #{}", (last + 1) / 8);
    assert_eq!(
        run(&c, &hashed),
        err("ERR bit offset is not an integer or out of range")
    );
}
