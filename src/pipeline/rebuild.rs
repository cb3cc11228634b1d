//! Rebuilding the cache, a materialised view of the log, when the process starts.
//!
//! Each flow with a cache sink replays its source from the earliest retained offset up to the
//! offsets it has committed (and reads no further: `Source::stop_at`), leaving out the offsets
//! the flow skipped (`HistorySink::skipped`: a `latest` start's backlog never reached the
//! cache, so the rebuild does not write it either), running the same transform, routes and
//! templates as live processing but writing only to the cache: history already holds those
//! records, and their forwards and dead letters were sent the first time. Live processing then resumes from the
//! committed offsets, so every key derived from a record still in the log answers as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::shutdown::ShutdownSignal;

use super::config::PipelineConfig;
use super::error::{Error, Result, SeamError};
use super::process::process_batch;
use super::runner::compile;
use super::seams::{
    CommitOffset, DeadLetter, HistoryCommitError, HistorySink, HistoryWrite, Seams, SourceBatch,
    SourceStart, TopicSink, TopicWrite,
};

/// Replays every cache-fed flow up to its committed offsets; returns the records replayed.
/// Cache TTLs are what remains at `clock`'s wall time of the sink's TTL counted from each
/// record's create time. Blocking: call it from `spawn_blocking` or a plain thread.
///
/// `shutdown` is checked before every batch: once it has fired the replay stops (after at
/// most the batch under way) and returns what it replayed so far, so a SIGTERM during a long
/// rebuild does not wait for the rest of it.
///
/// # Errors
/// An invalid configuration, or a source or cache failure during the replay.
pub fn rebuild_cache(
    config: &PipelineConfig,
    seams: &Seams,
    clock: &SharedClock,
    shutdown: &ShutdownSignal,
) -> Result<u64> {
    let replay_seams = Seams {
        history: Arc::new(Replay {
            history: seams.history.clone(),
        }),
        topic: Arc::new(Discard),
        dead_letter: Arc::new(Discard),
        ..seams.clone()
    };
    let mut replayed = 0u64;
    for flow in compile(config, seams)? {
        let config = flow.plan.config();
        if !config.sinks.iter().any(|s| s.cache.is_some()) {
            continue;
        }
        let engine = |stage: &'static str, source: SeamError| Error::Engine {
            flow: flow.plan.name().to_owned(),
            stage,
            source,
        };
        let committed = seams
            .history
            .committed(&config.source.group, &config.source.topic)
            .map_err(|e| engine("read committed offsets", e))?;
        if committed.is_empty() {
            continue;
        }
        // Records the flow skipped (a `latest` start's backlog) never reached the cache: each
        // partition is read from the first offset after the skipped ranges at its start, and
        // records in later ranges are left out.
        let skipped = seams
            .history
            .skipped(&config.source.group, &config.source.topic)
            .map_err(|e| engine("read skipped offsets", e))?;
        let is_skipped = |partition: u32, offset: u64| {
            skipped
                .get(&partition)
                .is_some_and(|ranges| ranges.iter().any(|r| r.0 <= offset && offset < r.1))
        };
        let mut from = BTreeMap::new();
        let mut ends = BTreeMap::new();
        for (&partition, &end) in &committed {
            // The ranges are sorted and disjoint: one pass finds the end of those at the start.
            let at = skipped.get(&partition).map_or(0, |ranges| {
                ranges
                    .iter()
                    .fold(0, |at, r| if r.0 <= at { at.max(r.1) } else { at })
            });
            // A partition with nothing left to replay is not read at all.
            if at < end {
                from.insert(partition, at);
                ends.insert(partition, end);
            }
        }
        if ends.is_empty() {
            continue;
        }
        let mut source = seams
            .source
            .open(&config.source, &SourceStart::Replay(from))
            .map_err(|e| engine("open source", e))?;
        // The flow's lag, past the committed offsets, is not read at start.
        source.stop_at(&ends);
        let max = usize::try_from(config.batch_records).unwrap_or(1);
        loop {
            if shutdown.is_triggered() {
                return Ok(replayed);
            }
            let batch = source.poll(max, 0).map_err(|e| engine("poll", e))?;
            if batch.records.is_empty() {
                break;
            }
            // Records past the committed offsets (the flow's lag) are left to live processing; a
            // source that does not stop at them returns them too.
            let records: Vec<_> = batch
                .records
                .into_iter()
                .filter(|r| {
                    ends.get(&r.partition).is_some_and(|end| r.offset < *end)
                        && !is_skipped(r.partition, r.offset)
                })
                .collect();
            replayed += records.len() as u64;
            process_batch(
                &flow,
                &replay_seams,
                &SourceBatch {
                    records,
                    end_offsets: BTreeMap::new(),
                    topic_id: batch.topic_id,
                },
                i64::try_from(clock.now_ms()).unwrap_or(i64::MAX),
            )?;
        }
    }
    Ok(replayed)
}

/// The sinks a replay must not write to.
struct Discard;

/// History during a rebuild: checks documents as the live flow did (a record history refused
/// is not cached now either) and writes nothing.
struct Replay {
    history: Arc<dyn HistorySink>,
}

impl HistorySink for Replay {
    fn check(&self, write: &HistoryWrite) -> std::result::Result<(), String> {
        self.history.check(write)
    }

    fn committed(
        &self,
        _group: &str,
        _topic: &str,
    ) -> std::result::Result<BTreeMap<u32, u64>, SeamError> {
        Ok(BTreeMap::new())
    }

    fn commit(
        &self,
        _group: &str,
        _docs: &mut [HistoryWrite],
        _offsets: &[CommitOffset],
    ) -> std::result::Result<(), HistoryCommitError> {
        Ok(())
    }

    /// A replay writes nothing.
    fn persist(&self) -> std::result::Result<(), SeamError> {
        Ok(())
    }
}

impl TopicSink for Discard {
    fn produce(&self, _topic: &str, _record: TopicWrite) -> std::result::Result<(), SeamError> {
        Ok(())
    }
}

impl DeadLetter for Discard {
    fn send(&self, _topic: &str, _letters: Vec<TopicWrite>) -> std::result::Result<(), SeamError> {
        Ok(())
    }
}
