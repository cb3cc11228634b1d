//! Errors of the ops surface and the JSON body every surface without its own shape uses.
//!
//! Surfaces that imitate a system (REST Proxy, Data API, Upstash, Pusher) map engine errors to
//! that system's error body in their own file. Anything internal becomes a 500 with a generic
//! message; the detail is logged once here, never sent to the client.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered as `{"error": <kind>, "message": <text>}` with its status.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine-readable kind, e.g. `not_found`.
    pub kind: &'static str,
    /// Safe, human-readable message.
    pub message: String,
}

impl ApiError {
    /// A 4xx error whose message is safe to show the client.
    #[must_use]
    pub fn client(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    /// A 500 whose detail is logged and replaced by a generic message.
    #[must_use]
    pub fn internal(detail: &dyn std::error::Error) -> Self {
        tracing::error!(error = %detail, "internal error answering a request");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: "internal error; see the server log".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.kind, "message": self.message})),
        )
            .into_response()
    }
}

/// Longest text of a framework rejection carried into a surface's own error message.
const REJECTION_TEXT_BYTES_MAX: usize = 4096;

/// A failure the framework answered itself rather than a handler: an error status without a
/// JSON body — a path or query value that does not parse, a body over the size limit (413), a
/// method the path does not serve (405). `Ok` gives its status and text (if any) for a surface
/// to answer in its own error shape; every other response comes back as it was.
pub(crate) async fn framework_rejection(
    response: Response,
) -> Result<(StatusCode, Option<String>), Response> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Err(response);
    }
    let text = axum::body::to_bytes(response.into_body(), REJECTION_TEXT_BYTES_MAX)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty());
    Ok((status, text))
}

/// Whether `path` is `prefix` or below it (`/kafka`, `/kafka/…`, not `/kafkaesque`).
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The fallback for paths no surface serves; under `/kafka` in the REST Proxy's shape, under
/// `/mongo` in the Data API's.
pub(crate) async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if is_under(path, "/kafka") {
        return super::kafka::not_found(path);
    }
    if is_under(path, "/mongo") {
        return super::mongo::not_found(path);
    }
    ApiError::client(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {path}"),
    )
    .into_response()
}
