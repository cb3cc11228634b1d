//! `$project`, `$addFields` and `$set` as one field tree: a path (dotted or written as a nested
//! object) leads through sub-trees to an inclusion, an exclusion or a computed field. `$project`
//! parses its specification as MongoDB's projection parser does (inclusion and exclusion do not
//! mix, 31253/31254; a path may not pass through another, 31249/31250); `$addFields`/`$set` as
//! its add-fields validator does (conflicting paths 40176). Applying a tree copies or drops the
//! input's fields in the input's order, descending into embedded documents and arrays of them,
//! then sets the computed fields in the order they were written, merging into the embedded
//! document (or into each document of an array) already at their path.

use bson::{Bson, Document};

use super::super::document::{self, render_value, split_path};
use super::super::error::{Error, Result};
use super::super::{FIELD_TREE_KEYS_MAX, PATH_PARTS_MAX, STAGE_DOCUMENT_BYTES_MAX};
use super::expr::{self, Expr};
use super::{check_value_size, in_stage, object_too_large};

/// What a path of the tree leads to.
enum Node {
    Include,
    Exclude,
    /// The position of the field's expression in [`FieldTree::exprs`].
    Computed(usize),
    Sub(Level),
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

/// A parsed `$project`, `$addFields` or `$set`.
pub(super) struct FieldTree {
    root: Level,
    mode: Mode,
    /// The computed fields' expressions, in the order they were written.
    exprs: Vec<Expr>,
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

/// State of a `$project` parse.
struct ProjectParse {
    now_ms: i64,
    /// Inclusion (`true`) or exclusion, once a field other than the top-level `_id` decides it.
    inclusion: Option<bool>,
    id_included: bool,
    id_excluded: bool,
    id_specified: bool,
    exprs: Vec<Expr>,
}

impl ProjectParse {
    /// Parses one element of the specification at `prefix` (the sub-object's path parts).
    fn element<'s>(
        &mut self,
        root: &mut Level,
        prefix: &[&'s str],
        name: &'s str,
        v: &'s Bson,
    ) -> Result<()> {
        let own = split_path(name)?;
        let mut parts = prefix.to_vec();
        parts.extend(own.iter().copied());
        check_parts(&parts)?;
        let at = At {
            full: name,
            parts: own,
        };
        let top_id = prefix.is_empty() && name == "_id";
        match v {
            Bson::Document(d) => {
                if d.len() == 1
                    && let Some(op) = d.keys().next()
                    && op.starts_with('$')
                {
                    // An operator (a known one; an unknown one is the projection parser's to
                    // report, in its own words).
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
                    return self.computed(root, prefix, &at, e);
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
                let e = expr::compile(other, self.now_ms)?;
                self.computed(root, prefix, &at, e)?;
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

    fn computed(&mut self, root: &mut Level, prefix: &[&str], at: &At<'_>, e: Expr) -> Result<()> {
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
fn check_spec_keys(spec: &Document) -> Result<()> {
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
    /// Parses a `$project` specification.
    pub(super) fn parse_project(spec: &Document, now_ms: i64) -> Result<Self> {
        check_spec_keys(spec).map_err(|e| in_stage("$project", e))?;
        let mut p = ProjectParse {
            now_ms,
            inclusion: None,
            id_included: false,
            id_excluded: false,
            id_specified: false,
            exprs: Vec::new(),
        };
        let mut root = Level::default();
        for (k, v) in spec {
            p.id_specified |= k == "_id" || k.starts_with("_id.");
            p.element(&mut root, &[], k, v)
                .map_err(|e| in_stage("$project", e))?;
        }
        // Only `_id` named: `{_id: 1}` includes, `{_id: 0}` (or nothing) excludes.
        let inclusion = p.inclusion.unwrap_or(p.id_included && !p.id_excluded);
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
        })
    }

    /// Parses an `$addFields`/`$set` specification; `stage` names it in errors.
    pub(super) fn parse_add_fields(spec: &Document, now_ms: i64, stage: &str) -> Result<Self> {
        check_spec_keys(spec).map_err(|e| in_stage(stage, e))?;
        let mut tree = Self {
            root: Level::default(),
            mode: Mode::AddFields,
            exprs: Vec::new(),
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
        self.exprs.push(e);
        Ok(())
    }

    /// Folds the computed fields' constant expressions ([`Expr::fold`]).
    pub(super) fn fold(&mut self) -> Result<()> {
        for e in &mut self.exprs {
            *e = std::mem::replace(e, Expr::Absent).fold()?;
        }
        Ok(())
    }

    /// Applies the tree to one document.
    pub(super) fn apply(&self, d: Document) -> Result<Document> {
        // Every expression sees the input document; the values waiting to be set are held to
        // the stage's document limit too.
        let mut values = Vec::with_capacity(self.exprs.len());
        let mut pending = 0usize;
        for e in &self.exprs {
            let v = e.eval_doc(&d)?;
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
        Ok(out)
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
            Some(Node::Include) => {
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
