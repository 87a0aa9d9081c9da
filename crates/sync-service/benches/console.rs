//! The web console's pages with many pipelines: `GET /` (the pipelines list) with 1,000
//! pipelines in the control database, one pipeline's page, and the explorer, timed at the
//! client over loopback (an upper bound of the server's time). Release `sync-service serve`,
//! a real dev server and Postgres. Prints one JSON line.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Process, runtime};
use serde_json::json;
use test_support::TestDb;
use test_support::process::free_port;
use test_support::temporal::DevServer;

const TOKEN: &str = "bench-token";
const SAMPLES: usize = 40;

/// 1,000 pipelines in every status, each with a checkpoint, sums and three runs.
fn fill(db: &TestDb, pipelines: usize) {
    db.client()
        .batch_execute(&format!(
            "INSERT INTO sync_service.pipelines (id, source, destination, streams, status, failure_type, error)
             SELECT 'pl_' || lpad(i::text, 5, '0'),
                    jsonb_build_object('name', 'stripe', 'config', jsonb_build_object('api_key', 'sk_test_x')),
                    jsonb_build_object('name', 'postgres', 'config', jsonb_build_object('url', 'postgres://u@h/db', 'schema', 's' || i)),
                    '[\"customers\", \"invoices\"]',
                    (ARRAY['backfilling', 'ready', 'ready', 'paused', 'error'])[1 + i % 5],
                    CASE WHEN i % 5 = 4 THEN 'config_error' END,
                    CASE WHEN i % 5 = 4 THEN 'GET /v1/account: the API key was revoked' END
             FROM generate_series(1, {pipelines}) i;
             INSERT INTO sync_service.pipeline_state (pipeline_id, records, stream_records, saves, updated_at)
             SELECT id, 123456, '{{\"customers\": 100000, \"invoices\": 23456}}', 40, now() - interval '90 seconds'
             FROM sync_service.pipelines;
             INSERT INTO sync_service.runs (pipeline_id, fence, ended_at, status, records, states, progress)
             SELECT p.id, r, now(), 'succeeded', 1000, 10,
                    '{{\"started_at\": \"2026-01-01T00:00:00Z\", \"elapsed_ms\": 1000, \"derived\": {{\"status\": \"succeeded\", \"records_per_second\": 1000, \"states_per_second\": 10, \"total_record_count\": 1000, \"total_state_count\": 10}},
                       \"streams\": {{\"customers\": {{\"status\": \"completed\", \"record_count\": 1000, \"committed_count\": 1000}}}}}}'
             FROM sync_service.pipelines p, generate_series(1, 3) r;"
        ))
        .unwrap();
}

/// Median, 95th percentile and largest of `SAMPLES` GETs of `path`, in milliseconds, and the
/// page's size.
fn time_get(base: &str, path: &str) -> (f64, f64, f64, usize) {
    // The runtime installs the TLS crypto provider reqwest needs.
    let runtime = runtime();
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut bytes = 0;
    runtime.block_on(async {
        for i in 0..=SAMPLES {
            let started = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body = response.bytes().await.unwrap();
            // The first answer warms the pool and the caches; it is not counted.
            if i > 0 {
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            bytes = body.len();
        }
    });
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), samples[samples.len() - 1], bytes)
}

fn main() {
    let pipelines = test_support::measure::count_from_args(1_000);
    let temporal = DevServer::start();
    let db = TestDb::new();
    common::migrate(&db);
    fill(&db, pipelines);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _serve = Process::start(&[
        "serve",
        "--database-url",
        db.url(),
        "--temporal-address",
        &temporal.address(),
        "--listen",
        &listen,
        "--api-token",
        TOKEN,
    ]);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let base = format!("http://{listen}");
    let mut line = json!({"bench": "console", "pipelines": pipelines, "samples": SAMPLES});
    for (name, path) in [
        ("list", "/".to_owned()),
        (
            "pipeline",
            format!("/console/pipelines/pl_{:05}", pipelines / 2),
        ),
        ("explorer", "/explorer".to_owned()),
        ("explorer_table", "/explorer/tables/invoices".to_owned()),
    ] {
        let (median, p95, max, bytes) = time_get(&base, &path);
        line[name] = json!({"path": path, "median_ms": median, "p95_ms": p95, "max_ms": max, "bytes": bytes});
    }
    println!("{line}");
}
