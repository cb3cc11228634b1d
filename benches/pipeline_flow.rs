//! Pipeline overhead: records per second through one flow of the reference shape (parse JSON,
//! render `customer:{customerNumber}` and `{orderNumber}`, one cache write and one history
//! upsert per record, one history commit per batch) over in-memory seams that only count, so the
//! figure is the wiring's own cost: tasks, queue, `spawn_blocking`, JSON parse and rendering.
//! No JOLT step runs (the transform engine is measured by its own bench).
//!
//! Orders come from the load generator (seed 1), about 600 bytes of JSON each, over three
//! partitions. Run: `cargo bench --bench pipeline_flow -- --warm-up-time 1 --measurement-time 3`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "bench setup fails loudly"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use streamcache::clock::{ManualClock, SystemClock};
use streamcache::config::Config;
use streamcache::loadgen::OrderGenerator;
use streamcache::metrics::Registry;
use streamcache::pipeline::{
    CacheSink, CacheWrite, CommitOffset, DeadLetter, HistoryCommitError, HistorySink, HistoryWrite,
    Pipeline, SeamError, Seams, Source, SourceBatch, SourceConfig, SourceOpener, SourceRecord,
    SourceStart, TopicSink, TopicWrite, Transform, TransformCompiler,
};
use streamcache::shutdown::Shutdown;

const RECORDS: usize = 30_000;
const PARTITIONS: u32 = 3;

/// Pre-encoded orders, shared by every run.
struct Orders(Vec<SourceRecord>);

impl Orders {
    fn generate() -> Self {
        let mut g = OrderGenerator::new(1, ManualClock::shared(1_796_032_800_000));
        let mut next = [0u64; PARTITIONS as usize];
        let records = (0..RECORDS)
            .map(|i| {
                let (key, value) = g.next_order();
                let partition = u32::try_from(i).unwrap() % PARTITIONS;
                let offset = &mut next[partition as usize];
                *offset += 1;
                SourceRecord {
                    topic: "orders".into(),
                    partition,
                    offset: *offset - 1,
                    timestamp_ms: 0,
                    key: Some(key.into_bytes()),
                    value: Some(serde_json::to_vec(&value).unwrap()),
                    headers: Vec::new(),
                }
            })
            .collect();
        Self(records)
    }
}

struct MemorySource {
    orders: Arc<Orders>,
    at: usize,
}

impl Source for MemorySource {
    fn split(self: Box<Self>, _lanes: usize) -> Vec<Box<dyn Source>> {
        vec![self]
    }

    fn poll(&mut self, max_records: usize, wait_ms: u64) -> Result<SourceBatch, SeamError> {
        let end = (self.at + max_records).min(self.orders.0.len());
        if self.at == end {
            // Drained: wait as a real source would when no records arrive.
            std::thread::park_timeout(Duration::from_millis(wait_ms));
        }
        let records = self.orders.0[self.at..end].to_vec();
        self.at = end;
        Ok(SourceBatch {
            records,
            end_offsets: BTreeMap::new(),
            topic_id: String::new(),
        })
    }
}

struct Opener(Arc<Orders>);

impl SourceOpener for Opener {
    fn open(&self, _: &SourceConfig, _: &SourceStart) -> Result<Box<dyn Source>, SeamError> {
        Ok(Box::new(MemorySource {
            orders: self.0.clone(),
            at: 0,
        }))
    }
}

struct NoTransform;

impl TransformCompiler for NoTransform {
    fn compile(&self, _: &Value) -> Result<Arc<dyn Transform>, SeamError> {
        Err(SeamError::rejected("no transforms in this bench"))
    }
}

/// Counts writes; `docs` also wakes the waiting bench thread.
#[derive(Default)]
struct Counting {
    cache: AtomicU64,
    docs: Mutex<u64>,
    done: std::sync::Condvar,
}

impl CacheSink for Counting {
    fn write(&self, write: CacheWrite) -> Result<(), SeamError> {
        std::hint::black_box(write);
        self.cache.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl HistorySink for Counting {
    fn committed(&self, _: &str, _: &str) -> Result<BTreeMap<u32, u64>, SeamError> {
        Ok(BTreeMap::new())
    }

    fn commit(
        &self,
        _: &str,
        docs: &mut [HistoryWrite],
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError> {
        std::hint::black_box(offsets);
        let mut n = self.docs.lock().unwrap();
        *n += docs.len() as u64;
        self.done.notify_all();
        Ok(())
    }

    fn persist(&self) -> Result<(), SeamError> {
        Ok(())
    }
}

impl TopicSink for Counting {
    fn produce(&self, _: &str, _: TopicWrite) -> Result<(), SeamError> {
        Ok(())
    }
}

impl DeadLetter for Counting {
    fn send(&self, _: &str, _: Vec<TopicWrite>) -> Result<(), SeamError> {
        Ok(())
    }
}

fn flow_config(batch_records: u32) -> streamcache::pipeline::PipelineConfig {
    let text = format!(
        r#"
[[pipeline.flows]]
name = "orders"
dead_letter = "orders.dlq"
batch_records = {batch_records}
source = {{ topic = "orders", group = "g" }}
[[pipeline.flows.sinks]]
name = "latest-order"
cache = {{ key = "customer:{{customerNumber}}", ttl_ms = 3600000 }}
[[pipeline.flows.sinks]]
name = "order-history"
history = {{ collection = "shop.orders", mode = "upsert", key = "{{orderNumber}}" }}
"#
    );
    toml::from_str::<Config>(&text).unwrap().pipeline
}

/// Runs one flow over every order and returns the elapsed monotonic time.
fn run_once(
    runtime: &tokio::runtime::Runtime,
    orders: &Arc<Orders>,
    batch_records: u32,
) -> Duration {
    let sinks = Arc::new(Counting::default());
    let seams = Seams {
        source: Arc::new(Opener(orders.clone())),
        transform: Arc::new(NoTransform),
        cache: sinks.clone(),
        history: sinks.clone(),
        topic: sinks.clone(),
        dead_letter: sinks.clone(),
    };
    let clock = SystemClock::shared();
    let shutdown = Shutdown::new();
    let started = clock.monotonic_ns();
    let pipeline = runtime.block_on(async {
        Pipeline::start(
            &flow_config(batch_records),
            seams,
            clock.clone(),
            Arc::new(Registry::new()),
            shutdown.signal(),
        )
        .unwrap()
    });
    {
        let mut docs = sinks.docs.lock().unwrap();
        while *docs < RECORDS as u64 {
            docs = sinks.done.wait(docs).unwrap();
        }
    }
    let elapsed = Duration::from_nanos(clock.monotonic_ns() - started);
    runtime.block_on(pipeline.stop());
    assert_eq!(sinks.cache.load(Ordering::Relaxed), RECORDS as u64);
    elapsed
}

fn flow_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let orders = Arc::new(Orders::generate());
    let mut group = c.benchmark_group("pipeline_flow");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    for batch_records in [100u32, 500] {
        group.bench_with_input(
            BenchmarkId::new("reference_shape", batch_records),
            &batch_records,
            |b, &n| {
                b.iter_custom(|iters| (0..iters).map(|_| run_once(&runtime, &orders, n)).sum());
            },
        );
    }
    group.finish();
}

criterion_group!(benches, flow_throughput);
criterion_main!(benches);
