//! The cache module's error type: failures of the snapshot file and of RESP protocol input.
//!
//! Command-level failures (wrong type, not an integer, syntax) are not errors of this type: they
//! are Redis error replies ([`crate::cache::Frame::Error`]) because a client expects them as data.

use std::path::PathBuf;

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The snapshot file could not be read or written.
    #[error("snapshot {path}: {source}")]
    SnapshotIo {
        /// The snapshot file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot file is damaged (bad magic, checksum or encoding).
    #[error("snapshot {path} is corrupt: {reason}")]
    SnapshotCorrupt {
        /// The snapshot file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A RESP frame broke the protocol or one of its limits; the text is Redis's own.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

/// A protocol violation in client input. `Display` gives Redis's exact reply text (without the
/// leading `-`); the connection is closed after it is sent, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `*<n>` with a non-number or `n` above the multibulk limit.
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$<n>` with a non-number or `n` above the bulk limit.
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// `*<n>` from a client that has not authenticated, with `n` above
    /// [`RESP_UNAUTH_MULTIBULK_LEN_MAX`](crate::cache::RESP_UNAUTH_MULTIBULK_LEN_MAX).
    #[error("ERR Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// `$<n>` from a client that has not authenticated, with `n` above
    /// [`RESP_UNAUTH_BULK_BYTES_MAX`](crate::cache::RESP_UNAUTH_BULK_BYTES_MAX).
    #[error("ERR Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// An element of a multibulk request that is not a bulk string.
    #[error("ERR Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// An inline request longer than the inline limit without a newline.
    #[error("ERR Protocol error: too big inline request")]
    InlineTooBig,
    /// A `*` header line longer than the inline limit.
    #[error("ERR Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    /// A `$` header line longer than the inline limit.
    #[error("ERR Protocol error: too big bulk count string")]
    BulkCountTooBig,
    /// An inline request with an unterminated quote.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A reply frame that does not parse (client side decoding only).
    #[error("ERR Protocol error: {0}")]
    Malformed(&'static str),
}

/// Result alias with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
