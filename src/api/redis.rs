//! The Upstash Redis REST surface under `/redis`: `POST /redis` with a JSON command array,
//! `POST /redis/pipeline`, `POST /redis/multi-exec`, and the path form
//! `GET|POST /redis/{command}/{arg}/…` (a POST body becomes the last argument; each segment is
//! percent-decoded after the path is split, so `%2F` is a `/` inside an argument).
//!
//! Replies are `{"result": …}`; command errors are `{"error": "ERR …"}` with status 400. With
//! the header `Upstash-Encoding: base64`, string results are base64-encoded as Upstash does
//! (all but the `OK` status). As on Upstash, the path form takes the arguments after a POST's
//! body from the query string (`/redis/set/k?EX=100` with body `v` is `SET k v EX 100`), only
//! HEAD, GET, POST and PUT are served (405 otherwise), and every failure, the framework's
//! rejections included, has the `{"error"}` body.

use axum::Router;
use axum::body::Bytes as BodyBytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::AppState;
use super::error::framework_rejection;
use crate::cache::{Cache, Frame};

/// Most commands in one pipeline or transaction request.
pub const UPSTASH_PIPELINE_LEN_MAX: usize = 10_000;

/// The query parameter Upstash reads a token from (`auth.rs` checks it); never an argument.
pub(crate) const TOKEN_QUERY_PARAM: &str = "_token";

/// The `/redis` routes.
pub(crate) fn routes() -> Router<AppState> {
    let served = MethodFilter::GET
        .or(MethodFilter::HEAD)
        .or(MethodFilter::POST)
        .or(MethodFilter::PUT);
    let body_form = MethodFilter::POST.or(MethodFilter::PUT);
    Router::new()
        .route("/redis", on(body_form, single))
        .route("/redis/pipeline", on(body_form, pipeline))
        .route("/redis/multi-exec", on(body_form, multi_exec))
        .route("/redis/{*path}", on(served, path_form))
        .layer(middleware::from_fn(error_bodies))
}

/// Gives the framework's rejections under `/redis` (a body over the size limit, a method not
/// served, a timeout) Upstash's `{"error"}` body: its client parses the body before it looks
/// at the status.
async fn error_bodies(request: Request, next: Next) -> Response {
    match framework_rejection(next.run(request).await).await {
        Ok((status, text)) => {
            let text = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "ERR max request size exceeded".to_owned(),
                _ => text.unwrap_or_else(|| {
                    status
                        .canonical_reason()
                        .unwrap_or("request failed")
                        .to_owned()
                }),
            };
            error(status, text)
        }
        Err(response) => response,
    }
}

fn base64_wanted(headers: &HeaderMap) -> bool {
    headers
        .get("upstash-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"))
}

fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": text.into()}))).into_response()
}

/// Parses one JSON command: an array of strings, numbers or booleans.
fn parse_command(v: &Value) -> Result<Vec<Bytes>, String> {
    let items = v
        .as_array()
        .ok_or("ERR a command is a JSON array of strings")?;
    if items.is_empty() {
        return Err("ERR empty command".into());
    }
    items
        .iter()
        .map(|a| match a {
            Value::String(s) => Ok(Bytes::from(s.clone())),
            Value::Number(n) => Ok(Bytes::from(n.to_string())),
            Value::Bool(b) => Ok(Bytes::from(b.to_string())),
            _ => Err("ERR arguments must be strings or numbers".to_owned()),
        })
        .collect()
}

/// Converts a reply to Upstash's JSON result.
fn to_json(frame: Frame, b64: bool) -> Value {
    let text = |b: &[u8]| {
        if b64 {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        } else {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
    };
    match frame {
        // Upstash leaves the `OK` status as it is, base64 or not.
        Frame::Simple(s) if s == "OK" => Value::String(s.into_owned()),
        Frame::Simple(s) => text(s.as_bytes()),
        Frame::Error(e) => json!({"error": e}),
        Frame::Integer(n) => json!(n),
        Frame::Bulk(b) | Frame::Verbatim(b) => text(&b),
        Frame::Null | Frame::NullArray => Value::Null,
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            Value::Array(items.into_iter().map(|f| to_json(f, b64)).collect())
        }
        Frame::Map(pairs) => Value::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_json(k, b64), to_json(v, b64)])
                .collect(),
        ),
        Frame::Double(d) => text(crate::cache::format_double(d).as_bytes()),
        Frame::Boolean(b) => json!(i64::from(b)),
        Frame::BigNumber(s) => text(s.as_bytes()),
    }
}

/// One reply as an Upstash response body element.
fn entry(frame: Frame, b64: bool) -> Value {
    match frame {
        Frame::Error(e) => json!({"error": e}),
        other => json!({"result": to_json(other, b64)}),
    }
}

async fn run_one(cache: Cache, args: Vec<Bytes>, b64: bool) -> Response {
    let frame = match tokio::task::spawn_blocking(move || cache.execute(0, &args)).await {
        Ok(f) => f,
        Err(e) => return super::ApiError::internal(&e).into_response(),
    };
    match frame {
        Frame::Error(e) => error(StatusCode::BAD_REQUEST, e),
        other => axum::Json(json!({"result": to_json(other, b64)})).into_response(),
    }
}

async fn single(State(state): State<AppState>, headers: HeaderMap, body: BodyBytes) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("ERR invalid JSON body: {e}"),
            );
        }
    };
    match parse_command(&parsed) {
        Ok(args) => run_one(state.engine.cache().clone(), args, base64_wanted(&headers)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

fn parse_batch(body: &[u8]) -> Result<Vec<Vec<Bytes>>, String> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| format!("ERR invalid JSON body: {e}"))?;
    let cmds = parsed
        .as_array()
        .ok_or("ERR a pipeline is a JSON array of commands")?;
    if cmds.len() > UPSTASH_PIPELINE_LEN_MAX {
        return Err(format!(
            "ERR pipeline of {} commands exceeds {UPSTASH_PIPELINE_LEN_MAX}",
            cmds.len()
        ));
    }
    cmds.iter().map(parse_command).collect()
}

async fn pipeline(State(state): State<AppState>, headers: HeaderMap, body: BodyBytes) -> Response {
    let cmds = match parse_batch(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let b64 = base64_wanted(&headers);
    let cache = state.engine.cache().clone();
    let frames = tokio::task::spawn_blocking(move || {
        cmds.iter().map(|c| cache.execute(0, c)).collect::<Vec<_>>()
    })
    .await;
    match frames {
        Ok(frames) => axum::Json(Value::Array(
            frames.into_iter().map(|f| entry(f, b64)).collect(),
        ))
        .into_response(),
        Err(e) => super::ApiError::internal(&e).into_response(),
    }
}

async fn multi_exec(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: BodyBytes,
) -> Response {
    let cmds = match parse_batch(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // A command a transaction cannot queue discards it whole, with that command's error, as
    // Upstash and Redis's EXECABORT do: nothing runs.
    if let Some(refusal) = cmds.iter().find_map(|c| Cache::transaction_refusal(c)) {
        return (StatusCode::BAD_REQUEST, axum::Json(entry(refusal, false))).into_response();
    }
    let b64 = base64_wanted(&headers);
    let cache = state.engine.cache().clone();
    match tokio::task::spawn_blocking(move || cache.execute_atomic(0, &cmds)).await {
        Ok(Ok(frames)) => axum::Json(Value::Array(
            frames.into_iter().map(|f| entry(f, b64)).collect(),
        ))
        .into_response(),
        // EXECABORT: nothing ran; Upstash's error shape, as for a single refused command.
        Ok(Err(abort)) => (StatusCode::BAD_REQUEST, axum::Json(entry(abort, b64))).into_response(),
        Err(e) => super::ApiError::internal(&e).into_response(),
    }
}

async fn path_form(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: BodyBytes,
) -> Response {
    // IMPORTANT: split the path as sent, then decode each segment. Decoding first (as the
    // `{*path}` extractor does) would turn an argument's `%2F` into a separator.
    let path = uri.path();
    let rest = path.strip_prefix("/redis/").unwrap_or(path);
    let mut args = Vec::new();
    for segment in rest.split('/').filter(|s| !s.is_empty()) {
        match decode_percent(segment.as_bytes()) {
            Some(arg) => args.push(Bytes::from(arg)),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ERR invalid percent-encoding in the command path",
                );
            }
        }
    }
    if args.is_empty() {
        return error(StatusCode::BAD_REQUEST, "ERR empty command");
    }
    if !body.is_empty() {
        args.push(body);
    }
    // The arguments after the body: `?EX=100` is `EX 100`, `?NX` is `NX`.
    for pair in uri.query().unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.is_empty() || name == TOKEN_QUERY_PARAM {
            continue;
        }
        for part in [name, value].into_iter().filter(|p| !p.is_empty()) {
            match decode_query(part) {
                Some(arg) => args.push(Bytes::from(arg)),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "ERR invalid percent-encoding in the query",
                    );
                }
            }
        }
    }
    run_one(state.engine.cache().clone(), args, base64_wanted(&headers)).await
}

/// The token of a `/redis` request's `_token` query parameter, decoded, if it has one.
pub(crate) fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == TOKEN_QUERY_PARAM)
            .then(|| decode_query(value))
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
    })
}

/// Upstash's answer to a request without the right token (401).
pub(crate) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "WRONGPASS invalid or missing auth token",
    )
}

/// Decodes one query-string name or value: `+` is a space there, then `%XX` escapes.
fn decode_query(part: &str) -> Option<Vec<u8>> {
    decode_percent(part.replace('+', " ").as_bytes())
}

/// Decodes one path segment's `%XX` escapes into the bytes they stand for (any byte, UTF-8 or
/// not); `None` for a `%` not followed by two hex digits. `+` stays `+`, as in any URL path.
fn decode_percent(segment: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(*bytes.next()?).to_digit(16)?;
            let lo = char::from(*bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_percent;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_percent(b"a%2Fb%2f%20+"), Some(b"a/b/ +".to_vec()));
        assert_eq!(decode_percent(b"%FF%00"), Some(vec![0xFF, 0]));
        assert_eq!(decode_percent(b""), Some(vec![]));
        for bad in [&b"%"[..], b"%4", b"%zz", b"a%g1", b"%+1"] {
            assert_eq!(decode_percent(bad), None);
        }
    }
}
