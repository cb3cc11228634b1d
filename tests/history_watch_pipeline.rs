//! Capability: a change stream's own pipeline — `$match` and the reshaping stages
//! (`$project`, `$addFields`/`$set`, `$unset`, `$replaceRoot`/`$replaceWith`) and `$redact`
//! (tested in `history_redact.rs`) run on each event in order, as MongoDB's allow-list has
//! them; an event whose `_id` (the resume token) the pipeline changed is 280
//! ChangeStreamFatalError; any other stage is refused when the stream opens (20
//! IllegalOperation, 40602, 40324, 115); a `$match` that drops the invalidate still ends the
//! stream at the invalidate's token, which `startAfter` continues from.
//!
//! Method: a store in a temporary directory with a `ManualClock`; streams are read with
//! `try_next_batch`, which returns what is committed without waiting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use bson::{Document, doc};
use streamcache::clock::ManualClock;
use streamcache::history::{
    ChangeStream, Error, History, HistoryConfig, PIPELINE_STAGES_MAX, WatchOptions, WatchScope,
    is_invalidate_token,
};

const T0: u64 = 1_700_000_000_000;

fn open() -> (tempfile::TempDir, History) {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    )
    .unwrap();
    (dir, h)
}

fn orders() -> WatchScope {
    WatchScope::Collection {
        db: "shop".into(),
        coll: "orders".into(),
    }
}

fn watch(h: &History, pipeline: Vec<Document>) -> Result<ChangeStream, Error> {
    h.watch(
        orders(),
        WatchOptions {
            pipeline,
            ..WatchOptions::default()
        },
    )
}

fn drain(s: &mut ChangeStream) -> Vec<Document> {
    s.try_next_batch(10_000).unwrap().events
}

fn data(token: &Document) -> String {
    token.get_str("_data").unwrap().to_owned()
}

fn write_some(h: &History) {
    h.insert_one(
        "shop",
        "orders",
        doc! {"_id": 1, "total": 10, "status": "new"},
    )
    .unwrap();
    h.insert_one(
        "shop",
        "orders",
        doc! {"_id": 2, "total": 25, "status": "new"},
    )
    .unwrap();
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        &doc! {"$set": {"status": "shipped"}},
        streamcache::history::UpdateOptions::default(),
    )
    .unwrap();
}

#[test]
fn stages_run_on_each_event_in_order() {
    let (_dir, h) = open();
    let mut plain = watch(&h, Vec::new()).unwrap();
    let mut shaped = watch(
        &h,
        vec![
            doc! {"$match": {"operationType": "insert"}},
            doc! {"$project": {"operationType": 1, "fullDocument.total": 1}},
            doc! {"$addFields": {"big": {"$gt": ["$fullDocument.total", 20]}}},
            // A later $match sees what the stages before it made.
            doc! {"$match": {"big": true}},
            doc! {"$set": {"total": "$fullDocument.total"}},
            doc! {"$unset": "fullDocument"},
        ],
    )
    .unwrap();
    write_some(&h);
    let all = drain(&mut plain);
    assert_eq!(all.len(), 3);
    let got = drain(&mut shaped);
    // Only the second insert is big; `$project` kept `_id` (the token) and what it named.
    assert_eq!(
        got,
        vec![doc! {
            "_id": all[1].get_document("_id").unwrap().clone(),
            "operationType": "insert",
            "big": true,
            "total": 25,
        }]
    );
    let mut kept = watch(
        &h,
        vec![
            doc! {"$match": {"operationType": "update"}},
            doc! {"$replaceWith": {"_id": "$_id", "changed": "$updateDescription.updatedFields"}},
        ],
    )
    .unwrap();
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 2},
        &doc! {"$inc": {"total": 5}},
        streamcache::history::UpdateOptions::default(),
    )
    .unwrap();
    let got = drain(&mut kept);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].get_document("changed").unwrap(), &doc! {"total": 30});
    assert_eq!(got[0].keys().collect::<Vec<_>>(), ["_id", "changed"]);
}

#[test]
fn a_shaped_stream_resumes_from_its_events_tokens() {
    let (_dir, h) = open();
    let pipeline = vec![doc! {"$project": {"documentKey": 1}}];
    let mut first = watch(&h, pipeline.clone()).unwrap();
    write_some(&h);
    let events = drain(&mut first);
    assert_eq!(events.len(), 3);
    let resumed = h
        .watch(
            orders(),
            WatchOptions {
                resume_after: Some(data(events[0].get_document("_id").unwrap())),
                pipeline,
                ..WatchOptions::default()
            },
        )
        .unwrap();
    let mut resumed = resumed;
    assert_eq!(drain(&mut resumed), events[1..].to_vec());
    assert_eq!(
        resumed.resume_token(),
        *events[2].get_document("_id").unwrap()
    );
}

#[test]
fn changing_the_resume_token_is_280_and_non_resumable() {
    for stage in [
        doc! {"$project": {"_id": 0}},
        doc! {"$unset": "_id"},
        doc! {"$set": {"_id": "mine"}},
        doc! {"$set": {"_id._data": "00"}},
        doc! {"$replaceWith": {"operationType": "$operationType"}},
        doc! {"$replaceRoot": {"newRoot": {"_id": {"_data": "$operationType"}}}},
    ] {
        let (_dir, h) = open();
        // The collection exists before the stream opens: its insert is the next entry.
        h.insert_one("shop", "orders", doc! {"_id": 0}).unwrap();
        let mut stream = watch(&h, vec![stage.clone()]).unwrap();
        let start = stream.resume_token();
        h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
        let e = stream.try_next_batch(10).unwrap_err();
        assert_eq!(e.code(), 280, "{stage}");
        assert_eq!(e.code_name(), "ChangeStreamFatalError");
        assert_eq!(e.labels(), ["NonResumableChangeStreamError"]);
        let message = e.to_string();
        assert!(
            message.starts_with("Encountered an event whose _id field, which contains the resume token, was modified by the pipeline."),
            "{e}"
        );
        assert!(message.contains(" Expected: { _id: { _data: \"01"), "{e}");
        // The stream ended there: later events are not read past the failed one, and the
        // resume token is still before it.
        h.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();
        assert!(stream.is_closed(), "{stage}");
        assert!(stream.try_next_batch(10).unwrap().events.is_empty());
        assert_eq!(stream.resume_token(), start);
    }
    // Rebuilding `_id` with the same value is allowed, as MongoDB compares the value.
    let (_dir, h) = open();
    let mut same = watch(&h, vec![doc! {"$set": {"_id": "$_id"}}]).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    assert_eq!(drain(&mut same).len(), 1);
}

#[test]
fn stages_outside_the_allow_list_are_refused_when_the_stream_opens() {
    let (_dir, h) = open();
    let refused = |stage: Document| watch(&h, vec![stage]).unwrap_err();
    for stage in [
        doc! {"$group": {"_id": "$_id"}},
        doc! {"$sort": {"_id": 1}},
        doc! {"$skip": 100},
        doc! {"$limit": 100},
        doc! {"$sample": {"size": 100}},
        doc! {"$unwind": "$_id"},
        doc! {"$lookup": {"from": "coll", "as": "as", "localField": "_id", "foreignField": "_id"}},
        doc! {"$graphLookup": {"from": "coll", "as": "as", "startWith": "$_id",
        "connectFromField": "_id", "connectToField": "_id"}},
        doc! {"$bucketAuto": {"groupBy": "$_id", "buckets": 2}},
        doc! {"$facet": {"facetPipe": [{"$match": {"_id": {"$exists": true}}}]}},
        doc! {"$count": "n"},
        doc! {"$out": "elsewhere"},
        doc! {"$merge": "elsewhere"},
    ] {
        let name = stage.keys().next().unwrap().clone();
        let e = refused(stage);
        assert_eq!(
            (e.code(), e.code_name(), e.to_string()),
            (
                20,
                "IllegalOperation",
                format!("{name} is not permitted in a $changeStream pipeline")
            )
        );
    }
    let e = refused(doc! {"$changeStream": {}});
    assert_eq!(e.code(), 40602);
    assert_eq!(
        e.to_string(),
        "$changeStream is only valid as the first stage in a pipeline."
    );
    assert_eq!(refused(doc! {"$frobnicate": {}}).code(), 40324);
    // Allowed by MongoDB, not implemented here.
    assert_eq!(
        refused(doc! {"$changeStreamSplitLargeEvent": {}}).code(),
        115
    );
    assert_eq!(refused(doc! {"$match": 1}).code(), 2);
    assert_eq!(refused(doc! {"$project": {"a": 1}, "$match": {}}).code(), 2);
    // A stage's own parse errors surface when the stream opens, not at the first event.
    assert_eq!(
        refused(doc! {"$addFields": {"a": {"$noSuchOperator": 1}}}).code(),
        168
    );
}

#[test]
fn the_stage_count_is_limited() {
    let (_dir, h) = open();
    let stages = |n: usize| vec![doc! {"$match": {"operationType": "insert"}}; n];
    let mut at_max = watch(&h, stages(PIPELINE_STAGES_MAX)).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    assert_eq!(drain(&mut at_max).len(), 1);
    let e = watch(&h, stages(PIPELINE_STAGES_MAX + 1)).unwrap_err();
    assert!(matches!(e, Error::TooMany { .. }), "{e}");
}

#[test]
fn a_match_that_drops_the_invalidate_still_ends_the_stream_at_its_token() {
    let (_dir, h) = open();
    let inserts = vec![doc! {"$match": {"operationType": "insert"}}];
    let mut stream = watch(&h, inserts.clone()).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    h.drop_collection("shop", "orders").unwrap();
    let batch = stream.try_next_batch(10).unwrap();
    let kinds: Vec<&str> = batch
        .events
        .iter()
        .map(|e| e.get_str("operationType").unwrap())
        .collect();
    assert_eq!(kinds, ["insert"], "neither the drop nor the invalidate");
    assert!(stream.is_closed(), "the invalidate ended the stream");
    let end = data(&batch.post_batch_resume_token);
    assert!(is_invalidate_token(&end), "{end}");
    assert_eq!(data(&stream.resume_token()), end);
    // The collection comes back; startAfter the invalidate sees its insert.
    h.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();
    let mut after = h
        .watch(
            orders(),
            WatchOptions {
                start_after: Some(end),
                pipeline: inserts,
                ..WatchOptions::default()
            },
        )
        .unwrap();
    let events = drain(&mut after);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].get_document("documentKey").unwrap(),
        &doc! {"_id": 2}
    );
    // Without the $match the invalidate is delivered, through the other stages.
    let (_dir, h) = open();
    let mut shaped = watch(&h, vec![doc! {"$project": {"operationType": 1}}]).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    h.drop_collection("shop", "orders").unwrap();
    let events = drain(&mut shaped);
    let last = events.last().unwrap();
    assert_eq!(last.keys().collect::<Vec<_>>(), ["_id", "operationType"]);
    assert_eq!(last.get_str("operationType").unwrap(), "invalidate");
    assert!(shaped.is_closed());
}

#[test]
fn resuming_after_the_ending_event_runs_the_invalidate_through_the_pipeline() {
    let (_dir, h) = open();
    let mut all = watch(&h, Vec::new()).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    h.drop_collection("shop", "orders").unwrap();
    let events = drain(&mut all);
    let drop_token = data(events[1].get_document("_id").unwrap());
    let resume = |pipeline: Vec<Document>| {
        h.watch(
            orders(),
            WatchOptions {
                resume_after: Some(drop_token.clone()),
                pipeline,
                ..WatchOptions::default()
            },
        )
        .unwrap()
    };
    let mut dropped = resume(vec![doc! {"$match": {"operationType": "insert"}}]);
    assert!(drain(&mut dropped).is_empty());
    assert!(dropped.is_closed());
    assert!(is_invalidate_token(&data(&dropped.resume_token())));
    let mut shaped = resume(vec![doc! {"$project": {"operationType": 1}}]);
    let got = drain(&mut shaped);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].get_str("operationType").unwrap(), "invalidate");
    assert_eq!(got[0].len(), 2);
}
