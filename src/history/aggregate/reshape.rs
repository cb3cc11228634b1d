//! The stages that reshape each document on its own — `$project`, `$addFields`/`$set`,
//! `$unset`, `$replaceRoot`/`$replaceWith` — and the update pipelines built from them
//! (`updateOne(filter, [{$set: …}, …])`, MongoDB 4.2's pipeline-style updates).

use bson::{Bson, Document};

use super::super::document::{self, split_path};
use super::super::error::{Error, Result};
use super::super::query::{self, Filter};
use super::super::update::unset_path;
use super::{
    Expr, FieldTree, MONGODB_STAGES, STAGES_RUN, check_stage_depth, expr, stage_list, text,
};

/// A stage that maps one document to one document.
pub(super) enum Reshape {
    /// `$project`, `$addFields`, `$set`.
    Fields(FieldTree),
    /// `$unset`'s paths.
    Unset(Vec<String>),
    /// `$replaceRoot`/`$replaceWith`: the expression and how MongoDB's message names it.
    Root(Expr, &'static str),
}

impl Reshape {
    /// Parses stage `name` with `arg` when it is one of the reshaping stages; `None` for any
    /// other name.
    ///
    /// # Errors
    /// MongoDB's parse errors of the stage and of its expressions.
    pub(super) fn parse(name: &str, arg: &Bson, now_ms: i64) -> Result<Option<Self>> {
        let doc_arg = || match arg {
            Bson::Document(d) => Ok(d),
            _ => Err(Error::bad(format!(
                "the {name} stage specification must be an object"
            ))),
        };
        let unset_shape =
            || Error::bad("$unset specification must be a string or an array of strings");
        Ok(Some(match name {
            "$project" => Self::Fields(FieldTree::parse_project(doc_arg()?, now_ms)?),
            "$addFields" | "$set" => {
                Self::Fields(FieldTree::parse_add_fields(doc_arg()?, now_ms, name)?)
            }
            "$unset" => Self::Unset(match arg {
                Bson::String(s) => vec![s.clone()],
                Bson::Array(a) => a
                    .iter()
                    .map(|p| p.as_str().map(str::to_owned).ok_or_else(unset_shape))
                    .collect::<Result<_>>()?,
                _ => return Err(unset_shape()),
            }),
            "$replaceRoot" => {
                let Bson::Document(spec) = arg else {
                    return Err(expr::parse_error(
                        40229,
                        format!(
                            "expected an object as specification for $replaceRoot stage, got {}",
                            query::type_name(Some(arg))
                        ),
                    ));
                };
                let mut new_root = None;
                for (k, v) in spec {
                    if k != "newRoot" {
                        return Err(expr::parse_error(
                            40415,
                            format!("BSON field '$replaceRoot.{k}' is an unknown field."),
                        ));
                    }
                    new_root = Some(v);
                }
                let Some(new_root) = new_root else {
                    return Err(expr::parse_error(
                        40414,
                        "BSON field '$replaceRoot.newRoot' is missing but a required field",
                    ));
                };
                Self::Root(expr::compile(new_root, now_ms)?, "'newRoot' expression ")
            }
            "$replaceWith" => Self::Root(expr::compile(arg, now_ms)?, "'replacement document'"),
            _ => return Ok(None),
        }))
    }

    /// The stage applied to `d`.
    ///
    /// # Errors
    /// The expressions' run-time errors; 40228 when a new root is not a document;
    /// [`Error::NestingTooDeep`] for a result past [`super::STAGE_DOCUMENT_DEPTH_MAX`] (a
    /// field set at a dotted path nests its value deeper, stage after stage).
    pub(super) fn apply(&self, d: Document) -> Result<Document> {
        let out = self.apply_unchecked(d)?;
        if !matches!(self, Self::Unset(_)) {
            check_stage_depth(&out)?;
        }
        Ok(out)
    }

    fn apply_unchecked(&self, d: Document) -> Result<Document> {
        match self {
            Self::Fields(tree) => tree.apply(d),
            Self::Unset(paths) => {
                let mut d = d;
                for p in paths {
                    unset_path(&mut d, &split_path(p)?);
                }
                Ok(d)
            }
            Self::Root(e, what) => match e.eval_doc(&d)? {
                Some(Bson::Document(root)) => Ok(root),
                other => Err(expr::eval_error(
                    40228,
                    format!(
                        "{what} must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'. Input document: {}",
                        text::render(other.as_ref()),
                        query::type_name(other.as_ref()),
                        text::render(Some(&Bson::Document(d)))
                    ),
                )),
            },
        }
    }

    /// Folds the stage's constant expressions.
    pub(super) fn fold(&mut self) -> Result<()> {
        match self {
            Self::Fields(tree) => tree.fold(),
            Self::Root(e, _) => {
                *e = std::mem::replace(e, Expr::Absent).fold()?;
                Ok(())
            }
            Self::Unset(_) => Ok(()),
        }
    }

    /// The stage's name in MongoDB's messages about where a stage may not be.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Fields(_) => "$project",
            Self::Unset(_) => "$unset",
            Self::Root(..) => "$replaceRoot",
        }
    }
}

/// A pipeline-style update, compiled once (`$$NOW` fixed for the whole write): the stages run
/// on each matched document in turn, and what comes out replaces it.
#[derive(Default)]
pub(crate) struct UpdatePipeline(Vec<Reshape>);

impl std::fmt::Debug for UpdatePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(Reshape::name))
            .finish()
    }
}

impl UpdatePipeline {
    /// Parses `pipeline`. Only the reshaping stages are allowed: any other stage this store or
    /// MongoDB knows is code 72 (`InvalidOptions`, "`$match` is not allowed to be used within
    /// an update"), an unknown name MongoDB's 40324.
    ///
    /// # Errors
    /// As above; the stages' own parse errors; [`Error::TooMany`] beyond
    /// [`super::PIPELINE_STAGES_MAX`] stages; nesting past the document limit.
    pub(crate) fn parse(pipeline: &[Document], now_ms: i64) -> Result<Self> {
        for s in pipeline {
            document::check_depth_doc(s)?;
        }
        let mut stages = Vec::with_capacity(pipeline.len());
        for (name, arg) in stage_list(pipeline)? {
            let Some(mut stage) = Reshape::parse(name, arg, now_ms)? else {
                if STAGES_RUN.contains(&name) || MONGODB_STAGES.contains(&name) {
                    return Err(Error::update(
                        72,
                        format!("{name} is not allowed to be used within an update"),
                    ));
                }
                return Err(expr::parse_error(
                    40324,
                    format!("Unrecognized pipeline stage name: '{name}'"),
                ));
            };
            stage.fold()?;
            stages.push(stage);
        }
        Ok(Self(stages))
    }

    /// The stages run over `doc`, in order.
    ///
    /// # Errors
    /// The stages' run-time errors.
    pub(crate) fn apply(&self, doc: Document) -> Result<Document> {
        self.0.iter().try_fold(doc, |d, stage| stage.apply(d))
    }
}

/// `$redact`'s variables and the values MongoDB gives them inside its expression (and only
/// there).
const REDACT_VARIABLES: [(&str, &str); 3] =
    [("DESCEND", "descend"), ("PRUNE", "prune"), ("KEEP", "keep")];

/// Compiles `$redact`'s expression with `$$DESCEND`, `$$PRUNE` and `$$KEEP` defined.
///
/// # Errors
/// The expression's parse errors.
pub(super) fn compile_redact(arg: &Bson, now_ms: i64) -> Result<Expr> {
    let mut bound = expr::bound_now();
    bound.extend(
        REDACT_VARIABLES
            .iter()
            .map(|(name, v)| ((*name).to_owned(), Some(Bson::String((*v).to_owned())))),
    );
    expr::with_bound(bound, || expr::compile(arg, now_ms))
}

/// `$redact` over one document (MongoDB's `document_source_redact.cpp`): the expression
/// decides with the document as `$$CURRENT` — `$$KEEP` keeps it whole, `$$PRUNE` drops it,
/// `$$DESCEND` keeps its fields, each embedded document (in arrays too, at any depth) decided
/// the same way with itself as `$$CURRENT` and `$$ROOT` still the top document. `None` when
/// the document itself is pruned.
///
/// # Errors
/// 17053 for an answer that is none of the three; the expression's errors.
pub(super) fn redact(e: &Expr, doc: Document) -> Result<Option<Document>> {
    Ok(match redact_answer(e, &doc, &doc)? {
        Redact::Keep => Some(doc),
        Redact::Prune => None,
        Redact::Descend => Some(redact_fields(e, &doc, &doc)?),
    })
}

enum Redact {
    Keep,
    Prune,
    Descend,
}

fn redact_answer(e: &Expr, root: &Document, current: &Document) -> Result<Redact> {
    let answer = e.eval_at(root, current)?;
    Ok(match answer.as_ref().and_then(Bson::as_str) {
        Some("keep") => Redact::Keep,
        Some("prune") => Redact::Prune,
        Some("descend") => Redact::Descend,
        _ => {
            return Err(expr::eval_error(
                17053,
                format!(
                    "$redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and $$PRUNE, but returned {}",
                    text::render(answer.as_ref())
                ),
            ));
        }
    })
}

/// `current`'s fields with each embedded document redacted (`$$DESCEND`).
fn redact_fields(e: &Expr, root: &Document, current: &Document) -> Result<Document> {
    let mut out = Document::new();
    for (k, v) in current {
        if let Some(v) = redact_value(e, root, v)? {
            out.insert(k.clone(), v);
        }
    }
    Ok(out)
}

/// A value under `$$DESCEND`: a document decided on its own (none when pruned), an array with
/// its documents and arrays redacted (pruned ones left out), anything else as it is.
fn redact_value(e: &Expr, root: &Document, v: &Bson) -> Result<Option<Bson>> {
    Ok(match v {
        Bson::Document(d) => match redact_answer(e, root, d)? {
            Redact::Keep => Some(v.clone()),
            Redact::Prune => None,
            Redact::Descend => Some(Bson::Document(redact_fields(e, root, d)?)),
        },
        Bson::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                if let Some(y) = redact_value(e, root, x)? {
                    out.push(y);
                }
            }
            Some(Bson::Array(out))
        }
        other => Some(other.clone()),
    })
}

/// The stages MongoDB runs in a change stream's pipeline (its allow-list) that this store does
/// not implement: they answer 115.
const CHANGE_STREAM_STAGES_UNSUPPORTED: &[&str] = &["$changeStreamSplitLargeEvent"];

/// One stage of a change stream's pipeline.
enum EventStage {
    Match(Filter),
    Reshape(Reshape),
    Redact(Expr),
}

/// A change stream's own pipeline (`watch([...])`), compiled once when the stream opens
/// (`$$NOW` is that moment): `$match`, the reshaping stages — `$project`, `$addFields`/`$set`,
/// `$unset`, `$replaceRoot`/`$replaceWith` — and `$redact` run on each change event in order,
/// as MongoDB's allow-list has them.
#[derive(Default)]
pub(crate) struct EventPipeline {
    stages: Vec<EventStage>,
    /// Whether a stage can change a document (else only filters run and `_id` is safe).
    reshapes: bool,
}

impl std::fmt::Debug for EventPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|s| match s {
                EventStage::Match(_) => "$match",
                EventStage::Reshape(r) => r.name(),
                EventStage::Redact(_) => "$redact",
            }))
            .finish()
    }
}

impl EventPipeline {
    /// Parses `pipeline`. A stage MongoDB does not allow in a change stream is code 20
    /// (`IllegalOperation`, "`$group` is not permitted in a $changeStream pipeline"), a second
    /// `$changeStream` 40602, an unknown name 40324; `$changeStreamSplitLargeEvent` (allowed by
    /// MongoDB, not implemented here) 115.
    ///
    /// # Errors
    /// As above; the stages' own parse errors; [`Error::TooMany`] beyond
    /// [`super::PIPELINE_STAGES_MAX`] stages; nesting past the document limit.
    pub(crate) fn parse(pipeline: &[Document], now_ms: i64) -> Result<Self> {
        for s in pipeline {
            document::check_depth_doc(s)?;
        }
        let mut out = Self::default();
        for (name, arg) in stage_list(pipeline)? {
            if name == "$match" {
                let Bson::Document(m) = arg else {
                    return Err(Error::bad(
                        "the $match stage specification must be an object",
                    ));
                };
                out.stages
                    .push(EventStage::Match(Filter::parse_at(m, now_ms)?));
                continue;
            }
            if let Some(mut stage) = Reshape::parse(name, arg, now_ms)? {
                stage.fold()?;
                out.stages.push(EventStage::Reshape(stage));
                out.reshapes = true;
                continue;
            }
            if name == "$redact" {
                let e = compile_redact(arg, now_ms)?.fold()?;
                out.stages.push(EventStage::Redact(e));
                out.reshapes = true;
                continue;
            }
            return Err(if name == "$changeStream" {
                expr::parse_error(
                    40602,
                    "$changeStream is only valid as the first stage in a pipeline.",
                )
            } else if CHANGE_STREAM_STAGES_UNSUPPORTED.contains(&name) {
                Error::Unsupported(format!("change stream stage {name}"))
            } else if STAGES_RUN.contains(&name) || MONGODB_STAGES.contains(&name) {
                Error::IllegalOperation(format!(
                    "{name} is not permitted in a $changeStream pipeline"
                ))
            } else {
                expr::parse_error(40324, format!("Unrecognized pipeline stage name: '{name}'"))
            });
        }
        Ok(out)
    }

    /// Whether the pipeline has no stage (every event passes unchanged).
    pub(crate) fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stages run over `event`: `None` when a `$match` drops it.
    ///
    /// # Errors
    /// The stages' run-time errors; [`Error::ResumeTokenModified`] (280) when the event that
    /// comes out has lost or changed its `_id`, the resume token (MongoDB's check since 4.2).
    pub(crate) fn apply(&self, event: Document) -> Result<Option<Document>> {
        let token = if self.reshapes {
            event.get("_id").cloned()
        } else {
            None
        };
        let mut event = event;
        for stage in &self.stages {
            match stage {
                EventStage::Match(f) => {
                    if !f.try_matches(&event)? {
                        return Ok(None);
                    }
                }
                EventStage::Reshape(r) => event = r.apply(event)?,
                EventStage::Redact(e) => match redact(e, event)? {
                    Some(kept) => event = kept,
                    None => return Ok(None),
                },
            }
        }
        if self.reshapes && event.get("_id") != token.as_ref() {
            let id_of = |v: Option<&Bson>| {
                v.map_or_else(
                    || "{}".to_owned(),
                    |v| document::render_value(&Bson::Document(bson::doc! {"_id": v.clone()})),
                )
            };
            return Err(Error::ResumeTokenModified {
                expected: id_of(token.as_ref()),
                found: id_of(event.get("_id")),
            });
        }
        Ok(Some(event))
    }
}
