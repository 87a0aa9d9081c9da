//! The engine against a direct shell pipe: the same sync (simulator → source-stripe →
//! dest-postgres) through `sync-engine sync` and through `source-stripe read | dest-postgres
//! write`, in the same run, each into its own empty schema; plus the engine's own peak RSS.
//!
//! Prints one JSON object per measurement. `cargo bench -p sync-engine --bench pipeline -- [N]`

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe};
use test_support::TestDb;
use test_support::measure::wait_measuring;

const ENGINE: &str = env!("CARGO_BIN_EXE_sync-engine");

fn bin(name: &str) -> String {
    std::path::Path::new(ENGINE)
        .with_file_name(name)
        .display()
        .to_string()
}

fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let fake = FakeStripe::start(Config {
        seed: 4,
        scale: 0.0,
        objects: vec![("customers".into(), records)],
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    let db = TestDb::new();
    let source_config = json!({"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 10000, "endpoint_rate_limit": 10000, "events": false});
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    let discover = Command::new(bin("source-stripe"))
        .args(["discover", "--config", &source_config.to_string()])
        .output()
        .unwrap();
    let mut c: Value = serde_json::from_slice(&discover.stdout).unwrap();
    let all = c["catalog"]["streams"].as_array().unwrap().clone();
    c["catalog"]["streams"] = Value::Array(
        all.into_iter()
            .filter(|s| s["name"] == "customers")
            .collect(),
    );
    std::fs::write(&catalog, c.to_string()).unwrap();
    let config_file = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    };
    let source_file = config_file("source.json", &source_config);

    let mut pipe_best = f64::MAX;
    let mut engine_best = f64::MAX;
    let mut engine_rss = 0;
    for round in 0..2 {
        let dest_file = config_file(
            "dest-pipe.json",
            &json!({"url": db.url(), "schema": format!("pipe{round}")}),
        );
        let script = format!(
            "'{}' read --config '{source_file}' --catalog '{cat}' | '{}' write --config '{dest_file}' --catalog '{cat}'",
            bin("source-stripe"),
            bin("dest-postgres"),
            cat = catalog.display()
        );
        let started = Instant::now();
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the pipe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pipe_best = pipe_best.min(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let child = Command::new(ENGINE)
            .args([
                "sync",
                "--source-config",
                &source_file,
                "--streams",
                "customers",
                "--stripe-api-key",
                "sk_test_fake",
            ])
            .args([
                "--postgres-url",
                db.url(),
                "--schema",
                &format!("engine{round}"),
                "--state-file",
                &dir.path()
                    .join(format!("state{round}.json"))
                    .display()
                    .to_string(),
            ])
            .args(["--output", "ndjson"])
            .env_remove("STRIPE_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let m = wait_measuring(child, started);
        assert!(m.status.success(), "the engine failed");
        engine_best = engine_best.min(m.elapsed.as_secs_f64());
        engine_rss = engine_rss.max(m.peak_rss_bytes);
    }
    // The simulator deletes a few percent of what it generates; the live ones are the data set.
    let live = fake.objects(None, "customers").unwrap().len();
    let mut client = db.client();
    for schema in ["pipe0", "engine0"] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {schema}.customers"), &[])
            .unwrap()
            .get(0);
        assert_eq!(n as usize, live, "{schema} is complete");
    }
    let records = live;
    println!(
        "{}",
        json!({"bench": "shell pipe", "records": records, "seconds": pipe_best, "records_per_second": records as f64 / pipe_best})
    );
    println!(
        "{}",
        json!({"bench": "sync-engine", "records": records, "seconds": engine_best, "records_per_second": records as f64 / engine_best,
               "ratio_to_pipe": pipe_best / engine_best, "engine_peak_rss_bytes": engine_rss})
    );
}
