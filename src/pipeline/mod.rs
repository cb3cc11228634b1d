//! Flows (NiFi's process groups): source topic → transform chain → routes → sinks.
//!
//! Wiring only: this module owns tasks, channels, configuration and shutdown, and reaches the
//! engines through the small synchronous traits in [`Seams`] (implemented over the log, cache,
//! history and transform engines by the engine module, and in memory by tests).
//!
//! - `config.rs`: the `[pipeline]` TOML section ([`PipelineConfig`], [`FlowConfig`], …).
//! - `plan.rs`: validation (errors name the flow and the field) and the reload [`diff`].
//! - `path.rs`, `route.rs`: dotted JSON paths, key templates, route predicates.
//! - `seams.rs`: the engine traits ([`Source`], [`Transform`], [`CacheSink`], [`HistorySink`],
//!   [`TopicSink`], [`DeadLetter`]).
//! - `process.rs`: one batch through one flow, ending in the history commit with the offsets.
//! - `runner.rs`: [`Pipeline`]: a task per flow, bounded queues, metrics, status, reload.
//! - `rebuild.rs`: [`rebuild_cache`], replaying the log into the cache at start.
//! - `reference.rs`: the built-in reference flow.

mod config;
mod error;
mod json;
mod path;
mod plan;
mod process;
mod rebuild;
mod reference;
mod route;
mod runner;
mod seams;

pub use config::{
    CacheEncoding, CacheSinkConfig, Condition, FlowConfig, HistoryMode, HistorySinkConfig,
    PipelineConfig, RouteConfig, SinkConfig, SourceConfig, StartPosition, TopicSinkConfig,
    TransformStep,
};
pub use error::{Error, Result, SeamError, SeamErrorKind};
pub use plan::{FlowDiff, FlowPlan, diff, plan};
pub use rebuild::rebuild_cache;
pub use reference::{
    REFERENCE_CACHE_TTL_MS, REFERENCE_ORDER_SPEC, REFERENCE_TOPIC, REFERENCE_TOPIC_PARTITIONS,
    reference_flow, reference_toml,
};
pub use runner::{FlowState, FlowStatus, Pipeline};
pub use seams::{
    CacheSink, CacheValue, CacheWrite, CommitOffset, DeadLetter, HistoryCommitError, HistorySink,
    HistoryWrite, HistoryWriteMode, Seams, Skipped, Source, SourceBatch, SourceOpener,
    SourceRecord, SourceStart, TopicSink, TopicWrite, Transform, TransformCompiler, WakeSignal,
    WakeSignalClosed, record_start,
};

// Limits. Config may lower the per-flow ones (`batch_records`, `queue_batches`, `poll_wait_ms`)
// but never raise them past these.

/// Most flows in one configuration; each flow is a task pair and a set of metric series.
pub const FLOWS_MAX: usize = 64;
/// Longest flow, route or sink name, in bytes; names appear in metric labels and headers.
pub const FLOW_NAME_BYTES_MAX: usize = 64;
/// Longest consumer group name, in bytes (it is part of a persisted offset key).
pub const GROUP_BYTES_MAX: usize = 255;
/// Longest topic name, in bytes (Kafka's limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Longest database or collection name of a history sink, in bytes (fjall keyspace names are
/// at most 255 bytes and carry a prefix).
pub const NAME_IN_COLLECTION_BYTES_MAX: usize = 120;
/// Most JOLT steps in one flow's transform chain.
pub const TRANSFORMS_PER_FLOW_MAX: usize = 16;
/// Largest JOLT spec, inline or in a file, in bytes (a spec written as TOML values counts as
/// its compact JSON text).
pub const SPEC_BYTES_MAX: usize = 1024 * 1024;
/// Most routes in one flow.
pub const ROUTES_PER_FLOW_MAX: usize = 64;
/// Most conditions in one route.
pub const CONDITIONS_PER_ROUTE_MAX: usize = 16;
/// Most values in one `in` condition.
pub const IN_VALUES_MAX: usize = 1024;
/// Longest `regex` pattern, in bytes.
pub const REGEX_BYTES_MAX: usize = 1024;
/// Largest compiled regex, in bytes (the `regex` crate's size limit), so a pattern cannot blow
/// up memory.
pub const REGEX_COMPILED_BYTES_MAX: usize = 1024 * 1024;
/// Most sinks in one flow.
pub const SINKS_PER_FLOW_MAX: usize = 16;
/// Longest key template, in bytes.
pub const TEMPLATE_BYTES_MAX: usize = 512;
/// Longest rendered key, in bytes; longer keys dead-letter the record.
pub const TEMPLATE_OUTPUT_BYTES_MAX: usize = 4096;
/// Most segments in a dotted JSON path.
pub const PATH_SEGMENTS_MAX: usize = 32;
/// Most records fetched and committed in one batch.
pub const BATCH_RECORDS_MAX: usize = 10_000;
/// Largest queue between a flow's fetcher and its processor, in batches.
pub const QUEUE_BATCHES_MAX: usize = 64;
/// Longest one fetch may wait for records, in milliseconds (also bounds stop latency).
pub const POLL_WAIT_MS_MAX: u64 = 10_000;
/// Most lanes of one flow: parts of its source (partitions) fetched and processed in parallel,
/// each with its own queue; a lane is a fetcher task and a blocking thread while it works.
pub const FLOW_LANES_MAX: usize = 8;
/// Longest cache TTL a sink may set, in milliseconds (ten years).
pub const TTL_MS_MAX: u64 = 10 * 365 * 24 * 60 * 60 * 1000;
/// Longest `error` header on a dead letter, in bytes; longer messages are cut.
pub const DEAD_LETTER_ERROR_BYTES_MAX: usize = 1024;

/// Most ranges of offsets a flow skipped that are kept per partition (each forward start, such
/// as a `latest` flow's restart past records appended while it was down, adds one); past it the
/// two oldest merge. Bounds the stored offsets value, which every commit rewrites.
pub const SKIPPED_RANGES_MAX: usize = 32;

/// Records per batch unless a flow sets `batch_records`: large enough to amortise one history
/// commit (one fsync) over many records, small enough to keep per-batch latency in milliseconds.
pub const BATCH_RECORDS_DEFAULT: u32 = 500;
/// Capacity of a flow's fetch queue, in batches, unless it sets `queue_batches`.
pub const QUEUE_BATCHES_DEFAULT: u32 = 4;
/// Longest fetch wait unless a flow sets `poll_wait_ms`, in milliseconds.
pub const POLL_WAIT_MS_DEFAULT: u64 = 100;

const _: () = assert!(TEMPLATE_BYTES_MAX <= TEMPLATE_OUTPUT_BYTES_MAX);
const _: () = assert!(BATCH_RECORDS_DEFAULT as usize <= BATCH_RECORDS_MAX);
const _: () = assert!(QUEUE_BATCHES_DEFAULT as usize <= QUEUE_BATCHES_MAX);
const _: () = assert!(POLL_WAIT_MS_DEFAULT <= POLL_WAIT_MS_MAX);
const _: () = assert!(FLOW_NAME_BYTES_MAX <= GROUP_BYTES_MAX);

/// Checks a `[pipeline]` section without starting anything (used when the configuration loads).
///
/// ```
/// use streamcache::pipeline::{self, PipelineConfig};
///
/// // The built-in reference flow is valid…
/// pipeline::check(&PipelineConfig::default())?;
/// // …and a broken template is reported with the flow and the field.
/// let mut config = PipelineConfig::default();
/// config.flows[0].sinks[0].cache.as_mut().unwrap().key = "customer:{customerNumber".into();
/// let err = pipeline::check(&config).unwrap_err();
/// assert!(err.to_string().starts_with("flow `orders`: `sinks[latest-order].cache.key`"));
/// # Ok::<(), pipeline::Error>(())
/// ```
///
/// # Errors
/// The first invalid field, naming the flow and the field, or an unreadable spec file.
pub fn check(config: &PipelineConfig) -> Result<()> {
    plan(config).map(|_| ())
}
