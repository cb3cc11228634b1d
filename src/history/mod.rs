//! The MongoDB stand-in: BSON documents on fjall with secondary indexes, MongoDB query, update
//! and aggregation semantics, and a persisted, resumable change feed.
//!
//! [`History`] is the facade (a cheap `Clone` handle). Every call is synchronous; async
//! callers go through `tokio::task::spawn_blocking`, except [`ChangeStream::next`], which
//! waits asynchronously for commits.
//!
//! One write lock serialises writers; each write call (and each [`History::commit`]) becomes
//! exactly one atomic fjall batch holding the documents, their index entries, their change
//! events and any metadata, so a crash leaves all or none of them. Readers do not take the lock.
//!
//! ```
//! use bson::doc;
//! use streamcache::clock::ManualClock;
//! use streamcache::history::{FindOptions, History, HistoryConfig, WatchOptions, WatchScope};
//!
//! let dir = tempfile::tempdir()?;
//! let history = History::open(dir.path(), HistoryConfig::default(), ManualClock::shared(1_000))?;
//! let scope = WatchScope::Collection { db: "shop".into(), coll: "orders".into() };
//! let mut stream = history.watch(scope, WatchOptions::default())?;
//! history.insert_one("shop", "orders", doc! {"_id": 1, "customer": "c1", "total": 30})?;
//! let found = history.find("shop", "orders", &doc! {"total": {"$gt": 10}}, &FindOptions::default())?;
//! assert_eq!(found.len(), 1);
//! let batch = stream.try_next_batch(10)?;
//! assert_eq!(batch.events[0].get_str("operationType")?, "insert");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
mod deadline;
mod decimal;
mod decode;
mod document;
mod error;
mod feed;
mod index;
mod keys;
mod query;
mod store;
mod tail;
mod update;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use bson::{Bson, Document, RawDocumentBuf, Timestamp};
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;

pub use deadline::{MAX_TIME_MS_MAX, parse_max_time_ms};
pub use error::{Error, Executor, Result};
pub use feed::{
    ChangeBatch, ChangeStream, FullDocument, FullDocumentBeforeChange, WatchOptions, WatchScope,
};
pub use index::IndexModel;
pub use keys::{KeyFormat, decode_value as decode_key_value, encode_key_value};
pub(crate) use tail::{EventField, OplogTail, StoredChange};

use aggregate::FieldTree;
pub(crate) use aggregate::iso_string;
pub(crate) use decode::write_relaxed_json;
use document::{RawWriter, decode_document, encode_document_into, encode_record, split_path};
pub(crate) use document::{plain_json_number, raw_value, relaxed_extjson};
use index::{Access, IndexDef, Plan};
use keys::{catalog_collection_key, doc_key, oplog_key};
use query::{Filter, Sort};
use store::{Space, Staged, Store, WriteSet};
use update::Update;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Largest document in bytes once encoded as BSON (MongoDB's `maxBsonObjectSize`).
pub const DOCUMENT_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Deepest nesting of documents and arrays, top level = 1 (MongoDB's limit).
pub const NESTING_DEPTH_MAX: usize = 100;
/// Most parts in a dotted field path (`"a.b.c"` has 3), in filters, projections, sorts,
/// updates, aggregation stages and index keys. A document nests at most [`NESTING_DEPTH_MAX`]
/// levels, so a longer path reaches nothing a stored document holds; MongoDB refuses such
/// paths too ("FieldPath is too long"). The path walkers (`$set`, projection trees) take one
/// stack frame per part, so this also bounds their depth.
pub const PATH_PARTS_MAX: usize = NESTING_DEPTH_MAX;
/// Longest storage key in bytes: fjall panics beyond 65535, so keys are checked first.
pub const KEY_BYTES_MAX: usize = 65_535;
/// Longest database name in bytes (MongoDB's limit).
pub const DATABASE_NAME_BYTES_MAX: usize = 64;
/// Longest `db.collection` namespace in bytes (MongoDB's limit).
pub const NAMESPACE_BYTES_MAX: usize = 255;
/// Longest index name in bytes.
pub const INDEX_NAME_BYTES_MAX: usize = 128;
/// Most fields in one compound index (MongoDB's limit).
pub const INDEX_FIELDS_MAX: usize = 32;
/// Most secondary indexes per collection (MongoDB allows 64 including `_id`).
pub const INDEXES_PER_COLLECTION_MAX: usize = 63;
/// Most keys of one sort specification (`find`'s sort, `$sort`, `$push`'s `$sort`), MongoDB's
/// limit: "You can sort on a maximum of 32 keys".
pub const SORT_KEYS_MAX: usize = 32;
/// Most collections across all databases (MongoDB sets none; each is a catalog record on disk
/// and an entry in memory): a write or index creation that would create one more is refused
/// with [`Error::TooMany`].
pub const COLLECTIONS_MAX: usize = 10_000;
/// Most times one read starts over because its collection was dropped or replaced (`$out`)
/// while it read it; past that it fails with [`Error::QueryPlanKilled`] (code 175).
pub const READ_ATTEMPTS_MAX: usize = 3;
/// Most index entries one document may produce in one index (multikey fan-out).
pub const INDEX_ENTRIES_PER_DOCUMENT_MAX: usize = 1_000;
/// Most documents in one insert call and most operations in one [`History::commit`]
/// (MongoDB's `maxWriteBatchSize`).
pub const WRITE_BATCH_OPS_MAX: usize = 100_000;
/// Largest metadata value in bytes written through [`History::commit`].
pub const META_VALUE_BYTES_MAX: usize = 1024 * 1024;
/// Most keys one `$project`, `$addFields` or `$set` specification — or one `$group`
/// specification, or the `output` of `$bucket`/`$bucketAuto` — may hold, counted through its
/// nested objects and expressions before it is parsed (each field is looked up among its
/// level's fields while parsing and for every input field of every document; every
/// accumulator is updated for every document).
pub const FIELD_TREE_KEYS_MAX: usize = 10_000;
/// Most clauses, operators and `$in`/`$nin`/`$all` items in one filter, counted while parsing
/// (each is evaluated against every candidate document).
pub const FILTER_CLAUSES_MAX: usize = 10_000;
/// Most field updates in one update document.
pub const UPDATE_OPERATIONS_MAX: usize = 10_000;
/// Most filters in one update's `arrayFilters` (each identifier is looked up for every
/// `$[<id>]` of every path).
pub const ARRAY_FILTERS_MAX: usize = 1_000;
/// Most operators of one update whose writes, in one document, meet another write only
/// through a respelled array position (`a.1` and `a.01`, or below an array update
/// `x.$[].01` and `x.$[].1`): each write copies the value at its path before it is applied
/// and compares it after (whether two of them changed the element), work in the size of that
/// value, so without a cap `a.01`, `a.001`, … over one large element would cost their count
/// times its size (one operator's writes below an array update reach disjoint elements, so
/// they copy at most the document once).
pub const RESPELLED_WRITES_MAX: usize = 16;
/// Most concrete paths one update path with `$[]`/`$[<id>]` parts expands to in one document
/// (nested `$[]` multiply: `a.$[].b.$[]` over 1,000 × 1,000 elements would be a million).
pub const ARRAY_UPDATE_PATHS_MAX: usize = 100_000;
/// Longest regular expression in bytes (MongoDB's limit).
pub const REGEX_PATTERN_BYTES_MAX: usize = 32_764;
/// Most memory one compiled regular expression may use, in bytes (the regex crate's default
/// bound; a maximal-length literal pattern fits).
pub const REGEX_COMPILED_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Most index ranges one plan scans (the `$in` fan-out of a compound index).
pub const PLAN_RANGES_MAX: usize = 256;
/// Most stages in an aggregation pipeline (MongoDB's limit), and in each sub-pipeline of
/// `$lookup`, `$facet` and `$unionWith`.
pub const PIPELINE_STAGES_MAX: usize = 1_000;
/// Deepest nesting of `$lookup`/`$unionWith` sub-pipelines (MongoDB's
/// `internalMaxSubPipelineViewDepth`): each level builds and runs a pipeline of its own on the
/// caller's stack. Deeper fails with code 232 when the pipeline is built.
pub const SUB_PIPELINE_DEPTH_MAX: usize = 20;
/// Most sub-pipelines one `$facet` runs: each runs over the whole input, so the work and the
/// output document grow with their number. MongoDB bounds them only by the stage document's
/// size; more fails with code 2 when the pipeline is built.
pub const FACET_PIPELINES_MAX: usize = 1_000;
/// Most buckets one `$bucket` (boundaries less one) or `$bucketAuto` (`buckets`) makes: each
/// `$bucket` boundary is a branch every document is tested against, as in MongoDB. MongoDB
/// bounds them only by the stage document's size (`$bucketAuto`: a 32-bit count); more fails
/// with code 2 when the pipeline is built.
pub const BUCKETS_MAX: usize = 10_000;
/// Deepest nesting of one aggregation expression, counted in expressions (an operator, an
/// object or array literal, a leaf): `{$abs: {$abs: 1}}` is 3 deep. Parsing and every
/// document's evaluation recurse once per level, on the caller's stack (a Data API request
/// runs on a 2 MiB blocking-pool thread), so the depth is bounded below what the stage
/// document's own [`NESTING_DEPTH_MAX`] allows; deeper fails with code 15 when the pipeline
/// is built.
pub const EXPRESSION_DEPTH_MAX: usize = 64;
const _: () = assert!(EXPRESSION_DEPTH_MAX < NESTING_DEPTH_MAX);
/// Most null elements an update may add to pad an array.
pub const ARRAY_PAD_MAX: usize = 1_000_000;
/// Most bytes (BSON size) one blocking stage may hold: an in-memory sort (of `find` or
/// `$sort`), `$group`'s groups and accumulated values, the documents `$lookup` joins, the
/// copies `$unwind` makes. MongoDB's `internalQueryMaxBlockingSortMemoryUsageBytes` and
/// `internalDocumentSourceGroupMaxMemoryBytes`, 100 MiB; beyond it the request fails with code
/// 292 unless it passed `allowDiskUse`.
pub const BLOCKING_BYTES_MAX: usize = 100 * 1024 * 1024;
/// Most bytes one blocking stage may hold when the request passed `allowDiskUse: true`. This
/// store has no external sort, so opting in raises the in-memory limit instead, to a bound
/// that still protects the process; beyond it the request fails with code 146.
pub const BLOCKING_BYTES_DISK_USE_MAX: usize = 4 * BLOCKING_BYTES_MAX;
/// Largest document (BSON bytes) an aggregation stage may produce, and largest value (array,
/// object or string) an expression may build: MongoDB's `BSONObjMaxInternalSize`, 16 MiB
/// plus 16 KiB of room for the fields a stage adds to a largest stored document. A bigger one
/// fails the pipeline with code 10334 (BSONObjectTooLarge); so does a returned document
/// bigger than this. The documents one `$lookup` matches for one document fail it with code
/// 4568 beyond this.
pub const STAGE_DOCUMENT_BYTES_MAX: usize = DOCUMENT_BYTES_MAX + 16 * 1024;
/// Deepest nesting of a document an aggregation stage or a pipeline-style update produces,
/// and of a value an expression builds, counted as the field of such a document (its top at
/// depth 2): MongoDB's `maxBSONDepth`, 200, which leaves room over [`NESTING_DEPTH_MAX`] for
/// the levels a stage adds to a stored document (`$lookup`'s `as`, `$facet`, `$group`'s
/// `$push`). A `$reduce` feeds what it builds back into itself and each stage can nest a
/// document deeper, so without it a request could build a value of any depth, and every walk
/// over a value (copy, size, comparison, drop) recurses once per level. Checked as each
/// array or object is built and as each stage's documents come out; deeper fails with code
/// 15 (Overflow).
pub const STAGE_DOCUMENT_DEPTH_MAX: usize = 2 * NESTING_DEPTH_MAX;
const _: () = assert!(STAGE_DOCUMENT_DEPTH_MAX > NESTING_DEPTH_MAX);
/// Most bytes (BSON size, summed) of the documents one `find` or `aggregate` returns: the Data
/// API answers with one response and no cursor, so this bounds what one request makes the
/// process hold and send. Beyond it the request fails with code 16389 (MongoDB's code for an
/// aggregation result over its single-reply limit); `limit`/`skip` (or `$limit`/`$skip`) page
/// through a larger result. The same bound as one blocking stage's memory.
pub const RESULT_BYTES_MAX: usize = BLOCKING_BYTES_MAX;
/// Most oplog entries one change-stream read scans.
pub const OPLOG_READ_BATCH_MAX: usize = 1_024;
/// Most oplog entries one retention pass deletes, but for the rest of a commit it has begun
/// (a commit's entries go together).
pub const OPLOG_TRIM_BATCH_MAX: usize = 4_096;
/// Ceiling for `oplog_bytes_max` in the configuration (1 TiB).
pub const OPLOG_BYTES_MAX: u64 = 1 << 40;
/// Largest write-set buffer (bytes) kept for the next write batch; a bigger one (a batch of
/// many large documents) is freed instead of being held for good.
const WRITE_SET_SPARE_BYTES_MAX: usize = 8 * 1024 * 1024;

const _: () = assert!(
    BLOCKING_BYTES_DISK_USE_MAX.is_multiple_of(BLOCKING_BYTES_MAX)
        && BLOCKING_BYTES_DISK_USE_MAX > BLOCKING_BYTES_MAX,
    "allowDiskUse raises the limit by a whole factor"
);
const _: () = assert!(
    BLOCKING_BYTES_MAX >= DOCUMENT_BYTES_MAX,
    "a blocking stage holds at least one largest document"
);
const _: () = assert!(
    STAGE_DOCUMENT_BYTES_MAX <= RESULT_BYTES_MAX,
    "a response holds at least one largest document a stage may produce"
);
const _: () = assert!(
    DOCUMENT_BYTES_MAX < u32::MAX as usize,
    "fjall values must stay below 4 GiB"
);
const _: () = assert!(
    DATABASE_NAME_BYTES_MAX + 1 + NAMESPACE_BYTES_MAX < KEY_BYTES_MAX,
    "catalog keys fit"
);
const _: () = assert!(
    META_VALUE_BYTES_MAX <= DOCUMENT_BYTES_MAX,
    "metadata values are small"
);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// When acknowledged writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Each write is fsynced before it is acknowledged: survives power loss.
    Always,
    /// Writes reach the OS before they are acknowledged: survives a process kill; the journal
    /// is fsynced at shutdown.
    #[default]
    Never,
}

impl Fsync {
    /// The durability of a commit under this policy.
    fn durability(self) -> Durability {
        match self {
            Self::Always => Durability::SyncAll,
            Self::Never => Durability::Buffer,
        }
    }
}

/// Durability of one storage commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Written to OS buffers.
    Buffer,
    /// fsynced.
    SyncAll,
}

/// The `[history]` configuration section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// fsync policy for writes.
    pub fsync: Fsync,
    /// Oplog retention by size, in bytes (at most [`OPLOG_BYTES_MAX`]).
    pub oplog_bytes_max: u64,
    /// Oplog retention by age, in milliseconds of wall-clock time.
    pub oplog_age_ms_max: u64,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Time limit in milliseconds of a `find`, `count` or `aggregate` that passes no
    /// `maxTimeMS` (MongoDB 8.0's `defaultMaxTimeMS`), and of calls run under
    /// [`History::with_time_limit`] without one (the Data API's writes); 0 = none; at most
    /// [`MAX_TIME_MS_MAX`].
    pub default_max_time_ms: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            fsync: Fsync::Never,
            oplog_bytes_max: 1 << 30,
            oplog_age_ms_max: 7 * 24 * 3600 * 1000,
            cache_bytes: 256 * 1024 * 1024,
            default_max_time_ms: 60_000,
        }
    }
}

impl HistoryConfig {
    /// Checks the settings that have a range: `oplog_bytes_max` must be in
    /// `1..=`[`OPLOG_BYTES_MAX`] (zero would trim every event as it is written),
    /// `default_max_time_ms` in `0..=`[`MAX_TIME_MS_MAX`].
    ///
    /// # Errors
    /// The setting's name and the reason, naming its value and its range.
    pub fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.oplog_bytes_max == 0 || self.oplog_bytes_max > OPLOG_BYTES_MAX {
            return Err((
                "oplog_bytes_max",
                format!("{} is outside 1..={OPLOG_BYTES_MAX}", self.oplog_bytes_max),
            ));
        }
        if self.default_max_time_ms > MAX_TIME_MS_MAX {
            return Err((
                "default_max_time_ms",
                format!(
                    "{} is outside 0..={MAX_TIME_MS_MAX}",
                    self.default_max_time_ms
                ),
            ));
        }
        Ok(())
    }

    /// The commented TOML section for `default_toml()`.
    #[must_use]
    pub fn default_toml() -> String {
        let d = Self::default();
        format!(
            "\n[history]\n\
             # When MongoDB-style writes reach the disk: \"never\" (OS buffers; survives a process kill,\n\
             # fsynced at shutdown) or \"always\" (fsync before acknowledging; survives power loss).\n\
             fsync = \"never\"\n\
             # Change-feed (oplog) retention by size in bytes (at most {OPLOG_BYTES_MAX}); older events are\n\
             # dropped and resuming before them fails with error 286 ChangeStreamHistoryLost.\n\
             oplog_bytes_max = {}\n\
             # Change-feed retention by age in milliseconds.\n\
             oplog_age_ms_max = {}\n\
             # Block cache for documents and indexes, in bytes.\n\
             cache_bytes = {}\n\
             # Time limit in ms of a find, count or aggregate that passes no maxTimeMS (MongoDB 8.0's\n\
             # defaultMaxTimeMS), and of a Data API update, replace or delete without one; past it\n\
             # the request fails with code 50 MaxTimeMSExpired (a write commits nothing). 0 = none.\n\
             default_max_time_ms = {}\n",
            d.oplog_bytes_max, d.oplog_age_ms_max, d.cache_bytes, d.default_max_time_ms
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Public request and result types
// ---------------------------------------------------------------------------------------------

/// Options of [`History::find`].
#[derive(Debug, Clone, Default)]
pub struct FindOptions {
    /// Projection document, with MongoDB's find policies (`{field: 1}`, `{field: 0}`, expressions,
    /// `$slice`, `$elemMatch`, positional `field.$`).
    pub projection: Option<Document>,
    /// Sort document (`{field: 1, other: -1}`).
    pub sort: Option<Document>,
    /// Documents to skip.
    pub skip: u64,
    /// Most documents to return (`None` = all).
    pub limit: Option<u64>,
    /// MongoDB's `allowDiskUse`: an in-memory sort may hold up to
    /// [`BLOCKING_BYTES_DISK_USE_MAX`] instead of [`BLOCKING_BYTES_MAX`] (nothing spills).
    pub allow_disk_use: bool,
    /// MongoDB's `maxTimeMS`: the find fails with code 50 past this many milliseconds (0 = no
    /// limit; `None` = the store's `default_max_time_ms`; at most [`MAX_TIME_MS_MAX`]).
    pub max_time_ms: Option<u64>,
    /// MongoDB's `let` (the drivers' `let_vars`): variables that the filter's `$expr` and the
    /// projection's expressions read as `$$name`, each value an expression computed once before
    /// any document is read (constants, `$$NOW`, earlier variables; a field path is 4890500);
    /// names as `$let`'s (16866–16868).
    pub let_vars: Option<Document>,
}

/// Options of [`History::aggregate_with`].
#[derive(Debug, Clone, Default)]
pub struct AggregateOptions {
    /// MongoDB's `allowDiskUse`: each blocking stage may hold up to
    /// [`BLOCKING_BYTES_DISK_USE_MAX`] instead of [`BLOCKING_BYTES_MAX`] (nothing spills).
    pub allow_disk_use: bool,
    /// MongoDB's `maxTimeMS`, as [`FindOptions::max_time_ms`].
    pub max_time_ms: Option<u64>,
    /// MongoDB's `let`, as [`FindOptions::let_vars`]: the variables every stage's expressions
    /// (sub-pipelines included) read as `$$name`.
    pub let_vars: Option<Document>,
}

/// What an update call changes, as MongoDB's drivers take it: an update document (operators,
/// or a replacement where the call allows one) or an aggregation pipeline of `$addFields`/
/// `$set`, `$project`/`$unset` and `$replaceRoot`/`$replaceWith` stages (a pipeline-style
/// update, whose output replaces each matched document).
///
/// ```
/// use bson::doc;
/// use streamcache::history::UpdateModifications;
///
/// let operators = doc! {"$inc": {"n": 1}};
/// assert!(matches!(UpdateModifications::from(&operators), UpdateModifications::Document(_)));
/// let pipeline = vec![doc! {"$set": {"total": {"$multiply": ["$price", "$qty"]}}}];
/// assert!(matches!(UpdateModifications::from(&pipeline), UpdateModifications::Pipeline(_)));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum UpdateModifications<'a> {
    /// Update operators, or a replacement document.
    Document(&'a Document),
    /// A pipeline-style update.
    Pipeline(&'a [Document]),
}

impl<'a> From<&'a Document> for UpdateModifications<'a> {
    fn from(update: &'a Document) -> Self {
        Self::Document(update)
    }
}

impl<'a> From<&'a [Document]> for UpdateModifications<'a> {
    fn from(pipeline: &'a [Document]) -> Self {
        Self::Pipeline(pipeline)
    }
}

impl<'a> From<&'a Vec<Document>> for UpdateModifications<'a> {
    fn from(pipeline: &'a Vec<Document>) -> Self {
        Self::Pipeline(pipeline)
    }
}

impl<'a, const N: usize> From<&'a [Document; N]> for UpdateModifications<'a> {
    fn from(pipeline: &'a [Document; N]) -> Self {
        Self::Pipeline(pipeline)
    }
}

/// What `$merge` does with an output document that matches no target document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenNotMatched {
    Insert,
    Discard,
    Fail,
}

impl WhenNotMatched {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Discard => "discard",
            Self::Fail => "fail",
        }
    }
}

/// One `$merge` output document and what to do with the target it matches.
pub(crate) struct MergeWrite {
    /// The target document's `on` fields; `None` for a document merged on `_id` without one
    /// (it matches nothing).
    pub(crate) filter: Option<Document>,
    /// The output document (inserted when nothing matches and inserting is asked for).
    pub(crate) doc: Document,
    /// Applied to a matched target; `None` keeps it.
    pub(crate) update: Option<Update>,
    /// `whenMatched: fail`: a matched target is a duplicate key.
    pub(crate) fail_on_match: bool,
}

/// Options of the update calls.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Insert a document seeded from the filter when nothing matches.
    pub upsert: bool,
    /// Update every match (`updateMany`) instead of the first.
    pub multi: bool,
    /// `arrayFilters`: one filter per `$[<id>]` identifier of the update's paths.
    pub array_filters: Option<Vec<Document>>,
    /// MongoDB's `let` (the drivers' `let_vars`): variables that the filter's `$expr` and a
    /// pipeline-style update's expressions read as `$$name`, computed as
    /// [`FindOptions::let_vars`]'s.
    pub let_vars: Option<Document>,
}

/// Options of [`History::replace_with`] (MongoDB's `replaceOne` options).
#[derive(Debug, Clone, Default)]
pub struct ReplaceOptions {
    /// Insert the replacement (with the filter's `_id` when it names one) when nothing
    /// matches.
    pub upsert: bool,
    /// MongoDB's `let`: variables the filter's `$expr` reads as `$$name`, computed as
    /// [`FindOptions::let_vars`]'s.
    pub let_vars: Option<Document>,
}

/// Options of [`History::delete_with`] (MongoDB's `deleteOne`/`deleteMany` options).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Delete every match (`deleteMany`) instead of the first.
    pub multi: bool,
    /// MongoDB's `let`: variables the filter's `$expr` reads as `$$name`, computed as
    /// [`FindOptions::let_vars`]'s.
    pub let_vars: Option<Document>,
}

/// What an update or replace did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateResult {
    /// Documents the filter matched.
    pub matched: u64,
    /// Documents actually changed.
    pub modified: u64,
    /// `_id` of the inserted document when the update upserted.
    pub upserted_id: Option<Bson>,
}

/// Options of [`History::insert_many_with`] (MongoDB's `insertMany` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertManyOptions {
    /// `true` (MongoDB's default): stop at the first failing document; `false`: insert every
    /// valid document and report each failure.
    pub ordered: bool,
}

impl Default for InsertManyOptions {
    fn default() -> Self {
        Self { ordered: true }
    }
}

/// One document an `insertMany` could not insert (MongoDB's `writeErrors` entry).
#[derive(Debug)]
pub struct WriteError {
    /// Position of the document in the request.
    pub index: usize,
    /// Why it failed ([`Error::code`] gives MongoDB's code, e.g. 11000).
    pub error: Error,
}

/// What an `insertMany` did: the documents written (all in one atomic batch) and the failures.
#[derive(Debug, Default)]
pub struct InsertManyResult {
    /// `(position in the request, _id)` of each inserted document, in request order.
    pub inserted: Vec<(usize, Bson)>,
    /// The documents that failed, in request order (at most one when `ordered`).
    pub write_errors: Vec<WriteError>,
}

/// Options of the `find_one_and_*` calls.
#[derive(Debug, Clone, Default)]
pub struct FindAndModifyOptions {
    /// Which match to modify first.
    pub sort: Option<Document>,
    /// Projection of the returned document.
    pub projection: Option<Document>,
    /// Insert when nothing matches (update and replace only).
    pub upsert: bool,
    /// Return the document after the change instead of before it.
    pub return_new: bool,
    /// `arrayFilters` of an update (see [`UpdateOptions::array_filters`]).
    pub array_filters: Option<Vec<Document>>,
    /// MongoDB's `let`, as [`UpdateOptions::let_vars`].
    pub let_vars: Option<Document>,
    /// MongoDB's `maxTimeMS` of `findAndModify` (the drivers' `FindOneAnd*Options::max_time`):
    /// `Some(ms)` runs the call under that limit, as [`History::with_time_limit`] (0: none;
    /// past it [`Error::MaxTimeExpired`] and nothing is committed); `None`, as for any write,
    /// no limit of its own.
    pub max_time_ms: Option<u64>,
}

/// A document already encoded as BSON with `_id` as its first field, checked against the
/// limits of a stored document: the input of [`WriteOp::UpsertEncoded`]. A writer that has
/// its documents as bytes (or as JSON) stores them without building a [`Document`] first.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedDocument {
    bytes: Vec<u8>,
    id: Bson,
}

impl EncodedDocument {
    /// Checks `raw` as storing it requires: framing and UTF-8 at every depth,
    /// [`NESTING_DEPTH_MAX`], [`DOCUMENT_BYTES_MAX`], `_id` first (not an array or a regular
    /// expression) and no `$`-prefixed top-level field.
    ///
    /// # Errors
    /// [`Error::BadValue`], [`Error::NestingTooDeep`], [`Error::DocumentTooLarge`].
    pub fn from_raw(raw: RawDocumentBuf) -> Result<Self> {
        let bytes = raw.into_bytes();
        let id = document::check_stored_raw(&bytes)?;
        Ok(Self { bytes, id })
    }

    /// Encodes a JSON object that needs no Extended JSON reading, with `id` as its `_id`
    /// (replacing any `_id` of the object): integers that fit `i32` become Int32, other
    /// integers Int64, other numbers Double — as bson's own conversion from JSON types them.
    /// `Ok(None)` when the object holds a `$`-prefixed key at any depth or an integer beyond
    /// `i64`: convert those through Extended JSON into a [`Document`] instead.
    ///
    /// # Errors
    /// As [`EncodedDocument::from_raw`], and [`Error::BadValue`] for a key holding a NUL byte.
    pub fn from_plain_json(
        object: &serde_json::Map<String, serde_json::Value>,
        id: Bson,
    ) -> Result<Option<Self>> {
        let mut bytes = Vec::new();
        if !document::encode_plain_json_into(object, &id, &mut bytes)? {
            return Ok(None);
        }
        Ok(Some(Self { bytes, id }))
    }

    /// The document's `_id`.
    #[must_use]
    pub fn id(&self) -> &Bson {
        &self.id
    }
}

/// One write of an atomic [`History::commit`].
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert a document (`_id` generated when absent).
    Insert {
        /// Database.
        db: String,
        /// Collection.
        coll: String,
        /// The document.
        document: Document,
    },
    /// Replace the first document matching `filter` with `document`, inserting it when none
    /// matches (an upsert keyed by the filter).
    Upsert {
        /// Database.
        db: String,
        /// Collection.
        coll: String,
        /// Which document to replace, e.g. `{customerNumber: 7}`.
        filter: Document,
        /// The new document.
        document: Document,
    },
    /// [`WriteOp::Upsert`] keyed by `_id` for an encoded document: replace the document
    /// with `document`'s `_id`, inserting it when there is none. When the collection has no
    /// secondary index and no document with that `_id` exists, the bytes are stored as given
    /// (no decode); otherwise the document is decoded and replaces as `Upsert` does.
    UpsertEncoded {
        /// Database.
        db: String,
        /// Collection.
        coll: String,
        /// The new document.
        document: EncodedDocument,
    },
    /// An update with operators or a replacement.
    Update {
        /// Database.
        db: String,
        /// Collection.
        coll: String,
        /// Which documents.
        filter: Document,
        /// Update document.
        update: Document,
        /// Upsert and multi flags.
        options: UpdateOptions,
    },
    /// Delete the first (or every) match.
    Delete {
        /// Database.
        db: String,
        /// Collection.
        coll: String,
        /// Which documents.
        filter: Document,
        /// Delete every match.
        multi: bool,
    },
}

/// Why [`History::commit_reporting`] wrote nothing.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CommitFailure {
    /// Index in the batch of the operation that failed; `None` when no single operation did.
    pub op: Option<usize>,
    /// The error.
    #[source]
    pub error: Error,
}

/// The outcome of one [`WriteOp`].
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// The inserted `_id`.
    Inserted(Bson),
    /// An update, replace or upsert.
    Updated(UpdateResult),
    /// Number of deleted documents.
    Deleted(u64),
}

// ---------------------------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------------------------

/// A collection's catalog record.
#[derive(Debug, Clone)]
pub(crate) struct CollectionMeta {
    /// Prefix of its document keys.
    pub(crate) id: u32,
    /// Database name.
    pub(crate) db: String,
    /// Collection name.
    pub(crate) coll: String,
    /// Secondary indexes.
    pub(crate) indexes: Vec<Arc<IndexDef>>,
    /// How its document and index keys encode numbers.
    pub(crate) key_format: KeyFormat,
    /// MongoDB's collection UUID: `collectionUUID` of its change events, `info.uuid` of
    /// `listCollections`. Kept by a rename.
    pub(crate) uuid: bson::Uuid,
}

impl CollectionMeta {
    fn to_document(&self) -> Document {
        let mut d = Document::new();
        d.insert("id", i64::from(self.id));
        d.insert("db", self.db.clone());
        d.insert("coll", self.coll.clone());
        d.insert("uuid", self.uuid);
        if let Some(v) = self.key_format.record_value() {
            d.insert("keyFormat", v);
        }
        d.insert(
            "indexes",
            self.indexes
                .iter()
                .map(|i| Bson::Document(i.to_document()))
                .collect::<Vec<_>>(),
        );
        d
    }

    /// The record's collection. A record written before collections had a UUID is given a
    /// fresh one (the store writes it back when it opens); a mistyped one is corrupt.
    fn from_document(d: &Document) -> Result<Self> {
        let corrupt = |r: &str| Error::Corrupt {
            what: "collection record",
            reason: r.to_owned(),
        };
        let uuid = match d.get("uuid") {
            None => bson::Uuid::new(),
            Some(Bson::Binary(b)) if b.subtype == bson::spec::BinarySubtype::Uuid => {
                <[u8; 16]>::try_from(b.bytes.as_slice())
                    .map(bson::Uuid::from_bytes)
                    .map_err(|_| corrupt("uuid"))?
            }
            Some(_) => return Err(corrupt("uuid")),
        };
        let id = d
            .get_i64("id")
            .ok()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| corrupt("id"))?;
        let key_format = match d.get("keyFormat") {
            None => KeyFormat::from_record_value(None),
            Some(Bson::Int32(v)) => KeyFormat::from_record_value(Some(i64::from(*v))),
            Some(_) => None,
        }
        .ok_or_else(|| corrupt("unknown keyFormat (written by a newer build?)"))?;
        let mut indexes = Vec::new();
        for i in d.get_array("indexes").map_err(|_| corrupt("indexes"))? {
            let Bson::Document(i) = i else {
                return Err(corrupt("index entry"));
            };
            indexes.push(Arc::new(IndexDef::from_document(i, key_format)?));
        }
        Ok(Self {
            id,
            db: d.get_str("db").map_err(|_| corrupt("db"))?.to_owned(),
            coll: d.get_str("coll").map_err(|_| corrupt("coll"))?.to_owned(),
            indexes,
            key_format,
            uuid,
        })
    }

    fn ns(&self) -> String {
        format!("{}.{}", self.db, self.coll)
    }
}

type CatalogMap = indexmap::IndexMap<(String, String), Arc<CollectionMeta>>;

/// A namespace borrowed for a catalog lookup, hashed as the `(String, String)` key it stands
/// for (a tuple hashes its parts in order), so a read finds its collection without copying
/// the two names.
#[derive(Hash)]
struct NamespaceRef<'a>(&'a str, &'a str);

impl indexmap::Equivalent<(String, String)> for NamespaceRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// Writer-owned counters, persisted in the catalog's state record on every commit.
#[derive(Debug, Clone)]
struct WriterState {
    /// Last oplog sequence written (0 = none).
    last_seq: u64,
    /// Highest oplog sequence removed by retention (0 = none).
    trimmed_through: u64,
    /// Cluster time of the event at `trimmed_through` ((0, 0) = none removed): a
    /// `startAtOperationTime` at or before it needs a removed event. Persisted because once
    /// retention empties the oplog nothing else records it.
    trimmed_ts: (u32, u32),
    /// Bytes of retained oplog values.
    oplog_bytes: u64,
    /// Last cluster time handed out.
    last_ts: (u32, u32),
    /// Next collection or index id.
    next_id: u32,
    /// Wall time of the oldest retained event (`None` = oplog empty); kept in memory so the
    /// retention check after each commit needs no storage read. Not persisted: recomputed at
    /// open.
    oldest_wall_ms: Option<u64>,
}

impl WriterState {
    fn to_document(&self) -> Document {
        let mut d = Document::new();
        d.insert("last_seq", i64::try_from(self.last_seq).unwrap_or(i64::MAX));
        d.insert(
            "trimmed_through",
            i64::try_from(self.trimmed_through).unwrap_or(i64::MAX),
        );
        d.insert(
            "trimmed_ts",
            Timestamp {
                time: self.trimmed_ts.0,
                increment: self.trimmed_ts.1,
            },
        );
        d.insert(
            "oplog_bytes",
            i64::try_from(self.oplog_bytes).unwrap_or(i64::MAX),
        );
        d.insert(
            "ts",
            Timestamp {
                time: self.last_ts.0,
                increment: self.last_ts.1,
            },
        );
        d.insert("next_id", i64::from(self.next_id));
        d
    }

    /// The state record as [`WriterState::to_document`] writes it. A missing or mistyped field
    /// is [`Error::Corrupt`]: read as 0, `next_id` would hand out ids in use (two collections
    /// on one key prefix) and `last_seq` would overwrite oplog entries. The one exception is
    /// `trimmed_ts`, which records written before it existed lack: it is then taken as the
    /// last cluster time handed out, never before the newest removed event's (so no
    /// `startAtOperationTime` that needs a removed event is accepted), and `History::open`
    /// narrows it to the first retained event's.
    fn from_document(d: &Document) -> Result<Self> {
        let corrupt = |field: &str| Error::Corrupt {
            what: "catalog state",
            reason: format!("`{field}` is missing or not a non-negative integer"),
        };
        let n = |k: &str| {
            d.get_i64(k)
                .ok()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| corrupt(k))
        };
        let ts = d.get_timestamp("ts").map_err(|_| corrupt("ts"))?;
        let next_id = u32::try_from(n("next_id")?)
            .ok()
            .filter(|id| *id >= 1)
            .ok_or_else(|| corrupt("next_id"))?;
        let trimmed_through = n("trimmed_through")?;
        let trimmed_ts = match d.get("trimmed_ts") {
            Some(Bson::Timestamp(t)) => (t.time, t.increment),
            Some(_) => return Err(corrupt("trimmed_ts")),
            None if trimmed_through == 0 => (0, 0),
            None => (ts.time, ts.increment),
        };
        Ok(Self {
            last_seq: n("last_seq")?,
            trimmed_through,
            trimmed_ts,
            oplog_bytes: n("oplog_bytes")?,
            last_ts: (ts.time, ts.increment),
            next_id,
            oldest_wall_ms: None,
        })
    }
}

/// Wall time (milliseconds) and cluster time of a stored oplog entry.
///
/// # Errors
/// [`Error::Corrupt`] for an entry without its `wall` date (read as 0, retention would trim
/// it at once without a word) or its `ts` (a stream could not tell where a time starts).
fn entry_times(entry: &[u8]) -> Result<(u64, (u32, u32))> {
    let entry = decode_document(entry)?;
    let corrupt = |reason: &str| Error::Corrupt {
        what: "oplog entry",
        reason: reason.to_owned(),
    };
    let wall = entry
        .get_datetime("wall")
        .map(|d| d.timestamp_millis())
        .map_err(|_| corrupt("no `wall` date"))?;
    let ts = entry
        .get_timestamp("ts")
        .map_err(|_| corrupt("no `ts` timestamp"))?;
    Ok((u64::try_from(wall).unwrap_or(0), (ts.time, ts.increment)))
}

/// The oplog's extent as readers see it, mirrored from [`WriterState`] after each commit and
/// retention pass so readers need not take the writer lock.
#[derive(Debug, Clone, Copy)]
struct OplogBounds {
    /// [`WriterState::trimmed_through`].
    trimmed_through: u64,
    /// [`WriterState::last_seq`].
    last_seq: u64,
    /// [`WriterState::trimmed_ts`].
    trimmed_ts: (u32, u32),
}

impl OplogBounds {
    fn of(state: &WriterState) -> Self {
        Self {
            trimmed_through: state.trimmed_through,
            last_seq: state.last_seq,
            trimmed_ts: state.trimmed_ts,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The facade
// ---------------------------------------------------------------------------------------------

/// The document store. Cheap to clone; every clone shares one store.
#[derive(Debug, Clone)]
pub struct History {
    inner: Arc<Inner>,
}

/// Shared state behind [`History`].
#[derive(Debug)]
pub(crate) struct Inner {
    store: Store,
    clock: SharedClock,
    config: HistoryConfig,
    ids: document::IdGenerator,
    catalog: RwLock<CatalogMap>,
    writer: Mutex<WriterState>,
    /// The last batch's emptied write set, reused by the next one (taken under `writer`) so a
    /// batch does not regrow its buffer from nothing.
    spare: Mutex<WriteSet>,
    /// The oplog's extent, for readers that do not take the writer lock.
    bounds: RwLock<OplogBounds>,
    notifier: feed::Notifier,
    /// [`BLOCKING_BYTES_MAX`]; tests lower it so they need not hold 100 MiB.
    blocking_bytes_max: std::sync::atomic::AtomicUsize,
    /// [`RESULT_BYTES_MAX`]; tests lower it so they need not return 100 MiB.
    result_bytes_max: std::sync::atomic::AtomicUsize,
    /// How many `$sample` stages have drawn: mixed into each draw's seed, so consecutive
    /// samples differ even while the clock stands still.
    sample_draws: std::sync::atomic::AtomicU64,
    /// Databases that have had a collection since the store opened (taken under `writer`):
    /// MongoDB keeps a database open once created, so dropping it writes `dropDatabase` even
    /// after its last collection went, until a restart.
    open_databases: Mutex<HashSet<String>>,
}

/// Checks a database name.
///
/// # Errors
/// [`Error::InvalidNamespace`].
pub fn check_database_name(db: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidNamespace {
            name: db.to_owned(),
            reason,
        })
    };
    if db.is_empty() {
        return bad("database names cannot be empty");
    }
    if db.len() > DATABASE_NAME_BYTES_MAX {
        return bad("database name is longer than 64 bytes");
    }
    if db.chars().any(|c| {
        matches!(
            c,
            '/' | '\\' | '.' | ' ' | '"' | '$' | '*' | '<' | '>' | ':' | '|' | '?' | '\0'
        )
    }) {
        return bad("database names cannot contain /\\. \"$*<>:|? or NUL");
    }
    Ok(())
}

/// Checks a collection name within a database.
///
/// # Errors
/// [`Error::InvalidNamespace`].
pub fn check_collection_name(db: &str, coll: &str) -> Result<()> {
    check_database_name(db)?;
    let bad = |reason| {
        Err(Error::InvalidNamespace {
            name: coll.to_owned(),
            reason,
        })
    };
    if coll.is_empty() {
        return bad("collection names cannot be empty");
    }
    if db.len() + 1 + coll.len() > NAMESPACE_BYTES_MAX {
        return bad("the namespace db.collection is longer than 255 bytes");
    }
    if coll.contains('$') || coll.contains('\0') {
        return bad("collection names cannot contain '$' or NUL");
    }
    if coll.starts_with('.') || coll.starts_with("system.") {
        return bad("collection names cannot start with '.' or 'system.'");
    }
    Ok(())
}

impl History {
    /// Opens (or creates) the store in `path`.
    ///
    /// # Errors
    /// [`Error::Open`] when fjall cannot open the directory (for example, another process has
    /// it), [`Error::Corrupt`] for unreadable catalog records, [`Error::BadValue`] for a
    /// configuration [`HistoryConfig::check`] refuses.
    pub fn open(path: &Path, config: HistoryConfig, clock: SharedClock) -> Result<Self> {
        config
            .check()
            .map_err(|(setting, reason)| Error::bad(format!("history.{setting}: {reason}")))?;
        let store = Store::open(path, config.cache_bytes, config.fsync == Fsync::Never)?;
        let (mut state, without_trimmed_ts) =
            match store.get(Space::Catalog, keys::CATALOG_STATE)? {
                Some(bytes) => {
                    let record = decode_document(&bytes)?;
                    let state = WriterState::from_document(&record)?;
                    (state, !record.contains_key("trimmed_ts"))
                }
                None => (
                    WriterState {
                        last_seq: 0,
                        trimmed_through: 0,
                        trimmed_ts: (0, 0),
                        oplog_bytes: 0,
                        last_ts: (0, 0),
                        next_id: 1,
                        oldest_wall_ms: None,
                    },
                    false,
                ),
            };
        let first_key = oplog_key(state.trimmed_through + 1).to_vec();
        if let Some(kv) = store
            .range(
                Space::Oplog,
                Bound::Included(first_key),
                Bound::Unbounded,
                false,
            )
            .next()
        {
            let (wall_ms, ts) = entry_times(&kv?.1)?;
            state.oldest_wall_ms = Some(wall_ms);
            if without_trimmed_ts && state.trimmed_through > 0 {
                // A record from before `trimmed_ts` was kept: the first retained event's time
                // is the closest known bound at or after the newest removed event's (cluster
                // times follow oplog order). The next commit persists it.
                state.trimmed_ts = state.trimmed_ts.min(ts);
            }
        }
        let mut catalog = CatalogMap::new();
        // Records from before collections had UUIDs get theirs now, written back in one batch
        // before the store serves, so a UUID never changes once a change event carried it.
        let mut given_uuids = WriteSet::default();
        for kv in store.prefix(Space::Catalog, &[keys::CATALOG_COLLECTION], false) {
            let (k, v) = kv?;
            let record = decode_document(&v)?;
            let meta = CollectionMeta::from_document(&record)?;
            if !record.contains_key("uuid") {
                given_uuids.put(Space::Catalog, &k, &encode_record(&meta.to_document())?);
            }
            catalog.insert((meta.db.clone(), meta.coll.clone()), Arc::new(meta));
        }
        if !given_uuids.is_empty() {
            store.commit(&given_uuids, config.fsync.durability())?;
        }
        let seed =
            clock.now_ms() ^ clock.monotonic_ns().rotate_left(32) ^ u64::from(std::process::id());
        // The databases MongoDB would open at start-up: those holding a collection.
        let open_databases = catalog.values().map(|m| m.db.clone()).collect();
        let inner = Inner {
            open_databases: Mutex::new(open_databases),
            bounds: RwLock::new(OplogBounds::of(&state)),
            notifier: feed::Notifier::new(state.last_seq),
            writer: Mutex::new(state),
            spare: Mutex::new(WriteSet::default()),
            catalog: RwLock::new(catalog),
            ids: document::IdGenerator::new(seed),
            store,
            clock,
            config,
            blocking_bytes_max: std::sync::atomic::AtomicUsize::new(BLOCKING_BYTES_MAX),
            result_bytes_max: std::sync::atomic::AtomicUsize::new(RESULT_BYTES_MAX),
            sample_draws: std::sync::atomic::AtomicU64::new(0),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Makes every acknowledged write durable (fsync of the journal). Called at shutdown.
    ///
    /// # Errors
    /// [`Error::Storage`]; the store refuses writes afterwards.
    pub fn persist(&self) -> Result<()> {
        self.inner.store.persist()
    }

    /// Whether a fatal storage error has stopped writes.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.inner.store.is_poisoned()
    }

    /// Resolves once a fatal storage error has stopped writes ([`History::is_poisoned`]).
    pub(crate) async fn poisoned(&self) {
        self.inner.store.poisoned().await;
    }

    /// Inserts one document, generating an ObjectId `_id` when absent; returns the `_id`.
    ///
    /// # Errors
    /// Name and size limits, [`Error::DuplicateKey`], storage errors.
    pub fn insert_one(&self, db: &str, coll: &str, document: Document) -> Result<Bson> {
        let mut ids = self.insert_many(db, coll, vec![document])?;
        ids.pop().ok_or_else(|| Error::bad("nothing inserted"))
    }

    /// Inserts documents atomically (all or none); returns their `_id`s in order.
    ///
    /// # Errors
    /// As [`History::insert_one`]; [`Error::EmptyWriteBatch`] for no documents, as MongoDB's
    /// insert command; [`Error::TooMany`] beyond [`WRITE_BATCH_OPS_MAX`].
    pub fn insert_many(&self, db: &str, coll: &str, documents: Vec<Document>) -> Result<Vec<Bson>> {
        check_collection_name(db, coll)?;
        check_insert_count(documents.len())?;
        let mut txn = self.inner.begin()?;
        let mut ids = Vec::with_capacity(documents.len());
        for d in documents {
            ids.push(txn.insert(db, coll, d)?);
        }
        txn.finish()?;
        Ok(ids)
    }

    /// MongoDB's `insertMany`: documents are inserted in order up to the first failing one
    /// (`ordered: true`), or every valid one is (`ordered: false`); failures of a document
    /// (duplicate key, invalid `_id`, size or depth limits) are reported per document in
    /// [`InsertManyResult::write_errors`]. What was inserted is committed as one atomic batch.
    ///
    /// # Errors
    /// Name limits, [`Error::EmptyWriteBatch`] for no documents, [`Error::TooMany`] beyond
    /// [`WRITE_BATCH_OPS_MAX`], storage errors (then nothing is written).
    pub fn insert_many_with(
        &self,
        db: &str,
        coll: &str,
        documents: Vec<Document>,
        options: InsertManyOptions,
    ) -> Result<InsertManyResult> {
        check_collection_name(db, coll)?;
        check_insert_count(documents.len())?;
        let mut txn = self.inner.begin()?;
        let mut result = InsertManyResult::default();
        for (index, d) in documents.into_iter().enumerate() {
            // `Txn::insert` checks everything before staging, so a failed document leaves the
            // batch unchanged.
            match txn.insert(db, coll, d) {
                Ok(id) => result.inserted.push((index, id)),
                Err(error) if error.is_client_error() => {
                    result.write_errors.push(WriteError { index, error });
                    if options.ordered {
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        txn.finish()?;
        Ok(result)
    }

    /// Finds documents.
    ///
    /// # Errors
    /// [`Error::BadValue`] for malformed filters, projections or sorts;
    /// [`Error::MaxTimeExpired`] past `options.max_time_ms` (or the store's
    /// `default_max_time_ms`); storage errors.
    pub fn find(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &FindOptions,
    ) -> Result<Vec<Document>> {
        self.find_in(Executor::Find, db, coll, filter, options)
    }

    /// [`History::find`] run by `executor` (an aggregation's first stages name the
    /// aggregation in their errors).
    pub(crate) fn find_in(
        &self,
        executor: Executor,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &FindOptions,
    ) -> Result<Vec<Document>> {
        Ok(self
            .find_explained(db, coll, filter, options, false, executor)?
            .0)
    }

    /// The first document matching `filter`, projected.
    ///
    /// # Errors
    /// As [`History::find`].
    pub fn find_one(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        projection: Option<&Document>,
    ) -> Result<Option<Document>> {
        let options = FindOptions {
            projection: projection.cloned(),
            limit: Some(1),
            ..FindOptions::default()
        };
        Ok(self.find(db, coll, filter, &options)?.into_iter().next())
    }

    /// Runs `f` — calls on this store, on this thread — under a time limit of `max_time_ms`
    /// milliseconds (`None`: the store's `default_max_time_ms`; 0: no limit of its own), as
    /// `maxTimeMS` limits a read: past it the first check inside fails with
    /// [`Error::MaxTimeExpired`]. Writes have no limit of their own; a write run here that
    /// fails this way commits nothing. A read inside keeps the earlier of its own deadline and
    /// this one.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a limit over [`MAX_TIME_MS_MAX`]; what `f` returns.
    pub fn with_time_limit<T>(
        &self,
        max_time_ms: Option<u64>,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.inner.limited(max_time_ms, f)
    }

    /// Counts documents matching `filter`, under the store's `default_max_time_ms`.
    ///
    /// # Errors
    /// As [`History::find`]; [`Error::MaxTimeExpired`] past the time limit.
    pub fn count(&self, db: &str, coll: &str, filter: &Document) -> Result<u64> {
        check_collection_name(db, coll)?;
        // The parse runs under the limit too (constant expressions are evaluated there).
        self.inner.limited(None, || {
            let filter = self.inner.parse_query(filter)?;
            self.inner.read_whole(db, coll, |meta| {
                let Some(meta) = meta else { return Ok(0) };
                let plan = index::plan(meta.key_format, &meta.indexes, &filter, None, false);
                let mut n = 0u64;
                self.inner.execute(
                    meta,
                    &plan,
                    &mut |_, doc, _| {
                        if filter.try_matches(&doc)? {
                            n += 1;
                        }
                        Ok(true)
                    },
                    &mut ExecStats::default(),
                )?;
                Ok(n)
            })
        })
    }

    /// The plan `find` would use and its execution statistics, in MongoDB's `explain` shape
    /// (`queryPlanner.winningPlan`, `executionStats`).
    ///
    /// # Errors
    /// As [`History::find`].
    pub fn explain(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &FindOptions,
    ) -> Result<Document> {
        self.find_explained(db, coll, filter, options, true, Executor::Find)?
            .1
            .ok_or_else(|| Error::bad("no plan"))
    }

    /// A find projection over `query` (`$$NOW` read from the store's clock); `None` for none or
    /// an empty one.
    fn find_projection(
        &self,
        spec: Option<&Document>,
        query: &Filter,
    ) -> Result<Option<FieldTree>> {
        let Some(spec) = spec else { return Ok(None) };
        let now_ms = self.inner.now_ms();
        FieldTree::parse_find(spec, query, now_ms)
    }

    fn find_explained(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &FindOptions,
        explain: bool,
        executor: Executor,
    ) -> Result<(Vec<Document>, Option<Document>)> {
        check_collection_name(db, coll)?;
        // An aggregation's reads (its first stages, `$lookup`, `$unionWith`) run inside the
        // aggregation's own limit, with none of their own. The limit covers the parse too: the
        // `let` values and the constant parts of the filter's expressions are evaluated there.
        let max_time_ms = match executor {
            Executor::Aggregation => Some(0),
            _ => options.max_time_ms,
        };
        self.inner.limited(max_time_ms, || {
            self.with_let(options.let_vars.as_ref(), || {
                let parsed = self.inner.parse_query(filter)?;
                let sort = options.sort.as_ref().map(Sort::parse).transpose()?;
                let projection = self.find_projection(options.projection.as_ref(), &parsed)?;
                self.inner.read_whole(db, coll, |meta| {
                    let Some(meta) = meta else {
                        let e =
                            explain.then(|| explain_doc(db, coll, None, &ExecStats::default(), 0));
                        return Ok((Vec::new(), e));
                    };
                    let plan = index::plan(
                        meta.key_format,
                        &meta.indexes,
                        &parsed,
                        sort.as_ref(),
                        explain,
                    );
                    let mut stats = ExecStats::default();
                    // What a find returns is bounded; an aggregation bounds its own result.
                    let result_max =
                        (executor == Executor::Find && !explain).then(|| self.result_bytes_max());
                    let docs = self.inner.run_find(
                        meta,
                        &plan,
                        &parsed,
                        sort.as_ref(),
                        projection.as_ref(),
                        options.skip,
                        options.limit,
                        &mut stats,
                        self.inner.budget(executor, "$sort", options.allow_disk_use),
                        result_max,
                    )?;
                    let e = explain.then(|| explain_doc(db, coll, Some(&plan), &stats, docs.len()));
                    Ok((docs, e))
                })
            })
        })
    }

    /// Runs `f` with a command's `let` variables ([`FindOptions::let_vars`]) bound for the
    /// expressions it compiles; `None`: as it is.
    fn with_let<T>(&self, vars: Option<&Document>, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match vars {
            None => f(),
            Some(vars) => {
                let bound = aggregate::command_let(vars, self.inner.now_ms())?;
                aggregate::with_bound(bound, f)
            }
        }
    }

    /// Updates the first (or every, with `multi`) document matching `filter`. `update` is an
    /// operator document, a replacement, or a pipeline ([`UpdateModifications`]).
    ///
    /// # Errors
    /// MongoDB's update errors, [`Error::DuplicateKey`], limits, storage errors.
    pub fn update<'a>(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        update: impl Into<UpdateModifications<'a>>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let update = update.into();
        check_collection_name(db, coll)?;
        let vars = options.let_vars.clone();
        self.with_let(vars.as_ref(), || {
            let mut txn = self.inner.begin()?;
            let r = txn.update(db, coll, filter, update, options)?;
            txn.finish()?;
            Ok(r)
        })
    }

    /// Replaces the first document matching `filter` (`replaceOne`).
    ///
    /// # Errors
    /// [`Error::BadValue`] when `replacement` has operators; otherwise as [`History::update`].
    pub fn replace(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        replacement: &Document,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let options = ReplaceOptions {
            upsert,
            ..ReplaceOptions::default()
        };
        self.replace_with(db, coll, filter, replacement, options)
    }

    /// [`History::replace`] with MongoDB's `replaceOne` options (`upsert`, `let`).
    ///
    /// # Errors
    /// As [`History::replace`].
    pub fn replace_with(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        replacement: &Document,
        options: ReplaceOptions,
    ) -> Result<UpdateResult> {
        if replacement.keys().any(|k| k.starts_with('$')) {
            return Err(Error::bad(
                "the replacement document must not contain update operators",
            ));
        }
        self.update(
            db,
            coll,
            filter,
            replacement,
            UpdateOptions {
                upsert: options.upsert,
                let_vars: options.let_vars,
                ..UpdateOptions::default()
            },
        )
    }

    /// Deletes the first (or every) document matching `filter`; returns how many.
    ///
    /// # Errors
    /// As [`History::find`]; storage errors.
    pub fn delete(&self, db: &str, coll: &str, filter: &Document, multi: bool) -> Result<u64> {
        let options = DeleteOptions {
            multi,
            ..DeleteOptions::default()
        };
        self.delete_with(db, coll, filter, &options)
    }

    /// [`History::delete`] with MongoDB's `delete` options (`multi`, `let`).
    ///
    /// # Errors
    /// As [`History::delete`]; a `let` value's errors ([`FindOptions::let_vars`]).
    pub fn delete_with(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &DeleteOptions,
    ) -> Result<u64> {
        check_collection_name(db, coll)?;
        self.with_let(options.let_vars.as_ref(), || {
            let mut txn = self.inner.begin()?;
            let n = txn.delete(db, coll, filter, options.multi)?;
            txn.finish()?;
            Ok(n)
        })
    }

    /// `findOneAndUpdate`: updates the first match (in `sort` order) and returns it before or
    /// after the change.
    ///
    /// # Errors
    /// As [`History::update`].
    pub fn find_one_and_update<'a>(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        update: impl Into<UpdateModifications<'a>>,
        options: &FindAndModifyOptions,
    ) -> Result<Option<Document>> {
        let update = update.into();
        if let UpdateModifications::Document(d) = update
            && !d.keys().next().is_some_and(|k| k.starts_with('$'))
        {
            return Err(Error::bad("findOneAndUpdate needs update operators"));
        }
        // MongoDB's findAndModify refuses this before it parses anything, an empty list too
        // (`validate`): after the namespace the command is parsed with (a valid database, a
        // collection named), before the checks of a writable collection (`userAllowedWriteNS`).
        if matches!(update, UpdateModifications::Pipeline(_)) && options.array_filters.is_some() {
            check_database_name(db)?;
            if coll.is_empty() {
                check_collection_name(db, coll)?;
            }
            return Err(Error::update(
                9,
                "Cannot specify arrayFilters and a pipeline update",
            ));
        }
        self.modify_under(options, || {
            self.find_and_modify(db, coll, filter, options, || {
                self.inner
                    .parse_update(update, options.array_filters.as_deref())
                    .map(Some)
            })
        })
    }

    /// `findOneAndReplace`.
    ///
    /// # Errors
    /// As [`History::replace`].
    pub fn find_one_and_replace(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        replacement: &Document,
        options: &FindAndModifyOptions,
    ) -> Result<Option<Document>> {
        let parsed = Update::parse(replacement)?;
        if !matches!(parsed, Update::Replace(_)) {
            return Err(Error::bad("findOneAndReplace needs a replacement document"));
        }
        self.modify_under(options, || {
            self.find_and_modify(db, coll, filter, options, || Ok(Some(parsed)))
        })
    }

    /// `findOneAndDelete`: deletes the first match (in `sort` order) and returns it.
    ///
    /// # Errors
    /// As [`History::delete`].
    pub fn find_one_and_delete(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &FindAndModifyOptions,
    ) -> Result<Option<Document>> {
        self.modify_under(options, || {
            self.find_and_modify(db, coll, filter, options, || Ok(None))
        })
    }

    /// `$merge`'s check of its target: merging on fields other than `_id` needs a unique index
    /// on exactly those fields (code 51183 otherwise, a missing collection included).
    pub(crate) fn check_merge_target(&self, db: &str, coll: &str, on: &[String]) -> Result<()> {
        check_collection_name(db, coll)?;
        if on.len() == 1 && on.first().is_some_and(|f| f == "_id") {
            return Ok(());
        }
        let unique = self.inner.collection(db, coll).is_some_and(|meta| {
            meta.indexes.iter().any(|ix| {
                ix.unique
                    && ix.keys.len() == on.len()
                    && ix.keys.iter().all(|(path, _, _)| on.contains(path))
            })
        });
        if unique {
            Ok(())
        } else {
            Err(Error::update(
                51183,
                "Cannot find index to verify that join fields will be unique",
            ))
        }
    }

    /// `$merge`'s writes, all in one batch: each document's target found by its filter and
    /// updated, kept or refused; an unmatched one inserted, skipped or refused. The target's
    /// unique index on `on` is checked again under the batch's writer lock (the stage checked
    /// it before reading its input; it may have been dropped since).
    pub(crate) fn merge_writes(
        &self,
        db: &str,
        coll: &str,
        on: &[String],
        writes: Vec<MergeWrite>,
        not_matched: WhenNotMatched,
    ) -> Result<()> {
        let mut txn = self.inner.begin()?;
        self.check_merge_target(db, coll, on)?;
        for w in writes {
            let existing = match &w.filter {
                Some(filter) => {
                    let parsed = Filter::parse(filter)?;
                    match txn.collection(db, coll, false)? {
                        Some(meta) => txn
                            .matching(&meta, &parsed, None, true)?
                            .into_iter()
                            .next()
                            .map(|(id, old)| (meta, id, old, parsed)),
                        None => None,
                    }
                }
                None => None,
            };
            match existing {
                Some((meta, id, old, parsed)) => {
                    if w.fail_on_match {
                        // MongoDB inserts in this mode; the duplicate `_id` (or `on` key) is
                        // the insert's error.
                        txn.insert(db, coll, w.doc)?;
                        continue;
                    }
                    let Some(update) = w.update else { continue };
                    let mut log = Vec::new();
                    let new = update.apply_logged(&old, false, &parsed, txn.wall_ms, &mut log)?;
                    if !document::identical(&new, &old) {
                        txn.write_change(&meta, &id, old, new, &update, &log)?;
                    }
                }
                None => match not_matched {
                    WhenNotMatched::Insert => {
                        txn.insert(db, coll, w.doc)?;
                    }
                    WhenNotMatched::Discard => {}
                    WhenNotMatched::Fail => {
                        return Err(Error::update(
                            13113,
                            "$merge could not find a matching document in the target collection for at least one document in the source collection",
                        ));
                    }
                },
            }
        }
        txn.finish()
    }

    /// `$out`'s writes, in one batch: `docs` go into a new collection `tmp.agg_out.<uuid>` of
    /// `db` that has the indexes of `db.coll`, which is then renamed over `db.coll` (replacing
    /// its documents and index entries). The change events are MongoDB's: the temporary
    /// collection's `create` and `createIndexes` (shown with `showExpandedEvents`), an insert
    /// into it per document, then its `rename` to the target with the target's UUID as
    /// `dropTarget` (which ends a stream on the target). Nothing is written when any insert
    /// fails.
    pub(crate) fn replace_collection(
        &self,
        db: &str,
        coll: &str,
        docs: Vec<Document>,
    ) -> Result<()> {
        let tmp = format!("tmp.agg_out.{}", bson::Uuid::new());
        check_collection_name(db, &tmp)?;
        let mut txn = self.inner.begin()?;
        let target = txn.collection(db, coll, false)?;
        // The target goes first (its event is the rename's), so that the catalog's limit
        // counts the temporary collection in its place.
        if let Some(target) = &target {
            txn.remove_collection(target)?;
        }
        txn.create_collection(db, &tmp, true)?;
        for index in target.iter().flat_map(|t| &t.indexes) {
            txn.create_index(db, &tmp, &index.model())?;
        }
        for d in docs {
            txn.insert(db, &tmp, d)?;
        }
        txn.rename(db, &tmp, db, coll, target.map(|t| t.uuid))?;
        txn.finish()
    }

    /// Runs a `find_one_and_*` call — its parsing included — under its options' time limit
    /// (none without one, as any write) and with their `let` variables bound.
    fn modify_under<T>(
        &self,
        options: &FindAndModifyOptions,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let bound = || self.with_let(options.let_vars.as_ref(), f);
        match options.max_time_ms {
            Some(ms) => self.inner.limited(Some(ms), bound),
            None => bound(),
        }
    }

    /// One `findAndModify` write. `update` gives the update (none: a delete), parsed once the
    /// write has begun, so that `$$CLUSTER_TIME` in a pipeline is the write's cluster time.
    fn find_and_modify(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        options: &FindAndModifyOptions,
        update: impl FnOnce() -> Result<Option<Update>>,
    ) -> Result<Option<Document>> {
        check_collection_name(db, coll)?;
        let projection = match &options.projection {
            Some(spec) => self.find_projection(Some(spec), &self.inner.parse_query(filter)?)?,
            None => None,
        };
        let sort = options.sort.as_ref().map(Sort::parse).transpose()?;
        let mut txn = self.inner.begin()?;
        let update = update()?;
        let out = txn.find_and_modify(
            db,
            coll,
            filter,
            sort.as_ref(),
            update.as_ref(),
            options.upsert,
            options.return_new,
        )?;
        txn.finish()?;
        out.map(|d| match &projection {
            Some(p) => p.apply(d),
            None => Ok(d),
        })
        .transpose()
    }

    /// Runs an aggregation pipeline (`$match $project $addFields $set $unset $sort $limit
    /// $skip $count $unwind $group $lookup`); a leading `$match`/`$sort` uses indexes.
    ///
    /// # Errors
    /// [`Error::BadValue`]/[`Error::Unsupported`] for malformed or unknown stages; limits;
    /// [`Error::MaxTimeExpired`] past the time limit (`AggregateOptions::max_time_ms`, else the
    /// store's `default_max_time_ms`).
    pub fn aggregate(&self, db: &str, coll: &str, pipeline: &[Document]) -> Result<Vec<Document>> {
        self.aggregate_with(db, coll, pipeline, AggregateOptions::default())
    }

    /// As [`History::aggregate`], with options.
    ///
    /// # Errors
    /// As [`History::aggregate`]; [`Error::MemoryLimitExceeded`] when a blocking stage would
    /// hold more than [`BLOCKING_BYTES_MAX`] (or [`BLOCKING_BYTES_DISK_USE_MAX`] with
    /// `allow_disk_use`).
    pub fn aggregate_with(
        &self,
        db: &str,
        coll: &str,
        pipeline: &[Document],
        options: AggregateOptions,
    ) -> Result<Vec<Document>> {
        check_collection_name(db, coll)?;
        self.inner.limited(options.max_time_ms, || {
            self.with_let(options.let_vars.as_ref(), || {
                aggregate::run(self, db, Some(coll), pipeline, options.allow_disk_use)
            })
        })
    }

    /// A database-level aggregation (MongoDB's `{aggregate: 1}`, the shell's `db.aggregate`):
    /// the pipeline starts with `$documents`, whose array is its input; later stages may read
    /// the database's collections (`$lookup`, `$unionWith`, `$merge` …).
    ///
    /// # Errors
    /// [`Error::InvalidNamespace`] (73) when the first stage is not `$documents`; otherwise as
    /// [`History::aggregate_with`].
    pub fn aggregate_db(
        &self,
        db: &str,
        pipeline: &[Document],
        options: AggregateOptions,
    ) -> Result<Vec<Document>> {
        check_database_name(db)?;
        self.inner.limited(options.max_time_ms, || {
            self.with_let(options.let_vars.as_ref(), || {
                aggregate::run(self, db, None, pipeline, options.allow_disk_use)
            })
        })
    }

    /// A memory account for one blocking stage.
    pub(crate) fn budget(
        &self,
        executor: Executor,
        stage: &'static str,
        allow_disk_use: bool,
    ) -> MemoryBudget {
        self.inner.budget(executor, stage, allow_disk_use)
    }

    /// The seed of one `$sample` draw: from the injected clock (wall and monotonic readings)
    /// and the number of draws before it, so a store on a manual clock draws the same
    /// sequence of samples on every run.
    pub(crate) fn sample_seed(&self) -> u64 {
        let n = self
            .inner
            .sample_draws
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let clock = &self.inner.clock;
        clock.now_ms()
            ^ clock.monotonic_ns().rotate_left(32)
            ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// A store in a fresh temporary directory on a manual clock, for unit tests. Keep the
    /// directory alive as long as the store.
    #[cfg(test)]
    pub(crate) fn open_temporary() -> (tempfile::TempDir, Self) {
        let dir = tempfile::tempdir().unwrap();
        let h = Self::open(
            dir.path(),
            HistoryConfig::default(),
            crate::clock::ManualClock::shared(1_000),
        )
        .unwrap();
        (dir, h)
    }

    /// The most bytes one `find` or `aggregate` may return ([`RESULT_BYTES_MAX`]).
    pub(crate) fn result_bytes_max(&self) -> usize {
        self.inner
            .result_bytes_max
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lowers [`RESULT_BYTES_MAX`] for tests.
    #[cfg(test)]
    pub(crate) fn set_result_bytes_max(&self, max: usize) {
        self.inner.result_bytes_max.store(
            max.min(RESULT_BYTES_MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Lowers [`BLOCKING_BYTES_MAX`] for tests (the `allowDiskUse` limit scales with it).
    #[cfg(test)]
    pub(crate) fn set_blocking_bytes_max(&self, max: usize) {
        self.inner.blocking_bytes_max.store(
            max.min(BLOCKING_BYTES_MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Applies several writes and metadata entries as ONE atomic batch: documents, their index
    /// entries, their change events and the metadata are all durable or all absent. The
    /// pipeline's exactly-once sink passes its consumer offsets as `meta`.
    ///
    /// # Errors
    /// The first failing operation's error; nothing is written then.
    pub fn commit(
        &self,
        ops: Vec<WriteOp>,
        meta: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<WriteOutcome>> {
        self.commit_reporting(ops, meta)
            .map_err(|failed| failed.error)
    }

    /// [`History::commit`], saying which operation failed: a caller that writes one operation
    /// per input record can set that record aside (a duplicate key, a document that cannot be
    /// stored) and commit the rest.
    ///
    /// # Errors
    /// [`CommitFailure`]: the error, and the index in `ops` of the operation that caused it
    /// (`None` when no single operation did: the batch's size, a metadata entry, storage).
    pub fn commit_reporting(
        &self,
        ops: Vec<WriteOp>,
        meta: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> std::result::Result<Vec<WriteOutcome>, CommitFailure> {
        let whole = |error| CommitFailure { op: None, error };
        check_count("commit", ops.len() + meta.len()).map_err(whole)?;
        for (k, v) in &meta {
            keys::check_key(k).map_err(whole)?;
            if v.len() > META_VALUE_BYTES_MAX {
                return Err(whole(Error::DocumentTooLarge {
                    len: v.len(),
                    max: META_VALUE_BYTES_MAX,
                }));
            }
        }
        let mut txn = self.inner.begin().map_err(whole)?;
        let mut outcomes = Vec::with_capacity(ops.len());
        for (index, op) in ops.into_iter().enumerate() {
            let outcome = Self::apply(&mut txn, op).map_err(|error| CommitFailure {
                op: Some(index),
                error,
            })?;
            outcomes.push(outcome);
        }
        for (k, v) in meta {
            txn.set.put(Space::Meta, &k, &v);
        }
        txn.finish().map_err(whole)?;
        Ok(outcomes)
    }

    /// Stages one operation of [`History::commit`].
    fn apply(txn: &mut Txn<'_>, op: WriteOp) -> Result<WriteOutcome> {
        Ok(match op {
            WriteOp::Insert { db, coll, document } => {
                check_collection_name(&db, &coll)?;
                WriteOutcome::Inserted(txn.insert(&db, &coll, document)?)
            }
            WriteOp::Upsert {
                db,
                coll,
                filter,
                document,
            } => {
                check_collection_name(&db, &coll)?;
                if document.keys().any(|k| k.starts_with('$')) {
                    return Err(Error::bad(
                        "an upserted document must not contain update operators",
                    ));
                }
                // The document moves into the write (no copy on the upsert path).
                WriteOutcome::Updated(txn.update_parsed(
                    &db,
                    &coll,
                    &filter,
                    Update::replacement(document)?,
                    UpdateOptions {
                        upsert: true,
                        ..UpdateOptions::default()
                    },
                )?)
            }
            WriteOp::UpsertEncoded { db, coll, document } => {
                check_collection_name(&db, &coll)?;
                WriteOutcome::Updated(txn.upsert_encoded(&db, &coll, document)?)
            }
            WriteOp::Update {
                db,
                coll,
                filter,
                update,
                options,
            } => {
                check_collection_name(&db, &coll)?;
                WriteOutcome::Updated(txn.update(&db, &coll, &filter, (&update).into(), options)?)
            }
            WriteOp::Delete {
                db,
                coll,
                filter,
                multi,
            } => {
                check_collection_name(&db, &coll)?;
                WriteOutcome::Deleted(txn.delete(&db, &coll, &filter, multi)?)
            }
        })
    }

    /// Reads a metadata entry written by [`History::commit`].
    ///
    /// # Errors
    /// Storage errors.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.store.get(Space::Meta, key)
    }

    /// Every metadata entry written by [`History::commit`] whose key starts with `prefix`, as
    /// (key, value) pairs in key order. It reads them all at once: meant for a prefix under which
    /// a handful of entries are kept (the pipeline's offsets, one per consumer group and topic).
    ///
    /// # Errors
    /// Storage errors.
    pub fn meta_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner
            .store
            .prefix(Space::Meta, prefix, false)
            .collect()
    }

    /// Creates an index (building it over existing documents in the same batch as its catalog
    /// record); returns its name. Creating an identical index again is a no-op.
    ///
    /// # Errors
    /// [`Error::IndexConflict`], [`Error::DuplicateKey`] when existing documents violate a
    /// unique index, [`Error::TooMany`] beyond [`INDEXES_PER_COLLECTION_MAX`].
    pub fn create_index(&self, db: &str, coll: &str, model: &IndexModel) -> Result<String> {
        check_collection_name(db, coll)?;
        let mut txn = self.inner.begin()?;
        let name = txn.create_index(db, coll, model)?;
        txn.finish()?;
        Ok(name)
    }

    /// The collection's indexes in `listIndexes` shape (`{v, key, name[, unique]}`), `_id_`
    /// first.
    ///
    /// # Errors
    /// [`Error::NamespaceNotFound`] when the collection does not exist.
    pub fn list_indexes(&self, db: &str, coll: &str) -> Result<Vec<Document>> {
        check_collection_name(db, coll)?;
        let meta = self
            .inner
            .collection(db, coll)
            .ok_or_else(|| Error::NamespaceNotFound {
                ns: format!("{db}.{coll}"),
            })?;
        let mut out = Vec::with_capacity(meta.indexes.len() + 1);
        out.push(index::id_index_spec());
        out.extend(meta.indexes.iter().map(|i| i.spec()));
        Ok(out)
    }

    /// Drops an index by name.
    ///
    /// # Errors
    /// [`Error::IndexNotFound`], [`Error::NamespaceNotFound`].
    pub fn drop_index(&self, db: &str, coll: &str, name: &str) -> Result<()> {
        check_collection_name(db, coll)?;
        let mut txn = self.inner.begin()?;
        txn.drop_index(db, coll, name)?;
        txn.finish()
    }

    /// Collection names of a database, sorted.
    ///
    /// # Errors
    /// [`Error::InvalidNamespace`].
    pub fn list_collections(&self, db: &str) -> Result<Vec<String>> {
        Ok(self
            .list_collection_uuids(db)?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Collection names of a database with their UUIDs (`listCollections`' `info.uuid`, the
    /// `collectionUUID` of their change events), sorted by name.
    ///
    /// # Errors
    /// [`Error::InvalidNamespace`].
    pub fn list_collection_uuids(&self, db: &str) -> Result<Vec<(String, bson::Uuid)>> {
        check_database_name(db)?;
        let catalog = self.inner.catalog.read()?;
        let mut colls: Vec<(String, bson::Uuid)> = catalog
            .values()
            .filter(|m| m.db == db)
            .map(|m| (m.coll.clone(), m.uuid))
            .collect();
        colls.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(colls)
    }

    /// Database names, sorted.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`].
    pub fn list_databases(&self) -> Result<Vec<String>> {
        let catalog = self.inner.catalog.read()?;
        let mut names: Vec<String> = catalog
            .keys()
            .map(|(d, _)| d.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        names.sort();
        Ok(names)
    }

    /// Drops a collection with its documents and indexes, recording a `drop` event; returns
    /// whether it existed.
    ///
    /// # Errors
    /// Storage errors.
    pub fn drop_collection(&self, db: &str, coll: &str) -> Result<bool> {
        check_collection_name(db, coll)?;
        let mut txn = self.inner.begin()?;
        let existed = txn.drop_collection(db, coll)?;
        txn.finish()?;
        Ok(existed)
    }

    /// Drops every collection of a database (a `drop` event each, then `dropDatabase`). A
    /// database that has had no collection since the store opened does not exist: dropping it
    /// writes nothing, as MongoDB answers such a drop (NamespaceNotFound, which its command
    /// reports as success); one whose collections were all dropped is still open, as in
    /// MongoDB until a restart, and its drop is logged.
    ///
    /// # Errors
    /// Storage errors.
    pub fn drop_database(&self, db: &str) -> Result<()> {
        check_database_name(db)?;
        // Listed under the writer lock the batch holds: every batch updates the catalog
        // before it lets go of that lock, so no collection created concurrently survives.
        let mut txn = self.inner.begin()?;
        let colls = self.list_collections(db)?;
        let was_open = self.inner.open_databases.lock()?.remove(db);
        if colls.is_empty() && !was_open {
            // Nothing staged: this only hands the batch's buffer back.
            return txn.finish();
        }
        for c in colls {
            txn.drop_collection(db, &c)?;
        }
        let mut entry = Document::new();
        entry.insert("op", "dropDatabase");
        entry.insert("db", db);
        txn.event(entry)?;
        txn.finish()
    }

    /// Renames a collection (a `rename` event; streams on the old name are invalidated).
    ///
    /// # Errors
    /// [`Error::NamespaceNotFound`], [`Error::NamespaceExists`].
    pub fn rename_collection(
        &self,
        db: &str,
        coll: &str,
        to_db: &str,
        to_coll: &str,
    ) -> Result<()> {
        check_collection_name(db, coll)?;
        check_collection_name(to_db, to_coll)?;
        let mut txn = self.inner.begin()?;
        txn.rename(db, coll, to_db, to_coll, None)?;
        txn.finish()
    }

    /// Opens a change stream. Without a start option it begins after the latest event.
    ///
    /// # Errors
    /// [`Error::ChangeStreamHistoryLost`] (286) when the start point is older than the
    /// retained oplog, [`Error::ResumeTokenAhead`] (286) when a resume token names an event
    /// after the last one, [`Error::InvalidResumeToken`], [`Error::BadValue`].
    pub fn watch(&self, scope: WatchScope, options: WatchOptions) -> Result<ChangeStream> {
        match &scope {
            WatchScope::All => {}
            WatchScope::Database(db) => check_database_name(db)?,
            WatchScope::Collection { db, coll } => check_collection_name(db, coll)?,
        }
        ChangeStream::open(self.inner.clone(), scope, options)
    }

    /// An [`OplogTail`] from the latest entry on: the next committed entry is its first.
    ///
    /// # Errors
    /// Storage errors of reading the oplog's bounds.
    pub(crate) fn tail(&self) -> Result<OplogTail> {
        OplogTail::open(self.inner.clone())
    }

    /// Applies oplog retention now (by size and by age on the injected clock); returns how
    /// many events were removed. Writes also trim as they commit.
    ///
    /// # Errors
    /// Storage errors.
    pub fn trim_oplog(&self) -> Result<u64> {
        let mut state = self.inner.writer.lock()?;
        self.inner.trim(&mut state)
    }

    /// `(oldest retained sequence, last sequence)` of the oplog; an empty oplog gives
    /// `(last + 1, last)`.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`].
    pub fn oplog_range(&self) -> Result<(u64, u64)> {
        let (trimmed, last) = self.inner.oplog_bounds()?;
        Ok((trimmed + 1, last))
    }
}

/// `insertMany`'s count of documents: at least one, as MongoDB's insert command requires, and
/// at most [`WRITE_BATCH_OPS_MAX`].
fn check_insert_count(len: usize) -> Result<()> {
    if len == 0 {
        return Err(Error::EmptyWriteBatch {
            max: WRITE_BATCH_OPS_MAX,
        });
    }
    check_count("insertMany", len)
}

fn check_count(what: &'static str, len: usize) -> Result<()> {
    if len > WRITE_BATCH_OPS_MAX {
        return Err(Error::TooMany {
            what,
            len,
            max: WRITE_BATCH_OPS_MAX,
        });
    }
    Ok(())
}

/// Counters reported by `explain`.
#[derive(Debug, Default)]
pub(crate) struct ExecStats {
    keys: u64,
    docs: u64,
}

fn explain_doc(
    db: &str,
    coll: &str,
    plan: Option<&Plan>,
    stats: &ExecStats,
    returned: usize,
) -> Document {
    let mut qp = Document::new();
    qp.insert("namespace", format!("{db}.{coll}"));
    qp.insert(
        "winningPlan",
        plan.map_or_else(|| bson::doc! {"stage": "EOF"}, Plan::describe),
    );
    let mut es = Document::new();
    es.insert("nReturned", i64::try_from(returned).unwrap_or(i64::MAX));
    es.insert(
        "totalKeysExamined",
        i64::try_from(stats.keys).unwrap_or(i64::MAX),
    );
    es.insert(
        "totalDocsExamined",
        i64::try_from(stats.docs).unwrap_or(i64::MAX),
    );
    let mut d = Document::new();
    d.insert("queryPlanner", qp);
    d.insert("executionStats", es);
    d
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

impl Inner {
    /// Runs the read `f` under `max_time_ms` (`None`: the configured `default_max_time_ms`;
    /// 0: no limit), as [`deadline::run`].
    ///
    /// # Errors
    /// [`Error::BadValue`] for a limit over [`MAX_TIME_MS_MAX`]; what `f` returns;
    /// [`Error::MaxTimeExpired`] past the limit.
    fn limited<T>(&self, max_time_ms: Option<u64>, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let ms = max_time_ms.unwrap_or(self.config.default_max_time_ms);
        if ms > MAX_TIME_MS_MAX {
            return Err(Error::bad("maxTimeMS is out of range"));
        }
        deadline::run(&self.clock, ms, f)
    }

    fn collection(&self, db: &str, coll: &str) -> Option<Arc<CollectionMeta>> {
        self.catalog
            .read()
            .ok()?
            .get(&NamespaceRef(db, coll))
            .cloned()
    }

    /// Runs `read` over `db.coll` as the catalog has it (`None`: no such collection) and
    /// returns what it made, unless the collection was dropped or replaced (`$out`) while it
    /// read: then the read starts over, so that its result is all of one collection, at most
    /// [`READ_ATTEMPTS_MAX`] times, then [`Error::QueryPlanKilled`]. A batch that changes the
    /// catalog holds it from before its commit until the catalog records the change, so the
    /// look-up after the read waits for one in progress.
    fn read_whole<T>(
        &self,
        db: &str,
        coll: &str,
        mut read: impl FnMut(Option<&CollectionMeta>) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..READ_ATTEMPTS_MAX {
            let Some(meta) = self.collection(db, coll) else {
                return read(None);
            };
            let out = read(Some(&meta))?;
            if self.collection(db, coll).is_some_and(|m| m.id == meta.id) {
                return Ok(out);
            }
        }
        Err(Error::QueryPlanKilled {
            ns: format!("{db}.{coll}"),
        })
    }

    /// `(trimmed_through, last_seq)`: the highest sequence retention removed and the last
    /// one written.
    pub(crate) fn oplog_bounds(&self) -> Result<(u64, u64)> {
        let b = *self.bounds.read()?;
        Ok((b.trimmed_through, b.last_seq))
    }

    /// [`Inner::read_oplog`] for a reader that has handed out everything before `from` (a
    /// change stream, the oplog tail): [`Error::ChangeStreamHistoryLost`] when retention has
    /// trimmed `from` already.
    pub(crate) fn read_retained_oplog<T>(
        &self,
        from: u64,
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<Vec<(u64, T)>> {
        let (trimmed_through, _) = self.oplog_bounds()?;
        if from <= trimmed_through {
            // The reader fell behind retention: its events are gone.
            return Err(Error::ChangeStreamHistoryLost);
        }
        let read = self.read_oplog(from, OPLOG_READ_BATCH_MAX, decode)?;
        // IMPORTANT: retention may have removed entries from `from` on while the scan ran,
        // which would read as a gap. A trim advertises its new bound before it deletes
        // anything (`trim`), so a bound still below `from` now proves nothing the scan
        // needed was gone.
        let (trimmed_through, _) = self.oplog_bounds()?;
        if from <= trimmed_through {
            return Err(Error::ChangeStreamHistoryLost);
        }
        Ok(read)
    }

    /// Reads up to `max` oplog entries from `from` on.
    pub(crate) fn read_oplog<T>(
        &self,
        from: u64,
        max: usize,
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<Vec<(u64, T)>> {
        let mut out = Vec::new();
        for kv in self.store.range(
            Space::Oplog,
            Bound::Included(oplog_key(from).to_vec()),
            Bound::Unbounded,
            false,
        ) {
            let (k, v) = kv?;
            out.push((keys::decode_oplog_key(&k)?, decode(&v)?));
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Where a stream that starts at cluster time `ts` reads from: the first retained entry at
    /// or after `ts`, else the next one committed.
    ///
    /// # Errors
    /// [`Error::ChangeStreamHistoryLost`] when retention removed an event the stream would
    /// deliver (the newest removed event's cluster time is at or after `ts`), as for a
    /// `resumeAfter` of a removed event; [`Error::Corrupt`] for an entry without its times.
    pub(crate) fn first_seq_at_or_after(&self, ts: Timestamp) -> Result<u64> {
        let bounds = *self.bounds.read()?;
        let start = (ts.time, ts.increment);
        if bounds.trimmed_through > 0 && start <= bounds.trimmed_ts {
            return Err(Error::ChangeStreamHistoryLost);
        }
        for kv in self.store.range(
            Space::Oplog,
            Bound::Included(oplog_key(bounds.trimmed_through + 1).to_vec()),
            Bound::Unbounded,
            false,
        ) {
            let (k, v) = kv?;
            if entry_times(&v)?.1 >= start {
                return keys::decode_oplog_key(&k);
            }
        }
        Ok(bounds.last_seq.saturating_add(1))
    }

    /// The current version of a document, for `updateLookup`.
    pub(crate) fn lookup(&self, db: &str, coll: &str, id: &Bson) -> Result<Option<Document>> {
        self.lookup_with(db, coll, id, decode_document)
    }

    /// [`Inner::lookup`] without decoding: the stored document's bytes, checked at every depth.
    pub(crate) fn lookup_raw(
        &self,
        db: &str,
        coll: &str,
        id: &Bson,
    ) -> Result<Option<RawDocumentBuf>> {
        self.lookup_with(db, coll, id, document::checked_document)
    }

    fn lookup_with<T>(
        &self,
        db: &str,
        coll: &str,
        id: &Bson,
        read: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(meta) = self.collection(db, coll) else {
            return Ok(None);
        };
        self.store.get_with(
            Space::Docs,
            &doc_key(meta.id, &keys::encode_key_value(id, meta.key_format)),
            read,
        )
    }

    /// Runs a plan, calling `visit(encoded_id, doc, stored_bytes)` per candidate until it
    /// returns false (`stored_bytes`: the document's BSON size as stored).
    fn execute(
        &self,
        meta: &CollectionMeta,
        plan: &Plan,
        visit: &mut Visit<'_>,
        stats: &mut ExecStats,
    ) -> Result<()> {
        // One document key buffer for the whole plan instead of one allocation per document.
        let mut key = Vec::new();
        match &plan.access {
            Access::Ids(ids) => {
                for id in ids {
                    stats.keys += 1;
                    if !self.fetch_doc(meta, id, &mut key, stats, visit)? {
                        return Ok(());
                    }
                }
            }
            Access::Index {
                ranges,
                reverse,
                index,
                point,
                ..
            } => {
                let mut seen: HashSet<Vec<u8>> = HashSet::new();
                let dedup = index.multikey || ranges.len() > 1;
                // An index entry's value is the encoded `_id`, read in place.
                let mut entry = |id: &[u8]| -> Result<bool> {
                    stats.keys += 1;
                    if dedup && !seen.insert(id.to_vec()) {
                        return Ok(true);
                    }
                    self.fetch_doc(meta, id, &mut key, stats, visit)
                };
                for (start, end) in ranges {
                    // A full-equality lookup on a unique index is a point read (bloom filters
                    // apply); anything else scans the key range.
                    let go_on = if *point {
                        self.store
                            .get_with(Space::Index, start, &mut entry)?
                            .unwrap_or(true)
                    } else {
                        let mut go_on = true;
                        self.store
                            .range_values_with(Space::Index, start, end, *reverse, |id| {
                                go_on = entry(id)?;
                                Ok(go_on)
                            })?;
                        go_on
                    };
                    if !go_on {
                        return Ok(());
                    }
                }
            }
            Access::Scan => {
                for kv in self
                    .store
                    .prefix(Space::Docs, &meta.id.to_be_bytes(), false)
                {
                    let (k, v) = kv?;
                    deadline::check()?;
                    stats.docs += 1;
                    if !visit(
                        k.get(4..).unwrap_or_default(),
                        decode_document(&v)?,
                        v.len(),
                    )? {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the document with `encoded_id` (its key built in `key`, a buffer reused across
    /// calls) and hands it to `visit`; a missing document is skipped. Returns whether to go on.
    fn fetch_doc(
        &self,
        meta: &CollectionMeta,
        encoded_id: &[u8],
        key: &mut Vec<u8>,
        stats: &mut ExecStats,
        visit: &mut Visit<'_>,
    ) -> Result<bool> {
        deadline::check()?;
        keys::doc_key_into(meta.id, encoded_id, key);
        let Some((doc, size)) = self
            .store
            .get_with(Space::Docs, key, |b| Ok((decode_document(b)?, b.len())))?
        else {
            return Ok(true);
        };
        stats.docs += 1;
        visit(encoded_id, doc, size)
    }

    /// Filter, sort (in memory unless the plan is ordered), skip, limit and projection; the
    /// projected documents' bytes are held to `result_max` as they are taken.
    #[expect(
        clippy::too_many_arguments,
        reason = "the find pipeline's stages, passed once"
    )]
    fn run_find(
        &self,
        meta: &CollectionMeta,
        plan: &Plan,
        filter: &Filter,
        sort: Option<&Sort>,
        projection: Option<&FieldTree>,
        skip: u64,
        limit: Option<u64>,
        stats: &mut ExecStats,
        budget: MemoryBudget,
        result_max: Option<usize>,
    ) -> Result<Vec<Document>> {
        let mut result_bytes = 0usize;
        // `stored`: the document's size as stored, which is its size unless projected.
        let mut take = |doc: Document, stored: Option<usize>| -> Result<Document> {
            let (doc, stored) = match projection {
                Some(p) => (p.apply(doc)?, None),
                None => (doc, stored),
            };
            if let Some(max) = result_max {
                let size = stored.unwrap_or_else(|| document::bson_size(&doc));
                result_bytes = result_bytes.saturating_add(size);
                if result_bytes > max {
                    return Err(Error::ResultTooLarge {
                        executor: Executor::Find,
                        len: result_bytes,
                        max,
                    });
                }
            }
            Ok(doc)
        };
        let blocking = sort.is_some_and(|s| !s.is_empty()) && !plan.sorted;
        // Point plans know how many documents they can return at most (at most
        // `PLAN_RANGES_MAX` index points, or one per `_id` of the filter).
        let mut out = Vec::with_capacity(match &plan.access {
            Access::Ids(ids) => ids.len(),
            Access::Index {
                point: true,
                ranges,
                ..
            } => ranges.len(),
            Access::Index { .. } | Access::Scan => 0,
        });
        let mut skipped = 0u64;
        let limit = limit.filter(|l| *l > 0);
        // With a limit only the first skip + limit documents are kept (a top-k sort).
        let mut held = sort.filter(|_| blocking).map(|s| {
            let keep = limit.map(|l| usize::try_from(skip.saturating_add(l)).unwrap_or(usize::MAX));
            BlockingSort::new(s, keep, budget)
        });
        self.execute(
            meta,
            plan,
            &mut |_, doc, stored| {
                if !filter.try_matches(&doc)? {
                    return Ok(true);
                }
                if let Some(held) = held.as_mut() {
                    held.push(doc)?;
                    return Ok(true);
                }
                if skipped < skip {
                    skipped += 1;
                    return Ok(true);
                }
                out.push(take(doc, Some(stored))?);
                Ok(limit.is_none_or(|l| (out.len() as u64) < l))
            },
            stats,
        )?;
        if let Some(held) = held {
            out = held.finish();
            let start = usize::try_from(skip).unwrap_or(usize::MAX).min(out.len());
            out.drain(..start);
            if let Some(l) = limit {
                out.truncate(usize::try_from(l).unwrap_or(usize::MAX));
            }
            out = out
                .into_iter()
                .map(|d| take(d, None))
                .collect::<Result<_>>()?;
        }
        Ok(out)
    }
}

/// What [`Inner::execute`] hands each candidate to: `(encoded _id, document, stored BSON
/// size)`, returning whether to go on.
type Visit<'a> = dyn FnMut(&[u8], Document, usize) -> Result<bool> + 'a;

/// Index entries to write: key → `Some(encoded _id)` put, `None` removed.
type IndexChanges = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Appends an oplog entry's namespace and collection UUID: `db`, `coll`, `ui`.
fn append_event_ns(out: &mut Vec<u8>, w: &RawWriter, meta: &CollectionMeta) -> Result<()> {
    w.append_str(out, "db", &meta.db)?;
    w.append_str(out, "coll", &meta.coll)?;
    w.append_uuid(out, "ui", meta.uuid)
}

/// Appends a change event's `key` field, `{_id: id}`.
fn append_event_key(out: &mut Vec<u8>, w: &RawWriter, id: &Bson) -> Result<()> {
    let key = w.open_child(out, "key")?;
    key.append_value(out, "_id", id)?;
    key.close(out)
}

/// One blocking stage's account of the bytes it holds, against its limit.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    used: usize,
    max: usize,
    executor: Executor,
    stage: &'static str,
    allow_disk_use: bool,
}

impl MemoryBudget {
    /// Adds `bytes` to what the stage holds.
    ///
    /// # Errors
    /// [`Error::MemoryLimitExceeded`] when the stage would then hold more than its limit.
    pub(crate) fn charge(&mut self, bytes: usize) -> Result<()> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.max {
            return Err(Error::MemoryLimitExceeded {
                executor: self.executor,
                stage: self.stage,
                len: self.used,
                max: self.max,
                allow_disk_use: self.allow_disk_use,
            });
        }
        Ok(())
    }

    /// Takes `bytes` the stage no longer holds off the account.
    pub(crate) fn release(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }
}

/// What a sort holds for one document, as MongoDB's sorter counts it: the document and its
/// sort key.
pub(crate) fn held_size(key: &[Bson], doc: &Document) -> usize {
    key.iter()
        .map(document::value_size)
        .fold(document::bson_size(doc), usize::saturating_add)
}

/// An in-memory sort that holds its documents against a [`MemoryBudget`]; with `keep` it
/// holds only about the first `keep` (MongoDB's top-k sort for a sort with a limit): past
/// twice that it sorts and drops the rest.
pub(crate) struct BlockingSort<'a> {
    sort: &'a Sort,
    keep: Option<usize>,
    /// Each document with its sort key ([`Sort::key`]), made once when it is pushed.
    docs: Vec<(Vec<Bson>, Document)>,
    budget: MemoryBudget,
}

impl<'a> BlockingSort<'a> {
    pub(crate) fn new(sort: &'a Sort, keep: Option<usize>, budget: MemoryBudget) -> Self {
        Self {
            sort,
            keep,
            docs: Vec::new(),
            budget,
        }
    }

    /// Adds a document.
    ///
    /// # Errors
    /// [`Error::MemoryLimitExceeded`] when the held documents pass the budget.
    pub(crate) fn push(&mut self, doc: Document) -> Result<()> {
        let key = self.sort.key(&doc);
        self.budget.charge(held_size(&key, &doc))?;
        self.docs.push((key, doc));
        if let Some(keep) = self.keep
            && self.docs.len() >= keep.saturating_mul(2).max(keep.saturating_add(1))
        {
            self.sort_held();
            for (key, dropped) in self.docs.drain(keep..) {
                self.budget.release(held_size(&key, &dropped));
            }
        }
        Ok(())
    }

    /// Sorts the held documents by their keys (stable: equal keys keep their order).
    fn sort_held(&mut self) {
        let sort = self.sort;
        self.docs.sort_by(|(a, _), (b, _)| sort.compare_keys(a, b));
    }

    /// The documents in order (the first `keep` of them).
    pub(crate) fn finish(mut self) -> Vec<Document> {
        self.sort_held();
        if let Some(keep) = self.keep {
            self.docs.truncate(keep);
        }
        self.docs.into_iter().map(|(_, d)| d).collect()
    }
}

impl Inner {
    /// The clock's wall time as `$$NOW` reads it.
    pub(crate) fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX)
    }

    /// Parses a query filter, `$expr` included (`$$NOW` from the store's clock).
    fn parse_query(&self, filter: &Document) -> Result<Filter> {
        Filter::parse_at(filter, self.now_ms())
    }

    /// Parses what an update call changes, bound to its `arrayFilters` (parsed first; a
    /// pipeline cannot take any, a replacement ignores them); `$$NOW` from the store's clock.
    fn parse_update(
        &self,
        update: UpdateModifications<'_>,
        array_filters: Option<&[Document]>,
    ) -> Result<Update> {
        let now_ms = self.now_ms();
        match update {
            UpdateModifications::Document(d) => {
                Update::parse_with_array_filters(d, array_filters, now_ms)
            }
            UpdateModifications::Pipeline(p) => {
                update::check_pipeline_array_filters(array_filters, now_ms)?;
                Update::pipeline(p, now_ms)
            }
        }
    }

    fn budget(
        &self,
        executor: Executor,
        stage: &'static str,
        allow_disk_use: bool,
    ) -> MemoryBudget {
        let base = self
            .blocking_bytes_max
            .load(std::sync::atomic::Ordering::Relaxed);
        MemoryBudget {
            used: 0,
            max: if allow_disk_use {
                base.saturating_mul(BLOCKING_BYTES_DISK_USE_MAX / BLOCKING_BYTES_MAX)
            } else {
                base
            },
            executor,
            stage,
            allow_disk_use,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// One write batch under the writer lock: staged storage writes plus an overlay so later
/// operations of the same batch see earlier ones.
struct Txn<'a> {
    inner: &'a Inner,
    state: std::sync::MutexGuard<'a, WriterState>,
    /// Counters as they will be after the commit.
    next: WriterState,
    set: WriteSet,
    /// Documents written in this batch by document key: their encoded bytes in `set`
    /// (`None` = deleted); ordered so a collection's staged documents are one key range.
    docs: BTreeMap<Vec<u8>, Option<Staged>>,
    /// Index entries written in this batch: key → `Some(encoded _id)` put, `None` removed;
    /// ordered so plans probe it with the same key ranges as the store.
    index: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Collections created or changed in this batch (`None` = dropped).
    colls: HashMap<(String, String), Option<Arc<CollectionMeta>>>,
    /// Collections this batch creates less those it drops or replaces (a rename changes
    /// neither).
    colls_added: isize,
    /// Cluster time and wall time of this batch's events.
    ts: Timestamp,
    wall_ms: u64,
    events: u64,
    /// Keeps `ts` in force for everything the batch compiles and applies (`$$CLUSTER_TIME`,
    /// `$currentDate` with `{$type: "timestamp"}`) while the batch lives, so no write path
    /// can leave it out.
    _cluster_time: aggregate::ClusterTimeScope,
}

impl Inner {
    fn begin(&self) -> Result<Txn<'_>> {
        if self.store.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let state = self.writer.lock()?;
        let wall_ms = self.clock.now_ms();
        let secs = u32::try_from(wall_ms / 1000).unwrap_or(u32::MAX);
        let ts = if secs > state.last_ts.0 {
            Timestamp {
                time: secs,
                increment: 1,
            }
        } else {
            Timestamp {
                time: state.last_ts.0,
                increment: state.last_ts.1.saturating_add(1),
            }
        };
        Ok(Txn {
            inner: self,
            next: state.clone(),
            state,
            set: std::mem::take(&mut *self.spare.lock()?),
            docs: BTreeMap::new(),
            index: BTreeMap::new(),
            colls: HashMap::new(),
            colls_added: 0,
            ts,
            wall_ms,
            events: 0,
            _cluster_time: aggregate::ClusterTimeScope::enter(ts),
        })
    }

    /// Removes old oplog entries past the size or age bound (at most
    /// [`OPLOG_TRIM_BATCH_MAX`] per pass).
    fn trim(&self, state: &mut WriterState) -> Result<u64> {
        let cutoff_ms = self
            .clock
            .now_ms()
            .saturating_sub(self.config.oplog_age_ms_max);
        let over_size = state.oplog_bytes > self.config.oplog_bytes_max;
        if !over_size && state.oldest_wall_ms.is_none_or(|w| w >= cutoff_ms) {
            return Ok(0);
        }
        let mut next = state.clone();
        next.oldest_wall_ms = None;
        let mut set = WriteSet::default();
        let mut removed = 0u64;
        for kv in self.store.range(
            Space::Oplog,
            Bound::Included(oplog_key(state.trimmed_through + 1).to_vec()),
            Bound::Unbounded,
            false,
        ) {
            let (k, v) = kv?;
            let (wall, ts) = entry_times(&v)?;
            // A commit goes whole (its entries share `ts`): a stream that starts at its time
            // either has all of its events or is told they are lost, never only some of them
            // (the `create` before an insert, which a classic stream does not show). So the
            // pass bound stops only between commits: a commit larger than it (a multi-update
            // of a large collection writes one entry per document) goes in one pass.
            let rest_of_commit = removed > 0 && ts == next.trimmed_ts;
            if removed as usize >= OPLOG_TRIM_BATCH_MAX && !rest_of_commit {
                // More may be due: make the next pass look again.
                next.oldest_wall_ms = Some(0);
                break;
            }
            let over_size = next.oplog_bytes > self.config.oplog_bytes_max;
            if !over_size && wall >= cutoff_ms && !rest_of_commit {
                next.oldest_wall_ms = Some(wall);
                break;
            }
            let seq = keys::decode_oplog_key(&k)?;
            set.remove(Space::Oplog, &k);
            next.oplog_bytes = next.oplog_bytes.saturating_sub(v.len() as u64);
            next.trimmed_through = seq;
            next.trimmed_ts = ts;
            removed += 1;
        }
        if removed == 0 {
            state.oldest_wall_ms = next.oldest_wall_ms;
            return Ok(0);
        }
        set.put(
            Space::Catalog,
            keys::CATALOG_STATE,
            &encode_record(&next.to_document())?,
        );
        // IMPORTANT: readers learn the new bound before the entries go, so a reader that
        // scans while they are deleted sees the bound when it checks after its scan
        // (`read_retained_oplog`) instead of reading a gap as "no events". If the commit
        // fails, the store stops taking writes; the bound goes back to what is stored.
        if let Ok(mut b) = self.bounds.write() {
            *b = OplogBounds::of(&next);
        }
        if let Err(e) = self.store.commit(&set, Durability::Buffer) {
            if let Ok(mut b) = self.bounds.write() {
                *b = OplogBounds::of(state);
            }
            return Err(e);
        }
        *state = next;
        Ok(removed)
    }
}

impl Txn<'_> {
    /// Commits the batch, publishes catalog changes and wakes change streams.
    fn finish(mut self) -> Result<()> {
        if self.set.is_empty() {
            self.return_set();
            return Ok(());
        }
        self.next.last_ts = (self.ts.time, self.ts.increment);
        self.set.put(
            Space::Catalog,
            keys::CATALOG_STATE,
            &encode_record(&self.next.to_document())?,
        );
        let durability = self.inner.config.fsync.durability();
        // A batch that changes the catalog holds it from before its commit until the catalog
        // says what the commit wrote: a read that looks a collection up again after its scan
        // ([`Inner::read_whole`]) then learns whether the collection was replaced or dropped
        // under it.
        let catalog = if self.colls.is_empty() {
            None
        } else {
            Some(self.inner.catalog.write()?)
        };
        self.inner.store.commit(&self.set, durability)?;
        if let Some(mut catalog) = catalog {
            let mut open = self.inner.open_databases.lock()?;
            for (k, v) in self.colls.drain() {
                match v {
                    Some(meta) => {
                        if !open.contains(&meta.db) {
                            open.insert(meta.db.clone());
                        }
                        catalog.insert(k, meta)
                    }
                    None => catalog.swap_remove(&k),
                };
            }
        }
        self.return_set();
        *self.state = self.next.clone();
        if let Ok(mut b) = self.inner.bounds.write() {
            *b = OplogBounds::of(&self.state);
        }
        if self.events > 0 {
            self.inner.notifier.publish(self.state.last_seq);
        }
        let over = self.state.oplog_bytes > self.inner.config.oplog_bytes_max;
        if over || self.events > 0 {
            // Retention failures do not undo the acknowledged write; they surface on the next
            // write through the poisoned flag.
            if let Err(e) = self.inner.trim(&mut self.state) {
                tracing::warn!(error = %e, "oplog retention pass failed");
            }
        }
        Ok(())
    }

    /// Hands the emptied write set back for the next batch, unless it grew past
    /// [`WRITE_SET_SPARE_BYTES_MAX`].
    fn return_set(&mut self) {
        let mut set = std::mem::take(&mut self.set);
        if set.capacity_bytes() <= WRITE_SET_SPARE_BYTES_MAX {
            set.clear();
            if let Ok(mut spare) = self.inner.spare.lock() {
                *spare = set;
            }
        }
    }

    /// The collection as this batch sees it, optionally creating it.
    fn collection(
        &mut self,
        db: &str,
        coll: &str,
        create: bool,
    ) -> Result<Option<Arc<CollectionMeta>>> {
        let key = (db.to_owned(), coll.to_owned());
        if let Some(m) = self.colls.get(&key) {
            if m.is_some() || !create {
                return Ok(m.clone());
            }
        } else if let Some(m) = self.inner.collection(db, coll) {
            return Ok(Some(m));
        }
        if !create {
            return Ok(None);
        }
        self.create_collection(db, coll, false).map(Some)
    }

    /// Creates `db.coll`, which does not exist, with its `create` event (`temp`: `$out`'s
    /// temporary collection, as MongoDB marks it).
    fn create_collection(
        &mut self,
        db: &str,
        coll: &str,
        temp: bool,
    ) -> Result<Arc<CollectionMeta>> {
        let live = self
            .inner
            .catalog
            .read()?
            .len()
            .saturating_add_signed(self.colls_added);
        if live >= COLLECTIONS_MAX {
            return Err(Error::TooMany {
                what: "the collection catalog",
                len: live.saturating_add(1),
                max: COLLECTIONS_MAX,
            });
        }
        let meta = Arc::new(CollectionMeta {
            id: self.alloc_id()?,
            db: db.to_owned(),
            coll: coll.to_owned(),
            indexes: Vec::new(),
            key_format: KeyFormat::CURRENT,
            uuid: bson::Uuid::new(),
        });
        self.save_collection(&meta)?;
        self.colls_added += 1;
        let mut desc = Document::new();
        if temp {
            desc.insert("temp", true);
        }
        desc.insert("idIndex", index::id_index_spec());
        self.ddl_event("create", &meta, bson::doc! {"desc": desc})?;
        Ok(meta)
    }

    /// The next collection or index id. Ids are never reused (a dropped collection's keys may
    /// still be on disk until compaction), so they can run out, after 2^32 creations.
    fn alloc_id(&mut self) -> Result<u32> {
        let id = self.next.next_id;
        self.next.next_id = id.checked_add(1).ok_or(Error::TooMany {
            what: "the id space of collections and indexes",
            len: usize::try_from(u64::from(u32::MAX) + 1).unwrap_or(usize::MAX),
            max: usize::try_from(u32::MAX).unwrap_or(usize::MAX),
        })?;
        Ok(id)
    }

    fn save_collection(&mut self, meta: &Arc<CollectionMeta>) -> Result<()> {
        self.set.put(
            Space::Catalog,
            &catalog_collection_key(&meta.db, &meta.coll),
            &encode_record(&meta.to_document())?,
        );
        self.colls
            .insert((meta.db.clone(), meta.coll.clone()), Some(meta.clone()));
        Ok(())
    }

    /// Stages the oplog entry of a command on `meta`'s collection: `op`, its namespace and
    /// UUID, then `fields`.
    fn ddl_event(&mut self, op: &str, meta: &CollectionMeta, fields: Document) -> Result<()> {
        self.event_with(|out, w| {
            w.append_str(out, "op", op)?;
            append_event_ns(out, w, meta)?;
            for (k, v) in &fields {
                w.append_value(out, k, v)?;
            }
            Ok(())
        })
    }

    /// Stages an oplog entry (the shared fields are added here).
    fn event(&mut self, entry: Document) -> Result<()> {
        self.event_with(|out, w| {
            for (k, v) in &entry {
                w.append_value(out, k, v)?;
            }
            Ok(())
        })
    }

    /// Stages an oplog entry whose own fields `body` appends (as elements of `RawWriter`) to
    /// the write set's buffer, where the batch's documents already are; `ts` and `wall` follow.
    /// The bytes equal those of the same fields built as a `Document` and encoded.
    fn event_with(
        &mut self,
        body: impl FnOnce(&mut Vec<u8>, &RawWriter) -> Result<()>,
    ) -> Result<()> {
        let wall = bson::DateTime::from_millis(i64::try_from(self.wall_ms).unwrap_or(i64::MAX));
        let ts = Bson::Timestamp(self.ts);
        let staged = self.set.encode_value(|out| {
            let w = RawWriter::open(out);
            body(out, &w)?;
            w.append_value(out, "ts", &ts)?;
            w.append_value(out, "wall", &Bson::DateTime(wall))?;
            w.close(out)
        })?;
        let len = self.set.value(staged).len();
        self.next.last_seq += 1;
        self.next.oplog_bytes += len as u64;
        self.next.oldest_wall_ms.get_or_insert(self.wall_ms);
        self.set
            .put_staged(Space::Oplog, &oplog_key(self.next.last_seq), staged);
        self.events += 1;
        Ok(())
    }

    /// A document's bytes as this batch staged them: `None` = untouched by this batch,
    /// `Some(None)` = deleted in it.
    fn staged_doc(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.docs
            .get(key)
            .map(|d| d.map(|staged| self.set.value(staged)))
    }

    fn get_doc(&self, meta: &CollectionMeta, encoded_id: &[u8]) -> Result<Option<Document>> {
        let key = doc_key(meta.id, encoded_id);
        if let Some(d) = self.staged_doc(&key) {
            return d.map(decode_document).transpose();
        }
        self.inner
            .store
            .get_with(Space::Docs, &key, decode_document)
    }

    /// Whether a document with this `_id` exists as this batch sees it (nothing is decoded).
    fn doc_exists(&self, meta: &CollectionMeta, encoded_id: &[u8]) -> Result<bool> {
        let key = doc_key(meta.id, encoded_id);
        match self.staged_doc(&key) {
            Some(d) => Ok(d.is_some()),
            None => self.inner.store.contains_key(Space::Docs, &key),
        }
    }

    /// Documents matching `filter` as this batch sees them, in plan (or `sort`) order.
    ///
    /// Staged documents are found through the same access path as stored ones: `_id` points
    /// probe the staged documents by key, index plans probe the staged index entries
    /// (`self.index`, ordered) over the plan's ranges, and only a collection scan walks the
    /// collection's staged documents. So a batch of N upserts by an indexed field costs
    /// O(N log N), not O(N²).
    fn matching(
        &self,
        meta: &CollectionMeta,
        filter: &Filter,
        sort: Option<&Sort>,
        first_only: bool,
    ) -> Result<Vec<(Vec<u8>, Document)>> {
        let plan = index::plan(meta.key_format, &meta.indexes, filter, sort, false);
        let unsorted = sort.is_none_or(Sort::is_empty);
        // Staged candidates (encoded `_id`s) and whether this batch touched the plan's key
        // space at all (a staged put or removal inside its ranges).
        let mut staged: Vec<Vec<u8>> = Vec::new();
        let mut touched = false;
        match &plan.access {
            Access::Ids(ids) => {
                for id in ids {
                    if let Some(d) = self.docs.get(&doc_key(meta.id, id)) {
                        touched = true;
                        if d.is_some() {
                            staged.push(id.clone());
                        }
                    }
                }
            }
            Access::Index { ranges, point, .. } => {
                for (start, end) in ranges {
                    if *point {
                        if let Some(entry) = self.index.get(start) {
                            touched = true;
                            staged.extend(entry.iter().cloned());
                        }
                        continue;
                    }
                    if start >= end {
                        continue;
                    }
                    let range = (
                        Bound::Included(start.as_slice()),
                        Bound::Excluded(end.as_slice()),
                    );
                    for (_, entry) in self.index.range::<[u8], _>(range) {
                        touched = true;
                        staged.extend(entry.iter().cloned());
                    }
                }
            }
            Access::Scan => {
                let prefix = meta.id.to_be_bytes();
                let range = (Bound::Included(&prefix[..]), Bound::Unbounded);
                for (key, d) in self.docs.range::<[u8], _>(range) {
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    touched = true;
                    if d.is_some() {
                        staged.push(key.get(4..).unwrap_or_default().to_vec());
                    }
                }
            }
        }
        // Without a sort any match will do; with one, the store's order is only usable when
        // this batch changed nothing inside the plan's key space.
        let stop_early = first_only && (unsorted || (plan.sorted && !touched));
        let mut out: Vec<(Vec<u8>, Document)> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for id in staged {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(Some(bytes)) = self.staged_doc(&doc_key(meta.id, &id)) else {
                continue;
            };
            let doc = decode_document(bytes)?;
            if filter.try_matches(&doc)? {
                out.push((id, doc));
                if stop_early {
                    return Ok(out);
                }
            }
        }
        self.inner.execute(
            meta,
            &plan,
            &mut |id, doc, _| {
                if seen.contains(id) {
                    return Ok(true);
                }
                let current = match self.staged_doc(&doc_key(meta.id, id)) {
                    Some(Some(d)) => decode_document(d)?,
                    Some(None) => return Ok(true),
                    None => doc,
                };
                if filter.try_matches(&current)? {
                    out.push((id.to_vec(), current));
                    return Ok(!stop_early);
                }
                Ok(true)
            },
            &mut ExecStats::default(),
        )?;
        if let Some(s) = sort.filter(|s| !s.is_empty())
            && (!plan.sorted || touched)
        {
            out.sort_by(|a, b| s.compare(&a.1, &b.1));
        }
        Ok(out)
    }

    fn insert(&mut self, db: &str, coll: &str, mut document: Document) -> Result<Bson> {
        let id = match document.get("_id") {
            Some(id) => {
                document::check_id(id)?;
                id.clone()
            }
            None => {
                let id = Bson::ObjectId(self.inner.ids.next(self.wall_ms));
                let mut with_id = Document::new();
                with_id.insert("_id", id.clone());
                with_id.extend(document);
                document = with_id;
                id
            }
        };
        let meta = match self.collection(db, coll, false)? {
            Some(meta) => meta,
            None => {
                // A collection is created only for a document it accepts: the checks its
                // first write makes (the key's length, the document's encoding) run first.
                let encoded_id = keys::encode_key_value(&id, KeyFormat::CURRENT);
                keys::check_key(&doc_key(0, &encoded_id))?;
                encode_document_into(&document, &mut Vec::new())?;
                self.create_collection(db, coll, false)?
            }
        };
        let encoded_id = keys::encode_key_value(&id, meta.key_format);
        if self.doc_exists(&meta, &encoded_id)? {
            return Err(Error::DuplicateKey {
                ns: meta.ns(),
                index: "_id_".into(),
                key: format!("{{ _id: {} }}", document::render_value(&id)),
            });
        }
        let post = self.write_doc(&meta, &encoded_id, None, Some(&document))?;
        self.insert_event(&meta, &id, post)?;
        Ok(id)
    }

    /// The collection a write goes to, created when missing.
    fn collection_for_write(&mut self, db: &str, coll: &str) -> Result<Arc<CollectionMeta>> {
        self.collection(db, coll, true)?
            .ok_or_else(|| Error::NamespaceNotFound {
                ns: format!("{db}.{coll}"),
            })
    }

    /// Appends an insert's change event. Its `post` is the document's encoding staged at
    /// `post`, copied in place rather than encoded a second time.
    fn insert_event(
        &mut self,
        meta: &CollectionMeta,
        id: &Bson,
        post: Option<Staged>,
    ) -> Result<()> {
        self.event_with(|out, w| {
            w.append_str(out, "op", "insert")?;
            append_event_ns(out, w, meta)?;
            append_event_key(out, w, id)?;
            if let Some(post) = post {
                w.append_document_within(out, "post", post.range())?;
            }
            Ok(())
        })
    }

    /// [`WriteOp::UpsertEncoded`]: stores the bytes as an insert when nothing else needs the
    /// decoded document (no secondary index to maintain, no document with that `_id` to
    /// replace); otherwise decodes them and replaces by `_id` as [`WriteOp::Upsert`] does.
    fn upsert_encoded(
        &mut self,
        db: &str,
        coll: &str,
        document: EncodedDocument,
    ) -> Result<UpdateResult> {
        let EncodedDocument { bytes, id } = document;
        let meta = self.collection_for_write(db, coll)?;
        let encoded_id = keys::encode_key_value(&id, meta.key_format);
        if !meta.indexes.is_empty() || self.doc_exists(&meta, &encoded_id)? {
            let decoded = document::decode_document(&bytes)?;
            let mut filter = Document::new();
            filter.insert("_id", id);
            return self.update_parsed(
                db,
                coll,
                &filter,
                Update::replacement(decoded)?,
                UpdateOptions {
                    upsert: true,
                    ..UpdateOptions::default()
                },
            );
        }
        let key = doc_key(meta.id, &encoded_id);
        keys::check_key(&key)?;
        let staged = self.set.encode_value(|out| {
            out.extend_from_slice(&bytes);
            Ok(())
        })?;
        self.set.put_staged(Space::Docs, &key, staged);
        self.docs.insert(key, Some(staged));
        // The same event an upsert that inserts writes.
        self.insert_event(&meta, &id, Some(staged))?;
        Ok(UpdateResult {
            matched: 0,
            modified: 0,
            upserted_id: Some(id),
        })
    }

    /// Stages a document change with its index maintenance (`old`/`new` = before/after);
    /// returns where the new document's encoding is staged.
    fn write_doc(
        &mut self,
        meta: &Arc<CollectionMeta>,
        encoded_id: &[u8],
        old: Option<&Document>,
        new: Option<&Document>,
    ) -> Result<Option<Staged>> {
        let key = doc_key(meta.id, encoded_id);
        keys::check_key(&key)?;
        let staged = match new {
            Some(d) => Some(self.set.encode_value(|out| encode_document_into(d, out))?),
            None => None,
        };
        // Every check runs before anything is queued, so a failing document (a duplicate key,
        // a key too long) leaves the batch as it was: `insertMany` with `ordered: false` goes
        // on with the next document. The encoding staged above is the last thing in the
        // buffer until then, and is dropped on failure.
        let (changes, became_multikey) = match self.index_changes(meta, encoded_id, old, new) {
            Ok(c) => c,
            Err(e) => {
                if let Some(staged) = staged {
                    self.set.discard(staged);
                }
                return Err(e);
            }
        };
        for (k, v) in changes {
            match &v {
                Some(id) => self.set.put(Space::Index, &k, id),
                None => self.set.remove(Space::Index, &k),
            }
            self.index.insert(k, v);
        }
        match staged {
            Some(b) => self.set.put_staged(Space::Docs, &key, b),
            None => self.set.remove(Space::Docs, &key),
        }
        // The overlay points at the staged bytes: no copy of the document.
        self.docs.insert(key, staged);
        if !became_multikey.is_empty() {
            let mut m = (**meta).clone();
            m.indexes = m
                .indexes
                .iter()
                .map(|i| {
                    if became_multikey.contains(&i.id) {
                        let mut d = (**i).clone();
                        d.multikey = true;
                        Arc::new(d)
                    } else {
                        i.clone()
                    }
                })
                .collect();
            self.save_collection(&Arc::new(m))?;
        }
        Ok(staged)
    }

    /// The index entries a document change removes (`None`) and adds (`Some(encoded _id)`),
    /// after every check, and the indexes it makes multikey.
    fn index_changes(
        &self,
        meta: &Arc<CollectionMeta>,
        encoded_id: &[u8],
        old: Option<&Document>,
        new: Option<&Document>,
    ) -> Result<(IndexChanges, Vec<u32>)> {
        let mut became_multikey = Vec::new();
        let mut changes = IndexChanges::new();
        for index in &meta.indexes {
            let old_entries = match old {
                Some(d) => index.entries(d)?.0,
                None => Vec::new(),
            };
            let (new_entries, multikey) = match new {
                Some(d) => index.entries(d)?,
                None => (Vec::new(), false),
            };
            if multikey && !index.multikey {
                became_multikey.push(index.id);
            }
            for e in old_entries.iter().filter(|e| !new_entries.contains(e)) {
                changes.push((index.entry_key(e, encoded_id), None));
            }
            for e in new_entries.iter().filter(|e| !old_entries.contains(e)) {
                let k = index.entry_key(e, encoded_id);
                keys::check_key(&k)?;
                if index.unique {
                    self.check_unique(meta, index, &k, encoded_id, new)?;
                }
                changes.push((k, Some(encoded_id.to_vec())));
            }
        }
        Ok((changes, became_multikey))
    }

    /// Fails when another document holds the unique key `key` (as this batch sees it).
    fn check_unique(
        &self,
        meta: &CollectionMeta,
        index: &IndexDef,
        key: &[u8],
        encoded_id: &[u8],
        doc: Option<&Document>,
    ) -> Result<()> {
        let holder = match self.index.get(key) {
            Some(pending) => pending.clone(),
            None => self.inner.store.get(Space::Index, key)?,
        };
        match holder {
            Some(id) if id != encoded_id => Err(Error::DuplicateKey {
                ns: meta.ns(),
                index: index.name.clone(),
                key: doc.map_or_else(
                    || "{}".to_owned(),
                    // A unique key is the index id (a `u32`) and the entry's values.
                    |d| index.render_key(d, key.get(size_of::<u32>()..).unwrap_or_default()),
                ),
            }),
            _ => Ok(()),
        }
    }

    fn update(
        &mut self,
        db: &str,
        coll: &str,
        filter: &Document,
        update: UpdateModifications<'_>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        // `$$CLUSTER_TIME` in a pipeline is this write's cluster time.
        let parsed = self
            .inner
            .parse_update(update, options.array_filters.as_deref())?;
        self.update_parsed(db, coll, filter, parsed, options)
    }

    /// [`Txn::update`] with the update already parsed; an upsert takes its document from it.
    fn update_parsed(
        &mut self,
        db: &str,
        coll: &str,
        filter: &Document,
        mut parsed: Update,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        if options.multi && matches!(parsed, Update::Replace(_)) {
            return Err(Error::update(
                9,
                "multi update is not supported for replacement-style update",
            ));
        }
        let parsed_filter = self.inner.parse_query(filter)?;
        let mut result = UpdateResult::default();
        let meta = self.collection(db, coll, false)?;
        let matches = match &meta {
            Some(m) => self.matching(m, &parsed_filter, None, !options.multi)?,
            None => Vec::new(),
        };
        for (encoded_id, old) in matches {
            let Some(meta) = &meta else { break };
            result.matched += 1;
            // A single update applies once: a replacement's values move into the document
            // (`parsed` is then a replacement by nothing, which `write_change` only asks the
            // kind of).
            let mut log = Vec::new();
            let new = if options.multi {
                parsed.apply_logged(&old, false, &parsed_filter, self.wall_ms, &mut log)?
            } else {
                parsed.apply_once(&old, false, &parsed_filter, self.wall_ms, &mut log)?
            };
            if !document::identical(&new, &old) {
                result.modified += 1;
                self.write_change(meta, &encoded_id, old, new, &parsed, &log)?;
            }
            if !options.multi {
                break;
            }
        }
        if result.matched == 0 && options.upsert {
            let id = self.upsert(db, coll, &parsed_filter, Cow::Owned(parsed))?;
            result.upserted_id = Some(id);
        }
        Ok(result)
    }

    /// Stages an update or replace of an existing document and its event; `update` tells only
    /// which kind of change it was (a replacement may have given its fields away already), and
    /// `log` what an operator update's operators wrote.
    fn write_change(
        &mut self,
        meta: &Arc<CollectionMeta>,
        encoded_id: &[u8],
        old: Document,
        new: Document,
        update: &Update,
        log: &[update::Logged],
    ) -> Result<()> {
        // Re-read the catalog entry: an earlier write of this batch may have marked an index
        // multikey.
        let meta = self
            .collection(&meta.db, &meta.coll, false)?
            .unwrap_or_else(|| meta.clone());
        let post = self.write_doc(&meta, encoded_id, Some(&old), Some(&new))?;
        let change = match update {
            Update::Replace(_) => None,
            // As MongoDB's update nodes log their writes: each operator's path.
            Update::Ops(..) => Some(update::describe_ops(&old, &new, log)),
            // MongoDB logs a pipeline's change as a delta unless the delta would outgrow the
            // new document; then as a replacement.
            Update::Pipeline(_) => update::describe_change(&old, &new)
                .filter(|(c, _)| update::delta_fits(c, document::bson_size(&new))),
        };
        let replace = change.is_none();
        self.event_with(|out, w| {
            w.append_str(out, "op", if replace { "replace" } else { "update" })?;
            append_event_ns(out, w, &meta)?;
            append_event_key(out, w, new.get("_id").unwrap_or(&Bson::Null))?;
            if let Some((change, ambiguous)) = &change {
                w.append_document(out, "upd", change)?;
                if !ambiguous.is_empty() {
                    w.append_document(out, "amb", ambiguous)?;
                }
            }
            w.append_document(out, "pre", &old)?;
            if let Some(post) = post {
                w.append_document_within(out, "post", post.range())?;
            }
            Ok(())
        })
    }

    /// Inserts the document an upsert creates; an owned replacement moves its values in.
    fn upsert(
        &mut self,
        db: &str,
        coll: &str,
        filter: &Filter,
        update: Cow<'_, Update>,
    ) -> Result<Bson> {
        let seed = update::seed_from_filter(filter)?;
        let mut doc = match update {
            Cow::Owned(Update::Replace(mut r)) => {
                // Built once, `_id` first and with room for every field.
                let id = r
                    .remove("_id")
                    .or_else(|| seed.get("_id").cloned())
                    .unwrap_or_else(|| Bson::ObjectId(self.inner.ids.next(self.wall_ms)));
                let mut d = decode::document_for(r.len() + 1);
                d.insert("_id", id);
                d.extend(r);
                d
            }
            Cow::Borrowed(Update::Replace(r)) => {
                let mut d = Document::new();
                if let Some(id) = r.get("_id").or_else(|| seed.get("_id")) {
                    d.insert("_id", id.clone());
                }
                for (k, v) in r {
                    if k != "_id" {
                        d.insert(k.clone(), v.clone());
                    }
                }
                d
            }
            ops => ops.apply(&seed, true, filter, self.wall_ms)?,
        };
        if !doc.contains_key("_id") {
            let mut with_id = Document::new();
            with_id.insert("_id", Bson::ObjectId(self.inner.ids.next(self.wall_ms)));
            with_id.extend(doc);
            doc = with_id;
        } else if doc.keys().next().map(String::as_str) != Some("_id") {
            let id = doc.remove("_id").unwrap_or(Bson::Null);
            let mut with_id = Document::new();
            with_id.insert("_id", id);
            with_id.extend(doc);
            doc = with_id;
        }
        self.insert(db, coll, doc)
    }

    fn delete(&mut self, db: &str, coll: &str, filter: &Document, multi: bool) -> Result<u64> {
        let parsed = self.inner.parse_query(filter)?;
        let Some(meta) = self.collection(db, coll, false)? else {
            return Ok(0);
        };
        let matches = self.matching(&meta, &parsed, None, !multi)?;
        let mut n = 0;
        for (encoded_id, old) in matches {
            self.delete_doc(&meta, &encoded_id, old)?;
            n += 1;
            if !multi {
                break;
            }
        }
        Ok(n)
    }

    fn delete_doc(
        &mut self,
        meta: &Arc<CollectionMeta>,
        encoded_id: &[u8],
        old: Document,
    ) -> Result<()> {
        self.write_doc(meta, encoded_id, Some(&old), None)?;
        self.event_with(|out, w| {
            w.append_str(out, "op", "delete")?;
            append_event_ns(out, w, meta)?;
            append_event_key(out, w, old.get("_id").unwrap_or(&Bson::Null))?;
            w.append_document(out, "pre", &old)
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "findAndModify's options, passed once"
    )]
    fn find_and_modify(
        &mut self,
        db: &str,
        coll: &str,
        filter: &Document,
        sort: Option<&Sort>,
        update: Option<&Update>,
        upsert: bool,
        return_new: bool,
    ) -> Result<Option<Document>> {
        let parsed = self.inner.parse_query(filter)?;
        let meta = self.collection(db, coll, false)?;
        let first = match &meta {
            Some(m) => self.matching(m, &parsed, sort, true)?.into_iter().next(),
            None => None,
        };
        match (first, update, meta) {
            (Some((id, old)), None, Some(meta)) => {
                self.delete_doc(&meta, &id, old.clone())?;
                Ok(Some(old))
            }
            (Some((id, old)), Some(u), Some(meta)) => {
                let mut log = Vec::new();
                let new = u.apply_logged(&old, false, &parsed, self.wall_ms, &mut log)?;
                if document::identical(&new, &old) {
                    return Ok(Some(old));
                }
                let returned = if return_new { new.clone() } else { old.clone() };
                self.write_change(&meta, &id, old, new, u, &log)?;
                Ok(Some(returned))
            }
            (None, Some(u), _) if upsert => {
                let id = self.upsert(db, coll, &parsed, Cow::Borrowed(u))?;
                if !return_new {
                    return Ok(None);
                }
                let meta =
                    self.collection(db, coll, false)?
                        .ok_or_else(|| Error::NamespaceNotFound {
                            ns: format!("{db}.{coll}"),
                        })?;
                self.get_doc(&meta, &keys::encode_key_value(&id, meta.key_format))
            }
            _ => Ok(None),
        }
    }

    fn create_index(&mut self, db: &str, coll: &str, model: &IndexModel) -> Result<String> {
        let meta = self
            .collection(db, coll, true)?
            .ok_or_else(|| Error::NamespaceNotFound {
                ns: format!("{db}.{coll}"),
            })?;
        let probe = IndexDef::new(0, model, meta.key_format)?;
        for existing in &meta.indexes {
            let same_keys = existing.model().keys == probe.model().keys;
            if existing.name == probe.name || same_keys {
                if same_keys && existing.name == probe.name && existing.unique == probe.unique {
                    return Ok(existing.name.clone());
                }
                return Err(Error::IndexConflict { name: probe.name });
            }
        }
        if meta.indexes.len() >= INDEXES_PER_COLLECTION_MAX {
            return Err(Error::TooMany {
                what: "indexes",
                len: meta.indexes.len() + 1,
                max: INDEXES_PER_COLLECTION_MAX,
            });
        }
        let mut def = IndexDef::new(self.alloc_id()?, model, meta.key_format)?;
        let name = def.name.clone();
        // Build over existing documents.
        let mut entries: Vec<(Vec<u8>, Vec<u8>, Document)> = Vec::new();
        for (encoded_id, doc) in self.matching(&meta, &Filter::all(), None, false)? {
            let (values, multikey) = def.entries(&doc)?;
            def.multikey |= multikey;
            for v in values {
                entries.push((v, encoded_id.clone(), doc.clone()));
            }
        }
        if def.unique {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for pair in entries.windows(2) {
                if let [a, b] = pair
                    && a.0 == b.0
                    && a.1 != b.1
                {
                    return Err(Error::DuplicateKey {
                        ns: meta.ns(),
                        index: name,
                        key: def.render_key(&b.2, &b.0),
                    });
                }
            }
        }
        for (values, encoded_id, _) in entries {
            let k = def.entry_key(&values, &encoded_id);
            keys::check_key(&k)?;
            self.set.put(Space::Index, &k, &encoded_id);
            self.index.insert(k, Some(encoded_id));
        }
        let spec = def.spec();
        let mut m = (*meta).clone();
        m.indexes.push(Arc::new(def));
        self.save_collection(&Arc::new(m))?;
        self.ddl_event(
            "createIndexes",
            &meta,
            bson::doc! {"desc": {"indexes": [spec]}},
        )?;
        Ok(name)
    }

    fn drop_index(&mut self, db: &str, coll: &str, name: &str) -> Result<()> {
        let meta = self
            .collection(db, coll, false)?
            .ok_or_else(|| Error::NamespaceNotFound {
                ns: format!("{db}.{coll}"),
            })?;
        let index = meta
            .indexes
            .iter()
            .find(|i| i.name == name)
            .cloned()
            .ok_or_else(|| Error::IndexNotFound {
                name: name.to_owned(),
            })?;
        for kv in self
            .inner
            .store
            .prefix(Space::Index, &index.id.to_be_bytes(), false)
        {
            let (k, _) = kv?;
            self.set.remove(Space::Index, &k);
        }
        let mut m = (*meta).clone();
        m.indexes.retain(|i| i.name != name);
        self.save_collection(&Arc::new(m))?;
        self.ddl_event(
            "dropIndexes",
            &meta,
            bson::doc! {"desc": {"indexes": [index.spec()]}},
        )
    }

    fn drop_collection(&mut self, db: &str, coll: &str) -> Result<bool> {
        let Some(meta) = self.collection(db, coll, false)? else {
            return Ok(false);
        };
        self.remove_collection(&meta)?;
        self.ddl_event("drop", &meta, Document::new())?;
        Ok(true)
    }

    /// Removes a collection — its stored documents, index entries and catalog record — without
    /// a change event (a drop adds its own; `$out`'s rename stands for the one it replaces).
    fn remove_collection(&mut self, meta: &CollectionMeta) -> Result<()> {
        for kv in self
            .inner
            .store
            .prefix(Space::Docs, &meta.id.to_be_bytes(), false)
        {
            let (k, _) = kv?;
            self.set.remove(Space::Docs, &k);
        }
        for index in &meta.indexes {
            for kv in self
                .inner
                .store
                .prefix(Space::Index, &index.id.to_be_bytes(), false)
            {
                let (k, _) = kv?;
                self.set.remove(Space::Index, &k);
            }
        }
        self.set.remove(
            Space::Catalog,
            &catalog_collection_key(&meta.db, &meta.coll),
        );
        self.colls
            .insert((meta.db.clone(), meta.coll.clone()), None);
        self.colls_added -= 1;
        Ok(())
    }

    /// Renames `db.coll` to `to_db.to_coll`, which must not exist (`drop_target`: the UUID of
    /// the collection `$out` removed from that name in this batch).
    fn rename(
        &mut self,
        db: &str,
        coll: &str,
        to_db: &str,
        to_coll: &str,
        drop_target: Option<bson::Uuid>,
    ) -> Result<()> {
        let meta = self
            .collection(db, coll, false)?
            .ok_or_else(|| Error::NamespaceNotFound {
                ns: format!("{db}.{coll}"),
            })?;
        if self.collection(to_db, to_coll, false)?.is_some() {
            return Err(Error::NamespaceExists {
                ns: format!("{to_db}.{to_coll}"),
            });
        }
        self.set
            .remove(Space::Catalog, &catalog_collection_key(db, coll));
        self.colls.insert((db.to_owned(), coll.to_owned()), None);
        let mut m = (*meta).clone();
        to_db.clone_into(&mut m.db);
        to_coll.clone_into(&mut m.coll);
        self.save_collection(&Arc::new(m))?;
        let mut fields = bson::doc! {"to": {"db": to_db, "coll": to_coll}};
        if let Some(uuid) = drop_target {
            fields.insert("dropTarget", uuid);
        }
        self.ddl_event("rename", &meta, fields)
    }
}

/// Whether a resume token's `_data` is that of an `invalidate` event (which only
/// `startAfter` accepts).
#[must_use]
pub fn is_invalidate_token(data: &str) -> bool {
    keys::decode_resume_token(data).is_ok_and(|(_, invalidate)| invalidate)
}

/// MongoDB's total order over BSON values across types (the order of `sort`, and of index
/// keys: `encode_key_value(a).cmp(&encode_key_value(b))` agrees with it).
#[must_use]
pub fn compare_values(a: &Bson, b: &Bson) -> std::cmp::Ordering {
    document::compare(a, b)
}

/// Fuzz target body for the filter, projection, sort and update parsers: `data` is a JSON
/// (Extended JSON) or BSON document `{filter, projection, sort, update}` (or a bare filter).
/// Parsing and evaluation must never panic, whatever the input.
pub fn fuzz_history_query(data: &[u8]) {
    let doc = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| Bson::try_from(v).ok())
        .and_then(|b| b.as_document().cloned())
        .or_else(|| Document::from_reader(data).ok());
    let Some(doc) = doc else { return };
    let part = |k: &str| doc.get_document(k).ok().cloned();
    let filter = part("filter").unwrap_or_else(|| doc.clone());
    let samples = [
        bson::doc! {"_id": 1, "a": [1, {"b": null}, [2]], "s": "x\u{0}y", "n": {"m": 1.5}},
        bson::doc! {"_id": "k", "a": {"b": [true, bson::DateTime::from_millis(-1)]}, "i": i64::MIN},
        Document::new(),
    ];
    if let Ok(f) = Filter::parse(&filter) {
        for s in &samples {
            let _ = f.matches(s);
        }
        let _ = index::plan(KeyFormat::CURRENT, &[], &f, None, false);
    }
    if let Some(p) = part("projection")
        && let Ok(f) = Filter::parse(&filter)
        && let Ok(Some(p)) = FieldTree::parse_find(&p, &f, 0)
    {
        samples.iter().for_each(|s| drop(p.apply(s.clone())));
    }
    if let Some(sort) = part("sort")
        && let Ok(sort) = Sort::parse(&sort)
    {
        let _ = sort.compare(&samples[0], &samples[1]);
    }
    if let Some(u) = part("update")
        && let (Ok(u), Ok(f)) = (Update::parse(&u), Filter::parse(&filter))
    {
        for s in &samples {
            let _ = u.apply(s, true, &f, 0);
        }
    }
    for format in [KeyFormat::V1, KeyFormat::V2, KeyFormat::V3] {
        for s in &samples {
            let enc = encode_key_value(&Bson::Document(s.clone()), format);
            let _ = keys::decode_value(&enc, format);
        }
        let _ = keys::decode_value(data, format);
    }
}

/// Splits and validates a dotted path (shared by the API for sort and projection checks).
///
/// # Errors
/// [`Error::BadValue`] for an empty path or part, [`Error::PathTooLong`] beyond
/// [`PATH_PARTS_MAX`] parts.
pub fn check_path(path: &str) -> Result<()> {
    split_path(path).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_record_names_its_key_format_and_an_unknown_one_is_refused() {
        let meta = CollectionMeta {
            id: 3,
            db: "shop".into(),
            coll: "orders".into(),
            indexes: Vec::new(),
            key_format: KeyFormat::V2,
            uuid: bson::Uuid::new(),
        };
        let d = meta.to_document();
        assert_eq!(d.get_i32("keyFormat").unwrap(), 2);
        let back = CollectionMeta::from_document(&d).unwrap();
        assert_eq!(back.key_format, KeyFormat::V2);
        let mut v1 = d.clone();
        v1.remove("keyFormat");
        assert_eq!(
            CollectionMeta::from_document(&v1).unwrap().key_format,
            KeyFormat::V1,
            "records written before the field existed"
        );
        let mut v3 = d.clone();
        v3.insert("keyFormat", 3);
        assert_eq!(
            CollectionMeta::from_document(&v3).unwrap().key_format,
            KeyFormat::V3
        );
        let mut future = d;
        future.insert("keyFormat", 4);
        assert!(matches!(
            CollectionMeta::from_document(&future),
            Err(Error::Corrupt { .. })
        ));
    }

    /// A collection record keeps its UUID; one written before UUIDs gets a fresh one, and a
    /// mistyped one (not binary subtype 4 of 16 bytes) is corrupt.
    #[test]
    fn a_collection_record_keeps_its_uuid_and_a_mistyped_one_is_corrupt() {
        let meta = CollectionMeta {
            id: 3,
            db: "shop".into(),
            coll: "orders".into(),
            indexes: Vec::new(),
            key_format: KeyFormat::V3,
            uuid: bson::Uuid::new(),
        };
        let d = meta.to_document();
        assert_eq!(CollectionMeta::from_document(&d).unwrap().uuid, meta.uuid);
        let mut legacy = d.clone();
        legacy.remove("uuid");
        let given = CollectionMeta::from_document(&legacy).unwrap().uuid;
        assert_ne!(given, meta.uuid, "a fresh one");
        let binary = |subtype, bytes: Vec<u8>| Bson::Binary(bson::Binary { subtype, bytes });
        for damaged in [
            Bson::String(meta.uuid.to_string()),
            binary(
                bson::spec::BinarySubtype::Generic,
                meta.uuid.bytes().to_vec(),
            ),
            binary(bson::spec::BinarySubtype::Uuid, vec![1; 15]),
        ] {
            let mut bad = d.clone();
            bad.insert("uuid", damaged.clone());
            assert!(
                matches!(
                    CollectionMeta::from_document(&bad),
                    Err(Error::Corrupt { .. })
                ),
                "{damaged}"
            );
        }
    }

    /// The catalog state, an index definition and an oplog entry's date are read back as
    /// written, and a record missing a field or holding the wrong type is corrupt, not a zero
    /// or a default.
    #[test]
    fn damaged_state_index_and_oplog_records_are_corrupt() {
        let state = WriterState {
            last_seq: 7,
            trimmed_through: 3,
            trimmed_ts: (4, 1),
            oplog_bytes: 900,
            last_ts: (5, 2),
            next_id: 4,
            oldest_wall_ms: None,
        };
        let d = state.to_document();
        let back = WriterState::from_document(&d).unwrap();
        assert_eq!(
            (
                back.last_seq,
                back.trimmed_through,
                back.trimmed_ts,
                back.oplog_bytes,
                back.last_ts,
                back.next_id
            ),
            (7, 3, (4, 1), 900, (5, 2), 4)
        );
        // A record from before `trimmed_ts` existed: the last cluster time handed out stands
        // in (or none, when retention never ran); a mistyped one is corrupt.
        let mut legacy = d.clone();
        legacy.remove("trimmed_ts");
        assert_eq!(
            WriterState::from_document(&legacy).unwrap().trimmed_ts,
            (5, 2)
        );
        legacy.insert("trimmed_through", 0_i64);
        assert_eq!(
            WriterState::from_document(&legacy).unwrap().trimmed_ts,
            (0, 0)
        );
        let mut mistyped = d.clone();
        mistyped.insert("trimmed_ts", 3_i64);
        assert!(matches!(
            WriterState::from_document(&mistyped),
            Err(Error::Corrupt { .. })
        ));
        for field in [
            "last_seq",
            "trimmed_through",
            "oplog_bytes",
            "ts",
            "next_id",
        ] {
            let mut missing = d.clone();
            missing.remove(field);
            assert!(
                matches!(
                    WriterState::from_document(&missing),
                    Err(Error::Corrupt { .. })
                ),
                "{field} missing"
            );
            let mut mistyped = d.clone();
            mistyped.insert(field, "x");
            assert!(
                matches!(
                    WriterState::from_document(&mistyped),
                    Err(Error::Corrupt { .. })
                ),
                "{field} mistyped"
            );
        }
        let mut zero_id = d;
        zero_id.insert("next_id", 0_i64);
        assert!(matches!(
            WriterState::from_document(&zero_id),
            Err(Error::Corrupt { .. })
        ));

        let model = IndexModel {
            keys: vec![("orderNumber".into(), 1)],
            name: None,
            unique: true,
        };
        let def = IndexDef::new(9, &model, KeyFormat::CURRENT).unwrap();
        let d = def.to_document();
        let back = IndexDef::from_document(&d, KeyFormat::CURRENT).unwrap();
        assert_eq!((back.unique, back.name.as_str()), (true, "orderNumber_1"));
        for field in ["name", "unique", "multikey"] {
            let mut missing = d.clone();
            missing.remove(field);
            assert!(
                matches!(
                    IndexDef::from_document(&missing, KeyFormat::CURRENT),
                    Err(Error::Corrupt { .. })
                ),
                "{field} missing"
            );
        }

        let entry = |d: Document| d.to_vec().unwrap();
        let wall = bson::DateTime::from_millis(1_234);
        let ts = Timestamp {
            time: 9,
            increment: 2,
        };
        assert_eq!(
            entry_times(&entry(bson::doc! {"ts": ts, "wall": wall})).unwrap(),
            (1_234, (9, 2))
        );
        for damaged in [bson::doc! {"op": "i", "ts": ts}, bson::doc! {"wall": wall}] {
            assert!(matches!(
                entry_times(&entry(damaged)),
                Err(Error::Corrupt { .. })
            ));
        }
    }

    /// A store whose state record predates `trimmed_ts` opens with the first retained event's
    /// time in its place: a `startAtOperationTime` at or before it is refused (the removed
    /// events may share it), a later one reads on; the next commit persists the value.
    #[test]
    fn a_state_record_without_trimmed_ts_takes_the_first_retained_events_time() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::shared(1_000_000);
        let config = || HistoryConfig {
            oplog_age_ms_max: 60_000,
            ..HistoryConfig::default()
        };
        let h = History::open(dir.path(), config(), clock.clone()).unwrap();
        h.insert_one("db", "c", bson::doc! {"_id": 1}).unwrap();
        clock.advance(std::time::Duration::from_secs(61));
        // Its commit removes the first commit's events: the collection's create and insert.
        h.insert_one("db", "c", bson::doc! {"_id": 2}).unwrap();
        let kept = h.inner.writer.lock().unwrap().last_ts;
        h.insert_one("db", "c", bson::doc! {"_id": 3}).unwrap();
        {
            let state = h.inner.writer.lock().unwrap();
            assert_eq!(state.trimmed_through, 2);
            assert!(state.last_ts > kept);
            let mut legacy = state.to_document();
            legacy.remove("trimmed_ts");
            let mut set = WriteSet::default();
            set.put(
                Space::Catalog,
                keys::CATALOG_STATE,
                &encode_record(&legacy).unwrap(),
            );
            h.inner.store.commit(&set, Durability::Buffer).unwrap();
        }
        drop(h);
        let h = History::open(dir.path(), config(), clock).unwrap();
        assert_eq!(h.inner.writer.lock().unwrap().trimmed_ts, kept);
        let at = |time, increment| WatchOptions {
            start_at_operation_time: Some(Timestamp { time, increment }),
            ..WatchOptions::default()
        };
        assert!(matches!(
            h.watch(WatchScope::All, at(kept.0, kept.1)),
            Err(Error::ChangeStreamHistoryLost)
        ));
        let mut s = h.watch(WatchScope::All, at(kept.0, kept.1 + 1)).unwrap();
        let events = s.try_next_batch(10).unwrap().events;
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].get_document("documentKey").unwrap(),
            &bson::doc! {"_id": 3}
        );
    }
}
