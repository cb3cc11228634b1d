//! [`Engine`]: opens and owns every engine (log, cache, history, pipeline, realtime) over one
//! data directory, and shuts them down in order.
//!
//! The engine knows nothing of HTTP or sockets; `server` and `api` sit on top of it. One process
//! owns a data directory at a time: [`Engine::open`] takes an exclusive lock on `DATA_DIR/LOCK`
//! and a second opener gets [`Error::Locked`] at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::metrics::Registry;

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
    #[error("data directory {path} is in use by another streamcache process (lock file {path}/LOCK)")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
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

/// Result alias for engine lifecycle calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every engine over one data directory.
///
/// ```
/// let engine = streamcache::engine::Engine::temporary()?;
/// assert!(engine.is_ready());
/// engine.shutdown()?;
/// # Ok::<(), streamcache::engine::Error>(())
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
    /// Set once every engine has opened (and, later, rebuilt its views).
    ready: AtomicBool,
    /// Wall-clock start, for `process_start_time_seconds`.
    start_time_ms: u64,
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
                .map_err(|source| Error::DataDir { path: std::env::temp_dir(), source })?;
            config.data_dir = dir.path().to_owned();
            Some(dir)
        } else {
            None
        };
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|source| Error::DataDir { path: data_dir.clone(), source })?;
        let lock = lock_data_dir(&data_dir)?;
        let start_time_ms = clock.now_ms();
        let engine = Self {
            config,
            data_dir,
            clock,
            metrics: Arc::new(Registry::new()),
            ready: AtomicBool::new(false),
            start_time_ms,
            _lock: lock,
            _temp: temp,
        };
        engine.ready.store(true, Ordering::Release);
        Ok(engine)
    }

    /// Opens an engine on a fresh temporary directory that is deleted when the engine is
    /// dropped — what an application's own test suite calls.
    ///
    /// # Errors
    /// As [`Engine::open`], for the temporary directory.
    pub fn temporary() -> Result<Self> {
        Self::open(Config { ephemeral: true, ..Config::default() })
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

    /// Flushes and fsyncs every engine's storage. Call once the listeners have stopped; the
    /// engine stays usable for reads afterwards.
    ///
    /// # Errors
    /// [`Error::Flush`] when storage cannot be made durable.
    pub fn shutdown(&self) -> Result<()> {
        self.ready.store(false, Ordering::Release);
        sync_dir(&self.data_dir)
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
        .map_err(|source| Error::DataDir { path: dir.to_owned(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Locked { path: dir.to_owned() }),
        Err(TryLockError::Error(source)) => Err(Error::DataDir { path: dir.to_owned(), source }),
    }
}

/// fsyncs a directory so entries created or removed in it are durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| Error::Flush { path: dir.to_owned(), source })
}
