//! The MongoDB Atlas Data API v1 surface under `/mongo`: `POST /mongo/action/{action}` for
//! `findOne find insertOne insertMany updateOne updateMany replaceOne deleteOne deleteMany
//! aggregate`, the extensions `createIndex listIndexes dropIndex listCollections drop explain`,
//! and change streams over SSE at `GET /mongo/watch` (see [`watch`]).
//!
//! Bodies are Extended JSON (canonical or relaxed) under `application/json` or
//! `application/ejson`; responses are relaxed Extended JSON unless `Accept` asks for
//! `application/ejson`, which gets canonical. Errors use the Data API's body
//! `{error, error_code, link}`. Engine calls run on the blocking pool.

mod ejson;
mod watch;
pub use watch::{WATCH_HEARTBEAT_MS_MAX, WATCH_HEARTBEAT_MS_MIN};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bson::{Bson, Document};
use serde_json::{Value, json};

use super::AppState;
use super::error::framework_rejection;
use crate::history::{
    self, AggregateOptions, DeleteOptions, FindOptions, History, IndexModel, InsertManyOptions,
    ReplaceOptions, UpdateOptions,
};

pub(crate) use ejson::Format;

/// Default `limit` of `find`, as in the Data API.
pub(crate) const FIND_LIMIT_DEFAULT: u64 = 1_000;
/// Largest `limit` of `find`, as in the Data API.
pub const FIND_LIMIT_MAX: u64 = 50_000;

/// The `/mongo` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/mongo/action/{action}", post(action))
        .route("/mongo/watch", get(watch::watch))
        .layer(axum::middleware::from_fn(error_bodies))
}

/// The Data API's answer to a path under `/mongo` that names no endpoint (404).
pub(crate) fn not_found(path: &str) -> Response {
    DataApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no endpoint at {path}"),
    )
    .into_response()
}

/// The Data API's answer to a request without valid credentials (401): with none, its
/// `InvalidParameter` "no authentication methods were specified"; with a wrong one,
/// `InvalidSession`.
pub(crate) fn unauthorized(credentials_sent: bool) -> Response {
    let (code, message) = if credentials_sent {
        (
            "InvalidSession",
            "invalid session: the bearer token is not valid",
        )
    } else {
        (
            "InvalidParameter",
            "no authentication methods were specified",
        )
    };
    DataApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response()
}

/// Gives the framework's own rejections under `/mongo` ([`framework_rejection`]: a body over
/// `http_body_bytes_max`, a method the path does not serve, a query that does not parse) the
/// Data API's error body, as every handler error has.
async fn error_bodies(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match framework_rejection(next.run(request).await).await {
        Ok((status, text)) => {
            let code = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "RequestTooLarge",
                StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
                StatusCode::NOT_FOUND => "NotFound",
                s if s.is_client_error() => "InvalidParameter",
                _ => "InternalServerError",
            };
            let message = text.unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_owned()
            });
            DataApiError::new(status, code, message).into_response()
        }
        Err(response) => response,
    }
}

/// A Data API error: status, `error_code` and a message safe to show.
#[derive(Debug)]
pub(crate) struct DataApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Extra body fields (`insertMany`'s `insertedIds`, `nInserted`, `writeErrors`).
    details: Option<Value>,
}

impl DataApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    fn missing(field: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!("must specify {field}"),
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }
}

impl From<history::Error> for DataApiError {
    fn from(e: history::Error) -> Self {
        Self::of(&e)
    }
}

impl DataApiError {
    /// The Data API error for a history error (store failures become a generic 500 and are
    /// logged here).
    fn of(e: &history::Error) -> Self {
        if !e.is_client_error() {
            tracing::error!(error = %e, "history store failure answering a Data API request");
            return Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "internal server error",
            );
        }
        let (status, code) = match e {
            history::Error::DuplicateKey { .. } => (StatusCode::CONFLICT, "DuplicateKey"),
            history::Error::DocumentTooLarge { .. } | history::Error::KeyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "DocumentTooLarge")
            }
            history::Error::NamespaceNotFound { .. } | history::Error::IndexNotFound { .. } => {
                (StatusCode::NOT_FOUND, "NotFound")
            }
            history::Error::Unsupported(_) => (StatusCode::BAD_REQUEST, "UnsupportedOperation"),
            // MongoDB's code name: the client can fix an expression's operands, add an index,
            // narrow the query, pass allowDiskUse or a longer maxTimeMS.
            history::Error::MemoryLimitExceeded { .. }
            | history::Error::MaxTimeExpired
            | history::Error::Expression { .. }
            | history::Error::InvalidExpression { .. }
            | history::Error::ObjectTooLarge { .. }
            | history::Error::LookupTooLarge { .. }
            | history::Error::ResultTooLarge { .. } => (StatusCode::BAD_REQUEST, e.code_name()),
            _ => (StatusCode::BAD_REQUEST, "InvalidParameter"),
        };
        Self::new(status, code, e.to_string())
    }

    /// Adds fields to the error body (an object's fields are merged into it).
    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for DataApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "error": self.message,
            "error_code": self.code,
            "link": "http://127.0.0.1/mongo/logs",
        });
        if let (Value::Object(b), Some(Value::Object(extra))) = (&mut body, self.details) {
            b.extend(extra);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

/// The common fields of every action body.
struct Target {
    database: String,
    collection: String,
}

/// Reads `dataSource`, `database` and `collection` (all required, as in the Data API).
fn target(body: &Document, needs_collection: bool) -> Result<Target, DataApiError> {
    let field = |name: &str| -> Result<String, DataApiError> {
        match body.get(name) {
            Some(Bson::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(DataApiError::invalid(format!(
                "{name} must be a non-empty string"
            ))),
            None => Err(DataApiError::missing(name)),
        }
    };
    field("dataSource")?;
    let database = field("database")?;
    let collection = if needs_collection {
        field("collection")?
    } else {
        String::new()
    };
    Ok(Target {
        database,
        collection,
    })
}

fn opt_doc(body: &Document, name: &str) -> Result<Option<Document>, DataApiError> {
    match body.get(name) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d.clone())),
        Some(_) => Err(DataApiError::invalid(format!("{name} must be an object"))),
    }
}

fn req_doc(body: &Document, name: &str) -> Result<Document, DataApiError> {
    opt_doc(body, name)?.ok_or_else(|| DataApiError::missing(name))
}

/// An optional array of objects (`documents`, `pipeline`, `arrayFilters`).
fn opt_docs(body: &Document, name: &str) -> Result<Option<Vec<Document>>, DataApiError> {
    let items = match body.get(name) {
        None | Some(Bson::Null) => return Ok(None),
        Some(Bson::Array(items)) => items,
        Some(_) => {
            return Err(DataApiError::invalid(format!(
                "{name} must be an array of objects"
            )));
        }
    };
    items
        .iter()
        .map(|d| {
            d.as_document()
                .cloned()
                .ok_or_else(|| DataApiError::invalid(format!("{name} must be an array of objects")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn opt_u64(body: &Document, name: &str) -> Result<Option<u64>, DataApiError> {
    match body.get(name) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => {
            let n = match v {
                Bson::Int32(i) => i64::from(*i),
                Bson::Int64(i) => *i,
                #[expect(clippy::cast_possible_truncation, reason = "checked integral below")]
                Bson::Double(d) if d.fract() == 0.0 => *d as i64,
                _ => {
                    return Err(DataApiError::invalid(format!(
                        "{name} must be a non-negative integer"
                    )));
                }
            };
            u64::try_from(n).map(Some).map_err(|_| {
                DataApiError::invalid(format!("{name} must be a non-negative integer"))
            })
        }
    }
}

fn opt_bool(body: &Document, name: &str) -> Result<bool, DataApiError> {
    match body.get(name) {
        None | Some(Bson::Null) => Ok(false),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(_) => Err(DataApiError::invalid(format!("{name} must be a boolean"))),
    }
}

/// `maxTimeMS` (MongoDB's read option; absent or null: the store's `default_max_time_ms`).
fn opt_max_time_ms(body: &Document) -> Result<Option<u64>, DataApiError> {
    match body.get("maxTimeMS") {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => Ok(Some(history::parse_max_time_ms(v)?)),
    }
}

/// `POST /mongo/action/{action}`.
async fn action(
    State(state): State<AppState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = Format::from_accept(&headers);
    // Media types are case-insensitive (RFC 9110 §8.3.1): `Application/JSON` is JSON.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json")
        && !content_type.starts_with("application/ejson")
    {
        return DataApiError::invalid("Content-Type must be application/json or application/ejson")
            .into_response();
    }
    let body = match ejson::parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let history = state.engine.history().clone();
    let result =
        tokio::task::spawn_blocking(move || run_action(&history, &action, &body, format)).await;
    match result {
        Ok(Ok(value)) => ejson::respond(value, format),
        Ok(Err(e)) => e.into_response(),
        Err(join) => {
            tracing::error!(error = %join, "Data API task failed");
            DataApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "internal server error",
            )
            .into_response()
        }
    }
}

/// An `_id` as the Data API returns it: a hex string in JSON, `{$oid}` in EJSON.
fn id_value(id: &Bson, format: Format) -> Value {
    match (id, format) {
        (Bson::ObjectId(o), Format::Json) => Value::String(o.to_hex()),
        (other, f) => f.value(other.clone()),
    }
}

fn docs_value(docs: Vec<Document>, format: Format) -> Value {
    Value::Array(
        docs.into_iter()
            .map(|d| format.value(Bson::Document(d)))
            .collect(),
    )
}

fn update_value(r: &history::UpdateResult, format: Format) -> Value {
    let mut v = json!({"matchedCount": r.matched, "modifiedCount": r.modified});
    if let (Some(id), Value::Object(m)) = (&r.upserted_id, &mut v) {
        m.insert("upsertedId".into(), id_value(id, format));
    }
    v
}

fn run_action(
    h: &History,
    action: &str,
    body: &Document,
    format: Format,
) -> Result<Value, DataApiError> {
    let known = [
        "findOne",
        "find",
        "insertOne",
        "insertMany",
        "updateOne",
        "updateMany",
        "replaceOne",
        "deleteOne",
        "deleteMany",
        "aggregate",
        "createIndex",
        "listIndexes",
        "dropIndex",
        "listCollections",
        "drop",
        "explain",
    ];
    if !known.contains(&action) {
        return Err(DataApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("unknown action `{action}`"),
        ));
    }
    let t = target(body, action != "listCollections")?;
    let (db, coll) = (t.database.as_str(), t.collection.as_str());
    let filter = || opt_doc(body, "filter").map(Option::unwrap_or_default);
    Ok(match action {
        "findOne" => {
            let options = FindOptions {
                projection: opt_doc(body, "projection")?,
                limit: Some(1),
                max_time_ms: opt_max_time_ms(body)?,
                let_vars: opt_doc(body, "let")?,
                ..FindOptions::default()
            };
            let d = h.find(db, coll, &filter()?, &options)?.into_iter().next();
            json!({"document": d.map_or(Value::Null, |d| format.value(Bson::Document(d)))})
        }
        "find" | "explain" => {
            let limit = opt_u64(body, "limit")?.unwrap_or(FIND_LIMIT_DEFAULT);
            if limit > FIND_LIMIT_MAX {
                return Err(DataApiError::invalid(format!(
                    "limit must be at most {FIND_LIMIT_MAX}"
                )));
            }
            let options = FindOptions {
                projection: opt_doc(body, "projection")?,
                sort: opt_doc(body, "sort")?,
                skip: opt_u64(body, "skip")?.unwrap_or(0),
                limit: Some(if limit == 0 {
                    FIND_LIMIT_DEFAULT
                } else {
                    limit
                }),
                allow_disk_use: opt_bool(body, "allowDiskUse")?,
                max_time_ms: opt_max_time_ms(body)?,
                let_vars: opt_doc(body, "let")?,
            };
            if action == "explain" {
                format.value(Bson::Document(h.explain(db, coll, &filter()?, &options)?))
            } else {
                json!({"documents": docs_value(h.find(db, coll, &filter()?, &options)?, format)})
            }
        }
        "insertOne" => {
            let id = h.insert_one(db, coll, req_doc(body, "document")?)?;
            json!({"insertedId": id_value(&id, format)})
        }
        "insertMany" => {
            let docs =
                opt_docs(body, "documents")?.ok_or_else(|| DataApiError::missing("documents"))?;
            let ordered = match body.get("ordered") {
                None | Some(Bson::Null) => true,
                Some(Bson::Boolean(b)) => *b,
                Some(_) => return Err(DataApiError::invalid("ordered must be a boolean")),
            };
            let result = h.insert_many_with(db, coll, docs, InsertManyOptions { ordered })?;
            let ids: Vec<Value> = result
                .inserted
                .iter()
                .map(|(_, id)| id_value(id, format))
                .collect();
            let Some(first) = result.write_errors.first() else {
                return Ok(json!({"insertedIds": ids}));
            };
            // Some documents failed: the Data API's error body for the first failure, plus
            // MongoDB's bulk-write fields so a client sees what made it.
            return Err(DataApiError::of(&first.error).with_details(json!({
                "insertedIds": ids,
                "nInserted": result.inserted.len(),
                "writeErrors": result.write_errors.iter().map(|w| json!({
                    "index": w.index,
                    "code": w.error.code(),
                    "errmsg": w.error.to_string(),
                })).collect::<Vec<_>>(),
            })));
        }
        "updateOne" | "updateMany" => {
            let options = UpdateOptions {
                upsert: opt_bool(body, "upsert")?,
                multi: action == "updateMany",
                array_filters: opt_docs(body, "arrayFilters")?,
                let_vars: opt_doc(body, "let")?,
            };
            let (filter, limit) = (filter()?, opt_max_time_ms(body)?);
            // An array is a pipeline-style update; an object must hold operators.
            if let Some(Bson::Array(_)) = body.get("update") {
                let pipeline = opt_docs(body, "update")?.unwrap_or_default();
                let r =
                    h.with_time_limit(limit, || h.update(db, coll, &filter, &pipeline, options))?;
                return Ok(update_value(&r, format));
            }
            let update = req_doc(body, "update")?;
            if !update.keys().next().is_some_and(|k| k.starts_with('$')) {
                return Err(DataApiError::invalid(
                    "update must only contain update operators; use replaceOne to replace",
                ));
            }
            let r = h.with_time_limit(limit, || h.update(db, coll, &filter, &update, options))?;
            update_value(&r, format)
        }
        "replaceOne" => {
            let replacement = req_doc(body, "replacement")?;
            let options = ReplaceOptions {
                upsert: opt_bool(body, "upsert")?,
                let_vars: opt_doc(body, "let")?,
            };
            let filter = filter()?;
            let r = h.with_time_limit(opt_max_time_ms(body)?, || {
                h.replace_with(db, coll, &filter, &replacement, options)
            })?;
            update_value(&r, format)
        }
        "deleteOne" | "deleteMany" => {
            let options = DeleteOptions {
                multi: action == "deleteMany",
                let_vars: opt_doc(body, "let")?,
            };
            let filter = filter()?;
            let n = h.with_time_limit(opt_max_time_ms(body)?, || {
                h.delete_with(db, coll, &filter, &options)
            })?;
            json!({"deletedCount": n})
        }
        "aggregate" => {
            let pipeline =
                opt_docs(body, "pipeline")?.ok_or_else(|| DataApiError::missing("pipeline"))?;
            let options = AggregateOptions {
                allow_disk_use: opt_bool(body, "allowDiskUse")?,
                max_time_ms: opt_max_time_ms(body)?,
                let_vars: opt_doc(body, "let")?,
            };
            json!({"documents": docs_value(h.aggregate_with(db, coll, &pipeline, options)?, format)})
        }
        "createIndex" => {
            let keys = req_doc(body, "keys")?;
            let options = opt_doc(body, "options")?;
            let model = IndexModel::from_documents(&keys, options.as_ref())?;
            json!({"name": h.create_index(db, coll, &model)?})
        }
        "listIndexes" => json!({"indexes": docs_value(h.list_indexes(db, coll)?, format)}),
        "dropIndex" => {
            let Some(Bson::String(name)) = body.get("name") else {
                return Err(DataApiError::missing("name"));
            };
            h.drop_index(db, coll, name)?;
            json!({"dropped": name})
        }
        "listCollections" => {
            let colls = h.list_collection_uuids(db)?;
            let info =
                |uuid: bson::Uuid| json!({"readOnly": false, "uuid": format.value(uuid.into())});
            json!({"collections": colls.into_iter().map(|(n, uuid)| json!({"name": n, "type": "collection", "info": info(uuid)})).collect::<Vec<_>>()})
        }
        _ => json!({"dropped": h.drop_collection(db, coll)?}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_stage_over_its_memory_limit_answers_400_with_mongodbs_code_name() {
        for (allow_disk_use, code) in [
            (false, "QueryExceededMemoryLimitNoDiskUseAllowed"),
            (true, "ExceededMemoryLimit"),
        ] {
            let e = history::Error::MemoryLimitExceeded {
                executor: history::Executor::Aggregation,
                stage: "$group",
                len: 11,
                max: 10,
                allow_disk_use,
            };
            let answer = DataApiError::of(&e);
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert_eq!(answer.code, code);
            assert_eq!(answer.message, e.to_string());
        }
    }

    #[test]
    fn an_expression_error_answers_400_with_mongodbs_code_name() {
        for (code, name) in [
            (14, "TypeMismatch"),
            (16020, "Location16020"),
            (2, "BadValue"),
        ] {
            let e = history::Error::Expression {
                code,
                message: "can't $subtract string from int".into(),
            };
            let answer = DataApiError::of(&e);
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert_eq!(answer.code, name);
            assert_eq!(answer.message, e.to_string());
        }
    }

    #[test]
    fn an_expression_that_cannot_be_parsed_answers_400_with_mongodbs_code_name() {
        for (code, name) in [(168, "InvalidPipelineOperator"), (40066, "Location40066")] {
            let e = history::Error::InvalidExpression {
                code,
                message: "Unrecognized expression '$foo'".into(),
            };
            let answer = DataApiError::of(&e);
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert_eq!(answer.code, name);
            assert_eq!(answer.message, e.to_string());
        }
    }

    #[test]
    fn an_output_over_its_limit_answers_400_with_mongodbs_code_name() {
        let max = history::STAGE_DOCUMENT_BYTES_MAX;
        for (e, name) in [
            (
                history::Error::ObjectTooLarge {
                    len: max + 1,
                    max,
                    first: Some("_id: 1".into()),
                },
                "BSONObjectTooLarge",
            ),
            (
                history::Error::LookupTooLarge {
                    from: "f".into(),
                    len: max + 1,
                    max,
                },
                "Location4568",
            ),
            (
                history::Error::ResultTooLarge {
                    executor: history::Executor::Find,
                    len: 11,
                    max: 10,
                },
                "Location16389",
            ),
        ] {
            let answer = DataApiError::of(&e);
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert_eq!(answer.code, name);
            assert_eq!(answer.message, e.to_string());
        }
    }
}
