//! `POST /webhooks/{id}`: a Stripe webhook, verified with the pipeline's `webhook_secret` (or
//! `connect_webhook_secret`, a platform's Connect endpoint's),
//! judged by the source's rule of whose events it applies, kept in the inbox (durable before
//! the answer), then the workflow is rung. It needs no bearer token: Stripe signs instead, so
//! its answers before a signature verifies reveal nothing (not whether the pipeline exists, nor
//! whether it has a secret); the real reason is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use source_stripe::{InputError, Refusal};

use crate::api_state::{Answer, Api, Failure, unavailable};
use crate::control::ControlError;
use crate::pipeline::{Desired, Pipeline};

/// Webhooks refused since the process started; each refusal's log line carries the count.
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// The one answer to a delivery that does not verify, whatever the reason: an unknown
/// pipeline, one without a webhook secret, a wrong, stale or missing signature.
fn unverified() -> Failure {
    Failure(
        StatusCode::UNAUTHORIZED,
        "webhook refused: no valid Stripe-Signature for this endpoint".to_owned(),
    )
}

/// A refusal: logged with its real reason and the running count, answered with `answer`.
fn refuse(pipeline: &str, reason: &str, answer: Failure) -> Failure {
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        pipeline,
        webhooks_refused = refused,
        "webhook refused: {reason}"
    );
    answer
}

/// 200 once the event is kept and the workflow rung; 503 when either cannot be done (Stripe
/// delivers again; a kept event is not kept twice); 401 ([`unverified`]) for anything that
/// does not verify.
pub(crate) async fn receive(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    let p = match api.control.get(&id).await {
        // Deleted: gone from the API at once, while its teardown goes on.
        Ok(p) if p.desired == Desired::Deleted => {
            return Err(refuse(
                &id,
                &format!("pipeline {id:?} is deleted"),
                unverified(),
            ));
        }
        Ok(p) => p,
        Err(ControlError::NotFound(_)) => {
            return Err(refuse(&id, &format!("no pipeline {id:?}"), unverified()));
        }
        Err(e) => return Err(e.into()),
    };
    let event = verified_event(&id, &p, &headers, &body)?;
    let event_id = event["id"]
        .as_str()
        .ok_or_else(|| {
            let reason = "webhook body: the event has no id";
            refuse(
                &id,
                reason,
                Failure(StatusCode::BAD_REQUEST, reason.to_owned()),
            )
        })?
        .to_owned();
    admit(&p, &event).await.map_err(|(code, reason)| {
        refuse(
            &id,
            &reason,
            Failure(code, format!("webhook refused: {reason}")),
        )
    })?;
    let new = api.control.inbox_insert(&id, &event_id, &event).await?;
    api.temporal
        .ring(api.input(&id, p.desired), "webhook")
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({"received": event_id, "duplicate": !new})).into_response())
}

/// The event a delivery carries, once its signature verifies with the pipeline's
/// `webhook_secret` within the source's `webhook_tolerance_secs` (source-stripe's
/// [`source_stripe::ingress`], as its own endpoint does); else a refusal.
fn verified_event(
    id: &str,
    p: &Pipeline,
    headers: &HeaderMap,
    body: &str,
) -> Result<Value, Failure> {
    // A platform's Connect endpoint (connected accounts' events) signs with its own secret.
    let secrets: Vec<&str> = ["webhook_secret", "connect_webhook_secret"]
        .iter()
        .filter_map(|key| p.source["config"][key].as_str())
        .collect();
    // Validated against the source's spec when the pipeline was stored.
    let tolerance_secs = p.source["config"]["webhook_tolerance_secs"]
        .as_u64()
        .unwrap_or(source_stripe::DEFAULT_WEBHOOK_TOLERANCE_SECS);
    match source_stripe::ingress(body.as_bytes(), headers, &secrets, tolerance_secs) {
        Ok(verified) => Ok(verified.event),
        Err(e) => {
            let answer = match e.status() {
                // Signed with the pipeline's secret: whoever sent it knows the pipeline.
                StatusCode::BAD_REQUEST => {
                    Failure(StatusCode::BAD_REQUEST, format!("webhook refused: {e}"))
                }
                _ => unverified(),
            };
            let reason = match e {
                InputError::NoSecret => format!(
                    "pipeline {id:?} has no source.config.webhook_secret to verify webhooks with"
                ),
                _ => format!("pipeline {id:?}: {e}"),
            };
            Err(refuse(id, &reason, answer))
        }
    }
}

/// Whether a Stripe pipeline applies this event (its account's and mode's, by the source's own
/// rule); another source's events are its own business.
async fn admit(p: &Pipeline, event: &Value) -> Result<(), (StatusCode, String)> {
    if p.source["name"] != "stripe" {
        return Ok(());
    }
    let config = serde_json::from_value::<source_stripe::Config>(p.source["config"].clone())
        .map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the pipeline's source.config is not a Stripe source config: {}",
                    sync_connector::redact::redact(&e.to_string())
                ),
            )
        })?;
    source_stripe::admit(&config, event)
        .await
        .map_err(|refusal| match refusal {
            // Stripe delivers it again; by then the account may be known.
            Refusal::AccountUnknown(ref why) => {
                tracing::warn!(
                    "a webhook waits: {}",
                    sync_connector::redact::redact(&format!("{refusal}: {why}"))
                );
                (StatusCode::SERVICE_UNAVAILABLE, refusal.to_string())
            }
            Refusal::NotOurs(_) | Refusal::Unreadable => {
                (StatusCode::BAD_REQUEST, refusal.to_string())
            }
        })
}
