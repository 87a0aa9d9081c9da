//! sync-service end to end: a real Temporal dev server, the real `sync-service` worker and
//! REST server as child processes, the Stripe simulator and a real Postgres.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Scope};
use test_support::process::free_port;
use test_support::temporal::DevServer;
use test_support::{TestDb, bin_path};

const WEBHOOK_SECRET: &str = "whsec_service_test";

/// POSTs a Stripe event to the service's webhook route, signed with `secret`.
fn post_webhook(base: &str, pipeline: &str, event: &Value, secret: &str) -> (u16, Value) {
    let body = event.to_string();
    let header =
        stripe_fake::signature_header(body.as_bytes(), secret, stripe_fake::real_unix_now());
    runtime().block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{base}/webhooks/{pipeline}"))
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

/// Changes a customer without an event of its own; the event a webhook would carry for it.
fn silent_change(fake: &FakeStripe, customer: &str, name: &str, event_id: &str) -> Value {
    let changed = fake
        .change_silently(
            Scope::test(None),
            "customers",
            customer,
            json!({"name": name}),
        )
        .unwrap();
    json!({
        "id": event_id, "object": "event", "type": "customer.updated",
        "created": fake.now(), "livemode": false, "data": {"object": changed},
    })
}

/// A child process killed when dropped; its stderr kept in a file.
struct Process {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(bin_path("sync-service"))
            .args(args)
            .env_remove("SYNC_SERVICE_DATABASE_URL")
            .env_remove("TEMPORAL_ADDRESS")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        Process { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything one test runs against.
struct Service {
    temporal: DevServer,
    db: TestDb,
    fake: FakeStripe,
    worker: Process,
    serve: Process,
    base: String,
    task_queue: String,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One HTTP call: the status and the JSON answer.
fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

impl Service {
    fn start(step_secs: &str, customers: usize) -> Service {
        let temporal = DevServer::start();
        let db = TestDb::new();
        let fake = FakeStripe::start(Config {
            seed: 11,
            scale: 0.0,
            objects: vec![("customers".into(), customers), ("products".into(), 60)],
            keys: vec!["sk_test_service".to_owned(), "sk_test_rotated".to_owned()],
            ..Default::default()
        })
        .unwrap();
        let migrate = Command::new(bin_path("sync-service"))
            .args(["migrate", "--database-url", db.url()])
            .output()
            .unwrap();
        assert!(
            migrate.status.success(),
            "{}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        let task_queue = format!("test-{}", free_port());
        let worker = Self::worker(&temporal, &db, &task_queue, step_secs);
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let serve = Process::start(&[
            "serve",
            "--database-url",
            db.url(),
            "--temporal-address",
            &temporal.address(),
            "--task-queue",
            &task_queue,
            "--listen",
            &listen,
            "--reconcile-secs",
            "600",
            "--retry-secs",
            "2",
        ]);
        let base = format!("http://{listen}");
        let service = Service {
            temporal,
            db,
            fake,
            worker,
            serve,
            base,
            task_queue,
        };
        service.wait("serve to answer /health", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        service
    }

    fn worker(temporal: &DevServer, db: &TestDb, task_queue: &str, step_secs: &str) -> Process {
        Process::start(&[
            "worker",
            "--database-url",
            db.url(),
            "--temporal-address",
            &temporal.address(),
            "--task-queue",
            task_queue,
            "--step-secs",
            step_secs,
        ])
    }

    fn wait(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < timeout,
                "waited {timeout:?} for {what}\n--- worker:\n{}\n--- serve:\n{}",
                self.worker.log_text(),
                self.serve.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn pipeline_body(&self, id: &str, schema: &str) -> Value {
        json!({
            "id": id,
            "source": {"name": "stripe", "config": {"api_key": "sk_test_service", "base_url": self.fake.base_url(), "webhook_secret": WEBHOOK_SECRET}},
            "destination": {"name": "postgres", "config": {"url": self.db.url(), "schema": schema}},
            "streams": ["customers", "products"],
        })
    }

    fn status(&self, id: &str) -> Value {
        call("GET", &self.url(&format!("/pipelines/{id}")), None).1
    }

    fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        self.wait(&format!("pipeline {id} to be {want}"), timeout, || {
            self.status(id)["status"] == want
        });
    }

    /// Ids of the rows not deleted in `schema.stream`, sorted.
    fn row_ids(&self, schema: &str, stream: &str) -> Vec<String> {
        let mut client = self.db.client();
        client
            .query(
                &format!("SELECT id FROM {schema}.{stream} WHERE NOT _deleted ORDER BY id"),
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default()
    }

    fn object_ids(&self, stream: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .fake
            .objects(Scope::test(None), stream)
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// Saves the workflow's history for `tests/replay.rs`.
    fn record_history(&self, id: &str) {
        let args = sync_service::temporal::TemporalArgs {
            address: self.temporal.address(),
            namespace: "default".to_owned(),
            task_queue: self.task_queue.clone(),
        };
        let json = runtime().block_on(async {
            let temporal = sync_service::temporal::Temporal::connect(&args)
                .await
                .unwrap();
            temporal.history_json(id).await.unwrap()
        });
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("histories")
            .join(format!("pipeline-{id}.json"));
        std::fs::write(&path, json).unwrap();
    }

    /// A customer's `name` column.
    fn name_of(&self, schema: &str, id: &str) -> Option<String> {
        self.db
            .client()
            .query_opt(
                &format!("SELECT name FROM {schema}.customers WHERE id = $1"),
                &[&id],
            )
            .ok()
            .flatten()
            .and_then(|r| r.get(0))
    }

    fn assert_exact(&self, schema: &str) {
        for stream in ["customers", "products"] {
            assert_eq!(
                self.row_ids(schema, stream),
                self.object_ids(stream),
                "{schema}.{stream} differs from the simulator"
            );
        }
    }
}

#[test]
fn create_backfills_to_ready_then_pause_resume_sync_and_delete() {
    let service = Service::start("1", 400);

    // The document is valid and every route it lists is served.
    let (code, document) = call("GET", &service.url("/openapi.json"), None);
    assert_eq!(code, 200);
    test_support::openapi::assert_valid(&document);
    let paths = document["paths"].as_object().unwrap();
    let mut listed = 0;
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            listed += 1;
            let url = service.url(&path.replace("{id}", "nope"));
            let (code, answer) = call(&method.to_uppercase(), &url, Some(&json!({})));
            assert!(
                ![405].contains(&code),
                "{method} {path} answered {code}: {answer}"
            );
            if !path.contains("{id}") {
                assert_ne!(code, 404, "{method} {path}");
            }
        }
    }
    assert_eq!(listed, sync_service::openapi::ROUTES.len());

    // Bad requests name the field and create nothing.
    let mut bad = service.pipeline_body("Bad Id", "x");
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&bad));
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("id:"),
        "{answer}"
    );
    bad = service.pipeline_body("acct-x", "x");
    bad["source"]["config"]["api_key"] = json!("sk_test_unknown123");
    let (code, answer) = call("POST", &service.url("/pipelines"), Some(&bad));
    assert_eq!(code, 400, "check must refuse an unknown key: {answer}");
    assert!(
        !answer.to_string().contains("sk_test_unknown123"),
        "{answer}"
    );
    assert_eq!(call("GET", &service.url("/pipelines/acct-x"), None).0, 404);

    // Create: the answer redacts the key; the pipeline backfills to ready, rows exact.
    let body = service.pipeline_body("acct-1", "acct1");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["source"]["config"]["api_key"], "***");
    assert!(!created.to_string().contains("sk_test_service"));
    let (code, _) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 409, "the same id twice");
    // The same through the CLI client.
    let client = |args: &[&str]| {
        Command::new(bin_path("sync-service"))
            .args(["pipelines", "--service-url", &service.base])
            .args(args)
            .env_remove("SERVICE_URL")
            .output()
            .unwrap()
    };
    let listed = client(&["list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["data"][0]["id"], "acct-1");
    assert_eq!(listed["data"][0]["source"]["config"]["api_key"], "***");
    let missing = client(&["get", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    service.wait_status("acct-1", "ready", Duration::from_secs(240));
    service.assert_exact("acct1");
    let (_, runs) = call("GET", &service.url("/pipelines/acct-1/runs"), None);
    let runs = runs["data"].as_array().unwrap().clone();
    assert!(
        runs.iter().any(|r| r["status"] == "succeeded"),
        "runs: {runs:?}"
    );

    // A change, then a sync request: the new customer arrives through the events path.
    let scope = Scope::test(None);
    let new = service
        .fake
        .create(
            scope.clone(),
            "customers",
            json!({"email": "late@example.com"}),
        )
        .unwrap();
    let new_id = new["id"].as_str().unwrap().to_owned();
    let (code, _) = call("POST", &service.url("/pipelines/acct-1/sync"), None);
    assert_eq!(code, 202);
    service.wait(
        "the new customer to arrive",
        Duration::from_secs(60),
        || service.row_ids("acct1", "customers").contains(&new_id),
    );

    // A webhook: verified, kept once, applied. The change emits no event of its own, so only
    // the webhook can bring it.
    let event = silent_change(
        &service.fake,
        &new_id,
        "Via Webhook",
        "evt_service_webhook_1",
    );
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, "whsec_wrong");
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, WEBHOOK_SECRET);
    assert_eq!(
        (code, &answer["duplicate"]),
        (200, &json!(false)),
        "{answer}"
    );
    let (code, answer) = post_webhook(&service.base, "acct-1", &event, WEBHOOK_SECRET);
    assert_eq!(
        (code, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
    service.wait(
        "the webhook's change to arrive",
        Duration::from_secs(60),
        || service.name_of("acct1", &new_id).as_deref() == Some("Via Webhook"),
    );
    let applied: i64 = service
        .db
        .client()
        .query_one(
            "SELECT count(*) FROM sync_service.webhook_inbox WHERE applied_at IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(applied, 1, "the event is kept once and applied");

    // Pause and resume take effect within 30 s.
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-1"),
        Some(&json!({"status": "paused"})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-1", "paused", Duration::from_secs(30));
    let (code, _) = call(
        "PATCH",
        &service.url("/pipelines/acct-1"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(code, 200);
    service.wait_status("acct-1", "ready", Duration::from_secs(60));
    service.assert_exact("acct1");

    // Delete: torn down and forgotten.
    let (code, _) = call("DELETE", &service.url("/pipelines/acct-1"), None);
    assert_eq!(code, 202);
    service.wait("the pipeline to be gone", Duration::from_secs(30), || {
        call("GET", &service.url("/pipelines/acct-1"), None).0 == 404
    });
    if std::env::var_os("RECORD_HISTORIES").is_some() {
        service.record_history("acct-1");
    }
}

#[test]
fn kill_9_of_the_worker_mid_backfill_then_a_new_worker_ends_exact_and_a_revoked_key_recovers_by_patch()
 {
    let mut service = Service::start("1", 4000);
    // Slow answers, so the backfill spans many one-second steps.
    service
        .fake
        .set_faults(Faults {
            latency: Some(stripe_fake::Latency {
                min_ms: 250,
                max_ms: 250,
            }),
            ..Faults::default()
        })
        .unwrap();
    let body = service.pipeline_body("acct-2", "acct2");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    // Kill the worker once a few steps have saved checkpoints, in the middle of the backfill.
    service.wait("three saved steps", Duration::from_secs(120), || {
        let (_, runs) = call("GET", &service.url("/pipelines/acct-2/runs"), None);
        runs["data"].as_array().map_or(0, |r| {
            r.iter().filter(|r| r["states"].as_i64() > Some(0)).count()
        }) >= 3
    });
    assert_eq!(service.status("acct-2")["status"], "backfilling");
    // Webhooks during the backfill: kept, applied, and their changes (made without events of
    // their own) in the rows at the end.
    let changed_ids: Vec<String> = service
        .object_ids("customers")
        .into_iter()
        .take(3)
        .collect();
    for (i, id) in changed_ids.iter().enumerate() {
        let name = format!("hooked {i}");
        let event = silent_change(
            &service.fake,
            id,
            &name,
            &format!("evt_during_backfill_{i}"),
        );
        let (code, answer) = post_webhook(&service.base, "acct-2", &event, WEBHOOK_SECRET);
        assert_eq!(code, 200, "{answer}");
    }
    let pid = service.worker.child.id();
    // SIGKILL: no chance to stop cleanly.
    test_support::process::signal(pid, 9);
    let _ = service.worker.child.wait();
    service.worker = Service::worker(&service.temporal, &service.db, &service.task_queue, "1");
    service.wait_status("acct-2", "ready", Duration::from_secs(240));
    service.assert_exact("acct2");
    for (i, id) in changed_ids.iter().enumerate() {
        let name = service.name_of("acct2", id);
        assert_eq!(
            name.as_deref(),
            Some(format!("hooked {i}").as_str()),
            "{id}"
        );
    }
    let pending: i64 = service
        .db
        .client()
        .query_one(
            "SELECT count(*) FROM sync_service.webhook_inbox WHERE applied_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        pending, 0,
        "every webhook event of the backfill was applied"
    );

    // The key is revoked: the next step fails as a config error; a PATCH with a new key recovers.
    service
        .fake
        .set_faults(Faults {
            revoked_keys: vec!["sk_test_service".to_owned()],
            ..Faults::default()
        })
        .unwrap();
    service
        .fake
        .create(
            Scope::test(None),
            "customers",
            json!({"email": "after@example.com"}),
        )
        .unwrap();
    assert_eq!(
        call("POST", &service.url("/pipelines/acct-2/sync"), None).0,
        202
    );
    service.wait_status("acct-2", "error", Duration::from_secs(60));
    let failed = service.status("acct-2");
    assert_eq!(failed["failure_type"], "config_error", "{failed}");
    assert!(!failed.to_string().contains("sk_test_service"), "{failed}");
    let (code, answer) = call(
        "PATCH",
        &service.url("/pipelines/acct-2"),
        Some(&json!({"source": {"config": {"api_key": "sk_test_rotated"}}})),
    );
    assert_eq!(code, 200, "{answer}");
    service.wait_status("acct-2", "ready", Duration::from_secs(60));
    service.assert_exact("acct2");
}

#[test]
fn temporal_down_at_webhook_time_answers_503_and_loses_nothing_once_it_returns() {
    let mut service = Service::start("1", 100);
    let body = service.pipeline_body("acct-3", "acct3");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    service.wait_status("acct-3", "ready", Duration::from_secs(120));

    let id = service.object_ids("customers")[0].clone();
    let event = silent_change(
        &service.fake,
        &id,
        "While Temporal Was Down",
        "evt_service_down_1",
    );
    service.temporal.kill();
    let (code, answer) = post_webhook(&service.base, "acct-3", &event, WEBHOOK_SECRET);
    assert_eq!(code, 503, "{answer}");
    let kept: i64 = service
        .db
        .client()
        .query_one("SELECT count(*) FROM sync_service.webhook_inbox", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "the event is durable before the 503");

    service.temporal.restart();
    // Stripe delivers again until it gets a 200.
    service.wait(
        "a 200 once Temporal is back",
        Duration::from_secs(90),
        || post_webhook(&service.base, "acct-3", &event, WEBHOOK_SECRET).0 == 200,
    );
    service.wait("the change to arrive", Duration::from_secs(90), || {
        service.name_of("acct3", &id).as_deref() == Some("While Temporal Was Down")
    });
    service.assert_exact("acct3");
}
