//! The benchmark's results: one [`RunReport`] per run, printed as a table and plotted as SVG.

use std::fmt::Write as _;

use super::stats::{Latencies, ms, per_second};

/// The p99 bar at 5k orders per second, in nanoseconds.
pub const BAR_P99_NS: u64 = 5_000_000;
/// The paced rate the p99 bar applies to, in orders per second.
pub const BAR_P99_RATE: u64 = 5000;
/// The sustained-throughput bar with batched produce, in orders per second.
pub const BAR_SUSTAINED_PER_S: f64 = 50_000.0;

/// The results of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `1000/s` for a paced run, `max 4x500` for the max run.
    pub label: String,
    /// The paced rate, in orders per second; `None` for the max run.
    pub offered_per_s: Option<u64>,
    /// Orders the server acknowledged.
    pub acknowledged: u64,
    /// Orders refused or lost with a failed request.
    pub failed: u64,
    /// Produce requests made.
    pub requests: u64,
    /// From the first send to the last produce reply, in nanoseconds.
    pub produce_ns: u64,
    /// Acknowledged orders whose `NewOrder` arrived.
    pub delivered: u64,
    /// From the first send to the last matched `NewOrder`, in nanoseconds.
    pub pipeline_ns: u64,
    /// `NewOrder`s that arrived after the last produce reply (the load generator idle).
    pub drained: u64,
    /// From the last produce reply to the last matched `NewOrder`, in nanoseconds (0 when
    /// everything had arrived by then).
    pub drain_ns: u64,
    /// Acknowledged orders whose `NewOrder` never arrived (must be 0).
    pub lost: u64,
    /// `resync` events: the server dropped events for the SSE client.
    pub resyncs: u64,
    /// Produce → `NewOrder` latencies.
    pub latencies: Latencies,
    /// `GET /redis/get/customer:{n}` latencies right after a `NewOrder` (paced runs).
    pub cache: Latencies,
    /// Cache reads that found nothing or failed.
    pub cache_misses: u64,
    /// The last error seen, if any.
    pub last_error: Option<String>,
}

impl RunReport {
    /// Acknowledged orders per second while producing.
    #[must_use]
    pub fn produced_per_s(&self) -> f64 {
        per_second(self.acknowledged, self.produce_ns)
    }

    /// Delivered orders per second through the whole pipeline, up to the last `NewOrder`.
    #[must_use]
    pub fn delivered_per_s(&self) -> f64 {
        per_second(self.delivered, self.pipeline_ns)
    }

    /// `NewOrder`s per second after the last produce reply: the pipeline working through the
    /// backlog without the load generator on the same cores.
    #[must_use]
    pub fn drained_per_s(&self) -> f64 {
        per_second(self.drained, self.drain_ns)
    }

    /// Whether nothing failed and nothing was lost.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.lost == 0 && self.resyncs == 0 && self.cache_misses == 0
    }
}

/// The results of a whole benchmark.
#[derive(Debug, Clone)]
pub struct E2eReport {
    /// What was measured: the URL, or the in-process server.
    pub target: String,
    /// The runs in order.
    pub runs: Vec<RunReport>,
}

/// A latency in milliseconds for the table, `-` without samples.
fn cell_ms(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".into(), |ns| format!("{:.3}", ms(ns)))
}

impl E2eReport {
    /// Whether every run was clean.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.runs.iter().all(RunReport::is_clean)
    }

    /// Lost events over all runs.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.runs.iter().map(|r| r.lost).sum()
    }

    /// The fixed-width results table, one row per run, then the bars and the lost total.
    #[must_use]
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "streamcache bench e2e: {}", self.target);
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>11} {:>11} {:>9} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
            "run",
            "offered/s",
            "produced/s",
            "delivered/s",
            "NewOrders",
            "lost",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "max ms",
            "cache p50",
            "cache p99"
        );
        for r in &self.runs {
            let offered = r
                .offered_per_s
                .map_or_else(|| "-".into(), |o| o.to_string());
            let _ = writeln!(
                s,
                "{:<12} {:>9} {:>11.0} {:>11.0} {:>9} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
                r.label,
                offered,
                r.produced_per_s(),
                r.delivered_per_s(),
                r.delivered,
                r.lost,
                cell_ms(r.latencies.quantile_ns(0.5)),
                cell_ms(r.latencies.quantile_ns(0.99)),
                cell_ms(r.latencies.quantile_ns(0.999)),
                cell_ms(r.latencies.max_ns()),
                cell_ms(r.cache.quantile_ns(0.5)),
                cell_ms(r.cache.quantile_ns(0.99)),
            );
        }
        for r in &self.runs {
            if r.failed > 0 || r.resyncs > 0 || r.cache_misses > 0 {
                let _ = writeln!(
                    s,
                    "{}: {} orders failed, {} resyncs, {} cache misses; last error: {}",
                    r.label,
                    r.failed,
                    r.resyncs,
                    r.cache_misses,
                    r.last_error.as_deref().unwrap_or("none")
                );
            }
        }
        if let Some(r) = self
            .runs
            .iter()
            .find(|r| r.offered_per_s == Some(BAR_P99_RATE))
            && let Some(p99) = r.latencies.quantile_ns(0.99)
        {
            let met = if p99 < BAR_P99_NS { "met" } else { "MISSED" };
            let _ = writeln!(
                s,
                "bar: p99 < 5 ms at 5000 orders/s: {:.3} ms, {met}",
                ms(p99)
            );
        }
        if let Some(r) = self.runs.iter().find(|r| r.offered_per_s.is_none()) {
            let rate = r.delivered_per_s();
            let met = if rate >= BAR_SUSTAINED_PER_S {
                "met"
            } else {
                "MISSED"
            };
            let _ = writeln!(
                s,
                "bar: >= 50000 orders/s sustained with batched produce: {rate:.0} orders/s, {met}"
            );
            let _ = writeln!(
                s,
                "{}: after the last produce reply, {} NewOrders in {:.2} s: {:.0} orders/s \
                 (the pipeline alone on the cores; not the bar's figure)",
                r.label,
                r.drained,
                ms(r.drain_ns) / 1e3,
                r.drained_per_s()
            );
        }
        let _ = writeln!(s, "lost events: {}", self.lost());
        s
    }

    /// The latency plot: one percentile curve per run.
    #[must_use]
    pub fn svg(&self) -> String {
        let series: Vec<(String, &Latencies)> = self
            .runs
            .iter()
            .map(|r| (r.label.clone(), &r.latencies))
            .collect();
        super::svg::render("streamcache: HTTP produce → NewOrder on SSE", &series)
    }
}
