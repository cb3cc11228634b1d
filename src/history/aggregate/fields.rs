//! `$setField` (`{field, input, value}`) and `$unsetField` (`{field, input}`, `$setField` with
//! `value: "$$REMOVE"`), as MongoDB 7.0's `ExpressionSetField`. `field` is a constant string —
//! taken as the whole field name, dots and dollars included — checked when the pipeline is
//! built: a field path is 4161108, another non-constant 4161106, a constant of another type
//! 4161107. A null or missing `input` gives null (`value` is then not evaluated), another
//! non-object 4161105; a missing `value` removes the field, another replaces it in place or
//! appends it. MongoDB does not fold these operators over constant operands, nor does this
//! store.

use bson::{Bson, Document};

use super::super::document;
use super::super::error::Result;
use super::expr::{Expr, Lazy, Scope, eval_error, named_operands, nullish, parse_error, type_of};
use super::{built_size, check_value_size};

/// Compiles `$setField` (`unset` false) or `$unsetField` into [`Lazy::SetField`] over
/// `[field, input, value]` (`value` [`Expr::Remove`] for `$unsetField`).
pub(crate) fn compile(
    unset: bool,
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let name = if unset { "$unsetField" } else { "$setField" };
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            4_161_100,
            format!("{name} only supports an object as its argument"),
        ));
    };
    let known: &[&str] = if unset {
        &["field", "input"]
    } else {
        &["field", "input", "value"]
    };
    let got = named_operands(spec, known, |k| {
        parse_error(4_161_101, format!("{name} found an unknown argument: {k}"))
    })?;
    let mut got = got.into_iter();
    let (field, input, value) = (
        got.next().flatten(),
        got.next().flatten(),
        got.next().flatten(),
    );
    let Some(field) = field else {
        return Err(parse_error(
            4_161_102,
            format!("{name} requires 'field' to be specified"),
        ));
    };
    if !unset && value.is_none() {
        return Err(parse_error(
            4_161_103,
            "$setField requires 'value' to be specified",
        ));
    }
    let Some(input) = input else {
        return Err(parse_error(
            4_161_109,
            format!("{name} requires 'input' to be specified"),
        ));
    };
    if let Bson::String(path) = field
        && let Some(rest) = path.strip_prefix('$')
    {
        // MongoDB names the path as its `FieldPath` holds it: `$a` is `$CURRENT.a`.
        let full = match rest.strip_prefix('$') {
            Some(var) => format!("${var}"),
            None => format!("$CURRENT.{rest}"),
        };
        return Err(parse_error(
            4_161_108,
            format!(
                "'{full}' is a field path reference which is not allowed in this context. Did you mean {{$literal: '{full}'}}?"
            ),
        ));
    }
    let field = compile(field)?;
    let Some(constant) = field.as_const() else {
        return Err(parse_error(
            4_161_106,
            format!(
                "{name} requires 'field' to evaluate to a constant, but got a non-constant argument"
            ),
        ));
    };
    if !matches!(constant, Bson::String(_)) {
        return Err(parse_error(
            4_161_107,
            format!(
                "{name} requires 'field' to evaluate to type String, but got {}",
                type_of(Some(constant))
            ),
        ));
    }
    let input = compile(input)?;
    let value = match value {
        Some(v) => compile(v)?,
        None => Expr::Remove,
    };
    Ok(Expr::Lazy(Lazy::SetField, vec![field, input, value]))
}

/// Evaluates `[field, input, value]`.
///
/// # Errors
/// 4161105 for an input that is not an object; [`super::super::Error::ObjectTooLarge`] for a
/// result past the stage document limit.
pub(crate) fn eval(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let arg = |i: usize| args.get(i).unwrap_or(&super::expr::ABSENT);
    let input = match arg(1).eval(cx)? {
        Some(Bson::Document(d)) => d,
        v if nullish(v.as_ref()) => return Ok(Some(Bson::Null)),
        _ => {
            return Err(eval_error(
                4_161_105,
                "$setField requires 'input' to evaluate to type Object",
            ));
        }
    };
    let Some(Bson::String(field)) = arg(0).as_const() else {
        return Ok(Some(Bson::Null));
    };
    let value = arg(2).eval(cx)?;
    let mut out: Document = input;
    match value {
        Some(v) => {
            built_size(&v, 1)?;
            // `insert` keeps an existing field's position and appends a new one.
            out.insert(field.clone(), v);
            check_value_size(document::bson_size(&out))?;
        }
        None => {
            out.remove(field);
        }
    }
    Ok(Some(Bson::Document(out)))
}
