//! `$percentile` and `$median` (MongoDB 7.0's `accumulator_percentile.cpp`,
//! `percentile_algo_tdigest.cpp`, `percentile_algo_discrete.cpp` and
//! `window_function_percentile.h`), whose only `method` is `"approximate"`:
//!
//! - as a `$group` accumulator, and as a window function whose window starts at the partition's
//!   start, a t-digest ([`TDigest`]: the k2 scale function, `delta` 2000, a buffer of 3 ×
//!   `delta` values merged when full and whenever a value is read), which is exact while it
//!   holds at most `delta` finite values and interpolates between centroids past that;
//! - as a window function over any other window, and as an expression over an array, the
//!   exact discrete percentile ([`discrete`]): the value at rank `⌈n·p⌉ − 1` of the sorted
//!   values.
//!
//! Numbers of every type count, as doubles; other values (arrays included) are skipped, and so
//! is NaN; infinities count at the ends. `$percentile` gives an array of doubles in the order
//! of `p` (nulls when nothing counted), `$median` one double (or null).

use bson::Bson;

use super::super::document::{self, render_value};
use super::super::error::Result;
use super::super::query;
use super::{Expr, expr, text};

/// The t-digest's compression (MongoDB's `internalQueryTdigestDelta`).
const DELTA: f64 = 2000.0;

/// Values the t-digest buffers before merging them into its centroids (MongoDB's
/// `bufferCoeff * delta`).
const BUFFER_VALUES: usize = 6000;

/// Bytes a t-digest holds besides its buffer and centroids.
const DIGEST_BYTES: usize = 64;

/// Where a specification is parsed: the code of a specification that is not an object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// A `$group` accumulator or a window function.
    Accumulator,
    Expression,
}

/// A parsed `$percentile` or `$median`: its input, and `p` still to parse (after the input's
/// expression, as MongoDB parses them).
pub(super) struct Spec<'a> {
    pub(super) median: bool,
    pub(super) input: &'a Bson,
    p: Option<&'a Bson>,
}

impl Spec<'_> {
    /// The percentiles asked for (`[0.5]` for `$median`): see [`parse`].
    pub(super) fn percentiles(
        &self,
        compile: impl FnOnce(&Bson) -> Result<Expr>,
    ) -> Result<Vec<f64>> {
        match self.p {
            Some(p) => parse_p(p, compile),
            None => Ok(vec![0.5]),
        }
    }
}

/// Parses `{input, p, method}` (`$median`: `{input, method}`) in MongoDB's order of checks:
/// the object (7429703, 7436100, or 7436200, 7436201 as an expression), each field as it comes
/// (40415 unknown, 14 a `method` that is not a string, 2 one that is not `"approximate"`), the
/// missing ones (40414); the caller then compiles `input`, and [`Spec::percentiles`] parses
/// `p` — an expression that must fold to a constant (7750300: a command's `let` variables
/// are constants, a `$lookup`'s are not) array (7750301, empty too) of numbers (7750302)
/// within [0, 1] (7750303, NaN included).
pub(super) fn parse<'a>(name: &str, arg: &'a Bson, form: Form) -> Result<Spec<'a>> {
    let median = name == "$median";
    let Bson::Document(spec) = arg else {
        let code = match (median, form) {
            (false, Form::Accumulator) => 7_429_703,
            (true, Form::Accumulator) => 7_436_100,
            (false, Form::Expression) => 7_436_200,
            (true, Form::Expression) => 7_436_201,
        };
        return Err(expr::parse_error(
            code,
            format!(
                "specification must be an object; found {name}: {}",
                render_value(arg)
            ),
        ));
    };
    let (mut input, mut p, mut method) = (None, None, false);
    for (k, v) in spec {
        match k.as_str() {
            "input" => input = Some(v),
            "p" if !median => p = Some(v),
            "method" => {
                let Bson::String(m) = v else {
                    return Err(expr::parse_error(
                        14,
                        format!(
                            "BSON field '{name}.method' is the wrong type '{}', expected type 'string'",
                            query::type_name(Some(v))
                        ),
                    ));
                };
                if m != "approximate" {
                    return Err(expr::parse_error(
                        2,
                        "Currently only 'approximate' can be used as percentile 'method'.",
                    ));
                }
                method = true;
            }
            other => {
                return Err(expr::parse_error(
                    40415,
                    format!("BSON field '{name}.{other}' is an unknown field."),
                ));
            }
        }
    }
    let missing = |field: &str| {
        expr::parse_error(
            40414,
            format!("BSON field '{name}.{field}' is missing but a required field"),
        )
    };
    let input = input.ok_or_else(|| missing("input"))?;
    if !median && p.is_none() {
        return Err(missing("p"));
    }
    if !method {
        return Err(missing("method"));
    }
    Ok(Spec { median, input, p })
}

/// `p`: a constant array of numbers within [0, 1].
fn parse_p(p: &Bson, compile: impl FnOnce(&Bson) -> Result<Expr>) -> Result<Vec<f64>> {
    let Expr::Const(value) = compile(p)?.fold_with_bound()? else {
        return Err(expr::parse_error(
            7_750_300,
            format!(
                "The $percentile 'p' field must be an array of constant values, but found value: {}.",
                render_value(p)
            ),
        ));
    };
    let bad = |code: i32, found: String| {
        expr::parse_error(
            code,
            format!(
                "The $percentile 'p' field must be an array of numbers from [0.0, 1.0], but found: {found}"
            ),
        )
    };
    let items = match &value {
        Bson::Array(items) if !items.is_empty() => items,
        other => return Err(bad(7_750_301, render_value(other))),
    };
    items
        .iter()
        .map(|item| {
            let x = document::as_f64(item).ok_or_else(|| bad(7_750_302, render_value(item)))?;
            // NaN, which MongoDB lets through to undefined behaviour, is out of range here.
            if (0.0..=1.0).contains(&x) {
                Ok(x)
            } else {
                Err(bad(7_750_303, text::render(Some(&Bson::Double(x)))))
            }
        })
        .collect()
}

/// MongoDB's `computeTrueRank`: the 0-based rank of percentile `p` among `n` sorted values.
fn true_rank(n: usize, p: f64) -> usize {
    if p >= 1.0 {
        return n.saturating_sub(1);
    }
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "MongoDB's double product and int cast; p is within [0, 1), so the rank is \
                  within 0..n"
    )]
    let rank = ((n as f64) * p).ceil() as usize;
    rank.saturating_sub(1)
}

/// What is returned for `ps`: each percentile as a double, or nulls when nothing counted;
/// `$median`'s one value on its own.
pub(super) fn output(median: bool, ps: &[f64], values: Option<Vec<f64>>) -> Bson {
    let one = |x: Option<f64>| x.map_or(Bson::Null, Bson::Double);
    match (median, values) {
        (true, values) => one(values.and_then(|v| v.first().copied())),
        (false, Some(values)) => Bson::Array(values.into_iter().map(Bson::Double).collect()),
        (false, None) => Bson::Array(vec![Bson::Null; ps.len()]),
    }
}

/// The exact discrete percentiles of `values` (NaN skipped, infinities at the ends): the value
/// at [`true_rank`] of the sorted values, for each of `ps`; `None` when no value counts.
pub(super) fn discrete(mut values: Vec<f64>, ps: &[f64]) -> Option<Vec<f64>> {
    values.retain(|x| !x.is_nan());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(
        ps.iter()
            .map(|&p| {
                values
                    .get(true_rank(values.len(), p))
                    .copied()
                    .unwrap_or(f64::NAN)
            })
            .collect(),
    )
}

/// The expression form: a number is every percentile of itself (NaN too); an array's numbers
/// give the exact discrete percentiles (nested arrays skipped); anything else, nulls.
pub(super) fn of_value(median: bool, ps: &[f64], v: Option<&Bson>) -> Bson {
    let values = match v {
        Some(Bson::Array(items)) => {
            discrete(items.iter().filter_map(document::as_f64).collect(), ps)
        }
        Some(v) => document::as_f64(v).map(|x| vec![x; ps.len()]),
        None => None,
    };
    output(median, ps, values)
}

/// The values of a sliding window over one partition, as counts per distinct value of the
/// partition in a Fenwick tree: a document enters or leaves, and a percentile is found, in
/// O(log n) (MongoDB's sorted multiset). Values that compare equal as doubles but differ
/// (`-0.0` and `0.0`) are ordered by their bits, where MongoDB's multiset keeps them in the
/// order they entered: only the sign of a zero can differ.
#[derive(Debug)]
pub(super) struct SortedWindow {
    /// Each position's value as an index into `values`, when it counts.
    coords: Vec<Option<usize>>,
    /// The partition's distinct counted values, ascending.
    values: Vec<f64>,
    /// Fenwick tree (1-based) of how many of each value the window holds.
    tree: Vec<usize>,
    len: usize,
}

impl SortedWindow {
    /// The window over a partition whose documents' inputs are `ys`, empty.
    pub(super) fn new(ys: &[Option<Bson>]) -> Self {
        let xs: Vec<Option<f64>> = ys
            .iter()
            .map(|y| {
                y.as_ref()
                    .and_then(document::as_f64)
                    .filter(|x| !x.is_nan())
            })
            .collect();
        let mut values: Vec<f64> = xs.iter().flatten().copied().collect();
        values.sort_by(f64::total_cmp);
        values.dedup_by(|a, b| a.total_cmp(b).is_eq());
        let coords = xs
            .iter()
            .map(|x| x.map(|x| values.partition_point(|v| v.total_cmp(&x).is_lt())))
            .collect();
        Self {
            coords,
            tree: vec![0; values.len() + 1],
            values,
            len: 0,
        }
    }

    /// Bytes held: a position's coordinate, a distinct value and its count each.
    pub(super) fn bytes(&self) -> usize {
        self.coords
            .len()
            .saturating_mul(16)
            .saturating_add(self.values.len().saturating_mul(16))
    }

    /// Position `j`'s value enters the window (when it counts).
    pub(super) fn add(&mut self, j: usize) {
        if let Some(&Some(c)) = self.coords.get(j) {
            self.update(c, true);
            self.len += 1;
        }
    }

    /// Position `j`'s value, which entered before, leaves the window.
    pub(super) fn remove(&mut self, j: usize) {
        if let Some(&Some(c)) = self.coords.get(j) {
            self.update(c, false);
            self.len = self.len.saturating_sub(1);
        }
    }

    fn update(&mut self, coord: usize, add: bool) {
        let mut i = coord + 1;
        while let Some(count) = self.tree.get_mut(i) {
            *count = if add {
                count.saturating_add(1)
            } else {
                count.saturating_sub(1)
            };
            i += i & i.wrapping_neg();
        }
    }

    /// The `k`-th smallest value held (0-based).
    fn kth(&self, k: usize) -> Option<f64> {
        let n = self.values.len();
        let mut pos = 0;
        let mut rest = k + 1;
        let mut step = if n == 0 { 0 } else { 1 << n.ilog2() };
        while step > 0 {
            if let Some(&count) = self.tree.get(pos + step)
                && count < rest
            {
                pos += step;
                rest -= count;
            }
            step >>= 1;
        }
        self.values.get(pos).copied()
    }

    pub(super) fn value(&self, median: bool, ps: &[f64]) -> Bson {
        let values = (self.len > 0).then(|| {
            ps.iter()
                .map(|&p| self.kth(true_rank(self.len, p)).unwrap_or(f64::NAN))
                .collect()
        });
        output(median, ps, values)
    }
}

/// A centroid of the t-digest: how many values it stands for and their mean.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Centroid {
    weight: f64,
    mean: f64,
}

impl Centroid {
    fn point(x: f64) -> Self {
        Self {
            weight: 1.0,
            mean: x,
        }
    }

    fn add_point(&mut self, x: f64) {
        self.weight += 1.0;
        self.mean += (x - self.mean) / self.weight;
    }

    /// Merges `other` in, moving the lighter side's mean towards the heavier one's.
    fn add_centroid(&mut self, other: Self) {
        if other.weight < self.weight {
            self.weight += other.weight;
            self.mean += (other.mean - self.mean) * (other.weight / self.weight);
        } else {
            let weight = self.weight + other.weight;
            self.mean = other.mean + (self.mean - other.mean) * (self.weight / weight);
            self.weight = weight;
        }
    }
}

/// The k2 scale function of Folly's t-digest, its inverse, and the weight limit of a centroid
/// starting at quantile `q`, in MongoDB's order of operations.
fn k2(q: f64) -> f64 {
    let c = DELTA * (1.0 / 2.0_f64.sqrt());
    if q <= 0.5 {
        c * q.sqrt()
    } else {
        DELTA - c * (1.0 - q).sqrt()
    }
}

fn k2_inverse(k: f64) -> f64 {
    let r = k / DELTA;
    if r <= 0.5 {
        (2.0 * r) * r
    } else {
        let b = 1.0 - r;
        1.0 - (2.0 * b) * b
    }
}

fn k2_limit(q: f64) -> f64 {
    k2_inverse(1.0 + k2(q))
}

/// MongoDB's t-digest of the `approximate` method: finite values are buffered and merged
/// (sorted) into centroids whose weight the k2 scale function limits; infinities are counted
/// apart.
#[derive(Debug, Clone)]
pub(super) struct TDigest {
    centroids: Vec<Centroid>,
    buffer: Vec<f64>,
    /// Finite values merged into the centroids.
    n: usize,
    neg_inf: usize,
    pos_inf: usize,
    min: f64,
    max: f64,
}

impl Default for TDigest {
    fn default() -> Self {
        Self {
            centroids: Vec::new(),
            buffer: Vec::new(),
            n: 0,
            neg_inf: 0,
            pos_inf: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl TDigest {
    /// Counts `v` when it is a number (NaN skipped).
    pub(super) fn add(&mut self, v: Option<&Bson>) {
        let Some(x) = v.and_then(document::as_f64).filter(|x| !x.is_nan()) else {
            return;
        };
        if x == f64::INFINITY {
            self.pos_inf += 1;
        } else if x == f64::NEG_INFINITY {
            self.neg_inf += 1;
        } else {
            self.buffer.push(x);
            if self.buffer.len() >= BUFFER_VALUES {
                self.flush();
            }
        }
    }

    /// Bytes held: the buffer's and the centroids' capacity.
    pub(super) fn bytes(&self) -> usize {
        DIGEST_BYTES
            .saturating_add(self.buffer.capacity().saturating_mul(8))
            .saturating_add(self.centroids.capacity().saturating_mul(16))
    }

    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut sorted = std::mem::take(&mut self.buffer);
        sorted.sort_by(f64::total_cmp);
        self.merge(&sorted);
        sorted.clear();
        self.buffer = sorted;
    }

    /// Merges sorted finite values into the centroids (MongoDB's `TDigest::merge`).
    #[expect(
        clippy::cast_precision_loss,
        reason = "MongoDB's counts are converted to double in the same places"
    )]
    fn merge(&mut self, sorted: &[f64]) {
        let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
            return;
        };
        self.n += sorted.len();
        self.min = self.min.min(first);
        self.max = self.max.max(last);
        let total = self.n as f64;
        let old = std::mem::take(&mut self.centroids);
        let mut merged = Vec::with_capacity(old.len() + 1);
        // The weight of the centroids made so far.
        let mut w = 0.0_f64;
        let (mut i, mut j) = (0, 0);
        // Both sources: an existing centroid goes first on a tie.
        while let (Some(&c), Some(&x)) = (old.get(i), sorted.get(j)) {
            let mut cur = if c.mean > x {
                j += 1;
                Centroid::point(x)
            } else {
                i += 1;
                c
            };
            let limit = total * k2_limit(w / total);
            while let (Some(&c), Some(&x)) = (old.get(i), sorted.get(j)) {
                if c.mean > x {
                    if w + cur.weight + 1.0 > limit {
                        break;
                    }
                    cur.add_point(x);
                    j += 1;
                } else {
                    if w + cur.weight + c.weight > limit {
                        break;
                    }
                    cur.add_centroid(c);
                    i += 1;
                }
            }
            merged.push(cur);
            w += cur.weight;
        }
        // Only existing centroids left.
        while let Some(&c) = old.get(i) {
            i += 1;
            let mut cur = c;
            let limit = total * k2_limit(w / total);
            while let Some(&c) = old.get(i) {
                if w + cur.weight + c.weight > limit {
                    break;
                }
                cur.add_centroid(c);
                i += 1;
            }
            merged.push(cur);
            w += cur.weight;
        }
        // Only new values left.
        while let Some(&x) = sorted.get(j) {
            j += 1;
            let mut cur = Centroid::point(x);
            let limit = total * k2_limit(w / total);
            while let Some(&x) = sorted.get(j) {
                if w + cur.weight + 1.0 > limit {
                    break;
                }
                cur.add_point(x);
                j += 1;
            }
            merged.push(cur);
            w += cur.weight;
        }
        self.centroids = merged;
    }

    /// The percentiles `ps` (merging the buffer first, as every read does in MongoDB); `None`
    /// when nothing counted.
    pub(super) fn percentiles(&mut self, ps: &[f64]) -> Option<Vec<f64>> {
        self.flush();
        if self.n == 0 && self.neg_inf == 0 && self.pos_inf == 0 {
            return None;
        }
        Some(ps.iter().map(|&p| self.percentile(p)).collect())
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "MongoDB's rank is converted to double in the same places"
    )]
    fn percentile(&self, p: f64) -> f64 {
        // With no finite value the ends are the infinities (MongoDB answers its initial
        // minimum and maximum there, `DBL_MAX` and `DBL_MIN`, an artefact this store does not
        // copy; nor does it copy `DBL_MIN` as the maximum of values all at or below it).
        if self.n == 0 {
            let high = if self.pos_inf > 0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
            let low = if self.neg_inf > 0 {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            if p >= 1.0 {
                return high;
            }
            if p <= 0.0 {
                return low;
            }
        }
        if p >= 1.0 {
            return if self.pos_inf > 0 {
                f64::INFINITY
            } else {
                self.max
            };
        }
        if p <= 0.0 {
            return if self.neg_inf > 0 {
                f64::NEG_INFINITY
            } else {
                self.min
            };
        }
        let mut rank = true_rank(self.n + self.pos_inf + self.neg_inf, p);
        if self.neg_inf > 0 && rank < self.neg_inf {
            return f64::NEG_INFINITY;
        }
        if self.pos_inf > 0 && rank >= self.n + self.neg_inf {
            return f64::INFINITY;
        }
        rank -= self.neg_inf;
        let rank = rank as f64;
        let last = self.centroids.len().saturating_sub(1);
        let mut r = 0.0;
        let mut i = 0;
        while let Some(c) = self.centroids.get(i) {
            r += c.weight;
            if r > rank || i == last {
                break;
            }
            i += 1;
        }
        let Some(&cur) = self.centroids.get(i) else {
            return self.max;
        };
        if cur.weight == 1.0 {
            return cur.mean;
        }
        let (left, right, w_left, w_right, dr) = if r - rank >= cur.weight / 2.0 {
            // Between the centroid before (or the minimum) and this one.
            let before = i.checked_sub(1).and_then(|b| self.centroids.get(b));
            let (left, w_left) = before.map_or((self.min, 0.0), |b| (b.mean, b.weight));
            let dr = w_left + 2.0 * cur.weight - 2.0 * (r - 1.0 - rank);
            (left, cur.mean, w_left, cur.weight, dr)
        } else {
            // Between this centroid and the next (or the maximum).
            let (right, w_right) = self
                .centroids
                .get(i + 1)
                .map_or((self.max, 0.0), |n| (n.mean, n.weight));
            let dr = cur.weight - 2.0 * (r - 1.0 - rank);
            (cur.mean, right, cur.weight, w_right, dr)
        };
        let inner = dr / (w_left + w_right);
        let res = left + (right - left) * inner;
        if res > right { right } else { res }
    }
}

/// What a `$group` accumulator, or a window from the partition's start, returns from its
/// t-digest.
pub(super) fn finish(median: bool, ps: &[f64], digest: &mut TDigest) -> Bson {
    output(median, ps, digest.percentiles(ps))
}

/// Builds the operands of the expression form: the input and `ps` as a constant array.
pub(super) fn expression_operands(ps: &[f64], input: Expr) -> Vec<Expr> {
    let ps = ps.iter().map(|&p| Bson::Double(p)).collect();
    vec![input, Expr::Const(Bson::Array(ps))]
}

/// Evaluates the expression form from its operands' values (see [`expression_operands`]).
pub(super) fn evaluate(median: bool, vals: &[Option<Bson>]) -> Option<Bson> {
    let ps: Vec<f64> = match vals.get(1) {
        Some(Some(Bson::Array(ps))) => ps.iter().filter_map(document::as_f64).collect(),
        _ => Vec::new(),
    };
    let input = vals.first().and_then(Option::as_ref);
    Some(of_value(median, &ps, input))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::super::super::error::Error;
    use super::*;
    use bson::{Document, doc};

    fn digest(values: impl IntoIterator<Item = f64>) -> TDigest {
        let mut d = TDigest::default();
        for x in values {
            d.add(Some(&Bson::Double(x)));
        }
        d
    }

    #[test]
    fn the_ranks_are_mongodbs() {
        assert_eq!(true_rank(100, 0.1), 9);
        assert_eq!(true_rank(10, 0.7), 6);
        assert_eq!(true_rank(3, 0.0), 0);
        assert_eq!(true_rank(3, 1.0), 2);
        assert_eq!(true_rank(20, 0.5), 9);
    }

    /// `percentile_algo_discrete_test.cpp`.
    #[test]
    fn the_discrete_percentiles_are_the_ranked_values() {
        let ps = [0.0, 0.5, 1.0];
        assert_eq!(discrete(vec![1.0], &ps), Some(vec![1.0, 1.0, 1.0]));
        assert_eq!(discrete(vec![2.0, 1.0], &ps), Some(vec![1.0, 1.0, 2.0]));
        assert_eq!(
            discrete(vec![3.0, 1.0, 2.0], &ps),
            Some(vec![1.0, 2.0, 3.0])
        );
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            discrete(hundred, &[0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0]),
            Some(vec![1.0, 1.0, 10.0, 50.0, 90.0, 99.0, 100.0])
        );
        let mut infs = vec![f64::NEG_INFINITY; 70];
        infs.extend([f64::INFINITY; 30]);
        let ps = [0.0, 0.001, 0.1, 0.7, 0.71, 0.9, 0.999, 1.0];
        let got = discrete(infs, &ps).unwrap();
        assert!(got[..4].iter().all(|x| *x == f64::NEG_INFINITY), "{got:?}");
        assert!(got[4..].iter().all(|x| *x == f64::INFINITY), "{got:?}");
        assert_eq!(discrete(vec![f64::NAN], &ps), None);
    }

    /// `percentile_algo_tdigest_test.cpp`: percentiles read from hand-built centroids.
    #[test]
    fn percentiles_interpolate_between_centroids_as_mongodbs() {
        let centroids = [
            (1.0, 1.0),
            (1.0, 2.0),
            (1.0, 3.0),
            (37.0, 10.0),
            (44.0, 18.0),
            (13.0, 80.0),
            (1.0, 800.0),
            (1.0, 900.0),
            (1.0, 10000.0),
        ];
        let d = TDigest {
            centroids: centroids
                .iter()
                .map(|&(weight, mean)| Centroid { weight, mean })
                .collect(),
            n: 100,
            min: 1.0,
            max: 10000.0,
            ..TDigest::default()
        };
        assert_eq!(d.percentile(0.02), 2.0);
        assert_eq!(d.percentile(0.98), 800.0);
        let one = TDigest {
            centroids: vec![Centroid {
                weight: 100.0,
                mean: 50.5,
            }],
            n: 100,
            min: 1.0,
            max: 100.0,
            ..TDigest::default()
        };
        // `i·p + (i + 1)·(1 − p)` at p = i / 100, where n·p is exact.
        for (p, want) in [(0.3, 30.7), (0.5, 50.5), (0.7, 70.3)] {
            assert!((one.percentile(p) - want).abs() < 1e-9, "{p}");
        }
        let ten = TDigest {
            centroids: vec![Centroid {
                weight: 10.0,
                mean: 3.7,
            }],
            n: 10,
            min: 1.0,
            max: 5.0,
            ..TDigest::default()
        };
        assert_eq!((ten.percentile(0.0), ten.percentile(1.0)), (1.0, 5.0));
    }

    #[test]
    fn up_to_delta_values_the_digest_is_exact_and_past_it_interpolates() {
        let ps = [0.0001, 0.25, 0.5, 0.75, 0.9, 0.999];
        let values: Vec<f64> = (1..=2000).map(f64::from).collect();
        let mut d = digest(values.iter().rev().copied());
        assert_eq!(d.percentiles(&ps), discrete(values, &ps));
        assert_eq!(d.centroids.len(), 2000);
        // 2,001 values: the first centroid of two values appears, and the median moves
        // between them (this store's transcription of MongoDB's merge).
        let mut d = digest((1..=2001).map(f64::from));
        assert!(d.centroids.is_empty(), "buffered until read");
        let got = d.percentiles(&[0.25, 0.5, 0.75]).unwrap();
        assert_eq!(got, vec![501.0, 1000.5, 1501.0]);
        assert_eq!(d.centroids.len(), 2000);
    }

    #[test]
    fn every_read_merges_the_buffer_so_the_order_of_reads_matters() {
        let mut once = digest((1..=2500).map(f64::from));
        let mut each = TDigest::default();
        let mut last = None;
        for x in 1..=2500 {
            each.add(Some(&Bson::Int32(x)));
            last = each.percentiles(&[0.5]);
        }
        assert_eq!(once.percentiles(&[0.5]), Some(vec![1249.5]));
        assert_eq!(last, Some(vec![1250.5]));
    }

    #[test]
    fn infinities_count_at_the_ends_and_nan_and_other_types_not_at_all() {
        let mut d = TDigest::default();
        for v in [
            Bson::Double(f64::INFINITY),
            Bson::Double(f64::NAN),
            Bson::String("x".into()),
            Bson::Array(vec![Bson::Int32(42)]),
            Bson::Int64(3),
            Bson::Double(f64::NEG_INFINITY),
        ] {
            d.add(Some(&v));
        }
        d.add(None);
        assert_eq!(
            d.percentiles(&[0.0, 0.5, 1.0]),
            Some(vec![f64::NEG_INFINITY, 3.0, f64::INFINITY])
        );
        let mut only_inf = digest([f64::INFINITY, f64::INFINITY]);
        assert_eq!(
            only_inf.percentiles(&[0.0, 0.5, 1.0]),
            Some(vec![f64::INFINITY; 3])
        );
        let mut negatives = digest([-5.0, -3.0, -1.0]);
        assert_eq!(
            negatives.percentiles(&[0.0, 0.5, 1.0]),
            Some(vec![-5.0, -3.0, -1.0])
        );
        assert_eq!(TDigest::default().percentiles(&[0.5]), None);
    }

    fn code(name: &str, arg: Bson, form: Form) -> i32 {
        match parse(name, &arg, form).and_then(|s| s.percentiles(|p| expr::compile(p, 0))) {
            Err(Error::InvalidExpression { code, .. }) => code,
            Err(other) => panic!("{arg}: {other:?}"),
            Ok(_) => panic!("{arg} accepted"),
        }
    }

    /// `percentiles_syntax.js`.
    #[test]
    fn specifications_are_parsed_in_mongodbs_order_with_its_codes() {
        let pct = |d: Document| code("$percentile", Bson::Document(d), Form::Accumulator);
        let med = |d: Document| code("$median", Bson::Document(d), Form::Accumulator);
        assert_eq!(
            code("$percentile", Bson::Double(0.5), Form::Accumulator),
            7_429_703
        );
        assert_eq!(
            code("$median", Bson::Double(0.5), Form::Accumulator),
            7_436_100
        );
        assert_eq!(
            code("$percentile", Bson::Double(0.5), Form::Expression),
            7_436_200
        );
        assert_eq!(
            code("$median", Bson::Double(0.5), Form::Expression),
            7_436_201
        );
        let m = "approximate";
        assert_eq!(pct(doc! {"input": "$x", "method": m}), 40414);
        assert_eq!(pct(doc! {"p": [0.5], "method": m}), 40414);
        assert_eq!(pct(doc! {"input": "$x", "p": [0.5]}), 40414);
        assert_eq!(
            pct(doc! {"input": "$x", "p": [0.5], "method": m, "extras": 42}),
            40415
        );
        assert_eq!(pct(doc! {"input": "$x", "p": 0.5, "method": m}), 7_750_301);
        assert_eq!(pct(doc! {"input": "$x", "p": [], "method": m}), 7_750_301);
        assert_eq!(
            pct(doc! {"input": "$x", "p": [0.5, "foo"], "method": m}),
            7_750_302
        );
        assert_eq!(
            pct(doc! {"input": "$x", "p": [0.5, 10], "method": m}),
            7_750_303
        );
        assert_eq!(
            pct(doc! {"input": "$x", "p": [f64::NAN], "method": m}),
            7_750_303
        );
        assert_eq!(
            pct(doc! {"input": "$x", "p": ["$x"], "method": m}),
            7_750_300
        );
        assert_eq!(
            pct(doc! {"input": "$x", "p": {"$add": [0.1, 0.5]}, "method": m}),
            7_750_301
        );
        assert_eq!(
            pct(doc! {"input": "$x", "p": {"$concatArrays": [[0.01, 0.1], ["foo"]]}, "method": m}),
            7_750_302
        );
        assert_eq!(pct(doc! {"input": "$x", "p": [0.5], "method": 42}), 14);
        for method in ["fancy", "discrete", "continuous"] {
            assert_eq!(pct(doc! {"input": "$x", "p": [0.5], "method": method}), 2);
            assert_eq!(med(doc! {"input": "$x", "method": method}), 2);
        }
        assert_eq!(med(doc! {"input": "$x", "p": [0.5], "method": m}), 40415);
        assert_eq!(med(doc! {"method": m}), 40414);
        assert_eq!(med(doc! {"input": "$x"}), 40414);
        // Constant expressions fold.
        let spec = doc! {"input": "$x", "p": [{"$add": [0.1, 0.5]}, 0.9], "method": m};
        let spec = Bson::Document(spec);
        let parsed = parse("$percentile", &spec, Form::Accumulator)
            .and_then(|s| s.percentiles(|p| expr::compile(p, 0)))
            .unwrap();
        assert_eq!(parsed, vec![0.6, 0.9]);
        let spec = Bson::Document(doc! {"input": "$x", "p": [0.5, 10], "method": m});
        let Err(Error::InvalidExpression { message, .. }) =
            parse("$percentile", &spec, Form::Accumulator)
                .and_then(|s| s.percentiles(|p| expr::compile(p, 0)))
        else {
            panic!("accepted")
        };
        assert_eq!(
            message,
            "The $percentile 'p' field must be an array of numbers from [0.0, 1.0], but found: 10"
        );
    }

    /// The expression cases of MongoDB's jstests.
    #[test]
    fn the_expression_form_over_arrays_and_scalars() {
        let ps = [0.5, 0.9, 0.1];
        let arr = |v: Vec<Bson>| Bson::Array(v);
        assert_eq!(
            of_value(
                false,
                &[0.5],
                Some(&arr(vec![
                    Bson::Int32(0),
                    "non-numeric".into(),
                    Bson::Int32(1),
                    Bson::Int32(2)
                ]))
            ),
            Bson::Array(vec![Bson::Double(1.0)])
        );
        assert_eq!(
            of_value(
                false,
                &ps,
                Some(&arr(vec![Bson::Int32(0), Bson::Int32(1), Bson::Int32(2)]))
            ),
            Bson::Array(vec![
                Bson::Double(1.0),
                Bson::Double(2.0),
                Bson::Double(0.0)
            ])
        );
        // A scalar is every percentile of itself.
        assert_eq!(
            of_value(false, &ps, Some(&Bson::Int32(0))),
            Bson::Array(vec![Bson::Double(0.0); 3])
        );
        assert_eq!(
            of_value(false, &ps, Some(&"x".into())),
            Bson::Array(vec![Bson::Null; 3])
        );
        assert_eq!(
            of_value(
                true,
                &[0.5],
                Some(&arr(vec!["a".into(), arr(vec![Bson::Int32(1)])]))
            ),
            Bson::Null
        );
        assert_eq!(of_value(true, &[0.5], None), Bson::Null);
    }

    #[test]
    fn a_sorted_window_gives_the_exact_percentiles_of_what_it_holds() {
        let ys: Vec<Option<Bson>> = vec![
            Some(Bson::Int32(5)),
            Some(Bson::Int32(1)),
            Some(Bson::Double(3.0)),
            Some("skipped".into()),
            Some(Bson::Int64(1)),
            None,
        ];
        let mut w = SortedWindow::new(&ys);
        (0..3).for_each(|j| w.add(j));
        assert_eq!(w.value(true, &[0.5]), Bson::Double(3.0));
        w.remove(0);
        w.add(3);
        w.add(4);
        assert_eq!(
            w.value(false, &[0.0, 0.5, 1.0]),
            Bson::Array(vec![
                Bson::Double(1.0),
                Bson::Double(1.0),
                Bson::Double(3.0)
            ])
        );
        (1..5).for_each(|j| w.remove(j));
        w.add(5);
        assert_eq!(w.value(true, &[0.5]), Bson::Null);
    }

    /// Against sorting the window's values, over windows sliding through a partition.
    #[test]
    fn a_sorted_window_agrees_with_sorting() {
        let mut seed = 7_u64;
        let ys: Vec<Option<Bson>> = (0..500)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                Some(Bson::Int64(i64::try_from(seed >> 58).unwrap()))
            })
            .collect();
        let ps = [0.0, 0.1, 0.5, 0.9, 1.0];
        let mut w = SortedWindow::new(&ys);
        let width = 37;
        for hi in 0..ys.len() {
            w.add(hi);
            if hi >= width {
                w.remove(hi - width);
            }
            let lo = (hi + 1).saturating_sub(width);
            let held: Vec<f64> = ys[lo..=hi]
                .iter()
                .flatten()
                .filter_map(document::as_f64)
                .collect();
            assert_eq!(w.value(false, &ps), output(false, &ps, discrete(held, &ps)));
        }
    }
}
