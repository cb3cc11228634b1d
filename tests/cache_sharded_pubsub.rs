//! Capability: Redis 7.0's sharded pub/sub on the RESP server, as a non-cluster Redis 7.0.15
//! runs it — SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and PUBSUB SHARDCHANNELS / SHARDNUMSUB; shard
//! channels a namespace apart from SUBSCRIBE's channels and PSUBSCRIBE's patterns; `smessage`
//! in RESP2 and RESP3; confirmations counting shard subscriptions apart; the RESP2 subscribed
//! state, RESET, connection close, CLIENT LIST / KILL, INFO, MONITOR, scripts and MULTI; and a
//! shard subscriber that stops reading disconnected at the pubsub output buffer limit.
//! Method: real TCP clients on an in-process RESP server on the manual clock; message order is
//! observed through each connection's reply stream (a later message proves an earlier one was
//! not sent), never by waiting for time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::io::Read as _;

use streamcache::cache::{Frame, PUBSUB_BUFFER_BYTES_MAX};

mod resp_common;

use resp_common::{Conn, bulk, bulks};

/// A server on the manual clock and `N` clients of it.
fn serve<const N: usize>() -> (resp_common::Server, [Conn; N]) {
    let (server, _clock) = resp_common::serve_manual();
    let clients = std::array::from_fn(|_| Conn::open(server.addr));
    (server, clients)
}

/// A (un)subscribe confirmation or a message, as RESP2 reads it.
fn array(kind: &str, name: &str, count: i64) -> Frame {
    Frame::Array(vec![bulk(kind), bulk(name), Frame::Integer(count)])
}

/// Sends `args` and returns its `n` replies.
fn replies(c: &mut Conn, args: &[&str], n: usize) -> Vec<Frame> {
    c.send(args);
    (0..n).map(|_| c.reply()).collect()
}

/// The members of an array reply, sorted (the registry's order is a hash order).
fn sorted(f: Frame) -> Vec<Frame> {
    let Frame::Array(mut items) = f else {
        panic!("expected an array, got {f:?}");
    };
    items.sort_by_key(|i| format!("{i:?}"));
    items
}

/// PUBSUB NUMSUB's or SHARDNUMSUB's reply: a flat array of channel, count pairs.
fn counts(pairs: &[(&str, i64)]) -> Frame {
    Frame::Array(
        pairs
            .iter()
            .flat_map(|&(channel, n)| [bulk(channel), Frame::Integer(n)])
            .collect(),
    )
}

/// CLIENT LIST's text.
fn text(f: Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Asks PUBSUB SHARDNUMSUB `channel` until its count is `want` (a closed connection drops its
/// subscriptions on its own task, after the close is seen); each try is a round trip.
fn await_shardnumsub(c: &mut Conn, channel: &str, want: i64) {
    for _ in 0..100_000 {
        if c.cmd(&["PUBSUB", "SHARDNUMSUB", channel]) == counts(&[(channel, want)]) {
            return;
        }
    }
    panic!("{channel} never had {want} subscribers");
}

#[test]
fn shard_channels_are_a_namespace_apart_from_channels_and_patterns() {
    let (_server, [mut shard, mut plain, mut pattern, mut p]) = serve();
    assert_eq!(
        shard.cmd(&["SSUBSCRIBE", "ch"]),
        array("ssubscribe", "ch", 1)
    );
    assert_eq!(plain.cmd(&["SUBSCRIBE", "ch"]), array("subscribe", "ch", 1));
    assert_eq!(
        pattern.cmd(&["PSUBSCRIBE", "*"]),
        array("psubscribe", "*", 1)
    );
    // SPUBLISH reaches the shard subscriber only (patterns never match shard channels)…
    assert_eq!(p.cmd(&["SPUBLISH", "ch", "s1"]), Frame::Integer(1));
    // …and PUBLISH everyone but it.
    assert_eq!(p.cmd(&["PUBLISH", "ch", "p1"]), Frame::Integer(2));
    assert_eq!(p.cmd(&["SPUBLISH", "ch", "s2"]), Frame::Integer(1));
    assert_eq!(shard.reply(), bulks(&["smessage", "ch", "s1"]));
    assert_eq!(shard.reply(), bulks(&["smessage", "ch", "s2"]));
    assert_eq!(plain.reply(), bulks(&["message", "ch", "p1"]));
    assert_eq!(pattern.reply(), bulks(&["pmessage", "*", "ch", "p1"]));
    // Neither of the others got s2: their next frames answer their own commands.
    assert_eq!(plain.cmd(&["PING"]), bulks(&["pong", ""]));
    assert_eq!(pattern.cmd(&["PING"]), bulks(&["pong", ""]));
    // A channel subscriber's SUNSUBSCRIBE of the same name finds no shard subscription.
    assert_eq!(
        plain.cmd(&["SUNSUBSCRIBE", "ch"]),
        array("sunsubscribe", "ch", 0)
    );
    assert_eq!(p.cmd(&["PUBLISH", "ch", "p2"]), Frame::Integer(2));
}

#[test]
fn confirmations_count_shard_subscriptions_apart_from_the_others() {
    let (_server, [mut c]) = serve();
    assert_eq!(
        replies(&mut c, &["SUBSCRIBE", "a", "b"], 2),
        [array("subscribe", "a", 1), array("subscribe", "b", 2)]
    );
    // A repeated name confirms again without counting twice.
    assert_eq!(
        replies(&mut c, &["SSUBSCRIBE", "x", "y", "x"], 3),
        [
            array("ssubscribe", "x", 1),
            array("ssubscribe", "y", 2),
            array("ssubscribe", "x", 2)
        ]
    );
    assert_eq!(c.cmd(&["PSUBSCRIBE", "p*"]), array("psubscribe", "p*", 3));
    assert_eq!(c.cmd(&["SUNSUBSCRIBE", "x"]), array("sunsubscribe", "x", 1));
    assert_eq!(c.cmd(&["UNSUBSCRIBE", "a"]), array("unsubscribe", "a", 2));
    // UNSUBSCRIBE and PUNSUBSCRIBE without arguments leave the shard channels.
    assert_eq!(c.cmd(&["UNSUBSCRIBE"]), array("unsubscribe", "b", 1));
    assert_eq!(c.cmd(&["PUNSUBSCRIBE"]), array("punsubscribe", "p*", 0));
    assert_eq!(c.cmd(&["SUNSUBSCRIBE", "y"]), array("sunsubscribe", "y", 0));
}

#[test]
fn confirmations_and_smessage_are_arrays_in_resp2_and_pushes_in_resp3() {
    let (_server, [mut two, mut three, mut p]) = serve();
    assert_eq!(
        two.wire(&["SSUBSCRIBE", "ch"]),
        "*3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n"
    );
    three.cmd(&["HELLO", "3"]);
    assert_eq!(
        three.wire(&["SSUBSCRIBE", "ch"]),
        ">3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n"
    );
    assert_eq!(p.cmd(&["SPUBLISH", "ch", "hello"]), Frame::Integer(2));
    assert_eq!(
        two.reply_raw().1,
        b"*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
    );
    assert_eq!(
        three.reply_raw().1,
        b">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
    );
    // RESP3 has no subscribed state: any command runs.
    assert_eq!(three.cmd(&["SET", "k", "v"]), Frame::ok());
    assert_eq!(
        three.wire(&["SUNSUBSCRIBE", "ch"]),
        ">3\r\n$12\r\nsunsubscribe\r\n$2\r\nch\r\n:0\r\n"
    );
}

#[test]
fn sunsubscribe_without_arguments_drops_every_shard_channel_in_order() {
    let (_server, [mut c, mut p]) = serve();
    replies(&mut c, &["SSUBSCRIBE", "c3", "c1", "c2"], 3);
    c.cmd(&["SUBSCRIBE", "plain"]);
    assert_eq!(
        replies(&mut c, &["SUNSUBSCRIBE"], 3),
        [
            array("sunsubscribe", "c3", 2),
            array("sunsubscribe", "c1", 1),
            array("sunsubscribe", "c2", 0)
        ]
    );
    for ch in ["c1", "c2", "c3"] {
        assert_eq!(p.cmd(&["SPUBLISH", ch, "m"]), Frame::Integer(0));
    }
    // With no shard channel left, one reply naming none and the shard count (the channel
    // subscription is not counted).
    assert_eq!(
        c.wire(&["SUNSUBSCRIBE"]),
        "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"
    );
    assert_eq!(p.cmd(&["PUBLISH", "plain", "m"]), Frame::Integer(1));
    assert_eq!(c.reply(), bulks(&["message", "plain", "m"]));
}

#[test]
fn a_resp2_shard_subscriber_may_run_only_the_subscription_commands() {
    let (_server, [mut c]) = serve();
    c.cmd(&["SSUBSCRIBE", "ch"]);
    assert_eq!(
        c.cmd(&["GET", "k"]),
        Frame::error(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
    );
    assert_eq!(
        c.cmd(&["SPUBLISH", "ch", "m"]),
        Frame::error(
            "ERR Can't execute 'spublish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
    );
    // A subcommand is named by its full name, as Redis's `c->cmd->fullname`.
    assert_eq!(
        c.cmd(&["CLIENT", "GetName"]),
        Frame::error(
            "ERR Can't execute 'client|getname': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
    );
    // An unknown subcommand names no command: Redis's lookup refuses it first.
    assert_eq!(
        c.cmd(&["CLIENT", "nosuch"]),
        Frame::error("ERR unknown subcommand 'nosuch'. Try CLIENT HELP.")
    );
    assert_eq!(c.cmd(&["PING", "x"]), bulks(&["pong", "x"]));
    assert_eq!(c.cmd(&["SUBSCRIBE", "a"]), array("subscribe", "a", 1));
    assert_eq!(c.cmd(&["UNSUBSCRIBE", "a"]), array("unsubscribe", "a", 0));
    // Still subscribed to a shard channel: still limited.
    assert!(matches!(c.cmd(&["GET", "k"]), Frame::Error(_)));
    assert_eq!(
        c.cmd(&["SUNSUBSCRIBE", "ch"]),
        array("sunsubscribe", "ch", 0)
    );
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn reset_and_a_closed_connection_drop_shard_subscriptions() {
    let (server, [mut c, mut p]) = serve();
    replies(&mut c, &["SSUBSCRIBE", "a", "b"], 2);
    assert_eq!(c.cmd(&["RESET"]), Frame::simple("RESET"));
    assert_eq!(p.cmd(&["SPUBLISH", "a", "m"]), Frame::Integer(0));
    assert_eq!(
        p.cmd(&["PUBSUB", "SHARDCHANNELS"]),
        Frame::Array(Vec::new())
    );
    // Out of the subscribed state: any command runs.
    assert_eq!(c.cmd(&["GET", "k"]), Frame::Null);

    let mut gone = Conn::open(server.addr);
    gone.cmd(&["SSUBSCRIBE", "a"]);
    await_shardnumsub(&mut p, "a", 1);
    drop(gone);
    await_shardnumsub(&mut p, "a", 0);
    assert_eq!(p.cmd(&["SPUBLISH", "a", "m"]), Frame::Integer(0));
}

#[test]
fn pubsub_shardchannels_shardnumsub_and_info_read_the_shard_channels() {
    let (_server, [mut s1, mut s2, mut c]) = serve();
    replies(&mut s1, &["SSUBSCRIBE", "news.a", "news.b", "other"], 3);
    s2.cmd(&["SSUBSCRIBE", "news.a"]);
    s2.cmd(&["SUBSCRIBE", "news.c"]);
    s2.cmd(&["PSUBSCRIBE", "news.*"]);
    assert_eq!(
        sorted(c.cmd(&["PUBSUB", "SHARDCHANNELS"])),
        [bulk("news.a"), bulk("news.b"), bulk("other")]
    );
    assert_eq!(
        sorted(c.cmd(&["PUBSUB", "SHARDCHANNELS", "news.*"])),
        [bulk("news.a"), bulk("news.b")]
    );
    assert_eq!(c.cmd(&["PUBSUB", "CHANNELS"]), bulks(&["news.c"]));
    assert_eq!(
        c.cmd(&["PUBSUB", "SHARDNUMSUB", "news.a", "other", "news.c"]),
        counts(&[("news.a", 2), ("other", 1), ("news.c", 0)])
    );
    assert_eq!(
        c.cmd(&["PUBSUB", "NUMSUB", "news.a", "news.c"]),
        counts(&[("news.a", 0), ("news.c", 1)])
    );
    assert_eq!(c.cmd(&["PUBSUB", "SHARDNUMSUB"]), Frame::Array(Vec::new()));
    assert_eq!(
        c.cmd(&["PUBSUB", "SHARDCHANNELS", "a", "b"]),
        Frame::error(
            "ERR unknown subcommand or wrong number of arguments for 'SHARDCHANNELS'. Try PUBSUB HELP."
        )
    );
    let info = text(c.cmd(&["INFO", "stats"]));
    for want in [
        "pubsub_channels:1\r\n",
        "pubsub_patterns:1\r\n",
        "pubsubshard_channels:3\r\n",
    ] {
        assert!(info.contains(want), "{want} missing from {info}");
    }
}

#[test]
fn client_list_and_client_kill_count_shard_subscribers() {
    let (_server, [mut sub, mut c]) = serve();
    replies(&mut sub, &["SSUBSCRIBE", "a", "b"], 2);
    let addr = sub.local_addr().to_string();
    let list = text(c.cmd(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.contains(&format!("addr={addr} ")))
        .unwrap();
    assert!(
        line.contains(" flags=P ") && line.contains(" sub=0 psub=0 ssub=2 "),
        "{line}"
    );
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "TYPE", "normal", "ADDR", &addr]),
        Frame::Integer(0)
    );
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]),
        Frame::Integer(1)
    );
    let mut rest = Vec::new();
    sub.stream().read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the kill: {rest:?}");
}

#[test]
fn spublish_runs_in_scripts_and_transactions_and_ssubscribe_in_neither() {
    let (_server, [mut sub, mut c]) = serve();
    sub.cmd(&["SSUBSCRIBE", "ch"]);
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return redis.call('spublish', KEYS[1], ARGV[1])",
            "1",
            "ch",
            "from-lua",
        ]),
        Frame::Integer(1)
    );
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(
        c.cmd(&["SPUBLISH", "ch", "from-multi"]),
        Frame::simple("QUEUED")
    );
    assert_eq!(c.cmd(&["EXEC"]), Frame::Array(vec![Frame::Integer(1)]));
    assert_eq!(sub.reply(), bulks(&["smessage", "ch", "from-lua"]));
    assert_eq!(sub.reply(), bulks(&["smessage", "ch", "from-multi"]));
    // SSUBSCRIBE has Redis's `noscript` flag, and a transaction runs as a client that may not
    // subscribe (`CLIENT_DENY_BLOCKING`).
    let Frame::Error(e) = c.cmd(&["EVAL", "return redis.call('ssubscribe', 'x')", "0"]) else {
        panic!("SSUBSCRIBE ran in a script");
    };
    assert!(
        e.starts_with("ERR This Redis command is not allowed from script"),
        "{e}"
    );
    c.cmd(&["MULTI"]);
    c.cmd(&["SSUBSCRIBE", "x"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Frame::Array(vec![Frame::error(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client"
        )])
    );
    assert_eq!(c.cmd(&["PUBSUB", "SHARDNUMSUB", "x"]), counts(&[("x", 0)]));
}

#[test]
fn monitors_see_the_shard_commands() {
    let (server, [mut m]) = serve();
    assert_eq!(m.cmd(&["MONITOR"]), Frame::ok());
    let mut c = Conn::open(server.addr);
    let mut p = Conn::open(server.addr);
    c.cmd(&["SSUBSCRIBE", "ch"]);
    p.cmd(&["SPUBLISH", "ch", "m"]);
    assert_eq!(c.reply(), bulks(&["smessage", "ch", "m"]));
    c.cmd(&["SUNSUBSCRIBE"]);
    p.cmd(&["PUBSUB", "SHARDNUMSUB", "ch"]);
    for want in [
        "\"SSUBSCRIBE\" \"ch\"",
        "\"SPUBLISH\" \"ch\" \"m\"",
        "\"SUNSUBSCRIBE\"",
        "\"PUBSUB\" \"SHARDNUMSUB\" \"ch\"",
    ] {
        let Frame::Simple(line) = m.reply() else {
            panic!("expected a monitor line");
        };
        assert!(line.ends_with(want), "{line} should end with {want}");
    }
}

/// A shard subscriber that stops reading is held to the pubsub class's output buffer limit
/// like any subscriber: at a lowered hard limit it is disconnected (its stream ends), and
/// SPUBLISH stops counting it once its connection is gone.
#[test]
fn a_slow_shard_subscriber_is_disconnected_at_a_lowered_pubsub_limit() {
    const PAYLOAD: usize = 256 * 1024;
    let (server, [mut p]) = serve();
    let limit = [
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 1mb 0 0",
    ];
    assert_eq!(p.cmd(&limit), Frame::ok());
    let mut sub = Conn::open(server.addr);
    assert_eq!(sub.cmd(&["SSUBSCRIBE", "ch"]), array("ssubscribe", "ch", 1));
    let payload = vec![b'.'; PAYLOAD];
    let mut published = 0usize;
    loop {
        match p.raw(&[b"SPUBLISH", b"ch", &payload]) {
            Frame::Integer(0) => break,
            Frame::Integer(1) => published += 1,
            other => panic!("unexpected SPUBLISH reply {other:?}"),
        }
        assert!(
            published * PAYLOAD < PUBSUB_BUFFER_BYTES_MAX,
            "still subscribed after {published} messages"
        );
    }
    // What reached the socket, then end of file.
    let mut rest = Vec::new();
    sub.stream().read_to_end(&mut rest).unwrap();
    assert!(rest.len() < published * PAYLOAD + 4096, "{}", rest.len());
}
