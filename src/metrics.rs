//! A small Prometheus registry: counters, gauges and histograms with fixed label sets, rendered
//! in the text exposition format for `/metrics`.
//!
//! Written here instead of pulling in the `metrics` crate family: the exposition format is a few
//! lines of text, and owning it keeps label order deterministic (BTreeMap) and the binary small.
//! Hot paths touch one atomic per observation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Label pairs, in the order they are printed.
pub type Labels = Vec<(String, String)>;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current count.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as an `i64`).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v.cast_unsigned(), Ordering::Relaxed);
    }
    /// Adds `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d.cast_unsigned(), Ordering::Relaxed);
    }
    /// The current value.
    #[must_use]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed).cast_signed()
    }
}

/// Latency buckets in seconds, 50 µs to 10 s.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// A cumulative histogram over fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, ascending.
    bounds: &'static [f64],
    /// One count per bound plus the `+Inf` bucket (non-cumulative; summed when rendered).
    buckets: Vec<AtomicU64>,
    /// Sum of observations in nanounits (value × 1e9), so it stays an integer atomic.
    sum_nano: AtomicU64,
    /// Number of observations.
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with the given ascending bucket bounds.
    #[must_use]
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nano: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation of `value` (seconds, for latency histograms).
    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        // Saturating float-to-int conversion: negative or NaN values add nothing.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "saturating by design"
        )]
        let nano = (value * 1e9) as u64;
        self.sum_nano.fetch_add(nano, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of observations so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// One registered family member.
#[derive(Debug, Clone)]
enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
}

/// A metric family: name, help and its members by label set.
#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: &'static str,
    members: BTreeMap<Labels, Metric>,
}

/// The registry behind `/metrics`. Cheap to share; registration takes a short lock, updates none.
#[derive(Debug, Default)]
pub struct Registry {
    /// Families by metric name.
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The member `name{labels}`, made by `make` on first use. `None` when `name` is already a
    /// family of another kind (a programming error: the caller gets a detached metric).
    fn get_or_insert(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: Labels,
        make: impl FnOnce() -> Metric,
    ) -> Option<Metric> {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            members: BTreeMap::new(),
        });
        if family.kind != kind {
            return None;
        }
        Some(family.members.entry(labels).or_insert_with(make).clone())
    }

    /// The counter `name{labels}`, created on first use.
    pub fn counter(&self, name: &'static str, help: &'static str, labels: Labels) -> Arc<Counter> {
        match self.get_or_insert(name, help, "counter", labels, || {
            Metric::Counter(Arc::default())
        }) {
            Some(Metric::Counter(c)) => c,
            _ => Arc::default(),
        }
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &'static str, help: &'static str, labels: Labels) -> Arc<Gauge> {
        match self.get_or_insert(
            name,
            help,
            "gauge",
            labels,
            || Metric::Gauge(Arc::default()),
        ) {
            Some(Metric::Gauge(g)) => g,
            _ => Arc::default(),
        }
    }

    /// The histogram `name{labels}` with `bounds`, created on first use.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        bounds: &'static [f64],
    ) -> Arc<Histogram> {
        match self.get_or_insert(name, help, "histogram", labels, || {
            Metric::Histogram(Arc::new(Histogram::new(bounds)))
        }) {
            Some(Metric::Histogram(h)) => h,
            _ => Arc::new(Histogram::new(bounds)),
        }
    }

    /// Removes every member whose labels include `name="value"`, of family `family` or of any
    /// family when it is `None`, and the families left without members, so `/metrics` stops
    /// showing the series of something that no longer exists (a flow a reload removed). Handles
    /// still held keep working, detached.
    pub fn remove_labelled(&self, family: Option<&str>, name: &str, value: &str) {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        families.retain(|&family_name, members| {
            if family.is_none_or(|f| f == family_name) {
                members
                    .members
                    .retain(|labels, _| !labels.iter().any(|(n, v)| n == name && v == value));
            }
            !members.members.is_empty()
        });
    }

    /// Renders every family in the Prometheus text format (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for (labels, metric) in &family.members {
                match metric {
                    Metric::Counter(c) => {
                        let _ = writeln!(out, "{name}{} {}", fmt_labels(labels, None), c.get());
                    }
                    Metric::Gauge(g) => {
                        let _ = writeln!(out, "{name}{} {}", fmt_labels(labels, None), g.get());
                    }
                    Metric::Histogram(h) => render_histogram(&mut out, name, labels, h),
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &Labels, h: &Histogram) {
    let mut cumulative = 0u64;
    for (i, bucket) in h.buckets.iter().enumerate() {
        cumulative += bucket.load(Ordering::Relaxed);
        let le = h
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| format!("{b}"));
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            fmt_labels(labels, Some(&le))
        );
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "exposition of a sum; precision loss is harmless"
    )]
    let sum = h.sum_nano.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{} {sum}", fmt_labels(labels, None));
    // IMPORTANT: the count is the `+Inf` bucket's, not a second read of `count`: an
    // observation landing between the two reads would make them differ, and the exposition
    // format requires `_count` to equal the `+Inf` bucket.
    let _ = writeln!(out, "{name}_count{} {cumulative}", fmt_labels(labels, None));
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Process figures read from `/proc/self` (Linux); zeros elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Virtual memory size in bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// User plus system CPU time in clock ticks (100 per second on Linux).
    pub cpu_ticks: u64,
}

/// Reads [`ProcessStats`] for this process.
#[must_use]
pub fn process_stats() -> ProcessStats {
    let page = 4096u64;
    let mut stats = ProcessStats::default();
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut it = statm
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        stats.virtual_bytes = it.next().unwrap_or(0) * page;
        stats.rss_bytes = it.next().unwrap_or(0) * page;
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        stats.open_fds = dir.count() as u64;
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let tick = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            stats.cpu_ticks = tick(11) + tick(12);
        }
    }
    stats
}

/// Appends process metrics in the Prometheus text format.
pub fn render_process(out: &mut String, start_time_seconds: u64) {
    let s = process_stats();
    #[expect(clippy::cast_precision_loss, reason = "tick counts are far below 2^52")]
    let cpu = s.cpu_ticks as f64 / 100.0;
    let _ = write!(
        out,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
         # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
         # HELP process_virtual_memory_bytes Virtual memory size in bytes.\n\
         # TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes {}\n\
         # HELP process_open_fds Number of open file descriptors.\n\
         # TYPE process_open_fds gauge\nprocess_open_fds {}\n\
         # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n\
         # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start_time_seconds}\n",
        s.rss_bytes, s.virtual_bytes, s.open_fds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let r = Registry::new();
        let h = r.histogram("lat", "latency", vec![], &[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let text = r.render();
        assert!(text.contains("lat_bucket{le=\"0.1\"} 1"), "{text}");
        assert!(text.contains("lat_bucket{le=\"1\"} 2"), "{text}");
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("lat_count 3"), "{text}");
    }

    #[test]
    fn histogram_count_equals_the_inf_bucket_when_an_observation_lands_mid_render() {
        let r = Registry::new();
        let h = r.histogram("lat", "latency", vec![], &[0.1]);
        h.observe(0.05);
        // What a concurrent `observe` leaves between its bucket and count increments (or a
        // render's reads of the two): the count one ahead of the buckets.
        h.count.fetch_add(1, Ordering::Relaxed);
        let text = r.render();
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 1"), "{text}");
        assert!(text.contains("lat_count 1\n"), "{text}");
    }

    #[test]
    fn counter_labels_are_escaped_and_sorted() {
        let r = Registry::new();
        r.counter("c", "help", vec![("route".into(), "/b".into())])
            .inc();
        r.counter("c", "help", vec![("route".into(), "/a\"x".into())])
            .add(2);
        let text = r.render();
        let a = text.find("route=\"/a\\\"x\"").unwrap();
        let b = text.find("route=\"/b\"").unwrap();
        assert!(a < b, "{text}");
    }

    #[test]
    fn removing_a_label_value_drops_its_members_and_empty_families() {
        let r = Registry::new();
        let kept = r.counter("c", "help", vec![("flow".into(), "a".into())]);
        r.counter("c", "help", vec![("flow".into(), "b".into())])
            .inc();
        r.gauge(
            "g",
            "help",
            vec![
                ("flow".into(), "b".into()),
                ("partition".into(), "0".into()),
            ],
        )
        .set(4);
        r.counter("other", "help", vec![("route".into(), "b".into())])
            .inc();
        kept.add(2);
        // Limited to one family, the others keep their members with that label.
        r.remove_labelled(Some("g"), "flow", "b");
        let text = r.render();
        assert!(text.contains("c{flow=\"b\"} 1"), "{text}");
        assert!(!text.contains("# TYPE g gauge"), "{text}");
        r.remove_labelled(None, "flow", "b");
        let text = r.render();
        assert!(text.contains("c{flow=\"a\"} 2"), "{text}");
        assert!(!text.contains("flow=\"b\""), "{text}");
        assert!(text.contains("other{route=\"b\"} 1"), "{text}");
    }

    #[test]
    fn a_member_is_one_handle_and_a_name_keeps_its_kind() {
        let r = Registry::new();
        let first = r.counter("c", "help", vec![("k".into(), "v".into())]);
        let again = r.counter("c", "help", vec![("k".into(), "v".into())]);
        assert!(Arc::ptr_eq(&first, &again));
        again.add(3);
        assert_eq!(first.get(), 3);
        // The same name asked for as another kind is a detached metric, not a family member.
        let stray = r.gauge("c", "help", vec![("k".into(), "w".into())]);
        stray.set(9);
        let text = r.render();
        assert!(text.contains("c{k=\"v\"} 3"), "{text}");
        assert!(!text.contains("k=\"w\""), "{text}");
        assert!(!text.contains("# TYPE c gauge"), "{text}");
    }
}
