//! Capability: the `$redact` stage — an expression deciding at every document level whether
//! to keep it whole (`$$KEEP`), drop it (`$$PRUNE`) or keep its fields and decide again for
//! each embedded document (`$$DESCEND`, in arrays too), with `$$CURRENT` the level decided and
//! `$$ROOT` the top document — in aggregations and change streams, with MongoDB's errors.
//!
//! Method: the two examples of MongoDB's `$redact` documentation and small documents built
//! for one rule each; each result is compared with the document MongoDB returns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod history_common;

use bson::{Document, doc};
use streamcache::history::{History, UpdateOptions, WatchOptions, WatchScope};

fn run(h: &History, coll: &str, pipeline: &[Document]) -> Result<Vec<Document>, (i32, String)> {
    h.aggregate("db", coll, pipeline)
        .map_err(|e| (e.code(), e.to_string()))
}

#[test]
fn descend_keeps_the_sections_a_user_may_read() {
    let (_d, h) = history_common::open();
    h.insert_one(
        "db",
        "forecasts",
        doc! {
            "_id": 1,
            "title": "123 Department Report",
            "tags": ["G", "STLW"],
            "year": 2014,
            "subsections": [
                {"subtitle": "Section 1: Overview", "tags": ["SI", "G"], "content": "Section 1"},
                {"subtitle": "Section 2: Analysis", "tags": ["STLW"], "content": "Section 2"},
                {"subtitle": "Section 3: Budgeting", "tags": ["TK"],
                    "content": {"text": "Section 3", "tags": ["HCS"]}},
            ],
        },
    )
    .unwrap();
    let pipeline = [
        doc! {"$match": {"year": 2014}},
        doc! {"$redact": {"$cond": {
            "if": {"$gt": [{"$size": {"$setIntersection": ["$tags", ["STLW", "G"]]}}, 0]},
            "then": "$$DESCEND",
            "else": "$$PRUNE",
        }}},
    ];
    assert_eq!(
        run(&h, "forecasts", &pipeline).unwrap(),
        vec![doc! {
            "_id": 1,
            "title": "123 Department Report",
            "tags": ["G", "STLW"],
            "year": 2014,
            "subsections": [
                {"subtitle": "Section 1: Overview", "tags": ["SI", "G"], "content": "Section 1"},
                {"subtitle": "Section 2: Analysis", "tags": ["STLW"], "content": "Section 2"},
            ],
        }]
    );
}

#[test]
fn prune_drops_every_level_five_part_and_keep_stops_the_descent() {
    let (_d, h) = history_common::open();
    let account = doc! {
        "_id": 1, "level": 1, "acct_id": "xyz123",
        "cc": {
            "level": 5, "type": "yy", "num": 0,
            "billing_addr": {"level": 5, "addr1": "123 ABC Street"},
            "shipping_addr": [{"level": 3, "addr1": "987 XYZ Ave"}, {"level": 3, "addr1": "PO Box 0123"}],
        },
        "status": "A",
    };
    h.insert_one("db", "accounts", account.clone()).unwrap();
    let by_level = |then_5: &str, otherwise: &str| {
        [
            doc! {"$match": {"status": "A"}},
            doc! {"$redact": {"$cond": {
                "if": {"$eq": ["$level", 5]}, "then": then_5, "else": otherwise,
            }}},
        ]
    };
    assert_eq!(
        run(&h, "accounts", &by_level("$$PRUNE", "$$DESCEND")).unwrap(),
        vec![doc! {"_id": 1, "level": 1, "acct_id": "xyz123", "status": "A"}]
    );
    // $$KEEP at the top keeps everything below without deciding again.
    assert_eq!(
        run(&h, "accounts", &by_level("$$PRUNE", "$$KEEP")).unwrap(),
        vec![account.clone()]
    );
    // Pruning the top document removes it from the stream.
    let none = [doc! {"$redact": "$$PRUNE"}];
    assert_eq!(run(&h, "accounts", &none).unwrap(), Vec::<Document>::new());
    // $$ROOT stays the top document while $$CURRENT descends: every level is kept or pruned
    // by the top document's `keep`, which no embedded document has.
    h.insert_one(
        "db",
        "flags",
        doc! {"_id": 1, "keep": true, "sub": {"x": 1, "deeper": {"y": 2}}},
    )
    .unwrap();
    let rooted =
        [doc! {"$redact": {"$cond": [{"$eq": ["$$ROOT.keep", true]}, "$$DESCEND", "$$PRUNE"]}}];
    assert_eq!(
        run(&h, "flags", &rooted).unwrap(),
        vec![doc! {"_id": 1, "keep": true, "sub": {"x": 1, "deeper": {"y": 2}}}]
    );
    // The same with `$keep` (the level's own field) prunes every embedded document.
    let current = [doc! {"$redact": {"$cond": [{"$eq": ["$keep", true]}, "$$DESCEND", "$$PRUNE"]}}];
    assert_eq!(
        run(&h, "flags", &current).unwrap(),
        vec![doc! {"_id": 1, "keep": true}]
    );
    // `$$CURRENT.level` is `$level`; an array whose documents are all pruned stays, empty.
    let no_shipping =
        [doc! {"$redact": {"$cond": [{"$eq": ["$$CURRENT.level", 3]}, "$$PRUNE", "$$DESCEND"]}}];
    let mut expected = account;
    expected
        .get_document_mut("cc")
        .unwrap()
        .insert("shipping_addr", bson::Bson::Array(Vec::new()));
    assert_eq!(run(&h, "accounts", &no_shipping).unwrap(), vec![expected]);
}

#[test]
fn arrays_are_descended_at_any_depth() {
    let (_d, h) = history_common::open();
    h.insert_one(
        "db",
        "c",
        doc! {"_id": 1, "a": [1, {"x": 1}, [{"x": 2}, {"y": 3}, 4], {"y": 5}]},
    )
    .unwrap();
    // Prune every embedded document with an x.
    let pipeline =
        [doc! {"$redact": {"$cond": [{"$ifNull": ["$x", false]}, "$$PRUNE", "$$DESCEND"]}}];
    assert_eq!(
        run(&h, "c", &pipeline).unwrap(),
        vec![doc! {"_id": 1, "a": [1, [{"y": 3}, 4], {"y": 5}]}]
    );
}

#[test]
fn errors_are_mongodbs() {
    let (_d, h) = history_common::open();
    h.insert_one("db", "c", doc! {"_id": 1, "s": {"t": 1}})
        .unwrap();
    assert_eq!(
        run(&h, "c", &[doc! {"$redact": "$s"}]),
        Err((
            17053,
            "PlanExecutor error during aggregation :: caused by :: $redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and $$PRUNE, but returned {t: 1}".into()
        ))
    );
    assert_eq!(
        run(&h, "c", &[doc! {"$redact": "$missing"}])
            .map_err(|(c, m)| (c, m.ends_with("returned MISSING"))),
        Err((17053, true))
    );
    // The three variables exist only in $redact.
    let e = run(&h, "c", &[doc! {"$project": {"x": "$$DESCEND"}}]).unwrap_err();
    assert_eq!(e.0, 17276);
    // Not in an update pipeline.
    let e = h
        .update(
            "db",
            "c",
            &doc! {},
            &vec![doc! {"$redact": "$$KEEP"}],
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 72);
}

#[test]
fn a_change_stream_redacts_its_events() {
    let (_d, h) = history_common::open();
    let watch = |stage: Document| {
        h.watch(
            WatchScope::Collection {
                db: "db".into(),
                coll: "c".into(),
            },
            WatchOptions {
                pipeline: vec![stage],
                ..WatchOptions::default()
            },
        )
        .unwrap()
    };
    // Keep the event but prune its secret parts; the token (`_id`) has no `secret`.
    let mut redacted =
        watch(doc! {"$redact": {"$cond": [{"$eq": ["$secret", true]}, "$$PRUNE", "$$DESCEND"]}});
    // A redaction that prunes the token document is 280.
    let mut token_pruned = watch(
        doc! {"$redact": {"$cond": [{"$ifNull": ["$_data", false]}, "$$PRUNE", "$$DESCEND"]}},
    );
    h.insert_one(
        "db",
        "c",
        doc! {"_id": 1, "open": 1, "card": {"secret": true, "n": 4}},
    )
    .unwrap();
    let events = redacted.try_next_batch(10).unwrap().events;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].get_document("fullDocument").unwrap(),
        &doc! {"_id": 1, "open": 1}
    );
    assert_eq!(token_pruned.try_next_batch(10).unwrap_err().code(), 280);
}
