//! The optional snapshot: every live key of every database, written on shutdown (and every N
//! seconds) to a temporary file that is fsynced and renamed over `cache.snapshot`, and loaded
//! on start. A corrupt file is logged and renamed to `cache.snapshot.corrupt`, never a crash.
//!
//! Layout (little-endian): magic `SCSNAP\0\0` (8 bytes) | version u32 | payload length u64 |
//! CRC32C of the payload u32 | payload (postcard of `Vec<Record>`). Version 2 added the
//! sorted set variant at the end of `RecordValue`, version 3 the stream variant after it and
//! version 4 the FUNCTION library variant (in a record of database [`LIBRARY_DB`], keyed by the
//! library's name), so older files load unchanged.
#![deny(clippy::indexing_slicing)]

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::cache::shard::Entry;
use crate::cache::stream::{Group, Pending, StreamId, StreamValue};
use crate::cache::value::{HashValue, SetValue, Value};
use crate::cache::zset::ZSetValue;
use crate::cache::{Cache, DATABASES, Error, Result};

/// File name inside the data directory.
pub(crate) const FILE_NAME: &str = "cache.snapshot";
/// File magic.
pub(crate) const MAGIC: [u8; 8] = *b"SCSNAP\0\0";
/// Format version.
pub(crate) const VERSION: u32 = 4;
/// The database number of a record that holds a FUNCTION library rather than a key.
pub(crate) const LIBRARY_DB: u32 = u32::MAX;
/// The oldest version still loaded (version 1 has no sorted sets and versions 1 and 2 no
/// streams; their records read the same).
pub(crate) const VERSION_MIN: u32 = 1;
/// Header bytes before the payload.
pub(crate) const HEADER_BYTES: usize = 8 + 4 + 8 + 4;

/// One persisted key.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    db: u32,
    key: Vec<u8>,
    expire_at_ms: u64,
    value: RecordValue,
}

/// A persisted value.
#[derive(Debug, Serialize, Deserialize)]
enum RecordValue {
    Str(Vec<u8>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// Added in version 2: members with their scores, ascending.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// Added in version 3: a stream's entries and bookkeeping.
    Stream(StreamRecord),
    /// Added in version 4: a FUNCTION library's code (its record's db is [`LIBRARY_DB`]).
    Library(Vec<u8>),
}

/// A persisted stream entry: its ID as `(ms, seq)` and its fields and values, alternating.
type StreamEntryRecord = ((u64, u64), Vec<Vec<u8>>);

/// A persisted stream (version 3): IDs as `(ms, seq)`; the first ID is the first entry's;
/// its consumer groups.
#[derive(Debug, Serialize, Deserialize)]
struct StreamRecord {
    entries: Vec<StreamEntryRecord>,
    last_id: (u64, u64),
    max_deleted: (u64, u64),
    entries_added: u64,
    groups: Vec<GroupRecord>,
}

/// A persisted pending entry: ID, consumer, delivery time (ms), delivery count.
type PendingRecord = ((u64, u64), Vec<u8>, u64, u64);

/// A persisted consumer group: its name, last delivered ID, entries read (-1: unknown), its
/// pending entries `(id, consumer, delivery time ms, delivery count)` and its consumers
/// `(name, seen time ms)`.
#[derive(Debug, Serialize, Deserialize)]
struct GroupRecord {
    name: Vec<u8>,
    last_id: (u64, u64),
    entries_read: i64,
    pel: Vec<PendingRecord>,
    consumers: Vec<(Vec<u8>, u64)>,
}

fn id_pair(id: StreamId) -> (u64, u64) {
    (id.ms, id.seq)
}

fn stream_record(s: &StreamValue) -> StreamRecord {
    StreamRecord {
        entries: s
            .iter()
            .map(|(id, f)| (id_pair(*id), f.iter().map(|b| b.to_vec()).collect()))
            .collect(),
        last_id: id_pair(s.last_id),
        max_deleted: id_pair(s.max_deleted),
        entries_added: s.entries_added,
        groups: s
            .groups()
            .iter()
            .map(|(name, g)| GroupRecord {
                name: name.to_vec(),
                last_id: id_pair(g.last_id),
                entries_read: g.entries_read,
                pel: g
                    .pel
                    .iter()
                    .map(|(id, p)| {
                        (
                            id_pair(*id),
                            p.consumer.to_vec(),
                            p.delivery_time_ms,
                            p.delivery_count,
                        )
                    })
                    .collect(),
                consumers: g
                    .consumers
                    .iter()
                    .map(|(n, c)| (n.to_vec(), c.seen_time_ms))
                    .collect(),
            })
            .collect(),
    }
}

fn stream_value(r: StreamRecord) -> StreamValue {
    let mut s = StreamValue::default();
    for ((ms, seq), fields) in r.entries {
        s.insert_loaded(
            StreamId::new(ms, seq),
            fields.into_iter().map(Bytes::from).collect(),
        );
    }
    s.last_id = StreamId::new(r.last_id.0, r.last_id.1).max(s.last_entry_id());
    s.max_deleted = StreamId::new(r.max_deleted.0, r.max_deleted.1);
    s.entries_added = r.entries_added.max(s.len() as u64);
    s.first_id = s.keys().next().copied().unwrap_or(StreamId::MIN);
    for gr in r.groups {
        let mut g = Group::new(StreamId::new(gr.last_id.0, gr.last_id.1), gr.entries_read);
        for (name, seen) in gr.consumers {
            g.consumer_mut(&Bytes::from(name), seen);
        }
        for ((ms, seq), consumer, time, count) in gr.pel {
            let id = StreamId::new(ms, seq);
            let consumer = Bytes::from(consumer);
            g.consumer_mut(&consumer, time).pel.insert(id);
            g.pel.insert(
                id,
                Pending {
                    consumer,
                    delivery_time_ms: time,
                    delivery_count: count,
                },
            );
        }
        s.put_group(Bytes::from(gr.name), g);
    }
    s
}

/// Encodes records into the file bytes.
fn encode(records: &[Record]) -> Result<Vec<u8>, postcard::Error> {
    let payload = postcard::to_stdvec(records)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes file bytes, checking magic, version, length and checksum.
fn decode(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let header = bytes.get(..HEADER_BYTES).ok_or("shorter than the header")?;
    if header.get(..8) != Some(&MAGIC[..]) {
        return Err("bad magic".into());
    }
    let word = |a: usize, b: usize| header.get(a..b).ok_or_else(|| "short header".to_owned());
    let version = u32::from_le_bytes(word(8, 12)?.try_into().map_err(|_| "bad header")?);
    if !(VERSION_MIN..=VERSION).contains(&version) {
        return Err(format!("unknown version {version}"));
    }
    let len = u64::from_le_bytes(word(12, 20)?.try_into().map_err(|_| "bad header")?);
    let crc = u32::from_le_bytes(word(20, 24)?.try_into().map_err(|_| "bad header")?);
    let payload = bytes.get(HEADER_BYTES..).ok_or("no payload")?;
    if payload.len() as u64 != len {
        return Err(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32c::crc32c(payload) != crc {
        return Err("checksum mismatch".into());
    }
    postcard::from_bytes(payload).map_err(|e| format!("undecodable payload: {e}"))
}

/// Every live key and FUNCTION library, copied under the exclusive gate, with the keyspace's
/// change count at that moment (what this snapshot saves).
fn collect(cache: &Cache) -> (Vec<Record>, u64) {
    let inner = cache.inner();
    let now = inner.clock.now_ms();
    let mut ctx = inner.ks.exclusive(0, now);
    // Changes counted after this point are not in the snapshot and stay counted.
    let dirty = inner.ks.dirty.load(Ordering::Relaxed);
    let mut records = Vec::new();
    for db in 0..DATABASES {
        for pos in ctx.all_shards(db) {
            let Some(shard) = ctx.shard_at(pos) else {
                continue;
            };
            for (k, e) in shard.iter() {
                if e.is_expired(now) {
                    continue;
                }
                let entry = e.to_entry();
                let value = match &entry.value {
                    Value::Str(s) => RecordValue::Str(s.clone()),
                    Value::Hash(h) => {
                        RecordValue::Hash(h.iter().map(|(a, b)| (a.to_vec(), b.to_vec())).collect())
                    }
                    Value::List(l) => RecordValue::List(l.iter().map(|v| v.to_vec()).collect()),
                    Value::Set(s) => RecordValue::Set(s.iter().map(|v| v.to_vec()).collect()),
                    Value::ZSet(z) => RecordValue::ZSet(
                        z.to_vec()
                            .into_iter()
                            .map(|(m, s)| (m.to_vec(), s))
                            .collect(),
                    ),
                    Value::Stream(x) => RecordValue::Stream(stream_record(x)),
                };
                records.push(Record {
                    db: db as u32,
                    key: k.to_vec(),
                    expire_at_ms: entry.expire_at_ms,
                    value,
                });
            }
        }
    }
    // Under the gate, as a script takes the scripting state after it: the same order.
    for (name, code) in crate::cache::script::library_codes(inner) {
        records.push(Record {
            db: LIBRARY_DB,
            key: name.into_bytes(),
            expire_at_ms: 0,
            value: RecordValue::Library(code),
        });
    }
    drop(ctx);
    (records, dirty)
}

/// Writes the snapshot atomically (temp file, fsync, rename, fsync directory), recording it in
/// [`Saves`]. Waits for a snapshot another thread is writing: every save writes the same
/// temporary file.
pub(crate) fn save(cache: &Cache, path: &Path) -> Result<()> {
    let saves = &cache.inner.saves;
    let _writing = saves.writing.lock().unwrap_or_else(PoisonError::into_inner);
    saves.begun.fetch_add(1, Ordering::Relaxed);
    write(cache, path)?;
    saves
        .last_ms
        .store(cache.inner.clock.now_ms(), Ordering::Relaxed);
    // As Redis's `rdbSave`: a good save also clears a failed background save's status.
    saves.last_background_ok.store(true, Ordering::Relaxed);
    Ok(())
}

/// The snapshot write itself: the keyspace copied under the gate, then encoded and written
/// without it.
fn write(cache: &Cache, path: &Path) -> Result<()> {
    let io = |source| Error::SnapshotIo {
        path: path.to_owned(),
        source,
    };
    let (records, dirty) = collect(cache);
    let bytes = encode(&records).map_err(|e| io(std::io::Error::other(e)))?;
    drop(records);
    let tmp = path.with_extension("snapshot.tmp");
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // A partial file would hold its disk space (the log and history share the data
        // directory) until the next save; the snapshot before it is untouched.
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    cache.inner.ks.dirty.fetch_sub(dirty, Ordering::Relaxed);
    Ok(())
}

/// The snapshot's save bookkeeping (LASTSAVE, INFO persistence) and the one background save
/// (BGSAVE or the periodic snapshot) that may run at a time.
#[derive(Debug)]
pub(crate) struct Saves {
    /// Held while a snapshot is written: every save writes the same temporary file.
    writing: Mutex<()>,
    /// A background save is running: set before its work starts, cleared when it ends
    /// (`rdb_bgsave_in_progress`).
    background: AtomicBool,
    /// When the running background save started (monotonic ns).
    background_started_ns: AtomicU64,
    /// Wall-clock ms of the last successful save; the start time before any (LASTSAVE, as
    /// Redis counts a fresh server as saved).
    last_ms: AtomicU64,
    /// Whether the last background save succeeded (`rdb_last_bgsave_status`).
    last_background_ok: AtomicBool,
    /// Whole seconds the last background save took; -1 before any
    /// (`rdb_last_bgsave_time_sec`).
    last_background_s: AtomicI64,
    /// Saves begun (`rdb_saves`).
    begun: AtomicU64,
    /// SHUTDOWN NOSAVE was given: the engine's shutdown writes no snapshot.
    skip_at_shutdown: AtomicBool,
}

impl Saves {
    /// Bookkeeping for a cache started at wall-clock `start_ms`.
    pub(crate) fn new(start_ms: u64) -> Self {
        Self {
            writing: Mutex::new(()),
            background: AtomicBool::new(false),
            background_started_ns: AtomicU64::new(0),
            last_ms: AtomicU64::new(start_ms),
            last_background_ok: AtomicBool::new(true),
            last_background_s: AtomicI64::new(-1),
            begun: AtomicU64::new(0),
            skip_at_shutdown: AtomicBool::new(false),
        }
    }

    /// LASTSAVE: the unix time of the last successful save, in seconds.
    pub(crate) fn last_save_s(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed) / 1000
    }

    /// Whether a background save runs now.
    pub(crate) fn background_running(&self) -> bool {
        self.background.load(Ordering::Acquire)
    }

    /// Takes the background slot at monotonic `now_ns`; `false` when a background save holds
    /// it.
    fn claim_background(&self, now_ns: u64) -> bool {
        let claimed = self
            .background
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if claimed {
            self.background_started_ns.store(now_ns, Ordering::Relaxed);
        }
        claimed
    }

    /// Ends the background save at monotonic `now_ns`, recording its outcome.
    fn release_background(&self, ok: bool, now_ns: u64) {
        let took_ns = now_ns.saturating_sub(self.background_started_ns.load(Ordering::Relaxed));
        let took_s = i64::try_from(took_ns / 1_000_000_000).unwrap_or(i64::MAX);
        self.last_background_s.store(took_s, Ordering::Relaxed);
        self.last_background_ok.store(ok, Ordering::Relaxed);
        self.background.store(false, Ordering::Release);
    }

    /// Asks the engine's shutdown to write no snapshot (SHUTDOWN NOSAVE).
    pub(crate) fn skip_at_shutdown(&self) {
        self.skip_at_shutdown.store(true, Ordering::Relaxed);
    }

    /// INFO persistence's save lines, as Redis 7.0.15 names them, at monotonic `now_ns`.
    pub(crate) fn info_lines(&self, now_ns: u64) -> String {
        let running = self.background_running();
        let current_s = if running {
            let started = self.background_started_ns.load(Ordering::Relaxed);
            i64::try_from(now_ns.saturating_sub(started) / 1_000_000_000).unwrap_or(i64::MAX)
        } else {
            -1
        };
        format!(
            "rdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current_s}\r\nrdb_saves:{}\r\n",
            u8::from(running),
            self.last_save_s(),
            if self.last_background_ok.load(Ordering::Relaxed) {
                "ok"
            } else {
                "err"
            },
            self.last_background_s.load(Ordering::Relaxed),
            self.begun.load(Ordering::Relaxed),
        )
    }
}

/// Why a background save did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackgroundRefused {
    /// No snapshot file is configured.
    NotConfigured,
    /// A background save runs already.
    AlreadyRunning,
    /// Its thread could not be started (logged).
    NoThread,
}

impl Cache {
    /// Whether a snapshot file is configured (`[cache] snapshot = true`).
    #[must_use]
    pub fn snapshot_enabled(&self) -> bool {
        self.inner.snapshot_path.is_some()
    }

    /// The periodic snapshot: written on the caller's thread as the background save, and
    /// skipped when one (a BGSAVE) runs already.
    ///
    /// # Errors
    /// [`Error::SnapshotIo`] when the file cannot be written.
    pub fn save_snapshot_periodic(&self) -> Result<()> {
        let Some(path) = &self.inner.snapshot_path else {
            return Ok(());
        };
        let clock = &self.inner.clock;
        if !self.inner.saves.claim_background(clock.monotonic_ns()) {
            return Ok(());
        }
        let saved = save(self, path);
        self.inner
            .saves
            .release_background(saved.is_ok(), clock.monotonic_ns());
        saved
    }

    /// The snapshot the engine writes at shutdown: [`Cache::save_snapshot`], unless SHUTDOWN
    /// NOSAVE asked for none.
    ///
    /// # Errors
    /// [`Error::SnapshotIo`] when the file cannot be written.
    pub fn save_snapshot_at_shutdown(&self) -> Result<()> {
        if self.inner.saves.skip_at_shutdown.load(Ordering::Relaxed) {
            tracing::info!("SHUTDOWN NOSAVE: no cache snapshot at shutdown");
            return Ok(());
        }
        self.save_snapshot()
    }

    /// BGSAVE: starts writing the snapshot on a thread of its own and returns at once. The
    /// keyspace is copied under the exclusive gate there (commands wait for the copy, as for
    /// KEYS), then encoded and written while commands run.
    pub(crate) fn start_background_save(&self) -> std::result::Result<(), BackgroundRefused> {
        let Some(path) = self.inner.snapshot_path.clone() else {
            return Err(BackgroundRefused::NotConfigured);
        };
        let saves = &self.inner.saves;
        if !saves.claim_background(self.inner.clock.monotonic_ns()) {
            return Err(BackgroundRefused::AlreadyRunning);
        }
        let cache = self.clone();
        // IMPORTANT: detached, and owned through `Saves`: the slot stays taken until the
        // thread ends, and the engine's shutdown snapshot waits on `writing` for it.
        let spawned = std::thread::Builder::new()
            .name("bgsave".to_owned())
            .spawn(move || {
                let saved = save(&cache, &path);
                if let Err(e) = &saved {
                    tracing::error!(error = %e, "background cache snapshot (BGSAVE) failed");
                }
                cache
                    .inner
                    .saves
                    .release_background(saved.is_ok(), cache.inner.clock.monotonic_ns());
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the background save's thread");
                saves.release_background(false, self.inner.clock.monotonic_ns());
                Err(BackgroundRefused::NoThread)
            }
        }
    }
}

/// Loads the snapshot if present; one that cannot be read or decoded is logged and renamed
/// aside ([`set_aside`]), so that the next save does not overwrite it.
pub(crate) fn load_or_set_aside(cache: &Cache, path: &Path) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            set_aside(cache, path, &format!("cannot read it: {e}"));
            return;
        }
    };
    match decode(&bytes) {
        Ok(records) => {
            let inner = cache.inner();
            let now = inner.clock.now_ms();
            let mut ctx = inner.ks.exclusive(0, now);
            let n = records.len();
            let mut libraries = Vec::new();
            for r in records {
                if r.expire_at_ms != 0 && r.expire_at_ms <= now {
                    continue;
                }
                // Redis never keeps an empty hash, list, set or sorted set: one in the file
                // (only a damaged or hand-made one has it) is no key.
                let empty = match &r.value {
                    RecordValue::Hash(h) => h.is_empty(),
                    RecordValue::List(l) => l.is_empty(),
                    RecordValue::Set(m) => m.is_empty(),
                    RecordValue::ZSet(z) => z.iter().all(|(_, score)| score.is_nan()),
                    RecordValue::Str(_) | RecordValue::Stream(_) | RecordValue::Library(_) => false,
                };
                if empty {
                    continue;
                }
                let value = match r.value {
                    RecordValue::Library(code) => {
                        libraries.push(code);
                        continue;
                    }
                    RecordValue::Str(s) => Value::Str(s),
                    // A hash or set gets the encoding Redis's loader gives one read field by
                    // field (the file does not record it).
                    RecordValue::Hash(h) => {
                        let h = HashValue::from_pairs(
                            h.into_iter().map(|(a, b)| (Bytes::from(a), Bytes::from(b))),
                            inner.compact().hash,
                        );
                        Value::Hash(Box::new(h))
                    }
                    RecordValue::List(l) => {
                        Value::List(Box::new(l.into_iter().map(Bytes::from).collect()))
                    }
                    RecordValue::Set(s) => {
                        let s = SetValue::from_members(
                            s.into_iter().map(Bytes::from).collect(),
                            inner.compact().intset_entries,
                        );
                        Value::Set(Box::new(s))
                    }
                    RecordValue::ZSet(z) => {
                        // A NaN score can only come from a damaged file; such a member is
                        // skipped rather than break the order.
                        let mut z: ZSetValue = z
                            .into_iter()
                            .filter(|(_, s)| !s.is_nan())
                            .map(|(m, s)| (Bytes::from(m), s))
                            .collect();
                        z.fit_encoding(inner.zset_listpack());
                        Value::ZSet(Box::new(z))
                    }
                    RecordValue::Stream(x) => Value::Stream(Box::new(stream_value(x))),
                };
                let db = usize::try_from(r.db).unwrap_or(usize::MAX);
                if db < DATABASES {
                    ctx.put_in(
                        db,
                        &r.key,
                        Entry {
                            expire_at_ms: r.expire_at_ms,
                            ..Entry::new(value)
                        },
                    );
                }
            }
            cache.finish_external(ctx);
            for code in libraries {
                if let Err(e) = crate::cache::script::restore_library(inner, &code) {
                    tracing::error!(error = %e, "a FUNCTION library in the cache snapshot did not load; left out");
                }
            }
            tracing::info!(path = %path.display(), keys = n, "cache snapshot loaded");
        }
        Err(reason) => set_aside(cache, path, &reason),
    }
}

/// Renames a snapshot that did not load to `cache.snapshot.corrupt-<ms>` (the clock's
/// milliseconds, so one set aside earlier is never replaced) and logs why.
fn set_aside(cache: &Cache, path: &Path, reason: &str) {
    let aside = path.with_extension(format!("snapshot.corrupt-{}", cache.inner().clock.now_ms()));
    let err = Error::SnapshotCorrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    tracing::error!(error = %err, aside = %aside.display(), "cache snapshot set aside; starting empty");
    if let Err(e) = std::fs::rename(path, &aside) {
        tracing::error!(error = %e, "cannot move the snapshot aside");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_truncation_is_rejected() {
        let records = vec![Record {
            db: 1,
            key: b"k".to_vec(),
            expire_at_ms: 5,
            value: RecordValue::Str(b"v".to_vec()),
        }];
        let bytes = encode(&records).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 1);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x40;
            assert!(decode(&flipped).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn empty_collections_in_a_file_are_no_keys() {
        let record = |key: &[u8], value| Record {
            db: 0,
            key: key.to_vec(),
            expire_at_ms: 0,
            value,
        };
        let records = vec![
            record(b"h", RecordValue::Hash(Vec::new())),
            record(b"l", RecordValue::List(Vec::new())),
            record(b"s", RecordValue::Set(Vec::new())),
            record(b"z", RecordValue::ZSet(vec![(b"m".to_vec(), f64::NAN)])),
            record(b"kept", RecordValue::List(vec![b"x".to_vec()])),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.snapshot");
        std::fs::write(&path, encode(&records).unwrap()).unwrap();
        let cache = Cache::new(
            crate::cache::CacheConfig::default(),
            crate::clock::ManualClock::shared(1_000),
        );
        load_or_set_aside(&cache, &path);
        let exists = |key: &str| {
            cache.execute(
                0,
                &[
                    Bytes::from_static(b"EXISTS"),
                    Bytes::copy_from_slice(key.as_bytes()),
                ],
            )
        };
        for key in ["h", "l", "s", "z"] {
            assert_eq!(exists(key), crate::cache::Frame::Integer(0), "{key}");
        }
        assert_eq!(exists("kept"), crate::cache::Frame::Integer(1));
    }
}
