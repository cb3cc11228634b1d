//! Capability: the Confluent REST Proxy v2 surface under `/kafka` — topics, produce in the
//! binary and json embedded formats, and the consumer-instance API — with the REST Proxy's
//! shapes, content types and error codes.
//!
//! Method: requests go through the axum router with `tower::ServiceExt::oneshot` (no socket)
//! over a temporary engine.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use streamcache::engine::Engine;
use tower::ServiceExt as _;

const V2: &str = "application/vnd.kafka.v2+json";
const BINARY: &str = "application/vnd.kafka.binary.v2+json";
const JSON: &str = "application/vnd.kafka.json.v2+json";

/// method, uri, content type, body, expected status, expected REST error code.
type ErrorCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<Value>,
    StatusCode,
    u64,
);

struct Api {
    router: axum::Router,
    engine: Arc<Engine>,
}

impl Api {
    fn new() -> Self {
        let engine = Arc::new(Engine::temporary().unwrap());
        Self {
            router: streamcache::api::router(engine.clone()),
            engine,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        ct: Option<&str>,
        accept: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "localhost:7070");
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, ct, v)
    }

    /// A POST of `body` with `content_type`: its status and reply.
    async fn post(&self, uri: &str, content_type: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, v) = self
            .call("POST", uri, Some(content_type), None, Some(body))
            .await;
        (status, v)
    }
}

#[tokio::test]
async fn produce_binary_and_list_describe_topics() {
    let api = Api::new();
    let body = json!({"records": [{"value": "aGVsbG8="}, {"key": "Zm9vYmFy", "value": "d29ybGQ="}, {"value": null, "partition": 2}]});
    let (status, ct, v) = api
        .call(
            "POST",
            "/kafka/topics/orders",
            Some(BINARY),
            None,
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ct, V2);
    assert_eq!(v["key_schema_id"], Value::Null);
    let offsets = v["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 3);
    let foobar = streamcache::log::partition_for_key(b"foobar", 3);
    assert_eq!(offsets[1]["partition"], json!(foobar));
    assert_eq!(
        offsets[2],
        json!({"partition": 2, "offset": 0, "error_code": null, "error": null})
    );
    let (_, _, topics) = api.call("GET", "/kafka/topics", None, None, None).await;
    assert_eq!(topics, json!(["orders"]));
    let (status, _, t) = api
        .call("GET", "/kafka/topics/orders", None, None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["name"], "orders");
    assert_eq!(t["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        t["partitions"][0]["replicas"][0],
        json!({"broker": 0, "leader": true, "in_sync": true})
    );
    assert_eq!(t["configs"]["max.message.bytes"], "1048588");
    let (_, _, p) = api
        .call("GET", "/kafka/topics/orders/partitions/1", None, None, None)
        .await;
    assert_eq!(p["partition"], 1);
    let (_, _, ps) = api
        .call("GET", "/kafka/topics/orders/partitions", None, None, None)
        .await;
    assert_eq!(ps.as_array().unwrap().len(), 3);
    let stored = api.engine.log().read("orders", 2, 0, 1000).unwrap();
    assert_eq!(stored[0].value, None);
}

#[tokio::test]
async fn produce_json_to_a_partition_url_and_errors_use_rest_codes() {
    let api = Api::new();
    let body = json!({"records": [{"value": {"order": 1}}, {"value": [1, 2], "partition": 0}]});
    let (status, _, v) = api
        .call(
            "POST",
            "/kafka/topics/t/partitions/1",
            Some(JSON),
            None,
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["offsets"][0]["partition"], 1);
    assert_eq!(
        v["offsets"][1]["partition"], 0,
        "a record's own partition wins over the path"
    );
    let stored = api.engine.log().read("t", 1, 0, 1000).unwrap();
    assert_eq!(stored[0].value.as_deref(), Some(&br#"{"order":1}"#[..]));

    let cases: [ErrorCase; 9] = [
        (
            "GET",
            "/kafka/topics/missing",
            None,
            None,
            StatusCode::NOT_FOUND,
            40401,
        ),
        (
            "GET",
            "/kafka/topics/t/partitions/9",
            None,
            None,
            StatusCode::NOT_FOUND,
            40402,
        ),
        (
            "POST",
            "/kafka/topics/t/partitions/9",
            Some(JSON),
            Some(json!({"records": [{"value": 1}]})),
            StatusCode::NOT_FOUND,
            40402,
        ),
        (
            "POST",
            "/kafka/topics/t",
            Some(JSON),
            Some(json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            422,
        ),
        (
            "POST",
            "/kafka/topics/t",
            Some(BINARY),
            Some(json!({"records": [{"value": "%%%"}]})),
            StatusCode::BAD_REQUEST,
            400,
        ),
        (
            "POST",
            "/kafka/topics/t",
            Some(BINARY),
            Some(json!({"records": [{"key": 1}]})),
            StatusCode::BAD_REQUEST,
            400,
        ),
        (
            "POST",
            "/kafka/topics/t",
            Some("application/vnd.kafka.avro.v2+json"),
            Some(json!({"records": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42206,
        ),
        (
            "POST",
            "/kafka/topics/t",
            Some("text/plain"),
            Some(json!({"records": []})),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
        ),
        (
            "POST",
            "/kafka/topics/bad%20name",
            Some(JSON),
            Some(json!({"records": [{"value": 1}]})),
            StatusCode::BAD_REQUEST,
            40002,
        ),
    ];
    for (method, uri, ct, body, status, code) in cases {
        let (got, content_type, e) = api.call(method, uri, ct, None, body).await;
        assert_eq!(
            (got, e["error_code"].as_u64()),
            (status, Some(code)),
            "{method} {uri}: {e}"
        );
        assert_eq!(content_type, V2, "{method} {uri}");
        assert!(e["message"].is_string());
    }
}

#[tokio::test]
async fn an_oversized_record_fails_inside_offsets() {
    let api = Api::new();
    let max = usize::try_from(streamcache::log::MAX_MESSAGE_BYTES_DEFAULT).unwrap();
    let big = "x".repeat(max - 2); // a JSON string of max bytes once quoted
    let (status, _, v) = api
        .call(
            "POST",
            "/kafka/topics/t/partitions/0",
            Some(JSON),
            None,
            Some(json!({"records": [{"value": big}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v["offsets"][0]["offset"], 0,
        "a record of exactly max.message.bytes is accepted"
    );
    let bigger = "x".repeat(max - 1);
    let (status, _, v) = api
        .call(
            "POST",
            "/kafka/topics/t/partitions/0",
            Some(JSON),
            None,
            Some(json!({"records": [{"value": bigger}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["offsets"][0]["error_code"], 50002);
    assert_eq!(v["offsets"][0]["offset"], Value::Null);
}

#[tokio::test]
async fn a_produce_naming_an_unknown_partition_is_refused_before_storing_anything() {
    let api = Api::new();
    api.engine
        .log()
        .create_topic("t2", Some(1), &[], false)
        .unwrap();
    let body =
        json!({"records": [{"value": "ok", "partition": 0}, {"value": "bad", "partition": 7}]});
    let (status, _, v) = api
        .call("POST", "/kafka/topics/t2", Some(JSON), None, Some(body))
        .await;
    assert_eq!(
        (status, v["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40402)),
        "{v}"
    );
    assert_eq!(
        api.engine.log().latest_offset("t2", 0).unwrap(),
        0,
        "a refused request stores none of its records"
    );
}

#[tokio::test]
async fn only_the_records_over_max_message_bytes_fail() {
    let api = Api::new();
    let max = 64;
    api.engine
        .log()
        .create_topic(
            "t",
            Some(2),
            &[("max.message.bytes".into(), max.to_string())],
            false,
        )
        .unwrap();
    let b64 =
        |len: usize, byte: u8| base64::engine::general_purpose::STANDARD.encode(vec![byte; len]);
    let body = json!({"records": [
        {"value": "YQ==", "partition": 0},
        {"value": b64(max + 1, b'x'), "partition": 0},
        {"value": b64(max, b'm'), "partition": 0},
        {"value": "Yg==", "partition": 1},
        {"value": b64(max + 1, b'y'), "partition": 1},
        {"value": "Yw==", "partition": 0},
    ]});
    let (status, _, v) = api
        .call("POST", "/kafka/topics/t", Some(BINARY), None, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let placed: Vec<(Value, Value, Value)> = v["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["partition"].clone(),
                o["offset"].clone(),
                o["error_code"].clone(),
            )
        })
        .collect();
    let ok = |p: u32, o: u64| (json!(p), json!(o), Value::Null);
    let failed = (Value::Null, Value::Null, json!(50002));
    assert_eq!(
        placed,
        [
            ok(0, 0),
            failed.clone(),
            ok(0, 1),
            ok(1, 0),
            failed,
            ok(0, 2)
        ],
        "a record of max.message.bytes is stored, one of max + 1 fails alone: {v}"
    );
    assert!(
        v["offsets"][1]["error"]
            .as_str()
            .unwrap()
            .contains("max.message.bytes"),
        "{v}"
    );
    let stored = |p: u32| -> Vec<Vec<u8>> {
        api.engine
            .log()
            .read("t", p, 0, 1 << 20)
            .unwrap()
            .into_iter()
            .map(|r| r.value.unwrap().to_vec())
            .collect()
    };
    assert_eq!(
        stored(0),
        [b"a".to_vec(), vec![b'm'; max], b"c".to_vec()],
        "order within the partition is kept"
    );
    assert_eq!(stored(1), [b"b".to_vec()]);
}

// Paused time: the fetch at the end waits out its 10 ms timeout on tokio's clock, which
// advances to that deadline only once the fetch has parked on it.
#[tokio::test(start_paused = true)]
async fn consumer_lifecycle_subscribe_fetch_commit_seek_delete() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/topics/t/partitions/0",
        Some(JSON),
        None,
        Some(json!({"records": [{"key": "k", "value": {"n": 1}}, {"value": {"n": 2}}]})),
    )
    .await;
    let (status, ct, c) = api
        .call("POST", "/kafka/consumers/g", Some(V2), None, Some(json!({"name": "c1", "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"})))
        .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, V2));
    assert_eq!(
        c,
        json!({"instance_id": "c1", "base_uri": "http://localhost:7070/kafka/consumers/g/instances/c1"})
    );
    let (status, _, e) = api
        .call(
            "POST",
            "/kafka/consumers/g",
            Some(V2),
            None,
            Some(json!({"name": "c1"})),
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::CONFLICT, Some(40902))
    );
    let base = "/kafka/consumers/g/instances/c1";
    let (status, _, _) = api
        .call(
            "POST",
            &format!("{base}/subscription"),
            Some(V2),
            None,
            Some(json!({"topics": ["t"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, s) = api
        .call("GET", &format!("{base}/subscription"), None, None, None)
        .await;
    assert_eq!(s, json!({"topics": ["t"]}));
    let (_, _, a) = api
        .call("GET", &format!("{base}/assignments"), None, None, None)
        .await;
    assert_eq!(a["partitions"].as_array().unwrap().len(), 3);
    let (status, _, e) = api
        .call("GET", &format!("{base}/records"), None, Some(BINARY), None)
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::NOT_ACCEPTABLE, Some(40601))
    );
    let (status, ct, recs) = api
        .call(
            "GET",
            &format!("{base}/records?timeout=5000"),
            None,
            Some(JSON),
            None,
        )
        .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, JSON));
    assert_eq!(
        recs,
        json!([
            {"topic": "t", "key": "k", "value": {"n": 1}, "partition": 0, "offset": 0},
            {"topic": "t", "key": null, "value": {"n": 2}, "partition": 0, "offset": 1},
        ])
    );
    let (status, _, _) = api
        .call(
            "POST",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(json!({"offsets": [{"topic": "t", "partition": 0, "offset": 0}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, committed) = api
        .call("GET", &format!("{base}/offsets"), Some(V2), None, Some(json!({"partitions": [{"topic": "t", "partition": 0}, {"topic": "t", "partition": 1}]})))
        .await;
    // Partition 1 has no committed offset: left out, as the REST Proxy leaves it out.
    assert_eq!(
        committed,
        json!({"offsets": [
            {"topic": "t", "partition": 0, "offset": 1, "metadata": ""},
        ]})
    );
    // Commit everything fetched (empty body).
    api.call("POST", &format!("{base}/offsets"), Some(V2), None, None)
        .await;
    let (_, _, committed) = api
        .call(
            "GET",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(json!({"partitions": [{"topic": "t", "partition": 0}]})),
        )
        .await;
    assert_eq!(committed["offsets"][0]["offset"], 2);
    let tp = json!({"partitions": [{"topic": "t", "partition": 0}]});
    let (status, _, _) = api
        .call(
            "POST",
            &format!("{base}/positions/beginning"),
            Some(V2),
            None,
            Some(tp.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, again) = api
        .call("GET", &format!("{base}/records"), None, Some(JSON), None)
        .await;
    assert_eq!(again.as_array().unwrap().len(), 2);
    api.call(
        "POST",
        &format!("{base}/positions"),
        Some(V2),
        None,
        Some(json!({"offsets": [{"topic": "t", "partition": 0, "offset": 1}]})),
    )
    .await;
    let (_, _, one) = api
        .call("GET", &format!("{base}/records"), None, Some(JSON), None)
        .await;
    assert_eq!(one[0]["offset"], 1);
    api.call(
        "POST",
        &format!("{base}/positions/end"),
        Some(V2),
        None,
        Some(tp),
    )
    .await;
    let (_, _, none) = api
        .call(
            "GET",
            &format!("{base}/records?timeout=10"),
            None,
            Some(JSON),
            None,
        )
        .await;
    assert_eq!(none, json!([]));
    let (status, _, _) = api
        .call("DELETE", &format!("{base}/subscription"), None, None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api.call("DELETE", base, None, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, e) = api
        .call("GET", &format!("{base}/records"), None, Some(JSON), None)
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40403))
    );
}

#[tokio::test]
async fn binary_consumer_with_manual_assignment_and_generated_name() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/topics/b/partitions/1",
        Some(BINARY),
        None,
        Some(json!({"records": [{"key": "AAE=", "value": "/w=="}]})),
    )
    .await;
    let (_, _, c) = api
        .call("POST", "/kafka/consumers/g2", None, None, None)
        .await;
    let id = c["instance_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rest-consumer-"));
    let base = format!("/kafka/consumers/g2/instances/{id}");
    let (status, _, _) = api
        .call(
            "POST",
            &format!("{base}/assignments"),
            Some(V2),
            None,
            Some(json!({"partitions": [{"topic": "b", "partition": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, a) = api
        .call("GET", &format!("{base}/assignments"), None, None, None)
        .await;
    assert_eq!(a, json!({"partitions": [{"topic": "b", "partition": 1}]}));
    let (status, _, e) = api
        .call(
            "POST",
            &format!("{base}/subscription"),
            Some(V2),
            None,
            Some(json!({"topics": ["b"]})),
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::CONFLICT, Some(40903))
    );
    api.call(
        "POST",
        &format!("{base}/positions/beginning"),
        Some(V2),
        None,
        Some(json!({"partitions": [{"topic": "b", "partition": 1}]})),
    )
    .await;
    let (_, ct, recs) = api
        .call("GET", &format!("{base}/records"), None, Some(BINARY), None)
        .await;
    assert_eq!(ct, BINARY);
    assert_eq!(
        recs,
        json!([{"topic": "b", "key": "AAE=", "value": "/w==", "partition": 1, "offset": 0}])
    );
    let (status, _, e) = api
        .call(
            "POST",
            "/kafka/consumers/g2",
            Some(V2),
            None,
            Some(json!({"format": "avro"})),
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(42204))
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_fetch_wakes_when_a_record_arrives() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/topics/w/partitions/0",
        Some(JSON),
        None,
        Some(json!({"records": [{"value": 0}]})),
    )
    .await;
    // Position at the end: the first record is skipped, and the fetch waits for the next one.
    let base = consumer_at_end(&api, "w").await;
    let uri = format!("{base}/records?timeout=30000");
    let fetch = api.call("GET", &uri, None, Some(JSON), None);
    let produce = async {
        until_a_reader_waits(&api, "w").await;
        // With time paused, the clock moves only once every task waits on a timer and no
        // blocking log call is in flight: when this 1 ms has passed, the fetch has polled an
        // empty partition and parked on its 30 s deadline, so only the append's wake-up can
        // end it before that deadline.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        api.engine
            .log()
            .append(
                "w",
                streamcache::log::Routing::Partition(0),
                vec![streamcache::log::Record {
                    value: Some("1".into()),
                    ..Default::default()
                }],
            )
            .map(|_| ())
    };
    let ((status, _, recs), appended) =
        tokio::time::timeout(std::time::Duration::from_secs(20), async {
            tokio::join!(fetch, produce)
        })
        .await
        .unwrap();
    appended.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recs[0]["value"], 1, "{recs}");
}

#[tokio::test]
async fn consumer_request_timeout_limit_at_max_and_max_plus_one() {
    let api = Api::new();
    // CONSUMER_REQUEST_TIMEOUT_MS_MAX = 30 000 ms.
    let (status, _, _) = api
        .call(
            "POST",
            "/kafka/consumers/g",
            Some(V2),
            None,
            Some(json!({"name": "a", "consumer.request.timeout.ms": 30000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, e) = api
        .call(
            "POST",
            "/kafka/consumers/g",
            Some(V2),
            None,
            Some(json!({"name": "b", "consumer.request.timeout.ms": "30001"})),
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(42204))
    );
}

/// Creates consumer `c` in group `g` (json format, `consumer.request.timeout.ms` 30 s)
/// subscribed to `topic`, positioned at its end.
async fn consumer_at_end(api: &Api, topic: &str) -> String {
    api.call(
        "POST",
        "/kafka/consumers/g",
        Some(V2),
        None,
        Some(json!({"name": "c", "format": "json", "consumer.request.timeout.ms": 30000})),
    )
    .await;
    let base = "/kafka/consumers/g/instances/c".to_owned();
    api.call(
        "POST",
        &format!("{base}/subscription"),
        Some(V2),
        None,
        Some(json!({ "topics": [topic] })),
    )
    .await;
    api.call(
        "POST",
        &format!("{base}/positions/end"),
        Some(V2),
        None,
        Some(json!({"partitions": [{"topic": topic, "partition": 0}]})),
    )
    .await;
    base
}

/// Yields until some reader is subscribed to the partition's end offset (the pending fetch
/// has polled once and is about to wait, or is waiting), bounded by a timeout.
async fn until_a_reader_waits(api: &Api, topic: &str) {
    let partition = api.engine.log().partition(topic, 0).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while partition.subscriber_count() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the fetch subscribes to the partition");
}

/// `GET {base}/records?timeout=30000` on its own task.
fn spawn_fetch(api: &Arc<Api>, base: &str) -> tokio::task::JoinHandle<(StatusCode, String, Value)> {
    spawn_fetch_with(api, base, "timeout=30000")
}

/// `GET {base}/records?{query}` on its own task.
fn spawn_fetch_with(
    api: &Arc<Api>,
    base: &str,
    query: &str,
) -> tokio::task::JoinHandle<(StatusCode, String, Value)> {
    let api = api.clone();
    let uri = format!("{base}/records?{query}");
    tokio::spawn(async move { api.call("GET", &uri, None, Some(JSON), None).await })
}

/// Appends the JSON value `value` to partition 0 of `topic`.
fn append_json(api: &Api, topic: &str, value: &str) {
    api.engine
        .log()
        .append(
            topic,
            streamcache::log::Routing::Partition(0),
            vec![streamcache::log::Record {
                value: Some(value.to_owned().into()),
                ..Default::default()
            }],
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_waits_the_instance_request_timeout_as_the_rest_proxy_does() {
    // The REST Proxy reads `timeout <= 0` as "use consumer.request.timeout.ms" (30 s for
    // this instance), not as "do not wait".
    let api = Arc::new(Api::new());
    api.engine
        .log()
        .create_topic("z", Some(1), &[], false)
        .unwrap();
    let base = consumer_at_end(&api, "z").await;
    let fetch = spawn_fetch_with(&api, &base, "timeout=0");
    until_a_reader_waits(&api, "z").await;
    assert!(!fetch.is_finished(), "no record yet: the fetch waits");
    append_json(&api, "z", "5");
    let (status, _, recs) = tokio::time::timeout(std::time::Duration::from_secs(20), fetch)
        .await
        .expect("the fetch returns on the append")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        recs,
        json!([{"topic": "z", "key": null, "value": 5, "partition": 0, "offset": 0}])
    );
}

#[tokio::test]
async fn a_zero_max_bytes_is_no_byte_budget_as_in_the_rest_proxy() {
    let api = Api::new();
    api.engine
        .log()
        .create_topic("mb", Some(1), &[], false)
        .unwrap();
    let base = consumer_at_end(&api, "mb").await;
    append_json(&api, "mb", "1");
    append_json(&api, "mb", "2");
    let (status, _, recs) = api
        .call(
            "GET",
            &format!("{base}/records?max_bytes=0&timeout=20"),
            None,
            Some(JSON),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let values: Vec<i64> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, [1, 2], "{recs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_fetch_returns_the_record_produced_while_it_waits() {
    let api = Arc::new(Api::new());
    api.engine
        .log()
        .create_topic("p", Some(1), &[], false)
        .unwrap();
    let base = consumer_at_end(&api, "p").await;
    let fetch = spawn_fetch(&api, &base);
    until_a_reader_waits(&api, "p").await;
    assert!(!fetch.is_finished(), "no record yet: the fetch waits");
    api.engine
        .log()
        .append(
            "p",
            streamcache::log::Routing::Partition(0),
            vec![streamcache::log::Record {
                value: Some("7".into()),
                ..Default::default()
            }],
        )
        .unwrap();
    // Well inside the 30 s timeout: the append's notification ends the wait.
    let (status, _, recs) = tokio::time::timeout(std::time::Duration::from_secs(20), fetch)
        .await
        .expect("the fetch returns on the append, not at its timeout")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recs.as_array().map(Vec::len), Some(1), "{recs}");
    assert_eq!(
        (recs[0]["value"].as_i64(), recs[0]["offset"].as_u64()),
        (Some(7), Some(0))
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_fetch_returns_an_empty_list_after_its_timeout() {
    let api = Api::new();
    api.engine
        .log()
        .create_topic("e", Some(1), &[], false)
        .unwrap();
    let base = consumer_at_end(&api, "e").await;
    let uri = format!("{base}/records?timeout=20");
    let fetch = api.call("GET", &uri, None, Some(JSON), None);
    tokio::pin!(fetch);
    // Paused time: tokio's clock moves only when every task waits on a timer, so these bounds
    // are on the fetch's own wait. It waits out its 20 ms timeout, and only that: not the
    // instance's 30 s consumer.request.timeout.ms.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(19), &mut fetch)
            .await
            .is_err(),
        "the fetch waits for its timeout"
    );
    let (status, _, recs) = tokio::time::timeout(std::time::Duration::from_secs(1), fetch)
        .await
        .expect("the fetch ends at its own 20 ms timeout");
    assert_eq!((status, recs), (StatusCode::OK, json!([])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_fetch_ends_with_an_empty_list_at_shutdown() {
    let engine = Arc::new(Engine::temporary().unwrap());
    let shutdown = streamcache::shutdown::Shutdown::new();
    let api = Arc::new(Api {
        router: streamcache::api::router_with_shutdown(engine.clone(), shutdown.signal()),
        engine,
    });
    api.engine
        .log()
        .create_topic("s", Some(1), &[], false)
        .unwrap();
    let base = consumer_at_end(&api, "s").await;
    let fetch = spawn_fetch(&api, &base);
    until_a_reader_waits(&api, "s").await;
    shutdown.trigger();
    let (status, _, recs) = tokio::time::timeout(std::time::Duration::from_secs(20), fetch)
        .await
        .expect("shutdown ends the wait, not the 30 s timeout")
        .unwrap();
    assert_eq!((status, recs), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn a_binary_instance_answers_the_generic_v2_and_json_accept_types_in_any_case() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/topics/acc/partitions/0",
        Some(BINARY),
        None,
        Some(json!({"records": [{"value": "/w=="}]})),
    )
    .await;
    for (group, format) in [("gb", "binary"), ("gj", "json")] {
        api.call(
            "POST",
            &format!("/kafka/consumers/{group}"),
            Some(V2),
            None,
            Some(json!({"name": "c", "format": format, "auto.offset.reset": "earliest"})),
        )
        .await;
        api.call(
            "POST",
            &format!("/kafka/consumers/{group}/instances/c/subscription"),
            Some(V2),
            None,
            Some(json!({"topics": ["acc"]})),
        )
        .await;
    }
    let records = "/kafka/consumers/gb/instances/c/records?timeout=-1&max_bytes=-1";
    for accept in [
        V2,
        "application/json",
        "Application/VND.Kafka.Binary.V2+JSON",
    ] {
        let (status, ct, _) = api.call("GET", records, None, Some(accept), None).await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, BINARY), "{accept}");
    }
    // The generic types mean the default format, binary: a json instance refuses them.
    let (status, _, e) = api
        .call(
            "GET",
            "/kafka/consumers/gj/instances/c/records",
            None,
            Some(V2),
            None,
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::NOT_ACCEPTABLE, Some(40601))
    );
    let (status, _, recs) = api
        .call(
            "GET",
            "/kafka/consumers/gj/instances/c/records",
            None,
            Some("APPLICATION/vnd.kafka.json.v2+json"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recs[0]["offset"], 0);
}

#[tokio::test]
async fn framework_rejections_and_unknown_paths_answer_in_the_rest_proxy_shape() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/consumers/g",
        Some(V2),
        None,
        Some(json!({"name": "c"})),
    )
    .await;
    let cases = [
        (
            "GET",
            "/kafka/consumers/g/instances/c/records?timeout=abc",
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/kafka/topics/orders/partitions/abc",
            StatusCode::BAD_REQUEST,
        ),
        (
            "DELETE",
            "/kafka/topics/orders",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("GET", "/kafka/no/such/path", StatusCode::NOT_FOUND),
    ];
    for (method, uri, want) in cases {
        let (status, ct, e) = api.call(method, uri, None, None, None).await;
        assert_eq!(
            (status, ct.as_str(), e["error_code"].as_u64()),
            (want, V2, Some(u64::from(want.as_u16()))),
            "{method} {uri}: {e}"
        );
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let (_, _, e) = api
        .call("DELETE", "/kafka/topics/orders", None, None, None)
        .await;
    assert_eq!(e["message"], "HTTP 405 Method Not Allowed");
    let (status, ct, e) = api
        .call(
            "PUT",
            "/kafka/v3/clusters/streamcache/topics/orders",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, ct.as_str(), e["error_code"].as_u64()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            Some(405)
        )
    );
    // Outside /kafka the generic shape stays.
    let (status, _, e) = api.call("GET", "/nowhere", None, None, None).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn a_body_over_the_http_limit_is_a_rest_proxy_413() {
    let api = Api::new();
    let limit = usize::try_from(api.engine.config().http_body_bytes_max).unwrap();
    let records = json!({"records": [{"value": "x".repeat(limit)}]});
    let (status, ct, e) = api
        .call("POST", "/kafka/topics/big", Some(JSON), None, Some(records))
        .await;
    assert_eq!(
        (status, ct.as_str(), e["error_code"].as_u64()),
        (StatusCode::PAYLOAD_TOO_LARGE, V2, Some(413))
    );
}

#[tokio::test]
async fn committing_offset_minus_one_commits_zero_and_minus_two_is_refused() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/topics/cm/partitions/0",
        Some(BINARY),
        None,
        Some(json!({"records": [{"value": "/w=="}]})),
    )
    .await;
    api.call(
        "POST",
        "/kafka/consumers/gc",
        Some(V2),
        None,
        Some(json!({"name": "c"})),
    )
    .await;
    let base = "/kafka/consumers/gc/instances/c";
    let commit =
        |offset: i64| json!({"offsets": [{"topic": "cm", "partition": 0, "offset": offset}]});
    let (status, _, _) = api
        .call(
            "POST",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(commit(-1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, got) = api
        .call(
            "GET",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(json!({"partitions": [{"topic": "cm", "partition": 0}]})),
        )
        .await;
    assert_eq!(got["offsets"][0]["offset"], 0, "{got}");
    let (status, _, e) = api
        .call(
            "POST",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(commit(-2)),
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(422))
    );
}

#[tokio::test]
async fn an_empty_offsets_list_commits_nothing_and_an_empty_body_commits_what_was_fetched() {
    let api = Api::new();
    api.engine
        .log()
        .create_topic("ec", Some(1), &[], false)
        .unwrap();
    // Without auto-commit, so that only the commits below commit anything.
    api.call(
        "POST",
        "/kafka/consumers/gec",
        Some(V2),
        None,
        Some(json!({"name": "c", "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"})),
    )
    .await;
    let base = "/kafka/consumers/gec/instances/c";
    api.call(
        "POST",
        &format!("{base}/assignments"),
        Some(V2),
        None,
        Some(json!({"partitions": [{"topic": "ec", "partition": 0}]})),
    )
    .await;
    append_json(&api, "ec", "1");
    let (_, _, recs) = api
        .call(
            "GET",
            &format!("{base}/records?timeout=20"),
            None,
            Some(JSON),
            None,
        )
        .await;
    assert_eq!(recs.as_array().map(Vec::len), Some(1), "{recs}");
    let committed = || async {
        api.call(
            "GET",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(json!({"partitions": [{"topic": "ec", "partition": 0}]})),
        )
        .await
        .2
    };
    // The REST Proxy's `commitSync(emptyMap)`: nothing.
    let (status, _, _) = api
        .call(
            "POST",
            &format!("{base}/offsets"),
            Some(V2),
            None,
            Some(json!({"offsets": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(committed().await, json!({"offsets": []}));
    // No body: everything fetched.
    let (status, _, _) = api
        .call("POST", &format!("{base}/offsets"), Some(V2), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        committed().await,
        json!({"offsets": [{"topic": "ec", "partition": 0, "offset": 1, "metadata": ""}]})
    );
}

#[tokio::test]
async fn committed_offsets_without_a_body_answer_partition_not_found() {
    let api = Api::new();
    api.call(
        "POST",
        "/kafka/consumers/gn",
        Some(V2),
        None,
        Some(json!({"name": "c"})),
    )
    .await;
    let (status, ct, e) = api
        .call(
            "GET",
            "/kafka/consumers/gn/instances/c/offsets",
            Some(V2),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, ct.as_str(), e["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, V2, Some(40402))
    );
}

// Paused time: the fetch of the empty partition waits out its 20 ms timeout on tokio's clock.
#[tokio::test(start_paused = true)]
async fn the_consumer_format_is_matched_in_any_case() {
    let api = Api::new();
    api.engine
        .log()
        .create_topic("fc", Some(1), &[], false)
        .unwrap();
    for (name, format) in [("upper", "JSON"), ("mixed", "Binary")] {
        let (status, _, body) = api
            .call(
                "POST",
                "/kafka/consumers/gf",
                Some(V2),
                None,
                Some(json!({"name": name, "format": format})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{format}: {body}");
    }
    // The upper-case `JSON` instance is a json instance: it serves the json media type.
    let base = "/kafka/consumers/gf/instances/upper";
    api.call(
        "POST",
        &format!("{base}/assignments"),
        Some(V2),
        None,
        Some(json!({"partitions": [{"topic": "fc", "partition": 0}]})),
    )
    .await;
    let (status, ct, _) = api
        .call(
            "GET",
            &format!("{base}/records?timeout=20"),
            None,
            Some(JSON),
            None,
        )
        .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, JSON));
}

#[tokio::test]
async fn a_commit_that_would_exceed_the_group_limit_is_a_rest_proxy_400() {
    use streamcache::log::{CONSUMER_GROUPS_MAX, CommittedOffset, TopicPartition};
    let api = Api::new();
    let log = api.engine.log();
    log.create_topic("lim", Some(1), &[], false).unwrap();
    let at_zero = [(
        TopicPartition {
            topic: "lim".into(),
            partition: 0,
        },
        CommittedOffset {
            offset: 0,
            metadata: String::new(),
        },
    )];
    for i in 0..CONSUMER_GROUPS_MAX {
        log.commit_offsets(&format!("full-{i}"), &at_zero).unwrap();
    }
    api.call(
        "POST",
        "/kafka/consumers/late",
        Some(V2),
        None,
        Some(json!({"name": "c"})),
    )
    .await;
    let (status, _, e) = api
        .call(
            "POST",
            "/kafka/consumers/late/instances/c/offsets",
            Some(V2),
            None,
            Some(json!({"offsets": [{"topic": "lim", "partition": 0, "offset": 0}]})),
        )
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(40002)),
        "{e}"
    );
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains("too many consumer groups"), "{message}");
}

#[tokio::test]
async fn instance_names_are_one_url_segment_of_at_most_255_bytes() {
    let api = Api::new();
    let create = |name: String| json!({"name": name});
    for (name, ok) in [
        ("n".repeat(255), true),
        ("n".repeat(256), false),
        (String::new(), false),
        ("a/b".to_owned(), false),
        ("a.b-c_d".to_owned(), true),
    ] {
        let (status, _, v) = api
            .call(
                "POST",
                "/kafka/consumers/g",
                Some(V2),
                None,
                Some(create(name.clone())),
            )
            .await;
        if ok {
            assert_eq!(status, StatusCode::OK, "{name}: {v}");
            let base = v["base_uri"].as_str().unwrap();
            assert!(
                base.ends_with(&format!("/consumers/g/instances/{name}")),
                "{base}"
            );
        } else {
            assert_eq!(
                (status, v["error_code"].as_u64()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(42204)),
                "{name:?}"
            );
            assert!(
                v["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("consumer instance name is invalid"),
                "{v}"
            );
        }
    }
}

#[tokio::test]
async fn the_base_uri_percent_encodes_its_group_and_instance() {
    // A group or instance name may hold characters a URL path cannot (a space, `?`, `#`,
    // `%`); the REST Proxy builds `base_uri` with JAX-RS's UriBuilder, which encodes them.
    let api = Api::new();
    let (status, _, v) = api
        .call(
            "POST",
            "/kafka/consumers/a%20b%25",
            Some(V2),
            None,
            Some(json!({"name": "x?y#z é"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["instance_id"], "x?y#z é");
    let base = v["base_uri"].as_str().unwrap();
    assert_eq!(
        base,
        "http://localhost:7070/kafka/consumers/a%20b%25/instances/x%3Fy%23z%20%C3%A9"
    );
    let path = base.strip_prefix("http://localhost:7070").unwrap();
    let (status, _, v) = api
        .call("GET", &format!("{path}/subscription"), None, None, None)
        .await;
    assert_eq!((status, v), (StatusCode::OK, json!({"topics": []})));
}

#[tokio::test]
async fn a_subscription_body_is_read_as_the_rest_proxy_reads_it() {
    // The REST Proxy subscribes to `topics` when the body has them (even beside a
    // `topic_pattern`), else to the pattern, else does nothing; KafkaConsumer.subscribe of an
    // empty list is unsubscribe(), which also ends a manual assignment.
    let api = Api::new();
    for topic in ["t", "u"] {
        let records = json!({"records": [{"value": 1}]});
        let (status, v) = api
            .post(&format!("/kafka/topics/{topic}"), JSON, records)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (status, v) = api
        .post("/kafka/consumers/g", V2, json!({"name": "c"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let base = "/kafka/consumers/g/instances/c";
    let path = format!("{base}/subscription");
    let subscribe = |body: Value| api.post(&path, V2, body);
    let subscription = || api.call("GET", &path, None, None, None);

    let (status, v) = subscribe(json!({"topics": ["t"], "topic_pattern": "u"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        subscription().await.2,
        json!({"topics": ["t"]}),
        "topics win"
    );

    let (status, v) = subscribe(json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        subscription().await.2,
        json!({"topics": ["t"]}),
        "a body with neither changes nothing"
    );

    let (status, v) = subscribe(json!({"topics": []})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        subscription().await.2,
        json!({"topics": []}),
        "unsubscribed"
    );
    let (_, _, a) = api
        .call("GET", &format!("{base}/assignments"), None, None, None)
        .await;
    assert_eq!(a, json!({"partitions": []}));

    // An empty list ends a manual assignment too, so the instance may subscribe again.
    let assignment = json!({"partitions": [{"topic": "u", "partition": 0}]});
    let (status, v) = api
        .post(&format!("{base}/assignments"), V2, assignment)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let (status, v) = subscribe(json!({"topics": []})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let (status, v) = subscribe(json!({"topic_pattern": "u"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(subscription().await.2, json!({"topics": ["u"]}));

    // The instance must exist whatever the body says.
    for body in [json!({}), json!({"topics": []})] {
        let nobody = "/kafka/consumers/g/instances/nobody/subscription";
        let (status, e) = api.post(nobody, V2, body.clone()).await;
        assert_eq!(
            (status, e["error_code"].as_u64()),
            (StatusCode::NOT_FOUND, Some(40403)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn binary_keys_and_values_are_decoded_as_guavas_base64_decodes_them() {
    // The REST Proxy decodes the binary format with Guava's BaseEncoding.base64(): trailing
    // `=` are optional and the unused bits of the last character are not checked.
    let api = Api::new();
    let records = json!({"records": [
        {"key": "YQ", "value": "Zm9vYg"},
        {"key": "YR==", "value": "Zm9vYmE="},
    ]});
    let (status, v) = api
        .post("/kafka/topics/b/partitions/0", BINARY, records)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["error_code"].is_null()),
        "{v}"
    );
    let stored = api.engine.log().read("b", 0, 0, 1000).unwrap();
    let pairs: Vec<_> = stored
        .iter()
        .map(|r| (r.key.as_deref(), r.value.as_deref()))
        .collect();
    assert_eq!(
        pairs,
        [
            (Some(&b"a"[..]), Some(&b"foob"[..])),
            (Some(&b"a"[..]), Some(&b"fooba"[..])),
        ]
    );
}

#[tokio::test]
async fn binary_data_that_is_not_base64_is_a_bad_request_naming_it() {
    // The REST Proxy's NoSchemaRecordSerializer throws BadRequestException, which its v2
    // mapper answers 400 with code 400 and "Bad Request: <detail>"; nothing is produced.
    let api = Api::new();
    let first = json!({"records": [{"value": "aGk="}]});
    let (status, _) = api
        .post("/kafka/topics/t/partitions/0", BINARY, first)
        .await;
    assert_eq!(status, StatusCode::OK);
    for (records, message) in [
        (
            json!([{"value": "aGk="}, {"value": "%%%"}]),
            r#"Bad Request: data="%%%" is not a valid base64 string."#,
        ),
        (
            json!([{"key": {"a": [1, 2]}, "value": "aGk="}]),
            r#"Bad Request: data={"a":[1,2]} is not a base64 string."#,
        ),
    ] {
        let body = json!({ "records": records });
        let (status, e) = api.post("/kafka/topics/t/partitions/0", BINARY, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e, json!({"error_code": 400, "message": message}));
    }
    let stored = api.engine.log().read("t", 0, 0, 1000).unwrap();
    assert_eq!(stored.len(), 1, "only the first request's record");
}

#[tokio::test]
async fn a_produce_of_no_records_is_a_validation_error_and_creates_nothing() {
    // The REST Proxy's v2 ProduceRequest reads absent records as an empty list and declares
    // them @NotEmpty, so both fail bean validation (422, code 422) before anything is sent.
    let api = Api::new();
    for (uri, body) in [
        ("/kafka/topics/fresh", json!({"records": []})),
        ("/kafka/topics/fresh/partitions/0", json!({"records": []})),
        ("/kafka/topics/fresh", json!({"value_schema_id": null})),
    ] {
        let (status, e) = api.post(uri, BINARY, body.clone()).await;
        assert_eq!(
            (status, e["error_code"].as_u64()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(422)),
            "{uri} {body}: {e}"
        );
        assert_eq!(e["message"], "records must not be empty");
    }
    let (status, _, e) = api
        .call("GET", "/kafka/topics/fresh", None, None, None)
        .await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40401)),
        "no topic was created"
    );
}

#[tokio::test]
async fn a_create_consumer_body_is_read_as_the_rest_proxy_reads_it() {
    // CreateConsumerInstanceRequest: an explicit `id` overrides `name` as the instance's
    // name, and `requestWaitMs` / `responseMinBytes` are aliases of
    // `consumer.request.timeout.ms` / `fetch.min.bytes`.
    let api = Api::new();
    let (status, v) = api
        .post(
            "/kafka/consumers/g",
            V2,
            json!({"id": "by-id", "name": "by-name"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["instance_id"], "by-id");
    assert_eq!(
        v["base_uri"],
        "http://localhost:7070/kafka/consumers/g/instances/by-id"
    );
    let (status, _, v) = api
        .call(
            "GET",
            "/kafka/consumers/g/instances/by-id/subscription",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The alias is checked as the setting is: at the limit and past it.
    for (name, wait, ok) in [("at-max", 30_000, true), ("past-max", 30_001, false)] {
        let body = json!({"name": name, "requestWaitMs": wait, "responseMinBytes": 1});
        let (status, v) = api.post("/kafka/consumers/g", V2, body).await;
        if ok {
            assert_eq!(status, StatusCode::OK, "{v}");
        } else {
            assert_eq!(
                (status, v["error_code"].as_u64()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(42204)),
                "{v}"
            );
        }
    }
}

#[tokio::test]
async fn auto_commit_enable_is_parsed_as_kafka_parses_a_boolean_setting() {
    // The REST Proxy passes auto.commit.enable to the consumer's enable.auto.commit, which
    // Kafka's ConfigDef parses trimmed and case-insensitively; anything else is a
    // ConfigException, answered 422/42204.
    let api = Api::new();
    let cases = [
        ("TRUE", Some(true)),
        (" False ", Some(false)),
        ("false", Some(false)),
        ("yes", None),
        ("", None),
    ];
    for (i, (value, want)) in cases.into_iter().enumerate() {
        let name = format!("c{i}");
        let body = json!({"name": name, "auto.commit.enable": value});
        let (status, v) = api.post("/kafka/consumers/g", V2, body).await;
        match want {
            Some(auto_commit) => {
                assert_eq!(status, StatusCode::OK, "{value:?}: {v}");
                let settings = api.engine.log().consumer_settings("g", &name).unwrap();
                assert_eq!(settings.auto_commit, auto_commit, "{value:?}");
            }
            None => assert_eq!(
                (status, v["error_code"].as_u64()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(42204)),
                "{value:?}: {v}"
            ),
        }
    }
}
