//! Aggregation pipelines: `$match $project $addFields $set $unset $sort $limit $skip $count
//! $unwind $group $lookup $replaceRoot $replaceWith $sortByCount`, and the stages of
//! `stages.rs` (`$lookup`'s sub-pipelines, `$facet $bucket $bucketAuto $unionWith $sample`).
//! A pipeline is built first:
//! every stage is parsed and every expression in it compiled (`expr.rs`), so a malformed stage
//! or expression fails before any document is read; then the documents flow through the built
//! stages. A leading `$match` (and a `$sort` right after it) runs through the planner, so it
//! uses indexes.

mod accumulate;
mod date;
pub(crate) use date::iso_string;
pub(crate) use text::format_g_digits;
mod date_arith;
mod date_parts;
mod densify;
mod expr;
mod fields;
mod fill;
mod granularity;
mod graph;
mod merge;
mod out;
mod percentile;
mod project;
mod regex_ops;
mod replace;
mod reshape;
mod sets;
mod sizes;
mod stages;
mod stats;
mod text;
mod trig;
mod window;
mod zip;
mod zone;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher};

use bson::{Bson, Document};

use super::decimal;
use super::document::{self, compare, get_path, split_path, values_equal};
use super::error::{Error, Result};
use super::query::{self, Filter, Sort};
use super::update::{set_path, unset_path};
use super::{
    BlockingSort, Executor, FindOptions, History, MemoryBudget, PIPELINE_STAGES_MAX,
    STAGE_DOCUMENT_BYTES_MAX, STAGE_DOCUMENT_DEPTH_MAX, SUB_PIPELINE_DEPTH_MAX,
};
use accumulate::{NAccumulator, NState};
use expr::nullish;
pub(crate) use expr::{
    ClusterTimeScope, Expr, command_let, compile as compile_expression, truthy, with_bound,
    write_cluster_time,
};
pub(crate) use project::FieldTree;
use reshape::Reshape;
pub(crate) use reshape::{EventPipeline, UpdatePipeline};

/// Bytes charged for one accumulator's state in a group, beside the values it holds.
const ACC_STATE_BYTES: usize = 16;

/// Runs a pipeline over `db.coll`, or, without a collection, a database-level pipeline whose
/// `$documents` makes its input. Each blocking stage (`$sort`, `$group`, `$lookup`,
/// `$graphLookup`, `$fill`, `$setWindowFields`, `$densify`, `$unwind`, `$facet`, `$bucketAuto`,
/// `$sample`) accounts the bytes it holds against its own limit, raised by `allow_disk_use`.
pub(crate) fn run(
    history: &History,
    db: &str,
    coll: Option<&str>,
    pipeline: &[Document],
    allow_disk_use: bool,
) -> Result<Vec<Document>> {
    for s in pipeline {
        document::check_depth_doc(s)?;
    }
    let mut stages = stage_list(pipeline)?;
    // `$documents` makes the input of a database-level aggregation, and only of one (checked
    // before its position, as MongoDB checks the namespace first).
    let starts_with_documents = stages
        .first()
        .is_some_and(|(name, _)| *name == "$documents");
    match (coll, starts_with_documents) {
        (Some(coll), true) => {
            return Err(Error::InvalidNamespace {
                name: format!("{db}.{coll}"),
                reason: "$documents can only be run with database-level aggregation",
            });
        }
        (None, false) => {
            return Err(Error::InvalidNamespace {
                name: db.to_owned(),
                reason: "a database-level aggregation must start with $documents; other stages need a collection",
            });
        }
        _ => {}
    }
    check_documents_first(&stages)?;
    // Build every stage before a document is read; `$$NOW` is this moment for all of them.
    let cx = Cx {
        history,
        db,
        now_ms: history.inner.now_ms(),
        allow_disk_use,
        depth: 0,
    };
    let writer = take_writer(&mut stages, &cx)?;
    // Push a leading $match and $sort into the find planner.
    let mut options = FindOptions {
        allow_disk_use,
        ..FindOptions::default()
    };
    let mut filter = Document::new();
    let mut rest = stages.as_slice();
    if coll.is_some()
        && let Some(((name, Bson::Document(m)), tail)) = rest.split_first()
        && *name == "$match"
    {
        filter = m.clone();
        rest = tail;
    }
    if coll.is_some()
        && let Some(((name, Bson::Document(s)), tail)) = rest.split_first()
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
    let built = build(rest, &cx)?;
    let docs = match coll {
        Some(coll) => history.find_in(Executor::Aggregation, db, coll, &filter, &options)?,
        None => Vec::new(),
    };
    let docs = run_built(&built, &cx, docs)?;
    // What `$merge` and `$out` write is not returned.
    match writer {
        Some(Writer::Merge(merge)) => {
            merge.run(history, cx.now_ms, docs, cx.budget("$merge"))?;
            return Ok(Vec::new());
        }
        Some(Writer::Out(out)) => {
            out.run(history, docs, cx.budget("$out"))?;
            return Ok(Vec::new());
        }
        None => {}
    }
    check_result(&docs, history.result_bytes_max())?;
    Ok(docs)
}

/// The stages that write a pipeline's output into a collection instead of returning it.
const WRITERS: &[&str] = &["$merge", "$out"];

/// A request pipeline's writing stage, parsed.
enum Writer {
    Merge(merge::Merge),
    Out(out::Out),
}

/// Takes the writing stage (`$merge`, `$out`) off the end of the request's pipeline, parsed.
/// MongoDB parses every stage, in order, before it checks their positions: a writer's parse
/// error comes after those of the stages before it, and a writer anywhere but last is 40601
/// once the whole pipeline has parsed.
fn take_writer(stages: &mut Vec<(&str, &Bson)>, cx: &Cx<'_>) -> Result<Option<Writer>> {
    let Some(&(name, arg)) = stages.last() else {
        return Ok(None);
    };
    if let Some(e) = misplaced_writer(stages) {
        parse_in_order(stages, cx)?;
        return Err(e);
    }
    if !WRITERS.contains(&name) {
        return Ok(None);
    }
    stages.pop();
    match parse_writer(name, arg, cx) {
        Ok(writer) => Ok(Some(writer)),
        Err(e) => {
            build(stages, cx)?;
            Err(e)
        }
    }
}

fn parse_writer(name: &str, arg: &Bson, cx: &Cx<'_>) -> Result<Writer> {
    Ok(match name {
        "$merge" => Writer::Merge(merge::Merge::parse(arg, cx.db, cx.now_ms)?),
        _ => Writer::Out(out::Out::parse(arg, cx.db)?),
    })
}

/// Parses every stage of `stages` in order (writers as writers), for their errors only.
fn parse_in_order(stages: &[(&str, &Bson)], cx: &Cx<'_>) -> Result<()> {
    for &(name, arg) in stages {
        if WRITERS.contains(&name) {
            parse_writer(name, arg, cx)?;
        } else {
            Stage::build(name, arg, cx, &mut Vec::new())?;
        }
    }
    Ok(())
}

/// MongoDB's 40601 for the first writer that is not the last stage, if there is one.
fn misplaced_writer(stages: &[(&str, &Bson)]) -> Option<Error> {
    let last = stages.len().saturating_sub(1);
    stages
        .iter()
        .take(last)
        .find(|(n, _)| WRITERS.contains(n))
        .map(|(n, _)| not_last(n))
}

/// MongoDB's 40601 for a stage that must end its pipeline.
fn not_last(name: &str) -> Error {
    expr::parse_error(
        40601,
        format!("{name} can only be the final stage in the pipeline"),
    )
}

/// Refuses a writing stage in a sub-pipeline, as MongoDB does once the sub-pipeline has
/// parsed (every stage's own errors first): 40601 when it is not the sub-pipeline's last
/// stage, else `code` with "`$out` `within`" (MongoDB's 51047 for `$lookup`, 31441 for
/// `$unionWith`, 40600 for `$facet`).
fn refuse_writers(stages: &[(&str, &Bson)], cx: &Cx<'_>, code: i32, within: &str) -> Result<()> {
    let Some((name, _)) = stages.iter().find(|(n, _)| WRITERS.contains(n)) else {
        return Ok(());
    };
    parse_in_order(stages, cx)?;
    Err(misplaced_writer(stages)
        .unwrap_or_else(|| expr::parse_error(code, format!("{name} {within}"))))
}

/// What the stages of one request's pipeline, and of the sub-pipelines in it, run with.
pub(crate) struct Cx<'h> {
    history: &'h History,
    db: &'h str,
    /// `$$NOW`, one value for the whole request.
    now_ms: i64,
    allow_disk_use: bool,
    /// How deep in `$lookup`/`$unionWith` sub-pipelines this runs: 0 for the request's own.
    depth: usize,
}

impl Cx<'_> {
    /// A memory account for one blocking stage.
    fn budget(&self, stage: &'static str) -> MemoryBudget {
        self.history
            .budget(Executor::Aggregation, stage, self.allow_disk_use)
    }

    /// The context of a `$lookup` or `$unionWith` sub-pipeline, one level deeper.
    ///
    /// # Errors
    /// MongoDB's 232 past [`SUB_PIPELINE_DEPTH_MAX`].
    fn nested(&self) -> Result<Self> {
        if self.depth >= SUB_PIPELINE_DEPTH_MAX {
            return Err(expr::parse_error(
                232,
                format!(
                    "Maximum number of nested sub-pipelines exceeded. Limit is {SUB_PIPELINE_DEPTH_MAX}"
                ),
            ));
        }
        Ok(Self {
            depth: self.depth + 1,
            ..*self
        })
    }
}

/// Each stage of a pipeline as its name and argument, checking the stage count and that each
/// stage document has exactly one field.
fn stage_list<'p>(
    pipeline: impl IntoIterator<Item = &'p Document, IntoIter: ExactSizeIterator>,
) -> Result<Vec<(&'p str, &'p Bson)>> {
    let pipeline = pipeline.into_iter();
    if pipeline.len() > PIPELINE_STAGES_MAX {
        return Err(Error::TooMany {
            what: "pipeline",
            len: pipeline.len(),
            max: PIPELINE_STAGES_MAX,
        });
    }
    let mut stages = Vec::with_capacity(pipeline.len());
    for s in pipeline {
        let mut it = s.iter();
        let (Some((name, arg)), None) = (it.next(), it.next()) else {
            return Err(Error::bad(
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        stages.push((name.as_str(), arg));
    }
    Ok(stages)
}

/// `$documents` may only be a pipeline's first stage (40602 elsewhere).
fn check_documents_first(stages: &[(&str, &Bson)]) -> Result<()> {
    if stages.iter().skip(1).any(|(name, _)| *name == "$documents") {
        return Err(expr::parse_error(
            40602,
            "$documents is only valid as the first stage in a pipeline.",
        ));
    }
    Ok(())
}

/// Builds stages (every expression compiled), then folds their constant expressions, as
/// MongoDB optimizes a parsed pipeline.
fn build<'p>(stages: &[(&'p str, &'p Bson)], cx: &Cx<'_>) -> Result<Vec<Stage<'p>>> {
    check_documents_first(stages)?;
    let mut built = Vec::with_capacity(stages.len());
    for &(name, arg) in stages {
        Stage::build(name, arg, cx, &mut built)?;
    }
    for s in &mut built {
        s.fold()?;
    }
    Ok(built)
}

/// Runs built stages over `docs`.
fn run_built(stages: &[Stage<'_>], cx: &Cx<'_>, mut docs: Vec<Document>) -> Result<Vec<Document>> {
    for (i, s) in stages.iter().enumerate() {
        // A $sort followed by $limit keeps only that many documents while sorting.
        let next_limit = match stages.get(i + 1) {
            Some(Stage::Limit(n)) => Some(*n),
            _ => None,
        };
        docs = s.run(cx, docs, next_limit)?;
        if s.nests_deeper() {
            for d in &docs {
                check_stage_depth(d)?;
            }
        }
    }
    Ok(docs)
}

/// Checks what an aggregation returns: each document at most [`STAGE_DOCUMENT_BYTES_MAX`]
/// (code 10334), all of them together at most `max` bytes (code 16389).
fn check_result(docs: &[Document], max: usize) -> Result<()> {
    let mut total = 0usize;
    for d in docs {
        let size = document::bson_size(d);
        if size > STAGE_DOCUMENT_BYTES_MAX {
            return Err(object_too_large(d, size));
        }
        total = total.saturating_add(size);
        if total > max {
            return Err(Error::ResultTooLarge {
                executor: Executor::Aggregation,
                len: total,
                max,
            });
        }
    }
    Ok(())
}

/// [`Error::ObjectTooLarge`] for a document of `size` bytes, naming its first element as
/// MongoDB's `BSONElement::toString` does (a string past 160 bytes cut to its first 150).
fn object_too_large(d: &Document, size: usize) -> Error {
    let first = d.iter().next().map(|(k, v)| {
        let value = match v {
            Bson::String(text) if text.len() + 1 > 160 => {
                let mut cut = 150;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("\"{}...\"", text.get(..cut).unwrap_or_default())
            }
            other if document::value_size(other) <= 1024 => document::render_value(other),
            other => format!(
                "<{} of {} bytes>",
                query::type_name(Some(other)),
                document::value_size(other)
            ),
        };
        format!("{k}: {value}")
    });
    Error::ObjectTooLarge {
        len: size,
        max: STAGE_DOCUMENT_BYTES_MAX,
        first,
    }
}

/// Checks the size of a value an expression is building (an array, an object, a string).
fn check_value_size(size: usize) -> Result<()> {
    if size > STAGE_DOCUMENT_BYTES_MAX {
        return Err(Error::ObjectTooLarge {
            len: size,
            max: STAGE_DOCUMENT_BYTES_MAX,
            first: None,
        });
    }
    Ok(())
}

/// The BSON size of `v` as it is placed `below` levels under the top of an array or object an
/// expression is building (1 for an element or a field), checking its depth: the value built
/// counts as the field of a document (depth 2), so that whatever fits can be returned.
///
/// # Errors
/// [`Error::NestingTooDeep`] past [`STAGE_DOCUMENT_DEPTH_MAX`]; the walk stops there.
fn built_size(v: &Bson, below: usize) -> Result<usize> {
    document::value_size_within(v, 2 + below, STAGE_DOCUMENT_DEPTH_MAX)
}

/// Checks the depth of a document a stage produced against [`STAGE_DOCUMENT_DEPTH_MAX`].
fn check_stage_depth(d: &Document) -> Result<()> {
    document::check_depth_doc_within(d, STAGE_DOCUMENT_DEPTH_MAX)
}

/// The stages this store runs besides the reshaping ones of [`Reshape`] (the names
/// [`Stage::build`] matches), for MongoDB's message about a stage an update pipeline may not
/// hold.
const STAGES_RUN: &[&str] = &[
    "$match",
    "$sort",
    "$limit",
    "$skip",
    "$count",
    "$unwind",
    "$group",
    "$lookup",
    "$graphLookup",
    "$facet",
    "$bucket",
    "$bucketAuto",
    "$unionWith",
    "$sample",
    "$sortByCount",
    "$documents",
    "$redact",
    "$fill",
    "$setWindowFields",
    "$densify",
    "$merge",
    "$out",
];

/// MongoDB 7.0's stages that this store does not run: they answer 115, while a name MongoDB
/// does not know answers 40324.
const MONGODB_STAGES: &[&str] = &[
    "$changeStream",
    "$changeStreamSplitLargeEvent",
    "$collStats",
    "$currentOp",
    "$geoNear",
    "$indexStats",
    "$listLocalSessions",
    "$listSampledQueries",
    "$listSearchIndexes",
    "$listSessions",
    "$planCacheStats",
    "$search",
    "$searchMeta",
    "$shardedDataDistribution",
];

/// The error for a stage or accumulator `name` this store does not run: 115 when MongoDB has
/// it (`mongodb` lists those), else MongoDB's own `unknown` code and message.
fn unknown_name(name: &str, mongodb: &[&str], what: &str, unknown: (i32, String)) -> Error {
    if mongodb.contains(&name) {
        Error::Unsupported(format!("{what} {name}"))
    } else {
        expr::parse_error(unknown.0, unknown.1)
    }
}

/// A pipeline stage, parsed, its expressions compiled.
enum Stage<'p> {
    Match(Filter),
    /// `$project`, `$addFields`/`$set`, `$unset`, `$replaceRoot`/`$replaceWith`.
    Reshape(Reshape),
    Sort(Sort),
    Limit(usize),
    Skip(usize),
    Count(&'p str),
    Unwind(UnwindSpec<'p>),
    Group(GroupSpec<'p>),
    Lookup(Box<stages::Lookup<'p>>),
    GraphLookup(Box<graph::GraphLookup<'p>>),
    /// Each facet's name and sub-pipeline.
    Facet(Vec<(&'p str, Vec<Stage<'p>>)>),
    BucketAuto(stages::BucketAuto<'p>),
    /// The collection (none when the sub-pipeline starts with `$documents`) and its
    /// sub-pipeline.
    UnionWith(Option<&'p str>, Vec<Stage<'p>>),
    /// How many documents to keep.
    Sample(usize),
    /// `$documents`: the array its expression evaluates to, as the pipeline's input.
    Documents(Expr),
    /// `$redact`'s expression, compiled with its three variables defined.
    Redact(Expr),
    Fill(Box<fill::Fill>),
    SetWindowFields(Box<window::SetWindowFields>),
    Densify(Box<densify::Densify>),
}

/// A parse error of an expression inside `stage`, with the context MongoDB gives it there.
fn in_stage(stage: &str, e: Error) -> Error {
    match e {
        Error::InvalidExpression { code, message } => Error::InvalidExpression {
            code,
            message: format!("Invalid {stage} :: caused by :: {message}"),
        },
        other => other,
    }
}

impl<'p> Stage<'p> {
    /// Parses one stage (`$sortByCount` becomes a `$group` and a `$sort`) onto `out`.
    fn build(name: &'p str, arg: &'p Bson, cx: &Cx<'_>, out: &mut Vec<Stage<'p>>) -> Result<()> {
        let now_ms = cx.now_ms;
        let compile = |e: &Bson| expr::compile(e, now_ms);
        let doc_arg = || match arg {
            Bson::Document(d) => Ok(d),
            _ => Err(Error::bad(format!(
                "the {name} stage specification must be an object"
            ))),
        };
        if let Some(reshape) = Reshape::parse(name, arg, now_ms)? {
            out.push(Self::Reshape(reshape));
            return Ok(());
        }
        let stage = match name {
            "$match" => Self::Match(Filter::parse_at(doc_arg()?, now_ms)?),
            "$sort" => Self::Sort(Sort::parse(doc_arg()?)?),
            "$limit" => Self::Limit(count_arg(arg, "$limit")?),
            "$skip" => Self::Skip(count_arg(arg, "$skip")?),
            "$count" => Self::Count(count_field(arg)?),
            "$unwind" => Self::Unwind(parse_unwind(arg)?),
            "$group" => Self::Group(GroupSpec::parse(doc_arg()?, now_ms)?),
            "$lookup" => Self::Lookup(Box::new(stages::Lookup::parse(arg, cx)?)),
            "$graphLookup" => Self::GraphLookup(Box::new(graph::GraphLookup::parse(arg, cx)?)),
            "$facet" => stages::facet(arg, cx)?,
            "$bucket" => {
                let (group, sort) = stages::bucket(arg, now_ms)?;
                out.push(Self::Group(group));
                Self::Sort(sort)
            }
            "$bucketAuto" => Self::BucketAuto(stages::BucketAuto::parse(arg, now_ms)?),
            "$unionWith" => stages::union_with(arg, cx)?,
            "$sample" => Self::Sample(stages::sample_size(arg)?),
            "$documents" => Self::Documents(compile(arg)?),
            "$redact" => Self::Redact(reshape::compile_redact(arg, now_ms)?),
            "$fill" => Self::Fill(Box::new(fill::Fill::parse(arg, now_ms)?)),
            "$densify" => Self::Densify(Box::new(densify::Densify::parse(arg, now_ms)?)),
            // The request's own pipeline takes its writer off first ([`take_writer`]) and a
            // sub-pipeline refuses one ([`refuse_writers`]); anywhere else it is misplaced.
            "$merge" | "$out" => return Err(not_last(name)),
            "$setWindowFields" => {
                Self::SetWindowFields(Box::new(window::SetWindowFields::parse(arg, now_ms)?))
            }
            "$sortByCount" => {
                // MongoDB's checks: an object's first field or a string must start with `$`.
                const NOT_AN_EXPRESSION: &str = "the sortByCount field must be defined as a $-prefixed path or an expression inside an object";
                match arg {
                    Bson::Document(d) if !d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                        return Err(expr::parse_error(40147, NOT_AN_EXPRESSION));
                    }
                    Bson::String(s) if !s.starts_with('$') => {
                        return Err(expr::parse_error(40148, NOT_AN_EXPRESSION));
                    }
                    Bson::Document(_) | Bson::String(_) => {}
                    _ => {
                        return Err(expr::parse_error(
                            40149,
                            "the sortByCount field must be specified as a string or as an object",
                        ));
                    }
                }
                out.push(Self::Group(GroupSpec {
                    id: compile(arg)?,
                    accs: vec![("count", AccOp::Sum, Expr::Const(Bson::Int32(1)))],
                }));
                let mut by_count = Document::new();
                by_count.insert("count", -1);
                Self::Sort(Sort::parse(&by_count)?)
            }
            other => {
                return Err(unknown_name(
                    other,
                    MONGODB_STAGES,
                    "aggregation stage",
                    (
                        40324,
                        format!("Unrecognized pipeline stage name: '{other}'"),
                    ),
                ));
            }
        };
        out.push(stage);
        Ok(())
    }

    /// Folds the stage's constant expressions ([`Expr::fold`]).
    fn fold(&mut self) -> Result<()> {
        let fold = |e: &mut Expr| -> Result<()> {
            *e = std::mem::replace(e, Expr::Absent).fold()?;
            Ok(())
        };
        match self {
            Self::Reshape(r) => r.fold(),
            Self::Group(g) => {
                fold(&mut g.id)?;
                g.accs.iter_mut().try_for_each(|(_, _, e)| fold(e))
            }
            Self::BucketAuto(b) => b.fold(),
            Self::GraphLookup(g) => g.fold(),
            Self::Documents(e) | Self::Redact(e) => fold(e),
            Self::Fill(f) => f.fold(),
            Self::SetWindowFields(w) => w.fold(),
            _ => Ok(()),
        }
    }

    /// The stage's name, for MongoDB's messages about where a stage may not be.
    fn name(&self) -> &'static str {
        match self {
            Self::Match(_) => "$match",
            Self::Reshape(r) => r.name(),
            Self::Sort(_) => "$sort",
            Self::Limit(_) => "$limit",
            Self::Skip(_) => "$skip",
            Self::Count(_) => "$count",
            Self::Unwind(_) => "$unwind",
            Self::Group(_) => "$group",
            Self::Lookup(_) => "$lookup",
            Self::GraphLookup(_) => "$graphLookup",
            Self::Facet(_) => "$facet",
            Self::BucketAuto(_) => "$bucketAuto",
            Self::UnionWith(..) => "$unionWith",
            Self::Sample(_) => "$sample",
            Self::Documents(_) => "$documents",
            Self::Redact(_) => "$redact",
            Self::Fill(_) => "$fill",
            Self::SetWindowFields(_) => "$setWindowFields",
            Self::Densify(_) => "$densify",
        }
    }

    /// Whether the stage puts values of its input documents into new documents one or more
    /// levels deeper than they were (so a pipeline repeating it nests them ever deeper): its
    /// output is checked against [`STAGE_DOCUMENT_DEPTH_MAX`]. A reshaping stage checks its
    /// own, in update pipelines too.
    fn nests_deeper(&self) -> bool {
        matches!(
            self,
            Self::Group(_)
                | Self::Lookup(_)
                | Self::GraphLookup(_)
                | Self::Facet(_)
                | Self::BucketAuto(_)
                | Self::SetWindowFields(_)
        )
    }

    /// Whether the stage may run inside `$facet`: not `$facet` itself nor `$documents` (a
    /// pipeline's input, 40600 as in MongoDB), nor a stage whose sub-pipeline holds a `$facet`.
    fn allowed_in_facet(&self) -> bool {
        match self {
            Self::Facet(_) | Self::Documents(_) => false,
            // A sub-pipeline's own `$documents` is its input, not the facet's.
            Self::Lookup(l) => l
                .stages()
                .iter()
                .all(Self::allowed_in_sub_pipeline_in_facet),
            Self::UnionWith(_, sub) => sub.iter().all(Self::allowed_in_sub_pipeline_in_facet),
            _ => true,
        }
    }

    /// [`Stage::allowed_in_facet`] for a stage of a `$lookup`/`$unionWith` sub-pipeline inside
    /// a `$facet`, where `$documents` (first, as always) is allowed.
    fn allowed_in_sub_pipeline_in_facet(&self) -> bool {
        matches!(self, Self::Documents(_)) || self.allowed_in_facet()
    }

    fn run(
        &self,
        cx: &Cx<'_>,
        docs: Vec<Document>,
        next_limit: Option<usize>,
    ) -> Result<Vec<Document>> {
        let budget = |stage| cx.budget(stage);
        Ok(match self {
            Self::Match(f) => {
                let mut kept = Vec::with_capacity(docs.len());
                for d in docs {
                    if f.try_matches(&d)? {
                        kept.push(d);
                    }
                }
                kept
            }
            Self::Reshape(r) => docs
                .into_iter()
                .map(|d| r.apply(d))
                .collect::<Result<_>>()?,
            Self::Sort(s) => {
                let mut held = BlockingSort::new(s, next_limit, budget("$sort"));
                for d in docs {
                    held.push(d)?;
                }
                held.finish()
            }
            Self::Limit(n) => docs.into_iter().take(*n).collect(),
            Self::Skip(n) => docs.into_iter().skip(*n).collect(),
            Self::Count(field) => {
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let mut d = Document::new();
                    d.insert(
                        *field,
                        i32::try_from(docs.len()).map_or(
                            Bson::Int64(i64::try_from(docs.len()).unwrap_or(i64::MAX)),
                            Bson::Int32,
                        ),
                    );
                    vec![d]
                }
            }
            Self::Unwind(spec) => unwind(spec, docs, budget("$unwind"))?,
            Self::Group(spec) => group(spec, docs, budget("$group"))?,
            Self::Lookup(l) => l.run(cx, docs)?,
            Self::GraphLookup(g) => g.run(cx, docs)?,
            Self::Facet(facets) => stages::run_facet(facets, cx, docs)?,
            Self::BucketAuto(b) => b.run(cx, docs)?,
            Self::UnionWith(coll, sub) => stages::run_union_with(*coll, sub, cx, docs)?,
            Self::Sample(n) => stages::sample(*n, cx, docs)?,
            Self::Documents(e) => stages::documents(e, cx)?,
            Self::Fill(f) => f.run(docs, budget("$fill"))?,
            Self::SetWindowFields(w) => w.run(docs, budget("$setWindowFields"))?,
            Self::Densify(d) => d.run(docs, budget("$densify"))?,
            Self::Redact(e) => {
                let mut kept = Vec::with_capacity(docs.len());
                for d in docs {
                    kept.extend(reshape::redact(e, d)?);
                }
                kept
            }
        })
    }
}

/// `$limit`'s or `$skip`'s count, read as MongoDB's `parseIntegerElementToNonNegativeLong`
/// reads it: an integral number that fits a 64-bit integer, not negative (5107201 for `$limit`,
/// 5107200 for `$skip`, with its reasons, checked in its order); a `$limit` of 0 is 15958.
fn count_arg(arg: &Bson, name: &str) -> Result<usize> {
    let code = if name == "$limit" {
        5_107_201
    } else {
        5_107_200
    };
    let refuse = |reason: &str| {
        expr::parse_error(
            code,
            format!(
                "invalid argument to {name} stage: {reason}: {name}: {}",
                element_text(arg)
            ),
        )
    };
    let n = document::integer_element(arg).map_err(refuse)?;
    if n < 0 {
        return Err(refuse("Expected a non-negative number in"));
    }
    if n == 0 && name == "$limit" {
        return Err(expr::parse_error(15958, "the limit must be positive"));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// A stage's argument as MongoDB's `BSONElement::toString` writes it into a message.
fn element_text(v: &Bson) -> String {
    document::render_value(v)
}

/// `$count`'s field, checked as MongoDB 7.0 does (40156–40160; `_id` fails in the `$group`
/// it stands for, 15948).
fn count_field(arg: &Bson) -> Result<&str> {
    let Bson::String(field) = arg else {
        return Err(expr::parse_error(
            40156,
            "the count field must be a non-empty string",
        ));
    };
    let (code, message) = if field.is_empty() {
        (40157, "the count field must be a non-empty string")
    } else if field.starts_with('$') {
        (40158, "the count field cannot be a $-prefixed path")
    } else if field.contains('\0') {
        (40159, "the count field cannot contain a null byte")
    } else if field.contains('.') {
        (40160, "the count field cannot contain '.'")
    } else if field == "_id" {
        (15948, "a group's _id may only be specified once")
    } else {
        return Ok(field);
    };
    Err(expr::parse_error(code, message))
}

/// `$unwind`'s specification: the unwound field's path (without its `$`), the field that
/// receives each element's index, and whether a document without elements is kept.
#[derive(Debug)]
struct UnwindSpec<'p> {
    path: &'p str,
    index: Option<&'p str>,
    preserve: bool,
}

/// Parses `$unwind` as MongoDB's `DocumentSourceUnwind::createFromBson`: the object form's
/// options checked in their order, then the path (codes 15981, 28808–28812, 28818, 28822 and
/// [`field_path`]'s).
fn parse_unwind(arg: &Bson) -> Result<UnwindSpec<'_>> {
    let type_of = |v: &Bson| query::type_name(Some(v));
    let (path, index, preserve) = match arg {
        Bson::String(s) => (s.as_str(), None, false),
        Bson::Document(d) => {
            let (mut path, mut index, mut preserve) = ("", None, false);
            for (k, v) in d {
                match (k.as_str(), v) {
                    ("path", Bson::String(s)) => path = s,
                    ("path", other) => {
                        return Err(expr::parse_error(
                            28808,
                            format!(
                                "expected a string as the path for $unwind stage, got {}",
                                type_of(other)
                            ),
                        ));
                    }
                    ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => preserve = *b,
                    ("preserveNullAndEmptyArrays", other) => {
                        return Err(expr::parse_error(
                            28809,
                            format!(
                                "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage, got {}",
                                type_of(other)
                            ),
                        ));
                    }
                    ("includeArrayIndex", Bson::String(s)) if !s.is_empty() => {
                        if s.starts_with('$') {
                            return Err(expr::parse_error(
                                28822,
                                format!(
                                    "includeArrayIndex option to $unwind stage should not be prefixed with a '$': {s}"
                                ),
                            ));
                        }
                        index = Some(s.as_str());
                    }
                    ("includeArrayIndex", other) => {
                        // MongoDB's text, with its two spaces.
                        return Err(expr::parse_error(
                            28810,
                            format!(
                                "expected a non-empty string for the includeArrayIndex  option to $unwind stage, got {}",
                                type_of(other)
                            ),
                        ));
                    }
                    (other, _) => {
                        return Err(expr::parse_error(
                            28811,
                            format!("unrecognized option to $unwind stage: {other}"),
                        ));
                    }
                }
            }
            (path, index, preserve)
        }
        other => {
            return Err(expr::parse_error(
                15981,
                format!(
                    "expected either a string or an object as specification for $unwind stage, got {}",
                    type_of(other)
                ),
            ));
        }
    };
    if path.is_empty() {
        return Err(expr::parse_error(
            28812,
            "no path specified to $unwind stage",
        ));
    }
    let Some(field) = path.strip_prefix('$') else {
        return Err(expr::parse_error(
            28818,
            format!("path option to $unwind stage should be prefixed with a '$': {path}"),
        ));
    };
    Ok(UnwindSpec {
        path: field_path(field)?,
        index: index.map(field_path).transpose()?,
        preserve,
    })
}

/// A path as MongoDB's `FieldPath` checks it: not empty (40352), not ending in `.` (40353),
/// no empty part (15998), no part starting with `$` (16410) but a DBRef's `$id`, `$ref` and
/// `$db`; at most `PATH_PARTS_MAX` parts.
pub(super) fn field_path(path: &str) -> Result<&str> {
    if path.is_empty() {
        return Err(expr::parse_error(
            40352,
            "FieldPath cannot be constructed with empty string",
        ));
    }
    if path.ends_with('.') {
        return Err(expr::parse_error(
            40353,
            "FieldPath must not end with a '.'.",
        ));
    }
    for part in path.split('.') {
        if part.is_empty() {
            return Err(expr::parse_error(
                15998,
                "FieldPath field names may not be empty strings.",
            ));
        }
        if part.starts_with('$') && !matches!(part, "$id" | "$ref" | "$db") {
            return Err(expr::parse_error(
                16410,
                "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
            ));
        }
    }
    split_path(path)?;
    Ok(path)
}

/// `$unwind`; the copies it makes of each document count against `held`.
fn unwind(
    spec: &UnwindSpec<'_>,
    docs: Vec<Document>,
    mut held: MemoryBudget,
) -> Result<Vec<Document>> {
    let UnwindSpec {
        path: field,
        index: index_field,
        preserve,
    } = *spec;
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
                    let size = document::bson_size(&copy);
                    if size > STAGE_DOCUMENT_BYTES_MAX {
                        return Err(object_too_large(&copy, size));
                    }
                    held.charge(size)?;
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
    /// Welford's running count, mean and sum of squared deviations, in double.
    StdDev(stats::Welford),
    MergeObjects(Document),
    N(NState),
    /// The t-digest and the bytes of it charged so far.
    Quantile(Box<percentile::TDigest>, usize),
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
/// and 0 included), strings by their text, documents and arrays element by element, binary
/// data by subtype and bytes, timestamps and regular expressions by their parts. Values of the
/// remaining types feed only their bracket and so share one bucket.
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
        Bson::Binary(b) => {
            u8::from(b.subtype).hash(h);
            b.bytes.hash(h);
        }
        Bson::Timestamp(t) => (t.time, t.increment).hash(h),
        Bson::RegularExpression(r) => (r.pattern.as_str(), r.options.as_str()).hash(h),
        _ => {}
    }
}

/// An accumulator of `$group`.
enum AccOp {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    /// `$stdDevPop` (false) or `$stdDevSamp` (true).
    StdDev(bool),
    MergeObjects,
    N(NAccumulator),
    /// `$percentile` (its `p`) or `$median` (`[0.5]`, true).
    Quantile(Vec<f64>, bool),
}

/// MongoDB 7.0's `$group` accumulators that this store does not run: they answer 115, while a
/// name MongoDB does not know answers 15952.
const MONGODB_ACCUMULATORS: &[&str] = &["$accumulator"];

/// A `$group` stage, parsed: its key expression and each output field's accumulator.
struct GroupSpec<'p> {
    id: Expr,
    accs: Vec<(&'p str, AccOp, Expr)>,
}

impl<'p> GroupSpec<'p> {
    fn parse(spec: &'p Document, now_ms: i64) -> Result<Self> {
        let id = spec
            .get("_id")
            .ok_or_else(|| Error::bad("a group specification must include an _id"))?;
        Ok(Self {
            accs: Self::parse_accumulators(spec, now_ms)?,
            id: expr::compile(id, now_ms)?,
        })
    }

    /// Each output field of `spec` (but `_id`) with its accumulator and input expression: a
    /// `$group` specification, or the `output` of `$bucket`/`$bucketAuto`.
    fn parse_accumulators(spec: &'p Document, now_ms: i64) -> Result<Vec<(&'p str, AccOp, Expr)>> {
        project::check_spec_keys(spec)?;
        let mut accs = Vec::new();
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
            let (Some((op, e)), None) = (it.next(), it.next()) else {
                return Err(Error::bad(format!(
                    "The field '{field}' must specify one accumulator"
                )));
            };
            if let Some((acc, input)) = NAccumulator::parse(op, e, now_ms)? {
                accs.push((field.as_str(), AccOp::N(acc), input));
                continue;
            }
            let op = match op.as_str() {
                "$sum" => AccOp::Sum,
                "$avg" => AccOp::Avg,
                "$min" => AccOp::Min,
                "$max" => AccOp::Max,
                "$first" => AccOp::First,
                "$last" => AccOp::Last,
                "$push" => AccOp::Push,
                "$addToSet" => AccOp::AddToSet,
                "$stdDevPop" => AccOp::StdDev(false),
                "$stdDevSamp" => AccOp::StdDev(true),
                "$mergeObjects" => AccOp::MergeObjects,
                "$percentile" | "$median" => {
                    let spec = percentile::parse(op, e, percentile::Form::Accumulator)?;
                    let input = expr::compile(spec.input, now_ms)?;
                    let ps = spec.percentiles(|p| expr::compile(p, now_ms))?;
                    accs.push((field.as_str(), AccOp::Quantile(ps, spec.median), input));
                    continue;
                }
                "$count" => {
                    // `$count: {}` counts the group's documents, as `$sum: 1`.
                    if !matches!(e, Bson::Document(d) if d.is_empty()) {
                        return Err(expr::parse_error(
                            14,
                            "$count takes no arguments, i.e. $count:{}",
                        ));
                    }
                    accs.push((field.as_str(), AccOp::Sum, Expr::Const(Bson::Int32(1))));
                    continue;
                }
                other => {
                    return Err(unknown_name(
                        other,
                        MONGODB_ACCUMULATORS,
                        "accumulator",
                        (15952, format!("unknown group operator '{other}'")),
                    ));
                }
            };
            accs.push((field.as_str(), op, expr::compile(e, now_ms)?));
        }
        Ok(accs)
    }
}

/// `$group`; each group's key, accumulator state and held values count against `held`.
fn group(
    spec: &GroupSpec<'_>,
    docs: Vec<Document>,
    mut held: MemoryBudget,
) -> Result<Vec<Document>> {
    let accs = &spec.accs;
    let mut groups: Vec<(Bson, Vec<Acc>)> = Vec::new();
    let mut index = EqualityIndex::default();
    for d in &docs {
        let key = spec.id.eval_doc(d)?.unwrap_or(Bson::Null);
        let (pos, hash) = index.find(&groups, &key, |(k, _)| k);
        let idx = match pos {
            Some(i) => i,
            None => {
                let fresh = accs
                    .iter()
                    .map(|(_, op, _)| {
                        Ok(match op {
                            AccOp::Sum => Acc::Sum(Bson::Int32(0)),
                            AccOp::Avg => Acc::Avg(Bson::Int32(0), 0),
                            AccOp::Min => Acc::Min(None),
                            AccOp::Max => Acc::Max(None),
                            AccOp::First => Acc::First(None),
                            AccOp::Last => Acc::Last(None),
                            AccOp::Push => Acc::Push(Vec::new()),
                            AccOp::AddToSet => Acc::AddToSet(Vec::new(), EqualityIndex::default()),
                            AccOp::StdDev(_) => Acc::StdDev(stats::Welford::default()),
                            AccOp::MergeObjects => Acc::MergeObjects(Document::new()),
                            AccOp::N(n) => Acc::N(n.start(&key)?),
                            AccOp::Quantile(..) => Acc::Quantile(
                                Box::default(),
                                percentile::TDigest::default().bytes(),
                            ),
                        })
                    })
                    .collect::<Result<_>>()?;
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
        for ((_, op, e), acc) in accs.iter().zip(state.iter_mut()) {
            let v = e.eval_doc(d)?;
            match acc {
                // Numbers only, in double.
                Acc::StdDev(w) => {
                    if let Some(x) = &v {
                        w.push(x);
                    }
                }
                // Objects merged, later fields winning; null and missing skipped.
                Acc::MergeObjects(merged) => match v {
                    None | Some(Bson::Null | Bson::Undefined) => {}
                    Some(Bson::Document(o)) => {
                        held.charge(document::bson_size(&o))?;
                        merged.extend(o);
                    }
                    Some(other) => {
                        return Err(expr::eval_error(
                            40400,
                            format!(
                                "$mergeObjects requires object inputs, but input {} is of type {}",
                                text::render(Some(&other)),
                                query::type_name(Some(&other))
                            ),
                        ));
                    }
                },
                Acc::N(st) => {
                    if let AccOp::N(n) = op {
                        n.process(st, v, d, &mut held)?;
                    }
                }
                // The digest's buffer and centroids, charged as they grow.
                Acc::Quantile(digest, charged) => {
                    digest.add(v.as_ref());
                    let bytes = digest.bytes();
                    if bytes > *charged {
                        held.charge(bytes - *charged)?;
                        *charged = bytes;
                    }
                }
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
            for ((field, op, _), acc) in accs.iter().zip(state) {
                let v = match acc {
                    Acc::StdDev(w) => w.finish(matches!(op, AccOp::StdDev(true))),
                    Acc::MergeObjects(merged) => Bson::Document(merged),
                    Acc::N(st) => match op {
                        AccOp::N(n) => n.finish(st),
                        _ => Bson::Null,
                    },
                    Acc::Quantile(mut digest, _) => match op {
                        AccOp::Quantile(ps, median) => percentile::finish(*median, ps, &mut digest),
                        _ => Bson::Null,
                    },
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
                d.insert(*field, v);
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

/// The product of numbers in decimal, left to right; `None` for none or a non-number.
fn decimal_product(args: &[Bson]) -> Option<Bson> {
    let (first, rest) = args.split_first()?;
    rest.iter().try_fold(decimal::to_decimal(first)?, |acc, x| {
        decimal::multiply(&acc, x)
    })
}

/// A TypeMismatch (code 14) from an arithmetic operator.
fn type_mismatch(message: String) -> Error {
    Error::expression(14, message)
}

/// `$add`: numbers and at most one date, left to right. A null or missing operand makes the
/// result null, unless an operand before it is neither a number nor a date (MongoDB checks
/// each operand in turn).
fn add_operands(args: &[Bson]) -> Result<Bson> {
    let mut total = Bson::Int32(0);
    let mut date = None;
    for a in args {
        match a {
            Bson::Null | Bson::Undefined => return Ok(Bson::Null),
            Bson::DateTime(_) if date.is_some() => {
                return Err(Error::expression(
                    16612,
                    "only one date allowed in an $add expression",
                ));
            }
            Bson::DateTime(d) => date = Some(d.timestamp_millis()),
            n if document::type_rank(n) == 10 => total = add(&total, n),
            other => {
                return Err(type_mismatch(format!(
                    "$add only supports numeric or date types, not {}",
                    query::type_name(Some(other))
                )));
            }
        }
    }
    let Some(millis) = date else {
        return Ok(total);
    };
    // The numbers are milliseconds added to the date; a fraction rounds half away from zero.
    let sum = match total {
        Bson::Int32(n) => millis.checked_add(i64::from(n)),
        Bson::Int64(n) => millis.checked_add(n),
        other => {
            #[expect(
                clippy::cast_precision_loss,
                reason = "MongoDB adds a double in double"
            )]
            let t = millis as f64 + document::as_f64(&other).unwrap_or(f64::NAN);
            rounded_millis(t)
        }
    };
    sum.map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms)))
        .ok_or_else(|| Error::expression(15, "date overflow in $add"))
}

/// A double number of milliseconds rounded half away from zero; `None` outside `i64`.
fn rounded_millis(t: f64) -> Option<i64> {
    if !(-TWO_POW_63..TWO_POW_63).contains(&t) {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "range checked above: strictly inside i64"
    )]
    let ms = t.round() as i64;
    Some(ms)
}

/// 2^63 as a double: the first double past `i64::MAX`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A number as MongoDB's `coerceToLong`: integers as they are, a double truncated toward
/// zero (saturating), a decimal rounded half to even.
fn coerce_to_long(v: &Bson) -> i64 {
    match v {
        Bson::Int32(n) => i64::from(*n),
        Bson::Int64(n) => *n,
        #[expect(clippy::cast_possible_truncation, reason = "saturating, as intended")]
        Bson::Double(d) => *d as i64,
        #[expect(clippy::cast_possible_truncation, reason = "saturating, as intended")]
        other => document::as_f64(other).unwrap_or(0.0).round_ties_even() as i64,
    }
}

/// `$subtract`: two numbers, two dates (milliseconds between them), or a date minus
/// milliseconds; null or missing gives null.
fn subtract_operands(a: &Bson, b: &Bson) -> Result<Bson> {
    let numeric = |v: &Bson| document::type_rank(v) == 10;
    if numeric(a) && numeric(b) {
        return Ok(subtract_numbers(a, b));
    }
    if nullish(Some(a)) || nullish(Some(b)) {
        return Ok(Bson::Null);
    }
    match (a, b) {
        (Bson::DateTime(x), Bson::DateTime(y)) => Ok(Bson::Int64(
            x.timestamp_millis().wrapping_sub(y.timestamp_millis()),
        )),
        (Bson::DateTime(x), n) if numeric(n) => Ok(Bson::DateTime(bson::DateTime::from_millis(
            x.timestamp_millis().wrapping_sub(coerce_to_long(n)),
        ))),
        (Bson::DateTime(_), other) => Err(type_mismatch(format!(
            "can't $subtract {} from Date",
            query::type_name(Some(other))
        ))),
        _ => Err(type_mismatch(format!(
            "can't $subtract {} from {}",
            query::type_name(Some(b)),
            query::type_name(Some(a))
        ))),
    }
}

/// `a - b` of two numbers in the wider type: decimal, double, long (a double when it
/// overflows), or int (a long when it does not fit).
fn subtract_numbers(a: &Bson, b: &Bson) -> Bson {
    if let Some(d) = decimal::subtract(a, b) {
        return d;
    }
    let double = || {
        Bson::Double(
            document::as_f64(a).unwrap_or(f64::NAN) - document::as_f64(b).unwrap_or(f64::NAN),
        )
    };
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => {
            let d = i64::from(*x) - i64::from(*y);
            i32::try_from(d).map_or(Bson::Int64(d), Bson::Int32)
        }
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => coerce_to_long(a)
            .checked_sub(coerce_to_long(b))
            .map_or_else(double, Bson::Int64),
        _ => double(),
    }
}

/// `$multiply`: numbers, left to right, in the widest type among them (a long product that
/// overflows becomes a double); null or missing gives null.
fn multiply_operands(args: &[Bson]) -> Result<Bson> {
    for a in args {
        if nullish(Some(a)) {
            return Ok(Bson::Null);
        }
        if document::type_rank(a) != 10 {
            return Err(type_mismatch(format!(
                "$multiply only supports numeric types, not {}",
                query::type_name(Some(a))
            )));
        }
    }
    if args.iter().any(|a| matches!(a, Bson::Decimal128(_))) {
        return Ok(decimal_product(args).unwrap_or(Bson::Null));
    }
    let mut double = 1.0f64;
    let mut long = Some(1i64);
    let mut widest = 0u8; // 0 int, 1 long, 2 double
    for a in args {
        double *= document::as_f64(a).unwrap_or(f64::NAN);
        match a {
            Bson::Int32(_) => {}
            Bson::Int64(_) => widest = widest.max(1),
            _ => widest = 2,
        }
        long = long.and_then(|p| p.checked_mul(coerce_to_long(a)));
    }
    Ok(match (widest, long) {
        (0, Some(p)) => i32::try_from(p).map_or(Bson::Int64(p), Bson::Int32),
        (1, Some(p)) => Bson::Int64(p),
        _ => Bson::Double(double),
    })
}

/// `$divide`: two numbers, a double (a decimal when either is one); null or missing gives
/// null; a zero divisor is an error (BadValue).
fn divide_operands(a: &Bson, b: &Bson) -> Result<Bson> {
    let numeric = |v: &Bson| document::type_rank(v) == 10;
    if numeric(a) && numeric(b) {
        if document::as_f64(b) == Some(0.0) {
            return Err(Error::expression(2, "can't $divide by zero"));
        }
        return Ok(decimal::divide_values(a, b).unwrap_or_else(|| {
            Bson::Double(
                document::as_f64(a).unwrap_or(f64::NAN) / document::as_f64(b).unwrap_or(f64::NAN),
            )
        }));
    }
    if nullish(Some(a)) || nullish(Some(b)) {
        return Ok(Bson::Null);
    }
    Err(type_mismatch(format!(
        "$divide only supports numeric types, not {} and {}",
        query::type_name(Some(a)),
        query::type_name(Some(b))
    )))
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

    /// Every document of `db.c`.
    fn all_docs(h: &History) -> Vec<Document> {
        h.find("db", "c", &doc! {}, &FindOptions::default())
            .unwrap()
    }

    fn bytes(docs: &[Document]) -> usize {
        docs.iter().map(document::bson_size).sum()
    }

    /// What a sort on `k` holds for `docs`: each document and its sort key.
    fn sorted_bytes(docs: &[Document]) -> usize {
        docs.iter()
            .map(|d| super::super::held_size(&[d.get("k").cloned().unwrap_or(Bson::Null)], d))
            .sum()
    }

    /// What a `$lookup` of `db.f` by `_id` on `k` holds over `all`: the foreign collection,
    /// and a copy of the one document each of `all` joins.
    fn lookup_bytes(h: &History, all: &[Document]) -> usize {
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
        bytes(&foreign) + joined
    }

    #[test]
    fn merge_holds_its_batch_within_the_blocking_limit() {
        let (_dir, h) = open();
        // The ten documents of `db.c`, written whole.
        let all: usize = all_docs(&h).iter().map(document::bson_size).sum();
        let pipeline = [doc! {"$merge": "out"}];
        at_limit(
            &h,
            &pipeline,
            all,
            "Exceeded memory limit for $merge, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
        assert_eq!(h.count("db", "out", &doc! {}).unwrap(), 10);
    }

    #[test]
    fn out_holds_its_batch_within_the_blocking_limit() {
        let (_dir, h) = open();
        let all: usize = all_docs(&h).iter().map(document::bson_size).sum();
        let pipeline = [doc! {"$out": "out"}];
        at_limit(
            &h,
            &pipeline,
            all,
            "Exceeded memory limit for $out, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
        assert_eq!(h.count("db", "out", &doc! {}).unwrap(), 10);
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
            ..AggregateOptions::default()
        };
        h.aggregate_with("db", "c", pipeline, options).unwrap();
    }

    /// Compiles `expr` and evaluates it against `doc`.
    fn eval_opt(expr: &Bson, doc: &Document) -> super::Result<Option<Bson>> {
        super::expr::compile(expr, 0)?.eval_doc(doc)
    }

    /// Evaluates `expr` against `{a: 1, n: null, arr: [1, 2]}`.
    fn eval(expr: &Bson) -> super::Result<Option<Bson>> {
        eval_opt(expr, &doc! {"a": 1, "n": null, "arr": [1, 2]})
    }

    /// Each case: an expression and what MongoDB 7.0 gives for it (`None`: missing), or
    /// `Err((code, message))`.
    type Case = (Bson, Result<Option<Bson>, (i32, &'static str)>);

    fn check(cases: Vec<Case>, eval: impl Fn(&Bson) -> super::Result<Option<Bson>>) {
        for (expr, want) in cases {
            let got = eval(&expr).map_err(|e| (e.code(), e.to_string()));
            let want = want.map_err(|(code, message)| {
                // An operand count is checked when the expression is parsed, before the
                // executor runs, so its message has no executor prefix.
                if code == 16020 {
                    (code, message.to_owned())
                } else {
                    (
                        code,
                        format!("PlanExecutor error during aggregation :: caused by :: {message}"),
                    )
                }
            });
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn comparisons_order_a_missing_operand_below_null() {
        let t = |b: bool| Ok(Some(Bson::Boolean(b)));
        let cmp = |i: i32| Ok(Some(Bson::Int32(i)));
        check(
            vec![
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
            ],
            eval,
        );
    }

    /// Evaluates `expr` against a document with a string, a date, a long and a double.
    fn eval_typed(expr: &Bson) -> super::Result<Option<Bson>> {
        eval_opt(
            expr,
            &doc! {"s": "x", "d": bson::DateTime::from_millis(1_000), "l": 5_i64, "f": 2.5, "n": null},
        )
    }

    #[test]
    fn arithmetic_refuses_operands_that_are_not_numbers_as_mongodb_does() {
        let date = |ms| Ok(Some(Bson::DateTime(bson::DateTime::from_millis(ms))));
        let v = |b: Bson| Ok(Some(b));
        let cases: Vec<Case> = vec![
            // $add: numbers and one date, each operand checked in turn.
            (
                bson!({"$add": [1, "$s"]}),
                Err((14, "$add only supports numeric or date types, not string")),
            ),
            (
                bson!({"$add": ["$s", null]}),
                Err((14, "$add only supports numeric or date types, not string")),
            ),
            (
                bson!({"$add": [1, [1]]}),
                Err((14, "$add only supports numeric or date types, not array")),
            ),
            (bson!({"$add": [null, "$s"]}), v(Bson::Null)),
            (bson!({"$add": ["$missing", "$s"]}), v(Bson::Null)),
            (bson!({"$add": [1, 2]}), v(Bson::Int32(3))),
            (bson!({"$add": [1, "$l"]}), v(Bson::Int64(6))),
            (bson!({"$add": [1, "$f"]}), v(Bson::Double(3.5))),
            (bson!({"$add": []}), v(Bson::Int32(0))),
            (bson!({"$add": ["$d", 500]}), date(1_500)),
            (bson!({"$add": [1, "$d", "$l"]}), date(1_006)),
            (bson!({"$add": ["$d", 1.5]}), date(1_002)),
            (
                bson!({"$add": ["$d", "$d"]}),
                Err((16612, "only one date allowed in an $add expression")),
            ),
            // $subtract: numbers, dates, or a date minus milliseconds.
            (
                bson!({"$subtract": ["$s", 1]}),
                Err((14, "can't $subtract int from string")),
            ),
            (
                bson!({"$subtract": [1, "$s"]}),
                Err((14, "can't $subtract string from int")),
            ),
            (
                bson!({"$subtract": ["$d", "$s"]}),
                Err((14, "can't $subtract string from Date")),
            ),
            (
                bson!({"$subtract": [1, "$d"]}),
                Err((14, "can't $subtract date from int")),
            ),
            (bson!({"$subtract": [null, "$s"]}), v(Bson::Null)),
            (bson!({"$subtract": ["$missing", 1]}), v(Bson::Null)),
            (bson!({"$subtract": [5, 3]}), v(Bson::Int32(2))),
            (bson!({"$subtract": ["$l", 1]}), v(Bson::Int64(4))),
            (bson!({"$subtract": [5, 0.5]}), v(Bson::Double(4.5))),
            (
                bson!({"$subtract": [i64::MIN, 1]}),
                v(Bson::Double(-9_223_372_036_854_775_808.0)),
            ),
            (bson!({"$subtract": ["$d", "$d"]}), v(Bson::Int64(0))),
            (bson!({"$subtract": ["$d", 250]}), date(750)),
            (
                bson!({"$subtract": [1]}),
                Err((
                    16020,
                    "Expression $subtract takes exactly 2 arguments. 1 were passed in.",
                )),
            ),
            // $multiply: numbers only.
            (
                bson!({"$multiply": [2, "$s"]}),
                Err((14, "$multiply only supports numeric types, not string")),
            ),
            (
                bson!({"$multiply": ["$s", null]}),
                Err((14, "$multiply only supports numeric types, not string")),
            ),
            (
                bson!({"$multiply": [2, "$d"]}),
                Err((14, "$multiply only supports numeric types, not date")),
            ),
            (bson!({"$multiply": [null, "$s"]}), v(Bson::Null)),
            (bson!({"$multiply": [2, "$missing"]}), v(Bson::Null)),
            (bson!({"$multiply": [2, 3]}), v(Bson::Int32(6))),
            (bson!({"$multiply": [2, "$l"]}), v(Bson::Int64(10))),
            (bson!({"$multiply": [2, "$f"]}), v(Bson::Double(5.0))),
            (
                bson!({"$multiply": [i64::MAX, 2]}),
                v(Bson::Double(18_446_744_073_709_551_616.0)),
            ),
            (bson!({"$multiply": []}), v(Bson::Int32(1))),
            // $divide: two numbers.
            (
                bson!({"$divide": ["$s", 2]}),
                Err((
                    14,
                    "$divide only supports numeric types, not string and int",
                )),
            ),
            (
                bson!({"$divide": [2, "$d"]}),
                Err((14, "$divide only supports numeric types, not int and date")),
            ),
            (bson!({"$divide": ["$s", null]}), v(Bson::Null)),
            (bson!({"$divide": [1, "$missing"]}), v(Bson::Null)),
            (bson!({"$divide": [1, 4]}), v(Bson::Double(0.25))),
            (bson!({"$divide": [4, 2]}), v(Bson::Double(2.0))),
            (
                bson!({"$divide": [1, 0]}),
                Err((2, "can't $divide by zero")),
            ),
            (
                bson!({"$divide": [1, 2, 3]}),
                Err((
                    16020,
                    "Expression $divide takes exactly 2 arguments. 3 were passed in.",
                )),
            ),
            // $concat and $size name the type they were given.
            (
                bson!({"$concat": ["a", 1]}),
                Err((16702, "$concat only supports strings, not int")),
            ),
            (bson!({"$concat": ["a", "$missing"]}), v(Bson::Null)),
            (
                bson!({"$size": "$s"}),
                Err((
                    17124,
                    "The argument to $size must be an array, but was of type: string",
                )),
            ),
            (
                bson!({"$size": "$missing"}),
                Err((
                    17124,
                    "The argument to $size must be an array, but was of type: missing",
                )),
            ),
        ];
        check(cases, eval_typed);
        let e = eval_typed(&bson!({"$subtract": ["$s", 1]})).unwrap_err();
        assert_eq!(e.code_name(), "TypeMismatch");
    }

    #[test]
    fn add_fields_evaluates_every_expression_against_the_input_document() {
        let (_d, h) = History::open_temporary();
        h.insert_one("db", "a", doc! {"_id": 1, "x": 1}).unwrap();
        let out = h
            .aggregate(
                "db",
                "a",
                &[doc! {"$addFields": {"x": 5, "y": {"$add": ["$x", 1]}, "z": "$y"}}],
            )
            .unwrap();
        assert_eq!(out, vec![doc! {"_id": 1, "x": 5, "y": 2}]);
        let out = h
            .aggregate("db", "a", &[doc! {"$set": {"x": "$missing", "w": "$x"}}])
            .unwrap();
        assert_eq!(out, vec![doc! {"_id": 1, "w": 1}]);
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

    const MAX: usize = super::STAGE_DOCUMENT_BYTES_MAX;

    /// The message of a 10334 for a document of `len` bytes (MongoDB's `BSONObj` text).
    fn too_large(len: usize, first: &str) -> String {
        format!(
            "PlanExecutor error during aggregation :: caused by :: BSONObj size: {len} \
             (0x{len:X}) is invalid. Size must be between 0 and 16793600(16MB){first}"
        )
    }

    #[test]
    fn a_value_an_expression_builds_is_at_most_the_stage_document_limit() {
        // Three elements of an array or fields of an object: 5 + 2 × (8 + L) + 7 bytes.
        let l = (MAX - 28) / 2;
        let d = doc! {"s": "a".repeat(l), "t": "a".repeat(l + 1), "h": "a".repeat(MAX / 2)};
        for (at_max, over) in [
            (bson!(["$s", "$s", 1]), bson!(["$s", "$t", 1])),
            (
                bson!({"x": "$s", "y": "$s", "z": 1}),
                bson!({"x": "$s", "y": "$t", "z": 1}),
            ),
            // A string of MAX bytes, then one more.
            (
                bson!({"$concat": ["$h", "$h"]}),
                bson!({"$concat": ["$h", "$h", "a"]}),
            ),
        ] {
            let v = eval_opt(&at_max, &d).unwrap().unwrap();
            match &v {
                Bson::String(s) => assert_eq!(s.len(), MAX),
                other => assert_eq!(document::value_size(other), MAX),
            }
            let e = eval_opt(&over, &d).unwrap_err();
            assert_eq!((e.code(), e.code_name()), (10334, "BSONObjectTooLarge"));
            assert_eq!(e.to_string(), too_large(MAX + 1, ""));
        }
    }

    #[test]
    fn a_stage_document_is_at_most_the_internal_bson_limit() {
        let (_d, h) = History::open_temporary();
        // {t: s + s + x} is 13 + 2L + len(x) bytes.
        let l = (MAX - 14) / 2;
        h.insert_one("db", "big", doc! {"_id": 1, "s": "a".repeat(l)})
            .unwrap();
        let concat =
            |tail: &str| vec![doc! {"$project": {"_id": 0, "t": {"$concat": ["$s", "$s", tail]}}}];
        let out = h.aggregate("db", "big", &concat("x")).unwrap();
        assert_eq!(document::bson_size(&out[0]), MAX);
        let e = h.aggregate("db", "big", &concat("xy")).unwrap_err();
        assert_eq!((e.code(), e.code_name()), (10334, "BSONObjectTooLarge"));
        let first = format!(" First element: t: \"{}...\"", "a".repeat(150));
        assert_eq!(e.to_string(), too_large(MAX + 1, &first));
        // $addFields checks the document it builds, here with `s` still in it, before a later
        // stage could drop `s` again.
        let add = |tail: &str| {
            vec![
                doc! {"$addFields": {"t": {"$concat": ["$s", "$s", tail]}}},
                doc! {"$project": {"_id": 0, "t": 1}},
            ]
        };
        let e = h.aggregate("db", "big", &add("x")).unwrap_err();
        assert_eq!(e.code(), 10334);
        assert!(e.to_string().ends_with("First element: _id: 1"), "{e}");
    }

    #[test]
    fn the_documents_a_lookup_matches_for_one_document_are_at_most_the_limit() {
        let (_d, h) = History::open_temporary();
        h.insert_one("db", "l", doc! {"_id": 1, "k": 1}).unwrap();
        // Each foreign document {_id, k, p} is 29 + len(p) bytes.
        let half = (MAX - 58) / 2;
        let foreign = |extra: usize| {
            vec![
                doc! {"_id": 1, "k": 1, "p": "a".repeat(half)},
                doc! {"_id": 2, "k": 1, "p": "a".repeat(half + extra)},
            ]
        };
        let pipeline = [
            doc! {"$lookup": {"from": "f", "localField": "k", "foreignField": "k", "as": "j"}},
            doc! {"$project": {"n": {"$size": "$j"}}},
        ];
        h.insert_many("db", "f", foreign(0)).unwrap();
        let out = h.aggregate("db", "l", &pipeline).unwrap();
        assert_eq!(out, vec![doc! {"_id": 1, "n": 2}]);
        h.drop_collection("db", "f").unwrap();
        h.insert_many("db", "f", foreign(1)).unwrap();
        let e = h.aggregate("db", "l", &pipeline).unwrap_err();
        assert_eq!((e.code(), e.code_name()), (4568, "Location4568"));
        assert_eq!(
            e.to_string(),
            "PlanExecutor error during aggregation :: caused by :: Total size of documents in f \
             matching pipeline's $lookup stage exceeds 16793600 bytes"
        );
    }

    #[test]
    fn what_find_and_aggregate_return_is_at_most_the_result_limit() {
        let (_d, h) = open();
        let all = all_docs(&h);
        let total = bytes(&all);
        let sorted = FindOptions {
            sort: Some(doc! {"k": 1}),
            ..FindOptions::default()
        };
        let ids = FindOptions {
            projection: Some(doc! {"_id": 1}),
            ..FindOptions::default()
        };
        let id_bytes = bytes(&h.find("db", "c", &doc! {}, &ids).unwrap());
        let pipeline = [doc! {"$match": {}}];
        h.set_result_bytes_max(total);
        assert_eq!(
            h.find("db", "c", &doc! {}, &FindOptions::default())
                .unwrap()
                .len(),
            10
        );
        assert_eq!(h.find("db", "c", &doc! {}, &sorted).unwrap().len(), 10);
        assert_eq!(h.aggregate("db", "c", &pipeline).unwrap().len(), 10);
        h.set_result_bytes_max(total - 1);
        for options in [FindOptions::default(), sorted] {
            let e = h.find("db", "c", &doc! {}, &options).unwrap_err();
            assert_eq!((e.code(), e.code_name()), (16389, "Location16389"));
            assert_eq!(
                e.to_string(),
                format!(
                    "Executor error during find command :: caused by :: find result exceeds \
                     the maximum response size of {} bytes; use limit and skip to page through it",
                    total - 1
                )
            );
        }
        let e = h.aggregate("db", "c", &pipeline).unwrap_err();
        assert_eq!(e.code(), 16389);
        assert_eq!(
            e.to_string(),
            format!(
                "PlanExecutor error during aggregation :: caused by :: aggregation result \
                 exceeds the maximum response size of {} bytes; use $limit and $skip to page \
                 through it",
                total - 1
            )
        );
        // What counts is what is returned: the projected documents, the pipeline's output.
        h.set_result_bytes_max(id_bytes);
        assert_eq!(h.find("db", "c", &doc! {}, &ids).unwrap().len(), 10);
        let group = [doc! {"$group": {"_id": "$k"}}];
        assert_eq!(h.aggregate("db", "c", &group).unwrap().len(), 3);
        h.set_result_bytes_max(id_bytes - 1);
        assert_eq!(h.find("db", "c", &doc! {}, &ids).unwrap_err().code(), 16389);
    }

    #[test]
    fn each_blocking_stage_holds_at_most_its_memory_limit() {
        let (_d, h) = open();
        let all = all_docs(&h);
        // $sort holds every document ($skip keeps it out of the find).
        let sort = [doc! {"$skip": 0}, doc! {"$sort": {"k": 1}}];
        at_limit(
            &h,
            &sort,
            sorted_bytes(&all),
            "Sort exceeded memory limit of {max} bytes, but did not opt in to external sorting.",
        );
        // A leading $sort runs in the find, and names the aggregation.
        at_limit(
            &h,
            &[doc! {"$sort": {"k": 1}}],
            sorted_bytes(&all),
            "Sort exceeded memory limit of {max} bytes, but did not opt in to external sorting.",
        );
        // A $limit after the sort keeps only about twice that many documents held.
        let one = sorted_bytes(&all[..1]);
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
        // An n-accumulator holds at most n values per group (a released value is no longer
        // counted); $topN also holds each kept value's sort key.
        let last = [doc! {"$group": {"_id": "$k", "s": {"$lastN": {"n": 2, "input": "$s"}}}}];
        at_limit(
            &h,
            &last,
            3 * (4 + 16) + 6 * (5 + 100),
            "Exceeded memory limit for $group, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
        let top = [
            doc! {"$group": {"_id": "$k", "s": {"$topN": {"n": 2, "sortBy": {"_id": -1}, "output": "$s"}}}},
        ];
        at_limit(
            &h,
            &top,
            3 * (4 + 16) + 6 * (4 + 5 + 100),
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
        at_limit(
            &h,
            &lookup,
            lookup_bytes(&h, &all),
            "Exceeded memory limit for $lookup, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in.",
        );
    }

    #[test]
    fn stages_that_hold_their_whole_input_count_it_against_the_limit() {
        let (_d, h) = open();
        let all = all_docs(&h);
        let memory = |stage: &str| {
            format!(
                "Exceeded memory limit for {stage}, but didn't allow external sort. \
                 Pass allowDiskUse:true to opt in."
            )
        };
        // $facet holds its input once, however many facets read it.
        let facet = [doc! {"$facet": {"a": [{"$count": "n"}], "b": [{"$limit": 1}]}}];
        at_limit(&h, &facet, bytes(&all), &memory("$facet"));
        // $bucketAuto holds each document and its groupBy value (an int32: 4 bytes).
        let auto = [doc! {"$bucketAuto": {"groupBy": "$k", "buckets": 2}}];
        at_limit(&h, &auto, bytes(&all) + 10 * 4, &memory("$bucketAuto"));
        // $sample holds its input as the random sort MongoDB runs for it.
        let sample = [doc! {"$sample": {"size": 3}}];
        at_limit(
            &h,
            &sample,
            bytes(&all),
            "Sort exceeded memory limit of {max} bytes, but did not opt in to external sorting.",
        );
        // A $lookup's sub-pipeline joins count as the equality's do.
        let lookup = [
            doc! {"$lookup": {"from": "f", "let": {"k": "$k"}, "pipeline": [{"$match": {"$expr": {"$eq": ["$_id", "$$k"]}}}], "as": "j"}},
        ];
        at_limit(&h, &lookup, lookup_bytes(&h, &all), &memory("$lookup"));
    }

    #[test]
    fn allow_disk_use_raises_the_limit_to_a_bounded_one() {
        let (_d, h) = open();
        let all = all_docs(&h);
        let factor = super::super::BLOCKING_BYTES_DISK_USE_MAX / super::super::BLOCKING_BYTES_MAX;
        let total = sorted_bytes(&all);
        let options = AggregateOptions {
            allow_disk_use: true,
            ..AggregateOptions::default()
        };
        let sort = [doc! {"$skip": 0}, doc! {"$sort": {"k": 1}}];
        h.set_blocking_bytes_max(total.div_ceil(factor));
        h.aggregate_with("db", "c", &sort, options.clone()).unwrap();
        h.set_blocking_bytes_max(total.div_ceil(factor) - 1);
        let e = h.aggregate_with("db", "c", &sort, options).unwrap_err();
        assert_eq!((e.code(), e.code_name()), (146, "ExceededMemoryLimit"));
    }

    #[test]
    fn a_find_sort_without_an_index_holds_at_most_the_limit() {
        let (_d, h) = open();
        let all = all_docs(&h);
        let sorted = FindOptions {
            sort: Some(doc! {"k": 1}),
            ..FindOptions::default()
        };
        h.set_blocking_bytes_max(sorted_bytes(&all));
        assert_eq!(h.find("db", "c", &doc! {}, &sorted).unwrap().len(), 10);
        h.set_blocking_bytes_max(sorted_bytes(&all) - 1);
        let e = h.find("db", "c", &doc! {}, &sorted).unwrap_err();
        assert_eq!(e.code(), 292);
        assert_eq!(
            e.to_string(),
            format!(
                "Executor error during find command :: caused by :: Sort exceeded memory limit \
                 of {} bytes, but did not opt in to external sorting.",
                sorted_bytes(&all) - 1
            )
        );
        // With a limit it is a top-k sort: about twice the limit is held.
        let top = FindOptions {
            limit: Some(2),
            ..sorted.clone()
        };
        h.set_blocking_bytes_max(4 * sorted_bytes(&all[..1]));
        assert_eq!(h.find("db", "c", &doc! {}, &top).unwrap().len(), 2);
        // allowDiskUse raises it.
        let disk = FindOptions {
            allow_disk_use: true,
            ..sorted
        };
        h.set_blocking_bytes_max(sorted_bytes(&all) - 1);
        assert_eq!(h.find("db", "c", &doc! {}, &disk).unwrap().len(), 10);
    }
}
