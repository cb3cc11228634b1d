//! Capability: a read's time limit — `maxTimeMS` on `find`, `count` and `aggregate`, the
//! store's `default_max_time_ms` for reads that pass none, MongoDB's code 50
//! `MaxTimeMSExpired` past it — `maxTimeMS` of `find_one_and_*`, and `maxTimeMS` through the
//! Data API, on reads and writes.
//!
//! Method: stores and engines on a clock whose monotonic time moves 1 ms at every reading,
//! so a read's time is the number of readings it makes, the same on every run; the reads are
//! a collection scan and a `$reduce` whose work is quadratic in its input's length.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use bson::{Bson, Document, doc};
use history_common::{data_api_call, load_history_setting};
use serde_json::{Value, json};
use streamcache::clock::Clock;
use streamcache::config::Config;
use streamcache::engine::Engine;
use streamcache::history::{
    AggregateOptions, Error, FindAndModifyOptions, FindOptions, History, HistoryConfig,
    MAX_TIME_MS_MAX, UpdateOptions,
};

/// Wall time fixed; monotonic time 1 ms later at every reading.
#[derive(Debug, Default)]
struct TickingClock {
    readings: AtomicU64,
}

impl Clock for TickingClock {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000
    }

    fn monotonic_ns(&self) -> u64 {
        self.readings.fetch_add(1, Ordering::SeqCst) * 1_000_000
    }
}

fn open(default_max_time_ms: u64) -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().unwrap();
    let config = HistoryConfig {
        default_max_time_ms,
        ..HistoryConfig::default()
    };
    let h = History::open(dir.path(), config, Arc::new(TickingClock::default())).unwrap();
    (dir, h)
}

/// `{r: $reduce}` appending each element of `arr` to an array: every step copies the value
/// built so far.
fn quadratic_reduce() -> Vec<Document> {
    vec![doc! {"$project": {"_id": 0, "r": {"$reduce": {
        "input": "$arr",
        "initialValue": [],
        "in": {"$concatArrays": ["$$value", ["$$this"]]},
    }}}}]
}

fn expired(e: &Error) -> bool {
    matches!(e, Error::MaxTimeExpired)
        && e.code() == 50
        && e.code_name() == "MaxTimeMSExpired"
        && e.to_string() == "operation exceeded time limit"
}

#[test]
fn a_quadratic_reduce_stops_at_its_max_time_ms_and_one_without_a_limit_runs_to_the_end() {
    let (_dir, h) = open(0);
    let arr: Vec<Bson> = (0..20_000).map(Bson::Int32).collect();
    h.insert_one("db", "c", doc! {"_id": 1, "arr": arr})
        .unwrap();
    let limited = AggregateOptions {
        max_time_ms: Some(5),
        ..AggregateOptions::default()
    };
    let e = h
        .aggregate_with("db", "c", &quadratic_reduce(), limited)
        .unwrap_err();
    assert!(expired(&e), "{e:?}");

    // The same pipeline over 300 elements, with no limit: the clock moves on at every
    // reading, but nothing reads it for a limit.
    let arr: Vec<Bson> = (0..300).map(Bson::Int32).collect();
    h.insert_one("db", "small", doc! {"_id": 1, "arr": arr.clone()})
        .unwrap();
    let out = h
        .aggregate_with(
            "db",
            "small",
            &quadratic_reduce(),
            AggregateOptions::default(),
        )
        .unwrap();
    assert_eq!(out, vec![doc! {"r": arr}]);
}

/// A `$graphLookup` from every document of a chain of 300 walks the chain to its start: 300
/// inputs × up to 300 rounds. The two collection reads and the 300 `startWith` evaluations
/// read the clock about 20 times; the search's own checks (one per document a round tries,
/// 45,000 here) about 700 times, so a 200 ms limit stops it only if the search checks it.
#[test]
fn a_graph_lookup_search_stops_at_its_max_time_ms() {
    let (_dir, h) = open(0);
    let chain: Vec<Document> = (0..300).map(|i| doc! {"_id": i, "up": i - 1}).collect();
    h.insert_many("db", "chain", chain).unwrap();
    let walk = |stage: Document| {
        let limited = AggregateOptions {
            max_time_ms: Some(200),
            ..AggregateOptions::default()
        };
        h.aggregate_with("db", "chain", &[stage], limited)
    };
    let plain = walk(
        doc! {"$lookup": {"from": "chain", "localField": "_id", "foreignField": "up", "as": "next"}},
    );
    assert_eq!(
        plain.unwrap().len(),
        300,
        "the reads alone fit in the limit"
    );
    let e = walk(doc! {"$graphLookup": {
        "from": "chain", "startWith": "$up", "connectFromField": "up",
        "connectToField": "_id", "as": "path",
    }})
    .unwrap_err();
    assert!(expired(&e), "{e:?}");
    // With no limit it runs to the end.
    let out = h
        .aggregate(
            "db",
            "chain",
            &[
                doc! {"$graphLookup": {
                    "from": "chain", "startWith": "$up", "connectFromField": "up",
                    "connectToField": "_id", "as": "path",
                }},
                doc! {"$project": {"n": {"$size": "$path"}}},
            ],
        )
        .unwrap();
    let sizes: Vec<i32> = out.iter().map(|d| d.get_i32("n").unwrap()).collect();
    assert_eq!(sizes, (0..300).collect::<Vec<i32>>());
}

/// A change stream's pipeline runs under the store's default time limit for reads, for each
/// event: a quadratic `$reduce` in it fails the read with 50 and ends the stream.
#[test]
fn a_change_streams_pipeline_runs_under_the_default_time_limit() {
    let (_dir, h) = open(50);
    let pipeline = vec![doc! {"$set": {"r": {"$reduce": {
        "input": "$fullDocument.arr",
        "initialValue": [],
        "in": {"$concatArrays": ["$$value", ["$$this"]]},
    }}}}];
    let mut stream = h
        .watch(
            streamcache::history::WatchScope::All,
            streamcache::history::WatchOptions {
                pipeline,
                ..streamcache::history::WatchOptions::default()
            },
        )
        .unwrap();
    let arr: Vec<Bson> = (0..20_000).map(Bson::Int32).collect();
    h.insert_one("db", "c", doc! {"_id": 1, "arr": arr})
        .unwrap();
    let e = stream.try_next_batch(10).unwrap_err();
    assert!(expired(&e), "{e:?}");
    assert!(stream.is_closed());
}

/// `{$set: {r: $reduce}}` over `arr` as [`quadratic_reduce`], as a pipeline-style update.
fn quadratic_update() -> Vec<Document> {
    vec![doc! {"$set": {"r": {"$reduce": {
        "input": "$arr",
        "initialValue": [],
        "in": {"$concatArrays": ["$$value", ["$$this"]]},
    }}}}]
}

/// `db.c` holds `stored` alone, and the oplog only its collection's create and its insert: a
/// stopped write left nothing.
fn assert_only(h: &History, stored: Document) {
    let unlimited = FindOptions {
        max_time_ms: Some(0),
        ..FindOptions::default()
    };
    assert_eq!(
        h.find("db", "c", &doc! {}, &unlimited).unwrap(),
        vec![stored]
    );
    assert_eq!(
        h.oplog_range().unwrap(),
        (1, 2),
        "no change event was written"
    );
}

#[test]
fn a_write_run_under_a_time_limit_stops_there_and_commits_nothing() {
    let (_dir, h) = open(60_000);
    let arr: Vec<Bson> = (0..20_000).map(Bson::Int32).collect();
    let stored = doc! {"_id": 1, "arr": arr};
    h.insert_one("db", "c", stored.clone()).unwrap();
    let e = h
        .with_time_limit(Some(5), || {
            h.update(
                "db",
                "c",
                &doc! {},
                &quadratic_update(),
                UpdateOptions::default(),
            )
        })
        .unwrap_err();
    assert!(expired(&e), "{e:?}");
    assert_only(&h, stored);
    let e = h
        .with_time_limit(Some(MAX_TIME_MS_MAX + 1), || Ok(()))
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (2, "maxTimeMS is out of range".into())
    );
}

#[test]
fn find_one_and_update_stops_at_its_max_time_ms_and_without_one_has_no_limit() {
    // Reads default to 5 ms here; a write does not take that default.
    let (_dir, h) = open(5);
    let modify = |id: i32, max_time_ms| {
        let options = FindAndModifyOptions {
            return_new: true,
            max_time_ms,
            ..FindAndModifyOptions::default()
        };
        h.find_one_and_update("db", "c", &doc! {"_id": id}, &quadratic_update(), &options)
    };
    let arr: Vec<Bson> = (0..20_000).map(Bson::Int32).collect();
    let stored = doc! {"_id": 1, "arr": arr};
    h.insert_one("db", "c", stored.clone()).unwrap();
    let e = modify(1, Some(5)).unwrap_err();
    assert!(expired(&e), "{e:?}");
    assert_only(&h, stored);
    let e = modify(1, Some(MAX_TIME_MS_MAX + 1)).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (2, "maxTimeMS is out of range".into())
    );

    // 1,000 elements: past 5 ms of this clock too (a step checks the limit, and every 64th
    // check reads the clock), so it runs to the end only because nothing limits it — with no
    // `max_time_ms`, and with 0.
    let arr: Vec<Bson> = (0..1_000).map(Bson::Int32).collect();
    for (id, max_time_ms) in [(2, None), (3, Some(0))] {
        h.insert_one("db", "c", doc! {"_id": id, "arr": arr.clone()})
            .unwrap();
        let new = modify(id, max_time_ms).unwrap();
        assert_eq!(
            new,
            Some(doc! {"_id": id, "arr": arr.clone(), "r": arr.clone()})
        );
    }
}

#[test]
fn a_commands_let_values_are_computed_under_its_time_limit() {
    let (_dir, h) = open(0);
    h.insert_one("db", "c", doc! {"_id": 1}).unwrap();
    // 2,000 `$reduce` steps: past 5 ms of this clock, and quick without a limit.
    let arr: Vec<Bson> = (0..2_000).map(Bson::Int32).collect();
    let vars = doc! {"grown": {"$reduce": {
        "input": arr,
        "initialValue": [],
        "in": {"$concatArrays": ["$$value", ["$$this"]]},
    }}};
    let find = |max_time_ms| {
        let options = FindOptions {
            max_time_ms: Some(max_time_ms),
            let_vars: Some(vars.clone()),
            ..FindOptions::default()
        };
        h.find("db", "c", &doc! {}, &options)
    };
    let e = find(5).unwrap_err();
    assert!(expired(&e), "{e:?}");
    assert_eq!(find(0).unwrap(), vec![doc! {"_id": 1}]);
    let modify = |max_time_ms| {
        let options = FindAndModifyOptions {
            max_time_ms,
            let_vars: Some(vars.clone()),
            ..FindAndModifyOptions::default()
        };
        h.find_one_and_delete("db", "c", &doc! {}, &options)
    };
    let e = modify(Some(5)).unwrap_err();
    assert!(expired(&e), "{e:?}");
    assert_eq!(modify(None).unwrap(), Some(doc! {"_id": 1}));
}

#[test]
fn reads_without_max_time_ms_get_the_configured_default_and_zero_lifts_it() {
    let docs = || {
        (0..2_000)
            .map(|i| doc! {"_id": i, "n": i})
            .collect::<Vec<_>>()
    };
    let (_dir, h) = open(10);
    h.insert_many("db", "c", docs()).unwrap();
    // A scan of 2,000 documents reads the clock 31 times: past 10 ms.
    let e = h
        .find("db", "c", &doc! {}, &FindOptions::default())
        .unwrap_err();
    assert!(expired(&e), "{e:?}");
    let e = h.count("db", "c", &doc! {"n": {"$gte": 0}}).unwrap_err();
    assert!(expired(&e), "{e:?}");
    let e = h.aggregate("db", "c", &[doc! {"$match": {}}]).unwrap_err();
    assert!(expired(&e), "{e:?}");
    // A short read is under it.
    let one = h
        .find("db", "c", &doc! {"_id": 7}, &FindOptions::default())
        .unwrap();
    assert_eq!(one, vec![doc! {"_id": 7, "n": 7}]);
    // maxTimeMS: 0 lifts the default for one read; a larger one replaces it — for an
    // aggregation's own reads too (its first stages run as a find).
    for max_time_ms in [0, 1_000] {
        let options = FindOptions {
            max_time_ms: Some(max_time_ms),
            ..FindOptions::default()
        };
        assert_eq!(h.find("db", "c", &doc! {}, &options).unwrap(), docs());
        let options = AggregateOptions {
            max_time_ms: Some(max_time_ms),
            ..AggregateOptions::default()
        };
        let out = h
            .aggregate_with("db", "c", &[doc! {"$match": {}}], options)
            .unwrap();
        assert_eq!(out, docs());
    }

    // With the default at 0 no read has a limit.
    let (_dir, h) = open(0);
    h.insert_many("db", "c", docs()).unwrap();
    assert_eq!(
        h.find("db", "c", &doc! {}, &FindOptions::default())
            .unwrap(),
        docs()
    );
    assert_eq!(h.count("db", "c", &doc! {}).unwrap(), 2_000);
}

#[test]
fn max_time_ms_is_accepted_up_to_its_ceiling_and_refused_past_it() {
    let (_dir, h) = open(0);
    h.insert_one("db", "c", doc! {"_id": 1}).unwrap();
    let find = |max_time_ms| {
        let options = FindOptions {
            max_time_ms: Some(max_time_ms),
            ..FindOptions::default()
        };
        h.find("db", "c", &doc! {}, &options)
    };
    assert_eq!(find(MAX_TIME_MS_MAX).unwrap(), vec![doc! {"_id": 1}]);
    let e = find(MAX_TIME_MS_MAX + 1).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (2, "maxTimeMS is out of range".into())
    );

    // The configured default: at the ceiling a valid setting, one more refused at load and
    // by `History::open`.
    let load_default = |ms: u64| {
        load_history_setting("default_max_time_ms", ms).map(|c| c.history.default_max_time_ms)
    };
    assert_eq!(load_default(MAX_TIME_MS_MAX).unwrap(), MAX_TIME_MS_MAX);
    let e = load_default(MAX_TIME_MS_MAX + 1).unwrap_err();
    assert_eq!(e.setting, "history.default_max_time_ms");
    assert_eq!(
        e.reason,
        format!("{} is outside 0..={MAX_TIME_MS_MAX}", MAX_TIME_MS_MAX + 1)
    );
    let dir = tempfile::tempdir().unwrap();
    let config = HistoryConfig {
        default_max_time_ms: MAX_TIME_MS_MAX + 1,
        ..HistoryConfig::default()
    };
    let Err(e) = History::open(dir.path(), config, Arc::new(TickingClock::default())) else {
        panic!("default_max_time_ms past its ceiling was accepted");
    };
    assert_eq!(
        e.to_string(),
        format!(
            "history.default_max_time_ms: {} is outside 0..={MAX_TIME_MS_MAX}",
            MAX_TIME_MS_MAX + 1
        )
    );
}

/// `POST /mongo/action/{action}` on `app` for `db.c`.
async fn call(app: &axum::Router, action: &str, body: Value) -> (StatusCode, Value) {
    data_api_call(app, ("db", "c"), action, body).await
}

/// An engine on a [`TickingClock`] with `default_max_time_ms`, and its router, holding
/// `db.c` = `{_id: 1, arr: [0, 1, …, 19999]}`.
async fn engine_with_long_array(default_max_time_ms: u64) -> (Arc<Engine>, axum::Router) {
    let mut config = Config {
        ephemeral: true,
        ..Config::default()
    };
    config.history.default_max_time_ms = default_max_time_ms;
    let engine =
        Arc::new(Engine::open_with_clock(config, Arc::new(TickingClock::default())).unwrap());
    let app = streamcache::api::router(engine.clone());
    let arr: Vec<i32> = (0..20_000).collect();
    let (s, _) = call(
        &app,
        "insertOne",
        json!({"document": {"_id": 1, "arr": arr}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    (engine, app)
}

#[tokio::test]
async fn the_data_api_takes_max_time_ms_on_reads_and_writes_and_answers_max_time_ms_expired() {
    let (_engine, app) = engine_with_long_array(60_000).await;

    let pipeline = json!([{"$project": {"_id": 0, "n": {"$size": {"$reduce": {
        "input": "$arr",
        "initialValue": [],
        "in": {"$concatArrays": ["$$value", ["$$this"]]},
    }}}}}]);
    let (s, v) = call(
        &app,
        "aggregate",
        json!({"pipeline": pipeline, "maxTimeMS": 5}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error_code"], "MaxTimeMSExpired", "{v}");
    assert_eq!(v["error"], "operation exceeded time limit", "{v}");

    // A write: the pipeline-style update stops at its maxTimeMS and changes nothing.
    let update = serde_json::to_value(quadratic_update()).unwrap();
    let (s, v) = call(
        &app,
        "updateMany",
        json!({"filter": {}, "update": update, "maxTimeMS": 5}),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MaxTimeMSExpired")),
        "{v}"
    );
    let (s, v) = call(&app, "find", json!({"projection": {"r": 1}})).await;
    assert_eq!(
        (s, &v["documents"]),
        (StatusCode::OK, &json!([{"_id": 1}])),
        "{v}"
    );

    for action in ["find", "findOne", "aggregate", "updateOne", "deleteMany"] {
        let mut body = json!({"maxTimeMS": MAX_TIME_MS_MAX});
        match action {
            "aggregate" => body["pipeline"] = json!([{"$project": {"_id": 1}}]),
            "updateOne" => body["update"] = json!({"$set": {"seen": true}}),
            "deleteMany" => body["filter"] = json!({"_id": 2}),
            _ => body["projection"] = json!({"_id": 1}),
        }
        let (s, v) = call(&app, action, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
        for (bad, message) in [
            (json!(MAX_TIME_MS_MAX + 1), "maxTimeMS is out of range"),
            (json!(-1), "maxTimeMS is out of range"),
            (json!(2.5), "maxTimeMS has non-integral value"),
            (json!("10"), "maxTimeMS must be a number"),
        ] {
            body["maxTimeMS"] = bad;
            let (s, v) = call(&app, action, body.clone()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{action}: {v}");
            assert_eq!(v["error"], message, "{action}: {v}");
        }
    }
}

#[tokio::test]
async fn data_api_writes_without_max_time_ms_get_the_configured_default() {
    let (_engine, app) = engine_with_long_array(5).await;
    let update = serde_json::to_value(quadratic_update()).unwrap();
    let (s, v) = call(&app, "updateOne", json!({"filter": {}, "update": update})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MaxTimeMSExpired")),
        "{v}"
    );
    // maxTimeMS: 0 lifts it: a delete runs to the end.
    let (s, v) = call(&app, "deleteMany", json!({"filter": {}, "maxTimeMS": 0})).await;
    assert_eq!((s, &v["deletedCount"]), (StatusCode::OK, &json!(1)), "{v}");
}
