//! Reads: verified batches and records from an offset up to a byte budget, the offset of a
//! timestamp, and the reused read buffers.
//!
//! Readers never take the writer's lock for I/O: they copy the segment handles they need under
//! the partition lock, then read with positional reads, bounded by each segment's published
//! length and the partition's visible end offset. A fetch reads a segment in chunks of about
//! [`READ_CHUNK_BYTES`] that end on a batch boundary the offset index knows, into buffers taken
//! from [`ReadBuffers`], verifies each batch's CRC-32C once, and hands batches out as slices of
//! those buffers; records decode lazily from them. A chunk of at least
//! [`PARALLEL_CHUNK_BYTES_MIN`] is cut in two at an indexed batch boundary and its second half
//! read and verified by the log's read helper ([`super::helper`]) at the same time.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};

use super::error::{Error, Result};
use super::helper::{Helper, Job, Outcome};
use super::recovery::Source as _;
use super::segment::{self, BatchError, BatchInfo, BatchRecords};
use super::writer::{Partition, Segment, segment_path};
use super::{
    Offset, PARALLEL_CHUNK_BYTES_MIN, READ_BUFFER_BYTES_MAX, READ_BUFFERS_MAX, READ_CHUNK_BYTES,
    READ_PIECE_BYTES, StoredRecord,
};

impl Partition {
    /// The first offset still stored (the log start offset).
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only.
    pub fn earliest_offset(&self) -> Result<Offset> {
        Ok(self.state.lock()?.log_start)
    }

    /// The offset the next visible record will get (the high watermark).
    #[must_use]
    pub fn latest_offset(&self) -> Offset {
        *self.end_tx.borrow()
    }

    /// The end offset when this process opened the partition (after recovery cut any torn or
    /// lost tail): the records from there on were appended since.
    #[must_use]
    pub fn opened_end_offset(&self) -> Offset {
        self.opened_end
    }

    /// A receiver of the visible end offset: `changed().await` wakes when records are
    /// appended (no polling).
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Offset> {
        self.end_tx.subscribe()
    }

    /// Receivers currently subscribed to the end offset: tailing readers and fetches waiting
    /// for records (a gauge for metrics, and what tests wait on before appending).
    #[must_use]
    pub fn subscriber_count(&self) -> usize {
        self.end_tx.receiver_count()
    }

    /// Reads records from `offset` on, stopping once `max_bytes` of batches have been read
    /// (at least one batch is returned whole, as Kafka does). `offset` equal to the end gives an
    /// empty list. Built on [`Partition::fetch`]: keys and values are zero-copy slices of the
    /// read buffer.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `earliest..=latest`, [`Error::Corrupt`] when a batch
    /// does not verify or decode, [`Error::Io`] on read failure.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        let batches = self.fetch(offset, max_bytes)?;
        let mut out = Vec::new();
        for batch in &batches {
            batch.decode_into(offset, &mut out).map_err(|e| {
                let (base, position) = batch.location();
                Error::Corrupt {
                    segment: segment_path(&self.dir, base),
                    position,
                    reason: format!("batch at offset {}: {e:?}", batch.info().base_offset),
                }
            })?;
        }
        Ok(out)
    }

    /// Raw batches from the one holding `offset`, up to about `max_bytes` (at least one):
    /// Kafka's fetch, each batch's CRC-32C verified.
    ///
    /// # Errors
    /// As [`Partition::read`].
    pub fn read_batches(&self, offset: Offset, max_bytes: usize) -> Result<Vec<Bytes>> {
        Ok(self
            .fetch(offset, max_bytes)?
            .into_iter()
            .map(RecordBatch::into_bytes)
            .collect())
    }

    /// Whole batches from the one holding `offset` (so the first may start before it), up to
    /// about `max_bytes` (at least one batch): the consumer read path. Each batch's framing and
    /// CRC-32C are verified once here; its records decode lazily with
    /// [`RecordBatch::records`]. The file is read in chunks of about [`READ_CHUNK_BYTES`],
    /// ending on batch boundaries, into reused buffers, and the batches are slices of those
    /// buffers (nothing is copied).
    ///
    /// # Errors
    /// As [`Partition::read`].
    pub fn fetch(&self, offset: Offset, max_bytes: usize) -> Result<Vec<RecordBatch>> {
        let end = self.latest_offset();
        let mut next = self.first_segment(offset, end)?;
        let mut out = Vec::new();
        let mut budget = max_bytes;
        while let Some(seg) = next {
            let start = self.start_position(&seg, offset)?;
            let mut chunks = Chunks::new(&seg, start, &self.buffers);
            let done = chunks.fetch(offset, end, &mut budget, &mut out);
            chunks.finish(&mut out);
            if done? {
                break;
            }
            next = self.segment_after(seg.base)?;
        }
        Ok(out)
    }

    /// Byte position in `seg` from which to scan for `offset`.
    fn start_position(&self, seg: &Segment, offset: Offset) -> Result<u64> {
        if offset > seg.base {
            let rel = u32::try_from(offset - seg.base).unwrap_or(u32::MAX);
            Ok(u64::from(seg.index.read()?.lookup(rel)))
        } else {
            Ok(0)
        }
    }

    /// The segment that may hold `offset`, after checking the range; `None` at the end.
    fn first_segment(&self, offset: Offset, end: Offset) -> Result<Option<Arc<Segment>>> {
        let state = self.state.lock()?;
        if offset < state.log_start || offset > end {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset,
                earliest: state.log_start,
                latest: end,
            });
        }
        if offset == end {
            return Ok(None);
        }
        let first = state
            .segments
            .range(..=offset)
            .next_back()
            .map_or(0, |(b, _)| *b);
        Ok(state.segments.range(first..).next().map(|(_, s)| s.clone()))
    }

    /// The segment after the one based at `base`, if any (a fetch that spans segments takes
    /// them one at a time, so each fetch clones only the handles it reads).
    fn segment_after(&self, base: Offset) -> Result<Option<Arc<Segment>>> {
        let state = self.state.lock()?;
        Ok(state
            .segments
            .range((std::ops::Bound::Excluded(base), std::ops::Bound::Unbounded))
            .next()
            .map(|(_, s)| s.clone()))
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, or `None` when
    /// every record is older (Kafka's ListOffsets by timestamp).
    ///
    /// # Errors
    /// As [`Partition::read`].
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<Offset>> {
        let end = self.latest_offset();
        let segments: Vec<Arc<Segment>> = self.state.lock()?.segments.values().cloned().collect();
        for seg in segments {
            if seg.max_timestamp_ms.load(Ordering::Acquire) < timestamp_ms {
                continue;
            }
            let rel = seg.time_index.read()?.lookup(timestamp_ms);
            let start = u64::from(seg.index.read()?.lookup(rel));
            let mut pos = start;
            let len = seg.len.load(Ordering::Acquire);
            while pos < len {
                let mut budget = usize::MAX;
                let mut records = Vec::new();
                let (batch_len, _) = read_batch(&seg, pos, len, 0, &mut records, &mut budget)?;
                if let Some(r) = records
                    .iter()
                    .find(|r| r.timestamp_ms >= timestamp_ms && r.offset < end)
                {
                    return Ok(Some(r.offset));
                }
                pos += batch_len;
            }
        }
        Ok(None)
    }
}

/// A batch read back from a segment, its framing and CRC-32C verified: the unit the consumer
/// read path hands out. Cloning is cheap (the bytes are shared).
#[derive(Debug, Clone)]
pub struct RecordBatch {
    /// Exactly the batch's bytes (RecordBatch v2, big-endian), a slice of a read buffer.
    bytes: Bytes,
    /// Its verified header.
    info: BatchInfo,
    /// Base offset of the segment it was read from (names the segment file).
    segment_base: Offset,
    /// Its byte position in that segment.
    position: u64,
}

impl RecordBatch {
    /// Where it was read from: the base offset of its segment (the segment file's name) and
    /// its byte position there — what a [`Error::Corrupt`] about its records names.
    #[must_use]
    pub fn location(&self) -> (Offset, u64) {
        (self.segment_base, self.position)
    }

    /// The batch's bytes, as stored (Kafka's wire format for a fetch response).
    #[must_use]
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The batch's bytes, as stored.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Its header: offsets, record count, timestamps, length.
    #[must_use]
    pub fn info(&self) -> &BatchInfo {
        &self.info
    }

    /// Its records, decoded lazily and borrowed (no copy, no allocation per record). The
    /// first batch of a fetch may hold offsets below the one asked for; skip them by
    /// `RecordView::offset`.
    #[must_use]
    pub fn records(&self) -> BatchRecords<'_> {
        BatchRecords::new(&self.bytes, self.info)
    }

    /// Pushes its records with offset `>= min_offset` onto `out` as owned records whose keys
    /// and values are slices of the batch's buffer.
    ///
    /// # Errors
    /// [`BatchError::Invalid`] when a record does not parse.
    pub fn decode_into(
        &self,
        min_offset: Offset,
        out: &mut Vec<StoredRecord>,
    ) -> Result<(), BatchError> {
        for record in self.records() {
            let record = record?;
            if record.offset >= min_offset {
                out.push(record.to_stored(&self.bytes));
            }
        }
        Ok(())
    }
}

/// Reused read buffers, shared by every partition of a log: a read takes one whose earlier
/// batches have all been dropped, so steady-state scans neither allocate nor zero memory. Also
/// holds the log's read helper.
#[derive(Debug)]
pub(crate) struct ReadBuffers {
    /// Buffers handed out before; reusable once nothing else refers to them.
    free: Mutex<Vec<Bytes>>,
    /// Whether large chunks are read in two parts with a read helper.
    parallel_read: bool,
    /// The thread that reads and verifies the second half of large chunks, started by the
    /// first chunk that needs it; `None` inside when no thread could be started.
    helper: OnceLock<Option<Helper>>,
}

impl ReadBuffers {
    /// An empty pool, using a read helper when `parallel_read`.
    pub(crate) fn new(parallel_read: bool) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            parallel_read,
            helper: OnceLock::new(),
        }
    }

    /// The read helper, started on first use; `None` when `parallel_read` is off or no thread
    /// could be started.
    fn helper(&self) -> Option<&Helper> {
        if !self.parallel_read {
            return None;
        }
        self.helper.get_or_init(Helper::start).as_ref()
    }

    /// A buffer no batch refers to any more (its bytes are initialised, its length is what it
    /// was), or an empty new one.
    fn take(&self) -> BytesMut {
        let Ok(mut free) = self.free.lock() else {
            return BytesMut::new();
        };
        match free.iter().position(Bytes::is_unique) {
            // Unique under the lock, and only the pool holds it: the conversion cannot fail.
            Some(i) => free
                .swap_remove(i)
                .try_into_mut()
                .unwrap_or_else(|_| BytesMut::new()),
            None => BytesMut::new(),
        }
    }

    /// Keeps `buf` for reuse when there is room and it is not oversized.
    fn give(&self, buf: Bytes) {
        if buf.len() > READ_BUFFER_BYTES_MAX {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < READ_BUFFERS_MAX {
                free.push(buf);
            } else if let Some(slot) = free.iter_mut().find(|b| !b.is_unique()) {
                // Prefer keeping the buffer that is free now over one still in use.
                *slot = buf;
            }
        }
    }
}

/// Reads one segment in large chunks and cuts them into verified batches.
///
/// A chunk is planned to end on a batch boundary the offset index knows (the first indexed
/// batch at or after the budget, or the segment's end), so no batch straddles two chunks and
/// no byte is read twice or copied. The chunk is filled by positional reads of up to
/// [`READ_PIECE_BYTES`] as the batches need them, so each batch's CRC-32C is checked while its
/// bytes are still in the CPU cache. When the index cannot place the end (a sparse index, a
/// batch larger than the plan), a batch that runs past the chunk is completed in place if it is
/// the only thing in the buffer, otherwise its head is copied to the front of the next buffer
/// and the rest read after it.
///
/// A chunk of at least [`PARALLEL_CHUNK_BYTES_MIN`] is cut at the indexed batch boundary
/// nearest its middle: the buffer from the cut on is split off and handed to the read helper
/// ([`Chunks::split`]), the walk reads the first part as above, and on reaching the cut takes
/// the second part back, already read, with the chain of batches the helper verified
/// ([`Chunks::join`]). Batches on that chain skip the second CRC-32C; any other batch is
/// verified here as usual.
struct Chunks<'a> {
    /// The segment.
    seg: &'a Arc<Segment>,
    /// Where buffers come from and go back to.
    pool: &'a ReadBuffers,
    /// The current buffer; `buf[..filled]` holds the file bytes from `file_pos`.
    buf: BytesMut,
    /// File position of `buf[0]`.
    file_pos: u64,
    /// Bytes of `buf` holding file data.
    filled: usize,
    /// End of the current chunk in `buf` (at most `buf.len()`): `buf[filled..planned]` is read
    /// piece by piece as batches need it.
    planned: usize,
    /// Batches found in `buf` and kept: `(start in buf, header)`.
    kept: Vec<(usize, BatchInfo)>,
    /// The second part of the current chunk while the read helper has it.
    pending: Option<Pending>,
    /// Start in `buf` of the next batch on the chain the helper verified; batches on it are
    /// verified when it is below `verified_end`.
    verified_next: usize,
    /// End in `buf` of the batches the helper verified (0: none).
    verified_end: usize,
}

/// A chunk's second part, out with the read helper.
struct Pending {
    /// The helper's job.
    job: Arc<Job>,
    /// Where in `buf` the part starts (a batch boundary).
    mid: usize,
    /// The chunk's planned end in `buf`.
    end: usize,
}

impl<'a> Chunks<'a> {
    fn new(seg: &'a Arc<Segment>, start: u64, pool: &'a ReadBuffers) -> Self {
        Self {
            seg,
            pool,
            buf: pool.take(),
            file_pos: start,
            filled: 0,
            planned: 0,
            kept: Vec::new(),
            pending: None,
            verified_next: 0,
            verified_end: 0,
        }
    }

    /// Walks batches from the start position, keeping those holding offsets in
    /// `min_offset..end` until `budget` is spent. Returns whether the fetch is complete (budget
    /// spent or visible end reached) rather than the segment exhausted.
    fn fetch(
        &mut self,
        min_offset: Offset,
        end: Offset,
        budget: &mut usize,
        out: &mut Vec<RecordBatch>,
    ) -> Result<bool> {
        let len = self.seg.len.load(Ordering::Acquire);
        let mut at = 0usize;
        // IMPORTANT: a batch's base offset lies outside its CRC, so a damaged one passes the
        // batch's own checks. Offsets in a partition are dense: a walk from the segment's
        // start begins at its base, one from an index position at or before `min_offset`, and
        // every next batch right after the one before. Anything else is corruption, reported
        // rather than read as a gap (records skipped) or an end (a consumer that stalls).
        let mut due: Option<Offset> = (self.file_pos == 0).then_some(self.seg.base);
        loop {
            let pos = self.file_pos + at as u64;
            if pos >= len {
                return Ok(false);
            }
            let view = self.buf.get(at..self.filled).unwrap_or_default();
            let on_chain = at == self.verified_next && at < self.verified_end;
            let decoded = if on_chain {
                // Verified by the read helper: check the framing only.
                segment::decode_batch_frame(view).and_then(|info| {
                    if at + info.len <= self.verified_end {
                        Ok(info)
                    } else {
                        segment::decode_batch_info(view)
                    }
                })
            } else {
                segment::decode_batch_info(view)
            };
            match decoded {
                Ok(info) => {
                    if on_chain {
                        self.verified_next = at + info.len;
                    }
                    let out_of_place = match due {
                        Some(due) => info.base_offset != due,
                        None => info.base_offset > min_offset,
                    };
                    if out_of_place {
                        return Err(self.corrupt(
                            pos,
                            format!(
                                "batch at offset {} where {} was due",
                                info.base_offset,
                                due.unwrap_or(min_offset)
                            ),
                        ));
                    }
                    due = Some(info.last_offset.saturating_add(1));
                    if info.last_offset >= end {
                        // Not visible yet (under `always`, not yet fsynced).
                        return Ok(true);
                    }
                    if info.last_offset >= min_offset {
                        self.kept.push((at, info));
                        *budget = budget.saturating_sub(info.len);
                    }
                    at += info.len;
                    let some = !self.kept.is_empty() || !out.is_empty();
                    if info.last_offset + 1 >= end || (*budget == 0 && some) {
                        return Ok(true);
                    }
                }
                Err(BatchError::Incomplete { needed }) => {
                    let left = usize::try_from(len - pos).unwrap_or(usize::MAX);
                    if needed > left {
                        return Err(self.corrupt(
                            pos,
                            format!("batch needs {needed} bytes, only {left} readable"),
                        ));
                    }
                    if at + needed <= self.planned {
                        // The batch lies inside the planned chunk: read on in place.
                        self.read_piece(at + needed)?;
                    } else if self.pending.is_some() {
                        // The walk reached the cut (or a batch runs across it): take the
                        // helper's part back and look again.
                        self.join()?;
                    } else {
                        let want = self.plan(pos, *budget, left)?.max(needed);
                        self.refill(at, want, out)?;
                        at = 0;
                    }
                }
                Err(BatchError::Invalid { reason, .. }) => return Err(self.corrupt(pos, reason)),
            }
        }
    }

    /// Bytes to read from `pos` for the next chunk: up to the first indexed batch boundary at
    /// or after `pos` + the budget (capped at [`READ_CHUNK_BYTES`]), or to the segment's end
    /// when no indexed batch follows; the capped budget when that boundary is more than
    /// [`READ_BUFFER_BYTES_MAX`] away. Never more than the `left` readable bytes.
    fn plan(&self, pos: u64, budget: usize, left: usize) -> Result<usize> {
        let target = budget.clamp(segment::BATCH_HEADER_BYTES, READ_CHUNK_BYTES);
        let from = u32::try_from(pos + target as u64).unwrap_or(u32::MAX);
        let boundary = self
            .seg
            .index
            .read()?
            .boundary_at_or_after(from)
            .map(u64::from);
        let span = boundary.map_or(left, |b| {
            usize::try_from(b.saturating_sub(pos)).unwrap_or(usize::MAX)
        });
        let want = if span <= READ_BUFFER_BYTES_MAX {
            span
        } else {
            target
        };
        Ok(want.min(left))
    }

    /// Reads on in the planned chunk, up to at least `upto` (at most `planned`) and
    /// [`READ_PIECE_BYTES`] at a time.
    fn read_piece(&mut self, upto: usize) -> Result<()> {
        let to = upto.max(self.filled + READ_PIECE_BYTES).min(self.planned);
        let from = self.file_pos + self.filled as u64;
        // IMPORTANT: the caller's loop ends only if every read makes progress. It does (a
        // batch is incomplete only when `upto` lies past `filled`), but an error is better
        // than a hang should that ever break.
        let Some(dst) = self.buf.get_mut(self.filled..to).filter(|d| !d.is_empty()) else {
            debug_assert!(false, "read piece without progress at {from}");
            return Err(self.corrupt(from, "read made no progress".to_owned()));
        };
        std::os::unix::fs::FileExt::read_exact_at(&self.seg.file, dst, from)
            .map_err(super::error::io_at(&self.seg.path))?;
        self.filled = to;
        Ok(())
    }

    /// Starts a chunk of `want` bytes at file position `file_pos + at`: hands the batches kept
    /// so far to `out` and carries the unread head of the next batch over (nothing when the
    /// previous chunk ended on a batch boundary); the rest is read by [`Chunks::read_piece`].
    fn refill(&mut self, at: usize, want: usize, out: &mut Vec<RecordBatch>) -> Result<()> {
        let carried = self.filled.saturating_sub(at);
        if self.kept.is_empty() {
            // Nothing refers to this buffer: move the head to the front and reuse it. In range:
            // `at` only advances over whole batches inside `buf[..filled]`, and `filled` never
            // exceeds `buf.len()`.
            if at <= self.filled && self.filled <= self.buf.len() {
                self.buf.copy_within(at..self.filled, 0);
            }
        } else {
            let mut next = self.pool.take();
            if next.len() < carried {
                next.resize(carried, 0);
            }
            if let (Some(dst), Some(src)) = (next.get_mut(..carried), self.buf.get(at..self.filled))
            {
                dst.copy_from_slice(src);
            }
            let full = std::mem::replace(&mut self.buf, next);
            self.emit(full, out);
        }
        self.file_pos += at as u64;
        self.filled = carried;
        self.planned = want.max(carried);
        self.verified_next = 0;
        self.verified_end = 0;
        if self.buf.len() < self.planned {
            // Zeroes only the bytes a reused buffer did not have yet.
            self.buf.resize(self.planned, 0);
        }
        self.split()
    }

    /// Hands the second part of a large planned chunk to the read helper: cuts at the first
    /// indexed batch boundary at or after the middle of `buf[filled..planned]`, splits the
    /// buffer there (no copy) and lowers `planned` to the cut. Does nothing without a helper,
    /// for a chunk under [`PARALLEL_CHUNK_BYTES_MIN`] or when no boundary lies strictly inside.
    fn split(&mut self) -> Result<()> {
        if self.planned - self.filled < PARALLEL_CHUNK_BYTES_MIN {
            return Ok(());
        }
        let Some(helper) = self.pool.helper() else {
            return Ok(());
        };
        let half = self.file_pos + (self.filled + (self.planned - self.filled) / 2) as u64;
        let boundary = self
            .seg
            .index
            .read()?
            .boundary_at_or_after(u32::try_from(half).unwrap_or(u32::MAX));
        let Some(mid) = boundary
            .and_then(|b| u64::from(b).checked_sub(self.file_pos))
            .and_then(|m| usize::try_from(m).ok())
            .filter(|&m| m > self.filled && m < self.planned)
        else {
            return Ok(());
        };
        // In range: `mid < planned <= buf.len() <= capacity`, so `split_off` cannot panic.
        let tail = self.buf.split_off(mid);
        let pos = self.file_pos + mid as u64;
        let job = helper.submit(self.seg.clone(), pos, tail, self.planned - mid);
        self.pending = Some(Pending {
            job,
            mid,
            end: self.planned,
        });
        self.planned = mid;
        Ok(())
    }

    /// Takes the helper's part of the chunk back, read (inline if the helper has not started
    /// it), joins it to `buf` (no copy) and records the chain of batches it verified, after
    /// reading the first part up to the cut. When the helper abandons the part, the chunk ends
    /// at the cut and the walk goes on into a fresh buffer as usual.
    fn join(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let (tail, verified) = match p.job.collect(true) {
            Outcome::Read(tail, verified) => (tail, verified),
            Outcome::Unread(tail) => {
                // Not produced by `collect(true)`; read the part here all the same.
                self.buf.unsplit(tail);
                self.planned = p.end;
                return Ok(());
            }
            Outcome::Abandoned => return Ok(()),
        };
        self.buf.unsplit(tail);
        while self.filled < p.mid {
            self.read_piece(p.mid)?;
        }
        let verified = verified?;
        self.filled = p.end;
        self.planned = p.end;
        self.verified_next = p.mid;
        self.verified_end = p.mid + verified;
        Ok(())
    }

    /// Freezes `full`, slices the kept batches out of it into `out` and returns it to the pool.
    fn emit(&mut self, full: BytesMut, out: &mut Vec<RecordBatch>) {
        let frozen = full.freeze();
        for (start, info) in self.kept.drain(..) {
            if let Some(bytes) = frozen.get(start..start + info.len) {
                out.push(RecordBatch {
                    bytes: frozen.slice_ref(bytes),
                    info,
                    segment_base: self.seg.base,
                    position: self.file_pos + start as u64,
                });
            }
        }
        self.pool.give(frozen);
    }

    /// Hands out what the current buffer holds.
    fn finish(mut self, out: &mut Vec<RecordBatch>) {
        // The part the helper had lies past every kept batch: take it back, unread if the
        // helper has not started it, only to return the whole buffer to the pool.
        if let Some(p) = self.pending.take() {
            match p.job.collect(false) {
                Outcome::Read(tail, _) | Outcome::Unread(tail) => self.buf.unsplit(tail),
                Outcome::Abandoned => {}
            }
        }
        let full = std::mem::take(&mut self.buf);
        self.emit(full, out);
    }

    fn corrupt(&self, position: u64, reason: String) -> Error {
        Error::Corrupt {
            segment: self.seg.path.clone(),
            position,
            reason,
        }
    }
}

/// Reads the one batch at `pos`; returns its length and whether anything was kept.
fn read_batch(
    seg: &Segment,
    pos: u64,
    len: u64,
    min_offset: Offset,
    out: &mut Vec<StoredRecord>,
    budget: &mut usize,
) -> Result<(u64, bool)> {
    let mut header = [0u8; segment::LOG_OVERHEAD];
    seg.file
        .read_at(pos, &mut header)
        .map_err(super::error::io_at(&seg.path))?;
    let claimed = usize::try_from(i32::from_be_bytes([
        header[8], header[9], header[10], header[11],
    ]))
    .unwrap_or(0);
    let total =
        (claimed + segment::LOG_OVERHEAD).min(usize::try_from(len - pos).unwrap_or(usize::MAX));
    let mut buf = vec![0u8; total.min(super::BATCH_BYTES_MAX)];
    seg.file
        .read_at(pos, &mut buf)
        .map_err(super::error::io_at(&seg.path))?;
    let before = out.len();
    let info =
        segment::decode_batch(&Bytes::from(buf), min_offset, out).map_err(|e| Error::Corrupt {
            segment: seg.path.clone(),
            position: pos,
            reason: format!("{e:?}"),
        })?;
    *budget = budget.saturating_sub(info.len);
    Ok((info.len as u64, out.len() > before))
}
