//! `$densify` (MongoDB 7.0's `document_source_densify.cpp`, as its tests describe it): the
//! documents are sorted (by `field` for `bounds: "full"`, else by `partitionByFields` then
//! `field`), and within each partition the missing values of `field` on the step grid are
//! made as new documents holding only the partition fields and `field`. The grid starts at the
//! partition's first value (`"partition"`), at the smallest value of all partitions (`"full"`,
//! up to and including the largest), or at the lower bound of an explicit `[lower, upper)`.
//! A value off the grid is kept and does not move it. Numbers step by `$add`, dates by
//! `$dateAdd` with the `unit` (calendar months for `month`, `quarter`, `year`).

use bson::{Bson, Document};

use super::super::document::{self, compare, get_path, split_path};
use super::super::error::{Error, Result};
use super::super::query::{self, Sort};
use super::super::{MemoryBudget, deadline, held_size};
use super::date_arith::{self, Unit};
use super::fill::set_nested;
use super::window::{missing_field, unknown_field};
use super::zone::Zone;
use super::{EqualityIndex, Expr, add, expr, field_path};

/// MongoDB's `internalQueryMaxAllowedDensifyDocs`: the documents one `$densify` may make.
pub(crate) const DENSIFY_DOCS_MAX: usize = 500_000;

/// Where the grid runs.
#[derive(Debug, Clone, PartialEq)]
enum Bounds {
    /// From the smallest value of all partitions to the largest, in every partition.
    Full,
    /// From each partition's first value to its last.
    Partition,
    /// From `lower` (on the grid) to below `upper`.
    Explicit(Box<(Bson, Bson)>),
}

/// A `$densify` stage, parsed.
pub(super) struct Densify {
    field: String,
    partition_fields: Vec<String>,
    step: Bson,
    unit: Option<Unit>,
    bounds: Bounds,
    /// The sort MongoDB puts before the stage.
    sort: Sort,
    /// The partition key as MongoDB builds it: the object expression `{pf: "$pf", …}` (dotted
    /// fields nested), so a path through an array gathers its values.
    key: Option<Expr>,
}

fn failed(code: i32, message: impl Into<String>) -> Error {
    expr::parse_error(code, message)
}

fn wrong_type(field: &str, v: &Bson, expected: &str) -> Error {
    failed(
        14,
        format!(
            "BSON field '$densify.{field}' is the wrong type '{}', expected {expected}",
            query::type_name(Some(v))
        ),
    )
}

/// One partition's place on the grid.
struct Partition {
    /// Its key: a document of the partition fields it has, where they are in its documents.
    key: Bson,
    /// The next value of the grid to make; `None` before its first value.
    next: Option<Bson>,
    /// Past an explicit upper bound: nothing more is made.
    done: bool,
}

impl Densify {
    pub(super) fn parse(arg: &Bson, now_ms: i64) -> Result<Self> {
        let Bson::Document(spec) = arg else {
            return Err(failed(
                9,
                format!(
                    "The $densify stage specification must be an object, found {}",
                    query::type_name(Some(arg))
                ),
            ));
        };
        let (mut field, mut partition_fields, mut range) = (None, Vec::new(), None);
        for (k, v) in spec {
            match k.as_str() {
                "field" => match v {
                    Bson::String(f) => field = Some(f.clone()),
                    _ => return Err(wrong_type(k, v, "type 'string'")),
                },
                "partitionByFields" => {
                    let Bson::Array(items) = v else {
                        return Err(wrong_type(k, v, "type 'array'"));
                    };
                    for (i, item) in items.iter().enumerate() {
                        let Bson::String(f) = item else {
                            return Err(wrong_type(&format!("{k}.{i}"), item, "type 'string'"));
                        };
                        partition_fields.push(f.clone());
                    }
                }
                "range" => {
                    let Bson::Document(r) = v else {
                        return Err(wrong_type(k, v, "type 'object'"));
                    };
                    range = Some(parse_range_fields(r)?);
                }
                _ => return Err(unknown_field("$densify", k)),
            }
        }
        let Some(field) = field else {
            return Err(missing_field("$densify", "field"));
        };
        let Some((step, unit, bounds)) = range else {
            return Err(missing_field("$densify", "range"));
        };
        let (unit, bounds) = check_range(&step, unit, bounds)?;
        for p in &partition_fields {
            if p.starts_with(field.as_str()) {
                return Err(failed(
                    8_993_000,
                    format!(
                        "partitionByFields '{p}' cannot include field '{field}' that is being densified."
                    ),
                ));
            }
            if field.starts_with(p.as_str()) {
                return Err(failed(
                    9_554_500,
                    format!(
                        "field '{field}' that is being densified cannot include partitionByFields '{p}'."
                    ),
                ));
            }
            field_path(p)?;
        }
        field_path(&field)?;
        if bounds == Bounds::Partition && partition_fields.is_empty() {
            return Err(failed(
                5_733_408,
                "One cannot specify the bounds as 'partition' without specifying a non-empty array of partitionByFields. You may have meant to specify 'full' bounds.",
            ));
        }
        let mut order = Document::new();
        if bounds != Bounds::Full {
            for p in &partition_fields {
                order.insert(p.clone(), 1);
            }
        }
        order.insert(field.clone(), 1);
        let key = if partition_fields.is_empty() {
            None
        } else {
            let mut object = Document::new();
            for p in &partition_fields {
                set_nested(&mut object, &split_path(p)?, Bson::String(format!("${p}")));
            }
            Some(expr::compile(&Bson::Document(object), now_ms)?)
        };
        Ok(Self {
            key,
            sort: Sort::parse(&order)?,
            field,
            partition_fields,
            step,
            unit,
            bounds,
        })
    }

    pub(super) fn run(&self, docs: Vec<Document>, held: MemoryBudget) -> Result<Vec<Document>> {
        self.run_limited(docs, held, DENSIFY_DOCS_MAX)
    }

    /// [`Densify::run`] with at most `max_made` documents made (5897900 past it).
    fn run_limited(
        &self,
        docs: Vec<Document>,
        mut held: MemoryBudget,
        max_made: usize,
    ) -> Result<Vec<Document>> {
        let mut keyed = Vec::with_capacity(docs.len());
        for d in docs {
            let key = self.sort.key(&d);
            held.charge(held_size(&key, &d))?;
            keyed.push((key, d));
        }
        keyed.sort_by(|(a, _), (b, _)| self.sort.compare_keys(a, b));
        let field = split_path(&self.field)?;
        let value_of = |d: &Document| value_at(d, &field).cloned();
        // "full": the grid runs from the smallest value to the largest, of all partitions.
        let (lowest, highest) = if self.bounds == Bounds::Full {
            let first = keyed.iter().find_map(|(_, d)| value_of(d));
            let last = keyed.iter().rev().find_map(|(_, d)| value_of(d));
            (first, last)
        } else {
            (None, None)
        };
        let mut run = Run {
            stage: self,
            field: &field,
            held: &mut held,
            out: Vec::with_capacity(keyed.len()),
            made: 0,
            max_made,
        };
        let mut partitions: Vec<Partition> = Vec::new();
        let mut index = EqualityIndex::default();
        for (_, d) in keyed {
            deadline::check()?;
            let Some(v) = value_of(&d) else {
                run.out.push(d);
                continue;
            };
            self.check_value(&v)?;
            let key = match &self.key {
                Some(e) => e
                    .eval_doc(&d)?
                    .unwrap_or_else(|| Bson::Document(Document::new())),
                None => Bson::Document(Document::new()),
            };
            let (found, hash) = index.find(&partitions, &key, |p| &p.key);
            let at = match found {
                Some(i) => i,
                None => {
                    index.add(hash, partitions.len());
                    partitions.push(Partition {
                        key,
                        next: None,
                        done: false,
                    });
                    partitions.len() - 1
                }
            };
            let Some(p) = partitions.get_mut(at) else {
                run.out.push(d);
                continue;
            };
            match &self.bounds {
                Bounds::Partition if p.next.is_none() => p.next = Some(self.step_from(&v)?),
                Bounds::Partition => run.up_to(p, &v, None)?,
                Bounds::Full => {
                    if p.next.is_none() {
                        p.next = lowest.clone();
                    }
                    run.up_to(p, &v, None)?;
                }
                Bounds::Explicit(range) => {
                    let (lower, upper) = &**range;
                    if p.next.is_none() {
                        p.next = Some(lower.clone());
                    }
                    if compare(&v, lower).is_lt() || p.done {
                        // Below the range (or past it): kept, nothing made.
                    } else if compare(&v, upper).is_lt() {
                        run.up_to(p, &v, Some(upper))?;
                    } else {
                        run.fill(p, |next| compare(next, upper).is_lt())?;
                        p.done = true;
                    }
                }
            }
            run.out.push(d);
        }
        // The grid's tail after each partition's last document.
        match &self.bounds {
            Bounds::Partition => {}
            Bounds::Full => {
                if let Some(highest) = &highest {
                    for p in &mut partitions {
                        run.fill(p, |next| !compare(next, highest).is_gt())?;
                    }
                }
            }
            Bounds::Explicit(range) => {
                let (lower, upper) = &**range;
                // Without partitions the range is made even with no value in the input.
                if partitions.is_empty() && self.partition_fields.is_empty() {
                    partitions.push(Partition {
                        key: Bson::Document(Document::new()),
                        next: Some(lower.clone()),
                        done: false,
                    });
                }
                for p in partitions.iter_mut().filter(|p| !p.done) {
                    run.fill(p, |next| compare(next, upper).is_lt())?;
                }
            }
        }
        Ok(run.out)
    }

    /// A value of `field` is a number, or a date when the step has a unit.
    fn check_value(&self, v: &Bson) -> Result<()> {
        match (v, self.unit) {
            (Bson::DateTime(_), Some(_)) => Ok(()),
            (Bson::DateTime(_), None) => Err(Error::expression(
                6_053_600,
                "Encountered date densify value in collection when step does not have a date unit.",
            )),
            (n, Some(_)) if expr::numeric(n) => Err(Error::expression(
                6_053_600,
                "Encountered numeric densify value in collection when step has a date unit.",
            )),
            (n, None) if expr::numeric(n) => Ok(()),
            _ => Err(Error::expression(
                5_733_201,
                "Densify field type must be numeric or a date",
            )),
        }
    }

    /// `v` plus one step: `$add` for numbers, `$dateAdd` of the unit for dates.
    fn step_from(&self, v: &Bson) -> Result<Bson> {
        match (v, self.unit) {
            (Bson::DateTime(t), Some(unit)) => {
                // A whole number (checked when parsed), of any numeric type.
                let amount = super::coerce_to_long(&self.step);
                date_arith::date_add(t.timestamp_millis(), unit, amount, &Zone::UTC)
                    .map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms)))
                    .ok_or_else(|| Error::expression(5_166_406, "dateAdd overflowed"))
            }
            _ => Ok(add(v, &self.step)),
        }
    }
}

/// The output being built, and the documents made so far.
struct Run<'a> {
    stage: &'a Densify,
    field: &'a [&'a str],
    held: &'a mut MemoryBudget,
    out: Vec<Document>,
    made: usize,
    max_made: usize,
}

impl Run<'_> {
    /// Makes partition `p`'s grid values below `v` (and below `upper`), then, when `v` is the
    /// grid's next value, moves the grid past it. The caller keeps the document of `v`.
    fn up_to(&mut self, p: &mut Partition, v: &Bson, upper: Option<&Bson>) -> Result<()> {
        self.fill(p, |next| {
            compare(next, v).is_lt() && upper.is_none_or(|u| compare(next, u).is_lt())
        })?;
        if p.next.as_ref().is_some_and(|next| compare(next, v).is_eq()) {
            p.next = Some(self.stage.step_from(v)?);
        }
        Ok(())
    }

    /// Makes `p`'s grid values from its next one while `more` holds for them.
    fn fill(&mut self, p: &mut Partition, more: impl Fn(&Bson) -> bool) -> Result<()> {
        while let Some(next) = p.next.take() {
            if !more(&next) {
                p.next = Some(next);
                break;
            }
            deadline::check()?;
            self.made += 1;
            if self.made > self.max_made {
                return Err(Error::expression(
                    5_897_900,
                    format!(
                        "Generated {} documents in $densify, which is over the limit of {}. Increase the 'internalQueryMaxAllowedDensifyDocs' parameter to allow more generated documents",
                        self.made, self.max_made
                    ),
                ));
            }
            let mut d = match &p.key {
                Bson::Document(key) => key.clone(),
                _ => Document::new(),
            };
            set_nested(&mut d, self.field, next.clone());
            self.held.charge(document::bson_size(&d))?;
            self.out.push(d);
            p.next = Some(self.stage.step_from(&next)?);
        }
        Ok(())
    }
}

/// The value of `field` in `d`; `None` when it is missing, null or undefined (MongoDB's
/// nullish: the document is kept as it is).
fn value_at<'d>(d: &'d Document, field: &[&str]) -> Option<&'d Bson> {
    get_path(d, field).filter(|v| !matches!(v, Bson::Null | Bson::Undefined))
}

/// The fields of `range`: `step` (a number), `unit` (a string) and `bounds` (anything), with
/// the IDL's errors for unknown, mistyped and missing fields.
fn parse_range_fields(r: &Document) -> Result<(Bson, Option<&str>, &Bson)> {
    let (mut step, mut unit, mut bounds) = (None, None, None);
    for (k, v) in r {
        match k.as_str() {
            "step" if expr::numeric(v) => step = Some(v.clone()),
            "step" => {
                return Err(wrong_type(
                    "range.step",
                    v,
                    "types '[int, decimal, double, long']'",
                ));
            }
            "unit" => match v {
                Bson::String(u) => unit = Some(u.as_str()),
                _ => return Err(wrong_type("range.unit", v, "type 'string'")),
            },
            "bounds" => bounds = Some(v),
            _ => return Err(unknown_field("$densify.range", k)),
        }
    }
    let step = step.ok_or_else(|| missing_field("$densify.range", "step"))?;
    let bounds = bounds.ok_or_else(|| missing_field("$densify.range", "bounds"))?;
    Ok((step, unit, bounds))
}

/// MongoDB's `RangeStatement::parse` after the IDL: the step, the unit and the bounds, in its
/// order of checks.
fn check_range(step: &Bson, unit: Option<&str>, bounds: &Bson) -> Result<(Option<Unit>, Bounds)> {
    if !document::as_f64(step).is_some_and(|s| s > 0.0) {
        return Err(failed(
            5_733_401,
            "The step parameter in a range statement must be a strictly positive numeric value",
        ));
    }
    let unit = match unit {
        None => None,
        Some(u) => {
            let whole =
                document::as_f64(step).is_some_and(|s| s.fract() == 0.0 && s < super::TWO_POW_63);
            if !whole {
                return Err(failed(
                    6_586_400,
                    "The step parameter in a range statement must be a whole number when densifying a date range",
                ));
            }
            Some(
                date_arith::unit_named(u)
                    .ok_or_else(|| failed(9, format!("unknown time unit value: {u}")))?,
            )
        }
    };
    let bounds = match bounds {
        Bson::Array(a) => {
            let [lower, upper] = a.as_slice() else {
                return Err(failed(
                    5_733_403,
                    "A bounding array in a range statement must have exactly two elements",
                ));
            };
            if compare(lower, upper).is_gt() {
                return Err(failed(
                    5_733_402,
                    "A bounding array must be an ascending array of either two dates or two numbers",
                ));
            }
            if expr::numeric(lower) {
                if unit.is_some() {
                    return Err(failed(
                        5_733_409,
                        "Numeric bounds may not have unit parameter",
                    ));
                }
                if !expr::numeric(upper) {
                    return Err(failed(
                        5_733_406,
                        "A bounding array must contain either both dates or both numeric types",
                    ));
                }
                if std::mem::discriminant(lower) != std::mem::discriminant(upper)
                    || std::mem::discriminant(lower) != std::mem::discriminant(step)
                {
                    return Err(failed(
                        5_876_900,
                        "Upper bound, lower bound, and step must all have the same type",
                    ));
                }
            } else if matches!(lower, Bson::DateTime(_)) {
                if !matches!(upper, Bson::DateTime(_)) {
                    return Err(failed(
                        5_733_405,
                        "A bounding array must contain either both dates or both numeric types",
                    ));
                }
                if unit.is_none() {
                    return Err(failed(
                        5_733_410,
                        "A bounding array of dates must specify a unit",
                    ));
                }
            } else {
                return Err(failed(
                    5_946_800,
                    "Explicit bounds must be numeric or dates",
                ));
            }
            Bounds::Explicit(Box::new((lower.clone(), upper.clone())))
        }
        Bson::String(s) if s == "full" => Bounds::Full,
        Bson::String(s) if s == "partition" => Bounds::Partition,
        Bson::String(_) => {
            return Err(failed(
                5_946_802,
                "Bounds string must either be 'full' or 'partition'",
            ));
        }
        _ => {
            return Err(failed(
                5_733_404,
                "The bounds in a range statement must be the string 'full', 'partition', or an ascending array of two numbers or two dates",
            ));
        }
    };
    Ok((unit, bounds))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::{Bson, Document, doc};

    use super::super::super::{Executor, MemoryBudget};
    use super::Densify;

    fn budget() -> MemoryBudget {
        MemoryBudget {
            used: 0,
            max: usize::MAX,
            executor: Executor::Aggregation,
            stage: "$densify",
            allow_disk_use: false,
        }
    }

    fn made(spec: Document, docs: Vec<Document>, max: usize) -> Result<usize, i32> {
        let n = docs.len();
        Densify::parse(&Bson::Document(spec), 0)
            .unwrap()
            .run_limited(docs, budget(), max)
            .map(|out| out.len() - n)
            .map_err(|e| e.code())
    }

    /// The cases of MongoDB's `generated_limit.js` with the limit at 10: making exactly the
    /// limit succeeds, one more is 5897900; the count is shared by every partition.
    #[test]
    fn the_documents_made_are_at_most_the_limit() {
        let range = |step: i32, upper: i32| doc! {"field": "val", "range": {"step": step, "bounds": [0, upper]}};
        assert_eq!(made(range(1, 10), vec![], 10), Ok(10));
        assert_eq!(made(range(1, 11), vec![], 10), Err(5_897_900));
        assert_eq!(made(range(4, 45), vec![], 10), Err(5_897_900));
        let full = doc! {"field": "val", "range": {"step": 1, "bounds": "full"}};
        let ends = vec![doc! {"val": 0, "part": 1}, doc! {"val": 12, "part": 1}];
        assert_eq!(made(full.clone(), ends.clone(), 10), Err(5_897_900));
        let mut with_five = ends.clone();
        with_five.push(doc! {"val": 5, "part": 1});
        assert_eq!(made(full, with_five, 10), Ok(10));
        let mut two = ends;
        two.extend([doc! {"val": 0, "part": 2}, doc! {"val": 12, "part": 2}]);
        let by_part = doc! {"field": "val", "partitionByFields": ["part"], "range": {"step": 1, "bounds": "partition"}};
        assert_eq!(made(by_part.clone(), two.clone(), 20), Err(5_897_900));
        assert_eq!(made(by_part, two, 22), Ok(22));
    }
}
