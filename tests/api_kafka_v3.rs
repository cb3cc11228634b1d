//! Capability: REST Proxy v3 under `/kafka/v3` — the one cluster with a stable id, topic
//! create/list/get/delete with the REST Proxy's shapes and codes, and streaming produce (several
//! JSON objects in one body; one result per object, in order, each written as it completes).
//!
//! Method: requests through the axum router with `oneshot`; the streaming tests feed the request
//! body from a channel (reading each result frame before sending the next object, or cutting
//! objects into tiny chunks). The body's framing is also replayed over the committed fuzz corpus
//! `fuzz/corpus/json_stream/`, every prefix of each file, checked against serde_json.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use streamcache::engine::Engine;
use tower::ServiceExt as _;

fn api() -> (axum::Router, Arc<Engine>) {
    let engine = Arc::new(Engine::temporary().unwrap());
    (streamcache::api::router(engine.clone()), engine)
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, String, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost:7070")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, v)
}

/// Splits a streaming reply into its JSON objects.
fn lines(v: &Value) -> Vec<Value> {
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    assert!(
        text.ends_with("\r\n"),
        "each result ends with CRLF: {text:?}"
    );
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn clusters_and_topics() {
    let (router, _engine) = api();
    let (status, ct, list) = call(&router, "GET", "/kafka/v3/clusters", None).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    assert_eq!(list["kind"], "KafkaClusterList");
    assert_eq!(list["data"][0]["cluster_id"], "streamcache");
    assert_eq!(
        list["data"][0]["metadata"]["resource_name"],
        "crn:///kafka=streamcache"
    );
    let (status, _, _) = call(&router, "GET", "/kafka/v3/clusters/other/topics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let base = "/kafka/v3/clusters/streamcache/topics";
    let (status, _, e) = call(&router, "POST", base, None).await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(422))
    );
    let body = r#"{"topic_name":"orders","partitions_count":2,"configs":[{"name":"retention.ms","value":"1000"}]}"#;
    let (status, _, t) = call(&router, "POST", base, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["kind"], "KafkaTopic");
    assert_eq!(t["topic_name"], "orders");
    assert_eq!(t["partitions_count"], 2);
    assert_eq!(
        t["metadata"]["resource_name"],
        "crn:///kafka=streamcache/topic=orders"
    );
    assert_eq!(
        t["metadata"]["self"],
        "http://localhost:7070/kafka/v3/clusters/streamcache/topics/orders"
    );
    let (status, _, e) = call(&router, "POST", base, Some(body)).await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(40002))
    );
    let (status, _, _) = call(
        &router,
        "POST",
        base,
        Some(r#"{"topic_name":"dry","validate_only":true}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, list) = call(&router, "GET", base, None).await;
    assert_eq!(list["kind"], "KafkaTopicList");
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "validate_only created nothing"
    );
    let (status, _, _) = call(&router, "GET", &format!("{base}/orders"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&router, "DELETE", &format!("{base}/orders"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, ct, e) = call(&router, "GET", &format!("{base}/orders"), None).await;
    assert_eq!(
        (status, ct.as_str(), e["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, "application/json", Some(40401))
    );
}

#[tokio::test]
async fn streaming_produce_answers_each_object_in_order() {
    let (router, engine) = api();
    let body = concat!(
        r#"{"partition_id":1,"key":{"type":"STRING","data":"k"},"value":{"type":"JSON","data":{"n":1}},"timestamp":"2026-01-01T00:00:00.000Z"}"#,
        "\n",
        r#"{"value":{"type":"AVRO","data":1}}"#,
        r#"{"partition_id":-1,"value":{"type":"STRING","data":"x"}}"#,
        r#"  {"partition_id":1,"value":{"type":"BINARY","data":"aGk="},"headers":[{"name":"h","value":"dg=="}]}"#,
    );
    let (status, ct, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/s/records",
        Some(body),
    )
    .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    let results = lines(&v);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["error_code"], 200);
    assert_eq!(results[0]["cluster_id"], "streamcache");
    assert_eq!(results[0]["topic_name"], "s");
    assert_eq!(
        (
            results[0]["partition_id"].as_u64(),
            results[0]["offset"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(results[0]["timestamp"], "2026-01-01T00:00:00.000Z");
    assert_eq!(results[0]["key"], json!({"type": "STRING", "size": 1}));
    assert_eq!(results[0]["value"], json!({"type": "JSON", "size": 7}));
    assert_eq!(results[1]["error_code"], 422);
    assert_eq!(results[2]["error_code"], 40402);
    assert_eq!(
        (
            results[3]["error_code"].as_u64(),
            results[3]["offset"].as_u64()
        ),
        (Some(200), Some(1))
    );
    let stored = engine.log().read("s", 1, 0, 1000).unwrap();
    assert_eq!(stored[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(stored[1].value.as_deref(), Some(&b"hi"[..]));
    assert_eq!(stored[1].headers[0].value.as_deref(), Some(&b"v"[..]));
}

/// A streaming produce request to `topic` with `body`.
fn records_request(topic: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!(
            "/kafka/v3/clusters/streamcache/topics/{topic}/records"
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

/// A body that fails partway ends the stream with an error line after the results of the
/// objects before it; the half-read object is not produced.
#[tokio::test]
async fn a_body_that_fails_partway_ends_the_stream_with_an_error_line() {
    let (router, engine) = api();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(
            br#"{"partition_id":0,"value":{"type":"STRING","data":"whole"}}{"partition_id":0,"val"#,
        )),
        Err(std::io::Error::other("connection reset")),
    ];
    let req = records_request("cut", Body::from_stream(futures::stream::iter(chunks)));
    let resp = router.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    let results = lines(&Value::String(String::from_utf8(text.to_vec()).unwrap()));
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0]["error_code"], 200);
    assert_eq!(results[1]["error_code"], 400);
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("the request body ended with an error"),
        "{results:?}"
    );
    assert_eq!(engine.log().read("cut", 0, 0, 1 << 20).unwrap().len(), 1);
}

#[tokio::test]
async fn each_result_is_written_before_the_next_object_arrives() {
    let (router, _engine) = api();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let req = records_request("live", body);
    tx.send(Ok(Bytes::from_static(
        br#"{"partition_id":0,"value":{"type":"STRING","data":"first"}}"#,
    )))
    .await
    .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first: Value = serde_json::from_slice(first.strip_suffix(b"\r\n").unwrap()).unwrap();
    assert_eq!(
        (first["error_code"].as_u64(), first["offset"].as_u64()),
        (Some(200), Some(0))
    );
    // Half an object, then the rest: the result comes only once it is complete.
    tx.send(Ok(Bytes::from_static(br#"{"partition_id":0,"value":"#)))
        .await
        .unwrap();
    tx.send(Ok(Bytes::from_static(
        br#"{"type":"STRING","data":"second"}}"#,
    )))
    .await
    .unwrap();
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let second: Value = serde_json::from_slice(second.strip_suffix(b"\r\n").unwrap()).unwrap();
    assert_eq!(second["offset"], 1);
    tx.send(Ok(Bytes::from_static(b"{ not json")))
        .await
        .unwrap();
    let bad = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let bad: Value = serde_json::from_slice(bad.strip_suffix(b"\r\n").unwrap()).unwrap();
    assert_eq!(
        bad["error_code"], 400,
        "malformed JSON ends the stream with a 400"
    );
    assert!(
        body.frame().await.is_none(),
        "the stream ends after a malformed object"
    );
}

/// A streamed object whose STRING value is `data`, padded with spaces inside the object to
/// exactly `bytes` bytes.
fn padded_object(data: &str, bytes: usize) -> String {
    let head = format!(r#"{{"value":{{"type":"STRING","data":"{data}"}}"#);
    assert!(head.len() < bytes);
    format!("{head}{}}}", " ".repeat(bytes - head.len() - 1))
}

#[tokio::test]
async fn an_oversized_record_fails_alone_with_kafkas_error_code() {
    let (router, engine) = api();
    engine
        .log()
        .create_topic(
            "big",
            Some(1),
            &[("max.message.bytes".into(), "100".into())],
            false,
        )
        .unwrap();
    let fits = "x".repeat(100);
    let over = "y".repeat(101);
    let body = [fits.as_str(), over.as_str(), "after"]
        .map(|d| format!(r#"{{"value":{{"type":"STRING","data":"{d}"}}}}"#))
        .concat();
    let (status, _, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/big/records",
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = lines(&v);
    assert_eq!(results.len(), 3);
    assert_eq!(
        (
            results[0]["error_code"].as_u64(),
            results[0]["offset"].as_u64()
        ),
        (Some(200), Some(0)),
        "a record of exactly max.message.bytes is stored"
    );
    // Kafka's RecordTooLargeException is a non-retriable KafkaException: the REST Proxy's
    // mapper answers it with 50002, as v2 does.
    assert_eq!(results[1]["error_code"], 50002, "{}", results[1]);
    assert!(results[1].get("offset").is_none());
    assert_eq!(
        (
            results[2]["error_code"].as_u64(),
            results[2]["offset"].as_u64()
        ),
        (Some(200), Some(1)),
        "the records after it are stored"
    );
    let stored = engine.log().read("big", 0, 0, 1 << 20).unwrap();
    let values: Vec<_> = stored.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, [fits.as_bytes(), b"after"]);
}

#[tokio::test]
async fn a_streamed_object_of_stream_object_bytes_max_is_accepted_and_one_more_ends_the_stream() {
    let max = streamcache::api::KAFKA_STREAM_OBJECT_BYTES_MAX;
    let (router, _engine) = api();
    // Both objects arrive in one body chunk: only the bytes of each object count, not what
    // else the chunk carries.
    let body = format!(
        "{}\r\n{}",
        padded_object("at-max", max),
        padded_object("next", 64)
    );
    let (status, _, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/s/records",
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = lines(&v);
    let codes: Vec<_> = results.iter().map(|r| r["error_code"].clone()).collect();
    assert_eq!(codes, [json!(200), json!(200)]);
    // One byte more: refused although it arrived whole, and the stream ends there.
    let body = format!(
        "{}{}{}",
        padded_object("first", 64),
        padded_object("over", max + 1),
        padded_object("never", 64)
    );
    let (_, _, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/s/records",
        Some(&body),
    )
    .await;
    let results = lines(&v);
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0]["error_code"], 200);
    assert_eq!(results[1]["error_code"], 400);
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .contains(&max.to_string())
    );
}

#[tokio::test]
async fn malformed_json_after_records_in_one_chunk_answers_after_their_results() {
    let (router, _engine) = api();
    let body = format!(
        "{}{} {{ not json",
        padded_object("a", 64),
        padded_object("b", 64)
    );
    let (_, _, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/s/records",
        Some(&body),
    )
    .await;
    let codes: Vec<_> = lines(&v).iter().map(|r| r["error_code"].clone()).collect();
    assert_eq!(
        codes,
        [json!(200), json!(200), json!(400)],
        "one result per object, in input order, the error last"
    );
}

/// Posts `chunks` as the body of a streaming produce to `topic`, one body frame each, and
/// returns the reply's result objects.
async fn produce_in_chunks(router: &axum::Router, topic: &str, chunks: Vec<Bytes>) -> Vec<Value> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let req = records_request(topic, body);
    let sender = tokio::spawn(async move {
        for c in chunks {
            if tx.send(Ok(c)).await.is_err() {
                break;
            }
        }
    });
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    sender.await.unwrap();
    lines(&Value::String(String::from_utf8(bytes.to_vec()).unwrap()))
}

#[tokio::test]
async fn objects_cut_into_tiny_chunks_are_produced_whole() {
    let (router, engine) = api();
    let big = "z".repeat(256 * 1024);
    let first = format!(r#"{{"partition_id":0,"value":{{"type":"STRING","data":"{big}"}}}}"#);
    // Brackets, quotes and escapes inside strings, whitespace between tokens.
    let second = r#" { "partition_id" : 0 , "key" : {"type":"STRING","data":"k}\"]"},
        "value":{"type":"JSON","data":[1, -2.5e1, true, null, {"a":"\u00e9\\"}]}}"#;
    let mut chunks: Vec<Bytes> = first
        .as_bytes()
        .chunks(100)
        .map(Bytes::copy_from_slice)
        .collect();
    chunks.extend(second.bytes().map(|b| Bytes::copy_from_slice(&[b])));
    let results = produce_in_chunks(&router, "tiny", chunks).await;
    let placed: Vec<_> = results
        .iter()
        .map(|r| (r["error_code"].clone(), r["offset"].clone()))
        .collect();
    assert_eq!(placed, [(json!(200), json!(0)), (json!(200), json!(1))]);
    assert_eq!(
        results[0]["value"],
        json!({"type": "STRING", "size": big.len()})
    );
    let stored = engine.log().read("tiny", 0, 0, 1 << 20).unwrap();
    assert_eq!(stored[0].value.as_deref(), Some(big.as_bytes()));
    assert_eq!(stored[1].key.as_deref(), Some(&br#"k}"]"#[..]));
    assert_eq!(
        stored[1].value.as_deref(),
        Some(r#"[1,-25.0,true,null,{"a":"é\\"}]"#.as_bytes())
    );
}

#[tokio::test]
async fn nesting_to_stream_object_depth_max_is_accepted_and_one_level_more_ends_the_stream() {
    let max = streamcache::api::KAFKA_STREAM_OBJECT_DEPTH_MAX;
    let (router, _engine) = api();
    // The record object and its value object are two levels; the data's arrays the rest.
    let record = |depth: usize| {
        let arrays = depth - 2;
        format!(
            r#"{{"value":{{"type":"JSON","data":{}{}}}}}"#,
            "[".repeat(arrays),
            "]".repeat(arrays)
        )
    };
    let body = format!("{}{}", record(max), record(3));
    let chunks = body
        .as_bytes()
        .chunks(7)
        .map(Bytes::copy_from_slice)
        .collect();
    let codes: Vec<_> = produce_in_chunks(&router, "deep", chunks)
        .await
        .iter()
        .map(|r| r["error_code"].clone())
        .collect();
    assert_eq!(codes, [json!(200), json!(200)]);
    let body = format!("{}{}", record(max + 1), record(3));
    let chunks = body
        .as_bytes()
        .chunks(7)
        .map(Bytes::copy_from_slice)
        .collect();
    let results = produce_in_chunks(&router, "deep", chunks).await;
    assert_eq!(
        results.len(),
        1,
        "the stream ends at the first bracket too deep"
    );
    assert_eq!(results[0]["error_code"], 400);
}

#[tokio::test]
async fn a_key_or_value_without_type_needs_a_schema_registry() {
    // Confluent's ProduceAction asks its SchemaManager for the subject's latest schema when a
    // key or value has no `type`; with no schema registry that is SchemaManagerThrowing's
    // 42206, answered in the record's slot as error_code 422 — the same as a schema format.
    let (router, engine) = api();
    let body = concat!(
        r#"{"value":{"data":"no type"}}"#,
        r#"{"key":{"data":"k"},"value":{"type":"STRING","data":"v"}}"#,
        r#"{"value":{"type":null,"data":1}}"#,
        r#"{"value":{"data":null}}"#,
        r#"{"value":{"type":"AVRO","data":null}}"#,
        r#"{"partition_id":0,"key":null,"value":{"type":"STRING","data":"stored"}}"#,
        r#"{"partition_id":0}"#,
    );
    let (status, _, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/untyped/records",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = lines(&v);
    let codes: Vec<_> = results.iter().map(|r| r["error_code"].clone()).collect();
    assert_eq!(
        codes,
        [422, 422, 422, 422, 422, 200, 200].map(|c| json!(c)),
        "{results:?}"
    );
    assert_eq!(
        results[0]["message"],
        "Error: 42206 : Payload error. Schema Registry must be configured when using schemas."
    );
    assert_eq!(results[4]["message"], results[0]["message"]);
    // Only the typed record and the empty one (null key and value) are stored.
    assert_eq!(
        (results[5]["offset"].as_u64(), results[6]["offset"].as_u64()),
        (Some(0), Some(1))
    );
    // The REST Proxy leaves the absent key and value out of the result.
    let fields = results[6].as_object().unwrap();
    assert!(
        !fields.contains_key("key") && !fields.contains_key("value"),
        "{fields:?}"
    );
    assert_eq!(results[5]["value"]["type"], "STRING", "{:?}", results[5]);
    let stored = engine.log().read("untyped", 0, 0, 1 << 20).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].value.as_deref(), Some(&b"stored"[..]));
    assert_eq!(
        (stored[1].key.clone(), stored[1].value.clone()),
        (None, None)
    );
}

#[test]
fn json_stream_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/json_stream");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        // Every prefix too: a body may end anywhere.
        for cut in 0..=data.len() {
            streamcache::api::fuzz_kafka_json_stream(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} files");
}

#[tokio::test]
async fn the_partitions_replicas_configs_and_broker_a_topic_links_to_are_served() {
    let (router, _engine) = api();
    let base = "/kafka/v3/clusters/streamcache";
    let body = r#"{"topic_name":"t","partitions_count":2,"configs":[{"name":"retention.ms","value":"1000"}]}"#;
    let (status, _, t) = call(&router, "POST", &format!("{base}/topics"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let host = "http://localhost:7070";
    let (status, _, parts) =
        call(&router, "GET", &format!("{base}/topics/t/partitions"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        parts["metadata"]["self"].as_str(),
        t["partitions"]["related"].as_str(),
        "the topic's link is the list's own address"
    );
    assert_eq!(parts["kind"], "KafkaPartitionList");
    let ids: Vec<u64> = parts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partition_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1]);
    let (status, _, p1) = call(
        &router,
        "GET",
        &format!("{base}/topics/t/partitions/1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p1, parts["data"][1]);
    assert_eq!(
        p1["metadata"]["resource_name"],
        "crn:///kafka=streamcache/topic=t/partition=1"
    );
    for missing in ["2", "-1"] {
        let (status, ct, e) = call(
            &router,
            "GET",
            &format!("{base}/topics/t/partitions/{missing}"),
            None,
        )
        .await;
        assert_eq!(
            (status, ct.as_str(), e["error_code"].as_u64()),
            (StatusCode::NOT_FOUND, "application/json", Some(40402)),
            "{missing}"
        );
    }
    let replicas_url = p1["replicas"]["related"]
        .as_str()
        .unwrap()
        .strip_prefix(host)
        .unwrap();
    let (status, _, replicas) = call(&router, "GET", replicas_url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replicas["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            replicas["data"][0]["broker_id"].as_u64(),
            replicas["data"][0]["is_leader"].as_bool()
        ),
        (Some(0), Some(true))
    );
    let (status, _, configs) =
        call(&router, "GET", &format!("{base}/topics/t/configs"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        configs["metadata"]["self"].as_str(),
        t["configs"]["related"].as_str()
    );
    let by_name = |name: &str| {
        configs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    let retention = by_name("retention.ms");
    assert_eq!(
        (
            retention["value"].as_str(),
            retention["is_default"].as_bool(),
            retention["source"].as_str()
        ),
        (Some("1000"), Some(false), Some("DYNAMIC_TOPIC_CONFIG"))
    );
    let segment = by_name("segment.bytes");
    assert_eq!(
        (segment["is_default"].as_bool(), segment["source"].as_str()),
        (Some(true), Some("DEFAULT_CONFIG"))
    );
    let (status, _, brokers) = call(&router, "GET", &format!("{base}/brokers"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(brokers["data"][0]["broker_id"], 0);
    let (_, _, cluster) = call(&router, "GET", base, None).await;
    let controller = cluster["controller"]["related"]
        .as_str()
        .unwrap()
        .strip_prefix(host)
        .unwrap();
    let (status, _, broker) = call(&router, "GET", controller, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(broker, brokers["data"][0]);
    let (status, _, e) = call(&router, "GET", &format!("{base}/brokers/1"), None).await;
    assert_eq!(
        (status, e["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
}

#[tokio::test]
async fn a_replication_factor_one_broker_cannot_place_is_refused() {
    let (router, engine) = api();
    let base = "/kafka/v3/clusters/streamcache/topics";
    for (factor, created) in [(-1, true), (1, true), (0, false), (2, false), (3, false)] {
        let name = format!("rf{}", factor + 1);
        let body = format!(r#"{{"topic_name":"{name}","replication_factor":{factor}}}"#);
        let (status, _, e) = call(&router, "POST", base, Some(&body)).await;
        if created {
            assert_eq!(status, StatusCode::CREATED, "{factor}: {e}");
            assert_eq!(e["replication_factor"], 1);
        } else {
            assert_eq!(
                (status, e["error_code"].as_u64()),
                (StatusCode::BAD_REQUEST, Some(40002)),
                "{factor}"
            );
            assert!(
                engine.log().topic(&name).is_err(),
                "{factor}: nothing created"
            );
        }
    }
    let (_, _, e) = call(
        &router,
        "POST",
        base,
        Some(r#"{"topic_name":"x","replication_factor":3}"#),
    )
    .await;
    assert_eq!(
        e["message"],
        "Replication factor: 3 larger than available brokers: 1."
    );
}

/// `records:batch`: 207 with each entry's result under its id, successes and failures apart
/// (an absent key left out, as the REST Proxy does), and the records in the log.
#[tokio::test]
async fn a_batch_answers_each_entry_under_its_id() {
    let (router, engine) = api();
    let body = json!({"entries": [
        {"id": "a-1", "partition_id": 0, "key": {"type": "STRING", "data": "k"},
         "value": {"type": "JSON", "data": {"n": 1}}, "timestamp": "2026-01-01T00:00:00.000Z"},
        {"id": "b_2", "partition_id": -1, "value": {"type": "STRING", "data": "x"}},
        {"id": "C3", "partition_id": 0, "value": {"type": "BINARY", "data": "aGk="}},
    ]});
    let (status, ct, v) = call(
        &router,
        "POST",
        "/kafka/v3/clusters/streamcache/topics/b/records:batch",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::MULTI_STATUS, "application/json")
    );
    assert_eq!(
        v["successes"],
        json!([
            {"id": "a-1", "cluster_id": "streamcache", "topic_name": "b", "partition_id": 0,
             "offset": 0, "timestamp": "2026-01-01T00:00:00.000Z",
             "key": {"type": "STRING", "size": 1}, "value": {"type": "JSON", "size": 7}},
            {"id": "C3", "cluster_id": "streamcache", "topic_name": "b", "partition_id": 0,
             "offset": 1, "timestamp": v["successes"][1]["timestamp"],
             "value": {"type": "BINARY", "size": 2}},
        ])
    );
    assert_eq!(v["failures"][0]["id"], "b_2");
    assert_eq!(v["failures"][0]["error_code"], 40402);
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(1));
    let stored = engine.log().read("b", 0, 0, 1000).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].value.as_deref(), Some(&b"hi"[..]));
}

/// A batch of `KAFKA_BATCH_ENTRIES_MAX` entries with ids of `KAFKA_BATCH_ID_CHARS_MAX`
/// characters is produced; one entry more, one character more, a character outside
/// `[0-9a-zA-Z_-]`, a number for an id, a repeated id, no entries or no body refuse the whole
/// request with 422/42208 and the REST Proxy's text, and produce nothing.
#[tokio::test]
async fn a_batch_is_refused_whole_past_its_limits() {
    let max = streamcache::api::KAFKA_BATCH_ENTRIES_MAX;
    let id_max = streamcache::api::KAFKA_BATCH_ID_CHARS_MAX;
    let (router, engine) = api();
    let entry = |id: Value| json!({"id": id, "value": {"type": "STRING", "data": "x"}});
    let batch = |ids: Vec<Value>| {
        json!({"entries": ids.into_iter().map(entry).collect::<Vec<_>>()}).to_string()
    };
    let post = |body: Option<String>| {
        let router = router.clone();
        async move {
            call(
                &router,
                "POST",
                "/kafka/v3/clusters/streamcache/topics/lim/records:batch",
                body.as_deref(),
            )
            .await
        }
    };
    let long = |n: usize| json!("i".repeat(n));
    let ids = |n: usize| (0..n).map(|i| json!(format!("e{i}"))).collect::<Vec<_>>();
    let refused = [
        (Some(batch(ids(max + 1))), "Too many entries in batch."),
        (
            Some(batch(vec![long(id_max + 1)])),
            "Batch entry identifier is not a valid string.",
        ),
        (
            Some(batch(vec![json!("a b")])),
            "Batch entry identifier is not a valid string.",
        ),
        (
            Some(batch(vec![json!("")])),
            "Batch entry identifier is not a valid string.",
        ),
        (
            Some(batch(vec![json!(7)])),
            "Batch entry identifier is not a valid string.",
        ),
        (
            Some(batch(vec![json!("x"), json!("x")])),
            "Batch entry IDs are not distinct.",
        ),
        (Some(batch(vec![])), "Empty batch."),
        (Some("{}".to_owned()), "Empty batch."),
        (None, "Request body is empty. Data is required."),
    ];
    for (body, message) in refused {
        let (status, _, v) = post(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
        assert_eq!(
            v,
            json!({"error_code": 42208, "message": message}),
            "{body:?}"
        );
    }
    // Nothing was produced (the topic may not even exist).
    let produced = engine.log().read("lim", 0, 0, 10).map_or(0, |r| r.len());
    assert_eq!(produced, 0);

    let mut at_max = ids(max - 1);
    at_max.push(long(id_max));
    let (status, _, v) = post(Some(batch(at_max))).await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(v["successes"].as_array().map(Vec::len), Some(max));
    assert_eq!(v["successes"][max - 1]["id"], long(id_max));
    assert_eq!(v["failures"], json!([]));
}

#[tokio::test]
async fn binary_data_is_decoded_as_guavas_base64_decodes_it() {
    // The REST Proxy decodes BINARY data with Guava's BaseEncoding.base64(): trailing `=` are
    // optional (any number is trimmed) and the unused bits of the last character are not
    // checked; a length of 1 mod 4 after trimming, or `=` inside the text, is refused (400).
    let (router, engine) = api();
    let cases: [(&str, Option<&[u8]>); 8] = [
        ("Zm9vYg==", Some(b"foob")),
        ("Zm9vYg", Some(b"foob")),
        ("Zm9vYmE", Some(b"fooba")),
        ("YQ=", Some(b"a")),
        ("YR==", Some(b"a")),
        ("", Some(b"")),
        ("fooba", None),
        ("Zm9v=Yg", None),
    ];
    let body: String = cases
        .iter()
        .map(|(data, _)| {
            json!({"partition_id": 0, "value": {"type": "BINARY", "data": data}}).to_string()
        })
        .collect();
    let results = produce_in_chunks(&router, "b", vec![Bytes::from(body)]).await;
    assert_eq!(results.len(), cases.len(), "{results:?}");
    let stored = engine.log().read("b", 0, 0, 1 << 20).unwrap();
    let mut next = stored.iter();
    for ((data, want), result) in cases.iter().zip(&results) {
        match want {
            Some(bytes) => {
                assert_eq!(result["error_code"], 200, "{data:?}: {result}");
                assert_eq!(result["value"]["size"], bytes.len(), "{data:?}");
                let record = next.next().unwrap();
                assert_eq!(record.value.as_deref(), Some(*bytes), "{data:?}");
            }
            None => assert_eq!(result["error_code"], 400, "{data:?}: {result}"),
        }
    }
    assert!(next.next().is_none());
}

#[tokio::test]
async fn a_partitions_count_of_minus_one_takes_the_default_as_kafka_does() {
    // The REST Proxy hands partitions_count to Kafka's NewTopic as given; since KIP-464 a
    // CreateTopics request with -1 partitions takes the broker's default (num.partitions).
    let (router, _engine) = api();
    let base = "/kafka/v3/clusters/streamcache/topics";
    let (status, _, plain) = call(&router, "POST", base, Some(r#"{"topic_name":"plain"}"#)).await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    let body = r#"{"topic_name":"minus","partitions_count":-1,"replication_factor":-1}"#;
    let (status, _, t) = call(&router, "POST", base, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["partitions_count"], plain["partitions_count"]);
    for bad in [0, -2] {
        let body = format!(r#"{{"topic_name":"bad","partitions_count":{bad}}}"#);
        let (status, _, e) = call(&router, "POST", base, Some(&body)).await;
        assert_eq!(
            (status, e["error_code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(40002)),
            "{bad}: {e}"
        );
    }
}

#[tokio::test]
async fn a_topic_name_kafka_refuses_is_an_invalid_payload() {
    // The REST Proxy checks the name with Kafka's Topic.validate before creating and refuses
    // it, as an empty body, with Errors.invalidPayloadException: 422, code 422, "Error: 42206 :
    // Payload error. …".
    let (router, _engine) = api();
    let base = "/kafka/v3/clusters/streamcache/topics";
    let at_max = "n".repeat(249);
    let (status, _, t) = call(
        &router,
        "POST",
        base,
        Some(&json!({"topic_name": at_max}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    for name in [
        "n".repeat(250),
        "bad name".to_owned(),
        "..".to_owned(),
        String::new(),
    ] {
        let body = json!({"topic_name": name}).to_string();
        let (status, _, e) = call(&router, "POST", base, Some(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {e}");
        assert_eq!(
            e,
            json!({"error_code": 422, "message": "Error: 42206 : Payload error. Invalid topic name."}),
            "{name:?}"
        );
    }
    let (status, _, e) = call(&router, "POST", base, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        e,
        json!({"error_code": 422, "message": "Error: 42206 : Payload error. Request body is empty. Data is required."})
    );
}

#[tokio::test]
async fn replicas_assignments_give_the_partition_count() {
    // The REST Proxy creates a topic with replicas_assignments as Kafka's NewTopic(name,
    // assignments): one partition per entry (partitions_count and replication_factor are then
    // not used), ids 0-based and consecutive, every replica a broker that exists (here 0).
    let (router, _engine) = api();
    let base = "/kafka/v3/clusters/streamcache/topics";
    let body = json!({
        "topic_name": "ra",
        "partitions_count": 1,
        "replication_factor": 3,
        "replicas_assignments": {"0": [0], "1": [0], "2": [0]},
    });
    let (status, _, t) = call(&router, "POST", base, Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["partitions_count"], 3);
    let (_, _, t) = call(&router, "GET", &format!("{base}/ra"), None).await;
    assert_eq!(t["partitions_count"], 3);
    for assignments in [
        json!({"1": [0]}),
        json!({"0": [0], "2": [0]}),
        json!({"0": [1]}),
        json!({"0": [0, 0]}),
        json!({"0": []}),
    ] {
        let body = json!({"topic_name": "bad", "replicas_assignments": assignments});
        let (status, _, e) = call(&router, "POST", base, Some(&body.to_string())).await;
        assert_eq!(
            (status, e["error_code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(40002)),
            "{assignments}: {e}"
        );
    }
    let (status, _, _) = call(&router, "GET", &format!("{base}/bad"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
