//! The change feed: events in MongoDB's change-stream shape, resume tokens, and
//! [`ChangeStream`], which reads the persisted oplog and wakes on commit without polling.
//!
//! Every write appends its events to the `oplog` keyspace in the same atomic batch as the
//! documents, keyed by a sequence number. A resume token's `_data` is fixed-width upper-case
//! hex of that sequence (see `keys::encode_resume_token`), so string order is oplog order.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bson::{Bson, Document, Timestamp};

use super::aggregate::EventPipeline;
use super::document::decode_document;
use super::error::{Error, Result};
use super::keys::{decode_resume_token, encode_resume_token};
use super::{Inner, OPLOG_READ_BATCH_MAX};

/// Which namespaces a stream sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    /// Every database (never invalidated).
    All,
    /// One database (invalidated by `dropDatabase`).
    Database(String),
    /// One collection (invalidated by its drop or rename, a rename onto it — `$out` replacing
    /// it —, or its database's drop).
    Collection {
        /// Database name.
        db: String,
        /// Collection name.
        coll: String,
    },
}

/// `fullDocument` of a change stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FullDocument {
    /// Only insert and replace events carry the document.
    #[default]
    Default,
    /// Update events carry the current document, read when the event is delivered.
    UpdateLookup,
    /// Update events carry the post-image, or null when it is missing.
    WhenAvailable,
    /// Update events carry the post-image; the stream fails when it is missing.
    Required,
}

impl FullDocument {
    /// Parses MongoDB's option string.
    ///
    /// # Errors
    /// [`Error::BadValue`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "default" => Self::Default,
            "updateLookup" => Self::UpdateLookup,
            "whenAvailable" => Self::WhenAvailable,
            "required" => Self::Required,
            other => return Err(Error::bad(format!("unknown fullDocument mode `{other}`"))),
        })
    }
}

/// `fullDocumentBeforeChange` of a change stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FullDocumentBeforeChange {
    /// The field is omitted.
    #[default]
    Off,
    /// The pre-image, or null when missing.
    WhenAvailable,
    /// The pre-image; the stream fails when it is missing.
    Required,
}

impl FullDocumentBeforeChange {
    /// Parses MongoDB's option string.
    ///
    /// # Errors
    /// [`Error::BadValue`].
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "off" => Self::Off,
            "whenAvailable" => Self::WhenAvailable,
            "required" => Self::Required,
            other => {
                return Err(Error::bad(format!(
                    "unknown fullDocumentBeforeChange mode `{other}`"
                )));
            }
        })
    }
}

/// Options of [`super::History::watch`]. At most one of `resume_after`, `start_after` and
/// `start_at_operation_time` may be set; with none, the stream starts after the latest event.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Resume after the event with this token's `_data`.
    pub resume_after: Option<String>,
    /// Like `resume_after`, but also accepts an invalidate event's token.
    pub start_after: Option<String>,
    /// Start at the first event whose cluster time is at or after this.
    pub start_at_operation_time: Option<Timestamp>,
    /// Post-image mode.
    pub full_document: FullDocument,
    /// Pre-image mode.
    pub full_document_before_change: FullDocumentBeforeChange,
    /// MongoDB's `showExpandedEvents`: also `create`, `createIndexes` and `dropIndexes`
    /// events, and every event's `collectionUUID`, a command's `operationDescription` and an
    /// update's `updateDescription.disambiguatedPaths`.
    pub show_expanded_events: bool,
    /// The stream's pipeline, run on each rendered event in order (the invalidate that ends a
    /// stream included): `$match`, `$project`, `$addFields`/`$set`, `$unset`,
    /// `$replaceRoot`/`$replaceWith`, `$redact`, as MongoDB allows in a change stream; an
    /// event's `_id` (its resume token) must come out unchanged (else 280). Any other stage is
    /// refused when the stream opens.
    pub pipeline: Vec<Document>,
}

/// Wakes streams when a commit appends events: a condvar for synchronous waiters and a tokio
/// `watch` channel for async ones. Holds the last committed sequence number.
#[derive(Debug)]
pub(crate) struct Notifier {
    last: Mutex<u64>,
    cv: Condvar,
    tx: tokio::sync::watch::Sender<u64>,
}

impl Notifier {
    pub(crate) fn new(last: u64) -> Self {
        let (tx, _) = tokio::sync::watch::channel(last);
        Self {
            last: Mutex::new(last),
            cv: Condvar::new(),
            tx,
        }
    }

    /// Publishes a new last sequence number.
    pub(crate) fn publish(&self, seq: u64) {
        if let Ok(mut last) = self.last.lock() {
            *last = seq;
        }
        self.cv.notify_all();
        self.tx.send_replace(seq);
    }

    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Blocks until the last sequence number reaches `seq` or `timeout` passes.
    fn wait_for(&self, seq: u64, timeout: Duration) -> Result<()> {
        let guard = self.last.lock()?;
        let _unused = self
            .cv
            .wait_timeout_while(guard, timeout, |last| *last < seq)?;
        Ok(())
    }
}

/// A resumable stream of change events in MongoDB's shape.
///
/// Reads are short, synchronous oplog range scans (memtable or block-cache hits in the common
/// case); waiting is asynchronous ([`ChangeStream::next`]) or blocking with a timeout
/// ([`ChangeStream::next_batch`]).
#[derive(Debug)]
pub struct ChangeStream {
    inner: Arc<Inner>,
    scope: WatchScope,
    options: WatchOptions,
    /// `options.pipeline`, compiled.
    pipeline: EventPipeline,
    /// Next oplog sequence to read.
    next_seq: u64,
    /// Events read but not yet handed out, with their tokens.
    pending: VecDeque<Queued>,
    /// The resume point of the last event handed out (or the start point), as
    /// `(sequence, invalidate)`: its token, encoded only when asked for.
    last: (u64, bool),
    /// The last oplog entry scanned, and whether it ended the stream (an invalidate): the
    /// high-water mark's token, encoded only when asked for.
    scanned: (u64, bool),
    /// Set after an invalidate event was queued.
    invalidated: bool,
    /// Set when reading failed on an event (its rendering or the stream's pipeline): the stream
    /// ends there, as MongoDB closes a cursor whose `getMore` failed, and its resume token
    /// stays at the last event before the failure.
    failed: bool,
    rx: tokio::sync::watch::Receiver<u64>,
}

/// A batch from [`ChangeStream::next_batch`] with MongoDB's post-batch resume token.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    /// The events, oldest first.
    pub events: Vec<Document>,
    /// `{_data}` of the high-water mark: resuming from it skips everything this stream has
    /// scanned, even when the batch is empty.
    pub post_batch_resume_token: Document,
}

/// Refuses a resume point after the last event: resuming there would skip every event up to
/// it (a browser reconnecting with the `Last-Event-ID` of a store that has since been reset).
/// A token for an entry committed after `last_seq` was read (a concurrent commit updates the
/// bounds only after its batch is stored, and a stream may already have handed that entry's
/// token out) is still accepted: the oplog is asked before refusing.
fn check_not_ahead(inner: &Inner, seq: u64, last_seq: u64) -> Result<()> {
    if seq <= last_seq {
        return Ok(());
    }
    let stored = inner.read_oplog(seq, 1, |_| Ok(()))?;
    if stored.first().is_some_and(|(found, ())| *found == seq) {
        return Ok(());
    }
    Err(Error::ResumeTokenAhead {
        seq,
        last: last_seq,
    })
}

/// `{_data: token}`.
pub(crate) fn token_document(data: String) -> Document {
    let mut d = Document::new();
    d.insert("_data", data);
    d
}

impl ChangeStream {
    /// Opens a stream (called by `History::watch`).
    pub(crate) fn open(
        inner: Arc<Inner>,
        scope: WatchScope,
        options: WatchOptions,
    ) -> Result<Self> {
        let starts = [
            options.resume_after.is_some(),
            options.start_after.is_some(),
            options.start_at_operation_time.is_some(),
        ];
        if starts.iter().filter(|s| **s).count() > 1 {
            return Err(Error::bad(
                "Only one type of resume option is allowed, but multiple were found.",
            ));
        }
        let now_ms = inner.now_ms();
        // Folding the stages' constant expressions evaluates them: under the store's default
        // time limit for reads, as each event's run of the pipeline is.
        let pipeline = inner.limited(None, || EventPipeline::parse(&options.pipeline, now_ms))?;
        let rx = inner.notifier.subscribe();
        let (trimmed_through, last_seq) = inner.oplog_bounds()?;
        // The event a token names, when the stream resumes after an event (not after an
        // invalidate): it may be the one that ended this stream's scope.
        let mut resumed_event = None;
        let next_seq = if let Some(t) = &options.resume_after {
            let (seq, invalidate) = decode_resume_token(t)?;
            if invalidate {
                return Err(Error::InvalidResumeToken(
                    "cannot resume a stream after an invalidate event; use startAfter".into(),
                ));
            }
            check_not_ahead(&inner, seq, last_seq)?;
            resumed_event = Some(seq);
            seq.saturating_add(1)
        } else if let Some(t) = &options.start_after {
            let (seq, invalidate) = decode_resume_token(t)?;
            check_not_ahead(&inner, seq, last_seq)?;
            if !invalidate {
                resumed_event = Some(seq);
            }
            seq.saturating_add(1)
        } else if let Some(ts) = options.start_at_operation_time {
            inner.first_seq_at_or_after(ts)?
        } else {
            last_seq.saturating_add(1)
        };
        if next_seq <= trimmed_through {
            return Err(Error::ChangeStreamHistoryLost);
        }
        let mut stream = Self {
            inner,
            scope,
            options,
            pipeline,
            next_seq,
            pending: VecDeque::new(),
            last: (next_seq.saturating_sub(1), false),
            scanned: (next_seq.saturating_sub(1), false),
            invalidated: false,
            failed: false,
            rx,
        };
        if let Some(seq) = resumed_event {
            stream.queue_invalidate_after(seq)?;
        }
        Ok(stream)
    }

    /// For a stream resumed after the event at `seq`: when that event ended this stream's
    /// scope (a drop, rename or dropDatabase), queues the invalidate that followed it, which
    /// ends the stream. The invalidate's token shares the event's sequence, so reading on from
    /// `seq + 1` alone would skip it; MongoDB delivers it next. An event retention has removed
    /// (`seq` = the trim point) cannot be read and is taken as not ending the stream.
    fn queue_invalidate_after(&mut self, seq: u64) -> Result<()> {
        let read = self.inner.read_oplog(seq, 1, |bytes| {
            // Only these can end a stream: any other entry (an insert's document may be
            // large) is not decoded.
            let op = bson::RawDocument::from_bytes(bytes)
                .ok()
                .and_then(|d| d.get_str("op").ok());
            match op {
                Some("drop" | "rename" | "dropDatabase") => decode_document(bytes).map(Some),
                _ => Ok(None),
            }
        })?;
        let Some((found, Some(entry))) = read.into_iter().next() else {
            return Ok(());
        };
        if found != seq || !self.in_scope(&entry) || !self.invalidates(&entry) {
            return Ok(());
        }
        self.end_with_invalidate(seq, invalidate_event(seq, &entry))
    }

    /// The resume token to persist: the last event handed out, or the high-water mark when
    /// nothing is pending.
    #[must_use]
    pub fn resume_token(&self) -> Document {
        let (seq, invalidate) = if self.pending.is_empty() {
            self.scanned
        } else {
            self.last
        };
        token_document(encode_resume_token(seq, invalidate))
    }

    /// Whether the stream ended — with an invalidate event (delivered or dropped by its
    /// pipeline), or by a read that failed on an event — and has nothing left.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        (self.invalidated || self.failed) && self.pending.is_empty()
    }

    /// Reads up to [`OPLOG_READ_BATCH_MAX`] oplog entries into `pending`; `true` when it read
    /// that many, so more may be committed already.
    fn fill(&mut self) -> Result<bool> {
        if self.invalidated || self.failed {
            return Ok(false);
        }
        let entries = self
            .inner
            .read_retained_oplog(self.next_seq, decode_document)?;
        let full = entries.len() >= OPLOG_READ_BATCH_MAX;
        for (seq, entry) in entries {
            if !self.in_scope(&entry) {
                self.next_seq = seq.saturating_add(1);
                self.scanned = (seq, false);
                continue;
            }
            let invalidate = self
                .invalidates(&entry)
                .then(|| invalidate_event(seq, &entry));
            // A failure on the event ends the stream before it (a history-lost read above
            // does not: it repeats on every read).
            let event = self
                .render(seq, entry)
                .and_then(|event| self.through_pipeline(event))
                .inspect_err(|_| self.failed = true)?;
            // Past this entry only once its event is through.
            self.next_seq = seq.saturating_add(1);
            self.scanned = (seq, false);
            if let Some(event) = event {
                self.pending.push_back(Queued {
                    event,
                    token: (seq, false),
                });
            }
            if let Some(invalidate) = invalidate {
                self.end_with_invalidate(seq, invalidate)?;
                break;
            }
        }
        Ok(full && !self.invalidated)
    }

    /// `event` through the stream's pipeline, under the store's default time limit for reads:
    /// `None` when a `$match` drops it.
    fn through_pipeline(&self, event: Document) -> Result<Option<Document>> {
        if self.pipeline.is_empty() {
            return Ok(Some(event));
        }
        self.inner.limited(None, || self.pipeline.apply(event))
    }

    /// Queues the invalidate event at `seq` (unless the pipeline drops it) and ends the
    /// stream there: its resume token is the invalidate's either way, as in MongoDB, where a
    /// `$match` that filters the invalidate out still closes the stream.
    fn end_with_invalidate(&mut self, seq: u64, invalidate: Document) -> Result<()> {
        // Ended either way: a failure in the pipeline must not let the stream read on past
        // its scope.
        self.invalidated = true;
        if let Some(event) = self.through_pipeline(invalidate)? {
            self.pending.push_back(Queued {
                event,
                token: (seq, true),
            });
        }
        self.scanned = (seq, true);
        Ok(())
    }

    /// Whether the entry is an event of this stream: in its scope, and not a command only
    /// `showExpandedEvents` shows.
    fn in_scope(&self, entry: &Document) -> bool {
        let db = entry.get_str("db").unwrap_or_default();
        let coll = entry.get_str("coll").unwrap_or_default();
        let op = entry.get_str("op").unwrap_or_default();
        if !self.options.show_expanded_events && is_expanded_only(op) {
            return false;
        }
        // A rename's target: a rename onto the watched name (`$out` replacing it, or a rename
        // to a collection the stream was opened on before it existed) is its event too, as
        // MongoDB matches `o.to`; so is a rename into the watched database from another.
        let to = (op == "rename")
            .then(|| entry.get_document("to").ok())
            .flatten();
        let to_db = to.and_then(|t| t.get_str("db").ok());
        let to_coll = to.and_then(|t| t.get_str("coll").ok());
        match &self.scope {
            WatchScope::All => true,
            WatchScope::Database(d) => d == db || to_db == Some(d.as_str()),
            WatchScope::Collection { db: d, coll: c } => {
                let renamed_onto = to_db == Some(d.as_str()) && to_coll == Some(c.as_str());
                renamed_onto || (d == db && (c == coll || op == "dropDatabase"))
            }
        }
    }

    fn invalidates(&self, entry: &Document) -> bool {
        let op = entry.get_str("op").unwrap_or_default();
        match &self.scope {
            WatchScope::All => false,
            WatchScope::Database(_) => op == "dropDatabase",
            WatchScope::Collection { .. } => matches!(op, "drop" | "rename" | "dropDatabase"),
        }
    }

    /// Turns a stored entry into a MongoDB change event under this stream's options, with
    /// MongoDB's field order: `[to] _id operationType clusterTime [collectionUUID] wallTime
    /// [fullDocument] ns [documentKey] [operationDescription] [updateDescription]
    /// [fullDocumentBeforeChange]`, an update's looked-up or post-image `fullDocument` last.
    /// The entry's values move into the event (a post-image is not copied).
    ///
    /// `tail::StoredChange::field` reads the same fields from an entry's bytes for a stream of
    /// every namespace under `updateLookup` without pre-images: a change here goes there too.
    fn render(&self, seq: u64, mut entry: Document) -> Result<Document> {
        let op = match entry.remove("op") {
            Some(Bson::String(op)) => op,
            _ => String::new(),
        };
        let op = op.as_str();
        let expanded = self.options.show_expanded_events;
        let mut ev = Document::new();
        // The rename's target predates `operationDescription`; MongoDB keeps it first.
        let to = entry.remove("to");
        if let Some(to) = &to {
            ev.insert("to", to.clone());
        }
        ev.insert("_id", token_document(encode_resume_token(seq, false)));
        ev.insert("operationType", op);
        if let Some(ts) = entry.remove("ts") {
            ev.insert("clusterTime", ts);
        }
        match entry.remove("ui") {
            Some(ui) if expanded => {
                ev.insert("collectionUUID", ui);
            }
            _ => {}
        }
        if let Some(w) = entry.remove("wall") {
            ev.insert("wallTime", w);
        }
        let mut post = match entry.remove("post") {
            Some(Bson::Document(post)) => Some(post),
            _ => None,
        };
        if matches!(op, "insert" | "replace") {
            put_full_document(&mut ev, post.take());
        }
        let mut ns = Document::new();
        ns.insert("db", entry.get_str("db").unwrap_or_default());
        if op != "dropDatabase" {
            ns.insert("coll", entry.get_str("coll").unwrap_or_default());
        }
        ev.insert("ns", ns);
        if let Some(key) = entry.remove("key") {
            ev.insert("documentKey", key);
        }
        if expanded && let Some(desc) = operation_description(op, &mut entry, to) {
            ev.insert("operationDescription", desc);
        }
        if let Some(Bson::Document(mut u)) = entry.remove("upd") {
            if expanded {
                let paths = match entry.remove("amb") {
                    Some(Bson::Document(paths)) => paths,
                    _ => Document::new(),
                };
                u.insert("disambiguatedPaths", paths);
            }
            ev.insert("updateDescription", u);
        }
        if matches!(op, "update" | "replace" | "delete") {
            let pre = match entry.remove("pre") {
                Some(Bson::Document(pre)) => Some(pre),
                _ => None,
            };
            match self.options.full_document_before_change {
                FullDocumentBeforeChange::Off => {}
                FullDocumentBeforeChange::WhenAvailable => {
                    ev.insert("fullDocumentBeforeChange", pre.map_or(Bson::Null, Bson::Document));
                }
                FullDocumentBeforeChange::Required => match pre {
                    Some(p) => {
                        ev.insert("fullDocumentBeforeChange", p);
                    }
                    None => return Err(Error::NoMatchingDocument("Change stream was configured to require a pre-image for all update, delete and replace events, but the pre-image was not found".into())),
                },
            }
        }
        if op == "update" {
            match self.options.full_document {
                FullDocument::Default => {}
                FullDocument::UpdateLookup => {
                    let id = ev.get_document("documentKey").ok().and_then(|k| k.get("_id"));
                    let current = match id {
                        Some(id) => self.inner.lookup(
                            entry.get_str("db").unwrap_or_default(),
                            entry.get_str("coll").unwrap_or_default(),
                            id,
                        )?,
                        None => None,
                    };
                    put_full_document(&mut ev, current);
                }
                FullDocument::WhenAvailable => put_full_document(&mut ev, post),
                FullDocument::Required => match post {
                    Some(p) => put_full_document(&mut ev, Some(p)),
                    None => return Err(Error::NoMatchingDocument("Change stream was configured to require a post-image for all update events, but the post-image was not found".into())),
                },
            }
        }
        Ok(ev)
    }

    /// Returns what is available now, without waiting (up to `max` events).
    ///
    /// # Errors
    /// [`Error::ChangeStreamHistoryLost`] when the stream fell behind retention; storage errors.
    pub fn try_next_batch(&mut self, max: usize) -> Result<ChangeBatch> {
        if self.pending.is_empty() {
            self.fill()?;
        }
        self.take(max)
    }

    fn take(&mut self, max: usize) -> Result<ChangeBatch> {
        let n = max.min(self.pending.len());
        let last = n
            .checked_sub(1)
            .and_then(|i| self.pending.get(i))
            .map(|e| e.token);
        let events = self.pending.drain(..n).map(|q| q.event).collect();
        if let Some(last) = last {
            self.last = last;
        }
        Ok(ChangeBatch {
            events,
            post_batch_resume_token: self.resume_token(),
        })
    }

    /// Reads what is committed now without waiting, for a caller that reads on a blocking
    /// thread (`spawn_blocking`) and waits on the runtime ([`ChangeStream::committed`]): up to
    /// `max` events, and whether more committed entries may wait unread (a whole read of
    /// entries out of scope came back: read again before waiting, as no commit may come to
    /// signal them). Marks the commits seen so far, so [`ChangeStream::committed`] wakes only
    /// for a later one.
    ///
    /// # Errors
    /// As [`ChangeStream::try_next_batch`].
    pub fn read_available(&mut self, max: usize) -> Result<(ChangeBatch, bool)> {
        self.rx.borrow_and_update();
        let more = if self.pending.is_empty() {
            self.fill()?
        } else {
            false
        };
        Ok((self.take(max)?, more))
    }

    /// Waits asynchronously for a commit after the last [`ChangeStream::read_available`];
    /// `false` when the store has closed. Cancel-safe.
    pub async fn committed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// Blocks until at least one event is available or `timeout` passes (an empty batch then
    /// carries the post-batch resume token). Meant for `spawn_blocking` or plain threads.
    ///
    /// # Errors
    /// As [`ChangeStream::try_next_batch`].
    pub fn next_batch(&mut self, max: usize, timeout: Duration) -> Result<ChangeBatch> {
        let batch = self.try_next_batch(max)?;
        if !batch.events.is_empty() || self.is_closed() {
            return Ok(batch);
        }
        self.inner.notifier.wait_for(self.next_seq, timeout)?;
        self.try_next_batch(max)
    }

    /// Waits asynchronously for the next event; `None` after the invalidate event was returned
    /// or when the store is closed.
    ///
    /// Cancel-safe: dropping the future loses no event.
    ///
    /// # Errors
    /// As [`ChangeStream::try_next_batch`].
    pub async fn next(&mut self) -> Result<Option<Document>> {
        loop {
            if let Some(queued) = self.pending.pop_front() {
                self.last = queued.token;
                return Ok(Some(queued.event));
            }
            if self.invalidated || self.failed {
                return Ok(None);
            }
            self.rx.borrow_and_update();
            let more = self.fill()?;
            if !self.pending.is_empty() {
                continue;
            }
            if more {
                // A whole read of entries out of scope (or filtered out): the next ones are
                // committed already, and no commit may come to wake the stream for them. Read
                // on, letting the runtime's other tasks run between reads.
                tokio::task::yield_now().await;
                continue;
            }
            if self.rx.changed().await.is_err() {
                return Ok(None);
            }
        }
    }
}

/// An event read but not yet handed out.
#[derive(Debug)]
struct Queued {
    event: Document,
    /// The event's resume point, `(sequence, invalidate)`: the token in its `_id`.
    token: (u64, bool),
}

/// Whether entries of `op` are events only for a stream opened with `showExpandedEvents`.
pub(crate) fn is_expanded_only(op: &str) -> bool {
    matches!(op, "create" | "createIndexes" | "dropIndexes")
}

/// The `operationDescription` of a `showExpandedEvents` event: a command's stored
/// description; for a rename its target, and the UUID of the collection it replaced.
fn operation_description(op: &str, entry: &mut Document, to: Option<Bson>) -> Option<Document> {
    match op {
        "create" | "createIndexes" | "dropIndexes" => match entry.remove("desc") {
            Some(Bson::Document(desc)) => Some(desc),
            _ => None,
        },
        "rename" => {
            let mut desc = Document::new();
            if let Some(to) = to {
                desc.insert("to", to);
            }
            if let Some(target) = entry.remove("dropTarget") {
                desc.insert("dropTarget", target);
            }
            Some(desc)
        }
        _ => None,
    }
}

/// Puts `post` in `ev` as its `fullDocument` (null when missing).
fn put_full_document(ev: &mut Document, post: Option<Document>) {
    ev.insert("fullDocument", post.map_or(Bson::Null, Bson::Document));
}

/// The `invalidate` event that follows a drop, rename or dropDatabase.
fn invalidate_event(seq: u64, entry: &Document) -> Document {
    let mut ev = Document::new();
    ev.insert("_id", token_document(encode_resume_token(seq, true)));
    ev.insert("operationType", "invalidate");
    if let Some(ts) = entry.get("ts") {
        ev.insert("clusterTime", ts.clone());
    }
    if let Some(w) = entry.get("wall") {
        ev.insert("wallTime", w.clone());
    }
    ev
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::doc;

    use super::{WatchOptions, WatchScope};
    use crate::history::History;

    /// The resume token is the last handed-out event's `_id` while events are pending, the
    /// high-water mark once none are, and the invalidate event's after a drop — for batches
    /// and for single events alike.
    #[tokio::test]
    async fn the_resume_token_follows_the_events_handed_out() {
        let (_dir, h) = History::open_temporary();
        let scope = || WatchScope::Collection {
            db: "shop".into(),
            coll: "orders".into(),
        };
        let mut batches = h.watch(scope(), WatchOptions::default()).unwrap();
        let mut singles = h.watch(scope(), WatchOptions::default()).unwrap();
        let start = batches.resume_token();
        assert_eq!(singles.resume_token(), start);
        for n in 0..3 {
            h.insert_one("shop", "orders", doc! {"n": n}).unwrap();
        }
        // Another collection's write moves the high-water mark past the last event.
        h.insert_one("shop", "other", doc! {"n": 9}).unwrap();

        let first = batches.try_next_batch(1).unwrap();
        let id = |e: &bson::Document| e.get_document("_id").unwrap().clone();
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.post_batch_resume_token, id(&first.events[0]));
        let rest = batches.try_next_batch(10).unwrap();
        assert_eq!(rest.events.len(), 2);
        let high_water = rest.post_batch_resume_token;
        assert_ne!(
            high_water,
            id(&rest.events[1]),
            "the other collection's entry"
        );
        assert_ne!(high_water, start);

        let one = singles.next().await.unwrap().unwrap();
        assert_eq!(singles.resume_token(), id(&one));
        let two = singles.next().await.unwrap().unwrap();
        assert_eq!(singles.resume_token(), id(&two));
        let three = singles.next().await.unwrap().unwrap();
        assert_eq!(singles.resume_token(), high_water);
        assert_eq!(id(&three), id(&rest.events[1]));

        h.drop_collection("shop", "orders").unwrap();
        let ended = batches.try_next_batch(10).unwrap();
        let kinds: Vec<&str> = ended
            .events
            .iter()
            .map(|e| e.get_str("operationType").unwrap())
            .collect();
        assert_eq!(kinds, ["drop", "invalidate"]);
        assert_eq!(ended.post_batch_resume_token, id(&ended.events[1]));
        assert!(batches.is_closed());
    }
}
