//! The HTTP surfaces, one file per imitated system, assembled into one axum [`Router`].
//!
//! Each surface sits under the prefix of the system it imitates (`/kafka`, `/redis`, `/mongo`;
//! Pusher keeps its own root paths) and answers errors in that system's own shape. The layers
//! added here apply to all of them: bearer auth, request metrics, a body limit and a timeout.

mod auth;
mod dashboard;
mod error;
mod kafka;
mod mongo;
mod ops;
mod pipeline;
mod pusher;
mod realtime;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use tower_http::timeout::TimeoutLayer;

use crate::engine::Engine;
use crate::shutdown::{Shutdown, ShutdownSignal};

pub use error::ApiError;
pub use kafka::{
    BATCH_ENTRIES_MAX as KAFKA_BATCH_ENTRIES_MAX, BATCH_ID_CHARS_MAX as KAFKA_BATCH_ID_CHARS_MAX,
    STREAM_OBJECT_BYTES_MAX as KAFKA_STREAM_OBJECT_BYTES_MAX,
    STREAM_OBJECT_DEPTH_MAX as KAFKA_STREAM_OBJECT_DEPTH_MAX,
    fuzz_json_stream as fuzz_kafka_json_stream,
};
pub use mongo::{FIND_LIMIT_MAX, WATCH_HEARTBEAT_MS_MAX, WATCH_HEARTBEAT_MS_MIN};
pub use redis::UPSTASH_PIPELINE_LEN_MAX;

/// State shared by every handler: one `Arc`, so the copy axum takes for each layer and handler
/// of a request is one reference-count increment (and its drop one decrement), not one per
/// field. Fields are read through `Deref` (`state.engine`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppShared>);

/// What [`AppState`] shares.
#[derive(Debug)]
pub struct AppShared {
    /// The engines.
    pub engine: Arc<Engine>,
    /// Fires when the server shuts down; long-lived responses (SSE, WebSocket) end on it.
    pub shutdown: ShutdownSignal,
    /// Keeps the signal pending when the router was built without one ([`router`]).
    _trigger: Option<Shutdown>,
    /// The request metrics' handles (see [`ops::track_metrics`]).
    http_metrics: ops::HttpMetrics,
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

impl AppState {
    fn new(engine: Arc<Engine>, shutdown: ShutdownSignal, trigger: Option<Shutdown>) -> Self {
        Self(Arc::new(AppShared {
            engine,
            shutdown,
            _trigger: trigger,
            http_metrics: ops::HttpMetrics::default(),
        }))
    }
}

/// Builds the complete HTTP application over `engine`. Long-lived streams end only when their
/// client goes away; the server uses [`router_with_shutdown`].
pub fn router(engine: Arc<Engine>) -> Router {
    let trigger = Shutdown::new();
    let signal = trigger.signal();
    build(AppState::new(engine, signal, Some(trigger)))
}

/// Builds the complete HTTP application; SSE streams and WebSocket connections end when
/// `shutdown` fires, so graceful shutdown is not held up by them.
pub fn router_with_shutdown(engine: Arc<Engine>, shutdown: ShutdownSignal) -> Router {
    build(AppState::new(engine, shutdown, None))
}

fn build(state: AppState) -> Router {
    let config = state.engine.config().clone();
    let body_max = usize::try_from(config.http_body_bytes_max).unwrap_or(usize::MAX);
    Router::new()
        .merge(ops::routes())
        .merge(pipeline::routes())
        .merge(kafka::routes())
        .merge(redis::routes())
        .merge(mongo::routes())
        .merge(pusher::routes())
        .merge(realtime::routes())
        .merge(dashboard::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ops::track_metrics,
        ))
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ))
        .layer(DefaultBodyLimit::max(body_max))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.http_request_timeout_ms),
        ))
        .with_state(state)
}
