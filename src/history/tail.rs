//! [`OplogTail`]: the oplog as stored, for in-process readers that route on a few fields of each
//! change event instead of building the whole event (the watchers).
//!
//! A [`StoredChange`] is one oplog entry's checked bytes. [`StoredChange::field`] gives a
//! top-level field of the change event that a whole-deployment [`ChangeStream`] opened with
//! `fullDocument: updateLookup` (and no pre-images) hands out for that entry, read from those
//! bytes; [`StoredChange::full_document`] gives its `fullDocument`, the stored post-image or the
//! current document of an update, still raw. Nothing is decoded that the reader does not ask
//! for.
//!
//! [`ChangeStream`]: super::ChangeStream

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};

use super::document::{checked_entry, raw_value};
use super::error::{Error, Result};
use super::feed::is_expanded_only;
use super::keys::encode_resume_token;
use super::{History, Inner, OPLOG_READ_BATCH_MAX};

/// Reads the oplog in order from where it was opened and wakes on commit, like a
/// [`ChangeStream`](super::ChangeStream) of every namespace, but hands out entries as stored.
#[derive(Debug)]
pub(crate) struct OplogTail {
    inner: Arc<Inner>,
    /// Next oplog sequence to read.
    next_seq: u64,
    /// Entries read but not yet handed out.
    pending: VecDeque<StoredChange>,
    rx: tokio::sync::watch::Receiver<u64>,
}

impl OplogTail {
    /// Opens at the latest entry: the first one handed out is the next committed.
    pub(crate) fn open(inner: Arc<Inner>) -> Result<Self> {
        let rx = inner.notifier.subscribe();
        let (_, last_seq) = inner.oplog_bounds()?;
        Ok(Self {
            inner,
            next_seq: last_seq.saturating_add(1),
            pending: VecDeque::new(),
            rx,
        })
    }

    /// Waits asynchronously for the next entry; `None` when the store is closed. Cancel-safe:
    /// dropping the future loses no entry.
    ///
    /// # Errors
    /// [`Error::ChangeStreamHistoryLost`] when the tail fell behind oplog retention;
    /// [`Error::Corrupt`] for an entry that does not decode; storage errors.
    pub(crate) async fn next(&mut self) -> Result<Option<StoredChange>> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Ok(Some(change));
            }
            // Marked seen before reading, so a commit after the read still wakes the wait.
            self.rx.borrow_and_update();
            if self.fill()? {
                // A whole read of entries this tail does not hand out: the next ones are
                // committed already, and no commit may come to wake it for them.
                tokio::task::yield_now().await;
                continue;
            }
            if !self.pending.is_empty() {
                continue;
            }
            if self.rx.changed().await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Reads up to [`OPLOG_READ_BATCH_MAX`] entries into `pending`; past retention,
    /// [`Error::ChangeStreamHistoryLost`]. `true` when it read that many and handed none out
    /// (all were events only `showExpandedEvents` shows).
    fn fill(&mut self) -> Result<bool> {
        let entries = self
            .inner
            .read_retained_oplog(self.next_seq, checked_entry)?;
        let full = entries.len() >= OPLOG_READ_BATCH_MAX;
        let before = self.pending.len();
        for (seq, entry) in entries {
            self.next_seq = seq.saturating_add(1);
            // A stream of every namespace without `showExpandedEvents` does not show these.
            if is_expanded_only(entry.get_str("op").unwrap_or_default()) {
                continue;
            }
            self.pending.push_back(StoredChange { seq, entry });
        }
        Ok(full && self.pending.len() == before)
    }
}

/// One oplog entry as stored, every element checked (see the module docs).
#[derive(Debug)]
pub(crate) struct StoredChange {
    seq: u64,
    entry: RawDocumentBuf,
}

/// A top-level field of a change event, as [`StoredChange::field`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EventField<'a> {
    /// A value stored in the entry.
    Stored(RawBsonRef<'a>),
    /// `operationType`.
    OperationType(&'a str),
    /// `_id`: `{_data: token}`.
    ResumeToken(String),
    /// `ns`: `{db, coll}`, without `coll` for `dropDatabase`.
    Namespace {
        /// The database.
        db: &'a str,
        /// The collection.
        coll: Option<&'a str>,
    },
}

impl StoredChange {
    /// The entry's oplog sequence.
    #[must_use]
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    fn stored(&self, key: &str) -> Option<RawBsonRef<'_>> {
        // The entry was checked when read: a lookup meets no malformed element.
        self.entry.get(key).ok().flatten()
    }

    fn stored_str(&self, key: &str) -> &str {
        match self.stored(key) {
            Some(RawBsonRef::String(s)) => s,
            _ => "",
        }
    }

    /// `operationType`.
    #[must_use]
    pub(crate) fn operation_type(&self) -> &str {
        self.stored_str("op")
    }

    /// The change event's top-level field `name`, when the event has it; `fullDocument` is
    /// [`StoredChange::full_document`]'s and `None` here.
    #[must_use]
    pub(crate) fn field(&self, name: &str) -> Option<EventField<'_>> {
        // The event's fields and the entry's keys they come from: `feed::ChangeStream::render`
        // under `fullDocument: updateLookup` and no pre-images.
        let stored = match name {
            "_id" => {
                return Some(EventField::ResumeToken(encode_resume_token(
                    self.seq, false,
                )));
            }
            "operationType" => return Some(EventField::OperationType(self.operation_type())),
            "ns" => {
                let db = self.stored_str("db");
                let coll =
                    (self.operation_type() != "dropDatabase").then(|| self.stored_str("coll"));
                return Some(EventField::Namespace { db, coll });
            }
            "clusterTime" => "ts",
            "wallTime" => "wall",
            "to" => "to",
            "documentKey" => "key",
            "updateDescription" => "upd",
            _ => return None,
        };
        self.stored(stored).map(EventField::Stored)
    }

    /// The change event's `fullDocument`: `None` when the event has none (deletes, drops,
    /// renames), `Some(None)` when it is null (an update whose document is gone), else the
    /// document raw — the stored post-image of an insert or replace, the current document of
    /// an update, read from `history`.
    ///
    /// # Errors
    /// Storage errors, and [`Error::Corrupt`], of reading the current document.
    pub(crate) fn full_document(
        &self,
        history: &History,
    ) -> Result<Option<Option<Cow<'_, RawDocument>>>> {
        match self.operation_type() {
            "insert" | "replace" => Ok(Some(match self.stored("post") {
                Some(RawBsonRef::Document(post)) => Some(Cow::Borrowed(post)),
                _ => None,
            })),
            "update" => {
                let id = match self.stored("key") {
                    Some(RawBsonRef::Document(key)) => key.get("_id").ok().flatten(),
                    _ => None,
                };
                let Some(id) = id else {
                    return Ok(Some(None));
                };
                let id = raw_value(id).map_err(|e| Error::Corrupt {
                    what: "oplog entry",
                    reason: e.to_string(),
                })?;
                let current = history.inner.lookup_raw(
                    self.stored_str("db"),
                    self.stored_str("coll"),
                    &id,
                )?;
                Ok(Some(current.map(Cow::Owned)))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

    use bson::doc;

    use crate::history::{History, IndexModel, OPLOG_READ_BATCH_MAX};

    /// More than a read's worth of entries only `showExpandedEvents` shows, then an insert:
    /// the tail hands out the insert without waiting for another commit.
    #[tokio::test]
    async fn a_long_run_of_command_entries_is_read_past() {
        let (_dir, h) = History::open_temporary();
        h.insert_one("db", "c", doc! {"_id": 0}).unwrap();
        let mut tail = h.tail().unwrap();
        let model = IndexModel {
            keys: vec![("k".into(), 1)],
            name: None,
            unique: false,
        };
        // A create and a drop of the index: two entries a turn.
        for _ in 0..OPLOG_READ_BATCH_MAX / 2 + 1 {
            h.create_index("db", "c", &model).unwrap();
            h.drop_index("db", "c", "k_1").unwrap();
        }
        h.insert_one("db", "c", doc! {"_id": 1}).unwrap();
        let change = tokio::time::timeout(std::time::Duration::from_secs(10), tail.next())
            .await
            .expect("the insert without another commit")
            .unwrap()
            .unwrap();
        assert_eq!(change.operation_type(), "insert");
        assert_eq!(change.seq(), h.oplog_range().unwrap().1);
    }
}
