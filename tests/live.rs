//! Live mode end to end: the simulator changing objects while `sync-engine sync --live` runs
//! (real `sync-engine`, `source-stripe`, `dest-postgres`, a real Postgres), through polling of
//! `/v1/events` and through webhooks to the source's own endpoint, which `setup` provisions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Scope};
use test_support::process::{Lcg, child_named, free_port, kill9, terminate};
use test_support::{TestDb, bin_path, lines_of};

const STREAMS: &[&str] = &["customers", "products"];

fn fake(faults: Faults) -> FakeStripe {
    FakeStripe::start(Config {
        seed: 23,
        scale: 0.0,
        objects: vec![("customers".into(), 150), ("products".into(), 30)],
        faults,
        ..Default::default()
    })
    .expect("the simulator starts")
}

/// A live sync running in the background, its output in files.
struct Live {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Live {
    fn start(fake: &FakeStripe, db: &TestDb, dir: &Path, source: &Value, extra: &[&str]) -> Live {
        let n = std::fs::read_dir(dir).map_or(0, Iterator::count);
        let (stdout, stderr) = (dir.join(format!("out-{n}")), dir.join(format!("err-{n}")));
        let child = sync_command(fake, db, dir, source, extra)
            .arg("--live")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Live {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then the engine must end cleanly with a final checkpoint; returns its eof.
    fn stop(mut self) -> Value {
        assert!(terminate(self.child.id()));
        let status = wait_for(&mut self.child, Duration::from_secs(30));
        assert_eq!(status, Some(0), "{}", self.stderr());
        let out = std::fs::read_to_string(&self.stdout).unwrap();
        lines_of(&out)
            .into_iter()
            .rfind(|m| m["type"] == "eof")
            .unwrap_or_else(|| panic!("no eof: {}", self.stderr()))["eof"]
            .clone()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(child: &mut Child, timeout: Duration) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().unwrap().code()
}

fn sync_command(
    fake: &FakeStripe,
    db: &TestDb,
    dir: &Path,
    source: &Value,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args(["sync", "--stripe-api-key", "sk_test_fake"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--source-config", &source.to_string()])
        .args(["--postgres-url", db.url(), "--schema", "stripe"])
        .args(["--streams", &STREAMS.join(",")])
        .args(["--state-file", dir.join("state.json").to_str().unwrap()])
        .args(["--output", "ndjson"])
        .args(extra)
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL");
    cmd
}

fn strip(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("_account_id");
        m.remove("_updated_at");
    }
    v
}

/// What differs between the simulator's live objects and the table's rows that are not deleted;
/// empty when they are equal.
fn differences(fake: &FakeStripe, db: &TestDb) -> Vec<String> {
    let mut client = db.client();
    let mut found = Vec::new();
    for stream in STREAMS {
        let want: BTreeMap<String, Value> = fake.objects_by_id(Scope::test(None), stream).unwrap();
        let have: BTreeMap<String, Value> = client
            .query(
                &format!("SELECT id, _raw_data::text FROM stripe.{stream} WHERE NOT _deleted"),
                &[],
            )
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let raw: String = r.get(1);
                        (r.get(0), strip(serde_json::from_str(&raw).unwrap()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (id, object) in &want {
            match have.get(id) {
                None => found.push(format!("{stream} {id}: missing")),
                Some(row) if row != object => found.push(format!(
                    "{stream} {id}: stale (row {} {}, want {} {})",
                    row["metadata"], row["name"], object["metadata"], object["name"]
                )),
                Some(_) => {}
            }
        }
        found.extend(
            have.keys()
                .filter(|id| !want.contains_key(*id))
                .map(|id| format!("{stream} {id}: should be gone")),
        );
    }
    found
}

/// For a difference, the row's version and the object's events: what went wrong.
fn history(fake: &FakeStripe, db: &TestDb, difference: &str) -> String {
    let mut words = difference.split_whitespace();
    let (stream, id) = (
        words.next().unwrap(),
        words.next().unwrap().trim_end_matches(':'),
    );
    let row = db
        .client()
        .query_opt(
            &format!("SELECT extract(epoch from _updated_at)::bigint, _synced_at::text FROM stripe.{stream} WHERE id = $1"),
            &[&id],
        )
        .unwrap()
        .map(|r| (r.get::<_, Option<i64>>(0), r.get::<_, String>(1)));
    let mut lines = vec![format!("row of {id}: (version, synced) {row:?}")];
    for event in fake.events(Scope::test(None)).unwrap().iter().rev() {
        if event["data"]["object"]["id"] == id {
            lines.push(format!(
                "{} {} {} {}",
                event["id"], event["created"], event["type"], event["data"]["object"]["metadata"]
            ));
        }
    }
    lines.join("\n")
}

/// Waits until the tables equal the simulator's data.
fn wait_exact(fake: &FakeStripe, db: &TestDb, live: &Live, timeout: Duration) {
    let started = Instant::now();
    loop {
        let diff = differences(fake, db);
        if diff.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "after {timeout:?}, {} differences, e.g. {:?}\n{}",
            diff.len(),
            &diff[..diff.len().min(5)],
            live.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates, updates (several times in a row, so changes share a second) and deletes objects.
fn mutate(fake: &FakeStripe, rng: &mut Lcg, round: usize) {
    let scope = Scope::test(None);
    for i in 0..2 {
        fake.create(
            scope.clone(),
            "customers",
            json!({"email": format!("new-{round}-{i}@example.com")}),
        )
        .unwrap();
    }
    let ids = |stream: &str| -> Vec<String> {
        fake.objects(Scope::test(None), stream)
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let customers = ids("customers");
    for _ in 0..3 {
        let id = &customers[rng.next(customers.len() as u64) as usize];
        for version in 0..3 {
            fake.update(
                scope.clone(),
                "customers",
                id,
                json!({"metadata": {"round": round.to_string(), "version": version.to_string()}}),
            )
            .unwrap();
        }
    }
    // A change and the deletion right after it, in the same second.
    let doomed = &customers[rng.next(customers.len() as u64) as usize];
    fake.update(
        scope.clone(),
        "customers",
        doomed,
        json!({"metadata": {"last": "words"}}),
    )
    .unwrap();
    fake.delete(scope.clone(), "customers", doomed).unwrap();
    let products = ids("products");
    let product = &products[rng.next(products.len() as u64) as usize];
    fake.update(
        scope,
        "products",
        product,
        json!({"name": format!("renamed in round {round}")}),
    )
    .unwrap();
}

fn count(db: &TestDb, stream: &str) -> i64 {
    db.client()
        .query_one(&format!("SELECT count(*) FROM stripe.{stream}"), &[])
        .map_or(0, |r| r.get(0))
}

/// Waits until the backfill of every stream has landed.
fn wait_backfilled(fake: &FakeStripe, db: &TestDb, live: &Live) {
    let started = Instant::now();
    while STREAMS
        .iter()
        .any(|s| count(db, s) < fake.objects(Scope::test(None), s).unwrap().len() as i64)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no backfill: {}",
            live.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the source's webhook endpoint accepts connections: the run is live.
fn wait_listening(port: u16, live: &Live) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never live: {}",
            live.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|v| find_key(v, key))),
        Value::Array(a) => a.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

#[test]
fn polling_applies_creates_updates_and_deletes_made_after_the_sync_started() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source =
        json!({"rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0.25});
    let live = Live::start(&fake, &db, dir.path(), &source, &[]);
    wait_backfilled(&fake, &db, &live);
    let mut rng = Lcg(7);
    for round in 0..3 {
        mutate(&fake, &mut rng, round);
        wait_exact(&fake, &db, &live, Duration::from_secs(20));
    }
    let eof = live.stop();
    assert_eq!(eof["status"], "succeeded", "{eof}");
    assert_eq!(eof["reason"], "complete", "{eof}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert!(
        find_key(&state, "events_cursor").is_some(),
        "the checkpoint holds the events cursor: {state}"
    );
    // No webhook_url: no endpoint was made.
    assert!(
        fake.objects(Scope::test(None), "webhook_endpoints")
            .unwrap()
            .is_empty()
    );
}

/// POSTs to the source's webhook endpoint; the status code.
fn post_webhook(port: u16, body: &str, signature: Option<String>) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/webhooks"))
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        request.send().await.unwrap().status().as_u16()
    })
}

#[test]
fn webhooks_through_a_managed_endpoint_end_exact_despite_duplicates_and_reordering() {
    let fake = fake(Faults {
        webhook_duplicate_rate: 0.5,
        webhook_reorder_window_ms: 300,
        ..Default::default()
    });
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Webhooks only (no polling), hard deletes: the tombstones must hold against late updates.
    let source = json!({
        "rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0,
        "webhook_listen": format!("127.0.0.1:{port}"),
        "webhook_url": format!("http://127.0.0.1:{port}/webhooks"),
    });
    let hard = ["--destination-config", r#"{"delete_mode":"hard"}"#];
    let live = Live::start(&fake, &db, dir.path(), &source, &hard);
    wait_backfilled(&fake, &db, &live);
    let endpoints = fake
        .objects(Scope::test(None), "webhook_endpoints")
        .unwrap();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert_eq!(endpoints[0]["metadata"]["managed_by"], "stripe-sync");
    let mut rng = Lcg(11);
    for round in 0..4 {
        mutate(&fake, &mut rng, round);
    }
    wait_exact(&fake, &db, &live, Duration::from_secs(30));
    let stats = fake.stats();
    assert!(stats.webhooks_delivered > 0, "{stats:?}");

    // Forged, wrongly keyed and stale deliveries are refused, and counted.
    let event = fake.events(Scope::test(None)).unwrap()[0].to_string();
    let now = stripe_fake::real_unix_now();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    let secret = find_key(&state, "webhook_secret")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the endpoint's secret is saved: {state}"))
        .to_owned();
    let forged = format!("t={now},v1={}", "ab".repeat(32));
    let wrong_key = stripe_fake::signature_header(event.as_bytes(), "whsec_wrong", now);
    let stale = stripe_fake::signature_header(event.as_bytes(), &secret, now - 3600);
    assert_eq!(post_webhook(port, &event, Some(forged)), 401);
    assert_eq!(post_webhook(port, &event, Some(wrong_key)), 401);
    assert_eq!(post_webhook(port, &event, Some(stale)), 401);
    assert_eq!(post_webhook(port, &event, None), 401);
    let good = stripe_fake::signature_header(b"not json", &secret, now);
    assert_eq!(post_webhook(port, "not json", Some(good)), 400);
    // Signed, but not an event the source can read: refused (Stripe retries it), not lost as 200.
    let odd = r#"{"id": "evt_unreadable", "object": "event", "created": "yesterday"}"#;
    let signed_odd = stripe_fake::signature_header(odd.as_bytes(), &secret, now);
    assert_eq!(post_webhook(port, odd, Some(signed_odd)), 400);
    let signed = stripe_fake::signature_header(event.as_bytes(), &secret, now);
    assert_eq!(post_webhook(port, &event, Some(signed)), 200);

    let stderr_before_stop = live.stderr.clone();
    let eof = live.stop();
    assert_eq!(eof["status"], "succeeded", "{eof}");
    let stderr = std::fs::read_to_string(stderr_before_stop).unwrap();
    assert!(stderr.contains("webhooks_refused=6"), "{stderr}");
    assert!(
        stderr.contains("event evt_unreadable is not readable"),
        "{stderr}"
    );
    assert!(stderr.contains("webhook_events_applied="), "{stderr}");
    assert!(differences(&fake, &db).is_empty());
    let gone: i64 = db
        .client()
        .query_one("SELECT count(*) FROM stripe._tombstones", &[])
        .unwrap()
        .get(0);
    assert!(gone >= 4, "hard deletes are remembered: {gone}");

    // A second run keeps the endpoint; teardown removes it (and only it).
    fake.create(
        Scope::test(None),
        "webhook_endpoints",
        json!({"url": "https://example.com/other", "enabled_events": ["*"]}),
    )
    .unwrap();
    let again = Live::start(&fake, &db, dir.path(), &source, &hard);
    wait_listening(port, &again);
    wait_exact(&fake, &db, &again, Duration::from_secs(20));
    assert_eq!(again.stop()["status"], "succeeded");
    let teardown = Command::new(bin_path("sync-engine"))
        .args(["teardown", "--stripe-api-key", "sk_test_fake"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--source-config", &source.to_string()])
        .args(["--postgres-url", db.url(), "--schema", "stripe"])
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(teardown.status.success(), "{teardown:?}");
    let left: Vec<Value> = fake
        .objects(Scope::test(None), "webhook_endpoints")
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["url"], "https://example.com/other");
}

#[test]
fn kill_9_of_engine_source_or_destination_while_live_then_a_rerun_ends_exact() {
    let fake = fake(Faults {
        webhook_duplicate_rate: 0.2,
        webhook_reorder_window_ms: 100,
        ..Default::default()
    });
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let source = json!({
        "rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0.5,
        "webhook_listen": format!("127.0.0.1:{port}"),
        "webhook_url": format!("http://127.0.0.1:{port}/webhooks"),
        "checkpoint_interval_secs": 0.5,
    });
    let changing = AtomicBool::new(true);
    let mut kills = [0; 3];
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Lcg(3);
            let mut round = 0;
            while changing.load(Ordering::Relaxed) {
                mutate(&fake, &mut rng, round);
                round += 1;
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        let mut rng = Lcg(0x11fe);
        for round in 0..10 {
            let mut live = Live::start(&fake, &db, dir.path(), &source, &[]);
            std::thread::sleep(Duration::from_millis(800 + rng.next(2000)));
            let which = round % 3;
            let engine = live.child.id();
            let find = || match which {
                0 => Some(engine),
                1 => child_named(engine, "source-stripe"),
                _ => child_named(engine, "dest-postgres"),
            };
            // A slow machine may still be starting the pair: wait for the one to kill.
            let started = Instant::now();
            let mut target = find();
            while target.is_none() && started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(20));
                target = find();
            }
            if let Some(pid) = target
                && kill9(pid)
            {
                kills[which] += 1;
            }
            // The engine ends by itself when one of its connectors died.
            wait_for(&mut live.child, Duration::from_secs(30));
        }
        changing.store(false, Ordering::Relaxed);
    });
    assert!(
        kills.iter().all(|&k| k >= 3),
        "kills of engine, source, destination: {kills:?}"
    );
    let rerun = sync_command(&fake, &db, dir.path(), &source, &[])
        .output()
        .unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let diff = differences(&fake, &db);
    assert!(
        diff.is_empty(),
        "{} differences: {:?}\n{}",
        diff.len(),
        &diff[..diff.len().min(5)],
        history(&fake, &db, &diff[0])
    );
}

#[test]
fn live_through_serve_applies_changes_and_stops_when_the_client_goes() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(bin_path("sync-engine"))
        .args(["serve", "--port", "0"])
        .env_remove("SYNC_ENGINE_API_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let source =
        json!({"rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0.25});
    let live = Live::start(&fake, &db, dir.path(), &source, &["--engine-url", &url]);
    wait_backfilled(&fake, &db, &live);
    mutate(&fake, &mut Lcg(5), 0);
    wait_exact(&fake, &db, &live, Duration::from_secs(20));
    let connectors = test_support::process::children_of(server.id());
    assert_eq!(connectors.len(), 2, "the server runs both connectors");
    // The client goes away: the server stops the run.
    let mut live = live;
    assert!(terminate(live.child.id()));
    wait_for(&mut live.child, Duration::from_secs(10));
    let started = Instant::now();
    while connectors
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server's connectors still run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert!(find_key(&state, "events_cursor").is_some(), "{state}");
    let _ = server.kill();
    let _ = server.wait();
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat[stat.rfind(')').unwrap_or(0)..].starts_with(") Z"))
        .unwrap_or(true)
}

/// The account each customer row named `name` is stamped with.
fn rows_named(db: &TestDb, name: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT _account_id FROM stripe.customers WHERE name = $1",
            &[&name],
        )
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

#[test]
fn webhooks_of_another_account_or_mode_are_refused_never_stamped_with_this_account() {
    let port = free_port();
    let secret = "whsec_origin_test";
    // The simulator's own endpoint gets every event, of every account and mode, as a
    // platform's Connect endpoint or a secret shared by mistake would.
    let mut webhook =
        stripe_fake::WebhookConfig::new(format!("http://127.0.0.1:{port}/webhooks"), secret);
    webhook.max_attempts = 1;
    let fake = FakeStripe::start(Config {
        seed: 29,
        scale: 0.0,
        objects: vec![("customers".into(), 20), ("products".into(), 5)],
        accounts: 1,
        webhook: Some(webhook),
        ..Default::default()
    })
    .expect("the simulator starts");
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source = json!({
        "rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0,
        "webhook_listen": format!("127.0.0.1:{port}"), "webhook_secret": secret,
    });
    let live = Live::start(&fake, &db, dir.path(), &source, &[]);
    wait_backfilled(&fake, &db, &live);
    wait_listening(port, &live);

    let connected = fake.connected_accounts()[0].clone();
    let first = |scope: Scope| -> String {
        fake.objects(scope, "customers").unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let theirs = first(Scope::test(Some(&connected)));
    fake.update(
        Scope::test(Some(&connected)),
        "customers",
        &theirs,
        json!({"name": "Connected Shop's"}),
    )
    .unwrap();
    let live_mode = first(Scope::live(None));
    fake.update(
        Scope::live(None),
        "customers",
        &live_mode,
        json!({"name": "Live mode's"}),
    )
    .unwrap();
    // Deliveries go out in order: once this one landed, the two before it were answered.
    let ours = first(Scope::test(None));
    fake.update(
        Scope::test(None),
        "customers",
        &ours,
        json!({"name": "The platform's"}),
    )
    .unwrap();
    let started = Instant::now();
    while rows_named(&db, "The platform's").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the platform's own webhook never landed: {}",
            live.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let platform = fake.platform_account().to_owned();
    assert_eq!(rows_named(&db, "The platform's"), vec![platform.clone()]);
    assert_eq!(
        rows_named(&db, "Connected Shop's"),
        Vec::<String>::new(),
        "a connected account's event became a row of this account"
    );
    assert_eq!(
        rows_named(&db, "Live mode's"),
        Vec::<String>::new(),
        "a live-mode event became a row of this test-mode sync"
    );
    let stats = fake.stats();
    assert_eq!(
        (stats.webhooks_delivered, stats.webhook_failures),
        (1, 2),
        "both foreign deliveries are refused (Stripe shows them failed): {stats:?}"
    );
    let event_of = |scope: Scope, name: &str| -> String {
        fake.events(scope)
            .unwrap()
            .iter()
            .find(|e| e["data"]["object"]["name"] == name)
            .and_then(|e| e["id"].as_str())
            .unwrap()
            .to_owned()
    };
    let their_event = event_of(Scope::test(Some(&connected)), "Connected Shop's");
    let live_event = event_of(Scope::live(None), "Live mode's");
    let stderr_path = live.stderr.clone();
    let eof = live.stop();
    assert_eq!(eof["status"], "succeeded", "{eof}");
    let stderr = std::fs::read_to_string(stderr_path).unwrap();
    assert!(stderr.contains("webhooks_refused=2"), "{stderr}");
    assert!(
        stderr.contains(&format!("event {their_event} is of account {connected}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("event {live_event} is a live-mode event")),
        "{stderr}"
    );
}

#[test]
fn a_webhook_body_over_the_limit_is_answered_413_logged_with_its_size_and_counted() {
    let fake = FakeStripe::start(Config {
        seed: 31,
        scale: 0.0,
        objects: vec![("customers".into(), 3), ("products".into(), 1)],
        ..Default::default()
    })
    .expect("the simulator starts");
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = "whsec_size_test";
    let source = json!({
        "rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0,
        "webhook_listen": format!("127.0.0.1:{port}"), "webhook_secret": secret,
    });
    let live = Live::start(&fake, &db, dir.path(), &source, &[]);
    wait_backfilled(&fake, &db, &live);
    wait_listening(port, &live);
    // A signed event padded past 2 MiB: Stripe would see the 413 and retry, in vain.
    let padding = "x".repeat(3 * 1024 * 1024);
    let body = json!({"id": "evt_huge", "object": "event", "type": "customer.updated",
        "created": fake.now(), "livemode": false, "data": {"object": {"id": "cus_x", "object": "customer", "padding": padding}}})
    .to_string();
    let signed =
        stripe_fake::signature_header(body.as_bytes(), secret, stripe_fake::real_unix_now());
    assert_eq!(post_webhook(port, &body, Some(signed)), 413);
    let stderr_path = live.stderr.clone();
    let eof = live.stop();
    assert_eq!(eof["status"], "succeeded", "{eof}");
    let stderr = std::fs::read_to_string(stderr_path).unwrap();
    assert!(
        stderr.contains(&format!(
            "the body is {} bytes, more than the 2097152 bytes (2 MiB) a webhook may have",
            body.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("webhooks_refused=1"), "{stderr}");
}

#[test]
fn live_ends_promptly_naming_the_cause_when_the_destination_database_stops_taking_connections() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source =
        json!({"rate_limit": 1000, "endpoint_rate_limit": 500, "poll_interval_secs": 0.25});
    let mut live = Live::start(&fake, &db, dir.path(), &source, &[]);
    wait_backfilled(&fake, &db, &live);
    // The destination's own throwaway database stops taking connections and loses those it
    // had (as a database being dropped or moved would); nothing else on the server is touched.
    // The test database is dropped WITH (FORCE) at the end, whatever its state.
    let mut admin =
        postgres::Client::connect(&test_support::server_url(), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
            db.name()
        ))
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name()],
        )
        .unwrap();
    let cut = Instant::now();
    // Changes to write: the destination finds out on its next flush.
    mutate(&fake, &mut Lcg(13), 0);
    let status = wait_for(&mut live.child, Duration::from_secs(120));
    let took = cut.elapsed();
    let stderr = live.stderr();
    assert!(
        took < Duration::from_secs(60),
        "the run went on {took:?} after its destination failed (status {status:?}):\n{stderr}"
    );
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "database \"{}\" is not currently accepting connections",
            db.name()
        )),
        "the destination's failure does not name the cause:\n{stderr}"
    );
}

#[test]
fn live_ends_promptly_when_the_destination_fails_a_stream_it_cannot_write() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let source = json!({"rate_limit": 1000, "endpoint_rate_limit": 500,
        "poll_interval_secs": 0.25, "checkpoint_interval_secs": 0.5});
    let quick_lock_timeout = ["--destination-config", r#"{"lock_timeout_ms": 500}"#];
    let mut live = Live::start(&fake, &db, dir.path(), &source, &quick_lock_timeout);
    wait_backfilled(&fake, &db, &live);
    // Another session holds the customers table: the destination's next load of it waits
    // past lock_timeout_ms and fails that stream (a statement Postgres refuses, not an outage).
    let mut holder = db.client();
    let mut lock = holder.transaction().unwrap();
    lock.batch_execute("LOCK TABLE stripe.customers IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let failed_at = Instant::now();
    mutate(&fake, &mut Lcg(17), 0);
    let status = wait_for(&mut live.child, Duration::from_secs(120));
    let took = failed_at.elapsed();
    lock.rollback().unwrap();
    let stderr = live.stderr();
    // No later checkpoint can be committed (a global state covers every stream): running on
    // until --connector-timeout would only hide that.
    assert!(
        took < Duration::from_secs(60),
        "the run went on {took:?} after the destination failed a stream (status {status:?}):\n{stderr}"
    );
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("another session holds a lock on the table"),
        "{stderr}"
    );
}
