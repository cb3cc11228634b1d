//! Capability: recovery of a partition on open — a torn tail is cut and reported, corruption
//! before the tail is an error naming the segment and position, never a silent skip; the golden
//! segment fixture of format version 1 still loads; the fuzz corpus replays. With a recovery
//! point: damage below it is `Corrupt`; past it, under `interval_ms` or `never`, the first
//! invalid batch ends the log (that segment cut, every later one deleted), and under `always`
//! the torn-tail rules hold.
//!
//! Method: write a small three-batch fixture through the public API, then for every byte offset
//! of its segment (a) truncate the file there and (b) flip that byte, reopen a copy of the log
//! directory and check the result is exactly a prefix of the intact records or a clear
//! `Error::Corrupt` — never a panic. For the recovery point: fill 1 KiB or 16 KiB segments
//! through the public API, drop the log without its shutdown flush (a crash), damage the files
//! as a power loss does (a sealed segment's tail cut, a 4 KiB page zeroed with written batches
//! after it, the active segment's tail zeroed), reopen, and check the exact outcome.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod log_common;

use std::path::{Path, PathBuf};

use log_common::{TestLog, value, values};
use streamcache::clock::ManualClock;
use streamcache::log::{
    CommittedOffset, ConsumerSettings, Error, FlushPolicy, Log, LogConfig, OffsetReset, Routing,
    TopicPartition, fuzz_log_segment,
};

const SEGMENT: &str = "00000000000000000000.log";
const RECOVERY_POINT: &str = "recovery-point";

fn never() -> LogConfig {
    LogConfig {
        flush_policy: FlushPolicy::Never,
        ..LogConfig::default()
    }
}

/// Builds the fixture log: topic `t`, one partition, three batches (1, 2 and 1 records). The
/// manual clock makes its bytes stable, so it doubles as the v1 golden fixture.
fn fixture() -> (TestLog, Vec<String>, Vec<u64>) {
    let t = TestLog::new(never());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("alpha")])
        .unwrap();
    t.log
        .append(
            "t",
            Routing::Partition(0),
            vec![value("bravo"), value("charlie")],
        )
        .unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("delta")])
        .unwrap();
    t.log.flush().unwrap();
    let seg = t.partition_dir("t", 0).join(SEGMENT);
    let bytes = std::fs::read(&seg).unwrap();
    // Batch end positions, from each batch's length field.
    let mut ends = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
        pos += len;
        ends.push(pos as u64);
    }
    assert_eq!(ends.len(), 3);
    (
        t,
        vec![
            "alpha".into(),
            "bravo".into(),
            "charlie".into(),
            "delta".into(),
        ],
        ends,
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Copies the fixture's log dir, replaces its segment with `bytes`, and reopens it without
/// its recovery-point file, as a data directory from before recovery points opens: recovery
/// point 0 and the torn-tail rules. (With the file, the fixture's clean shutdown put every
/// batch below the recovery point, where any damage is `Corrupt`; see
/// `damage_below_the_recovery_point_is_corrupt_and_above_it_ends_the_log`.)
fn reopen_with_segment(src: &Path, bytes: &[u8]) -> (tempfile::TempDir, Result<Log, Error>) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src, dir.path());
    std::fs::remove_file(dir.path().join("topics/t/0").join(RECOVERY_POINT)).unwrap();
    let seg = dir.path().join("topics/t/0").join(SEGMENT);
    std::fs::write(&seg, bytes).unwrap();
    for ext in ["index", "timeindex"] {
        let _ = std::fs::remove_file(seg.with_extension(ext));
    }
    let log = Log::open(
        dir.path(),
        never(),
        ManualClock::shared(log_common::START_MS),
    );
    (dir, log)
}

fn records_per_batch() -> [usize; 3] {
    [1, 2, 1]
}

/// Records in batches that end at or before `pos`.
fn intact_records_before(ends: &[u64], pos: u64) -> usize {
    ends.iter()
        .zip(records_per_batch())
        .filter(|(e, _)| **e <= pos)
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn reopening_keeps_every_record() {
    let (t, expected, _) = fixture();
    let t = t.reopen_with(never());
    assert_eq!(values(&t.log.read("t", 0, 0, 1 << 20).unwrap()), expected);
    assert_eq!(t.log.latest_offset("t", 0).unwrap(), 4);
    t.log
        .append("t", Routing::Partition(0), vec![value("echo")])
        .unwrap();
    assert_eq!(t.log.read("t", 0, 4, 100).unwrap()[0].offset, 4);
}

#[test]
fn truncation_at_every_byte_keeps_exactly_the_complete_batches() {
    let (t, expected, ends) = fixture();
    let src = t.dir.path().join("log");
    let bytes = std::fs::read(t.partition_dir("t", 0).join(SEGMENT)).unwrap();
    for cut in 0..=bytes.len() {
        let (dir, log) = reopen_with_segment(&src, &bytes[..cut]);
        let log = log.unwrap_or_else(|e| panic!("truncation at {cut} must recover, got {e}"));
        let keep = intact_records_before(&ends, cut as u64);
        let read = if keep == 0 {
            Vec::new()
        } else {
            log.read("t", 0, 0, 1 << 20).unwrap()
        };
        assert_eq!(values(&read), expected[..keep], "cut at {cut}");
        assert_eq!(
            log.latest_offset("t", 0).unwrap(),
            keep as u64,
            "cut at {cut}"
        );
        let kept_len = ends
            .iter()
            .copied()
            .filter(|e| *e <= cut as u64)
            .max()
            .unwrap_or(0);
        let on_disk = std::fs::metadata(dir.path().join("topics/t/0").join(SEGMENT))
            .unwrap()
            .len();
        assert_eq!(on_disk, kept_len, "torn tail cut at {cut}");
    }
}

#[test]
fn a_flipped_byte_anywhere_gives_intact_records_or_a_named_error() {
    let (t, expected, ends) = fixture();
    let src = t.dir.path().join("log");
    let bytes = std::fs::read(t.partition_dir("t", 0).join(SEGMENT)).unwrap();
    let mut errors = 0;
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x5a;
        let batch_start = ends
            .iter()
            .copied()
            .filter(|e| *e <= at as u64)
            .max()
            .unwrap_or(0);
        let (_dir, log) = reopen_with_segment(&src, &flipped);
        match log {
            Ok(log) => {
                let end = log.latest_offset("t", 0).unwrap();
                let read = if end == 0 {
                    Vec::new()
                } else {
                    log.read("t", 0, 0, 1 << 20).unwrap()
                };
                let got = values(&read);
                assert_eq!(
                    got,
                    expected[..got.len()],
                    "flip at {at}: records must be an intact prefix"
                );
                assert!(
                    got.len() >= intact_records_before(&ends, batch_start),
                    "flip at {at} lost intact batches"
                );
            }
            Err(Error::Corrupt {
                segment,
                position,
                reason,
            }) => {
                errors += 1;
                assert!(
                    segment.ends_with(PathBuf::from("t/0").join(SEGMENT)),
                    "{segment:?}"
                );
                assert!(
                    position == 0 || ends.contains(&position),
                    "flip at {at}: position {position} is a batch start"
                );
                assert!(!reason.is_empty());
            }
            Err(other) => panic!("flip at {at}: unexpected error {other}"),
        }
    }
    assert!(errors > 0, "flips before the tail must be reported");
}

#[test]
fn crc_failure_before_the_tail_is_an_error_naming_segment_and_position() {
    let (t, _, ends) = fixture();
    let src = t.dir.path().join("log");
    let mut bytes = std::fs::read(t.partition_dir("t", 0).join(SEGMENT)).unwrap();
    let last = bytes.len() - 1;
    let in_second_batch = usize::try_from(ends[1]).unwrap() - 1;
    bytes[in_second_batch] ^= 1;
    let (_dir, log) = reopen_with_segment(&src, &bytes);
    let err = log.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { position, .. } if *position == ends[0]),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(SEGMENT) && text.contains(&format!("byte {}", ends[0])),
        "{text}"
    );
    assert!(text.contains("CRC"), "{text}");
    // The same flip in the last batch is a torn tail instead.
    bytes[in_second_batch] ^= 1;
    bytes[last] ^= 1;
    let (_dir, log) = reopen_with_segment(&src, &bytes);
    assert_eq!(log.unwrap().latest_offset("t", 0).unwrap(), 3);
}

#[test]
fn zero_filled_tail_is_torn_not_corrupt() {
    let (t, expected, _) = fixture();
    let src = t.dir.path().join("log");
    let mut bytes = std::fs::read(t.partition_dir("t", 0).join(SEGMENT)).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    let (_dir, log) = reopen_with_segment(&src, &bytes);
    let log = log.unwrap();
    assert_eq!(values(&log.read("t", 0, 0, 1 << 20).unwrap()), expected);
}

#[test]
fn a_sealed_segment_with_a_bad_index_is_rebuilt() {
    let (t, _) = sealed_segments(LogConfig::default());
    let dir = t.partition_dir("t", 0);
    std::fs::write(dir.join("00000000000000000000.index"), b"garbage").unwrap();
    let _ = std::fs::remove_file(dir.join("00000000000000000000.timeindex"));
    let t = t.reopen();
    let read = t.log.read("t", 0, 5, 1 << 20).unwrap();
    assert_eq!(read.first().unwrap().offset, 5);
    assert_eq!(read.len(), 55);
}

/// Format version 1: the golden segment written by the first release must still load.
#[test]
fn golden_fixture_v1_still_loads() {
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/log/v1/00000000000000000000.log");
    let (t, expected, _) = fixture();
    let written = std::fs::read(t.partition_dir("t", 0).join(SEGMENT)).unwrap();
    if std::env::var_os("STREAMCACHE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
        std::fs::write(&golden_path, &written).unwrap();
    }
    let golden = std::fs::read(&golden_path).unwrap();
    assert_eq!(golden, written, "the encoder still writes the v1 bytes");
    let (_dir, log) = reopen_with_segment(&t.dir.path().join("log"), &golden);
    assert_eq!(
        values(&log.unwrap().read("t", 0, 0, 1 << 20).unwrap()),
        expected
    );
}

#[test]
fn fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/log_segment");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        fuzz_log_segment(&bytes);
        n += 1;
    }
    assert!(n >= 4, "the seed corpus is present ({n} files)");
}

/// Puts a copy of `topic`'s directory back after the topic is deleted, as a crash between the
/// metadata removal and the directory removal leaves it; returns the directory.
fn delete_leaving_the_directory(t: &TestLog, topic: &str) -> PathBuf {
    let topic_dir = t.dir.path().join("log/topics").join(topic);
    let aside = t.dir.path().join("aside");
    copy_dir(&topic_dir, &aside);
    t.log.delete_topic(topic).unwrap();
    assert!(!topic_dir.exists());
    copy_dir(&aside, &topic_dir);
    std::fs::remove_dir_all(&aside).unwrap();
    topic_dir
}

fn fill_two_partitions(t: &TestLog) {
    t.log.create_topic("t", Some(2), &[], false).unwrap();
    for p in 0..2 {
        t.log
            .append(
                "t",
                Routing::Partition(p),
                vec![value("old-a"), value("old-b")],
            )
            .unwrap();
    }
}

fn assert_recreated_empty(t: &TestLog) {
    t.log.create_topic("t", Some(2), &[], false).unwrap();
    for p in 0..2 {
        assert_eq!(t.log.latest_offset("t", p).unwrap(), 0, "partition {p}");
        assert!(t.log.read("t", p, 0, 1 << 20).unwrap().is_empty());
    }
    let placed = t
        .log
        .append("t", Routing::Partition(0), vec![value("new")])
        .unwrap();
    assert_eq!(placed[0].offset, 0, "offsets start at 0 again");
    assert_eq!(values(&t.log.read("t", 0, 0, 1 << 20).unwrap()), ["new"]);
}

#[test]
fn topic_directories_without_a_metadata_store_are_refused_not_removed() {
    let t = TestLog::new(LogConfig::default());
    fill_two_partitions(&t);
    let log_dir = t.dir.path().join("log");
    let dir = t.dir;
    drop(t.log);
    // The metadata store is gone (lost, or a data directory put together by hand): every
    // topic directory would look like a creation cut short.
    std::fs::remove_dir_all(log_dir.join("meta")).unwrap();
    let opened = Log::open(&log_dir, LogConfig::default(), ManualClock::shared(1_000));
    assert!(
        matches!(&opened, Err(Error::MetaCorrupt { key, .. }) if key == "t"),
        "{:?}",
        opened.as_ref().err()
    );
    assert!(
        log_dir.join("topics/t").exists(),
        "the topic's files are left as they were"
    );
    drop(dir);
}

#[test]
fn a_deleted_topics_leftover_directory_is_removed_at_open() {
    let t = TestLog::new(LogConfig::default());
    fill_two_partitions(&t);
    let topic_dir = delete_leaving_the_directory(&t, "t");
    // A crash inside create_topic leaves partition directories without metadata too.
    copy_dir(&topic_dir, &t.dir.path().join("log/topics/half-created"));
    let t = t.reopen();
    assert!(
        !topic_dir.exists(),
        "a topic directory without metadata is removed at open"
    );
    assert!(!t.dir.path().join("log/topics/half-created").exists());
    assert!(t.log.topics().unwrap().is_empty());
    assert_recreated_empty(&t);
    let t = t.reopen();
    assert_eq!(values(&t.log.read("t", 0, 0, 1 << 20).unwrap()), ["new"]);
}

#[test]
fn a_topic_created_over_a_leftover_directory_starts_empty() {
    let t = TestLog::new(LogConfig::default());
    fill_two_partitions(&t);
    delete_leaving_the_directory(&t, "t");
    assert_recreated_empty(&t);
}

/// Topic `t` with one partition of several sealed 1 KiB segments and an active one (60
/// records, one per batch); returns the log and the first sealed segment's path.
fn sealed_segments(config: LogConfig) -> (TestLog, PathBuf) {
    let t = TestLog::new(config);
    log_common::fill_small_segments(&t, 60, 40);
    t.log.flush().unwrap();
    let first = t.partition_dir("t", 0).join(SEGMENT);
    assert!(
        t.partition_dir("t", 0)
            .join("00000000000000000000.index")
            .exists()
    );
    (t, first)
}

/// Byte positions where each batch of a segment starts.
fn batch_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0usize;
    while pos + 12 <= bytes.len() {
        starts.push(pos);
        pos += i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
    }
    starts
}

/// Closes the log, lets `damage` change the first sealed segment, and opens it again.
fn reopen_after(t: TestLog, seg: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> Result<Log, Error> {
    let TestLog { dir, clock, log } = t;
    drop(log);
    let mut bytes = std::fs::read(seg).unwrap();
    damage(&mut bytes);
    std::fs::write(seg, &bytes).unwrap();
    let log = Log::open(&dir.path().join("log"), never(), clock);
    drop(dir);
    log
}

fn assert_corrupt_at(result: Result<Log, Error>, seg: &Path, at: usize) {
    match result {
        Err(Error::Corrupt {
            segment, position, ..
        }) => {
            assert_eq!(segment, seg);
            assert_eq!(position, at as u64);
        }
        Err(e) => panic!("expected Corrupt at {at}, got {e}"),
        Ok(log) => panic!(
            "a torn sealed segment opened; offset 5 reads {:?}",
            log.read("t", 0, 5, 1 << 20)
                .map(|r| r.first().map(|r| r.offset))
        ),
    }
}

#[test]
fn a_sealed_segment_cut_at_a_batch_boundary_is_refused_at_open() {
    let (t, seg) = sealed_segments(never());
    let starts = batch_starts(&std::fs::read(&seg).unwrap());
    assert!(starts.len() > 5, "{starts:?}");
    // An OS crash under `never` kept the first five batches; the index (one entry, at 0)
    // still validates against the shorter file. Reading offset 5 used to skip silently to
    // the next segment.
    let cut = starts[5];
    let result = reopen_after(t, &seg, |b| b.truncate(cut));
    assert_corrupt_at(result, &seg, cut);
}

#[test]
fn a_sealed_segment_torn_inside_its_last_batch_is_refused_at_open() {
    let (t, seg) = sealed_segments(never());
    let starts = batch_starts(&std::fs::read(&seg).unwrap());
    let last = *starts.last().unwrap();
    let result = reopen_after(t, &seg, |b| b.truncate(last + 20));
    assert_corrupt_at(result, &seg, last);
}

#[test]
fn a_sealed_segment_with_a_zeroed_tail_is_refused_at_open() {
    let (t, seg) = sealed_segments(never());
    let starts = batch_starts(&std::fs::read(&seg).unwrap());
    let from = starts[starts.len() - 2];
    let result = reopen_after(t, &seg, |b| b[from..].fill(0));
    assert_corrupt_at(result, &seg, from);
}

// ---------------------------------------------------------------------------------------------
// The recovery point
// ---------------------------------------------------------------------------------------------

fn with_policy(policy: FlushPolicy) -> LogConfig {
    LogConfig {
        flush_policy: policy,
        ..LogConfig::default()
    }
}

/// Segment file name of `base` with extension `ext`.
fn file_of(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Base offsets of the `.log` files in a partition directory, sorted.
fn bases_in(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|s| s.parse().unwrap())
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// The offset and policy byte the partition's recovery-point file records (format v1: offset
/// u64 LE at 12, policy at 20; 0 always, 1 interval_ms, 2 never).
fn recorded_point(partition_dir: &Path) -> (u64, u8) {
    let bytes = std::fs::read(partition_dir.join(RECOVERY_POINT)).unwrap();
    assert_eq!(bytes.len(), 33);
    assert_eq!(&bytes[..8], b"SCRECPT\0");
    (
        u64::from_le_bytes(bytes[12..20].try_into().unwrap()),
        bytes[20],
    )
}

/// A crashed log: topic `t` with `n` records (one per batch, valued by offset, 40 digits) in
/// segments of `segment_bytes`, written under `policy`, closed without the shutdown flush.
struct Crashed {
    dir: tempfile::TempDir,
    clock: std::sync::Arc<ManualClock>,
    policy: FlushPolicy,
}

impl Crashed {
    fn new(policy: FlushPolicy, n: usize, segment_bytes: u64) -> Self {
        Self::after(policy, segment_bytes, n, |_| {})
    }

    /// As [`Crashed::new`], calling `between(&log)` after the `n` records and before the
    /// crash (a flush, more appends, a commit).
    fn after(
        policy: FlushPolicy,
        segment_bytes: u64,
        n: usize,
        between: impl FnOnce(&TestLog),
    ) -> Self {
        let t = TestLog::new(with_policy(policy));
        log_common::fill_segments(&t, n, 40, segment_bytes);
        between(&t);
        let TestLog { dir, clock, log } = t;
        // No `Log::flush`: what the page cache held is all a power loss may have kept.
        drop(log);
        Self { dir, clock, policy }
    }

    fn partition_dir(&self) -> PathBuf {
        self.dir.path().join("log/topics/t/0")
    }

    fn segment(&self, base: u64) -> PathBuf {
        self.partition_dir().join(file_of(base, "log"))
    }

    fn damage(&self, base: u64, damage: impl FnOnce(&mut Vec<u8>)) {
        let path = self.segment(base);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
    }

    fn starts(&self, base: u64) -> Vec<usize> {
        batch_starts(&std::fs::read(self.segment(base)).unwrap())
    }

    fn open(&self) -> Result<Log, Error> {
        Log::open(
            &self.dir.path().join("log"),
            with_policy(self.policy),
            self.clock.clone(),
        )
    }

    /// A copy of the crashed directory, to damage one way among several.
    fn copy(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), dir.path());
        Self {
            dir,
            clock: self.clock.clone(),
            policy: self.policy,
        }
    }
}

fn padded(i: u64) -> String {
    format!("{i:040}")
}

/// Every record of `t/0`, checked to be exactly offsets `0..end` with their values.
fn assert_holds_exactly(log: &Log, end: u64) {
    assert_eq!(log.latest_offset("t", 0).unwrap(), end);
    let mut got = Vec::new();
    while (got.len() as u64) < end {
        let read = log.read("t", 0, got.len() as u64, 1 << 20).unwrap();
        assert!(!read.is_empty());
        got.extend(read);
    }
    assert_eq!(got.len() as u64, end);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as u64);
        assert_eq!(r.value.as_deref(), Some(padded(i as u64).as_bytes()));
    }
}

/// The next append's offset.
fn append_one(log: &Log) -> u64 {
    log.append("t", Routing::Partition(0), vec![value("after")])
        .unwrap()[0]
        .offset
}

fn assert_no_files_of(partition_dir: &Path, bases: &[u64]) {
    for &base in bases {
        for ext in ["log", "index", "timeindex"] {
            assert!(
                !partition_dir.join(file_of(base, ext)).exists(),
                "{} is deleted",
                file_of(base, ext)
            );
        }
    }
}

#[test]
fn never_a_sealed_segment_cut_short_ends_the_log_there() {
    // 60 records, ten 110-byte batches per 1 KiB segment: segments 0, 10, …, 50.
    let crashed = Crashed::new(FlushPolicy::Never, 60, 1024);
    let pdir = crashed.partition_dir();
    assert_eq!(bases_in(&pdir), [0, 10, 20, 30, 40, 50]);
    assert_eq!(
        recorded_point(&pdir),
        (0, 2),
        "rolls under never fsync nothing"
    );
    // The power loss kept three of segment 10's batches; the later segments' pages made it.
    let cut = crashed.starts(10)[3];
    crashed.damage(10, |b| b.truncate(cut));
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, 13);
    assert_eq!(bases_in(&pdir), [0, 10]);
    assert_no_files_of(&pdir, &[20, 30, 40, 50]);
    assert!(
        !pdir.join(file_of(10, "index")).exists(),
        "stale index of the cut segment"
    );
    assert_eq!(
        std::fs::metadata(crashed.segment(10)).unwrap().len(),
        cut as u64
    );
    assert_eq!(
        recorded_point(&pdir),
        (13, 2),
        "the new end is recorded after recovery"
    );
    assert_eq!(log.partition("t", 0).unwrap().segment_count().unwrap(), 2);
    assert_eq!(append_one(&log), 13, "appends continue from the cut");
    drop(log);
    let log = crashed.open().unwrap();
    assert_eq!(log.latest_offset("t", 0).unwrap(), 14);
    assert_eq!(values(&log.read("t", 0, 13, 1 << 20).unwrap()), ["after"]);
}

#[test]
fn never_a_sealed_segment_cut_at_a_batch_boundary_ends_the_log_there() {
    let crashed = Crashed::new(FlushPolicy::Never, 60, 1024);
    // Cut exactly at a batch boundary: the segment verifies but stops short of the next base.
    let cut = crashed.starts(30)[6];
    crashed.damage(30, |b| b.truncate(cut));
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, 36);
    assert_eq!(bases_in(&crashed.partition_dir()), [0, 10, 20, 30]);
    assert_eq!(append_one(&log), 36);
}

/// A page of the page cache. With 16 KiB segments of 108-byte batches (152 each), 400 records
/// make segments 0, 152 and 304, the active one about 10 KiB: each spans more than two pages.
const PAGE: usize = 4096;

/// Index of the batch holding byte `pos` of a segment.
fn batch_at(starts: &[usize], pos: usize) -> usize {
    starts.iter().rposition(|&s| s <= pos).unwrap()
}

#[test]
fn never_a_zeroed_page_inside_a_sealed_segment_ends_the_log_at_its_first_batch() {
    let crashed = Crashed::new(FlushPolicy::Never, 400, 16 * 1024);
    let bases = bases_in(&crashed.partition_dir());
    assert_eq!(bases.len(), 3, "{bases:?}");
    let starts = crashed.starts(0);
    let k = batch_at(&starts, PAGE);
    // Page 1 never reached the disk; pages 2 and 3 did.
    crashed.damage(0, |b| {
        assert!(
            b[2 * PAGE..].iter().any(|&x| x != 0),
            "written batches follow"
        );
        b[PAGE..2 * PAGE].fill(0);
    });
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, k as u64);
    assert_eq!(bases_in(&crashed.partition_dir()), [0]);
    assert_no_files_of(&crashed.partition_dir(), &bases[1..]);
    assert_eq!(
        std::fs::metadata(crashed.segment(0)).unwrap().len(),
        starts[k] as u64
    );
    assert_eq!(append_one(&log), k as u64);
}

#[test]
fn interval_a_zeroed_page_inside_the_active_segment_ends_the_log_there() {
    let crashed = Crashed::new(FlushPolicy::IntervalMs(100), 400, 16 * 1024);
    let bases = bases_in(&crashed.partition_dir());
    let active = *bases.last().unwrap();
    // A durable roll records the new segment's base.
    assert_eq!(recorded_point(&crashed.partition_dir()), (active, 1));
    let starts = crashed.starts(active);
    let k = batch_at(&starts, PAGE);
    crashed.damage(active, |b| {
        assert!(b.len() > 2 * PAGE + 200, "written batches follow the page");
        b[PAGE..2 * PAGE].fill(0);
    });
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, active + k as u64);
    assert_eq!(bases_in(&crashed.partition_dir()), bases);
    assert_eq!(append_one(&log), active + k as u64);
}

#[test]
fn interval_a_sealed_segment_below_the_recovery_point_is_corrupt() {
    let crashed = Crashed::new(FlushPolicy::IntervalMs(100), 400, 16 * 1024);
    // Its roll fsynced it and recorded the next base.
    let sealed = bases_in(&crashed.partition_dir())[1];
    let cut = crashed.starts(sealed)[20];
    crashed.damage(sealed, |b| b.truncate(cut));
    assert_corrupt_at(crashed.open(), &crashed.segment(sealed), cut);
}

#[test]
fn always_a_zeroed_page_inside_the_active_segment_is_corrupt() {
    let crashed = Crashed::new(FlushPolicy::Always, 400, 16 * 1024);
    let active = *bases_in(&crashed.partition_dir()).last().unwrap();
    assert_eq!(recorded_point(&crashed.partition_dir()), (active, 0));
    let starts = crashed.starts(active);
    let k = batch_at(&starts, PAGE);
    crashed.damage(active, |b| b[PAGE..2 * PAGE].fill(0));
    // Under `always` every acknowledged batch was fsynced: only a torn tail is cut.
    assert_corrupt_at(crashed.open(), &crashed.segment(active), starts[k]);
}

#[test]
fn always_a_torn_tail_of_the_active_segment_is_cut() {
    let crashed = Crashed::new(FlushPolicy::Always, 60, 1024);
    let starts = crashed.starts(50);
    crashed.damage(50, |b| b.truncate(starts[7] + 30));
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, 57);
    assert_eq!(append_one(&log), 57);
}

#[test]
fn never_a_zeroed_tail_of_the_active_segment_is_cut() {
    let crashed = Crashed::new(FlushPolicy::Never, 60, 1024);
    let starts = crashed.starts(50);
    let from = starts[starts.len() - 3];
    crashed.damage(50, |b| b[from..].fill(0));
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, 57);
    assert_eq!(
        std::fs::metadata(crashed.segment(50)).unwrap().len(),
        from as u64
    );
    assert_eq!(append_one(&log), 57);
}

#[test]
fn damage_below_the_recovery_point_is_corrupt_and_above_it_ends_the_log() {
    // A flush records 60 (the shutdown's checkpoint); 30 more records land past it.
    let crashed = Crashed::after(FlushPolicy::Never, 1024, 60, |t| {
        t.log.flush().unwrap();
        assert_eq!(recorded_point(&t.partition_dir("t", 0)), (60, 2));
        for i in 60..90 {
            t.log
                .append("t", Routing::Partition(0), vec![value(&padded(i))])
                .unwrap();
        }
    });
    assert_eq!(
        bases_in(&crashed.partition_dir()),
        [0, 10, 20, 30, 40, 50, 60, 70, 80]
    );
    // Segment 10 lies wholly below the point: its bytes were fsynced.
    let below = crashed.copy();
    let cut = below.starts(10)[3];
    below.damage(10, |b| b.truncate(cut));
    assert_corrupt_at(below.open(), &below.segment(10), cut);
    // Segment 50 ends exactly at the point: still below it.
    let at = crashed.copy();
    let starts = at.starts(50);
    at.damage(50, |b| b[starts[2]..starts[4]].fill(0));
    assert_corrupt_at(at.open(), &at.segment(50), starts[2]);
    // Segment 70 lies past the point.
    let above = crashed.copy();
    let cut = above.starts(70)[4];
    above.damage(70, |b| b.truncate(cut));
    let log = above.open().unwrap();
    assert_holds_exactly(&log, 74);
    assert_eq!(
        bases_in(&above.partition_dir()),
        [0, 10, 20, 30, 40, 50, 60, 70]
    );
    assert_eq!(append_one(&log), 74);
}

#[test]
fn a_log_ending_below_its_recovery_point_is_corrupt() {
    let crashed = Crashed::after(FlushPolicy::Never, 1024, 60, |t| t.log.flush().unwrap());
    // Batches below the point, in the active segment, lost at a batch boundary: without the
    // point this opened as a shorter log.
    let cut = crashed.starts(50)[5];
    crashed.damage(50, |b| b.truncate(cut));
    match crashed.open() {
        Err(Error::Corrupt {
            segment,
            position,
            reason,
        }) => {
            assert_eq!(segment, crashed.segment(50));
            assert_eq!(position, cut as u64);
            assert!(reason.contains("recovery point 60"), "{reason}");
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(log) => panic!("opened at {}", log.latest_offset("t", 0).unwrap()),
    }
}

#[test]
fn without_a_valid_recovery_point_file_the_torn_tail_rules_hold_from_offset_zero() {
    let crashed = Crashed::new(FlushPolicy::Never, 60, 1024);
    let pdir = crashed.partition_dir();
    let good = std::fs::read(pdir.join(RECOVERY_POINT)).unwrap();
    let mut flipped = good.clone();
    flipped[14] ^= 1;
    let mut longer = good.clone();
    longer.push(0);
    for (case, file) in [
        ("missing", None),
        ("bad CRC", Some(flipped)),
        ("34 bytes", Some(longer)),
    ] {
        let copy = crashed.copy();
        let rp = copy.partition_dir().join(RECOVERY_POINT);
        match file {
            None => std::fs::remove_file(&rp).unwrap(),
            Some(bytes) => std::fs::write(&rp, bytes).unwrap(),
        }
        // The same damage that `never` with a valid file cuts is refused: nothing says it
        // was not fsynced.
        let cut = copy.starts(10)[3];
        copy.damage(10, |b| b.truncate(cut));
        match copy.open() {
            Err(Error::Corrupt {
                segment, position, ..
            }) => {
                assert_eq!(segment, copy.segment(10), "{case}");
                assert_eq!(position, cut as u64, "{case}");
            }
            Err(e) => panic!("{case}: expected Corrupt, got {e}"),
            Ok(_) => panic!("{case}: a torn sealed segment opened"),
        }
    }
    // Undamaged, a directory without the file opens whole and gets one.
    std::fs::remove_file(pdir.join(RECOVERY_POINT)).unwrap();
    let log = crashed.open().unwrap();
    assert_holds_exactly(&log, 60);
    assert_eq!(recorded_point(&pdir), (60, 2));
}

#[test]
fn a_clean_shutdown_records_the_log_end_and_a_durable_roll_the_new_base() {
    let t = TestLog::new(with_policy(FlushPolicy::Always));
    log_common::fill_small_segments(&t, 25, 40);
    let pdir = t.partition_dir("t", 0);
    assert_eq!(recorded_point(&pdir), (20, 0), "the last roll's base");
    t.log.flush().unwrap();
    assert_eq!(recorded_point(&pdir), (25, 0), "the log end");
    // A clean reopen has nothing to re-validate and keeps the file as it is.
    let t = t.reopen_with(with_policy(FlushPolicy::Always));
    assert_eq!(recorded_point(&pdir), (25, 0));
    assert_eq!(append_one(&t.log), 25);
    // Opened under another policy, the file records it from the log end on.
    let t = t.reopen_with(with_policy(FlushPolicy::IntervalMs(250)));
    assert_eq!(recorded_point(&pdir), (26, 1));
    let bytes = std::fs::read(pdir.join(RECOVERY_POINT)).unwrap();
    assert_eq!(bytes[21..29], 250u64.to_le_bytes());
    drop(t);
}

#[test]
fn after_a_cut_reads_groups_retention_and_metadata_agree() {
    let crashed = Crashed::after(FlushPolicy::Never, 1024, 60, |t| {
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let committed = CommittedOffset {
            offset: 55,
            metadata: String::new(),
        };
        t.log.commit_offsets("g", &[(tp, committed)]).unwrap();
    });
    let cut = crashed.starts(10)[3];
    crashed.damage(10, |b| b.truncate(cut));
    let log = crashed.open().unwrap();
    assert_eq!(log.topic("t").unwrap().partitions, 1);
    assert_eq!(log.earliest_offset("t", 0).unwrap(), 0);
    assert_eq!(log.latest_offset("t", 0).unwrap(), 13);
    assert_eq!(*log.subscribe("t", 0).unwrap().borrow(), 13);
    assert!(matches!(
        log.read("t", 0, 55, 1 << 20),
        Err(Error::OffsetOutOfRange {
            offset: 55,
            latest: 13,
            ..
        })
    ));
    let on_disk: u64 = [0, 10]
        .iter()
        .map(|&b| std::fs::metadata(crashed.segment(b)).unwrap().len())
        .sum();
    assert_eq!(
        log.partition("t", 0).unwrap().size_bytes().unwrap(),
        on_disk
    );
    // The group's committed offset is past the end: a poll resets it as configured.
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    assert_eq!(log.committed_offset("g", &tp).unwrap().unwrap().offset, 55);
    let settings = ConsumerSettings {
        offset_reset: OffsetReset::Earliest,
        ..ConsumerSettings::default()
    };
    let c = log.create_consumer("g", Some("c"), settings).unwrap();
    log.assign_consumer("g", &c, vec![tp]).unwrap();
    let polled = log.poll_consumer("g", &c, 1 << 20).unwrap();
    assert_eq!(polled.first().unwrap().record.offset, 0);
    assert_eq!(polled.last().unwrap().record.offset, 12);
    // Retention sees the new segments: after 8 days only the active (cut) segment is left.
    crashed
        .clock
        .advance(std::time::Duration::from_secs(8 * 24 * 3600));
    // (The background thread's own check may run it first.)
    log.enforce_retention().unwrap();
    assert_eq!(log.earliest_offset("t", 0).unwrap(), 10);
    assert_eq!(log.partition("t", 0).unwrap().segment_count().unwrap(), 1);
    assert_eq!(append_one(&log), 13);
}
