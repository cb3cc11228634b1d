//! The torn-tail policy: verify a segment batch by batch and decide where its valid bytes end.
//!
//! A batch that is incomplete, fails its checks, or is followed only by zero bytes, *and* reaches
//! the end of the file is a torn tail: the write that produced it was cut short, so it is cut off
//! and reported. The same failure in a batch that ends before the end of the file means bytes
//! that were once acknowledged have changed: that is [`ScanError`], naming the position, and
//! never skipped. Base offsets must continue exactly from the segment's base, because
//! `base_offset` lies outside the CRC.
//!
//! [`Rules`] adds the recovery point: a failure below it is corruption even at the tail (those
//! batches were fsynced), and at or above it, for a partition that ran under `interval_ms` or
//! `never`, the first invalid batch ends the segment wherever it is, because page writeback
//! order is arbitrary and a power loss can leave zeros with written pages after them.

#![deny(clippy::indexing_slicing)]

use super::BATCH_BYTES_MAX;
use super::segment::{self, BatchError, BatchInfo, LOG_OVERHEAD};

/// Random-access bytes a scan reads from: a file or a slice.
pub(crate) trait Source {
    /// Total length in bytes.
    ///
    /// # Errors
    /// The length cannot be read (a file's `fstat` failed): never read as 0, which would make
    /// a scan report an empty segment and let recovery cut or overwrite its records.
    fn len(&self) -> std::io::Result<u64>;
    /// Fills `buf` from `pos`; returns how many bytes were read (short only at the end).
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl Source for [u8] {
    fn len(&self) -> std::io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = usize::try_from(pos)
            .unwrap_or(usize::MAX)
            .min(<[u8]>::len(self));
        let src = self.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

impl Source for std::fs::File {
    fn len(&self) -> std::io::Result<u64> {
        self.metadata().map(|m| m.len())
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Some(rest) = buf.get_mut(done..) else {
                break;
            };
            let n = std::os::unix::fs::FileExt::read_at(self, rest, pos + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// One verified batch and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScannedBatch {
    /// Byte position of the batch in the segment.
    pub(crate) position: u64,
    /// What its header says.
    pub(crate) info: BatchInfo,
}

/// The outcome of a successful scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Every valid batch, in order.
    pub(crate) batches: Vec<ScannedBatch>,
    /// Bytes from the start that are valid; the file should be cut here.
    pub(crate) valid_len: u64,
    /// Bytes after `valid_len` that form a torn tail (0 when the segment is clean).
    pub(crate) torn_bytes: u64,
    /// Why the tail was judged torn, when it was.
    pub(crate) torn_reason: Option<String>,
}

/// Corruption before the tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte position of the bad batch.
    pub(crate) position: u64,
    /// What check failed.
    pub(crate) reason: String,
}

/// Why a scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanFailure {
    /// Corruption before the tail.
    Corrupt(ScanError),
    /// The source could not be read.
    Io(std::io::Error),
}

/// What a scan does with a batch that fails verification, by the offset it should start at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Every batch below this offset was known to be on disk: a failure there is
    /// [`ScanFailure::Corrupt`], even at the end of the file.
    pub(crate) recovery_point: u64,
    /// At or above the recovery point, the first invalid batch ends the segment (a torn tail
    /// however much data follows it). Otherwise only a torn tail is cut: a failure that reaches
    /// the end of the file or is followed only by zeros.
    pub(crate) first_invalid_ends: bool,
}

impl Rules {
    /// The torn-tail policy alone (no recovery point): only a failure that reaches the end of
    /// the file or is followed only by zeros is cut.
    pub(crate) const TORN_TAIL: Self = Self {
        recovery_point: 0,
        first_invalid_ends: false,
    };
}

/// Verifies every batch of a segment whose first offset must be `base_offset`, under
/// [`Rules::TORN_TAIL`].
///
/// # Errors
/// [`ScanFailure::Corrupt`] for a bad batch followed by more data, [`ScanFailure::Io`] when
/// reading fails.
pub(crate) fn scan_segment<S: Source + ?Sized>(
    src: &S,
    base_offset: u64,
) -> Result<Scan, ScanFailure> {
    scan_segment_from(src, 0, base_offset, Rules::TORN_TAIL)
}

/// As [`scan_segment`], from byte position `start`, where a batch whose first offset is
/// `first_offset` must begin (a batch boundary taken from the offset index), under `rules`.
///
/// # Errors
/// [`ScanFailure::Corrupt`] for a bad batch that `rules` do not let end the segment,
/// [`ScanFailure::Io`] when reading fails.
pub(crate) fn scan_segment_from<S: Source + ?Sized>(
    src: &S,
    start: u64,
    first_offset: u64,
    rules: Rules,
) -> Result<Scan, ScanFailure> {
    let file_len = src.len().map_err(ScanFailure::Io)?;
    let mut scan = Scan::default();
    let mut expected = first_offset;
    let mut pos = start;
    let mut header = [0u8; LOG_OVERHEAD];
    let mut buf = Vec::new();
    while pos < file_len {
        let torn = |scan: &mut Scan, reason: String| {
            scan.torn_bytes = file_len - pos;
            scan.torn_reason = Some(reason);
        };
        let n = src.read_at(pos, &mut header).map_err(ScanFailure::Io)?;
        let claimed = header
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes);
        let claimed_len = claimed
            .and_then(|l| usize::try_from(l).ok())
            .map(|l| l.saturating_add(LOG_OVERHEAD))
            .filter(|&l| l <= BATCH_BYTES_MAX);
        let want = claimed_len.unwrap_or(n).max(n);
        let avail = usize::try_from(file_len - pos).unwrap_or(usize::MAX);
        buf.resize(want.min(avail), 0);
        let got = src.read_at(pos, &mut buf).map_err(ScanFailure::Io)?;
        buf.truncate(got);
        let failure = match segment::decode_batch_info(&buf) {
            Ok(info) if info.base_offset == expected => {
                scan.batches.push(ScannedBatch {
                    position: pos,
                    info,
                });
                pos += info.len as u64;
                expected = info.last_offset + 1;
                continue;
            }
            Ok(info) => (
                format!(
                    "base offset {} where {expected} was expected",
                    info.base_offset
                ),
                Some(info.len),
            ),
            // The file ends inside the batch, so the batch reaches the end.
            Err(BatchError::Incomplete { needed }) => (
                format!("incomplete batch: {got} of {needed} bytes"),
                Some(usize::MAX),
            ),
            Err(BatchError::Invalid {
                reason,
                claimed_len,
            }) => (reason, claimed_len),
        };
        let (reason, len) = failure;
        if expected < rules.recovery_point {
            return Err(ScanFailure::Corrupt(ScanError {
                position: pos,
                reason: format!(
                    "{reason} (offset {expected} is below the recovery point {}: it was on disk)",
                    rules.recovery_point
                ),
            }));
        }
        let reaches_end = len.is_some_and(|l| pos.saturating_add(l as u64) >= file_len);
        if rules.first_invalid_ends
            || reaches_end
            || all_zero(src, pos, file_len).map_err(ScanFailure::Io)?
        {
            torn(&mut scan, reason);
            break;
        }
        return Err(ScanFailure::Corrupt(ScanError {
            position: pos,
            reason,
        }));
    }
    scan.valid_len = pos.min(file_len);
    if scan.torn_bytes == 0 {
        scan.valid_len = file_len;
    }
    Ok(scan)
}

/// Whether every byte from `pos` to `end` is zero (a file extended but never written).
fn all_zero<S: Source + ?Sized>(src: &S, mut pos: u64, end: u64) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; 64 * 1024];
    while pos < end {
        let n = src.read_at(pos, &mut chunk)?;
        if n == 0 {
            break;
        }
        if chunk.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

/// Fuzz body for the `log_segment` target: recovery on arbitrary bytes, then decoding every
/// batch it kept; then the scan a partition past its recovery point under `interval_ms` or
/// `never` runs, which never refuses a segment. Checks the scans' own invariants.
///
/// # Panics
/// Only when recovery breaks an invariant (every byte accounted for, kept batches contiguous):
/// that is the bug the fuzzer hunts for, so the assertions are deliberate.
pub fn fuzz_log_segment(data: &[u8]) {
    let cut = scan_segment_from(
        data,
        0,
        0,
        Rules {
            recovery_point: 0,
            first_invalid_ends: true,
        },
    );
    assert!(
        !matches!(cut, Err(ScanFailure::Corrupt(_))),
        "a cutting scan never refuses a segment"
    );
    if let Ok(scan) = &cut {
        assert!(
            scan.valid_len + scan.torn_bytes == data.len() as u64,
            "a cutting scan accounts for every byte"
        );
    }
    let Ok(scan) = scan_segment(data, 0) else {
        return;
    };
    assert!(
        scan.valid_len + scan.torn_bytes == data.len() as u64,
        "scan accounts for every byte"
    );
    let bytes = bytes::Bytes::copy_from_slice(data);
    let mut records = Vec::new();
    let mut next = 0;
    for batch in &scan.batches {
        assert_eq!(batch.info.base_offset, next, "kept batches are contiguous");
        next = batch.info.last_offset + 1;
        let start = usize::try_from(batch.position).unwrap_or(usize::MAX);
        let Some(slice) = bytes.get(start..) else {
            return;
        };
        let _ = segment::decode_batch(&bytes.slice_ref(slice), 0, &mut records);
    }
}

#[cfg(test)]
mod tests {
    use super::{Rules, ScanFailure, Source, scan_segment_from};

    /// A source whose length cannot be read, as a file whose `fstat` fails.
    struct NoLength;

    impl Source for NoLength {
        fn len(&self) -> std::io::Result<u64> {
            Err(std::io::Error::other("fstat failed"))
        }

        fn read_at(&self, _: u64, _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
    }

    /// A length that cannot be read fails the scan instead of reading as an empty segment
    /// (which recovery would cut or overwrite).
    #[test]
    fn a_length_that_cannot_be_read_fails_the_scan() {
        let scanned = scan_segment_from(&NoLength, 0, 0, Rules::TORN_TAIL);
        assert!(matches!(scanned, Err(ScanFailure::Io(_))), "{scanned:?}");
        let empty: &[u8] = &[];
        let scan = scan_segment_from(empty, 0, 0, Rules::TORN_TAIL).unwrap();
        assert_eq!((scan.valid_len, scan.batches.len()), (0, 0));
    }
}
