//! The Kafka surface under `/kafka`: Confluent REST Proxy v2 (topics, produce, consumer
//! instances), v3 (clusters, topics, streaming produce) and an SSE tail of a partition.
//!
//! Request and response shapes, content types and error codes follow the REST Proxy, so a
//! client written for it works by changing only its base URL. Every log call is blocking and
//! runs through [`blocking`] (`spawn_blocking`): an `always` append waits for an fsync, and
//! doing that on a runtime worker would stall every other connection on it. Waiting for new
//! records is async, on the partition's `watch` channel.

mod dto;
mod iso8601;
mod json_stream;
mod sse;
mod v2;
mod v3;
mod v3_groups;

pub use json_stream::fuzz_json_stream;
pub use v3::{
    BATCH_ENTRIES_MAX, BATCH_ID_CHARS_MAX, STREAM_OBJECT_BYTES_MAX, STREAM_OBJECT_DEPTH_MAX,
};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::error::framework_rejection;
use crate::log::{Error, Log};

/// Content type of every v2 response.
pub(crate) const V2_CONTENT_TYPE: &str = "application/vnd.kafka.v2+json";

/// The `/kafka` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(v2::routes())
        .merge(v3::routes())
        .merge(sse::routes())
        .layer(middleware::from_fn(error_bodies))
}

/// Gives every failure under `/kafka` the REST Proxy's error body. The handlers' own errors
/// already have it; the framework's rejections ([`framework_rejection`]) get it here, with the
/// HTTP status as the error code, as the REST Proxy's generic exception mapper answers them.
async fn error_bodies(request: Request, next: Next) -> Response {
    let v3 = is_v3(request.uri().path());
    match framework_rejection(next.run(request).await).await {
        Ok((status, text)) => generic_error(status, text, v3),
        Err(response) => response,
    }
}

/// Whether `path` is under v3, whose errors are plain `application/json`.
fn is_v3(path: &str) -> bool {
    path.starts_with("/kafka/v3/")
}

/// The REST Proxy's generic error: the status as the code, and Jersey's `HTTP <status>
/// <reason>` as the message when there is no better one.
fn generic_error(status: StatusCode, text: Option<String>, v3: bool) -> Response {
    let message = text.unwrap_or_else(|| {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        )
    });
    let error = KafkaError::new(status, u32::from(status.as_u16()), message);
    if v3 { error.v3() } else { error }.into_response()
}

/// The REST Proxy's answer to a request without valid credentials (401, 40101).
pub(crate) fn unauthorized(path: &str) -> Response {
    let error = KafkaError::new(
        StatusCode::UNAUTHORIZED,
        40101,
        "Unauthorized: missing or wrong bearer token",
    );
    if is_v3(path) { error.v3() } else { error }.into_response()
}

/// The answer for a path under `/kafka` that no route serves, in the REST Proxy's shape.
pub(crate) fn not_found(path: &str) -> Response {
    generic_error(StatusCode::NOT_FOUND, None, is_v3(path))
}

/// A REST Proxy error: `{"error_code": …, "message": …}` with the status of its code family.
#[derive(Debug)]
pub(crate) struct KafkaError {
    /// HTTP status.
    status: StatusCode,
    /// REST Proxy error code, e.g. 40401.
    code: u32,
    /// Safe message.
    message: String,
    /// Answer as plain `application/json` (v3) instead of the v2 content type.
    v3: bool,
}

impl KafkaError {
    /// An error with an explicit status and code.
    pub(crate) fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            v3: false,
        }
    }

    /// 422 with the bean-validation code 422 (e.g. a produce body without `records`).
    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 422, message)
    }

    /// 400 for a body that is not JSON.
    pub(crate) fn bad_json(e: &serde_json::Error) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, format!("malformed JSON: {e}"))
    }

    /// Marks the error as a v3 one (plain `application/json`).
    pub(crate) fn v3(mut self) -> Self {
        self.v3 = true;
        self
    }

    /// The REST code of this error.
    pub(crate) fn code(&self) -> u32 {
        self.code
    }

    /// The message of this error.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<Error> for KafkaError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            Error::TopicNotFound { .. } => (S::NOT_FOUND, 40401),
            Error::PartitionNotFound { .. } => (S::NOT_FOUND, 40402),
            Error::InstanceNotFound { .. } => (S::NOT_FOUND, 40403),
            Error::InstanceExists { .. } => (S::CONFLICT, 40902),
            Error::IllegalState { .. } | Error::NoResetPolicy { .. } => (S::CONFLICT, 40903),
            Error::TopicNameInvalid { .. }
            | Error::TopicExists { .. }
            | Error::TooManyTopics { .. }
            | Error::TooManyGroups { .. }
            | Error::PartitionCountInvalid { .. }
            | Error::ConfigInvalid { .. }
            | Error::MetadataTooLarge { .. }
            | Error::OffsetOutOfRange { .. } => (S::BAD_REQUEST, 40002),
            Error::GroupNameInvalid { .. }
            | Error::InstanceNameInvalid { .. }
            | Error::PatternInvalid { .. } => (S::UNPROCESSABLE_ENTITY, 42204),
            Error::RecordTooLarge { .. }
            | Error::TooManyRecords { .. }
            | Error::AppendTooLarge { .. }
            | Error::TooManyTopicsInSubscription { .. } => (S::UNPROCESSABLE_ENTITY, 42206),
            Error::TooManyInstances { .. } => (S::SERVICE_UNAVAILABLE, 50301),
            Error::Poisoned => (S::SERVICE_UNAVAILABLE, 50302),
            Error::Corrupt { .. }
            | Error::Io { .. }
            | Error::Meta { .. }
            | Error::MetaCorrupt { .. }
            | Error::LockPoisoned => {
                tracing::error!(error = %e, "log error answering a Kafka REST request");
                return Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    50002,
                    "internal Kafka error; see the server log",
                );
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for KafkaError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error_code": self.code, "message": self.message});
        let ct = if self.v3 {
            "application/json"
        } else {
            V2_CONTENT_TYPE
        };
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        resp
    }
}

/// `text` as one URL path segment: every byte but RFC 3986's unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded, so a group or instance name with a space, `?`, `#`
/// or `%` still makes a link (`base_uri`, v3's `self` and `related`) that reaches it (the
/// router decodes it back).
pub(super) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a produced key or value of the binary format as the REST Proxy does, with Guava's
/// `BaseEncoding.base64()`: every trailing `=` is trimmed first (so padding is optional, and
/// any amount of it is accepted), the rest must be of the standard alphabet with a length
/// other than 1 mod 4, and the unused low bits of its last character are not checked.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const GUAVA: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    GUAVA.decode(text.trim_end_matches('='))
}

/// The code a produce answers for one record that failed, as the REST Proxy's exception mapper
/// gives it for the producer's exception: 50003 when a retry may succeed (a stopped log, like
/// Kafka's retriable exceptions), 50002 for a record over `max.message.bytes` (Kafka's
/// `RecordTooLargeException`, a plain Kafka error); other codes as they are.
pub(crate) fn produce_error_code(e: &KafkaError) -> u32 {
    match e.code() {
        50302 => 50003,
        42206 => 50002,
        code => code,
    }
}

/// Serialises `body` with a content type.
pub(crate) fn json_response<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    body: &T,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = (status, bytes).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp
        }
        Err(e) => KafkaError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50002,
            format!("cannot encode the reply: {e}"),
        )
        .into_response(),
    }
}

/// Runs a blocking log call on the blocking pool.
pub(crate) async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, KafkaError>
where
    T: Send + 'static,
    F: FnOnce(&Log) -> crate::log::Result<T> + Send + 'static,
{
    let log = state.engine.log().clone();
    match tokio::task::spawn_blocking(move || f(&log)).await {
        Ok(result) => result.map_err(KafkaError::from),
        Err(e) => {
            tracing::error!(error = %e, "blocking log task failed");
            Err(KafkaError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                50002,
                "internal Kafka error; see the server log",
            ))
        }
    }
}
