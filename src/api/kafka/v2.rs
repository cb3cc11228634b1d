//! REST Proxy v2: topics, produce with the `binary` and `json` embedded formats, and the
//! consumer-instance API under `/kafka/consumers/{group}`.
//!
//! Deliberate difference: `GET …/records` returns as soon as any record is available instead
//! of lingering for the whole `consumer.request.timeout.ms` as the REST Proxy's default
//! `fetch.min.bytes = -1` does; with nothing to return it waits (without polling) up to
//! `min(timeout, consumer.request.timeout.ms)`.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::dto::{
    CommittedOffsetOut, ConsumerRecordOut, CreateConsumer, CreatedConsumer, OffsetsBody,
    PartitionInfo, PartitionsBody, ProduceOffset, ProduceRecord, ProduceRequest, ProduceResponse,
    Replica, SubscriptionBody, TopicInfoV2, WireTopicPartition,
};
use super::{KafkaError, V2_CONTENT_TYPE, blocking, decode_base64, json_response, path_segment};
use crate::api::AppState;
use crate::log::{
    self, ConsumedRecord, ConsumerSettings, OffsetReset, Record, Routing, Subscription, TopicInfo,
    TopicPartition,
};

/// Longest `consumer.request.timeout.ms` an instance may ask for, in ms (below the HTTP
/// handler timeout's default of 60 s).
pub(crate) const CONSUMER_REQUEST_TIMEOUT_MS_MAX: u64 = 30_000;
/// The REST Proxy's default `consumer.request.timeout.ms`.
const CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT: u64 = 1_000;
/// Default `max_bytes` of a records fetch.
const FETCH_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// The v2 routes.
pub(crate) fn routes() -> Router<AppState> {
    let inst = "/kafka/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/kafka/topics", get(list_topics))
        .route("/kafka/topics/{topic}", get(get_topic).post(produce))
        .route("/kafka/topics/{topic}/partitions", get(list_partitions))
        .route(
            "/kafka/topics/{topic}/partitions/{partition}",
            get(get_partition).post(produce_partition),
        )
        .route(
            "/kafka/topics/{topic}/partitions/{partition}/offsets",
            get(partition_offsets),
        )
        .route("/kafka/consumers/{group}", post(create_consumer))
        .route(inst, axum::routing::delete(delete_consumer))
        .route(
            &format!("{inst}/subscription"),
            post(subscribe).get(get_subscription).delete(unsubscribe),
        )
        .route(
            &format!("{inst}/assignments"),
            post(assign).get(get_assignments),
        )
        .route(&format!("{inst}/records"), get(records))
        .route(&format!("{inst}/offsets"), post(commit).get(committed))
        .route(&format!("{inst}/positions"), post(seek))
        .route(&format!("{inst}/positions/beginning"), post(seek_beginning))
        .route(&format!("{inst}/positions/end"), post(seek_end))
}

/// Embedded formats of keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// base64 strings.
    Binary,
    /// any JSON.
    Json,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Json => "json",
        }
    }

    fn records_content_type(self) -> &'static str {
        match self {
            Self::Binary => "application/vnd.kafka.binary.v2+json",
            Self::Json => "application/vnd.kafka.json.v2+json",
        }
    }
}

fn ok<T: serde::Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, V2_CONTENT_TYPE, body)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, KafkaError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            KafkaError::unprocessable(format!("invalid request body: {e}"))
        } else {
            KafkaError::bad_json(&e)
        }
    })
}

/// Parses an optional body: empty means `T::default()`.
fn parse_optional<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, KafkaError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

fn partition_number(topic: &str, p: i64) -> Result<u32, KafkaError> {
    u32::try_from(p).map_err(|_| {
        KafkaError::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("partition {p} of topic {topic} not found"),
        )
    })
}

fn wire_partitions(list: Vec<WireTopicPartition>) -> Result<Vec<TopicPartition>, KafkaError> {
    list.into_iter()
        .map(|w| {
            Ok(TopicPartition {
                partition: partition_number(&w.topic, w.partition)?,
                topic: w.topic,
            })
        })
        .collect()
}

fn partition_info(p: u32) -> PartitionInfo {
    PartitionInfo {
        partition: p,
        leader: 0,
        replicas: vec![Replica {
            broker: 0,
            leader: true,
            in_sync: true,
        }],
    }
}

fn topic_v2(info: TopicInfo) -> TopicInfoV2 {
    TopicInfoV2 {
        configs: info
            .config
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect(),
        partitions: (0..info.partitions).map(partition_info).collect(),
        name: info.name,
    }
}

async fn list_topics(State(state): State<AppState>) -> Result<Response, KafkaError> {
    let topics = blocking(&state, |l| l.topics()).await?;
    Ok(ok(&topics))
}

async fn get_topic(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Response, KafkaError> {
    let info = blocking(&state, move |l| l.topic(&topic)).await?;
    Ok(ok(&topic_v2(info)))
}

async fn list_partitions(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Response, KafkaError> {
    let info = blocking(&state, move |l| l.topic(&topic)).await?;
    Ok(ok(&(0..info.partitions)
        .map(partition_info)
        .collect::<Vec<_>>()))
}

async fn get_partition(
    State(state): State<AppState>,
    Path((topic, partition)): Path<(String, i64)>,
) -> Result<Response, KafkaError> {
    let p = partition_number(&topic, partition)?;
    blocking(&state, move |l| l.partition(&topic, p).map(|_| ())).await?;
    Ok(ok(&partition_info(p)))
}

async fn partition_offsets(
    State(state): State<AppState>,
    Path((topic, partition)): Path<(String, i64)>,
) -> Result<Response, KafkaError> {
    let p = partition_number(&topic, partition)?;
    let (start, end) = blocking(&state, move |l| {
        let part = l.partition(&topic, p)?;
        Ok((part.earliest_offset()?, part.latest_offset()))
    })
    .await?;
    Ok(ok(
        &serde_json::json!({"beginning_offset": start, "end_offset": end}),
    ))
}

/// The embedded format of a produce request, from its content type.
fn produce_format(headers: &HeaderMap) -> Result<Format, KafkaError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/vnd.kafka.binary.v2+json"
        | "application/vnd.kafka.v2+json"
        | "application/json" => Ok(Format::Binary),
        "application/vnd.kafka.json.v2+json" => Ok(Format::Json),
        "application/vnd.kafka.avro.v2+json"
        | "application/vnd.kafka.jsonschema.v2+json"
        | "application/vnd.kafka.protobuf.v2+json" => Err(KafkaError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42206,
            "schema-based formats need a schema registry, which this server does not provide; use binary or json",
        )),
        _ => Err(KafkaError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            format!(
                "unsupported content type {ct:?}; use application/vnd.kafka.binary.v2+json or application/vnd.kafka.json.v2+json"
            ),
        )),
    }
}

/// Turns an embedded key or value (its JSON text, already checked by the body's parser) into
/// bytes. The `json` format stores the text as sent without the whitespace between tokens:
/// the same JSON value the REST Proxy stores, with no parse and re-encode per record.
///
/// # Errors
/// In the binary format, data that is not a base64 string: 400 with code 400, worded as the
/// REST Proxy's `NoSchemaRecordSerializer` words its `BadRequestException` and its v2
/// exception mapper prefixes it.
fn embedded_bytes(
    format: Format,
    v: Option<&RawValue>,
) -> Result<Option<bytes::Bytes>, KafkaError> {
    let Some(raw) = v.filter(|raw| raw.get() != "null") else {
        return Ok(None);
    };
    match format {
        Format::Binary => {
            let bad = |what: &str| {
                let data = String::from_utf8_lossy(&compact_json(raw.get())).into_owned();
                KafkaError::new(
                    StatusCode::BAD_REQUEST,
                    400,
                    format!("Bad Request: data={data} is not {what}."),
                )
            };
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::String(s)) => decode_base64(&s)
                    .map(|b| Some(b.into()))
                    .map_err(|_| bad("a valid base64 string")),
                _ => Err(bad("a base64 string")),
            }
        }
        Format::Json => Ok(Some(compact_json(raw.get()))),
    }
}

/// `text`, valid JSON, without the whitespace between tokens (whitespace inside strings is
/// kept; an escaped quote does not end a string). Runs of token bytes and whole strings are
/// copied at once; a string's end is found with `memchr2` (its closing quote, or a backslash
/// that skips the escaped byte).
fn compact_json(text: &str) -> bytes::Bytes {
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some(&b) = rest.first() {
        let run = if is_space(b) {
            let spaces = rest
                .iter()
                .position(|&c| !is_space(c))
                .unwrap_or(rest.len());
            rest = rest.get(spaces..).unwrap_or_default();
            continue;
        } else if b == b'"' {
            string_len(rest)
        } else {
            rest.iter()
                .position(|&c| c == b'"' || is_space(c))
                .unwrap_or(rest.len())
        };
        let (head, tail) = rest.split_at(run.min(rest.len()));
        out.extend_from_slice(head);
        rest = tail;
    }
    out.into()
}

/// The length of the JSON string that `text` starts with, quotes included (all of `text` if
/// it is not closed).
fn string_len(text: &[u8]) -> usize {
    let mut at = 1;
    while let Some(found) = text
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        at += found;
        if text.get(at) == Some(&b'"') {
            return at + 1;
        }
        // A backslash: the next byte is escaped, whatever it is.
        at += 2;
    }
    text.len()
}

/// Renders stored bytes in the embedded format.
pub(crate) fn render_embedded(format: Format, b: Option<&bytes::Bytes>) -> Value {
    match (format, b) {
        (_, None) => Value::Null,
        (Format::Binary, Some(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Format::Json, Some(b)) => serde_json::from_slice(b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned())),
    }
}

async fn produce(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, KafkaError> {
    produce_to(state, topic, None, &headers, &body).await
}

async fn produce_partition(
    State(state): State<AppState>,
    Path((topic, partition)): Path<(String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, KafkaError> {
    let p = partition_number(&topic, partition)?;
    produce_to(state, topic, Some(p), &headers, &body).await
}

async fn produce_to(
    state: AppState,
    topic: String,
    path_partition: Option<u32>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, KafkaError> {
    let format = produce_format(headers)?;
    let request: ProduceRequest = parse(body)?;
    let _ = (
        &request.key_schema,
        &request.key_schema_id,
        &request.value_schema,
        &request.value_schema_id,
    );
    // The REST Proxy reads absent records as an empty list and declares the list @NotEmpty:
    // either fails bean validation before anything is produced (or a topic created).
    let Some(records) = request.records.filter(|r| !r.is_empty()) else {
        return Err(KafkaError::unprocessable("records must not be empty"));
    };
    if records.len() > log::RECORDS_PER_APPEND_MAX {
        return Err(log::Error::TooManyRecords {
            len: records.len(),
            max: log::RECORDS_PER_APPEND_MAX,
        }
        .into());
    }
    let mut targeted = Vec::with_capacity(records.len());
    for ProduceRecord {
        key,
        value,
        partition,
    } in records
    {
        let target = match partition {
            Some(p) => Some(partition_number(&topic, p)?),
            None => path_partition,
        };
        let record = Record {
            key: embedded_bytes(format, key)?,
            value: embedded_bytes(format, value)?,
            ..Record::default()
        };
        targeted.push((target, record));
    }
    let offsets = blocking(&state, move |l| append_records(l, &topic, targeted)).await?;
    Ok(ok(&ProduceResponse {
        key_schema_id: None,
        value_schema_id: None,
        offsets,
    }))
}

/// Appends a produce request's records (each with its target partition, if any) and answers
/// one entry per record, in order.
///
/// Whatever refuses the whole request (an unknown topic or partition, too many bytes) is found
/// before the first append, so a refused request stores nothing. A record over the topic's
/// `max.message.bytes` fails alone, as the REST Proxy, which sends records one by one, fails
/// it; the other records are appended, consecutive ones with the same target together, in
/// their order within each partition. A failed append fails only its own records.
fn append_records(
    l: &log::Log,
    topic: &str,
    records: Vec<(Option<u32>, Record)>,
) -> log::Result<Vec<ProduceOffset>> {
    let info = l.ensure_topic(topic)?;
    let max = info.config.max_message_bytes;
    let mut total = 0u64;
    // Per record: its run and place in the run, or why it failed.
    let mut slots: Vec<Result<(usize, usize), ProduceOffset>> = Vec::with_capacity(records.len());
    let mut runs: Vec<(Option<u32>, Vec<Record>)> = Vec::new();
    for (target, record) in records {
        if let Some(p) = target.filter(|&p| p >= info.partitions) {
            return Err(log::Error::PartitionNotFound {
                topic: topic.to_owned(),
                partition: i64::from(p),
                partitions: info.partitions,
            });
        }
        let len = log::record_bytes(&record);
        if len > max {
            slots.push(Err(failed_record(log::Error::RecordTooLarge { len, max })));
            continue;
        }
        total += len;
        let last = runs.len().saturating_sub(1);
        match runs.last_mut() {
            Some((t, list)) if *t == target => {
                slots.push(Ok((last, list.len())));
                list.push(record);
            }
            _ => {
                slots.push(Ok((runs.len(), 0)));
                runs.push((target, vec![record]));
            }
        }
    }
    if total > log::APPEND_BYTES_MAX {
        return Err(log::Error::AppendTooLarge {
            len: total,
            max: log::APPEND_BYTES_MAX,
        });
    }
    let placed: Vec<Result<Vec<log::Appended>, ProduceOffset>> = runs
        .into_iter()
        .map(|(target, list)| {
            let routing = target.map_or(Routing::Auto, Routing::Partition);
            l.append(topic, routing, list).map_err(failed_record)
        })
        .collect();
    // An append answers one entry per record, so `missing` is unreachable.
    let missing = || failed_record(log::Error::LockPoisoned);
    Ok(slots
        .into_iter()
        .map(|slot| match slot {
            Err(failed) => failed,
            Ok((run, at)) => match placed.get(run) {
                Some(Ok(list)) => list.get(at).map_or_else(missing, |a| ProduceOffset {
                    partition: Some(a.partition),
                    offset: Some(a.offset),
                    error_code: None,
                    error: None,
                }),
                Some(Err(failed)) => failed.clone(),
                None => missing(),
            },
        })
        .collect())
}

/// The `offsets` entry of a record that failed: partition and offset null, 50003 when a retry
/// may succeed, else 50002, and a safe message (internal errors are logged, not sent).
fn failed_record(e: log::Error) -> ProduceOffset {
    let e = KafkaError::from(e);
    ProduceOffset {
        partition: None,
        offset: None,
        error_code: Some(if e.code() == 50302 { 50003 } else { 50002 }),
        error: Some(e.message().to_owned()),
    }
}

async fn create_consumer(
    State(state): State<AppState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, KafkaError> {
    let req: CreateConsumer = parse_optional(&body)?;
    let invalid = |m: String| KafkaError::new(StatusCode::UNPROCESSABLE_ENTITY, 42204, m);
    // The REST Proxy upper-cases the name before matching it: `JSON` is `json`.
    let format_name = req
        .format
        .as_deref()
        .unwrap_or("binary")
        .to_ascii_lowercase();
    let format = match format_name.as_str() {
        "binary" => Format::Binary,
        "json" => Format::Json,
        other => {
            return Err(invalid(format!(
                "format {other:?} is not supported; use binary or json"
            )));
        }
    };
    let offset_reset = match req.auto_offset_reset.as_deref().unwrap_or("latest") {
        "earliest" | "smallest" => OffsetReset::Earliest,
        "latest" | "largest" => OffsetReset::Latest,
        "none" => OffsetReset::None,
        other => {
            return Err(invalid(format!(
                "auto.offset.reset {other:?} is not earliest, latest or none"
            )));
        }
    };
    let auto_commit = match &req.auto_commit_enable {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        // Kafka's ConfigDef parses a boolean setting trimmed and in any case.
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(invalid(format!(
                "auto.commit.enable {other} is not true or false"
            )));
        }
    };
    let _ = &req.fetch_min_bytes;
    let request_timeout_ms = match &req.request_timeout_ms {
        None | Some(Value::Null) => CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| (1..=CONSUMER_REQUEST_TIMEOUT_MS_MAX).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "consumer.request.timeout.ms must be 1..={CONSUMER_REQUEST_TIMEOUT_MS_MAX}"
                ))
            })?,
    };
    let settings = ConsumerSettings {
        format: format.name().to_owned(),
        offset_reset,
        auto_commit,
        request_timeout_ms,
    };
    let g = group.clone();
    // As the REST Proxy names an instance: an explicit `id` overrides `name`.
    let name = req.id.or(req.name);
    let id = blocking(&state, move |l| {
        l.create_consumer(&g, name.as_deref(), settings)
    })
    .await?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base_uri = format!(
        "http://{host}/kafka/consumers/{}/instances/{}",
        path_segment(&group),
        path_segment(&id)
    );
    Ok(ok(&CreatedConsumer {
        instance_id: id,
        base_uri,
    }))
}

async fn delete_consumer(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
) -> Result<Response, KafkaError> {
    blocking(&state, move |l| l.delete_consumer(&group, &instance)).await?;
    Ok(no_content())
}

async fn subscribe(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    let req: SubscriptionBody = parse(&body)?;
    // As the REST Proxy reads the body: `topics` when present (a pattern beside them is
    // ignored), else `topic_pattern`, else nothing to do. An empty list is
    // `KafkaConsumer.subscribe(emptyList)`, which Kafka treats as `unsubscribe()`.
    blocking(&state, move |l| match (req.topics, req.topic_pattern) {
        (Some(topics), _) if topics.is_empty() => l.unsubscribe_consumer(&group, &instance),
        (Some(topics), _) => l.subscribe_consumer(&group, &instance, Subscription::Topics(topics)),
        (None, Some(p)) => l.subscribe_consumer(&group, &instance, Subscription::Pattern(p)),
        (None, None) => l.consumer_settings(&group, &instance).map(|_| ()),
    })
    .await?;
    Ok(no_content())
}

async fn get_subscription(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
) -> Result<Response, KafkaError> {
    let topics = blocking(&state, move |l| l.consumer_subscription(&group, &instance)).await?;
    Ok(ok(&SubscriptionBody {
        topics: Some(topics),
        topic_pattern: None,
    }))
}

async fn unsubscribe(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
) -> Result<Response, KafkaError> {
    blocking(&state, move |l| l.unsubscribe_consumer(&group, &instance)).await?;
    Ok(no_content())
}

async fn assign(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    let req: PartitionsBody = parse(&body)?;
    let parts = wire_partitions(req.partitions)?;
    blocking(&state, move |l| l.assign_consumer(&group, &instance, parts)).await?;
    Ok(no_content())
}

async fn get_assignments(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
) -> Result<Response, KafkaError> {
    let parts = blocking(&state, move |l| l.consumer_assignment(&group, &instance)).await?;
    let partitions = parts
        .into_iter()
        .map(|tp| WireTopicPartition {
            topic: tp.topic,
            partition: i64::from(tp.partition),
        })
        .collect();
    Ok(ok(&PartitionsBody { partitions }))
}

/// Query of `GET …/records`. As in the REST Proxy (whose parameters default to -1), zero or a
/// negative value means the default: the whole `consumer.request.timeout.ms` and no byte budget
/// beyond the cap.
#[derive(Debug, Deserialize)]
struct RecordsQuery {
    /// Longest wait in ms.
    timeout: Option<i64>,
    /// Byte budget.
    max_bytes: Option<i64>,
}

/// A positive query value, or `None` for an absent, zero or negative one (the default).
fn positive<T: TryFrom<i64>>(value: Option<i64>) -> Option<T> {
    value.filter(|v| *v > 0).and_then(|v| T::try_from(v).ok())
}

/// Whether an `Accept` header admits the records of an instance of `format`: its own media
/// type, a wildcard, or the generic v2 and JSON types, which the REST Proxy serves in the
/// default embedded format (binary). Media types compare case-insensitively.
fn accepts_records(accept: &str, format: Format) -> bool {
    accept.split(',').any(|a| {
        let media = a
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        media == format.records_content_type()
            || media == "*/*"
            || media == "application/*"
            || media.is_empty()
            || (format == Format::Binary
                && (media == V2_CONTENT_TYPE || media == "application/json"))
    })
}

async fn records(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    Query(q): Query<RecordsQuery>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let (g, i) = (group.clone(), instance.clone());
    let settings = blocking(&state, move |l| l.consumer_settings(&g, &i)).await?;
    let format = if settings.format == "json" {
        Format::Json
    } else {
        Format::Binary
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    if !accepts_records(accept, format) {
        return Err(KafkaError::new(
            StatusCode::NOT_ACCEPTABLE,
            40601,
            format!(
                "the consumer instance uses the {} format; Accept {}",
                format.name(),
                format.records_content_type()
            ),
        ));
    }
    let max_bytes = positive(q.max_bytes)
        .unwrap_or(FETCH_BYTES_DEFAULT)
        .min(log::READ_BYTES_MAX);
    // The REST Proxy's `timeout` applies only when below `consumer.request.timeout.ms`.
    let wait = Duration::from_millis(
        positive(q.timeout)
            .unwrap_or(settings.request_timeout_ms)
            .min(settings.request_timeout_ms),
    );
    let records = fetch_when_available(
        &state,
        group.clone(),
        instance.clone(),
        max_bytes,
        tokio::time::sleep(wait),
    )
    .await?;
    let out: Vec<ConsumerRecordOut> = records
        .into_iter()
        .map(
            |ConsumedRecord {
                 topic,
                 partition,
                 record,
             }| ConsumerRecordOut {
                topic,
                key: render_embedded(format, record.key.as_ref()),
                value: render_embedded(format, record.value.as_ref()),
                partition,
                offset: record.offset,
            },
        )
        .collect();
    Ok(json_response(
        StatusCode::OK,
        format.records_content_type(),
        &out,
    ))
}

/// Polls; when nothing is there, waits for an append on an assigned partition (no polling
/// loop) and polls again, until records arrive, `deadline` passes or the server shuts down
/// (then an empty list). Only the waits are raced against the deadline: a poll, which advances
/// the instance's positions, always runs to completion and its records are returned.
async fn fetch_when_available(
    state: &AppState,
    group: String,
    instance: String,
    max_bytes: usize,
    deadline: tokio::time::Sleep,
) -> Result<Vec<ConsumedRecord>, KafkaError> {
    tokio::pin!(deadline);
    let mut shutdown = state.shutdown.clone();
    loop {
        let (g, i) = (group.clone(), instance.clone());
        // Subscribe before polling so an append between the two still wakes us.
        let mut watchers = blocking(state, move |l| l.consumer_watch(&g, &i)).await?;
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (g, i) = (group.clone(), instance.clone());
        let got = blocking(state, move |l| l.poll_consumer(&g, &i, max_bytes)).await?;
        if !got.is_empty() {
            return Ok(got);
        }
        let appended = async {
            if watchers.is_empty() {
                // Nothing assigned: only the deadline or shutdown ends the wait.
                std::future::pending::<()>().await;
            }
            let changes = watchers.iter_mut().map(|w| Box::pin(w.changed()));
            let _ = futures::future::select_all(changes).await;
        };
        tokio::select! {
            () = appended => {}
            () = &mut deadline => return Ok(Vec::new()),
            () = shutdown.wait() => return Ok(Vec::new()),
        }
    }
}

async fn commit(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    let req: OffsetsBody = parse_optional(&body)?;
    // No body commits everything fetched; a list commits exactly its entries, so an empty one
    // commits nothing (the REST Proxy's `commitSync(emptyMap)`).
    let explicit = match req.offsets {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .map(|o| {
                    let p = partition_number(&o.topic, o.partition)?;
                    // The body names the last processed offset; the commit is the next one,
                    // so -1 commits 0.
                    let offset = o
                        .offset
                        .checked_add(1)
                        .and_then(|next| u64::try_from(next).ok())
                        .ok_or_else(|| {
                            KafkaError::unprocessable(format!(
                                "offset {} is out of range",
                                o.offset
                            ))
                        })?;
                    Ok((
                        TopicPartition {
                            topic: o.topic,
                            partition: p,
                        },
                        offset,
                        o.metadata.unwrap_or_default(),
                    ))
                })
                .collect::<Result<Vec<_>, KafkaError>>()?,
        ),
    };
    blocking(&state, move |l| {
        l.commit_consumer(&group, &instance, explicit)
    })
    .await?;
    Ok(ok(&Vec::<Value>::new()))
}

async fn committed(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    // The REST Proxy answers a request without partitions as it answers an unknown partition.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(KafkaError::new(
            StatusCode::NOT_FOUND,
            40402,
            "Partition not found.".to_owned(),
        ));
    }
    let req: PartitionsBody = parse(&body)?;
    let parts = wire_partitions(req.partitions)?;
    let found = blocking(&state, move |l| {
        l.consumer_committed(&group, &instance, &parts)
    })
    .await?;
    // As the REST Proxy, which lists what the consumer's `committed` returns: a partition
    // without a committed offset is left out.
    let offsets: Vec<CommittedOffsetOut> = found
        .into_iter()
        .filter_map(|(tp, c)| {
            c.map(|c| CommittedOffsetOut {
                topic: tp.topic,
                partition: tp.partition,
                offset: i64::try_from(c.offset).unwrap_or(i64::MAX),
                metadata: c.metadata,
            })
        })
        .collect();
    Ok(ok(&serde_json::json!({ "offsets": offsets })))
}

async fn seek(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    let req: OffsetsBody = parse(&body)?;
    let mut by_offset = Vec::new();
    for o in req.offsets.unwrap_or_default() {
        let p = partition_number(&o.topic, o.partition)?;
        let offset =
            u64::try_from(o.offset).map_err(|_| KafkaError::unprocessable("negative offset"))?;
        by_offset.push((
            TopicPartition {
                topic: o.topic,
                partition: p,
            },
            offset,
        ));
    }
    let mut by_time = Vec::new();
    for t in req.timestamps.unwrap_or_default() {
        let p = partition_number(&t.topic, t.partition)?;
        let ms = super::iso8601::parse_ms(&t.timestamp).ok_or_else(|| {
            KafkaError::unprocessable(format!("timestamp {:?} is not ISO-8601", t.timestamp))
        })?;
        by_time.push((
            TopicPartition {
                topic: t.topic,
                partition: p,
            },
            ms,
        ));
    }
    blocking(&state, move |l| {
        for (tp, ms) in by_time {
            let offset = match l.offset_for_timestamp(&tp.topic, tp.partition, ms)? {
                Some(o) => o,
                None => l.latest_offset(&tp.topic, tp.partition)?,
            };
            by_offset.push((tp, offset));
        }
        l.seek_consumer(&group, &instance, &by_offset)
    })
    .await?;
    Ok(no_content())
}

async fn seek_beginning(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    seek_to(state, group, instance, &body, true).await
}

async fn seek_end(
    State(state): State<AppState>,
    Path((group, instance)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    seek_to(state, group, instance, &body, false).await
}

async fn seek_to(
    state: AppState,
    group: String,
    instance: String,
    body: &[u8],
    beginning: bool,
) -> Result<Response, KafkaError> {
    let req: PartitionsBody = parse(body)?;
    let parts = wire_partitions(req.partitions)?;
    blocking(&state, move |l| {
        l.seek_consumer_to(&group, &instance, &parts, beginning)
    })
    .await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn compact_json_drops_whitespace_between_tokens_only() {
        let text = " { \"a\" : [ 1 , 2.5 ] ,\n\t\"b\": \"x y \\\" z\\\\\" , \"c\" : null }\r\n";
        let compact = compact_json(text);
        assert_eq!(&compact[..], br#"{"a":[1,2.5],"b":"x y \" z\\","c":null}"#);
        // The same value as a parse and re-encode gives, for text without escapes to rewrite.
        let reencoded =
            serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap();
        assert_eq!(&compact[..], &reencoded[..]);
        // Against the byte-at-a-time definition, on escapes at the end of strings, empty
        // strings, escaped backslashes before a quote, multi-byte text, whitespace runs between
        // every kind of token, and the pretty-printed form of each.
        let reference = |text: &str| {
            let (mut out, mut in_string, mut escaped) = (Vec::new(), false, false);
            for &b in text.as_bytes() {
                if in_string {
                    out.push(b);
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    in_string = b == b'"';
                    out.push(b);
                }
            }
            out
        };
        for text in [
            r#"  [ "" , "\\" , "a\"" , "\\\"" ,"é ü", true,false , null ,-1.5e3 ]  "#,
            "{\n\t\"k\" :\r\n{ \"n\" : [ ] , \"o\" : { \"\\u0041 \\n\" : \"x\" } } }",
            "\"only a string with \\\" inside\"",
            "42",
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            for t in [text, pretty.as_str()] {
                let compact = compact_json(t);
                assert_eq!(&compact[..], &reference(t)[..], "{t}");
                let reparsed: serde_json::Value = serde_json::from_slice(&compact).unwrap();
                assert_eq!(reparsed, value, "{t}");
            }
        }
    }
}
