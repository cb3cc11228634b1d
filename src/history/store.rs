//! The storage layer: the only file that imports fjall.
//!
//! One fjall database holds five keyspaces with fixed names (`docs`, `index`, `oplog`, `catalog`,
//! `meta`), so database and collection names never become keyspace names. Writes go through
//! [`WriteSet`], committed as one atomic fjall batch; every key is checked against
//! [`super::KEY_BYTES_MAX`] before fjall sees it, because fjall panics on out-of-range keys.
//! Range bounds and prefixes longer than that (built from filter values) are cut to it in a way
//! that selects the same stored keys ([`start_bound`], [`end_bound`]).
//! A fatal storage error (fjall `Poisoned`, or any failed commit) latches [`Store::is_poisoned`]
//! and every later write is refused. Under `fsync = "never"` a [`JournalWriteback`] thread
//! writes the journal back to disk in the background.

use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode};
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::error::{Error, Result};
use super::keys::check_key;
use super::{Durability, KEY_BYTES_MAX};
use crate::shutdown::FaultLatch;

/// Which keyspace a key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    /// Documents by collection id and `_id`.
    Docs,
    /// Secondary index entries.
    Index,
    /// The change feed.
    Oplog,
    /// Collection records and store state.
    Catalog,
    /// Opaque metadata written by callers of `History::commit` (consumer offsets).
    Meta,
}

/// A value staged in a [`WriteSet`]: where its bytes sit in the set's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Staged {
    start: usize,
    end: usize,
}

impl Staged {
    /// The value's byte range in the write set's buffer.
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// One queued operation: byte ranges into [`WriteSet::bytes`].
#[derive(Debug)]
struct QueuedOp {
    space: Space,
    key: Staged,
    /// `Some` = put, `None` = remove.
    value: Option<Staged>,
}

/// A set of puts and removes applied atomically by [`Store::commit`].
///
/// Every key and value is appended to one buffer, so a batch of N documents costs a few
/// growing allocations instead of several per document, and a value can be encoded in place
/// (documents and change events) and read back while the batch is still open. fjall copies
/// each key and value into its own buffers on commit either way. [`WriteSet::clear`] keeps the
/// buffer's capacity for the next batch.
#[derive(Debug, Default)]
pub(crate) struct WriteSet {
    /// Every staged key and value, back to back.
    bytes: Vec<u8>,
    /// Applied in order.
    ops: Vec<QueuedOp>,
}

impl WriteSet {
    /// Appends `bytes` to the buffer without queueing anything.
    fn append(&mut self, bytes: &[u8]) -> Staged {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        Staged {
            start,
            end: self.bytes.len(),
        }
    }

    /// Encodes a value at the end of the buffer with `encode`, which must only append; nothing
    /// is queued yet (see [`WriteSet::put_staged`]). On error the buffer is left as it was.
    ///
    /// # Errors
    /// What `encode` returns.
    pub(crate) fn encode_value(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Staged> {
        let start = self.bytes.len();
        match encode(&mut self.bytes) {
            Ok(()) if self.bytes.len() >= start => Ok(Staged {
                start,
                end: self.bytes.len(),
            }),
            Ok(()) => Err(Error::bad("an encoder shrank the write buffer")),
            Err(e) => {
                self.bytes.truncate(start);
                Err(e)
            }
        }
    }

    /// Drops a value staged by [`WriteSet::encode_value`] that was not queued; it must be the
    /// last thing appended.
    pub(crate) fn discard(&mut self, staged: Staged) {
        debug_assert_eq!(
            staged.end,
            self.bytes.len(),
            "discarding a value that is not last"
        );
        if staged.end == self.bytes.len() {
            self.bytes.truncate(staged.start);
        }
    }

    /// Queues a put.
    pub(crate) fn put(&mut self, space: Space, key: &[u8], value: &[u8]) {
        let key = self.append(key);
        let value = self.append(value);
        self.ops.push(QueuedOp {
            space,
            key,
            value: Some(value),
        });
    }

    /// Queues a put of a value already staged by [`WriteSet::encode_value`].
    pub(crate) fn put_staged(&mut self, space: Space, key: &[u8], value: Staged) {
        let key = self.append(key);
        self.ops.push(QueuedOp {
            space,
            key,
            value: Some(value),
        });
    }

    /// Queues a remove.
    pub(crate) fn remove(&mut self, space: Space, key: &[u8]) {
        let key = self.append(key);
        self.ops.push(QueuedOp {
            space,
            key,
            value: None,
        });
    }

    /// The bytes of a staged value.
    pub(crate) fn value(&self, staged: Staged) -> &[u8] {
        debug_assert!(staged.start <= staged.end && staged.end <= self.bytes.len());
        self.bytes.get(staged.start..staged.end).unwrap_or_default()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Empties the set, keeping its buffers' capacity.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.ops.clear();
    }

    /// Bytes of buffer capacity held.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.bytes.capacity() + self.ops.capacity() * std::mem::size_of::<QueuedOp>()
    }
}

/// The fjall database and its keyspaces.
pub(crate) struct Store {
    /// Declared first so it stops before the database closes.
    writeback: Option<JournalWriteback>,
    db: Database,
    docs: Keyspace,
    index: Keyspace,
    oplog: Keyspace,
    catalog: Keyspace,
    meta: Keyspace,
    /// Latched on the first fatal storage error.
    poisoned: FaultLatch,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("poisoned", &self.poisoned.is_tripped())
            .finish_non_exhaustive()
    }
}

fn storage(context: &'static str) -> impl FnOnce(fjall::Error) -> Error {
    move |e| match e {
        fjall::Error::Poisoned => Error::Poisoned,
        other => Error::Storage {
            context,
            source: Box::new(other),
        },
    }
}

/// How long after a commit [`JournalWriteback`] writes the journal back (the commits of that
/// time go in one sync).
const JOURNAL_WRITEBACK_INTERVAL: Duration = Duration::from_millis(100);

/// Writes the active journal's data to disk [`JOURNAL_WRITEBACK_INTERVAL`] after a commit left
/// it in the OS's buffers, through its own file handle and without fjall's locks.
///
/// Under `fsync = "never"` commits leave the journal in the OS's buffers. fjall syncs the
/// journal itself only at a memtable flush and when it seals a journal past 64 MB, and it does
/// so while holding the journal's writer lock: every commit waits for that sync, which has all
/// the data written since the last one to put on the disk (at 5 000 orders/s, hundreds of
/// milliseconds on this project's virtual disks). Writing the data back as it accumulates leaves
/// those syncs little to do, so no commit waits long. This changes what reaches the disk when,
/// not the policy's promise: an acknowledged write survives a process kill, not a power loss.
/// The thread sleeps until a commit wakes it, so an idle store costs no wake-ups.
///
/// The journal files are `<N>.jnl` in the database's directory (fjall 3's layout, which its
/// recovery reads); the one with the highest `N` is the one written. Should no such file be
/// found the thread does nothing, and the store works as without it.
#[derive(Debug)]
pub(crate) struct JournalWriteback {
    signal: Arc<WritebackSignal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the committers and the writeback thread share.
#[derive(Debug, Default)]
struct WritebackSignal {
    /// A commit left data in the OS's buffers since the thread last took this flag.
    dirty: AtomicBool,
    /// Set when the store closes.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl JournalWriteback {
    fn start(dir: &Path) -> Self {
        let signal = Arc::new(WritebackSignal::default());
        let dir = dir.to_owned();
        let shared = signal.clone();
        let thread = std::thread::Builder::new()
            .name("history-writeback".into())
            .spawn(move || writeback_loop(&dir, &shared))
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot start the journal writeback thread");
            })
            .ok();
        Self { signal, thread }
    }

    /// Notes a commit written to the OS's buffers (one atomic operation unless the thread is
    /// asleep).
    fn committed(&self) {
        if !self.signal.dirty.swap(true, Ordering::AcqRel) {
            let _stop = self
                .signal
                .stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.signal.wake.notify_one();
        }
    }
}

impl Drop for JournalWriteback {
    fn drop(&mut self) {
        *self
            .signal
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn writeback_loop(dir: &Path, signal: &WritebackSignal) {
    let mut open: Option<(PathBuf, File)> = None;
    let mut failed = false;
    loop {
        {
            // Until a commit (the flag is set before the committer takes the lock to notify,
            // so a commit between the check and the wait is not missed), then the interval.
            let stop = signal.stop.lock().unwrap_or_else(PoisonError::into_inner);
            let stop = signal
                .wake
                .wait_while(stop, |stop| !*stop && !signal.dirty.load(Ordering::Acquire))
                .unwrap_or_else(PoisonError::into_inner);
            let (stop, _) = signal
                .wake
                .wait_timeout_while(stop, JOURNAL_WRITEBACK_INTERVAL, |stop| !*stop)
                .unwrap_or_else(PoisonError::into_inner);
            if *stop {
                return;
            }
        }
        // Commits from here on set the flag again; the ones before are in the file already.
        signal.dirty.store(false, Ordering::Release);
        let Some(active) = active_journal(dir) else {
            continue;
        };
        if open.as_ref().is_none_or(|(path, _)| *path != active) {
            open = File::open(&active).ok().map(|file| (active, file));
        }
        if let Some((path, file)) = &open
            && let Err(e) = file.sync_data()
            && !failed
        {
            failed = true;
            tracing::warn!(path = %path.display(), error = %e, "journal writeback failed");
        }
    }
}

/// The journal fjall writes in `dir`: the `<N>.jnl` with the highest `N`.
fn active_journal(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let id: u64 = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jnl")?
                .parse()
                .ok()?;
            Some((id, path))
        })
        .max_by_key(|(id, _)| *id)
        .map(|(_, path)| path)
}

impl Store {
    /// Opens (or creates) the store in `path`.
    ///
    /// # Errors
    /// [`Error::Open`].
    /// With `writeback`, a [`JournalWriteback`] thread runs while the store is open.
    pub(crate) fn open(path: &Path, cache_bytes: u64, writeback: bool) -> Result<Self> {
        let open_err = |e: fjall::Error| Error::Open {
            path: path.to_owned(),
            source: Box::new(e),
        };
        let db = Database::builder(path)
            .cache_size(cache_bytes)
            .open()
            .map_err(open_err)?;
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(open_err)
        };
        // The oplog holds a copy of every written document and is only appended, scanned in
        // order and trimmed from the front: separating its values into blob files keeps
        // compaction from rewriting them. (Options apply when the keyspace is created.)
        let oplog = db
            .keyspace("oplog", || {
                KeyspaceCreateOptions::default()
                    .with_kv_separation(Some(KvSeparationOptions::default()))
            })
            .map_err(open_err)?;
        Ok(Self {
            writeback: writeback.then(|| JournalWriteback::start(path)),
            docs: ks("docs")?,
            index: ks("index")?,
            oplog,
            catalog: ks("catalog")?,
            meta: ks("meta")?,
            db,
            poisoned: FaultLatch::default(),
        })
    }

    fn space(&self, space: Space) -> &Keyspace {
        match space {
            Space::Docs => &self.docs,
            Space::Index => &self.index,
            Space::Oplog => &self.oplog,
            Space::Catalog => &self.catalog,
            Space::Meta => &self.meta,
        }
    }

    /// Whether a fatal storage error has stopped writes.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.is_tripped()
    }

    /// Resolves once a fatal storage error has stopped writes.
    pub(crate) async fn poisoned(&self) {
        self.poisoned.wait().await;
    }

    /// Applies `set` atomically with the given durability.
    ///
    /// # Errors
    /// [`Error::KeyTooLarge`] before anything is written; [`Error::Poisoned`] once a fatal
    /// error happened; [`Error::Storage`] (which also poisons the store).
    pub(crate) fn commit(&self, set: &WriteSet, durability: Durability) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        for op in &set.ops {
            check_key(set.value(op.key))?;
            if let Some(v) = op.value
                && u32::try_from(v.end - v.start).is_err()
            {
                return Err(Error::DocumentTooLarge {
                    len: v.end - v.start,
                    max: super::DOCUMENT_BYTES_MAX,
                });
            }
        }
        if set.is_empty() {
            return Ok(());
        }
        // IMPORTANT: `None` would leave the batch in fjall's in-process journal buffer, lost on
        // a process kill; `Buffer` hands it to the OS before the write is acknowledged.
        let mode = match durability {
            Durability::Buffer => Some(PersistMode::Buffer),
            Durability::SyncAll => Some(PersistMode::SyncAll),
        };
        let mut batch =
            fjall::OwnedWriteBatch::with_capacity(self.db.clone(), set.ops.len()).durability(mode);
        for op in &set.ops {
            let ks = self.space(op.space);
            let key = set.value(op.key);
            match op.value {
                Some(v) => batch.insert(ks, key, set.value(v)),
                None => batch.remove(ks, key),
            }
        }
        batch.commit().map_err(|e| {
            // IMPORTANT: a failed commit may leave the journal in an unknown state; fjall's
            // guidance is to stop and restart, so every later write is refused.
            self.poisoned.trip();
            storage("committing a batch")(e)
        })?;
        if let (Durability::Buffer, Some(writeback)) = (durability, &self.writeback) {
            writeback.committed();
        }
        Ok(())
    }

    /// Makes every acknowledged write durable on disk (fsync).
    ///
    /// # Errors
    /// [`Error::Storage`]; the store is poisoned afterwards.
    pub(crate) fn persist(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll).map_err(|e| {
            self.poisoned.trip();
            storage("persisting the journal")(e)
        })
    }

    /// Reads one value.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub(crate) fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if check_key(key).is_err() {
            return Ok(None);
        }
        Ok(self
            .space(space)
            .get(key)
            .map_err(storage("reading a key"))?
            .map(|v| v.to_vec()))
    }

    /// Whether a key exists (no value is copied).
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub(crate) fn contains_key(&self, space: Space, key: &[u8]) -> Result<bool> {
        if check_key(key).is_err() {
            return Ok(false);
        }
        self.space(space)
            .contains_key(key)
            .map_err(storage("reading a key"))
    }

    /// Reads a key and hands its value to `f` in place (no copy), e.g. to decode a document.
    ///
    /// # Errors
    /// As [`Store::get`], or what `f` returns.
    pub(crate) fn get_with<T>(
        &self,
        space: Space,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        if check_key(key).is_err() {
            return Ok(None);
        }
        self.space(space)
            .get(key)
            .map_err(storage("reading a key"))?
            .map(|v| f(&v))
            .transpose()
    }

    /// Iterates `[start, end)` (or to the end of the keyspace), forwards or backwards.
    pub(crate) fn range(
        &self,
        space: Space,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> RangeIter {
        let start = start_bound(start.as_ref().map(Vec::as_slice)).map(<[u8]>::to_vec);
        let end = end_bound(end.as_ref().map(Vec::as_slice)).map(<[u8]>::to_vec);
        let iter = self.space(space).range::<Vec<u8>, _>((start, end));
        RangeIter {
            inner: if reverse {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            },
        }
    }

    /// Hands the value of every key in `[start, end)` to `f`, in key order (or reversed), in
    /// place (no copy), until `f` returns false.
    ///
    /// # Errors
    /// [`Error::Storage`], or what `f` returns.
    pub(crate) fn range_values_with(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        mut f: impl FnMut(&[u8]) -> Result<bool>,
    ) -> Result<()> {
        let iter = self.space(space).range::<&[u8], _>((
            start_bound(Bound::Included(start)),
            end_bound(Bound::Excluded(end)),
        ));
        let mut visit = |guard: fjall::Guard| -> Result<bool> {
            f(&guard.value().map_err(storage("iterating a range"))?)
        };
        if reverse {
            for guard in iter.rev() {
                if !visit(guard)? {
                    break;
                }
            }
        } else {
            for guard in iter {
                if !visit(guard)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Iterates every key starting with `prefix` (none when it is longer than any stored key).
    pub(crate) fn prefix(&self, space: Space, prefix: &[u8], reverse: bool) -> RangeIter {
        if prefix.len() > KEY_BYTES_MAX {
            return RangeIter {
                inner: Box::new(std::iter::empty()),
            };
        }
        let iter = self.space(space).prefix(prefix);
        RangeIter {
            inner: if reverse {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            },
        }
    }
}

/// A range's start as fjall can take it. Stored keys are at most [`KEY_BYTES_MAX`] bytes, so
/// for a longer bound `s` with first `KEY_BYTES_MAX` bytes `t`, a stored key is at or after `s`
/// exactly when it is after `t` (it cannot equal `s`, and one above `t` that is not `t` differs
/// from it, hence from `s`, at an earlier byte).
fn start_bound(bound: Bound<&[u8]>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) | Bound::Excluded(k) if k.len() > KEY_BYTES_MAX => {
            Bound::Excluded(k.get(..KEY_BYTES_MAX).unwrap_or(k))
        }
        other => other,
    }
}

/// A range's end as fjall can take it: by the same argument as [`start_bound`], a stored key
/// is before (or at) a longer bound `e` exactly when it is at or before `e`'s first
/// [`KEY_BYTES_MAX`] bytes.
fn end_bound(bound: Bound<&[u8]>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) | Bound::Excluded(k) if k.len() > KEY_BYTES_MAX => {
            Bound::Included(k.get(..KEY_BYTES_MAX).unwrap_or(k))
        }
        other => other,
    }
}

/// A key-range iterator yielding owned pairs.
pub(crate) struct RangeIter {
    inner: Box<dyn Iterator<Item = fjall::Guard> + Send>,
}

impl std::fmt::Debug for RangeIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RangeIter")
    }
}

impl Iterator for RangeIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let guard = self.inner.next()?;
        Some(
            guard
                .into_inner()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(storage("iterating a range")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_journal_is_the_highest_numbered_jnl_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(active_journal(dir.path()), None);
        for name in ["2.jnl", "10.jnl", "9.jnl", "11.jnl.tmp", "x.jnl", "lock"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(active_journal(dir.path()), Some(dir.path().join("10.jnl")));
    }

    /// fjall keeps its journal where the writeback looks for it: a store written to has a
    /// `<N>.jnl` in its directory, holding what was committed, and closing the store stops the
    /// thread (the drop returns).
    #[test]
    fn the_writeback_finds_the_journal_fjall_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20, true).unwrap();
        let mut set = WriteSet::default();
        set.put(Space::Meta, b"k", &[7u8; 4096]);
        store.commit(&set, Durability::Buffer).unwrap();
        let journal = active_journal(dir.path()).expect("a journal file");
        assert!(journal.metadata().unwrap().len() >= 4096);
        drop(store);
    }

    #[test]
    fn bounds_up_to_the_key_limit_pass_and_longer_ones_are_cut_to_it() {
        let max = vec![b'k'; KEY_BYTES_MAX];
        let over = vec![b'k'; KEY_BYTES_MAX + 1];
        assert_eq!(
            start_bound(Bound::Included(&max)),
            Bound::Included(&max[..])
        );
        assert_eq!(end_bound(Bound::Excluded(&max)), Bound::Excluded(&max[..]));
        for b in [Bound::Included(&over[..]), Bound::Excluded(&over[..])] {
            assert_eq!(start_bound(b), Bound::Excluded(&max[..]));
            assert_eq!(end_bound(b), Bound::Included(&max[..]));
        }
        assert_eq!(start_bound(Bound::Unbounded), Bound::Unbounded);
    }

    /// Whether `k` lies within `(start, end)`.
    fn within(k: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
        let after_start = match start {
            Bound::Included(s) => k >= s,
            Bound::Excluded(s) => k > s,
            Bound::Unbounded => true,
        };
        let before_end = match end {
            Bound::Included(e) => k <= e,
            Bound::Excluded(e) => k < e,
            Bound::Unbounded => true,
        };
        after_start && before_end
    }

    #[test]
    fn a_cut_bound_selects_the_same_stored_keys() {
        // Keys of at most KEY_BYTES_MAX bytes around a bound one byte longer: comparing with
        // the bound and with its cut form agrees for every one of them.
        let bound = [vec![b'm'; KEY_BYTES_MAX], vec![b'q']].concat();
        let keys = [
            vec![b'm'; KEY_BYTES_MAX],
            vec![b'm'; KEY_BYTES_MAX - 1],
            [vec![b'm'; KEY_BYTES_MAX - 1], vec![b'n']].concat(),
            [vec![b'm'; KEY_BYTES_MAX - 1], vec![b'a']].concat(),
            vec![b'n'],
            vec![b'a'],
        ];
        let (b, none) = (bound.as_slice(), Bound::Unbounded);
        for key in &keys {
            let k = key.as_slice();
            for (start, end) in [
                (Bound::Included(b), none),
                (Bound::Excluded(b), none),
                (none, Bound::Included(b)),
                (none, Bound::Excluded(b)),
            ] {
                assert_eq!(
                    within(k, start, end),
                    within(k, start_bound(start), end_bound(end)),
                    "{} bytes",
                    k.len()
                );
            }
        }
    }
}
