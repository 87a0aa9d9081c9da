//! What the service tests and the service bench share: a dev server, the real `sync-service`
//! worker and server, the simulator and a Postgres, and HTTP helpers.
// Each user takes what it needs.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::free_port;
use test_support::temporal::DevServer;
use test_support::{TestDb, bin_path};

pub const WEBHOOK_SECRET: &str = "whsec_service_test";

/// POSTs a Stripe event to the service's webhook route, signed with `secret`.
pub fn post_webhook(base: &str, pipeline: &str, event: &Value, secret: &str) -> (u16, Value) {
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
pub fn silent_change(fake: &FakeStripe, customer: &str, name: &str, event_id: &str) -> Value {
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
pub struct Process {
    pub child: Child,
    pub log: tempfile::NamedTempFile,
}

impl Process {
    pub fn start(args: &[&str]) -> Process {
        Self::start_env(args, &[])
    }

    /// `sync-service ARGS` with these environment variables set (`None`: removed).
    pub fn start_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Process {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(bin_path("sync-service"));
        command
            .args(args)
            .env_remove("SYNC_SERVICE_DATABASE_URL")
            .env_remove("TEMPORAL_ADDRESS")
            .env("RUST_LOG", "info");
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        Process { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `sync-service migrate` on a test database.
pub fn migrate(db: &TestDb) {
    let migrate = Command::new(bin_path("sync-service"))
        .args(["migrate", "--database-url", db.url()])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
}

/// Everything one test runs against.
pub struct Service {
    pub temporal: DevServer,
    pub db: TestDb,
    pub fake: FakeStripe,
    pub worker: Process,
    pub serve: Process,
    pub base: String,
    pub task_queue: String,
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
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
pub fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    call_accepting(method, url, body, None)
}

/// One HTTP call accepting only JSON, as this API's own client does (routes that answer NDJSON
/// otherwise answer this API's JSON): the status and the answer.
pub fn call_json(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    call_accepting(method, url, body, Some("application/json"))
}

fn call_accepting(
    method: &str,
    url: &str,
    body: Option<&Value>,
    accept: Option<&str>,
) -> (u16, Value) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
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
    pub fn start(step_secs: &str, customers: usize) -> Service {
        Self::start_with(step_secs, customers, &[], &[])
    }

    /// Also passes `worker_args` to the worker; the simulator also takes `extra_keys`.
    pub fn start_with(
        step_secs: &str,
        customers: usize,
        worker_args: &[&str],
        extra_keys: &[String],
    ) -> Service {
        Self::start_full(step_secs, customers, worker_args, extra_keys, &[], 2)
    }

    /// Also passes `serve_args` to the server; the simulator has `accounts` connected
    /// accounts, each with the same number of customers.
    pub fn start_full(
        step_secs: &str,
        customers: usize,
        worker_args: &[&str],
        extra_keys: &[String],
        serve_args: &[&str],
        accounts: usize,
    ) -> Service {
        let temporal = DevServer::start();
        let db = TestDb::new();
        let fake = FakeStripe::start(Config {
            seed: 11,
            scale: 0.0,
            objects: vec![("customers".into(), customers), ("products".into(), 60)],
            accounts,
            keys: ["sk_test_service", "sk_test_rotated"]
                .iter()
                .map(|k| k.to_string())
                .chain(extra_keys.iter().cloned())
                .collect(),
            ..Default::default()
        })
        .unwrap();
        migrate(&db);
        let task_queue = format!("test-{}", free_port());
        let worker = Self::worker_with(&temporal, &db, &task_queue, step_secs, worker_args);
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let task_queue_live = format!("{task_queue}-live");
        let temporal_address = temporal.address();
        let mut args: Vec<&str> = vec![
            "serve",
            "--database-url",
            db.url(),
            "--temporal-address",
            &temporal_address,
            "--task-queue",
            &task_queue,
            "--live-task-queue",
            &task_queue_live,
            "--listen",
            &listen,
            "--poll-secs",
            "600",
            "--reconcile-secs",
            "0",
            "--retry-secs",
            "2",
        ];
        args.extend_from_slice(serve_args);
        let serve = Process::start(&args);
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

    pub fn worker(temporal: &DevServer, db: &TestDb, task_queue: &str, step_secs: &str) -> Process {
        Self::worker_with(temporal, db, task_queue, step_secs, &[])
    }

    pub fn worker_with(
        temporal: &DevServer,
        db: &TestDb,
        task_queue: &str,
        step_secs: &str,
        extra: &[&str],
    ) -> Process {
        let live = format!("{task_queue}-live");
        let address = temporal.address();
        let mut args = vec![
            "worker",
            "--database-url",
            db.url(),
            "--temporal-address",
            &address,
            "--task-queue",
            task_queue,
            "--live-task-queue",
            &live,
            "--step-secs",
            step_secs,
        ];
        args.extend_from_slice(extra);
        Process::start(&args)
    }

    pub fn wait(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pipeline_body(&self, id: &str, schema: &str) -> Value {
        json!({
            "id": id,
            "source": {"name": "stripe", "config": {"api_key": "sk_test_service", "base_url": self.fake.base_url(), "webhook_secret": WEBHOOK_SECRET}},
            "destination": {"name": "postgres", "config": {"url": self.db.url(), "schema": schema}},
            "streams": ["customers", "products"],
        })
    }

    pub fn status(&self, id: &str) -> Value {
        call("GET", &self.url(&format!("/pipelines/{id}")), None).1
    }

    /// Whether the control database still holds the pipeline (a deleted one stays until its
    /// workflow tore it down).
    pub fn stored(&self, id: &str) -> bool {
        self.db
            .client()
            .query_opt("SELECT 1 FROM sync_service.pipelines WHERE id = $1", &[&id])
            .unwrap()
            .is_some()
    }

    /// Waits until a deleted pipeline is torn down and forgotten.
    pub fn wait_forgotten(&self, id: &str, timeout: Duration) {
        self.wait(&format!("pipeline {id} torn down"), timeout, || {
            !self.stored(id)
        });
    }

    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        self.wait(&format!("pipeline {id} to be {want}"), timeout, || {
            self.status(id)["status"] == want
        });
    }

    /// Ids of the rows not deleted in `schema.stream`, sorted.
    pub fn row_ids(&self, schema: &str, stream: &str) -> Vec<String> {
        let mut client = self.db.client();
        client
            .query(
                &format!("SELECT id FROM {schema}.{stream} WHERE NOT _deleted ORDER BY id"),
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default()
    }

    pub fn object_ids(&self, stream: &str) -> Vec<String> {
        self.object_ids_in(stream, None)
    }

    /// The ids of a stream's objects in a connected account (`None`: the platform).
    pub fn object_ids_in(&self, stream: &str, account: Option<&str>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .fake
            .objects(Scope::test(account), stream)
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    /// Saves a workflow's history for `tests/replay.rs` (`id` is a pipeline's or a child's).
    pub fn record_history(&self, id: &str) {
        let args = sync_service::temporal::TemporalArgs {
            address: self.temporal.address(),
            namespace: "default".to_owned(),
            task_queue: self.task_queue.clone(),
            live_task_queue: format!("{}-live", self.task_queue),
        };
        let json = runtime().block_on(async {
            let temporal = sync_service::temporal::Temporal::connect(&args)
                .await
                .unwrap();
            temporal.history_json(id).await.unwrap()
        });
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("histories")
            .join(format!("{id}.json"));
        std::fs::write(&path, json).unwrap();
    }

    /// A customer's `name` column.
    pub fn name_of(&self, schema: &str, id: &str) -> Option<String> {
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

    pub fn assert_exact(&self, schema: &str) {
        self.assert_exact_in(schema, None)
    }

    /// `assert_exact` for a pipeline of a connected account.
    pub fn assert_exact_in(&self, schema: &str, account: Option<&str>) {
        for stream in ["customers", "products"] {
            assert_eq!(
                self.row_ids(schema, stream),
                self.object_ids_in(stream, account),
                "{schema}.{stream} differs from the simulator"
            );
        }
    }
}
