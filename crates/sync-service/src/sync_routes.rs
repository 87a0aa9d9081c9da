//! `POST /pipelines/{id}/sync` and `…/sync_batch`: a step asked for now, run by the pipeline's
//! workflow (the checkpoint's only writer) with the caller's settings; `sync` streams the run's
//! messages as NDJSON, `sync_batch` answers its `eof` as JSON.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_state::{Answer, Api, Failure, StrictQuery, unavailable};
use crate::pipeline::Desired;
use crate::step_requests::{Asked, StepAsk};

/// The longest a step may be asked to run: steps run inside a 15-minute activity, like the
/// worker's `--step-secs`.
const MAX_TIME_LIMIT_SECS: f64 = 600.0;
/// How long `sync` waits for a step to take its request (a running step ends first).
const TAKE_WAIT: Duration = Duration::from_secs(15 * 60);
/// How often recorded messages are looked for.
const POLL: Duration = Duration::from_millis(150);
/// The longest `sync_batch` waits for its step (a day).
const MAX_BATCH_WAIT_SECS: u64 = 86_400;

/// A boolean query parameter: `?flag`, `?flag=true` or `1` are true; `false` or `0` false.
pub(crate) fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let text = String::deserialize(d)?;
    match text.as_str() {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "{other:?} is not true or false"
        ))),
    }
}

/// `?time_limit&run_id&reset_state` of `sync`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SyncQuery {
    time_limit: Option<f64>,
    run_id: Option<String>,
    #[serde(deserialize_with = "flag")]
    reset_state: bool,
}

/// `?state_limit&run_id&reset_state&timeout_secs` of `sync_batch`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchQuery {
    state_limit: Option<i64>,
    run_id: Option<String>,
    #[serde(deserialize_with = "flag")]
    reset_state: bool,
    timeout_secs: u64,
}

impl Default for BatchQuery {
    fn default() -> Self {
        BatchQuery {
            state_limit: None,
            run_id: None,
            reset_state: false,
            timeout_secs: 300,
        }
    }
}

fn bad(message: String) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message)
}

fn run_name(run_id: Option<String>) -> Result<Option<String>, Failure> {
    match run_id {
        Some(name) if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) => {
            Err(bad(
                "run_id: must be 1 to 200 characters, none a control character".to_owned(),
            ))
        }
        other => Ok(other),
    }
}

/// A body is taken only when it asks nothing: the reference's one-run overrides (`source`,
/// `destination`, `streams`, `sync_state`) would be a second writer of the checkpoint here.
fn no_overrides(id: &str, body: &Bytes) -> Result<(), Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body: not JSON ({e})")))?;
    match value.as_object().and_then(|o| o.keys().next()) {
        None if value.is_object() => Ok(()),
        None => Err(bad("body: must be a JSON object".to_owned())),
        Some(key) => Err(bad(format!(
            "{key}: one-run overrides are not taken: every step of a pipeline runs what is stored, so that its checkpoint has one writer; PATCH /pipelines/{id} to change it, or ?reset_state=true to start from no checkpoint"
        ))),
    }
}

/// Whether the client asked for JSON (this API's own answers) rather than NDJSON.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.contains("application/json") && !accept.contains("application/x-ndjson")
        })
}

/// Stores the request and rings the workflow; the request's id.
async fn ask(api: &Api, id: &str, ask: &StepAsk) -> Result<i64, Failure> {
    let p = api.visible(id).await?;
    if p.desired != Desired::Active {
        return Err(Failure(
            StatusCode::CONFLICT,
            format!(
                "pipeline {id:?} is {}: no step runs (PATCH desired_status active first)",
                p.desired.as_str()
            ),
        ));
    }
    let request = api.control.ask_step(id, ask).await?;
    api.temporal
        .ring(api.input(id, p.desired), "sync requested")
        .await
        .map_err(unavailable)?;
    Ok(request)
}

/// Waits until a step takes the request; the run serving it.
async fn taken(api: &Api, id: &str, request: i64, wait: Duration) -> Result<i64, Failure> {
    let deadline = Instant::now() + wait;
    loop {
        match api.control.asked(request).await? {
            Asked::Taken(run) => return Ok(run),
            Asked::Waiting => {}
            Asked::Deleted => {
                return Err(Failure(
                    StatusCode::CONFLICT,
                    format!("pipeline {id:?} was deleted before a step ran"),
                ));
            }
            Asked::Paused => {
                return Err(Failure(
                    StatusCode::CONFLICT,
                    format!("pipeline {id:?} was paused before a step ran"),
                ));
            }
            Asked::Failed(error) => {
                return Err(Failure(
                    StatusCode::BAD_GATEWAY,
                    format!("pipeline {id:?}: its step failed before it ran: {error}"),
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "no step of {id:?} started within {} s (is a worker running?); the request stays and the next step serves it",
                    wait.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The lines that end a run that wrote no `eof` (it failed before the engine ran, or was
/// stopped because the pipeline is to be paused or deleted).
async fn closing_lines(api: &Api, id: &str, run: i64) -> Vec<Value> {
    let state = api.control.current_state(id).await.ok();
    let (shown, failure_type) = api
        .control
        .run(run)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    if shown["status"] == "interrupted" {
        return vec![json!({"type": "eof", "eof": {
            "status": "started", "reason": "aborted", "has_more": true, "ending_state": state}})];
    }
    let message = shown["error"]
        .as_str()
        .unwrap_or("the step ended without an eof")
        .to_owned();
    let code = failure_type.unwrap_or_else(|| "system_error".to_owned());
    vec![
        json!({"type": "connection_status", "connection_status": {
            "status": "failed", "message": message, "failure_type": code}}),
        json!({"type": "eof", "eof": {
            "status": "failed", "reason": "error", "has_more": false, "ending_state": state,
            "error": {"code": code, "message": message}}}),
    ]
}

/// Whether a run has ended.
async fn ended(api: &Api, run: i64) -> bool {
    match api.control.run(run).await {
        Ok(Some((shown, _))) => !shown["ended_at"].is_null(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Follows a run's recorded messages until its `eof` (or its end without one).
struct Follower {
    api: Arc<Api>,
    id: String,
    run: i64,
    seq: i32,
    done: bool,
}

impl Follower {
    /// The next lines: what was recorded since the last call, waiting until something was.
    async fn next(&mut self) -> Option<Vec<Value>> {
        if self.done {
            return None;
        }
        loop {
            let was_ended = ended(&self.api, self.run).await;
            let batch = match self.api.control.run_messages(self.run, self.seq, 500).await {
                Ok(batch) => batch,
                Err(e) => {
                    self.done = true;
                    let message = format!("reading the run's messages: {e}");
                    return Some(vec![
                        json!({"type": "log", "log": {"level": "error", "message": message}}),
                    ]);
                }
            };
            if let Some((last, _)) = batch.last() {
                self.seq = *last;
                let lines: Vec<Value> = batch.into_iter().map(|(_, m)| m).collect();
                self.done = lines.iter().any(|m| m["type"] == "eof");
                return Some(lines);
            }
            if was_ended {
                self.done = true;
                return Some(closing_lines(&self.api, &self.id, self.run).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn ndjson(lines: &[Value]) -> Bytes {
    let mut out = Vec::new();
    for line in lines {
        let _ = serde_json::to_writer(&mut out, line);
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// Streams the messages of a step run now (NDJSON, ending with its `eof`). A client asking for
/// `application/json` gets this API's own answer instead: 202 once the step is asked for.
pub async fn sync(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    StrictQuery(query): StrictQuery<SyncQuery>,
    body: Bytes,
) -> Answer {
    no_overrides(&id, &body)?;
    if let Some(limit) = query.time_limit
        && !(limit > 0.0 && limit <= MAX_TIME_LIMIT_SECS)
    {
        return Err(bad(format!(
            "time_limit: must be above 0 and at most {MAX_TIME_LIMIT_SECS} seconds (a step of the pipeline's workflow; the workflow runs the next ones itself)"
        )));
    }
    let settings = StepAsk {
        time_limit: query.time_limit,
        state_limit: None,
        run_name: run_name(query.run_id)?,
        reset_state: query.reset_state,
    };
    let request = ask(&api, &id, &settings).await?;
    if wants_json(&headers) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "requested": "sync"})),
        )
            .into_response());
    }
    let run = taken(&api, &id, request, TAKE_WAIT).await?;
    let follower = Follower {
        api: api.clone(),
        id: id.clone(),
        run,
        seq: 0,
        done: false,
    };
    let stream = futures_util::stream::unfold(follower, |mut f| async move {
        f.next()
            .await
            .map(|lines| (Ok::<_, Infallible>(ndjson(&lines)), f))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Runs a step now and answers its `eof` payload (JSON) once it ended, with the run as
/// `run`; 504 when it did not end within `timeout_secs` (it goes on; see `/runs`).
pub async fn sync_batch(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    StrictQuery(query): StrictQuery<BatchQuery>,
    body: Bytes,
) -> Answer {
    no_overrides(&id, &body)?;
    if !(1..=MAX_BATCH_WAIT_SECS).contains(&query.timeout_secs) {
        return Err(bad(format!(
            "timeout_secs: must be 1 to {MAX_BATCH_WAIT_SECS}"
        )));
    }
    if query.state_limit.is_some_and(|n| n < 1) {
        return Err(bad("state_limit: must be at least 1".to_owned()));
    }
    let settings = StepAsk {
        time_limit: None,
        state_limit: query.state_limit,
        run_name: run_name(query.run_id)?,
        reset_state: query.reset_state,
    };
    let deadline = Instant::now() + Duration::from_secs(query.timeout_secs);
    let request = ask(&api, &id, &settings).await?;
    let run = taken(
        &api,
        &id,
        request,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await?;
    let mut follower = Follower {
        api: api.clone(),
        id: id.clone(),
        run,
        seq: 0,
        done: false,
    };
    let mut eof = None;
    loop {
        let next = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            follower.next(),
        )
        .await;
        match next {
            Err(_) => {
                return Err(Failure(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the step of {id:?} did not end within {} s; it goes on (see /pipelines/{id}/runs)",
                        query.timeout_secs
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(lines)) => {
                if let Some(last) = lines.into_iter().rev().find(|m| m["type"] == "eof") {
                    eof = Some(last["eof"].clone());
                }
            }
        }
    }
    let mut answer = eof.unwrap_or_else(|| json!({"status": "failed", "has_more": false}));
    while !ended(&api, run).await && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    answer["run"] = api
        .control
        .run(run)
        .await?
        .map(|(shown, _)| shown)
        .unwrap_or(Value::Null);
    Ok(Json(answer).into_response())
}
