//! DUMP payloads in Redis 7.0.15's own RDB object format: [`encode_dump`] serialises a value
//! as `createDumpPayload` does (object type byte, the object, RDB version 10 as two
//! little-endian bytes, then the CRC-64 Jones checksum of everything before it, little-endian),
//! and [`decode_dump`] reads every object type `rdbLoadObject` accepts for strings, lists,
//! sets, sorted sets, hashes and streams (the stream layout is in the `stream` submodule),
//! including the encodings of Redis 2.x–6.x (zipmap, ziplist, intset, quicklist of ziplists,
//! streams without their 7.0 metadata) and LZF-compressed strings.
//!
//! Decoding is checked, never trusted: every length is compared with the bytes left before
//! anything is allocated, listpacks and ziplists are validated entry by entry (their headers,
//! back-lengths, counts and terminators, as Redis's deep sanitisation does), duplicates are
//! refused, and no string may decode past [`DumpLimits::string_bytes_max`] nor LZF inflate a
//! payload past [`DumpLimits::inflated_bytes_max`]. Any fault is a [`DumpError`], which RESTORE
//! answers with Redis's "Bad data format".
//!
//! What deliberately differs from Redis's bytes: strings are never LZF-compressed on save
//! (Redis compresses those over 20 bytes when that saves 4 or more; it reads uncompressed ones
//! alike), a hash table (HASH) or set table (SET) lists its elements in this cache's order
//! rather than Redis's dict order, and a list's quicklist nodes are cut as an RPUSH-built
//! list's are (8 KiB listpacks, `list-max-listpack-size -2`). A hash listpack lists its fields
//! in insertion order, as Redis's does.
#![deny(clippy::indexing_slicing)]

use bytes::Bytes;
use hashbrown::HashSet;

use crate::cache::resp::frame::{format_double, parse_i64};
use crate::cache::value::{Compact, HashValue, ListValue, SetValue, Value};
use crate::cache::zset::{Listpack, ZSetValue};
use crate::cache::{DUMP_INFLATED_BYTES_MAX, DUMP_STRING_BYTES_MAX};

mod stream;

/// The RDB version this cache writes and the newest it reads (Redis 7.0's `RDB_VERSION`).
pub(crate) const RDB_VERSION: u16 = 10;
/// Bytes of the footer: the version (2) and the CRC-64 (8).
const FOOTER_BYTES: usize = 10;

/// RDB object types (`rdb.h`).
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;

/// Length prefixes (`RDB_6BITLEN` … `RDB_ENCVAL`) and special string encodings.
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Quicklist node containers (`QUICKLIST_NODE_CONTAINER_*`).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// Redis's `SIZE_SAFETY_LIMIT`/`optimization_level[1]`: a quicklist node's listpack stays
/// within 8 KiB under the default `list-max-listpack-size -2`.
const QUICKLIST_NODE_BYTES_MAX: usize = 8192;
/// Redis's `SIZE_ESTIMATE_OVERHEAD`: what the node-size check adds per new entry.
const QUICKLIST_ENTRY_OVERHEAD_BYTES: usize = 8;

/// Listpack header (total bytes u32, element count u16) and terminator.
const LP_HEADER_BYTES: usize = 6;
const LP_EOF: u8 = 0xFF;
/// A listpack or ziplist count that means "count the entries".
const COUNT_UNKNOWN: u16 = u16::MAX;
/// Ziplist header: total bytes u32, tail offset u32, count u16.
const ZL_HEADER_BYTES: usize = 10;
/// Ziplist prevlen byte announcing a 4-byte length.
const ZL_BIG_PREVLEN: u8 = 254;

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DumpError {
    /// The footer's version is newer than [`RDB_VERSION`] or the CRC does not match.
    Footer,
    /// The bytes are not a well-formed object (`what` names the fault).
    Corrupt(&'static str),
    /// A size stated in the payload is past a limit.
    TooLarge {
        /// The size stated.
        len: u64,
        /// The limit.
        max: usize,
    },
}

/// Sizes a payload may decode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DumpLimits {
    /// Most bytes one string may decode to.
    pub(crate) string_bytes_max: usize,
    /// Most bytes LZF may inflate in one payload, all strings together.
    pub(crate) inflated_bytes_max: usize,
}

impl Default for DumpLimits {
    fn default() -> Self {
        Self {
            string_bytes_max: DUMP_STRING_BYTES_MAX,
            inflated_bytes_max: DUMP_INFLATED_BYTES_MAX,
        }
    }
}

// ---- CRC-64 ---------------------------------------------------------------------------------

/// Redis's `crc64` (Jones polynomial 0xad93d23594c935a9, reflected, initial value 0, no final
/// XOR), one table entry per byte value.
const CRC64_TABLE: [u64; 256] = crc64_table();

#[expect(
    clippy::indexing_slicing,
    reason = "i < 256, the table's length, by the loop bound (a const fn cannot use get_mut)"
)]
const fn crc64_table() -> [u64; 256] {
    // The polynomial bit-reversed, for the reflected (LSB-first) form.
    const POLY_REFLECTED: u64 = 0x95AC_9329_AC4B_C9B5;
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The CRC-64 of `bytes`, continuing from `crc`.
pub(crate) fn crc64(mut crc: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        let slot = CRC64_TABLE
            .get(((crc ^ u64::from(b)) & 0xFF) as usize)
            .copied()
            .unwrap_or(0);
        crc = slot ^ (crc >> 8);
    }
    crc
}

// ---- Encoding -------------------------------------------------------------------------------

/// What a key holds, borrowed: a string's bytes or a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stored<'a> {
    /// A string.
    Str(&'a [u8]),
    /// Any value.
    Value(&'a Value),
}

/// The DUMP payload of `stored`, as Redis 7.0.15's `createDumpPayload` writes it (see the
/// module doc for what differs), each collection in the encoding OBJECT ENCODING reports.
pub(crate) fn encode_dump(stored: Stored<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match stored {
        Stored::Str(s) => {
            out.push(TYPE_STRING);
            put_string(&mut out, s);
        }
        Stored::Value(v) => put_value(&mut out, v),
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// `RDB_OPCODE_FUNCTION2`: one library's code in a FUNCTION DUMP payload.
const OPCODE_FUNCTION2: u8 = 245;

/// FUNCTION DUMP's payload (Redis's `functionDumpCommand`): each library's code after
/// `RDB_OPCODE_FUNCTION2`, then the RDB version and the CRC-64.
pub(crate) fn encode_functions<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        put_string(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The libraries' code in a FUNCTION RESTORE payload, with Redis's error texts (without their
/// `ERR `).
///
/// # Errors
/// A bad footer, an entry that is not a library (`RDB_OPCODE_FUNCTION2`) or malformed bytes.
pub(crate) fn decode_functions(p: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    check_footer(p).map_err(|_| "DUMP payload version or checksum are wrong")?;
    let mut r = Reader {
        p,
        pos: 0,
        limits: DumpLimits::default(),
        inflated: 0,
    };
    let mut codes = Vec::new();
    while r.left() > FOOTER_BYTES {
        let kind = r.byte().map_err(|_| "can not read data type")?;
        if kind != OPCODE_FUNCTION2 {
            return Err("given type is not a function");
        }
        codes.push(
            r.string()
                .map_err(|_| "failed loading the given functions payload")?,
        );
    }
    Ok(codes)
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            put_string(out, s);
        }
        Value::List(l) => put_list(out, l),
        Value::Set(s) => put_set(out, s),
        Value::Hash(h) => {
            if h.is_listpack() {
                out.push(TYPE_HASH_LISTPACK);
                let mut lp = ListpackWriter::new();
                for (f, v) in h.iter() {
                    lp.push(f);
                    lp.push(v);
                }
                put_string(out, &lp.finish());
            } else {
                out.push(TYPE_HASH);
                put_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    put_string(out, f);
                    put_string(out, v);
                }
            }
        }
        Value::ZSet(z) => put_zset(out, z),
        Value::Stream(s) => stream::put_stream(out, s),
    }
}

fn put_list(out: &mut Vec<u8>, l: &ListValue) {
    out.push(TYPE_LIST_QUICKLIST_2);
    // Nodes as RPUSH fills them: an element joins the tail node while the node's listpack
    // plus the element plus the estimate overhead stays within the node limit.
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut node: Option<ListpackWriter> = None;
    for item in l.iter() {
        let fits = node.as_ref().is_some_and(|n| {
            n.bytes()
                .saturating_add(item.len())
                .saturating_add(QUICKLIST_ENTRY_OVERHEAD_BYTES)
                <= QUICKLIST_NODE_BYTES_MAX
        });
        if !fits && let Some(full) = node.take() {
            nodes.push(full.finish());
        }
        node.get_or_insert_with(ListpackWriter::new).push(item);
    }
    if let Some(last) = node {
        nodes.push(last.finish());
    }
    put_len(out, nodes.len() as u64);
    for n in &nodes {
        put_len(out, CONTAINER_PACKED);
        put_string(out, n);
    }
}

fn put_set(out: &mut Vec<u8>, s: &SetValue) {
    let ints: Option<Vec<i64>> = if s.is_intset() {
        s.iter().map(|m| parse_i64(m)).collect()
    } else {
        None
    };
    match ints {
        Some(mut ints) => {
            out.push(TYPE_SET_INTSET);
            ints.sort_unstable();
            let width: usize = if ints.iter().all(|&v| i16::try_from(v).is_ok()) {
                2
            } else if ints.iter().all(|&v| i32::try_from(v).is_ok()) {
                4
            } else {
                8
            };
            let mut blob = Vec::with_capacity(8 + ints.len() * width);
            blob.extend_from_slice(&(width as u32).to_le_bytes());
            blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
            for v in ints {
                blob.extend_from_slice(v.to_le_bytes().get(..width).unwrap_or_default());
            }
            put_string(out, &blob);
        }
        None => {
            out.push(TYPE_SET);
            put_len(out, s.len() as u64);
            for m in s.iter() {
                put_string(out, m);
            }
        }
    }
}

fn put_zset(out: &mut Vec<u8>, z: &ZSetValue) {
    let elements = z.to_vec();
    if z.encoding() == "listpack" {
        out.push(TYPE_ZSET_LISTPACK);
        let mut lp = ListpackWriter::new();
        for (m, score) in &elements {
            lp.push(m);
            lp.push(score_text(*score).as_bytes());
        }
        put_string(out, &lp.finish());
    } else {
        out.push(TYPE_ZSET_2);
        put_len(out, elements.len() as u64);
        // Greatest first, as Redis walks its skiplist from the tail.
        for (m, score) in elements.iter().rev() {
            put_string(out, m);
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// A score as Redis's `d2string` writes it into a listpack: an integer without a fraction
/// when `double2ll` allows, `%.17g` otherwise.
fn score_text(score: f64) -> String {
    const HALF_LLONG_MAX: f64 = (i64::MAX / 2) as f64;
    if score != 0.0 && score.is_finite() && (-HALF_LLONG_MAX..=HALF_LLONG_MAX).contains(&score) {
        // Within ±2^62 (checked above), so the cast is exact up to the fraction, which the
        // comparison below detects, as Redis's `double2ll` does.
        let ll = score as i64;
        if ll as f64 == score {
            return ll.to_string();
        }
    }
    format_double(score)
}

/// Redis's `rdbSaveLen`.
fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(((len >> 8) as u8) | 0x40);
        out.push((len & 0xFF) as u8);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(LEN_32BIT);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(LEN_64BIT);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Redis's `rdbSaveRawString` without compression: a string of at most 11 bytes that is the
/// canonical text of a 32-bit integer is written as that integer, anything else as length and
/// bytes.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11
        && let Some(v) = parse_i64(s)
    {
        if let Ok(v) = i8::try_from(v) {
            out.push(0xC0 | ENC_INT8);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
        if let Ok(v) = i16::try_from(v) {
            out.push(0xC0 | ENC_INT16);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
        if let Ok(v) = i32::try_from(v) {
            out.push(0xC0 | ENC_INT32);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Builds a listpack (`listpack.c`): entries appended at the tail, each encoded as
/// `lpAppend` encodes it (integers in the narrowest integer form), then the header.
#[derive(Debug)]
struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl ListpackWriter {
    fn new() -> Self {
        Self {
            buf: vec![0; LP_HEADER_BYTES],
            count: 0,
        }
    }

    /// The listpack's size so far, terminator included (what `lpBytes` reports).
    fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    fn push(&mut self, ele: &[u8]) {
        let start = self.buf.len();
        match lp_string_to_int(ele) {
            Some(v) => lp_put_int(&mut self.buf, v),
            None => {
                let len = ele.len();
                if len < 64 {
                    self.buf.push(0x80 | len as u8);
                } else if len < 4096 {
                    self.buf.push(0xE0 | (len >> 8) as u8);
                    self.buf.push((len & 0xFF) as u8);
                } else {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(len as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(ele);
            }
        }
        let entry = (self.buf.len() - start) as u64;
        lp_put_backlen(&mut self.buf, entry);
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_EOF);
        let total = (self.buf.len() as u32).to_le_bytes();
        let count = u16::try_from(self.count)
            .unwrap_or(COUNT_UNKNOWN)
            .to_le_bytes();
        if let Some(h) = self.buf.get_mut(..LP_HEADER_BYTES) {
            h.copy_from_slice(&[total[0], total[1], total[2], total[3], count[0], count[1]]);
        }
        self.buf
    }
}

/// Redis's `lpStringToInt64`: `string2ll` on at most 20 bytes.
fn lp_string_to_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    parse_i64(s)
}

/// Redis's `lpEncodeIntegerGetType`.
fn lp_put_int(buf: &mut Vec<u8>, v: i64) {
    if (0..=127).contains(&v) {
        buf.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u16;
        buf.push(0xC0 | (u >> 8) as u8);
        buf.push((u & 0xFF) as u8);
    } else if let Ok(v) = i16::try_from(v) {
        buf.push(0xF1);
        buf.extend_from_slice(&v.to_le_bytes());
    } else if (-8_388_608..=8_388_607).contains(&v) {
        buf.push(0xF2);
        buf.extend_from_slice(v.to_le_bytes().get(..3).unwrap_or_default());
    } else if let Ok(v) = i32::try_from(v) {
        buf.push(0xF3);
        buf.extend_from_slice(&v.to_le_bytes());
    } else {
        buf.push(0xF4);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// Redis's `lpEncodeBacklen`: the entry's length in 7-bit groups, most significant first,
/// every byte but the first with its top bit set.
fn lp_put_backlen(buf: &mut Vec<u8>, l: u64) {
    let groups = match l {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    for i in (0..groups).rev() {
        let b = ((l >> (7 * i)) & 127) as u8;
        buf.push(if i == groups - 1 { b } else { b | 128 });
    }
}

// ---- Decoding -------------------------------------------------------------------------------

/// Checks the footer of a payload as Redis's `verifyDumpPayload`: at least 10 bytes, a version
/// no newer than [`RDB_VERSION`], and the CRC-64 of everything before the CRC.
///
/// # Errors
/// [`DumpError::Footer`] when any of these fails.
pub(crate) fn check_footer(p: &[u8]) -> Result<(), DumpError> {
    let split = p.len().checked_sub(FOOTER_BYTES).ok_or(DumpError::Footer)?;
    let (body, footer) = p.split_at(split);
    let [v0, v1, crc @ ..] = footer else {
        return Err(DumpError::Footer);
    };
    if u16::from_le_bytes([*v0, *v1]) > RDB_VERSION {
        return Err(DumpError::Footer);
    }
    let expected = crc64(crc64(0, body), &[*v0, *v1]);
    if crc != expected.to_le_bytes() {
        return Err(DumpError::Footer);
    }
    Ok(())
}

/// Reads the object of a payload whose footer [`check_footer`] accepted, as Redis's
/// `rdbLoadObjectType` and `rdbLoadObject` do (the reader runs over the whole payload, footer
/// included, as Redis's does). A sorted set is given the encoding `zset` decides, a hash or set
/// the one `compact` decides as Redis's loader does for its payload type.
///
/// # Errors
/// [`DumpError`] for any malformed, unknown (module) or oversized content.
pub(crate) fn decode_dump(
    p: &[u8],
    zset: Listpack,
    compact: Compact,
    limits: DumpLimits,
) -> Result<Value, DumpError> {
    let mut r = Reader {
        p,
        pos: 0,
        limits,
        inflated: 0,
    };
    let kind = r.byte()?;
    match kind {
        TYPE_STRING => Ok(Value::Str(r.string()?)),
        TYPE_LIST => {
            let n = r.count()?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(Bytes::from(r.string()?));
            }
            Ok(Value::List(Box::new(items.into_iter().collect())))
        }
        TYPE_SET => {
            let n = r.count()?;
            let mut members = HashSet::new();
            for _ in 0..n {
                if !members.insert(Bytes::from(r.string()?)) {
                    return Err(DumpError::Corrupt("duplicate set members"));
                }
            }
            let set = SetValue::from_members(members, compact.intset_entries);
            Ok(Value::Set(Box::new(set)))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count()?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let m = r.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    f64::from_le_bytes(r.array::<8>()?)
                } else {
                    r.text_double()?
                };
                pairs.push((Bytes::from(m), score));
            }
            zset_of(pairs, zset)
        }
        TYPE_HASH => {
            let n = r.count()?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let f = r.string()?;
                let v = r.string()?;
                pairs.push((Bytes::from(f), Bytes::from(v)));
            }
            hash_of(pairs, compact.hash)
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let n = r.count()?;
            let mut items = Vec::new();
            for _ in 0..n {
                let container = if kind == TYPE_LIST_QUICKLIST_2 {
                    r.len()?
                } else {
                    CONTAINER_PACKED
                };
                let blob = r.string()?;
                if blob.is_empty() {
                    return Err(DumpError::Corrupt("empty quicklist node"));
                }
                match container {
                    CONTAINER_PLAIN => items.push(Bytes::from(blob)),
                    CONTAINER_PACKED if kind == TYPE_LIST_QUICKLIST_2 => {
                        items.extend(read_listpack(&blob)?);
                    }
                    CONTAINER_PACKED => items.extend(read_ziplist(&blob)?),
                    _ => return Err(DumpError::Corrupt("unknown quicklist container")),
                }
            }
            list_of(items)
        }
        TYPE_LIST_ZIPLIST => list_of(read_ziplist(&r.string()?)?),
        TYPE_SET_INTSET => {
            let members = read_intset(&r.string()?)?;
            if members.is_empty() {
                return Err(DumpError::Corrupt("empty intset"));
            }
            // Every member is an integer: an intset unless there are too many.
            let set = SetValue::from_members(members.into_iter().collect(), compact.intset_entries);
            Ok(Value::Set(Box::new(set)))
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let items = if kind == TYPE_ZSET_LISTPACK {
                read_listpack(&blob)?
            } else {
                read_ziplist(&blob)?
            };
            let mut pairs = Vec::with_capacity(items.len() / 2);
            for pair in pairs_of(items)? {
                let (m, s) = pair;
                let score = parse_score(&s)?;
                pairs.push((m, score));
            }
            zset_of(pairs, zset)
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = r.string()?;
            let items = if kind == TYPE_HASH_LISTPACK {
                read_listpack(&blob)?
            } else {
                read_ziplist(&blob)?
            };
            // Redis checks a packed hash's length only, not its fields' and values'.
            let lp = Listpack {
                entries: compact.hash.entries,
                value: usize::MAX,
            };
            hash_of(pairs_of(items)?, lp)
        }
        TYPE_HASH_ZIPMAP => hash_of(read_zipmap(&r.string()?)?, compact.hash),
        stream::TYPE_STREAM_LISTPACKS | stream::TYPE_STREAM_LISTPACKS_2 => {
            Ok(Value::Stream(Box::new(stream::read_stream(&mut r, kind)?)))
        }
        _ => Err(DumpError::Corrupt(
            "not a string, list, set, sorted set, hash or stream",
        )),
    }
}

fn list_of(items: Vec<Bytes>) -> Result<Value, DumpError> {
    if items.is_empty() {
        return Err(DumpError::Corrupt("empty list"));
    }
    Ok(Value::List(Box::new(items.into_iter().collect())))
}

/// The hash of `pairs`, a table if it passes `lp` (see [`HashValue::from_pairs`]).
fn hash_of(pairs: Vec<(Bytes, Bytes)>, lp: Listpack) -> Result<Value, DumpError> {
    if pairs.is_empty() {
        return Err(DumpError::Corrupt("empty hash"));
    }
    let n = pairs.len();
    let h = HashValue::from_pairs(pairs, lp);
    // A field given twice replaced itself.
    if h.len() != n {
        return Err(DumpError::Corrupt("duplicate hash fields"));
    }
    Ok(Value::Hash(Box::new(h)))
}

fn zset_of(pairs: Vec<(Bytes, f64)>, lp: Listpack) -> Result<Value, DumpError> {
    if pairs.is_empty() {
        return Err(DumpError::Corrupt("empty sorted set"));
    }
    let mut z = ZSetValue::default();
    for (m, score) in pairs {
        if score.is_nan() {
            return Err(DumpError::Corrupt("sorted set score is NaN"));
        }
        if z.insert(&m, score).is_some() {
            return Err(DumpError::Corrupt("duplicate sorted set members"));
        }
    }
    z.fit_encoding(lp);
    Ok(Value::ZSet(Box::new(z)))
}

/// Splits a flat field/value sequence into pairs; an odd count is corrupt.
fn pairs_of(items: Vec<Bytes>) -> Result<Vec<(Bytes, Bytes)>, DumpError> {
    if !items.len().is_multiple_of(2) {
        return Err(DumpError::Corrupt(
            "odd number of entries in a pair container",
        ));
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        pairs.push((a, b));
    }
    Ok(pairs)
}

/// A listpack or ziplist score (`zzlGetScore`: an integer entry, or text read by `strtod`).
fn parse_score(text: &[u8]) -> Result<f64, DumpError> {
    let s = std::str::from_utf8(text).map_err(|_| DumpError::Corrupt("score is not text"))?;
    let v = match s {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s
            .parse::<f64>()
            .map_err(|_| DumpError::Corrupt("score is not a number"))?,
    };
    if v.is_nan() {
        return Err(DumpError::Corrupt("sorted set score is NaN"));
    }
    Ok(v)
}

/// A cursor over the payload.
#[derive(Debug)]
struct Reader<'a> {
    p: &'a [u8],
    pos: usize,
    limits: DumpLimits,
    inflated: usize,
}

const TRUNCATED: DumpError = DumpError::Corrupt("truncated");

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.p.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DumpError> {
        let end = self.pos.checked_add(n).ok_or(TRUNCATED)?;
        let s = self.p.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, DumpError> {
        let b = *self.p.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DumpError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Redis's `rdbLoadLenByRef`: a length, or (`Err(enc)`) a special string encoding.
    fn len_or_enc(&mut self) -> Result<Result<u64, u8>, DumpError> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Ok(u64::from(b & 0x3F)),
            1 => Ok((u64::from(b & 0x3F) << 8) | u64::from(self.byte()?)),
            3 => Err(b & 0x3F),
            _ if b == LEN_32BIT => Ok(u64::from(u32::from_be_bytes(self.array()?))),
            _ if b == LEN_64BIT => Ok(u64::from_be_bytes(self.array()?)),
            _ => return Err(DumpError::Corrupt("unknown length encoding")),
        })
    }

    fn len(&mut self) -> Result<u64, DumpError> {
        self.len_or_enc()?
            .map_err(|_| DumpError::Corrupt("encoded value where a length belongs"))
    }

    /// An element count: zero is an empty key (refused, as Redis's `emptykey`), and every
    /// element takes at least one byte, so a count past the bytes left is corrupt before
    /// anything is allocated for it.
    fn count(&mut self) -> Result<usize, DumpError> {
        let n = self.len()?;
        if n == 0 {
            return Err(DumpError::Corrupt("empty key"));
        }
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.left())
            .ok_or(DumpError::Corrupt("count past the end of the payload"))
    }

    /// Redis's `rdbGenericLoadStringObject`: an integer, LZF or plain string.
    fn string(&mut self) -> Result<Vec<u8>, DumpError> {
        match self.len_or_enc()? {
            Ok(len) => {
                let len = self.check_string_len(len)?;
                Ok(self.take(len)?.to_vec())
            }
            Err(ENC_INT8) => Ok(i8::from_le_bytes(self.array()?).to_string().into_bytes()),
            Err(ENC_INT16) => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
            Err(ENC_INT32) => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
            Err(ENC_LZF) => {
                let clen = self.len()?;
                let stated = self.len()?;
                let len = self.check_string_len(stated)?;
                let clen = usize::try_from(clen).map_err(|_| TRUNCATED)?;
                let input = self.take(clen)?;
                let total = self.inflated.saturating_add(len);
                if total > self.limits.inflated_bytes_max {
                    return Err(DumpError::TooLarge {
                        len: total as u64,
                        max: self.limits.inflated_bytes_max,
                    });
                }
                self.inflated = total;
                lzf_decompress(input, len)
            }
            Err(_) => Err(DumpError::Corrupt("unknown string encoding")),
        }
    }

    fn check_string_len(&self, len: u64) -> Result<usize, DumpError> {
        usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.limits.string_bytes_max)
            .ok_or(DumpError::TooLarge {
                len,
                max: self.limits.string_bytes_max,
            })
    }

    /// Redis's `rdbLoadDoubleValue` (the old ZSET type): a length byte (253 NaN, 254 +inf,
    /// 255 -inf) and that many bytes of text.
    fn text_double(&mut self) -> Result<f64, DumpError> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => parse_score(self.take(usize::from(n))?),
        }
    }
}

/// LZF decompression (`lzf_d.c`): literal runs (`000LLLLL`, L + 1 bytes) and back-references
/// (`LLLooooo oooooooo`, L + 2 bytes, L of 7 extended by a byte) copied from the output. The
/// output must come to exactly `len` bytes; it never grows past `len`.
fn lzf_decompress(input: &[u8], len: usize) -> Result<Vec<u8>, DumpError> {
    const BAD: DumpError = DumpError::Corrupt("invalid LZF data");
    // Grown as output is produced, so a false `len` allocates no more than the input yields.
    let mut out: Vec<u8> = Vec::with_capacity(len.min(input.len().saturating_mul(2)));
    let mut i = 0usize;
    while i < input.len() {
        let ctrl = usize::from(*input.get(i).ok_or(BAD)?);
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            if out.len() + run > len {
                return Err(BAD);
            }
            out.extend_from_slice(input.get(i..i + run).ok_or(BAD)?);
            i += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(i).ok_or(BAD)?);
                i += 1;
            }
            run += 2;
            let low = usize::from(*input.get(i).ok_or(BAD)?);
            i += 1;
            let back = ((ctrl & 0x1F) << 8) + low + 1;
            let from = out.len().checked_sub(back).ok_or(BAD)?;
            if out.len() + run > len {
                return Err(BAD);
            }
            for k in from..from + run {
                let b = *out.get(k).ok_or(BAD)?;
                out.push(b);
            }
        }
    }
    if out.len() != len {
        return Err(BAD);
    }
    Ok(out)
}

/// The entries of a listpack, validated as `lpValidateIntegrity` does in deep mode: the header's
/// size equals the blob's, each entry's encoding and back-length agree and stay inside the
/// blob, the terminator ends it, and the count (unless 65535) matches.
fn read_listpack(lp: &[u8]) -> Result<Vec<Bytes>, DumpError> {
    const BAD: DumpError = DumpError::Corrupt("listpack integrity check failed");
    let header = lp.get(..LP_HEADER_BYTES).ok_or(BAD)?;
    let total = u32::from_le_bytes([
        *header.first().ok_or(BAD)?,
        *header.get(1).ok_or(BAD)?,
        *header.get(2).ok_or(BAD)?,
        *header.get(3).ok_or(BAD)?,
    ]) as usize;
    let count = u16::from_le_bytes([*header.get(4).ok_or(BAD)?, *header.get(5).ok_or(BAD)?]);
    if total != lp.len() || lp.last() != Some(&LP_EOF) {
        return Err(BAD);
    }
    let body = lp.get(LP_HEADER_BYTES..lp.len() - 1).ok_or(BAD)?;
    let mut items = Vec::new();
    let mut i = 0usize;
    while i < body.len() {
        let start = i;
        let b = *body.get(i).ok_or(BAD)?;
        let at = |k: usize| body.get(start + k).copied().ok_or(BAD);
        let (value, data_end): (Vec<u8>, usize) = if b & 0x80 == 0 {
            (i64::from(b).to_string().into_bytes(), start + 1)
        } else if b & 0xC0 == 0x80 {
            let n = usize::from(b & 0x3F);
            (
                body.get(start + 1..start + 1 + n).ok_or(BAD)?.to_vec(),
                start + 1 + n,
            )
        } else if b & 0xE0 == 0xC0 {
            let u = (i64::from(b & 0x1F) << 8) | i64::from(at(1)?);
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            (v.to_string().into_bytes(), start + 2)
        } else if b & 0xF0 == 0xE0 {
            let n = (usize::from(b & 0x0F) << 8) | usize::from(at(1)?);
            (
                body.get(start + 2..start + 2 + n).ok_or(BAD)?.to_vec(),
                start + 2 + n,
            )
        } else if b == 0xF0 {
            let n = u32::from_le_bytes([at(1)?, at(2)?, at(3)?, at(4)?]) as usize;
            let end = (start + 5).checked_add(n).ok_or(BAD)?;
            (body.get(start + 5..end).ok_or(BAD)?.to_vec(), end)
        } else {
            let width = match b {
                0xF1 => 2,
                0xF2 => 3,
                0xF3 => 4,
                0xF4 => 8,
                _ => return Err(BAD),
            };
            let raw = body.get(start + 1..start + 1 + width).ok_or(BAD)?;
            let mut le = [0u8; 8];
            le.get_mut(..width).ok_or(BAD)?.copy_from_slice(raw);
            // Sign-extend from `width` bytes.
            let shift = 64 - 8 * width as u32;
            let v = (i64::from_le_bytes(le) << shift) >> shift;
            (v.to_string().into_bytes(), start + 1 + width)
        };
        let entry = (data_end - start) as u64;
        let mut expect = Vec::with_capacity(5);
        lp_put_backlen(&mut expect, entry);
        let backlen = body.get(data_end..data_end + expect.len()).ok_or(BAD)?;
        if backlen != expect.as_slice() {
            return Err(BAD);
        }
        i = data_end + expect.len();
        items.push(Bytes::from(value));
    }
    if count != COUNT_UNKNOWN && usize::from(count) != items.len() {
        return Err(BAD);
    }
    Ok(items)
}

/// The entries of a ziplist (`ziplist.c`), validated as `ziplistValidateIntegrity` does in deep
/// mode: header size and tail offset, each entry's prevlen equal to the previous entry's
/// size, the terminator, and the count (unless 65535).
fn read_ziplist(zl: &[u8]) -> Result<Vec<Bytes>, DumpError> {
    const BAD: DumpError = DumpError::Corrupt("ziplist integrity check failed");
    let u32_at = |k: usize| -> Result<usize, DumpError> {
        let s = zl.get(k..k + 4).ok_or(BAD)?;
        Ok(u32::from_le_bytes([
            *s.first().ok_or(BAD)?,
            *s.get(1).ok_or(BAD)?,
            *s.get(2).ok_or(BAD)?,
            *s.get(3).ok_or(BAD)?,
        ]) as usize)
    };
    let total = u32_at(0)?;
    let tail = u32_at(4)?;
    let count = u16::from_le_bytes([*zl.get(8).ok_or(BAD)?, *zl.get(9).ok_or(BAD)?]);
    if total != zl.len() || zl.last() != Some(&0xFF) || zl.len() < ZL_HEADER_BYTES + 1 {
        return Err(BAD);
    }
    let end = zl.len() - 1;
    let mut items = Vec::new();
    let mut i = ZL_HEADER_BYTES;
    let mut prev_size = 0usize;
    let mut last_start = ZL_HEADER_BYTES;
    while i < end {
        let start = i;
        let at = |k: usize| zl.get(k).copied().ok_or(BAD);
        let (prevlen, mut p) = if at(i)? < ZL_BIG_PREVLEN {
            (usize::from(at(i)?), i + 1)
        } else if at(i)? == ZL_BIG_PREVLEN {
            (u32_at(i + 1)?, i + 5)
        } else {
            return Err(BAD);
        };
        if prevlen != prev_size {
            return Err(BAD);
        }
        let enc = at(p)?;
        let value: Vec<u8> = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3F);
                p += 1;
                let v = zl.get(p..p + n).ok_or(BAD)?.to_vec();
                p += n;
                v
            }
            1 => {
                let n = (usize::from(enc & 0x3F) << 8) | usize::from(at(p + 1)?);
                p += 2;
                let v = zl.get(p..p + n).ok_or(BAD)?.to_vec();
                p += n;
                v
            }
            2 => {
                if enc != 0x80 {
                    return Err(BAD);
                }
                let n =
                    u32::from_be_bytes([at(p + 1)?, at(p + 2)?, at(p + 3)?, at(p + 4)?]) as usize;
                p += 5;
                let e = p.checked_add(n).ok_or(BAD)?;
                let v = zl.get(p..e).ok_or(BAD)?.to_vec();
                p = e;
                v
            }
            _ => {
                p += 1;
                let (width, imm): (usize, Option<i64>) = match enc {
                    0xC0 => (2, None),
                    0xD0 => (4, None),
                    0xE0 => (8, None),
                    0xF0 => (3, None),
                    0xFE => (1, None),
                    0xF1..=0xFD => (0, Some(i64::from(enc & 0x0F) - 1)),
                    _ => return Err(BAD),
                };
                let v = match imm {
                    Some(v) => v,
                    None => {
                        let raw = zl.get(p..p + width).ok_or(BAD)?;
                        let mut le = [0u8; 8];
                        le.get_mut(..width).ok_or(BAD)?.copy_from_slice(raw);
                        let shift = 64 - 8 * width as u32;
                        (i64::from_le_bytes(le) << shift) >> shift
                    }
                };
                p += width;
                v.to_string().into_bytes()
            }
        };
        if p > end {
            return Err(BAD);
        }
        prev_size = p - start;
        last_start = start;
        i = p;
        items.push(Bytes::from(value));
    }
    if i != end || (!items.is_empty() && tail != last_start) {
        return Err(BAD);
    }
    if count != COUNT_UNKNOWN && usize::from(count) != items.len() {
        return Err(BAD);
    }
    Ok(items)
}

/// The members of an intset (`intset.c`): encoding width (2, 4 or 8) and count, then the
/// values little-endian, strictly ascending (which also rules out duplicates).
fn read_intset(is: &[u8]) -> Result<Vec<Bytes>, DumpError> {
    const BAD: DumpError = DumpError::Corrupt("intset integrity check failed");
    let word = |k: usize| -> Result<usize, DumpError> {
        let s = is.get(k..k + 4).ok_or(BAD)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(s);
        Ok(u32::from_le_bytes(a) as usize)
    };
    let width = word(0)?;
    let count = word(4)?;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != Some(is.len() - 8) {
        return Err(BAD);
    }
    let mut members = Vec::with_capacity(count);
    let mut prev: Option<i64> = None;
    for chunk in is.get(8..).ok_or(BAD)?.chunks_exact(width) {
        let mut le = [0u8; 8];
        le.get_mut(..width).ok_or(BAD)?.copy_from_slice(chunk);
        let shift = 64 - 8 * width as u32;
        let v = (i64::from_le_bytes(le) << shift) >> shift;
        if prev.is_some_and(|p| p >= v) {
            return Err(BAD);
        }
        prev = Some(v);
        members.push(Bytes::from(v.to_string()));
    }
    Ok(members)
}

/// The field/value pairs of a zipmap (Redis ≤ 2.4, `zipmap.c`): a count byte, then per pair
/// the field's length and bytes, the value's length, a free-bytes count, the value and its
/// free bytes; lengths of 254 and over take a 4-byte little-endian length; 255 ends it.
fn read_zipmap(zm: &[u8]) -> Result<Vec<(Bytes, Bytes)>, DumpError> {
    const BAD: DumpError = DumpError::Corrupt("zipmap integrity check failed");
    let mut i = 1usize;
    let at = |k: usize| zm.get(k).copied().ok_or(BAD);
    let len_at = |k: usize| -> Result<(usize, usize), DumpError> {
        let b = at(k)?;
        if b < 254 {
            Ok((usize::from(b), k + 1))
        } else if b == 254 {
            let s = zm.get(k + 1..k + 5).ok_or(BAD)?;
            let mut a = [0u8; 4];
            a.copy_from_slice(s);
            Ok((u32::from_le_bytes(a) as usize, k + 5))
        } else {
            Err(BAD)
        }
    };
    let mut pairs = Vec::new();
    loop {
        if at(i)? == 255 {
            i += 1;
            break;
        }
        let (flen, p) = len_at(i)?;
        let fend = p.checked_add(flen).ok_or(BAD)?;
        let field = zm.get(p..fend).ok_or(BAD)?;
        let (vlen, p) = len_at(fend)?;
        let free = usize::from(at(p)?);
        let vstart = p + 1;
        let vend = vstart.checked_add(vlen).ok_or(BAD)?;
        let value = zm.get(vstart..vend).ok_or(BAD)?;
        i = vend.checked_add(free).ok_or(BAD)?;
        pairs.push((Bytes::copy_from_slice(field), Bytes::copy_from_slice(value)));
    }
    let stated = usize::from(at(0)?);
    if i != zm.len() || (stated < 254 && stated != pairs.len()) {
        return Err(BAD);
    }
    Ok(pairs)
}

/// The fuzz target `rdb_payload`'s body: reads arbitrary bytes as a payload whose footer was
/// accepted (a fuzzer cannot forge the CRC), with small limits; a value that reads back is
/// written again and must read back the same. `cargo test` replays the committed corpus
/// through it.
///
/// # Panics
/// Only when the decoder or the round trip misbehaves, which is the point of a fuzz target.
pub fn fuzz_rdb_payload(data: &[u8]) {
    let limits = DumpLimits {
        string_bytes_max: 1 << 20,
        inflated_bytes_max: 1 << 22,
    };
    if let Ok(value) = decode_dump(data, Listpack::default(), Compact::default(), limits) {
        let again = encode_dump(Stored::Value(&value));
        assert_eq!(
            check_footer(&again),
            Ok(()),
            "a written payload fails its own footer"
        );
        let back = decode_dump(&again, Listpack::default(), Compact::default(), limits);
        if let Value::Stream(_) = value {
            // A stream's nodes are written with their live entries only, so what reads back
            // may count fewer entries ever appended per node; written again, it must give
            // the same bytes.
            let back = back.as_ref().map(|v| encode_dump(Stored::Value(v)));
            assert_eq!(
                back,
                Ok(again),
                "a stream does not read back what was written"
            );
        } else {
            assert_eq!(
                back.as_ref(),
                Ok(&value),
                "a payload does not read back what was written"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn crc64_is_jones() {
        // crc64.c's own test vector.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn integers_and_lengths_encode_as_rdb_does() {
        let mut out = Vec::new();
        put_string(&mut out, b"12");
        put_string(&mut out, b"-129");
        put_string(&mut out, b"70000");
        put_string(&mut out, b"012");
        assert_eq!(out, unhex("c00cc17fffc27011010003303132"));
        let mut out = Vec::new();
        put_len(&mut out, 63);
        put_len(&mut out, 64);
        put_len(&mut out, 16_384);
        assert_eq!(out, unhex("3f40408000004000"));
    }

    #[test]
    fn lzf_literals_and_back_references() {
        // "aaaaaaaaaa": one literal 'a', then a long back-reference (7 + 0 + 2 bytes) at
        // distance 1.
        assert_eq!(
            lzf_decompress(&unhex("0061e00000"), 10).unwrap(),
            b"aaaaaaaaaa"
        );
        // A short reference: 6 + 2 bytes.
        assert_eq!(lzf_decompress(&unhex("0061c000"), 9).unwrap(), b"aaaaaaaaa");
        // A reference before the start of the output is corrupt.
        assert!(lzf_decompress(&unhex("0061c001"), 9).is_err());
        // A stated length the data does not reach is corrupt.
        assert!(lzf_decompress(&unhex("0061c000"), 10).is_err());
    }

    fn lzf_payload(len: usize) -> Vec<u8> {
        // A string of `len` 'a's: a literal 'a', then references of 264 bytes at distance 1.
        let mut data = vec![0x00, b'a'];
        let mut left = len - 1;
        while left > 0 {
            let run = left.min(264);
            if run >= 9 {
                data.extend_from_slice(&[0xE0, (run - 9) as u8, 0x00]);
            } else {
                data.extend_from_slice(&[((run - 2) as u8) << 5, 0x00]);
            }
            left -= run;
        }
        let mut p = vec![TYPE_STRING, 0xC3];
        put_len(&mut p, data.len() as u64);
        put_len(&mut p, len as u64);
        p.extend_from_slice(&data);
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn string_bytes_limit_at_max_and_max_plus_one() {
        let limits = DumpLimits {
            string_bytes_max: 1000,
            inflated_bytes_max: usize::MAX,
        };
        let ok = decode_dump(
            &lzf_payload(1000),
            Listpack::default(),
            Compact::default(),
            limits,
        )
        .unwrap();
        assert_eq!(ok, Value::Str(vec![b'a'; 1000]));
        assert_eq!(
            decode_dump(
                &lzf_payload(1001),
                Listpack::default(),
                Compact::default(),
                limits
            ),
            Err(DumpError::TooLarge {
                len: 1001,
                max: 1000
            })
        );
    }

    #[test]
    fn inflated_bytes_limit_at_max_and_max_plus_one() {
        let limits = DumpLimits {
            string_bytes_max: usize::MAX,
            inflated_bytes_max: 5000,
        };
        assert!(
            decode_dump(
                &lzf_payload(5000),
                Listpack::default(),
                Compact::default(),
                limits
            )
            .is_ok()
        );
        assert_eq!(
            decode_dump(
                &lzf_payload(5001),
                Listpack::default(),
                Compact::default(),
                limits
            ),
            Err(DumpError::TooLarge {
                len: 5001,
                max: 5000
            })
        );
    }

    #[test]
    fn listpack_round_trips_every_integer_width() {
        let values: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "32768",
            "-8388608",
            "8388607",
            "8388608",
            "-2147483648",
            "2147483647",
            "2147483648",
            "-9223372036854775808",
            "9223372036854775807",
            "9223372036854775808",
            "01",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
        ])
        .chain([vec![b'v'; 300_000]])
        .collect();
        let mut lp = ListpackWriter::new();
        for v in &values {
            lp.push(v);
        }
        let blob = lp.finish();
        let back = read_listpack(&blob).unwrap();
        assert_eq!(back.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), values);
    }

    #[test]
    fn listpack_faults_are_corrupt() {
        let mut lp = ListpackWriter::new();
        lp.push(b"hello");
        lp.push(b"1000");
        let blob = lp.finish();
        for cut in 0..blob.len() {
            assert!(
                read_listpack(blob.get(..cut).unwrap()).is_err(),
                "cut {cut}"
            );
        }
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            // Every single-bit flip either fails or still decodes to two entries.
            if let Ok(items) = read_listpack(&bad) {
                assert_eq!(items.len(), 2);
            }
        }
    }

    #[test]
    fn score_text_as_d2string() {
        assert_eq!(score_text(1.0), "1");
        assert_eq!(score_text(-3.0), "-3");
        assert_eq!(score_text(1.5), "1.5");
        assert_eq!(score_text(0.1), "0.10000000000000001");
        assert_eq!(score_text(1e18), "1000000000000000000");
        assert_eq!(score_text(1e300), "1.0000000000000001e+300");
        assert_eq!(score_text(f64::INFINITY), "inf");
        assert_eq!(score_text(0.0), "0");
    }
}
