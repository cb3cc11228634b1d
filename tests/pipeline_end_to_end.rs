//! Capability: the reference system end to end — an order produced over the REST Proxy API
//! reaches the cache (`customer:{customerNumber}`), history (`shop.orders`) and the `orders`
//! channel as a `NewOrder` event; the cache is rebuilt from the log after a restart; a flow
//! writing to history is exactly-once across SIGKILLs; a flow whose committed offset log
//! recovery cut off resumes at the new log end, also one configured only after the log grew
//! past that offset; and a flow started at `latest` rebuilds only
//! the records it processed.
//!
//! Method: the real binary as a child process on ports 0, driven over loopback with an HTTP
//! client. Waits are bounded waits on conditions (an SSE event arriving, a flow's committed
//! offsets reaching the log end), never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};

const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn order(number: u64, customer: u64) -> Value {
    json!({
        "orderNumber": number,
        "orderDate": "2026-11-30",
        "requiredDate": "2026-12-07",
        "shippedDate": null,
        "status": "In Process",
        "comments": "leave at the door",
        "customerNumber": customer,
        "customer": {"customerName": "Atelier graphique", "city": "Nantes", "country": "France"},
        "orderLines": [{"productCode": "S10_1678", "productName": "1969 Harley Davidson Ultimate Chopper",
                        "quantityOrdered": 30, "priceEach": 95.7}]
    })
}

async fn produce(client: &reqwest::Client, http: &str, orders: &[Value]) -> Value {
    let records: Vec<Value> = orders
        .iter()
        .map(|o| json!({"key": o["customerNumber"].to_string(), "value": o}))
        .collect();
    let resp = client
        .post(format!("{http}/kafka/topics/orders"))
        .header("content-type", JSON_V2)
        .body(json!({ "records": records }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    for o in body["offsets"].as_array().unwrap() {
        assert!(o["error_code"].is_null(), "{body}");
    }
    body
}

/// GETs `url` and parses its JSON body.
async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// `POST /pipeline/reload`: its status and JSON answer.
async fn reload(client: &reqwest::Client, http: &str) -> (u16, Value) {
    let resp = client
        .post(format!("{http}/pipeline/reload"))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn flows(client: &reqwest::Client, http: &str) -> Value {
    get_json(client, format!("{http}/pipeline/flows")).await
}

/// Waits until every flow has committed everything up to the log end.
async fn caught_up(client: &reqwest::Client, http: &str, records: u64) {
    let done = async {
        loop {
            let body = flows(client, http).await;
            let flow = &body["flows"][0];
            let lag_zero = flow["lag"].as_object().unwrap().values().all(|v| v == 0);
            let committed: u64 = flow["committed"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            if lag_zero && committed >= records {
                return;
            }
            // Yield to the server between status requests; the outer timeout bounds the wait.
            tokio::task::yield_now().await;
            assert!(flow["state"] != "failed", "flow failed: {flow}");
        }
    };
    tokio::time::timeout(WAIT, done)
        .await
        .expect("flows caught up within the timeout");
}

async fn find_orders(client: &reqwest::Client, http: &str, collection: &str) -> Vec<Value> {
    let body: Value = client
        .post(format!("{http}/mongo/action/find"))
        .header("content-type", "application/json")
        .body(json!({"dataSource": "local", "database": "shop", "collection": collection, "limit": 50000}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["documents"].as_array().unwrap().clone()
}

/// The order numbers in `shop.{collection}`, sorted.
async fn order_numbers(client: &reqwest::Client, http: &str, collection: &str) -> Vec<u64> {
    let mut numbers: Vec<u64> = find_orders(client, http, collection)
        .await
        .iter()
        .map(|d| d["orderNumber"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

async fn cache_get(client: &reqwest::Client, http: &str, key: &str) -> Value {
    get_json(client, format!("{http}/redis/get/{key}")).await
}

#[test]
fn an_order_reaches_cache_history_and_the_orders_channel() {
    let server = common::start(&["--ephemeral"]);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let sse = client
            .get(format!("{http}/realtime/orders"))
            .send()
            .await
            .unwrap();
        assert_eq!(sse.status(), 200);
        let mut stream = sse.bytes_stream();
        produce(&client, &http, &[order(10100, 103)]).await;

        let mut text = String::new();
        let got = tokio::time::timeout(WAIT, async {
            while let Some(chunk) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                if text.contains("event: NewOrder") && text.contains("\"orderNumber\":10100") {
                    return;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "no NewOrder event; stream so far: {text}");
        assert!(
            !text.contains("leave at the door"),
            "the JOLT remove keeps comments out: {text}"
        );

        let cached = cache_get(&client, &http, "customer:103").await;
        let summary: Value = serde_json::from_str(cached["result"].as_str().unwrap()).unwrap();
        assert_eq!(summary["orderNumber"], 10100);
        assert_eq!(summary["customerName"], "Atelier graphique");
        assert!(summary.get("comments").is_none());

        let docs = find_orders(&client, &http, "orders").await;
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["orderNumber"], 10100);
        assert_eq!(docs[0]["city"], "Nantes");
    });
}

#[test]
fn the_cache_is_rebuilt_from_the_log_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let orders: Vec<Value> = (0..40).map(|i| order(20_000 + i, 100 + i % 7)).collect();
    let before: BTreeMap<u64, Value> = {
        let mut server = common::start(&["--data-dir", &data]);
        let http = server.http.clone();
        let values = runtime().block_on(async {
            let client = reqwest::Client::new();
            produce(&client, &http, &orders).await;
            caught_up(&client, &http, 40).await;
            let mut values = BTreeMap::new();
            for c in 100..107u64 {
                values.insert(c, cache_get(&client, &http, &format!("customer:{c}")).await);
            }
            values
        });
        let child = server.take_child();
        common::send_signal(&child, "TERM");
        assert_eq!(
            common::wait_exit(child, Duration::from_secs(10))
                .unwrap()
                .code(),
            Some(0)
        );
        values
    };
    for value in before.values() {
        assert!(value["result"].is_string(), "{value}");
    }
    let server = common::start(&["--data-dir", &data]);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        // Right after the ready line, before any new record: the rebuilt view answers as before.
        for (c, value) in &before {
            assert_eq!(
                &cache_get(&client, &http, &format!("customer:{c}")).await,
                value,
                "customer {c}"
            );
        }
    });
}

/// Writes a config whose one flow, `events`, inserts every record of `orders` into
/// `shop.events`, with `before` (e.g. a `[log]` section) ahead of it and `flow_settings` in it.
fn write_insert_flow(path: &std::path::Path, before: &str, flow_settings: &str) {
    let config = format!(
        r#"{before}
[[pipeline.flows]]
name = "events"
dead_letter = "events.dead-letter"
{flow_settings}

[pipeline.flows.source]
topic = "orders"
group = "events-insert"

[[pipeline.flows.sinks]]
name = "all-events"
history = {{ collection = "shop.events", mode = "insert" }}
"#
    );
    std::fs::write(path, config).unwrap();
}

#[test]
fn a_history_insert_flow_is_exactly_once_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("insert.toml");
    write_insert_flow(&config, "", "batch_records = 7");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let mut acknowledged = Vec::new();
    let mut next = 30_000u64;
    // Each round kills the server after a different number of acknowledged requests, while the
    // flow is still writing.
    for round in 0..4u64 {
        let mut server = common::start(&args);
        let http = server.http.clone();
        let child = server.take_child();
        runtime().block_on(async {
            let client = reqwest::Client::new();
            for _request in 0..(3 + round * 2) {
                let batch: Vec<Value> = (0..25)
                    .map(|i| order(next + i, 100 + (next + i) % 11))
                    .collect();
                next += 25;
                produce(&client, &http, &batch).await;
                acknowledged.extend(batch.iter().map(|o| o["orderNumber"].as_u64().unwrap()));
            }
        });
        common::send_signal(&child, "KILL");
        common::wait_exit(child, Duration::from_secs(10)).expect("killed child exits");
    }
    let server = common::start(&args);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        caught_up(&client, &http, acknowledged.len() as u64).await;
        let docs = find_orders(&client, &http, "events").await;
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        for d in &docs {
            *counts
                .entry(d["orderNumber"].as_u64().unwrap())
                .or_default() += 1;
        }
        for n in &acknowledged {
            assert_eq!(
                counts.get(n),
                Some(&1),
                "order {n} must be in history exactly once"
            );
        }
        assert_eq!(docs.len(), acknowledged.len(), "no duplicates, no strays");
    });
}

/// A flow `events` inserting every order into `shop.events`, `batch` records a batch.
fn events_flow(batch: u32) -> String {
    format!(
        r#"
[[pipeline.flows]]
name = "events"
dead_letter = "events.dead-letter"
batch_records = {batch}

[pipeline.flows.source]
topic = "orders"
group = "events-insert"

[[pipeline.flows.sinks]]
name = "all-events"
history = {{ collection = "shop.events", mode = "insert" }}
"#
    )
}

#[test]
fn reload_rejects_a_bad_config_and_restarts_a_changed_flow_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flows.toml");
    std::fs::write(&config, events_flow(50)).unwrap();
    let server = common::start(&["--ephemeral", "--config", config.to_str().unwrap()]);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let first: Vec<Value> = (0..60).map(|i| order(40_000 + i, 100 + i % 5)).collect();
        produce(&client, &http, &first).await;
        caught_up(&client, &http, 60).await;

        // An invalid file is rejected with its reason; the running flow is untouched.
        std::fs::write(&config, "[[pipeline.flows]]\nname = \"events\"\n").unwrap();
        let (status, body) = reload(&client, &http).await;
        assert_eq!(status, 422);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("source") && message.contains("flows.toml"),
            "{body}"
        );
        assert_eq!(flows(&client, &http).await["flows"][0]["state"], "running");

        // A changed flow stops at its committed position and restarts from it.
        std::fs::write(&config, events_flow(7)).unwrap();
        let (status, diff) = reload(&client, &http).await;
        assert_eq!(status, 200);
        assert_eq!(diff["changed"], json!(["events"]), "{diff}");
        let second: Vec<Value> = (60..120).map(|i| order(40_000 + i, 100 + i % 5)).collect();
        produce(&client, &http, &second).await;
        caught_up(&client, &http, 120).await;

        let numbers = order_numbers(&client, &http, "events").await;
        assert_eq!(
            numbers,
            (40_000..40_120).collect::<Vec<u64>>(),
            "every record once, across the reload"
        );
    });
}

#[test]
fn a_flow_starting_at_latest_skips_the_backlog_across_a_reload_and_shows_no_lag() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flows.toml");
    std::fs::write(&config, "[pipeline]\nflows = []\n").unwrap();
    let server = common::start(&["--ephemeral", "--config", config.to_str().unwrap()]);
    let http = server.http.clone();
    let latest = |batch: u32| {
        events_flow(batch).replace(
            "group = \"events-insert\"",
            "group = \"events-insert\"\nstart = \"latest\"",
        )
    };
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let backlog: Vec<Value> = (0..30).map(|i| order(60_000 + i, 100 + i % 5)).collect();
        produce(&client, &http, &backlog).await;

        // Added by a reload, the flow starts at the log end: it is caught up at once, its
        // position committed, with no lag.
        std::fs::write(&config, latest(50)).unwrap();
        let (status, answer) = reload(&client, &http).await;
        assert_eq!(
            (status, &answer["added"]),
            (200, &json!(["events"])),
            "{answer}"
        );
        caught_up(&client, &http, 30).await;

        // Changed, it resumes where it was, not at the beginning of the log.
        std::fs::write(&config, latest(7)).unwrap();
        let (status, answer) = reload(&client, &http).await;
        assert_eq!(
            (status, &answer["changed"]),
            (200, &json!(["events"])),
            "{answer}"
        );
        let fresh: Vec<Value> = (30..35).map(|i| order(60_000 + i, 100 + i % 5)).collect();
        produce(&client, &http, &fresh).await;
        caught_up(&client, &http, 35).await;
        let numbers = order_numbers(&client, &http, "events").await;
        assert_eq!(numbers, (60_030..60_035).collect::<Vec<u64>>());
        let flow = &flows(&client, &http).await["flows"][0];
        assert_eq!(flow["records_in"], 5, "{flow}");
    });
}

#[test]
fn a_reload_names_the_changed_settings_it_does_not_apply_and_still_reloads_the_flows() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("streamcache.toml");
    let file = |timeout_ms: u64, connections: u32, batch: u32| {
        format!(
            "http_request_timeout_ms = {timeout_ms}\n[cache]\nconnections_max = {connections}\n{}",
            events_flow(batch)
        )
    };
    std::fs::write(&config, file(60_000, 100, 50)).unwrap();
    let server = common::start(&["--ephemeral", "--config", config.to_str().unwrap()]);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let restart = json!(["http_request_timeout_ms", "cache.connections_max"]);
        // Nothing outside the flows changed, then two settings outside [pipeline]: they are
        // named and the flows still reload; then they are compared with the values in force,
        // not the previous reload's.
        for (written, flows, restart_required) in [
            (file(60_000, 100, 7), "changed", json!([])),
            (file(30_000, 99, 9), "changed", restart.clone()),
            (file(30_000, 99, 9), "unchanged", restart),
        ] {
            std::fs::write(&config, written).unwrap();
            let (status, answer) = reload(&client, &http).await;
            assert_eq!(status, 200);
            assert_eq!(answer[flows], json!(["events"]), "{answer}");
            assert_eq!(answer["restart_required"], restart_required, "{answer}");
        }
        let produced: Vec<Value> = (0..20).map(|i| order(50_000 + i, 100 + i % 5)).collect();
        produce(&client, &http, &produced).await;
        caught_up(&client, &http, 20).await;
        assert_eq!(find_orders(&client, &http, "events").await.len(), 20);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_waiting_in_the_log_at_start_each_become_a_new_order_event() {
    use streamcache::config::Config;
    use streamcache::engine::Engine;
    use streamcache::realtime::Delivery;
    use streamcache::shutdown::Shutdown;

    const BACKLOG: u64 = 300;
    let engine = Engine::open(Config {
        ephemeral: true,
        ..Config::default()
    })
    .unwrap();
    // The flow starts with a backlog: it commits at once, racing the watchers' stream.
    let backlog: Vec<(u64, u64)> = (0..BACKLOG).map(|i| (20_000 + i, 100 + i % 7)).collect();
    append_orders(&engine, &backlog);
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    // Every NewOrder the watcher published so far is buffered and replayed first (at most the
    // backlog's worth), the rest follow live.
    let backlog = usize::try_from(BACKLOG).unwrap();
    let mut sub = engine
        .realtime()
        .subscribe_recent("orders", backlog)
        .unwrap();
    let mut seen = 0;
    while seen < BACKLOG {
        match tokio::time::timeout(WAIT, sub.recv()).await {
            Ok(Delivery::Event(e)) => {
                assert_eq!(e.name(), "NewOrder");
                seen += 1;
            }
            Ok(Delivery::Resync { head }) => panic!("resync at {head} after {seen} events"),
            Err(_) => panic!("{seen} of {BACKLOG} NewOrder events arrived"),
        }
    }
    shutdown.trigger();
    engine.stop().await;
}

/// The log settings of the tests that cut the log: `never`, one partition, 1 KiB segments (many
/// of them).
const CUT_LOG: &str =
    "[log]\nflush_policy = \"never\"\ndefault_partitions = 1\nsegment_bytes = 1024\n";

/// A server under `never` whose flow commits 30 orders, then a power loss that took the log
/// from its third segment on (its file emptied): returns the offset the recovered log ends at,
/// before the flow's committed 30.
fn commit_30_then_lose_the_log_tail(data: &std::path::Path, args: &[&str]) -> u64 {
    let mut server = common::start(args);
    let http = server.http.clone();
    let child = server.take_child();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        // One batch per request: several batches per 1 KiB segment, many segments.
        for n in 0..30 {
            produce(&client, &http, &[order(40_000 + n, 100)]).await;
        }
        caught_up(&client, &http, 30).await;
    });
    common::send_signal(&child, "KILL");
    common::wait_exit(child, Duration::from_secs(10)).expect("killed child exits");
    // A power loss under `never` lost everything of the third segment on: its file is empty.
    let mut segments: Vec<std::path::PathBuf> = std::fs::read_dir(data.join("log/topics/orders/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    // Names are base offsets in 20 digits: they sort as the numbers do.
    segments.sort();
    assert!(segments.len() > 3, "{segments:?}");
    let third = &segments[2];
    let cut_at: u64 = third
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(third)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(cut_at < 30, "{cut_at}");
    cut_at
}

#[test]
fn a_flow_resumes_at_the_log_end_when_recovery_cut_records_it_had_committed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("never.toml");
    write_insert_flow(&config, CUT_LOG, "");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let cut_at = commit_30_then_lose_the_log_tail(&data, &args);
    let server = common::start(&args);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let end: Value = get_json(
            &client,
            format!("{http}/kafka/topics/orders/partitions/0/offsets"),
        )
        .await;
        assert_eq!(end["end_offset"], cut_at, "{end}");
        // The flow committed 30; the log now ends before that. New orders must still arrive.
        let fresh: Vec<u64> = (0..3).map(|n| 50_000 + n).collect();
        for &n in &fresh {
            produce(&client, &http, &[order(n, 100)]).await;
        }
        let arrived = async {
            loop {
                let docs = find_orders(&client, &http, "events").await;
                let numbers: Vec<u64> = docs
                    .iter()
                    .filter_map(|d| d["orderNumber"].as_u64())
                    .collect();
                if fresh.iter().all(|n| numbers.contains(n)) {
                    return;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(WAIT, arrived)
            .await
            .expect("orders appended after the cut reach history");
    });
}

/// The flow commits the position it moved back to when it starts: a second start, after
/// records were appended while the flow was not reading, must not trust the committed offset
/// the recovered log had fallen behind (it would resume there, past the records between).
#[test]
fn a_flow_commits_the_position_recovery_moved_it_back_to_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let cut = Cut::new(dir.path());
    let with_flow_args = cut.args(&cut.with_flow);
    let cut_at = cut.at;

    // The flow starts on the shorter log and reads nothing before the process ends.
    let server = common::start(&with_flow_args);
    let http = server.http.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let resumed = async {
            loop {
                let body = flows(&client, &http).await;
                if body["flows"][0]["committed"]["0"] == cut_at {
                    return;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(WAIT, resumed)
            .await
            .expect("the flow's committed position is where the recovered log ends");
    });
    // Killed (SIGKILL) and waited for.
    drop(server);

    // Orders appended while no flow reads `orders`, past the position committed before the cut.
    let server = common::start(&cut.args(&cut.elsewhere));
    let fresh: Vec<u64> = (0..40).map(|n| 60_000 + n).collect();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        for &n in &fresh {
            produce(&client, &server.http, &[order(n, 100)]).await;
        }
    });
    drop(server);

    let server = common::start(&with_flow_args);
    runtime().block_on(async {
        each_reaches_history_once(&reqwest::Client::new(), &server.http, &fresh).await;
    });
}

/// A data directory under `never` whose flow committed 30 orders before a power loss cut the
/// log ([`commit_30_then_lose_the_log_tail`]), with two configurations: the flow's, and the
/// same flow reading another topic under another group, so that `orders` is appended to and not
/// read, and no configured flow has the first one's offsets.
struct Cut {
    data: String,
    with_flow: String,
    elsewhere: String,
    /// Where the recovered log ends, before the flow's committed 30.
    at: u64,
}

impl Cut {
    fn new(dir: &std::path::Path) -> Self {
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let (data, with_flow, elsewhere) =
            (path("data"), path("with-flow.toml"), path("elsewhere.toml"));
        write_insert_flow(std::path::Path::new(&with_flow), CUT_LOG, "");
        let config = std::fs::read_to_string(&with_flow)
            .unwrap()
            .replace("topic = \"orders\"", "topic = \"elsewhere\"")
            .replace("group = \"events-insert\"", "group = \"elsewhere\"");
        std::fs::write(&elsewhere, config).unwrap();
        let at = commit_30_then_lose_the_log_tail(
            std::path::Path::new(&data),
            &["--data-dir", &data, "--config", &with_flow],
        );
        Self {
            data,
            with_flow,
            elsewhere,
            at,
        }
    }

    /// The server's arguments with `config`.
    fn args<'a>(&'a self, config: &'a str) -> [&'a str; 4] {
        ["--data-dir", &self.data, "--config", config]
    }
}

/// Waits until every order of `fresh` (numbers from 60 000) is in `shop.events`, and checks
/// that each is there once.
async fn each_reaches_history_once(client: &reqwest::Client, http: &str, fresh: &[u64]) {
    let arrived = async {
        loop {
            let docs = find_orders(client, http, "events").await;
            let numbers: Vec<u64> = docs
                .iter()
                .filter_map(|d| d["orderNumber"].as_u64())
                .collect();
            if fresh.iter().all(|n| numbers.contains(n)) {
                return numbers;
            }
            tokio::task::yield_now().await;
        }
    };
    let numbers = tokio::time::timeout(WAIT, arrived)
        .await
        .expect("every order appended after the cut reaches history");
    assert_eq!(
        numbers.iter().filter(|n| **n >= 60_000).count(),
        fresh.len(),
        "each once"
    );
}

/// After the cut, a process starts without the flow and orders are appended past the offset
/// the flow had committed; a reload then adds the flow. It processes every order appended
/// after the cut, none skipped: the start moved every stored offset past its partition's
/// recovered end back to that end, whether its flow was configured or not.
#[test]
fn a_flow_added_by_a_reload_after_the_log_grew_past_its_cut_offset_skips_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cut = Cut::new(dir.path());
    // The process starts without the flow; the reload reads the flow from the same file.
    let server = common::start(&cut.args(&cut.elsewhere));
    runtime().block_on(async {
        let client = reqwest::Client::new();
        // Past the 30 the flow committed before the cut.
        let fresh: Vec<u64> = (0..40).map(|n| 60_000 + n).collect();
        for &n in &fresh {
            produce(&client, &server.http, &[order(n, 100)]).await;
        }
        let end: Value = get_json(
            &client,
            format!("{}/kafka/topics/orders/partitions/0/offsets", server.http),
        )
        .await;
        assert_eq!(end["end_offset"], cut.at + 40, "{end}");
        std::fs::copy(&cut.with_flow, &cut.elsewhere).unwrap();
        let (status, body) = reload(&client, &server.http).await;
        assert_eq!(status, 200, "{body}");
        each_reaches_history_once(&client, &server.http, &fresh).await;
    });
}

/// Runs the reference flow over `record`, which it dead-letters; returns the dead letter.
async fn dead_letter_of(record: streamcache::log::Record) -> streamcache::log::StoredRecord {
    let config = streamcache::config::Config {
        ephemeral: true,
        ..streamcache::config::Config::default()
    };
    first_written(config, "orders.dead-letter", record).await
}

/// Runs an ephemeral engine with `config` over `record`, appended to `orders`; returns the
/// first record its flows append to `topic` (created with one partition if it is missing).
async fn first_written(
    config: streamcache::config::Config,
    topic: &str,
    record: streamcache::log::Record,
) -> streamcache::log::StoredRecord {
    use streamcache::engine::Engine;
    use streamcache::log::Routing;
    use streamcache::shutdown::Shutdown;

    let engine = Engine::open(config).unwrap();
    let _ = engine.log().create_topic(topic, Some(1), &[], false);
    let mut appended = engine.log().subscribe(topic, 0).unwrap();
    engine
        .log()
        .append("orders", Routing::Auto, vec![record])
        .unwrap();
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    tokio::time::timeout(WAIT, appended.wait_for(|end| *end >= 1))
        .await
        .expect("a record within the wait")
        .unwrap();
    let mut written = engine.log().read(topic, 0, 0, 1 << 20).unwrap();
    assert_eq!(written.len(), 1);
    shutdown.trigger();
    engine.stop().await;
    written.remove(0)
}

/// A record without a value (a tombstone) is dead-lettered ("not JSON") without a value too,
/// as the dead letter keeps the record's own key and value: it had arrived as an empty value,
/// which a consumer cannot tell from a record whose value was empty bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_is_dead_lettered_without_a_value() {
    let letter = dead_letter_of(streamcache::log::Record {
        key: Some("103".into()),
        value: None,
        headers: Vec::new(),
        timestamp_ms: None,
    })
    .await;
    assert_eq!(letter.key.as_deref(), Some(&b"103"[..]));
    assert_eq!(letter.value, None, "no value, not an empty one");
}

/// Appends an order per `(orderNumber, customerNumber)` to `orders`, keyed by the customer.
fn append_orders(engine: &streamcache::engine::Engine, orders: &[(u64, u64)]) {
    use streamcache::log::{Record, Routing};
    let records = orders
        .iter()
        .map(|&(number, customer)| {
            let o = order(number, customer);
            Record {
                key: Some(o["customerNumber"].to_string().into()),
                value: Some(o.to_string().into()),
                headers: Vec::new(),
                timestamp_ms: None,
            }
        })
        .collect();
    engine
        .log()
        .append("orders", Routing::Auto, records)
        .unwrap();
}

/// Waits until `engine`'s one flow is running with its committed offsets summing to `records`.
async fn flow_at(engine: &streamcache::engine::Engine, records: u64) {
    let done = async {
        loop {
            let flows = engine.flows().await;
            let flow = &flows[0];
            assert!(
                !matches!(flow.state, streamcache::pipeline::FlowState::Failed(_)),
                "{flow:?}"
            );
            if flow.state == streamcache::pipeline::FlowState::Running
                && flow.committed.values().sum::<u64>() == records
            {
                return;
            }
            // The outer timeout bounds the wait.
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, done)
        .await
        .expect("the flow reached the offsets within the timeout");
}

/// The cache is a view of what the flow processed: a flow that started at `latest` never cached
/// the backlog it skipped, and the rebuild after a restart does not either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_started_at_latest_rebuilds_only_the_records_it_processed() {
    use streamcache::config::Config;
    use streamcache::engine::Engine;
    use streamcache::pipeline::StartPosition;
    use streamcache::shutdown::Shutdown;

    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.pipeline.flows[0].source.start = StartPosition::Latest;
        config
    };
    let cached = |engine: &Engine| -> Vec<u64> {
        [101, 102, 103, 201, 202]
            .into_iter()
            .filter(|c| {
                engine
                    .cache()
                    .get(0, format!("customer:{c}").as_bytes())
                    .is_some()
            })
            .collect()
    };

    let engine = Engine::open(config()).unwrap();
    append_orders(&engine, &[(30_001, 101), (30_002, 102), (30_003, 103)]);
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    // Started at the log end, past the backlog; then two orders it processes.
    flow_at(&engine, 3).await;
    append_orders(&engine, &[(30_004, 201), (30_005, 202)]);
    flow_at(&engine, 5).await;
    assert_eq!(cached(&engine), [201, 202], "live");
    shutdown.trigger();
    engine.stop().await;
    engine.shutdown().unwrap();
    drop(engine);

    let engine = Engine::open(config()).unwrap();
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    assert_eq!(cached(&engine), [201, 202], "rebuilt");
    shutdown.trigger();
    engine.stop().await;
    engine.shutdown().unwrap();
}

/// A shutdown that fires while the engine starts (during the cache rebuild) leaves it not
/// ready and starts no flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_the_start_starts_nothing() {
    use streamcache::config::Config;
    use streamcache::engine::Engine;
    use streamcache::shutdown::Shutdown;

    let engine = Engine::open(Config {
        ephemeral: true,
        ..Config::default()
    })
    .unwrap();
    append_orders(&engine, &[(30_001, 101)]);
    let shutdown = Shutdown::new();
    shutdown.trigger();
    engine.start(shutdown.signal()).await.unwrap();
    assert!(!engine.is_ready());
    assert!(engine.flows().await.is_empty());
    engine.stop().await;
    engine.shutdown().unwrap();
}

/// Headers a producer set: a trace id, and one named as a dead letter's own `error` header,
/// without a value.
fn producer_headers() -> Vec<streamcache::log::Header> {
    use streamcache::log::Header;
    vec![
        Header {
            key: "traceparent".into(),
            value: Some("00-abc-01".into()),
        },
        Header {
            key: "error".into(),
            value: None,
        },
    ]
}

/// A dead letter keeps the failed record's create time and headers, as Kafka Connect's
/// dead-letter queue does, and adds its own headers after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_keeps_the_records_headers_and_create_time() {
    use streamcache::log::Record;

    let headers = producer_headers();
    let letter = dead_letter_of(Record {
        key: Some("103".into()),
        value: Some("not json".into()),
        headers: headers.clone(),
        timestamp_ms: Some(1_600_000_000_000),
    })
    .await;
    assert_eq!(letter.timestamp_ms, 1_600_000_000_000);
    let names: Vec<&str> = letter.headers.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        names,
        [
            "traceparent",
            "error",
            "error",
            "flow",
            "source.topic",
            "source.partition",
            "source.offset"
        ]
    );
    assert_eq!(letter.headers[..2], headers[..]);
    assert!(letter.headers[2].value.is_some());
}

/// A `topic` sink forwards the record with the source record's headers and create time, as
/// Kafka Streams' `to()` and NiFi's ConsumeKafka → PublishKafka (headers as attributes) keep
/// them: a trace id or an event time set by the producer survives the hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_keeps_the_records_headers_and_create_time() {
    use streamcache::config::Config;
    use streamcache::log::Record;
    use streamcache::pipeline::{SinkConfig, TopicSinkConfig};

    let mut config = Config {
        ephemeral: true,
        ..Config::default()
    };
    config.pipeline.flows[0].sinks.push(SinkConfig {
        name: "copy".into(),
        cache: None,
        history: None,
        topic: Some(TopicSinkConfig {
            topic: "orders.copy".into(),
            key: None,
        }),
    });
    let headers = producer_headers();
    let copy = first_written(
        config,
        "orders.copy",
        Record {
            key: Some("103".into()),
            value: Some(order(30_001, 103).to_string().into()),
            headers: headers.clone(),
            timestamp_ms: Some(1_600_000_000_000),
        },
    )
    .await;
    assert_eq!(copy.key.as_deref(), Some(&b"103"[..]));
    assert_eq!(copy.headers, headers);
    assert_eq!(copy.timestamp_ms, 1_600_000_000_000);
}

/// Everything this test binary logs, from the first call on (the subscriber is global: the
/// flows log from the runtime's worker threads).
fn captured_log() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        #[derive(Clone)]
        struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Writer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Writer(log.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
    .clone()
}

/// A flow whose committed offset retention has deleted records past starts at the log start, as
/// Kafka's `auto.offset.reset=earliest` does, and says so: a warning naming the group, topic
/// and partition, the committed offset, where it starts and how many records it skipped. The
/// cache rebuild before it, which replays from the log start by design, warns of nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_whose_committed_offset_retention_passed_warns_where_it_starts() {
    use streamcache::clock::ManualClock;
    use streamcache::config::Config;
    use streamcache::engine::Engine;
    use streamcache::shutdown::Shutdown;

    let log = captured_log();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::shared(1_800_000_000_000);
    let config = || Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let group = config().pipeline.flows[0].source.group.clone();

    let engine = Engine::open_with_clock(config(), clock.clone()).unwrap();
    let settings =
        [("segment.ms", "10"), ("retention.ms", "100")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    engine
        .log()
        .create_topic("orders", Some(1), &settings, false)
        .unwrap();
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    append_orders(&engine, &[(40_001, 101), (40_002, 102)]);
    flow_at(&engine, 2).await;
    shutdown.trigger();
    engine.stop().await;
    engine.shutdown().unwrap();
    drop(engine);

    // While the flow is stopped: two more segments, and retention deletes the sealed ones, the
    // flow's next record (offset 2) with them.
    let engine = Engine::open_with_clock(config(), clock.clone()).unwrap();
    clock.advance(Duration::from_millis(10));
    append_orders(&engine, &[(40_003, 103)]);
    clock.advance(Duration::from_millis(200));
    append_orders(&engine, &[(40_004, 201)]);
    assert!(engine.log().enforce_retention().unwrap() >= 1);
    assert_eq!(engine.log().earliest_offset("orders", 0).unwrap(), 3);
    let before = log.lock().unwrap().len();
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    flow_at(&engine, 4).await;
    shutdown.trigger();
    engine.stop().await;
    engine.shutdown().unwrap();

    let text = String::from_utf8(log.lock().unwrap()[before..].to_vec()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("passed by retention") && l.contains(&format!("group={group}")))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    let warning = warnings[0];
    for field in [
        "WARN",
        "topic=orders",
        "partition=0",
        "from=2",
        "to=3",
        "skipped=1",
    ] {
        assert!(warning.contains(field), "{field} in {warning}");
    }
}
