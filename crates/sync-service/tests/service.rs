//! sync-service end to end: a real Temporal dev server, the real `sync-service` worker and
//! REST server as child processes, the Stripe simulator and a real Postgres.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Service, WEBHOOK_SECRET, call, call_json, post_webhook, silent_change};
use serde_json::{Value, json};
use stripe_fake::{Faults, Scope};
use test_support::bin_path;

#[test]
fn create_backfills_to_ready_then_pause_resume_sync_and_delete() {
    let service = Service::start("1", 400);

    // The document is valid and every route it lists is served.
    let (code, document) = call("GET", &service.url("/openapi.json"), None);
    assert_eq!(code, 200);
    test_support::openapi::assert_valid(&document);
    let paths = document["paths"].as_object().unwrap();
    let mut listed = 0;
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            listed += 1;
            let url = service.url(&path.replace("{id}", "nope"));
            let (code, answer) = call(&method.to_uppercase(), &url, Some(&json!({})));
            assert!(
                ![405].contains(&code),
                "{method} {path} answered {code}: {answer}"
            );
            if !path.contains("{id}") {
                assert_ne!(code, 404, "{method} {path}");
            }
        }
    }
    assert_eq!(listed, sync_service::openapi::ROUTES.len());
    // docs/service.md lists exactly these routes.
    test_support::openapi::assert_documented(&document, "service.md");

    // Bad requests name the field and create nothing.
    let mut bad = service.pipeline_body("Bad Id", "x");
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&bad));
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("id:"),
        "{answer}"
    );
    bad = service.pipeline_body("acct-x", "x");
    bad["source"]["config"]["api_key"] = json!("sk_test_unknown123");
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&bad));
    assert_eq!(code, 400, "check must refuse an unknown key: {answer}");
    assert!(
        !answer.to_string().contains("sk_test_unknown123"),
        "{answer}"
    );
    assert_eq!(call("GET", &service.url("/pipelines/acct-x"), None).0, 404);

    // Create: the answer redacts the key; the pipeline backfills to ready, rows exact.
    let body = service.pipeline_body("acct-1", "acct1");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["source"]["config"]["api_key"], "***");
    assert!(!created.to_string().contains("sk_test_service"));
    let (code, _) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 409, "the same id twice");
    // The same through the CLI client.
    let client = |args: &[&str]| {
        Command::new(bin_path("sync-service"))
            .args(["pipelines", "--service-url", &service.base])
            .args(args)
            .env_remove("SERVICE_URL")
            .output()
            .unwrap()
    };
    let listed = client(&["list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["data"][0]["id"], "acct-1");
    assert_eq!(listed["data"][0]["source"]["config"]["api_key"], "***");
    let missing = client(&["get", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    service.wait_status("acct-1", "ready", Duration::from_secs(240));
    service.assert_exact("acct1");
    // The client builds a body from flags over a JSON one; sync-batch waits for a step and
    // prints its run.
    let base_url = json!({"source": {"config": {"base_url": service.fake.base_url()}}});
    let made = client(&[
        "create",
        &base_url.to_string(),
        "--id",
        "acct-cli",
        "--stripe-api-key",
        "sk_test_service",
        "--postgres-url",
        service.db.url(),
        "--schema",
        "cli",
        "--streams",
        "products",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let batch = client(&["sync-batch", "acct-cli"]);
    assert!(
        batch.status.success(),
        "{}",
        String::from_utf8_lossy(&batch.stderr)
    );
    let run: Value = serde_json::from_slice(&batch.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        service.row_ids("cli", "products"),
        service.object_ids("products")
    );
    assert!(client(&["delete", "acct-cli"]).status.success());
    let (_, runs) = call("GET", &service.url("/pipelines/acct-1/runs"), None);
    let runs = runs["data"].as_array().unwrap().clone();
    assert!(
        runs.iter().any(|r| r["status"] == "succeeded"),
        "runs: {runs:?}"
    );

    // A change, then a sync request: the new customer arrives through the events path.
    let scope = Scope::test(None);
    let new = service
        .fake
        .create(
            scope.clone(),
            "customers",
            json!({"email": "late@example.com"}),
        )
        .unwrap();
    let new_id = new["id"].as_str().unwrap().to_owned();
    let (code, _) = call_json("POST", &service.url("/pipelines/acct-1/sync"), None);
    assert_eq!(code, 202);
    service.wait(
        "the new customer to arrive",
        Duration::from_secs(60),
        || service.row_ids("acct1", "customers").contains(&new_id),
    );

    // A webhook: verified, kept once, applied. The change emits no event of its own, so only
    // the webhook can bring it.
    let event = silent_change(
        &service.fake,
        &new_id,
        "Via Webhook",
        "evt_service_webhook_1",
    );
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, "whsec_wrong");
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, WEBHOOK_SECRET);
    assert_eq!(
        (code, &answer["duplicate"]),
        (200, &json!(false)),
        "{answer}"
    );
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, WEBHOOK_SECRET);
    assert_eq!(
        (code, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
    service.wait(
        "the webhook's change to arrive",
        Duration::from_secs(60),
        || service.name_of("acct1", &new_id).as_deref() == Some("Via Webhook"),
    );
    let applied: i64 = service
        .db
        .client()
        .query_one(
            "SELECT count(*) FROM sync_service.webhook_inbox WHERE applied_at IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(applied, 1, "the event is kept once and applied");
    // Applied events are forgotten after a week, when the next batch is applied.
    service
        .db
        .client()
        .execute(
            "UPDATE sync_service.webhook_inbox SET applied_at = now() - interval '8 days'",
            &[],
        )
        .unwrap();
    let event = silent_change(
        &service.fake,
        &new_id,
        "Week Later",
        "evt_service_webhook_2",
    );
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    service.wait(
        "the old event to be forgotten",
        Duration::from_secs(60),
        || {
            let ids: Vec<String> = service
                .db
                .client()
                .query("SELECT event_id FROM sync_service.webhook_inbox", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            ids == ["evt_service_webhook_2"]
                && service.name_of("acct1", &new_id).as_deref() == Some("Week Later")
        },
    );

    // Pause and resume take effect within 30 s.
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-1"),
        Some(&json!({"status": "paused"})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-1", "paused", Duration::from_secs(30));

    // What a GET shows can be sent back: the secrets it hides stay as stored.
    let stored = |side: &str| -> Value {
        service
            .db
            .client()
            .query_one(
                &format!("SELECT {side}::text FROM sync_service.pipelines WHERE id = 'acct-1'"),
                &[],
            )
            .unwrap()
            .get::<_, String>(0)
            .parse()
            .unwrap()
    };
    let before = (stored("source"), stored("destination"));
    let (code, shown) = call("GET", &service.url("/pipelines/acct-1"), None);
    assert_eq!(code, 200, "{shown}");
    assert!(shown.to_string().contains("***"), "{shown}");
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-1"),
        Some(&json!({"source": shown["source"], "destination": shown["destination"]})),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!((stored("source"), stored("destination")), before);
    // A mask where no such secret is stored would overwrite one with "***": refused.
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-1"),
        Some(&json!({"destination": {"config": {"password": "***"}}})),
    );
    assert_eq!(
        (
            code,
            answer.to_string().contains("destination.config.password")
        ),
        (400, true),
        "{answer}"
    );
    // A query parameter the route does not take never widens what it does.
    let (code, answer) = call(
        "POST",
        &service.url("/pipelines/acct-1/teardown?side=source"),
        None,
    );
    assert_eq!(
        (code, answer.to_string().contains("side")),
        (400, true),
        "{answer}"
    );
    assert_eq!((stored("source"), stored("destination")), before);

    let (code, _) = call(
        "PATCH",
        &service.url("/pipelines/acct-1"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(code, 200);
    service.wait_status("acct-1", "ready", Duration::from_secs(60));
    service.assert_exact("acct1");

    // Delete: gone from the API at once, then torn down and forgotten.
    let (code, answer) = call("DELETE", &service.url("/pipelines/acct-1"), None);
    assert_eq!(
        (code, answer),
        (200, json!({"id": "acct-1", "deleted": true}))
    );
    assert_eq!(call("GET", &service.url("/pipelines/acct-1"), None).0, 404);
    service.wait_forgotten("acct-1", Duration::from_secs(30));
    if std::env::var_os("RECORD_HISTORIES").is_some() {
        service.record_history("acct-1");
        service.record_history("acct-1.sync-0");
    }
}

#[test]
fn kill_9_of_the_worker_mid_backfill_then_a_new_worker_ends_exact_and_a_revoked_key_recovers_by_patch()
 {
    let mut service = Service::start("1", 4000);
    // Slow answers, so the backfill spans many one-second steps.
    service
        .fake
        .set_faults(Faults {
            latency: Some(stripe_fake::Latency {
                min_ms: 250,
                max_ms: 250,
            }),
            ..Faults::default()
        })
        .unwrap();
    let body = service.pipeline_body("acct-2", "acct2");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    // Kill the worker once a few steps have saved checkpoints, in the middle of the backfill.
    service.wait("three saved steps", Duration::from_secs(120), || {
        let (_, runs) = call("GET", &service.url("/pipelines/acct-2/runs"), None);
        runs["data"].as_array().map_or(0, |r| {
            r.iter().filter(|r| r["states"].as_i64() > Some(0)).count()
        }) >= 3
    });
    assert_eq!(service.status("acct-2")["status"], "backfilling");
    // Webhooks during the backfill: kept, applied, and their changes (made without events of
    // their own) in the rows at the end.
    let changed_ids: Vec<String> = service
        .object_ids("customers")
        .into_iter()
        .take(3)
        .collect();
    for (i, id) in changed_ids.iter().enumerate() {
        let name = format!("hooked {i}");
        let event = silent_change(
            &service.fake,
            id,
            &name,
            &format!("evt_during_backfill_{i}"),
        );
        let (code, answer) = post_webhook(&service.base, "acct-2", &event, WEBHOOK_SECRET);
        assert_eq!(code, 200, "{answer}");
    }
    let pid = service.worker.child.id();
    // SIGKILL: no chance to stop cleanly.
    test_support::process::signal(pid, 9);
    let _ = service.worker.child.wait();
    service.worker = Service::worker(&service.temporal, &service.db, &service.task_queue, "1");
    service.wait_status("acct-2", "ready", Duration::from_secs(240));
    service.assert_exact("acct2");
    // The live lane is apart from the backfill: a batch the killed worker held is taken again
    // once its heartbeat times out (10 s), whether the backfill is done or not.
    let pending = || -> i64 {
        service
            .db
            .client()
            .query_one(
                "SELECT count(*) FROM sync_service.webhook_inbox WHERE applied_at IS NULL",
                &[],
            )
            .unwrap()
            .get(0)
    };
    service.wait(
        "every webhook event of the backfill to be applied",
        Duration::from_secs(60),
        || pending() == 0,
    );
    for (i, id) in changed_ids.iter().enumerate() {
        let name = service.name_of("acct2", id);
        assert_eq!(
            name.as_deref(),
            Some(format!("hooked {i}").as_str()),
            "{id}"
        );
    }

    // The key is revoked: the next step fails as a config error; a PATCH with a new key recovers.
    service
        .fake
        .set_faults(Faults {
            revoked_keys: vec!["sk_test_service".to_owned()],
            ..Faults::default()
        })
        .unwrap();
    service
        .fake
        .create(
            Scope::test(None),
            "customers",
            json!({"email": "after@example.com"}),
        )
        .unwrap();
    assert_eq!(
        call_json("POST", &service.url("/pipelines/acct-2/sync"), None).0,
        202
    );
    service.wait_status("acct-2", "error", Duration::from_secs(60));
    let failed = service.status("acct-2");
    assert_eq!(failed["failure_type"], "config_error", "{failed}");
    assert!(!failed.to_string().contains("sk_test_service"), "{failed}");
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-2"),
        Some(&json!({"source": {"config": {"api_key": "sk_test_rotated"}}})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-2", "ready", Duration::from_secs(60));
    service.assert_exact("acct2");
}

#[test]
fn temporal_down_at_webhook_time_answers_503_and_loses_nothing_once_it_returns() {
    let mut service = Service::start("1", 100);
    let body = service.pipeline_body("acct-3", "acct3");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    service.wait_status("acct-3", "ready", Duration::from_secs(120));

    let id = service.object_ids("customers")[0].clone();
    let event = silent_change(
        &service.fake,
        &id,
        "While Temporal Was Down",
        "evt_service_down_1",
    );
    service.temporal.kill();
    let (code, answer) = post_webhook(&service.base, "acct-3", &event, WEBHOOK_SECRET);
    assert_eq!(code, 503, "{answer}");
    let kept: i64 = service
        .db
        .client()
        .query_one("SELECT count(*) FROM sync_service.webhook_inbox", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "the event is durable before the 503");

    service.temporal.restart();
    // Stripe delivers again until it gets a 200.
    service.wait(
        "a 200 once Temporal is back",
        Duration::from_secs(90),
        || post_webhook(&service.base, "acct-3", &event, WEBHOOK_SECRET).0 == 200,
    );
    service.wait("the change to arrive", Duration::from_secs(90), || {
        service.name_of("acct3", &id).as_deref() == Some("While Temporal Was Down")
    });
    service.assert_exact("acct3");
}

#[test]
fn a_provisioned_endpoint_feeds_the_live_lane_during_a_long_backfill_step_and_delete_removes_it() {
    // One step for the whole backfill (no time limit to cut it), slowed by a low rate limit.
    let service = Service::start("600", 4000);
    let hook_url = service.url("/webhooks/acct-4");
    let mut body = service.pipeline_body("acct-4", "acct4");
    let config = body["source"]["config"].as_object_mut().unwrap();
    config.remove("webhook_secret");
    config.insert("webhook_url".into(), json!(hook_url));
    config.insert("rate_limit".into(), json!(2));
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");

    // The step's setup made the endpoint; its secret is kept with the pipeline (shown redacted).
    service.wait(
        "the endpoint's secret to be stored",
        Duration::from_secs(60),
        || service.status("acct-4")["source"]["config"]["webhook_secret"] == "***",
    );
    let endpoints = || {
        service
            .fake
            .objects(Scope::test(None), "webhook_endpoints")
            .unwrap()
            .into_iter()
            .filter(|e| e["url"] == hook_url.as_str())
            .count()
    };
    assert_eq!(endpoints(), 1);

    // A change while that one step runs: the simulator delivers its event to the service, and
    // the live lane applies it before the backfill ends.
    let id = service.object_ids("customers")[7].clone();
    let changed_at = std::time::Instant::now();
    service
        .fake
        .update(
            Scope::test(None),
            "customers",
            &id,
            json!({"name": "Live Lane"}),
        )
        .unwrap();
    service.wait(
        "the webhook's change to land",
        Duration::from_secs(60),
        || service.name_of("acct4", &id).as_deref() == Some("Live Lane"),
    );
    let latency = changed_at.elapsed();
    let status = service.status("acct-4");
    assert_eq!(
        status["status"], "backfilling",
        "the change landed after {latency:?}, during the backfill: {status}"
    );
    let (_, runs) = call("GET", &service.url("/pipelines/acct-4/runs"), None);
    assert!(
        runs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ended_at"].is_null()),
        "the backfill step still runs: {runs}"
    );
    eprintln!("webhook -> row during a backfill step: {latency:?}");
    service.wait_status("acct-4", "ready", Duration::from_secs(300));
    service.assert_exact("acct4");
    assert_eq!(service.name_of("acct4", &id).as_deref(), Some("Live Lane"));

    // check, setup (the endpoint is kept, not made twice), a step waited for.
    let (code, verdict) = call_json("POST", &service.url("/pipelines/acct-4/check"), None);
    assert_eq!((code, &verdict["ok"]), (200, &json!(true)), "{verdict}");
    let (code, verdict) = call(
        "POST",
        &service.url("/pipelines/acct-4/check?only=sideways"),
        None,
    );
    assert_eq!(code, 400, "{verdict}");
    assert!(verdict.to_string().contains("only"), "{verdict}");
    let (code, verdict) = call_json("POST", &service.url("/pipelines/acct-4/setup"), None);
    assert_eq!((code, &verdict["ok"]), (200, &json!(true)), "{verdict}");
    assert_eq!(endpoints(), 1);
    let (code, run) = call("POST", &service.url("/pipelines/acct-4/sync_batch"), None);
    assert_eq!(code, 200, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");

    // A reconcile reads everything again: a change that sent no event at all arrives, and a
    // customer deleted without one is marked deleted, missing from the whole listing.
    let quiet = service.object_ids("customers")[9].clone();
    let vanished = service.object_ids("customers")[4].clone();
    service
        .fake
        .delete_silently(Scope::test(None), "customers", &vanished)
        .unwrap();
    assert!(service.row_ids("acct4", "customers").contains(&vanished));
    service
        .fake
        .change_silently(
            Scope::test(None),
            "customers",
            &quiet,
            json!({"name": "Found By Reconcile"}),
        )
        .unwrap();
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-4"),
        Some(&json!({"source": {"config": {"rate_limit": 1000}}})),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        call("POST", &service.url("/pipelines/acct-4/reconcile"), None).0,
        202
    );
    service.wait(
        "the reconcile to find the change",
        Duration::from_secs(120),
        || service.name_of("acct4", &quiet).as_deref() == Some("Found By Reconcile"),
    );
    service.wait_status("acct-4", "ready", Duration::from_secs(120));
    // A reconcile of a ready pipeline leaves it ready: its end is when the listing marked.
    let reason = || -> Option<String> {
        service
            .db
            .client()
            .query_one(
                "SELECT _deleted_reason FROM acct4.customers WHERE id = $1 AND _deleted",
                &[&vanished],
            )
            .ok()
            .and_then(|row| row.get(0))
    };
    service.wait(
        "the reconcile's whole listing to mark the customer deleted without an event",
        Duration::from_secs(120),
        || reason().as_deref() == Some("missing_from_listing"),
    );
    service.assert_exact("acct4");

    // Teardown wants a paused pipeline.
    let (code, answer) = call("POST", &service.url("/pipelines/acct-4/teardown"), None);
    assert_eq!(code, 409, "{answer}");

    // Delete runs teardown: the endpoint it made is gone from Stripe, the tables too.
    assert_eq!(
        call("DELETE", &service.url("/pipelines/acct-4"), None).0,
        200
    );
    service.wait_forgotten("acct-4", Duration::from_secs(60));
    assert_eq!(endpoints(), 0, "teardown deletes the endpoint it made");
    assert!(service.row_ids("acct4", "customers").is_empty());
}

#[test]
fn pause_mid_backfill_stops_requests_and_queues_webhooks_resume_continues_and_500s_heal() {
    let service = Service::start("1", 3000);
    let slow = Faults {
        latency: Some(stripe_fake::Latency {
            min_ms: 100,
            max_ms: 100,
        }),
        ..Faults::default()
    };
    service.fake.set_faults(slow.clone()).unwrap();
    let body = service.pipeline_body("acct-5", "acct5");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    // Half the customers in, so that a resume from the checkpoint and a restart from zero
    // differ by far more than the pages a parallel listing adds at its segments' edges.
    service.wait(
        "half the backfill committed",
        Duration::from_secs(120),
        || service.row_ids("acct5", "customers").len() >= 1500,
    );

    // Paused within 30 s; then no request reaches Stripe, and webhooks are kept, not applied.
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-5"),
        Some(&json!({"status": "paused"})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-5", "paused", Duration::from_secs(30));
    let checkpoint = service.status("acct-5")["checkpoint"].clone();
    assert!(
        checkpoint["saves"].as_i64() > Some(0) && checkpoint["state"] != json!({}),
        "{checkpoint}"
    );
    std::thread::sleep(Duration::from_secs(1));
    service.fake.reset_stats();
    let id = service.object_ids("customers")[0].clone();
    let event = silent_change(&service.fake, &id, "While Paused", "evt_paused_1");
    let (code, answer) = post_webhook(&service.base, "acct-5", &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        service.fake.stats().total,
        0,
        "paused, yet Stripe was asked"
    );
    let applied: Option<std::time::SystemTime> = service
        .db
        .client()
        .query_one(
            "SELECT applied_at FROM sync_service.webhook_inbox WHERE event_id = 'evt_paused_1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(applied.is_none(), "applied while paused");

    // Resumed: the queued event lands and the backfill ends exact.
    let (code, _) = call(
        "PATCH",
        &service.url("/pipelines/acct-5"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(code, 200);
    service.wait_status("acct-5", "ready", Duration::from_secs(240));
    service.assert_exact("acct5");
    service.wait(
        "the queued webhook's change",
        Duration::from_secs(60),
        || service.name_of("acct5", &id).as_deref() == Some("While Paused"),
    );
    // How much the resume read again is not asserted: alone it read 18 customer pages of 30,
    // under the whole suite's load once 32 (see the note on issue 15).

    // Stripe answers 500 to everything for a while: the pipeline fails transiently and heals
    // by itself once Stripe does.
    service
        .fake
        .set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        })
        .unwrap();
    service
        .fake
        .create(
            Scope::test(None),
            "customers",
            json!({"email": "outage@example.com"}),
        )
        .unwrap();
    assert_eq!(
        call_json("POST", &service.url("/pipelines/acct-5/sync"), None).0,
        202
    );
    std::thread::sleep(Duration::from_secs(15));
    service.fake.set_faults(Faults::default()).unwrap();
    service.wait(
        "recovery after the outage",
        Duration::from_secs(120),
        || {
            service.status("acct-5")["status"] == "ready"
                && service.row_ids("acct5", "customers") == service.object_ids("customers")
        },
    );
    service.assert_exact("acct5");

    // No key in any log line.
    for log in [service.worker.log_text(), service.serve.log_text()] {
        assert!(!log.contains("sk_test_service"), "a key in the logs: {log}");
    }
}
