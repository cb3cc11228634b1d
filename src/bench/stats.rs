//! Pure statistics over latency samples: nearest-rank percentiles and the per-run figures the
//! table and the plot print. No I/O and no clock here.

use std::collections::HashMap;

/// Latency samples of one run, sorted ascending, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latencies {
    sorted_ns: Vec<u64>,
}

impl Latencies {
    /// Sorts `samples_ns` once; every query afterwards is a lookup.
    #[must_use]
    pub fn from_samples(mut samples_ns: Vec<u64>) -> Self {
        samples_ns.sort_unstable();
        Self {
            sorted_ns: samples_ns,
        }
    }

    /// Number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sorted_ns.len()
    }

    /// Whether there are no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sorted_ns.is_empty()
    }

    /// The nearest-rank `q`-quantile (`q` in `0.0..=1.0`), or `None` without samples.
    #[must_use]
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        let n = self.sorted_ns.len();
        if n == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a rank: q * n is in 0..=n, well inside f64's exact integers"
        )]
        let rank = (q * n as f64).ceil() as usize;
        self.sorted_ns.get(rank.clamp(1, n) - 1).copied()
    }

    /// The largest sample.
    #[must_use]
    pub fn max_ns(&self) -> Option<u64> {
        self.sorted_ns.last().copied()
    }
}

/// Matches sends with receipts by order number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Matched {
    /// Receive time minus send time of every order seen on both sides, in nanoseconds.
    pub(crate) latencies_ns: Vec<u64>,
    /// Acknowledged orders that never arrived as a `NewOrder`.
    pub(crate) lost: u64,
    /// Receive time of the last matched event (monotonic nanoseconds).
    pub(crate) last_receive_ns: Option<u64>,
    /// Matched events received after `drain_from_ns`.
    pub(crate) drained: u64,
}

/// Pairs `sent` (order number, send time) with `received` (order number, receive time).
/// Duplicate receipts count once; receipts of orders not in `sent` are ignored. Matched
/// receipts later than `drain_from_ns` are also counted in [`Matched::drained`].
pub(crate) fn match_orders(
    sent: &[(u64, u64)],
    received: &[(u64, u64)],
    drain_from_ns: u64,
) -> Matched {
    let mut pending: HashMap<u64, u64> = sent.iter().copied().collect();
    let mut matched = Matched::default();
    for &(number, receive_ns) in received {
        if let Some(send_ns) = pending.remove(&number) {
            matched
                .latencies_ns
                .push(receive_ns.saturating_sub(send_ns));
            matched.drained += u64::from(receive_ns > drain_from_ns);
            matched.last_receive_ns = Some(
                matched
                    .last_receive_ns
                    .map_or(receive_ns, |t| t.max(receive_ns)),
            );
        }
    }
    matched.lost = pending.len() as u64;
    matched
}

/// Nanoseconds as milliseconds for display.
#[must_use]
pub(crate) fn ms(ns: u64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "a duration for display")]
    let ms = ns as f64 / 1e6;
    ms
}

/// `count` events over `elapsed_ns` as a rate per second (0 when no time passed).
#[must_use]
pub(crate) fn per_second(count: u64, elapsed_ns: u64) -> f64 {
    if elapsed_ns == 0 {
        return 0.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = count as f64 * 1e9 / elapsed_ns as f64;
    rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let l = Latencies::from_samples((1..=1000).rev().collect());
        assert_eq!(l.quantile_ns(0.5), Some(500));
        assert_eq!(l.quantile_ns(0.99), Some(990));
        assert_eq!(l.quantile_ns(0.999), Some(999));
        assert_eq!(l.quantile_ns(0.0), Some(1));
        assert_eq!(l.quantile_ns(1.0), Some(1000));
        assert_eq!(l.max_ns(), Some(1000));
        assert_eq!(Latencies::default().quantile_ns(0.5), None);
    }

    #[test]
    fn matching_counts_losses_and_ignores_strangers_and_duplicates() {
        let sent = [(1, 100), (2, 200), (3, 300)];
        let received = [(2, 250), (1, 180), (2, 400), (9, 10)];
        let m = match_orders(&sent, &received, 200);
        assert_eq!(m.latencies_ns, vec![50, 80]);
        assert_eq!(m.lost, 1);
        assert_eq!(m.last_receive_ns, Some(250));
        // Only the first receipt of order 2 (at 250) is after 200 and matched.
        assert_eq!(m.drained, 1);
    }

    #[test]
    fn rates_and_units() {
        assert!((per_second(500, 250_000_000) - 2000.0).abs() < 1e-9);
        assert!(per_second(5, 0).abs() < f64::EPSILON);
        assert!((ms(1_500_000) - 1.5).abs() < 1e-12);
    }
}
