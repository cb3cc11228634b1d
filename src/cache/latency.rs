//! Latency tracking as Redis 7.0.15 keeps it: a per-command histogram of run times behind INFO
//! `latencystats` and LATENCY HISTOGRAM (`latency-tracking`, `latency-tracking-info-percentiles`),
//! and the latency monitor behind LATENCY LATEST/HISTORY/GRAPH/DOCTOR/RESET: for each event
//! class (`command`, `fast-command`, `expire-cycle`, `eviction-cycle`) the last
//! [`HISTORY_LEN`] samples of at least `latency-monitor-threshold` milliseconds, one per second.
//!
//! The histogram has the layout of Redis's `hdr_histogram` over 1 ns – 1 s with two significant
//! digits: values below 256 ns have a counter each, every higher power of two is split into 128
//! counters, so a value is kept within 1/128 of itself and a percentile reads back as the
//! highest value its counter holds, as `hdr_value_at_percentile` answers. Counters are relaxed
//! atomics, allocated on a command's first call: recording costs one addition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::clock::SharedClock;

/// Samples kept per event class (Redis's `LATENCY_TS_LEN`).
pub(crate) const HISTORY_LEN: usize = 160;

/// Most percentiles `latency-tracking-info-percentiles` may list. Redis sets no bound of its
/// own; each costs a pass over a histogram per command in INFO.
pub(crate) const INFO_PERCENTILES_MAX: usize = 16;

/// Smallest and largest values the histogram tells apart, in nanoseconds (Redis's
/// `LATENCY_HISTOGRAM_MIN_VALUE`/`MAX_VALUE`); others are recorded as these.
const VALUE_MIN: u64 = 1;
const VALUE_MAX: u64 = 1_000_000_000;

/// Counters below the first split power of two (exact values `0..256`).
const EXACT: usize = 256;
/// Counters per power of two from 2^8 on.
const SUB: usize = 128;
/// Powers of two from 2^8 to 2^29 (2^30 > [`VALUE_MAX`]).
const POWERS: usize = 22;
const COUNTERS: usize = EXACT + POWERS * SUB;

/// The counter that holds `v` (already within [`VALUE_MIN`]..=[`VALUE_MAX`]).
fn index_of(v: u64) -> usize {
    if v < EXACT as u64 {
        return v as usize;
    }
    let magnitude = 63 - v.leading_zeros() as usize;
    let sub = (v >> (magnitude - 7)) as usize;
    EXACT + (magnitude - 8) * SUB + (sub - SUB)
}

/// The lowest and highest values counter `i` holds.
fn bounds_of(i: usize) -> (u64, u64) {
    if i < EXACT {
        return (i as u64, i as u64);
    }
    let magnitude = 8 + (i - EXACT) / SUB;
    let sub = (SUB + (i - EXACT) % SUB) as u64;
    let step = 1u64 << (magnitude - 7);
    let low = sub << (magnitude - 7);
    (low, low + step - 1)
}

/// One command's run-time histogram.
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: (0..COUNTERS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records one run of `nanos`.
    pub(crate) fn record(&self, nanos: u64) {
        let i = index_of(nanos.clamp(VALUE_MIN, VALUE_MAX));
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A histogram's counts read once, for the answers that need several passes.
#[derive(Debug)]
pub(crate) struct Counts {
    counts: Vec<u64>,
    total: u64,
}

impl Counts {
    /// Runs recorded.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// `hdr_value_at_percentile`: the highest value of the counter where the count reaches
    /// `percentile` of the total (the lowest for percentile 0), in nanoseconds.
    pub(crate) fn value_at(&self, percentile: f64) -> u64 {
        let p = percentile.min(100.0);
        let wanted = (((p / 100.0) * self.total as f64) + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut seen = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                let (low, high) = bounds_of(i);
                return if percentile == 0.0 { low } else { high };
            }
        }
        0
    }

    /// LATENCY HISTOGRAM's `histogram_usec`: (microseconds, runs up to there) at every power
    /// of two from 1024 ns, where the count grew (hdr's logarithmic iteration, base 2).
    pub(crate) fn cumulative_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut seen = 0u64;
        let mut previous = 0u64;
        let mut next = 0usize;
        let mut level = 1024u64;
        while seen < self.total && level <= VALUE_MAX.next_power_of_two() {
            let (_, top) = bounds_of(index_of(level.min(VALUE_MAX)));
            while let Some(n) = self.counts.get(next)
                && bounds_of(next).0 <= top
            {
                seen += n;
                next += 1;
            }
            if seen > previous {
                out.push((top / 1000, seen));
            }
            previous = seen;
            level *= 2;
        }
        out
    }
}

/// A lazily allocated histogram: none until the first recorded run.
#[derive(Debug, Default)]
pub(crate) struct LazyHistogram(OnceLock<Histogram>);

impl LazyHistogram {
    pub(crate) fn record(&self, nanos: u64) {
        self.0.get_or_init(Histogram::new).record(nanos);
    }

    /// The counts, or `None` when nothing is recorded (Redis lists only commands with a
    /// histogram, which CONFIG RESETSTAT frees).
    pub(crate) fn counts(&self) -> Option<Counts> {
        let counts = self.0.get()?.snapshot();
        let total = counts.iter().sum();
        (total > 0).then_some(Counts { counts, total })
    }

    pub(crate) fn reset(&self) {
        if let Some(h) = self.0.get() {
            h.reset();
        }
    }
}

/// `latency-tracking-info-percentiles`: at most [`INFO_PERCENTILES_MAX`] numbers in 0..=100,
/// separated by spaces, in CONFIG GET's form (`50 99 99.9`).
///
/// # Errors
/// A reason when a value is not a number in range or there are too many.
pub(crate) fn parse_percentiles(text: &str) -> Result<Vec<f64>, String> {
    let values: Vec<&str> = text.split_ascii_whitespace().collect();
    if values.len() > INFO_PERCENTILES_MAX {
        return Err(format!(
            "{} percentiles, at most {INFO_PERCENTILES_MAX}",
            values.len()
        ));
    }
    values
        .iter()
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| "Invalid latency-tracking-info-percentiles parameters".to_owned())
        })
        .collect()
}

/// A percentile as Redis prints it: `%f` with the trailing zeros (and point) trimmed.
pub(crate) fn percentile_text(p: f64) -> String {
    let text = format!("{p:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `percentiles` joined as CONFIG GET reports them.
pub(crate) fn percentiles_text(percentiles: &[f64]) -> String {
    percentiles
        .iter()
        .map(|p| percentile_text(*p))
        .collect::<Vec<_>>()
        .join(" ")
}

/// INFO's `latency_percentiles_usec_<name>:p50=…,p99=…` value (after the colon).
pub(crate) fn info_line(counts: &Counts, percentiles: &[f64]) -> String {
    let mut out = String::new();
    for (i, p) in percentiles.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let usec = counts.value_at(*p) as f64 / 1000.0;
        let _ = write!(out, "p{}={usec:.3}", percentile_text(*p));
    }
    out
}

/// One event class's samples: (unix seconds, milliseconds), oldest first once full.
#[derive(Debug)]
struct Series {
    samples: [(u64, u64); HISTORY_LEN],
    next: usize,
    max: u64,
}

impl Series {
    fn new() -> Self {
        Self {
            samples: [(0, 0); HISTORY_LEN],
            next: 0,
            max: 0,
        }
    }

    /// `latencyAddSample`: a sample in the same second as the previous one only raises it.
    fn add(&mut self, second: u64, ms: u64) {
        self.max = self.max.max(ms);
        let previous = (self.next + HISTORY_LEN - 1) % HISTORY_LEN;
        if let Some(p) = self.samples.get_mut(previous)
            && p.0 == second
            && second != 0
        {
            p.1 = p.1.max(ms);
            return;
        }
        if let Some(s) = self.samples.get_mut(self.next) {
            *s = (second, ms);
        }
        self.next = (self.next + 1) % HISTORY_LEN;
    }

    /// The samples held, oldest first.
    fn history(&self) -> Vec<(u64, u64)> {
        (0..HISTORY_LEN)
            .filter_map(|j| self.samples.get((self.next + j) % HISTORY_LEN).copied())
            .filter(|(t, _)| *t != 0)
            .collect()
    }

    fn latest(&self) -> (u64, u64) {
        let last = (self.next + HISTORY_LEN - 1) % HISTORY_LEN;
        self.samples.get(last).copied().unwrap_or((0, 0))
    }
}

/// The latency monitor.
#[derive(Debug)]
pub(crate) struct Monitor {
    /// `latency-monitor-threshold` in milliseconds; 0 turns the monitor off.
    threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Series>>,
    clock: SharedClock,
}

/// One event class in LATENCY LATEST: name, time and latency of the last sample, all-time high.
pub(crate) type Latest = (&'static str, u64, u64, u64);

impl Monitor {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            threshold_ms: AtomicU64::new(0),
            events: Mutex::new(BTreeMap::new()),
            clock,
        }
    }

    pub(crate) fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    fn series(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Series>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `latencyAddSampleIfNeeded`: records `event` (`command`, `fast-command`,
    /// `expire-cycle` or `eviction-cycle`) when `nanos` reaches the threshold.
    pub(crate) fn observe(&self, event: &'static str, nanos: u64) {
        let threshold = self.threshold_ms();
        let ms = nanos / 1_000_000;
        if threshold == 0 || ms < threshold {
            return;
        }
        let second = self.clock.now_ms() / 1000;
        self.series()
            .entry(event)
            .or_insert_with(Series::new)
            .add(second, ms);
    }

    /// LATENCY LATEST.
    pub(crate) fn latest(&self) -> Vec<Latest> {
        self.series()
            .iter()
            .map(|(name, s)| {
                let (t, ms) = s.latest();
                (*name, t, ms, s.max)
            })
            .collect()
    }

    /// LATENCY HISTORY: the samples of `event`, oldest first; empty for an unknown class.
    pub(crate) fn history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        self.series()
            .iter()
            .find(|(name, _)| name.as_bytes() == event)
            .map(|(_, s)| s.history())
            .unwrap_or_default()
    }

    /// LATENCY RESET: forgets the named classes (case-insensitively), or all of them when
    /// `events` is empty; returns how many were forgotten.
    pub(crate) fn reset(&self, events: &[&[u8]]) -> usize {
        let mut series = self.series();
        let before = series.len();
        if events.is_empty() {
            series.clear();
        } else {
            series.retain(|name, _| {
                !events
                    .iter()
                    .any(|e| name.as_bytes().eq_ignore_ascii_case(e))
            });
        }
        before - series.len()
    }

    /// LATENCY GRAPH: `None` when `event` has no samples.
    pub(crate) fn graph(&self, event: &[u8]) -> Option<String> {
        let series = self.series();
        let (name, s) = series.iter().find(|(name, _)| name.as_bytes() == event)?;
        let samples = s.history();
        let now = self.clock.now_ms() / 1000;
        Some(render_graph(name, &samples, s.max, now))
    }

    /// LATENCY DOCTOR: a report on each class's samples.
    pub(crate) fn doctor(&self) -> String {
        let series = self.series();
        if series.is_empty() && self.threshold_ms() == 0 {
            return "Latency monitoring is disabled: no event has been recorded and \
                    latency-monitor-threshold is 0. Enable it with CONFIG SET \
                    latency-monitor-threshold <milliseconds>.\n"
                .to_owned();
        }
        if series.is_empty() {
            return format!(
                "No latency spike of {} ms or more has been observed.\n",
                self.threshold_ms()
            );
        }
        let now = self.clock.now_ms() / 1000;
        let mut out = String::from("Latency spikes observed:\n\n");
        let mut advice: Vec<&str> = Vec::new();
        for (i, (name, s)) in series.iter().enumerate() {
            let samples = s.history();
            let n = samples.len().max(1) as u64;
            let avg = samples.iter().map(|(_, ms)| ms).sum::<u64>() / n;
            let mad = samples.iter().map(|(_, ms)| ms.abs_diff(avg)).sum::<u64>() / n;
            let oldest = samples.iter().map(|(t, _)| *t).min().unwrap_or(now);
            let period = now.saturating_sub(oldest).max(1);
            let _ = writeln!(
                out,
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {mad}ms, \
                 period {:.2} sec). Worst all time event {}ms.",
                i + 1,
                samples.len(),
                period as f64 / n as f64,
                s.max
            );
            let hint = match *name {
                "command" => {
                    "Slow commands: SLOWLOG GET lists the commands that ran longest; \
                              commands over large values (or many keys) run in proportion."
                }
                "fast-command" => {
                    "O(1) commands were slow: the process did not get a CPU \
                                   for a while (load on the host, or too few cores)."
                }
                "expire-cycle" => {
                    "The active expiry cycle was slow: many keys expiring at \
                                   once, or large values being freed."
                }
                _ => "Eviction was slow: many keys evicted at once to get under maxmemory.",
            };
            if !advice.contains(&hint) {
                advice.push(hint);
            }
        }
        out.push('\n');
        for hint in advice {
            let _ = writeln!(out, "- {hint}");
        }
        out
    }
}

/// Columns of LATENCY GRAPH (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLS: usize = 80;
/// Rows of bars in LATENCY GRAPH.
const GRAPH_ROWS: u64 = 4;

/// An ASCII chart of `samples` (oldest first): a title with the high, low and all-time high, a
/// rule, bars of `#` scaled between the low and the high, and under each bar how long ago it
/// was, written downwards.
fn render_graph(name: &str, samples: &[(u64, u64)], all_time: u64, now: u64) -> String {
    let high = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let low = samples.iter().map(|s| s.1).min().unwrap_or(0);
    let mut out = format!("{name} - high {high} ms, low {low} ms (all time high {all_time} ms)\n");
    out.push_str(&"-".repeat(GRAPH_COLS));
    out.push('\n');
    let shown = samples
        .get(samples.len().saturating_sub(GRAPH_COLS)..)
        .unwrap_or_default();
    // Each bar is 1..=GRAPH_ROWS high: the low sample one row, the high one every row.
    let height = |ms: u64| {
        if high == low {
            GRAPH_ROWS
        } else {
            1 + (ms - low) * (GRAPH_ROWS - 1) / (high - low)
        }
    };
    for row in (1..=GRAPH_ROWS).rev() {
        let line: String = shown
            .iter()
            .map(|(_, ms)| if height(*ms) >= row { '#' } else { ' ' })
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let labels: Vec<Vec<char>> = shown
        .iter()
        .map(|(t, _)| age_label(now.saturating_sub(*t)).chars().collect())
        .collect();
    let depth = labels.iter().map(Vec::len).max().unwrap_or(0);
    for row in 0..depth {
        let line: String = labels
            .iter()
            .map(|l| l.get(row).copied().unwrap_or(' '))
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How long ago, as LATENCY GRAPH labels it: seconds, minutes, hours or days.
fn age_label(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[test]
    fn counters_cover_every_value_once_and_in_order() {
        let mut previous_high = None;
        for i in 0..COUNTERS {
            let (low, high) = bounds_of(i);
            assert!(low <= high);
            if let Some(p) = previous_high {
                assert_eq!(low, p + 1, "counter {i}");
            }
            assert_eq!(index_of(low), i);
            assert_eq!(index_of(high), i);
            previous_high = Some(high);
        }
        assert!(bounds_of(COUNTERS - 1).1 >= VALUE_MAX);
        // hdr's highest equivalent values at the levels LATENCY HISTOGRAM reports.
        assert_eq!(bounds_of(index_of(1024)).1, 1031);
        assert_eq!(bounds_of(index_of(2048)).1, 2063);
        assert_eq!(bounds_of(index_of(65_536)).1, 66_047);
    }

    #[test]
    fn percentiles_read_back_within_a_counter() {
        let h = LazyHistogram::default();
        assert!(h.counts().is_none());
        for v in 1..=100u64 {
            h.record(v * 1000);
        }
        let c = h.counts().unwrap();
        assert_eq!(c.total(), 100);
        let p50 = c.value_at(50.0);
        assert!((50_000..=50_000 + 50_000 / 128).contains(&p50), "{p50}");
        let p99 = c.value_at(99.0);
        assert!((99_000..=99_000 + 99_000 / 128).contains(&p99), "{p99}");
        assert_eq!(c.value_at(100.0), bounds_of(index_of(100_000)).1);
        assert_eq!(c.value_at(0.0), bounds_of(index_of(1000)).0);
        h.reset();
        assert!(h.counts().is_none());
    }

    #[test]
    fn values_outside_the_range_are_clamped() {
        let h = LazyHistogram::default();
        h.record(0);
        h.record(u64::MAX);
        let c = h.counts().unwrap();
        assert_eq!(c.value_at(1.0), 1);
        assert!(c.value_at(100.0) >= VALUE_MAX);
    }

    #[test]
    fn cumulative_counts_grow_at_powers_of_two() {
        let h = LazyHistogram::default();
        h.record(500);
        h.record(1500);
        h.record(1500);
        h.record(100_000);
        let c = h.counts().unwrap();
        assert_eq!(c.cumulative_usec(), vec![(1, 1), (2, 3), (132, 4)]);
    }

    #[test]
    fn info_lines_and_percentile_lists() {
        let h = LazyHistogram::default();
        h.record(1000);
        let c = h.counts().unwrap();
        assert_eq!(
            info_line(&c, &[50.0, 99.0, 99.9]),
            "p50=1.003,p99=1.003,p99.9=1.003"
        );
        assert_eq!(
            parse_percentiles("50 99 99.9").unwrap(),
            vec![50.0, 99.0, 99.9]
        );
        assert_eq!(parse_percentiles("").unwrap(), Vec::<f64>::new());
        assert!(parse_percentiles("101").is_err());
        assert!(parse_percentiles("x").is_err());
        let max = vec!["1"; INFO_PERCENTILES_MAX].join(" ");
        assert!(parse_percentiles(&max).is_ok());
        let over = vec!["1"; INFO_PERCENTILES_MAX + 1].join(" ");
        assert!(parse_percentiles(&over).is_err());
        assert_eq!(percentiles_text(&[50.0, 99.9, 0.5]), "50 99.9 0.5");
    }

    #[test]
    fn the_monitor_keeps_one_sample_per_second_up_to_its_history() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let m = Monitor::new(clock.clone());
        m.observe("command", 500_000_000);
        assert!(m.latest().is_empty(), "off while the threshold is 0");
        m.set_threshold_ms(100);
        m.observe("command", 99_000_000);
        assert!(m.latest().is_empty(), "below the threshold");
        m.observe("command", 150_000_000);
        m.observe("command", 300_000_000);
        m.observe("command", 200_000_000);
        assert_eq!(m.history(b"command"), vec![(1000, 300)]);
        for i in 0..HISTORY_LEN as u64 + 5 {
            clock.advance(std::time::Duration::from_secs(1));
            m.observe("command", (100 + i) * 1_000_000);
        }
        let history = m.history(b"command");
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history.last(), Some(&(1165, 264)));
        assert_eq!(history.first(), Some(&(1006, 105)));
        assert_eq!(m.latest(), vec![("command", 1165, 264, 300)]);
        assert!(
            m.graph(b"command")
                .unwrap()
                .starts_with("command - high 264 ms, low 105 ms (all time high 300 ms)\n")
        );
        assert!(m.graph(b"expire-cycle").is_none());
        assert!(m.doctor().contains("1. command: 160 latency spikes"));
        assert_eq!(m.reset(&[b"nosuch"]), 0);
        assert_eq!(m.reset(&[b"COMMAND"]), 1);
        assert!(m.latest().is_empty());
    }
}
