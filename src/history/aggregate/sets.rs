//! Array-as-set expression operators, as MongoDB 7.0's `expression.cpp` evaluates them:
//! `$setUnion` and `$setIntersection` (their result in MongoDB's value order, one of each
//! equal value), `$setDifference` (the first array's order), `$setEquals`, `$setIsSubset`,
//! `$anyElementTrue`, `$allElementsTrue`; and `$sortArray`. Equality is MongoDB's (`1`, `1.0`
//! and `NumberLong(1)` are one value); the first of equal values is the one kept.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::super::document::compare;
use super::super::error::Result;
use super::super::query::Sort;
use super::expr::{Expr, eval_error, named_operands, nullish, parse_error, truthy, type_of};

/// A set operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Union,
    Intersection,
    Difference,
    Equals,
    IsSubset,
    AnyElementTrue,
    AllElementsTrue,
    /// `[input, sortBy]`, `sortBy` a constant checked when compiled.
    SortArray,
}

/// `values` in MongoDB's order, one of each run of equal values (the first given).
fn ordered_set(mut values: Vec<Bson>) -> Vec<Bson> {
    values.sort_by(compare);
    values.dedup_by(|later, kept| compare(later, kept) == Ordering::Equal);
    values
}

/// Whether `set` (sorted and deduplicated) holds a value equal to `v`.
fn contains(set: &[Bson], v: &Bson) -> bool {
    set.binary_search_by(|x| compare(x, v)).is_ok()
}

/// Evaluates a set operator over its evaluated operands.
///
/// # Errors
/// MongoDB's codes for an operand that is not an array: 17040–17049, 2942504.
pub(crate) fn apply(op: SetOp, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let array = |v: Option<&Bson>| match v {
        Some(Bson::Array(a)) => Some(a.clone()),
        _ => None,
    };
    let first = vals.first().and_then(Option::as_ref);
    let second = vals.get(1).and_then(Option::as_ref);
    let out = match op {
        SetOp::Union | SetOp::Intersection => {
            let (code, name) = if op == SetOp::Union {
                (17043, "$setUnion")
            } else {
                (17047, "$setIntersection")
            };
            let mut sets = Vec::with_capacity(vals.len());
            for v in vals {
                if nullish(v.as_ref()) {
                    return Ok(Some(Bson::Null));
                }
                let Some(a) = array(v.as_ref()) else {
                    return Err(eval_error(
                        code,
                        format!(
                            "All operands of {name} must be arrays. One argument is of type: {}",
                            type_of(v.as_ref())
                        ),
                    ));
                };
                sets.push(a);
            }
            let mut sets = sets.into_iter();
            if op == SetOp::Union {
                Bson::Array(ordered_set(sets.flatten().collect()))
            } else {
                let mut kept = ordered_set(sets.next().unwrap_or_default());
                for next in sets {
                    let next = ordered_set(next);
                    kept.retain(|v| contains(&next, v));
                }
                Bson::Array(kept)
            }
        }
        SetOp::Difference => {
            if nullish(first) || nullish(second) {
                return Ok(Some(Bson::Null));
            }
            let (Some(lhs), Some(rhs)) = (array(first), array(second)) else {
                let (which, v, code) = if array(first).is_none() {
                    ("First", first, 17048)
                } else {
                    ("Second", second, 17049)
                };
                return Err(eval_error(
                    code,
                    format!(
                        "both operands of $setDifference must be arrays. {which} argument is of type: {}",
                        type_of(v)
                    ),
                ));
            };
            // Each value of the first array not in the second, once, in the first's order.
            let mut seen = ordered_set(rhs);
            let mut out = Vec::new();
            for v in lhs {
                if let Err(at) = seen.binary_search_by(|x| compare(x, &v)) {
                    seen.insert(at, v.clone());
                    out.push(v);
                }
            }
            Bson::Array(out)
        }
        SetOp::Equals => {
            let mut sets = Vec::with_capacity(vals.len());
            for (i, v) in vals.iter().enumerate() {
                let Some(a) = array(v.as_ref()) else {
                    return Err(eval_error(
                        17044,
                        format!(
                            "All operands of $setEquals must be arrays. {}-th argument is of type: {}",
                            i + 1,
                            type_of(v.as_ref())
                        ),
                    ));
                };
                sets.push(ordered_set(a));
            }
            let equal = sets.windows(2).all(|w| match w {
                [a, b] => {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|(x, y)| compare(x, y) == Ordering::Equal)
                }
                _ => true,
            });
            Bson::Boolean(equal)
        }
        SetOp::IsSubset => {
            let Some(lhs) = array(first) else {
                return Err(eval_error(
                    17046,
                    format!(
                        "both operands of $setIsSubset must be arrays. First argument is of type: {}",
                        type_of(first)
                    ),
                ));
            };
            let Some(rhs) = array(second) else {
                return Err(eval_error(
                    17042,
                    format!(
                        "both operands of $setIsSubset must be arrays. Second argument is of type: {}",
                        type_of(second)
                    ),
                ));
            };
            let rhs = ordered_set(rhs);
            Bson::Boolean(lhs.iter().all(|v| contains(&rhs, v)))
        }
        SetOp::AnyElementTrue | SetOp::AllElementsTrue => {
            let (code, name) = if op == SetOp::AnyElementTrue {
                (17041, "$anyElementTrue")
            } else {
                (17040, "$allElementsTrue")
            };
            let Some(items) = array(first) else {
                return Err(eval_error(
                    code,
                    format!(
                        "{name}'s argument must be an array, but is {}",
                        type_of(first)
                    ),
                ));
            };
            let mut truths = items.iter().map(|v| truthy(Some(v)));
            Bson::Boolean(if op == SetOp::AnyElementTrue {
                truths.any(|t| t)
            } else {
                truths.all(|t| t)
            })
        }
        SetOp::SortArray => return sort_array(first, second),
    };
    Ok(Some(out))
}

/// How `$sortArray` orders: whole values, or documents by a sort pattern.
enum SortBy {
    Values(bool),
    Pattern(Sort),
}

/// Parses `$sortArray`'s `sortBy`: 1 or -1 (whole values), or a sort pattern.
fn sort_by(v: &Bson) -> Result<SortBy> {
    match v {
        Bson::Document(spec) if !spec.is_empty() => Ok(SortBy::Pattern(Sort::parse(spec)?)),
        Bson::Int32(1) | Bson::Int64(1) => Ok(SortBy::Values(true)),
        Bson::Int32(-1) | Bson::Int64(-1) => Ok(SortBy::Values(false)),
        Bson::Double(d) if *d == 1.0 || *d == -1.0 => Ok(SortBy::Values(*d > 0.0)),
        _ => Err(parse_error(
            2_942_506,
            "The $sort element value must be either 1 or -1",
        )),
    }
}

/// Compiles `$sortArray`'s `{input, sortBy}` into `[input, sortBy]`, `sortBy` checked now.
///
/// # Errors
/// MongoDB's 2942500–2942503 and 2942506.
pub(crate) fn compile_sort_array(
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            2_942_500,
            format!(
                "$sortArray requires an object as an argument, found: {}",
                type_of(Some(arg))
            ),
        ));
    };
    let got = named_operands(spec, &["input", "sortBy"], |k| {
        parse_error(
            2_942_501,
            format!("$sortArray found an unknown argument: {k}"),
        )
    })?;
    let Some(input) = got.first().copied().flatten() else {
        return Err(parse_error(
            2_942_502,
            "$sortArray requires 'input' to be specified",
        ));
    };
    let Some(by) = got.get(1).copied().flatten() else {
        return Err(parse_error(
            2_942_503,
            "$sortArray requires 'sortBy' to be specified",
        ));
    };
    sort_by(by)?;
    Ok(Expr::Op(
        super::expr::Op::Set(SetOp::SortArray),
        vec![compile(input)?, Expr::Const(by.clone())],
    ))
}

/// `$sortArray`: the input array sorted (stably); null or missing input gives null.
fn sort_array(input: Option<&Bson>, by: Option<&Bson>) -> Result<Option<Bson>> {
    if nullish(input) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(items)) = input else {
        return Err(eval_error(
            2_942_504,
            format!(
                "The input argument to $sortArray must be an array, but was of type: {}",
                type_of(input)
            ),
        ));
    };
    let mut items = items.clone();
    match sort_by(by.unwrap_or(&Bson::Null))? {
        SortBy::Values(asc) => items.sort_by(|a, b| {
            let o = compare(a, b);
            if asc { o } else { o.reverse() }
        }),
        SortBy::Pattern(sort) => {
            // A value that is not a document sorts as one without the pattern's fields.
            let mut keyed: Vec<(Document, Bson)> = items
                .into_iter()
                .map(|v| match &v {
                    Bson::Document(d) => (d.clone(), v),
                    _ => (Document::new(), v),
                })
                .collect();
            keyed.sort_by(|a, b| sort.compare(&a.0, &b.0));
            items = keyed.into_iter().map(|(_, v)| v).collect();
        }
    }
    Ok(Some(Bson::Array(items)))
}
