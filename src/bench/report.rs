//! The benchmark's results: one [`RunReport`] per run, printed as a table and plotted as SVG.

use std::fmt::Write as _;

use super::stats::{Latencies, ms, per_second};

/// The p99 bar at 5k orders per second, in nanoseconds.
pub const BAR_P99_NS: u64 = 5_000_000;
/// The paced rate the p99 bar applies to, in orders per second.
pub const BAR_P99_RATE: u64 = 5000;
/// The sustained-throughput bar with batched produce, in orders per second.
pub const BAR_SUSTAINED_PER_S: f64 = 50_000.0;
/// A batched run sustains its rate when orders per second through the whole pipeline (first
/// send to last `NewOrder`) reach this fraction of the offered rate: in a 5 s run, at most
/// ≈ 100 ms of backlog left when the schedule ends.
pub const SUSTAINED_FRACTION_MIN: f64 = 0.98;

/// The results of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `1000/s` for a paced run, `50000/s x500` for a batched one, `max 4x500` for the max
    /// run.
    pub label: String,
    /// The scheduled rate, in orders per second; `None` for the max run.
    pub offered_per_s: Option<u64>,
    /// Orders per produce request (1 in a paced run).
    pub batch: usize,
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

    /// Whether this is a batched run at a fixed rate.
    #[must_use]
    pub fn is_batched(&self) -> bool {
        self.batch > 1 && self.offered_per_s.is_some()
    }

    /// Whether a scheduled run kept up with its rate: every order acknowledged and delivered
    /// (no failure, loss or resync), and orders per second through the whole pipeline at least
    /// [`SUSTAINED_FRACTION_MIN`] of the offered rate. Always `false` for the max run, which
    /// has no rate to keep up with.
    #[must_use]
    pub fn is_sustained(&self) -> bool {
        let Some(offered) = self.offered_per_s else {
            return false;
        };
        self.failed == 0
            && self.lost == 0
            && self.resyncs == 0
            && self.delivered == self.acknowledged
            && self.delivered_per_s() >= SUSTAINED_FRACTION_MIN * offered as f64
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
            .find(|r| r.batch == 1 && r.offered_per_s == Some(BAR_P99_RATE))
            && let Some(p99) = r.latencies.quantile_ns(0.99)
        {
            let met = if p99 < BAR_P99_NS { "met" } else { "MISSED" };
            let _ = writeln!(
                s,
                "bar: p99 < 5 ms at 5000 orders/s: {:.3} ms, {met}",
                ms(p99)
            );
        }
        for r in self.runs.iter().filter(|r| r.is_batched()) {
            let offered = r.offered_per_s.unwrap_or(0);
            let verdict = if r.is_sustained() {
                "sustained"
            } else {
                "NOT sustained"
            };
            let _ = writeln!(
                s,
                "{}: {:.0} orders/s delivered through the whole run = {:.3} of the {offered}/s \
                 offered (sustained: >= {SUSTAINED_FRACTION_MIN}, nothing lost), last NewOrder \
                 {:.1} ms after the last produce reply: {verdict}",
                r.label,
                r.delivered_per_s(),
                r.delivered_per_s() / offered.max(1) as f64,
                ms(r.drain_ns),
            );
        }
        let best = self
            .runs
            .iter()
            .filter(|r| r.is_batched() && r.is_sustained())
            .filter_map(|r| r.offered_per_s)
            .max();
        if self.runs.iter().any(RunReport::is_batched) {
            let met = match best {
                Some(rate) if rate as f64 >= BAR_SUSTAINED_PER_S => "met",
                _ => "MISSED",
            };
            let best = best.map_or_else(|| "none".into(), |r| format!("{r}/s"));
            let _ = writeln!(
                s,
                "bar: >= 50000 orders/s sustained with batched produce: highest sustained \
                 batched rate {best}, {met}"
            );
        }
        if let Some(r) = self.runs.iter().find(|r| r.offered_per_s.is_none()) {
            let _ = writeln!(
                s,
                "{}: produce unthrottled, {:.0} orders/s delivered through the whole run; after \
                 the last produce reply, {} NewOrders in {:.2} s: {:.0} orders/s (the pipeline \
                 alone on the cores)",
                r.label,
                r.delivered_per_s(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batched(offered: u64, delivered: u64, pipeline_ns: u64) -> RunReport {
        RunReport {
            label: format!("{offered}/s x500"),
            offered_per_s: Some(offered),
            batch: 500,
            acknowledged: delivered,
            failed: 0,
            requests: delivered / 500,
            produce_ns: pipeline_ns,
            delivered,
            pipeline_ns,
            drained: 0,
            drain_ns: 0,
            lost: 0,
            resyncs: 0,
            latencies: Latencies::from_samples(vec![1_000_000]),
            cache: Latencies::from_samples(Vec::new()),
            cache_misses: 0,
            last_error: None,
        }
    }

    #[test]
    fn a_batched_run_is_sustained_within_the_fraction_and_without_loss() {
        // 250 000 orders offered at 50 000/s: 5 s of schedule.
        let at = |ns| batched(50_000, 250_000, ns);
        // 250 000 / 5.1 s = 49 020/s = 0.980 of the rate: sustained.
        assert!(at(5_100_000_000).is_sustained());
        // 250 000 / 5.2 s = 48 077/s = 0.962: the backlog grew.
        assert!(!at(5_200_000_000).is_sustained());
        let mut lost = at(5_000_000_000);
        lost.lost = 1;
        assert!(!lost.is_sustained());
        let mut short = at(5_000_000_000);
        short.delivered -= 1;
        assert!(!short.is_sustained());
        let mut max = at(5_000_000_000);
        max.offered_per_s = None;
        assert!(!max.is_sustained() && !max.is_batched());
    }

    #[test]
    fn the_throughput_bar_reads_the_highest_sustained_batched_rate() {
        let report = |runs| E2eReport {
            target: "t".into(),
            runs,
        };
        let met = report(vec![
            batched(40_000, 200_000, 5_000_000_000),
            batched(50_000, 250_000, 5_050_000_000),
        ])
        .table();
        assert!(
            met.contains("highest sustained batched rate 50000/s, met"),
            "{met}"
        );
        let missed = report(vec![
            batched(40_000, 200_000, 5_000_000_000),
            batched(50_000, 250_000, 6_000_000_000),
        ])
        .table();
        assert!(
            missed.contains("highest sustained batched rate 40000/s, MISSED"),
            "{missed}"
        );
        assert!(missed.contains("50000/s x500: 41667 orders/s"), "{missed}");
        assert!(missed.contains("NOT sustained"), "{missed}");
    }
}
