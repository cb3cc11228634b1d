//! One batch through one flow, synchronously: parse, transform, route, write to the sinks,
//! dead-letter failures, then commit history documents together with the consumer offsets.
//!
//! Runs inside `spawn_blocking`. Order matters for delivery guarantees: cache writes, forwards
//! and dead letters happen before the history commit, and the commit carries the offsets, so a
//! crash at any point re-reads the batch (at-least-once for the cache, forwards and dead letters,
//! which are idempotent or tolerate repeats) and never duplicates or loses a history write.
//! A record's history writes are checked (`HistorySink::check`) before any of its sink writes,
//! so a document history would refuse for its content is never cached or forwarded.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::DEAD_LETTER_ERROR_BYTES_MAX;
use super::config::CacheEncoding;
use super::error::{Error, Result, SeamError};
use super::json::Parser;
use super::plan::{FlowPlan, PlannedSinkKind};
use super::seams::{
    CacheValue, CacheWrite, CommitOffset, HistoryCommitError, HistoryWrite, HistoryWriteMode,
    Seams, SourceBatch, SourceRecord, TopicWrite, Transform,
};

/// A planned flow with its JOLT specs compiled: everything needed to process batches.
#[derive(Clone)]
pub(crate) struct CompiledFlow {
    /// The checked configuration.
    pub(crate) plan: FlowPlan,
    /// One compiled transform per step, applied in order.
    pub(crate) transforms: Vec<Arc<dyn Transform>>,
}

impl std::fmt::Debug for CompiledFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFlow")
            .field("plan", &self.plan)
            .field("transforms", &self.transforms.len())
            .finish()
    }
}

/// What processing one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    /// Records read.
    pub(crate) records_in: u64,
    /// Records written to every sink they were routed to.
    pub(crate) records_out: u64,
    /// Records dead-lettered.
    pub(crate) records_failed: u64,
    /// Records no route matched and no `unmatched` sink took.
    pub(crate) records_unmatched: u64,
    /// The offsets committed with history (empty for an empty batch).
    pub(crate) committed: Vec<CommitOffset>,
}

/// The writes one record produces, prepared before any of them is made.
#[derive(Debug, Default)]
struct Prepared {
    /// (sink index, write).
    cache: Vec<(usize, CacheWrite)>,
    /// (sink index, topic, write).
    topic: Vec<(usize, String, TopicWrite)>,
    history: Vec<HistoryWrite>,
}

/// The TTL a cache write of a record created at `created_ms` gets at wall time `now_ms` from
/// the sink's `ttl_ms`: the TTL left when it is counted from the record's create time, so live
/// processing and a rebuild at start give a key the same expiry and the cache stays a function of
/// the log. `Some(None)` keeps the entry without expiry; `None` means the entry has already
/// expired and must not be written. A create time in the future counts as now.
pub(crate) fn cache_ttl(now_ms: i64, ttl_ms: Option<u64>, created_ms: i64) -> Option<Option<u64>> {
    let Some(ttl) = ttl_ms else {
        return Some(None);
    };
    let age = u64::try_from(now_ms.saturating_sub(created_ms)).unwrap_or(0);
    match ttl.checked_sub(age) {
        Some(left) if left > 0 => Some(Some(left)),
        _ => None,
    }
}

/// Processes `batch` for `flow` and commits it at wall time `now_ms` (cache TTLs count from
/// each record's create time, [`cache_ttl`]).
///
/// # Errors
/// [`Error::Engine`] when a seam fails fatally; nothing of the batch was committed then.
pub(crate) fn process_batch(
    flow: &CompiledFlow,
    seams: &Seams,
    batch: &SourceBatch,
    now_ms: i64,
) -> Result<BatchOutcome> {
    let name = flow.plan.name();
    let config = flow.plan.config();
    let fatal = |stage: &'static str, source: SeamError| Error::Engine {
        flow: name.to_owned(),
        stage,
        source,
    };
    let mut outcome = BatchOutcome::default();
    if batch.records.is_empty() {
        return Ok(outcome);
    }
    let mut letters = Vec::new();
    // Every history write of a record that has not failed, and the index of its record.
    let mut docs: Vec<HistoryWrite> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    // Records delivered to their cache and topic sinks; a later history rejection removes one.
    let mut delivered: Vec<usize> = Vec::new();
    let mut parser = Parser::default();
    for (index, record) in batch.records.iter().enumerate() {
        outcome.records_in += 1;
        let prepared = match prepare(flow, &mut parser, record, now_ms) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => {
                outcome.records_unmatched += 1;
                continue;
            }
            Err(reason) => {
                letters.push(dead_letter(name, record, &reason));
                outcome.records_failed += 1;
                continue;
            }
        };
        // History's own checks come first: a record it would refuse is dead-lettered before
        // any other sink sees it (a rebuild makes the same check, so it never caches it either).
        if let Some(reason) = prepared
            .history
            .iter()
            .find_map(|write| seams.history.check(write).err())
        {
            let reason = format!("history rejected the record: {reason}");
            letters.push(dead_letter(name, record, &reason));
            outcome.records_failed += 1;
            continue;
        }
        let mut rejected = None;
        for (sink, write) in prepared.cache {
            match seams.cache.write(write) {
                Ok(()) => {}
                Err(e) if e.is_fatal() => return Err(fatal("cache write", e)),
                Err(e) => {
                    rejected = Some(rejection(flow, sink, &e));
                    break;
                }
            }
        }
        if rejected.is_none() {
            for (sink, topic, write) in prepared.topic {
                match seams.topic.produce(&topic, write) {
                    Ok(()) => {}
                    Err(e) if e.is_fatal() => return Err(fatal("topic forward", e)),
                    Err(e) => {
                        rejected = Some(rejection(flow, sink, &e));
                        break;
                    }
                }
            }
        }
        if let Some(reason) = rejected {
            letters.push(dead_letter(name, record, &reason));
            outcome.records_failed += 1;
            continue;
        }
        delivered.push(index);
        owners.extend(std::iter::repeat_n(index, prepared.history.len()));
        docs.extend(prepared.history);
    }
    outcome.committed = next_offsets(batch);

    // Commit; a rejected document dead-letters its record and the rest is retried. Each retry
    // removes at least one write, so the loop runs at most `docs.len() + 1` times.
    let mut attempts = docs.len() + 1;
    loop {
        if !letters.is_empty() {
            seams
                .dead_letter
                .send(&config.dead_letter, std::mem::take(&mut letters))
                .map_err(|e| fatal("dead-letter send", SeamError::fatal(e.message)))?;
        }
        match seams
            .history
            .commit(&config.source.group, &mut docs, &outcome.committed)
        {
            Ok(()) => break,
            Err(HistoryCommitError::Fatal(message)) => {
                return Err(fatal("history commit", SeamError::fatal(message)));
            }
            Err(HistoryCommitError::Rejected { index, message }) => {
                attempts = attempts.saturating_sub(1);
                let record_index = owners.get(index).copied();
                let (Some(record_index), true) = (record_index, attempts > 0) else {
                    return Err(fatal(
                        "history commit",
                        SeamError::fatal(format!(
                            "rejection of unknown document {index}: {message}"
                        )),
                    ));
                };
                // The whole record fails: drop all of its history writes.
                let mut keep = owners.iter().map(|r| *r != record_index);
                docs.retain(|_| keep.next().unwrap_or(false));
                owners.retain(|r| *r != record_index);
                delivered.retain(|r| *r != record_index);
                if let Some(record) = batch.records.get(record_index) {
                    let reason = format!("history rejected the record: {message}");
                    letters.push(dead_letter(name, record, &reason));
                }
                outcome.records_failed += 1;
            }
        }
    }
    outcome.records_out = delivered.len() as u64;
    Ok(outcome)
}

/// Parses, transforms and routes one record and renders every write it leads to. `Ok(None)`
/// means no route matched and there is no `unmatched` sink.
fn prepare(
    flow: &CompiledFlow,
    parser: &mut Parser,
    record: &SourceRecord,
    now_ms: i64,
) -> std::result::Result<Option<Prepared>, String> {
    let bytes = record
        .value
        .as_deref()
        .ok_or_else(|| "not JSON: the record has no value".to_owned())?;
    let mut doc = parser.parse(bytes).map_err(|e| format!("not JSON: {e}"))?;
    for (i, transform) in flow.transforms.iter().enumerate() {
        doc = transform
            .apply(&doc)
            .map_err(|e| format!("transform step {i} failed: {e}"))?;
    }
    let plan = &flow.plan;
    let mut targets: Vec<usize> = if plan.routes.is_empty() {
        (0..plan.sinks.len()).collect()
    } else {
        let mut hit = Vec::new();
        for route in &plan.routes {
            if route.conditions.iter().all(|c| c.matches(&doc)) {
                hit.extend(route.sinks.iter().copied());
            }
        }
        if hit.is_empty() {
            hit.extend(plan.unmatched.iter().copied());
        }
        hit
    };
    if targets.is_empty() {
        return Ok(None);
    }
    // A sink named by two matching routes still gets the record once, in declaration order.
    targets.sort_unstable();
    targets.dedup();
    let mut out = Prepared::default();
    for index in targets {
        let Some(sink) = plan.sinks.get(index) else {
            continue;
        };
        let in_sink = |e: String| format!("sink `{}`: {e}", sink.name);
        match &sink.kind {
            PlannedSinkKind::Cache {
                key,
                value,
                encoding,
                ttl_ms,
            } => {
                let key = key.render(&doc).map_err(in_sink)?;
                let selected = match value {
                    None => &doc,
                    Some(path) => path.lookup(&doc).ok_or_else(|| {
                        in_sink(format!("value path `{}` is missing", path.as_str()))
                    })?,
                };
                let value = cache_value(selected, *encoding, bytes.len()).map_err(in_sink)?;
                // An entry whose TTL ran out before the flow (or a rebuild) reached it is not
                // written.
                if let Some(ttl_ms) = cache_ttl(now_ms, *ttl_ms, record.timestamp_ms) {
                    out.cache.push((index, CacheWrite { key, value, ttl_ms }));
                }
            }
            PlannedSinkKind::History {
                db,
                collection,
                upsert_key,
            } => {
                let mode = match upsert_key {
                    None => HistoryWriteMode::Insert,
                    Some(t) => HistoryWriteMode::Upsert {
                        key: t.render(&doc).map_err(in_sink)?,
                    },
                };
                out.history.push(HistoryWrite {
                    db: db.clone(),
                    collection: collection.clone(),
                    mode,
                    doc: Value::Null,
                });
            }
            PlannedSinkKind::Topic { topic, key } => {
                let key = match key {
                    None => record.key.clone(),
                    Some(t) => Some(t.render(&doc).map_err(in_sink)?.into_bytes()),
                };
                let value = serde_json::to_vec(&doc).map_err(|e| in_sink(e.to_string()))?;
                out.topic.push((
                    index,
                    topic.clone(),
                    TopicWrite {
                        key,
                        value: Some(value),
                        // The source record's headers and create time travel with it, as
                        // Kafka Streams' `to()` and NiFi's PublishKafka (attributes as
                        // headers) keep them.
                        headers: record.headers.clone(),
                        timestamp_ms: Some(record.timestamp_ms),
                    },
                ));
            }
        }
    }
    // Documents are filled in last so that the final one takes `doc` without a copy.
    let last = out.history.len().saturating_sub(1);
    for (i, write) in out.history.iter_mut().enumerate() {
        write.doc = if i == last {
            std::mem::take(&mut doc)
        } else {
            doc.clone()
        };
    }
    Ok(Some(out))
}

/// The dead-letter reason for a sink's rejection.
fn rejection(flow: &CompiledFlow, sink: usize, error: &SeamError) -> String {
    let name = flow.plan.sinks.get(sink).map_or("?", |s| s.name.as_str());
    format!("sink `{name}` rejected the record: {error}")
}

/// The cache value for `selected` under `encoding`; `text_bytes_hint` is the expected length of
/// a string value's JSON text (the record's own length: a transform mostly keeps or drops).
fn cache_value(
    selected: &Value,
    encoding: CacheEncoding,
    text_bytes_hint: usize,
) -> std::result::Result<CacheValue, String> {
    match encoding {
        CacheEncoding::String => Ok(CacheValue::String(match selected {
            Value::String(s) => s.clone(),
            other => json_text(other, text_bytes_hint),
        })),
        CacheEncoding::Hash => match selected {
            Value::Object(map) => Ok(CacheValue::Hash(
                map.iter()
                    .map(|(k, v)| (k.clone(), scalar_text(v)))
                    .collect(),
            )),
            _ => Err("a hash value must be a JSON object".into()),
        },
    }
}

/// `value` as JSON text, written into one buffer of `capacity` bytes (grown if needed) rather
/// than grown from empty.
fn json_text(value: &Value, capacity: usize) -> String {
    let mut text = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut text, value).map(|()| String::from_utf8(text)) {
        Ok(Ok(text)) => text,
        // Writing to a `Vec` does not fail and serde_json writes UTF-8; the slow path is only
        // here so that neither needs an `expect`.
        _ => value.to_string(),
    }
}

/// A string's own text; anything else as JSON text.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The next offset per partition after `batch` (one entry per partition present).
fn next_offsets(batch: &SourceBatch) -> Vec<CommitOffset> {
    let mut next: BTreeMap<(&str, u32), u64> = BTreeMap::new();
    for r in &batch.records {
        let slot = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *slot = (*slot).max(r.offset.saturating_add(1));
    }
    next.into_iter()
        .map(|((topic, partition), next_offset)| CommitOffset {
            topic: topic.to_owned(),
            partition,
            next_offset,
            topic_id: batch.topic_id.clone(),
        })
        .collect()
}

/// The dead letter for `record`: original key, value, create time and headers, then the error
/// and the record's position in headers of their own (after the record's, so a consumer reading
/// a header's last value gets ours).
pub(crate) fn dead_letter(flow: &str, record: &SourceRecord, error: &str) -> TopicWrite {
    let mut error = error.to_owned();
    if error.len() > DEAD_LETTER_ERROR_BYTES_MAX {
        let mut cut = DEAD_LETTER_ERROR_BYTES_MAX;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
    }
    let mut headers = Vec::with_capacity(record.headers.len() + 5);
    headers.extend(record.headers.iter().cloned());
    headers.extend([
        ("error".into(), Some(error.into_bytes())),
        ("flow".into(), Some(flow.as_bytes().to_vec())),
        (
            "source.topic".into(),
            Some(record.topic.as_bytes().to_vec()),
        ),
        (
            "source.partition".into(),
            Some(record.partition.to_string().into_bytes()),
        ),
        (
            "source.offset".into(),
            Some(record.offset.to_string().into_bytes()),
        ),
    ]);
    TopicWrite {
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
        timestamp_ms: Some(record.timestamp_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::{DEAD_LETTER_ERROR_BYTES_MAX, cache_ttl, dead_letter};
    use crate::pipeline::seams::SourceRecord;

    fn error_header(error: &str) -> String {
        let record = SourceRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: 0,
            key: None,
            value: None,
            headers: Vec::new(),
        };
        let letter = dead_letter("f", &record, error);
        let (_, value) = letter
            .headers
            .into_iter()
            .find(|(name, _)| name == "error")
            .unwrap_or_default();
        String::from_utf8(value.unwrap_or_default()).unwrap_or_default()
    }

    /// An error of `DEAD_LETTER_ERROR_BYTES_MAX` bytes goes whole; one byte more is cut to the
    /// limit, and never inside a character.
    #[test]
    fn dead_letter_error_at_max_and_past_it() {
        let at_max = "e".repeat(DEAD_LETTER_ERROR_BYTES_MAX);
        assert_eq!(error_header(&at_max), at_max);
        let past = "e".repeat(DEAD_LETTER_ERROR_BYTES_MAX + 1);
        assert_eq!(error_header(&past), at_max);
        let straddling = format!("{}é", "e".repeat(DEAD_LETTER_ERROR_BYTES_MAX - 1));
        assert_eq!(
            error_header(&straddling),
            "e".repeat(DEAD_LETTER_ERROR_BYTES_MAX - 1)
        );
    }

    #[test]
    fn a_write_gets_the_ttl_left_since_the_records_creation_and_none_once_it_ran_out() {
        assert_eq!(cache_ttl(10_400, Some(1000), 10_000), Some(Some(600)));
        assert_eq!(cache_ttl(10_999, Some(1000), 10_000), Some(Some(1)));
        assert_eq!(cache_ttl(11_000, Some(1000), 10_000), None);
        assert_eq!(cache_ttl(99_000, Some(1000), 10_000), None);
        // Without a TTL the entry never expires; a create time ahead of now counts as now.
        assert_eq!(cache_ttl(99_000, None, 10_000), Some(None));
        assert_eq!(cache_ttl(9_000, Some(1000), 10_000), Some(Some(1000)));
    }
}
