//! Operations on one pipeline beyond its record: check, setup and teardown of its connectors
//! (run by `serve` through its engine) and a full reconcile. Check, setup and teardown answer
//! the connectors' messages as NDJSON (as the reference does), or this API's JSON verdict to a
//! client that asks for `application/json`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sync_engine_api::Engine;
use sync_protocol::{FailureType, Message, Role, SyncState};

use crate::activities::{all_of, failure_name, failures_in};
use crate::api_state::{Answer, Api, Failure, StrictQuery, unavailable};
use crate::pipeline::{Desired, shown_message};
use crate::sync_routes::wants_json;
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

/// The messages as NDJSON (config updates redacted).
fn ndjson_answer(messages: &[Message]) -> Answer {
    let mut body = Vec::new();
    for message in messages {
        let _ = serde_json::to_writer(&mut body, &shown_message(message));
        body.push(b'\n');
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(body))
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `check` of the stored configs: the connectors' messages (a failed `connection_status` says
/// what is wrong), or, as JSON, 200 whatever the verdict, which is in `ok` and `failures`.
pub async fn check(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<OnlyQuery>,
) -> Answer {
    let p = api.visible(&id).await?;
    let request = p.request()?;
    let messages = api
        .engine
        .check(&request, query.role()?)
        .await
        .map_err(|e| engine_failed("check", e))?;
    let messages = all_of(messages).await;
    if !wants_json(&headers) {
        return ndjson_answer(&messages);
    }
    let failures = failures_in(&messages);
    let ok = failures.is_empty();
    Ok(Json(json!({"id": id, "ok": ok, "failures": failures_json(failures)})).into_response())
}

/// `setup` of the connectors; the config updates it makes (a webhook endpoint's secret) are
/// stored with the pipeline. As JSON, a failure is a 502.
pub async fn setup(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<OnlyQuery>,
) -> Answer {
    let p = api.visible(&id).await?;
    let request = p.request()?;
    let messages = api
        .engine
        .setup(&request, query.role()?)
        .await
        .map_err(|e| engine_failed("setup", e))?;
    let messages = all_of(messages).await;
    let mut updated = Vec::new();
    for message in &messages {
        match message {
            // The next step's setup reports the tables again, to its checkpoint.
            Message::Control(sync_protocol::Control::DestinationTables(_)) => {}
            Message::Control(update) => {
                let kept = api
                    .engine
                    .kept_update(&request, update.clone())
                    .await
                    .map_err(|e| engine_failed("setup", e))?;
                let Some(kept) = kept else { continue };
                api.control.merge_config(&id, &kept).await?;
                updated.push(match kept {
                    sync_protocol::Control::SourceConfig(_) => "source",
                    sync_protocol::Control::DestinationConfig(_)
                    | sync_protocol::Control::DestinationTables(_) => "destination",
                });
            }
            _ => {}
        }
    }
    if !wants_json(&headers) {
        return ndjson_answer(&messages);
    }
    let failures = failures_in(&messages);
    if !failures.is_empty() {
        let why: Vec<_> = failures.into_iter().map(|(_, why)| why).collect();
        return Err(engine_failed("setup", why.join("; ")));
    }
    Ok(Json(json!({"id": id, "ok": true, "config_updated": updated})).into_response())
}

/// `teardown` of the connectors (dest-postgres drops the tables no other pipeline uses). Only a
/// paused pipeline: a running step would set them up again. Once torn down, the checkpoint is
/// reset, so a resume reads everything again instead of trusting rows that are gone. As JSON,
/// a failure is a 502.
pub async fn teardown(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<OnlyQuery>,
) -> Answer {
    let p = api.visible(&id).await?;
    if p.desired != Desired::Paused {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!(
                "pipeline {id:?} is {}: pause it first (PATCH desired_status paused), then tear it down; DELETE tears down and forgets",
                p.desired.as_str()
            ),
        ));
    }
    let request = p.request()?;
    let messages = api
        .engine
        .teardown(&request, query.role()?)
        .await
        .map_err(|e| engine_failed("teardown", e))?;
    let messages = all_of(messages).await;
    let failures = failures_in(&messages);
    if failures.is_empty() {
        // Claiming fences off any step still finishing; then the checkpoint is empty.
        let claim = api.control.claim(&id).await?;
        api.control
            .save_state(&id, claim.fence, &SyncState::default())
            .await?;
    }
    if !wants_json(&headers) {
        return ndjson_answer(&messages);
    }
    if !failures.is_empty() {
        let why: Vec<_> = failures.into_iter().map(|(_, why)| why).collect();
        return Err(engine_failed("teardown", why.join("; ")));
    }
    Ok(Json(json!({"id": id, "ok": true, "checkpoint": "reset"})).into_response())
}

/// Reads everything again (new rows, changed rows, rows whose events were missed).
pub async fn reconcile(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Answer {
    let p = api.visible(&id).await?;
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
