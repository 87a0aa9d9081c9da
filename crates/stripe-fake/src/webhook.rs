//! Stripe's webhook signatures (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256>`) and the
//! delivery of events to the configured endpoint and to the endpoints created through the API.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use thiserror::Error;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::clock::real_unix_now;
use crate::simulator::{QueuedEvent, Scope, Simulator};

/// Stripe's libraries reject signatures older than this by default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The `Stripe-Signature` header value for a payload signed at `timestamp`.
pub fn signature_header(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let signature = hex::encode(mac(secret, timestamp, payload).finalize().into_bytes());
    format!("t={timestamp},v1={signature}")
}

/// Why a `Stripe-Signature` header does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// No `t=` part holding a unix timestamp.
    #[error("unable to extract timestamp and signatures from header")]
    MalformedHeader,
    /// No `v1=` part.
    #[error("no signatures found with expected scheme v1")]
    NoSignatures,
    /// No `v1` is the payload's signature under the secret.
    #[error("no signatures found matching the expected signature for payload")]
    Mismatch,
    /// The timestamp is older than the tolerance allows.
    #[error("timestamp outside the tolerance zone ({age_secs} s old)")]
    TooOld {
        /// Seconds from the timestamp to `now`.
        age_secs: i64,
    },
}

/// Stripe's verification: the header's `t` and every `v1`; passes when any `v1` equals the
/// HMAC-SHA256 of `"{t}.{payload}"` (compared in constant time), and `t` is no older than
/// `tolerance_secs` before `now` (a tolerance of 0 or less skips the age check).
pub fn verify_signature(
    payload: &[u8],
    header: &str,
    secret: &str,
    tolerance_secs: i64,
    now: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => timestamp = value.parse::<i64>().ok(),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignatures);
    }
    let expected = mac(secret, timestamp, payload);
    let matches = signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|candidate| expected.clone().verify_slice(&candidate).is_ok());
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if tolerance_secs > 0 && timestamp < now - tolerance_secs {
        return Err(SignatureError::TooOld {
            age_secs: now - timestamp,
        });
    }
    Ok(())
}

/// Where one event goes: a URL and the secret its signature is made with.
#[derive(Clone)]
struct Target {
    url: String,
    secret: String,
}

/// The configured endpoint, then every enabled endpoint created through the API whose
/// `enabled_events` hold the event's type (or `*`), as Stripe routes them: a connected
/// account's event goes to that account's own endpoints and to the platform's Connect
/// endpoints (made with `connect=true`); a platform's event goes to its other endpoints, except its
/// Connect events about an account (`account` set), which go to its Connect endpoints.
fn targets(sim: &Simulator, event: &QueuedEvent) -> Vec<Target> {
    let mut found = Vec::new();
    if let Some(config) = &sim.webhook {
        found.push(Target {
            url: config.url.clone(),
            secret: config.secret.clone(),
        });
    }
    let parsed = serde_json::from_slice::<Value>(&event.json).unwrap_or(Value::Null);
    let kind = parsed["type"].as_str().unwrap_or_default().to_owned();
    let about_connected = parsed["account"].is_string();
    let secrets = sim
        .endpoint_secrets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let connect_ids = sim
        .connect_endpoints
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let is_connect = |endpoint: &Value| {
        endpoint["id"]
            .as_str()
            .is_some_and(|id| connect_ids.contains(id))
    };
    let mut endpoints = Vec::new();
    let own = Scope {
        account: Some(sim.accounts[event.slot].id.clone()),
        mode: event.mode,
    };
    for endpoint in sim.objects(own, "webhook_endpoints").unwrap_or_default() {
        let connect = is_connect(&endpoint);
        if (event.slot == 0 && connect == about_connected) || (event.slot != 0 && !connect) {
            endpoints.push(endpoint);
        }
    }
    if event.slot != 0 && about_connected {
        let platform = Scope {
            account: None,
            mode: event.mode,
        };
        endpoints.extend(
            sim.objects(platform, "webhook_endpoints")
                .unwrap_or_default()
                .into_iter()
                .filter(|e| is_connect(e)),
        );
    }
    for endpoint in endpoints {
        let enabled = endpoint["status"] == "enabled";
        let wanted = endpoint["enabled_events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|t| t == "*" || t.as_str() == Some(&kind)));
        let url = endpoint["url"].as_str().unwrap_or_default();
        let secret = endpoint["id"].as_str().and_then(|id| secrets.get(id));
        if let (true, true, true, Some(secret)) =
            (enabled, wanted, url.starts_with("http://"), secret)
        {
            found.push(Target {
                url: url.to_owned(),
                secret: secret.clone(),
            });
        }
    }
    found
}

/// POSTs one event to one target. The first attempt is made in line (deliveries keep their
/// order); retries, with doubling delays, run on their own so that an endpoint that is down
/// does not hold back the others. Gives up after `attempts`.
async fn deliver_one(
    sim: &Arc<Simulator>,
    target: Target,
    event: Bytes,
    attempts: u32,
    base: Duration,
) {
    if attempt(sim, &target, &event, 1).await || attempts <= 1 {
        return;
    }
    let sim = sim.clone();
    tokio::spawn(async move {
        let mut delay = base;
        for number in 2..=attempts {
            tokio::time::sleep(delay).await;
            if attempt(&sim, &target, &event, number).await {
                return;
            }
            delay *= 2;
        }
    });
}

/// One POST; true when the endpoint answered 2xx.
async fn attempt(sim: &Simulator, target: &Target, event: &Bytes, number: u32) -> bool {
    match post(&target.url, &target.secret, event).await {
        Ok(status) if (200..300).contains(&status) => {
            sim.stats.webhook(true);
            true
        }
        outcome => {
            sim.stats.webhook(false);
            tracing::warn!(attempt = number, ?outcome, url = %target.url, "webhook delivery failed");
            false
        }
    }
}

/// Delivers queued events to their targets. Without faults, in creation order, one at a time;
/// `webhook_reorder_window_ms` shuffles the events that arrive within each window, and
/// `webhook_duplicate_rate` delivers that share of them twice, as Stripe may.
pub(crate) async fn deliver(sim: Arc<Simulator>, mut queue: UnboundedReceiver<QueuedEvent>) {
    use rand::seq::SliceRandom;
    let (attempts, base) = sim
        .webhook
        .as_ref()
        .map_or((4, Duration::from_millis(200)), |c| {
            (c.max_attempts, Duration::from_millis(c.retry_base_ms))
        });
    while let Some(first) = queue.recv().await {
        let faults = sim.faults();
        let mut batch = vec![first];
        if faults.webhook_reorder_window_ms > 0 {
            let window =
                tokio::time::sleep(Duration::from_millis(faults.webhook_reorder_window_ms));
            tokio::pin!(window);
            loop {
                tokio::select! {
                    _ = &mut window => break,
                    next = queue.recv() => match next {
                        Some(event) => batch.push(event),
                        None => break,
                    },
                }
            }
            batch.shuffle(&mut rand::rng());
        }
        for event in batch {
            let twice = faults.webhook_duplicate_rate > 0.0
                && rand::random::<f64>() < faults.webhook_duplicate_rate;
            for target in targets(&sim, &event) {
                if twice {
                    deliver_one(&sim, target.clone(), event.json.clone(), attempts, base).await;
                }
                deliver_one(&sim, target, event.json.clone(), attempts, base).await;
            }
        }
    }
}

async fn post(url: &str, secret: &str, event: &Bytes) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("URL without host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let attempt = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        let request = Request::post(path)
            .header("host", format!("{host}:{port}"))
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header(
                "stripe-signature",
                signature_header(event, secret, real_unix_now()),
            )
            .body(Full::new(event.clone()))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        // Read the answer so the connection closes cleanly.
        let _ = response.into_body().collect().await;
        Ok(status)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // HMAC-SHA256("whsec_test", "1700000000.{}") computed independently with Python's hmac.
        let header = signature_header(b"{}", "whsec_test", 1_700_000_000);
        assert_eq!(
            header,
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
