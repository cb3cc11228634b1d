//! The dashboard at `/`: one HTML page, a stylesheet and a script, embedded in the binary with
//! `include_str!` (no build step, nothing fetched from elsewhere — the Content-Security-Policy
//! header allows only this origin).
//!
//! The page listens to SSE `/realtime/orders`, reads the cache through `/redis/get/…` and
//! produces orders through `/kafka/topics/orders`.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// The page.
const INDEX_HTML: &str = include_str!("../../web/index.html");
/// Its stylesheet.
const STYLE_CSS: &str = include_str!("../../web/style.css");
/// Its script.
const APP_JS: &str = include_str!("../../web/app.js");

/// Only this origin: scripts, styles, fetches and the event stream.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
