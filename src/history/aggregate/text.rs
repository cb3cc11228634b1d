//! String expressions (`$concat`, `$toUpper`, `$substrBytes`, `$split`, `$trim`,
//! `$indexOfBytes`, `$indexOfCP` …), type
//! conversions (`$convert` and its `$toInt`-style shorthands) and the text MongoDB gives a
//! value: `coerceToString` for the string operators (a double as C's `%g`), `$toString`'s
//! shortest round-trip double, and `Value::toString` for error messages.

use bson::oid::ObjectId;
use bson::{Bson, Decimal128};

use super::super::document;
use super::super::error::{Error, Result};
use super::expr::{
    self, Expr, Lazy, Scope, eval_error, int32_of, named_operands, nullish, numeric, parse_error,
    type_of,
};
use super::{check_value_size, date};

/// The string operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Concat,
    ToUpper,
    ToLower,
    SubstrBytes,
    SubstrCP,
    StrLenBytes,
    StrLenCP,
    Split,
    Trim,
    LTrim,
    RTrim,
    IndexOfBytes,
    IndexOfCP,
    Strcasecmp,
}

impl TextOp {
    /// The operator called `name`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Some(match name {
            "$concat" => Self::Concat,
            "$toUpper" => Self::ToUpper,
            "$toLower" => Self::ToLower,
            "$substr" | "$substrBytes" => Self::SubstrBytes,
            "$substrCP" => Self::SubstrCP,
            "$strLenBytes" => Self::StrLenBytes,
            "$strLenCP" => Self::StrLenCP,
            "$split" => Self::Split,
            "$trim" => Self::Trim,
            "$ltrim" => Self::LTrim,
            "$rtrim" => Self::RTrim,
            "$indexOfBytes" => Self::IndexOfBytes,
            "$indexOfCP" => Self::IndexOfCP,
            "$strcasecmp" => Self::Strcasecmp,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Concat => "$concat",
            Self::ToUpper => "$toUpper",
            Self::ToLower => "$toLower",
            Self::SubstrBytes => "$substrBytes",
            Self::SubstrCP => "$substrCP",
            Self::StrLenBytes => "$strLenBytes",
            Self::StrLenCP => "$strLenCP",
            Self::Split => "$split",
            Self::Trim => "$trim",
            Self::LTrim => "$ltrim",
            Self::RTrim => "$rtrim",
            Self::IndexOfBytes => "$indexOfBytes",
            Self::IndexOfCP => "$indexOfCP",
            Self::Strcasecmp => "$strcasecmp",
        }
    }
}

/// Compiles a string operator's operands (`op` as written, for the arity message).
pub(crate) fn compile(
    t: TextOp,
    op: &str,
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    if matches!(t, TextOp::Trim | TextOp::LTrim | TextOp::RTrim) {
        let name = t.name();
        let Bson::Document(spec) = arg else {
            return Err(parse_error(
                50696,
                format!(
                    "{name} only supports an object as an argument, found: {}",
                    type_of(Some(arg))
                ),
            ));
        };
        let got = named_operands(spec, &["input", "chars"], |k| {
            parse_error(50694, format!("{name} found an unknown argument: {k}"))
        })?;
        let Some(input) = got.first().copied().flatten() else {
            return Err(parse_error(
                50695,
                format!("{name} requires an 'input' field"),
            ));
        };
        let chars = match got.get(1).copied().flatten() {
            Some(c) => compile(c)?,
            None => Expr::Absent,
        };
        return Ok(Expr::Op(expr::Op::Text(t), vec![compile(input)?, chars]));
    }
    let args: Vec<Expr> = match arg {
        Bson::Array(a) => a.iter().map(&mut compile).collect::<Result<_>>()?,
        other => vec![compile(other)?],
    };
    let n = args.len();
    let exact = |want: usize| {
        if n == want {
            Ok(())
        } else {
            Err(parse_error(
                16020,
                format!(
                    "Expression {} takes exactly {want} arguments. {n} were passed in.",
                    t.name()
                ),
            ))
        }
    };
    match t {
        TextOp::Concat => {}
        TextOp::ToUpper | TextOp::ToLower | TextOp::StrLenBytes | TextOp::StrLenCP => exact(1)?,
        TextOp::Split | TextOp::Strcasecmp => exact(2)?,
        TextOp::SubstrBytes | TextOp::SubstrCP => exact(3)?,
        TextOp::IndexOfBytes | TextOp::IndexOfCP => {
            if !(2..=4).contains(&n) {
                return Err(parse_error(
                    28667,
                    format!(
                        "Expression {op} takes at least 2 arguments, and at most 4, but {n} were passed in."
                    ),
                ));
            }
        }
        TextOp::Trim | TextOp::LTrim | TextOp::RTrim => {}
    }
    Ok(Expr::Op(expr::Op::Text(t), args))
}

fn get(vals: &[Option<Bson>], i: usize) -> Option<&Bson> {
    vals.get(i).and_then(Option::as_ref)
}

fn string(s: String) -> Result<Option<Bson>> {
    Ok(Some(Bson::String(s)))
}

/// Evaluates a string operator over its evaluated operands.
pub(crate) fn apply(t: TextOp, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let name = t.name();
    match t {
        TextOp::Concat => {
            let mut s = String::new();
            for v in vals {
                match v {
                    Some(Bson::String(x)) => {
                        check_value_size(s.len().saturating_add(x.len()))?;
                        s.push_str(x);
                    }
                    v if nullish(v.as_ref()) => return Ok(Some(Bson::Null)),
                    other => {
                        return Err(eval_error(
                            16702,
                            format!(
                                "$concat only supports strings, not {}",
                                type_of(other.as_ref())
                            ),
                        ));
                    }
                }
            }
            string(s)
        }
        TextOp::ToUpper => string(coerce_to_string(get(vals, 0))?.to_ascii_uppercase()),
        TextOp::ToLower => string(coerce_to_string(get(vals, 0))?.to_ascii_lowercase()),
        TextOp::StrLenBytes | TextOp::StrLenCP => {
            let Some(Bson::String(s)) = get(vals, 0) else {
                let code = if t == TextOp::StrLenBytes {
                    34473
                } else {
                    34471
                };
                return Err(eval_error(
                    code,
                    format!(
                        "{name} requires a string argument, found: {}",
                        type_of(get(vals, 0))
                    ),
                ));
            };
            let n = if t == TextOp::StrLenBytes {
                s.len()
            } else {
                s.chars().count()
            };
            Ok(Some(Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))))
        }
        TextOp::SubstrBytes => substr_bytes(vals),
        TextOp::SubstrCP => substr_cp(vals),
        TextOp::Split => {
            let (input, sep) = (get(vals, 0), get(vals, 1));
            if nullish(input) || nullish(sep) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::String(input)) = input else {
                return Err(eval_error(
                    40085,
                    format!(
                        "$split requires an expression that evaluates to a string as a first argument, found: {}",
                        type_of(input)
                    ),
                ));
            };
            let Some(Bson::String(sep)) = sep else {
                return Err(eval_error(
                    40086,
                    format!(
                        "$split requires an expression that evaluates to a string as a second argument, found: {}",
                        type_of(sep)
                    ),
                ));
            };
            if sep.is_empty() {
                return Err(eval_error(40087, "$split requires a non-empty separator"));
            }
            // Each part costs its bytes plus at most 8 bytes of element framing and 7 of name.
            check_value_size(
                input.len().saturating_add(
                    input
                        .matches(sep.as_str())
                        .count()
                        .saturating_add(1)
                        .saturating_mul(16),
                ),
            )?;
            Ok(Some(Bson::Array(
                input
                    .split(sep.as_str())
                    .map(|p| Bson::String(p.to_owned()))
                    .collect(),
            )))
        }
        TextOp::Trim | TextOp::LTrim | TextOp::RTrim => trim(t, vals),
        TextOp::IndexOfBytes => index_of_bytes(vals),
        TextOp::IndexOfCP => index_of_cp(vals),
        TextOp::Strcasecmp => {
            let a = coerce_to_string(get(vals, 0))?.to_ascii_lowercase();
            let b = coerce_to_string(get(vals, 1))?.to_ascii_lowercase();
            Ok(Some(Bson::Int32(match a.cmp(&b) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            })))
        }
    }
}

/// MongoDB's `coerceToString`: null and missing are "", numbers and dates their text, a
/// double as C's `%g`; other types fail with code 16007.
pub(crate) fn coerce_to_string(v: Option<&Bson>) -> Result<String> {
    Ok(match v {
        None | Some(Bson::Null | Bson::Undefined) => String::new(),
        Some(Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s)) => s.clone(),
        Some(Bson::Int32(i)) => i.to_string(),
        Some(Bson::Int64(i)) => i.to_string(),
        Some(Bson::Double(d)) => format_g(*d),
        Some(Bson::Decimal128(d)) => d.to_string(),
        Some(Bson::DateTime(d)) => date::iso_string(d.timestamp_millis()),
        Some(Bson::Timestamp(t)) => format!("Timestamp({}, {})", t.time, t.increment),
        Some(other) => {
            return Err(eval_error(
                16007,
                format!(
                    "can't convert from BSON type {} to String",
                    type_of(Some(other))
                ),
            ));
        }
    })
}

/// A start or length operand of `$substrBytes` as MongoDB's `coerceToLong`.
fn long_operand(v: Option<&Bson>, code: i32, what: &str) -> Result<i64> {
    match v {
        Some(x) if numeric(x) => Ok(super::coerce_to_long(x)),
        other => Err(eval_error(
            code,
            format!(
                "$substrBytes:  {what} must be a numeric type (is BSON type {})",
                type_of(other)
            ),
        )),
    }
}

fn substr_bytes(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let s = coerce_to_string(get(vals, 0))?;
    let start = long_operand(get(vals, 1), 16034, "starting index")?;
    let len = long_operand(get(vals, 2), 16035, "length")?;
    let Ok(start) = usize::try_from(start) else {
        return Err(eval_error(
            50752,
            format!("$substrBytes:  starting index must be non-negative (got: {start})"),
        ));
    };
    let bytes = s.as_bytes();
    let continuation = |i: usize| bytes.get(i).is_some_and(|b| b & 0xC0 == 0x80);
    if continuation(start) {
        return Err(eval_error(
            28656,
            "$substrBytes:  Invalid range, starting index is a UTF-8 continuation byte.",
        ));
    }
    let end = match usize::try_from(len) {
        Ok(l) => start.saturating_add(l).min(bytes.len()),
        Err(_) => bytes.len(),
    };
    if continuation(end) {
        return Err(eval_error(
            28657,
            "$substrBytes:  Invalid range, ending index is in the middle of a UTF-8 character.",
        ));
    }
    string(s.get(start..end.max(start)).unwrap_or_default().to_owned())
}

fn substr_cp(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let s = coerce_to_string(get(vals, 0))?;
    let operand = |v: Option<&Bson>, what: &str, numeric_code: i32, int_code: i32| {
        let Some(x) = v.filter(|x| numeric(x)) else {
            return Err(eval_error(
                numeric_code,
                format!(
                    "$substrCP: {what} must be a numeric type (is BSON type {})",
                    type_of(v)
                ),
            ));
        };
        int32_of(x).ok_or_else(|| {
            eval_error(
                int_code,
                format!(
                    "$substrCP: {what} cannot be represented as a 32-bit integral value: {}",
                    render(v)
                ),
            )
        })
    };
    let start = operand(get(vals, 1), "starting index", 34450, 34451)?;
    let len = operand(get(vals, 2), "length", 34452, 34453)?;
    let Ok(len) = usize::try_from(len) else {
        return Err(eval_error(
            34454,
            "$substrCP: length must be a nonnegative integer.",
        ));
    };
    let Ok(start) = usize::try_from(start) else {
        return Err(eval_error(
            34455,
            "$substrCP: the starting index must be nonnegative integer.",
        ));
    };
    string(s.chars().skip(start).take(len).collect())
}

/// The characters `$trim` removes by default: NUL, the ASCII spaces and Unicode's spaces.
const TRIM_DEFAULT: &[char] = &[
    '\0', ' ', '\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}',
    '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

fn trim(t: TextOp, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let name = t.name();
    let input = get(vals, 0);
    if nullish(input) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::String(s)) = input else {
        return Err(eval_error(
            50699,
            format!(
                "{name} requires its input to be a string, got {} (of type {}) instead.",
                render(input),
                type_of(input)
            ),
        ));
    };
    let chars: Vec<char> = match vals.get(1) {
        None | Some(None) => TRIM_DEFAULT.to_vec(),
        Some(Some(Bson::String(c))) => c.chars().collect(),
        Some(Some(v)) if nullish(Some(v)) => return Ok(Some(Bson::Null)),
        Some(Some(v)) => {
            return Err(eval_error(
                50700,
                format!(
                    "{name} requires 'chars' to be a string, got {} (of type {}) instead.",
                    render(Some(v)),
                    type_of(Some(v))
                ),
            ));
        }
    };
    let set = chars.as_slice();
    let out = match t {
        TextOp::LTrim => s.trim_start_matches(set),
        TextOp::RTrim => s.trim_end_matches(set),
        _ => s.trim_matches(set),
    };
    string(out.to_owned())
}

fn index_of_bytes(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let input = get(vals, 0);
    if nullish(input) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::String(s)) = input else {
        return Err(eval_error(
            40091,
            format!(
                "$indexOfBytes requires a string as the first argument, found: {}",
                type_of(input)
            ),
        ));
    };
    let Some(Bson::String(token)) = get(vals, 1) else {
        return Err(eval_error(
            40092,
            format!(
                "$indexOfBytes requires a string as the second argument, found: {}",
                type_of(get(vals, 1))
            ),
        ));
    };
    let start = index_bound(vals, 2, "$indexOfBytes", "starting index")?.unwrap_or(0);
    let end = index_bound(vals, 3, "$indexOfBytes", "ending index")?
        .unwrap_or(s.len())
        .min(s.len());
    if start > s.len() || end < start {
        return Ok(Some(Bson::Int32(-1)));
    }
    let hay = s.as_bytes().get(start..end).unwrap_or_default();
    let found = memchr::memmem::find(hay, token.as_bytes())
        .map_or(-1, |i| i32::try_from(i + start).unwrap_or(i32::MAX));
    Ok(Some(Bson::Int32(found)))
}

/// The starting (`i` = 2) or ending (3) index operand of `$indexOfBytes`/`$indexOfCP`, when
/// given: an integral number (40096) that is not negative (40097). The messages are MongoDB's
/// `uassertIfNotIntegralAndNonNegative`'s, the missing space after the name in 40096 included.
fn index_bound(vals: &[Option<Bson>], i: usize, name: &str, what: &str) -> Result<Option<usize>> {
    if vals.len() <= i {
        return Ok(None);
    }
    let v = get(vals, i);
    let n = v.and_then(int32_of).ok_or_else(|| {
        eval_error(
            40096,
            format!(
                "{name}requires an integral {what}, found a value of type: {}, with value: {}",
                type_of(v),
                render(v)
            ),
        )
    })?;
    usize::try_from(n).map(Some).map_err(|_| {
        eval_error(
            40097,
            format!("{name} requires a nonnegative {what}, found: {}", render(v)),
        )
    })
}

/// `$indexOfCP: [string, token, start, end]`: the code point index of the first `token` at or
/// after code point `start` that begins before code point `end`, or -1. A null or missing
/// string gives null; `""` in `""` is found at 0 whatever the start, as in MongoDB.
fn index_of_cp(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let input = get(vals, 0);
    if nullish(input) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::String(s)) = input else {
        return Err(eval_error(
            40093,
            format!(
                "$indexOfCP requires a string as the first argument, found: {}",
                type_of(input)
            ),
        ));
    };
    let Some(Bson::String(token)) = get(vals, 1) else {
        return Err(eval_error(
            40094,
            format!(
                "$indexOfCP requires a string as the second argument, found: {}",
                type_of(get(vals, 1))
            ),
        ));
    };
    let start = index_bound(vals, 2, "$indexOfCP", "starting index")?.unwrap_or(0);
    let len = s.chars().count();
    let end = index_bound(vals, 3, "$indexOfCP", "ending index")?
        .unwrap_or(len)
        .min(len);
    if s.is_empty() && token.is_empty() {
        return Ok(Some(Bson::Int32(0)));
    }
    let found = s
        .char_indices()
        .enumerate()
        .take(end)
        .skip(start)
        .find(|(_, (byte, _))| {
            s.get(*byte..)
                .is_some_and(|rest| rest.starts_with(token.as_str()))
        })
        .map_or(-1, |(cp, _)| i32::try_from(cp).unwrap_or(i32::MAX));
    Ok(Some(Bson::Int32(found)))
}

/// A double as C's `printf("%g")` (six significant digits), as MongoDB's string builder
/// writes one.
pub(crate) fn format_g(x: f64) -> String {
    format_g_digits(x, 6)
}

/// A double as C's `printf("%.{digits}g")` (`digits` ≥ 1 significant digits, trailing zeros
/// dropped).
pub(crate) fn format_g_digits(x: f64, digits: usize) -> String {
    if let Some(text) = format_special(x, "nan", "inf") {
        return text;
    }
    let digits = digits.max(1);
    let e = format!("{x:.prec$e}", prec = digits - 1);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let limit = i32::try_from(digits).unwrap_or(i32::MAX);
    if exp < -4 || exp >= limit {
        return format!("{}e{}", trim_zeros(mantissa), exponent(exp));
    }
    let decimals = usize::try_from(limit - 1 - exp).unwrap_or(0);
    trim_zeros(&format!("{x:.decimals$}")).to_owned()
}

/// A double as `$toString` writes it (MongoDB's `fmt::format("{}")`): the shortest digits that
/// read back as the same double, in exponent form below 1e-4 and from 1e16.
pub(crate) fn format_shortest(x: f64) -> String {
    if let Some(text) = format_special(x, "NaN", "Infinity") {
        return text;
    }
    let e = format!("{x:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..16).contains(&exp) {
        return format!("{mantissa}e{}", exponent(exp));
    }
    // Fixed notation: Rust's Display of a double is its shortest round-trip digits.
    format!("{x}")
}

/// NaN, an infinity (with its sign) or a zero (`-0` for negative zero) by the given names.
fn format_special(x: f64, nan: &str, infinity: &str) -> Option<String> {
    if x.is_nan() {
        return Some(nan.to_owned());
    }
    if x.is_infinite() {
        return Some(if x < 0.0 {
            format!("-{infinity}")
        } else {
            infinity.to_owned()
        });
    }
    if x == 0.0 {
        return Some(if x.is_sign_negative() { "-0" } else { "0" }.to_owned());
    }
    None
}

/// C's exponent: a sign and at least two digits.
fn exponent(exp: i32) -> String {
    format!(
        "{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    )
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A value as MongoDB's `Value::toString` writes it in error messages: strings quoted,
/// objects `{a: 1}`, arrays `[1, 2]`, a missing value `MISSING`.
pub(crate) fn render(v: Option<&Bson>) -> String {
    let Some(v) = v else {
        return "MISSING".to_owned();
    };
    match v {
        Bson::Null => "null".to_owned(),
        Bson::Undefined => "undefined".to_owned(),
        Bson::Boolean(b) => b.to_string(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Double(d) => format_g(*d),
        Bson::Decimal128(d) => d.to_string(),
        Bson::String(s) => format!("\"{s}\""),
        Bson::DateTime(d) => date::iso_string(d.timestamp_millis()),
        Bson::ObjectId(o) => o.to_hex(),
        Bson::Document(d) => {
            let parts: Vec<String> = d
                .iter()
                .map(|(k, x)| format!("{k}: {}", render(Some(x))))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Bson::Array(a) => {
            let parts: Vec<String> = a.iter().map(|x| render(Some(x))).collect();
            format!("[{}]", parts.join(", "))
        }
        other => document::render_value(other),
    }
}

// ---------------------------------------------------------------------------------------------
// $convert
// ---------------------------------------------------------------------------------------------

/// The type a shorthand conversion operator converts to.
pub(crate) fn convert_shorthand(op: &str) -> Option<&'static str> {
    Some(match op {
        "$toString" => "string",
        "$toInt" => "int",
        "$toLong" => "long",
        "$toDouble" => "double",
        "$toDecimal" => "decimal",
        "$toBool" => "bool",
        "$toDate" => "date",
        "$toObjectId" => "objectId",
        _ => return None,
    })
}

/// Compiles `$convert: {input, to, onError, onNull}`.
pub(crate) fn compile_convert(
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            9,
            format!(
                "$convert expects an object of named arguments but found: {}",
                type_of(Some(arg))
            ),
        ));
    };
    let got = named_operands(spec, &["input", "to", "onError", "onNull"], |k| {
        parse_error(9, format!("$convert found an unknown argument: {k}"))
    })?;
    let Some(input) = got.first().copied().flatten() else {
        return Err(parse_error(9, "Missing 'input' parameter to $convert"));
    };
    let Some(to) = got.get(1).copied().flatten() else {
        return Err(parse_error(9, "Missing 'to' parameter to $convert"));
    };
    let mut optional = |i: usize| -> Result<Expr> {
        match got.get(i).copied().flatten() {
            Some(v) => compile(v),
            None => Ok(Expr::Absent),
        }
    };
    let on_error = optional(2)?;
    let on_null = optional(3)?;
    Ok(Expr::Lazy(
        Lazy::Convert,
        vec![compile(input)?, compile(to)?, on_error, on_null],
    ))
}

/// The target types `$convert` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Double,
    String,
    ObjectId,
    Bool,
    Date,
    Int,
    Long,
    Decimal,
    /// Another BSON type, which no value converts to.
    Other(i32),
}

impl Target {
    fn of_code(code: i32) -> Option<Self> {
        Some(match code {
            1 => Self::Double,
            2 => Self::String,
            7 => Self::ObjectId,
            8 => Self::Bool,
            9 => Self::Date,
            16 => Self::Int,
            18 => Self::Long,
            19 => Self::Decimal,
            3..=6 | 10..=15 | 17 | -1 | 127 => Self::Other(code),
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Double => "double",
            Self::String => "string",
            Self::ObjectId => "objectId",
            Self::Bool => "bool",
            Self::Date => "date",
            Self::Int => "int",
            Self::Long => "long",
            Self::Decimal => "decimal",
            Self::Other(code) => super::super::query::type_name_of_code(code),
        }
    }
}

/// The `to` operand as a target type (MongoDB's `computeTargetType`).
fn target_of(to: &Bson) -> Result<Target> {
    match to {
        Bson::String(s) => super::super::query::type_code_named(s)
            .and_then(Target::of_code)
            .ok_or_else(|| Error::expression(2, format!("Unknown type name: {s}"))),
        v if numeric(v) => {
            let code = int32_of(v);
            code.and_then(Target::of_code).ok_or_else(|| {
                Error::expression(
                    9,
                    format!(
                        "In $convert, numeric value for 'to' does not correspond to a BSON type: {}",
                        render(Some(v))
                    ),
                )
            })
        }
        other => Err(Error::expression(
            9,
            format!(
                "$convert's 'to' argument must be a string or number, but is {}",
                type_of(Some(other))
            ),
        )),
    }
}

/// Why a conversion failed: MongoDB's message around " in $convert with no onError value".
struct Failure {
    before: String,
    after: String,
}

fn failure(before: impl Into<String>, after: impl Into<String>) -> Failure {
    Failure {
        before: before.into(),
        after: after.into(),
    }
}

/// Evaluates `$convert`'s `[input, to, onError, onNull]`.
pub(crate) fn eval_convert(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let arg = |i: usize| args.get(i).unwrap_or(&expr::ABSENT);
    let input = arg(0).eval(cx)?;
    let to = arg(1).eval(cx)?;
    match convert_operands(input, to.as_ref())? {
        Converted::Value(v) => Ok(v),
        Converted::OnNull => match arg(3) {
            Expr::Absent => Ok(Some(Bson::Null)),
            on_null => on_null.eval(cx),
        },
        Converted::Failed(message) => match arg(2) {
            Expr::Absent => Err(eval_error(241, message)),
            on_error => on_error.eval(cx),
        },
    }
}

/// What `$convert` made of its operands.
enum Converted {
    Value(Option<Bson>),
    /// The input was null or missing.
    OnNull,
    /// The conversion failed with this message (without `onError`).
    Failed(String),
}

fn convert_operands(input: Option<Bson>, to: Option<&Bson>) -> Result<Converted> {
    let target = match to {
        t if nullish(t) => None,
        Some(t) => Some(target_of(t)?),
        None => None,
    };
    if nullish(input.as_ref()) {
        return Ok(Converted::OnNull);
    }
    let (Some(target), Some(input)) = (target, input) else {
        return Ok(Converted::Value(Some(Bson::Null)));
    };
    Ok(match convert(&input, target) {
        Ok(v) => Converted::Value(Some(v)),
        Err(f) => Converted::Failed(format!(
            "{} in $convert with no onError value{}",
            f.before, f.after
        )),
    })
}

fn unsupported(v: &Bson, target: Target) -> Failure {
    failure(
        format!(
            "Unsupported conversion from {} to {}",
            type_of(Some(v)),
            target.name()
        ),
        "",
    )
}

#[expect(
    clippy::too_many_lines,
    reason = "MongoDB's conversion table, one arm per pair"
)]
fn convert(v: &Bson, target: Target) -> std::result::Result<Bson, Failure> {
    let overflow = |v: &Bson| {
        failure(
            "Conversion would overflow target type",
            format!(": {}", render(Some(v))),
        )
    };
    Ok(match target {
        Target::Double => match v {
            Bson::Double(d) => Bson::Double(*d),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => {
                Bson::Double(document::as_f64(v).unwrap_or(f64::NAN))
            }
            Bson::Boolean(b) => Bson::Double(if *b { 1.0 } else { 0.0 }),
            #[expect(
                clippy::cast_precision_loss,
                reason = "MongoDB converts a date's milliseconds to a double"
            )]
            Bson::DateTime(d) => Bson::Double(d.timestamp_millis() as f64),
            Bson::String(s) => Bson::Double(parse_double(s)?),
            other => return Err(unsupported(other, target)),
        },
        Target::Int | Target::Long => {
            let long = match v {
                Bson::Int32(i) => i64::from(*i),
                Bson::Int64(i) => *i,
                Bson::Boolean(b) => i64::from(*b),
                Bson::Double(_) | Bson::Decimal128(_) => {
                    let d = document::as_f64(v).unwrap_or(f64::NAN);
                    if d.is_nan() {
                        return Err(failure(
                            "Attempt to convert NaN value to integer type",
                            format!(": {}", render(Some(v))),
                        ));
                    }
                    if d.is_infinite() {
                        return Err(failure(
                            "Attempt to convert infinity value to integer type",
                            format!(": {}", render(Some(v))),
                        ));
                    }
                    let t = d.trunc();
                    let (lo, hi) = if target == Target::Int {
                        (f64::from(i32::MIN), f64::from(i32::MAX))
                    } else {
                        (-9_223_372_036_854_775_808.0, 9_223_372_036_854_775_808.0)
                    };
                    if t < lo || t > hi || (target == Target::Long && t >= hi) {
                        return Err(overflow(v));
                    }
                    truncated(t)
                }
                Bson::DateTime(d) if target == Target::Long => d.timestamp_millis(),
                Bson::String(s) => {
                    return parse_integer(s, target == Target::Int);
                }
                other => return Err(unsupported(other, target)),
            };
            if target == Target::Long {
                Bson::Int64(long)
            } else {
                Bson::Int32(i32::try_from(long).map_err(|_| overflow(v))?)
            }
        }
        Target::Decimal => match v {
            Bson::Decimal128(_) => v.clone(),
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                super::super::decimal::to_decimal(v).unwrap_or(Bson::Null)
            }
            Bson::Boolean(b) => {
                super::super::decimal::to_decimal(&Bson::Int32(i32::from(*b))).unwrap_or(Bson::Null)
            }
            Bson::DateTime(d) => {
                super::super::decimal::to_decimal(&Bson::Int64(d.timestamp_millis()))
                    .unwrap_or(Bson::Null)
            }
            Bson::String(s) => Bson::Decimal128(s.parse::<Decimal128>().map_err(|_| {
                failure(
                    format!("Failed to parse number '{s}'"),
                    ": Failed to parse string to decimal",
                )
            })?),
            other => return Err(unsupported(other, target)),
        },
        Target::String => match v {
            Bson::Double(d) => Bson::String(format_shortest(*d)),
            Bson::Boolean(b) => Bson::String(b.to_string()),
            Bson::ObjectId(o) => Bson::String(o.to_hex()),
            Bson::String(_)
            | Bson::Int32(_)
            | Bson::Int64(_)
            | Bson::Decimal128(_)
            | Bson::DateTime(_) => {
                Bson::String(coerce_to_string(Some(v)).map_err(|_| unsupported(v, target))?)
            }
            other => return Err(unsupported(other, target)),
        },
        Target::Bool => match v {
            Bson::Boolean(b) => Bson::Boolean(*b),
            other => Bson::Boolean(expr::truthy(Some(other))),
        },
        Target::Date => {
            let millis = match v {
                Bson::DateTime(d) => d.timestamp_millis(),
                Bson::Int64(i) => *i,
                Bson::Double(_) | Bson::Decimal128(_) => match convert(v, Target::Long) {
                    Ok(Bson::Int64(i)) => i,
                    Ok(_) => return Err(unsupported(v, target)),
                    Err(f) => return Err(f),
                },
                Bson::ObjectId(o) => o.timestamp().timestamp_millis(),
                Bson::Timestamp(t) => i64::from(t.time) * 1000,
                Bson::String(s) => date::parse_iso(s).map_err(|reason| {
                    failure(format!("Error parsing date string '{s}'; {reason}"), "")
                })?,
                other => return Err(unsupported(other, target)),
            };
            Bson::DateTime(bson::DateTime::from_millis(millis))
        }
        Target::ObjectId => match v {
            Bson::ObjectId(o) => Bson::ObjectId(*o),
            Bson::String(s) => {
                if s.len() != 24 {
                    return Err(failure(
                        format!("Failed to parse objectId '{s}'"),
                        format!(
                            ": Invalid string length for parsing to OID, expected 24 but found {}",
                            s.len()
                        ),
                    ));
                }
                Bson::ObjectId(ObjectId::parse_str(s).map_err(|_| {
                    failure(
                        format!("Failed to parse objectId '{s}'"),
                        format!(": Invalid character found in hex string: {s}"),
                    )
                })?)
            }
            other => return Err(unsupported(other, target)),
        },
        Target::Other(_) => return Err(unsupported(v, target)),
    })
}

/// An integral double already checked to be in the `i64` range.
#[expect(
    clippy::cast_possible_truncation,
    reason = "callers check the value is integral and in range"
)]
fn truncated(t: f64) -> i64 {
    t as i64
}

/// A base-10 integer, as MongoDB's `NumberParser` reads one for `$convert`.
fn parse_integer(s: &str, int32: bool) -> std::result::Result<Bson, Failure> {
    let fail = |reason: &str| {
        failure(
            format!("Failed to parse number '{s}'"),
            format!(": {reason}"),
        )
    };
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let leading = digits.bytes().take_while(u8::is_ascii_digit).count();
    if leading == 0 {
        return Err(fail("Did not consume any digits"));
    }
    if leading != digits.len() {
        return Err(fail("Did not consume whole string."));
    }
    let n: i64 = s.parse().map_err(|_| fail("Out of range"))?;
    if int32 {
        return i32::try_from(n)
            .map(Bson::Int32)
            .map_err(|_| fail("Out of range"));
    }
    Ok(Bson::Int64(n))
}

/// A double from text, as `$convert` reads one (decimal or exponent notation, `Infinity`,
/// `NaN`).
fn parse_double(s: &str) -> std::result::Result<f64, Failure> {
    let fail = |reason: &str| {
        failure(
            format!("Failed to parse number '{s}'"),
            format!(": {reason}"),
        )
    };
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && !matches!(
            body.to_ascii_lowercase().as_str(),
            "inf" | "infinity" | "nan"
        )
    {
        return Err(fail("Did not consume any digits"));
    }
    s.parse::<f64>()
        .map_err(|_| fail("Did not consume whole string."))
}
