//! Extended JSON at the Data API boundary: parsing request bodies (canonical or relaxed) and
//! rendering responses as the Data API's standard JSON (`application/json`) or canonical
//! Extended JSON (`application/ejson`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bson::{Bson, Document};
use serde_json::Value;

use super::DataApiError;

/// Response encoding chosen from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The Data API's standard JSON under `application/json` (see [`standard_json`]).
    Json,
    /// Canonical Extended JSON under `application/ejson`.
    Ejson,
}

impl Format {
    /// `application/ejson` in `Accept` selects canonical output; anything else standard JSON.
    /// Media types are case-insensitive (RFC 9110 §8.3.1), so `Application/EJSON` is the same.
    pub(crate) fn from_accept(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if accept.contains("application/ejson") {
            Self::Ejson
        } else {
            Self::Json
        }
    }

    /// Renders a value in this format.
    pub(crate) fn value(self, v: Bson) -> Value {
        match self {
            Self::Json => standard_json(v),
            Self::Ejson => canonical(v),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Ejson => "application/ejson",
        }
    }
}

/// A value as canonical Extended JSON: `Bson::into_canonical_extjson`, except that every NaN
/// is `{"$numberDouble": "NaN"}`, the specification's one spelling whatever its sign bit
/// (`bson` writes `-NaN` for the NaN x86 arithmetic makes of `inf - inf`), and a subnormal
/// double is wrapped in `$numberDouble` as every other finite one is (`bson` leaves it a bare
/// JSON number).
fn canonical(v: Bson) -> Value {
    match v {
        Bson::Double(f) if f.is_nan() => serde_json::json!({"$numberDouble": "NaN"}),
        Bson::Double(f) if f.is_subnormal() => serde_json::json!({"$numberDouble": f.to_string()}),
        Bson::Document(d) => Value::Object(d.into_iter().map(|(k, v)| (k, canonical(v))).collect()),
        Bson::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other.into_canonical_extjson(),
    }
}

/// Earliest date written as text in standard JSON: 0000-01-01T00:00:00.000Z.
const TEXT_DATE_MS_MIN: i64 = -62_167_219_200_000;
/// Latest date written as text in standard JSON: 9999-12-31T23:59:59.999Z.
const TEXT_DATE_MS_MAX: i64 = 253_402_300_799_999;

/// A value as the Data API's standard JSON (its "Data Formats" page): numbers as JSON
/// numbers, an ObjectId as its hex string, a date as its ISO-8601 text with milliseconds, a
/// Decimal128 as its text, binary data as `{"Subtype", "Data"}` (base64), a timestamp as
/// `{"T", "I"}`, a regular expression as `{"Pattern", "Options"}`. What JSON has no form
/// for (non-finite doubles, MinKey, MaxKey, dates outside years 0–9999, the deprecated types)
/// stays in its canonical Extended JSON wrapper.
pub(crate) fn standard_json(v: Bson) -> Value {
    match v {
        Bson::ObjectId(o) => Value::String(o.to_hex()),
        Bson::DateTime(d) => {
            let ms = d.timestamp_millis();
            if (TEXT_DATE_MS_MIN..=TEXT_DATE_MS_MAX).contains(&ms) {
                Value::String(crate::history::iso_string(ms))
            } else {
                canonical(Bson::DateTime(d))
            }
        }
        Bson::Decimal128(d) => Value::String(d.to_string()),
        Bson::Binary(b) => serde_json::json!({
            "Subtype": u8::from(b.subtype),
            "Data": base64::engine::general_purpose::STANDARD.encode(&b.bytes),
        }),
        Bson::Timestamp(t) => serde_json::json!({"T": t.time, "I": t.increment}),
        Bson::RegularExpression(r) => {
            serde_json::json!({"Pattern": r.pattern, "Options": r.options})
        }
        Bson::Document(d) => {
            Value::Object(d.into_iter().map(|(k, v)| (k, standard_json(v))).collect())
        }
        Bson::Array(items) => Value::Array(items.into_iter().map(standard_json).collect()),
        Bson::Double(f) if !f.is_finite() => canonical(Bson::Double(f)),
        other @ (Bson::Double(_)
        | Bson::Int32(_)
        | Bson::Int64(_)
        | Bson::String(_)
        | Bson::Boolean(_)
        | Bson::Null) => other.into_relaxed_extjson(),
        other => canonical(other),
    }
}

/// Parses a request body as an Extended JSON object.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Document, DataApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| DataApiError::invalid(format!("invalid JSON body: {e}")))?;
    match to_bson(value) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(DataApiError::invalid(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(DataApiError::invalid(format!("invalid Extended JSON: {e}"))),
    }
}

/// Extended JSON (canonical or relaxed) as a value: `bson`'s conversion, except that a relaxed
/// `{"$date": "<ISO-8601>"}` with digits past the millisecond is rounded down to its
/// millisecond, as the drivers' Extended JSON parsers (Go's, Java's, Python's) take it (`bson`
/// rounds toward zero, so such a date before 1970 landed a millisecond late).
pub(crate) fn to_bson(mut value: Value) -> bson::error::Result<Bson> {
    floor_text_dates(&mut value);
    Bson::try_from(value)
}

/// Rewrites every `{"$date": "<text>"}` that `bson` accepts as the canonical
/// `{"$date": {"$numberLong"}}` of its instant rounded down to the millisecond. Its recursion
/// is bounded by `serde_json`'s nesting limit on the parsed text.
fn floor_text_dates(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(floor_text_dates),
        Value::Object(m) => {
            if let (1, Some(Value::String(text))) = (m.len(), m.get("$date")) {
                if let Some(ms) = floor_millis(text) {
                    m.insert(
                        "$date".into(),
                        serde_json::json!({"$numberLong": ms.to_string()}),
                    );
                }
                return;
            }
            m.values_mut().for_each(floor_text_dates);
        }
        _ => {}
    }
}

/// The milliseconds since the epoch of a date text `bson` takes, rounded down; `None` leaves
/// the text to `bson`.
fn floor_millis(text: &str) -> Option<i64> {
    bson::DateTime::parse_rfc3339_str(text).ok()?;
    let at: jiff::Timestamp = text.parse().ok()?;
    i64::try_from(at.as_nanosecond().div_euclid(1_000_000)).ok()
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
