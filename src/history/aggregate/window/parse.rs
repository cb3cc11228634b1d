//! Parsing of `$setWindowFields`' window functions and bounds, as MongoDB 7.0's
//! `window_function_expression.cpp` and `window_bounds.cpp`, in their order of checks.

use bson::{Bson, Document};

use super::super::super::decimal;
use super::super::super::document::{self, compare, render_value};
use super::super::super::error::Result;
use super::super::super::query::{self, Sort};
use super::super::accumulate::NAccumulator;
use super::super::date_arith;
use super::super::{Expr, expr, percentile};
use super::{
    DocBound, Func, RangeBound, RankKind, WHOLE, WINDOW_FUNCTIONS, Window, element, failed,
};

/// Parses one output's function specification: the function and its window.
pub(super) fn parse_function(
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
        | "$topN" | "$bottomN" | "$median" | "$percentile" => {
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
                    "$median" | "$percentile" if k == name => {
                        let spec = percentile::parse(name, v, percentile::Form::Accumulator)?;
                        let input = compile(spec.input)?;
                        let ps = spec.percentiles(compile)?;
                        func = Some((Func::Quantile(ps, spec.median), input));
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
                if d.fract() != 0.0
                    || !(-super::super::TWO_POW_63..super::super::TWO_POW_63).contains(&d)
                {
                    return Err(failed(format!(
                        "'N' field must be an integer, but found  {}. To use a non-integer, use the 'alpha' argument instead",
                        element("N", v)
                    )));
                }
                let n = super::super::coerce_to_long(v);
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
