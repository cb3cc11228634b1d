//! Capability: one `History::commit` batch sees its own earlier writes exactly as the store
//! would after the commit — through `_id` points, unique and non-unique index plans, ranges
//! and collection scans — including staged deletes hiding stored documents and staged
//! updates moving documents out of a filter.
//!
//! Method: stage writes in one `commit`, then compare the outcomes and the committed state
//! with what sequential single-operation writes give.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use history_common::open;
use streamcache::history::{
    EncodedDocument, FindAndModifyOptions, FindOptions, FullDocumentBeforeChange, History,
    IndexModel, UpdateOptions, WatchOptions, WatchScope, WriteOp, WriteOutcome,
};

fn index(h: &History, field: &str, unique: bool) {
    h.create_index(
        "shop",
        "orders",
        &IndexModel {
            keys: vec![(field.to_owned(), 1)],
            name: None,
            unique,
        },
    )
    .unwrap();
}

fn upsert(filter: Document, document: Document) -> WriteOp {
    WriteOp::Upsert {
        db: "shop".into(),
        coll: "orders".into(),
        filter,
        document,
    }
}

fn update(filter: Document, update: Document, multi: bool) -> WriteOp {
    WriteOp::Update {
        db: "shop".into(),
        coll: "orders".into(),
        filter,
        update,
        options: UpdateOptions {
            multi,
            ..UpdateOptions::default()
        },
    }
}

fn find(h: &History, filter: Document) -> Vec<Document> {
    h.find("shop", "orders", &filter, &FindOptions::default())
        .unwrap()
}

fn sorted_by(h: &History, filter: Document, sort: Document) -> Vec<Document> {
    h.find(
        "shop",
        "orders",
        &filter,
        &FindOptions {
            sort: Some(sort),
            ..FindOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn ten_thousand_upserts_by_a_unique_field_in_one_batch() {
    let (_d, h) = open();
    index(&h, "orderNumber", true);
    // 10,000 distinct order numbers, each upserted twice (the second replaces the first), and
    // 2,000 of them already stored before the batch.
    for n in 0..2_000 {
        h.insert_one("shop", "orders", doc! {"orderNumber": n, "v": -1})
            .unwrap();
    }
    let mut ops = Vec::new();
    for round in 0..2 {
        for n in 0..10_000 {
            ops.push(upsert(
                doc! {"orderNumber": n},
                doc! {"orderNumber": n, "v": round},
            ));
        }
    }
    let outcomes = h.commit(ops, Vec::new()).unwrap();
    assert_eq!(outcomes.len(), 20_000);
    let upserted = outcomes
        .iter()
        .filter(|o| matches!(o, WriteOutcome::Updated(r) if r.upserted_id.is_some()))
        .count();
    assert_eq!(
        upserted, 8_000,
        "only order numbers not stored yet are inserted"
    );
    let modified = outcomes
        .iter()
        .filter(|o| matches!(o, WriteOutcome::Updated(r) if r.matched == 1 && r.modified == 1))
        .count();
    assert_eq!(modified, 12_000);
    assert_eq!(h.count("shop", "orders", &doc! {}).unwrap(), 10_000);
    assert_eq!(h.count("shop", "orders", &doc! {"v": 1}).unwrap(), 10_000);
    let one = find(&h, doc! {"orderNumber": 4_321});
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].get_i32("v").unwrap(), 1);
}

#[test]
fn upserts_by_a_non_unique_field_see_staged_documents() {
    let (_d, h) = open();
    index(&h, "customer", false);
    let mut ops = Vec::new();
    for n in 0..3_000 {
        ops.push(upsert(
            doc! {"customer": n % 1_000},
            doc! {"customer": n % 1_000, "last": n},
        ));
    }
    h.commit(ops, Vec::new()).unwrap();
    assert_eq!(h.count("shop", "orders", &doc! {}).unwrap(), 1_000);
    let c = find(&h, doc! {"customer": 7});
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].get_i32("last").unwrap(), 2_007);
}

#[test]
fn staged_deletes_and_moves_hide_stored_documents() {
    let (_d, h) = open();
    index(&h, "k", false);
    for (id, k) in [(1, 10), (2, 20), (3, 30), (4, 40)] {
        h.insert_one("shop", "orders", doc! {"_id": id, "k": k})
            .unwrap();
    }
    let outcomes = h
        .commit(
            vec![
                // Delete 1, move 2 out of the range, move 4 into it, add 5 inside it.
                WriteOp::Delete {
                    db: "shop".into(),
                    coll: "orders".into(),
                    filter: doc! {"_id": 1},
                    multi: false,
                },
                update(doc! {"k": 20}, doc! {"$set": {"k": 99}}, false),
                update(doc! {"_id": 4}, doc! {"$set": {"k": 15}}, false),
                WriteOp::Insert {
                    db: "shop".into(),
                    coll: "orders".into(),
                    document: doc! {"_id": 5, "k": 12},
                },
                // Sees the batch: 4 (15), 5 (12) and 3 (30) are in [10, 35); 1 and 2 are not.
                update(
                    doc! {"k": {"$gte": 10, "$lt": 35}},
                    doc! {"$set": {"hit": true}},
                    true,
                ),
                // `_id` points: the deleted one is gone, the inserted one is found.
                update(doc! {"_id": 1}, doc! {"$set": {"hit": true}}, false),
                update(doc! {"_id": 5}, doc! {"$inc": {"n": 1}}, false),
                // Unindexed filter (collection scan) over staged and stored documents.
                update(doc! {"n": 1}, doc! {"$inc": {"n": 1}}, true),
            ],
            Vec::new(),
        )
        .unwrap();
    let matched: Vec<u64> = outcomes
        .iter()
        .map(|o| match o {
            WriteOutcome::Updated(r) => r.matched,
            WriteOutcome::Deleted(n) => *n,
            WriteOutcome::Inserted(_) => 1,
        })
        .collect();
    assert_eq!(matched, vec![1, 1, 1, 1, 3, 0, 1, 1]);
    let hits: Vec<Bson> = sorted_by(&h, doc! {"hit": true}, doc! {"k": 1})
        .iter()
        .map(|d| d.get("_id").cloned().unwrap())
        .collect();
    assert_eq!(hits, vec![Bson::Int32(5), Bson::Int32(4), Bson::Int32(3)]);
    assert!(find(&h, doc! {"_id": 1}).is_empty());
    assert_eq!(find(&h, doc! {"k": 99}).len(), 1);
    assert_eq!(find(&h, doc! {"_id": 5})[0].get_i32("n").unwrap(), 2);
}

#[test]
fn sorted_find_and_modify_after_a_batch_sees_its_order() {
    let (_d, h) = open();
    index(&h, "rank", false);
    for (id, rank) in [(1, 1), (2, 2), (3, 3)] {
        h.insert_one("shop", "orders", doc! {"_id": id, "rank": rank})
            .unwrap();
    }
    // In one batch: move 1 to the back, insert 4 at the front; the first by rank is then 4.
    h.commit(
        vec![
            update(doc! {"_id": 1}, doc! {"$set": {"rank": 10}}, false),
            WriteOp::Insert {
                db: "shop".into(),
                coll: "orders".into(),
                document: doc! {"_id": 4, "rank": 0},
            },
            update(doc! {}, doc! {"$set": {"first": true}}, false),
        ],
        Vec::new(),
    )
    .unwrap();
    // Outside a batch, findOneAndUpdate with a sort picks the lowest rank too.
    let first = h
        .find_one_and_update(
            "shop",
            "orders",
            &doc! {"rank": {"$gte": 0}},
            &doc! {"$set": {"picked": true}},
            &FindAndModifyOptions {
                sort: Some(doc! {"rank": 1}),
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(first.get_i32("_id").unwrap(), 4);
    let ranks: Vec<i32> = sorted_by(&h, doc! {}, doc! {"rank": 1})
        .iter()
        .map(|d| d.get_i32("rank").unwrap())
        .collect();
    assert_eq!(ranks, vec![0, 2, 3, 10]);
}

#[test]
fn an_upserted_document_is_stored_with_its_id_first_and_its_fields_in_order() {
    let (_d, h) = open();
    h.commit(
        vec![
            // `_id` in the document, not first: it moves to the front, the rest keeps its order.
            upsert(
                doc! {"orderNumber": 1},
                doc! {"orderNumber": 1, "_id": "one", "status": "new", "lines": [1, 2]},
            ),
            // No `_id` in the document: the filter's equality on `_id` seeds it.
            upsert(
                doc! {"_id": "two", "orderNumber": 2},
                doc! {"orderNumber": 2, "status": "new"},
            ),
        ],
        Vec::new(),
    )
    .unwrap();
    let keys = |id: &str| -> Vec<String> {
        find(&h, doc! {"_id": id})
            .first()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys("one"), ["_id", "orderNumber", "status", "lines"]);
    assert_eq!(keys("two"), ["_id", "orderNumber", "status"]);
    assert_eq!(
        find(&h, doc! {"_id": "one"})[0],
        doc! {"_id": "one", "orderNumber": 1, "status": "new", "lines": [1, 2]}
    );
}

/// Runs the same upserts on two stores, one as `Upsert` of documents and one as
/// `UpsertEncoded` from JSON, and checks that documents, outcomes and change events agree
/// field for field, in order.
fn encoded_upserts_match_document_upserts(indexed: bool) {
    let orders = [
        serde_json::json!({"orderNumber": 1, "status": "new", "lines": [{"qty": 3}], "total": 12.5}),
        serde_json::json!({"orderNumber": 2, "_id": "ignored", "customer": {"n": 7}}),
        // A replacement of order 1, then an identical replacement (no change, no event).
        serde_json::json!({"orderNumber": 1, "status": "shipped", "big": 5_000_000_000_i64}),
        serde_json::json!({"orderNumber": 1, "status": "shipped", "big": 5_000_000_000_i64}),
    ];
    let (_d1, by_document) = open();
    let (_d2, encoded) = open();
    if indexed {
        index(&by_document, "status", false);
        index(&encoded, "status", false);
    }
    let options = WatchOptions {
        full_document_before_change: FullDocumentBeforeChange::WhenAvailable,
        ..WatchOptions::default()
    };
    let mut streams =
        [&by_document, &encoded].map(|h| h.watch(WatchScope::All, options.clone()).unwrap());
    for (i, order) in orders.iter().enumerate() {
        let id = format!("order-{}", order["orderNumber"]);
        let Ok(Bson::Document(mut document)) = Bson::try_from(order.clone()) else {
            panic!("an object");
        };
        document.insert("_id", id.clone());
        let as_document = upsert(doc! {"_id": id.clone()}, document);
        let object = order.as_object().unwrap();
        let as_encoded = WriteOp::UpsertEncoded {
            db: "shop".into(),
            coll: "orders".into(),
            document: EncodedDocument::from_plain_json(object, Bson::String(id))
                .unwrap()
                .unwrap(),
        };
        // Two of them in one batch: the second sees the first's staged document.
        let a = by_document.commit(vec![as_document.clone(), as_document], Vec::new());
        let b = encoded.commit(vec![as_encoded.clone(), as_encoded], Vec::new());
        assert_eq!(a.unwrap(), b.unwrap(), "outcome of write {i}");
    }
    let all = |h: &History| find(h, doc! {});
    let (x, y) = (all(&by_document), all(&encoded));
    assert_eq!(x, y);
    for (a, b) in x.iter().zip(&y) {
        assert!(a.keys().eq(b.keys()), "field order: {a} vs {b}");
    }
    let [s1, s2] = &mut streams;
    let (e1, e2) = (
        s1.try_next_batch(100).unwrap().events,
        s2.try_next_batch(100).unwrap().events,
    );
    assert_eq!(e1.len(), 3, "insert, insert, replace: {e1:?}");
    for (a, b) in e1.iter().zip(&e2) {
        assert_eq!(a, b);
        assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap(), "byte for byte");
    }
    if indexed {
        let shipped = find(&encoded, doc! {"status": "shipped"});
        assert_eq!(shipped.len(), 1, "the index follows the replacement");
        assert!(find(&encoded, doc! {"status": "new"}).is_empty());
    }
}

#[test]
fn an_encoded_upsert_stores_and_reports_what_a_document_upsert_does() {
    encoded_upserts_match_document_upserts(false);
}

#[test]
fn an_encoded_upsert_into_an_indexed_collection_maintains_the_index() {
    encoded_upserts_match_document_upserts(true);
}

#[test]
fn an_encoded_document_from_raw_bytes_is_checked() {
    let good =
        bson::RawDocumentBuf::from_bytes(doc! {"_id": 1, "a": "x"}.to_vec().unwrap()).unwrap();
    let encoded = EncodedDocument::from_raw(good).unwrap();
    assert_eq!(encoded.id(), &Bson::Int32(1));
    let (_d, h) = open();
    h.commit(
        vec![WriteOp::UpsertEncoded {
            db: "shop".into(),
            coll: "orders".into(),
            document: encoded,
        }],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(find(&h, doc! {"_id": 1}), [doc! {"_id": 1, "a": "x"}]);
    let id_last =
        bson::RawDocumentBuf::from_bytes(doc! {"a": "x", "_id": 1}.to_vec().unwrap()).unwrap();
    assert!(EncodedDocument::from_raw(id_last).is_err());
}
