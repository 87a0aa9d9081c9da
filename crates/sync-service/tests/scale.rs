//! Scaling out: pipelines of one account on several workers share the account's rate budget;
//! many pipelines spread over several workers, one of which dies. A real dev server, real
//! workers and server, the simulator (which counts the requests) and a real Postgres.

mod common;

use std::time::{Duration, Instant};

use common::{Process, Service, call};

const BUDGET: f64 = 20.0;

#[test]
fn two_pipelines_of_one_account_with_two_keys_on_two_workers_stay_within_its_budget() {
    // One step per backfill, so that both read all the while.
    let rps = BUDGET.to_string();
    let mut service = Service::start_with("600", 20_000, &["--account-rps", &rps], &[]);
    let _second = Service::worker_with(
        &service.temporal,
        &service.db,
        &service.task_queue,
        "600",
        &["--account-rps", &rps],
    );
    service.fake.reset_stats();
    let started = Instant::now();
    // Two keys of the same account (the simulator's platform): Stripe limits the account, so
    // the budget and the step lock are the account's, not a key's.
    for (id, schema, key) in [
        ("acct-a", "a", "sk_test_service"),
        ("acct-b", "b", "sk_test_rotated"),
    ] {
        let mut body = service.pipeline_body(id, schema);
        body["source"]["config"]["api_key"] = serde_json::json!(key);
        let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
        assert_eq!(code, 201, "{created}");
    }
    // The simulator's count every 250 ms until one of them is ready (one backfills while the
    // other waits for the account; both take from the budget).
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
    // One step per account at a time: no step of one overlapped a step of the other.
    let overlapping: i64 = service
        .db
        .client()
        .query_one(
            "SELECT count(*) FROM sync_service.runs a JOIN sync_service.runs b
               ON a.pipeline_id = 'acct-a' AND b.pipeline_id = 'acct-b'
              AND a.started_at < coalesce(b.ended_at, now())
              AND b.started_at < coalesce(a.ended_at, now())",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(overlapping, 0, "steps of one account overlapped");
    service.worker.kill();
}

#[test]
fn pipelines_of_one_account_take_turns_step_by_step() {
    // Short steps and a budget that makes each backfill take several of them.
    let mut service = Service::start_with("1", 6_000, &["--account-rps", "20"], &[]);
    let ids = ["turn-a", "turn-b"];
    for (id, schema) in ids.iter().zip(["ta", "tb"]) {
        let body = service.pipeline_body(id, schema);
        let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
        assert_eq!(code, 201, "{created}");
    }
    for (id, schema) in ids.iter().zip(["ta", "tb"]) {
        service.wait_status(id, "ready", Duration::from_secs(300));
        service.assert_exact(schema);
    }
    // Each pipeline's steps, in order: neither did its whole backfill before the other began.
    let runs = |id: &str| -> Vec<(f64, f64)> {
        service
            .db
            .client()
            .query(
                "SELECT extract(epoch FROM started_at)::float8, extract(epoch FROM ended_at)::float8
                 FROM sync_service.runs WHERE pipeline_id = $1 ORDER BY id",
                &[&id],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get::<_, Option<f64>>(1).unwrap_or(f64::MAX)))
            .collect()
    };
    let (a, b) = (runs("turn-a"), runs("turn-b"));
    assert!(
        a.len() >= 3 && b.len() >= 3,
        "several steps each: {a:?} {b:?}"
    );
    let first_ready_at = a.last().unwrap().1.min(b.last().unwrap().1);
    let both_started = a[0].0.max(b[0].0);
    assert!(
        both_started < first_ready_at,
        "one backfill ran to its end before the other's first step: {a:?} {b:?}"
    );
    // Still one step at a time.
    for (sa, ea) in &a {
        for (sb, eb) in &b {
            assert!(ea <= sb || eb <= sa, "steps overlapped: {a:?} {b:?}");
        }
    }
    service.worker.kill();
}

#[test]
fn thirty_pipelines_on_three_workers_all_reach_ready_exact_though_one_worker_dies() {
    // Thirty connected accounts: thirty budgets and step locks, so the pipelines run side by
    // side.
    let mut service = Service::start_full("2", 300, &["--max-concurrent-steps", "4"], &[], &[], 30);
    let accounts = service.fake.connected_accounts();
    let mut workers: Vec<Process> = (0..2)
        .map(|_| {
            Service::worker_with(
                &service.temporal,
                &service.db,
                &service.task_queue,
                "2",
                &["--max-concurrent-steps", "4"],
            )
        })
        .collect();
    let ids: Vec<String> = (0..30).map(|i| format!("p-{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut body = service.pipeline_body(id, &format!("s{i:02}"));
        body["source"]["config"]["account_id"] = serde_json::json!(accounts[i]);
        let (code, created) = call(
            "POST",
            &service.url("/pipelines?skip_check=true"),
            Some(&body),
        );
        assert_eq!(code, 201, "{created}");
    }
    let ready = |s: &Service| {
        ids.iter()
            .filter(|id| s.status(id)["status"] == "ready")
            .count()
    };
    // One worker dies (SIGKILL) while most pipelines are still backfilling.
    service.wait(
        "the first pipelines to be ready",
        Duration::from_secs(300),
        || ready(&service) >= 3,
    );
    let pid = workers[0].child.id();
    test_support::process::signal(pid, 9);
    let _ = workers[0].child.wait();
    let killed_at = Instant::now();
    service.wait("all thirty to be ready", Duration::from_secs(600), || {
        ready(&service) == 30
    });
    eprintln!(
        "all 30 ready {:?} after the kill (ready at the kill: at least 3)",
        killed_at.elapsed()
    );
    for (i, account) in accounts.iter().enumerate() {
        service.assert_exact_in(&format!("s{i:02}"), Some(account));
    }
    workers.clear();
    service.worker.kill();
}
