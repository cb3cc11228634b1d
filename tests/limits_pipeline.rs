//! Capability: the pipeline's input-controlled limits at max and max + 1 —
//! `TOPIC_NAME_BYTES_MAX` (source, dead-letter and forward topics), `REGEX_COMPILED_BYTES_MAX`
//! (a route's `regex` condition) and `FLOW_LANES_MAX` (lanes of one flow).
//!
//! Method: configuration checks go through `pipeline::check`, the function config loading
//! calls; running flows use a `Pipeline` over small in-memory fakes of every seam on a manual
//! clock. A fake source splits into one lane per partition up to the lane count the runner asks
//! for and records which lanes polled. Waits are bounded waits on the pipeline's change
//! counter; nothing sleeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use streamcache::clock::ManualClock;
use streamcache::config::Config;
use streamcache::metrics::Registry;
use streamcache::pipeline::{
    self, CacheSink, CacheWrite, CommitOffset, DeadLetter, Error, FLOW_LANES_MAX, FlowStatus,
    HistoryCommitError, HistorySink, HistoryWrite, Pipeline, PipelineConfig,
    REGEX_COMPILED_BYTES_MAX, SeamError, Seams, Source, SourceBatch, SourceConfig, SourceOpener,
    SourceRecord, SourceStart, TOPIC_NAME_BYTES_MAX, TopicSink, TopicWrite, Transform,
    TransformCompiler, WakeSignal,
};
use streamcache::shutdown::Shutdown;

mod regex_common;

use regex_common::{REPEATS_AT_1_MIB, big_pattern, repeats_at_max};

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Fakes

/// Topic → partition → JSON values, fixed before the pipeline starts.
type Topics = BTreeMap<String, Vec<Vec<Value>>>;

/// What the sources saw: the lane counts the runner asked `split` for, and the partitions
/// each lane (by index) returned records from.
#[derive(Default)]
struct Observed {
    lanes_asked: Vec<usize>,
    polled: BTreeMap<usize, BTreeSet<u32>>,
}

struct FakeLog {
    topics: Topics,
    observed: Mutex<Observed>,
    /// Never sent on: an empty poll parks the fetcher on it until the flow stops, so idle lanes
    /// neither spin nor wait on a timer.
    wake: tokio::sync::watch::Sender<u64>,
}

impl FakeLog {
    fn new(topics: Topics) -> Arc<Self> {
        Arc::new(Self {
            topics,
            observed: Mutex::default(),
            wake: tokio::sync::watch::channel(0).0,
        })
    }

    /// A log holding topic `name` with one record `{"n": p}` in each of its `partitions`.
    fn one_per_partition(name: &str, partitions: usize) -> Arc<Self> {
        let parts = (0..partitions).map(|p| vec![json!({ "n": p })]).collect();
        Self::new(BTreeMap::from([(name.to_owned(), parts)]))
    }
}

/// Opens [`FakeSource`]s over the log.
struct FakeOpener(Arc<FakeLog>);

impl SourceOpener for FakeOpener {
    fn open(
        &self,
        source: &SourceConfig,
        start: &SourceStart,
    ) -> Result<Box<dyn Source>, SeamError> {
        let parts = self
            .0
            .topics
            .get(&source.topic)
            .ok_or_else(|| SeamError::fatal(format!("no topic {}", source.topic)))?;
        let positions = (0..parts.len())
            .map(|i| {
                let p = u32::try_from(i).unwrap();
                let at = match start {
                    SourceStart::Committed(c) | SourceStart::Replay(c) => {
                        c.get(&p).copied().unwrap_or(0)
                    }
                    SourceStart::Earliest => 0,
                    SourceStart::Latest => parts[i].len() as u64,
                };
                (p, at)
            })
            .collect();
        Ok(Box::new(FakeSource {
            log: self.0.clone(),
            topic: source.topic.clone(),
            lane: 0,
            positions,
            wake: Some(self.0.wake.subscribe()),
        }))
    }
}

struct FakeSource {
    log: Arc<FakeLog>,
    topic: String,
    /// This source's index among the lanes `split` made (0 before a split).
    lane: usize,
    /// Partition → next offset, for the partitions this source reads.
    positions: BTreeMap<u32, u64>,
    wake: Option<tokio::sync::watch::Receiver<u64>>,
}

impl Source for FakeSource {
    /// As the log engine's source: at most `lanes` sources, partition `i` to lane `i % lanes`.
    fn split(self: Box<Self>, lanes: usize) -> Vec<Box<dyn Source>> {
        self.log.observed.lock().unwrap().lanes_asked.push(lanes);
        let lanes = lanes.clamp(1, self.positions.len().max(1));
        let mut parts: Vec<FakeSource> = (0..lanes)
            .map(|lane| FakeSource {
                log: self.log.clone(),
                topic: self.topic.clone(),
                lane,
                positions: BTreeMap::new(),
                wake: self.wake.clone(),
            })
            .collect();
        for (i, (p, at)) in self.positions.iter().enumerate() {
            parts[i % lanes].positions.insert(*p, *at);
        }
        parts
            .into_iter()
            .map(|part| Box::new(part) as Box<dyn Source>)
            .collect()
    }

    fn take_wake_signal(&mut self) -> Option<WakeSignal> {
        WakeSignal::new(self.wake.take().into_iter().collect())
    }

    fn poll(&mut self, max_records: usize, _wait_ms: u64) -> Result<SourceBatch, SeamError> {
        let parts = &self.log.topics[&self.topic];
        let mut batch = SourceBatch::default();
        for (&p, at) in &mut self.positions {
            let records = &parts[p as usize];
            batch.end_offsets.insert(p, records.len() as u64);
            while batch.records.len() < max_records && (*at as usize) < records.len() {
                batch.records.push(SourceRecord {
                    topic: self.topic.clone(),
                    partition: p,
                    offset: *at,
                    timestamp_ms: 0,
                    key: None,
                    value: Some(serde_json::to_vec(&records[*at as usize]).unwrap()),
                    headers: Vec::new(),
                });
                *at += 1;
            }
        }
        let mut observed = self.log.observed.lock().unwrap();
        let polled = observed.polled.entry(self.lane).or_default();
        polled.extend(batch.records.iter().map(|r| r.partition));
        Ok(batch)
    }
}

/// No flow here has transforms; any spec is refused.
struct NoTransforms;

impl TransformCompiler for NoTransforms {
    fn compile(&self, _spec: &Value) -> Result<Arc<dyn Transform>, SeamError> {
        Err(SeamError::rejected("no transforms in these tests"))
    }
}

/// Every sink at once: cache writes, history commits (documents and offsets) and topic
/// writes (forwards and dead letters) are recorded in memory.
#[derive(Default)]
struct FakeSinks {
    cache: Mutex<Vec<CacheWrite>>,
    /// group → partition → next offset.
    offsets: Mutex<BTreeMap<String, BTreeMap<u32, u64>>>,
    /// (topic, record) in write order.
    topics: Mutex<Vec<(String, TopicWrite)>>,
}

impl FakeSinks {
    fn values_on(&self, topic: &str) -> Vec<Value> {
        let topics = self.topics.lock().unwrap();
        topics
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, w)| serde_json::from_slice(w.value.as_deref().unwrap()).unwrap())
            .collect()
    }
}

impl CacheSink for FakeSinks {
    fn write(&self, write: CacheWrite) -> Result<(), SeamError> {
        self.cache.lock().unwrap().push(write);
        Ok(())
    }
}

impl HistorySink for FakeSinks {
    fn committed(&self, group: &str, _topic: &str) -> Result<BTreeMap<u32, u64>, SeamError> {
        let offsets = self.offsets.lock().unwrap();
        Ok(offsets.get(group).cloned().unwrap_or_default())
    }

    fn commit(
        &self,
        group: &str,
        _docs: &mut [HistoryWrite],
        offsets: &[CommitOffset],
    ) -> Result<(), HistoryCommitError> {
        let mut all = self.offsets.lock().unwrap();
        let group = all.entry(group.to_owned()).or_default();
        for o in offsets {
            group.insert(o.partition, o.next_offset);
        }
        Ok(())
    }

    fn persist(&self) -> Result<(), SeamError> {
        Ok(())
    }
}

impl TopicSink for FakeSinks {
    fn produce(&self, topic: &str, record: TopicWrite) -> Result<(), SeamError> {
        self.topics.lock().unwrap().push((topic.to_owned(), record));
        Ok(())
    }
}

impl DeadLetter for FakeSinks {
    fn send(&self, topic: &str, letters: Vec<TopicWrite>) -> Result<(), SeamError> {
        let mut all = self.topics.lock().unwrap();
        all.extend(letters.into_iter().map(|l| (topic.to_owned(), l)));
        Ok(())
    }
}

/// A pipeline over `log` and fresh sinks; the shutdown trigger must outlive the pipeline.
struct World {
    log: Arc<FakeLog>,
    sinks: Arc<FakeSinks>,
    pipeline: Pipeline,
    _shutdown: Shutdown,
}

impl World {
    fn start(log: Arc<FakeLog>, toml_text: &str) -> Self {
        let sinks = Arc::new(FakeSinks::default());
        let seams = Seams {
            source: Arc::new(FakeOpener(log.clone())),
            transform: Arc::new(NoTransforms),
            cache: sinks.clone(),
            history: sinks.clone(),
            topic: sinks.clone(),
            dead_letter: sinks.clone(),
        };
        let shutdown = Shutdown::new();
        let pipeline = Pipeline::start(
            &parse(toml_text),
            seams,
            ManualClock::shared(1_700_000_000_000),
            Arc::new(Registry::new()),
            shutdown.signal(),
        )
        .unwrap();
        Self {
            log,
            sinks,
            pipeline,
            _shutdown: shutdown,
        }
    }

    /// Waits until the only flow has committed `partitions` partitions of one record each;
    /// returns its status.
    async fn wait_committed(&self, partitions: usize) -> FlowStatus {
        let all: BTreeMap<u32, u64> = (0..u32::try_from(partitions).unwrap())
            .map(|p| (p, 1))
            .collect();
        self.wait_committed_to(&all).await
    }

    /// Waits until the only flow has committed exactly `all` (partition → next offset);
    /// returns its status.
    async fn wait_committed_to(&self, all: &BTreeMap<u32, u64>) -> FlowStatus {
        let mut changes = self.pipeline.changes();
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                changes.borrow_and_update();
                let status = self.pipeline.status().remove(0);
                if status.committed == *all {
                    return status;
                }
                changes.changed().await.unwrap();
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("timed out: {:#?}", self.pipeline.status()))
    }
}

/// Parses a `[pipeline]` section and checks it the way config loading does.
fn parse(toml_text: &str) -> PipelineConfig {
    let config: Config = toml::from_str(toml_text).unwrap();
    pipeline::check(&config.pipeline).unwrap();
    config.pipeline
}

/// The `Invalid` error `pipeline::check` gives for `toml_text`, as (flow, field, reason).
fn invalid(toml_text: &str) -> (String, String, String) {
    let config: Config = toml::from_str(toml_text).unwrap();
    match pipeline::check(&config.pipeline) {
        Err(Error::Invalid {
            flow,
            field,
            reason,
        }) => (flow, field, reason),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// TOPIC_NAME_BYTES_MAX

/// One flow `f` reading `source`, dead-lettering to `dead_letter` and forwarding every record
/// to `forward`.
fn forwarding_flow(source: &str, dead_letter: &str, forward: &str) -> String {
    format!(
        r#"
[[pipeline.flows]]
name = "f"
dead_letter = "{dead_letter}"
source = {{ topic = "{source}", group = "g" }}
sinks = [{{ name = "fwd", topic = {{ topic = "{forward}" }} }}]
"#
    )
}

/// A topic name of `len` bytes, distinct per `tag` so the three topics of a flow differ.
fn topic_of(tag: char, len: usize) -> String {
    format!("{tag}{}", "t".repeat(len - 1))
}

#[test]
fn topic_name_bytes_max_matches_the_log() {
    // A flow must be able to name every topic the log can hold, and nothing the log refuses.
    assert_eq!(TOPIC_NAME_BYTES_MAX, streamcache::log::TOPIC_NAME_BYTES_MAX);
}

#[test]
fn topic_names_at_max_pass_the_check_and_one_byte_more_is_refused_per_field() {
    let max = TOPIC_NAME_BYTES_MAX;
    let (s, d, t) = (topic_of('s', max), topic_of('d', max), topic_of('t', max));
    parse(&forwarding_flow(&s, &d, &t));

    let (s1, d1, t1) = (
        topic_of('s', max + 1),
        topic_of('d', max + 1),
        topic_of('t', max + 1),
    );
    let cases = [
        (forwarding_flow(&s1, &d, &t), "source.topic", &s1),
        (forwarding_flow(&s, &d1, &t), "dead_letter", &d1),
        (forwarding_flow(&s, &d, &t1), "sinks[fwd].topic.topic", &t1),
    ];
    for (text, want_field, name) in cases {
        let (flow, field, reason) = invalid(&text);
        assert_eq!((flow.as_str(), field.as_str()), ("f", want_field));
        assert_eq!(
            reason,
            format!("`{name}` is not a topic name (1 to {TOPIC_NAME_BYTES_MAX} bytes)")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_over_topics_named_at_the_max_forwards_its_records() {
    let max = TOPIC_NAME_BYTES_MAX;
    let (s, d, t) = (topic_of('s', max), topic_of('d', max), topic_of('t', max));
    let w = World::start(
        FakeLog::one_per_partition(&s, 1),
        &forwarding_flow(&s, &d, &t),
    );
    let status = w.wait_committed(1).await;
    assert_eq!((status.records_out, status.records_failed), (1, 0));
    assert_eq!(w.sinks.values_on(&t), [json!({"n": 0})]);
    assert!(w.sinks.values_on(&d).is_empty());
    w.pipeline.stop().await;
}

// ---------------------------------------------------------------------------------------------
// REGEX_COMPILED_BYTES_MAX

/// One flow routing records whose `s` matches `pattern` to a forward, the rest to `rest`.
fn routed_flow(pattern: &str) -> String {
    format!(
        r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
unmatched = ["rest"]
source = {{ topic = "in", group = "g" }}
routes = [{{ name = "r", when = [{{ path = "s", regex = "{pattern}" }}], sinks = ["hit"] }}]
sinks = [
  {{ name = "hit", topic = {{ topic = "hit" }} }},
  {{ name = "rest", topic = {{ topic = "rest" }} }},
]
"#
    )
}

#[test]
fn a_route_regex_one_repetition_past_the_compiled_max_is_refused() {
    let repeats = repeats_at_max(REGEX_COMPILED_BYTES_MAX, REPEATS_AT_1_MIB);
    parse(&routed_flow(&big_pattern(repeats)));
    let (flow, field, reason) = invalid(&routed_flow(&big_pattern(repeats + 1)));
    assert_eq!(
        (flow.as_str(), field.as_str()),
        ("f", "routes[r].when[0].regex")
    );
    assert_eq!(
        reason,
        format!(
            "not a valid regular expression: Compiled regex exceeds size limit of \
             {REGEX_COMPILED_BYTES_MAX} bytes."
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_regex_at_the_compiled_max_routes_records() {
    let repeats = repeats_at_max(REGEX_COMPILED_BYTES_MAX, REPEATS_AT_1_MIB);
    let records = vec![json!({"s": "x"}), json!({"s": "y"})];
    let log = FakeLog::new(BTreeMap::from([("in".to_owned(), vec![records])]));
    let w = World::start(log, &routed_flow(&big_pattern(repeats)));
    let status = w.wait_committed_to(&BTreeMap::from([(0, 2)])).await;
    assert_eq!((status.records_out, status.records_failed), (2, 0));
    assert_eq!(w.sinks.values_on("hit"), [json!({"s": "x"})]);
    assert_eq!(w.sinks.values_on("rest"), [json!({"s": "y"})]);
    w.pipeline.stop().await;
}

// ---------------------------------------------------------------------------------------------
// FLOW_LANES_MAX

/// A flow forwarding every record of `in` to `out`.
const LANED_FLOW: &str = r#"
[[pipeline.flows]]
name = "f"
dead_letter = "f.dlq"
source = { topic = "in", group = "g" }
sinks = [{ name = "out", topic = { topic = "out" } }]
"#;

/// Runs [`LANED_FLOW`] over `partitions` partitions of one record each until all are
/// committed; returns what the source observed.
async fn run_lanes(partitions: usize) -> (Vec<usize>, BTreeMap<usize, BTreeSet<u32>>) {
    let w = World::start(FakeLog::one_per_partition("in", partitions), LANED_FLOW);
    let status = w.wait_committed(partitions).await;
    assert_eq!(status.records_out, partitions as u64);
    assert_eq!(w.sinks.values_on("out").len(), partitions);
    w.pipeline.stop().await;
    let observed = std::mem::take(&mut *w.log.observed.lock().unwrap());
    (observed.lanes_asked, observed.polled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_lanes_max_partitions_get_one_lane_each() {
    let (asked, polled) = run_lanes(FLOW_LANES_MAX).await;
    assert_eq!(asked, [FLOW_LANES_MAX]);
    let expected: BTreeMap<usize, BTreeSet<u32>> = (0..FLOW_LANES_MAX)
        .map(|lane| (lane, BTreeSet::from([u32::try_from(lane).unwrap()])))
        .collect();
    assert_eq!(polled, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partition_past_flow_lanes_max_shares_a_lane() {
    let partitions = FLOW_LANES_MAX + 1;
    let (asked, polled) = run_lanes(partitions).await;
    assert_eq!(
        asked,
        [FLOW_LANES_MAX],
        "the runner asks for at most the max"
    );
    assert_eq!(polled.len(), FLOW_LANES_MAX, "{polled:?}");
    // Partition `max` wraps around to lane 0; every partition is read by exactly one lane.
    assert_eq!(
        polled[&0],
        BTreeSet::from([0, u32::try_from(FLOW_LANES_MAX).unwrap()])
    );
    let read: Vec<u32> = polled.values().flatten().copied().collect();
    let mut sorted = read.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(read.len(), partitions);
    assert_eq!(sorted.len(), partitions);
}
