//! Settings and checkpoints that used to give a wrong result without an error, through the real
//! binaries: the environment against explicit settings, a live key against a test checkpoint, a
//! state file against another database, two runs at once.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use stripe_fake::{Config, FakeStripe, Faults, Latency, Scope};
use test_support::{Finished, TestDb, bin_path};

fn fake(faults: Faults) -> FakeStripe {
    FakeStripe::start(Config {
        seed: 29,
        scale: 0.0,
        objects: vec![("customers".into(), 120)],
        faults,
        ..Default::default()
    })
    .expect("the simulator starts")
}

fn source_config(fake: &FakeStripe, key: &str) -> String {
    json!({"api_key": key, "base_url": fake.base_url(), "rate_limit": 1000, "endpoint_rate_limit": 500}).to_string()
}

fn engine(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.arg("sync")
        .args(args)
        .args(["--streams", "customers", "--output", "ndjson"])
        .env_remove("DATABASE_URL")
        .env_remove("STRIPE_API_KEY")
        .env_remove("RUST_LOG");
    cmd
}

fn run(mut cmd: Command) -> Finished {
    cmd.output().unwrap().into()
}

fn livemodes(db: &TestDb, schema: &str) -> Vec<bool> {
    db.client()
        .query(
            &format!("SELECT DISTINCT (_raw_data->>'livemode')::boolean FROM {schema}.customers"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn schema_exists(db: &TestDb, schema: &str) -> bool {
    db.count(&format!("pg_namespace WHERE nspname = '{schema}'")) > 0
}

#[test]
fn the_environment_never_beats_an_explicit_setting() {
    let fake = fake(Faults::default());
    let env_db = TestDb::new();
    let db = TestDb::new();
    let mut cmd = engine(&[
        "--source-config",
        &source_config(&fake, "sk_test_fake"),
        "--destination-config",
        &json!({"url": db.url(), "schema": "m"}).to_string(),
    ]);
    cmd.env("DATABASE_URL", env_db.url())
        .env("STRIPE_API_KEY", "sk_live_fake");
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let want = fake.objects(Scope::test(None), "customers").unwrap().len() as i64;
    assert_eq!(db.count("m.customers"), want);
    assert_eq!(
        livemodes(&db, "m"),
        vec![false],
        "test data, from the explicit test key"
    );
    assert!(
        !schema_exists(&env_db, "m"),
        "nothing went to DATABASE_URL's database"
    );

    // A shortcut flag and a JSON config that disagree: an error naming both, no sync.
    let out = run(engine(&[
        "--source-config",
        &source_config(&fake, "sk_test_fake"),
        "--postgres-url",
        env_db.url(),
        "--destination-config",
        &json!({"url": db.url(), "schema": "m2"}).to_string(),
    ]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--postgres-url") && out.stderr.contains("--destination-config"),
        "{}",
        out.stderr
    );
    assert!(!schema_exists(&db, "m2") && !schema_exists(&env_db, "m2"));
}

#[test]
fn a_live_key_never_resumes_a_test_checkpoint() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let sync = |key: &str| {
        run(engine(&[
            "--source-config",
            &source_config(&fake, key),
            "--postgres-url",
            db.url(),
            "--schema",
            "m",
        ]))
    };
    let test = sync("sk_test_fake");
    assert_eq!(test.code, Some(0), "{}", test.stderr);
    let live = sync("sk_live_fake");
    assert_eq!(live.code, Some(0), "{}", live.stderr);
    assert!(live.stderr.contains("from scratch"), "{}", live.stderr);
    let read = live.of_type("eof").pop().unwrap()["run_progress"]["derived"]["total_record_count"]
        .as_u64()
        .unwrap();
    let live_objects = fake.objects(Scope::live(None), "customers").unwrap().len() as u64;
    assert_eq!(read, live_objects, "the live data is read");
    let mut modes = livemodes(&db, "m");
    modes.sort();
    assert_eq!(modes, vec![false, true]);
}

#[test]
fn a_state_file_is_never_resumed_for_another_database() {
    let fake = fake(Faults::default());
    let first_db = TestDb::new();
    let empty_db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let sync = |db: &TestDb, extra: &[&str]| {
        let mut args = vec![
            "--source-config".to_owned(),
            source_config(&fake, "sk_test_fake"),
            "--postgres-url".to_owned(),
            db.url().to_owned(),
            "--state-file".to_owned(),
            state.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(engine(&args))
    };
    let first = sync(&first_db, &[]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let refused = sync(&empty_db, &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("belongs to another sync") && refused.stderr.contains("--reset"),
        "{}",
        refused.stderr
    );
    assert!(!schema_exists(&empty_db, "stripe") || empty_db.count("stripe.customers") == 0);
    let over = sync(&empty_db, &["--reset"]);
    assert_eq!(over.code, Some(0), "{}", over.stderr);
    assert_eq!(
        empty_db.count("stripe.customers"),
        first_db.count("stripe.customers")
    );
}

#[test]
fn two_runs_at_once_are_safe_and_one_sync_never_runs_twice() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let spawn = |key: &str| {
        engine(&[
            "--source-config",
            &source_config(&fake, key),
            "--postgres-url",
            db.url(),
            "--schema",
            "fresh",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    // Two first runs of two syncs on a new schema: both create the state table.
    let (a, b) = (spawn("sk_test_fake"), spawn("sk_live_fake"));
    let (a, b): (Finished, Finished) = (
        a.wait_with_output().unwrap().into(),
        b.wait_with_output().unwrap().into(),
    );
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    // The same sync twice at once (slow enough to overlap): the second says so and does nothing.
    fake.set_faults(Faults {
        latency: Some(Latency {
            min_ms: 1500,
            max_ms: 1500,
        }),
        ..Faults::default()
    })
    .unwrap();
    fake.create(Scope::test(None), "customers", json!({"name": "one more"}))
        .unwrap();
    let first = spawn("sk_test_fake");
    std::thread::sleep(Duration::from_millis(1500));
    let second: Finished = spawn("sk_test_fake").wait_with_output().unwrap().into();
    let first: Finished = first.wait_with_output().unwrap().into();
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(second.code, Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains("another sync-engine run") && second.stderr.contains("in progress"),
        "{}",
        second.stderr
    );
}
