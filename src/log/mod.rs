//! The Kafka stand-in: topics of partitions, each an append-only sequence of segment files in
//! Kafka's RecordBatch v2 format, with committed offsets and REST consumer instances.
//!
//! [`Log`] is the facade: topics (create, ensure, describe, delete), [`Log::append`] with
//! Kafka's default partitioner, [`Log::read`], tailing through [`Log::subscribe`], offsets by
//! position or timestamp, retention, and consumer groups. Everything here is synchronous and
//! blocking; async callers go through `spawn_blocking`. A background thread owned by the `Log`
//! runs `interval_ms(N)` fsyncs, retention and idle-consumer expiry, and stops when the `Log` is
//! dropped.
//!
//! Layout under the log directory: `topics/<topic>/<partition>/<base offset:020>.{log,index,
//! timeindex}` with the partition's `recovery-point` file beside them, `meta/` (a fjall
//! database: topic configs and committed offsets) and `deleting/<topic>/` (a deleted topic's
//! files while they are removed).
//!
//! A topic exists when its metadata record does: deletion removes the record first, then
//! renames the directory into `deleting/` and removes it; creation writes fresh partition
//! directories and then the record. A topic directory without a record (a crash in between)
//! is removed at open and before a creation, so it never contributes records.

mod error;
mod groups;
mod helper;
mod index;
mod partitioner;
mod reader;
mod recovery;
mod recovery_point;
mod segment;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::shutdown::FaultLatch;

pub use error::{Error, Result};
pub use groups::{
    CommittedOffset, ConsumedRecord, ConsumerSettings, GroupDescription, GroupMember, OffsetReset,
    Subscription, TopicPartition,
};
pub use index::{OffsetIndex, TimeIndex};
pub use partitioner::{murmur2, partition_for_key};
pub use reader::RecordBatch;
pub use recovery::fuzz_log_segment;
pub use segment::{
    BatchError, BatchInfo, BatchRecords, HeaderViews, RecordView, crc32c, decode_batch,
    decode_batch_frame, decode_batch_info, encode_batch, record_bytes,
};
use writer::LogShared;
pub use writer::Partition;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Longest topic name, in bytes (Kafka's limit; names become directory names).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most topics one log holds; each partition keeps one open file per segment.
pub const TOPICS_MAX: usize = 1024;
/// Most partitions per topic.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 256;
/// Ceiling for `max.message.bytes`: key + value + headers of one record, in bytes. The default
/// is Kafka's 1 MiB (+12); a topic may raise it up to this.
pub const RECORD_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// Kafka's default `max.message.bytes`.
pub const MAX_MESSAGE_BYTES_DEFAULT: u64 = 1_048_588;
/// Most records in one append (one produce request).
pub const RECORDS_PER_APPEND_MAX: usize = 10_000;
/// Most record bytes (as [`record_bytes`] counts them) in one append.
pub const APPEND_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest encoded batch: every append's records plus per-record framing (at most 64 bytes of
/// varints and attributes per record) plus the header.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024 + 64 * RECORDS_PER_APPEND_MAX + 61;
/// Largest `segment.bytes`; index positions are u32, and a segment may overrun it by one batch.
pub const SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Smallest `segment.bytes`.
pub const SEGMENT_BYTES_MIN: u64 = 1024;
/// Largest `max_bytes` of one read (the REST Proxy's cap).
pub const READ_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes of a segment one read chunk (one buffer) spans while scanning, before it is extended
/// to the next batch boundary the offset index knows: large enough that a fetch touches few
/// buffers, small enough to stay in the CPU cache.
pub const READ_CHUNK_BYTES: usize = 1024 * 1024;
/// Most bytes of one positional read within a chunk: few syscalls per MiB, and the batches a
/// read completes are still in the core's L2 cache when their CRC-32C is checked.
pub const READ_PIECE_BYTES: usize = 256 * 1024;
/// Fetch chunks at least this large are read and verified in two parts at once, the second
/// on the log's read helper thread (`parallel_read`).
pub const PARALLEL_CHUNK_BYTES_MIN: usize = 256 * 1024;
/// Most idle read buffers a log keeps for reuse (at most [`READ_BUFFER_BYTES_MAX`] each).
pub const READ_BUFFERS_MAX: usize = 4;
/// Largest read buffer kept for reuse; bigger ones (a batch larger than a chunk) are freed.
pub const READ_BUFFER_BYTES_MAX: usize = 2 * READ_CHUNK_BYTES;
/// Longest consumer group name, in bytes.
pub const GROUP_NAME_BYTES_MAX: usize = 255;
/// Most REST consumer instances across all groups.
pub const CONSUMER_INSTANCES_MAX: usize = 1024;
/// Most consumer groups with committed offsets: a commit that would add one more is refused
/// (groups that only have instances are bounded by [`CONSUMER_INSTANCES_MAX`]).
pub const CONSUMER_GROUPS_MAX: usize = 1024;
/// Most topics in a subscription or partitions in an assignment or offsets request.
pub const SUBSCRIPTION_TOPICS_MAX: usize = 1024;
/// Longest `topic_pattern` of a subscription, in bytes (a topic name is at most 249).
pub const TOPIC_PATTERN_BYTES_MAX: usize = 4096;
/// Largest compiled `topic_pattern` (the `regex` crate's size limit): each subscribed instance
/// holds its compiled pattern.
pub const TOPIC_PATTERN_COMPILED_BYTES_MAX: usize = 1 << 20;
/// Longest commit metadata string, in bytes.
pub const COMMIT_METADATA_BYTES_MAX: usize = 4096;
/// Longest `interval_ms(N)`, in ms.
pub const FLUSH_INTERVAL_MS_MAX: u64 = 60 * 60 * 1000;
/// Longest wait of the background thread between ticks while data waits for an interval
/// fsync, and its shortest wait otherwise, in ms.
const BACKGROUND_TICK_MS_MAX: u64 = 100;
/// Longest wait of the background thread while no data waits for an interval fsync, in ms: a
/// due retention check and consumer expiry wait at most this long.
const IDLE_WAIT_MS_MAX: u64 = 1000;

const _: () = assert!(RECORD_BYTES_MAX <= APPEND_BYTES_MAX);
const _: () = assert!(MAX_MESSAGE_BYTES_DEFAULT <= RECORD_BYTES_MAX);
const _: () = assert!((APPEND_BYTES_MAX as usize) < BATCH_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MAX + (BATCH_BYTES_MAX as u64) < u32::MAX as u64);
const _: () = assert!(READ_CHUNK_BYTES <= READ_BYTES_MAX);
const _: () = assert!(READ_CHUNK_BYTES <= READ_BUFFER_BYTES_MAX);
const _: () = assert!(READ_PIECE_BYTES <= READ_CHUNK_BYTES);

/// An offset within a partition: the position of a record, from 0.
pub type Offset = u64;

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// A record header: a UTF-8 key and optional bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

/// A record to append.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Key; keyed records go to `murmur2(key) % partitions`.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Create time in ms since the epoch; `None` means "now" by the log's clock.
    pub timestamp_ms: Option<i64>,
}

/// A record read back, with its offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset in the partition.
    pub offset: Offset,
    /// Create time in ms since the epoch.
    pub timestamp_ms: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

impl StoredRecord {
    /// Bytes the record counts against `max.message.bytes` (as [`record_bytes`] counts them).
    #[must_use]
    pub fn bytes_len(&self) -> u64 {
        segment::counted_bytes(
            self.key.as_deref(),
            self.value.as_deref(),
            self.headers
                .iter()
                .map(|h| (h.key.as_str(), h.value.as_deref())),
        )
    }
}

/// Where an append's records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// All to this partition.
    Partition(u32),
    /// All to the partition of this key (Kafka's default partitioner).
    Key(Bytes),
    /// Each keyed record to its key's partition; unkeyed records of one append stick together
    /// on one partition, chosen round-robin per append.
    Auto,
}

/// Where one appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: Offset,
    /// Its timestamp (given or assigned), in ms.
    pub timestamp_ms: i64,
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// When appended data is fsynced, and so when an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FlushPolicy {
    /// fsync before acknowledging; concurrent appends share one fsync (group commit).
    Always,
    /// Acknowledge after the write; a background thread fsyncs dirty partitions every N ms.
    IntervalMs(u64),
    /// Acknowledge after the write and leave fsync to the OS (Kafka's default); shutdown still
    /// fsyncs.
    Never,
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::IntervalMs(n) => write!(f, "interval_ms({n})"),
            Self::Never => f.write_str("never"),
        }
    }
}

impl FromStr for FlushPolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        match s {
            "always" => return Ok(Self::Always),
            "never" => return Ok(Self::Never),
            _ => {}
        }
        let n = s
            .strip_prefix("interval_ms(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("`{s}` is not one of always, never, interval_ms(N)"))?;
        if n == 0 || n > FLUSH_INTERVAL_MS_MAX {
            return Err(format!(
                "interval {n} ms is outside 1..={FLUSH_INTERVAL_MS_MAX}"
            ));
        }
        Ok(Self::IntervalMs(n))
    }
}

impl TryFrom<String> for FlushPolicy {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<FlushPolicy> for String {
    fn from(p: FlushPolicy) -> Self {
        p.to_string()
    }
}

/// The `[log]` configuration section: log-wide settings and the defaults of every topic config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Create a topic on its first produce, subscription or tail (Kafka's
    /// `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    pub default_partitions: u32,
    /// Default `flush.policy`: `always`, `interval_ms(N)` or `never`.
    pub flush_policy: FlushPolicy,
    /// Default `segment.bytes`: roll the active segment at this size.
    pub segment_bytes: u64,
    /// Default `segment.ms`: roll the active segment at this age.
    pub segment_ms: u64,
    /// Default `retention.ms`: delete sealed segments whose newest record is older; -1 keeps
    /// them forever.
    pub retention_ms: i64,
    /// Default `retention.bytes` per partition; -1 means no size limit.
    pub retention_bytes: i64,
    /// Default `max.message.bytes` per record (at most [`RECORD_BYTES_MAX`]).
    pub max_message_bytes: u64,
    /// Bytes between offset-index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// REST consumer instances idle this long are deleted (`consumer.instance.timeout.ms`).
    pub consumer_instance_timeout_ms: u64,
    /// How often retention runs, in ms.
    pub retention_check_interval_ms: u64,
    /// Read and verify the second half of each large fetch chunk (at least
    /// [`PARALLEL_CHUNK_BYTES_MIN`]) on a helper thread while the fetching thread does the
    /// first.
    pub parallel_read: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            auto_create_topics: true,
            default_partitions: 3,
            flush_policy: FlushPolicy::IntervalMs(100),
            segment_bytes: SEGMENT_BYTES_MAX,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: MAX_MESSAGE_BYTES_DEFAULT,
            index_interval_bytes: 4096,
            consumer_instance_timeout_ms: 300_000,
            retention_check_interval_ms: 300_000,
            parallel_read: true,
        }
    }
}

impl LogConfig {
    /// The commented TOML section for `streamcache config default`.
    #[must_use]
    pub fn default_toml() -> String {
        let d = Self::default();
        format!(
            "\n[log]\n\
             # Create topics on first produce (Kafka's auto.create.topics.enable).\n\
             auto_create_topics = {}\n\
             # Partitions of an auto-created topic (1..={PARTITIONS_PER_TOPIC_MAX}).\n\
             default_partitions = {}\n\
             # fsync policy: \"always\" (group commit before ack), \"interval_ms(N)\" or \"never\".\n\
             flush_policy = \"{}\"\n\
             # Roll a segment at this many bytes ({SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}) or this age in ms.\n\
             segment_bytes = {}\n\
             segment_ms = {}\n\
             # Delete whole sealed segments older than retention_ms or beyond retention_bytes per partition; -1 = never.\n\
             retention_ms = {}\n\
             retention_bytes = {}\n\
             # Largest record (key + value + headers) in bytes, at most {RECORD_BYTES_MAX}.\n\
             max_message_bytes = {}\n\
             # Bytes between sparse offset-index entries.\n\
             index_interval_bytes = {}\n\
             # Idle REST consumer instances are deleted after this many ms.\n\
             consumer_instance_timeout_ms = {}\n\
             # How often retention runs, in ms.\n\
             retention_check_interval_ms = {}\n\
             # Read and verify large fetch chunks in two halves at once, the second on a helper thread.\n\
             parallel_read = {}\n",
            d.auto_create_topics,
            d.default_partitions,
            d.flush_policy,
            d.segment_bytes,
            d.segment_ms,
            d.retention_ms,
            d.retention_bytes,
            d.max_message_bytes,
            d.index_interval_bytes,
            d.consumer_instance_timeout_ms,
            d.retention_check_interval_ms,
            d.parallel_read,
        )
    }

    /// Checks every value against its limit.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] or [`Error::PartitionCountInvalid`] naming the setting.
    pub fn check(&self) -> Result<()> {
        if self.default_partitions == 0 || self.default_partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(Error::PartitionCountInvalid {
                len: u64::from(self.default_partitions),
                max: PARTITIONS_PER_TOPIC_MAX,
            });
        }
        TopicConfig::from_entries(self, &[]).map(|_| ())
    }
}

/// The effective configuration of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// `flush.policy`.
    pub flush_policy: FlushPolicy,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: u64,
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: u64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
}

/// The topic config names this log understands, as Kafka spells them.
pub const TOPIC_CONFIG_NAMES: [&str; 7] = [
    "flush.policy",
    "index.interval.bytes",
    "max.message.bytes",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

impl TopicConfig {
    /// The log defaults with `entries` (Kafka config name, value) applied and checked.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] for an unknown name, an unparsable value or a value outside its
    /// limit.
    pub fn from_entries(defaults: &LogConfig, entries: &[(String, String)]) -> Result<Self> {
        let mut c = Self {
            flush_policy: defaults.flush_policy,
            segment_bytes: defaults.segment_bytes,
            segment_ms: defaults.segment_ms,
            retention_ms: defaults.retention_ms,
            retention_bytes: defaults.retention_bytes,
            max_message_bytes: defaults.max_message_bytes,
            index_interval_bytes: defaults.index_interval_bytes,
        };
        for (name, value) in entries {
            let bad = |reason: String| Error::ConfigInvalid {
                name: name.clone(),
                value: value.clone(),
                reason,
            };
            let int = |v: &str| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| bad("not an integer".into()))
            };
            let pos =
                |v: &str| int(v).and_then(|n| u64::try_from(n).map_err(|_| bad("negative".into())));
            match name.as_str() {
                "flush.policy" => c.flush_policy = value.parse().map_err(bad)?,
                "segment.bytes" => c.segment_bytes = pos(value)?,
                "segment.ms" => c.segment_ms = pos(value)?,
                "retention.ms" => c.retention_ms = int(value)?,
                "retention.bytes" => c.retention_bytes = int(value)?,
                "max.message.bytes" => c.max_message_bytes = pos(value)?,
                "index.interval.bytes" => c.index_interval_bytes = pos(value)?,
                _ => {
                    return Err(bad(format!(
                        "unknown config; known: {}",
                        TOPIC_CONFIG_NAMES.join(", ")
                    )));
                }
            }
        }
        let range = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(Error::ConfigInvalid {
                    name: name.to_owned(),
                    value: value.to_string(),
                    reason: format!("outside {min}..={max}"),
                })
            }
        };
        range(
            "segment.bytes",
            c.segment_bytes,
            SEGMENT_BYTES_MIN,
            SEGMENT_BYTES_MAX,
        )?;
        range("segment.ms", c.segment_ms, 1, u64::MAX)?;
        range(
            "max.message.bytes",
            c.max_message_bytes,
            1,
            RECORD_BYTES_MAX,
        )?;
        range(
            "index.interval.bytes",
            c.index_interval_bytes,
            1,
            SEGMENT_BYTES_MAX,
        )?;
        for (name, v) in [
            ("retention.ms", c.retention_ms),
            ("retention.bytes", c.retention_bytes),
        ] {
            if v < -1 {
                return Err(Error::ConfigInvalid {
                    name: name.into(),
                    value: v.to_string(),
                    reason: "below -1".into(),
                });
            }
        }
        Ok(c)
    }

    /// Every config as (Kafka name, value), sorted by name.
    #[must_use]
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("flush.policy", self.flush_policy.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("retention.ms", self.retention_ms.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ]
    }
}

/// Checks a topic name: `[a-zA-Z0-9._-]{1,249}`, not `.` or `..`.
///
/// # Errors
/// [`Error::TopicNameInvalid`] naming the rule.
pub fn check_topic_name(name: &str) -> Result<()> {
    let bad = |reason| Error::TopicNameInvalid {
        name: name.chars().take(64).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(bad("longer than 249 bytes"));
    }
    if name == "." || name == ".." {
        return Err(bad("`.` and `..` are reserved"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(
            "only ASCII letters, digits, `.`, `_` and `-` are allowed",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The facade
// ---------------------------------------------------------------------------------------------

/// A topic as described to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: u32,
    /// Its effective configuration.
    pub config: TopicConfig,
    /// Which topic of this name it is: 32 random hex digits given at creation, so a topic
    /// deleted and created again under the same name has another one (Kafka's topic ID). Empty
    /// for a topic created before topics kept one.
    pub id: String,
}

/// One open topic.
#[derive(Debug)]
struct Topic {
    /// Description.
    info: TopicInfo,
    /// Its partitions, by number.
    partitions: Vec<Arc<Partition>>,
    /// Round-robin counter for unkeyed appends.
    next_sticky: AtomicU32,
}

/// The persisted record of a topic in the `topics` keyspace.
#[derive(Debug, Serialize, Deserialize)]
struct TopicRecord {
    /// Partition count.
    partitions: u32,
    /// Config overrides as given at creation.
    configs: Vec<(String, String)>,
    /// [`TopicInfo::id`]; absent in records written before topics kept one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    id: String,
}

/// State shared with the background thread.
struct Inner {
    /// The log directory.
    dir: PathBuf,
    /// Log-wide configuration.
    config: LogConfig,
    /// Time source.
    clock: SharedClock,
    /// Open topics by name.
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation and deletion.
    topic_admin: Mutex<()>,
    /// Metadata database.
    db: fjall::Database,
    /// Topic records.
    topics_ks: fjall::Keyspace,
    /// Committed offsets.
    offsets_ks: fjall::Keyspace,
    /// The groups with a committed offset in `offsets_ks` (a new one beyond
    /// [`CONSUMER_GROUPS_MAX`] is refused). Changed only under `topic_admin`, with the offsets.
    offset_groups: Mutex<BTreeSet<String>>,
    /// REST consumer instances.
    groups: Mutex<groups::Registry>,
    /// Retention checks (with consumer expiry) the background thread has finished, so a test
    /// can wait for one instead of sleeping.
    housekeeping_passes: Mutex<u64>,
    /// Signalled after each of those checks.
    housekeeping_cv: Condvar,
    /// Fault latch, read buffers and flush bell of every partition.
    shared: LogShared,
}

/// The partitioned log.
///
/// ```
/// use streamcache::clock::SystemClock;
/// use streamcache::log::{Log, LogConfig, Record, Routing};
///
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path(), LogConfig::default(), SystemClock::shared())?;
/// let record = Record { value: Some("hello".into()), ..Record::default() };
/// let placed = log.append("orders", Routing::Partition(0), vec![record])?;
/// let read = log.read("orders", 0, placed[0].offset, 1 << 20)?;
/// assert_eq!(read[0].value.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Log {
    /// Shared state.
    inner: Arc<Inner>,
    /// Handle of the background thread (stopped through the flush bell).
    background: Mutex<Option<JoinHandle<()>>>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering every partition, and starts its
    /// background thread.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Meta`] when files cannot be opened, [`Error::Corrupt`] when a
    /// segment is corrupt before its tail, [`Error::ConfigInvalid`] for a bad `config`,
    /// [`Error::MetaCorrupt`] for topic directories without a metadata store.
    pub fn open(dir: &Path, config: LogConfig, clock: SharedClock) -> Result<Self> {
        config.check()?;
        std::fs::create_dir_all(dir.join("topics")).map_err(error::io_at(dir))?;
        // Whether the metadata store existed before this open: topic directories without
        // metadata are cleaned up only then (see `remove_orphan_topic_dirs`).
        let meta_existed = dir.join("meta").exists();
        let db = fjall::Database::builder(dir.join("meta"))
            .open()
            .map_err(error::meta("open"))?;
        let topics_ks = db
            .keyspace("topics", fjall::KeyspaceCreateOptions::default)
            .map_err(error::meta("open keyspace topics"))?;
        let offsets_ks = db
            .keyspace("offsets", fjall::KeyspaceCreateOptions::default)
            .map_err(error::meta("open keyspace offsets"))?;
        let shared = LogShared {
            poisoned: Arc::new(FaultLatch::default()),
            buffers: Arc::new(reader::ReadBuffers::new(config.parallel_read)),
            bell: Arc::default(),
        };
        let mut records = BTreeMap::new();
        for guard in topics_ks.iter() {
            let (k, v) = guard.into_inner().map_err(error::meta("list topics"))?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let record: TopicRecord =
                serde_json::from_slice(&v).map_err(|e| Error::MetaCorrupt {
                    key: name.clone(),
                    reason: e.to_string(),
                })?;
            records.insert(name, record);
        }
        let offset_groups = groups::groups_with_offsets(&offsets_ks)?;
        remove_orphan_topic_dirs(dir, &records, meta_existed)?;
        let mut topics = BTreeMap::new();
        for (name, record) in records {
            let topic = open_topic(dir, &name, &record, &config, &clock, &shared)?;
            topics.insert(name, Arc::new(topic));
        }
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            groups: Mutex::new(groups::Registry::default()),
            housekeeping_passes: Mutex::new(0),
            housekeeping_cv: Condvar::new(),
            config,
            clock,
            topics: RwLock::new(topics),
            topic_admin: Mutex::new(()),
            db,
            topics_ks,
            offsets_ks,
            offset_groups: Mutex::new(offset_groups),
            shared,
        });
        let background = spawn_background(inner.clone()).map_err(error::io_at(dir))?;
        Ok(Self {
            inner,
            background: Mutex::new(Some(background)),
        })
    }

    /// The log-wide configuration.
    #[must_use]
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Whether an fsync has failed; the log then refuses writes until reopened.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.inner.shared.poisoned.is_tripped()
    }

    /// Resolves once a failed fsync has stopped writes.
    pub(crate) async fn poisoned(&self) {
        self.inner.shared.poisoned.wait().await;
    }

    /// Creates a topic with `partitions` (the configured default when `None`) and config
    /// overrides. With `validate_only` nothing is created.
    ///
    /// # Errors
    /// [`Error::TopicNameInvalid`], [`Error::TopicExists`], [`Error::PartitionCountInvalid`],
    /// [`Error::ConfigInvalid`], [`Error::TooManyTopics`], or storage errors.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: &[(String, String)],
        validate_only: bool,
    ) -> Result<TopicInfo> {
        check_topic_name(name)?;
        let count = partitions.unwrap_or(self.inner.config.default_partitions);
        if count == 0 || count > PARTITIONS_PER_TOPIC_MAX {
            return Err(Error::PartitionCountInvalid {
                len: u64::from(count),
                max: PARTITIONS_PER_TOPIC_MAX,
            });
        }
        let config = TopicConfig::from_entries(&self.inner.config, configs)?;
        let _admin = self.inner.topic_admin.lock()?;
        let len = {
            let topics = self.inner.topics.read()?;
            if topics.contains_key(name) {
                return Err(Error::TopicExists {
                    topic: name.to_owned(),
                });
            }
            topics.len() + 1
        };
        if len > TOPICS_MAX {
            return Err(Error::TooManyTopics {
                len,
                max: TOPICS_MAX,
            });
        }
        let info = TopicInfo {
            name: name.to_owned(),
            partitions: count,
            config,
            id: format!("{:032x}", rand::random::<u128>()),
        };
        if validate_only {
            return Ok(info);
        }
        let record = TopicRecord {
            partitions: count,
            configs: configs.to_vec(),
            id: info.id.clone(),
        };
        // A directory of this name has no metadata record (the topic list above is loaded from
        // the records): it is left from a deletion or creation that did not finish, and its
        // segments must not become the new topic's.
        if remove_topic_dir(&self.inner.dir, OsStr::new(name))? {
            tracing::warn!(
                topic = name,
                "removed a leftover directory of the topic before creating it"
            );
        }
        let topic = open_topic(
            &self.inner.dir,
            name,
            &record,
            &self.inner.config,
            &self.inner.clock,
            &self.inner.shared,
        )?;
        writer::sync_dir(&self.inner.dir.join("topics"))?;
        let value = serde_json::to_vec(&record).map_err(|e| Error::MetaCorrupt {
            key: name.to_owned(),
            reason: e.to_string(),
        })?;
        self.inner
            .topics_ks
            .insert(name, value)
            .map_err(error::meta("insert topic"))?;
        self.inner
            .db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(error::meta("persist topic"))?;
        self.inner
            .topics
            .write()?
            .insert(name.to_owned(), Arc::new(topic));
        tracing::info!(topic = name, partitions = count, "topic created");
        Ok(info)
    }

    /// Returns the topic, creating it with defaults when missing and auto-creation is on.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`] when it is missing and auto-creation is off; otherwise as
    /// [`Log::create_topic`].
    pub fn ensure_topic(&self, name: &str) -> Result<TopicInfo> {
        self.topic_or_create(name).map(|t| t.info.clone())
    }

    /// Deletes a topic and its files, with every group's committed offsets and every consumer
    /// instance's positions on it.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], or storage errors.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let _admin = self.inner.topic_admin.lock()?;
        let Some(removed) = self.inner.topics.write()?.remove(name) else {
            return Err(Error::TopicNotFound {
                topic: name.to_owned(),
            });
        };
        // IMPORTANT: before the files move. An append still holding a partition would write
        // on into the deleted files, and a roll or recovery-point write would land in the
        // directory of a topic re-created under the name.
        for partition in &removed.partitions {
            partition.close()?;
        }
        // Kafka removes the committed offsets of deleted partitions: a topic re-created under
        // this name must not resume its groups at the old topic's offsets.
        let mut batch = self.inner.db.batch();
        batch.remove(&self.inner.topics_ks, name);
        let keys = groups::offset_keys_of_topic(&self.inner.offsets_ks, name)?;
        for key in &keys {
            batch.remove(&self.inner.offsets_ks, key.clone());
        }
        batch.commit().map_err(error::meta("remove topic"))?;
        self.inner.forget_emptied_groups(&keys)?;
        self.inner
            .db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(error::meta("persist topic removal"))?;
        self.inner.groups.lock()?.forget_topic(name);
        // The topic is gone once its record is: a crash from here on leaves a directory
        // without a record, which the next open (or a creation of the name) removes.
        remove_topic_dir(&self.inner.dir, OsStr::new(name))?;
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Every topic name, sorted.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only.
    pub fn topics(&self) -> Result<Vec<String>> {
        Ok(self.inner.topics.read()?.keys().cloned().collect())
    }

    /// Describes one topic.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`].
    pub fn topic(&self, name: &str) -> Result<TopicInfo> {
        self.get_topic(name).map(|t| t.info.clone())
    }

    /// A topic's [`TopicInfo::id`].
    ///
    /// # Errors
    /// [`Error::TopicNotFound`].
    pub fn topic_id(&self, name: &str) -> Result<String> {
        self.get_topic(name).map(|t| t.info.id.clone())
    }

    /// One partition's handle.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::PartitionNotFound`].
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        self.inner.partition(topic, partition)
    }

    /// Appends `records` to `topic` (auto-created when allowed) and returns where each landed,
    /// in input order, once the topic's flush policy is met.
    ///
    /// # Errors
    /// [`Error::TooManyRecords`], [`Error::RecordTooLarge`], [`Error::AppendTooLarge`],
    /// [`Error::PartitionNotFound`], topic errors as [`Log::ensure_topic`], [`Error::Poisoned`]
    /// and I/O errors.
    pub fn append(
        &self,
        topic: &str,
        routing: Routing,
        records: Vec<Record>,
    ) -> Result<Vec<Appended>> {
        if records.len() > RECORDS_PER_APPEND_MAX {
            return Err(Error::TooManyRecords {
                len: records.len(),
                max: RECORDS_PER_APPEND_MAX,
            });
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.topic_or_create(topic)?;
        let max = t.info.config.max_message_bytes;
        let mut total = 0u64;
        for r in &records {
            let len = record_bytes(r);
            if len > max {
                return Err(Error::RecordTooLarge { len, max });
            }
            total += len;
        }
        if total > APPEND_BYTES_MAX {
            return Err(Error::AppendTooLarge {
                len: total,
                max: APPEND_BYTES_MAX,
            });
        }
        let n = t.info.partitions;
        let check = |p: u32| {
            if p < n {
                Ok(p)
            } else {
                Err(Error::PartitionNotFound {
                    topic: topic.to_owned(),
                    partition: i64::from(p),
                    partitions: n,
                })
            }
        };
        let sticky = t.next_sticky.fetch_add(1, Ordering::Relaxed) % n;
        let targets: Vec<u32> = match &routing {
            Routing::Partition(p) => vec![check(*p)?; records.len()],
            Routing::Key(key) => vec![partition_for_key(key, n); records.len()],
            Routing::Auto => records
                .iter()
                .map(|r| r.key.as_deref().map_or(sticky, |k| partition_for_key(k, n)))
                .collect(),
        };
        let mut buckets: BTreeMap<u32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
        for (i, (record, p)) in records.into_iter().zip(targets).enumerate() {
            let bucket = buckets.entry(p).or_default();
            bucket.0.push(i);
            bucket.1.push(record);
        }
        let mut out = vec![
            Appended {
                partition: 0,
                offset: 0,
                timestamp_ms: 0
            };
            buckets.values().map(|b| b.0.len()).sum()
        ];
        for (p, (indexes, batch)) in buckets {
            let partition = t.partitions.get(p as usize).ok_or(Error::LockPoisoned)?;
            let placed = partition.append(&batch)?;
            for (k, (i, r)) in indexes.into_iter().zip(&batch).enumerate() {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Appended {
                        partition: p,
                        offset: placed.base_offset + k as u64,
                        timestamp_ms: r.timestamp_ms.unwrap_or(placed.timestamp_ms),
                    };
                }
            }
        }
        Ok(out)
    }

    /// Reads records of one partition from `offset`, up to about `max_bytes` (capped at
    /// [`READ_BYTES_MAX`]; at least one batch).
    ///
    /// # Errors
    /// As [`Log::partition`] and [`Partition::read`].
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>> {
        self.partition(topic, partition)?
            .read(offset, max_bytes.min(READ_BYTES_MAX))
    }

    /// A receiver of the partition's end offset that wakes on every append (no polling).
    ///
    /// # Errors
    /// As [`Log::partition`].
    pub fn subscribe(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<tokio::sync::watch::Receiver<Offset>> {
        Ok(self.partition(topic, partition)?.subscribe())
    }

    /// Raw RecordBatch v2 bytes of one partition from the batch holding `offset`, up to about
    /// `max_bytes` (at least one batch) — Kafka's fetch, each batch's CRC-32C verified; the
    /// first batch may start before `offset`.
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_batches(
        &self,
        topic: &str,
        partition: u32,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>> {
        self.partition(topic, partition)?
            .read_batches(offset, max_bytes.min(READ_BYTES_MAX))
    }

    /// Verified batches of one partition from the one holding `offset`, up to about
    /// `max_bytes` (at least one batch): the consumer read path, whose records decode lazily
    /// and zero-copy ([`RecordBatch::records`]). See [`Partition::fetch`].
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<Vec<RecordBatch>> {
        self.partition(topic, partition)?
            .fetch(offset, max_bytes.min(READ_BYTES_MAX))
    }

    /// The log start offset of a partition.
    ///
    /// # Errors
    /// As [`Log::partition`].
    pub fn earliest_offset(&self, topic: &str, partition: u32) -> Result<Offset> {
        self.partition(topic, partition)?.earliest_offset()
    }

    /// The log end offset (next offset) of a partition.
    ///
    /// # Errors
    /// As [`Log::partition`].
    pub fn latest_offset(&self, topic: &str, partition: u32) -> Result<Offset> {
        Ok(self.partition(topic, partition)?.latest_offset())
    }

    /// The partition's end offset when this process opened it, after recovery: records at or
    /// past it were appended since.
    ///
    /// # Errors
    /// As [`Log::partition`].
    pub fn opened_end_offset(&self, topic: &str, partition: u32) -> Result<Offset> {
        Ok(self.partition(topic, partition)?.opened_end_offset())
    }

    /// The first offset with a timestamp at or after `timestamp_ms`, if any.
    ///
    /// # Errors
    /// As [`Log::partition`] and [`Partition::offset_for_timestamp`].
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<Offset>> {
        self.partition(topic, partition)?
            .offset_for_timestamp(timestamp_ms)
    }

    /// Runs retention on every partition now, with the clock's wall time. Returns the number
    /// of segments deleted.
    ///
    /// # Errors
    /// I/O errors from deleting files.
    pub fn enforce_retention(&self) -> Result<usize> {
        enforce_retention(&self.inner)
    }

    /// fsyncs every partition and the metadata database, writes the active segments' indexes,
    /// and records each partition's log end in its `recovery-point` file (after fsyncing every
    /// segment from the old point on), so the next open re-validates nothing. Called at
    /// shutdown.
    ///
    /// # Errors
    /// The first I/O or metadata error.
    pub fn flush(&self) -> Result<()> {
        // Every partition and the metadata are flushed whatever one partition returned; the
        // first error is returned. A partition whose fsync failed writes no index or
        // checkpoint, which would claim data durable that may not be.
        let mut first = None;
        for topic in self.all_topics()? {
            for p in &topic.partitions {
                let flushed = p
                    .flush()
                    .and_then(|()| p.write_active_indexes())
                    .and_then(|()| p.checkpoint());
                if let Err(e) = flushed {
                    first.get_or_insert(e);
                }
            }
        }
        let meta = self
            .inner
            .db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(error::meta("persist"));
        match (first, meta) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        }
    }

    /// Sets the fault latch as a failed fsync does (tests of what follows one).
    #[cfg(test)]
    pub(crate) fn trip_fault(&self) {
        self.inner.shared.poisoned.trip();
    }

    fn all_topics(&self) -> Result<Vec<Arc<Topic>>> {
        Ok(self.inner.topics.read()?.values().cloned().collect())
    }

    fn get_topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner.get_topic(name)
    }

    fn topic_or_create(&self, name: &str) -> Result<Arc<Topic>> {
        match self.get_topic(name) {
            Err(Error::TopicNotFound { .. }) if self.inner.config.auto_create_topics => {
                match self.create_topic(name, None, &[], false) {
                    Ok(_) | Err(Error::TopicExists { .. }) => self.get_topic(name),
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Ok(mut bg) = self.background.lock()
            && let Some(handle) = bg.take()
        {
            self.inner.shared.bell.stop();
            let _ = handle.join();
        }
    }
}

/// Directory under the log directory that a deleted topic's directory is renamed into before
/// its files are removed, so `topics/` loses the whole topic in one rename.
const DELETING_DIR: &str = "deleting";

/// Removes `topics/<name>` if it exists: renames it into [`DELETING_DIR`], fsyncs both
/// directories, then removes it there. Returns whether there was one.
fn remove_topic_dir(dir: &Path, name: &OsStr) -> Result<bool> {
    let topics = dir.join("topics");
    let from = topics.join(name);
    if std::fs::symlink_metadata(&from).is_err() {
        return Ok(false);
    }
    let deleting = dir.join(DELETING_DIR);
    let to = deleting.join(name);
    remove_path(&to)?;
    std::fs::rename(&from, &to).map_err(error::io_at(&from))?;
    writer::sync_dir(&topics)?;
    writer::sync_dir(&deleting)?;
    remove_path(&to)?;
    writer::sync_dir(&deleting)?;
    Ok(true)
}

/// Removes a file or a directory tree, if present.
fn remove_path(path: &Path) -> Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    removed.map_err(error::io_at(path))
}

/// At open: finishes removals cut short in [`DELETING_DIR`], and removes every entry of
/// `topics/` without a metadata record (left by a crash inside a topic's deletion or creation),
/// logging each, so its segments never come back as a topic's records. When the metadata
/// store did not exist before this open (`meta_existed` false), such an entry is
/// [`Error::MetaCorrupt`] instead: nothing is deleted.
fn remove_orphan_topic_dirs(
    dir: &Path,
    records: &BTreeMap<String, TopicRecord>,
    meta_existed: bool,
) -> Result<()> {
    let deleting = dir.join(DELETING_DIR);
    std::fs::create_dir_all(&deleting).map_err(error::io_at(&deleting))?;
    writer::sync_dir(dir)?;
    for entry in std::fs::read_dir(&deleting).map_err(error::io_at(&deleting))? {
        let path = entry.map_err(error::io_at(&deleting))?.path();
        remove_path(&path)?;
        tracing::warn!(path = %path.display(), "finished removing a deleted topic's files");
    }
    writer::sync_dir(&deleting)?;
    let topics = dir.join("topics");
    for entry in std::fs::read_dir(&topics).map_err(error::io_at(&topics))? {
        let name = entry.map_err(error::io_at(&topics))?.file_name();
        if name.to_str().is_some_and(|n| records.contains_key(n)) {
            continue;
        }
        // IMPORTANT: without the metadata store (lost, or a data directory put together by
        // hand) every topic directory would look orphaned: refuse to open rather than delete
        // topics that may hold acknowledged records.
        if !meta_existed {
            return Err(Error::MetaCorrupt {
                key: name.to_string_lossy().into_owned(),
                reason: format!(
                    "a topic directory under {} but no topic metadata store ({});                      restore `meta` or remove the topic directories",
                    topics.display(),
                    dir.join("meta").display()
                ),
            });
        }
        remove_topic_dir(dir, &name)?;
        tracing::warn!(
            entry = %name.to_string_lossy(),
            "removed a topic directory without metadata (a topic deletion or creation was cut short)"
        );
    }
    Ok(())
}

/// Opens every partition of a topic.
fn open_topic(
    dir: &Path,
    name: &str,
    record: &TopicRecord,
    defaults: &LogConfig,
    clock: &SharedClock,
    shared: &LogShared,
) -> Result<Topic> {
    let config = TopicConfig::from_entries(defaults, &record.configs)?;
    let mut partitions = Vec::new();
    for p in 0..record.partitions {
        let pdir = dir.join("topics").join(name).join(p.to_string());
        partitions.push(Arc::new(Partition::open(
            name,
            p,
            pdir,
            config.clone(),
            clock.clone(),
            shared.clone(),
        )?));
    }
    let topic_dir = dir.join("topics").join(name);
    writer::sync_dir(&topic_dir)?;
    Ok(Topic {
        info: TopicInfo {
            name: name.to_owned(),
            partitions: record.partitions,
            config,
            id: record.id.clone(),
        },
        partitions,
        next_sticky: AtomicU32::new(0),
    })
}

/// Retention over every partition.
fn enforce_retention(inner: &Inner) -> Result<usize> {
    let now = inner.clock.now_ms();
    let topics: Vec<Arc<Topic>> = inner.topics.read()?.values().cloned().collect();
    let mut deleted = 0;
    for t in topics {
        for p in &t.partitions {
            deleted += p.enforce_retention(now)?;
        }
    }
    Ok(deleted)
}

impl Inner {
    /// The monotonic clock in ms: the time base of every consumer instance's idle timer.
    fn now_mono_ms(&self) -> u64 {
        self.clock.monotonic_ns() / 1_000_000
    }

    /// A topic by name.
    fn get_topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()?
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TopicNotFound {
                topic: name.to_owned(),
            })
    }

    /// One partition's handle.
    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        let t = self.get_topic(topic)?;
        t.partitions
            .get(partition as usize)
            .cloned()
            .ok_or_else(|| Error::PartitionNotFound {
                topic: topic.to_owned(),
                partition: i64::from(partition),
                partitions: t.info.partitions,
            })
    }

    /// Waits up to `timeout` until the background thread has finished `passes` retention
    /// checks; returns whether it has.
    #[cfg(test)]
    fn wait_housekeeping(&self, passes: u64, timeout: Duration) -> bool {
        let Ok(done) = self.housekeeping_passes.lock() else {
            return false;
        };
        self.housekeeping_cv
            .wait_timeout_while(done, timeout, |done| *done < passes)
            .is_ok_and(|(done, _)| *done >= passes)
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // fjall's handles do not implement Debug; the directory identifies the database.
        f.debug_struct("Inner")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Starts the thread that runs interval fsyncs, retention and consumer expiry.
///
/// IMPORTANT: it ticks (every [`background_tick_ms`]) only while some `interval_ms(N)`
/// partition has data waiting for its fsync; otherwise it sleeps until an append rings the
/// [`writer::FlushBell`] or the next retention check is due (at most [`IDLE_WAIT_MS_MAX`]), so
/// an idle log wakes about once a second instead of every N ms.
fn spawn_background(inner: Arc<Inner>) -> std::io::Result<JoinHandle<()>> {
    // Read before the thread starts, which may be much later on a busy machine: the first
    // retention check is due one interval after the log opened.
    let mut last_retention_ms = inner.now_mono_ms();
    std::thread::Builder::new().name("streamcache-log".into()).spawn(move || {
        let bell = inner.shared.bell.clone();
        loop {
            bell.listen();
            let topics: Vec<Arc<Topic>> = match inner.topics.read() {
                Ok(t) => t.values().cloned().collect(),
                Err(_) => return,
            };
            let mut waiting = false;
            for t in &topics {
                for p in &t.partitions {
                    match p.flush_if_due() {
                        Ok(left) => waiting |= left,
                        Err(e) => tracing::error!(topic = %t.info.name, partition = p.id(), error = %e, "interval fsync failed; the log stops accepting writes"),
                    }
                }
            }
            let now = inner.now_mono_ms();
            if now.saturating_sub(last_retention_ms) >= inner.config.retention_check_interval_ms {
                last_retention_ms = now;
                if let Err(e) = enforce_retention(&inner) {
                    tracing::error!(error = %e, "retention failed");
                }
                if let Err(e) = inner.expire_idle_consumers() {
                    tracing::error!(error = %e, "consumer expiry failed");
                }
                if let Ok(mut passes) = inner.housekeeping_passes.lock() {
                    *passes += 1;
                    inner.housekeeping_cv.notify_all();
                }
            }
            let until_retention = last_retention_ms
                .saturating_add(inner.config.retention_check_interval_ms)
                .saturating_sub(now)
                .clamp(BACKGROUND_TICK_MS_MAX, IDLE_WAIT_MS_MAX);
            let wait_ms = if waiting {
                // Appends are not worth a wake-up now: the tick fsyncs them.
                bell.ignore();
                background_tick_ms(&inner).min(until_retention)
            } else {
                until_retention
            };
            if bell.wait(Duration::from_millis(wait_ms), !waiting) == writer::Woke::Stopped {
                return;
            }
        }
    })
}

/// How long the background thread waits: the shortest interval policy in use, at most
/// [`BACKGROUND_TICK_MS_MAX`].
fn background_tick_ms(inner: &Inner) -> u64 {
    let mut tick = BACKGROUND_TICK_MS_MAX;
    let mut consider = |p: FlushPolicy| {
        if let FlushPolicy::IntervalMs(n) = p {
            tick = tick.min(n);
        }
    };
    consider(inner.config.flush_policy);
    if let Ok(topics) = inner.topics.read() {
        for t in topics.values() {
            consider(t.info.config.flush_policy);
        }
    }
    tick.max(1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ConsumerSettings, Error, IDLE_WAIT_MS_MAX, Log, LogConfig, Record, Routing};
    use crate::clock::ManualClock;

    #[test]
    fn a_partition_handle_kept_past_its_topics_deletion_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::shared(1_767_225_600_000);
        // Segments of the smallest size, each record larger: an append through the old
        // handle would roll, creating a segment and a recovery-point file in the partition
        // directory.
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config.clone(), clock.clone()).unwrap();
        log.create_topic("t", Some(1), &[], false).unwrap();
        let record = || Record {
            value: Some(vec![b'v'; 2000].into()),
            ..Record::default()
        };
        log.append("t", Routing::Partition(0), vec![record()])
            .unwrap();
        let old = log.partition("t", 0).unwrap();
        log.delete_topic("t").unwrap();
        log.create_topic("t", Some(1), &[], false).unwrap();
        assert!(
            matches!(old.append(&[record()]), Err(Error::TopicNotFound { .. })),
            "an append to the deleted topic's partition is refused"
        );
        assert_eq!(old.enforce_retention(u64::MAX).unwrap(), 0);
        old.write_active_indexes().unwrap();
        log.append("t", Routing::Partition(0), vec![record()])
            .unwrap();
        drop((old, log));
        // The re-created topic opens as it was written: one record at offset 0.
        let log = Log::open(dir.path(), config, clock).unwrap();
        assert_eq!(log.latest_offset("t", 0).unwrap(), 1);
        assert_eq!(log.read("t", 0, 0, 1 << 20).unwrap().len(), 1);
    }

    #[test]
    fn the_background_expiry_keeps_an_instance_used_within_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::shared(1_767_225_600_000);
        let config = LogConfig {
            consumer_instance_timeout_ms: 10_000,
            retention_check_interval_ms: 10_000,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config, clock.clone()).unwrap();
        log.create_consumer("g", Some("idle"), ConsumerSettings::default())
            .unwrap();
        clock.advance(Duration::from_millis(1));
        log.create_consumer("g", Some("busy"), ConsumerSettings::default())
            .unwrap();
        // The background check is now due: "idle" was last used exactly the timeout ago,
        // "busy" one millisecond less.
        clock.advance(Duration::from_millis(9_999));
        // The bound is far above the thread's longest sleep: this waits for the thread.
        assert!(
            log.inner
                .wait_housekeeping(1, Duration::from_millis(30 * IDLE_WAIT_MS_MAX)),
            "the background thread ran no retention check"
        );
        let instances = log.inner.groups.lock().unwrap().count();
        assert_eq!(instances, 1, "only the idle instance expires");
        assert!(log.consumer_settings("g", "busy").is_ok());
    }

    #[test]
    fn the_background_thread_fsyncs_an_interval_topic_after_an_append() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::shared(1_767_225_600_000);
        let log = Log::open(dir.path(), LogConfig::default(), clock.clone()).unwrap();
        log.create_topic(
            "t",
            Some(1),
            &[("flush.policy".into(), "interval_ms(50)".into())],
            false,
        )
        .unwrap();
        let partition = log.partition("t", 0).unwrap();
        // The interval has passed since the partition's last fsync (its opening), so the
        // appended record is due for the background thread at once.
        clock.advance(Duration::from_millis(50));
        let record = Record {
            value: Some("x".into()),
            ..Record::default()
        };
        log.append("t", Routing::Partition(0), vec![record])
            .unwrap();
        // Only the background thread fsyncs here; the bound is far above its longest sleep, so
        // this waits for the thread, not for time.
        assert!(
            partition.wait_synced(Duration::from_millis(30 * IDLE_WAIT_MS_MAX)),
            "the background thread did not fsync the appended record"
        );
    }
}
