//! Helpers shared by the log and Kafka API tests: opening a log on a temporary directory with
//! a manual clock, and building records.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use std::sync::Arc;

use streamcache::clock::ManualClock;
use streamcache::log::{Log, LogConfig, Record};

/// Wall-clock start of every manual clock (2026-01-01T00:00:00Z).
pub(crate) const START_MS: u64 = 1_767_225_600_000;

/// A log in a fresh temporary directory with a manual clock.
pub(crate) struct TestLog {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) log: Log,
}

impl TestLog {
    pub(crate) fn new(config: LogConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::shared(START_MS);
        let log = Log::open(&dir.path().join("log"), config, clock.clone()).unwrap();
        Self { dir, clock, log }
    }

    /// Closes and reopens the log on the same directory and clock.
    pub(crate) fn reopen(self) -> Self {
        let Self { dir, clock, log } = self;
        drop(log);
        let log = Log::open(&dir.path().join("log"), LogConfig::default(), clock.clone()).unwrap();
        Self { dir, clock, log }
    }

    /// Reopens with `config`.
    pub(crate) fn reopen_with(self, config: LogConfig) -> Self {
        let Self { dir, clock, log } = self;
        drop(log);
        let log = Log::open(&dir.path().join("log"), config, clock.clone()).unwrap();
        Self { dir, clock, log }
    }

    /// Path of a partition's directory.
    pub(crate) fn partition_dir(&self, topic: &str, partition: u32) -> std::path::PathBuf {
        self.dir
            .path()
            .join("log")
            .join("topics")
            .join(topic)
            .join(partition.to_string())
    }
}

/// Creates topic `t` with one partition of 1 KiB segments and appends `n` records, one per
/// batch, each valued its index padded with zeros to `width` digits.
pub(crate) fn fill_small_segments(t: &TestLog, n: usize, width: usize) {
    fill_segments(t, n, width, 1024);
}

/// As [`fill_small_segments`], with segments of `segment_bytes`.
pub(crate) fn fill_segments(t: &TestLog, n: usize, width: usize, segment_bytes: u64) {
    t.log
        .create_topic(
            "t",
            Some(1),
            &[("segment.bytes".into(), segment_bytes.to_string())],
            false,
        )
        .unwrap();
    for i in 0..n {
        t.log
            .append(
                "t",
                streamcache::log::Routing::Partition(0),
                vec![value(&format!("{i:0width$}"))],
            )
            .unwrap();
    }
}

/// A record with this value and no key.
pub(crate) fn value(v: &str) -> Record {
    Record {
        value: Some(v.to_owned().into()),
        ..Record::default()
    }
}

/// A record with key and value.
pub(crate) fn keyed(k: &str, v: &str) -> Record {
    Record {
        key: Some(k.to_owned().into()),
        value: Some(v.to_owned().into()),
        ..Record::default()
    }
}

/// Values of records as strings.
pub(crate) fn values(records: &[streamcache::log::StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).unwrap())
        .collect()
}
