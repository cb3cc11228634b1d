//! Webhook delivery: one task per configured webhook drains its queue (filled by the hub, see
//! `realtime::WebhookSink`), batches events, signs each body and posts it over HTTP/1.1,
//! retrying a failed POST with exponential backoff.
//!
//! A batch starts with the first queued event and takes what else arrives until it holds
//! [`WEBHOOK_BATCH_EVENTS_MAX`] events or `realtime.webhook_batch_ms` has passed since that
//! first event was emitted. Its body is `{"time_ms": …, "events": […]}`, sent with
//! `X-Pusher-Key` and `X-Pusher-Signature` = hex HMAC-SHA256(secret, body). A POST that fails
//! (connection error, no status within [`WEBHOOK_REQUEST_TIMEOUT_MS`], or a non-2xx status) is
//! sent again, the same bytes, [`webhook_retry_backoff_ms`] after the previous attempt started,
//! at most [`WEBHOOK_RETRIES_MAX`] times; then its events are counted as failed. Events queue
//! meanwhile (bounded; the hub drops beyond it), so a webhook's events arrive in order.
//!
//! Every wait (the batch window, the timeout, the backoff) is measured on the injected clock:
//! the task sleeps at most [`CLOCK_POLL_MS`] at a time and reads the clock again, so a
//! `ManualClock` drives it in tests. Nothing wakes the task while its queue is empty.
//! Each request uses its own connection (`Connection: close`), which the task drives itself;
//! no other task is spawned. Events still queued when shutdown fires are not sent.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::clock::SharedClock;
use crate::metrics::{Counter, Registry};
use crate::realtime::{
    WEBHOOK_BATCH_EVENTS_MAX, WEBHOOK_REQUEST_TIMEOUT_MS, WEBHOOK_RETRIES_MAX, WebhookEvent,
    WebhookQueue, WebhookTarget, encode_webhook_body, webhook_labels, webhook_retry_backoff_ms,
    webhook_signature,
};
use crate::shutdown::ShutdownSignal;

/// Longest single sleep of a wait on the injected clock, in milliseconds: the task then reads
/// the clock again, so a manual clock moved forward is noticed within this.
const CLOCK_POLL_MS: u64 = 20;

/// Nanoseconds in a millisecond.
const NS_PER_MS: u64 = 1_000_000;

/// What every sender needs besides its queue.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The app key, sent as `X-Pusher-Key`.
    pub(crate) key: String,
    /// The app secret, which signs bodies.
    pub(crate) secret: String,
    /// The batch window, in milliseconds.
    pub(crate) batch_ms: u64,
    /// The engine clock.
    pub(crate) clock: SharedClock,
}

/// One webhook's delivery counters.
struct Metrics {
    /// Events delivered (a 2xx answer).
    sent: std::sync::Arc<Counter>,
    /// Events given up after the last retry.
    failed: std::sync::Arc<Counter>,
    /// POSTs that failed, retried or not.
    requests_failed: std::sync::Arc<Counter>,
}

impl Metrics {
    fn register(registry: &Registry, target: &WebhookTarget) -> Self {
        let labels = || webhook_labels(target);
        Self {
            sent: registry.counter(
                "streamcache_realtime_webhook_events_sent_total",
                "Webhook events delivered (the webhook answered 2xx).",
                labels(),
            ),
            failed: registry.counter(
                "streamcache_realtime_webhook_events_failed_total",
                "Webhook events given up after the last retry.",
                labels(),
            ),
            requests_failed: registry.counter(
                "streamcache_realtime_webhook_requests_failed_total",
                "Webhook POSTs that failed (connection error, timeout or non-2xx), retried or not.",
                labels(),
            ),
        }
    }
}

/// Delivers `queue`'s events until `shutdown` fires (or the hub is gone).
pub(crate) async fn run(
    mut queue: WebhookQueue,
    delivery: Delivery,
    registry: std::sync::Arc<Registry>,
    mut shutdown: ShutdownSignal,
) {
    let metrics = Metrics::register(&registry, queue.target());
    let url = queue.target().url().to_owned();
    let index = queue.target().index();
    tracing::debug!(webhook = index, %url, "webhook sender started");
    loop {
        let first = tokio::select! {
            () = shutdown.wait() => return,
            event = queue.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        let Some(batch) = collect_batch(&mut queue, first, &delivery, &mut shutdown).await else {
            return;
        };
        let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let body = Bytes::from(encode_webhook_body(delivery.clock.now_ms(), &batch));
        let signature = webhook_signature(&delivery.secret, &body);
        match send_with_retries(
            queue.target(),
            &delivery,
            &body,
            &signature,
            &metrics,
            &mut shutdown,
        )
        .await
        {
            Sent::Delivered => metrics.sent.add(count),
            Sent::GaveUp(reason) => {
                metrics.failed.add(count);
                tracing::warn!(
                    webhook = index,
                    %url,
                    events = count,
                    attempts = WEBHOOK_RETRIES_MAX + 1,
                    %reason,
                    "webhook POST failed every attempt; its events are dropped"
                );
            }
            Sent::Shutdown => return,
        }
    }
}

/// A batch starting with `first`: what else is queued, then what arrives within the window,
/// up to [`WEBHOOK_BATCH_EVENTS_MAX`] events. `None` when shutdown fires meanwhile.
async fn collect_batch(
    queue: &mut WebhookQueue,
    first: WebhookEvent,
    delivery: &Delivery,
    shutdown: &mut ShutdownSignal,
) -> Option<Vec<WebhookEvent>> {
    let deadline_ns = first
        .emitted_ns()
        .saturating_add(delivery.batch_ms.saturating_mul(NS_PER_MS));
    let mut batch = vec![first];
    while batch.len() < WEBHOOK_BATCH_EVENTS_MAX {
        if let Some(event) = queue.try_recv() {
            batch.push(event);
            continue;
        }
        if delivery.clock.monotonic_ns() >= deadline_ns {
            break;
        }
        tokio::select! {
            () = shutdown.wait() => return None,
            event = queue.recv() => match event {
                Some(event) => batch.push(event),
                None => break,
            },
            () = nap_until(&delivery.clock, deadline_ns) => {}
        }
    }
    Some(batch)
}

/// How a batch's delivery ended.
enum Sent {
    /// A 2xx answer.
    Delivered,
    /// Every attempt failed; the last reason.
    GaveUp(String),
    /// Shutdown fired first.
    Shutdown,
}

/// Posts `body`, retrying with backoff on the injected clock.
async fn send_with_retries(
    target: &WebhookTarget,
    delivery: &Delivery,
    body: &Bytes,
    signature: &str,
    metrics: &Metrics,
    shutdown: &mut ShutdownSignal,
) -> Sent {
    let clock = &delivery.clock;
    let mut retry = 0;
    loop {
        let started_ns = clock.monotonic_ns();
        let timeout_ns = started_ns.saturating_add(WEBHOOK_REQUEST_TIMEOUT_MS * NS_PER_MS);
        let outcome = tokio::select! {
            () = shutdown.wait() => return Sent::Shutdown,
            result = post(target, &delivery.key, body.clone(), signature) => result,
            () = wait_until(clock, timeout_ns) => {
                Err(format!("no answer within {WEBHOOK_REQUEST_TIMEOUT_MS} ms"))
            }
        };
        let reason = match outcome {
            Ok(status) if status.is_success() => return Sent::Delivered,
            Ok(status) => format!("HTTP {status}"),
            Err(reason) => reason,
        };
        metrics.requests_failed.inc();
        if retry >= WEBHOOK_RETRIES_MAX {
            return Sent::GaveUp(reason);
        }
        let backoff_ms = webhook_retry_backoff_ms(retry);
        tracing::debug!(
            webhook = target.index(),
            %reason,
            retry = retry + 1,
            backoff_ms,
            "webhook POST failed; retrying"
        );
        retry += 1;
        let next_ns = started_ns.saturating_add(backoff_ms.saturating_mul(NS_PER_MS));
        tokio::select! {
            () = shutdown.wait() => return Sent::Shutdown,
            () = wait_until(clock, next_ns) => {}
        }
    }
}

/// Resolves once the injected clock's monotonic reading reaches `deadline_ns`.
async fn wait_until(clock: &SharedClock, deadline_ns: u64) {
    while clock.monotonic_ns() < deadline_ns {
        nap_until(clock, deadline_ns).await;
    }
}

/// Sleeps until `deadline_ns` on the injected clock or for [`CLOCK_POLL_MS`], whichever is
/// sooner.
async fn nap_until(clock: &SharedClock, deadline_ns: u64) {
    let left_ns = deadline_ns.saturating_sub(clock.monotonic_ns());
    tokio::time::sleep(Duration::from_nanos(left_ns.min(CLOCK_POLL_MS * NS_PER_MS))).await;
}

/// One POST on a fresh connection; the response's status, or why there is none.
async fn post(
    target: &WebhookTarget,
    key: &str,
    body: Bytes,
    signature: &str,
) -> Result<StatusCode, String> {
    let address = target.address();
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {address} failed: {e}"))?;
    let request = Request::post(target.path())
        .header(HOST, target.host())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(
            USER_AGENT,
            concat!("streamcache/", env!("CARGO_PKG_VERSION")),
        )
        .header(CONNECTION, HeaderValue::from_static("close"))
        .header("X-Pusher-Key", key)
        .header("X-Pusher-Signature", signature)
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    // The connection future does the I/O; it is polled here until the response head arrives,
    // then dropped, which closes the connection (the body is not read). Under `Connection:
    // close` it may end in the same poll that delivers the head, so the response is still
    // read after a clean end.
    let response = sender.send_request(request);
    tokio::pin!(connection, response);
    tokio::select! {
        biased;
        head = &mut response => return status_of(head),
        closed = &mut connection => {
            if let Err(e) = closed {
                return Err(format!("connection failed: {e}"));
            }
        }
    }
    status_of(response.await)
}

/// The status of a response head, or why there is none.
fn status_of(
    head: hyper::Result<hyper::Response<hyper::body::Incoming>>,
) -> Result<StatusCode, String> {
    head.map(|r| r.status())
        .map_err(|e| format!("no response: {e}"))
}
