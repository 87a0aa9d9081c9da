//! `stripe-sync start --foreground` in a temporary data directory, for real: the Temporal dev
//! server, `sync-service serve` and `worker` come up; a pipeline created through the API reaches
//! `ready` with the simulator's rows; `status` reports it; `stop` then `start` keeps it and its
//! workflow.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::free_port;
use test_support::{TestDb, bin_path};

fn stripe_sync(args: &[&str]) -> Output {
    Command::new(bin_path("stripe-sync"))
        .args(args)
        .env_remove("SYNC_SERVICE_DATABASE_URL")
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .output()
        .unwrap()
}

fn start(dir: &Path, db: &TestDb, port: u16, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin_path("stripe-sync"))
        .args(["start", "--foreground", "--data-dir"])
        .arg(dir)
        .args(["--database-url", db.url(), "--port", &port.to_string()])
        .arg("--temporal")
        .arg(test_support::temporal::cli_path())
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn status(dir: &Path) -> (Option<i32>, Value) {
    let out = stripe_sync(&["status", "--data-dir", dir.to_str().unwrap()]);
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), value)
}

fn wait(what: &str, timeout: Duration, log: &Path, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "waited {timeout:?} for {what}; supervisor:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        (code, response.json().await.unwrap_or(Value::Null))
    })
}

fn row_count(db: &TestDb) -> i64 {
    db.client()
        .query_one("SELECT count(*) FROM bundle.customers", &[])
        .map(|r| r.get(0))
        .unwrap_or(-1)
}

#[test]
fn start_foreground_runs_a_pipeline_to_ready_and_stop_then_start_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("supervisor.log");
    let db = TestDb::new();
    let fake = FakeStripe::start(Config {
        seed: 3,
        scale: 0.0,
        objects: vec![("customers".into(), 200)],
        keys: vec!["sk_test_bundle".to_owned()],
        ..Default::default()
    })
    .unwrap();
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");

    // Nothing yet.
    assert_eq!(status(&data).0, Some(3));
    let mut supervisor = start(&data, &db, port, &log);
    wait(
        "the bundle to serve",
        Duration::from_secs(120),
        &log,
        || status(&data).0 == Some(0),
    );
    // A second start for the same data directory is refused.
    let again = stripe_sync(&[
        "start",
        "--foreground",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already runs"));

    let body = json!({
        "id": "bundle-1",
        "source": {"config": {"api_key": "sk_test_bundle", "base_url": fake.base_url()}},
        "destination": {"config": {"url": db.url(), "schema": "bundle"}},
        "streams": ["customers"],
    });
    let (code, created) = call("POST", &format!("{api}/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    let customers = fake.objects(Scope::test(None), "customers").unwrap().len() as i64;
    wait(
        "the pipeline to be ready",
        Duration::from_secs(120),
        &log,
        || call("GET", &format!("{api}/pipelines/bundle-1"), None).1["status"] == "ready",
    );
    assert_eq!(row_count(&db), customers);
    let (code, state) = status(&data);
    assert_eq!(code, Some(0), "{state}");
    assert_eq!(state["pipelines"], 1, "{state}");
    assert_eq!(state["api"], api.as_str(), "{state}");

    // Stop: the supervisor ends cleanly, and status says so.
    let stopped = stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let exit = supervisor.wait().unwrap();
    assert!(exit.success(), "the supervisor exited {exit}");
    let (code, state) = status(&data);
    assert_eq!(
        (code, &state["running"]),
        (Some(3), &json!(false)),
        "{state}"
    );

    // Start again (the settings are kept: no flags but the data directory and the CLI): the
    // pipeline is there and its workflow still works.
    let log2 = dir.path().join("supervisor-2.log");
    let mut supervisor = Command::new(bin_path("stripe-sync"))
        .args([
            "start",
            "--foreground",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env_remove("SYNC_SERVICE_DATABASE_URL")
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log2).unwrap())
        .spawn()
        .unwrap();
    wait(
        "the bundle to serve again",
        Duration::from_secs(120),
        &log2,
        || status(&data).0 == Some(0),
    );
    assert_eq!(
        call("GET", &format!("{api}/pipelines/bundle-1"), None).1["status"],
        "ready"
    );
    fake.create(
        Scope::test(None),
        "customers",
        json!({"email": "after-restart@example.com"}),
    )
    .unwrap();
    assert_eq!(
        call("POST", &format!("{api}/pipelines/bundle-1/sync"), None).0,
        202
    );
    wait("the new customer", Duration::from_secs(60), &log2, || {
        row_count(&db) == customers + 1
    });
    let logs = stripe_sync(&["logs", "--data-dir", data.to_str().unwrap(), "--lines", "5"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("worker.log"));
    assert!(
        stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()])
            .status
            .success()
    );
    assert!(supervisor.wait().unwrap().success());
}
