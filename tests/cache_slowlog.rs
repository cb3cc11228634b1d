//! Capability: SLOWLOG as Redis 7.0.15 keeps it — which commands are logged
//! (`slowlog-log-slower-than`: 0 logs every command, negative none), each entry's id, time,
//! duration, arguments (cut at 32 arguments and 128 bytes each), client address and name,
//! `slowlog-max-len`, GET with a count, LEN, RESET and the errors; the limits at the maximum
//! and one past it.
//! Method: a real TCP client on an in-process RESP server on the manual clock, where every
//! command runs in 0 µs, so a threshold of 0 logs each one and any other threshold none.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use streamcache::cache::Frame;

mod resp_common;

use resp_common::Conn;

/// One SLOWLOG GET entry.
#[derive(Debug)]
struct Entry {
    id: i64,
    time: i64,
    micros: i64,
    args: Vec<Vec<u8>>,
    peer: String,
    name: String,
}

fn bulk_text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn get(c: &mut Conn, count: Option<&str>) -> Vec<Entry> {
    let mut args = vec!["SLOWLOG", "GET"];
    args.extend(count);
    let Frame::Array(entries) = c.cmd(&args) else {
        panic!("expected an array")
    };
    entries
        .iter()
        .map(|e| match e {
            Frame::Array(f) => match &f[..] {
                [
                    Frame::Integer(id),
                    Frame::Integer(time),
                    Frame::Integer(micros),
                    Frame::Array(args),
                    peer,
                    name,
                ] => Entry {
                    id: *id,
                    time: *time,
                    micros: *micros,
                    args: args
                        .iter()
                        .map(|a| match a {
                            Frame::Bulk(b) => b.to_vec(),
                            other => panic!("{other:?}"),
                        })
                        .collect(),
                    peer: bulk_text(peer),
                    name: bulk_text(name),
                },
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn every_command_is_logged_at_threshold_zero_with_its_client() {
    let (server, clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    // The default threshold, 10 ms, logs nothing that takes 0 µs.
    c.cmd(&["SET", "a", "b"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Frame::Integer(0));

    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["CLIENT", "SETNAME", "logger"]);
    c.cmd(&["SET", "k", "v"]);
    clock.advance(std::time::Duration::from_secs(5));
    c.cmd(&["GET", "k"]);
    let entries = get(&mut c, None);
    // Newest first: SLOWLOG LEN is not itself logged before GET runs; GET k, SET k v, and the
    // SLOWLOG RESET itself (it runs, then is logged).
    let names: Vec<&[u8]> = entries.iter().map(|e| &e.args[0][..]).collect();
    assert_eq!(names, [&b"GET"[..], b"SET", b"SLOWLOG"]);
    let get_k = &entries[0];
    assert_eq!(get_k.args, [b"GET".to_vec(), b"k".to_vec()]);
    assert_eq!(get_k.time, 1_005, "unix seconds on the manual clock");
    assert_eq!(entries[1].time, 1_000);
    assert_eq!(get_k.micros, 0);
    assert_eq!(get_k.id, entries[1].id + 1);
    assert_eq!(get_k.name, "logger");
    let local = c.local_addr();
    assert_eq!(get_k.peer, local.to_string());

    // MULTI/EXEC: each command is logged, EXEC itself is not.
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "n"]);
    c.cmd(&["INCR", "n"]);
    c.cmd(&["EXEC"]);
    let entries = get(&mut c, Some("-1"));
    let names: Vec<&[u8]> = entries.iter().map(|e| &e.args[0][..]).collect();
    assert_eq!(names, [&b"INCR"[..], b"INCR", b"SLOWLOG"]);

    // A transaction holding a script runs on another thread: a CLIENT SETNAME inside it names
    // the client of the commands after it, as Redis logs each command with the client as it is
    // when the command has run.
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["EVAL", "return 1", "0"]);
    c.cmd(&["CLIENT", "SETNAME", "renamed"]);
    c.cmd(&["INCR", "n"]);
    c.cmd(&["EXEC"]);
    let entries = get(&mut c, Some("-1"));
    let logged: Vec<(&[u8], &str)> = entries
        .iter()
        .map(|e| (&e.args[0][..], e.name.as_str()))
        .collect();
    assert_eq!(
        logged,
        [
            (&b"INCR"[..], "renamed"),
            (b"CLIENT", "renamed"),
            (b"EVAL", "logger"),
            (b"SLOWLOG", "logger")
        ]
    );
    c.cmd(&["CLIENT", "SETNAME", "logger"]);

    // A blocking command is logged when it answers.
    c.cmd(&["RPUSH", "l", "a"]);
    c.cmd(&["BLPOP", "l", "0"]);
    let newest = &get(&mut c, Some("1"))[0];
    assert_eq!(
        newest.args,
        [b"BLPOP".to_vec(), b"l".to_vec(), b"0".to_vec()]
    );

    // Negative turns it off.
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Frame::Integer(0));
}

#[test]
fn long_commands_are_cut_and_the_log_is_bounded() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let long = "x".repeat(200);
    let mut args: Vec<String> = vec!["SADD".into(), "set".into(), long.clone()];
    args.extend((0..40).map(|i| i.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    c.cmd(&refs);
    let entry = &get(&mut c, Some("1"))[0];
    assert_eq!(entry.args.len(), 32);
    let mut cut = "x".repeat(128).into_bytes();
    cut.extend_from_slice(b"... (72 more bytes)");
    assert_eq!(entry.args[2], cut);
    assert_eq!(entry.args[31], b"... (12 more arguments)".to_vec());

    // slowlog-max-len keeps the newest entries.
    c.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]);
    for i in 0..10 {
        c.cmd(&["SET", "k", &i.to_string()]);
    }
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Frame::Integer(3));
    let entries = get(&mut c, Some("10"));
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0].args[0],
        b"SLOWLOG".to_vec(),
        "the LEN just before"
    );
    assert_eq!(
        entries[1].args,
        [b"SET".to_vec(), b"k".to_vec(), b"9".to_vec()]
    );
    assert_eq!(get(&mut c, Some("0")).len(), 0);
    // At most 100 000 entries.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "100000"]),
        Frame::ok()
    );
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "100001"]),
        Frame::Error(e) if e.contains("slowlog-max-len")
    ));
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-2"]),
        Frame::Error(e) if e.contains("slowlog-log-slower-than")
    ));
}

#[test]
fn slowlog_subcommands_and_their_errors() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    assert_eq!(
        c.cmd(&["SLOWLOG", "GET", "-2"]),
        Frame::error("ERR count should be greater than or equal to -1")
    );
    assert_eq!(
        c.cmd(&["SLOWLOG", "GET", "x"]),
        Frame::error("ERR count should be greater than or equal to -1")
    );
    assert_eq!(
        c.cmd(&["SLOWLOG", "GET", "1", "2"]),
        Frame::error(
            "ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP."
        )
    );
    assert_eq!(
        c.cmd(&["SLOWLOG", "LEN", "1"]),
        Frame::error("ERR wrong number of arguments for 'slowlog|len' command")
    );
    assert_eq!(
        c.cmd(&["SLOWLOG", "nosuch"]),
        Frame::error("ERR unknown subcommand 'nosuch'. Try SLOWLOG HELP.")
    );
    let Frame::Array(help) = c.cmd(&["SLOWLOG", "HELP"]) else {
        panic!()
    };
    assert_eq!(help.len(), 12);
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), Frame::ok());
}
