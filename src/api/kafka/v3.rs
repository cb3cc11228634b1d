//! REST Proxy v3: the one cluster, topics (consumer groups are in `v3_groups`), and `POST
//! …/records` in streaming mode — a body of concatenated JSON objects answered by one JSON
//! result per object, in order, each written as its record completes — and `POST
//! …/records:batch`, up to [`BATCH_ENTRIES_MAX`] records answered together under their entry
//! ids.
//!
//! The streaming reply is a `futures` stream over the request body, so no task outlives the
//! request: when the client goes away, the body and the reply stop together.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::dto::{CreateTopicV3, DataV3, ProduceRecordV3};
use super::json_stream::{FrameError, Framer};
use super::{KafkaError, blocking, decode_base64, iso8601, json_response};
use crate::api::AppState;
use crate::log::{Header, Record, Routing, TopicConfig, TopicInfo};

/// The id of the one cluster; stable across restarts and data directories.
pub(crate) const CLUSTER_ID: &str = "streamcache";
/// Largest single JSON object accepted in a streaming produce body, in bytes: a record at the
/// log's ceiling, base64-inflated, plus framing.
pub const STREAM_OBJECT_BYTES_MAX: usize = 12 * 1024 * 1024;

/// Deepest nesting of brackets in a streaming produce object: serde_json's recursion limit
/// (it refuses 128 levels), so every object the body's scanner passes also parses.
pub const STREAM_OBJECT_DEPTH_MAX: usize = 127;

const _: () = assert!((crate::log::RECORD_BYTES_MAX as usize) * 4 / 3 < STREAM_OBJECT_BYTES_MAX);
// The body's scanner keeps one bit per open bracket in a `u128`.
const _: () = assert!(STREAM_OBJECT_DEPTH_MAX <= 128);

/// The v3 routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/kafka/v3/clusters", get(list_clusters))
        .route("/kafka/v3/clusters/{cluster}", get(get_cluster))
        .route(
            "/kafka/v3/clusters/{cluster}/topics",
            get(list_topics).post(create_topic),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}",
            get(get_topic).delete(delete_topic),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}/records",
            post(produce_records),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}/records:batch",
            post(produce_batch),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}/partitions",
            get(list_partitions),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}/partitions/{partition}",
            get(get_partition),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}/partitions/{partition}/replicas",
            get(list_replicas),
        )
        .route(
            "/kafka/v3/clusters/{cluster}/topics/{topic}/configs",
            get(list_topic_configs),
        )
        .route("/kafka/v3/clusters/{cluster}/brokers", get(list_brokers))
        .route(
            "/kafka/v3/clusters/{cluster}/brokers/{broker}",
            get(get_broker),
        )
        .merge(super::v3_groups::routes())
}

/// The id of the one broker, the leader and only replica of every partition (as in v2).
pub(super) const BROKER_ID: i64 = 0;

pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/kafka/v3")
}

pub(super) fn ok(status: StatusCode, body: &Value) -> Response {
    json_response(status, "application/json", body)
}

pub(super) fn check_cluster(cluster: &str) -> Result<(), KafkaError> {
    if cluster == CLUSTER_ID {
        Ok(())
    } else {
        Err(KafkaError::new(
            StatusCode::NOT_FOUND,
            404,
            format!("cluster {cluster} not found"),
        )
        .v3())
    }
}

fn cluster_json(base: &str) -> Value {
    let me = format!("{base}/clusters/{CLUSTER_ID}");
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": me, "resource_name": format!("crn:///kafka={CLUSTER_ID}")},
        "cluster_id": CLUSTER_ID,
        "controller": {"related": format!("{me}/brokers/0")},
        "acls": {"related": format!("{me}/acls")},
        "brokers": {"related": format!("{me}/brokers")},
        "broker_configs": {"related": format!("{me}/broker-configs")},
        "consumer_groups": {"related": format!("{me}/consumer-groups")},
        "topics": {"related": format!("{me}/topics")},
        "partition_reassignments": {"related": format!("{me}/topics/-/partitions/-/reassignment")},
    })
}

fn topic_json(base: &str, info: &TopicInfo) -> Value {
    let me = format!("{base}/clusters/{CLUSTER_ID}/topics/{}", info.name);
    json!({
        "kind": "KafkaTopic",
        "metadata": {"self": me, "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={}", info.name)},
        "cluster_id": CLUSTER_ID,
        "topic_name": info.name,
        "is_internal": false,
        "replication_factor": 1,
        "partitions_count": info.partitions,
        "partitions": {"related": format!("{me}/partitions")},
        "configs": {"related": format!("{me}/configs")},
        "partition_reassignments": {"related": format!("{me}/partitions/-/reassignment")},
        "authorized_operations": [],
    })
}

/// A v3 list: `kind`, `metadata.self` (no next page) and `data`.
pub(super) fn list_json(kind: &str, me: String, data: Vec<Value>) -> Value {
    json!({"kind": kind, "metadata": {"self": me, "next": null}, "data": data})
}

fn partition_json(base: &str, topic: &str, partition: u32) -> Value {
    let me = format!("{base}/clusters/{CLUSTER_ID}/topics/{topic}/partitions/{partition}");
    json!({
        "kind": "KafkaPartition",
        "metadata": {
            "self": me,
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={topic}/partition={partition}"),
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": topic,
        "partition_id": partition,
        "leader": {"related": format!("{me}/replicas/{BROKER_ID}")},
        "replicas": {"related": format!("{me}/replicas")},
        "reassignment": {"related": format!("{me}/reassignment")},
    })
}

fn broker_json(base: &str) -> Value {
    let me = format!("{base}/clusters/{CLUSTER_ID}/brokers/{BROKER_ID}");
    json!({
        "kind": "KafkaBroker",
        "metadata": {"self": me, "resource_name": format!("crn:///kafka={CLUSTER_ID}/broker={BROKER_ID}")},
        "cluster_id": CLUSTER_ID,
        "broker_id": BROKER_ID,
        // No Kafka protocol listener: there is no host and port for a Kafka client to reach.
        "host": null,
        "port": null,
        "rack": null,
        "configs": {"related": format!("{me}/configs")},
        "partition_replicas": {"related": format!("{me}/partition-replicas")},
    })
}

/// The partition of a v3 path, after its cluster; it must exist (the v3 error otherwise).
async fn existing_partition(
    state: &AppState,
    cluster: &str,
    topic: String,
    partition: i64,
) -> Result<(String, u32), KafkaError> {
    check_cluster(cluster)?;
    let p = u32::try_from(partition).map_err(|_| partition_not_found(&topic, partition))?;
    let t = topic.clone();
    blocking(state, move |l| l.partition(&t, p).map(|_| ()))
        .await
        .map_err(KafkaError::v3)?;
    Ok((topic, p))
}

fn partition_not_found(topic: &str, partition: i64) -> KafkaError {
    KafkaError::new(
        StatusCode::NOT_FOUND,
        40402,
        format!("partition {partition} of topic {topic} not found"),
    )
    .v3()
}

async fn list_partitions(
    State(state): State<AppState>,
    Path((cluster, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let info = cluster_topic(&state, &cluster, topic).await?;
    let base = base_url(&headers);
    let data = (0..info.partitions)
        .map(|p| partition_json(&base, &info.name, p))
        .collect();
    let me = format!(
        "{base}/clusters/{CLUSTER_ID}/topics/{}/partitions",
        info.name
    );
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaPartitionList", me, data),
    ))
}

async fn get_partition(
    State(state): State<AppState>,
    Path((cluster, topic, partition)): Path<(String, String, i64)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let (topic, p) = existing_partition(&state, &cluster, topic, partition).await?;
    Ok(ok(
        StatusCode::OK,
        &partition_json(&base_url(&headers), &topic, p),
    ))
}

async fn list_replicas(
    State(state): State<AppState>,
    Path((cluster, topic, partition)): Path<(String, String, i64)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let (topic, p) = existing_partition(&state, &cluster, topic, partition).await?;
    let base = base_url(&headers);
    let me = format!("{base}/clusters/{CLUSTER_ID}/topics/{topic}/partitions/{p}/replicas");
    let replica = json!({
        "kind": "KafkaReplica",
        "metadata": {
            "self": format!("{me}/{BROKER_ID}"),
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={topic}/partition={p}/replica={BROKER_ID}"),
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": topic,
        "partition_id": p,
        "broker_id": BROKER_ID,
        "is_leader": true,
        "is_in_sync": true,
        "broker": {"related": format!("{base}/clusters/{CLUSTER_ID}/brokers/{BROKER_ID}")},
    });
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaReplicaList", me, vec![replica]),
    ))
}

async fn list_topic_configs(
    State(state): State<AppState>,
    Path((cluster, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    let (info, defaults) = blocking(&state, move |l| {
        let info = l.topic(&topic)?;
        let defaults = TopicConfig::from_entries(l.config(), &[])?;
        Ok((info, defaults))
    })
    .await
    .map_err(KafkaError::v3)?;
    let base = base_url(&headers);
    let me = format!("{base}/clusters/{CLUSTER_ID}/topics/{}/configs", info.name);
    let defaults = defaults.entries();
    let data = info
        .config
        .entries()
        .into_iter()
        .map(|(name, value)| {
            let is_default = defaults.iter().any(|(n, v)| *n == name && *v == value);
            json!({
                "kind": "KafkaTopicConfig",
                "metadata": {
                    "self": format!("{me}/{name}"),
                    "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={}/config={name}", info.name),
                },
                "cluster_id": CLUSTER_ID,
                "topic_name": info.name,
                "name": name,
                "value": value,
                "is_default": is_default,
                "is_read_only": false,
                "is_sensitive": false,
                "source": if is_default { "DEFAULT_CONFIG" } else { "DYNAMIC_TOPIC_CONFIG" },
                "synonyms": [],
            })
        })
        .collect();
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaTopicConfigList", me, data),
    ))
}

async fn list_brokers(
    Path(cluster): Path<String>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    let base = base_url(&headers);
    let me = format!("{base}/clusters/{CLUSTER_ID}/brokers");
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaBrokerList", me, vec![broker_json(&base)]),
    ))
}

async fn get_broker(
    Path((cluster, broker)): Path<(String, i64)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    if broker != BROKER_ID {
        return Err(KafkaError::new(
            StatusCode::NOT_FOUND,
            404,
            format!("broker {broker} not found"),
        )
        .v3());
    }
    Ok(ok(StatusCode::OK, &broker_json(&base_url(&headers))))
}

async fn list_clusters(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    ok(
        StatusCode::OK,
        &json!({
            "kind": "KafkaClusterList",
            "metadata": {"self": format!("{base}/clusters"), "next": null},
            "data": [cluster_json(&base)],
        }),
    )
}

async fn get_cluster(
    Path(cluster): Path<String>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    Ok(ok(StatusCode::OK, &cluster_json(&base_url(&headers))))
}

async fn list_topics(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    let infos = blocking(&state, |l| {
        l.topics()?
            .iter()
            .map(|t| l.topic(t))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(KafkaError::v3)?;
    let base = base_url(&headers);
    let data: Vec<Value> = infos.iter().map(|i| topic_json(&base, i)).collect();
    Ok(ok(
        StatusCode::OK,
        &json!({
            "kind": "KafkaTopicList",
            "metadata": {"self": format!("{base}/clusters/{CLUSTER_ID}/topics"), "next": null},
            "data": data,
        }),
    ))
}

async fn create_topic(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_payload("Request body is empty. Data is required."));
    }
    let req: CreateTopicV3 = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            KafkaError::unprocessable(e.to_string()).v3()
        } else {
            KafkaError::bad_json(&e).v3()
        }
    })?;
    let Some(name) = req.topic_name.clone() else {
        return Err(KafkaError::unprocessable("topic_name may not be null").v3());
    };
    // As the REST Proxy checks it (Kafka's `Topic.validate`), before anything else.
    if crate::log::check_topic_name(&name).is_err() {
        return Err(invalid_payload("Invalid topic name."));
    }
    let partitions = requested_partitions(&req)?;
    let configs: Vec<(String, String)> = req
        .configs
        .into_iter()
        .filter_map(|c| c.value.map(|v| (c.name, v)))
        .collect();
    let validate_only = req.validate_only;
    let info = blocking(&state, move |l| {
        l.create_topic(&name, partitions, &configs, validate_only)
    })
    .await
    .map_err(KafkaError::v3)?;
    let status = if validate_only {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(ok(status, &topic_json(&base_url(&headers), &info)))
}

/// A topic creation's refusal by Kafka (an `InvalidReplicaAssignmentException`,
/// `InvalidReplicationFactorException`…): 400 with code 40002.
fn creation_refused(message: impl Into<String>) -> KafkaError {
    KafkaError::new(StatusCode::BAD_REQUEST, 40002, message).v3()
}

/// The partition count a topic creation asks for (`None`: the default), read as the REST
/// Proxy reads the request: non-empty `replicas_assignments` decide it (Kafka's
/// `NewTopic(name, assignments)`; `partitions_count` and `replication_factor` are then not
/// sent), else `partitions_count`, where -1 is Kafka's "the broker's default" (KIP-464).
fn requested_partitions(req: &CreateTopicV3) -> Result<Option<u32>, KafkaError> {
    if !req.replicas_assignments.is_empty() {
        return assigned_partitions(&req.replicas_assignments).map(Some);
    }
    let partitions = match req.partitions_count {
        None | Some(-1) => None,
        Some(n) => Some(
            u32::try_from(n)
                .map_err(|_| creation_refused(format!("partitions_count {n} is invalid")))?,
        ),
    };
    // One broker: the default (-1, or absent) and 1 are the factors it can place.
    match req.replication_factor {
        None | Some(-1 | 1) => Ok(partitions),
        Some(n) if n < 1 => Err(creation_refused(
            "Replication factor must be larger than 0, or -1 to use the default value.",
        )),
        Some(n) => Err(creation_refused(format!(
            "Replication factor: {n} larger than available brokers: 1."
        ))),
    }
}

/// The partition count of `replicas_assignments` (partition id → broker ids), checked as
/// Kafka checks a manual assignment: ids 0-based and consecutive, and every partition's
/// replicas distinct brokers that exist — with one broker, exactly `[0]`. The count is
/// checked against `PARTITIONS_PER_TOPIC_MAX` by the creation.
fn assigned_partitions(assignments: &BTreeMap<i64, Vec<i64>>) -> Result<u32, KafkaError> {
    for (expected, (id, replicas)) in (0_i64..).zip(assignments) {
        if *id != expected {
            return Err(creation_refused(
                "Partitions should be a consecutive 0-based integer sequence",
            ));
        }
        if let Some(unknown) = replicas.iter().find(|&&b| b != BROKER_ID) {
            return Err(creation_refused(format!(
                "Unknown broker(s) in replica assignment: {unknown}."
            )));
        }
        match replicas.len() {
            0 => return Err(creation_refused(format!("Partition {id} has no replicas."))),
            1 => {}
            _ => {
                return Err(creation_refused(format!(
                    "Duplicate replica assignment found: {replicas:?}"
                )));
            }
        }
    }
    u32::try_from(assignments.len()).map_err(|_| creation_refused("too many partitions"))
}

/// The REST Proxy's `Errors.invalidPayloadException`: 422 with code 422 and the text of its
/// constraint-violation mapper, naming the payload error code 42206.
fn invalid_payload(cause: &str) -> KafkaError {
    KafkaError::unprocessable(format!("Error: 42206 : Payload error. {cause}")).v3()
}

async fn get_topic(
    State(state): State<AppState>,
    Path((cluster, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let info = cluster_topic(&state, &cluster, topic).await?;
    Ok(ok(StatusCode::OK, &topic_json(&base_url(&headers), &info)))
}

/// The topic of a v3 path, after its cluster.
async fn cluster_topic(
    state: &AppState,
    cluster: &str,
    topic: String,
) -> Result<TopicInfo, KafkaError> {
    check_cluster(cluster)?;
    blocking(state, move |l| l.topic(&topic))
        .await
        .map_err(KafkaError::v3)
}

async fn delete_topic(
    State(state): State<AppState>,
    Path((cluster, topic)): Path<(String, String)>,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    blocking(&state, move |l| l.delete_topic(&topic))
        .await
        .map_err(KafkaError::v3)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn produce_records(
    State(state): State<AppState>,
    Path((cluster, topic)): Path<(String, String)>,
    body: Body,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    let stream = Produce {
        state,
        topic,
        body: body.into_data_stream(),
        framer: Framer::new(STREAM_OBJECT_BYTES_MAX, STREAM_OBJECT_DEPTH_MAX),
        pending: VecDeque::new(),
        done: false,
    };
    let lines = futures::stream::unfold(stream, |mut s| async move {
        let line = s.next_line().await?;
        Some((Ok::<Bytes, Infallible>(line), s))
    });
    let mut resp = Body::from_stream(lines).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Most entries in one `records:batch` request (the REST Proxy's
/// `api.v3.produce.batch.maximum.entries` default).
pub const BATCH_ENTRIES_MAX: usize = 10;
/// Longest `records:batch` entry id, in characters (the REST Proxy's
/// `BATCH_ID_MAXIMUM_LENGTH`); ids are 1 to this many of `[0-9a-zA-Z_-]`.
pub const BATCH_ID_CHARS_MAX: usize = 80;

/// The REST Proxy's refusal of a whole `records:batch` request: 422 with code 42208.
fn batch_refused(message: &str) -> KafkaError {
    KafkaError::new(StatusCode::UNPROCESSABLE_ENTITY, 42208, message).v3()
}

/// Takes the id out of a `records:batch` entry (leaving the record), as the REST Proxy's
/// `ProduceBatchRequestEntry` takes it: a JSON string of 1 to [`BATCH_ID_CHARS_MAX`] characters
/// of `[0-9a-zA-Z_-]`.
fn take_batch_entry_id(entry: &mut Value) -> Result<String, KafkaError> {
    match entry.as_object_mut().and_then(|fields| fields.remove("id")) {
        Some(Value::String(id))
            if (1..=BATCH_ID_CHARS_MAX).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(id)
        }
        _ => Err(batch_refused(
            "Batch entry identifier is not a valid string.",
        )),
    }
}

/// `POST …/records:batch`: `{"entries": [{"id", …record}]}`, each entry produced as one record
/// of `POST …/records`; 207 with `{"successes": [{"id", "cluster_id", "topic_name",
/// "partition_id", "offset", "timestamp", "key"?, "value"?}], "failures": [{"id",
/// "error_code", "message"}]}`, each list in entry order. The whole request is refused with
/// 422/42208 (the REST Proxy's texts) for an empty body, an entry id that is not a valid
/// string, ids that repeat, no entries or more than [`BATCH_ENTRIES_MAX`], in that order.
async fn produce_batch(
    State(state): State<AppState>,
    Path((cluster, topic)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(batch_refused("Request body is empty. Data is required."));
    }
    let request: Value =
        serde_json::from_slice(&body).map_err(|e| KafkaError::bad_json(&e).v3())?;
    let Value::Object(mut request) = request else {
        return Err(KafkaError::unprocessable("the request body must be an object").v3());
    };
    let mut entries = match request.remove("entries") {
        Some(Value::Array(entries)) => entries,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(KafkaError::unprocessable("entries must be an array").v3()),
    };
    let ids = entries
        .iter_mut()
        .map(take_batch_entry_id)
        .collect::<Result<Vec<String>, KafkaError>>()?;
    let mut distinct = std::collections::HashSet::with_capacity(ids.len());
    if !ids.iter().all(|id| distinct.insert(id.as_str())) {
        return Err(batch_refused("Batch entry IDs are not distinct."));
    }
    if entries.is_empty() {
        return Err(batch_refused("Empty batch."));
    }
    if entries.len() > BATCH_ENTRIES_MAX {
        return Err(batch_refused("Too many entries in batch."));
    }
    let mut successes = Vec::with_capacity(entries.len());
    let mut failures = Vec::new();
    for (record, id) in entries.into_iter().zip(ids) {
        match produce_one(&state, &topic, record).await {
            Value::Object(fields) if fields.get("error_code") == Some(&json!(200)) => {
                let mut success = serde_json::Map::with_capacity(fields.len());
                success.insert("id".to_owned(), json!(id));
                for (k, v) in fields {
                    if k != "error_code" {
                        success.insert(k, v);
                    }
                }
                successes.push(Value::Object(success));
            }
            failed => failures.push(json!({
                "id": id,
                "error_code": failed["error_code"],
                "message": failed["message"],
            })),
        }
    }
    let body = json!({"successes": successes, "failures": failures});
    let mut resp = (StatusCode::MULTI_STATUS, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// State of one streaming produce.
struct Produce {
    /// Handlers' state.
    state: AppState,
    /// Target topic.
    topic: String,
    /// The request body.
    body: BodyDataStream,
    /// Splits the body into its JSON values as the chunks arrive.
    framer: Framer,
    /// In input order: parsed objects waiting to be appended, or the error line that ends the
    /// stream.
    pending: VecDeque<Result<Value, Value>>,
    /// No more input (end of body or a fatal error).
    done: bool,
}

impl Produce {
    /// The next reply line, or `None` at the end.
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            match self.pending.pop_front() {
                Some(Ok(v)) => {
                    let result = produce_one(&self.state, &self.topic, v).await;
                    return Some(line(&result));
                }
                Some(Err(reply)) => return Some(line(&reply)),
                None => {}
            }
            if self.done {
                return None;
            }
            let pending = &mut self.pending;
            let framed = match self.body.next().await {
                Some(Ok(chunk)) => self.framer.push(&chunk, |v| pending.push_back(Ok(v))),
                Some(Err(e)) => {
                    // The object being read and everything after it are not produced: say so
                    // in the stream's last line, as for malformed JSON, instead of ending as
                    // if the body were complete.
                    tracing::debug!(error = %e, "streaming produce body ended with an error");
                    self.end_with(&format!("the request body ended with an error: {e}"));
                    Ok(())
                }
                None => {
                    // A top-level number or literal may end only with the body.
                    self.done = true;
                    self.framer.finish(|v| pending.push_back(Ok(v)))
                }
            };
            if let Err(e) = framed {
                self.fail(&e);
            }
        }
    }

    /// Queues the error line that ends the stream, after the results before it: a 400 for
    /// malformed JSON or an object over [`STREAM_OBJECT_BYTES_MAX`] or
    /// [`STREAM_OBJECT_DEPTH_MAX`].
    fn fail(&mut self, e: &FrameError) {
        let message = match e {
            FrameError::Malformed { at, reason } => {
                format!("malformed JSON at byte {at} of the body: {reason}")
            }
            FrameError::TooLarge { max, .. } => format!("a record object exceeds {max} bytes"),
            FrameError::TooDeep { at, max } => {
                format!("malformed JSON at byte {at} of the body: nested deeper than {max}")
            }
        };
        self.end_with(&message);
    }

    /// Queues a 400 line with `message` that ends the stream, after the results before it.
    fn end_with(&mut self, message: &str) {
        self.pending.push_back(Err(error_object(400, message)));
        self.framer = Framer::new(0, 0);
        self.done = true;
    }
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

fn error_object(code: u32, message: &str) -> Value {
    json!({"error_code": code, "message": message})
}

/// The REST Proxy's answer, without a schema registry, to a key or value that needs one: a
/// schema format, or no `type` at all (it then looks for the latest schema of the subject
/// `<topic>-key` or `<topic>-value`). Its `SchemaManagerThrowing` raises 42206, which the
/// streaming reply carries as `error_code` 422.
fn registry_needed() -> Value {
    error_object(
        422,
        "Error: 42206 : Payload error. Schema Registry must be configured when using schemas.",
    )
}

/// Decodes a v3 key or value: its bytes and the type to report.
fn decode_data(
    d: Option<DataV3>,
    what: &str,
) -> Result<(Option<bytes::Bytes>, Option<String>), Value> {
    let Some(d) = d else { return Ok((None, None)) };
    let Some(kind) = d.kind else {
        return Err(registry_needed());
    };
    let kind = kind.to_ascii_uppercase();
    match kind.as_str() {
        "BINARY" | "JSON" | "STRING" => {}
        "AVRO" | "JSONSCHEMA" | "PROTOBUF" => return Err(registry_needed()),
        other => {
            return Err(error_object(
                400,
                &format!("{what}.type {other} is not BINARY, JSON or STRING"),
            ));
        }
    }
    let bytes = match (kind.as_str(), &d.data) {
        (_, Value::Null) => None,
        ("BINARY", Value::String(s)) => Some(
            decode_base64(s)
                .map_err(|e| error_object(400, &format!("{what}.data is not base64: {e}")))?
                .into(),
        ),
        ("BINARY", _) => {
            return Err(error_object(
                400,
                &format!("{what}.data must be a base64 string"),
            ));
        }
        ("STRING", Value::String(s)) => Some(s.clone().into_bytes().into()),
        ("STRING", _) => return Err(error_object(400, &format!("{what}.data must be a string"))),
        // JSON, the one type left.
        (_, v) => Some(serde_json::to_vec(v).unwrap_or_default().into()),
    };
    Ok((bytes, Some(kind)))
}

/// Appends one streamed record and builds its result object.
async fn produce_one(state: &AppState, topic: &str, v: Value) -> Value {
    let req: ProduceRecordV3 = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => return error_object(400, &format!("invalid record: {e}")),
    };
    let routing = match req.partition_id {
        None => Routing::Auto,
        Some(p) => match u32::try_from(p) {
            Ok(p) => Routing::Partition(p),
            Err(_) => return error_object(40402, &format!("partition {p} is invalid")),
        },
    };
    let timestamp_ms = match req.timestamp.as_deref().map(iso8601::parse_ms) {
        None => None,
        Some(Some(ms)) => Some(ms),
        Some(None) => return error_object(400, "timestamp is not ISO-8601"),
    };
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers {
        let value = match h.value {
            None => None,
            Some(v) => match base64::engine::general_purpose::STANDARD.decode(&v) {
                Ok(b) => Some(b.into()),
                Err(e) => {
                    return error_object(400, &format!("header {} is not base64: {e}", h.name));
                }
            },
        };
        headers.push(Header { key: h.name, value });
    }
    let (key, key_type) = match decode_data(req.key, "key") {
        Ok(k) => k,
        Err(e) => return e,
    };
    let (value, value_type) = match decode_data(req.value, "value") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let size = |b: &Option<bytes::Bytes>| b.as_ref().map_or(0, bytes::Bytes::len);
    let described =
        |t: Option<String>, n: usize| t.map_or(Value::Null, |t| json!({"type": t, "size": n}));
    let key_out = described(key_type, size(&key));
    let value_out = described(value_type, size(&value));
    let record = Record {
        key,
        value,
        headers,
        timestamp_ms,
    };
    let t = topic.to_owned();
    match blocking(state, move |l| l.append(&t, routing, vec![record])).await {
        Ok(placed) => match placed.first() {
            Some(a) => {
                let mut out = serde_json::Map::with_capacity(8);
                out.insert("error_code".to_owned(), json!(200));
                out.insert("cluster_id".to_owned(), json!(CLUSTER_ID));
                out.insert("topic_name".to_owned(), json!(topic));
                out.insert("partition_id".to_owned(), json!(a.partition));
                out.insert("offset".to_owned(), json!(a.offset));
                let timestamp = iso8601::format_ms(a.timestamp_ms);
                out.insert("timestamp".to_owned(), json!(timestamp));
                // The REST Proxy leaves out the key or value a record does not have.
                for (name, described) in [("key", key_out), ("value", value_out)] {
                    if !described.is_null() {
                        out.insert(name.to_owned(), described);
                    }
                }
                Value::Object(out)
            }
            None => error_object(500, "nothing was appended"),
        },
        Err(e) => error_object(super::produce_error_code(&e), e.message()),
    }
}
