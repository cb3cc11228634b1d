//! Capability: the log's count and size limits at max and max + 1 — `TOPICS_MAX` (topics one
//! log holds) and `READ_BYTES_MAX` (the ceiling a read's `max_bytes` is clamped to).
//!
//! Method: drive the public `Log` API on a temporary directory with a manual clock; fill a
//! partition with batches of exactly 1 MiB so a read's batch count shows the budget it ran
//! with.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on setup errors"
)]

mod log_common;

use log_common::TestLog;
use streamcache::log::{
    Error, FlushPolicy, LogConfig, READ_BYTES_MAX, Record, Routing, TOPICS_MAX,
};

/// A log that leaves fsync to the OS (nothing here survives a crash).
fn unsynced_log() -> TestLog {
    TestLog::new(LogConfig {
        flush_policy: FlushPolicy::Never,
        ..LogConfig::default()
    })
}

#[test]
fn topics_max_accepts_the_last_topic_and_refuses_one_more() {
    let t = unsynced_log();
    for i in 0..TOPICS_MAX {
        t.log
            .create_topic(&format!("t{i}"), Some(1), &[], false)
            .unwrap();
    }
    assert_eq!(t.log.topics().unwrap().len(), TOPICS_MAX);
    for validate_only in [true, false] {
        match t.log.create_topic("one-more", Some(1), &[], validate_only) {
            Err(Error::TooManyTopics { len, max }) => {
                assert_eq!((len, max), (TOPICS_MAX + 1, TOPICS_MAX));
            }
            other => panic!("validate_only {validate_only}: {other:?}"),
        }
    }
    // Deleting one frees its slot.
    t.log.delete_topic("t0").unwrap();
    t.log.create_topic("one-more", Some(1), &[], false).unwrap();
}

/// Size of every batch appended by [`read_bytes_max_clamps_a_larger_request_to_the_max`]: a
/// divisor of [`READ_BYTES_MAX`], so a budget of exactly the max ends on a batch boundary and
/// one byte more needs one more batch.
const BATCH_BYTES: usize = 1 << 20;

#[test]
fn read_bytes_max_clamps_a_larger_request_to_the_max() {
    assert_eq!(READ_BYTES_MAX % BATCH_BYTES, 0);
    let t = unsynced_log();
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    let record = |len: usize| Record {
        value: Some(vec![7u8; len].into()),
        ..Record::default()
    };
    // A batch of one record carries a fixed overhead (header and record framing) for values
    // of about this size: measure it, then size the value so the batch is exactly 1 MiB.
    t.log
        .append("t", Routing::Partition(0), vec![record(BATCH_BYTES / 2)])
        .unwrap();
    let probe = t.log.read_batches("t", 0, 0, 1).unwrap();
    let overhead = probe[0].len() - BATCH_BYTES / 2;
    let value_len = BATCH_BYTES - overhead;
    let batches_at_max = READ_BYTES_MAX / BATCH_BYTES;
    // Two batches beyond what a max read returns, so an unclamped budget would get more.
    for _ in 0..batches_at_max + 2 {
        t.log
            .append("t", Routing::Partition(0), vec![record(value_len)])
            .unwrap();
    }
    let from = 1; // after the probe
    let sizes = |max_bytes: usize| -> Vec<usize> {
        t.log
            .read_batches("t", 0, from, max_bytes)
            .unwrap()
            .iter()
            .map(bytes::Bytes::len)
            .collect()
    };
    // Below the ceiling the budget is honoured: one byte past a boundary takes one more batch.
    assert_eq!(sizes(BATCH_BYTES).len(), 1);
    assert_eq!(sizes(BATCH_BYTES + 1).len(), 2);
    // At max: exactly the max's worth of 1 MiB batches.
    let at_max = sizes(READ_BYTES_MAX);
    assert_eq!(at_max.len(), batches_at_max);
    assert!(at_max.iter().all(|&len| len == BATCH_BYTES));
    // At max + 1 (and far beyond) the request is served as max: no extra batch.
    assert_eq!(sizes(READ_BYTES_MAX + 1), at_max);
    assert_eq!(sizes(usize::MAX), at_max);
    // The record and batch reads clamp the same way.
    for max_bytes in [READ_BYTES_MAX, READ_BYTES_MAX + 1] {
        let records = t.log.read("t", 0, from, max_bytes).unwrap();
        assert_eq!(records.len(), batches_at_max, "read, max_bytes {max_bytes}");
        let fetched = t.log.fetch("t", 0, from, max_bytes).unwrap();
        assert_eq!(
            fetched.len(),
            batches_at_max,
            "fetch, max_bytes {max_bytes}"
        );
    }
}
