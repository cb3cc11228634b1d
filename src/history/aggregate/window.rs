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
//! function produces counts against the stage's budget until it is written.

use std::collections::VecDeque;

use bson::{Bson, Document};

use super::super::document::{self, compare, render_value};
use super::super::error::{Error, Result};
use super::super::query::{self, Sort, sort_compare};
use super::super::{MemoryBudget, deadline, decimal, held_size};
use super::accumulate::{NAccumulator, NState};
use super::date_arith::{self, Unit};
use super::fill::{self, set_nested};
use super::stats;
use super::{
    EqualityIndex, Expr, add, divide_operands, expr, multiply_operands, nullish, subtract_operands,
};

/// The window functions of MongoDB 7.0; `$percentile` and `$median` answer 115 here.
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
                            date_arith::date_add(t.timestamp_millis(), *u, amount, 0)
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

/// A sum that values can leave as well as enter, as MongoDB's `RemovableSum`: integers exactly,
/// doubles with a compensation term, Decimal128s in decimal; its type is the widest among the
/// values it holds, and non-finite doubles are counted rather than added.
#[derive(Default)]
struct RemovableSum {
    ints: i128,
    longs: usize,
    doubles: usize,
    decimals: usize,
    /// Neumaier's sum and compensation of the finite doubles.
    sum: f64,
    carry: f64,
    decimal: Option<Bson>,
    nans: usize,
    pos_inf: usize,
    neg_inf: usize,
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
                let x = decimal::non_finite(v).unwrap_or(f64::NAN);
                if x.is_nan() {
                    step(&mut self.nans);
                } else if x > 0.0 {
                    step(&mut self.pos_inf);
                } else {
                    step(&mut self.neg_inf);
                }
            }
            Bson::Double(x) => {
                step(&mut self.doubles);
                if x.is_nan() {
                    step(&mut self.nans);
                } else if x.is_infinite() {
                    if *x > 0.0 {
                        step(&mut self.pos_inf);
                    } else {
                        step(&mut self.neg_inf);
                    }
                } else {
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
        if self.nans > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            return if self.decimals > 0 {
                decimal::to_decimal(&Bson::Double(f64::NAN)).unwrap_or(Bson::Double(f64::NAN))
            } else {
                Bson::Double(f64::NAN)
            };
        }
        if self.pos_inf > 0 || self.neg_inf > 0 {
            let inf = if self.pos_inf > 0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
            return if self.decimals > 0 {
                decimal::to_decimal(&Bson::Double(inf)).unwrap_or(Bson::Double(inf))
            } else {
                Bson::Double(inf)
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
struct RemovableWelford {
    count: u64,
    mean: f64,
    m2: f64,
    non_finite: u64,
}

impl RemovableWelford {
    fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.non_finite += 1;
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
        if !x.is_finite() {
            self.non_finite = self.non_finite.saturating_sub(1);
            return;
        }
        if self.count <= 1 {
            *self = Self {
                non_finite: self.non_finite,
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
        if self.non_finite > 0 {
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
struct CoMoment {
    count: u64,
    mean_x: f64,
    mean_y: f64,
    c: f64,
    nans: u64,
    pos_inf: u64,
    neg_inf: u64,
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

    /// Counts a pair with a NaN or an infinity in (`sign` 1) or out (-1); false for a
    /// finite pair. Its value is NaN with a NaN or infinities of both signs, else the
    /// infinity's.
    fn non_finite(&mut self, (x, y): (f64, f64), up: bool) -> bool {
        if x.is_finite() && y.is_finite() {
            return false;
        }
        let infinite = [x, y].into_iter().filter(|v| v.is_infinite());
        let (pos, neg) = infinite.fold(
            (0, 0),
            |(p, n), v| {
                if v > 0.0 { (p + 1, n) } else { (p, n + 1) }
            },
        );
        let slot = if x.is_nan() || y.is_nan() || (pos > 0 && neg > 0) {
            &mut self.nans
        } else if pos > 0 {
            &mut self.pos_inf
        } else {
            &mut self.neg_inf
        };
        *slot = if up {
            slot.saturating_add(1)
        } else {
            slot.saturating_sub(1)
        };
        true
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
                nans: self.nans,
                pos_inf: self.pos_inf,
                neg_inf: self.neg_inf,
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
        let c = if self.nans > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            f64::NAN
        } else if self.pos_inf > 0 {
            f64::INFINITY
        } else if self.neg_inf > 0 {
            f64::NEG_INFINITY
        } else {
            self.c
        };
        Bson::Double(c / over)
    }
}

/// The running state of a function whose window slides: positions enter at the end and leave
/// at the start.
enum Sliding {
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
    fn new(f: &Func) -> Self {
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
    fn step(
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

    fn value(&self, ys: &[Option<Bson>]) -> Result<Bson> {
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
    let heights = super::add_operands(&[y(a), y(b)])?;
    divide_operands(&multiply_operands(&[width, heights])?, &Bson::Double(2.0))
}

/// Parses one output's function specification: the function and its window.
fn parse_function(
    spec: &Document,
    sort: Option<&Sort>,
    now_ms: i64,
) -> Result<(Func, Expr, Window)> {
    let Some(name) = spec.keys().find(|k| k.starts_with('$')) else {
        return Err(failed(match spec.keys().next() {
            Some(first) => format!("Expected a $-prefixed window function, {first}"),
            None => "Expected a $-prefixed window function".to_owned(),
        }));
    };
    if !WINDOW_FUNCTIONS.contains(&name.as_str()) {
        return Err(failed(format!("Unrecognized window function, {name}")));
    }
    let compile = |v: &Bson| expr::compile(v, now_ms);
    match name.as_str() {
        "$median" | "$percentile" => Err(Error::Unsupported(format!("window function {name}"))),
        "$rank" | "$denseRank" | "$documentNumber" => {
            if spec.len() != 1 {
                return Err(expr::parse_error(
                    5_371_601,
                    "Rank style window functions take no other arguments",
                ));
            }
            if !matches!(spec.get(name), Some(Bson::Document(d)) if d.is_empty()) {
                return Err(expr::parse_error(
                    5_371_603,
                    format!("{name} must be specified with '{{}}' as the value"),
                ));
            }
            if sort.is_none_or(|s| s.keys.len() != 1) {
                return Err(expr::parse_error(
                    5_371_602,
                    format!(
                        "{name} must be specified with a top level sortBy expression with exactly one element"
                    ),
                ));
            }
            let kind = match name.as_str() {
                "$rank" => RankKind::Rank,
                "$denseRank" => RankKind::Dense,
                _ => RankKind::DocumentNumber,
            };
            Ok((Func::Rank(kind), Expr::Absent, WHOLE))
        }
        "$shift" => parse_shift(spec, sort, now_ms),
        "$derivative" | "$integral" => parse_calculus(name, spec, sort, now_ms),
        "$expMovingAvg" => parse_exp_moving_avg(spec, sort, now_ms),
        "$locf" | "$linearFill" => {
            let mut input = None;
            for (k, v) in spec {
                match k.as_str() {
                    "window" => {
                        return Err(failed(format!("'window' field is not allowed in {name}")));
                    }
                    k if k == name => input = Some(compile(v)?),
                    _ => {
                        return Err(failed(format!(
                            "Window function found an unknown argument: {k}"
                        )));
                    }
                }
            }
            let input = input.unwrap_or(Expr::Absent);
            if name == "$locf" {
                return Ok((Func::Locf, input, WHOLE));
            }
            if sort.is_none_or(|s| s.keys.len() != 1) {
                return Err(expr::parse_error(
                    605_001,
                    "$linearFill must be specified with a top level sortBy expression with exactly one element",
                ));
            }
            Ok((Func::LinearFill, input, WHOLE))
        }
        "$first" | "$last" | "$firstN" | "$lastN" | "$minN" | "$maxN" | "$top" | "$bottom"
        | "$topN" | "$bottomN" => {
            let (mut func, mut window) = (None, None);
            for (k, v) in spec {
                match k.as_str() {
                    "window" if window.is_some() => {
                        return Err(failed(format!(
                            "saw multiple 'window' fields in '{name}' expression"
                        )));
                    }
                    "window" => window = Some(parse_window(v, sort, now_ms)?),
                    k if k == name && func.is_some() => {
                        return Err(failed(format!(
                            "saw multiple specifications for '{name}' expression"
                        )));
                    }
                    "$first" | "$last" if k == name => {
                        func = Some((Func::FirstLast(name == "$last"), compile(v)?));
                    }
                    k if k == name => {
                        func = NAccumulator::parse(name, v, now_ms)?
                            .map(|(acc, input)| (Func::N(acc), input));
                    }
                    _ => {
                        return Err(failed(format!("{name} got unexpected argument: {k}")));
                    }
                }
            }
            let (func, input) =
                func.ok_or_else(|| failed(format!("Unrecognized window function, {name}")))?;
            Ok((func, input, window.unwrap_or(WHOLE)))
        }
        _ => {
            // $sum $avg $min $max $push $addToSet $stdDevPop $stdDevSamp $covariancePop
            // $covarianceSamp $count.
            let (mut func, mut window) = (None, None);
            for (k, v) in spec {
                if k == "window" {
                    window = Some(parse_window(v, sort, now_ms)?);
                    continue;
                }
                if !WINDOW_FUNCTIONS.contains(&k.as_str()) {
                    return Err(failed(format!(
                        "Window function found an unknown argument: {k}"
                    )));
                }
                if func.is_some() {
                    return Err(failed(
                        "Cannot specify two functions in window function spec",
                    ));
                }
                func = Some(match k.as_str() {
                    "$count" => {
                        if !matches!(v, Bson::Document(d) if d.is_empty()) {
                            return Err(failed("$count only accepts an empty object as input"));
                        }
                        (Func::Sum, Expr::Const(Bson::Int32(1)))
                    }
                    "$sum" => (Func::Sum, compile(v)?),
                    "$avg" => (Func::Avg, compile(v)?),
                    "$min" => (Func::MinMax(false), compile(v)?),
                    "$max" => (Func::MinMax(true), compile(v)?),
                    "$push" => (Func::Push, compile(v)?),
                    "$addToSet" => (Func::AddToSet, compile(v)?),
                    "$stdDevPop" => (Func::StdDev(false), compile(v)?),
                    "$stdDevSamp" => (Func::StdDev(true), compile(v)?),
                    "$covariancePop" => (Func::Covariance(false), compile(v)?),
                    "$covarianceSamp" => (Func::Covariance(true), compile(v)?),
                    other => {
                        return Err(failed(format!(
                            "Window function found an unknown argument: {other}"
                        )));
                    }
                });
            }
            let (func, input) =
                func.ok_or_else(|| failed(format!("Unrecognized window function, {name}")))?;
            Ok((func, input, window.unwrap_or(WHOLE)))
        }
    }
}

/// `{$shift: {output, by, default}}`: the output of the document `by` positions away in the
/// partition, or the constant default (null) where there is none or its output is missing.
fn parse_shift(spec: &Document, sort: Option<&Sort>, now_ms: i64) -> Result<(Func, Expr, Window)> {
    let mut func = None;
    for (k, v) in spec {
        match k.as_str() {
            "window" => return Err(failed("$shift does not accept a 'window' field")),
            "$shift" if func.is_some() => {
                return Err(failed(
                    "Cannot specify multiple functions in window function spec",
                ));
            }
            "$shift" => {
                let Bson::Document(args) = v else {
                    return Err(failed("Argument to $shift must be an object"));
                };
                let (mut output, mut by, mut default) = (None, None, None);
                for (a, x) in args {
                    match a.as_str() {
                        "output" => output = Some(expr::compile(x, now_ms)?),
                        "by" => {
                            let int =
                                document::as_f64(x)
                                    .filter(|_| expr::numeric(x))
                                    .filter(|d| {
                                        d.fract() == 0.0
                                            && (f64::from(i32::MIN)..=f64::from(i32::MAX))
                                                .contains(d)
                                    });
                            let Some(d) = int else {
                                return Err(failed(format!(
                                    "'$shift:by' field must be an integer, but found  {}",
                                    element("by", x)
                                )));
                            };
                            #[expect(
                                clippy::cast_possible_truncation,
                                reason = "checked above: an integral value within i32"
                            )]
                            let n = d as i64;
                            by = Some(n);
                        }
                        "default" => match expr::compile(x, now_ms)?.fold()? {
                            Expr::Const(c) => default = Some(c),
                            _ => {
                                return Err(failed(
                                    "'$shift:default' expression must yield a constant value.",
                                ));
                            }
                        },
                        _ => return Err(failed("Unknown argument in $shift")),
                    }
                }
                let output =
                    output.ok_or_else(|| failed("$shift requires an 'output' expression."))?;
                let by = by.ok_or_else(|| failed("$shift requires 'by' as an integer value."))?;
                func = Some((
                    Func::Shift {
                        by,
                        default: default.unwrap_or(Bson::Null),
                    },
                    output,
                ));
            }
            other if WINDOW_FUNCTIONS.contains(&other) => {
                return Err(failed(
                    "Cannot specify multiple functions in window function spec",
                ));
            }
            other => {
                return Err(failed(format!(
                    "Window function found an unknown argument: {other}"
                )));
            }
        }
    }
    if sort.is_none() {
        return Err(failed("'$shift' requires a sortBy"));
    }
    let (func, output) = func.ok_or_else(|| failed("Unrecognized window function, $shift"))?;
    Ok((func, output, WHOLE))
}

/// `{$derivative | $integral: {input, unit}, window}`; both need a single, plain sortBy field,
/// `$derivative` explicit bounds.
fn parse_calculus(
    name: &str,
    spec: &Document,
    sort: Option<&Sort>,
    now_ms: i64,
) -> Result<(Func, Expr, Window)> {
    match sort.map(|s| s.keys.len()) {
        None => return Err(failed(format!("{name} requires a sortBy"))),
        Some(1) => {}
        Some(_) => return Err(failed(format!("{name} requires a non-compound sortBy"))),
    }
    let derivative = name == "$derivative";
    let (mut input, mut unit, mut window, mut seen) = (None, None, None, false);
    for (k, v) in spec {
        match k.as_str() {
            "window" if window.is_some() && !derivative => {
                return Err(failed(format!(
                    "There can be only one 'window' field for {name}"
                )));
            }
            "window" => window = Some(parse_window(v, sort, now_ms)?),
            k if k == name => {
                let Bson::Document(args) = v else {
                    return Err(failed(format!(
                        "{name} expects an object, but got a {}: {}",
                        query::type_name(Some(v)),
                        element(name, v)
                    )));
                };
                seen = true;
                for (a, x) in args {
                    match a.as_str() {
                        "input" => input = Some(expr::compile(x, now_ms)?),
                        "unit" if unit.is_some() && !derivative => {
                            return Err(failed(format!(
                                "There can be only one 'unit' field for {name}"
                            )));
                        }
                        "unit" => unit = Some(parse_unit_ms(x)?),
                        _ => return Err(failed(format!("{name} got unexpected argument: {a}"))),
                    }
                }
            }
            _ => return Err(failed(format!("{name} got unexpected argument: {k}"))),
        }
    }
    let input = match input {
        Some(i) if seen => i,
        _ => return Err(failed(format!("{name} requires an 'input' expression"))),
    };
    if derivative {
        let Some(window) = window else {
            return Err(failed("$derivative requires explicit window bounds"));
        };
        return Ok((Func::Derivative(unit), input, window));
    }
    Ok((Func::Integral(unit), input, window.unwrap_or(WHOLE)))
}

/// A `$derivative`/`$integral` unit as its length in milliseconds: week or shorter.
fn parse_unit_ms(v: &Bson) -> Result<i64> {
    let Bson::String(s) = v else {
        return Err(failed(format!(
            "unit' must be a string, but got {}",
            query::type_name(Some(v))
        )));
    };
    let unit =
        date_arith::unit_named(s).ok_or_else(|| failed(format!("unknown time unit value: {s}")))?;
    unit.millis()
        .ok_or_else(|| expr::parse_error(5_490_710, "unit must be 'week' or smaller"))
}

/// `{$expMovingAvg: {input, N | alpha}}`: alpha is `2 / (N + 1)`, computed in decimal.
fn parse_exp_moving_avg(
    spec: &Document,
    sort: Option<&Sort>,
    now_ms: i64,
) -> Result<(Func, Expr, Window)> {
    let two_fields = "$expMovingAvg sub object must have exactly two fields: An 'input' field, and either an 'N' field or an 'alpha' field";
    let args = match spec.get("$expMovingAvg") {
        Some(Bson::Document(args)) if spec.len() == 1 => args,
        _ => {
            return Err(failed(
                "$expMovingAvg must have exactly one argument that is an object",
            ));
        }
    };
    if args.len() != 2 || !args.contains_key("input") {
        return Err(failed(two_fields));
    }
    if sort.is_none() {
        return Err(failed("$expMovingAvg requires an explicit 'sortBy'"));
    }
    let mut input = Expr::Absent;
    let mut alpha = None;
    for (k, v) in args {
        match k.as_str() {
            "input" => input = expr::compile(v, now_ms)?,
            "N" => {
                if !expr::numeric(v) {
                    return Err(failed(format!(
                        "'N' field must be an integer, but found type {}",
                        query::type_name(Some(v))
                    )));
                }
                let d = document::as_f64(v).unwrap_or(f64::NAN);
                if d.fract() != 0.0 || !(-super::TWO_POW_63..super::TWO_POW_63).contains(&d) {
                    return Err(failed(format!(
                        "'N' field must be an integer, but found  {}. To use a non-integer, use the 'alpha' argument instead",
                        element("N", v)
                    )));
                }
                let n = super::coerce_to_long(v);
                if n <= 0 {
                    return Err(failed(format!("'N' must be greater than zero. Got {n}")));
                }
                alpha = decimal::to_decimal(&Bson::Int32(2)).and_then(|two| {
                    decimal::divide_values(&two, &Bson::Int64(n.saturating_add(1)))
                });
            }
            "alpha" => {
                if !expr::numeric(v) {
                    return Err(failed("'alpha' must be a number"));
                }
                let a = document::as_f64(v).unwrap_or(f64::NAN);
                if !(a > 0.0 && a < 1.0) {
                    return Err(failed(format!(
                        "'alpha' must be between 0 and 1 (exclusive), found {}",
                        element("alpha", v)
                    )));
                }
                alpha = decimal::to_decimal(v);
            }
            _ => {
                return Err(failed(format!(
                    "Got unrecognized field in $expMovingAvg{two_fields}"
                )));
            }
        }
    }
    let alpha = alpha.ok_or_else(|| failed(two_fields))?;
    Ok((Func::ExpMovingAvg(alpha), input, WHOLE))
}

/// Parses `window: {documents: [l, u]}` or `window: {range: [l, u], unit}` as MongoDB's
/// `WindowBounds::parse`, in its order of checks, then what the bounds need of `sortBy`.
fn parse_window(v: &Bson, sort: Option<&Sort>, now_ms: i64) -> Result<Window> {
    let Bson::Document(spec) = v else {
        return Err(failed("'window' field must be an object"));
    };
    let (documents, range, unit) = (spec.get("documents"), spec.get("range"), spec.get("unit"));
    if documents.is_some() && range.is_some() {
        return Err(failed(
            "Window bounds can specify either 'documents' or 'unit', not both.",
        ));
    }
    if range.is_none() && unit.is_some() {
        return Err(failed(
            "Window bounds can only specify 'unit' with range-based bounds.",
        ));
    }
    let pair = |field: &str, v: &Bson| -> Result<[Bson; 2]> {
        match v {
            Bson::Array(a) if a.len() == 2 => Ok([a[0].clone(), a[1].clone()]),
            _ => Err(failed(format!(
                "Window bounds must be a 2-element array: {}",
                element(field, v)
            ))),
        }
    };
    // A bound: "unbounded", "current", or a constant expression checked by `number`.
    let bound = |b: &Bson, number: &dyn Fn(&Bson) -> Result<Bson>| -> Result<Option<Bson>> {
        match b {
            Bson::String(s) if s == "unbounded" => Ok(None),
            Bson::String(s) if s == "current" => Ok(Some(Bson::String(s.clone()))),
            Bson::String(_) => Err(failed(
                "Window bounds must be 'unbounded', 'current', or a number.",
            )),
            other => match expr::compile(other, now_ms)?.fold()? {
                Expr::Const(c) => number(&c).map(Some),
                _ => Err(failed("Window bounds expression must be a constant.")),
            },
        }
    };
    let integral = |c: &Bson, message: &str| -> Result<Bson> {
        let d = document::as_f64(c).filter(|_| expr::numeric(c));
        match d {
            Some(d)
                if d.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&d) =>
            {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "checked above: an integral value within i32"
                )]
                let n = d as i64;
                Ok(Bson::Int64(n))
            }
            _ => Err(failed(message)),
        }
    };
    let window = if let Some(docs) = documents {
        if spec.len() != 1 {
            return Err(failed(
                "'window' field that specifies documents cannot have other fields",
            ));
        }
        let [l, u] = pair("documents", docs)?;
        let number = |c: &Bson| integral(c, "Numeric document-based bounds must be an integer");
        let as_doc = |b: Option<Bson>| match b {
            None => DocBound::Unbounded,
            Some(Bson::String(_)) => DocBound::Current,
            Some(n) => DocBound::Offset(n.as_i64().unwrap_or(0)),
        };
        Window::Documents(as_doc(bound(&l, &number)?), as_doc(bound(&u, &number)?))
    } else if let Some(r) = range {
        let [l, u] = pair("range", r)?;
        let unit = match unit {
            Some(u) => {
                if spec.len() != 2 {
                    return Err(failed(
                        "'window' field that specifies unit cannot have other fields besides 'range'",
                    ));
                }
                let Bson::String(s) = u else {
                    return Err(failed("'unit' must be a string"));
                };
                Some(
                    date_arith::unit_named(s)
                        .ok_or_else(|| failed(format!("unknown time unit value: {s}")))?,
                )
            }
            None => {
                if spec.len() != 1 {
                    return Err(failed(
                        "'window' field that specifies range cannot have other fields besides 'unit'",
                    ));
                }
                None
            }
        };
        let number = |c: &Bson| -> Result<Bson> {
            if unit.is_some() {
                integral(c, "With 'unit', range-based bounds must be an integer")
            } else if expr::numeric(c) {
                Ok(c.clone())
            } else {
                Err(failed("Range-based bounds expression must be a number"))
            }
        };
        let as_range = |b: Option<Bson>| match b {
            None => RangeBound::Unbounded,
            Some(Bson::String(_)) => RangeBound::Current,
            Some(n) => RangeBound::Delta(Box::new(n)),
        };
        Window::Range(
            as_range(bound(&l, &number)?),
            as_range(bound(&u, &number)?),
            unit,
        )
    } else if spec.is_empty() {
        WHOLE
    } else {
        return Err(failed(
            "'window' field can only contain 'documents' as the only argument or 'range' with an optional 'unit' field",
        ));
    };
    check_order(&window)?;
    match &window {
        Window::Documents(DocBound::Unbounded, DocBound::Unbounded) => {}
        Window::Documents(..) if sort.is_none() => {
            return Err(expr::parse_error(
                5_339_901,
                "Document-based bounds require a sortBy",
            ));
        }
        Window::Range(..) => match sort.map(|s| s.keys.as_slice()) {
            Some([(_, _, true)]) => {}
            Some([(_, _, false)]) => {
                return Err(expr::parse_error(
                    8_947_401,
                    "Range-based bounds require an ascending sortBy",
                ));
            }
            _ => {
                return Err(expr::parse_error(
                    5_339_902,
                    "Range-based bounds require sortBy a single field",
                ));
            }
        },
        Window::Documents(..) => {}
    }
    Ok(window)
}

/// 5339900 when both bounds are numbers (`current` counting as 0) and the lower one exceeds
/// the upper one.
fn check_order(window: &Window) -> Result<()> {
    let (lo, hi) = match window {
        Window::Documents(l, u) => {
            let n = |b: &DocBound| match b {
                DocBound::Unbounded => None,
                DocBound::Current => Some(Bson::Int32(0)),
                DocBound::Offset(k) => Some(Bson::Int64(*k)),
            };
            (n(l), n(u))
        }
        Window::Range(l, u, _) => {
            let n = |b: &RangeBound| match b {
                RangeBound::Unbounded => None,
                RangeBound::Current => Some(Bson::Int32(0)),
                RangeBound::Delta(d) => Some((**d).clone()),
            };
            (n(l), n(u))
        }
    };
    if let (Some(lo), Some(hi)) = (lo, hi)
        && compare(&lo, &hi).is_gt()
    {
        return Err(expr::parse_error(
            5_339_900,
            format!(
                "Lower bound must not exceed upper bound: [{}, {}]",
                render_value(&lo),
                render_value(&hi)
            ),
        ));
    }
    Ok(())
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
