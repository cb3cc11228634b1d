//! Wire types of the REST Proxy surface (requests deserialised, replies serialised), with the
//! field names the REST Proxy uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// v2 produce body, borrowing each record's key and value text from the request body.
#[derive(Debug, Deserialize)]
pub(crate) struct ProduceRequest<'a> {
    /// The records; absent or empty is a validation error (422).
    #[serde(borrow)]
    pub(crate) records: Option<Vec<ProduceRecord<'a>>>,
    /// Accepted and ignored without a schema registry.
    #[serde(default)]
    pub(crate) key_schema: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    pub(crate) key_schema_id: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    pub(crate) value_schema: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    pub(crate) value_schema_id: Option<Value>,
}

/// One v2 record to produce. Key and value stay unparsed JSON text (checked as JSON by the
/// body's parser): the `json` format stores that text, so building a `Value` only to encode it
/// again would be wasted work.
#[derive(Debug, Deserialize)]
pub(crate) struct ProduceRecord<'a> {
    /// Key: base64 (binary) or any JSON (json); absent or null = none.
    #[serde(default, borrow)]
    pub(crate) key: Option<&'a RawValue>,
    /// Value, as the key.
    #[serde(default, borrow)]
    pub(crate) value: Option<&'a RawValue>,
    /// Explicit partition; wins over the URL's.
    #[serde(default)]
    pub(crate) partition: Option<i64>,
}

/// v2 produce reply.
#[derive(Debug, Serialize)]
pub(crate) struct ProduceResponse {
    /// Always null (no registry).
    pub(crate) key_schema_id: Option<i64>,
    /// Always null (no registry).
    pub(crate) value_schema_id: Option<i64>,
    /// One entry per record, in order.
    pub(crate) offsets: Vec<ProduceOffset>,
}

/// Where one record went, or why it failed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProduceOffset {
    /// Partition, null on failure.
    pub(crate) partition: Option<u32>,
    /// Offset, null on failure.
    pub(crate) offset: Option<u64>,
    /// Null on success, 50002/50003 on failure.
    pub(crate) error_code: Option<u32>,
    /// Null on success.
    pub(crate) error: Option<String>,
}

/// A replica in a v2 topic description.
#[derive(Debug, Serialize)]
pub(crate) struct Replica {
    /// Broker id (always 0).
    pub(crate) broker: u32,
    /// Whether this replica leads.
    pub(crate) leader: bool,
    /// Whether it is in sync.
    pub(crate) in_sync: bool,
}

/// A v2 partition description.
#[derive(Debug, Serialize)]
pub(crate) struct PartitionInfo {
    /// Partition number.
    pub(crate) partition: u32,
    /// Leader broker id.
    pub(crate) leader: u32,
    /// Replicas (one).
    pub(crate) replicas: Vec<Replica>,
}

/// v2 topic description.
#[derive(Debug, Serialize)]
pub(crate) struct TopicInfoV2 {
    /// Name.
    pub(crate) name: String,
    /// Effective configs.
    pub(crate) configs: serde_json::Map<String, Value>,
    /// Partitions.
    pub(crate) partitions: Vec<PartitionInfo>,
}

/// v2 create-consumer body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateConsumer {
    /// The REST Proxy's deprecated instance id; when given it is the instance's name,
    /// overriding `name`.
    pub(crate) id: Option<String>,
    /// Instance name.
    pub(crate) name: Option<String>,
    /// Embedded format: binary (default) or json.
    pub(crate) format: Option<String>,
    /// earliest | latest | none.
    #[serde(rename = "auto.offset.reset")]
    pub(crate) auto_offset_reset: Option<String>,
    /// "true" / "false".
    #[serde(rename = "auto.commit.enable")]
    pub(crate) auto_commit_enable: Option<Value>,
    /// Accepted; fetches return as soon as records are available.
    #[serde(rename = "fetch.min.bytes", alias = "responseMinBytes")]
    pub(crate) fetch_min_bytes: Option<Value>,
    /// Longest wait of a fetch, in ms.
    #[serde(rename = "consumer.request.timeout.ms", alias = "requestWaitMs")]
    pub(crate) request_timeout_ms: Option<Value>,
}

/// v2 create-consumer reply.
#[derive(Debug, Serialize)]
pub(crate) struct CreatedConsumer {
    /// The instance id.
    pub(crate) instance_id: String,
    /// URL of the instance.
    pub(crate) base_uri: String,
}

/// v2 subscription body and reply.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct SubscriptionBody {
    /// Topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) topics: Option<Vec<String>>,
    /// Regex over topic names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) topic_pattern: Option<String>,
}

/// A topic and partition on the wire.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct WireTopicPartition {
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: i64,
}

/// `{"partitions": [...]}`.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct PartitionsBody {
    /// The partitions.
    pub(crate) partitions: Vec<WireTopicPartition>,
}

/// An offset to commit or seek to.
#[derive(Debug, Deserialize)]
pub(crate) struct WireOffset {
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: i64,
    /// Offset.
    pub(crate) offset: i64,
    /// Commit metadata.
    #[serde(default)]
    pub(crate) metadata: Option<String>,
}

/// A timestamp to seek to.
#[derive(Debug, Deserialize)]
pub(crate) struct WireTimestamp {
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: i64,
    /// ISO-8601 timestamp.
    pub(crate) timestamp: String,
}

/// `{"offsets": [...]}` for commits and seeks, or `{"timestamps": [...]}` for seeks.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OffsetsBody {
    /// Offsets.
    #[serde(default)]
    pub(crate) offsets: Option<Vec<WireOffset>>,
    /// Timestamps.
    #[serde(default)]
    pub(crate) timestamps: Option<Vec<WireTimestamp>>,
}

/// A committed offset in a reply.
#[derive(Debug, Serialize)]
pub(crate) struct CommittedOffsetOut {
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: u32,
    /// Next offset (-1 when none is committed).
    pub(crate) offset: i64,
    /// Metadata.
    pub(crate) metadata: String,
}

/// A consumed v2 record.
#[derive(Debug, Serialize)]
pub(crate) struct ConsumerRecordOut {
    /// Topic.
    pub(crate) topic: String,
    /// Key (base64 for binary, JSON for json).
    pub(crate) key: Value,
    /// Value.
    pub(crate) value: Value,
    /// Partition.
    pub(crate) partition: u32,
    /// Offset.
    pub(crate) offset: u64,
}

/// v3 create-topic body.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateTopicV3 {
    /// Name.
    pub(crate) topic_name: Option<String>,
    /// Partitions (absent or -1: the default from config).
    #[serde(default)]
    pub(crate) partitions_count: Option<i64>,
    /// -1 (the default) or 1: there is one broker.
    #[serde(default)]
    pub(crate) replication_factor: Option<i64>,
    /// Config overrides.
    #[serde(default)]
    pub(crate) configs: Vec<ConfigEntry>,
    /// Partition id → broker ids; when not empty, one partition per entry.
    #[serde(default)]
    pub(crate) replicas_assignments: std::collections::BTreeMap<i64, Vec<i64>>,
    /// Check without creating.
    #[serde(default)]
    pub(crate) validate_only: bool,
}

/// A v3 config entry.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigEntry {
    /// Name.
    pub(crate) name: String,
    /// Value.
    pub(crate) value: Option<String>,
}

/// One v3 record to produce.
#[derive(Debug, Deserialize)]
pub(crate) struct ProduceRecordV3 {
    /// Explicit partition.
    #[serde(default)]
    pub(crate) partition_id: Option<i64>,
    /// Headers (values base64).
    #[serde(default)]
    pub(crate) headers: Vec<HeaderV3>,
    /// Key.
    #[serde(default)]
    pub(crate) key: Option<DataV3>,
    /// Value.
    #[serde(default)]
    pub(crate) value: Option<DataV3>,
    /// ISO-8601 create time.
    #[serde(default)]
    pub(crate) timestamp: Option<String>,
}

/// A v3 header.
#[derive(Debug, Deserialize)]
pub(crate) struct HeaderV3 {
    /// Name.
    pub(crate) name: String,
    /// Base64 value.
    #[serde(default)]
    pub(crate) value: Option<String>,
}

/// A v3 key or value.
#[derive(Debug, Deserialize)]
pub(crate) struct DataV3 {
    /// BINARY, JSON, STRING (schema types need a registry, and so does an absent type, which
    /// means "the subject's latest schema").
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    /// The data.
    #[serde(default)]
    pub(crate) data: Value,
}
