//! `$group`'s accumulators that keep up to `n` values: `$firstN $lastN $maxN $minN` and
//! `$top $bottom $topN $bottomN` (MongoDB 5.2). `n` is an expression of the group key,
//! evaluated once per group when the group starts and checked as MongoDB's `validateN`
//! (a positive integral number); the values kept count against the stage's memory budget.
//! Also the expression forms of `$firstN $lastN $maxN $minN`, over an array.

use std::cmp::Ordering;
use std::collections::VecDeque;

use bson::{Bson, Document};

use super::super::MemoryBudget;
use super::super::document::{self, compare, render_value};
use super::super::error::Result;
use super::super::query::Sort;
use super::expr::{self, Expr, nullish};
use super::text;

/// The expression forms `{$firstN: {n, input}}` … over an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrayN {
    First,
    Last,
    Max,
    Min,
}

/// The `n` and `input` operands of an n-operator `op` (accumulator or expression form).
///
/// # Errors
/// MongoDB's 5787801/5787900 for a non-object, 5787901 for an unknown field, 5787906/5787907
/// for a missing one.
pub(crate) fn n_operands<'a>(op: &str, arg: &'a Bson) -> Result<(&'a Bson, &'a Bson)> {
    let Bson::Document(spec) = arg else {
        return Err(expr::parse_error(
            if matches!(op, "$firstN" | "$lastN") {
                5_787_801
            } else {
                5_787_900
            },
            format!(
                "specification must be an object; found {op}: {}",
                render_value(arg)
            ),
        ));
    };
    let got = expr::named_operands(spec, &["n", "input"], |k| {
        expr::parse_error(5_787_901, format!("Unknown argument for 'n' operator: {k}"))
    })?;
    let mut got = got.into_iter();
    let n = got
        .next()
        .flatten()
        .ok_or_else(|| expr::parse_error(5_787_906, "Missing value for 'n'"))?;
    let input = got
        .next()
        .flatten()
        .ok_or_else(|| expr::parse_error(5_787_907, "Missing value for 'input'"))?;
    Ok((n, input))
}

/// `{$firstN | $lastN | $maxN | $minN: {n, input}}` evaluated: `n` checked first, then the
/// input must be an array (5788200); `$maxN`/`$minN` skip null elements and return the
/// largest descending, or the smallest ascending.
pub(crate) fn array_n(k: ArrayN, n: Option<&Bson>, input: Option<&Bson>) -> Result<Bson> {
    let n = check_n(n)?;
    let Some(Bson::Array(items)) = input else {
        return Err(expr::eval_error(5_788_200, "Input must be an array"));
    };
    let kept: Vec<Bson> = match k {
        ArrayN::First => items.iter().take(n).cloned().collect(),
        ArrayN::Last => items
            .iter()
            .skip(items.len().saturating_sub(n))
            .cloned()
            .collect(),
        ArrayN::Max | ArrayN::Min => {
            let mut sorted: Vec<&Bson> = items.iter().filter(|v| !nullish(Some(v))).collect();
            // Stable, so equal values keep their order.
            if k == ArrayN::Min {
                sorted.sort_by(|a, b| compare(a, b));
            } else {
                sorted.sort_by(|a, b| compare(b, a));
            }
            sorted.into_iter().take(n).cloned().collect()
        }
    };
    Ok(Bson::Array(kept))
}

/// Which values an n-accumulator keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    First,
    Last,
    Max,
    Min,
    /// The first in `sortBy` order.
    Top,
    /// The last in `sortBy` order.
    Bottom,
}

/// An n-accumulator, parsed: what it keeps, its `n` (none for `$top`/`$bottom`, which keep one
/// value and return it bare) and its `sortBy`.
pub(super) struct NAccumulator {
    keep: Keep,
    n: Option<Expr>,
    sort: Option<Sort>,
}

/// A group's state of an n-accumulator: `n` and the values kept, each with its sort key
/// (`$top`/`$bottom` only), in output order for first/last and sorted for the others.
pub(super) struct NState {
    n: usize,
    items: VecDeque<(Vec<Bson>, Bson)>,
}

impl NAccumulator {
    /// Parses `{op: arg}` when `op` is an n-accumulator: the accumulator and the expression
    /// each document feeds it (`input`, or `output` for `$top`/`$bottom`); `None` for
    /// another operator.
    pub(super) fn parse(op: &str, arg: &Bson, now_ms: i64) -> Result<Option<(Self, Expr)>> {
        let keep = match op {
            "$firstN" => Keep::First,
            "$lastN" => Keep::Last,
            "$maxN" => Keep::Max,
            "$minN" => Keep::Min,
            "$top" | "$topN" => Keep::Top,
            "$bottom" | "$bottomN" => Keep::Bottom,
            _ => return Ok(None),
        };
        let single = matches!(op, "$top" | "$bottom");
        let sorted = matches!(keep, Keep::Top | Keep::Bottom);
        if !sorted {
            let (n, input) = n_operands(op, arg)?;
            return Ok(Some((
                Self {
                    keep,
                    n: Some(expr::compile(n, now_ms)?),
                    sort: None,
                },
                expr::compile(input, now_ms)?,
            )));
        }
        let Bson::Document(spec) = arg else {
            return Err(expr::parse_error(
                5_788_001,
                format!(
                    "specification must be an object; found {op}: {}",
                    render_value(arg)
                ),
            ));
        };
        let (mut n, mut input, mut sort) = (None, None, None);
        for (k, v) in spec {
            match k.as_str() {
                "n" if !single => n = Some(expr::compile(v, now_ms)?),
                "output" => input = Some(expr::compile(v, now_ms)?),
                "sortBy" => {
                    let Bson::Document(s) = v else {
                        return Err(expr::parse_error(
                            10065,
                            "invalid parameter: expected an object (sortBy)",
                        ));
                    };
                    sort = Some(Sort::parse(s)?);
                }
                other => {
                    return Err(expr::parse_error(
                        5_788_002,
                        format!("Unknown argument to {op} '{other}'"),
                    ));
                }
            }
        }
        if n.is_none() && !single {
            return Err(expr::parse_error(5_788_003, "Missing value for 'n'"));
        }
        let Some(input) = input else {
            return Err(expr::parse_error(5_788_004, "Missing value for 'output'"));
        };
        if sort.is_none() {
            return Err(expr::parse_error(5_788_005, "Missing value for 'sortBy'"));
        }
        Ok(Some((Self { keep, n, sort }, input)))
    }

    /// Starts a group with key `key`: evaluates `n` against `{_id: key}`.
    ///
    /// # Errors
    /// 5787902/5787903 for an `n` that is not an integral number, 5787908 for one below 1.
    pub(super) fn start(&self, key: &Bson) -> Result<NState> {
        let mut scope = Document::new();
        scope.insert("_id", key.clone());
        self.start_in(&scope)
    }

    /// Starts a state with `n` evaluated against `scope` (a window function's, with no
    /// document, is empty).
    ///
    /// # Errors
    /// As [`NAccumulator::start`].
    pub(super) fn start_in(&self, scope: &Document) -> Result<NState> {
        let n = match &self.n {
            None => 1,
            Some(e) => check_n(e.eval_doc(scope)?.as_ref())?,
        };
        Ok(NState {
            n,
            items: VecDeque::new(),
        })
    }

    /// Feeds one document's value `v` (of the input or output expression) to `st`.
    pub(super) fn process(
        &self,
        st: &mut NState,
        v: Option<Bson>,
        d: &Document,
        held: &mut MemoryBudget,
    ) -> Result<()> {
        match self.keep {
            Keep::First => {
                if st.items.len() < st.n {
                    push_held(st, v.unwrap_or(Bson::Null), held)?;
                }
            }
            Keep::Last => {
                if st.items.len() == st.n
                    && let Some((_, old)) = st.items.pop_front()
                {
                    held.release(document::value_size(&old));
                }
                push_held(st, v.unwrap_or(Bson::Null), held)?;
            }
            Keep::Max | Keep::Min => {
                let Some(v) = v.filter(|v| !nullish(Some(v))) else {
                    return Ok(());
                };
                // Kept ascending for $minN, descending for $maxN; a new value joins after
                // its equals.
                let before = |kept: &Bson| {
                    let o = compare(&v, kept);
                    if self.keep == Keep::Min {
                        o == Ordering::Less
                    } else {
                        o == Ordering::Greater
                    }
                };
                if st.items.len() == st.n {
                    if !st.items.back().is_some_and(|(_, last)| before(last)) {
                        return Ok(());
                    }
                    if let Some((_, old)) = st.items.pop_back() {
                        held.release(document::value_size(&old));
                    }
                }
                let at = st.items.partition_point(|(_, kept)| !before(kept));
                held.charge(document::value_size(&v))?;
                st.items.insert(at, (Vec::new(), v));
            }
            Keep::Top | Keep::Bottom => {
                let Some(sort) = &self.sort else {
                    return Ok(());
                };
                let key = sort.key(d);
                let v = v.unwrap_or(Bson::Null);
                let order = |a: &[Bson], b: &[Bson]| sort.compare_keys(a, b);
                // Kept in sortBy order; a new value joins after its equals, and on a tie
                // with the one it would displace the value seen first stays.
                if st.items.len() == st.n {
                    let displace = if self.keep == Keep::Top {
                        st.items
                            .back()
                            .is_some_and(|(last, _)| order(last, &key) == Ordering::Greater)
                    } else {
                        st.items
                            .front()
                            .is_some_and(|(first, _)| order(&key, first) == Ordering::Greater)
                    };
                    if !displace {
                        return Ok(());
                    }
                    let old = if self.keep == Keep::Top {
                        st.items.pop_back()
                    } else {
                        st.items.pop_front()
                    };
                    if let Some((k, o)) = old {
                        held.release(keyed_size(&k, &o));
                    }
                }
                let at = st
                    .items
                    .partition_point(|(k, _)| order(k, &key) != Ordering::Greater);
                held.charge(keyed_size(&key, &v))?;
                st.items.insert(at, (key, v));
            }
        }
        Ok(())
    }

    /// The bytes `st`'s kept values were charged.
    pub(super) fn held_bytes(st: &NState) -> usize {
        st.items
            .iter()
            .map(|(k, v)| keyed_size(k, v))
            .fold(0, usize::saturating_add)
    }

    /// The value of the values kept so far, as [`NAccumulator::finish`] gives it.
    pub(super) fn value(&self, st: &NState) -> Bson {
        let mut values = st.items.iter().map(|(_, v)| v.clone());
        if self.n.is_none() {
            values.next().unwrap_or(Bson::Null)
        } else {
            Bson::Array(values.collect())
        }
    }

    /// The group's value: an array of the kept values, or the one value of `$top`/`$bottom`.
    pub(super) fn finish(&self, st: NState) -> Bson {
        let mut values = st.items.into_iter().map(|(_, v)| v);
        if self.n.is_none() {
            values.next().unwrap_or(Bson::Null)
        } else {
            Bson::Array(values.collect())
        }
    }
}

/// Appends `v` to the kept values of `$firstN`/`$lastN`.
fn push_held(st: &mut NState, v: Bson, held: &mut MemoryBudget) -> Result<()> {
    held.charge(document::value_size(&v))?;
    st.items.push_back((Vec::new(), v));
    Ok(())
}

/// Bytes a kept value and its sort key hold.
fn keyed_size(key: &[Bson], v: &Bson) -> usize {
    key.iter()
        .map(document::value_size)
        .fold(document::value_size(v), usize::saturating_add)
}

/// MongoDB's `validateN`: a number with an integral value, at least 1.
fn check_n(v: Option<&Bson>) -> Result<usize> {
    let not_integral = || {
        expr::eval_error(
            5_787_902,
            format!(
                "Value for 'n' must be of integral type, but found {}",
                text::render(v)
            ),
        )
    };
    let Some(x) = v.filter(|x| expr::numeric(x)) else {
        return Err(not_integral());
    };
    // MongoDB compares n as a long with n as a double: equal for an integral value in range.
    let d = document::as_f64(x).unwrap_or(f64::NAN);
    if d.fract() != 0.0 || !(-super::TWO_POW_63..super::TWO_POW_63).contains(&d) {
        return Err(expr::eval_error(
            5_787_903,
            format!(
                "Value for 'n' must be of integral type, but found {}",
                text::render(v)
            ),
        ));
    }
    let n = super::coerce_to_long(x);
    if n <= 0 {
        return Err(expr::eval_error(
            5_787_908,
            format!("'n' must be greater than 0, found {n}"),
        ));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
