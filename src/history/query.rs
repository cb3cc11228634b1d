//! Filters, projections and sorts with MongoDB's semantics: parsing (once, with validation)
//! and evaluation against documents.
//!
//! Semantics follow the MongoDB manual: dotted paths fan out over arrays (any element may
//! satisfy a condition, and two conditions on one path may be satisfied by different
//! elements; `$elemMatch` pins one element); `{f: null}` matches a missing field; `$ne`/`$nin`
//! match missing fields; comparisons only hold inside one type bracket.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::aggregate::{Expr, compile_expression, truthy as expr_truthy};
use super::decimal;
use super::document::{self, collect_doc_path, compare, split_path_owned, type_rank, values_equal};
use super::error::{Error, Result};
use super::{FILTER_CLAUSES_MAX, REGEX_PATTERN_BYTES_MAX, SORT_KEYS_MAX};

/// Parts of a dotted path that [`Filter::matches`] borrows on the stack (longer paths take a
/// vector).
const PATH_PARTS_INLINE: usize = 8;

/// A parsed filter.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Every clause holds.
    And(Vec<Filter>),
    /// Some clause holds.
    Or(Vec<Filter>),
    /// No clause holds.
    Nor(Vec<Filter>),
    /// `$expr`: an aggregation expression on the whole document, true when its value is.
    Expr(Box<Expr>),
    /// A condition on the values a dotted path reaches.
    Field {
        /// The dotted path as written.
        path: String,
        /// Its parts.
        parts: Vec<String>,
        /// The condition.
        cond: Cond,
    },
}

/// A condition on a field's values.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// `$eq` (and a plain value).
    Eq(Bson),
    /// `$ne`.
    Ne(Bson),
    /// `$gt`.
    Gt(Bson),
    /// `$gte`.
    Gte(Bson),
    /// `$lt`.
    Lt(Bson),
    /// `$lte`.
    Lte(Bson),
    /// `$in` (values and regexes).
    In(Vec<InItem>),
    /// `$nin`.
    Nin(Vec<InItem>),
    /// `$exists`.
    Exists(bool),
    /// `$type` with its selectors.
    Type(Vec<TypeSel>),
    /// `$regex` (with `$options`), or a regex literal.
    Regex(Box<RegexCond>),
    /// `$not`.
    Not(Box<Cond>),
    /// `$all`.
    All(Vec<Cond>),
    /// `$size`.
    Size(i64),
    /// `$mod` with divisor and remainder.
    Mod(i64, i64),
    /// `$elemMatch` on documents (a sub-filter) or on values (operators).
    ElemMatch(Box<ElemMatch>),
    /// Several operators on one field, each evaluated independently.
    And(Vec<Cond>),
}

/// One entry of `$in`/`$nin`.
#[derive(Debug, Clone)]
pub(crate) enum InItem {
    /// A value compared with `$eq` semantics.
    Value(Bson),
    /// A regex.
    Regex(Box<RegexCond>),
}

/// A compiled regex and its source.
#[derive(Debug, Clone)]
pub(crate) struct RegexCond {
    /// Compiled form.
    regex: regex::Regex,
    /// Pattern as given.
    pattern: String,
    /// Options as given.
    options: String,
}

/// An `$elemMatch` body.
#[derive(Debug, Clone)]
pub(crate) enum ElemMatch {
    /// `{$elemMatch: {field: …}}`: the element is a document matching the filter.
    Doc(Filter),
    /// `{$elemMatch: {$gt: …}}`: the element value satisfies the operators.
    Value(Cond),
}

/// A `$type` selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeSel {
    /// A BSON type number.
    Code(i32),
    /// The `"number"` alias.
    Number,
}

/// Counts clauses to bound parsing work, and carries what `$expr` compiles with.
struct Budget {
    left: usize,
    /// The path whose conditions are being parsed (MongoDB names it in some errors).
    path: String,
    /// `$$NOW` for `$expr`, which only the top-level document may use (`None` inside
    /// `$elemMatch`, and for filters parsed without a clock).
    expr_now_ms: Option<i64>,
}

impl Budget {
    fn spend(&mut self) -> Result<()> {
        if self.left == 0 {
            return Err(Error::TooMany {
                what: "filter",
                len: FILTER_CLAUSES_MAX + 1,
                max: FILTER_CLAUSES_MAX,
            });
        }
        self.left -= 1;
        Ok(())
    }
}

impl Filter {
    /// The filter that matches everything.
    pub(crate) fn all() -> Self {
        Self::And(Vec::new())
    }

    /// Parses a filter document.
    ///
    /// # Errors
    /// [`Error::BadValue`] for unknown operators or malformed arguments,
    /// [`Error::NestingTooDeep`] and [`Error::TooMany`] beyond the limits.
    pub(crate) fn parse(filter: &Document) -> Result<Self> {
        Self::parse_inner(filter, None)
    }

    /// A condition on a single value (an operator document or a regex), as a filter on the
    /// field named `field`, taken as it is: MongoDB's `$pull` matches each element wrapped under
    /// an empty field name, which its messages then name.
    ///
    /// # Errors
    /// As [`Filter::parse`].
    pub(crate) fn parse_value(field: &str, cond: &Bson) -> Result<Self> {
        let mut budget = Budget {
            left: FILTER_CLAUSES_MAX,
            path: field.to_owned(),
            expr_now_ms: None,
        };
        budget.spend()?;
        if let Bson::Document(d) = cond {
            document::check_depth_doc(d)?;
        }
        Ok(Self::Field {
            path: field.to_owned(),
            parts: vec![field.to_owned()],
            cond: parse_value_cond(cond, &mut budget)?,
        })
    }

    /// [`Filter::parse`] for a query that may use `$expr`, with `$$NOW` at `now_ms`.
    ///
    /// # Errors
    /// As [`Filter::parse`], and an `$expr` that does not compile.
    pub(crate) fn parse_at(filter: &Document, now_ms: i64) -> Result<Self> {
        Self::parse_inner(filter, Some(now_ms))
    }

    fn parse_inner(filter: &Document, expr_now_ms: Option<i64>) -> Result<Self> {
        document::check_depth_doc(filter)?;
        let mut budget = Budget {
            left: FILTER_CLAUSES_MAX,
            path: String::new(),
            expr_now_ms,
        };
        parse_filter(filter, &mut budget)
    }

    /// Whether `doc` matches, an `$expr` that fails to evaluate included: the error is the
    /// query's.
    ///
    /// # Errors
    /// An `$expr`'s run-time error (a division by zero, a bad operand type).
    pub(crate) fn try_matches(&self, doc: &Document) -> Result<bool> {
        self.try_matches_on(Target::Document(doc), ExprError::Fail)
    }

    /// Whether `doc` matches; an `$expr` that fails to evaluate counts as no match (the
    /// query's own scan uses [`Filter::try_matches`], which reports it).
    pub(crate) fn matches(&self, doc: &Document) -> bool {
        // Cannot fail: `NoMatch` turns every `$expr` error into a false clause.
        self.try_matches_on(Target::Document(doc), ExprError::NoMatch)
            .unwrap_or(false)
    }

    /// [`Filter::try_matches`] on the document `{field: value}`, read on `value` where it is
    /// (an array filter on an element, without copying the element into a document).
    ///
    /// # Errors
    /// As [`Filter::try_matches`].
    pub(crate) fn try_matches_field(&self, field: &str, value: &Bson) -> Result<bool> {
        self.try_matches_on(Target::Field(field, value), ExprError::Fail)
    }

    /// [`Filter::try_matches`] on a document or on one value under a field name; an `$expr`
    /// that fails to evaluate fails the match or is a false clause, as `on_error` says.
    fn try_matches_on(&self, target: Target<'_>, on_error: ExprError) -> Result<bool> {
        Ok(match self {
            Self::And(fs) => {
                for f in fs {
                    if !f.try_matches_on(target, on_error)? {
                        return Ok(false);
                    }
                }
                true
            }
            Self::Or(fs) => {
                for f in fs {
                    if f.try_matches_on(target, on_error)? {
                        return Ok(true);
                    }
                }
                false
            }
            Self::Nor(fs) => {
                for f in fs {
                    if f.try_matches_on(target, on_error)? {
                        return Ok(false);
                    }
                }
                true
            }
            Self::Expr(e) => {
                let value = match target {
                    Target::Document(doc) => e.eval_doc(doc),
                    // An expression reads the whole document: built for it.
                    Target::Field(field, value) => {
                        let mut probe = Document::new();
                        probe.insert(field, value.clone());
                        e.eval_doc(&probe)
                    }
                };
                match (value, on_error) {
                    (Ok(v), _) => expr_truthy(v.as_ref()),
                    (Err(_), ExprError::NoMatch) => false,
                    (Err(err), ExprError::Fail) => return Err(err),
                }
            }
            Self::Field { parts, cond, .. } => with_parts(parts, |parts| match target {
                Target::Document(doc) => cond_matches_path(doc, parts, cond),
                Target::Field(field, value) => {
                    let mut reached = Vec::new();
                    match parts.split_first() {
                        Some((first, rest)) if *first == field => {
                            document::collect_path(value, rest, &mut reached);
                        }
                        Some(_) => reached.push(None),
                        // As `collect_doc_path`: no path reaches nothing.
                        None => {}
                    }
                    cond_matches_values(&reached, cond)
                }
            }),
        })
    }

    /// The top-level conjunction's field conditions: `(path, cond)` pairs a planner may use.
    pub(crate) fn conjuncts(&self) -> Vec<(&str, &Cond)> {
        let mut out = Vec::new();
        collect_conjuncts(self, &mut out);
        out
    }

    /// Equality fields of the top-level conjunction (for seeding an upsert).
    pub(crate) fn equalities(&self) -> Vec<(&str, &Bson)> {
        let mut out = Vec::new();
        for (path, cond) in self.conjuncts() {
            push_equalities(path, cond, &mut out);
        }
        out
    }
}

fn push_equalities<'a>(path: &'a str, cond: &'a Cond, out: &mut Vec<(&'a str, &'a Bson)>) {
    match cond {
        Cond::Eq(v) => out.push((path, v)),
        Cond::In(items) if items.len() == 1 => {
            if let Some(InItem::Value(v)) = items.first() {
                out.push((path, v));
            }
        }
        Cond::And(cs) => cs.iter().for_each(|c| push_equalities(path, c, out)),
        _ => {}
    }
}

fn collect_conjuncts<'a>(f: &'a Filter, out: &mut Vec<(&'a str, &'a Cond)>) {
    match f {
        Filter::And(fs) => fs.iter().for_each(|f| collect_conjuncts(f, out)),
        Filter::Field { path, cond, .. } => out.push((path, cond)),
        Filter::Or(_) | Filter::Nor(_) | Filter::Expr(_) => {}
    }
}

fn parse_filter(filter: &Document, budget: &mut Budget) -> Result<Filter> {
    // The common one-field filter is its clause, with no conjunction around it.
    if filter.len() == 1
        && let Some((key, value)) = filter.iter().next()
    {
        return Ok(parse_clause(key, value, budget)?.unwrap_or_else(Filter::all));
    }
    let mut clauses = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        clauses.extend(parse_clause(key, value, budget)?);
    }
    Ok(if clauses.len() == 1 {
        clauses.pop().unwrap_or_else(Filter::all)
    } else {
        Filter::And(clauses)
    })
}

/// One top-level entry of a filter; `None` for `$comment`.
fn parse_clause(key: &str, value: &Bson, budget: &mut Budget) -> Result<Option<Filter>> {
    budget.spend()?;
    Ok(Some(match key {
        "$and" | "$or" | "$nor" => {
            let Bson::Array(items) = value else {
                return Err(Error::bad(format!("{key} must be an array")));
            };
            if items.is_empty() {
                return Err(Error::bad("$and/$or/$nor must be a nonempty array"));
            }
            let mut subs = Vec::with_capacity(items.len());
            for item in items {
                let Bson::Document(d) = item else {
                    return Err(Error::bad(format!(
                        "{key} argument's entries must be objects"
                    )));
                };
                subs.push(parse_filter(d, budget)?);
            }
            match key {
                "$and" => Filter::And(subs),
                "$or" => Filter::Or(subs),
                _ => Filter::Nor(subs),
            }
        }
        "$comment" => return Ok(None),
        "$expr" => {
            let Some(now_ms) = budget.expr_now_ms else {
                return Err(Error::bad(
                    "$expr can only be applied to the top-level document",
                ));
            };
            Filter::Expr(Box::new(compile_expression(value, now_ms)?))
        }
        "$sampleRate" => {
            let Some(now_ms) = budget.expr_now_ms else {
                return Err(Error::bad(
                    "$sampleRate can only be applied to the top-level document",
                ));
            };
            Filter::Expr(Box::new(sample_rate(value, now_ms)?))
        }
        k if k.starts_with('$') => {
            return Err(Error::bad(format!(
                "unknown top level operator: {k}. If you have a field name that starts with a '$' symbol, consider using $getField or $setField."
            )));
        }
        path => {
            let parts = split_path_owned(path)?;
            let outer = std::mem::replace(&mut budget.path, path.to_owned());
            let cond = parse_value_cond(value, budget);
            budget.path = outer;
            let cond = cond?;
            Filter::Field {
                path: path.to_owned(),
                parts,
                cond,
            }
        }
    }))
}

/// `{$sampleRate: x}` as MongoDB rewrites it: `{$expr: {$lt: [{$rand: {}}, x]}}` for `x`
/// strictly between 0 and 1, a constant false at 0 and true at 1.
fn sample_rate(value: &Bson, now_ms: i64) -> Result<Expr> {
    let Some(x) = document::as_f64(value) else {
        return Err(Error::bad("argument to $sampleRate must be a numeric type"));
    };
    // Written so that NaN fails it.
    if !(0.0..=1.0).contains(&x) {
        return Err(Error::bad(
            "numeric argument to $sampleRate must be in [0, 1]",
        ));
    }
    let expr = if x == 0.0 || x == 1.0 {
        Bson::Boolean(x == 1.0)
    } else {
        bson::bson!({"$lt": [{"$rand": {}}, x]})
    };
    compile_expression(&expr, now_ms)
}

/// Whether a document is an operator expression (`{$gt: 1}`), judged by its first key.
fn is_operator_doc(d: &Document) -> bool {
    d.keys().next().is_some_and(|k| k.starts_with('$'))
}

fn parse_value_cond(value: &Bson, budget: &mut Budget) -> Result<Cond> {
    match value {
        Bson::Document(d) if is_operator_doc(d) => parse_operators(d, budget),
        Bson::RegularExpression(r) => Ok(Cond::Regex(Box::new(compile_regex(
            r.pattern.as_str(),
            r.options.as_str(),
        )?))),
        other => Ok(Cond::Eq(comparand(other)?)),
    }
}

/// The operand of an equality or comparison: anything but `undefined`, which MongoDB's
/// `ComparisonMatchExpression` refuses (BadValue `cannot compare to undefined`).
fn comparand(arg: &Bson) -> Result<Bson> {
    if matches!(arg, Bson::Undefined) {
        return Err(Error::bad("cannot compare to undefined"));
    }
    Ok(arg.clone())
}

fn parse_operators(d: &Document, budget: &mut Budget) -> Result<Cond> {
    let mut conds = Vec::with_capacity(d.len());
    let options = match d.get("$options") {
        None => None,
        Some(Bson::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Error::bad("$options has to be a string")),
    };
    for (op, arg) in d {
        budget.spend()?;
        let cond = match op.as_str() {
            "$eq" => Cond::Eq(comparand(arg)?),
            "$ne" => Cond::Ne(comparand(arg)?),
            "$gt" => Cond::Gt(comparand(arg)?),
            "$gte" => Cond::Gte(comparand(arg)?),
            "$lt" => Cond::Lt(comparand(arg)?),
            "$lte" => Cond::Lte(comparand(arg)?),
            "$in" => Cond::In(parse_in(arg, "$in", budget)?),
            "$nin" => Cond::Nin(parse_in(arg, "$nin", budget)?),
            "$exists" => Cond::Exists(truthy(arg)),
            "$type" => {
                let types = parse_types(arg)?;
                if types.is_empty() {
                    return Err(Error::update(
                        9,
                        format!("{} must match at least one type", budget.path),
                    ));
                }
                Cond::Type(types)
            }
            "$regex" => {
                let (pattern, inline_options) = match arg {
                    Bson::String(s) => (s.as_str(), ""),
                    Bson::RegularExpression(r) => (r.pattern.as_str(), r.options.as_str()),
                    _ => return Err(Error::bad("$regex has to be a string")),
                };
                let opts = options.unwrap_or(inline_options);
                Cond::Regex(Box::new(compile_regex(pattern, opts)?))
            }
            "$options" => {
                if !d.contains_key("$regex") {
                    return Err(Error::bad("$options needs a $regex"));
                }
                continue;
            }
            "$not" => match arg {
                Bson::Document(inner) if inner.is_empty() => {
                    return Err(Error::bad("$not cannot be empty"));
                }
                Bson::Document(inner) if is_operator_doc(inner) => {
                    Cond::Not(Box::new(parse_operators(inner, budget)?))
                }
                Bson::RegularExpression(r) => Cond::Not(Box::new(Cond::Regex(Box::new(
                    compile_regex(r.pattern.as_str(), r.options.as_str())?,
                )))),
                _ => return Err(Error::bad("$not needs a regex or a document")),
            },
            "$all" => {
                let Bson::Array(items) = arg else {
                    return Err(Error::bad("$all needs an array"));
                };
                let mut all = Vec::with_capacity(items.len());
                for item in items {
                    budget.spend()?;
                    all.push(match item {
                        Bson::Document(e)
                            if e.keys().next().map(String::as_str) == Some("$elemMatch") =>
                        {
                            parse_operators(e, budget)?
                        }
                        other => parse_value_cond(other, budget)?,
                    });
                }
                Cond::All(all)
            }
            "$size" => Cond::Size(parse_size(arg)?),
            "$mod" => parse_mod(arg)?,
            "$elemMatch" => {
                let Bson::Document(inner) = arg else {
                    return Err(Error::bad("$elemMatch needs an Object"));
                };
                let body = if is_operator_doc(inner)
                    && !inner.keys().any(|k| {
                        matches!(
                            k.as_str(),
                            "$and" | "$or" | "$nor" | "$expr" | "$sampleRate"
                        )
                    }) {
                    ElemMatch::Value(parse_operators(inner, budget)?)
                } else {
                    // `$expr` and `$sampleRate` read the top-level document only.
                    let now = budget.expr_now_ms.take();
                    let parsed = parse_filter(inner, budget);
                    budget.expr_now_ms = now;
                    ElemMatch::Doc(parsed?)
                };
                Cond::ElemMatch(Box::new(body))
            }
            "$comment" => continue,
            "$where" | "$text" | "$geoWithin" | "$near" | "$jsonSchema" => {
                return Err(Error::Unsupported(format!("query operator {op}")));
            }
            other => return Err(Error::bad(format!("unknown operator: {other}"))),
        };
        conds.push(cond);
    }
    Ok(if conds.len() == 1 {
        conds.pop().unwrap_or(Cond::And(Vec::new()))
    } else {
        Cond::And(conds)
    })
}

fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        other => document::as_f64(other).is_none_or(|n| n != 0.0),
    }
}

/// Parses a `$in`/`$nin` list; each item spends one unit of the filter budget, as `$all`'s
/// do, since each is compared with every candidate document's values.
fn parse_in(arg: &Bson, op: &str, budget: &mut Budget) -> Result<Vec<InItem>> {
    let Bson::Array(items) = arg else {
        return Err(Error::bad(format!("{op} needs an array")));
    };
    items
        .iter()
        .map(|item| {
            budget.spend()?;
            match item {
                Bson::RegularExpression(r) => Ok(InItem::Regex(Box::new(compile_regex(
                    r.pattern.as_str(),
                    r.options.as_str(),
                )?))),
                Bson::Document(d) if is_operator_doc(d) => {
                    Err(Error::bad("cannot nest $ under $in"))
                }
                Bson::Undefined => {
                    Err(Error::bad("InMatchExpression equality cannot be undefined"))
                }
                other => Ok(InItem::Value(other.clone())),
            }
        })
        .collect()
}

/// `$size`'s argument as MongoDB's match expression parser takes it
/// (`parseIntegerElementToNonNegativeInt`): an integer of any numeric type within 32 bits, not
/// negative; refused with that reader's reason after `Failed to parse $size. `.
fn parse_size(arg: &Bson) -> Result<i64> {
    let refuse = |reason: &str| {
        Error::bad(format!(
            "Failed to parse $size. {reason}: $size: {}",
            document::render_value(arg)
        ))
    };
    let size = document::integer_element(arg).map_err(refuse)?;
    if i32::try_from(size).is_err() {
        return Err(Error::bad(format!(
            "Failed to parse $size. Cannot represent $size: {} in an int",
            document::render_value(arg)
        )));
    }
    if size < 0 {
        return Err(refuse("Expected a non-negative number in"));
    }
    Ok(size)
}

/// `$mod`'s `[divisor, remainder]` as MongoDB's match expression parser takes them: two numbers,
/// each truncated toward zero to a long (NaN, infinities and values past a long refused), the
/// divisor not zero.
fn parse_mod(arg: &Bson) -> Result<Cond> {
    let Bson::Array(a) = arg else {
        return Err(Error::bad("malformed mod, needs to be an array"));
    };
    let mut items = a.iter();
    let mut number = |which: &str| -> Result<&Bson> {
        let v = items
            .next()
            .ok_or_else(|| Error::bad("malformed mod, not enough elements"))?;
        if document::as_f64(v).is_none() {
            return Err(Error::bad(format!("malformed mod, {which} not a number")));
        }
        Ok(v)
    };
    let divisor = number("divisor")?;
    let remainder = number("remainder")?;
    if items.next().is_some() {
        return Err(Error::bad("malformed mod, too many elements"));
    }
    let coerce = |v: &Bson, which: &str| -> Result<i64> {
        let invalid = |reason: &str| {
            Error::bad(format!(
                "malformed mod, {which} value is invalid :: caused by :: {reason}"
            ))
        };
        match v {
            Bson::Int32(n) => Ok(i64::from(*n)),
            Bson::Int64(n) => Ok(*n),
            other => {
                let n = document::as_f64(other).unwrap_or(f64::NAN);
                if !n.is_finite() {
                    return Err(invalid("Unable to coerce NaN/Inf to integral type"));
                }
                let t = n.trunc();
                if !(-document::TWO_POW_63..document::TWO_POW_63).contains(&t) {
                    return Err(invalid("Out of bounds coercing to integral value"));
                }
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "integral and within i64, checked above"
                )]
                let t = t as i64;
                Ok(t)
            }
        }
    };
    let (d, r) = (coerce(divisor, "divisor")?, coerce(remainder, "remainder")?);
    if d == 0 {
        return Err(Error::bad("divisor cannot be 0"));
    }
    Ok(Cond::Mod(d, r))
}

fn parse_types(arg: &Bson) -> Result<Vec<TypeSel>> {
    let one = |v: &Bson| -> Result<TypeSel> {
        match v {
            Bson::String(s) => {
                type_alias(s).ok_or_else(|| Error::bad(format!("Unknown type name alias: {s}")))
            }
            other => {
                let n = document::as_f64(other).ok_or_else(|| {
                    Error::bad("type must be represented as a number or a string")
                })?;
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "type codes are small integers; validated below"
                )]
                let code = n as i32;
                if f64::from(code) != n || !matches!(code, -1 | 1..=19 | 127) {
                    return Err(Error::bad(format!("Invalid numerical type code: {n}")));
                }
                Ok(TypeSel::Code(code))
            }
        }
    };
    match arg {
        Bson::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// MongoDB's type names (its `typeName`, the `$type` aliases) and their BSON type numbers.
const TYPE_NAMES: [(&str, i32); 21] = [
    ("double", 1),
    ("string", 2),
    ("object", 3),
    ("array", 4),
    ("binData", 5),
    ("undefined", 6),
    ("objectId", 7),
    ("bool", 8),
    ("date", 9),
    ("null", 10),
    ("regex", 11),
    ("dbPointer", 12),
    ("javascript", 13),
    ("symbol", 14),
    ("javascriptWithScope", 15),
    ("int", 16),
    ("timestamp", 17),
    ("long", 18),
    ("decimal", 19),
    ("minKey", -1),
    ("maxKey", 127),
];

fn type_alias(s: &str) -> Option<TypeSel> {
    if s == "number" {
        return Some(TypeSel::Number);
    }
    TYPE_NAMES
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, code)| TypeSel::Code(*code))
}

/// MongoDB's name for a value's type, as its error messages give it (`typeName`); a missing
/// value (a field path reaching nothing) is `"missing"`.
pub(crate) fn type_name(v: Option<&Bson>) -> &'static str {
    let Some(v) = v else {
        return "missing";
    };
    type_name_of_code(type_code(v))
}

/// MongoDB's name of the BSON type numbered `code` (`"unknown"` for none).
pub(crate) fn type_name_of_code(code: i32) -> &'static str {
    TYPE_NAMES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("unknown", |(name, _)| name)
}

/// The BSON type number MongoDB names `name` (`"int"`, `"objectId"` …).
pub(crate) fn type_code_named(name: &str) -> Option<i32> {
    TYPE_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, code)| *code)
}

/// BSON type number of a value.
pub(crate) fn type_code(v: &Bson) -> i32 {
    match v {
        Bson::MinKey => -1,
        Bson::MaxKey => 127,
        other => i32::from(other.element_type() as u8),
    }
}

fn type_matches(v: &Bson, sels: &[TypeSel]) -> bool {
    sels.iter().any(|s| match s {
        TypeSel::Number => type_rank(v) == 10,
        TypeSel::Code(c) => type_code(v) == *c,
    })
}

/// Why [`build_regex`] could not build a regular expression.
#[derive(Debug)]
pub(crate) enum RegexFault {
    /// The pattern is longer than [`REGEX_PATTERN_BYTES_MAX`] (its length in bytes).
    TooLong(usize),
    /// An option letter other than `i m s x u`.
    Flag(char),
    /// The engine refused the pattern, or it would compile past
    /// [`super::REGEX_COMPILED_BYTES_MAX`] (the engine's reason).
    Invalid(String),
}

/// Builds a MongoDB regular expression with its options (`i` case-insensitive, `m` multi-line,
/// `s` dot matches newline, `x` extended; `u` is implied): the one translation of MongoDB's
/// PCRE options that the query's `$regex` and the aggregation's `$regexMatch`, `$regexFind`
/// and `$regexFindAll` share. The pattern is held to [`REGEX_PATTERN_BYTES_MAX`] before it is
/// compiled, and the compiled program to [`super::REGEX_COMPILED_BYTES_MAX`].
///
/// # Errors
/// [`RegexFault`] for a pattern too long, an unknown option or a pattern the engine refuses.
pub(crate) fn build_regex(
    pattern: &str,
    options: &str,
) -> std::result::Result<regex::Regex, RegexFault> {
    if pattern.len() > REGEX_PATTERN_BYTES_MAX {
        return Err(RegexFault::TooLong(pattern.len()));
    }
    let mut b = regex::RegexBuilder::new(pattern);
    b.size_limit(super::REGEX_COMPILED_BYTES_MAX);
    for c in options.chars() {
        match c {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'x' => b.ignore_whitespace(true),
            'u' => &mut b,
            other => return Err(RegexFault::Flag(other)),
        };
    }
    b.build().map_err(|e| RegexFault::Invalid(e.to_string()))
}

/// Compiles a MongoDB regex with its options (`i m s x`; `u` is implied), through
/// [`build_regex`].
///
/// # Errors
/// [`Error::BadValue`] for an unknown option, a pattern over [`REGEX_PATTERN_BYTES_MAX`] or a
/// pattern the engine cannot compile.
pub(crate) fn compile_regex(pattern: &str, options: &str) -> Result<RegexCond> {
    let regex = build_regex(pattern, options).map_err(|fault| match fault {
        RegexFault::TooLong(len) => Error::bad(format!(
            "regular expression is {len} bytes, more than the limit of {REGEX_PATTERN_BYTES_MAX}"
        )),
        RegexFault::Flag(c) => Error::bad(format!("invalid flag in regex options: {c}")),
        RegexFault::Invalid(e) => Error::bad(format!("Regular expression is invalid: {e}")),
    })?;
    Ok(RegexCond {
        regex,
        pattern: pattern.to_owned(),
        options: options.to_owned(),
    })
}

impl RegexCond {
    fn matches(&self, v: &Bson) -> bool {
        match v {
            Bson::String(s) | Bson::Symbol(s) => self.regex.is_match(s),
            Bson::RegularExpression(r) => {
                r.pattern.as_str() == self.pattern && r.options.as_str() == self.options
            }
            _ => false,
        }
    }
}

/// What [`Filter::try_matches_on`] reads: a document, or one value under a field name (the
/// document `{field: value}` without building it).
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Document(&'a Document),
    Field(&'a str, &'a Bson),
}

/// What [`Filter::try_matches_on`] makes of an `$expr` that fails to evaluate.
#[derive(Debug, Clone, Copy)]
enum ExprError {
    /// The match fails with the error ([`Filter::try_matches`]).
    Fail,
    /// The clause is false ([`Filter::matches`]).
    NoMatch,
}

/// `f` on `parts` borrowed: called once per candidate document, paths of up to
/// `PATH_PARTS_INLINE` parts are borrowed on the stack instead of collected into a vector.
fn with_parts<R>(parts: &[String], f: impl FnOnce(&[&str]) -> R) -> R {
    let mut inline = [""; PATH_PARTS_INLINE];
    match inline.get_mut(..parts.len()) {
        Some(slots) => {
            for (slot, part) in slots.iter_mut().zip(parts) {
                *slot = part;
            }
            f(slots)
        }
        None => {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            f(&parts)
        }
    }
}

/// Evaluates a condition on every value a path reaches in `doc` (the path is followed once,
/// whatever the condition's nesting).
fn cond_matches_path(doc: &Document, parts: &[&str], cond: &Cond) -> bool {
    cond_matches_values(&collect_doc_path(doc, parts), cond)
}

/// Evaluates a condition on the reached values (`None` = missing branch).
fn cond_matches_values(reached: &[Option<&Bson>], cond: &Cond) -> bool {
    match cond {
        // `$ne`/`$nin` borrow their operand instead of building the positive condition: a
        // `$nin` list is evaluated once per candidate document.
        Cond::Ne(q) => !eq_matches_values(reached, q),
        Cond::Nin(items) => !in_matches_values(reached, items),
        Cond::Not(c) => !cond_matches_values(reached, c),
        Cond::And(cs) => cs.iter().all(|c| cond_matches_values(reached, c)),
        Cond::All(cs) => !cs.is_empty() && cs.iter().all(|c| cond_matches_values(reached, c)),
        Cond::Exists(want) => reached.iter().any(Option::is_some) == *want,
        Cond::Size(n) => reached
            .iter()
            .flatten()
            .any(|v| matches!(v, Bson::Array(a) if i64::try_from(a.len()).ok() == Some(*n))),
        Cond::ElemMatch(em) => reached.iter().flatten().any(|v| match v {
            Bson::Array(a) => a.iter().any(|el| elem_matches(el, em)),
            _ => false,
        }),
        Cond::Type(sels) => reached.iter().flatten().any(|v| {
            type_matches(v, sels)
                || matches!(v, Bson::Array(a) if a.iter().any(|el| type_matches(el, sels)))
        }),
        _ => any_reached(reached, matches_missing(cond), |v| scalar_matches(v, cond)),
    }
}

/// Whether some reached value, or an element of a reached array, passes `test`; a missing
/// branch counts as `missing`.
fn any_reached(reached: &[Option<&Bson>], missing: bool, test: impl Fn(&Bson) -> bool) -> bool {
    reached.iter().any(|r| match r {
        None => missing,
        Some(v) => test(v) || matches!(v, Bson::Array(a) if a.iter().any(&test)),
    })
}

/// `$eq` on the reached values (what `$ne` negates).
fn eq_matches_values(reached: &[Option<&Bson>], q: &Bson) -> bool {
    any_reached(reached, matches!(q, Bson::Null), |v| values_equal(v, q))
}

/// `$in` on the reached values (what `$nin` negates).
fn in_matches_values(reached: &[Option<&Bson>], items: &[InItem]) -> bool {
    any_reached(reached, in_matches_missing(items), |v| in_matches(v, items))
}

/// Whether a missing field satisfies `$in` (only a null item does).
fn in_matches_missing(items: &[InItem]) -> bool {
    items.iter().any(|i| matches!(i, InItem::Value(Bson::Null)))
}

/// Whether one value equals an item of `$in` or matches one of its regexes.
fn in_matches(v: &Bson, items: &[InItem]) -> bool {
    items.iter().any(|i| match i {
        InItem::Value(q) => values_equal(v, q),
        InItem::Regex(r) => r.matches(v),
    })
}

fn elem_matches(el: &Bson, em: &ElemMatch) -> bool {
    match em {
        ElemMatch::Doc(f) => matches!(el, Bson::Document(d) if f.matches(d)),
        ElemMatch::Value(c) => element_matches(el, c),
    }
}

/// `$elemMatch`'s operators on one array element, as MongoDB's `matchesSingleElement`: the
/// element itself, with no fan-out into it when it is an array, so every operator holds for
/// the same value (`{$elemMatch: {$gt: 4, $lt: 6}}` does not match `[[3, 7]]`, nor `[[5]]`).
fn element_matches(el: &Bson, cond: &Cond) -> bool {
    match cond {
        Cond::Ne(q) => !values_equal(el, q),
        Cond::Nin(items) => !in_matches(el, items),
        Cond::Not(c) => !element_matches(el, c),
        Cond::And(cs) => cs.iter().all(|c| element_matches(el, c)),
        Cond::All(cs) => !cs.is_empty() && cs.iter().all(|c| element_matches(el, c)),
        Cond::Exists(want) => *want,
        Cond::Size(n) => matches!(el, Bson::Array(a) if i64::try_from(a.len()).ok() == Some(*n)),
        Cond::Type(sels) => type_matches(el, sels),
        Cond::ElemMatch(em) => {
            matches!(el, Bson::Array(a) if a.iter().any(|x| elem_matches(x, em)))
        }
        positive => scalar_matches(el, positive),
    }
}

/// Whether a missing field satisfies a positive condition (only null equality does).
fn matches_missing(cond: &Cond) -> bool {
    match cond {
        Cond::Eq(q) | Cond::Gte(q) | Cond::Lte(q) => matches!(q, Bson::Null),
        Cond::In(items) => in_matches_missing(items),
        _ => false,
    }
}

/// A positive condition on one value (no array fan-out here).
fn scalar_matches(v: &Bson, cond: &Cond) -> bool {
    match cond {
        Cond::Eq(q) => values_equal(v, q),
        Cond::Gt(q) => bracket_cmp(v, q).is_some_and(Ordering::is_gt),
        Cond::Gte(q) => bracket_cmp(v, q).is_some_and(Ordering::is_ge),
        Cond::Lt(q) => bracket_cmp(v, q).is_some_and(Ordering::is_lt),
        Cond::Lte(q) => bracket_cmp(v, q).is_some_and(Ordering::is_le),
        Cond::In(items) => in_matches(v, items),
        Cond::Regex(r) => r.matches(v),
        Cond::Mod(d, r) => mod_dividend(v).is_some_and(|n| n.wrapping_rem(*d) == *r),
        _ => false,
    }
}

/// The 64-bit integer `$mod` divides, as MongoDB 7.0's `ModMatchExpression`: an integer as it
/// is, a double or a decimal truncated toward zero; `None` (no match) for another type, NaN,
/// an infinity or a value no 64-bit integer holds.
fn mod_dividend(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(x) => {
            let t = x.trunc();
            // The `i64` range (-2^63 is in it, 2^63 is not), written so that NaN fails it.
            (-document::TWO_POW_63..document::TWO_POW_63)
                .contains(&t)
                .then(|| {
                    #[expect(
                        clippy::cast_possible_truncation,
                        reason = "integral and inside the i64 range, checked above"
                    )]
                    let n = t as i64;
                    n
                })
        }
        Bson::Decimal128(_) => match decimal::quantize(v, 0, decimal::Rounding::Down) {
            // Exponent 0: the text is the integer's digits, or NaN/Infinity, which fail.
            Bson::Decimal128(q) => q.to_string().parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Compares within a type bracket; `None` when brackets differ (no match). MinKey and MaxKey
/// compare with everything.
fn bracket_cmp(v: &Bson, q: &Bson) -> Option<Ordering> {
    let (rv, rq) = (type_rank(v), type_rank(q));
    if rv == rq || matches!(q, Bson::MinKey | Bson::MaxKey) {
        Some(compare(v, q))
    } else {
        None
    }
}

impl Filter {
    /// Whether some condition of the filter (at any depth of `$and`/`$or`/`$nor`) is on a path
    /// whose first part is `field`: what a positional projection on `field` needs.
    pub(crate) fn has_path_under(&self, field: &str) -> bool {
        match self {
            Self::And(fs) | Self::Or(fs) | Self::Nor(fs) => {
                fs.iter().any(|f| f.has_path_under(field))
            }
            Self::Field { parts, .. } => parts.first().is_some_and(|p| p == field),
            Self::Expr(_) => false,
        }
    }

    /// MongoDB's "element match key" of a document this filter matches: the position, in the
    /// first array a condition's path crosses, of the element through which the condition held.
    /// Under `$and` the last condition that records one wins, under `$or` the first branch that
    /// matches; negations, `$exists` and `$size` record none, nor does a match of a whole array.
    pub(crate) fn elem_match_key(&self, doc: &Document) -> Option<usize> {
        match self {
            Self::And(fs) => fs.iter().rev().find_map(|f| f.elem_match_key(doc)),
            Self::Or(fs) => fs
                .iter()
                .find(|f| f.matches(doc))
                .and_then(|f| f.elem_match_key(doc)),
            Self::Nor(_) | Self::Expr(_) => None,
            Self::Field { parts, cond, .. } => {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                cond_key(doc, &parts, cond)
            }
        }
    }
}

/// [`Filter::elem_match_key`] of one field condition.
fn cond_key(doc: &Document, parts: &[&str], cond: &Cond) -> Option<usize> {
    match cond {
        Cond::And(cs) | Cond::All(cs) => cs.iter().rev().find_map(|c| cond_key(doc, parts, c)),
        Cond::Ne(_) | Cond::Nin(_) | Cond::Not(_) | Cond::Exists(_) | Cond::Size(_) => None,
        _ => {
            let (head, rest) = parts.split_first()?;
            match doc.get(*head)? {
                Bson::Document(d) => cond_key(d, rest, cond),
                Bson::Array(items) if rest.is_empty() => items.iter().position(|el| match cond {
                    Cond::ElemMatch(em) => elem_matches(el, em),
                    Cond::Type(sels) => type_matches(el, sels),
                    other => scalar_matches(el, other),
                }),
                Bson::Array(items) => items.iter().position(|el| match el {
                    Bson::Document(d) => cond_matches_path(d, rest, cond),
                    _ => false,
                }),
                _ => None,
            }
        }
    }
}

/// A parsed sort specification: `(path parts, ascending)` per key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sort {
    /// The keys in priority order.
    pub(crate) keys: Vec<(String, Vec<String>, bool)>,
}

impl Sort {
    /// Parses `{field: 1 | -1, …}`.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a direction other than 1 or -1, [`Error::TooMany`] for more
    /// than [`SORT_KEYS_MAX`] keys.
    pub(crate) fn parse(spec: &Document) -> Result<Self> {
        if spec.len() > SORT_KEYS_MAX {
            return Err(Error::TooMany {
                what: "the sort specification",
                len: spec.len(),
                max: SORT_KEYS_MAX,
            });
        }
        let mut keys = Vec::with_capacity(spec.len());
        for (path, dir) in spec {
            let d = document::as_f64(dir)
                .ok_or_else(|| Error::bad(format!("Illegal key in $sort specification: {path}")))?;
            let asc = if d == 1.0 {
                true
            } else if d == -1.0 {
                false
            } else {
                return Err(Error::bad(
                    "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
                ));
            };
            let parts = split_path_owned(path)?;
            keys.push((path.clone(), parts, asc));
        }
        Ok(Self { keys })
    }

    /// Whether there are no keys.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A document's sort key: the value it sorts by on each key ([`sort_key`]), computed once
    /// so that a sort compares keys instead of walking both documents at every comparison.
    pub(crate) fn key(&self, d: &Document) -> Vec<Bson> {
        self.keys
            .iter()
            .map(|(_, parts, asc)| {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                sort_key(d, &parts, *asc)
            })
            .collect()
    }

    /// Compares two keys made by [`Sort::key`] in the keys' directions.
    pub(crate) fn compare_keys(&self, a: &[Bson], b: &[Bson]) -> Ordering {
        for ((x, y), (_, _, asc)) in a.iter().zip(b).zip(&self.keys) {
            let o = sort_compare(x, y);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Compares two documents by the sort keys.
    pub(crate) fn compare(&self, a: &Document, b: &Document) -> Ordering {
        for (_, parts, asc) in &self.keys {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let ka = sort_key(a, &parts, *asc);
            let kb = sort_key(b, &parts, *asc);
            let o = sort_compare(&ka, &kb);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// Compares two sort keys ([`sort_key`]): as [`compare`], except that undefined (an empty
/// array's key) sorts after MinKey and before everything else, null included, as in
/// MongoDB's sort order (and the index order of [`super::keys::KeyFormat::V3`]).
pub(crate) fn sort_compare(a: &Bson, b: &Bson) -> Ordering {
    let rank = |v: &Bson| match v {
        Bson::MinKey => 0,
        Bson::Undefined => 1,
        _ => 2,
    };
    match (rank(a), rank(b)) {
        (2, 2) => compare(a, b),
        (x, y) => x.cmp(&y),
    }
}

/// The value a document sorts by: arrays contribute their smallest element ascending and their
/// largest descending; a missing field sorts as null and an empty array as undefined, below
/// null ([`sort_compare`]), as MongoDB sorts them (ascending, `[]` comes before a missing
/// field; descending, after it).
pub(crate) fn sort_key(doc: &Document, parts: &[&str], asc: bool) -> Bson {
    let mut best: Option<Bson> = None;
    let mut consider = |v: &Bson| {
        let better = match &best {
            None => true,
            Some(b) => {
                let o = sort_compare(v, b);
                if asc { o.is_lt() } else { o.is_gt() }
            }
        };
        if better {
            best = Some(v.clone());
        }
    };
    for r in collect_doc_path(doc, parts) {
        match r {
            None => consider(&Bson::Null),
            Some(Bson::Array(a)) if a.is_empty() => consider(&Bson::Undefined),
            Some(Bson::Array(a)) => a.iter().for_each(&mut consider),
            Some(v) => consider(v),
        }
    }
    best.unwrap_or(Bson::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn m(filter: Document, d: Document) -> bool {
        Filter::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn null_matches_missing_and_ne_matches_missing() {
        assert!(m(doc! {"a": null}, doc! {"b": 1}));
        assert!(m(doc! {"a": {"$ne": 1}}, doc! {"b": 1}));
        assert!(!m(doc! {"a": {"$gt": 1}}, doc! {"a": "x"}));
    }

    /// MongoDB's `ComparisonMatchExpression` and `InMatchExpression` refuse an `undefined`
    /// operand (BadValue), wherever the comparison sits.
    #[test]
    fn undefined_is_no_operand() {
        let message = |filter: Document| match Filter::parse(&filter) {
            Err(Error::BadValue(m)) => m,
            other => panic!("{filter}: {other:?}"),
        };
        for filter in [
            doc! {"a": Bson::Undefined},
            doc! {"a": {"$eq": Bson::Undefined}},
            doc! {"a": {"$ne": Bson::Undefined}},
            doc! {"a": {"$gt": Bson::Undefined}},
            doc! {"a": {"$gte": Bson::Undefined}},
            doc! {"a": {"$lt": Bson::Undefined}},
            doc! {"a": {"$lte": Bson::Undefined}},
            doc! {"a": {"$not": {"$eq": Bson::Undefined}}},
            doc! {"a": {"$all": [Bson::Undefined]}},
            doc! {"a": {"$elemMatch": {"b": Bson::Undefined}}},
            doc! {"$or": [{"a": 1}, {"b": Bson::Undefined}]},
        ] {
            assert_eq!(message(filter), "cannot compare to undefined");
        }
        for filter in [
            doc! {"a": {"$in": [1, Bson::Undefined]}},
            doc! {"a": {"$nin": [Bson::Undefined]}},
        ] {
            assert_eq!(
                message(filter),
                "InMatchExpression equality cannot be undefined"
            );
        }
        // Null is an operand (it matches missing fields).
        assert!(m(doc! {"a": null}, doc! {}));
    }

    #[test]
    fn array_conditions_may_use_different_elements() {
        let d = doc! {"a": [0, 10]};
        assert!(m(doc! {"a": {"$gt": 5, "$lt": 5}}, d.clone()));
        assert!(!m(doc! {"a": {"$elemMatch": {"$gt": 5, "$lt": 5}}}, d));
    }

    /// MongoDB's jstests `elemmatch_value.js`: `$elemMatch` operators hold for one element
    /// itself, never for the elements of an element that is an array.
    #[test]
    fn elem_match_operators_hold_for_the_element_itself() {
        let docs = [
            doc! {"_id": 1, "a": 5},
            doc! {"_id": 2, "a": [5]},
            doc! {"_id": 3, "a": [1, 5]},
            doc! {"_id": 4, "a": [[5]]},
            doc! {"_id": 5, "a": [[3, 7]]},
            doc! {"_id": 6, "a": [[5], 3]},
            doc! {"_id": 7, "a": [[[5]]]},
            doc! {"_id": 8, "a": ["x", [2]]},
        ];
        let ids = |filter: Document| -> Vec<i32> {
            let f = Filter::parse(&filter).unwrap();
            docs.iter()
                .filter(|d| f.matches(d))
                .map(|d| d.get_i32("_id").unwrap())
                .collect()
        };
        let em = |cond: Document| doc! {"a": {"$elemMatch": cond}};
        assert_eq!(ids(em(doc! {"$lt": 6, "$gt": 4})), [2, 3]);
        assert_eq!(ids(em(doc! {"$type": "number"})), [2, 3, 6]);
        assert_eq!(ids(em(doc! {"$type": "array"})), [4, 5, 6, 7, 8]);
        assert_eq!(ids(em(doc! {"$elemMatch": {"$lt": 6, "$gt": 4}})), [4, 6]);
        assert_eq!(ids(em(doc! {"$eq": [5]})), [4, 6]);
        assert_eq!(ids(em(doc! {"$size": 2})), [5]);
        assert_eq!(ids(em(doc! {"$ne": 5})), [3, 4, 5, 6, 7, 8]);
        assert_eq!(ids(em(doc! {"$not": {"$gt": 4}})), [3, 4, 5, 6, 7, 8]);
        assert_eq!(ids(em(doc! {"$in": [5, "x"]})), [2, 3, 8]);
        assert_eq!(ids(em(doc! {"$exists": true})), [2, 3, 4, 5, 6, 7, 8]);
    }

    /// A filter read on one value under a field name (an array filter on an element) gives
    /// what it gives on the document `{field: value}`, without that document being built:
    /// paths through and beside the field, arrays fanned out, missing fields, `$expr`.
    #[test]
    fn a_filter_on_a_field_value_is_the_filter_on_its_document() {
        let values = [
            Bson::Int32(5),
            Bson::Null,
            Bson::String("x".into()),
            Bson::Array(vec![Bson::Int32(1), Bson::Int32(5)]),
            Bson::Array(vec![
                Bson::Document(doc! {"b": 2}),
                Bson::Document(doc! {"b": 7}),
            ]),
            Bson::Document(doc! {"b": 2, "c": {"d": [1, 2]}}),
            Bson::Document(doc! {"b": [2, 3]}),
            Bson::Document(doc! {}),
        ];
        let filters = [
            doc! {"e": 5},
            doc! {"e": null},
            doc! {"e": {"$gte": 2}},
            doc! {"e": {"$exists": false}},
            doc! {"e": {"$type": "array"}},
            doc! {"e": {"$size": 2}},
            doc! {"e": {"$ne": 5}},
            doc! {"e.b": 2},
            doc! {"e.b": {"$in": [3, 7]}},
            doc! {"e.c.d": 2},
            doc! {"e.1": 5},
            doc! {"e.0.b": 2},
            doc! {"e.b": {"$exists": false}},
            doc! {"e.b": {"$elemMatch": {"$gt": 2}}},
            doc! {"$or": [{"e": 5}, {"e.b": 2}]},
            doc! {"$nor": [{"e": {"$type": "string"}}]},
            doc! {"f": null},
            doc! {"f": {"$exists": true}},
            doc! {"$expr": {"$eq": ["$e", 5]}},
        ];
        for filter in &filters {
            let f = Filter::parse_at(filter, 0).unwrap();
            for value in &values {
                let whole = f.try_matches(&doc! {"e": value.clone()}).unwrap();
                assert_eq!(
                    f.try_matches_field("e", value).unwrap(),
                    whole,
                    "{filter} on {value}"
                );
            }
        }
    }
}
