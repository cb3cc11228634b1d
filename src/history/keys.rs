//! Every persisted key encoding of the history store, and the order-preserving encoding of
//! BSON values used in document and index keys.
//!
//! Layouts (all integers big-endian so byte order is numeric order; see `docs/formats.md` (history section)):
//! - `docs`: `collection id (u32)` ++ `encode_value(_id)`
//! - `index`: `index id (u32)` ++ `encode_value(v1)` ++ … ++ `encode_value(_id)` (unique
//!   indexes omit the `_id` suffix); the value is `encode_value(_id)`, the document's key suffix
//! - `oplog`: `seq (u64)`
//! - `catalog`: `b'c'` ++ db ++ `0x00` ++ collection → collection record; `b's'` → store state
//! - `meta`: caller's key as given
//!
//! The value encoding is prefix-free (no encoding is a prefix of another) and its byte order is
//! MongoDB's value order, so `compare(a, b)` and `encode_value(a).cmp(&encode_value(b))`
//! agree. Numbers of every type that are equal by value encode identically, as MongoDB indexes
//! them. The exception is Decimal128: a decimal encodes as its nearest double, so decimals
//! that differ beyond a double's precision (and such a decimal beside an integer above 2^53)
//! share or swap keys while `compare` orders them exactly; the planner widens decimal range
//! bounds to the whole double's keys and the filter rechecks every document.
//!
//! Numbers have two layouts ([`KeyFormat`]); a collection's record says which one all of its
//! document and index keys use, so stores written before the shorter one keep reading.

#![deny(clippy::indexing_slicing)]

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, Regex, Timestamp, oid::ObjectId};

use super::KEY_BYTES_MAX;
use super::error::{Error, Result};

/// Tag bytes of the value encoding, one per MongoDB type bracket, in bracket order.
mod tag {
    pub(super) const MIN_KEY: u8 = 0x01;
    /// An index field's empty array or undefined value, in [`super::KeyFormat::V3`]: below
    /// null, as MongoDB indexes them.
    pub(super) const UNDEFINED: u8 = 0x03;
    pub(super) const NULL: u8 = 0x05;
    pub(super) const NUMBER: u8 = 0x10;
    pub(super) const STRING: u8 = 0x14;
    pub(super) const DOCUMENT: u8 = 0x18;
    pub(super) const ARRAY: u8 = 0x1C;
    pub(super) const BINARY: u8 = 0x20;
    pub(super) const OBJECT_ID: u8 = 0x24;
    pub(super) const BOOLEAN: u8 = 0x28;
    pub(super) const DATE: u8 = 0x2C;
    pub(super) const TIMESTAMP: u8 = 0x30;
    pub(super) const REGEX: u8 = 0x34;
    pub(super) const CODE: u8 = 0x3C;
    pub(super) const MAX_KEY: u8 = 0x7F;
}

/// How a collection's keys encode numbers; everything else encodes the same in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// The first layout: the double's sortable bits, then always 8 bytes of `i64` remainder
    /// (17 bytes with the tag). Collection records without `keyFormat` use it.
    V1,
    /// The remainder only when there is one: after the double's bits a marker `0x80` (none),
    /// or `0x7F`/`0x81` and 8 bytes (negative/positive). Every int32 and double and each
    /// int64 a double holds exactly is 10 bytes with the tag, so a collection id and a
    /// number fit in the storage engine's 20-byte inline keys.
    V2,
    /// V2's numbers; an index field whose value is an empty array (or undefined) is keyed
    /// by its own tag below null, as MongoDB keys it, where V1 and V2 key it as null. So an
    /// index scan in key order sorts an empty array before null and a missing field.
    V3,
}

impl KeyFormat {
    /// The layout of collections created by this build.
    pub const CURRENT: Self = Self::V3;

    /// The collection record's `keyFormat` value (absent for [`KeyFormat::V1`]).
    pub(crate) fn record_value(self) -> Option<i32> {
        match self {
            Self::V1 => None,
            Self::V2 => Some(2),
            Self::V3 => Some(3),
        }
    }

    /// Whether an index field's empty array or undefined value has its own key below null
    /// (V3); earlier formats key it as null.
    pub(crate) fn keys_undefined(self) -> bool {
        self == Self::V3
    }

    /// Reads a collection record's `keyFormat` (absent: [`KeyFormat::V1`]); `None` for a
    /// layout this build does not know.
    pub(crate) fn from_record_value(v: Option<i64>) -> Option<Self> {
        match v {
            None | Some(1) => Some(Self::V1),
            Some(2) => Some(Self::V2),
            Some(3) => Some(Self::V3),
            Some(_) => None,
        }
    }
}

/// Marker after a V2 number's double bits: no remainder, a negative one, a positive one.
const REMAINDER_NONE: u8 = 0x80;
const REMAINDER_NEGATIVE: u8 = 0x7F;
const REMAINDER_POSITIVE: u8 = 0x81;

/// Prefix of collection records in the catalog keyspace.
pub(crate) const CATALOG_COLLECTION: u8 = b'c';
/// Key of the store state record in the catalog keyspace.
pub(crate) const CATALOG_STATE: &[u8] = b"s";

/// Checks an encoded key against the storage engine's bounds (1..=[`KEY_BYTES_MAX`]).
///
/// # Errors
/// [`Error::KeyTooLarge`] (an empty key is reported with `len` 0).
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > KEY_BYTES_MAX {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: KEY_BYTES_MAX,
        });
    }
    Ok(())
}

/// Order-preserving bits of a double: NaN lowest, then -inf … +inf; -0.0 and 0.0 equal.
fn double_bits(d: f64) -> u64 {
    if d.is_nan() {
        return 0;
    }
    let d = if d == 0.0 { 0.0 } else { d };
    let bits = d.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Inverse of [`double_bits`].
fn double_from_bits(bits: u64) -> f64 {
    if bits == 0 {
        return f64::NAN;
    }
    if bits >> 63 == 1 {
        f64::from_bits(bits & !(1 << 63))
    } else {
        f64::from_bits(!bits)
    }
}

/// Writes a number: sortable double bits, then the signed exact remainder of an integer that
/// the double rounded (0 for doubles), so large `i64`s keep their order; `format` says whether
/// a zero remainder is written out (V1) or marked by one byte (V2).
fn encode_number(v: &Bson, format: KeyFormat, out: &mut Vec<u8>) {
    let (d, delta) = match v {
        Bson::Int32(i) => (f64::from(*i), 0i64),
        Bson::Int64(i) => {
            #[expect(
                clippy::cast_precision_loss,
                reason = "the rounding error is stored as delta"
            )]
            let d = *i as f64;
            (d, i128_delta(*i, d))
        }
        Bson::Double(d) => (*d, 0),
        other => (super::document::as_f64(other).unwrap_or(f64::NAN), 0),
    };
    out.push(tag::NUMBER);
    out.extend_from_slice(&double_bits(d).to_be_bytes());
    let remainder = ((delta as u64) ^ (1 << 63)).to_be_bytes();
    match (format, delta.cmp(&0)) {
        (KeyFormat::V1, _) => out.extend_from_slice(&remainder),
        (KeyFormat::V2 | KeyFormat::V3, std::cmp::Ordering::Equal) => out.push(REMAINDER_NONE),
        (KeyFormat::V2 | KeyFormat::V3, std::cmp::Ordering::Less) => {
            out.push(REMAINDER_NEGATIVE);
            out.extend_from_slice(&remainder);
        }
        (KeyFormat::V2 | KeyFormat::V3, std::cmp::Ordering::Greater) => {
            out.push(REMAINDER_POSITIVE);
            out.extend_from_slice(&remainder);
        }
    }
}

/// The prefix every key of a number with `v`'s nearest double starts with (the tag and the
/// double's bits), in either layout.
pub(crate) fn number_bucket(v: &Bson) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(tag::NUMBER);
    let d = super::document::as_f64(v).unwrap_or(f64::NAN);
    out.extend_from_slice(&double_bits(d).to_be_bytes());
    out
}

/// `i - d` exactly, where `d` is `i` rounded to a double (at most 2^10 in magnitude).
fn i128_delta(i: i64, d: f64) -> i64 {
    if d >= TWO_POW_63 {
        // d is 2^63, one past i64::MAX.
        let diff = i128::from(i) - (1i128 << 63);
        return i64::try_from(diff).unwrap_or(i64::MIN);
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "d is an integral double within i64 range"
    )]
    let t = d as i64;
    i.wrapping_sub(t)
}

/// Writes a string with 0x00 escaped as 0x00 0xFF and a 0x00 0x00 terminator.
fn encode_bytes_escaped(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Appends the order-preserving encoding of `v`.
pub(crate) fn encode_value(v: &Bson, format: KeyFormat, out: &mut Vec<u8>) {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            encode_number(v, format, out)
        }
        _ => {
            out.push(tag_of(v));
            encode_payload(v, format, out);
        }
    }
}

/// The tag byte of a value's bracket.
fn tag_of(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => tag::MIN_KEY,
        Bson::Null | Bson::Undefined => tag::NULL,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => tag::NUMBER,
        Bson::String(_) | Bson::Symbol(_) => tag::STRING,
        Bson::Document(_) => tag::DOCUMENT,
        Bson::Array(_) => tag::ARRAY,
        Bson::Binary(_) => tag::BINARY,
        Bson::ObjectId(_) => tag::OBJECT_ID,
        Bson::Boolean(_) => tag::BOOLEAN,
        Bson::DateTime(_) => tag::DATE,
        Bson::Timestamp(_) => tag::TIMESTAMP,
        Bson::RegularExpression(_) => tag::REGEX,
        Bson::DbPointer(_) | Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => {
            tag::CODE
        }
        Bson::MaxKey => tag::MAX_KEY,
    }
}

/// Appends everything after the tag byte.
fn encode_payload(v: &Bson, format: KeyFormat, out: &mut Vec<u8>) {
    match v {
        Bson::MinKey | Bson::MaxKey | Bson::Null | Bson::Undefined => {}
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            let mut tmp = Vec::with_capacity(17);
            encode_number(v, format, &mut tmp);
            out.extend_from_slice(tmp.get(1..).unwrap_or_default());
        }
        Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => {
            encode_bytes_escaped(s.as_bytes(), out)
        }
        Bson::Document(d) => {
            for (k, val) in d {
                out.push(tag_of(val));
                encode_bytes_escaped(k.as_bytes(), out);
                encode_payload(val, format, out);
            }
            out.push(0);
        }
        Bson::Array(a) => {
            for el in a {
                encode_value(el, format, out);
            }
            out.push(0);
        }
        Bson::Binary(b) => {
            let len = u32::try_from(b.bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.push(u8::from(b.subtype));
            out.extend_from_slice(&b.bytes);
        }
        Bson::ObjectId(o) => out.extend_from_slice(&o.bytes()),
        Bson::Boolean(b) => out.push(u8::from(*b)),
        Bson::DateTime(d) => {
            out.extend_from_slice(&((d.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes())
        }
        Bson::Timestamp(t) => {
            out.extend_from_slice(&t.time.to_be_bytes());
            out.extend_from_slice(&t.increment.to_be_bytes());
        }
        Bson::RegularExpression(r) => {
            encode_bytes_escaped(r.pattern.as_str().as_bytes(), out);
            encode_bytes_escaped(r.options.as_str().as_bytes(), out);
        }
        Bson::DbPointer(_) | Bson::JavaScriptCodeWithScope(_) => {
            encode_bytes_escaped(v.to_string().as_bytes(), out)
        }
    }
}

/// A cursor over an encoded value.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    format: KeyFormat,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| corrupt("truncated value"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self
            .bytes
            .get(self.pos..self.pos + N)
            .ok_or_else(|| corrupt("truncated value"))?;
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn take_vec(&mut self, n: usize) -> Result<Vec<u8>> {
        let s = self
            .bytes
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| corrupt("truncated value"))?;
        self.pos += n;
        Ok(s.to_vec())
    }

    fn escaped(&mut self) -> Result<String> {
        let mut s = Vec::new();
        loop {
            let b = self.byte()?;
            if b != 0 {
                s.push(b);
                continue;
            }
            match self.byte()? {
                0 => break,
                0xFF => s.push(0),
                _ => return Err(corrupt("bad string escape")),
            }
        }
        String::from_utf8(s).map_err(|_| corrupt("string is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Bson> {
        let t = self.byte()?;
        self.payload(t, depth)
    }

    fn payload(&mut self, t: u8, depth: usize) -> Result<Bson> {
        if depth > super::NESTING_DEPTH_MAX {
            return Err(corrupt("nesting too deep"));
        }
        Ok(match t {
            tag::MIN_KEY => Bson::MinKey,
            tag::MAX_KEY => Bson::MaxKey,
            tag::NULL => Bson::Null,
            tag::UNDEFINED if self.format.keys_undefined() => Bson::Undefined,
            tag::NUMBER => {
                let d = double_from_bits(u64::from_be_bytes(self.take::<8>()?));
                let remainder = match self.format {
                    KeyFormat::V1 => true,
                    KeyFormat::V2 | KeyFormat::V3 => match self.byte()? {
                        REMAINDER_NONE => false,
                        REMAINDER_NEGATIVE | REMAINDER_POSITIVE => true,
                        _ => return Err(corrupt("bad number remainder marker")),
                    },
                };
                let delta = if remainder {
                    (u64::from_be_bytes(self.take::<8>()?) ^ (1 << 63)) as i64
                } else {
                    0
                };
                if delta != 0
                    || (d.fract() == 0.0 && d.abs() < 9.0e15 && !(d == 0.0 && d.is_sign_negative()))
                {
                    #[expect(
                        clippy::cast_possible_truncation,
                        reason = "integral double in i64 range"
                    )]
                    let base = if d >= TWO_POW_63 { i64::MAX } else { d as i64 };
                    let base = if d >= TWO_POW_63 {
                        base.wrapping_add(1)
                    } else {
                        base
                    };
                    Bson::Int64(base.wrapping_add(delta))
                } else {
                    Bson::Double(d)
                }
            }
            tag::STRING => Bson::String(self.escaped()?),
            tag::DOCUMENT => {
                let mut d = Document::new();
                loop {
                    let vt = self.byte()?;
                    if vt == 0 {
                        break;
                    }
                    let k = self.escaped()?;
                    let v = self.payload(vt, depth + 1)?;
                    d.insert(k, v);
                }
                Bson::Document(d)
            }
            tag::ARRAY => {
                let mut a = Vec::new();
                loop {
                    let vt = self.byte()?;
                    if vt == 0 {
                        break;
                    }
                    a.push(self.payload(vt, depth + 1)?);
                }
                Bson::Array(a)
            }
            tag::BINARY => {
                let len = u32::from_be_bytes(self.take::<4>()?);
                let subtype = BinarySubtype::from(self.byte()?);
                let bytes = self.take_vec(usize::try_from(len).unwrap_or(usize::MAX))?;
                Bson::Binary(Binary { subtype, bytes })
            }
            tag::OBJECT_ID => Bson::ObjectId(ObjectId::from_bytes(self.take::<12>()?)),
            tag::BOOLEAN => Bson::Boolean(self.byte()? != 0),
            tag::DATE => {
                let ms = (u64::from_be_bytes(self.take::<8>()?) ^ (1 << 63)) as i64;
                Bson::DateTime(bson::DateTime::from_millis(ms))
            }
            tag::TIMESTAMP => {
                let time = u32::from_be_bytes(self.take::<4>()?);
                let increment = u32::from_be_bytes(self.take::<4>()?);
                Bson::Timestamp(Timestamp { time, increment })
            }
            tag::REGEX => {
                let pattern = self.escaped()?;
                let options = self.escaped()?;
                let pattern = bson::raw::CString::try_from(pattern)
                    .map_err(|_| corrupt("regex pattern has NUL"))?;
                let options = bson::raw::CString::try_from(options)
                    .map_err(|_| corrupt("regex options have NUL"))?;
                Bson::RegularExpression(Regex { pattern, options })
            }
            tag::CODE => Bson::JavaScriptCode(self.escaped()?),
            _ => return Err(corrupt("unknown value tag")),
        })
    }
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt {
        what: "key",
        reason: reason.to_owned(),
    }
}

/// Decodes one value from the front of `bytes`, returning it and the bytes it used. Numbers
/// come back as `Int64` when integral (and below 2^53 or carrying a remainder) else `Double`;
/// they compare equal to what was encoded.
///
/// # Errors
/// [`Error::Corrupt`] on malformed input (never panics).
pub fn decode_value(bytes: &[u8], format: KeyFormat) -> Result<(Bson, usize)> {
    let mut r = Reader {
        bytes,
        pos: 0,
        format,
    };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// The order-preserving encoding of one value in `format`, as a fresh vector.
#[must_use]
pub fn encode_key_value(v: &Bson, format: KeyFormat) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(v, format, &mut out);
    out
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// `prefix` is all 0xFF.
#[must_use]
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

/// The tag byte that starts a value's bracket, and the one after it: the half-open byte range
/// holding every encoding of a value in the same type bracket as `v`.
#[must_use]
pub(crate) fn bracket_bounds(v: &Bson) -> (u8, u8) {
    let t = tag_of(v);
    (t, t + 1)
}

/// Key of a document: collection id and encoded `_id`.
#[must_use]
pub(crate) fn doc_key(coll_id: u32, encoded_id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + encoded_id.len());
    doc_key_into(coll_id, encoded_id, &mut k);
    k
}

/// [`doc_key`] written into `out` (cleared first), so a reader fetching many documents reuses
/// one buffer.
pub(crate) fn doc_key_into(coll_id: u32, encoded_id: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&coll_id.to_be_bytes());
    out.extend_from_slice(encoded_id);
}

/// Key of an index entry: index id, the encoded field values (complemented for descending
/// fields) and the encoded `_id`.
#[must_use]
pub(crate) fn index_key(index_id: u32, encoded_values: &[u8], encoded_id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + encoded_values.len() + encoded_id.len());
    k.extend_from_slice(&index_id.to_be_bytes());
    k.extend_from_slice(encoded_values);
    k.extend_from_slice(encoded_id);
    k
}

/// Key of a unique index's entry: index id and encoded values only, so the uniqueness check
/// is a point lookup; the value holds the encoded `_id`.
#[must_use]
pub(crate) fn unique_index_key(index_id: u32, encoded_values: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + encoded_values.len());
    k.extend_from_slice(&index_id.to_be_bytes());
    k.extend_from_slice(encoded_values);
    k
}

/// Appends one index field's encoding; descending fields are byte-complemented so a forward
/// scan yields descending order (prefix-freedom survives complementing). In
/// [`KeyFormat::V3`] undefined (what an empty array is indexed as) has its own tag below
/// null; inside documents and arrays, and in earlier formats, it encodes as null.
pub(crate) fn encode_index_field(v: &Bson, descending: bool, format: KeyFormat, out: &mut Vec<u8>) {
    let start = out.len();
    if format.keys_undefined() && matches!(v, Bson::Undefined) {
        out.push(tag::UNDEFINED);
    } else {
        encode_value(v, format, out);
    }
    if descending && let Some(tail) = out.get_mut(start..) {
        for b in tail {
            *b = !*b;
        }
    }
}

/// Key of an oplog entry.
#[must_use]
pub(crate) fn oplog_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes an oplog key.
///
/// # Errors
/// [`Error::Corrupt`] when the key is not 8 bytes.
pub(crate) fn decode_oplog_key(key: &[u8]) -> Result<u64> {
    let a: [u8; 8] = key.try_into().map_err(|_| Error::Corrupt {
        what: "oplog key",
        reason: format!("{} bytes", key.len()),
    })?;
    Ok(u64::from_be_bytes(a))
}

/// Key of a collection record in the catalog.
#[must_use]
pub(crate) fn catalog_collection_key(db: &str, coll: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + db.len() + coll.len());
    k.push(CATALOG_COLLECTION);
    k.extend_from_slice(db.as_bytes());
    k.push(0);
    k.extend_from_slice(coll.as_bytes());
    k
}

/// Version of the resume-token layout, the first two hex digits of `_data`.
pub(crate) const RESUME_TOKEN_VERSION: u8 = 0x01;
/// Length of `_data` in hex digits: version (2) + seq (16) + kind (2).
pub(crate) const RESUME_TOKEN_HEX_LEN: usize = 20;

/// Encodes a resume token's `_data`: fixed-width upper-case hex of version, oplog sequence and
/// kind (0 = event, 1 = the invalidate that follows the event), so string order is oplog order.
#[must_use]
pub(crate) fn encode_resume_token(seq: u64, invalidate: bool) -> String {
    format!(
        "{RESUME_TOKEN_VERSION:02X}{seq:016X}{:02X}",
        u8::from(invalidate)
    )
}

/// Decodes a resume token's `_data` into (seq, is-invalidate).
///
/// # Errors
/// [`Error::InvalidResumeToken`].
pub(crate) fn decode_resume_token(data: &str) -> Result<(u64, bool)> {
    let bad = || Error::InvalidResumeToken(format!("`{data}` is not a resume token of this store"));
    if data.len() != RESUME_TOKEN_HEX_LEN || !data.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let version = u8::from_str_radix(data.get(0..2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    let seq = u64::from_str_radix(data.get(2..18).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    let kind = u8::from_str_radix(data.get(18..20).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    if version != RESUME_TOKEN_VERSION || kind > 1 {
        return Err(bad());
    }
    Ok((seq, kind == 1))
}

/// 2^63 as a double: one past `i64::MAX`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [KeyFormat; 3] = [KeyFormat::V1, KeyFormat::V2, KeyFormat::V3];

    #[test]
    fn an_index_fields_undefined_is_keyed_below_null_in_v3_only() {
        let field = |v: &Bson, desc: bool, f: KeyFormat| {
            let mut out = Vec::new();
            encode_index_field(v, desc, f, &mut out);
            out
        };
        let null = field(&Bson::Null, false, KeyFormat::V3);
        let undefined = field(&Bson::Undefined, false, KeyFormat::V3);
        assert_eq!(undefined, [tag::UNDEFINED]);
        assert!(field(&Bson::MinKey, false, KeyFormat::V3) < undefined);
        assert!(undefined < null);
        assert!(
            field(&Bson::Undefined, true, KeyFormat::V3) > field(&Bson::Null, true, KeyFormat::V3),
            "complemented for a descending field"
        );
        assert_eq!(
            decode_value(&undefined, KeyFormat::V3).unwrap(),
            (Bson::Undefined, 1)
        );
        for f in [KeyFormat::V1, KeyFormat::V2] {
            assert_eq!(
                field(&Bson::Undefined, false, f),
                field(&Bson::Null, false, f)
            );
        }
        // Inside a document, undefined is null's key in every format.
        let inner = |v: Bson| field(&Bson::Document(bson::doc! {"a": v}), false, KeyFormat::V3);
        assert_eq!(inner(Bson::Undefined), inner(Bson::Null));
    }

    #[test]
    fn numbers_of_equal_value_encode_alike() {
        for f in FORMATS {
            let enc = |v: Bson| encode_key_value(&v, f);
            assert_eq!(enc(Bson::Int32(7)), enc(Bson::Double(7.0)));
            assert_eq!(enc(Bson::Int64(7)), enc(Bson::Int32(7)));
            assert!(enc(Bson::Int64(i64::MAX - 1)) < enc(Bson::Int64(i64::MAX)));
        }
    }

    #[test]
    fn v2_numbers_carry_a_remainder_only_when_the_double_rounded() {
        let len = |v: Bson, f| encode_key_value(&v, f).len();
        assert_eq!(len(Bson::Int64(1 << 40), KeyFormat::V1), 17);
        assert_eq!(len(Bson::Int64(1 << 40), KeyFormat::V2), 10);
        assert_eq!(len(Bson::Double(-0.5), KeyFormat::V2), 10);
        assert_eq!(len(Bson::Int64((1 << 53) + 1), KeyFormat::V2), 18);
        assert_eq!(len(Bson::Int64(i64::MIN + 1), KeyFormat::V2), 18);
    }

    #[test]
    fn numbers_around_the_rounding_boundaries_keep_their_order_and_round_trip() {
        let big = 1i64 << 53;
        let mut values: Vec<i64> = (-3..=3).map(|k| big + k).collect();
        values.extend((-3..=3).map(|k| -big + k));
        values.extend([i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX, 0, -1, 1]);
        values.extend((0..=4).map(|k| (1i64 << 62) + k - 2));
        values.sort_unstable();
        for f in FORMATS {
            let encoded: Vec<Vec<u8>> = values
                .iter()
                .map(|&i| encode_key_value(&Bson::Int64(i), f))
                .collect();
            let mut sorted = encoded.clone();
            sorted.sort();
            assert_eq!(sorted, encoded, "{f:?}: byte order is numeric order");
            for (i, e) in values.iter().zip(&encoded) {
                // Values past 2^53 without a remainder come back as the equal double.
                let (back, used) = decode_value(e, f).unwrap();
                assert_eq!(used, e.len(), "{f:?} {i}");
                assert_eq!(encode_key_value(&back, f), *e, "{f:?} {i}");
                // Complemented (a descending index field), the order reverses.
                let mut desc = Vec::new();
                encode_index_field(&Bson::Int64(*i), true, f, &mut desc);
                assert_eq!(desc, e.iter().map(|b| !b).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn a_v2_number_with_an_unknown_remainder_marker_is_corrupt() {
        let mut e = encode_key_value(&Bson::Int32(5), KeyFormat::V2);
        *e.last_mut().unwrap() = 0x42;
        assert!(decode_value(&e, KeyFormat::V2).is_err());
        e.truncate(9);
        assert!(decode_value(&e, KeyFormat::V2).is_err(), "marker missing");
    }

    #[test]
    fn resume_tokens_round_trip_and_sort() {
        let a = encode_resume_token(9, false);
        let b = encode_resume_token(10, false);
        assert!(a < b);
        assert!(a < encode_resume_token(9, true));
        assert_eq!(decode_resume_token(&b).unwrap(), (10, false));
        assert!(decode_resume_token("zz").is_err());
    }
}
