//! [`Partition`]: the append path of one partition — segment files, roll, group commit and
//! retention. Reads live in `reader.rs`; the byte format in `segment.rs`.
//!
//! Locking: `state` (segments, next offset) is held only while a batch is encoded and written
//! with one positional write; fsync happens outside it under `sync`, so appends keep flowing while
//! a sync is in flight and every append waiting on the same sync shares it (group commit). Lock
//! order is `state` then `sync`, never the reverse.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::error::{Error, Result, io_at};
use super::index::{OffsetIndex, TimeIndex};
use super::reader::ReadBuffers;
use super::recovery::{self, Rules, ScanFailure};
use super::recovery_point::{self, Found, RecoveryPoint};
use super::segment::{self, BatchInfo};
use super::{FlushPolicy, Offset, Record, TopicConfig};
use crate::clock::SharedClock;
use crate::shutdown::FaultLatch;

/// File name of a segment's data file: base offset in 20 digits.
pub(crate) fn segment_file_name(base: Offset, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Path of the `.log` file of the segment based at `base` in partition directory `dir`.
pub(crate) fn segment_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(segment_file_name(base, "log"))
}

/// One segment: its data file, indexes and counters.
#[derive(Debug)]
pub(crate) struct Segment {
    /// First offset the segment may hold.
    pub(crate) base: Offset,
    /// The `.log` file.
    pub(crate) path: PathBuf,
    /// Read-write handle; writes and reads are positional so it needs no seek lock.
    pub(crate) file: File,
    /// Bytes written and readable.
    pub(crate) len: AtomicU64,
    /// Offset → position index.
    pub(crate) index: RwLock<OffsetIndex>,
    /// Timestamp → offset index.
    pub(crate) time_index: RwLock<TimeIndex>,
    /// Largest record timestamp, or `i64::MIN` when empty.
    pub(crate) max_timestamp_ms: AtomicI64,
}

impl Segment {
    /// Path of a sibling file with the same base (`index`, `timeindex`).
    fn sibling(&self, ext: &str) -> PathBuf {
        self.path.with_extension(ext)
    }

    /// Records a newly written batch in the indexes when `index_due`, and its timestamp.
    fn note_batch(&self, info: &BatchInfo, position: u64, index_due: bool) -> Result<()> {
        let rel = u32::try_from(info.base_offset - self.base).unwrap_or(u32::MAX);
        let last_rel = u32::try_from(info.last_offset - self.base).unwrap_or(u32::MAX);
        let pos = u32::try_from(position).unwrap_or(u32::MAX);
        let previous_max = self
            .max_timestamp_ms
            .fetch_max(info.max_timestamp_ms, Ordering::AcqRel);
        if index_due {
            self.index.write()?.push(rel, pos);
        }
        if info.max_timestamp_ms > previous_max {
            self.time_index
                .write()?
                .push(info.max_timestamp_ms, last_rel);
        }
        Ok(())
    }

    /// Fsyncs the segment's index files as they are on disk (written unsynced by a roll under
    /// `never`, or by a rebuild at open); a file not written yet is skipped.
    fn sync_index_files(&self) -> Result<()> {
        for ext in ["index", "timeindex"] {
            let path = self.sibling(ext);
            match File::open(&path).and_then(|f| f.sync_all()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&path)(e)),
            }
        }
        Ok(())
    }

    /// Writes both index files (sealed segments only), fsyncing them when `sync`.
    fn write_indexes(&self, sync: bool) -> Result<()> {
        let offset = self.index.read()?.encode();
        let time = self.time_index.read()?.encode();
        for (ext, bytes) in [("index", offset), ("timeindex", time)] {
            let path = self.sibling(ext);
            std::fs::write(&path, &bytes).map_err(io_at(&path))?;
            if sync {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_at(&path))?;
            }
        }
        Ok(())
    }
}

/// Mutable state of a partition, under [`Partition::state`].
#[derive(Debug)]
pub(crate) struct State {
    /// Every segment by base offset; the last is the active one.
    pub(crate) segments: BTreeMap<Offset, Arc<Segment>>,
    /// Offset the next record gets (the log end offset).
    pub(crate) next_offset: Offset,
    /// First offset still stored (the log start offset).
    pub(crate) log_start: Offset,
    /// Monotonic ms when the active segment was created (for `segment.ms`).
    active_created_ms: u64,
    /// Bytes written to the active segment since its last offset-index entry.
    bytes_since_index: u64,
    /// Total bytes of all segments.
    pub(crate) total_bytes: u64,
    /// Reused encode buffer.
    scratch: Vec<u8>,
}

/// Group-commit state, under [`Partition::sync`].
#[derive(Debug)]
struct SyncState {
    /// Every offset below this is on disk.
    synced: Offset,
    /// A thread is running fsync right now.
    in_flight: bool,
    /// Monotonic ms of the last completed fsync.
    last_sync_ms: u64,
}

/// What every partition of a log shares: the fault latch, the read buffers and the flush bell.
#[derive(Debug, Clone)]
pub(crate) struct LogShared {
    /// Set log-wide after a failed fsync.
    pub(crate) poisoned: Arc<FaultLatch>,
    /// Log-wide reused read buffers.
    pub(crate) buffers: Arc<ReadBuffers>,
    /// Rung by appends that leave data for an interval fsync.
    pub(crate) bell: Arc<FlushBell>,
}

/// Wakes the log's background thread when an append leaves data for an `interval_ms(N)` fsync,
/// so the thread sleeps while no partition has any, instead of ticking every N ms.
///
/// The thread calls [`FlushBell::listen`] before it looks at the partitions; an append rings
/// after its data is visible. A ring between the two ends the thread's next wait at once, so no
/// append is missed.
#[derive(Debug, Default)]
pub(crate) struct FlushBell {
    state: Mutex<BellState>,
    cv: Condvar,
}

/// Why [`FlushBell::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// An append rang.
    Rung,
    /// The timeout passed.
    TimedOut,
    /// The log is closing.
    Stopped,
}

#[derive(Debug, Default)]
struct BellState {
    /// The thread wants to hear of the next append.
    listening: bool,
    /// An append rang since [`FlushBell::listen`].
    rung: bool,
    /// The log is closing.
    stopped: bool,
}

impl FlushBell {
    fn lock(&self) -> std::sync::MutexGuard<'_, BellState> {
        // Three flags, each written in one statement: a panic elsewhere cannot leave them torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After an append to an `interval_ms(N)` partition: wakes a listening thread. One short
    /// lock per append, which the thread holds only to flip these flags; an atomic fast path
    /// would need fences against the partition's own locks to stay free of lost rings.
    pub(crate) fn ring(&self) {
        let mut state = self.lock();
        if state.listening {
            state.listening = false;
            state.rung = true;
            self.cv.notify_one();
        }
    }

    /// Starts listening: a ring from now on ends the next [`FlushBell::wait`] that wakes on rings.
    pub(crate) fn listen(&self) {
        let mut state = self.lock();
        state.listening = true;
        state.rung = false;
    }

    /// Stops listening (the thread will look again after a fixed wait anyway).
    pub(crate) fn ignore(&self) {
        self.lock().listening = false;
    }

    /// Waits up to `timeout`, less if the log closes or, with `on_ring`, an append rings.
    pub(crate) fn wait(&self, timeout: Duration, on_ring: bool) -> Woke {
        let state = self.lock();
        let (state, _) = self
            .cv
            .wait_timeout_while(state, timeout, |s| !(s.stopped || (on_ring && s.rung)))
            .unwrap_or_else(PoisonError::into_inner);
        if state.stopped {
            Woke::Stopped
        } else if on_ring && state.rung {
            Woke::Rung
        } else {
            Woke::TimedOut
        }
    }

    /// Ends every wait, now and later.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.cv.notify_all();
    }
}

/// One partition of a topic: an ordered sequence of segments with one writer at a time.
///
/// Obtain one from [`crate::log::Log::partition`]; it is shared (`Arc`) and all methods take
/// `&self`.
#[derive(Debug)]
pub struct Partition {
    /// Owning topic.
    pub(crate) topic: String,
    /// Partition number.
    pub(crate) id: u32,
    /// Directory of the segment files.
    pub(crate) dir: PathBuf,
    /// Retention, roll and durability settings.
    pub(crate) config: TopicConfig,
    /// Time source for timestamps, roll and flush cadence.
    pub(crate) clock: SharedClock,
    /// Segments and offsets.
    pub(crate) state: Mutex<State>,
    /// Group commit.
    sync: Mutex<SyncState>,
    /// Signalled when a sync completes.
    synced_cv: Condvar,
    /// The offset the `recovery-point` file records: every batch below it is on disk. Raised
    /// by a durable roll and by [`Partition::checkpoint`]; lock order `state` then this.
    recovery_point: Mutex<Offset>,
    /// The end offset readers may see; tailing readers wait on it.
    pub(crate) end_tx: watch::Sender<Offset>,
    /// The end offset when the partition was opened, after recovery: every record at or past
    /// it was appended by this process.
    pub(crate) opened_end: Offset,
    /// Set log-wide after a failed fsync; refuses further writes.
    poisoned: Arc<FaultLatch>,
    /// Log-wide reused read buffers.
    pub(crate) buffers: Arc<ReadBuffers>,
    /// Rung after appends under `interval_ms(N)`.
    bell: Arc<FlushBell>,
    /// Set when the topic is deleted ([`Partition::close`]): the partition's directory may
    /// soon belong to a topic re-created under the name, so nothing writes to it any more.
    closed: AtomicBool,
}

/// What one append placed in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Offset of the first record.
    pub(crate) base_offset: Offset,
    /// Timestamp given to records without one.
    pub(crate) timestamp_ms: i64,
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering its segments under the rules its
    /// `recovery-point` file sets (see [`recover_segments`]), then makes everything at or above
    /// the old recovery point durable and records the log end as the new one.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a bad batch below the recovery point, a bad batch the rules do
    /// not let end the log, or a log ending below its recovery point; [`Error::Io`].
    pub(crate) fn open(
        topic: &str,
        id: u32,
        dir: PathBuf,
        config: TopicConfig,
        clock: SharedClock,
        shared: LogShared,
    ) -> Result<Self> {
        let LogShared {
            poisoned,
            buffers,
            bell,
        } = shared;
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log")
                && stem.len() == 20
                && let Ok(base) = stem.parse::<u64>()
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let name = PartitionName { topic, id };
        let recorded = read_recovery_point(&dir, name, !bases.is_empty())?;
        let rules = recorded.map_or(Rules::TORN_TAIL, |rp| Rules {
            recovery_point: rp.offset,
            first_invalid_ends: rp.policy != FlushPolicy::Always,
        });
        let (mut segments, mut next_offset) = recover_segments(&dir, &bases, rules, name)?;
        if next_offset < rules.recovery_point {
            let (segment, position) = segments.values().next_back().map_or_else(
                || (dir.clone(), 0),
                |s| (s.path.clone(), s.len.load(Ordering::Acquire)),
            );
            return Err(Error::Corrupt {
                segment,
                position,
                reason: format!(
                    "the log ends at offset {next_offset}, below its recovery point {}: records that were on disk are missing",
                    rules.recovery_point
                ),
            });
        }
        if segments.is_empty() {
            let seg = create_segment(&dir, 0)?;
            sync_dir(&dir)?;
            segments.insert(0, Arc::new(seg));
            next_offset = 0;
        }
        let current = RecoveryPoint {
            offset: next_offset,
            policy: config.flush_policy,
        };
        if recorded != Some(current) {
            // The point moves to the log end, so everything from the old point on must be on
            // disk first: under `never` and `interval_ms` it may still be in the page cache.
            for (_, seg) in segments.range(floor_base(&segments, rules.recovery_point)..) {
                seg.file.sync_data().map_err(io_at(&seg.path))?;
                // A sealed segment's index files are trusted below the point: a `.timeindex`
                // lost with the page cache would date the segment too early for retention.
                seg.sync_index_files()?;
            }
            recovery_point::write(&dir, current)?;
        }
        let total_bytes = segments
            .values()
            .map(|s| s.len.load(Ordering::Acquire))
            .sum();
        let log_start = segments.keys().next().copied().unwrap_or(0);
        let now_ms = clock.monotonic_ns() / 1_000_000;
        let (end_tx, _) = watch::channel(next_offset);
        Ok(Self {
            topic: topic.to_owned(),
            id,
            dir,
            config,
            clock,
            state: Mutex::new(State {
                segments,
                next_offset,
                log_start,
                active_created_ms: now_ms,
                bytes_since_index: 0,
                total_bytes,
                scratch: Vec::new(),
            }),
            closed: AtomicBool::new(false),
            sync: Mutex::new(SyncState {
                synced: next_offset,
                in_flight: false,
                last_sync_ms: now_ms,
            }),
            synced_cv: Condvar::new(),
            recovery_point: Mutex::new(next_offset),
            end_tx,
            opened_end: next_offset,
            poisoned,
            buffers,
            bell,
        })
    }

    /// The topic this partition belongs to.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition number.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Appends `records` as one batch and returns the first offset once the topic's flush
    /// policy is met: after the write for `never` and `interval_ms(N)`, after an fsync shared
    /// with every concurrent append for `always`.
    pub(crate) fn append(&self, records: &[Record]) -> Result<Placed> {
        if self.poisoned.is_tripped() {
            return Err(Error::Poisoned);
        }
        let now_ms = i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX);
        let (base_offset, end) = {
            let mut state = self.state.lock()?;
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::TopicNotFound {
                    topic: self.topic.clone(),
                });
            }
            self.maybe_roll(&mut state)?;
            let base_offset = state.next_offset;
            let mut buf = std::mem::take(&mut state.scratch);
            buf.clear();
            let info = segment::encode_batch(base_offset, now_ms, records, &mut buf);
            let written = self.write_batch(&mut state, &buf, &info);
            state.scratch = buf;
            written?;
            (base_offset, state.next_offset)
        };
        match self.config.flush_policy {
            FlushPolicy::Always => self.wait_durable(end)?,
            FlushPolicy::IntervalMs(_) => {
                self.end_tx.send_if_modified(|v| raise(v, end));
                self.bell.ring();
            }
            FlushPolicy::Never => {
                self.end_tx.send_if_modified(|v| raise(v, end));
            }
        }
        Ok(Placed {
            base_offset,
            timestamp_ms: now_ms,
        })
    }

    /// Writes an encoded batch to the active segment and updates the indexes and counters.
    fn write_batch(&self, state: &mut State, buf: &[u8], info: &BatchInfo) -> Result<()> {
        let Some(active) = state.segments.values().next_back().cloned() else {
            return Err(Error::LockPoisoned);
        };
        let position = active.len.load(Ordering::Acquire);
        if let Err(e) = active.file.write_all_at(buf, position) {
            // IMPORTANT: part of the batch may be on disk past the segment's end (a full disk,
            // say). The next append writes at the same position, and what a shorter one left
            // of it, or a roll that sealed the file at its length, would read as damage at
            // the next open. Cut it off; if even that fails, stop the log.
            if active.file.set_len(position).is_err() {
                self.poisoned.trip();
            }
            return Err(io_at(&active.path)(e));
        }
        let index_due = active.index.read()?.is_empty()
            || state.bytes_since_index >= self.config.index_interval_bytes;
        active.note_batch(info, position, index_due)?;
        if index_due {
            state.bytes_since_index = 0;
        }
        state.bytes_since_index += buf.len() as u64;
        active
            .len
            .store(position + buf.len() as u64, Ordering::Release);
        state.total_bytes += buf.len() as u64;
        state.next_offset = info.last_offset + 1;
        Ok(())
    }

    /// Seals the active segment and starts a new one when it is full or old enough.
    fn maybe_roll(&self, state: &mut State) -> Result<()> {
        let Some(active) = state.segments.values().next_back().cloned() else {
            return Ok(());
        };
        let len = active.len.load(Ordering::Acquire);
        let now_ms = self.clock.monotonic_ns() / 1_000_000;
        let full = len >= self.config.segment_bytes;
        let old = now_ms.saturating_sub(state.active_created_ms) >= self.config.segment_ms;
        if len == 0 || !(full || old) {
            return Ok(());
        }
        let durable = self.config.flush_policy != FlushPolicy::Never;
        if durable && let Err(e) = active.file.sync_data() {
            self.poisoned.trip();
            return Err(Error::Io {
                path: active.path.clone(),
                source: e,
            });
        }
        active.write_indexes(durable)?;
        let base = state.next_offset;
        let seg = create_segment(&self.dir, base)?;
        sync_dir(&self.dir)?;
        state.segments.insert(base, Arc::new(seg));
        state.active_created_ms = now_ms;
        state.bytes_since_index = 0;
        if durable {
            let mut sync = self.sync.lock()?;
            sync.synced = sync.synced.max(base);
            drop(sync);
            // Every batch below the new base is on disk now: the old active segment was just
            // fsynced, and each earlier one at its own durable roll or at open.
            self.raise_recovery_point(base)?;
        }
        Ok(())
    }

    /// Records `offset` in the `recovery-point` file when it is past the recorded one. The
    /// caller guarantees every batch below `offset` is on disk.
    fn raise_recovery_point(&self, offset: Offset) -> Result<()> {
        let mut rp = self.recovery_point.lock()?;
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if offset > *rp {
            recovery_point::write(
                &self.dir,
                RecoveryPoint {
                    offset,
                    policy: self.config.flush_policy,
                },
            )?;
            *rp = offset;
        }
        Ok(())
    }

    /// fsyncs every segment from the one holding the recovery point to the end, then records
    /// the log end as the new recovery point: a clean shutdown or an explicit flush, after which
    /// a restart re-validates nothing. Under `never` the sealed segments since the last point
    /// were never fsynced, so this is where they reach the disk.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier failed fsync, [`Error::Io`] when an fsync (which
    /// poisons the log) or the file write fails.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        if self.poisoned.is_tripped() {
            return Err(Error::Poisoned);
        }
        let (end, unflushed) = {
            let state = self.state.lock()?;
            let rp = *self.recovery_point.lock()?;
            if state.next_offset <= rp {
                return Ok(());
            }
            let from = floor_base(&state.segments, rp);
            let unflushed: Vec<Arc<Segment>> = state
                .segments
                .range(from..)
                .map(|(_, s)| s.clone())
                .collect();
            (state.next_offset, unflushed)
        };
        for seg in &unflushed {
            if let Err(source) = seg.file.sync_data() {
                self.poisoned.trip();
                return Err(Error::Io {
                    path: seg.path.clone(),
                    source,
                });
            }
            // As at open: the index files of a segment below the point are trusted.
            if let Err(e) = seg.sync_index_files() {
                self.poisoned.trip();
                return Err(e);
            }
        }
        self.raise_recovery_point(end)
    }

    /// Blocks until every offset below `target` is on disk, running the fsync itself if no
    /// other thread is, or sharing the one in flight.
    fn wait_durable(&self, target: Offset) -> Result<()> {
        let mut sync = self.sync.lock()?;
        loop {
            if self.poisoned.is_tripped() {
                return Err(Error::Poisoned);
            }
            if sync.synced >= target {
                self.publish_synced(sync.synced);
                return Ok(());
            }
            if sync.in_flight {
                sync = self.synced_cv.wait(sync)?;
                continue;
            }
            sync.in_flight = true;
            drop(sync);
            let result = self.sync_active();
            sync = self.sync.lock()?;
            sync.in_flight = false;
            sync.last_sync_ms = self.clock.monotonic_ns() / 1_000_000;
            match result {
                Ok(upto) => sync.synced = sync.synced.max(upto),
                Err(e) => {
                    self.poisoned.trip();
                    self.synced_cv.notify_all();
                    return Err(e);
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// fsyncs the active segment; returns the end offset it covers.
    fn sync_active(&self) -> Result<Offset> {
        let (active, upto) = {
            let state = self.state.lock()?;
            let Some(active) = state.segments.values().next_back().cloned() else {
                return Ok(state.next_offset);
            };
            (active, state.next_offset)
        };
        active.file.sync_data().map_err(io_at(&active.path))?;
        Ok(upto)
    }

    /// Makes synced offsets visible to readers under `always`.
    fn publish_synced(&self, synced: Offset) {
        if self.config.flush_policy == FlushPolicy::Always {
            self.end_tx.send_if_modified(|v| raise(v, synced));
        }
    }

    /// fsyncs written data now (shutdown, `interval_ms` ticks). A no-op when nothing is dirty.
    ///
    /// # Errors
    /// [`Error::Io`] when the fsync fails (the log is then poisoned).
    pub fn flush(&self) -> Result<()> {
        let end = self.state.lock()?.next_offset;
        self.wait_durable(end)
    }

    /// Waits up to `timeout` until every record appended so far is on disk; whether it is.
    #[cfg(test)]
    pub(crate) fn wait_synced(&self, timeout: Duration) -> bool {
        let end = *self.end_tx.borrow();
        let Ok(sync) = self.sync.lock() else {
            return false;
        };
        self.synced_cv
            .wait_timeout_while(sync, timeout, |s| s.synced < end)
            .is_ok_and(|(s, _)| s.synced >= end)
    }

    /// Flushes when the topic's policy is `interval_ms(N)`, data is dirty and the last fsync is
    /// at least N ms old by the monotonic clock. Returns whether data is left waiting for a
    /// later interval fsync.
    pub(crate) fn flush_if_due(&self) -> Result<bool> {
        let FlushPolicy::IntervalMs(interval) = self.config.flush_policy else {
            return Ok(false);
        };
        let now_ms = self.clock.monotonic_ns() / 1_000_000;
        let (dirty, due) = {
            let sync = self.sync.lock()?;
            let dirty = sync.synced < *self.end_tx.borrow();
            (
                dirty,
                dirty && now_ms.saturating_sub(sync.last_sync_ms) >= interval,
            )
        };
        if due {
            self.flush()?;
            Ok(false)
        } else {
            Ok(dirty)
        }
    }

    /// Writes the active segment's indexes so a clean restart need not rebuild them.
    pub(crate) fn write_active_indexes(&self) -> Result<()> {
        // The state lock is held while the files are written (at shutdown, the one caller's
        // time): released earlier, a topic deletion could close the partition and a
        // re-created topic take its directory before these files land there.
        let state = self.state.lock()?;
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        match state.segments.values().next_back() {
            Some(active) => active.write_indexes(true),
            None => Ok(()),
        }
    }

    /// Stops every later write to the partition's files (its topic is being deleted): waits
    /// for an append or a recovery-point write in progress, after which appends are
    /// [`Error::TopicNotFound`] and retention, index and recovery-point writes do nothing.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only.
    pub(crate) fn close(&self) -> Result<()> {
        let _state = self.state.lock()?;
        let _rp = self.recovery_point.lock()?;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// Deletes whole sealed segments that are past `retention.ms` (by their largest timestamp
    /// against wall-clock `now_ms`) or that `retention.bytes` no longer needs; advances the log
    /// start offset. Returns how many segments were deleted.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be removed.
    pub fn enforce_retention(&self, now_ms: u64) -> Result<usize> {
        let mut state = self.state.lock()?;
        if self.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut deleted = 0;
        let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
        while state.segments.len() > 1 {
            let Some((&base, oldest)) = state.segments.iter().next() else {
                break;
            };
            let len = oldest.len.load(Ordering::Acquire);
            let max_ts = oldest.max_timestamp_ms.load(Ordering::Acquire);
            let by_time = self.config.retention_ms >= 0
                && now_ms.saturating_sub(max_ts) > self.config.retention_ms;
            let by_size = u64::try_from(self.config.retention_bytes)
                .is_ok_and(|max| state.total_bytes - len >= max);
            if !(by_time || by_size) {
                break;
            }
            let oldest = oldest.clone();
            state.segments.remove(&base);
            state.total_bytes -= len;
            for path in [
                oldest.path.clone(),
                oldest.sibling("index"),
                oldest.sibling("timeindex"),
            ] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Io { path, source: e }),
                }
            }
            deleted += 1;
        }
        if deleted > 0 {
            state.log_start = state
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(state.next_offset);
            sync_dir(&self.dir)?;
            tracing::info!(topic = %self.topic, partition = self.id, deleted, log_start = state.log_start, "retention deleted segments");
        }
        Ok(deleted)
    }

    /// Number of segment files (for tests and metrics).
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only.
    pub fn segment_count(&self) -> Result<usize> {
        Ok(self.state.lock()?.segments.len())
    }

    /// Total bytes stored in this partition's segments.
    ///
    /// # Errors
    /// [`Error::LockPoisoned`] only.
    pub fn size_bytes(&self) -> Result<u64> {
        Ok(self.state.lock()?.total_bytes)
    }
}

/// Raises `*v` to `to`; reports whether it changed (for `send_if_modified`).
fn raise(v: &mut Offset, to: Offset) -> bool {
    if to > *v {
        *v = to;
        true
    } else {
        false
    }
}

/// Opens a segment file for reading and writing.
fn open_file(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(io_at(path))
}

/// Creates an empty segment at `base`, replacing any leftover file of that name.
pub(super) fn create_segment(dir: &Path, base: Offset) -> Result<Segment> {
    let path = segment_path(dir, base);
    let file = open_file(&path, true)?;
    file.set_len(0).map_err(io_at(&path))?;
    Ok(segment_over(base, path, file, 0))
}

/// Scans a whole segment under `rules` and builds its indexes from the valid batches; the
/// scan result is returned too.
fn scan_into(seg: &Segment, index_interval_bytes: u64, rules: Rules) -> Result<recovery::Scan> {
    let scan = recovery::scan_segment_from(&seg.file, 0, seg.base, rules).map_err(|f| match f {
        ScanFailure::Corrupt(e) => Error::Corrupt {
            segment: seg.path.clone(),
            position: e.position,
            reason: e.reason,
        },
        ScanFailure::Io(source) => Error::Io {
            path: seg.path.clone(),
            source,
        },
    })?;
    let mut since = 0;
    for b in &scan.batches {
        let due = b.position == 0 || since >= index_interval_bytes;
        if due {
            since = 0;
        }
        since += b.info.len as u64;
        seg.note_batch(&b.info, b.position, due)?;
    }
    Ok(scan)
}

/// Default spacing of offset-index entries when rebuilding.
const REBUILD_INDEX_INTERVAL_BYTES: u64 = 4096;

/// A segment over an open file with empty indexes.
fn segment_over(base: Offset, path: PathBuf, file: File, len: u64) -> Segment {
    Segment {
        base,
        path,
        file,
        len: AtomicU64::new(len),
        index: RwLock::new(OffsetIndex::new()),
        time_index: RwLock::new(TimeIndex::new()),
        max_timestamp_ms: AtomicI64::new(i64::MIN),
    }
}

/// Names a partition in recovery's log lines.
#[derive(Debug, Clone, Copy)]
struct PartitionName<'a> {
    topic: &'a str,
    id: u32,
}

/// Reads the partition's `recovery-point` file. A missing one (a partition written before
/// recovery points existed) or one that does not decode gives `None`, logged when the
/// partition has segments: recovery then runs under [`Rules::TORN_TAIL`], as before.
fn read_recovery_point(
    dir: &Path,
    name: PartitionName<'_>,
    has_segments: bool,
) -> Result<Option<RecoveryPoint>> {
    match recovery_point::read(dir)? {
        Found::Valid(rp) => Ok(Some(rp)),
        Found::Missing => {
            if has_segments {
                tracing::info!(
                    topic = name.topic,
                    partition = name.id,
                    "no recovery-point file; recovering with recovery point 0 and the torn-tail rules"
                );
            }
            Ok(None)
        }
        Found::Invalid(e) => {
            tracing::warn!(
                topic = name.topic,
                partition = name.id,
                reason = %e,
                "the recovery-point file is invalid; recovering with recovery point 0 and the torn-tail rules"
            );
            Ok(None)
        }
    }
}

/// Base of the segment holding `offset` (the first segment when `offset` precedes them all).
fn floor_base(segments: &BTreeMap<Offset, Arc<Segment>>, offset: Offset) -> Offset {
    segments
        .range(..=offset)
        .next_back()
        .or_else(|| segments.iter().next())
        .map_or(0, |(b, _)| *b)
}

/// Opens the segments `bases` (sorted) under `rules`; returns them with the log end offset.
///
/// A segment wholly below the recovery point is opened as sealed ([`open_sealed`]: its index
/// trusted when its tail verifies); any failure there is [`Error::Corrupt`]. The last segment,
/// and under `first_invalid_ends` every segment reaching the recovery point, is scanned batch
/// by batch. A batch that `rules` let end the log (a torn tail of the last segment; past the
/// recovery point under `interval_ms` or `never`, the first invalid batch anywhere, or a sealed
/// segment that stops short of the next one's base) is where the log ends: that segment is cut
/// there and every later segment deleted ([`cut_log`]).
fn recover_segments(
    dir: &Path,
    bases: &[Offset],
    rules: Rules,
    name: PartitionName<'_>,
) -> Result<(BTreeMap<Offset, Arc<Segment>>, Offset)> {
    let mut segments = BTreeMap::new();
    let mut end = 0;
    for (i, &base) in bases.iter().enumerate() {
        let next = bases.get(i + 1).copied();
        let later = bases.get(i + 1..).unwrap_or_default();
        let scanned = match next {
            None => true,
            Some(next) => rules.first_invalid_ends && next > rules.recovery_point,
        };
        let seg = if scanned {
            let (seg, scan) = open_scanned(dir, base, rules)?;
            end = scan.batches.last().map_or(base, |b| b.info.last_offset + 1);
            if scan.torn_bytes > 0 {
                let cut = Cut {
                    name,
                    position: scan.valid_len,
                    end,
                    torn_bytes: scan.torn_bytes,
                    reason: scan.torn_reason.unwrap_or_default(),
                };
                cut_log(dir, &seg, &cut, later)?;
                segments.insert(base, Arc::new(seg));
                return Ok((segments, end));
            }
            if next.is_some() {
                seg.write_indexes(false)?;
            }
            seg
        } else {
            let (seg, last_offset) = open_sealed(dir, base)?;
            end = last_offset.map_or(base, |o| o + 1);
            seg
        };
        if let Some(next) = next
            && end != next
        {
            let position = seg.len.load(Ordering::Acquire);
            let reason = format!(
                "sealed segment ends before offset {end}, the next segment starts at {next}"
            );
            if rules.first_invalid_ends && end >= rules.recovery_point && end < next {
                // Its last batches never reached the disk, at a batch boundary.
                let cut = Cut {
                    name,
                    position,
                    end,
                    torn_bytes: 0,
                    reason,
                };
                cut_log(dir, &seg, &cut, later)?;
                segments.insert(base, Arc::new(seg));
                return Ok((segments, end));
            }
            return Err(Error::Corrupt {
                segment: seg.path.clone(),
                position,
                reason,
            });
        }
        segments.insert(base, Arc::new(seg));
    }
    Ok((segments, end))
}

/// Where recovery ends a partition's log.
#[derive(Debug)]
struct Cut<'a> {
    /// The partition.
    name: PartitionName<'a>,
    /// Byte position in the segment where the log now ends.
    position: u64,
    /// The log end offset after the cut (the next append's offset).
    end: Offset,
    /// Bytes of the segment from `position` to its end.
    torn_bytes: u64,
    /// Why the log ends there.
    reason: String,
}

/// Ends the log at `cut` in `seg`: truncates and fsyncs it, deletes every segment of `later`
/// with its index files (the highest first, so a crash in between leaves a prefix that the
/// next open cuts the same way) and `seg`'s own index files, which describe the bytes cut off
/// (it becomes the active segment, whose indexes live in memory), then fsyncs the directory.
fn cut_log(dir: &Path, seg: &Segment, cut: &Cut<'_>, later: &[Offset]) -> Result<()> {
    if cut.torn_bytes > 0 {
        seg.file.set_len(cut.position).map_err(io_at(&seg.path))?;
        seg.file.sync_all().map_err(io_at(&seg.path))?;
    }
    let mut removed_bytes = cut.torn_bytes;
    let doomed = later
        .iter()
        .rev()
        .flat_map(|&base| ["log", "index", "timeindex"].map(|ext| segment_file_name(base, ext)))
        .chain(["index", "timeindex"].map(|ext| segment_file_name(seg.base, ext)));
    for file_name in doomed {
        let path = dir.join(file_name);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(&path)(e)),
        };
        std::fs::remove_file(&path).map_err(io_at(&path))?;
        if path.extension().is_some_and(|e| e == "log") {
            removed_bytes += len;
        }
    }
    sync_dir(dir)?;
    tracing::warn!(
        topic = cut.name.topic,
        partition = cut.name.id,
        segment = %seg.path.display(),
        position = cut.position,
        first_removed_offset = cut.end,
        segments_removed = later.len(),
        last_removed_segment_base = later.last().copied().unwrap_or(cut.end),
        bytes = removed_bytes,
        reason = %cut.reason,
        "recovery ended the log at an invalid batch (a torn tail, or past the recovery point): the records from first_removed_offset on are gone, and segments_removed later segments were deleted"
    );
    Ok(())
}

/// Opens a segment and verifies every batch under `rules`, building its indexes; its length is
/// that of its valid batches (the caller cuts the file when the scan found a tail to drop).
fn open_scanned(dir: &Path, base: Offset, rules: Rules) -> Result<(Segment, recovery::Scan)> {
    let path = segment_path(dir, base);
    let file = open_file(&path, false)?;
    let seg = segment_over(base, path, file, 0);
    let scan = scan_into(&seg, REBUILD_INDEX_INTERVAL_BYTES, rules)?;
    seg.len.store(scan.valid_len, Ordering::Release);
    Ok((seg, scan))
}

/// Opens a sealed segment whose batches were on disk (wholly below the recovery point, or any
/// sealed segment under `always`) and returns it with its last offset (`None` when it holds no
/// batch).
///
/// Its index files are trusted when they validate and the batches from the last indexed one
/// to the end of the file verify and continue it (a cheap check of the tail). Otherwise the
/// whole segment is scanned: the indexes are rebuilt, or a bad batch is [`Error::Corrupt`]
/// naming the segment and position — fsynced bytes have changed, and a sealed segment is
/// followed by the next, so its tail cannot be cut off without losing offsets.
fn open_sealed(dir: &Path, base: Offset) -> Result<(Segment, Option<Offset>)> {
    let path = segment_path(dir, base);
    let file = open_file(&path, false)?;
    let len = file.metadata().map_err(io_at(&path))?.len();
    let seg = segment_over(base, path, file, len);
    let offset = std::fs::read(seg.sibling("index"))
        .ok()
        .and_then(|b| OffsetIndex::decode(&b, len));
    let time = std::fs::read(seg.sibling("timeindex"))
        .ok()
        .and_then(|b| TimeIndex::decode(&b));
    if let (Some(offset), Some(time)) = (offset, time) {
        let tail = match offset.last_entry() {
            Some(entry) => verified_tail(&seg, entry)?,
            None if len == 0 => Some(None),
            None => None,
        };
        if let Some(last_offset) = tail {
            if let Some(max) = time.max_timestamp_ms() {
                seg.max_timestamp_ms.store(max, Ordering::Release);
            }
            *seg.index.write()? = offset;
            *seg.time_index.write()? = time;
            return Ok((seg, last_offset));
        }
        tracing::warn!(
            segment = %seg.path.display(),
            "a sealed segment's tail does not match its index; scanning the whole segment"
        );
    }
    let scan = scan_into(&seg, REBUILD_INDEX_INTERVAL_BYTES, Rules::TORN_TAIL)?;
    if scan.torn_bytes > 0 {
        return Err(Error::Corrupt {
            segment: seg.path.clone(),
            position: scan.valid_len,
            reason: format!(
                "sealed segment ends in a bad batch: {}",
                scan.torn_reason.unwrap_or_default()
            ),
        });
    }
    seg.write_indexes(false)?;
    let last_offset = scan.batches.last().map(|b| b.info.last_offset);
    Ok((seg, last_offset))
}

/// Verifies a sealed segment's batches from its last indexed one, `(offset - base, position)`,
/// to the end of the file. Returns `Some(last offset)` when they are whole and continue the
/// index, `None` when they do not (the caller then scans the whole segment).
fn verified_tail(seg: &Segment, (rel, position): (u32, u32)) -> Result<Option<Option<Offset>>> {
    let first = seg.base + u64::from(rel);
    match recovery::scan_segment_from(&seg.file, u64::from(position), first, Rules::TORN_TAIL) {
        Ok(scan) if scan.torn_bytes == 0 => {
            Ok(scan.batches.last().map(|b| Some(b.info.last_offset)))
        }
        Ok(_) | Err(ScanFailure::Corrupt(_)) => Ok(None),
        Err(ScanFailure::Io(source)) => Err(Error::Io {
            path: seg.path.clone(),
            source,
        }),
    }
}

/// fsyncs a directory so created or deleted entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{FlushBell, Woke};

    /// Longer than any test runs: a wait that returns early was ended by the bell.
    const FOREVER: Duration = Duration::from_secs(3600);

    #[test]
    fn a_ring_after_listen_ends_the_wait_at_once() {
        let bell = FlushBell::default();
        bell.listen();
        bell.ring();
        assert_eq!(bell.wait(FOREVER, true), Woke::Rung);
    }

    #[test]
    fn a_ring_from_another_thread_wakes_the_waiter() {
        let bell = Arc::new(FlushBell::default());
        bell.listen();
        let ringer = std::thread::spawn({
            let bell = bell.clone();
            move || bell.ring()
        });
        assert_eq!(bell.wait(FOREVER, true), Woke::Rung);
        ringer.join().unwrap();
    }

    #[test]
    fn rings_are_not_heard_unless_listening() {
        let bell = FlushBell::default();
        bell.ring();
        assert_eq!(bell.wait(Duration::ZERO, true), Woke::TimedOut);
        bell.listen();
        bell.ignore();
        bell.ring();
        assert_eq!(bell.wait(Duration::ZERO, true), Woke::TimedOut);
        // A ring heard while the thread waits for its tick does not end that wait.
        bell.listen();
        bell.ring();
        assert_eq!(bell.wait(Duration::ZERO, false), Woke::TimedOut);
        // Listening again forgets the ring.
        bell.listen();
        assert_eq!(bell.wait(Duration::ZERO, true), Woke::TimedOut);
    }

    #[test]
    fn stop_ends_every_wait() {
        let bell = FlushBell::default();
        bell.stop();
        assert_eq!(bell.wait(FOREVER, false), Woke::Stopped);
        assert_eq!(bell.wait(FOREVER, true), Woke::Stopped);
    }
}
