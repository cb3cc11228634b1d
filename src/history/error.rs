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
    /// A write batch holds nothing to write (`insertMany` of no documents): MongoDB's code 16
    /// InvalidLength.
    #[error("Write batch sizes must be between 1 and {max}. Got 0 operations.")]
    EmptyWriteBatch {
        /// The most operations a batch may hold.
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
    /// An aggregation expression cannot be parsed: an unknown operator (168
    /// InvalidPipelineOperator), a wrong operand count (16020 …), an undefined variable, a
    /// malformed operator object. Reported when the pipeline is built, before any document is
    /// read; the message is MongoDB's, with the stage's context (`Invalid $project :: caused by
    /// :: `) where MongoDB gives one.
    #[error("{message}")]
    InvalidExpression {
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
    /// A read (or calls run under `History::with_time_limit`) ran past its `maxTimeMS` or
    /// the store's `default_max_time_ms`: code 50 MaxTimeMSExpired, with MongoDB's message.
    #[error("operation exceeded time limit")]
    MaxTimeExpired,
    /// A read's collection was dropped or replaced (`$out`) under it [`READ_ATTEMPTS_MAX`]
    /// times in a row: code 175 QueryPlanKilled, as MongoDB kills a query whose collection
    /// goes away while it yields.
    ///
    /// [`READ_ATTEMPTS_MAX`]: super::READ_ATTEMPTS_MAX
    #[error("collection dropped or replaced while the query read it: {ns}")]
    QueryPlanKilled {
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
    /// A change stream's pipeline changed or removed an event's `_id`, its resume token (code
    /// 280, ChangeStreamFatalError, with MongoDB's message and the label
    /// `NonResumableChangeStreamError`): the stream ends.
    #[error(
        "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed. Expected: {expected} but found: {found}"
    )]
    ResumeTokenModified {
        /// `{ _id: <token> }` as rendered in MongoDB's message.
        expected: String,
        /// The event's `{ _id: … }` after the pipeline (`{}` when it has none).
        found: String,
    },
    /// An operation is not allowed where it was asked for (code 20, IllegalOperation), such as
    /// a stage that may not run in a change stream's pipeline.
    #[error("{0}")]
    IllegalOperation(String),
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

/// MongoDB's name for an assertion without a code name of its own (`Location<code>`), for the
/// codes aggregation expressions report; any other code is an internal error.
fn location_name(code: i32) -> &'static str {
    /// Codes MongoDB reports under their location's name, sorted.
    const LOCATIONS: &[(i32, &str)] = &[
        (10065, "Location10065"),
        (15948, "Location15948"),
        (15952, "Location15952"),
        (15958, "Location15958"),
        (15981, "Location15981"),
        (15983, "Location15983"),
        (15998, "Location15998"),
        (16004, "Location16004"),
        (16006, "Location16006"),
        (16007, "Location16007"),
        (16034, "Location16034"),
        (16035, "Location16035"),
        (16410, "Location16410"),
        (16412, "Location16412"),
        (16610, "Location16610"),
        (16611, "Location16611"),
        (16866, "Location16866"),
        (16867, "Location16867"),
        (16868, "Location16868"),
        (16869, "Location16869"),
        (16872, "Location16872"),
        (16874, "Location16874"),
        (16875, "Location16875"),
        (16876, "Location16876"),
        (16877, "Location16877"),
        (16878, "Location16878"),
        (16879, "Location16879"),
        (16880, "Location16880"),
        (16882, "Location16882"),
        (16883, "Location16883"),
        (17040, "Location17040"),
        (17041, "Location17041"),
        (17042, "Location17042"),
        (17043, "Location17043"),
        (17044, "Location17044"),
        (17045, "Location17045"),
        (17046, "Location17046"),
        (17047, "Location17047"),
        (17048, "Location17048"),
        (17049, "Location17049"),
        (17080, "Location17080"),
        (17081, "Location17081"),
        (17082, "Location17082"),
        (17083, "Location17083"),
        (17276, "Location17276"),
        (18533, "Location18533"),
        (18534, "Location18534"),
        (18535, "Location18535"),
        (18536, "Location18536"),
        (18628, "Location18628"),
        (18629, "Location18629"),
        (28646, "Location28646"),
        (28647, "Location28647"),
        (28648, "Location28648"),
        (28649, "Location28649"),
        (28650, "Location28650"),
        (28651, "Location28651"),
        (28656, "Location28656"),
        (28657, "Location28657"),
        (28664, "Location28664"),
        (28667, "Location28667"),
        (28680, "Location28680"),
        (28689, "Location28689"),
        (28690, "Location28690"),
        (28691, "Location28691"),
        (28714, "Location28714"),
        (28724, "Location28724"),
        (28725, "Location28725"),
        (28726, "Location28726"),
        (28727, "Location28727"),
        (28728, "Location28728"),
        (28729, "Location28729"),
        (28745, "Location28745"),
        (28746, "Location28746"),
        (28747, "Location28747"),
        (28748, "Location28748"),
        (28749, "Location28749"),
        (28756, "Location28756"),
        (28757, "Location28757"),
        (28758, "Location28758"),
        (28759, "Location28759"),
        (28761, "Location28761"),
        (28762, "Location28762"),
        (28763, "Location28763"),
        (28764, "Location28764"),
        (28765, "Location28765"),
        (28766, "Location28766"),
        (28808, "Location28808"),
        (28809, "Location28809"),
        (28810, "Location28810"),
        (28811, "Location28811"),
        (28812, "Location28812"),
        (28818, "Location28818"),
        (28822, "Location28822"),
        (31249, "Location31249"),
        (31250, "Location31250"),
        (31252, "Location31252"),
        (31253, "Location31253"),
        (31254, "Location31254"),
        (31310, "Location31310"),
        (31325, "Location31325"),
        (34435, "Location34435"),
        (34443, "Location34443"),
        (34444, "Location34444"),
        (34445, "Location34445"),
        (34446, "Location34446"),
        (34447, "Location34447"),
        (34448, "Location34448"),
        (34449, "Location34449"),
        (34450, "Location34450"),
        (34451, "Location34451"),
        (34452, "Location34452"),
        (34453, "Location34453"),
        (34454, "Location34454"),
        (34455, "Location34455"),
        (34471, "Location34471"),
        (34473, "Location34473"),
        (40060, "Location40060"),
        (40061, "Location40061"),
        (40062, "Location40062"),
        (40063, "Location40063"),
        (40064, "Location40064"),
        (40065, "Location40065"),
        (40066, "Location40066"),
        (40067, "Location40067"),
        (40068, "Location40068"),
        (40075, "Location40075"),
        (40076, "Location40076"),
        (40077, "Location40077"),
        (40078, "Location40078"),
        (40079, "Location40079"),
        (40080, "Location40080"),
        (40085, "Location40085"),
        (40086, "Location40086"),
        (40087, "Location40087"),
        (40090, "Location40090"),
        (40091, "Location40091"),
        (40092, "Location40092"),
        (40096, "Location40096"),
        (40097, "Location40097"),
        (40147, "Location40147"),
        (40148, "Location40148"),
        (40149, "Location40149"),
        (40156, "Location40156"),
        (40157, "Location40157"),
        (40158, "Location40158"),
        (40159, "Location40159"),
        (40160, "Location40160"),
        (40169, "Location40169"),
        (40170, "Location40170"),
        (40171, "Location40171"),
        (40176, "Location40176"),
        (40181, "Location40181"),
        (40183, "Location40183"),
        (40191, "Location40191"),
        (40192, "Location40192"),
        (40193, "Location40193"),
        (40194, "Location40194"),
        (40195, "Location40195"),
        (40196, "Location40196"),
        (40197, "Location40197"),
        (40198, "Location40198"),
        (40199, "Location40199"),
        (40200, "Location40200"),
        (40201, "Location40201"),
        (40202, "Location40202"),
        (40228, "Location40228"),
        (40231, "Location40231"),
        (40239, "Location40239"),
        (40240, "Location40240"),
        (40241, "Location40241"),
        (40242, "Location40242"),
        (40243, "Location40243"),
        (40244, "Location40244"),
        (40245, "Location40245"),
        (40246, "Location40246"),
        (40324, "Location40324"),
        (40352, "Location40352"),
        (40353, "Location40353"),
        (40386, "Location40386"),
        (40390, "Location40390"),
        (40392, "Location40392"),
        (40393, "Location40393"),
        (40394, "Location40394"),
        (40395, "Location40395"),
        (40397, "Location40397"),
        (40398, "Location40398"),
        (40400, "Location40400"),
        (40485, "Location40485"),
        (40517, "Location40517"),
        (40535, "Location40535"),
        (40536, "Location40536"),
        (40539, "Location40539"),
        (40540, "Location40540"),
        (40541, "Location40541"),
        (40542, "Location40542"),
        (40600, "Location40600"),
        (40684, "Location40684"),
        (50694, "Location50694"),
        (50695, "Location50695"),
        (50696, "Location50696"),
        (50699, "Location50699"),
        (50700, "Location50700"),
        (50752, "Location50752"),
        (51081, "Location51081"),
        (51082, "Location51082"),
        (51083, "Location51083"),
        (5107200, "Location5107200"),
        (5107201, "Location5107201"),
    ];
    LOCATIONS
        .binary_search_by_key(&code, |(c, _)| *c)
        .ok()
        .and_then(|i| LOCATIONS.get(i))
        .map_or("InternalError", |(_, name)| name)
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
            Self::EmptyWriteBatch { .. } => 16,
            Self::MemoryLimitExceeded {
                allow_disk_use: false,
                ..
            } => 292,
            Self::MemoryLimitExceeded {
                allow_disk_use: true,
                ..
            } => 146,
            Self::Unsupported(_) => 115,
            Self::MaxTimeExpired => 50,
            Self::QueryPlanKilled { .. } => 175,
            Self::Update { code, .. }
            | Self::Expression { code, .. }
            | Self::InvalidExpression { code, .. } => *code,
            Self::DuplicateKey { .. } => 11000,
            Self::IndexConflict { .. } => 86,
            Self::IndexNotFound { .. } => 27,
            Self::NamespaceNotFound { .. } => 26,
            Self::NamespaceExists { .. } => 48,
            Self::ChangeStreamHistoryLost | Self::ResumeTokenAhead { .. } => 286,
            Self::InvalidResumeToken(_) => 260,
            Self::ResumeTokenModified { .. } => 280,
            Self::IllegalOperation(_) => 20,
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
            16 => "InvalidLength",
            115 => "CommandNotSupported",
            50 => "MaxTimeMSExpired",
            175 => "QueryPlanKilled",
            292 => "QueryExceededMemoryLimitNoDiskUseAllowed",
            146 => "ExceededMemoryLimit",
            11000 => "DuplicateKey",
            86 => "IndexKeySpecsConflict",
            27 => "IndexNotFound",
            26 => "NamespaceNotFound",
            48 => "NamespaceExists",
            286 => "ChangeStreamHistoryLost",
            260 => "InvalidResumeToken",
            280 => "ChangeStreamFatalError",
            20 => "IllegalOperation",
            47 => "NoMatchingDocument",
            14 => "TypeMismatch",
            28 => "PathNotViable",
            40 => "ConflictingUpdateOperators",
            66 => "ImmutableField",
            54 => "NotSingleValueField",
            9 => "FailedToParse",
            72 => "InvalidOptions",
            13113 => "MergeStageNoMatchingDocument",
            232 => "MaxSubPipelineDepthExceeded",
            // MongoDB names an assertion without its own code name after its location.
            4568 => "Location4568",
            16389 => "Location16389",
            16020 => "Location16020",
            16612 => "Location16612",
            17124 => "Location17124",
            40081 => "Location40081",
            16702 => "Location16702",
            168 => "InvalidPipelineOperator",
            40414 => "IDLFailedToParse",
            40415 => "IDLUnknownField",
            241 => "ConversionFailure",
            52 => "DollarPrefixedFieldName",
            56 => "EmptyFieldName",
            10 => "InvalidDBRef",
            code => location_name(code),
        }
    }

    /// Error labels MongoDB attaches (`NonResumableChangeStreamError` on 286 and 280).
    #[must_use]
    pub fn labels(&self) -> &'static [&'static str] {
        match self {
            Self::ChangeStreamHistoryLost
            | Self::ResumeTokenAhead { .. }
            | Self::ResumeTokenModified { .. } => &["NonResumableChangeStreamError"],
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
