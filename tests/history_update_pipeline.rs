//! Capability: pipeline-style updates (`updateOne(filter, [{$set: …}, …])`, MongoDB 4.2) —
//! `$addFields`/`$set`, `$project`/`$unset` and `$replaceRoot`/`$replaceWith` stages reading
//! the document's own fields, `$$NOW` from the store's clock, the `_id` rules of a replacement,
//! upserts seeded from the filter, `findOneAndUpdate`, the change events they write, and
//! MongoDB's errors for stages an update may not hold and for `arrayFilters`. Also through the
//! Data API, where `update` given as an array is a pipeline.
//!
//! Method: a store on a manual clock in a temporary directory; expected documents and error
//! codes are MongoDB 7.0's for the same calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod history_common;

use bson::{Bson, Document, doc};
use streamcache::history::{
    ChangeStream, FindAndModifyOptions, FindOptions, History, UpdateOptions, WatchOptions,
    WatchScope,
};

fn all(h: &History) -> Vec<Document> {
    h.find("db", "c", &doc! {}, &FindOptions::default())
        .unwrap()
}

/// A change stream on `db.c`.
fn watch_c(h: &History) -> ChangeStream {
    h.watch(
        WatchScope::Collection {
            db: "db".into(),
            coll: "c".into(),
        },
        WatchOptions::default(),
    )
    .unwrap()
}

fn seeded() -> (tempfile::TempDir, History) {
    let (dir, h) = history_common::open();
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "price": 4, "qty": 3, "tags": ["a"]},
            doc! {"_id": 2, "price": 10, "qty": 1, "note": "x"},
        ],
    )
    .unwrap();
    (dir, h)
}

#[test]
fn stages_compute_from_the_documents_own_fields() {
    let (_dir, h) = seeded();
    let pipeline = vec![
        doc! {"$set": {"total": {"$multiply": ["$price", "$qty"]}, "at": "$$NOW"}},
        doc! {"$unset": ["note"]},
    ];
    let r = h
        .update(
            "db",
            "c",
            &doc! {},
            &pipeline,
            UpdateOptions {
                multi: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (2, 2));
    let now = bson::DateTime::from_millis(i64::try_from(history_common::START_MS).unwrap());
    assert_eq!(
        all(&h),
        vec![
            doc! {"_id": 1, "price": 4, "qty": 3, "tags": ["a"], "total": 12, "at": now},
            doc! {"_id": 2, "price": 10, "qty": 1, "total": 10, "at": now},
        ]
    );
}

#[test]
fn replace_with_keeps_the_stored_id_first_and_refuses_another() {
    let (_dir, h) = seeded();
    // The output has no `_id`: the stored one stays, first.
    let r = h
        .update(
            "db",
            "c",
            &doc! {"_id": 1},
            &vec![doc! {"$replaceWith": {"sum": {"$add": ["$price", "$qty"]}}}],
            UpdateOptions::default(),
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (1, 1));
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": 1}, None).unwrap(),
        Some(doc! {"_id": 1, "sum": 7})
    );
    // `_id` written later in the output still comes first.
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &vec![doc! {"$replaceWith": {"z": 1, "_id": "$_id"}}],
        UpdateOptions::default(),
    )
    .unwrap();
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": 1}, None).unwrap(),
        Some(doc! {"_id": 1, "z": 1})
    );
    // A different `_id` is MongoDB's ImmutableField, and nothing changes.
    let e = h
        .update(
            "db",
            "c",
            &doc! {"_id": 2},
            &vec![doc! {"$set": {"_id": "two"}}],
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!((e.code(), e.code_name()), (66, "ImmutableField"));
    assert_eq!(
        e.to_string(),
        "After applying the update, the (immutable) field '_id' was found to have been altered to _id: \"two\""
    );
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": 2}, None).unwrap(),
        Some(doc! {"_id": 2, "price": 10, "qty": 1, "note": "x"})
    );
    // A replacement document gives MongoDB's same text.
    let e = h
        .replace("db", "c", &doc! {"_id": 2}, &doc! {"_id": 3, "a": 1}, false)
        .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (
            66,
            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 3"
        )
    );
}

#[test]
fn an_output_identical_to_the_stored_document_is_not_a_modification() {
    let (_dir, h) = seeded();
    let same = h
        .update(
            "db",
            "c",
            &doc! {"_id": 2},
            &vec![doc! {"$set": {"qty": 1}}, doc! {"$project": {"tags": 0}}],
            UpdateOptions::default(),
        )
        .unwrap();
    assert_eq!((same.matched, same.modified), (1, 0));
    // The same fields in another order are a different document: written.
    let reordered = h
        .update(
            "db",
            "c",
            &doc! {"_id": 2},
            &vec![doc! {"$replaceWith": {"_id": "$_id", "note": "$note", "qty": "$qty", "price": "$price"}}],
            UpdateOptions::default(),
        )
        .unwrap();
    assert_eq!((reordered.matched, reordered.modified), (1, 1));
    let stored = h
        .find_one("db", "c", &doc! {"_id": 2}, None)
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.keys().map(String::as_str).collect::<Vec<_>>(),
        ["_id", "note", "qty", "price"]
    );
    // An empty pipeline changes nothing.
    let empty: Vec<Document> = Vec::new();
    let r = h
        .update(
            "db",
            "c",
            &doc! {"_id": 1},
            &empty,
            UpdateOptions::default(),
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (1, 0));
}

#[test]
fn an_upsert_runs_the_pipeline_over_the_filters_equality_fields() {
    let (_dir, h) = history_common::open();
    let r = h
        .update(
            "db",
            "c",
            &doc! {"sku": "k1", "qty": {"$gt": 5}},
            &vec![doc! {"$set": {"label": {"$concat": ["item ", "$sku"]}, "n": 1}}],
            UpdateOptions {
                upsert: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (0, 0));
    let id = r.upserted_id.expect("an upsert inserts");
    assert!(matches!(id, Bson::ObjectId(_)));
    assert_eq!(
        all(&h),
        vec![doc! {"_id": id, "sku": "k1", "label": "item k1", "n": 1}]
    );
}

#[test]
fn find_one_and_update_takes_a_pipeline() {
    let (_dir, h) = seeded();
    let after = h
        .find_one_and_update(
            "db",
            "c",
            &doc! {"_id": 2},
            // An array of stages works as well as a Vec or a slice.
            &[doc! {"$set": {"qty": {"$add": ["$qty", 4]}}}],
            &FindAndModifyOptions {
                return_new: true,
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        after,
        Some(doc! {"_id": 2, "price": 10, "qty": 5, "note": "x"})
    );
}

#[test]
fn stages_an_update_may_not_hold_and_array_filters_are_refused() {
    let (_dir, h) = seeded();
    for stage in [
        doc! {"$match": {"_id": 1}},
        doc! {"$sort": {"_id": 1}},
        doc! {"$group": {"_id": null}},
        doc! {"$out": "elsewhere"},
    ] {
        let name = stage.keys().next().unwrap().clone();
        let e = h
            .update("db", "c", &doc! {}, &vec![stage], UpdateOptions::default())
            .unwrap_err();
        assert_eq!((e.code(), e.code_name()), (72, "InvalidOptions"), "{name}");
        assert_eq!(
            e.to_string(),
            format!("{name} is not allowed to be used within an update")
        );
    }
    let e = h
        .update(
            "db",
            "c",
            &doc! {},
            &vec![doc! {"$nope": {}}],
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 40324);
    let e = h
        .update(
            "db",
            "c",
            &doc! {},
            &vec![doc! {"$set": {"a": 1}}],
            UpdateOptions {
                array_filters: Some(vec![doc! {"x": 1}]),
                ..UpdateOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!((e.code(), e.code_name()), (9, "FailedToParse"));
    assert_eq!(
        e.to_string(),
        "arrayFilters may not be specified for pipeline-style updates"
    );
    // A non-document new root is MongoDB's 40228, checked when the document is reached.
    let e = h
        .update(
            "db",
            "c",
            &doc! {"_id": 1},
            &vec![doc! {"$replaceWith": "$price"}],
            UpdateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 40228);
    // Nothing was written by any of them.
    assert_eq!(
        all(&h),
        vec![
            doc! {"_id": 1, "price": 4, "qty": 3, "tags": ["a"]},
            doc! {"_id": 2, "price": 10, "qty": 1, "note": "x"},
        ]
    );
}

#[test]
fn change_events_carry_the_delta_or_the_replacement() {
    let (_dir, h) = seeded();
    let long = "n".repeat(100);
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &doc! {"$set": {"notes": &long}},
        UpdateOptions::default(),
    )
    .unwrap();
    let mut s = watch_c(&h);
    // A small change of a document much larger than it: an update event with the delta.
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &vec![doc! {"$set": {"qty": 4}}, doc! {"$unset": "tags"}],
        UpdateOptions::default(),
    )
    .unwrap();
    // Everything replaced: the delta would outgrow the new document, so a replace event (as
    // any change of a document as small as the delta itself).
    h.update(
        "db",
        "c",
        &doc! {"_id": 2},
        &vec![doc! {"$replaceWith": {"x": 1}}],
        UpdateOptions::default(),
    )
    .unwrap();
    let events = s.try_next_batch(10).unwrap().events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].get_str("operationType").unwrap(), "update");
    assert_eq!(
        events[0].get_document("updateDescription").unwrap(),
        &doc! {"updatedFields": {"qty": 4}, "removedFields": ["tags"], "truncatedArrays": []}
    );
    assert_eq!(events[1].get_str("operationType").unwrap(), "replace");
    assert_eq!(
        events[1].get_document("fullDocument").unwrap(),
        &doc! {"_id": 2, "x": 1}
    );
}

#[test]
fn stage_count_limit_at_max_and_max_plus_one() {
    use streamcache::history::PIPELINE_STAGES_MAX;
    let (_dir, h) = seeded();
    let max: Vec<Document> = (0..PIPELINE_STAGES_MAX)
        .map(|i| doc! {"$set": {"n": i64::try_from(i).unwrap()}})
        .collect();
    let r = h
        .update("db", "c", &doc! {"_id": 1}, &max, UpdateOptions::default())
        .unwrap();
    assert_eq!((r.matched, r.modified), (1, 1));
    let last = i64::try_from(PIPELINE_STAGES_MAX - 1).unwrap();
    assert_eq!(
        h.find_one("db", "c", &doc! {"_id": 1}, None)
            .unwrap()
            .and_then(|d| d.get_i64("n").ok()),
        Some(last)
    );
    let mut over = max;
    over.push(doc! {"$set": {"n": -1}});
    let e = h
        .update("db", "c", &doc! {"_id": 1}, &over, UpdateOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            e,
            streamcache::history::Error::TooMany {
                what: "pipeline",
                ..
            }
        ),
        "{e}"
    );
}

/// A write's filter sees the `$$CLUSTER_TIME` its update sees, one value for the whole write
/// as MongoDB's runtime constants are one per command: the write's cluster time.
#[test]
fn a_writes_filter_sees_its_cluster_time() {
    let (_dir, h) = seeded();
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &vec![doc! {"$set": {"at": "$$CLUSTER_TIME"}}],
        UpdateOptions::default(),
    )
    .unwrap();
    let stored = h
        .find_one("db", "c", &doc! {"_id": 1}, None)
        .unwrap()
        .unwrap();
    let at = stored.get_timestamp("at").unwrap();
    // The clock stands still: the next write is the next increment of the same second.
    let next = bson::Timestamp {
        time: at.time,
        increment: at.increment + 1,
    };
    let r = h
        .update(
            "db",
            "c",
            &doc! {"$expr": {"$eq": ["$$CLUSTER_TIME", next]}},
            &vec![doc! {"$set": {"seen": "$$CLUSTER_TIME"}}],
            UpdateOptions {
                multi: true,
                ..UpdateOptions::default()
            },
        )
        .unwrap();
    assert_eq!((r.matched, r.modified), (2, 2));
}

/// `$$CLUSTER_TIME` is a Timestamp: in a pipeline update, the cluster time of the write (its
/// change event's `clusterTime`); in a read, the store clock's second (increment 0). A path
/// below it is missing, as below `$$NOW`.
#[test]
fn cluster_time_is_the_writes_timestamp() {
    let (_dir, h) = seeded();
    let mut s = watch_c(&h);
    h.update(
        "db",
        "c",
        &doc! {"_id": 1},
        &vec![doc! {"$set": {"at": "$$CLUSTER_TIME", "below": "$$CLUSTER_TIME.t"}}],
        UpdateOptions::default(),
    )
    .unwrap();
    let events = s.try_next_batch(10).unwrap().events;
    let cluster_time = events[0].get("clusterTime").unwrap().clone();
    assert!(matches!(cluster_time, Bson::Timestamp(_)));
    assert_eq!(
        events[0].get_document("updateDescription").unwrap(),
        &doc! {"updatedFields": {"at": cluster_time.clone()}, "removedFields": [], "truncatedArrays": []}
    );
    let stored = h
        .find_one("db", "c", &doc! {"_id": 1}, None)
        .unwrap()
        .unwrap();
    assert_eq!(stored.get("at"), Some(&cluster_time));
    assert!(!stored.contains_key("below"));
    let read = h
        .aggregate(
            "db",
            "c",
            &[
                doc! {"$match": {"_id": 1}},
                doc! {"$project": {"_id": 0, "t": "$$CLUSTER_TIME"}},
            ],
        )
        .unwrap();
    // `findOneAndUpdate` writes its own cluster time too.
    let returned = h
        .find_one_and_update(
            "db",
            "c",
            &doc! {"_id": 2},
            &vec![doc! {"$set": {"at": "$$CLUSTER_TIME"}}],
            &FindAndModifyOptions {
                return_new: true,
                ..FindAndModifyOptions::default()
            },
        )
        .unwrap()
        .unwrap();
    let events = s.try_next_batch(10).unwrap().events;
    assert_eq!(returned.get("at"), events[0].get("clusterTime"));
    let seconds = u32::try_from(history_common::START_MS / 1000).unwrap();
    assert_eq!(
        read,
        vec![doc! {"t": bson::Timestamp { time: seconds, increment: 0 }}]
    );
}

/// `$currentDate` with `{$type: "timestamp"}` writes the write's cluster time, the
/// `clusterTime` of its change event, as MongoDB writes a tick of its cluster clock (not the
/// second with a fixed increment, which an earlier write of that second could have passed):
/// for an update, an updateMany, an upsert's insert and findOneAndUpdate.
#[test]
fn current_date_as_a_timestamp_is_the_writes_cluster_time() {
    let (_dir, h) = seeded();
    let mut s = watch_c(&h);
    let stamp = doc! {"$currentDate": {"at": {"$type": "timestamp"}}};
    let one = UpdateOptions::default();
    let many = UpdateOptions {
        multi: true,
        ..UpdateOptions::default()
    };
    let upsert = UpdateOptions {
        upsert: true,
        ..UpdateOptions::default()
    };
    h.update("db", "c", &doc! {"_id": 1}, &stamp, one).unwrap();
    h.update("db", "c", &doc! {}, &stamp, many).unwrap();
    h.update("db", "c", &doc! {"_id": 3}, &stamp, upsert)
        .unwrap();
    h.find_one_and_update(
        "db",
        "c",
        &doc! {"_id": 2},
        &stamp,
        &FindAndModifyOptions::default(),
    )
    .unwrap();
    let events = s.try_next_batch(10).unwrap().events;
    assert_eq!(events.len(), 5, "{events:?}");
    for e in &events {
        let cluster_time = e.get("clusterTime").unwrap();
        let written = match e.get_str("operationType").unwrap() {
            "insert" => e.get_document("fullDocument").unwrap().get("at"),
            _ => e
                .get_document("updateDescription")
                .unwrap()
                .get_document("updatedFields")
                .unwrap()
                .get("at"),
        };
        assert_eq!(written, Some(cluster_time), "{e:?}");
    }
}

/// A pipeline-style update's change event lists what changed as MongoDB's diff of the two
/// documents reads back (`computeDocDiff`, then the change stream's reading of the `$v: 2`
/// diff): fields compared in place, per document level the updated ones, then the created
/// ones (a field moved out of its place is created anew), then what changed inside sub-documents
/// and arrays (arrays within arrays included); removed fields after the last kept field first,
/// then the others in name order.
#[test]
fn pipeline_update_descriptions_follow_mongodbs_diff() {
    let (_d, h) = history_common::open();
    let notes = "n".repeat(2000);
    h.insert_many(
        "db",
        "c",
        vec![
            doc! {"_id": 1, "notes": &notes, "a": {"x": 1, "y": 1}, "b": 1, "c": [1, [1, 2]], "z": 1, "w": 1},
            doc! {"_id": 2, "notes": &notes, "p": 1, "q": 1, "r": 1, "s": 1},
            doc! {"_id": 3, "notes": &notes, "r": 1, "q": 1, "k": 1, "t": 1},
        ],
    )
    .unwrap();
    let mut s = watch_c(&h);
    for (id, pipeline) in [
        (
            1,
            vec![
                doc! {"$set": {"a": {"x": 2, "y": 1}, "b": 2, "c": [1, [1, 3]], "new": 1}},
                doc! {"$unset": "z"},
            ],
        ),
        (
            2,
            vec![doc! {"$replaceWith": {"_id": "$_id", "notes": "$notes", "s": "$s", "p": "$p"}}],
        ),
        (3, vec![doc! {"$project": {"notes": 1, "k": 1}}]),
    ] {
        h.update(
            "db",
            "c",
            &doc! {"_id": id},
            &pipeline,
            UpdateOptions::default(),
        )
        .unwrap();
    }
    let events = s.try_next_batch(10).unwrap().events;
    let descriptions: Vec<&Document> = events
        .iter()
        .map(|e| e.get_document("updateDescription").unwrap())
        .collect();
    assert_eq!(
        descriptions,
        [
            &doc! {
                "updatedFields": {"b": 2, "new": 1, "a.x": 2, "c.1.1": 3},
                "removedFields": ["z"],
                "truncatedArrays": [],
            },
            &doc! {"updatedFields": {"p": 1}, "removedFields": ["q", "r"], "truncatedArrays": []},
            &doc! {"updatedFields": {}, "removedFields": ["t", "q", "r"], "truncatedArrays": []},
        ]
    );
    let order: Vec<&String> = descriptions[0]
        .get_document("updatedFields")
        .unwrap()
        .keys()
        .collect();
    assert_eq!(order, ["b", "new", "a.x", "c.1.1"]);
}
