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
        let end = self.latest_offset();
        let segments = self.segments_from(offset, end)?;
        let mut out = Vec::new();
        let mut budget = max_bytes;
        for seg in segments {
            let start = if offset > seg.base {
                let rel = u32::try_from(offset - seg.base).unwrap_or(u32::MAX);
                u64::from(seg.index.read()?.lookup(rel))
            } else {
                0
            };
            let done = read_segment(&seg, start, offset, end, &mut budget, &mut out)?;
            if done {
                break;
            }
        }
        Ok(out)
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
    let len = seg.len.load(Ordering::Acquire);
    let mut pos = start;
    let mut chunk = Bytes::new();
    let mut chunk_start = pos;
    while pos < len {
        let in_chunk = usize::try_from(pos - chunk_start).unwrap_or(usize::MAX);
        let view = chunk.slice(in_chunk.min(chunk.len())..);
        let before = out.len();
        match segment::decode_batch(&view, min_offset, out) {
            Ok(info) => {
                if info.last_offset >= end {
                    // Records at or past the visible end are not acknowledged yet (under `always`).
                    let keep = out
                        .get(before..)
                        .map_or(0, |new| new.iter().take_while(|r| r.offset < end).count());
                    out.truncate(before + keep);
                }
                let taken = out.len() > before;
                pos += info.len as u64;
                if taken {
                    *budget = budget.saturating_sub(info.len);
                }
                if info.last_offset + 1 >= end {
                    return Ok(true);
                }
                if *budget == 0 && !out.is_empty() {
                    return Ok(true);
                }
            }
            Err(BatchError::Incomplete { needed }) => {
                let want = needed.max(
                    READ_CHUNK_BYTES
                        .min(*budget)
                        .max(segment::BATCH_HEADER_BYTES),
                );
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
