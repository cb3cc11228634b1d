//! Capability: Lua scripting on the in-process server — EVAL/EVALSHA/EVAL_RO and SCRIPT
//! answer as Redis 7.0.15 does (conversions both ways, error texts with the script's line,
//! read-only globals, commands refused in scripts), scripts are atomic and see the caller's
//! database, and the limits hold: the reply nesting depth, the EVAL cache size, the Lua
//! memory cap, the run limit, and BUSY replies to other clients past `busy-reply-threshold`
//! until SCRIPT KILL or FUNCTION KILL (time driven by the injected clock, never by sleeping).
//! Method: a real TCP client on an in-process RESP server; Redis's own `unit/scripting` is
//! run against the binary as docs/conformance.md records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::{Clock, ManualClock, SystemClock};

mod resp_common;

use resp_common::{Conn, bulk, bulks, err};

fn start() -> (resp_common::Server, Arc<ManualClock>) {
    resp_common::serve_manual()
}

fn error_text(reply: Frame) -> String {
    match reply {
        Frame::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn values_convert_both_ways_as_redis_converts_them() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(c.cmd(&["EVAL", "return 100.5", "0"]), Frame::Integer(100));
    assert_eq!(c.cmd(&["EVAL", "return true", "0"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["EVAL", "return false", "0"]), Frame::Null);
    assert_eq!(
        c.cmd(&["EVAL", "return {ok='fine'}", "0"]),
        Frame::Simple("fine".into())
    );
    assert_eq!(
        c.cmd(&["EVAL", "return {err='My Error'}", "0"]),
        err("My Error")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return {1,2,3,'ciao',{1,2}}", "0"]),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Integer(2),
            Frame::Integer(3),
            bulk("ciao"),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]),
        ])
    );
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
            "2",
            "a",
            "b",
            "c",
            "d"
        ]),
        bulks(&["a", "b", "c", "d"])
    );
    c.cmd(&["SET", "s", "x"]);
    c.cmd(&["RPUSH", "l", "a", "b"]);
    let script = "local i = redis.pcall('incr', KEYS[1]) \
                  local g = redis.call('get', KEYS[1]) \
                  local r = redis.call('lrange', KEYS[2], 0, -1) \
                  local ok = redis.call('set', 'other', '1') \
                  local missing = redis.call('get', 'nope') \
                  return {i['err'], g, r[2], ok['ok'], tostring(missing)}";
    assert_eq!(
        c.cmd(&["EVAL", script, "2", "s", "l"]),
        bulks(&[
            "ERR value is not an integer or out of range",
            "x",
            "b",
            "OK",
            "false"
        ])
    );
    // RESP3 inside the script: a map arrives as {map = …}.
    c.cmd(&["HSET", "h", "f", "v"]);
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "redis.setresp(3) local m = redis.call('hgetall', KEYS[1]) return m.map.f",
            "1",
            "h"
        ]),
        bulk("v")
    );
}

#[test]
fn evalsha_and_the_script_cache() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    c.cmd(&["SET", "mykey", "myval"]);
    let body = "return redis.call('get',KEYS[1])";
    assert_eq!(c.cmd(&["EVAL", body, "1", "mykey"]), bulk("myval"));
    let sha = "fd758d1589d044dd850a6f05d52f2eefd27f033f";
    assert_eq!(c.cmd(&["EVALSHA", sha, "1", "mykey"]), bulk("myval"));
    assert_eq!(
        c.cmd(&["EVALSHA", &sha.to_uppercase(), "1", "mykey"]),
        bulk("myval")
    );
    assert_eq!(
        c.cmd(&[
            "SCRIPT",
            "EXISTS",
            sha,
            "ffd632c7d33e571e9f24556ebed26c3479a87130"
        ]),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(0)])
    );
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]), Frame::ok());
    assert_eq!(
        c.cmd(&["EVALSHA", sha, "1", "mykey"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(
        c.cmd(&["SCRIPT", "LOAD", "return 'loaded'"]),
        bulk("b534286061d4b9e4026607613b95c06c06015ae8")
    );
    assert_eq!(
        c.cmd(&["EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"]),
        bulk("loaded")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return redis.sha1hex('Pizza & Mandolino')", "0"]),
        bulk("74822d82031af7493c20eefa13bd07ec4fada82f")
    );
    let compile = error_text(c.cmd(&["EVAL", "return (", "0"]));
    assert!(
        compile.starts_with("ERR Error compiling script (new function): user_script:1:"),
        "{compile}"
    );
    assert_eq!(
        c.cmd(&["EVAL", "return 1", "2", "a"]),
        err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return 1", "-1"]),
        err("ERR Number of keys can't be negative")
    );
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "EVAL", "return 1", "2", "a", "b", "c"]),
        bulks(&["a", "b"])
    );
}

/// SCRIPT's and FUNCTION's subcommands have Redis 7.0.15's arities and errors: a known
/// subcommand with the wrong number of arguments gets `'script|load'`'s arity error, an
/// unknown one `unknown subcommand`, and SCRIPT FLUSH with more than one option its own
/// error. Texts are `redis-server` 7.0.15's.
#[test]
fn script_and_function_subcommands_answer_redis_arity_errors() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    let arity = |full: &str| {
        err(&format!(
            "ERR wrong number of arguments for '{full}' command"
        ))
    };
    let cases: &[(&[&str], Frame)] = &[
        (&["SCRIPT", "EXISTS"], arity("script|exists")),
        (&["SCRIPT", "load"], arity("script|load")),
        (&["SCRIPT", "LOAD", "a", "b"], arity("script|load")),
        (&["SCRIPT", "KILL", "x"], arity("script|kill")),
        (&["SCRIPT", "HELP", "x"], arity("script|help")),
        (
            &["SCRIPT", "FLUSH", "SYNC", "x"],
            err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        ),
        (
            &["SCRIPT", "NOPE", "x"],
            err("ERR unknown subcommand 'NOPE'. Try SCRIPT HELP."),
        ),
        (&["FUNCTION", "DELETE"], arity("function|delete")),
        (&["FUNCTION", "DELETE", "a", "b"], arity("function|delete")),
        (&["FUNCTION", "DUMP", "a"], arity("function|dump")),
        (&["FUNCTION", "LOAD"], arity("function|load")),
        (&["FUNCTION", "RESTORE"], arity("function|restore")),
        (&["FUNCTION", "STATS", "a"], arity("function|stats")),
        (&["FUNCTION", "KILL", "a"], arity("function|kill")),
        (&["FUNCTION", "HELP", "a"], arity("function|help")),
        (
            &["FUNCTION", "nope"],
            err("ERR unknown subcommand 'nope'. Try FUNCTION HELP."),
        ),
        // A known subcommand with arguments it does not take, past the table's arity.
        (
            &["FUNCTION", "RESTORE", "a", "b", "c"],
            err(
                "ERR unknown subcommand or wrong number of arguments for 'RESTORE'. Try FUNCTION HELP.",
            ),
        ),
        (
            &["FUNCTION", "flush", "sync", "x"],
            err(
                "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
            ),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(&c.cmd(args), want, "{args:?}");
    }
}

#[test]
fn errors_name_the_script_and_line_and_globals_are_read_only() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    let e = error_text(c.cmd(&["EVAL", "local x = 1\nreturn a", "0"]));
    assert!(
        e.starts_with(
            "ERR user_script:2: Script attempted to access nonexistent global variable 'a' script: "
        ) && e.ends_with(", on @user_script:2."),
        "{e}"
    );
    let e = error_text(c.cmd(&["EVAL", "a = 10", "0"]));
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = error_text(c.cmd(&["EVAL", "redis.call = nil", "0"]));
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = error_text(c.cmd(&["EVAL", "rawset(_G, 'x', 1)", "0"]));
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    // Code compiled at run time gets the same read-only globals.
    let e = error_text(c.cmd(&["EVAL", "loadstring('y = 1')()", "0"]));
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return loadstring(\"return redis.sha1hex('')\")()",
            "0"
        ]),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    for name in ["print", "dofile", "loadfile", "os", "io"] {
        let e = error_text(c.cmd(&["EVAL", &format!("return {name}"), "0"]));
        assert!(e.contains("nonexistent global variable"), "{name}: {e}");
    }
    // Precompiled chunks are refused.
    let e = error_text(c.cmd(&[
        "EVAL",
        "return loadstring(string.dump(function() return 1 end))()",
        "0",
    ]));
    assert!(e.contains("attempt to call a nil value"), "{e}");
    c.cmd(&["SET", "foo", "bar"]);
    let e = error_text(c.cmd(&["EVAL", "redis.call('lpush', KEYS[1], 'v')", "1", "foo"]));
    assert!(
        e.starts_with("WRONGTYPE") && e.ends_with("on @user_script:1."),
        "{e}"
    );
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return pcall(redis.call, 'incr', KEYS[1])",
            "1",
            "foo"
        ]),
        Frame::Null,
        "pcall returns false and the message; false is nil"
    );
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "local ok, e = pcall(redis.call, 'incr', KEYS[1]) return e",
            "1",
            "foo"
        ]),
        bulk("ERR value is not an integer or out of range")
    );
}

#[test]
fn commands_scripts_may_not_run_and_read_only_scripts() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    for script in [
        "return redis.pcall('blpop','x',0)",
        "return redis.pcall('subscribe','x')",
        "return redis.pcall('eval','return 1','0')",
        "return redis.pcall('multi')",
    ] {
        assert_eq!(
            c.cmd(&["EVAL", script, "0"]),
            err("ERR This Redis command is not allowed from script"),
            "{script}"
        );
    }
    assert_eq!(
        c.cmd(&["EVAL", "return redis.pcall('nosuchcommand')", "0"]),
        err("ERR Unknown Redis command called from script")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return redis.pcall('get','a','b')", "0"]),
        err("ERR Wrong number of args calling Redis command from script")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return redis.pcall()", "0"]),
        err("ERR Please specify at least one argument for this redis lib call")
    );
    c.cmd(&["SET", "foo", "bar"]);
    assert_eq!(
        c.cmd(&["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "foo"]),
        bulk("bar")
    );
    let e = error_text(c.cmd(&["EVAL_RO", "return redis.call('del', KEYS[1])", "1", "foo"]));
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    assert_eq!(c.cmd(&["GET", "foo"]), bulk("bar"));
    // Thousands of arguments (Redis's test uses 7 999, near Lua's C stack size).
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "local a = {} for i = 1, 7999 do a[i] = 1 end return redis.call('lpush', 'l', unpack(a))",
            "0"
        ]),
        Frame::Integer(7999)
    );
}

#[test]
fn a_script_uses_the_callers_database_and_leaves_it_selected() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    c.cmd(&["SELECT", "9"]);
    c.cmd(&["SET", "k", "nine"]);
    c.cmd(&["SELECT", "10"]);
    c.cmd(&["SET", "k", "ten"]);
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "redis.call('select', '9') return redis.call('get', KEYS[1])",
            "1",
            "k"
        ]),
        bulk("nine")
    );
    assert_eq!(c.cmd(&["GET", "k"]), bulk("ten"));
}

#[test]
fn libraries_cjson_and_bit() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')",
            "0"
        ]),
        bulk("0 -5000 -1 0.0003 1023.2 0")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return cjson.encode({1, 2, {a = 'x/y'}})", "0"]),
        bulk(r#"[1,2,{"a":"x\/y"}]"#)
    );
    let e = error_text(c.cmd(&["EVAL", "return cjson.encode({[false] = 1})", "0"]));
    assert!(e.contains("table key must be a number or string"), "{e}");
    assert_eq!(
        c.cmd(&["EVAL", "return {bit.bor(1,2,4,8), bit.tobit(0xffffffff), bit.tohex(255, -4), bit.lshift(1, 31)}", "0"]),
        Frame::Array(vec![
            Frame::Integer(15),
            Frame::Integer(-1),
            bulk("00FF"),
            Frame::Integer(i64::from(i32::MIN)),
        ])
    );
}

#[test]
fn a_script_is_atomic_and_sorts_sets_by_nothing() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    let script =
        "for i = 1, 100 do redis.call('incr', KEYS[1]) end return redis.call('get', KEYS[1])";
    let mut handles = Vec::new();
    for _ in 0..4 {
        let addr = server.addr;
        let script = script.to_owned();
        handles.push(std::thread::spawn(move || {
            let mut c = Conn::open(addr);
            let mut seen = Vec::new();
            for _ in 0..10 {
                match c.cmd(&["EVAL", &script, "1", "counter"]) {
                    Frame::Bulk(b) => seen.push(String::from_utf8(b.to_vec()).unwrap()),
                    other => panic!("{other:?}"),
                }
            }
            seen
        }));
    }
    for h in handles {
        // Each script's own 100 increments land together: every result is a multiple of 100.
        for n in h.join().unwrap() {
            assert_eq!(n.parse::<u64>().unwrap() % 100, 0, "{n}");
        }
    }
    assert_eq!(c.cmd(&["GET", "counter"]), bulk("4000"));
    c.cmd(&["SADD", "myset", "c", "a", "b"]);
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'by', '_')",
            "1",
            "myset"
        ]),
        bulks(&["a", "b", "c"])
    );
}

fn nested(depth: usize) -> String {
    format!("local t = 'x' for i = 1, {depth} do t = {{t}} end return t")
}

fn innermost(mut reply: Frame) -> Frame {
    while let Frame::Array(mut items) = reply {
        assert_eq!(items.len(), 1);
        reply = items.remove(0);
    }
    reply
}

#[test]
fn reply_depth_at_the_limit_and_past_it() {
    use streamcache::cache::SCRIPT_REPLY_DEPTH_MAX as MAX;
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(innermost(c.cmd(&["EVAL", &nested(MAX), "0"])), bulk("x"));
    assert_eq!(
        innermost(c.cmd(&["EVAL", &nested(MAX + 1), "0"])),
        err("ERR reached lua stack limit")
    );
    // A table that contains itself ends the same way, and the connection stays usable.
    assert_eq!(
        innermost(c.cmd(&[
            "EVAL",
            "local a = {}; local b = {a}; a[1] = b; return a",
            "0"
        ])),
        err("ERR reached lua stack limit")
    );
    assert_eq!(c.cmd(&["PING"]), Frame::Simple("PONG".into()));
}

fn cached(c: &mut Conn) -> u64 {
    let Frame::Bulk(info) = c.cmd(&["INFO", "memory"]) else {
        panic!("INFO")
    };
    let info = String::from_utf8(info.to_vec()).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_eval_cache_keeps_at_most_its_limit_and_spares_loaded_scripts() {
    use streamcache::cache::SCRIPT_EVAL_CACHE_MAX as MAX;
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    let Frame::Bulk(loaded) = c.cmd(&["SCRIPT", "LOAD", "return 'pinned'"]) else {
        panic!("SCRIPT LOAD")
    };
    let loaded = String::from_utf8(loaded.to_vec()).unwrap();
    let Frame::Bulk(first) = c.cmd(&["SCRIPT", "LOAD", "return 0"]) else {
        panic!("SCRIPT LOAD")
    };
    let first = String::from_utf8(first.to_vec()).unwrap();
    // `return 0` was loaded by SCRIPT LOAD, so it is pinned; the EVAL-added ones start at 1.
    for i in 1..=MAX {
        assert_eq!(
            c.cmd(&["EVAL", &format!("return {i}"), "0"]),
            Frame::Integer(i as i64)
        );
    }
    assert_eq!(cached(&mut c), MAX as u64 + 2);
    let oldest = streamcache::cache::script_sha1("return 1");
    assert_eq!(c.cmd(&["EVALSHA", &oldest, "0"]), Frame::Integer(1));
    c.cmd(&["EVAL", &format!("return {}", MAX + 1), "0"]);
    assert_eq!(cached(&mut c), MAX as u64 + 2);
    assert_eq!(
        c.cmd(&["EVALSHA", &oldest, "0"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(c.cmd(&["EVALSHA", &loaded, "0"]), bulk("pinned"));
    assert_eq!(c.cmd(&["EVALSHA", &first, "0"]), Frame::Integer(0));
}

#[test]
fn lua_memory_is_capped_and_the_server_goes_on() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    // 32 MiB is well inside the cap.
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "local s = 'x' for i = 1, 25 do s = s .. s end return #s",
            "0"
        ]),
        Frame::Integer(1 << 25)
    );
    let e = error_text(c.cmd(&["EVAL", "local s = 'x' while true do s = s .. s end", "0"]));
    assert!(e.contains("not enough memory"), "{e}");
    assert_eq!(
        c.cmd(&["EVAL", "return 'still here'", "0"]),
        bulk("still here")
    );
}

/// A [`ManualClock`] that counts its monotonic readings. A running script's hook reads the
/// clock every `HOOK_INSTRUCTIONS` Lua instructions, so many readings after the clock was
/// moved show the hook saw the new time and let the script go on; a command reads it only a
/// few times around its script, and a stopped script's hook reads it no more.
#[derive(Debug)]
struct CountingClock {
    clock: ManualClock,
    reads: AtomicU64,
}

impl CountingClock {
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for CountingClock {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn monotonic_ns(&self) -> u64 {
        // Counted before the reading: a reading counted after a `reads()` taken after an
        // `advance` sees the advanced time.
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.clock.monotonic_ns()
    }
}

/// [`start`] on a [`CountingClock`].
fn start_counting() -> (resp_common::Server, Arc<CountingClock>) {
    let clock = Arc::new(CountingClock {
        clock: ManualClock::new(1_000_000),
        reads: AtomicU64::new(0),
    });
    let cache = Cache::new(CacheConfig::default(), clock.clone());
    let config = RespConfig::from_cache(&cache, None);
    (resp_common::serve(cache, config), clock)
}

/// Clock readings past which only a running script's hook can have made them (far more than
/// the few a command makes around its script).
const HOOK_READS: u64 = 50;

/// Waits until the clock has been read [`HOOK_READS`] times since `from` while `conn`, which
/// waits for the reply to a script command, has none: the script still runs at the clock's
/// time. Fails if the script replies first, and (a guard against hanging, not a wait for
/// time) if its hook stops reading the clock for 10 s of real time.
fn still_running(clock: &CountingClock, from: u64, conn: &mut Conn, what: &str) {
    let real = SystemClock::new();
    conn.stream().set_nonblocking(true).unwrap();
    while clock.reads() - from < HOOK_READS {
        let mut byte = [0u8; 1];
        match conn.stream().peek(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(_) => panic!("{what}: the script already replied"),
            Err(e) => panic!("{what}: {e}"),
        }
        assert!(
            real.monotonic_ns() < 10_000_000_000,
            "{what}: the script neither replies nor reads the clock"
        );
        std::thread::yield_now();
    }
    conn.stream().set_nonblocking(false).unwrap();
}

const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// A connection subscribed to `started`, which the scripts below publish to once they run on
/// the thread they are handed to (the RESP thread stops a script that runs past its inline
/// budget before any write or PUBLISH and runs it again on another thread). Once it has the
/// message, moving the clock moves the script's time.
fn watch_start(server: &resp_common::Server) -> Conn {
    let mut w = Conn::open(server.addr);
    w.cmd(&["SUBSCRIBE", "started"]);
    w
}

fn wait_start(w: &mut Conn) {
    assert_eq!(w.reply(), bulks(&["message", "started", "1"]));
}

/// Lua that runs well past the inline budget (millions of instructions), then publishes to
/// `started`.
const START: &str =
    "local n = 0 while n < 3000000 do n = n + 1 end redis.call('publish', 'started', '1') ";

#[test]
fn a_script_past_the_threshold_makes_others_busy_until_script_kill_stops_it() {
    let (server, clock) = start();
    let mut a = Conn::open(server.addr);
    let mut b = Conn::open(server.addr);
    let mut w = watch_start(&server);
    assert_eq!(
        b.cmd(&["SCRIPT", "KILL"]),
        err("NOTBUSY No scripts in execution right now.")
    );
    a.send(&[
        "EVAL",
        &format!("{START} local i = 0 while true do i = i + 1 end"),
        "0",
    ]);
    wait_start(&mut w);
    // B's commands wait while the script runs; once it has run busy-reply-threshold (5 s by
    // default) on the clock, they are answered BUSY.
    b.send(&["PING"]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.reply(), err(BUSY_EVAL));
    assert_eq!(b.cmd(&["GET", "k"]), err(BUSY_EVAL));
    // FUNCTION KILL does not stop an EVAL script; FUNCTION STATS says why.
    assert_eq!(b.cmd(&["FUNCTION", "KILL"]), err(BUSY_EVAL));
    assert_eq!(b.cmd(&["FUNCTION", "STATS"]), err(BUSY_EVAL));
    // A transaction: MULTI is allowed, a command refused spoils it, EXEC then aborts.
    assert_eq!(b.cmd(&["MULTI"]), Frame::ok());
    assert_eq!(b.cmd(&["INCR", "n"]), err(BUSY_EVAL));
    assert_eq!(
        b.cmd(&["EXEC"]),
        err(&format!(
            "EXECABORT Transaction discarded because of: {BUSY_EVAL}"
        ))
    );
    assert_eq!(b.cmd(&["SCRIPT", "KILL"]), Frame::ok());
    let e = error_text(a.reply());
    assert!(
        e.contains("Script killed by user with SCRIPT KILL..."),
        "{e}"
    );
    assert_eq!(b.cmd(&["PING"]), Frame::Simple("PONG".into()));
    assert_eq!(b.cmd(&["GET", "n"]), Frame::Null);
    // Catching the kill with pcall does not keep the script running.
    a.send(&[
        "EVAL",
        &format!(
            "{START} local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end"
        ),
        "0",
    ]);
    wait_start(&mut w);
    b.send(&["PING"]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.reply(), err(BUSY_EVAL));
    assert_eq!(b.cmd(&["SCRIPT", "KILL"]), Frame::ok());
    let e = error_text(a.reply());
    assert!(e.contains("killed by user"), "{e}");
    assert_eq!(
        a.cmd(&["EVAL", "return 'still here'", "0"]),
        bulk("still here")
    );
}

#[test]
fn a_script_that_wrote_cannot_be_killed_and_stops_at_the_run_limit() {
    let (server, clock) = start_counting();
    let mut a = Conn::open(server.addr);
    let mut b = Conn::open(server.addr);
    let mut w = watch_start(&server);
    a.send(&[
        "EVAL",
        &format!("{START} redis.call('set', KEYS[1], 'v') while true do end"),
        "1",
        "k",
    ]);
    wait_start(&mut w);
    b.send(&["PING"]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.reply(), err(BUSY_EVAL));
    assert_eq!(
        b.cmd(&["SCRIPT", "KILL"]),
        err(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
        )
    );
    // 1 ms short of the run limit it still runs; at the limit it is stopped, its write kept.
    clock.advance(Duration::from_millis(
        streamcache::cache::SCRIPT_RUN_MS_MAX - 5_000 - 1,
    ));
    let from = clock.reads();
    still_running(&clock, from, &mut a, "SCRIPT_RUN_MS_MAX - 1 ms");
    clock.advance(Duration::from_millis(1));
    let e = error_text(a.reply());
    assert!(
        e.contains("the writes it made before stopping are kept"),
        "{e}"
    );
    assert_eq!(b.cmd(&["GET", "k"]), bulk("v"));
}

#[test]
fn a_busy_function_is_shown_by_function_stats_and_stopped_by_function_kill() {
    let (server, clock) = start();
    let mut a = Conn::open(server.addr);
    let mut b = Conn::open(server.addr);
    let mut w = watch_start(&server);
    let code = format!(
        "#!lua name=spin\nredis.register_function('spin', function() {START} local i = 0 while true do i = i + 1 end end)"
    );
    assert_eq!(a.cmd(&["FUNCTION", "LOAD", &code]), bulk("spin"));
    // RESP3, so FUNCTION STATS is a map.
    assert!(matches!(b.cmd(&["HELLO", "3"]), Frame::Map(_)));
    a.send(&["FCALL", "spin", "0"]);
    wait_start(&mut w);
    b.send(&["PING"]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.reply(), err(BUSY_FUNCTION));
    let Frame::Map(stats) = b.cmd(&["FUNCTION", "STATS"]) else {
        panic!("FUNCTION STATS is a map");
    };
    let Frame::Map(run) = &stats[0].1 else {
        panic!("running_script is a map while the function runs: {stats:?}");
    };
    assert_eq!(run[0], (bulk("name"), bulk("spin")));
    assert_eq!(run[1], (bulk("command"), bulks(&["FCALL", "spin", "0"])));
    assert_eq!(run[2], (bulk("duration_ms"), Frame::Integer(5_000)));
    assert_eq!(b.cmd(&["SCRIPT", "KILL"]), err(BUSY_FUNCTION));
    assert_eq!(b.cmd(&["FUNCTION", "KILL"]), Frame::ok());
    let e = error_text(a.reply());
    assert!(e.contains("killed by user"), "{e}");
    assert_eq!(b.cmd(&["PING"]), Frame::Simple("PONG".into()));
    let Frame::Map(stats) = b.cmd(&["FUNCTION", "STATS"]) else {
        panic!("FUNCTION STATS is a map");
    };
    assert_eq!(stats[0], (bulk("running_script"), Frame::Null));
}

const LIBRARY: &str = "#!lua name=mylib
redis.register_function('echo_keys', function(keys, args) return {keys[1], args[1]} end)
redis.register_function{function_name = 'reader', description = 'reads a key',
  callback = function(keys, args) return redis.call('get', keys[1]) end, flags = {'no-writes'}}
redis.register_function('writer', function(keys, args) return redis.call('set', keys[1], args[1]) end)";

#[test]
fn functions_load_list_call_and_delete() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]), bulk("mylib"));
    assert_eq!(
        c.cmd(&["FCALL", "echo_keys", "1", "k", "a"]),
        bulks(&["k", "a"])
    );
    // Function names are found case-insensitively, as in Redis.
    assert_eq!(
        c.cmd(&["FCALL", "ECHO_KEYS", "1", "k", "a"]),
        bulks(&["k", "a"])
    );
    assert_eq!(c.cmd(&["FCALL", "writer", "1", "k", "v"]), Frame::ok());
    assert_eq!(c.cmd(&["FCALL_RO", "reader", "1", "k"]), bulk("v"));
    assert_eq!(
        c.cmd(&["FCALL_RO", "writer", "1", "k", "v"]),
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(
        c.cmd(&["FCALL", "nosuch", "0"]),
        err("ERR Function not found")
    );
    assert_eq!(
        c.cmd(&["FCALL", "reader", "x"]),
        err("ERR Bad number of keys provided")
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", LIBRARY]),
        err("ERR Library 'mylib' already exists")
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", "REPLACE", LIBRARY]),
        bulk("mylib")
    );
    let Frame::Array(libs) = c.cmd(&["FUNCTION", "LIST", "WITHCODE"]) else {
        panic!("FUNCTION LIST")
    };
    assert_eq!(libs.len(), 1);
    let Frame::Array(fields) = &libs[0] else {
        panic!("RESP2 map as a flat array")
    };
    assert_eq!(fields[0], bulk("library_name"));
    assert_eq!(fields[1], bulk("mylib"));
    assert_eq!(fields[7], bulk(LIBRARY));
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "other*"]),
        Frame::Array(vec![])
    );
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "mylib"]), Frame::ok());
    assert_eq!(
        c.cmd(&["FUNCTION", "DELETE", "mylib"]),
        err("ERR Library not found")
    );
    assert_eq!(
        c.cmd(&["FCALL", "reader", "1", "k"]),
        err("ERR Function not found")
    );
}

#[test]
fn a_failed_library_load_changes_nothing() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]), bulk("mylib"));
    for (code, error) in [
        ("return 1", "ERR Missing library metadata"),
        ("#!lua name=mylib\nreturn 1", "ERR No functions registered"),
        (
            "#!lua name=other\nredis.register_function('reader', function() return 1 end)",
            "ERR Function reader already exists",
        ),
        (
            "#!lua name=bad-name\n",
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ),
    ] {
        let replace = code.contains("name=mylib");
        let reply = if replace {
            c.cmd(&["FUNCTION", "LOAD", "REPLACE", code])
        } else {
            c.cmd(&["FUNCTION", "LOAD", code])
        };
        assert_eq!(reply, err(error), "{code}");
    }
    let e = error_text(c.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nreturn math.random()"]));
    assert!(
        e.contains("Script attempted to access nonexistent global variable 'math'"),
        "only `redis` exists while a library loads: {e}"
    );
    let e = error_text(c.cmd(&["FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"]));
    assert!(e.contains("nonexistent global variable 'call'"), "{e}");
    assert_eq!(c.cmd(&["FCALL", "reader", "1", "nokey"]), Frame::Null);
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]), Frame::ok());
    assert_eq!(
        c.cmd(&["FCALL", "echo_keys", "1", "k", "a"]),
        bulks(&["k", "a"]),
        "SCRIPT FLUSH leaves the libraries"
    );
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), Frame::ok());
    assert_eq!(
        c.cmd(&["FCALL", "reader", "1", "k"]),
        err("ERR Function not found")
    );
}

#[test]
fn a_library_that_loads_forever_is_stopped_by_the_clock() {
    let (server, clock) = start_counting();
    let mut c = Conn::open(server.addr);
    let from = clock.reads();
    c.send(&["FUNCTION", "LOAD", "#!lua name=slow\nwhile true do end"]);
    // The load runs (its deadline taken from the clock before its hook first read it), and
    // still runs 1 ms short of FUNCTION_LOAD_MS_MAX; at that limit it is stopped.
    still_running(&clock, from, &mut c, "the load starts");
    clock.advance(Duration::from_millis(
        streamcache::cache::FUNCTION_LOAD_MS_MAX - 1,
    ));
    let from = clock.reads();
    still_running(&clock, from, &mut c, "FUNCTION_LOAD_MS_MAX - 1 ms");
    clock.advance(Duration::from_millis(1));
    let reply = c.reply();
    let e = error_text(reply);
    assert!(e.contains("FUNCTION LOAD timeout"), "{e}");
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST"]),
        Frame::Array(vec![]),
        "nothing was loaded"
    );
}

#[test]
fn function_dump_and_restore_round_trip_all_or_nothing() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]), bulk("mylib"));
    let Frame::Bulk(payload) = c.cmd(&["FUNCTION", "DUMP"]) else {
        panic!("FUNCTION DUMP")
    };
    assert_eq!(
        c.cmd_raw_restore(&payload, None),
        err("ERR Library mylib already exists")
    );
    assert_eq!(c.cmd_raw_restore(&payload, Some("REPLACE")), Frame::ok());
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), Frame::ok());
    assert_eq!(c.cmd_raw_restore(&payload, None), Frame::ok());
    assert_eq!(
        c.cmd(&["FCALL", "echo_keys", "1", "k", "a"]),
        bulks(&["k", "a"])
    );
    // A damaged payload changes nothing.
    let mut bad = payload.to_vec();
    bad[3] ^= 1;
    assert_eq!(
        c.cmd_raw_restore(&bad, Some("FLUSH")),
        err("ERR DUMP payload version or checksum are wrong")
    );
    assert_eq!(
        c.cmd(&["FCALL", "echo_keys", "1", "k", "a"]),
        bulks(&["k", "a"])
    );
    assert_eq!(
        c.cmd_raw_restore(&payload, Some("MERGE")),
        err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    );
}

trait Restore {
    fn cmd_raw_restore(&mut self, payload: &[u8], policy: Option<&str>) -> Frame;
}

impl Restore for Conn {
    fn cmd_raw_restore(&mut self, payload: &[u8], policy: Option<&str>) -> Frame {
        let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", payload];
        if let Some(p) = policy {
            args.push(p.as_bytes());
        }
        self.raw(&args)
    }
}

/// More compiled scripts and functions than a Lua state could hold as mlua references (about
/// 8000): they are kept in the state itself, so all of them load, stay callable, and the
/// engine goes on answering.
#[test]
fn thousands_of_loaded_scripts_and_functions_stay_callable() {
    let (server, _) = start();
    let mut c = Conn::open(server.addr);
    const SCRIPTS: usize = 9_000;
    let mut shas = Vec::with_capacity(SCRIPTS);
    for i in 0..SCRIPTS {
        c.send(&["SCRIPT", "LOAD", &format!("return {i}")]);
    }
    for _ in 0..SCRIPTS {
        let Frame::Bulk(sha) = c.reply() else {
            panic!("SCRIPT LOAD answers the SHA1");
        };
        shas.push(String::from_utf8(sha.to_vec()).unwrap());
    }
    for i in [0, 4_321, SCRIPTS - 1] {
        assert_eq!(c.cmd(&["EVALSHA", &shas[i], "0"]), Frame::Integer(i as i64));
    }
    // Nine libraries of a thousand functions each.
    for lib in 0..9 {
        let mut code = format!("#!lua name=lib{lib}\n");
        for f in 0..1_000 {
            code.push_str(&format!(
                "redis.register_function('f{lib}_{f}', function() return {f} end)\n"
            ));
        }
        assert_eq!(
            c.cmd(&["FUNCTION", "LOAD", &code]),
            bulk(&format!("lib{lib}"))
        );
    }
    assert_eq!(c.cmd(&["FCALL", "f8_999", "0"]), Frame::Integer(999));
    assert_eq!(c.cmd(&["FCALL", "f0_0", "0"]), Frame::Integer(0));
    // Replacing a library drops its old callbacks; the new ones answer.
    let code = "#!lua name=lib0\nredis.register_function('f0_0', function() return 'new' end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", "REPLACE", code]), bulk("lib0"));
    assert_eq!(c.cmd(&["FCALL", "f0_0", "0"]), bulk("new"));
    assert_eq!(
        c.cmd(&["FCALL", "f0_1", "0"]),
        err("ERR Function not found")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return 'still here'", "0"]),
        bulk("still here")
    );
}
