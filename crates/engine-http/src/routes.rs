//! The handler of every route in [`crate::route_table::ROUTES`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};
use sync_protocol::{Message, Role};
use tracing::Instrument;

use crate::AppState;
use crate::ndjson::{Ending, engine_error_response, error_response, stream_response};
use crate::route_table::Route;
use sync_engine_api::wire;
use sync_engine_api::{ConnectorConfig, Engine, PipelineRequest, SyncRequest};

/// The handler of a route.
pub(super) fn handler(route: &Route) -> MethodRouter<Arc<AppState>> {
    match route.operation_id {
        "health" => get(health),
        "pipeline_check" => post(pipeline_check),
        "pipeline_setup" => post(pipeline_setup),
        "pipeline_teardown" => post(pipeline_teardown),
        "source_discover" => post(source_discover),
        "pipeline_read" => post(pipeline_read),
        "pipeline_write" => post(pipeline_write),
        "pipeline_sync" => post(pipeline_sync),
        "pipeline_sync_batch" => post(pipeline_sync_batch),
        "meta_sources" => get(meta_sources),
        "meta_source" => get(meta_source),
        "meta_destinations" => get(meta_destinations),
        "meta_destination" => get(meta_destination),
        "openapi" => get(openapi),
        other => unreachable!("route {other} has no handler"),
    }
}

/// The JSON body (the same-site guard let only JSON types through), or a 400 naming what is
/// wrong with it.
fn json_body(_headers: &HeaderMap, body: &Bytes) -> Result<Value, Box<Response>> {
    if body.is_empty() {
        return Err(Box::new(error_response(
            StatusCode::BAD_REQUEST,
            "body: missing (a JSON object)",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error_response(
            StatusCode::BAD_REQUEST,
            &format!("body: invalid JSON ({e})"),
        ))
    })
}

fn bad_request(e: wire::BodyError) -> Response {
    error_response(StatusCode::BAD_REQUEST, &e.0)
}

fn rejected(e: wire::BodyError) -> Box<Response> {
    Box::new(bad_request(e))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({
        "ok": true,
        "hostname": state.hostname,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn operation(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(PipelineRequest, Option<Role>), Box<Response>> {
    let value = json_body(headers, body)?;
    let (pipeline, only) = wire::operation(&value).map_err(rejected)?;
    Ok((pipeline, only.map(Role::from)))
}

/// The operations that take a pipeline and an optional side, and answer what it printed.
#[derive(Clone, Copy)]
enum SideOperation {
    Check,
    Setup,
    Teardown,
}

async fn side_operation(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Bytes,
    operation_kind: SideOperation,
) -> Response {
    let (pipeline, only) = match operation(&headers, &body).await {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let route = match operation_kind {
        SideOperation::Check => "pipeline_check",
        SideOperation::Setup => "pipeline_setup",
        SideOperation::Teardown => "pipeline_teardown",
    };
    let span = request_span(&headers, route);
    let messages = match operation_kind {
        SideOperation::Check => state.engine.check(&pipeline, only).instrument(span).await,
        SideOperation::Setup => state.engine.setup(&pipeline, only).instrument(span).await,
        SideOperation::Teardown => {
            state
                .engine
                .teardown(&pipeline, only)
                .instrument(span)
                .await
        }
    };
    match messages {
        Ok(messages) => stream_response(messages, Ending::AsIs),
        Err(e) => engine_error_response(e),
    }
}

async fn pipeline_check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    side_operation(state, headers, body, SideOperation::Check).await
}

async fn pipeline_setup(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    side_operation(state, headers, body, SideOperation::Setup).await
}

async fn pipeline_teardown(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    side_operation(state, headers, body, SideOperation::Teardown).await
}

async fn source_discover(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match json_body(&headers, &body) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    if let Some(body) = value.as_object()
        && let Err(e) = wire::known_fields(body, "body", wire::DISCOVER_FIELDS)
    {
        return bad_request(e);
    }
    let source = match value.get("source") {
        Some(s) => match wire::connector(s, "source") {
            Ok(c) => c,
            Err(e) => return bad_request(e),
        },
        None => return error_response(StatusCode::BAD_REQUEST, "source: missing"),
    };
    let streams = match value.get("streams") {
        None | Some(Value::Null) => None,
        Some(list) => {
            let probe =
                json!({"source": {"type": "x"}, "destination": {"type": "x"}, "streams": list});
            match wire::pipeline(&probe, "body") {
                Ok(p) => p.streams,
                Err(e) => return bad_request(e),
            }
        }
    };
    let pipeline = PipelineRequest {
        source,
        destination: ConnectorConfig {
            name: String::new(),
            config: Default::default(),
        },
        streams,
        sync_id: None,
    };
    match state.engine.discover(&pipeline).await {
        Ok(messages) => stream_response(messages, Ending::AsIs),
        Err(e) => engine_error_response(e),
    }
}

/// The header a caller (the reference's service) names its action with, for the logs.
const ACTION_ID: &str = "x-action-id";

/// A sync request's query: `?run_id=` names the run, as the body's `run_id` does.
type SyncQuery = Query<std::collections::HashMap<String, String>>;

/// A sync's body: JSON, or NDJSON whose first line is a `start` message; the query's `run_id`
/// names the run when the body does not (a different one in each is refused).
fn sync_body(
    headers: &HeaderMap,
    query: &SyncQuery,
    body: &Bytes,
) -> Result<(PipelineRequest, SyncRequest), Box<Response>> {
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-ndjson"));
    let (pipeline, mut request) = if ndjson {
        let text = std::str::from_utf8(body)
            .map_err(|_| Box::new(error_response(StatusCode::BAD_REQUEST, "body: not UTF-8")))?;
        wire::ndjson_sync(text).map_err(rejected)?
    } else {
        let value = json_body(headers, body)?;
        wire::sync(&value).map_err(rejected)?
    };
    if let Some(from_query) = query.get("run_id").filter(|id| !id.trim().is_empty()) {
        match &request.run_id {
            Some(from_body) if from_body != from_query => {
                return Err(rejected(wire::BodyError(format!(
                    "run_id: the body names run {from_body:?} and the query run {from_query:?}; give one"
                ))));
            }
            Some(_) => {}
            None => request.run_id = Some(from_query.clone()),
        }
    }
    Ok((pipeline, request))
}

/// The span of one request's logs: the caller's action id (`X-Action-Id`), when it gives one.
fn request_span(headers: &HeaderMap, route: &'static str) -> tracing::Span {
    match headers.get(ACTION_ID).and_then(|v| v.to_str().ok()) {
        Some(action) => tracing::info_span!("request", route, action_id = %action),
        None => tracing::info_span!("request", route),
    }
}

async fn pipeline_sync(
    State(state): State<Arc<AppState>>,
    query: SyncQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (pipeline, request) = match sync_body(&headers, &query, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let span = request_span(&headers, "pipeline_sync");
    match state.engine.sync(&pipeline, request).instrument(span).await {
        Ok(messages) => stream_response(messages, Ending::Eof),
        Err(e) => engine_error_response(e),
    }
}

/// The states a batch stops after when the request gives no `state_limit`.
const DEFAULT_BATCH_STATES: u64 = 1000;

async fn pipeline_sync_batch(
    State(state): State<Arc<AppState>>,
    query: SyncQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (pipeline, mut request) = match sync_body(&headers, &query, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    request.state_limit = request.state_limit.or(Some(DEFAULT_BATCH_STATES));
    let span = request_span(&headers, "pipeline_sync_batch");
    let mut messages = match state.engine.sync(&pipeline, request).instrument(span).await {
        Ok(messages) => messages,
        Err(e) => return engine_error_response(e),
    };
    let mut failure = None;
    while let Some(message) = messages.next().await {
        match message {
            Message::Eof(eof) => return axum::Json(*eof).into_response(),
            Message::ConnectionStatus(s) if s.message.is_some() => failure = s.message,
            _ => {}
        }
    }
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "the sync ended without an eof{}",
            failure.map(|f| format!(": {f}")).unwrap_or_default()
        ),
    )
}

async fn pipeline_read(
    State(state): State<Arc<AppState>>,
    query: SyncQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (pipeline, request) = match sync_body(&headers, &query, &body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let span = request_span(&headers, "pipeline_read");
    match state.engine.read(&pipeline, request).instrument(span).await {
        Ok(messages) => stream_response(messages, Ending::Eof),
        Err(e) => engine_error_response(e),
    }
}

async fn pipeline_write(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match json_body(&headers, &body) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let (pipeline, lines) = match wire::write(&value) {
        Ok(found) => found,
        Err(e) => return bad_request(e),
    };
    match state.engine.write(&pipeline, lines).await {
        Ok(messages) => stream_response(messages, Ending::AsIs),
        Err(e) => engine_error_response(e),
    }
}

async fn connector_list(state: &AppState, role: Role) -> Response {
    let mut items = Vec::new();
    for (found_role, name) in state.engine.resolver().candidates() {
        if found_role != role {
            continue;
        }
        match state.engine.spec(role, &name).await {
            Ok(spec) => items.push(json!({"type": name, "config_schema": spec.config})),
            Err(e) => tracing::warn!("{} {name}: {e}", role.as_str()),
        }
    }
    axum::Json(json!({ "items": items })).into_response()
}

async fn connector_schema(state: &AppState, role: Role, name: &str) -> Response {
    match state.engine.spec(role, name).await {
        Ok(spec) => {
            let mut body = json!({"type": name, "config_schema": spec.config});
            if let Some(input) = spec.source_input {
                body["source_input_schema"] = input;
            }
            axum::Json(body).into_response()
        }
        Err(sync_engine_api::EngineError::NotFound(_)) => error_response(
            StatusCode::NOT_FOUND,
            &format!("Unknown {} connector: {name}", role.as_str()),
        ),
        Err(e) => engine_error_response(e),
    }
}

async fn meta_sources(State(state): State<Arc<AppState>>) -> Response {
    connector_list(&state, Role::Source).await
}

async fn meta_destinations(State(state): State<Arc<AppState>>) -> Response {
    connector_list(&state, Role::Destination).await
}

async fn meta_source(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    connector_schema(&state, Role::Source, &name).await
}

async fn meta_destination(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    connector_schema(&state, Role::Destination, &name).await
}

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(crate::openapi::document(&state).await).into_response()
}
