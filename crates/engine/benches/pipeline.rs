//! The engine against a direct shell pipe: the same sync (simulator → source-stripe →
//! dest-postgres) through `sync-engine sync` and through `source-stripe read | dest-postgres
//! write`, in the same run, each into its own empty schema; plus the engine's own peak RSS.
//!
//! Then five streams (100,000 objects in all by default) end to end through the engine, the
//! destination loading through parallel connections and through one.
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

/// A sync of `streams` through the engine into `schema`; returns the seconds it took.
fn engine_sync(
    source_file: &str,
    streams: &[&str],
    db: &TestDb,
    schema: &str,
    dest_extra: Value,
    state: &std::path::Path,
) -> f64 {
    let mut dest = json!({"url": db.url(), "schema": schema});
    if let (Value::Object(d), Value::Object(e)) = (&mut dest, dest_extra) {
        d.extend(e);
    }
    let started = Instant::now();
    test_support::succeed(
        Command::new(ENGINE)
            .args([
                "sync",
                "--source-config",
                source_file,
                "--streams",
                &streams.join(","),
            ])
            .args(["--destination-config", &dest.to_string()])
            .args([
                "--state-file",
                &state.display().to_string(),
                "--output",
                "ndjson",
            ])
            .env_remove("STRIPE_API_KEY")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    started.elapsed().as_secs_f64()
}

/// Five streams end to end, parallel connections against one.
fn five_streams(records: usize) {
    let streams = [
        "customers",
        "products",
        "prices",
        "charges",
        "payment_intents",
    ];
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        objects: streams
            .iter()
            .map(|s| (s.to_string(), records / streams.len()))
            .collect(),
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.json");
    std::fs::write(
        &source,
        json!({"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 10000, "endpoint_rate_limit": 10000, "events": false}).to_string(),
    )
    .unwrap();
    let source = source.display().to_string();
    let (mut parallel, mut single) = (f64::MAX, f64::MAX);
    for round in 0..2 {
        parallel = parallel.min(engine_sync(
            &source,
            &streams,
            &db,
            &format!("par{round}"),
            json!({}),
            &dir.path().join(format!("p{round}.json")),
        ));
        single = single.min(engine_sync(
            &source,
            &streams,
            &db,
            &format!("one{round}"),
            json!({"max_connections": 1, "connections_per_stream": 1}),
            &dir.path().join(format!("o{round}.json")),
        ));
    }
    let live: usize = streams
        .iter()
        .map(|s| fake.objects(None, s).unwrap().len())
        .sum();
    println!(
        "{}",
        json!({"bench": "five streams, parallel connections", "records": live, "seconds": parallel, "records_per_second": live as f64 / parallel,
               "ratio_to_one_connection": single / parallel})
    );
    println!(
        "{}",
        json!({"bench": "five streams, one connection", "records": live, "seconds": single, "records_per_second": live as f64 / single})
    );
}

/// One sync of the `customers` stream of the simulator at `base_url`, through a shell pipe and
/// through the engine, each into its own new schema; best of `rounds` for each. Returns the
/// pipe's seconds, the engine's seconds, the engine's peak RSS and its own CPU seconds (its
/// connectors' not counted) in its fastest run.
fn both_ways(base_url: &str, db: &TestDb, tag: &str, rounds: usize) -> (f64, f64, u64, f64) {
    let source_config = json!({"api_key": "sk_test_fake", "base_url": base_url, "rate_limit": 10000, "endpoint_rate_limit": 10000, "events": false});
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
    let mut engine_cpu = 0.0;
    for round in 0..rounds {
        let dest_file = config_file(
            "dest-pipe.json",
            &json!({"url": db.url(), "schema": format!("{tag}pipe{round}")}),
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
                &format!("{tag}engine{round}"),
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
        if m.elapsed.as_secs_f64() < engine_best {
            engine_best = m.elapsed.as_secs_f64();
            engine_cpu = m.own_cpu_seconds;
        }
        engine_rss = engine_rss.max(m.peak_rss_bytes);
    }
    (pipe_best, engine_best, engine_rss, engine_cpu)
}

fn main() {
    let records: usize = test_support::measure::count_from_args(100_000);
    let fake = FakeStripe::start(Config {
        seed: 4,
        scale: 0.0,
        objects: vec![("customers".into(), records)],
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    let db = TestDb::new();
    let (pipe_best, engine_best, engine_rss, engine_cpu) = both_ways(&fake.base_url(), &db, "", 2);
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
    // What each way costs before and after its records: the same syncs of no records at all
    // (for the engine: its own start, both connectors' spec, discover and both setups).
    let empty = FakeStripe::start(Config {
        seed: 4,
        scale: 0.0,
        objects: vec![("customers".into(), 0)],
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    let (pipe_fixed, engine_fixed, _, _) = both_ways(&empty.base_url(), &db, "empty", 3);
    let records = live;
    println!(
        "{}",
        json!({"bench": "shell pipe", "records": records, "seconds": pipe_best, "records_per_second": records as f64 / pipe_best,
               "fixed_seconds": pipe_fixed})
    );
    println!(
        "{}",
        json!({"bench": "sync-engine", "records": records, "seconds": engine_best, "records_per_second": records as f64 / engine_best,
               "ratio_to_pipe": pipe_best / engine_best, "engine_peak_rss_bytes": engine_rss,
               "fixed_seconds": engine_fixed, "engine_cpu_seconds": engine_cpu,
               "ratio_beyond_fixed_costs": (pipe_best - pipe_fixed) / (engine_best - engine_fixed)})
    );
    five_streams(records);
}
