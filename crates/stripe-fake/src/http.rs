//! The HTTP face: authentication, account selection, fault injection and Stripe's response
//! headers around [`crate::api`], plus the `/_fake` admin routes.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::json;

use crate::api;
use crate::api_error::ApiError;
use crate::api_request::ApiRequest;
use crate::auth::{self, Mode};
use crate::config::Faults;
use crate::faults::Outcome;
use crate::ids::base62;
use crate::routes::{Route, Target};
use crate::simulator::Simulator;
use crate::stats::Recorded;

pub(crate) fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/_fake/stats", get(stats))
        .route("/_fake/reset-stats", post(reset_stats))
        .route("/_fake/faults", get(faults).post(set_faults))
        .route("/_fake/accounts", get(accounts))
        .route(
            "/_fake/accounts/{id}",
            post(connect_account).delete(disconnect_account),
        )
        .route("/_fake/clock", get(clock).post(set_clock))
        .route("/_fake/delete-silently", post(delete_silently))
        .route("/_fake/load", get(load).post(start_load).delete(stop_load))
        .fallback(stripe)
        .with_state(sim)
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(sim.stats()).into_response()
}

async fn reset_stats(State(sim): State<Arc<Simulator>>) -> Response {
    sim.reset_stats();
    axum::Json(json!({"reset": true})).into_response()
}

async fn load(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(sim.load_status()).into_response()
}

async fn start_load(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let started = serde_json::from_slice::<crate::load::LoadSpec>(&body)
        .map_err(|e| e.to_string())
        .and_then(|spec| sim.start_load(spec).map_err(|e| e.to_string()));
    match started {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(sim.load_status())).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}

async fn stop_load(State(sim): State<Arc<Simulator>>) -> Response {
    sim.stop_load();
    axum::Json(sim.load_status()).into_response()
}

async fn faults(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(sim.faults()).into_response()
}

async fn set_faults(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    match sim.set_faults(faults) {
        Ok(()) => axum::Json(sim.faults()).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// What `POST /_fake/clock` accepts: stop or resume the simulated clock, move it forward.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    #[serde(default)]
    stop: Option<bool>,
    #[serde(default)]
    advance_secs: Option<i64>,
}

/// What `POST /_fake/delete-silently` accepts: an object to delete without an event, of the
/// platform's test data or a connected account's.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SilentDelete {
    stream: String,
    id: String,
    #[serde(default)]
    account: Option<String>,
}

async fn delete_silently(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let deleted = serde_json::from_slice::<SilentDelete>(&body)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            sim.delete_silently(d.account.as_deref(), &d.stream, &d.id)
                .map_err(|e| e.to_string())
        });
    match deleted {
        Ok(stub) => axum::Json(stub).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}

async fn clock(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(json!({"now": sim.now()})).into_response()
}

async fn set_clock(State(sim): State<Arc<Simulator>>, body: Bytes) -> Response {
    let change: ClockChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    match change.stop {
        Some(true) => {
            sim.stop_clock();
        }
        Some(false) => {
            sim.resume_clock();
        }
        None => {}
    }
    if let Some(secs) = change.advance_secs {
        sim.advance_clock(secs);
    }
    axum::Json(json!({"now": sim.now()})).into_response()
}

async fn accounts(State(sim): State<Arc<Simulator>>) -> Response {
    axum::Json(json!({
        "platform": sim.platform_account(),
        "connected": sim.connected_accounts(),
        "disconnected": sim.disconnected_accounts(),
    }))
    .into_response()
}

/// `POST /_fake/accounts/{id}`: the account authorizes the platform's application again.
async fn connect_account(
    State(sim): State<Arc<Simulator>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    set_connected(&sim, &id, true)
}

/// `DELETE /_fake/accounts/{id}`: the account revokes the platform's access.
async fn disconnect_account(
    State(sim): State<Arc<Simulator>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    set_connected(&sim, &id, false)
}

fn set_connected(sim: &Simulator, id: &str, connected: bool) -> Response {
    match sim.set_connected(id, connected) {
        Ok(account) => axum::Json(account).into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Stripe's headers on every answer; `Date` is the simulated clock's.
fn with_headers(mut response: Response, request_id: &str, version: &str, now: i64) -> Response {
    let headers = response.headers_mut();
    if let Some(date) = chrono::DateTime::from_timestamp(now, 0)
        && let Ok(v) = HeaderValue::from_str(&date.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        headers.insert(header::DATE, v);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(version) {
        headers.insert("stripe-version", v);
    }
    response
}

fn plain(status: u16, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// A 429 with Stripe's body and the header naming which limit was hit.
fn rate_limited(sim: &Simulator, reason: &'static str) -> Response {
    let mut response = plain(429, sim.render(ApiError::rate_limited().body()));
    response.headers_mut().insert(
        "stripe-rate-limited-reason",
        HeaderValue::from_static(reason),
    );
    response
}

/// A body that fails before any byte: hyper closes the connection without sending the head
/// (it is still buffered when the body errors).
fn dropped() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::other("injected drop"))
    });
    Response::new(Body::from_stream(failing))
}

/// Announces the full length, sends half, then fails so hyper closes the connection.
fn truncated(body: Bytes) -> Response {
    let full = body.len();
    let half = body.slice(..full / 2);
    let first = futures_util::stream::once(async move { Ok::<Bytes, io::Error>(half) });
    let fail = futures_util::stream::once(async {
        // Let the first half leave before the connection is torn down.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err::<Bytes, io::Error>(io::Error::other("injected truncation"))
    });
    let mut response = Response::new(Body::from_stream(first.chain(fail)));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full));
    response
}

/// A complete 200 whose JSON is cut in the middle (never valid: braces stay open).
fn malformed(body: Bytes) -> Response {
    let cut = (body.len() / 2).max(1).min(body.len());
    plain(200, body.slice(..cut))
}

async fn stripe(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let matched = sim.routes.find(path);
    sim.stats.arrived(
        method == Method::GET
            && matches!(
                matched,
                Some((
                    Route {
                        target: Target::List(_),
                        ..
                    },
                    _
                ))
            ),
    );
    let request_id = format!("req_{}", base62(&mut rand::rng(), 14));
    let version = headers
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(sim.api_version)
        .to_string();
    let method = method_name(&method);
    let endpoint = matched.map_or_else(
        || sim.routes.unrecognized.clone(),
        |(route, _)| route.template.clone(),
    );
    let faults = sim.active_faults();
    let finish = |what: Recorded, response: Response| {
        sim.stats.record(method, &endpoint, what);
        with_headers(response, &request_id, &version, sim.now())
    };
    let error = |e: ApiError| {
        let status = e.status;
        (
            Recorded::Status(status),
            plain(status, sim.render(e.body())),
        )
    };

    let mode = match authenticate(&sim, &headers).and_then(|mode| {
        revoked(&faults, &headers)?;
        Ok(mode)
    }) {
        Ok(mode) => mode,
        Err(e) => {
            let (what, response) = error(e);
            return finish(what, response);
        }
    };
    let slot = match select_account(&sim, &headers) {
        Ok(slot) => slot,
        Err(e) => {
            let (what, response) = error(e);
            return finish(what, response);
        }
    };
    let admitted = faults.admit(method, &endpoint, slot);
    if let Some(delay) = faults.latency() {
        tokio::time::sleep(delay).await;
    }
    if let Err(limited) = admitted {
        let response = rate_limited(&sim, limited.reason());
        let what = match limited {
            crate::faults::RateLimited::Global => Recorded::RateLimitedGlobal,
            crate::faults::RateLimited::Endpoint => Recorded::RateLimitedEndpoint,
        };
        return finish(what, response);
    }
    let outcome = faults.roll();
    match outcome {
        Outcome::Drop => return finish(Recorded::Dropped, dropped()),
        Outcome::Throttle => {
            return finish(Recorded::Throttled, rate_limited(&sim, "endpoint-rate"));
        }
        Outcome::ServerError => {
            return finish(
                Recorded::ServerError,
                plain(500, sim.render(ApiError::server_error().body())),
            );
        }
        _ => {}
    }
    if !sim.is_generated(slot, mode) {
        // Generating a live-mode data set takes a moment: keep it off the async workers.
        let generating = sim.clone();
        let _ = tokio::task::spawn_blocking(move || {
            generating.data(slot, mode);
        })
        .await;
    }
    let result = match matched {
        None => Err(ApiError::unrecognized(method, path)),
        Some((route, id)) => {
            let request = ApiRequest {
                method,
                path,
                query: uri.query(),
                body: &body,
                slot,
                mode,
                request_id: &request_id,
            };
            api::handle(&sim, &faults, route.target, id, &request)
        }
    };
    match (result.map(|body| sim.render(body)), outcome) {
        (Ok(body), Outcome::Truncate) => finish(Recorded::Truncated, truncated(body)),
        (Ok(body), Outcome::Malformed) => finish(Recorded::Malformed, malformed(body)),
        (Ok(body), _) => finish(Recorded::Status(200), plain(200, body)),
        (Err(e), _) => {
            let (what, response) = error(e);
            finish(what, response)
        }
    }
}

fn authenticate(sim: &Simulator, headers: &HeaderMap) -> Result<Mode, ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::key_from_authorization);
    let Some(key) = key else {
        return Err(ApiError::invalid(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )
        .status(401));
    };
    sim.key_mode(&key).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid API Key provided: {}",
            auth::mask_key(&key)
        ))
        .status(401)
        .code("api_key_invalid")
    })
}

/// A key the faults say was revoked: Stripe's answer for an expired key.
fn revoked(faults: &crate::faults::ActiveFaults, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::key_from_authorization);
    match key {
        Some(key) if faults.is_revoked(&key) => Err(ApiError::invalid(format!(
            "Expired API Key provided: {}",
            auth::mask_key(&key)
        ))
        .status(401)
        .code("api_key_expired")),
        _ => Ok(()),
    }
}

fn select_account(sim: &Simulator, headers: &HeaderMap) -> Result<usize, ApiError> {
    let Some(value) = headers.get("stripe-account") else {
        return Ok(0);
    };
    let account = value.to_str().unwrap_or_default().trim();
    let reachable = sim
        .slot(Some(account))
        .filter(|_| !sim.is_disconnected(account));
    reachable.ok_or_else(|| {
        ApiError::invalid(format!(
            "The provided key does not have access to account '{account}' (or that account does not exist). Application access may have been revoked."
        ))
        .status(403)
        .code("account_invalid")
    })
}
