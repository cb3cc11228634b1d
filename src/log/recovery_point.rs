//! A partition's `recovery-point` file: the offset below which every batch is known to be on
//! disk, and the flush policy the partition ran with (Kafka's recovery-point checkpoint, one
//! small file per partition instead of one text file per log directory).
//!
//! Pure encode/decode of the 33-byte layout (`docs/formats.md`), plus the atomic write (temp
//! file, fsync, rename, fsync the directory) and the read at open. Recovery uses the offset and
//! policy to decide what an invalid batch means (`writer.rs`): below the point it is corruption;
//! at or above it, under `interval_ms` or `never`, it is where a power loss ended the log.

#![deny(clippy::indexing_slicing)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::error::{Result, io_at};
use super::segment::crc32c;
use super::{FLUSH_INTERVAL_MS_MAX, FlushPolicy, Offset};

/// File name in the partition directory.
pub(crate) const FILE_NAME: &str = "recovery-point";
/// Name of the temporary file the write renames over [`FILE_NAME`].
const TMP_FILE_NAME: &str = "recovery-point.tmp";
/// First bytes of the file.
pub(crate) const MAGIC: [u8; 8] = *b"SCRECPT\0";
/// Format version this code writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Exact length of the file: a longer or shorter one is refused, and a read never takes more
/// than one byte past it, whatever the file's size.
pub(crate) const FILE_BYTES: usize = 33;

/// Field positions (`docs/formats.md`, "recovery-point").
const OFF_VERSION: usize = 8;
const OFF_OFFSET: usize = 12;
const OFF_POLICY: usize = 20;
const OFF_INTERVAL: usize = 21;
const OFF_CRC: usize = 29;

const _: () = assert!(OFF_CRC + 4 == FILE_BYTES);

/// Policy byte values.
const POLICY_ALWAYS: u8 = 0;
const POLICY_INTERVAL: u8 = 1;
const POLICY_NEVER: u8 = 2;

/// What the file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryPoint {
    /// Every batch below this offset was on disk when the file was written.
    pub(crate) offset: Offset,
    /// The flush policy the partition ran with from then on.
    pub(crate) policy: FlushPolicy,
}

/// Why a file does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not [`FILE_BYTES`] long.
    Length {
        /// Bytes read (at most `FILE_BYTES + 1`).
        len: usize,
        /// [`FILE_BYTES`].
        max: usize,
    },
    /// Wrong magic.
    Magic,
    /// A version this code does not read.
    Version(u32),
    /// The CRC-32C does not match.
    Crc {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// An unknown policy byte, or an interval outside `1..=FLUSH_INTERVAL_MS_MAX`.
    Policy(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length { len, max } => write!(f, "{len} bytes where {max} were expected"),
            Self::Magic => f.write_str("bad magic"),
            Self::Version(v) => write!(f, "unknown version {v}"),
            Self::Crc { stored, computed } => {
                write!(f, "CRC-32C {stored:#010x} does not match {computed:#010x}")
            }
            Self::Policy(reason) => write!(f, "bad flush policy: {reason}"),
        }
    }
}

/// Encodes `rp` in the file's layout.
pub(crate) fn encode(rp: RecoveryPoint) -> [u8; FILE_BYTES] {
    let (kind, interval) = match rp.policy {
        FlushPolicy::Always => (POLICY_ALWAYS, 0),
        FlushPolicy::IntervalMs(n) => (POLICY_INTERVAL, n),
        FlushPolicy::Never => (POLICY_NEVER, 0),
    };
    let mut out = [0u8; FILE_BYTES];
    let fields: [(usize, &[u8]); 5] = [
        (0, &MAGIC),
        (OFF_VERSION, &VERSION.to_le_bytes()),
        (OFF_OFFSET, &rp.offset.to_le_bytes()),
        (OFF_POLICY, &[kind]),
        (OFF_INTERVAL, &interval.to_le_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = out.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    let crc = crc32c(out.get(..OFF_CRC).unwrap_or_default());
    if let Some(dst) = out.get_mut(OFF_CRC..) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// Reads `N` bytes at `at`; `bytes` is known to be [`FILE_BYTES`] long.
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

/// Decodes a file's bytes.
///
/// # Errors
/// [`DecodeError`] naming the first check that fails.
pub(crate) fn decode(bytes: &[u8]) -> Result<RecoveryPoint, DecodeError> {
    if bytes.len() != FILE_BYTES {
        return Err(DecodeError::Length {
            len: bytes.len(),
            max: FILE_BYTES,
        });
    }
    if field::<8>(bytes, 0) != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = u32::from_le_bytes(field(bytes, OFF_VERSION));
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let stored = u32::from_le_bytes(field(bytes, OFF_CRC));
    let computed = crc32c(bytes.get(..OFF_CRC).unwrap_or_default());
    if stored != computed {
        return Err(DecodeError::Crc { stored, computed });
    }
    let offset = u64::from_le_bytes(field(bytes, OFF_OFFSET));
    let interval = u64::from_le_bytes(field(bytes, OFF_INTERVAL));
    let policy = match field::<1>(bytes, OFF_POLICY) {
        [POLICY_ALWAYS] => FlushPolicy::Always,
        [POLICY_NEVER] => FlushPolicy::Never,
        [POLICY_INTERVAL] if (1..=FLUSH_INTERVAL_MS_MAX).contains(&interval) => {
            FlushPolicy::IntervalMs(interval)
        }
        [POLICY_INTERVAL] => {
            return Err(DecodeError::Policy(format!(
                "interval {interval} ms is outside 1..={FLUSH_INTERVAL_MS_MAX}"
            )));
        }
        [other] => return Err(DecodeError::Policy(format!("unknown policy byte {other}"))),
    };
    Ok(RecoveryPoint { offset, policy })
}

/// What [`read`] found in a partition directory.
#[derive(Debug)]
pub(crate) enum Found {
    /// A valid file.
    Valid(RecoveryPoint),
    /// No file (a partition written before recovery points existed, or never opened).
    Missing,
    /// A file that does not decode.
    Invalid(DecodeError),
}

/// Path of the file in partition directory `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the file in partition directory `dir`, at most `FILE_BYTES + 1` bytes of it.
///
/// # Errors
/// [`super::Error::Io`] when the file exists but cannot be read.
pub(crate) fn read(dir: &Path) -> Result<Found> {
    let path = path(dir);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(io_at(&path)(e)),
    };
    let mut bytes = Vec::with_capacity(FILE_BYTES + 1);
    file.take(FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_at(&path))?;
    Ok(match decode(&bytes) {
        Ok(rp) => Found::Valid(rp),
        Err(e) => Found::Invalid(e),
    })
}

/// Writes the file in partition directory `dir` atomically: a temporary file, fsynced, renamed
/// over the old one, and the directory fsynced.
///
/// # Errors
/// [`super::Error::Io`] naming the file or directory.
pub(crate) fn write(dir: &Path, rp: RecoveryPoint) -> Result<()> {
    let tmp = dir.join(TMP_FILE_NAME);
    let mut file = std::fs::File::create(&tmp).map_err(io_at(&tmp))?;
    file.write_all(&encode(rp)).map_err(io_at(&tmp))?;
    file.sync_all().map_err(io_at(&tmp))?;
    drop(file);
    let target = path(dir);
    std::fs::rename(&tmp, &target).map_err(io_at(&target))?;
    super::writer::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::{
        DecodeError, FILE_BYTES, OFF_CRC, OFF_INTERVAL, OFF_POLICY, OFF_VERSION, RecoveryPoint,
        decode, encode,
    };
    use crate::log::segment::crc32c;
    use crate::log::{FLUSH_INTERVAL_MS_MAX, FlushPolicy};

    fn rp(offset: u64, policy: FlushPolicy) -> RecoveryPoint {
        RecoveryPoint { offset, policy }
    }

    /// Re-seals `bytes` with a correct CRC after a field was changed.
    fn reseal(bytes: &mut [u8]) {
        let crc = crc32c(&bytes[..OFF_CRC]);
        bytes[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn every_policy_round_trips() {
        for policy in [
            FlushPolicy::Always,
            FlushPolicy::Never,
            FlushPolicy::IntervalMs(1),
            FlushPolicy::IntervalMs(100),
            FlushPolicy::IntervalMs(FLUSH_INTERVAL_MS_MAX),
        ] {
            for offset in [0, 1, 4096, u64::MAX] {
                let bytes = encode(rp(offset, policy));
                assert_eq!(bytes.len(), FILE_BYTES);
                assert_eq!(decode(&bytes), Ok(rp(offset, policy)));
            }
        }
    }

    /// Format version 1's golden file still decodes, and the encoder still writes its bytes.
    #[test]
    fn golden_file_v1_still_loads() {
        let golden = include_bytes!("../../tests/fixtures/log/recovery-point-v1");
        let expected = rp(60, FlushPolicy::IntervalMs(100));
        assert_eq!(decode(golden), Ok(expected));
        assert_eq!(&encode(expected)[..], &golden[..]);
    }

    #[test]
    fn the_layout_matches_the_format_document() {
        let bytes = encode(rp(0x0102_0304_0506_0708, FlushPolicy::IntervalMs(250)));
        assert_eq!(&bytes[..8], b"SCRECPT\0");
        assert_eq!(bytes[OFF_VERSION..OFF_VERSION + 4], 1u32.to_le_bytes());
        assert_eq!(bytes[12..20], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(bytes[OFF_POLICY], 1);
        assert_eq!(bytes[OFF_INTERVAL..OFF_CRC], 250u64.to_le_bytes());
        assert_eq!(
            bytes[OFF_CRC..],
            crc32c(&bytes[..OFF_CRC]).to_le_bytes(),
            "CRC-32C of bytes 0..29, little-endian"
        );
    }

    #[test]
    fn the_length_is_exact() {
        let bytes = encode(rp(7, FlushPolicy::Never));
        assert!(decode(&bytes).is_ok(), "the maximum, {FILE_BYTES} bytes");
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            decode(&longer),
            Err(DecodeError::Length {
                len: FILE_BYTES + 1,
                max: FILE_BYTES
            })
        );
        assert_eq!(
            decode(&bytes[..FILE_BYTES - 1]),
            Err(DecodeError::Length {
                len: FILE_BYTES - 1,
                max: FILE_BYTES
            })
        );
        assert!(matches!(
            decode(&[]),
            Err(DecodeError::Length { len: 0, .. })
        ));
    }

    #[test]
    fn an_interval_is_checked_at_its_limit() {
        let mut bytes = encode(rp(7, FlushPolicy::IntervalMs(FLUSH_INTERVAL_MS_MAX)));
        assert_eq!(
            decode(&bytes),
            Ok(rp(7, FlushPolicy::IntervalMs(FLUSH_INTERVAL_MS_MAX)))
        );
        bytes[OFF_INTERVAL..OFF_CRC].copy_from_slice(&(FLUSH_INTERVAL_MS_MAX + 1).to_le_bytes());
        reseal(&mut bytes);
        assert!(matches!(decode(&bytes), Err(DecodeError::Policy(_))));
        bytes[OFF_INTERVAL..OFF_CRC].copy_from_slice(&0u64.to_le_bytes());
        reseal(&mut bytes);
        assert!(matches!(decode(&bytes), Err(DecodeError::Policy(_))));
    }

    #[test]
    fn a_bad_field_is_refused() {
        let good = encode(rp(42, FlushPolicy::Always));
        let mut bad_policy = good;
        bad_policy[OFF_POLICY] = 3;
        reseal(&mut bad_policy);
        assert!(matches!(decode(&bad_policy), Err(DecodeError::Policy(_))));
        let mut bad_version = good;
        bad_version[OFF_VERSION] = 2;
        reseal(&mut bad_version);
        assert_eq!(decode(&bad_version), Err(DecodeError::Version(2)));
        let mut bad_magic = good;
        bad_magic[0] = b'X';
        reseal(&mut bad_magic);
        assert_eq!(decode(&bad_magic), Err(DecodeError::Magic));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let good = encode(rp(42, FlushPolicy::IntervalMs(100)));
        for at in 0..FILE_BYTES {
            for bit in 0..8 {
                let mut bytes = good;
                bytes[at] ^= 1 << bit;
                assert!(decode(&bytes).is_err(), "flip of bit {bit} at {at}");
            }
        }
    }
}
