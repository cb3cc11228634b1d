//! `$fill` (MongoDB 7.0's `document_source_fill.cpp`): null and missing fields filled with a
//! value (`{value: <expression>}`, desugared as MongoDB does into `$addFields` of `$ifNull`)
//! or by a method over each partition in `sortBy` order — `locf` (the last non-null value
//! carried forward, null before the first) and `linear` (interpolated between the non-null
//! values around it on the single `sortBy` field, null outside them) — as MongoDB's
//! `$setWindowFields` with `$locf` and `$linearFill` runs them: the documents come out sorted
//! by partition, then by `sortBy`.

use bson::{Bson, Document};

use super::super::document::{self, get_path, split_path};
use super::super::error::{Error, Result};
use super::super::query::{self, Sort};
use super::super::{MemoryBudget, deadline};
use super::reshape::Reshape;
use super::window;
use super::{
    Expr, add_operands, divide_operands, expr, multiply_operands, nullish, subtract_operands,
};

/// How a field is filled by a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Locf,
    Linear,
}

/// A `$fill` stage, parsed.
pub(super) struct Fill {
    /// `partitionBy`, or `partitionByFields` as the object expression MongoDB makes of it.
    partition: Option<Expr>,
    sort: Option<Sort>,
    /// The output fields filled by a method, in the specification's order.
    methods: Vec<(String, Method)>,
    /// Each method's input: its field as a field path expression.
    reads: Vec<Expr>,
    /// The `$addFields` of `{field: {$ifNull: ["$field", <value>]}}` for the value outputs.
    values: Option<Reshape>,
}

fn wrong_type(field: &str, v: &Bson, expected: &str) -> Error {
    expr::parse_error(
        14,
        format!(
            "BSON field '$fill.{field}' is the wrong type '{}', expected {expected}",
            query::type_name(Some(v))
        ),
    )
}

impl Fill {
    pub(super) fn parse(arg: &Bson, now_ms: i64) -> Result<Self> {
        let Bson::Document(spec) = arg else {
            return Err(expr::parse_error(
                9,
                format!(
                    "The $fill stage specification must be an object, found {}",
                    query::type_name(Some(arg))
                ),
            ));
        };
        let (mut sort_by, mut partition_by, mut partition_fields, mut output) =
            (None, None, None, None);
        for (k, v) in spec {
            match k.as_str() {
                "sortBy" => match v {
                    Bson::Document(d) => sort_by = Some(d),
                    _ => return Err(wrong_type(k, v, "type 'object'")),
                },
                "partitionBy" => match v {
                    Bson::String(_) | Bson::Document(_) => partition_by = Some(v),
                    _ => return Err(wrong_type(k, v, "types '[string, object]'")),
                },
                "partitionByFields" => {
                    let Bson::Array(items) = v else {
                        return Err(wrong_type(k, v, "type 'array'"));
                    };
                    let mut fields = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let Bson::String(f) = item else {
                            return Err(wrong_type(&format!("{k}.{i}"), item, "type 'string'"));
                        };
                        fields.push(f.as_str());
                    }
                    partition_fields = Some(fields);
                }
                "output" => match v {
                    Bson::Document(d) => output = Some(d),
                    _ => return Err(wrong_type(k, v, "type 'object'")),
                },
                _ => return Err(window::unknown_field("$fill", k)),
            }
        }
        let Some(output) = output else {
            return Err(window::missing_field("$fill", "output"));
        };
        if output.is_empty() {
            return Err(expr::parse_error(
                6_050_203,
                "The output field in '$fill' must contain an object with at least one element",
            ));
        }
        let (mut methods, mut values) = (Vec::new(), Document::new());
        for (field, field_spec) in output {
            let Bson::Document(field_spec) = field_spec else {
                return Err(expr::parse_error(
                    6_050_200,
                    "Each fill output specification must be an object with exactly one field",
                ));
            };
            let (mut method, mut value) = (None, None);
            for (k, v) in field_spec {
                match k.as_str() {
                    "method" => match v {
                        Bson::String(m) => method = Some(m.as_str()),
                        _ => return Err(wrong_type(k, v, "type 'string'")),
                    },
                    "value" => value = Some(v),
                    _ => return Err(window::unknown_field("$fill", k)),
                }
            }
            if let Some(method) = method {
                if value.is_some() {
                    return Err(expr::parse_error(
                        6_050_201,
                        "Each fill output specification must have exactly one of 'method' or 'value' fields, not both",
                    ));
                }
                let method = match method {
                    "locf" => Method::Locf,
                    "linear" => Method::Linear,
                    _ => {
                        return Err(expr::parse_error(
                            6_050_202,
                            "Method must be either locf or linear",
                        ));
                    }
                };
                methods.push((field.clone(), method));
            }
            if let Some(value) = value {
                let mut if_null = Document::new();
                if_null.insert(
                    "$ifNull",
                    vec![Bson::String(format!("${field}")), value.clone()],
                );
                values.insert(field.clone(), if_null);
            }
        }
        if partition_by.is_some() && partition_fields.is_some() {
            return Err(expr::parse_error(
                6_050_204,
                "Maximum one of 'partitionBy' and 'partitionByFields can be specified in '$fill'",
            ));
        }
        // The window stage, and with it the partition and the sort, exists only for methods.
        let (mut partition, mut sort) = (None, None);
        let mut reads = Vec::with_capacity(methods.len());
        if !methods.is_empty() {
            partition = match (partition_by, partition_fields) {
                (Some(p), _) => Some(expr::compile(p, now_ms)?),
                (None, Some(fields)) => {
                    let mut object = Document::new();
                    for f in fields {
                        object.insert(f, format!("${f}"));
                    }
                    Some(expr::compile(&Bson::Document(object), now_ms)?)
                }
                (None, None) => None,
            };
            sort = sort_by.map(Sort::parse).transpose()?;
            if methods.iter().any(|(_, m)| *m == Method::Linear)
                && sort.as_ref().is_none_or(|s| s.keys.len() != 1)
            {
                return Err(expr::parse_error(
                    605_001,
                    "$linearFill must be specified with a top level sortBy expression with exactly one element",
                ));
            }
            for (i, (field, _)) in methods.iter().enumerate() {
                // Each output is read as the field path `$setWindowFields` gives its function.
                reads.push(expr::compile(&Bson::String(format!("${field}")), now_ms)?);
                window::check_output_path(
                    methods.iter().take(i).map(|(other, _)| other.as_str()),
                    field,
                )?;
            }
        }
        let values = if values.is_empty() {
            None
        } else {
            Reshape::parse("$addFields", &Bson::Document(values), now_ms)?
        };
        Ok(Self {
            partition,
            sort,
            methods,
            reads,
            values,
        })
    }

    /// Folds the stage's constant expressions.
    pub(super) fn fold(&mut self) -> Result<()> {
        if let Some(p) = self.partition.take() {
            self.partition = Some(p.fold()?);
        }
        self.values.as_mut().map_or(Ok(()), Reshape::fold)
    }

    pub(super) fn run(&self, docs: Vec<Document>, mut held: MemoryBudget) -> Result<Vec<Document>> {
        let mut docs = if self.methods.is_empty() {
            docs
        } else {
            self.fill_by_methods(docs, &mut held)?
        };
        if let Some(values) = &self.values {
            docs = docs
                .into_iter()
                .map(|d| values.apply(d))
                .collect::<Result<_>>()?;
        }
        Ok(docs)
    }

    /// Sorts by partition and `sortBy` (holding every document, as the `$sort` MongoDB puts
    /// before `$setWindowFields` does; without either, the documents keep their order), then
    /// fills each method's field partition by partition.
    fn fill_by_methods(
        &self,
        docs: Vec<Document>,
        held: &mut MemoryBudget,
    ) -> Result<Vec<Document>> {
        window::partitioned(
            docs,
            self.partition.as_ref(),
            self.sort.as_ref(),
            "An expression used to partition cannot evaluate to value of type array",
            held,
            |partition, _| self.fill_partition(partition),
        )
    }

    /// Fills one partition: every method's values are computed from the documents as they
    /// came in, then written, as `$setWindowFields` computes all its outputs before setting
    /// them.
    fn fill_partition(&self, partition: &mut [Document]) -> Result<()> {
        let mut outputs = Vec::with_capacity(self.methods.len());
        for ((field, method), read) in self.methods.iter().zip(&self.reads) {
            let inputs = partition
                .iter()
                .map(|d| read.eval_doc(d))
                .collect::<Result<Vec<_>>>()?;
            let values = match method {
                Method::Locf => locf(inputs),
                Method::Linear => linear(self.sort.as_ref(), partition, &inputs)?,
            };
            outputs.push((field, values));
        }
        for (field, values) in outputs {
            let parts = split_path(field)?;
            for (d, v) in partition.iter_mut().zip(values) {
                set_nested(d, &parts, v);
            }
        }
        Ok(())
    }
}

/// `$linearFill` over one partition in order, as MongoDB's executor walks it: each
/// document's value and sort key checked when it is reached; a null or missing value
/// interpolated between the last known point and the next document with a value and a
/// sort key (found once per gap), null without either.
pub(super) fn linear(
    sort: Option<&Sort>,
    partition: &[Document],
    inputs: &[Option<Bson>],
) -> Result<Vec<Bson>> {
    let Some((_, sort_parts, _)) = sort.and_then(|s| s.keys.first()) else {
        return Ok(vec![Bson::Null; partition.len()]);
    };
    let sort_parts: Vec<&str> = sort_parts.iter().map(String::as_str).collect();
    let xs: Vec<Option<Bson>> = partition
        .iter()
        .map(|d| get_path(d, &sort_parts).cloned())
        .collect();
    // The next document at or after each position with both a value and a sort key.
    let mut next_point = vec![None; partition.len()];
    let mut seen = None;
    for i in (0..partition.len()).rev() {
        deadline::check()?;
        let known = inputs.get(i).is_some_and(|y| !nullish(y.as_ref()))
            && xs.get(i).is_some_and(|x| !nullish(x.as_ref()));
        if known {
            seen = Some(i);
        }
        if let Some(slot) = next_point.get_mut(i) {
            *slot = seen;
        }
    }
    let mut out = Vec::with_capacity(partition.len());
    let mut last_x: Option<Bson> = None;
    let mut before: Option<(Bson, Bson)> = None;
    for (i, (y, x)) in inputs.iter().zip(&xs).enumerate() {
        deadline::check()?;
        let y = y.clone();
        if !(nullish(y.as_ref()) || y.as_ref().is_some_and(expr::numeric)) {
            return Err(Error::expression(
                14,
                format!(
                    "Value to be filled must be numeric or nullish, but found {}",
                    query::type_name(y.as_ref())
                ),
            ));
        }
        let x = x.clone().unwrap_or(Bson::Null);
        if !(expr::numeric(&x) || date_like(&x)) {
            return Err(Error::expression(
                14,
                format!(
                    "Value of the sortBy field must be numeric or a date, but found {}",
                    query::type_name(Some(&x))
                ),
            ));
        }
        if let Some(last) = &last_x {
            if document::values_equal(last, &x) {
                return Err(Error::expression(
                    6_050_106,
                    "There can be no repeated values in the sort field in the same partition",
                ));
            }
            if date_like(last) != date_like(&x) {
                return Err(Error::expression(
                    14,
                    format!(
                        "Conflicting sort value types, previously received type {}, but found {}",
                        query::type_name(Some(last)),
                        query::type_name(Some(&x))
                    ),
                ));
            }
        }
        last_x = Some(x.clone());
        match y.filter(|v| !nullish(Some(v))) {
            Some(y) => {
                before = Some((x, y.clone()));
                out.push(y);
            }
            None => {
                let after = next_point
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|j| Some((xs.get(j)?.as_ref()?, inputs.get(j)?.as_ref()?)));
                let filled = match (&before, after) {
                    (Some((x1, y1)), Some((x2, y2))) => interpolate(x1, y1, x2, y2, &x)?,
                    _ => Bson::Null,
                };
                out.push(filled);
            }
        }
    }
    Ok(out)
}

/// A sort value MongoDB's `coercibleToDate` accepts: a date, a timestamp or an ObjectId.
fn date_like(v: &Bson) -> bool {
    matches!(
        v,
        Bson::DateTime(_) | Bson::Timestamp(_) | Bson::ObjectId(_)
    )
}

/// `y1 + (x - x1) * ((y2 - y1) / (x2 - x1))` in MongoDB's value arithmetic.
fn interpolate(x1: &Bson, y1: &Bson, x2: &Bson, y2: &Bson, x: &Bson) -> Result<Bson> {
    let slope = divide_operands(&subtract_operands(y2, y1)?, &subtract_operands(x2, x1)?)?;
    let offset = multiply_operands(&[subtract_operands(x, x1)?, slope])?;
    add_operands(&[y1.clone(), offset])
}

/// `$locf` over one partition's values in order: a null or missing value becomes the last
/// non-null one before it (null when there is none).
pub(super) fn locf(inputs: Vec<Option<Bson>>) -> Vec<Bson> {
    let mut last = Bson::Null;
    inputs
        .into_iter()
        .map(|v| match v {
            Some(v) if !nullish(Some(&v)) => {
                last = v.clone();
                v
            }
            _ => last.clone(),
        })
        .collect()
}

/// Sets `parts` in `d` to `value` as MongoDB's `MutableDocument::setNestedField` does: a
/// missing or non-document step on the way becomes an empty document.
pub(super) fn set_nested(d: &mut Document, parts: &[&str], value: Bson) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        d.insert(*first, value);
        return;
    }
    if !matches!(d.get(*first), Some(Bson::Document(_))) {
        d.insert(*first, Document::new());
    }
    if let Some(Bson::Document(inner)) = d.get_mut(*first) {
        set_nested(inner, rest, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::doc;

    use super::super::super::{History, held_size};
    use super::document;

    /// A method's `$fill` holds every document (for its sort) against the blocking limit: at
    /// it the stage runs, one byte under it the aggregation fails with 292.
    #[test]
    fn a_method_holds_its_input_against_the_blocking_limit() {
        let (_dir, h) = History::open_temporary();
        let docs: Vec<_> = (0..20)
            .map(|i| doc! {"_id": i, "v": (i % 2 == 0).then_some(i)})
            .collect();
        h.insert_many("db", "c", docs.clone()).unwrap();
        // Each document with its sort key (`_id`) and its partition's (null: none).
        let held: usize = docs
            .iter()
            .map(|d| {
                held_size(&[d.get("_id").unwrap().clone()], d)
                    + document::value_size(&bson::Bson::Null)
            })
            .sum();
        let pipeline =
            [doc! {"$fill": {"sortBy": {"_id": 1}, "output": {"v": {"method": "locf"}}}}];
        h.set_blocking_bytes_max(held);
        let out = h.aggregate("db", "c", &pipeline).unwrap();
        assert_eq!(out[1].get_i32("v").unwrap(), 0);
        h.set_blocking_bytes_max(held - 1);
        let e = h.aggregate("db", "c", &pipeline).unwrap_err();
        assert_eq!(e.code(), 292);
        assert!(e.to_string().contains("$fill"), "{e}");
    }
}
