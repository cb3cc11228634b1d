//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, and the request-metrics middleware.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::metrics::{Counter, Histogram, LATENCY_BUCKETS_SECONDS, Registry};

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

/// Counts requests by route, method and status and records their latency.
pub(crate) async fn track_metrics(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let clock = state.engine.clock();
    let started_ns = clock.monotonic_ns();
    // A route layer runs only for matched routes, so the path is there; the fallback label
    // is for safety.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let resp = next.run(req).await;
    #[expect(
        clippy::cast_precision_loss,
        reason = "latency in ns fits f64 well enough"
    )]
    let seconds = clock.monotonic_ns().saturating_sub(started_ns) as f64 / 1e9;
    state.http_metrics.observe(
        state.engine.metrics(),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        resp.status().as_u16(),
        seconds,
    );
    resp
}

/// The `method` label: the standard methods by name and any extension method as `other`, so
/// clients cannot add label values (and metric series) of their own.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    STANDARD
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

/// The request metrics' handles by route. Once a route has been answered with a method and
/// status, the next such request takes a read lock and updates two atomics: no allocation and
/// no registry lock (the registry's lookup builds and compares label strings).
///
/// Bounded: routes are the router's templates, methods [`method_label`]'s ten values and
/// statuses three-digit codes the server itself sets.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    routes: RwLock<HashMap<Box<str>, RouteMetrics>>,
}

#[derive(Debug)]
struct RouteMetrics {
    duration: Arc<Histogram>,
    /// `http_requests_total` by method and status; a handful per route, searched in order.
    requests: Vec<(&'static str, u16, Arc<Counter>)>,
}

impl RouteMetrics {
    fn counter(&self, method: &str, status: u16) -> Option<&Counter> {
        self.requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
            .map(|(_, _, counter)| counter.as_ref())
    }
}

impl HttpMetrics {
    /// Counts one request and records its latency in `registry`'s HTTP families.
    fn observe(
        &self,
        registry: &Registry,
        route: &str,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = routes.get(route)
                && let Some(counter) = known.counter(method, status)
            {
                counter.inc();
                known.duration.observe(seconds);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let known = routes.entry(route.into()).or_insert_with(|| RouteMetrics {
            duration: registry.histogram(
                "http_request_duration_seconds",
                "HTTP handler latency by route (until response headers).",
                vec![("route".into(), route.to_owned())],
                LATENCY_BUCKETS_SECONDS,
            ),
            requests: Vec::new(),
        });
        match known.counter(method, status) {
            Some(counter) => counter.inc(),
            None => {
                let counter = registry.counter(
                    "http_requests_total",
                    "HTTP requests by route, method and status.",
                    vec![
                        ("route".into(), route.to_owned()),
                        ("method".into(), method.to_owned()),
                        ("status".into(), status.to_string()),
                    ],
                );
                counter.inc();
                known.requests.push((method, status, counter));
            }
        }
        known.duration.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_by_route_method_and_status() {
        let registry = Registry::new();
        let metrics = HttpMetrics::default();
        let route = "/kafka/topics/{topic}";
        metrics.observe(&registry, route, "POST", 200, 0.000_2);
        metrics.observe(&registry, route, "POST", 200, 0.002);
        metrics.observe(&registry, route, "POST", 422, 0.003);
        metrics.observe(&registry, "/healthz", "GET", 200, 0.000_01);
        let text = registry.render();
        for line in [
            r#"http_requests_total{route="/kafka/topics/{topic}",method="POST",status="200"} 2"#,
            r#"http_requests_total{route="/kafka/topics/{topic}",method="POST",status="422"} 1"#,
            r#"http_requests_total{route="/healthz",method="GET",status="200"} 1"#,
            r#"http_request_duration_seconds_count{route="/kafka/topics/{topic}"} 3"#,
            r#"http_request_duration_seconds_bucket{route="/kafka/topics/{topic}",le="0.00025"} 1"#,
            r#"http_request_duration_seconds_bucket{route="/kafka/topics/{topic}",le="0.0025"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        let brew = Method::from_bytes(b"BREW").expect("a valid extension method");
        let purge = Method::from_bytes(b"PURGE").expect("a valid extension method");
        assert_eq!(method_label(&brew), "other");
        assert_eq!(method_label(&purge), "other");
    }
}
