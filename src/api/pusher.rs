//! Pusher Channels protocol 7: the WebSocket `/app/{key}` and the HTTP API `/apps/{app_id}/…`.

use axum::Router;

use super::AppState;

/// The Pusher routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
