//! The dashboard at `/`.

use axum::Router;

use super::AppState;

/// The dashboard routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
