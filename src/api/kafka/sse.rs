//! The SSE tail: `GET /kafka/topics/{topic}/stream?partition=P&from=earliest|latest|OFFSET`.
//!
//! One event per record with `id: partition:offset`; a reconnect carrying `Last-Event-ID` for
//! the same partition resumes right after it. The stream waits for appends on the partition's
//! `watch` channel (no polling) and sends keep-alive comments while idle; it ends when the
//! server shuts down. A reader overtaken by retention jumps to the new log start, as
//! `auto.offset.reset = earliest` would.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use super::v2::{Format, render_embedded};
use super::{KafkaError, blocking, iso8601};
use crate::api::AppState;
use crate::log::{Error, Offset, Partition, StoredRecord};
use crate::realtime::ConnectionGuard;

/// Interval of keep-alive comments on an idle stream, in ms.
pub(crate) const SSE_KEEP_ALIVE_MS: u64 = 15_000;
/// Bytes read from the log per refill of a stream's buffer.
const SSE_READ_BYTES: usize = 1024 * 1024;

/// The SSE route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/kafka/topics/{topic}/stream", get(stream))
}

/// Query of the tail.
#[derive(Debug, Deserialize)]
struct StreamQuery {
    /// Partition (default 0).
    partition: Option<i64>,
    /// `earliest`, `latest` (default) or an offset.
    from: Option<String>,
    /// `json` (default: JSON when the bytes parse, else a string) or `binary` (base64).
    format: Option<String>,
}

async fn stream(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let p = q.partition.unwrap_or(0);
    let p = u32::try_from(p).map_err(|_| {
        KafkaError::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("partition {p} of topic {topic} not found"),
        )
    })?;
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("binary") => Format::Binary,
        Some(other) => {
            return Err(KafkaError::unprocessable(format!(
                "format {other:?} is not json or binary"
            )));
        }
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|id| id.split_once(':'))
        .and_then(|(part, off)| {
            Some((
                part.trim().parse::<u32>().ok()?,
                off.trim().parse::<u64>().ok()?,
            ))
        })
        .filter(|(part, _)| *part == p)
        .map(|(_, off)| off.saturating_add(1));
    let from = q.from.clone();
    let t = topic.clone();
    let (partition, start, skipped_from) = blocking(&state, move |l| {
        let partition = l.partition(&t, p)?;
        let (earliest, latest) = (partition.earliest_offset()?, partition.latest_offset());
        let start = match (resume, from.as_deref()) {
            // A resume point retention removed (or past the end of a recreated topic) goes on
            // from the nearest end, announced by a `resync` event.
            (Some(next), _) => next.clamp(earliest, latest),
            (None, None | Some("latest")) => latest,
            (None, Some("earliest")) => earliest,
            (None, Some(n)) => {
                let offset = n.parse::<u64>().map_err(|_| Error::ConfigInvalid {
                    name: "from".into(),
                    value: n.to_owned(),
                    reason: "not earliest, latest or an offset".into(),
                })?;
                if offset < earliest || offset > latest {
                    return Err(Error::OffsetOutOfRange {
                        topic: t.clone(),
                        partition: p,
                        offset,
                        earliest,
                        latest,
                    });
                }
                offset
            }
        };
        Ok((partition, start, resume.filter(|next| *next != start)))
    })
    .await?;
    // Counted with every long-lived stream of the HTTP listener until it ends.
    let Some(slot) = state.engine.realtime().try_connect() else {
        return Ok(crate::api::realtime::over_capacity_sse());
    };
    let rx = partition.subscribe();
    let tail = Tail {
        _slot: slot,
        topic,
        partition,
        next: start,
        rx,
        buf: VecDeque::new(),
        format,
        resync: skipped_from,
    };
    let mut shutdown = state.shutdown.clone();
    let events = futures::stream::unfold(tail, |mut t| async move {
        let event = t.next_event().await?;
        Some((Ok::<Event, Infallible>(event), t))
    });
    // The stream ends at shutdown instead of holding graceful shutdown up until its timeout.
    let events = crate::api::realtime::after_retry(&state, events)
        .take_until(async move { shutdown.wait().await });
    Ok(crate::api::realtime::unbuffered(
        Sse::new(events)
            .keep_alive(
                KeepAlive::new()
                    .interval(Duration::from_millis(SSE_KEEP_ALIVE_MS))
                    .text("keep-alive"),
            )
            .into_response(),
    ))
}

/// State of one tail.
struct Tail {
    /// Its place under the listener's stream limit, held until the tail ends.
    _slot: ConnectionGuard,
    /// Topic name, for the event payload.
    topic: String,
    /// The partition.
    partition: Arc<Partition>,
    /// Next offset to read.
    next: Offset,
    /// Wakes on append.
    rx: tokio::sync::watch::Receiver<Offset>,
    /// Records read but not yet sent.
    buf: VecDeque<StoredRecord>,
    /// Key and value rendering.
    format: Format,
    /// The offset the tail was to read next when it had to move to `next` instead (retention
    /// removed it, or it is past the end): a `resync` event is due.
    resync: Option<Offset>,
}

impl Tail {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(requested) = self.resync.take() {
                return Some(self.resync_event(requested));
            }
            if let Some(r) = self.buf.pop_front() {
                return Some(self.event(&r));
            }
            // Mark the current end as seen before reading, so an append racing the read wakes us.
            self.rx.borrow_and_update();
            let partition = self.partition.clone();
            let next = self.next;
            let read = tokio::task::spawn_blocking(move || partition.read(next, SSE_READ_BYTES))
                .await
                .ok()?;
            match read {
                Ok(records) if records.is_empty() => self.rx.changed().await.ok()?,
                Ok(records) => {
                    self.next = records.last().map_or(self.next, |r| r.offset + 1);
                    self.buf.extend(records);
                }
                Err(Error::OffsetOutOfRange {
                    earliest, latest, ..
                }) => {
                    self.resync = Some(self.next);
                    self.next = if self.next < earliest {
                        earliest
                    } else {
                        latest
                    };
                }
                Err(e) => {
                    tracing::error!(topic = %self.topic, error = %e, "SSE tail stopped");
                    return None;
                }
            }
        }
    }

    /// `event: resync` for a tail that could not read from `requested` and goes on from
    /// `next`, with `id:` the offset before `next`, so a reconnect resumes there (none when
    /// `next` is 0: there is no record before it).
    fn resync_event(&self, requested: Offset) -> Event {
        let data = json!({
            "reason": "the requested offset is not in the partition; records were skipped",
            "topic": self.topic,
            "partition": self.partition.id(),
            "requested": requested,
            "next": self.next,
        });
        let event = Event::default().event("resync").data(data.to_string());
        match self.next.checked_sub(1) {
            Some(last) => event.id(format!("{}:{last}", self.partition.id())),
            None => event,
        }
    }

    fn event(&self, r: &StoredRecord) -> Event {
        let headers: serde_json::Map<String, serde_json::Value> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.key.clone(),
                    render_embedded(Format::Binary, h.value.as_ref()),
                )
            })
            .collect();
        let data = json!({
            "topic": self.topic,
            "partition": self.partition.id(),
            "offset": r.offset,
            "timestamp": iso8601::format_ms(r.timestamp_ms),
            "key": render_embedded(self.format, r.key.as_ref()),
            "value": render_embedded(self.format, r.value.as_ref()),
            "headers": headers,
        });
        Event::default()
            .id(format!("{}:{}", self.partition.id(), r.offset))
            .event("record")
            .data(data.to_string())
    }
}
