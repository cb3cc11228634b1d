//! `$project`, `$addFields` and `$set` as one field tree: a path (dotted or written as a nested
//! object) leads through sub-trees to an inclusion, an exclusion or a computed field. `$project`
//! parses its specification as MongoDB's projection parser does (inclusion and exclusion do not
//! mix, 31253/31254; a path may not pass through another, 31249/31250); `$addFields`/`$set` as
//! its add-fields validator does (conflicting paths 40176). Applying a tree copies or drops the
//! input's fields in the input's order, descending into embedded documents and arrays of them,
//! then sets the computed fields in the order they were written, merging into the embedded
//! document (or into each document of an array) already at their path.
//!
//! A find projection ([`FieldTree::parse_find`]) is the same tree under MongoDB's find
//! policies: it also takes `$slice` (applied in place once the tree has run), `$elemMatch`
//! (a computed field: the first matching element, after the other fields) and the positional
//! `field.$` (the element the query's condition on that array matched).

use bson::{Bson, Document};

use super::super::document::{self, render_value, split_path};
use super::super::error::{Error, Result};
use super::super::query::{Filter, type_name};
use super::super::{FIELD_TREE_KEYS_MAX, PATH_PARTS_MAX, STAGE_DOCUMENT_BYTES_MAX};
use super::expr::{self, Expr};
use super::{check_value_size, in_stage, object_too_large};

/// What a path of the tree leads to.
enum Node {
    Include,
    Exclude,
    /// The position of the field's expression in [`FieldTree::exprs`].
    Computed(usize),
    /// A find `$slice`: included by an inclusion tree, sliced afterwards ([`FieldTree::slices`]).
    Slice,
    Sub(Level),
}

/// What a computed field evaluates.
enum Computed {
    Expr(Expr),
    /// A find `$elemMatch` on a top-level array field: the first element the filter (`{field:
    /// {$elemMatch: …}}`) matches, as a one-element array; missing when none does.
    ElemMatch {
        field: String,
        filter: Filter,
    },
}

impl Computed {
    fn eval(&self, d: &Document) -> Result<Option<Bson>> {
        match self {
            Self::Expr(e) => e.eval_doc(d),
            Self::ElemMatch { field, filter } => Ok(filter
                .elem_match_key(d)
                .and_then(|i| match d.get(field) {
                    Some(Bson::Array(items)) => items.get(i).cloned(),
                    _ => None,
                })
                .map(|el| Bson::Array(vec![el]))),
        }
    }
}

/// A find `$slice`: the path, and MongoDB's `skip` (absent for `{$slice: n}`) and `limit`.
struct Slice {
    parts: Vec<String>,
    skip: Option<i32>,
    limit: i32,
}

/// One level of the tree: its fields in the order they were first written.
#[derive(Default)]
struct Level {
    fields: Vec<(String, Node)>,
    /// Whether a computed field lies at or below this level.
    computed: bool,
}

impl Level {
    fn get(&self, name: &str) -> Option<&Node> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, n)| n)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|(k, _)| k == name)
    }
}

/// How a tree applies to a document.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `$project` keeping only what it names (and `_id` unless excluded).
    Inclusion,
    /// `$project` dropping what it names.
    Exclusion,
    /// `$addFields`/`$set`: the whole document, with the computed fields set.
    AddFields,
}

/// A parsed `$project`, `$addFields`, `$set` or find projection.
pub(crate) struct FieldTree {
    root: Level,
    mode: Mode,
    /// The computed fields, in the order they were written.
    exprs: Vec<Computed>,
    /// Find `$slice`s, applied after the tree.
    slices: Vec<Slice>,
    /// A find positional projection: the path up to `.$` and the query that locates the element.
    positional: Option<(Vec<String>, Filter)>,
}

impl std::fmt::Debug for FieldTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldTree")
            .field("computed", &self.exprs.len())
            .field("slices", &self.slices.len())
            .field("positional", &self.positional.is_some())
            .finish_non_exhaustive()
    }
}

/// Where a path is being added: the full path (for messages) and its parts.
struct At<'a> {
    full: &'a str,
    parts: Vec<&'a str>,
}

/// Adds `node` at `parts` under `level`, as MongoDB's `addNodeAtPath`: an intermediate part
/// reaching a leaf is 31249, the last part meeting anything is 31250.
fn add_at(level: &mut Level, at: &At<'_>, index: usize, node: Node, computed: bool) -> Result<()> {
    level.computed |= computed;
    let Some(part) = at.parts.get(index) else {
        return Ok(());
    };
    if index + 1 == at.parts.len() {
        if level.position(part).is_some() {
            return Err(expr::parse_error(
                31250,
                format!("Path collision at {}", at.full),
            ));
        }
        level.fields.push(((*part).to_owned(), node));
        return Ok(());
    }
    match child_level(level, part) {
        Some(sub) => add_at(sub, at, index + 1, node, computed),
        None => Err(expr::parse_error(
            31249,
            format!(
                "Path collision at {} remaining portion {}",
                at.full,
                at.parts.get(1..).unwrap_or_default().join(".")
            ),
        )),
    }
}

/// The sub-level named `part` under `level`, created when absent; `None` when a leaf is there.
fn child_level<'l>(level: &'l mut Level, part: &str) -> Option<&'l mut Level> {
    let pos = match level.position(part) {
        Some(pos) => pos,
        None => {
            level
                .fields
                .push((part.to_owned(), Node::Sub(Level::default())));
            level.fields.len() - 1
        }
    };
    match level.fields.get_mut(pos) {
        Some((_, Node::Sub(sub))) => Some(sub),
        _ => None,
    }
}

/// The sub-level at `parts` under `level`, created when absent; a leaf there is a collision.
fn sub_at<'l>(level: &'l mut Level, full: &str, parts: &[&str]) -> Result<&'l mut Level> {
    let Some((part, rest)) = parts.split_first() else {
        return Ok(level);
    };
    match child_level(level, part) {
        Some(sub) => sub_at(sub, full, rest),
        None => Err(expr::parse_error(
            31250,
            format!("Path collision at {full}"),
        )),
    }
}

/// Marks every level on `parts` under `level` as holding a computed field.
fn mark_computed(level: &mut Level, parts: &[&str]) {
    level.computed = true;
    if let Some((part, rest)) = parts.split_first()
        && let Some((_, Node::Sub(sub))) =
            level.fields.iter_mut().find(|(k, _)| k.as_str() == *part)
    {
        mark_computed(sub, rest);
    }
}

/// State of a `$project` or find projection parse.
struct ProjectParse<'q> {
    now_ms: i64,
    /// The find's query under find policies (`$slice`, `$elemMatch`, positional allowed);
    /// `None` for `$project`.
    find: Option<&'q Filter>,
    has_find_slice: bool,
    has_elem_match: bool,
    slices: Vec<Slice>,
    positional: Option<(Vec<String>, Filter)>,
    /// Inclusion (`true`) or exclusion, once a field other than the top-level `_id` decides it.
    inclusion: Option<bool>,
    id_included: bool,
    id_excluded: bool,
    id_specified: bool,
    exprs: Vec<Computed>,
}

/// Where the first positional operator of a projection field name is (`begin`, `end`), as
/// MongoDB finds it: `.$.` inside, `.$` at the end, or the whole name `$`.
fn find_positional(name: &str) -> Option<(usize, usize)> {
    if let Some(i) = name.find(".$.") {
        return Some((i, i + 3));
    }
    if name.ends_with(".$") {
        return Some((name.len() - 2, name.len()));
    }
    (name == "$").then_some((0, name.len()))
}

/// A number as MongoDB's `numberInt()` reads it (doubles truncated toward zero, saturating).
#[expect(
    clippy::cast_possible_truncation,
    reason = "MongoDB narrows the projection's numbers to 32 bits the same way"
)]
fn number_int(v: &Bson) -> Option<i32> {
    match v {
        Bson::Int32(n) => Some(*n),
        Bson::Int64(n) => Some(*n as i32),
        Bson::Double(_) | Bson::Decimal128(_) => document::as_f64(v).map(|f| f as i32),
        _ => None,
    }
}

/// A find `$slice` argument: a number, or `[skip, limit]` with a positive limit.
fn find_slice(arg: &Bson) -> Result<(Option<i32>, i32)> {
    if let Some(n) = number_int(arg) {
        return Ok((None, n));
    }
    let Bson::Array(a) = arg else {
        return Err(expr::parse_error(
            31273,
            "$slice only supports numbers and [skip, limit] arrays",
        ));
    };
    let [skip, limit] = a.as_slice() else {
        return Err(expr::parse_error(
            31272,
            "$slice array argument should be of form [skip, limit]",
        ));
    };
    let skip = number_int(skip).ok_or_else(|| {
        expr::parse_error(
            31257,
            format!(
                "$slice expects the skip argument to be a number, got {}",
                type_name(Some(skip))
            ),
        )
    })?;
    let limit = number_int(limit).ok_or_else(|| {
        expr::parse_error(
            31258,
            format!(
                "$slice expects the limit argument to be a number, got {}",
                type_name(Some(limit))
            ),
        )
    })?;
    if limit <= 0 {
        return Err(expr::parse_error(
            31259,
            format!("$slice limit must be positive, got {limit}"),
        ));
    }
    Ok((Some(skip), limit))
}

impl ProjectParse<'_> {
    /// Parses one element of the specification at `prefix` (the sub-object's path parts).
    fn element<'s>(
        &mut self,
        root: &mut Level,
        prefix: &[&'s str],
        name: &'s str,
        v: &'s Bson,
    ) -> Result<()> {
        let positional = find_positional(name);
        if positional.is_some() && self.find.is_none() {
            return Err(expr::parse_error(
                31324,
                "Cannot use positional projection in aggregation projection",
            ));
        }
        let path_name = positional.map_or(name, |(begin, _)| name.get(..begin).unwrap_or(name));
        let own = split_path(path_name)?;
        let mut parts = prefix.to_vec();
        parts.extend(own.iter().copied());
        check_parts(&parts)?;
        let at = At {
            full: path_name,
            parts: own,
        };
        let top_id = prefix.is_empty() && name == "_id";
        match v {
            Bson::Document(d) => {
                if positional.is_some() {
                    return Err(expr::parse_error(
                        31271,
                        "positional projection cannot be used with an expression or sub object",
                    ));
                }
                if d.len() == 1
                    && let Some(op) = d.keys().next()
                    && op.starts_with('$')
                {
                    return self.operator(root, prefix, &at, op, v);
                }
                if d.is_empty() {
                    return Err(expr::parse_error(
                        51270,
                        "An empty sub-projection is not a valid value. Found empty object at path",
                    ));
                }
                // A sub-projection.
                sub_at(sub_at(root, name, prefix)?, name, &at.parts)?;
                for (k, x) in d {
                    self.element(root, &parts, k, x)?;
                }
                Ok(())
            }
            Bson::Boolean(_)
            | Bson::Int32(_)
            | Bson::Int64(_)
            | Bson::Double(_)
            | Bson::Decimal128(_) => {
                let on = match v {
                    Bson::Boolean(b) => *b,
                    other => document::as_f64(other).is_some_and(|n| n != 0.0),
                };
                if on && let Some((_, end)) = positional {
                    self.positional(prefix, name, end, &parts)?;
                }
                let level = sub_at(root, name, prefix)?;
                add_at(
                    level,
                    &at,
                    0,
                    if on { Node::Include } else { Node::Exclude },
                    false,
                )?;
                if top_id {
                    if on {
                        self.id_included = true;
                    } else {
                        self.id_excluded = true;
                    }
                } else {
                    if self.inclusion.is_some_and(|mode| mode != on) {
                        return Err(expr::parse_error(
                            if on { 31253 } else { 31254 },
                            format!(
                                "Cannot do {} on field {name} in {} projection",
                                if on { "inclusion" } else { "exclusion" },
                                if on { "exclusion" } else { "inclusion" }
                            ),
                        ));
                    }
                    self.inclusion = Some(on);
                }
                Ok(())
            }
            other => {
                if positional.is_some() {
                    return Err(expr::parse_error(
                        31308,
                        "positional projection cannot be used with a literal",
                    ));
                }
                let e = expr::compile(other, self.now_ms)?;
                self.computed(root, prefix, &at, Computed::Expr(e))?;
                if self.inclusion == Some(false) {
                    return Err(expr::parse_error(
                        31310,
                        format!(
                            "Cannot use an expression {name}: {} in an exclusion projection",
                            render_value(other)
                        ),
                    ));
                }
                self.inclusion = Some(true);
                Ok(())
            }
        }
    }

    /// A field whose value is a one-field object naming an operator: find's `$slice` and
    /// `$elemMatch` under find policies, otherwise an expression (an unknown one is the
    /// projection parser's to report, in its own words).
    fn operator(
        &mut self,
        root: &mut Level,
        prefix: &[&str],
        at: &At<'_>,
        op: &str,
        v: &Bson,
    ) -> Result<()> {
        let arg = match v {
            Bson::Document(d) => d.get(op).unwrap_or(&Bson::Null),
            _ => &Bson::Null,
        };
        match (op, self.find) {
            ("$slice", Some(_)) => {
                let find_error = match find_slice(arg) {
                    Ok((skip, limit)) => {
                        let level = sub_at(root, at.full, prefix)?;
                        add_at(level, at, 0, Node::Slice, false)?;
                        let mut parts: Vec<String> =
                            prefix.iter().map(|p| (*p).to_owned()).collect();
                        parts.extend(at.parts.iter().map(|p| (*p).to_owned()));
                        self.slices.push(Slice { parts, skip, limit });
                        self.has_find_slice = true;
                        return Ok(());
                    }
                    Err(e) => e,
                };
                // Not find's syntax: perhaps the `$slice` expression.
                self.expression(root, prefix, at, op, v).map_err(|e| {
                    let (code, message) = match e {
                        Error::InvalidExpression { code, message } => (code, message),
                        other => (other.code(), other.to_string()),
                    };
                    let find_message = match &find_error {
                        Error::InvalidExpression { code, message } => {
                            format!("Location{code}: {message}")
                        }
                        other => other.to_string(),
                    };
                    expr::parse_error(
                        code,
                        format!(
                            "Invalid $slice syntax. The given syntax {} did not match the find() syntax because :: {find_message} :: The given syntax did not match the expression $slice syntax. :: caused by :: {message}",
                            render_value(v)
                        ),
                    )
                })
            }
            ("$elemMatch", Some(_)) => {
                let Bson::Document(_) = arg else {
                    return Err(expr::parse_error(
                        31274,
                        format!(
                            "elemMatch: Invalid argument, object required, but got {}",
                            type_name(Some(arg))
                        ),
                    ));
                };
                if self.positional.is_some() {
                    return Err(expr::parse_error(
                        31255,
                        "Cannot specify positional operator and $elemMatch.",
                    ));
                }
                if !prefix.is_empty() || at.parts.len() != 1 {
                    return Err(expr::parse_error(
                        31275,
                        "Cannot use $elemMatch projection on a nested field.",
                    ));
                }
                let mut spec = Document::new();
                spec.insert(at.full, v.clone());
                let filter = Filter::parse(&spec)?;
                self.has_elem_match = true;
                self.computed(
                    root,
                    prefix,
                    at,
                    Computed::ElemMatch {
                        field: at.full.to_owned(),
                        filter,
                    },
                )
            }
            ("$elemMatch", None) => Err(expr::parse_error(
                168,
                "Cannot use $elemMatch in this context",
            )),
            _ => self.expression(root, prefix, at, op, v),
        }
    }

    /// A computed field from an operator object.
    fn expression(
        &mut self,
        root: &mut Level,
        prefix: &[&str],
        at: &At<'_>,
        op: &str,
        v: &Bson,
    ) -> Result<()> {
        if self.inclusion == Some(false) {
            return Err(expr::parse_error(
                31252,
                "Cannot use expression other than $meta in exclusion projection",
            ));
        }
        let e = expr::compile(v, self.now_ms).map_err(|e| match e {
            Error::InvalidExpression { code: 168, message }
                if message == format!("Unrecognized expression '{op}'") =>
            {
                expr::parse_error(31325, format!("Unknown expression {op}"))
            }
            e => e,
        })?;
        self.inclusion = Some(true);
        self.computed(root, prefix, at, Computed::Expr(e))
    }

    /// Records the positional projection of field name `name` (its operator ending at `end`)
    /// with the path parts before the operator; the checks of MongoDB's parser, in its order.
    fn positional(
        &mut self,
        prefix: &[&str],
        name: &str,
        end: usize,
        parts: &[&str],
    ) -> Result<()> {
        let Some(query) = self.find else {
            return Ok(());
        };
        if self.positional.is_some() {
            return Err(expr::parse_error(
                31276,
                "Cannot specify more than one positional projection per query.",
            ));
        }
        if self.has_elem_match {
            return Err(expr::parse_error(
                31256,
                "Cannot specify positional operator and $elemMatch.",
            ));
        }
        let match_field = prefix
            .first()
            .copied()
            .unwrap_or_else(|| name.split('.').next().unwrap_or(name));
        if !query.has_path_under(match_field) {
            return Err(expr::parse_error(
                31277,
                format!("Positional projection '{name}' does not match the query document."),
            ));
        }
        if name.ends_with(".$.") {
            return Err(expr::parse_error(31270, "Path cannot end with '.$.'"));
        }
        let rest = name.get(end..).unwrap_or_default();
        if find_positional(rest).is_some() || rest == "$" {
            return Err(expr::parse_error(
                31287,
                format!("Cannot use positional operator twice: {name}"),
            ));
        }
        self.positional = Some((
            parts.iter().map(|p| (*p).to_owned()).collect(),
            query.clone(),
        ));
        Ok(())
    }

    fn computed(
        &mut self,
        root: &mut Level,
        prefix: &[&str],
        at: &At<'_>,
        e: Computed,
    ) -> Result<()> {
        let level = sub_at(root, at.full, prefix)?;
        add_at(level, at, 0, Node::Computed(self.exprs.len()), true)?;
        mark_computed(root, prefix);
        self.exprs.push(e);
        Ok(())
    }
}

/// A path (sub-object levels and dotted parts together) longer than [`PATH_PARTS_MAX`] is
/// code 15, as a dotted path is; a part may not start with `$` (16410).
fn check_parts(parts: &[&str]) -> Result<()> {
    if parts.iter().any(|p| p.starts_with('$')) {
        return Err(expr::parse_error(
            16410,
            "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
        ));
    }
    let parts = parts.len();
    if parts > PATH_PARTS_MAX {
        return Err(Error::PathTooLong {
            parts,
            max: PATH_PARTS_MAX,
        });
    }
    Ok(())
}

/// Refuses a specification holding more than [`FIELD_TREE_KEYS_MAX`] keys, all levels and
/// expressions counted (stops counting at the limit; nesting is bounded by the document's).
pub(super) fn check_spec_keys(spec: &Document) -> Result<()> {
    fn count(v: &Bson, n: &mut usize) {
        match v {
            Bson::Document(d) => {
                for (_, v) in d {
                    *n += 1;
                    if *n > FIELD_TREE_KEYS_MAX {
                        return;
                    }
                    count(v, n);
                }
            }
            Bson::Array(a) => a.iter().for_each(|v| count(v, n)),
            _ => {}
        }
    }
    let mut n = 0;
    for (_, v) in spec {
        n += 1;
        count(v, &mut n);
        if n > FIELD_TREE_KEYS_MAX {
            return Err(Error::TooMany {
                what: "field specification",
                len: n,
                max: FIELD_TREE_KEYS_MAX,
            });
        }
    }
    Ok(())
}

impl FieldTree {
    /// Parses a `$project` specification (an empty one is 51272).
    pub(super) fn parse_project(spec: &Document, now_ms: i64) -> Result<Self> {
        if spec.is_empty() {
            return Err(in_stage(
                "$project",
                expr::parse_error(
                    51272,
                    "projection specification must have at least one field",
                ),
            ));
        }
        Self::parse_projection(spec, now_ms, None).map_err(|e| in_stage("$project", e))
    }

    /// Parses a find projection under MongoDB's find policies: `$slice`, `$elemMatch` and the
    /// positional `field.$` (located by `query`) besides what `$project` takes; `None` for an
    /// empty specification (every field).
    pub(crate) fn parse_find(spec: &Document, query: &Filter, now_ms: i64) -> Result<Option<Self>> {
        if spec.is_empty() {
            return Ok(None);
        }
        document::check_depth_doc(spec)?;
        Self::parse_projection(spec, now_ms, Some(query)).map(Some)
    }

    fn parse_projection(spec: &Document, now_ms: i64, find: Option<&Filter>) -> Result<Self> {
        check_spec_keys(spec)?;
        let mut p = ProjectParse {
            now_ms,
            find,
            has_find_slice: false,
            has_elem_match: false,
            slices: Vec::new(),
            positional: None,
            inclusion: None,
            id_included: false,
            id_excluded: false,
            id_specified: false,
            exprs: Vec::new(),
        };
        let mut root = Level::default();
        for (k, v) in spec {
            p.id_specified |= k == "_id" || k.starts_with("_id.");
            p.element(&mut root, &[], k, v)?;
        }
        // A projection no field decided: find's `$slice` makes it an exclusion unless `_id` is
        // included, `$elemMatch` an inclusion; otherwise `{_id: 1}` includes, `{_id: 0}` (or
        // nothing) excludes.
        let inclusion = p.inclusion.unwrap_or(if p.has_find_slice {
            p.id_included
        } else {
            p.has_elem_match || (p.id_included && !p.id_excluded)
        });
        if inclusion && !p.id_specified {
            root.fields.push(("_id".to_owned(), Node::Include));
        }
        if !inclusion && p.id_included {
            root.fields.retain(|(k, _)| k != "_id");
        }
        Ok(Self {
            root,
            mode: if inclusion {
                Mode::Inclusion
            } else {
                Mode::Exclusion
            },
            exprs: p.exprs,
            slices: p.slices,
            positional: p.positional,
        })
    }

    /// Parses an `$addFields`/`$set` specification; `stage` names it in errors.
    pub(super) fn parse_add_fields(spec: &Document, now_ms: i64, stage: &str) -> Result<Self> {
        check_spec_keys(spec).map_err(|e| in_stage(stage, e))?;
        let mut tree = Self {
            root: Level::default(),
            mode: Mode::AddFields,
            exprs: Vec::new(),
            slices: Vec::new(),
            positional: None,
        };
        let mut seen = Vec::new();
        for (k, v) in spec {
            tree.add_field(spec, &[], k, v, now_ms, &mut seen)
                .map_err(|e| in_stage(stage, e))?;
        }
        Ok(tree)
    }

    /// Adds one `$addFields` element at `prefix`: an operator object or a non-object is a
    /// computed field, any other object a nested specification (an empty one the value `{}`).
    fn add_field<'s>(
        &mut self,
        spec: &Document,
        prefix: &[&'s str],
        name: &'s str,
        v: &'s Bson,
        now_ms: i64,
        seen: &mut Vec<String>,
    ) -> Result<()> {
        if !prefix.is_empty() && name.contains('.') {
            return Err(expr::parse_error(
                40183,
                format!(
                    "cannot use dotted field name '{name}' in a sub object: {}",
                    render_value(&Bson::Document(spec.clone()))
                ),
            ));
        }
        let own = split_path(name)?;
        let mut parts = prefix.to_vec();
        parts.extend(own.iter().copied());
        check_parts(&parts)?;
        if let Bson::Document(d) = v
            && !d.is_empty()
        {
            let operator = d.keys().any(|k| k.starts_with('$'));
            if operator && d.len() != 1 {
                return Err(expr::parse_error(
                    40181,
                    format!(
                        "an expression specification must contain exactly one field, the name of the expression. Found {} fields in {}, while parsing object {}",
                        d.len(),
                        render_value(v),
                        render_value(&Bson::Document(spec.clone()))
                    ),
                ));
            }
            if !operator {
                for (k, x) in d {
                    self.add_field(spec, &parts, k, x, now_ms, seen)?;
                }
                return Ok(());
            }
        }
        let full = parts.join(".");
        check_conflict(spec, seen, &full)?;
        let e = expr::compile(v, now_ms)?;
        let at = At {
            full: &full,
            parts: parts.clone(),
        };
        add_at(
            &mut self.root,
            &at,
            0,
            Node::Computed(self.exprs.len()),
            true,
        )?;
        self.exprs.push(Computed::Expr(e));
        Ok(())
    }

    /// Folds the computed fields' constant expressions ([`Expr::fold`]).
    pub(super) fn fold(&mut self) -> Result<()> {
        for c in &mut self.exprs {
            if let Computed::Expr(e) = c {
                *e = std::mem::replace(e, Expr::Absent).fold()?;
            }
        }
        Ok(())
    }

    /// Applies the tree to one document.
    ///
    /// # Errors
    /// An expression's run-time error; a result past the document limit; a positional
    /// projection whose array the query did not match through an element (51246).
    pub(crate) fn apply(&self, d: Document) -> Result<Document> {
        // The positional element is located in the input, as the query matched it.
        let key = self
            .positional
            .as_ref()
            .map(|(_, query)| query.elem_match_key(&d));
        // Every expression sees the input document; the values waiting to be set are held to
        // the stage's document limit too.
        let mut values = Vec::with_capacity(self.exprs.len());
        let mut pending = 0usize;
        for e in &self.exprs {
            let v = e.eval(&d)?;
            pending = pending.saturating_add(v.as_ref().map_or(0, document::value_size));
            check_value_size(pending)?;
            values.push(v);
        }
        let mut out = match self.mode {
            Mode::Inclusion => include_doc(&self.root, d),
            Mode::Exclusion => exclude_doc(&self.root, d),
            Mode::AddFields => d,
        };
        if self.root.computed {
            let mut added = 0usize;
            set_computed(&self.root, &values, &mut out, &mut added)?;
            // Every value set stays in the document (no two paths of a tree overlap), so the
            // added bytes alone past the limit mean the document is past it.
            if added > 0 {
                let size = document::bson_size(&out);
                if size > STAGE_DOCUMENT_BYTES_MAX {
                    return Err(object_too_large(&out, size));
                }
            }
        }
        for slice in &self.slices {
            slice_at(&mut out, &slice.parts, slice.skip, slice.limit);
        }
        if let (Some((parts, _)), Some(key)) = (&self.positional, key) {
            positional_at(&mut out, parts, key)?;
        }
        Ok(out)
    }
}

/// Applies a find `$slice` at `parts` of `d`, as MongoDB: the array at the end of the path is
/// sliced; an array on the way is walked element by element (documents descended into, other
/// elements kept); a document on the way is descended into; anything else stays.
fn slice_at(d: &mut Document, parts: &[String], skip: Option<i32>, limit: i32) {
    let Some((head, rest)) = parts.split_first() else {
        return;
    };
    match d.get_mut(head) {
        Some(Bson::Array(items)) if rest.is_empty() => slice_array(items, skip, limit),
        Some(Bson::Array(items)) => {
            for item in items {
                if let Bson::Document(sub) = item {
                    slice_at(sub, rest, skip, limit);
                }
            }
        }
        Some(Bson::Document(sub)) if !rest.is_empty() => slice_at(sub, rest, skip, limit),
        _ => {}
    }
}

/// `{$slice: limit}` (negative: the last `-limit`) or `{$slice: [skip, limit]}` (negative
/// skip: counted from the end).
fn slice_array(items: &mut Vec<Bson>, skip: Option<i32>, limit: i32) {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let (limit, skip) = (i64::from(limit), skip.map(i64::from));
    let (start, count) = match skip {
        None if limit < 0 => {
            let start = (len + limit).max(0);
            (start, len - start)
        }
        None => (0, len.min(limit)),
        Some(skip) => {
            let start = if skip < 0 {
                (len + skip).max(0)
            } else {
                len.min(skip)
            };
            (start, (len - start).min(limit))
        }
    };
    let start = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(items.len());
    let count = usize::try_from(count).unwrap_or(0);
    items.truncate(start.saturating_add(count).min(items.len()));
    items.drain(..start);
}

/// Replaces the first array on `parts` of the projected `d` by the one element at `key` (the
/// query's element match key in the input), as MongoDB's positional projection; a path with no
/// array stays as it is.
fn positional_at(d: &mut Document, parts: &[String], key: Option<usize>) -> Result<()> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    match d.get_mut(head) {
        Some(Bson::Array(items)) => {
            let Some(key) = key else {
                return Err(expr::eval_error(
                    51246,
                    "positional operator '.$' couldn't find a matching element in the array",
                ));
            };
            let Some(element) = items.get(key).cloned() else {
                return Err(expr::eval_error(
                    51247,
                    "positional operator '.$' element mismatch",
                ));
            };
            *items = vec![element];
            Ok(())
        }
        Some(Bson::Document(sub)) => positional_at(sub, rest, key),
        _ => Ok(()),
    }
}

/// `$addFields`'s rule: a path may not equal or lie under another (40176).
fn check_conflict(spec: &Document, seen: &mut Vec<String>, path: &str) -> Result<()> {
    let under = |a: &str, b: &str| {
        b.len() > a.len() && b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'.')
    };
    if let Some(other) = seen
        .iter()
        .find(|s| s.as_str() == path || under(s.as_str(), path) || under(path, s.as_str()))
    {
        return Err(expr::parse_error(
            40176,
            format!(
                "specification contains two conflicting paths. Cannot specify both '{path}' and '{other}': {}",
                render_value(&Bson::Document(spec.clone()))
            ),
        ));
    }
    seen.push(path.to_owned());
    Ok(())
}

/// An inclusion projection's copy of `d`: named fields moved over in `d`'s order, sub-trees
/// applied to embedded documents and to the documents in arrays (other values dropped).
fn include_doc(level: &Level, d: Document) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        match level.get(&k) {
            Some(Node::Include | Node::Slice) => {
                out.insert(k, v);
            }
            Some(Node::Sub(sub)) => {
                if let Some(v) = include_value(sub, v) {
                    out.insert(k, v);
                }
            }
            _ => {}
        }
    }
    out
}

fn include_value(level: &Level, v: Bson) -> Option<Bson> {
    match v {
        Bson::Document(d) => Some(Bson::Document(include_doc(level, d))),
        Bson::Array(items) => Some(Bson::Array(
            items
                .into_iter()
                .filter_map(|x| include_value(level, x))
                .collect(),
        )),
        _ => None,
    }
}

/// An exclusion projection's copy of `d`: named fields dropped, sub-trees applied to embedded
/// documents and to the documents in arrays (other values kept).
fn exclude_doc(level: &Level, d: Document) -> Document {
    let mut out = Document::new();
    for (k, v) in d {
        match level.get(&k) {
            Some(Node::Exclude) => {}
            Some(Node::Sub(sub)) => {
                out.insert(k, exclude_value(sub, v));
            }
            _ => {
                out.insert(k, v);
            }
        }
    }
    out
}

fn exclude_value(level: &Level, v: Bson) -> Bson {
    match v {
        Bson::Document(d) => Bson::Document(exclude_doc(level, d)),
        Bson::Array(items) => {
            Bson::Array(items.into_iter().map(|x| exclude_value(level, x)).collect())
        }
        other => other,
    }
}

/// Sets the computed fields of `level` in `out`, in the order they were written: a missing
/// value removes the field; a sub-tree merges into the embedded document there, into each
/// document of an array there, or replaces any other value with a new document.
fn set_computed(
    level: &Level,
    values: &[Option<Bson>],
    out: &mut Document,
    added: &mut usize,
) -> Result<()> {
    for (k, node) in &level.fields {
        match node {
            Node::Computed(i) => match values.get(*i).cloned().flatten() {
                Some(v) => {
                    *added = added.saturating_add(document::value_size(&v));
                    if *added > STAGE_DOCUMENT_BYTES_MAX {
                        return Err(Error::ObjectTooLarge {
                            len: *added,
                            max: STAGE_DOCUMENT_BYTES_MAX,
                            first: None,
                        });
                    }
                    out.insert(k.clone(), v);
                }
                None => {
                    out.remove(k);
                }
            },
            Node::Sub(sub) if sub.computed => match out.get_mut(k) {
                Some(v) => set_computed_value(sub, values, v, added)?,
                None => {
                    let mut fresh = Document::new();
                    set_computed(sub, values, &mut fresh, added)?;
                    out.insert(k.clone(), fresh);
                }
            },
            _ => {}
        }
    }
    Ok(())
}

fn set_computed_value(
    level: &Level,
    values: &[Option<Bson>],
    v: &mut Bson,
    added: &mut usize,
) -> Result<()> {
    match v {
        Bson::Document(d) => set_computed(level, values, d, added),
        Bson::Array(items) => items
            .iter_mut()
            .try_for_each(|x| set_computed_value(level, values, x, added)),
        other => {
            let mut fresh = Document::new();
            set_computed(level, values, &mut fresh, added)?;
            *other = Bson::Document(fresh);
            Ok(())
        }
    }
}
