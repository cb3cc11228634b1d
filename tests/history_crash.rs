//! Capability: crash consistency of history writes — a document, its index entries and its
//! change event are all present or all absent after the process is killed mid-write, and
//! every acknowledged write survives.
//!
//! Method: start the real binary as a child (`--data-dir D --http 127.0.0.1:0 --resp
//! 127.0.0.1:0`), read its ready line, create a unique index, then run a loop of `insertMany`
//! batches of 10 over HTTP and SIGKILL the child while requests are in flight. Reopen the
//! store directly and compare three views: a collection scan, an index scan (with its key
//! count from `explain`) and the change feed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::doc;
use serde_json::json;
use streamcache::clock::ManualClock;
use streamcache::history::{FindOptions, History, HistoryConfig, WatchOptions, WatchScope};

/// An integer `_id` whichever width JSON gave it.
fn int(v: &bson::Bson) -> i64 {
    v.as_i64().or_else(|| v.as_i32().map(i64::from)).unwrap()
}

const BATCH: i64 = 10;

#[test]
fn kill_during_write_loop_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamcache"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--resp",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .expect("ready line names http")
        .to_owned();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acked: Arc<std::sync::Mutex<BTreeSet<i64>>> = Arc::default();
    let acked_count = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(tokio::sync::Notify::new());
    rt.block_on(async {
        let client = reqwest::Client::new();
        let action = |name: &str| format!("{http}/mongo/action/{name}");
        let r = client
            .post(action("createIndex"))
            .json(&json!({"dataSource": "x", "database": "shop", "collection": "orders", "keys": {"k": 1}, "options": {"unique": true}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Two concurrent writers so a kill lands with requests in flight.
        let mut writers = Vec::new();
        for w in 0..2i64 {
            let client = client.clone();
            let url = action("insertMany");
            let acked = acked.clone();
            let count = acked_count.clone();
            let progress = progress.clone();
            writers.push(tokio::spawn(async move {
                for b in 0.. {
                    let first = (b * 2 + w) * BATCH;
                    let docs: Vec<_> = (first..first + BATCH).map(|i| json!({"_id": i, "k": i, "pad": "x".repeat(200)})).collect();
                    let body = json!({"dataSource": "x", "database": "shop", "collection": "orders", "documents": docs});
                    match client.post(&url).json(&body).send().await {
                        Ok(r) if r.status() == 200 => {
                            acked.lock().unwrap().extend(first..first + BATCH);
                            count.fetch_add(1, Ordering::SeqCst);
                            progress.notify_one();
                        }
                        _ => return,
                    }
                }
            }));
        }
        // Kill once a few hundred batches are acknowledged (bounded wait on a condition).
        let deadline = tokio::time::timeout(Duration::from_secs(60), async {
            while acked_count.load(Ordering::SeqCst) < 300 {
                progress.notified().await;
            }
        });
        deadline.await.expect("300 batches acknowledged within 60 s");
        child.kill().unwrap();
        child.wait().unwrap();
        for w in writers {
            let _ = w.await;
        }
    });

    let h = History::open(
        &dir.path().join("history"),
        HistoryConfig::default(),
        ManualClock::shared(0),
    )
    .unwrap();
    let scanned: BTreeSet<i64> = h
        .find(
            "shop",
            "orders",
            &doc! {"pad": {"$exists": true}},
            &FindOptions::default(),
        )
        .unwrap()
        .iter()
        .map(|d| int(d.get("_id").unwrap()))
        .collect();
    let ix_filter = doc! {"k": {"$gte": 0}};
    let via_index: BTreeSet<i64> = h
        .find("shop", "orders", &ix_filter, &FindOptions::default())
        .unwrap()
        .iter()
        .map(|d| int(d.get("_id").unwrap()))
        .collect();
    let explain = h
        .explain("shop", "orders", &ix_filter, &FindOptions::default())
        .unwrap();
    let stats = explain.get_document("executionStats").unwrap();
    assert_eq!(
        explain
            .get_document("queryPlanner")
            .unwrap()
            .get_document("winningPlan")
            .unwrap()
            .get_str("stage")
            .unwrap(),
        "FETCH"
    );
    let keys = stats.get_i64("totalKeysExamined").unwrap();
    let mut s = h
        .watch(
            WatchScope::All,
            WatchOptions {
                start_at_operation_time: Some(bson::Timestamp {
                    time: 0,
                    increment: 0,
                }),
                ..WatchOptions::default()
            },
        )
        .unwrap();
    let mut events = BTreeSet::new();
    loop {
        let batch = s.try_next_batch(10_000).unwrap();
        if batch.events.is_empty() {
            break;
        }
        for e in batch.events {
            if e.get_str("operationType").unwrap() == "insert" {
                events.insert(int(e
                    .get_document("documentKey")
                    .unwrap()
                    .get("_id")
                    .unwrap()));
            }
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3000, "acked {}", acked.len());
    assert!(
        acked.is_subset(&scanned),
        "every acknowledged write survives the kill"
    );
    assert_eq!(scanned, via_index, "documents and index agree");
    assert_eq!(
        keys,
        i64::try_from(scanned.len()).unwrap(),
        "no orphan index entries"
    );
    assert_eq!(scanned, events, "documents and change events agree");
    // Batches are atomic: each batch of 10 is wholly present or wholly absent.
    for id in &scanned {
        let first = id - id % BATCH;
        assert!(
            (first..first + BATCH).all(|i| scanned.contains(&i)),
            "batch at {first} is torn"
        );
    }
}
