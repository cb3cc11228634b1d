//! Update documents: operator updates (`$set`, `$inc`, `$push` …, the positional `$`, the
//! all-positional `$[]` and the filtered `$[<id>]` with `arrayFilters`), replacements and
//! pipeline-style updates, applied to one document with MongoDB's semantics and error codes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::{Bound, Range};
use std::sync::Arc;

use bson::{Bson, Document, Timestamp};

use super::aggregate::UpdatePipeline;
use super::decimal;
use super::decode;
use super::document::{self, array_index, compare, split_path, values_equal};
use super::error::{Error, Result};
use super::query::{Cond, Filter};
use super::{
    ARRAY_FILTERS_MAX, ARRAY_PAD_MAX, ARRAY_UPDATE_PATHS_MAX, RESPELLED_WRITES_MAX,
    UPDATE_OPERATIONS_MAX,
};

/// A parsed update.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    /// A replacement document (keeps the stored `_id`).
    Replace(Document),
    /// Operators applied in order: `(operator, path, argument)`, and the `arrayFilters` their
    /// `$[<id>]` parts name.
    Ops(Vec<(Op, String, Bson)>, ArrayFilters),
    /// An aggregation pipeline of reshaping stages whose output replaces the document (the
    /// stored `_id` kept when the output has none).
    Pipeline(Arc<UpdatePipeline>),
}

/// Parsed `arrayFilters`: each identifier with the filter its elements must match (written on
/// the identifier as a field: `{x: {$gte: 5}}`, `{"x.grade": 85}`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ArrayFilters(Vec<(String, Filter)>);

impl ArrayFilters {
    /// Parses `arrayFilters` as MongoDB does: every filter names one identifier at its top
    /// level (a lowercase letter, then letters and digits), each identifier once.
    ///
    /// # Errors
    /// Codes 2 and 9 with MongoDB's texts; [`Error::TooMany`] beyond [`ARRAY_FILTERS_MAX`].
    pub(crate) fn parse(filters: &[Document], now_ms: i64) -> Result<Self> {
        if filters.len() > ARRAY_FILTERS_MAX {
            return Err(Error::TooMany {
                what: "arrayFilters",
                len: filters.len(),
                max: ARRAY_FILTERS_MAX,
            });
        }
        let mut out: Vec<(String, Filter)> = Vec::with_capacity(filters.len());
        for f in filters {
            let parsed = Filter::parse_at(f, now_ms)?;
            let mut id: Option<&str> = None;
            for path in f.keys() {
                if path.starts_with('$') {
                    continue;
                }
                let head = path.split('.').next().unwrap_or(path);
                match id {
                    Some(seen) if seen != head => {
                        return Err(Error::update(
                            9,
                            format!(
                                "Error parsing array filter :: caused by :: Expected a single top-level field name, found '{seen}' and '{head}'"
                            ),
                        ));
                    }
                    _ => id = Some(head),
                }
            }
            let Some(id) = id else {
                return Err(Error::bad(
                    "Cannot use an expression without a top-level field name in arrayFilters",
                ));
            };
            let mut chars = id.chars();
            if !chars.next().is_some_and(|c| c.is_ascii_lowercase())
                || !chars.all(|c| c.is_ascii_alphanumeric())
            {
                return Err(Error::bad(format!(
                    "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '{id}'"
                )));
            }
            if out.iter().any(|(seen, _)| seen == id) {
                return Err(Error::update(
                    9,
                    format!("Found multiple array filters with the same top-level field name {id}"),
                ));
            }
            out.push((id.to_owned(), parsed));
        }
        Ok(Self(out))
    }

    fn get(&self, id: &str) -> Option<&Filter> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, f)| f)
    }

    /// Whether `element` passes the filter of `id` (read on the element where it is, as on
    /// `{id: element}`).
    fn admits(&self, id: &str, element: &Bson) -> Result<bool> {
        let Some(filter) = self.get(id) else {
            return Ok(false);
        };
        filter.try_matches_field(id, element)
    }
}

/// What a path part is to array updates: `$[]` every element, `$[id]` those `id`'s filter
/// admits, anything else a field or index.
enum ArrayPart<'a> {
    All,
    Filtered(&'a str),
    Plain,
}

fn array_part(part: &str) -> ArrayPart<'_> {
    match part.strip_prefix("$[").and_then(|r| r.strip_suffix(']')) {
        Some("") => ArrayPart::All,
        Some(id) => ArrayPart::Filtered(id),
        None => ArrayPart::Plain,
    }
}

/// An update operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Set,
    Unset,
    Inc,
    Mul,
    Min,
    Max,
    Rename,
    Push,
    AddToSet,
    Pull,
    PullAll,
    Pop,
    SetOnInsert,
    CurrentDate,
}

impl Op {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "$set" => Self::Set,
            "$unset" => Self::Unset,
            "$inc" => Self::Inc,
            "$mul" => Self::Mul,
            "$min" => Self::Min,
            "$max" => Self::Max,
            "$rename" => Self::Rename,
            "$push" => Self::Push,
            "$addToSet" => Self::AddToSet,
            "$pull" => Self::Pull,
            "$pullAll" => Self::PullAll,
            "$pop" => Self::Pop,
            "$setOnInsert" => Self::SetOnInsert,
            "$currentDate" => Self::CurrentDate,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Set => "$set",
            Self::Unset => "$unset",
            Self::Inc => "$inc",
            Self::Mul => "$mul",
            Self::Min => "$min",
            Self::Max => "$max",
            Self::Rename => "$rename",
            Self::Push => "$push",
            Self::AddToSet => "$addToSet",
            Self::Pull => "$pull",
            Self::PullAll => "$pullAll",
            Self::Pop => "$pop",
            Self::SetOnInsert => "$setOnInsert",
            Self::CurrentDate => "$currentDate",
        }
    }
}

impl Update {
    /// A replacement document taken as it is (no copy): the checks of [`Update::parse`] for a
    /// document whose keys do not start with `$`.
    ///
    /// # Errors
    /// As [`Update::parse`].
    pub(crate) fn replacement(doc: Document) -> Result<Self> {
        document::check_depth_doc(&doc)?;
        if let Some(k) = doc.keys().find(|k| k.starts_with('$')) {
            return Err(Error::bad(format!(
                "The dollar ($) prefixed field '{k}' is not allowed in a replacement document"
            )));
        }
        Ok(Self::Replace(doc))
    }

    /// A pipeline-style update (`[{$set: …}, {$unset: …}, …]`), its expressions compiled
    /// with `$$NOW` = `now_ms`.
    ///
    /// # Errors
    /// [`UpdatePipeline::parse`]'s.
    pub(crate) fn pipeline(stages: &[Document], now_ms: i64) -> Result<Self> {
        Ok(Self::Pipeline(Arc::new(UpdatePipeline::parse(
            stages, now_ms,
        )?)))
    }

    /// Parses an update document: operators when its first key starts with `$`, else a
    /// replacement. Operators whose objects are all empty (`{$set: {}}`) are an update that
    /// changes nothing, as in MongoDB 5.0 and later.
    ///
    /// # Errors
    /// [`Error::BadValue`] for unknown operators or `$` fields in a replacement; code 40 for
    /// operators writing overlapping paths; [`Error::TooMany`] beyond
    /// [`UPDATE_OPERATIONS_MAX`].
    pub(crate) fn parse(update: &Document) -> Result<Self> {
        Self::parse_checked(update, None)
    }

    /// [`Update::parse`], each `$[<id>]` part of an operator's path checked against `filters`
    /// (when given) as MongoDB's parser checks it: part by part as the path joins the update
    /// tree, between the conflicts at the prefixes around it.
    ///
    /// # Errors
    /// As [`Update::parse`]; code 2 `No array filter found for identifier 'i' in path 'a.$[i]'`.
    fn parse_checked(update: &Document, filters: Option<&ArrayFilters>) -> Result<Self> {
        let is_ops = update.keys().next().is_some_and(|k| k.starts_with('$'));
        if !is_ops {
            return Self::replacement(update.clone());
        }
        document::check_depth_doc(update)?;
        let mut ops = Vec::new();
        // MongoDB checks for conflicts when it parses the update, so an update that matches
        // nothing, or whose `$setOnInsert` is not run, is refused all the same.
        let mut claimed = ClaimedPaths::default();
        for (name, arg) in update {
            let op = Op::parse(name).ok_or_else(|| {
                Error::update(9, format!("Unknown modifier: {name}. Expected a valid update modifier or pipeline-style update specified as an array"))
            })?;
            let Bson::Document(fields) = arg else {
                return Err(Error::update(
                    9,
                    format!(
                        "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{name}: {arg}}}",
                        type_name(arg)
                    ),
                ));
            };
            for (path, value) in fields {
                // MongoDB's parser checks a path, then the operator's argument, then adds the
                // path to its tree (where conflicts are found); a `$rename` adds its source
                // before it looks at its target.
                check_update_path(path)?;
                if op == Op::Rename {
                    claimed.claim_parsed(path, filters)?;
                    let Bson::String(to) = value else {
                        return Err(Error::bad(format!(
                            "The 'to' field for $rename must be a string: {path}: {value}"
                        )));
                    };
                    check_update_path(to)?;
                    check_rename_paths(path, to)?;
                    claimed.claim_parsed(to, filters)?;
                }
                if matches!(op, Op::Inc | Op::Mul) && document::as_f64(value).is_none() {
                    return Err(Error::update(
                        14,
                        format!(
                            "Cannot {} with non-numeric argument: {{{path}: {value}}}",
                            if op == Op::Inc {
                                "increment"
                            } else {
                                "multiply"
                            }
                        ),
                    ));
                }
                // MongoDB checks these arguments when it parses the update.
                match op {
                    Op::Pop => {
                        pop_from_front(path, value)?;
                    }
                    Op::CurrentDate => {
                        current_date_is_timestamp(value)?;
                    }
                    Op::AddToSet => {
                        add_to_set_items(value)?;
                    }
                    Op::Push => {
                        parse_push(value)?;
                    }
                    Op::Pull => {
                        parse_pull(value)?;
                    }
                    Op::PullAll => {
                        pull_all_values(value)?;
                    }
                    _ => {}
                }
                if op != Op::Rename {
                    claimed.claim_parsed(path, filters)?;
                }
                ops.push((op, path.clone(), value.clone()));
                if ops.len() > UPDATE_OPERATIONS_MAX {
                    return Err(Error::TooMany {
                        what: "update",
                        len: ops.len(),
                        max: UPDATE_OPERATIONS_MAX,
                    });
                }
            }
        }
        Ok(Self::Ops(ops, ArrayFilters::default()))
    }

    /// Parses an update with its `arrayFilters`, as MongoDB does: the filters first, then the
    /// update, each `$[<id>]` needing a filter (code 2, reported as its path is parsed), then
    /// every filter must have been used (code 9). A replacement ignores them (MongoDB's
    /// `UpdateDriver::parse` never looks at them for one).
    ///
    /// # Errors
    /// As above, [`ArrayFilters::parse`]'s and [`Update::parse`]'s.
    pub(crate) fn parse_with_array_filters(
        update: &Document,
        filters: Option<&[Document]>,
        now_ms: i64,
    ) -> Result<Self> {
        let filters = match filters {
            Some(f) => ArrayFilters::parse(f, now_ms)?,
            None => ArrayFilters::default(),
        };
        let parsed = Self::parse_checked(update, Some(&filters))?;
        let ops = match parsed {
            Self::Ops(ops, _) => ops,
            // MongoDB's replacement takes no filters and ignores them once parsed.
            Self::Replace(_) => return Ok(parsed),
            Self::Pipeline(_) if filters.0.is_empty() => return Ok(parsed),
            Self::Pipeline(_) => return Err(pipeline_with_array_filters()),
        };
        // Parsing found a filter for every identifier; a `$rename` takes none (its paths
        // cannot be dynamic).
        let used: BTreeSet<&str> = ops
            .iter()
            .flat_map(|(_, path, _)| path.split('.'))
            .filter_map(|part| match array_part(part) {
                ArrayPart::Filtered(id) => Some(id),
                ArrayPart::All | ArrayPart::Plain => None,
            })
            .collect();
        if let Some((id, _)) = filters.0.iter().find(|(id, _)| !used.contains(id.as_str())) {
            return Err(Error::update(
                9,
                format!(
                    "The array filter for identifier '{id}' was not used in the update {}",
                    document::render_value(&Bson::Document(update.clone()))
                ),
            ));
        }
        Ok(Self::Ops(ops, filters))
    }

    /// Applies the update to `doc`, returning the new document. `inserting` enables
    /// `$setOnInsert`; `filter` resolves the positional `$`; `now_ms` feeds `$currentDate`.
    ///
    /// # Errors
    /// MongoDB's update errors (codes 2, 14, 28, 40, 66).
    pub(crate) fn apply(
        &self,
        doc: &Document,
        inserting: bool,
        filter: &Filter,
        now_ms: u64,
    ) -> Result<Document> {
        self.apply_logged(doc, inserting, filter, now_ms, &mut Vec::new())
    }

    /// [`Update::apply`], adding to `log` what an operator update wrote, for its change
    /// event's `updateDescription` ([`describe_ops`]).
    ///
    /// # Errors
    /// As [`Update::apply`].
    pub(crate) fn apply_logged(
        &self,
        doc: &Document,
        inserting: bool,
        filter: &Filter,
        now_ms: u64,
        log: &mut Vec<Logged>,
    ) -> Result<Document> {
        let new = match self {
            Self::Replace(r) => {
                replaced(doc, r.len(), r.iter().map(|(k, v)| (k.clone(), v.clone())))?
            }
            Self::Pipeline(pipeline) => {
                let out = pipeline.apply(doc.clone())?;
                match (doc.get("_id"), out.get("_id")) {
                    (Some(old), Some(new)) if !values_equal(old, new) => {
                        return Err(altered_id(new));
                    }
                    // `_id` first, as a replacement keeps it; the stored one when the output
                    // dropped it.
                    (Some(old), new) if out.keys().next().map(String::as_str) != Some("_id") => {
                        let mut with_id = Document::new();
                        with_id.insert("_id", new.unwrap_or(old).clone());
                        with_id.extend(out.into_iter().filter(|(k, _)| k != "_id"));
                        with_id
                    }
                    _ => out,
                }
            }
            Self::Ops(ops, filters) => {
                let mut out = doc.clone();
                // Parsing checked the paths as written; a positional `$` resolved to an index
                // may now meet a path that names that index.
                let mut claimed = ClaimedPaths::applied();
                let mut resolved = Vec::with_capacity(ops.len());
                for (op, path, arg) in ops {
                    if *op == Op::SetOnInsert && !inserting {
                        continue;
                    }
                    let path = resolve_positional(path, doc, filter)?;
                    claimed.claim_op(*op, &path, arg)?;
                    resolved.push((*op, path, arg));
                }
                // MongoDB's update tree applies its operators in the order of their paths, part
                // by part (a `$rename` at its target), so the fields an update creates are
                // added, and its writes logged, in that order whatever order it was written in.
                resolved.sort_by(|a, b| compare_update_paths(applied_at(a), applied_at(b)));
                let mut merges = array_merge_groups(&resolved).into_iter().peekable();
                let mut respelled = RespelledWrites::new(doc, &resolved)?;
                let mut next = 0;
                while let Some((op, written, arg)) = resolved.get(next) {
                    // The array updates of one array (as written) are one array node of
                    // MongoDB's update tree, applied together; they follow one another in
                    // path order.
                    let node = written.contains("$[").then(|| array_prefix(written));
                    let len = match &node {
                        Some(prefix) => resolved
                            .get(next..)
                            .unwrap_or_default()
                            .iter()
                            .take_while(|(_, p, _)| p.contains("$[") && array_prefix(p) == *prefix)
                            .count(),
                        None => 1,
                    };
                    let ops = next..next + len;
                    // MongoDB merges an array's updates when it reaches that array, after the
                    // writes to the fields before it, element by element: a conflict is met
                    // where its element is, after the writes (and errors) before it.
                    let mut conflict = None;
                    while let Some((_, group)) = merges.next_if(|(first, _)| ops.contains(first)) {
                        if let Err(e) = check_array_merges(doc, &group, filters) {
                            conflict.get_or_insert(e);
                        }
                    }
                    if node.is_some() {
                        let group = resolved.get(ops.clone()).unwrap_or_default();
                        let node = (group, ops, conflict);
                        apply_array_node(&mut out, node, filters, now_ms, &mut respelled, log)?;
                    } else {
                        if let Some(Unexpandable { error, .. }) = conflict {
                            return Err(error);
                        }
                        let path = canonical_update_path(&out, written);
                        let watched = respelled.before(ops, &out, &path);
                        let dollar = top_dollar_field(*op, &path, arg);
                        let before = dollar.map(|(field, _)| out.get(field).cloned());
                        let at = OpPath {
                            path: &path,
                            written,
                        };
                        apply_op(&mut out, *op, at, arg, now_ms, log)?;
                        if let (Some((field, whole)), Some(before)) = (dollar, before) {
                            check_top_dollar_write(&out, field, whole, before.as_ref())?;
                        }
                        if let Some(was) = watched {
                            respelled.after(&out, path, was)?;
                        }
                    }
                    next += len;
                }
                if let Some(old) = doc.get("_id")
                    && out.get("_id").is_none_or(|new| !values_equal(old, new))
                {
                    return Err(immutable_id());
                }
                out
            }
        };
        Ok(new)
    }

    /// [`Update::apply`] for a caller that applies the update to one document only: a
    /// replacement's values move into the new document instead of being copied, and the
    /// update is left a replacement by an empty document.
    ///
    /// # Errors
    /// As [`Update::apply`].
    pub(crate) fn apply_once(
        &mut self,
        doc: &Document,
        inserting: bool,
        filter: &Filter,
        now_ms: u64,
        log: &mut Vec<Logged>,
    ) -> Result<Document> {
        match self {
            Self::Replace(r) => {
                let fields = std::mem::take(r);
                replaced(doc, fields.len(), fields)
            }
            _ => self.apply_logged(doc, inserting, filter, now_ms, log),
        }
    }
}

/// What a replacement by `fields` (`len` of them) makes of `doc`: the stored `_id` first (the
/// replacement may repeat it, not change it), then the replacement's fields.
fn replaced(
    doc: &Document,
    len: usize,
    fields: impl IntoIterator<Item = (String, Bson)>,
) -> Result<Document> {
    let mut out = decode::document_for(len + 1);
    if let Some(id) = doc.get("_id") {
        out.insert("_id", id.clone());
    }
    for (k, v) in fields {
        if k == "_id"
            && let Some(old) = doc.get("_id")
            && !values_equal(old, &v)
        {
            return Err(altered_id(&v));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Applies the array updates (`$[]`, `$[<id>]`) `group`, operators of the update in
/// application order that cross one array: MongoDB's array node for it
/// (`UpdateArrayNode::apply`). Every filter reads the elements as they were before any of
/// them is written; then the writes are applied element by element, each element's in the
/// order of their paths (as the node merged for that element applies them), and logged as one
/// [`Logged::Elements`]. A path that cannot be expanded fails where MongoDB's walk of the
/// elements meets it: the writes before that place are applied first (their errors first), and
/// of several such paths the one met first is reported, as is `conflict`, where its merge of
/// the group's updates at an element fails ([`check_array_merges`]). `ops` are the group's places in
/// application order: a node whose array meets another operator's write only through a
/// respelled position (`x.01.$[]`, `x.1.$[]`) is watched as a whole ([`RespelledWrites`]), and
/// so is a write of the group that meets another of it that way (`x.$[].a.01`, `x.$[].a.1`).
///
/// # Errors
/// As [`expand_array_path`] and [`apply_op`]; code 40 from [`RespelledWrites::after`].
fn apply_array_node(
    out: &mut Document,
    (group, ops, conflict): (&[Write<'_>], Range<usize>, Option<Unexpandable>),
    filters: &ArrayFilters,
    now_ms: u64,
    respelled: &mut RespelledWrites,
    log: &mut Vec<Logged>,
) -> Result<()> {
    let Some((_, first, _)) = group.first() else {
        return Ok(());
    };
    let array = array_prefix(&canonical_update_path(out, first));
    let first_op = ops.start;
    let watched = respelled.before(ops, out, &array);
    // Each operator's concrete paths, all found before anything is written; of the paths that
    // cannot be expanded, the place MongoDB meets first and its error.
    let mut pending: Vec<(String, usize)> = Vec::new();
    let mut failed: Option<(String, Error)> = match conflict {
        None => None,
        Some(Unexpandable { error, at: None }) => return Err(error),
        Some(Unexpandable {
            error,
            at: Some(at),
        }) => Some((at, error)),
    };
    let mut levels: Vec<Vec<usize>> = Vec::with_capacity(group.len());
    let mut dollars = Vec::with_capacity(group.len());
    for (k, (op, written, arg)) in group.iter().enumerate() {
        let path = canonical_update_path(out, written);
        let dollar = top_dollar_field(*op, &path, arg);
        dollars
            .push(dollar.map(|(field, whole)| (field.to_owned(), whole, out.get(field).cloned())));
        let mut concrete = Vec::new();
        if let Err(Unexpandable { error, at }) =
            expand_array_path(out, &path, filters, &mut concrete)
        {
            let Some(at) = at else {
                return Err(error);
            };
            if failed
                .as_ref()
                .is_none_or(|(first, _)| compare_update_paths(&at, first).is_lt())
            {
                failed = Some((at, error));
            }
        }
        pending.extend(concrete.into_iter().map(|concrete| (concrete, k)));
        levels.push(
            path.split('.')
                .enumerate()
                .filter(|(_, part)| !matches!(array_part(part), ArrayPart::Plain))
                .map(|(i, _)| i)
                .collect(),
        );
    }
    pending.sort_by(|a, b| compare_update_paths(&a.0, &b.0));
    // Two writes of one element meet only where a part after an array part was respelled.
    // Their operators count toward the update's RESPELLED_WRITES_MAX: one operator's writes
    // copy the values at its own elements, disjoint, so its copies are bounded by the
    // document, but each operator more copies them again.
    let mut within = RespelledWrites::watching(
        if group.iter().any(|(_, p, _)| has_padded_part(p)) {
            pending
                .iter()
                .map(|(concrete, k)| {
                    let parts = concrete.split('.').map(str::to_owned).collect();
                    (parts, true, first_op + k)
                })
                .collect()
        } else {
            Vec::new()
        },
        &mut respelled.operators,
    )?;
    let mut writes = Vec::with_capacity(pending.len());
    for (w, (concrete, k)) in pending.into_iter().enumerate() {
        // MongoDB applies the writes before the place that fails, element by element, so an
        // error among them comes first.
        if let Some((at, _)) = &failed
            && compare_update_paths(&concrete, at).is_ge()
        {
            break;
        }
        let (Some((op, _, arg)), Some(levels)) = (group.get(k), levels.get(k)) else {
            continue;
        };
        let was = within.before(w..w + 1, out, &concrete);
        let mut logged = Vec::new();
        let at = OpPath {
            path: &concrete,
            written: &concrete,
        };
        apply_op(out, *op, at, arg, now_ms, &mut logged)?;
        if let Some(was) = was {
            within.after(out, concrete.clone(), was)?;
        }
        writes.push((concrete, levels.as_slice(), logged));
    }
    if let Some((_, error)) = failed {
        return Err(error);
    }
    log.push(nest_elements(array.clone(), writes));
    for (field, whole, before) in dollars.into_iter().flatten() {
        check_top_dollar_write(out, &field, whole, before.as_ref())?;
    }
    if let Some(was) = watched {
        respelled.after(out, array, was)?;
    }
    Ok(())
}

/// One write of an operator update as applied: the operator, its path (a positional `$`
/// resolved) and its argument.
type Write<'a> = (Op, String, &'a Bson);

/// The array updates (`$[]`, `$[<id>]`) of `ops` (in application order) grouped by the array
/// they reach first (the parts before the first such part, as written: MongoDB's update tree
/// keys its nodes so, and `x.01.$[i]` with `x.1.$[j]` are two array nodes of one array, never
/// merged), each group of two or more with the place in `ops` of its first write: MongoDB
/// merges a group when it applies that array, after the writes to the fields before it. None
/// for the usual update.
fn array_merge_groups<'a>(ops: &[(Op, String, &'a Bson)]) -> Vec<(usize, Vec<Write<'a>>)> {
    let array_update =
        |(op, path, _): &&(Op, String, &Bson)| *op != Op::Rename && path.contains("$[");
    // A merge needs two array updates.
    if ops.iter().filter(array_update).nth(1).is_none() {
        return Vec::new();
    }
    let mut groups: Vec<(usize, Vec<Write<'a>>)> = Vec::new();
    let mut by_array: HashMap<String, usize> = HashMap::new();
    for (i, write) in ops.iter().enumerate() {
        if !array_update(&write) {
            continue;
        }
        let (op, path, arg) = write;
        let group = *by_array.entry(array_prefix(path)).or_insert_with(|| {
            groups.push((i, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, group)) = groups.get_mut(group) {
            group.push((*op, path.clone(), *arg));
        }
    }
    groups.retain(|(_, group)| group.len() > 1);
    groups
}

/// MongoDB 7's merges of array updates (`$[]`, `$[<id>]`) of one array at the elements more
/// than one of their filters admits (`UpdateArrayNode::apply`), found before any of them is
/// written. `ops` are in application order, their positional `$` resolved; the filters are read
/// on `doc` as it was, as MongoDB reads an array's elements before it updates any of them
/// (writes that could change them conflict when parsed). Returns the number of
/// [`MergedBranches::merge`]s made, the work done (applying ignores it; a unit test asserts it
/// grows linearly in the filters admitting an element).
///
/// # Errors
/// Code 40 `Update created a conflict at '<path>'` ([`MergedBranches::merge`]), met at the
/// element merged; the filters' errors, met at the array; the first met, element by element.
fn check_array_merges(
    doc: &Document,
    ops: &[(Op, String, &Bson)],
    filters: &ArrayFilters,
) -> std::result::Result<usize, Unexpandable> {
    let paths: Vec<String> = ops
        .iter()
        .filter(|(op, path, _)| *op != Op::Rename && path.contains("$["))
        .map(|(_, path, _)| canonical_update_path(doc, path))
        .collect();
    // A merge needs two array updates.
    if paths.len() < 2 {
        return Ok(0);
    }
    let chains: Vec<Vec<&str>> = paths.iter().map(|p| p.split('.').collect()).collect();
    let whole: Vec<&[&str]> = chains.iter().map(Vec::as_slice).collect();
    let mut at = Vec::new();
    let mut done = 0;
    for (field, rest) in by_first_part(&whole) {
        at.push(field.to_owned());
        done += walk_update_node(doc.get(field), &mut at, &rest, filters)?;
        at.pop();
    }
    Ok(done)
}

/// Applies, for its merges only, the node of MongoDB's update tree at `at` (value `value`)
/// whose branches go on as `rest` (the remaining parts of each update path through it): an
/// array node ([`array_part`] parts) merges, per element, the children whose filters admit it;
/// an object node goes on per field (a position in an array by number, as applying does).
/// A missing or non-array value is left to applying to report. Returns the number of
/// [`MergedBranches::merge`]s made at and below the node.
fn walk_update_node(
    value: Option<&Bson>,
    at: &mut Vec<String>,
    rest: &[&[&str]],
    filters: &ArrayFilters,
) -> std::result::Result<usize, Unexpandable> {
    // A leaf: a write, merged (or not) above.
    if rest.iter().any(|r| r.is_empty()) {
        return Ok(0);
    }
    let mut done = 0;
    if !into_array(rest) {
        for (field, below) in by_first_part(rest) {
            let next = match value {
                Some(Bson::Document(d)) => d.get(field),
                Some(Bson::Array(items)) => update_index(field).and_then(|i| items.get(i)),
                _ => None,
            };
            at.push(field.to_owned());
            done += walk_update_node(next, at, &below, filters)?;
            at.pop();
        }
        return Ok(done);
    }
    let Some(Bson::Array(items)) = value else {
        return Ok(0);
    };
    // Where the element's index goes in `at`.
    let i_at = at.len();
    // The children in MongoDB's order: `$[]` (the empty identifier) first, then by identifier.
    let mut children: BTreeMap<&str, Vec<&[&str]>> = BTreeMap::new();
    for (part, below) in by_first_part(rest) {
        let id = match array_part(part) {
            ArrayPart::Filtered(id) => id,
            ArrayPart::All | ArrayPart::Plain => "",
        };
        children.entry(id).or_default().extend(below);
    }
    for (i, item) in items.iter().enumerate() {
        at.push(i.to_string());
        let mut merged: Vec<&[&str]> = Vec::new();
        // The first admitted child is put in the tree only when a second one is admitted, so
        // an element one child updates builds none.
        let mut first: Option<&[&[&str]]> = None;
        let mut tree = MergedBranches::default();
        let mut merges = 0_usize;
        for (id, below) in &children {
            // A filter's error is met at the array, before its elements (as applying meets
            // it, [`expand_at`], which reads every element).
            if !id.is_empty()
                && !filters
                    .admits(id, item)
                    .map_err(|e| Unexpandable::at(at.get(..i_at).unwrap_or_default(), e))?
            {
                continue;
            }
            if let Some(earlier) = first.take() {
                tree.merge(merges, earlier, at)
                    .map_err(|e| Unexpandable::at(at, e))?;
                merges += 1;
            }
            if merged.is_empty() {
                first = Some(below);
            } else {
                tree.merge(merges, below, at)
                    .map_err(|e| Unexpandable::at(at, e))?;
                merges += 1;
            }
            merged.extend(below.iter().copied());
        }
        done += merges;
        if !merged.is_empty() {
            done += walk_update_node(Some(item), at, &merged, filters)?;
        }
        at.pop();
    }
    Ok(done)
}

/// The branches of MongoDB's update tree merged so far at one array element, as a tree of
/// their parts, for its merges of the children the element's filters admit, one after another
/// (`createUpdateNodeByMerging`). Each child is merged once, in the size of its branches: a
/// merge with what came before meets each node the two share, so no earlier branch is read
/// again (an element admitted by every one of `ARRAY_FILTERS_MAX` filters is that many merges,
/// not that many squared).
#[derive(Default)]
struct MergedBranches<'p> {
    /// The nodes; the first is the element itself.
    nodes: Vec<MergedNode<'p>>,
}

/// A node of [`MergedBranches`]: a path below the element that some merged branch reaches.
struct MergedNode<'p> {
    /// The merge (by its number) that first reached it.
    first: usize,
    /// The first merge with a branch ending here: a write.
    leaf: Option<usize>,
    /// Whether the branches going on from here go into an array (their next part is `$[]` or
    /// `$[<id>]`), as the first that went on does.
    into_array: Option<bool>,
    /// The nodes one part below, by the part as written.
    next: BTreeMap<&'p str, usize>,
}

impl<'p> MergedBranches<'p> {
    /// Merges the branches of merge number `merge` (numbers grow from one merge to the next)
    /// with those merged before: where they meet a node an earlier merge reached and one of
    /// them ends there, or one goes on into an array and the other into a document, MongoDB's
    /// merge of the two tree branches fails (`createUpdateNodeByMerging`).
    ///
    /// # Errors
    /// Code 40 `Update created a conflict at '<at>.<node>'`, at the first such node in the
    /// order MongoDB's merge visits them (the parts as written, part by part).
    fn merge(&mut self, merge: usize, branches: &[&[&'p str]], at: &[String]) -> Result<()> {
        if self.nodes.is_empty() {
            self.nodes.push(MergedNode::new(merge));
        }
        let mut clash: Option<&[&str]> = None;
        for branch in branches {
            let mut node = 0;
            for depth in 0..=branch.len() {
                let next = branch.get(depth).copied();
                let Some(here) = self.nodes.get_mut(node) else {
                    break;
                };
                if here.first < merge {
                    let met = here.leaf.is_some_and(|leaf| leaf < merge)
                        || next.is_none_or(|part| {
                            here.into_array
                                .is_some_and(|array| array != is_array_update(part))
                        });
                    if met {
                        let path = branch.get(..depth).unwrap_or_default();
                        if clash.is_none_or(|c| path < c) {
                            clash = Some(path);
                        }
                        break;
                    }
                }
                let Some(part) = next else {
                    here.leaf.get_or_insert(merge);
                    break;
                };
                here.into_array.get_or_insert(is_array_update(part));
                node = match here.next.get(part) {
                    Some(&below) => below,
                    None => {
                        let below = self.nodes.len();
                        if let Some(here) = self.nodes.get_mut(node) {
                            here.next.insert(part, below);
                        }
                        self.nodes.push(MergedNode::new(merge));
                        below
                    }
                };
            }
        }
        match clash {
            None => Ok(()),
            Some(path) => {
                let at: Vec<&str> = at
                    .iter()
                    .map(String::as_str)
                    .chain(path.iter().copied())
                    .collect();
                Err(Error::update(
                    40,
                    format!("Update created a conflict at '{}'", at.join(".")),
                ))
            }
        }
    }
}

impl MergedNode<'_> {
    /// A node first reached by merge number `merge`.
    fn new(merge: usize) -> Self {
        Self {
            first: merge,
            leaf: None,
            into_array: None,
            next: BTreeMap::new(),
        }
    }
}

/// Whether a path part is an array update (`$[]`, `$[<id>]`).
fn is_array_update(part: &str) -> bool {
    !matches!(array_part(part), ArrayPart::Plain)
}

/// Whether the branches `rest` of an update-tree node go on into an array (their next part
/// is `$[]` or `$[<id>]`): the node is then an array node.
fn into_array(rest: &[&[&str]]) -> bool {
    rest.first()
        .and_then(|r| r.first())
        .is_some_and(|part| !matches!(array_part(part), ArrayPart::Plain))
}

/// The branches `rest` grouped by their next part (the children of their node), each child
/// with the parts after it.
fn by_first_part<'a, 'p>(rest: &[&'a [&'p str]]) -> BTreeMap<&'p str, Vec<&'a [&'p str]>> {
    let mut out: BTreeMap<&'p str, Vec<&'a [&'p str]>> = BTreeMap::new();
    for r in rest {
        if let Some((first, below)) = r.split_first() {
            out.entry(*first).or_default().push(below);
        }
    }
    out
}

/// Why an update path with array parts could not be expanded: the error and where MongoDB's
/// walk of the document meets it (the path of the value standing where an array should, or of
/// the array a filter failed on).
struct Unexpandable {
    /// The error to report.
    error: Error,
    /// Where it is met; none for an error reported at once, whatever the document's other
    /// updates (this store's limit, an array part first in the path).
    at: Option<String>,
}

impl Unexpandable {
    /// The error `error`, met at `done`.
    fn at(done: &[String], error: Error) -> Self {
        Self {
            error,
            at: Some(done.join(".")),
        }
    }
}

/// Adds to `out` the concrete paths an update path with `$[]`/`$[<id>]` parts stands for in
/// `doc`: one per element (admitted by its filter) of each array such a part crosses, in
/// element order. The arrays must exist (code 2, `The path 'a' must exist in the document in
/// order to apply array updates.`) and be arrays (`Cannot apply array updates to non-array
/// element a: 1`); past an array part, a missing field is a path to create. On an error `out`
/// holds the paths found before it.
fn expand_array_path(
    doc: &Document,
    path: &str,
    filters: &ArrayFilters,
    out: &mut Vec<String>,
) -> std::result::Result<(), Unexpandable> {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((first, rest)) = parts.split_first() else {
        return Ok(());
    };
    if !matches!(array_part(first), ArrayPart::Plain) {
        // The top level is a document, never an array.
        return Err(Unexpandable {
            error: Error::bad(format!(
                "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '{path}'"
            )),
            at: None,
        });
    }
    let mut done = vec![(*first).to_owned()];
    expand_at(doc.get(*first), rest, &mut done, filters, out)
}

fn expand_at(
    value: Option<&Bson>,
    parts: &[&str],
    done: &mut Vec<String>,
    filters: &ArrayFilters,
    out: &mut Vec<String>,
) -> std::result::Result<(), Unexpandable> {
    let Some((part, rest)) = parts.split_first() else {
        if out.len() >= ARRAY_UPDATE_PATHS_MAX {
            return Err(Unexpandable {
                error: Error::TooMany {
                    what: "array update paths",
                    len: out.len() + 1,
                    max: ARRAY_UPDATE_PATHS_MAX,
                },
                at: None,
            });
        }
        out.push(done.join("."));
        return Ok(());
    };
    let filtered = match array_part(part) {
        ArrayPart::Plain => {
            let (next, part) = match value {
                Some(Bson::Document(d)) => (d.get(*part), (*part).to_owned()),
                Some(Bson::Array(items)) => match update_index(part) {
                    Some(i) => (items.get(i), i.to_string()),
                    None => (None, (*part).to_owned()),
                },
                _ => (None, (*part).to_owned()),
            };
            done.push(part);
            let r = expand_at(next, rest, done, filters, out);
            done.pop();
            return r;
        }
        ArrayPart::All => None,
        ArrayPart::Filtered(id) => Some(id),
    };
    let items = match value {
        Some(Bson::Array(items)) => items,
        None => {
            let error = Error::bad(format!(
                "The path '{}' must exist in the document in order to apply array updates.",
                done.join(".")
            ));
            return Err(Unexpandable::at(done, error));
        }
        Some(other) => {
            let error = Error::bad(format!(
                "Cannot apply array updates to non-array element {}: {}",
                done.last().map_or("", String::as_str),
                document::render_value(other)
            ));
            return Err(Unexpandable::at(done, error));
        }
    };
    // Elements a filter rejects are read, not counted in ARRAY_UPDATE_PATHS_MAX (which caps
    // the paths kept): one path's expansion reaches each value of the document at most once,
    // so its filter tests are bounded by the document's size (DOCUMENT_BYTES_MAX), each
    // a filter within FILTER_CLAUSES_MAX, and an update's by that times its operators
    // (UPDATE_OPERATIONS_MAX). No copy is made per test (`ArrayFilters::admits`).
    for (i, el) in items.iter().enumerate() {
        if let Some(id) = filtered
            && !filters
                .admits(id, el)
                .map_err(|e| Unexpandable::at(done, e))?
        {
            continue;
        }
        done.push(i.to_string());
        let r = expand_at(Some(el), rest, done, filters, out);
        done.pop();
        r?;
    }
    Ok(())
}

/// A path part below an array as MongoDB's update system reads it (`parseUnsignedBase10Integer`):
/// digits, leading zeros allowed, within 32 bits, are that position.
fn update_index(part: &str) -> Option<usize> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse::<u32>()
        .ok()
        .and_then(|i| usize::try_from(i).ok())
}

/// `path` with each part that is a position in an array of `doc` written as its number
/// ([`update_index`]), so `a.01` on an array `a` is `a.1`; parts below a missing value, and
/// from a `$[]`/`$[<id>]` part on, as written.
fn canonical_update_path(doc: &Document, path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut at: Option<&Bson> = None;
    let mut parts = path.split('.');
    for part in parts.by_ref() {
        if !matches!(array_part(part), ArrayPart::Plain) {
            out.push(part.to_owned());
            break;
        }
        let (next, written) = match (out.is_empty(), at) {
            (true, _) => (doc.get(part), part.to_owned()),
            (false, Some(Bson::Document(d))) => (d.get(part), part.to_owned()),
            (false, Some(Bson::Array(items))) => match update_index(part) {
                Some(i) => (items.get(i), i.to_string()),
                None => (None, part.to_owned()),
            },
            (false, _) => (None, part.to_owned()),
        };
        out.push(written);
        at = next;
        if at.is_none() {
            break;
        }
    }
    out.extend(parts.map(str::to_owned));
    out.join(".")
}

/// The writes of an update that name one array position by two spellings (`a.1`, `a.01`):
/// MongoDB's parser keys its tree by the parts as written, so both are applied, but when both
/// change the element its oplog diff builder meets that position twice and the server stops on
/// an invariant with nothing written. The store refuses such an update instead, with the code
/// 40 text MongoDB gives writes that meet only when applied; a write that changes nothing is
/// not logged by MongoDB, and is let pass here too.
struct RespelledWrites {
    /// Whether each write (by its place in application order) meets another write of the
    /// update only through a respelled position, so whether it changes anything is watched.
    watched: Vec<bool>,
    /// The paths (positions as numbers) of the watched writes that changed the document.
    changed: Vec<String>,
    /// The operators (by their place in application order) with a watched write, here or in
    /// the writes of an array update watched apart ([`apply_array_node`]): at most
    /// [`RESPELLED_WRITES_MAX`].
    operators: BTreeSet<usize>,
}

impl RespelledWrites {
    /// Finds the writes of `ops` (in application order) whose paths in `doc`, positions
    /// written as numbers ([`canonical_update_path`]), overlap where their written paths do
    /// not (an array update's path taken up to its first array part: the array it writes
    /// into). The parser's claims keep written paths apart, so a write is watched only when
    /// some path was respelled; with none (the usual case) nothing is compared.
    ///
    /// # Errors
    /// [`Error::TooMany`] past [`RESPELLED_WRITES_MAX`] operators with watched writes, each of
    /// which copies and compares the value at its path.
    fn new(doc: &Document, ops: &[(Op, String, &Bson)]) -> Result<Self> {
        let mut operators = BTreeSet::new();
        if !ops.iter().any(|(_, path, _)| has_padded_part(path)) {
            return Self::watching(Vec::new(), &mut operators);
        }
        let mut out = Self::watching(
            ops.iter()
                .enumerate()
                .map(|(i, (_, written, _))| {
                    // An array update (`$[]`, `$[<id>]`) writes into the array its first array
                    // part crosses, whatever elements its filters admit: watched as a whole.
                    let written = array_prefix(written);
                    let path = canonical_update_path(doc, &written);
                    let respelled = path != written;
                    (path.split('.').map(str::to_owned).collect(), respelled, i)
                })
                .collect(),
            &mut operators,
        )?;
        out.operators = operators;
        Ok(out)
    }

    /// Watches the writes at `canonical` paths (each as parts, positions as numbers, whether
    /// it was respelled to be so, and the operator writing it by its place in application
    /// order) that overlap another where one of the two was respelled, adding their operators
    /// to `operators`.
    ///
    /// # Errors
    /// [`Error::TooMany`] past [`RESPELLED_WRITES_MAX`] operators.
    fn watching(
        canonical: Vec<(Vec<String>, bool, usize)>,
        operators: &mut BTreeSet<usize>,
    ) -> Result<Self> {
        let mut watched = vec![false; canonical.len()];
        // Counted as they are found, so the scan stops at the cap: the pairs it meets all
        // hold a watched write of at most that many operators.
        // Ordered part by part, a path's extensions follow it, so each overlapping pair is met
        // once by a forward scan.
        let mut order: Vec<usize> = (0..canonical.len()).collect();
        order.sort_by(|a, b| canonical.get(*a).cmp(&canonical.get(*b)));
        for (k, &i) in order.iter().enumerate() {
            let Some((path, respelled, op)) = canonical.get(i) else {
                continue;
            };
            for &j in order.get(k + 1..).unwrap_or_default() {
                let Some((other, other_respelled, other_op)) = canonical.get(j) else {
                    break;
                };
                if !other.starts_with(path) {
                    break;
                }
                if *respelled || *other_respelled {
                    for w in [i, j] {
                        if let Some(w) = watched.get_mut(w) {
                            *w = true;
                        }
                    }
                    operators.extend([*op, *other_op]);
                    if operators.len() > RESPELLED_WRITES_MAX {
                        return Err(Error::TooMany {
                            what: "writes meeting through a respelled array position",
                            len: operators.len(),
                            max: RESPELLED_WRITES_MAX,
                        });
                    }
                }
            }
        }
        Ok(Self {
            watched,
            changed: Vec::new(),
            operators: BTreeSet::new(),
        })
    }

    /// The value at `path` before the writes `writes` (applied together), when one of them is
    /// watched (`Some(None)`: the path is missing).
    fn before(&self, writes: Range<usize>, doc: &Document, path: &str) -> Option<Option<Bson>> {
        if !self.watched.get(writes).is_some_and(|w| w.contains(&true)) {
            return None;
        }
        let parts: Vec<&str> = path.split('.').collect();
        Some(document::get_path(doc, &parts).cloned())
    }

    /// Records a watched write to `path` that found `was` there.
    ///
    /// # Errors
    /// Code 40 when it changed the document and so did an earlier watched write to an
    /// overlapping path, at the shorter of the two.
    fn after(&mut self, doc: &Document, path: String, was: Option<Bson>) -> Result<()> {
        let parts: Vec<&str> = path.split('.').collect();
        let changed = match (&was, document::get_path(doc, &parts)) {
            (Some(a), Some(b)) => !document::identical_values(a, b),
            (None, None) => false,
            _ => true,
        };
        if !changed {
            return Ok(());
        }
        if let Some(earlier) = self.changed.iter().find(|p| paths_conflict(p, &path)) {
            let at = if earlier.len() < path.len() {
                earlier
            } else {
                &path
            };
            return Err(Error::update(
                40,
                format!("Update created a conflict at '{at}'"),
            ));
        }
        self.changed.push(path);
        Ok(())
    }
}

/// Whether `path` has a part MongoDB's update system reads as a position that is not written
/// as its number: digits with a leading zero (`01`).
fn has_padded_part(path: &str) -> bool {
    path.split('.').any(|part| {
        part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The top-level field an operator writes when its name starts with `$`, and whether the
/// operator writes that field whole (the path is that one part): what MongoDB's storage check
/// of a modified element looks at (`ModifierNode::validateUpdate`). `$unset`, `$pull`,
/// `$pullAll` and `$pop` only remove, which that check lets pass.
fn top_dollar_field<'a>(op: Op, path: &'a str, arg: &'a Bson) -> Option<(&'a str, bool)> {
    let written = match (op, arg) {
        (Op::Unset | Op::Pull | Op::PullAll | Op::Pop, _) => return None,
        (Op::Rename, Bson::String(to)) => to.as_str(),
        _ => path,
    };
    let field = written.split('.').next()?;
    field
        .starts_with('$')
        .then_some((field, field.len() == written.len()))
}

/// MongoDB's storage check of a write to the top-level `$`-prefixed `field` (`whole`: written
/// whole): made when the write created the field, or changed it writing it whole (a write below
/// an existing field is to a nested name, which may start with `$`), and passed only by a DBRef
/// field in its place among the fields beside it ([`check_dbref_field`]).
///
/// # Errors
/// As [`check_dbref_field`].
fn check_top_dollar_write(
    doc: &Document,
    field: &str,
    whole: bool,
    before: Option<&Bson>,
) -> Result<()> {
    let checked = match (before, doc.get(field)) {
        (None, Some(_)) => true,
        (Some(was), Some(now)) => whole && !document::identical_values(was, now),
        (_, None) => false,
    };
    if checked {
        check_dbref_field(doc, field)?;
    }
    Ok(())
}

/// MongoDB's check of a top-level `$`-prefixed `field` of `doc` (`validateDollarPrefixElement`):
/// `$db` must be a string right after `$id`, `$id` right after `$ref`, and `$ref` a string
/// right before `$id`, each rule checked from `field` back to the `$ref` it leads to.
///
/// # Errors
/// Code 10 InvalidDBRef naming the rule a DBRef field breaks; code 52 DollarPrefixedFieldName
/// for any other name, with MongoDB 7.0's texts.
fn check_dbref_field(doc: &Document, field: &str) -> Result<()> {
    let fields: Vec<(&String, &Bson)> = doc.iter().collect();
    let name_at = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|(name, _)| name.as_str());
    let invalid = |message: String| Error::update(10, message);
    let not_string = |name: &str, value: &Bson| {
        (!matches!(value, Bson::String(_))).then(|| {
            invalid(format!(
                "The DBRef {name} field must be a String, not a {}",
                super::query::type_name(Some(value))
            ))
        })
    };
    let mut at = fields.iter().position(|(name, _)| name.as_str() == field);
    let mut name = field;
    if name == "$db" {
        if let Some(e) = at
            .and_then(|i| fields.get(i))
            .and_then(|(_, v)| not_string("$db", v))
        {
            return Err(e);
        }
        at = at.and_then(|i| i.checked_sub(1));
        if name_at(at) != Some("$id") {
            return Err(invalid(
                "Found $db field without a $id before it, which is invalid.".to_owned(),
            ));
        }
        name = "$id";
    }
    if name == "$id" {
        at = at.and_then(|i| i.checked_sub(1));
        if name_at(at) != Some("$ref") {
            return Err(invalid(
                "Found $id field without a $ref before it, which is invalid.".to_owned(),
            ));
        }
        name = "$ref";
    }
    if name != "$ref" {
        return Err(Error::update(
            52,
            format!(
                "The dollar ($) prefixed field '{field}' in '{field}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith."
            ),
        ));
    }
    if let Some(e) = at
        .and_then(|i| fields.get(i))
        .and_then(|(_, v)| not_string("$ref", v))
    {
        return Err(e);
    }
    if name_at(at.map(|i| i + 1)) != Some("$id") {
        return Err(invalid(
            "The DBRef $ref field must be followed by a $id field".to_owned(),
        ));
    }
    Ok(())
}

/// Checks the `arrayFilters` of a pipeline-style update as MongoDB's update command does: the
/// filters are parsed first (their errors come first), then any filter at all is refused, all
/// before the pipeline's stages are parsed.
///
/// # Errors
/// [`ArrayFilters::parse`]'s, then [`pipeline_with_array_filters`].
pub(crate) fn check_pipeline_array_filters(
    filters: Option<&[Document]>,
    now_ms: i64,
) -> Result<()> {
    match filters {
        Some(f) if !f.is_empty() => {
            ArrayFilters::parse(f, now_ms)?;
            Err(pipeline_with_array_filters())
        }
        _ => Ok(()),
    }
}

/// MongoDB's error for `arrayFilters` given with a pipeline-style update.
fn pipeline_with_array_filters() -> Error {
    Error::update(
        9,
        "arrayFilters may not be specified for pipeline-style updates",
    )
}

/// MongoDB's error for a replacement (or a pipeline's output) whose `_id` differs from the
/// stored one.
fn altered_id(new: &Bson) -> Error {
    Error::update(
        66,
        format!(
            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: {}",
            document::render_value(new)
        ),
    )
}

fn immutable_id() -> Error {
    Error::update(
        66,
        "Performing an update on the path '_id' would modify the immutable field '_id'",
    )
}

fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Boolean(_) => "bool",
        Bson::Null => "null",
        Bson::Int32(_) => "int",
        Bson::Int64(_) => "long",
        _ => "other",
    }
}

/// The path an operator is applied at in MongoDB's update tree: a `$rename` at its target.
fn applied_at<'a>((op, path, arg): &'a (Op, String, &Bson)) -> &'a str {
    match (op, arg) {
        (Op::Rename, Bson::String(to)) => to,
        _ => path,
    }
}

/// MongoDB's order of update paths (its update tree's `cmpPathsAndArrayIndexes`, part by
/// part): two parts that are both numbers without a leading zero by value, any others as
/// strings.
fn compare_update_paths(a: &str, b: &str) -> Ordering {
    let number = |s: &str| {
        s.as_bytes().first().is_some_and(u8::is_ascii_digit) && !(s.len() > 1 && s.starts_with('0'))
    };
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        let order = match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if number(x) && number(y) => {
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            (Some(x), Some(y)) => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
}

/// The parts of an update path before its first `$[]`/`$[<id>]` part: the array that part
/// crosses.
fn array_prefix(path: &str) -> String {
    path.split('.')
        .take_while(|part| matches!(array_part(part), ArrayPart::Plain))
        .collect::<Vec<_>>()
        .join(".")
}

/// A concrete path of a `$[]`/`$[<id>]` path, the positions of the array parts from the one
/// of the array being logged on (see [`nest_elements`]), and what the operator logged writing
/// it.
type ElementWrites<'l> = (String, &'l [usize], Vec<Logged>);

/// The writes into the array at `array` of the array updates of one array node (each
/// concrete path with its array parts' positions, the first this array's, and what it logged,
/// in the order applied: element by element, by path) as MongoDB's nested array nodes log
/// them: one [`Logged::Elements`], holding each write that ends in an element of this array
/// and, per inner array another array part crosses in an element, one nested
/// [`Logged::Elements`] (the node merged for that element has one array node there).
fn nest_elements(array: String, writes: Vec<ElementWrites<'_>>) -> Logged {
    let mut out: Vec<Logged> = Vec::new();
    // The writes into one inner array, which follow one another as applied.
    let mut inner: Option<(String, Vec<ElementWrites<'_>>)> = None;
    for (path, levels, logged) in writes {
        let below = levels.get(1..).unwrap_or_default();
        let Some(&inner_at) = below.first() else {
            if let Some((inner_array, members)) = inner.take() {
                out.push(nest_elements(inner_array, members));
            }
            out.extend(logged);
            continue;
        };
        let inner_array = path.split('.').take(inner_at).collect::<Vec<_>>().join(".");
        match &mut inner {
            Some((at, members)) if *at == inner_array => members.push((path, below, logged)),
            _ => {
                if let Some((inner_array, members)) = inner.take() {
                    out.push(nest_elements(inner_array, members));
                }
                inner = Some((inner_array, vec![(path, below, logged)]));
            }
        }
    }
    if let Some((inner_array, members)) = inner {
        out.push(nest_elements(inner_array, members));
    }
    Logged::Elements { array, writes: out }
}

/// A write an operator update logs, as MongoDB's update nodes log theirs to the `$v: 2` oplog
/// entry a change event's `updateDescription` is read from.
#[derive(Debug)]
pub(crate) enum Logged {
    /// The value at the path was written whole (with any parents the write created).
    Set(String),
    /// The field at the path was unset (an array element: set to null).
    Unset(String),
    /// Elements were appended to the non-empty array at the path, the first at this index
    /// (`$push` with no `$sort`, no `$position` inside the array and no `$slice` that cuts).
    Appended(String, usize),
    /// The writes of the `$[]`/`$[<id>]` operators of one array node into the elements of the
    /// array at `array`: when they reach more than one element MongoDB logs the whole array if
    /// more than one changed, else the one changed element whole; reaching one element, each
    /// write as it is (a nested array part's writes are an `Elements` of their own, by the
    /// same rule).
    Elements { array: String, writes: Vec<Logged> },
}

/// Where `$push` only appends to an existing array, the index of the first appended element:
/// as MongoDB's `PushNode`, whose log then names each appended element rather than the array.
fn push_appends(doc: &Document, parts: &[&str], arg: &Bson) -> Option<usize> {
    let spec = parse_push(arg).ok()?;
    let Some(Bson::Array(current)) = document::get_path(doc, parts) else {
        return None;
    };
    let len = i64::try_from(current.len()).ok()?;
    let total = current.len().checked_add(spec.items.len())?;
    let cut = spec
        .slice
        .is_some_and(|n| usize::try_from(n.unsigned_abs()).is_ok_and(|keep| keep < total));
    let inside = spec.position.is_some_and(|p| p <= len);
    (!current.is_empty() && spec.sort.is_none() && !inside && !cut).then_some(current.len())
}

/// The paths an update writes, claimed in order as MongoDB's update parser adds them to its
/// tree: a path equal to a claimed one, inside one or holding one is code 40
/// ConflictingUpdateOperators, reported at the shorter of the two paths; so is a path whose
/// part after a claimed prefix is an array update (`$[]`, `$[<id>]`) where an earlier path's
/// is not, or the reverse, reported at that prefix (MongoDB's tree makes the prefix's node an
/// array node or an object node, not both).
///
/// Paths are kept as lists of parts, ordered part by part: a path's extensions then sort
/// directly after it, so one range lookup finds them, and claiming up to
/// [`UPDATE_OPERATIONS_MAX`] paths is O(n log n) rather than pairwise.
#[derive(Debug, Default)]
struct ClaimedPaths {
    paths: BTreeSet<Vec<String>>,
    /// Each proper prefix of a claimed path, and whether the part after it is an array update.
    below: BTreeMap<Vec<String>, bool>,
    /// Whether the paths are claimed as applied, a positional `$` resolved to its index: a
    /// clash is then one the parser could not see, which MongoDB finds merging the `$` branch
    /// of its tree with the one naming that index, and words as such.
    applied: bool,
}

impl ClaimedPaths {
    /// Claims for paths as applied: a positional `$` resolved (the `applied` field).
    fn applied() -> Self {
        Self {
            applied: true,
            ..Self::default()
        }
    }

    /// Claims what `op` writes at `path`: for `$rename`, both its source and its target.
    fn claim_op(&mut self, op: Op, path: &str, arg: &Bson) -> Result<()> {
        self.claim(path)?;
        match (op, arg) {
            (Op::Rename, Bson::String(to)) => self.claim(to),
            _ => Ok(()),
        }
    }

    fn claim(&mut self, path: &str) -> Result<()> {
        self.claim_parsed(path, None)
    }

    /// Claims `path` as MongoDB's parser adds it to its tree, part by part: each `$[]`/`$[<id>]`
    /// part is checked ([`check_array_update_part`], its identifier against `filters` when
    /// given) before the clash at the prefix it ends.
    fn claim_parsed(&mut self, path: &str, filters: Option<&ArrayFilters>) -> Result<()> {
        let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
        let array_update = |n: usize| {
            parts
                .get(n)
                .is_some_and(|part| !matches!(array_part(part), ArrayPart::Plain))
        };
        // As MongoDB walks the path down its tree: the shallowest clash first.
        for n in 1..=parts.len() {
            let Some(prefix) = parts.get(..n) else { break };
            if let Some(part) = prefix.last() {
                check_array_update_part(path, n - 1, part, filters)?;
            }
            let clash = self.paths.contains(prefix)
                || (n < parts.len()
                    && self
                        .below
                        .get(prefix)
                        .is_some_and(|array| *array != array_update(n)));
            if clash {
                return Err(self.conflict(path, &prefix.join(".")));
            }
        }
        let next = self
            .paths
            .range::<[String], _>((Bound::Excluded(parts.as_slice()), Bound::Unbounded))
            .next();
        if next.is_some_and(|claimed| claimed.starts_with(&parts)) {
            return Err(self.conflict(path, path));
        }
        for n in 1..parts.len() {
            if let Some(prefix) = parts.get(..n) {
                self.below
                    .entry(prefix.to_vec())
                    .or_insert_with(|| array_update(n));
            }
        }
        self.paths.insert(parts);
        Ok(())
    }

    /// MongoDB's code 40 for `path` overlapping a path already claimed, at `at`: its parser's
    /// text, or, for paths as applied, the text of its merge of two tree branches
    /// (`UpdateNode::createUpdateNodeByMerging`).
    fn conflict(&self, path: &str, at: &str) -> Error {
        let message = if self.applied {
            format!("Update created a conflict at '{at}'")
        } else {
            format!("Updating the path '{path}' would create a conflict at '{at}'")
        };
        Error::update(40, message)
    }
}

/// Whether two update paths overlap (equal, or one a dotted prefix of the other).
fn paths_conflict(a: &str, b: &str) -> bool {
    a == b
        || b.strip_prefix(a).is_some_and(|r| r.starts_with('.'))
        || a.strip_prefix(b).is_some_and(|r| r.starts_with('.'))
}

/// MongoDB's checks of a path an update writes, made before the operator's argument is read
/// (`fieldchecker::isUpdatable`, then the positional `$` parts), and the store's
/// [`PATH_PARTS_MAX`](super::PATH_PARTS_MAX).
///
/// # Errors
/// Code 56 EmptyFieldName for an empty path or part; [`Error::BadValue`] for more than one
/// `$` part, or a `$` first; [`split_path`]'s beyond the parts limit.
fn check_update_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::update(56, "An empty update path is not valid."));
    }
    if path.split('.').any(str::is_empty) {
        return Err(Error::update(
            56,
            format!("The update path '{path}' contains an empty field name, which is not allowed."),
        ));
    }
    let positional = path.split('.').filter(|part| *part == "$").count();
    if positional > 1 {
        return Err(Error::bad(format!(
            "Too many positional (i.e. '$') elements found in path '{path}'"
        )));
    }
    if path.split('.').next() == Some("$") {
        return Err(Error::bad(format!(
            "Cannot have positional (i.e. '$') element in the first position in path '{path}'"
        )));
    }
    split_path(path)?;
    Ok(())
}

/// MongoDB's check of a `$[]`/`$[<id>]` part (at `position` in `path`) as its parser adds the
/// path to its tree (`parseArrayFilterIdentifier`): the top level is a document, so such a part
/// cannot come first; an identifier needs a filter among `filters`, when they are given.
///
/// # Errors
/// [`Error::BadValue`] for either, with MongoDB's texts.
fn check_array_update_part(
    path: &str,
    position: usize,
    part: &str,
    filters: Option<&ArrayFilters>,
) -> Result<()> {
    let id = match array_part(part) {
        ArrayPart::Plain => return Ok(()),
        ArrayPart::All => "",
        ArrayPart::Filtered(id) => id,
    };
    if position == 0 {
        return Err(Error::bad(format!(
            "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '{path}'"
        )));
    }
    if let Some(filters) = filters
        && !id.is_empty()
        && filters.get(id).is_none()
    {
        return Err(Error::bad(format!(
            "No array filter found for identifier '{id}' in path '{path}'"
        )));
    }
    Ok(())
}

/// Whether a path has a positional `$` or an array update (`$[]`, `$[<id>]`) part, which
/// `$rename` refuses on either side.
fn is_dynamic(path: &str) -> bool {
    path.split('.')
        .any(|part| part == "$" || !matches!(array_part(part), ArrayPart::Plain))
}

/// `$rename`'s checks of its two paths, before any document is read, in the order of MongoDB's
/// `RenameNode::init`.
///
/// # Errors
/// [`Error::BadValue`] when the target holds a null byte, the paths are equal, one is a prefix
/// of the other, or either is dynamic ([`is_dynamic`]), the source first.
fn check_rename_paths(from: &str, to: &str) -> Result<()> {
    if to.contains('\0') {
        return Err(Error::bad(
            "The 'to' field for $rename cannot contain an embedded null byte",
        ));
    }
    if from == to {
        return Err(Error::bad(format!(
            "The source and target field for $rename must differ: {from}: \"{to}\""
        )));
    }
    if paths_conflict(from, to) {
        return Err(Error::bad(format!(
            "The source and target field for $rename must not be on the same path: {from}: \"{to}\""
        )));
    }
    if is_dynamic(from) {
        return Err(Error::bad(format!(
            "The source field for $rename may not be dynamic: {from}"
        )));
    }
    if is_dynamic(to) {
        return Err(Error::bad(format!(
            "The destination field for $rename may not be dynamic: {to}"
        )));
    }
    Ok(())
}

/// The name of the first array met walking `parts` from the top of `doc` (`None` when the
/// walk reaches a missing field or a scalar first, or ends).
fn first_array_on<'a>(doc: &Document, parts: &[&'a str]) -> Option<&'a str> {
    let mut reached: Option<&Bson> = None;
    for part in parts {
        let next = match reached {
            None => doc.get(*part),
            Some(Bson::Document(d)) => d.get(*part),
            Some(_) => None,
        }?;
        if matches!(next, Bson::Array(_)) {
            return Some(part);
        }
        reached = Some(next);
    }
    None
}

/// Replaces a `$` path part by the index of the first array element the filter matched.
///
/// As MongoDB's match details: only the top-level conditions on the array (or below it) that
/// match element by element name an element; a condition on the array as a whole (`$size`,
/// `$exists`) or a negation (`$ne`, `$nin`, `$not`) does not, and with no such condition the
/// update fails with BadValue.
fn resolve_positional(path: &str, doc: &Document, filter: &Filter) -> Result<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let Some(pos) = parts.iter().position(|p| *p == "$") else {
        return Ok(path.to_owned());
    };
    let prefix = parts.get(..pos).unwrap_or_default();
    let not_found =
        || Error::bad("The positional operator did not find the match needed from the query.");
    let Some(Bson::Array(items)) = document::get_path(doc, prefix) else {
        return Err(not_found());
    };
    let prefix_path = prefix.join(".");
    let element_conditions: Vec<Filter> = filter
        .conjuncts()
        .into_iter()
        .filter(|(p, _)| {
            *p == prefix_path
                || p.strip_prefix(prefix_path.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
        .filter_map(|(p, c)| {
            Some(Filter::Field {
                path: p.to_owned(),
                parts: p.split('.').map(str::to_owned).collect(),
                cond: element_condition(c)?,
            })
        })
        .collect();
    if element_conditions.is_empty() {
        return Err(not_found());
    }
    let element_filter = Filter::And(element_conditions);
    for (i, el) in items.iter().enumerate() {
        // The conditions only read paths under the prefix: a probe holding just this element
        // there answers them.
        let mut probe = Document::new();
        set_path(&mut probe, prefix, Bson::Array(vec![el.clone()]))?;
        if element_filter.matches(&probe) {
            let mut resolved: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
            if let Some(slot) = resolved.get_mut(pos) {
                *slot = i.to_string();
            }
            return Ok(resolved.join("."));
        }
    }
    Err(not_found())
}

/// The part of a condition that matches array elements one by one, if any.
fn element_condition(cond: &Cond) -> Option<Cond> {
    match cond {
        Cond::Ne(_) | Cond::Nin(_) | Cond::Not(_) | Cond::Size(_) | Cond::Exists(_) => None,
        Cond::And(cs) => {
            let kept: Vec<Cond> = cs.iter().filter_map(element_condition).collect();
            (!kept.is_empty()).then_some(Cond::And(kept))
        }
        other => Some(other.clone()),
    }
}

/// Where an operator applies: `path` with each array position as its number
/// ([`canonical_update_path`]), which it walks and logs, and the path as the update wrote it,
/// which its errors quote (MongoDB's update system names the path it walked as written).
#[derive(Clone, Copy)]
struct OpPath<'a> {
    path: &'a str,
    written: &'a str,
}

/// Applies one operator at one path.
///
/// Adds to `log` what MongoDB's update node for `op` logs: the value at `path` written whole
/// (an array `$push` only appended to: the appended elements), or the field unset.
fn apply_op(
    doc: &mut Document,
    op: Op,
    at: OpPath<'_>,
    arg: &Bson,
    now_ms: u64,
    log: &mut Vec<Logged>,
) -> Result<()> {
    let OpPath { path, written } = at;
    let parts = split_path(path)?;
    match (op, arg) {
        (Op::Unset, _) => log.push(Logged::Unset(path.to_owned())),
        // MongoDB's `RenameNode` sets the target, then unsets the source.
        (Op::Rename, Bson::String(to)) => {
            log.push(Logged::Set(to.clone()));
            log.push(Logged::Unset(path.to_owned()));
        }
        (Op::Push, _) => log.push(match push_appends(doc, &parts, arg) {
            Some(from) => Logged::Appended(path.to_owned(), from),
            None => Logged::Set(path.to_owned()),
        }),
        _ => log.push(Logged::Set(path.to_owned())),
    }
    match op {
        Op::Set | Op::SetOnInsert => set_path(doc, &parts, arg.clone()),
        Op::Unset => {
            unset_path(doc, &parts);
            Ok(())
        }
        Op::Inc | Op::Mul => {
            let current = document::get_path(doc, &parts).cloned();
            let new = match current {
                None => {
                    if op == Op::Inc {
                        arg.clone()
                    } else {
                        // MongoDB multiplies an int32 zero: the type is the multiplier's (a
                        // decimal keeps its exponent).
                        arith(&Bson::Int32(0), arg, op, written)?
                    }
                }
                Some(cur) => {
                    if document::as_f64(&cur).is_none() {
                        return Err(Error::update(
                            14,
                            format!(
                                "Cannot apply {} to a value of non-numeric type. {} has the field '{}' of non-numeric type {}",
                                op.name(),
                                id_for_message(doc),
                                parts.last().copied().unwrap_or_default(),
                                type_name(&cur)
                            ),
                        ));
                    }
                    arith(&cur, arg, op, written)?
                }
            };
            set_path(doc, &parts, new)
        }
        Op::Min | Op::Max => {
            let current = document::get_path(doc, &parts);
            let replace = current.is_none_or(|cur| {
                let o = compare(arg, cur);
                if op == Op::Min {
                    o == Ordering::Less
                } else {
                    o == Ordering::Greater
                }
            });
            if replace {
                set_path(doc, &parts, arg.clone())
            } else {
                Ok(())
            }
        }
        Op::Rename => {
            let Bson::String(to) = arg else {
                return Err(Error::bad("$rename target must be a string"));
            };
            let to_parts = split_path(to)?;
            let Some(v) = document::get_path(doc, &parts).cloned() else {
                return Ok(());
            };
            // Every ancestor of the source, and every existing ancestor of the target (the
            // target itself may be an array the move overwrites), must be a document.
            for (which, field, ancestors) in [
                (
                    "source",
                    written,
                    parts.split_last().map_or(&[][..], |(_, a)| a),
                ),
                (
                    "destination",
                    to.as_str(),
                    to_parts.split_last().map_or(&[][..], |(_, a)| a),
                ),
            ] {
                if let Some(array) = first_array_on(doc, ancestors) {
                    return Err(Error::update(
                        2,
                        format!(
                            "The {which} field cannot be an array element, '{field}' in doc with _id: {} has an array field called '{array}'",
                            doc.get("_id")
                                .map_or_else(|| "none".to_owned(), document::render_value)
                        ),
                    ));
                }
            }
            unset_path(doc, &parts);
            set_path(doc, &to_parts, v)
        }
        Op::Push => push(doc, &parts, written, arg),
        Op::AddToSet => {
            let items = add_to_set_items(arg)?;
            if let Some(other) = document::get_path(doc, &parts)
                && !matches!(other, Bson::Array(_))
            {
                return Err(Error::bad(format!(
                    "Cannot apply $addToSet to non-array field. Field named '{}' has non-array type {}",
                    parts.last().copied().unwrap_or_default(),
                    super::query::type_name(Some(other))
                )));
            }
            let arr = array_at(doc, &parts, written, "$addToSet")?;
            let keep = new_to_set(arr, items);
            arr.extend(
                items
                    .iter()
                    .zip(keep)
                    .filter(|(_, keep)| *keep)
                    .map(|(item, _)| item.clone()),
            );
            Ok(())
        }
        Op::Pull => {
            let cond = parse_pull(arg)?;
            if let Some(arr) = existing_array(doc, &parts, written)? {
                arr.retain(|el| !cond.matches(el));
            }
            Ok(())
        }
        Op::PullAll => {
            let values = pull_all_values(arg)?;
            if let Some(arr) = existing_array(doc, &parts, written)? {
                // `compare` is a total order whose ties are exactly `values_equal`, so a
                // binary search finds an equal value when a scan would.
                let mut sorted: Vec<&Bson> = values.iter().collect();
                sorted.sort_by(|a, b| compare(a, b));
                arr.retain(|el| sorted.binary_search_by(|v| compare(v, el)).is_err());
            }
            Ok(())
        }
        Op::Pop => {
            let first = pop_from_front(written, arg)?;
            if document::get_path(doc, &parts).is_none() {
                return check_viable(doc, &parts, written);
            }
            match get_path_mut(doc, &parts) {
                None => {}
                Some(Bson::Array(arr)) => {
                    if first {
                        if !arr.is_empty() {
                            arr.remove(0);
                        }
                    } else {
                        arr.pop();
                    }
                }
                Some(other) => {
                    return Err(Error::update(
                        14,
                        format!(
                            "Path '{written}' contains an element of non-array type '{}'",
                            super::query::type_name(Some(other))
                        ),
                    ));
                }
            }
            Ok(())
        }
        Op::CurrentDate => {
            let value = if current_date_is_timestamp(arg)? {
                // The write's cluster time (its change event's `clusterTime`), as MongoDB
                // writes a fresh tick of its cluster clock; outside a write, the second.
                Bson::Timestamp(super::aggregate::write_cluster_time().unwrap_or(Timestamp {
                    time: u32::try_from(now_ms / 1000).unwrap_or(u32::MAX),
                    increment: 1,
                }))
            } else {
                Bson::DateTime(bson::DateTime::from_millis(
                    i64::try_from(now_ms).unwrap_or(i64::MAX),
                ))
            };
            set_path(doc, &parts, value)
        }
    }
}

/// The values `$addToSet` adds, as MongoDB's `AddToSetNode` parses its argument: the array of
/// a document whose first field is `$each` (and its only one), else the argument itself.
///
/// # Errors
/// 14 TypeMismatch when `$each` is no array; BadValue for fields after it.
fn add_to_set_items(arg: &Bson) -> Result<&[Bson]> {
    let Bson::Document(d) = arg else {
        return Ok(std::slice::from_ref(arg));
    };
    match d.iter().next() {
        Some((k, each)) if k == "$each" => {
            let Bson::Array(items) = each else {
                return Err(Error::update(
                    14,
                    format!(
                        "The argument to $each in $addToSet must be an array but it was of type {}",
                        super::query::type_name(Some(each))
                    ),
                ));
            };
            if d.len() > 1 {
                return Err(Error::bad(format!(
                    "Found unexpected fields after $each in $addToSet: {}",
                    document::render_value(arg)
                )));
            }
            Ok(items)
        }
        _ => Ok(std::slice::from_ref(arg)),
    }
}

/// `$pop`'s argument as MongoDB's `PopNode` parses it: 1 (the last element) or -1 (the first;
/// `true` returned), as an integer of any numeric type.
///
/// # Errors
/// Code 9 FailedToParse with MongoDB's texts for anything else.
fn pop_from_front(path: &str, arg: &Bson) -> Result<bool> {
    let refuse = |reason: &str| {
        Error::update(
            9,
            format!("{reason}: {path}: {}", document::render_value(arg)),
        )
    };
    let n = match arg {
        Bson::Int32(n) => f64::from(*n),
        Bson::Int64(n) if n.unsigned_abs() == 1 => {
            return Ok(*n < 0);
        }
        Bson::Int64(n) => {
            return Err(Error::update(
                9,
                format!("$pop expects 1 or -1, found: {n}"),
            ));
        }
        Bson::Double(_) | Bson::Decimal128(_) => document::as_f64(arg).unwrap_or(f64::NAN),
        _ => return Err(refuse("Expected a number in")),
    };
    if n.is_nan() {
        return Err(refuse("Expected an integer, but found NaN in"));
    }
    if !(-document::TWO_POW_63..document::TWO_POW_63).contains(&n) {
        return Err(refuse("Cannot represent as a 64-bit integer"));
    }
    if n.fract() != 0.0 {
        return Err(refuse("Expected an integer"));
    }
    if n == 1.0 || n == -1.0 {
        return Ok(n < 0.0);
    }
    Err(Error::update(
        9,
        format!("$pop expects 1 or -1, found: {n}"),
    ))
}

/// `$currentDate`'s argument as MongoDB's `CurrentDateNode` parses it: a boolean (either one)
/// or `{$type: "date"}` sets a date, `{$type: "timestamp"}` a timestamp (`true` returned).
///
/// # Errors
/// [`Error::BadValue`] with MongoDB's texts for anything else.
fn current_date_is_timestamp(arg: &Bson) -> Result<bool> {
    match arg {
        Bson::Boolean(_) => Ok(false),
        Bson::Document(d) => {
            let mut timestamp = None;
            for (k, v) in d {
                if k != "$type" {
                    return Err(Error::bad(format!("Unrecognized $currentDate option: {k}")));
                }
                match v {
                    Bson::String(t) if t == "date" => timestamp = Some(false),
                    Bson::String(t) if t == "timestamp" => timestamp = Some(true),
                    _ => {}
                }
            }
            timestamp.ok_or_else(|| {
                Error::bad(
                    "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}",
                )
            })
        }
        other => Err(Error::bad(format!(
            "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({{$type: 'timestamp/date'}}).",
            super::query::type_name(Some(other))
        ))),
    }
}

/// Which of `items` `$addToSet` appends to `arr`: each one equal ([`values_equal`]) to no
/// element of `arr` and to no item before it, as a scan of the growing array would decide.
/// `compare` is a total order whose ties are exactly `values_equal`, so sorting both sides
/// and searching takes O((n + m) log(n + m)) comparisons instead of n × m.
fn new_to_set(arr: &[Bson], items: &[Bson]) -> Vec<bool> {
    if let [item] = items {
        return vec![!arr.iter().any(|x| values_equal(x, item))];
    }
    let mut keep = vec![false; items.len()];
    let mut present: Vec<&Bson> = arr.iter().collect();
    present.sort_by(|a, b| compare(a, b));
    // A stable sort keeps equal items in their given order: the first of each run is the one
    // a scan would add.
    let mut order: Vec<(usize, &Bson)> = items.iter().enumerate().collect();
    order.sort_by(|a, b| compare(a.1, b.1));
    for run in order.chunk_by(|a, b| values_equal(a.1, b.1)) {
        if let Some(&(i, item)) = run.first()
            && present.binary_search_by(|x| compare(x, item)).is_err()
            && let Some(k) = keep.get_mut(i)
        {
            *k = true;
        }
    }
    keep
}

/// `$pull`'s argument as MongoDB's `PullNode` parses it: a document led by an operator that
/// applies to a value (`$gte`, `$in` …), or a regex, is a condition on each element; any other
/// document (`{a: 1}`, `{$or: […]}`) a query on the element documents; anything else a value
/// the element must equal.
///
/// # Errors
/// The condition's parse errors.
fn parse_pull(arg: &Bson) -> Result<PullCond> {
    Ok(match arg {
        Bson::Document(d) if d.keys().next().is_some_and(|k| is_value_operator(k)) => {
            PullCond::Ops(parse_value_cond(arg)?)
        }
        Bson::Document(d) => PullCond::Doc(Filter::parse(d)?),
        Bson::RegularExpression(_) => PullCond::Ops(parse_value_cond(arg)?),
        other => PullCond::Eq(other.clone()),
    })
}

/// `$pullAll`'s argument as MongoDB's `PullAllNode` parses it: an array.
///
/// # Errors
/// BadValue with MongoDB's text otherwise.
fn pull_all_values(arg: &Bson) -> Result<&[Bson]> {
    match arg {
        Bson::Array(values) => Ok(values),
        other => Err(Error::bad(format!(
            "$pullAll requires an array argument but was given a {}",
            super::query::type_name(Some(other))
        ))),
    }
}

enum PullCond {
    Eq(Bson),
    Doc(Filter),
    Ops(Filter),
}

impl PullCond {
    fn matches(&self, el: &Bson) -> bool {
        match self {
            Self::Eq(v) => values_equal(el, v),
            Self::Doc(f) => matches!(el, Bson::Document(d) if f.matches(d)),
            Self::Ops(f) => {
                let mut probe = Document::new();
                probe.insert(PULL_ELEMENT_FIELD, el.clone());
                f.matches(&probe)
            }
        }
    }
}

/// The field an operator condition of `$pull` is matched on: MongoDB's `PullNode` wraps the
/// condition and each element under an empty field name, which its messages then name (`" must
/// match at least one type"`).
const PULL_ELEMENT_FIELD: &str = "";

/// Wraps an operator document or a regex as a filter on the synthetic field
/// [`PULL_ELEMENT_FIELD`].
fn parse_value_cond(cond: &Bson) -> Result<Filter> {
    Filter::parse_value(PULL_ELEMENT_FIELD, cond)
}

/// Whether `key` is a query operator that applies to a field's value (MongoDB's
/// path-accepting keywords), as opposed to a logical one (`$and`, `$or`, `$nor`) or an
/// unknown one, which head a query of their own.
fn is_value_operator(key: &str) -> bool {
    matches!(
        key,
        "$eq"
            | "$ne"
            | "$gt"
            | "$gte"
            | "$lt"
            | "$lte"
            | "$in"
            | "$nin"
            | "$exists"
            | "$type"
            | "$regex"
            | "$options"
            | "$not"
            | "$all"
            | "$size"
            | "$mod"
            | "$elemMatch"
    )
}

/// `$push`'s argument, parsed.
struct PushSpec<'a> {
    items: &'a [Bson],
    slice: Option<i64>,
    sort: Option<&'a Bson>,
    position: Option<i64>,
}

/// `$push`'s argument as MongoDB's `PushNode::init` parses it: with `$each`, its clauses
/// (each known), `$each` an array, `$slice` and `$position` integers, `$sort` a non-empty
/// pattern of 1/-1 or a bare 1/-1; without, the argument is the one value pushed.
///
/// # Errors
/// BadValue with MongoDB's texts.
fn parse_push(arg: &Bson) -> Result<PushSpec<'_>> {
    let single = PushSpec {
        items: std::slice::from_ref(arg),
        slice: None,
        sort: None,
        position: None,
    };
    let Bson::Document(d) = arg else {
        return Ok(single);
    };
    if !d.contains_key("$each") {
        return Ok(single);
    }
    if let Some(k) = d
        .keys()
        .find(|k| !matches!(k.as_str(), "$each" | "$slice" | "$sort" | "$position"))
    {
        return Err(Error::bad(format!("Unrecognized clause in $push: {k}")));
    }
    let each = d.get("$each");
    let Some(Bson::Array(items)) = each else {
        return Err(Error::bad(format!(
            "The argument to $each in $push must be an array but it was of type: {}",
            super::query::type_name(each)
        )));
    };
    // `$slice` and `$position` are integers (an integral double or decimal too, as MongoDB's
    // `parseIntegerElementToLong` takes them); each names a wrong type in its own words.
    let integer = |name: &str, refusal: &str| -> Result<Option<i64>> {
        d.get(name)
            .map(|v| {
                document::integral_i64(v).ok_or_else(|| {
                    Error::bad(format!("{refusal}{}", super::query::type_name(Some(v))))
                })
            })
            .transpose()
    };
    let slice = integer(
        "$slice",
        "The value for $slice must be an integer value but was given type: ",
    )?;
    let sort = d.get("$sort");
    if let Some(spec) = sort {
        check_push_sort(spec)?;
    }
    let position = integer(
        "$position",
        "The value for $position must be an integer value, not of type: ",
    )?;
    Ok(PushSpec {
        items,
        slice,
        sort,
        position,
    })
}

/// `$push`'s `$sort` as MongoDB's `checkSortClause` checks it.
///
/// # Errors
/// BadValue with MongoDB's texts.
fn check_push_sort(spec: &Bson) -> Result<()> {
    let is_direction = |v: &Bson| document::as_f64(v).is_some_and(|n| n == 1.0 || n == -1.0);
    let bad_direction = || Error::bad("The $sort element value must be either 1 or -1");
    match spec {
        Bson::Document(pattern) => {
            if pattern.is_empty() {
                return Err(Error::bad(
                    "The $sort pattern is empty when it should be a set of fields.",
                ));
            }
            for (field, direction) in pattern {
                if !is_direction(direction) {
                    return Err(bad_direction());
                }
                if field.is_empty() {
                    return Err(Error::bad("The $sort field cannot be empty"));
                }
                if field.split('.').any(str::is_empty) {
                    return Err(Error::bad(format!(
                        "The $sort field is a dotted field but has an empty part: {field}"
                    )));
                }
            }
            Ok(())
        }
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            if is_direction(spec) {
                Ok(())
            } else {
                Err(bad_direction())
            }
        }
        _ => Err(Error::bad(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
        )),
    }
}

fn push(doc: &mut Document, parts: &[&str], path: &str, arg: &Bson) -> Result<()> {
    let PushSpec {
        items,
        slice,
        sort,
        position,
    } = parse_push(arg)?;
    let arr = array_at(doc, parts, path, "$push")?;
    let len = i64::try_from(arr.len()).unwrap_or(i64::MAX);
    let at = match position {
        None => arr.len(),
        Some(p) if p < 0 => usize::try_from((len + p).max(0)).unwrap_or(0),
        Some(p) => usize::try_from(p.min(len)).unwrap_or(arr.len()),
    };
    // `at` is at most the length, so the range is in bounds; the tail moves once.
    arr.splice(at..at, items.iter().cloned());
    if let Some(spec) = sort {
        sort_array(arr, spec)?;
    }
    if let Some(n) = slice {
        let len = arr.len();
        let keep = usize::try_from(n.unsigned_abs())
            .unwrap_or(usize::MAX)
            .min(len);
        if n >= 0 {
            arr.truncate(keep);
        } else {
            arr.drain(..len - keep);
        }
    }
    Ok(())
}

fn sort_array(arr: &mut [Bson], spec: &Bson) -> Result<()> {
    match spec {
        Bson::Document(d) => {
            let sort = super::query::Sort::parse(d)?;
            let keys: Vec<(Vec<&str>, bool)> = sort
                .keys
                .iter()
                .map(|(_, parts, asc)| (parts.iter().map(String::as_str).collect(), *asc))
                .collect();
            arr.sort_by(|a, b| {
                keys.iter()
                    .map(|(parts, asc)| {
                        let o = compare(pattern_key(a, parts), pattern_key(b, parts));
                        if *asc { o } else { o.reverse() }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
        }
        other => {
            let asc = document::as_f64(other).ok_or_else(|| Error::bad("The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields"))? > 0.0;
            arr.sort_by(|a, b| if asc { compare(a, b) } else { compare(b, a) });
        }
    }
    Ok(())
}

/// A `$push` `$sort` pattern's key of one element, as MongoDB's `PatternElementCmp` takes it:
/// the value at the path as it is (numeric parts index arrays, and an array compares as an
/// array, with no pick of an element as a find's sort makes), null when missing or when the
/// element is no document.
fn pattern_key<'a>(el: &'a Bson, parts: &[&str]) -> &'a Bson {
    match el {
        Bson::Document(doc) => document::get_path(doc, parts).unwrap_or(&Bson::Null),
        _ => &Bson::Null,
    }
}

/// The array at `parts`, created empty when missing.
fn array_at<'a>(
    doc: &'a mut Document,
    parts: &[&str],
    path: &str,
    op: &str,
) -> Result<&'a mut Vec<Bson>> {
    match document::get_path(doc, parts) {
        None => set_path(doc, parts, Bson::Array(Vec::new()))?,
        Some(Bson::Array(_)) => {}
        Some(other) => {
            return Err(Error::update(
                2,
                format!(
                    "The field '{path}' must be an array but is of type {} in document {}",
                    type_name(other),
                    id_for_message(doc)
                ),
            ));
        }
    }
    match get_path_mut(doc, parts) {
        Some(Bson::Array(a)) => Ok(a),
        _ => Err(Error::update(
            28,
            format!("Cannot apply {op} to the path '{path}'"),
        )),
    }
}

/// The array at `parts` if present, for `$pull` and `$pullAll`: nothing when the path is
/// missing but could be created ([`check_viable`]); BadValue with MongoDB's `ArrayCullingNode`
/// text (which names `$pull` for both) when something else is there.
fn existing_array<'a>(
    doc: &'a mut Document,
    parts: &[&str],
    path: &str,
) -> Result<Option<&'a mut Vec<Bson>>> {
    if document::get_path(doc, parts).is_none() {
        check_viable(doc, parts, path)?;
        return Ok(None);
    }
    match get_path_mut(doc, parts) {
        Some(Bson::Array(a)) => Ok(Some(a)),
        _ => Err(Error::bad("Cannot apply $pull to a non-array value")),
    }
}

/// MongoDB's `UpdateLeafNode::checkViability` for an operator that does nothing on a missing
/// path (`$pop`, `$pull`, `$pullAll`): the path is viable when the walk down `parts` stops at a
/// document lacking the next field or at an array lacking the next index. A walk that meets a
/// scalar, or an array by a field name, is code 28 PathNotViable naming the part it could not
/// take and the element (`name: value`) that blocked it.
///
/// # Errors
/// As above.
fn check_viable(doc: &Document, parts: &[&str], path: &str) -> Result<()> {
    let mut reached: Option<(&str, &Bson)> = None;
    for part in parts {
        let next = match reached {
            None => doc.get(*part),
            Some((_, Bson::Document(d))) => d.get(*part),
            Some((_, Bson::Array(items))) if array_index(part).is_some() => {
                array_index(part).and_then(|i| items.get(i))
            }
            Some((name, blocking)) => {
                return Err(Error::update(
                    28,
                    format!(
                        "Cannot use the part ({part}) of ({path}) to traverse the element ({{{name}: {}}})",
                        document::render_value(blocking)
                    ),
                ));
            }
        };
        match next {
            Some(value) => reached = Some((part, value)),
            None => return Ok(()),
        }
    }
    Ok(())
}

/// `$inc`/`$mul` arithmetic with MongoDB's type promotion (int → long on overflow; any
/// Decimal128 gives a decimal computed exactly; else any double gives a double; long overflow
/// is an error).
fn arith(a: &Bson, b: &Bson, op: Op, path: &str) -> Result<Bson> {
    let overflow = || {
        Error::bad(format!(
            "Failed to apply {} operations to current value for field '{path}': overflow",
            op.name()
        ))
    };
    let int = |v: &Bson| match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => {
            let r = if op == Op::Inc {
                x.checked_add(y)
            } else {
                x.checked_mul(y)
            }
            .ok_or_else(overflow)?;
            let both32 = matches!(a, Bson::Int32(_)) && matches!(b, Bson::Int32(_));
            Ok(match i32::try_from(r) {
                Ok(small) if both32 => Bson::Int32(small),
                _ => Bson::Int64(r),
            })
        }
        _ => {
            let exact = if op == Op::Inc {
                decimal::add(a, b)
            } else {
                decimal::multiply(a, b)
            };
            if let Some(d) = exact {
                return Ok(d);
            }
            let x = document::as_f64(a).unwrap_or(f64::NAN);
            let y = document::as_f64(b).unwrap_or(f64::NAN);
            Ok(Bson::Double(if op == Op::Inc { x + y } else { x * y }))
        }
    }
}

/// The mutable value at a path (numeric parts index arrays).
pub(crate) fn get_path_mut<'a>(doc: &'a mut Document, parts: &[&str]) -> Option<&'a mut Bson> {
    let (first, rest) = parts.split_first()?;
    let mut cur = doc.get_mut(*first)?;
    for p in rest {
        cur = match cur {
            Bson::Document(d) => d.get_mut(*p)?,
            Bson::Array(a) => a.get_mut(array_index(p)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Sets a value at a dotted path, creating missing sub-documents and padding arrays with null.
///
/// # Errors
/// Code 28 (PathNotViable) when the path crosses a scalar, or an array with a non-numeric part.
pub(crate) fn set_path(doc: &mut Document, parts: &[&str], value: Bson) -> Result<()> {
    let Some((first, rest)) = parts.split_first() else {
        return Err(Error::bad("empty update path"));
    };
    if rest.is_empty() {
        doc.insert(*first, value);
        return Ok(());
    }
    let child = doc
        .entry((*first).to_owned())
        .or_insert_with(|| Bson::Document(Document::new()));
    set_in(child, rest, value, first)
}

fn set_in(container: &mut Bson, parts: &[&str], value: Bson, parent: &str) -> Result<()> {
    let Some((first, rest)) = parts.split_first() else {
        *container = value;
        return Ok(());
    };
    match container {
        Bson::Document(d) => {
            if rest.is_empty() {
                d.insert(*first, value);
                return Ok(());
            }
            let child = d
                .entry((*first).to_owned())
                .or_insert_with(|| Bson::Document(Document::new()));
            set_in(child, rest, value, first)
        }
        Bson::Array(a) => {
            let Some(i) = array_index(first) else {
                return Err(Error::update(
                    28,
                    format!(
                        "Cannot create field '{first}' in element {{{parent}: {}}}",
                        document::render_value(&Bson::Array(a.clone()))
                    ),
                ));
            };
            if i >= a.len() + ARRAY_PAD_MAX {
                return Err(Error::update(
                    2,
                    format!(
                        "cannot pad array '{parent}' to index {i}: more than {ARRAY_PAD_MAX} new elements"
                    ),
                ));
            }
            while a.len() <= i {
                a.push(Bson::Null);
            }
            let Some(slot) = a.get_mut(i) else {
                return Err(Error::update(28, "array index out of range"));
            };
            if rest.is_empty() {
                *slot = value;
                return Ok(());
            }
            if matches!(slot, Bson::Null) {
                *slot = Bson::Document(Document::new());
            }
            set_in(slot, rest, value, first)
        }
        other => Err(Error::update(
            28,
            format!(
                "Cannot create field '{first}' in element {{{parent}: {}}}",
                document::render_value(other)
            ),
        )),
    }
}

/// Removes the value at a path; array elements become null, as MongoDB does.
pub(crate) fn unset_path(doc: &mut Document, parts: &[&str]) {
    let Some((last, init)) = parts.split_last() else {
        return;
    };
    if init.is_empty() {
        doc.remove(*last);
        return;
    }
    match get_path_mut(doc, init) {
        Some(Bson::Document(d)) => {
            d.remove(*last);
        }
        Some(Bson::Array(a)) => {
            if let Some(slot) = array_index(last).and_then(|i| a.get_mut(i)) {
                *slot = Bson::Null;
            }
        }
        _ => {}
    }
}

/// The document's `_id` as MongoDB names it in an update error: `{_id: 1}`,
/// `{_id: ObjectId('…')}`; `{_id: ...}` for a document that has none yet.
fn id_for_message(doc: &Document) -> String {
    doc.get("_id").map_or_else(
        || "{_id: ...}".to_owned(),
        |id| format!("{{_id: {}}}", document::render_value(id)),
    )
}

/// Seeds an upsert's new document from the filter's equality fields.
///
/// # Errors
/// As [`set_path`].
pub(crate) fn seed_from_filter(filter: &Filter) -> Result<Document> {
    let equalities: Vec<(&str, &Bson)> = filter
        .equalities()
        .into_iter()
        .filter(|(_, value)| {
            !matches!(value, Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')))
        })
        .collect();
    // Checked in path order, as MongoDB's canonical query orders them, so a conflict is
    // named as MongoDB names it.
    let mut paths: Vec<&str> = equalities.iter().map(|(path, _)| *path).collect();
    paths.sort_unstable();
    for (i, path) in paths.iter().enumerate() {
        check_single_value(&paths[..i], path)?;
    }
    let mut doc = Document::new();
    for (path, value) in equalities {
        let parts = split_path(path)?;
        set_path(&mut doc, &parts, value.clone())?;
    }
    Ok(doc)
}

/// MongoDB's rule for the fields an upsert takes from its filter: each path once, and none
/// inside another (54 NotSingleValueField, with MongoDB's messages).
fn check_single_value(seeded: &[&str], path: &str) -> Result<()> {
    let within = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    for earlier in seeded {
        let message = if *earlier == path {
            format!("cannot infer query fields to set, path '{path}' is matched twice")
        } else if within(earlier, path) || within(path, earlier) {
            format!(
                "cannot infer query fields to set, both paths '{path}' and '{earlier}' are matched"
            )
        } else {
            continue;
        };
        return Err(Error::Update { code: 54, message });
    }
    Ok(())
}

/// MongoDB's `updateDescription` for a change from `old` to `new` — updated fields (dotted
/// paths to new values), removed fields, and arrays that were truncated — and its
/// `disambiguatedPaths` (shown with `showExpandedEvents`): each of those paths a dotted string
/// does not say unambiguously, as the array of its parts (field names as strings, array
/// positions as int32). A path is ambiguous when a field name in it holds a `.`, or is a
/// number (digits without a leading zero) anywhere but first. The change is MongoDB's diff of
/// the two documents ([`doc_diff`]), read in the order its change streams read it
/// ([`Description::diffed`]).
///
/// `None` when two changed paths read the same as a dotted string (a field named `a.b` and
/// the field `b` of `a`): `updatedFields` cannot hold both, and the caller logs the change as a
/// replacement instead.
pub(crate) fn describe_change(old: &Document, new: &Document) -> Option<(Document, Document)> {
    let mut d = Description::default();
    d.diffed("", SubDiff::Doc(doc_diff(old, new)));
    if d.collided {
        return None;
    }
    let mut out = Document::new();
    out.insert("updatedFields", d.updated);
    out.insert("removedFields", d.removed);
    out.insert("truncatedArrays", d.truncated);
    Some((out, d.disambiguated))
}

/// MongoDB's `updateDescription` for an operator update from `old` to `new`, from what its
/// operators logged ([`Logged`], in the order they were applied): a value written whole is an
/// updated field at its path, or, where the write created parents, at the first part `old`
/// lacked (the new sub-document whole); an unset field is removed; appended elements are
/// updated fields each. A write that left its value identical is not logged, as MongoDB's
/// nodes report it a no-op. Operators never truncate an array. The fields come in the order
/// MongoDB's change streams read them from its `$v: 2` diff ([`Description::diff_order`]).
/// Also the `disambiguatedPaths`, as [`describe_change`].
pub(crate) fn describe_ops(old: &Document, new: &Document, log: &[Logged]) -> (Document, Document) {
    let mut d = Description::default();
    for entry in log {
        d.logged(old, new, entry);
    }
    let mut updated = Document::new();
    let mut removed = Vec::with_capacity(d.removed.len());
    for slot in d.diff_order() {
        match slot.section {
            Section::Delete => removed.push(Bson::String(slot.path)),
            Section::Update | Section::Insert => {
                if let Some(value) = d.updated.remove(&slot.path) {
                    updated.insert(slot.path, value);
                }
            }
        }
    }
    // Every write was recorded in a slot; anything else keeps its place after them.
    updated.extend(std::mem::take(&mut d.updated));
    let mut out = Document::new();
    out.insert("updatedFields", updated);
    out.insert("removedFields", removed);
    out.insert("truncatedArrays", d.truncated);
    (out, d.disambiguated)
}

/// Bytes MongoDB adds to a delta before comparing it with the new document
/// (`kSizeOfDeltaOplogEntryMetadata`).
const DELTA_METADATA_BYTES: usize = 15;

/// Whether MongoDB would log the change `describe_change` gave as a delta rather than as a
/// replacement: the delta (its `$v: 2` form — updated values under `u`, removed fields under
/// `d`, truncated arrays — estimated here from the description's dotted paths) plus
/// [`DELTA_METADATA_BYTES`] is at most `new_size`, the new document's BSON size.
pub(crate) fn delta_fits(change: &Document, new_size: usize) -> bool {
    // An element: type byte, key, its NUL, then the value.
    let element = |key: &str, value: usize| 1 + key.len() + 1 + value;
    // A sub-document of `items` element sizes: length, elements, terminator.
    let section = |items: usize| {
        if items == 0 {
            0
        } else {
            element("u", 4 + items + 1)
        }
    };
    let updated: usize = change
        .get_document("updatedFields")
        .map(|u| {
            u.iter()
                .map(|(k, v)| element(k, document::value_size(v)))
                .sum()
        })
        .unwrap_or(0);
    let removed: usize = change
        .get_array("removedFields")
        .map(|r| {
            r.iter()
                .filter_map(Bson::as_str)
                .map(|k| element(k, 1))
                .sum()
        })
        .unwrap_or(0);
    let truncated: usize = change
        .get_array("truncatedArrays")
        .map(|t| t.len() * element("field", 16))
        .unwrap_or(0);
    let delta = 4 + section(updated) + section(removed) + truncated + 1;
    delta + DELTA_METADATA_BYTES <= new_size
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A part of a changed path: a field name or an array position.
#[derive(Debug)]
enum Part<'a> {
    Field(&'a str),
    Index(usize),
}

/// A part of a recorded path, owned: a field name or an array position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Field(String),
    Index(usize),
}

/// Where MongoDB's `$v: 2` diff holds a write at its level of the document: a field that
/// existed updated, one created, one removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Update,
    Insert,
    Delete,
}

impl Section {
    /// The order a change stream reads a level's sections in (`u`, `i`, `d`), before its
    /// sub-documents.
    fn rank(self) -> u8 {
        match self {
            Self::Update => 0,
            Self::Insert => 1,
            Self::Delete => 2,
        }
    }
}

/// One write an operator update logged, in the order logged ([`describe_ops`]).
#[derive(Debug)]
struct Slot {
    path: String,
    keys: Vec<Key>,
    section: Section,
}

/// What [`describe_change`] and [`describe_ops`] found so far, and the parts of the path at hand.
#[derive(Debug, Default)]
struct Description<'a> {
    /// [`describe_ops`]'s writes as logged, for MongoDB's order ([`Description::diff_order`]).
    slots: Vec<Slot>,
    updated: Document,
    removed: Vec<Bson>,
    truncated: Vec<Bson>,
    disambiguated: Document,
    parts: Vec<Part<'a>>,
    /// A recorded path had a field name holding a `.`: only then can two paths collide.
    dotted: bool,
    /// Two changed paths had the same dotted string.
    collided: bool,
}

/// Digits without a leading zero: a field name a dotted path would read as an array position.
fn is_position_like(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_digit())
        && !(name.len() > 1 && name.starts_with('0'))
}

impl<'a> Description<'a> {
    /// Records `path` (the current parts) in `disambiguatedPaths` when it is ambiguous; marks
    /// the description collided when `path` was recorded already.
    fn note(&mut self, path: &str) {
        self.dotted |= self
            .parts
            .iter()
            .any(|part| matches!(part, Part::Field(name) if name.contains('.')));
        if self.dotted
            && (self.updated.contains_key(path)
                || self.removed.iter().any(|r| r.as_str() == Some(path)))
        {
            self.collided = true;
        }
        let ambiguous = self.parts.iter().enumerate().any(|(i, part)| match part {
            Part::Field(name) => name.contains('.') || (i > 0 && is_position_like(name)),
            Part::Index(_) => false,
        });
        if ambiguous {
            let parts: Vec<Bson> = self
                .parts
                .iter()
                .map(|part| match part {
                    Part::Field(name) => Bson::String((*name).to_owned()),
                    Part::Index(i) => Bson::Int32(i32::try_from(*i).unwrap_or(i32::MAX)),
                })
                .collect();
            self.disambiguated.insert(path, parts);
        }
    }

    fn update(&mut self, path: String, value: &Bson) {
        self.note(&path);
        self.updated.insert(path, value.clone());
    }

    /// Sets the current parts to `parts` as they stand in `doc`: a part below an array is a
    /// position.
    fn enter(&mut self, doc: &Document, parts: &[&'a str]) {
        self.parts.clear();
        let mut at: Option<&Bson> = None;
        for (i, part) in parts.iter().enumerate() {
            let (entered, next) = match at {
                Some(Bson::Array(items)) => match array_index(part) {
                    Some(index) => (Part::Index(index), items.get(index)),
                    None => (Part::Field(part), None),
                },
                Some(Bson::Document(d)) => (Part::Field(part), d.get(*part)),
                None if i == 0 => (Part::Field(part), doc.get(*part)),
                _ => (Part::Field(part), None),
            };
            self.parts.push(entered);
            at = next;
        }
    }

    /// Records a write of an operator update at the current parts, in `section`.
    fn slot(&mut self, path: &str, section: Section) {
        let keys = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Field(name) => Key::Field((*name).to_owned()),
                Part::Index(i) => Key::Index(*i),
            })
            .collect();
        self.slots.push(Slot {
            path: path.to_owned(),
            keys,
            section,
        });
    }

    /// The recorded writes in the order MongoDB's change streams read them from its `$v: 2`
    /// diff (`change_stream_document_diff_parser`): at each document level its updated, then
    /// created, then removed fields, each in the order logged, then its sub-documents and
    /// arrays in the order first written below; at an array, its positions in order.
    fn diff_order(&mut self) -> Vec<Slot> {
        let slots = std::mem::take(&mut self.slots);
        // The first write below each sub-document or array: when MongoDB's diff made its node.
        let mut first: BTreeMap<&[Key], usize> = BTreeMap::new();
        for (seq, slot) in slots.iter().enumerate() {
            for n in 1..slot.keys.len() {
                if let Some(prefix) = slot.keys.get(..n) {
                    first.entry(prefix).or_insert(seq);
                }
            }
        }
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by(|&x, &y| {
            let (Some(a), Some(b)) = (slots.get(x), slots.get(y)) else {
                return x.cmp(&y);
            };
            let Some(i) = a.keys.iter().zip(&b.keys).position(|(p, q)| p != q) else {
                return x.cmp(&y);
            };
            // A write at this level sorts by its section, then as logged; one below it by the
            // first write below the same field.
            let level = |slot: &Slot, seq: usize| {
                if slot.keys.len() == i + 1 {
                    (slot.section.rank(), seq)
                } else {
                    let below = slot.keys.get(..=i).and_then(|p| first.get(p));
                    (3, below.copied().unwrap_or(seq))
                }
            };
            match (a.keys.get(i), b.keys.get(i)) {
                (Some(Key::Index(p)), Some(Key::Index(q))) => p.cmp(q),
                _ => level(a, x).cmp(&level(b, y)),
            }
        });
        let mut slots: Vec<Option<Slot>> = slots.into_iter().map(Some).collect();
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect()
    }

    /// An updated field of an operator update at the current parts, in `section`: none when
    /// a field above it is updated whole already; it replaces those below it.
    fn update_logged(&mut self, path: String, value: &Bson, section: Section) {
        let below = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.'))
        };
        if self.updated.keys().any(|k| below(k, &path)) {
            return;
        }
        let inside: Vec<String> = self
            .updated
            .keys()
            .filter(|k| below(&path, k))
            .cloned()
            .collect();
        for k in &inside {
            self.updated.remove(k);
        }
        self.slots.retain(|slot| !inside.contains(&slot.path));
        self.slot(&path, section);
        self.update(path, value);
    }

    /// Records one logged write of an operator update ([`describe_ops`]).
    fn logged(&mut self, old: &Document, new: &Document, entry: &'a Logged) {
        match entry {
            Logged::Set(path) => {
                let parts: Vec<&'a str> = path.split('.').collect();
                let missing = (1..=parts.len()).find(|&n| {
                    parts
                        .get(..n)
                        .is_none_or(|p| document::get_path(old, p).is_none())
                });
                let at = parts
                    .get(..missing.unwrap_or(parts.len()))
                    .unwrap_or_default();
                let Some(value) = document::get_path(new, at) else {
                    return;
                };
                if missing.is_none()
                    && document::get_path(old, at)
                        .is_some_and(|was| document::identical_values(was, value))
                {
                    return;
                }
                self.enter(new, at);
                let section = if missing.is_some() {
                    Section::Insert
                } else {
                    Section::Update
                };
                self.update_logged(at.join("."), value, section);
            }
            Logged::Unset(path) => {
                let parts: Vec<&'a str> = path.split('.').collect();
                let Some(was) = document::get_path(old, &parts) else {
                    return;
                };
                match document::get_path(new, &parts) {
                    Some(value) if !document::identical_values(was, value) => {
                        self.enter(new, &parts);
                        self.update_logged(path.clone(), value, Section::Update);
                    }
                    Some(_) => {}
                    None => {
                        self.enter(old, &parts);
                        self.note(path);
                        self.slot(path, Section::Delete);
                        self.removed.push(Bson::String(path.clone()));
                    }
                }
            }
            Logged::Appended(path, from) => {
                let parts: Vec<&'a str> = path.split('.').collect();
                let Some(Bson::Array(items)) = document::get_path(new, &parts) else {
                    return;
                };
                for (i, item) in items.iter().enumerate().skip(*from) {
                    self.enter(new, &parts);
                    self.parts.push(Part::Index(i));
                    self.update_logged(format!("{path}.{i}"), item, Section::Insert);
                }
            }
            Logged::Elements { array, writes } => {
                let parts: Vec<&'a str> = array.split('.').collect();
                let index_of = |write: &Logged| match write {
                    Logged::Set(p) | Logged::Unset(p) | Logged::Appended(p, _) => {
                        p.split('.').nth(parts.len()).and_then(array_index)
                    }
                    Logged::Elements { array, .. } => {
                        array.split('.').nth(parts.len()).and_then(array_index)
                    }
                };
                let reached: BTreeSet<usize> = writes.iter().filter_map(index_of).collect();
                let arrays = (
                    document::get_path(old, &parts),
                    document::get_path(new, &parts),
                );
                let (Some(Bson::Array(was)), Some(Bson::Array(now))) = arrays else {
                    return;
                };
                if reached.len() <= 1 {
                    for write in writes {
                        self.logged(old, new, write);
                    }
                    return;
                }
                let changed: Vec<usize> = reached
                    .into_iter()
                    .filter(|&i| match (was.get(i), now.get(i)) {
                        (Some(a), Some(b)) => !document::identical_values(a, b),
                        (a, b) => a.is_some() != b.is_some(),
                    })
                    .collect();
                self.enter(new, &parts);
                match changed.as_slice() {
                    [] => {}
                    [i] => {
                        if let Some(element) = now.get(*i) {
                            self.parts.push(Part::Index(*i));
                            self.update_logged(format!("{array}.{i}"), element, Section::Update);
                        }
                    }
                    _ => {
                        if let Some(whole) = arrays.1 {
                            self.update_logged(array.clone(), whole, Section::Update);
                        }
                    }
                }
            }
        }
    }

    /// Records `diff` (the change at `prefix`) as MongoDB's change stream reads the `$v: 2`
    /// diff: per document level its removed fields, its updated ones, its created ones, then
    /// what changed below each field; an array's truncation, then its positions in order.
    fn diffed(&mut self, prefix: &str, diff: SubDiff<'a>) {
        match diff {
            SubDiff::Doc(d) => {
                for k in d.deletes {
                    let path = join(prefix, k);
                    self.parts.push(Part::Field(k));
                    self.note(&path);
                    self.parts.pop();
                    self.removed.push(Bson::String(path));
                }
                for (k, v) in d.updates.into_iter().chain(d.inserts) {
                    self.parts.push(Part::Field(k));
                    self.update(join(prefix, k), v);
                    self.parts.pop();
                }
                for (k, sub) in d.subs {
                    self.parts.push(Part::Field(k));
                    self.diffed(&join(prefix, k), sub);
                    self.parts.pop();
                }
            }
            SubDiff::Array(a) => {
                if let Some(len) = a.resize {
                    self.note(prefix);
                    let mut t = Document::new();
                    t.insert("field", prefix);
                    t.insert("newSize", i32::try_from(len).unwrap_or(i32::MAX));
                    self.truncated.push(Bson::Document(t));
                }
                for (i, change) in a.changes {
                    let path = format!("{prefix}.{i}");
                    self.parts.push(Part::Index(i));
                    match change {
                        Change::Update(v) => self.update(path, v),
                        Change::Sub(sub) => self.diffed(&path, sub),
                    }
                    self.parts.pop();
                }
            }
        }
    }
}

/// MongoDB's diff of one document level (`computeDocDiff`): fields compared in place; removed
/// fields, updated ones and created ones (a field met out of its place is removed, and created
/// again where the new document has it), and the diffs of same-named sub-documents and arrays.
#[derive(Default)]
struct DocDiff<'a> {
    deletes: Vec<&'a str>,
    updates: Vec<(&'a str, &'a Bson)>,
    inserts: Vec<(&'a str, &'a Bson)>,
    subs: Vec<(&'a str, SubDiff<'a>)>,
}

/// MongoDB's diff of an array (`computeArrayDiff`): the length it was cut to, and each changed
/// position in order.
struct ArrayDiff<'a> {
    resize: Option<usize>,
    changes: Vec<(usize, Change<'a>)>,
}

enum SubDiff<'a> {
    Doc(DocDiff<'a>),
    Array(ArrayDiff<'a>),
}

/// A changed array position: its new value, or the diff inside it.
enum Change<'a> {
    Update(&'a Bson),
    Sub(SubDiff<'a>),
}

/// The diff of two values MongoDB diffs inside (both documents or both arrays).
fn sub_diff<'a>(old: &'a Bson, new: &'a Bson) -> Option<SubDiff<'a>> {
    match (old, new) {
        (Bson::Document(o), Bson::Document(n)) => Some(SubDiff::Doc(doc_diff(o, n))),
        (Bson::Array(o), Bson::Array(n)) => Some(SubDiff::Array(array_diff(o, n))),
        _ => None,
    }
}

fn doc_diff<'a>(old: &'a Document, new: &'a Document) -> DocDiff<'a> {
    let mut d = DocDiff::default();
    // Fields met out of place, removed unless the new document has them further on; MongoDB
    // keeps them in a sorted set and lists them last.
    let mut displaced: BTreeSet<&'a str> = BTreeSet::new();
    let mut old_fields = old.iter().peekable();
    let mut new_fields = new.iter().peekable();
    while let (Some((ok, ov)), Some((nk, nv))) = (old_fields.peek(), new_fields.peek()) {
        if ok != nk {
            displaced.insert(ok.as_str());
            old_fields.next();
            continue;
        }
        if !document::identical_values(ov, nv) {
            match sub_diff(ov, nv) {
                Some(sub) => d.subs.push((nk.as_str(), sub)),
                None => d.updates.push((nk.as_str(), nv)),
            }
        }
        old_fields.next();
        new_fields.next();
    }
    d.deletes.extend(old_fields.map(|(k, _)| k.as_str()));
    for (k, v) in new_fields {
        displaced.remove(k.as_str());
        d.inserts.push((k.as_str(), v));
    }
    d.deletes.extend(displaced);
    d
}

fn array_diff<'a>(old: &'a [Bson], new: &'a [Bson]) -> ArrayDiff<'a> {
    let mut changes = Vec::new();
    for (i, nv) in new.iter().enumerate() {
        match old.get(i) {
            Some(ov) if document::identical_values(ov, nv) => {}
            Some(ov) => changes.push((i, sub_diff(ov, nv).map_or(Change::Update(nv), Change::Sub))),
            None => changes.push((i, Change::Update(nv))),
        }
    }
    ArrayDiff {
        resize: (new.len() < old.len()).then_some(new.len()),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::delta_fits;

    #[test]
    fn a_delta_fits_when_it_and_its_metadata_are_no_larger_than_the_new_document() {
        // u: {qty: 4} is 4 + 9 + 1 bytes inside a 3-byte element; d: {tags: false} 4 + 7 + 1
        // inside another; the delta's own length and terminator 5: 37 bytes, 52 with the 15
        // of metadata.
        let change =
            doc! {"updatedFields": {"qty": 4}, "removedFields": ["tags"], "truncatedArrays": []};
        assert!(delta_fits(&change, 52));
        assert!(!delta_fits(&change, 51));
        let nothing = doc! {"updatedFields": {}, "removedFields": [], "truncatedArrays": []};
        assert!(delta_fits(&nothing, 20));
        assert!(!delta_fits(&nothing, 19));
    }

    #[test]
    fn an_upsert_seed_takes_each_path_once_and_none_inside_another() {
        use super::{Filter, seed_from_filter};
        let seed = |filter: bson::Document| seed_from_filter(&Filter::parse(&filter).unwrap());
        assert_eq!(
            seed(doc! {"a.b": 1, "c": 2, "ab": 3, "a.bc": 4}).unwrap(),
            doc! {"a": {"b": 1, "bc": 4}, "c": 2, "ab": 3}
        );
        for (filter, message) in [
            (
                doc! {"$and": [{"k": 1}, {"k": 2}]},
                "cannot infer query fields to set, path 'k' is matched twice",
            ),
            (
                doc! {"a.b": 1, "a": {"c": 2}},
                "cannot infer query fields to set, both paths 'a.b' and 'a' are matched",
            ),
            (
                doc! {"a": {"c": 2}, "a.b": 1},
                "cannot infer query fields to set, both paths 'a.b' and 'a' are matched",
            ),
        ] {
            let e = seed(filter.clone()).unwrap_err();
            assert_eq!(
                (e.code(), e.to_string()),
                (54, message.to_owned()),
                "{filter}"
            );
        }
        // Paths of operators other than equality seed nothing, so they conflict with nothing.
        assert_eq!(
            seed(doc! {"k": 1, "k.x": {"$gt": 2}}).unwrap(),
            doc! {"k": 1}
        );
    }

    /// The merges of `filters` array updates `$set: {"a.$[ik].fk": 1}` (`k` below `filters`),
    /// each filter `{ik: {$exists: true}}` admitting every element of an `elements`-element
    /// array: the number of `MergedBranches::merge`s `check_array_merges` makes.
    fn merges_of_filters_admitting_every_element(filters: usize, elements: usize) -> usize {
        use super::{ArrayFilters, Op, check_array_merges};
        let doc = doc! {"a": vec![bson::Bson::Int32(0); elements]};
        let one = bson::Bson::Int32(1);
        let ops: Vec<(Op, String, &bson::Bson)> = (0..filters)
            .map(|k| (Op::Set, format!("a.$[i{k}].f{k}"), &one))
            .collect();
        let written: Vec<bson::Document> = (0..filters)
            .map(|k| doc! {format!("i{k}"): {"$exists": true}})
            .collect();
        let filters = ArrayFilters::parse(&written, 0).unwrap();
        match check_array_merges(&doc, &ops, &filters) {
            Ok(merges) => merges,
            Err(e) => panic!("{}", e.error),
        }
    }

    /// At an element its F ≥ 2 filters all admit, the first admitted update is merged (into
    /// the empty tree) when the second is, and each later one once with everything before it:
    /// F merges per element, F × N for an N-element array (none for one update, which merges
    /// nothing), so `ARRAY_FILTERS_MAX` filters admitting every element of a 512-element array
    /// cost `ARRAY_FILTERS_MAX` × 512 merges, not one per pair of filters (F × (F − 1) / 2 pairs
    /// per element). By hand, at N = 2: F = 3, merges of i0 and i1 when i1 is admitted, then of
    /// i2, per element: 6; F = 4 (6 pairs per element), one more per element: 8.
    #[test]
    fn array_update_merges_grow_linearly_in_the_filters_admitting_an_element() {
        use crate::history::ARRAY_FILTERS_MAX;
        let max = ARRAY_FILTERS_MAX;
        for (filters, elements, merges) in [
            (1, 2, 0),
            (2, 2, 4),
            (3, 2, 6),
            (4, 2, 8),
            (max, 512, max * 512),
        ] {
            let got = merges_of_filters_admitting_every_element(filters, elements);
            assert_eq!(got, merges, "{filters} filters, {elements} elements");
        }
    }
}
