//! `$regexMatch`, `$regexFind` and `$regexFindAll` (`{input, regex, options}`), as MongoDB
//! 7.0's `ExpressionRegex`: `regex` a string or a BSON regular expression (whose own flags may
//! not be combined with `options`, 51107), options `i m s x` (51108 for another letter). A
//! constant `regex` and `options` are checked and compiled once, when the pipeline is built (an
//! error then carries MongoDB's `Failed to optimize pipeline :: caused by :: ` context, as its
//! optimizer compiles them); otherwise they are compiled for each document. Null or missing
//! `input` or `regex` gives false, null or `[]`.
//!
//! A match is `{match, idx, captures}`: `idx` counts code points, an unmatched group is null.
//! `$regexFindAll` resumes after each match, or one code point further after an empty one.
//!
//! The engine is the `regex` crate through `query::build_regex` (the translation the query's
//! `$regex` uses), not PCRE: look-around and back-references are refused (51111, with the
//! crate's reason), and `\d`, `\w`, `\s` and `\b` are Unicode-aware where PCRE's are ASCII.

use bson::{Bson, Document};

use super::super::document;
use super::super::error::{Error, Result};
use super::super::query::{RegexFault, build_regex};
use super::check_value_size;
use super::expr::{
    Expr, OPTIMIZE_CONTEXT, Scope, eval_error, named_operands, nullish, parse_error, type_of,
};

/// Which of the three operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegexKind {
    Match,
    Find,
    FindAll,
}

impl RegexKind {
    /// The operator called `name`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Some(match name {
            "$regexMatch" => Self::Match,
            "$regexFind" => Self::Find,
            "$regexFindAll" => Self::FindAll,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Match => "$regexMatch",
            Self::Find => "$regexFind",
            Self::FindAll => "$regexFindAll",
        }
    }

    /// The value for a null or missing `input` or `regex`.
    fn nullish_value(self) -> Bson {
        match self {
            Self::Match => Bson::Boolean(false),
            Self::Find => Bson::Null,
            Self::FindAll => Bson::Array(Vec::new()),
        }
    }
}

/// A compiled regex operator.
#[derive(Debug, Clone)]
pub(crate) struct RegexExpr {
    kind: RegexKind,
    input: Expr,
    regex: Expr,
    /// [`Expr::Absent`] when not given.
    options: Expr,
    /// The compiled pattern when `regex` and `options` are constants (`Some(None)`: the
    /// pattern is null or missing).
    fixed: Option<Option<regex::Regex>>,
}

/// Compiles `{input, regex, options}` (51103, 31022–31024).
pub(crate) fn compile(
    kind: RegexKind,
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let name = kind.name();
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            51103,
            format!(
                "{name} expects an object of named arguments but found: {}",
                type_of(Some(arg))
            ),
        ));
    };
    let got = named_operands(spec, &["input", "regex", "options"], |k| {
        parse_error(31024, format!("{name} found an unknown argument: {k}"))
    })?;
    let mut got = got.into_iter();
    let (input, regex, options) = (
        got.next().flatten(),
        got.next().flatten(),
        got.next().flatten(),
    );
    let Some(input) = input else {
        return Err(parse_error(
            31022,
            format!("{name} requires 'input' parameter"),
        ));
    };
    let Some(regex) = regex else {
        return Err(parse_error(
            31023,
            format!("{name} requires 'regex' parameter"),
        ));
    };
    let input = compile(input)?;
    let regex = compile(regex)?;
    let options = match options {
        Some(o) => compile(o)?,
        None => Expr::Absent,
    };
    // A literal pattern is compiled now, so a caller that never folds (a query's `$expr`)
    // still compiles it once; a pattern in error is left to `fold` or to each evaluation, which
    // report it with their own context.
    let fixed = if is_constant(&regex) && is_constant(&options) {
        pattern_of(kind, regex.as_const(), options.as_const()).ok()
    } else {
        None
    };
    Ok(Expr::Regex(Box::new(RegexExpr {
        kind,
        input,
        regex,
        options,
        fixed,
    })))
}

/// Whether an operand is known when the pipeline is built.
fn is_constant(e: &Expr) -> bool {
    matches!(e, Expr::Const(_) | Expr::Absent)
}

impl RegexExpr {
    /// Folds the operands and, when `regex` and `options` are then constants, compiles the
    /// pattern once (MongoDB's optimizer does the same; its errors carry the optimizer's
    /// context). The operator itself is never folded into a constant.
    ///
    /// # Errors
    /// The pattern's errors, as [`Error::InvalidExpression`].
    pub(crate) fn fold(self) -> Result<Self> {
        let mut out = Self {
            kind: self.kind,
            input: self.input.fold()?,
            regex: self.regex.fold()?,
            options: self.options.fold()?,
            fixed: self.fixed,
        };
        if out.fixed.is_none() && is_constant(&out.regex) && is_constant(&out.options) {
            let pattern = out.regex.as_const();
            let options = out.options.as_const();
            let compiled = pattern_of(self.kind, pattern, options).map_err(|e| match e {
                Error::Expression { code, message } => {
                    parse_error(code, format!("{OPTIMIZE_CONTEXT}{message}"))
                }
                other => other,
            })?;
            out.fixed = Some(compiled);
        }
        Ok(out)
    }

    /// Evaluates the operator.
    ///
    /// # Errors
    /// 51104–51111 as MongoDB; [`Error::ObjectTooLarge`] for a `$regexFindAll` result past
    /// the stage document limit.
    pub(crate) fn eval(&self, cx: &mut Scope<'_>) -> Result<Option<Bson>> {
        let input = self.input.eval(cx)?;
        let regex = self.regex.eval(cx)?;
        let options = self.options.eval(cx)?;
        // A constant pattern is borrowed: cloning a compiled regex would give it a fresh
        // match cache for every document.
        let owned;
        let compiled = match &self.fixed {
            Some(fixed) => fixed.as_ref(),
            None => {
                owned = pattern_of(self.kind, regex.as_ref(), options.as_ref())?;
                owned.as_ref()
            }
        };
        let input = match input {
            Some(Bson::String(s)) => Some(s),
            v if nullish(v.as_ref()) => None,
            _ => {
                return Err(eval_error(
                    51104,
                    format!("{} needs 'input' to be of type string", self.kind.name()),
                ));
            }
        };
        let (Some(re), Some(input)) = (compiled, input) else {
            return Ok(Some(self.kind.nullish_value()));
        };
        Ok(Some(match self.kind {
            RegexKind::Match => Bson::Boolean(re.is_match(&input)),
            RegexKind::Find => match_at(re, &input, 0, 0).map_or(Bson::Null, |(m, _)| m),
            RegexKind::FindAll => find_all(re, &input)?,
        }))
    }
}

/// The pattern of `regex` with `options` checked as MongoDB's `extractRegexAndOptions`
/// (51105–51107, 51109, 51110) and compiled (51108, 51111); `None` when the pattern is null or
/// missing.
fn pattern_of(
    kind: RegexKind,
    regex: Option<&Bson>,
    options: Option<&Bson>,
) -> Result<Option<regex::Regex>> {
    let name = kind.name();
    let (pattern, own_flags) = match regex {
        Some(Bson::String(s)) => (Some(s.as_str()), ""),
        Some(Bson::RegularExpression(r)) => (Some(r.pattern.as_str()), r.options.as_str()),
        v if nullish(v) => (None, ""),
        _ => {
            return Err(eval_error(
                51105,
                format!("{name} needs 'regex' to be of type string or regex"),
            ));
        }
    };
    let options = match options {
        Some(Bson::String(s)) => Some(s.as_str()),
        v if nullish(v) => None,
        _ => {
            return Err(eval_error(
                51106,
                format!("{name} needs 'options' to be of type string"),
            ));
        }
    };
    if !own_flags.is_empty() && options.is_some() {
        return Err(eval_error(
            51107,
            format!("{name}: found regex option(s) specified in both 'regex' and 'option' fields"),
        ));
    }
    if pattern.is_some_and(|p| p.contains('\0')) {
        return Err(eval_error(
            51109,
            format!("{name}: regular expression cannot contain an embedded null byte"),
        ));
    }
    let flags = options.unwrap_or(own_flags);
    if flags.contains('\0') {
        return Err(eval_error(
            51110,
            format!("{name}: regular expression options cannot contain an embedded null byte"),
        ));
    }
    let Some(pattern) = pattern else {
        return Ok(None);
    };
    build_regex(pattern, flags).map(Some).map_err(|fault| match fault {
        RegexFault::Flag(c) => eval_error(51108, format!("{name} invalid flag in regex options: {c}")),
        RegexFault::TooLong(len) => eval_error(
            51111,
            format!(
                "Invalid Regex in {name}: regular expression is {len} bytes, more than the limit of {}",
                super::super::REGEX_PATTERN_BYTES_MAX
            ),
        ),
        RegexFault::Invalid(reason) => {
            eval_error(51111, format!("Invalid Regex in {name}: {reason}"))
        }
    })
}

/// The first match at or after byte `from` (whose code point index is `from_cp`): the
/// `{match, idx, captures}` document and the match's byte range.
fn match_at(
    re: &regex::Regex,
    input: &str,
    from: usize,
    from_cp: usize,
) -> Option<(Bson, (usize, usize))> {
    let caps = re.captures_at(input, from)?;
    let whole = caps.get(0)?;
    let before = input.get(from..whole.start()).unwrap_or_default();
    let idx = from_cp + before.chars().count();
    let captures: Vec<Bson> = caps
        .iter()
        .skip(1)
        .map(|g| g.map_or(Bson::Null, |m| Bson::String(m.as_str().to_owned())))
        .collect();
    let mut d = Document::new();
    d.insert("match", whole.as_str());
    d.insert("idx", i32::try_from(idx).unwrap_or(i32::MAX));
    d.insert("captures", captures);
    Some((Bson::Document(d), (whole.start(), whole.end())))
}

/// Every match, left to right without overlap: after an empty match the search moves one code
/// point on; it stops once it has reached the end of a non-empty input (as MongoDB's loop).
fn find_all(re: &regex::Regex, input: &str) -> Result<Bson> {
    let mut out = Vec::new();
    let mut size = 5usize;
    let (mut at, mut at_cp) = (0usize, 0usize);
    loop {
        let Some((m, (start, end))) = match_at(re, input, at, at_cp) else {
            break;
        };
        size = size.saturating_add(8 + document::value_size(&m));
        check_value_size(size)?;
        out.push(m);
        at_cp += input.get(at..start).unwrap_or_default().chars().count();
        if start == end {
            let Some(c) = input.get(start..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            at = start + c.len_utf8();
            at_cp += 1;
        } else {
            at_cp += input.get(start..end).unwrap_or_default().chars().count();
            at = end;
        }
        if at >= input.len() {
            break;
        }
    }
    Ok(Bson::Array(out))
}
