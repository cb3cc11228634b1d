//! `streamcache bench e2e`: the end-to-end benchmark of the reference pipeline.
//!
//! Orders go in over the REST Proxy v2 produce API (the load generator's order shape and HTTP
//! code, [`crate::loadgen`]) while one SSE client listens on `/realtime/orders`; the latency of
//! an order is the monotonic time its `NewOrder` event arrived minus the time its produce
//! request was sent, both read from the injected clock. Paced runs send one order per request
//! at a fixed rate (tokio interval). Batched runs send requests of [`MAX_RUN_BATCH`] orders on
//! a fixed schedule at a given rate and check whether the pipeline sustains it: every order
//! delivered, and orders per second through the whole pipeline (first send to last
//! `NewOrder`) within [`SUSTAINED_FRACTION_MIN`] of the offered rate — the throughput bar's
//! figure. The max run sends batches over several connections as fast as the server answers,
//! for a fixed time: the producer then takes in more than the pipeline delivers and competes
//! with it for the cores; it reports orders per second until the last `NewOrder` and the rate
//! of the `NewOrder`s that arrived after the last produce reply (the pipeline draining with
//! the generator idle). Paced runs also read `GET /redis/get/customer:{n}` right after every
//! [`CACHE_READ_EVERY`]th `NewOrder`.
//!
//! Without `--url` the benchmark starts its own server in-process (ephemeral data directory,
//! ports 0) and shuts it down at the end. Everything is bounded: per-request timeouts, a
//! timeout on the wait for the last event, and caps on every collection.

mod report;
mod run;
mod sse;
mod stats;
mod svg;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use report::{
    BAR_P99_NS, BAR_P99_RATE, BAR_SUSTAINED_PER_S, E2eReport, RunReport, SUSTAINED_FRACTION_MIN,
};
pub use stats::Latencies;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::engine::Engine;
use crate::loadgen::{self, OrderGenerator};
use crate::shutdown::Shutdown;

// Limits.

/// Longest run, in seconds.
pub const SECONDS_MAX: u64 = 120;
/// Most paced runs in one invocation (`--rates`).
pub const RATES_COUNT_MAX: usize = 8;
/// Highest paced rate, in orders per second (one order per request).
pub const PACED_RATE_MAX: u64 = 100_000;
/// Most orders in one run; bounds every per-run collection.
pub const ORDERS_PER_RUN_MAX: u64 = 20_000_000;
/// Keep-alive connections a paced run spreads its requests over, so one slow reply does not
/// hold back the schedule.
pub(crate) const PACED_CONNECTIONS: usize = 4;
/// Orders queued per paced connection before the schedule waits (and falls behind).
pub(crate) const PACED_QUEUE_CAPACITY: usize = 256;
/// Highest batched rate, in orders per second (requests of [`MAX_RUN_BATCH`] orders).
pub const BATCHED_RATE_MAX: u64 = 160_000;
/// Requests queued per batched connection before the schedule waits (and falls behind).
pub(crate) const BATCHED_QUEUE_CAPACITY: usize = 4;
/// Most bytes of request bodies a batched run encodes before its clock starts (≈ 700 bytes an
/// order: 50 000/s for 5 s is ≈ 175 MB); past it, requests are encoded on schedule.
pub(crate) const PREPARED_BODY_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Orders per request in the batched and max runs.
pub const MAX_RUN_BATCH: usize = 500;
/// Concurrent connections in the max run.
pub const MAX_RUN_CONNECTIONS: usize = 4;
/// How long one produce or cache request may take, in milliseconds.
pub(crate) const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How long to wait for the last `NewOrder` after the last produce reply, in milliseconds. The
/// max run's produce side takes in several times what the pipeline delivers, so the backlog
/// left after `--seconds` of produce takes longer than the produce itself to drain.
pub(crate) const DRAIN_TIMEOUT_MS: u64 = 120_000;
/// Every this many `NewOrder` events a paced run reads the order's customer from the cache.
pub(crate) const CACHE_READ_EVERY: u64 = 10;
/// Most cache reads per run.
pub(crate) const CACHE_READS_MAX: usize = 100_000;
/// Customer numbers queued for the cache reader; more are dropped rather than delaying the
/// SSE client.
pub(crate) const CACHE_QUEUE_CAPACITY: usize = 64;
/// Longest SSE line accepted, in bytes.
pub(crate) const SSE_LINE_BYTES_MAX: usize = 1024 * 1024;
/// Largest cache reply read, in bytes.
pub(crate) const CACHE_REPLY_BYTES_MAX: usize = 1024 * 1024;

const _: () = assert!(MAX_RUN_BATCH <= loadgen::PRODUCE_BATCH_MAX);
const _: () = assert!(PACED_RATE_MAX * SECONDS_MAX <= ORDERS_PER_RUN_MAX);
const _: () = assert!(BATCHED_RATE_MAX * SECONDS_MAX <= ORDERS_PER_RUN_MAX);

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is out of range.
    #[error("`--{option}` = {value} is outside {range}")]
    Option {
        /// The option's name.
        option: &'static str,
        /// The value given.
        value: u64,
        /// The accepted range.
        range: String,
    },
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] loadgen::Error),
    /// The in-process server could not open its engines or start its flows.
    #[error("cannot start the in-process server: {0}")]
    Engine(#[from] crate::engine::Error),
    /// The in-process server could not bind its listeners.
    #[error("cannot start the in-process server: {0}")]
    Bind(#[from] crate::server::BindError),
    /// The SSE client could not connect or its stream failed.
    #[error("SSE client: {0}")]
    Sse(String),
    /// The plot could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The `--out` path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What `streamcache bench e2e` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eOptions {
    /// A running server's base URL; `None` starts one in-process.
    pub url: Option<String>,
    /// Length of each run, in seconds (1 to [`SECONDS_MAX`]).
    pub seconds: u64,
    /// Paced runs, in orders per second (each 1 to [`PACED_RATE_MAX`]).
    pub rates: Vec<u64>,
    /// Batched runs, in orders per second (each 1 to [`BATCHED_RATE_MAX`]).
    pub batched: Vec<u64>,
    /// Also run the batched max-throughput run.
    pub max: bool,
    /// Seed of the order generator.
    pub seed: u64,
}

impl Default for E2eOptions {
    fn default() -> Self {
        Self {
            url: None,
            seconds: 5,
            rates: vec![1000, 5000],
            batched: Vec::new(),
            max: false,
            seed: 1,
        }
    }
}

/// Checks the options against the limits.
fn check_options(options: &E2eOptions) -> Result<(), Error> {
    if options.seconds == 0 || options.seconds > SECONDS_MAX {
        return Err(Error::Option {
            option: "seconds",
            value: options.seconds,
            range: format!("1..={SECONDS_MAX}"),
        });
    }
    check_rates("rates", &options.rates, PACED_RATE_MAX)?;
    check_rates("batched", &options.batched, BATCHED_RATE_MAX)
}

/// Checks one list of rates: at most [`RATES_COUNT_MAX`], each in `1..=max`.
fn check_rates(option: &'static str, rates: &[u64], max: u64) -> Result<(), Error> {
    if rates.len() > RATES_COUNT_MAX {
        return Err(Error::Option {
            option,
            value: rates.len() as u64,
            range: format!("at most {RATES_COUNT_MAX} rates"),
        });
    }
    if let Some(&rate) = rates.iter().find(|&&r| r == 0 || r > max) {
        return Err(Error::Option {
            option,
            value: rate,
            range: format!("1..={max}"),
        });
    }
    Ok(())
}

/// Runs the benchmark and returns its report. Failures inside a run (refused orders, lost
/// events, a cache miss) are counted in the report, not returned as errors.
///
/// # Errors
/// Unusable options, an in-process server that cannot start, or an SSE stream that cannot be
/// opened or fails mid-run.
pub async fn e2e(options: &E2eOptions, clock: SharedClock) -> Result<E2eReport, Error> {
    check_options(options)?;
    let generator = Arc::new(Mutex::new(OrderGenerator::new(options.seed, clock.clone())));
    let Some(url) = &options.url else {
        return in_process(options, generator, clock).await;
    };
    let target = run::Target::parse(url)?;
    let runs = run::all(&target, options, &generator, &clock).await?;
    Ok(E2eReport {
        target: url.clone(),
        runs,
    })
}

/// Starts a server in-process, runs the benchmark against it and shuts it down.
async fn in_process(
    options: &E2eOptions,
    generator: Arc<Mutex<OrderGenerator>>,
    clock: SharedClock,
) -> Result<E2eReport, Error> {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        ephemeral: true,
        http: loopback,
        resp: loopback,
        log_level: "warn".into(),
        ..Config::default()
    };
    let engine = Arc::new(Engine::open_with_clock(config, clock.clone())?);
    let bound = crate::server::bind(&engine).await?;
    let url = format!("http://{}", bound.http_addr());
    let shutdown = Shutdown::new();
    if let Err(e) = engine.start(shutdown.signal()).await {
        shutdown.trigger();
        engine.stop().await;
        return Err(e.into());
    }
    let server = tokio::spawn(crate::server::run(engine.clone(), bound, shutdown.clone()));
    let result = match run::Target::parse(&url) {
        Ok(target) => run::all(&target, options, &generator, &clock).await,
        Err(e) => Err(e.into()),
    };
    shutdown.trigger();
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "the in-process HTTP server failed"),
        Err(e) => tracing::warn!(error = %e, "the in-process server task failed"),
        Ok(Ok(())) => {}
    }
    engine.stop().await;
    if let Err(e) = engine.shutdown() {
        tracing::warn!(error = %e, "flushing the in-process server's storage failed");
    }
    Ok(E2eReport {
        target: "in-process server (ephemeral data directory, default configuration)".into(),
        runs: result?,
    })
}

/// Writes the report's latency plot to `path`, creating its directory.
///
/// # Errors
/// [`Error::Write`] when the directory or the file cannot be written.
pub fn write_plot(report: &E2eReport, path: &std::path::Path) -> Result<(), Error> {
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    std::fs::write(path, report.svg()).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_limits_at_max_and_max_plus_one() {
        let with = |seconds, rates: Vec<u64>| E2eOptions {
            seconds,
            rates,
            ..E2eOptions::default()
        };
        assert!(check_options(&with(SECONDS_MAX, vec![PACED_RATE_MAX])).is_ok());
        assert!(check_options(&with(SECONDS_MAX + 1, vec![1])).is_err());
        assert!(check_options(&with(0, vec![1])).is_err());
        assert!(check_options(&with(1, vec![PACED_RATE_MAX + 1])).is_err());
        assert!(check_options(&with(1, vec![0])).is_err());
        assert!(check_options(&with(1, vec![1; RATES_COUNT_MAX])).is_ok());
        assert!(check_options(&with(1, vec![1; RATES_COUNT_MAX + 1])).is_err());
        let batched = |batched: Vec<u64>| E2eOptions {
            batched,
            ..E2eOptions::default()
        };
        assert!(check_options(&batched(vec![BATCHED_RATE_MAX])).is_ok());
        assert!(check_options(&batched(vec![BATCHED_RATE_MAX + 1])).is_err());
        assert!(check_options(&batched(vec![0])).is_err());
        assert!(check_options(&batched(vec![1; RATES_COUNT_MAX])).is_ok());
        assert!(check_options(&batched(vec![1; RATES_COUNT_MAX + 1])).is_err());
    }
}
