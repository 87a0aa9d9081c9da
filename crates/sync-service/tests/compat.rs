//! The reference's sync-service commands and REST requests, sent as its documentation and its
//! docker test write them (hosts, ports, keys and the simulator's base URL substituted),
//! against the real binaries: a Temporal dev server, `sync-service serve`, `webhook` and
//! `worker` started with the reference's flags, the simulator and a real Postgres.

mod common;

use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use common::{Process, WEBHOOK_SECRET, call, migrate, post_webhook, runtime, silent_change};
use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::free_port;
use test_support::temporal::DevServer;
use test_support::{TestDb, bin_path};

const KEY: &str = "sk_test_reference";

/// The processes of the reference's local development, as its docs start them:
/// `serve --port`, `webhook --port`, `worker`, each with `--temporal-address` and
/// `--temporal-task-queue`; the control database found from the environment.
struct Reference {
    /// Kept running for the others (dropped last).
    _temporal: DevServer,
    db: TestDb,
    fake: FakeStripe,
    worker: Process,
    serve: Process,
    webhook: Process,
    api: String,
    webhooks: String,
}

impl Reference {
    fn start() -> Reference {
        let temporal = DevServer::start();
        let db = TestDb::new();
        let fake = FakeStripe::start(Config {
            seed: 7,
            scale: 0.0,
            objects: vec![("customers".into(), 150), ("products".into(), 60)],
            keys: vec![KEY.to_owned()],
            ..Default::default()
        })
        .unwrap();
        migrate(&db);
        let address = temporal.address();
        let queue = format!("reference-{}", free_port());
        // The worker finds the database as psql would: libpq's PG* variables.
        let pg = postgres::Config::from_str(db.url()).unwrap();
        let host = match &pg.get_hosts()[0] {
            postgres::config::Host::Tcp(host) => host.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432).to_string();
        let user = pg.get_user().unwrap_or("postgres").to_owned();
        let password = pg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let worker = Process::start_env(
            &[
                "worker",
                "--temporal-address",
                &address,
                "--temporal-task-queue",
                &queue,
            ],
            &[
                ("DATABASE_URL", None),
                ("PGHOST", Some(&host)),
                ("PGPORT", Some(&port)),
                ("PGUSER", Some(&user)),
                ("PGPASSWORD", password.as_deref()),
                ("PGDATABASE", Some(db.name())),
            ],
        );
        // serve and webhook find it in DATABASE_URL.
        let env = [("DATABASE_URL", Some(db.url()))];
        let api_port = free_port().to_string();
        let serve = Process::start_env(
            &[
                "serve",
                "--port",
                &api_port,
                "--temporal-address",
                &address,
                "--temporal-task-queue",
                &queue,
            ],
            &env,
        );
        let webhook_port = free_port().to_string();
        let webhook = Process::start_env(
            &[
                "webhook",
                "--port",
                &webhook_port,
                "--temporal-address",
                &address,
                "--temporal-task-queue",
                &queue,
            ],
            &env,
        );
        let reference = Reference {
            _temporal: temporal,
            db,
            fake,
            worker,
            serve,
            webhook,
            api: format!("http://localhost:{api_port}"),
            webhooks: format!("http://localhost:{webhook_port}"),
        };
        for port in [&api_port, &webhook_port] {
            reference.wait(&format!("port {port}"), Duration::from_secs(30), || {
                std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok()
            });
        }
        for base in [&reference.api, &reference.webhooks] {
            assert_eq!(call("GET", &format!("{base}/health"), None).0, 200);
        }
        reference
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    fn wait(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(
                started.elapsed() < timeout,
                "waited {timeout:?} for {what}\n--- worker:\n{}\n--- serve:\n{}\n--- webhook:\n{}",
                self.worker.log_text(),
                self.serve.log_text(),
                self.webhook.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn status(&self, id: &str) -> Value {
        call("GET", &self.url(&format!("/pipelines/{id}")), None).1
    }

    fn wait_status(&self, id: &str, want: &str) {
        self.wait(
            &format!("pipeline {id} to be {want}"),
            Duration::from_secs(120),
            || self.status(id)["status"] == want,
        );
    }

    fn ids_in_simulator(&self, stream: &str) -> Vec<String> {
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

    fn row_ids(&self, schema: &str, table: &str) -> Vec<String> {
        self.db
            .client()
            .query(
                &format!("SELECT id FROM {schema}.{table} WHERE NOT _deleted ORDER BY id"),
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default()
    }

    fn table_exists(&self, name: &str) -> bool {
        self.db
            .client()
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .unwrap()
            .get(0)
    }

    fn listed(&self, stream: &str) -> u64 {
        let endpoint = format!("GET /v1/{stream}");
        self.fake
            .stats()
            .by_endpoint
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }
}

/// A POST answered with NDJSON: the status, the content type and the lines.
fn post_lines(url: &str, accept: Option<&str>) -> (u16, String, Vec<Value>) {
    runtime().block_on(async {
        let mut request = reqwest::Client::new().post(url);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect();
        (status, content_type, lines)
    })
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[test]
fn the_reference_docker_test_runs_as_written() {
    let reference = Reference::start();
    // e2e/service-docker.test.ts: a pipeline with the stream named by its object's name.
    let (code, created) = call(
        "POST",
        &reference.url("/pipelines"),
        Some(&json!({
            "source": {"type": "stripe", "api_key": KEY, "base_url": reference.fake.base_url()},
            "destination": {"type": "postgres", "connection_string": reference.db.url(), "schema": "docker_e2e"},
            "streams": [{"name": "product", "backfill_limit": 500}],
        })),
    );
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pipe_"), "{id}");
    assert!(!created.to_string().contains(KEY), "{created}");
    reference.wait("the products to land", Duration::from_secs(120), || {
        reference.row_ids("docker_e2e", "products") == reference.ids_in_simulator("products")
    });

    let (code, deleted) = call("DELETE", &reference.url(&format!("/pipelines/{id}")), None);
    assert_eq!((code, deleted), (200, json!({"id": id, "deleted": true})));
    assert_eq!(
        call("GET", &reference.url(&format!("/pipelines/{id}")), None).0,
        404
    );
    let (code, list) = call("GET", &reference.url("/pipelines"), None);
    assert_eq!(code, 200);
    assert_eq!(list["has_more"], false, "{list}");
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != id),
        "{list}"
    );
    // The teardown goes on in the workflow: its tables go.
    reference.wait("the teardown", Duration::from_secs(60), || {
        !reference.table_exists("docker_e2e.products")
    });
}

#[test]
fn the_reference_rest_requests_work_unchanged() {
    let reference = Reference::start();
    let base_url = reference.fake.base_url();

    // Create: the config under the connector's name, streams as objects, ?skip_check bare.
    let body = json!({
        "id": "Ref-Pipeline_1",
        "source": {"type": "stripe", "stripe": {"api_key": KEY, "base_url": base_url, "webhook_secret": WEBHOOK_SECRET}},
        "destination": {"type": "postgres", "postgres": {"url": reference.db.url(), "schema": "ref"}},
        "streams": [{"name": "customers", "sync_mode": "incremental"}, {"name": "products"}],
    });
    let (code, created) = call("POST", &reference.url("/pipelines?skip_check"), Some(&body));
    assert_eq!(code, 201, "{created}");
    let id = "Ref-Pipeline_1";
    assert_eq!(created["id"], id);
    assert_eq!(created["desired_status"], "active");
    reference.wait_status(id, "ready");
    for stream in ["customers", "products"] {
        assert_eq!(
            reference.row_ids("ref", stream),
            reference.ids_in_simulator(stream)
        );
    }
    let (_, list) = call("GET", &reference.url("/pipelines"), None);
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"][0]["id"], id);

    // sync streams the run's NDJSON, its eof last; the change made before it lands.
    let new = reference
        .fake
        .create(
            Scope::test(None),
            "customers",
            json!({"email": "ref@example.com"}),
        )
        .unwrap();
    let new_id = new["id"].as_str().unwrap().to_owned();
    let (code, content_type, lines) = post_lines(
        &reference.url(&format!(
            "/pipelines/{id}/sync?time_limit=60&run_id=run-001"
        )),
        None,
    );
    assert_eq!(code, 200, "{lines:?}");
    assert!(
        content_type.starts_with("application/x-ndjson"),
        "{content_type}"
    );
    let eof = &lines.last().unwrap()["eof"];
    assert_eq!(lines.last().unwrap()["type"], "eof", "{lines:?}");
    assert_eq!(
        (&eof["status"], &eof["has_more"]),
        (&json!("succeeded"), &json!(false)),
        "{eof}"
    );
    assert!(eof["ending_state"]["source"].is_object(), "{eof}");
    assert_eq!(
        eof["ending_state"]["sync_run"]["run_id"], "run-001",
        "{eof}"
    );
    assert!(!of_type(&lines, "progress").is_empty(), "{lines:?}");
    assert!(reference.row_ids("ref", "customers").contains(&new_id));
    // The checkpoint saved is the eof's.
    let shown = reference.status(id);
    assert_eq!(
        shown["checkpoint"]["state"]["source"],
        eof["ending_state"]["source"]
    );

    // The reference's one-run overrides would be a second writer of the checkpoint: refused.
    let (code, answer) = call(
        "POST",
        &reference.url(&format!("/pipelines/{id}/sync")),
        Some(&json!({"sync_state": null})),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("sync_state:"),
        "{answer}"
    );

    // reset_state: read from no checkpoint (every customer listed again), saved as the new one.
    let listed = reference.listed("customers");
    let (code, _, lines) = post_lines(
        &reference.url(&format!("/pipelines/{id}/sync?reset_state=true")),
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(
        lines.last().unwrap()["eof"]["status"],
        "succeeded",
        "{lines:?}"
    );
    assert!(
        reference.listed("customers") > listed,
        "reset_state listed nothing again"
    );
    assert_eq!(
        reference.row_ids("ref", "customers"),
        reference.ids_in_simulator("customers")
    );

    // sync_batch answers the eof payload as JSON; state_limit stops it after one state.
    let (code, eof) = call(
        "POST",
        &reference.url(&format!(
            "/pipelines/{id}/sync_batch?state_limit=1&run_id=batch-1&reset_state=true"
        )),
        None,
    );
    assert_eq!(code, 200, "{eof}");
    assert_eq!(
        (&eof["status"], &eof["has_more"]),
        (&json!("started"), &json!(true)),
        "{eof}"
    );
    assert_eq!(eof["reason"], "state_limit", "{eof}");
    assert_eq!(
        eof["ending_state"]["sync_run"]["run_id"], "batch-1",
        "{eof}"
    );
    assert_eq!(eof["run"]["has_more"], true, "{eof}");
    // The workflow goes on by itself.
    reference.wait_status(id, "ready");

    // Webhooks on serve and on the separate webhook server.
    let customer = reference.ids_in_simulator("customers")[0].clone();
    let event = silent_change(
        &reference.fake,
        &customer,
        "Renamed by webhook",
        "evt_ref_1",
    );
    let (code, answer) = post_webhook(&reference.webhooks, id, &event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = post_webhook(&reference.api, id, &event, WEBHOOK_SECRET);
    assert_eq!(
        (code, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
    reference.wait("the webhook's change", Duration::from_secs(30), || {
        reference
            .db
            .client()
            .query_opt("SELECT name FROM ref.customers WHERE id = $1", &[&customer])
            .unwrap()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .as_deref()
            == Some("Renamed by webhook")
    });

    // check, setup: NDJSON of the connectors' messages; ?only= one side.
    let (code, content_type, lines) =
        post_lines(&reference.url(&format!("/pipelines/{id}/check")), None);
    assert_eq!(code, 200);
    assert!(content_type.starts_with("application/x-ndjson"));
    let statuses = of_type(&lines, "connection_status");
    assert_eq!(statuses.len(), 2, "{lines:?}");
    assert!(
        statuses
            .iter()
            .all(|s| s["connection_status"]["status"] == "succeeded")
    );
    let (_, _, lines) = post_lines(
        &reference.url(&format!("/pipelines/{id}/check?only=source")),
        None,
    );
    assert_eq!(of_type(&lines, "connection_status").len(), 1, "{lines:?}");
    // This API's own answer for a client that asks for JSON.
    let (code, _, verdict) = post_lines(
        &reference.url(&format!("/pipelines/{id}/check")),
        Some("application/json"),
    );
    assert_eq!(
        (code, &verdict[0]["ok"]),
        (200, &json!(true)),
        "{verdict:?}"
    );
    let (code, _, lines) = post_lines(&reference.url(&format!("/pipelines/{id}/setup")), None);
    assert_eq!(code, 200, "{lines:?}");
    assert!(
        !lines
            .to_vec()
            .iter()
            .any(|l| l.to_string().contains(WEBHOOK_SECRET))
    );

    // PATCH desired_status: paused, then teardown (NDJSON) drops the tables.
    let (code, patched) = call(
        "PATCH",
        &reference.url(&format!("/pipelines/{id}")),
        Some(&json!({"desired_status": "paused"})),
    );
    assert_eq!(
        (code, &patched["desired_status"]),
        (200, &json!("paused")),
        "{patched}"
    );
    reference.wait_status(id, "paused");
    let (code, _, lines) = post_lines(
        &reference.url(&format!("/pipelines/{id}/teardown?only=destination")),
        None,
    );
    assert_eq!(code, 200, "{lines:?}");
    assert!(
        of_type(&lines, "connection_status")
            .iter()
            .all(|s| s["connection_status"]["status"] != "failed"),
        "{lines:?}"
    );
    assert!(!reference.table_exists("ref.customers"));
    let (code, patched) = call(
        "PATCH",
        &reference.url(&format!("/pipelines/{id}")),
        Some(&json!({"desired_status": "active"})),
    );
    assert_eq!(code, 200, "{patched}");
    reference.wait("the tables to be back", Duration::from_secs(120), || {
        reference.row_ids("ref", "customers") == reference.ids_in_simulator("customers")
    });

    // PATCH desired_status deleted is DELETE.
    let (code, answer) = call(
        "PATCH",
        &reference.url(&format!("/pipelines/{id}")),
        Some(&json!({"desired_status": "deleted"})),
    );
    assert_eq!((code, answer), (200, json!({"id": id, "deleted": true})));
    assert_eq!(
        call("GET", &reference.url(&format!("/pipelines/{id}")), None).0,
        404
    );
    // Gone for webhooks too, though its teardown may still run.
    let event = silent_change(&reference.fake, &customer, "After delete", "evt_ref_2");
    let (code, answer) = post_webhook(&reference.webhooks, id, &event, WEBHOOK_SECRET);
    assert_eq!(code, 401, "{answer}");
    let (_, list) = call("GET", &reference.url("/pipelines"), None);
    assert_eq!(list, json!({"data": [], "has_more": false}));
}

/// `sync-service ARGS` with a clean environment but for `env`; its exit code and stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(bin_path("sync-service"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_control_database_is_found_as_psql_finds_it_or_the_error_says_where_it_looked() {
    let db = TestDb::new();
    // DATABASE_URL alone.
    let (code, stderr) = run(&["migrate"], &[("DATABASE_URL", db.url())]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(db.count("sync_service.migrations"), 7);
    // Nothing answers where libpq's variables point: the error says where it looked.
    let port = free_port().to_string();
    let (code, stderr) = run(
        &["migrate"],
        &[
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", &port),
            ("PGUSER", "nobody"),
            ("PGPASSWORD", "hunter2"),
        ],
    );
    assert_ne!(code, Some(0));
    for needle in [
        "libpq",
        "host=127.0.0.1",
        &format!("port={port}"),
        "user=nobody",
        "--database-url",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // The reference's file store cannot mean anything here: refused, naming what to use.
    let (code, stderr) = run(&["serve", "--data-dir", "/tmp/x"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--database-url"), "{stderr}");
    let (code, stderr) = run(
        &["serve", "--port", "4020", "--listen", "127.0.0.1:4021"],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
}
