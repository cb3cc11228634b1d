//! Capability: the `$documents` stage — an expression's array of documents as a pipeline's
//! input: a database-level aggregation (`History::aggregate_db`, MongoDB's `{aggregate: 1}`)
//! and `$lookup`/`$unionWith` sub-pipelines without a collection — with MongoDB's errors: not
//! first (40602), on a collection (73), not an array (5858203) of documents (40228), inside
//! `$facet` (40600), a sub-pipeline without a collection or `$documents` (9).
//!
//! Method: a store with one small collection; each result is compared with the documents the
//! stage must make, in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::{AggregateOptions, History};

fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    let names: Vec<Document> = (0..4)
        .map(|i| doc! {"_id": i, "name": format!("name_{i}")})
        .collect();
    h.insert_many("db", "names", names).unwrap();
    (dir, h)
}

fn db_level(h: &History, pipeline: &[Document]) -> Result<Vec<Document>, i32> {
    h.aggregate_db("db", pipeline, AggregateOptions::default())
        .map_err(|e| e.code())
}

fn on_names(h: &History, pipeline: &[Document]) -> Result<Vec<Document>, i32> {
    h.aggregate("db", "names", pipeline).map_err(|e| e.code())
}

#[test]
fn a_database_level_aggregation_starts_from_the_documents() {
    let (_d, h) = open();
    assert_eq!(
        db_level(&h, &[doc! {"$documents": [{"a": 1}, {"a": 2}]}]),
        Ok(vec![doc! {"a": 1}, doc! {"a": 2}])
    );
    // An expression evaluated once; later stages run over what it made.
    let out = db_level(
        &h,
        &[
            doc! {"$documents": {"$map": {"input": {"$range": [0, 100]}, "in": {"x": "$$this"}}}},
            doc! {"$match": {"x": {"$gte": 97}}},
        ],
    );
    assert_eq!(
        out,
        Ok(vec![doc! {"x": 97}, doc! {"x": 98}, doc! {"x": 99}])
    );
    // Stages that read collections read the database's.
    let out = db_level(
        &h,
        &[
            doc! {"$documents": [{"id": 2}, {"id": 9}]},
            doc! {"$lookup": {"from": "names", "localField": "id", "foreignField": "_id", "as": "n"}},
            doc! {"$project": {"_id": 0, "id": 1, "n": "$n.name"}},
        ],
    );
    assert_eq!(
        out,
        Ok(vec![
            doc! {"id": 2, "n": ["name_2"]},
            doc! {"id": 9, "n": []}
        ])
    );
    // An empty array makes no document.
    assert_eq!(db_level(&h, &[doc! {"$documents": []}]), Ok(vec![]));
    // With a command's let and $$NOW.
    let options = AggregateOptions {
        let_vars: Some(doc! {"n": 3}),
        ..AggregateOptions::default()
    };
    let out = h
        .aggregate_db(
            "db",
            &[doc! {"$documents": [{"n": "$$n", "now": {"$type": "$$NOW"}}]}],
            options,
        )
        .unwrap();
    assert_eq!(out, vec![doc! {"n": 3, "now": "date"}]);
}

#[test]
fn lookup_and_union_with_take_documents_instead_of_a_collection() {
    let (_d, h) = open();
    let out = on_names(
        &h,
        &[
            doc! {"$lookup": {
                "let": {"id": "$_id"},
                "pipeline": [
                    {"$documents": [{"xx": 1}, {"xx": 2}]},
                    {"$match": {"$expr": {"$eq": ["$$id", "$xx"]}}},
                ],
                "as": "names",
            }},
            doc! {"$match": {"names": {"$ne": []}}},
            doc! {"$project": {"_id": 1, "names": 1}},
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"_id": 1, "names": [{"xx": 1}]},
            doc! {"_id": 2, "names": [{"xx": 2}]}
        ]
    );
    // With the equality too.
    let out = on_names(
        &h,
        &[
            doc! {"$lookup": {
                "localField": "_id", "foreignField": "xx",
                "pipeline": [{"$documents": [{"xx": 1}, {"xx": 3}]}],
                "as": "j",
            }},
            doc! {"$project": {"n": {"$size": "$j"}}},
        ],
    )
    .unwrap();
    let sizes: Vec<i32> = out.iter().map(|d| d.get_i32("n").unwrap()).collect();
    assert_eq!(sizes, [0, 1, 0, 1]);
    let out = on_names(
        &h,
        &[
            doc! {"$match": {"_id": 0}},
            doc! {"$unionWith": {"pipeline": [{"$documents": {"$map": {"input": {"$range": [0, 3]}, "in": {"x": "$$this"}}}}]}},
            doc! {"$project": {"_id": 0, "name": 1, "x": 1}},
        ],
    )
    .unwrap();
    assert_eq!(
        out,
        vec![
            doc! {"name": "name_0"},
            doc! {"x": 0},
            doc! {"x": 1},
            doc! {"x": 2}
        ]
    );
    // Inside a $facet, a sub-pipeline's own $documents is allowed.
    let out = on_names(
        &h,
        &[doc! {"$facet": {"f": [
            {"$limit": 1},
            {"$unionWith": {"pipeline": [{"$documents": [{"u": 1}]}]}},
            {"$count": "n"},
        ]}}],
    )
    .unwrap();
    assert_eq!(out, vec![doc! {"f": [{"n": 2}]}]);
}

#[test]
fn misplaced_or_malformed_documents_are_mongodbs_errors() {
    let (_d, h) = open();
    let docs = doc! {"$documents": [{"a": 1}]};
    // On a collection.
    assert_eq!(on_names(&h, std::slice::from_ref(&docs)), Err(73));
    // Not first, on a collection or not.
    let late = [doc! {"$project": {"a": [{"xx": 1}]}}, docs.clone()];
    assert_eq!(on_names(&h, &late), Err(40602));
    // A database-level pipeline is checked for its first stage first, as MongoDB checks the
    // namespace before the stages' positions.
    assert_eq!(db_level(&h, &late), Err(73));
    let late_after_match = [doc! {"$match": {}}, docs.clone()];
    assert_eq!(on_names(&h, &late_after_match), Err(40602));
    // A database-level aggregation needs it.
    assert_eq!(db_level(&h, &[doc! {"$match": {}}]), Err(73));
    assert_eq!(db_level(&h, &[]), Err(73));
    // Elements must be documents.
    assert_eq!(db_level(&h, &[doc! {"$documents": [1, 2, 3]}]), Err(40228));
    assert_eq!(
        db_level(&h, &[doc! {"$documents": [{"a": 1}, 2]}]),
        Err(40228)
    );
    // Anything but an array: "an array is expected" (a strict $unwind, in MongoDB).
    for not_array in [
        Bson::String("string".into()),
        Bson::Null,
        Bson::String("$missing".into()),
        Bson::Document(doc! {"$literal": {"a": 1}}),
    ] {
        let e = h
            .aggregate_db(
                "db",
                &[doc! {"$documents": not_array.clone()}],
                AggregateOptions::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), 5_858_203, "{not_array}");
        assert!(e.to_string().ends_with("an array is expected"), "{e}");
    }
    let e = h
        .aggregate_db(
            "db",
            &[doc! {"$documents": [2]}],
            AggregateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "PlanExecutor error during aggregation :: caused by :: 'newRoot' expression  must evaluate to an object, but resulting value was: 2. Type of resulting value: 'int'. Input document: {_tempDocumentsField: 2}"
    );
    // In a $facet's own pipeline.
    assert_eq!(
        on_names(&h, &[doc! {"$facet": {"f": [docs.clone()]}}]),
        Err(40600)
    );
    // A sub-pipeline with a collection may not start with it.
    assert_eq!(
        on_names(
            &h,
            &[doc! {"$lookup": {"from": "names", "pipeline": [docs.clone()], "as": "x"}}]
        ),
        Err(73)
    );
    assert_eq!(
        on_names(
            &h,
            &[doc! {"$unionWith": {"coll": "names", "pipeline": [docs.clone()]}}]
        ),
        Err(73)
    );
    // A sub-pipeline without a collection must start with it.
    assert_eq!(
        on_names(
            &h,
            &[doc! {"$unionWith": {"pipeline": [{"$project": {"a": 1}}]}}]
        ),
        Err(9)
    );
    assert_eq!(
        on_names(
            &h,
            &[
                doc! {"$lookup": {"let": {"i": "$_id"}, "as": "aa", "pipeline": [{"$project": {"a": 1}}]}}
            ]
        ),
        Err(9)
    );
    assert_eq!(
        on_names(&h, &[doc! {"$lookup": {"let": {"i": "$_id"}, "as": "aa"}}]),
        Err(9)
    );
    // An update pipeline may not hold it.
    let e = h
        .update(
            "db",
            "names",
            &doc! {},
            &vec![docs],
            streamcache::history::UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 72);
}
