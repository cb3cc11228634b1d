//! Capability: latency tracking as Redis 7.0.15 offers it — INFO `latencystats` (per-command
//! percentiles, `latency-tracking`, `latency-tracking-info-percentiles`), LATENCY HISTOGRAM,
//! and the latency monitor (`latency-monitor-threshold`, LATENCY LATEST/HISTORY/GRAPH/DOCTOR/
//! RESET/HELP) — with its limits at the maximum and one past it.
//! Method: a real TCP client on an in-process RESP server. On the manual clock every command
//! runs in 0 ns (recorded as 1 ns, the histogram's floor), so percentiles and buckets are exact;
//! the monitor's test uses the system clock and a script whose loop cannot finish within a
//! millisecond, and asserts only that lower bound.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use streamcache::cache::{Cache, CacheConfig, Frame, RespConfig};
use streamcache::clock::SystemClock;

mod resp_common;

use resp_common::Conn;

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
        Frame::Simple(s) => s.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn info(c: &mut Conn, section: &str) -> String {
    text(&c.cmd(&["INFO", section]))
}

/// The `latency_percentiles_usec_<name>` line's value, if INFO latencystats has one.
fn percentiles(c: &mut Conn, name: &str) -> Option<String> {
    let info = info(c, "latencystats");
    let key = format!("latency_percentiles_usec_{name}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&key).map(str::to_owned))
}

/// One command in LATENCY HISTOGRAM: name, calls, (µs, cumulative count) pairs.
type Entry = (String, i64, Vec<(i64, i64)>);

/// LATENCY HISTOGRAM's reply (RESP2: a flat array).
fn histogram(c: &mut Conn, names: &[&str]) -> Vec<Entry> {
    let mut args = vec!["LATENCY", "HISTOGRAM"];
    args.extend_from_slice(names);
    let Frame::Array(flat) = c.cmd(&args) else {
        panic!("expected an array")
    };
    flat.chunks(2)
        .map(|pair| {
            let name = text(&pair[0]);
            let Frame::Array(fields) = &pair[1] else {
                panic!("{pair:?}")
            };
            assert_eq!(text(&fields[0]), "calls");
            let Frame::Integer(calls) = fields[1] else {
                panic!("{fields:?}")
            };
            assert_eq!(text(&fields[2]), "histogram_usec");
            let Frame::Array(buckets) = &fields[3] else {
                panic!("{fields:?}")
            };
            let buckets = buckets
                .chunks(2)
                .map(|b| match b {
                    [Frame::Integer(usec), Frame::Integer(n)] => (*usec, *n),
                    other => panic!("{other:?}"),
                })
                .collect();
            (name, calls, buckets)
        })
        .collect()
}

#[test]
fn info_latencystats_gives_each_commands_percentiles() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    // 0 ns on the manual clock: the floor of 1 ns, 0.001 µs at every percentile.
    assert_eq!(
        percentiles(&mut c, "set").as_deref(),
        Some("p50=0.001,p99=0.001,p99.9=0.001")
    );
    assert!(percentiles(&mut c, "get").is_some());
    assert!(percentiles(&mut c, "config|get").is_some());
    assert!(percentiles(&mut c, "hset").is_none(), "never called");
    // Not in the default set, in `all` and `everything`.
    assert!(!text(&c.cmd(&["INFO"])).contains("# Latencystats"));
    assert!(info(&mut c, "all").contains("latency_percentiles_usec_set:"));
    assert!(info(&mut c, "everything").contains("# Latencystats"));
    // CONFIG RESETSTAT forgets them (and is itself the next one recorded).
    c.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(percentiles(&mut c, "set").is_none());
    assert!(percentiles(&mut c, "config|resetstat").is_some());
}

#[test]
fn latency_tracking_and_its_percentiles_are_settings() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    let get = |c: &mut Conn, name: &str| match c.cmd(&["CONFIG", "GET", name]) {
        Frame::Array(v) => text(&v[1]),
        other => panic!("{other:?}"),
    };
    assert_eq!(get(&mut c, "latency-tracking"), "yes");
    assert_eq!(
        get(&mut c, "latency-tracking-info-percentiles"),
        "50 99 99.9"
    );
    assert_eq!(get(&mut c, "latency-monitor-threshold"), "0");

    c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]);
    c.cmd(&["SET", "a", "b"]);
    assert_eq!(info(&mut c, "latencystats"), "# Latencystats\r\n");
    c.cmd(&["CONFIG", "SET", "latency-tracking", "yes"]);
    c.cmd(&["SET", "a", "b"]);
    assert!(percentiles(&mut c, "set").is_some());
    assert!(
        matches!(c.cmd(&["CONFIG", "SET", "latency-tracking", "maybe"]), Frame::Error(e) if e.contains("latency-tracking"))
    );

    c.cmd(&[
        "CONFIG",
        "SET",
        "latency-tracking-info-percentiles",
        "0 50.5 100",
    ]);
    assert_eq!(
        get(&mut c, "latency-tracking-info-percentiles"),
        "0 50.5 100"
    );
    assert_eq!(
        percentiles(&mut c, "set").as_deref(),
        Some("p0=0.001,p50.5=0.001,p100=0.001")
    );
    c.cmd(&["CONFIG", "SET", "latency-tracking-info-percentiles", ""]);
    assert_eq!(percentiles(&mut c, "set").as_deref(), Some(""));
    for bad in ["101", "-1", "x", "50 abc"] {
        let reply = c.cmd(&["CONFIG", "SET", "latency-tracking-info-percentiles", bad]);
        assert!(
            matches!(&reply, Frame::Error(e) if e.contains("Invalid latency-tracking-info-percentiles")),
            "{bad}: {reply:?}"
        );
    }
    // At most 16 percentiles.
    let max = vec!["50"; 16].join(" ");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "latency-tracking-info-percentiles", &max]),
        Frame::ok()
    );
    let over = vec!["50"; 17].join(" ");
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "latency-tracking-info-percentiles", &over]),
        Frame::Error(e) if e.contains("at most 16")
    ));
    assert_eq!(get(&mut c, "latency-tracking-info-percentiles"), max);
}

#[test]
fn latency_histogram_counts_calls_per_command_and_subcommand() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    c.cmd(&["CONFIG", "RESETSTAT"]);
    let all = histogram(&mut c, &[]);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].0, "config|resetstat");

    c.cmd(&["CONFIG", "RESETSTAT"]);
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["SET", "c", "d"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    let all = histogram(&mut c, &[]);
    let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["config|get", "config|resetstat", "get", "set"]);
    let set = &all[3];
    assert_eq!(set.1, 2);
    // 0 ns runs fall in the first reported bucket, 1 µs, cumulatively.
    assert_eq!(set.2, vec![(1, 2)]);

    // A container stands for its subcommands; `container|sub` for one; unknown names skipped.
    let config = histogram(&mut c, &["config"]);
    assert_eq!(config.len(), 2);
    let one = histogram(&mut c, &["CONFIG|GET"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, "config|get");
    assert!(histogram(&mut c, &["blabla"]).is_empty());
    let some = histogram(&mut c, &["blabla", "get", "set", "zadd"]);
    let names: Vec<&str> = some.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["get", "set"]);
}

#[test]
fn the_monitor_records_commands_slower_than_its_threshold() {
    let cache = Cache::new(CacheConfig::default(), SystemClock::shared());
    let config = RespConfig::from_cache(&cache, None);
    let server = resp_common::serve(cache, config);
    let mut c = Conn::open(server.addr);
    // Off by default: nothing is recorded.
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Frame::Array(vec![]));
    assert!(text(&c.cmd(&["LATENCY", "DOCTOR"])).contains("disabled"));

    c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    // A million loop iterations take well over a millisecond on any machine.
    let slow = "local n = 0 for i = 1, 1000000 do n = n + i end return n";
    assert!(matches!(c.cmd(&["EVAL", slow, "0"]), Frame::Integer(_)));
    let Frame::Array(latest) = c.cmd(&["LATENCY", "LATEST"]) else {
        panic!()
    };
    assert_eq!(latest.len(), 1, "{latest:?}");
    let Frame::Array(event) = &latest[0] else {
        panic!()
    };
    assert_eq!(text(&event[0]), "command");
    let (Frame::Integer(time), Frame::Integer(ms), Frame::Integer(max)) =
        (&event[1], &event[2], &event[3])
    else {
        panic!("{event:?}")
    };
    assert!(*time > 1_600_000_000, "unix seconds: {time}");
    assert!(*ms >= 1 && max >= ms, "{event:?}");

    let Frame::Array(history) = c.cmd(&["LATENCY", "HISTORY", "command"]) else {
        panic!()
    };
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0],
        Frame::Array(vec![Frame::Integer(*time), Frame::Integer(*ms)])
    );
    assert_eq!(
        c.cmd(&["LATENCY", "HISTORY", "blabla"]),
        Frame::Array(vec![])
    );
    let graph = text(&c.cmd(&["LATENCY", "GRAPH", "command"]));
    assert!(
        graph.starts_with(&format!(
            "command - high {ms} ms, low {ms} ms (all time high {max} ms)\n"
        )),
        "{graph}"
    );
    assert_eq!(
        c.cmd(&["LATENCY", "GRAPH", "blabla"]),
        Frame::error("ERR No samples available for event 'blabla'")
    );
    assert!(text(&c.cmd(&["LATENCY", "DOCTOR"])).contains("1. command: 1 latency spikes"));

    assert_eq!(c.cmd(&["LATENCY", "RESET", "blabla"]), Frame::Integer(0));
    assert_eq!(c.cmd(&["LATENCY", "RESET"]), Frame::Integer(1));
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Frame::Array(vec![]));
}

#[test]
fn latency_subcommands_are_checked() {
    let (server, _clock) = resp_common::serve_manual();
    let mut c = Conn::open(server.addr);
    assert_eq!(
        c.cmd(&["LATENCY", "help", "xxx"]),
        Frame::error("ERR wrong number of arguments for 'latency|help' command")
    );
    assert_eq!(
        c.cmd(&["LATENCY", "nosuch"]),
        Frame::error("ERR unknown subcommand 'nosuch'. Try LATENCY HELP.")
    );
    let Frame::Array(help) = c.cmd(&["LATENCY", "HELP"]) else {
        panic!()
    };
    assert!(text(&help[0]).starts_with("LATENCY <subcommand>"));
    // Not from scripts, as in Redis (`noscript`).
    let reply = c.cmd(&["EVAL", "return redis.call('latency', 'latest')", "0"]);
    assert!(
        matches!(&reply, Frame::Error(e) if e.contains("This Redis command is not allowed from script")),
        "{reply:?}"
    );
}
