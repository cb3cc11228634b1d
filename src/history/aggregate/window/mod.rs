//! `$setWindowFields` (MongoDB 7.0's `document_source_set_window_fields.cpp` and
//! `window_function/`): each output field computed by a window function over the documents of
//! the current one's partition (`partitionBy`) in `sortBy` order — over the whole partition, a
//! window of documents around it (`documents: [lower, upper]`), or the documents whose sort value
//! lies in a range around its own (`range: [lower, upper]`, with a time `unit` for dates).
//!
//! The documents are held and sorted by partition, then by `sortBy`, as the `$sort` MongoDB puts
//! before the stage does. Windows move forward through a partition, so most functions keep a
//! running state that gains the documents entering the window and drops those leaving it
//! (`$sum`, `$avg`, `$min`, `$max`, the standard deviations and covariances, `$integral`); the
//! n-functions (`$firstN` …) rebuild their state when the window's start moves. Every value a
//! function makes counts against the stage's budget as it is made.
//!
//! `parse.rs` parses the functions and their bounds; `state.rs` holds the sliding states.

use bson::{Bson, Document};

mod parse;
mod state;

use super::super::document::{self, compare, render_value};
use super::super::error::{Error, Result};
use super::super::query::{self, Sort, sort_compare};
use super::super::{MemoryBudget, deadline, decimal, held_size};
use super::accumulate::{NAccumulator, NState};
use super::date_arith::{self, Unit};
use super::fill::{self, set_nested};
use super::percentile;
use super::zone::Zone;
use super::{
    EqualityIndex, Expr, add, divide_operands, expr, multiply_operands, nullish, subtract_operands,
};
use parse::parse_function;
use state::Sliding;

/// The window functions of MongoDB 7.0.
const WINDOW_FUNCTIONS: &[&str] = &[
    "$addToSet",
    "$avg",
    "$bottom",
    "$bottomN",
    "$count",
    "$covariancePop",
    "$covarianceSamp",
    "$denseRank",
    "$derivative",
    "$documentNumber",
    "$expMovingAvg",
    "$first",
    "$firstN",
    "$integral",
    "$last",
    "$lastN",
    "$linearFill",
    "$locf",
    "$max",
    "$maxN",
    "$median",
    "$min",
    "$minN",
    "$percentile",
    "$push",
    "$rank",
    "$shift",
    "$stdDevPop",
    "$stdDevSamp",
    "$sum",
    "$top",
    "$topN",
];

/// A document-based bound: an offset from the current document's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocBound {
    Unbounded,
    Current,
    Offset(i64),
}

/// A range-based bound: an amount added to the current document's sort value.
#[derive(Debug, Clone, PartialEq)]
enum RangeBound {
    Unbounded,
    /// The current document itself (documents tied with it are not included), unlike `0`.
    Current,
    /// A number, or with a unit an integral count of it.
    Delta(Box<Bson>),
}

/// A window's bounds.
#[derive(Debug, Clone, PartialEq)]
enum Window {
    Documents(DocBound, DocBound),
    Range(RangeBound, RangeBound, Option<Unit>),
}

/// The default window: the whole partition.
const WHOLE: Window = Window::Documents(DocBound::Unbounded, DocBound::Unbounded);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RankKind {
    Rank,
    Dense,
    DocumentNumber,
}

/// A window function, parsed (its input expression is the output's).
enum Func {
    /// `$sum`, and `$count` as `$sum: 1`.
    Sum,
    Avg,
    /// `$min` (false) or `$max` (true).
    MinMax(bool),
    Push,
    AddToSet,
    /// `$stdDevPop` (false) or `$stdDevSamp` (true).
    StdDev(bool),
    /// `$covariancePop` (false) or `$covarianceSamp` (true), of `[x, y]`.
    Covariance(bool),
    /// `$first` (false) or `$last` (true).
    FirstLast(bool),
    N(NAccumulator),
    Rank(RankKind),
    /// The input is `$shift`'s `output`.
    Shift {
        by: i64,
        default: Bson,
    },
    /// The unit's length in milliseconds, when one is given.
    Derivative(Option<i64>),
    Integral(Option<i64>),
    /// Alpha as a Decimal128.
    ExpMovingAvg(Bson),
    Locf,
    LinearFill,
    /// `$percentile` (its `p`) or `$median` (`[0.5]`, true).
    Quantile(Vec<f64>, bool),
}

/// One output field: its path, function, the function's input and its window.
struct Output {
    path: String,
    func: Func,
    input: Expr,
    window: Window,
}

/// A `$setWindowFields` stage, parsed.
pub(super) struct SetWindowFields {
    partition: Option<Expr>,
    sort: Option<Sort>,
    /// The single `sortBy` field as a field path expression (what a range window and
    /// `$derivative`/`$integral` read), when `sortBy` has one field.
    sort_value: Option<Expr>,
    outputs: Vec<Output>,
}

fn failed(message: impl Into<String>) -> Error {
    expr::parse_error(9, message)
}

/// 40415, MongoDB's error for a field a stage's specification does not have.
pub(super) fn unknown_field(stage: &str, field: &str) -> Error {
    expr::parse_error(
        40415,
        format!("BSON field '{stage}.{field}' is an unknown field."),
    )
}

/// 40414, MongoDB's error for a required field a stage's specification lacks.
pub(super) fn missing_field(stage: &str, field: &str) -> Error {
    expr::parse_error(
        40414,
        format!("BSON field '{stage}.{field}' is missing but a required field"),
    )
}

/// 6307900 when output `path` is, or lies on, one of the `earlier` outputs' paths (`a` and
/// `a.b` conflict, `a.b` and `a.c` do not).
pub(super) fn check_output_path<'a>(
    mut earlier: impl Iterator<Item = &'a str>,
    path: &str,
) -> Result<()> {
    let on = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|r| r.starts_with('.'));
    if earlier.any(|e| e == path || on(path, e) || on(e, path)) {
        return Err(expr::parse_error(
            6_307_900,
            "$setWindowFields 'output' specification contains two conflicting paths",
        ));
    }
    Ok(())
}

/// `field: value` as MongoDB prints a BSON element.
fn element(field: &str, v: &Bson) -> String {
    format!("{field}: {}", render_value(v))
}

impl SetWindowFields {
    pub(super) fn parse(arg: &Bson, now_ms: i64) -> Result<Self> {
        let Bson::Document(spec) = arg else {
            return Err(failed(format!(
                "the $setWindowFields stage specification must be an object, found {}",
                query::type_name(Some(arg))
            )));
        };
        let (mut partition_by, mut sort_by, mut output) = (None, None, None);
        for (k, v) in spec {
            let wrong_type = || {
                expr::parse_error(
                    14,
                    format!(
                        "BSON field '$setWindowFields.{k}' is the wrong type '{}', expected type 'object'",
                        query::type_name(Some(v))
                    ),
                )
            };
            match k.as_str() {
                "partitionBy" => partition_by = Some(v),
                "sortBy" => match v {
                    Bson::Document(d) => sort_by = Some(d),
                    _ => return Err(wrong_type()),
                },
                "output" => match v {
                    Bson::Document(d) => output = Some(d),
                    _ => return Err(wrong_type()),
                },
                _ => return Err(unknown_field("$setWindowFields", k)),
            }
        }
        let Some(output) = output else {
            return Err(missing_field("$setWindowFields", "output"));
        };
        let partition = match partition_by {
            None => None,
            Some(p) => match expr::compile(p, now_ms)?.fold()? {
                Expr::Const(Bson::Array(_)) => {
                    return Err(expr::parse_error(
                        14,
                        "An expression used to partition cannot evaluate to value of type array",
                    ));
                }
                // A constant puts every document in one partition.
                Expr::Const(_) => None,
                e => Some(e),
            },
        };
        let sort = sort_by.map(Sort::parse).transpose()?;
        let sort_value = match sort.as_ref().map(|s| s.keys.as_slice()) {
            Some([(path, _, _)]) => Some(expr::compile(&Bson::String(format!("${path}")), now_ms)?),
            _ => None,
        };
        let mut outputs: Vec<Output> = Vec::with_capacity(output.len());
        for (path, fspec) in output {
            check_output_path(outputs.iter().map(|o| o.path.as_str()), path)?;
            document::split_path(path)?;
            let Bson::Document(fspec) = fspec else {
                return Err(failed(format!("The field '{path}' must be an object")));
            };
            let (func, input, window) = parse_function(fspec, sort.as_ref(), now_ms)?;
            outputs.push(Output {
                path: path.clone(),
                func,
                input,
                window,
            });
        }
        Ok(Self {
            partition,
            sort,
            sort_value,
            outputs,
        })
    }

    /// Folds the stage's constant expressions.
    pub(super) fn fold(&mut self) -> Result<()> {
        let fold = |e: &mut Expr| -> Result<()> {
            *e = std::mem::replace(e, Expr::Absent).fold()?;
            Ok(())
        };
        if let Some(p) = self.partition.as_mut() {
            fold(p)?;
        }
        for o in &mut self.outputs {
            fold(&mut o.input)?;
        }
        Ok(())
    }

    pub(super) fn run(&self, docs: Vec<Document>, mut held: MemoryBudget) -> Result<Vec<Document>> {
        // The stage holds its whole input; `partitioned` charges it only when it sorts.
        if self.partition.is_none() && self.sort.is_none() {
            for d in &docs {
                held.charge(document::bson_size(d))?;
            }
        }
        partitioned(
            docs,
            self.partition.as_ref(),
            self.sort.as_ref(),
            "Cannot 'partitionBy' an expression of type array",
            &mut held,
            |part, held| self.run_partition(part, held),
        )
    }

    /// Computes every output over one partition, then writes them (MongoDB computes a
    /// document's outputs before it sets any of them).
    fn run_partition(&self, part: &mut [Document], held: &mut MemoryBudget) -> Result<()> {
        let mut columns = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            let values = self.compute(o, part, held)?;
            columns.push((o.path.as_str(), values));
        }
        for (path, values) in columns {
            let parts = document::split_path(path)?;
            for (d, v) in part.iter_mut().zip(values) {
                set_nested(d, &parts, v);
            }
        }
        Ok(())
    }

    /// One output's values over a partition, one per document.
    fn compute(&self, o: &Output, part: &[Document], held: &mut MemoryBudget) -> Result<Vec<Bson>> {
        let inputs =
            || -> Result<Vec<Option<Bson>>> { part.iter().map(|d| o.input.eval_doc(d)).collect() };
        let values = match &o.func {
            Func::Rank(kind) => self.ranks(*kind, part),
            Func::Shift { by, default } => {
                let mut out = Vec::with_capacity(part.len());
                for i in 0..part.len() {
                    let at = i64::try_from(i)
                        .ok()
                        .and_then(|i| i.checked_add(*by))
                        .and_then(|j| usize::try_from(j).ok())
                        .and_then(|j| part.get(j));
                    let v = match at {
                        Some(d) => o.input.eval_doc(d)?,
                        None => None,
                    };
                    out.push(v.unwrap_or_else(|| default.clone()));
                }
                out
            }
            Func::Locf => fill::locf(inputs()?),
            Func::LinearFill => fill::linear(self.sort.as_ref(), part, &inputs()?)?,
            Func::ExpMovingAvg(alpha) => exp_moving_avg(&inputs()?, alpha),
            // Charges each value as it is made: a window's array can be as long as the
            // partition, for every document of it.
            _ => return self.windowed(o, part, held),
        };
        for v in &values {
            held.charge(document::value_size(v))?;
        }
        Ok(values)
    }

    /// `$rank`, `$denseRank` and `$documentNumber` over a partition: documents whose sort keys
    /// compare equal tie.
    fn ranks(&self, kind: RankKind, part: &[Document]) -> Vec<Bson> {
        let key = |d: &Document| self.sort.as_ref().map_or_else(Vec::new, |s| s.key(d));
        let number = |n: usize| {
            i32::try_from(n).map_or_else(
                |_| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)),
                Bson::Int32,
            )
        };
        let (mut rank, mut dense) = (0, 0);
        let mut last: Option<Vec<Bson>> = None;
        let mut out = Vec::with_capacity(part.len());
        for (i, d) in part.iter().enumerate() {
            let k = key(d);
            let tie = last.as_ref().is_some_and(|l| {
                l.len() == k.len() && l.iter().zip(&k).all(|(a, b)| sort_compare(a, b).is_eq())
            });
            if !tie {
                rank = i + 1;
                dense += 1;
            }
            last = Some(k);
            out.push(number(match kind {
                RankKind::Rank => rank,
                RankKind::Dense => dense,
                RankKind::DocumentNumber => i + 1,
            }));
        }
        out
    }

    /// The sort value of each document, checked as a range window reads it: a date with a
    /// unit, else a number.
    fn range_values(&self, part: &[Document], unit: Option<Unit>) -> Result<Vec<Bson>> {
        let Some(sort_value) = &self.sort_value else {
            return Err(expr::parse_error(
                5_339_902,
                "Range-based bounds require sortBy a single field",
            ));
        };
        let mut out = Vec::with_capacity(part.len());
        for d in part {
            let v = sort_value.eval_doc(d)?;
            let ok = match (&v, unit) {
                (Some(Bson::DateTime(_)), Some(_)) => true,
                (other, Some(_)) => {
                    return Err(Error::expression(
                        5_429_513,
                        format!(
                            "Invalid range: Expected the sortBy field to be a Date, but it was {}",
                            query::type_name(other.as_ref())
                        ),
                    ));
                }
                (Some(Bson::DateTime(_)), None) => {
                    return Err(Error::expression(
                        5_429_413,
                        "Invalid range: For windows that involve date or time ranges, a unit must be provided.",
                    ));
                }
                (Some(x), None) => expr::numeric(x),
                (None, None) => false,
            };
            match v {
                Some(x) if ok => out.push(x),
                other => {
                    return Err(Error::expression(
                        5_429_414,
                        format!(
                            "Invalid range: Expected the sortBy field to be a number, but it was {}",
                            query::type_name(other.as_ref())
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Each document's window as positions `lo..hi` in the partition; an empty window is
    /// `lo..lo`. Both ends only move forward from one document to the next.
    fn windows(&self, window: &Window, part: &[Document]) -> Result<Vec<(usize, usize)>> {
        let n = part.len();
        let mut out = Vec::with_capacity(n);
        match window {
            Window::Documents(lower, upper) => {
                let len = i64::try_from(n).unwrap_or(i64::MAX);
                for i in 0..len {
                    let lo = match lower {
                        DocBound::Unbounded => 0,
                        DocBound::Current => i,
                        DocBound::Offset(k) => i.saturating_add(*k),
                    }
                    .clamp(0, len);
                    let hi = match upper {
                        DocBound::Unbounded => len,
                        DocBound::Current => i.saturating_add(1),
                        DocBound::Offset(k) => i.saturating_add(*k).saturating_add(1),
                    }
                    .clamp(0, len);
                    let lo = usize::try_from(lo).unwrap_or(n);
                    let hi = usize::try_from(hi).unwrap_or(n);
                    out.push((lo, hi.max(lo)));
                }
            }
            Window::Range(lower, upper, unit) => {
                let xs = self.range_values(part, *unit)?;
                let threshold = |base: &Bson, delta: &Bson| -> Result<Bson> {
                    match (base, unit) {
                        (Bson::DateTime(t), Some(u)) => {
                            let amount = delta.as_i64().unwrap_or(0);
                            date_arith::date_add(t.timestamp_millis(), *u, amount, &Zone::UTC)
                                .map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms)))
                                .ok_or_else(|| Error::expression(5_166_406, "dateAdd overflowed"))
                        }
                        _ => Ok(decimal::add(base, delta).unwrap_or_else(|| add(base, delta))),
                    }
                };
                for (i, x) in xs.iter().enumerate() {
                    deadline::check()?;
                    let lo = match lower {
                        RangeBound::Unbounded => 0,
                        RangeBound::Current => i,
                        RangeBound::Delta(d) => {
                            let t = threshold(x, d)?;
                            xs.partition_point(|v| compare(v, &t).is_lt())
                        }
                    };
                    let hi = match upper {
                        RangeBound::Unbounded => n,
                        RangeBound::Current => i + 1,
                        RangeBound::Delta(d) => {
                            let t = threshold(x, d)?;
                            xs.partition_point(|v| !compare(v, &t).is_gt())
                        }
                    };
                    out.push((lo, hi.max(lo)));
                }
            }
        }
        Ok(out)
    }

    /// A function over each document's window.
    fn windowed(
        &self,
        o: &Output,
        part: &[Document],
        held: &mut MemoryBudget,
    ) -> Result<Vec<Bson>> {
        let windows = self.windows(&o.window, part)?;
        let ys: Vec<Option<Bson>> = part
            .iter()
            .map(|d| o.input.eval_doc(d))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(part.len());
        match &o.func {
            Func::Push => {
                for &(lo, hi) in &windows {
                    let items: Vec<Bson> = ys
                        .get(lo..hi)
                        .unwrap_or_default()
                        .iter()
                        .flatten()
                        .cloned()
                        .collect();
                    push_held(&mut out, Bson::Array(items), held)?;
                }
            }
            Func::AddToSet => {
                for &(lo, hi) in &windows {
                    let mut items: Vec<Bson> = Vec::new();
                    let mut index = EqualityIndex::default();
                    for y in ys.get(lo..hi).unwrap_or_default().iter().flatten() {
                        deadline::check()?;
                        let (found, hash) = index.find(&items, y, |x| x);
                        if found.is_none() {
                            index.add(hash, items.len());
                            items.push(y.clone());
                        }
                    }
                    push_held(&mut out, Bson::Array(items), held)?;
                }
            }
            Func::FirstLast(last) => {
                for &(lo, hi) in &windows {
                    let at = if *last { hi.checked_sub(1) } else { Some(lo) };
                    let v = at
                        .filter(|&j| j >= lo && j < hi)
                        .and_then(|j| ys.get(j).cloned().flatten());
                    push_held(&mut out, v.unwrap_or(Bson::Null), held)?;
                }
            }
            Func::Derivative(unit) => {
                for &(lo, hi) in &windows {
                    let v = self.derivative(part, &ys, lo, hi, *unit)?;
                    push_held(&mut out, v, held)?;
                }
            }
            Func::Quantile(ps, median) => {
                out = quantiles(&o.window, &windows, &ys, ps, *median, held)?;
            }
            Func::N(acc) => {
                let mut state: Option<(usize, usize, NState)> = None;
                for &(lo, hi) in &windows {
                    deadline::check()?;
                    let (from, mut st) = match state.take() {
                        Some((start, end, st)) if start == lo && end <= hi => (end, st),
                        // The window's start moved: the state is built again.
                        old => {
                            if let Some((_, _, st)) = old {
                                held.release(NAccumulator::held_bytes(&st));
                            }
                            (lo, acc.start_in(&Document::new())?)
                        }
                    };
                    for j in from..hi {
                        deadline::check()?;
                        if let Some(d) = part.get(j) {
                            acc.process(&mut st, ys.get(j).cloned().flatten(), d, held)?;
                        }
                    }
                    push_held(&mut out, acc.value(&st), held)?;
                    state = Some((lo, hi, st));
                }
                if let Some((_, _, st)) = state {
                    held.release(NAccumulator::held_bytes(&st));
                }
            }
            _ => {
                let mut state = Sliding::new(&o.func);
                let xs = match &o.func {
                    Func::Integral(unit) => Some(self.integral_xs(part, unit.is_some())?),
                    _ => None,
                };
                let (mut cl, mut ch) = (0, 0);
                for &(lo, hi) in &windows {
                    deadline::check()?;
                    if lo >= ch {
                        state = Sliding::new(&o.func);
                        (cl, ch) = (lo, lo);
                    }
                    while ch < hi {
                        state.step(ch, &ys, xs.as_deref(), cl, true)?;
                        ch += 1;
                    }
                    while cl < lo {
                        state.step(cl, &ys, xs.as_deref(), ch, false)?;
                        cl += 1;
                    }
                    push_held(&mut out, state.value(&ys)?, held)?;
                }
            }
        }
        Ok(out)
    }

    /// `$derivative` over `lo..hi`: the input's change between the window's first and last
    /// documents over the sort value's, per unit of time with a unit.
    fn derivative(
        &self,
        part: &[Document],
        ys: &[Option<Bson>],
        lo: usize,
        hi: usize,
        unit: Option<i64>,
    ) -> Result<Bson> {
        if hi <= lo {
            return Ok(Bson::Null);
        }
        let last = hi - 1;
        let x = |j: usize| -> Result<Bson> {
            let v = match (&self.sort_value, part.get(j)) {
                (Some(e), Some(d)) => e.eval_doc(d)?,
                _ => None,
            };
            match (v, unit) {
                (Some(Bson::DateTime(t)), Some(_)) => Ok(Bson::Int64(t.timestamp_millis())),
                (_, Some(_)) => Err(Error::expression(
                    5_624_900,
                    "$derivative with 'unit' expects the sortBy field to be a Date",
                )),
                (Some(Bson::DateTime(_)), None) => Err(Error::expression(
                    5_624_901,
                    "$derivative where the sortBy is a Date requires an 'unit'",
                )),
                (Some(v), None) if expr::numeric(&v) => Ok(v),
                (_, None) => Err(Error::expression(
                    5_624_902,
                    "$derivative (with no 'unit') expects the sortBy field to be numeric",
                )),
            }
        };
        let (x0, x1) = (x(lo)?, x(last)?);
        let y = |j: usize| ys.get(j).cloned().flatten().unwrap_or(Bson::Null);
        let rise = subtract_operands(&y(last), &y(lo))?;
        if nullish(Some(&rise)) {
            return Err(Error::expression(
                5_624_903,
                "$derivative input must not be null or missing",
            ));
        }
        let run = subtract_operands(&x1, &x0)?;
        if document::as_f64(&run) == Some(0.0) {
            return Ok(Bson::Null);
        }
        let slope = divide_operands(&rise, &run)?;
        match unit {
            Some(ms) => multiply_operands(&[slope, Bson::Int64(ms)]),
            None => Ok(slope),
        }
    }

    /// `$integral`'s x of each document: its sort value, a date (as milliseconds) with a unit,
    /// else a number; `None` for a value of another kind.
    fn integral_xs(&self, part: &[Document], dates: bool) -> Result<Vec<Option<Bson>>> {
        let mut out = Vec::with_capacity(part.len());
        for d in part {
            let v = match &self.sort_value {
                Some(e) => e.eval_doc(d)?,
                None => None,
            };
            // A value of the wrong kind is refused only if its document enters a window.
            out.push(match (v, dates) {
                (Some(Bson::DateTime(t)), true) => Some(Bson::Int64(t.timestamp_millis())),
                (Some(v), false) if expr::numeric(&v) => Some(v),
                _ => None,
            });
        }
        Ok(out)
    }
}

/// `$percentile` or `$median` (`ps`, `median`) over each document's window (`windows`) of a
/// partition whose inputs are `ys`. A window from the partition's start grows a t-digest, read
/// (and so merged) at every document, as MongoDB's accumulator in a non-removable window; any
/// other window slides over its values, counted by value.
fn quantiles(
    window: &Window,
    windows: &[(usize, usize)],
    ys: &[Option<Bson>],
    ps: &[f64],
    median: bool,
    held: &mut MemoryBudget,
) -> Result<Vec<Bson>> {
    let mut out = Vec::with_capacity(windows.len());
    let from_start = matches!(
        window,
        Window::Documents(DocBound::Unbounded, _) | Window::Range(RangeBound::Unbounded, _, _)
    );
    // The state counts against the budget: the digest as it grows, the sliding
    // window's values at once.
    if from_start {
        let mut digest = percentile::TDigest::default();
        let mut charged = 0;
        let mut end = 0;
        for &(_, hi) in windows {
            deadline::check()?;
            for y in ys.get(end..hi).unwrap_or_default() {
                digest.add(y.as_ref());
            }
            end = end.max(hi);
            let bytes = digest.bytes();
            held.charge(bytes.saturating_sub(charged))?;
            charged = charged.max(bytes);
            push_held(&mut out, percentile::finish(median, ps, &mut digest), held)?;
        }
        held.release(charged);
    } else {
        let mut state = percentile::SortedWindow::new(ys);
        held.charge(state.bytes())?;
        let (mut cl, mut ch) = (0, 0);
        for &(lo, hi) in windows {
            deadline::check()?;
            if lo >= ch {
                while cl < ch {
                    state.remove(cl);
                    cl += 1;
                }
                (cl, ch) = (lo, lo);
            }
            while ch < hi {
                state.add(ch);
                ch += 1;
            }
            while cl < lo {
                state.remove(cl);
                cl += 1;
            }
            push_held(&mut out, state.value(median, ps), held)?;
        }
        held.release(state.bytes());
    }
    Ok(out)
}

/// Appends a value a function made to `out`, charging it to the stage's budget first.
fn push_held(out: &mut Vec<Bson>, v: Bson, held: &mut MemoryBudget) -> Result<()> {
    held.charge(document::value_size(&v))?;
    out.push(v);
    Ok(())
}

/// Sorts `docs` by partition key, then by `sort` (holding them, with their keys, against
/// `held`; without a partition or a sort they keep their order), and runs `each` over every
/// partition in turn.
/// A partition key that is an array is refused with `array_message` (14).
pub(super) fn partitioned(
    docs: Vec<Document>,
    partition: Option<&Expr>,
    sort: Option<&Sort>,
    array_message: &str,
    held: &mut MemoryBudget,
    mut each: impl FnMut(&mut [Document], &mut MemoryBudget) -> Result<()>,
) -> Result<Vec<Document>> {
    let sorts = partition.is_some() || sort.is_some();
    let mut keyed = Vec::with_capacity(docs.len());
    for d in docs {
        let key = match partition {
            Some(p) => match p.eval_doc(&d)? {
                Some(Bson::Array(_)) => return Err(Error::expression(14, array_message)),
                Some(v) => v,
                None => Bson::Null,
            },
            None => Bson::Null,
        };
        let sort_key = sort.map(|s| s.key(&d)).unwrap_or_default();
        if sorts {
            // As a sort holds it: the document, its sort key and its partition's.
            held.charge(held_size(&sort_key, &d).saturating_add(document::value_size(&key)))?;
        }
        keyed.push((key, sort_key, d));
    }
    if sorts {
        keyed.sort_by(|(pa, ka, _), (pb, kb, _)| {
            compare(pa, pb)
                .then_with(|| sort.map_or(std::cmp::Ordering::Equal, |s| s.compare_keys(ka, kb)))
        });
    }
    // Consecutive documents with equal partition keys make one partition.
    let mut out: Vec<Document> = Vec::with_capacity(keyed.len());
    let mut start = 0;
    let mut current: Option<Bson> = None;
    for (key, _, d) in keyed {
        if current.as_ref().is_some_and(|c| !compare(c, &key).is_eq()) {
            each(out.get_mut(start..).unwrap_or_default(), held)?;
            start = out.len();
        }
        current = Some(key);
        out.push(d);
    }
    each(out.get_mut(start..).unwrap_or_default(), held)?;
    Ok(out)
}

/// A `$expMovingAvg` over a partition in order, in decimal: the first number is its own
/// average, each later one weighs `alpha` against the average before it; a document whose
/// input is not a number keeps the average (null before the first number). A double unless a
/// Decimal128 was among the inputs so far.
fn exp_moving_avg(inputs: &[Option<Bson>], alpha: &Bson) -> Vec<Bson> {
    let one_minus = decimal::subtract(&Bson::Int32(1), alpha).unwrap_or(Bson::Null);
    let mut avg: Option<Bson> = None;
    let mut decimal_seen = false;
    let mut out = Vec::with_capacity(inputs.len());
    for v in inputs {
        if let Some(v) = v.as_ref().filter(|v| expr::numeric(v)) {
            decimal_seen |= matches!(v, Bson::Decimal128(_));
            avg = Some(match &avg {
                None => decimal::to_decimal(v).unwrap_or(Bson::Null),
                Some(prev) => {
                    let weighted = decimal::multiply(v, alpha).unwrap_or(Bson::Null);
                    let kept = decimal::multiply(prev, &one_minus).unwrap_or(Bson::Null);
                    decimal::add(&weighted, &kept).unwrap_or(Bson::Null)
                }
            });
        }
        out.push(match &avg {
            None => Bson::Null,
            Some(a) if decimal_seen => a.clone(),
            Some(a) => Bson::Double(document::as_f64(a).unwrap_or(f64::NAN)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::{Bson, doc};

    use super::super::super::{History, held_size};
    use super::document;

    /// What the stage holds of its sorted input: each document with its sort key (`_id`) and
    /// its partition's (null: none).
    fn input_bytes(docs: &[bson::Document]) -> usize {
        docs.iter()
            .map(|d| {
                held_size(&[d.get("_id").unwrap().clone()], d) + document::value_size(&Bson::Null)
            })
            .sum()
    }

    /// The stage holds its sorted input and every value it computes against the blocking
    /// limit: at it the stage runs, one byte under it the aggregation fails with 292.
    #[test]
    fn the_input_and_the_outputs_are_held_against_the_blocking_limit() {
        let (_dir, h) = History::open_temporary();
        let docs: Vec<_> = (0..20).map(|i| doc! {"_id": i, "v": i}).collect();
        h.insert_many("db", "c", docs.clone()).unwrap();
        let pipeline = [doc! {"$setWindowFields": {
            "sortBy": {"_id": 1},
            "output": {
                "s": {"$sum": "$v", "window": {"documents": [-1, 1]}},
                "p": {"$push": "$v", "window": {"documents": [0, 1]}},
            },
        }}];
        let out = h.aggregate("db", "c", &pipeline).unwrap();
        let inputs = input_bytes(&docs);
        let outputs: usize = out
            .iter()
            .flat_map(|d| [d.get("s").unwrap(), d.get("p").unwrap()])
            .map(document::value_size)
            .sum();
        assert_eq!(
            out[1].get("p"),
            Some(&Bson::Array(vec![1.into(), 2.into()]))
        );
        h.set_blocking_bytes_max(inputs + outputs);
        h.aggregate("db", "c", &pipeline).unwrap();
        h.set_blocking_bytes_max(inputs + outputs - 1);
        let e = h.aggregate("db", "c", &pipeline).unwrap_err();
        assert_eq!(e.code(), 292);
        assert!(e.to_string().contains("$setWindowFields"), "{e}");
    }

    /// An n-function whose window's start moves builds its state again and gives back what
    /// the old one held: a partition far longer than the limit allows per state still runs.
    #[test]
    fn rebuilt_states_give_back_what_they_held() {
        let (_dir, h) = History::open_temporary();
        let docs: Vec<_> = (0..200).map(|i| doc! {"_id": i, "v": i}).collect();
        h.insert_many("db", "c", docs.clone()).unwrap();
        let pipeline = [doc! {"$setWindowFields": {
            "sortBy": {"_id": 1},
            "output": {"m": {"$maxN": {"n": 2, "input": "$v"}, "window": {"documents": [-3, 0]}}},
        }}];
        let out = h.aggregate("db", "c", &pipeline).unwrap();
        let inputs = input_bytes(&docs);
        let outputs: usize = out
            .iter()
            .map(|d| document::value_size(d.get("m").unwrap()))
            .sum();
        // Room for the input, the outputs and one state of two kept values (and a little):
        // 200 states never given back would need 200 times that.
        h.set_blocking_bytes_max(inputs + outputs + 64);
        let again = h.aggregate("db", "c", &pipeline).unwrap();
        assert_eq!(again, out);
        assert_eq!(
            out[10].get("m"),
            Some(&Bson::Array(vec![10.into(), 9.into()]))
        );
    }
}
