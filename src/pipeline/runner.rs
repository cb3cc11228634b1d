//! Running flows: one task per flow that owns a fetcher task and a bounded queue between them,
//! per-flow metrics and status, reload by diff, and shutdown.
//!
//! Shape of one flow: `fetcher` polls the [`Source`] (in `spawn_blocking`; between empty polls
//! it waits on the source's append notifications, when it has them, with no timer) and sends
//! each batch into a queue of `queue_batches` batches; the flow task takes batches off the queue
//! and runs `process_batch` (in `spawn_blocking`), which ends with the history commit carrying
//! the offsets. A full queue blocks the fetcher, so at most `queue_batches + 2` fetched batches
//! exist at once (one being processed, the queue, one waiting to be queued).
//!
//! Invariant: a flow stops only between batches, so the committed offsets always describe
//! exactly the batches whose history writes landed; queued batches are dropped and read again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::FLOW_LANES_MAX;
use super::config::PipelineConfig;
use super::error::{Error, Result, SeamError};
use super::plan::{FlowDiff, FlowPlan, diff, plan};
use super::process::{BatchOutcome, CompiledFlow, process_batch};
use super::seams::{Seams, Source, SourceBatch, SourceStart, WakeSignal};
use crate::clock::SharedClock;
use crate::metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS_SECONDS, Registry};
use crate::shutdown::{Shutdown, ShutdownSignal};

/// The lag gauge family (labels `flow`, `partition`, `topic`).
const LAG_METRIC: &str = "streamcache_pipeline_lag_records";

/// Life cycle of a flow, as `GET /pipeline/flows` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowState {
    /// Reading committed offsets and opening the source.
    Starting,
    /// Processing batches.
    Running,
    /// Stopped by shutdown or reload, at a committed position.
    Stopped,
    /// Stopped by a fatal engine error (the message); the uncommitted batch is read again when
    /// the flow next starts.
    Failed(String),
}

/// A snapshot of one flow for `GET /pipeline/flows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatus {
    /// The flow's name.
    pub name: String,
    /// Its source topic.
    pub topic: String,
    /// Its consumer group.
    pub group: String,
    /// Where it is in its life cycle.
    pub state: FlowState,
    /// Records read since the process started.
    pub records_in: u64,
    /// Records written to every sink they were routed to.
    pub records_out: u64,
    /// Records sent to the dead-letter topic.
    pub records_failed: u64,
    /// Records no route matched (and no `unmatched` sink took).
    pub records_unmatched: u64,
    /// Batches committed.
    pub batches: u64,
    /// Committed next offset per partition.
    pub committed: BTreeMap<u32, u64>,
    /// Records between the committed offset and the log end per partition, the end as of the
    /// latest fetch (so records fetched but not yet committed count as lag).
    pub lag: BTreeMap<u32, u64>,
}

/// The metrics of one flow, registered in the process registry (so counts survive reloads).
#[derive(Debug)]
struct FlowMetrics {
    registry: Arc<Registry>,
    flow: String,
    records_in: Arc<Counter>,
    records_out: Arc<Counter>,
    records_failed: Arc<Counter>,
    records_unmatched: Arc<Counter>,
    batches: Arc<Counter>,
    latency: Arc<Histogram>,
}

impl FlowMetrics {
    fn register(registry: &Arc<Registry>, flow: &str) -> Self {
        let labels = || vec![("flow".to_owned(), flow.to_owned())];
        Self {
            registry: registry.clone(),
            flow: flow.to_owned(),
            records_in: registry.counter(
                "streamcache_pipeline_records_in_total",
                "Records read by a flow.",
                labels(),
            ),
            records_out: registry.counter(
                "streamcache_pipeline_records_out_total",
                "Records written to every sink they were routed to.",
                labels(),
            ),
            records_failed: registry.counter(
                "streamcache_pipeline_records_failed_total",
                "Records sent to a flow's dead-letter topic.",
                labels(),
            ),
            records_unmatched: registry.counter(
                "streamcache_pipeline_records_unmatched_total",
                "Records no route matched and no unmatched sink took.",
                labels(),
            ),
            batches: registry.counter(
                "streamcache_pipeline_batches_total",
                "Batches processed and committed by a flow.",
                labels(),
            ),
            latency: registry.histogram(
                "streamcache_pipeline_processing_seconds",
                "Time from fetching a batch to committing it, observed once per record.",
                labels(),
                LATENCY_BUCKETS_SECONDS,
            ),
        }
    }

    fn lag(&self, topic: &str, partition: u32) -> Arc<Gauge> {
        self.registry.gauge(
            LAG_METRIC,
            "Records between a flow's committed offset and the log end, per partition.",
            vec![
                ("flow".to_owned(), self.flow.clone()),
                ("partition".to_owned(), partition.to_string()),
                ("topic".to_owned(), topic.to_owned()),
            ],
        )
    }
}

/// State one flow shares with status readers.
#[derive(Debug)]
struct FlowShared {
    name: String,
    topic: String,
    group: String,
    metrics: FlowMetrics,
    /// Life cycle and positions; held only for short, await-free sections.
    inner: Mutex<FlowInner>,
}

#[derive(Debug)]
struct FlowInner {
    state: FlowState,
    committed: BTreeMap<u32, u64>,
    /// Highest log end offset per partition seen by the fetcher.
    ends: BTreeMap<u32, u64>,
}

impl FlowInner {
    /// Records behind the log end, per partition the fetcher has seen.
    fn lag(&self) -> BTreeMap<u32, u64> {
        self.ends
            .iter()
            .map(|(&p, &end)| {
                let at = self.committed.get(&p).copied().unwrap_or(0);
                (p, end.saturating_sub(at))
            })
            .collect()
    }
}

impl FlowShared {
    fn inner(&self) -> std::sync::MutexGuard<'_, FlowInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_state(&self, state: FlowState) {
        self.inner().state = state;
    }

    fn status(&self) -> FlowStatus {
        let inner = self.inner();
        let m = &self.metrics;
        FlowStatus {
            name: self.name.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            state: inner.state.clone(),
            records_in: m.records_in.get(),
            records_out: m.records_out.get(),
            records_failed: m.records_failed.get(),
            records_unmatched: m.records_unmatched.get(),
            batches: m.batches.get(),
            committed: inner.committed.clone(),
            lag: inner.lag(),
        }
    }

    /// Notes the log end offsets a poll reported and updates the lag gauges.
    fn observe_ends(&self, ends: &BTreeMap<u32, u64>) {
        if ends.is_empty() {
            return;
        }
        let mut inner = self.inner();
        for (&p, &end) in ends {
            let slot = inner.ends.entry(p).or_insert(end);
            *slot = (*slot).max(end);
        }
        self.set_lag_gauges(&inner);
    }

    /// Sets every lag gauge from `inner`.
    fn set_lag_gauges(&self, inner: &FlowInner) {
        for (partition, lag) in inner.lag() {
            self.metrics
                .lag(&self.topic, partition)
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
    }

    /// Records a processed batch: counters, committed offsets and lag.
    fn record(&self, outcome: &BatchOutcome, latency_s: f64) {
        let m = &self.metrics;
        m.records_in.add(outcome.records_in);
        m.records_out.add(outcome.records_out);
        m.records_failed.add(outcome.records_failed);
        m.records_unmatched.add(outcome.records_unmatched);
        if !outcome.committed.is_empty() {
            m.batches.inc();
            for _ in 0..outcome.records_in {
                m.latency.observe(latency_s);
            }
        }
        let mut inner = self.inner();
        for c in outcome.committed.iter().filter(|c| c.topic == self.topic) {
            inner.committed.insert(c.partition, c.next_offset);
        }
        self.set_lag_gauges(&inner);
    }
}

/// The process-wide shutdown, this flow's own stop (reload), or, inside a lane, the failure of
/// another lane of the same flow.
#[derive(Debug, Clone)]
struct Stop {
    global: ShutdownSignal,
    local: ShutdownSignal,
    failed: Option<ShutdownSignal>,
}

impl Stop {
    fn is_triggered(&self) -> bool {
        self.global.is_triggered()
            || self.local.is_triggered()
            || self
                .failed
                .as_ref()
                .is_some_and(ShutdownSignal::is_triggered)
    }

    async fn wait(&mut self) {
        let Self {
            global,
            local,
            failed,
        } = self;
        let failed = async {
            match failed {
                Some(signal) => signal.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = global.wait() => {}
            () = local.wait() => {}
            () = failed => {}
        }
    }
}

/// A running flow and the handles to stop it.
#[derive(Debug)]
struct RunningFlow {
    compiled: Arc<CompiledFlow>,
    stop: Shutdown,
    task: JoinHandle<()>,
    shared: Arc<FlowShared>,
}

impl RunningFlow {
    /// Stops the flow between batches and waits for it.
    async fn stop(self) {
        self.stop.trigger();
        if let Err(e) = self.task.await {
            tracing::error!(flow = %self.shared.name, error = %e, "flow task ended abnormally");
            self.shared
                .set_state(FlowState::Failed(format!("task ended abnormally: {e}")));
        }
    }
}

/// The flows of one process. Owns one task per flow; [`Pipeline::stop`] (or the shutdown signal
/// given to [`Pipeline::start`]) stops them all at committed positions. Dropping a `Pipeline`
/// also stops its flows, without waiting for them.
#[derive(Debug)]
pub struct Pipeline {
    seams: Seams,
    clock: SharedClock,
    metrics: Arc<Registry>,
    shutdown: ShutdownSignal,
    /// Running flows by name.
    flows: BTreeMap<String, RunningFlow>,
    /// Bumped after every batch and every state change, for waiters such as tests and long polls.
    changes: Arc<watch::Sender<u64>>,
}

impl Pipeline {
    /// Checks `config`, compiles every flow's JOLT specs and starts one task per flow. Call it
    /// inside a Tokio runtime (it spawns the flow tasks).
    ///
    /// # Errors
    /// An invalid flow ([`Error::Invalid`], naming the flow and field) or an unreadable spec
    /// file; nothing is started then. Engine failures while a flow starts do not fail this
    /// call: they show as [`FlowState::Failed`].
    pub fn start(
        config: &PipelineConfig,
        seams: Seams,
        clock: SharedClock,
        metrics: Arc<Registry>,
        shutdown: ShutdownSignal,
    ) -> Result<Self> {
        let compiled = compile(config, &seams)?;
        let (changes, _) = watch::channel(0);
        let mut pipeline = Self {
            seams,
            clock,
            metrics,
            shutdown,
            flows: BTreeMap::new(),
            changes: Arc::new(changes),
        };
        for flow in compiled {
            pipeline.spawn(flow, false);
        }
        Ok(pipeline)
    }

    /// A snapshot of every flow, sorted by name.
    #[must_use]
    pub fn status(&self) -> Vec<FlowStatus> {
        self.flows.values().map(|f| f.shared.status()).collect()
    }

    /// A receiver whose value changes after every committed batch and flow state change.
    #[must_use]
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Replaces the flow set with `config`: checks and compiles all of it first (an error leaves
    /// every running flow untouched), then stops removed and changed flows at a committed
    /// position, and starts added and changed ones. Changed flows resume from their committed
    /// offsets, so no record is lost or written twice to history. Unchanged flows that had
    /// failed are started again the same way (listed in [`FlowDiff::restarted`]).
    ///
    /// # Errors
    /// The new configuration is invalid; nothing was stopped or started.
    pub async fn reload(&mut self, config: &PipelineConfig) -> Result<FlowDiff> {
        let compiled = compile(config, &self.seams)?;
        let old: Vec<FlowPlan> = self
            .flows
            .values()
            .map(|f| f.compiled.plan.clone())
            .collect();
        let new: Vec<FlowPlan> = compiled.iter().map(|c| c.plan.clone()).collect();
        let mut d = diff(&old, &new);
        d.restarted = d
            .unchanged
            .iter()
            .filter(|name| {
                self.flows
                    .get(*name)
                    .is_some_and(|f| matches!(f.shared.inner().state, FlowState::Failed(_)))
            })
            .cloned()
            .collect();
        for name in d.removed.iter().chain(&d.changed).chain(&d.restarted) {
            if let Some(flow) = self.flows.remove(name) {
                let topic = flow.shared.topic.clone();
                flow.stop().await;
                // A removed flow's series leave `/metrics` with it (its task has ended, so
                // nothing registers them again); a changed flow keeps its counters, and loses
                // the lag of a topic it no longer reads.
                if d.removed.contains(name) {
                    self.metrics.remove_labelled(None, "flow", name);
                } else if new
                    .iter()
                    .any(|p| p.name() == name && p.config().source.topic != topic)
                {
                    self.metrics.remove_labelled(Some(LAG_METRIC), "flow", name);
                }
            }
        }
        for flow in compiled {
            let name = flow.plan.name().to_owned();
            if d.added.contains(&name) {
                self.spawn(flow, false);
            } else if d.changed.contains(&name) || d.restarted.contains(&name) {
                self.spawn(flow, true);
            }
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        tracing::info!(added = ?d.added, removed = ?d.removed, changed = ?d.changed, "pipeline reloaded");
        Ok(d)
    }

    /// Stops every flow at a committed position and waits for their tasks.
    pub async fn stop(mut self) {
        let flows = std::mem::take(&mut self.flows);
        for flow in flows.values() {
            flow.stop.trigger();
        }
        for (_, flow) in flows {
            flow.stop().await;
        }
    }

    /// Starts the task of one compiled flow; `resume` forces the committed start position.
    fn spawn(&mut self, compiled: CompiledFlow, resume: bool) {
        let config = compiled.plan.config().clone();
        let shared = Arc::new(FlowShared {
            name: config.name.clone(),
            topic: config.source.topic.clone(),
            group: config.source.group.clone(),
            metrics: FlowMetrics::register(&self.metrics, &config.name),
            inner: Mutex::new(FlowInner {
                state: FlowState::Starting,
                committed: BTreeMap::new(),
                ends: BTreeMap::new(),
            }),
        });
        let compiled = Arc::new(compiled);
        let stop = Shutdown::new();
        let ctx = FlowContext {
            flow: compiled.clone(),
            seams: self.seams.clone(),
            shared: shared.clone(),
            clock: self.clock.clone(),
            stop: Stop {
                global: self.shutdown.clone(),
                local: stop.signal(),
                failed: None,
            },
            changes: self.changes.clone(),
        };
        let task = tokio::spawn(run_flow(ctx, resume));
        let name = config.name.clone();
        self.flows.insert(
            name,
            RunningFlow {
                compiled,
                stop,
                task,
                shared,
            },
        );
    }
}

/// Checks and compiles a whole flow set.
pub(crate) fn compile(config: &PipelineConfig, seams: &Seams) -> Result<Vec<CompiledFlow>> {
    plan(config)?
        .into_iter()
        .map(|plan| {
            // Compiling a spec is short CPU work on a small document, done once per (re)load.
            let transforms = plan
                .specs()
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    seams.transform.compile(spec).map_err(|e| Error::Invalid {
                        flow: plan.name().to_owned(),
                        field: format!("transforms[{i}]"),
                        reason: format!("invalid JOLT spec: {e}"),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(CompiledFlow { plan, transforms })
        })
        .collect()
}

/// Everything a flow task, or one of its lanes, needs.
struct FlowContext {
    flow: Arc<CompiledFlow>,
    seams: Seams,
    shared: Arc<FlowShared>,
    clock: SharedClock,
    stop: Stop,
    changes: Arc<watch::Sender<u64>>,
}

/// A fetched batch and when it was fetched.
struct Fetched {
    batch: SourceBatch,
    fetched_ns: u64,
}

/// The flow task: runs the flow and records how it ended.
async fn run_flow(ctx: FlowContext, resume: bool) {
    let shared = ctx.shared.clone();
    let changes = ctx.changes.clone();
    let state = match drive(ctx, resume).await {
        Ok(()) => FlowState::Stopped,
        Err(e) => {
            tracing::error!(flow = %shared.name, error = %e, "flow stopped");
            FlowState::Failed(e.to_string())
        }
    };
    shared.set_state(state);
    changes.send_modify(|n| *n = n.wrapping_add(1));
}

/// Opens the source and processes batches until stopped or a fatal error: one lane per part
/// of the source ([`Source::split`], at most [`FLOW_LANES_MAX`]), each a fetcher and a
/// processor with its own bounded queue, so partitions are processed in parallel. A lane that
/// fails stops the other lanes between their batches.
async fn drive(ctx: FlowContext, resume: bool) -> Result<()> {
    let FlowContext {
        flow,
        seams,
        shared,
        clock,
        stop,
        changes,
    } = ctx;
    let config = flow.plan.config().clone();
    let name = config.name.clone();
    let engine = |stage: &'static str| {
        let flow = name.clone();
        move |source: SeamError| Error::Engine {
            flow,
            stage,
            source,
        }
    };

    let history = seams.history.clone();
    let (group, topic) = (config.source.group.clone(), config.source.topic.clone());
    let committed = blocking(&name, move || history.committed(&group, &topic))
        .await?
        .map_err(engine("read committed offsets"))?;
    shared.inner().committed = committed.clone();
    let start = if resume {
        SourceStart::Committed(committed)
    } else {
        SourceStart::for_position(config.source.start, committed)
    };
    let opener = seams.source.clone();
    let source_config = config.source.clone();
    let source = blocking(&name, move || opener.open(&source_config, &start))
        .await?
        .map_err(engine("open source"))?;
    // Positions the source took instead of the committed ones (`earliest`, `latest`, or a log
    // recovered shorter) are committed, and made durable, before anything is read: left stale,
    // they would make a later start resume elsewhere (a reload restarts at the committed
    // offsets; after a power loss, past the records appended from here on) and the lag count
    // from them. The same batch records the offsets thereby skipped, which the cache rebuild
    // leaves out.
    let rewound = source.rewound();
    if !rewound.is_empty() {
        let history = seams.history.clone();
        let group = config.source.group.clone();
        let offsets = rewound.clone();
        blocking(&name, move || {
            history
                .commit_start(&group, &offsets)
                .map_err(|e| SeamError::fatal(e.to_string()))?;
            history.persist()
        })
        .await?
        .map_err(engine("commit rewound offsets"))?;
        let mut inner = shared.inner();
        for o in rewound {
            inner.committed.insert(o.partition, o.next_offset);
        }
    }
    shared.set_state(FlowState::Running);
    changes.send_modify(|n| *n = n.wrapping_add(1));

    // Every lane also stops when another lane fails.
    let failed = Shutdown::new();
    let mut lanes: FuturesUnordered<JoinHandle<Result<()>>> = source
        .split(FLOW_LANES_MAX)
        .into_iter()
        .map(|source| {
            let lane = FlowContext {
                flow: flow.clone(),
                seams: seams.clone(),
                shared: shared.clone(),
                clock: clock.clone(),
                stop: Stop {
                    global: stop.global.clone(),
                    local: stop.local.clone(),
                    failed: Some(failed.signal()),
                },
                changes: changes.clone(),
            };
            tokio::spawn(run_lane(lane, source))
        })
        .collect();
    // Lanes are awaited as they end, not in order: a lane that fails stops the others at once,
    // even while an earlier lane waits for records that may never come.
    let mut result = Ok(());
    while let Some(ended) = lanes.next().await {
        let ended = ended.map_err(|e| Error::Task {
            flow: name.clone(),
            reason: e.to_string(),
        });
        if let Err(e) = ended.and_then(|r| r) {
            failed.trigger();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

/// Fetches and processes one lane's batches until stopped or a fatal error.
async fn run_lane(lane: FlowContext, source: Box<dyn Source>) -> Result<()> {
    let FlowContext {
        flow,
        seams,
        shared,
        clock,
        mut stop,
        changes,
    } = lane;
    let config = flow.plan.config();
    let name = config.name.clone();
    let queue = usize::try_from(config.queue_batches).unwrap_or(1).max(1);
    let (tx, mut rx) = mpsc::channel::<Fetched>(queue);
    let fetcher = tokio::spawn(fetch_loop(
        shared.clone(),
        source,
        tx,
        stop.clone(),
        usize::try_from(config.batch_records).unwrap_or(1),
        config.poll_wait_ms,
        clock.clone(),
    ));
    let mut result = Ok(());
    loop {
        let fetched = tokio::select! {
            biased;
            () = stop.wait() => break,
            fetched = rx.recv() => fetched,
        };
        let Some(Fetched { batch, fetched_ns }) = fetched else {
            break;
        };
        let (flow, seams) = (flow.clone(), seams.clone());
        // Cache TTLs count from each record's create time, as the rebuild at start counts them.
        let now_ms = i64::try_from(clock.now_ms()).unwrap_or(i64::MAX);
        let processed = blocking(&name, move || process_batch(&flow, &seams, &batch, now_ms)).await;
        match processed {
            Ok(Ok(outcome)) => {
                let elapsed_ns = clock.monotonic_ns().saturating_sub(fetched_ns);
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "latency in seconds; ns precision is not needed"
                )]
                let latency_s = elapsed_ns as f64 / 1e9;
                shared.record(&outcome, latency_s);
                changes.send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(Err(e)) | Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Closing the queue ends a fetcher blocked on a full queue or waiting for an append; one
    // inside a poll returns after it (at once with notifications, else within `poll_wait_ms`).
    drop(rx);
    let fetched = fetcher.await.map_err(|e| Error::Task {
        flow: name.clone(),
        reason: e.to_string(),
    })?;
    result.and(fetched)
}

/// How a fetcher waits after an empty poll.
enum Idle {
    /// Inside the source's poll, at most `wait_ms` (a source without notifications).
    InPoll,
    /// For the source's next append notification, with no timer.
    Signal(WakeSignal),
    /// `wait_ms` between polls that do not wait: the notifications ended (their log is
    /// closing) and the source has nothing left to wait on.
    Timer,
}

impl Idle {
    /// How long the next poll may wait inside the source. A signal counts as seen from here,
    /// so an append during the poll still wakes the wait after it.
    fn poll_wait_ms(&mut self, wait_ms: u64) -> u64 {
        match self {
            Self::Signal(w) => {
                w.mark_seen();
                0
            }
            Self::Timer => 0,
            Self::InPoll => wait_ms,
        }
    }

    /// Waits after an empty poll (not at all for [`Idle::InPoll`], which waited inside it).
    /// When the notifications end, the fetcher falls back to [`Idle::Timer`].
    async fn after_empty_poll(&mut self, wait_ms: u64) {
        match self {
            Self::InPoll => {}
            Self::Signal(w) => {
                if w.changed().await.is_err() {
                    *self = Self::Timer;
                }
            }
            Self::Timer => tokio::time::sleep(Duration::from_millis(wait_ms)).await,
        }
    }
}

/// Polls the source and queues non-empty batches until stopped, the queue closes, or a poll
/// fails; every poll's log end offsets update the lag at once. A source with append
/// notifications ([`Source::take_wake_signal`]) is polled without waiting, and an empty poll
/// waits for the next append, the stop signal or the queue closing, with no timer, so an idle
/// flow costs no wake-ups; other sources wait inside their poll, at most `wait_ms`.
async fn fetch_loop(
    shared: Arc<FlowShared>,
    mut source: Box<dyn Source>,
    tx: mpsc::Sender<Fetched>,
    mut stop: Stop,
    max_records: usize,
    wait_ms: u64,
    clock: SharedClock,
) -> Result<()> {
    let mut idle = source.take_wake_signal().map_or(Idle::InPoll, Idle::Signal);
    loop {
        if stop.is_triggered() || tx.is_closed() {
            return Ok(());
        }
        let poll_wait_ms = idle.poll_wait_ms(wait_ms);
        let (back, polled) = blocking(&shared.name, move || {
            let polled = source.poll(max_records, poll_wait_ms);
            (source, polled)
        })
        .await?;
        source = back;
        let batch = polled.map_err(|source| Error::Engine {
            flow: shared.name.clone(),
            stage: "poll",
            source,
        })?;
        shared.observe_ends(&batch.end_offsets);
        if batch.records.is_empty() {
            tokio::select! {
                biased;
                () = stop.wait() => return Ok(()),
                () = tx.closed() => return Ok(()),
                () = idle.after_empty_poll(wait_ms) => {}
            }
            continue;
        }
        let fetched = Fetched {
            batch,
            fetched_ns: clock.monotonic_ns(),
        };
        tokio::select! {
            biased;
            () = stop.wait() => return Ok(()),
            sent = tx.send(fetched) => if sent.is_err() { return Ok(()) },
        }
    }
}

/// Runs blocking engine work off the async threads.
async fn blocking<T: Send + 'static>(
    flow: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Task {
            flow: flow.to_owned(),
            reason: e.to_string(),
        })
}
