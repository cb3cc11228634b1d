//! Pipeline operations: `GET /pipeline/flows` (status, counters, committed offsets and lag of
//! every flow) and `POST /pipeline/reload` (re-read the configuration; SIGHUP does the same).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::engine::Reloaded;
use crate::pipeline::{FlowDiff, FlowState, FlowStatus};

/// The pipeline routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/pipeline/flows", get(flows))
        .route("/pipeline/reload", post(reload))
}

/// One flow as `GET /pipeline/flows` shows it.
#[derive(Debug, Serialize)]
struct FlowDto {
    name: String,
    topic: String,
    group: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    records_in: u64,
    records_out: u64,
    records_failed: u64,
    records_unmatched: u64,
    batches: u64,
    committed: BTreeMap<u32, u64>,
    lag: BTreeMap<u32, u64>,
}

impl From<FlowStatus> for FlowDto {
    fn from(s: FlowStatus) -> Self {
        let (state, error) = match s.state {
            FlowState::Starting => ("starting", None),
            FlowState::Running => ("running", None),
            FlowState::Stopped => ("stopped", None),
            FlowState::Failed(message) => ("failed", Some(message)),
        };
        Self {
            name: s.name,
            topic: s.topic,
            group: s.group,
            state,
            error,
            records_in: s.records_in,
            records_out: s.records_out,
            records_failed: s.records_failed,
            records_unmatched: s.records_unmatched,
            batches: s.batches,
            committed: s.committed,
            lag: s.lag,
        }
    }
}

#[derive(Debug, Serialize)]
struct FlowsDto {
    flows: Vec<FlowDto>,
}

async fn flows(State(state): State<AppState>) -> Json<FlowsDto> {
    let flows = state
        .engine
        .flows()
        .await
        .into_iter()
        .map(FlowDto::from)
        .collect();
    Json(FlowsDto { flows })
}

#[derive(Debug, Serialize)]
struct ReloadDto {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
    unchanged: Vec<String>,
    restarted: Vec<String>,
    /// Changed settings outside `[pipeline]`, which keep their old values until a restart.
    restart_required: Vec<String>,
}

impl From<Reloaded> for ReloadDto {
    fn from(r: Reloaded) -> Self {
        let d: FlowDiff = r.flows;
        Self {
            added: d.added,
            removed: d.removed,
            changed: d.changed,
            unchanged: d.unchanged,
            restarted: d.restarted,
            restart_required: r.restart_required,
        }
    }
}

/// 200 with what changed, including the changed settings outside `[pipeline]` that need a
/// restart; 422 with the reason when the new configuration is rejected (the running flows are
/// untouched then).
async fn reload(State(state): State<AppState>) -> Result<Json<ReloadDto>, ApiError> {
    // On its own task: a reload stops flows and starts them again, and a client that goes away
    // (or the request timeout) must not cut it off between the two.
    let engine = state.engine.clone();
    let reloaded = tokio::spawn(async move { engine.reload().await })
        .await
        .map_err(|e| ApiError::internal(&e))?;
    match reloaded {
        Ok(diff) => Ok(Json(diff.into())),
        Err(e) => Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reload_rejected",
            e.to_string(),
        )),
    }
}
