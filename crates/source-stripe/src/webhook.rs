//! Push-mode input: a Stripe event as it is, or a raw webhook `{body, headers}` whose
//! `Stripe-Signature` is verified the way Stripe documents it: HMAC-SHA256 of
//! `"{t}.{body}"` with the endpoint's secret, against every `v1` signature, in constant time,
//! and a timestamp no older than the tolerance. [`ingress`] is the one way in for a webhook an
//! HTTP server received: the source's own endpoint and sync-service's both call it.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Why an input is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Neither an event nor a webhook.
    #[error("neither a Stripe event (object \"event\") nor a webhook {{body, headers}}")]
    Unrecognised,
    /// A webhook, but no secret to check it with.
    #[error("a raw webhook, but the config has no webhook_secret to verify it with")]
    NoSecret,
    /// The `Stripe-Signature` header is missing or unreadable.
    #[error("the Stripe-Signature header is missing or has no t= timestamp")]
    MalformedHeader,
    /// No `v1` signature matches.
    #[error("no v1 signature matches the body (wrong secret, or the body was altered)")]
    Mismatch,
    /// The timestamp is outside the tolerance.
    #[error("the signature is {age_secs}s old, more than the {tolerance_secs}s tolerated")]
    Stale {
        /// How old the timestamp is.
        age_secs: i64,
        /// The tolerance.
        tolerance_secs: u64,
    },
    /// The verified body is not a JSON event.
    #[error("the webhook body is not a JSON Stripe event")]
    NotAnEvent,
    /// The body is not UTF-8 text.
    #[error("the webhook body is not UTF-8")]
    NotUtf8,
}

impl InputError {
    /// The answer to a delivery refused for this: 400 for a body that is no event (its sender
    /// knew the secret, or sent no text), 401 for anything about the signature.
    pub fn status(&self) -> StatusCode {
        match self {
            InputError::NotAnEvent | InputError::NotUtf8 | InputError::Unrecognised => {
                StatusCode::BAD_REQUEST
            }
            InputError::NoSecret
            | InputError::MalformedHeader
            | InputError::Mismatch
            | InputError::Stale { .. } => StatusCode::UNAUTHORIZED,
        }
    }
}

/// A webhook that verified: the event as it was signed, and parsed, each made once.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The body, exactly as signed.
    pub text: String,
    /// The body as JSON: an object whose `object` is `"event"`.
    pub event: Value,
}

/// A webhook an HTTP server received (its body and headers), verified with one of `secrets`
/// (the endpoints' that share the URL: a platform's own and its Connect endpoint's) against
/// this machine's clock within `tolerance_secs`; else why not, with [`InputError::status`] for
/// the answer.
pub fn ingress(
    body: &[u8],
    headers: &HeaderMap,
    secrets: &[&str],
    tolerance_secs: u64,
) -> Result<Verified, InputError> {
    let text = std::str::from_utf8(body).map_err(|_| InputError::NotUtf8)?;
    if secrets.is_empty() {
        return Err(InputError::NoSecret);
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(InputError::MalformedHeader)?;
    let verifier = Verifier {
        secrets,
        tolerance_secs,
        now: unix_now(),
    };
    verifier.verify(text, header)?;
    Ok(Verified {
        event: parse_event(text)?,
        text: text.to_owned(),
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `text` as JSON, when it is a Stripe event.
fn parse_event(text: &str) -> Result<Value, InputError> {
    match serde_json::from_str::<Value>(text) {
        Ok(event) if event.get("object").and_then(Value::as_str) == Some("event") => Ok(event),
        _ => Err(InputError::NotAnEvent),
    }
}

/// How to check webhooks.
pub(crate) struct Verifier<'a> {
    /// The endpoints' signing secrets: a signature made with any of them verifies.
    pub secrets: &'a [&'a str],
    /// Largest accepted age of a signature, in seconds.
    pub tolerance_secs: u64,
    /// Unix seconds now.
    pub now: i64,
}

impl Verifier<'_> {
    /// The event's JSON text, from an input payload.
    pub(crate) fn event_text(&self, payload: &Value) -> Result<String, InputError> {
        if payload.get("object").and_then(Value::as_str) == Some("event") {
            return Ok(payload.to_string());
        }
        let (Some(body), Some(headers)) = (
            payload.get("body").and_then(Value::as_str),
            payload.get("headers").and_then(Value::as_object),
        ) else {
            return Err(InputError::Unrecognised);
        };
        if self.secrets.is_empty() {
            return Err(InputError::NoSecret);
        }
        let header = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
            .and_then(|(_, v)| v.as_str())
            .ok_or(InputError::MalformedHeader)?;
        self.verify(body, header)?;
        parse_event(body)?;
        Ok(body.to_owned())
    }

    fn verify(&self, body: &str, header: &str) -> Result<(), InputError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(InputError::MalformedHeader)?;
        let signed = |secret: &str, signature: &[u8]| {
            let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            mac.verify_slice(signature).is_ok()
        };
        let any_signed = self
            .secrets
            .iter()
            .any(|secret| signatures.iter().any(|s| signed(secret, s)));
        if !any_signed {
            return Err(InputError::Mismatch);
        }
        let age_secs = self.now - timestamp;
        if age_secs > i64::try_from(self.tolerance_secs).unwrap_or(i64::MAX) {
            return Err(InputError::Stale {
                age_secs,
                tolerance_secs: self.tolerance_secs,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "whsec_test";
    const BODY: &str = r#"{"id":"evt_1","object":"event","type":"customer.updated"}"#;

    fn signature(t: i64, body: &str, secret: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn webhook(header: String) -> Value {
        json!({"body": BODY, "headers": {"Stripe-Signature": header}})
    }

    fn verifier(now: i64) -> Verifier<'static> {
        Verifier {
            secrets: &[SECRET],
            tolerance_secs: 300,
            now,
        }
    }

    #[test]
    fn a_signed_webhook_gives_its_body() {
        let header = format!("t=1000,v1=00ff,v1={}", signature(1000, BODY, SECRET));
        assert_eq!(verifier(1010).event_text(&webhook(header)).unwrap(), BODY);
    }

    #[test]
    fn a_webhook_signed_with_any_of_the_endpoints_secrets_verifies() {
        let connect = format!("t=1000,v1={}", signature(1000, BODY, "whsec_connect"));
        let both = Verifier {
            secrets: &[SECRET, "whsec_connect"],
            tolerance_secs: 300,
            now: 1000,
        };
        assert_eq!(both.event_text(&webhook(connect.clone())).unwrap(), BODY);
        assert_eq!(
            verifier(1000).event_text(&webhook(connect)),
            Err(InputError::Mismatch)
        );
    }

    #[test]
    fn forged_stale_and_unsigned_webhooks_are_refused() {
        let wrong = format!("t=1000,v1={}", signature(1000, BODY, "whsec_other"));
        assert_eq!(
            verifier(1000).event_text(&webhook(wrong)),
            Err(InputError::Mismatch)
        );
        let old = format!("t=1000,v1={}", signature(1000, BODY, SECRET));
        assert!(matches!(
            verifier(1400).event_text(&webhook(old)),
            Err(InputError::Stale { age_secs: 400, .. })
        ));
        let no_time = format!("v1={}", signature(1000, BODY, SECRET));
        assert_eq!(
            verifier(1000).event_text(&webhook(no_time)),
            Err(InputError::MalformedHeader)
        );
        let tampered = json!({"body": BODY.replace("updated", "deleted"), "headers": {"stripe-signature": format!("t=1000,v1={}", signature(1000, BODY, SECRET))}});
        assert_eq!(
            verifier(1000).event_text(&tampered),
            Err(InputError::Mismatch)
        );
        let no_secret = Verifier {
            secrets: &[],
            tolerance_secs: 300,
            now: 1000,
        };
        assert_eq!(
            no_secret.event_text(&webhook("t=1".into())),
            Err(InputError::NoSecret)
        );
    }

    #[test]
    fn ingress_verifies_against_the_clock_and_parses_once() {
        let now = unix_now();
        let mut headers = HeaderMap::new();
        let fresh = format!("t={now},v1={}", signature(now, BODY, SECRET));
        headers.insert("Stripe-Signature", fresh.parse().unwrap());
        let verified = ingress(BODY.as_bytes(), &headers, &[SECRET], 300).unwrap();
        assert_eq!(verified.text, BODY);
        assert_eq!(verified.event["id"], "evt_1");
        let old = now - 400;
        let stale = format!("t={old},v1={}", signature(old, BODY, SECRET));
        headers.insert("Stripe-Signature", stale.parse().unwrap());
        let e = ingress(BODY.as_bytes(), &headers, &[SECRET], 300).unwrap_err();
        assert!(matches!(e, InputError::Stale { .. }), "{e}");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        // The pipeline's tolerance is the one applied.
        assert!(ingress(BODY.as_bytes(), &headers, &[SECRET], 600).is_ok());
        assert_eq!(
            ingress(&[0xff, 0xfe], &headers, &[SECRET], 300)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ingress(BODY.as_bytes(), &HeaderMap::new(), &[SECRET], 300).unwrap_err(),
            InputError::MalformedHeader
        );
        assert_eq!(
            ingress(BODY.as_bytes(), &headers, &[], 600).unwrap_err(),
            InputError::NoSecret
        );
        let not_event = r#"{"id":"cus_1"}"#;
        let signed = format!("t={now},v1={}", signature(now, not_event, SECRET));
        headers.insert("Stripe-Signature", signed.parse().unwrap());
        let e = ingress(not_event.as_bytes(), &headers, &[SECRET], 300).unwrap_err();
        assert_eq!(
            (e.clone(), e.status()),
            (InputError::NotAnEvent, StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn an_event_is_taken_as_it_is() {
        let event = json!({"id": "evt_1", "object": "event"});
        assert_eq!(verifier(0).event_text(&event).unwrap(), event.to_string());
        assert_eq!(
            verifier(0).event_text(&json!({"id": "cus_1"})),
            Err(InputError::Unrecognised)
        );
    }
}
