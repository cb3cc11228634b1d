//! Capability: CLIENT PAUSE and CLIENT UNPAUSE, as Redis 7.0.15 serves them: WRITE holds what
//! may write or replicate (writes, PUBLISH, PFCOUNT, a script unless it declares `no-writes`,
//! an EXEC whose queue holds such a command) and lets reads through; ALL holds everything;
//! a held client counts in INFO `blocked_clients`; syntax errors are answered at once; the
//! pause ends at UNPAUSE or at its deadline on the cache's clock; no key expires meanwhile, and
//! a client's command evicts nothing, where the writers a pause does not hold still evict.
//! Method: raw RESP connections to an in-process server on a `ManualClock`. A held command is
//! shown held by INFO counting it blocked (read before the pause ends) and by its reply
//! arriving only after UNPAUSE; every wait is a bounded socket read.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::time::Duration;

use streamcache::cache::Frame;

mod resp_common;

use resp_common::{Conn, bulk, err, serve_manual};

fn ok() -> Frame {
    Frame::simple("OK")
}

/// INFO `section`'s value of `field`.
fn info_field(c: &mut Conn, section: &str, field: &str) -> String {
    let (Frame::Verbatim(text) | Frame::Bulk(text)) = c.cmd(&["INFO", section]) else {
        panic!("no info")
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .to_owned()
}

/// Polls INFO until `n` clients are blocked (each poll a round trip; bounded).
fn wait_blocked(admin: &mut Conn, n: usize) {
    for _ in 0..10_000 {
        if info_field(admin, "clients", "blocked_clients") == n.to_string() {
            return;
        }
        std::thread::yield_now();
    }
    panic!("never {n} blocked clients");
}

#[test]
fn write_mode_holds_writes_and_lets_reads_through_until_unpause() {
    let (server, _clock) = serve_manual();
    let mut admin = Conn::open(server.addr);
    admin.cmd(&["SET", "k", "v"]);
    admin.cmd(&["PFADD", "hll", "a"]);
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), ok());
    let mut reader = Conn::open(server.addr);
    assert_eq!(reader.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(
        reader.cmd(&["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "k"]),
        bulk("v")
    );
    assert_eq!(
        reader.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]),
        Frame::Integer(1)
    );
    // What a read-only script may run never waits: a may-replicate command is refused in it.
    let Frame::Error(e) = reader.cmd(&["EVAL_RO", "return redis.call('publish', 'ch', 'm')", "0"])
    else {
        panic!("PUBLISH ran in a read-only script")
    };
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    // A syntax error is answered at once.
    assert_eq!(
        reader.cmd(&["SET", "k"]),
        err("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(info_field(&mut admin, "clients", "blocked_clients"), "0");
    let mut writer = Conn::open(server.addr);
    writer.send(&["SET", "k", "w"]);
    let mut publisher = Conn::open(server.addr);
    publisher.send(&["PUBLISH", "ch", "m"]);
    let mut counter = Conn::open(server.addr);
    counter.send(&["PFCOUNT", "hll"]);
    let mut script = Conn::open(server.addr);
    script.send(&["EVAL", "return 1", "0"]);
    // A pipeline's read before its held write is answered while the write waits.
    let mut pipelined = Conn::open(server.addr);
    let mut both = resp_common::encode(&[b"GET", b"k"]);
    both.extend_from_slice(&resp_common::encode(&[b"INCR", b"n"]));
    std::io::Write::write_all(pipelined.stream(), &both).unwrap();
    assert_eq!(pipelined.reply(), bulk("v"));
    wait_blocked(&mut admin, 5);
    assert_eq!(admin.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(writer.reply(), ok());
    assert_eq!(publisher.reply(), Frame::Integer(0));
    assert_eq!(counter.reply(), Frame::Integer(1));
    assert_eq!(script.reply(), Frame::Integer(1));
    assert_eq!(pipelined.reply(), Frame::Integer(1));
    assert_eq!(admin.cmd(&["GET", "k"]), bulk("w"));
    assert_eq!(info_field(&mut admin, "clients", "blocked_clients"), "0");
}

#[test]
fn a_transaction_is_held_at_exec_only_when_its_queue_writes() {
    let (server, _clock) = serve_manual();
    let mut admin = Conn::open(server.addr);
    let mut reads = Conn::open(server.addr);
    let mut writes = Conn::open(server.addr);
    for c in [&mut reads, &mut writes] {
        c.cmd(&["MULTI"]);
    }
    reads.cmd(&["GET", "k"]);
    writes.cmd(&["SET", "k", "1"]);
    admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]);
    assert_eq!(reads.cmd(&["EXEC"]), Frame::Array(vec![Frame::Null]));
    writes.send(&["EXEC"]);
    wait_blocked(&mut admin, 1);
    admin.cmd(&["CLIENT", "UNPAUSE"]);
    assert_eq!(writes.reply(), Frame::Array(vec![ok()]));
}

#[test]
fn all_mode_holds_every_command_until_the_deadline_on_the_caches_clock() {
    let (server, clock) = serve_manual();
    let mut admin = Conn::open(server.addr);
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "-1"]),
        err("ERR timeout is negative")
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "x"]),
        err("ERR timeout is not an integer or out of range")
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "10", "READ"]),
        err("ERR CLIENT PAUSE mode must be WRITE or ALL")
    );
    let mut watcher = Conn::open(server.addr);
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "5000"]), ok());
    let mut reader = Conn::open(server.addr);
    reader.send(&["GET", "k"]);
    clock.advance(Duration::from_millis(4_999));
    watcher.send(&["PING"]);
    // One millisecond before the deadline, nothing has answered (every command is held, INFO
    // included, so this is seen on the socket).
    reader
        .stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = std::io::Read::read(reader.stream(), &mut byte);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "answered while paused: {early:?}"
    );
    reader
        .stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    clock.advance(Duration::from_millis(1));
    assert_eq!(reader.reply(), Frame::Null);
    assert_eq!(watcher.reply(), Frame::simple("PONG"));
}

#[test]
fn no_key_expires_while_paused() {
    let (server, clock) = serve_manual();
    let mut c = Conn::open(server.addr);
    c.cmd(&["SET", "k", "v", "PX", "10"]);
    c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]);
    clock.advance(Duration::from_millis(20));
    let expired = info_field(&mut c, "stats", "expired_keys");
    // Logically expired, but left in place.
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(1));
    assert_eq!(info_field(&mut c, "stats", "expired_keys"), expired);
    c.cmd(&["CLIENT", "UNPAUSE"]);
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(0));
    assert_eq!(
        info_field(&mut c, "stats", "expired_keys"),
        (expired.parse::<u64>().unwrap() + 1).to_string()
    );
}

/// Under volatile-random, `v` with a TTL and 200 KB in `big` without one, then a WRITE pause,
/// then a ceiling of 100 KB (CONFIG SET is no write, so the pause lets it through): memory is
/// over the ceiling with the pause in force, and `v` is the one key eviction may take.
fn over_the_ceiling_once_paused(c: &mut Conn) {
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]),
        ok()
    );
    assert_eq!(c.cmd(&["SETEX", "v", "10000", "x"]), ok());
    assert_eq!(c.cmd(&["SETBIT", "big", "1600000", "0"]), Frame::Integer(0));
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "102400"]), ok());
}

/// Nor is any key evicted while paused: over `maxmemory`, a read let through a WRITE pause
/// evicts nothing (Redis's `performEvictions` does nothing during a pause, so the dataset
/// stays as it was); the first command after UNPAUSE evicts.
#[test]
fn no_key_is_evicted_while_paused() {
    let (server, _clock) = serve_manual();
    let mut c = Conn::open(server.addr);
    over_the_ceiling_once_paused(&mut c);
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert_eq!(c.cmd(&["GET", "v"]), bulk("x"));
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(2));
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), evicted);
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["GET", "v"]), Frame::Null);
    assert_eq!(
        info_field(&mut c, "stats", "evicted_keys"),
        (evicted.parse::<u64>().unwrap() + 1).to_string()
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
}

/// A writer a pause does not hold (a flow, the HTTP API: the cache's own API) still evicts, or
/// is refused, over the ceiling while RESP clients are paused, so it cannot take memory past it.
#[test]
fn writers_a_pause_does_not_hold_still_evict() {
    let (server, _clock, cache) = resp_common::serve_manual_cache();
    let mut c = Conn::open(server.addr);
    over_the_ceiling_once_paused(&mut c);
    // As a flow writes a customer's latest order: `v` is evicted first, as without a pause,
    // and the write refused since `big` alone is over the ceiling.
    assert_eq!(
        cache.set(0, b"103", b"{}", None),
        Frame::error("OOM command not allowed when used memory > 'maxmemory'.")
    );
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["EXISTS", "v"]), Frame::Integer(0));
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
}
