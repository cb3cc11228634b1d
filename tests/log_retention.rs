//! Capability: roll by age, retention by age and by bytes (whole sealed segments), the log start
//! offset advancing, and consumers behind it following `auto.offset.reset`.
//!
//! Method: a manual clock drives `segment.ms` and `retention.ms`; `Log::enforce_retention` runs
//! the same sweep the background thread runs; no sleeping.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod log_common;

use std::time::Duration;

use log_common::{TestLog, value, values};
use streamcache::log::{
    ConsumerSettings, Error, LogConfig, OffsetReset, Record, Routing, Subscription,
};

fn cfg(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn segments_roll_by_age_and_expire_by_age() {
    let t = TestLog::new(LogConfig::default());
    t.log
        .create_topic(
            "t",
            Some(1),
            &cfg(&[("segment.ms", "1000"), ("retention.ms", "5000")]),
            false,
        )
        .unwrap();
    let p = t.log.partition("t", 0).unwrap();
    for i in 0..3 {
        t.log
            .append("t", Routing::Partition(0), vec![value(&format!("old-{i}"))])
            .unwrap();
    }
    assert_eq!(p.segment_count().unwrap(), 1, "no roll before segment.ms");
    t.clock.advance(Duration::from_millis(1000));
    t.log
        .append("t", Routing::Partition(0), vec![value("new")])
        .unwrap();
    assert_eq!(p.segment_count().unwrap(), 2, "rolled at segment.ms");
    // Not yet past retention.ms measured from the old segment's newest record.
    t.clock.advance(Duration::from_millis(4000));
    assert_eq!(t.log.enforce_retention().unwrap(), 0);
    t.clock.advance(Duration::from_millis(1));
    assert_eq!(t.log.enforce_retention().unwrap(), 1);
    assert_eq!(
        t.log.earliest_offset("t", 0).unwrap(),
        3,
        "log start advanced to the next segment"
    );
    assert_eq!(values(&t.log.read("t", 0, 3, 1 << 20).unwrap()), ["new"]);
    assert!(matches!(
        t.log.read("t", 0, 0, 1 << 20),
        Err(Error::OffsetOutOfRange { earliest: 3, .. })
    ));
    // The active segment is never deleted, however old.
    t.clock.advance(Duration::from_secs(3600));
    assert_eq!(t.log.enforce_retention().unwrap(), 0);
    let t = t.reopen();
    assert_eq!(
        t.log.earliest_offset("t", 0).unwrap(),
        3,
        "log start survives a restart"
    );
}

#[test]
fn retention_bytes_deletes_oldest_segments_beyond_the_limit() {
    let t = TestLog::new(LogConfig::default());
    t.log
        .create_topic(
            "t",
            Some(1),
            &cfg(&[("segment.bytes", "1024"), ("retention.bytes", "3000")]),
            false,
        )
        .unwrap();
    for i in 0..100 {
        t.log
            .append("t", Routing::Partition(0), vec![value(&format!("{i:060}"))])
            .unwrap();
    }
    let p = t.log.partition("t", 0).unwrap();
    let before = p.segment_count().unwrap();
    let deleted = t.log.enforce_retention().unwrap();
    assert!(deleted > 0 && deleted < before);
    assert!(p.size_bytes().unwrap() >= 3000 - 1100 && p.size_bytes().unwrap() < 3000 + 1100);
    let start = t.log.earliest_offset("t", 0).unwrap();
    assert!(start > 0);
    let read = t.log.read("t", 0, start, 1 << 20).unwrap();
    assert_eq!(read.first().unwrap().offset, start);
    assert_eq!(read.last().unwrap().offset, 99);
}

#[test]
fn infinite_retention_keeps_everything() {
    let t = TestLog::new(LogConfig::default());
    t.log
        .create_topic(
            "t",
            Some(1),
            &cfg(&[("segment.bytes", "1024"), ("retention.ms", "-1")]),
            false,
        )
        .unwrap();
    for i in 0..30 {
        let r = Record {
            timestamp_ms: Some(0),
            ..value(&format!("{i:060}"))
        };
        t.log.append("t", Routing::Partition(0), vec![r]).unwrap();
    }
    t.clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(t.log.enforce_retention().unwrap(), 0);
    assert_eq!(t.log.earliest_offset("t", 0).unwrap(), 0);
}

#[test]
fn a_consumer_behind_the_log_start_follows_auto_offset_reset() {
    let t = TestLog::new(LogConfig::default());
    t.log
        .create_topic(
            "t",
            Some(1),
            &cfg(&[("segment.ms", "10"), ("retention.ms", "100")]),
            false,
        )
        .unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("a"), value("b")])
        .unwrap();
    let tp = streamcache::log::TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    let committed = streamcache::log::CommittedOffset {
        offset: 1,
        metadata: String::new(),
    };
    for group in ["g-earliest", "g-latest", "g-none"] {
        t.log
            .commit_offsets(group, &[(tp.clone(), committed.clone())])
            .unwrap();
    }
    t.clock.advance(Duration::from_millis(10));
    t.log
        .append("t", Routing::Partition(0), vec![value("c")])
        .unwrap();
    t.clock.advance(Duration::from_millis(200));
    t.log
        .append("t", Routing::Partition(0), vec![value("d")])
        .unwrap();
    assert!(t.log.enforce_retention().unwrap() >= 1);
    assert_eq!(
        t.log.earliest_offset("t", 0).unwrap(),
        3,
        "both sealed segments expired"
    );
    let settings = |reset| ConsumerSettings {
        format: "binary".into(),
        offset_reset: reset,
        auto_commit: false,
        request_timeout_ms: 1000,
    };
    let make = |group: &str, reset| {
        let id = t
            .log
            .create_consumer(group, Some("c"), settings(reset))
            .unwrap();
        t.log
            .subscribe_consumer(group, &id, Subscription::Topics(vec!["t".into()]))
            .unwrap();
        id
    };
    let id = make("g-earliest", OffsetReset::Earliest);
    let got: Vec<_> = t.log.poll_consumer("g-earliest", &id, 1 << 20).unwrap();
    assert_eq!(
        got.iter().map(|r| r.record.offset).collect::<Vec<_>>(),
        vec![3]
    );
    let id = make("g-latest", OffsetReset::Latest);
    assert!(
        t.log
            .poll_consumer("g-latest", &id, 1 << 20)
            .unwrap()
            .is_empty()
    );
    let id = make("g-none", OffsetReset::None);
    assert!(matches!(
        t.log.poll_consumer("g-none", &id, 1 << 20),
        Err(Error::NoResetPolicy { offset: 1, .. })
    ));
}
