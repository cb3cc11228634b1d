//! Capability: REST Proxy v3 consumer groups under `/kafka/v3/clusters/{id}/consumer-groups` —
//! the groups (members or committed offsets), their consumers and assignments, the lag of each
//! committed partition and the group's lag summary, in the REST Proxy's shapes, order and 404
//! texts.
//!
//! Method: consumer instances, subscriptions and commits made through the log's API, then read
//! through the axum router with `oneshot`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use streamcache::engine::Engine;
use streamcache::log::{
    CommittedOffset, ConsumerSettings, Record, Routing, Subscription, TopicPartition,
};
use tower::ServiceExt as _;

const BASE: &str = "/kafka/v3/clusters/streamcache";
const HOST: &str = "http://localhost:7070/kafka/v3/clusters/streamcache";

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .uri(format!("{BASE}{path}"))
        .header(header::HOST, "localhost:7070")
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[field].as_str().unwrap().to_owned())
        .collect()
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_owned(),
        partition,
    }
}

fn commit(engine: &Engine, group: &str, offsets: &[(u32, u64)]) {
    let offsets: Vec<_> = offsets
        .iter()
        .map(|&(p, offset)| {
            let c = CommittedOffset {
                offset,
                metadata: String::new(),
            };
            (tp("orders", p), c)
        })
        .collect();
    engine.log().commit_offsets(group, &offsets).unwrap();
}

fn subscribe(engine: &Engine, group: &str, id: &str) {
    let log = engine.log();
    log.create_consumer(group, Some(id), ConsumerSettings::default())
        .unwrap();
    log.subscribe_consumer(group, id, Subscription::Topics(vec!["orders".into()]))
        .unwrap();
}

/// `orders` with 5 records on partition 0 and 3 on partition 1, and the groups:
/// - `g1`: members `a` (partition 0) and `b` (partition 1), committed 2 and 3;
/// - `simple`: no member, committed 1 on partition 1;
/// - `fresh`: member `c`, nothing committed;
/// - `manual`: an instance with a manual assignment and one unsubscribed, nothing committed.
fn setup() -> (axum::Router, Arc<Engine>) {
    let engine = Arc::new(Engine::temporary().unwrap());
    let log = engine.log();
    log.create_topic("orders", Some(2), &[], false).unwrap();
    for (p, n) in [(0, 5), (1, 3)] {
        let records = (0..n)
            .map(|i| Record {
                value: Some(format!("{i}").into()),
                ..Default::default()
            })
            .collect();
        log.append("orders", Routing::Partition(p), records)
            .unwrap();
    }
    subscribe(&engine, "g1", "a");
    subscribe(&engine, "g1", "b");
    commit(&engine, "g1", &[(0, 2), (1, 3)]);
    commit(&engine, "simple", &[(1, 1)]);
    subscribe(&engine, "fresh", "c");
    log.create_consumer("manual", Some("m"), ConsumerSettings::default())
        .unwrap();
    log.assign_consumer("manual", "m", vec![tp("orders", 0)])
        .unwrap();
    log.create_consumer("manual", Some("idle"), ConsumerSettings::default())
        .unwrap();
    (streamcache::api::router(engine.clone()), engine)
}

#[tokio::test]
async fn groups_are_listed_with_their_state_and_links() {
    let (router, _engine) = setup();
    let (status, cluster) = get(&router, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, list) = get(&router, "/consumer-groups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["kind"], "KafkaConsumerGroupList");
    assert_eq!(
        list["metadata"]["self"], cluster["consumer_groups"]["related"],
        "the cluster links to the list"
    );
    // A member or a committed offset makes a group; `manual` has neither in Kafka's sense.
    assert_eq!(ids(&list, "consumer_group_id"), ["fresh", "g1", "simple"]);

    let (status, g1) = get(&router, "/consumer-groups/g1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["data"][1], g1,
        "the list holds each group as its own address serves it"
    );
    assert_eq!(g1["kind"], "KafkaConsumerGroup");
    assert_eq!(g1["metadata"]["self"], format!("{HOST}/consumer-groups/g1"));
    assert_eq!(
        g1["metadata"]["resource_name"],
        "crn:///kafka=streamcache/consumer-group=g1"
    );
    assert_eq!(g1["state"], "STABLE");
    assert_eq!(g1["is_simple"], false);
    assert_eq!(g1["partition_assignor"], "range");
    assert_eq!(g1["type"], "CLASSIC");
    assert_eq!(g1["coordinator"]["related"], format!("{HOST}/brokers/0"));
    assert_eq!(
        g1["lag_summary"]["related"],
        format!("{HOST}/consumer-groups/g1/lag-summary")
    );

    let (_, simple) = get(&router, "/consumer-groups/simple").await;
    assert_eq!(simple["state"], "EMPTY");
    assert_eq!(simple["is_simple"], true);
    assert_eq!(simple["partition_assignor"], "");

    let (status, body) = get(&router, "/consumer-groups/manual").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], 404);
    assert_eq!(body["message"], "HTTP 404 Not Found");
    let (status, _) = get(&router, "/consumer-groups/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let req = Request::builder()
        .uri("/kafka/v3/clusters/other/consumer-groups")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn consumers_and_their_assignments() {
    let (router, _engine) = setup();
    let (status, consumers) = get(&router, "/consumer-groups/g1/consumers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(consumers["kind"], "KafkaConsumerList");
    assert_eq!(ids(&consumers, "consumer_id"), ["a", "b"]);
    let (status, a) = get(&router, "/consumer-groups/g1/consumers/a").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(consumers["data"][0], a);
    assert_eq!(a["kind"], "KafkaConsumer");
    assert_eq!(a["client_id"], "a");
    assert!(a["instance_id"].is_null());

    let (status, assignments) = get(&router, "/consumer-groups/g1/consumers/a/assignments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        assignments["metadata"]["self"], a["assignments"]["related"],
        "the consumer links to its assignments"
    );
    let data = assignments["data"].as_array().unwrap();
    assert_eq!(
        data.len(),
        1,
        "the range assignor gives `a` one of two partitions"
    );
    assert_eq!(data[0]["topic_name"], "orders");
    assert_eq!(data[0]["partition_id"], 0);
    assert_eq!(
        data[0]["lag"]["related"],
        format!("{HOST}/consumer-groups/g1/lags/orders/partitions/0")
    );
    let (status, one) = get(
        &router,
        "/consumer-groups/g1/consumers/a/assignments/orders/partitions/0",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, data[0]);

    // The REST Proxy's 404 texts.
    for (path, message) in [
        (
            "/consumer-groups/g1/consumers/a/assignments/orders/partitions/1",
            "HTTP 404 Not Found",
        ),
        ("/consumer-groups/g1/consumers/z", "HTTP 404 Not Found"),
        (
            "/consumer-groups/g1/consumers/z/assignments",
            "Consumer z does not exist.",
        ),
        (
            "/consumer-groups/nope/consumers",
            "Consumer Group nope does not exist.",
        ),
    ] {
        let (status, body) = get(&router, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["message"], message, "{path}");
    }
    // A group of committed offsets alone has no consumers.
    let (_, none) = get(&router, "/consumer-groups/simple/consumers").await;
    assert_eq!(none["data"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn lags_per_partition_largest_first_and_the_summary() {
    let (router, engine) = setup();
    let (status, lags) = get(&router, "/consumer-groups/g1/lags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lags["kind"], "KafkaConsumerLagList");
    let data = lags["data"].as_array().unwrap();
    let rows: Vec<(u64, &str, u64, u64, u64)> = data
        .iter()
        .map(|l| {
            (
                l["partition_id"].as_u64().unwrap(),
                l["consumer_id"].as_str().unwrap(),
                l["current_offset"].as_u64().unwrap(),
                l["log_end_offset"].as_u64().unwrap(),
                l["lag"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(0, "a", 2, 5, 3), (1, "b", 3, 3, 0)]);
    let (status, one) = get(&router, "/consumer-groups/g1/lags/orders/partitions/0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, data[0]);
    assert_eq!(
        one["metadata"]["resource_name"],
        "crn:///kafka=streamcache/consumer-group=g1/lag=orders/partition=0"
    );

    let (status, summary) = get(&router, "/consumer-groups/g1/lag-summary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["kind"], "KafkaConsumerGroupLagSummary");
    assert_eq!(summary["max_lag"], 3);
    assert_eq!(summary["total_lag"], 3);
    assert_eq!(summary["max_lag_consumer_id"], "a");
    assert_eq!(summary["max_lag_topic_name"], "orders");
    assert_eq!(summary["max_lag_partition_id"], 0);
    assert_eq!(
        summary["max_lag_partition"]["related"],
        format!("{HOST}/topics/orders/partitions/0")
    );

    // New records raise the lag; the order follows it.
    engine
        .log()
        .append(
            "orders",
            Routing::Partition(1),
            (0..4)
                .map(|_| Record {
                    value: Some("x".into()),
                    ..Default::default()
                })
                .collect(),
        )
        .unwrap();
    let (_, lags) = get(&router, "/consumer-groups/g1/lags").await;
    let order: Vec<(u64, u64)> = lags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["partition_id"].as_u64().unwrap(),
                l["lag"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [(1, 4), (0, 3)]);
    let (_, summary) = get(&router, "/consumer-groups/g1/lag-summary").await;
    assert_eq!(summary["max_lag"], 4);
    assert_eq!(summary["total_lag"], 7);
    assert_eq!(summary["max_lag_consumer_id"], "b");

    // An offset committed past the end reports no negative lag; no member means no consumer.
    commit(&engine, "simple", &[(0, 9)]);
    let (_, simple) = get(&router, "/consumer-groups/simple/lags").await;
    let rows: Vec<(u64, &str, u64)> = simple["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["partition_id"].as_u64().unwrap(),
                l["consumer_id"].as_str().unwrap(),
                l["lag"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(1, "", 6), (0, "", 0)]);

    for (path, message) in [
        (
            "/consumer-groups/fresh/lags",
            "Consumer group offsets could not be found.",
        ),
        (
            "/consumer-groups/fresh/lag-summary",
            "Consumer group offsets could not be found.",
        ),
        (
            "/consumer-groups/nope/lags",
            "Consumer Group nope could not be found.",
        ),
        (
            "/consumer-groups/nope/lag-summary",
            "Consumer Group nope could not be found.",
        ),
        (
            "/consumer-groups/g1/lags/orders/partitions/7",
            "HTTP 404 Not Found",
        ),
    ] {
        let (status, body) = get(&router, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["message"], message, "{path}");
    }
}

/// A pipeline flow consumes under its group as a Kafka consumer would: the running reference
/// flow is the group's member, assigned every partition of `orders`, and its committed
/// positions are the group's offsets, so its lag reads 0 once it has caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_flow_is_a_member_of_its_group_with_its_positions() {
    use streamcache::config::Config;
    use streamcache::shutdown::Shutdown;

    const ORDERS: u64 = 30;
    let engine = Arc::new(
        Engine::open(Config {
            ephemeral: true,
            ..Config::default()
        })
        .unwrap(),
    );
    let shutdown = Shutdown::new();
    engine.start(shutdown.signal()).await.unwrap();
    let records = (0..ORDERS)
        .map(|i| Record {
            key: Some(format!("{}", 100 + i % 3).into()),
            value: Some(
                format!(r#"{{"orderNumber":{i},"customerNumber":{}}}"#, 100 + i % 3).into(),
            ),
            ..Default::default()
        })
        .collect();
    engine
        .log()
        .append("orders", Routing::Auto, records)
        .unwrap();
    let caught_up = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let flows = engine.flows().await;
            if flows
                .iter()
                .map(|f| f.committed.values().sum::<u64>())
                .sum::<u64>()
                >= ORDERS
            {
                return flows;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the reference flow commits every order");
    let flow = &caught_up[0];
    let router = streamcache::api::router(engine.clone());

    let (status, list) = get(&router, "/consumer-groups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list, "consumer_group_id"), [flow.group.as_str()]);
    assert_eq!(list["data"][0]["state"], "STABLE");
    let group = format!("/consumer-groups/{}", flow.group);
    let (_, consumers) = get(&router, &format!("{group}/consumers")).await;
    assert_eq!(ids(&consumers, "consumer_id"), [flow.name.as_str()]);
    let (_, assignments) = get(
        &router,
        &format!("{group}/consumers/{}/assignments", flow.name),
    )
    .await;
    let partitions: Vec<u64> = assignments["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["partition_id"].as_u64().unwrap())
        .collect();
    assert_eq!(partitions, [0, 1, 2], "every partition of `orders`");
    let (status, summary) = get(&router, &format!("{group}/lag-summary")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["total_lag"], 0);
    let (_, lags) = get(&router, &format!("{group}/lags")).await;
    let ends: u64 = lags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["current_offset"], l["log_end_offset"]);
            assert_eq!(l["consumer_id"], flow.name.as_str());
            l["log_end_offset"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(ends, ORDERS);
    shutdown.trigger();
    engine.stop().await;
}

/// Every link of a group whose name, and whose member's, hold characters a URL path cannot
/// (a space, `%`, `?`, `#`, non-ASCII) is percent-encoded and leads where it says.
#[tokio::test]
async fn links_percent_encode_group_and_consumer_ids_and_reach_them() {
    let (router, engine) = setup();
    let (group, member) = ("a b%", "x?y#z é");
    subscribe(&engine, group, member);
    commit(&engine, group, &[(0, 1), (1, 1)]);
    let (status, g) = get(&router, "/consumer-groups/a%20b%25").await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["consumer_group_id"], group);
    let encoded_group = format!("{HOST}/consumer-groups/a%20b%25");
    assert_eq!(g["metadata"]["self"], encoded_group.as_str());
    let encoded_member = format!("{encoded_group}/consumers/x%3Fy%23z%20%C3%A9");
    // Follows a link returned by the API, which must be one of this router's paths.
    let follow = |link: &Value| {
        let path = link
            .as_str()
            .unwrap()
            .strip_prefix(HOST)
            .unwrap()
            .to_owned();
        let router = router.clone();
        async move { get(&router, &path).await }
    };
    for (link, kind) in [
        (&g["consumers"]["related"], "KafkaConsumerList"),
        (&g["lag_summary"]["related"], "KafkaConsumerGroupLagSummary"),
    ] {
        let (status, body) = follow(link).await;
        assert_eq!(
            (status, &body["kind"]),
            (StatusCode::OK, &Value::from(kind)),
            "{link}"
        );
    }
    let (_, consumers) = follow(&g["consumers"]["related"]).await;
    assert_eq!(
        consumers["metadata"]["self"],
        format!("{encoded_group}/consumers").as_str()
    );
    let consumer = &consumers["data"][0];
    assert_eq!(consumer["consumer_id"], member);
    assert_eq!(consumer["metadata"]["self"], encoded_member.as_str());
    let (status, assignments) = follow(&consumer["assignments"]["related"]).await;
    assert_eq!(status, StatusCode::OK, "{assignments}");
    assert_eq!(
        assignments["metadata"]["self"],
        format!("{encoded_member}/assignments").as_str()
    );
    for assignment in assignments["data"].as_array().unwrap() {
        for link in [
            &assignment["metadata"]["self"],
            &assignment["lag"]["related"],
        ] {
            let (status, body) = follow(link).await;
            assert_eq!(status, StatusCode::OK, "{link}: {body}");
        }
    }
    let (_, summary) = follow(&g["lag_summary"]["related"]).await;
    assert_eq!(
        summary["max_lag_consumer"]["related"],
        encoded_member.as_str()
    );
    let (status, lags) = get(&router, "/consumer-groups/a%20b%25/lags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        lags["metadata"]["self"],
        format!("{encoded_group}/lags").as_str()
    );
    let (status, _) = follow(&lags["data"][0]["metadata"]["self"]).await;
    assert_eq!(status, StatusCode::OK);
}
