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
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::error::{Error, Result, io_at};
use super::index::{OffsetIndex, TimeIndex};
use super::reader::ReadBuffers;
use super::recovery::{self, ScanFailure};
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
    /// The end offset readers may see; tailing readers wait on it.
    pub(crate) end_tx: watch::Sender<Offset>,
    /// Set log-wide after a failed fsync; refuses further writes.
    poisoned: Arc<FaultLatch>,
    /// Log-wide reused read buffers.
    pub(crate) buffers: Arc<ReadBuffers>,
    /// Rung after appends under `interval_ms(N)`.
    bell: Arc<FlushBell>,
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
    /// Opens (or creates) the partition in `dir`, recovering the active segment.
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
        let mut segments = BTreeMap::new();
        let mut total_bytes = 0;
        let last = bases.last().copied();
        // The sealed segment before `base`: its path, length and the offset after its last
        // record, which must be `base`.
        let mut previous: Option<(PathBuf, u64, Offset)> = None;
        for &base in &bases {
            if let Some((path, len, ends)) = previous.take()
                && ends != base
            {
                return Err(Error::Corrupt {
                    segment: path,
                    position: len,
                    reason: format!(
                        "sealed segment ends before offset {ends}, the next segment starts at {base}"
                    ),
                });
            }
            let seg = if Some(base) == last {
                open_active(&dir, base)?
            } else {
                let (seg, last_offset) = open_sealed(&dir, base)?;
                let len = seg.len.load(Ordering::Acquire);
                previous = Some((seg.path.clone(), len, last_offset.map_or(base, |o| o + 1)));
                seg
            };
            total_bytes += seg.len.load(Ordering::Acquire);
            segments.insert(base, Arc::new(seg));
        }
        let mut next_offset = 0;
        if let Some(active) = segments.values().next_back() {
            next_offset = last_offset_of(active)?.map_or(active.base, |o| o + 1);
        } else {
            let seg = create_segment(&dir, 0)?;
            sync_dir(&dir)?;
            segments.insert(0, Arc::new(seg));
        }
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
            sync: Mutex::new(SyncState {
                synced: next_offset,
                in_flight: false,
                last_sync_ms: now_ms,
            }),
            synced_cv: Condvar::new(),
            end_tx,
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
        active
            .file
            .write_all_at(buf, position)
            .map_err(io_at(&active.path))?;
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
        }
        Ok(())
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
        let active = self.state.lock()?.segments.values().next_back().cloned();
        match active {
            Some(active) => active.write_indexes(true),
            None => Ok(()),
        }
    }

    /// Deletes whole sealed segments that are past `retention.ms` (by their largest timestamp
    /// against wall-clock `now_ms`) or that `retention.bytes` no longer needs; advances the log
    /// start offset. Returns how many segments were deleted.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be removed.
    pub fn enforce_retention(&self, now_ms: u64) -> Result<usize> {
        let mut state = self.state.lock()?;
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
    Ok(Segment {
        base,
        path,
        file,
        len: AtomicU64::new(0),
        index: RwLock::new(OffsetIndex::new()),
        time_index: RwLock::new(TimeIndex::new()),
        max_timestamp_ms: AtomicI64::new(i64::MIN),
    })
}

/// Scans a whole segment and builds its indexes; the scan result is returned too.
fn scan_into(seg: &Segment, index_interval_bytes: u64) -> Result<recovery::Scan> {
    let scan = recovery::scan_segment(&seg.file, seg.base).map_err(|f| match f {
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

/// Opens the active segment: verify every batch and cut a torn tail.
fn open_active(dir: &Path, base: Offset) -> Result<Segment> {
    let path = segment_path(dir, base);
    let file = open_file(&path, false)?;
    let seg = Segment {
        base,
        path,
        file,
        len: AtomicU64::new(0),
        index: RwLock::new(OffsetIndex::new()),
        time_index: RwLock::new(TimeIndex::new()),
        max_timestamp_ms: AtomicI64::new(i64::MIN),
    };
    let scan = scan_into(&seg, REBUILD_INDEX_INTERVAL_BYTES)?;
    if scan.torn_bytes > 0 {
        seg.file.set_len(scan.valid_len).map_err(io_at(&seg.path))?;
        seg.file.sync_all().map_err(io_at(&seg.path))?;
        tracing::warn!(
            segment = %seg.path.display(),
            bytes = scan.torn_bytes,
            kept = scan.valid_len,
            reason = scan.torn_reason.as_deref().unwrap_or(""),
            "recovery truncated a torn tail"
        );
    }
    seg.len.store(scan.valid_len, Ordering::Release);
    Ok(seg)
}

/// Opens a sealed segment and returns it with its last offset (`None` when it holds no batch).
///
/// Its index files are trusted when they validate and the batches from the last indexed one
/// to the end of the file verify and continue it (a cheap check of the tail, which a crash
/// under `flush.policy = never` can tear: the roll fsyncs nothing then). Otherwise the whole
/// segment is scanned: the indexes are rebuilt, or a bad batch is [`Error::Corrupt`] naming the
/// segment and position — a sealed segment is followed by the next, so its tail cannot be cut
/// off without losing offsets.
fn open_sealed(dir: &Path, base: Offset) -> Result<(Segment, Option<Offset>)> {
    let path = segment_path(dir, base);
    let file = open_file(&path, false)?;
    let len = file.metadata().map_err(io_at(&path))?.len();
    let seg = Segment {
        base,
        path,
        file,
        len: AtomicU64::new(len),
        index: RwLock::new(OffsetIndex::new()),
        time_index: RwLock::new(TimeIndex::new()),
        max_timestamp_ms: AtomicI64::new(i64::MIN),
    };
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
    let scan = scan_into(&seg, REBUILD_INDEX_INTERVAL_BYTES)?;
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
    match recovery::scan_segment_from(&seg.file, u64::from(position), first) {
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

/// Last offset stored in a segment, from its last indexed batch onward.
fn last_offset_of(seg: &Segment) -> Result<Option<Offset>> {
    let len = seg.len.load(Ordering::Acquire);
    if len == 0 {
        return Ok(None);
    }
    let start = {
        let index = seg.index.read()?;
        index.lookup(u32::MAX)
    };
    let mut pos = u64::from(start);
    let mut last = None;
    let mut header = vec![0u8; segment::LOG_OVERHEAD];
    while pos < len {
        let n = recovery::Source::read_at(&seg.file, pos, &mut header).map_err(io_at(&seg.path))?;
        let claimed = header
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
            .and_then(|l| usize::try_from(l).ok());
        let (Some(claimed), true) = (claimed, n == segment::LOG_OVERHEAD) else {
            break;
        };
        if claimed + segment::LOG_OVERHEAD > super::BATCH_BYTES_MAX {
            return Err(Error::Corrupt {
                segment: seg.path.clone(),
                position: pos,
                reason: format!("batch_length {claimed} is impossible"),
            });
        }
        let mut buf = vec![0u8; claimed + segment::LOG_OVERHEAD];
        recovery::Source::read_at(&seg.file, pos, &mut buf).map_err(io_at(&seg.path))?;
        let info = segment::decode_batch_info(&buf).map_err(|e| Error::Corrupt {
            segment: seg.path.clone(),
            position: pos,
            reason: format!("{e:?}"),
        })?;
        last = Some(info.last_offset);
        pos += info.len as u64;
    }
    Ok(last)
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
