//! End to end: the Stripe simulator, the real `sync-engine`, `source-stripe` and `dest-postgres`
//! binaries, and a real Postgres. The tables must equal the simulator's data.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Latency, Scope};
use test_support::process::{Lcg, children_of, kill9};
use test_support::{Finished, TestDb, bin_path};

const STREAMS: &[&str] = &[
    "customers",
    "products",
    "prices",
    "subscriptions",
    "subscription_items",
    "invoices",
    "invoice_line_items",
    "charges",
    "coupons",
    "refunds",
    "credit_notes",
    "credit_note_line_items",
];

/// The simulator as api.stripe.com answers: pretty-printed JSON.
fn fake(faults: Faults) -> FakeStripe {
    fake_with(faults, false)
}

fn fake_with(faults: Faults, compact_json: bool) -> FakeStripe {
    FakeStripe::start(Config {
        seed: 17,
        scale: 0.0,
        objects: vec![
            ("customers".into(), 1200),
            ("products".into(), 80),
            ("prices".into(), 160),
            ("subscriptions".into(), 150),
            ("invoices".into(), 400),
            ("charges".into(), 900),
            ("coupons".into(), 40),
            ("refunds".into(), 120),
            ("credit_notes".into(), 60),
        ],
        faults,
        compact_json,
        ..Default::default()
    })
    .expect("the simulator starts")
}

const FAST: &str = r#"{"rate_limit":1000,"endpoint_rate_limit":500}"#;

fn sync_command(fake: &FakeStripe, db: &TestDb, source_config: &str, extra: &[&str]) -> Command {
    sync_streams_command(fake, db, source_config, STREAMS, extra)
}

fn sync_streams_command(
    fake: &FakeStripe,
    db: &TestDb,
    source_config: &str,
    streams: &[&str],
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args([
        "sync",
        "--stripe-api-key",
        "sk_test_fake",
        "--stripe-base-url",
        &fake.base_url(),
    ])
    .args(["--source-config", source_config])
    .args([
        "--postgres-url",
        db.url(),
        "--schema",
        "stripe",
        "--streams",
        &streams.join(","),
        "--output",
        "ndjson",
    ])
    .args(extra)
    .env_remove("STRIPE_API_KEY")
    .env_remove("DATABASE_URL");
    cmd
}

fn sync(fake: &FakeStripe, db: &TestDb, extra: &[&str]) -> Finished {
    sync_command(fake, db, FAST, extra).output().unwrap().into()
}

fn strip(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("_account_id");
        m.remove("_updated_at");
    }
    v
}

/// Every table holds exactly the simulator's live objects; deleted ones are soft-deleted.
fn assert_tables_equal_the_data(fake: &FakeStripe, db: &TestDb) {
    let mut client = db.client();
    for stream in STREAMS {
        let want: BTreeMap<String, Value> = fake.objects_by_id(Scope::test(None), stream).unwrap();
        let rows = client
            .query(
                &format!("SELECT id, _raw_data::text FROM stripe.{stream} WHERE NOT _deleted"),
                &[],
            )
            .unwrap();
        let have: BTreeMap<String, Value> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    strip(serde_json::from_str(&r.get::<_, String>(1)).unwrap()),
                )
            })
            .collect();
        let missing: Vec<&String> = want
            .keys()
            .filter(|k| !have.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<&String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{stream}: {} rows for {} objects; missing {missing:?}, extra {extra:?}",
            have.len(),
            want.len()
        );
        for (id, o) in &want {
            assert_eq!(&have[id], o, "{stream} {id} differs");
        }
    }
}

#[test]
fn a_full_sync_equals_the_data_and_a_second_run_is_incremental_and_exact() {
    full_then_incremental(fake(Faults::default()));
}

#[test]
fn the_same_from_a_simulator_answering_compact_json() {
    full_then_incremental(fake_with(Faults::default(), true));
}

fn full_then_incremental(fake: FakeStripe) {
    let db = TestDb::new();
    let first = sync(&fake, &db, &[]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_tables_equal_the_data(&fake, &db);

    let scope = Scope::test(None);
    let customers = fake.objects(scope.clone(), "customers").unwrap();
    fake.create(
        scope.clone(),
        "customers",
        json!({"email": "late@example.com"}),
    )
    .unwrap();
    fake.update(
        scope.clone(),
        "customers",
        customers[3]["id"].as_str().unwrap(),
        json!({"name": "Renamed"}),
    )
    .unwrap();
    let gone = customers[7]["id"].as_str().unwrap().to_owned();
    fake.delete(scope.clone(), "customers", &gone).unwrap();
    let product = fake.objects(scope.clone(), "products").unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.update(
        scope.clone(),
        "products",
        &product,
        json!({"active": false}),
    )
    .unwrap();

    let second = sync(&fake, &db, &[]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let eof = second.of_type("eof").pop().expect("an eof");
    let read = eof["run_progress"]["derived"]["total_record_count"]
        .as_u64()
        .unwrap();
    assert!(read < 50, "incremental, not a backfill: {read} records");
    assert_tables_equal_the_data(&fake, &db);
    let deleted: bool = db
        .client()
        .query_one(
            "SELECT _deleted FROM stripe.customers WHERE id = $1",
            &[&gone],
        )
        .unwrap()
        .get(0);
    assert!(deleted);
}

#[test]
fn kill_9_of_engine_source_or_destination_at_random_moments_loses_and_duplicates_nothing() {
    // Latency and a low request rate make the backfill last long enough to be interrupted
    // anywhere, at least ten times.
    let fake = fake(Faults {
        latency: Some(Latency {
            min_ms: 5,
            max_ms: 25,
        }),
        ..Default::default()
    });
    let db = TestDb::new();
    let mut rng = Lcg(0x5eed);
    // Kills delivered to the engine, the destination and the source.
    let mut kills = [0; 3];
    for round in 0..12 {
        // Slow enough that the backfill outlasts most rounds (the source needs few requests
        // beyond the data's pages, so a faster rate would finish it before the kills).
        let slow = r#"{"rate_limit":6,"endpoint_rate_limit":6}"#;
        let mut child: Child = sync_command(&fake, &db, slow, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(300 + rng.next(1500));
        let started = Instant::now();
        while started.elapsed() < wait {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            let which = round % 3;
            let target = match which {
                0 => Some(child.id()),
                // The engine starts the destination first, then the source: pids in that order.
                _ => children_of(child.id()).get(which - 1).copied(),
            };
            if let Some(pid) = target
                && kill9(pid)
            {
                kills[which] += 1;
            }
        }
        let _ = child.wait();
    }
    assert!(
        kills.iter().all(|&k| k >= 2),
        "kills of engine, destination, source: {kills:?}"
    );
    let last = sync(&fake, &db, &[]);
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    assert_tables_equal_the_data(&fake, &db);
}

#[test]
fn the_connectors_piped_by_the_shell_give_the_same_tables() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let source_config = json!({"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 1000, "endpoint_rate_limit": 500}).to_string();
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    let discover = Command::new(bin_path("source-stripe"))
        .args(["discover", "--config", &source_config])
        .output()
        .unwrap();
    assert!(discover.status.success(), "{discover:?}");
    let mut c: Value = serde_json::from_slice(&discover.stdout).unwrap();
    let all = c["catalog"]["streams"].as_array().unwrap().clone();
    c["catalog"]["streams"] = Value::Array(
        all.into_iter()
            .filter(|s| STREAMS.contains(&s["name"].as_str().unwrap()))
            .collect(),
    );
    std::fs::write(&catalog, c.to_string()).unwrap();
    let dest_config = json!({"url": db.url(), "schema": "stripe"}).to_string();
    let script = format!(
        "'{src}' read --config '{source_config}' --catalog '{cat}' | '{dst}' write --config '{dest_config}' --catalog '{cat}'",
        src = bin_path("source-stripe").display(),
        dst = bin_path("dest-postgres").display(),
        cat = catalog.display()
    );
    test_support::succeed(Command::new("bash").args(["-o", "pipefail", "-c", &script]));
    assert_tables_equal_the_data(&fake, &db);
}

/// A row read from one customer's table row, without the fields the source adds.
fn customer_row(db: &TestDb, id: &str) -> Value {
    let raw: String = db
        .client()
        .query_one(
            "SELECT _raw_data::text FROM stripe.customers WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    strip(serde_json::from_str(&raw).unwrap())
}

#[test]
fn an_event_from_the_same_second_as_the_listing_never_leaves_a_row_stale() {
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        objects: vec![("customers".into(), 30)],
        ..Default::default()
    })
    .unwrap();
    let db = TestDb::new();
    let scope = Scope::test(None);
    // Within one second: a customer is created (its event carries this first version), then
    // changed by something that emits no event on it, and a first sync starts. The listing
    // sees the new version; the replayed `customer.created` carries the old one, from the
    // same second.
    let t = fake.stop_clock();
    let created = fake
        .create(scope.clone(), "customers", json!({"name": "first"}))
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    fake.change_silently(
        scope.clone(),
        "customers",
        &id,
        json!({"name": "second", "balance": 700}),
    )
    .unwrap();
    assert_eq!(fake.now(), t, "the race needs one second");
    fake.reset_stats();
    let customers = |extra: &[&str]| -> Finished {
        sync_streams_command(&fake, &db, FAST, &["customers"], extra)
            .output()
            .unwrap()
            .into()
    };
    let first = customers(&[]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let refetches = fake
        .stats()
        .by_endpoint
        .get("GET /v1/customers/{id}")
        .copied()
        .unwrap_or(0);

    fake.resume_clock();
    fake.advance_clock(30);
    let second = customers(&[]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);

    let current = fake.retrieve(scope.clone(), "customers", &id).unwrap();
    assert_eq!(current["name"], "second");
    assert_eq!(customer_row(&db, &id), current, "the stale snapshot won");
    for object in fake.objects(scope, "customers").unwrap() {
        let id = object["id"].as_str().unwrap();
        assert_eq!(customer_row(&db, id), object, "{id}");
    }
    // The rule's cost: one retrieve per object whose event ties with the listing.
    assert_eq!(refetches, 1, "{:?}", fake.stats().by_endpoint);
}

/// A `sync-engine` subcommand against the simulator and the test database, one sync id.
fn engine(
    fake: &FakeStripe,
    db: &TestDb,
    command: &str,
    sync_id: &str,
    streams: &[&str],
) -> Finished {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args([command, "--stripe-api-key", "sk_test_fake"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--postgres-url", db.url(), "--schema", "stripe"])
        .args(["--streams", &streams.join(","), "--sync-id", sync_id])
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL");
    if command == "sync" {
        cmd.args(["--source-config", FAST, "--output", "ndjson"]);
    }
    cmd.output().unwrap().into()
}

/// Rows a complete customers table holds: the live customers (deleted ones were never listed).
fn live_customers(fake: &FakeStripe) -> i64 {
    fake.objects(Scope::test(None), "customers").unwrap().len() as i64
}

/// Records the run read for a stream (its eof's progress).
fn records_read(run: &Finished, stream: &str) -> u64 {
    let eof = run.of_type("eof").pop().expect("an eof");
    let streams = eof["run_progress"]["streams"]
        .as_object()
        .unwrap_or_else(|| panic!("the eof has per-stream progress: {eof}"))
        .clone();
    streams
        .get(stream)
        .map(|s| s["record_count"].as_u64().expect("a record count"))
        .unwrap_or(0)
}

#[test]
fn teardown_of_one_sync_keeps_the_tables_another_sync_uses() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let a = engine(&fake, &db, "sync", "a", &["customers", "products"]);
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    let b = engine(&fake, &db, "sync", "b", &["customers"]);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    assert_eq!(db.count("stripe.customers"), live_customers(&fake));

    let down = engine(&fake, &db, "teardown", "a", &["customers", "products"]);
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert!(
        down.stderr.contains("kept table stripe.customers") && down.stderr.contains("\"b\""),
        "teardown names the table it kept and who uses it: {}",
        down.stderr
    );
    assert_eq!(
        db.count("stripe.customers"),
        live_customers(&fake),
        "sync b's table is kept with its rows"
    );
    let products: bool = db
        .client()
        .query_one("SELECT to_regclass('stripe.products') IS NULL", &[])
        .unwrap()
        .get(0);
    assert!(products, "the table only sync a used is dropped");

    let again = engine(&fake, &db, "sync", "b", &["customers"]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(db.count("stripe.customers"), live_customers(&fake));
    assert_eq!(
        records_read(&again, "customers"),
        0,
        "b continues: nothing to re-read"
    );

    // The last user's teardown drops the table.
    let last = engine(&fake, &db, "teardown", "b", &["customers"]);
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    let gone: bool = db
        .client()
        .query_one("SELECT to_regclass('stripe.customers') IS NULL", &[])
        .unwrap()
        .get(0);
    assert!(gone, "{}", last.stderr);
}

#[test]
fn a_sync_whose_table_was_recreated_or_emptied_behind_its_back_reads_it_again() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let streams = ["customers", "products"];
    let first = engine(&fake, &db, "sync", "a", &streams);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(db.count("stripe.customers"), live_customers(&fake));

    // Dropped by hand (or by another tool's teardown): setup creates it again, empty.
    db.client()
        .batch_execute("DROP TABLE stripe.customers")
        .unwrap();
    let second = engine(&fake, &db, "sync", "a", &streams);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("stream customers: its table stripe.customers is not the table"),
        "the run says why it reads the stream again: {}",
        second.stderr
    );
    assert_eq!(
        db.count("stripe.customers"),
        live_customers(&fake),
        "backfilled again"
    );
    assert_eq!(
        records_read(&second, "products"),
        0,
        "the intact stream is not re-read"
    );

    // Emptied behind its back, then written to by something else before the next run: the
    // TRUNCATE itself renews the table's generation.
    db.client()
        .batch_execute(
            "TRUNCATE stripe.customers; \
             INSERT INTO stripe.customers (id, _account_id, _raw_data, _updated_at, _synced_at) \
             VALUES ('cus_elsewhere', 'acct_x', '{\"id\":\"cus_elsewhere\"}', now(), now())",
        )
        .unwrap();
    let third = engine(&fake, &db, "sync", "a", &streams);
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    assert!(
        third
            .stderr
            .contains("stream customers: its table stripe.customers is not the table"),
        "{}",
        third.stderr
    );
    assert_eq!(
        db.count("stripe.customers"),
        live_customers(&fake) + 1,
        "backfilled again, beside the row written elsewhere"
    );

    // Emptied by DELETE (no trigger fires): the table is empty where rows were committed.
    db.client()
        .batch_execute("DELETE FROM stripe.customers")
        .unwrap();
    let again = engine(&fake, &db, "sync", "a", &streams);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("is empty although rows were committed"),
        "{}",
        again.stderr
    );
    assert_eq!(
        db.count("stripe.customers"),
        live_customers(&fake),
        "backfilled again"
    );

    // Nothing changed: an incremental run.
    let fourth = engine(&fake, &db, "sync", "a", &streams);
    assert_eq!(fourth.code, Some(0), "{}", fourth.stderr);
    assert_eq!(records_read(&fourth, "customers"), 0);
}

#[test]
fn setup_never_takes_over_a_table_it_did_not_create() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    // A user's table with exactly the stream's layout: made by setup, then unmarked.
    let setup = engine(&fake, &db, "setup", "a", &["customers"]);
    assert_eq!(setup.code, Some(0), "{}", setup.stderr);
    db.client()
        .batch_execute(
            "COMMENT ON TABLE stripe.customers IS NULL; \
             INSERT INTO stripe.customers (id, _account_id, _raw_data, _updated_at, _synced_at) \
             VALUES ('mine', 'acct_user', '{\"id\":\"mine\"}', now(), now())",
        )
        .unwrap();
    let run = engine(&fake, &db, "sync", "a", &["customers"]);
    assert_ne!(run.code, Some(0), "a user's table is not written into");
    assert!(
        run.stderr.contains("stripe.customers") && run.stderr.contains("did not create it"),
        "{}",
        run.stderr
    );
    let down = engine(&fake, &db, "teardown", "a", &["customers"]);
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert_eq!(
        db.count("stripe.customers"),
        1,
        "teardown left the user's table and row"
    );

    // A user's table with the key but other columns: the same clear error, not raw SQL.
    let db = TestDb::new();
    db.client()
        .batch_execute(
            "CREATE SCHEMA stripe; CREATE TABLE stripe.customers (id text PRIMARY KEY, note text)",
        )
        .unwrap();
    let run = engine(&fake, &db, "sync", "a", &["customers"]);
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("table stripe.customers (for stream \"customers\") exists but dest-postgres did not create it"),
        "{}",
        run.stderr
    );
}

#[test]
fn events_slower_to_apply_than_a_time_limited_run_still_advance_run_by_run() {
    let fake = FakeStripe::start(Config {
        seed: 6,
        scale: 0.0,
        objects: vec![("customers".into(), 20)],
        ..Default::default()
    })
    .unwrap();
    let db = TestDb::new();
    let scope = Scope::test(None);
    // Created just before the first run: their events tie with its listing, so each is applied
    // by a retrieve of its customer, at 4 requests/s here: more than a one-second run holds.
    for i in 0..6 {
        fake.create(
            scope.clone(),
            "customers",
            json!({"name": format!("new {i}")}),
        )
        .unwrap();
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(
            rounds <= 30,
            "no end after 30 runs of one second: {:?}",
            fake.stats().by_endpoint
        );
        let run: Finished = sync_streams_command(
            &fake,
            &db,
            r#"{"rate_limit":4}"#,
            &["customers"],
            &["--time-limit", "1"],
        )
        .output()
        .unwrap()
        .into();
        // 3: stopped at the time limit, with more to do.
        assert!(matches!(run.code, Some(0 | 3)), "{}", run.stderr);
        let eof: Value = run
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["type"] == "eof")
            .unwrap_or_else(|| panic!("no eof: {}", run.stdout));
        if eof["eof"]["reason"] == "complete" {
            break;
        }
    }
    for object in fake.objects(scope, "customers").unwrap() {
        let id = object["id"].as_str().unwrap();
        assert_eq!(customer_row(&db, id), object, "{id}");
    }
    let retrieves = fake
        .stats()
        .by_endpoint
        .get("GET /v1/customers/{id}")
        .copied()
        .unwrap_or(0);
    assert!(
        retrieves >= 6,
        "the premise: the events were applied by retrieves ({retrieves})"
    );
}
