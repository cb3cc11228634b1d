//! The seams between flows and the engines: small synchronous traits the engine module
//! implements over the log, cache, history and transform engines, and tests implement in memory.
//!
//! Every method may block (engines are synchronous); the runner calls them inside
//! `tokio::task::spawn_blocking`. A [`SeamError`] of kind `Rejected` dead-letters the one record
//! concerned; kind `Fatal` stops the flow without committing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::SKIPPED_RANGES_MAX;
use super::config::{SourceConfig, StartPosition};
use super::error::SeamError;

/// One record read from the source topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset within the partition.
    pub offset: u64,
    /// Its create time in milliseconds since the epoch (a cache rebuild ages TTLs by it).
    pub timestamp_ms: i64,
    /// The key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// The value bytes, if any (a record without a value is dead-lettered as "not JSON").
    pub value: Option<Vec<u8>>,
    /// The record's headers in order, name and value (`None`: a header without a value); a
    /// dead letter keeps them.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// What one poll returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceBatch {
    /// Records in offset order within each partition; may be empty when the wait expired.
    pub records: Vec<SourceRecord>,
    /// Log end offset (next offset to be written) per partition, for the lag gauges.
    pub end_offsets: BTreeMap<u32, u64>,
    /// The source topic's ID ([`crate::log::TopicInfo::id`]), committed with the offsets so
    /// that a topic deleted and created again under its name does not resume at the old
    /// topic's offsets. Empty for sources without one.
    pub topic_id: String,
}

/// The append notifications of a source's partitions (one `watch` per partition whose value
/// changes on every append). A fetcher holding them polls without waiting and then sleeps until
/// the next append or its stop signal, so an idle flow does not wake up on a timer.
#[derive(Debug)]
pub struct WakeSignal {
    receivers: Vec<tokio::sync::watch::Receiver<u64>>,
}

impl WakeSignal {
    /// A signal over `receivers`; `None` when there are none (nothing could wake the fetcher).
    #[must_use]
    pub fn new(receivers: Vec<tokio::sync::watch::Receiver<u64>>) -> Option<Self> {
        (!receivers.is_empty()).then_some(Self { receivers })
    }

    /// Marks every append so far as seen. Called before each poll, so an append the poll does
    /// not return wakes the next [`WakeSignal::changed`] at once (no lost wake-up).
    pub fn mark_seen(&mut self) {
        for r in &mut self.receivers {
            r.borrow_and_update();
        }
    }

    /// Resolves when any partition was appended to since [`WakeSignal::mark_seen`].
    ///
    /// # Errors
    /// [`WakeSignalClosed`] when a partition's notifications ended (its log is closing); the
    /// caller then goes back to bounded polls.
    pub async fn changed(&mut self) -> Result<(), WakeSignalClosed> {
        let waits = self.receivers.iter_mut().map(|r| Box::pin(r.changed()));
        let (woke, _, _) = futures::future::select_all(waits).await;
        woke.map_err(|_| WakeSignalClosed)
    }
}

/// A [`WakeSignal`]'s sender is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeSignalClosed;

/// Where a newly opened source starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStart {
    /// Next offset to read per partition, as last committed with history; partitions missing
    /// from the map start at their beginning.
    Committed(BTreeMap<u32, u64>),
    /// Every partition from its beginning.
    Earliest,
    /// Every partition from its current end.
    Latest,
    /// Next offset to read per partition for a replay that commits nothing (the cache rebuild);
    /// partitions missing from the map start at their beginning, and so does a position
    /// retention has passed, without a warning: a replay starts at the log start by design.
    Replay(BTreeMap<u32, u64>),
}

impl SourceStart {
    /// The start for `position`, given the committed offsets (used when the process starts a
    /// flow; reload restarts always use [`SourceStart::Committed`]).
    #[must_use]
    pub fn for_position(position: StartPosition, committed: BTreeMap<u32, u64>) -> Self {
        match position {
            StartPosition::Committed => Self::Committed(committed),
            StartPosition::Earliest => Self::Earliest,
            StartPosition::Latest => Self::Latest,
        }
    }
}

/// A consumer positioned on one topic, owned by one flow.
pub trait Source: Send + 'static {
    /// Returns up to `max_records` records, waiting at most `wait_ms` when none are available
    /// (then the batch is empty). Successive polls continue where the last one ended.
    ///
    /// # Errors
    /// Any error stops the flow (the log is closed or unreadable).
    fn poll(&mut self, max_records: usize, wait_ms: u64) -> Result<SourceBatch, SeamError>;

    /// Hands over the source's append notifications, if it has them. The fetcher then polls
    /// with `wait_ms = 0` and waits on the signal between polls. The default (`None`) keeps
    /// the bounded wait inside [`Source::poll`].
    fn take_wake_signal(&mut self) -> Option<WakeSignal> {
        None
    }

    /// Splits the source into at most `lanes` sources over disjoint sets of partitions, which
    /// the flow polls and processes in parallel (each commits only its own partitions'
    /// offsets). A source that cannot split returns `vec![self]`.
    fn split(self: Box<Self>, lanes: usize) -> Vec<Box<dyn Source>>;

    /// The partitions this source starts elsewhere than at the committed offsets it was opened
    /// with, each at the position it starts from: every partition of a source opened at
    /// [`SourceStart::Earliest`] or [`SourceStart::Latest`], and those whose committed offset is
    /// past the log end (the log was recovered shorter after a power loss). The flow commits
    /// these before it reads anything, so that a later start — a reload's restart included —
    /// resumes where the flow was rather than at stale offsets (or a `latest` flow at the log
    /// start), and its lag counts from there. The default: none.
    fn rewound(&self) -> Vec<CommitOffset> {
        Vec::new()
    }

    /// Ends each partition's reading at its offset in `ends` (no record at or past it is
    /// returned) and every partition `ends` leaves out at once: the cache rebuild at start reads
    /// up to the committed offsets and no further. The default reads on, and the caller drops
    /// what lies past the ends.
    fn stop_at(&mut self, ends: &BTreeMap<u32, u64>) {
        let _ = ends;
    }
}

/// Opens sources (the log engine's side).
pub trait SourceOpener: Send + Sync + 'static {
    /// Opens a consumer on `source.topic` for group `source.group`, positioned at `start`.
    ///
    /// # Errors
    /// A missing topic or a log failure; the flow does not start.
    fn open(
        &self,
        source: &SourceConfig,
        start: &SourceStart,
    ) -> Result<Box<dyn Source>, SeamError>;
}

/// One compiled JOLT spec.
pub trait Transform: Send + Sync + 'static {
    /// Applies the spec to `doc`.
    ///
    /// # Errors
    /// The spec cannot be applied to this document; the record is dead-lettered.
    fn apply(&self, doc: &Value) -> Result<Value, SeamError>;
}

/// Compiles JOLT specs (the transform engine's side: `Spec::parse_str` / `Spec::apply`).
pub trait TransformCompiler: Send + Sync + 'static {
    /// Validates and compiles one spec (a JOLT chain array or a single operation object).
    ///
    /// # Errors
    /// An invalid spec; the flow set is rejected before anything starts or stops.
    fn compile(&self, spec: &Value) -> Result<Arc<dyn Transform>, SeamError>;
}

/// A cache entry's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheValue {
    /// A string value (`SET`).
    String(String),
    /// A hash value (`HSET` of every field after clearing the key), one field per member
    /// of the object, in the order the JSON map iterates them.
    Hash(Vec<(String, String)>),
}

/// One cache write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheWrite {
    /// The rendered key.
    pub key: String,
    /// The value.
    pub value: CacheValue,
    /// Time to live in milliseconds; `None` keeps the entry without expiry.
    pub ttl_ms: Option<u64>,
}

/// Writes to the cache engine.
pub trait CacheSink: Send + Sync + 'static {
    /// Replaces the entry at `write.key`.
    ///
    /// # Errors
    /// `Rejected` for a key or value over the cache's limits; `Fatal` otherwise.
    fn write(&self, write: CacheWrite) -> Result<(), SeamError>;
}

/// How a history write lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryWriteMode {
    /// Insert a new document.
    Insert,
    /// Replace the document whose key is this rendered template, or insert it.
    Upsert {
        /// The rendered key (becomes the document's `_id`).
        key: String,
    },
}

/// One document for history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryWrite {
    /// Database name.
    pub db: String,
    /// Collection name.
    pub collection: String,
    /// Insert or upsert.
    pub mode: HistoryWriteMode,
    /// The document.
    pub doc: Value,
}

/// A consumer position committed with a history batch: the next offset to read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommitOffset {
    /// The source topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The offset after the last record the batch consumed.
    pub next_offset: u64,
    /// The ID of the topic the batch was read from ([`SourceBatch::topic_id`]).
    pub topic_id: String,
}

/// Offsets a flow skipped, per partition: half-open `(from, to)` ranges, sorted, disjoint and
/// not touching, at most [`SKIPPED_RANGES_MAX`] per partition.
pub type Skipped = BTreeMap<u32, Vec<(u64, u64)>>;

/// Updates one partition's skipped ranges for a flow that starts reading it at `start`, its
/// committed offset having been `committed` (`None`: never committed, as from 0). Forward
/// (`start > committed`) the records in between are skipped; back, every offset from `start` on
/// is read again, so the ranges are cut at `start`. Past [`SKIPPED_RANGES_MAX`] ranges the two
/// oldest merge, counting the records between them as skipped: a rebuild then misses keys the
/// flow wrote rather than write keys it never wrote.
pub fn record_start(ranges: &mut Vec<(u64, u64)>, committed: Option<u64>, start: u64) {
    let from = committed.unwrap_or(0);
    if start > from {
        match ranges.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(start),
            _ => ranges.push((from, start)),
        }
    } else {
        ranges.retain(|r| r.0 < start);
        if let Some(last) = ranges.last_mut() {
            last.1 = last.1.min(start);
        }
    }
    while ranges.len() > SKIPPED_RANGES_MAX {
        let first = ranges.remove(0);
        if let Some(next) = ranges.first_mut() {
            next.0 = first.0;
        }
    }
}

/// Why a history commit failed; nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryCommitError {
    /// `docs[index]` is unacceptable (too large, bad key); the flow dead-letters its record and
    /// commits the rest.
    #[error("document {index} rejected: {message}")]
    Rejected {
        /// Index into the `docs` slice passed to [`HistorySink::commit`].
        index: usize,
        /// Why.
        message: String,
    },
    /// Storage failed; the flow stops without committing.
    #[error("history failed: {0}")]
    Fatal(String),
}

/// Writes to the history engine; also the store of every flow's committed offsets.
pub trait HistorySink: Send + Sync + 'static {
    /// The committed next offsets of `group` on `topic`, per partition (empty if never committed).
    ///
    /// # Errors
    /// A storage failure; the flow does not start.
    fn committed(&self, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>, SeamError>;

    /// Writes `docs` and sets `group`'s committed offsets to `offsets`, atomically: all of it
    /// lands (in one fjall batch) or none of it does. `docs` may be empty (offsets only).
    ///
    /// The sink may move each document out of `docs` (leaving `Value::Null`) once it has
    /// checked all of them, so a commit costs no copy; after a [`HistoryCommitError::Rejected`]
    /// every document is still in place for the retry without the rejected one.
    ///
    /// # Errors
    /// [`HistoryCommitError::Rejected`] names one bad document; [`HistoryCommitError::Fatal`]
    /// stops the flow.
    fn commit(
        &self,
        group: &str,
        docs: &mut [HistoryWrite],
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError>;

    /// Commits the positions a source starts from instead of the committed ones
    /// ([`Source::rewound`]), as [`HistorySink::commit`] does with no documents, and records in
    /// the same atomic batch which offsets the flow thereby skips ([`HistorySink::skipped`]):
    /// moving a partition forward from its committed offset (from 0 when it has none) skips the
    /// records in between; moving it back to `p` means every offset from `p` on will be
    /// processed, so no skipped range reaches past `p` any more ([`record_start`]).
    /// The default commits the positions and records nothing.
    ///
    /// # Errors
    /// As [`HistorySink::commit`].
    fn commit_start(
        &self,
        group: &str,
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError> {
        self.commit(group, &mut [], offsets)
    }

    /// The offsets of `group` on `topic` its flow skipped, per partition: half-open ranges
    /// `(from, to)`, sorted and disjoint, recorded by [`HistorySink::commit_start`]. The cache
    /// rebuild replays no record in them, so the cache holds only keys the flow wrote. Empty
    /// for a flow that never skipped (or whose offsets predate the record): it replays from the
    /// log start. The default: empty.
    ///
    /// # Errors
    /// A storage failure; the rebuild fails.
    fn skipped(&self, group: &str, topic: &str) -> Result<Skipped, SeamError> {
        let _ = (group, topic);
        Ok(BTreeMap::new())
    }

    /// Makes every commit so far durable (an fsync), whatever durability the store's commits
    /// run with. A flow calls it after committing the positions its source starts from
    /// ([`Source::rewound`]) and before it reads: that commit must outlive a power loss that
    /// keeps the records appended from there on, or the next start would trust the stale
    /// positions again and resume past those records.
    ///
    /// # Errors
    /// A storage failure; the flow does not start.
    fn persist(&self) -> Result<(), SeamError>;

    /// Whether [`HistorySink::commit`] would accept `write` for its content (a JSON object
    /// within the store's limits), without writing anything; `Err` gives the reason it would
    /// be rejected. Flows check every history write of a record before writing it to any other
    /// sink, so a document history refuses reaches neither the cache nor a forward. The
    /// default accepts everything.
    ///
    /// # Errors
    /// The reason [`HistoryCommitError::Rejected`] would give.
    fn check(&self, write: &HistoryWrite) -> Result<(), String> {
        let _ = write;
        Ok(())
    }
}

/// One record for another topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicWrite {
    /// The key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// The value bytes; `None` for no value (a dead letter of a record that had none, such
    /// as a tombstone, keeps it so).
    pub value: Option<Vec<u8>>,
    /// Header name and value pairs, in order (`None`: a header without a value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The create time to append it with, in milliseconds since the epoch; `None` for the time
    /// of the append (forwards and dead letters keep their source record's create time).
    pub timestamp_ms: Option<i64>,
}

/// Appends to topics of the log engine (forwarding sinks).
pub trait TopicSink: Send + Sync + 'static {
    /// Appends `record` to `topic`.
    ///
    /// # Errors
    /// `Rejected` for a record over the log's limits or a missing topic; `Fatal` otherwise.
    fn produce(&self, topic: &str, record: TopicWrite) -> Result<(), SeamError>;
}

/// Appends failed records to a flow's dead-letter topic.
///
/// A dead letter is a [`TopicWrite`] holding the original key, value, create time and headers,
/// followed by the headers `error`, `flow`, `source.topic`, `source.partition` and
/// `source.offset` (decimal text), as Kafka Connect's dead-letter queue keeps the original
/// record and adds its own headers after the record's.
pub trait DeadLetter: Send + Sync + 'static {
    /// Appends every letter to `topic`, in order.
    ///
    /// # Errors
    /// Any error stops the flow without committing: a failed record is never dropped.
    fn send(&self, topic: &str, letters: Vec<TopicWrite>) -> Result<(), SeamError>;
}

/// The engines a pipeline runs over, one handle per seam.
#[derive(Clone)]
pub struct Seams {
    /// The log, as a consumer.
    pub source: Arc<dyn SourceOpener>,
    /// The JOLT engine.
    pub transform: Arc<dyn TransformCompiler>,
    /// The cache.
    pub cache: Arc<dyn CacheSink>,
    /// History, also holding committed offsets.
    pub history: Arc<dyn HistorySink>,
    /// The log, as a producer for forwarding sinks.
    pub topic: Arc<dyn TopicSink>,
    /// The log, as a producer for dead letters.
    pub dead_letter: Arc<dyn DeadLetter>,
}

impl fmt::Debug for Seams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seams").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_forward_skips_the_records_in_between_and_one_back_reads_them_again() {
        let mut ranges = Vec::new();
        // A `latest` flow that never committed, starting at 10.
        record_start(&mut ranges, None, 10);
        assert_eq!(ranges, [(0, 10)]);
        // Restarted at `latest` with nothing appended meanwhile: nothing more skipped.
        record_start(&mut ranges, Some(10), 10);
        assert_eq!(ranges, [(0, 10)]);
        // Processed up to 15, restarted at 20: 15..20 skipped.
        record_start(&mut ranges, Some(15), 20);
        assert_eq!(ranges, [(0, 10), (15, 20)]);
        // Started again at 12 (the log recovered shorter, or `earliest` after retention):
        // everything from 12 on is read again.
        record_start(&mut ranges, Some(25), 12);
        assert_eq!(ranges, [(0, 10)]);
        record_start(&mut ranges, Some(12), 5);
        assert_eq!(ranges, [(0, 5)]);
        // `earliest` from the very start: nothing skipped.
        record_start(&mut ranges, Some(8), 0);
        assert!(ranges.is_empty());
        // A forward start right where the last skipped range ends extends it.
        record_start(&mut ranges, None, 3);
        record_start(&mut ranges, Some(3), 7);
        assert_eq!(ranges, [(0, 7)]);
    }

    #[test]
    fn skipped_ranges_at_max_are_kept_and_past_it_the_oldest_two_merge() {
        let mut ranges = Vec::new();
        // Each restart: processed 5 records, then skipped 5.
        for i in 0..SKIPPED_RANGES_MAX as u64 {
            record_start(&mut ranges, Some(i * 10), i * 10 + 5);
        }
        assert_eq!(ranges.len(), SKIPPED_RANGES_MAX);
        assert_eq!(ranges.first(), Some(&(0, 5)));
        let n = SKIPPED_RANGES_MAX as u64;
        record_start(&mut ranges, Some(n * 10), n * 10 + 5);
        assert_eq!(ranges.len(), SKIPPED_RANGES_MAX);
        assert_eq!(ranges.first(), Some(&(0, 15)), "the first two merged");
        assert_eq!(ranges.last(), Some(&(n * 10, n * 10 + 5)));
    }
}
