//! Capability: MONITOR as Redis 7.0.15 streams it — one status line per command after it ran
//! (`+<s>.<µs> [<db> <ip:port>] "arg" …`), script commands before the commands they call
//! (`[<db> lua]`), a transaction's commands before its EXEC, secrets of AUTH and HELLO
//! redacted, administrative and refused commands left out, RESET ending it; and the CLIENT
//! LIST fields of the client itself (`qbuf`, `cmd`), the monitor flag `O`, and CLIENT REPLY ON
//! answering though its reply was to be skipped.
//! Method: a real TCP client on an in-process RESP server on the manual clock (so the
//! timestamp is known), a second client as the monitor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use streamcache::cache::Frame;

mod resp_common;

use resp_common::Conn;

/// The next monitor line, as text without its `+` and CRLF.
fn line(monitor: &mut Conn) -> String {
    match monitor.reply() {
        Frame::Simple(s) => s.into_owned(),
        other => panic!("expected a status line, got {other:?}"),
    }
}

/// CLIENT LIST's or CLIENT INFO's text (a bulk string in RESP2).
fn text(f: Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected the client list, got {other:?}"),
    }
}

/// A monitor connection, its MONITOR answered.
fn monitor(addr: std::net::SocketAddr) -> Conn {
    let mut m = Conn::open(addr);
    assert_eq!(m.cmd(&["MONITOR"]), Frame::ok());
    m
}

#[test]
fn each_command_is_a_line_with_time_database_client_and_quoted_arguments() {
    let (server, clock) = resp_common::serve_manual();
    clock.set_ms(1_700_000_000_123);
    let mut m = monitor(server.addr);
    let mut c = Conn::open(server.addr);
    let peer = c.local_addr().to_string();
    assert_eq!(c.cmd(&["SET", "foo", "a \"b\"\n"]), Frame::ok());
    c.cmd(&["SELECT", "3"]);
    c.raw(&[b"get", b"k\x01\xff"]);
    assert_eq!(
        line(&mut m),
        format!("1700000000.123000 [0 {peer}] \"SET\" \"foo\" \"a \\\"b\\\"\\n\"")
    );
    // SELECT is shown in the database it selected, as Redis feeds a command after it ran.
    assert_eq!(
        line(&mut m),
        format!("1700000000.123000 [3 {peer}] \"SELECT\" \"3\"")
    );
    assert_eq!(
        line(&mut m),
        format!("1700000000.123000 [3 {peer}] \"get\" \"k\\x01\\xff\"")
    );
}

#[test]
fn refused_and_administrative_commands_are_not_shown() {
    let (server, _clock) = resp_common::serve_manual();
    let mut m = monitor(server.addr);
    let mut c = Conn::open(server.addr);
    c.cmd(&["NOSUCHCOMMAND"]);
    c.cmd(&["GET"]); // wrong arity
    c.cmd(&["CONFIG", "SET", "slowlog-max-len", "10"]);
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    c.cmd(&["CLIENT", "LIST"]);
    c.cmd(&["SLOWLOG", "GET"]);
    c.cmd(&["MONITOR"]);
    c.cmd(&["RESET"]);
    c.cmd(&["CLIENT", "SETNAME", "n"]);
    c.cmd(&["PING"]);
    // The first line is the first command shown: everything before it was left out.
    assert!(line(&mut m).ends_with("\"RESET\""));
    assert!(line(&mut m).ends_with("\"CLIENT\" \"SETNAME\" \"n\""));
    assert!(line(&mut m).ends_with("\"PING\""));
}

#[test]
fn scripts_come_before_the_commands_they_call_and_transactions_after() {
    let (server, _clock) = resp_common::serve_manual();
    let mut m = monitor(server.addr);
    let mut c = Conn::open(server.addr);
    c.cmd(&[
        "EVAL",
        "return redis.call('set', KEYS[1], ARGV[1])",
        "1",
        "k",
        "v",
    ]);
    assert!(
        line(&mut m)
            .ends_with("\"EVAL\" \"return redis.call('set', KEYS[1], ARGV[1])\" \"1\" \"k\" \"v\"")
    );
    assert!(line(&mut m).ends_with("[0 lua] \"set\" \"k\" \"v\""));

    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    c.cmd(&["INCR", "n"]);
    c.cmd(&["EXEC"]);
    assert!(line(&mut m).ends_with("\"MULTI\""));
    assert!(line(&mut m).ends_with("\"INCR\" \"n\""));
    assert!(line(&mut m).ends_with("\"EXEC\""));

    // A transaction that runs a script goes to another thread; EXEC still comes last.
    c.cmd(&["MULTI"]);
    c.cmd(&["EVAL", "return redis.call('get', 'k')", "0"]);
    c.cmd(&["EXEC"]);
    assert!(line(&mut m).ends_with("\"MULTI\""));
    assert!(line(&mut m).ends_with("\"EVAL\" \"return redis.call('get', 'k')\" \"0\""));
    assert!(line(&mut m).ends_with("[0 lua] \"get\" \"k\""));
    assert!(line(&mut m).ends_with("\"exec\""));
}

/// A script that runs past the RESP thread's inline budget before any write is stopped and run
/// again from the start on another thread; the commands it called before it was stopped are
/// neither shown nor counted (nor their lookups in `keyspace_misses`), so each command the
/// script ran shows and counts once, as in Redis. Expected lines and counts read from `redis-server` 7.0.15 given the same script.
#[test]
fn a_script_run_again_after_its_inline_budget_shows_and_counts_its_commands_once() {
    let (server, _clock) = resp_common::serve_manual();
    let mut m = monitor(server.addr);
    let mut c = Conn::open(server.addr);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    let script = "redis.call('get', 'x') local i = 0 while i < 3000000 do i = i + 1 end \
                  return redis.call('get', 'y')";
    assert_eq!(c.cmd(&["EVAL", script, "0"]), Frame::Null);
    assert!(line(&mut m).ends_with(&format!("\"EVAL\" \"{script}\" \"0\"")));
    assert!(line(&mut m).ends_with("[0 lua] \"get\" \"x\""));
    assert!(line(&mut m).ends_with("[0 lua] \"get\" \"y\""));
    c.cmd(&["PING"]);
    assert!(line(&mut m).ends_with("\"PING\""));
    let stats = text(c.cmd(&["INFO", "commandstats"]));
    assert!(stats.contains("cmdstat_get:calls=2,"), "{stats}");
    assert!(stats.contains("cmdstat_eval:calls=1,"), "{stats}");
    let info = text(c.cmd(&["INFO", "stats"]));
    // CONFIG RESETSTAT, EVAL, two GETs, PING and INFO commandstats.
    assert!(info.contains("total_commands_processed:6\r\n"), "{info}");
    assert!(info.contains("keyspace_misses:2\r\n"), "{info}");
}

#[test]
fn secrets_are_redacted() {
    let (server, _clock) = resp_common::serve_manual();
    let mut m = monitor(server.addr);
    let mut c = Conn::open(server.addr);
    c.cmd(&["AUTH", "not-real"]);
    c.cmd(&["AUTH", "user", "not-a-password"]);
    c.cmd(&["HELLO", "2", "AUTH", "user", "pw"]);
    assert!(line(&mut m).ends_with("\"AUTH\" \"(redacted)\""));
    assert!(line(&mut m).ends_with("\"AUTH\" \"(redacted)\" \"(redacted)\""));
    assert!(line(&mut m).ends_with("\"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\""));
}

#[test]
fn reset_ends_monitoring_and_client_list_flags_a_monitor() {
    let (server, _clock) = resp_common::serve_manual();
    let mut m = monitor(server.addr);
    let mut c = Conn::open(server.addr);
    let list = text(c.cmd(&["CLIENT", "LIST"]));
    let monitor_line = list
        .lines()
        .find(|l| l.contains(" flags=O "))
        .expect("the monitor is listed with flag O");
    assert!(monitor_line.contains(" cmd=monitor "), "{monitor_line}");
    // A second MONITOR is ignored without a reply: the next reply is PING's.
    m.send(&["MONITOR"]);
    assert_eq!(m.cmd(&["PING"]), Frame::simple("PONG"));
    // A monitor sees its own commands too.
    assert!(line(&mut m).ends_with("\"PING\""));
    assert_eq!(m.cmd(&["RESET"]), Frame::simple("RESET"));
    c.cmd(&["SET", "after", "reset"]);
    // Nothing is fed to it any more: its next reply is its own command's.
    assert_eq!(m.cmd(&["ECHO", "x"]), resp_common::bulk("x"));
}

#[test]
fn client_list_shows_the_callers_query_buffer_and_command() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    // `*2\r\n$6\r\nclient\r\n$4\r\nlist\r\n` is 26 bytes, all still in the buffer.
    let list = text(c.cmd(&["client", "list"]));
    assert!(list.contains(" qbuf=26 "), "{list}");
    assert!(list.contains(" cmd=client|list "), "{list}");
    let info = text(c.cmd(&["client", "info"]));
    assert!(info.contains(" cmd=client|info "), "{info}");
    // Another client shows the last command it ran.
    let mut other = Conn::open(server.addr);
    other.cmd(&["INCR", "n"]);
    let list = text(c.cmd(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.contains(&format!("addr={} ", other.local_addr())))
        .unwrap();
    assert!(line.contains(" cmd=incr "), "{line}");
}

#[test]
fn client_reply_on_answers_though_its_reply_was_to_be_skipped() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    c.send(&["CLIENT", "REPLY", "SKIP"]);
    assert_eq!(c.cmd(&["CLIENT", "REPLY", "ON"]), Frame::ok());
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
    // A plain SKIP still drops exactly the next reply.
    c.send(&["CLIENT", "REPLY", "SKIP"]);
    c.send(&["ECHO", "dropped"]);
    assert_eq!(c.cmd(&["ECHO", "kept"]), resp_common::bulk("kept"));
}

#[test]
fn a_monitor_that_stops_reading_is_disconnected_at_the_replica_limit() {
    const VALUE: usize = 256 * 1024;
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0"
        ]),
        Frame::ok()
    );
    let mut m = monitor(server.addr);
    let value = vec![b'.'; VALUE];
    // 64 lines of 256 KiB: far past the limit plus what the sockets can hold.
    for _ in 0..64 {
        assert_eq!(c.raw(&[b"SET", b"k", &value]), Frame::ok());
    }
    // What reached the socket, then the end of the stream (no reply to a read that waits).
    let mut rest = Vec::new();
    std::io::Read::read_to_end(m.stream(), &mut rest).unwrap();
    assert!(
        rest.len() < 64 * VALUE,
        "every line arrived: {}",
        rest.len()
    );
    // The server goes on serving the others.
    assert_eq!(c.cmd(&["PING"]), Frame::simple("PONG"));
}
