//! Capability: secondary indexes — single-field, compound, unique, multikey — maintained with
//! the documents, used by the planner for equality, `$in` and ranges, shown by `explain`,
//! and giving MongoDB's duplicate-key error 11000.
//!
//! Method: each test builds a small collection, then compares indexed query results with the
//! same query's collection-scan result and checks the plan `explain` reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Document, doc};
use history_common::open;
use streamcache::clock::ManualClock;
use streamcache::history::{FindOptions, History, HistoryConfig, IndexModel, UpdateOptions};

fn model(keys: &[(&str, i32)], unique: bool) -> IndexModel {
    IndexModel {
        keys: keys.iter().map(|(k, d)| ((*k).to_owned(), *d)).collect(),
        name: None,
        unique,
    }
}

fn stage(explain: &Document) -> (String, Option<String>) {
    let plan = explain
        .get_document("queryPlanner")
        .unwrap()
        .get_document("winningPlan")
        .unwrap();
    let st = plan.get_str("stage").unwrap().to_owned();
    let ix = plan
        .get_document("inputStage")
        .ok()
        .map(|i| i.get_str("indexName").unwrap().to_owned());
    (st, ix)
}

fn ids(docs: &[Document]) -> Vec<i32> {
    let mut v: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    v.sort_unstable();
    v
}

/// What `filter` finds in `shop.orders` (with indexes) and in `shop.scan` (the same documents,
/// no index).
fn indexed_and_scanned(h: &History, filter: &Document) -> (Vec<Document>, Vec<Document>) {
    let find = |coll: &str| {
        h.find("shop", coll, filter, &FindOptions::default())
            .unwrap()
    };
    (find("orders"), find("scan"))
}

#[test]
fn planner_uses_indexes_and_results_match_a_scan() {
    let (_d, h) = open();
    let docs: Vec<Document> = (0..200)
        .map(|i| match i % 10 {
            0 => doc! {"_id": i, "customer": format!("c{}", i % 7), "total": f64::from(i) / 2.0, "tags": ["a", format!("t{}", i % 3)]},
            1 => doc! {"_id": i, "total": format!("{i}"), "tags": []},
            2 => doc! {"_id": i, "customer": null, "total": i},
            _ => doc! {"_id": i, "customer": format!("c{}", i % 7), "total": i64::from(i), "tags": format!("t{}", i % 3)},
        })
        .collect();
    h.insert_many("shop", "orders", docs.clone()).unwrap();
    h.insert_many("shop", "scan", docs).unwrap();
    assert_eq!(
        h.create_index("shop", "orders", &model(&[("customer", 1)], false))
            .unwrap(),
        "customer_1"
    );
    h.create_index("shop", "orders", &model(&[("total", 1)], false))
        .unwrap();
    h.create_index("shop", "orders", &model(&[("tags", 1)], false))
        .unwrap();
    h.create_index(
        "shop",
        "orders",
        &model(&[("customer", 1), ("total", -1)], false),
    )
    .unwrap();
    let filters = vec![
        (doc! {"customer": "c3"}, "IXSCAN"),
        (doc! {"customer": {"$in": ["c1", "c2"]}}, "IXSCAN"),
        (doc! {"customer": null}, "IXSCAN"),
        (doc! {"total": {"$gt": 50, "$lte": 120}}, "IXSCAN"),
        (doc! {"total": {"$lt": 20}}, "IXSCAN"),
        (doc! {"total": {"$gte": "150"}}, "IXSCAN"),
        (doc! {"total": 40}, "IXSCAN"),
        (doc! {"tags": "t1"}, "IXSCAN"),
        (doc! {"tags": {"$in": ["a", "t2"]}}, "IXSCAN"),
        (doc! {"customer": "c3", "total": {"$gt": 100}}, "IXSCAN"),
        (doc! {"_id": {"$in": [3, 4, 500]}}, "IDHACK"),
        (doc! {"_id": 3}, "IDHACK"),
        (doc! {"other": 1}, "COLLSCAN"),
        (doc! {"$or": [{"customer": "c1"}, {"total": 3}]}, "COLLSCAN"),
    ];
    for (filter, expected_stage) in filters {
        let (indexed, scanned) = indexed_and_scanned(&h, &filter);
        assert_eq!(ids(&indexed), ids(&scanned), "filter {filter}");
        let explain = h
            .explain("shop", "orders", &filter, &FindOptions::default())
            .unwrap();
        let (st, _) = stage(&explain);
        let st = if st == "FETCH" {
            "IXSCAN".to_owned()
        } else {
            st
        };
        assert_eq!(st, expected_stage, "filter {filter}: {explain}");
    }
    // Compound: equality on the prefix picks the compound index.
    let explain = h
        .explain(
            "shop",
            "orders",
            &doc! {"customer": "c3", "total": 13},
            &FindOptions::default(),
        )
        .unwrap();
    assert_eq!(stage(&explain).1.as_deref(), Some("customer_1_total_-1"));
    let stats = explain.get_document("executionStats").unwrap();
    assert!(stats.get_i64("totalDocsExamined").unwrap() <= 1, "{stats}");
    // An index yields sort order: no blocking sort, same result as the scan.
    let opts = FindOptions {
        sort: Some(doc! {"total": -1}),
        limit: Some(5),
        ..FindOptions::default()
    };
    let indexed = h.find("shop", "orders", &doc! {}, &opts).unwrap();
    let scanned = h.find("shop", "scan", &doc! {}, &opts).unwrap();
    assert_eq!(indexed, scanned);
    let explain = h.explain("shop", "orders", &doc! {}, &opts).unwrap();
    assert_eq!(stage(&explain).1.as_deref(), Some("total_1"));
    assert!(
        explain
            .get_document("executionStats")
            .unwrap()
            .get_i64("totalDocsExamined")
            .unwrap()
            <= 5
    );
}

#[test]
fn index_entries_follow_updates_and_deletes() {
    let (_d, h) = open();
    h.create_index("db", "c", &model(&[("k", 1)], false))
        .unwrap();
    h.insert_one("db", "c", doc! {"_id": 1, "k": 5}).unwrap();
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &doc! {"$set": {"k": 6}},
        UpdateOptions::default(),
    )
    .unwrap();
    assert!(
        h.find("db", "c", &doc! {"k": 5}, &FindOptions::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.find("db", "c", &doc! {"k": 6}, &FindOptions::default())
            .unwrap()
            .len(),
        1
    );
    h.update(
        "db",
        "c",
        &doc! {"k": 6},
        &doc! {"$set": {"k": [6, 7, 7]}},
        UpdateOptions::default(),
    )
    .unwrap();
    assert_eq!(
        h.find("db", "c", &doc! {"k": 7}, &FindOptions::default())
            .unwrap()
            .len(),
        1
    );
    // Multikey: two range conditions may be met by different elements.
    h.insert_one("db", "c", doc! {"_id": 2, "k": [0, 10]})
        .unwrap();
    assert_eq!(
        ids(&h
            .find(
                "db",
                "c",
                &doc! {"k": {"$gt": 8, "$lt": 2}},
                &FindOptions::default()
            )
            .unwrap()),
        vec![2]
    );
    h.delete("db", "c", &doc! {"k": 7}, false).unwrap();
    assert!(
        h.find("db", "c", &doc! {"k": 6}, &FindOptions::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.list_indexes("db", "c").unwrap().len(), 2);
    h.drop_index("db", "c", "k_1").unwrap();
    assert_eq!(h.drop_index("db", "c", "k_1").unwrap_err().code(), 27);
    assert_eq!(
        h.find("db", "c", &doc! {"k": 10}, &FindOptions::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn unique_indexes_reject_duplicates_with_11000() {
    let (_d, h) = open();
    h.create_index("db", "users", &model(&[("email", 1)], true))
        .unwrap();
    h.insert_one("db", "users", doc! {"_id": 1, "email": "a@x"})
        .unwrap();
    let e = h
        .insert_one("db", "users", doc! {"_id": 2, "email": "a@x"})
        .unwrap_err();
    assert_eq!(e.code(), 11000);
    assert_eq!(
        e.to_string(),
        "E11000 duplicate key error collection: db.users index: email_1 dup key: { email: \"a@x\" }"
    );
    let e = h.update(
        "db",
        "users",
        &doc! {"_id": 1},
        &doc! {"$set": {"x": 1}},
        UpdateOptions::default(),
    );
    assert!(e.is_ok(), "updating the owner of a key is not a duplicate");
    h.insert_one("db", "users", doc! {"_id": 3, "email": "b@x"})
        .unwrap();
    assert_eq!(
        h.update(
            "db",
            "users",
            &doc! {"_id": 3},
            &doc! {"$set": {"email": "a@x"}},
            UpdateOptions::default()
        )
        .unwrap_err()
        .code(),
        11000
    );
    // Moving a key within one batch: delete then insert of the same key succeeds.
    h.delete("db", "users", &doc! {"_id": 1}, false).unwrap();
    h.insert_one("db", "users", doc! {"_id": 4, "email": "a@x"})
        .unwrap();
    // Two documents without the field collide on null, as in MongoDB.
    h.insert_one("db", "users", doc! {"_id": 5}).unwrap();
    assert_eq!(
        h.insert_one("db", "users", doc! {"_id": 6})
            .unwrap_err()
            .code(),
        11000
    );
    // Building a unique index over duplicates fails and leaves no index.
    h.insert_many(
        "db",
        "dups",
        vec![doc! {"_id": 1, "k": 1}, doc! {"_id": 2, "k": 1}],
    )
    .unwrap();
    assert_eq!(
        h.create_index("db", "dups", &model(&[("k", 1)], true))
            .unwrap_err()
            .code(),
        11000
    );
    assert_eq!(h.list_indexes("db", "dups").unwrap().len(), 1);
    // Same spec again is a no-op; same name with another spec conflicts.
    h.create_index("db", "users", &model(&[("email", 1)], true))
        .unwrap();
    assert_eq!(
        h.create_index("db", "users", &model(&[("email", 1)], false))
            .unwrap_err()
            .code(),
        86
    );
}

#[test]
fn indexes_survive_reopen_and_limits_hold() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h =
            History::open(dir.path(), HistoryConfig::default(), ManualClock::shared(1)).unwrap();
        h.create_index("db", "c", &model(&[("a.b", 1)], false))
            .unwrap();
        h.insert_one("db", "c", doc! {"_id": 1, "a": {"b": "x"}})
            .unwrap();
        let keys: Vec<(String, i32)> = (0..streamcache::history::INDEX_FIELDS_MAX)
            .map(|i| (format!("f{i}"), 1))
            .collect();
        h.create_index(
            "db",
            "c",
            &IndexModel {
                keys: keys.clone(),
                name: Some("wide".into()),
                unique: false,
            },
        )
        .unwrap();
        let mut over = keys;
        over.push(("g".into(), 1));
        assert_eq!(
            h.create_index(
                "db",
                "c",
                &IndexModel {
                    keys: over,
                    name: Some("wider".into()),
                    unique: false
                }
            )
            .unwrap_err()
            .code(),
            2
        );
    }
    let h = History::open(dir.path(), HistoryConfig::default(), ManualClock::shared(1)).unwrap();
    let explain = h
        .explain("db", "c", &doc! {"a.b": "x"}, &FindOptions::default())
        .unwrap();
    assert_eq!(stage(&explain).1.as_deref(), Some("a.b_1"));
    assert_eq!(
        h.find("db", "c", &doc! {"a.b": "x"}, &FindOptions::default())
            .unwrap()
            .len(),
        1
    );
    // An index key longer than the storage limit is refused without poisoning the store.
    let e = h
        .insert_one("db", "c", doc! {"_id": 2, "a": {"b": "y".repeat(70_000)}})
        .unwrap_err();
    assert_eq!(e.code(), 10334);
    assert!(!h.is_poisoned());
    h.insert_one("db", "c", doc! {"_id": 3}).unwrap();
}

#[test]
fn filter_values_longer_than_a_storage_key_scan_the_index_with_the_same_results() {
    // Range bounds are built from filter values, and fjall panics on a bound longer than
    // `KEY_BYTES_MAX`; the store cuts such bounds to a form that selects the same keys. Values
    // whose bounds are just under, at and just over the limit (the encoding adds fewer than
    // 40 bytes), and a much longer one, give what comparing the strings gives, through the
    // index.
    let (_d, h) = open();
    h.create_index("shop", "people", &model(&[("name", 1)], false))
        .unwrap();
    let names = [
        "a".to_owned(),
        "x".repeat(1000),
        "xy".to_owned(),
        "z".to_owned(),
    ];
    let docs = names
        .iter()
        .zip(1..)
        .map(|(n, id)| doc! {"_id": id, "name": n})
        .collect();
    h.insert_many("shop", "people", docs).unwrap();
    let max = streamcache::history::KEY_BYTES_MAX;
    for len in (max - 40..=max + 2).chain([70_000]) {
        let x = "x".repeat(len);
        let which = |keep: &dyn Fn(&str) -> bool| -> Vec<i32> {
            (1..)
                .zip(&names)
                .filter(|(_, n)| keep(n))
                .map(|(id, _)| id)
                .collect()
        };
        for (filter, want) in [
            (doc! {"name": &x}, which(&|n| n == x)),
            (doc! {"name": {"$gte": &x}}, which(&|n| n >= x.as_str())),
            (doc! {"name": {"$gt": &x}}, which(&|n| n > x.as_str())),
            (doc! {"name": {"$lt": &x}}, which(&|n| n < x.as_str())),
            (
                doc! {"name": {"$gte": "a", "$lte": &x}},
                which(&|n| n <= x.as_str()),
            ),
            (
                doc! {"name": {"$in": [&x, "z"]}},
                which(&|n| n == x || n == "z"),
            ),
        ] {
            let got = h
                .find("shop", "people", &filter, &FindOptions::default())
                .unwrap();
            assert_eq!(ids(&got), want, "len {len}: {filter:?}");
        }
    }
    let f = doc! {"name": {"$gte": "x".repeat(70_000)}};
    let explain = h.explain("shop", "people", &f, &FindOptions::default());
    assert_eq!(stage(&explain.unwrap()).0, "FETCH", "the index is used");
    // The store is still writable (no panic poisoned it).
    h.insert_one("shop", "people", doc! {"_id": 9, "name": "m"})
        .unwrap();
}

/// A multikey index scanned over a range meets a document first at its smallest element
/// inside the range, but MongoDB sorts an array by its smallest element (largest descending)
/// whatever the filter. Such a plan sorts in memory, so the order is the same with and without
/// the index, with and without a limit.
#[test]
fn a_multikey_range_sorts_arrays_by_their_extreme_element() {
    let (_d, h) = open();
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "a": [1, 10]},
            doc! {"_id": 2, "a": 7},
            doc! {"_id": 3, "a": 3},
            doc! {"_id": 4, "a": [4, 6]},
        ],
    )
    .unwrap();
    let in_order = |filter: &Document, sort: Document, limit: Option<u64>| -> Vec<i32> {
        let options = FindOptions {
            sort: Some(sort),
            limit,
            ..FindOptions::default()
        };
        h.find("db", "c", filter, &options)
            .unwrap()
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect()
    };
    let cases = [
        (doc! {"a": {"$gt": 5}}, doc! {"a": 1}, vec![1, 4, 2]),
        (doc! {"a": {"$gt": 5}}, doc! {"a": -1}, vec![1, 2, 4]),
        (doc! {"a": {"$lt": 5}}, doc! {"a": -1}, vec![1, 4, 3]),
        // [1, 10] matches: 10 >= 4 and 1 <= 7 (elements may differ per condition).
        (
            doc! {"a": {"$gte": 4, "$lte": 7}},
            doc! {"a": 1},
            vec![1, 4, 2],
        ),
        (
            doc! {"a": {"$gte": 4, "$lte": 7}},
            doc! {"a": -1},
            vec![1, 2, 4],
        ),
    ];
    let run = || {
        cases
            .iter()
            .map(|(filter, sort, _)| {
                (
                    in_order(filter, sort.clone(), None),
                    in_order(filter, sort.clone(), Some(1)),
                )
            })
            .collect::<Vec<_>>()
    };
    let scanned = run();
    for ((all, first), (filter, sort, want)) in scanned.iter().zip(&cases) {
        assert_eq!(all, want, "{filter} sort {sort} without an index");
        assert_eq!(
            first,
            &want[..1],
            "{filter} sort {sort} limit 1 without an index"
        );
    }
    h.create_index("db", "c", &model(&[("a", 1)], false))
        .unwrap();
    let explain = h
        .explain("db", "c", &doc! {"a": {"$gt": 5}}, &FindOptions::default())
        .unwrap();
    assert_eq!(stage(&explain).1.as_deref(), Some("a_1"));
    assert_eq!(run(), scanned, "the same order with the multikey index");
}

/// MongoDB sorts an empty array before a missing field and null ascending, and after them
/// descending (its key is undefined, below null); `{a: null}` matches the missing field and
/// null, not `[]`. The same with no index, and through an index scan in key order
/// (`{b: 1, a: 1}` after the equality on `b`), which holds `[]` under its own key.
#[test]
fn an_empty_array_sorts_before_null_and_a_missing_field_with_or_without_an_index() {
    let (_d, h) = open();
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "b": 1, "a": []},
            doc! {"_id": 2, "b": 1},
            doc! {"_id": 3, "b": 1, "a": [0, 5]},
            doc! {"_id": 4, "b": 1, "a": 3},
            doc! {"_id": 5, "b": 1, "a": "s"},
            doc! {"_id": 6, "b": 1, "a": bson::Bson::MinKey},
            doc! {"_id": 7, "b": 1, "a": [[]]},
        ],
    )
    .unwrap();
    let in_order = |filter: Document, sort: Document| -> Vec<i32> {
        let options = FindOptions {
            sort: Some(sort),
            ..FindOptions::default()
        };
        h.find("db", "c", &filter, &options)
            .unwrap()
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect()
    };
    // Ascending by the smallest element: MinKey, [], missing, 0, 3, "s", [[]] (an array
    // element sorts as an array, after strings). Descending by the largest: [[]], "s", 5,
    // 3, missing, [], MinKey.
    let ascending = vec![6, 1, 2, 3, 4, 5, 7];
    let descending = vec![7, 5, 3, 4, 2, 1, 6];
    let check = |how: &str| {
        assert_eq!(in_order(doc! {"b": 1}, doc! {"a": 1}), ascending, "{how}");
        assert_eq!(in_order(doc! {"b": 1}, doc! {"a": -1}), descending, "{how}");
        let nulls = h
            .find("db", "c", &doc! {"a": null}, &FindOptions::default())
            .unwrap();
        assert_eq!(
            ids(&nulls),
            [2],
            "{how}: `{{a: null}}` matches the missing field only"
        );
    };
    check("no index");
    h.create_index("db", "c", &model(&[("b", 1), ("a", 1)], false))
        .unwrap();
    let explain = h
        .explain(
            "db",
            "c",
            &doc! {"b": 1},
            &FindOptions {
                sort: Some(doc! {"a": 1}),
                ..FindOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        stage(&explain),
        ("FETCH".to_owned(), Some("b_1_a_1".to_owned())),
        "the index scan gives the order (no SORT stage)"
    );
    check("compound index");
    h.create_index("db", "c", &model(&[("a", 1)], false))
        .unwrap();
    check("compound index and one on `a`");
    let nulls = h
        .explain("db", "c", &doc! {"a": null}, &FindOptions::default())
        .unwrap();
    assert_eq!(stage(&nulls).1.as_deref(), Some("a_1"));
}

/// The duplicate-key message names the key that collided, as MongoDB does: the array element
/// of a multikey entry, `undefined` for an empty array, the values of every field of a
/// compound key (a descending one too), and the same when a unique index is built over
/// existing duplicates.
#[test]
fn a_duplicate_key_message_names_the_entry_that_collided() {
    let (_d, h) = open();
    let message = |coll: &str, d: Document| h.insert_one("db", coll, d).unwrap_err().to_string();
    h.create_index("db", "tags", &model(&[("tags", 1)], true))
        .unwrap();
    h.insert_one("db", "tags", doc! {"_id": 1, "tags": ["a", "b"], "e": 1})
        .unwrap();
    assert_eq!(
        message("tags", doc! {"_id": 2, "tags": ["c", "b", "d"]}),
        "E11000 duplicate key error collection: db.tags index: tags_1 dup key: { tags: \"b\" }"
    );
    h.insert_one("db", "tags", doc! {"_id": 3, "tags": []})
        .unwrap();
    assert_eq!(
        message("tags", doc! {"_id": 4, "tags": []}),
        "E11000 duplicate key error collection: db.tags index: tags_1 dup key: { tags: undefined }"
    );
    h.create_index("db", "pairs", &model(&[("k", 1), ("v", -1)], true))
        .unwrap();
    h.insert_one("db", "pairs", doc! {"_id": 1, "k": 7, "v": [1, 2]})
        .unwrap();
    assert_eq!(
        message("pairs", doc! {"_id": 2, "k": 7, "v": [3, 2]}),
        "E11000 duplicate key error collection: db.pairs index: k_1_v_-1 dup key: { k: 7, v: 2 }"
    );
    h.insert_many(
        "db",
        "built",
        vec![doc! {"_id": 1, "t": [5, 6]}, doc! {"_id": 2, "t": [6, 9]}],
    )
    .unwrap();
    let e = h
        .create_index("db", "built", &model(&[("t", 1)], true))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "E11000 duplicate key error collection: db.built index: t_1 dup key: { t: 6 }"
    );
}

/// A range on a descending index field scans only its keys (the field's values are stored
/// complemented, so the range runs from the upper bound's keys down), alone and after an
/// equality prefix, with the results of a scan, in the index's order, across type brackets,
/// inclusive and exclusive bounds, one-sided bounds and decimal bounds.
#[test]
fn ranges_on_descending_index_fields_scan_only_their_keys() {
    let (_d, h) = open();
    let docs: Vec<Document> = (0..120)
        .map(|i| {
            let t = match i % 6 {
                0 => bson::Bson::Int32(i),
                1 => bson::Bson::Double(f64::from(i) + 0.5),
                2 => bson::Bson::Int64(i64::from(i) * 3),
                3 => bson::Bson::String(format!("s{:03}", i)),
                4 => bson::Bson::DateTime(bson::DateTime::from_millis(i64::from(i) * 1000)),
                _ => bson::Bson::Null,
            };
            doc! {"_id": i, "c": i % 4, "t": t}
        })
        .collect();
    h.insert_many("shop", "orders", docs.clone()).unwrap();
    h.insert_many("shop", "scan", docs).unwrap();
    h.create_index("shop", "orders", &model(&[("t", -1)], false))
        .unwrap();
    h.create_index("shop", "orders", &model(&[("c", 1), ("t", -1)], false))
        .unwrap();
    let dec = |s: &str| bson::Bson::Decimal128(s.parse().unwrap());
    let filters = vec![
        (doc! {"t": {"$gt": 30, "$lte": 90}}, "t_-1"),
        (doc! {"t": {"$gte": 30, "$lt": 90}}, "t_-1"),
        (doc! {"t": {"$gt": 60}}, "t_-1"),
        (doc! {"t": {"$lte": 60.5}}, "t_-1"),
        (doc! {"t": {"$lt": 3}}, "t_-1"),
        (doc! {"t": {"$gte": "s050", "$lt": "s100"}}, "t_-1"),
        (doc! {"t": {"$gt": "s050"}}, "t_-1"),
        (
            doc! {"t": {"$lt": bson::DateTime::from_millis(50_000)}},
            "t_-1",
        ),
        (
            doc! {"t": {"$gte": dec("40.5"), "$lte": dec("100")}},
            "t_-1",
        ),
        (doc! {"c": 1, "t": {"$gt": 20, "$lt": 200}}, "c_1_t_-1"),
        (doc! {"c": 3, "t": {"$lte": "s200"}}, "c_1_t_-1"),
    ];
    for (filter, index) in filters {
        let (indexed, scanned) = indexed_and_scanned(&h, &filter);
        assert!(!indexed.is_empty(), "filter {filter}");
        assert_eq!(ids(&indexed), ids(&scanned), "filter {filter}");
        // In the index's order: `t` descending.
        let by_index = h
            .find(
                "shop",
                "scan",
                &filter,
                &FindOptions {
                    sort: Some(doc! {"t": -1, "_id": 1}),
                    ..FindOptions::default()
                },
            )
            .unwrap();
        let ts = |d: &[Document]| d.iter().map(|d| d.get("t").cloned()).collect::<Vec<_>>();
        assert_eq!(ts(&indexed), ts(&by_index), "filter {filter}");
        let explain = h
            .explain("shop", "orders", &filter, &FindOptions::default())
            .unwrap();
        assert_eq!(stage(&explain).1.as_deref(), Some(index), "{explain}");
        let examined = explain
            .get_document("executionStats")
            .unwrap()
            .get_i64("totalDocsExamined")
            .unwrap();
        assert_eq!(examined, indexed.len() as i64, "filter {filter}: {explain}");
    }
}

/// Two bounds on the same side of a field (`$lte` and `$lt`, `$gt` and `$gte`) through a
/// multikey index, ascending or descending, find what a scan finds: a multikey index keeps one
/// side of a range, and when both bounds are upper ones that side is the upper one (the range
/// had been left with no side and scanned nothing).
#[test]
fn two_bounds_on_one_side_of_a_multikey_field_find_what_a_scan_finds() {
    let (_d, h) = open();
    let docs = vec![
        doc! {"_id": 1, "t": -5},
        doc! {"_id": 2, "t": [0, 7]},
        doc! {"_id": 3, "t": 9},
    ];
    for coll in ["asc", "desc", "scan"] {
        h.insert_many("shop", coll, docs.clone()).unwrap();
    }
    h.create_index("shop", "asc", &model(&[("t", 1)], false))
        .unwrap();
    h.create_index("shop", "desc", &model(&[("t", -1)], false))
        .unwrap();
    for (filter, want) in [
        (doc! {"t": {"$lte": 0, "$lt": 1}}, vec![1, 2]),
        (doc! {"t": {"$gt": 0, "$gte": 8}}, vec![3]),
        (doc! {"t": {"$gt": 6, "$lt": 1}}, vec![2]),
    ] {
        let find = |coll: &str| {
            ids(&h
                .find("shop", coll, &filter, &FindOptions::default())
                .unwrap())
        };
        assert_eq!(find("scan"), want, "filter {filter}");
        for coll in ["asc", "desc"] {
            assert_eq!(find(coll), want, "filter {filter} on {coll}");
        }
    }
}
