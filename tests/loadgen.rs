//! Capability: `streamcache produce` — classicmodels-shaped orders, deterministic for a seed,
//! sent through the REST Proxy v2 produce API with a closing summary.
//!
//! Method: a tiny axum stub of `POST /kafka/topics/{topic}` on 127.0.0.1:0 records every request
//! and answers with per-record offsets (optionally refusing records or whole requests); the
//! generator runs on a `ManualClock`, so dates and summaries are deterministic. The option
//! limits are also checked through the binary, which must refuse them before sending.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use streamcache::clock::{ManualClock, SharedClock};
use streamcache::loadgen::{
    self, CONSECUTIVE_FAILURES_MAX, CONTENT_TYPE_JSON_V2, OrderGenerator, PRODUCE_COUNT_MAX,
    PRODUCE_RATE_MAX, ProduceOptions, Summary,
};
use streamcache::shutdown::Shutdown;

/// 2026-11-30T10:00:00Z.
const NOW_MS: u64 = 1_796_032_800_000;

fn clock() -> SharedClock {
    ManualClock::shared(NOW_MS)
}

/// One request the stub received.
#[derive(Debug, Clone)]
struct Received {
    topic: String,
    content_type: String,
    authorization: Option<String>,
    body: Value,
}

/// How the stub answers.
#[derive(Debug, Clone, Copy, Default)]
struct Behaviour {
    /// Refuse records whose orderNumber is divisible by this (error_code 50002).
    refuse_multiple_of: Option<u64>,
    /// Answer this request (0-based) with HTTP 500.
    fail_request: Option<usize>,
}

#[derive(Default)]
struct Stub {
    received: Mutex<Vec<Received>>,
    behaviour: Behaviour,
}

async fn produce_handler(
    State(stub): State<Arc<Stub>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let body: Value = serde_json::from_str(&body).unwrap();
    let index = {
        let mut received = stub.received.lock().unwrap();
        received.push(Received {
            topic,
            content_type: header("content-type").unwrap_or_default(),
            authorization: header("authorization"),
            body: body.clone(),
        });
        received.len() - 1
    };
    if stub.behaviour.fail_request == Some(index) {
        let error = json!({"error_code": 50002, "message": "Kafka error"});
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(error)).into_response();
    }
    let offsets: Vec<Value> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let number = r["value"]["orderNumber"].as_u64().unwrap();
            if stub
                .behaviour
                .refuse_multiple_of
                .is_some_and(|m| number % m == 0)
            {
                json!({"partition": null, "offset": null, "error_code": 50002, "error": "refused"})
            } else {
                json!({"partition": 0, "offset": i, "error_code": null, "error": null})
            }
        })
        .collect();
    let reply = json!({"key_schema_id": null, "value_schema_id": null, "offsets": offsets});
    axum::Json(reply).into_response()
}

/// Starts the stub; returns its base URL, its state and the shutdown that stops it.
async fn start_stub(behaviour: Behaviour) -> (String, Arc<Stub>, Shutdown) {
    let stub = Arc::new(Stub {
        received: Mutex::default(),
        behaviour,
    });
    let app = Router::new()
        .route("/kafka/topics/{topic}", post(produce_handler))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let mut signal = shutdown.signal();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { signal.wait().await })
            .await
            .unwrap();
    });
    (url, stub, shutdown)
}

fn options(url: &str, count: u64, seed: u64, batch: usize) -> ProduceOptions {
    ProduceOptions {
        url: url.to_owned(),
        count,
        seed,
        batch,
        progress: false,
        ..ProduceOptions::default()
    }
}

async fn run(options: &ProduceOptions) -> Summary {
    // Keep the trigger alive: a dropped trigger counts as a stop.
    let stop = Shutdown::new();
    loadgen::produce(options, clock(), stop.signal())
        .await
        .unwrap()
}

/// Every record the stub received, in order.
fn records(stub: &Stub) -> Vec<Value> {
    let received = stub.received.lock().unwrap();
    received
        .iter()
        .flat_map(|r| r.body["records"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_orders_and_another_seed_other_orders() {
    let take = |seed: u64| {
        let mut g = OrderGenerator::new(seed, clock());
        (0..50).map(|_| g.next_order()).collect::<Vec<_>>()
    };
    assert_eq!(take(7), take(7));
    let other = take(8);
    let values = |orders: &[(String, Value)]| -> Vec<Value> {
        orders
            .iter()
            .map(|(_, v)| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("orderNumber");
                v
            })
            .collect()
    };
    assert_ne!(
        values(&take(7)),
        values(&other),
        "content differs, not only the numbers"
    );
}

#[test]
fn orders_have_the_classicmodels_shape_with_unique_numbers() {
    let mut g = OrderGenerator::new(3, clock());
    let statuses: BTreeSet<&str> = [
        "Shipped",
        "In Process",
        "Cancelled",
        "On Hold",
        "Disputed",
        "Resolved",
    ]
    .into();
    let mut numbers = BTreeSet::new();
    let mut seen_statuses = BTreeSet::new();
    for _ in 0..2000 {
        let (key, o) = g.next_order();
        assert!(
            numbers.insert(o["orderNumber"].as_u64().unwrap()),
            "unique orderNumber"
        );
        assert_eq!(
            key,
            o["customerNumber"].as_u64().unwrap().to_string(),
            "key = customerNumber"
        );
        let status = o["status"].as_str().unwrap();
        assert!(statuses.contains(status), "{status}");
        seen_statuses.insert(status.to_owned());
        assert_eq!(
            o["orderDate"],
            json!("2026-11-30"),
            "dates come from the injected clock"
        );
        let required = o["requiredDate"].as_str().unwrap();
        assert!(
            ("2026-12-07"..="2026-12-14").contains(&required),
            "{required}"
        );
        match status {
            "Shipped" | "Resolved" | "Disputed" => {
                let shipped = o["shippedDate"].as_str().unwrap();
                assert!(
                    ("2026-12-01"..="2026-12-06").contains(&shipped),
                    "{shipped}"
                );
            }
            _ => assert!(o["shippedDate"].is_null(), "{o}"),
        }
        assert!(o["comments"].is_null() || o["comments"].is_string());
        let customer = &o["customer"];
        for field in ["customerName", "city", "country"] {
            assert!(!customer[field].as_str().unwrap().is_empty(), "{field}");
        }
        let lines = o["orderLines"].as_array().unwrap();
        assert!((1..=6).contains(&lines.len()));
        let codes: BTreeSet<&str> = lines
            .iter()
            .map(|l| l["productCode"].as_str().unwrap())
            .collect();
        assert_eq!(codes.len(), lines.len(), "a product appears once per order");
        for line in lines {
            assert!(!line["productName"].as_str().unwrap().is_empty());
            assert!((20..=50).contains(&line["quantityOrdered"].as_u64().unwrap()));
            let price = line["priceEach"].as_f64().unwrap();
            assert!(
                price > 0.0 && ((price * 100.0).round() - price * 100.0).abs() < 1e-6,
                "{price} in cents"
            );
        }
    }
    assert_eq!(seen_statuses.len(), statuses.len(), "every status occurs");
    assert_eq!(
        numbers.first().copied(),
        Some(loadgen::first_order_number(3))
    );
    assert_eq!(numbers.len(), 2000);
    assert_eq!(
        numbers.last().unwrap() - numbers.first().unwrap(),
        1999,
        "consecutive"
    );
}

#[tokio::test]
async fn produce_posts_rest_proxy_v2_batches_and_summarises() {
    let (url, stub, server) = start_stub(Behaviour::default()).await;
    let mut o = options(&url, 250, 11, 100);
    o.auth_token = Some("sesame".into());
    let summary = run(&o).await;
    assert_eq!(
        (
            summary.sent,
            summary.acknowledged,
            summary.failed,
            summary.requests
        ),
        (250, 250, 0, 3)
    );
    assert!(summary.is_clean());
    assert_eq!(
        summary.rate_per_s(),
        None,
        "no time passed on the manual clock"
    );
    assert!(
        summary
            .to_string()
            .starts_with("sent 250, acknowledged 250, failed 0 in 3 requests")
    );
    let received = stub.received.lock().unwrap().clone();
    let sizes: Vec<usize> = received
        .iter()
        .map(|r| r.body["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    for r in &received {
        assert_eq!(r.topic, "orders");
        assert_eq!(r.content_type, CONTENT_TYPE_JSON_V2);
        assert_eq!(r.authorization.as_deref(), Some("Bearer sesame"));
    }
    let all = records(&stub);
    for record in &all {
        let key = record["key"].as_str().unwrap();
        assert_eq!(
            key,
            record["value"]["customerNumber"]
                .as_u64()
                .unwrap()
                .to_string()
        );
    }
    let unique: BTreeSet<u64> = all
        .iter()
        .map(|r| r["value"]["orderNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(unique.len(), 250, "orderNumbers unique within a run");
    server.trigger();
}

#[tokio::test]
async fn the_same_seed_sends_the_same_bodies() {
    let (url, stub, server) = start_stub(Behaviour::default()).await;
    run(&options(&url, 120, 5, 50)).await;
    let first = records(&stub);
    stub.received.lock().unwrap().clear();
    run(&options(&url, 120, 5, 50)).await;
    assert_eq!(records(&stub), first);
    stub.received.lock().unwrap().clear();
    run(&options(&url, 120, 6, 50)).await;
    assert_ne!(records(&stub), first);
    server.trigger();
}

#[tokio::test]
async fn refused_records_and_failed_requests_are_counted() {
    let behaviour = Behaviour {
        refuse_multiple_of: Some(10),
        fail_request: Some(1),
    };
    let (url, stub, server) = start_stub(behaviour).await;
    let summary = run(&options(&url, 300, 0, 100)).await;
    // Seed 0 numbers orders 10100..10399: request 1 (10200..10299) fails as a whole; requests 0
    // and 2 each refuse the ten numbers divisible by ten.
    assert_eq!(
        (summary.sent, summary.acknowledged, summary.failed),
        (300, 180, 120)
    );
    assert_eq!(summary.acknowledged + summary.failed, summary.sent);
    assert!(!summary.is_clean());
    assert!(summary.stopped_early.is_none());
    assert_eq!(records(&stub).len(), 300);
    server.trigger();
}

#[tokio::test]
async fn an_unreachable_server_fails_every_request_and_stops_after_the_limit() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let summary = run(&options(&url, 100_000, 1, 10)).await;
    let requests = u64::from(CONSECUTIVE_FAILURES_MAX);
    assert_eq!(
        (summary.sent, summary.failed, summary.acknowledged),
        (requests * 10, requests * 10, 0)
    );
    assert!(
        summary
            .stopped_early
            .as_deref()
            .unwrap()
            .contains("cannot connect"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_rate_limited_run_paces_small_requests() {
    let (url, stub, server) = start_stub(Behaviour::default()).await;
    let mut o = options(&url, 30, 2, 100);
    o.rate = Some(1000);
    let summary = run(&o).await;
    assert_eq!(
        (summary.sent, summary.acknowledged, summary.requests),
        (30, 30, 1)
    );
    o.rate = Some(100);
    stub.received.lock().unwrap().clear();
    let summary = run(&o).await;
    // At 100 orders/s requests carry at most 10 orders, so that at least ten go out per second.
    assert_eq!((summary.sent, summary.requests), (30, 3));
    server.trigger();
}

#[tokio::test]
async fn a_shutdown_stops_the_run_with_a_summary() {
    let (url, _stub, server) = start_stub(Behaviour::default()).await;
    let stop = Shutdown::new();
    stop.trigger();
    let summary = loadgen::produce(&options(&url, 100, 1, 10), clock(), stop.signal())
        .await
        .unwrap();
    assert_eq!(summary.sent, 0);
    assert_eq!(summary.stopped_early.as_deref(), Some("interrupted"));
    server.trigger();
}

#[tokio::test]
async fn a_shutdown_ends_the_wait_for_a_server_that_never_answers() {
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = Shutdown::new();
    let signal = stop.signal();
    let run =
        tokio::spawn(
            async move { loadgen::produce(&options(&url, 100, 1, 10), clock(), signal).await },
        );
    // The server takes the first request and never answers it.
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut head = [0u8; 64];
    assert!(socket.read(&mut head).await.unwrap() > 0);
    stop.trigger();
    // A bound on a hang, not a wait for time: the run ends as soon as it sees the stop.
    let summary = tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("the run ends on shutdown while a request is unanswered")
        .unwrap()
        .unwrap();
    assert_eq!(summary.stopped_early.as_deref(), Some("interrupted"));
    assert_eq!(
        (
            summary.sent,
            summary.acknowledged,
            summary.failed,
            summary.requests
        ),
        (10, 0, 10, 1)
    );
    drop(socket);
}

#[tokio::test]
async fn bad_options_are_refused_before_sending() {
    for o in [
        ProduceOptions {
            url: "ftp://x".into(),
            ..ProduceOptions::default()
        },
        ProduceOptions {
            topic: "bad topic".into(),
            ..ProduceOptions::default()
        },
        ProduceOptions {
            batch: loadgen::PRODUCE_BATCH_MAX + 1,
            ..ProduceOptions::default()
        },
    ] {
        assert!(
            loadgen::produce(&o, clock(), Shutdown::new().signal())
                .await
                .is_err()
        );
    }
}

#[test]
fn the_produce_subcommand_parses_its_flags() {
    let parsed = streamcache::cli::parse([
        "streamcache",
        "produce",
        "--url",
        "http://127.0.0.1:9",
        "--rate",
        "500",
        "--count",
        "7",
        "--seed",
        "42",
        "--topic",
        "o2",
        "--batch",
        "3",
    ])
    .unwrap();
    let Some(streamcache::cli::Command::Produce(args)) = parsed.cli.command else {
        panic!()
    };
    assert_eq!(
        (
            args.url.as_str(),
            args.rate,
            args.count,
            args.seed,
            args.topic.as_str(),
            args.batch
        ),
        ("http://127.0.0.1:9", Some(500), 7, 42, "o2", 3)
    );
    let parsed = streamcache::cli::parse(["streamcache", "produce"]).unwrap();
    let Some(streamcache::cli::Command::Produce(args)) = parsed.cli.command else {
        panic!()
    };
    assert_eq!(
        (
            args.count,
            args.seed,
            args.topic.as_str(),
            args.batch,
            args.rate
        ),
        (1000, 1, "orders", 100, None)
    );
}

#[test]
fn the_cli_refuses_a_count_or_rate_past_its_limit_before_sending() {
    for (option, value) in [
        ("--count", PRODUCE_COUNT_MAX + 1),
        ("--rate", PRODUCE_RATE_MAX + 1),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamcache"))
            .args(["produce", "--url", "http://127.0.0.1:1", "--quiet"])
            .args([option, &value.to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("`{option}` = {value} is outside")),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing sent, no summary");
    }
}
