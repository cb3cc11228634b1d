//! Capability: Redis's own Tcl test suite (7.0.15; units protocol, type/string, expire,
//! keyspace, type/hash, type/list, type/set, type/incr, info) passes against streamcache at the
//! conformance bar of 583 tests (95% of stock Redis's 614); units type/zset, bitops, pubsub,
//! hyperloglog, type/stream, type/stream-cgroups, geo, sort, scripting and functions, each run
//! on its own, pass what docs/conformance.md records.
//! Method: start the real binary on ephemeral ports, read its ready line for the RESP address,
//! run `../shared/tools/redis-suite.sh` with `REDIS_TESTS_DIR` from the environment (get it with
//! `scripts/fetch-redis-suite.sh`), and read the suite's last line `N passed, M failed`.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The bar from the issue: 95% of what stock Redis 7.0.15 passes with the script's defaults.
const PASSED_MIN: u64 = 583;
/// `unit/type/zset`, run separately: what streamcache passes (see docs/conformance.md); none
/// of it may fail.
const ZSET_PASSED_MIN: u64 = 308;
/// `unit/bitops`, run separately: every test the script's default tags let run.
const BITOPS_PASSED_MIN: u64 = 45;
/// `unit/pubsub`, run separately: every test the script's default tags let run.
const PUBSUB_PASSED_MIN: u64 = 29;
/// `unit/hyperloglog`, run separately: every test the script's default tags let run (4 are
/// `needs:pfdebug`).
const HYPERLOGLOG_PASSED_MIN: u64 = 16;
/// `unit/type/stream`, run separately: every test the script's default tags let run.
const STREAM_PASSED_MIN: u64 = 63;
/// `unit/type/stream-cgroups`, run separately: every test the script's default tags let run.
const STREAM_CGROUPS_PASSED_MIN: u64 = 48;
/// `unit/geo`, run separately: every test the script's default tags let run.
const GEO_PASSED_MIN: u64 = 59;
/// `unit/sort`, run separately: every test the script's default tags let run.
const SORT_PASSED_MIN: u64 = 52;
/// `unit/scripting` (its EVAL and its FUNCTION half), run separately: every test but those
/// docs/conformance.md lists (no ACL; replication checks; `maxmemory 1`).
const SCRIPTING_PASSED_MIN: u64 = 182;
const SCRIPTING_FAILED_MAX: u64 = 4;
/// `unit/functions`, run separately: every test the script's default tags let run.
const FUNCTIONS_PASSED_MIN: u64 = 86;
/// `unit/multi`, run separately: every test the script's default tags let run.
const MULTI_PASSED_MIN: u64 = 35;
const MULTI_FAILED_MAX: u64 = 0;
/// `unit/latency-monitor`, run separately: every test the script's default tags let run (one,
/// `needs:debug`, is filtered).
const LATENCY_MONITOR_PASSED_MIN: u64 = 13;
/// `unit/slowlog`, run separately: every test the default tags let run (seven use DEBUG
/// SLEEP or replication and are filtered).
const SLOWLOG_PASSED_MIN: u64 = 9;
/// `unit/introspection`, run separately: every test but `CONFIG SET rollback on apply error`
/// (docs/conformance.md: `port` is stored, not rebound).
const INTROSPECTION_PASSED_MIN: u64 = 26;
const INTROSPECTION_FAILED_MAX: u64 = 1;
/// `unit/introspection-2`, run separately: every test but the one that needs MIGRATE
/// (docs/conformance.md).
const INTROSPECTION_2_PASSED_MIN: u64 = 36;
const INTROSPECTION_2_FAILED_MAX: u64 = 1;
/// `unit/tracking` (client-side caching) with the script's default tags: all 51 that run.
const TRACKING_PASSED_MIN: u64 = 51;
const TRACKING_FAILED_MAX: u64 = 0;
/// `unit/pause` with the script's default tags: 14 run, 13 pass; the failure wants the
/// `script: …` suffix on a `redis.call` error (docs/conformance.md).
const PAUSE_PASSED_MIN: u64 = 13;
const PAUSE_FAILED_MAX: u64 = 1;
/// Smaller units run together on one server (`unit/bitfield`, `unit/type/list-2`,
/// `unit/type/list-3`, `unit/quit`, `unit/violations`, `unit/info-command`, and
/// `unit/printver`, which has no test but stops with an error unless INFO reports the
/// version's fields): every test the script's default tags let run.
const SMALLER_UNITS: &[&str] = &[
    "unit/bitfield",
    "unit/type/list-2",
    "unit/type/list-3",
    "unit/quit",
    "unit/violations",
    "unit/info-command",
    "unit/printver",
    "unit/querybuf",
];
const SMALLER_UNITS_PASSED_MIN: u64 = 38;
/// `unit/pubsubshard`'s one-server block, run from a copy of the suite without its
/// `external:skip` tag: every test of it.
const PUBSUBSHARD_PASSED_MIN: u64 = 9;

fn suite_script() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_SUITE_SCRIPT") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for candidate in [
        root.join("../shared/tools/redis-suite.sh"),
        root.join("../../shared/tools/redis-suite.sh"),
    ] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "redis-suite.sh not found beside the repository (../shared/tools); set REDIS_SUITE_SCRIPT"
    );
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real binary on ephemeral ports, runs the suite script on `units` (its default
/// units when empty) and returns its stdout; the last line is `N passed, M failed`.
/// The suite's own test server listens on a fixed port, so two runs at once collide: the tests
/// of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_suite(units: &[&str]) -> String {
    run_suite_with(units, &[])
}

/// [`run_suite`] with extra environment for the script (`TEST_TIMEOUT`, …).
fn run_suite_with(units: &[&str], env: &[(&str, &str)]) -> String {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tests_dir = std::env::var("REDIS_TESTS_DIR").expect(
        "set REDIS_TESTS_DIR to Redis 7.0.15's tests (run scripts/fetch-redis-suite.sh, which uses Debian's `redis` source package)",
    );
    assert!(
        Command::new("tclsh")
            .arg("/dev/null")
            .status()
            .is_ok_and(|s| s.success()),
        "tclsh is missing: install the Debian package `tcl`"
    );
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_streamcache"))
            .args([
                "--ephemeral",
                "--http",
                "127.0.0.1:0",
                "--resp",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let resp = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("resp="))
        .unwrap_or_else(|| panic!("no resp= in ready line {line:?}"));
    let (host, port) = resp.rsplit_once(':').unwrap();

    let out = Command::new("bash")
        .arg(suite_script())
        .args(units)
        .env("REDIS_TESTS_DIR", &tests_dir)
        .env("HOST", host)
        .env("PORT", port)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    text
}

/// The (passed, failed) counts of the suite's last line.
fn counts(text: &str) -> (u64, u64) {
    let last = text.lines().last().unwrap_or_default();
    let mut words = last.split_whitespace();
    let passed = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let failed = words
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    (passed, failed)
}

#[test]
fn redis_own_suite_passes_the_bar() {
    let text = run_suite(&[]);
    let (passed, _) = counts(&text);
    assert!(
        passed >= PASSED_MIN,
        "Redis suite: {:?}; the bar is {PASSED_MIN} passed",
        text.lines().last()
    );
}

/// Runs one unit (with `env` for the script) and asserts at least `passed_min` passed and at
/// most `failed_max` failed.
fn assert_unit(unit: &str, env: &[(&str, &str)], passed_min: u64, failed_max: u64) {
    let text = run_suite_with(&[unit], env);
    let (passed, failed) = counts(&text);
    assert!(
        passed >= passed_min && failed <= failed_max,
        "{unit}: {:?}; expected at least {passed_min} passed, at most {failed_max} failed",
        text.lines().last()
    );
}

/// Reported on its own, beside the bar (which keeps its units and count).
#[test]
fn redis_own_zset_unit_passes() {
    assert_unit("unit/type/zset", &[], ZSET_PASSED_MIN, 0);
}

/// Reported beside the bar: the smaller units, on one server.
#[test]
fn redis_own_smaller_units_pass() {
    let text = run_suite(SMALLER_UNITS);
    let (passed, failed) = counts(&text);
    assert!(
        passed >= SMALLER_UNITS_PASSED_MIN && failed == 0,
        "{SMALLER_UNITS:?}: {:?}; expected at least {SMALLER_UNITS_PASSED_MIN} passed, none failed",
        text.lines().last()
    );
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_bitops_unit_passes() {
    assert_unit("unit/bitops", &[], BITOPS_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_pubsub_unit_passes() {
    assert_unit("unit/pubsub", &[], PUBSUB_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar. Its encoding fuzzer (1000 sketches of up to 3000
/// elements, each PFADD walking the sparse opcodes per element) runs for minutes on a debug
/// build, past the script's default 120 s without progress, so this run allows 600 s.
#[test]
fn redis_own_hyperloglog_unit_passes() {
    assert_unit(
        "unit/hyperloglog",
        &[("TEST_TIMEOUT", "600")],
        HYPERLOGLOG_PASSED_MIN,
        0,
    );
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_sort_unit_passes() {
    assert_unit("unit/sort", &[], SORT_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_scripting_unit_passes() {
    assert_unit(
        "unit/scripting",
        &[],
        SCRIPTING_PASSED_MIN,
        SCRIPTING_FAILED_MAX,
    );
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_functions_unit_passes() {
    assert_unit("unit/functions", &[], FUNCTIONS_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_multi_unit_passes() {
    assert_unit("unit/multi", &[], MULTI_PASSED_MIN, MULTI_FAILED_MAX);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_latency_monitor_unit_passes() {
    assert_unit("unit/latency-monitor", &[], LATENCY_MONITOR_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_slowlog_unit_passes() {
    assert_unit("unit/slowlog", &[], SLOWLOG_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_geo_unit_passes() {
    assert_unit("unit/geo", &[], GEO_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_stream_unit_passes() {
    assert_unit("unit/type/stream", &[], STREAM_PASSED_MIN, 0);
}

/// Reported on its own, beside the bar.
#[test]
fn redis_own_stream_cgroups_unit_passes() {
    assert_unit(
        "unit/type/stream-cgroups",
        &[],
        STREAM_CGROUPS_PASSED_MIN,
        0,
    );
}

/// Reported on its own, beside the bar: MONITOR, CLIENT LIST/INFO, CLIENT REPLY.
#[test]
fn redis_own_introspection_unit_passes() {
    assert_unit(
        "unit/introspection",
        &[],
        INTROSPECTION_PASSED_MIN,
        INTROSPECTION_FAILED_MAX,
    );
}

/// Reported on its own, beside the bar: COMMAND LIST, INFO, GETKEYS.
#[test]
fn redis_own_introspection_2_unit_passes() {
    assert_unit(
        "unit/introspection-2",
        &[],
        INTROSPECTION_2_PASSED_MIN,
        INTROSPECTION_2_FAILED_MAX,
    );
}

/// Reported on its own, beside the bar: CLIENT TRACKING.
#[test]
fn redis_own_tracking_unit_passes() {
    assert_unit(
        "unit/tracking",
        &[],
        TRACKING_PASSED_MIN,
        TRACKING_FAILED_MAX,
    );
}

/// Reported on its own, beside the bar: CLIENT PAUSE and UNPAUSE.
#[test]
fn redis_own_pause_unit_passes() {
    assert_unit("unit/pause", &[], PAUSE_PASSED_MIN, PAUSE_FAILED_MAX);
}

/// Reported on its own, beside the bar. Redis skips `unit/pubsubshard` against an external
/// server (`external:skip`); its first block needs one server and nothing else, so it runs from
/// a copy of the suite with that tag taken off that block (the second, which starts servers
/// of its own, stays skipped).
#[test]
fn redis_own_pubsubshard_unit_passes() {
    let given =
        PathBuf::from(std::env::var("REDIS_TESTS_DIR").expect(
            "set REDIS_TESTS_DIR to Redis 7.0.15's tests (run scripts/fetch-redis-suite.sh)",
        ));
    // The script takes the tree holding `tests/`, or `tests/` itself.
    let tree = if given.join("tests/test_helper.tcl").exists() {
        given
    } else {
        given.parent().map(PathBuf::from).unwrap_or(given)
    };
    let copy = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(tree.join("."))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(copied.success(), "copying the suite failed");
    let unit = copy.path().join("tests/unit/pubsubshard.tcl");
    let text = std::fs::read_to_string(&unit).unwrap();
    let skipped = "start_server {tags {\"pubsubshard external:skip\"}} {";
    assert!(
        text.starts_with(skipped),
        "unexpected first line of {unit:?}"
    );
    std::fs::write(
        &unit,
        text.replacen(skipped, "start_server {tags {\"pubsubshard\"}} {", 1),
    )
    .unwrap();
    let dir = copy.path().to_string_lossy().into_owned();
    assert_unit(
        "unit/pubsubshard",
        &[("REDIS_TESTS_DIR", dir.as_str())],
        PUBSUBSHARD_PASSED_MIN,
        0,
    );
}
