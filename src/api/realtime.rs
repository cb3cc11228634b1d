//! Server-sent events for hub channels: `GET /realtime/{channel}` streams `id:` (the channel's
//! event id), `event:` (the name) and `data:` (one-line JSON); `POST /realtime/{channel}`
//! publishes one event.
//!
//! A stream starts with `retry:` once; a `Last-Event-ID` header replays what the hub's buffer
//! still holds, or sends a `resync` event first when it cannot; without one, `?recent=N` replays
//! the N latest buffered events (a freshly opened page fills its feed). A request carrying
//! `?recent=` (the dashboard's) also gets one `event: live` (no `id:`, data `{"replayed": n}`)
//! right after the replayed events, or after `resync`, so the page can tell the backlog from
//! events that arrive live. Keep-alive comments go out
//! every `realtime.sse_keepalive_ms`. Streams end when the server shuts down. `private-` and
//! `presence-` channels are refused here, to stream and to publish (403): they need Pusher
//! authorisation, which only the WebSocket and the signed HTTP API carry. Nor does `POST`
//! publish the Pusher protocol's own event names (`pusher:…`, `pusher_internal:…`; 400).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::metrics::Gauge;
use crate::realtime::{self, ChannelKind, Delivery, EventId, Start, check_channel_name};

/// Holds one unit of a gauge (open streams, connections) until dropped.
#[derive(Debug)]
pub(super) struct GaugeGuard(Arc<Gauge>);

impl GaugeGuard {
    /// Adds one to the gauge `name` of `state`'s registry until the guard drops.
    pub(super) fn new(state: &AppState, name: &'static str, help: &'static str) -> Self {
        let gauge = state.engine.metrics().gauge(name, help, Vec::new());
        gauge.add(1);
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// The SSE routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/realtime/{channel}", get(stream).post(publish))
}

/// Maps a realtime error to a client error (every variant reachable here is the caller's fault,
/// except a full hub).
pub(super) fn client_error(e: &realtime::Error) -> ApiError {
    let status = match e {
        realtime::Error::DataTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        realtime::Error::HubFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        realtime::Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::client(status, "bad_request", e.to_string())
}

/// Checks that `channel` is a public channel: SSE streams and `POST /realtime` carry no Pusher
/// signature, so `private-`, `presence-` and `#server-to-user-` channels are refused with 403
/// both ways.
fn check_open_channel(channel: &str) -> Result<(), ApiError> {
    match check_channel_name(channel) {
        Ok(kind) if kind != ChannelKind::Public => Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "forbidden",
            "private-, presence- and #server-to-user- channels need Pusher authorisation: use the \
             WebSocket /app/{key} to subscribe and the signed HTTP API /apps/{app_id}/events to publish",
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(client_error(&e)),
    }
}

/// Event-name prefixes of the Pusher protocol's own events (`pusher:ping`,
/// `pusher_internal:member_added`, …), which `POST /realtime` may not publish: a subscriber's
/// client library would act on them.
const RESERVED_EVENT_PREFIXES: [&str; 2] = ["pusher:", "pusher_internal:"];

/// The `resync` event: the client must refetch, then follows events after `head`.
fn resync_event(requested: Option<EventId>, head: EventId) -> SseEvent {
    let data = json!({"reason": "events after last_event_id are no longer buffered", "last_event_id": requested, "head": head});
    SseEvent::default()
        .id(head.to_string())
        .event("resync")
        .data(data.to_string())
}

/// The `live` marker: the `replayed` events before it were the backlog; what follows is live.
fn live_event(replayed: usize) -> SseEvent {
    SseEvent::default()
        .event("live")
        .data(json!({ "replayed": replayed }).to_string())
}

/// Where a `?recent=` stream is in its backlog.
#[derive(Debug)]
struct Backlog {
    /// Replayed events still to send before the marker.
    left: usize,
    /// The `live` marker, until sent.
    marker: Option<SseEvent>,
}

/// Query of `GET /realtime/{channel}`.
#[derive(Debug, Deserialize)]
struct StreamQuery {
    /// Replay up to this many of the latest buffered events when there is no Last-Event-ID.
    #[serde(default)]
    recent: Option<usize>,
}

/// `GET /realtime/{channel}[?recent=N]`.
async fn stream(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_open_channel(&channel) {
        return e.into_response();
    }
    // An unreadable Last-Event-ID cannot be resumed from: ask for a resync (u64::MAX is ahead
    // of every channel's head).
    let last_event_id = headers.get("last-event-id").map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<EventId>().ok())
            .unwrap_or(EventId::MAX)
    });
    let hub = state.engine.realtime();
    let Some(slot) = hub.try_connect() else {
        return ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "over_capacity",
            "too many open SSE streams and WebSocket connections",
        )
        .into_response();
    };
    // `?recent=N` replays the N latest buffered events to a fresh page; a browser reconnecting
    // sends Last-Event-ID, which wins.
    let recent = match (last_event_id, query.recent) {
        (None, Some(n)) => Some(n),
        _ => None,
    };
    let subscribed = match recent {
        Some(n) => hub.subscribe_recent(&channel, n),
        None => hub.subscribe(&channel, last_event_id),
    };
    let sub = match subscribed {
        Ok(sub) => sub,
        Err(e) => return client_error(&e).into_response(),
    };
    let config = &state.engine.config().realtime;
    let mut first = vec![SseEvent::default().retry(Duration::from_millis(config.sse_retry_ms))];
    if let Start::Resync { requested, head } = sub.start() {
        first.push(resync_event(Some(requested), head));
    }
    // The first `replayed` deliveries are the backlog (replay comes before live events).
    let replayed = match sub.start() {
        Start::Replayed { count } => count,
        Start::Live | Start::Resync { .. } => 0,
    };
    let mut marker = query.recent.is_some().then(|| live_event(replayed));
    if replayed == 0 {
        first.extend(marker.take());
    }
    let open = GaugeGuard::new(
        &state,
        "streamcache_realtime_sse_streams",
        "Open SSE streams on /realtime",
    );
    let backlog = Backlog {
        left: replayed,
        marker,
    };
    let live = futures::stream::unfold(
        (sub, backlog, open, slot),
        |(mut sub, mut backlog, open, slot)| async move {
            if backlog.left == 0
                && let Some(marker) = backlog.marker.take()
            {
                return Some((marker, (sub, backlog, open, slot)));
            }
            let event = match sub.recv().await {
                Delivery::Event(e) => SseEvent::default()
                    .id(e.id().to_string())
                    .event(e.name())
                    .data(e.data()),
                Delivery::Resync { head } => resync_event(None, head),
            };
            backlog.left = backlog.left.saturating_sub(1);
            Some((event, (sub, backlog, open, slot)))
        },
    );
    let mut shutdown = state.shutdown.clone();
    let events = futures::stream::iter(first)
        .chain(live)
        .map(Ok::<_, Infallible>)
        .take_until(async move { shutdown.wait().await });
    let keep_alive = KeepAlive::new()
        .interval(Duration::from_millis(config.sse_keepalive_ms))
        .text("keepalive");
    let mut resp = Sse::new(events).keep_alive(keep_alive).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Body of `POST /realtime/{channel}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    /// Event name.
    event: String,
    /// Payload (any JSON).
    #[serde(default)]
    data: Value,
}

/// Lets the subscriber tasks that a publish just woke write their frames before the HTTP reply
/// is written.
///
/// A woken connection task waits in the runtime's queue behind the publishing request; by
/// yielding once, the request lets it run first (always on a single worker; on several, when
/// the task was queued on this worker, the usual case), so a publisher that also subscribes —
/// a dashboard, a test, a latency probe — finds the event on its socket no later than the
/// reply. Otherwise the reply goes out first, and the publisher handles it (and often starts
/// its next request) before it reads the event. Costs one pass through the scheduler per
/// publish (docs/benchmarks.md, "Subscriber frames before the reply").
pub(super) async fn let_subscribers_write_first() {
    tokio::task::yield_now().await;
}

/// `POST /realtime/{channel}`: publishes one event to SSE and Pusher subscribers alike and
/// answers `{"id": n}`.
async fn publish(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Json(body): Json<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    check_open_channel(&channel)?;
    if let Some(prefix) = RESERVED_EVENT_PREFIXES
        .iter()
        .find(|p| body.event.starts_with(**p))
    {
        return Err(ApiError::client(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("event names starting `{prefix}` are the Pusher protocol's own"),
        ));
    }
    let id = state
        .engine
        .realtime()
        .publish(&channel, &body.event, body.data, None)
        .map_err(|e| client_error(&e))?;
    let_subscribers_write_first().await;
    Ok(Json(json!({"id": id})))
}
