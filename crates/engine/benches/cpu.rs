//! CPU per record, by process and by stream: `sync-engine sync` of each of five streams
//! (simulator without latency or limits, pretty JSON as api.stripe.com answers), into an empty
//! table and again into one holding a tenth of the rows, charging the CPU seconds of the engine, source-stripe, dest-postgres, every
//! Postgres server process, and the simulator (this process's threads but the one that waits and
//! samples `/proc`).
//!
//! Prints one JSON object per stream. `cargo bench -p sync-engine --bench cpu -- [N per stream]`

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;
use stripe_fake::{Config, FakeStripe};
use test_support::TestDb;
use test_support::cpu::{cpu_seconds_besides_this_thread, wait_charging_cpu};

const ENGINE: &str = env!("CARGO_BIN_EXE_sync-engine");

const STREAMS: [&str; 5] = test_support::fixtures::FIVE_STREAMS;

/// What one sync of `stream` into `schema` cost; `into` names the run in the output.
fn charged_sync(fake: &FakeStripe, stream: &str, db: &TestDb, into: &str) {
    let dir = tempfile::tempdir().unwrap();
    let source = json!({"api_key": "sk_test_fake", "base_url": fake.base_url(),
                        "rate_limit": 10000, "endpoint_rate_limit": 10000, "events": false});
    let source_file = dir.path().join("source.json");
    std::fs::write(&source_file, source.to_string()).unwrap();
    let destination = json!({"url": db.url(), "schema": format!("cpu_{stream}")});
    fake.reset_stats();
    let simulator_before = cpu_seconds_besides_this_thread();
    let started = Instant::now();
    let child = Command::new(ENGINE)
        .args(["sync", "--source-config"])
        .arg(&source_file)
        .args(["--streams", stream])
        .args(["--destination-config", &destination.to_string()])
        .arg("--state-file")
        .arg(dir.path().join("state.json"))
        .args(["--output", "ndjson"])
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cost = wait_charging_cpu(child, started);
    assert!(cost.success, "the sync of {stream} failed");
    let simulator = cpu_seconds_besides_this_thread() - simulator_before;
    let requests = fake.stats().by_status.get(&200).copied().unwrap_or(0);
    let rows: i64 = db
        .client()
        .query_one(&format!("SELECT count(*) FROM cpu_{stream}.{stream}"), &[])
        .unwrap()
        .get(0);
    let live = fake.objects(None, stream).unwrap().len();
    assert_eq!(rows as usize, live, "{stream}: every live object is a row");
    let of = |group: &str| cost.seconds.get(group).copied().unwrap_or(0.0);
    println!(
        "{}",
        json!({"bench": "cpu", "stream": stream, "into": into, "records": live, "seconds": cost.elapsed,
               "requests": requests,
               "cpu_seconds": {"engine": of("self"), "source": of("source-stripe"),
                               "destination": of("dest-postgres"), "postgres": of("postgres"),
                               "simulator": simulator}})
    );
}

/// `stream` synced into an empty table (its first batch copied straight in), then again, from
/// scratch, after nine rows in ten were deleted (every batch merged through the staging table).
fn one_stream(stream: &str, objects: usize, db: &TestDb) {
    let fake = FakeStripe::start(Config {
        seed: 11,
        scale: 0.0,
        objects: vec![(stream.into(), objects)],
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap();
    charged_sync(&fake, stream, db, "empty");
    db.client()
        .batch_execute(&format!(
            "DELETE FROM cpu_{stream}.{stream} WHERE hashtext(id) % 10 <> 0"
        ))
        .unwrap();
    charged_sync(&fake, stream, db, "rows");
}

fn main() {
    let objects = test_support::measure::count_from_args(20_000);
    let db = TestDb::new();
    for stream in STREAMS {
        one_stream(stream, objects, &db);
    }
}
