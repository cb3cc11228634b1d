//! Capability: the `$out` stage — an aggregation's output replaces a collection (created when
//! missing, emptied by an empty output) and the collection keeps its indexes; a failure (a
//! duplicate key) leaves it as it was; documents without `_id` get one; the output may go to
//! another database or to the collection read; MongoDB 7.0's codes for a malformed or
//! misplaced stage and for one in a sub-pipeline; the change events MongoDB makes (inserts into
//! `tmp.agg_out.<uuid>`, then its `rename` onto the target, which ends a stream on the target).
//!
//! Method: the cases of MongoDB's `jstests/aggregation/bugs/server3253.js`,
//! `sources/out/replace_collection.js`, `out_read_write_to_same_collection.js`,
//! `required_last_position.js`, `out_in_lookup_not_allowed.js`, `no_output_to_system.js` and
//! `jstests/change_streams/metadata_notifications.js` / `whole_db_metadata_notifications.js`,
//! on a store on a manual clock in a temporary directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::clock::ManualClock;
use streamcache::history::{
    FindOptions, History, HistoryConfig, IndexModel, WatchOptions, WatchScope,
};

fn read(h: &History, db: &str, coll: &str) -> Vec<Document> {
    let options = FindOptions {
        sort: Some(doc! {"_id": 1}),
        ..FindOptions::default()
    };
    h.find(db, coll, &doc! {}, &options).unwrap()
}

fn index(h: &History, coll: &str, field: &str, unique: bool) {
    h.create_index(
        "db",
        coll,
        &IndexModel {
            keys: vec![(field.into(), 1)],
            name: None,
            unique,
        },
    )
    .unwrap();
}

/// The names of `db.coll`'s indexes.
fn index_names(h: &History, coll: &str) -> Vec<String> {
    h.list_indexes("db", coll)
        .unwrap()
        .iter()
        .map(|i| i.get_str("name").unwrap().to_owned())
        .collect()
}

/// Source `src`: `{_id: 1}`, `{_id: 2}`, `{_id: 3}`; target `t`: `{_id: 1}` with an index on
/// `a` (server3253.js).
fn open() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_many(
        "db",
        "src",
        vec![doc! {"_id": 1}, doc! {"_id": 2}, doc! {"_id": 3}],
    )
    .unwrap();
    h.insert_one("db", "t", doc! {"_id": 1}).unwrap();
    index(&h, "t", "a", false);
    (dir, h)
}

fn code(h: &History, coll: &str, pipeline: &[Document]) -> i32 {
    h.aggregate("db", coll, pipeline).unwrap_err().code()
}

#[test]
fn the_output_replaces_the_collection_which_keeps_its_indexes() {
    let (dir, h) = open();
    let out = h
        .aggregate(
            "db",
            "src",
            &[
                doc! {"$project": {"a": {"$add": ["$_id", "$_id"]}}},
                doc! {"$out": "t"},
            ],
        )
        .unwrap();
    assert!(out.is_empty(), "$out returns nothing: {out:?}");
    assert_eq!(
        read(&h, "db", "t"),
        vec![
            doc! {"_id": 1, "a": 2},
            doc! {"_id": 2, "a": 4},
            doc! {"_id": 3, "a": 6}
        ]
    );
    assert_eq!(index_names(&h, "t"), ["_id_", "a_1"]);
    // The copied index serves queries on the new documents.
    assert_eq!(h.count("db", "t", &doc! {"a": {"$gte": 4}}).unwrap(), 2);
    // No temporary collection is left behind.
    assert_eq!(h.list_collections("db").unwrap(), ["src", "t"]);
    // All of it is what the store holds after a restart.
    let before = read(&h, "db", "t");
    drop(h);
    let h = History::open(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(history_common::START_MS),
    )
    .unwrap();
    assert_eq!(read(&h, "db", "t"), before);
    assert_eq!(index_names(&h, "t"), ["_id_", "a_1"]);
    assert_eq!(h.count("db", "t", &doc! {"a": {"$gte": 4}}).unwrap(), 2);
    assert_eq!(h.list_collections("db").unwrap(), ["src", "t"]);
}

#[test]
fn an_empty_output_empties_or_creates_the_target() {
    let (_dir, h) = open();
    h.aggregate(
        "db",
        "src",
        &[doc! {"$match": {"_id": 11}}, doc! {"$out": "t"}],
    )
    .unwrap();
    assert!(read(&h, "db", "t").is_empty());
    assert_eq!(index_names(&h, "t"), ["_id_", "a_1"]);
    // A source that does not exist: the target is made, empty.
    h.aggregate("db", "missing", &[doc! {"$out": "made"}])
        .unwrap();
    assert!(h.list_collections("db").unwrap().contains(&"made".into()));
    assert!(read(&h, "db", "made").is_empty());
}

#[test]
fn a_duplicate_key_leaves_the_target_as_it_was() {
    let (_dir, h) = open();
    let e = h
        .aggregate(
            "db",
            "src",
            &[doc! {"$set": {"_id": 7}}, doc! {"$out": "t"}],
        )
        .unwrap_err();
    assert_eq!(e.code(), 11000);
    // MongoDB names the temporary collection the documents went into.
    let text = e.to_string();
    assert!(
        text.contains("collection: db.tmp.agg_out.") && text.contains("dup key: { _id: 7 }"),
        "{text}"
    );
    assert_eq!(read(&h, "db", "t"), vec![doc! {"_id": 1}]);
    assert_eq!(h.list_collections("db").unwrap(), ["src", "t"]);

    // A unique index of the target applies to the output (replace_collection.js) …
    let (_dir, h) = history_common::open();
    h.insert_many(
        "db",
        "src",
        vec![doc! {"_id": 0, "a": 0}, doc! {"_id": 1, "a": 0}],
    )
    .unwrap();
    h.insert_one("db", "t", doc! {"_id": 5, "a": 9}).unwrap();
    index(&h, "t", "a", true);
    assert_eq!(code(&h, "src", &[doc! {"$out": "t"}]), 11000);
    assert_eq!(read(&h, "db", "t"), vec![doc! {"_id": 5, "a": 9}]);
    // … but not to the documents it replaces: `{_id: 5, a: 0}` would conflict with the
    // first, and is simply gone.
    h.update(
        "db",
        "t",
        &doc! {"_id": 5},
        &doc! {"$set": {"a": 0}},
        Default::default(),
    )
    .unwrap();
    h.aggregate(
        "db",
        "src",
        &[doc! {"$match": {"_id": 0}}, doc! {"$out": "t"}],
    )
    .unwrap();
    assert_eq!(read(&h, "db", "t"), vec![doc! {"_id": 0, "a": 0}]);
    assert_eq!(index_names(&h, "t"), ["_id_", "a_1"]);
}

#[test]
fn documents_without_id_get_one() {
    let (_dir, h) = open();
    h.aggregate(
        "db",
        "src",
        &[
            doc! {"$project": {"_id": 0, "n": "$_id"}},
            doc! {"$out": "t"},
        ],
    )
    .unwrap();
    let t = read(&h, "db", "t");
    assert_eq!(t.len(), 3);
    assert!(
        t.iter()
            .all(|d| matches!(d.get("_id"), Some(Bson::ObjectId(_)))),
        "{t:?}"
    );
}

#[test]
fn the_output_may_replace_the_collection_read_or_go_to_another_database() {
    let (_dir, h) = history_common::open();
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"group": 1, "count": 1},
            doc! {"group": 1, "count": 3},
            doc! {"group": 2, "count": 4},
            doc! {"group": 2, "count": 8},
        ],
    )
    .unwrap();
    index(&h, "c", "group", false);
    h.aggregate(
        "db",
        "c",
        &[
            doc! {"$group": {"_id": "$group", "total": {"$sum": "$count"}}},
            doc! {"$out": "c"},
        ],
    )
    .unwrap();
    assert_eq!(
        read(&h, "db", "c"),
        vec![doc! {"_id": 1, "total": 4}, doc! {"_id": 2, "total": 12}]
    );
    assert_eq!(index_names(&h, "c"), ["_id_", "group_1"]);
    h.aggregate("db", "c", &[doc! {"$out": {"db": "other", "coll": "copy"}}])
        .unwrap();
    assert_eq!(read(&h, "other", "copy"), read(&h, "db", "c"));
    // The temporary collection lived in the target's database.
    assert_eq!(h.list_collections("other").unwrap(), ["copy"]);
}

#[test]
fn malformed_or_misplaced_out_is_refused_before_anything_runs() {
    let (_dir, h) = open();
    let lookup = |pipeline: Bson| {
        doc! {"$lookup": {"from": "t", "pipeline": pipeline, "as": "c"}}
    };
    for (pipeline, want) in [
        (vec![doc! {"$out": 1}], 16990),
        (vec![doc! {"$out": []}], 16990),
        (vec![doc! {"$out": {"coll": "x"}}], 40414),
        (
            vec![doc! {"$out": {"db": "db", "coll": "x", "foo": 1}}],
            40415,
        ),
        (vec![doc! {"$out": {"db": "db", "coll": 2}}], 14),
        (vec![doc! {"$out": ""}], 73),
        (vec![doc! {"$out": "system.x"}], 17385),
        (vec![doc! {"$out": {"db": "admin", "coll": "users"}}], 31321),
        (vec![doc! {"$out": {"db": "local", "coll": "x"}}], 31321),
        (
            vec![doc! {"$out": "x"}, doc! {"$match": {"x": true}}],
            40601,
        ),
        (
            vec![
                doc! {"$project": {"x": 0}},
                doc! {"$out": "x"},
                doc! {"$match": {"x": true}},
            ],
            40601,
        ),
        // The stage's own parse error comes before its position's, and an earlier stage's
        // before the writer's; the first misplaced writer is named.
        (vec![doc! {"$out": "system.x"}, doc! {"$match": {}}], 17385),
        (
            vec![doc! {"$match": {"$bad": 1}}, doc! {"$out": "system.x"}],
            2,
        ),
        (vec![doc! {"$merge": "a"}, doc! {"$out": "b"}], 40601),
        (vec![doc! {"$out": {"db": "a.b", "coll": "system.x"}}], 73),
        (
            vec![lookup(
                bson::bson!([{"$match": {"$bad": 1}}, {"$out": "o"}]),
            )],
            2,
        ),
        (vec![lookup(bson::bson!([{"$out": "o"}]))], 51047),
        (
            vec![lookup(bson::bson!([{"$project": {"x": 0}}, {"$out": "o"}]))],
            51047,
        ),
        (
            vec![lookup(
                bson::bson!([{"$out": "o"}, {"$match": {"x": true}}]),
            )],
            40601,
        ),
        (
            vec![doc! {"$unionWith": {"coll": "t", "pipeline": [{"$out": "o"}]}}],
            31441,
        ),
        (vec![doc! {"$facet": {"a": [{"$out": "o"}]}}], 40600),
        (
            vec![doc! {"$merge": {"into": "o", "whenMatched": [{"$out": "p"}]}}],
            72,
        ),
        // `$merge` refuses the same targets, with its own codes.
        (vec![doc! {"$merge": "system.x"}], 31319),
        // … after the modes' checks.
        (
            vec![
                doc! {"$merge": {"into": "system.x", "whenMatched": "fail", "whenNotMatched": "fail"}},
            ],
            51181,
        ),
        (
            vec![doc! {"$merge": {"into": {"db": "config", "coll": "x"}}}],
            31320,
        ),
        (vec![lookup(bson::bson!([{"$merge": "o"}]))], 51047),
    ] {
        assert_eq!(code(&h, "src", &pipeline), want, "{pipeline:?}");
    }
    let message =
        |pipeline: &[Document]| h.aggregate("db", "src", pipeline).unwrap_err().to_string();
    assert!(
        message(&[doc! {"$merge": "a"}, doc! {"$out": "b"}])
            .contains("$merge can only be the final stage in the pipeline")
    );
    assert!(
        message(&[doc! {"$out": {"db": "a.b", "coll": "x"}}])
            .contains("Invalid $out target namespace, a.b.x")
    );
    // So does another stage's.
    let limit = doc! {"$limit": -1};
    assert_ne!(code(&h, "src", std::slice::from_ref(&limit)), 40601);
    assert_eq!(
        code(&h, "src", &[doc! {"$out": "x"}, limit.clone()]),
        code(&h, "src", &[limit])
    );
    assert_eq!(h.list_collections("db").unwrap(), ["src", "t"]);
    assert!(h.list_collections("other").unwrap().is_empty());
    // Not in a change stream's pipeline either.
    let Err(e) = h.watch(
        WatchScope::All,
        WatchOptions {
            pipeline: vec![doc! {"$out": "x"}],
            ..WatchOptions::default()
        },
    ) else {
        panic!("a change stream ran $out");
    };
    assert!(e.to_string().contains("$out"), "{e}");
}

#[test]
fn a_stream_on_the_target_sees_the_rename_then_its_end() {
    let (_dir, h) = open();
    let on_target = |coll: &str| {
        h.watch(
            WatchScope::Collection {
                db: "db".into(),
                coll: coll.into(),
            },
            WatchOptions::default(),
        )
        .unwrap()
    };
    let mut t = on_target("t");
    // A stream opened on a collection before it exists (metadata_notifications.js).
    let mut fresh = on_target("fresh");
    let mut whole_db = h
        .watch(WatchScope::Database("db".into()), WatchOptions::default())
        .unwrap();
    h.aggregate("db", "src", &[doc! {"$out": "t"}]).unwrap();
    h.aggregate("db", "src", &[doc! {"$out": "fresh"}]).unwrap();

    for (stream, target) in [(&mut t, "t"), (&mut fresh, "fresh")] {
        let events = stream.try_next_batch(10).unwrap().events;
        let ops: Vec<&str> = events
            .iter()
            .map(|e| e.get_str("operationType").unwrap())
            .collect();
        assert_eq!(ops, ["rename", "invalidate"], "{events:?}");
        let rename = &events[0];
        assert_eq!(
            rename.get_document("to").unwrap(),
            &doc! {"db": "db", "coll": target}
        );
        let from = rename.get_document("ns").unwrap().get_str("coll").unwrap();
        assert!(from.starts_with("tmp.agg_out."), "{from}");
        assert!(stream.is_closed());
    }

    // The database's stream sees the inserts into the temporary collection, then its rename,
    // and goes on.
    h.insert_one("db", "src", doc! {"_id": 4}).unwrap();
    let events = whole_db.try_next_batch(20).unwrap().events;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let coll = e.get_document("ns").unwrap().get_str("coll").unwrap();
            let coll = if coll.starts_with("tmp.agg_out.") {
                "tmp"
            } else {
                coll
            };
            (
                e.get_str("operationType").unwrap().to_owned(),
                coll.to_owned(),
            )
        })
        .collect();
    let pair = |op: &str, coll: &str| (op.to_owned(), coll.to_owned());
    let one_out = [
        pair("insert", "tmp"),
        pair("insert", "tmp"),
        pair("insert", "tmp"),
        pair("rename", "tmp"),
    ];
    let mut want: Vec<_> = one_out.iter().chain(&one_out).cloned().collect();
    want.push(pair("insert", "src"));
    assert_eq!(seen, want);
    assert!(!whole_db.is_closed());
}

/// A read running while `$out` replaces its collection gets all of the old documents or all
/// of the new ones (MongoDB's rename over the target is atomic), never a collection half
/// removed; past `READ_ATTEMPTS_MAX` replacements during one read it is 175 QueryPlanKilled.
#[test]
fn reads_during_a_replacement_see_one_collection_whole() {
    const DOCS: u64 = 200;
    let (_dir, h) = history_common::open();
    h.insert_many(
        "db",
        "src",
        (1..=DOCS).map(|i| doc! {"_id": i as i64}).collect(),
    )
    .unwrap();
    h.aggregate("db", "src", &[doc! {"$out": "t"}]).unwrap();
    let writer = {
        let h = h.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                h.aggregate("db", "src", &[doc! {"$out": "t"}]).unwrap();
            }
        })
    };
    let (mut reads, mut killed) = (0, 0);
    while !writer.is_finished() {
        for result in [
            h.find("db", "t", &doc! {}, &FindOptions::default())
                .map(|d| d.len() as u64),
            h.count("db", "t", &doc! {}),
            h.aggregate("db", "t", &[doc! {"$match": {"_id": {"$gte": 1}}}])
                .map(|d| d.len() as u64),
        ] {
            match result {
                Ok(n) => assert_eq!(n, DOCS, "a read saw {n} of the {DOCS} documents"),
                Err(e) => {
                    assert_eq!(e.code(), 175, "{e}");
                    killed += 1;
                }
            }
            reads += 1;
        }
    }
    writer.join().unwrap();
    assert!(reads > 0);
    assert!(killed < reads, "{killed} of {reads} reads killed");
}
