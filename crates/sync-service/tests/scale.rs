//! Scaling out: pipelines of one account on several workers share the account's rate budget.
//! A real dev server, real workers and server, the simulator (which counts the requests) and a
//! real Postgres.

mod common;

use std::time::{Duration, Instant};

use common::{Service, call};

const BUDGET: f64 = 20.0;

#[test]
fn two_pipelines_of_one_account_on_two_workers_stay_within_its_budget() {
    // One step per backfill, so that both read all the while.
    let rps = BUDGET.to_string();
    let mut service = Service::start_with("600", 8_000, &["--account-rps", &rps]);
    let _second = Service::worker_with(
        &service.temporal,
        &service.db,
        &service.task_queue,
        "600",
        &["--account-rps", &rps],
    );
    service.fake.reset_stats();
    let started = Instant::now();
    for (id, schema) in [("acct-a", "a"), ("acct-b", "b")] {
        let body = service.pipeline_body(id, schema);
        let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
        assert_eq!(code, 201, "{created}");
    }
    // The simulator's count every 250 ms until one of them is ready.
    let mut samples = Vec::new();
    let ready = |s: &Service| {
        ["acct-a", "acct-b"]
            .iter()
            .any(|id| s.status(id)["status"] == "ready")
    };
    while !ready(&service) {
        assert!(started.elapsed() < Duration::from_secs(300), "{samples:?}");
        samples.push((started.elapsed(), service.fake.stats().total));
        std::thread::sleep(Duration::from_millis(250));
    }
    // Both backfilling: from the first rows of each until one is done.
    let both_from = samples
        .iter()
        .position(|(_, total)| *total > 40)
        .unwrap_or(samples.len());
    let window = &samples[both_from..];
    assert!(window.len() >= 16, "too short to measure: {samples:?}");
    let (first, last) = (window[0], window[window.len() - 1]);
    let rate = (last.1 - first.1) as f64 / (last.0 - first.0).as_secs_f64();
    assert!(
        (BUDGET * 0.9..=BUDGET * 1.1).contains(&rate),
        "{rate:.1} requests/s for the account, budget {BUDGET}: {samples:?}"
    );
    for (id, schema) in [("acct-a", "a"), ("acct-b", "b")] {
        service.wait_status(id, "ready", Duration::from_secs(300));
        service.assert_exact(schema);
    }
    service.worker.kill();
}
