//! The `[pipeline]` configuration section as the TOML file spells it: flows with a source, a
//! transform chain, routes and sinks. Plain serde records; validation lives in `plan.rs`, which
//! turns a [`FlowConfig`] into a checked, compiled flow.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// `[pipeline]`: every flow the process runs.
///
/// The default is the reference flow (see [`super::reference_flow`]); a file that declares
/// `[[pipeline.flows]]` replaces it, and `flows = []` runs none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// The flows, each with a unique name and consumer group.
    pub flows: Vec<FlowConfig>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            flows: vec![super::reference_flow()],
        }
    }
}

/// `[[pipeline.flows]]`: one NiFi-style process group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Unique name: 1 to [`super::FLOW_NAME_BYTES_MAX`] bytes of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// Where records come from.
    pub source: SourceConfig,
    /// JOLT specs applied in order; empty passes the record through unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformStep>,
    /// Named routes (NiFi's RouteOnAttribute): a record goes to the sinks of every route whose
    /// conditions all hold. With no routes, every record goes to every sink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// Sinks for records no route matched. Empty: such records are counted in
    /// `streamcache_pipeline_records_unmatched_total` and committed without being written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
    /// Where records go.
    pub sinks: Vec<SinkConfig>,
    /// Topic receiving records that fail (not JSON, transform error, a sink rejects them),
    /// with the error and the source position in headers.
    pub dead_letter: String,
    /// Most records fetched and committed together (1 to [`super::BATCH_RECORDS_MAX`]).
    #[serde(default = "default_batch_records")]
    pub batch_records: u32,
    /// Capacity, in batches, of the queue between fetching and processing
    /// (1 to [`super::QUEUE_BATCHES_MAX`]); a full queue stops fetching.
    #[serde(default = "default_queue_batches")]
    pub queue_batches: u32,
    /// Longest one fetch waits for new records, in milliseconds (1 to
    /// [`super::POLL_WAIT_MS_MAX`]), for a source without append notifications; also bounds
    /// how long a stop waits for such a fetcher. The log's sources notify, so their fetchers
    /// wait for the next append or stop without a timer and this setting does not apply.
    #[serde(default = "default_poll_wait_ms")]
    pub poll_wait_ms: u64,
}

/// Default for [`FlowConfig::batch_records`].
pub(crate) fn default_batch_records() -> u32 {
    super::BATCH_RECORDS_DEFAULT
}

/// Default for [`FlowConfig::queue_batches`].
pub(crate) fn default_queue_batches() -> u32 {
    super::QUEUE_BATCHES_DEFAULT
}

/// Default for [`FlowConfig::poll_wait_ms`].
pub(crate) fn default_poll_wait_ms() -> u64 {
    super::POLL_WAIT_MS_DEFAULT
}

/// `[pipeline.flows.source]`: a topic read as a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The topic to read.
    pub topic: String,
    /// Consumer group; its committed offsets are stored with the flow's history writes.
    /// Unique across flows.
    pub group: String,
    /// Where the flow begins when the process starts it.
    #[serde(default)]
    pub start: StartPosition,
}

/// Where a flow begins reading when the process starts it. Restarts caused by a reload always
/// resume at the committed position, whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    /// Resume after the group's committed offsets; partitions never committed start at their
    /// beginning. Exactly-once into history holds across restarts.
    #[default]
    Committed,
    /// Replay every partition from its beginning, ignoring committed offsets.
    Earliest,
    /// Skip the backlog: start at each partition's end, ignoring committed offsets.
    Latest,
}

/// `[[pipeline.flows.transforms]]`: one JOLT spec, given inline or as a file. Exactly one of the
/// two fields is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformStep {
    /// The spec inline: JSON text in a TOML string, or the spec written as TOML values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jolt: Option<Value>,
    /// A file holding the spec as JSON (relative paths resolve against the working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jolt_file: Option<PathBuf>,
}

/// `[[pipeline.flows.routes]]`: a named predicate and the sinks it feeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name within the flow (not `unmatched`).
    pub name: String,
    /// Conditions that must all hold; empty matches every record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    /// Names of the sinks receiving matching records.
    pub sinks: Vec<String>,
}

/// One condition on the value at a dotted JSON path. Every operator given must hold; at least one
/// is required. Numeric comparisons (`gt`, `gte`, `lt`, `lte`) read a number, or a string holding
/// a base-10 number (`"42"`, `" 1.5e3 "`) by its value, as NiFi's `toNumber()` reads an attribute;
/// they fail on any other value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Dotted path such as `status` or `customer.country`; digits index arrays.
    pub path: String,
    /// The value equals this (numbers compare by value: `10` equals `10.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    /// `true`: the path holds a non-null value; `false`: it is missing or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The value equals one of these.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// The value is a string matching this regular expression (unanchored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The value is a number, or a string holding one, greater than this (an integer bound is
    /// kept exact, past 2^53 too; a JSON number, so never NaN or infinite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Number>,
    /// The value is a number greater than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Number>,
    /// The value is a number less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Number>,
    /// The value is a number less than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Number>,
}

/// `[[pipeline.flows.sinks]]`: a named destination; exactly one of `cache`, `history`, `topic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name within the flow, referenced by routes.
    pub name: String,
    /// Write to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSinkConfig>,
    /// Write to history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistorySinkConfig>,
    /// Forward to another topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicSinkConfig>,
}

/// A cache sink: one entry per record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSinkConfig {
    /// Key template, e.g. `customer:{customerNumber}`; `{a.b}` is a dotted path.
    pub key: String,
    /// Dotted path of the value to store; absent stores the whole document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// How the value is stored.
    #[serde(default)]
    pub encoding: CacheEncoding,
    /// Time to live in milliseconds (1 to [`super::TTL_MS_MAX`]), counted from the record's
    /// create time (live and in the rebuild at start alike; an entry whose TTL ran out before the
    /// flow reached its record is not written); absent keeps the entry until it is overwritten or
    /// evicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// How a cache sink stores its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheEncoding {
    /// A string: JSON text, or the text itself when the value is a JSON string.
    #[default]
    String,
    /// A hash: one field per member of the value, which must be an object.
    Hash,
}

/// A history sink: one document per record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySinkConfig {
    /// Target as `db.collection`.
    pub collection: String,
    /// Insert every record, or upsert by `key`.
    #[serde(default)]
    pub mode: HistoryMode,
    /// Key template for upserts (required for `upsert`, refused for `insert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// How a history sink writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryMode {
    /// A new document per record.
    #[default]
    Insert,
    /// Replace the document with the same key, or insert it.
    Upsert,
}

/// A topic sink: forward the transformed record, with the source record's headers and create
/// time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSinkConfig {
    /// The destination topic (not the flow's own source topic).
    pub topic: String,
    /// Key template; absent keeps the source record's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}
