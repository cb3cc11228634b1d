//! Capability: the MongoDB Atlas Data API v1 surface under `/mongo/action/…` — every action,
//! the index and collection extensions, Extended JSON in and out chosen by Content-Type and
//! Accept, and the Data API's error bodies.
//!
//! Method: requests go through the axum router in process (no socket) with `tower::oneshot`,
//! over an engine on a temporary data directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use streamcache::config::Config;
use streamcache::engine::Engine;
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    _engine: Arc<Engine>,
}

fn api() -> Api {
    let engine = Arc::new(
        Engine::open(Config {
            ephemeral: true,
            ..Config::default()
        })
        .unwrap(),
    );
    Api {
        app: streamcache::api::router(engine.clone()),
        _engine: engine,
    }
}

impl Api {
    async fn call_with(
        &self,
        action: &str,
        body: Value,
        content_type: &str,
        accept: &str,
    ) -> (StatusCode, String, Value) {
        let req = Request::post(format!("/mongo/action/{action}"))
            .header("content-type", content_type)
            .header("accept", accept)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            ct,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn call(&self, action: &str, mut body: Value) -> (StatusCode, Value) {
        let m = body.as_object_mut().unwrap();
        m.entry("dataSource").or_insert(json!("mongodb-atlas"));
        m.entry("database").or_insert(json!("shop"));
        m.entry("collection").or_insert(json!("orders"));
        let (s, _, v) = self
            .call_with(action, body, "application/json", "application/json")
            .await;
        (s, v)
    }
}

#[tokio::test]
async fn crud_actions_answer_in_data_api_shapes() {
    let api = api();
    let (s, v) = api.call("insertOne", json!({"document": {"_id": 1, "customer": "c1", "total": 10.5, "at": {"$date": "2024-01-02T03:04:05.678Z"}}})).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"insertedId": 1})));
    let (s, v) = api
        .call(
            "insertOne",
            json!({"document": {"customer": "c2", "total": 20}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let oid = v["insertedId"].as_str().unwrap().to_owned();
    assert_eq!(
        oid.len(),
        24,
        "JSON responses give ObjectIds as hex strings"
    );
    let (_, v) = api
        .call(
            "insertMany",
            json!({"documents": [{"_id": 3, "total": 30}, {"_id": 4, "total": 40}]}),
        )
        .await;
    assert_eq!(v, json!({"insertedIds": [3, 4]}));
    let (_, v) = api
        .call(
            "findOne",
            json!({"filter": {"_id": 1}, "projection": {"customer": 1, "at": 1}}),
        )
        .await;
    assert_eq!(
        v,
        json!({"document": {"_id": 1, "customer": "c1", "at": "2024-01-02T03:04:05.678Z"}})
    );
    let (_, v) = api
        .call("findOne", json!({"filter": {"_id": {"$oid": oid}}}))
        .await;
    assert_eq!(v["document"]["customer"], "c2");
    let (_, v) = api.call("findOne", json!({"filter": {"_id": 99}})).await;
    assert_eq!(v, json!({"document": null}));
    let (_, v) = api.call("find", json!({"filter": {"total": {"$gte": 20}}, "sort": {"total": -1}, "limit": 2, "projection": {"_id": 0, "total": 1}})).await;
    assert_eq!(v, json!({"documents": [{"total": 40}, {"total": 30}]}));
    let (_, v) = api
        .call("find", json!({"sort": {"total": 1}, "skip": 3}))
        .await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 1);
    let (_, v) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 3}, "update": {"$inc": {"total": 1}}}),
        )
        .await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = api
        .call(
            "updateMany",
            json!({"filter": {"total": {"$gt": 0}}, "update": {"$set": {"seen": true}}}),
        )
        .await;
    assert_eq!(v, json!({"matchedCount": 4, "modifiedCount": 4}));
    let (_, v) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 7}, "update": {"$set": {"x": 1}}, "upsert": true}),
        )
        .await;
    assert_eq!(
        v,
        json!({"matchedCount": 0, "modifiedCount": 0, "upsertedId": 7})
    );
    let (_, v) = api
        .call(
            "replaceOne",
            json!({"filter": {"_id": 7}, "replacement": {"y": 2}}),
        )
        .await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = api.call("aggregate", json!({"pipeline": [{"$match": {"seen": true}}, {"$group": {"_id": null, "sum": {"$sum": "$total"}, "n": {"$sum": 1}}}]})).await;
    assert_eq!(
        v,
        json!({"documents": [{"_id": null, "sum": 101.5, "n": 4}]})
    );
    // arrayFilters (an extension of the Data API's update actions, as the driver's option).
    let (_, v) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 7}, "update": {"$set": {"tags": [1, 5, 9]}}}),
        )
        .await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 7}, "update": {"$mul": {"tags.$[t]": 10}}, "arrayFilters": [{"t": {"$gte": 5}}]}),
        )
        .await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = api
        .call(
            "findOne",
            json!({"filter": {"_id": 7}, "projection": {"_id": 0, "tags": 1}}),
        )
        .await;
    assert_eq!(v, json!({"document": {"tags": [1, 50, 90]}}));
    let (status, v) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 7}, "update": {"$set": {"tags.$[t]": 0}}, "arrayFilters": {"t": 1}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    // `update` as an array is a pipeline-style update; its stages read the document.
    let (_, v) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 7}, "update": [{"$set": {"n": {"$size": "$tags"}}}, {"$unset": "tags"}]}),
        )
        .await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = api
        .call(
            "findOne",
            json!({"filter": {"_id": 7}, "projection": {"_id": 0}}),
        )
        .await;
    assert_eq!(v, json!({"document": {"y": 2, "n": 3}}));
    let (status, v) = api
        .call(
            "updateMany",
            json!({"filter": {}, "update": [{"$match": {"n": 3}}]}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"], "$match is not allowed to be used within an update",
        "{v}"
    );
    let (_, v) = api.call("deleteOne", json!({"filter": {"_id": 7}})).await;
    assert_eq!(v, json!({"deletedCount": 1}));
    let (_, v) = api.call("deleteMany", json!({"filter": {}})).await;
    assert_eq!(v, json!({"deletedCount": 4}));
}

#[tokio::test]
async fn canonical_ejson_by_accept_and_content_type() {
    let api = api();
    let body = json!({"dataSource": "x", "database": "shop", "collection": "orders", "document": {"n": {"$numberLong": "5"}, "d": {"$numberDouble": "1.5"}}});
    let (s, ct, v) = api
        .call_with("insertOne", body, "application/ejson", "application/ejson")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/ejson");
    let oid = v["insertedId"]["$oid"].as_str().unwrap().to_owned();
    let body = json!({"dataSource": "x", "database": "shop", "collection": "orders", "filter": {"_id": {"$oid": oid}}, "projection": {"_id": 0}});
    let (_, _, v) = api
        .call_with(
            "findOne",
            body.clone(),
            "application/json",
            "application/ejson",
        )
        .await;
    assert_eq!(
        v,
        json!({"document": {"n": {"$numberLong": "5"}, "d": {"$numberDouble": "1.5"}}})
    );
    let (_, ct, v) = api
        .call_with("findOne", body, "application/json", "application/json")
        .await;
    assert_eq!(ct, "application/json");
    assert_eq!(v, json!({"document": {"n": 5, "d": 1.5}}));
}

#[tokio::test]
async fn errors_use_the_data_api_body() {
    let api = api();
    let (s, v) = api
        .call_with(
            "find",
            json!({"database": "shop", "collection": "c"}),
            "application/json",
            "application/json",
        )
        .await
        .into_pair();
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error_code"], "MissingParameter");
    assert_eq!(v["error"], "must specify dataSource");
    assert!(v["link"].is_string());
    let (s, v) = api.call("insertOne", json!({})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MissingParameter"))
    );
    api.call("insertOne", json!({"document": {"_id": 1}})).await;
    let (s, v) = api.call("insertOne", json!({"document": {"_id": 1}})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error_code"], "DuplicateKey");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("E11000 duplicate key error collection: shop.orders index: _id_")
    );
    let (s, v) = api.call("find", json!({"filter": {"$where": "1"}})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameter"))
    );
    let max = streamcache::api::FIND_LIMIT_MAX;
    let (s, _) = api.call("find", json!({"limit": max + 1})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.call("find", json!({"limit": max})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = api
        .call("updateOne", json!({"filter": {}, "update": {"plain": 1}}))
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameter"))
    );
    let (s, v) = api.call("nope", json!({})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
    let (s, _, _) = api
        .call_with("find", json!({}), "text/plain", "application/json")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = api
        .call("insertOne", json!({"database": "bad.name", "document": {}}))
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameter"))
    );
}

#[tokio::test]
async fn index_and_collection_extensions() {
    let api = api();
    api.call(
        "insertMany",
        json!({"documents": [{"_id": 1, "email": "a"}, {"_id": 2, "email": "b"}]}),
    )
    .await;
    let (s, v) = api
        .call(
            "createIndex",
            json!({"keys": {"email": 1}, "options": {"unique": true}}),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"name": "email_1"})));
    let (_, v) = api.call("listIndexes", json!({})).await;
    assert_eq!(
        v,
        json!({"indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}]})
    );
    let (s, v) = api
        .call("insertOne", json!({"document": {"email": "a"}}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        v["error"],
        "E11000 duplicate key error collection: shop.orders index: email_1 dup key: { email: \"a\" }"
    );
    let (_, v) = api.call("explain", json!({"filter": {"email": "b"}})).await;
    assert_eq!(
        v["queryPlanner"]["winningPlan"]["inputStage"]["indexName"],
        "email_1"
    );
    let (_, v) = api.call("dropIndex", json!({"name": "email_1"})).await;
    assert_eq!(v, json!({"dropped": "email_1"}));
    let (s, _) = api.call("dropIndex", json!({"name": "email_1"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    api.call("insertOne", json!({"collection": "users", "document": {}}))
        .await;
    let (_, mut v) = api.call("listCollections", json!({})).await;
    // `info` as MongoDB's: `readOnly` and the collection's UUID (binary subtype 4, in the
    // Data API's JSON form), a different one per collection.
    let mut uuids = Vec::new();
    for c in v["collections"].as_array_mut().unwrap() {
        let info = c.as_object_mut().unwrap().remove("info").unwrap();
        assert_eq!(info["readOnly"], false);
        assert_eq!(info["uuid"]["Subtype"], 4);
        assert_eq!(info["uuid"]["Data"].as_str().unwrap().len(), 24, "16 bytes");
        uuids.push(info["uuid"]["Data"].clone());
    }
    assert_ne!(uuids[0], uuids[1]);
    assert_eq!(
        v,
        json!({"collections": [{"name": "orders", "type": "collection"}, {"name": "users", "type": "collection"}]})
    );
    let (_, v) = api.call("drop", json!({"collection": "users"})).await;
    assert_eq!(v, json!({"dropped": true}));
    let (_, v) = api.call("drop", json!({"collection": "users"})).await;
    assert_eq!(v, json!({"dropped": false}));
}

trait IntoPair {
    fn into_pair(self) -> (StatusCode, Value);
}

impl IntoPair for (StatusCode, String, Value) {
    fn into_pair(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

/// A 400 KB dotted path (200,000 parts) once overflowed the stack and aborted the process;
/// every action that takes a path answers 400 instead, and the server keeps serving.
#[tokio::test]
async fn a_very_long_dotted_path_is_a_client_error() {
    let api = api();
    api.call("insertOne", json!({"document": {"_id": 1, "a": 1}}))
        .await;
    let path = vec!["a"; 200_000].join(".");
    let requests = [
        ("find", json!({"projection": {&path: 1}})),
        ("find", json!({"filter": {&path: 1}})),
        ("find", json!({"sort": {&path: 1}})),
        (
            "updateOne",
            json!({"filter": {"_id": 2}, "update": {"$set": {&path: 1}}, "upsert": true}),
        ),
        (
            "aggregate",
            json!({"pipeline": [{"$addFields": {&path: 1}}]}),
        ),
        ("createIndex", json!({"keys": {&path: 1}})),
    ];
    for (action, body) in requests {
        let (s, v) = api.call(action, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{action}: {v}");
        assert_eq!(v["error_code"], "InvalidParameter", "{action}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("FieldPath is too long"),
            "{action}: {v}"
        );
    }
    let (s, v) = api.call("find", json!({"filter": {"_id": 1}})).await;
    assert_eq!(
        (s, v["documents"][0]["a"].clone()),
        (StatusCode::OK, json!(1))
    );
}

/// `application/json` answers in the Data API's standard JSON (its "Data Formats" page),
/// `application/ejson` in canonical Extended JSON, for every BSON type a document may hold.
#[tokio::test]
async fn json_responses_flatten_types_as_the_data_api_does() {
    let api = api();
    let document = json!({
        "_id": {"$oid": "61dea7a3d9c1aeae9b4a4b48"},
        "int": {"$numberInt": "7"},
        "long": {"$numberLong": "2022"},
        "double": {"$numberDouble": "1.5"},
        "inf": {"$numberDouble": "Infinity"},
        "decimal": {"$numberDecimal": "9823.1297"},
        "date": {"$date": {"$numberLong": "1641954803067"}},
        "whole_second": {"$date": {"$numberLong": "1641954803000"}},
        "early": {"$date": {"$numberLong": "-62167219200000"}},
        "last_text": {"$date": {"$numberLong": "253402300799999"}},
        "beyond": {"$date": {"$numberLong": "253402300800000"}},
        "bin": {"$binary": {"base64": "AQID", "subType": "05"}},
        "ts": {"$timestamp": {"t": 1565545664, "i": 1}},
        "re": {"$regularExpression": {"pattern": "^a", "options": "i"}},
        "max": {"$maxKey": 1},
        "nested": [{"at": {"$date": {"$numberLong": "0"}}}, null, true, "s"],
    });
    let (s, _, _) = api
        .call_with(
            "insertOne",
            json!({"dataSource": "x", "database": "shop", "collection": "types", "document": document}),
            "application/ejson",
            "application/json",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let find = json!({"dataSource": "x", "database": "shop", "collection": "types"});
    let (_, ct, v) = api
        .call_with(
            "findOne",
            find.clone(),
            "application/json",
            "application/json",
        )
        .await;
    assert_eq!(ct, "application/json");
    assert_eq!(
        v["document"],
        json!({
            "_id": "61dea7a3d9c1aeae9b4a4b48",
            "int": 7,
            "long": 2022,
            "double": 1.5,
            "inf": {"$numberDouble": "Infinity"},
            "decimal": "9823.1297",
            "date": "2022-01-12T02:33:23.067Z",
            "whole_second": "2022-01-12T02:33:23.000Z",
            "early": "0000-01-01T00:00:00.000Z",
            "last_text": "9999-12-31T23:59:59.999Z",
            "beyond": {"$date": {"$numberLong": "253402300800000"}},
            "bin": {"Subtype": 5, "Data": "AQID"},
            "ts": {"T": 1565545664, "I": 1},
            "re": {"Pattern": "^a", "Options": "i"},
            "max": {"$maxKey": 1},
            "nested": [{"at": "1970-01-01T00:00:00.000Z"}, null, true, "s"],
        })
    );
    let (_, ct, v) = api
        .call_with("findOne", find, "application/json", "application/ejson")
        .await;
    assert_eq!(ct, "application/ejson");
    assert_eq!(v["document"], document, "canonical: every type kept");
}

/// The framework's own rejections under `/mongo` carry the Data API's error body too.
#[tokio::test]
async fn a_body_over_the_limit_and_a_wrong_method_answer_in_the_data_api_shape() {
    let api = api();
    let limit = usize::try_from(api._engine.config().http_body_bytes_max).unwrap();
    let big = json!({"dataSource": "x", "database": "shop", "collection": "big", "document": {"s": "x".repeat(limit)}});
    let (s, ct, v) = api
        .call_with("insertOne", big, "application/json", "application/json")
        .await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "application/json")
    );
    assert_eq!(v["error_code"], "RequestTooLarge", "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    let req = Request::get("/mongo/action/find")
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error_code"], "MethodNotAllowed", "{v}");
}

/// Without the right bearer token, `/mongo` and `/kafka` answer 401 in their own error
/// shapes; other surfaces in the generic one.
#[tokio::test]
async fn a_missing_or_wrong_token_is_refused_in_each_surfaces_shape() {
    let engine = Arc::new(
        Engine::open(Config {
            ephemeral: true,
            auth_token: Some("s3cret".into()),
            ..Config::default()
        })
        .unwrap(),
    );
    let app = streamcache::api::router(engine);
    let call = |method: &str, uri: &str, token: Option<&str>| {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(Body::from(
                r#"{"dataSource":"x","database":"d","collection":"c"}"#,
            ))
            .unwrap();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, ct, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (s, _, v) = call("POST", "/mongo/action/find", None).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("InvalidParameter"))
    );
    let (s, _, v) = call("POST", "/mongo/action/find", Some("wrong")).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("InvalidSession"))
    );
    let (s, _, v) = call("POST", "/mongo/action/find", Some("s3cret")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, ct, v) = call("GET", "/kafka/topics", None).await;
    assert_eq!(
        (s, ct.as_str(), v["error_code"].as_u64()),
        (
            StatusCode::UNAUTHORIZED,
            "application/vnd.kafka.v2+json",
            Some(40101)
        )
    );
    let (s, ct, v) = call("GET", "/kafka/v3/clusters", Some("wrong")).await;
    assert_eq!(
        (s, ct.as_str(), v["error_code"].as_u64()),
        (StatusCode::UNAUTHORIZED, "application/json", Some(40101))
    );
    let (s, _, v) = call("GET", "/kafkaesque", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
}

/// A Data API client sends its key in the `apiKey` header: with the configured token there,
/// `/mongo` answers; a wrong key is the Data API's `InvalidSession`; the header means nothing
/// outside `/mongo`.
#[tokio::test]
async fn the_data_api_key_header_carries_the_token_under_mongo() {
    let engine = Arc::new(
        Engine::open(Config {
            ephemeral: true,
            auth_token: Some("s3cret".into()),
            ..Config::default()
        })
        .unwrap(),
    );
    let app = streamcache::api::router(engine);
    let call = |uri: &str, key: &str| {
        let req = Request::post(uri)
            .header("content-type", "application/json")
            .header("apiKey", key)
            .body(Body::from(
                r#"{"dataSource":"x","database":"d","collection":"c"}"#,
            ))
            .unwrap();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (s, v) = call("/mongo/action/find", "s3cret").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call("/mongo/action/find", "wrong").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("InvalidSession"))
    );
    let (s, _) = call("/kafka/topics", "s3cret").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A path under `/mongo` that names no endpoint is a 404 in the Data API's error shape.
#[tokio::test]
async fn unknown_paths_under_mongo_answer_in_the_data_api_shape() {
    let api = api();
    for uri in ["/mongo/action", "/mongo/v1/action/find", "/mongo"] {
        let req = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let resp = api.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (status, v["error_code"].as_str()),
            (StatusCode::NOT_FOUND, Some("NotFound")),
            "{uri}: {v}"
        );
        assert!(
            v["error"].is_string() && v["link"].is_string(),
            "{uri}: {v}"
        );
    }
}

/// Inserts `document` into shop.orders, which must succeed.
async fn insert_ok(api: &Api, document: Value) {
    let (s, v) = api.call("insertOne", json!({"document": document})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Every NaN is `{"$numberDouble": "NaN"}` whatever its sign bit (x86 makes `inf - inf` a NaN
/// with it set), and a subnormal double is wrapped in canonical Extended JSON as every other
/// finite double is.
#[tokio::test]
async fn nan_and_subnormal_doubles_answer_in_extended_jsons_form() {
    let api = api();
    let document = json!({
        "_id": 1,
        "signed_nan": {"$numberDouble": "-NaN"},
        "inf": {"$numberDouble": "Infinity"},
        "tiny": {"$numberDouble": "5e-324"},
        "nested": [{"nan": {"$numberDouble": "-NaN"}}],
    });
    insert_ok(&api, document).await;
    let (s, _) = api
        .call(
            "updateOne",
            json!({"filter": {"_id": 1}, "update": {"$inc": {"inf": {"$numberDouble": "-Infinity"}}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let nan = json!({"$numberDouble": "NaN"});
    let (_, v) = api.call("findOne", json!({"filter": {"_id": 1}})).await;
    assert_eq!(v["document"]["signed_nan"], nan, "{v}");
    assert_eq!(v["document"]["inf"], nan, "inf - inf: {v}");
    assert_eq!(v["document"]["nested"][0]["nan"], nan, "{v}");
    assert_eq!(v["document"]["tiny"], json!(5e-324), "{v}");
    let find = json!({"dataSource": "x", "database": "shop", "collection": "orders"});
    let (_, ct, v) = api
        .call_with("findOne", find, "application/json", "application/ejson")
        .await;
    assert_eq!(ct, "application/ejson");
    assert_eq!(v["document"]["signed_nan"], nan, "{v}");
    assert_eq!(v["document"]["inf"], nan, "inf - inf: {v}");
    assert_eq!(v["document"]["nested"][0]["nan"], nan, "{v}");
    let tiny = v["document"]["tiny"]["$numberDouble"].as_str().unwrap();
    assert_eq!(tiny.parse::<f64>().unwrap(), 5e-324, "{v}");
}

/// Media types are case-insensitive: `Application/JSON` is a JSON body and
/// `Application/EJSON` in `Accept` asks for canonical Extended JSON.
#[tokio::test]
async fn content_type_and_accept_are_read_case_insensitively() {
    let api = api();
    let body = json!({"dataSource": "x", "database": "shop", "collection": "orders", "document": {"_id": 1, "n": 2}});
    let (s, _, v) = api
        .call_with("insertOne", body, "Application/JSON", "application/json")
        .await;
    assert_eq!((s, &v), (StatusCode::OK, &json!({"insertedId": 1})));
    let find = json!({"dataSource": "x", "database": "shop", "collection": "orders"});
    let (s, ct, v) = api
        .call_with("findOne", find, "APPLICATION/EJSON", "Application/EJSON")
        .await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/ejson"));
    assert_eq!(
        v,
        json!({"document": {"_id": {"$numberInt": "1"}, "n": {"$numberInt": "2"}}})
    );
}

/// A relaxed `$date` with digits past the millisecond is rounded down to its millisecond, as
/// the drivers' parsers take it, before 1970 too.
#[tokio::test]
async fn date_text_past_the_millisecond_rounds_down() {
    let api = api();
    let document = json!({
        "_id": 1,
        "before": {"$date": "1969-12-31T23:59:59.9995Z"},
        "after": {"$date": "1970-01-01T00:00:00.0005Z"},
        "offset": {"$date": "1960-06-01T12:00:00.123456-01:00"},
        "late": {"$date": "2020-01-01T00:00:00.1239999Z"},
        "nested": [{"at": {"$date": "1969-12-31T23:59:59.0001+00:00"}}],
    });
    insert_ok(&api, document).await;
    let (_, v) = api.call("findOne", json!({"filter": {"_id": 1}})).await;
    assert_eq!(
        v["document"],
        json!({
            "_id": 1,
            "before": "1969-12-31T23:59:59.999Z",
            "after": "1970-01-01T00:00:00.000Z",
            "offset": "1960-06-01T13:00:00.123Z",
            "late": "2020-01-01T00:00:00.123Z",
            "nested": [{"at": "1969-12-31T23:59:59.000Z"}],
        })
    );
}
