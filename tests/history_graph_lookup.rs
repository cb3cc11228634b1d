//! Capability: the `$graphLookup` stage — a recursive search of a collection from `startWith`
//! over `connectFromField` → `connectToField`, with `maxDepth`, `depthField` and
//! `restrictSearchWithMatch`, MongoDB's matching (array fields, numbers across types, null for
//! missing), cycles visited once, and MongoDB's parse errors; through the library and the
//! Data API.
//!
//! Method: the employee and airport collections of MongoDB's `$graphLookup` documentation, and
//! small graphs built for one case each; each result is compared with the documents the search
//! must find, in the order it finds them (collection order within a depth).
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
use history_common::data_api_call;
use serde_json::json;
use streamcache::engine::Engine;
use streamcache::history::History;

fn employees() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_many(
        "db",
        "employees",
        vec![
            doc! {"_id": 1, "name": "Dev"},
            doc! {"_id": 2, "name": "Eliot", "reportsTo": "Dev"},
            doc! {"_id": 3, "name": "Ron", "reportsTo": "Eliot"},
            doc! {"_id": 4, "name": "Andrew", "reportsTo": "Eliot"},
            doc! {"_id": 5, "name": "Asya", "reportsTo": "Ron"},
            doc! {"_id": 6, "name": "Dan", "reportsTo": "Andrew"},
        ],
    )
    .unwrap();
    (dir, h)
}

fn run(h: &History, coll: &str, pipeline: &[Document]) -> Result<Vec<Document>, (i32, String)> {
    h.aggregate("db", coll, pipeline)
        .map_err(|e| (e.code(), e.to_string()))
}

/// The `_id`s (and depths, when recorded) of what one output document found under `as`.
fn found(d: &Document, as_field: &str, depth_field: Option<&str>) -> Vec<(i32, Option<i64>)> {
    d.get_array(as_field)
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_document().unwrap();
            let depth = depth_field.map(|k| f.get_i64(k).unwrap());
            (f.get_i32("_id").unwrap(), depth)
        })
        .collect()
}

#[test]
fn a_reporting_chain_is_found_with_depths_and_stops_at_max_depth() {
    let (_d, h) = employees();
    let chain = |extra: Document| {
        let mut spec = doc! {
            "from": "employees",
            "startWith": "$reportsTo",
            "connectFromField": "reportsTo",
            "connectToField": "name",
            "as": "chain",
        };
        spec.extend(extra);
        vec![
            doc! {"$match": {"name": "Asya"}},
            doc! {"$graphLookup": spec},
        ]
    };
    let out = run(&h, "employees", &chain(doc! {"depthField": "level"})).unwrap();
    assert_eq!(out.len(), 1);
    // Ron (Asya's manager) at 0, Eliot at 1, Dev at 2; the input keeps its own fields.
    assert_eq!(
        found(&out[0], "chain", Some("level")),
        [(3, Some(0)), (2, Some(1)), (1, Some(2))]
    );
    assert_eq!(out[0].get_str("reportsTo").unwrap(), "Ron");
    let out = run(&h, "employees", &chain(doc! {"maxDepth": 1})).unwrap();
    assert_eq!(found(&out[0], "chain", None), [(3, None), (2, None)]);
    let out = run(&h, "employees", &chain(doc! {"maxDepth": 0})).unwrap();
    assert_eq!(found(&out[0], "chain", None), [(3, None)]);
    // The found documents are stored ones: no `level` unless asked for, none written back.
    let stored = run(
        &h,
        "employees",
        &[doc! {"$match": {"level": {"$exists": true}}}],
    )
    .unwrap();
    assert!(stored.is_empty());
    // Down the tree: everyone under Eliot, each once.
    let reports = [
        doc! {"$match": {"name": "Eliot"}},
        doc! {"$graphLookup": {
            "from": "employees", "startWith": "$name", "connectFromField": "name",
            "connectToField": "reportsTo", "as": "under", "depthField": "d",
        }},
    ];
    let out = run(&h, "employees", &reports).unwrap();
    assert_eq!(
        found(&out[0], "under", Some("d")),
        [(3, Some(0)), (4, Some(0)), (5, Some(1)), (6, Some(1))]
    );
}

#[test]
fn array_fields_connect_to_each_element_and_cycles_end() {
    let (_d, h) = history_common::open();
    h.insert_many(
        "db",
        "airports",
        vec![
            doc! {"_id": 0, "airport": "JFK", "connects": ["BOS", "ORD"]},
            doc! {"_id": 1, "airport": "BOS", "connects": ["JFK", "PWM"]},
            doc! {"_id": 2, "airport": "ORD", "connects": ["JFK"]},
            doc! {"_id": 3, "airport": "PWM", "connects": ["BOS", "LHR"]},
            doc! {"_id": 4, "airport": "LHR", "connects": ["PWM"]},
        ],
    )
    .unwrap();
    h.insert_many(
        "db",
        "travelers",
        vec![
            doc! {"_id": 1, "name": "Dev", "nearestAirport": "JFK"},
            doc! {"_id": 2, "name": "Eliot", "nearestAirport": "JFK"},
            doc! {"_id": 3, "name": "Jeff", "nearestAirport": "BOS"},
        ],
    )
    .unwrap();
    let pipeline = [doc! {"$graphLookup": {
        "from": "airports", "startWith": "$nearestAirport", "connectFromField": "connects",
        "connectToField": "airport", "maxDepth": 2, "depthField": "numConnections",
        "as": "destinations",
    }}];
    let out = run(&h, "travelers", &pipeline).unwrap();
    let jfk = [(0, Some(0)), (1, Some(1)), (2, Some(1)), (3, Some(2))];
    assert_eq!(found(&out[0], "destinations", Some("numConnections")), jfk);
    assert_eq!(found(&out[1], "destinations", Some("numConnections")), jfk);
    assert_eq!(
        found(&out[2], "destinations", Some("numConnections")),
        [
            (1, Some(0)),
            (0, Some(1)),
            (3, Some(1)),
            (2, Some(2)),
            (4, Some(2))
        ]
    );
    // Without maxDepth the cycles (JFK ⇄ BOS, BOS ⇄ PWM …) still end, each airport once.
    let unbounded = [doc! {"$graphLookup": {
        "from": "airports", "startWith": "$nearestAirport", "connectFromField": "connects",
        "connectToField": "airport", "as": "all",
    }}];
    let out = run(&h, "travelers", &unbounded).unwrap();
    assert_eq!(out[0].get_array("all").unwrap().len(), 5);
    // An array field on the connectTo side matches by its elements; startWith's array starts
    // from each element.
    let reverse = [doc! {"$graphLookup": {
        "from": "airports", "startWith": ["LHR", "ORD"], "connectFromField": "airport",
        "connectToField": "connects", "maxDepth": 0, "as": "into",
    }}];
    let out = run(&h, "travelers", &reverse).unwrap();
    // Into LHR: PWM; into ORD: JFK.
    assert_eq!(found(&out[0], "into", None), [(0, None), (3, None)]);
}

#[test]
fn restrict_search_with_match_filters_every_round() {
    let (_d, h) = history_common::open();
    h.insert_many(
        "db",
        "people",
        vec![
            doc! {"_id": 1, "name": "Tanya", "friends": ["Shirley", "Terry", "Carole"], "hobbies": ["tennis", "unicycling", "golf"]},
            doc! {"_id": 2, "name": "Carole", "friends": ["Joseph", "Tanya", "Tom"], "hobbies": ["sewing", "surfing"]},
            doc! {"_id": 3, "name": "Terry", "friends": ["Tom", "Tanya"], "hobbies": ["knitting", "frisbee"]},
            doc! {"_id": 4, "name": "Tom", "friends": ["Tanya", "Carole", "Terry"], "hobbies": ["tennis", "golf"]},
            doc! {"_id": 5, "name": "Bob", "friends": ["Angelo"], "hobbies": ["golf"]},
            doc! {"_id": 6, "name": "Shirley", "friends": ["Angelo", "Joseph", "Tanya"], "hobbies": ["cooking", "golf"]},
            doc! {"_id": 7, "name": "Angelo", "friends": ["Shirley"], "hobbies": ["golf"]},
            doc! {"_id": 8, "name": "Joseph", "friends": ["Shirley", "Carole"], "hobbies": ["golf"]},
        ],
    )
    .unwrap();
    let pipeline = [
        doc! {"$match": {"name": "Tanya"}},
        doc! {"$graphLookup": {
            "from": "people", "startWith": "$friends", "connectFromField": "friends",
            "connectToField": "name", "as": "golfers",
            "restrictSearchWithMatch": {"hobbies": "golf"},
        }},
    ];
    let out = run(&h, "people", &pipeline).unwrap();
    // Shirley golfs (Terry and Carole do not, so their friends are not reached through them);
    // from Shirley: Angelo, Joseph and Tanya herself; Tanya's friends add no one new.
    let mut ids: Vec<i32> = found(&out[0], "golfers", None)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, [6, 1, 7, 8]);
    ids.sort_unstable();
    assert_eq!(ids, [1, 6, 7, 8]);
}

#[test]
fn values_compare_as_mongodb_compares_them() {
    let (_d, h) = history_common::open();
    h.insert_many(
        "db",
        "g",
        vec![
            doc! {"_id": 1, "k": 1_i64, "next": 2.0},
            doc! {"_id": 2, "k": 2, "next": Bson::Decimal128("3".parse().unwrap())},
            doc! {"_id": 3, "k": 3.0, "next": "3"},
            doc! {"_id": 4, "k": "3"},
            doc! {"_id": 5, "next": 1},
            doc! {"_id": 6, "k": Bson::Null},
            doc! {"_id": 7, "k": {"a": [1, 2]}},
            doc! {"_id": 8, "k": [[1, 2], 9]},
        ],
    )
    .unwrap();
    let from = |start: Bson| {
        let pipeline = [
            doc! {"$limit": 1},
            doc! {"$graphLookup": {
                "from": "g", "startWith": start, "connectFromField": "next",
                "connectToField": "k", "as": "r", "depthField": "d",
            }},
        ];
        found(&run(&h, "g", &pipeline).unwrap()[0], "r", Some("d"))
    };
    // Numbers equal across int, long, double and decimal; the string "3" is another value.
    assert_eq!(
        from(Bson::Int32(1)),
        [(1, Some(0)), (2, Some(1)), (3, Some(2)), (4, Some(3))]
    );
    // Null reaches a null field and the documents without the field.
    assert_eq!(
        from(Bson::Null),
        [
            (5, Some(0)),
            (6, Some(0)),
            (1, Some(1)),
            (2, Some(2)),
            (3, Some(3)),
            (4, Some(4))
        ]
    );
    // A missing startWith starts nowhere.
    assert_eq!(from(Bson::String("$nothing".into())), []);
    // A document compares whole; an array value as a whole or by its elements, one level.
    assert_eq!(from(Bson::Document(doc! {"a": [1, 2]})), [(7, Some(0))]);
    let pair = Bson::Array(vec![Bson::Int32(1), Bson::Int32(2)]);
    // startWith's array is its elements: 1 and 2 reach 1 and 2 (and on), not 8.
    assert_eq!(from(pair.clone()).first(), Some(&(1, Some(0))));
    assert_eq!(from(Bson::Array(vec![pair])), [(8, Some(0))]);
    assert_eq!(from(Bson::Int32(9)), [(8, Some(0))]);
}

#[test]
fn specification_errors_are_mongodbs() {
    let (_d, h) = employees();
    let base = doc! {
        "from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
        "connectToField": "name", "as": "chain",
    };
    let with = |k: &str, v: Bson| {
        let mut spec = base.clone();
        spec.insert(k, v);
        run(&h, "employees", &[doc! {"$graphLookup": spec}])
    };
    let without = |k: &str| {
        let mut spec = base.clone();
        spec.remove(k);
        run(&h, "employees", &[doc! {"$graphLookup": spec}]).map(|_| ())
    };
    let code = |r: Result<Vec<Document>, (i32, String)>| r.map(|_| ()).map_err(|(c, _)| c);
    assert_eq!(
        run(&h, "employees", &[doc! {"$graphLookup": 5}]),
        Err((
            9,
            "the $graphLookup stage specification must be an object, but found int".into()
        ))
    );
    assert_eq!(without("from").map_err(|(c, _)| c), Err(9));
    assert_eq!(
        with("from", Bson::Int32(1)),
        Err((
            9,
            "$graphLookup 'from' field must be a string, but found int".into()
        ))
    );
    for k in ["as", "startWith", "connectFromField", "connectToField"] {
        assert_eq!(
            without(k),
            Err((
                40105,
                "$graphLookup requires 'from', 'as', 'startWith', 'connectFromField', and 'connectToField' to be specified.".into()
            )),
            "{k}"
        );
    }
    assert_eq!(code(with("as", Bson::String(String::new()))), Err(40105));
    assert_eq!(
        with("as", Bson::Int32(1)),
        Err((
            40103,
            "expected string as argument for as, found: int".into()
        ))
    );
    assert_eq!(
        with("zz", Bson::Int32(1)),
        Err((40104, "Unknown argument to $graphLookup: zz".into()))
    );
    assert_eq!(
        with("maxDepth", Bson::String("1".into())),
        Err((40100, "maxDepth must be numeric, found type: string".into()))
    );
    assert_eq!(
        with("maxDepth", Bson::Int32(-1)),
        Err((
            40101,
            "maxDepth requires a nonnegative argument, found: -1".into()
        ))
    );
    assert_eq!(
        with("maxDepth", Bson::Double(1.5)),
        Err((
            40102,
            "maxDepth could not be represented as a long long: 1".into()
        ))
    );
    assert_eq!(code(with("maxDepth", Bson::Double(f64::NAN))), Err(40102));
    assert_eq!(code(with("maxDepth", Bson::Double(2.0))), Ok(()));
    assert_eq!(code(with("maxDepth", Bson::Int64(i64::MAX))), Ok(()));
    assert_eq!(
        with("restrictSearchWithMatch", Bson::Int32(1)),
        Err((
            40185,
            "restrictSearchWithMatch must be an object, found int".into()
        ))
    );
    assert_eq!(
        code(with(
            "restrictSearchWithMatch",
            Bson::Document(doc! {"$nope": 1})
        )),
        Err(2)
    );
    assert_eq!(code(with("as", Bson::String("$x".into()))), Err(16410));
    assert_eq!(
        code(with("depthField", Bson::String("a..b".into()))),
        Err(15998)
    );
    assert_eq!(
        code(with("connectToField", Bson::String("$n".into()))),
        Err(16410)
    );
    // The paths are MongoDB's `FieldPath`s: empty 40352 (an empty `as` or connect field is a
    // missing one, 40105, checked first), a trailing `.` 40353, and a DBRef's `$id` is a
    // field name it allows.
    assert_eq!(
        code(with("depthField", Bson::String(String::new()))),
        Err(40352)
    );
    assert_eq!(code(with("as", Bson::String(String::new()))), Err(40105));
    assert_eq!(
        code(with("connectFromField", Bson::String("a.".into()))),
        Err(40353)
    );
    assert_eq!(
        code(with("depthField", Bson::String("d.$id".into()))),
        Ok(())
    );
    // An update pipeline and a change stream may not hold it.
    let e = h
        .update(
            "db",
            "employees",
            &doc! {},
            &vec![doc! {"$graphLookup": base.clone()}],
            streamcache::history::UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 72);
}

/// `$facet` and `$lookup`'s sub-pipelines may hold the stage, as in MongoDB.
#[test]
fn inside_facet_and_lookup_sub_pipelines() {
    let (_d, h) = employees();
    let search = doc! {"$graphLookup": {
        "from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
        "connectToField": "name", "as": "chain",
    }};
    let out = run(
        &h,
        "employees",
        &[
            doc! {"$match": {"_id": 6}},
            doc! {"$facet": {"up": [search.clone(), {"$project": {"n": {"$size": "$chain"}}}]}},
        ],
    )
    .unwrap();
    assert_eq!(
        out[0].get_array("up").unwrap()[0]
            .as_document()
            .unwrap()
            .get_i32("n")
            .unwrap(),
        3
    );
    let out = run(
        &h,
        "employees",
        &[
            doc! {"$match": {"_id": 1}},
            doc! {"$lookup": {"from": "employees", "pipeline": [{"$match": {"_id": 5}}, search], "as": "x"}},
        ],
    )
    .unwrap();
    let x = out[0].get_array("x").unwrap()[0].as_document().unwrap();
    assert_eq!(found(x, "chain", None), [(3, None), (2, None), (1, None)]);
}

#[tokio::test]
async fn the_data_api_runs_it() {
    let engine = Arc::new(Engine::temporary().unwrap());
    let app = streamcache::api::router(engine.clone());
    let call = |action: &'static str, body| data_api_call(&app, ("db", "tree"), action, body);
    let docs = json!([
        {"_id": 1, "parent": null},
        {"_id": 2, "parent": 1},
        {"_id": 3, "parent": 2},
    ]);
    assert_eq!(
        call("insertMany", json!({"documents": docs})).await.0,
        StatusCode::OK
    );
    let (s, body) = call(
        "aggregate",
        json!({"pipeline": [
            {"$match": {"_id": 3}},
            {"$graphLookup": {"from": "tree", "startWith": "$parent", "connectFromField": "parent",
                "connectToField": "_id", "as": "ancestors", "depthField": "up"}},
            {"$project": {"ancestors._id": 1, "ancestors.up": 1}},
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["documents"],
        json!([{"_id": 3, "ancestors": [{"_id": 2, "up": 0}, {"_id": 1, "up": 1}]}])
    );
}
