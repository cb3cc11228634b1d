//! Aggregation pipelines: `$match $project $addFields $set $unset $sort $limit $skip $count
//! $unwind $group $lookup`, with a small expression language (field paths, `$literal`,
//! comparisons and arithmetic/string operators). A leading `$match` (and a `$sort` right after
//! it) runs through the planner, so it uses indexes.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher};

use bson::{Bson, Document};

use super::decimal;
use super::document::{self, compare, get_path, split_path, values_equal};
use super::error::{Error, Result};
use super::query::{self, Filter, Projection, Sort};
use super::update::{set_path, unset_path};
use super::{BlockingSort, Executor, FindOptions, History, MemoryBudget, PIPELINE_STAGES_MAX};

/// Bytes charged for one accumulator's state in a group, beside the values it holds.
const ACC_STATE_BYTES: usize = 16;

/// Runs a pipeline over `db.coll`. Each blocking stage (`$sort`, `$group`, `$lookup`,
/// `$unwind`) accounts the bytes it holds against its own limit, raised by `allow_disk_use`.
pub(crate) fn run(
    history: &History,
    db: &str,
    coll: &str,
    pipeline: &[Document],
    allow_disk_use: bool,
) -> Result<Vec<Document>> {
    if pipeline.len() > PIPELINE_STAGES_MAX {
        return Err(Error::TooMany {
            what: "pipeline",
            len: pipeline.len(),
            max: PIPELINE_STAGES_MAX,
        });
    }
    let mut stages = Vec::with_capacity(pipeline.len());
    for s in pipeline {
        document::check_depth_doc(s)?;
        let mut it = s.iter();
        let (Some((name, arg)), None) = (it.next(), it.next()) else {
            return Err(Error::bad(
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        stages.push((name.as_str(), arg));
    }
    // Push a leading $match and $sort into the find planner.
    let mut options = FindOptions {
        allow_disk_use,
        ..FindOptions::default()
    };
    let mut filter = Document::new();
    let mut rest = stages.as_slice();
    if let Some(((name, Bson::Document(m)), tail)) = rest.split_first()
        && *name == "$match"
    {
        filter = m.clone();
        rest = tail;
    }
    if let Some(((name, Bson::Document(s)), tail)) = rest.split_first()
        && *name == "$sort"
    {
        options.sort = Some(s.clone());
        rest = tail;
        // A $limit right after the sort: the find keeps only that many (a top-k sort).
        if let Some((name, arg)) = rest.first()
            && *name == "$limit"
        {
            options.limit = Some(u64::try_from(count_arg(arg, "$limit")?).unwrap_or(u64::MAX));
        }
    }
    let mut docs = history.find_in(Executor::Aggregation, db, coll, &filter, &options)?;
    let budget = |stage| history.budget(Executor::Aggregation, stage, allow_disk_use);
    for (i, (name, arg)) in rest.iter().enumerate() {
        // A $sort followed by $limit keeps only that many documents while sorting.
        let next_limit = match rest.get(i + 1) {
            Some(("$limit", limit)) => Some(count_arg(limit, "$limit")?),
            _ => None,
        };
        docs = stage(history, db, name, arg, docs, next_limit, &budget)?;
    }
    Ok(docs)
}

fn stage(
    history: &History,
    db: &str,
    name: &str,
    arg: &Bson,
    docs: Vec<Document>,
    next_limit: Option<usize>,
    budget: &dyn Fn(&'static str) -> MemoryBudget,
) -> Result<Vec<Document>> {
    let doc_arg = || match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(Error::bad(format!(
            "the {name} stage specification must be an object"
        ))),
    };
    Ok(match name {
        "$match" => {
            let f = Filter::parse(doc_arg()?)?;
            docs.into_iter().filter(|d| f.matches(d)).collect()
        }
        "$project" => project(doc_arg()?, docs)?,
        "$addFields" | "$set" => {
            let spec = doc_arg()?;
            let mut out = Vec::with_capacity(docs.len());
            for mut d in docs {
                for (path, expr) in spec {
                    // A missing value (a path reaching nothing) removes the field.
                    match eval_opt(expr, &d)? {
                        Some(v) => set_path(&mut d, &split_path(path)?, v)?,
                        None => unset_path(&mut d, &split_path(path)?),
                    }
                }
                out.push(d);
            }
            out
        }
        "$unset" => {
            let paths: Vec<String> = match arg {
                Bson::String(s) => vec![s.clone()],
                Bson::Array(a) => a
                    .iter()
                    .map(|p| {
                        p.as_str().map(str::to_owned).ok_or_else(|| {
                            Error::bad(
                                "$unset specification must be a string or an array of strings",
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
                _ => {
                    return Err(Error::bad(
                        "$unset specification must be a string or an array of strings",
                    ));
                }
            };
            let mut out = docs;
            for d in &mut out {
                for p in &paths {
                    unset_path(d, &split_path(p)?);
                }
            }
            out
        }
        "$sort" => {
            let s = Sort::parse(doc_arg()?)?;
            let mut held = BlockingSort::new(&s, next_limit, budget("$sort"));
            for d in docs {
                held.push(d)?;
            }
            held.finish()
        }
        "$limit" => {
            let n = count_arg(arg, "$limit")?;
            docs.into_iter().take(n).collect()
        }
        "$skip" => {
            let n = count_arg(arg, "$skip")?;
            docs.into_iter().skip(n).collect()
        }
        "$count" => {
            let Bson::String(field) = arg else {
                return Err(Error::bad("the count field must be a non-empty string"));
            };
            if field.is_empty() || field.starts_with('$') || field.contains('.') {
                return Err(Error::bad(
                    "the count field must be a non-empty string without '$' or '.'",
                ));
            }
            if docs.is_empty() {
                Vec::new()
            } else {
                let mut d = Document::new();
                d.insert(
                    field.clone(),
                    i32::try_from(docs.len()).map_or(
                        Bson::Int64(i64::try_from(docs.len()).unwrap_or(i64::MAX)),
                        Bson::Int32,
                    ),
                );
                vec![d]
            }
        }
        "$unwind" => unwind(arg, docs, budget("$unwind"))?,
        "$group" => group(doc_arg()?, docs, budget("$group"))?,
        "$lookup" => lookup(history, db, doc_arg()?, docs, budget("$lookup"))?,
        other => return Err(Error::Unsupported(format!("aggregation stage {other}"))),
    })
}

fn count_arg(arg: &Bson, name: &str) -> Result<usize> {
    let n = document::as_f64(arg)
        .filter(|n| n.fract() == 0.0 && *n >= 0.0)
        .ok_or_else(|| {
            Error::bad(format!(
                "invalid argument to {name} stage: expected a non-negative integer"
            ))
        })?;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative integral, checked above"
    )]
    Ok(n as usize)
}

fn project(spec: &Document, docs: Vec<Document>) -> Result<Vec<Document>> {
    // Plain inclusion/exclusion goes through the find projection; computed fields are added.
    let mut plain = Document::new();
    let mut computed: Vec<(&String, &Bson)> = Vec::new();
    for (k, v) in spec {
        match v {
            Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                plain.insert(k.clone(), v.clone());
            }
            other => computed.push((k, other)),
        }
    }
    if !computed.is_empty()
        && plain.iter().any(|(k, v)| {
            k != "_id"
                && (document::as_f64(v).is_some_and(|n| n == 0.0)
                    || matches!(v, Bson::Boolean(false)))
        })
    {
        return Err(Error::bad(
            "Invalid $project :: caused by :: Cannot use expression other than $meta in exclusion projection",
        ));
    }
    if !computed.is_empty() && !plain.iter().any(|(k, _)| k != "_id") {
        // Only computed fields (and maybe _id): inclusion mode with nothing else included.
        plain.insert("\u{0}none", 1);
    }
    let p = Projection::parse(&plain)?;
    let mut out = Vec::with_capacity(docs.len());
    for d in docs {
        let mut projected = p.as_ref().map_or_else(|| d.clone(), |p| p.apply(&d));
        for (path, expr) in &computed {
            // A missing value leaves the field out.
            if let Some(v) = eval_opt(expr, &d)? {
                set_path(&mut projected, &split_path(path)?, v)?;
            }
        }
        out.push(projected);
    }
    Ok(out)
}

/// `$unwind`; the copies it makes of each document count against `held`.
fn unwind(arg: &Bson, docs: Vec<Document>, mut held: MemoryBudget) -> Result<Vec<Document>> {
    let (path, index_field, preserve) = match arg {
        Bson::String(s) => (s.clone(), None, false),
        Bson::Document(d) => (
            d.get_str("path")
                .map_err(|_| Error::bad("$unwind requires a path"))?
                .to_owned(),
            d.get_str("includeArrayIndex").ok().map(str::to_owned),
            d.get_bool("preserveNullAndEmptyArrays").unwrap_or(false),
        ),
        _ => {
            return Err(Error::bad(
                "expected either a string or an object as specification for $unwind stage",
            ));
        }
    };
    let Some(field) = path.strip_prefix('$') else {
        return Err(Error::bad(
            "path option to $unwind stage should be prefixed with a '$'",
        ));
    };
    let parts = split_path(field)?;
    let mut out = Vec::new();
    for d in docs {
        match get_path(&d, &parts).cloned() {
            Some(Bson::Array(items)) if !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut copy = d.clone();
                    set_path(&mut copy, &parts, item)?;
                    if let Some(f) = &index_field {
                        set_path(
                            &mut copy,
                            &split_path(f)?,
                            Bson::Int64(i64::try_from(i).unwrap_or(i64::MAX)),
                        )?;
                    }
                    held.charge(document::bson_size(&copy))?;
                    out.push(copy);
                }
            }
            v @ (Some(Bson::Array(_)) | None | Some(Bson::Null)) => {
                if preserve {
                    let mut copy = d.clone();
                    if matches!(v, Some(Bson::Array(_))) {
                        // MongoDB drops an empty array field from the preserved document.
                        unset_path(&mut copy, &parts);
                    }
                    if let Some(f) = &index_field {
                        set_path(&mut copy, &split_path(f)?, Bson::Null)?;
                    }
                    out.push(copy);
                }
            }
            Some(_) => {
                let mut copy = d;
                if let Some(f) = &index_field {
                    set_path(&mut copy, &split_path(f)?, Bson::Null)?;
                }
                out.push(copy);
            }
        }
    }
    Ok(out)
}

/// One accumulator's running state.
enum Acc {
    Sum(Bson),
    /// The sum (as `$sum` adds) and the count of numbers.
    Avg(Bson, u64),
    Min(Option<Bson>),
    Max(Option<Bson>),
    First(Option<Bson>),
    Last(Option<Bson>),
    Push(Vec<Bson>),
    AddToSet(Vec<Bson>, EqualityIndex),
}

/// Finds a value among values kept in a `Vec` by hash instead of by scanning them all: the
/// positions of the kept values, bucketed by [`equality_hash`]. Values that compare equal share
/// a bucket; a lookup compares only within it.
#[derive(Debug, Default)]
struct EqualityIndex {
    buckets: HashMap<u64, Vec<usize>>,
}

impl EqualityIndex {
    /// The position in `kept` of a value equal to `v` (MongoDB's comparison, same bracket), and
    /// `v`'s hash for [`EqualityIndex::add`].
    fn find<T>(&self, kept: &[T], v: &Bson, key: impl Fn(&T) -> &Bson) -> (Option<usize>, u64) {
        let mut h = DefaultHasher::new();
        equality_hash(v, &mut h);
        let hash = h.finish();
        let found = self.buckets.get(&hash).and_then(|positions| {
            positions.iter().copied().find(|&i| {
                kept.get(i).is_some_and(|k| {
                    let k = key(k);
                    values_equal(k, v) && document::type_rank(k) == document::type_rank(v)
                })
            })
        });
        (found, hash)
    }

    /// Records that the value with `hash` is kept at `position`.
    fn add(&mut self, hash: u64, position: usize) {
        self.buckets.entry(hash).or_default().push(position);
    }
}

/// Feeds `h` what identifies `v` up to MongoDB's equality: the type bracket, then numbers by
/// their nearest double (which numbers equal across int, long, double and decimal share, -0
/// and 0 included), strings by their text, documents and arrays element by element. Values of
/// the remaining types feed only their bracket and so share one bucket.
fn equality_hash(v: &Bson, h: &mut impl Hasher) {
    document::type_rank(v).hash(h);
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            let d = document::as_f64(v).unwrap_or(f64::NAN);
            let bits = if d.is_nan() {
                f64::NAN.to_bits()
            } else if d == 0.0 {
                0
            } else {
                d.to_bits()
            };
            bits.hash(h);
        }
        Bson::String(s) | Bson::Symbol(s) => s.hash(h),
        Bson::Document(d) => {
            for (k, x) in d {
                k.hash(h);
                equality_hash(x, h);
            }
            d.len().hash(h);
        }
        Bson::Array(a) => {
            for x in a {
                equality_hash(x, h);
            }
            a.len().hash(h);
        }
        Bson::Boolean(b) => b.hash(h),
        Bson::ObjectId(o) => o.bytes().hash(h),
        Bson::DateTime(d) => d.timestamp_millis().hash(h),
        _ => {}
    }
}

/// `$group`; each group's key, accumulator state and held values count against `held`.
fn group(spec: &Document, docs: Vec<Document>, mut held: MemoryBudget) -> Result<Vec<Document>> {
    let id_expr = spec
        .get("_id")
        .ok_or_else(|| Error::bad("a group specification must include an _id"))?;
    let mut accs: Vec<(&String, &str, &Bson)> = Vec::new();
    for (field, a) in spec {
        if field == "_id" {
            continue;
        }
        let Bson::Document(ad) = a else {
            return Err(Error::bad(format!(
                "The field '{field}' must be an accumulator object"
            )));
        };
        let mut it = ad.iter();
        let (Some((op, expr)), None) = (it.next(), it.next()) else {
            return Err(Error::bad(format!(
                "The field '{field}' must specify one accumulator"
            )));
        };
        if !matches!(
            op.as_str(),
            "$sum" | "$avg" | "$min" | "$max" | "$first" | "$last" | "$push" | "$addToSet"
        ) {
            return Err(Error::Unsupported(format!("accumulator {op}")));
        }
        accs.push((field, op.as_str(), expr));
    }
    let mut groups: Vec<(Bson, Vec<Acc>)> = Vec::new();
    let mut index = EqualityIndex::default();
    for d in &docs {
        let key = eval(id_expr, d)?;
        let (pos, hash) = index.find(&groups, &key, |(k, _)| k);
        let idx = match pos {
            Some(i) => i,
            None => {
                let fresh = accs
                    .iter()
                    .map(|(_, op, _)| match *op {
                        "$sum" => Acc::Sum(Bson::Int32(0)),
                        "$avg" => Acc::Avg(Bson::Int32(0), 0),
                        "$min" => Acc::Min(None),
                        "$max" => Acc::Max(None),
                        "$first" => Acc::First(None),
                        "$last" => Acc::Last(None),
                        "$push" => Acc::Push(Vec::new()),
                        _ => Acc::AddToSet(Vec::new(), EqualityIndex::default()),
                    })
                    .collect();
                held.charge(
                    document::value_size(&key).saturating_add(ACC_STATE_BYTES * accs.len()),
                )?;
                index.add(hash, groups.len());
                groups.push((key, fresh));
                groups.len() - 1
            }
        };
        let Some((_, state)) = groups.get_mut(idx) else {
            continue;
        };
        for ((_, _, expr), acc) in accs.iter().zip(state.iter_mut()) {
            let v = eval_opt(expr, d)?;
            match acc {
                // Numbers only: missing and other types are skipped.
                Acc::Sum(total) => {
                    if let Some(v) = v.filter(|v| document::type_rank(v) == 10) {
                        *total = add(total, &v);
                    }
                }
                Acc::Avg(total, n) => {
                    if let Some(v) = v.filter(|v| document::type_rank(v) == 10) {
                        *total = add(total, &v);
                        *n += 1;
                    }
                }
                // Missing and null are skipped.
                Acc::Min(m) => {
                    if let Some(v) = v.filter(|v| !matches!(v, Bson::Null))
                        && m.as_ref()
                            .is_none_or(|cur| compare(&v, cur) == Ordering::Less)
                    {
                        replace_held(m, v, &mut held)?;
                    }
                }
                Acc::Max(m) => {
                    if let Some(v) = v.filter(|v| !matches!(v, Bson::Null))
                        && m.as_ref()
                            .is_none_or(|cur| compare(&v, cur) == Ordering::Greater)
                    {
                        replace_held(m, v, &mut held)?;
                    }
                }
                // Missing counts as null.
                Acc::First(f) => {
                    if f.is_none() {
                        replace_held(f, v.unwrap_or(Bson::Null), &mut held)?;
                    }
                }
                Acc::Last(l) => replace_held(l, v.unwrap_or(Bson::Null), &mut held)?,
                // Missing adds nothing.
                Acc::Push(items) => {
                    if let Some(v) = v {
                        held.charge(document::value_size(&v))?;
                        items.push(v);
                    }
                }
                Acc::AddToSet(items, kept) => {
                    if let Some(v) = v {
                        let (found, hash) = kept.find(items, &v, |x| x);
                        if found.is_none() {
                            held.charge(document::value_size(&v))?;
                            kept.add(hash, items.len());
                            items.push(v);
                        }
                    }
                }
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, state)| {
            let mut d = Document::new();
            d.insert("_id", key);
            for ((field, _, _), acc) in accs.iter().zip(state) {
                let v = match acc {
                    Acc::Sum(t) => t,
                    Acc::Avg(_, 0) => Bson::Null,
                    // A decimal among the values makes a decimal average, else a double.
                    Acc::Avg(total, n) => decimal::divide(&total, n).unwrap_or_else(|| {
                        #[expect(clippy::cast_precision_loss, reason = "an average is a double")]
                        let n = n as f64;
                        Bson::Double(document::as_f64(&total).unwrap_or(f64::NAN) / n)
                    }),
                    Acc::Min(m) | Acc::Max(m) | Acc::First(m) | Acc::Last(m) => {
                        m.unwrap_or(Bson::Null)
                    }
                    Acc::Push(items) | Acc::AddToSet(items, _) => Bson::Array(items),
                };
                d.insert((*field).clone(), v);
            }
            d
        })
        .collect())
}

/// Puts `v` in an accumulator's slot, accounting the change in held bytes.
fn replace_held(slot: &mut Option<Bson>, v: Bson, held: &mut MemoryBudget) -> Result<()> {
    if let Some(old) = slot.as_ref() {
        held.release(document::value_size(old));
    }
    held.charge(document::value_size(&v))?;
    *slot = Some(v);
    Ok(())
}

/// `$add`/`$sum` of two numbers: integers exactly (int64 on int32 overflow, a double on int64
/// overflow), with a Decimal128 in decimal, else as doubles.
fn add(a: &Bson, b: &Bson) -> Bson {
    if let Some(d) = decimal::add(a, b) {
        return d;
    }
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => x
            .checked_add(*y)
            .map_or_else(|| Bson::Int64(i64::from(*x) + i64::from(*y)), Bson::Int32),
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            let x = a
                .as_i64()
                .or_else(|| a.as_i32().map(i64::from))
                .unwrap_or(0);
            let y = b
                .as_i64()
                .or_else(|| b.as_i32().map(i64::from))
                .unwrap_or(0);
            x.checked_add(y).map_or_else(
                || {
                    Bson::Double(
                        document::as_f64(a).unwrap_or(0.0) + document::as_f64(b).unwrap_or(0.0),
                    )
                },
                Bson::Int64,
            )
        }
        _ => Bson::Double(document::as_f64(a).unwrap_or(0.0) + document::as_f64(b).unwrap_or(0.0)),
    }
}

fn lookup(
    history: &History,
    db: &str,
    spec: &Document,
    docs: Vec<Document>,
    mut held: MemoryBudget,
) -> Result<Vec<Document>> {
    let field = |k: &str| {
        spec.get_str(k)
            .map_err(|_| Error::bad(format!("$lookup requires '{k}' as a string")))
    };
    let (from, local, foreign, as_field) = (
        field("from")?,
        field("localField")?,
        field("foreignField")?,
        field("as")?,
    );
    // The foreign collection is read once and held; it and every joined copy count
    // against `held`.
    let foreign_docs = history.find_in(
        Executor::Aggregation,
        db,
        from,
        &Document::new(),
        &FindOptions::default(),
    )?;
    for f in &foreign_docs {
        held.charge(document::bson_size(f))?;
    }
    let local_parts = split_path(local)?;
    let foreign_parts = split_path(foreign)?;
    let as_parts = split_path(as_field)?;
    let mut out = Vec::with_capacity(docs.len());
    for mut d in docs {
        let lv = get_path(&d, &local_parts).cloned().unwrap_or(Bson::Null);
        let locals: Vec<Bson> = match lv {
            Bson::Array(a) => a,
            v => vec![v],
        };
        let mut matched_bytes = 0usize;
        let matched: Vec<Bson> = foreign_docs
            .iter()
            .filter(|f| {
                let fv = get_path(f, &foreign_parts).cloned().unwrap_or(Bson::Null);
                let fvs: Vec<Bson> = match fv {
                    Bson::Array(a) => a,
                    v => vec![v],
                };
                locals
                    .iter()
                    .any(|l| fvs.iter().any(|x| values_equal(l, x)))
            })
            .map(|f| {
                matched_bytes = matched_bytes.saturating_add(document::bson_size(f));
                Bson::Document(f.clone())
            })
            .collect();
        held.charge(matched_bytes)?;
        set_path(&mut d, &as_parts, Bson::Array(matched))?;
        out.push(d);
    }
    Ok(out)
}

/// Evaluates an aggregation expression against a document; a missing value is null.
fn eval(expr: &Bson, doc: &Document) -> Result<Bson> {
    Ok(eval_opt(expr, doc)?.unwrap_or(Bson::Null))
}

/// Evaluates an aggregation expression against a document; `None` when the value is
/// *missing* (a field path that reaches nothing), which MongoDB keeps apart from null.
fn eval_opt(expr: &Bson, doc: &Document) -> Result<Option<Bson>> {
    match expr {
        Bson::String(s) if s.starts_with("$$") => Err(Error::Unsupported(format!("variable {s}"))),
        Bson::String(s) if s.starts_with('$') => {
            let path = s.get(1..).unwrap_or_default();
            let parts = split_path(path)?;
            let mut reached = Vec::new();
            if let Some((first, rest)) = parts.split_first()
                && let Some(v) = doc.get(*first)
            {
                collect_expr_path(v, rest, &mut reached);
            }
            // Through an array the values reached make an array (maybe empty).
            Ok(if path_crosses_array(doc, &parts) {
                Some(Bson::Array(reached))
            } else {
                reached.into_iter().next()
            })
        }
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let mut it = d.iter();
            let (Some((op, arg)), None) = (it.next(), it.next()) else {
                return Err(Error::bad(
                    "an expression object must have exactly one operator",
                ));
            };
            operator(op, arg, doc)
        }
        Bson::Document(d) => {
            // An object expression leaves out fields whose value is missing.
            let mut out = Document::new();
            for (k, v) in d {
                if let Some(v) = eval_opt(v, doc)? {
                    out.insert(k.clone(), v);
                }
            }
            Ok(Some(Bson::Document(out)))
        }
        // In an array a missing value becomes null.
        Bson::Array(a) => Ok(Some(Bson::Array(
            a.iter().map(|v| eval(v, doc)).collect::<Result<_>>()?,
        ))),
        other => Ok(Some(other.clone())),
    }
}

/// `$subtract`, `$multiply` or `$divide` (`op`) of numbers in decimal, left to right;
/// `None` for a non-number (a zero divisor is refused before).
fn decimal_arithmetic(op: &str, args: &[Bson]) -> Option<Bson> {
    let (first, rest) = args.split_first()?;
    rest.iter()
        .try_fold(decimal::to_decimal(first)?, |acc, x| match op {
            "$subtract" => decimal::subtract(&acc, x),
            "$multiply" => decimal::multiply(&acc, x),
            _ => decimal::divide_values(&acc, x),
        })
}

fn path_crosses_array(doc: &Document, parts: &[&str]) -> bool {
    (1..parts.len()).any(|n| {
        matches!(
            get_path(doc, parts.get(..n).unwrap_or_default()),
            Some(Bson::Array(_))
        )
    })
}

fn collect_expr_path(v: &Bson, parts: &[&str], out: &mut Vec<Bson>) {
    let Some((first, rest)) = parts.split_first() else {
        out.push(v.clone());
        return;
    };
    match v {
        Bson::Document(d) => {
            if let Some(x) = d.get(*first) {
                collect_expr_path(x, rest, out);
            }
        }
        Bson::Array(a) => {
            for el in a {
                collect_expr_path(el, parts, out);
            }
        }
        _ => {}
    }
}

/// Whether an operand is null, `undefined` or missing (MongoDB's `nullish`).
fn nullish(v: Option<&Bson>) -> bool {
    matches!(v, None | Some(Bson::Null | Bson::Undefined))
}

/// The operands of an operator that takes exactly `N` (MongoDB checks the count with code
/// 16020).
fn fixed<const N: usize>(op: &str, args: Vec<Option<Bson>>) -> Result<[Option<Bson>; N]> {
    let n = args.len();
    args.try_into().map_err(|_| {
        Error::expression(
            16020,
            format!("Expression {op} takes exactly {N} arguments. {n} were passed in."),
        )
    })
}

/// MongoDB's order of two expression operands (its `Value::compare`): a missing value, like
/// `undefined`, sorts below null and above MinKey and equals only a missing or `undefined`
/// value; present values compare as everywhere else.
fn compare_operands(a: Option<&Bson>, b: Option<&Bson>) -> Ordering {
    let rank = |v: Option<&Bson>| match v {
        Some(Bson::MinKey) => 0u8,
        None | Some(Bson::Undefined) => 1,
        Some(_) => 2,
    };
    match (a, b) {
        (Some(x), Some(y)) if rank(a) == 2 && rank(b) == 2 => compare(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn operator(op: &str, arg: &Bson, doc: &Document) -> Result<Option<Bson>> {
    if op == "$literal" {
        return Ok(Some(arg.clone()));
    }
    // An operand that reaches nothing stays missing: comparisons tell it from null.
    let operands: Vec<Option<Bson>> = match arg {
        Bson::Array(a) => a.iter().map(|v| eval_opt(v, doc)).collect::<Result<_>>()?,
        other => vec![eval_opt(other, doc)?],
    };
    match op {
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => {
            let [a, b] = fixed(op, operands)?;
            let o = compare_operands(a.as_ref(), b.as_ref());
            return Ok(Some(match op {
                "$cmp" => Bson::Int32(match o {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
                "$eq" => Bson::Boolean(o == Ordering::Equal),
                "$ne" => Bson::Boolean(o != Ordering::Equal),
                "$gt" => Bson::Boolean(o == Ordering::Greater),
                "$gte" => Bson::Boolean(o != Ordering::Less),
                "$lt" => Bson::Boolean(o == Ordering::Less),
                _ => Bson::Boolean(o != Ordering::Greater),
            }));
        }
        "$in" => {
            let [needle, list] = fixed(op, operands)?;
            let Some(Bson::Array(items)) = list else {
                return Err(Error::expression(
                    40081,
                    format!(
                        "$in requires an array as a second argument, found: {}",
                        query::type_name(list.as_ref())
                    ),
                ));
            };
            return Ok(Some(Bson::Boolean(items.iter().any(|x| {
                compare_operands(needle.as_ref(), Some(x)) == Ordering::Equal
            }))));
        }
        // The first operand that is not null or missing, else the last one as it is.
        "$ifNull" => {
            let last = operands.len().saturating_sub(1);
            return Ok(operands
                .into_iter()
                .enumerate()
                .find(|(i, v)| *i == last || !nullish(v.as_ref()))
                .and_then(|(_, v)| v));
        }
        _ => {}
    }
    // The remaining operators treat a missing operand as null.
    let args: Vec<Bson> = operands
        .into_iter()
        .map(|v| v.unwrap_or(Bson::Null))
        .collect();
    let nums = || -> Option<Vec<f64>> { args.iter().map(document::as_f64).collect() };
    Ok(Some(match op {
        // Null or missing among the operands makes the result null.
        "$add" if args.iter().any(|a| matches!(a, Bson::Null)) => Bson::Null,
        "$add" => args
            .iter()
            .skip(1)
            .fold(args.first().cloned().unwrap_or(Bson::Int32(0)), |acc, v| {
                add(&acc, v)
            }),
        "$subtract" | "$multiply" | "$divide" => {
            let Some(n) = nums() else {
                return Ok(Some(Bson::Null));
            };
            let (Some(first), rest) = (n.first(), n.get(1..).unwrap_or_default()) else {
                return Ok(Some(Bson::Null));
            };
            if op == "$divide" && rest.contains(&0.0) {
                return Err(Error::bad("can't $divide by zero"));
            }
            // A Decimal128 among the operands: exactly, in decimal.
            if args.iter().any(|a| matches!(a, Bson::Decimal128(_))) {
                return Ok(Some(decimal_arithmetic(op, &args).unwrap_or(Bson::Null)));
            }
            let r = rest.iter().fold(*first, |acc, x| match op {
                "$subtract" => acc - x,
                "$multiply" => acc * x,
                _ => acc / x,
            });
            if r.fract() == 0.0
                && op != "$divide"
                && args
                    .iter()
                    .all(|a| matches!(a, Bson::Int32(_) | Bson::Int64(_)))
                && r.abs() < 9.0e15
            {
                #[expect(clippy::cast_possible_truncation, reason = "integral and below 2^53")]
                Bson::Int64(r as i64)
            } else {
                Bson::Double(r)
            }
        }
        "$concat" => {
            let mut s = String::new();
            for a in &args {
                match a {
                    Bson::String(x) => s.push_str(x),
                    Bson::Null => return Ok(Some(Bson::Null)),
                    _ => return Err(Error::bad("$concat only supports strings")),
                }
            }
            Bson::String(s)
        }
        "$toUpper" => Bson::String(
            args.first()
                .and_then(Bson::as_str)
                .unwrap_or_default()
                .to_uppercase(),
        ),
        "$toLower" => Bson::String(
            args.first()
                .and_then(Bson::as_str)
                .unwrap_or_default()
                .to_lowercase(),
        ),
        "$size" => match args.first() {
            Some(Bson::Array(a)) => Bson::Int32(i32::try_from(a.len()).unwrap_or(i32::MAX)),
            _ => return Err(Error::bad("The argument to $size must be an array")),
        },
        "$sum" => args
            .iter()
            .flat_map(|a| match a {
                Bson::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .filter(|v| document::type_rank(v) == 10)
            .fold(Bson::Int32(0), |acc, v| add(&acc, &v)),
        other => return Err(Error::Unsupported(format!("expression operator {other}"))),
    }))
}

#[cfg(test)]
mod tests {
    use bson::{Bson, Document, bson, doc};

    use super::super::{AggregateOptions, FindOptions, History, document};

    fn open() -> (tempfile::TempDir, History) {
        let (dir, h) = History::open_temporary();
        let docs: Vec<Document> = (0..10)
            .map(|i| doc! {"_id": i, "k": i % 3, "s": "x".repeat(100), "arr": [1, 2]})
            .collect();
        h.insert_many("db", "c", docs).unwrap();
        h.insert_many(
            "db",
            "f",
            vec![doc! {"_id": 0, "n": "zero"}, doc! {"_id": 1, "n": "one"}],
        )
        .unwrap();
        (dir, h)
    }

    fn bytes(docs: &[Document]) -> usize {
        docs.iter().map(document::bson_size).sum()
    }

    /// Runs `pipeline` with the blocking limit at `max` and at `max - 1`: the first succeeds,
    /// the second fails with code 292 and MongoDB's text naming `stage`.
    fn at_limit(h: &History, pipeline: &[Document], max: usize, cause: &str) {
        h.set_blocking_bytes_max(max);
        h.aggregate("db", "c", pipeline).unwrap();
        h.set_blocking_bytes_max(max - 1);
        let e = h.aggregate("db", "c", pipeline).unwrap_err();
        assert_eq!(
            (e.code(), e.code_name()),
            (292, "QueryExceededMemoryLimitNoDiskUseAllowed")
        );
        let cause = cause.replace("{max}", &(max - 1).to_string());
        assert_eq!(
            e.to_string(),
            format!("PlanExecutor error during aggregation :: caused by :: {cause}"),
        );
        // allowDiskUse raises the limit (this store keeps everything in memory).
        let options = AggregateOptions {
            allow_disk_use: true,
        };
        h.aggregate_with("db", "c", pipeline, options).unwrap();
    }

    /// Evaluates `expr` against `{a: 1, n: null, arr: [1, 2]}`.
    fn eval(expr: &Bson) -> super::Result<Option<Bson>> {
        super::eval_opt(expr, &doc! {"a": 1, "n": null, "arr": [1, 2]})
    }

    /// Each case: an expression and what MongoDB 7.0 gives for it (`None`: missing), or
    /// `Err((code, message))`.
    type Case = (Bson, Result<Option<Bson>, (i32, &'static str)>);

    fn check(cases: Vec<Case>) {
        for (expr, want) in cases {
            let got = eval(&expr).map_err(|e| (e.code(), e.to_string()));
            let want = want.map_err(|(code, message)| {
                (
                    code,
                    format!("PlanExecutor error during aggregation :: caused by :: {message}"),
                )
            });
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn comparisons_order_a_missing_operand_below_null() {
        let t = |b: bool| Ok(Some(Bson::Boolean(b)));
        let cmp = |i: i32| Ok(Some(Bson::Int32(i)));
        check(vec![
            (bson!({"$eq": ["$missing", null]}), t(false)),
            (bson!({"$eq": ["$n", null]}), t(true)),
            (bson!({"$eq": ["$missing", "$alsoMissing"]}), t(true)),
            (bson!({"$ne": ["$missing", null]}), t(true)),
            (bson!({"$lt": ["$missing", null]}), t(true)),
            (bson!({"$lte": ["$missing", null]}), t(true)),
            (bson!({"$gt": [null, "$missing"]}), t(true)),
            (bson!({"$gte": ["$missing", null]}), t(false)),
            (bson!({"$gt": ["$missing", Bson::MinKey]}), t(true)),
            (bson!({"$lt": ["$missing", 0]}), t(true)),
            (bson!({"$eq": ["$a", 1.0]}), t(true)),
            (bson!({"$cmp": ["$missing", null]}), cmp(-1)),
            (bson!({"$cmp": [null, "$missing"]}), cmp(1)),
            (bson!({"$cmp": ["$missing", "$alsoMissing"]}), cmp(0)),
            (bson!({"$cmp": ["$a", 1.0]}), cmp(0)),
            (bson!({"$cmp": ["x", 1]}), cmp(1)),
            // An array expression turns a missing element into null.
            (bson!({"$in": ["$missing", [null]]}), t(false)),
            (bson!({"$in": ["$missing", ["$alsoMissing"]]}), t(false)),
            (bson!({"$in": [null, ["$alsoMissing"]]}), t(true)),
            (bson!({"$in": ["$n", [null]]}), t(true)),
            (bson!({"$in": [2.0, "$arr"]}), t(true)),
            (bson!({"$in": [3, "$arr"]}), t(false)),
            (
                bson!({"$in": ["$a", "$missing"]}),
                Err((
                    40081,
                    "$in requires an array as a second argument, found: missing",
                )),
            ),
            (
                bson!({"$in": [1, "$a"]}),
                Err((
                    40081,
                    "$in requires an array as a second argument, found: int",
                )),
            ),
            (
                bson!({"$eq": ["$a"]}),
                Err((
                    16020,
                    "Expression $eq takes exactly 2 arguments. 1 were passed in.",
                )),
            ),
            (
                bson!({"$cmp": [1, 2, 3]}),
                Err((
                    16020,
                    "Expression $cmp takes exactly 2 arguments. 3 were passed in.",
                )),
            ),
            // $ifNull: the first operand neither null nor missing, else the last as it is.
            (bson!({"$ifNull": ["$missing", "$alsoMissing"]}), Ok(None)),
            (bson!({"$ifNull": ["$n", "$missing"]}), Ok(None)),
            (bson!({"$ifNull": ["$missing", "$n"]}), Ok(Some(Bson::Null))),
            (
                bson!({"$ifNull": ["$missing", "$n", 5]}),
                Ok(Some(Bson::Int32(5))),
            ),
            (bson!({"$ifNull": ["$a", 5]}), Ok(Some(Bson::Int32(1)))),
        ]);
    }

    #[test]
    fn a_comparison_with_a_missing_field_in_a_pipeline() {
        let (_d, h) = History::open_temporary();
        h.insert_many("db", "m", vec![doc! {"_id": 1, "x": null}, doc! {"_id": 2}])
            .unwrap();
        let out = h
            .aggregate(
                "db",
                "m",
                &[doc! {"$project": {"isNull": {"$eq": ["$x", null]}, "below": {"$lt": ["$x", null]}}}],
            )
            .unwrap();
        assert_eq!(
            out,
            vec![
                doc! {"_id": 1, "isNull": true, "below": false},
                doc! {"_id": 2, "isNull": false, "below": true},
            ]
        );
    }

    #[test]
    fn each_blocking_stage_holds_at_most_its_memory_limit() {
        let (_d, h) = open();
        let all = h
            .find("db", "c", &doc! {}, &FindOptions::default())
            .unwrap();
        // $sort holds every document ($skip keeps it out of the find).
        let sort = [doc! {"$skip": 0}, doc! {"$sort": {"k": 1}}];
        at_limit(
            &h,
            &sort,
            bytes(&all),
            "Sort exceeded memory limit of {max} bytes, but did not opt in to external sorting.",
        );
        // A leading $sort runs in the find, and names the aggregation.
        at_limit(
            &h,
            &[doc! {"$sort": {"k": 1}}],
            bytes(&all),
            "Sort exceeded memory limit of {max} bytes, but did not opt in to external sorting.",
        );
        // A $limit after the sort keeps only about twice that many documents held.
        let one = document::bson_size(&all[0]);
        h.set_blocking_bytes_max(4 * one);
        let top = [
            doc! {"$skip": 0},
            doc! {"$sort": {"k": -1}},
            doc! {"$limit": 2},
        ];
        assert_eq!(h.aggregate("db", "c", &top).unwrap().len(), 2);
        // $group: per group its key and 16 bytes per accumulator, plus the values pushed.
        let group = [doc! {"$group": {"_id": "$k", "s": {"$push": "$s"}}}];
        at_limit(
            &h,
            &group,
            3 * (4 + 16) + 10 * (5 + 100),
            "Exceeded memory limit for $group, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
        // $unwind: the copies it makes.
        let unwind = [doc! {"$unwind": "$arr"}];
        h.set_blocking_bytes_max(usize::MAX);
        let copies = h.aggregate("db", "c", &unwind).unwrap();
        at_limit(
            &h,
            &unwind,
            bytes(&copies),
            "Exceeded memory limit for $unwind, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
        // $lookup: the foreign collection once, and every joined copy.
        let lookup =
            [doc! {"$lookup": {"from": "f", "localField": "k", "foreignField": "_id", "as": "j"}}];
        let foreign = h
            .find("db", "f", &doc! {}, &FindOptions::default())
            .unwrap();
        let joined: usize = all
            .iter()
            .map(|d| {
                let k = d.get_i32("k").unwrap();
                usize::try_from(k).map_or(0, |k| foreign.get(k).map_or(0, document::bson_size))
            })
            .sum();
        at_limit(
            &h,
            &lookup,
            bytes(&foreign) + joined,
            "Exceeded memory limit for $lookup, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
    }

    #[test]
    fn allow_disk_use_raises_the_limit_to_a_bounded_one() {
        let (_d, h) = open();
        let all = h
            .find("db", "c", &doc! {}, &FindOptions::default())
            .unwrap();
        let factor = super::super::BLOCKING_BYTES_DISK_USE_MAX / super::super::BLOCKING_BYTES_MAX;
        let total = bytes(&all);
        let options = AggregateOptions {
            allow_disk_use: true,
        };
        let sort = [doc! {"$skip": 0}, doc! {"$sort": {"k": 1}}];
        h.set_blocking_bytes_max(total.div_ceil(factor));
        h.aggregate_with("db", "c", &sort, options).unwrap();
        h.set_blocking_bytes_max(total.div_ceil(factor) - 1);
        let e = h.aggregate_with("db", "c", &sort, options).unwrap_err();
        assert_eq!((e.code(), e.code_name()), (146, "ExceededMemoryLimit"));
    }

    #[test]
    fn a_find_sort_without_an_index_holds_at_most_the_limit() {
        let (_d, h) = open();
        let all = h
            .find("db", "c", &doc! {}, &FindOptions::default())
            .unwrap();
        let sorted = FindOptions {
            sort: Some(doc! {"k": 1}),
            ..FindOptions::default()
        };
        h.set_blocking_bytes_max(bytes(&all));
        assert_eq!(h.find("db", "c", &doc! {}, &sorted).unwrap().len(), 10);
        h.set_blocking_bytes_max(bytes(&all) - 1);
        let e = h.find("db", "c", &doc! {}, &sorted).unwrap_err();
        assert_eq!(e.code(), 292);
        assert_eq!(
            e.to_string(),
            format!(
                "Executor error during find command :: caused by :: Sort exceeded memory limit \
                 of {} bytes, but did not opt in to external sorting.",
                bytes(&all) - 1
            )
        );
        // With a limit it is a top-k sort: about twice the limit is held.
        let top = FindOptions {
            limit: Some(2),
            ..sorted.clone()
        };
        h.set_blocking_bytes_max(4 * document::bson_size(&all[0]));
        assert_eq!(h.find("db", "c", &doc! {}, &top).unwrap().len(), 2);
        // allowDiskUse raises it.
        let disk = FindOptions {
            allow_disk_use: true,
            ..sorted
        };
        h.set_blocking_bytes_max(bytes(&all) - 1);
        assert_eq!(h.find("db", "c", &doc! {}, &disk).unwrap().len(), 10);
    }
}
