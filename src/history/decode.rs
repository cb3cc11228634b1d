//! A direct BSON-to-[`Document`] decoder for the read path.
//!
//! Every document a query returns is decoded from its stored bytes, so decoding is most of a
//! read's time. `bson`'s raw iterator checks and re-frames each element through several layers
//! before a value can be converted; this decoder reads the bytes once, front to back, with the
//! same checks: every length is inside its parent, every document and string ends in its NUL,
//! keys and strings are UTF-8, booleans are 0 or 1, and nothing trails the document.
//!
//! Each document is built at its final size: a count of a frame's elements (headers only)
//! picks an empty template document with room for them ([`TEMPLATES`]), and a top-level
//! document's fields are gathered in a per-thread buffer before they go into it. Under glibc's
//! allocator that made single-document finds 1.5–1.9× faster against SQLite in the same run: see
//! docs/benchmarks-log.md, "Decoded documents built at their size".
//!
//! It handles the types documents are made of (double, string, document, array, binary data
//! but its old subtype 2, ObjectId, boolean, date, null, int32, timestamp, int64, decimal128;
//! oplog entries carry their collection's UUID as binary data). Anything else, a malformed byte
//! or a nesting deeper than [`DEPTH_MAX`] makes it return `None`, and the caller decodes with
//! `bson` instead, which converts the rare types and names the defect of malformed bytes. So
//! this never accepts bytes `bson` refuses, and never decodes them differently (a property
//! test holds it to that).
//!
//! The change feed's watchers read the same way: [`write_relaxed_json`] writes a stored
//! document's bytes as relaxed Extended JSON text without building a document
//! (property-tested against `bson`).

use std::cell::RefCell;
use std::sync::LazyLock;

use bson::{Bson, Document, Timestamp, oid::ObjectId};

use super::document::relaxed_extjson;

/// Nesting beyond this is left to `bson` (stored documents stop at 100 levels; oplog entries
/// embed them a few levels deeper).
const DEPTH_MAX: usize = 128;

/// The field counts [`TEMPLATES`] have room for: the capacities of hash tables of 4, 8, 16,
/// 32 and 64 buckets.
const TEMPLATE_FIELDS: [usize; 5] = [3, 7, 14, 28, 56];

/// Empty documents whose hash tables have room for [`TEMPLATE_FIELDS`] fields. `Document` has
/// no `with_capacity`, but a clone keeps its table's size, and the first insert then sizes the
/// entry vector to match: a decoded document is built in two allocations instead of growing
/// through two or three of each (an order's 8 top-level fields and 6 per order line).
static TEMPLATES: LazyLock<[Document; TEMPLATE_FIELDS.len()]> = LazyLock::new(|| {
    TEMPLATE_FIELDS.map(|n| {
        let mut d = Document::new();
        for i in 0..n {
            d.insert(i.to_string(), Bson::Null);
        }
        d.clear();
        d
    })
});

/// The largest field count a template has room for.
const TEMPLATE_FIELDS_MAX: usize = TEMPLATE_FIELDS[TEMPLATE_FIELDS.len() - 1];

thread_local! {
    /// A top-level document's fields between decoding and their document (at most
    /// [`TEMPLATE_FIELDS_MAX`], so what a thread keeps is bounded).
    static TOP_FIELDS: RefCell<Vec<(String, Bson)>> = const { RefCell::new(Vec::new()) };
}

/// An empty document with room for `fields` (beyond the largest template, one that grows): a
/// document about to receive a known number of fields gets them without regrowing.
pub(crate) fn document_for(fields: usize) -> Document {
    if fields == 0 {
        return Document::new();
    }
    TEMPLATE_FIELDS
        .iter()
        .zip(TEMPLATES.iter())
        .find(|(room, _)| **room >= fields)
        .map_or_else(Document::new, |(_, t)| t.clone())
}

/// Decodes a whole BSON document, or `None` (see the module docs).
pub(crate) fn document(bytes: &[u8]) -> Option<Document> {
    let mut r = Reader { bytes, pos: 0 };
    let doc = r.document(0)?;
    (r.pos == bytes.len()).then_some(doc)
}

/// Decodes a whole BSON array (a document whose keys are the indexes), or `None`.
pub(crate) fn array(bytes: &[u8]) -> Option<Vec<Bson>> {
    let mut r = Reader { bytes, pos: 0 };
    let items = r.array(0)?;
    (r.pos == bytes.len()).then_some(items)
}

/// Whether `bytes` are one well-formed BSON document of the common types, checked at every
/// depth as [`document`] checks them, without building anything. `false` leaves the verdict
/// to `bson` (the rare types, malformed bytes).
pub(crate) fn is_well_formed(bytes: &[u8]) -> bool {
    let mut r = Reader { bytes, pos: 0 };
    r.skip_frame(0).is_some() && r.pos == bytes.len()
}

/// Appends the BSON document `bytes` to `out` as one-line relaxed Extended JSON: the text of
/// converting it with [`relaxed_extjson`] and serialising that with `serde_json`,
/// written straight from the bytes, checked as [`document`] checks them. Strings, integers,
/// finite doubles, booleans, null, documents and arrays are written here; the other types
/// [`document`] decodes go through `bson`'s conversion one value at a time. `None`, with `out`
/// as it was, where [`document`] returns `None`, and for a document that repeats a key (damaged
/// bytes: a decoded document keeps one value per key, and text written field by field would
/// keep both; `bson`'s conversion gives the decoded form).
pub(crate) fn write_relaxed_json(bytes: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut r = Reader { bytes, pos: 0 };
    let written = r.write_relaxed(out, false, 0).is_some() && r.pos == bytes.len();
    if written {
        Some(())
    } else {
        out.truncate(start);
        None
    }
}

/// Appends `s` as a JSON string, as `serde_json` writes it.
fn write_json_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Some(())
    } else {
        serde_json::to_writer(&mut *out, s).ok()
    }
}

/// The size of a value of the fixed-width type `tag` (null, boolean, int32, double, date,
/// timestamp, int64, ObjectId, decimal128); `None` for strings, frames and the rare types.
fn fixed_width(tag: u8) -> Option<usize> {
    match tag {
        0x0A => Some(0),
        0x08 => Some(1),
        0x10 => Some(4),
        0x01 | 0x09 | 0x11 | 0x12 => Some(8),
        0x07 => Some(12),
        0x13 => Some(16),
        _ => None,
    }
}

/// Keys seen in one document being written, to find a repeated one: the first
/// [`SeenKeys::INLINE`] in place, the rest in a set allocated only for larger documents.
#[derive(Default)]
struct SeenKeys<'a> {
    inline: [&'a str; SeenKeys::INLINE],
    len: usize,
    more: std::collections::HashSet<&'a str>,
}

impl<'a> SeenKeys<'a> {
    const INLINE: usize = 16;

    /// Records `key`; `false` when it was seen before.
    fn insert(&mut self, key: &'a str) -> bool {
        if self.inline.iter().take(self.len).any(|k| *k == key) || self.more.contains(key) {
            return false;
        }
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = key,
            None => {
                self.more.insert(key);
            }
        }
        self.len += 1;
        true
    }
}

/// A cursor over one document's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn array_of<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn i32(&mut self) -> Option<i32> {
        self.array_of::<4>().map(i32::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array_of::<8>().map(i64::from_le_bytes)
    }

    /// A NUL-terminated UTF-8 key.
    fn cstr(&mut self) -> Option<&'a str> {
        let rest = self.bytes.get(self.pos..)?;
        let len = memchr::memchr(0, rest)?;
        let s = std::str::from_utf8(rest.get(..len)?).ok()?;
        self.pos += len + 1;
        Some(s)
    }

    /// A length-prefixed, NUL-terminated UTF-8 string.
    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.i32()?).ok()?;
        let (last, body) = self.take(len)?.split_last()?;
        if *last != 0 {
            return None;
        }
        std::str::from_utf8(body).ok()
    }

    /// Steps into a length-prefixed frame (a document or an array): returns a reader over its
    /// elements, positioned after the length, and moves past the frame.
    fn frame(&mut self) -> Option<Reader<'a>> {
        let start = self.pos;
        let len = usize::try_from(self.i32()?).ok()?;
        if len < 5 {
            return None;
        }
        let body = self.bytes.get(start..start.checked_add(len)?)?;
        let (last, elements) = body.split_last()?;
        if *last != 0 {
            return None;
        }
        self.pos = start + len;
        Some(Reader {
            bytes: elements,
            pos: 4,
        })
    }

    fn document(&mut self, depth: usize) -> Option<Document> {
        if depth > DEPTH_MAX {
            return None;
        }
        let mut inner = self.frame()?;
        let fields = inner.count();
        if depth == 0
            && let Some(n) = fields.filter(|n| (1..=TEMPLATE_FIELDS_MAX).contains(n))
        {
            // A top-level document's fields are decoded first and moved into their document
            // after, so its entry vector — past 1 KiB for 8 fields, a request that makes glibc
            // merge its fast bins — is allocated after the fields' own allocations, as it was
            // when the document grew field by field.
            let mut via = |cell: &RefCell<Vec<(String, Bson)>>| {
                let mut scratch = cell.try_borrow_mut().ok()?;
                Some(inner.document_via(&mut scratch, n, depth))
            };
            return match TOP_FIELDS.try_with(|cell| via(cell)) {
                Ok(Some(decoded)) => decoded,
                // The scratch is in use or gone (a thread's teardown): grow in place.
                _ => inner.fields_into(document_for(n), depth),
            };
        }
        inner.fields_into(fields.map_or_else(Document::new, document_for), depth)
    }

    /// Decodes the rest of this frame's fields into `out`.
    fn fields_into(&mut self, mut out: Document, depth: usize) -> Option<Document> {
        self.each_field(depth, |key, value| {
            out.insert(key, value);
        })?;
        Some(out)
    }

    /// Decodes the rest of this frame's fields into `scratch`, then moves them into a document
    /// sized for them (`n` of them, as counted).
    fn document_via(
        &mut self,
        scratch: &mut Vec<(String, Bson)>,
        n: usize,
        depth: usize,
    ) -> Option<Document> {
        scratch.clear();
        scratch.reserve(n);
        self.each_field(depth, |key, value| scratch.push((key.to_owned(), value)))?;
        let mut out = document_for(scratch.len());
        for (key, value) in scratch.drain(..) {
            out.insert(key, value);
        }
        Some(out)
    }

    fn array(&mut self, depth: usize) -> Option<Vec<Bson>> {
        if depth > DEPTH_MAX {
            return None;
        }
        let mut inner = self.frame()?;
        let mut items = Vec::with_capacity(inner.count().unwrap_or(0));
        inner.each_field(depth, |_, value| items.push(value))?;
        Some(items)
    }

    /// Decodes the rest of this frame's elements in order, handing each key and value to `f`.
    fn each_field(&mut self, depth: usize, mut f: impl FnMut(&'a str, Bson)) -> Option<()> {
        while self.pos < self.bytes.len() {
            let tag = self.byte()?;
            let key = self.cstr()?;
            f(key, self.value(tag, depth)?);
        }
        Some(())
    }

    /// How many elements are left in this frame, read from their headers alone: values are
    /// stepped over by their sizes, not checked (the decoding that follows checks them). `None`
    /// for a type [`Reader::value`] leaves to `bson`, or bytes that do not frame.
    fn count(&self) -> Option<usize> {
        let mut r = Reader {
            bytes: self.bytes,
            pos: self.pos,
        };
        let mut n = 0;
        while r.pos < r.bytes.len() {
            let tag = r.byte()?;
            let key_len = memchr::memchr(0, r.bytes.get(r.pos..)?)?;
            r.pos += key_len + 1;
            let size = match tag {
                // A string's length follows its own 4 bytes; a frame's includes them.
                0x02 => usize::try_from(r.i32()?).ok()?,
                0x03 | 0x04 => usize::try_from(r.i32()?).ok()?.checked_sub(4)?,
                // The subtype byte, then the data.
                0x05 => usize::try_from(r.i32()?).ok()?.checked_add(1)?,
                _ => fixed_width(tag)?,
            };
            r.take(size)?;
            n += 1;
        }
        Some(n)
    }

    /// Checks a document or an array and moves past it.
    fn skip_frame(&mut self, depth: usize) -> Option<()> {
        if depth > DEPTH_MAX {
            return None;
        }
        let mut inner = self.frame()?;
        while inner.pos < inner.bytes.len() {
            let tag = inner.byte()?;
            inner.cstr()?;
            let fixed = match tag {
                0x02 => {
                    inner.str()?;
                    0
                }
                0x03 | 0x04 => {
                    inner.skip_frame(depth + 1)?;
                    0
                }
                0x05 => {
                    inner.binary()?;
                    0
                }
                0x08 => {
                    if inner.byte()? > 1 {
                        return None;
                    }
                    0
                }
                _ => fixed_width(tag)?,
            };
            inner.take(fixed)?;
        }
        Some(())
    }

    /// Writes the document or array frame at the cursor as relaxed Extended JSON and moves
    /// past it (see [`write_relaxed_json`]).
    fn write_relaxed(&mut self, out: &mut Vec<u8>, array: bool, depth: usize) -> Option<()> {
        if depth > DEPTH_MAX {
            return None;
        }
        let mut inner = self.frame()?;
        out.push(if array { b'[' } else { b'{' });
        let mut first = true;
        let mut keys = SeenKeys::default();
        while inner.pos < inner.bytes.len() {
            let tag = inner.byte()?;
            let key = inner.cstr()?;
            if !first {
                out.push(b',');
            }
            first = false;
            if !array {
                if !keys.insert(key) {
                    return None;
                }
                write_json_str(out, key)?;
                out.push(b':');
            }
            match tag {
                0x01 => {
                    let f = f64::from_le_bytes(inner.array_of::<8>()?);
                    if f.is_finite() {
                        serde_json::to_writer(&mut *out, &f).ok()?;
                    } else {
                        serde_json::to_writer(&mut *out, &relaxed_extjson(Bson::Double(f))).ok()?;
                    }
                }
                0x02 => write_json_str(out, inner.str()?)?,
                0x03 => inner.write_relaxed(out, false, depth + 1)?,
                0x04 => inner.write_relaxed(out, true, depth + 1)?,
                0x08 => match inner.byte()? {
                    0 => out.extend_from_slice(b"false"),
                    1 => out.extend_from_slice(b"true"),
                    _ => return None,
                },
                0x0A => out.extend_from_slice(b"null"),
                0x10 => serde_json::to_writer(&mut *out, &inner.i32()?).ok()?,
                0x12 => serde_json::to_writer(&mut *out, &inner.i64()?).ok()?,
                _ => {
                    let value = relaxed_extjson(inner.value(tag, depth)?);
                    serde_json::to_writer(&mut *out, &value).ok()?;
                }
            }
        }
        out.push(if array { b']' } else { b'}' });
        Some(())
    }

    fn value(&mut self, tag: u8, depth: usize) -> Option<Bson> {
        Some(match tag {
            0x01 => Bson::Double(f64::from_le_bytes(self.array_of::<8>()?)),
            0x02 => Bson::String(self.str()?.to_owned()),
            0x03 => Bson::Document(self.document(depth + 1)?),
            0x04 => Bson::Array(self.array(depth + 1)?),
            0x07 => Bson::ObjectId(ObjectId::from_bytes(self.array_of::<12>()?)),
            0x08 => match self.byte()? {
                0 => Bson::Boolean(false),
                1 => Bson::Boolean(true),
                _ => return None,
            },
            0x09 => Bson::DateTime(bson::DateTime::from_millis(self.i64()?)),
            0x0A => Bson::Null,
            0x10 => Bson::Int32(self.i32()?),
            0x11 => {
                let increment = u32::from_le_bytes(self.array_of::<4>()?);
                let time = u32::from_le_bytes(self.array_of::<4>()?);
                Bson::Timestamp(Timestamp { time, increment })
            }
            0x12 => Bson::Int64(self.i64()?),
            0x13 => Bson::Decimal128(bson::Decimal128::from_bytes(self.array_of::<16>()?)),
            0x05 => {
                let (subtype, bytes) = self.binary()?;
                Bson::Binary(bson::Binary {
                    subtype: bson::spec::BinarySubtype::from(subtype),
                    bytes: bytes.to_vec(),
                })
            }
            // Regular expression, code, symbol, DBPointer, undefined, min/max key: `bson`
            // converts them.
            _ => return None,
        })
    }

    /// A binary value's subtype and data. The old binary subtype (2, with a second length
    /// inside) is left to `bson`.
    fn binary(&mut self) -> Option<(u8, &'a [u8])> {
        let len = usize::try_from(self.i32()?).ok()?;
        let subtype = self.byte()?;
        if subtype == 0x02 {
            return None;
        }
        Some((subtype, self.take(len)?))
    }
}

#[cfg(test)]
mod tests {
    use bson::spec::BinarySubtype;
    use bson::{Binary, Regex, doc};
    use proptest::prelude::*;

    use super::*;
    use crate::history::document::raw_document_by_element;

    /// The decoder's result against `bson`'s element iterator on the same bytes: equal
    /// re-encodings (so NaN and -0.0 compare by their bits), or `None` where `bson` refuses.
    fn by_bson(bytes: &[u8]) -> Option<Vec<u8>> {
        let raw = bson::RawDocument::from_bytes(bytes).ok()?;
        raw_document_by_element(raw).ok()?.to_vec().ok()
    }

    fn leaf() -> impl Strategy<Value = Bson> {
        prop_oneof![
            any::<f64>().prop_map(Bson::Double),
            ".{0,8}".prop_map(Bson::String),
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
            any::<bool>().prop_map(Bson::Boolean),
            any::<i64>().prop_map(|t| Bson::DateTime(bson::DateTime::from_millis(t))),
            Just(Bson::Null),
            any::<i32>().prop_map(Bson::Int32),
            (any::<u32>(), any::<u32>())
                .prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
            any::<i64>().prop_map(Bson::Int64),
            any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(bson::Decimal128::from_bytes(b))),
            // Every subtype, UUIDs among them, but the old subtype 2 (left to `bson`).
            (
                any::<u8>().prop_filter("the old binary subtype", |s| *s != 0x02),
                prop::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(subtype, bytes)| Bson::Binary(Binary {
                    subtype: BinarySubtype::from(subtype),
                    bytes
                })),
        ]
    }

    /// Values with the types `bson` alone converts, mixed in now and then.
    fn rare() -> impl Strategy<Value = Bson> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4).prop_map(|bytes| Bson::Binary(Binary {
                subtype: BinarySubtype::BinaryOld,
                bytes
            })),
            Just(Bson::RegularExpression(Regex {
                pattern: "^a".try_into().unwrap_or_else(|_| unreachable!()),
                options: "i".try_into().unwrap_or_else(|_| unreachable!()),
            })),
            Just(Bson::JavaScriptCode("f()".into())),
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
        ]
    }

    fn value(with_rare: bool) -> impl Strategy<Value = Bson> {
        let base = if with_rare {
            prop_oneof![9 => leaf(), 1 => rare()].boxed()
        } else {
            leaf().boxed()
        };
        base.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
                prop::collection::vec(("[a-z$.]{0,3}", inner), 0..4)
                    .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
            ]
        })
    }

    fn document_of(with_rare: bool) -> impl Strategy<Value = Document> {
        prop::collection::vec(("[a-z_]{0,4}", value(with_rare)), 0..6)
            .prop_map(|kv| kv.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn documents_of_the_common_types_decode_as_bson_decodes_them(d in document_of(false)) {
            let bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
            let decoded = document(&bytes).map(|d| d.to_vec().ok());
            prop_assert_eq!(decoded, Some(by_bson(&bytes)));
            prop_assert!(is_well_formed(&bytes));
        }

        #[test]
        fn rare_types_are_left_to_bson(d in document_of(true)) {
            let bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
            prop_assert!(by_bson(&bytes).is_some());
            prop_assert_eq!(is_well_formed(&bytes), document(&bytes).is_some());
            if let Some(decoded) = document(&bytes) {
                prop_assert_eq!(decoded.to_vec().ok(), by_bson(&bytes));
            }
        }

        /// Damaged bytes: whatever the decoder accepts, `bson` accepts and decodes alike.
        #[test]
        fn damaged_bytes_are_never_accepted_where_bson_refuses(
            d in document_of(false),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            prop_assert_eq!(is_well_formed(&bytes), document(&bytes).is_some());
            if let Some(decoded) = document(&bytes) {
                prop_assert_eq!(decoded.to_vec().ok(), by_bson(&bytes));
            }
        }
    }

    /// What `bson` makes of `bytes` as relaxed Extended JSON text, or `None` where it refuses.
    fn relaxed_by_bson(bytes: &[u8]) -> Option<String> {
        let raw = bson::RawDocument::from_bytes(bytes).ok()?;
        let doc = raw_document_by_element(raw).ok()?;
        Some(relaxed_extjson(Bson::Document(doc)).to_string())
    }

    fn relaxed(bytes: &[u8]) -> Option<String> {
        let mut out = b"prefix".to_vec();
        let written = write_relaxed_json(bytes, &mut out);
        let text = String::from_utf8(out).ok()?;
        let rest = text.strip_prefix("prefix")?;
        if written.is_none() {
            assert_eq!(rest, "", "a refused document leaves the output as it was");
            return None;
        }
        Some(rest.to_owned())
    }

    /// The writer takes what the decoder takes, except a document that repeats a key, and
    /// writes what `bson`'s conversion gives.
    fn written_as_bson_converts(bytes: &[u8]) -> Result<(), TestCaseError> {
        let written = relaxed(bytes);
        let decoded = document(bytes).is_some();
        match written {
            Some(text) => {
                prop_assert!(decoded);
                prop_assert_eq!(Some(text), relaxed_by_bson(bytes));
            }
            None => prop_assert!(!decoded || repeats_a_key(bytes), "{bytes:?}"),
        }
        Ok(())
    }

    /// Whether a document anywhere in `bytes` (arrays' index keys aside) has a key twice.
    fn repeats_a_key(bytes: &[u8]) -> bool {
        fn in_doc(doc: &bson::RawDocument) -> bool {
            let mut keys = std::collections::HashSet::new();
            doc.into_iter()
                .flatten()
                .any(|(k, v)| !keys.insert(k.as_str().to_owned()) || in_value(v))
        }
        fn in_value(v: bson::RawBsonRef<'_>) -> bool {
            match v {
                bson::RawBsonRef::Document(d) => in_doc(d),
                bson::RawBsonRef::Array(a) => a.into_iter().flatten().any(in_value),
                _ => false,
            }
        }
        bson::RawDocument::from_bytes(bytes).is_ok_and(in_doc)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn relaxed_json_is_written_as_bson_converts_it(d in document_of(true)) {
            let bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
            written_as_bson_converts(&bytes)?;
        }

        #[test]
        fn relaxed_json_of_damaged_bytes_is_refused_where_decoding_is(
            d in document_of(false),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            written_as_bson_converts(&bytes)?;
        }
    }

    #[test]
    fn relaxed_json_escapes_strings_and_keys_as_serde_json_does() {
        let signed_nan = f64::from_bits(0xFFF8_0000_0000_0000);
        let d = doc! {
            "plain": "abc",
            "quote\"key": "a\"b\\c\n\u{1}\u{7f}é✓",
            "n": [1_i64 << 40, -3, 2.5, -0.0, 1e300, f64::NAN, f64::NEG_INFINITY, signed_nan],
            "t": true, "f": false, "z": null,
            "id": ObjectId::from_bytes([7; 12]),
            "at": bson::DateTime::from_millis(1_700_000_000_123),
            "old": bson::DateTime::from_millis(-62_135_596_800_001),
        };
        let bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(relaxed(&bytes), relaxed_by_bson(&bytes));
        assert!(relaxed(&bytes).is_some_and(|t| t.contains(r#""a\"b\\c\n\u0001"#)));
        // A NaN with its sign bit set is spelled NaN too.
        assert!(relaxed(&bytes).is_some_and(|t| !t.contains("-NaN")));
    }

    #[test]
    fn arrays_decode_and_framing_defects_are_refused() {
        let d = doc! {"a": [1, "x", {"b": null}], "t": true};
        let bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(document(&bytes), Some(d.clone()));
        let arr = bson::RawDocument::from_bytes(&bytes)
            .and_then(|r| r.get_array("a"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            array(arr.as_bytes()),
            Some(vec![
                Bson::Int32(1),
                Bson::String("x".into()),
                Bson::Document(doc! {"b": null})
            ])
        );
        // A trailing byte, a length one short, a missing final NUL, a boolean of 2.
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(document(&trailing), None);
        assert_eq!(document(&bytes[..bytes.len() - 1]), None);
        let mut no_nul = bytes.clone();
        if let Some(last) = no_nul.last_mut() {
            *last = 1;
        }
        assert_eq!(document(&no_nul), None);
        let mut bad_bool = bytes.clone();
        let at = bad_bool.len() - 2;
        bad_bool[at] = 2;
        assert_eq!(document(&bad_bool), None);
        assert!(by_bson(&bad_bool).is_none());
        for refused in [&trailing[..], &bytes[..bytes.len() - 1], &no_nul, &bad_bool] {
            assert!(!is_well_formed(refused));
        }
        assert!(is_well_formed(&bytes));
    }

    /// Documents and arrays of every size around the templates' capacities, at the top level
    /// and nested: decoded alike, counted exactly, and still growable after decoding.
    #[test]
    fn documents_around_the_template_sizes_decode_alike() {
        let mut sizes = vec![0, 1, 2, TEMPLATE_FIELDS_MAX + 1, 200];
        for room in TEMPLATE_FIELDS {
            sizes.extend([room, room + 1]);
        }
        for n in sizes {
            let fields: Document = (0..n)
                .map(|i| (format!("f{i}"), Bson::Int32(i32::try_from(i).unwrap_or(0))))
                .collect();
            let items: Vec<Bson> = (0..n).map(|i| Bson::String(format!("{i}"))).collect();
            let nested = doc! {"d": fields.clone(), "a": items, "s": "x"};
            for d in [&fields, &nested] {
                let bytes = d.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
                let mut decoded = document(&bytes);
                assert_eq!(decoded.as_ref(), Some(d), "{n} fields");
                let counted = Reader {
                    bytes: &bytes,
                    pos: 0,
                }
                .frame()
                .and_then(|r| r.count());
                assert_eq!(counted, Some(d.len()), "{n} fields");
                if let Some(decoded) = decoded.as_mut() {
                    for i in 0..20 {
                        decoded.insert(format!("more{i}"), i);
                    }
                    assert_eq!(decoded.len(), d.len() + 20);
                    assert_eq!(decoded.get("more19"), Some(&Bson::Int32(19)));
                    assert_eq!(
                        decoded.keys().next(),
                        d.keys().next().or(Some(&"more0".into()))
                    );
                }
            }
        }
    }

    #[test]
    fn counting_leaves_rare_types_and_bad_framing_to_the_decoder() {
        let bytes = doc! {"a": 1, "min": Bson::MinKey}
            .to_vec()
            .unwrap_or_else(|e| unreachable!("{e}"));
        let frame = |b: &[u8]| Reader { bytes: b, pos: 0 }.frame().map(|r| r.count());
        assert_eq!(frame(&bytes), Some(None));
        // A string whose length runs past its frame.
        let mut long = doc! {"s": "abc"}
            .to_vec()
            .unwrap_or_else(|e| unreachable!("{e}"));
        long[7] = 200;
        assert_eq!(frame(&long), Some(None));
        assert_eq!(document(&long), None);
    }

    #[test]
    fn nesting_beyond_the_decoder_limit_is_left_to_bson() {
        let mut deep = doc! {"leaf": 1};
        for _ in 0..DEPTH_MAX {
            deep = doc! {"d": deep};
        }
        let bytes = deep.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(document(&bytes), Some(deep.clone()));
        assert!(is_well_formed(&bytes));
        let deeper = doc! {"d": deep};
        let bytes = deeper.to_vec().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(document(&bytes), None);
        assert!(!is_well_formed(&bytes));
        assert!(by_bson(&bytes).is_some());
    }
}
