//! REST Proxy v3 consumer groups, read-only: the groups, their consumers and assignments, and
//! each group's lag per partition and lag summary, in the REST Proxy's shapes, order and
//! error texts (`ConsumerGroupsResource`, `ConsumersResource`, `ConsumerAssignmentsResource`,
//! `ConsumerLagsResource`, `ConsumerGroupLagSummariesResource`).
//!
//! A group is what [`Log::describe_consumer_group`] reports — the REST consumer instances that
//! subscribed (Kafka's members) and the committed offsets — together with the pipeline's flows
//! that consume under its name, as a Kafka consumer of NiFi's would: a running flow is a member
//! assigned every partition of its topic, and its committed positions are the group's offsets
//! there. Every group is a classic group with the range assignor, coordinated by the one
//! broker.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::v3::{BROKER_ID, CLUSTER_ID, base_url, check_cluster, list_json, ok};
use super::{KafkaError, blocking, path_segment};
use crate::api::AppState;
use crate::log::{GroupDescription, GroupMember, Log, Offset, TopicPartition};
use crate::pipeline::{FlowState, FlowStatus};

/// The consumer-group routes.
pub(crate) fn routes() -> Router<AppState> {
    const GROUP: &str = "/kafka/v3/clusters/{cluster}/consumer-groups/{group}";
    Router::new()
        .route(
            "/kafka/v3/clusters/{cluster}/consumer-groups",
            get(list_groups),
        )
        .route(GROUP, get(get_group))
        .route(&format!("{GROUP}/consumers"), get(list_consumers))
        .route(
            &format!("{GROUP}/consumers/{{consumer}}"),
            get(get_consumer),
        )
        .route(
            &format!("{GROUP}/consumers/{{consumer}}/assignments"),
            get(list_assignments),
        )
        .route(
            &format!(
                "{GROUP}/consumers/{{consumer}}/assignments/{{topic}}/partitions/{{partition}}"
            ),
            get(get_assignment),
        )
        .route(&format!("{GROUP}/lags"), get(list_lags))
        .route(
            &format!("{GROUP}/lags/{{topic}}/partitions/{{partition}}"),
            get(get_lag),
        )
        .route(&format!("{GROUP}/lag-summary"), get(get_lag_summary))
}

/// 404 with the REST Proxy's code and `message`.
fn not_found(message: impl Into<String>) -> KafkaError {
    KafkaError::new(StatusCode::NOT_FOUND, 404, message).v3()
}

/// 404 as JAX-RS words a `NotFoundException` thrown without a message.
fn plain_not_found() -> KafkaError {
    not_found("HTTP 404 Not Found")
}

/// The group, or `None` (after the cluster check).
async fn describe(
    state: &AppState,
    cluster: &str,
    group: &str,
) -> Result<Option<GroupDescription>, KafkaError> {
    check_cluster(cluster)?;
    let group = group.to_owned();
    let flows = state.engine.flows().await;
    blocking(state, move |l| with_flows(l, &group, &flows))
        .await
        .map_err(KafkaError::v3)
}

/// The log's description of `group` with the flows among `flows` that consume under it.
fn with_flows(
    log: &Log,
    group: &str,
    flows: &[FlowStatus],
) -> crate::log::Result<Option<GroupDescription>> {
    let mut g = log.describe_consumer_group(group)?;
    for flow in flows.iter().filter(|f| f.group == group) {
        add_flow(log, &mut g, group, flow);
    }
    Ok(g)
}

/// Adds a flow consuming under `group` to the group's description: a member while it runs
/// (every partition of its topic), and its committed positions where the log holds none of
/// the group's own.
fn add_flow(log: &Log, g: &mut Option<GroupDescription>, group: &str, flow: &FlowStatus) {
    let running = matches!(flow.state, FlowState::Starting | FlowState::Running);
    if !running && flow.committed.is_empty() {
        return;
    }
    let d = g.get_or_insert_with(|| GroupDescription {
        group: group.to_owned(),
        members: Vec::new(),
        committed: Vec::new(),
    });
    if running {
        // A topic not created yet has no partitions to assign.
        let partitions = log.topic(&flow.topic).map_or(0, |t| t.partitions);
        let assigned = (0..partitions)
            .map(|partition| TopicPartition {
                topic: flow.topic.clone(),
                partition,
            })
            .collect();
        d.members.push(GroupMember {
            id: flow.name.clone(),
            assigned,
        });
        d.members.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for (&partition, &offset) in &flow.committed {
        let tp = TopicPartition {
            topic: flow.topic.clone(),
            partition,
        };
        if !d.committed.iter().any(|(t, _)| *t == tp) {
            d.committed.push((tp, offset));
        }
    }
    d.committed.sort();
}

/// The group, or the REST Proxy's 404 naming it with `verb` ("could not be found" where it
/// reads lags, "does not exist" where it reads consumers).
async fn existing_group(
    state: &AppState,
    cluster: &str,
    group: &str,
    verb: &str,
) -> Result<GroupDescription, KafkaError> {
    describe(state, cluster, group)
        .await?
        .ok_or_else(|| not_found(format!("Consumer Group {group} {verb}.")))
}

fn group_json(base: &str, g: &GroupDescription) -> Value {
    let me = format!(
        "{base}/clusters/{CLUSTER_ID}/consumer-groups/{}",
        path_segment(&g.group)
    );
    let stable = !g.members.is_empty();
    json!({
        "kind": "KafkaConsumerGroup",
        "metadata": {
            "self": me,
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/consumer-group={}", g.group),
        },
        "cluster_id": CLUSTER_ID,
        "consumer_group_id": g.group,
        // Kafka calls a group simple when no consumer ever joined it (offsets committed by
        // consumers that assign themselves partitions); here, when none has joined now.
        "is_simple": !stable,
        "partition_assignor": if stable { "range" } else { "" },
        "state": if stable { "STABLE" } else { "EMPTY" },
        "type": "CLASSIC",
        "is_mixed_consumer_group": false,
        "coordinator": {"related": format!("{base}/clusters/{CLUSTER_ID}/brokers/{BROKER_ID}")},
        "consumers": {"related": format!("{me}/consumers")},
        "lag_summary": {"related": format!("{me}/lag-summary")},
    })
}

fn consumer_json(base: &str, group: &str, m: &GroupMember) -> Value {
    let me = format!(
        "{base}/clusters/{CLUSTER_ID}/consumer-groups/{}/consumers/{}",
        path_segment(group),
        path_segment(&m.id)
    );
    json!({
        "kind": "KafkaConsumer",
        "metadata": {
            "self": me,
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/consumer-group={group}/consumer={}", m.id),
        },
        "cluster_id": CLUSTER_ID,
        "consumer_group_id": group,
        "consumer_id": m.id,
        "instance_id": null,
        "client_id": m.id,
        "assignments": {"related": format!("{me}/assignments")},
    })
}

fn assignment_json(base: &str, group: &str, consumer: &str, tp: &TopicPartition) -> Value {
    let (topic, p) = (&tp.topic, tp.partition);
    let cluster = format!("{base}/clusters/{CLUSTER_ID}");
    let (g, c) = (path_segment(group), path_segment(consumer));
    json!({
        "kind": "KafkaConsumerAssignment",
        "metadata": {
            "self": format!("{cluster}/consumer-groups/{g}/consumers/{c}/assignments/{topic}/partitions/{p}"),
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/consumer-group={group}/consumer={consumer}/assignment={topic}/partition={p}"),
        },
        "cluster_id": CLUSTER_ID,
        "consumer_group_id": group,
        "consumer_id": consumer,
        "topic_name": topic,
        "partition_id": p,
        "partition": {"related": format!("{cluster}/topics/{topic}/partitions/{p}")},
        "lag": {"related": format!("{cluster}/consumer-groups/{g}/lags/{topic}/partitions/{p}")},
    })
}

/// One partition's lag: the committed offset, the log end offset and the member it is
/// assigned to (`""` when none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lag {
    tp: TopicPartition,
    consumer: String,
    current: Offset,
    end: Offset,
}

impl Lag {
    /// Never negative, as the REST Proxy reports it.
    fn lag(&self) -> u64 {
        self.end.saturating_sub(self.current)
    }
}

/// The lag of every committed partition that still has an end offset, in (topic, partition)
/// order.
fn lags(log: &Log, g: &GroupDescription) -> Vec<Lag> {
    let mut out: Vec<Lag> = g
        .committed
        .iter()
        .filter_map(|(tp, current)| {
            let end = log.latest_offset(&tp.topic, tp.partition).ok()?;
            let consumer = g
                .members
                .iter()
                .find(|m| m.assigned.contains(tp))
                .map_or_else(String::new, |m| m.id.clone());
            Some(Lag {
                tp: tp.clone(),
                consumer,
                current: *current,
                end,
            })
        })
        .collect();
    out.sort_by(|a, b| a.tp.cmp(&b.tp));
    out
}

fn lag_json(base: &str, group: &str, lag: &Lag) -> Value {
    let (topic, p) = (&lag.tp.topic, lag.tp.partition);
    let g = path_segment(group);
    json!({
        "kind": "KafkaConsumerLag",
        "metadata": {
            "self": format!("{base}/clusters/{CLUSTER_ID}/consumer-groups/{g}/lags/{topic}/partitions/{p}"),
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/consumer-group={group}/lag={topic}/partition={p}"),
        },
        "cluster_id": CLUSTER_ID,
        "consumer_group_id": group,
        "topic_name": topic,
        "partition_id": p,
        "consumer_id": lag.consumer,
        "instance_id": null,
        "client_id": lag.consumer,
        "current_offset": lag.current,
        "log_end_offset": lag.end,
        "lag": lag.lag(),
    })
}

/// A group's lags, or the REST Proxy's 404s: no such group, no committed offsets.
async fn group_lags(state: &AppState, cluster: &str, group: &str) -> Result<Vec<Lag>, KafkaError> {
    let g = existing_group(state, cluster, group, "could not be found").await?;
    if g.committed.is_empty() {
        return Err(not_found("Consumer group offsets could not be found."));
    }
    blocking(state, move |l| Ok(lags(l, &g)))
        .await
        .map_err(KafkaError::v3)
}

async fn list_groups(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    check_cluster(&cluster)?;
    let flows = state.engine.flows().await;
    let groups = blocking(&state, move |l| {
        let mut groups: BTreeMap<String, Option<GroupDescription>> = l
            .consumer_groups()?
            .into_iter()
            .map(|g| (g.group.clone(), Some(g)))
            .collect();
        for flow in &flows {
            add_flow(
                l,
                groups.entry(flow.group.clone()).or_default(),
                &flow.group,
                flow,
            );
        }
        Ok(groups.into_values().flatten().collect::<Vec<_>>())
    })
    .await
    .map_err(KafkaError::v3)?;
    let base = base_url(&headers);
    let data = groups.iter().map(|g| group_json(&base, g)).collect();
    let me = format!("{base}/clusters/{CLUSTER_ID}/consumer-groups");
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaConsumerGroupList", me, data),
    ))
}

async fn get_group(
    State(state): State<AppState>,
    Path((cluster, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let g = describe(&state, &cluster, &group)
        .await?
        .ok_or_else(plain_not_found)?;
    Ok(ok(StatusCode::OK, &group_json(&base_url(&headers), &g)))
}

async fn list_consumers(
    State(state): State<AppState>,
    Path((cluster, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let g = existing_group(&state, &cluster, &group, "does not exist").await?;
    let base = base_url(&headers);
    // Members come by instance id, the REST Proxy's order.
    let data = g
        .members
        .iter()
        .map(|m| consumer_json(&base, &g.group, m))
        .collect();
    let me = format!(
        "{base}/clusters/{CLUSTER_ID}/consumer-groups/{}/consumers",
        path_segment(&g.group)
    );
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaConsumerList", me, data),
    ))
}

/// The member `consumer` of `group`, or the REST Proxy's 404s: for a missing group, and
/// `missing` for a missing member (its texts differ between the consumer and its
/// assignments).
async fn member(
    state: &AppState,
    cluster: &str,
    group: &str,
    consumer: &str,
    missing: impl FnOnce() -> KafkaError,
) -> Result<GroupMember, KafkaError> {
    existing_group(state, cluster, group, "does not exist")
        .await?
        .members
        .into_iter()
        .find(|m| m.id == consumer)
        .ok_or_else(missing)
}

/// The 404 of an assignment request for a consumer the group does not have.
fn no_consumer(consumer: &str) -> impl FnOnce() -> KafkaError + '_ {
    move || not_found(format!("Consumer {consumer} does not exist."))
}

async fn get_consumer(
    State(state): State<AppState>,
    Path((cluster, group, consumer)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let m = member(&state, &cluster, &group, &consumer, plain_not_found).await?;
    Ok(ok(
        StatusCode::OK,
        &consumer_json(&base_url(&headers), &group, &m),
    ))
}

async fn list_assignments(
    State(state): State<AppState>,
    Path((cluster, group, consumer)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let m = member(&state, &cluster, &group, &consumer, no_consumer(&consumer)).await?;
    let base = base_url(&headers);
    let mut assigned = m.assigned;
    assigned.sort();
    let data = assigned
        .iter()
        .map(|tp| assignment_json(&base, &group, &m.id, tp))
        .collect();
    let me = format!(
        "{base}/clusters/{CLUSTER_ID}/consumer-groups/{}/consumers/{}/assignments",
        path_segment(&group),
        path_segment(&m.id)
    );
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaConsumerAssignmentList", me, data),
    ))
}

async fn get_assignment(
    State(state): State<AppState>,
    Path((cluster, group, consumer, topic, partition)): Path<(String, String, String, String, i64)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let m = member(&state, &cluster, &group, &consumer, no_consumer(&consumer)).await?;
    let tp = m
        .assigned
        .iter()
        .find(|tp| tp.topic == topic && i64::from(tp.partition) == partition)
        .ok_or_else(plain_not_found)?;
    Ok(ok(
        StatusCode::OK,
        &assignment_json(&base_url(&headers), &group, &m.id, tp),
    ))
}

async fn list_lags(
    State(state): State<AppState>,
    Path((cluster, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let mut lags = group_lags(&state, &cluster, &group).await?;
    if lags.is_empty() {
        return Err(not_found("Consumer lags not found."));
    }
    // The REST Proxy's order: largest lag first, then topic, then partition.
    lags.sort_by(|a, b| b.lag().cmp(&a.lag()).then_with(|| a.tp.cmp(&b.tp)));
    let base = base_url(&headers);
    let data = lags.iter().map(|l| lag_json(&base, &group, l)).collect();
    let me = format!(
        "{base}/clusters/{CLUSTER_ID}/consumer-groups/{}/lags",
        path_segment(&group)
    );
    Ok(ok(
        StatusCode::OK,
        &list_json("KafkaConsumerLagList", me, data),
    ))
}

async fn get_lag(
    State(state): State<AppState>,
    Path((cluster, group, topic, partition)): Path<(String, String, String, i64)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let lags = group_lags(&state, &cluster, &group).await?;
    let lag = lags
        .iter()
        .find(|l| l.tp.topic == topic && i64::from(l.tp.partition) == partition)
        .ok_or_else(plain_not_found)?;
    Ok(ok(
        StatusCode::OK,
        &lag_json(&base_url(&headers), &group, lag),
    ))
}

async fn get_lag_summary(
    State(state): State<AppState>,
    Path((cluster, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, KafkaError> {
    let lags = group_lags(&state, &cluster, &group).await?;
    // The first partition with the largest lag, in (topic, partition) order.
    let max = lags
        .iter()
        .reduce(|best, l| if l.lag() > best.lag() { l } else { best })
        .ok_or_else(|| not_found("Consumer group offsets could not be found."))?;
    let total = lags.iter().map(Lag::lag).fold(0u64, u64::saturating_add);
    let base = base_url(&headers);
    let cluster_url = format!("{base}/clusters/{CLUSTER_ID}");
    let (topic, p) = (&max.tp.topic, max.tp.partition);
    let g = path_segment(&group);
    let body = json!({
        "kind": "KafkaConsumerGroupLagSummary",
        "metadata": {
            "self": format!("{cluster_url}/consumer-groups/{g}/lag-summary"),
            "resource_name": format!("crn:///kafka={CLUSTER_ID}/consumer-group={group}/lag-summary"),
        },
        "cluster_id": CLUSTER_ID,
        "consumer_group_id": group,
        "max_lag_consumer_id": max.consumer,
        "max_lag_instance_id": null,
        "max_lag_client_id": max.consumer,
        "max_lag_topic_name": topic,
        "max_lag_partition_id": p,
        "max_lag": max.lag(),
        "total_lag": total,
        "max_lag_consumer": {"related": format!("{cluster_url}/consumer-groups/{g}/consumers/{}", path_segment(&max.consumer))},
        "max_lag_partition": {"related": format!("{cluster_url}/topics/{topic}/partitions/{p}")},
    });
    Ok(ok(StatusCode::OK, &body))
}
