//! Pure encode and decode of Kafka RecordBatch v2, the byte format of every segment file.
//!
//! A batch is a 61-byte big-endian header followed by `record_count` records whose integers are
//! zigzag varints. CRC-32C covers everything from `attributes` (byte 21) to the end of the batch,
//! so `base_offset`, `batch_length`, `partition_leader_epoch` and `magic` sit outside it and are
//! checked structurally instead. No I/O here; `docs/formats.md` (log section) draws the layout and the
//! `OFF_*` constants below match it field for field.

#![deny(clippy::indexing_slicing)]

use bytes::Bytes;

use super::{BATCH_BYTES_MAX, Header, Record, StoredRecord};

/// Bytes before `batch_length`'s payload: `base_offset` (8) + `batch_length` (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Size of the fixed batch header.
pub(crate) const BATCH_HEADER_BYTES: usize = 61;
/// The only supported `magic` value.
pub(crate) const MAGIC_V2: u8 = 2;
/// Offset of `base_offset` (i64).
const OFF_BASE_OFFSET: usize = 0;
/// Offset of `batch_length` (i32): bytes after this field.
const OFF_BATCH_LENGTH: usize = 8;
/// Offset of `partition_leader_epoch` (i32).
const OFF_LEADER_EPOCH: usize = 12;
/// Offset of `magic` (i8).
const OFF_MAGIC: usize = 16;
/// Offset of `crc` (u32, CRC-32C of bytes `OFF_ATTRIBUTES..`).
const OFF_CRC: usize = 17;
/// Offset of `attributes` (i16); the CRC starts here.
const OFF_ATTRIBUTES: usize = 21;
/// Offset of `last_offset_delta` (i32).
const OFF_LAST_OFFSET_DELTA: usize = 23;
/// Offset of `base_timestamp` (i64).
const OFF_BASE_TIMESTAMP: usize = 27;
/// Offset of `max_timestamp` (i64).
const OFF_MAX_TIMESTAMP: usize = 35;
/// Offset of `producer_id` (i64).
const OFF_PRODUCER_ID: usize = 43;
/// Offset of `producer_epoch` (i16).
const OFF_PRODUCER_EPOCH: usize = 51;
/// Offset of `base_sequence` (i32).
const OFF_BASE_SEQUENCE: usize = 53;
/// Offset of `record_count` (i32).
const OFF_RECORD_COUNT: usize = 57;
/// Attribute bits for the compression codec; only 0 (none) is written or accepted.
const ATTR_COMPRESSION_MASK: i16 = 0x07;

const _: () = assert!(OFF_RECORD_COUNT + 4 == BATCH_HEADER_BYTES);
const _: () = assert!(OFF_BATCH_LENGTH + 4 == LOG_OVERHEAD);
const _: () = assert!(BATCH_BYTES_MAX < i32::MAX as usize);

/// What one batch's header says, after verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// Records in the batch.
    pub record_count: u32,
    /// Timestamp of the first record, in ms.
    pub base_timestamp_ms: i64,
    /// Largest record timestamp, in ms.
    pub max_timestamp_ms: i64,
    /// Total bytes of the batch including the 12-byte log overhead.
    pub len: usize,
}

/// Why bytes do not decode as a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The input ends before the batch does; `needed` bytes (from the batch start) would hold it.
    /// Not a failure in a stream: more bytes may arrive, or it is a torn tail.
    Incomplete {
        /// Bytes needed from the batch start (at least the header when the length is unknown).
        needed: usize,
    },
    /// The bytes are not a valid batch.
    Invalid {
        /// Which check failed.
        reason: String,
        /// Total batch length the header claims, when it is sane; lets recovery tell a bad
        /// last batch (torn tail) from a bad batch in the middle.
        claimed_len: Option<usize>,
    },
}

/// Bytes a record counts against `max.message.bytes`: key + value + header keys and values.
#[must_use]
pub fn record_bytes(record: &Record) -> u64 {
    counted_bytes(
        record.key.as_deref(),
        record.value.as_deref(),
        record
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref())),
    )
}

/// Key + value + header keys and values, in bytes: what `max.message.bytes` limits.
pub(crate) fn counted_bytes<'a>(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> u64 {
    let len = |b: Option<&[u8]>| b.map_or(0, |b| b.len() as u64);
    let headers: u64 = headers.map(|(k, v)| k.len() as u64 + len(v)).sum();
    len(key) + len(value) + headers
}

/// Encodes `records` as one RecordBatch v2 starting at `base_offset` and appends it to `out`.
/// Records without a timestamp get `default_timestamp_ms`. `records` must not be empty and
/// must fit [`BATCH_BYTES_MAX`] (the caller checks both against its limits first).
pub fn encode_batch(
    base_offset: u64,
    default_timestamp_ms: i64,
    records: &[Record],
    out: &mut Vec<u8>,
) -> BatchInfo {
    debug_assert!(!records.is_empty(), "empty batches are never written");
    let start = out.len();
    out.resize(start + BATCH_HEADER_BYTES, 0);
    let ts = |r: &Record| r.timestamp_ms.unwrap_or(default_timestamp_ms);
    let base_ts = records.first().map_or(default_timestamp_ms, ts);
    let max_ts = records.iter().map(ts).max().unwrap_or(base_ts);
    let mut body = Vec::with_capacity(64);
    for (delta, record) in records.iter().enumerate() {
        body.clear();
        body.push(0); // record attributes: unused
        put_varlong(&mut body, ts(record).wrapping_sub(base_ts));
        put_varint(&mut body, i32::try_from(delta).unwrap_or(i32::MAX));
        put_bytes(&mut body, record.key.as_deref());
        put_bytes(&mut body, record.value.as_deref());
        put_varint(
            &mut body,
            i32::try_from(record.headers.len()).unwrap_or(i32::MAX),
        );
        for header in &record.headers {
            put_bytes(&mut body, Some(header.key.as_bytes()));
            put_bytes(&mut body, header.value.as_deref());
        }
        put_varint(out, i32::try_from(body.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(&body);
    }
    let len = out.len() - start;
    let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
    let mut header = [0u8; BATCH_HEADER_BYTES];
    write_be(&mut header, OFF_BASE_OFFSET, &base_offset.to_be_bytes());
    let batch_length = u32::try_from(len - LOG_OVERHEAD).unwrap_or(u32::MAX);
    write_be(&mut header, OFF_BATCH_LENGTH, &batch_length.to_be_bytes());
    write_be(&mut header, OFF_LEADER_EPOCH, &0i32.to_be_bytes());
    write_be(&mut header, OFF_MAGIC, &[MAGIC_V2]);
    write_be(&mut header, OFF_ATTRIBUTES, &0i16.to_be_bytes());
    write_be(
        &mut header,
        OFF_LAST_OFFSET_DELTA,
        &(count.saturating_sub(1)).to_be_bytes(),
    );
    write_be(&mut header, OFF_BASE_TIMESTAMP, &base_ts.to_be_bytes());
    write_be(&mut header, OFF_MAX_TIMESTAMP, &max_ts.to_be_bytes());
    write_be(&mut header, OFF_PRODUCER_ID, &(-1i64).to_be_bytes());
    write_be(&mut header, OFF_PRODUCER_EPOCH, &(-1i16).to_be_bytes());
    write_be(&mut header, OFF_BASE_SEQUENCE, &(-1i32).to_be_bytes());
    write_be(&mut header, OFF_RECORD_COUNT, &count.to_be_bytes());
    if let Some(dst) = out.get_mut(start..start + BATCH_HEADER_BYTES) {
        dst.copy_from_slice(&header);
    }
    let crc = out.get(start + OFF_ATTRIBUTES..).map_or(0, crc32c);
    if let Some(dst) = out.get_mut(start + OFF_CRC..start + OFF_CRC + 4) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
    BatchInfo {
        base_offset,
        last_offset: base_offset + u64::from(count.saturating_sub(1)),
        record_count: count,
        base_timestamp_ms: base_ts,
        max_timestamp_ms: max_ts,
        len,
    }
}

/// CRC-32C (Castagnoli, Kafka's batch checksum) of `bytes`, on the widest SIMD path the CPU
/// has (AVX-512 VPCLMULQDQ folding where available, detected at run time).
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    // The 32-bit algorithm's result always fits in the low 32 bits.
    u32::try_from(crc_fast::checksum(
        crc_fast::CrcAlgorithm::Crc32Iscsi,
        bytes,
    ))
    .unwrap_or(0)
}

/// Copies `bytes` into `buf` at `at` (a fixed header position; never out of range).
fn write_be(buf: &mut [u8; BATCH_HEADER_BYTES], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Reads and verifies the batch header at the start of `buf`, including the CRC over the whole
/// batch. `buf` may hold more bytes after the batch.
///
/// # Errors
/// [`BatchError::Incomplete`] when `buf` ends early, [`BatchError::Invalid`] otherwise.
pub fn decode_batch_info(buf: &[u8]) -> Result<BatchInfo, BatchError> {
    decode_header(buf, true)
}

/// Reads the batch header at the start of `buf` and checks its framing (length, magic, record
/// count) but not its CRC — what a Kafka broker does before handing raw batches to a consumer,
/// which verifies the CRC itself.
///
/// # Errors
/// As [`decode_batch_info`], minus the CRC check.
pub fn decode_batch_frame(buf: &[u8]) -> Result<BatchInfo, BatchError> {
    decode_header(buf, false)
}

fn decode_header(buf: &[u8], verify_crc: bool) -> Result<BatchInfo, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Incomplete {
            needed: BATCH_HEADER_BYTES,
        });
    }
    let invalid = |reason: String, claimed_len| BatchError::Invalid {
        reason,
        claimed_len,
    };
    let batch_length = be_i32(buf, OFF_BATCH_LENGTH);
    let min_len = BATCH_HEADER_BYTES - LOG_OVERHEAD;
    let body_len = usize::try_from(batch_length).unwrap_or(0);
    if body_len < min_len || body_len + LOG_OVERHEAD > BATCH_BYTES_MAX {
        return Err(invalid(
            format!("batch_length {batch_length} is impossible"),
            None,
        ));
    }
    let len = body_len + LOG_OVERHEAD;
    if buf.len() < BATCH_HEADER_BYTES.max(len) {
        return Err(BatchError::Incomplete { needed: len });
    }
    let Some(batch) = buf.get(..len) else {
        return Err(BatchError::Incomplete { needed: len });
    };
    let magic = batch.get(OFF_MAGIC).copied().unwrap_or(0);
    if magic != MAGIC_V2 {
        return Err(invalid(
            format!("magic {magic}, expected {MAGIC_V2}"),
            Some(len),
        ));
    }
    let stored_crc = be_u32(batch, OFF_CRC);
    let crc = if verify_crc {
        batch.get(OFF_ATTRIBUTES..).map_or(0, crc32c)
    } else {
        stored_crc
    };
    if crc != stored_crc {
        return Err(invalid(
            format!("CRC-32C {crc:#010x} does not match stored {stored_crc:#010x}"),
            Some(len),
        ));
    }
    let base_offset = be_i64(batch, OFF_BASE_OFFSET);
    let attributes = be_i16(batch, OFF_ATTRIBUTES);
    let last_delta = be_i32(batch, OFF_LAST_OFFSET_DELTA);
    let count = be_i32(batch, OFF_RECORD_COUNT);
    if base_offset < 0 {
        return Err(invalid(
            format!("negative base offset {base_offset}"),
            Some(len),
        ));
    }
    if attributes & ATTR_COMPRESSION_MASK != 0 {
        return Err(invalid(
            format!("compressed batches are not supported (attributes {attributes})"),
            Some(len),
        ));
    }
    if count < 1 || last_delta != count - 1 {
        return Err(invalid(
            format!("record_count {count} with last_offset_delta {last_delta}"),
            Some(len),
        ));
    }
    let base_offset = u64::try_from(base_offset).unwrap_or(0);
    let record_count = u32::try_from(count).unwrap_or(0);
    Ok(BatchInfo {
        base_offset,
        last_offset: base_offset + u64::from(record_count - 1),
        record_count,
        base_timestamp_ms: be_i64(batch, OFF_BASE_TIMESTAMP),
        max_timestamp_ms: be_i64(batch, OFF_MAX_TIMESTAMP),
        len,
    })
}

/// Decodes the batch at the start of `buf` (verifying it as [`decode_batch_info`] does) and
/// pushes its records with offset `>= min_offset` onto `out`. Keys, values and header values are
/// zero-copy slices of `buf`.
///
/// # Errors
/// As [`decode_batch_info`], plus [`BatchError::Invalid`] when a record does not parse or the
/// records do not fill the batch exactly.
pub fn decode_batch(
    buf: &Bytes,
    min_offset: u64,
    out: &mut Vec<StoredRecord>,
) -> Result<BatchInfo, BatchError> {
    let info = decode_batch_info(buf)?;
    let batch = buf.get(..info.len).unwrap_or_default();
    // Every record takes at least 7 bytes, which bounds the reservation by the input.
    out.reserve((info.record_count as usize).min(batch.len() / 7));
    for record in BatchRecords::new(batch, info) {
        let record = record?;
        if record.offset >= min_offset {
            out.push(record.to_stored(buf));
        }
    }
    Ok(info)
}

/// One record of a batch, borrowed from the batch's bytes: reading it copies and allocates
/// nothing. Produced by [`BatchRecords`], which has already checked that every field parses
/// and that header keys are UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Its offset in the partition.
    pub offset: u64,
    /// Create time in ms since the epoch.
    pub timestamp_ms: i64,
    /// Key; `None` is Kafka's null.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Number of headers.
    header_count: usize,
    /// The encoded headers (already validated).
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Number of headers.
    #[must_use]
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// The headers in order: `(key, value)`, borrowed.
    #[must_use]
    pub fn headers(&self) -> HeaderViews<'a> {
        HeaderViews {
            cur: Cursor {
                buf: self.headers,
                pos: 0,
            },
            left: self.header_count,
        }
    }

    /// Bytes the record counts against `max.message.bytes` (as [`record_bytes`]).
    #[must_use]
    pub fn bytes_len(&self) -> u64 {
        counted_bytes(self.key, self.value, self.headers())
    }

    /// An owned record whose key, value and header values are zero-copy slices of `batch`,
    /// the buffer this view was decoded from.
    #[must_use]
    pub fn to_stored(&self, batch: &Bytes) -> StoredRecord {
        // `slice_ref` panics only for a slice outside `batch`; every view slice was cut from it.
        let owned = |b: Option<&[u8]>| b.map(|b| batch.slice_ref(b));
        StoredRecord {
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: owned(self.key),
            value: owned(self.value),
            headers: self
                .headers()
                .map(|(key, value)| Header {
                    key: key.to_owned(),
                    value: owned(value),
                })
                .collect(),
        }
    }
}

/// The headers of a [`RecordView`], in order.
#[derive(Debug, Clone)]
pub struct HeaderViews<'a> {
    /// Over the encoded headers.
    cur: Cursor<'a>,
    /// Headers not yet yielded.
    left: usize,
}

impl<'a> Iterator for HeaderViews<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The record decoder validated these bytes; a failure here ends the iteration.
        let key = self.cur.bytes().flatten()?;
        let key = std::str::from_utf8(key).ok()?;
        let value = self.cur.bytes()?;
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// The records of one batch whose header has been verified, decoded lazily one at a time as
/// [`RecordView`]s. Yields an error (and then stops) when a record does not parse or the
/// records do not fill the batch exactly.
#[derive(Debug, Clone)]
pub struct BatchRecords<'a> {
    /// Over the batch body (after the 61-byte header).
    cur: Cursor<'a>,
    /// The batch's verified header.
    info: BatchInfo,
    /// Offset delta of the next record.
    next_delta: u32,
    /// Set once an error was yielded or the end checked.
    finished: bool,
}

impl<'a> BatchRecords<'a> {
    /// The records of `batch` (exactly one batch, as `info.len` bytes), whose header `info`
    /// was decoded from it by [`decode_batch_info`] (or, for batches the log read back,
    /// [`decode_batch_frame`] after the CRC was checked).
    #[must_use]
    pub fn new(batch: &'a [u8], info: BatchInfo) -> Self {
        let body = batch
            .get(BATCH_HEADER_BYTES..info.len.min(batch.len()))
            .unwrap_or_default();
        Self {
            cur: Cursor { buf: body, pos: 0 },
            info,
            next_delta: 0,
            finished: false,
        }
    }

    /// Decodes the record at the cursor.
    fn decode_one(&mut self) -> Result<RecordView<'a>, BatchError> {
        let invalid = |reason: &str| BatchError::Invalid {
            reason: reason.to_owned(),
            claimed_len: Some(self.info.len),
        };
        let cur = &mut self.cur;
        let rec_len = cur
            .varint()
            .ok_or_else(|| invalid("record length does not parse"))?;
        let rec_len = usize::try_from(rec_len).map_err(|_| invalid("negative record length"))?;
        let rec_start = cur.pos;
        cur.byte()
            .ok_or_else(|| invalid("record attributes missing"))?;
        let ts_delta = cur
            .varlong()
            .ok_or_else(|| invalid("timestamp delta does not parse"))?;
        let offset_delta = cur
            .varint()
            .ok_or_else(|| invalid("offset delta does not parse"))?;
        if u32::try_from(offset_delta).ok() != Some(self.next_delta) {
            return Err(invalid("offset deltas are not consecutive"));
        }
        let key = cur.bytes().ok_or_else(|| invalid("key does not parse"))?;
        let value = cur.bytes().ok_or_else(|| invalid("value does not parse"))?;
        let header_count = cur
            .varint()
            .ok_or_else(|| invalid("header count does not parse"))?;
        let header_count =
            usize::try_from(header_count).map_err(|_| invalid("negative header count"))?;
        let headers_start = cur.pos;
        for _ in 0..header_count {
            let name = cur
                .bytes()
                .flatten()
                .ok_or_else(|| invalid("header key does not parse"))?;
            std::str::from_utf8(name).map_err(|_| invalid("header key is not UTF-8"))?;
            cur.bytes()
                .ok_or_else(|| invalid("header value does not parse"))?;
        }
        if cur.pos - rec_start != rec_len {
            return Err(invalid("record length does not match its fields"));
        }
        let headers = cur.buf.get(headers_start..cur.pos).unwrap_or_default();
        let view = RecordView {
            offset: self.info.base_offset + u64::from(self.next_delta),
            timestamp_ms: self.info.base_timestamp_ms.wrapping_add(ts_delta),
            key,
            value,
            header_count,
            headers,
        };
        self.next_delta += 1;
        Ok(view)
    }
}

impl<'a> Iterator for BatchRecords<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.next_delta < self.info.record_count {
            let one = self.decode_one();
            self.finished = one.is_err();
            return Some(one);
        }
        self.finished = true;
        (self.cur.remaining() != 0).then(|| {
            Err(BatchError::Invalid {
                reason: "bytes left after the last record".to_owned(),
                claimed_len: Some(self.info.len),
            })
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.info.record_count - self.next_delta.min(self.info.record_count)) as usize;
        (0, Some(left + 1))
    }
}

/// A bounds-checked reader over a batch body.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    /// The body.
    buf: &'a [u8],
    /// Next byte to read.
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Option<u8> {
        let b = self.buf.get(self.pos).copied()?;
        self.pos += 1;
        Some(b)
    }

    /// An unsigned LEB128 of at most `max_bytes` bytes.
    fn uvarint(&mut self, max_bytes: u32) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        let raw = u32::try_from(self.uvarint(5)? & 0xffff_ffff).ok()?;
        Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Option<i64> {
        let raw = self.uvarint(10)?;
        Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A length-prefixed byte string; length -1 is `None`.
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len == -1 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let out = self.buf.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(Some(out))
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_uvarint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, i32::try_from(b.len()).unwrap_or(i32::MAX));
            out.extend_from_slice(b);
        }
    }
}

fn be_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = buf.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(be_array(buf, at))
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(be_array(buf, at))
}

fn be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(be_array(buf, at))
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(be_array(buf, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_castagnoli_check_value() {
        // The standard check input of CRC-32C (iSCSI), and a length past the SIMD block sizes
        // against the bitwise definition.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut crc = !0u32;
        for &b in &data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        assert_eq!(crc32c(&data), !crc);
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Cursor { buf: &out, pos: 0 }.varint(), Some(v));
        }
        for v in [0, -1, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(Cursor { buf: &out, pos: 0 }.varlong(), Some(v));
        }
    }
}
