//! Capability: REST Proxy v3 under `/kafka/v3` — the one cluster with a stable id, topic
//! create/list/get/delete with the REST Proxy's shapes and codes, and streaming produce (several
//! JSON objects in one body; one result per object, in order, each written as it completes).
//!
//! Method: requests through the axum router with `oneshot`; the streaming test feeds the request
//! body from a channel and reads each result frame before sending the next object.

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

#[tokio::test]
async fn each_result_is_written_before_the_next_object_arrives() {
    let (router, _engine) = api();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let req = Request::builder()
        .method("POST")
        .uri("/kafka/v3/clusters/streamcache/topics/live/records")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    tx.send(Ok(Bytes::from_static(
        br#"{"partition_id":0,"value":{"data":"first"}}"#,
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
    tx.send(Ok(Bytes::from_static(br#"{"data":"second"}}"#)))
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
