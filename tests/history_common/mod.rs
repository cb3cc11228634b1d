//! Helpers shared by the history tests: a store in a fresh temporary directory on a manual
//! clock, a `[history]` setting loaded from a configuration file, a Data API call.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bson::doc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use streamcache::clock::ManualClock;
use streamcache::config::{Config, Error, Overrides, load};
use streamcache::history::{History, HistoryConfig};
use tower::ServiceExt;

/// Wall-clock start of the manual clock `open` uses (2023-11-14T22:13:20Z).
pub(crate) const START_MS: u64 = 1_700_000_000_000;

/// A store with the default configuration in a fresh temporary directory, its manual clock at
/// [`START_MS`]. Keep the directory alive as long as the store.
pub(crate) fn open() -> (tempfile::TempDir, History) {
    open_at(START_MS)
}

/// As [`open`], with `docs` (if any) in `db.c`.
pub(crate) fn open_with(docs: Vec<bson::Document>) -> (tempfile::TempDir, History) {
    let (dir, h) = open();
    if !docs.is_empty() {
        h.insert_many("db", "c", docs)
            .expect("the documents are inserted");
    }
    (dir, h)
}

/// As [`open`], with the manual clock at `start_ms`.
pub(crate) fn open_at(start_ms: u64) -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let h = History::open(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(start_ms),
    )
    .expect("history opens on an empty directory");
    (dir, h)
}

/// A store (clock at 0) holding a small shop: `shop.orders` (three orders of two customers,
/// with order lines) and `shop.customers` (the two customers).
pub(crate) fn open_shop() -> (tempfile::TempDir, History) {
    let (dir, h) = open_at(0);
    h.insert_many(
        "shop",
        "orders",
        vec![
            doc! {"_id": 1, "customer": "c1", "total": 10, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]},
            doc! {"_id": 2, "customer": "c2", "total": 25.5, "lines": [{"sku": "a", "qty": 5}]},
            doc! {"_id": 3, "customer": "c1", "total": 7, "lines": []},
        ],
    )
    .expect("the orders insert");
    h.insert_many(
        "shop",
        "customers",
        vec![
            doc! {"_id": "c1", "name": "Ann"},
            doc! {"_id": "c2", "name": "Ben"},
        ],
    )
    .expect("the customers insert");
    (dir, h)
}

/// Loads a configuration file holding `[history] name = value` and returns the loaded
/// configuration, or the loader's refusal.
pub(crate) fn load_history_setting(name: &str, value: u64) -> Result<Config, Error> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("streamcache.toml");
    std::fs::write(&file, format!("[history]\n{name} = {value}\n")).expect("config file");
    load(Some(&file), &Overrides::default()).map(|l| l.config)
}

/// `POST /mongo/action/{action}` on `app` with `body` plus `dataSource` and the target
/// `database` and `collection`; the status and the JSON reply.
pub(crate) async fn data_api_call(
    app: &axum::Router,
    (database, collection): (&str, &str),
    action: &str,
    mut body: Value,
) -> (StatusCode, Value) {
    body["dataSource"] = json!("local");
    body["database"] = json!(database);
    body["collection"] = json!(collection);
    let req = Request::post(format!("/mongo/action/{action}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("the router answers");
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("the reply body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).expect("a JSON reply"),
    )
}
