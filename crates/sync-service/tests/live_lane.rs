//! The live lane through a remote engine (`worker --engine-url` and a real `sync-engine serve`):
//! webhook events are sent in batches that fit what the engine accepts, however many bytes wait,
//! and a lane that cannot apply them shows in the pipeline's status instead of `ready`, and
//! mends itself once it can.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Service, WEBHOOK_SECRET, call, post_webhook, silent_change};
use serde_json::{Value, json};
use test_support::bin_path;
use test_support::engine_serve::EngineServe;
use test_support::process::free_port;

/// A `sync-engine serve` on a fixed port, so that it can be stopped and started again there.
fn engine_at(port: u16) -> EngineServe {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .env_remove("SYNC_ENGINE_API_TOKEN")
        .env_remove("PORT");
    EngineServe::spawn(cmd)
}

/// Bytes of padding per event: under the 2 MB a webhook may carry, so many of them make a
/// batch far larger than one request body may be.
const PAD: usize = 1_500_000;

/// A customer's change as a webhook event carrying `PAD` bytes (its previous description).
fn padded_change(service: &Service, customer: &str, name: &str, event_id: &str) -> Value {
    let mut event = silent_change(&service.fake, customer, name, event_id);
    event["data"]["previous_attributes"] = json!({"description": "x".repeat(PAD)});
    event
}

fn pending(service: &Service) -> i64 {
    service
        .db
        .client()
        .query_one(
            "SELECT count(*) FROM sync_service.webhook_inbox WHERE applied_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn webhook_batches_fit_a_remote_engine_and_a_failing_live_lane_shows_in_the_status() {
    let port = free_port();
    let engine = engine_at(port);
    let engine_url = engine.url.clone();
    let service = Service::start_with("1", 100, &["--engine-url", &engine_url], &[]);
    let body = service.pipeline_body("acct-l", "live");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    service.wait_status("acct-l", "ready", Duration::from_secs(180));
    service.assert_exact("live");

    // Paused, the events pile up in the inbox: far more bytes than one request body may be.
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-l"),
        Some(&json!({"status": "paused"})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-l", "paused", Duration::from_secs(30));
    let events = 13;
    assert!(
        events * PAD > sync_engine_api::MAX_BODY_BYTES,
        "the events must not fit one request body"
    );
    let customers = service.object_ids("customers");
    for (i, customer) in customers.iter().take(events).enumerate() {
        let event = padded_change(
            &service,
            customer,
            &format!("big {i}"),
            &format!("evt_big_{i}"),
        );
        let (code, answer) = post_webhook(&service.base, "acct-l", &event, WEBHOOK_SECRET);
        assert_eq!(code, 200, "{answer}");
    }
    assert_eq!(pending(&service), events as i64);

    // Resumed: every event lands, batch after batch.
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-l"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait(
        "every padded webhook's change to land",
        Duration::from_secs(180),
        || {
            pending(&service) == 0
                && customers.iter().take(events).enumerate().all(|(i, c)| {
                    service.name_of("live", c).as_deref() == Some(format!("big {i}").as_str())
                })
        },
    );
    // (A batch the engine refused as too large would never have landed: it is refused on
    // every try.)
    service.wait_status("acct-l", "ready", Duration::from_secs(60));

    // The engine is gone: the lane cannot apply an event, and the status says so.
    drop(engine);
    let event = silent_change(&service.fake, &customers[20], "While Down", "evt_down");
    let (code, answer) = post_webhook(&service.base, "acct-l", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-l", "error", Duration::from_secs(60));
    let failed = service.status("acct-l");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("webhook"),
        "the error names the live lane: {failed}"
    );
    assert!(!failed.to_string().contains("sk_test_service"), "{failed}");

    // Back: the next webhook's ring applies both, and the status is ready again.
    let _engine = engine_at(port);
    let event = silent_change(&service.fake, &customers[21], "After", "evt_after");
    let (code, answer) = post_webhook(&service.base, "acct-l", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    service.wait(
        "both changes to land once the engine is back",
        Duration::from_secs(90),
        || {
            service.name_of("live", &customers[20]).as_deref() == Some("While Down")
                && service.name_of("live", &customers[21]).as_deref() == Some("After")
        },
    );
    service.wait_status("acct-l", "ready", Duration::from_secs(30));
    assert!(service.status("acct-l")["error"].is_null());

    // The table dropped behind the service's back: a batch run with the kept catalog (no setup)
    // fails, and its retry runs whole, which sets the table up again.
    service
        .db
        .client()
        .batch_execute("DROP TABLE live.customers")
        .unwrap();
    let event = silent_change(&service.fake, &customers[22], "Again", "evt_again");
    let (code, answer) = post_webhook(&service.base, "acct-l", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    service.wait(
        "the change to land in the table set up again",
        Duration::from_secs(90),
        || service.name_of("live", &customers[22]).as_deref() == Some("Again"),
    );
}
