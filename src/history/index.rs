//! Secondary indexes and the query planner: index definitions, the index entries a document
//! produces (multikey over arrays), and the choice of access path for a filter and sort, shown
//! by `explain`.
//!
//! The planner picks, in order: `_id` point lookups (`IDHACK`); the index with the most
//! leading equality (or `$in`) fields followed by at most one range field; an index whose
//! leading keys give the requested sort order; else a collection scan. Every candidate a plan
//! yields is re-checked against the whole filter, so bounds only need to be a superset.

use std::sync::Arc;

use bson::{Bson, Document};

use super::document::{collect_doc_path, split_path_owned};
use super::error::{Error, Result};
use super::keys::{self, KeyFormat, bracket_bounds, encode_index_field, prefix_successor};
use super::query::{Cond, Filter, InItem, Sort};
use super::{
    INDEX_ENTRIES_PER_DOCUMENT_MAX, INDEX_FIELDS_MAX, INDEX_NAME_BYTES_MAX, PLAN_RANGES_MAX,
};

/// What a caller asks for when creating an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexModel {
    /// `(dotted path, 1 | -1)` per key, in order.
    pub keys: Vec<(String, i32)>,
    /// Name; defaults to MongoDB's `field_1_other_-1` form.
    pub name: Option<String>,
    /// Whether two documents may not share a key.
    pub unique: bool,
}

impl IndexModel {
    /// Parses MongoDB's `{keys: {field: 1}, options: {name, unique}}` pieces.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a direction other than 1/-1 or an empty key pattern.
    pub fn from_documents(keys: &Document, options: Option<&Document>) -> Result<Self> {
        let mut out = Vec::with_capacity(keys.len());
        for (path, dir) in keys {
            let d = super::document::as_f64(dir).ok_or_else(|| {
                Error::bad(format!(
                    "Values in the index key pattern must be 1 or -1: {path}"
                ))
            })?;
            let d = if d == 1.0 {
                1
            } else if d == -1.0 {
                -1
            } else {
                return Err(Error::bad(format!(
                    "Values in v:2 index key pattern cannot be of type other than 1 or -1: {path}"
                )));
            };
            out.push((path.clone(), d));
        }
        let name = match options.and_then(|o| o.get("name")) {
            None => None,
            Some(Bson::String(s)) => Some(s.clone()),
            Some(_) => return Err(Error::bad("index name must be a string")),
        };
        let unique = options
            .and_then(|o| o.get("unique"))
            .is_some_and(|v| matches!(v, Bson::Boolean(true)));
        Ok(Self {
            keys: out,
            name,
            unique,
        })
    }

    /// The key pattern as a document.
    #[must_use]
    pub fn key_document(&self) -> Document {
        let mut d = Document::new();
        for (k, dir) in &self.keys {
            d.insert(k.clone(), *dir);
        }
        d
    }

    /// MongoDB's default index name.
    #[must_use]
    pub fn default_name(&self) -> String {
        self.keys
            .iter()
            .map(|(k, d)| format!("{k}_{d}"))
            .collect::<Vec<_>>()
            .join("_")
    }
}

/// A stored index definition.
#[derive(Debug, Clone)]
pub(crate) struct IndexDef {
    /// Id used as the prefix of every entry.
    pub(crate) id: u32,
    /// Name.
    pub(crate) name: String,
    /// `(path, parts, descending)` per key.
    pub(crate) keys: Vec<(String, Vec<String>, bool)>,
    /// Unique constraint.
    pub(crate) unique: bool,
    /// Set once any document produced several entries (arrays).
    pub(crate) multikey: bool,
    /// Its collection's key layout (not stored with the definition: the collection's).
    pub(crate) format: KeyFormat,
}

/// The `_id` index's spec, as [`IndexDef::spec`] shows the others.
pub(crate) fn id_index_spec() -> Document {
    let mut d = Document::new();
    d.insert("v", 2);
    d.insert("key", bson::doc! {"_id": 1});
    d.insert("name", "_id_");
    d
}

impl IndexDef {
    /// Validates a model and assigns an id; entries use the collection's key `format`.
    ///
    /// # Errors
    /// [`Error::BadValue`], [`Error::TooMany`] beyond [`INDEX_FIELDS_MAX`].
    pub(crate) fn new(id: u32, model: &IndexModel, format: KeyFormat) -> Result<Self> {
        if model.keys.is_empty() {
            return Err(Error::bad("Index keys cannot be an empty field"));
        }
        if model.keys.len() > INDEX_FIELDS_MAX {
            return Err(Error::TooMany {
                what: "index key pattern",
                len: model.keys.len(),
                max: INDEX_FIELDS_MAX,
            });
        }
        let mut keys = Vec::with_capacity(model.keys.len());
        for (path, dir) in &model.keys {
            if path == "_id" && model.keys.len() == 1 {
                return Err(Error::bad("the _id index exists already"));
            }
            let parts = split_path_owned(path)?;
            keys.push((path.clone(), parts, *dir < 0));
        }
        // After the keys: a bad key path is the error to report, not the name made from it.
        let name = model.name.clone().unwrap_or_else(|| model.default_name());
        if name.is_empty() || name.len() > INDEX_NAME_BYTES_MAX {
            return Err(Error::bad(format!(
                "index name must be 1..={INDEX_NAME_BYTES_MAX} bytes"
            )));
        }
        Ok(Self {
            id,
            name,
            keys,
            unique: model.unique,
            multikey: false,
            format,
        })
    }

    /// The model this definition was made from.
    pub(crate) fn model(&self) -> IndexModel {
        IndexModel {
            keys: self
                .keys
                .iter()
                .map(|(p, _, d)| (p.clone(), if *d { -1 } else { 1 }))
                .collect(),
            name: Some(self.name.clone()),
            unique: self.unique,
        }
    }

    /// Its spec as `listIndexes` and the `createIndexes`/`dropIndexes` change events show it:
    /// `{v: 2, key, name[, unique: true]}`.
    pub(crate) fn spec(&self) -> Document {
        let mut d = Document::new();
        d.insert("v", 2);
        d.insert("key", self.model().key_document());
        d.insert("name", self.name.clone());
        if self.unique {
            d.insert("unique", true);
        }
        d
    }

    /// The storage key of one entry.
    pub(crate) fn entry_key(&self, encoded_values: &[u8], encoded_id: &[u8]) -> Vec<u8> {
        if self.unique {
            keys::unique_index_key(self.id, encoded_values)
        } else {
            keys::index_key(self.id, encoded_values, encoded_id)
        }
    }

    /// Encodes the definition for the catalog.
    pub(crate) fn to_document(&self) -> Document {
        let mut d = Document::new();
        d.insert("id", i64::from(self.id));
        d.insert("name", self.name.clone());
        d.insert("key", self.model().key_document());
        d.insert("unique", self.unique);
        d.insert("multikey", self.multikey);
        d
    }

    /// Decodes a catalog entry of a collection whose keys use `format`.
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    pub(crate) fn from_document(d: &Document, format: KeyFormat) -> Result<Self> {
        let corrupt = |reason: &str| Error::Corrupt {
            what: "index definition",
            reason: reason.to_owned(),
        };
        let id = d
            .get_i64("id")
            .ok()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| corrupt("id"))?;
        let key = d.get_document("key").map_err(|_| corrupt("key"))?;
        let model = IndexModel::from_documents(key, None).map_err(|_| corrupt("key pattern"))?;
        // `to_document` writes every field: a missing one is damage, not a default (read as
        // false, `unique` would stop enforcing uniqueness and change the entries' key layout).
        let name = d.get_str("name").map_err(|_| corrupt("name"))?;
        let mut def = Self::new(
            id,
            &IndexModel {
                name: Some(name.to_owned()),
                ..model
            },
            format,
        )
        .map_err(|_| corrupt("definition"))?;
        def.unique = d.get_bool("unique").map_err(|_| corrupt("unique"))?;
        def.multikey = d.get_bool("multikey").map_err(|_| corrupt("multikey"))?;
        Ok(def)
    }

    /// The encoded key values (without index id and `_id`) a document produces, deduplicated,
    /// and whether it produced several (multikey).
    ///
    /// # Errors
    /// Code 171 when two key fields are arrays, [`Error::TooMany`] beyond
    /// [`INDEX_ENTRIES_PER_DOCUMENT_MAX`].
    pub(crate) fn entries(&self, doc: &Document) -> Result<(Vec<Vec<u8>>, bool)> {
        let mut per_field: Vec<Vec<Bson>> = Vec::with_capacity(self.keys.len());
        let mut multikey = false;
        for (_, parts, _) in &self.keys {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let values = index_values(doc, &parts, self.format);
            if values.len() > 1 {
                if multikey {
                    return Err(Error::update(
                        171,
                        format!("cannot index parallel arrays in index {}", self.name),
                    ));
                }
                multikey = true;
            }
            per_field.push(values);
        }
        let mut out: Vec<Vec<u8>> = vec![Vec::new()];
        for (values, (_, _, desc)) in per_field.iter().zip(&self.keys) {
            let mut next = Vec::with_capacity(out.len() * values.len());
            for prefix in &out {
                for v in values {
                    let mut k = prefix.clone();
                    encode_index_field(v, *desc, self.format, &mut k);
                    next.push(k);
                }
            }
            out = next;
            if out.len() > INDEX_ENTRIES_PER_DOCUMENT_MAX {
                return Err(Error::TooMany {
                    what: "index entries of one document",
                    len: out.len(),
                    max: INDEX_ENTRIES_PER_DOCUMENT_MAX,
                });
            }
        }
        out.sort();
        out.dedup();
        Ok((out, multikey))
    }

    /// Renders the values of `doc`'s entry `entry` (its encoded values, without the index id
    /// or `_id`) for a duplicate-key message, as MongoDB names the key: the element of an
    /// array field the entry holds (`{ tags: "b" }`), `undefined` for an empty array in
    /// [`KeyFormat::V3`], null for a missing field. An entry `doc` does not produce (not
    /// expected) renders its first values.
    pub(crate) fn render_key(&self, doc: &Document, entry: &[u8]) -> String {
        let per_field: Vec<Vec<Bson>> = self
            .keys
            .iter()
            .map(|(_, parts, _)| {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                index_values(doc, &parts, self.format)
            })
            .collect();
        // At most one field has several values (parallel arrays are refused), so the
        // entries are that field's values beside the others' one each.
        let widest = per_field.iter().map(Vec::len).max().unwrap_or(0);
        let pick = |i: usize| -> Vec<&Bson> {
            per_field
                .iter()
                .filter_map(|values| values.get(i.min(values.len().saturating_sub(1))))
                .collect()
        };
        let chosen = (0..widest)
            .map(pick)
            .find(|values| {
                let mut k = Vec::with_capacity(entry.len());
                for (v, (_, _, desc)) in values.iter().zip(&self.keys) {
                    encode_index_field(v, *desc, self.format, &mut k);
                }
                k == entry
            })
            .unwrap_or_else(|| pick(0));
        let parts: Vec<String> = self
            .keys
            .iter()
            .zip(chosen)
            .map(|((path, _, _), v)| format!("{path}: {}", super::document::render_value(v)))
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }
}

/// The values a key path contributes: every reached value, arrays flattened one level, a
/// missing path as null, an empty array as undefined in `format`s that key it apart
/// ([`KeyFormat::keys_undefined`]) and as null in the others.
fn index_values(doc: &Document, parts: &[&str], format: KeyFormat) -> Vec<Bson> {
    let empty_array = if format.keys_undefined() {
        Bson::Undefined
    } else {
        Bson::Null
    };
    let mut out: Vec<Bson> = Vec::new();
    for r in collect_doc_path(doc, parts) {
        match r {
            None => out.push(Bson::Null),
            Some(Bson::Array(a)) if a.is_empty() => out.push(empty_array.clone()),
            Some(Bson::Array(a)) => out.extend(a.iter().cloned()),
            Some(v) => out.push(v.clone()),
        }
    }
    if out.len() > 1 {
        let mut seen: Vec<Vec<u8>> = Vec::with_capacity(out.len());
        out.retain(|v| {
            // Equal values encode alike; the field's own encoding also keeps undefined apart
            // from null where the format does.
            let mut k = Vec::new();
            encode_index_field(v, false, format, &mut k);
            if seen.contains(&k) {
                false
            } else {
                seen.push(k);
                true
            }
        });
    }
    out
}

/// How a plan reaches documents.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// Point lookups by `_id` (encoded).
    Ids(Vec<Vec<u8>>),
    /// Scans of index key ranges `[start, end)`.
    Index {
        /// The index.
        index: Arc<IndexDef>,
        /// Key ranges, absolute (index id included); with `point`, each start is the whole
        /// key and its end is empty.
        ranges: Vec<(Vec<u8>, Vec<u8>)>,
        /// Scan backwards.
        reverse: bool,
        /// Bounds per field, kept only for `explain`.
        bounds: Vec<(String, FieldBound)>,
        /// Each range is one exact unique key: look it up instead of scanning.
        point: bool,
    },
    /// Every document of the collection.
    Scan,
}

/// A chosen plan.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The access path.
    pub(crate) access: Access,
    /// Whether the access path already yields documents in the requested sort order.
    pub(crate) sorted: bool,
}

impl Plan {
    /// The `winningPlan` document of `explain`.
    pub(crate) fn describe(&self) -> Document {
        let mut d = Document::new();
        match &self.access {
            Access::Ids(ids) => {
                d.insert("stage", "IDHACK");
                d.insert("keys", i64::try_from(ids.len()).unwrap_or(i64::MAX));
            }
            Access::Scan => {
                d.insert("stage", "COLLSCAN");
                d.insert("direction", "forward");
            }
            Access::Index {
                index,
                ranges,
                reverse,
                bounds,
                ..
            } => {
                let mut ix = Document::new();
                ix.insert("stage", "IXSCAN");
                ix.insert("keyPattern", index.model().key_document());
                ix.insert("indexName", index.name.clone());
                ix.insert("isMultiKey", index.multikey);
                ix.insert("isUnique", index.unique);
                ix.insert("direction", if *reverse { "backward" } else { "forward" });
                let mut rendered = Document::new();
                for (path, b) in bounds {
                    rendered.insert(path.clone(), render_bound(b));
                }
                ix.insert("indexBounds", rendered);
                ix.insert("ranges", i64::try_from(ranges.len()).unwrap_or(i64::MAX));
                d.insert("stage", "FETCH");
                d.insert("inputStage", ix);
            }
        }
        if !self.sorted {
            d.insert("blockingSort", false);
        }
        d
    }
}

/// Bounds derived for one field.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived planner values; boxing buys nothing"
)]
pub(crate) enum FieldBound {
    /// Exact values.
    Points(Vec<Bson>),
    /// A range inside one type bracket: `(value, inclusive)` ends.
    Range {
        lo: Option<(Bson, bool)>,
        hi: Option<(Bson, bool)>,
    },
}

/// Whether a value can be looked up as an index point.
fn pointable(v: &Bson) -> bool {
    match v {
        Bson::Array(_) | Bson::RegularExpression(_) | Bson::MinKey | Bson::MaxKey => false,
        Bson::Document(d) => !d.keys().next().is_some_and(|k| k.starts_with('$')),
        _ => true,
    }
}

/// Whether a value can bound a range.
fn rangeable(v: &Bson) -> bool {
    pointable(v) && !matches!(v, Bson::Null | Bson::Undefined | Bson::Document(_))
}

fn bound_for(cond: &Cond, multikey: bool) -> Option<FieldBound> {
    match cond {
        Cond::Eq(v) if pointable(v) => Some(FieldBound::Points(vec![v.clone()])),
        Cond::In(items) if !items.is_empty() && items.len() <= PLAN_RANGES_MAX => {
            let mut pts = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    InItem::Value(v) if pointable(v) => pts.push(v.clone()),
                    _ => return None,
                }
            }
            Some(FieldBound::Points(pts))
        }
        Cond::Gt(v) if rangeable(v) => Some(FieldBound::Range {
            lo: Some((v.clone(), false)),
            hi: None,
        }),
        Cond::Gte(v) if rangeable(v) => Some(FieldBound::Range {
            lo: Some((v.clone(), true)),
            hi: None,
        }),
        Cond::Lt(v) if rangeable(v) => Some(FieldBound::Range {
            lo: None,
            hi: Some((v.clone(), false)),
        }),
        Cond::Lte(v) if rangeable(v) => Some(FieldBound::Range {
            lo: None,
            hi: Some((v.clone(), true)),
        }),
        Cond::And(cs) => {
            let mut best: Option<FieldBound> = None;
            for c in cs {
                let Some(b) = bound_for(c, multikey) else {
                    continue;
                };
                best = Some(match (best, b) {
                    (Some(p @ FieldBound::Points(_)), _) | (_, p @ FieldBound::Points(_)) => p,
                    (None, r) => r,
                    (
                        Some(FieldBound::Range { lo: l1, hi: h1 }),
                        FieldBound::Range { lo: l2, hi: h2 },
                    ) => {
                        // Two conditions on an array field may be met by different elements,
                        // so a multikey index keeps only one side of the range (the upper one
                        // when both are upper bounds: a range needs a side).
                        let lo = l1.or(l2);
                        let hi = if multikey && lo.is_some() {
                            None
                        } else {
                            h1.or(h2)
                        };
                        let same_bracket = match (&lo, &hi) {
                            (Some((a, _)), Some((b, _))) => bracket_bounds(a) == bracket_bounds(b),
                            _ => true,
                        };
                        if same_bracket {
                            FieldBound::Range { lo, hi }
                        } else {
                            FieldBound::Range { lo, hi: None }
                        }
                    }
                });
            }
            // A range without either side bounds nothing: no index narrows it.
            best.filter(|b| !matches!(b, FieldBound::Range { lo: None, hi: None }))
        }
        _ => None,
    }
}

fn render_bound(b: &FieldBound) -> Bson {
    match b {
        FieldBound::Points(pts) => Bson::Array(
            pts.iter()
                .map(|p| Bson::String(format!("[{p}, {p}]")))
                .collect(),
        ),
        FieldBound::Range { lo, hi } => {
            let l = lo.as_ref().map_or("[MinKey".to_owned(), |(v, inc)| {
                format!("{}{v}", if *inc { "[" } else { "(" })
            });
            let h = hi.as_ref().map_or("MaxKey]".to_owned(), |(v, inc)| {
                format!("{v}{}", if *inc { "]" } else { ")" })
            });
            Bson::Array(vec![Bson::String(format!("{l}, {h}"))])
        }
    }
}

/// Chooses the access path for `filter` (and `sort`, when given) over a collection's indexes;
/// `_id` lookups are encoded in the collection's key `format`.
///
/// `explain` keeps each field's bounds for [`Plan::describe`]; a plan that only runs goes
/// without them (planning runs on every find, and they are copies of the filter's values).
pub(crate) fn plan(
    format: KeyFormat,
    indexes: &[Arc<IndexDef>],
    filter: &Filter,
    sort: Option<&Sort>,
    explain: bool,
) -> Plan {
    let conjuncts = filter.conjuncts();
    // `_id` equality or `$in`.
    for (path, cond) in &conjuncts {
        if *path != "_id" {
            continue;
        }
        if let Some(FieldBound::Points(pts)) = bound_for(cond, false) {
            let mut ids: Vec<Vec<u8>> = pts
                .iter()
                .map(|v| keys::encode_key_value(v, format))
                .collect();
            ids.sort();
            ids.dedup();
            let sorted = sort.is_none_or(Sort::is_empty) || ids.len() <= 1;
            return Plan {
                access: Access::Ids(ids),
                sorted,
            };
        }
    }
    let mut best: Option<(u32, Plan)> = None;
    for index in indexes {
        let Some((score, plan)) = plan_index(index, &conjuncts, sort, explain) else {
            continue;
        };
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, plan));
        }
    }
    if let Some((_, plan)) = best {
        return plan;
    }
    // No usable bounds: an index that yields the sort order.
    if let Some(sort) = sort.filter(|s| !s.is_empty()) {
        for index in indexes {
            if let Some(reverse) = sort_order_from(index, 0, sort) {
                let start = index.id.to_be_bytes().to_vec();
                let end = prefix_successor(&start).unwrap_or_else(|| vec![0xFF; 5]);
                return Plan {
                    access: Access::Index {
                        index: index.clone(),
                        ranges: vec![(start, end)],
                        reverse,
                        bounds: Vec::new(),
                        point: false,
                    },
                    sorted: true,
                };
            }
        }
    }
    Plan {
        access: Access::Scan,
        sorted: sort.is_none_or(Sort::is_empty),
    }
}

/// Whether `sort` equals the index keys from `from` on (same or all-opposite directions);
/// `Some(reverse)` when it does.
fn sort_order_from(index: &IndexDef, from: usize, sort: &Sort) -> Option<bool> {
    let keys = index.keys.get(from..)?;
    if sort.keys.is_empty() || sort.keys.len() > keys.len() {
        return None;
    }
    let mut reverse = None;
    for ((spath, _, asc), (ipath, _, desc)) in sort.keys.iter().zip(keys) {
        if spath != ipath {
            return None;
        }
        let r = *asc == *desc;
        if *reverse.get_or_insert(r) != r {
            return None;
        }
    }
    reverse
}

/// Bytes reserved for an index key prefix when planning: the 4-byte index id and one field
/// of a number or a short string.
const PREFIX_ROOM: usize = 32;

fn plan_index(
    index: &Arc<IndexDef>,
    conjuncts: &[(&str, &Cond)],
    sort: Option<&Sort>,
    explain: bool,
) -> Option<(u32, Plan)> {
    // Allocated once the first key has a bound: most indexes of a collection do not apply to
    // a given filter, and planning runs on every find.
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let mut bounds: Vec<(String, FieldBound)> = Vec::new();
    let mut score = 0u32;
    let mut eq_fields = 0usize;
    let mut range: Option<(FieldBound, bool)> = None;
    for (path, _, desc) in &index.keys {
        let field_bound = conjuncts
            .iter()
            .filter(|(p, _)| p == path)
            .filter_map(|(_, c)| bound_for(c, index.multikey))
            .fold(None, |acc: Option<FieldBound>, b| match (acc, b) {
                (Some(p @ FieldBound::Points(_)), _) | (_, p @ FieldBound::Points(_)) => Some(p),
                (_, r) => Some(r),
            });
        if prefixes.is_empty() {
            // No bound on the first key: this index cannot narrow the filter.
            field_bound.as_ref()?;
            // Room for the id and a short key, so the common one-field key is built in place.
            let mut first = Vec::with_capacity(PREFIX_ROOM);
            first.extend_from_slice(&index.id.to_be_bytes());
            prefixes.push(first);
        }
        match field_bound {
            Some(FieldBound::Points(mut pts)) => {
                // `{f: null}` also matches undefined, which this format keys apart from null
                // (the filter rechecks every document the scan finds).
                if index.format.keys_undefined()
                    && pts.iter().any(|p| matches!(p, Bson::Null))
                    && !pts.iter().any(|p| matches!(p, Bson::Undefined))
                {
                    pts.push(Bson::Undefined);
                }
                let combined = prefixes.len().saturating_mul(pts.len());
                let fits = combined <= PLAN_RANGES_MAX;
                if fits {
                    if let [v] = pts.as_slice() {
                        // One value (the common equality): extend every prefix in place.
                        for p in &mut prefixes {
                            encode_index_field(v, *desc, index.format, p);
                        }
                    } else {
                        let mut next = Vec::with_capacity(combined);
                        for p in &prefixes {
                            for v in &pts {
                                let mut k = p.clone();
                                encode_index_field(v, *desc, index.format, &mut k);
                                next.push(k);
                            }
                        }
                        prefixes = next;
                    }
                }
                if explain {
                    bounds.push((path.clone(), FieldBound::Points(pts)));
                }
                if !fits {
                    break;
                }
                score += 10;
                eq_fields += 1;
            }
            Some(r @ FieldBound::Range { .. }) => {
                if explain {
                    bounds.push((path.clone(), r.clone()));
                }
                score += 5;
                range = Some((r, *desc));
                break;
            }
            None => break,
        }
    }
    if score == 0 {
        return None;
    }
    if index.unique && eq_fields == index.keys.len() {
        score += 3;
    }
    prefixes.sort();
    prefixes.dedup();
    let point = index.unique && eq_fields == index.keys.len() && range.is_none();
    let ranges: Vec<(Vec<u8>, Vec<u8>)> = prefixes
        .into_iter()
        .filter_map(|p| match &range {
            // A point is looked up by its key alone.
            None if point => Some((p, Vec::new())),
            None => {
                let end = prefix_successor(&p)?;
                Some((p, end))
            }
            Some((FieldBound::Range { lo, hi }, desc)) => {
                let bracket_of = lo
                    .as_ref()
                    .or(hi.as_ref())
                    .map(|(v, _)| bracket_bounds(v))?;
                range_keys(
                    &p,
                    lo.as_ref(),
                    hi.as_ref(),
                    bracket_of.0,
                    *desc,
                    index.format,
                )
            }
            Some((FieldBound::Points(_), _)) => None,
        })
        .collect();
    let (sorted, reverse) = match sort.filter(|s| !s.is_empty()) {
        None => (true, false),
        // IMPORTANT: a multikey range scan meets a document first at its smallest element
        // inside the range, but an array sorts by its smallest element overall (largest
        // descending), so the order of such a scan is not the sort's. Without a range (the
        // sort keys follow the equality prefix unbounded) the first entry met is the extreme
        // one, and the scan order holds.
        Some(_) if index.multikey && range.is_some() => (false, false),
        Some(s) if ranges.len() == 1 => match sort_order_from(index, eq_fields, s) {
            Some(rev) => (true, rev),
            None => (false, false),
        },
        Some(_) => (false, false),
    };
    if sorted && sort.is_some_and(|s| !s.is_empty()) {
        score += 1;
    }
    Some((
        score,
        Plan {
            access: Access::Index {
                index: index.clone(),
                point,
                ranges,
                reverse,
                bounds,
            },
            sorted,
        },
    ))
}

/// The keys `[start, end)` under `prefix` of a field's values between `lo` and `hi` (each
/// `(value, inclusive)`; a missing one is the end of the values' type bracket, whose tag is
/// `tag`). A descending field's values are stored complemented, so its keys run from `hi`'s
/// down to `lo`'s: the complement of a prefix-free encoding reverses its order. A Decimal128
/// bound widens to every key of its nearest double: keys order numbers by that double, so
/// values a decimal tells apart share its keys (the filter rechecks each document).
fn range_keys(
    prefix: &[u8],
    lo: Option<&(Bson, bool)>,
    hi: Option<&(Bson, bool)>,
    tag: u8,
    descending: bool,
    format: KeyFormat,
) -> Option<(Vec<u8>, Vec<u8>)> {
    // A bound's key piece, and whether a key starting with it is inside the bound.
    let piece = |(v, incl): &(Bson, bool)| -> (Vec<u8>, bool) {
        let (mut bytes, incl) = match v {
            Bson::Decimal128(_) => (keys::number_bucket(v), true),
            _ => (keys::encode_key_value(v, format), *incl),
        };
        if descending {
            bytes.iter_mut().for_each(|b| *b = !*b);
        }
        (concat(prefix, &bytes), incl)
    };
    let bracket = concat(prefix, &[if descending { !tag } else { tag }]);
    // The side whose keys come first in the scan, and the side whose come last.
    let (first, last) = if descending { (hi, lo) } else { (lo, hi) };
    let start = match first.map(piece) {
        None => bracket.clone(),
        Some((k, true)) => k,
        Some((k, false)) => prefix_successor(&k)?,
    };
    let end = match last.map(piece) {
        None => prefix_successor(&bracket)?,
        Some((k, true)) => prefix_successor(&k)?,
        Some((k, false)) => k,
    };
    Some((start, end))
}

fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}
