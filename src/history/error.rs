//! The history module's one error type, [`Error`], and its [`Result`] alias.
//!
//! Variants are named after the failure. Those that MongoDB also reports carry its numeric code
//! through [`Error::code`] and its code name through [`Error::code_name`], so surfaces can answer
//! in MongoDB's own shape without knowing the variants.

use std::path::PathBuf;

/// Result alias for history calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a history call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database or collection name is empty, too long or has forbidden characters.
    #[error("invalid namespace `{name}`: {reason}")]
    InvalidNamespace {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A document is larger than the limit once encoded as BSON.
    #[error("document is {len} bytes, more than the {max} byte limit")]
    DocumentTooLarge {
        /// Encoded size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A document, filter, update or pipeline nests deeper than the limit.
    #[error("nesting depth {depth} exceeds the limit of {max} levels")]
    NestingTooDeep {
        /// The depth reached.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A dotted field path has more parts than the limit (MongoDB: "FieldPath is too long",
    /// code 15).
    #[error("FieldPath is too long: {parts} parts, more than the limit of {max}")]
    PathTooLong {
        /// The number of parts given.
        parts: usize,
        /// The limit.
        max: usize,
    },
    /// An encoded storage key is longer than the storage engine accepts.
    #[error("key is {len} bytes, more than the {max} byte limit")]
    KeyTooLarge {
        /// Encoded key length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A request list (documents, operations, pipeline stages, index keys …) is too long.
    #[error("{what} has {len} entries, more than the limit of {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A blocking stage (an in-memory sort, `$group`, the documents `$lookup` joins, the copies
    /// `$unwind` makes) would hold more bytes (BSON size) than its limit: MongoDB's code 292
    /// QueryExceededMemoryLimitNoDiskUseAllowed, or code 146 ExceededMemoryLimit when
    /// `allowDiskUse` raised the limit (this store has no disk to spill to).
    #[error("{}", memory_limit_message(*.executor, .stage, *.max, *.allow_disk_use))]
    MemoryLimitExceeded {
        /// The command the stage ran in (for MongoDB's message).
        executor: Executor,
        /// The stage, as MongoDB names it (`$sort`, `$group` …).
        stage: &'static str,
        /// Bytes the stage would have held.
        len: usize,
        /// The limit in bytes.
        max: usize,
        /// Whether the request passed `allowDiskUse: true`.
        allow_disk_use: bool,
    },
    /// An aggregation expression cannot be evaluated on a document: an operand of a type or
    /// count the operator does not take, or a division by zero. Carries MongoDB's code (14
    /// TypeMismatch, 16020, 40081 …) and its message.
    #[error("PlanExecutor error during aggregation :: caused by :: {message}")]
    Expression {
        /// MongoDB's code for the failure.
        code: i32,
        /// MongoDB's message.
        message: String,
    },
    /// A document an aggregation stage produced or would return, or a value an expression
    /// built, is larger than the limit once encoded as BSON: MongoDB's code 10334
    /// BSONObjectTooLarge and its text, naming the document's first element.
    #[error("{}", object_too_large_message(*.len, *.max, .first.as_deref()))]
    ObjectTooLarge {
        /// Encoded size in bytes (as far as it was counted).
        len: usize,
        /// The limit in bytes.
        max: usize,
        /// The document's first element, rendered as MongoDB does (none for a value).
        first: Option<String>,
    },
    /// The documents one `$lookup` matched for one document are larger than the limit
    /// together (MongoDB's code 4568).
    #[error(
        "PlanExecutor error during aggregation :: caused by :: Total size of documents in {from} matching pipeline's $lookup stage exceeds {max} bytes"
    )]
    LookupTooLarge {
        /// The foreign collection.
        from: String,
        /// The matched documents' bytes as far as they were counted.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The documents one `find` or `aggregate` would return are larger than the limit
    /// together (code 16389, MongoDB's code for an aggregation result over its single-reply
    /// limit).
    #[error("{}", result_too_large_message(*.executor, *.max))]
    ResultTooLarge {
        /// The command.
        executor: Executor,
        /// The result's bytes as far as they were counted.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A filter, projection, sort, update, pipeline or option is malformed (MongoDB code 2).
    #[error("{0}")]
    BadValue(String),
    /// An operator MongoDB has but this store does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An update cannot be applied to a document (MongoDB codes 14, 28, 40, 66 …).
    #[error("{message}")]
    Update {
        /// MongoDB's code for the failure.
        code: i32,
        /// MongoDB-shaped message.
        message: String,
    },
    /// A unique index already holds the key (MongoDB code 11000).
    #[error("E11000 duplicate key error collection: {ns} index: {index} dup key: {key}")]
    DuplicateKey {
        /// `db.collection`.
        ns: String,
        /// Index name.
        index: String,
        /// The duplicated key, rendered as MongoDB does (`{ field: value }`).
        key: String,
    },
    /// An index with the same name exists with a different specification (code 86).
    #[error("index `{name}` already exists with a different key or options")]
    IndexConflict {
        /// The index name.
        name: String,
    },
    /// No index by that name (code 27).
    #[error("index not found with name [{name}]")]
    IndexNotFound {
        /// The index name.
        name: String,
    },
    /// The collection does not exist (code 26).
    #[error("ns not found: {ns}")]
    NamespaceNotFound {
        /// `db.collection`.
        ns: String,
    },
    /// The rename target exists (code 48).
    #[error("target namespace exists: {ns}")]
    NamespaceExists {
        /// `db.collection`.
        ns: String,
    },
    /// A change stream cannot resume: the point is no longer in the oplog (code 286).
    #[error(
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog."
    )]
    ChangeStreamHistoryLost,
    /// A resume token names an event after the last one in the oplog (code 286, as MongoDB
    /// answers a resume point it cannot find): the store was reset since (an ephemeral
    /// restart) or the token is from another store. Resuming there would skip events.
    #[error(
        "Resume of change stream was not possible, as the resume point may no longer be in the oplog: the token is for event {seq}, after the last event {last}"
    )]
    ResumeTokenAhead {
        /// The event sequence the token names.
        seq: u64,
        /// The last event sequence in the oplog.
        last: u64,
    },
    /// A resume token cannot be decoded or used (code 260).
    #[error("invalid resume token: {0}")]
    InvalidResumeToken(String),
    /// `fullDocument: required` or `fullDocumentBeforeChange: required` found no image (code 47).
    #[error("{0}")]
    NoMatchingDocument(String),
    /// An earlier storage failure made the store read-only until restart.
    #[error("storage is poisoned by an earlier fatal error; writes are refused until restart")]
    Poisoned,
    /// The storage engine failed.
    #[error("storage failure while {context}: {source}")]
    Storage {
        /// What the store was doing.
        context: &'static str,
        /// The storage engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Opening the store failed.
    #[error("cannot open the history store at {path}: {source}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// The storage engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored record could not be decoded.
    #[error("corrupt stored {what}: {reason}")]
    Corrupt {
        /// Which record kind.
        what: &'static str,
        /// Why it failed to decode.
        reason: String,
    },
    /// A lock was poisoned by a panicking thread.
    #[error("internal lock poisoned")]
    LockPoisoned,
}

/// The command a blocking stage runs in, which MongoDB's error text names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// A `find` (its in-memory sort).
    Find,
    /// An `aggregate`.
    Aggregation,
}

/// MongoDB's text for a blocking stage over its memory limit.
fn memory_limit_message(
    executor: Executor,
    stage: &str,
    max: usize,
    allow_disk_use: bool,
) -> String {
    let prefix = match executor {
        Executor::Find => "Executor error during find command",
        Executor::Aggregation => "PlanExecutor error during aggregation",
    };
    let cause = if allow_disk_use {
        format!(
            "Exceeded memory limit for {stage} of {max} bytes even with allowDiskUse:true; \
             this store keeps blocking stages in memory and cannot spill them to disk."
        )
    } else if stage == "$sort" {
        format!(
            "Sort exceeded memory limit of {max} bytes, but did not opt in to external sorting."
        )
    } else {
        format!(
            "Exceeded memory limit for {stage}, but didn't allow external sort. \
             Pass allowDiskUse:true to opt in."
        )
    };
    format!("{prefix} :: caused by :: {cause}")
}

/// MongoDB's text for a document over the BSON size limit (`BSONObj::_assertInvalid`).
fn object_too_large_message(len: usize, max: usize, first: Option<&str>) -> String {
    let first = first.map_or_else(String::new, |f| format!(" First element: {f}"));
    format!(
        "PlanExecutor error during aggregation :: caused by :: BSONObj size: {len} (0x{len:X}) \
         is invalid. Size must be between 0 and {max}({}MB){first}",
        max / (1024 * 1024)
    )
}

/// The text for a result over [`RESULT_BYTES_MAX`](super::RESULT_BYTES_MAX).
fn result_too_large_message(executor: Executor, max: usize) -> String {
    match executor {
        Executor::Find => format!(
            "Executor error during find command :: caused by :: find result exceeds the \
             maximum response size of {max} bytes; use limit and skip to page through it"
        ),
        Executor::Aggregation => format!(
            "PlanExecutor error during aggregation :: caused by :: aggregation result exceeds \
             the maximum response size of {max} bytes; use $limit and $skip to page through it"
        ),
    }
}

impl<T> From<std::sync::PoisonError<T>> for Error {
    fn from(_: std::sync::PoisonError<T>) -> Self {
        Self::LockPoisoned
    }
}

impl Error {
    /// Whether the failure lies in one operation's input (a duplicate key, a document or key
    /// that cannot be stored, a bad value or update): the same write fails again, and writes
    /// without it can succeed. Storage, corruption, a poisoned store and namespace errors are
    /// not.
    #[must_use]
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::DuplicateKey { .. }
                | Self::DocumentTooLarge { .. }
                | Self::KeyTooLarge { .. }
                | Self::NestingTooDeep { .. }
                | Self::PathTooLong { .. }
                | Self::BadValue(_)
                | Self::Update { .. }
        )
    }

    /// MongoDB's numeric error code for this failure.
    #[must_use]
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidNamespace { .. } => 73,
            Self::DocumentTooLarge { .. }
            | Self::KeyTooLarge { .. }
            | Self::ObjectTooLarge { .. } => 10334,
            Self::LookupTooLarge { .. } => 4568,
            Self::ResultTooLarge { .. } => 16389,
            Self::NestingTooDeep { .. } | Self::PathTooLong { .. } => 15,
            Self::TooMany { .. } | Self::BadValue(_) => 2,
            Self::MemoryLimitExceeded {
                allow_disk_use: false,
                ..
            } => 292,
            Self::MemoryLimitExceeded {
                allow_disk_use: true,
                ..
            } => 146,
            Self::Unsupported(_) => 115,
            Self::Update { code, .. } | Self::Expression { code, .. } => *code,
            Self::DuplicateKey { .. } => 11000,
            Self::IndexConflict { .. } => 86,
            Self::IndexNotFound { .. } => 27,
            Self::NamespaceNotFound { .. } => 26,
            Self::NamespaceExists { .. } => 48,
            Self::ChangeStreamHistoryLost | Self::ResumeTokenAhead { .. } => 286,
            Self::InvalidResumeToken(_) => 260,
            Self::NoMatchingDocument(_) => 47,
            Self::Poisoned
            | Self::Storage { .. }
            | Self::Open { .. }
            | Self::Corrupt { .. }
            | Self::LockPoisoned => 1,
        }
    }

    /// MongoDB's code name for this failure.
    #[must_use]
    pub fn code_name(&self) -> &'static str {
        match self.code() {
            73 => "InvalidNamespace",
            10334 => "BSONObjectTooLarge",
            15 => "Overflow",
            2 => "BadValue",
            115 => "CommandNotSupported",
            292 => "QueryExceededMemoryLimitNoDiskUseAllowed",
            146 => "ExceededMemoryLimit",
            11000 => "DuplicateKey",
            86 => "IndexKeySpecsConflict",
            27 => "IndexNotFound",
            26 => "NamespaceNotFound",
            48 => "NamespaceExists",
            286 => "ChangeStreamHistoryLost",
            260 => "InvalidResumeToken",
            47 => "NoMatchingDocument",
            14 => "TypeMismatch",
            28 => "PathNotViable",
            40 => "ConflictingUpdateOperators",
            66 => "ImmutableField",
            9 => "FailedToParse",
            // MongoDB names an assertion without its own code name after its location.
            4568 => "Location4568",
            16389 => "Location16389",
            16020 => "Location16020",
            16612 => "Location16612",
            17124 => "Location17124",
            40081 => "Location40081",
            16702 => "Location16702",
            _ => "InternalError",
        }
    }

    /// Error labels MongoDB attaches (`NonResumableChangeStreamError` on 286).
    #[must_use]
    pub fn labels(&self) -> &'static [&'static str] {
        match self {
            Self::ChangeStreamHistoryLost | Self::ResumeTokenAhead { .. } => {
                &["NonResumableChangeStreamError"]
            }
            _ => &[],
        }
    }

    /// Whether the caller's input caused the failure (a 4xx), as opposed to the store.
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Self::Poisoned
                | Self::Storage { .. }
                | Self::Open { .. }
                | Self::Corrupt { .. }
                | Self::LockPoisoned
        )
    }

    /// Shorthand for a [`Error::BadValue`].
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::BadValue(message.into())
    }

    /// Shorthand for an [`Error::Expression`].
    pub(crate) fn expression(code: i32, message: impl Into<String>) -> Self {
        Self::Expression {
            code,
            message: message.into(),
        }
    }

    /// Shorthand for an [`Error::Update`].
    pub(crate) fn update(code: i32, message: impl Into<String>) -> Self {
        Self::Update {
            code,
            message: message.into(),
        }
    }
}
