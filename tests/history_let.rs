//! Capability: a command's `let` option — variables that `find`, `aggregate`, `update`,
//! `replace`, `delete` and `find_one_and_*` expressions read as `$$name`, computed once before
//! any document is read —
//! through the library and the Data API, with MongoDB's errors.
//!
//! Method: a store on a manual clock holding ten small documents; each command's result is
//! compared with the documents its variables select.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use std::sync::Arc;

use axum::http::StatusCode;
use bson::{Bson, Document, doc};
use history_common::{START_MS, data_api_call};
use serde_json::json;
use streamcache::engine::Engine;
use streamcache::history::{
    AggregateOptions, DeleteOptions, FindAndModifyOptions, FindOptions, History, ReplaceOptions,
    UpdateOptions,
};

fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    let docs: Vec<Document> = (0..10).map(|i| doc! {"_id": i, "n": i * 10}).collect();
    h.insert_many("db", "c", docs).unwrap();
    h.insert_many("db", "tags", vec![doc! {"_id": "t", "label": "tagged"}])
        .unwrap();
    (dir, h)
}

fn aggregate(
    h: &History,
    pipeline: &[Document],
    vars: Document,
) -> Result<Vec<Document>, (i32, String)> {
    let options = AggregateOptions {
        let_vars: Some(vars),
        ..AggregateOptions::default()
    };
    h.aggregate_with("db", "c", pipeline, options)
        .map_err(|e| (e.code(), e.to_string()))
}

#[test]
fn aggregate_stages_and_sub_pipelines_read_the_variables() {
    let (_d, h) = open();
    let out = aggregate(
        &h,
        &[
            doc! {"$match": {"$expr": {"$gte": ["$_id", "$$low"]}}},
            doc! {"$lookup": {
                "from": "tags",
                "pipeline": [{"$match": {"$expr": {"$eq": ["$_id", "$$tag"]}}}],
                "as": "tags",
            }},
            doc! {"$project": {"n": 1, "t": {"$first": "$tags.label"}, "b": "$$b", "now": "$$at"}},
        ],
        // A later variable reads an earlier one; `$$NOW` is the store's clock.
        doc! {"low": 8, "tag": "t", "a": 2, "b": {"$add": ["$$a", 1]}, "at": "$$NOW"},
    )
    .unwrap();
    let now = Bson::DateTime(bson::DateTime::from_millis(START_MS.cast_signed()));
    let want: Vec<Document> = [8, 9]
        .into_iter()
        .map(|i| doc! {"_id": i, "n": i * 10, "t": "tagged", "b": 3, "now": now.clone()})
        .collect();
    assert_eq!(out, want);
    // Without `let` the same name is undefined.
    let e = h
        .aggregate("db", "c", &[doc! {"$project": {"v": "$$low"}}])
        .unwrap_err();
    assert_eq!(e.code(), 17276, "{e}");
}

#[test]
fn a_merge_pipeline_reads_the_commands_variables_beside_its_own() {
    let (_d, h) = open();
    let merge = |when_matched: Document| {
        let mut spec = doc! {"into": "out", "whenNotMatched": "insert"};
        spec.extend(when_matched);
        aggregate(
            &h,
            &[doc! {"$match": {"_id": {"$lt": 2}}}, doc! {"$merge": spec}],
            doc! {"tag": "m"},
        )
        .unwrap()
    };
    merge(doc! {"whenMatched": "fail"});
    merge(doc! {"whenMatched": [{"$set": {"tag": "$$tag", "n2": "$$new.n"}}]});
    merge(
        doc! {"let": {"twice": {"$multiply": ["$n", 2]}}, "whenMatched": [{"$set": {"both": ["$$tag", "$$twice"]}}]},
    );
    let out = h
        .find("db", "out", &doc! {}, &FindOptions::default())
        .unwrap();
    let want: Vec<Document> = [0, 1]
        .into_iter()
        .map(|i| doc! {"_id": i, "n": i * 10, "tag": "m", "n2": i * 10, "both": ["m", i * 20]})
        .collect();
    assert_eq!(out, want);
}

#[test]
fn find_update_and_find_and_modify_read_the_variables() {
    let (_d, h) = open();
    let vars = doc! {"id": 3, "val": "new"};
    let by_id = doc! {"$expr": {"$eq": ["$_id", "$$id"]}};
    let found = h
        .find(
            "db",
            "c",
            &by_id,
            &FindOptions {
                projection: Some(doc! {"v": "$$val"}),
                let_vars: Some(vars.clone()),
                ..FindOptions::default()
            },
        )
        .unwrap();
    assert_eq!(found, vec![doc! {"_id": 3, "v": "new"}]);

    let updated = h
        .update(
            "db",
            "c",
            &by_id,
            &vec![doc! {"$set": {"v": "$$val"}}],
            UpdateOptions {
                let_vars: Some(vars.clone()),
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((updated.matched, updated.modified), (1, 1));
    let options = FindOptions {
        max_time_ms: Some(0),
        ..FindOptions::default()
    };
    assert_eq!(
        h.find("db", "c", &doc! {"_id": 3}, &options).unwrap(),
        vec![doc! {"_id": 3, "n": 30, "v": "new"}]
    );

    let after = h
        .find_one_and_update(
            "db",
            "c",
            &doc! {"$expr": {"$eq": ["$_id", "$$other"]}},
            &vec![doc! {"$set": {"w": {"$multiply": ["$n", "$$k"]}}}],
            &FindAndModifyOptions {
                return_new: true,
                let_vars: Some(doc! {"other": 4, "k": 3}),
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap();
    assert_eq!(after, Some(doc! {"_id": 4, "n": 40, "w": 120}));
    let deleted = h
        .find_one_and_delete(
            "db",
            "c",
            &doc! {"$expr": {"$eq": ["$_id", "$$gone"]}},
            &FindAndModifyOptions {
                let_vars: Some(doc! {"gone": 5}),
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap();
    assert_eq!(deleted, Some(doc! {"_id": 5, "n": 50}));
}

#[test]
fn replace_and_delete_filters_read_the_variables() {
    let (_d, h) = open();
    let at_least = doc! {"$expr": {"$gte": ["$n", "$$min"]}};
    let replaced = h
        .replace_with(
            "db",
            "c",
            &doc! {"$expr": {"$eq": ["$_id", "$$id"]}},
            &doc! {"n": 1},
            ReplaceOptions {
                let_vars: Some(doc! {"id": 8}),
                ..ReplaceOptions::default()
            },
        )
        .unwrap();
    assert_eq!((replaced.matched, replaced.modified), (1, 1));
    // Nothing matches `_id` 42: the upsert inserts the replacement.
    let upserted = h
        .replace_with(
            "db",
            "c",
            &doc! {"$expr": {"$eq": ["$_id", "$$id"]}},
            &doc! {"n": 2},
            ReplaceOptions {
                upsert: true,
                let_vars: Some(doc! {"id": 42}),
            },
        )
        .unwrap();
    assert!(upserted.upserted_id.is_some());
    let one = DeleteOptions {
        multi: false,
        let_vars: Some(doc! {"min": 70}),
    };
    assert_eq!(h.delete_with("db", "c", &at_least, &one).unwrap(), 1);
    let many = DeleteOptions { multi: true, ..one };
    // 70 went with the first delete and 80 was replaced by n: 1: 90 is left.
    assert_eq!(h.delete_with("db", "c", &at_least, &many).unwrap(), 1);
    let left: Vec<Bson> = h
        .find("db", "c", &doc! {}, &FindOptions::default())
        .unwrap()
        .into_iter()
        .map(|d| d.get("n").unwrap().clone())
        .collect();
    assert_eq!(left.len(), 9);
    assert!(left.iter().all(|n| n.as_i32().unwrap() < 70), "{left:?}");
    // A value that reads a field is refused before anything is deleted.
    let bad = DeleteOptions {
        multi: true,
        let_vars: Some(doc! {"min": "$n"}),
    };
    assert_eq!(
        h.delete_with("db", "c", &at_least, &bad)
            .unwrap_err()
            .code(),
        4_890_500
    );
    assert_eq!(h.count("db", "c", &doc! {}).unwrap(), 9);
}

#[test]
fn a_variable_that_reads_a_field_or_has_a_bad_name_is_refused() {
    let (_d, h) = open();
    let reads_a_field = "Command let Expression tried to access a field, but this is not allowed because command let expressions run before the query examines any documents.";
    let pipeline = [doc! {"$match": {}}];
    for value in [
        Bson::String("$n".into()),
        Bson::String("$$ROOT".into()),
        Bson::Document(doc! {"$add": ["$n", 1]}),
    ] {
        assert_eq!(
            aggregate(&h, &pipeline, doc! {"x": value}),
            Err((4_890_500, reads_a_field.to_owned()))
        );
    }
    // A variable of the value's own `$let` is no field.
    let own = doc! {"x": {"$let": {"vars": {"y": 2}, "in": {"$add": ["$$y", 1]}}}};
    let out = aggregate(
        &h,
        &[doc! {"$limit": 1}, doc! {"$project": {"x": "$$x"}}],
        own,
    )
    .unwrap();
    assert_eq!(out, vec![doc! {"_id": 0, "x": 3}]);
    for (name, code) in [("", 16866), ("Upper", 16867), ("a-b", 16868)] {
        let got = aggregate(&h, &pipeline, doc! {name: 1}).map_err(|(c, _)| c);
        assert_eq!(got, Err(code), "{name:?}");
    }
    let e = h
        .find(
            "db",
            "c",
            &doc! {},
            &FindOptions {
                let_vars: Some(doc! {"x": "$n"}),
                ..FindOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (4_890_500, reads_a_field.to_owned())
    );
}

#[tokio::test]
async fn the_data_api_takes_let_on_find_update_replace_delete_and_aggregate() {
    let engine = Arc::new(Engine::temporary().unwrap());
    let app = streamcache::api::router(engine.clone());
    let call = |action: &'static str, body| data_api_call(&app, ("db", "c"), action, body);
    let docs: Vec<_> = (0..5).map(|i| json!({"_id": i})).collect();
    assert_eq!(
        call("insertMany", json!({"documents": docs})).await.0,
        StatusCode::OK
    );
    let filter = json!({"$expr": {"$lt": ["$_id", "$$below"]}});
    let (s, body) = call("find", json!({"filter": filter, "let": {"below": 2}})).await;
    assert_eq!(
        (s, &body["documents"]),
        (StatusCode::OK, &json!([{"_id": 0}, {"_id": 1}]))
    );
    let (s, body) = call(
        "updateMany",
        json!({"filter": filter, "update": [{"$set": {"m": "$$mark"}}], "let": {"below": 2, "mark": "x"}}),
    )
    .await;
    assert_eq!(
        (s, &body["modifiedCount"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    let (s, body) = call(
        "aggregate",
        json!({"pipeline": [{"$match": {"$expr": {"$eq": ["$m", "$$mark"]}}}, {"$count": "n"}], "let": {"mark": "x"}}),
    )
    .await;
    assert_eq!(
        (s, &body["documents"]),
        (StatusCode::OK, &json!([{"n": 2}])),
        "{body}"
    );
    let (s, body) = call("findOne", json!({"filter": filter, "let": {"below": "$x"}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = call(
        "replaceOne",
        json!({"filter": {"$expr": {"$eq": ["$_id", "$$id"]}}, "replacement": {"r": true}, "let": {"id": 4}}),
    )
    .await;
    assert_eq!(
        (s, &body["modifiedCount"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
    let (s, body) = call("deleteOne", json!({"filter": filter, "let": {"below": 2}})).await;
    assert_eq!(
        (s, &body["deletedCount"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
    let (s, body) = call("deleteMany", json!({"filter": filter, "let": {"below": 3}})).await;
    assert_eq!(
        (s, &body["deletedCount"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    let (s, body) = call("find", json!({})).await;
    assert_eq!(
        (s, &body["documents"]),
        (StatusCode::OK, &json!([{"_id": 3}, {"_id": 4, "r": true}]))
    );
}
