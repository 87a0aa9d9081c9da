//! What a pipeline's body may say, and what changing it does: streams the source does not offer
//! are refused before anything is stored, and a pipeline moved to another destination (or
//! another source) starts over there instead of resuming a checkpoint written for the old
//! place. The real `sync-service` worker and server, a Temporal dev server, the simulator and a
//! real Postgres.

mod common;

use std::time::Duration;

use common::{Service, call};
use serde_json::{Value, json};

fn message(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
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
