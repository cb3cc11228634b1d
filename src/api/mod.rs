//! The HTTP surfaces, one file per imitated system, assembled into one axum [`Router`].
//!
//! Each surface sits under the prefix of the system it imitates (`/kafka`, `/redis`, `/mongo`;
//! Pusher keeps its own root paths) and answers errors in that system's own shape. The layers
//! added here apply to all of them: bearer auth, request metrics, a body limit and a timeout.

mod auth;
mod error;
mod ops;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use tower_http::timeout::TimeoutLayer;

use crate::engine::Engine;

pub use error::ApiError;

/// State shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engines.
    pub engine: Arc<Engine>,
}

/// Builds the complete HTTP application over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    let config = engine.config().clone();
    let state = AppState { engine };
    let body_max = usize::try_from(config.http_body_bytes_max).unwrap_or(usize::MAX);
    Router::new()
        .merge(ops::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), ops::track_metrics))
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_bearer))
        .layer(DefaultBodyLimit::max(body_max))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.http_request_timeout_ms),
        ))
        .with_state(state)
}
