//! Extended JSON at the Data API boundary: parsing request bodies (canonical or relaxed) and
//! rendering responses relaxed (`application/json`) or canonical (`application/ejson`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bson::{Bson, Document};
use serde_json::Value;

use super::DataApiError;

/// Response encoding chosen from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Relaxed Extended JSON under `application/json`.
    Json,
    /// Canonical Extended JSON under `application/ejson`.
    Ejson,
}

impl Format {
    /// `application/ejson` in `Accept` selects canonical output; anything else relaxed.
    pub(crate) fn from_accept(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept.contains("application/ejson") {
            Self::Ejson
        } else {
            Self::Json
        }
    }

    /// Renders a value in this format.
    pub(crate) fn value(self, v: Bson) -> Value {
        match self {
            Self::Json => v.into_relaxed_extjson(),
            Self::Ejson => v.into_canonical_extjson(),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Ejson => "application/ejson",
        }
    }
}

/// Parses a request body as an Extended JSON object.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Document, DataApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| DataApiError::invalid(format!("invalid JSON body: {e}")))?;
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(DataApiError::invalid(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(DataApiError::invalid(format!("invalid Extended JSON: {e}"))),
    }
}

/// A 200 response in the chosen format.
pub(crate) fn respond(value: Value, format: Format) -> Response {
    match serde_json::to_vec(&value) {
        Ok(bytes) => {
            let mut resp = (StatusCode::OK, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a Data API response");
            DataApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "internal server error",
            )
            .into_response()
        }
    }
}
