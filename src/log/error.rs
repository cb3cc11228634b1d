//! The log's error type: one variant per failure, each carrying the context (topic, partition,
//! segment path and byte position, limit and length) needed to act on it.
//!
//! Nothing here knows about HTTP; `api::kafka` maps variants to REST Proxy error codes.

use std::path::PathBuf;

/// Result alias for log operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topic name breaks `[a-zA-Z0-9._-]{1,249}` or is `.`/`..`.
    #[error("topic name {name:?} is invalid: {reason}")]
    TopicNameInvalid {
        /// The offending name (possibly truncated for display).
        name: String,
        /// What rule it breaks.
        reason: &'static str,
    },
    /// No topic of that name exists (and auto-creation is off or not applicable).
    #[error("topic {topic} does not exist")]
    TopicNotFound {
        /// The topic.
        topic: String,
    },
    /// A topic of that name already exists.
    #[error("topic {topic} already exists")]
    TopicExists {
        /// The topic.
        topic: String,
    },
    /// The topic count would exceed [`crate::log::TOPICS_MAX`].
    #[error("too many topics: {len} > {max}")]
    TooManyTopics {
        /// Count after the operation.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A partition number outside the topic.
    #[error("topic {topic} has no partition {partition} (it has {partitions})")]
    PartitionNotFound {
        /// The topic.
        topic: String,
        /// The requested partition.
        partition: i64,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// A partition count of zero or above [`crate::log::PARTITIONS_PER_TOPIC_MAX`].
    #[error("partition count {len} is outside 1..={max}")]
    PartitionCountInvalid {
        /// The requested count.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// A topic configuration entry with an unknown name or a bad value.
    #[error("topic config {name}={value:?} is invalid: {reason}")]
    ConfigInvalid {
        /// The config name, e.g. `retention.ms`.
        name: String,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A committed offset's metadata is longer than [`crate::log::COMMIT_METADATA_BYTES_MAX`]
    /// (Kafka's `offset.metadata.max.bytes`; its `OffsetMetadataTooLargeException`).
    #[error("offset metadata of {len} bytes exceeds {max} bytes")]
    MetadataTooLarge {
        /// The metadata's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// One record is larger than the topic's `max.message.bytes`.
    #[error("record of {len} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// Key + value + header bytes of the record.
        len: u64,
        /// The topic's limit.
        max: u64,
    },
    /// More records in one append than [`crate::log::RECORDS_PER_APPEND_MAX`].
    #[error("{len} records in one append exceed the limit {max}")]
    TooManyRecords {
        /// Records given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An append whose total record bytes exceed [`crate::log::APPEND_BYTES_MAX`].
    #[error("append of {len} bytes exceeds the limit {max}")]
    AppendTooLarge {
        /// Total bytes given.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A read offset before the log start or after the log end.
    #[error(
        "offset {offset} is out of range for {topic}-{partition} (valid {earliest}..={latest})"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The requested offset.
        offset: u64,
        /// The log start offset.
        earliest: u64,
        /// The log end offset (the next offset to be written).
        latest: u64,
    },
    /// A stored batch failed verification before the tail of a segment, or a read found a
    /// batch that does not decode.
    #[error("segment {segment} is corrupt at byte {position}: {reason}")]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte position of the bad batch in the file.
        position: u64,
        /// What check failed.
        reason: String,
    },
    /// A file operation failed.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The metadata database (topics, committed offsets) failed.
    #[error("log metadata database: {context}: {source}")]
    Meta {
        /// What was being done.
        context: &'static str,
        /// What fjall said.
        #[source]
        source: fjall::Error,
    },
    /// A persisted metadata record does not decode.
    #[error("log metadata record {key} is corrupt: {reason}")]
    MetaCorrupt {
        /// The record's key, printable.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An fsync failed earlier; the log refuses writes until it is reopened, because the
    /// kernel may have dropped the dirty pages it could not write.
    #[error("the log stopped accepting writes after an earlier fsync failure; restart the process")]
    Poisoned,
    /// A lock was poisoned by a panic in another thread.
    #[error("internal lock poisoned")]
    LockPoisoned,
    /// A consumer group name that is empty, too long or contains NUL.
    #[error("consumer group name is invalid: {reason}")]
    GroupNameInvalid {
        /// What rule it breaks.
        reason: &'static str,
    },
    /// A consumer instance name that is empty, too long, or holds NUL or `/` (it is one
    /// segment of the instance's URL).
    #[error("consumer instance name is invalid: {reason}")]
    InstanceNameInvalid {
        /// What rule it breaks.
        reason: &'static str,
    },
    /// No consumer instance of that name in the group (never created, deleted or expired).
    #[error("consumer instance {instance} not found in group {group}")]
    InstanceNotFound {
        /// The group.
        group: String,
        /// The instance.
        instance: String,
    },
    /// A consumer instance of that name already exists in the group.
    #[error("consumer instance {instance} already exists in group {group}")]
    InstanceExists {
        /// The group.
        group: String,
        /// The instance.
        instance: String,
    },
    /// More consumer instances than [`crate::log::CONSUMER_INSTANCES_MAX`].
    #[error("too many consumer instances: {len} > {max}")]
    TooManyInstances {
        /// Count after the operation.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A commit would give more groups committed offsets than
    /// [`crate::log::CONSUMER_GROUPS_MAX`].
    #[error("too many consumer groups with committed offsets: {len} > {max}")]
    TooManyGroups {
        /// Count after the operation.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An operation not allowed in the instance's current state (e.g. subscribing while
    /// manually assigned).
    #[error("illegal consumer state: {reason}")]
    IllegalState {
        /// What conflicts.
        reason: &'static str,
    },
    /// A subscription or assignment list longer than [`crate::log::SUBSCRIPTION_TOPICS_MAX`].
    #[error("{len} topics or partitions exceed the limit {max}")]
    TooManyTopicsInSubscription {
        /// Entries given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A topic pattern that does not compile.
    #[error("topic pattern is invalid: {reason}")]
    PatternInvalid {
        /// The regex error.
        reason: String,
    },
    /// The consumer's position is outside the log and its `auto.offset.reset` is `none`.
    #[error("no reset policy for {topic}-{partition} at offset {offset}")]
    NoResetPolicy {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The out-of-range position.
        offset: u64,
    },
}

impl<T> From<std::sync::PoisonError<T>> for Error {
    fn from(_: std::sync::PoisonError<T>) -> Self {
        Self::LockPoisoned
    }
}

/// Builds a closure that wraps an `io::Error` with `path`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Builds a closure that wraps a fjall error with `context`.
pub(crate) fn meta(context: &'static str) -> impl FnOnce(fjall::Error) -> Error {
    move |source| Error::Meta { context, source }
}
