//! Side by side with the peers, in one run on this machine: `sync-engine sync` (source-stripe →
//! dest-postgres), Stripe's TypeScript engine (npm @stripe/sync-engine 1.0.32, its library's
//! `fullSync` with 50 workers) and Singer (tap-stripe | pipelinewise-target-postgres), each
//! backfilling the same five streams from the simulator into its own schema of a fresh database,
//! each side's ids checked against the simulator's listing.
//!
//! 1. Unlimited: the simulator without latency or limits, every object laid out in Stripe's
//!    pretty JSON when generated (`prerender`), so pages cost it a copy.
//! 2. Live limits: 150–250 ms per request, 100 requests/s per account and 25 per endpoint (429
//!    above), a live key; each second's 200s and the time to the first request are kept.
//! 3. Ours alone under live limits on more objects (the peers would take an hour).
//!
//! After ours in the unlimited run, Postgres alone: the rows ours stored, `COPY`ed by psql into
//! tables of the same definition, five at once.
//!
//! The peers are installed by `scripts/bench peers` (scripts/lib/peers.sh) under `.tools/peers`;
//! their launchers are `benches/peers/`. Prints one JSON object per side and variant.
//! `cargo bench -p sync-engine --bench peers -- [OBJECTS_PER_STREAM] [LIMITED_PER_STREAM]
//! [ALONE_PER_STREAM]`

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Scope};
use test_support::TestDb;
use test_support::cpu::{CpuByGroup, cpu_seconds_besides_this_thread, wait_charging_cpu};

const ENGINE: &str = env!("CARGO_BIN_EXE_sync-engine");
const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers");

const STREAMS: [&str; 5] = test_support::fixtures::FIVE_STREAMS;

#[derive(Clone)]
struct Variant {
    name: &'static str,
    key: &'static str,
    scope: Scope,
    /// The npm engine's own limiter (requests/s): lifted (and ours with it) when the simulator
    /// has no limit; under live limits its CLI's default, 25. Its oldest-object probes do not go
    /// through it, and it does not retry a 429.
    npm_rate_limit: u32,
}

/// The command that syncs every stream into `schema` for one side.
fn command(side: &str, fake: &FakeStripe, variant: &Variant, db: &TestDb, dir: &Path) -> Command {
    let schema = side;
    match side {
        "ours" => {
            let mut source =
                json!({"api_key": variant.key, "base_url": fake.base_url(), "events": false});
            if variant.npm_rate_limit > 1000 {
                // Our limiter lifted too: a test key would otherwise keep test mode's 25/s.
                source["rate_limit"] = json!(10_000);
                source["endpoint_rate_limit"] = json!(10_000);
            }
            let source_file = dir.join("source.json");
            std::fs::write(&source_file, source.to_string()).unwrap();
            let destination = json!({"url": db.url(), "schema": schema});
            let mut cmd = Command::new(ENGINE);
            cmd.args(["sync", "--source-config"])
                .arg(&source_file)
                .args(["--streams", &STREAMS.join(",")])
                .args(["--destination-config", &destination.to_string()])
                .arg("--state-file")
                .arg(dir.join("state.json"))
                .args(["--output", "ndjson"])
                .env_remove("STRIPE_API_KEY")
                .env_remove("DATABASE_URL");
            cmd
        }
        peer => {
            let mut cmd = match peer {
                "npm" => {
                    let mut cmd = Command::new("node");
                    cmd.arg(format!("{PEERS}/npm-sync.mjs"))
                        .env("PEER_RATE_LIMIT", variant.npm_rate_limit.to_string())
                        .env("PEER_WORKERS", "50");
                    cmd
                }
                _ => {
                    let mut cmd = Command::new(format!("{PEERS}/singer-sync"));
                    cmd.env("PEER_SINGER_SKIP_EVENTS", "1")
                        .env("PEER_START_DATE", start_date(fake, &variant.scope));
                    cmd
                }
            };
            if let Ok(dir) = std::env::var("PEERS_DIR") {
                cmd.env("PEER_TOOLS_DIR", &dir)
                    .env("PEER_SYNC_ENGINE_DIR", format!("{dir}/stripe-sync-engine"));
            }
            cmd.env("PEER_STRIPE_BASE", fake.base_url())
                .env("PEER_STRIPE_KEY", variant.key)
                .env("PEER_DATABASE_URL", db.url())
                .env("PEER_SCHEMA", schema)
                .env("PEER_STREAMS", STREAMS.join(","));
            cmd
        }
    }
}

/// The day of the oldest object, as Singer's `start_date` (it lists from there).
fn start_date(fake: &FakeStripe, scope: &Scope) -> String {
    let oldest = STREAMS
        .iter()
        .flat_map(|s| fake.objects(scope.clone(), s).unwrap())
        .filter_map(|o| o["created"].as_i64())
        .min()
        .unwrap();
    sync_protocol::time::unix_to_rfc3339(oldest - oldest.rem_euclid(86_400)).unwrap()
}

/// Per stream, the listed ids the side's table lacks and the ids it has beyond them.
fn id_check(fake: &FakeStripe, scope: &Scope, db: &TestDb, schema: &str) -> Value {
    let mut client = db.client();
    let mut check = serde_json::Map::new();
    for stream in STREAMS {
        let listed: BTreeSet<String> = fake
            .objects(scope.clone(), stream)
            .unwrap()
            .iter()
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect();
        let stored: BTreeSet<String> = client
            .query(
                &format!("SELECT id::text FROM \"{schema}\".\"{stream}\""),
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        check.insert(
            stream.into(),
            json!({"listed": listed.len(),
                   "missing": listed.difference(&stored).count(),
                   "extra": stored.difference(&listed).count()}),
        );
    }
    Value::Object(check)
}

/// CPU seconds of the side's own processes, and of Postgres'.
fn client_and_postgres(cost: &CpuByGroup) -> (f64, f64) {
    let postgres = cost.seconds.get("postgres").copied().unwrap_or(0.0);
    let client = cost
        .seconds
        .iter()
        .filter(|(group, _)| *group != "postgres")
        .map(|(_, s)| s)
        .sum();
    (client, postgres)
}

fn run_side(side: &str, fake: &FakeStripe, variant: &Variant, db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(side, fake, variant, db, dir.path());
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // The previous side's dirty pages are not this side's to write.
    db.client().batch_execute("CHECKPOINT").unwrap();
    fake.reset_stats();
    let simulator_before = cpu_seconds_besides_this_thread();
    let started = Instant::now();
    let cost = wait_charging_cpu(cmd.spawn().unwrap(), started);
    let simulator = cpu_seconds_besides_this_thread() - simulator_before;
    let stats = fake.stats();
    if !cost.success {
        let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("{side} failed ({}):", variant.name);
        for line in tail.iter().rev() {
            let cut = line
                .char_indices()
                .nth(300)
                .map_or(line.len(), |(at, _)| at);
            eprintln!("  {}", &line[..cut]);
        }
    }
    let ids = id_check(fake, &variant.scope, db, side);
    let listed: u64 = STREAMS
        .iter()
        .map(|s| ids[*s]["listed"].as_u64().unwrap())
        .sum();
    let missing: u64 = STREAMS
        .iter()
        .map(|s| ids[*s]["missing"].as_u64().unwrap())
        .sum();
    if side == "ours" {
        assert!(cost.success, "sync-engine sync failed");
        assert_eq!(missing, 0, "ours: every listed id is a row: {ids}");
    }
    let (client, postgres) = client_and_postgres(&cost);
    let ok = stats.by_status.get(&200).copied().unwrap_or(0);
    println!(
        "{}",
        json!({"bench": "peers", "variant": variant.name, "side": side, "success": cost.success,
               "seconds": cost.elapsed, "records": listed, "missing": missing, "ids": ids,
               "requests": ok, "rate_limited": stats.rate_limited_global + stats.rate_limited_endpoint,
               "first_request_ms": stats.first_request_ms, "first_list_ms": stats.first_list_ms,
               "ok_per_second": stats.ok_per_second,
               "cpu_seconds": {"client": client, "postgres": postgres, "simulator": simulator}})
    );
}

/// Postgres alone storing the rows `from` holds: each stream's stored (not generated) columns
/// copied out, then `COPY`ed by psql into tables of the same definition (generated columns, key,
/// compression) in a fresh schema, the five streams at once: what storing them costs without
/// any client work, against which the whole sync is set.
fn postgres_floor(db: &TestDb, from: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut client = db.client();
    client
        .batch_execute("DROP SCHEMA IF EXISTS floor CASCADE; CREATE SCHEMA floor")
        .unwrap();
    let mut script = String::from("pids=\n");
    for stream in STREAMS {
        client
            .batch_execute(&format!(
                "CREATE TABLE floor.\"{stream}\" (LIKE \"{from}\".\"{stream}\" INCLUDING ALL)"
            ))
            .unwrap();
        let columns: Vec<String> = client
            .query(
                "SELECT quote_ident(column_name) FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 AND is_generated = 'NEVER' \
                 ORDER BY ordinal_position",
                &[&from, &stream],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let columns = columns.join(", ");
        let file = dir.path().join(format!("{stream}.copy"));
        let mut out = std::fs::File::create(&file).unwrap();
        let mut rows = client
            .copy_out(&format!(
                "COPY (SELECT {columns} FROM \"{from}\".\"{stream}\") TO STDOUT"
            ))
            .unwrap();
        std::io::copy(&mut rows, &mut out).unwrap();
        script.push_str(&format!(
            "psql -X -q -v ON_ERROR_STOP=1 \"$FLOOR_URL\" -c 'COPY floor.\"{stream}\" ({columns}) FROM STDIN' < '{}' & pids=\"$pids $!\"\n",
            file.display()
        ));
    }
    script.push_str("for pid in $pids; do wait $pid || exit 1; done\n");
    client.batch_execute("CHECKPOINT").unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).env("FLOOR_URL", db.url());
    let started = Instant::now();
    let cost = wait_charging_cpu(cmd.spawn().unwrap(), started);
    assert!(cost.success, "the floor's COPYs failed");
    let rows = |client: &mut postgres::Client, schema: &str| -> i64 {
        STREAMS
            .iter()
            .map(|s| {
                client
                    .query_one(&format!("SELECT count(*) FROM \"{schema}\".\"{s}\""), &[])
                    .unwrap()
                    .get::<_, i64>(0)
            })
            .sum()
    };
    let records = rows(&mut client, "floor");
    assert_eq!(
        records,
        rows(&mut client, from),
        "the floor stored every row"
    );
    let (client_cpu, postgres) = client_and_postgres(&cost);
    println!(
        "{}",
        json!({"bench": "peers", "variant": "unlimited", "side": "postgres_floor", "success": true,
               "seconds": cost.elapsed, "records": records,
               "cpu_seconds": {"client": client_cpu, "postgres": postgres}})
    );
}

fn fake(per_stream: usize, limited: bool) -> FakeStripe {
    let faults = if limited {
        Faults::live_like()
    } else {
        Faults::default()
    };
    FakeStripe::start(Config {
        seed: 29,
        scale: 0.0,
        objects: STREAMS
            .iter()
            .map(|s| (s.to_string(), per_stream))
            .collect(),
        accounts: 0,
        faults,
        prerender: true,
        worker_threads: 1,
        ..Default::default()
    })
    .unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let per_stream: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let limited_per_stream: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let alone_per_stream: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40_000);
    let sides = ["ours", "npm", "singer"];
    let unlimited = Variant {
        name: "unlimited",
        key: "sk_test_fake",
        scope: Scope::test(None),
        npm_rate_limit: 100_000,
    };
    let live = Variant {
        name: "live_limits",
        key: "sk_live_fake",
        scope: Scope::live(None),
        npm_rate_limit: 25,
    };
    // Ours alone under live limits on a backfill long enough that its ramp and tail are a small
    // part of it, as a real account's would be (the peers would take an hour here).
    let live_alone = Variant {
        name: "live_limits_alone",
        ..live.clone()
    };
    for (variant, per_stream, limited, sides) in [
        (&unlimited, per_stream, false, &sides[..]),
        (&live, limited_per_stream, true, &sides[..]),
        (&live_alone, alone_per_stream, true, &sides[..1]),
    ] {
        let fake = fake(per_stream, limited);
        // Generated (and laid out) before any side's clock starts.
        fake.objects(variant.scope.clone(), "customers").unwrap();
        let db = TestDb::new();
        for side in sides {
            run_side(side, &fake, variant, &db);
            if *side == "ours" && !limited {
                postgres_floor(&db, side);
            }
        }
    }
}
