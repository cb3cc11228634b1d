//! Capability: change streams opened with `showExpandedEvents` — MongoDB's `create`,
//! `createIndexes` and `dropIndexes` events, every event's `collectionUUID` (the collection's
//! `listCollections` UUID), a command's `operationDescription` (a rename's target and the
//! collection `$out` replaced), an update's `disambiguatedPaths`, and MongoDB's field order —
//! while a stream without the option sees none of them.
//!
//! Method: each test opens a store in a temporary directory on a manual clock and reads its
//! streams without waiting; expected shapes and orders are those of MongoDB 7.0's change
//! stream transform and its jstests (`ddl_create_event.js`, `ddl_create_drop_index_events.js`,
//! `show_expanded_events.js`, `expanded_update_description.js`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::{
    ChangeStream, DOCUMENT_BYTES_MAX, History, HistoryConfig, IndexModel, InsertManyOptions,
    UpdateOptions, WatchOptions, WatchScope,
};

/// The fields of a `create`, `createIndexes` or `dropIndexes` event, in order.
const COMMAND_EVENT: [&str; 7] = [
    "_id",
    "operationType",
    "clusterTime",
    "collectionUUID",
    "wallTime",
    "ns",
    "operationDescription",
];

fn expanded() -> WatchOptions {
    WatchOptions {
        show_expanded_events: true,
        ..WatchOptions::default()
    }
}

fn watch(h: &History, scope: WatchScope, options: WatchOptions) -> ChangeStream {
    h.watch(scope, options).unwrap()
}

fn drain(s: &mut ChangeStream) -> Vec<Document> {
    s.try_next_batch(10_000).unwrap().events
}

fn ops(events: &[Document]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.get_str("operationType").unwrap())
        .collect()
}

fn keys(event: &Document) -> Vec<&str> {
    event.keys().map(String::as_str).collect()
}

fn uuid_of(h: &History, db: &str, coll: &str) -> Bson {
    let (_, uuid) = h
        .list_collection_uuids(db)
        .unwrap()
        .into_iter()
        .find(|(name, _)| name == coll)
        .unwrap();
    Bson::from(uuid)
}

fn index(keys: &[(&str, i32)], unique: bool) -> IndexModel {
    IndexModel {
        keys: keys.iter().map(|(k, d)| ((*k).to_owned(), *d)).collect(),
        name: None,
        unique,
    }
}

/// Runs the pipeline-style update on `db.c`'s document 1.
fn update_first(h: &History, pipeline: &[Document]) {
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        pipeline,
        UpdateOptions::default(),
    )
    .unwrap();
}

fn coll(db: &str, coll: &str) -> WatchScope {
    WatchScope::Collection {
        db: db.into(),
        coll: coll.into(),
    }
}

#[test]
fn an_implicit_create_comes_before_the_first_insert_and_only_expanded_streams_see_it() {
    let (_dir, h) = history_common::open();
    let mut wide = watch(&h, WatchScope::All, expanded());
    let mut plain = watch(&h, WatchScope::All, WatchOptions::default());
    let mut one = watch(&h, coll("shop", "orders"), expanded());
    h.insert_one("shop", "orders", doc! {"_id": 0, "a": 1})
        .unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1, "a": 2})
        .unwrap();

    let events = drain(&mut wide);
    assert_eq!(ops(&events), ["create", "insert", "insert"]);
    let uuid = uuid_of(&h, "shop", "orders");
    let create = &events[0];
    assert_eq!(keys(create), COMMAND_EVENT);
    assert_eq!(create.get("collectionUUID"), Some(&uuid));
    assert_eq!(
        create.get_document("ns").unwrap(),
        &doc! {"db": "shop", "coll": "orders"}
    );
    assert_eq!(
        create.get_document("operationDescription").unwrap(),
        &doc! {"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}
    );
    let insert = &events[1];
    assert_eq!(
        keys(insert),
        [
            "_id",
            "operationType",
            "clusterTime",
            "collectionUUID",
            "wallTime",
            "fullDocument",
            "ns",
            "documentKey"
        ]
    );
    assert_eq!(insert.get("collectionUUID"), Some(&uuid));
    assert_eq!(
        insert.get_document("fullDocument").unwrap(),
        &doc! {"_id": 0, "a": 1}
    );

    let classic = drain(&mut plain);
    assert_eq!(ops(&classic), ["insert", "insert"]);
    assert_eq!(
        keys(&classic[0]),
        [
            "_id",
            "operationType",
            "clusterTime",
            "wallTime",
            "fullDocument",
            "ns",
            "documentKey"
        ]
    );
    // The same oplog entry: one resume token whichever stream delivers it.
    assert_eq!(classic[0].get("_id"), insert.get("_id"));
    assert_eq!(ops(&drain(&mut one)), ["create", "insert", "insert"]);
}

#[test]
fn index_events_carry_the_index_spec_and_a_drop_does_not_drop_its_indexes_one_by_one() {
    let (_dir, h) = history_common::open();
    let mut s = watch(&h, coll("shop", "orders"), expanded());
    let mut plain = watch(&h, coll("shop", "orders"), WatchOptions::default());
    // On a missing collection: its create, then the index's.
    h.create_index("shop", "orders", &index(&[("b", 1), ("c", -1)], false))
        .unwrap();
    h.create_index("shop", "orders", &index(&[("n", 1)], true))
        .unwrap();
    // The same index again changes nothing and logs nothing.
    h.create_index("shop", "orders", &index(&[("n", 1)], true))
        .unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1, "n": 1})
        .unwrap();
    h.drop_index("shop", "orders", "b_1_c_-1").unwrap();
    let uuid = uuid_of(&h, "shop", "orders");
    h.drop_collection("shop", "orders").unwrap();

    let events = drain(&mut s);
    assert_eq!(
        ops(&events),
        [
            "create",
            "createIndexes",
            "createIndexes",
            "insert",
            "dropIndexes",
            "drop",
            "invalidate"
        ]
    );
    assert_eq!(keys(&events[1]), COMMAND_EVENT);
    let description = |i: usize| events[i].get_document("operationDescription").unwrap();
    assert_eq!(
        description(1),
        &doc! {"indexes": [{"v": 2, "key": {"b": 1, "c": -1}, "name": "b_1_c_-1"}]}
    );
    assert_eq!(
        description(2),
        &doc! {"indexes": [{"v": 2, "key": {"n": 1}, "name": "n_1", "unique": true}]}
    );
    assert_eq!(
        description(4),
        &doc! {"indexes": [{"v": 2, "key": {"b": 1, "c": -1}, "name": "b_1_c_-1"}]}
    );
    for event in &events[..6] {
        assert_eq!(event.get("collectionUUID"), Some(&uuid), "{event}");
    }
    assert_eq!(
        keys(&events[5]),
        [
            "_id",
            "operationType",
            "clusterTime",
            "collectionUUID",
            "wallTime",
            "ns"
        ]
    );
    assert_eq!(
        keys(&events[6]),
        ["_id", "operationType", "clusterTime", "wallTime"]
    );
    assert!(s.is_closed());
    assert_eq!(ops(&drain(&mut plain)), ["insert", "drop", "invalidate"]);
}

#[test]
fn a_rename_carries_its_target_first_and_in_its_description_and_keeps_the_uuid() {
    let (_dir, h) = history_common::open();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    let uuid = uuid_of(&h, "shop", "orders");
    let mut s = watch(&h, WatchScope::Database("shop".into()), expanded());
    let mut plain = watch(
        &h,
        WatchScope::Database("shop".into()),
        WatchOptions::default(),
    );
    h.rename_collection("shop", "orders", "shop", "archive")
        .unwrap();

    let events = drain(&mut s);
    assert_eq!(ops(&events), ["rename"]);
    let rename = &events[0];
    // A command event's fields, the rename's target first.
    let fields = keys(rename);
    assert_eq!(fields[0], "to");
    assert_eq!(fields[1..], COMMAND_EVENT);
    assert_eq!(
        rename.get_document("to").unwrap(),
        &doc! {"db": "shop", "coll": "archive"}
    );
    assert_eq!(
        rename.get_document("operationDescription").unwrap(),
        &doc! {"to": {"db": "shop", "coll": "archive"}}
    );
    assert_eq!(rename.get("collectionUUID"), Some(&uuid));
    assert_eq!(uuid_of(&h, "shop", "archive"), uuid);

    let classic = drain(&mut plain);
    assert_eq!(
        keys(&classic[0]),
        [
            "to",
            "_id",
            "operationType",
            "clusterTime",
            "wallTime",
            "ns"
        ]
    );
}

#[test]
fn out_creates_a_temporary_collection_with_the_targets_indexes_and_renames_it_over_the_target() {
    let (_dir, h) = history_common::open();
    h.insert_many("db", "src", vec![doc! {"_id": 1}, doc! {"_id": 2}])
        .unwrap();
    h.insert_one("db", "t", doc! {"_id": 9, "k": 9}).unwrap();
    h.create_index("db", "t", &index(&[("k", 1)], false))
        .unwrap();
    let old = uuid_of(&h, "db", "t");
    let mut s = watch(&h, WatchScope::Database("db".into()), expanded());
    let mut plain = watch(
        &h,
        WatchScope::Database("db".into()),
        WatchOptions::default(),
    );
    let mut target = watch(&h, coll("db", "t"), expanded());
    h.aggregate("db", "src", &[doc! {"$out": "t"}]).unwrap();

    let events = drain(&mut s);
    assert_eq!(
        ops(&events),
        ["create", "createIndexes", "insert", "insert", "rename"]
    );
    let tmp = events[0]
        .get_document("ns")
        .unwrap()
        .get_str("coll")
        .unwrap()
        .to_owned();
    assert!(tmp.starts_with("tmp.agg_out."), "{tmp}");
    assert_eq!(
        events[0].get_document("operationDescription").unwrap(),
        &doc! {"temp": true, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}
    );
    assert_eq!(
        events[1].get_document("operationDescription").unwrap(),
        &doc! {"indexes": [{"v": 2, "key": {"k": 1}, "name": "k_1"}]}
    );
    let rename = &events[4];
    assert_eq!(
        rename.get_document("ns").unwrap(),
        &doc! {"db": "db", "coll": tmp}
    );
    assert_eq!(
        rename.get_document("operationDescription").unwrap(),
        &doc! {"to": {"db": "db", "coll": "t"}, "dropTarget": old.clone()}
    );
    // The target is now the temporary collection, under its UUID.
    let new = uuid_of(&h, "db", "t");
    assert_ne!(new, old);
    for event in &events {
        assert_eq!(event.get("collectionUUID"), Some(&new), "{event}");
    }

    assert_eq!(
        ops(&drain(&mut plain)),
        ["insert", "insert", "rename"],
        "the inserts into the temporary collection are classic events"
    );
    assert_eq!(ops(&drain(&mut target)), ["rename", "invalidate"]);
}

#[test]
fn disambiguated_paths_name_the_parts_of_paths_a_dotted_string_leaves_ambiguous() {
    let (_dir, h) = history_common::open();
    h.insert_one(
        "db",
        "c",
        doc! {
            "_id": 1,
            "a": 1,
            "topLevelArray": [{"subArray": [0, 1]}],
            "objectWithNumericField": {"0": {"1": 1}},
            "arrayWithNumericField": [{"1": 1}],
            "o": {"5": [1, 2, 3]},
        },
    )
    .unwrap();
    let mut s = watch(&h, coll("db", "c"), expanded());
    let mut plain = watch(&h, coll("db", "c"), WatchOptions::default());
    let update = |u: Document| {
        h.update("db", "c", &doc! {"_id": 1}, &u, UpdateOptions::default())
            .unwrap();
    };
    // Array positions and a numeric top-level field are not ambiguous.
    update(doc! {"$set": {"a": 2, "topLevelArray.0.subArray.1": 3, "0": 5}});
    update(doc! {"$set": {"objectWithNumericField.0.1": 2}});
    update(doc! {"$set": {"arrayWithNumericField.0.1": 2}});
    // A pipeline's delta truncates an array; an operator logs the array it shrinks whole.
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &vec![doc! {"$set": {"o": {"5": {"$slice": ["$o.5", 1]}}}}],
        UpdateOptions::default(),
    )
    .unwrap();
    update(doc! {"$unset": {"o.5": ""}});
    update(doc! {"$set": {"o.5": [1, 2]}});
    update(doc! {"$push": {"o.5": {"$each": [3], "$slice": -2}}});

    let events = drain(&mut s);
    let description = |i: usize| events[i].get_document("updateDescription").unwrap().clone();
    let paths = |i: usize| {
        description(i)
            .get_document("disambiguatedPaths")
            .unwrap()
            .clone()
    };
    assert_eq!(
        description(0).keys().collect::<Vec<_>>(),
        [
            "updatedFields",
            "removedFields",
            "truncatedArrays",
            "disambiguatedPaths"
        ]
    );
    assert_eq!(paths(0), doc! {});
    assert_eq!(
        paths(1),
        doc! {"objectWithNumericField.0.1": ["objectWithNumericField", "0", "1"]}
    );
    assert_eq!(
        paths(2),
        doc! {"arrayWithNumericField.0.1": ["arrayWithNumericField", 0, "1"]}
    );
    assert_eq!(
        description(3).get_array("truncatedArrays").unwrap(),
        &vec![Bson::Document(doc! {"field": "o.5", "newSize": 1})]
    );
    assert_eq!(paths(3), doc! {"o.5": ["o", "5"]});
    assert_eq!(
        description(4).get_array("removedFields").unwrap(),
        &vec![Bson::String("o.5".into())]
    );
    assert_eq!(paths(4), doc! {"o.5": ["o", "5"]});
    assert_eq!(
        description(6),
        doc! {
            "updatedFields": {"o.5": [2, 3]},
            "removedFields": [],
            "truncatedArrays": [],
            "disambiguatedPaths": {"o.5": ["o", "5"]},
        }
    );

    for event in drain(&mut plain) {
        assert!(
            !event
                .get_document("updateDescription")
                .unwrap()
                .contains_key("disambiguatedPaths"),
            "{event}"
        );
    }
}

#[test]
fn a_field_name_holding_a_dot_is_disambiguated_at_any_depth() {
    let (_dir, h) = history_common::open();
    h.insert_one("db", "c", doc! {"_id": 1, "obj": {"x": 1}})
        .unwrap();
    let mut s = watch(&h, coll("db", "c"), expanded());
    // A pipeline update can name a field with a dot; MongoDB logs the change as a delta.
    let pipeline = vec![doc! {"$replaceWith": {"$setField": {
        "field": "new.Field.",
        "input": {"$setField": {"field": "sub.obj", "input": "$$ROOT", "value": {"k": 1}}},
        "value": 7,
    }}}];
    update_first(&h, &pipeline);
    let events = drain(&mut s);
    assert_eq!(ops(&events), ["update"]);
    let description = events[0].get_document("updateDescription").unwrap();
    assert_eq!(
        description.get_document("disambiguatedPaths").unwrap(),
        &doc! {"sub.obj": ["sub.obj"], "new.Field.": ["new.Field."]}
    );
}

#[test]
fn collection_uuids_last_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = streamcache::clock::ManualClock::shared(history_common::START_MS);
    let open = || {
        History::open(
            dir.path(),
            streamcache::history::HistoryConfig::default(),
            clock.clone(),
        )
        .unwrap()
    };
    let before = {
        let h = open();
        h.insert_one("db", "a", doc! {"_id": 1}).unwrap();
        h.insert_one("db", "b", doc! {"_id": 1}).unwrap();
        h.list_collection_uuids("db").unwrap()
    };
    assert_ne!(before[0].1, before[1].1);
    let h = open();
    assert_eq!(h.list_collection_uuids("db").unwrap(), before);
    // The events written before the reopen carry them too.
    let mut s = watch(
        &h,
        WatchScope::All,
        WatchOptions {
            start_at_operation_time: Some(bson::Timestamp {
                time: 0,
                increment: 0,
            }),
            ..expanded()
        },
    );
    let events = drain(&mut s);
    assert_eq!(ops(&events), ["create", "insert", "create", "insert"]);
    assert_eq!(
        events[1].get("collectionUUID"),
        Some(&Bson::from(before[0].1))
    );
    assert_eq!(
        events[3].get("collectionUUID"),
        Some(&Bson::from(before[1].1))
    );
}

#[test]
fn a_change_whose_paths_read_alike_is_logged_as_a_replacement() {
    let (_dir, h) = history_common::open();
    h.insert_one("db", "c", doc! {"_id": 1, "a.b": 1, "a": {"b": 1}})
        .unwrap();
    let mut s = watch(&h, coll("db", "c"), expanded());
    // The field named `a.b` and the field `b` of `a` both change: `updatedFields` would need
    // the key `a.b` twice.
    let pipeline = vec![doc! {"$replaceWith": {"$setField": {
        "field": "a.b",
        "input": {"$mergeObjects": ["$$ROOT", {"a": {"b": 3}}]},
        "value": 2,
    }}}];
    update_first(&h, &pipeline);
    let events = drain(&mut s);
    assert_eq!(ops(&events), ["replace"]);
    assert_eq!(
        events[0].get_document("fullDocument").unwrap(),
        &doc! {"_id": 1, "a.b": 2, "a": {"b": 3}}
    );
}

#[test]
fn a_collection_is_created_only_for_a_document_it_accepts() {
    let (_dir, h) = history_common::open();
    let mut s = watch(&h, WatchScope::All, expanded());
    let too_large = doc! {"pad": "x".repeat(DOCUMENT_BYTES_MAX)};
    let unordered = InsertManyOptions { ordered: false };
    let result = h
        .insert_many_with("db", "many", vec![too_large.clone()], unordered)
        .unwrap();
    assert_eq!(result.write_errors.len(), 1);
    assert!(h.list_collections("db").unwrap().is_empty());
    assert!(drain(&mut s).is_empty(), "no create, no insert");
    // With a document it accepts, the collection and its create come with that document.
    let result = h
        .insert_many_with("db", "many", vec![too_large, doc! {"_id": 1}], unordered)
        .unwrap();
    assert_eq!(result.write_errors.len(), 1);
    assert_eq!(ops(&drain(&mut s)), ["create", "insert"]);
}

#[test]
fn retention_removes_a_commit_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = HistoryConfig {
        oplog_bytes_max: 1_300,
        ..HistoryConfig::default()
    };
    let clock = streamcache::clock::ManualClock::shared(history_common::START_MS);
    let h = History::open(dir.path(), config, clock).unwrap();
    let mut all = watch(&h, WatchScope::All, expanded());
    h.insert_one("db", "c", doc! {"_id": 1}).unwrap();
    let first = drain(&mut all);
    assert_eq!(ops(&first), ["create", "insert"]);
    let t1 = first[1].get_timestamp("clusterTime").unwrap();
    // Past the size bound: the create alone would do, but its commit's insert goes with it.
    h.insert_one("db", "c", doc! {"_id": 2, "pad": "x".repeat(1_000)})
        .unwrap();
    assert_eq!(h.oplog_range().unwrap(), (3, 3));
    let from_t1 = h.watch(
        WatchScope::All,
        WatchOptions {
            start_at_operation_time: Some(t1),
            ..WatchOptions::default()
        },
    );
    assert_eq!(from_t1.unwrap_err().code(), 286, "its insert is gone too");
}

#[test]
fn a_database_stream_sees_a_collection_renamed_into_it() {
    let (_dir, h) = history_common::open();
    h.insert_one("a", "c", doc! {"_id": 1}).unwrap();
    let mut destination = watch(
        &h,
        WatchScope::Database("b".into()),
        WatchOptions::default(),
    );
    let mut source = watch(
        &h,
        WatchScope::Database("a".into()),
        WatchOptions::default(),
    );
    h.rename_collection("a", "c", "b", "d").unwrap();
    h.insert_one("b", "d", doc! {"_id": 2}).unwrap();
    let events = drain(&mut destination);
    assert_eq!(ops(&events), ["rename", "insert"]);
    assert_eq!(
        events[0].get_document("to").unwrap(),
        &doc! {"db": "b", "coll": "d"}
    );
    assert_eq!(ops(&drain(&mut source)), ["rename"]);
}
