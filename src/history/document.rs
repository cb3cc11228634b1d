//! Documents: validation against the size and depth limits, `_id` generation, MongoDB's
//! cross-type value order, and dotted-path reads and writes shared by queries and updates.
//!
//! Nothing here touches storage.

use std::cmp::Ordering;

use bson::{Bson, Document, RawDocumentBuf, oid::ObjectId};

use super::error::{Error, Result};
use super::{DOCUMENT_BYTES_MAX, NESTING_DEPTH_MAX, PATH_PARTS_MAX};
use super::{decimal, decode};

/// Checks the nesting depth of a value against [`NESTING_DEPTH_MAX`]. A top-level document is
/// depth 1; each embedded document or array adds one.
///
/// # Errors
/// [`Error::NestingTooDeep`].
pub(crate) fn check_depth_doc(doc: &Document) -> Result<()> {
    check_depth_at(doc.values(), 1, NESTING_DEPTH_MAX)
}

/// Checks the nesting depth of a document against `max`, counted as [`check_depth_doc`]
/// counts it. The walk stops at the first level past `max`, so it recurses at most `max + 1`
/// levels whatever the document holds.
///
/// # Errors
/// [`Error::NestingTooDeep`].
pub(crate) fn check_depth_doc_within(doc: &Document, max: usize) -> Result<()> {
    check_depth_at(doc.values(), 1, max)
}

/// Fails when a document or array at nesting `depth` (1 at the top) is deeper than
/// [`NESTING_DEPTH_MAX`].
fn check_depth(depth: usize) -> Result<()> {
    check_depth_max(depth, NESTING_DEPTH_MAX)
}

/// Fails when a document or array at nesting `depth` is deeper than `max`.
fn check_depth_max(depth: usize, max: usize) -> Result<()> {
    if depth > max {
        return Err(Error::NestingTooDeep { depth, max });
    }
    Ok(())
}

fn check_depth_at<'a>(
    values: impl Iterator<Item = &'a Bson>,
    depth: usize,
    max: usize,
) -> Result<()> {
    check_depth_max(depth, max)?;
    for v in values {
        match v {
            Bson::Document(d) => check_depth_at(d.values(), depth + 1, max)?,
            Bson::Array(a) => check_depth_at(a.iter(), depth + 1, max)?,
            _ => {}
        }
    }
    Ok(())
}

/// Appends the BSON encoding of a document to `out`, checking depth and
/// [`DOCUMENT_BYTES_MAX`] (the size check comes after encoding, so the caller bounds its input
/// first); the bytes are exactly those of `Document::to_vec`. Writing into the
/// caller's buffer lets a write batch encode every document and change event into one reused
/// buffer instead of one growing vector each. On error `out` is left as it was.
///
/// # Errors
/// [`Error::NestingTooDeep`], [`Error::DocumentTooLarge`], or [`Error::BadValue`] when the
/// document has no BSON encoding (a key holding a NUL byte).
pub(crate) fn encode_document_into(doc: &Document, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let result = append_document(doc, 1, out).and_then(|()| {
        let len = out.len() - start;
        if len > DOCUMENT_BYTES_MAX {
            return Err(Error::DocumentTooLarge {
                len,
                max: DOCUMENT_BYTES_MAX,
            });
        }
        Ok(())
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends an internal record (an oplog entry) without the document limits, as
/// [`encode_record`] encodes it. On error `out` is left as it was.
///
/// # Errors
/// [`Error::BadValue`] when the record has no BSON encoding.
pub(crate) fn encode_record_into(doc: &Document, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    // Records embed user documents one level deeper than their own limit allows.
    let result = append_document(doc, 0, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// A BSON document being appended to a buffer: [`RawWriter::open`] reserves the length,
/// elements follow, [`RawWriter::close`] writes the terminator and patches the length.
#[derive(Debug)]
pub(crate) struct RawWriter {
    start: usize,
}

impl RawWriter {
    /// Starts a document at the end of `out`.
    pub(crate) fn open(out: &mut Vec<u8>) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        Self { start }
    }

    /// Appends a string element.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a key holding a NUL byte or a string past `i32::MAX` bytes.
    pub(crate) fn append_str(&self, out: &mut Vec<u8>, key: &str, value: &str) -> Result<()> {
        append_key(out, 0x02, key)?;
        append_string(out, value)
    }

    /// Appends an element holding a copy of the document already encoded at `range` of the
    /// same buffer (a document staged earlier in a write batch).
    ///
    /// # Errors
    /// [`Error::BadValue`] for a key holding a NUL byte or a range outside the buffer.
    pub(crate) fn append_document_within(
        &self,
        out: &mut Vec<u8>,
        key: &str,
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        if range.start > range.end || range.end > out.len() {
            return Err(unencodable("staged document outside the buffer"));
        }
        append_key(out, 0x03, key)?;
        out.extend_from_within(range);
        Ok(())
    }

    /// Appends an embedded document (records only: no depth limit is applied).
    ///
    /// # Errors
    /// [`Error::BadValue`] when the document has no BSON encoding.
    pub(crate) fn append_document(
        &self,
        out: &mut Vec<u8>,
        key: &str,
        doc: &Document,
    ) -> Result<()> {
        append_key(out, 0x03, key)?;
        append_document(doc, 0, out)
    }

    /// Starts an embedded document; close it before appending to this one again.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a key holding a NUL byte.
    pub(crate) fn open_child(&self, out: &mut Vec<u8>, key: &str) -> Result<Self> {
        append_key(out, 0x03, key)?;
        Ok(Self::open(out))
    }

    /// Appends a UUID (binary subtype 4).
    ///
    /// # Errors
    /// [`Error::BadValue`] for a key holding a NUL byte.
    pub(crate) fn append_uuid(&self, out: &mut Vec<u8>, key: &str, uuid: bson::Uuid) -> Result<()> {
        append_key(out, 0x05, key)?;
        out.extend_from_slice(&16_i32.to_le_bytes());
        out.push(0x04);
        out.extend_from_slice(&uuid.bytes());
        Ok(())
    }

    /// Appends any value (records only: no depth limit is applied).
    ///
    /// # Errors
    /// [`Error::BadValue`] when the value has no BSON encoding.
    pub(crate) fn append_value(&self, out: &mut Vec<u8>, key: &str, value: &Bson) -> Result<()> {
        append_element(out, key, value, 0)
    }

    /// Ends the document and writes its length.
    ///
    /// # Errors
    /// [`Error::BadValue`] when the document exceeds `i32::MAX` bytes.
    pub(crate) fn close(self, out: &mut Vec<u8>) -> Result<()> {
        out.push(0);
        patch_length(out, self.start)
    }
}

fn unencodable(reason: &str) -> Error {
    Error::bad(format!("document cannot be encoded: {reason}"))
}

/// Writes the little-endian `i32` length of the document or value that starts at `start`.
fn patch_length(out: &mut [u8], start: usize) -> Result<()> {
    let len = i32::try_from(out.len() - start).map_err(|_| unencodable("larger than 2 GiB"))?;
    match out.get_mut(start..start + 4) {
        Some(slot) => {
            slot.copy_from_slice(&len.to_le_bytes());
            Ok(())
        }
        None => Err(unencodable("length slot missing")),
    }
}

/// An element's name: a document field, or an array position (written in decimal).
#[derive(Debug, Clone, Copy)]
enum ElementKey<'a> {
    Name(&'a str),
    Index(usize),
}

impl<'a> From<&'a str> for ElementKey<'a> {
    fn from(name: &'a str) -> Self {
        Self::Name(name)
    }
}

fn append_key<'a>(out: &mut Vec<u8>, tag: u8, key: impl Into<ElementKey<'a>>) -> Result<()> {
    match key.into() {
        ElementKey::Name(name) => {
            if name.as_bytes().contains(&0) {
                return Err(unencodable("a key contains a NUL byte"));
            }
            out.push(tag);
            out.extend_from_slice(name.as_bytes());
        }
        ElementKey::Index(i) => {
            out.push(tag);
            std::io::Write::write_fmt(out, format_args!("{i}"))
                .map_err(|e| unencodable(&e.to_string()))?;
        }
    }
    out.push(0);
    Ok(())
}

fn append_string(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = i32::try_from(s.len() + 1).map_err(|_| unencodable("string larger than 2 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// `depth` is the nesting depth of `doc` (1 for a stored document), or 0 for records, which
/// are not depth-checked.
fn append_document(doc: &Document, depth: usize, out: &mut Vec<u8>) -> Result<()> {
    check_depth(depth)?;
    let writer = RawWriter::open(out);
    for (k, v) in doc {
        append_element(out, k.as_str(), v, depth)?;
    }
    writer.close(out)
}

fn append_element<'a>(
    out: &mut Vec<u8>,
    key: impl Into<ElementKey<'a>>,
    value: &Bson,
    depth: usize,
) -> Result<()> {
    let key = key.into();
    let child = if depth == 0 { 0 } else { depth + 1 };
    match value {
        Bson::Double(d) => {
            append_key(out, 0x01, key)?;
            out.extend_from_slice(&d.to_le_bytes());
        }
        Bson::String(s) => {
            append_key(out, 0x02, key)?;
            append_string(out, s)?;
        }
        Bson::Document(d) => {
            append_key(out, 0x03, key)?;
            append_document(d, child, out)?;
        }
        Bson::Array(items) => {
            append_key(out, 0x04, key)?;
            check_depth(child)?;
            let writer = RawWriter::open(out);
            for (i, item) in items.iter().enumerate() {
                append_element(out, ElementKey::Index(i), item, child)?;
            }
            writer.close(out)?;
        }
        Bson::ObjectId(o) => {
            append_key(out, 0x07, key)?;
            out.extend_from_slice(&o.bytes());
        }
        Bson::Boolean(b) => {
            append_key(out, 0x08, key)?;
            out.push(u8::from(*b));
        }
        Bson::DateTime(d) => {
            append_key(out, 0x09, key)?;
            out.extend_from_slice(&d.timestamp_millis().to_le_bytes());
        }
        Bson::Null => append_key(out, 0x0A, key)?,
        Bson::Int32(i) => {
            append_key(out, 0x10, key)?;
            out.extend_from_slice(&i.to_le_bytes());
        }
        Bson::Timestamp(t) => {
            append_key(out, 0x11, key)?;
            out.extend_from_slice(&t.increment.to_le_bytes());
            out.extend_from_slice(&t.time.to_le_bytes());
        }
        Bson::Int64(i) => {
            append_key(out, 0x12, key)?;
            out.extend_from_slice(&i.to_le_bytes());
        }
        Bson::Decimal128(d) => {
            append_key(out, 0x13, key)?;
            out.extend_from_slice(&d.bytes());
        }
        Bson::MaxKey => append_key(out, 0x7F, key)?,
        Bson::MinKey => append_key(out, 0xFF, key)?,
        // The rare types (binary, regex, code, symbol, pointers, undefined) take bson's own
        // encoder: a one-element document whose element is spliced in.
        other => {
            let name = match key {
                ElementKey::Name(name) if name.as_bytes().contains(&0) => {
                    return Err(unencodable("a key contains a NUL byte"));
                }
                ElementKey::Name(name) => name.to_owned(),
                ElementKey::Index(i) => i.to_string(),
            };
            let mut single = Document::new();
            single.insert(name, other.clone());
            let bytes = single.to_vec().map_err(|e| unencodable(&e.to_string()))?;
            let element = bytes
                .get(4..bytes.len().saturating_sub(1))
                .ok_or_else(|| unencodable("short element"))?;
            out.extend_from_slice(element);
        }
    }
    Ok(())
}

/// Encodes a JSON object that needs no Extended JSON reading as a stored document, with `id`
/// as its first field `_id` in place of any `_id` of the object. Values are typed as bson's
/// own conversion from JSON types them: integers that fit `i32` as Int32, other integers as
/// Int64, other numbers as Double. The bytes equal [`encode_document_into`]'s for the
/// document that conversion (then moving `_id` first) makes, and the same limits apply.
///
/// Returns `Ok(false)` with `out` as it was when the object needs bson's Extended JSON
/// reading: a `$`-prefixed key at any depth (`{"$date": …}` and the like) or an integer
/// beyond `i64`.
///
/// # Errors
/// [`Error::NestingTooDeep`], [`Error::DocumentTooLarge`], [`Error::BadValue`] for a key
/// holding a NUL byte or an `_id` that cannot be one; `out` is left as it was.
pub(crate) fn encode_plain_json_into(
    object: &serde_json::Map<String, serde_json::Value>,
    id: &Bson,
    out: &mut Vec<u8>,
) -> Result<bool> {
    check_id(id)?;
    let start = out.len();
    let result = plain_object(object, Some(id), 1, out).and_then(|()| {
        let len = out.len() - start;
        if len > DOCUMENT_BYTES_MAX {
            return Err(Plain::Stop(Error::DocumentTooLarge {
                len,
                max: DOCUMENT_BYTES_MAX,
            }));
        }
        Ok(())
    });
    if result.is_err() {
        out.truncate(start);
    }
    match result {
        Ok(()) => Ok(true),
        Err(Plain::Extended) => Ok(false),
        Err(Plain::Stop(e)) => Err(e),
    }
}

/// Why [`plain_object`] stopped.
enum Plain {
    /// The object needs Extended JSON reading.
    Extended,
    /// The object cannot be stored.
    Stop(Error),
}

impl From<Error> for Plain {
    fn from(e: Error) -> Self {
        Self::Stop(e)
    }
}

/// Checks that `id` can be a document's `_id`, as inserting a document checks it.
pub(crate) fn check_id(id: &Bson) -> Result<()> {
    match id {
        Bson::Array(_) => Err(Error::bad("The '_id' value cannot be of type array")),
        Bson::RegularExpression(_) => Err(Error::bad("can't use a regex for _id")),
        _ => Ok(()),
    }
}

/// `depth` counts as in [`append_document`] for a stored document (1 at the top).
fn plain_object(
    object: &serde_json::Map<String, serde_json::Value>,
    id: Option<&Bson>,
    depth: usize,
    out: &mut Vec<u8>,
) -> std::result::Result<(), Plain> {
    check_depth(depth)?;
    let writer = RawWriter::open(out);
    if let Some(id) = id {
        append_element(out, "_id", id, depth)?;
    }
    for (key, value) in object {
        if key.starts_with('$') {
            return Err(Plain::Extended);
        }
        if id.is_some() && key == "_id" {
            continue;
        }
        plain_element(out, ElementKey::Name(key), value, depth)?;
    }
    writer.close(out)?;
    Ok(())
}

fn plain_element(
    out: &mut Vec<u8>,
    key: ElementKey<'_>,
    value: &serde_json::Value,
    depth: usize,
) -> std::result::Result<(), Plain> {
    use serde_json::Value;
    match value {
        Value::Null => append_key(out, 0x0A, key)?,
        Value::Bool(b) => {
            append_key(out, 0x08, key)?;
            out.push(u8::from(*b));
        }
        Value::Number(n) => {
            let number = plain_json_number(n).ok_or(Plain::Extended)?;
            append_element(out, key, &number, depth)?;
        }
        Value::String(text) => {
            append_key(out, 0x02, key)?;
            append_string(out, text)?;
        }
        Value::Object(map) => {
            append_key(out, 0x03, key)?;
            plain_object(map, None, depth + 1, out)?;
        }
        Value::Array(items) => {
            append_key(out, 0x04, key)?;
            let child = depth + 1;
            check_depth(child)?;
            let writer = RawWriter::open(out);
            for (i, item) in items.iter().enumerate() {
                plain_element(out, ElementKey::Index(i), item, child)?;
            }
            writer.close(out)?;
        }
    }
    Ok(())
}

/// A JSON number as bson's own conversion from JSON types it: an integer that fits `i32` as
/// Int32, another `i64` as Int64, any other number as Double. `None` for an integer beyond
/// `i64`, which that conversion refuses.
pub(crate) fn plain_json_number(n: &serde_json::Number) -> Option<Bson> {
    if let Some(i) = n.as_i64() {
        return Some(i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32));
    }
    if n.is_u64() {
        return None;
    }
    // Without serde_json's arbitrary precision every other number is an f64.
    n.as_f64().map(Bson::Double)
}

/// Checks bytes offered as a stored document: BSON framing and UTF-8 at every depth, the
/// nesting depth as [`check_depth_doc`] counts it, [`DOCUMENT_BYTES_MAX`], `_id` as the first
/// field (of a type [`check_id`] accepts) and no `$`-prefixed top-level field. Returns the
/// `_id`.
///
/// # Errors
/// [`Error::BadValue`], [`Error::NestingTooDeep`], [`Error::DocumentTooLarge`].
pub(crate) fn check_stored_raw(bytes: &[u8]) -> Result<Bson> {
    if bytes.len() > DOCUMENT_BYTES_MAX {
        return Err(Error::DocumentTooLarge {
            len: bytes.len(),
            max: DOCUMENT_BYTES_MAX,
        });
    }
    let invalid = |e: bson::error::Error| Error::bad(format!("invalid BSON document: {e}"));
    let raw = bson::RawDocument::from_bytes(bytes).map_err(invalid)?;
    let mut id = None;
    for (i, element) in raw.into_iter().enumerate() {
        let (key, value) = element.map_err(invalid)?;
        if i == 0 && key.as_str() == "_id" {
            let value = raw_value(value).map_err(invalid)?;
            check_id(&value)?;
            id = Some(value);
            continue;
        }
        if key.as_str().starts_with('$') {
            return Err(Error::bad(format!(
                "The dollar ($) prefixed field '{}' is not allowed in a replacement document",
                key.as_str()
            )));
        }
        check_raw_depth(value, 2)?;
    }
    id.ok_or_else(|| Error::bad("an encoded document must start with its _id"))
}

/// Walks a value of a document at nesting depth `depth - 1` (its children sit at `depth`).
fn check_raw_depth(value: bson::RawBsonRef<'_>, depth: usize) -> Result<()> {
    let invalid = |e: bson::error::Error| Error::bad(format!("invalid BSON document: {e}"));
    match value {
        bson::RawBsonRef::Document(d) => {
            check_depth(depth)?;
            for element in d {
                check_raw_depth(element.map_err(invalid)?.1, depth + 1)?;
            }
        }
        bson::RawBsonRef::Array(a) => {
            check_depth(depth)?;
            for item in a {
                check_raw_depth(item.map_err(invalid)?, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Encodes an internal record (oplog entry, catalog record) without the document limits: an
/// event embeds whole documents one level deeper, and an update event holds two images.
///
/// # Errors
/// [`Error::BadValue`] when the record has no BSON encoding.
pub(crate) fn encode_record(doc: &Document) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_record_into(doc, &mut out)?;
    Ok(out)
}

/// Decodes a stored document.
///
/// # Errors
/// [`Error::Corrupt`].
pub(crate) fn decode_document(bytes: &[u8]) -> Result<Document> {
    let corrupt = |e: bson::error::Error| Error::Corrupt {
        what: "document",
        reason: e.to_string(),
    };
    let raw = bson::RawDocument::from_bytes(bytes).map_err(corrupt)?;
    raw_document(raw).map_err(corrupt)
}

/// A stored oplog entry as raw BSON, every element checked at every depth ([`check_raw`]), so
/// its readers meet no framing or UTF-8 error.
///
/// # Errors
/// [`Error::Corrupt`].
pub(crate) fn checked_entry(bytes: &[u8]) -> Result<RawDocumentBuf> {
    checked(bytes, "oplog entry")
}

/// A stored document as raw BSON, checked as [`checked_entry`] checks an oplog entry.
///
/// # Errors
/// [`Error::Corrupt`].
pub(crate) fn checked_document(bytes: &[u8]) -> Result<RawDocumentBuf> {
    checked(bytes, "document")
}

fn checked(bytes: &[u8], what: &'static str) -> Result<RawDocumentBuf> {
    let corrupt = |e: bson::error::Error| Error::Corrupt {
        what,
        reason: e.to_string(),
    };
    let raw = bson::RawDocument::from_bytes(bytes).map_err(corrupt)?;
    check_raw(raw).map_err(corrupt)?;
    Ok(raw.to_owned())
}

/// Checks every element of `doc` at every depth, so later readers of the bytes meet no framing
/// or UTF-8 error: [`decode::is_well_formed`] first, `bson`'s element iterator for what it
/// leaves (the rare types, and malformed bytes, whose error it names).
fn check_raw(doc: &bson::RawDocument) -> bson::error::Result<()> {
    if decode::is_well_formed(doc.as_bytes()) {
        return Ok(());
    }
    check_raw_by_element(doc)
}

fn check_raw_by_element(doc: &bson::RawDocument) -> bson::error::Result<()> {
    for element in doc {
        check_raw_value(element?.1)?;
    }
    Ok(())
}

fn check_raw_value(value: bson::RawBsonRef<'_>) -> bson::error::Result<()> {
    match value {
        bson::RawBsonRef::Document(d) => check_raw_by_element(d),
        bson::RawBsonRef::Array(a) => {
            for item in a {
                check_raw_value(item?)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Converts borrowed BSON to an owned document. Reads decode every document they return, so
/// this is on the hot path: [`decode`] reads the bytes directly, and `bson`'s element iterator
/// takes the documents it leaves (the rare types, and malformed bytes, whose error it names).
pub(crate) fn raw_document(raw: &bson::RawDocument) -> bson::error::Result<Document> {
    match decode::document(raw.as_bytes()) {
        Some(doc) => Ok(doc),
        None => raw_document_by_element(raw),
    }
}

/// [`raw_document`] through `bson`'s element iterator, in one pass: `bson`'s own conversion
/// copies every embedded document and array into an owned buffer before converting it, once
/// per nesting level.
pub(super) fn raw_document_by_element(raw: &bson::RawDocument) -> bson::error::Result<Document> {
    let mut out = Document::new();
    for element in raw {
        let (key, value) = element?;
        out.insert(key.as_str(), raw_value_by_element(value)?);
    }
    Ok(out)
}

/// The latest date relaxed Extended JSON writes as ISO-8601 text: 9999-12-31T23:59:59.999Z.
const RELAXED_DATE_MS_MAX: i64 = 253_402_300_799_999;

/// A value as relaxed Extended JSON: `Bson::into_relaxed_extjson`, except that a date after
/// year 9999 gets the canonical `{"$date": {"$numberLong": …}}` form the specification asks for
/// outside years 1970–9999 (`bson` formats it clamped to 9999-12-31T23:59:59.999999999Z, a
/// different instant), and every NaN is `{"$numberDouble": "NaN"}`, the specification's one
/// spelling whatever its sign bit (`bson` writes `-NaN` for the NaN x86 makes of `inf - inf`).
pub(crate) fn relaxed_extjson(v: Bson) -> serde_json::Value {
    match v {
        Bson::Document(d) => serde_json::Value::Object(
            d.into_iter()
                .map(|(k, v)| (k, relaxed_extjson(v)))
                .collect(),
        ),
        Bson::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(relaxed_extjson).collect())
        }
        Bson::DateTime(d) if d.timestamp_millis() > RELAXED_DATE_MS_MAX => {
            Bson::DateTime(d).into_canonical_extjson()
        }
        Bson::Double(f) if f.is_nan() => serde_json::json!({"$numberDouble": "NaN"}),
        other => other.into_relaxed_extjson(),
    }
}

/// Converts one borrowed BSON value to an owned one (see [`raw_document`]).
pub(crate) fn raw_value(value: bson::RawBsonRef<'_>) -> bson::error::Result<Bson> {
    use bson::RawBsonRef as R;
    match value {
        R::Document(d) => raw_document(d).map(Bson::Document),
        R::Array(a) => match decode::array(a.as_bytes()) {
            Some(items) => Ok(Bson::Array(items)),
            None => raw_value_by_element(value),
        },
        other => raw_value_by_element(other),
    }
}

fn raw_value_by_element(value: bson::RawBsonRef<'_>) -> bson::error::Result<Bson> {
    use bson::RawBsonRef as R;
    Ok(match value {
        R::Double(d) => Bson::Double(d),
        R::String(s) => Bson::String(s.to_owned()),
        R::Document(d) => Bson::Document(raw_document_by_element(d)?),
        R::Array(a) => {
            let mut items = Vec::new();
            for item in a {
                items.push(raw_value_by_element(item?)?);
            }
            Bson::Array(items)
        }
        R::Boolean(b) => Bson::Boolean(b),
        R::Null => Bson::Null,
        R::Int32(i) => Bson::Int32(i),
        R::Int64(i) => Bson::Int64(i),
        R::ObjectId(o) => Bson::ObjectId(o),
        R::DateTime(d) => Bson::DateTime(d),
        R::Timestamp(t) => Bson::Timestamp(t),
        R::Decimal128(d) => Bson::Decimal128(d),
        // The rare types (binary, regex, code, pointers, keys) take bson's own path.
        other => Bson::try_from(other)?,
    })
}

/// Generates ObjectIds from the injected clock's seconds, a per-store random value and a
/// counter, as MongoDB's drivers do.
#[derive(Debug)]
pub(crate) struct IdGenerator {
    /// Per-process random bytes.
    process: [u8; 5],
    /// Incremented per id; the low 24 bits are used.
    counter: std::sync::atomic::AtomicU32,
}

impl IdGenerator {
    /// A generator seeded from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let b = seed.to_be_bytes();
        let process = [b[3], b[4], b[5], b[6], b[7]];
        let counter = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        Self {
            process,
            counter: std::sync::atomic::AtomicU32::new(counter),
        }
    }

    /// The next id for wall-clock `now_ms`.
    pub(crate) fn next(&self, now_ms: u64) -> ObjectId {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_be_bytes();
        let secs = u32::try_from(now_ms / 1000).unwrap_or(u32::MAX);
        ObjectId::from_parts(secs, self.process, [n[1], n[2], n[3]])
    }
}

/// MongoDB's canonical type rank for comparison and sorting: MinKey < null < numbers <
/// symbol/string < object < array < binData < ObjectId < bool < date < timestamp < regex <
/// (code) < MaxKey. Values of different ranks never compare equal.
#[must_use]
pub(crate) fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 1,
        Bson::Null | Bson::Undefined => 5,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 10,
        Bson::String(_) | Bson::Symbol(_) => 15,
        Bson::Document(_) => 20,
        Bson::Array(_) => 25,
        Bson::Binary(_) => 30,
        Bson::ObjectId(_) => 35,
        Bson::Boolean(_) => 40,
        Bson::DateTime(_) => 45,
        Bson::Timestamp(_) => 47,
        Bson::RegularExpression(_) => 50,
        Bson::DbPointer(_) => 55,
        Bson::JavaScriptCode(_) => 60,
        Bson::JavaScriptCodeWithScope(_) => 65,
        Bson::MaxKey => 127,
    }
}

/// A number that is an integer within `i64` (MongoDB's `integral64Bit`, and the numbers its
/// `parseIntegerElementToLong` takes): an integral double or decimal included, NaN not.
#[must_use]
pub(crate) fn integral_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(_) | Bson::Decimal128(_) => {
            let d = as_f64(v)?;
            // NaN's fraction is NaN, so NaN fails the first test.
            if d.fract() != 0.0 || !(-TWO_POW_63..TWO_POW_63).contains(&d) {
                return None;
            }
            #[expect(
                clippy::cast_possible_truncation,
                reason = "integral and within i64, checked above"
            )]
            let n = d as i64;
            Some(n)
        }
        _ => None,
    }
}

/// `v` read as MongoDB's `BSONElement::parseIntegerElementToLong` reads an integer argument,
/// or the start of its refusal, which callers follow with `: <name>: <value>`: a number that is
/// not one, a NaN, a double or decimal beyond `i64`, a fraction.
///
/// # Errors
/// MongoDB's reason, as above.
pub(crate) fn integer_element(v: &Bson) -> std::result::Result<i64, &'static str> {
    let in_range = |d: f64| (-TWO_POW_63..TWO_POW_63).contains(&d);
    match v {
        Bson::Int32(n) => Ok(i64::from(*n)),
        Bson::Int64(n) => Ok(*n),
        Bson::Double(d) if d.is_nan() => Err("Expected an integer, but found NaN in"),
        Bson::Double(d) if !in_range(*d) => Err("Cannot represent as a 64-bit integer"),
        Bson::Double(d) if d.fract() != 0.0 => Err("Expected an integer"),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "integral and within the i64 range, checked above"
        )]
        Bson::Double(d) => Ok(*d as i64),
        Bson::Decimal128(_) => {
            // Exact only (`toLongExact`): the nearest i64 must compare equal to the decimal.
            #[expect(
                clippy::cast_possible_truncation,
                reason = "within the i64 range, checked first"
            )]
            let exact = as_f64(v)
                .filter(|d| in_range(*d))
                .map(|d| d as i64)
                .filter(|n| decimal::compare(v, &Bson::Int64(*n)) == Some(Ordering::Equal));
            exact.ok_or("Cannot represent as a 64-bit integer")
        }
        _ => Err("Expected a number in"),
    }
}

/// A number as `i64` when it is integral and in range, for exact integer comparison.
fn as_exact_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    }
}

/// The BSON encoded size of a document in bytes, computed without encoding it (memory
/// accounting of blocking stages).
#[must_use]
pub(crate) fn bson_size(doc: &Document) -> usize {
    // Length prefix, then each element's type byte, name and NUL, then the trailing NUL.
    5 + doc
        .iter()
        .map(|(k, v)| 2 + k.len() + value_size(v))
        .sum::<usize>()
}

/// The BSON encoded size of a value (without its type byte and name).
#[must_use]
pub(crate) fn value_size(v: &Bson) -> usize {
    match v {
        Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey => 0,
        Bson::Boolean(_) => 1,
        Bson::Int32(_) => 4,
        Bson::Int64(_) | Bson::Double(_) | Bson::DateTime(_) | Bson::Timestamp(_) => 8,
        Bson::ObjectId(_) => 12,
        Bson::Decimal128(_) => 16,
        Bson::String(x) | Bson::Symbol(x) | Bson::JavaScriptCode(x) => 5 + x.len(),
        Bson::Document(d) => bson_size(d),
        Bson::Array(a) => {
            5 + a
                .iter()
                .enumerate()
                .map(|(i, el)| 2 + decimal_digits(i) + value_size(el))
                .sum::<usize>()
        }
        Bson::Binary(b) => 5 + b.bytes.len(),
        Bson::RegularExpression(r) => 2 + r.pattern.len() + r.options.len(),
        Bson::JavaScriptCodeWithScope(c) => 4 + 5 + c.code.len() + bson_size(&c.scope),
        Bson::DbPointer(_) => 5 + 12 + 32,
    }
}

/// The BSON encoded size of a value, as [`value_size`] counts it, when it sits at nesting
/// `depth` (the depth it has if it is a document or array: 2 for a field of a top-level
/// document). Fails instead when it holds a document or array deeper than `max`; the walk
/// stops there, so it recurses at most `max + 1` levels whatever the value holds, and a value
/// being built can be measured and depth-checked in one pass.
///
/// # Errors
/// [`Error::NestingTooDeep`].
pub(crate) fn value_size_within(v: &Bson, depth: usize, max: usize) -> Result<usize> {
    match v {
        Bson::Document(d) => document_size_within(d, depth, max),
        Bson::Array(a) => {
            check_depth_max(depth, max)?;
            let mut size = 5usize;
            for (i, x) in a.iter().enumerate() {
                size = size
                    .saturating_add(2 + decimal_digits(i) + value_size_within(x, depth + 1, max)?);
            }
            Ok(size)
        }
        Bson::JavaScriptCodeWithScope(c) => {
            let scope = document_size_within(&c.scope, depth, max)?;
            Ok((4 + 5 + c.code.len()).saturating_add(scope))
        }
        other => Ok(value_size(other)),
    }
}

/// [`value_size_within`] of a document.
fn document_size_within(d: &Document, depth: usize, max: usize) -> Result<usize> {
    check_depth_max(depth, max)?;
    let mut size = 5usize;
    for (k, x) in d {
        size = size.saturating_add(2 + k.len() + value_size_within(x, depth + 1, max)?);
    }
    Ok(size)
}

/// Digits of an array index written as a BSON element name.
fn decimal_digits(mut i: usize) -> usize {
    let mut n = 1;
    while i >= 10 {
        i /= 10;
        n += 1;
    }
    n
}

/// A numeric value as `f64` (decimals through their string form).
#[must_use]
pub(crate) fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        #[expect(
            clippy::cast_precision_loss,
            reason = "comparison across number types is by value"
        )]
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        Bson::Decimal128(d) => d.to_string().parse::<f64>().ok(),
        _ => None,
    }
}

/// Compares two numbers by value; NaN sorts below every other number and equals itself.
fn compare_numbers(a: &Bson, b: &Bson) -> Ordering {
    if let Some(o) = super::decimal::compare(a, b) {
        return o;
    }
    if let (Some(x), Some(y)) = (as_exact_i64(a), as_exact_i64(b)) {
        return x.cmp(&y);
    }
    let (x, y) = (as_f64(a).unwrap_or(f64::NAN), as_f64(b).unwrap_or(f64::NAN));
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => {
            let ord = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            if ord != Ordering::Equal {
                return ord;
            }
            // Equal as doubles: an i64 beyond 2^53 may still differ from the double.
            match (as_exact_i64(a), as_exact_i64(b)) {
                (Some(i), None) => compare_i64_f64(i, y),
                (None, Some(j)) => compare_i64_f64(j, x).reverse(),
                _ => Ordering::Equal,
            }
        }
    }
}

/// Exact comparison of an integer with a double.
fn compare_i64_f64(i: i64, d: f64) -> Ordering {
    if d >= TWO_POW_63 {
        return Ordering::Less;
    }
    if d < -TWO_POW_63 {
        return Ordering::Greater;
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "range checked above; fraction handled below"
    )]
    let t = d.trunc() as i64;
    match i.cmp(&t) {
        Ordering::Equal => {
            let frac = d - d.trunc();
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

/// MongoDB's total order over BSON values (the order of `sort` and of comparisons inside one
/// type bracket).
#[must_use]
pub(crate) fn compare(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        _ if ra == 10 => compare_numbers(a, b),
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => x.cmp(y),
        (Bson::Document(x), Bson::Document(y)) => compare_documents(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .as_str()
            .cmp(y.pattern.as_str())
            .then_with(|| x.options.as_str().cmp(y.options.as_str())),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// Field-by-field document order: type rank, then field name, then value.
#[must_use]
pub(crate) fn compare_documents(x: &Document, y: &Document) -> Ordering {
    for ((kx, vx), (ky, vy)) in x.iter().zip(y.iter()) {
        let o = type_rank(vx)
            .cmp(&type_rank(vy))
            .then_with(|| kx.cmp(ky))
            .then_with(|| compare(vx, vy));
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// Whether two documents would encode to the same bytes: the same fields in the same order,
/// each value of the same type and value (a double by its bits, so NaN is identical to
/// itself). `Document`'s own `==` ignores field order. An update that leaves a document
/// identical is a no-op, as in MongoDB.
#[must_use]
pub(crate) fn identical(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && identical_values(va, vb))
}

/// [`identical`] for values: the same type and value, documents in the same field order.
#[must_use]
pub(crate) fn identical_values(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => identical(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical_values(p, q))
        }
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// Whether two values are equal for `$eq` (numbers by value across types).
#[must_use]
pub(crate) fn values_equal(a: &Bson, b: &Bson) -> bool {
    compare(a, b) == Ordering::Equal
}

/// Splits a dotted path, rejecting empty parts and paths longer than [`PATH_PARTS_MAX`]
/// parts. Every path a request names goes through here before anything walks it.
///
/// # Errors
/// [`Error::BadValue`] for an empty path or an empty part, [`Error::PathTooLong`] beyond
/// [`PATH_PARTS_MAX`] parts.
pub(crate) fn split_path(path: &str) -> Result<Vec<&str>> {
    let parts = check_path(path)?;
    let mut out = Vec::with_capacity(parts);
    out.extend(path.split('.'));
    Ok(out)
}

/// [`split_path`] with owned parts, for paths a parsed filter keeps.
///
/// # Errors
/// As [`split_path`].
pub(crate) fn split_path_owned(path: &str) -> Result<Vec<String>> {
    let parts = check_path(path)?;
    let mut out = Vec::with_capacity(parts);
    out.extend(path.split('.').map(str::to_owned));
    Ok(out)
}

/// Checks a dotted path as [`split_path`] documents; returns its number of parts.
fn check_path(path: &str) -> Result<usize> {
    if path.is_empty() {
        return Err(Error::bad(
            "FieldPath cannot be constructed with empty string",
        ));
    }
    // Counted before splitting, so a huge path costs one scan and no allocation.
    let parts = path.bytes().filter(|b| *b == b'.').count() + 1;
    if parts > PATH_PARTS_MAX {
        return Err(Error::PathTooLong {
            parts,
            max: PATH_PARTS_MAX,
        });
    }
    if path.split('.').any(str::is_empty) {
        return Err(Error::bad(format!(
            "FieldPath field names may not be empty strings: {path}"
        )));
    }
    Ok(parts)
}

/// A numeric path part as an array index.
#[must_use]
pub(crate) fn array_index(part: &str) -> Option<usize> {
    if part.is_empty()
        || !part.bytes().all(|b| b.is_ascii_digit())
        || (part.len() > 1 && part.starts_with('0'))
    {
        return None;
    }
    part.parse().ok()
}

/// The single value at a dotted path, without array fan-out (numeric parts index arrays).
/// Used for `_id`, index keys of scalar paths, sort on plain documents and `$group` keys.
#[must_use]
pub(crate) fn get_path<'a>(doc: &'a Document, parts: &[&str]) -> Option<&'a Bson> {
    let (first, rest) = parts.split_first()?;
    let mut cur = doc.get(*first)?;
    for p in rest {
        cur = match cur {
            Bson::Document(d) => d.get(*p)?,
            Bson::Array(a) => a.get(array_index(p)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Every value a dotted path reaches with MongoDB's array fan-out: a non-numeric part applied
/// to an array descends into each element document; a numeric part indexes the array (and also
/// descends into elements, as MongoDB does). `None` marks a branch where the path is missing.
pub(crate) fn collect_path<'a>(value: &'a Bson, parts: &[&str], out: &mut Vec<Option<&'a Bson>>) {
    let Some((first, rest)) = parts.split_first() else {
        out.push(Some(value));
        return;
    };
    match value {
        Bson::Document(d) => match d.get(*first) {
            Some(v) => collect_path(v, rest, out),
            None => out.push(None),
        },
        Bson::Array(a) => {
            let before = out.len();
            let numeric = array_index(first);
            if let Some(i) = numeric
                && let Some(el) = a.get(i)
            {
                collect_path(el, rest, out);
            }
            let mut fanned = Vec::new();
            for el in a {
                if matches!(el, Bson::Document(_)) {
                    collect_path(el, parts, &mut fanned);
                }
            }
            if numeric.is_some() {
                // A numeric part indexes the array; element fields named like the index only
                // add values, never "missing" branches.
                fanned.retain(Option::is_some);
            }
            out.extend(fanned);
            if out.len() == before {
                out.push(None);
            }
        }
        _ => out.push(None),
    }
}

/// The values a path reaches in a top-level document (see [`collect_path`]).
#[must_use]
pub(crate) fn collect_doc_path<'a>(doc: &'a Document, parts: &[&str]) -> Vec<Option<&'a Bson>> {
    let mut out = Vec::new();
    let Some((first, rest)) = parts.split_first() else {
        return out;
    };
    match doc.get(*first) {
        Some(v) => collect_path(v, rest, &mut out),
        None => out.push(None),
    }
    out
}

/// Renders a value the way MongoDB's error messages do (`{ name: "x" }`).
#[must_use]
pub(crate) fn render_value(v: &Bson) -> String {
    match v {
        Bson::String(s) => format!("\"{s}\""),
        Bson::Document(d) => {
            let parts: Vec<String> = d
                .iter()
                .map(|(k, v)| format!("{k}: {}", render_value(v)))
                .collect();
            if parts.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
        Bson::Array(a) => {
            let parts: Vec<String> = a.iter().map(render_value).collect();
            format!("[ {} ]", parts.join(", "))
        }
        Bson::ObjectId(o) => format!("ObjectId('{o}')"),
        // MongoDB's `appendDoubleNice`: `%.16g`, with `.0` added when that has no `.`, `E` or
        // `N` (so `2.0`, `1e+19.0`, `nan.0`).
        Bson::Double(d) => {
            let mut text = super::aggregate::format_g_digits(*d, 16);
            if !text.contains(['.', 'E', 'N']) {
                text.push_str(".0");
            }
            text
        }
        other => other.to_string(),
    }
}

/// 2^63 as a double: one past `i64::MAX`.
pub(crate) const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    /// Relaxed Extended JSON writes ISO text for years 1970–9999 and the canonical form
    /// outside them, at every depth, and agrees with `bson` everywhere else.
    #[test]
    fn relaxed_dates_after_9999_keep_their_instant() {
        let date = |ms: i64| Bson::DateTime(bson::DateTime::from_millis(ms));
        let cases = [
            (
                date(0),
                serde_json::json!({"$date": "1970-01-01T00:00:00Z"}),
            ),
            (
                date(RELAXED_DATE_MS_MAX),
                serde_json::json!({"$date": "9999-12-31T23:59:59.999Z"}),
            ),
            (
                date(RELAXED_DATE_MS_MAX + 1),
                serde_json::json!({"$date": {"$numberLong": "253402300800000"}}),
            ),
            (
                date(-1),
                serde_json::json!({"$date": {"$numberLong": "-1"}}),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(relaxed_extjson(value.clone()), want, "{value}");
            let nested = Bson::Document(doc! {"a": [{"d": value.clone()}], "n": 1.5});
            assert_eq!(
                relaxed_extjson(nested),
                serde_json::json!({"a": [{"d": want}], "n": 1.5})
            );
        }
        let other = Bson::Document(doc! {"i": 7_i64, "x": f64::NAN, "s": "t"});
        assert_eq!(relaxed_extjson(other.clone()), other.into_relaxed_extjson());
    }

    #[test]
    fn bson_size_is_the_encoded_length() {
        let d = doc! {
            "_id": bson::oid::ObjectId::new(),
            "i": 1, "l": 2_i64, "f": 0.5, "s": "text", "b": true, "n": null,
            "dec": Bson::Decimal128("1.5".parse().unwrap()),
            "t": bson::DateTime::from_millis(5),
            "ts": bson::Timestamp { time: 1, increment: 2 },
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "re": bson::Regex { pattern: "a.*".try_into().unwrap(), options: "i".try_into().unwrap() },
            "sub": {"a": [1, "x", {"y": [[]]}], "long": (0..12).collect::<Vec<i32>>()},
        };
        assert_eq!(bson_size(&d), d.to_vec().unwrap().len());
    }

    /// What the Document path stores for `json` upserted with `id`: bson's conversion from
    /// JSON, `_id` replaced and moved first, then encoded.
    fn via_document(json: &serde_json::Value, id: &Bson) -> Vec<u8> {
        let Ok(Bson::Document(mut converted)) = Bson::try_from(json.clone()) else {
            panic!("not an object: {json}");
        };
        converted.remove("_id");
        let mut d = doc! { "_id": id.clone() };
        d.extend(converted);
        let mut out = Vec::new();
        encode_document_into(&d, &mut out).unwrap();
        out
    }

    fn plain(json: &serde_json::Value, id: &Bson) -> Result<Option<Vec<u8>>> {
        let mut out = vec![0xAB];
        let object = json.as_object().unwrap();
        let done = encode_plain_json_into(object, id, &mut out)?;
        if !done {
            assert_eq!(out, [0xAB], "a refused object leaves the buffer as it was");
            return Ok(None);
        }
        Ok(Some(out.split_off(1)))
    }

    #[test]
    fn plain_json_encodes_to_the_bytes_of_the_document_path() {
        let cases = [
            serde_json::json!({}),
            serde_json::json!({"a": 1, "_id": "old", "b": "x"}),
            serde_json::json!({
                "orderNumber": 10100, "big": 2_147_483_648_i64, "neg": -2_147_483_649_i64,
                "small": -2_147_483_648_i64, "max": i64::MAX, "price": 136.0, "f": -0.5,
                "t": true, "n": null, "s": "é\u{0}z",
                "customer": {"name": "Atelier", "tags": [], "nested": {"deeper": [1, [2, {}]]}},
                "lines": [{"code": "S18", "qty": 30}, {"code": "S24", "qty": 50}],
            }),
        ];
        for id in [Bson::String("10100".into()), Bson::Int32(7), Bson::Null] {
            for json in &cases {
                let bytes = plain(json, &id).unwrap().expect("plain JSON");
                assert_eq!(bytes, via_document(json, &id), "{json} with _id {id}");
            }
        }
    }

    #[test]
    fn plain_json_leaves_extended_json_to_the_document_path() {
        let id = Bson::Int32(1);
        for json in [
            serde_json::json!({"d": {"$date": "2024-01-01T00:00:00Z"}}),
            serde_json::json!({"a": [{"b": {"$oid": "0123456789abcdef01234567"}}]}),
            serde_json::json!({"$set": {"a": 1}}),
            serde_json::json!({"huge": u64::MAX}),
        ] {
            assert_eq!(plain(&json, &id).unwrap(), None, "{json}");
        }
    }

    #[test]
    fn plain_json_limits_at_max_and_max_plus_one() {
        let id = Bson::Int32(1);
        // Depth: a top-level document is depth 1, so MAX - 1 nested objects reach the limit.
        let nest = |levels: usize| {
            let mut v = serde_json::json!(1);
            for _ in 0..levels {
                v = serde_json::json!({ "a": v });
            }
            v
        };
        assert!(plain(&nest(NESTING_DEPTH_MAX), &id).is_ok());
        assert!(matches!(
            plain(&nest(NESTING_DEPTH_MAX + 1), &id),
            Err(Error::NestingTooDeep { .. })
        ));
        // Size: `{_id: 1, s: "…"}` is 4 + (1 + 4 + 4) + (1 + 2 + 4 + len + 1) + 1 bytes.
        let fixed = 4 + (1 + 4 + 4) + (1 + 2 + 4 + 1) + 1;
        let sized = |len: usize| serde_json::json!({ "s": "x".repeat(len) });
        let at_max = plain(&sized(DOCUMENT_BYTES_MAX - fixed), &id)
            .unwrap()
            .unwrap();
        assert_eq!(at_max.len(), DOCUMENT_BYTES_MAX);
        assert!(matches!(
            plain(&sized(DOCUMENT_BYTES_MAX - fixed + 1), &id),
            Err(Error::DocumentTooLarge { .. })
        ));
        // Keys are C strings; an `_id` cannot be an array.
        assert!(plain(&serde_json::json!({"a\u{0}b": 1}), &id).is_err());
        assert!(plain(&serde_json::json!({}), &Bson::Array(vec![])).is_err());
    }

    #[test]
    fn stored_raw_documents_are_checked_like_documents() {
        let bytes = |d: Document| d.to_vec().unwrap();
        assert_eq!(
            check_stored_raw(&bytes(doc! {"_id": 5, "a": {"b": [1]}})).unwrap(),
            Bson::Int32(5)
        );
        for (d, why) in [
            (doc! {"a": 1, "_id": 5}, "_id not first"),
            (doc! {"a": 1}, "no _id"),
            (doc! {"_id": [1]}, "array _id"),
            (doc! {"_id": 1, "$set": {"a": 1}}, "operator field"),
        ] {
            assert!(check_stored_raw(&bytes(d)).is_err(), "{why}");
        }
        let nested = |levels: usize| {
            let mut d = doc! {"x": 1};
            for _ in 0..levels {
                d = doc! {"a": d};
            }
            let mut top = doc! {"_id": 1};
            top.extend(d);
            bytes(top)
        };
        // `nested(n)` puts a document at depth n + 1 (the top level is 1).
        assert!(check_stored_raw(&nested(NESTING_DEPTH_MAX - 1)).is_ok());
        assert!(matches!(
            check_stored_raw(&nested(NESTING_DEPTH_MAX)),
            Err(Error::NestingTooDeep { .. })
        ));
        let mut torn = bytes(doc! {"_id": 1, "s": "abc"});
        torn.truncate(torn.len() - 1);
        assert!(check_stored_raw(&torn).is_err());
        let mut bad_utf8 = bytes(doc! {"_id": 1, "s": "abc"});
        let at = bad_utf8.len() - 3;
        bad_utf8[at] = 0xFF;
        assert!(check_stored_raw(&bad_utf8).is_err());
        let fixed = 4 + (1 + 4 + 4) + (1 + 2 + 4 + 1) + 1;
        let sized = |len: usize| bytes(doc! {"_id": 1, "s": "x".repeat(len)});
        assert!(check_stored_raw(&sized(DOCUMENT_BYTES_MAX - fixed)).is_ok());
        assert!(matches!(
            check_stored_raw(&sized(DOCUMENT_BYTES_MAX - fixed + 1)),
            Err(Error::DocumentTooLarge { .. })
        ));
    }

    #[test]
    fn numbers_compare_across_types() {
        assert_eq!(
            compare(&Bson::Int32(1), &Bson::Double(1.0)),
            Ordering::Equal
        );
        assert_eq!(
            compare(&Bson::Int64(i64::MAX), &Bson::Double(TWO_POW_63)),
            Ordering::Less
        );
        assert_eq!(
            compare(&Bson::Double(f64::NAN), &Bson::Int32(i32::MIN)),
            Ordering::Less
        );
        assert_eq!(compare(&Bson::Null, &Bson::Int32(0)), Ordering::Less);
        assert_eq!(
            compare(&Bson::String("a".into()), &Bson::Int32(5)),
            Ordering::Greater
        );
    }

    #[test]
    fn the_encoder_writes_what_bson_writes() {
        let cases = [
            doc! {},
            doc! {"a": 1_i32, "b": 2_i64, "c": 2.5, "d": "text", "e": true, "f": null},
            doc! {
                "_id": bson::oid::ObjectId::from_bytes([7; 12]),
                "when": bson::DateTime::from_millis(-5),
                "ts": bson::Timestamp { time: 3, increment: 9 },
                "dec": bson::Decimal128::from_bytes([1; 16]),
                "min": Bson::MinKey,
                "max": Bson::MaxKey,
                "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
                "old": bson::Binary { subtype: bson::spec::BinarySubtype::BinaryOld, bytes: vec![4, 5] },
                "re": bson::Regex { pattern: "^a".try_into().unwrap(), options: "mi".try_into().unwrap() },
                "code": Bson::JavaScriptCode("x".into()),
                "sym": Bson::Symbol("s".into()),
                "undef": Bson::Undefined,
                "rare": [Bson::Undefined, Bson::Symbol("s".into())],
            },
            doc! {"lines": [{"n": 1, "tags": ["a", "b"]}, [], [[1], {}], "é\u{0}x"]},
            doc! {"big": (0..1_000).map(Bson::Int32).collect::<Vec<_>>()},
        ];
        for d in &cases {
            let mut out = vec![9];
            encode_document_into(d, &mut out).unwrap();
            assert_eq!(
                out.get(1..).unwrap(),
                d.to_vec().unwrap().as_slice(),
                "{d:?}"
            );
            let mut out = Vec::new();
            encode_record_into(d, &mut out).unwrap();
            assert_eq!(out, d.to_vec().unwrap(), "{d:?}");
        }
    }

    #[test]
    fn the_encoder_checks_depth_size_and_keys_and_leaves_the_buffer_on_error() {
        let mut deep = doc! {"x": 1};
        for _ in 0..NESTING_DEPTH_MAX - 1 {
            deep = doc! {"d": deep};
        }
        let mut out = vec![1, 2];
        encode_document_into(&deep, &mut out).unwrap();
        let mut deeper = doc! {"d": deep.clone()};
        out.truncate(2);
        assert!(matches!(
            encode_document_into(&deeper, &mut out),
            Err(Error::NestingTooDeep { .. })
        ));
        assert_eq!(out, [1, 2]);
        deeper = doc! {"a": [deep]};
        assert!(matches!(
            encode_document_into(&deeper, &mut out),
            Err(Error::NestingTooDeep { .. })
        ));
        encode_record_into(&deeper, &mut out).unwrap();
        out.truncate(2);
        let big = doc! {"s": "x".repeat(DOCUMENT_BYTES_MAX)};
        assert!(matches!(
            encode_document_into(&big, &mut out),
            Err(Error::DocumentTooLarge { .. })
        ));
        let mut nul = Document::new();
        nul.insert("a\u{0}b", 1);
        assert!(encode_document_into(&nul, &mut out).is_err());
        assert!(nul.to_vec().is_err());
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn the_raw_writer_builds_what_bson_builds() {
        let post = doc! {"_id": 1, "n": "x"};
        let mut out = Vec::new();
        let w = RawWriter::open(&mut out);
        w.append_str(&mut out, "op", "insert").unwrap();
        w.append_value(&mut out, "key", &Bson::Document(doc! {"_id": 1}))
            .unwrap();
        w.append_document(&mut out, "post", &post).unwrap();
        let child = w.open_child(&mut out, "c").unwrap();
        child.append_str(&mut out, "x", "y").unwrap();
        child.close(&mut out).unwrap();
        w.append_document(&mut out, "d", &doc! {"z": [1]}).unwrap();
        w.close(&mut out).unwrap();
        let expected = doc! {"op": "insert", "key": {"_id": 1}, "post": post.clone(), "c": {"x": "y"}, "d": {"z": [1]}};
        assert_eq!(out, expected.to_vec().unwrap());

        let mut out = post.to_vec().unwrap();
        let staged = 0..out.len();
        let w = RawWriter::open(&mut out);
        w.append_document_within(&mut out, "post", staged.clone())
            .unwrap();
        assert!(w.append_document_within(&mut out, "p", 0..10_000).is_err());
        w.close(&mut out).unwrap();
        let tail = out.get(staged.end..).unwrap();
        assert_eq!(tail, doc! {"post": post}.to_vec().unwrap().as_slice());
    }

    #[test]
    fn fan_out_reaches_every_element() {
        let d = doc! {"a": [{"b": 1}, {"b": 2}, {"c": 3}]};
        let got = collect_doc_path(&d, &["a", "b"]);
        assert_eq!(
            got,
            vec![Some(&Bson::Int32(1)), Some(&Bson::Int32(2)), None]
        );
        let got = collect_doc_path(&d, &["a", "1", "b"]);
        assert_eq!(got, vec![Some(&Bson::Int32(2))]);
    }
}
