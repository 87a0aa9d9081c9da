//! Live mode: after the backfills and the catch-up, the source keeps applying changes as they
//! happen, from two paths at once — polling `/v1/events` from the cursor, and its own webhook
//! endpoint — applying each event once whichever path brings it first. Only polling moves the
//! cursor, so after a crash a rerun reads again every event whose records were not committed.
//! It runs until SIGTERM or SIGINT, then emits a final state and ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sync_connector::ConnectorError;
use sync_protocol::SourceState;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::error::ReadError;
use crate::events::{self, Applied, EventsCtx, Pushed, Taken};
use crate::state::{EventsCursor, GlobalCheckpoint};

/// A verified webhook event, and where to say what became of it.
pub(crate) struct Delivery {
    /// The event's JSON text, as signed.
    pub event: String,
    /// Where its fate goes: the answer to the delivery waits for it.
    pub handed_on: oneshot::Sender<Handed>,
}

/// What became of a delivered webhook event, as its answer says.
pub(crate) enum Handed {
    /// Its records went on (or it had already been applied): 200.
    On,
    /// Signed, but not an event this source can read or takes (another account's or mode's):
    /// 400, counted as refused.
    Refused(String),
    /// It could not be applied now: 503, so Stripe delivers it again.
    NotNow,
}

/// What the webhook endpoint needs, and what it refused.
pub(crate) struct Endpoint {
    deliveries: mpsc::Sender<Delivery>,
    secrets: Vec<String>,
    tolerance_secs: u64,
    refused: AtomicU64,
}

/// The largest webhook body taken (axum's default, made explicit); Stripe's events are far
/// smaller.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

impl Endpoint {
    /// Logs a refused delivery with the running count; `why` is also the answer's body.
    fn refuse(&self, status: StatusCode, why: String) -> Response {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(refused, "webhook refused: {why}");
        (status, why).into_response()
    }
}

/// Why a body was not read: its size when it is over [`MAX_BODY_BYTES`].
fn unread_body(headers: &HeaderMap, rejection: &BytesRejection) -> (StatusCode, String) {
    let BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) = rejection
    else {
        return (
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {rejection}"),
        );
    };
    let size = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map_or("more than".to_owned(), |n| format!("{n} bytes, more than"));
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is {size} the {MAX_BODY_BYTES} bytes (2 MiB) a webhook may have"),
    )
}

/// `POST /webhooks`: 200 once the verified event's records are on their way to the
/// destination; 400 for a body that is not an event, 401 for a signature that does not verify,
/// 413 for a body over [`MAX_BODY_BYTES`].
async fn receive(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let (status, why) = unread_body(&headers, &rejection);
            return endpoint.refuse(status, why);
        }
    };
    let secrets: Vec<&str> = endpoint.secrets.iter().map(String::as_str).collect();
    let event = match crate::webhook::ingress(&body, &headers, &secrets, endpoint.tolerance_secs) {
        Ok(verified) => verified.text,
        Err(e) => return endpoint.refuse(e.status(), e.to_string()),
    };
    let (handed_on, answer) = oneshot::channel();
    if endpoint
        .deliveries
        .send(Delivery { event, handed_on })
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "the source is stopping").into_response();
    }
    match answer.await {
        Ok(Handed::On) => (StatusCode::OK, "ok").into_response(),
        // Stripe shows the failed delivery, and retries it for days.
        Ok(Handed::Refused(why)) => endpoint.refuse(StatusCode::BAD_REQUEST, why),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the event could not be handed on",
        )
            .into_response(),
    }
}

/// `receive` for any path: only `POST` carries a webhook.
async fn receive_any_path(
    method: axum::http::Method,
    state: State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if method != axum::http::Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    receive(state, headers, body).await
}

/// Starts the webhook endpoint, when the config asks for one.
pub(crate) async fn listen(
    config: &Config,
    deliveries: mpsc::Sender<Delivery>,
) -> Result<Option<Arc<Endpoint>>, ConnectorError> {
    let Some(address) = &config.webhook_listen else {
        return Ok(None);
    };
    // Named as the config names it: the reference's webhook_port, or webhook_listen.
    let key = if config.webhook_any_path {
        "webhook_port"
    } else {
        "webhook_listen"
    };
    let secrets: Vec<String> = config
        .webhook_secrets()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if secrets.is_empty() {
        return Err(ConnectorError::config(format!(
            "{key} needs webhook_secret, to verify what arrives"
        )));
    }
    let listener = tokio::net::TcpListener::bind(address.as_str())
        .await
        .map_err(|e| ConnectorError::config(format!("{key} {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ConnectorError::system(format!("webhook_listen: {e}")))?;
    let endpoint = Arc::new(Endpoint {
        deliveries,
        secrets,
        tolerance_secs: config.webhook_tolerance_secs,
        refused: AtomicU64::new(0),
    });
    let mut app = axum::Router::new().route("/webhooks", axum::routing::post(receive));
    if config.webhook_any_path {
        // The reference's listener takes a POST on any path (`stripe listen --forward-to
        // localhost:PORT`).
        app = app.fallback(receive_any_path);
    }
    let app = app
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(endpoint.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the webhook endpoint stopped: {e}");
        }
    });
    tracing::info!("receiving webhooks on http://{bound}/webhooks");
    Ok(Some(endpoint))
}

pub(crate) fn interval(secs: f64) -> Option<tokio::time::Interval> {
    (secs > 0.0).then(|| {
        // The schema bounds it above; a tick under a millisecond is taken as one.
        let mut tick = tokio::time::interval(Duration::from_secs_f64(secs.max(0.001)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    })
}

pub(crate) async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// SIGTERM and SIGINT, either of which ends a live run.
pub(crate) struct Stop {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Stop {
    pub(crate) fn watch() -> Result<Stop, ConnectorError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            terminate: signal(SignalKind::terminate())
                .map_err(|e| ConnectorError::system(format!("cannot watch SIGTERM: {e}")))?,
            interrupt: signal(SignalKind::interrupt())
                .map_err(|e| ConnectorError::system(format!("cannot watch SIGINT: {e}")))?,
        })
    }

    /// Returns when either signal arrives.
    pub(crate) async fn stopped(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// What the answer to a delivery says, from how applying it went; an output that closed ends
/// the run.
pub(crate) fn handed(result: Result<Taken, ReadError>) -> Result<Handed, ConnectorError> {
    Ok(match result {
        Ok(Taken::Applied | Taken::AlreadyApplied) => Handed::On,
        Ok(Taken::Unreadable(why)) => Handed::Refused(why),
        Ok(Taken::NotOurs(why)) => Handed::Refused(why.to_string()),
        Err(ReadError::Output(closed)) => return Err(closed.into()),
        Err(e) => {
            tracing::warn!("a webhook event could not be applied: {e}");
            Handed::NotNow
        }
    })
}

/// Logs the end of a live run: the events webhooks brought, and those refused.
pub(crate) fn log_stopping(received: u64, endpoint: Option<&Endpoint>) {
    let refused = endpoint.map_or(0, |e| e.refused.load(Ordering::Relaxed));
    if refused > 0 {
        tracing::warn!(
            webhook_events_applied = received,
            webhooks_refused = refused,
            "live: stopping; webhooks were refused (bad signature, wrong secret, stale, not an event, another account's or mode's event, a body over 2 MiB)"
        );
    } else {
        tracing::info!(webhook_events_applied = received, "live: stopping");
    }
}

/// Warns of a live run that nothing can bring changes to.
pub(crate) fn warn_if_deaf(config: &Config) {
    if config.poll_interval_secs <= 0.0 && config.webhook_listen.is_none() {
        tracing::warn!(
            "live with neither polling (poll_interval_secs is 0) nor webhook_listen: only pushed input would arrive, and none can"
        );
    }
}

/// Follows changes until stopped.
pub(crate) async fn run(
    ctx: &EventsCtx,
    config: &Config,
    mut cursor: EventsCursor,
    mut applied: Applied,
) -> Result<(), ConnectorError> {
    let mut stop = Stop::watch()?;
    let (deliveries, mut arriving) = mpsc::channel::<Delivery>(1024);
    let endpoint = listen(config, deliveries).await?;
    warn_if_deaf(config);
    let mut poll = interval(config.poll_interval_secs);
    let mut checkpoint = interval(config.checkpoint_interval_secs);
    let mut pushed = Pushed::default();
    let mut received = 0u64;
    tracing::info!("live: following changes until stopped");
    loop {
        tokio::select! {
            () = stop.stopped() => break,
            Some(delivery) = arriving.recv() => {
                let result = pushed.apply(ctx, &delivery.event, &mut applied).await;
                if matches!(result, Ok(Taken::Applied)) {
                    received += 1;
                }
                let _ = delivery.handed_on.send(handed(result)?);
            }
            _ = tick(&mut poll) => {
                let (_, advanced) = events::follow(ctx, cursor.clone(), &mut applied)
                    .await
                    .map_err(|e| e.ending("following events"))?;
                cursor = advanced;
            }
            _ = tick(&mut checkpoint) => {
                // The destination commits what came before a state, and a quiet source still
                // shows it is alive (the engine stops a source silent for too long).
                emit_state(ctx, &cursor).await?;
            }
        }
    }
    log_stopping(received, endpoint.as_deref());
    emit_state(ctx, &cursor).await
}

/// The global state of one account's live run: its events cursor.
pub(crate) async fn emit_state(
    ctx: &EventsCtx,
    cursor: &EventsCursor,
) -> Result<(), ConnectorError> {
    let global = GlobalCheckpoint {
        account: Some(ctx.account.clone()),
        events_cursor: cursor.clone(),
        streams: ctx.streams.clone(),
    };
    Ok(ctx
        .output
        .state(SourceState::global(global.to_value()))
        .await?)
}
