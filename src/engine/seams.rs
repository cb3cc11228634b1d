//! The pipeline's seams implemented over the real engines: the log as source, forwarding sink
//! and dead-letter topic; JOLT as the transform; the cache; history as the exactly-once sink
//! that also stores every flow's committed offsets.
//!
//! Everything here is synchronous and runs inside `spawn_blocking` (the pipeline's contract).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::cache::{Cache, Frame};
use crate::history::{self, EncodedDocument, History, WriteOp};
use crate::log::{self, Header, Log, Record, Routing};
use crate::pipeline::{
    CacheSink, CacheValue, CacheWrite, CommitOffset, DeadLetter, HistoryCommitError, HistorySink,
    HistoryWrite, HistoryWriteMode, SeamError, Seams, Skipped, Source, SourceBatch, SourceConfig,
    SourceOpener, SourceRecord, SourceStart, TopicSink, TopicWrite, Transform, TransformCompiler,
    WakeSignal, record_start,
};
use crate::transform::Spec;

/// Bytes read from one partition per poll before the batch is cut (the record count limit
/// usually cuts first).
const SOURCE_READ_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Bytes read per record still wanted by a poll: the log decodes every record of the bytes it
/// reads, so reading the whole [`SOURCE_READ_BYTES_MAX`] to keep a few hundred records wastes
/// most of the decoding. Records larger than this only make a poll return fewer of them.
const SOURCE_READ_BYTES_PER_RECORD: usize = 1024;
/// The least a poll reads from a partition (one read returns at least one whole batch anyway).
const SOURCE_READ_BYTES_MIN: usize = 64 * 1024;

const _: () = assert!(SOURCE_READ_BYTES_MIN <= SOURCE_READ_BYTES_MAX);

/// Prefix of the history metadata keys holding flow offsets: `pipeline/offsets/<group>/<topic>`.
const OFFSETS_META_PREFIX: &str = "pipeline/offsets/";

/// The cache database flows write to (Redis's default `SELECT 0`).
const CACHE_DB: usize = 0;

/// Builds the seams over `log`, `cache` and `history`.
pub(crate) fn build(log: Arc<Log>, cache: Cache, history: History) -> Seams {
    let topic = Arc::new(LogTopics { log: log.clone() });
    Seams {
        source: Arc::new(LogSources { log: log.clone() }),
        transform: Arc::new(Jolt),
        cache: Arc::new(CacheWrites { cache }),
        history: Arc::new(HistoryCommits {
            history,
            log,
            commit_lock: std::sync::Mutex::new(()),
        }),
        topic: topic.clone(),
        dead_letter: topic,
    }
}

fn fatal(e: impl std::fmt::Display) -> SeamError {
    SeamError::fatal(e.to_string())
}

/// Opens log consumers.
struct LogSources {
    log: Arc<Log>,
}

impl SourceOpener for LogSources {
    fn open(
        &self,
        source: &SourceConfig,
        start: &SourceStart,
    ) -> Result<Box<dyn Source>, SeamError> {
        let info = self.log.ensure_topic(&source.topic).map_err(fatal)?;
        let topic_id = info.id.clone();
        let mut positions = BTreeMap::new();
        let mut receivers = Vec::new();
        let mut rewound = Vec::new();
        let commit_at = |partition, next_offset| CommitOffset {
            topic: source.topic.clone(),
            partition,
            next_offset,
            topic_id: topic_id.clone(),
        };
        for p in 0..info.partitions {
            let earliest = self.log.earliest_offset(&source.topic, p).map_err(fatal)?;
            let latest = self.log.latest_offset(&source.topic, p).map_err(fatal)?;
            let position = match start {
                // A position chosen over the committed ones is committed before anything is
                // read: otherwise a reload's restart, which resumes at the committed offsets,
                // would read a `latest` flow's skipped backlog from the log start, and the lag
                // would count from the stale offsets.
                SourceStart::Earliest | SourceStart::Latest => {
                    let position = if matches!(start, SourceStart::Earliest) {
                        earliest
                    } else {
                        latest
                    };
                    rewound.push(commit_at(p, position));
                    position
                }
                // A committed position retention has passed resumes at the log start, as Kafka's
                // auto.offset.reset=earliest does: the first read moves it there and warns (a
                // flow's), or it starts there (a replay's).
                SourceStart::Committed(map) | SourceStart::Replay(map) => {
                    let replay = matches!(start, SourceStart::Replay(_));
                    let committed = map.get(&p).copied().unwrap_or(earliest);
                    if committed > latest {
                        // Recovery ended the log before it (records that never reached the disk
                        // before a power loss): resume where the recovered log ended, or the
                        // records appended from there on — before this flow started too —
                        // would be skipped until the log grew past it.
                        let resume = self
                            .log
                            .opened_end_offset(&source.topic, p)
                            .map_err(fatal)?
                            .min(latest);
                        // A replay commits nothing, and the flow reports the cut when it starts.
                        // (The engine moved every stored position past its partition's
                        // recovered end back to it before any flow started,
                        // `rewind_past_recovered_ends`; this check stays for a position that
                        // pass did not see.)
                        if !replay {
                            warn_past_end(
                                &source.group,
                                &source.topic,
                                p,
                                committed,
                                latest,
                                resume,
                            );
                            rewound.push(commit_at(p, resume));
                        }
                        resume
                    } else if replay {
                        committed.max(earliest)
                    } else {
                        committed
                    }
                }
            };
            positions.insert(p, position);
            receivers.push(self.log.subscribe(&source.topic, p).map_err(fatal)?);
        }
        Ok(Box::new(LogSource {
            log: self.log.clone(),
            group: source.group.clone(),
            topic: source.topic.clone(),
            topic_id,
            positions,
            receivers,
            first: 0,
            rewound,
            stops: None,
        }))
    }
}

/// The warning a committed position past the log end gets when it is moved back to `resume`,
/// where log recovery ended the partition's log (`end` is the log end it was found past).
fn warn_past_end(group: &str, topic: &str, partition: u32, committed: u64, end: u64, resume: u64) {
    tracing::warn!(group = %group, topic = %topic, partition, committed, end, resume,
        "committed position past the log end; resuming where recovery ended the log");
}

/// Moves every flow position stored in `history` past the end its partition's log had when this
/// process opened it (log recovery cut records that never reached the disk before a power loss)
/// back to that end, whether or not the flow is configured now, committed durably with the
/// warning a flow gives (`warn_past_end`). Run by the engine after the log has recovered and
/// before the cache rebuild and the flows start: a flow configured later (by a restart or a
/// reload) would otherwise resume at the stale position once the log grew past it, and skip the
/// records appended between the recovered end and it. Returns the positions moved back.
///
/// Positions of a topic that no longer exists, or of an earlier topic of the name, are left
/// alone: [`HistorySink::committed`] ignores them (the flow starts at the beginning of the topic
/// as it is now) and the new topic's first commit replaces them. So are positions of a
/// partition the topic does not have (Kafka never takes partitions away: none is read) and a
/// value that cannot be read, which the flow reading it reports when it starts.
///
/// The cost is one read of the stored offsets (one entry per group and topic) and one lookup
/// per stored partition; nothing per record.
///
/// # Errors
/// A storage failure of the log or history; nothing is started then.
pub(crate) fn rewind_past_recovered_ends(
    log: &Arc<Log>,
    history: &History,
) -> Result<usize, SeamError> {
    // No flow is running yet, so no lane commits concurrently with this sink's own lock.
    HistoryCommits {
        history: history.clone(),
        log: log.clone(),
        commit_lock: std::sync::Mutex::new(()),
    }
    .rewind_past_recovered_ends()
}

/// One flow's consumer: a position per partition and a wake-up receiver per partition (until
/// the fetcher takes them as its wake signal).
struct LogSource {
    log: Arc<Log>,
    /// The flow's consumer group, named in its warnings.
    group: String,
    topic: String,
    /// The ID of the topic opened: a topic deleted and created again under the name is another
    /// topic, and reading on from these positions in it would skip its first records.
    topic_id: String,
    positions: BTreeMap<u32, u64>,
    receivers: Vec<tokio::sync::watch::Receiver<u64>>,
    /// The partition read first on the next poll; it rotates so a busy partition cannot starve
    /// the others when a poll fills up.
    first: usize,
    /// [`Source::rewound`]: found when the source was opened (the lanes it splits into have
    /// none).
    rewound: Vec<CommitOffset>,
    /// [`Source::stop_at`]: the offset each partition's reading ends at (a partition left out is
    /// not read); `None` reads to the log end. The lanes a source splits into read to the end.
    stops: Option<BTreeMap<u32, u64>>,
}

impl LogSource {
    fn read_available(&mut self, max_records: usize) -> Result<SourceBatch, SeamError> {
        if self.log.topic_id(&self.topic).map_err(fatal)? != self.topic_id {
            return Err(SeamError::fatal(format!(
                "topic {} was deleted and created again; the flow starts on the new topic from \
                 its beginning when it is restarted (POST /pipeline/reload)",
                self.topic
            )));
        }
        let mut batch = SourceBatch {
            topic_id: self.topic_id.clone(),
            ..SourceBatch::default()
        };
        let count = self.positions.len().max(1);
        let first = self.first % count;
        self.first = self.first.wrapping_add(1);
        let (head, tail): (Vec<_>, Vec<_>) = self
            .positions
            .iter_mut()
            .enumerate()
            .partition(|(i, _)| *i < first);
        for (_, (&p, position)) in tail.into_iter().chain(head) {
            let end = self.log.latest_offset(&self.topic, p).map_err(fatal)?;
            batch.end_offsets.insert(p, end);
            let earliest = self.log.earliest_offset(&self.topic, p).map_err(fatal)?;
            // Retention has deleted records at the position: a committed one the flow starts
            // from, or records it had yet to read.
            if *position < earliest {
                tracing::warn!(group = %self.group, topic = %self.topic, partition = p,
                    from = *position, to = earliest, skipped = earliest - *position,
                    "consumer position passed by retention; resuming at the log start");
                *position = earliest;
            }
            // Where this partition's reading ends: the log end, or an earlier stop.
            let stop = self
                .stops
                .as_ref()
                .map_or(end, |stops| stops.get(&p).copied().unwrap_or(0).min(end));
            if *position >= stop || batch.records.len() >= max_records {
                continue;
            }
            let wanted = max_records.saturating_sub(batch.records.len());
            let read_bytes = wanted
                .saturating_mul(SOURCE_READ_BYTES_PER_RECORD)
                .clamp(SOURCE_READ_BYTES_MIN, SOURCE_READ_BYTES_MAX);
            let records = self
                .log
                .read(&self.topic, p, *position, read_bytes)
                .map_err(fatal)?;
            for r in records {
                if r.offset < *position {
                    continue;
                }
                if batch.records.len() >= max_records || r.offset >= stop {
                    break;
                }
                *position = r.offset + 1;
                batch.records.push(SourceRecord {
                    topic: self.topic.clone(),
                    partition: p,
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    key: r.key.map(|k| k.to_vec()),
                    value: r.value.map(|v| v.to_vec()),
                    headers: r
                        .headers
                        .into_iter()
                        .map(|h| (h.key, h.value.map(|v| v.to_vec())))
                        .collect(),
                });
            }
        }
        Ok(batch)
    }
}

impl Source for LogSource {
    fn take_wake_signal(&mut self) -> Option<WakeSignal> {
        WakeSignal::new(std::mem::take(&mut self.receivers))
    }

    fn split(self: Box<Self>, lanes: usize) -> Vec<Box<dyn Source>> {
        let lanes = lanes.clamp(1, self.positions.len().max(1));
        let mut parts: Vec<LogSource> = (0..lanes)
            .map(|_| LogSource {
                log: self.log.clone(),
                group: self.group.clone(),
                topic: self.topic.clone(),
                topic_id: self.topic_id.clone(),
                positions: BTreeMap::new(),
                receivers: Vec::new(),
                first: 0,
                rewound: Vec::new(),
                stops: None,
            })
            .collect();
        // Partition i goes to lane i mod lanes, with its position and its wake-up receiver.
        let Self {
            positions,
            receivers,
            ..
        } = *self;
        for (i, ((p, position), receiver)) in positions.into_iter().zip(receivers).enumerate() {
            if let Some(part) = parts.get_mut(i % lanes) {
                part.positions.insert(p, position);
                part.receivers.push(receiver);
            }
        }
        parts
            .into_iter()
            .map(|part| Box::new(part) as Box<dyn Source>)
            .collect()
    }

    fn rewound(&self) -> Vec<CommitOffset> {
        self.rewound.clone()
    }

    fn stop_at(&mut self, ends: &BTreeMap<u32, u64>) {
        self.stops = Some(ends.clone());
    }

    /// Never waits: the partitions' append notifications are the fetcher's
    /// ([`Source::take_wake_signal`]), which waits on them between polls.
    fn poll(&mut self, max_records: usize, _wait_ms: u64) -> Result<SourceBatch, SeamError> {
        self.read_available(max_records)
    }
}

/// JOLT specs through the transform engine.
struct Jolt;

struct CompiledSpec(Spec);

impl Transform for CompiledSpec {
    fn apply(&self, doc: &Value) -> Result<Value, SeamError> {
        self.0
            .apply(doc)
            .map_err(|e| SeamError::rejected(e.to_string()))
    }
}

impl TransformCompiler for Jolt {
    fn compile(&self, spec: &Value) -> Result<Arc<dyn Transform>, SeamError> {
        let spec = Spec::parse(spec).map_err(|e| SeamError::rejected(e.to_string()))?;
        Ok(Arc::new(CompiledSpec(spec)))
    }
}

/// Cache writes through the cache engine's command interface.
struct CacheWrites {
    cache: Cache,
}

impl CacheSink for CacheWrites {
    fn write(&self, write: CacheWrite) -> Result<(), SeamError> {
        let key = Bytes::from(write.key.into_bytes());
        let frames = match write.value {
            CacheValue::String(value) => {
                vec![
                    self.cache
                        .set(CACHE_DB, &key, value.as_bytes(), write.ttl_ms),
                ]
            }
            CacheValue::Hash(fields) => {
                // Replace the hash whole, with its TTL, as one transaction.
                let mut hset = vec![Bytes::from_static(b"HSET"), key.clone()];
                for (f, v) in fields {
                    hset.push(Bytes::from(f.into_bytes()));
                    hset.push(Bytes::from(v.into_bytes()));
                }
                let mut cmds = vec![vec![Bytes::from_static(b"DEL"), key.clone()], hset];
                if let Some(ttl) = write.ttl_ms {
                    cmds.push(vec![
                        Bytes::from_static(b"PEXPIRE"),
                        key,
                        Bytes::from(ttl.max(1).to_string()),
                    ]);
                }
                // IMPORTANT: checked before anything runs. A transaction runs on past a command
                // it cannot run, so an HSET without fields (from an empty object) would fail
                // after the DEL had removed the old value.
                if let Some(Frame::Error(message)) =
                    cmds.iter().find_map(|c| Cache::transaction_refusal(c))
                {
                    return Err(SeamError::rejected(message));
                }
                self.cache
                    .execute_atomic(CACHE_DB, &cmds)
                    .unwrap_or_else(|abort| vec![abort])
            }
        };
        for frame in frames {
            if let Frame::Error(message) = frame {
                return Err(SeamError::rejected(message));
            }
        }
        Ok(())
    }
}

/// Documents and offsets through one history commit.
struct HistoryCommits {
    history: History,
    /// Where the topics' current IDs are read.
    log: Arc<Log>,
    /// Held from reading a group's stored offsets to committing the merged map: the lanes of
    /// one flow commit concurrently, each for its own partitions, and must not overwrite each
    /// other's positions.
    commit_lock: std::sync::Mutex<()>,
}

fn offsets_key(group: &str, topic: &str) -> Vec<u8> {
    format!("{OFFSETS_META_PREFIX}{group}/{topic}").into_bytes()
}

/// A flow's committed offsets for one topic, as stored in history's metadata: the offsets, the
/// ID of the topic they were read from and the offsets the flow skipped. (Before topics had IDs
/// the value was the bare offsets map, read as the ID "", which only a topic created before then
/// has; before skipped offsets were kept there was no `skipped`, read as none.)
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct StoredOffsets {
    topic_id: String,
    offsets: BTreeMap<u32, u64>,
    /// [`HistorySink::skipped`], written with the start positions that skip them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    skipped: Skipped,
}

impl StoredOffsets {
    /// The stored value of `group`'s offsets (named in the error).
    fn decode(group: &str, bytes: &[u8]) -> Result<Self, SeamError> {
        match serde_json::from_slice::<StoredOffsets>(bytes) {
            Ok(stored) => Ok(stored),
            Err(e) => match serde_json::from_slice::<BTreeMap<u32, u64>>(bytes) {
                Ok(offsets) => Ok(StoredOffsets {
                    offsets,
                    ..StoredOffsets::default()
                }),
                Err(_) => Err(SeamError::fatal(format!(
                    "stored offsets of group `{group}` are unreadable: {e}"
                ))),
            },
        }
    }
}

impl HistoryCommits {
    /// The stored offsets of `group` on `topic`, with the topic ID they belong to.
    fn read_offsets(&self, group: &str, topic: &str) -> Result<StoredOffsets, SeamError> {
        match self
            .history
            .meta_get(&offsets_key(group, topic))
            .map_err(fatal)?
        {
            Some(bytes) => StoredOffsets::decode(group, &bytes),
            None => Ok(StoredOffsets::default()),
        }
    }

    /// The stored offsets of `group` on `topic` if they belong to the topic of that name as it
    /// is now; `None` when they were committed on another one (since deleted).
    fn current_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Option<StoredOffsets>, SeamError> {
        let stored = self.read_offsets(group, topic)?;
        Ok(self.is_current(topic, &stored)?.then_some(stored))
    }

    /// Whether `stored` (offsets on `topic`) belong to the topic of that name as it is now;
    /// no offsets belong to any.
    fn is_current(&self, topic: &str, stored: &StoredOffsets) -> Result<bool, SeamError> {
        if stored.offsets.is_empty() {
            return Ok(true);
        }
        let current = match self.log.topic_id(topic) {
            Ok(id) => Some(id),
            Err(log::Error::TopicNotFound { .. }) => None,
            Err(e) => return Err(fatal(e)),
        };
        Ok(current.as_deref() == Some(stored.topic_id.as_str()))
    }

    /// [`rewind_past_recovered_ends`] over this sink's history and log.
    fn rewind_past_recovered_ends(&self) -> Result<usize, SeamError> {
        let entries = self
            .history
            .meta_prefix(OFFSETS_META_PREFIX.as_bytes())
            .map_err(fatal)?;
        let mut moved = 0;
        for (key, value) in entries {
            // `<group>/<topic>`: a topic name holds no `/` (a group may), so the last one
            // separates them. Every key under the prefix was written by `offsets_key`.
            let Some((group, topic)) = key
                .strip_prefix(OFFSETS_META_PREFIX.as_bytes())
                .and_then(|name| std::str::from_utf8(name).ok())
                .and_then(|name| name.rsplit_once('/'))
            else {
                continue;
            };
            let stored = match StoredOffsets::decode(group, &value) {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(group, topic, error = %e, "stored offsets left as they are");
                    continue;
                }
            };
            if !self.is_current(topic, &stored)? {
                continue;
            }
            let mut rewound = Vec::new();
            for (&partition, &committed) in &stored.offsets {
                let end = match self.log.opened_end_offset(topic, partition) {
                    Ok(end) => end,
                    Err(log::Error::PartitionNotFound { .. }) => continue,
                    Err(e) => return Err(fatal(e)),
                };
                if committed > end {
                    warn_past_end(group, topic, partition, committed, end, end);
                    rewound.push(CommitOffset {
                        topic: topic.to_owned(),
                        partition,
                        next_offset: end,
                        topic_id: stored.topic_id.clone(),
                    });
                }
            }
            if !rewound.is_empty() {
                // As a flow commits the position it starts from: a move back cuts the skipped
                // ranges past it, since every offset from there on will be processed.
                self.commit_offsets(group, &mut [], &rewound, true)
                    .map_err(|e| SeamError::fatal(e.to_string()))?;
                moved += rewound.len();
            }
        }
        // Durable before anything reads: a power loss that keeps the records appended from
        // here on must not bring the stale positions back.
        if moved > 0 {
            self.history.persist().map_err(fatal)?;
        }
        Ok(moved)
    }

    /// [`HistorySink::commit`], and with `starts` [`HistorySink::commit_start`]: the offsets
    /// are also start positions, whose skipped ranges are recorded in the same batch.
    fn commit_offsets(
        &self,
        group: &str,
        docs: &mut [HistoryWrite],
        offsets: &[CommitOffset],
        starts: bool,
    ) -> Result<(), HistoryCommitError> {
        // Check and convert every document by reference first: a rejection must leave `docs`
        // intact.
        let mut prepared = Vec::with_capacity(docs.len());
        for (index, write) in docs.iter().enumerate() {
            let reject = |message: String| HistoryCommitError::Rejected { index, message };
            let Some(object) = write.doc.as_object() else {
                return Err(reject("the document is not a JSON object".into()));
            };
            prepared.push(match &write.mode {
                // The common case: the document is encoded straight from its JSON, `_id` first.
                HistoryWriteMode::Upsert { key } => {
                    match EncodedDocument::from_plain_json(object, bson::Bson::String(key.clone()))
                        .map_err(|e| reject(e.to_string()))?
                    {
                        Some(encoded) => Prepared::Encoded(encoded),
                        None => Prepared::Document(extended_document(&write.doc).map_err(reject)?),
                    }
                }
                HistoryWriteMode::Insert => {
                    let shape = json_shape(&write.doc);
                    if shape.depth > history::NESTING_DEPTH_MAX {
                        return Err(reject(format!(
                            "document nesting depth {} exceeds {}",
                            shape.depth,
                            history::NESTING_DEPTH_MAX
                        )));
                    }
                    if shape.extended || shape.bson_bytes_bound > history::DOCUMENT_BYTES_MAX {
                        Prepared::Document(extended_document(&write.doc).map_err(reject)?)
                    } else {
                        Prepared::Plain
                    }
                }
            });
        }
        let mut ops = Vec::with_capacity(docs.len());
        for (write, prepared) in docs.iter().zip(prepared) {
            let (db, coll) = (write.db.clone(), write.collection.clone());
            ops.push(match (prepared, &write.mode) {
                (Prepared::Encoded(document), _) => WriteOp::UpsertEncoded { db, coll, document },
                (prepared, mode) => {
                    let mut document = match prepared {
                        Prepared::Document(document) => document,
                        // A plain JSON object within the limits converts without failing; on
                        // the impossible failure the commit fails whole, nothing written. A
                        // copy, so that `docs` stays intact if history rejects the document.
                        _ => {
                            plain_document(write.doc.clone()).map_err(HistoryCommitError::Fatal)?
                        }
                    };
                    match mode {
                        HistoryWriteMode::Insert => WriteOp::Insert { db, coll, document },
                        HistoryWriteMode::Upsert { key } => {
                            document.insert("_id", key.clone());
                            let mut filter = bson::Document::new();
                            filter.insert("_id", key.clone());
                            WriteOp::Upsert {
                                db,
                                coll,
                                filter,
                                document,
                            }
                        }
                    }
                }
            });
        }
        // Merge the batch's offsets into the group's stored map: partitions the batch did not
        // touch keep their committed position. Only this flow writes its group's key, and its
        // lanes take `commit_lock` from the read to the atomic commit, so the merge is race-free.
        let _merging = self
            .commit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut meta = Vec::new();
        let mut by_topic: BTreeMap<&str, Vec<&CommitOffset>> = BTreeMap::new();
        for o in offsets {
            by_topic.entry(o.topic.as_str()).or_default().push(o);
        }
        for (topic, list) in by_topic {
            let mut stored = self
                .read_offsets(group, topic)
                .map_err(|e| HistoryCommitError::Fatal(e.to_string()))?;
            let topic_id = list.first().map(|o| o.topic_id.clone()).unwrap_or_default();
            // Positions in an earlier topic of the name are not merged into this one's.
            if stored.topic_id != topic_id {
                stored = StoredOffsets::default();
            }
            stored.topic_id = topic_id;
            for o in list {
                let before = stored.offsets.insert(o.partition, o.next_offset);
                if starts {
                    let ranges = stored.skipped.entry(o.partition).or_default();
                    record_start(ranges, before, o.next_offset);
                    if ranges.is_empty() {
                        stored.skipped.remove(&o.partition);
                    }
                }
            }
            let value = serde_json::to_vec(&stored)
                .map_err(|e| HistoryCommitError::Fatal(e.to_string()))?;
            meta.push((offsets_key(group, topic), value));
        }
        // One operation per document, in order: a write that history refuses for its input
        // (a duplicate `_id`, an `_id` that cannot be one) names its document, which the flow
        // dead-letters before committing the rest. Anything else fails the commit whole.
        match self.history.commit_reporting(ops, meta) {
            Ok(_) => Ok(()),
            Err(history::CommitFailure {
                op: Some(index),
                error,
            }) if error.is_input_error() => Err(HistoryCommitError::Rejected {
                index,
                message: error.to_string(),
            }),
            Err(failure) => Err(HistoryCommitError::Fatal(failure.error.to_string())),
        }
    }
}

impl HistorySink for HistoryCommits {
    /// Offsets committed on another topic of the same name (one since deleted, or deleted and
    /// created again) are not this topic's positions: they are ignored, and the flow starts at
    /// the beginning of the topic as it is now, as Kafka drops a deleted topic's offsets.
    fn committed(&self, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>, SeamError> {
        if let Some(stored) = self.current_offsets(group, topic)? {
            return Ok(stored.offsets);
        }
        tracing::warn!(
            group,
            topic,
            "committed offsets belong to a deleted topic of this name; \
            starting at the beginning of the topic"
        );
        Ok(BTreeMap::new())
    }

    fn skipped(&self, group: &str, topic: &str) -> Result<Skipped, SeamError> {
        Ok(self
            .current_offsets(group, topic)?
            .map(|stored| stored.skipped)
            .unwrap_or_default())
    }

    fn commit_start(
        &self,
        group: &str,
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError> {
        self.commit_offsets(group, &mut [], offsets, true)
    }

    /// One walk over the JSON: the shape checks `commit` makes, and the Extended JSON
    /// conversion only when the document has `$` keys or may be near the size limit (plain JSON
    /// within the limits always converts). History's own refusals (a duplicate `_id` in insert
    /// mode, an `_id` that cannot be one) are found only by `commit`.
    fn check(&self, write: &HistoryWrite) -> Result<(), String> {
        if !write.doc.is_object() {
            return Err("the document is not a JSON object".into());
        }
        let shape = json_shape(&write.doc);
        if shape.depth > history::NESTING_DEPTH_MAX {
            return Err(format!(
                "document nesting depth {} exceeds {}",
                shape.depth,
                history::NESTING_DEPTH_MAX
            ));
        }
        if shape.nul_key {
            return Err("a key holds a NUL byte, which BSON cannot store".into());
        }
        if shape.extended || shape.bson_bytes_bound > history::DOCUMENT_BYTES_MAX {
            extended_document(&write.doc)?;
        }
        Ok(())
    }

    fn commit(
        &self,
        group: &str,
        docs: &mut [HistoryWrite],
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError> {
        self.commit_offsets(group, docs, offsets, false)
    }

    fn persist(&self) -> Result<(), SeamError> {
        self.history.persist().map_err(fatal)
    }
}

/// A flow's document on its way into history.
enum Prepared {
    /// Encoded from plain JSON (an upsert).
    Encoded(EncodedDocument),
    /// Converted through Extended JSON, or a large document whose size was measured.
    Document(bson::Document),
    /// A plain JSON object within the limits, converted when the write is built.
    Plain,
}

/// The rare case: Extended JSON wrappers, integers beyond `i64` or a large document. Converts
/// a copy to find the exact size or the reason it fails.
fn extended_document(doc: &Value) -> Result<bson::Document, String> {
    let document = to_document(doc.clone())?;
    let len = document.to_vec().map_or(usize::MAX, |b| b.len());
    if len > history::DOCUMENT_BYTES_MAX {
        return Err(format!(
            "document of {len} bytes exceeds {}",
            history::DOCUMENT_BYTES_MAX
        ));
    }
    Ok(document)
}

/// A JSON object as BSON, reading relaxed Extended JSON as the Data API does (`{"$date": …}`
/// becomes a date).
fn to_document(doc: Value) -> Result<bson::Document, String> {
    match bson::Bson::try_from(doc) {
        Ok(bson::Bson::Document(d)) => Ok(d),
        Ok(_) => Err("the document is not a JSON object".into()),
        Err(e) => Err(format!("not representable as BSON: {e}")),
    }
}

/// A JSON object without Extended JSON (no `$`-prefixed key, no integer beyond `i64`, as
/// [`json_shape`] checked) as BSON: the same document as [`to_document`] makes, without its
/// per-object probing for Extended JSON wrappers.
fn plain_document(doc: Value) -> Result<bson::Document, String> {
    match plain_bson(doc) {
        bson::Bson::Document(d) => Ok(d),
        _ => Err("the document is not a JSON object".into()),
    }
}

/// One plain JSON value as BSON, typed as bson's own conversion types it (integers that fit
/// `i32` as Int32, other integers as Int64, other numbers as Double).
fn plain_bson(value: Value) -> bson::Bson {
    use bson::Bson;
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        // An integer beyond `i64` is not plain ([`json_shape`] sends it to bson's conversion);
        // were one to arrive here it would become a Double.
        Value::Number(n) => history::plain_json_number(&n)
            .or_else(|| n.as_f64().map(Bson::Double))
            .unwrap_or(Bson::Null),
        Value::String(s) => Bson::String(s),
        Value::Array(items) => Bson::Array(items.into_iter().map(plain_bson).collect()),
        Value::Object(map) => {
            Bson::Document(map.into_iter().map(|(k, v)| (k, plain_bson(v))).collect())
        }
    }
}

/// What one walk over a JSON document tells about its BSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JsonShape {
    /// Nesting depth as MongoDB counts it (a flat object is depth 1).
    depth: usize,
    /// An upper bound of the BSON encoding's size in bytes (exact for plain JSON, except that
    /// every number counts as 8 bytes and array keys as 20).
    bson_bytes_bound: usize,
    /// A `$`-prefixed key (Extended JSON, which converts to other types or fails) or an
    /// integer beyond `i64` (which does not convert) is present.
    extended: bool,
    /// A key holds a NUL byte (BSON keys are NUL-terminated: it cannot be stored).
    nul_key: bool,
}

/// Walks `value` once, without allocating per node beyond the stack.
fn json_shape(value: &Value) -> JsonShape {
    // Per element of a document or array: type byte, key (array keys are decimal indexes of at
    // most 20 digits, counted at their maximum) and its terminating NUL.
    const ARRAY_KEY_BYTES_MAX: usize = 20;
    let mut shape = JsonShape {
        depth: 0,
        bson_bytes_bound: 0,
        extended: false,
        nul_key: false,
    };
    // (value, depth, key bytes of the element holding it; 0 for the root)
    let mut stack = vec![(value, 0usize, 0usize)];
    while let Some((v, depth, key_bytes)) = stack.pop() {
        shape.depth = shape.depth.max(depth);
        let element = if depth == 0 { 0 } else { 1 + key_bytes + 1 };
        let body = match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(n) => {
                if n.is_u64() && n.as_i64().is_none() {
                    shape.extended = true;
                }
                8
            }
            // Length prefix, bytes, NUL.
            Value::String(text) => 4 + text.len() + 1,
            Value::Object(map) => {
                for (key, child) in map {
                    if key.starts_with('$') {
                        shape.extended = true;
                    }
                    if key.contains('\0') {
                        shape.nul_key = true;
                    }
                    stack.push((child, depth + 1, key.len()));
                }
                4 + 1
            }
            Value::Array(items) => {
                stack.extend(items.iter().map(|c| (c, depth + 1, ARRAY_KEY_BYTES_MAX)));
                4 + 1
            }
        };
        shape.bson_bytes_bound = shape.bson_bytes_bound.saturating_add(element + body);
    }
    shape
}

/// Appends to topics of the log (forwards and dead letters).
struct LogTopics {
    log: Arc<Log>,
}

fn into_record(write: TopicWrite) -> Record {
    Record {
        key: write.key.map(Bytes::from),
        value: write.value.map(Bytes::from),
        headers: write
            .headers
            .into_iter()
            .map(|(key, value)| Header {
                key,
                value: value.map(Bytes::from),
            })
            .collect(),
        timestamp_ms: write.timestamp_ms,
    }
}

fn log_seam_error(e: &log::Error) -> SeamError {
    match e {
        // The record's fault (or its route's: a forward to a topic that does not exist, with
        // `auto_create_topics` off): it is dead-lettered, and the flow goes on.
        log::Error::RecordTooLarge { .. }
        | log::Error::TopicNameInvalid { .. }
        | log::Error::TopicNotFound { .. } => SeamError::rejected(e.to_string()),
        _ => SeamError::fatal(e.to_string()),
    }
}

impl TopicSink for LogTopics {
    fn produce(&self, topic: &str, record: TopicWrite) -> Result<(), SeamError> {
        self.log
            .append(topic, Routing::Auto, vec![into_record(record)])
            .map(|_| ())
            .map_err(|e| log_seam_error(&e))
    }
}

impl DeadLetter for LogTopics {
    /// Appends in chunks within the log's per-append limits. A letter over the dead-letter
    /// topic's `max.message.bytes` (its source record was near the limit, and the letter adds
    /// headers) is appended without its value, and then without its key, each omission
    /// recorded in a header: the letter's headers still name the source position, and a
    /// letter that cannot be appended would stop the flow on that record for good.
    fn send(&self, topic: &str, letters: Vec<TopicWrite>) -> Result<(), SeamError> {
        let mut records: Vec<Record> = letters.into_iter().map(into_record).collect();
        while !records.is_empty() {
            let take = append_prefix(&records, log::RECORDS_PER_APPEND_MAX, log::APPEND_BYTES_MAX);
            let rest = records.split_off(take);
            // Cheap: a record's key, value and headers are reference-counted `Bytes`.
            match self.log.append(topic, Routing::Auto, records.clone()) {
                Ok(_) => {}
                Err(log::Error::RecordTooLarge { max, .. }) => {
                    let fitted = records
                        .into_iter()
                        .map(|r| fit_letter(r, max))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.log
                        .append(topic, Routing::Auto, fitted)
                        .map_err(|e| fatal(&e))?;
                }
                Err(e) => return Err(fatal(&e)),
            }
            records = rest;
        }
        Ok(())
    }
}

/// How many of `records`, from the first, fit one append of at most `max_records` records and
/// `max_bytes` bytes (as [`log::record_bytes`] counts them); at least one, so that a record
/// too large on its own gets the log's own error.
fn append_prefix(records: &[Record], max_records: usize, max_bytes: u64) -> usize {
    let mut bytes = 0u64;
    let mut take = 0;
    for record in records.iter().take(max_records) {
        bytes = bytes.saturating_add(log::record_bytes(record));
        if take > 0 && bytes > max_bytes {
            break;
        }
        take += 1;
    }
    take
}

/// Header recording that a dead letter's value was left out, with its length in bytes.
pub(crate) const VALUE_OMITTED_HEADER: &str = "value.omitted.bytes";
/// Header recording that a dead letter's key was left out, with its length in bytes.
pub(crate) const KEY_OMITTED_HEADER: &str = "key.omitted.bytes";

/// Header recording that a dead letter's original headers were left out, with their count.
pub(crate) const HEADERS_OMITTED_HEADER: &str = "headers.omitted.count";
/// The headers a dead letter has of its own (`pipeline`'s dead letter, the omission notes);
/// any other is one of the original record's.
const LETTER_HEADERS: [&str; 7] = [
    "error",
    "flow",
    "source.topic",
    "source.partition",
    "source.offset",
    VALUE_OMITTED_HEADER,
    KEY_OMITTED_HEADER,
];

/// `letter` within `max` bytes: as it is, else without its value, else also without its key,
/// else also without the original record's headers, each omission recorded in a header. Fails
/// when its own headers alone are over `max` (a dead-letter topic configured smaller than a
/// letter's position and error headers).
fn fit_letter(mut letter: Record, max: u64) -> Result<Record, SeamError> {
    for omit_key in [false, true] {
        if log::record_bytes(&letter) <= max {
            return Ok(letter);
        }
        let (field, header) = if omit_key {
            (&mut letter.key, KEY_OMITTED_HEADER)
        } else {
            (&mut letter.value, VALUE_OMITTED_HEADER)
        };
        if let Some(bytes) = field.take() {
            letter.headers.push(Header {
                key: header.to_owned(),
                value: Some(Bytes::from(bytes.len().to_string())),
            });
        }
    }
    if log::record_bytes(&letter) <= max {
        return Ok(letter);
    }
    let before = letter.headers.len();
    letter
        .headers
        .retain(|h| LETTER_HEADERS.contains(&h.key.as_str()));
    let omitted = before.saturating_sub(letter.headers.len());
    if omitted > 0 {
        letter.headers.push(Header {
            key: HEADERS_OMITTED_HEADER.to_owned(),
            value: Some(Bytes::from(omitted.to_string())),
        });
    }
    if log::record_bytes(&letter) <= max {
        return Ok(letter);
    }
    Err(SeamError::fatal(format!(
        "a dead letter's headers alone take {} bytes, over the dead-letter topic's \
         max.message.bytes of {max}",
        log::record_bytes(&letter)
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{HistoryCommits, json_shape, plain_document, to_document};
    use crate::clock::ManualClock;
    use crate::history::{History, HistoryConfig};
    use crate::pipeline::{
        CommitOffset, HistoryCommitError, HistorySink, HistoryWrite, HistoryWriteMode,
    };

    fn write(mode: HistoryWriteMode, doc: serde_json::Value) -> HistoryWrite {
        HistoryWrite {
            db: "shop".into(),
            collection: "orders".into(),
            mode,
            doc,
        }
    }

    /// A history store and a log in a temporary directory, and the flows' sink over them.
    fn history_sink() -> (tempfile::TempDir, History, HistoryCommits) {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(
            &dir.path().join("history"),
            HistoryConfig::default(),
            ManualClock::shared(1_700_000_000_000),
        )
        .unwrap();
        let log = crate::log::Log::open(
            &dir.path().join("log"),
            crate::log::LogConfig::default(),
            ManualClock::shared(1_700_000_000_000),
        )
        .unwrap();
        let sink = HistoryCommits {
            history: history.clone(),
            log: std::sync::Arc::new(log),
            commit_lock: std::sync::Mutex::new(()),
        };
        (dir, history, sink)
    }

    /// Start positions record the offsets they skip in the offsets' own value; later commits
    /// keep them, a topic created again under the name drops them, and a value written before
    /// they were kept reads as none skipped.
    #[test]
    fn skipped_offsets_are_kept_with_the_committed_ones() {
        let (_dir, history, sink) = history_sink();
        let id = sink
            .log
            .create_topic("orders", Some(2), &[], false)
            .unwrap()
            .id;
        let at = |partition: u32, next_offset: u64, topic_id: &str| CommitOffset {
            topic: "orders".into(),
            partition,
            next_offset,
            topic_id: topic_id.into(),
        };
        sink.commit_start("g", &[at(0, 7, &id), at(1, 0, &id)])
            .unwrap();
        sink.commit("g", &mut [], &[at(0, 9, &id)]).unwrap();
        sink.commit_start("g", &[at(0, 12, &id)]).unwrap();
        assert_eq!(
            sink.skipped("g", "orders").unwrap(),
            [(0, vec![(0, 7), (9, 12)])].into_iter().collect()
        );
        assert_eq!(
            sink.committed("g", "orders").unwrap(),
            [(0, 12), (1, 0)].into_iter().collect()
        );

        let value = format!(r#"{{"topic_id":"{id}","offsets":{{"0":4}}}}"#);
        history
            .commit_reporting(
                Vec::new(),
                vec![(b"pipeline/offsets/g/orders".to_vec(), value.into_bytes())],
            )
            .unwrap();
        assert!(sink.skipped("g", "orders").unwrap().is_empty());
        assert_eq!(
            sink.committed("g", "orders").unwrap(),
            [(0, 4)].into_iter().collect()
        );

        sink.commit_start("g", &[at(0, 6, &id)]).unwrap();
        sink.log.delete_topic("orders").unwrap();
        let new_id = sink
            .log
            .create_topic("orders", Some(2), &[], false)
            .unwrap()
            .id;
        assert!(sink.skipped("g", "orders").unwrap().is_empty());
        sink.commit("g", &mut [], &[at(1, 1, &new_id)]).unwrap();
        assert!(sink.skipped("g", "orders").unwrap().is_empty());
    }

    /// Offsets committed on a topic that was since deleted and created again under its name
    /// are not the new topic's positions, and a source still open on the old topic stops
    /// instead of reading the new one from the old positions.
    #[test]
    fn offsets_of_a_deleted_topic_do_not_carry_over_to_one_created_again() {
        use crate::pipeline::{SourceConfig, SourceOpener as _, SourceStart, StartPosition};
        let (_dir, history, sink) = history_sink();
        let log = sink.log.clone();
        let id = log.create_topic("orders", Some(2), &[], false).unwrap().id;
        assert_eq!(id.len(), 32);
        let offsets = |next_offset: u64, topic_id: &str| {
            [CommitOffset {
                topic: "orders".into(),
                partition: 1,
                next_offset,
                topic_id: topic_id.into(),
            }]
        };
        sink.commit("g", &mut [], &offsets(5, &id)).unwrap();
        assert_eq!(
            sink.committed("g", "orders").unwrap(),
            [(1, 5)].into_iter().collect()
        );
        let sources = super::LogSources { log: log.clone() };
        let config = SourceConfig {
            topic: "orders".into(),
            group: "g".into(),
            start: StartPosition::Committed,
        };
        let mut source = sources.open(&config, &SourceStart::Earliest).unwrap();
        assert_eq!(source.poll(10, 0).unwrap().topic_id, id);

        log.delete_topic("orders").unwrap();
        let new_id = log.create_topic("orders", Some(2), &[], false).unwrap().id;
        assert_ne!(new_id, id);
        assert!(sink.committed("g", "orders").unwrap().is_empty());
        let stopped = source.poll(10, 0).unwrap_err();
        assert!(stopped.to_string().contains("created again"), "{stopped}");
        // The new topic's first commit starts its own map: partition 1 of the old topic is
        // not merged into it.
        sink.commit("g", &mut [], &offsets(2, &new_id)).unwrap();
        sink.commit(
            "g",
            &mut [],
            &[CommitOffset {
                topic: "orders".into(),
                partition: 0,
                next_offset: 1,
                topic_id: new_id.clone(),
            }],
        )
        .unwrap();
        assert_eq!(
            sink.committed("g", "orders").unwrap(),
            [(0, 1), (1, 2)].into_iter().collect()
        );
        // Offsets stored as a bare map before topics had IDs belong to the ID "" only.
        history
            .commit_reporting(
                Vec::new(),
                vec![(
                    b"pipeline/offsets/g/orders".to_vec(),
                    br#"{"0":9}"#.to_vec(),
                )],
            )
            .unwrap();
        assert!(sink.committed("g", "orders").unwrap().is_empty());
    }

    /// A position past the log end (log recovery ended it before the committed offset) is
    /// logged and committed where the flow resumes when a flow opens its source; a replay (the
    /// cache rebuild, which commits nothing) resumes there without a word, so the cut is
    /// reported once, by the flow.
    #[test]
    fn only_a_flow_reports_a_committed_position_past_the_log_end() {
        use crate::log::{Record, Routing};
        use crate::pipeline::{SourceConfig, SourceOpener as _, SourceStart, StartPosition};

        let (dir, _history, sink) = history_sink();
        let log = sink.log.clone();
        log.create_topic("orders", Some(1), &[], false).unwrap();
        let record = || Record {
            key: None,
            value: Some(bytes::Bytes::from_static(b"{}")),
            headers: Vec::new(),
            timestamp_ms: None,
        };
        log.append("orders", Routing::Partition(0), vec![record(), record()])
            .unwrap();
        let sources = super::LogSources { log: log.clone() };
        let config = SourceConfig {
            topic: "orders".into(),
            group: "g".into(),
            start: StartPosition::Committed,
        };
        let past_end = [(0, 9)].into_iter().collect();
        // The source opens on this thread: a thread-local subscriber sees what it logs.
        let open = |start: SourceStart, name: &str| {
            let path = dir.path().join(name);
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(std::fs::File::create(&path).unwrap())
                .finish();
            let source = tracing::subscriber::with_default(subscriber, || {
                sources.open(&config, &start).unwrap()
            });
            (source, std::fs::read_to_string(&path).unwrap())
        };

        let (flow, text) = open(SourceStart::Committed(past_end), "flow.log");
        assert!(
            text.contains("committed position past the log end") && text.contains("committed=9"),
            "{text}"
        );
        assert_eq!(flow.rewound().len(), 1);
        let (replay, text) = open(
            SourceStart::Replay([(0, 9)].into_iter().collect()),
            "replay.log",
        );
        assert_eq!(text, "");
        assert!(replay.rewound().is_empty());
    }

    /// At start every stored position past its partition's recovered end moves back to that
    /// end, whatever group holds it (a `/` in the name too), with the flow's warning and the
    /// skipped ranges past it cut; positions at the end, of a topic since deleted or created
    /// again, of a partition the topic lacks, and unreadable values are left as they are; a
    /// second pass moves nothing.
    #[test]
    fn every_stored_position_past_the_recovered_end_moves_back_to_it() {
        use crate::log::{Log, LogConfig, Record, Routing};

        let (dir, history, sink) = history_sink();
        let record = || Record {
            value: Some(bytes::Bytes::from_static(b"{}")),
            ..Record::default()
        };
        let id = sink
            .log
            .create_topic("orders", Some(2), &[], false)
            .unwrap()
            .id;
        sink.log
            .append("orders", Routing::Partition(0), vec![record(); 2])
            .unwrap();
        sink.log
            .append("orders", Routing::Partition(1), vec![record(); 3])
            .unwrap();
        let at = |partition: u32, next_offset: u64| CommitOffset {
            topic: "orders".into(),
            partition,
            next_offset,
            topic_id: id.clone(),
        };
        sink.commit("gone", &mut [], &[at(0, 9), at(1, 3)]).unwrap();
        sink.commit("a/b", &mut [], &[at(1, 5)]).unwrap();
        sink.commit_start("late", &[at(0, 7)]).unwrap();
        sink.commit("late", &mut [], &[at(0, 8)]).unwrap();
        let raw = |group: &str, topic: &str, value: &str| {
            let key = format!("pipeline/offsets/{group}/{topic}");
            (key.into_bytes(), value.as_bytes().to_vec())
        };
        let untouched = vec![
            raw("old", "orders", r#"{"topic_id":"0ld","offsets":{"0":9}}"#),
            raw("gone", "missing", r#"{"topic_id":"x","offsets":{"0":9}}"#),
            raw(
                "wide",
                "orders",
                &format!(r#"{{"topic_id":"{id}","offsets":{{"5":9}}}}"#),
            ),
            raw("bad", "orders", "not json"),
        ];
        history
            .commit_reporting(Vec::new(), untouched.clone())
            .unwrap();
        let log_dir = dir.path().join("log");
        drop(sink);
        // Another process: this log's partitions end at 2 and 3.
        let log = Log::open(
            &log_dir,
            LogConfig::default(),
            ManualClock::shared(1_700_000_000_000),
        )
        .unwrap();
        let log = std::sync::Arc::new(log);
        let sink = HistoryCommits {
            history: history.clone(),
            log: log.clone(),
            commit_lock: std::sync::Mutex::new(()),
        };

        let path = dir.path().join("start.log");
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(std::fs::File::create(&path).unwrap())
            .finish();
        let moved = tracing::subscriber::with_default(subscriber, || {
            super::rewind_past_recovered_ends(&log, &history).unwrap()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(moved, 3, "{text}");
        for line in [
            "group=gone topic=orders partition=0 committed=9 end=2",
            "group=a/b topic=orders partition=1 committed=5 end=3",
            "group=late topic=orders partition=0 committed=8 end=2",
        ] {
            assert!(
                text.contains("committed position past the log end") && text.contains(line),
                "{line}: {text}"
            );
        }
        let committed = |group| sink.committed(group, "orders").unwrap();
        assert_eq!(committed("gone"), [(0, 2), (1, 3)].into_iter().collect());
        assert_eq!(committed("a/b"), [(1, 3)].into_iter().collect());
        assert_eq!(committed("late"), [(0, 2)].into_iter().collect());
        // Offsets 2 on will be processed: the skipped range 0..7 now ends at 2.
        assert_eq!(
            sink.skipped("late", "orders").unwrap(),
            [(0, vec![(0, 2)])].into_iter().collect()
        );
        for (key, value) in &untouched {
            assert_eq!(history.meta_get(key).unwrap().as_ref(), Some(value));
        }
        assert_eq!(
            super::rewind_past_recovered_ends(&log, &history).unwrap(),
            0
        );
    }

    /// A source told where to stop reads each partition up to its end and no partition left
    /// out, however large the poll, even when one read of the log returns records past it.
    #[test]
    fn a_log_source_stops_each_partition_at_its_end() {
        use crate::log::{Record, Routing};
        use crate::pipeline::{SourceConfig, SourceOpener as _, SourceStart, StartPosition};
        let (_dir, _history, sink) = history_sink();
        let log = sink.log.clone();
        log.create_topic("orders", Some(3), &[], false).unwrap();
        for p in 0..3 {
            let records = (0..10)
                .map(|n| Record {
                    key: None,
                    value: Some(format!("{{\"n\":{n}}}").into()),
                    headers: Vec::new(),
                    timestamp_ms: None,
                })
                .collect();
            log.append("orders", Routing::Partition(p), records)
                .unwrap();
        }
        let config = SourceConfig {
            topic: "orders".into(),
            group: "g".into(),
            start: StartPosition::Committed,
        };
        let mut source = super::LogSources { log }
            .open(&config, &SourceStart::Earliest)
            .unwrap();
        source.stop_at(&[(0, 3), (1, 0)].into_iter().collect());
        let batch = source.poll(100, 0).unwrap();
        let read: Vec<(u32, u64)> = batch
            .records
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect();
        assert_eq!(read, [(0, 0), (0, 1), (0, 2)]);
        assert_eq!(batch.end_offsets.get(&0), Some(&10), "the log end, for lag");
        assert!(source.poll(100, 0).unwrap().records.is_empty());
    }

    #[test]
    fn a_document_history_refuses_is_named_and_the_batch_stays_intact() {
        let (_dir, history, sink) = history_sink();
        let offsets = [CommitOffset {
            topic: "orders".into(),
            partition: 0,
            next_offset: 3,
            topic_id: "00ff".into(),
        }];
        let upsert = |key: &str| HistoryWriteMode::Upsert { key: key.into() };
        let mut docs = vec![
            write(HistoryWriteMode::Insert, json!({"_id": 1, "a": 1})),
            write(upsert("k"), json!({"b": 2})),
            // The same `_id` again: a duplicate key, found only by history.
            write(HistoryWriteMode::Insert, json!({"_id": 1, "a": 3})),
            // An array cannot be an `_id`.
            write(HistoryWriteMode::Insert, json!({"_id": [1, 2]})),
            // A key holding a NUL byte cannot be stored.
            write(upsert("n"), json!({"a\u{0}b": 1})),
        ];
        let before = docs.clone();
        let mut rejected = Vec::new();
        loop {
            match sink.commit("g", &mut docs, &offsets) {
                Ok(()) => break,
                Err(HistoryCommitError::Rejected { index, message }) => {
                    assert_eq!(docs, before_without(&before, &rejected), "docs intact");
                    rejected.push((docs.remove(index).doc, message));
                }
                Err(HistoryCommitError::Fatal(m)) => panic!("fatal: {m}"),
            }
        }
        let reasons: Vec<String> = rejected.iter().map(|(d, m)| format!("{d} {m}")).collect();
        assert_eq!(rejected.len(), 3, "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("NUL")), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("duplicate key")),
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|r| r.contains("array")), "{reasons:?}");
        let stored = history
            .find("shop", "orders", &bson::doc! {}, &Default::default())
            .unwrap();
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert_eq!(
            history
                .meta_get(b"pipeline/offsets/g/orders")
                .unwrap()
                .as_deref(),
            Some(&br#"{"topic_id":"00ff","offsets":{"0":3}}"#[..]),
            "the offsets committed with the rest"
        );
    }

    #[test]
    fn check_refuses_exactly_what_commit_refuses_for_its_content() {
        let (_dir, _history, sink) = history_sink();
        // An object nesting `depth` levels (a flat object is 1).
        let nested = |depth: usize| {
            let mut v = json!({"leaf": 1});
            for _ in 1..depth {
                v = json!({ "a": v });
            }
            v
        };
        let max = crate::history::NESTING_DEPTH_MAX;
        let docs = [
            json!({"a": 1, "b": [1, "x", {"c": null}]}),
            nested(max),
            nested(max + 1),
            json!({"a\u{0}b": 1}),
            json!({"nested": {"x\u{0}": 1}}),
            json!({"d": {"$date": "2026-01-01T00:00:00Z"}}),
            json!({"d": {"$date": "not a date"}}),
            json!([1, 2]),
            json!("text"),
        ];
        for (i, doc) in docs.iter().enumerate() {
            for mode in [
                HistoryWriteMode::Insert,
                HistoryWriteMode::Upsert {
                    key: format!("k{i}"),
                },
            ] {
                let mut one = vec![write(mode.clone(), doc.clone())];
                if let HistoryWriteMode::Insert = mode
                    && let Some(map) = one[0].doc.as_object_mut()
                {
                    map.insert("_id".into(), json!(format!("i{i}")));
                }
                let checked = sink.check(&one[0]);
                let committed = sink.commit("g", &mut one, &[]);
                assert!(
                    !matches!(committed, Err(HistoryCommitError::Fatal(_))),
                    "{doc}: {committed:?}"
                );
                assert_eq!(
                    checked.is_ok(),
                    committed.is_ok(),
                    "{mode:?} {doc}: check {checked:?}, commit {committed:?}"
                );
            }
        }
    }

    #[test]
    fn a_hash_write_the_cache_cannot_run_is_refused_before_the_old_value_goes() {
        use crate::cache::{Cache, CacheConfig};
        use crate::pipeline::{CacheSink, CacheValue, CacheWrite, SeamErrorKind};
        let cache = Cache::new(
            CacheConfig::default(),
            ManualClock::shared(1_700_000_000_000),
        );
        let sink = super::CacheWrites {
            cache: cache.clone(),
        };
        let hash = |fields: Vec<(String, String)>| CacheWrite {
            key: "customer:1".into(),
            value: CacheValue::Hash(fields),
            ttl_ms: None,
        };
        sink.write(hash(vec![("name".into(), "Ann".into())]))
            .unwrap();
        // An empty object has no field for HSET: refused, and the stored hash stays.
        let refused = sink.write(hash(Vec::new())).unwrap_err();
        assert_eq!(refused.kind, SeamErrorKind::Rejected, "{refused:?}");
        let stored = cache.execute(
            super::CACHE_DB,
            &[
                bytes::Bytes::from_static(b"HGET"),
                bytes::Bytes::from_static(b"customer:1"),
                bytes::Bytes::from_static(b"name"),
            ],
        );
        assert_eq!(stored, crate::cache::Frame::Bulk("Ann".into()));
    }

    #[test]
    fn a_forward_to_a_topic_that_does_not_exist_is_the_records_fault() {
        use crate::log::{Log, LogConfig};
        use crate::pipeline::{SeamErrorKind, TopicSink, TopicWrite};
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            auto_create_topics: false,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config, ManualClock::shared(1_700_000_000_000)).unwrap();
        let sink = super::LogTopics {
            log: std::sync::Arc::new(log),
        };
        let refused = sink
            .produce(
                "nowhere",
                TopicWrite {
                    key: None,
                    value: Some(b"{}".to_vec()),
                    headers: Vec::new(),
                    timestamp_ms: None,
                },
            )
            .unwrap_err();
        // Rejected: dead-lettered, where a fatal error would stop the flow for good.
        assert_eq!(refused.kind, SeamErrorKind::Rejected, "{refused:?}");
    }

    /// `before` without the documents already rejected (by value).
    fn before_without(
        before: &[HistoryWrite],
        rejected: &[(serde_json::Value, String)],
    ) -> Vec<HistoryWrite> {
        before
            .iter()
            .filter(|w| !rejected.iter().any(|(d, _)| *d == w.doc))
            .cloned()
            .collect()
    }

    #[test]
    fn plain_documents_convert_as_bsons_own_conversion_does() {
        let doc = serde_json::json!({
            "a": 1, "b": -2_147_483_649_i64, "c": 2.5, "d": 1e300, "e": "x", "f": null,
            "g": true, "h": [1, 2_147_483_648_u64, {"i": [[], {}]}], "j": {"k": {"l": 0.1}},
            "m": 9_223_372_036_854_775_807_i64,
        });
        assert!(!json_shape(&doc).extended);
        assert_eq!(
            plain_document(doc.clone()).unwrap(),
            to_document(doc).unwrap()
        );
    }

    #[test]
    fn the_shape_bounds_the_bson_size_and_flags_extended_json() {
        for doc in [
            json!({}),
            json!({"a": 1, "b": "text", "c": null, "d": true, "e": 1.5}),
            json!({"lines": [{"q": 1, "p": 2.5}, {"q": 2, "p": 3.5}], "n": {"m": {"k": "v"}}}),
        ] {
            let shape = json_shape(&doc);
            let len = to_document(doc.clone()).unwrap().to_vec().unwrap().len();
            assert!(shape.bson_bytes_bound >= len, "{doc}: {shape:?} < {len}");
            assert!(!shape.extended);
        }
        // Strings and flat objects are exact.
        let doc = json!({"name": "x", "o": {"k": "vv"}});
        let len = to_document(doc.clone()).unwrap().to_vec().unwrap().len();
        assert_eq!(json_shape(&doc).bson_bytes_bound, len);
        assert_eq!(json_shape(&doc).depth, 2);
        assert!(json_shape(&json!({"d": {"$date": "2026-01-01T00:00:00Z"}})).extended);
        assert!(json_shape(&json!({"n": u64::MAX})).extended);
        assert!(!json_shape(&json!({"n": i64::MAX})).extended);
    }

    mod dead_letters {
        use std::sync::Arc;

        use super::super::{
            HEADERS_OMITTED_HEADER, KEY_OMITTED_HEADER, LogTopics, VALUE_OMITTED_HEADER,
            append_prefix, into_record,
        };
        use crate::clock::ManualClock;
        use crate::log::{self, Log, LogConfig, StoredRecord};
        use crate::pipeline::{DeadLetter, TopicWrite};

        /// A dead-letter topic of one partition whose records may take `max` bytes.
        fn topic(max: u64) -> (tempfile::TempDir, Arc<Log>) {
            let dir = tempfile::tempdir().unwrap();
            let log = Log::open(
                dir.path(),
                LogConfig::default(),
                ManualClock::shared(1_700_000_000_000),
            )
            .unwrap();
            log.create_topic(
                "dlq",
                Some(1),
                &[("max.message.bytes".into(), max.to_string())],
                false,
            )
            .unwrap();
            (dir, Arc::new(log))
        }

        fn letter(key: usize, value: usize) -> TopicWrite {
            TopicWrite {
                key: Some(vec![b'k'; key]),
                value: Some(vec![b'v'; value]),
                headers: vec![("error".into(), Some(b"not JSON".to_vec()))],
                timestamp_ms: None,
            }
        }

        fn stored(log: &Log) -> Vec<StoredRecord> {
            log.read("dlq", 0, 0, 1 << 20).unwrap()
        }

        fn header<'r>(record: &'r StoredRecord, name: &str) -> Option<&'r [u8]> {
            record
                .headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value.as_deref())
        }

        #[test]
        fn a_letter_at_the_topics_limit_is_kept_whole() {
            // 10 key + 1000 value + "error" + "not JSON" = 1023 bytes.
            let (_dir, log) = topic(1023);
            let sink = LogTopics { log: log.clone() };
            sink.send("dlq", vec![letter(10, 1000)]).unwrap();
            let records = stored(&log);
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].value.as_deref(), Some(&[b'v'; 1000][..]));
            assert_eq!(records[0].key.as_deref(), Some(&[b'k'; 10][..]));
            assert!(header(&records[0], VALUE_OMITTED_HEADER).is_none());
        }

        #[test]
        fn a_letter_over_the_limit_loses_its_value_then_its_key_and_says_so() {
            let (_dir, log) = topic(1022);
            let sink = LogTopics { log: log.clone() };
            // One byte over: the value goes. A big key too: the key goes as well. Letters
            // around them are appended whole, in order.
            sink.send(
                "dlq",
                vec![
                    letter(1, 1),
                    letter(10, 1000),
                    letter(1000, 1000),
                    letter(2, 2),
                ],
            )
            .unwrap();
            let records = stored(&log);
            assert_eq!(records.len(), 4);
            assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
            assert_eq!(records[1].value, None);
            assert_eq!(records[1].key.as_deref(), Some(&[b'k'; 10][..]));
            assert_eq!(
                header(&records[1], VALUE_OMITTED_HEADER),
                Some(&b"1000"[..])
            );
            assert_eq!(header(&records[1], "error"), Some(&b"not JSON"[..]));
            assert_eq!(
                (records[2].key.as_ref(), records[2].value.as_ref()),
                (None, None)
            );
            assert_eq!(
                header(&records[2], VALUE_OMITTED_HEADER),
                Some(&b"1000"[..])
            );
            assert_eq!(header(&records[2], KEY_OMITTED_HEADER), Some(&b"1000"[..]));
            assert_eq!(records[3].value.as_deref(), Some(&b"vv"[..]));
        }

        #[test]
        fn a_letter_still_over_the_limit_loses_the_records_own_headers_and_says_so() {
            let (_dir, log) = topic(200);
            let sink = LogTopics { log: log.clone() };
            let mut big = letter(1, 1);
            big.headers
                .insert(0, ("trace".into(), Some(vec![b't'; 300])));
            big.headers.insert(1, ("empty".into(), None));
            sink.send("dlq", vec![big]).unwrap();
            let records = stored(&log);
            let names: Vec<&str> = records[0].headers.iter().map(|h| h.key.as_str()).collect();
            assert_eq!(
                names,
                [
                    "error",
                    VALUE_OMITTED_HEADER,
                    KEY_OMITTED_HEADER,
                    HEADERS_OMITTED_HEADER
                ]
            );
            assert_eq!(header(&records[0], HEADERS_OMITTED_HEADER), Some(&b"2"[..]));
        }

        #[test]
        fn a_letter_whose_headers_alone_are_over_the_limit_is_an_error() {
            let (_dir, log) = topic(12);
            let sink = LogTopics { log: log.clone() };
            let err = sink.send("dlq", vec![letter(1, 1)]).unwrap_err();
            assert!(err.is_fatal());
            assert!(err.to_string().contains("headers alone"), "{err}");
            assert!(stored(&log).is_empty());
        }

        #[test]
        fn appends_are_cut_by_record_count_and_by_bytes() {
            let records: Vec<_> = (0..5).map(|_| into_record(letter(0, 92))).collect();
            // Each record counts 92 + 5 + 8 = 105 bytes.
            assert_eq!(log::record_bytes(&records[0]), 105);
            assert_eq!(append_prefix(&records, 10, 315), 3);
            assert_eq!(append_prefix(&records, 10, 314), 2);
            assert_eq!(append_prefix(&records, 2, 10_000), 2);
            // One record over the byte limit still goes alone (and gets the log's error).
            assert_eq!(append_prefix(&records, 10, 1), 1);
            assert_eq!(append_prefix(&[], 10, 1), 0);
        }
    }
}
