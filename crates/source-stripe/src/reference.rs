//! The reference implementation's config keys, taken with the meaning they have there and
//! mapped onto this source's own: `poll_events` (reading `/v1/events` after the backfill),
//! `webhook_port` (a webhook listener after the backfill: live), `account_created` (the
//! backfill's lower bound), `livemode` (checked against the key), `revalidate_objects` (objects
//! read again instead of taken from events). `websocket` cannot mean anything here and is
//! refused, naming what to use. Two keys saying different things about one setting are an
//! error naming both, never a silent choice.

use serde_json::{Map, Value};
use sync_protocol::time::rfc3339_to_unix;

use crate::config::{Config, Given, default_poll_interval_secs};
use stripe_catalog::KeyMode;

impl TryFrom<Map<String, Value>> for Config {
    type Error = String;

    fn try_from(given: Map<String, Value>) -> Result<Config, String> {
        let raw: Given =
            serde_json::from_value(Value::Object(given.clone())).map_err(|e| e.to_string())?;
        settle(raw, given)
    }
}

/// The config a [`Given`] means, or why it cannot be run, naming the keys.
pub(crate) fn settle(raw: Given, given: Map<String, Value>) -> Result<Config, String> {
    if raw.websocket == Some(true) {
        return Err(
            "websocket: the Stripe CLI's websocket is not supported; receive webhooks \
             with webhook_port (or webhook_listen) and webhook_secret instead (for development, \
             `stripe listen --forward-to localhost:PORT/webhooks` forwards test events and \
             prints the secret), or poll /v1/events with live: true"
                .to_owned(),
        );
    }
    check_livemode(&raw)?;
    let revalidate_objects = revalidated_streams(raw.revalidate_objects.as_deref())?;
    let account_created = lower_bound(&raw)?;
    let (live, webhook_listen, webhook_any_path) = listener(&raw)?;
    let (events, poll_interval_secs) = polling(&raw, live)?;
    let connected_accounts = crate::connected_accounts::settle(raw.connected_accounts.clone())?;
    Ok(Config {
        api_key: raw.api_key,
        api_version: raw.api_version,
        account_id: raw.account_id,
        base_url: raw.base_url,
        rate_limit: raw.rate_limit,
        endpoint_rate_limit: raw.endpoint_rate_limit,
        max_concurrency: raw.max_concurrency,
        backfill_limit: raw.backfill_limit,
        start_date: raw.start_date,
        account_created,
        request_timeout_secs: raw.request_timeout_secs,
        max_retries: raw.max_retries,
        events,
        webhook_secret: raw.webhook_secret,
        connect_webhook_secret: raw.connect_webhook_secret,
        webhook_tolerance_secs: raw.webhook_tolerance_secs,
        live,
        poll_interval_secs,
        webhook_listen,
        webhook_any_path,
        checkpoint_interval_secs: raw.checkpoint_interval_secs,
        accounts_relist_secs: raw.accounts_relist_secs,
        webhook_url: raw.webhook_url,
        shared_rate_limit: raw.shared_rate_limit,
        revalidate_objects,
        connected_accounts,
        given,
    })
}

fn mode(live: bool) -> &'static str {
    if live { "live" } else { "test" }
}

/// `livemode` is declared and unused in the reference; here it must agree with the key.
fn check_livemode(raw: &Given) -> Result<(), String> {
    let key_is_live = KeyMode::of(&raw.api_key) == KeyMode::Live;
    match raw.livemode {
        Some(livemode) if livemode != key_is_live => Err(format!(
            "livemode is {livemode} but api_key is a {}-mode key: they must agree (leave livemode out to follow the key)",
            mode(key_is_live)
        )),
        _ => Ok(()),
    }
}

/// `account_created` bounds the backfill as `start_date` does; both given must agree.
fn lower_bound(raw: &Given) -> Result<Option<i64>, String> {
    let (Some(created), Some(start)) = (raw.account_created, &raw.start_date) else {
        return Ok(raw.account_created);
    };
    match rfc3339_to_unix(start) {
        Some(t) if t == created => Ok(Some(created)),
        _ => Err(format!(
            "account_created ({created}) and start_date ({start}) both set where the backfill starts, differently: give one"
        )),
    }
}

/// `webhook_port`: the reference's listener after the backfill, on every interface, taking
/// `POST` on any path; here the live webhook endpoint. Returns (live, webhook_listen,
/// any path).
fn listener(raw: &Given) -> Result<(bool, Option<String>, bool), String> {
    let Some(port) = raw.webhook_port else {
        return Ok((raw.live.unwrap_or(false), raw.webhook_listen.clone(), false));
    };
    if port == 0 {
        return Err("webhook_port: 0 is not a port to listen on".to_owned());
    }
    if let Some(listen) = &raw.webhook_listen {
        return Err(format!(
            "webhook_port ({port}) and webhook_listen ({listen}) both say where webhooks are received: give one"
        ));
    }
    if raw.live == Some(false) {
        return Err(format!(
            "webhook_port ({port}) keeps the source receiving webhooks after the backfill, but live is false: leave live out, or webhook_port"
        ));
    }
    if raw.events == Some(false) {
        return Err(format!(
            "webhook_port ({port}) runs live, which needs the events path, but events is false: leave events out"
        ));
    }
    Ok((true, Some(format!("0.0.0.0:{port}")), true))
}

/// `poll_events`: reading `/v1/events` after the backfill (`events`); live, polling it while
/// running (`poll_interval_secs`, 0 when false: webhooks only, after the catch-up every live
/// run makes). Returns (events, poll_interval_secs).
fn polling(raw: &Given, live: bool) -> Result<(bool, f64), String> {
    let interval = raw
        .poll_interval_secs
        .unwrap_or_else(default_poll_interval_secs);
    let Some(poll) = raw.poll_events else {
        return Ok((raw.events.unwrap_or(true), interval));
    };
    if let Some(events) = raw.events
        && events != poll
    {
        return Err(format!(
            "poll_events ({poll}) and events ({events}) disagree on reading /v1/events after the backfill: give one"
        ));
    }
    if !live {
        return Ok((poll, interval));
    }
    match raw.poll_interval_secs {
        Some(secs) if (secs > 0.0) != poll => Err(format!(
            "poll_events ({poll}) and poll_interval_secs ({secs}) disagree on polling /v1/events while live: give one"
        )),
        // Live polling off: the catch-up at the start still reads the events since the cursor.
        _ if !poll => Ok((true, 0.0)),
        _ => Ok((true, interval)),
    }
}

/// The streams `revalidate_objects` names: stream names (`subscriptions`) or the reference's
/// object types (`subscription`, `checkout.session`, `checkout_session`).
fn revalidated_streams(names: Option<&[String]>) -> Result<Vec<String>, String> {
    let catalog = stripe_catalog::catalog();
    let mut streams = Vec::new();
    for name in names.unwrap_or_default() {
        let resource = catalog
            .resource(name)
            .or_else(|| catalog.by_object(name))
            .or_else(|| catalog.by_object(&name.replacen('_', ".", 1)))
            .ok_or_else(|| {
                format!(
                    "revalidate_objects: {name:?} is neither a stream nor a Stripe object type this source reads"
                )
            })?;
        if let Some(parent) = &resource.parent {
            return Err(format!(
                "revalidate_objects: {name:?} is read through its parent, {}: name the parent",
                parent.stream
            ));
        }
        if resource.retrieve_path.is_none() {
            return Err(format!(
                "revalidate_objects: {name:?} has no endpoint to read one object again"
            ));
        }
        if !streams.contains(&resource.stream) {
            streams.push(resource.stream.clone());
        }
    }
    Ok(streams)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::Config;

    fn config(v: serde_json::Value) -> Result<Config, String> {
        serde_json::from_value::<Config>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn reference_keys_map_onto_ours() {
        let c = config(json!({"api_key": "sk_test_1", "webhook_port": 4242, "poll_events": false}))
            .unwrap();
        assert!(c.live && c.events && c.webhook_any_path);
        assert_eq!(c.webhook_listen.as_deref(), Some("0.0.0.0:4242"));
        assert_eq!(c.poll_interval_secs, 0.0);
        let c = config(json!({"api_key": "sk_test_1", "poll_events": false})).unwrap();
        assert!(!c.events && !c.live);
        let c = config(json!({"api_key": "sk_test_1", "revalidate_objects": ["subscription", "checkout.session", "customers"]})).unwrap();
        assert_eq!(
            c.revalidate_objects,
            ["subscriptions", "checkout_sessions", "customers"]
        );
    }

    #[test]
    fn disagreements_and_the_websocket_are_refused_naming_the_keys() {
        for (v, words) in [
            (
                json!({"api_key": "sk_test_1", "websocket": true}),
                &["websocket", "webhook_port"][..],
            ),
            (
                json!({"api_key": "sk_test_1", "livemode": true}),
                &["livemode is true", "test-mode key"],
            ),
            (
                json!({"api_key": "sk_test_1", "poll_events": true, "events": false}),
                &["poll_events", "events"],
            ),
            (
                json!({"api_key": "sk_test_1", "webhook_port": 1, "webhook_listen": "a:1"}),
                &["webhook_port", "webhook_listen"],
            ),
            (
                json!({"api_key": "sk_test_1", "account_created": 5, "start_date": "2020-01-01T00:00:00Z"}),
                &["account_created", "start_date"],
            ),
            (
                json!({"api_key": "sk_test_1", "revalidate_objects": ["subscription_items"]}),
                &["subscription_items", "subscriptions"],
            ),
            (
                json!({"api_key": "sk_test_1", "revalidate_objects": ["nope"]}),
                &["\"nope\""],
            ),
        ] {
            let e = config(v.clone()).unwrap_err();
            for w in words {
                assert!(e.contains(w), "{v}: {e}");
            }
            assert!(!e.contains("sk_test_1"), "{e}");
        }
        assert!(config(json!({"api_key": "sk_test_1", "websocket": false})).is_ok());
        assert!(config(json!({"api_key": "sk_live_1", "livemode": true})).is_ok());
    }
}
