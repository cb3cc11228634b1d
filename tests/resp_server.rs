//! Capability: the RESP server speaks Redis's protocol to a real client — pipelining, MULTI/EXEC
//! with WATCH, pub/sub, blocking pops, AUTH, HELLO 3 — and enforces its limits (connections,
//! output buffer, bulk, multibulk and inline lengths) with Redis's own error texts.
//! Method: serve on 127.0.0.1:0 inside a tokio runtime; talk to it with the `redis` crate and
//! with raw sockets. Waits are bounded socket timeouts, never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use streamcache::cache::{
    Cache, CacheConfig, Frame, MULTI_QUEUE_LEN_MAX, OUTPUT_BUFFER_BYTES_MAX,
    PUBSUB_BUFFER_BYTES_MAX, QUERY_BUFFER_BYTES_MAX, RESP_BULK_BYTES_MAX, RESP_INLINE_BYTES_MAX,
    RESP_MULTIBULK_LEN_MAX, RESP_UNAUTH_BULK_BYTES_MAX, RESP_UNAUTH_MULTIBULK_LEN_MAX, RespConfig,
    SUBSCRIPTIONS_MAX, WATCHED_KEYS_MAX,
};
use streamcache::clock::ManualClock;

mod resp_common;
use resp_common::{Conn, Server, err};

fn start(auth: Option<&str>, connections_max: usize, output_max: usize) -> Server {
    let cache = Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    );
    let config = RespConfig {
        auth_token: auth.map(str::to_owned),
        connections_max,
        output_buffer_bytes_max: output_max,
    };
    resp_common::serve(cache, config)
}

/// A server with the default configuration on a `ManualClock`, for tests that drive its
/// housekeeping by hand.
fn start_with_clock() -> (Arc<ManualClock>, Cache, Server) {
    let clock = ManualClock::shared(1_000_000);
    let cache = Cache::new(CacheConfig::default(), clock.clone());
    let s = resp_common::serve(cache.clone(), RespConfig::from_cache(&cache, None));
    (clock, cache, s)
}

fn client(s: &Server) -> redis::Connection {
    let c = redis::Client::open(format!("redis://{}/", s.addr)).unwrap();
    let con = c
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    con
}

/// Sends raw bytes and reads what arrives until the server closes or 1 s passes quietly.
fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn set_get_pipeline_and_types() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let (): () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(60)
        .query(&mut con)
        .unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
    let (a, b, c): (i64, i64, Vec<String>) = redis::pipe()
        .cmd("INCR")
        .arg("n")
        .cmd("RPUSH")
        .arg("l")
        .arg("x")
        .arg("y")
        .cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!((a, b, c), (1, 2, vec!["x".to_owned(), "y".to_owned()]));
    let err = redis::cmd("NOPE").query::<()>(&mut con).unwrap_err();
    assert!(err.to_string().contains("unknown command 'NOPE'"), "{err}");
    let (): () = redis::cmd("SELECT").arg(3).query(&mut con).unwrap();
    let none: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(none, None);
}

#[test]
fn multi_exec_and_watch() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut a = client(&s);
    let mut b = client(&s);
    let (): () = redis::cmd("WATCH").arg("w").query(&mut a).unwrap();
    let (): () = redis::cmd("SET")
        .arg("w")
        .arg("other")
        .query(&mut b)
        .unwrap();
    let (): () = redis::cmd("MULTI").query(&mut a).unwrap();
    let q: String = redis::cmd("SET")
        .arg("w")
        .arg("mine")
        .query(&mut a)
        .unwrap();
    assert_eq!(q, "QUEUED");
    let r: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(r, None, "a watched key changed, so EXEC aborts");
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("c")
        .query(&mut a)
        .unwrap();
    assert_eq!(n, 1);
}

/// A transaction runs the connection commands it queued in their place, as Redis 7.0.15 runs
/// them (CLIENT, UNWATCH, AUTH, READONLY, HELLO, SUBSCRIBE): a SUBSCRIBE leaves the client
/// subscribed after EXEC.
#[test]
fn exec_runs_the_connection_commands_it_queued() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["MULTI"]), Frame::simple("OK"));
    for args in [
        &["CLIENT", "SETNAME", "x"][..],
        &["CLIENT", "GETNAME"],
        &["UNWATCH"],
        &["AUTH", "a"],
        &["READONLY"],
        &["HELLO", "2", "SETNAME", "y"],
        &["SUBSCRIBE", "c"],
    ] {
        assert_eq!(c.cmd(args), Frame::simple("QUEUED"), "{args:?}");
    }
    let Frame::Array(replies) = c.cmd(&["EXEC"]) else {
        panic!("EXEC answers an array")
    };
    assert_eq!(replies.len(), 7);
    assert_eq!(
        replies[..5],
        [
            Frame::simple("OK"),
            Frame::bulk(b"x"),
            Frame::simple("OK"),
            err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
            ),
            err("ERR This instance has cluster support disabled"),
        ]
    );
    let Frame::Array(hello) = &replies[5] else {
        panic!("HELLO 2 answers an array: {:?}", replies[5])
    };
    assert_eq!(hello[..2], [Frame::bulk(b"server"), Frame::bulk(b"redis")]);
    assert_eq!(
        replies[6],
        Frame::Array(vec![
            Frame::bulk(b"subscribe"),
            Frame::bulk(b"c"),
            Frame::Integer(1)
        ])
    );
    assert_eq!(
        c.cmd(&["GET", "k"]),
        err(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        )
    );
    assert_eq!(
        c.cmd(&["UNSUBSCRIBE"]),
        Frame::Array(vec![
            Frame::bulk(b"unsubscribe"),
            Frame::bulk(b"c"),
            Frame::Integer(0)
        ])
    );
    assert_eq!(
        c.cmd(&["CLIENT", "GETNAME"]),
        Frame::bulk(b"y"),
        "HELLO's SETNAME ran after CLIENT SETNAME"
    );
    // MONITOR refuses a transaction's client, as Redis refuses a DENY BLOCKING one.
    assert_eq!(c.cmd(&["MULTI"]), Frame::simple("OK"));
    assert_eq!(c.cmd(&["MONITOR"]), Frame::simple("QUEUED"));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Frame::Array(vec![err(
            "ERR MONITOR isn't allowed for DENY BLOCKING client"
        )])
    );
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"), "not monitoring");
}

/// A flush or swap fails the WATCHes of the keys it changes and no others (Redis 7.0's
/// `touchAllWatchedKeysInDb`).
#[test]
fn flushes_and_swaps_touch_only_the_watched_keys_they_change() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut a = client(&s);
    let mut b = client(&s);
    // EXEC's outcome after WATCH `key` (set beforehand when `exists`) and `change` from b.
    let mut exec_after = |exists: bool, change: &[&str]| -> Option<Vec<String>> {
        let (): () = redis::cmd("FLUSHALL").query(&mut b).unwrap();
        if exists {
            let (): () = redis::cmd("SET").arg("x").arg("1").query(&mut b).unwrap();
        }
        let (): () = redis::cmd("WATCH").arg("x").query(&mut a).unwrap();
        let mut cmd = redis::cmd(change[0]);
        for arg in &change[1..] {
            cmd.arg(*arg);
        }
        cmd.query::<redis::Value>(&mut b).unwrap();
        let (): () = redis::cmd("MULTI").query(&mut a).unwrap();
        let _: String = redis::cmd("PING").query(&mut a).unwrap();
        redis::cmd("EXEC").query(&mut a).unwrap()
    };
    let ran = Some(vec!["PONG".to_owned()]);
    assert_eq!(exec_after(true, &["FLUSHALL"]), None);
    assert_eq!(exec_after(false, &["FLUSHALL"]), ran);
    assert_eq!(exec_after(true, &["FLUSHDB"]), None);
    assert_eq!(exec_after(false, &["FLUSHDB"]), ran);
    // SWAPDB: a watched key that exists on either side changes.
    assert_eq!(exec_after(true, &["SWAPDB", "0", "1"]), None);
    assert_eq!(exec_after(false, &["SWAPDB", "0", "1"]), ran);
}

#[test]
fn pubsub_delivers() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut sub_con = client(&s);
    let mut publisher = client(&s);
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("orders").unwrap();
    sub.psubscribe("ord*").unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 2);
    let m1 = sub.get_message().unwrap();
    let m2 = sub.get_message().unwrap();
    let payloads: Vec<String> = [m1, m2].iter().map(|m| m.get_payload().unwrap()).collect();
    assert_eq!(payloads, vec!["hello", "hello"]);
}

#[test]
fn blocking_pop_is_woken_by_a_push() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let addr = s.addr;
    let waiter = std::thread::spawn(move || {
        let mut con = redis::Client::open(format!("redis://{addr}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        redis::cmd("BLPOP")
            .arg("q")
            .arg(0)
            .query::<(String, String)>(&mut con)
            .unwrap()
    });
    let mut con = client(&s);
    // The push must come after the waiter is parked, or it would test a plain pop.
    wait_blocked(&mut con, 1);
    let _: i64 = redis::cmd("RPUSH")
        .arg("q")
        .arg("job")
        .query(&mut con)
        .unwrap();
    assert_eq!(waiter.join().unwrap(), ("q".to_owned(), "job".to_owned()));
    let timed_out: Option<(String, String)> = redis::cmd("BLPOP")
        .arg("empty")
        .arg("0.01")
        .query(&mut con)
        .unwrap();
    assert_eq!(timed_out, None);
}

#[test]
fn auth_is_required_when_a_token_is_set() {
    let s = start(Some("sesame"), 100, OUTPUT_BUFFER_BYTES_MAX);
    let reply = raw(
        s.addr,
        b"GET k\r\nAUTH wrong\r\nAUTH sesame\r\nPING\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+PONG\r\n+OK\r\n"
    );
    let c = redis::Client::open(format!("redis://:sesame@{}/", s.addr)).unwrap();
    let mut con = c.get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

/// AUTH and HELLO as Redis 7.0 answers them with the default user alone: without a password
/// that user is `nopass`, so `AUTH default <anything>` succeeds and another user is WRONGPASS;
/// HELLO's SETNAME is checked as CLIENT SETNAME's and set as it is read; RESET drops the name.
#[test]
fn auth_hello_and_reset_treat_the_user_and_name_as_redis_7_0() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Conn::open(s.addr);
    assert_eq!(
        c.cmd(&["AUTH", "pw"]),
        err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
        )
    );
    assert_eq!(c.cmd(&["AUTH", "default", "pw"]), Frame::ok());
    let wrongpass = err("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(c.cmd(&["AUTH", "someone", "pw"]), wrongpass);
    assert_eq!(c.cmd(&["HELLO", "3", "AUTH", "someone", "pw"]), wrongpass);
    let bad_name = err("ERR Client names cannot contain spaces, newlines or special characters.");
    assert_eq!(c.cmd(&["HELLO", "3", "SETNAME", "a b"]), bad_name);
    assert_eq!(c.cmd(&["HELLO", "3", "SETNAME", "a\nb"]), bad_name);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Frame::Null);
    assert_eq!(
        c.cmd(&["HELLO", "2", "SETNAME", "first", "LATER"]),
        err("ERR Syntax error in HELLO option 'LATER'")
    );
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), resp_common::bulk("first"));
    let Frame::Array(hello) = c.cmd(&["HELLO", "2", "AUTH", "default", "x", "SETNAME", "second"])
    else {
        panic!("HELLO 2 answers an array");
    };
    assert_eq!(hello.first(), Some(&resp_common::bulk("server")));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), resp_common::bulk("second"));
    assert_eq!(c.cmd(&["RESET"]), Frame::simple("RESET"));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Frame::Null);

    // With a password, a wrong one is WRONGPASS and HELLO without AUTH is refused.
    let s = start(Some("sesame"), 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["HELLO", "3", "AUTH", "default", "x"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "someone", "sesame"]), wrongpass);
    assert_eq!(
        c.cmd(&["HELLO", "3"]),
        err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
        )
    );
    assert!(matches!(
        c.cmd(&["HELLO", "3", "AUTH", "default", "sesame"]),
        Frame::Map(_)
    ));
}

/// A multibulk request of `n` arguments: a command name, then `a`s.
fn request_of_len(name: &str, n: usize) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![name.as_bytes()];
    args.resize(n, b"a");
    resp_common::encode(&args)
}

/// A multibulk `<name> k <value of n bytes>` request.
fn request_with_bulk(name: &str, n: usize) -> Vec<u8> {
    resp_common::encode(&[name.as_bytes(), b"k", &vec![b'v'; n]])
}

#[test]
fn unauthenticated_clients_get_redis_small_request_limits_at_max_and_above() {
    let s = start(Some("sesame"), 100, OUTPUT_BUFFER_BYTES_MAX);
    let noauth = "-NOAUTH Authentication required.\r\n";
    let then_quit = |mut req: Vec<u8>| {
        req.extend_from_slice(b"QUIT\r\n");
        String::from_utf8(raw(s.addr, &req)).unwrap()
    };
    // At the limits the request is read whole and refused as any command before AUTH.
    assert_eq!(
        then_quit(request_of_len("GET", RESP_UNAUTH_MULTIBULK_LEN_MAX)),
        format!("{noauth}+OK\r\n")
    );
    assert_eq!(
        then_quit(request_with_bulk("SET", RESP_UNAUTH_BULK_BYTES_MAX)),
        format!("{noauth}+OK\r\n")
    );
    // One past them: Redis's protocol error as soon as the header arrives, and the connection
    // is closed (the QUIT after it is never answered).
    assert_eq!(
        then_quit(request_of_len("GET", RESP_UNAUTH_MULTIBULK_LEN_MAX + 1)),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    assert_eq!(
        then_quit(request_with_bulk("SET", RESP_UNAUTH_BULK_BYTES_MAX + 1)),
        "-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    assert_eq!(
        raw(
            s.addr,
            format!("*1\r\n${}\r\n", RESP_UNAUTH_BULK_BYTES_MAX + 1).as_bytes()
        ),
        b"-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    // An AUTH lifts them for the requests after it, in the same batch too.
    let mut batch = b"AUTH sesame\r\n".to_vec();
    batch.extend_from_slice(&request_of_len("RPUSH", RESP_UNAUTH_MULTIBULK_LEN_MAX + 1));
    batch.extend_from_slice(&request_with_bulk("SET", RESP_UNAUTH_BULK_BYTES_MAX + 1));
    batch.extend_from_slice(b"STRLEN k\r\n");
    assert_eq!(
        then_quit(batch),
        format!(
            "+OK\r\n:{}\r\n+OK\r\n:{}\r\n+OK\r\n",
            RESP_UNAUTH_MULTIBULK_LEN_MAX - 1,
            RESP_UNAUTH_BULK_BYTES_MAX + 1
        )
    );
    // RESET makes the client unauthenticated again.
    let mut batch = b"AUTH sesame\r\nRESET\r\n".to_vec();
    batch.extend_from_slice(&request_of_len("GET", RESP_UNAUTH_MULTIBULK_LEN_MAX + 1));
    assert_eq!(
        then_quit(batch),
        "+OK\r\n+RESET\r\n-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
}

#[test]
fn without_a_password_every_client_counts_as_authenticated() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut batch = request_of_len("RPUSH", RESP_UNAUTH_MULTIBULK_LEN_MAX + 1);
    batch.extend_from_slice(&request_with_bulk("SET", RESP_UNAUTH_BULK_BYTES_MAX + 1));
    batch.extend_from_slice(b"STRLEN k\r\nQUIT\r\n");
    assert_eq!(
        String::from_utf8(raw(s.addr, &batch)).unwrap(),
        format!(
            ":{}\r\n+OK\r\n:{}\r\n+OK\r\n",
            RESP_UNAUTH_MULTIBULK_LEN_MAX - 1,
            RESP_UNAUTH_BULK_BYTES_MAX + 1
        )
    );
}

#[test]
fn hello_3_switches_to_resp3() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let reply = String::from_utf8(raw(
        s.addr,
        b"HSET h f v\r\nHELLO 3\r\nHGETALL h\r\nGET nope\r\nQUIT\r\n",
    ))
    .unwrap();
    assert!(
        reply.starts_with(":1\r\n%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{reply}"
    );
    assert!(
        reply.ends_with("%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n+OK\r\n"),
        "{reply}"
    );
}

#[test]
fn connection_limit_at_max_and_above() {
    let s = start(None, 2, OUTPUT_BUFFER_BYTES_MAX);
    let mut first = client(&s);
    let mut second = client(&s);
    let _: String = redis::cmd("PING").query(&mut first).unwrap();
    let _: String = redis::cmd("PING").query(&mut second).unwrap();
    let third = raw(s.addr, b"PING\r\n");
    assert_eq!(third, b"-ERR max number of clients reached\r\n");
    drop(first);
    // The slot frees once the server notices the close; retry (bounded) until it does.
    let mut ok = false;
    for _ in 0..200 {
        if raw(s.addr, b"PING\r\nQUIT\r\n").starts_with(b"+PONG") {
            ok = true;
            break;
        }
    }
    assert!(ok, "a freed slot is reusable");
}

/// CONFIG SET maxclients lowers (and raises back, up to the server's own limit) the number of
/// connections accepted at once, at its value and one past it, and INFO reports it; it had
/// been stored and read back with no effect.
#[test]
fn maxclients_limits_connections_at_run_time() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut first = client(&s);
    config_set(&mut first, "maxclients", "2").unwrap();
    let info: String = redis::cmd("INFO").arg("clients").query(&mut first).unwrap();
    assert!(info.contains("\r\nmaxclients:2\r\n"), "{info}");
    // The second connection is the last one maxclients 2 allows.
    let mut second = client(&s);
    let _: String = redis::cmd("PING").query(&mut second).unwrap();
    assert_eq!(
        raw(s.addr, b"PING\r\n"),
        b"-ERR max number of clients reached\r\n"
    );
    config_set(&mut first, "maxclients", "3").unwrap();
    assert!(raw(s.addr, b"PING\r\nQUIT\r\n").starts_with(b"+PONG"));
}

#[test]
fn output_buffer_limit_at_max_and_above() {
    // A GET of a 1000-byte value is a 1009-byte reply ("$1000\r\n" + data + "\r\n").
    let s = start(None, 100, 1009);
    let mut con = client(&s);
    let (): () = redis::cmd("SET")
        .arg("at")
        .arg(vec![b'a'; 1000])
        .query(&mut con)
        .unwrap();
    let (): () = redis::cmd("SET")
        .arg("over")
        .arg(vec![b'a'; 1001])
        .query(&mut con)
        .unwrap();
    let v: Vec<u8> = redis::cmd("GET").arg("at").query(&mut con).unwrap();
    assert_eq!(v.len(), 1000);
    assert!(
        raw(s.addr, b"GET over\r\n").is_empty(),
        "the client is disconnected without the reply"
    );
}

#[test]
fn protocol_limits_at_max_and_above() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    // At the maximum the server waits for the rest of the request: nothing comes back.
    assert!(
        raw(
            s.addr,
            format!("*1\r\n${RESP_BULK_BYTES_MAX}\r\n").as_bytes()
        )
        .is_empty()
    );
    assert!(raw(s.addr, format!("*{RESP_MULTIBULK_LEN_MAX}\r\n").as_bytes()).is_empty());
    assert!(raw(s.addr, &vec![b'a'; RESP_INLINE_BYTES_MAX]).is_empty());
    // One past it is refused with Redis's text and the connection closed.
    assert_eq!(
        raw(
            s.addr,
            format!("*1\r\n${}\r\n", RESP_BULK_BYTES_MAX + 1).as_bytes()
        ),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(
        raw(
            s.addr,
            format!("*{}\r\n", RESP_MULTIBULK_LEN_MAX + 1).as_bytes()
        ),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(
        raw(s.addr, &vec![b'a'; RESP_INLINE_BYTES_MAX + 1]),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    assert_eq!(
        raw(s.addr, b"*1\r\nfoo\r\n"),
        b"-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    let _ = &s.rt;
}

#[test]
fn error_texts_that_echo_input_cannot_break_the_reply_stream() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    // Redis replaces CR and LF with spaces in error and status replies, so a client's argument
    // echoed in an error stays inside that one reply.
    let reply = raw(
        s.addr,
        b"SET k v\r\n*4\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n$12\r\nx\r\n+INJECTED\r\n\
          *2\r\n$6\r\nCONFIG\r\n$4\r\nf\no\r\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "+OK\r\n-ERR Unsupported option x  +INJECTED\r\n\
         -ERR unknown subcommand 'f o '. Try CONFIG HELP.\r\n+OK\r\n"
    );
}

#[test]
fn unsubscribe_without_arguments_counts_down() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    // Each reply gives the subscriptions left after that one went, as Redis does; they go in
    // the order they were made.
    let reply = raw(
        s.addr,
        b"SUBSCRIBE a b\r\nPSUBSCRIBE p\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE\r\n\
          RESET\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n\
         *3\r\n$10\r\npsubscribe\r\n$1\r\np\r\n:3\r\n\
         *3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n\
         *3\r\n$12\r\npunsubscribe\r\n$1\r\np\r\n:0\r\n\
         *3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n+RESET\r\n+OK\r\n"
    );
    let reply = raw(
        s.addr,
        b"HELLO 3\r\nSUBSCRIBE a b c\r\nPSUBSCRIBE p q\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE\r\nQUIT\r\n",
    );
    let reply = String::from_utf8(reply).unwrap();
    let tail = reply
        .split_once(">3\r\n$10\r\npsubscribe\r\n$1\r\nq\r\n:5\r\n")
        .unwrap()
        .1;
    assert_eq!(
        tail,
        ">3\r\n$12\r\npunsubscribe\r\n$1\r\np\r\n:4\r\n>3\r\n$12\r\npunsubscribe\r\n$1\r\nq\r\n:3\r\n\
         >3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n>3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n\
         >3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n+OK\r\n"
    );
}

#[test]
fn multi_refuses_commands_queued_over_maxmemory() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    // As Redis: over maxmemory (and nothing to evict), every command queued after MULTI is
    // refused with OOM, and EXEC then discards the transaction.
    let reply = raw(
        s.addr,
        b"CONFIG SET maxmemory-policy noeviction\r\nSET a b\r\nCONFIG SET maxmemory 1\r\n\
          SET x y\r\nMULTI\r\nSET x y\r\nGET a\r\nEXEC\r\nGET x\r\n\
          CONFIG SET maxmemory 0\r\nMULTI\r\nSET x y\r\nEXEC\r\nQUIT\r\n",
    );
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        format!(
            "+OK\r\n+OK\r\n+OK\r\n{oom}+OK\r\n{oom}{oom}\
             -EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n\
             +OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n+OK\r\n"
        )
    );
}

/// A subscriber that stops reading is disconnected once the messages pending for it reach
/// Redis's 32 MiB pub/sub hard limit, instead of losing messages silently: what it can still
/// read is every message from the first, in order (the last possibly cut short), then end of
/// file. PUBLISH counts it as a receiver until it is gone.
#[test]
fn a_subscriber_that_stops_reading_is_disconnected_instead_of_skipped() {
    const PAYLOAD: usize = 1024 * 1024;
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut sub = TcpStream::connect(s.addr).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sub.write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        .unwrap();
    let confirm = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    let mut got = vec![0u8; confirm.len()];
    sub.read_exact(&mut got).unwrap();
    assert_eq!(&got[..], confirm);
    // The subscriber now reads nothing while 1 MiB messages are published to it.
    let mut publisher = client(&s);
    let mut published = 0usize;
    loop {
        let mut payload = format!("{published:08}").into_bytes();
        payload.resize(PAYLOAD, b'.');
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg(payload)
            .query(&mut publisher)
            .unwrap();
        if receivers == 0 {
            break;
        }
        assert_eq!(receivers, 1);
        published += 1;
        assert!(published < 256, "still subscribed after {published} MiB");
    }
    assert!(
        published * PAYLOAD >= PUBSUB_BUFFER_BYTES_MAX,
        "{published}"
    );
    // What reached the socket before the close, then end of file (a timeout or reset fails).
    let mut stream = Vec::new();
    sub.read_to_end(&mut stream).unwrap();
    let header = format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${PAYLOAD}\r\n");
    let frame = header.len() + PAYLOAD + 2;
    let mut received = 0usize;
    let mut rest = &stream[..];
    while !rest.is_empty() {
        let whole = rest.len() >= frame;
        let n = rest.len().min(frame);
        assert!(
            rest[..n.min(header.len())] == header.as_bytes()[..n.min(header.len())],
            "message {received} does not start as a message frame"
        );
        if n > header.len() {
            let seq = &rest[header.len()..n.min(header.len() + 8)];
            let want = format!("{received:08}");
            assert_eq!(
                seq,
                &want.as_bytes()[..seq.len()],
                "gap before message {received}"
            );
        }
        if !whole {
            break;
        }
        received += 1;
        rest = &rest[frame..];
    }
    assert!(!stream.is_empty(), "nothing arrived before the close");
    assert!(received < published, "{received} of {published} arrived");
}

/// A raw connection that sends inline commands and reads replies (5 s read timeout: a hang
/// guard, not a wait).
struct Raw(TcpStream);

impl Raw {
    fn connect(s: &Server) -> Self {
        let stream = TcpStream::connect(s.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Self(stream)
    }

    fn send(&mut self, line: &str) {
        self.0.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Reads exactly `want.len()` bytes and checks them.
    fn expect(&mut self, want: &[u8]) {
        let mut got = vec![0u8; want.len()];
        self.0.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }

    /// The client's id, from CLIENT ID.
    fn id(&mut self) -> u64 {
        self.send("CLIENT ID");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            self.0.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        let text = String::from_utf8(line).unwrap();
        text.trim_start_matches(':').trim_end().parse().unwrap()
    }

    /// Its address as the server sees it (CLIENT KILL ADDR).
    fn addr(&self) -> String {
        self.0.local_addr().unwrap().to_string()
    }

    /// Asserts the server closed the connection without sending anything more: end of file
    /// (a timeout, i.e. a connection left open, fails).
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        self.0.read_to_end(&mut rest).unwrap();
        assert_eq!(String::from_utf8_lossy(&rest), "", "nothing after the kill");
    }
}

/// Polls INFO until `blocked_clients` reads `n` (bounded; each round trip lets the server's
/// thread run the blocked connection's task).
fn wait_blocked(con: &mut redis::Connection, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    let reached = (0..1000).any(|_| {
        let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
        std::thread::yield_now();
        info.contains(&want)
    });
    assert!(reached, "blocked_clients never reached {n}");
}

fn client_list(con: &mut redis::Connection) -> String {
    redis::cmd("CLIENT").arg("LIST").query(con).unwrap()
}

/// As Redis's `freeClient`, CLIENT KILL closes a client blocked in a pop: the killer gets its
/// count (or +OK in the old form), the victim's socket reaches end of file without a reply,
/// CLIENT LIST and INFO drop it, and a later push is not taken by it.
#[test]
fn client_kill_closes_a_client_blocked_in_a_pop() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let pops = [
        "BLPOP q 0",
        "BRPOP q 0",
        "BLMOVE q dst LEFT RIGHT 0",
        "BLMPOP 0 1 q LEFT",
    ];
    for (round, pop) in pops.iter().enumerate() {
        for form in ["id", "addr", "old"] {
            let mut victim = Raw::connect(&s);
            let id = victim.id();
            victim.send(pop);
            wait_blocked(&mut con, 1);
            let mut kill = redis::cmd("CLIENT");
            kill.arg("KILL");
            match form {
                "id" => kill.arg("ID").arg(id),
                "addr" => kill.arg("ADDR").arg(victim.addr()),
                _ => kill.arg(victim.addr()),
            };
            if form == "old" {
                let ok: String = kill.query(&mut con).unwrap();
                assert_eq!(ok, "OK");
            } else {
                let killed: i64 = kill.query(&mut con).unwrap();
                assert_eq!(killed, 1, "{pop} killed by {form}");
            }
            assert!(
                !client_list(&mut con).contains(&format!("id={id} ")),
                "{pop}: the killed client is gone from CLIENT LIST at once"
            );
            victim.expect_closed();
            wait_blocked(&mut con, 0);
            let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
            assert!(info.contains("connected_clients:1\r\n"), "{info}");
        }
        // Nobody is waiting any more: a push stays in the list.
        let len: i64 = redis::cmd("RPUSH")
            .arg("q")
            .arg(round)
            .query(&mut con)
            .unwrap();
        assert_eq!(len, 1, "{pop}: no killed client took the element");
        let _: i64 = redis::cmd("DEL").arg("q").query(&mut con).unwrap();
    }
}

/// A subscribed client and a client inside MULTI are closed by CLIENT KILL too; TYPE selects
/// pub/sub or normal clients, and the filters must all match (Redis ANDs them).
#[test]
fn client_kill_closes_subscribers_and_clients_in_multi_and_ands_its_filters() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let me: u64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();

    let mut sub = Raw::connect(&s);
    let sub_id = sub.id();
    sub.send("SUBSCRIBE ch");
    sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let mut multi = Raw::connect(&s);
    let multi_id = multi.id();
    multi.send("MULTI");
    multi.expect(b"+OK\r\n");
    multi.send("SET queued 1");
    multi.expect(b"+QUEUED\r\n");

    let kill = |con: &mut redis::Connection, args: &[&str]| -> redis::RedisResult<i64> {
        redis::cmd("CLIENT").arg("KILL").arg(args).query(con)
    };
    // Every filter must match: the right id with another address kills nobody.
    assert_eq!(
        kill(
            &mut con,
            &["ID", &sub_id.to_string(), "ADDR", &multi.addr()]
        )
        .unwrap(),
        0
    );
    // SKIPME defaults to yes in the new form.
    assert_eq!(kill(&mut con, &["ID", &me.to_string()]).unwrap(), 0);
    assert_eq!(kill(&mut con, &["TYPE", "master"]).unwrap(), 0);
    let err = |r: redis::RedisResult<i64>| r.unwrap_err().to_string();
    assert!(err(kill(&mut con, &["ID", "0"])).contains("client-id should be greater than 0"));
    assert!(err(kill(&mut con, &["ID", "x"])).contains("client-id should be greater than 0"));
    assert!(err(kill(&mut con, &["TYPE", "odd"])).contains("Unknown client type 'odd'"));
    assert!(err(kill(&mut con, &["USER", "nobody"])).contains("No such user 'nobody'"));
    assert!(err(kill(&mut con, &["SKIPME", "maybe"])).contains("syntax error"));
    assert!(err(kill(&mut con, &["ID", "1", "TYPE"])).contains("syntax error"));

    assert_eq!(kill(&mut con, &["TYPE", "pubsub"]).unwrap(), 1);
    sub.expect_closed();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("m")
        .query(&mut con)
        .unwrap();
    assert_eq!(receivers, 0);

    assert_eq!(
        kill(&mut con, &["TYPE", "normal", "ID", &multi_id.to_string()]).unwrap(),
        1
    );
    multi.expect_closed();
    let exists: i64 = redis::cmd("EXISTS").arg("queued").query(&mut con).unwrap();
    assert_eq!(exists, 0, "the killed transaction never ran");
    let list = client_list(&mut con);
    assert!(!list.contains(&format!("id={sub_id} ")), "{list}");
    assert!(!list.contains(&format!("id={multi_id} ")), "{list}");

    // The old form may name the caller itself: it gets +OK, then the connection closes.
    let mut own = Raw::connect(&s);
    let addr = own.addr();
    own.send(&format!("CLIENT KILL {addr}"));
    own.expect(b"+OK\r\n");
    own.expect_closed();
}

/// As Redis's `clientsCronHandleTimeout`, `timeout` closes a client idle for more than that many
/// seconds (whole seconds of the clock) at the next housekeeping pass, without a reply, and
/// drops it from CLIENT LIST and INFO; blocked clients, subscribers and MONITORs stay, and the
/// end of a blocking wait counts as interaction. Driven by a `ManualClock` and direct
/// housekeeping passes.
#[test]
fn timeout_closes_idle_clients_but_not_blocked_subscribed_or_monitoring_ones() {
    let (clock, cache, s) = start_with_clock();
    let mut con = client(&s);
    let mut idle = Raw::connect(&s);
    let idle_id = idle.id();
    let mut sub = Raw::connect(&s);
    sub.send("SUBSCRIBE ch");
    sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let mut monitor = Raw::connect(&s);
    monitor.send("MONITOR");
    monitor.expect(b"+OK\r\n");
    let mut blocked = Raw::connect(&s);
    blocked.send("BLPOP q 0");
    wait_blocked(&mut con, 1);

    // `timeout 0` (the default) closes nobody, however long they wait.
    clock.advance(Duration::from_secs(1000));
    assert_eq!(cache.close_idle_clients(), 0);

    config_set(&mut con, "timeout", "10").unwrap();
    assert_eq!(config_get(&mut con, "timeout"), "10");
    assert_eq!(idle.id(), idle_id);
    // Idle for exactly the timeout: not more than it, so kept.
    idle_others_for(&clock, &mut con, 10);
    assert_eq!(cache.close_idle_clients(), 0);
    idle_others_for(&clock, &mut con, 1);
    assert_eq!(cache.close_idle_clients(), 1, "only the idle normal client");
    idle.expect_closed();
    assert!(!client_list(&mut con).contains(&format!("id={idle_id} ")));
    let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
    assert!(info.contains("connected_clients:4\r\n"), "{info}");

    // The client blocked since long before is served, and its wait's end is its interaction.
    let _: i64 = redis::cmd("RPUSH")
        .arg("q")
        .arg("x")
        .query(&mut con)
        .unwrap();
    blocked.expect(b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    assert_eq!(cache.close_idle_clients(), 0);
    idle_others_for(&clock, &mut con, 11);
    assert_eq!(
        cache.close_idle_clients(),
        1,
        "unblocked, it is a normal client"
    );
    blocked.expect_closed();
    sub.send("PING");
    sub.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

/// Client `id`'s line in CLIENT LIST.
fn client_line(con: &mut redis::Connection, id: u64) -> String {
    client_list(con)
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .expect("the client is in CLIENT LIST")
        .to_owned()
}

/// Field `name` of a CLIENT LIST line.
fn field_of<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
        .expect("CLIENT LIST has the field")
}

/// A client's `qbuf` and `qbuf-free` in CLIENT LIST, as its connection last waited.
fn query_buffer_of(con: &mut redis::Connection, id: u64) -> (usize, usize) {
    let line = client_line(con, id);
    let size = |name| field_of(&line, name).parse().unwrap();
    (size("qbuf"), size("qbuf-free"))
}

/// Advances the clock by `secs` while `con` stays active (a PING at the new time), so only
/// the other clients have been idle that long.
fn idle_others_for(clock: &ManualClock, con: &mut redis::Connection, secs: u64) {
    clock.advance(Duration::from_secs(secs));
    let _: String = redis::cmd("PING").query(con).unwrap();
}

/// Polls CLIENT LIST until client `id`'s query buffer reads `want` (bounded; each round trip
/// lets the server's thread run the other connection's task).
fn wait_query_buffer(con: &mut redis::Connection, id: u64, want: (usize, usize)) {
    let mut seen = (0, 0);
    let reached = (0..1000).any(|_| {
        seen = query_buffer_of(con, id);
        std::thread::yield_now();
        seen == want
    });
    assert!(
        reached,
        "client {id}'s query buffer stayed {seen:?}, not {want:?}"
    );
}

/// As Redis's `clientsCronResizeQueryBuffer`: CLIENT LIST shows every client's query buffer; a
/// client idle for more than 2 s (whole seconds of the clock) has it cut to nothing at the
/// next housekeeping pass and gets it back with its next request, and a buffer a big request
/// grew is cut to the recent peak once that is under half its size. Driven by a `ManualClock`
/// and direct housekeeping passes.
#[test]
fn the_clients_cron_cuts_idle_and_oversized_query_buffers() {
    let (clock, cache, s) = start_with_clock();
    let mut con = client(&s);
    let mut other = Raw::connect(&s);
    let id = other.id();
    // One read's worth of room, as Redis's 16 KiB `PROTO_IOBUF_LEN`.
    let chunk = 16 * 1024;
    assert_eq!(query_buffer_of(&mut con, id), (0, chunk));

    // Idle for exactly 2 s: left alone (16 KiB is under the threshold for busy clients).
    idle_others_for(&clock, &mut con, 2);
    assert_eq!(cache.resize_client_query_buffers(), 0);
    idle_others_for(&clock, &mut con, 1);
    assert_eq!(
        cache.resize_client_query_buffers(),
        1,
        "only the idle client"
    );
    wait_query_buffer(&mut con, id, (0, 0));
    // Nothing more to cut.
    assert_eq!(cache.resize_client_query_buffers(), 0);
    // Its next request is read as ever, into a fresh buffer.
    other.send("SET k v");
    other.expect(b"+OK\r\n");
    assert_eq!(query_buffer_of(&mut con, id), (0, chunk));

    // A request of 100 000 bytes grows the buffer past 32 KiB; the peak of that turn keeps it.
    let value = "x".repeat(100_000);
    other
        .0
        .write_all(format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$100000\r\n{value}\r\n").as_bytes())
        .unwrap();
    other.expect(b"+OK\r\n");
    let (len, free) = query_buffer_of(&mut con, id);
    let grown = len + free;
    assert!(grown > 100_000, "{grown}");
    assert_eq!(cache.resize_client_query_buffers(), 1);
    // The nudge is taken before the requests sent after it.
    other.send("PING");
    other.expect(b"+PONG\r\n");
    assert_eq!(query_buffer_of(&mut con, id), (len, free));
    // With only small requests since, it is cut to the largest of them.
    other.send("SET k v");
    other.expect(b"+OK\r\n");
    assert_eq!(cache.resize_client_query_buffers(), 1);
    wait_query_buffer(&mut con, id, (0, "SET k v\r\n".len()));
    other.send("GET big");
    other.expect(format!("$100000\r\n{value}\r\n").as_bytes());
    assert_eq!(query_buffer_of(&mut con, id), (0, chunk));
}

/// A client blocked in a pop is nudged once, not at every housekeeping pass (each nudge would
/// wake its wait): its nudge waits until it returns to reading requests, where the end of its
/// wait counts as activity, and it is cut once idle again.
#[test]
fn a_blocked_client_is_nudged_once_while_it_waits() {
    let (clock, cache, s) = start_with_clock();
    let mut con = client(&s);
    let mut blocked = Raw::connect(&s);
    let id = blocked.id();
    blocked.send("BLPOP q 0");
    wait_blocked(&mut con, 1);
    idle_others_for(&clock, &mut con, 3);
    assert_eq!(cache.resize_client_query_buffers(), 1);
    assert_eq!(
        cache.resize_client_query_buffers(),
        0,
        "not again while it waits"
    );
    let _: i64 = redis::cmd("RPUSH")
        .arg("q")
        .arg("x")
        .query(&mut con)
        .unwrap();
    blocked.expect(b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    blocked.send("PING");
    blocked.expect(b"+PONG\r\n");
    assert_eq!(query_buffer_of(&mut con, id), (0, 16 * 1024));
    idle_others_for(&clock, &mut con, 3);
    assert_eq!(cache.resize_client_query_buffers(), 1);
    wait_query_buffer(&mut con, id, (0, 0));
}

/// CONFIG SET hz changes the housekeeping's cadence for its next pass, within Redis's 1..=500
/// (`updateHZ`); it had been read once when the housekeeping started.
#[test]
fn config_set_hz_changes_the_housekeeping_period_at_once() {
    let cache = Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    );
    let s = resp_common::serve(cache.clone(), RespConfig::from_cache(&cache, None));
    let mut con = client(&s);
    assert_eq!(cache.housekeeping_period(), Duration::from_millis(100));
    for (hz, period_ms, read_back) in [
        ("100", 10, "100"),
        ("500", 2, "500"),
        ("501", 2, "500"),
        ("1", 1000, "1"),
        ("0", 1000, "1"),
    ] {
        config_set(&mut con, "hz", hz).unwrap();
        assert_eq!(config_get(&mut con, "hz"), read_back);
        assert_eq!(
            cache.housekeeping_period(),
            Duration::from_millis(period_ms),
            "hz {hz}"
        );
    }
}

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .unwrap();
    got[1].clone()
}

fn config_set(con: &mut redis::Connection, name: &str, value: &str) -> redis::RedisResult<()> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(con)
}

/// `client-output-buffer-limit` takes Redis's syntax (classes normal, replica/slave, pubsub;
/// memory units; all of a value or none of it) and answers CONFIG GET in Redis's form.
#[test]
fn client_output_buffer_limit_is_configured_as_in_redis() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    const NAME: &str = "client-output-buffer-limit";
    assert_eq!(
        config_get(&mut con, NAME),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    config_set(&mut con, NAME, "pubsub 1mb 512kb 30 REPLICA 1gb 1k 0").unwrap();
    assert_eq!(
        config_get(&mut con, NAME),
        "normal 0 0 0 slave 1073741824 1000 0 pubsub 1048576 524288 30"
    );
    // At the parse's maxima: u64 bytes and INT_MAX seconds.
    config_set(&mut con, NAME, "normal 18446744073709551615 2gb 2147483647").unwrap();
    assert_eq!(
        config_get(&mut con, NAME),
        "normal 18446744073709551615 2147483648 2147483647 slave 1073741824 1000 0 pubsub 1048576 524288 30"
    );
    let failed = |reason: &str| {
        format!("CONFIG SET failed (possibly related to argument '{NAME}') - {reason}")
    };
    let bad_value =
        failed("Error in hard, soft or soft_seconds setting in buffer limit configuration.");
    for (value, reason) in [
        (
            "normal 1 2",
            failed("Wrong number of arguments in buffer limit configuration."),
        ),
        (
            "normal  0 0 0",
            failed("Wrong number of arguments in buffer limit configuration."),
        ),
        (
            "master 0 0 0",
            failed("Invalid client class specified in buffer limit configuration."),
        ),
        ("normal 1x 0 0", bad_value.clone()),
        ("normal -1 0 0", bad_value.clone()),
        ("normal 0 0 -1", bad_value.clone()),
        ("normal 18446744073709551616 0 0", bad_value.clone()),
        ("normal 0 0 2147483648", bad_value.clone()),
        // All or nothing: the valid normal class is not applied either.
        ("normal 5 5 5 pubsub 0 x 0", bad_value.clone()),
    ] {
        let err = config_set(&mut con, NAME, value).unwrap_err();
        assert!(err.to_string().contains(&reason), "{value}: {err}");
    }
    assert_eq!(
        config_get(&mut con, NAME),
        "normal 18446744073709551615 2147483648 2147483647 slave 1073741824 1000 0 pubsub 1048576 524288 30"
    );
}

/// A normal client whose pending replies reach the configured hard limit is closed without
/// them, as Redis closes it; 0 (the default) is unlimited.
#[test]
fn the_normal_output_buffer_hard_limit_closes_a_client_at_max() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let (): () = redis::cmd("SET")
        .arg("v")
        .arg(vec![b'a'; 1000])
        .query(&mut con)
        .unwrap();
    // GET v is a 1009-byte reply: under a hard limit of 1010 it is sent...
    config_set(&mut con, "client-output-buffer-limit", "normal 1010 0 0").unwrap();
    let reply = raw(s.addr, b"GET v\r\n");
    assert_eq!(reply.len(), 1009);
    // ...and a limit of 1009 is reached by it: the client is closed without the reply.
    config_set(&mut con, "client-output-buffer-limit", "normal 1009 0 0").unwrap();
    assert!(raw(s.addr, b"GET v\r\n").is_empty());
    // Small replies still pass, and 0 lifts the limit.
    assert_eq!(raw(s.addr, b"PING\r\n"), b"+PONG\r\n");
    config_set(&mut con, "client-output-buffer-limit", "normal 0 0 0").unwrap();
    assert_eq!(raw(s.addr, b"GET v\r\n").len(), 1009);
}

/// The pubsub class is configurable: a subscriber that stops reading is disconnected at a
/// lowered hard limit, long before Redis's default 32 MiB.
#[test]
fn a_lowered_pubsub_limit_disconnects_a_subscriber_sooner() {
    const PAYLOAD: usize = 256 * 1024;
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut publisher = client(&s);
    config_set(
        &mut publisher,
        "client-output-buffer-limit",
        "pubsub 1mb 0 0",
    )
    .unwrap();
    let mut sub = Raw::connect(&s);
    sub.send("SUBSCRIBE ch");
    sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let mut published = 0usize;
    loop {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg(vec![b'.'; PAYLOAD])
            .query(&mut publisher)
            .unwrap();
        if receivers == 0 {
            break;
        }
        published += 1;
        assert!(
            published * PAYLOAD < PUBSUB_BUFFER_BYTES_MAX,
            "still subscribed after {published} messages"
        );
    }
    // What reached the socket, then end of file.
    let mut rest = Vec::new();
    sub.0.read_to_end(&mut rest).unwrap();
}

/// CLIENT LIST reports each client's own state, as Redis's `catClientInfoString`: its
/// database, protocol, subscriptions (`sub`, `psub`, flag `P`), MULTI queue (`multi`, flag
/// `x`) and a blocking pop (flag `b`); `N` when none applies.
#[test]
fn client_list_shows_each_clients_state() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let line_of = client_line;
    let field = field_of;
    let mut other = Raw::connect(&s);
    let id = other.id();
    let line = line_of(&mut con, id);
    for (name, want) in [("flags", "N"), ("db", "0"), ("multi", "-1"), ("resp", "2")] {
        assert_eq!(field(&line, name), want, "{line}");
    }
    other.send("HELLO 3");
    other.send("SELECT 5");
    other.send("MULTI");
    other.send("SET a 1");
    other.send("SET b 2");
    other.send("PING");
    // The PING is queued too; its QUEUED reply is the last of the six.
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while seen.windows(9).filter(|w| w == b"+QUEUED\r\n").count() < 3 {
        other.0.read_exact(&mut byte).unwrap();
        seen.push(byte[0]);
    }
    let line = line_of(&mut con, id);
    for (name, want) in [("flags", "x"), ("db", "5"), ("multi", "3"), ("resp", "3")] {
        assert_eq!(field(&line, name), want, "{line}");
    }
    // The caller's own line keeps its own protocol.
    let me: u64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
    assert_eq!(field(&line_of(&mut con, me), "resp"), "2");

    let mut sub = Raw::connect(&s);
    let sid = sub.id();
    sub.send("SUBSCRIBE c1 c2");
    sub.send("PSUBSCRIBE p*");
    sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n");
    let line = line_of(&mut con, sid);
    for (name, want) in [("flags", "P"), ("sub", "2"), ("psub", "1")] {
        assert_eq!(field(&line, name), want, "{line}");
    }

    let mut pop = Raw::connect(&s);
    let pid = pop.id();
    pop.send("BLPOP nothing 0");
    wait_blocked(&mut con, 1);
    assert_eq!(field(&line_of(&mut con, pid), "flags"), "b");
}

/// CLIENT LIST TYPE and ID pick clients as Redis 7.0's `clientCommand` does (a MONITOR counts as
/// normal, ID lists in the order given and skips unknown ids), with its error texts; CLIENT
/// NO-EVICT ON shows as flag `e`. Both filters had been ignored, every client listed.
#[test]
fn client_list_filters_by_type_and_id() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Conn::open(s.addr);
    let ids = |c: &mut Conn, args: &[&str]| -> Vec<String> {
        let mut request = vec!["CLIENT", "LIST"];
        request.extend_from_slice(args);
        let Frame::Bulk(text) = c.cmd(&request) else {
            panic!("CLIENT LIST {args:?} answers a bulk string");
        };
        String::from_utf8(text.to_vec())
            .unwrap()
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    };
    let id_of = |c: &mut Conn| match c.cmd(&["CLIENT", "ID"]) {
        Frame::Integer(id) => format!("id={id}"),
        other => panic!("CLIENT ID answered {other:?}"),
    };
    let me = id_of(&mut c);
    let mut sub = Conn::open(s.addr);
    let sub_id = id_of(&mut sub);
    sub.send(&["SUBSCRIBE", "news"]);
    sub.reply();
    let mut monitor = Conn::open(s.addr);
    let monitor_id = id_of(&mut monitor);
    assert_eq!(monitor.cmd(&["MONITOR"]), Frame::ok());

    assert_eq!(
        ids(&mut c, &["TYPE", "pubsub"]),
        std::slice::from_ref(&sub_id)
    );
    assert_eq!(ids(&mut c, &["type", "NORMAL"]), [me.clone(), monitor_id]);
    for kind in ["master", "replica", "slave"] {
        assert!(ids(&mut c, &["TYPE", kind]).is_empty());
    }
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "TYPE", "foo"]),
        err("ERR Unknown client type 'foo'")
    );
    let (sub_n, me_n) = (&sub_id[3..], &me[3..]);
    assert_eq!(
        ids(&mut c, &["ID", sub_n, "999999", "-1", me_n, sub_n]),
        [sub_id.clone(), me.clone(), sub_id]
    );
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "ID", me_n, "abc"]),
        err("ERR Invalid client ID")
    );
    let syntax = err("ERR syntax error");
    assert_eq!(c.cmd(&["CLIENT", "LIST", "ID"]), syntax);
    assert_eq!(c.cmd(&["CLIENT", "LIST", "TYPE"]), syntax);
    assert_eq!(c.cmd(&["CLIENT", "LIST", "TYPE", "normal", "x"]), syntax);

    let flags = |c: &mut Conn| -> String {
        let Frame::Bulk(text) = c.cmd(&["CLIENT", "INFO"]) else {
            panic!("CLIENT INFO answers a bulk string");
        };
        let text = String::from_utf8(text.to_vec()).unwrap();
        let flags = text.split(' ').find_map(|f| f.strip_prefix("flags="));
        flags.unwrap().to_owned()
    };
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "ON"]), Frame::ok());
    assert_eq!(flags(&mut c), "e");
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "off"]), Frame::ok());
    assert_eq!(flags(&mut c), "N");
}

/// CLIENT HELP answers Redis's lines for the subcommands served here; it had been an unknown
/// subcommand, as GETREDIR, TRACKINGINFO, CACHING and UNPAUSE, which COMMAND lists, had been.
#[test]
fn client_help_lists_its_subcommands() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Conn::open(s.addr);
    let Frame::Array(lines) = c.cmd(&["CLIENT", "HELP"]) else {
        panic!("CLIENT HELP answers an array");
    };
    let lines: Vec<Frame> = lines;
    assert_eq!(
        lines.first(),
        Some(&Frame::simple(
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
        ))
    );
    assert!(lines.contains(&Frame::simple("LIST [options ...]")));
    assert!(lines.contains(&Frame::simple("NO-EVICT (ON|OFF)")));
    assert_eq!(
        lines.get(lines.len() - 2..),
        Some(
            &[
                Frame::simple("HELP"),
                Frame::simple("    Prints this help.")
            ][..]
        )
    );

    // Redis's answers for a client without tracking; no pause to end.
    assert_eq!(c.cmd(&["CLIENT", "GETREDIR"]), Frame::Integer(-1));
    let trackinginfo = |flags: Frame| {
        vec![
            resp_common::bulk("flags"),
            flags,
            resp_common::bulk("redirect"),
            Frame::Integer(-1),
            resp_common::bulk("prefixes"),
            Frame::Array(Vec::new()),
        ]
    };
    assert_eq!(
        c.cmd(&["CLIENT", "TRACKINGINFO"]),
        Frame::Array(trackinginfo(Frame::Array(vec![resp_common::bulk("off")])))
    );
    assert_eq!(
        c.cmd(&["CLIENT", "CACHING", "YES"]),
        err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"
        )
    );
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Frame::ok());
    assert!(matches!(c.cmd(&["HELLO", "3"]), Frame::Map(_)));
    let Frame::Map(pairs) = c.cmd(&["CLIENT", "TRACKINGINFO"]) else {
        panic!("a map in RESP3");
    };
    let flat: Vec<Frame> = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
    assert_eq!(
        flat,
        trackinginfo(Frame::Set(vec![resp_common::bulk("off")]))
    );
}

/// CLIENT REPLY OFF silences command replies until ON; SKIP drops the next command's reply
/// only; pub/sub confirmations and messages arrive whatever the mode, as in Redis 7.0.
/// PUBSUB CHANNELS/NUMSUB/NUMPAT report the subscriptions.
#[test]
fn client_reply_modes_and_pubsub_introspection() {
    use resp_common::{Conn, bulk, bulks};
    use streamcache::cache::Frame;
    let s = start(None, 100, 1 << 20);
    let mut c = Conn::open(s.addr);
    // OFF: nothing comes back for SET or GET; the ON reply is the next thing read.
    c.send(&["CLIENT", "REPLY", "OFF"]);
    c.send(&["SET", "k", "1"]);
    c.send(&["GET", "k"]);
    assert_eq!(c.cmd(&["CLIENT", "REPLY", "ON"]), Frame::ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("1"));
    // SKIP: its own reply and the next command's are dropped; the one after answers.
    c.send(&["CLIENT", "REPLY", "SKIP"]);
    c.send(&["INCR", "k"]);
    assert_eq!(c.cmd(&["GET", "k"]), bulk("2"));
    assert_eq!(
        c.cmd(&["CLIENT", "REPLY", "MAYBE"]),
        Frame::error("ERR syntax error")
    );
    // Subscriptions: confirmations and messages arrive with replies off.
    let mut sub = Conn::open(s.addr);
    sub.send(&["CLIENT", "REPLY", "OFF"]);
    sub.send(&["SUBSCRIBE", "news.a", "news.b"]);
    assert_eq!(
        sub.reply(),
        Frame::Array(vec![bulk("subscribe"), bulk("news.a"), Frame::Integer(1)])
    );
    assert_eq!(
        sub.reply(),
        Frame::Array(vec![bulk("subscribe"), bulk("news.b"), Frame::Integer(2)])
    );
    sub.send(&["PSUBSCRIBE", "news.*"]);
    assert_eq!(
        sub.reply(),
        Frame::Array(vec![bulk("psubscribe"), bulk("news.*"), Frame::Integer(3)])
    );
    let Frame::Array(mut channels) = c.cmd(&["PUBSUB", "CHANNELS"]) else {
        panic!("an array")
    };
    channels.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(channels, vec![bulk("news.a"), bulk("news.b")]);
    assert_eq!(c.cmd(&["PUBSUB", "CHANNELS", "*.b"]), bulks(&["news.b"]));
    assert_eq!(
        c.cmd(&["PUBSUB", "NUMSUB", "news.a", "nope"]),
        Frame::Array(vec![
            bulk("news.a"),
            Frame::Integer(1),
            bulk("nope"),
            Frame::Integer(0)
        ])
    );
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), Frame::Integer(1));
    assert_eq!(
        c.cmd(&["PUBSUB", "NUMPAT", "x"]),
        Frame::error("ERR wrong number of arguments for 'pubsub|numpat' command")
    );
    assert_eq!(
        c.cmd(&["PUBSUB", "NOPE"]),
        Frame::error("ERR unknown subcommand 'NOPE'. Try PUBSUB HELP.")
    );
    assert_eq!(c.cmd(&["PUBLISH", "news.a", "hi"]), Frame::Integer(2));
    assert_eq!(
        sub.reply(),
        Frame::Array(vec![bulk("message"), bulk("news.a"), bulk("hi")])
    );
    assert_eq!(
        sub.reply(),
        Frame::Array(vec![
            bulk("pmessage"),
            bulk("news.*"),
            bulk("news.a"),
            bulk("hi")
        ])
    );
}

/// CONFIG GET `port` and `bind` report the RESP listener's own address once it has bound
/// (Redis's defaults, 6379 and `* -::*`, would not be this server's).
#[test]
fn config_get_reports_the_listeners_port_and_address() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .arg("bind")
        .query(&mut con)
        .unwrap();
    let pairs: Vec<(&str, &str)> = got
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    let port = s.addr.port().to_string();
    let ip = s.addr.ip().to_string();
    assert!(pairs.contains(&("port", port.as_str())), "{pairs:?}");
    assert!(pairs.contains(&("bind", ip.as_str())), "{pairs:?}");
}

/// A `SET key <value>` request of exactly `total` bytes.
fn set_request_of(key: &str, total: usize) -> Vec<u8> {
    let header = |n: usize| format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${n}\r\n", key.len());
    // The value's length n satisfies header(n) + n + 2 = total; its digit count decides it.
    let n = (1..=10)
        .filter_map(|digits: usize| {
            let fixed = header(0).len() - 1 + digits + 2;
            total
                .checked_sub(fixed)
                .filter(|n| n.to_string().len() == digits)
        })
        .next()
        .unwrap();
    let mut r = header(n).into_bytes();
    r.resize(r.len() + n, b'v');
    r.extend_from_slice(b"\r\n");
    assert_eq!(r.len(), total);
    r
}

/// `client-query-buffer-limit` (Redis's default, 1 GiB; at least 1 MiB): a client whose requests
/// not yet run — unread ones, and the arguments MULTI has queued — pass it is closed without a
/// reply, as Redis closes it; at the limit its request runs.
#[test]
fn the_query_buffer_limit_closes_a_client_past_it() {
    const LIMIT: usize = 1024 * 1024;
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-query-buffer-limit")
        .query(&mut con)
        .unwrap();
    assert_eq!(got[1], QUERY_BUFFER_BYTES_MAX.to_string());
    config_set(&mut con, "client-query-buffer-limit", "1mb").unwrap();

    // One request of exactly the limit runs; one byte more and the client is closed.
    let at_limit = set_request_of("k", LIMIT);
    let value_len = at_limit.iter().filter(|&&b| b == b'v').count();
    assert_eq!(raw(s.addr, &at_limit), b"+OK\r\n");
    assert!(raw(s.addr, &set_request_of("k", LIMIT + 1)).is_empty());
    let len: usize = redis::cmd("STRLEN").arg("k").query(&mut con).unwrap();
    assert_eq!(len, value_len, "the request past the limit did not run");

    // MULTI's queued arguments count with the unread bytes.
    let queued_value = 600_000;
    let queued = 3 + 1 + queued_value;
    for (extra, closed) in [(0, false), (1, true)] {
        let mut c = Raw::connect(&s);
        c.send("MULTI");
        c.expect(b"+OK\r\n");
        c.0.write_all(&set_request_of("k", queued_value + 31))
            .unwrap();
        c.expect(b"+QUEUED\r\n");
        c.0.write_all(&set_request_of("j", LIMIT - queued + extra))
            .unwrap();
        if closed {
            c.expect_closed();
        } else {
            c.expect(b"+QUEUED\r\n");
            c.send("DISCARD");
            c.expect(b"+OK\r\n");
        }
    }
}

/// MULTI queues at most `MULTI_QUEUE_LEN_MAX` commands: the next one is refused with an error
/// and EXEC then aborts, as for any command refused while queueing.
#[test]
fn multi_queues_at_most_multi_queue_len_max_commands() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Raw::connect(&s);
    c.0.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.send("MULTI");
    c.expect(b"+OK\r\n");
    let mut writer = c.0.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let batch = b"*1\r\n$4\r\nPING\r\n".repeat(4096);
        let mut sent = 0;
        while sent < MULTI_QUEUE_LEN_MAX {
            writer.write_all(&batch).unwrap();
            sent += 4096;
        }
        writer
            .write_all(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nEXEC\r\n")
            .unwrap();
    });
    let mut reader = std::io::BufReader::new(c.0.try_clone().unwrap());
    let mut line = String::new();
    for _ in 0..MULTI_QUEUE_LEN_MAX {
        line.clear();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert_eq!(line, "+QUEUED\r\n");
    }
    sender.join().unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "-ERR too many commands queued in MULTI\r\n");
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(
        line,
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
}

/// WATCH holds a key once per client however often it is named, as Redis does, and at most
/// `WATCHED_KEYS_MAX` distinct keys: a WATCH past that is refused and watches none of its keys.
#[test]
fn watch_holds_at_most_watched_keys_max_distinct_keys() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut con = client(&s);
    let mut other = client(&s);
    let mut same = redis::cmd("WATCH");
    for _ in 0..=WATCHED_KEYS_MAX {
        same.arg("same");
    }
    let (): () = same.query(&mut con).unwrap();
    let mut distinct = redis::cmd("WATCH");
    for i in 1..WATCHED_KEYS_MAX {
        distinct.arg(format!("k{i}"));
    }
    let (): () = distinct.query(&mut con).unwrap();
    let refused = redis::cmd("WATCH")
        .arg("k1")
        .arg("one-more")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.detail()),
        (
            Some("ERR"),
            Some(format!("too many watched keys (at most {WATCHED_KEYS_MAX} per client)").as_str())
        ),
        "{refused:?}"
    );
    // The refused WATCH watched nothing: a change to its new key does not abort EXEC...
    let (): () = redis::cmd("SET")
        .arg("one-more")
        .arg(1)
        .query(&mut other)
        .unwrap();
    let (): () = redis::cmd("MULTI").query(&mut con).unwrap();
    let (): () = redis::cmd("PING").query(&mut con).unwrap();
    let ran: Option<Vec<String>> = redis::cmd("EXEC").query(&mut con).unwrap();
    assert_eq!(ran, Some(vec!["PONG".to_owned()]));
    // ...while one to a key watched before does (the watches end with EXEC, so watch again).
    let (): () = redis::cmd("WATCH").arg("k7").query(&mut con).unwrap();
    let (): () = redis::cmd("SET")
        .arg("k7")
        .arg(1)
        .query(&mut other)
        .unwrap();
    let (): () = redis::cmd("MULTI").query(&mut con).unwrap();
    let (): () = redis::cmd("PING").query(&mut con).unwrap();
    let aborted: Option<Vec<String>> = redis::cmd("EXEC").query(&mut con).unwrap();
    assert_eq!(aborted, None);
}

/// A client holds at most `SUBSCRIPTIONS_MAX` subscriptions, channels, patterns and shard
/// channels together: a subscription command past that is refused and subscribes none of its
/// names; a name held already does not count again.
#[test]
fn a_client_holds_at_most_subscriptions_max_subscriptions() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let mut c = Raw::connect(&s);
    c.0.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let half = SUBSCRIPTIONS_MAX / 2;
    let names = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    };
    let request = |command: &str, names: &[String]| -> Vec<u8> {
        let mut args: Vec<&[u8]> = vec![command.as_bytes()];
        args.extend(names.iter().map(String::as_bytes));
        resp_common::encode(&args)
    };
    let mut reader = std::io::BufReader::new(c.0.try_clone().unwrap());
    /// Reads `n` lines and returns the last.
    fn lines(reader: &mut impl std::io::BufRead, n: usize) -> String {
        let mut line = String::new();
        for _ in 0..n {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        line
    }
    // Each confirmation is a 3-element array of 6 lines (header, then kind, name and count with their headers): the last
    // line is the count.
    c.0.write_all(&request("SUBSCRIBE", &names("c", half)))
        .unwrap();
    lines(&mut reader, half * 6);
    c.0.write_all(&request(
        "PSUBSCRIBE",
        &names("p*", SUBSCRIPTIONS_MAX - half),
    ))
    .unwrap();
    let last_count = lines(&mut reader, (SUBSCRIPTIONS_MAX - half) * 6);
    assert_eq!(last_count, format!(":{SUBSCRIPTIONS_MAX}\r\n"));
    // At the limit: a name held already is confirmed again, a new one is refused.
    c.0.write_all(&request("SUBSCRIBE", &names("c", 1)))
        .unwrap();
    assert_eq!(lines(&mut reader, 6), format!(":{SUBSCRIPTIONS_MAX}\r\n"));
    c.0.write_all(&request("SSUBSCRIBE", &["s".to_owned()]))
        .unwrap();
    assert_eq!(
        lines(&mut reader, 1),
        format!("-ERR too many subscriptions (at most {SUBSCRIPTIONS_MAX} per client)\r\n")
    );
    // The refused command subscribed nothing: one unsubscription frees a place for it.
    c.0.write_all(&request("UNSUBSCRIBE", &names("c", 1)))
        .unwrap();
    lines(&mut reader, 6);
    c.0.write_all(&request("SSUBSCRIBE", &["s".to_owned()]))
        .unwrap();
    assert_eq!(
        lines(&mut reader, 6),
        ":1\r\n",
        "shard channels are counted apart"
    );
}

/// Redis 7.0.15's EXEC writes an array header counting the queued commands
/// (`addReplyArrayLen(c, c->mstate.count)` in multi.c), then whatever each command writes: a
/// SUBSCRIBE of two channels writes two confirmations, so the second one follows the array.
#[test]
fn exec_counts_queued_commands_and_a_subscribe_writes_a_confirmation_per_channel() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let reply = raw(
        s.addr,
        b"MULTI\r\nPING\r\nSUBSCRIBE a b\r\nEXEC\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+PONG\r\n\
         *3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n+OK\r\n"
    );
}

/// A HELLO 3 queued in MULTI switches the protocol for the replies after it only: Redis 7.0.15
/// writes each reply of the transaction as its command runs, so the ones before HELLO are in
/// RESP2 (a flat ZRANGE WITHSCORES), HELLO's own and the later ones in RESP3 (a map, pairs
/// with a double score).
#[test]
fn hello_3_inside_multi_changes_the_protocol_of_the_replies_after_it() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let reply = raw(
        s.addr,
        b"ZADD z 1 a\r\nMULTI\r\nZRANGE z 0 -1 WITHSCORES\r\nHELLO 3\r\n\
          ZRANGE z 0 -1 WITHSCORES\r\nEXEC\r\nQUIT\r\n",
    );
    let reply = String::from_utf8(reply).unwrap();
    let head = ":1\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
                *3\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n%7\r\n$6\r\nserver\r\n";
    let tail = "*1\r\n*2\r\n$1\r\na\r\n,1\r\n+OK\r\n";
    assert!(
        reply.starts_with(head) && reply.ends_with(&format!("$7\r\nmodules\r\n*0\r\n{tail}")),
        "{reply:?}"
    );
}

/// A transaction that runs a script runs on another thread (so the RESP thread serves the
/// other clients meanwhile), and its connection commands still run in their place, as Redis
/// 7.0.15 runs every queued command in order: a SUBSCRIBE of two channels writes a
/// confirmation each, a HELLO 3 switches the replies after it, a CLIENT SETNAME names the
/// connection for the CLIENT GETNAME after it.
#[test]
fn a_transaction_that_runs_a_script_runs_its_connection_commands_in_place() {
    let s = start(None, 100, OUTPUT_BUFFER_BYTES_MAX);
    let reply = raw(
        s.addr,
        b"MULTI\r\nEVAL \"return 1\" 0\r\nSUBSCRIBE a b\r\nEXEC\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n\
         *3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n+OK\r\n"
    );
    let reply = raw(
        s.addr,
        b"ZADD z 1 a\r\nMULTI\r\nEVAL \"return 1\" 0\r\nHELLO 3\r\n\
          ZRANGE z 0 -1 WITHSCORES\r\nEXEC\r\nQUIT\r\n",
    );
    let reply = String::from_utf8(reply).unwrap();
    let head = ":1\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n%7\r\n$6\r\nserver\r\n";
    let tail = "*1\r\n*2\r\n$1\r\na\r\n,1\r\n+OK\r\n";
    assert!(
        reply.starts_with(head) && reply.ends_with(&format!("$7\r\nmodules\r\n*0\r\n{tail}")),
        "{reply:?}"
    );
    let reply = raw(
        s.addr,
        b"MULTI\r\nEVAL \"return 1\" 0\r\nCLIENT SETNAME n\r\nCLIENT GETNAME\r\nEXEC\r\nQUIT\r\n",
    );
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n+OK\r\n$1\r\nn\r\n+OK\r\n"
    );
}
