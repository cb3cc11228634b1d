//! Capability: the history store's named input limits — each accepted at its maximum and
//! refused with a limit error at maximum + 1, without poisoning the store.
//!
//! Method: build inputs of exactly `*_MAX` and `*_MAX + 1` units against a fresh store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use history_common::open_at;
use streamcache::history::{
    self, ARRAY_PAD_MAX, COLLECTIONS_MAX, FILTER_CLAUSES_MAX, FindOptions,
    INDEX_ENTRIES_PER_DOCUMENT_MAX, INDEX_NAME_BYTES_MAX, INDEXES_PER_COLLECTION_MAX, IndexModel,
    PATH_PARTS_MAX, PLAN_RANGES_MAX, REGEX_PATTERN_BYTES_MAX, RESPELLED_WRITES_MAX, SORT_KEYS_MAX,
    UPDATE_OPERATIONS_MAX, UpdateOptions, WRITE_BATCH_OPS_MAX,
};

fn fields(n: usize, value: impl Fn(usize) -> Bson) -> Document {
    let mut d = Document::new();
    for i in 0..n {
        d.insert(format!("f{i}"), value(i));
    }
    d
}

/// Asserts `e` is the limit error of one unit past `max`.
fn assert_one_too_many(e: &history::Error, max: usize) {
    assert!(
        matches!(
            e,
            history::Error::TooMany { len, max: m, .. } if *len == max + 1 && *m == max
        ),
        "{e}"
    );
}

#[test]
fn filter_update_and_regex_limits() {
    let (_d, h) = open_at(0);
    h.insert_one("db", "c", doc! {"_id": 1}).unwrap();
    let find = |f: &Document| h.find("db", "c", f, &FindOptions::default());
    find(&fields(FILTER_CLAUSES_MAX, |_| Bson::Null)).unwrap();
    let e = find(&fields(FILTER_CLAUSES_MAX + 1, |_| Bson::Null)).unwrap_err();
    assert!(
        matches!(
            e,
            history::Error::TooMany {
                max: FILTER_CLAUSES_MAX,
                ..
            }
        ),
        "{e}"
    );

    let set = |n| doc! {"$set": fields(n, |i| Bson::Int64(i as i64))};
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &set(UPDATE_OPERATIONS_MAX),
        UpdateOptions::default(),
    )
    .unwrap();
    let e = h
        .update(
            "db",
            "c",
            &doc! {"_id": 1},
            &set(UPDATE_OPERATIONS_MAX + 1),
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            history::Error::TooMany {
                max: UPDATE_OPERATIONS_MAX,
                ..
            }
        ),
        "{e}"
    );

    find(&doc! {"s": {"$regex": "a".repeat(REGEX_PATTERN_BYTES_MAX)}}).unwrap();
    assert_eq!(
        find(&doc! {"s": {"$regex": "a".repeat(REGEX_PATTERN_BYTES_MAX + 1)}})
            .unwrap_err()
            .code(),
        2
    );
    assert!(!h.is_poisoned());
}

/// Asserts that an update of `$max` writes changing nothing (which MongoDB applies) to
/// respellings of position 1 (`01`, `001` …), the `i`th after `prefixes[i % len]`, is applied
/// with `RESPELLED_WRITES_MAX` of them and refused with one more, leaving `start` as it was.
fn assert_respelled_writes_limit(start: &Document, prefixes: &[&str]) {
    let (_d, h) = open_at(0);
    h.insert_one("db", "c", start.clone()).unwrap();
    let spellings = |n: usize| {
        let mut d = Document::new();
        for (i, prefix) in prefixes.iter().cycle().take(n).enumerate() {
            d.insert(format!("{prefix}{}1", "0".repeat(i + 1)), 0);
        }
        doc! {"$max": d}
    };
    let update = |n| {
        h.update(
            "db",
            "c",
            &doc! {"_id": 1},
            &spellings(n),
            UpdateOptions::default(),
        )
    };
    let done = update(RESPELLED_WRITES_MAX).unwrap();
    assert_eq!((done.matched, done.modified), (1, 0), "{prefixes:?}");
    assert_one_too_many(
        &update(RESPELLED_WRITES_MAX + 1).unwrap_err(),
        RESPELLED_WRITES_MAX,
    );
    let stored = h
        .find("db", "c", &doc! {}, &FindOptions::default())
        .unwrap();
    assert_eq!(stored, vec![start.clone()], "{prefixes:?}");
}

/// Writes that meet only through a respelled array position (`a.1`, `a.01`, `a.001` …) are
/// applied by MongoDB 7 when at most one of them changes the element, so each is watched: the
/// value at its path is copied before and compared after. That is work per write in the size
/// of the element, so one update may hold at most `RESPELLED_WRITES_MAX` such writes.
#[test]
fn respelled_writes_limit() {
    assert_respelled_writes_limit(&doc! {"_id": 1, "a": [0, 5]}, &["a."]);
}

/// The limit holds below an array update too, and counts operators: `x.$[].01`,
/// `x.$[].001`, … meet at each element's position 1, and each such operator copies and
/// compares the value there in every element it reaches (here two, so the writes are twice
/// the operators). Operators meeting above and below array updates share the one limit.
#[test]
fn respelled_writes_limit_below_an_array_update() {
    let start = doc! {"_id": 1, "a": [0, 5], "x": [[0, 5], [0, 7]]};
    assert_respelled_writes_limit(&start, &["x.$[]."]);
    assert_respelled_writes_limit(&start, &["a.", "x.$[]."]);
}

/// Each `$in`/`$nin` item is compared with every candidate document, so the items spend the
/// filter budget: `{a: {$in: [...]}}` costs the field, the operator and one per item.
#[test]
fn in_and_nin_items_spend_the_filter_budget() {
    let (_d, h) = open_at(0);
    h.insert_many(
        "db",
        "c",
        (0..3_i64).map(|i| doc! {"_id": i, "a": i}).collect(),
    )
    .unwrap();
    let items = |n: usize| {
        (0..n)
            .map(|i| Bson::Int64(i as i64 + 2))
            .collect::<Vec<_>>()
    };
    let ids = |op: &str, n: usize| {
        h.find(
            "db",
            "c",
            &doc! {"a": {op: items(n)}},
            &FindOptions::default(),
        )
        .map(|docs| {
            docs.iter()
                .map(|d| d.get_i64("_id").unwrap())
                .collect::<Vec<_>>()
        })
    };
    let max_items = FILTER_CLAUSES_MAX - 2;
    assert_eq!(ids("$in", max_items).unwrap(), [2]);
    assert_eq!(ids("$nin", max_items).unwrap(), [0, 1]);
    for op in ["$in", "$nin"] {
        let e = ids(op, max_items + 1).unwrap_err();
        assert!(
            matches!(
                e,
                history::Error::TooMany {
                    max: FILTER_CLAUSES_MAX,
                    ..
                }
            ),
            "{op}: {e}"
        );
    }
}

#[test]
fn array_padding_and_multikey_fan_out_limits() {
    let (_d, h) = open_at(0);
    h.insert_one("db", "c", doc! {"_id": 1, "a": []}).unwrap();
    let pad = |i: usize| doc! {"$set": {format!("a.{i}"): 1}};
    let e = h
        .update(
            "db",
            "c",
            &doc! {"_id": 1},
            &pad(ARRAY_PAD_MAX),
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 2, "{e}");
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &pad(ARRAY_PAD_MAX - 1),
        UpdateOptions::default(),
    )
    .unwrap();
    let d = h
        .find_one("db", "c", &doc! {"_id": 1}, None)
        .unwrap()
        .unwrap();
    assert_eq!(d.get_array("a").unwrap().len(), ARRAY_PAD_MAX);

    h.create_index(
        "db",
        "m",
        &IndexModel {
            keys: vec![("v".into(), 1)],
            name: None,
            unique: false,
        },
    )
    .unwrap();
    let values = |n: usize| Bson::Array((0..n).map(|i| Bson::Int64(i as i64)).collect());
    h.insert_one(
        "db",
        "m",
        doc! {"_id": 1, "v": values(INDEX_ENTRIES_PER_DOCUMENT_MAX)},
    )
    .unwrap();
    let e = h
        .insert_one(
            "db",
            "m",
            doc! {"_id": 2, "v": values(INDEX_ENTRIES_PER_DOCUMENT_MAX + 1)},
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            history::Error::TooMany {
                max: INDEX_ENTRIES_PER_DOCUMENT_MAX,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn index_count_and_write_batch_limits() {
    let (_d, h) = open_at(0);
    for i in 0..INDEXES_PER_COLLECTION_MAX {
        h.create_index(
            "db",
            "c",
            &IndexModel {
                keys: vec![(format!("f{i}"), 1)],
                name: None,
                unique: false,
            },
        )
        .unwrap();
    }
    let e = h
        .create_index(
            "db",
            "c",
            &IndexModel {
                keys: vec![("g".into(), 1)],
                name: None,
                unique: false,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            history::Error::TooMany {
                max: INDEXES_PER_COLLECTION_MAX,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        h.list_indexes("db", "c").unwrap().len(),
        INDEXES_PER_COLLECTION_MAX + 1
    );

    let docs = |n: usize| (0..n).map(|i| doc! {"_id": i as i64}).collect::<Vec<_>>();
    let e = h
        .insert_many("db", "big", docs(WRITE_BATCH_OPS_MAX + 1))
        .unwrap_err();
    assert!(
        matches!(
            e,
            history::Error::TooMany {
                max: WRITE_BATCH_OPS_MAX,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        h.insert_many("db", "big", docs(WRITE_BATCH_OPS_MAX))
            .unwrap()
            .len(),
        WRITE_BATCH_OPS_MAX
    );
    assert_eq!(
        h.count("db", "big", &doc! {}).unwrap(),
        WRITE_BATCH_OPS_MAX as u64
    );
}

/// The store holds at most `COLLECTIONS_MAX` collections: a write that would create one more is
/// refused and changes nothing; the collections there keep taking writes, and a drop makes room.
#[test]
fn collection_count_limit() {
    use streamcache::history::WriteOp;
    let (_d, h) = open_at(0);
    let insert = |db: &str, coll: String| WriteOp::Insert {
        db: db.into(),
        coll,
        document: doc! {"x": 1},
    };
    // Spread over two databases, in one batch.
    let ops: Vec<WriteOp> = (0..COLLECTIONS_MAX)
        .map(|i| insert(if i % 2 == 0 { "a" } else { "b" }, format!("c{i}")))
        .collect();
    h.commit(ops, Vec::new()).unwrap();
    let e = h.insert_one("a", "one-more", doc! {"x": 1}).unwrap_err();
    assert_one_too_many(&e, COLLECTIONS_MAX);
    assert!(
        !h.list_collections("a")
            .unwrap()
            .iter()
            .any(|c| c == "one-more")
    );
    // At the limit a collection there still takes writes and a rename keeps the count; a
    // drop makes room for one.
    h.insert_one("a", "c0", doc! {"x": 2}).unwrap();
    h.rename_collection("a", "c0", "b", "renamed").unwrap();
    // `$out` over an existing collection keeps the count too (its temporary collection takes
    // the target's place); over a new one it is one more.
    h.aggregate("b", "renamed", &[doc! {"$out": "c1"}]).unwrap();
    assert_eq!(h.count("b", "c1", &doc! {}).unwrap(), 2);
    let e = h
        .aggregate("b", "renamed", &[doc! {"$out": "new"}])
        .unwrap_err();
    assert!(matches!(e, history::Error::TooMany { .. }), "{e}");
    assert!(h.drop_collection("b", "renamed").unwrap());
    h.insert_one("a", "one-more", doc! {"x": 1}).unwrap();
    assert!(h.insert_one("a", "two-more", doc! {"x": 1}).is_err());
}

/// A sort specification has at most `SORT_KEYS_MAX` keys, in `find`, `$sort` and `$push`'s
/// `$sort` alike.
#[test]
fn sort_key_limit() {
    let (_d, h) = open_at(0);
    h.insert_one("db", "c", doc! {"_id": 1, "a": [3, 1, 2]})
        .unwrap();
    let sort = |n| fields(n, |_| Bson::Int32(1));
    let too_many = |e: history::Error| {
        matches!(
            e,
            history::Error::TooMany {
                len,
                max: SORT_KEYS_MAX,
                ..
            } if len == SORT_KEYS_MAX + 1
        )
    };
    let find = |n| {
        let options = FindOptions {
            sort: Some(sort(n)),
            ..FindOptions::default()
        };
        h.find("db", "c", &doc! {}, &options)
    };
    assert_eq!(find(SORT_KEYS_MAX).unwrap().len(), 1);
    assert!(too_many(find(SORT_KEYS_MAX + 1).unwrap_err()));
    let stage = |n| h.aggregate("db", "c", &[doc! {"$sort": sort(n)}]);
    assert_eq!(stage(SORT_KEYS_MAX).unwrap().len(), 1);
    assert!(too_many(stage(SORT_KEYS_MAX + 1).unwrap_err()));
    let push = |n| {
        h.update(
            "db",
            "c",
            &doc! {"_id": 1},
            &doc! {"$push": {"lines": {"$each": [{"x": 1}], "$sort": sort(n)}}},
            UpdateOptions::default(),
        )
    };
    push(SORT_KEYS_MAX).unwrap();
    assert!(too_many(push(SORT_KEYS_MAX + 1).unwrap_err()));
}

/// An index name has 1..=`INDEX_NAME_BYTES_MAX` bytes; a `$in` of up to `PLAN_RANGES_MAX` items
/// is planned as that many points of an index, a longer one is answered by a scan (with the same
/// documents).
#[test]
fn index_name_and_plan_range_limits() {
    let (_d, h) = open_at(0);
    let named = |name: String| IndexModel {
        keys: vec![("n".into(), 1)],
        name: Some(name),
        unique: false,
    };
    h.create_index("db", "c", &named("a".repeat(INDEX_NAME_BYTES_MAX)))
        .unwrap();
    let e = h
        .create_index("db", "d", &named("a".repeat(INDEX_NAME_BYTES_MAX + 1)))
        .unwrap_err();
    assert!(e.to_string().contains("index name must be"), "{e}");
    let long = "a".repeat(INDEX_NAME_BYTES_MAX + 1);
    assert!(
        h.list_indexes("db", "d")
            .unwrap_or_default()
            .iter()
            .all(|ix| ix.get_str("name").ok() != Some(long.as_str())),
        "nothing was created"
    );

    let docs: Vec<Document> = (0..300_i64).map(|i| doc! {"_id": i, "n": i}).collect();
    h.insert_many("db", "c", docs).unwrap();
    let plan = |n: i64| {
        let filter = doc! {"n": {"$in": (0..n).collect::<Vec<i64>>()}};
        let explain = h
            .explain("db", "c", &filter, &FindOptions::default())
            .unwrap();
        let winning = explain
            .get_document("queryPlanner")
            .unwrap()
            .get_document("winningPlan")
            .unwrap()
            .clone();
        let found = h.find("db", "c", &filter, &FindOptions::default()).unwrap();
        (winning, found.len())
    };
    let max = i64::try_from(PLAN_RANGES_MAX).unwrap();
    let (at_max, found) = plan(max);
    assert_eq!(found, PLAN_RANGES_MAX);
    assert_eq!(at_max.get_str("stage").unwrap(), "FETCH", "{at_max}");
    assert_eq!(
        at_max
            .get_document("inputStage")
            .unwrap()
            .get_str("stage")
            .unwrap(),
        "IXSCAN",
        "{at_max}"
    );
    let (past_max, found) = plan(max + 1);
    assert_eq!(found, PLAN_RANGES_MAX + 1);
    assert_eq!(past_max.get_str("stage").unwrap(), "COLLSCAN", "{past_max}");
}

/// A dotted path of `n` parts, all named `a`.
fn dotted(n: usize) -> String {
    vec!["a"; n].join(".")
}

/// What an entry point answers for a path of [`PATH_PARTS_MAX`] parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtMax {
    /// It works.
    Ok,
    /// The path is accepted, but the value it creates nests too deep.
    TooDeep,
}

/// Every entry point that takes a dotted path from a request, run with `path`; each update
/// runs on a fresh document.
fn path_entry_points(
    h: &history::History,
    path: &str,
) -> Vec<(&'static str, AtMax, history::Result<()>)> {
    let find = |filter: Document, projection: Option<Document>, sort: Option<Document>| {
        let options = FindOptions {
            projection,
            sort,
            ..FindOptions::default()
        };
        h.find("db", "c", &filter, &options).map(|_| ())
    };
    let update = |filter: Document, update: Document, upsert: bool| {
        h.update(
            "db",
            "c",
            &filter,
            &update,
            UpdateOptions {
                upsert,
                ..UpdateOptions::default()
            },
        )
        .map(|_| ())
    };
    let on_fresh = |u: Document| {
        let id = h.insert_one("db", "c", doc! {"x": [1], "s": 1}).unwrap();
        update(doc! {"_id": id}, u, false)
    };
    let aggregate = |stage: Document| h.aggregate("db", "c", &[stage]).map(|_| ());
    let field = format!("${path}");
    vec![
        ("filter", AtMax::Ok, find(doc! {path: 1}, None, None)),
        (
            "projection",
            AtMax::Ok,
            find(doc! {}, Some(doc! {path: 1}), None),
        ),
        ("sort", AtMax::Ok, find(doc! {}, None, Some(doc! {path: 1}))),
        ("$set", AtMax::Ok, on_fresh(doc! {"$set": {path: 1}})),
        (
            "$set upsert",
            AtMax::Ok,
            update(doc! {"_id": "new"}, doc! {"$set": {path: 1}}, true),
        ),
        (
            "upsert filter",
            AtMax::Ok,
            update(
                doc! {"_id": "seeded", path: 1},
                doc! {"$set": {"s": 1}},
                true,
            ),
        ),
        (
            "$rename from",
            AtMax::Ok,
            on_fresh(doc! {"$rename": {path: "z"}}),
        ),
        (
            "$rename to",
            AtMax::Ok,
            on_fresh(doc! {"$rename": {"s": path}}),
        ),
        ("$push", AtMax::TooDeep, on_fresh(doc! {"$push": {path: 1}})),
        (
            "$push $sort",
            AtMax::Ok,
            on_fresh(doc! {"$push": {"x": {"$each": [{"b": 1}], "$sort": {path: 1}}}}),
        ),
        (
            "$addFields",
            AtMax::Ok,
            aggregate(doc! {"$addFields": {path: 1}}),
        ),
        (
            "$project",
            AtMax::Ok,
            aggregate(doc! {"$project": {path: "$s"}}),
        ),
        ("$unset", AtMax::Ok, aggregate(doc! {"$unset": path})),
        (
            "$group",
            AtMax::Ok,
            aggregate(doc! {"$group": {"_id": &field}}),
        ),
        ("$unwind", AtMax::Ok, aggregate(doc! {"$unwind": &field})),
        (
            "$unwind includeArrayIndex",
            AtMax::Ok,
            aggregate(doc! {"$unwind": {"path": "$x", "includeArrayIndex": path}}),
        ),
        // The documents joined there (some `PATH_PARTS_MAX` deep themselves) nest past
        // `STAGE_DOCUMENT_DEPTH_MAX`.
        (
            "$lookup as",
            AtMax::TooDeep,
            aggregate(
                doc! {"$lookup": {"from": "c", "localField": "s", "foreignField": "s", "as": path}},
            ),
        ),
        (
            "index",
            AtMax::Ok,
            h.create_index(
                "db",
                "c",
                &IndexModel {
                    keys: vec![(path.to_owned(), 1)],
                    name: Some(format!("deep{}", path.len())),
                    unique: false,
                },
            )
            .map(|_| ()),
        ),
    ]
}

#[test]
fn path_parts_limit() {
    let (_d, h) = open_at(0);
    for (what, at_max, outcome) in path_entry_points(&h, &dotted(PATH_PARTS_MAX)) {
        match (at_max, outcome) {
            (AtMax::Ok, Ok(())) | (AtMax::TooDeep, Err(history::Error::NestingTooDeep { .. })) => {}
            (_, other) => panic!("{what} at {PATH_PARTS_MAX} parts: {other:?}"),
        }
    }
    for (what, _, outcome) in path_entry_points(&h, &dotted(PATH_PARTS_MAX + 1)) {
        let e = outcome.expect_err(what);
        assert!(
            matches!(
                e,
                history::Error::PathTooLong {
                    parts,
                    max: PATH_PARTS_MAX,
                } if parts == PATH_PARTS_MAX + 1
            ),
            "{what}: {e}"
        );
        assert!(e.is_client_error() && e.is_input_error(), "{what}");
    }
    assert!(!h.is_poisoned());
}

/// Paths of hundreds of thousands of parts once overflowed the stack (projection trees and
/// `$set` walked one frame per part) and aborted the process.
#[test]
fn a_very_long_path_is_refused_not_a_crash() {
    let (_d, h) = open_at(0);
    for (what, _, outcome) in path_entry_points(&h, &dotted(200_000)) {
        let e = outcome.expect_err(what);
        assert_eq!(e.code(), 15, "{what}: {e}");
        assert_eq!(e.code_name(), "Overflow", "{what}");
    }
    assert!(!h.is_poisoned());
}
