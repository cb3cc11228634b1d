//! The running states of window functions whose window slides: values enter at its end and
//! leave at its start (`$sum`, `$avg`, `$min`, `$max`, the standard deviations and covariances,
//! `$integral`).

use std::collections::VecDeque;

use bson::Bson;

use super::super::super::decimal;
use super::super::super::document::{self, compare};
use super::super::super::error::{Error, Result};
use super::super::stats;
use super::super::{divide_operands, expr, multiply_operands, nullish, subtract_operands};
use super::Func;

/// The NaNs and infinities a removable state holds, counted apart from its finite values, as
/// MongoDB's removable functions count them: they leave the state as they came.
#[derive(Debug, Default, Clone, Copy)]
struct NonFinite {
    nans: usize,
    pos_inf: usize,
    neg_inf: usize,
}

impl NonFinite {
    /// Counts `x` in (`up`) or out when it is NaN or infinite; false for a finite value.
    fn step(&mut self, x: f64, up: bool) -> bool {
        let slot = if x.is_nan() {
            &mut self.nans
        } else if x == f64::INFINITY {
            &mut self.pos_inf
        } else if x == f64::NEG_INFINITY {
            &mut self.neg_inf
        } else {
            return false;
        };
        *slot = if up {
            slot.saturating_add(1)
        } else {
            slot.saturating_sub(1)
        };
        true
    }

    /// What the held values make of a result: NaN with a NaN or infinities of both signs,
    /// else the infinity held; `None` when none is held.
    fn value(self) -> Option<f64> {
        if self.nans > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            Some(f64::NAN)
        } else if self.pos_inf > 0 {
            Some(f64::INFINITY)
        } else if self.neg_inf > 0 {
            Some(f64::NEG_INFINITY)
        } else {
            None
        }
    }
}

/// A sum that values can leave as well as enter, as MongoDB's `RemovableSum`: integers exactly,
/// doubles with a compensation term, Decimal128s in decimal; its type is the widest among the
/// values it holds, and non-finite doubles are counted rather than added.
#[derive(Default)]
pub(super) struct RemovableSum {
    ints: i128,
    longs: usize,
    doubles: usize,
    decimals: usize,
    /// Neumaier's sum and compensation of the finite doubles.
    sum: f64,
    carry: f64,
    decimal: Option<Bson>,
    special: NonFinite,
    /// The numbers held.
    count: usize,
}

impl RemovableSum {
    /// Adds (`sign` 1) or removes (`sign` -1) `v`; anything but a number is ignored.
    fn update(&mut self, v: &Bson, sign: i8) {
        let up = sign > 0;
        let step = |n: &mut usize| {
            if up {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
        };
        match v {
            Bson::Int32(x) => {
                self.ints += i128::from(*x) * i128::from(sign);
            }
            Bson::Int64(x) => {
                self.ints += i128::from(*x) * i128::from(sign);
                step(&mut self.longs);
            }
            Bson::Decimal128(_) if decimal::non_finite(v).is_some() => {
                // Counted as a double's would be, not added: it leaves the sum as it came.
                step(&mut self.decimals);
                self.special
                    .step(decimal::non_finite(v).unwrap_or(f64::NAN), up);
            }
            Bson::Double(x) => {
                step(&mut self.doubles);
                if !self.special.step(*x, up) {
                    let x = if up { *x } else { -*x };
                    let t = self.sum + x;
                    self.carry += if self.sum.abs() >= x.abs() {
                        (self.sum - t) + x
                    } else {
                        (x - t) + self.sum
                    };
                    self.sum = t;
                }
            }
            Bson::Decimal128(_) => {
                step(&mut self.decimals);
                let zero = Bson::Decimal128(bson::Decimal128::from_bytes([0; 16]));
                let acc = self
                    .decimal
                    .take()
                    .unwrap_or_else(|| decimal::to_decimal(&Bson::Int32(0)).unwrap_or(zero));
                self.decimal = if up {
                    decimal::add(&acc, v)
                } else {
                    decimal::subtract(&acc, v)
                };
            }
            _ => return,
        }
        step(&mut self.count);
    }

    /// The sum as MongoDB's `$sum` types it: a Decimal128 if one is held, else a double if one
    /// is, else a long if one is or the integers overflow an int, else an int.
    fn value(&self) -> Bson {
        #[expect(
            clippy::cast_precision_loss,
            reason = "added in double, as MongoDB does"
        )]
        let ints_f64 = self.ints as f64;
        if let Some(x) = self.special.value() {
            return if self.decimals > 0 {
                decimal::to_decimal(&Bson::Double(x)).unwrap_or(Bson::Double(x))
            } else {
                Bson::Double(x)
            };
        }
        let doubles = self.sum + self.carry;
        if self.decimals > 0 {
            let ints = i64::try_from(self.ints).map_or(Bson::Double(ints_f64), Bson::Int64);
            let mut total = self.decimal.clone().unwrap_or(Bson::Int32(0));
            for part in [ints, Bson::Double(doubles)] {
                total = decimal::add(&total, &part).unwrap_or(total);
            }
            return total;
        }
        if self.doubles > 0 {
            return Bson::Double(ints_f64 + doubles);
        }
        match (i32::try_from(self.ints), i64::try_from(self.ints)) {
            (Ok(x), _) if self.longs == 0 => Bson::Int32(x),
            (_, Ok(x)) => Bson::Int64(x),
            _ => Bson::Double(ints_f64),
        }
    }
}

/// Welford's running count, mean and sum of squared deviations, able to drop values again;
/// non-finite values are counted (any makes the result NaN).
#[derive(Default)]
pub(super) struct RemovableWelford {
    count: u64,
    mean: f64,
    m2: f64,
    special: NonFinite,
}

impl RemovableWelford {
    fn add(&mut self, x: f64) {
        if self.special.step(x, true) {
            return;
        }
        self.count += 1;
        #[expect(clippy::cast_precision_loss, reason = "MongoDB counts in double")]
        let n = self.count as f64;
        let delta = x - self.mean;
        self.mean += delta / n;
        self.m2 += delta * (x - self.mean);
    }

    fn remove(&mut self, x: f64) {
        if self.special.step(x, false) {
            return;
        }
        if self.count <= 1 {
            *self = Self {
                special: self.special,
                ..Self::default()
            };
            return;
        }
        #[expect(clippy::cast_precision_loss, reason = "MongoDB counts in double")]
        let n = self.count as f64;
        let before = (n * self.mean - x) / (n - 1.0);
        self.m2 -= (x - before) * (x - self.mean);
        self.m2 = self.m2.max(0.0);
        self.mean = before;
        self.count -= 1;
    }

    fn value(&self, sample: bool) -> Bson {
        if self.special.value().is_some() {
            return Bson::Double(f64::NAN);
        }
        stats::divisor(self.count, sample)
            .map_or(Bson::Null, |over| Bson::Double((self.m2 / over).sqrt()))
    }
}

/// The running co-moment of pairs `[x, y]`, able to drop pairs again. A pair with a NaN or an
/// infinity is not counted (as MongoDB's `WindowFunctionCovariance`): it is kept aside as the
/// NaN or infinity it makes, which the result becomes while the pair is in the window.
#[derive(Default)]
pub(super) struct CoMoment {
    count: u64,
    mean_x: f64,
    mean_y: f64,
    c: f64,
    special: NonFinite,
}

impl CoMoment {
    /// A pair as `$covariancePop`/`$covarianceSamp` take it: an array of exactly two numbers.
    fn pair(v: Option<&Bson>) -> Option<(f64, f64)> {
        match v {
            Some(Bson::Array(a)) => match a.as_slice() {
                [x, y] if expr::numeric(x) && expr::numeric(y) => {
                    Some((document::as_f64(x)?, document::as_f64(y)?))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Counts a pair with a NaN or an infinity in (`up`) or out as the value it makes (NaN
    /// with a NaN or infinities of both signs, else the infinity); false for a finite pair.
    fn non_finite(&mut self, (x, y): (f64, f64), up: bool) -> bool {
        let mut pair = NonFinite::default();
        pair.step(x, true);
        pair.step(y, true);
        match pair.value() {
            Some(v) => self.special.step(v, up),
            None => false,
        }
    }

    fn add(&mut self, p: (f64, f64)) {
        if self.non_finite(p, true) {
            return;
        }
        let (x, y) = p;
        self.count += 1;
        #[expect(clippy::cast_precision_loss, reason = "in double")]
        let n = self.count as f64;
        let dx = x - self.mean_x;
        self.mean_x += dx / n;
        self.mean_y += (y - self.mean_y) / n;
        self.c += dx * (y - self.mean_y);
    }

    fn remove(&mut self, p: (f64, f64)) {
        if self.non_finite(p, false) {
            return;
        }
        let (x, y) = p;
        if self.count <= 1 {
            *self = Self {
                special: self.special,
                ..Self::default()
            };
            return;
        }
        #[expect(clippy::cast_precision_loss, reason = "in double")]
        let n = self.count as f64;
        let mean_x = (n * self.mean_x - x) / (n - 1.0);
        let mean_y = (n * self.mean_y - y) / (n - 1.0);
        self.c -= (x - mean_x) * (y - self.mean_y);
        self.mean_x = mean_x;
        self.mean_y = mean_y;
        self.count -= 1;
    }

    /// As MongoDB's `getValue`: a population covariance of one pair is 0; with nothing to
    /// divide by, null; else the co-moment (NaN or infinite while such a pair is held) over
    /// the count.
    fn value(&self, sample: bool) -> Bson {
        if self.count == 1 && !sample {
            return Bson::Double(0.0);
        }
        let Some(over) = stats::divisor(self.count, sample) else {
            return Bson::Null;
        };
        let c = self.special.value().unwrap_or(self.c);
        Bson::Double(c / over)
    }
}

/// The running state of a function whose window slides: positions enter at the end and leave
/// at the start.
pub(super) enum Sliding {
    Sum(RemovableSum),
    Avg(RemovableSum),
    /// The positions that can still be the window's minimum (or maximum), best first.
    MinMax {
        max: bool,
        candidates: VecDeque<usize>,
    },
    StdDev(RemovableWelford, bool),
    Covariance(CoMoment, bool),
    /// The trapezoids between consecutive points of the window, the points held (and of them
    /// those whose value is NaN), and the unit's length in milliseconds.
    Integral {
        area: RemovableSum,
        points: usize,
        nans: usize,
        unit: Option<i64>,
    },
}

impl Sliding {
    pub(super) fn new(f: &Func) -> Self {
        match f {
            Func::Avg => Self::Avg(RemovableSum::default()),
            Func::MinMax(max) => Self::MinMax {
                max: *max,
                candidates: VecDeque::new(),
            },
            Func::StdDev(sample) => Self::StdDev(RemovableWelford::default(), *sample),
            Func::Covariance(sample) => Self::Covariance(CoMoment::default(), *sample),
            Func::Integral(unit) => Self::Integral {
                area: RemovableSum::default(),
                points: 0,
                nans: 0,
                unit: *unit,
            },
            _ => Self::Sum(RemovableSum::default()),
        }
    }

    /// Position `j` enters the window (`entering`; the window starts at `other_end`) or, as its
    /// first, leaves it (the window ends before `other_end`).
    pub(super) fn step(
        &mut self,
        j: usize,
        ys: &[Option<Bson>],
        xs: Option<&[Option<Bson>]>,
        other_end: usize,
        entering: bool,
    ) -> Result<()> {
        let y = ys.get(j).and_then(Option::as_ref);
        let number = || y.filter(|y| expr::numeric(y)).and_then(document::as_f64);
        match self {
            Self::Sum(s) | Self::Avg(s) => {
                if let Some(y) = y {
                    s.update(y, if entering { 1 } else { -1 });
                }
            }
            Self::MinMax { max, candidates } => {
                if !entering {
                    if candidates.front() == Some(&j) {
                        candidates.pop_front();
                    }
                    return Ok(());
                }
                let Some(y) = y.filter(|y| !nullish(Some(y))) else {
                    return Ok(());
                };
                while let Some(b) = candidates.back().and_then(|&b| ys.get(b)?.as_ref()) {
                    let o = compare(b, y);
                    if (*max && o.is_lt()) || (!*max && o.is_gt()) {
                        candidates.pop_back();
                    } else {
                        break;
                    }
                }
                candidates.push_back(j);
            }
            Self::StdDev(w, _) => match number() {
                Some(x) if entering => w.add(x),
                Some(x) => w.remove(x),
                None => {}
            },
            Self::Covariance(c, _) => match CoMoment::pair(y) {
                Some(p) if entering => c.add(p),
                Some(p) => c.remove(p),
                None => {}
            },
            Self::Integral {
                area,
                points,
                nans,
                unit,
            } => {
                let nan = y.is_some_and(|y| document::as_f64(y).is_some_and(f64::is_nan));
                if entering {
                    check_integral_point(y, xs.and_then(|xs| xs.get(j)), unit.is_some())?;
                    if j > other_end {
                        area.update(&trapezoid(j - 1, j, ys, xs)?, 1);
                    }
                    *points += 1;
                    *nans += usize::from(nan);
                } else {
                    if j + 1 < other_end {
                        area.update(&trapezoid(j, j + 1, ys, xs)?, -1);
                    }
                    *points = points.saturating_sub(1);
                    *nans = nans.saturating_sub(usize::from(nan));
                }
            }
        }
        Ok(())
    }

    pub(super) fn value(&self, ys: &[Option<Bson>]) -> Result<Bson> {
        Ok(match self {
            Self::Sum(s) => s.value(),
            Self::Avg(s) => {
                if s.count == 0 {
                    Bson::Null
                } else {
                    let total = s.value();
                    let n = u64::try_from(s.count).unwrap_or(u64::MAX);
                    decimal::divide(&total, n).unwrap_or_else(|| {
                        #[expect(clippy::cast_precision_loss, reason = "an average is a double")]
                        let n = n as f64;
                        Bson::Double(document::as_f64(&total).unwrap_or(f64::NAN) / n)
                    })
                }
            }
            Self::MinMax { candidates, .. } => candidates
                .front()
                .and_then(|&j| ys.get(j).cloned().flatten())
                .unwrap_or(Bson::Null),
            Self::StdDev(w, sample) => w.value(*sample),
            Self::Covariance(c, sample) => c.value(*sample),
            Self::Integral {
                area,
                points,
                nans,
                unit,
            } => {
                if *points == 0 {
                    Bson::Null
                } else if *nans > 0 {
                    Bson::Double(f64::NAN)
                } else {
                    let area = area.value();
                    match unit {
                        Some(ms) => divide_operands(&area, &Bson::Int64(*ms))?,
                        None => area,
                    }
                }
            }
        })
    }
}

/// `$integral`'s check of each point as it enters a window: a number as its value, and a sort
/// value (`x`, kept only when it is of the right kind) that is a date with a unit, else a
/// number.
fn check_integral_point(y: Option<&Bson>, x: Option<&Option<Bson>>, dates: bool) -> Result<()> {
    if !y.is_some_and(expr::numeric) {
        return Err(Error::expression(
            5_423_900,
            "The input value of $integral window function must be a vector of 2 value, the first value must be numeric or date type and the second must be numeric.",
        ));
    }
    match x {
        Some(Some(_)) => Ok(()),
        _ if dates => Err(Error::expression(
            5_423_901,
            "$integral with 'outputUnit' expects the sortBy field to be a Date",
        )),
        _ => Err(Error::expression(
            5_423_902,
            "$integral (with no 'outputUnit') expects the sortBy field to be numeric",
        )),
    }
}

/// The area of the trapezoid between points `a` and `b`: `(x_b - x_a) * (y_a + y_b) / 2`.
fn trapezoid(a: usize, b: usize, ys: &[Option<Bson>], xs: Option<&[Option<Bson>]>) -> Result<Bson> {
    let y = |j: usize| ys.get(j).cloned().flatten().unwrap_or(Bson::Null);
    let x = |j: usize| {
        xs.and_then(|xs| xs.get(j))
            .cloned()
            .flatten()
            .unwrap_or(Bson::Null)
    };
    let width = subtract_operands(&x(b), &x(a))?;
    let heights = super::super::add_operands(&[y(a), y(b)])?;
    divide_operands(&multiply_operands(&[width, heights])?, &Bson::Double(2.0))
}
