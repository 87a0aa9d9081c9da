//! Operations on one pipeline beyond its record: check, setup and teardown of its connectors
//! (run by `serve` through its engine), a full reconcile, and a step that is waited for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use sync_protocol::{FailureType, Message, Role, SyncState};

use crate::activities::failure_name;
use crate::api::{Answer, Api, Failure, StrictQuery, unavailable};
use crate::pipeline::Desired;
use crate::workflow::RING_RECONCILE;

/// `?only=source|destination`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OnlyQuery {
    only: Option<String>,
}

impl OnlyQuery {
    fn role(&self) -> Result<Option<Role>, Failure> {
        match self.only.as_deref() {
            None => Ok(None),
            Some("source") => Ok(Some(Role::Source)),
            Some("destination") => Ok(Some(Role::Destination)),
            Some(other) => Err(Failure(
                StatusCode::BAD_REQUEST,
                format!("only: {other:?} is neither \"source\" nor \"destination\""),
            )),
        }
    }
}

fn failures_json(failures: Vec<(Option<FailureType>, String)>) -> Vec<Value> {
    failures
        .into_iter()
        .map(|(kind, message)| json!({"failure_type": kind.map(failure_name), "message": message}))
        .collect()
}

fn engine_failed(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::BAD_GATEWAY, format!("{what}: {e:#}"))
}

/// `check` of the stored configs: 200 whatever the verdict, which is in `ok` and `failures`.
pub async fn check(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<OnlyQuery>,
) -> Answer {
    let p = api.control.get(&id).await?;
    let request = p.request()?;
    let failures = api
        .engine
        .check(&request, query.role()?)
        .await
        .map_err(|e| engine_failed("check", e))?;
    let ok = failures.is_empty();
    Ok(Json(json!({"id": id, "ok": ok, "failures": failures_json(failures)})).into_response())
}

/// `setup` of the connectors; the config updates it makes (a webhook endpoint's secret) are
/// stored with the pipeline.
pub async fn setup(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<OnlyQuery>,
) -> Answer {
    let p = api.control.get(&id).await?;
    let request = p.request()?;
    let mut messages = api
        .engine
        .setup(&request, query.role()?)
        .await
        .map_err(|e| engine_failed("setup", e))?;
    let mut updated = Vec::new();
    let mut failures = Vec::new();
    while let Some(message) = messages.next().await {
        match message {
            // The next step's setup reports the tables again, to its checkpoint.
            Message::Control(sync_protocol::Control::DestinationTables(_)) => {}
            Message::Control(update) => {
                api.control.merge_config(&id, &update).await?;
                updated.push(match update {
                    sync_protocol::Control::SourceConfig(_) => "source",
                    sync_protocol::Control::DestinationConfig(_)
                    | sync_protocol::Control::DestinationTables(_) => "destination",
                });
            }
            Message::ConnectionStatus(s) if s.status == sync_protocol::Status::Failed => {
                failures.push((s.failure_type, s.message.unwrap_or_default()));
            }
            _ => {}
        }
    }
    if !failures.is_empty() {
        let why: Vec<_> = failures.into_iter().map(|(_, why)| why).collect();
        return Err(engine_failed("setup", why.join("; ")));
    }
    Ok(Json(json!({"id": id, "ok": true, "config_updated": updated})).into_response())
}

/// `teardown` of the connectors (dest-postgres drops its tables). Only a paused pipeline: a
/// running step would set them up again. The checkpoint is reset, so a resume reads everything
/// again instead of trusting rows that are gone.
pub async fn teardown(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<OnlyQuery>,
) -> Answer {
    let p = api.control.get(&id).await?;
    if p.desired != Desired::Paused {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!(
                "pipeline {id:?} is {}: pause it first (PATCH status paused), then tear it down; DELETE tears down and forgets",
                p.desired.as_str()
            ),
        ));
    }
    let request = p.request()?;
    let failures = api
        .engine
        .teardown(&request, query.role()?)
        .await
        .map_err(|e| engine_failed("teardown", e))?;
    if !failures.is_empty() {
        let why: Vec<_> = failures.into_iter().map(|(_, why)| why).collect();
        return Err(engine_failed("teardown", why.join("; ")));
    }
    // Claiming fences off any step still finishing; then the checkpoint is empty.
    let claim = api.control.claim(&id).await?;
    api.control
        .save_state(&id, claim.fence, &SyncState::default())
        .await?;
    Ok(Json(json!({"id": id, "ok": true, "checkpoint": "reset"})).into_response())
}

/// Reads everything again (new rows, changed rows, rows whose events were missed).
pub async fn reconcile(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Answer {
    let p = api.control.get(&id).await?;
    api.temporal
        .ring(api.input(&id, p.desired), RING_RECONCILE)
        .await
        .map_err(unavailable)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "requested": "reconcile"})),
    )
        .into_response())
}

/// `?timeout_secs=` of `sync_batch`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchQuery {
    timeout_secs: u64,
}

impl Default for BatchQuery {
    fn default() -> Self {
        BatchQuery { timeout_secs: 300 }
    }
}

/// The longest `sync_batch` waits for its step (a day).
const MAX_BATCH_WAIT_SECS: u64 = 86_400;

/// Runs a step now and answers with it once it ended (the first step started after the
/// request); 504 when none ended within `timeout_secs` (it goes on; see `/runs`).
pub async fn sync_batch(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<BatchQuery>,
) -> Answer {
    let p = api.control.get(&id).await?;
    if p.desired != Desired::Active {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!("pipeline {id:?} is {}: no step runs", p.desired.as_str()),
        ));
    }
    if !(1..=MAX_BATCH_WAIT_SECS).contains(&query.timeout_secs) {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            format!("timeout_secs: must be 1 to {MAX_BATCH_WAIT_SECS}"),
        ));
    }
    let before = newest_run(&api, &id).await?;
    api.temporal
        .ring(api.input(&id, p.desired), "sync requested")
        .await
        .map_err(unavailable)?;
    let deadline = Instant::now() + Duration::from_secs(query.timeout_secs);
    while Instant::now() < deadline {
        let runs = api.control.runs(&id, 50).await?;
        let ended = runs
            .iter()
            .rev()
            .find(|r| r["id"].as_i64().unwrap_or(0) > before && !r["ended_at"].is_null());
        if let Some(run) = ended {
            return Ok(Json(run.clone()).into_response());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(Failure(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "no step of {id:?} ended within {} s; it goes on (see /pipelines/{id}/runs)",
            query.timeout_secs
        ),
    ))
}

async fn newest_run(api: &Api, id: &str) -> Result<i64, Failure> {
    let runs = api.control.runs(id, 1).await?;
    Ok(runs.first().and_then(|r| r["id"].as_i64()).unwrap_or(0))
}
