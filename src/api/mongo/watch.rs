//! Change streams over Server-Sent Events: `GET /mongo/watch?db=&coll=&fullDocument=
//! &fullDocumentBeforeChange=&showExpandedEvents=&resumeAfter=&startAfter=
//! &startAtOperationTime=&heartbeatMs=&pipeline=`, where `pipeline` is the stream's stages as a JSON array (Extended JSON, relaxed
//! or canonical), as a driver's `watch([...])` takes them.
//!
//! Each change event is an SSE message whose `id:` is its resume token (`_id._data`) and whose
//! data is the event in relaxed Extended JSON, so a browser `EventSource` reconnecting with
//! `Last-Event-ID` resumes right after the last event it received. When idle, a comment line
//! `: heartbeat <token>` plus an `id:` line carry the post-batch resume token (the `id:` line
//! moves `Last-Event-ID` forward without dispatching an event); a stream ended by an invalidate
//! its pipeline dropped sends `: end <token>` with the invalidate's token as `id:` last. Errors
//! (286 history lost or a token after the last event, invalid tokens, a refused pipeline stage)
//! are one `event: error` message with MongoDB's `{code, codeName, errmsg, errorLabels}`,
//! after which the stream ends.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use bson::Bson;
use futures::Stream;
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::DataApiError;
use crate::history::{
    self, ChangeStream, FullDocument, FullDocumentBeforeChange, WatchOptions, WatchScope,
    relaxed_extjson,
};
use crate::realtime::ConnectionGuard;

/// Default idle time before a heartbeat, in milliseconds.
pub(crate) const WATCH_HEARTBEAT_MS_DEFAULT: u64 = 15_000;
/// Smallest accepted `heartbeatMs`, so a client cannot make the server spin.
pub const WATCH_HEARTBEAT_MS_MIN: u64 = 10;
/// Largest accepted `heartbeatMs`.
pub const WATCH_HEARTBEAT_MS_MAX: u64 = 300_000;

/// Query parameters of the watch endpoint.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WatchQuery {
    db: Option<String>,
    coll: Option<String>,
    full_document: Option<String>,
    full_document_before_change: Option<String>,
    /// `true` or `false`.
    show_expanded_events: Option<String>,
    resume_after: Option<String>,
    start_after: Option<String>,
    /// `seconds` or `seconds.increment`.
    start_at_operation_time: Option<String>,
    heartbeat_ms: Option<u64>,
    /// The stream's pipeline: a JSON array of stage objects.
    pipeline: Option<String>,
}

/// The `pipeline` parameter's stages. Its nesting is bounded by the JSON parser's recursion
/// limit and then by the store's document depth; its stage count by the store's
/// `PIPELINE_STAGES_MAX`.
fn pipeline_param(text: &str) -> Result<Vec<bson::Document>, DataApiError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DataApiError::invalid(format!("pipeline is not valid JSON: {e}")))?;
    let stages = super::ejson::to_bson(value)
        .map_err(|e| DataApiError::invalid(format!("invalid Extended JSON in pipeline: {e}")))?;
    let mut holder = bson::Document::new();
    holder.insert("pipeline", stages);
    Ok(super::opt_docs(&holder, "pipeline")?.unwrap_or_default())
}

fn invalid(message: impl Into<String>) -> Response {
    DataApiError::invalid(message).into_response()
}

/// `GET /mongo/watch`.
pub(crate) async fn watch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<WatchQuery>,
) -> Response {
    let scope = match (q.db, q.coll) {
        (None, None) => WatchScope::All,
        (Some(db), None) => WatchScope::Database(db),
        (Some(db), Some(coll)) => WatchScope::Collection { db, coll },
        (None, Some(_)) => return invalid("coll needs db"),
    };
    let pipeline = match q.pipeline.as_deref().map(pipeline_param).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return e.into_response(),
    };
    let parse = || -> Result<WatchOptions, history::Error> {
        let start_at_operation_time = q
            .start_at_operation_time
            .as_deref()
            .map(|s| {
                let (t, i) = s.split_once('.').unwrap_or((s, "0"));
                match (t.parse::<u32>(), i.parse::<u32>()) {
                    (Ok(time), Ok(increment)) => Ok(bson::Timestamp { time, increment }),
                    _ => Err(history::Error::BadValue(format!(
                        "startAtOperationTime `{s}` is not seconds[.increment]"
                    ))),
                }
            })
            .transpose()?;
        let last_event_id = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty());
        // A reconnect resumes after the last event received, whatever the URL says; after an
        // invalidate event only `startAfter` can continue.
        let (resume_after, start_after) = match last_event_id {
            Some(id) if history::is_invalidate_token(id) => (None, Some(id.to_owned())),
            Some(id) => (Some(id.to_owned()), None),
            None => (q.resume_after.clone(), q.start_after.clone()),
        };
        Ok(WatchOptions {
            resume_after,
            start_after,
            start_at_operation_time: if last_event_id.is_some() {
                None
            } else {
                start_at_operation_time
            },
            full_document: q
                .full_document
                .as_deref()
                .map(FullDocument::parse)
                .transpose()?
                .unwrap_or_default(),
            full_document_before_change: q
                .full_document_before_change
                .as_deref()
                .map(FullDocumentBeforeChange::parse)
                .transpose()?
                .unwrap_or_default(),
            show_expanded_events: match q.show_expanded_events.as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(history::Error::BadValue(format!(
                        "showExpandedEvents must be true or false, not `{other}`"
                    )));
                }
            },
            pipeline,
        })
    };
    let options = match parse() {
        Ok(o) => o,
        Err(e) => return DataApiError::from(e).into_response(),
    };
    let heartbeat_ms = q.heartbeat_ms.unwrap_or(WATCH_HEARTBEAT_MS_DEFAULT);
    if !(WATCH_HEARTBEAT_MS_MIN..=WATCH_HEARTBEAT_MS_MAX).contains(&heartbeat_ms) {
        return invalid(format!(
            "heartbeatMs must be in {WATCH_HEARTBEAT_MS_MIN}..={WATCH_HEARTBEAT_MS_MAX}"
        ));
    }
    // Counted with every long-lived stream of the HTTP listener until it ends.
    let Some(slot) = state.engine.realtime().try_connect() else {
        return crate::api::realtime::over_capacity_sse();
    };
    let history = state.engine.history().clone();
    let opened = tokio::task::spawn_blocking(move || history.watch(scope, options)).await;
    // Opening errors (including 286) are still delivered as an SSE error event, so an
    // EventSource sees them instead of reconnecting forever.
    let stream = match opened {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e),
        Err(join) => {
            tracing::error!(error = %join, "watch task failed");
            return DataApiError::from(history::Error::LockPoisoned).into_response();
        }
    };
    let events = events(stream, Duration::from_millis(heartbeat_ms), slot);
    let events = crate::api::realtime::after_retry(&state, events);
    crate::api::realtime::unbuffered(Sse::new(events).into_response())
}

/// The SSE event for a history error.
fn error_event(e: &history::Error) -> Event {
    let message = if e.is_client_error() {
        e.to_string()
    } else {
        "internal server error".to_owned()
    };
    let body = json!({"code": e.code(), "codeName": e.code_name(), "errmsg": message, "errorLabels": e.labels()});
    Event::default().event("error").data(body.to_string())
}

fn token_of(d: &bson::Document) -> String {
    d.get_str("_data").unwrap_or_default().to_owned()
}

/// Change events read per trip to a blocking thread.
const WATCH_READ_EVENTS: usize = 64;

/// A change stream between reads, with the events read and not yet sent.
struct Watching {
    stream: ChangeStream,
    ready: VecDeque<bson::Document>,
    /// The last `id:` sent (an event's or a heartbeat's token).
    sent: String,
    /// Its place under the listener's stream limit, held until it ends.
    _slot: ConnectionGuard,
}

/// The event stream: change events, heartbeats when idle, one error event then the end.
/// Reading the oplog (and decoding, and `updateLookup`'s reads) happens on a blocking thread;
/// only the wait for a commit is on the runtime, under the heartbeat's timeout.
fn events(
    opened: Result<ChangeStream, history::Error>,
    idle: Duration,
    slot: ConnectionGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = opened.map(|stream| Watching {
        stream,
        ready: VecDeque::new(),
        sent: String::new(),
        _slot: slot,
    });
    futures::stream::unfold(Some(start), move |state| async move {
        let mut w = match state? {
            Ok(w) => w,
            Err(e) => return Some((Ok(error_event(&e)), None)),
        };
        // A heartbeat is due `idle` after the last frame, however many commits out of the
        // stream's scope wake it meanwhile.
        let beat = tokio::time::sleep(idle);
        tokio::pin!(beat);
        loop {
            if let Some(event) = w.ready.pop_front() {
                let id = event.get_document("_id").map(token_of).unwrap_or_default();
                let data = relaxed_extjson(Bson::Document(event)).to_string();
                w.sent.clone_from(&id);
                return Some((Ok(Event::default().id(id).data(data)), Some(Ok(w))));
            }
            if w.stream.is_closed() {
                // The stream's pipeline may have dropped the invalidate that ended it: its
                // token still goes out as the last `id:`, so a reconnect starts after it
                // instead of resuming before it and ending again.
                let token = token_of(&w.stream.resume_token());
                if token == w.sent {
                    return None;
                }
                w.sent.clone_from(&token);
                let end = Event::default()
                    .id(token.clone())
                    .comment(format!("end {token}"));
                return Some((Ok(end), Some(Ok(w))));
            }
            let joined = tokio::task::spawn_blocking(move || {
                let read = w.stream.read_available(WATCH_READ_EVENTS);
                (w, read)
            })
            .await;
            let (back, read) = match joined {
                Ok(done) => done,
                Err(join) => {
                    tracing::error!(error = %join, "change stream read failed");
                    return Some((Ok(error_event(&history::Error::LockPoisoned)), None));
                }
            };
            w = back;
            let more = match read {
                Err(e) => return Some((Ok(error_event(&e)), None)),
                Ok((batch, _)) if !batch.events.is_empty() => {
                    w.ready.extend(batch.events);
                    continue;
                }
                Ok((_, more)) => more,
            };
            if w.stream.is_closed() {
                // Ended by an invalidate the pipeline dropped: no commit will come.
                continue;
            }
            if beat.is_elapsed() {
                return Some((Ok(heartbeat(&mut w)), Some(Ok(w))));
            }
            if more {
                continue;
            }
            tokio::select! {
                alive = w.stream.committed() => {
                    if !alive {
                        return None;
                    }
                }
                () = &mut beat => return Some((Ok(heartbeat(&mut w)), Some(Ok(w)))),
            }
        }
    })
}

/// The idle comment: `: heartbeat <post-batch token>` with that token as the event id, so a
/// reconnect resumes past everything the stream has scanned.
fn heartbeat(w: &mut Watching) -> Event {
    let token = token_of(&w.stream.resume_token());
    w.sent.clone_from(&token);
    Event::default()
        .id(token.clone())
        .comment(format!("heartbeat {token}"))
}
