//! End to end, Connect: a platform's pipeline (`connected_accounts`) reads the platform and its
//! connected accounts through the real `sync-engine`, `source-stripe` and `dest-postgres`
//! binaries into a real Postgres; every account's rows must equal the simulator's data for it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::{Lcg, children_of, free_port, kill9};
use test_support::{Finished, TestDb, bin_path};

const STREAMS: &[&str] = &["customers", "products", "prices", "invoices"];

fn fake(accounts: usize) -> FakeStripe {
    FakeStripe::start(Config {
        seed: 31,
        scale: 0.0,
        accounts,
        objects: vec![
            ("customers".into(), 12),
            ("products".into(), 3),
            ("prices".into(), 5),
            ("invoices".into(), 6),
        ],
        ..Default::default()
    })
    .expect("the simulator starts")
}

fn sync_command(fake: &FakeStripe, db: &TestDb, source_config: &Value) -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args([
        "sync",
        "--stripe-api-key",
        "sk_test_fake",
        "--stripe-base-url",
        &fake.base_url(),
    ])
    .args(["--source-config", &source_config.to_string()])
    .args([
        "--postgres-url",
        db.url(),
        "--schema",
        "stripe",
        "--streams",
        &STREAMS.join(","),
        "--output",
        "ndjson",
    ])
    .env_remove("STRIPE_API_KEY")
    .env_remove("DATABASE_URL");
    cmd
}

fn sync(fake: &FakeStripe, db: &TestDb, source_config: &Value) -> Finished {
    sync_command(fake, db, source_config)
        .output()
        .unwrap()
        .into()
}

fn all() -> Value {
    json!({"connected_accounts": "all", "rate_limit": 1000, "endpoint_rate_limit": 500})
}

fn strip(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("_account_id");
        m.remove("_updated_at");
    }
    v
}

/// How `account`'s rows of every stream differ from its data in the simulator.
fn account_differences(fake: &FakeStripe, db: &TestDb, account: &str) -> Vec<String> {
    let mut client = db.client();
    let mut differences = Vec::new();
    for stream in STREAMS {
        let scope = if account == fake.platform_account() {
            Scope::test(None)
        } else {
            Scope::test(Some(account))
        };
        let want: BTreeMap<String, Value> = fake.objects_by_id(scope, stream).unwrap();
        assert!(!want.is_empty(), "{account} has {stream}");
        let have: BTreeMap<String, Value> = client
            .query(
                &format!(
                    "SELECT id, _raw_data::text FROM stripe.{stream} WHERE _account_id = $1 AND NOT _deleted"
                ),
                &[&account],
            )
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    strip(serde_json::from_str(&r.get::<_, String>(1)).unwrap()),
                )
            })
            .collect();
        for (id, object) in &want {
            match have.get(id) {
                None => differences.push(format!("{account} {stream} {id}: missing")),
                Some(row) if row != object => {
                    differences.push(format!("{account} {stream} {id}: {row} != {object}"));
                }
                Some(_) => {}
            }
        }
        for id in have.keys().filter(|id| !want.contains_key(*id)) {
            differences.push(format!("{account} {stream} {id}: not in the simulator"));
        }
    }
    differences
}

/// `account`'s rows of every stream equal its data in the simulator.
fn assert_account_exact(fake: &FakeStripe, db: &TestDb, account: &str) {
    let differences = account_differences(fake, db, account);
    assert!(differences.is_empty(), "{differences:#?}");
}

/// The `_accounts` rows: account → (status, connected_at, deauthorized_at, last_synced_at).
type Roster = BTreeMap<String, (String, Option<i64>, Option<i64>, Option<i64>)>;

fn roster(db: &TestDb, platform: &str) -> Roster {
    db.client()
        .query(
            "SELECT account_id, _raw_data->>'status', (_raw_data->>'connected_at')::bigint, \
             (_raw_data->>'deauthorized_at')::bigint, (_raw_data->>'last_synced_at')::bigint \
             FROM stripe._accounts WHERE _account_id = $1",
            &[&platform],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect()
}

fn synced_at(db: &TestDb, account: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT _synced_at::text FROM stripe.customers WHERE _account_id = $1 ORDER BY id",
            &[&account],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_platform_and_fifty_connected_accounts_are_synced_exactly_and_followed_as_they_come_and_go() {
    let fake = fake(52);
    let db = TestDb::new();
    let platform = fake.platform_account().to_owned();
    let connected = fake.connected_accounts();
    // Not connected yet at the first run; connected before the second.
    let newcomer = connected[51].clone();
    fake.set_connected(&newcomer, false).unwrap();
    let first = sync(&fake, &db, &all());
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_account_exact(&fake, &db, &platform);
    for account in &connected[..51] {
        assert_account_exact(&fake, &db, account);
    }
    let roster1 = roster(&db, &platform);
    assert_eq!(
        roster1.len(),
        52,
        "the platform and 51 accounts: {roster1:?}"
    );
    assert!(!roster1.contains_key(&newcomer));
    for (account, (status, connected_at, gone, synced)) in &roster1 {
        assert_eq!(status, "active", "{account}");
        assert!(
            connected_at.is_some() && synced.is_some() && gone.is_none(),
            "{account}"
        );
    }
    let rows: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM stripe.customers WHERE _account_id = $1",
            &[&newcomer],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "a disconnected account is not read");

    // Between the runs: one account connects, one leaves, two change.
    let leaver = connected[7].clone();
    let (changed, untouched) = (connected[3].clone(), connected[20].clone());
    fake.set_connected(&newcomer, true).unwrap();
    fake.set_connected(&leaver, false).unwrap();
    let created = fake
        .create(
            Scope::test(Some(&changed)),
            "customers",
            json!({"email": "new@connected.test"}),
        )
        .unwrap();
    let first_customer = fake
        .objects(Scope::test(Some(&changed)), "customers")
        .unwrap()[3]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.update(
        Scope::test(Some(&changed)),
        "customers",
        &first_customer,
        json!({"name": "Changed On The Connected Account"}),
    )
    .unwrap();
    let untouched_before = synced_at(&db, &untouched);
    let leaver_rows = synced_at(&db, &leaver).len();

    let second = sync(&fake, &db, &all());
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("account {leaver} is no longer connected")),
        "the leaver is named: {}",
        second.stderr
    );
    assert_account_exact(&fake, &db, &platform);
    assert_account_exact(&fake, &db, &newcomer);
    assert_account_exact(&fake, &db, &changed);
    let row = db
        .client()
        .query_one(
            "SELECT _raw_data->>'email' FROM stripe.customers WHERE id = $1 AND _account_id = $2",
            &[&created["id"].as_str().unwrap(), &changed],
        )
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(row, "new@connected.test");
    // Incremental: an account without changes was not listed again.
    assert_eq!(synced_at(&db, &untouched), untouched_before);
    assert_eq!(
        synced_at(&db, &leaver).len(),
        leaver_rows,
        "a departed account's rows are kept"
    );
    let roster2 = roster(&db, &platform);
    assert_eq!(roster2.len(), 53);
    assert_eq!(roster2[&newcomer].0, "active");
    let (status, _, gone, synced) = &roster2[&leaver];
    assert_eq!(status, "deauthorized");
    assert!(gone.is_some(), "deauthorized_at is set");
    assert_eq!(
        *synced, roster1[&leaver].3,
        "last_synced_at stays at its last read"
    );
    assert!(roster2[&untouched].3.unwrap() >= roster1[&untouched].3.unwrap());
}

#[test]
fn listed_accounts_are_read_and_a_revoked_one_is_skipped_by_name() {
    let fake = fake(3);
    let db = TestDb::new();
    let platform = fake.platform_account().to_owned();
    let connected = fake.connected_accounts();
    fake.set_connected(&connected[1], false).unwrap();
    let config = json!({
        "connected_accounts": [connected[0], connected[1]],
        "rate_limit": 1000,
        "endpoint_rate_limit": 500
    });
    let run = sync(&fake, &db, &config);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("account {} is skipped", connected[1])),
        "{}",
        run.stderr
    );
    assert_account_exact(&fake, &db, &platform);
    assert_account_exact(&fake, &db, &connected[0]);
    let roster = roster(&db, &platform);
    assert_eq!(roster[&connected[1]].0, "unavailable");
    assert_eq!(
        roster.len(),
        3,
        "the third account was not listed: {roster:?}"
    );
    let rows: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM stripe.customers WHERE _account_id = ANY($1)",
            &[&vec![connected[1].clone(), connected[2].clone()]],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[test]
fn kill_9_mid_fan_out_then_a_rerun_is_exact() {
    let fake = fake(12);
    let db = TestDb::new();
    let mut rng = Lcg(0xc0ec7);
    let slow = json!({"connected_accounts": "all", "rate_limit": 15, "endpoint_rate_limit": 15});
    let mut kills = 0;
    for round in 0..6 {
        let mut child = sync_command(&fake, &db, &slow)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(800 + rng.next(2500));
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            // The engine, then the destination, then the source.
            let target = match round % 3 {
                0 => Some(child.id()),
                which => children_of(child.id()).get(which - 1).copied(),
            };
            if let Some(pid) = target
                && kill9(pid)
            {
                kills += 1;
            }
        }
        let _ = child.wait();
    }
    assert!(kills >= 3, "{kills} kills landed");
    let last = sync(&fake, &db, &all());
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    assert_account_exact(&fake, &db, fake.platform_account());
    for account in fake.connected_accounts() {
        assert_account_exact(&fake, &db, &account);
    }
}

/// A child process killed if the test ends before it does.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until every one of `accounts` is exact.
fn wait_exact(fake: &FakeStripe, db: &TestDb, accounts: &[String], stderr: &std::path::Path) {
    let started = Instant::now();
    loop {
        let differences: Vec<String> = accounts
            .iter()
            .flat_map(|a| account_differences(fake, db, a))
            .collect();
        if differences.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} differences, e.g. {:#?}\n{}",
            differences.len(),
            &differences[..differences.len().min(5)],
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn live_a_platforms_connect_endpoint_brings_each_accounts_changes_and_newcomers_and_departures() {
    let fake = fake(4);
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let platform = fake.platform_account().to_owned();
    let connected = fake.connected_accounts();
    let (newcomer, leaver) = (connected[3].clone(), connected[2].clone());
    fake.set_connected(&newcomer, false).unwrap();
    let port = free_port();
    // Webhooks only: no polling, so every change must come through the endpoints setup makes.
    let source = json!({
        "connected_accounts": "all", "rate_limit": 1000, "endpoint_rate_limit": 500,
        "poll_interval_secs": 0, "checkpoint_interval_secs": 0.5,
        "webhook_listen": format!("127.0.0.1:{port}"),
        "webhook_url": format!("http://127.0.0.1:{port}/webhooks"),
    });
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Running(
        sync_command(&fake, &db, &source)
            .args([
                "--state-file",
                dir.path().join("state.json").to_str().unwrap(),
            ])
            .arg("--live")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60) && child.0.try_wait().unwrap().is_none(),
            "never live: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let endpoints = fake
        .objects(Scope::test(None), "webhook_endpoints")
        .unwrap();
    assert_eq!(endpoints.len(), 2, "{endpoints:#?}");
    assert!(
        endpoints
            .iter()
            .all(|e| e["metadata"]["managed_by"] == "stripe-sync")
    );
    assert_eq!(
        endpoints
            .iter()
            .filter(|e| e["metadata"]["receives"] == "connect")
            .count(),
        1,
        "one Connect endpoint: {endpoints:#?}"
    );
    let followed: Vec<String> = std::iter::once(platform.clone())
        .chain(connected[..3].iter().cloned())
        .collect();
    wait_exact(&fake, &db, &followed, &err);

    // Changes in two connected accounts and the platform arrive by webhook, each to its account.
    let (a, b) = (connected[0].clone(), connected[1].clone());
    let made = fake
        .create(
            Scope::test(Some(&a)),
            "customers",
            json!({"email": "live@connected.test"}),
        )
        .unwrap();
    let b_customer = fake.objects(Scope::test(Some(&b)), "customers").unwrap()[2]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.update(
        Scope::test(Some(&b)),
        "customers",
        &b_customer,
        json!({"name": "Renamed Live"}),
    )
    .unwrap();
    let p_product = fake.objects(Scope::test(None), "products").unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.delete(Scope::test(None), "products", &p_product)
        .unwrap();
    wait_exact(&fake, &db, &followed, &err);
    let owner: String = db
        .client()
        .query_one(
            "SELECT _account_id FROM stripe.customers WHERE id = $1",
            &[&made["id"].as_str().unwrap()],
        )
        .unwrap()
        .get(0);
    assert_eq!(owner, a, "the new customer is stamped with its own account");

    // A newcomer connects: its authorization reaches the Connect endpoint, and it is read.
    fake.set_connected(&newcomer, true).unwrap();
    wait_exact(&fake, &db, std::slice::from_ref(&newcomer), &err);
    // One leaves: no longer followed, its row marked at the event's time, its rows kept.
    let kept = synced_at(&db, &leaver).len();
    fake.set_connected(&leaver, false).unwrap();
    let deauthorized = fake
        .events(Scope::test(None))
        .unwrap()
        .into_iter()
        .find(|e| e["type"] == "account.application.deauthorized" && e["account"] == *leaver)
        .expect("the simulator recorded the deauthorization");
    let started = Instant::now();
    loop {
        let roster = roster(&db, &platform);
        if roster.get(&leaver).is_some_and(|r| r.0 == "deauthorized")
            && roster
                .get(&newcomer)
                .is_some_and(|r| r.0 == "active" && r.3.is_some())
        {
            assert_eq!(roster[&leaver].2, deauthorized["created"].as_i64());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{roster:?}\n{}\n{}",
            std::fs::read_to_string(&err).unwrap_or_default(),
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("_accounts"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(synced_at(&db, &leaver).len(), kept);

    assert!(test_support::process::terminate(child.0.id()));
    let status = child.0.wait().unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(0),
        "{stderr}\n{}",
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("_accounts")
                || l.contains("stream_status")
                || l.contains("\"log\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stderr.contains(&format!("account {leaver} deauthorized the platform")),
        "{stderr}"
    );
    let stdout = std::fs::read_to_string(&out).unwrap();
    let eof = test_support::lines_of(&stdout)
        .into_iter()
        .rfind(|m| m["type"] == "eof")
        .unwrap_or_else(|| panic!("no eof: {stderr}"));
    assert_eq!(eof["eof"]["status"], "succeeded", "{eof}");

    // A rerun (not live) resumes every account where its live run left it, and teardown
    // removes both endpoints.
    let rerun_config = json!({
        "connected_accounts": "all", "rate_limit": 1000, "endpoint_rate_limit": 500,
        "webhook_url": format!("http://127.0.0.1:{port}/webhooks"),
    });
    let rerun = sync_command(&fake, &db, &rerun_config)
        .args([
            "--state-file",
            dir.path().join("state.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{rerun:?}");
    assert_eq!(
        fake.objects(Scope::test(None), "webhook_endpoints")
            .unwrap()
            .len(),
        2,
        "a rerun keeps both endpoints"
    );
    let teardown = Command::new(bin_path("sync-engine"))
        .args(["teardown", "--stripe-api-key", "sk_test_fake"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--source-config", &rerun_config.to_string()])
        .args(["--postgres-url", db.url(), "--schema", "stripe"])
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(teardown.status.success(), "{teardown:?}");
    assert!(
        fake.objects(Scope::test(None), "webhook_endpoints")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn live_without_webhooks_a_newly_listed_account_is_read_and_a_departed_one_stops() {
    let fake = fake(3);
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let platform = fake.platform_account().to_owned();
    let connected = fake.connected_accounts();
    let (newcomer, leaver) = (connected[2].clone(), connected[1].clone());
    fake.set_connected(&newcomer, false).unwrap();
    // Polling only: the accounts' listing is what finds who comes and goes.
    let source = json!({
        "connected_accounts": "all", "rate_limit": 1000, "endpoint_rate_limit": 500,
        "poll_interval_secs": 0.2, "checkpoint_interval_secs": 0.5, "accounts_relist_secs": 0.5,
    });
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Running(
        sync_command(&fake, &db, &source)
            .arg("--live")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let followed = [platform.clone(), connected[0].clone(), leaver.clone()];
    wait_exact(&fake, &db, &followed, &err);
    // A change in a connected account arrives by polling its events.
    let customer = fake
        .objects(Scope::test(Some(&connected[0])), "customers")
        .unwrap()[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.update(
        Scope::test(Some(&connected[0])),
        "customers",
        &customer,
        json!({"name": "Polled"}),
    )
    .unwrap();
    wait_exact(&fake, &db, &followed, &err);

    fake.set_connected(&newcomer, true).unwrap();
    wait_exact(&fake, &db, std::slice::from_ref(&newcomer), &err);
    fake.set_connected(&leaver, false).unwrap();
    let started = Instant::now();
    loop {
        let roster = roster(&db, &platform);
        if roster
            .get(&leaver)
            .is_some_and(|r| r.0 == "deauthorized" && r.2.is_some())
            && roster
                .get(&newcomer)
                .is_some_and(|r| r.0 == "active" && r.3.is_some())
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{roster:?}\n{}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(test_support::process::terminate(child.0.id()));
    let status = child.0.wait().unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("account {leaver} is no longer connected")),
        "{stderr}"
    );
}

#[test]
fn kill_9_of_a_live_platform_run_then_a_rerun_is_exact() {
    let fake = fake(3);
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let connected = fake.connected_accounts();
    let source = json!({
        "connected_accounts": "all", "rate_limit": 1000, "endpoint_rate_limit": 500,
        "poll_interval_secs": 0.2, "checkpoint_interval_secs": 0.3,
    });
    let err = dir.path().join("err");
    let mut child = Running(
        sync_command(&fake, &db, &source)
            .args(["--state-file", state.to_str().unwrap()])
            .arg("--live")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut accounts = vec![fake.platform_account().to_owned()];
    accounts.extend(connected.iter().cloned());
    wait_exact(&fake, &db, &accounts, &err);
    // Changes in every account, then the source dies mid-follow, its last changes perhaps
    // uncommitted.
    for (n, account) in connected.iter().enumerate() {
        fake.create(
            Scope::test(Some(account)),
            "customers",
            json!({"email": format!("late-{n}@connected.test")}),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(150));
    let source_pid = children_of(child.0.id())
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("source-stripe"))
        })
        .expect("the source runs");
    assert!(kill9(source_pid));
    let _ = child.0.wait();
    let rerun = sync_command(&fake, &db, &all())
        .args(["--state-file", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{rerun:?}");
    for account in &accounts {
        assert_account_exact(&fake, &db, account);
    }
}
