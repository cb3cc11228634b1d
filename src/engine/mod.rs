//! [`Engine`]: opens and owns every engine (log, cache, history, pipeline, realtime) over one
//! data directory, and shuts them down in order.
//!
//! The engine serves no HTTP and listens on no socket; `server` and `api` sit on top of it. Its
//! only network traffic is outgoing: the webhook senders' POSTs (`webhooks.rs`). One process
//! owns a data directory at a time: [`Engine::open`] takes an exclusive lock on `DATA_DIR/LOCK`
//! and a second opener gets [`Error::Locked`] at once.
//!
//! Life cycle: [`Engine::open`] opens storage (synchronous); [`Engine::start`] (async, inside a
//! Tokio runtime) rebuilds the cache from the log, starts the pipeline's flows, the change-feed
//! watchers and the webhook senders, and marks the engine ready; [`Engine::stop`] stops them at a committed position;
//! [`Engine::shutdown`] flushes and fsyncs storage.

mod seams;
mod watchers;
mod webhooks;

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinHandle;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigSource};
use crate::metrics::Registry;
use crate::pipeline::{FlowDiff, FlowStatus, Pipeline, Seams};
use crate::shutdown::{Shutdown, ShutdownSignal};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Why the engine could not open or shut down.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory cannot be created or written.
    #[error("data directory {path} is not usable: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory's lock.
    #[error(
        "data directory {path} is in use by another streamcache process (lock file {path}/LOCK)"
    )]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The log could not be opened or flushed.
    #[error("log: {0}")]
    Log(#[from] crate::log::Error),
    /// The document store could not be opened.
    #[error("cannot open the history store: {0}")]
    History(#[source] crate::history::Error),
    /// The pipeline's configuration or its cache rebuild failed.
    #[error("pipeline: {0}")]
    Pipeline(#[from] crate::pipeline::Error),
    /// The flows' stored offsets could not be read, or those past the recovered log end not
    /// moved back to it ([`Engine::start`]).
    #[error("pipeline offsets: {0}")]
    Offsets(#[source] crate::pipeline::SeamError),
    /// A watcher's configuration is invalid.
    #[error("realtime: {0}")]
    Realtime(#[from] crate::realtime::Error),
    /// `reload` was asked of an engine without a configuration source, or the source failed.
    #[error("reload: {0}")]
    Reload(String),
    /// A background task could not be joined.
    #[error("background task failed: {0}")]
    Task(String),
    /// Flushing storage at shutdown failed.
    #[error("flushing {path} at shutdown failed: {source}")]
    Flush {
        /// What was being flushed.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// What [`Engine::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// How the flow set changed.
    pub flows: FlowDiff,
    /// Settings outside `[pipeline]` whose values changed in the configuration, by dotted name
    /// (`cache.maxmemory`); a reload does not apply them, so they take effect at the next
    /// restart.
    pub restart_required: Vec<String>,
}

/// Result alias for engine lifecycle calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every engine over one data directory.
///
/// ```
/// # async fn demo() -> Result<(), streamcache::engine::Error> {
/// use std::sync::Arc;
/// let engine = Arc::new(streamcache::engine::Engine::temporary()?);
/// let shutdown = streamcache::shutdown::Shutdown::new();
/// engine.start(shutdown.signal()).await?;
/// assert!(engine.is_ready());
/// shutdown.trigger();
/// engine.stop().await;
/// engine.shutdown()?;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug)]
pub struct Engine {
    /// The configuration the engine was opened with.
    config: Config,
    /// The directory in use (the temporary one when ephemeral).
    data_dir: PathBuf,
    /// The one source of time for every engine.
    clock: SharedClock,
    /// Metrics shown on `/metrics`.
    metrics: Arc<Registry>,
    /// The Kafka stand-in, under `DATA_DIR/log`.
    log: Arc<crate::log::Log>,
    /// The MongoDB stand-in (documents, indexes, change feed).
    history: crate::history::History,
    /// The real-time channel hub (SSE and Pusher fan-out).
    realtime: Arc<crate::realtime::Hub>,
    /// The webhooks' queues, filled by the hub from open on and drained by the sender tasks
    /// [`Engine::start`] takes them to.
    webhook_queues: std::sync::Mutex<Vec<crate::realtime::WebhookQueue>>,
    /// Set once every engine has opened (and, later, rebuilt its views).
    ready: AtomicBool,
    /// Wall-clock start, for `process_start_time_seconds`.
    start_time_ms: u64,
    /// The Redis stand-in.
    cache: crate::cache::Cache,
    /// The pipeline's view of the engines.
    seams: Seams,
    /// The running flows, once started (a tokio mutex: reload awaits while holding it).
    pipeline: tokio::sync::Mutex<Option<Pipeline>>,
    /// Background tasks started by [`Engine::start`] (watchers), joined by [`Engine::stop`].
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Where `reload` re-reads the configuration from.
    config_source: std::sync::OnceLock<ConfigSource>,
    /// Held for the engine's lifetime; the OS releases the lock if the process dies.
    _lock: File,
    /// The temporary directory, removed when the engine is dropped.
    _temp: Option<tempfile::TempDir>,
}

impl Engine {
    /// Opens every engine under `config.data_dir` with the system clock.
    ///
    /// # Errors
    /// [`Error::DataDir`] when the directory cannot be created or written, [`Error::Locked`]
    /// when another process has it open.
    pub fn open(config: Config) -> Result<Self> {
        Self::open_with_clock(config, SystemClock::shared())
    }

    /// Opens every engine with an injected clock (tests pass a `ManualClock`).
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open_with_clock(mut config: Config, clock: SharedClock) -> Result<Self> {
        let temp = if config.ephemeral {
            let dir = tempfile::Builder::new()
                .prefix("streamcache-")
                .tempdir()
                .map_err(|source| Error::DataDir {
                    path: std::env::temp_dir(),
                    source,
                })?;
            config.data_dir = dir.path().to_owned();
            Some(dir)
        } else {
            None
        };
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| Error::DataDir {
            path: data_dir.clone(),
            source: explain_not_a_directory(&data_dir, source),
        })?;
        let lock = lock_data_dir(&data_dir)?;
        let start_time_ms = clock.now_ms();
        let log = Arc::new(crate::log::Log::open(
            &data_dir.join("log"),
            config.log.clone(),
            clock.clone(),
        )?);
        let cache = crate::cache::Cache::open(config.cache.clone(), clock.clone(), &data_dir);
        let history = crate::history::History::open(
            &data_dir.join("history"),
            config.history.clone(),
            clock.clone(),
        )
        .map_err(Error::History)?;
        let socket_seed = config
            .realtime
            .socket_id_seed
            .unwrap_or_else(|| start_time_ms ^ clock.monotonic_ns().rotate_left(32));
        let metrics = Arc::new(Registry::new());
        let (webhooks, webhook_queues) = crate::realtime::WebhookSink::new(
            config.realtime.check_webhooks()?,
            clock.clone(),
            &metrics,
        );
        let realtime = Arc::new(crate::realtime::Hub::with_webhooks(
            &config.realtime,
            socket_seed,
            clock.clone(),
            webhooks,
        ));
        let seams = seams::build(log.clone(), cache.clone(), history.clone());
        let engine = Self {
            seams,
            pipeline: tokio::sync::Mutex::new(None),
            tasks: std::sync::Mutex::new(Vec::new()),
            config_source: std::sync::OnceLock::new(),
            log,
            cache,
            config,
            data_dir,
            clock,
            metrics,
            history,
            realtime,
            webhook_queues: std::sync::Mutex::new(webhook_queues),
            ready: AtomicBool::new(false),
            start_time_ms,
            _lock: lock,
            _temp: temp,
        };
        Ok(engine)
    }

    /// Opens an engine on a fresh temporary directory that is deleted when the engine is
    /// dropped — what an application's own test suite calls.
    ///
    /// # Errors
    /// As [`Engine::open`], for the temporary directory.
    pub fn temporary() -> Result<Self> {
        Self::open(Config {
            ephemeral: true,
            ..Config::default()
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data directory in use.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The clock every engine reads.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The metrics registry.
    #[must_use]
    pub fn metrics(&self) -> &Arc<Registry> {
        &self.metrics
    }

    /// The partitioned log (Kafka stand-in).
    #[must_use]
    pub fn log(&self) -> &Arc<crate::log::Log> {
        &self.log
    }

    /// The cache (Redis stand-in).
    #[must_use]
    pub fn cache(&self) -> &crate::cache::Cache {
        &self.cache
    }

    /// The document store.
    #[must_use]
    pub fn history(&self) -> &crate::history::History {
        &self.history
    }

    /// The real-time channel hub: publish here to reach SSE and Pusher subscribers.
    #[must_use]
    pub fn realtime(&self) -> &Arc<crate::realtime::Hub> {
        &self.realtime
    }

    /// Wall-clock milliseconds at open.
    #[must_use]
    pub fn start_time_ms(&self) -> u64 {
        self.start_time_ms
    }

    /// Whether every engine is open and its views rebuilt (`/readyz`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Moves every flow's stored position that log recovery left past its partition's end back
    /// to that end (configured flows or not), rebuilds the cache from the log, starts the
    /// configured flows and watchers, and marks the engine ready. Call once, inside a Tokio
    /// runtime; the tasks stop when `shutdown` fires (then call [`Engine::stop`] to wait for
    /// them).
    ///
    /// A shutdown that fires during the cache rebuild stops it between batches; `start` then
    /// returns `Ok` without starting anything or marking the engine ready.
    ///
    /// # Errors
    /// An invalid flow or watcher configuration, a storage failure moving the positions back
    /// ([`Error::Offsets`]), or a failed cache rebuild; nothing is left running then.
    pub async fn start(&self, shutdown: ShutdownSignal) -> Result<()> {
        let watchers = self
            .config
            .realtime
            .watchers
            .iter()
            .enumerate()
            .map(|(i, w)| crate::realtime::Watcher::new(i, w))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // The watchers' channels never fill up or get evicted, whatever clients subscribe to.
        for watcher in &watchers {
            self.realtime.pin(watcher.channel())?;
        }
        let config = self.config.pipeline.clone();
        let seams = self.seams.clone();
        let clock = self.clock.clone();
        let rebuild_shutdown = shutdown.clone();
        let (log, history) = (self.log.clone(), self.history.clone());
        let replayed = tokio::task::spawn_blocking(move || -> Result<u64> {
            // Before anything reads the offsets: every flow's, configured now or not, that log
            // recovery left past its partition's end resumes at that end, so a flow configured
            // later skips none of the records appended from there on.
            seams::rewind_past_recovered_ends(&log, &history).map_err(Error::Offsets)?;
            Ok(crate::pipeline::rebuild_cache(
                &config,
                &seams,
                &clock,
                &rebuild_shutdown,
            )?)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        // A shutdown during the rebuild stopped it between batches: nothing is started, and
        // the engine never turns ready.
        if shutdown.is_triggered() {
            tracing::info!(
                records = replayed,
                "shutdown during the cache rebuild; not starting"
            );
            return Ok(());
        }
        if replayed > 0 {
            tracing::info!(records = replayed, "cache rebuilt from the log");
        }
        // The watchers' stream starts before the flows do, so it sees everything they commit.
        let stream = if watchers.is_empty() {
            None
        } else {
            match watchers::open(&self.history) {
                Ok(stream) => Some(stream),
                Err(e) => {
                    tracing::error!(error = %e, "watchers: cannot open the change stream; no channel events will be published");
                    None
                }
            }
        };
        let pipeline = Pipeline::start(
            &self.config.pipeline,
            self.seams.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            shutdown.clone(),
        )?;
        *self.pipeline.lock().await = Some(pipeline);
        let housekeeping = spawn_cache_housekeeping(self.cache.clone(), shutdown.clone());
        let senders = self.spawn_webhook_senders(&shutdown);
        let task = stream.map(|stream| {
            tokio::spawn(watchers::run(
                self.history.clone(),
                self.realtime.clone(),
                watchers,
                stream,
                shutdown,
            ))
        });
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(housekeeping.into_iter().chain(senders).chain(task));
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Starts one sender task per webhook (`engine/webhooks.rs`), which ends when `shutdown`
    /// fires.
    fn spawn_webhook_senders(&self, shutdown: &ShutdownSignal) -> Vec<JoinHandle<()>> {
        let queues = std::mem::take(
            &mut *self
                .webhook_queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let realtime = &self.config.realtime;
        let delivery = webhooks::Delivery {
            key: realtime.key.clone(),
            secret: realtime.secret.clone(),
            batch_ms: realtime.webhook_batch_ms,
            clock: self.clock.clone(),
        };
        queues
            .into_iter()
            .map(|queue| {
                tokio::spawn(webhooks::run(
                    queue,
                    delivery.clone(),
                    self.metrics.clone(),
                    shutdown.clone(),
                ))
            })
            .collect()
    }

    /// Starts shutdown through `trigger` once a store reports a fatal fault — history's
    /// poisoned store (a failed commit or persist) or the log's failed fsync: such a store
    /// refuses every later write until the process restarts. The task waits on the stores'
    /// fault latches (no polling); it ends when `trigger` fires and [`Engine::stop`] joins it.
    /// Call once, inside a Tokio runtime.
    pub fn supervise(&self, trigger: Shutdown) {
        let history = self.history.clone();
        let log = self.log.clone();
        let fault = async move {
            tokio::select! {
                () = history.poisoned() => "history",
                () = log.poisoned() => "log",
            }
        };
        let task = tokio::spawn(supervise(fault, trigger));
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// The store with a fatal fault, if any (see [`Engine::supervise`]); the process exits 1
    /// after such a fault even when its shutdown otherwise completes.
    pub fn fatal_fault(&self) -> Option<&'static str> {
        fatal_store(&self.history, &self.log)
    }

    /// Stops the flows at a committed position and waits for the background tasks (which end
    /// once the shutdown signal given to [`Engine::start`] has fired).
    pub async fn stop(&self) {
        self.ready.store(false, Ordering::Release);
        if let Some(pipeline) = self.pipeline.lock().await.take() {
            pipeline.stop().await;
        }
        let tasks: Vec<JoinHandle<()>> = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "background task ended abnormally");
            }
        }
    }

    /// The status of every flow (empty before [`Engine::start`]).
    pub async fn flows(&self) -> Vec<FlowStatus> {
        self.pipeline
            .lock()
            .await
            .as_ref()
            .map(Pipeline::status)
            .unwrap_or_default()
    }

    /// Records where [`Engine::reload`] re-reads the configuration from (the `serve` command's
    /// file, environment and flags). Only the first call takes effect.
    pub fn set_config_source(&self, source: ConfigSource) {
        let _ = self.config_source.set(source);
    }

    /// Re-reads the configuration and replaces the flow set: changed flows stop at a committed
    /// position and restart from it; an invalid configuration leaves every flow running. Only
    /// `[pipeline]` is applied: the other settings whose values changed are named in
    /// [`Reloaded::restart_required`] and in a warning, and keep their old values until a restart.
    ///
    /// # Errors
    /// [`Error::Reload`] with the reason the new configuration was rejected.
    pub async fn reload(&self) -> Result<Reloaded> {
        let source = self.config_source.get().ok_or_else(|| {
            Error::Reload("this engine was not started from a configuration source".into())
        })?;
        // IMPORTANT: taken before the configuration is read, so that of two reloads the one
        // that read the file last applies last (otherwise an older file could win).
        let mut guard = self.pipeline.lock().await;
        // Reading the file (and the environment) is blocking IO: off the runtime's workers.
        let source = source.clone();
        let loaded = tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| Error::Reload(format!("reading the configuration failed: {e}")))?
            .map_err(|e| Error::Reload(e.to_string()))?;
        let pipeline = guard
            .as_mut()
            .ok_or_else(|| Error::Reload("the pipeline is not running".into()))?;
        let flows = pipeline
            .reload(&loaded.config.pipeline)
            .await
            .map_err(|e| Error::Reload(e.to_string()))?;
        let restart_required = crate::config::restart_required(&self.config, &loaded.config);
        if !restart_required.is_empty() {
            tracing::warn!(
                settings = ?restart_required,
                "reload applies only [pipeline]: these changed settings keep their old values until a restart"
            );
        }
        Ok(Reloaded {
            flows,
            restart_required,
        })
    }

    /// Closes the REST consumer instances (auto-commit instances commit what they delivered, as
    /// the REST Proxy's consumers do when it stops), then flushes and fsyncs every engine's
    /// storage. Call once the listeners have stopped; the engine stays usable for reads
    /// afterwards.
    ///
    /// # Errors
    /// [`Error::Flush`] when storage cannot be made durable.
    pub fn shutdown(&self) -> Result<()> {
        self.ready.store(false, Ordering::Release);
        // As the REST Proxy closes its Kafka consumers at shutdown: auto-commit instances
        // commit what they delivered. A failure here must not stop the flush below.
        if let Err(e) = self.log.close_consumers() {
            tracing::error!(error = %e, "closing consumer instances at shutdown failed");
        }
        // Every engine is flushed whatever another's flush returned (a log that lost an fsync
        // must not leave history's acknowledged writes unsynced); the first error is returned.
        let log = self.log.flush();
        if let Err(e) = &log {
            tracing::error!(error = %e, "log flush at shutdown failed");
        }
        let snapshot = self.cache.save_snapshot_at_shutdown().map_err(|e| {
            tracing::error!(error = %e, "cache snapshot at shutdown failed");
            Error::Flush {
                path: self.data_dir.join("cache.snapshot"),
                source: std::io::Error::other(e),
            }
        });
        let history = self.history.persist().map_err(|e| Error::Flush {
            path: self.data_dir.join("history"),
            source: std::io::Error::other(e),
        });
        let dir = sync_dir(&self.data_dir);
        log?;
        history?;
        snapshot?;
        dir
    }
}

/// Starts the cache's housekeeping ([`cache_housekeeping`]) on a blocking thread of its own,
/// and the task that tells it when `shutdown` fires. Returns both tasks.
fn spawn_cache_housekeeping(
    cache: crate::cache::Cache,
    mut shutdown: ShutdownSignal,
) -> [JoinHandle<()>; 2] {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let stop = tokio::spawn(async move {
        shutdown.wait().await;
        drop(stop_tx);
    });
    let work = tokio::task::spawn_blocking(move || cache_housekeeping(&cache, &stop_rx));
    [stop, work]
}

/// The cache's housekeeping until `stop` disconnects: an active-expiry pass and the idle-client
/// check `hz` times a second (Redis's `serverCron`; `hz` is read again before each pass, so
/// CONFIG SET changes the cadence at once) and, when `snapshot_interval_s` is set, a periodic
/// snapshot. It runs whether or not the RESP server does.
///
/// IMPORTANT: one thread that sleeps between passes, so an idle server pays one wake-up per
/// pass; a timer on the runtime that hands each pass to the blocking pool woke a worker, a
/// pool thread and the worker again.
fn cache_housekeeping(cache: &crate::cache::Cache, stop: &std::sync::mpsc::Receiver<()>) {
    let clock = &cache.inner().clock;
    let snapshot_every_ns = cache
        .inner()
        .config
        .snapshot_interval_s
        .saturating_mul(1_000_000_000);
    let mut last_snapshot_ns = clock.monotonic_ns();
    loop {
        // A pass's own time is not subtracted: the rate is at most `hz`.
        match stop.recv_timeout(cache.housekeeping_period()) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        cache.active_expire_cycle();
        cache.close_idle_clients();
        cache.resize_client_query_buffers();
        cache.sample_memory_peak();
        let now_ns = clock.monotonic_ns();
        if snapshot_every_ns > 0 && now_ns.saturating_sub(last_snapshot_ns) >= snapshot_every_ns {
            last_snapshot_ns = now_ns;
            if let Err(e) = cache.save_snapshot_periodic() {
                tracing::error!(error = %e, "periodic cache snapshot failed");
            }
        }
    }
}

/// Names the store that refuses writes after a fatal fault, history first.
fn fatal_store(history: &crate::history::History, log: &crate::log::Log) -> Option<&'static str> {
    if history.is_poisoned() {
        Some("history")
    } else if log.is_poisoned() {
        Some("log")
    } else {
        None
    }
}

/// Fires `trigger` when `fault` resolves to the name of a store with a fatal fault; returns
/// once `trigger` fired (by this task or anyone else).
async fn supervise(fault: impl Future<Output = &'static str>, trigger: Shutdown) {
    let mut signal = trigger.signal();
    tokio::select! {
        () = signal.wait() => {}
        store = fault => {
            tracing::error!(
                store,
                "fatal storage fault: the store refuses writes until restart; shutting down"
            );
            trigger.trigger();
        }
    }
}

/// `create_dir_all`'s error for a path that is a file says only "File exists"; this says what
/// is wrong with it instead. Other errors pass through unchanged.
fn explain_not_a_directory(dir: &Path, source: std::io::Error) -> std::io::Error {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is a file, not a directory",
        ),
        _ => source,
    }
}

/// Creates `dir/LOCK` and takes an exclusive, non-blocking lock on it.
fn lock_data_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| Error::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Locked {
            path: dir.to_owned(),
        }),
        Err(TryLockError::Error(source)) => Err(Error::DataDir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// fsyncs a directory so entries created or removed in it are durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| Error::Flush {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::supervise;
    use crate::shutdown::{FaultLatch, Shutdown};

    /// Awaits the supervisor task, failing instead of hanging if it does not end. Under paused
    /// time the bound costs no real time: once every task is parked, tokio's clock jumps to it.
    async fn ended(task: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the supervisor returns")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_store_fault_triggers_shutdown() {
        let latch = Arc::new(FaultLatch::default());
        let trigger = Shutdown::new();
        let signal = trigger.signal();
        let fault = {
            let latch = latch.clone();
            async move {
                latch.wait().await;
                "history"
            }
        };
        let task = tokio::spawn(supervise(fault, trigger));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !signal.is_triggered(),
            "a healthy store keeps the process up"
        );
        latch.trip();
        ended(task).await;
        assert!(signal.is_triggered());
    }

    /// A log that lost an fsync fails the shutdown, and the other engines are still flushed:
    /// the cache's snapshot (written after the log's flush) is on disk.
    #[test]
    fn a_log_that_cannot_flush_leaves_the_other_engines_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().to_owned(),
            cache: crate::cache::CacheConfig {
                snapshot: true,
                ..crate::cache::CacheConfig::default()
            },
            ..crate::config::Config::default()
        };
        let engine = super::Engine::open(config).unwrap();
        engine
            .log()
            .append(
                "t",
                crate::log::Routing::Partition(0),
                vec![crate::log::Record::default()],
            )
            .unwrap();
        engine.log().trip_fault();
        assert!(engine.shutdown().is_err());
        assert!(
            dir.path().join("cache.snapshot").exists(),
            "the cache snapshot after the log's failed flush was written"
        );
    }

    /// An engine over `dir` with the `[pipeline]` and `[log]` of `toml`.
    fn engine_with(dir: &std::path::Path, toml: &str) -> super::Engine {
        let mut config =
            crate::config::parse_toml(toml, std::path::Path::new("test.toml")).unwrap();
        config.data_dir = dir.to_owned();
        super::Engine::open(config).unwrap()
    }

    /// Starts `engine` and returns the shutdown that stops it.
    async fn started(engine: &super::Engine) -> Shutdown {
        let shutdown = Shutdown::new();
        engine.start(shutdown.signal()).await.unwrap();
        shutdown
    }

    /// Stops and flushes `engine`, as a server exits.
    async fn stopped(engine: super::Engine, shutdown: &Shutdown) {
        shutdown.trigger();
        engine.stop().await;
        engine.shutdown().unwrap();
    }

    /// After a power loss cut the log before a flow's committed offset, a process that runs
    /// without the flow moves its offset back to where recovery ended the log before anything
    /// reads: when the flow runs again, once records were appended past the stale offset, it
    /// processes every record appended after the cut, none skipped (MongoDB gets each once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_position_past_the_recovered_end_moves_back_though_its_flow_is_not_configured() {
        use crate::log::{Record, Routing};
        use crate::pipeline::CommitOffset;

        const LOG: &str = "[log]\ndefault_partitions = 1\n";
        let without_flow = format!("{LOG}[pipeline]\nflows = []\n");
        let with_flow = format!(
            r#"{LOG}
[[pipeline.flows]]
name = "events"
dead_letter = "events.dead-letter"
source = {{ topic = "orders", group = "events" }}
sinks = [{{ name = "all", history = {{ collection = "shop.events", mode = "insert" }} }}]
"#
        );
        let records = |from: u64, to: u64| {
            (from..to)
                .map(|n| Record {
                    value: Some(bytes::Bytes::from(format!(r#"{{"n":{n}}}"#))),
                    ..Record::default()
                })
                .collect::<Vec<_>>()
        };
        let dir = tempfile::tempdir().unwrap();
        // The log holds two records and the flow's offset says nine were processed: the
        // state a power loss under `never` leaves when the log lost records the flow had
        // committed.
        let engine = engine_with(dir.path(), &without_flow);
        engine
            .log()
            .append("orders", Routing::Partition(0), records(0, 2))
            .unwrap();
        let topic_id = engine.log().topic_id("orders").unwrap();
        let at = |next_offset| CommitOffset {
            topic: "orders".into(),
            partition: 0,
            next_offset,
            topic_id: topic_id.clone(),
        };
        engine
            .seams
            .history
            .commit("events", &mut [], &[at(9)])
            .unwrap();
        engine.shutdown().unwrap();
        drop(engine);

        // A process without the flow: its start moves the offset back to the recovered end,
        // and records are appended past the stale offset.
        let engine = engine_with(dir.path(), &without_flow);
        let shutdown = started(&engine).await;
        let committed = engine.seams.history.committed("events", "orders").unwrap();
        assert_eq!(committed, [(0, 2)].into_iter().collect());
        engine
            .log()
            .append("orders", Routing::Partition(0), records(2, 12))
            .unwrap();
        stopped(engine, &shutdown).await;

        // The flow runs again: it processes offsets 2 to 11, none skipped.
        let engine = engine_with(dir.path(), &with_flow);
        let shutdown = started(&engine).await;
        let caught_up = async {
            loop {
                let flows = engine.flows().await;
                if flows
                    .first()
                    .is_some_and(|f| f.committed.get(&0) == Some(&12))
                {
                    return;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), caught_up)
            .await
            .expect("the flow commits the log end");
        let numbers: Vec<i64> = engine
            .history()
            .find(
                "shop",
                "events",
                &bson::Document::new(),
                &Default::default(),
            )
            .unwrap()
            .iter()
            .map(|d| {
                d.get_i64("n")
                    .or_else(|_| d.get_i32("n").map(i64::from))
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (2..12).collect::<Vec<_>>());
        stopped(engine, &shutdown).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_supervisor_ends_with_shutdown() {
        let trigger = Shutdown::new();
        let task = tokio::spawn(supervise(std::future::pending(), trigger.clone()));
        trigger.trigger();
        ended(task).await;
    }
}
