//! Capability: the history change feed — MongoDB-shaped events written in the same batch as
//! the data, resume tokens whose string order is oplog order, resumeAfter / startAfter /
//! startAtOperationTime, fullDocument and fullDocumentBeforeChange modes, `$match`,
//! invalidation, wake-on-commit, retention with error 286, resume across a restart, and the
//! atomic `commit` with metadata.
//!
//! Method: each test opens a store in a temporary directory with a `ManualClock`; retention by
//! age is driven by advancing that clock. Waiting for events uses bounded timeouts on a
//! condition, never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document, doc};
use streamcache::clock::ManualClock;
use streamcache::history::{
    ChangeStream, Error, FullDocument, FullDocumentBeforeChange, History, HistoryConfig,
    UpdateOptions, WatchOptions, WatchScope, WriteOp, WriteOutcome,
};

const T0: u64 = 1_700_000_000_000;

fn open_with(dir: &std::path::Path, config: HistoryConfig, clock: Arc<ManualClock>) -> History {
    History::open(dir, config, clock).unwrap()
}

/// A store on a manual clock at `T0` whose oplog keeps events for 60 s.
fn open_aging(dir: &std::path::Path) -> (Arc<ManualClock>, History) {
    let clock = ManualClock::shared(T0);
    let config = HistoryConfig {
        oplog_age_ms_max: 60_000,
        ..HistoryConfig::default()
    };
    (clock.clone(), open_with(dir, config, clock))
}

fn coll_scope() -> WatchScope {
    WatchScope::Collection {
        db: "shop".into(),
        coll: "orders".into(),
    }
}

fn drain(s: &mut ChangeStream) -> Vec<Document> {
    s.try_next_batch(10_000).unwrap().events
}

fn token(ev: &Document) -> String {
    ev.get_document("_id")
        .unwrap()
        .get_str("_data")
        .unwrap()
        .to_owned()
}

fn ops(evs: &[Document]) -> Vec<&str> {
    evs.iter()
        .map(|e| e.get_str("operationType").unwrap())
        .collect()
}

#[test]
fn events_have_mongodb_shape_and_ordered_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::shared(T0);
    let h = open_with(dir.path(), HistoryConfig::default(), clock.clone());
    let mut s = h.watch(coll_scope(), WatchOptions::default()).unwrap();
    h.insert_one(
        "shop",
        "orders",
        doc! {"_id": 1, "qty": 1, "items": [1, 2, 3]},
    )
    .unwrap();
    clock.advance(Duration::from_secs(2));
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        &doc! {"$set": {"qty": 2, "items": [1]}, "$unset": {"gone": ""}},
        UpdateOptions::default(),
    )
    .unwrap();
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        &doc! {"$push": {"items": 5}},
        UpdateOptions::default(),
    )
    .unwrap();
    h.replace("shop", "orders", &doc! {"_id": 1}, &doc! {"qty": 9}, false)
        .unwrap();
    h.delete("shop", "orders", &doc! {"_id": 1}, false).unwrap();
    h.insert_one("shop", "other", doc! {"_id": 1}).unwrap();
    let evs = drain(&mut s);
    assert_eq!(
        ops(&evs),
        vec!["insert", "update", "update", "replace", "delete"]
    );
    let insert = &evs[0];
    assert_eq!(
        insert.get_document("ns").unwrap(),
        &doc! {"db": "shop", "coll": "orders"}
    );
    assert_eq!(
        insert.get_document("documentKey").unwrap(),
        &doc! {"_id": 1}
    );
    assert_eq!(
        insert.get_document("fullDocument").unwrap(),
        &doc! {"_id": 1, "qty": 1, "items": [1, 2, 3]}
    );
    assert_eq!(
        insert.get_timestamp("clusterTime").unwrap().time,
        1_700_000_000
    );
    assert_eq!(
        insert.get_datetime("wallTime").unwrap().timestamp_millis(),
        T0 as i64
    );
    // `$set` of an array logs the array whole, as MongoDB's update nodes log it; operators
    // never truncate. The paths come in the order MongoDB applies them: by path.
    let upd = evs[1].get_document("updateDescription").unwrap();
    assert_eq!(
        upd.get_document("updatedFields").unwrap(),
        &doc! {"items": [1], "qty": 2}
    );
    assert_eq!(upd.get_array("removedFields").unwrap(), &Vec::<Bson>::new());
    assert_eq!(
        upd.get_array("truncatedArrays").unwrap(),
        &Vec::<Bson>::new()
    );
    assert!(
        !evs[1].contains_key("fullDocument"),
        "default mode omits fullDocument on update"
    );
    let upd2 = evs[2].get_document("updateDescription").unwrap();
    assert_eq!(
        upd2.get_document("updatedFields").unwrap(),
        &doc! {"items.1": 5}
    );
    assert_eq!(
        evs[3].get_document("fullDocument").unwrap(),
        &doc! {"_id": 1, "qty": 9}
    );
    assert!(!evs[4].contains_key("fullDocument"));
    // Tokens: fixed width, upper-case hex, strictly increasing as strings.
    let tokens: Vec<String> = evs.iter().map(token).collect();
    for t in &tokens {
        assert_eq!(t.len(), tokens[0].len());
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "{t}"
        );
    }
    assert!(tokens.windows(2).all(|w| w[0] < w[1]));
    // Cluster times never go backwards, even within one second.
    let times: Vec<(u32, u32)> = evs
        .iter()
        .map(|e| {
            let t = e.get_timestamp("clusterTime").unwrap();
            (t.time, t.increment)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn scopes_resume_and_start_options() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::shared(T0);
    let h = open_with(dir.path(), HistoryConfig::default(), clock.clone());
    let mut all = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    let mut db = h
        .watch(WatchScope::Database("shop".into()), WatchOptions::default())
        .unwrap();
    for i in 0..5 {
        h.insert_one("shop", "orders", doc! {"_id": i}).unwrap();
        h.insert_one("shop", "users", doc! {"_id": i}).unwrap();
        h.insert_one("other", "orders", doc! {"_id": i}).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(drain(&mut all).len(), 15);
    let db_events = drain(&mut db);
    assert_eq!(db_events.len(), 10);
    // resumeAfter the 4th shop event gives the remaining 6, in order.
    let opts = WatchOptions {
        resume_after: Some(token(&db_events[3])),
        ..WatchOptions::default()
    };
    let mut resumed = h.watch(WatchScope::Database("shop".into()), opts).unwrap();
    assert_eq!(drain(&mut resumed), db_events[4..].to_vec());
    // startAtOperationTime picks the first event at or after the time.
    let ts = db_events[6].get_timestamp("clusterTime").unwrap();
    let opts = WatchOptions {
        start_at_operation_time: Some(ts),
        ..WatchOptions::default()
    };
    let mut from_time = h.watch(WatchScope::Database("shop".into()), opts).unwrap();
    assert_eq!(drain(&mut from_time).first(), Some(&db_events[6]));
    // Two start options at once are refused.
    let both = WatchOptions {
        resume_after: Some(token(&db_events[0])),
        start_at_operation_time: Some(ts),
        ..WatchOptions::default()
    };
    assert_eq!(h.watch(WatchScope::All, both).unwrap_err().code(), 2);
    let bad = WatchOptions {
        resume_after: Some("XYZ".into()),
        ..WatchOptions::default()
    };
    assert_eq!(h.watch(WatchScope::All, bad).unwrap_err().code(), 260);
    // $match filters rendered events.
    let opts = WatchOptions {
        pipeline: vec![doc! {"$match": {"ns.coll": "users", "documentKey._id": {"$gte": 3}}}],
        start_at_operation_time: Some(bson::Timestamp {
            time: 0,
            increment: 0,
        }),
        ..WatchOptions::default()
    };
    let mut matched = h.watch(WatchScope::All, opts).unwrap();
    let evs = drain(&mut matched);
    assert_eq!(evs.len(), 2);
    assert!(
        evs.iter()
            .all(|e| e.get_document("ns").unwrap().get_str("coll").unwrap() == "users")
    );
    // $expr in the $match reads the rendered event.
    let opts = WatchOptions {
        pipeline: vec![doc! {"$match": {"$expr": {"$and": [
            {"$eq": ["$ns.coll", "users"]},
            {"$gte": ["$documentKey._id", 3]},
        ]}}}],
        start_at_operation_time: Some(bson::Timestamp {
            time: 0,
            increment: 0,
        }),
        ..WatchOptions::default()
    };
    let mut by_expr = h.watch(WatchScope::All, opts).unwrap();
    assert_eq!(drain(&mut by_expr), evs);
    let unsupported = WatchOptions {
        pipeline: vec![doc! {"$group": {"_id": 1}}],
        ..WatchOptions::default()
    };
    assert_eq!(
        h.watch(WatchScope::All, unsupported).unwrap_err().code(),
        20,
        "MongoDB's IllegalOperation: $group may not run in a change stream"
    );
}

#[test]
fn full_document_modes_and_pre_images() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let start = h.oplog_range().unwrap().1;
    h.insert_one("shop", "orders", doc! {"_id": 1, "v": 1})
        .unwrap();
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        &doc! {"$set": {"v": 2}},
        UpdateOptions::default(),
    )
    .unwrap();
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        &doc! {"$set": {"v": 3}},
        UpdateOptions::default(),
    )
    .unwrap();
    h.delete("shop", "orders", &doc! {"_id": 1}, false).unwrap();
    let from_start = |fd: FullDocument, before: FullDocumentBeforeChange| {
        let tok = format!("01{start:016X}00");
        let mut s = h
            .watch(
                coll_scope(),
                WatchOptions {
                    resume_after: Some(tok),
                    full_document: fd,
                    full_document_before_change: before,
                    ..WatchOptions::default()
                },
            )
            .unwrap();
        drain(&mut s)
    };
    let evs = from_start(
        FullDocument::WhenAvailable,
        FullDocumentBeforeChange::WhenAvailable,
    );
    assert_eq!(
        evs[1].get_document("fullDocument").unwrap(),
        &doc! {"_id": 1, "v": 2}
    );
    assert_eq!(
        evs[1].get_document("fullDocumentBeforeChange").unwrap(),
        &doc! {"_id": 1, "v": 1}
    );
    assert_eq!(
        evs[3].get_document("fullDocumentBeforeChange").unwrap(),
        &doc! {"_id": 1, "v": 3}
    );
    assert!(!evs[0].contains_key("fullDocumentBeforeChange"));
    // updateLookup reads the current document: it was deleted, so null.
    let evs = from_start(FullDocument::UpdateLookup, FullDocumentBeforeChange::Off);
    assert_eq!(evs[1].get("fullDocument"), Some(&Bson::Null));
    assert!(!evs[1].contains_key("fullDocumentBeforeChange"));
    let evs = from_start(FullDocument::Required, FullDocumentBeforeChange::Required);
    assert_eq!(
        evs[2].get_document("fullDocument").unwrap(),
        &doc! {"_id": 1, "v": 3}
    );
}

#[test]
fn drop_and_rename_invalidate_collection_streams() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    let mut coll = h.watch(coll_scope(), WatchOptions::default()).unwrap();
    let mut db = h
        .watch(WatchScope::Database("shop".into()), WatchOptions::default())
        .unwrap();
    assert!(h.drop_collection("shop", "orders").unwrap());
    assert!(!h.drop_collection("shop", "orders").unwrap());
    h.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();
    let evs = drain(&mut coll);
    assert_eq!(ops(&evs), vec!["drop", "invalidate"]);
    assert!(coll.is_closed());
    assert_eq!(drain(&mut coll), Vec::<Document>::new());
    // resumeAfter an invalidate is refused; startAfter continues after it.
    let inv = token(&evs[1]);
    let e = h
        .watch(
            coll_scope(),
            WatchOptions {
                resume_after: Some(inv.clone()),
                ..WatchOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), 260);
    let mut after = h
        .watch(
            coll_scope(),
            WatchOptions {
                start_after: Some(inv),
                ..WatchOptions::default()
            },
        )
        .unwrap();
    assert_eq!(ops(&drain(&mut after)), vec!["insert"]);
    h.rename_collection("shop", "orders", "shop", "archive")
        .unwrap();
    assert_eq!(h.count("shop", "archive", &doc! {}).unwrap(), 1);
    assert_eq!(h.count("shop", "orders", &doc! {}).unwrap(), 0);
    let evs = drain(&mut after);
    assert_eq!(ops(&evs), vec!["rename", "invalidate"]);
    assert_eq!(
        evs[0].get_document("to").unwrap(),
        &doc! {"db": "shop", "coll": "archive"}
    );
    h.drop_database("shop").unwrap();
    assert_eq!(h.list_collections("shop").unwrap(), Vec::<String>::new());
    let evs = drain(&mut db);
    assert_eq!(
        ops(&evs),
        vec![
            "drop",
            "insert",
            "rename",
            "drop",
            "dropDatabase",
            "invalidate"
        ]
    );
    assert_eq!(evs[4].get_document("ns").unwrap(), &doc! {"db": "shop"});
}

#[test]
fn retention_by_age_and_size_gives_history_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, h) = open_aging(dir.path());
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    let mut lagging = h.watch(coll_scope(), WatchOptions::default()).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();
    // The collection's `create` (seen only with `showExpandedEvents`), then the inserts.
    let first_token = format!("01{:016X}00", 1u64);
    h.watch(
        coll_scope(),
        WatchOptions {
            resume_after: Some(first_token.clone()),
            ..WatchOptions::default()
        },
    )
    .unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(h.trim_oplog().unwrap(), 3);
    let e = h
        .watch(
            coll_scope(),
            WatchOptions {
                resume_after: Some(first_token),
                ..WatchOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, Error::ChangeStreamHistoryLost));
    assert_eq!(e.code(), 286);
    assert_eq!(e.code_name(), "ChangeStreamHistoryLost");
    assert_eq!(e.labels(), &["NonResumableChangeStreamError"]);
    assert_eq!(
        e.to_string(),
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog."
    );
    // A stream that fell behind retention fails the same way, and keeps failing.
    assert_eq!(lagging.try_next_batch(10).unwrap_err().code(), 286);
    assert_eq!(lagging.try_next_batch(10).unwrap_err().code(), 286);
    // Resuming from the last trimmed event is fine: nothing after it was lost.
    let last = format!("01{:016X}00", 3u64);
    h.watch(
        coll_scope(),
        WatchOptions {
            resume_after: Some(last),
            ..WatchOptions::default()
        },
    )
    .unwrap();

    // By size: a tiny budget keeps only the newest events.
    let dir2 = tempfile::tempdir().unwrap();
    let h2 = open_with(
        dir2.path(),
        HistoryConfig {
            oplog_bytes_max: 1_000,
            ..HistoryConfig::default()
        },
        clock,
    );
    for i in 0..50 {
        h2.insert_one("shop", "orders", doc! {"_id": i, "pad": "x".repeat(100)})
            .unwrap();
    }
    let (first, last) = h2.oplog_range().unwrap();
    assert_eq!(last, 51, "the collection's create and 50 inserts");
    assert!(first > 41, "first retained {first}");
    assert_eq!(
        h2.watch(
            WatchScope::All,
            WatchOptions {
                resume_after: Some(format!("01{:016X}00", 1u64)),
                ..WatchOptions::default()
            }
        )
        .unwrap_err()
        .code(),
        286
    );
}

/// A token for an event after the last one (from a store that was reset, e.g. an ephemeral
/// restart, or made up) is refused: accepting it skipped every event up to it.
#[test]
fn a_resume_token_after_the_last_event_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let at = |seq: u64| format!("01{seq:016X}00");
    let watch = |resume_after: Option<String>, start_after: Option<String>| {
        h.watch(
            coll_scope(),
            WatchOptions {
                resume_after,
                start_after,
                ..WatchOptions::default()
            },
        )
    };
    // An empty oplog: only the start point itself (0) is resumable.
    watch(Some(at(0)), None).unwrap();
    let e = watch(Some(at(1)), None).unwrap_err();
    assert!(
        matches!(e, Error::ResumeTokenAhead { seq: 1, last: 0 }),
        "{e}"
    );

    h.insert_many("shop", "orders", (0..3).map(|i| doc! {"_id": i}).collect())
        .unwrap();
    let (_, last) = h.oplog_range().unwrap();
    assert_eq!(last, 4, "the collection's create and three inserts");
    let mut at_last = watch(Some(at(last)), None).unwrap();
    for token in [
        at(last + 1),
        at(last + 3),
        "01FFFFFFFFFFFFFFFF00".to_owned(),
    ] {
        for e in [
            watch(Some(token.clone()), None).unwrap_err(),
            watch(None, Some(token.clone())).unwrap_err(),
        ] {
            assert!(matches!(e, Error::ResumeTokenAhead { last: 4, .. }), "{e}");
            assert_eq!(e.code(), 286);
            assert_eq!(e.code_name(), "ChangeStreamHistoryLost");
            assert_eq!(e.labels(), &["NonResumableChangeStreamError"]);
            assert!(e.is_client_error());
            assert!(
                e.to_string().starts_with(
                    "Resume of change stream was not possible, as the resume point may no longer be in the oplog"
                ),
                "{e}"
            );
        }
    }
    // A stream resumed at the last event sees the next one.
    h.insert_one("shop", "orders", doc! {"_id": 3}).unwrap();
    assert_eq!(ops(&drain(&mut at_last)), ["insert"]);
    let mut again = watch(Some(at(last)), None).unwrap();
    assert_eq!(ops(&drain(&mut again)), ["insert"]);
}

#[test]
fn resume_across_restart_sees_every_later_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::shared(T0);
    let saved = {
        let h = open_with(dir.path(), HistoryConfig::default(), clock.clone());
        let mut s = h.watch(coll_scope(), WatchOptions::default()).unwrap();
        h.insert_many("shop", "orders", (0..3).map(|i| doc! {"_id": i}).collect())
            .unwrap();
        let got = s.try_next_batch(2).unwrap();
        assert_eq!(got.events.len(), 2);
        let saved = s.resume_token();
        h.insert_one("shop", "orders", doc! {"_id": 3}).unwrap();
        h.persist().unwrap();
        saved
    };
    let h = open_with(dir.path(), HistoryConfig::default(), clock);
    h.insert_one("shop", "orders", doc! {"_id": 4}).unwrap();
    let opts = WatchOptions {
        resume_after: Some(saved.get_str("_data").unwrap().to_owned()),
        ..WatchOptions::default()
    };
    let mut s = h.watch(coll_scope(), opts).unwrap();
    let keys: Vec<i32> = drain(&mut s)
        .iter()
        .map(|e| {
            e.get_document("documentKey")
                .unwrap()
                .get_i32("_id")
                .unwrap()
        })
        .collect();
    assert_eq!(keys, vec![2, 3, 4]);
    // Sequence numbers continue after the restart.
    assert_eq!(
        h.oplog_range().unwrap().1,
        6,
        "after the collection's create and 5 inserts"
    );
}

#[test]
fn streams_wake_on_commit_sync_and_async() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let mut s = h.watch(coll_scope(), WatchOptions::default()).unwrap();
    // Empty batch after the timeout carries a high-water token.
    let empty = s.next_batch(10, Duration::from_millis(1)).unwrap();
    assert!(empty.events.is_empty());
    assert!(empty.post_batch_resume_token.get_str("_data").is_ok());
    let writer = {
        let h = h.clone();
        std::thread::spawn(move || h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap())
    };
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(s.next_batch(10, Duration::from_secs(5)).unwrap().events);
        if !got.is_empty() {
            break;
        }
    }
    writer.join().unwrap();
    assert_eq!(got.len(), 1);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = h.watch(coll_scope(), WatchOptions::default()).unwrap();
        let h2 = h.clone();
        let w = tokio::task::spawn_blocking(move || {
            h2.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();
            h2.insert_one("shop", "orders", doc! {"_id": 3}).unwrap();
        });
        let a = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let b = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        w.await.unwrap();
        assert_eq!(a.get_document("documentKey").unwrap(), &doc! {"_id": 2});
        assert_eq!(b.get_document("documentKey").unwrap(), &doc! {"_id": 3});
    });
}

#[test]
fn commit_writes_documents_events_and_metadata_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let mut s = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    let ops_ok = vec![
        WriteOp::Insert {
            db: "shop".into(),
            coll: "orders".into(),
            document: doc! {"_id": 1, "c": "a"},
        },
        WriteOp::Upsert {
            db: "shop".into(),
            coll: "customers".into(),
            filter: doc! {"customerNumber": 7},
            document: doc! {"customerNumber": 7, "n": 1},
        },
        WriteOp::Upsert {
            db: "shop".into(),
            coll: "customers".into(),
            filter: doc! {"customerNumber": 7},
            document: doc! {"customerNumber": 7, "n": 2},
        },
    ];
    let out = h
        .commit(
            ops_ok,
            vec![(b"offset/orders/0".to_vec(), 42u64.to_be_bytes().to_vec())],
        )
        .unwrap();
    assert!(matches!(out[0], WriteOutcome::Inserted(Bson::Int32(1))));
    assert!(matches!(&out[2], WriteOutcome::Updated(r) if r.matched == 1 && r.modified == 1));
    assert_eq!(
        h.meta_get(b"offset/orders/0").unwrap(),
        Some(42u64.to_be_bytes().to_vec())
    );
    let c = h
        .find("shop", "customers", &doc! {}, &Default::default())
        .unwrap();
    assert_eq!(
        c.len(),
        1,
        "the second upsert saw the first in the same batch"
    );
    assert_eq!(c[0].get_i32("n").unwrap(), 2);
    let evs = drain(&mut s);
    assert_eq!(ops(&evs), vec!["insert", "insert", "replace"]);
    // A failing op writes nothing: no document, no event, no metadata.
    let failing = vec![
        WriteOp::Insert {
            db: "shop".into(),
            coll: "orders".into(),
            document: doc! {"_id": 2},
        },
        WriteOp::Insert {
            db: "shop".into(),
            coll: "orders".into(),
            document: doc! {"_id": 1},
        },
    ];
    let e = h
        .commit(
            failing,
            vec![(b"offset/orders/0".to_vec(), 99u64.to_be_bytes().to_vec())],
        )
        .unwrap_err();
    assert_eq!(e.code(), 11000);
    assert_eq!(h.count("shop", "orders", &doc! {"_id": 2}).unwrap(), 0);
    assert_eq!(
        h.meta_get(b"offset/orders/0").unwrap(),
        Some(42u64.to_be_bytes().to_vec())
    );
    assert!(drain(&mut s).is_empty());
    // Metadata key limits: empty and over-long keys are refused before storage.
    assert!(matches!(
        h.commit(vec![], vec![(Vec::new(), vec![1])]).unwrap_err(),
        Error::KeyTooLarge { len: 0, .. }
    ));
    let long = vec![b'k'; streamcache::history::KEY_BYTES_MAX + 1];
    assert!(h.commit(vec![], vec![(long, vec![1])]).is_err());
    let max = vec![b'k'; streamcache::history::KEY_BYTES_MAX];
    h.commit(vec![], vec![(max.clone(), vec![1])]).unwrap();
    assert_eq!(h.meta_get(&max).unwrap(), Some(vec![1]));
    let e = h
        .commit(
            vec![],
            vec![(
                b"v".to_vec(),
                vec![0; streamcache::history::META_VALUE_BYTES_MAX + 1],
            )],
        )
        .unwrap_err();
    assert!(matches!(e, Error::DocumentTooLarge { .. }));
    h.commit(
        vec![],
        vec![(
            b"v".to_vec(),
            vec![0; streamcache::history::META_VALUE_BYTES_MAX],
        )],
    )
    .unwrap();
    let u = WriteOp::Update {
        db: "shop".into(),
        coll: "orders".into(),
        filter: doc! {"_id": 1},
        update: doc! {"$set": {"c": "b"}},
        options: UpdateOptions::default(),
    };
    let d = WriteOp::Delete {
        db: "shop".into(),
        coll: "customers".into(),
        filter: doc! {},
        multi: true,
    };
    let out = h.commit(vec![u, d], vec![]).unwrap();
    assert_eq!(out[1], WriteOutcome::Deleted(1));
}

/// A waiting stream reads past more than a read's worth of entries outside its scope (no
/// commit comes to wake it for the committed entry behind them), at the first and the
/// `OPLOG_READ_BATCH_MAX`-th boundary.
#[tokio::test]
async fn a_waiting_stream_reads_on_past_whole_reads_of_other_collections() {
    for others in [
        streamcache::history::OPLOG_READ_BATCH_MAX - 1,
        streamcache::history::OPLOG_READ_BATCH_MAX,
        2 * streamcache::history::OPLOG_READ_BATCH_MAX + 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let h = open_with(
            dir.path(),
            HistoryConfig::default(),
            ManualClock::shared(T0),
        );
        let mut stream = h.watch(coll_scope(), WatchOptions::default()).unwrap();
        let noise: Vec<Document> = (0..others).map(|i| doc! {"_id": i as i64}).collect();
        h.insert_many("shop", "noise", noise).unwrap();
        h.insert_one("shop", "orders", doc! {"_id": "the one"})
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("after {others} other entries: no event"))
            .unwrap()
            .unwrap();
        assert_eq!(
            event.get_document("documentKey").unwrap(),
            &doc! {"_id": "the one"}
        );
    }
}

/// The `invalidate` that follows a drop, rename or dropDatabase shares that event's sequence:
/// a stream resumed (or started) after the ending event itself still gets the invalidate
/// next and then closes, as MongoDB's does; only `startAfter` the invalidate reads on.
#[test]
fn resuming_after_the_event_that_ended_a_stream_gives_its_invalidate() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let watch = |scope: WatchScope, resume_after: Option<String>, start_after: Option<String>| {
        h.watch(
            scope,
            WatchOptions {
                resume_after,
                start_after,
                ..WatchOptions::default()
            },
        )
        .unwrap()
    };
    let mut coll = h.watch(coll_scope(), WatchOptions::default()).unwrap();
    let mut all = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    h.drop_collection("shop", "orders").unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();

    // A batch that ends on the drop: its post-batch token is the drop's, and a stream resumed
    // from it (a saved `resume_token()`, an SSE `Last-Event-ID`) gets the invalidate.
    let batch = coll.try_next_batch(2).unwrap();
    assert_eq!(ops(&batch.events), ["insert", "drop"]);
    let dropped = token(&batch.events[1]);
    assert_eq!(
        batch.post_batch_resume_token.get_str("_data").unwrap(),
        dropped
    );
    assert_eq!(coll.resume_token().get_str("_data").unwrap(), dropped);
    let rest = drain(&mut coll);
    assert_eq!(ops(&rest), ["invalidate"]);
    let invalidate = rest[0].clone();
    for (resume_after, start_after) in
        [(Some(dropped.clone()), None), (None, Some(dropped.clone()))]
    {
        let mut resumed = watch(coll_scope(), resume_after, start_after);
        assert!(!resumed.is_closed(), "the invalidate is still to come");
        assert_eq!(resumed.resume_token().get_str("_data").unwrap(), dropped);
        assert_eq!(drain(&mut resumed), std::slice::from_ref(&invalidate));
        assert!(resumed.is_closed());
        assert_eq!(
            resumed.resume_token(),
            invalidate.get_document("_id").unwrap().clone()
        );
        assert_eq!(drain(&mut resumed), Vec::<Document>::new());
    }
    // startAfter the invalidate reads on past it.
    let mut after = watch(coll_scope(), None, Some(token(&invalidate)));
    assert_eq!(ops(&drain(&mut after)), ["insert"]);
    // Streams the drop does not end read on after it.
    let all_events = drain(&mut all);
    assert_eq!(ops(&all_events), ["insert", "drop", "insert"]);
    for scope in [WatchScope::All, WatchScope::Database("shop".into())] {
        let mut s = watch(scope, Some(dropped.clone()), None);
        assert_eq!(drain(&mut s), all_events[2..].to_vec());
        assert!(!s.is_closed());
    }

    // A rename ends the renamed collection's stream the same way.
    h.rename_collection("shop", "orders", "shop", "archive")
        .unwrap();
    let evs = drain(&mut after);
    assert_eq!(ops(&evs), ["rename", "invalidate"]);
    let mut resumed = watch(coll_scope(), Some(token(&evs[0])), None);
    assert_eq!(drain(&mut resumed), [evs[1].clone()]);
    assert!(resumed.is_closed());

    // dropDatabase ends the database's streams and its collections'.
    h.insert_one("shop", "orders", doc! {"_id": 3}).unwrap();
    let mut db = watch(WatchScope::Database("shop".into()), None, None);
    // A collection that does not exist: dropDatabase, not a drop of it, ends its stream.
    let ghost = || WatchScope::Collection {
        db: "shop".into(),
        coll: "ghost".into(),
    };
    let mut of_ghost = watch(ghost(), None, None);
    h.drop_database("shop").unwrap();
    for (scope, stream) in [
        (WatchScope::Database("shop".into()), &mut db),
        (ghost(), &mut of_ghost),
    ] {
        let evs = drain(stream);
        let n = evs.len();
        assert_eq!(
            ops(&evs[n - 2..]),
            ["dropDatabase", "invalidate"],
            "{scope:?}"
        );
        let mut resumed = watch(scope, Some(token(&evs[n - 2])), None);
        assert_eq!(drain(&mut resumed), [evs[n - 1].clone()]);
        assert!(resumed.is_closed());
    }
}

/// `startAtOperationTime` at or before the cluster time of an event retention removed needs
/// that event: error 286 like a `resumeAfter` of it, whether the oplog still holds later
/// events or retention emptied it, and across a restart. A later time reads on.
#[test]
fn start_at_operation_time_before_retention_is_history_lost() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::shared(T0);
    let config = || HistoryConfig {
        oplog_age_ms_max: 60_000,
        ..HistoryConfig::default()
    };
    let at = |ts: bson::Timestamp| WatchOptions {
        start_at_operation_time: Some(ts),
        ..WatchOptions::default()
    };
    let after = |ts: bson::Timestamp| bson::Timestamp {
        time: ts.time,
        increment: ts.increment + 1,
    };
    let cluster_time = |e: &Document| e.get_timestamp("clusterTime").unwrap();
    let assert_lost = |h: &History, ts: bson::Timestamp| {
        let e = h.watch(WatchScope::All, at(ts)).unwrap_err();
        assert!(matches!(e, Error::ChangeStreamHistoryLost), "{ts:?}: {e}");
        assert_eq!(e.code(), 286);
        assert_eq!(e.labels(), &["NonResumableChangeStreamError"]);
    };
    let h = open_with(dir.path(), config(), clock.clone());
    let mut s = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 1}).unwrap();
    clock.advance(Duration::from_secs(1));
    h.insert_one("shop", "orders", doc! {"_id": 2}).unwrap();
    let evs = drain(&mut s);
    let (t1, t2) = (cluster_time(&evs[0]), cluster_time(&evs[1]));

    // Retention empties the oplog: the collection's create and the two inserts.
    clock.advance(Duration::from_secs(61));
    assert_eq!(h.trim_oplog().unwrap(), 3);
    let zero = bson::Timestamp {
        time: 0,
        increment: 0,
    };
    for ts in [zero, t1, after(t1), t2] {
        assert_lost(&h, ts);
    }
    // After the last event nothing is lost: the stream starts at the next commit.
    let mut next = h.watch(WatchScope::All, at(after(t2))).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": 3}).unwrap();
    let evs = drain(&mut next);
    assert_eq!(ops(&evs), ["insert"]);
    let t3 = cluster_time(&evs[0]);
    drop((next, s, h));

    // The store remembers what retention removed across a restart.
    let h = open_with(dir.path(), config(), clock.clone());
    assert_lost(&h, t2);
    let mut s = h.watch(WatchScope::All, at(after(t2))).unwrap();
    assert_eq!(ops(&drain(&mut s)), ["insert"]);

    // Retention removes the oldest events and keeps later ones: a time after the newest
    // removed event starts at the first kept one.
    clock.advance(Duration::from_secs(61));
    h.insert_one("shop", "orders", doc! {"_id": 4}).unwrap();
    let (first, last) = h.oplog_range().unwrap();
    assert_eq!((first, last), (5, 5), "the insert's commit trimmed event 4");
    assert_lost(&h, t3);
    let mut s = h.watch(WatchScope::All, at(after(t3))).unwrap();
    let evs = drain(&mut s);
    assert_eq!(ops(&evs), ["insert"]);
    assert_eq!(
        evs[0].get_document("documentKey").unwrap(),
        &doc! {"_id": 4}
    );
}

/// A collection created while its database is dropped is either dropped with it (its `drop`
/// comes before the `dropDatabase`) or created after it: the drop lists the collections under
/// the writer lock. Replaying the events, no collection is alive at a `dropDatabase`.
#[test]
fn drop_database_drops_every_collection_alive_when_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let h = Arc::new(open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    ));
    let mut all = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    let creator = {
        let h = h.clone();
        std::thread::spawn(move || {
            for i in 0..3_000 {
                h.insert_one("shop", &format!("c{i}"), doc! {"_id": i})
                    .unwrap();
            }
        })
    };
    while !creator.is_finished() {
        h.drop_database("shop").unwrap();
    }
    creator.join().unwrap();
    let mut alive = std::collections::HashSet::new();
    let mut drops = 0;
    loop {
        let evs = drain(&mut all);
        if evs.is_empty() {
            break;
        }
        for ev in evs {
            let coll = ev
                .get_document("ns")
                .ok()
                .and_then(|ns| ns.get_str("coll").ok())
                .map(str::to_owned);
            match (ev.get_str("operationType").unwrap(), coll) {
                ("insert", Some(c)) => {
                    alive.insert(c);
                }
                ("drop", Some(c)) => {
                    alive.remove(&c);
                }
                ("dropDatabase", _) => {
                    drops += 1;
                    assert!(alive.is_empty(), "alive at a dropDatabase: {alive:?}");
                }
                _ => {}
            }
        }
    }
    assert!(drops > 0);
}

/// Retention's per-pass bound stops only between commits: a commit larger than it (a
/// collection's `create` and its inserts, one cluster time) goes in one pass, and the next
/// commit waits for the next pass.
#[test]
fn a_retention_pass_never_splits_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, h) = open_aging(dir.path());
    let n = streamcache::history::OPLOG_TRIM_BATCH_MAX + 10;
    let big: Vec<Document> = (0..n).map(|i| doc! {"_id": i as i64}).collect();
    h.insert_many("shop", "orders", big).unwrap();
    h.insert_one("shop", "orders", doc! {"_id": -1}).unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(h.trim_oplog().unwrap(), n as u64 + 1);
    assert_eq!(h.trim_oplog().unwrap(), 1);
    assert_eq!(h.trim_oplog().unwrap(), 0);
}

/// A database that has had no collection since the store opened does not exist: dropping it
/// writes no event (MongoDB's drop answers NamespaceNotFound, reported as success). One whose
/// collections were all dropped stays open, as MongoDB keeps it until a restart, so its drop
/// is logged, once; after a reopen it is gone unless it holds a collection.
#[test]
fn dropping_a_database_that_does_not_exist_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let mut all = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    h.drop_database("never").unwrap();
    h.insert_one("emptied", "c", doc! {"_id": 1}).unwrap();
    h.drop_collection("emptied", "c").unwrap();
    h.drop_database("emptied").unwrap();
    h.drop_database("emptied").unwrap();
    h.insert_one("kept", "c", doc! {"_id": 1}).unwrap();
    h.insert_one("emptied", "c", doc! {"_id": 1}).unwrap();
    h.drop_collection("emptied", "c").unwrap();
    assert_eq!(
        ops(&drain(&mut all)),
        ["insert", "drop", "dropDatabase", "insert", "insert", "drop"]
    );
    drop(all);
    drop(h);
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    let mut all = h.watch(WatchScope::All, WatchOptions::default()).unwrap();
    h.drop_database("emptied").unwrap();
    h.drop_database("kept").unwrap();
    assert_eq!(ops(&drain(&mut all)), ["drop", "dropDatabase"]);
}

/// A store holding `start` in `shop.orders`, and a stream on that collection opened after it.
fn watched(start: Document) -> (tempfile::TempDir, History, ChangeStream) {
    let dir = tempfile::tempdir().unwrap();
    let h = open_with(
        dir.path(),
        HistoryConfig::default(),
        ManualClock::shared(T0),
    );
    h.insert_one("shop", "orders", start).unwrap();
    let s = h.watch(coll_scope(), WatchOptions::default()).unwrap();
    (dir, h, s)
}

/// Applies `update` to the document whose `_id` is 1.
fn update_one(h: &History, update: &Document) {
    h.update(
        "shop",
        "orders",
        &doc! {"_id": 1},
        update,
        UpdateOptions::default(),
    )
    .unwrap();
}

/// The writes of the `$[]`/`$[<id>]` operators of one update to one array are logged as
/// MongoDB 7's one array node for them logs: when their filters (read on the elements as they
/// were) admit more than one element, the whole array if more than one changed, else the one
/// changed element; each element's writes as they are when one element is admitted.
#[test]
fn array_updates_of_one_array_are_described_together() {
    let table: Vec<(Document, Document, Vec<Document>, Document)> = vec![
        (
            doc! {"a": [{"x": 0}, {"x": 1}]},
            doc! {"$set": {"a.$[i].y": 1, "a.$[j].y": 2}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 1}],
            doc! {"a": [{"x": 0, "y": 1}, {"x": 1, "y": 2}]},
        ),
        (
            doc! {"a": [{"x": 0}, {"x": 1}]},
            doc! {"$set": {"a.$[i].y": 1, "a.$[j].x": 1}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 1}],
            doc! {"a.0": {"x": 0, "y": 1}},
        ),
        (
            doc! {"a": [{"x": 0}, {"x": 1}]},
            doc! {"$set": {"a.$[i].x": 5, "a.$[j].y": 1}},
            vec![doc! {"i.x": 0}, doc! {"j.x": 0}],
            doc! {"a.0.x": 5, "a.0.y": 1},
        ),
    ];
    for (start, update, filters, updated) in table {
        let mut with_id = doc! {"_id": 1};
        with_id.extend(start);
        let (_dir, h, mut s) = watched(with_id);
        let options = UpdateOptions {
            array_filters: Some(filters),
            ..UpdateOptions::default()
        };
        h.update("shop", "orders", &doc! {"_id": 1}, &update, options)
            .unwrap();
        let evs = drain(&mut s);
        let description = evs[0].get_document("updateDescription").unwrap();
        assert_eq!(
            description,
            &doc! {"updatedFields": updated, "removedFields": [], "truncatedArrays": []},
            "{update}"
        );
    }
}

/// A store holding `start`, `update` applied to it.
fn updated_once(start: Document, update: &Document) -> (tempfile::TempDir, History) {
    let (dir, h, _) = watched(start);
    update_one(&h, update);
    (dir, h)
}

/// An operator update's `updateDescription` is what MongoDB's update nodes log to the `$v: 2`
/// oplog entry it is read from: the value each operator wrote, whole, at the operator's path
/// (where the write created parents, at the first part the document lacked); unset fields
/// removed; only a `$push` that appends to a non-empty array names each new element. Arrays
/// an operator shrinks (`$pop`, `$pull`, `$pullAll`, `$push` with `$slice`) are updated whole,
/// never truncated. Fields an update creates are added in path order, as MongoDB applies
/// its operators.
#[test]
fn operator_updates_describe_what_each_operator_wrote() {
    let table: Vec<(Document, Document, Document, Vec<&str>)> = vec![
        (
            doc! {"l": [1, 2, 3]},
            doc! {"$pop": {"l": 1}},
            doc! {"l": [1, 2]},
            vec![],
        ),
        (
            doc! {"l": [1, 2, 3]},
            doc! {"$pop": {"l": -1}},
            doc! {"l": [2, 3]},
            vec![],
        ),
        (
            doc! {"l": [1, 2, 3, 2]},
            doc! {"$pull": {"l": 2}},
            doc! {"l": [1, 3]},
            vec![],
        ),
        (
            doc! {"l": [1, 2, 3]},
            doc! {"$pullAll": {"l": [3]}},
            doc! {"l": [1, 2]},
            vec![],
        ),
        (
            doc! {"l": [1, 2, 3]},
            doc! {"$push": {"l": {"$each": [4], "$slice": 2}}},
            doc! {"l": [1, 2]},
            vec![],
        ),
        (
            doc! {"l": [3, 1]},
            doc! {"$push": {"l": {"$each": [2], "$sort": 1}}},
            doc! {"l": [1, 2, 3]},
            vec![],
        ),
        (
            doc! {"l": [1]},
            doc! {"$push": {"l": {"$each": [2, 3], "$slice": 5}}},
            doc! {"l.1": 2, "l.2": 3},
            vec![],
        ),
        (
            doc! {"l": [1, 2]},
            doc! {"$push": {"l": {"$each": [0], "$position": 0}}},
            doc! {"l": [0, 1, 2]},
            vec![],
        ),
        (
            doc! {"l": []},
            doc! {"$push": {"l": 1}},
            doc! {"l": [1]},
            vec![],
        ),
        (
            doc! {"l": [1]},
            doc! {"$addToSet": {"l": 2}},
            doc! {"l": [1, 2]},
            vec![],
        ),
        (
            doc! {"a": {"x": 1, "y": 2}},
            doc! {"$set": {"a": {"x": 1, "y": 3}}},
            doc! {"a": {"x": 1, "y": 3}},
            vec![],
        ),
        (
            doc! {"a": {"x": 1}},
            doc! {"$set": {"a.b.c": 1, "a.b.d": 2, "a.x": 1}},
            doc! {"a.b": {"c": 1, "d": 2}},
            vec![],
        ),
        (
            doc! {"l": [1]},
            doc! {"$set": {"l.3": 9}},
            doc! {"l.3": 9},
            vec![],
        ),
        (
            doc! {"l": [1, 2], "g": 1},
            doc! {"$unset": {"l.0": "", "g": ""}},
            doc! {"l.0": null},
            vec!["g"],
        ),
        (
            doc! {"l": [{"q": 1}, {"q": 2}, {"q": 3}]},
            doc! {"$inc": {"l.$[].q": 1}},
            doc! {"l": [{"q": 2}, {"q": 3}, {"q": 4}]},
            vec![],
        ),
        (
            doc! {"l": [{"q": 1}, {"q": 2}]},
            doc! {"$max": {"l.$[].q": 2}},
            doc! {"l.0": {"q": 2}},
            vec![],
        ),
        (
            doc! {"l": [{"q": 1}]},
            doc! {"$inc": {"l.$[].q": 1}},
            doc! {"l.0.q": 2},
            vec![],
        ),
        // Nested array updates follow MongoDB's rule at each array: an array whose update
        // reaches more than one element is logged whole when more than one changed, else as the
        // one changed element; one that reaches a single element leaves it to the level below.
        (
            doc! {"l": [[1, 2]]},
            doc! {"$set": {"l.$[].$[]": 9}},
            doc! {"l.0": [9, 9]},
            vec![],
        ),
        (
            doc! {"l": [{"b": [1, 2]}]},
            doc! {"$set": {"l.$[].b.$[]": 9}},
            doc! {"l.0.b": [9, 9]},
            vec![],
        ),
        (
            doc! {"l": [{"b": [1, 9]}]},
            doc! {"$set": {"l.$[].b.$[]": 9}},
            doc! {"l.0.b.0": 9},
            vec![],
        ),
        (
            doc! {"l": [[1, 2], [3]]},
            doc! {"$set": {"l.$[].$[]": 9}},
            doc! {"l": [[9, 9], [9]]},
            vec![],
        ),
        (
            doc! {"l": [[9, 9], [3]]},
            doc! {"$set": {"l.$[].$[]": 9}},
            doc! {"l.1": [9]},
            vec![],
        ),
        (
            doc! {"l": [1, 2]},
            doc! {"$set": {"l.01": 9}},
            doc! {"l.1": 9},
            vec![],
        ),
        (
            doc! {"k": 1},
            doc! {"$rename": {"k": "r"}, "$set": {"b": 1, "a": 1}},
            doc! {"a": 1, "b": 1, "r": 1},
            vec!["k"],
        ),
    ];
    for (start, update, updated, removed) in table {
        let mut with_id = doc! {"_id": 1};
        with_id.extend(start);
        let (_dir, h, mut s) = watched(with_id);
        update_one(&h, &update);
        let evs = drain(&mut s);
        assert_eq!(ops(&evs), vec!["update"], "{update}");
        let description = evs[0].get_document("updateDescription").unwrap();
        let removed: Vec<Bson> = removed.into_iter().map(Bson::from).collect();
        assert_eq!(
            description,
            &doc! {"updatedFields": updated, "removedFields": removed, "truncatedArrays": []},
            "{update}"
        );
    }
    // `updatedFields` and `removedFields` follow MongoDB's `$v: 2` diff, as its change streams
    // read it: at each level of the document the fields that existed, then those created, each
    // in the order the update wrote them (by path), then what changed below each sub-document
    // in the order it was first written; an array's elements by position.
    for (start, update, updated, removed) in [
        (
            doc! {"a": 0, "c": 0},
            doc! {"$set": {"b": 1, "a": 1}, "$inc": {"c": 1}},
            vec!["a", "c", "b"],
            vec![],
        ),
        (
            doc! {"a": {"y": 0}, "b": 0},
            doc! {"$set": {"a.y": 1, "b": 2}},
            vec!["b", "a.y"],
            vec![],
        ),
        (
            doc! {"x": {"y": 0, "z": 0}, "w": {"q": 0}, "v": 0},
            doc! {"$set": {"x.z": 1, "x.n": 1, "w.q": 1}, "$unset": {"x.y": "", "v": ""}},
            vec!["w.q", "x.z", "x.n"],
            vec!["v", "x.y"],
        ),
        (
            doc! {"l": [{"v": 0}, {"v": 0}], "m": 0},
            doc! {"$set": {"l.1.v": 1, "l.0.w": 1, "m": 1, "k": 1}},
            vec!["m", "k", "l.0.w", "l.1.v"],
            vec![],
        ),
        // A `$rename` writes its target, then removes its source.
        (
            doc! {"x": {"a": 0}, "y": {"c": 0}},
            doc! {"$rename": {"x.a": "y.b"}, "$unset": {"y.c": ""}},
            vec!["y.b"],
            vec!["y.c", "x.a"],
        ),
        (
            doc! {"x": {"k": 0}, "y": {"a": 0, "c": 0}},
            doc! {"$rename": {"y.a": "x.b"}, "$set": {"y.c": 1}},
            vec!["x.b", "y.c"],
            vec!["y.a"],
        ),
    ] {
        let mut with_id = doc! {"_id": 1};
        with_id.extend(start);
        let (_dir, h, mut s) = watched(with_id);
        update_one(&h, &update);
        let evs = drain(&mut s);
        let description = evs[0].get_document("updateDescription").unwrap();
        let fields = description.get_document("updatedFields").unwrap();
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        let gone = description.get_array("removedFields").unwrap();
        let gone: Vec<&str> = gone.iter().filter_map(Bson::as_str).collect();
        assert_eq!((keys, gone), (updated, removed), "{update}");
    }
    // The fields an update creates are added in path order, whatever the order written.
    let (_dir, h) = updated_once(
        doc! {"_id": 1},
        &doc! {"$set": {"b": 1, "a.y": 2, "a.x": 3, "10": 4, "9": 5}},
    );
    let stored = h
        .find_one("shop", "orders", &doc! {"_id": 1}, None)
        .unwrap()
        .unwrap();
    let keys: Vec<&String> = stored.keys().collect();
    assert_eq!(keys, ["_id", "9", "10", "a", "b"]);
    assert_eq!(stored.get_document("a").unwrap(), &doc! {"x": 3, "y": 2});
}
