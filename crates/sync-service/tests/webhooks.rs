//! `POST /webhooks/{id}` end to end (a Temporal dev server, the real `sync-service` worker and
//! server, the simulator, a real Postgres): what the unauthenticated route reveals, and which
//! events it keeps for a pipeline.

mod common;

use common::{Service, WEBHOOK_SECRET, call, post_webhook, runtime, silent_change};
use serde_json::{Value, json};
use stripe_fake::Scope;

/// POSTs a body with no signature at all.
fn post_unsigned(base: &str, pipeline: &str, body: &str) -> (u16, Value) {
    runtime().block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{base}/webhooks/{pipeline}"))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

/// The event ids kept in the inbox, sorted.
fn inbox(service: &Service) -> Vec<String> {
    service
        .db
        .client()
        .query(
            "SELECT event_id FROM sync_service.webhook_inbox ORDER BY event_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn create(service: &Service, body: &Value) {
    let (code, created) = call("POST", &service.url("/pipelines"), Some(body));
    assert_eq!(code, 201, "{created}");
}

#[test]
fn signed_events_of_another_account_or_mode_are_refused_naming_them_and_never_kept() {
    let service = Service::start("1", 20);
    create(&service, &service.pipeline_body("own", "own"));
    let connected = service.fake.connected_accounts()[0].clone();
    let mut of_connected = service.pipeline_body("conn", "conn");
    of_connected["source"]["config"]["account_id"] = json!(connected);
    create(&service, &of_connected);
    let customer = service.object_ids("customers")[0].clone();
    let event = silent_change(&service.fake, &customer, "Signed", "evt_own_1");

    // A signed event of this pipeline's account and mode is kept.
    let (code, answer) = post_webhook(&service.base, "own", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");

    // Signed, but another account's or mode's: refused, naming the event and why, not kept.
    let theirs = service
        .fake
        .objects(Scope::test(Some(&connected)), "customers")
        .unwrap()[0]
        .clone();
    let of_theirs = json!({
        "id": "evt_of_connected", "object": "event", "type": "customer.updated",
        "account": connected, "created": service.fake.now(), "livemode": false,
        "data": {"object": theirs},
    });
    let (code, answer) = post_webhook(&service.base, "own", &of_theirs, WEBHOOK_SECRET);
    assert_eq!(code, 400, "{answer}");
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("event evt_of_connected is of account {connected}")),
        "{answer}"
    );
    let mut live = event.clone();
    live["id"] = json!("evt_live_mode");
    live["livemode"] = json!(true);
    let (code, answer) = post_webhook(&service.base, "own", &live, WEBHOOK_SECRET);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("event evt_live_mode is a live-mode event"),
        "{answer}"
    );
    // A connected account's pipeline: the platform's own event (no `account`) is not its own;
    // the connected account's is.
    let (code, answer) = post_webhook(&service.base, "conn", &event, WEBHOOK_SECRET);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("event evt_own_1 is the platform's own"),
        "{answer}"
    );
    let (code, answer) = post_webhook(&service.base, "conn", &of_theirs, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(inbox(&service), ["evt_of_connected", "evt_own_1"]);
    let log = service.serve.log_text();
    assert!(log.contains("webhooks_refused=3"), "{log}");
    assert!(log.contains("evt_live_mode"), "{log}");
}

#[test]
fn unknown_pipelines_missing_secrets_and_bad_signatures_get_one_answer_and_the_reason_is_logged() {
    let service = Service::start("1", 20);
    create(&service, &service.pipeline_body("own", "own"));
    let mut unsigned = service.pipeline_body("nosecret", "nosecret");
    unsigned["source"]["config"]
        .as_object_mut()
        .unwrap()
        .remove("webhook_secret");
    create(&service, &unsigned);
    let customer = service.object_ids("customers")[0].clone();
    let event = silent_change(&service.fake, &customer, "Signed", "evt_probe");

    let mut tolerant = service.pipeline_body("tolerant", "tolerant");
    tolerant["source"]["config"]["webhook_tolerance_secs"] = json!(7200);
    create(&service, &tolerant);

    // Whoever probes learns nothing: the same status and body whether the pipeline does not
    // exist, has no secret, or the signature is wrong, stale or missing.
    let signed_an_hour_ago = |pipeline: &str| -> (u16, Value) {
        let body = event.to_string();
        let header = stripe_fake::signature_header(
            body.as_bytes(),
            WEBHOOK_SECRET,
            stripe_fake::real_unix_now() - 3600,
        );
        runtime().block_on(async {
            let response = reqwest::Client::new()
                .post(service.url(&format!("/webhooks/{pipeline}")))
                .header("stripe-signature", header)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap())
        })
    };
    let stale = signed_an_hour_ago("own");
    let answers = [
        post_webhook(&service.base, "nope", &event, WEBHOOK_SECRET),
        post_webhook(&service.base, "nosecret", &event, WEBHOOK_SECRET),
        post_webhook(&service.base, "own", &event, "whsec_wrong"),
        post_unsigned(&service.base, "own", &event.to_string()),
        post_unsigned(&service.base, "nope", &event.to_string()),
        stale,
    ];
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0], "answers differ: {answers:?}");
    }
    assert_eq!(answers[0].0, 401, "{answers:?}");
    // The real reasons are logged and counted, without the secret.
    let log = service.serve.log_text();
    for reason in [
        "no pipeline \"nope\"",
        "pipeline \"nosecret\" has no source.config.webhook_secret",
        "no v1 signature matches",
        "the Stripe-Signature header is missing",
        "more than the 300s tolerated",
    ] {
        assert!(log.contains(reason), "{reason:?} not logged:\n{log}");
    }
    assert!(log.contains("webhooks_refused=6"), "{log}");
    assert!(!log.contains(WEBHOOK_SECRET), "{log}");

    // What Stripe needs still holds: a signed event for an existing pipeline is kept.
    let (code, answer) = post_webhook(&service.base, "own", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(inbox(&service), ["evt_probe"]);

    // A pipeline whose source tolerates older signatures (webhook_tolerance_secs) takes what
    // the default refuses.
    let (code, answer) = signed_an_hour_ago("tolerant");
    assert_eq!(code, 200, "{answer}");
}
