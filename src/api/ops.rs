//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, and the request-metrics middleware.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::metrics::LATENCY_BUCKETS_SECONDS;

/// The ops routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// 200 while the process runs.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// 200 once every engine is open, 503 before and during shutdown.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.engine.is_ready() {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "starting"})),
        )
            .into_response()
    }
}

/// Prometheus text exposition of process, HTTP and engine metrics.
async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = state.engine.metrics().render();
    crate::metrics::render_process(&mut body, state.engine.start_time_ms() / 1000);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Counts requests by route and status and records their latency.
pub(crate) async fn track_metrics(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let clock = state.engine.clock().clone();
    let started_ns = clock.monotonic_ns();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let registry = state.engine.metrics();
    registry
        .counter(
            "http_requests_total",
            "HTTP requests by route, method and status.",
            vec![
                ("route".into(), route.clone()),
                ("method".into(), method),
                ("status".into(), status),
            ],
        )
        .inc();
    #[expect(
        clippy::cast_precision_loss,
        reason = "latency in ns fits f64 well enough"
    )]
    let seconds = clock.monotonic_ns().saturating_sub(started_ns) as f64 / 1e9;
    registry
        .histogram(
            "http_request_duration_seconds",
            "HTTP handler latency by route (until response headers).",
            vec![("route".into(), route)],
            LATENCY_BUCKETS_SECONDS,
        )
        .observe(seconds);
    resp
}
