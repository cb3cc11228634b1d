//! Capability: client-side caching (CLIENT TRACKING), as Redis 7.0.15's `tracking.c` serves it:
//! the keys a tracking client reads are invalidated with one push each at their next change
//! (by another client, by the client itself after its reply, or by a write that did not come
//! over RESP, as a flow's), redirected to a RESP2 subscriber of `__redis__:invalidate`, BCAST
//! prefixes, NOLOOP, OPTIN/OPTOUT with CLIENT CACHING, a broken redirect, flushes, scripts,
//! transactions, and the table's `tracking-table-max-keys` bound at its limit and past it.
//! Method: raw RESP connections to an in-process server; every wait is a bounded socket read,
//! and "nothing was sent" is shown by the next reply being the PING that follows.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use bytes::Bytes;
use streamcache::cache::Frame;

mod resp_common;

use resp_common::{Conn, bulk, bulks, err, serve_manual};

fn ok() -> Frame {
    Frame::simple("OK")
}

/// A RESP3 push `invalidate` of `keys` (`None`: a flush).
fn invalidate(keys: Option<&[&str]>) -> Frame {
    Frame::Push(vec![bulk("invalidate"), keys.map_or(Frame::Null, bulks)])
}

/// A connection that spoke HELLO 3.
fn resp3(addr: std::net::SocketAddr) -> Conn {
    let mut c = Conn::open(addr);
    assert!(matches!(c.cmd(&["HELLO", "3"]), Frame::Map(_)));
    c
}

/// The next frame is the reply to a PING sent now: nothing else was waiting.
fn nothing_pending(c: &mut Conn) {
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn a_read_key_is_invalidated_once_at_its_next_change_by_anyone() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    let mut w = Conn::open(server.addr);
    assert_eq!(r.cmd(&["CLIENT", "TRACKING", "on"]), ok());
    w.cmd(&["SET", "a", "1"]);
    assert_eq!(r.cmd(&["GET", "a"]), bulk("1"));
    // A key not read is not reported.
    w.cmd(&["SET", "b", "1"]);
    w.cmd(&["SET", "a", "2"]);
    assert_eq!(r.reply(), invalidate(Some(&["a"])));
    // Forgotten after the first change, until read again.
    w.cmd(&["SET", "a", "3"]);
    nothing_pending(&mut r);
    // A change of its own arrives after its reply.
    r.cmd(&["HSET", "h", "f", "1"]);
    assert_eq!(r.cmd(&["HGET", "h", "f"]), bulk("1"));
    assert_eq!(r.cmd(&["HDEL", "h", "f"]), Frame::Integer(1));
    assert_eq!(r.reply(), invalidate(Some(&["h"])));
    // TTL changes count as changes.
    r.cmd(&["GET", "a"]);
    w.cmd(&["EXPIRE", "a", "100"]);
    assert_eq!(r.reply(), invalidate(Some(&["a"])));
}

#[test]
fn writes_that_did_not_come_over_resp_invalidate_too() {
    let (server, _clock, cache) = resp_common::serve_manual_cache();
    let mut r = resp3(server.addr);
    r.cmd(&["CLIENT", "TRACKING", "on"]);
    r.cmd(&["GET", "103"]);
    // As the reference flow writes a customer's order under its customerNumber.
    cache.set(0, b"103", br#"{"orderNumber":10100}"#, None);
    assert_eq!(r.reply(), invalidate(Some(&["103"])));
    let _ = cache.execute(0, &[Bytes::from_static(b"DEL"), Bytes::from_static(b"103")]);
    nothing_pending(&mut r);
}

#[test]
fn a_redirect_reaches_a_resp2_subscriber_and_a_flush_sends_null() {
    let (server, _clock) = serve_manual();
    let mut sub = Conn::open(server.addr);
    let Frame::Integer(id) = sub.cmd(&["CLIENT", "ID"]) else {
        panic!("no id")
    };
    sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    let mut r = Conn::open(server.addr);
    let mut w = Conn::open(server.addr);
    assert_eq!(
        r.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", "999999"]),
        err("ERR The client ID you want redirect to does not exist")
    );
    let id = id.to_string();
    assert_eq!(r.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]), ok());
    assert_eq!(
        r.cmd(&["CLIENT", "GETREDIR"]),
        Frame::Integer(id.parse().unwrap())
    );
    r.cmd(&["MGET", "x", "y"]);
    w.cmd(&["MSET", "x", "1", "y", "2"]);
    let message =
        |keys: Frame| Frame::Array(vec![bulk("message"), bulk("__redis__:invalidate"), keys]);
    assert_eq!(sub.reply(), message(bulks(&["x"])));
    assert_eq!(sub.reply(), message(bulks(&["y"])));
    r.cmd(&["GET", "x"]);
    w.cmd(&["FLUSHALL"]);
    assert_eq!(sub.reply(), message(Frame::Null));
    // The RESP2 tracking client itself gets nothing.
    nothing_pending(&mut r);
}

#[test]
fn bcast_reports_every_change_under_a_prefix_and_noloop_leaves_out_its_own() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    let mut w = Conn::open(server.addr);
    assert_eq!(
        r.cmd(&[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FOOBAR", "PREFIX", "FOO"
        ]),
        err(
            "ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'. Prefixes for a single client must not overlap."
        )
    );
    assert_eq!(
        r.cmd(&["CLIENT", "TRACKING", "on", "PREFIX", "a:"]),
        err("ERR PREFIX option requires BCAST mode to be enabled")
    );
    let on = [
        "CLIENT", "TRACKING", "on", "BCAST", "NOLOOP", "PREFIX", "a:", "PREFIX", "b:",
    ];
    assert_eq!(r.cmd(&on), ok());
    w.cmd(&["MSET", "b:2", "1", "a:1", "1", "c:1", "1", "b:1", "1"]);
    assert_eq!(r.reply(), invalidate(Some(&["a:1"])));
    assert_eq!(r.reply(), invalidate(Some(&["b:1", "b:2"])));
    // NOLOOP: its own change of a:1 is left out.
    r.cmd(&["SET", "a:1", "2"]);
    nothing_pending(&mut r);
    let Frame::Map(info) = r.cmd(&["CLIENT", "TRACKINGINFO"]) else {
        panic!("not a map")
    };
    assert_eq!(
        info,
        vec![
            (
                bulk("flags"),
                Frame::Set(vec![bulk("on"), bulk("bcast"), bulk("noloop")])
            ),
            (bulk("redirect"), Frame::Integer(0)),
            (bulk("prefixes"), bulks(&["a:", "b:"])),
        ]
    );
    assert_eq!(
        r.cmd(&["CLIENT", "TRACKING", "on"]),
        err(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."
        )
    );
}

#[test]
fn optin_and_optout_follow_client_caching_for_the_next_command_only() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    let mut w = Conn::open(server.addr);
    assert_eq!(
        r.cmd(&["CLIENT", "CACHING", "yes"]),
        err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"
        )
    );
    r.cmd(&["CLIENT", "TRACKING", "on", "OPTIN"]);
    r.cmd(&["GET", "k1"]);
    assert_eq!(r.cmd(&["CLIENT", "CACHING", "yes"]), ok());
    r.cmd(&["GET", "k2"]);
    r.cmd(&["GET", "k3"]);
    w.cmd(&["MSET", "k1", "1", "k2", "1", "k3", "1"]);
    assert_eq!(r.reply(), invalidate(Some(&["k2"])));
    nothing_pending(&mut r);

    r.cmd(&["CLIENT", "TRACKING", "off"]);
    r.cmd(&["CLIENT", "TRACKING", "on", "OPTOUT"]);
    assert_eq!(
        r.cmd(&["CLIENT", "CACHING", "yes"]),
        err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    );
    assert_eq!(r.cmd(&["CLIENT", "CACHING", "no"]), ok());
    r.cmd(&["GET", "k1"]);
    r.cmd(&["GET", "k2"]);
    w.cmd(&["MSET", "k1", "2", "k2", "2"]);
    assert_eq!(r.reply(), invalidate(Some(&["k2"])));
    nothing_pending(&mut r);
}

#[test]
fn a_gone_redirect_target_is_reported_as_broken() {
    let (server, _clock) = serve_manual();
    let mut target = Conn::open(server.addr);
    let Frame::Integer(id) = target.cmd(&["CLIENT", "ID"]) else {
        panic!("no id")
    };
    let mut r = resp3(server.addr);
    let mut w = Conn::open(server.addr);
    r.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id.to_string()]);
    r.cmd(&["GET", "k"]);
    assert_eq!(target.cmd(&["QUIT"]), ok());
    // The target's connection ends on the server's side before the change is made.
    let mut rest = Vec::new();
    std::io::Read::read_to_end(target.stream(), &mut rest).unwrap();
    w.cmd(&["SET", "k", "1"]);
    assert_eq!(
        r.reply(),
        Frame::Push(vec![bulk("tracking-redir-broken"), Frame::Integer(id)])
    );
    let Frame::Map(info) = r.cmd(&["CLIENT", "TRACKINGINFO"]) else {
        panic!("not a map")
    };
    assert_eq!(
        info.first(),
        Some(&(
            bulk("flags"),
            Frame::Set(vec![bulk("on"), bulk("broken_redirect")])
        ))
    );
    let Frame::Verbatim(line) = r.cmd(&["CLIENT", "INFO"]) else {
        panic!("not verbatim")
    };
    let line = String::from_utf8_lossy(&line).into_owned();
    assert!(line.contains("flags=tR "), "{line}");
    assert!(line.contains(&format!("redir={id} ")), "{line}");
}

#[test]
fn scripts_track_their_declared_keys_once_they_read() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    let mut w = Conn::open(server.addr);
    r.cmd(&["CLIENT", "TRACKING", "on"]);
    // A script that reads nothing tracks nothing.
    r.cmd(&["EVAL", "redis.call('set', 'k3', 'bar')", "2", "k1", "k2"]);
    w.cmd(&["MSET", "k2", "1", "k1", "1"]);
    nothing_pending(&mut r);
    // One that calls a read-only command tracks the keys it declared.
    r.cmd(&["EVAL", "redis.call('get', 'k3')", "2", "k1", "k2"]);
    w.cmd(&["MSET", "k2", "2", "k1", "2"]);
    assert_eq!(r.reply(), invalidate(Some(&["k2"])));
    assert_eq!(r.reply(), invalidate(Some(&["k1"])));
    nothing_pending(&mut r);
}

#[test]
fn a_transactions_invalidations_follow_its_reply() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    r.cmd(&["CLIENT", "TRACKING", "on"]);
    r.cmd(&["MSET", "a", "1", "b", "2"]);
    r.cmd(&["GET", "a"]);
    r.cmd(&["MULTI"]);
    r.cmd(&["INCR", "a"]);
    r.cmd(&["GET", "b"]);
    assert_eq!(
        r.cmd(&["EXEC"]),
        Frame::Array(vec![Frame::Integer(2), bulk("2")])
    );
    assert_eq!(r.reply(), invalidate(Some(&["a"])));
    // GET b inside the transaction was remembered.
    r.cmd(&["SET", "b", "3"]);
    assert_eq!(r.reply(), invalidate(Some(&["b"])));
}

/// Over `maxmemory` a command first evicts — a read, and a command the connection answers
/// itself (PING) — and the invalidation of a key the client tracks that this removed comes
/// before the command's reply (Redis's `processCommand` evicts before the command runs), where
/// the invalidations of its own command's changes follow it.
#[test]
fn an_eviction_before_a_command_is_reported_before_its_reply() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    assert_eq!(r.cmd(&["CLIENT", "TRACKING", "on"]), ok());
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]),
        ok()
    );
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "102400"]), ok());
    assert_eq!(r.cmd(&["SETEX", "volatile-key", "10000", "x"]), ok());
    assert_eq!(r.cmd(&["GET", "volatile-key"]), bulk("x"));
    // 200 KB without a TTL, written while memory was under the ceiling.
    assert_eq!(
        r.cmd(&["SETBIT", "big-key", "1600000", "0"]),
        Frame::Integer(0)
    );
    assert_eq!(
        r.cmd(&["GETBIT", "big-key", "0"]),
        invalidate(Some(&["volatile-key"]))
    );
    assert_eq!(r.reply(), Frame::Integer(0));
    nothing_pending(&mut r);
    // A command the connection answers itself evicts first as well.
    assert_eq!(r.cmd(&["DEL", "big-key"]), Frame::Integer(1));
    // GETBIT read it, so its own DEL invalidates it, after the reply.
    assert_eq!(r.reply(), invalidate(Some(&["big-key"])));
    assert_eq!(r.cmd(&["SETEX", "other-key", "10000", "y"]), ok());
    assert_eq!(r.cmd(&["GET", "other-key"]), bulk("y"));
    assert_eq!(
        r.cmd(&["SETBIT", "big-key", "1600000", "0"]),
        Frame::Integer(0)
    );
    assert_eq!(r.cmd(&["PING"]), invalidate(Some(&["other-key"])));
    assert_eq!(r.reply(), Frame::simple("PONG"));
    assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
}

#[test]
fn the_table_holds_tracking_table_max_keys_and_forgets_past_it() {
    let (server, _clock) = serve_manual();
    let mut r = resp3(server.addr);
    let mut admin = Conn::open(server.addr);
    admin.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "2"]);
    r.cmd(&["CLIENT", "TRACKING", "on"]);
    // At the limit: both kept.
    r.cmd(&["MGET", "k1", "k2"]);
    let stats = |c: &mut Conn| {
        let (Frame::Verbatim(text) | Frame::Bulk(text)) = c.cmd(&["INFO", "stats"]) else {
            panic!("no info")
        };
        String::from_utf8_lossy(&text).into_owned()
    };
    assert!(stats(&mut admin).contains("tracking_total_keys:2\r\n"));
    nothing_pending(&mut r);
    // One past it: one key is forgotten, and its reader told.
    r.cmd(&["GET", "k3"]);
    let Frame::Push(items) = r.reply() else {
        panic!("no push")
    };
    assert_eq!(items.first(), Some(&bulk("invalidate")));
    assert!(stats(&mut admin).contains("tracking_total_keys:2\r\n"));
    // Lowering the limit forgets down to it at once.
    admin.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    assert!(matches!(r.reply(), Frame::Push(_)));
    let info = stats(&mut admin);
    assert!(info.contains("tracking_total_keys:1\r\n"), "{info}");
    assert!(info.contains("tracking_total_items:1\r\n"), "{info}");
    let (Frame::Verbatim(clients) | Frame::Bulk(clients)) = admin.cmd(&["INFO", "clients"]) else {
        panic!("no info")
    };
    assert!(String::from_utf8_lossy(&clients).contains("tracking_clients:1\r\n"));
    // Tracking off: the client no longer counts.
    r.cmd(&["CLIENT", "TRACKING", "off"]);
    let (Frame::Verbatim(clients) | Frame::Bulk(clients)) = admin.cmd(&["INFO", "clients"]) else {
        panic!("no info")
    };
    assert!(String::from_utf8_lossy(&clients).contains("tracking_clients:0\r\n"));
}
