//! `$zip` (`{inputs, useLongestLength, defaults}`), as MongoDB 7.0's `ExpressionZip`: the
//! `n`-th output array holds the `n`-th element of every input array. The output is as long as
//! the shortest input, or with `useLongestLength` the longest, a shorter input then giving its
//! `defaults` entry (null without `defaults`). The inputs are evaluated in order and the first
//! null or missing one gives null (later ones are not evaluated); the defaults are evaluated
//! only when the inputs differ in length. Spec errors 34460–34467 when the pipeline is built,
//! a non-array input 34468. MongoDB does not fold `$zip` over constant operands, nor does this
//! store.

use bson::Bson;

use super::super::error::Result;
use super::expr::{Expr, Lazy, Scope, eval_error, nullish, parse_error, type_of};
use super::text::render;
use super::{built_size, check_value_size};

/// Compiles `$zip`'s specification: the inputs, then the defaults, as the operands of
/// [`Lazy::Zip`].
pub(crate) fn compile(arg: &Bson, mut compile: impl FnMut(&Bson) -> Result<Expr>) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            34460,
            format!(
                "$zip only supports an object as an argument, found {}",
                type_of(Some(arg))
            ),
        ));
    };
    let mut inputs = Vec::new();
    let mut defaults = Vec::new();
    let mut longest = false;
    for (k, v) in spec {
        match k.as_str() {
            "inputs" | "defaults" => {
                let Bson::Array(items) = v else {
                    return Err(parse_error(
                        if k == "inputs" { 34461 } else { 34462 },
                        format!(
                            "{k} must be an array of expressions, found {}",
                            type_of(Some(v))
                        ),
                    ));
                };
                let into = if k == "inputs" {
                    &mut inputs
                } else {
                    &mut defaults
                };
                for item in items {
                    into.push(compile(item)?);
                }
            }
            "useLongestLength" => {
                let Bson::Boolean(b) = v else {
                    // MongoDB names the type of the whole specification here.
                    return Err(parse_error(
                        34463,
                        "useLongestLength must be a bool, found object",
                    ));
                };
                longest = *b;
            }
            other => {
                return Err(parse_error(
                    34464,
                    format!("$zip found an unknown argument: {other}"),
                ));
            }
        }
    }
    if inputs.is_empty() {
        return Err(parse_error(34465, "$zip requires at least one input array"));
    }
    if !longest && !defaults.is_empty() {
        return Err(parse_error(
            34466,
            "cannot specify defaults unless useLongestLength is true",
        ));
    }
    if !defaults.is_empty() && defaults.len() != inputs.len() {
        return Err(parse_error(
            34467,
            "defaults and inputs must have the same length",
        ));
    }
    let n = inputs.len();
    inputs.extend(defaults);
    Ok(Expr::Lazy(Lazy::Zip { inputs: n, longest }, inputs))
}

/// Evaluates `$zip` over its `inputs` input expressions followed by the defaults.
///
/// # Errors
/// 34468 for an input that is not an array; [`super::super::Error::ObjectTooLarge`] for a
/// result past the stage document limit.
pub(crate) fn eval(
    inputs: usize,
    longest: bool,
    args: &[Expr],
    cx: &mut Scope<'_>,
) -> Result<Option<Bson>> {
    let (input_exprs, default_exprs) = args.split_at(inputs.min(args.len()));
    let mut arrays = Vec::with_capacity(input_exprs.len());
    for e in input_exprs {
        match e.eval(cx)? {
            Some(Bson::Array(items)) => arrays.push(items),
            v if nullish(v.as_ref()) => return Ok(Some(Bson::Null)),
            v => {
                return Err(eval_error(
                    34468,
                    format!(
                        "$zip found a non-array expression in input: {}",
                        render(v.as_ref())
                    ),
                ));
            }
        }
    }
    let shortest = arrays.iter().map(Vec::len).min().unwrap_or(0);
    let longest_len = arrays.iter().map(Vec::len).max().unwrap_or(0);
    let mut defaults = vec![Bson::Null; arrays.len()];
    if shortest != longest_len {
        for (slot, e) in defaults.iter_mut().zip(default_exprs) {
            *slot = e.eval(cx)?.unwrap_or(Bson::Null);
        }
    }
    let rows = if longest { longest_len } else { shortest };
    let mut out = Vec::with_capacity(rows);
    let mut size = 5usize;
    for row in 0..rows {
        let mut tuple = Vec::with_capacity(arrays.len());
        for (col, items) in arrays.iter().enumerate() {
            let v = items
                .get(row)
                .or_else(|| defaults.get(col))
                .cloned()
                .unwrap_or(Bson::Null);
            // Each element sits in a tuple inside the result: two levels down.
            size = size.saturating_add(8 + built_size(&v, 2)?);
            check_value_size(size)?;
            tuple.push(v);
        }
        // Each tuple's own framing: its length, terminator, type byte and index name.
        size = size.saturating_add(16);
        check_value_size(size)?;
        out.push(Bson::Array(tuple));
    }
    Ok(Some(Bson::Array(out)))
}
