//! The reference system as the built-in default: topic `orders` → JOLT shift and remove →
//! cache `customer:{customerNumber}` and history `shop.orders`. The watcher that turns new
//! `shop.orders` documents into `NewOrder` events is `realtime::WatcherConfig::default_orders`.

use serde_json::Value;

use super::config::{
    CacheEncoding, CacheSinkConfig, FlowConfig, HistoryMode, HistorySinkConfig, SinkConfig,
    SourceConfig, StartPosition, TransformStep, default_batch_records, default_poll_wait_ms,
    default_queue_batches,
};

// The reference flow's JOLT chain lives with the JOLT engine, which benchmarks it.
pub use crate::transform::REFERENCE_ORDER_SPEC;

/// Topic the reference flow reads.
pub const REFERENCE_TOPIC: &str = "orders";

/// Partitions of [`REFERENCE_TOPIC`] when it is created for the reference flow; records are
/// keyed by `customerNumber`, so one customer's orders stay in order.
pub const REFERENCE_TOPIC_PARTITIONS: u32 = 3;

/// TTL of the reference cache entries: one hour, in milliseconds.
pub const REFERENCE_CACHE_TTL_MS: u64 = 60 * 60 * 1000;

/// The reference flow: `orders` → JOLT → cache `customer:{customerNumber}` (the customer's latest
/// order summary as a JSON string, 1 h TTL) and history `shop.orders` (upsert by `orderNumber`).
#[must_use]
pub fn reference_flow() -> FlowConfig {
    FlowConfig {
        name: "orders".into(),
        source: SourceConfig {
            topic: REFERENCE_TOPIC.into(),
            group: "orders-pipeline".into(),
            start: StartPosition::Committed,
        },
        transforms: vec![TransformStep {
            jolt: Some(Value::String(REFERENCE_ORDER_SPEC.to_owned())),
            jolt_file: None,
        }],
        routes: Vec::new(),
        unmatched: Vec::new(),
        sinks: vec![
            SinkConfig {
                name: "latest-order".into(),
                cache: Some(CacheSinkConfig {
                    key: "customer:{customerNumber}".into(),
                    value: None,
                    encoding: CacheEncoding::String,
                    ttl_ms: Some(REFERENCE_CACHE_TTL_MS),
                }),
                history: None,
                topic: None,
            },
            SinkConfig {
                name: "order-history".into(),
                cache: None,
                history: Some(HistorySinkConfig {
                    collection: "shop.orders".into(),
                    mode: HistoryMode::Upsert,
                    key: Some("{orderNumber}".into()),
                }),
                topic: None,
            },
        ],
        dead_letter: "orders.dead-letter".into(),
        batch_records: default_batch_records(),
        queue_batches: default_queue_batches(),
        poll_wait_ms: default_poll_wait_ms(),
    }
}

/// The `[pipeline]` section of `streamcache config default`: the reference flow as commented
/// TOML. Parsing it yields [`PipelineConfig::default`](super::PipelineConfig).
#[must_use]
pub fn reference_toml() -> String {
    let flow = reference_flow();
    format!(
        "\n\
# Pipeline flows (NiFi process groups): source topic -> JOLT chain -> routes -> sinks.\n\
# Declaring [[pipeline.flows]] replaces this reference flow; `[pipeline]` with `flows = []` runs none.\n\
[[pipeline.flows]]\n\
name = \"{name}\"\n\
# Failed records (not JSON, JOLT error, a sink rejects them) go to this topic with headers\n\
# `error`, `flow`, `source.topic`, `source.partition` and `source.offset`.\n\
dead_letter = \"{dead_letter}\"\n\
# Most records per batch; a batch's history documents and consumer offsets commit together.\n\
batch_records = {batch_records}\n\
# Batches queued between fetching and processing; a full queue stops fetching.\n\
queue_batches = {queue_batches}\n\
# Longest wait per fetch, in milliseconds, for a source without append notifications (the\n\
# log has them: its fetchers sleep until the next append, with no timer).\n\
poll_wait_ms = {poll_wait_ms}\n\
# Records with no route matched go to these sinks (only with routes; empty = counted, skipped).\n\
# unmatched = [\"order-history\"]\n\
\n\
[pipeline.flows.source]\n\
# The topic ({partitions} partitions when created for this flow, keyed by customerNumber).\n\
topic = \"{topic}\"\n\
# Consumer group; its offsets are committed in the same batch as the history documents.\n\
group = \"{group}\"\n\
# Where to begin when the process starts: \"committed\" (resume), \"earliest\" or \"latest\".\n\
start = \"committed\"\n\
\n\
# JOLT specs applied in order: `jolt` inline (JSON text or TOML values) or `jolt_file = \"path\"`.\n\
# This one keeps the order's relevant fields, flattens `customer`, drops `comments`.\n\
[[pipeline.flows.transforms]]\n\
jolt = '''\n{spec}'''\n\
\n\
# Sinks: exactly one of `cache`, `history`, `topic` each.\n\
# cache: key template with {{dotted.paths}}, `value` path (absent = whole document),\n\
#   encoding \"string\" or \"hash\", optional ttl_ms (counted from the record's create time).\n\
[[pipeline.flows.sinks]]\n\
name = \"latest-order\"\n\
cache = {{ key = \"customer:{{customerNumber}}\", encoding = \"string\", ttl_ms = {ttl_ms} }}\n\
\n\
# history: \"db.collection\", mode \"insert\" or \"upsert\" (upsert needs a key template).\n\
[[pipeline.flows.sinks]]\n\
name = \"order-history\"\n\
history = {{ collection = \"shop.orders\", mode = \"upsert\", key = \"{{orderNumber}}\" }}\n\
\n\
# topic: forward to another topic, optional key template; the source record's headers and\n\
# create time go with it.\n\
# [[pipeline.flows.sinks]]\n\
# name = \"shipped\"\n\
# topic = {{ topic = \"orders.shipped\", key = \"{{customerNumber}}\" }}\n\
\n\
# Routes (RouteOnAttribute): a record goes to the sinks of every route whose conditions all\n\
# hold; with no routes, to every sink. Operators: equals, exists, in, regex, gt, gte, lt, lte.\n\
# [[pipeline.flows.routes]]\n\
# name = \"all\"\n\
# sinks = [\"latest-order\", \"order-history\"]\n\
# [[pipeline.flows.routes]]\n\
# name = \"shipped\"\n\
# when = [{{ path = \"status\", in = [\"Shipped\", \"Resolved\"] }}, {{ path = \"customerNumber\", gte = 100 }}]\n\
# sinks = [\"shipped\"]\n",
        name = flow.name,
        dead_letter = flow.dead_letter,
        batch_records = flow.batch_records,
        queue_batches = flow.queue_batches,
        poll_wait_ms = flow.poll_wait_ms,
        partitions = REFERENCE_TOPIC_PARTITIONS,
        topic = flow.source.topic,
        group = flow.source.group,
        spec = REFERENCE_ORDER_SPEC,
        ttl_ms = REFERENCE_CACHE_TTL_MS,
    )
}
