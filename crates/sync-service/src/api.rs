//! The REST API: pipelines (create, list, get, update, delete), their runs, a sync request,
//! webhooks and `/health` (the other operations on one pipeline are in `operations`). Answers are JSON; errors are `{"error": {"message": …}}` naming the field.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use sync_web_guard::gate::Gate;
use sync_web_guard::same_site::{AllowedHost, SameSite};

use sync_engine_api::{Engine, EngineError, PipelineRequest};

pub use crate::api_state::Api;
use crate::api_state::{Answer, Failure, StrictQuery, unavailable};
use crate::operations;
use crate::owner::{self, Owner};
use crate::pipeline::{self, Desired, Pipeline, Status};
use crate::side_update;
use crate::sync_routes;

/// Webhook ingress only (`sync-service webhook`): `/webhooks/{id}` and `/health`.
pub fn webhook_router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/webhooks/{id}", post(crate::webhook::receive))
        .with_state(api)
}

/// The routes: the API, and the web console (`/`, `/console/…`, `/explorer…`, `/login`), for a
/// server listening on `bound`; a tokenless one answers its own names and `allowed_hosts`
/// only (`sync_web_guard::same_site`).
pub fn router(api: Arc<Api>, bound: SocketAddr, allowed_hosts: &[AllowedHost]) -> Router {
    let same_site = SameSite::new(bound, allowed_hosts, api.token.is_some(), |status, why| {
        Failure(status, why.to_owned()).into_response()
    })
    // Stripe signs webhooks and posts them by the public name; probes ask by any name.
    .exempt(&["/health", "/webhooks/"]);
    let data = Arc::new(crate::console::ConsoleData::new(api.clone()));
    let chrome = sync_console::Chrome {
        token: api.token.clone(),
        pipelines: true,
        host: "sync-service",
        sql: api.token.is_some() || (bound.ip().is_loopback() && allowed_hosts.is_empty()),
        sql_reader: api.sql_reader.clone(),
    };
    let console = sync_console::router(chrome, data.clone(), Some(data));
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/pipelines", get(list).post(create))
        .route("/pipelines/{id}", get(show).patch(update).delete(delete))
        .route("/pipelines/{id}/runs", get(runs))
        .route("/pipelines/{id}/sync", post(sync_routes::sync))
        .route("/pipelines/{id}/sync_batch", post(sync_routes::sync_batch))
        .route("/pipelines/{id}/reconcile", post(operations::reconcile))
        .route("/pipelines/{id}/check", post(operations::check))
        .route("/pipelines/{id}/setup", post(operations::setup))
        .route("/pipelines/{id}/teardown", post(operations::teardown))
        .route("/webhooks/{id}", post(crate::webhook::receive))
        .with_state(api.clone())
        .merge(console)
        .layer(middleware::from_fn_with_state(api, authorize))
        .layer(middleware::from_fn_with_state(
            Arc::new(same_site),
            sync_web_guard::same_site::enforce,
        ))
}

/// The bearer token (or the console's session cookie) on every route but `/health`,
/// `/openapi.json` and webhooks (Stripe signs those instead); pages without it go to the
/// login form.
async fn authorize(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/health" || path == "/openapi.json" || path.starts_with("/webhooks/") {
        return next.run(req).await;
    }
    let gate = sync_web_guard::gate::gate(
        req.method(),
        path,
        req.uri().query(),
        req.headers(),
        api.token.as_deref(),
    );
    match gate {
        Gate::Pass => next.run(req).await,
        Gate::Login(wanted) => sync_web_guard::gate::to_login(&wanted),
        Gate::Refuse(why) => Failure(StatusCode::UNAUTHORIZED, why.to_owned()).into_response(),
    }
}

/// Every pipeline but those being deleted, all in one page (as the reference: `has_more`).
async fn list(State(api): State<Arc<Api>>) -> Answer {
    let all = api.control.list().await?;
    let data: Vec<Value> = all
        .iter()
        .filter(|p| p.desired != Desired::Deleted)
        .map(Pipeline::shown)
        .collect();
    Ok(Json(json!({"data": data, "has_more": false})).into_response())
}

/// One pipeline, with its checkpoint (the state a step resumes from, and when it was saved).
async fn show(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Answer {
    let mut shown = api.visible(&id).await?.shown();
    shown["checkpoint"] = api.control.checkpoint(&id).await?;
    // A Connect platform's pipeline: each account's status, from the source's own state.
    let source_state = serde_json::from_value::<sync_protocol::SourceStateSet>(
        shown["checkpoint"]["state"]["source"].clone(),
    );
    if let Ok(state) = source_state
        && let Some(accounts) = source_stripe::platform_accounts(&state)
    {
        shown["accounts"] = accounts["accounts"].clone();
    }
    Ok(Json(shown).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateQuery {
    #[serde(default, deserialize_with = "sync_routes::flag")]
    skip_check: bool,
}

fn body_object(body: &Value) -> Result<&serde_json::Map<String, Value>, Failure> {
    body.as_object().ok_or_else(|| {
        Failure(
            StatusCode::BAD_REQUEST,
            "body: must be a JSON object".to_owned(),
        )
    })
}

/// The fields of a `POST /pipelines` body.
pub const CREATE_FIELDS: &[&str] = &["id", "source", "destination", "streams"];
/// The fields of a `PATCH /pipelines/{id}` body.
pub const UPDATE_FIELDS: &[&str] = &[
    "source",
    "destination",
    "streams",
    "desired_status",
    "status",
];

/// A pipeline from a create request's body.
fn new_pipeline(fields: &serde_json::Map<String, Value>) -> Result<Pipeline, Failure> {
    if let Some(unknown) = fields.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            format!(
                "{unknown}: unknown field (use {})",
                CREATE_FIELDS.join(", ")
            ),
        ));
    }
    let id = match fields.get("id") {
        None => pipeline::new_id(),
        Some(Value::String(id)) => id.clone(),
        Some(_) => {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                "id: must be a string".to_owned(),
            ));
        }
    };
    pipeline::check_id(&id)?;
    let missing = |f: &str| Failure(StatusCode::BAD_REQUEST, format!("{f}: required"));
    let p = Pipeline::new(
        id,
        pipeline::connector_side(
            "source",
            fields.get("source").ok_or_else(|| missing("source"))?,
            "stripe",
        )?,
        pipeline::connector_side(
            "destination",
            fields
                .get("destination")
                .ok_or_else(|| missing("destination"))?,
            "postgres",
        )?,
        pipeline::check_streams(fields.get("streams"))?,
    );
    Ok(p)
}

async fn create(
    State(api): State<Arc<Api>>,
    StrictQuery(query): StrictQuery<CreateQuery>,
    Json(body): Json<Value>,
) -> Answer {
    let p = new_pipeline(body_object(&body)?)?;
    let id = p.id.clone();
    let request = p.request()?;
    if !query.skip_check {
        let failures = api
            .engine
            .check_failures(&request, None)
            .await
            .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("check: {e:#}")))?;
        if !failures.is_empty() {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!(
                    "check failed: {}",
                    failures
                        .into_iter()
                        .map(|(_, why)| why)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        streams_offered(&api, &request).await?;
    }
    api.control.create(&p).await?;
    if let Err(e) = api
        .temporal
        .ring(api.input(&id, Desired::Active), "created")
        .await
    {
        // Not started: forget it, so the same request can be made again.
        let _ = api.control.remove(&id).await;
        return Err(unavailable(e));
    }
    Ok((StatusCode::CREATED, Json(p.shown())).into_response())
}

async fn update(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Answer {
    let fields = body_object(&body)?;
    let desired = desired_of(fields)?;
    if let Some((field, Desired::Deleted)) = desired {
        // The same as DELETE.
        if fields.len() > 1 {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!("{field}: \"deleted\" takes no other field"),
            ));
        }
        return delete(State(api), Path(id)).await;
    }
    let mut p = api.visible(&id).await?;
    let before = p.request()?;
    if let Some((_, d)) = desired {
        p.desired = d;
    }
    for (key, value) in fields {
        match key.as_str() {
            "source" => p.source = side_update::merged_side("source", &p.source, value)?,
            "destination" => {
                p.destination = side_update::merged_side("destination", &p.destination, value)?
            }
            "streams" => p.streams = pipeline::check_streams(Some(value))?,
            "status" | "desired_status" => {}
            other => {
                return Err(Failure(
                    StatusCode::BAD_REQUEST,
                    format!("{other}: unknown field (use {})", UPDATE_FIELDS.join(", ")),
                ));
            }
        }
    }
    let request = p.request()?;
    if fields.get("streams").is_some_and(|s| !s.is_null()) {
        streams_offered(&api, &request).await?;
    }
    let reset = store_update(&api, &mut p, &before, &request).await?;
    api.temporal
        .desire(api.input(&id, p.desired), p.desired)
        .await
        .map_err(unavailable)?;
    let mut shown = p.shown();
    shown["checkpoint_reset"] = json!(reset);
    Ok(Json(shown).into_response())
}

/// Stores an update. One that changes what the source reads or where the destination writes
/// leaves the checkpoint behind (it says how far the old place was read, not the new one):
/// it is reset with the update, and why is returned, logged, and shown with the checkpoint.
async fn store_update(
    api: &Api,
    p: &mut Pipeline,
    before: &PipelineRequest,
    after: &PipelineRequest,
) -> Result<Option<String>, Failure> {
    let moved = owner::moved(&api.engine, before, after)
        .await
        .map_err(|e| {
            Failure(
                StatusCode::BAD_GATEWAY,
                format!("cannot tell whether this change moves the pipeline elsewhere: {e:#}"),
            )
        })?;
    let Some(moved) = moved else {
        api.control.update(p).await?;
        return Ok(None);
    };
    // Unknown (a connector the engine cannot find): the next step records it.
    let owner = Owner::of(&api.engine, after).await.ok();
    let reason = api.control.update_moved(p, owner.as_ref(), &moved).await?;
    tracing::warn!(pipeline = %p.id, "checkpoint reset: {reason}");
    if p.status == Status::Ready {
        p.status = Status::Backfilling;
    }
    Ok(Some(reason))
}

/// Refuses streams the source does not offer, naming them, before anything is stored (as
/// `sync-engine serve` does); otherwise every step would fail on them. A pipeline of every
/// stream needs no catalog.
async fn streams_offered(api: &Api, request: &PipelineRequest) -> Result<(), Failure> {
    if request.streams.is_none() {
        return Ok(());
    }
    match api.engine.discover(request).await {
        Ok(_) => Ok(()),
        Err(EngineError::Invalid(why)) => {
            Err(Failure(StatusCode::BAD_REQUEST, format!("streams: {why}")))
        }
        Err(e) => Err(Failure(
            StatusCode::BAD_GATEWAY,
            format!(
                "streams: the source's catalog, needed to check them, could not be read: {e:#}"
            ),
        )),
    }
}

/// `desired_status` (the reference's name) or `status`: what the user wants, and the field
/// that said it; both at once must agree.
fn desired_of(
    fields: &serde_json::Map<String, Value>,
) -> Result<Option<(&'static str, Desired)>, Failure> {
    let mut wanted = None;
    for field in ["desired_status", "status"] {
        let Some(value) = fields.get(field) else {
            continue;
        };
        let Some(desired) = value.as_str().and_then(Desired::parse) else {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!("{field}: must be \"active\", \"paused\" or \"deleted\""),
            ));
        };
        match wanted {
            Some((_, other)) if other != desired => {
                return Err(Failure(
                    StatusCode::BAD_REQUEST,
                    "status: differs from desired_status (they are the same field; give one)"
                        .to_owned(),
                ));
            }
            _ => wanted = Some((field, desired)),
        }
    }
    Ok(wanted)
}

/// Marks the pipeline deleted (it is gone from the API at once) and has its workflow tear it
/// down and forget it; `{"id", "deleted": true}` as the reference answers.
async fn delete(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Answer {
    let mut p = api.visible(&id).await?;
    p.desired = Desired::Deleted;
    api.control.update(&p).await?;
    api.temporal
        .desire(api.input(&id, Desired::Deleted), Desired::Deleted)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({"id": id, "deleted": true})).into_response())
}

async fn runs(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Answer {
    api.visible(&id).await?;
    let data = api.control.runs(&id, 100).await?;
    Ok(Json(json!({"data": data})).into_response())
}
