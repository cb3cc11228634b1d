//! Capability: INFO commandstats and errorstats as Redis 7.0.15 keeps them — calls, time,
//! rejected calls (arity, NOAUTH, OOM, the subscribed state, refused while queueing) and failed
//! calls per command and per container subcommand (`config|get`), error replies counted by
//! code, `total_error_replies`, MULTI/EXEC counting each queued command, a blocked command
//! counted once when it answers, CONFIG RESETSTAT clearing them, and which INFO sections carry
//! them (and the CPU section's process times).
//! Method: a real TCP client on an in-process RESP server whose `ManualClock` never moves
//! during a call, so every `usec` is 0 and each line can be compared whole.
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

use resp_common::{Conn, err};

fn start(auth: Option<&str>) -> resp_common::Server {
    let cache = Cache::new(
        CacheConfig::default(),
        Arc::new(ManualClock::new(1_000_000)),
    );
    let config = RespConfig::from_cache(&cache, auth.map(str::to_owned));
    resp_common::serve(cache, config)
}

fn info(c: &mut Conn, section: &str) -> String {
    let args: Vec<&str> = if section.is_empty() {
        vec!["INFO"]
    } else {
        vec!["INFO", section]
    };
    match c.cmd(&args) {
        Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// The `cmdstat_<name>` line's value, if listed.
fn cmdstat(c: &mut Conn, name: &str) -> Option<String> {
    let text = info(c, "commandstats");
    let prefix = format!("cmdstat_{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

fn line(calls: u64, rejected: u64, failed: u64) -> Option<String> {
    Some(format!(
        "calls={calls},usec=0,usec_per_call=0.00,rejected_calls={rejected},failed_calls={failed}"
    ))
}

fn errorstats(c: &mut Conn) -> Vec<String> {
    info(c, "errorstats")
        .lines()
        .filter(|l| l.starts_with("errorstat_"))
        .map(str::to_owned)
        .collect()
}

fn total_errors(c: &mut Conn) -> u64 {
    info(c, "stats")
        .lines()
        .find_map(|l| l.strip_prefix("total_error_replies:"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn calls_rejections_failures_and_error_codes_are_counted() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Frame::ok());
    c.cmd(&["GET", "k"]);
    assert!(matches!(c.cmd(&["LPUSH", "k", "x"]), Frame::Error(e) if e.starts_with("WRONGTYPE")));
    assert!(matches!(c.cmd(&["GET"]), Frame::Error(_)));
    assert!(matches!(c.cmd(&["NOSUCHCOMMAND", "a"]), Frame::Error(_)));
    // Containers count per subcommand; an unknown subcommand has nothing to count against.
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    c.cmd(&["xinfo", "help"]);
    assert!(matches!(c.cmd(&["CONFIG", "NOSUCH"]), Frame::Error(_)));

    assert_eq!(cmdstat(&mut c, "set"), line(1, 0, 0));
    assert_eq!(cmdstat(&mut c, "get"), line(1, 1, 0));
    assert_eq!(cmdstat(&mut c, "lpush"), line(1, 0, 1));
    assert_eq!(cmdstat(&mut c, "config|get"), line(1, 0, 0));
    assert_eq!(cmdstat(&mut c, "xinfo|help"), line(1, 0, 0));
    assert_eq!(cmdstat(&mut c, "config"), None);
    assert_eq!(
        cmdstat(&mut c, "hset"),
        None,
        "a command never called is not listed"
    );
    assert_eq!(
        errorstats(&mut c),
        ["errorstat_ERR:count=3", "errorstat_WRONGTYPE:count=1"]
    );
    assert_eq!(total_errors(&mut c), 4);

    // OOM is a rejection, with its own code.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), Frame::ok());
    assert!(matches!(c.cmd(&["SET", "k2", "v"]), Frame::Error(e) if e.starts_with("OOM")));
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), Frame::ok());
    assert_eq!(cmdstat(&mut c, "set"), line(1, 1, 0));
    assert!(errorstats(&mut c).contains(&"errorstat_OOM:count=1".to_owned()));

    // RESETSTAT clears everything, then counts itself.
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    assert_eq!(cmdstat(&mut c, "set"), None);
    assert_eq!(cmdstat(&mut c, "config|resetstat"), line(1, 0, 0));
    assert_eq!(errorstats(&mut c), Vec::<String>::new());
    assert_eq!(total_errors(&mut c), 0);
}

#[test]
fn transactions_count_each_queued_command() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    c.cmd(&["SET", "s", "x"]);
    assert_eq!(c.cmd(&["MULTI"]), Frame::ok());
    c.cmd(&["INCR", "n"]);
    c.cmd(&["INCR", "s"]);
    let Frame::Array(replies) = c.cmd(&["EXEC"]) else {
        panic!()
    };
    assert_eq!(replies.len(), 2);
    assert_eq!(cmdstat(&mut c, "incr"), line(2, 0, 1));
    assert_eq!(cmdstat(&mut c, "multi"), line(1, 0, 0));
    assert_eq!(cmdstat(&mut c, "exec"), line(1, 0, 0));
    // A command refused while queueing is rejected; the EXEC that then aborts failed.
    c.cmd(&["MULTI"]);
    assert!(matches!(c.cmd(&["INCR"]), Frame::Error(_)));
    assert!(matches!(c.cmd(&["EXEC"]), Frame::Error(e) if e.starts_with("EXECABORT")));
    assert_eq!(cmdstat(&mut c, "incr"), line(2, 1, 1));
    assert_eq!(cmdstat(&mut c, "exec"), line(2, 0, 1));
    assert_eq!(
        errorstats(&mut c),
        ["errorstat_ERR:count=2", "errorstat_EXECABORT:count=1"]
    );
    assert_eq!(total_errors(&mut c), 3);
}

#[test]
fn connection_state_rejections_are_counted() {
    let s = start(Some("secret"));
    let mut c = Conn::open(s.addr);
    assert_eq!(c.cmd(&["GET", "k"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["AUTH", "secret"]), Frame::ok());
    c.cmd(&["SUBSCRIBE", "ch"]);
    c.send(&["GET", "k"]);
    assert!(matches!(c.reply(), Frame::Error(e) if e.contains("only (P|S)SUBSCRIBE")));
    c.send(&["PING"]);
    c.reply();
    c.send(&["UNSUBSCRIBE"]);
    c.reply();
    assert_eq!(cmdstat(&mut c, "get"), line(0, 2, 0));
    assert_eq!(cmdstat(&mut c, "auth"), line(1, 0, 0));
    assert_eq!(cmdstat(&mut c, "subscribe"), line(1, 0, 0));
    assert_eq!(cmdstat(&mut c, "ping"), line(1, 0, 0));
    assert_eq!(
        errorstats(&mut c),
        ["errorstat_ERR:count=1", "errorstat_NOAUTH:count=1"]
    );
}

#[test]
fn a_blocked_command_counts_one_call_when_it_answers() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    let mut blocked = Conn::open(s.addr);
    // Redis's own `XGROUP DESTROY should unblock XREADGROUP with -NOGROUP`.
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    blocked.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut c, 1);
    assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), Frame::Integer(1));
    assert!(matches!(blocked.reply(), Frame::Error(e) if e.starts_with("NOGROUP")));
    assert_eq!(cmdstat(&mut c, "xreadgroup"), line(1, 0, 1));
    assert_eq!(errorstats(&mut c), ["errorstat_NOGROUP:count=1"]);
    assert_eq!(total_errors(&mut c), 1);
    // A BLPOP served after it blocked, and one answered at once.
    blocked.send(&["BLPOP", "list", "0"]);
    wait_blocked(&mut c, 1);
    c.cmd(&["RPUSH", "list", "a", "b"]);
    assert!(matches!(blocked.reply(), Frame::Array(_)));
    assert!(matches!(
        blocked.cmd(&["BLPOP", "list", "0"]),
        Frame::Array(_)
    ));
    assert_eq!(cmdstat(&mut c, "blpop"), line(2, 0, 0));
}

/// Waits (polling INFO, not sleeping on a timer) until `n` clients are blocked.
fn wait_blocked(c: &mut Conn, n: u64) {
    for _ in 0..10_000 {
        let text = info(c, "clients");
        let blocked = text
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|v| v.parse::<u64>().ok());
        if blocked == Some(n) {
            return;
        }
        std::thread::yield_now();
    }
    panic!("never {n} blocked clients");
}

#[test]
fn default_info_carries_errorstats_but_not_commandstats() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    c.cmd(&["GET"]);
    let default = info(&mut c, "");
    assert!(
        default.contains("# Errorstats\r\nerrorstat_ERR:count=1\r\n"),
        "{default}"
    );
    assert!(!default.contains("# Commandstats"));
    let all = info(&mut c, "all");
    assert!(all.contains("# Commandstats\r\n"), "{all}");
    // The process's CPU times (read from /proc on Linux), and a replication offset of 0.
    assert!(default.contains("\r\n# CPU\r\nused_cpu_sys:"), "{default}");
    assert!(default.contains("\r\nused_cpu_user_children:"), "{default}");
    assert!(
        default.contains("\r\nmaster_repl_offset:0\r\n"),
        "{default}"
    );
    let cpu = info(&mut c, "cpu");
    assert!(
        cpu.starts_with("# CPU\r\n") && !cpu.contains("used_memory"),
        "{cpu}"
    );
    let order: Vec<usize> = [
        "# Stats",
        "# Replication",
        "# CPU",
        "# Commandstats",
        "# Errorstats",
        "# Keyspace",
    ]
    .iter()
    .map(|h| all.find(h).unwrap())
    .collect();
    assert!(order.is_sorted(), "sections in Redis's order: {order:?}");
}

/// INFO's sections as Redis 7.0.15's `genRedisInfoString` writes them: one blank line between
/// sections and none after the last; Modules (empty) and Cluster in the default set; byte counts
/// in `bytesToHuman`'s units; the hz settings. The text had ended in a blank line, had no Modules
/// or Cluster section, and gave every `_human` field in K.
#[test]
fn sections_units_and_separators_are_redis() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    assert_eq!(info(&mut c, "keyspace"), "# Keyspace\r\n");
    assert_eq!(info(&mut c, "modules"), "# Modules\r\n");
    assert_eq!(info(&mut c, "module_list"), "# Modules\r\n");
    assert_eq!(
        info(&mut c, "cluster"),
        "# Cluster\r\ncluster_enabled:0\r\n"
    );
    c.cmd(&["SET", "k", "v"]);
    let default = info(&mut c, "");
    assert!(
        default.ends_with("\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"),
        "{default}"
    );
    assert!(
        default.contains("\r\n\r\n# Modules\r\n\r\n# Errorstats\r\n"),
        "{default}"
    );
    let all = info(&mut c, "all");
    let headers: Vec<&str> = all.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Commandstats",
            "# Errorstats",
            "# Latencystats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    // Every section but the first follows exactly one blank line.
    assert_eq!(all.matches("\r\n\r\n#").count(), headers.len() - 1);
    assert!(!all.ends_with("\r\n\r\n"));

    let field = |text: &str, name: &str| -> String {
        let prefix = format!("{name}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    for (bytes, human) in [
        ("0", "0B"),
        ("1023", "1023B"),
        ("1024", "1.00K"),
        ("1152", "1.12K"),
        ("1048575", "1024.00K"),
        ("1048576", "1.00M"),
        ("3221225472", "3.00G"),
        ("1125899906842624", "1.00P"),
        ("1152921504606846976", "1152921504606846976B"),
    ] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", bytes]), Frame::ok());
        assert_eq!(field(&info(&mut c, "memory"), "maxmemory_human"), human);
    }
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), Frame::ok());
    let memory = info(&mut c, "memory");
    let used: u64 = field(&memory, "used_memory").parse().unwrap();
    assert!(used < 1024 * 1024, "{memory}");
    let human = field(&memory, "used_memory_human");
    if used < 1024 {
        assert_eq!(human, format!("{used}B"));
    } else {
        assert_eq!(human, format!("{:.2}K", used as f64 / 1024.0));
    }
    assert_eq!(field(&memory, "used_memory_peak_human"), human);
    assert_eq!(field(&memory, "used_memory_scripts_human"), "0B");

    assert_eq!(c.cmd(&["CONFIG", "SET", "hz", "20"]), Frame::ok());
    let server = info(&mut c, "server");
    assert_eq!(field(&server, "hz"), "20");
    assert_eq!(field(&server, "configured_hz"), "20");
    // The clock reads 1 000 000 ms.
    assert_eq!(field(&server, "server_time_usec"), "1000000000");
    assert_eq!(field(&server, "lru_clock"), "1000");
    // The fields Redis's own suite prints at its start (`unit/printver`) and clients log.
    assert_eq!(field(&server, "redis_git_sha1"), "00000000");
    assert_eq!(field(&server, "redis_git_dirty"), "0");
    assert!(field(&server, "os").starts_with("Linux "), "{server}");
    assert!(
        std::path::Path::new(&field(&server, "executable")).is_absolute(),
        "{server}"
    );
    assert_eq!(field(&info(&mut c, "clients"), "cluster_connections"), "0");
    assert_eq!(field(&memory, "mem_not_counted_for_evict"), "0");
}

/// CONFIG RESETSTAT zeroes the counters Redis's `resetServerStats` zeroes, the connections
/// received included (it had kept counting them from the start); the connected clients, a
/// gauge, stay.
#[test]
fn resetstat_zeroes_the_stats_counters() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    let _others: Vec<Conn> = (0..3).map(|_| Conn::open(s.addr)).collect();
    let field = |c: &mut Conn, section: &str, name: &str| -> u64 {
        let prefix = format!("{name}:");
        info(c, section)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .unwrap()
            .parse()
            .unwrap()
    };
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["GET", "k"]);
    c.cmd(&["GET", "nokey"]);
    // The three others may still be on their way in: wait until INFO counts them.
    let wait_connected = |c: &mut Conn, n: u64| {
        let reached = (0..10_000).any(|_| {
            std::thread::yield_now();
            field(c, "clients", "connected_clients") >= n
        });
        assert!(reached, "connected_clients never reached {n}");
    };
    wait_connected(&mut c, 4);
    assert_eq!(field(&mut c, "stats", "total_connections_received"), 4);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    // RESETSTAT itself is the one command counted since (an INFO counts after its reply).
    assert_eq!(field(&mut c, "stats", "total_commands_processed"), 1);
    for name in [
        "total_connections_received",
        "expired_keys",
        "evicted_keys",
        "keyspace_hits",
        "keyspace_misses",
        "total_error_replies",
    ] {
        assert_eq!(field(&mut c, "stats", name), 0, "{name}");
    }
    assert_eq!(field(&mut c, "clients", "connected_clients"), 4);
    let _late = Conn::open(s.addr);
    wait_connected(&mut c, 5);
    assert_eq!(field(&mut c, "stats", "total_connections_received"), 1);
}

#[test]
fn role_is_a_master_without_replicas_as_info_says() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    assert_eq!(
        c.cmd(&["ROLE"]),
        Frame::Array(vec![
            Frame::bulk(b"master"),
            Frame::Integer(0),
            Frame::Array(vec![])
        ])
    );
    let Frame::Bulk(info) = c.cmd(&["INFO", "replication"]) else {
        panic!("INFO is a bulk reply")
    };
    let info = String::from_utf8(info.to_vec()).unwrap();
    assert!(info.contains("role:master\r\n") && info.contains("master_repl_offset:0\r\n"));
    assert_eq!(
        c.cmd(&["ROLE", "x"]),
        Frame::error("ERR wrong number of arguments for 'role' command")
    );
}

/// `used_memory_peak` is the most memory seen in use since start, as Redis samples it (after
/// each batch of commands, by the housekeeping and by INFO): it stays after the memory is
/// freed, and CONFIG RESETSTAT leaves it, as Redis's `resetServerStats` does.
#[test]
fn used_memory_peak_keeps_the_high_after_memory_is_freed() {
    let s = start(None);
    let mut c = Conn::open(s.addr);
    let field = |text: &str, name: &str| -> u64 {
        let prefix = format!("{name}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    };
    let memory = info(&mut c, "memory");
    assert_eq!(
        field(&memory, "used_memory_peak"),
        field(&memory, "used_memory")
    );
    let value = "v".repeat(100_000);
    assert_eq!(c.cmd(&["SET", "big", &value]), Frame::ok());
    let memory = info(&mut c, "memory");
    let high = field(&memory, "used_memory");
    assert!(high > 100_000, "{memory}");
    assert_eq!(field(&memory, "used_memory_peak"), high);
    assert_eq!(c.cmd(&["DEL", "big"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Frame::ok());
    let memory = info(&mut c, "memory");
    assert!(field(&memory, "used_memory") < high - 100_000, "{memory}");
    assert_eq!(field(&memory, "used_memory_peak"), high);
    // A high between two INFOs is caught by the batch that made it.
    assert_eq!(c.cmd(&["SET", "a", &value]), Frame::ok());
    assert_eq!(c.cmd(&["SET", "b", &value]), Frame::ok());
    assert_eq!(c.cmd(&["DEL", "a", "b"]), Frame::Integer(2));
    let memory = info(&mut c, "memory");
    assert!(
        field(&memory, "used_memory_peak") > high + 100_000,
        "{memory}"
    );
}
