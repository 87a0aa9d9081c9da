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
    let ids = service.object_ids("customers");
    let mut latencies = Vec::with_capacity(WEBHOOKS);
    for i in 0..WEBHOOKS {
        let id = &ids[i % ids.len()];
        let name = format!("webhook {i}");
        let event = silent_change(&service.fake, id, &name, &format!("evt_bench_{i}"));
        let started = Instant::now();
        let (code, answer) = post_webhook(&service.base, "bench", &event, WEBHOOK_SECRET);
        assert_eq!(code, 200, "{answer}");
        service.wait("the webhook's change", Duration::from_secs(60), || {
            service.name_of("svc", id).as_deref() == Some(name.as_str())
        });
        latencies.push(started.elapsed().as_millis());
    }
    latencies.sort();
    println!(
        "{}",
        json!({"bench": "webhook_to_row", "webhooks": WEBHOOKS,
               "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
               "max_ms": latencies.last()})
    );
}
