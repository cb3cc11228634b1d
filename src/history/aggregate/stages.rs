//! The stages that run sub-pipelines or hold their whole input: `$lookup` (the
//! `localField`/`foreignField` equality, a `let`/`pipeline` correlated sub-pipeline, or both),
//! `$facet`, `$unionWith`, `$bucket` (built as MongoDB builds it: a `$group` on a `$switch`
//! over the boundaries, then a `$sort`), `$bucketAuto` and `$sample`. Each parses as MongoDB
//! 7.0's `document_source_*.cpp` does, with its codes and messages; the blocking ones account
//! what they hold in their stage's [`MemoryBudget`](super::super::MemoryBudget).

use std::collections::HashMap;

use bson::{Bson, Document};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

use super::super::deadline;
use super::super::document::{self, collect_doc_path, compare, split_path};
use super::super::error::{Error, Result};
use super::super::query::{self, Sort};
use super::super::update::set_path;
use super::super::{
    BUCKETS_MAX, Executor, FACET_PIPELINES_MAX, FindOptions, MemoryBudget, STAGE_DOCUMENT_BYTES_MAX,
};
use super::expr::{self, Binding, Cmp, Expr, Lazy, Op};
use super::granularity::Rounder;
use super::{
    AccOp, Cx, GroupSpec, Stage, build, graph, group, object_too_large, refuse_writers, run_built,
    stage_list, text,
};

/// MongoDB's FailedToParse (9), the code of most `$lookup` and `$unionWith` spec errors.
fn failed_to_parse(message: impl Into<String>) -> Error {
    expr::parse_error(9, message)
}

/// A BSON element as MongoDB prints one in a message: `name: value`.
fn element(name: &str, v: &Bson) -> String {
    format!("{name}: {}", document::render_value(v))
}

/// The stages of a sub-pipeline given as an array (`$lookup`'s and `$unionWith`'s
/// `pipeline`): each element must be an object (code 14).
fn sub_pipeline(items: &[Bson]) -> Result<Vec<(&str, &Bson)>> {
    let docs = items
        .iter()
        .map(|s| match s {
            Bson::Document(d) => Ok(d),
            _ => Err(expr::parse_error(
                14,
                "Each element of the 'pipeline' array must be an object",
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    stage_list(docs)
}

/// The whole of collection `coll` of the request's database.
pub(super) fn read_all(cx: &Cx<'_>, coll: &str) -> Result<Vec<Document>> {
    cx.history.find_in(
        Executor::Aggregation,
        cx.db,
        coll,
        &Document::new(),
        &FindOptions::default(),
    )
}

/// A `$lookup` stage, parsed.
pub(super) struct Lookup<'p> {
    /// The foreign collection; none for a sub-pipeline that starts with `$documents`.
    from: Option<&'p str>,
    as_field: &'p str,
    /// `localField` and `foreignField`, when given.
    join: Option<(&'p str, &'p str)>,
    /// The `let` variables and the expressions (over the joined document) that bind them.
    lets: Vec<(&'p str, Expr)>,
    /// The sub-pipeline's stages as given, when there is one.
    pipeline: Option<Vec<(&'p str, &'p Bson)>>,
    /// The sub-pipeline built once with every `let` value unknown: the check that it parses,
    /// and the pipeline itself when no variable reaches it.
    built: Vec<Stage<'p>>,
    /// The variables of enclosing `$lookup`s in force when this stage was built.
    outer: Vec<Binding>,
    /// The sub-pipeline's context, one level deeper than the stage's.
    depth: usize,
}

impl<'p> Lookup<'p> {
    pub(super) fn parse(arg: &'p Bson, cx: &Cx<'_>) -> Result<Self> {
        let Bson::Document(spec) = arg else {
            return Err(failed_to_parse(format!(
                "the $lookup stage specification must be an object, but found {}",
                query::type_name(Some(arg))
            )));
        };
        let (mut from, mut as_field, mut local, mut foreign) = (None, "", "", "");
        let (mut lets, mut pipeline) = (None, None);
        for (name, v) in spec {
            match (name.as_str(), v) {
                ("pipeline", Bson::Array(items)) => pipeline = Some(sub_pipeline(items)?),
                ("pipeline", _) => {
                    return Err(expr::parse_error(
                        14,
                        "'pipeline' option must be specified as an array",
                    ));
                }
                ("let", Bson::Document(l)) => lets = Some(l),
                ("let", other) => {
                    return Err(failed_to_parse(format!(
                        "$lookup argument '{}' must be an object, is type {}",
                        element(name, other),
                        query::type_name(Some(other))
                    )));
                }
                ("from", Bson::String(f)) => from = Some(f.as_str()),
                ("from", other) => {
                    return Err(failed_to_parse(format!(
                        "$lookup 'from' field must be a string, but found {}",
                        query::type_name(Some(other))
                    )));
                }
                (_, Bson::String(s)) => match name.as_str() {
                    "as" => as_field = s,
                    "localField" => local = s,
                    "foreignField" => foreign = s,
                    _ => {
                        return Err(failed_to_parse(format!(
                            "unknown argument to $lookup: {name}"
                        )));
                    }
                },
                (_, other) => {
                    return Err(failed_to_parse(format!(
                        "$lookup argument '{name}' must be a string, found {}: {}",
                        element(name, other),
                        query::type_name(Some(other))
                    )));
                }
            }
        }
        let from = from.filter(|f| !f.is_empty());
        check_no_documents_with(from, pipeline.as_deref())?;
        if from.is_none() && !starts_with_documents(pipeline.as_deref()) {
            return Err(failed_to_parse(if pipeline.is_some() {
                "$lookup stage without explicit collection must have a pipeline with $documents as first stage"
            } else {
                "must specify 'pipeline' when 'from' is empty"
            }));
        }
        if as_field.is_empty() {
            return Err(failed_to_parse("must specify 'as' field for a $lookup"));
        }
        let join = match (local.is_empty(), foreign.is_empty(), pipeline.is_some()) {
            (false, false, _) => Some((local, foreign)),
            (true, true, true) => None,
            (_, _, true) => {
                return Err(failed_to_parse(
                    "$lookup requires both or neither of 'localField' and 'foreignField' to be specified",
                ));
            }
            (_, _, false) => {
                return Err(failed_to_parse(
                    "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified",
                ));
            }
        };
        if lets.is_some() && pipeline.is_none() {
            return Err(failed_to_parse(
                "$lookup with a 'let' argument must also specify 'pipeline'",
            ));
        }
        // The `let` values are expressions over the joined document, in the enclosing scope.
        let mut compiled = Vec::new();
        for (name, v) in lets.into_iter().flatten() {
            expr::check_variable_name(name)?;
            compiled.push((name.as_str(), expr::compile(v, cx.now_ms)?));
        }
        let sub = cx.nested()?;
        let outer = expr::bound_now();
        let built = match &pipeline {
            Some(p) => {
                let mut unknown = outer.clone();
                unknown.extend(compiled.iter().map(|(n, _)| ((*n).to_owned(), None)));
                expr::with_bound(unknown, || {
                    refuse_writers(
                        p,
                        &sub,
                        51047,
                        "is not allowed within a $lookup's sub-pipeline",
                    )?;
                    build(p, &sub)
                })?
            }
            None => Vec::new(),
        };
        Ok(Self {
            from,
            as_field,
            join,
            lets: compiled,
            pipeline,
            built,
            outer,
            depth: sub.depth,
        })
    }

    /// The sub-pipeline's stages (as first built).
    pub(super) fn stages(&self) -> &[Stage<'p>] {
        &self.built
    }

    /// Joins each document with the foreign documents its `localField` matches and/or the
    /// sub-pipeline returns for it. The foreign collection is read once and held; it and every
    /// joined copy count against the stage's budget.
    pub(super) fn run(&self, cx: &Cx<'_>, docs: Vec<Document>) -> Result<Vec<Document>> {
        let mut held = cx.budget("$lookup");
        // Without a collection the sub-pipeline's `$documents` makes its input.
        let foreign = match self.from {
            Some(from) => read_all(cx, from)?,
            None => Vec::new(),
        };
        for f in &foreign {
            held.charge(document::bson_size(f))?;
        }
        let sub = Cx {
            depth: self.depth,
            ..*cx
        };
        let as_parts = split_path(self.as_field)?;
        let join = match self.join {
            Some((local, foreign)) => Some((split_path(local)?, split_path(foreign)?)),
            None => None,
        };
        // For the equality: the foreign documents under the hash of each value their
        // `foreignField` holds, so a document's values find their matches without a scan.
        let by_value = match &join {
            Some((_, foreign_parts)) => graph::index_by_keys(&foreign, foreign_parts),
            None => HashMap::new(),
        };
        // Without variables the sub-pipeline is the same for every document.
        let correlated = !self.lets.is_empty() || !self.outer.is_empty();
        let mut out = Vec::with_capacity(docs.len());
        for mut d in docs {
            // The sub-pipeline for this document: rebuilt with its variables bound, or as built.
            let rebuilt = match &self.pipeline {
                Some(p) if correlated => {
                    let mut bindings = self.outer.clone();
                    for (name, e) in &self.lets {
                        bindings.push(((*name).to_owned(), e.eval_doc(&d)?));
                    }
                    Some(expr::with_bound(bindings, || build(p, &sub))?)
                }
                _ => None,
            };
            let stages = rebuilt.as_deref().unwrap_or(&self.built);
            if let (None, Some((local, foreign_parts))) = (self.from, &join) {
                // No collection: the sub-pipeline's leading `$documents` is the foreign side,
                // which the equality filters before the stages after it run.
                let Some((documents, rest)) = stages.split_first() else {
                    return Err(Error::bad("$lookup without a collection needs $documents"));
                };
                let locals = local_values(&d, local);
                let mut input = Vec::new();
                for f in documents.run(&sub, Vec::new(), None)? {
                    deadline::check()?;
                    if graph::reaches(&f, foreign_parts, &locals) {
                        input.push(f);
                    }
                }
                let matched = run_built(rest, &sub, input)?;
                self.join_into(&mut d, &as_parts, matched, &mut held)?;
                out.push(d);
                continue;
            }
            let candidates: Vec<&Document> = match &join {
                Some((local, foreign_parts)) => {
                    let locals = local_values(&d, local);
                    let mut hits: Vec<usize> = locals
                        .values
                        .iter()
                        .flat_map(|v| by_value.get(&graph::hash(v)).into_iter().flatten())
                        .copied()
                        .collect();
                    // In collection order, each once, as a scan would meet them.
                    hits.sort_unstable();
                    hits.dedup();
                    let mut matched = Vec::with_capacity(hits.len());
                    for f in hits.into_iter().filter_map(|i| foreign.get(i)) {
                        deadline::check()?;
                        if graph::reaches(f, foreign_parts, &locals) {
                            matched.push(f);
                        }
                    }
                    matched
                }
                None => foreign.iter().collect(),
            };
            let input = candidates.into_iter().cloned().collect();
            let matched = match &self.pipeline {
                None => input,
                Some(_) => run_built(stages, &sub, input)?,
            };
            self.join_into(&mut d, &as_parts, matched, &mut held)?;
            out.push(d);
        }
        Ok(out)
    }

    /// Sets `d`'s `as` field to `matched`, counting them against the stage's budget and
    /// together against [`STAGE_DOCUMENT_BYTES_MAX`] (4568).
    fn join_into(
        &self,
        d: &mut Document,
        as_parts: &[&str],
        matched: Vec<Document>,
        held: &mut MemoryBudget,
    ) -> Result<()> {
        let mut matched_bytes = 0usize;
        let mut joined = Vec::with_capacity(matched.len());
        for f in matched {
            let size = document::bson_size(&f);
            matched_bytes = matched_bytes.saturating_add(size);
            if matched_bytes > STAGE_DOCUMENT_BYTES_MAX {
                return Err(Error::LookupTooLarge {
                    from: self.from.unwrap_or("$documents").to_owned(),
                    len: matched_bytes,
                    max: STAGE_DOCUMENT_BYTES_MAX,
                });
            }
            held.charge(size)?;
            joined.push(Bson::Document(f));
        }
        set_path(d, as_parts, Bson::Array(joined))
    }
}

/// The values a `$lookup` equality looks up for `d`, as MongoDB's `createMatchStageJoinObj`
/// collects them (`visitAllValuesAtPath`): each value `localField` reaches (with array
/// fan-out; a branch where the path is missing adds nothing), an array's elements instead of
/// the array, and null alone when that finds nothing — `{foreignField: {$in: [those]}}`.
fn local_values(d: &Document, local: &[&str]) -> graph::ValueSet {
    let mut locals = graph::ValueSet::default();
    for v in collect_doc_path(d, local).into_iter().flatten() {
        match v {
            Bson::Array(items) => items.iter().for_each(|x| locals.add(x.clone())),
            v => locals.add(v.clone()),
        }
    }
    if locals.values.is_empty() {
        locals.add(Bson::Null);
    }
    locals
}

/// A `$lookup` or `$unionWith` naming a collection may not start its sub-pipeline with
/// `$documents`, which only a pipeline without a collection can run (73, as MongoDB).
fn check_no_documents_with(coll: Option<&str>, pipeline: Option<&[(&str, &Bson)]>) -> Result<()> {
    match coll {
        Some(coll) if starts_with_documents(pipeline) => Err(Error::InvalidNamespace {
            name: coll.to_owned(),
            reason: "$documents can only be run with database-level aggregation or in a sub-pipeline without a collection",
        }),
        _ => Ok(()),
    }
}

/// Parses `$facet`: each facet's name and its sub-pipeline, built in the stage's own context
/// (a facet is no deeper sub-pipeline in MongoDB's count).
pub(super) fn facet<'p>(arg: &'p Bson, cx: &Cx<'_>) -> Result<Stage<'p>> {
    let spec = match arg {
        Bson::Document(d) if !d.is_empty() => d,
        other => {
            return Err(expr::parse_error(
                40169,
                format!(
                    "the $facet specification must be a non-empty object, but found: {}",
                    element("$facet", other)
                ),
            ));
        }
    };
    if spec.len() > FACET_PIPELINES_MAX {
        return Err(Error::TooMany {
            what: "$facet",
            len: spec.len(),
            max: FACET_PIPELINES_MAX,
        });
    }
    let mut facets = Vec::with_capacity(spec.len());
    for (name, v) in spec {
        expr::check_field_name(name).map_err(|e| match e {
            Error::InvalidExpression { code, message } => expr::parse_error(
                code,
                format!(
                    "$facet pipeline names must follow the naming rules of field path expressions. :: caused by :: {message}"
                ),
            ),
            other => other,
        })?;
        let Bson::Array(items) = v else {
            return Err(expr::parse_error(
                40170,
                format!(
                    "arguments to $facet must be arrays, {name} is type {}",
                    query::type_name(Some(v))
                ),
            ));
        };
        let mut docs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Bson::Document(d) = item else {
                return Err(expr::parse_error(
                    40171,
                    format!(
                        "elements of arrays in $facet spec must be non-empty objects, {name} argument contained an element of type {}: {}",
                        query::type_name(Some(item)),
                        element(&i.to_string(), item)
                    ),
                ));
            };
            docs.push(d);
        }
        if docs.is_empty() {
            return Err(Error::bad("sub-pipeline in $facet stage cannot be empty"));
        }
        let stages = stage_list(docs)?;
        refuse_writers(
            &stages,
            cx,
            40600,
            "is not allowed to be used within a $facet stage",
        )?;
        let stages = build(&stages, cx)?;
        if let Some(s) = stages.iter().find(|s| !s.allowed_in_facet()) {
            return Err(expr::parse_error(
                40600,
                format!(
                    "{} is not allowed to be used within a $facet stage",
                    s.name()
                ),
            ));
        }
        facets.push((name.as_str(), stages));
    }
    Ok(Stage::Facet(facets))
}

/// Runs each facet's sub-pipeline over the whole input (held, and counted against the stage's
/// budget) and returns one document: each facet's name and the array it produced.
pub(super) fn run_facet(
    facets: &[(&str, Vec<Stage<'_>>)],
    cx: &Cx<'_>,
    docs: Vec<Document>,
) -> Result<Vec<Document>> {
    let mut held = cx.budget("$facet");
    for d in &docs {
        held.charge(document::bson_size(d))?;
    }
    let mut out = Document::new();
    let mut size = 5usize;
    for (name, stages) in facets {
        let produced = run_built(stages, cx, docs.clone())?;
        let items: Vec<Bson> = produced.into_iter().map(Bson::Document).collect();
        let value = Bson::Array(items);
        size = size.saturating_add(2 + name.len() + document::value_size(&value));
        out.insert(*name, value);
        if size > STAGE_DOCUMENT_BYTES_MAX {
            return Err(object_too_large(&out, size));
        }
    }
    Ok(vec![out])
}

/// Parses `$unionWith`: a collection name, or `{coll, pipeline}`.
pub(super) fn union_with<'p>(arg: &'p Bson, cx: &Cx<'_>) -> Result<Stage<'p>> {
    let wrong_type = |field: &str, v: &Bson, want: &str| {
        expr::parse_error(
            14,
            format!(
                "BSON field '$unionWith.{field}' is the wrong type '{}', expected type '{want}'",
                query::type_name(Some(v))
            ),
        )
    };
    let (coll, pipeline) = match arg {
        Bson::String(c) => (Some(c.as_str()), None),
        Bson::Document(spec) => {
            let (mut coll, mut pipeline) = (None, None);
            for (k, v) in spec {
                match (k.as_str(), v) {
                    ("coll", Bson::String(c)) => coll = Some(c.as_str()),
                    ("coll", other) => return Err(wrong_type("coll", other, "string")),
                    ("pipeline", Bson::Array(items)) => pipeline = Some(sub_pipeline(items)?),
                    ("pipeline", other) => return Err(wrong_type("pipeline", other, "array")),
                    _ => {
                        return Err(expr::parse_error(
                            40415,
                            format!("BSON field '$unionWith.{k}' is an unknown field."),
                        ));
                    }
                }
            }
            (coll, pipeline)
        }
        other => {
            return Err(failed_to_parse(format!(
                "the $unionWith stage specification must be an object or string, but found {}",
                query::type_name(Some(other))
            )));
        }
    };
    check_no_documents_with(coll, pipeline.as_deref())?;
    if coll.is_none() && !starts_with_documents(pipeline.as_deref()) {
        return Err(failed_to_parse(
            "$unionWith stage without explicit collection must have a pipeline with $documents as first stage",
        ));
    }
    let sub = cx.nested()?;
    let stages = match pipeline {
        Some(p) => {
            refuse_writers(
                &p,
                &sub,
                31441,
                "is not allowed within a $unionWith's sub-pipeline",
            )?;
            build(&p, &sub)?
        }
        None => Vec::new(),
    };
    Ok(Stage::UnionWith(coll, stages))
}

/// The input, then what the sub-pipeline makes of collection `coll`.
pub(super) fn run_union_with(
    coll: Option<&str>,
    stages: &[Stage<'_>],
    cx: &Cx<'_>,
    mut docs: Vec<Document>,
) -> Result<Vec<Document>> {
    let sub = cx.nested()?;
    let input = match coll {
        Some(coll) => read_all(cx, coll)?,
        None => Vec::new(),
    };
    let other = run_built(stages, &sub, input)?;
    docs.extend(other);
    Ok(docs)
}

/// Whether a sub-pipeline's first stage is `$documents`, which lets `$lookup` and
/// `$unionWith` go without a collection.
fn starts_with_documents(pipeline: Option<&[(&str, &Bson)]>) -> bool {
    pipeline
        .and_then(<[_]>::first)
        .is_some_and(|(name, _)| *name == "$documents")
}

/// `$documents`: what MongoDB desugars it into — the expression evaluated once (against an
/// empty document) into a field, a strict `$unwind` of that field (anything but an array is
/// 5858203 "an array is expected"), then `$replaceRoot` with each element (40228 for one that
/// is not a document, MongoDB's text).
pub(super) fn documents(e: &Expr, cx: &Cx<'_>) -> Result<Vec<Document>> {
    const FIELD: &str = "_tempDocumentsField";
    let Some(Bson::Array(values)) = e.eval_doc(&Document::new())? else {
        return Err(expr::eval_error(5_858_203, "an array is expected"));
    };
    let root = super::Reshape::parse(
        "$replaceRoot",
        &Bson::Document(bson::doc! {"newRoot": format!("${FIELD}")}),
        cx.now_ms,
    )?
    .ok_or_else(|| Error::bad("$replaceRoot"))?;
    values
        .into_iter()
        .map(|v| {
            let mut d = Document::new();
            d.insert(FIELD, v);
            root.apply(d)
        })
        .collect()
}

/// Whether a grouping key (`$bucket`'s and `$bucketAuto`'s `groupBy`, `$sortByCount`'s
/// argument) is an expression: a `$`-prefixed path or an operator object.
pub(super) fn is_expression(v: &Bson) -> bool {
    match v {
        Bson::String(s) => s.starts_with('$'),
        Bson::Document(d) => d.keys().next().is_some_and(|k| k.starts_with('$')),
        _ => false,
    }
}

/// A `groupBy`, compiled; anything but an expression is `code` with the message's two parts
/// around the value given.
fn group_by_expression(
    v: &Bson,
    now_ms: i64,
    code: i32,
    (before, after): (&str, &str),
) -> Result<Expr> {
    if !is_expression(v) {
        return Err(expr::parse_error(
            code,
            format!("{before}{}{after}", document::render_value(v)),
        ));
    }
    expr::compile(v, now_ms)
}

/// An expression that must fold to a constant (`$bucket`'s boundaries and default).
fn constant(v: &Bson, now_ms: i64) -> Result<Option<Bson>> {
    Ok(expr::compile(v, now_ms)?.fold()?.as_const().cloned())
}

/// Parses `$bucket` into what MongoDB makes of it: a `$group` whose `_id` is a `$switch`
/// putting each document under the lower boundary of its bucket (or the default), then a
/// `$sort` on `_id`.
pub(super) fn bucket(arg: &Bson, now_ms: i64) -> Result<(GroupSpec<'_>, Sort)> {
    let Bson::Document(spec) = arg else {
        return Err(expr::parse_error(
            40201,
            format!(
                "Argument to $bucket stage must be an object, but found type: {}.",
                query::type_name(Some(arg))
            ),
        ));
    };
    let (mut group_by, mut boundaries, mut default, mut output) = (None, Vec::new(), None, None);
    for (k, v) in spec {
        match k.as_str() {
            "groupBy" => {
                group_by = Some(group_by_expression(
                    v,
                    now_ms,
                    40202,
                    (
                        "The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression, but found: ",
                        ".",
                    ),
                )?);
            }
            "boundaries" => boundaries = bucket_boundaries(v, now_ms)?,
            "default" => {
                let Some(d) = constant(v, now_ms)? else {
                    return Err(expr::parse_error(
                        40195,
                        format!(
                            "The $bucket 'default' field must be a constant expression, but found: {}.",
                            document::render_value(v)
                        ),
                    ));
                };
                default = Some(d);
            }
            "output" => {
                let Bson::Document(o) = v else {
                    return Err(expr::parse_error(
                        40196,
                        format!(
                            "The $bucket 'output' field must be an object, but found type: {}.",
                            query::type_name(Some(v))
                        ),
                    ));
                };
                output = Some(o);
            }
            other => {
                return Err(expr::parse_error(
                    40197,
                    format!("Unrecognized option to $bucket: {other}."),
                ));
            }
        }
    }
    let (Some(group_by), Some(lower), Some(upper)) =
        (group_by, boundaries.first(), boundaries.last())
    else {
        return Err(expr::parse_error(
            40198,
            "$bucket requires 'groupBy' and 'boundaries' to be specified.",
        ));
    };
    if let Some(d) = &default
        && document::type_rank(d) == document::type_rank(lower)
        && compare(d, lower).is_ge()
        && compare(d, upper).is_lt()
    {
        return Err(expr::parse_error(
            40199,
            "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the highest boundary.",
        ));
    }
    // [case, then, …, default]: lower <= groupBy < upper gives lower.
    let mut branches = Vec::with_capacity(2 * boundaries.len() + 1);
    for pair in boundaries.windows(2) {
        let [lo, hi] = pair else { continue };
        let cmp = |c, bound: &Bson| {
            Expr::Op(
                Op::Cmp(c),
                vec![group_by.clone(), Expr::Const(bound.clone())],
            )
        };
        branches.push(Expr::Lazy(
            Lazy::And,
            vec![cmp(Cmp::Gte, lo), cmp(Cmp::Lt, hi)],
        ));
        branches.push(Expr::Const(lo.clone()));
    }
    branches.push(default.map_or(Expr::Absent, Expr::Const));
    let accs = match output {
        Some(o) => GroupSpec::parse_accumulators(o, now_ms)?,
        None => vec![("count", AccOp::Sum, Expr::Const(Bson::Int32(1)))],
    };
    let mut by_id = Document::new();
    by_id.insert("_id", 1);
    Ok((
        GroupSpec {
            id: Expr::Lazy(Lazy::Switch, branches),
            accs,
        },
        Sort::parse(&by_id)?,
    ))
}

/// `$bucket`'s boundaries: constants of one type bracket, strictly ascending, at least 2.
fn bucket_boundaries(v: &Bson, now_ms: i64) -> Result<Vec<Bson>> {
    let Bson::Array(items) = v else {
        return Err(expr::parse_error(
            40200,
            format!(
                "The $bucket 'boundaries' field must be an array, but found type: {}.",
                query::type_name(Some(v))
            ),
        ));
    };
    if items.len() > BUCKETS_MAX + 1 {
        return Err(Error::TooMany {
            what: "$bucket 'boundaries'",
            len: items.len(),
            max: BUCKETS_MAX + 1,
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(c) = constant(item, now_ms)? else {
            return Err(expr::parse_error(
                40191,
                format!(
                    "The $bucket 'boundaries' field must be an array of constant values, but found value: {}.",
                    document::render_value(item)
                ),
            ));
        };
        out.push(c);
    }
    if out.len() < 2 {
        return Err(expr::parse_error(
            40192,
            format!(
                "The $bucket 'boundaries' field must have at least 2 values, but found {} value(s).",
                out.len()
            ),
        ));
    }
    for (i, pair) in out.windows(2).enumerate() {
        let [lower, upper] = pair else { continue };
        if document::type_rank(lower) != document::type_rank(upper) {
            return Err(expr::parse_error(
                40193,
                format!(
                    "All values in the the 'boundaries' option to $bucket must have the same type. Found conflicting types {} and {}.",
                    query::type_name(Some(lower)),
                    query::type_name(Some(upper))
                ),
            ));
        }
        if !compare(lower, upper).is_lt() {
            return Err(expr::parse_error(
                40194,
                format!(
                    "The 'boundaries' option to $bucket must be sorted, but elements {} and {} are not in ascending order ({} is not less than {}).",
                    i,
                    i + 1,
                    text::render(Some(lower)),
                    text::render(Some(upper))
                ),
            ));
        }
    }
    Ok(out)
}

/// A `$bucketAuto` stage, parsed.
pub(super) struct BucketAuto<'p> {
    group_by: Expr,
    buckets: usize,
    /// `granularity`: boundaries rounded to a series of preferred numbers or powers of two.
    granularity: Option<Rounder>,
    /// The `output` accumulators, as a group on a constant key.
    spec: GroupSpec<'p>,
}

impl<'p> BucketAuto<'p> {
    pub(super) fn parse(arg: &'p Bson, now_ms: i64) -> Result<Self> {
        let Bson::Document(spec) = arg else {
            return Err(expr::parse_error(
                40240,
                format!(
                    "The argument to $bucketAuto must be an object, but found type: {}",
                    query::type_name(Some(arg))
                ),
            ));
        };
        let (mut group_by, mut buckets, mut accs, mut granularity) = (None, None, None, None);
        for (k, v) in spec {
            match k.as_str() {
                "groupBy" => {
                    group_by = Some(group_by_expression(
                        v,
                        now_ms,
                        40239,
                        (
                            "The $bucketAuto 'groupBy' field must be defined as a $-prefixed path or an expression object, but found: ",
                            "",
                        ),
                    )?);
                }
                "buckets" => buckets = Some(bucket_count(v)?),
                "output" => {
                    let Bson::Document(o) = v else {
                        return Err(expr::parse_error(
                            40244,
                            format!(
                                "The $bucketAuto 'output' field must be an object, but found type: {}",
                                query::type_name(Some(v))
                            ),
                        ));
                    };
                    accs = Some(GroupSpec::parse_accumulators(o, now_ms)?);
                }
                "granularity" => granularity = Some(Rounder::parse(v)?),
                other => {
                    return Err(expr::parse_error(
                        40245,
                        format!("Unrecognized option to $bucketAuto: {other}"),
                    ));
                }
            }
        }
        let (Some(group_by), Some(buckets)) = (group_by, buckets) else {
            return Err(expr::parse_error(
                40246,
                "$bucketAuto requires 'groupBy' and 'buckets' to be specified",
            ));
        };
        let accs = accs.unwrap_or_else(|| vec![("count", AccOp::Sum, Expr::Const(Bson::Int32(1)))]);
        Ok(Self {
            group_by,
            buckets,
            granularity,
            spec: GroupSpec {
                id: Expr::Const(Bson::Null),
                accs,
            },
        })
    }

    /// Folds the stage's constant expressions.
    pub(super) fn fold(&mut self) -> Result<()> {
        let fold = |e: &mut Expr| -> Result<()> {
            *e = std::mem::replace(e, Expr::Absent).fold()?;
            Ok(())
        };
        fold(&mut self.group_by)?;
        self.spec.accs.iter_mut().try_for_each(|(_, _, e)| fold(e))
    }

    /// Sorts the input by `groupBy` (missing as null; every document held and counted), then
    /// fills the buckets in order with about the same number of documents each, as MongoDB's
    /// `DocumentSourceBucketAuto::populateBuckets`: a bucket takes the documents whose value
    /// equals its last one, and the last bucket takes all that remain. Each bucket's `_id` is
    /// `{min, max}`: its first value, and the next bucket's first (the last bucket: its own
    /// last value).
    pub(super) fn run(&self, cx: &Cx<'_>, docs: Vec<Document>) -> Result<Vec<Document>> {
        let mut held = cx.budget("$bucketAuto");
        let mut keyed = Vec::with_capacity(docs.len());
        for d in docs {
            let key = self.group_by.eval_doc(&d)?;
            let key = match self.granularity {
                Some(_) => granular_key(key)?,
                None => key.unwrap_or(Bson::Null),
            };
            held.charge(document::bson_size(&d).saturating_add(document::value_size(&key)))?;
            keyed.push((key, d));
        }
        keyed.sort_by(|a, b| compare(&a.0, &b.0));
        #[expect(clippy::cast_precision_loss, reason = "MongoDB divides in double")]
        let approx = (keyed.len() as f64 / self.buckets as f64).round();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative count of documents"
        )]
        let approx = (approx as usize).max(1);
        let filled = match self.granularity {
            Some(rounder) => self.fill_rounded(keyed, approx, rounder)?,
            None => self.fill(keyed, approx),
        };
        let mut out = Vec::with_capacity(filled.len());
        for (min, max, members) in filled {
            let mut id = Document::new();
            id.insert("min", min);
            id.insert("max", max);
            let mut d = Document::new();
            d.insert("_id", id);
            let grouped = group(&self.spec, members, cx.budget("$bucketAuto"))?;
            for (k, v) in grouped.into_iter().next().unwrap_or_default() {
                if k != "_id" {
                    d.insert(k, v);
                }
            }
            out.push(d);
        }
        Ok(out)
    }

    /// The buckets of documents sorted by key, without a granularity: each bucket's `{min,
    /// max}` and members.
    fn fill(&self, keyed: Vec<(Bson, Document)>, approx: usize) -> Vec<Bucket> {
        let mut filled: Vec<Bucket> = Vec::new();
        let mut rest = keyed.into_iter().peekable();
        while let Some((min, first)) = rest.next() {
            let mut max = min.clone();
            let mut members = vec![first];
            let last = filled.len() + 1 == self.buckets;
            while let Some((k, _)) = rest.peek() {
                if !last && members.len() >= approx && !compare(k, &max).is_eq() {
                    break;
                }
                let Some((k, d)) = rest.next() else { break };
                max = k;
                members.push(d);
            }
            if let Some(prev) = filled.last_mut() {
                prev.1 = min.clone();
            }
            filled.push((min, max, members));
        }
        filled
    }

    /// The buckets with a granularity, as MongoDB 7.0's `populateNextBucket` and
    /// `adjustBoundariesAndGetMinForNextBucket`: the first bucket's min is its first key
    /// rounded down, every later min the bucket before's max; a bucket filled to its size also
    /// takes every following key below its last key rounded up, and that rounded value is its
    /// max (when it is zero and a key follows: that key rounded down).
    fn fill_rounded(
        &self,
        keyed: Vec<(Bson, Document)>,
        approx: usize,
        rounder: Rounder,
    ) -> Result<Vec<Bucket>> {
        let mut filled: Vec<Bucket> = Vec::new();
        let mut rest = keyed.into_iter();
        let mut next = rest.next();
        let mut previous_max: Option<Bson> = None;
        while filled.len() < self.buckets {
            let Some((first_key, first)) = next.take() else {
                break;
            };
            let min = match previous_max.take() {
                Some(max) => max,
                None => rounder.round_down(&first_key)?,
            };
            let mut max = first_key;
            let mut members = vec![first];
            let last = filled.len() + 1 == self.buckets;
            next = rest.next();
            while members.len() < approx || last {
                let Some((k, d)) = next.take() else { break };
                max = k;
                members.push(d);
                next = rest.next();
            }
            let boundary = rounder.round_up(&max)?;
            while let Some((k, _)) = &next {
                if compare(&boundary, k) != std::cmp::Ordering::Greater {
                    break;
                }
                // The bucket's max becomes the boundary (or the next key rounded down) below.
                let Some((_, d)) = next.take() else { break };
                members.push(d);
                next = rest.next();
            }
            let max = match &next {
                Some((k, _)) if document::as_f64(&boundary) == Some(0.0) => {
                    rounder.round_down(k)?
                }
                _ => boundary,
            };
            previous_max = Some(max.clone());
            filled.push((min, max, members));
        }
        Ok(filled)
    }
}

/// A bucket of `$bucketAuto`: its `min`, `max` and members.
type Bucket = (Bson, Bson, Vec<Document>);

/// A `groupBy` value under a granularity: a number, not NaN, not negative (MongoDB's 40258,
/// 40259, 40260; a missing value is not read as null here).
fn granular_key(key: Option<Bson>) -> Result<Bson> {
    let x = key.as_ref().and_then(document::as_f64);
    match (key, x) {
        (Some(k), Some(x)) if x >= 0.0 => Ok(k),
        (_, Some(x)) if x.is_nan() => Err(expr::parse_error(
            40259,
            "$bucketAuto can specify a 'granularity' with numeric boundaries only, but found a NaN",
        )),
        (_, Some(_)) => Err(expr::parse_error(
            40260,
            "$bucketAuto can specify a 'granularity' with non-negative numbers only, but found a negative number",
        )),
        (key, None) => Err(expr::parse_error(
            40258,
            format!(
                "$bucketAuto can specify a 'granularity' with numeric boundaries only, but found a value with type: {}",
                key.as_ref()
                    .map_or("missing", |k| query::type_name(Some(k)))
            ),
        )),
    }
}

/// `$bucketAuto`'s `buckets`: a positive 32-bit integer, at most [`BUCKETS_MAX`].
fn bucket_count(v: &Bson) -> Result<usize> {
    if !expr::numeric(v) {
        return Err(expr::parse_error(
            40241,
            format!(
                "The $bucketAuto 'buckets' field must be a numeric value, but found type: {}",
                query::type_name(Some(v))
            ),
        ));
    }
    let Some(n) = expr::int32_of(v) else {
        return Err(expr::parse_error(
            40242,
            format!(
                "The $bucketAuto 'buckets' field must be representable as a 32-bit integer, but found {}",
                text::format_g(document::as_f64(v).unwrap_or(f64::NAN))
            ),
        ));
    };
    let n = usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
        expr::parse_error(
            40243,
            format!("The $bucketAuto 'buckets' field must be greater than 0, but found: {n}"),
        )
    })?;
    if n > BUCKETS_MAX {
        return Err(Error::TooMany {
            what: "$bucketAuto 'buckets'",
            len: n,
            max: BUCKETS_MAX,
        });
    }
    Ok(n)
}

/// `$sample`'s `{size}`: a non-negative number (a fraction truncated).
pub(super) fn sample_size(arg: &Bson) -> Result<usize> {
    let Bson::Document(spec) = arg else {
        return Err(expr::parse_error(
            28745,
            "the $sample stage specification must be an object",
        ));
    };
    let mut size = None;
    for (k, v) in spec {
        if k != "size" {
            return Err(expr::parse_error(
                28748,
                format!("unrecognized option to $sample: {k}"),
            ));
        }
        if !expr::numeric(v) {
            return Err(expr::parse_error(
                28746,
                "size argument to $sample must be a number",
            ));
        }
        let n = super::coerce_to_long(v);
        if n < 0 {
            return Err(expr::parse_error(
                28747,
                "size argument to $sample must not be negative",
            ));
        }
        size = Some(usize::try_from(n).unwrap_or(usize::MAX));
    }
    size.ok_or_else(|| expr::parse_error(28749, "$sample stage must specify a size"))
}

/// `size` documents of the input picked at random, in random order (all of them, shuffled,
/// when there are no more). The input is held and counted against the stage's budget; the
/// random source is seeded from the store's injected clock ([`History::sample_seed`]).
///
/// [`History::sample_seed`]: super::super::History::sample_seed
pub(super) fn sample(size: usize, cx: &Cx<'_>, mut docs: Vec<Document>) -> Result<Vec<Document>> {
    // MongoDB samples a collection it cannot sample from storage by sorting it on random
    // keys, so what it holds is a sort's, and so is its message past the limit.
    let mut held = cx.budget("$sort");
    for d in &docs {
        held.charge(document::bson_size(d))?;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cx.history.sample_seed());
    let keep = size.min(docs.len());
    // A partial Fisher–Yates shuffle: the first `keep` places each take a random pick of what
    // is left.
    for i in 0..keep {
        let j = rng.random_range(i..docs.len());
        docs.swap(i, j);
    }
    docs.truncate(keep);
    Ok(docs)
}
