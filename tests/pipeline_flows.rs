//! Capability: pipeline flows — routing, key templates, dead letters, offsets committed with the
//! history batch, back-pressure, reload and configuration checks.
//!
//! Method: a `Pipeline` runs over in-memory fakes of every seam (a partitioned log, a cache map,
//! a history store that commits documents and offsets atomically, topic and dead-letter
//! recorders, and a toy transform compiler). Tests wait on conditions (the pipeline's change
//! counter or the fakes' own counters) with a bounded timeout; nothing sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    unreachable_pub,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use streamcache::clock::{ManualClock, SharedClock};
use streamcache::config::{self, Config};
use streamcache::metrics::Registry;
use streamcache::pipeline::{
    self, CacheSink, CacheValue, CacheWrite, CommitOffset, DeadLetter, Error, FlowState,
    FlowStatus, HistoryCommitError, HistorySink, HistoryWrite, HistoryWriteMode, Pipeline,
    PipelineConfig, SeamError, Seams, Source, SourceBatch, SourceConfig, SourceOpener,
    SourceRecord, SourceStart, TopicSink, TopicWrite, Transform, TransformCompiler, WakeSignal,
};
use streamcache::shutdown::Shutdown;

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Fakes

/// Topic → partition → (key, value) records.
type Topics = BTreeMap<String, Vec<Vec<(Option<Vec<u8>>, Vec<u8>)>>>;

/// A partitioned in-memory log: topic → partition → values.
#[derive(Default)]
struct FakeLog {
    topics: Mutex<Topics>,
    appended: Condvar,
    /// Non-empty batches handed out, and the most that were out at once (minus history commits).
    polled_batches: AtomicUsize,
    max_in_flight: AtomicUsize,
    polled_tx: Mutex<Option<tokio::sync::watch::Sender<usize>>>,
    commits: AtomicUsize,
    opens: Mutex<Vec<(String, SourceStart)>>,
    /// Create times of records appended with `append_json_at` (others are created at 0).
    timestamps: Mutex<BTreeMap<(String, u32, u64), i64>>,
    /// Append notifications, when a test turns them on: sources opened afterwards hand them
    /// to their fetcher as a wake signal.
    appends_tx: Mutex<Option<tokio::sync::watch::Sender<u64>>>,
    /// Polls made and the longest wait any of them was given.
    polls: AtomicUsize,
    longest_poll_wait_ms: AtomicU64,
    /// Whether sources split into one lane per partition (off: one lane reads them all).
    split_lanes: AtomicBool,
    /// Positions sources opened from now on start at, reported as [`Source::rewound`] (as a
    /// log recovered shorter than the committed offsets does).
    rewind: Mutex<Vec<CommitOffset>>,
    /// In order: `commit`, `persist` (history) and `poll` (a source read records).
    journal: Mutex<Vec<&'static str>>,
}

impl FakeLog {
    fn create(&self, topic: &str, partitions: usize) {
        self.topics
            .lock()
            .unwrap()
            .insert(topic.into(), vec![Vec::new(); partitions]);
    }

    fn append(&self, topic: &str, partition: usize, key: Option<&str>, value: &[u8]) {
        let mut topics = self.topics.lock().unwrap();
        let parts = topics.get_mut(topic).expect("topic exists");
        parts[partition].push((key.map(|k| k.as_bytes().to_vec()), value.to_vec()));
        self.appended.notify_all();
        if let Some(tx) = self.appends_tx.lock().unwrap().as_ref() {
            tx.send_modify(|n| *n += 1);
        }
    }

    fn notify_appends(&self) {
        *self.appends_tx.lock().unwrap() = Some(tokio::sync::watch::channel(0).0);
    }

    fn append_json(&self, topic: &str, partition: usize, value: &Value) {
        self.append(topic, partition, None, &serde_json::to_vec(value).unwrap());
    }

    fn append_json_at(&self, topic: &str, partition: usize, value: &Value, created_ms: i64) {
        let offset = self.topics.lock().unwrap()[topic][partition].len() as u64;
        self.timestamps.lock().unwrap().insert(
            (topic.into(), u32::try_from(partition).unwrap(), offset),
            created_ms,
        );
        self.append_json(topic, partition, value);
    }

    fn timestamp(&self, topic: &str, partition: u32, offset: u64) -> i64 {
        let stamps = self.timestamps.lock().unwrap();
        stamps
            .get(&(topic.to_owned(), partition, offset))
            .copied()
            .unwrap_or(WORLD_START_MS)
    }
}

struct FakeOpener(Arc<FakeLog>);

impl SourceOpener for FakeOpener {
    fn open(
        &self,
        source: &SourceConfig,
        start: &SourceStart,
    ) -> Result<Box<dyn Source>, SeamError> {
        self.0
            .opens
            .lock()
            .unwrap()
            .push((source.topic.clone(), start.clone()));
        let topics = self.0.topics.lock().unwrap();
        let parts = topics
            .get(&source.topic)
            .ok_or_else(|| SeamError::fatal(format!("no topic {}", source.topic)))?;
        let mut positions = (0..parts.len())
            .map(|p| {
                let p32 = u32::try_from(p).unwrap();
                let at = match start {
                    SourceStart::Committed(c) | SourceStart::Replay(c) => {
                        c.get(&p32).copied().unwrap_or(0)
                    }
                    SourceStart::Earliest => 0,
                    SourceStart::Latest => parts[p].len() as u64,
                };
                (p32, at)
            })
            .collect::<BTreeMap<u32, u64>>();
        let rewound = self.0.rewind.lock().unwrap().clone();
        for r in &rewound {
            positions.insert(r.partition, r.next_offset);
        }
        let appends = self
            .0
            .appends_tx
            .lock()
            .unwrap()
            .as_ref()
            .map(tokio::sync::watch::Sender::subscribe);
        Ok(Box::new(FakeSource {
            log: self.0.clone(),
            topic: source.topic.clone(),
            positions,
            appends,
            stops: None,
            rewound,
        }))
    }
}

struct FakeSource {
    log: Arc<FakeLog>,
    topic: String,
    positions: BTreeMap<u32, u64>,
    appends: Option<tokio::sync::watch::Receiver<u64>>,
    /// `Source::stop_at`'s ends, once given.
    stops: Option<BTreeMap<u32, u64>>,
    /// What [`Source::rewound`] reports.
    rewound: Vec<CommitOffset>,
}

impl FakeSource {
    fn collect(&mut self, topics: &Topics, max: usize) -> SourceBatch {
        let parts = &topics[&self.topic];
        let mut batch = SourceBatch::default();
        for (p, records) in parts.iter().enumerate() {
            let p32 = u32::try_from(p).unwrap();
            // A split source reads only its own partitions.
            let Some(pos) = self.positions.get_mut(&p32) else {
                continue;
            };
            batch.end_offsets.insert(p32, records.len() as u64);
            let stop = self.stops.as_ref().map_or(records.len(), |stops| {
                records
                    .len()
                    .min(usize::try_from(stops.get(&p32).copied().unwrap_or(0)).unwrap())
            });
            while batch.records.len() < max && (*pos as usize) < stop {
                let (key, value) = records[*pos as usize].clone();
                batch.records.push(SourceRecord {
                    topic: self.topic.clone(),
                    partition: p32,
                    offset: *pos,
                    timestamp_ms: self.log.timestamp(&self.topic, p32, *pos),
                    key,
                    value: Some(value),
                    headers: Vec::new(),
                });
                *pos += 1;
            }
        }
        batch
    }
}

impl Source for FakeSource {
    fn split(self: Box<Self>, _lanes: usize) -> Vec<Box<dyn Source>> {
        if !self.log.split_lanes.load(Ordering::SeqCst) {
            return vec![self];
        }
        let FakeSource {
            log,
            topic,
            positions,
            appends,
            ..
        } = *self;
        positions
            .into_iter()
            .map(|(partition, at)| {
                Box::new(FakeSource {
                    log: log.clone(),
                    topic: topic.clone(),
                    positions: BTreeMap::from([(partition, at)]),
                    appends: appends.clone(),
                    stops: None,
                    rewound: Vec::new(),
                }) as Box<dyn Source>
            })
            .collect()
    }

    fn take_wake_signal(&mut self) -> Option<WakeSignal> {
        WakeSignal::new(self.appends.take().into_iter().collect())
    }

    fn stop_at(&mut self, ends: &BTreeMap<u32, u64>) {
        self.stops = Some(ends.clone());
    }

    fn rewound(&self) -> Vec<CommitOffset> {
        self.rewound.clone()
    }

    fn poll(&mut self, max_records: usize, wait_ms: u64) -> Result<SourceBatch, SeamError> {
        self.log.polls.fetch_add(1, Ordering::SeqCst);
        self.log
            .longest_poll_wait_ms
            .fetch_max(wait_ms, Ordering::SeqCst);
        let log = self.log.clone();
        let mut topics = log.topics.lock().unwrap();
        let mut batch = self.collect(&topics, max_records);
        if batch.records.is_empty() {
            topics = log
                .appended
                .wait_timeout(topics, Duration::from_millis(wait_ms))
                .unwrap()
                .0;
            batch = self.collect(&topics, max_records);
        }
        drop(topics);
        if !batch.records.is_empty() {
            log.journal.lock().unwrap().push("poll");
            let polled = log.polled_batches.fetch_add(1, Ordering::SeqCst) + 1;
            let in_flight = polled - log.commits.load(Ordering::SeqCst);
            log.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            if let Some(tx) = log.polled_tx.lock().unwrap().as_ref() {
                tx.send_replace(polled);
            }
        }
        Ok(batch)
    }
}

/// Toy transforms: `{"op":"copy","from":..,"to":..}`, `{"op":"fail-if","field":..}`, any JOLT
/// operation (`{"operation":..}`) as identity, arrays as chains; `{"op":"bogus"}` does not compile.
struct FakeCompiler;

struct FakeTransform(Vec<Value>);

impl TransformCompiler for FakeCompiler {
    fn compile(&self, spec: &Value) -> Result<Arc<dyn Transform>, SeamError> {
        let steps = match spec {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for step in &steps {
            let known = step.get("operation").is_some()
                || matches!(
                    step.get("op").and_then(Value::as_str),
                    Some("copy" | "fail-if")
                );
            if !known {
                return Err(SeamError::rejected(format!("unknown operation in {step}")));
            }
        }
        Ok(Arc::new(FakeTransform(steps)))
    }
}

impl Transform for FakeTransform {
    fn apply(&self, doc: &Value) -> Result<Value, SeamError> {
        let mut doc = doc.clone();
        for step in &self.0 {
            match step.get("op").and_then(Value::as_str) {
                Some("copy") => {
                    let from = step["from"].as_str().unwrap();
                    let to = step["to"].as_str().unwrap();
                    let v = doc.get(from).cloned().unwrap_or(Value::Null);
                    doc.as_object_mut()
                        .ok_or_else(|| SeamError::rejected("not an object"))?
                        .insert(to.into(), v);
                }
                Some("fail-if") => {
                    let field = step["field"].as_str().unwrap();
                    if doc.get(field).is_some() {
                        return Err(SeamError::rejected(format!("field {field} is poison")));
                    }
                }
                _ => {}
            }
        }
        Ok(doc)
    }
}

/// Cache: rejects keys containing `reject`.
#[derive(Default)]
struct FakeCache(Mutex<BTreeMap<String, CacheWrite>>);

impl CacheSink for FakeCache {
    fn write(&self, write: CacheWrite) -> Result<(), SeamError> {
        if write.key.contains("reject") {
            return Err(SeamError::rejected("key refused"));
        }
        self.0.lock().unwrap().insert(write.key.clone(), write);
        Ok(())
    }
}

/// History: documents and offsets land together. Rejects documents with `"badForHistory": true`;
/// fails fatally while `fatal` is set; blocks each commit on `gate` when one is installed.
#[derive(Default)]
struct FakeHistory {
    log: Arc<FakeLog>,
    state: Mutex<HistoryState>,
    fatal: AtomicBool,
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

#[derive(Default)]
struct HistoryState {
    /// (db.collection) → documents in commit order.
    docs: BTreeMap<String, Vec<(HistoryWriteMode, Value)>>,
    /// group → partition → next offset.
    offsets: BTreeMap<String, BTreeMap<u32, u64>>,
    /// Every successful commit: number of documents and the offsets.
    commits: Vec<(usize, Vec<CommitOffset>)>,
}

impl FakeHistory {
    fn docs(&self, collection: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .docs
            .get(collection)
            .map(|d| d.iter().map(|(_, v)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// The sorted values of numeric `field` over the documents of `collection`.
    fn numbers(&self, collection: &str, field: &str) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .docs(collection)
            .iter()
            .map(|d| d[field].as_u64().unwrap())
            .collect();
        out.sort_unstable();
        out
    }

    fn commits(&self) -> Vec<(usize, Vec<CommitOffset>)> {
        self.state.lock().unwrap().commits.clone()
    }
}

impl HistorySink for FakeHistory {
    fn committed(&self, group: &str, _topic: &str) -> Result<BTreeMap<u32, u64>, SeamError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .offsets
            .get(group)
            .cloned()
            .unwrap_or_default())
    }

    fn commit(
        &self,
        group: &str,
        docs: &mut [HistoryWrite],
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError> {
        if let Some(gate) = self.gate.lock().unwrap().as_ref() {
            // A dropped sender opens the gate for good.
            let _ = gate.recv();
        }
        if self.fatal.load(Ordering::SeqCst)
            || docs
                .iter()
                .any(|d| d.doc.get("fatalForHistory") == Some(&json!(true)))
        {
            return Err(HistoryCommitError::Fatal("disk on fire".into()));
        }
        if let Some(index) = docs.iter().position(|d| {
            d.doc.get("badForHistory") == Some(&json!(true)) || self.check(d).is_err()
        }) {
            return Err(HistoryCommitError::Rejected {
                index,
                message: "document refused".into(),
            });
        }
        let mut state = self.state.lock().unwrap();
        for d in docs.iter() {
            let list = state
                .docs
                .entry(format!("{}.{}", d.db, d.collection))
                .or_default();
            match &d.mode {
                HistoryWriteMode::Upsert { key } => {
                    list.retain(
                        |(m, _)| !matches!(m, HistoryWriteMode::Upsert { key: k } if k == key),
                    );
                    list.push((d.mode.clone(), d.doc.clone()));
                }
                HistoryWriteMode::Insert => list.push((d.mode.clone(), d.doc.clone())),
            }
        }
        let group_offsets = state.offsets.entry(group.into()).or_default();
        for o in offsets {
            group_offsets.insert(o.partition, o.next_offset);
        }
        state.commits.push((docs.len(), offsets.to_vec()));
        self.log.journal.lock().unwrap().push("commit");
        self.log.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn persist(&self) -> Result<(), SeamError> {
        self.log.journal.lock().unwrap().push("persist");
        Ok(())
    }

    /// Refuses `"badContent": true` up front (and at commit); `badForHistory` only at commit,
    /// as a store finds a duplicate key.
    fn check(&self, write: &HistoryWrite) -> Result<(), String> {
        if write.doc.get("badContent") == Some(&json!(true)) {
            return Err("content refused".into());
        }
        Ok(())
    }
}

/// Forwarding and dead letters: rejects forwards to topics containing `reject`.
#[derive(Default)]
struct FakeTopics(Mutex<Vec<(String, TopicWrite)>>);

impl FakeTopics {
    fn on(&self, topic: &str) -> Vec<TopicWrite> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, w)| w.clone())
            .collect()
    }
}

impl TopicSink for FakeTopics {
    fn produce(&self, topic: &str, record: TopicWrite) -> Result<(), SeamError> {
        if topic.contains("reject") {
            return Err(SeamError::rejected("topic refused"));
        }
        self.0.lock().unwrap().push((topic.into(), record));
        Ok(())
    }
}

impl DeadLetter for FakeTopics {
    fn send(&self, topic: &str, letters: Vec<TopicWrite>) -> Result<(), SeamError> {
        let mut all = self.0.lock().unwrap();
        all.extend(letters.into_iter().map(|l| (topic.to_owned(), l)));
        Ok(())
    }
}

/// The wall time a [`World`]'s clock starts at, and the create time of a record appended
/// without one.
const WORLD_START_MS: i64 = 1_700_000_000_000;

struct World {
    log: Arc<FakeLog>,
    cache: Arc<FakeCache>,
    history: Arc<FakeHistory>,
    topics: Arc<FakeTopics>,
    registry: Arc<Registry>,
    clock: SharedClock,
    shutdown: Shutdown,
}

impl World {
    fn new() -> Self {
        let log = Arc::new(FakeLog::default());
        let history = Arc::new(FakeHistory {
            log: log.clone(),
            ..FakeHistory::default()
        });
        Self {
            log,
            cache: Arc::default(),
            history,
            topics: Arc::default(),
            registry: Arc::new(Registry::new()),
            clock: ManualClock::shared(WORLD_START_MS.cast_unsigned()),
            shutdown: Shutdown::new(),
        }
    }

    fn seams(&self) -> Seams {
        Seams {
            source: Arc::new(FakeOpener(self.log.clone())),
            transform: Arc::new(FakeCompiler),
            cache: self.cache.clone(),
            history: self.history.clone(),
            topic: self.topics.clone(),
            dead_letter: self.topics.clone(),
        }
    }

    fn start(&self, toml_text: &str) -> Pipeline {
        self.start_config(&parse(toml_text))
    }

    fn start_config(&self, config: &PipelineConfig) -> Pipeline {
        Pipeline::start(
            config,
            self.seams(),
            self.clock.clone(),
            self.registry.clone(),
            self.shutdown.signal(),
        )
        .unwrap()
    }
}

/// Parses a `[pipeline]` section and checks it the way config loading does.
fn parse(toml_text: &str) -> PipelineConfig {
    let config: Config = toml::from_str(toml_text).unwrap();
    pipeline::check(&config.pipeline).unwrap();
    config.pipeline
}

fn status_of<'a>(statuses: &'a [FlowStatus], name: &str) -> &'a FlowStatus {
    statuses.iter().find(|s| s.name == name).unwrap()
}

/// Waits until `done` holds for the pipeline's status, re-checking after every change.
async fn wait_until(pipeline: &Pipeline, what: &str, done: impl Fn(&[FlowStatus]) -> bool) {
    let mut changes = pipeline.changes();
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            changes.borrow_and_update();
            if done(&pipeline.status()) {
                return;
            }
            changes.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "timed out waiting for {what}: {:#?}",
        pipeline.status()
    );
}

/// Waits until flow `name` has failed; returns the reason.
async fn failure_of(pipeline: &Pipeline, name: &str) -> String {
    wait_until(pipeline, &format!("{name} to fail"), |s| {
        matches!(status_of(s, name).state, FlowState::Failed(_))
    })
    .await;
    match &status_of(&pipeline.status(), name).state {
        FlowState::Failed(reason) => reason.clone(),
        other => panic!("{name} is {other:?}"),
    }
}

/// Waits until flow `name` has read `n` records.
async fn wait_records(pipeline: &Pipeline, name: &str, n: u64) {
    wait_until(pipeline, &format!("{name} to read {n} records"), |s| {
        s.iter().any(|f| f.name == name && f.records_in >= n)
    })
    .await;
}

fn header<'a>(w: &'a TopicWrite, name: &str) -> &'a str {
    let (_, v) = w.headers.iter().find(|(n, _)| n == name).unwrap();
    std::str::from_utf8(v.as_deref().unwrap()).unwrap()
}

const ROUTED: &str = r#"
[[pipeline.flows]]
name = "routed"
dead_letter = "routed.dlq"
unmatched = ["rest"]
[pipeline.flows.source]
topic = "in"
group = "g-routed"
[[pipeline.flows.routes]]
name = "shipped"
when = [{ path = "status", equals = "Shipped" }]
sinks = ["by-customer"]
[[pipeline.flows.routes]]
name = "big"
when = [{ path = "total", gte = 100 }, { path = "customer.country", in = ["France", "USA"] }]
sinks = ["history", "by-customer"]
[[pipeline.flows.routes]]
name = "named"
when = [{ path = "customer.name", regex = "^Mini " }, { path = "comments", exists = false }]
sinks = ["history"]
[[pipeline.flows.sinks]]
name = "by-customer"
cache = { key = "customer:{customer.id}", ttl_ms = 3600000 }
[[pipeline.flows.sinks]]
name = "history"
history = { collection = "shop.orders", mode = "upsert", key = "{orderNumber}" }
[[pipeline.flows.sinks]]
name = "rest"
topic = { topic = "unrouted", key = "{orderNumber}" }
"#;

// ---------------------------------------------------------------------------------------------
// Routing and templates

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_send_records_to_every_matching_route_and_unmatched_to_its_sinks() {
    let w = World::new();
    w.log.create("in", 2);
    let order = |n: u64, status: &str, total: f64, country: &str, name: &str| {
        json!({"orderNumber": n, "status": status, "total": total,
               "customer": {"id": n * 10, "country": country, "name": name}})
    };
    w.log
        .append_json("in", 0, &order(1, "Shipped", 10.0, "Norway", "Baane"));
    w.log
        .append_json("in", 1, &order(2, "On Hold", 150.0, "France", "Atelier"));
    w.log.append_json(
        "in",
        0,
        &order(3, "On Hold", 150.0, "Norway", "Mini Wheels Co."),
    );
    w.log
        .append_json("in", 1, &order(4, "Cancelled", 5.0, "Spain", "Euro+"));
    w.log
        .append_json("in", 0, &order(5, "Shipped", 500.0, "USA", "Land of Toys"));
    let p = w.start(ROUTED);
    wait_records(&p, "routed", 5).await;

    let cache = w.cache.0.lock().unwrap().clone();
    let keys: Vec<&String> = cache.keys().collect();
    assert_eq!(keys, ["customer:10", "customer:20", "customer:50"]);
    assert_eq!(cache["customer:10"].ttl_ms, Some(3_600_000));
    let CacheValue::String(text) = &cache["customer:20"].value else {
        panic!("string value")
    };
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["orderNumber"],
        json!(2)
    );

    let history = w.history.numbers("shop.orders", "orderNumber");
    assert_eq!(
        history,
        [2, 3, 5],
        "order 5 matched two routes to history but is written once"
    );

    let rest = w.topics.on("unrouted");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].key.as_deref(), Some(&b"4"[..]));
    assert_eq!(
        serde_json::from_slice::<Value>(rest[0].value.as_deref().unwrap()).unwrap()["status"],
        json!("Cancelled")
    );

    let s = p.status();
    let f = status_of(&s, "routed");
    assert_eq!(
        (
            f.records_in,
            f.records_out,
            f.records_failed,
            f.records_unmatched
        ),
        (5, 5, 0, 0)
    );
    assert_eq!(f.state, FlowState::Running);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_routes_every_sink_gets_every_record_and_templates_fill_from_paths() {
    let w = World::new();
    w.log.create("orders", 1);
    w.log.append("orders", 0, Some("103"), br#"{"orderNumber":10100,"customer":{"customerNumber":103,"city":"Nantes","tags":["a"]},"ok":true}"#);
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "plain"
dead_letter = "plain.dlq"
source = { topic = "orders", group = "g" }
[[pipeline.flows.transforms]]
jolt = '{"op":"copy","from":"orderNumber","to":"id"}'
[[pipeline.flows.transforms]]
jolt = { operation = "shift", spec = { "*" = "&" } }
[[pipeline.flows.sinks]]
name = "city"
cache = { key = "city:{customer.customerNumber}:{ok}", value = "customer.city" }
[[pipeline.flows.sinks]]
name = "hash"
cache = { key = "c:{{{customer.customerNumber}}}", value = "customer", encoding = "hash" }
[[pipeline.flows.sinks]]
name = "log"
history = { collection = "shop.log" }
[[pipeline.flows.sinks]]
name = "fwd"
topic = { topic = "orders.copy" }
"#,
    );
    wait_records(&p, "plain", 1).await;
    let cache = w.cache.0.lock().unwrap().clone();
    assert_eq!(
        cache["city:103:true"].value,
        CacheValue::String("Nantes".into())
    );
    assert_eq!(cache["city:103:true"].ttl_ms, None);
    // Hash fields come in the document's member order, which depends on serde_json's
    // `preserve_order` feature; compare them sorted.
    let CacheValue::Hash(mut fields) = cache["c:{103}"].value.clone() else {
        panic!("hash value")
    };
    fields.sort();
    assert_eq!(
        fields,
        [
            ("city".to_owned(), "Nantes".to_owned()),
            ("customerNumber".to_owned(), "103".to_owned()),
            ("tags".to_owned(), "[\"a\"]".to_owned()),
        ]
    );
    let docs = w.history.docs("shop.log");
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["id"],
        json!(10100),
        "the transform chain ran before the sinks"
    );
    let fwd = w.topics.on("orders.copy");
    assert_eq!(
        fwd[0].key.as_deref(),
        Some(&b"103"[..]),
        "a forward keeps the source key"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_records_without_unmatched_sinks_are_counted_and_committed() {
    let w = World::new();
    w.log.create("in", 1);
    w.log
        .append_json("in", 0, &json!({"status": "Shipped", "orderNumber": 1}));
    w.log
        .append_json("in", 0, &json!({"status": "Disputed", "orderNumber": 2}));
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "only-shipped"
dead_letter = "x.dlq"
source = { topic = "in", group = "g" }
routes = [{ name = "s", when = [{ path = "status", equals = "Shipped" }], sinks = ["h"] }]
sinks = [{ name = "h", history = { collection = "shop.shipped" } }]
"#,
    );
    wait_records(&p, "only-shipped", 2).await;
    let s = p.status();
    let f = status_of(&s, "only-shipped");
    assert_eq!(
        (
            f.records_in,
            f.records_out,
            f.records_unmatched,
            f.records_failed
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(f.committed, BTreeMap::from([(0, 2)]));
    assert_eq!(w.history.docs("shop.shipped").len(), 1);
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Dead letters

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_go_to_the_dead_letter_topic_with_error_and_position_and_nothing_is_dropped() {
    let w = World::new();
    w.log.create("in", 2);
    w.log.append("in", 0, Some("k0"), b"{not json");
    w.log
        .append_json("in", 1, &json!({"orderNumber": 1, "poison": true}));
    w.log
        .append_json("in", 0, &json!({"orderNumber": 2, "customer": "reject-me"}));
    w.log.append_json(
        "in",
        1,
        &json!({"orderNumber": 3, "customer": "ok", "badForHistory": true}),
    );
    w.log
        .append_json("in", 0, &json!({"orderNumber": 4, "customer": "fine"}));
    w.log.append_json("in", 1, &json!({"orderNumber": 5}));
    w.log.append_json(
        "in",
        0,
        &json!({"orderNumber": 6, "customer": "fwd", "forward": "yes"}),
    );
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "strict"
dead_letter = "strict.dlq"
batch_records = 100
source = { topic = "in", group = "g" }
transforms = [{ jolt = { op = "fail-if", field = "poison" } }]
[[pipeline.flows.routes]]
name = "all"
when = [{ path = "orderNumber", exists = true }]
sinks = ["cache", "history"]
[[pipeline.flows.routes]]
name = "fwd"
when = [{ path = "forward", equals = "yes" }]
sinks = ["rejecting-topic"]
[[pipeline.flows.sinks]]
name = "cache"
cache = { key = "c:{customer}" }
[[pipeline.flows.sinks]]
name = "history"
history = { collection = "shop.orders", mode = "upsert", key = "{orderNumber}" }
[[pipeline.flows.sinks]]
name = "rejecting-topic"
topic = { topic = "reject.here" }
"#,
    );
    wait_records(&p, "strict", 7).await;
    let letters = w.topics.on("strict.dlq");
    let mut by_offset: Vec<(String, String, String)> = letters
        .iter()
        .map(|l| {
            (
                format!(
                    "{}/{}",
                    header(l, "source.partition"),
                    header(l, "source.offset")
                ),
                header(l, "error").to_owned(),
                header(l, "source.topic").to_owned(),
            )
        })
        .collect();
    by_offset.sort();
    let errors: Vec<(&str, &str)> = by_offset
        .iter()
        .map(|(pos, e, _)| (pos.as_str(), e.as_str()))
        .collect();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    let expected = [
        ("0/0", "not JSON"),
        ("0/1", "sink `cache` rejected"),
        ("0/3", "sink `rejecting-topic` rejected"),
        ("1/0", "transform step 0 failed"),
        ("1/1", "history rejected"),
        ("1/2", "template field `customer`"),
    ];
    for ((pos, error), (want_pos, want_error)) in errors.iter().zip(expected) {
        assert_eq!(*pos, want_pos, "{errors:#?}");
        assert!(
            error.contains(want_error),
            "{pos}: `{error}` lacks `{want_error}`"
        );
    }
    assert!(by_offset.iter().all(|(_, _, t)| t == "in"));
    let bad_json = letters
        .iter()
        .find(|l| header(l, "source.offset") == "0" && header(l, "source.partition") == "0")
        .unwrap();
    assert_eq!(
        bad_json.value.as_deref(),
        Some(&b"{not json"[..]),
        "the original bytes are kept"
    );
    assert_eq!(bad_json.key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(header(bad_json, "flow"), "strict");

    let history = w.history.numbers("shop.orders", "orderNumber");
    assert_eq!(
        history,
        [4],
        "only the record every sink took reaches history"
    );
    let s = p.status();
    let f = status_of(&s, "strict");
    assert_eq!((f.records_in, f.records_out, f.records_failed), (7, 1, 6));
    assert_eq!(
        f.records_in,
        f.records_out + f.records_failed + f.records_unmatched,
        "nothing dropped"
    );
    assert_eq!(
        f.committed,
        BTreeMap::from([(0, 4), (1, 3)]),
        "failed records are consumed too"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_error_header_is_cut_at_its_limit() {
    let w = World::new();
    w.log.create("in", 1);
    let field = "x".repeat(pipeline::DEAD_LETTER_ERROR_BYTES_MAX * 2);
    w.log.append_json("in", 0, &json!({ field.clone(): 1 }));
    let p = w.start(&format!(
        r#"
[[pipeline.flows]]
name = "long"
dead_letter = "long.dlq"
source = {{ topic = "in", group = "g" }}
transforms = [{{ jolt = {{ op = "fail-if", field = "{field}" }} }}]
sinks = [{HISTORY_SINK}]
"#
    ));
    wait_records(&p, "long", 1).await;
    let letters = w.topics.on("long.dlq");
    assert_eq!(
        header(&letters[0], "error").len(),
        pipeline::DEAD_LETTER_ERROR_BYTES_MAX
    );
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Offsets and exactly-once

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_history_commit_carries_the_offsets_of_its_batch_and_restarts_resume_there() {
    let w = World::new();
    w.log.create("orders", 3);
    for n in 0..30u64 {
        w.log.append_json(
            "orders",
            usize::try_from(n % 3).unwrap(),
            &json!({"orderNumber": n}),
        );
    }
    let flow = r#"
[[pipeline.flows]]
name = "orders"
dead_letter = "orders.dlq"
batch_records = 4
source = { topic = "orders", group = "orders-group" }
sinks = [{ name = "h", history = { collection = "shop.orders" } }]
"#;
    let p = w.start(flow);
    wait_records(&p, "orders", 30).await;
    let commits = w.history.commits();
    assert!(
        commits.len() >= 8,
        "batches of at most 4 records: {commits:?}"
    );
    let mut seen = 0;
    for (docs, offsets) in &commits {
        assert!(*docs <= 4 && *docs > 0);
        assert!(!offsets.is_empty(), "every commit carries offsets");
        seen += docs;
    }
    assert_eq!(seen, 30);
    let s = p.status();
    assert_eq!(
        status_of(&s, "orders").committed,
        BTreeMap::from([(0, 10), (1, 10), (2, 10)])
    );
    assert_eq!(
        status_of(&s, "orders").lag,
        BTreeMap::from([(0, 0), (1, 0), (2, 0)])
    );
    p.stop().await;

    // More records while stopped; a new pipeline resumes from the committed offsets.
    for n in 30..36u64 {
        w.log.append_json(
            "orders",
            usize::try_from(n % 3).unwrap(),
            &json!({"orderNumber": n}),
        );
    }
    let p = w.start(flow);
    wait_until(&p, "the new records", |s| {
        status_of(s, "orders").committed.values().sum::<u64>() == 36
    })
    .await;
    let numbers = w.history.numbers("shop.orders", "orderNumber");
    assert_eq!(
        numbers,
        (0..36).collect::<Vec<_>>(),
        "every record exactly once"
    );
    let opens = w.log.opens.lock().unwrap().clone();
    assert_eq!(
        opens[1].1,
        SourceStart::Committed(BTreeMap::from([(0, 10), (1, 10), (2, 10)]))
    );
    p.stop().await;
}

/// A source that starts before the committed positions (its log was recovered shorter) has
/// the flow commit where it starts and make that durable before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_a_source_moved_back_to_are_committed_and_persisted_before_reading() {
    let w = World::new();
    w.log.create("orders", 1);
    for n in 0..5u64 {
        w.log.append_json("orders", 0, &json!({"orderNumber": n}));
    }
    w.history
        .state
        .lock()
        .unwrap()
        .offsets
        .insert("orders-group".into(), BTreeMap::from([(0, 9)]));
    *w.log.rewind.lock().unwrap() = vec![CommitOffset {
        topic: "orders".into(),
        partition: 0,
        next_offset: 2,
        topic_id: String::new(),
    }];
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "orders"
dead_letter = "orders.dlq"
source = { topic = "orders", group = "orders-group" }
sinks = [{ name = "h", history = { collection = "shop.orders" } }]
"#,
    );
    wait_records(&p, "orders", 3).await;
    let journal = w.log.journal.lock().unwrap().clone();
    assert_eq!(journal[..3], ["commit", "persist", "poll"], "{journal:?}");
    let commits = w.history.commits();
    assert_eq!(commits[0].0, 0, "the first commit holds no documents");
    assert_eq!(commits[0].1[0].next_offset, 2);
    assert_eq!(w.history.numbers("shop.orders", "orderNumber"), [2, 3, 4]);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_history_would_refuse_reaches_no_other_sink_live_or_in_a_rebuild() {
    let w = World::new();
    w.log.create("in", 1);
    w.log.append_json(
        "in",
        0,
        &json!({"orderNumber": 1, "customer": "a", "badContent": true}),
    );
    w.log
        .append_json("in", 0, &json!({"orderNumber": 2, "customer": "b"}));
    let flow = r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
source = { topic = "in", group = "g" }
[[pipeline.flows.sinks]]
name = "cache"
cache = { key = "c:{customer}" }
[[pipeline.flows.sinks]]
name = "fwd"
topic = { topic = "forwarded" }
[[pipeline.flows.sinks]]
name = "history"
history = { collection = "shop.orders", mode = "upsert", key = "{orderNumber}" }
"#;
    let p = w.start(flow);
    wait_records(&p, "f", 2).await;
    let cached = |w: &World| {
        w.cache
            .0
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(cached(&w), ["c:b"]);
    assert_eq!(w.topics.on("forwarded").len(), 1);
    let letters = w.topics.on("f.dlq");
    assert_eq!(letters.len(), 1);
    assert!(header(&letters[0], "error").contains("history rejected the record: content refused"));
    assert_eq!(w.history.numbers("shop.orders", "orderNumber"), [2]);
    p.stop().await;
    // A rebuild from the log makes the same check.
    w.cache.0.lock().unwrap().clear();
    let replayed =
        pipeline::rebuild_cache(&parse(flow), &w.seams(), &w.clock, &w.shutdown.signal()).unwrap();
    assert_eq!(replayed, 2);
    assert_eq!(cached(&w), ["c:b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_history_error_fails_the_flow_without_committing() {
    let w = World::new();
    w.log.create("in", 1);
    w.log.append_json("in", 0, &json!({"orderNumber": 1}));
    w.history.fatal.store(true, Ordering::SeqCst);
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
source = { topic = "in", group = "g" }
sinks = [{ name = "h", history = { collection = "a.b" } }]
"#,
    );
    let reason = failure_of(&p, "f").await;
    assert!(
        reason.contains("history commit") && reason.contains("disk on fire"),
        "{reason}"
    );
    assert!(w.history.commits().is_empty());
    assert!(status_of(&p.status(), "f").committed.is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_lane_fails_the_flow_while_another_lane_waits_for_records() {
    let w = World::new();
    w.log.create("in", 2);
    w.log.split_lanes.store(true, Ordering::SeqCst);
    // Partition 0 stays empty, so its lane waits for records; partition 1's lane fails.
    w.log
        .append_json("in", 1, &json!({"orderNumber": 1, "fatalForHistory": true}));
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
poll_wait_ms = 10
source = { topic = "in", group = "g" }
sinks = [{ name = "h", history = { collection = "a.b" } }]
"#,
    );
    let reason = failure_of(&p, "f").await;
    assert!(reason.contains("disk on fire"), "{reason}");
    assert!(w.history.commits().is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_positions_are_passed_to_the_source() {
    let w = World::new();
    w.log.create("a", 1);
    w.log.create("b", 1);
    w.log.append_json("a", 0, &json!({"n": 1}));
    w.log.append_json("b", 0, &json!({"n": 1}));
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "from-end"
dead_letter = "a.dlq"
source = { topic = "a", group = "ga", start = "latest" }
sinks = [{ name = "h", history = { collection = "x.a" } }]
[[pipeline.flows]]
name = "from-start"
dead_letter = "b.dlq"
source = { topic = "b", group = "gb", start = "earliest" }
sinks = [{ name = "h", history = { collection = "x.b" } }]
"#,
    );
    wait_records(&p, "from-start", 1).await;
    wait_until(&p, "both running", |s| {
        s.iter().all(|f| f.state == FlowState::Running)
    })
    .await;
    let mut opens = w.log.opens.lock().unwrap().clone();
    opens.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        opens,
        [
            ("a".to_owned(), SourceStart::Latest),
            ("b".to_owned(), SourceStart::Earliest)
        ]
    );
    assert!(w.history.docs("x.a").is_empty(), "latest skips the backlog");
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Back-pressure

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_sink_stops_fetching_after_the_queue_fills() {
    let w = World::new();
    w.log.create("in", 1);
    for n in 0..40 {
        w.log.append_json("in", 0, &json!({"n": n}));
    }
    let (gate_tx, gate_rx) = std::sync::mpsc::channel();
    *w.history.gate.lock().unwrap() = Some(gate_rx);
    let (polled_tx, mut polled_rx) = tokio::sync::watch::channel(0);
    *w.log.polled_tx.lock().unwrap() = Some(polled_tx);
    let queue_batches = 3;
    let p = w.start(&format!(
        r#"
[[pipeline.flows]]
name = "slow"
dead_letter = "slow.dlq"
batch_records = 2
queue_batches = {queue_batches}
source = {{ topic = "in", group = "g" }}
sinks = [{{ name = "h", history = {{ collection = "x.y" }} }}]
"#
    ));
    // One batch in the blocked commit, `queue_batches` queued, one held by the fetcher.
    let bound = queue_batches + 2;
    tokio::time::timeout(WAIT, polled_rx.wait_for(|n| *n >= bound))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.log.max_in_flight.load(Ordering::SeqCst), bound);
    // Fetched but uncommitted records count as lag.
    assert_eq!(
        status_of(&p.status(), "slow").lag,
        BTreeMap::from([(0, 40)])
    );
    // Open the gate one commit at a time; the fetcher never runs further ahead.
    for _ in 0..5 {
        gate_tx.send(()).unwrap();
    }
    drop(gate_tx);
    wait_records(&p, "slow", 40).await;
    assert_eq!(
        w.log.max_in_flight.load(Ordering::SeqCst),
        bound,
        "fetching stayed bounded"
    );
    assert_eq!(w.history.docs("x.y").len(), 40);
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Reload

/// A flow `name` on topic `t-{name}`, group `g-{name}`, writing to history `s.{name}`.
fn named_flow(name: &str, extra: &str, history_extra: &str) -> String {
    format!(
        r#"
[[pipeline.flows]]
name = "{name}"
dead_letter = "{name}.dlq"
{extra}
source = {{ topic = "t-{name}", group = "g-{name}" }}
sinks = [{{ name = "h", history = {{ collection = "s.{name}"{history_extra} }} }}]
"#
    )
}

/// Flows `keep`, `change` (upserts, batches of 3) and `drop`.
fn flows_v1() -> String {
    let change = named_flow(
        "change",
        "batch_records = 3",
        r#", mode = "upsert", key = "{n}""#,
    );
    named_flow("keep", "", "") + &change + &named_flow("drop", "", "")
}

/// `keep` as before, `change` with inserts and batches of 7, `add` instead of `drop`.
fn flows_v2() -> String {
    named_flow("keep", "", "")
        + &named_flow("change", "batch_records = 7", "")
        + &named_flow("add", "", "")
}

#[test]
fn reload_diff_classifies_added_removed_changed_and_unchanged_flows() {
    let old = pipeline::plan(&parse(&flows_v1())).unwrap();
    let new = pipeline::plan(&parse(&flows_v2())).unwrap();
    let d = pipeline::diff(&old, &new);
    assert_eq!(d.added, ["add"]);
    assert_eq!(d.removed, ["drop"]);
    assert_eq!(d.changed, ["change"]);
    assert_eq!(d.unchanged, ["keep"]);
    assert_eq!(pipeline::diff(&new, &new).unchanged.len(), 3);
}

/// A flow whose one transform is the JOLT spec file at `spec`.
fn spec_file_flow(spec: &std::path::Path) -> String {
    one_step_flow(&format!(r#"jolt_file = "{}""#, spec.display()))
}

/// A flow with one transform step, whose fields are `step` (TOML inline-table fields).
fn one_step_flow(step: &str) -> String {
    format!(
        r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
source = {{ topic = "t", group = "g" }}
transforms = [{{ {step} }}]
sinks = [{{ name = "h", history = {{ collection = "a.b" }} }}]
"#
    )
}

#[test]
fn an_edited_spec_file_counts_as_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, r#"[{"operation":"shift","spec":{"a":"a"}}]"#).unwrap();
    let text = spec_file_flow(&spec);
    let before = pipeline::plan(&parse(&text)).unwrap();
    assert_eq!(before[0].specs()[0][0]["operation"], json!("shift"));
    std::fs::write(&spec, r#"[{"operation":"remove","spec":{"a":""}}]"#).unwrap();
    let after = pipeline::plan(&parse(&text)).unwrap();
    assert_eq!(pipeline::diff(&before, &after).changed, ["f"]);
}

#[test]
fn spec_file_at_max_and_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    let body = r#"[{"operation":"shift","spec":{"a":"a"}}]"#;
    let text = spec_file_flow(&spec);
    let padded = |len: usize| format!("{body}{}", " ".repeat(len - body.len()));
    std::fs::write(&spec, padded(pipeline::SPEC_BYTES_MAX)).unwrap();
    assert!(pipeline::plan(&parse(&text)).is_ok());
    std::fs::write(&spec, padded(pipeline::SPEC_BYTES_MAX + 1)).unwrap();
    let config: Config = toml::from_str(&text).unwrap();
    let err = pipeline::check(&config.pipeline).unwrap_err().to_string();
    assert!(
        err.contains("transforms[0].jolt_file") && err.contains("limit of 1048576 bytes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_restarts_changed_flows_without_losing_or_duplicating_records() {
    let w = World::new();
    for t in ["t-keep", "t-change", "t-drop", "t-add"] {
        w.log.create(t, 2);
    }
    for n in 0..60u64 {
        w.log.append_json(
            "t-change",
            usize::try_from(n % 2).unwrap(),
            &json!({"n": n}),
        );
    }
    w.log.append_json("t-keep", 0, &json!({"n": 0}));
    let mut p = w.start(&flows_v1());
    wait_records(&p, "change", 9).await;
    // Reload while `change` is mid-stream; its replacement resumes at the committed offsets.
    let d = p.reload(&parse(&flows_v2())).await.unwrap();
    assert_eq!(
        (d.added.clone(), d.removed.clone(), d.changed.clone()),
        (
            vec!["add".to_owned()],
            vec!["drop".to_owned()],
            vec!["change".to_owned()]
        )
    );
    for n in 60..80u64 {
        w.log.append_json(
            "t-change",
            usize::try_from(n % 2).unwrap(),
            &json!({"n": n}),
        );
    }
    w.log.append_json("t-add", 1, &json!({"n": 1}));
    wait_until(&p, "all of t-change", |s| {
        status_of(s, "change").committed.values().sum::<u64>() == 80
    })
    .await;
    wait_records(&p, "add", 1).await;
    let ns = w.history.numbers("s.change", "n");
    assert_eq!(
        ns,
        (0..80).collect::<Vec<_>>(),
        "each record exactly once across the reload"
    );
    let names: Vec<String> = p.status().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["add", "change", "keep"]);
    let opens = w.log.opens.lock().unwrap().clone();
    assert_eq!(
        opens.iter().filter(|(t, _)| t == "t-keep").count(),
        1,
        "unchanged flows keep running"
    );
    let restarted = opens
        .iter()
        .filter(|(t, _)| t == "t-change")
        .nth(1)
        .unwrap();
    assert!(matches!(&restarted.1, SourceStart::Committed(c) if c.values().sum::<u64>() >= 9));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reload_is_rejected_and_the_old_flows_keep_running() {
    let w = World::new();
    for t in ["t-keep", "t-change", "t-drop"] {
        w.log.create(t, 1);
    }
    let mut p = w.start(&flows_v1());
    wait_until(&p, "running", |s| {
        s.iter().all(|f| f.state == FlowState::Running)
    })
    .await;
    let mut bad = parse(&flows_v2());
    bad.flows[1].sinks[0].history.as_mut().unwrap().collection = "nodot".into();
    let err = p.reload(&bad).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { flow, field, .. } if flow == "change" && field == "sinks[h].history.collection"),
        "{err}"
    );
    let mut uncompilable = parse(&flows_v2());
    uncompilable.flows[0].transforms = parse(
        r#"
[[pipeline.flows]]
name = "x"
dead_letter = "x.dlq"
source = { topic = "t", group = "g" }
transforms = [{ jolt = { op = "bogus" } }]
sinks = [{ name = "h", history = { collection = "a.b" } }]
"#,
    )
    .flows[0]
        .transforms
        .clone();
    let err = p.reload(&uncompilable).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { flow, field, .. } if flow == "keep" && field == "transforms[0]"),
        "{err}"
    );
    let names: Vec<String> = p.status().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["change", "drop", "keep"]);
    w.log.append_json("t-drop", 0, &json!({"n": 1}));
    wait_records(&p, "drop", 1).await;
    assert!(p.status().iter().all(|f| f.state == FlowState::Running));
    p.stop().await;
}

/// Flow `f` on topic `t` with `poll_wait_ms`, its source notifying appends when `notify`,
/// after it has read its first record (so it is idle now).
async fn idle_flow(poll_wait_ms: u64, notify: bool) -> (World, Pipeline) {
    let w = World::new();
    w.log.create("t", 1);
    if notify {
        w.log.notify_appends();
    }
    let p = w.start(&flow_with(
        &format!("poll_wait_ms = {poll_wait_ms}"),
        HISTORY_SINK,
    ));
    w.log.append_json("t", 0, &json!({"n": 1}));
    wait_records(&p, "f", 1).await;
    (w, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_append_notifications_is_never_polled_with_a_wait_and_stops_at_once() {
    // The longest poll wait there is: a fetcher waiting inside its poll would hold the stop
    // below for up to 10 s.
    let (w, p) = idle_flow(10_000, true).await;
    // Idle now; the next record arrives through the notification alone.
    w.log.append_json("t", 0, &json!({"n": 2}));
    wait_records(&p, "f", 2).await;
    assert!(w.log.polls.load(Ordering::SeqCst) >= 2);
    assert_eq!(w.log.longest_poll_wait_ms.load(Ordering::SeqCst), 0);
    w.shutdown.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(5), p.stop()).await;
    assert!(
        stopped.is_ok(),
        "an idle fetcher ends on the stop signal, not after its wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_append_notifications_end_the_fetcher_polls_on_a_timer_without_waiting_in_poll() {
    let (w, p) = idle_flow(20, true).await;
    // The log closing drops its notification senders; records still arrive, by timed polls.
    *w.log.appends_tx.lock().unwrap() = None;
    w.log.append_json("t", 0, &json!({"n": 2}));
    wait_records(&p, "f", 2).await;
    assert_eq!(w.log.longest_poll_wait_ms.load(Ordering::SeqCst), 0);
    w.shutdown.trigger();
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_notifications_waits_inside_its_poll() {
    let (w, p) = idle_flow(250, false).await;
    assert_eq!(w.log.longest_poll_wait_ms.load(Ordering::SeqCst), 250);
    w.shutdown.trigger();
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_signal_stops_every_flow() {
    let w = World::new();
    for t in ["t-keep", "t-change", "t-drop"] {
        w.log.create(t, 1);
    }
    let p = w.start(&flows_v1());
    wait_until(&p, "running", |s| {
        s.iter().all(|f| f.state == FlowState::Running)
    })
    .await;
    w.shutdown.trigger();
    wait_until(&p, "stopped", |s| {
        s.iter().all(|f| f.state == FlowState::Stopped)
    })
    .await;
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_flow_metrics_are_registered() {
    let w = World::new();
    w.log.create("in", 2);
    w.log.append_json("in", 1, &json!({"orderNumber": 1}));
    w.log.append("in", 1, None, b"nope");
    let p = w.start(
        r#"
[[pipeline.flows]]
name = "m"
dead_letter = "m.dlq"
source = { topic = "in", group = "g" }
sinks = [{ name = "h", history = { collection = "a.b" } }]
"#,
    );
    wait_records(&p, "m", 2).await;
    let text = w.registry.render();
    for line in [
        "streamcache_pipeline_records_in_total{flow=\"m\"} 2",
        "streamcache_pipeline_records_out_total{flow=\"m\"} 1",
        "streamcache_pipeline_records_failed_total{flow=\"m\"} 1",
        "streamcache_pipeline_records_unmatched_total{flow=\"m\"} 0",
        "streamcache_pipeline_batches_total{flow=\"m\"} 1",
        "streamcache_pipeline_lag_records{flow=\"m\",partition=\"0\",topic=\"in\"} 0",
        "streamcache_pipeline_lag_records{flow=\"m\",partition=\"1\",topic=\"in\"} 0",
        "streamcache_pipeline_processing_seconds_count{flow=\"m\"} 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_a_reload_removes_leaves_metrics_and_a_changed_one_keeps_its_counters() {
    let w = World::new();
    w.log.create("in", 1);
    w.log.create("in2", 1);
    w.log.append_json("in", 0, &json!({"orderNumber": 1}));
    w.log.append_json("in2", 0, &json!({"orderNumber": 2}));
    let flow = |name: &str, topic: &str| {
        format!(
            r#"
[[pipeline.flows]]
name = "{name}"
dead_letter = "{name}.dlq"
source = {{ topic = "{topic}", group = "g-{name}-{topic}" }}
sinks = [{{ name = "h", history = {{ collection = "a.{name}" }} }}]
"#
        )
    };
    let mut p = w.start(&format!("{}{}", flow("gone", "in"), flow("moved", "in")));
    wait_records(&p, "gone", 1).await;
    wait_records(&p, "moved", 1).await;
    let text = w.registry.render();
    assert!(text.contains("flow=\"gone\""), "{text}");

    p.reload(&parse(&flow("moved", "in2"))).await.unwrap();
    wait_records(&p, "moved", 2).await;
    let text = w.registry.render();
    assert!(
        !text.contains("flow=\"gone\""),
        "removed flow still in\n{text}"
    );
    assert!(
        text.contains("streamcache_pipeline_records_in_total{flow=\"moved\"} 2"),
        "{text}"
    );
    assert!(
        text.contains(
            "streamcache_pipeline_lag_records{flow=\"moved\",partition=\"0\",topic=\"in2\"} 0"
        ),
        "{text}"
    );
    assert!(
        !text.contains("topic=\"in\""),
        "lag of the old topic still in\n{text}"
    );
    p.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn flow_error(text: &str) -> (String, String, String) {
    let config: Config = toml::from_str(text).unwrap();
    match pipeline::check(&config.pipeline).unwrap_err() {
        Error::Invalid {
            flow,
            field,
            reason,
        } => (flow, field, reason),
        other => panic!("unexpected {other}"),
    }
}

fn flow_with(extra_flow_keys: &str, sinks: &str) -> String {
    format!(
        r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
{extra_flow_keys}
source = {{ topic = "t", group = "g" }}
sinks = [{sinks}]
"#
    )
}

const HISTORY_SINK: &str = r#"{ name = "h", history = { collection = "a.b" } }"#;

#[test]
fn invalid_flows_are_rejected_naming_the_flow_and_the_field() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            flow_with("", r#"{ name = "c", cache = { key = "k:{a" } }"#),
            "sinks[c].cache.key",
            "unclosed",
        ),
        (
            flow_with(
                "",
                r#"{ name = "c", cache = { key = "k:{lines.+1.code}" } }"#,
            ),
            "sinks[c].cache.key",
            "an array index is decimal digits",
        ),
        (
            flow_with("", r#"{ name = "c", cache = { key = "k", ttl_ms = 0 } }"#),
            "sinks[c].cache.ttl_ms",
            "outside",
        ),
        (
            flow_with(
                "",
                r#"{ name = "h", history = { collection = "a.b", mode = "upsert" } }"#,
            ),
            "sinks[h].history.key",
            "needs a key",
        ),
        (
            flow_with(
                "",
                r#"{ name = "h", history = { collection = "a.b", key = "{x}" } }"#,
            ),
            "sinks[h].history.key",
            "only upserts",
        ),
        (
            flow_with("", r#"{ name = "h", history = { collection = "ab" } }"#),
            "sinks[h].history.collection",
            "db.collection",
        ),
        (
            flow_with("", r#"{ name = "t", topic = { topic = "t" } }"#),
            "sinks[t].topic.topic",
            "loop",
        ),
        (
            flow_with("", r#"{ name = "x" }"#),
            "sinks[x]",
            "exactly one",
        ),
        (flow_with("", ""), "sinks", "0 sinks"),
        (
            flow_with("", &format!("{HISTORY_SINK}, {HISTORY_SINK}")),
            "sinks[h].name",
            "same name",
        ),
        (
            flow_with(
                r#"routes = [{ name = "r", sinks = ["nope"] }]"#,
                HISTORY_SINK,
            ),
            "routes[r].sinks",
            "no sink is named `nope`",
        ),
        (
            flow_with(
                r#"routes = [{ name = "r", when = [{ path = "a", regex = "(" }], sinks = ["h"] }]"#,
                HISTORY_SINK,
            ),
            "routes[r].when[0].regex",
            "regular expression",
        ),
        (
            flow_with(
                r#"routes = [{ name = "r", when = [{ path = "a" }], sinks = ["h"] }]"#,
                HISTORY_SINK,
            ),
            "routes[r].when[0].path",
            "no operator",
        ),
        (
            flow_with(
                r#"routes = [{ name = "unmatched", sinks = ["h"] }]"#,
                HISTORY_SINK,
            ),
            "routes[unmatched]",
            "reserved",
        ),
        (
            flow_with(
                r#"routes = [{ name = "r", sinks = ["h"] }]"#,
                &format!(
                    r#"{HISTORY_SINK}, {{ name = "idle", history = {{ collection = "a.c" }} }}"#
                ),
            ),
            "sinks[idle]",
            "no route",
        ),
        (
            flow_with(r#"unmatched = ["h"]"#, HISTORY_SINK),
            "unmatched",
            "only meaningful",
        ),
        (
            flow_with(r#"transforms = [{ jolt = "{oops" }]"#, HISTORY_SINK),
            "transforms[0].jolt",
            "not JSON",
        ),
        (
            flow_with(r#"transforms = [{ jolt = 3 }]"#, HISTORY_SINK),
            "transforms[0]",
            "array of operations",
        ),
        (
            flow_with(r#"transforms = [{ }]"#, HISTORY_SINK),
            "transforms[0]",
            "exactly one",
        ),
        (
            flow_with("batch_records = 0", HISTORY_SINK),
            "batch_records",
            "outside",
        ),
        (
            flow_with("poll_wait_ms = 10001", HISTORY_SINK),
            "poll_wait_ms",
            "outside",
        ),
    ];
    for (text, field, reason) in cases {
        let (flow, got_field, got_reason) = flow_error(&text);
        assert_eq!(flow, "f", "{text}");
        assert_eq!(got_field, field, "{text}: {got_reason}");
        assert!(
            got_reason.contains(reason),
            "{field}: `{got_reason}` lacks `{reason}`"
        );
    }
}

#[test]
fn flow_names_groups_and_dead_letter_topics_are_checked_across_the_set() {
    let two = |a: &str, b: &str, ga: &str, gb: &str| {
        format!(
            r#"
[[pipeline.flows]]
name = "{a}"
dead_letter = "d1"
source = {{ topic = "t", group = "{ga}" }}
sinks = [{HISTORY_SINK}]
[[pipeline.flows]]
name = "{b}"
dead_letter = "d2"
source = {{ topic = "t", group = "{gb}" }}
sinks = [{HISTORY_SINK}]
"#
        )
    };
    assert_eq!(flow_error(&two("a", "a", "g1", "g2")).1, "name");
    let (flow, field, _) = flow_error(&two("a", "b", "g", "g"));
    assert_eq!((flow.as_str(), field.as_str()), ("b", "source.group"));
    let (flow, field, _) = flow_error(&two("bad name", "b", "g1", "g2"));
    assert_eq!((flow.as_str(), field.as_str()), ("#0", "name"));
    let self_dlq =
        flow_with("", HISTORY_SINK).replace("dead_letter = \"f.dlq\"", "dead_letter = \"t\"");
    assert_eq!(flow_error(&self_dlq).1, "dead_letter");
}

#[test]
fn unknown_keys_are_rejected_by_the_parser_with_their_line() {
    let text = flow_with("colour = \"blue\"", HISTORY_SINK);
    let err = config::parse_toml(&text, Path::new("streamcache.toml")).unwrap_err();
    assert!(err.reason.contains("unknown field `colour`"), "{err}");
    assert!(err.to_string().contains("streamcache.toml:5"), "{err}");
    let text = flow_with("", r#"{ name = "c", cache = { key = "k", colour = 1 } }"#);
    assert!(config::parse_toml(&text, Path::new("x.toml")).is_err());
}

#[test]
fn config_load_reports_an_invalid_flow_as_the_pipeline_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("streamcache.toml");
    std::fs::write(&file, flow_with("batch_records = 10001", HISTORY_SINK)).unwrap();
    let err = config::load(Some(&file), &config::Overrides::default()).unwrap_err();
    assert_eq!(err.setting, "pipeline");
    assert!(err.reason.contains("flow `f`: `batch_records`"), "{err}");
    // The origin is the line of `[[pipeline.flows]]` (the text opens with a blank line).
    assert!(err.to_string().contains("streamcache.toml:2)"), "{err}");
}

#[test]
fn per_flow_limits_hold_at_max_and_fail_at_max_plus_one() {
    let ok = |keys: &str| {
        let config: Config = toml::from_str(&flow_with(keys, HISTORY_SINK)).unwrap();
        pipeline::check(&config.pipeline).is_ok()
    };
    for (key, max) in [
        ("batch_records", pipeline::BATCH_RECORDS_MAX as u64),
        ("queue_batches", pipeline::QUEUE_BATCHES_MAX as u64),
        ("poll_wait_ms", pipeline::POLL_WAIT_MS_MAX),
    ] {
        assert!(ok(&format!("{key} = {max}")), "{key} at max");
        assert!(!ok(&format!("{key} = {}", max + 1)), "{key} at max + 1");
    }
    let named = |len: usize| {
        let text = flow_with("", HISTORY_SINK)
            .replace("name = \"f\"", &format!("name = \"{}\"", "n".repeat(len)));
        let config: Config = toml::from_str(&text).unwrap();
        pipeline::check(&config.pipeline)
    };
    assert!(named(pipeline::FLOW_NAME_BYTES_MAX).is_ok());
    assert!(named(pipeline::FLOW_NAME_BYTES_MAX + 1).is_err());

    let flows = |n: usize| {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!(
                "[[pipeline.flows]]\nname = \"f{i}\"\ndead_letter = \"d\"\nsource = {{ topic = \"t\", group = \"g{i}\" }}\nsinks = [{HISTORY_SINK}]\n"
            ));
        }
        let config: Config = toml::from_str(&text).unwrap();
        pipeline::check(&config.pipeline)
    };
    assert!(flows(pipeline::FLOWS_MAX).is_ok());
    assert!(flows(pipeline::FLOWS_MAX + 1).is_err());
    let sinks = |n: usize| {
        let list: Vec<String> = (0..n)
            .map(|i| format!(r#"{{ name = "s{i}", history = {{ collection = "a.b" }} }}"#))
            .collect();
        let config: Config = toml::from_str(&flow_with("", &list.join(", "))).unwrap();
        pipeline::check(&config.pipeline)
    };
    assert!(sinks(pipeline::SINKS_PER_FLOW_MAX).is_ok());
    assert!(sinks(pipeline::SINKS_PER_FLOW_MAX + 1).is_err());
}

/// The counts and lengths of a flow's routes, conditions, transforms, group, history names and
/// cache TTL hold at their maximum and are refused one past it.
#[test]
fn route_transform_name_and_ttl_limits_hold_at_max_and_fail_at_max_plus_one() {
    let checked = |text: String| {
        let config: Config = toml::from_str(&text).unwrap();
        pipeline::check(&config.pipeline)
    };
    let routes = |n: usize| {
        let list: Vec<String> = (0..n)
            .map(|i| format!(r#"{{ name = "r{i}", when = [{{ path = "a", exists = true }}], sinks = ["h"] }}"#))
            .collect();
        checked(flow_with(
            &format!("routes = [{}]", list.join(", ")),
            HISTORY_SINK,
        ))
    };
    assert!(routes(pipeline::ROUTES_PER_FLOW_MAX).is_ok());
    assert!(routes(pipeline::ROUTES_PER_FLOW_MAX + 1).is_err());
    let conditions = |n: usize| {
        let list = vec![r#"{ path = "a", exists = true }"#; n].join(", ");
        checked(flow_with(
            &format!(r#"routes = [{{ name = "r", when = [{list}], sinks = ["h"] }}]"#),
            HISTORY_SINK,
        ))
    };
    assert!(conditions(pipeline::CONDITIONS_PER_ROUTE_MAX).is_ok());
    assert!(conditions(pipeline::CONDITIONS_PER_ROUTE_MAX + 1).is_err());
    let transforms = |n: usize| {
        let list = vec![r#"{ jolt = { op = "fail-if", field = "poison" } }"#; n].join(", ");
        checked(flow_with(&format!("transforms = [{list}]"), HISTORY_SINK))
    };
    assert!(transforms(pipeline::TRANSFORMS_PER_FLOW_MAX).is_ok());
    assert!(transforms(pipeline::TRANSFORMS_PER_FLOW_MAX + 1).is_err());
    let group = |len: usize| {
        checked(flow_with("", HISTORY_SINK).replace(
            r#"group = "g""#,
            &format!(r#"group = "{}""#, "g".repeat(len)),
        ))
    };
    assert!(group(pipeline::GROUP_BYTES_MAX).is_ok());
    assert!(group(pipeline::GROUP_BYTES_MAX + 1).is_err());
    let names = |len: usize| {
        let name = "n".repeat(len);
        let db = checked(flow_with(
            "",
            &format!(r#"{{ name = "h", history = {{ collection = "{name}.b" }} }}"#),
        ));
        let coll = checked(flow_with(
            "",
            &format!(r#"{{ name = "h", history = {{ collection = "a.{name}" }} }}"#),
        ));
        (db.is_ok(), coll.is_ok())
    };
    assert_eq!(names(pipeline::NAME_IN_COLLECTION_BYTES_MAX), (true, true));
    assert_eq!(
        names(pipeline::NAME_IN_COLLECTION_BYTES_MAX + 1),
        (false, false)
    );
    let ttl = |ms: u64| {
        checked(flow_with(
            "",
            &format!(r#"{{ name = "c", cache = {{ key = "k", ttl_ms = {ms} }} }}"#),
        ))
    };
    assert!(ttl(pipeline::TTL_MS_MAX).is_ok());
    assert!(ttl(pipeline::TTL_MS_MAX + 1).is_err());
}

#[test]
fn default_toml_parses_to_the_default_config_with_the_reference_flow() {
    let parsed = config::parse_toml(&config::default_toml(), Path::new("default.toml")).unwrap();
    assert_eq!(parsed, Config::default());
    let flows = &parsed.pipeline.flows;
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0], pipeline::reference_flow());
    pipeline::check(&parsed.pipeline).unwrap();
    let spec: Value = serde_json::from_str(pipeline::REFERENCE_ORDER_SPEC).unwrap();
    assert_eq!(spec[0]["operation"], json!("shift"));
    assert_eq!(spec[1]["operation"], json!("remove"));
    // The reference system's watcher is part of the same default configuration.
    let w = &parsed.realtime.watchers[0];
    assert_eq!(
        (w.watch.as_str(), w.channel.as_str(), w.event.as_str()),
        ("shop.orders", "orders", "NewOrder")
    );
}

#[test]
fn a_config_file_without_a_pipeline_section_runs_the_reference_flow_and_flows_empty_runs_none() {
    let config: Config = toml::from_str("log_level = \"debug\"").unwrap();
    assert_eq!(config.pipeline.flows, [pipeline::reference_flow()]);
    let config: Config = toml::from_str("[pipeline]\nflows = []").unwrap();
    assert!(config.pipeline.flows.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_flow_caches_the_latest_order_per_customer_and_upserts_history() {
    let w = World::new();
    w.log.create("orders", 3);
    let order = |n: u64, customer: u64| json!({"orderNumber": n, "customerNumber": customer, "status": "In Process"});
    w.log.append_json("orders", 0, &order(10100, 103));
    w.log.append_json("orders", 0, &order(10101, 103));
    w.log.append_json("orders", 2, &order(10102, 112));
    w.log.append_json("orders", 0, &order(10101, 103));
    let config = PipelineConfig::default();
    let p = w.start_config(&config);
    wait_records(&p, "orders", 4).await;
    let cache = w.cache.0.lock().unwrap().clone();
    let CacheValue::String(latest) = &cache["customer:103"].value else {
        panic!()
    };
    assert_eq!(
        serde_json::from_str::<Value>(latest).unwrap()["orderNumber"],
        json!(10101)
    );
    assert_eq!(
        cache["customer:103"].ttl_ms,
        Some(pipeline::REFERENCE_CACHE_TTL_MS)
    );
    assert_eq!(
        w.history.docs("shop.orders").len(),
        3,
        "upsert by orderNumber"
    );
    p.stop().await;
}

/// Creates topic `orders` (3 partitions) holding an order `{orderNumber, customerNumber}` per
/// `(partition, orderNumber, customerNumber, create time)`.
fn append_orders_created_at(w: &World, orders: &[(usize, u64, u64, i64)]) {
    w.log.create("orders", 3);
    for &(partition, number, customer, created_ms) in orders {
        let order = json!({"orderNumber": number, "customerNumber": customer});
        w.log
            .append_json_at("orders", partition, &order, created_ms);
    }
}

#[test]
fn a_rebuild_gives_cached_keys_the_ttl_they_had_left_and_skips_expired_ones() {
    let w = World::new();
    let manual = ManualClock::shared(1_800_000_000_000);
    let clock: SharedClock = manual.clone();
    let now = 1_800_000_000_000_i64;
    let ttl = i64::try_from(pipeline::REFERENCE_CACHE_TTL_MS).unwrap();
    // Expired an hour ago, expiring exactly now, a quarter of the TTL gone, created now.
    append_orders_created_at(
        &w,
        &[
            (0, 10100, 101, now - 2 * ttl),
            (1, 10101, 102, now - ttl),
            (2, 10102, 103, now - ttl / 4),
            (0, 10103, 104, now),
        ],
    );
    // Committed past every record but the last: that one is left to live processing.
    w.history.state.lock().unwrap().offsets.insert(
        "orders-pipeline".into(),
        BTreeMap::from([(0, 1), (1, 1), (2, 1)]),
    );
    let config = PipelineConfig::default();
    assert_eq!(config.flows[0].source.group, "orders-pipeline");
    let replayed =
        pipeline::rebuild_cache(&config, &w.seams(), &clock, &w.shutdown.signal()).unwrap();
    assert_eq!(replayed, 3);
    let cache = w.cache.0.lock().unwrap().clone();
    let keys: Vec<&str> = cache.keys().map(String::as_str).collect();
    assert_eq!(keys, ["customer:103"], "expired keys are not rebuilt");
    assert_eq!(
        cache["customer:103"].ttl_ms,
        Some(pipeline::REFERENCE_CACHE_TTL_MS * 3 / 4),
        "the TTL left, not a fresh one"
    );
    // Later, the clock has moved on: the same record now has less left.
    manual.advance(Duration::from_millis(pipeline::REFERENCE_CACHE_TTL_MS / 2));
    pipeline::rebuild_cache(&config, &w.seams(), &clock, &w.shutdown.signal()).unwrap();
    assert_eq!(
        w.cache.0.lock().unwrap()["customer:103"].ttl_ms,
        Some(pipeline::REFERENCE_CACHE_TTL_MS / 4)
    );
}

/// Flow `view` on topic `in` (group `g-view`, `batch_records` a batch) caching every record as
/// `customer:{customer}`, with `committed` as its committed offsets.
fn view_flow(w: &World, committed: BTreeMap<u32, u64>, batch_records: u32) -> PipelineConfig {
    w.history
        .state
        .lock()
        .unwrap()
        .offsets
        .insert("g-view".into(), committed);
    parse(&format!(
        r#"
[[pipeline.flows]]
name = "view"
dead_letter = "view.dlq"
batch_records = {batch_records}
source = {{ topic = "in", group = "g-view" }}
sinks = [{{ name = "c", cache = {{ key = "customer:{{customer}}" }} }}]
"#
    ))
}

#[test]
fn a_rebuild_reads_no_further_than_the_committed_offsets() {
    let w = World::new();
    w.log.create("in", 2);
    for n in 0..20 {
        w.log
            .append_json("in", n % 2, &json!({"n": n, "customer": n % 5}));
    }
    // Partition 0 committed through its second record, partition 1 through its first; the
    // other 17 records are the flow's lag, left to live processing.
    let config = view_flow(&w, BTreeMap::from([(0, 2), (1, 1)]), 1);
    let replayed =
        pipeline::rebuild_cache(&config, &w.seams(), &w.clock, &w.shutdown.signal()).unwrap();
    assert_eq!(replayed, 3);
    let keys: Vec<String> = w.cache.0.lock().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["customer:0", "customer:1", "customer:2"]);
    // One record a poll: offsets 0 and 1 of partition 0, offset 0 of partition 1, then an
    // empty poll ends the replay.
    assert_eq!(
        w.log.polls.load(Ordering::SeqCst),
        4,
        "polls: the replay stops at the committed offsets"
    );
}

#[test]
fn a_rebuild_stops_between_batches_once_shutdown_has_fired() {
    let w = World::new();
    w.log.create("in", 1);
    for n in 0..20 {
        w.log.append_json("in", 0, &json!({"n": n, "customer": n}));
    }
    let config = view_flow(&w, BTreeMap::from([(0, 20)]), 4);
    w.shutdown.trigger();
    let replayed =
        pipeline::rebuild_cache(&config, &w.seams(), &w.clock, &w.shutdown.signal()).unwrap();
    assert!(
        replayed <= 4,
        "at most one batch after shutdown, replayed {replayed}"
    );
    assert!(w.log.polls.load(Ordering::SeqCst) <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_write_gets_the_ttl_left_since_its_records_creation_as_a_rebuild_gives_it() {
    let w = World::new();
    let now = WORLD_START_MS;
    let ttl = i64::try_from(pipeline::REFERENCE_CACHE_TTL_MS).unwrap();
    // A flow that is behind: expired an hour ago, a quarter of the TTL gone, created now.
    append_orders_created_at(
        &w,
        &[
            (0, 10100, 101, now - 2 * ttl),
            (1, 10101, 102, now - ttl / 4),
            (2, 10102, 103, now),
        ],
    );
    let config = PipelineConfig::default();
    let p = w.start_config(&config);
    wait_records(&p, "orders", 3).await;
    p.stop().await;
    let live = w.cache.0.lock().unwrap().clone();
    let keys: Vec<&str> = live.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["customer:102", "customer:103"],
        "an expired entry is not written"
    );
    assert_eq!(
        live["customer:102"].ttl_ms,
        Some(pipeline::REFERENCE_CACHE_TTL_MS * 3 / 4),
        "the TTL left since the record was created, not a fresh one"
    );
    assert_eq!(
        live["customer:103"].ttl_ms,
        Some(pipeline::REFERENCE_CACHE_TTL_MS)
    );
    // A rebuild at the same moment gives every key the same TTL.
    w.cache.0.lock().unwrap().clear();
    pipeline::rebuild_cache(&config, &w.seams(), &w.clock, &w.shutdown.signal()).unwrap();
    let rebuilt = w.cache.0.lock().unwrap().clone();
    assert_eq!(
        rebuilt.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>()
    );
    for (key, entry) in &live {
        assert_eq!(rebuilt[key].ttl_ms, entry.ttl_ms, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_restarts_a_failed_flow_from_its_committed_offsets() {
    let w = World::new();
    w.log.create("in", 1);
    w.log.append_json("in", 0, &json!({"orderNumber": 1}));
    let text = r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
source = { topic = "in", group = "g" }
sinks = [{ name = "h", history = { collection = "a.b" } }]
"#;
    let mut p = w.start(text);
    wait_records(&p, "f", 1).await;
    w.history.fatal.store(true, Ordering::SeqCst);
    w.log.append_json("in", 0, &json!({"orderNumber": 2}));
    wait_until(&p, "the flow to fail", |s| {
        matches!(status_of(s, "f").state, FlowState::Failed(_))
    })
    .await;
    w.history.fatal.store(false, Ordering::SeqCst);
    let d = p.reload(&parse(text)).await.unwrap();
    assert_eq!(
        (d.unchanged.clone(), d.restarted.clone()),
        (vec!["f".to_owned()], vec!["f".to_owned()])
    );
    wait_until(&p, "the second record", |s| {
        status_of(s, "f").committed.get(&0) == Some(&2)
    })
    .await;
    assert_eq!(w.history.numbers("a.b", "orderNumber"), [1, 2]);
    assert_eq!(status_of(&p.status(), "f").state, FlowState::Running);
    p.stop().await;
}

/// A spec written as TOML values is held to `SPEC_BYTES_MAX` as its JSON text, as one given
/// as a string or a file is: a 16 MiB configuration file could otherwise carry a spec sixteen
/// times the limit.
#[test]
fn inline_spec_values_at_max_and_past_it() {
    // `[{"operation":"shift","spec":{"a":"` + padding + `"}}]`, compact.
    let frame = r#"[{"operation":"shift","spec":{"a":""}}]"#.len();
    let flow = |len: usize| {
        one_step_flow(&format!(
            r#"jolt = [{{ operation = "shift", spec = {{ a = "{}" }} }}]"#,
            "a".repeat(len - frame)
        ))
    };
    let at_max = pipeline::plan(&parse(&flow(pipeline::SPEC_BYTES_MAX))).unwrap();
    assert_eq!(
        serde_json::to_string(&at_max[0].specs()[0]).unwrap().len(),
        pipeline::SPEC_BYTES_MAX
    );
    let config: Config = toml::from_str(&flow(pipeline::SPEC_BYTES_MAX + 1)).unwrap();
    let err = pipeline::check(&config.pipeline).unwrap_err().to_string();
    assert!(
        err.contains("transforms[0].jolt") && err.contains("limit of 1048576 bytes"),
        "{}",
        err.get(..200).unwrap_or(&err)
    );
}
