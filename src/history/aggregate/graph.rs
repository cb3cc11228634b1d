//! `$graphLookup`: a recursive search of a collection of the same database, parsed as MongoDB
//! 7.0's `document_source_graph_lookup.cpp` does, with its codes and messages.
//!
//! For each input document, `startWith` (each element of an array on its own) is the first
//! frontier; every foreign document whose `connectToField` equals a frontier value (MongoDB's
//! `{connectToField: {$in: frontier}}`: an array field by its elements or as a whole, a
//! missing one as null) and that passes `restrictSearchWithMatch` is found at that depth,
//! unless a document with its `_id` was found before; the found documents' `connectFromField`
//! values (an array's elements) are the next frontier. The search stops when a round finds
//! nothing new or passes `maxDepth`. The found documents, each with its depth in `depthField`
//! (a long) when asked, become the array at `as`, in the order they were found.
//!
//! The foreign collection is read once per stage and indexed in memory by its
//! `connectToField` values (hashed as MongoDB's equality, [`super::equality_hash`]), so a round
//! looks at the documents its frontier can reach, not at all of them. It and every found copy
//! count against the stage's [`MemoryBudget`](super::super::MemoryBudget).

use std::collections::HashMap;
use std::hash::Hasher as _;

use bson::{Bson, Document};

use super::super::document::{self, collect_doc_path, split_path};
use super::super::error::{Error, Result};
use super::super::query::{self, Filter};
use super::super::update::set_path;
use super::super::{STAGE_DOCUMENT_BYTES_MAX, deadline};
use super::stages::read_all;
use super::{Cx, EqualityIndex, equality_hash, expr, field_path, object_too_large};

/// MongoDB's FailedToParse (9), the code of `$graphLookup`'s specification-level errors.
fn failed_to_parse(message: impl Into<String>) -> Error {
    expr::parse_error(9, message)
}

/// A `$graphLookup` stage, parsed.
pub(super) struct GraphLookup<'p> {
    from: &'p str,
    as_field: &'p str,
    start_with: expr::Expr,
    connect_from: &'p str,
    connect_to: &'p str,
    depth_field: Option<&'p str>,
    max_depth: Option<i64>,
    restrict: Option<Filter>,
}

impl<'p> GraphLookup<'p> {
    pub(super) fn parse(arg: &'p Bson, cx: &Cx<'_>) -> Result<Self> {
        let Bson::Document(spec) = arg else {
            return Err(failed_to_parse(format!(
                "the $graphLookup stage specification must be an object, but found {}",
                query::type_name(Some(arg))
            )));
        };
        // MongoDB's lite parse checks `from` before anything else.
        let from = match spec.get("from") {
            None => {
                return Err(failed_to_parse(format!(
                    "missing 'from' option to $graphLookup stage specification: {}",
                    document::render_value(arg)
                )));
            }
            Some(Bson::String(f)) => f.as_str(),
            Some(other) => {
                return Err(failed_to_parse(format!(
                    "$graphLookup 'from' field must be a string, but found {}",
                    query::type_name(Some(other))
                )));
            }
        };
        let (mut as_field, mut connect_from, mut connect_to) = ("", "", "");
        let (mut start_with, mut depth_field, mut max_depth, mut restrict) =
            (None, None, None, None);
        for (name, v) in spec {
            match name.as_str() {
                "startWith" => start_with = Some(expr::compile(v, cx.now_ms)?),
                "maxDepth" => max_depth = Some(max_depth_arg(v)?),
                "restrictSearchWithMatch" => {
                    let Bson::Document(m) = v else {
                        return Err(expr::parse_error(
                            40185,
                            format!(
                                "restrictSearchWithMatch must be an object, found {}",
                                query::type_name(Some(v))
                            ),
                        ));
                    };
                    restrict = Some(Filter::parse_at(m, cx.now_ms).map_err(|e| match e {
                        Error::BadValue(m) => Error::BadValue(format!(
                            "Failed to parse 'restrictSearchWithMatch' option to $graphLookup :: caused by :: {m}"
                        )),
                        other => other,
                    })?);
                }
                "from" | "as" | "connectFromField" | "connectToField" | "depthField" => {
                    let Bson::String(s) = v else {
                        return Err(expr::parse_error(
                            40103,
                            format!(
                                "expected string as argument for {name}, found: {}",
                                query::type_name(Some(v))
                            ),
                        ));
                    };
                    match name.as_str() {
                        "as" => as_field = s.as_str(),
                        "connectFromField" => connect_from = s.as_str(),
                        "connectToField" => connect_to = s.as_str(),
                        "depthField" => depth_field = Some(field_path(s)?),
                        _ => {}
                    }
                }
                _ => {
                    return Err(expr::parse_error(
                        40104,
                        format!("Unknown argument to $graphLookup: {name}"),
                    ));
                }
            }
        }
        let missing = [from, as_field, connect_from, connect_to]
            .iter()
            .any(|s| s.is_empty());
        let Some(start_with) = start_with.filter(|_| !missing) else {
            return Err(expr::parse_error(
                40105,
                "$graphLookup requires 'from', 'as', 'startWith', 'connectFromField', and 'connectToField' to be specified.",
            ));
        };
        Ok(Self {
            from,
            as_field: field_path(as_field)?,
            start_with,
            connect_from: field_path(connect_from)?,
            connect_to: field_path(connect_to)?,
            depth_field,
            max_depth,
            restrict,
        })
    }

    /// Folds `startWith`'s constant expressions.
    pub(super) fn fold(&mut self) -> Result<()> {
        self.start_with = std::mem::replace(&mut self.start_with, expr::Expr::Absent).fold()?;
        Ok(())
    }

    /// Runs the search for each document and sets its `as` field to what it found.
    pub(super) fn run(&self, cx: &Cx<'_>, docs: Vec<Document>) -> Result<Vec<Document>> {
        let mut held = cx.budget("$graphLookup");
        let foreign = read_all(cx, self.from)?;
        let to_parts = split_path(self.connect_to)?;
        let from_parts = split_path(self.connect_from)?;
        let as_parts = split_path(self.as_field)?;
        let depth_parts = self.depth_field.map(split_path).transpose()?;
        for f in &foreign {
            held.charge(document::bson_size(f))?;
        }
        let by_value = index_by_keys(&foreign, &to_parts);
        // The round in which a foreign document was last a candidate, so each is tried once
        // per round however many frontier values reach it.
        let mut tried = vec![usize::MAX; foreign.len()];
        let mut round = 0usize;
        let mut out = Vec::with_capacity(docs.len());
        for mut d in docs {
            let mut frontier = ValueSet::default();
            match self.start_with.eval_doc(&d)? {
                Some(Bson::Array(values)) => values.into_iter().for_each(|v| frontier.add(v)),
                Some(v) => frontier.add(v),
                None => {}
            }
            let mut found: Vec<Bson> = Vec::new();
            let mut found_ids = ValueSet::default();
            let mut found_bytes = 0usize;
            let mut depth = 0i64;
            while !frontier.values.is_empty() {
                round += 1;
                let mut candidates: Vec<usize> = Vec::new();
                for v in &frontier.values {
                    for &i in by_value.get(&hash(v)).into_iter().flatten() {
                        if let Some(t) = tried.get_mut(i)
                            && *t != round
                        {
                            *t = round;
                            candidates.push(i);
                        }
                    }
                }
                // In collection order, as a scan would meet them.
                candidates.sort_unstable();
                let mut next = ValueSet::default();
                let mut new = false;
                for i in candidates {
                    // Inputs × rounds × candidates can be large: the read's time limit holds.
                    deadline::check()?;
                    let Some(f) = foreign.get(i) else { continue };
                    if !reaches(f, &to_parts, &frontier) {
                        continue;
                    }
                    if let Some(r) = &self.restrict
                        && !r.try_matches(f)?
                    {
                        continue;
                    }
                    let id = f.get("_id").cloned().unwrap_or(Bson::Null);
                    if found_ids.contains(&id) {
                        continue;
                    }
                    found_ids.add(id);
                    new = true;
                    for v in collect_doc_path(f, &from_parts).into_iter().flatten() {
                        match v {
                            Bson::Array(items) => items.iter().for_each(|x| next.add(x.clone())),
                            v => next.add(v.clone()),
                        }
                    }
                    let mut copy = f.clone();
                    if let Some(parts) = &depth_parts {
                        set_path(&mut copy, parts, Bson::Int64(depth))?;
                    }
                    let size = document::bson_size(&copy);
                    found_bytes = found_bytes.saturating_add(size);
                    if found_bytes > STAGE_DOCUMENT_BYTES_MAX {
                        return Err(object_too_large(&d, found_bytes));
                    }
                    held.charge(size)?;
                    found.push(Bson::Document(copy));
                }
                depth += 1;
                if !new || self.max_depth.is_some_and(|max| depth > max) {
                    break;
                }
                frontier = next;
            }
            set_path(&mut d, &as_parts, Bson::Array(found))?;
            out.push(d);
        }
        Ok(out)
    }
}

/// `maxDepth`: a number (40100) whose value as a long (saturated, NaN as 0) is not negative
/// (40101) and is the number itself (40102).
fn max_depth_arg(v: &Bson) -> Result<i64> {
    let (long, exact) = match v {
        Bson::Int32(i) => (i64::from(*i), true),
        Bson::Int64(i) => (*i, true),
        Bson::Double(_) | Bson::Decimal128(_) => {
            let n = document::as_f64(v).unwrap_or(f64::NAN);
            #[expect(
                clippy::cast_possible_truncation,
                reason = "MongoDB's safeNumberLong: truncated and saturated, NaN as 0; 40102 below refuses any value this changed"
            )]
            let long = n as i64;
            #[expect(
                clippy::cast_precision_loss,
                reason = "compared as MongoDB compares them, in double"
            )]
            let exact = long as f64 == n;
            (long, exact)
        }
        _ => {
            return Err(expr::parse_error(
                40100,
                format!(
                    "maxDepth must be numeric, found type: {}",
                    query::type_name(Some(v))
                ),
            ));
        }
    };
    if long < 0 {
        return Err(expr::parse_error(
            40101,
            format!("maxDepth requires a nonnegative argument, found: {long}"),
        ));
    }
    if !exact {
        return Err(expr::parse_error(
            40102,
            format!("maxDepth could not be represented as a long long: {long}"),
        ));
    }
    Ok(long)
}

/// A null, for a path that is missing.
static NULL: Bson = Bson::Null;

/// Calls `f` with each value `{connectToField: {$in: […]}}` compares a frontier value with:
/// each value the path reaches (with array fan-out), an array's elements besides the array
/// itself, and null where the path is missing.
fn connect_keys<'d>(doc: &'d Document, parts: &[&str], mut f: impl FnMut(&'d Bson)) {
    for v in collect_doc_path(doc, parts) {
        match v {
            None => f(&NULL),
            Some(Bson::Array(items)) => {
                items.iter().for_each(&mut f);
                f(v.unwrap_or(&NULL));
            }
            Some(v) => f(v),
        }
    }
}

/// The positions of `docs` under the hash of each value [`connect_keys`] gives for `parts`
/// (each position once per hash), so the documents a value can match are found without a scan.
pub(super) fn index_by_keys(docs: &[Document], parts: &[&str]) -> HashMap<u64, Vec<usize>> {
    let mut by_value: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        connect_keys(d, parts, |key| {
            let at = by_value.entry(hash(key)).or_default();
            if at.last() != Some(&i) {
                at.push(i);
            }
        });
    }
    by_value
}

/// Whether a value [`connect_keys`] gives for `doc` at `parts` is in `set`: MongoDB's
/// `{<parts>: {$in: set}}` without regular expressions.
pub(super) fn reaches(doc: &Document, parts: &[&str], set: &ValueSet) -> bool {
    let mut reached = false;
    connect_keys(doc, parts, |k| reached = reached || set.contains(k));
    reached
}

/// [`equality_hash`] of one value.
pub(super) fn hash(v: &Bson) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    equality_hash(v, &mut h);
    h.finish()
}

/// A set of values under MongoDB's equality (numbers across types, same type bracket).
#[derive(Default)]
pub(super) struct ValueSet {
    pub(super) values: Vec<Bson>,
    index: EqualityIndex,
}

impl ValueSet {
    pub(super) fn add(&mut self, v: Bson) {
        let (found, hash) = self.index.find(&self.values, &v, |x| x);
        if found.is_none() {
            self.index.add(hash, self.values.len());
            self.values.push(v);
        }
    }

    pub(super) fn contains(&self, v: &Bson) -> bool {
        self.index.find(&self.values, v, |x| x).0.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::doc;

    use super::super::super::History;
    use super::document;

    /// What the stage holds — the foreign collection once and every copy it finds (with its
    /// depth field) — is counted against the blocking limit: at it the search runs, one byte
    /// under it the aggregation fails with 292; `allowDiskUse` raises the limit.
    #[test]
    fn the_collection_and_the_found_copies_count_against_the_blocking_limit() {
        let (_dir, h) = History::open_temporary();
        let chain: Vec<_> = (0..20).map(|i| doc! {"_id": i, "up": i - 1}).collect();
        h.insert_many("db", "c", chain.clone()).unwrap();
        let pipeline = [
            doc! {"$match": {"_id": 19}},
            doc! {"$graphLookup": {
                "from": "c", "startWith": "$up", "connectFromField": "up",
                "connectToField": "_id", "as": "path", "depthField": "depth",
            }},
        ];
        let held: usize = chain.iter().map(document::bson_size).sum::<usize>()
            + (0..19)
                .map(|i| {
                    document::bson_size(
                        &doc! {"_id": i, "up": i - 1, "depth": 18_i64 - i64::from(i)},
                    )
                })
                .sum::<usize>();
        h.set_blocking_bytes_max(held);
        let out = h.aggregate("db", "c", &pipeline).unwrap();
        assert_eq!(out[0].get_array("path").unwrap().len(), 19);
        h.set_blocking_bytes_max(held - 1);
        let e = h.aggregate("db", "c", &pipeline).unwrap_err();
        assert_eq!(e.code(), 292);
        assert!(e.to_string().contains("$graphLookup"), "{e}");
        let options = super::super::super::AggregateOptions {
            allow_disk_use: true,
            ..Default::default()
        };
        assert!(h.aggregate_with("db", "c", &pipeline, options).is_ok());
    }
}
