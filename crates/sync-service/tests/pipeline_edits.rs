//! What a pipeline's body may say, and what changing it does: streams the source does not offer
//! are refused before anything is stored, and a pipeline moved to another destination (or
//! another source) starts over there instead of resuming a checkpoint written for the old
//! place. The real `sync-service` worker and server, a Temporal dev server, the simulator and a
//! real Postgres.

mod common;

use std::time::Duration;

use common::{Service, call, call_json};
use serde_json::{Value, json};

fn message(answer: &Value) -> String {
    answer["error"].as_str().unwrap_or_default().to_owned()
}

fn stored_pipelines(service: &Service) -> i64 {
    service
        .db
        .client()
        .query_one("SELECT count(*) FROM sync_service.pipelines", &[])
        .unwrap()
        .get(0)
}

#[test]
fn an_unknown_stream_is_refused_naming_it_before_anything_is_stored() {
    let service = Service::start("1", 50);

    let mut body = service.pipeline_body("acct-s", "s");
    body["streams"] = json!(["customers", "custmers"]);
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 400, "{answer}");
    assert!(message(&answer).contains("custmers"), "{answer}");
    assert!(
        !message(&answer).contains("sk_test_service"),
        "the key in an error: {answer}"
    );
    assert_eq!(call("GET", &service.url("/pipelines/acct-s"), None).0, 404);
    assert_eq!(stored_pipelines(&service), 0, "nothing is stored");

    // A PATCH to a stream the source does not offer is refused too; the streams stay.
    body["streams"] = json!(["customers"]);
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-s"),
        Some(&json!({"streams": ["customers", "invoicez"]})),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(message(&answer).contains("invoicez"), "{answer}");
    assert_eq!(service.status("acct-s")["streams"], json!(["customers"]));
    service.wait_status("acct-s", "ready", Duration::from_secs(120));

    // ?skip_check=true skips every check, this one too: the step then fails naming the stream.
    let mut skipped = service.pipeline_body("acct-skip", "skip");
    skipped["streams"] = json!(["custmers"]);
    let (code, answer) = call(
        "POST",
        &service.url("/pipelines?skip_check=true"),
        Some(&skipped),
    );
    assert_eq!(code, 201, "{answer}");
    service.wait_status("acct-skip", "error", Duration::from_secs(60));
    let failed = service.status("acct-skip");
    assert_eq!(failed["failure_type"], "config_error", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("custmers"),
        "{failed}"
    );
}

/// Ids of the rows of `schema.customers` of one Stripe account, sorted.
fn customer_ids_of(db: &test_support::TestDb, schema: &str, account: &str) -> Vec<String> {
    db.client()
        .query(
            &format!(
                "SELECT id FROM {schema}.customers WHERE _account_id = $1 AND NOT _deleted ORDER BY id"
            ),
            &[&account],
        )
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

fn patch(service: &Service, id: &str, body: Value) -> Value {
    let (code, answer) = call(
        "PATCH",
        &service.url(&format!("/pipelines/{id}")),
        Some(&body),
    );
    assert_eq!(code, 200, "{answer}");
    answer
}

#[test]
fn a_pipeline_moved_to_another_place_starts_over_there_and_says_so() {
    let service = Service::start("1", 300);
    let body = service.pipeline_body("acct-m", "m1");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    service.wait_status("acct-m", "ready", Duration::from_secs(180));
    service.assert_exact("m1");

    // What changes neither what the source reads nor where the destination writes (a rotated
    // key of the same account, a rate) keeps the checkpoint.
    let kept = patch(
        &service,
        "acct-m",
        json!({"source": {"config": {"api_key": "sk_test_rotated", "rate_limit": 50}}}),
    );
    assert!(kept["checkpoint_reset"].is_null(), "{kept}");
    assert_ne!(service.status("acct-m")["checkpoint"]["state"], json!({}));

    // Another schema: the pipeline backfills it, and is not ready before it has.
    let moved = patch(
        &service,
        "acct-m",
        json!({"destination": {"config": {"schema": "m2"}}}),
    );
    service.wait_status("acct-m", "ready", Duration::from_secs(180));
    service.assert_exact("m2");
    let said = moved["checkpoint_reset"].as_str().unwrap_or_default();
    assert!(
        said.contains("destination") && said.contains("m2"),
        "the PATCH answer says why the checkpoint was reset: {moved}"
    );
    let shown = service.status("acct-m");
    let reason = shown["checkpoint"]["reset"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("m2"), "{shown}");
    assert!(shown["checkpoint"]["reset"]["at"].is_string(), "{shown}");
    assert!(!shown.to_string().contains("sk_test"), "{shown}");

    // Another database.
    let other = test_support::TestDb::new();
    let moved = patch(
        &service,
        "acct-m",
        json!({"destination": {"config": {"url": other.url()}}}),
    );
    assert!(moved["checkpoint_reset"].is_string(), "{moved}");
    service.wait_status("acct-m", "ready", Duration::from_secs(180));
    let platform = service.fake.platform_account().to_owned();
    assert_eq!(
        customer_ids_of(&other, "m2", &platform),
        service.object_ids("customers"),
        "the new database is backfilled"
    );

    // Another source (a connected account): its objects are backfilled into the same tables.
    let connected = service.fake.connected_accounts()[0].clone();
    let moved = patch(
        &service,
        "acct-m",
        json!({"source": {"config": {"account_id": connected}}}),
    );
    let said = moved["checkpoint_reset"].as_str().unwrap_or_default();
    assert!(said.contains("source"), "{moved}");
    service.wait_status("acct-m", "ready", Duration::from_secs(180));
    assert_eq!(
        customer_ids_of(&other, "m2", &connected),
        service.object_ids_in("customers", Some(&connected)),
        "the connected account is backfilled"
    );

    // A config changed behind the API's back (a hand edit, or a PATCH racing a step) is caught
    // when the next step claims the checkpoint: it was written for another place.
    service
        .db
        .client()
        .execute(
            "UPDATE sync_service.pipelines
             SET destination = jsonb_set(destination, '{config,schema}', '\"m3\"')
             WHERE id = 'acct-m'",
            &[],
        )
        .unwrap();
    assert_eq!(
        call_json("POST", &service.url("/pipelines/acct-m/sync"), None).0,
        202
    );
    service.wait(
        "the hand-edited schema to be backfilled",
        Duration::from_secs(180),
        || {
            customer_ids_of(&other, "m3", &connected)
                == service.object_ids_in("customers", Some(&connected))
        },
    );
    service.wait_status("acct-m", "ready", Duration::from_secs(60));
    let shown = service.status("acct-m");
    let reason = shown["checkpoint"]["reset"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("m3"), "{shown}");
    assert!(
        service.worker.log_text().contains("checkpoint"),
        "the worker logs the reset: {}",
        service.worker.log_text()
    );
}
