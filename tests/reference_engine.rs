//! The reference system's (stripe/sync-engine) engine requests, stream names and saved state,
//! sent exactly as its documentation writes them (hosts, ports, keys and the simulator's base
//! URL substituted), against the real `sync-engine serve`, `source-stripe` and `dest-postgres`,
//! the Stripe simulator and a real Postgres: each gives the rows (and answers) our own
//! spelling gives.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::engine_serve::EngineServe;
use test_support::{TestDb, bin_path, lines_of};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Posts a JSON body (with extra headers); the status and the answer's text.
fn post_with(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
    runtime().block_on(async {
        let mut request = client().post(url).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    })
}

fn post(url: &str, body: &Value) -> (u16, String) {
    post_with(url, &[], body)
}

fn fake() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 29,
        scale: 0.0,
        objects: vec![("customers".into(), 650), ("products".into(), 40)],
        ..Default::default()
    })
    .expect("the simulator starts")
}

/// The last line of a sync's answer, which must be its only `eof`.
fn eof(text: &str) -> Value {
    let messages = lines_of(text);
    let eofs: Vec<&Value> = messages.iter().filter(|m| m["type"] == "eof").collect();
    assert_eq!(eofs.len(), 1, "exactly one eof: {text}");
    assert_eq!(messages.last().unwrap()["type"], "eof", "the eof is last");
    messages.last().unwrap()["eof"].clone()
}

/// Rows of a table: id → the object without the source's stamps.
fn rows(db: &TestDb, table: &str) -> BTreeMap<String, Value> {
    db.client()
        .query(
            &format!("SELECT id, _raw_data::text FROM {table} WHERE NOT _deleted"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.get::<_, String>(1)).unwrap();
            if let Value::Object(m) = &mut v {
                m.remove("_account_id");
                m.remove("_updated_at");
            }
            (r.get::<_, String>(0), v)
        })
        .collect()
}

fn data(fake: &FakeStripe, stream: &str) -> BTreeMap<String, Value> {
    fake.objects_by_id(Scope::test(None), stream).unwrap()
}

fn lists(fake: &FakeStripe, endpoint: &str) -> u64 {
    fake.stats().by_endpoint.get(endpoint).copied().unwrap_or(0)
}

/// Records a run read per stream (its eof's progress).
fn records_read(eof: &Value, stream: &str) -> u64 {
    eof["run_progress"]["streams"][stream]["record_count"]
        .as_u64()
        .unwrap_or(0)
}

/// Our own spelling of a pipeline: configs under the connector's name, streams by table name.
fn our_pipeline(fake: &FakeStripe, db: &TestDb, schema: &str, streams: &[&str]) -> Value {
    json!({
        "source": {"type": "stripe", "stripe": {"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 1000}},
        "destination": {"type": "postgres", "postgres": {"url": db.url(), "schema": schema}},
        "streams": streams.iter().map(|s| json!({"name": s})).collect::<Vec<_>>()
    })
}

#[test]
fn a_sync_body_as_the_reference_sends_it_gives_the_rows_ours_gives() {
    let fake = fake();
    let db = TestDb::new();
    let serve = EngineServe::start(&[]);
    let (status, text) = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": our_pipeline(&fake, &db, "ours", &["customers", "products"]), "time_limit": 300}),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(eof(&text)["status"], "succeeded", "{text}");

    // As the reference's docs and its service worker write it: the configs flat beside `type`
    // (`connection_string` for dest-postgres' `url`), the whole stored pipeline (id, desired_status, status, sync_state), streams by object
    // name with a sync_mode, run_id in the body and the query, an X-Action-Id header.
    let reference = json!({
        "pipeline": {
            "id": "pipe_ref1",
            "desired_status": "active",
            "status": "backfilling",
            "sync_state": {"source": {"streams": {}, "global": {}}, "destination": {}, "sync_run": {}},
            "source": {"type": "stripe", "api_key": "sk_test_fake", "api_version": "2024-04-10", "base_url": fake.base_url(), "rate_limit": 1000},
            "destination": {"type": "postgres", "connection_string": db.url(), "schema": "reference"},
            "streams": [{"name": "customer", "sync_mode": "incremental"}, {"name": "product", "sync_mode": "full_refresh"}]
        },
        "state": null,
        "time_limit": 300,
        "soft_time_limit": 240,
        "run_id": "run-001"
    });
    let (status, text) = post_with(
        &serve.at("/pipeline_sync?run_id=run-001"),
        &[("X-Action-Id", "act_7f3a")],
        &reference,
    );
    assert_eq!(status, 200, "{text}");
    let ending = eof(&text);
    assert_eq!(ending["status"], "succeeded", "{text}");
    assert_eq!(ending["ending_state"]["sync_run"]["run_id"], "run-001");
    for stream in ["customers", "products"] {
        assert_eq!(
            rows(&db, &format!("reference.{stream}")),
            rows(&db, &format!("ours.{stream}")),
            "{stream}"
        );
        assert_eq!(
            rows(&db, &format!("reference.{stream}")),
            data(&fake, stream)
        );
    }
    let log = serve.log();
    assert!(log.contains("run-001"), "the run id is in the logs: {log}");
    assert!(
        log.contains("act_7f3a"),
        "the action id is in the logs: {log}"
    );

    // The batch route and the lifecycle routes take the same stored pipeline.
    let (status, text) = post(
        &serve.at("/pipeline_sync_batch?run_id=run-002"),
        &json!({"pipeline": reference["pipeline"], "state": ending["ending_state"], "run_id": "run-002", "state_limit": 100}),
    );
    assert_eq!(status, 200, "{text}");
    let batch: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(batch["ending_state"]["sync_run"]["run_id"], "run-002");
    let (status, text) = post(
        &serve.at("/pipeline_check"),
        &json!({"pipeline": reference["pipeline"], "only": "destination"}),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        lines_of(&text)[0]["connection_status"]["status"],
        "succeeded"
    );

    // What neither system documents is still refused, naming it.
    let mut typo = reference.clone();
    typo["pipeline"]["streams"][0]["sync_mod"] = json!("incremental");
    let (status, text) = post(&serve.at("/pipeline_sync"), &typo);
    assert_eq!(status, 400);
    assert!(text.contains("pipeline.streams[0].sync_mod"), "{text}");
    let mut mode = reference.clone();
    mode["pipeline"]["streams"][0]["sync_mode"] = json!("sometimes");
    let (status, text) = post(&serve.at("/pipeline_sync"), &mode);
    assert_eq!(status, 400);
    assert!(text.contains("pipeline.streams[0].sync_mode"), "{text}");
}

#[test]
fn full_refresh_reads_its_stream_again_and_incremental_continues() {
    let fake = fake();
    let db = TestDb::new();
    let serve = EngineServe::start(&[]);
    let mut pipeline = our_pipeline(&fake, &db, "fr", &["customers", "products"]);
    let (status, text) = post(&serve.at("/pipeline_sync"), &json!({"pipeline": pipeline}));
    assert_eq!(status, 200, "{text}");
    let first = eof(&text);
    assert_eq!(first["status"], "succeeded", "{text}");
    let state = first["ending_state"].clone();

    // Our spelling (no sync_mode) and `incremental` continue: nothing is listed again.
    let listed = lists(&fake, "GET /v1/customers");
    pipeline["streams"] =
        json!([{"name": "customers", "sync_mode": "incremental"}, {"name": "products"}]);
    let (_, text) = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": pipeline, "state": state}),
    );
    let again = eof(&text);
    assert_eq!(records_read(&again, "customers"), 0, "{text}");
    assert_eq!(lists(&fake, "GET /v1/customers"), listed);

    // `full_refresh` reads that stream from scratch; the other continues.
    pipeline["streams"] = json!([{"name": "customers", "sync_mode": "full_refresh"}, {"name": "products", "sync_mode": "incremental"}]);
    let (_, text) = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": pipeline, "state": state}),
    );
    let refreshed = eof(&text);
    assert_eq!(refreshed["status"], "succeeded", "{text}");
    assert_eq!(
        records_read(&refreshed, "customers"),
        data(&fake, "customers").len() as u64,
        "{text}"
    );
    assert_eq!(records_read(&refreshed, "products"), 0, "{text}");
    assert_eq!(rows(&db, "fr.customers"), data(&fake, "customers"));

    // Within one run (one run_id, as a caller stepping through a run in several requests
    // sends), the refresh is continued, not started over; a new run refreshes again.
    let all = data(&fake, "customers").len() as u64;
    let step = |state: &Value, run_id: &str| {
        let (_, text) = post(
            &serve.at("/pipeline_sync"),
            &json!({"pipeline": pipeline, "state": state, "run_id": run_id}),
        );
        let ending = eof(&text);
        assert_eq!(ending["status"], "succeeded", "{text}");
        ending
    };
    let first = step(&state, "run-a");
    assert_eq!(records_read(&first, "customers"), all);
    let continued = step(&first["ending_state"], "run-a");
    assert_eq!(records_read(&continued, "customers"), 0);
    let next_run = step(&continued["ending_state"], "run-b");
    assert_eq!(records_read(&next_run, "customers"), all);
}

#[test]
fn object_names_select_streams_in_the_cli_the_pipeline_file_and_http() {
    let fake = fake();
    let db = TestDb::new();
    // The CLI's --streams.
    let out = Command::new(bin_path("sync-engine"))
        .args(["sync", "--stripe-api-key", "sk_test_fake"])
        .args(["--stripe-base-url", &fake.base_url()])
        .args(["--source-config", r#"{"rate_limit":1000}"#])
        .args(["--postgres-url", db.url(), "--schema", "cli"])
        .args(["--streams", "customer,product", "--output", "ndjson"])
        .args(["--state-file"])
        .arg(tempfile::tempdir().unwrap().path().join("state.json"))
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(rows(&db, "cli.customers"), data(&fake, "customers"));
    assert_eq!(rows(&db, "cli.products"), data(&fake, "products"));

    // The pipeline file's streams.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.json");
    std::fs::write(
        &file,
        json!({
            "source": {"name": "stripe", "config": {"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 1000}},
            "destination": {"name": "postgres", "config": {"url": db.url(), "schema": "file"}},
            "streams": [{"name": "customer"}],
            "state_file": dir.path().join("state.json")
        })
        .to_string(),
    )
    .unwrap();
    let out = Command::new(bin_path("sync-engine"))
        .args(["sync", "--config"])
        .arg(&file)
        .args(["--output", "ndjson"])
        .env_remove("STRIPE_API_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&db, "file.customers"), data(&fake, "customers"));

    // HTTP: discover narrows by object name too, and an unknown name is still refused.
    let serve = EngineServe::start(&[]);
    let source = json!({"type": "stripe", "api_key": "sk_test_fake", "base_url": fake.base_url()});
    let (status, text) = post(
        &serve.at("/source_discover"),
        &json!({"source": source, "streams": [{"name": "checkout.session"}, {"name": "customer"}]}),
    );
    assert_eq!(status, 200, "{text}");
    let names: Vec<String> = lines_of(&text)[0]["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["checkout_sessions", "customers"]);
    let (status, text) = post(
        &serve.at("/source_discover"),
        &json!({"source": source, "streams": [{"name": "customerz"}]}),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("customerz"), "{text}");
}

#[test]
fn the_reference_connector_pipe_writes_our_tables() {
    let fake = fake();
    let db = TestDb::new();
    let pipe = |stream: &str, dest_config: &Value| {
        // As CONNECTORS.md writes it: a hand-written configured catalog, given to both sides.
        let catalog = json!({"streams": [{"stream": {"name": stream, "primary_key": [["id"]]}, "sync_mode": "full_refresh", "destination_sync_mode": "append"}]}).to_string();
        let source_config =
            json!({"api_key": "sk_test_fake", "base_url": fake.base_url()}).to_string();
        let script = format!(
            "'{source}' read --config '{source_config}' --catalog '{catalog}' | '{dest}' write --config '{dest_config}' --catalog '{catalog}'",
            source = bin_path("source-stripe").display(),
            dest = bin_path("dest-postgres").display(),
        );
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{stream}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines_of(&String::from_utf8_lossy(&out.stdout))
    };
    let ours = pipe("customers", &json!({"url": db.url(), "schema": "ours"}));
    let reference = pipe("customer", &json!({"url": db.url(), "schema": "reference"}));
    assert_eq!(
        rows(&db, "reference.customers"),
        rows(&db, "ours.customers")
    );
    assert_eq!(rows(&db, "reference.customers"), data(&fake, "customers"));
    // Every record is acknowledged by a state, under the stream's own name.
    let committed = |messages: &[Value]| -> BTreeMap<String, u64> {
        let mut by_stream = BTreeMap::new();
        for m in messages.iter().filter(|m| m["type"] == "source_state") {
            let stream = m["source_state"]["stream"].as_str().unwrap_or("(global)");
            *by_stream.entry(stream.to_owned()).or_default() +=
                m["source_state"]["destination_stats"]["committed"]
                    .as_u64()
                    .unwrap_or(0);
        }
        by_stream
    };
    assert_eq!(
        committed(&reference).get("customers"),
        committed(&ours).get("customers")
    );
    assert_eq!(
        committed(&reference).get("customers").copied(),
        Some(data(&fake, "customers").len() as u64)
    );
    assert!(
        committed(&reference)
            .keys()
            .all(|s| s == "customers" || s == "(global)"),
        "states carry the table's stream name: {:?}",
        committed(&reference)
    );
}

/// RFC 3339 with milliseconds, as the reference writes its ranges.
fn iso(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[test]
fn a_reference_checkpoint_taken_mid_backfill_is_continued_not_backfilled_again() {
    let fake = fake();
    let db = TestDb::new();
    let serve = EngineServe::start(&[]);
    let pipeline = our_pipeline(&fake, &db, "st", &["customers", "products"]);
    // The tables as the reference left them: every row it read (all, less what its
    // checkpoint says remains, deleted below).
    let (status, text) = post(&serve.at("/pipeline_sync"), &json!({"pipeline": pipeline}));
    assert_eq!(status, 200, "{text}");

    // The customers in list order (newest first), and a checkpoint the reference would write
    // for them mid-backfill: [t_b, lt) done; [t_a, t_b) paged down to a cursor; [2011, t_a)
    // not started. products: done (`remaining: []`).
    let customers = fake.objects(Scope::test(None), "customers").unwrap();
    let created = |o: &Value| o["created"].as_i64().unwrap();
    assert!(
        customers
            .windows(2)
            .all(|w| created(&w[0]) >= created(&w[1]))
    );
    let now = fake.now();
    let t_b = created(&customers[150]);
    let t_a = created(&customers[450]) + 1;
    let in_middle: Vec<&Value> = customers
        .iter()
        .filter(|o| (t_a..t_b).contains(&created(o)))
        .collect();
    let cursor_at = in_middle.len() / 3;
    let cursor = in_middle[cursor_at]["id"].as_str().unwrap().to_owned();
    let mut remaining_ids: Vec<String> = in_middle[cursor_at + 1..]
        .iter()
        .chain(
            customers
                .iter()
                .filter(|o| created(o) < t_a)
                .collect::<Vec<_>>()
                .iter(),
        )
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    remaining_ids.sort();
    let reference_state = json!({
        "source": {
            "streams": {
                "customers": {
                    "accounted_range": {"gte": "2011-01-01", "lt": iso(now + 1)},
                    "remaining": [
                        {"gte": "2011-01-01", "lt": iso(t_a), "cursor": null},
                        {"gte": iso(t_a), "lt": iso(t_b), "cursor": cursor}
                    ]
                },
                "products": {
                    "accounted_range": {"gte": "2011-01-01T00:00:00.000Z", "lt": iso(now + 1)},
                    "remaining": []
                }
            },
            "global": {"events_cursor": now}
        },
        "destination": {},
        "sync_run": {"run_id": "run_ref", "time_ceiling": iso(now + 1)}
    });
    let client = db.client();
    let mut client = client;
    for id in &remaining_ids {
        client
            .execute("DELETE FROM st.customers WHERE id = $1", &[id])
            .unwrap();
    }
    // A change after the reference's events cursor: the events path must apply it.
    let changed = customers[3]["id"].as_str().unwrap().to_owned();
    fake.update(
        None,
        "customers",
        &changed,
        json!({"metadata": {"switched": "yes"}}),
    )
    .unwrap();

    let customers_listed = lists(&fake, "GET /v1/customers");
    let products_listed = lists(&fake, "GET /v1/products");
    let (status, text) = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": pipeline, "state": reference_state}),
    );
    assert_eq!(status, 200, "{text}");
    let ending = eof(&text);
    assert_eq!(ending["status"], "succeeded", "{text}");
    // Only what was left is read: the remaining customers, and the changed one again.
    assert_eq!(
        records_read(&ending, "customers"),
        remaining_ids.len() as u64 + 1,
        "{text}"
    );
    assert_eq!(records_read(&ending, "products"), 0, "{text}");
    assert_eq!(lists(&fake, "GET /v1/products"), products_listed);
    let pages = lists(&fake, "GET /v1/customers") - customers_listed;
    assert!(
        pages <= remaining_ids.len() as u64 / 100 + 12,
        "{pages} customer pages for {} remaining customers",
        remaining_ids.len()
    );
    assert_eq!(rows(&db, "st.customers"), data(&fake, "customers"));
    assert_eq!(rows(&db, "st.products"), data(&fake, "products"));

    // The state it ends with is ours, and continues as ours: nothing more to read.
    let (_, text) = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": pipeline, "state": ending["ending_state"]}),
    );
    let next = eof(&text);
    assert_eq!(next["status"], "succeeded", "{text}");
    assert_eq!(records_read(&next, "customers"), 0, "{text}");
}

#[test]
fn the_openapi_document_describes_the_reference_fields() {
    let serve = EngineServe::start(&[]);
    let document: Value = runtime().block_on(async {
        client()
            .get(serve.at("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let schemas = &document["components"]["schemas"];
    assert!(schemas["SyncRequest"]["properties"]["run_id"].is_object());
    assert_eq!(
        schemas["StreamSelection"]["properties"]["sync_mode"]["enum"],
        json!(["incremental", "full_refresh"])
    );
    for key in ["desired_status", "status", "sync_state"] {
        assert!(
            schemas["PipelineConfig"]["properties"][key].is_object(),
            "{key}"
        );
    }
    let sync = &document["paths"]["/pipeline_sync"]["post"];
    let parameters: Vec<&str> = sync["parameters"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(parameters, ["run_id", "X-Action-Id"]);
    test_support::openapi::assert_valid(&document);
}
