//! Standard deviation, as MongoDB 7.0's `AccumulatorStdDev`: one Welford running computation
//! in double, shared by `$group`'s `$stdDevPop`/`$stdDevSamp` accumulators and their
//! expression forms (over the elements of one array operand, or over several operands). Only
//! numbers count; the result is a double, or null with no number (or only one, for the sample
//! form).

use bson::Bson;

use super::super::document;

/// Welford's running count, mean and sum of squared deviations.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds `v` when it is a number (any other value is ignored).
    pub(crate) fn push(&mut self, v: &Bson) {
        if document::type_rank(v) != 10 {
            return;
        }
        let x = document::as_f64(v).unwrap_or(f64::NAN);
        self.count += 1;
        #[expect(clippy::cast_precision_loss, reason = "MongoDB counts in double")]
        let count = self.count as f64;
        let delta = x - self.mean;
        self.mean += delta / count;
        self.m2 += delta * (x - self.mean);
    }

    /// The population (`sample` false) or sample standard deviation.
    pub(crate) fn finish(&self, sample: bool) -> Bson {
        divisor(self.count, sample).map_or(Bson::Null, |over| Bson::Double((self.m2 / over).sqrt()))
    }
}

/// What a population (`count`) or sample (`count - 1`) statistic over `count` values divides
/// by, in double; `None` when that is 0.
pub(crate) fn divisor(count: u64, sample: bool) -> Option<f64> {
    let over = if sample {
        count.saturating_sub(1)
    } else {
        count
    };
    #[expect(clippy::cast_precision_loss, reason = "in double, as MongoDB divides")]
    let over = over as f64;
    (over > 0.0).then_some(over)
}

/// `{$stdDevPop | $stdDevSamp: …}` in an expression: over the elements of a single array
/// operand, else over the operands.
pub(crate) fn std_dev(sample: bool, vals: &[Option<Bson>]) -> Bson {
    let mut w = Welford::default();
    match vals {
        [Some(Bson::Array(items))] => items.iter().for_each(|v| w.push(v)),
        _ => vals.iter().flatten().for_each(|v| w.push(v)),
    }
    w.finish(sample)
}
