//! Capability: the `$merge` stage — an aggregation's output written into a collection, each
//! document matched to a target by its `on` fields: `whenMatched` replace, merge (the default),
//! keepExisting, fail and a pipeline reading `$$new` or `let` variables; `whenNotMatched`
//! insert (the default), discard and fail; the unique index `on` needs; MongoDB 7.0's codes for
//! a misplaced or malformed stage; one batch for all writes (a failure leaves the target as it
//! was); the change events the writes make.
//!
//! Method: a store on a manual clock in a temporary directory; each case aggregates a small
//! source collection into a target and reads the target back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Document, doc};
use streamcache::history::{FindOptions, History, IndexModel, WatchOptions, WatchScope};

fn read(h: &History, coll: &str) -> Vec<Document> {
    h.find("db", coll, &doc! {}, &FindOptions::default())
        .unwrap()
}

/// Source `src`: three sales; target `totals`: one existing total for `a`.
fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_many(
        "db",
        "src",
        vec![
            doc! {"_id": 1, "item": "a", "qty": 2},
            doc! {"_id": 2, "item": "b", "qty": 5},
            doc! {"_id": 3, "item": "a", "qty": 1},
        ],
    )
    .unwrap();
    h.insert_many(
        "db",
        "totals",
        vec![doc! {"_id": "a", "qty": 10, "note": "kept"}],
    )
    .unwrap();
    (dir, h)
}

fn group_then(merge: Document) -> Vec<Document> {
    vec![
        doc! {"$group": {"_id": "$item", "qty": {"$sum": "$qty"}}},
        doc! {"$sort": {"_id": 1}},
        merge,
    ]
}

#[test]
fn the_default_merges_matched_documents_and_inserts_the_rest() {
    let (_dir, h) = open();
    let out = h
        .aggregate("db", "src", &group_then(doc! {"$merge": "totals"}))
        .unwrap();
    assert!(out.is_empty(), "$merge returns nothing: {out:?}");
    assert_eq!(
        read(&h, "totals"),
        vec![
            doc! {"_id": "a", "qty": 3, "note": "kept"},
            doc! {"_id": "b", "qty": 5},
        ]
    );
    // Documents without `_id` (even empty ones) get one and are inserted.
    h.aggregate(
        "db",
        "src",
        &[
            doc! {"$project": {"_id": 0, "absent": 1}},
            doc! {"$merge": "empties"},
        ],
    )
    .unwrap();
    let empties = read(&h, "empties");
    assert_eq!(empties.len(), 3);
    assert!(
        empties
            .iter()
            .all(|d| d.len() == 1 && d.get_object_id("_id").is_ok()),
        "{empties:?}"
    );
}

#[test]
fn when_matched_modes() {
    for (mode, expected_a) in [
        ("replace", doc! {"_id": "a", "qty": 3}),
        ("keepExisting", doc! {"_id": "a", "qty": 10, "note": "kept"}),
    ] {
        let (_dir, h) = open();
        h.aggregate(
            "db",
            "src",
            &group_then(doc! {"$merge": {"into": "totals", "whenMatched": mode}}),
        )
        .unwrap();
        assert_eq!(
            read(&h, "totals"),
            vec![expected_a, doc! {"_id": "b", "qty": 5}],
            "{mode}"
        );
    }
    // A pipeline reads the incoming document as $$new.
    let (_dir, h) = open();
    h.aggregate(
        "db",
        "src",
        &group_then(doc! {"$merge": {
            "into": "totals",
            "whenMatched": [{"$set": {"qty": {"$add": ["$qty", "$$new.qty"]}}}],
            "whenNotMatched": "discard",
        }}),
    )
    .unwrap();
    assert_eq!(
        read(&h, "totals"),
        vec![doc! {"_id": "a", "qty": 13, "note": "kept"}]
    );
    // … or the `let` variables, evaluated on the incoming document.
    let (_dir, h) = open();
    h.aggregate(
        "db",
        "src",
        &group_then(doc! {"$merge": {
            "into": "totals",
            "let": {"added": "$qty"},
            "whenMatched": [{"$set": {"last": "$$added"}}],
        }}),
    )
    .unwrap();
    assert_eq!(
        read(&h, "totals"),
        vec![
            doc! {"_id": "a", "qty": 10, "note": "kept", "last": 3},
            doc! {"_id": "b", "qty": 5},
        ]
    );
}

#[test]
fn failing_modes_write_nothing() {
    let (_dir, h) = open();
    let before = read(&h, "totals");
    // whenMatched fail: the match is a duplicate key.
    let e = h
        .aggregate(
            "db",
            "src",
            &group_then(doc! {"$merge": {"into": "totals", "whenMatched": "fail"}}),
        )
        .unwrap_err();
    assert_eq!(e.code(), 11000);
    // whenNotMatched fail: `b` has no target.
    let e = h
        .aggregate(
            "db",
            "src",
            &group_then(doc! {"$merge": {"into": "totals", "whenNotMatched": "fail"}}),
        )
        .unwrap_err();
    assert_eq!(
        (e.code(), e.code_name()),
        (13113, "MergeStageNoMatchingDocument")
    );
    assert_eq!(
        read(&h, "totals"),
        before,
        "one batch: nothing of either was written"
    );
}

#[test]
fn on_other_fields_needs_a_unique_index_and_the_fields_in_every_document() {
    let (_dir, h) = open();
    let pipeline = vec![
        doc! {"$project": {"_id": 0, "sku": "$item", "qty": 1}},
        doc! {"$merge": {"into": "stock", "on": "sku", "whenMatched": "replace"}},
    ];
    let e = h.aggregate("db", "src", &pipeline).unwrap_err();
    assert_eq!(e.code(), 51183);
    h.create_index(
        "db",
        "stock",
        &IndexModel {
            keys: vec![("sku".into(), 1)],
            name: None,
            unique: true,
        },
    )
    .unwrap();
    h.aggregate("db", "src", &pipeline).unwrap();
    let stock = read(&h, "stock");
    // Three source documents, two skus: the second `a` replaced the first.
    assert_eq!(stock.len(), 2);
    let qty = |sku: &str| {
        stock
            .iter()
            .find(|d| d.get_str("sku").ok() == Some(sku))
            .and_then(|d| d.get_i32("qty").ok())
    };
    assert_eq!((qty("a"), qty("b")), (Some(1), Some(5)));
    // A document without the `on` field.
    let e = h
        .aggregate(
            "db",
            "src",
            &[
                doc! {"$project": {"_id": 0, "qty": 1}},
                doc! {"$merge": {"into": "stock", "on": "sku"}},
            ],
        )
        .unwrap_err();
    assert_eq!(e.code(), 51132);
}

#[test]
fn a_misplaced_or_malformed_merge_is_refused_before_anything_runs() {
    let (_dir, h) = open();
    for (pipeline, code) in [
        (vec![doc! {"$merge": "totals"}, doc! {"$match": {}}], 40601),
        (vec![doc! {"$merge": 5}], 51182),
        (vec![doc! {"$merge": {"into": "t", "bogus": 1}}], 40415),
        (
            vec![doc! {"$merge": {"into": "t", "whenMatched": "sometimes"}}],
            2,
        ),
        (vec![doc! {"$merge": {"into": "t", "on": []}}], 51187),
        (
            vec![
                doc! {"$merge": {"into": "t", "whenMatched": "keepExisting", "whenNotMatched": "discard"}},
            ],
            51181,
        ),
        (
            vec![doc! {"$merge": {"into": "t", "let": {"x": 1}, "whenMatched": "merge"}}],
            51199,
        ),
        (
            vec![doc! {"$merge": {"into": "t", "whenMatched": [{"$match": {}}]}}],
            72,
        ),
    ] {
        let e = h.aggregate("db", "src", &pipeline).unwrap_err();
        assert_eq!(e.code(), code, "{pipeline:?}: {e}");
    }
    assert!(h.list_collections("db").unwrap().iter().all(|c| c != "t"));
}

#[test]
fn the_writes_make_change_events() {
    let (_dir, h) = open();
    let mut s = h
        .watch(
            WatchScope::Collection {
                db: "db".into(),
                coll: "totals".into(),
            },
            WatchOptions::default(),
        )
        .unwrap();
    h.aggregate("db", "src", &group_then(doc! {"$merge": "totals"}))
        .unwrap();
    let events = s.try_next_batch(10).unwrap().events;
    let ops: Vec<&str> = events
        .iter()
        .map(|e| e.get_str("operationType").unwrap())
        .collect();
    assert_eq!(ops, ["update", "insert"]);
}

/// `$merge` on fields other than `_id` commits only while the unique index on them exists: the
/// index is checked again under the batch's writer lock, so an index dropped between the
/// stage's first check and its writes gives 51183 and nothing is written. Replaying the
/// events of merges racing a drop and re-create of the index, no merge write lands while it
/// is gone.
#[test]
fn merge_never_commits_without_the_unique_index_it_checked() {
    let (_dir, h) = history_common::open();
    let h = std::sync::Arc::new(h);
    let model = IndexModel::from_documents(&doc! {"k": 1}, Some(&doc! {"unique": true})).unwrap();
    h.insert_one("db", "s", doc! {"_id": 1, "k": 1}).unwrap();
    h.create_index("db", "t", &model).unwrap();
    let mut all = h
        .watch(
            WatchScope::All,
            WatchOptions {
                show_expanded_events: true,
                ..WatchOptions::default()
            },
        )
        .unwrap();
    let toggler = {
        let h = h.clone();
        std::thread::spawn(move || {
            for _ in 0..1_000 {
                h.drop_index("db", "t", "k_1").unwrap();
                h.create_index("db", "t", &model).unwrap();
            }
        })
    };
    let (mut merged, mut refused, mut i) = (0, 0, 0);
    while !toggler.is_finished() {
        i += 1;
        let pipeline = [
            doc! {"$project": {"_id": 0, "k": 1, "v": {"$literal": i}}},
            doc! {"$merge": {"into": "t", "on": "k"}},
        ];
        match h.aggregate("db", "s", &pipeline) {
            Ok(_) => merged += 1,
            Err(e) if e.code() == 51183 => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    toggler.join().unwrap();
    let mut index_alive = true;
    loop {
        let evs = all.try_next_batch(10_000).unwrap().events;
        if evs.is_empty() {
            break;
        }
        for ev in evs {
            match ev.get_str("operationType").unwrap() {
                "createIndexes" => index_alive = true,
                "dropIndexes" => index_alive = false,
                op @ ("insert" | "update" | "replace") => {
                    assert!(index_alive, "a merge's {op} landed without the index: {ev}");
                }
                _ => {}
            }
        }
    }
    assert!(
        merged > 0 && refused > 0,
        "{merged} merged, {refused} refused"
    );
}
