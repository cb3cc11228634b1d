//! `$replaceOne` and `$replaceAll` (`{input, find, replacement}`), as MongoDB 7.0's
//! `ExpressionReplaceBase`: every operand is a string or null/missing (51746, 51745, 51744 name
//! the first that is not, with its value), any null or missing one gives null. `$replaceOne`
//! replaces the first occurrence of `find`, `$replaceAll` every one, left to right without
//! overlap. MongoDB does not fold these operators when their operands are constants, so
//! neither does this store: their errors surface when a document is read.
//!
//! An empty `find` matches before every character and at the end (`$replaceAll` of `""` in
//! `"ab"` by `"-"` is `"-a-b-"`). MongoDB counts those positions in bytes, so it splits a
//! multi-byte UTF-8 character; this store counts them in characters.

use bson::Bson;

use super::super::error::Result;
use super::check_value_size;
use super::expr::{Expr, eval_error, named_operands, nullish, parse_error, type_of};
use super::text::render;

/// Compiles `{input, find, replacement}` for `$replaceOne` (`all` false) or `$replaceAll`
/// (51751, 51750, 51749, 51748, 51747).
pub(crate) fn compile(
    all: bool,
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let name = op_name(all);
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            51751,
            format!(
                "{name} requires an object as an argument, found: {}",
                type_of(Some(arg))
            ),
        ));
    };
    let got = named_operands(spec, &["input", "find", "replacement"], |k| {
        parse_error(51750, format!("{name} found an unknown argument: {k}"))
    })?;
    let mut args = Vec::with_capacity(3);
    for ((what, code), v) in [("input", 51749), ("find", 51748), ("replacement", 51747)]
        .into_iter()
        .zip(got)
    {
        let Some(v) = v else {
            return Err(parse_error(
                code,
                format!("{name} requires '{what}' to be specified"),
            ));
        };
        args.push(compile(v)?);
    }
    Ok(Expr::Op(super::expr::Op::Replace(all), args))
}

fn op_name(all: bool) -> &'static str {
    if all { "$replaceAll" } else { "$replaceOne" }
}

/// Evaluates `[input, find, replacement]`.
///
/// # Errors
/// 51746/51745/51744 for an operand that is no string; [`super::super::Error::ObjectTooLarge`]
/// for a result past the stage document limit.
pub(crate) fn apply(all: bool, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let name = op_name(all);
    let mut strings = Vec::with_capacity(3);
    for (i, (what, code)) in [("input", 51746), ("find", 51745), ("replacement", 51744)]
        .into_iter()
        .enumerate()
    {
        let v = vals.get(i).and_then(Option::as_ref);
        match v {
            Some(Bson::String(s)) => strings.push(Some(s.as_str())),
            v if nullish(v) => strings.push(None),
            _ => {
                return Err(eval_error(
                    code,
                    format!(
                        "{name} requires that '{what}' be a string, found: {}",
                        render(v)
                    ),
                ));
            }
        }
    }
    let [Some(input), Some(find), Some(replacement)] = strings.as_slice() else {
        return Ok(Some(Bson::Null));
    };
    let count = if !all {
        usize::from(input.contains(find))
    } else if find.is_empty() {
        input.chars().count() + 1
    } else {
        input.matches(find).count()
    };
    // The result's length, checked before it is built.
    let len = input
        .len()
        .saturating_sub(count.saturating_mul(find.len()))
        .saturating_add(count.saturating_mul(replacement.len()));
    check_value_size(len)?;
    Ok(Some(Bson::String(if all {
        input.replace(find, replacement)
    } else {
        input.replacen(find, replacement, 1)
    })))
}
