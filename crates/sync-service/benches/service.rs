//! The service's overhead and webhook latency: time from `POST /pipelines` to `ready` against
//! `sync-engine sync` of the same data, and from a webhook to its row, through a real dev server
//! and the real (release) `sync-service` worker and server. Prints one JSON line per measure.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Service, WEBHOOK_SECRET, call, post_webhook, silent_change};
use serde_json::json;
use test_support::bin_path;

const WEBHOOKS: usize = 50;

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

fn main() {
    let customers = test_support::measure::count_from_args(20_000);
    let service = Service::start("300", customers);

    // The engine alone, same streams, same simulator, same database.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let engine = Command::new(bin_path("sync-engine"))
        .args([
            "sync",
            "--streams",
            "customers,products",
            "--schema",
            "engine",
        ])
        .args(["--stripe-api-key", "sk_test_service"])
        .args(["--stripe-base-url", &service.fake.base_url()])
        .args(["--postgres-url", service.db.url()])
        .arg("--state-file")
        .arg(dir.path().join("state.json"))
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let engine_secs = started.elapsed().as_secs_f64();
    assert!(
        engine.status.success(),
        "{}",
        String::from_utf8_lossy(&engine.stderr)
    );

    // The service: POST, then ready.
    let started = Instant::now();
    let body = service.pipeline_body("bench", "svc");
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{answer}");
    service.wait_status("bench", "ready", Duration::from_secs(1800));
    let service_secs = started.elapsed().as_secs_f64();
    service.assert_exact("svc");
    println!(
        "{}",
        json!({"bench": "post_to_ready", "customers": customers, "engine_seconds": engine_secs,
               "service_seconds": service_secs, "overhead": service_secs / engine_secs - 1.0})
    );

    // Webhooks one at a time: from the POST to the row showing the change.
    let latencies = webhooks(&service, "bench", "svc", "ready", |_| {});
    report("webhook_to_row", &latencies, 0);

    // The same during a backfill: a second pipeline, slowed by a rate limit so that its one
    // step outlasts the webhooks; they go through the live lane meanwhile.
    let mut body = service.pipeline_body("bench-backfill", "svc2");
    body["source"]["config"]["rate_limit"] = json!(5);
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{answer}");
    service.wait(
        "the backfill to write rows",
        Duration::from_secs(120),
        || !service.row_ids("svc2", "customers").is_empty(),
    );
    let mut after_backfill = 0;
    let latencies = webhooks(&service, "bench-backfill", "svc2", "backfilling", |still| {
        if !still {
            after_backfill += 1;
        }
    });
    report("webhook_to_row_during_backfill", &latencies, after_backfill);
}

fn report(name: &str, latencies: &[u128], after_backfill: usize) {
    println!(
        "{}",
        json!({"bench": name, "webhooks": latencies.len(),
               "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
               "max_ms": latencies.last(), "after_backfill": after_backfill})
    );
}

/// Posts webhooks one at a time to `pipeline`, each a change made without an event of its
/// own; the sorted latencies from the POST to the row. `seen` is told after each whether the
/// pipeline still had the status `during`.
fn webhooks(
    service: &Service,
    pipeline: &str,
    schema: &str,
    during: &str,
    mut seen: impl FnMut(bool),
) -> Vec<u128> {
    let ids = service.object_ids("customers");
    let mut latencies = Vec::with_capacity(WEBHOOKS);
    for i in 0..WEBHOOKS {
        let id = &ids[(i * 7) % ids.len()];
        let name = format!("{pipeline} webhook {i}");
        let event = silent_change(&service.fake, id, &name, &format!("evt_{pipeline}_{i}"));
        let started = Instant::now();
        let (code, answer) = post_webhook(&service.base, pipeline, &event, WEBHOOK_SECRET);
        assert_eq!(code, 200, "{answer}");
        service.wait("the webhook's change", Duration::from_secs(60), || {
            service.name_of(schema, id).as_deref() == Some(name.as_str())
        });
        latencies.push(started.elapsed().as_millis());
        seen(service.status(pipeline)["status"] == during);
    }
    latencies.sort();
    latencies
}
