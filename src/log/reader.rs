//! Reads: records from an offset up to a byte budget, and the offset of a timestamp.
//!
//! Readers never take the writer's lock for I/O: they copy the segment handles they need under
//! the partition lock, then read with positional reads, bounded by each segment's published
//! length and the partition's visible end offset.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::error::{Error, Result};
use super::recovery::Source as _;
use super::segment::{self, BatchError};
use super::writer::{Partition, Segment};
use super::{Offset, READ_CHUNK_BYTES, StoredRecord};

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

    /// A receiver of the visible end offset: `changed().await` wakes when records are
    /// appended (no polling).
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Offset> {
        self.end_tx.subscribe()
    }

    /// Reads records from `offset` on, stopping once `max_bytes` of batches have been read
    /// (at least one batch is returned whole, as Kafka does). `offset` equal to the end gives an
    /// empty list.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `earliest..=latest`, [`Error::Corrupt`] when a batch
    /// does not decode, [`Error::Io`] on read failure.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        self.collect(offset, max_bytes, read_segment)
    }

    /// Raw batches from the one holding `offset`, up to about `max_bytes` (at least one):
    /// Kafka's fetch. Framing is checked; the CRC is left to the consumer.
    ///
    /// # Errors
    /// As [`Partition::read`].
    pub fn read_batches(&self, offset: Offset, max_bytes: usize) -> Result<Vec<Bytes>> {
        self.collect(offset, max_bytes, frame_segment)
    }

    /// Runs `per_segment` over the segments holding `offset..end` until it reports the read
    /// complete.
    fn collect<T>(
        &self,
        offset: Offset,
        max_bytes: usize,
        per_segment: SegmentReader<T>,
    ) -> Result<Vec<T>> {
        let end = self.latest_offset();
        let segments = self.segments_from(offset, end)?;
        let mut out = Vec::new();
        let mut budget = max_bytes;
        for seg in segments {
            let start = self.start_position(&seg, offset)?;
            if per_segment(&seg, start, offset, end, &mut budget, &mut out)? {
                break;
            }
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

    /// Segments that may hold offsets from `offset` on, after checking the range.
    fn segments_from(&self, offset: Offset, end: Offset) -> Result<Vec<Arc<Segment>>> {
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
            return Ok(Vec::new());
        }
        let first = state
            .segments
            .range(..=offset)
            .next_back()
            .map_or(0, |(b, _)| *b);
        Ok(state
            .segments
            .range(first..)
            .map(|(_, s)| s.clone())
            .collect())
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

/// Reads one segment from a byte position: `(segment, start, min_offset, end, budget, out)`;
/// returns whether the read is complete.
type SegmentReader<T> = fn(&Segment, u64, Offset, Offset, &mut usize, &mut Vec<T>) -> Result<bool>;

/// What a segment walker's visitor decided about one batch.
enum Walk {
    /// Go on after this many bytes.
    Continue(usize),
    /// Stop: the read is complete.
    Stop,
}

/// Walks the batches of `seg` from byte `start`, reading the file in chunks of about
/// `chunk_hint` bytes and handing each batch (as a view starting at the batch) to `visit`.
/// Returns whether `visit` stopped the walk before the end of the segment.
fn walk_segment(
    seg: &Segment,
    start: u64,
    chunk_hint: usize,
    mut visit: impl FnMut(&Bytes) -> Result<Walk, BatchError>,
) -> Result<bool> {
    let len = seg.len.load(Ordering::Acquire);
    let mut pos = start;
    let mut chunk = Bytes::new();
    let mut chunk_start = pos;
    while pos < len {
        let in_chunk = usize::try_from(pos - chunk_start).unwrap_or(usize::MAX);
        let view = chunk.slice(in_chunk.min(chunk.len())..);
        match visit(&view) {
            Ok(Walk::Continue(n)) => pos += n as u64,
            Ok(Walk::Stop) => return Ok(true),
            Err(BatchError::Incomplete { needed }) => {
                let want =
                    needed.max(chunk_hint.clamp(segment::BATCH_HEADER_BYTES, READ_CHUNK_BYTES));
                let avail = usize::try_from(len - pos).unwrap_or(usize::MAX);
                let mut buf = vec![0u8; want.min(avail)];
                let n = seg
                    .file
                    .read_at(pos, &mut buf)
                    .map_err(super::error::io_at(&seg.path))?;
                buf.truncate(n);
                if n < needed.min(avail) || n == 0 {
                    return Err(Error::Corrupt {
                        segment: seg.path.clone(),
                        position: pos,
                        reason: format!("batch needs {needed} bytes, only {n} readable"),
                    });
                }
                chunk = Bytes::from(buf);
                chunk_start = pos;
            }
            Err(BatchError::Invalid { reason, .. }) => {
                return Err(Error::Corrupt {
                    segment: seg.path.clone(),
                    position: pos,
                    reason,
                });
            }
        }
    }
    Ok(false)
}

/// Reads batches of `seg` from byte `start`, keeping records in `min_offset..end`. Returns
/// whether the read is complete (budget spent or end reached).
fn read_segment(
    seg: &Segment,
    start: u64,
    min_offset: Offset,
    end: Offset,
    budget: &mut usize,
    out: &mut Vec<StoredRecord>,
) -> Result<bool> {
    let hint = *budget;
    walk_segment(seg, start, hint, |view| {
        let before = out.len();
        let info = segment::decode_batch(view, min_offset, out)?;
        if info.last_offset >= end {
            // Records at or past the visible end are not acknowledged yet (under `always`).
            let keep = out
                .get(before..)
                .map_or(0, |new| new.iter().take_while(|r| r.offset < end).count());
            out.truncate(before + keep);
        }
        if out.len() > before {
            *budget = budget.saturating_sub(info.len);
        }
        let done = info.last_offset + 1 >= end || (*budget == 0 && !out.is_empty());
        Ok(if done {
            Walk::Stop
        } else {
            Walk::Continue(info.len)
        })
    })
}

/// Collects whole raw batches of `seg` from byte `start` that end before `end` and hold
/// offsets from `min_offset` on. Returns whether the read is complete.
fn frame_segment(
    seg: &Segment,
    start: u64,
    min_offset: Offset,
    end: Offset,
    budget: &mut usize,
    out: &mut Vec<Bytes>,
) -> Result<bool> {
    let hint = *budget;
    walk_segment(seg, start, hint, |view| {
        let info = segment::decode_batch_frame(view)?;
        if info.last_offset >= end {
            return Ok(Walk::Stop);
        }
        if info.last_offset >= min_offset {
            out.push(view.slice(..info.len));
            *budget = budget.saturating_sub(info.len);
        }
        let done = info.last_offset + 1 >= end || (*budget == 0 && !out.is_empty());
        Ok(if done {
            Walk::Stop
        } else {
            Walk::Continue(info.len)
        })
    })
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
