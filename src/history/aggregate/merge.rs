//! `$merge`, the last stage of a pipeline: writes its output into a collection, matching each
//! document to a target one by its `on` fields (as MongoDB 7.0's `document_source_merge.cpp`).
//! A matched target is replaced, merged into (`$set` of every field), kept, refused, or updated
//! by a pipeline that reads the incoming document as `$$new` (or the `let` variables); an
//! unmatched document is inserted, discarded or refused. All of one aggregation's writes commit
//! in one batch, change events included.

use bson::{Bson, Document, doc};

use super::super::document::{self, get_path, split_path};
use super::super::error::{Error, Result};
use super::super::query;
use super::super::update::Update;
use super::super::{History, MemoryBudget, MergeWrite, WhenNotMatched};
use super::expr::Binding;
use super::{Expr, expr, out};

/// What happens to a target document the incoming one matches.
enum WhenMatched {
    Replace,
    Merge,
    KeepExisting,
    Fail,
    /// An update pipeline, rebuilt per document with its variables bound.
    Pipeline(Vec<Document>),
}

/// A parsed `$merge`.
pub(super) struct Merge {
    db: String,
    coll: String,
    /// The fields that identify a target document (`_id` by default).
    on: Vec<String>,
    matched: WhenMatched,
    not_matched: WhenNotMatched,
    /// `let`: variables of the `whenMatched` pipeline, evaluated on each incoming document
    /// (`new: "$$ROOT"` when absent).
    lets: Vec<(String, Expr)>,
    /// The command's `let` variables in force when the stage was parsed, which the
    /// `whenMatched` pipeline sees beside `lets` (captured then, as a `$lookup` captures its
    /// enclosing ones).
    outer: Vec<Binding>,
}

fn bad(code: i32, message: impl Into<String>) -> Error {
    expr::parse_error(code, message)
}

impl Merge {
    /// Parses `{$merge: "coll"}` or `{$merge: {into, on, let, whenMatched, whenNotMatched}}`;
    /// `db` is the aggregation's database.
    ///
    /// # Errors
    /// MongoDB's codes: 51182 and 51178 for the argument's and `into`'s types, 40415 for an
    /// unknown field, 2 for an unknown mode, 51186/51187 for `on`, 51181 for a combination of
    /// modes MongoDB does not run, 51199 for `let` without a pipeline, 31319 for a `system.`
    /// collection and 31320 for `admin`, `local` or `config`.
    pub(super) fn parse(arg: &Bson, db: &str, now_ms: i64) -> Result<Self> {
        let mut merge = Self {
            db: db.to_owned(),
            coll: String::new(),
            on: vec!["_id".to_owned()],
            matched: WhenMatched::Merge,
            not_matched: WhenNotMatched::Insert,
            lets: Vec::new(),
            outer: Vec::new(),
        };
        let spec = match arg {
            Bson::String(coll) => {
                merge.coll.clone_from(coll);
                merge.check_target()?;
                return Ok(merge);
            }
            Bson::Document(spec) => spec,
            other => {
                return Err(bad(
                    51182,
                    format!(
                        "$merge only supports a string or object argument, but found {}",
                        query::type_name(Some(other))
                    ),
                ));
            }
        };
        let mut lets = None;
        for (k, v) in spec {
            match k.as_str() {
                "into" => match v {
                    Bson::String(coll) => merge.coll.clone_from(coll),
                    Bson::Document(target) => {
                        for (field, value) in target {
                            match (field.as_str(), value) {
                                ("db", Bson::String(d)) => merge.db.clone_from(d),
                                ("coll", Bson::String(c)) => merge.coll.clone_from(c),
                                _ => {
                                    return Err(bad(
                                        40415,
                                        format!("BSON field 'into.{field}' is an unknown field."),
                                    ));
                                }
                            }
                        }
                    }
                    other => {
                        return Err(bad(
                            51178,
                            format!(
                                "$merge 'into' field  must be either a string or an object, but found {}",
                                query::type_name(Some(other))
                            ),
                        ));
                    }
                },
                "on" => {
                    let fields = match v {
                        Bson::String(f) => vec![f.clone()],
                        Bson::Array(a) => a
                            .iter()
                            .map(|f| f.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| on_shape(v))?,
                        other => return Err(on_shape(other)),
                    };
                    if fields.is_empty() {
                        return Err(bad(
                            51187,
                            "If explicitly specifying $merge 'on', must include at least one field",
                        ));
                    }
                    for f in &fields {
                        split_path(f)?;
                    }
                    merge.on = fields;
                }
                "let" => {
                    let Bson::Document(vars) = v else {
                        return Err(bad(
                            14,
                            "BSON field '$merge.let' is the wrong type, expected type 'object'",
                        ));
                    };
                    lets = Some(vars);
                }
                "whenMatched" => {
                    merge.matched = match v {
                        Bson::String(mode) => match mode.as_str() {
                            "replace" => WhenMatched::Replace,
                            "merge" => WhenMatched::Merge,
                            "keepExisting" => WhenMatched::KeepExisting,
                            "fail" => WhenMatched::Fail,
                            other => return Err(enum_value(other, "whenMatched")),
                        },
                        Bson::Array(stages) => WhenMatched::Pipeline(
                            stages
                                .iter()
                                .map(|s| s.as_document().cloned())
                                .collect::<Option<Vec<_>>>()
                                .ok_or_else(|| {
                                    bad(
                                        14,
                                        "Each element of the 'pipeline' array must be an object",
                                    )
                                })?,
                        ),
                        _ => {
                            return Err(bad(
                                14,
                                "BSON field '$merge.whenMatched' is the wrong type, expected a string or an array",
                            ));
                        }
                    };
                }
                "whenNotMatched" => {
                    merge.not_matched = match v.as_str() {
                        Some("insert") => WhenNotMatched::Insert,
                        Some("discard") => WhenNotMatched::Discard,
                        Some("fail") => WhenNotMatched::Fail,
                        Some(other) => return Err(enum_value(other, "whenNotMatched")),
                        None => {
                            return Err(bad(
                                14,
                                "BSON field '$merge.whenNotMatched' is the wrong type, expected type 'string'",
                            ));
                        }
                    };
                }
                other => {
                    return Err(bad(
                        40415,
                        format!("BSON field '$merge.{other}' is an unknown field."),
                    ));
                }
            }
        }
        if merge.coll.is_empty() {
            return Err(bad(
                40414,
                "BSON field '$merge.into' is missing but a required field",
            ));
        }
        let supported = match merge.matched {
            WhenMatched::Fail | WhenMatched::KeepExisting => {
                merge.not_matched == WhenNotMatched::Insert
            }
            _ => true,
        };
        if !supported {
            return Err(bad(
                51181,
                format!(
                    "Combination of $merge modes 'whenMatched: {}' and 'whenNotMatched: {}' is not supported",
                    merge.matched_name(),
                    merge.not_matched.name()
                ),
            ));
        }
        match (lets, &merge.matched) {
            (Some(_), WhenMatched::Pipeline(_)) | (None, _) => {}
            (Some(_), _) => {
                return Err(bad(
                    51199,
                    format!(
                        "Cannot use 'let' variables with 'whenMatched: {}' mode",
                        merge.matched_name()
                    ),
                ));
            }
        }
        merge.check_target()?;
        if let WhenMatched::Pipeline(stages) = &merge.matched {
            let names: Vec<String> = match lets {
                Some(vars) => {
                    for (name, e) in vars {
                        expr::check_variable_name(name)?;
                        merge.lets.push((name.clone(), expr::compile(e, now_ms)?));
                    }
                    merge.lets.iter().map(|(n, _)| n.clone()).collect()
                }
                None => vec!["new".to_owned()],
            };
            // Built once with every variable unknown, so a malformed pipeline fails before a
            // document is read. The command's `let` variables stay visible.
            merge.outer = expr::bound_now();
            let mut unknown = merge.outer.clone();
            unknown.extend(names.into_iter().map(|n| (n, None)));
            expr::with_bound(unknown, || Update::pipeline(stages, now_ms))?;
        }
        Ok(merge)
    }

    /// The target's checks of MongoDB's full parse, after the modes' (31319, 31320).
    fn check_target(&self) -> Result<()> {
        out::check_target(&self.db, &self.coll, "Cannot", "merge", 31319, 31320)
    }

    fn matched_name(&self) -> &'static str {
        match self.matched {
            WhenMatched::Replace => "replace",
            WhenMatched::Merge => "merge",
            WhenMatched::KeepExisting => "keepExisting",
            WhenMatched::Fail => "fail",
            WhenMatched::Pipeline(_) => "[pipeline]",
        }
    }

    /// Writes `docs` into the target collection, in one batch, whose documents count against
    /// `held` (a blocking stage's [`MemoryBudget`]: code 292 past it).
    ///
    /// # Errors
    /// 51183 when `on` names other fields than `_id` and no unique index has exactly them;
    /// 51132 for a document whose `on` field is missing, null or an array; 13113 when
    /// `whenNotMatched: fail` meets a document matching nothing; 11000 for `whenMatched: fail`
    /// meeting one that matches; the writes' own errors. Nothing is written then.
    pub(super) fn run(
        &self,
        history: &History,
        now_ms: i64,
        docs: Vec<Document>,
        mut held: MemoryBudget,
    ) -> Result<()> {
        history.check_merge_target(&self.db, &self.coll, &self.on)?;
        let by_id = self.on.len() == 1 && self.on.first().is_some_and(|f| f == "_id");
        let mut writes = Vec::with_capacity(docs.len());
        for d in docs {
            // The batch holds every document until it commits: a blocking stage's budget.
            held.charge(document::bson_size(&d))?;
            // A document without `_id`, merged on `_id`, gets a new one: it matches nothing.
            let filter = if by_id && !d.contains_key("_id") {
                None
            } else {
                Some(self.on_filter(&d)?)
            };
            // What a matched target gets; nothing can match a document without a filter.
            let update = match &self.matched {
                _ if filter.is_none() => None,
                WhenMatched::Replace => Some(Update::replacement(d.clone())?),
                WhenMatched::Merge => Some(Update::parse(&doc! {"$set": d.clone()})?),
                WhenMatched::KeepExisting | WhenMatched::Fail => None,
                WhenMatched::Pipeline(stages) => {
                    // The command's `let` variables, then this stage's, which shadow them.
                    let mut bindings = self.outer.clone();
                    if self.lets.is_empty() {
                        bindings.push(("new".to_owned(), Some(Bson::Document(d.clone()))));
                    } else {
                        for (n, e) in &self.lets {
                            bindings.push((n.clone(), e.eval_doc(&d)?));
                        }
                    }
                    Some(expr::with_bound(bindings, || {
                        Update::pipeline(stages, now_ms)
                    })?)
                }
            };
            writes.push(MergeWrite {
                filter,
                doc: d,
                update,
                fail_on_match: matches!(self.matched, WhenMatched::Fail),
            });
        }
        history.merge_writes(&self.db, &self.coll, &self.on, writes, self.not_matched)
    }

    /// `{on1: {$eq: v1}, …}` from `d`.
    fn on_filter(&self, d: &Document) -> Result<Document> {
        let mut filter = Document::new();
        for f in &self.on {
            match get_path(d, &split_path(f)?) {
                Some(Bson::Null | Bson::Undefined | Bson::Array(_)) | None => {
                    return Err(Error::update(
                        51132,
                        "$merge write error: 'on' field cannot be missing, null, undefined or an array",
                    ));
                }
                // `$eq`: a value that is itself a document of `$` keys, or a regex, is
                // compared as a value, not read as operators or a pattern.
                Some(v) => {
                    filter.insert(f.clone(), doc! {"$eq": v.clone()});
                }
            }
        }
        Ok(filter)
    }
}

/// MongoDB's text for an `on` that is neither a string nor an array of strings.
fn on_shape(v: &Bson) -> Error {
    bad(
        51186,
        format!(
            "$merge 'on' field  must be either a string or an array of strings, but found {}",
            query::type_name(Some(v))
        ),
    )
}

/// MongoDB's text for a mode it does not have.
fn enum_value(value: &str, field: &str) -> Error {
    bad(
        2,
        format!("Enumeration value '{value}' for field '{field}' is not a valid value."),
    )
}
