//! Capability: `insertMany` follows MongoDB: `ordered: true` (the default) inserts documents
//! up to the first failing one and reports it; `ordered: false` inserts every valid document
//! and reports each failure — with its position, code 11000 for a duplicate key, and the
//! `_id`s that made it — in the engine and on the Data API.
//!
//! Method: a unique index and an existing document set up duplicates at known positions;
//! the results and the stored documents (and their change events) are checked after each
//! call, through `History` and through the axum router in process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use std::sync::Arc;

use axum::http::StatusCode;
use bson::{Bson, doc};
use serde_json::{Value, json};
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::history::{History, IndexModel, InsertManyOptions, WatchOptions, WatchScope};

fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.create_index(
        "shop",
        "orders",
        &IndexModel {
            keys: vec![("sku".into(), 1)],
            name: None,
            unique: true,
        },
    )
    .unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 0, "sku": "taken"})
        .unwrap();
    (dir, h)
}

/// Documents 0..=4 where 1 repeats an existing `_id`, 3 a unique `sku` of document 0 of this
/// request; 2 and 4 are valid.
fn request() -> Vec<bson::Document> {
    vec![
        doc! {"_id": 1, "sku": "a"},
        doc! {"_id": 0, "sku": "b"},
        doc! {"_id": 2, "sku": "c"},
        doc! {"_id": 3, "sku": "a"},
        doc! {"_id": 4, "sku": "d"},
    ]
}

fn stored_ids(h: &History) -> Vec<i32> {
    let mut ids: Vec<i32> = h
        .find("shop", "orders", &doc! {}, &Default::default())
        .unwrap()
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn ordered_insert_keeps_the_prefix_and_reports_the_first_error() {
    let (_d, h) = open();
    let mut stream = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    let r = h
        .insert_many_with("shop", "orders", request(), InsertManyOptions::default())
        .unwrap();
    assert_eq!(r.inserted, vec![(0, Bson::Int32(1))]);
    assert_eq!(r.write_errors.len(), 1);
    assert_eq!(r.write_errors[0].index, 1);
    assert_eq!(r.write_errors[0].error.code(), 11000);
    assert_eq!(stored_ids(&h), vec![0, 1]);
    // Exactly one change event: the inserted document's.
    assert_eq!(stream.try_next_batch(100).unwrap().events.len(), 1);
}

#[test]
fn unordered_insert_writes_every_valid_document() {
    let (_d, h) = open();
    let r = h
        .insert_many_with(
            "shop",
            "orders",
            request(),
            InsertManyOptions { ordered: false },
        )
        .unwrap();
    let inserted: Vec<usize> = r.inserted.iter().map(|(i, _)| *i).collect();
    assert_eq!(inserted, vec![0, 2, 4]);
    let failed: Vec<(usize, i32)> = r
        .write_errors
        .iter()
        .map(|w| (w.index, w.error.code()))
        .collect();
    assert_eq!(failed, vec![(1, 11000), (3, 11000)]);
    assert_eq!(stored_ids(&h), vec![0, 1, 2, 4]);
    // The failed documents left no index entries behind: their keys are still free.
    h.insert_one("shop", "orders", doc! {"_id": 9, "sku": "b"})
        .unwrap();
}

#[test]
fn a_failure_other_than_a_duplicate_is_a_write_error_too() {
    let (_d, h) = open();
    let r = h
        .insert_many_with(
            "shop",
            "orders",
            vec![doc! {"_id": [1, 2]}, doc! {"_id": 5, "sku": "e"}],
            InsertManyOptions { ordered: false },
        )
        .unwrap();
    assert_eq!(r.write_errors.len(), 1);
    assert_eq!(r.write_errors[0].error.code(), 2);
    assert_eq!(r.inserted, vec![(1, Bson::Int32(5))]);
}

/// An empty batch is MongoDB's 16 InvalidLength, both ways, and creates nothing.
#[test]
fn an_empty_batch_is_refused() {
    let (_d, h) = history_common::open();
    for outcome in [
        h.insert_many("shop", "orders", Vec::new()).map(|_| ()),
        h.insert_many_with("shop", "orders", Vec::new(), InsertManyOptions::default())
            .map(|_| ()),
    ] {
        let e = outcome.unwrap_err();
        assert_eq!((e.code(), e.code_name()), (16, "InvalidLength"));
        assert_eq!(
            e.to_string(),
            "Write batch sizes must be between 1 and 100000. Got 0 operations."
        );
    }
    assert!(h.list_collections("shop").unwrap().is_empty());
}

async fn call(app: &axum::Router, action: &str, body: Value) -> (StatusCode, Value) {
    history_common::data_api_call(app, ("shop", "orders"), action, body).await
}

#[tokio::test]
async fn data_api_reports_write_errors_and_inserted_ids() {
    let engine = Arc::new(
        Engine::open(Config {
            ephemeral: true,
            ..Config::default()
        })
        .unwrap(),
    );
    let app = streamcache::api::router(engine.clone());
    call(
        &app,
        "createIndex",
        json!({"keys": {"sku": 1}, "options": {"unique": true}}),
    )
    .await;
    call(
        &app,
        "insertOne",
        json!({"document": {"_id": 0, "sku": "taken"}}),
    )
    .await;
    let docs = json!([
        {"_id": 1, "sku": "a"},
        {"_id": 0, "sku": "b"},
        {"_id": 2, "sku": "c"},
    ]);
    let (status, v) = call(&app, "insertMany", json!({"documents": docs})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error_code"], "DuplicateKey");
    assert_eq!(v["insertedIds"], json!([1]));
    assert_eq!(v["nInserted"], 1);
    assert_eq!(v["writeErrors"].as_array().unwrap().len(), 1);
    assert_eq!(v["writeErrors"][0]["index"], 1);
    assert_eq!(v["writeErrors"][0]["code"], 11000);
    assert!(
        v["writeErrors"][0]["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("E11000 duplicate key error")
    );
    let docs = json!([
        {"_id": 1, "sku": "z"},
        {"_id": 3, "sku": "d"},
        {"_id": 4, "sku": "taken"},
        {"_id": 5, "sku": "e"},
    ]);
    let (status, v) = call(
        &app,
        "insertMany",
        json!({"documents": docs, "ordered": false}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["insertedIds"], json!([3, 5]));
    assert_eq!(v["nInserted"], 2);
    let indexes: Vec<&Value> = v["writeErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["index"])
        .collect();
    assert_eq!(indexes, vec![&json!(0), &json!(2)]);
    let (status, v) = call(
        &app,
        "insertMany",
        json!({"documents": [{"_id": 6}], "ordered": "yes"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error_code"], "InvalidParameter");
    let (status, v) = call(&app, "insertMany", json!({"documents": [{"_id": 6}]})).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"insertedIds": [6]})));
    // No documents is a bad request, as MongoDB's insert command refuses an empty batch.
    let (status, v) = call(&app, "insertMany", json!({"documents": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error_code"], "InvalidParameter");
    assert_eq!(
        v["error"],
        "Write batch sizes must be between 1 and 100000. Got 0 operations."
    );
    let (_, v) = call(&app, "find", json!({"sort": {"_id": 1}})).await;
    let ids: Vec<i64> = v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![0, 1, 3, 5, 6]);
}
