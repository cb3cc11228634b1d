//! Capability: Redis's persistence commands on the RESP server — SAVE (the snapshot written
//! before the reply, seen by a reopened cache), BGSAVE (off the connection's thread, one at a
//! time, copying a consistent keyspace), LASTSAVE and INFO persistence following them, SHUTDOWN
//! with its NOSAVE/SAVE/NOW/FORCE/ABORT words (the trigger fired, the connection closed without
//! a reply, the binary exiting 0), SAVE and SHUTDOWN refused inside MULTI as Redis 7.0's
//! `no-multi` commands, SHUTDOWN refused before AUTH, and COMMAND INFO's entries for them.
//! Method: a real TCP client on an in-process RESP server over a cache on a `ManualClock`
//! (snapshots in a temporary directory, or none configured), reopening the cache from the
//! directory to read what was saved; a background save is awaited by polling INFO on its
//! condition with a bounded loop, never by sleeping; the binary is started as a child process
//! and its exit awaited with a bound.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::ManualClock;

mod common;
mod resp_common;

use resp_common::{Conn, bulk, err};

/// A cache on `clock` whose snapshot is `dir/cache.snapshot`, or none without `dir`.
fn cache(dir: Option<&Path>, clock: &Arc<ManualClock>) -> Cache {
    match dir {
        Some(dir) => Cache::open(
            CacheConfig {
                snapshot: true,
                ..CacheConfig::default()
            },
            clock.clone(),
            dir,
        ),
        None => Cache::new(CacheConfig::default(), clock.clone()),
    }
}

/// Serves `cache` (no password unless `auth`).
fn serve(cache: &Cache, auth: Option<&str>) -> resp_common::Server {
    let config = RespConfig::from_cache(cache, auth.map(str::to_owned));
    resp_common::serve(cache.clone(), config)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_000_000))
}

/// A served cache and a client: with a snapshot in a temporary directory, or with none.
struct Rig {
    /// Holds the snapshot (`None`: no snapshot configured).
    dir: Option<tempfile::TempDir>,
    clock: Arc<ManualClock>,
    cache: Cache,
    server: resp_common::Server,
    conn: Conn,
}

impl Rig {
    fn new(snapshot: bool, auth: Option<&str>) -> Self {
        let dir = snapshot.then(|| tempfile::tempdir().unwrap());
        let clock = clock();
        let cache = cache(dir.as_ref().map(tempfile::TempDir::path), &clock);
        let server = serve(&cache, auth);
        let conn = Conn::open(server.addr);
        Self {
            dir,
            clock,
            cache,
            server,
            conn,
        }
    }

    /// A new cache opened from this rig's snapshot directory.
    fn reopen(&self) -> Cache {
        cache(self.dir.as_ref().map(tempfile::TempDir::path), &self.clock)
    }

    /// Whether the server's shutdown trigger has fired.
    fn stopped(&self) -> bool {
        self.server.shutdown.signal().is_triggered()
    }

    /// Sends `args` on a fresh connection and checks that the server closed it without a
    /// reply and fired its trigger.
    fn shut_down_with(&self, args: &[&str]) {
        let got = send_until_closed(self.server.addr, args);
        assert!(
            got.is_empty(),
            "no reply: {}",
            String::from_utf8_lossy(&got)
        );
        assert!(self.stopped(), "{args:?} fired the server's trigger");
    }
}

fn info(c: &mut Conn) -> String {
    match c.cmd(&["INFO", "persistence"]) {
        Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// The value of INFO persistence's `name` line.
fn field(text: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_owned()
}

/// Polls INFO until no background save runs (bounded: a save of a few keys takes
/// milliseconds; the bound only turns a hang into a failure).
fn await_background_save(c: &mut Conn) -> String {
    for _ in 0..200_000 {
        let text = info(c);
        if field(&text, "rdb_bgsave_in_progress") == "0" {
            return text;
        }
        std::thread::yield_now();
    }
    panic!("the background save did not finish");
}

/// Sends `args` on a fresh connection and reads until the server closes it; returns what
/// arrived (nothing, when it closed without a reply).
fn send_until_closed(addr: SocketAddr, args: &[&str]) -> Vec<u8> {
    pipeline_until_closed(addr, &[args])
}

/// Sends the commands in one write on a fresh connection and reads until the server closes
/// it; returns what arrived.
fn pipeline_until_closed(addr: SocketAddr, commands: &[&[&str]]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = Vec::new();
    for args in commands {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        request.extend_from_slice(&resp_common::encode(&args));
    }
    s.write_all(&request).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("the server kept the connection open: {e} (got {got:?})"),
        }
    }
}

fn ok() -> Frame {
    Frame::simple("OK")
}

#[test]
fn save_writes_the_snapshot_a_reopened_cache_reads_and_moves_lastsave() {
    let Rig {
        dir,
        clock,
        cache: c,
        server,
        mut conn,
    } = Rig::new(true, None);
    assert_eq!(conn.cmd(&["LASTSAVE"]), Frame::Integer(1_000), "the start");
    assert_eq!(conn.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(conn.cmd(&["SELECT", "3"]), ok());
    assert_eq!(conn.cmd(&["RPUSH", "l", "a", "b"]), Frame::Integer(2));
    let before = info(&mut conn);
    assert_eq!(field(&before, "rdb_changes_since_last_save"), "2");
    assert_eq!(field(&before, "rdb_last_save_time"), "1000");
    assert_eq!(field(&before, "rdb_saves"), "0");

    clock.advance(Duration::from_secs(42));
    assert_eq!(conn.cmd(&["SAVE"]), ok());
    assert_eq!(conn.cmd(&["LASTSAVE"]), Frame::Integer(1_042));
    let after = info(&mut conn);
    assert_eq!(field(&after, "rdb_changes_since_last_save"), "0");
    assert_eq!(field(&after, "rdb_last_save_time"), "1042");
    assert_eq!(field(&after, "rdb_saves"), "1");
    assert_eq!(field(&after, "rdb_bgsave_in_progress"), "0");
    assert_eq!(field(&after, "rdb_last_bgsave_status"), "ok");
    drop((conn, server, c));

    let dir = dir.unwrap();
    let reopened = cache(Some(dir.path()), &clock);
    assert_eq!(reopened.get(0, b"k").as_deref(), Some(&b"v"[..]));
    let server = serve(&reopened, None);
    let mut conn = Conn::open(server.addr);
    assert_eq!(conn.cmd(&["SELECT", "3"]), ok());
    assert_eq!(
        conn.cmd(&["LRANGE", "l", "0", "-1"]),
        resp_common::bulks(&["a", "b"])
    );
}

#[test]
fn save_and_bgsave_without_a_configured_snapshot_answer_an_error_and_change_nothing() {
    let mut rig = Rig::new(false, None);
    let conn = &mut rig.conn;
    assert_eq!(conn.cmd(&["SET", "k", "v"]), ok());
    let off = err(
        "ERR no snapshot is configured: set [cache] snapshot = true to save to DATA_DIR/cache.snapshot",
    );
    assert_eq!(conn.cmd(&["SAVE"]), off);
    assert_eq!(conn.cmd(&["BGSAVE"]), off);
    let text = info(conn);
    assert_eq!(field(&text, "rdb_changes_since_last_save"), "1");
    assert_eq!(field(&text, "rdb_saves"), "0");
    assert_eq!(conn.cmd(&["LASTSAVE"]), Frame::Integer(1_000));
    // Arity and BGSAVE's one option, as Redis checks them.
    assert_eq!(
        conn.cmd(&["SAVE", "x"]),
        err("ERR wrong number of arguments for 'save' command")
    );
    assert_eq!(conn.cmd(&["BGSAVE", "x"]), err("ERR syntax error"));
    assert_eq!(
        conn.cmd(&["BGSAVE", "SCHEDULE", "x"]),
        err("ERR syntax error")
    );
    assert_eq!(conn.cmd(&["BGSAVE", "schedule"]), off);
}

#[test]
fn bgsave_saves_off_the_connection_and_lastsave_follows_it() {
    let mut rig = Rig::new(true, None);
    let conn = &mut rig.conn;
    assert_eq!(conn.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(conn.cmd(&["HSET", "h", "f", "1"]), Frame::Integer(1));
    rig.clock.advance(Duration::from_secs(7));
    assert_eq!(
        conn.cmd(&["BGSAVE"]),
        Frame::simple("Background saving started")
    );
    let text = await_background_save(conn);
    assert_eq!(field(&text, "rdb_last_bgsave_status"), "ok");
    assert_eq!(field(&text, "rdb_changes_since_last_save"), "0");
    assert_eq!(field(&text, "rdb_last_save_time"), "1007");
    assert_eq!(field(&text, "rdb_current_bgsave_time_sec"), "-1");
    assert_eq!(field(&text, "rdb_last_bgsave_time_sec"), "0");
    assert_eq!(field(&text, "rdb_saves"), "1");
    assert_eq!(conn.cmd(&["LASTSAVE"]), Frame::Integer(1_007));
    // BGSAVE SCHEDULE starts one too (there is no other child work to wait for).
    rig.clock.advance(Duration::from_secs(1));
    assert_eq!(
        conn.cmd(&["bgsave", "schedule"]),
        Frame::simple("Background saving started")
    );
    await_background_save(conn);
    assert_eq!(conn.cmd(&["LASTSAVE"]), Frame::Integer(1_008));

    let reopened = rig.reopen();
    assert_eq!(reopened.get(0, b"k").as_deref(), Some(&b"v"[..]));
    let server = serve(&reopened, None);
    let mut conn = Conn::open(server.addr);
    assert_eq!(conn.cmd(&["HGET", "h", "f"]), bulk("1"));
}

#[test]
fn a_bgsave_while_one_runs_is_refused_and_the_save_holds_the_whole_transaction() {
    let mut rig = Rig::new(true, None);
    let conn = &mut rig.conn;
    // Inside EXEC the keyspace is held, so the save started there cannot finish before EXEC
    // ends: the second BGSAVE and INFO see it running, deterministically.
    assert_eq!(conn.cmd(&["MULTI"]), ok());
    for cmd in [
        &["SET", "before", "1"][..],
        &["BGSAVE"],
        &["INFO", "persistence"],
        &["BGSAVE"],
        &["SET", "after", "2"],
    ] {
        assert_eq!(conn.cmd(cmd), Frame::simple("QUEUED"));
    }
    let Frame::Array(replies) = conn.cmd(&["EXEC"]) else {
        panic!("EXEC answers an array");
    };
    assert_eq!(replies[0], ok());
    assert_eq!(replies[1], Frame::simple("Background saving scheduled"));
    let Frame::Bulk(text) = &replies[2] else {
        panic!("{:?}", replies[2]);
    };
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert_eq!(field(&text, "rdb_bgsave_in_progress"), "1");
    assert_eq!(field(&text, "rdb_current_bgsave_time_sec"), "0");
    assert_eq!(replies[3], err("ERR Background save already in progress"));
    assert_eq!(replies[4], ok());
    let text = await_background_save(conn);
    assert_eq!(field(&text, "rdb_last_bgsave_status"), "ok");
    // The transaction's writes all went into the snapshot, so none is left unsaved.
    assert_eq!(field(&text, "rdb_changes_since_last_save"), "0");

    let reopened = rig.reopen();
    assert_eq!(reopened.get(0, b"before").as_deref(), Some(&b"1"[..]));
    assert_eq!(reopened.get(0, b"after").as_deref(), Some(&b"2"[..]));
}

#[test]
fn save_and_shutdown_inside_multi_are_refused_and_spoil_the_transaction() {
    let mut rig = Rig::new(false, None);
    let conn = &mut rig.conn;
    for cmd in ["SAVE", "SHUTDOWN"] {
        assert_eq!(conn.cmd(&["DEL", "foo"]), Frame::Integer(0));
        assert_eq!(conn.cmd(&["MULTI"]), ok());
        assert_eq!(conn.cmd(&["SET", "foo", "bar"]), Frame::simple("QUEUED"));
        assert_eq!(
            conn.cmd(&[cmd]),
            err("ERR Command not allowed inside a transaction"),
            "{cmd}"
        );
        assert_eq!(
            conn.cmd(&["EXEC"]),
            err("EXECABORT Transaction discarded because of previous errors.")
        );
        assert_eq!(conn.cmd(&["GET", "foo"]), Frame::Null);
    }
    assert_eq!(conn.cmd(&["PING"]), Frame::simple("PONG"));
    assert!(!rig.stopped(), "a refused SHUTDOWN stops nothing");
}

#[test]
fn shutdown_nosave_closes_without_a_reply_fires_the_trigger_and_skips_the_final_snapshot() {
    let mut rig = Rig::new(true, None);
    assert_eq!(rig.conn.cmd(&["SET", "unsaved", "1"]), ok());
    assert!(!rig.stopped());
    rig.shut_down_with(&["SHUTDOWN", "NOSAVE"]);
    // The engine's shutdown snapshot honours NOSAVE.
    rig.cache.save_snapshot_at_shutdown().unwrap();
    let dir = rig.dir.as_ref().unwrap();
    assert!(
        !dir.path().join("cache.snapshot").exists(),
        "NOSAVE wrote no snapshot"
    );
}

#[test]
fn shutdown_saves_first_when_a_snapshot_is_configured() {
    let mut rig = Rig::new(true, None);
    assert_eq!(rig.conn.cmd(&["SET", "k", "v"]), ok());
    rig.shut_down_with(&["SHUTDOWN", "NOW"]);
    let reopened = rig.reopen();
    assert_eq!(reopened.get(0, b"k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn shutdown_save_without_a_snapshot_fails_unless_forced_and_abort_finds_nothing_to_abort() {
    let mut rig = Rig::new(false, None);
    let conn = &mut rig.conn;
    assert_eq!(
        conn.cmd(&["SHUTDOWN", "SAVE"]),
        err("ERR Errors trying to SHUTDOWN. Check logs.")
    );
    assert_eq!(
        conn.cmd(&["SHUTDOWN", "ABORT"]),
        err("ERR No shutdown in progress.")
    );
    for bad in [
        &["SHUTDOWN", "SAVE", "NOSAVE"][..],
        &["SHUTDOWN", "ABORT", "NOW"],
        &["SHUTDOWN", "LATER"],
    ] {
        assert_eq!(conn.cmd(bad), err("ERR syntax error"), "{bad:?}");
    }
    assert_eq!(conn.cmd(&["PING"]), Frame::simple("PONG"));
    assert!(!rig.stopped(), "still serving");
    rig.shut_down_with(&["shutdown", "save", "force"]);
}

#[test]
fn shutdown_without_a_snapshot_configured_just_stops() {
    Rig::new(false, None).shut_down_with(&["SHUTDOWN"]);
}

#[test]
fn shutdown_needs_authentication_when_a_password_is_set() {
    let mut rig = Rig::new(false, Some("sesame"));
    let conn = &mut rig.conn;
    assert_eq!(
        conn.cmd(&["SHUTDOWN", "NOSAVE"]),
        err("NOAUTH Authentication required.")
    );
    assert_eq!(conn.cmd(&["SAVE"]), err("NOAUTH Authentication required."));
    assert_eq!(conn.cmd(&["PING"]), err("NOAUTH Authentication required."));
    assert!(!rig.stopped());
    let got = pipeline_until_closed(
        rig.server.addr,
        &[&["AUTH", "sesame"], &["SHUTDOWN", "NOSAVE"]],
    );
    assert_eq!(got, b"+OK\r\n", "AUTH's reply, then none");
    assert!(rig.stopped());
}

#[test]
fn command_info_lists_the_persistence_commands_with_redis_arity_flags_and_tips() {
    let Rig {
        server, mut conn, ..
    } = Rig::new(false, None);
    // RESP2 sends COMMAND INFO's sets as arrays.
    let flags =
        |names: &[&'static str]| Frame::Array(names.iter().map(|n| Frame::simple(n)).collect());
    // Redis's ACL categories of all four: admin and dangerous; LASTSAVE is fast.
    let entry = |name: &str, arity: i64, f: Frame| {
        let speed = if name == "lastsave" { "@fast" } else { "@slow" };
        // LASTSAVE's answer changes with time (Redis's `nondeterministic_output` tip).
        let tips = if name == "lastsave" {
            vec![bulk("nondeterministic_output")]
        } else {
            Vec::new()
        };
        Frame::Array(vec![
            bulk(name),
            Frame::Integer(arity),
            f,
            Frame::Integer(0),
            Frame::Integer(0),
            Frame::Integer(0),
            Frame::Array(vec![
                Frame::simple("@admin"),
                Frame::simple(speed),
                Frame::simple("@dangerous"),
            ]),
            Frame::Array(tips),
            Frame::Array(Vec::new()),
            Frame::Array(Vec::new()),
        ])
    };
    assert_eq!(
        conn.cmd(&["COMMAND", "INFO", "save", "bgsave", "shutdown", "lastsave"]),
        Frame::Array(vec![
            entry(
                "save",
                1,
                flags(&["admin", "noscript", "no_async_loading", "no_multi"])
            ),
            entry(
                "bgsave",
                -1,
                flags(&["admin", "noscript", "no_async_loading"])
            ),
            entry(
                "shutdown",
                -1,
                flags(&["admin", "noscript", "loading", "stale", "no_multi"])
            ),
            entry("lastsave", 1, flags(&["loading", "stale", "fast"])),
        ])
    );
    let Frame::Array(list) = conn.cmd(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST answers an array");
    };
    for name in ["save", "bgsave", "shutdown"] {
        assert!(list.contains(&bulk(name)), "{name} listed");
    }
    // COUNT counts commands; LIST names their subcommands too (`config|get`).
    let commands = list
        .iter()
        .filter(|n| !matches!(n, Frame::Bulk(b) if b.contains(&b'|')))
        .count();
    assert_eq!(
        conn.cmd(&["COMMAND", "COUNT"]),
        Frame::Integer(i64::try_from(commands).unwrap())
    );
    // Scripts may not call them (Redis's `noscript`).
    for name in ["save", "bgsave", "shutdown"] {
        let script = format!("return redis.call('{name}')");
        let Frame::Error(text) = conn.cmd(&["EVAL", &script, "0"]) else {
            panic!("{name} from a script is refused");
        };
        assert!(
            text.starts_with("ERR This Redis command is not allowed from script"),
            "{text}"
        );
    }
    assert!(!server.shutdown.signal().is_triggered());
}

#[test]
fn the_binary_exits_0_after_shutdown_nosave() {
    let mut server = common::start(&["--ephemeral"]);
    let addr: SocketAddr = server.resp.parse().unwrap();
    let got = send_until_closed(addr, &["SHUTDOWN", "NOSAVE"]);
    assert!(
        got.is_empty(),
        "no reply: {}",
        String::from_utf8_lossy(&got)
    );
    let status =
        common::wait_exit(server.take_child(), Duration::from_secs(5)).expect("exit within 5 s");
    assert_eq!(status.code(), Some(0));
}
