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
//! every `realtime.sse_keepalive_ms`. Streams end when the server shuts down. Over the hub's
//! connection limit a stream is ended at once after `retry:` with a longer delay, so a browser
//! reconnects later instead of giving up. `private-` and
//! `presence-` channels are refused here, to stream and to publish (403): they need Pusher
//! authorisation, which only the WebSocket and the signed HTTP API carry. Nor does `POST`
//! publish the Pusher protocol's own event names (`pusher:…`, `pusher_internal:…`; 400).

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::metrics::Gauge;
use crate::realtime::{
    self, ChannelKind, Delivery, EventId, SSE_OVER_CAPACITY_RETRY_MS, Start, check_channel_name,
    check_published_event_name,
};

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

/// Most bytes of events put in one body chunk of a stream: the events already queued when the
/// stream wakes go out in one write, up to about this much (the event that crosses it is the
/// chunk's last).
const SSE_CHUNK_BYTES: usize = 64 * 1024;

/// The keep-alive comment, as `axum`'s `KeepAlive::text("keepalive")` writes it.
const KEEP_ALIVE: &[u8] = b": keepalive\n\n";

/// Appends one SSE event as `axum`'s `Event` writes it: `id:` when given, `event:`, then `data:`
/// (a `data:` line after every `\n` or `\r` of the text, so a multi-line payload stays one
/// event; no `data:` at all for empty data), then the empty line that ends the event. Names and
/// ids have no line breaks (the hub checks event names).
fn push_event(out: &mut Vec<u8>, id: Option<EventId>, name: &str, data: &str) {
    if let Some(id) = id {
        // Writing into a `Vec` cannot fail.
        let _ = writeln!(out, "id: {id}");
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    let data = data.as_bytes();
    if !data.is_empty() {
        out.extend_from_slice(b"data: ");
        let mut start = 0;
        for end in memchr::memchr2_iter(b'\n', b'\r', data) {
            out.extend_from_slice(data.get(start..=end).unwrap_or_default());
            out.extend_from_slice(b"data: ");
            start = end + 1;
        }
        out.extend_from_slice(data.get(start..).unwrap_or_default());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// The `resync` event: the client must refetch, then follows events after `head`.
fn push_resync(out: &mut Vec<u8>, requested: Option<EventId>, head: EventId) {
    let data = json!({"reason": "events after last_event_id are no longer buffered", "last_event_id": requested, "head": head});
    push_event(out, Some(head), "resync", &data.to_string());
}

/// The `live` marker: the `replayed` events before it were the backlog; what follows is live.
fn push_live(out: &mut Vec<u8>, replayed: usize) {
    push_event(
        out,
        None,
        "live",
        &json!({ "replayed": replayed }).to_string(),
    );
}

/// A stream's subscription and where it is in its backlog.
#[derive(Debug)]
struct Feed {
    /// The hub subscription.
    sub: realtime::Subscription,
    /// Replayed events still to send before the `live` marker.
    left: usize,
    /// The `live` marker still to be sent (`?recent=` streams), with the replayed count.
    marker: Option<usize>,
}

impl Feed {
    /// Appends `delivery`, and the `live` marker right after the last replayed event.
    fn push(&mut self, out: &mut Vec<u8>, delivery: &Delivery) {
        match delivery {
            Delivery::Event(e) => push_event(out, Some(e.id()), e.name(), e.data()),
            Delivery::Resync { head } => push_resync(out, None, *head),
        }
        self.left = self.left.saturating_sub(1);
        if self.left == 0
            && let Some(replayed) = self.marker.take()
        {
            push_live(out, replayed);
        }
    }

    /// The next body chunk: the next delivery and every one already queued behind it, up to
    /// [`SSE_CHUNK_BYTES`]; a keep-alive comment when nothing comes for `keep_alive`.
    async fn chunk(&mut self, keep_alive: Duration) -> Bytes {
        let Ok(first) = tokio::time::timeout(keep_alive, self.sub.recv()).await else {
            return Bytes::from_static(KEEP_ALIVE);
        };
        let mut out = Vec::new();
        self.push(&mut out, &first);
        while out.len() < SSE_CHUNK_BYTES {
            let Some(next) = self.sub.try_recv() else {
                break;
            };
            self.push(&mut out, &next);
        }
        Bytes::from(out)
    }
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
        return over_capacity_sse();
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
        // No room for another channel now; there may be once others empty.
        Err(realtime::Error::HubFull { .. }) => {
            return retry_later_sse("over capacity: the hub holds as many channels as it can");
        }
        Err(e) => return client_error(&e).into_response(),
    };
    let config = &state.engine.config().realtime;
    // `retry:` as axum's `Event::retry` writes it (whole milliseconds).
    let mut first = format!("retry: {}\n\n", config.sse_retry_ms).into_bytes();
    if let Start::Resync { requested, head } = sub.start() {
        push_resync(&mut first, Some(requested), head);
    }
    // The first `replayed` deliveries are the backlog (replay comes before live events).
    let replayed = match sub.start() {
        Start::Replayed { count } => count,
        Start::Live | Start::Resync { .. } => 0,
    };
    let mut marker = query.recent.is_some().then_some(replayed);
    if replayed == 0
        && let Some(count) = marker.take()
    {
        push_live(&mut first, count);
    }
    let open = GaugeGuard::new(
        &state,
        "streamcache_realtime_sse_streams",
        "Open SSE streams on /realtime",
    );
    let feed = Feed {
        sub,
        left: replayed,
        marker,
    };
    let keep_alive = Duration::from_millis(config.sse_keepalive_ms);
    // The gauge unit and the hub's connection slot are held as long as the stream lives.
    let live = futures::stream::unfold(
        (feed, open, slot),
        move |(mut feed, open, slot)| async move {
            let chunk = feed.chunk(keep_alive).await;
            Some((chunk, (feed, open, slot)))
        },
    );
    let mut shutdown = state.shutdown.clone();
    let chunks = futures::stream::once(std::future::ready(Bytes::from(first)))
        .chain(live)
        .map(Ok::<_, Infallible>)
        .take_until(async move { shutdown.wait().await });
    event_stream(Body::from_stream(chunks))
}

/// The answer to an SSE request past the connection limit ([`crate::realtime::CONNECTIONS_MAX`],
/// which counts every long-lived stream the HTTP listener holds: Pusher WebSockets and the
/// realtime, Kafka topic and change-stream SSE streams). A non-200 status would stop an
/// `EventSource` for good; an ended stream makes it reconnect after `retry:`, as pusher-js does
/// after 4100.
pub(crate) fn over_capacity_sse() -> Response {
    retry_later_sse("over capacity: too many open SSE streams and WebSocket connections")
}

/// An SSE stream that ends at once, asking the client to come back after
/// [`SSE_OVER_CAPACITY_RETRY_MS`]: the answer to a request the server cannot serve now but may
/// serve later (a non-200 status would stop an `EventSource` for good).
fn retry_later_sse(reason: &str) -> Response {
    let body = format!("retry: {SSE_OVER_CAPACITY_RETRY_MS}\n: {reason}\n\n");
    event_stream(Body::from(body))
}

/// A 200 response carrying `body` as an event stream (`text/event-stream`, no caching, no proxy
/// buffering).
fn event_stream(body: Body) -> Response {
    let mut resp = unbuffered(body.into_response());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Marks an SSE response as not to be buffered by a reverse proxy (`X-Accel-Buffering: no`;
/// axum's `Sse` sets the content type and `Cache-Control` only).
pub(crate) fn unbuffered(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// `events` after the event an SSE stream starts with: `retry:` with the configured
/// reconnection delay, which the client then waits before reconnecting after the stream ends.
pub(crate) fn after_retry<S>(
    state: &AppState,
    events: S,
) -> impl futures::Stream<Item = Result<axum::response::sse::Event, Infallible>> + use<S>
where
    S: futures::Stream<Item = Result<axum::response::sse::Event, Infallible>>,
{
    let retry = axum::response::sse::Event::default().retry(Duration::from_millis(
        state.engine.config().realtime.sse_retry_ms,
    ));
    futures::stream::once(std::future::ready(Ok(retry))).chain(events)
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
/// publish (docs/benchmarks-log.md, "Subscriber frames before the reply").
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
    check_published_event_name(&body.event).map_err(|e| client_error(&e))?;
    let id = state
        .engine
        .realtime()
        .publish(&channel, &body.event, body.data, None)
        .map_err(|e| client_error(&e))?;
    let_subscribers_write_first().await;
    Ok(Json(json!({"id": id})))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use axum::response::IntoResponse as _;
    use axum::response::sse::{Event as AxumEvent, KeepAlive, Sse};
    use http_body_util::BodyExt as _;
    use serde_json::json;

    use super::{Feed, KEEP_ALIVE, SSE_CHUNK_BYTES, push_event};
    use crate::clock::ManualClock;
    use crate::realtime::{Hub, RealtimeConfig};

    /// A hub on a manual clock (its channels' first ids follow from it).
    fn hub() -> Hub {
        Hub::new(
            &RealtimeConfig::default(),
            1,
            ManualClock::shared(1_767_225_600_000),
        )
    }

    /// The bytes axum's `Sse` writes for `event`.
    async fn axum_bytes(event: AxumEvent) -> Vec<u8> {
        let events = futures::stream::iter([Ok::<_, Infallible>(event)]);
        let body = Sse::new(events).into_response().into_body();
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn events_are_written_as_axum_writes_them() {
        for data in [
            "{\"a\":1}",
            "",
            "two\nlines",
            "cr\ronly\r\nboth\n",
            "é ✓ \"q\"",
        ] {
            let mut ours = Vec::new();
            push_event(&mut ours, Some(7), "NewOrder", data);
            let theirs = AxumEvent::default().id("7").event("NewOrder").data(data);
            assert_eq!(ours, axum_bytes(theirs).await, "{data:?}");
            let mut ours = Vec::new();
            push_event(&mut ours, None, "live", data);
            let theirs = AxumEvent::default().event("live").data(data);
            assert_eq!(ours, axum_bytes(theirs).await, "{data:?}");
        }
        let retry = AxumEvent::default().retry(Duration::from_millis(2000));
        assert_eq!(b"retry: 2000\n\n".to_vec(), axum_bytes(retry).await);
        let keep_alive = KeepAlive::new().text("keepalive");
        let stream = futures::stream::pending::<Result<AxumEvent, Infallible>>();
        let mut body = Sse::new(stream)
            .keep_alive(keep_alive.interval(Duration::from_millis(1)))
            .into_response()
            .into_body();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame.as_ref(), KEEP_ALIVE);
    }

    fn feed(hub: &Hub, left: usize, marker: Option<usize>) -> Feed {
        Feed {
            sub: hub.subscribe("orders", None).unwrap(),
            left,
            marker,
        }
    }

    fn text(events: &[(u64, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, data) in events {
            push_event(&mut out, Some(*id), "E", data);
        }
        out
    }

    #[tokio::test]
    async fn queued_events_go_out_in_one_chunk() {
        let hub = hub();
        let mut feed = feed(&hub, 0, None);
        let base = hub.head("orders");
        for n in 1..=3 {
            hub.publish("orders", "E", json!(n), None).unwrap();
        }
        let chunk = feed.chunk(Duration::from_secs(60)).await;
        let want = text(&[(base + 1, "1"), (base + 2, "2"), (base + 3, "3")]);
        assert_eq!(chunk.as_ref(), want);
        hub.publish("orders", "E", json!(4), None).unwrap();
        let chunk = feed.chunk(Duration::from_secs(60)).await;
        assert_eq!(chunk.as_ref(), text(&[(base + 4, "4")]));
    }

    #[tokio::test]
    async fn a_chunk_ends_with_the_event_that_crosses_its_size() {
        let hub = hub();
        let mut feed = feed(&hub, 0, None);
        let first = hub.head("orders") + 1;
        let big = "x".repeat(9000);
        let data = json!(big).to_string();
        let events = 2 * SSE_CHUNK_BYTES / data.len();
        for _ in 0..events {
            hub.publish("orders", "E", json!(big), None).unwrap();
        }
        let mut one = Vec::new();
        push_event(&mut one, Some(first), "E", &data);
        let per_chunk = SSE_CHUNK_BYTES.div_ceil(one.len());
        let mut sent = 0;
        while sent < events {
            let chunk = feed.chunk(Duration::from_secs(60)).await;
            let n = chunk.windows(4).filter(|w| w == b"id: ").count();
            assert_eq!(n, per_chunk.min(events - sent), "chunk after {sent}");
            sent += n;
        }
    }

    #[tokio::test]
    async fn the_live_marker_follows_the_last_replayed_event_in_the_same_chunk() {
        let hub = hub();
        let mut feed = feed(&hub, 2, Some(2));
        let base = hub.head("orders");
        for n in 1..=3 {
            hub.publish("orders", "E", json!(n), None).unwrap();
        }
        let chunk = feed.chunk(Duration::from_secs(60)).await;
        let mut want = text(&[(base + 1, "1"), (base + 2, "2")]);
        push_event(&mut want, None, "live", "{\"replayed\":2}");
        want.extend(text(&[(base + 3, "3")]));
        assert_eq!(chunk.as_ref(), want);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_gets_a_keep_alive_comment() {
        let hub = hub();
        let mut feed = feed(&hub, 0, None);
        let chunk = feed.chunk(Duration::from_secs(15)).await;
        assert_eq!(chunk.as_ref(), KEEP_ALIVE);
    }
}
