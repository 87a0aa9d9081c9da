//! `sync-engine serve` under load: one sync through `sync --engine-url` against the same sync
//! in-process (same run, alternating, each into its own schema); then 16 concurrent
//! `pipeline_sync` requests on one server (16 schemas), with the server's peak RSS and the time
//! to first byte of `/health` polled during the load.
//!
//! Prints one JSON object per measurement. `cargo bench -p sync-engine --bench serve -- [N]`

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe};
use test_support::TestDb;

const ENGINE: &str = env!("CARGO_BIN_EXE_sync-engine");
const CONCURRENT: usize = 16;

struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start() -> Serve {
        let mut child = Command::new(ENGINE)
            .args(["serve", "--port", "0", "--max-concurrent-runs", "32"])
            .env_remove("SYNC_ENGINE_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first.trim().trim_start_matches("listening on ").to_owned();
        Serve { child, url }
    }

    /// The server's peak resident set so far (VmHWM), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sync-engine sync` of customers into `schema`, in-process or through `engine`; seconds.
fn cli_sync(
    source: &Value,
    db: &TestDb,
    schema: &str,
    state: &std::path::Path,
    engine: Option<&str>,
) -> f64 {
    let mut cmd = Command::new(ENGINE);
    cmd.args([
        "sync",
        "--source-config",
        &source.to_string(),
        "--streams",
        "customers",
    ])
    .args([
        "--destination-config",
        &json!({"url": db.url(), "schema": schema}).to_string(),
    ])
    .args([
        "--state-file",
        &state.display().to_string(),
        "--output",
        "ndjson",
    ])
    .env_remove("STRIPE_API_KEY")
    .env_remove("DATABASE_URL")
    .env_remove("SYNC_ENGINE_API_TOKEN")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Some(url) = engine {
        cmd.args(["--engine-url", url]);
    }
    let started = Instant::now();
    test_support::succeed(&mut cmd);
    started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// 16 syncs at once on one server; returns (seconds, records, peak RSS, /health latencies).
fn concurrent(serve: &Serve, source: &Value, db: &TestDb) -> (f64, Vec<f64>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let loading = Arc::new(AtomicBool::new(true));
    let probe = {
        let (client, url, loading) = (
            client.clone(),
            format!("{}/health", serve.url),
            loading.clone(),
        );
        runtime.spawn(async move {
            let mut samples = Vec::new();
            while loading.load(Ordering::Relaxed) {
                let started = Instant::now();
                if client.get(&url).send().await.is_ok() {
                    samples.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };
    let started = Instant::now();
    let runs: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let body = json!({"pipeline": {
                "source": {"type": "stripe", "stripe": source},
                "destination": {"type": "postgres", "postgres": {"url": db.url(), "schema": format!("c{i}")}},
                "streams": [{"name": "customers"}]
            }});
            let (client, url) = (client.clone(), format!("{}/pipeline_sync", serve.url));
            runtime.spawn(async move {
                let text = client.post(url).json(&body).send().await.unwrap().text().await.unwrap();
                let eof: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
                assert_eq!(eof["eof"]["status"], "succeeded", "{text}");
            })
        })
        .collect();
    runtime.block_on(async {
        for run in runs {
            run.await.unwrap();
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    loading.store(false, Ordering::Relaxed);
    let mut samples = runtime.block_on(probe).unwrap();
    samples.sort_by(f64::total_cmp);
    (seconds, samples)
}

fn main() {
    let records = test_support::measure::count_from_args(50_000);
    let fake = FakeStripe::start(Config {
        seed: 9,
        scale: 0.0,
        objects: vec![("customers".into(), records)],
        worker_threads: 2,
        ..Default::default()
    })
    .unwrap();
    let live = fake.objects(None, "customers").unwrap().len();
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source = json!({"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 10000, "endpoint_rate_limit": 10000, "events": false});
    let serve = Serve::start();

    let (mut local, mut remote) = (f64::MAX, f64::MAX);
    for round in 0..2 {
        local = local.min(cli_sync(
            &source,
            &db,
            &format!("l{round}"),
            &dir.path().join(format!("l{round}.json")),
            None,
        ));
        remote = remote.min(cli_sync(
            &source,
            &db,
            &format!("r{round}"),
            &dir.path().join(format!("r{round}.json")),
            Some(&serve.url),
        ));
    }
    println!(
        "{}",
        json!({"bench": "sync through serve", "records": live, "local_seconds": local, "remote_seconds": remote,
               "local_records_per_second": live as f64 / local, "remote_records_per_second": live as f64 / remote,
               "ratio": local / remote})
    );

    let per_run = live / CONCURRENT;
    let fake16 = FakeStripe::start(Config {
        seed: 10,
        scale: 0.0,
        objects: vec![("customers".into(), per_run)],
        worker_threads: 2,
        ..Default::default()
    })
    .unwrap();
    let per_run = fake16.objects(None, "customers").unwrap().len();
    let source16 = json!({"api_key": "sk_test_fake", "base_url": fake16.base_url(), "rate_limit": 10000, "endpoint_rate_limit": 10000, "events": false});
    let busy = Serve::start();
    let (seconds, samples) = concurrent(&busy, &source16, &db);
    println!(
        "{}",
        json!({"bench": "16 concurrent syncs", "runs": CONCURRENT, "records": per_run * CONCURRENT, "seconds": seconds,
               "records_per_second": (per_run * CONCURRENT) as f64 / seconds, "serve_peak_rss_bytes": busy.peak_rss(),
               "health_samples": samples.len(), "health_p50_ms": percentile(&samples, 0.5), "health_p99_ms": percentile(&samples, 0.99)})
    );
}
